"""The Mean-Net: an exponential moving average of the student network.

Mean Teacher (Tarvainen & Valpola, NeurIPS 2017), used by DCDFA's SBase (sec. 4.1, Fig. 3) and LF²
(Eq. 4)::

    θ'_iter = m · θ'_(iter-1) + (1 − m) · θ_student

The Mean-Net is the inference model and the feature extractor for clustering; only the student gets
gradients.
"""
from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn


def _unwrap(model: nn.Module) -> nn.Module:
    """The bare model inside DataParallel / DistributedDataParallel."""
    if isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
        return model.module
    return model


def _freeze(module: nn.Module) -> nn.Module:
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
        p.grad = None  # a deep copy also copies the student's gradients
    return module


class MeanTeacher:
    """EMA copy of a model (LF² Eq. 4; Mean Teacher).

    Parameters
    ----------
    model : the student; it is deep-copied, so the Mean-Net starts equal to it.
    momentum : m in [0, 1), the weight of the old Mean-Net value (0.999 in DCDFA/LF²).

    Notes
    -----
    * :meth:`update` (call after each optimiser step) applies Eq. 4 to every parameter and *copies* every
      buffer (BN running statistics, ``num_batches_tracked``) from the student.
    * Structure follows the student: a parameter whose name is missing in the Mean-Net or whose shape
      differs (e.g. a head created or re-created with ``set_classifier``) is not averaged; its owning
      sub-module is copied from the student. Sub-modules the student no longer has are removed.
    * :attr:`module` stays in eval mode with ``requires_grad=False``; ``mt(x)`` is ``mt.module(x)``.
    """

    def __init__(self, model: nn.Module, momentum: float = 0.999):
        self.momentum = self._check_momentum(momentum)
        self.module: nn.Module = _freeze(copy.deepcopy(_unwrap(model)))

    @staticmethod
    def _check_momentum(momentum: float) -> float:
        momentum = float(momentum)
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"MeanTeacher momentum must be in [0, 1); got {momentum}")
        return momentum

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.module(*args, **kwargs)

    def to(self, *args: Any, **kwargs: Any) -> "MeanTeacher":
        self.module.to(*args, **kwargs)
        return self

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """One EMA step from the student ``model`` (LF² Eq. 4), after syncing the structure."""
        student = _unwrap(model)
        fresh = self.sync_structure(student)  # just copied from the student: nothing to average
        m = self.momentum
        teacher_params = dict(self.module.named_parameters())
        pairs = [(teacher_params[n], p.detach()) for n, p in student.named_parameters() if n not in fresh]
        if pairs:
            t, s = (list(x) for x in zip(*pairs))
            # multi-tensor kernels: one launch per op instead of two per parameter (matters on GPU)
            torch._foreach_mul_(t, m)
            torch._foreach_add_(t, s, alpha=1.0 - m)
        teacher_buffers = dict(self.module.named_buffers())
        for name, buf in student.named_buffers():
            teacher_buffers[name].copy_(buf)

    @torch.no_grad()
    def sync_structure(self, model: nn.Module) -> set[str]:
        """Give the Mean-Net the student's parameter/buffer names and shapes (see the class notes).

        Returns the names of the tensors copied from the student.
        """
        student = _unwrap(model)
        s_tensors = {**dict(student.named_parameters()), **dict(student.named_buffers())}
        t_tensors = {**dict(self.module.named_parameters()), **dict(self.module.named_buffers())}
        copied: set[str] = set()
        for name, t in s_tensors.items():
            if name not in t_tensors or t_tensors[name].shape != t.shape:
                path = self._copy_owner(student, name)
                copied.update(k for k in s_tensors if k.startswith(path + "."))
                t_tensors = {k: v for k, v in t_tensors.items() if not k.startswith(path + ".")}
                owner = self.module.get_submodule(path)
                t_tensors.update({f"{path}.{k}": v for k, v in
                                  [*owner.named_parameters(), *owner.named_buffers()]})
        removed: list[str] = []
        for name in [k for k in t_tensors if k not in s_tensors]:
            if not any(name.startswith(p + ".") for p in removed):
                removed.append(self._remove_owner(student, name))
        return copied

    def _copy_owner(self, student: nn.Module, name: str) -> str:
        """Copy into the Mean-Net the student's sub-module owning ``name``; return its path.

        The copied sub-module is the shallowest one that the Mean-Net lacks, or the direct owner when
        only a shape differs.
        """
        parts = name.split(".")[:-1]
        if not parts:
            raise RuntimeError(f"MeanTeacher cannot sync '{name}': tensors registered directly on the "
                               "top-level model must keep their shape; put them in a sub-module")
        depth = len(parts)
        for i in range(1, len(parts) + 1):
            if not _has_submodule(self.module, ".".join(parts[:i])):
                depth = i
                break
        path = ".".join(parts[:depth])
        parent_path, _, child = path.rpartition(".")
        parent = self.module.get_submodule(parent_path) if parent_path else self.module
        setattr(parent, child, _freeze(copy.deepcopy(student.get_submodule(path))))
        return path

    def _remove_owner(self, student: nn.Module, name: str) -> str:
        """Delete the shallowest Mean-Net sub-module on ``name``'s path that the student lacks."""
        parts = name.split(".")[:-1]
        for i in range(1, len(parts) + 1):
            path = ".".join(parts[:i])
            if not _has_submodule(student, path):
                parent_path, _, child = path.rpartition(".")
                parent = self.module.get_submodule(parent_path) if parent_path else self.module
                delattr(parent, child)
                return path
        return name  # same modules, a tensor only the Mean-Net has (e.g. an extra buffer): leave it

    def state_dict(self) -> dict:
        """``{"module": Mean-Net state dict, "momentum": m}``."""
        return {"module": self.module.state_dict(), "momentum": self.momentum}

    def load_state_dict(self, state: dict) -> None:
        """Inverse of :meth:`state_dict` (restores the momentum too)."""
        if not isinstance(state, dict) or "module" not in state or "momentum" not in state:
            raise ValueError("MeanTeacher.load_state_dict expects {'module': ..., 'momentum': ...} as "
                             f"written by MeanTeacher.state_dict(); got {type(state).__name__} "
                             f"with keys {list(state)[:5] if isinstance(state, dict) else '-'}")
        self.module.load_state_dict(state["module"])
        _freeze(self.module)  # heads created while loading must not require grad either
        self.momentum = self._check_momentum(state["momentum"])


def _has_submodule(module: nn.Module, path: str) -> bool:
    try:
        module.get_submodule(path)
        return True
    except AttributeError:
        return False
