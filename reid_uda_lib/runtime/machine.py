"""Which kernels compute a run: the part of the machine that decides its numbers.

The same code, seed and data give the same figures to the digit only with the same kernels: on a CPU, the
instruction set torch's kernels were built for (ATen picks AVX-512 or AVX2 code at start; oneDNN and MKL pick
their own, capped by :data:`ISA_LIMIT_VARS`) and the thread count; on a GPU, its model. Across kernel sets
the last bits of every gradient differ and a short schedule turns them into another trajectory (README,
"Numbers across CPU types"). :func:`kernel_signature` names them; checkpoints record it, and a run
continued with other kernels says so (``RunDir``): its result is then not the one an uninterrupted run gives.
"""
from __future__ import annotations

import os
from typing import Optional

import torch

# Environment variables that cap the instruction set of the CPU kernels (read when torch loads): with the three
# of `make demo CPU_ISA=avx2` set, a machine with AVX-512 runs the kernels an AVX2-only CPU runs.
ISA_LIMIT_VARS = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS")


def isa_limits() -> dict[str, str]:
    """The :data:`ISA_LIMIT_VARS` set in this process's environment."""
    return {k: os.environ[k] for k in ISA_LIMIT_VARS if os.environ.get(k)}


def kernel_signature(device: str | torch.device = "cpu") -> dict:
    """Plain-JSON description of the kernels a run on ``device`` uses.

    CPU: ``{"device": "cpu", "cpu_capability": "AVX512", "isa_limits": {...}, "threads": 1, "torch": ...}``;
    CUDA: the GPU's name instead of the CPU fields (the training runs there).
    """
    dev = torch.device(device)
    sig: dict = {"device": dev.type, "torch": str(torch.__version__)}     # TorchVersion is not plain
    if dev.type == "cuda":
        sig["gpu"] = str(torch.cuda.get_device_name(dev))
    elif dev.type == "cpu":
        sig.update(cpu_capability=str(torch.backends.cpu.get_cpu_capability()), isa_limits=isa_limits(),
                   threads=torch.get_num_threads())
    return sig


def kernels_text(sig: dict) -> str:
    """``"AVX512"`` or ``"AVX2 (capped: ONEDNN_MAX_CPU_ISA=AVX2, ...)"`` from a dict holding ``cpu_capability``
    and ``isa_limits`` (:func:`kernel_signature`, ``experiments.report.machine_info``)."""
    caps = ", ".join(f"{k}={v}" for k, v in (sig.get("isa_limits") or {}).items())
    return str(sig.get("cpu_capability")) + (f" (capped: {caps})" if caps else "")


def kernel_change(saved: Optional[dict], now: dict, threads: bool = True) -> Optional[str]:
    """``None`` when ``saved`` (a checkpoint's signature; ``None`` for checkpoints older than the record) and
    ``now`` compute alike, else a phrase naming what changed: ``"CPU kernels AVX512 -> AVX2, threads 2 -> 1"``.
    ``threads=False`` ignores the thread count (a finished stage reused by a process with fewer threads)."""
    if not saved:
        return None
    changes = []
    if saved.get("device") != now.get("device"):
        changes.append(f"device {saved.get('device')} -> {now.get('device')}")
    elif now.get("device") == "cuda" and saved.get("gpu") != now.get("gpu"):
        changes.append(f"GPU {saved.get('gpu')} -> {now.get('gpu')}")
    elif now.get("device") == "cpu":
        if kernels_text(saved) != kernels_text(now):
            changes.append(f"CPU kernels {kernels_text(saved)} -> {kernels_text(now)}")
        if threads and saved.get("threads") != now.get("threads"):
            changes.append(f"threads {saved.get('threads')} -> {now.get('threads')}")
    if saved.get("torch") != now.get("torch"):
        changes.append(f"torch {saved.get('torch')} -> {now.get('torch')}")
    return ", ".join(changes) or None
