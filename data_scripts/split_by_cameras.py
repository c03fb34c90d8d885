#!/usr/bin/env python
"""Split a Market-layout dataset into camera-disjoint Market-layout domains.

    python data_scripts/split_by_cameras.py SRC --out OUT --groups 1,2:3,4,5 [--names A,B] [--mode copy]

Writes OUT/<name>/{bounding_box_train,query,bounding_box_test}/ per camera group (camera numbers as in the
file names, ',' inside a group, ':' between groups; default names cams1-2, cams3-4-5) and OUT/split.json
with the counts. A domain's query image is kept only if its gallery has the same identity from another
camera of the same domain (the rest are dropped and counted). Recommended for CUHK03 (../shared/data):
--groups 1,2:3,4,5,6,7,8,9,10 (its first camera pair against the other four; identity-disjoint).
The logic lives in reid_uda_lib/data/split.py; see data_scripts/README.md.
"""
from __future__ import annotations

import argparse
import sys

from reid_uda_lib.data.convert import LINK_MODES
from reid_uda_lib.data.layouts import DatasetLayoutError
from reid_uda_lib.data.split import format_report, parse_groups, split_by_cameras


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src", help="a dataset folder in Market-1501 layout")
    ap.add_argument("--out", required=True, help="new output folder (must not exist or be empty)")
    ap.add_argument("--groups", required=True, help="camera groups, e.g. 1,2:3,4,5")
    ap.add_argument("--names", default=None, help="comma-separated domain folder names (default cams1-2, ...)")
    ap.add_argument("--mode", choices=LINK_MODES, default="copy", help="copy files (default) or link them")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        names = args.names.split(",") if args.names else None
        report = split_by_cameras(args.src, args.out, parse_groups(args.groups), names=names, mode=args.mode)
    except (DatasetLayoutError, FileExistsError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(format_report(report))
    print(f"\nok: wrote {', '.join(report['domains'])} under {args.out} (counts in {args.out}/split.json)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
