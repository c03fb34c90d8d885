"""The ladder's work in parallel processes (``--jobs N``): each seed's pretraining, then one process per row.

Every row of a seed starts from that seed's pretrained model, so the work is a small graph: the pretraining
item of seed S (the ``direct`` row, with ``direct_bn``) must finish before the row items of seed S start.
Up to ``jobs`` items run at once, each ``python -m reid_uda_lib.experiments.worker <job file>``:

* ready pretraining items first (they unblock the rows), then the rows, the costliest first (their registry entries' ``cost``),
  so that the last process to finish is a short one;
* one thread per process (``OMP_NUM_THREADS=1``: on a CPU with few cores, two single-threaded processes
  beat one two-threaded process), except an item that starts alone with nothing else waiting (one seed's
  pretraining, in ``make demo``), which gets ``jobs`` threads;
* each item's output in ``<out>/logs/seed<S>-<row>.log``; with ``progress`` the parent relays every line,
  prefixed with the item (``[seed0 sbase] [uda] epoch 1 | ...``);
* the processes end with the parent, however it ends (Ctrl-C, SIGKILL, a closed notebook kernel): each worker
  arms a death signal (:func:`reid_uda_lib.experiments.worker.die_with_parent`), so no row keeps training as an
  orphan; a stopped row keeps its last complete checkpoint and releases its lock.

A failed item stops the items that depend on it; the others finish, and running the same command again
resumes (every stage is reused or continued).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

from ..config import Config
from ..runtime.checkpoint import atomic_write_text
from .rows import methods_of, row_cost
from .folders import LadderError, seed_dir

#: The environment variable that gives each worker its parent's pid (:func:`~.worker.die_with_parent`).
PARENT_ENV = "REID_UDA_PARENT_PID"

#: Relative training cost of a row's process (SBase = 1; measured with the cpu preset, one thread per process,
#: `runs/ladder-cpu6` s/row: SBase 118 s, SBase+DCDFA 123, LF² 121, the oracle 125, LF²+DCDFA 158, lf2_base 96,
#: lf2_nofm 97). Only the order of the queue depends on it: the costliest first, so that with the demo's four
#: rows on two processes the oracle and SBase+DCDFA start together and the two shorter rows follow (two chains
#: of ~245 s instead of 235 and 254).

@dataclass
class Item:
    """One process of the ladder: ``rows`` of ``seed``; ``pretraining``: the seed's pretraining item."""
    seed: int
    rows: list[str]
    pretraining: bool
    name: str
    cost: float = 1.0
    proc: Optional[subprocess.Popen] = None
    log: Optional[Path] = None
    offset: int = 0
    started: float = 0.0
    threads: int = 1
    partial: bytes = field(default=b"", repr=False)


def plan_items(seeds: Sequence[int], rows: Sequence[str]) -> list[Item]:
    """The items of a ladder: per seed, its pretraining (with ``direct_bn`` when asked), then one per other row."""
    items = []
    for s in seeds:
        items.append(Item(s, ["direct"] + (["direct_bn"] if "direct_bn" in rows else []), True,
                          f"seed{s}-pretrain", cost=float("inf")))
        for r in methods_of(rows):
            items.append(Item(s, [r], False, f"seed{s}-{r}", cost=row_cost(r)))
    return items


def next_ready(pending: list[Item], done: set[int]) -> Optional[Item]:
    """The next item to start: a pretraining first, else the costliest row whose seed is pretrained."""
    ready = [it for it in pending if it.pretraining or it.seed in done]
    if not ready:
        return None
    return max(ready, key=lambda it: (it.pretraining, it.cost))


def threads_for(running: Sequence[Item], pending: list[Item], pretrained: set[int], jobs: int) -> int:
    """Threads of an item about to start (already taken out of ``pending``): ``jobs`` (at most the machine's
    CPUs) when it runs alone and nothing else could start now (one seed's pretraining), else 1."""
    alone = not running and next_ready(pending, pretrained) is None
    return max(1, min(jobs, os.cpu_count() or 1)) if alone else 1


def run_parallel(cfgs: dict[int, Config], source_dir, target_dir, out: Path, rows: Sequence[str], jobs: int,
                 override_identity: bool, progress: bool = True,
                 finished: Optional[dict[int, set[str]]] = None) -> None:
    """Run every item of the ladder, up to ``jobs`` processes at once (see the module docstring).

    ``finished``: ``{seed: rows}`` whose stages the caller's preflight found complete
    (:func:`~reid_uda_lib.experiments.ladder.preflight_seed`): they start no process (a process would only
    import, check and reuse them: 10-40 s each on a 2-core CPU), and the report reads their folders as they are.
    A seed's pretraining item always runs (it recomputes ``direct_bn``)."""
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    package_root = str(Path(__file__).resolve().parents[2])      # the children import this same package
    base_env = {**os.environ, PARENT_ENV: str(os.getpid()),      # the children end when this process ends
                "PYTHONPATH": os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)}
    pending = plan_items(list(cfgs), rows)
    skip = [it for it in pending if not it.pretraining and it.rows[0] in (finished or {}).get(it.seed, ())]
    for item in skip:
        pending.remove(item)
    if skip:
        print(f"{len(skip)} finished row{'s' if len(skip) > 1 else ''} reused without a process: "
              + ", ".join(it.name for it in skip), flush=True)
    running: list[Item] = []
    pretrained: set[int] = set()
    failed: list[Item] = []
    try:
        while pending or running:
            while len(running) < jobs:
                item = next_ready(pending, pretrained)
                if item is None:
                    break
                pending.remove(item)
                item.threads = threads_for(running, pending, pretrained, jobs)
                _start(item, cfgs[item.seed], source_dir, target_dir, out, override_identity, base_env, progress)
                running.append(item)
            time.sleep(0.2)
            for item in list(running):
                if progress:
                    _relay(item)
                if item.proc.poll() is None:
                    continue
                running.remove(item)
                if progress:
                    _relay(item, final=True)
                ok = item.proc.returncode == 0
                secs = time.time() - item.started
                print(f"{item.name}: {'done' if ok else f'FAILED (exit code {item.proc.returncode})'} "
                      f"after {secs:.0f} s", flush=True)
                if ok and item.pretraining:
                    pretrained.add(item.seed)
                elif not ok:
                    failed.append(item)
                    if item.pretraining:          # its rows cannot start
                        pending = [it for it in pending if it.seed != item.seed]
    except BaseException:
        for item in running:                      # Ctrl-C: stop the children; their finished epochs stay
            item.proc.terminate()
        raise
    if failed:
        raise LadderError(f"{', '.join(it.name for it in failed)} failed; see "
                          + ", ".join(str(it.log) for it in failed)
                          + ". The other stages are kept; run the same command again to resume.")


def _start(item: Item, cfg: Config, source_dir, target_dir, out: Path, override_identity: bool, base_env: dict,
           progress: bool) -> None:
    folder = seed_dir(out, item.seed)
    folder.mkdir(parents=True, exist_ok=True)
    job = out / "logs" / f"{item.name}.json"
    atomic_write_text(job, json.dumps({"config": cfg.to_dict(), "source": str(source_dir),
                                       "target": str(target_dir), "folder": str(folder), "rows": item.rows,
                                       "threads": item.threads,
                                       "override_identity": override_identity}, indent=2, default=list))
    item.log = out / "logs" / f"{item.name}.log"
    item.offset = item.log.stat().st_size if item.log.exists() else 0
    threads = str(item.threads)
    env = {**base_env, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
    print(f"{item.name}: running ({item.threads} thread{'s' if item.threads > 1 else ''}), log in {item.log}",
          flush=True)
    item.started = time.time()
    with open(item.log, "ab") as fh:
        item.proc = subprocess.Popen([sys.executable, "-m", "reid_uda_lib.experiments.worker", str(job)],
                                     stdout=fh, stderr=subprocess.STDOUT, env=env)


def _relay(item: Item, final: bool = False) -> None:
    """Print the item's new complete log lines with its name in front (the rest at the end)."""
    try:
        with open(item.log, "rb") as fh:
            fh.seek(item.offset)
            data = fh.read()
    except OSError:
        return
    item.offset += len(data)
    text = item.partial + data
    lines = text.split(b"\n")
    item.partial = b"" if final else lines.pop()
    for line in lines:
        line = line.rstrip(b"\r")
        if line.strip():
            print(f"[{item.name}] {line.decode(errors='replace')}", flush=True)
