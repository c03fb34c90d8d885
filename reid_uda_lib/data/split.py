"""Split one Market-layout dataset into camera-disjoint Market-layout domains (for UDA experiments).

``split_by_cameras(src, out, groups=[[1, 2], [3, 4, 5]])`` writes one Market-layout folder per camera
group. Camera numbers are the ones in the file names (``_c3`` = camera 3). Each domain keeps the train,
query and gallery images of its own cameras, so query and gallery stay consistent:

* a domain's query image is kept only if the domain's gallery holds an image of the same identity from
  **another camera of the same domain** (otherwise the cross-camera protocol could never evaluate it);
  the dropped query images and identities are counted;
* gallery images are all kept (images of identities without a query act as distractors, as in the
  original gallery); junk images (identity -1) are not copied; cameras in no group are left out.

When identities are seen by cameras of two groups (e.g. Market-1501), the domains share those
identities (in train and in test); the returned ``shared_train_ids`` says how many. For real UDA
experiments prefer groups that separate identities, e.g. CUHK03's camera pairs.
The command line is ``data_scripts/split_by_cameras.py``.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional, Sequence

from .convert import place_file, prepare_output
from .layouts import MARKET_SPLITS, parse_market_layout

__all__ = ["split_by_cameras", "parse_groups", "domain_name"]


def parse_groups(text: str) -> list[list[int]]:
    """``"1,2:3,4,5"`` -> ``[[1, 2], [3, 4, 5]]`` (camera numbers as in the file names)."""
    try:
        groups = [[int(c) for c in part.split(",") if c.strip()] for part in text.split(":")]
    except ValueError:
        raise ValueError(f"camera groups must look like '1,2:3,4,5' (camera numbers, ',' inside a group, "
                         f"':' between groups); got {text!r}") from None
    return groups


def domain_name(group: Sequence[int]) -> str:
    """Default folder name of a domain: ``cams1-2`` for cameras 1 and 2."""
    return "cams" + "-".join(str(c) for c in group)


def _check_groups(groups: Sequence[Sequence[int]], present: set[int]) -> None:
    if len(groups) < 2 or any(len(g) == 0 for g in groups):
        raise ValueError(f"need at least two non-empty camera groups, got {groups!r}")
    seen: set[int] = set()
    for g in groups:
        twice = seen & set(g)
        if twice:
            raise ValueError(f"camera(s) {sorted(twice)} appear in two groups of {groups!r}: domains must be "
                             "camera-disjoint")
        seen |= set(g)
    absent = sorted(seen - present)
    if absent:
        raise ValueError(f"camera(s) {absent} of the groups are not in the dataset; its cameras are "
                         f"{sorted(present)}")


def split_by_cameras(src: str | os.PathLike, out: str | os.PathLike, groups: Sequence[Sequence[int]],
                     names: Optional[Sequence[str]] = None, mode: str = "copy") -> dict:
    """Write ``out/<name>/`` (Market layout) for each camera group of the Market-layout dataset ``src``.

    Returns (and writes to ``out/split.json``) ``{"source": src, "groups": ..., "domains": {name:
    {"cameras", "train_images", "train_ids", "query_images", "query_ids", "gallery_images",
    "gallery_ids", "dropped_query_images", "dropped_query_ids"}}, "unused_cameras": [...],
    "shared_train_ids": n}``.

    Raises
    ------
    ValueError
        for overlapping, empty or unknown camera groups, a wrong number of names, or a domain left
        without training, query or gallery images.
    """
    src = Path(src)
    train, query, gallery = parse_market_layout(src)
    present = {c + 1 for items in (train, query, gallery) for _, _, c in items}
    groups = [sorted(set(int(c) for c in g)) for g in groups]
    _check_groups(groups, present)
    names = list(names) if names is not None else [domain_name(g) for g in groups]
    if len(names) != len(groups) or len(set(names)) != len(names):
        raise ValueError(f"need {len(groups)} distinct domain names, got {names!r}")

    plans, report = [], {"source": str(src), "groups": groups, "domains": {},
                         "unused_cameras": sorted(present - {c for g in groups for c in g})}
    for name, group in zip(names, groups):
        cams = {c - 1 for c in group}
        tr = [it for it in train if it[2] in cams]
        ga = [it for it in gallery if it[2] in cams]
        q_all = [it for it in query if it[2] in cams]
        g_cams: dict[int, set[int]] = {}
        for _, pid, cam in ga:
            g_cams.setdefault(pid, set()).add(cam)
        q = [it for it in q_all if g_cams.get(it[1], set()) - {it[2]}]
        kept_ids = {p for _, p, _ in q}
        stats = {"cameras": group, "train_images": len(tr), "train_ids": len({p for _, p, _ in tr}),
                 "query_images": len(q), "query_ids": len(kept_ids), "gallery_images": len(ga),
                 "gallery_ids": len({p for _, p, _ in ga}), "dropped_query_images": len(q_all) - len(q),
                 "dropped_query_ids": len({p for _, p, _ in q_all} - kept_ids)}
        empty = [k for k in ("train_images", "query_images", "gallery_images") if stats[k] == 0]
        if empty:
            raise ValueError(f"domain {name!r} (cameras {group}) would have no {', '.join(empty)}: choose "
                             f"other groups (the dataset's cameras are {sorted(present)})")
        plans.append((name, (tr, q, ga)))
        report["domains"][name] = stats
    train_ids = [{p for _, p, _ in plan[1][0]} for plan in plans]
    report["shared_train_ids"] = len(set.union(*[a & b for i, a in enumerate(train_ids)
                                                 for b in train_ids[i + 1:]]))

    out = prepare_output(out)
    for name, splits in plans:
        for market_split, items in zip(MARKET_SPLITS, splits):
            for path, _, _ in items:
                place_file(path, out / name / market_split / os.path.basename(path), mode)
    (out / "split.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def format_report(report: dict) -> str:
    """A printable table of :func:`split_by_cameras`' counts."""
    cols = ("cameras", "train_images", "train_ids", "query_images", "query_ids", "gallery_images",
            "gallery_ids", "dropped_query_images", "dropped_query_ids")
    head = "| domain | " + " | ".join(cols) + " |\n|---|" + "---:|" * len(cols) + "\n"
    rows = "".join(f"| {name} | " + " | ".join(",".join(map(str, s[c])) if c == "cameras" else str(s[c])
                                               for c in cols) + " |\n" for name, s in report["domains"].items())
    tail = (f"\nidentities in the train split of two domains: {report['shared_train_ids']}; cameras left out: "
            f"{report['unused_cameras'] or 'none'}")
    return head + rows + tail
