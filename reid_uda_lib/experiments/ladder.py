"""Running the ladder: one folder per seed, every stage reused or resumed, seeds in parallel processes.

Layout of ``--out``::

    <out>/seed<S>/pretrain/       the source-pretrained model of seed S (the "direct transfer" row); every
                                  other row of that seed starts from its checkpoint
    <out>/seed<S>/oracle/         SBase's loop with the target's true identities, from that checkpoint
                                  (methods/oracle.py)
    <out>/seed<S>/<method>/       one UDA run per method row
    <out>/seed<S>/timings.json    wall seconds spent training each row (updated after every epoch)
    <out>/seed<S>/pass_cache/     the passes every row's first epoch makes on the pretrained model (source
                                  prototypes, target BatchNorm statistics, features), made once and read by
                                  the seed's other rows with the same kernels (core/pass_cache.py)
    <out>/logs/seed<S>-<row>.log  with ``--jobs N``: the log of each process (a seed's pretraining, then
                                  one process per row)
    <out>/results.md, results.csv the table (experiments/report.py)

With ``jobs > 1`` the work is split into processes: first each seed's pretraining (with ``direct_bn``), then
every other row of that seed as its own process, up to ``jobs`` at once, the costliest first; a process runs
with one thread, except one that runs alone with nothing waiting (a single seed's pretraining), which gets
``jobs`` threads. Every stage runs with ``resume="auto"``: a finished stage is reused, a cut one continued from its last
checkpoint, a missing one trained; the run identity of every stage folder is checked before the first stage
of the first seed starts (settings, data, the init checkpoint), and each folder has its lock.
"""
from __future__ import annotations

import json
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Optional, Sequence

from ..config import Config
from ..data import ReidDataset, load_dataset
from ..train import adapt, pretrain
from ..runtime.checkpoint import atomic_write_text
from ..train.checks import preflight
from .folders import parse_seeds, seed_dir
from .rows import methods_of, parse_rows

#: the seed folder's shared first-epoch passes (core/pass_cache.py)
PASS_CACHE = "pass_cache"


def _stages(cfg: Config, source: ReidDataset, target: ReidDataset, folder: Path, rows: Sequence[str]):
    """``(folder, stage, config, datasets, init)`` of every stage a seed's rows need, in running order."""
    pre = folder / "pretrain"
    out = [(pre, "pretrain", cfg, {"source": source, "target": target}, None)]
    out += [(folder / m, "uda", cfg.override(**{"uda.method": m}), {"source": source, "target": target},
             pre / "checkpoint.pt") for m in methods_of(rows)]
    return out


def preflight_seed(cfg: Config, source: ReidDataset, target: ReidDataset, folder: str | Path,
                   rows: Sequence[str], override_identity: bool = False) -> set[str]:
    """Check every stage folder of one seed (reuse, identity, lock, config) without writing anything; return the
    rows whose stage is complete and would only be reused, from a complete pretraining (none when the pretraining
    is still to train: a row made from another pretraining is then refused when it starts)."""
    finished = {}
    for path, stage, stage_cfg, data, init in _stages(cfg, source, target, Path(folder), rows):
        finished[path.name] = preflight(path, stage, stage_cfg, "auto", data, override_identity, init=init)
    if not finished.pop("pretrain", False):
        return set()
    return {row for row, done in finished.items() if done}


class RowClock:
    """Wall seconds spent training each row of a seed, in ``<seed>/timings.json`` (atomic, after each epoch).

    A row's time is summed over the calls that trained it: a reused row adds nothing, a resumed one adds
    the epochs it ran (the part of an epoch cut by a kill is lost; the set-up before the first epoch of a
    call counts with that epoch). A row that ends its first epoch (``epoch`` 0) was trained from scratch, so
    its earlier time is dropped: a row folder deleted and trained again is not counted twice.
    """

    def __init__(self, folder: Path):
        self.path = folder / "timings.json"
        self.data = json.loads(self.path.read_text()) if self.path.is_file() else {}
        self.mark = time.time()

    def start(self, row: str):
        """Start timing ``row``; returns the ``on_epoch_end`` callback that books each epoch."""
        self.mark = time.time()

        def on_epoch_end(epoch: int, record: dict) -> None:
            now = time.time()
            with _file_lock(self.path.with_name(".timings.lock")):  # rows of one seed may run in parallel
                self.data = json.loads(self.path.read_text()) if self.path.is_file() else {}
                if int(epoch) == 0:                               # from scratch: forget an earlier run
                    self.data[row] = {"seconds": 0.0, "epochs": 0}
                entry = self.data.setdefault(row, {"seconds": 0.0, "epochs": 0})
                entry["seconds"] = round(entry["seconds"] + now - self.mark, 3)
                entry["epochs"] = int(epoch) + 1
                atomic_write_text(self.path, json.dumps(self.data, indent=2))
            self.mark = now
        return on_epoch_end


@contextmanager
def _file_lock(path: Path):
    """An exclusive advisory lock (``fcntl.flock``) around a read-modify-write of a small shared file; a no-op
    where ``fcntl`` does not exist (Windows: one process per seed folder there)."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def run_seed(cfg: Config, source: ReidDataset, target: ReidDataset, folder: str | Path,
             rows: Sequence[str], progress: bool = True, override_identity: bool = False) -> dict[str, dict]:
    """Train (or reuse) every row of one seed (``cfg.seed``) in ``folder``; return ``{row: stage summary}``.

    The pretrained model is trained first (the ``direct`` row); the oracle and every method start from it
    (``<folder>/<row>``).
    When another process has finished it, it is reused read-only (no lock: several rows of the seed can start
    from it at once; :class:`~reid_uda_lib.runtime.rundir.RunDir`).
    """
    folder = Path(folder)
    rows = parse_rows(rows)
    preflight_seed(cfg, source, target, folder, rows, override_identity)
    clock = RowClock(folder)
    ident = override_identity
    out = {"direct": pretrain(cfg, source, target, folder / "pretrain", resume="auto", progress=progress,
                              on_epoch_end=clock.start("direct"), override_identity=ident)}
    init = out["direct"]["checkpoint"]
    if "direct_bn" in rows:
        out["direct_bn"] = direct_bn_row(cfg, init, target, folder / "direct_bn", progress)
    for m in methods_of(rows):
        out[m] = adapt(cfg.override(**{"uda.method": m}), source, target, init, folder / m, resume="auto",
                       progress=progress, on_epoch_end=clock.start(m), override_identity=ident,
                       pass_cache=folder / PASS_CACHE)
    return out


def direct_bn_row(cfg: Config, checkpoint: str | Path, target: ReidDataset, folder: Path,
                  progress: bool = True) -> dict:
    """The pretrained model with BatchNorm statistics re-estimated on the target train images (AdaBN; the same
    ``uda.target_bn_images`` as the UDA rows), evaluated
    on the target test split; written to ``folder/summary.json`` (recomputed every time: seconds, no training,
    always consistent with the checkpoint)."""
    from ..core.bn_stats import bn_subset
    from ..train.evaluate_checkpoint import evaluate_checkpoint
    res = evaluate_checkpoint(checkpoint, target, device=cfg.device, progress=progress,
                              target_bn=bn_subset(target.train, cfg.uda.target_bn_images))
    summary = {"stage": "direct_bn", "checkpoint": str(checkpoint), "target": res}
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / "summary.json", json.dumps(summary, indent=2))
    return summary


def run_ladder(cfg: Config, source_dir: str | Path, target_dir: str | Path, out_dir: str | Path,
               seeds: str | Iterable[int] = (0,), rows: str | Iterable[str] | None = None, jobs: int = 1,
               progress: bool = True, verify: str = "none", override_identity: bool = False,
               command: Optional[str] = None, report: bool = True) -> dict:
    """Every row for every seed (``cfg`` with ``seed`` replaced), then ``results.md`` / ``results.csv``.

    ``jobs > 1`` runs up to that many processes at once (each seed's pretraining, then one per row; logs in
    ``<out>/logs/``): on a CPU with few cores that beats one multi-threaded process after another. Returns ``{"rows": ..., "table": markdown, "out": path}``
    (``report=False``: train only, return ``{}``). ``command`` is recorded in the report's header.
    """
    rows, seeds = parse_rows(rows), parse_seeds(seeds)
    if int(jobs) < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    out = Path(out_dir)
    source, target = load_dataset(source_dir, verify=verify), load_dataset(target_dir, verify=verify)
    cfgs = {s: cfg.override(seed=s) for s in seeds}
    finished = {}                         # every folder of every seed is checked before any work
    for s in seeds:
        finished[s] = preflight_seed(cfgs[s], source, target, seed_dir(out, s), rows, override_identity)
    if progress:
        print(source.summary())
        print(target.summary())
    started = time.time()
    from .report import git_commit
    commit = git_commit()               # the code that trains: a commit made during a long run must not be named
    if jobs > 1:
        from .parallel import run_parallel
        run_parallel(cfgs, source_dir, target_dir, out, rows, int(jobs), override_identity, progress,
                     finished=finished)
    else:
        for s in seeds:
            run_seed(cfgs[s], source, target, seed_dir(out, s), rows, progress, override_identity)
    if not report:
        return {}
    from .report import write_report
    return write_report(out, cfg, seeds, rows, n_target_train=len(target.train), command=command,
                        jobs=int(jobs), wall_seconds=time.time() - started,
                        datasets=(source, target), commit=commit)
