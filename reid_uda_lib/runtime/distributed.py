"""Multi-process data-parallel training with ``torchrun``: the process group and the collectives.

Without ``torchrun`` (no ``WORLD_SIZE`` in the environment, no process group) every function here is the
single-process identity and nothing changes. Under ``torchrun --nproc_per_node=G`` (``nccl`` on GPUs,
``gloo`` on CPU):

* ``data.batch_size`` stays the **global** batch per domain: each process draws its contiguous share
  ``batch_size / G`` of the same PK batch a single process would draw
  (:class:`~reid_uda_lib.data.samplers.DistributedPKSampler`), identities kept whole.
* Each process runs the model on its share; the outputs are all-gathered with their gradients
  (:func:`gather_outputs`) and every process computes the losses of the **global** batch -- so
  batch-dependent losses (batch-hard triplet, DCDFA's pairs, LF²'s softmax triplet) and the memory-bank
  updates are the single-process ones. The gather's backward sums the processes' gradients, and the
  data-parallel average of the parameter gradients (:func:`average_gradients`, the all-reduce of
  DistributedDataParallel) then gives exactly the single-process gradient. The learning rate therefore needs
  no scaling rule: G processes train like one process with the same global batch, except BatchNorm (each
  process normalises its share, see :mod:`reid_uda_lib.models.bn_groups`).
* Why not the ``DistributedDataParallel`` wrapper itself: it expects a gradient for every parameter that
  reaches a forward output, and some outputs enter no loss (LF²'s source-head logits): DDP then stops
  ("Expected to have finished reduction ..."), and forcing zero gradients would let Adam's weight decay move
  those parameters, unlike one process. One coalesced all-reduce after backward keeps the one-process
  semantics exactly; it gives up DDP's overlap of communication with the backward pass.
* The BatchNorm running statistics are averaged after each step (:func:`average_bn_statistics`), so all
  processes hold the same weights, Mean-Net and memory bank.
* Feature extraction is sharded (:func:`shard_bounds`), rank 0 clusters and broadcasts the labels
  (:func:`on_rank0`); only rank 0 writes the run folder.
"""
from __future__ import annotations

import os
from typing import Any, Callable, Iterable, Optional

import torch
import torch.distributed as dist
from torch import nn

_GATHER_GROUP: Optional[Any] = None


def is_distributed() -> bool:
    """True inside an initialised process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def is_main() -> bool:
    """Rank 0, or the only process: the one that writes files and prints."""
    return rank() == 0


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_distributed(device: str = "auto") -> bool:
    """Join the process group ``torchrun`` describes in the environment (once); True when distributed.

    ``nccl`` when the run uses CUDA (each process on ``cuda:LOCAL_RANK``), ``gloo`` otherwise. Does nothing
    without ``torchrun`` or when a group already exists (e.g. set up by a test harness).
    """
    if dist.is_available() and dist.is_initialized():
        return is_distributed()
    if not launched_by_torchrun():
        return False
    cuda = torch.cuda.is_available() and str(device) in ("auto", "cuda") or str(device).startswith("cuda")
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend="nccl" if cuda else "gloo")
    return is_distributed()


def local_device(device: torch.device) -> torch.device:
    """Under torchrun, a CUDA device without an index becomes this process's ``cuda:LOCAL_RANK``."""
    if is_distributed() and device.type == "cuda" and device.index is None:
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


def _gather_group():
    """A process group of its own for the output gathers (their backward runs inside the backward pass)."""
    global _GATHER_GROUP
    if _GATHER_GROUP is None:
        _GATHER_GROUP = dist.new_group(backend=dist.get_backend())
    return _GATHER_GROUP


class _GatherWithGrad(torch.autograd.Function):
    """All-gather along dim 0 whose backward sums the gradients of every process and returns this process's
    slice, so the average over processes (:func:`average_gradients`) yields the gradient of the (identical)
    global loss."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        group = _gather_group()
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x.contiguous(), group=group)
        ctx.n, ctx.rank = x.shape[0], dist.get_rank()
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM, group=_gather_group())
        return grad[ctx.rank * ctx.n:(ctx.rank + 1) * ctx.n]


def gather_outputs(out: Any) -> Any:
    """The model outputs of the global batch (rank order), gradients flowing back to each process's share.

    ``out`` is a tensor or a nested dict of (B, ...) tensors; each tensor is gathered on its own, so an output
    no loss uses (LF²'s source-head logits) sends no gradient back and its parameters keep ``grad = None``, as
    in one process. One process gets ``out`` back unchanged.
    """
    if not is_distributed():
        return out
    if isinstance(out, dict):
        return {k: gather_outputs(v) for k, v in out.items()}
    return _GatherWithGrad.apply(out)


@torch.no_grad()
def gather_tensor(x: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
    """All-gather along dim 0 without gradient (labels, indices, images); identity for one process."""
    if x is None or not is_distributed():
        return x
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x.contiguous(), group=_gather_group())
    return torch.cat(parts)


def shard_bounds(n: int) -> tuple[int, int]:
    """``[start, stop)`` of this process's contiguous shard of ``n`` items (sizes differ by at most one)."""
    w, r = world_size(), rank()
    return r * n // w, (r + 1) * n // w


@torch.no_grad()
def gather_shards(local: torch.Tensor, n: int) -> torch.Tensor:
    """Concatenate every process's shard (:func:`shard_bounds` of ``n`` rows) into the (n, ...) tensor."""
    if not is_distributed():
        return local
    w = world_size()
    sizes = [(r + 1) * n // w - r * n // w for r in range(w)]
    pad = max(sizes)
    buf = torch.zeros((pad, *local.shape[1:]), dtype=local.dtype, device=local.device)
    buf[:local.shape[0]] = local
    parts = [torch.empty_like(buf) for _ in range(w)]
    dist.all_gather(parts, buf, group=_gather_group())
    return torch.cat([p[:s] for p, s in zip(parts, sizes)])


def on_rank0(fn: Callable[[], Any]) -> Any:
    """``fn()`` computed by rank 0 and broadcast (pickled) to every process; ``fn()`` for one process.

    An exception on rank 0 is re-raised on every process, so all of them stop together.
    """
    if not is_distributed():
        return fn()
    box: list[Any] = [None]
    if is_main():
        try:
            box[0] = ("ok", fn())
        except Exception as err:   # noqa: BLE001 - re-raised below on every rank
            box[0] = ("error", err)
    dist.broadcast_object_list(box, src=0)
    status, value = box[0]
    if status == "error":
        raise value
    return value


@torch.no_grad()
def broadcast_state(*modules: nn.Module) -> None:
    """Give every process rank 0's parameters and buffers (as DDP does when it wraps a model)."""
    if not is_distributed():
        return
    for m in modules:
        for t in [*m.parameters(), *m.buffers()]:
            dist.broadcast(t.data, src=0)


@torch.no_grad()
def average_gradients(params: Iterable[torch.nn.Parameter]) -> None:
    """Average the gradients over the processes (DDP's all-reduce, here one coalesced call after backward).

    A parameter without a gradient (its output entered no loss) keeps ``grad = None`` on every process, as in
    one process; the set is the same on every process since they all compute the same global loss.
    """
    if not is_distributed():
        return
    grads = [p.grad for p in params if p.grad is not None]
    if grads:
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        flat /= world_size()
        for g, piece in zip(grads, flat.split([g.numel() for g in grads])):
            g.copy_(piece.view_as(g))


@torch.no_grad()
def average_bn_statistics(*modules: nn.Module) -> None:
    """Average every BatchNorm running mean and variance over the processes (Eq. G2 of ``bn_groups``)."""
    if not is_distributed():
        return
    bufs = [b for m in modules for layer in m.modules() if isinstance(layer, nn.modules.batchnorm._BatchNorm)
            and layer.track_running_stats for b in (layer.running_mean, layer.running_var)]
    if bufs:
        flat = torch.cat([b.reshape(-1).float() for b in bufs])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        flat /= world_size()
        for b, piece in zip(bufs, flat.split([b.numel() for b in bufs])):
            b.copy_(piece.view_as(b).to(b.dtype))


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def setup_bn_groups(bn_samples: int, forward_images: int, *modules: nn.Module, n_source: int = 0) -> int:
    """Give the BatchNorm layers of ``modules`` their groups; return the images per group of this process's
    forward (0: the whole batch, plain BatchNorm).

    ``forward_images``: images of one global forward (mixed batches: source + target, ``n_source`` of them
    source). ``model.bn_samples = 0`` means the whole local batch: nothing changes in one process; under
    torchrun it is the process's share, which also sets the groups of the BatchNorm layers that run on
    gathered outputs (the method's modules). A value larger than the local batch would need the images of
    several processes (SyncBatchNorm over process subgroups): refused with the reason.
    """
    from ..models.bn_groups import layout_groups, use_bn_groups
    w = world_size()
    local = forward_images // w
    samples = bn_samples if bn_samples > 0 else (local if w > 1 else 0)
    if samples > local:
        raise ValueError(f"model.bn_samples = {bn_samples} is larger than the {local} images of one forward of "
                         f"this process ({forward_images} in the global batch, {w} process(es)); groups spanning "
                         "several processes (SyncBatchNorm over process subgroups) are not implemented: use a "
                         f"value <= {local} or fewer processes")
    if samples and local % samples:
        raise ValueError(f"model.bn_samples = {bn_samples} must divide the {local} images of one forward of this "
                         f"process ({forward_images} in the global batch, {w} process(es))")
    if n_source and samples:
        layout_groups(n_source // w, local - n_source // w, samples)      # equal domain shares per group
    for m in modules:
        use_bn_groups(m, samples)
    return samples
