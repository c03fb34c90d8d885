"""Mixed precision for the training steps: the config field ``amp`` = ``"off"`` (default) | ``"bf16"`` | ``"fp16"``.

What it does: the forward pass and the loss terms of every training step (pretraining and every UDA method)
run under ``torch.autocast`` with that dtype; the weights, the optimiser, the Mean-Net, the memory bank and
every feature pass (clustering, BatchNorm statistics, evaluation) stay in float32. ``fp16`` adds a gradient
scaler (``torch.amp.GradScaler``: the loss is scaled before the backward, the step is skipped when a
gradient overflows, the scale adapts); its state is saved in the checkpoint, so a resumed run continues
exactly. ``bf16`` has float32's range and needs no scaler.

Which to use:

* a GPU with bf16 (A100, H100, L4, RTX 30xx and later): ``bf16``;
* a GPU without it (Colab's T4, V100): ``fp16``;
* a CPU: ``off``. bf16 was measured 1.7x faster than float32 on a CPU with ``avx512_bf16`` units and 20x
  slower on one without (this project's two CPU types); fp16 on a CPU is slow and only useful for tests.
  A warning says so when a run asks for it.

``amp`` is part of the run identity (it changes the numbers); runs made before it existed read as ``"off"``.
"""
from __future__ import annotations

import contextlib
import warnings
from functools import lru_cache

import torch

from ..config import AMP_MODES

__all__ = ["AMP_MODES", "Precision", "cpu_has_bf16"]
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@lru_cache(maxsize=1)
def cpu_has_bf16() -> bool:
    """True when /proc/cpuinfo lists ``avx512_bf16`` or ``amx_bf16`` (False where it cannot be read)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


class Precision:
    """The training step's precision: ``autocast()`` around forward + losses, ``backward(loss)``, ``step(opt)``.

    With ``mode="off"`` these are exactly ``loss.backward()`` and ``optimizer.step()`` (nothing else runs), so
    float32 runs are bit-identical to the loop without this class. ``state_dict`` / ``load_state_dict`` hold
    the fp16 gradient scaler's state (empty otherwise).
    """

    def __init__(self, mode: str, device: torch.device, warn: bool = True):
        if mode not in AMP_MODES:
            raise ValueError(f"amp must be one of {', '.join(AMP_MODES)}; got {mode!r}")
        self.mode = mode
        self.device_type = torch.device(device).type
        self.dtype = _DTYPES.get(mode)
        if mode == "bf16" and self.device_type == "cuda" and not torch.cuda.is_bf16_supported():
            raise ValueError("amp=bf16: this GPU has no bfloat16 support (e.g. a T4 or V100); use amp=fp16")
        if warn and self.device_type == "cpu" and mode == "bf16" and not cpu_has_bf16():
            warnings.warn("amp=bf16 on a CPU without bf16 units (no avx512_bf16 in /proc/cpuinfo): measured "
                          "about 20x slower than float32 on such a CPU; amp=off is the CPU default")
        if warn and self.device_type == "cpu" and mode == "fp16":
            warnings.warn("amp=fp16 on a CPU is slow (no fp16 arithmetic units); it is meant for GPUs "
                          "without bf16 (T4, V100). On a CPU use amp=off, or bf16 where avx512_bf16 exists")
        self.scaler = torch.amp.GradScaler(self.device_type) if mode == "fp16" else None

    @property
    def enabled(self) -> bool:
        return self.dtype is not None

    def autocast(self):
        """The context for forward passes and loss terms (a no-op when ``mode="off"``)."""
        if not self.enabled:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def backward(self, loss: torch.Tensor) -> None:
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        """``optimizer.step()``; with the fp16 scaler: unscale, skip on overflow, update the scale."""
        if self.scaler is None:
            optimizer.step()
            return
        self.scaler.step(optimizer)
        self.scaler.update()

    def state_dict(self) -> dict:
        return self.scaler.state_dict() if self.scaler is not None else {}

    def load_state_dict(self, state: dict) -> None:
        if self.scaler is not None:
            self.scaler.load_state_dict(state)

    def checkpointed(self):
        """``self`` when there is state to restore (fp16), else None (float32 checkpoints unchanged)."""
        return self if self.scaler is not None else None

    def save_into(self, state: dict) -> dict:
        """Add the fp16 scaler's state to a checkpoint dict as ``"precision"`` (nothing otherwise)."""
        if self.scaler is not None:
            state["precision"] = self.state_dict()
        return state

    def __repr__(self) -> str:
        return f"Precision({self.mode!r}, {self.device_type})"
