"""Is a paper's term doing anything? Each term's value beside its chance value, and its share of the gradient.

A loss term at its *chance value* is the loss of a network that has not separated what the term asks it to
separate: L_CID (DCDFA Eq. 6) is ln 3 when the positive is no closer than the two negatives (all three cosine
similarities equal: ℓ = log(1 + 2) for every anchor); L_Domain (Eq. 7) is ln 2 when the classifier says 1/2 for
every feature; LF²'s Fusion-Module term (a softmax triplet, a two-way softmax between the positive and the
hardest negative) is ln 2 per part when the two are equally similar. Logged terms are weighted, so a term's
chance value is its weight times that number
(:meth:`UDAMethod.chance_values <reid_uda_lib.methods.base.UDAMethod.chance_values>`).

Every epoch the loop records, under ``"activity"`` in metrics.jsonl and in the log line, for each term that has a
chance value: its epoch mean, the chance value, and the term's share of the gradient norm at the backbone's last
block (``backbone.last_block``), measured on the epoch's last step (:func:`gradient_norms`; every term's
gradient taken separately, before the step's own backward, which it does not change). A term within
:data:`CHANCE_TOL` of its chance value in every epoch of a stage is named in one warning line at the end
(:func:`stuck_terms`).
"""
from __future__ import annotations

import math
from typing import Iterable, Mapping, Optional

import torch
from torch import nn

LN2, LN3 = math.log(2.0), math.log(3.0)
#: relative distance to the chance value under which a term counts as "at chance" (2 %: L_CID at 1.094
#: against ln 3 = 1.0986 is at chance, 1.050 is not)
CHANCE_TOL = 0.02


def at_chance(value: float, chance: float, tol: float = CHANCE_TOL) -> bool:
    """Is ``value`` within ``tol`` (relative) of ``chance``?"""
    return chance > 0 and abs(float(value) - float(chance)) <= tol * float(chance)


def gradient_norms(terms: Mapping[str, torch.Tensor], module: nn.Module) -> dict[str, float]:
    """``{term: ‖∂term/∂θ‖₂}`` over the trainable parameters θ of ``module``, each term separately (the graph
    is kept for the step's own backward; nothing is accumulated into ``.grad``)."""
    params = [p for p in module.parameters() if p.requires_grad]
    out: dict[str, float] = {}
    for name, value in terms.items():
        if not (torch.is_tensor(value) and value.requires_grad):
            continue
        grads = torch.autograd.grad(value, params, retain_graph=True, allow_unused=True)
        out[name] = math.sqrt(sum(float(g.detach().float().pow(2).sum()) for g in grads if g is not None))
    return out


def term_activity(means: Mapping[str, float], chances: Mapping[str, float],
                  grad_norms: Optional[Mapping[str, float]] = None) -> dict[str, dict]:
    """``{term: {"value", "chance", "at_chance"[, "grad_share"]}}`` for the terms with a chance value; the share
    is the term's gradient norm over the sum of every term's (all terms of the step, not only these)."""
    total = sum(grad_norms.values()) if grad_norms else 0.0
    out = {}
    for name, chance in chances.items():
        if name not in means:
            continue
        rec = {"value": float(means[name]), "chance": float(chance), "at_chance": at_chance(means[name], chance)}
        if grad_norms and total > 0 and name in grad_norms:
            rec["grad_share"] = grad_norms[name] / total
        out[name] = rec
    return out


def stuck_terms(records: Iterable[Mapping]) -> list[str]:
    """The terms at chance in every epoch record that reports them (at least one)."""
    seen: dict[str, bool] = {}
    for r in records:
        for name, a in (r.get("activity") or {}).items():
            seen[name] = seen.get(name, True) and bool(a.get("at_chance"))
    return [name for name, stuck in seen.items() if stuck]
