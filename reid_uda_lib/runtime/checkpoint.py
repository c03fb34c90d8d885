"""Atomic, resumable checkpoints.

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts, so it loads with
``torch.load(..., weights_only=True)`` (no pickled code runs). It is written to a temporary file in the
same folder and renamed over the old one, so a run killed mid-write (a Colab disconnect) always leaves the
previous complete checkpoint in place.
"""
from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

FORMAT = "reid_uda_lib/checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint file is missing, unreadable, or was written for another stage/model."""


class WriteError(OSError):
    """A file of the run folder could not be written (a full disk, a quota, a lost mount); the file it would have
    replaced is unchanged."""


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` atomically (temp file + ``os.replace``) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": FORMAT, "version": VERSION, **state}
    atomic_replace(path, lambda fh: torch.save(payload, fh), binary=True)
    return path


def atomic_replace(path: Path, write, binary: bool) -> None:
    """``write(file)`` into a temp file next to ``path``, fsync, give it the normal file mode (mkstemp makes
    0600), then rename it over ``path``; on any failure the temp file is removed and ``path`` is untouched."""
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb" if binary else "w") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except BaseException as err:
        if os.path.exists(tmp):
            os.remove(tmp)
        # a full disk: OSError (ENOSPC) from the file, or a RuntimeError from torch's C++ writer (inline_container.cc)
        if isinstance(err, (OSError, RuntimeError)) and not isinstance(err, WriteError):
            raise WriteError(_write_failure(path, err)) from err
        raise


def _write_failure(path: Path, err: BaseException) -> str:
    """One line: which file could not be written, why, the free space left, and that the old file is intact."""
    import shutil
    reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
    if isinstance(err, OSError) and err.strerror:
        reason = err.strerror
    try:
        free = f"; {shutil.disk_usage(path.parent).free / 2 ** 20:.0f} MiB free there"
    except OSError:
        free = ""
    kept = f"the previous {path.name} is unchanged" if path.exists() else f"no {path.name} was written"
    return (f"could not write {path} ({reason}{free}): {kept}; if the disk is full, free some space and run the "
            "same command again")


def file_mode() -> int:
    """The mode new files get under the current umask (``0o666 & ~umask``)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write_text(path: str | Path, text: str) -> bool:
    """Write ``text`` atomically (temp file + rename); a file that already holds it is left untouched.

    Returns True when the file was written.
    """
    path = Path(path)
    try:
        if path.read_text() == text:
            return False
    except (OSError, UnicodeDecodeError):
        pass
    atomic_replace(path, lambda fh: fh.write(text), binary=False)
    return True


def remove_orphan_temp_files(path: str | Path) -> list[Path]:
    """Delete ``<name>.*.tmp`` files next to ``path`` left by a process killed mid-write; return them."""
    path = Path(path)
    orphans = sorted(path.parent.glob(path.name + ".*.tmp"))
    for p in orphans:
        p.unlink(missing_ok=True)
    return orphans


def load_checkpoint(path: str | Path, kind: str | tuple[str, ...] | None = None,
                    map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint`.

    ``kind`` (e.g. ``"pretrain"`` or ``("pretrain", "uda")``) checks the stage that wrote it, so passing a
    UDA checkpoint where a pretrained source model is expected fails with a clear message.
    """
    path = Path(path)
    if path.is_dir():
        if not (path / "checkpoint.pt").is_file():
            raise CheckpointError(f"{path} is a folder without a checkpoint.pt; pass a run folder that holds "
                                  "one, or the checkpoint file itself")
        path = path / "checkpoint.pt"
    if not path.is_file():
        raise CheckpointError(f"checkpoint file not found: {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # truncated file, pickle of arbitrary objects, not a torch file at all
        reason = str(err)
        if "weights_only" in reason:  # torch's advice to unpickle arbitrary code does not apply here
            reason = "the file holds objects other than tensors and plain containers (not a checkpoint)"
        raise CheckpointError(f"cannot read checkpoint {path}: {type(err).__name__}: {reason}. "
                              "Expected a file written by reid_uda_lib (torch.save of a plain dict).") from err
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a reid_uda_lib checkpoint (no '{FORMAT}' format tag); "
                              "to start from ImageNet or torchvision weights use model.weights instead")
    if state.get("version") != VERSION:
        raise CheckpointError(f"{path} has checkpoint version {state.get('version')}, this library reads "
                              f"version {VERSION}")
    kinds = (kind,) if isinstance(kind, str) else kind
    if kinds is not None and state.get("kind") not in kinds:
        raise CheckpointError(f"{path} was written by the '{state.get('kind')}' stage, expected "
                              f"{' or '.join(repr(k) for k in kinds)}")
    return state


def load_weights(module: torch.nn.Module, weights: dict, path: str | Path, what: str = "model") -> None:
    """``module.load_state_dict(weights)``, with a one-line :class:`CheckpointError` naming ``path`` and the first
    differing keys when they do not fit (torch's own message lists every key, over many lines)."""
    try:
        module.load_state_dict(weights)
    except RuntimeError as err:
        own = module.state_dict()
        missing = [k for k in own if k not in weights]
        extra = [k for k in weights if k not in own]
        shapes = [f"{k} {tuple(weights[k].shape)} in the file, {tuple(own[k].shape)} here" for k in own
                  if k in weights and hasattr(weights[k], "shape") and weights[k].shape != own[k].shape]
        parts = [f"{len(missing)} missing (first: {missing[0]})" if missing else "",
                 f"{len(extra)} unexpected (first: {extra[0]})" if extra else "",
                 f"{len(shapes)} of another shape (first: {shapes[0]})" if shapes else ""]
        detail = "; ".join(x for x in parts if x) or str(err).splitlines()[0]
        raise CheckpointError(f"the {what} weights in {path} do not fit the {what} that its config describes "
                              f"({detail}); was the checkpoint's config edited, or written by another version?"
                              ) from None


def check_model_config(state: dict, model_cfg: dict, path: str | Path) -> None:
    """Fail early when a checkpoint's architecture differs from the one the config asks for."""
    saved = state.get("config", {}).get("model", {})
    if saved.get("arch") != model_cfg.get("arch"):
        raise CheckpointError(f"checkpoint {path} holds a '{saved.get('arch')}' model but the config asks for "
                              f"'{model_cfg.get('arch')}' (set model.arch={saved.get('arch')})")


# -- RNG state: kept as tensors / python numbers so weights_only loading accepts it ------------------

def rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy_keys": torch.from_numpy(np_state[1].astype(np.int64)),
        "numpy_rest": [int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "python": _to_lists(random.getstate()),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"].cpu())
    rest = state["numpy_rest"]
    np.random.set_state(("MT19937", state["numpy_keys"].numpy().astype(np.uint32), rest[0], rest[1], rest[2]))
    random.setstate(_to_tuples(state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _to_lists(x):
    return [_to_lists(v) for v in x] if isinstance(x, tuple) else x


def _to_tuples(x):
    return tuple(_to_tuples(v) for v in x) if isinstance(x, list) else x
