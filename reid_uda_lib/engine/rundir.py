"""The run directory: config, metrics log, checkpoint, summary and figures of one training stage.

    <run>/config.json      the full configuration
    <run>/metrics.jsonl    one record per epoch (losses, lr, mAP/CMC, pseudo-label quality)
    <run>/checkpoint.pt    the latest complete epoch (atomic; enough to resume exactly)
    <run>/summary.json     final metrics
    <run>/figures/         curves.png
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

from ..config import Config
from .checkpoint import check_model_config, load_checkpoint, save_checkpoint, set_rng_state
from .runlog import MetricsLog


class RunDir:
    def __init__(self, out_dir: str | Path, stage: str, cfg: Config, resume: bool | str):
        """``resume``: False (refuse to touch an existing checkpoint), True (continue it; warn if there is
        none: the CLI's ``--resume``) or ``"auto"`` (continue it if present, else start fresh, quietly; used
        by the pipeline and the notebooks). One plain line says what happened: "reused <run>, made by preset
        ci, seed 0" or "continuing <run> from epoch N of M" here, "trained <run> (...)" in :meth:`finish`."""
        self.root = Path(out_dir)
        self.stage = stage
        self.cfg = cfg
        self.checkpoint = self.root / "checkpoint.pt"
        self.log = MetricsLog(self.root / "metrics.jsonl")
        self.resume_state: dict[str, Any] | None = None
        if self.checkpoint.exists():
            if not resume:
                raise FileExistsError(
                    f"run directory {self.root} already holds a checkpoint; pass resume=True (CLI: --resume) "
                    "to continue it, or choose another output directory (nothing is overwritten)")
            self.resume_state = load_checkpoint(self.checkpoint, kind=stage)
            check_model_config(self.resume_state, cfg.to_dict()["model"], self.checkpoint)
        elif resume is True:
            warnings.warn(f"--resume given but {self.checkpoint} does not exist yet: starting from epoch 0")
        self.start_epoch = self.resume_state["epoch"] + 1 if self.resume_state else 0
        if self.resume_state is not None:
            print(self._resume_line(), flush=True)
        self.root.mkdir(parents=True, exist_ok=True)
        self.log.truncate(stage, self.start_epoch)
        (self.root / "config.json").write_text(cfg.to_json())

    def restore(self, **components: Any) -> int:
        """Load each ``name=obj`` (anything with ``load_state_dict``) from the resumed checkpoint, restore the
        RNG states, and return the global step; returns 0 when there is nothing to resume."""
        if self.resume_state is None:
            return 0
        for name, obj in components.items():
            if obj is not None:
                obj.load_state_dict(self.resume_state[name])
        set_rng_state(self.resume_state["rng"])
        return int(self.resume_state["step"])

    def save(self, state: dict[str, Any]) -> None:
        save_checkpoint(self.checkpoint, {"kind": self.stage, "config": self.cfg.to_dict(), **state})

    def _resume_line(self) -> str:
        """The one plain line said when a checkpoint is found: reused as it is, or continued."""
        made = self.resume_state.get("config") or {}
        made_by = f"made by preset {made.get('preset', '?')}, seed {made.get('seed', '?')}"
        epochs = getattr(getattr(self.cfg, self.stage, None), "epochs", None)
        if epochs is not None and self.start_epoch >= epochs:
            return f"reused {self.root}, {made_by}"
        of = f" of {epochs}" if epochs is not None else ""
        return f"continuing {self.root} from epoch {self.start_epoch + 1}{of} ({made_by})"

    def finish(self, summary: dict[str, Any]) -> dict[str, Any]:
        """Write ``summary.json`` and the curves; say "trained <run>" when this call trained it from scratch."""
        (self.root / "summary.json").write_text(json.dumps(summary, indent=2))
        if self.resume_state is None:
            print(f"trained {self.root} (preset {self.cfg.preset}, seed {self.cfg.seed})", flush=True)
        try:
            from ..viz.curves import plot_curves
            plot_curves(self.log.read(), self.root / "figures" / "curves.png", title=f"{self.stage}: {self.root.name}")
        except Exception as err:  # a figure must never cost a finished run
            warnings.warn(f"could not draw the training curves: {err}")
        return summary
