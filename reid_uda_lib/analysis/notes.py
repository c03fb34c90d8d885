"""What a notebook says about the preset it runs, before it trains anything."""
from __future__ import annotations

from ..config import Config

#: Presets whose figures only show that the code runs (too small or too short to learn anything).
SMOKE_PRESETS = ("ci",)


def preset_note(cfg: Config) -> str:
    """One line naming the backbone, its start, the input size and the stages' lengths of ``cfg``; for a smoke
    preset (``ci``) a second line says its figures are noise and how to get figures to learn from."""
    m, d = cfg.model, cfg.data
    start = "ImageNet weights" if m.weights == "imagenet" else "random weights"
    line = (f"preset '{cfg.preset}': {m.arch} from {start} at {d.height}x{d.width}, "
            f"{cfg.pretrain.epochs} pretraining and {cfg.uda.epochs} adaptation epochs")
    if cfg.preset in SMOKE_PRESETS:
        line += ("\nThis preset trains a tiny network for seconds: its figures are noise and only show that the "
                 "code runs. For figures to learn from, set preset = 'cpu' in the parameters cell (the default "
                 "when the notebook is opened by hand).")
    return line
