"""The run directory: config, metrics log, checkpoint, summary and figures of one training stage.

    <run>/config.json      the full configuration (written with each checkpoint, so it always describes one)
    <run>/metrics.jsonl    one record per epoch (losses, lr, mAP/CMC, pseudo-label quality)
    <run>/checkpoint.pt    the latest complete epoch (atomic; enough to resume exactly) and the run identity
    <run>/summary.json     final metrics
    <run>/figures/         curves.png
    <run>/.lock            while a process writes into the folder (pid, host, start time)

Everything that can refuse a reuse (an existing checkpoint without ``resume``, ``resume=True`` without one,
another identity, a lock held by another process) is checked before the first byte is written, and a stage
that stops before its first checkpoint (a refusal, an error, Ctrl-C) leaves nothing behind: the folders it
created are removed with its lock (:class:`~reid_uda_lib.runtime.lock.RunLock`). A stage that is already
complete (its last epoch checkpointed, evaluated and logged, ``summary.json`` written) is reused **read-only**: no lock is taken
and nothing is written, so several processes can start from the same finished stage at once (the ladder's
rows, two notebooks on one run folder).
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Optional

from ..config import Config
from .checkpoint import (CheckpointError, atomic_write_text, check_model_config, load_checkpoint,
                         remove_orphan_temp_files, save_checkpoint, set_rng_state)
from . import distributed as ddp
from .provenance import check_identity, run_identity
from .machine import kernel_change, kernel_signature
from .lock import LOCK_NAME, RunLock
from .runlog import MetricsLog, _clean, format_record


class RunDir:
    def __init__(self, out_dir: str | Path, stage: str, cfg: Config, resume: bool | str,
                 datasets: Optional[Mapping[str, Any]] = None, override_identity: bool = False,
                 init: Optional[str | Path] = None, ignore: Iterable[str] = ()):
        """``resume``: False (refuse to touch an existing checkpoint), True (continue it; an error when there is
        none, e.g. a typo in the folder: the CLI's ``--resume``) or ``"auto"`` (continue it if present, else
        start fresh, quietly; the CLI's ``--resume auto``, the pipeline and the notebooks). One plain line says
        what happened: "reused <run>, made by preset ci, seed 0" or "continuing <run> from epoch N of M" here,
        "trained <run> (...)" in :meth:`finish`.

        ``datasets`` (``{"source": ds, "target": ds}``) enter the run identity; a checkpoint made with
        another identity is refused unless ``override_identity``. ``init``: the checkpoint the stage starts
        from (``pretrain(..., init=)``, ``adapt``'s source-pretrained model), also part of the identity:
        a folder trained from another checkpoint (a retrained pretraining) is refused.
        :data:`~reid_uda_lib.runtime.provenance.INIT_PENDING` (a resume that does not name it) keeps the
        recorded one. ``ignore``: the config sections that do not define this stage
        (:func:`reid_uda_lib.methods.stage_ignores`). The config is validated by the caller, where the run
        starts (:func:`reid_uda_lib.methods.validate.validate_config`).

        Under torchrun only rank 0 opens the folder (checks, lock, log, config) and writes; the other processes
        get its verdict (or its error), read the checkpoint to resume and write nothing.
        """
        self.root = Path(out_dir)
        self.stage = stage
        self.cfg = cfg
        self.checkpoint = self.root / "checkpoint.pt"
        self.ignore = frozenset(ignore)
        self.identity = run_identity(cfg.to_dict(), stage, datasets, init=init, ignore=self.ignore)
        self.resume_state: dict[str, Any] | None = None
        self.pending: dict[str, Any] | None = None
        self.trained = False
        self.writer = ddp.is_main()
        self.log: Optional[MetricsLog] = None           # rank 0's, made in _open
        self.lock: Optional[RunLock] = None
        self.read_only = False                          # a complete stage reused without lock or writes
        resumed, self.pending = ddp.on_rank0(lambda: self._open(resume, override_identity))
        from .provenance import INIT_PENDING
        if self.identity.get("init") == INIT_PENDING and self.resume_state is not None:
            # resumed without naming the init checkpoint: keep the one the run recorded
            self.identity["init"] = (self.resume_state.get("identity") or {}).get("init")
        if not self.writer and resumed:
            self.resume_state = load_checkpoint(self.checkpoint, kind=stage)
        self.start_epoch = self.resume_state["epoch"] + 1 if self.resume_state else 0
        # the kernels that computed the checkpoint's weights (None: none yet, or written before they were recorded)
        self.weights_kernels: Optional[dict] = (self.resume_state or {}).get("kernels")

    def _open(self, resume: bool | str, override_identity: bool) -> tuple[bool, Optional[dict]]:
        """Check the folder, take the lock, prepare the log (rank 0); returns (resuming?, pending record)."""
        if self.root.exists() and not self.root.is_dir():
            raise NotADirectoryError(f"run directory {self.root} exists and is not a folder")
        if self._reuse_read_only(resume, override_identity):
            print(self._resume_line(), flush=True)
            return True, None
        created = _missing_dirs(self.root)      # removed again if the stage stops before writing anything
        self.root.mkdir(parents=True, exist_ok=True)
        self.lock = RunLock(self.root, created=created).acquire()
        try:
            self.log = MetricsLog(self.root / "metrics.jsonl")
            self.resume_state = check_reuse(self.root, self.stage, self.cfg, resume, self.identity,
                                            override_identity, self.ignore)
            self.start_epoch = self.resume_state["epoch"] + 1 if self.resume_state else 0
            records = self.log.read()            # a torn last line is dropped here, with a warning
        except BaseException:
            self.lock.release()
            raise
        if self.resume_state is not None:
            print(self._resume_line(), flush=True)
            change = self._kernel_change(threads=not self._finished())
            if change:
                warnings.warn(f"continuing {self.root} with other kernels than the ones that trained it ({change}): "
                              "the result will differ from an uninterrupted run's (README, \"Numbers across CPU "
                              "types\")")
        # -- from here on the folder is ours: write --
        remove_orphan_temp_files(self.checkpoint)
        self.log.truncate(self.stage, self.start_epoch, records)
        saved = (self.resume_state or {}).get("record")
        pending = None
        if saved is not None and not any(r.get("stage") == self.stage and r.get("epoch") == saved.get("epoch")
                                         for r in records):
            pending = dict(saved)           # checkpoint written, evaluation/log of that epoch not done
        # config.json is written with each checkpoint (save): a run that never checkpoints leaves none
        return self.resume_state is not None, pending

    def _reuse_read_only(self, resume: bool | str, override_identity: bool) -> bool:
        """True when the folder holds this stage complete: every epoch checkpointed, the last one's record
        logged, ``summary.json`` written, and no other live process holding the lock. Then nothing more is
        written (not even the lock); anything short of that, a lock file in the folder, or something a kill left
        to repair (a torn log line, a temporary checkpoint) goes through the locked path."""
        found = finished_state(self.root, self.stage, self.cfg, resume, self.identity, override_identity, self.ignore)
        if found is None:
            return False
        state, self.log = found
        self.resume_state, self.read_only = state, True
        self.start_epoch = int(state["epoch"]) + 1
        return True

    def restore(self, **components: Any) -> int:
        """Load each ``name=obj`` (anything with ``load_state_dict``) from the resumed checkpoint, restore the
        RNG states, and return the global step; returns 0 when there is nothing to resume."""
        if self.resume_state is None:
            return 0
        for name, obj in components.items():
            if obj is not None:
                try:
                    obj.load_state_dict(self.resume_state[name])
                except (RuntimeError, KeyError, ValueError) as err:
                    raise CheckpointError(
                        f"the '{name}' state in {self.checkpoint} does not fit this run (were the data or "
                        f"the model changed?): {str(err).splitlines()[0]}") from err
        set_rng_state(self.resume_state["rng"])
        return int(self.resume_state["step"])

    def save(self, state: dict[str, Any], record: Optional[dict] = None) -> None:
        """Write the checkpoint atomically with the run identity (and the epoch's record, not yet logged)."""
        self.trained = True
        if not self.writer:
            return
        # plain JSON types only, so the checkpoint still loads with weights_only=True
        extra = {"record": json.loads(json.dumps(_clean(record), default=float))} if record is not None else {}
        self.weights_kernels = self.kernels()
        save_checkpoint(self.checkpoint, {"kind": self.stage, "config": self.cfg.to_dict(),
                                          "identity": self.identity, "kernels": self.weights_kernels, **extra,
                                          **state})
        atomic_write_text(self.root / "config.json", self.cfg.to_json())   # describes the checkpoint

    def end_epoch(self, state: dict[str, Any], record: dict, evaluate: Callable[[int], dict]) -> dict:
        """Checkpoint first, then ``evaluate(epoch)`` (merged into ``record``), then log and print it.

        A failing evaluation (a bad query image) therefore never costs the epoch just trained: the resumed
        run evaluates it again (:meth:`complete_pending`).
        """
        self.save(state, record)
        return self._log(record, evaluate)

    def complete_pending(self, evaluate: Callable[[int], dict]) -> Optional[dict]:
        """Evaluate and log the resumed checkpoint's epoch when its evaluation did not complete."""
        if self.pending is None:
            return None
        record, self.pending = self.pending, None
        return self._log(record, evaluate)

    def _log(self, record: dict, evaluate: Callable[[int], dict]) -> dict:
        record.update(evaluate(int(record["epoch"])))
        self.trained = True
        if self.writer:
            self.log.write(record)
            print(format_record(record), flush=True)
        return record

    def kernels(self) -> dict:
        """The kernels this process computes the run with (``runtime/machine.py``), recorded in each checkpoint
        and in ``summary.json``."""
        from ..utils import resolve_device
        return kernel_signature(resolve_device(self.cfg.device))

    def _kernel_change(self, threads: bool = True) -> Optional[str]:
        return kernel_change((self.resume_state or {}).get("kernels"), self.kernels(), threads=threads)

    def _finished(self) -> bool:
        epochs = getattr(getattr(self.cfg, self.stage, None), "epochs", None)
        return epochs is not None and self.start_epoch >= epochs

    def _resume_line(self) -> str:
        """The one plain line said when a checkpoint is found: reused as it is, or continued; it names a change
        of kernels since the checkpoint was written."""
        made = self.resume_state.get("config") or {}
        made_by = f"made by preset {made.get('preset', '?')}, seed {made.get('seed', '?')}"
        epochs = getattr(getattr(self.cfg, self.stage, None), "epochs", None)
        change = self._kernel_change(threads=not self._finished())  # a finished stage is only read: threads aside
        if change:
            made_by += f"; trained with other kernels: {change}"
        if self._finished():
            return f"reused {self.root}, {made_by}"
        of = f" of {epochs}" if epochs is not None else ""
        return f"continuing {self.root} from epoch {self.start_epoch + 1}{of} ({made_by})"

    def finish(self, summary: dict[str, Any]) -> dict[str, Any]:
        """Write ``summary.json`` and the curves (unchanged files are not rewritten), release the lock; say
        "trained <run>" when this call trained it from scratch. Only rank 0 writes; a read-only reuse writes
        nothing (its summary and curves are already there)."""
        if not self.writer or self.read_only:
            return summary
        if self.resume_state is None:
            print(f"trained {self.root} (preset {self.cfg.preset}, seed {self.cfg.seed})", flush=True)
        try:
            # the kernels of the last checkpoint (the final weights): this process's if it trained
            kernels = {"kernels": self.weights_kernels} if self.weights_kernels else {}
            atomic_write_text(self.root / "summary.json", json.dumps({**summary, **kernels}, indent=2))
            figure = self.root / "figures" / "curves.png"
            if self.trained or not figure.exists():
                try:
                    from ..viz.curves import plot_curves
                    plot_curves(self.log.read(), figure, title=f"{self.stage}: {self.root.name}")
                except Exception as err:  # a figure must never cost a finished run
                    warnings.warn(f"could not draw the training curves: {err}")
        finally:
            self.lock.release()
        return summary

    def last_record(self) -> dict:
        """The last logged record of this stage ({} when none; rank 0's under torchrun)."""
        if ddp.is_distributed():
            return ddp.on_rank0(self._last_record)
        return self._last_record()

    def _last_record(self) -> dict:
        records = [r for r in self.log.read() if r.get("stage") == self.stage]
        return records[-1] if records else {}



def interrupted_line(stage: str | Path, earlier: Optional[str | Path] = None) -> str:
    """The one line the CLI says on Ctrl-C: the checkpoint ``stage`` (a run folder) can be resumed from and the
    command that does it; ``earlier``: the folder of a stage that runs before it (``train``'s pretraining)."""
    stage, ckpt = Path(stage), Path(stage) / "checkpoint.pt"
    if ckpt.is_file():
        return (f"interrupted: {stage} can be resumed from {ckpt} ({_epochs_done(ckpt)}): run the same command with "
                "--resume")
    if earlier is not None and (Path(earlier) / "checkpoint.pt").is_file():
        return (f"interrupted before the first checkpoint of {stage}; the pretraining in {earlier} is kept "
                f"({_epochs_done(Path(earlier) / 'checkpoint.pt')}): run the same command again (with or without "
                "--resume) to continue from it")
    return f"interrupted before the first checkpoint of {stage}: nothing was kept; run the same command again"


def _epochs_done(checkpoint: Path) -> str:
    try:
        return f"{int(load_checkpoint(checkpoint)['epoch']) + 1} epoch(s) done"
    except BaseException:          # a second Ctrl-C, an unreadable file: the path alone is said
        return "its last complete epoch"


def _missing_dirs(path: Path) -> list[Path]:
    """``path`` and its ancestors that do not exist yet, deepest first (what ``mkdir(parents=True)`` creates)."""
    out = []
    while not path.exists() and path != path.parent:
        out.append(path)
        path = path.parent
    return out


def _log_intact(path: Path) -> bool:
    """The metrics log exists and ends with a complete line (a kill during an append leaves a torn one)."""
    try:
        data = path.read_bytes()
    except OSError:
        return False
    return not data or data.endswith(b"\n")


def _untouched_complete(root: Path, stage: str, cfg: Config, resume: bool | str) -> bool:
    """The files of a complete stage that no process is writing: a checkpoint, ``summary.json``, no lock file, no
    temporary checkpoint, an intact log (the checkpoint's contents are :func:`_reusable_log`'s to check)."""
    epochs = getattr(getattr(cfg, stage, None), "epochs", None)
    checkpoint = root / "checkpoint.pt"
    if not resume or epochs is None or not checkpoint.is_file() or not (root / "summary.json").is_file():
        return False
    if (root / LOCK_NAME).exists():                 # a writer, or a stale lock: the locked path refuses or
        return False                                # takes it over, as for any stage
    # a kill left something to repair: the locked path does it
    return not any(root.glob(checkpoint.name + ".*.tmp")) and _log_intact(root / "metrics.jsonl")


def _reusable_log(root: Path, stage: str, cfg: Config, state: Optional[dict]) -> Optional[MetricsLog]:
    """The stage's log when ``state`` (its checkpoint) holds the last epoch and that epoch's record is logged."""
    epochs = getattr(getattr(cfg, stage, None), "epochs", None)
    if state is None or epochs is None or int(state["epoch"]) + 1 < int(epochs):
        return None
    log = MetricsLog(root / "metrics.jsonl")
    saved = state.get("record")
    if saved is not None and not any(r.get("stage") == stage and r.get("epoch") == saved.get("epoch")
                                     for r in log.read()):
        return None                                 # its last evaluation is pending: the locked path does it
    return log


def finished_state(root: str | Path, stage: str, cfg: Config, resume: bool | str, identity: Mapping[str, Any],
                   override_identity: bool = False, ignore: Iterable[str] = ()) -> Optional[tuple[dict, MetricsLog]]:
    """``(checkpoint state, metrics log)`` when ``root`` holds ``stage`` complete, to be reused read-only: every
    epoch checkpointed, the last one's record logged, ``summary.json`` written, no lock file, nothing a kill left to
    repair, and the identity and settings :func:`check_reuse` asks for (it raises where it would); else None.
    Writes nothing (:class:`RunDir` reuses such a folder without its lock; :func:`preflight` says so, and the
    ladder's parent process then starts no process for the row)."""
    root = Path(root)
    if not _untouched_complete(root, stage, cfg, resume):
        return None
    state = check_reuse(root, stage, cfg, resume, identity, override_identity, ignore)
    log = _reusable_log(root, stage, cfg, state)
    return None if log is None else (state, log)


def check_reuse(out_dir: str | Path, stage: str, cfg: Config, resume: bool | str, identity: Mapping[str, Any],
                override_identity: bool = False, ignore: Iterable[str] = ()) -> Optional[dict[str, Any]]:
    """Read-only check that ``out_dir`` may be used for this stage; return the checkpoint to resume (or None).

    Raises ``FileExistsError`` for a checkpoint without ``resume``, ``FileNotFoundError`` for ``resume=True``
    without a checkpoint, :class:`CheckpointError` for another stage or model,
    :class:`~reid_uda_lib.runtime.provenance.RunIdentityError` for other settings or data.
    """
    checkpoint = Path(out_dir) / "checkpoint.pt"
    if not checkpoint.exists():
        if resume is True:
            raise FileNotFoundError(
                f"nothing to resume in {out_dir}: {checkpoint} does not exist (a typo in --out?); pass --resume "
                "auto (resume='auto') to continue a checkpoint when there is one and start fresh otherwise")
        return None
    if not resume:
        raise FileExistsError(
            f"run directory {out_dir} already holds a checkpoint; pass resume=True (CLI: --resume) to continue "
            "it, or choose another output directory (nothing is overwritten)")
    state = load_checkpoint(checkpoint, kind=stage)
    check_model_config(state, cfg.to_dict()["model"], checkpoint)
    if state.get("method") not in (None, cfg.uda.method):     # UDA checkpoints name their method
        raise CheckpointError(f"{checkpoint} was written by method '{state['method']}', not '{cfg.uda.method}': "
                              "their modules and losses differ, so it cannot be continued as another method (not "
                              "even with --override-identity); use its own --method or another output folder")
    check_identity(state, identity, checkpoint, override_identity, defaults=type(cfg)().to_dict(), ignore=ignore)
    return state


def preflight(out_dir: str | Path, stage: str, cfg: Config, resume: bool | str,
              datasets: Optional[Mapping[str, Any]] = None, override_identity: bool = False,
              init: Optional[str | Path] = None, ignore: Iterable[str] = ()) -> bool:
    """Everything :class:`RunDir` would refuse, checked without writing (the CLI and the pipeline check
    every stage of a run before the first one starts); also a lock held by another live process.
    An ``init`` checkpoint that does not exist yet (made by an earlier stage of the same pipeline) is not
    compared here; :class:`RunDir` compares it when the stage starts. The config is the caller's to validate
    (:func:`reid_uda_lib.train.preflight` does both). Returns True when the stage is complete and would be
    reused read-only (:func:`finished_state`), False when it would be trained or continued."""
    from .provenance import INIT_PENDING
    if init is not None and not Path(init).is_file():
        init = INIT_PENDING
    root = Path(out_dir)
    state = check_reuse(root, stage, cfg, resume, run_identity(cfg.to_dict(), stage, datasets, init=init,
                                                               ignore=ignore), override_identity, ignore)
    if _untouched_complete(root, stage, cfg, resume) and _reusable_log(root, stage, cfg, state) is not None:
        return True                                 # as finished_state, with the checkpoint read once
    RunLock(out_dir).check()
    return False
