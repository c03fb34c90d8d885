"""What a notebook says about the preset it runs, before it trains anything."""
from __future__ import annotations

from ..config import Config

#: Presets whose figures only show that the code runs (too small or too short to learn anything).
SMOKE_PRESETS = ("tiny",)
#: Presets cut short from ``cpu``: their figures show the chapter's structure, their numbers are lower.
SHORT_PRESETS = ("ci",)


def preset_note(cfg: Config) -> str:
    """One line naming the backbone, its start, the input size and the stages' lengths of ``cfg``; for a smoke
    preset (``tiny``) a second line says its figures are noise and how to get figures to learn from; for a short
    preset (``ci``) that its numbers are below the README's and which preset gives those."""
    m, d = cfg.model, cfg.data
    start = "ImageNet weights" if m.weights == "imagenet" else "random weights"
    line = (f"preset '{cfg.preset}': {m.arch} from {start} at {d.height}x{d.width}, "
            f"{cfg.pretrain.epochs} pretraining and {cfg.uda.epochs} adaptation epochs")
    if cfg.preset in SMOKE_PRESETS:
        line += ("\nThis preset trains a tiny network for seconds: its figures are noise and only show that the "
                 "code runs. For figures to learn from, set preset = 'cpu' in the parameters cell (the default "
                 "when the notebook is opened by hand).")
    elif cfg.preset in SHORT_PRESETS:
        line += ("\nThis preset is the 'cpu' recipe cut short (minutes): its figures show the same structure, "
                 "its numbers are lower than the README's. For those, set preset = 'cpu' in the parameters cell "
                 "(the default when the notebook is opened by hand).")
    return line
