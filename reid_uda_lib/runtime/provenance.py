"""Run identity: what made a checkpoint, recorded in it and compared on every reuse.

A checkpoint records its *identity*: the stage, the seed, every config field that changes training (the
whole config minus :data:`RESUMABLE_FIELDS`) and the datasets it read, by name and content, not by where they
are mounted (images and identities per split, a hash of the sorted file list, a hash of the training files'
sizes and sampled contents: :func:`dataset_identity`), so a dataset folder moved or copied elsewhere (a Drive folder
mounted at another path) is the same data. Reusing a run folder (``--resume``, the automatic reuse of
``OUT/pretrain``, ``resume="auto"``) compares the stored identity with the asked one *before anything is
written* and refuses a mismatch with :class:`RunIdentityError`, which lists each differing field
(``seed: 0 in the checkpoint, 5 asked``), unless ``override_identity=True`` (CLI ``--override-identity``).

The identity is a deny-list: every config field is part of it except the ones named here, so a config
section added later (e.g. ``dcdfa``) is automatically part of the identity of the UDA stage.
"""
from __future__ import annotations

import hashlib
import os
from typing import Iterable, Any, Mapping, Optional

#: The one list of config fields that may change when a run is resumed or reused: they change how a run is
#: watched or where it runs, not the numbers it trains to. A whole section can be named (``"data"``).
RESUMABLE_FIELDS: frozenset[str] = frozenset({
    "preset",                 # a label: the fields it sets are compared one by one
    "device",
    "data.num_workers",       # augmentations are seeded per image: the numbers do not depend on it
    "data.test_batch_size",
    "pretrain.eval_every",
    "uda.eval_every",
})

# Sections that do not influence a stage come from the caller (``ignore``): the source pretraining reads
# neither the UDA settings nor a method's sections (:func:`reid_uda_lib.methods.stage_ignores`, derived from
# the registry), so ``train --method base`` and ``train --method sbase`` share ``OUT/pretrain``.


class RunIdentityError(ValueError):
    """A run folder's checkpoint was made by other settings or data than the ones asked now."""


def flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"uda": {"eps": 0.6}}`` -> ``{"uda.eps": 0.6}`` (tuples become lists, as in JSON)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flatten(v, key + "."))
        else:
            out[key] = list(v) if isinstance(v, tuple) else v
    return out


def _ignored(key: str, ignore: Iterable[str]) -> bool:
    parts = key.split(".")
    prefixes = {".".join(parts[:i]) for i in range(1, len(parts) + 1)}
    return bool(prefixes & RESUMABLE_FIELDS) or parts[0] in ignore


def config_identity(cfg_dict: Mapping[str, Any], ignore: Iterable[str] = ()) -> dict[str, Any]:
    """The flattened config fields that define a run (everything not resumable, outside the ``ignore``
    sections)."""
    ignore = frozenset(ignore)
    return {k: v for k, v in flatten(cfg_dict).items() if not _ignored(k, ignore)}


#: Training files whose bytes enter ``content_sha256`` (evenly spaced in the sorted list); every one's size does.
CONTENT_SAMPLE = 128
#: Data identity fields of older checkpoints that are no longer compared (the root: where the data is mounted).
LEGACY_DATA_FIELDS = frozenset({"root"})


def dataset_identity(ds) -> dict[str, Any]:
    """What identifies the data a run read, wherever it is mounted: images and identities per split,
    ``files_sha256`` (a sha256 of the sorted ``(split, file name, pid, camid)`` list) and ``content_sha256`` (a
    sha256 of every training file's size and of the bytes of :data:`CONTENT_SAMPLE` of them: what the weights are
    fitted to; a repaired query or gallery image only changes the evaluation, which a resumed run redoes). The
    root path is not part of it: a copied or moved folder is the same data, another folder with the same file
    names is not. Computed once per dataset object and file list."""
    names = hashlib.sha256()
    rows: dict[str, list[tuple[str, str]]] = {}
    for split in ("train", "query", "gallery"):
        # sorted by path: within a split every path has the same root, so the order is the relative paths'
        # (the hash is the one older checkpoints recorded)
        rows[split] = []
        for path, pid, cam in sorted((str(p), int(i), int(c)) for p, i, c in getattr(ds, split)):
            name = path.rsplit('/', 1)[-1]
            names.update(f"{split}\0{name}\0{pid}\0{cam}\n".encode())
            rows[split].append((name, path))
    key = names.hexdigest()
    cache = getattr(ds, "__dict__", {}).get("_identity_cache")
    if cache is not None and cache[0] == key:
        return dict(cache[1])
    out: dict[str, Any] = {}
    for split in ("train", "query", "gallery"):
        items = getattr(ds, split)
        out[f"{split}_images"] = len(items)
        out[f"{split}_ids"] = len({p for _, p, _ in items})
    out["files_sha256"] = key[:16]
    out["content_sha256"] = _content_sha256(rows["train"])
    try:
        ds._identity_cache = (key, dict(out))
    except AttributeError:                      # a frozen or slotted stand-in: computed every time
        pass
    return out


def _content_sha256(files: list[tuple[str, str]]) -> str:
    """sha256 over each ``(name, path)``'s name and size and the bytes of up to :data:`CONTENT_SAMPLE` of them
    (evenly spaced); a file that cannot be read counts as absent (the image checks name it)."""
    h = hashlib.sha256()
    step = max(1, -(-len(files) // CONTENT_SAMPLE))
    for k, (name, path) in enumerate(files):
        try:
            size = os.path.getsize(path)
        except OSError:
            size = -1
        h.update(f"{name}\0{size}\n".encode())
        if k % step == 0 and size >= 0:
            try:
                with open(path, "rb") as fh:
                    h.update(hashlib.sha256(fh.read()).digest())
            except OSError:
                pass
    return h.hexdigest()[:16]


#: Stands for an init checkpoint that does not exist yet (a pipeline checks every stage folder before its
#: first stage has written the checkpoint a later stage starts from): the init is then not compared.
INIT_PENDING = "<not written yet>"


def checkpoint_fingerprint(path) -> dict[str, Any]:
    """What identifies a checkpoint another stage starts from (``pretrain(..., init=)``, ``adapt``'s
    ``init_checkpoint``): its stage, epoch, step, a sha256 of its own run identity and a sha256 of its model
    weights -- not its path, so a moved run folder still matches, while a retrained one does not. Computed
    once per file version in a process (a ladder checks every row against the same pretrained model)."""
    st = os.stat(path)
    key = (os.path.abspath(os.fspath(path)), st.st_size, st.st_mtime_ns, st.st_ino)
    if key not in _FINGERPRINTS:
        _FINGERPRINTS.clear()                   # one entry: the pretrained model of the current seed
        _FINGERPRINTS[key] = _fingerprint(path)
    return dict(_FINGERPRINTS[key])


_FINGERPRINTS: dict[tuple, dict[str, Any]] = {}


def _fingerprint(path) -> dict[str, Any]:
    import json

    import torch

    from .checkpoint import load_checkpoint
    state = load_checkpoint(path)
    h = hashlib.sha256()
    for key, value in sorted(state["model"].items()):
        h.update(key.encode())
        h.update(value.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    ident = json.dumps(state.get("identity"), sort_keys=True, default=str).encode()
    return {"stage": state.get("kind"), "epoch": int(state.get("epoch", -1)), "step": int(state.get("step", -1)),
            "identity_sha256": hashlib.sha256(ident).hexdigest()[:16], "weights_sha256": h.hexdigest()[:16]}


def run_identity(cfg_dict: Mapping[str, Any], stage: str,
                 datasets: Optional[Mapping[str, Any]] = None, init: Any = None,
                 ignore: Iterable[str] = ()) -> dict[str, Any]:
    """The identity stored in a checkpoint: ``{"stage", "config": {...}, "data": {name: {...}}, "init"}``.

    ``datasets`` maps a role (``"source"``, ``"target"``) to a :class:`~reid_uda_lib.data.ReidDataset`
    (or None when the role is absent). ``init``: the checkpoint the stage's weights start from (supervised fine-tuning's
    source-pretrained model), a path (fingerprinted by :func:`checkpoint_fingerprint`), None (random or
    ImageNet weights) or :data:`INIT_PENDING`. ``ignore``: config sections that do not define this stage.
    """
    data = {role: (dataset_identity(ds) if ds is not None else None) for role, ds in (datasets or {}).items()}
    if init is not None and init != INIT_PENDING:
        init = checkpoint_fingerprint(init)
    return {"stage": stage, "config": config_identity(cfg_dict, ignore), "data": data, "init": init}


def differences(saved: Mapping[str, Any], asked: Mapping[str, Any],
                defaults: Optional[Mapping[str, Any]] = None) -> list[str]:
    """``["seed: 0 in the checkpoint, 5 asked", ...]`` for every field that differs.

    A field the checkpoint does not know (added to the config after it was written) is accepted when it is
    asked at its default value (``defaults``, flattened). Old checkpoints without a recorded dataset
    identity are compared on the config only; a recorded one is compared on the fields it has, except the
    root path older checkpoints recorded (:data:`LEGACY_DATA_FIELDS`): a moved dataset is the same data.
    """
    defaults = defaults or {}
    diffs = []
    if saved.get("stage") != asked.get("stage"):
        diffs.append(f"stage: {saved.get('stage')!r} in the checkpoint, {asked.get('stage')!r} asked")
    s_cfg, a_cfg = saved.get("config", {}), asked.get("config", {})
    for key in sorted(set(s_cfg) | set(a_cfg)):
        if key not in s_cfg and key in defaults and a_cfg.get(key) == defaults[key]:
            continue
        if s_cfg.get(key, "<absent>") != a_cfg.get(key, "<absent>"):
            diffs.append(f"{key}: {_fmt(s_cfg.get(key, '<absent>'))} in the checkpoint, "
                         f"{_fmt(a_cfg.get(key, '<absent>'))} asked")
    s_init, a_init = saved.get("init"), asked.get("init")   # checkpoints older than "init": started from None
    # A UDA stage always starts from a checkpoint and records it since 2026-11; a UDA checkpoint with no
    # recorded init predates that, and its init cannot be checked (accepted, as before)
    legacy_uda = saved.get("stage") == "uda" and s_init is None
    if a_init != INIT_PENDING and s_init != a_init and not legacy_uda:
        diffs.append(f"init: {_fmt_init(s_init)} in the checkpoint, {_fmt_init(a_init)} asked")
    s_data = saved.get("data")
    if s_data is not None:
        a_data = asked.get("data", {})
        for role in sorted(set(s_data) | set(a_data)):
            s, a = s_data.get(role) or {}, a_data.get(role) or {}
            for key in sorted(set(s) | set(a)):
                if key in LEGACY_DATA_FIELDS or (s and a and key not in s):   # where it was; newer fields
                    continue
                if s.get(key) != a.get(key):
                    diffs.append(f"{role} data {key}: {_fmt(s.get(key))} in the checkpoint, {_fmt(a.get(key))} asked")
    return diffs


def _fmt_init(v: Any) -> str:
    if not isinstance(v, Mapping):
        return "no init checkpoint (trained from the model's own initial weights)"
    return (f"the {v.get('stage')} checkpoint of epoch {v.get('epoch')}, step {v.get('step')} "
            f"(weights {v.get('weights_sha256')})")


def _fmt(v: Any) -> str:
    return v if isinstance(v, str) and v else repr(v) if isinstance(v, str) else str(v)


def identity_of_state(state: Mapping[str, Any], stage: str, ignore: Iterable[str] = ()) -> dict[str, Any]:
    """The identity stored in a checkpoint, or one rebuilt from its config (checkpoints written before
    identities were recorded; their data cannot be compared)."""
    if isinstance(state.get("identity"), Mapping):
        ident = dict(state["identity"])
        # today's rules decide what counts: a field made resumable or a section ignored for this stage since
        # the checkpoint was written no longer makes it differ
        ignore = frozenset(ignore)
        ident["config"] = {k: v for k, v in ident.get("config", {}).items() if not _ignored(k, ignore)}
        return ident
    return {"stage": state.get("kind", stage), "config": config_identity(state.get("config", {}), ignore),
            "data": None}


def check_identity(state: Mapping[str, Any], asked: Mapping[str, Any], path, override: bool = False,
                   defaults: Optional[Mapping[str, Any]] = None, ignore: Iterable[str] = ()) -> list[str]:
    """Raise :class:`RunIdentityError` listing the differences unless ``override``; return them.

    ``defaults``: the config's default values (a nested dict, e.g. ``Config().to_dict()``); ``ignore``: the
    sections that do not define the stage (as given to :func:`run_identity`).
    """
    diffs = differences(identity_of_state(state, asked.get("stage", ""), ignore), asked,
                        flatten(defaults) if defaults else None)
    if diffs and not override:
        shown = "; ".join(diffs[:12]) + (f"; ... ({len(diffs) - 12} more)" if len(diffs) > 12 else "")
        raise RunIdentityError(
            f"{path} was made with other settings or data than asked ({shown}). Nothing was written. "
            "Use another output folder, ask the same settings, or pass --override-identity "
            "(override_identity=True) to continue it anyway")
    return diffs
