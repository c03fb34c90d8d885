"""DCDFA as a plug-in of the one UDA loop: SBase + L_CID + L_Domain + L^b_RReID (Zhang et al., sec. 3–4.1).

Per mixed batch of N source + N target images (the loop has already added SBase's terms, i.e. L_BReID on f,
the memory-bank loss and the Mean-Net update):

1. the channel attention splits each pooled feature: ``b = m(F) ⊙ f``, ``e = (1 − m(F)) ⊙ f`` (Eq. 1–3);
2. the batch is split into N random source–target pairs (seeded by the run's seed and the step);
3. each pair exchanges its base features: ``r_i^t = b_i + e_j^t``, ``r_j^s = b_j + e_i^s`` (Eq. 4–5);
4. ``w_cid·L_CID`` (Eq. 6) + ``w_domain·L_Domain`` (Eq. 7) + ``w_rreid·L^b_RReID``.

L^b_RReID is CE-LS + batch-hard triplet on the target images' base features b with their pseudo labels.
The triplet term sees b itself (as L_BReID's sees f). The identity term goes through a BNNeck of its own
(``b_neck``) into the **same** per-epoch target classifier as f: b = m(F) ⊙ f is f shrunk channel by channel
(m ∈ (0, 1)), so its scale differs from f's and shifts as the attention learns; the separate BatchNorm
restores the per-channel scale the classifier's centroid-initialised weights expect, and sharing the
classifier keeps one set of pseudo-identity prototypes for f and b.

Inference uses the Mean-Net's feature exactly as SBase (the attention is not needed): its BNNeck output, this
project's test feature (Luo et al.'s BNNeck). DCDFA Table 2 compares "using b_j" with "using f_j^t", and the
text tests on f′ itself ("The feature f′ from the Mean-Net is used for testing", f = pool_sa(F)): no neck.
So ``extra_evaluations`` returns the pair like with like, both before any neck: ``b`` = ``b' = m'(F') ⊙ f'``
(the Mean-Net with its averaged attention) and ``f`` = ``f'``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..losses.dcdfa import cid_loss, domain_loss
from ..models.dcdfa import ChannelAttention, DomainClassifier, Temperature, disentangle, pair_indices, recompose
from ..core.training import supervised_terms
from .activity import LN2, LN3
from .base import EpochContext, EvalContext, StepContext, UDAMethod
from .rules import below_one, ge, gt


class PooledFeatureNet(nn.Module):
    """Inference wrapper: ``net(x)["feat"]`` is the pooled feature ``f`` before the BNNeck (DCDFA's test feature,
    Table 2's "using f_j^t", the like-with-like partner of :class:`BaseFeatureNet`)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net
        self.train(net.training)      # a fresh module is in train mode: do not let it switch the Mean-Net's BN

    def forward(self, x: torch.Tensor) -> dict:
        return {"feat": self.net(x)["f"]}


class BaseFeatureNet(nn.Module):
    """Inference wrapper: ``net(x)["feat"]`` is the base feature ``b = m(F) ⊙ f`` (DCDFA Table 2, "using b"),
    of the pooled f before the BNNeck."""

    def __init__(self, net: nn.Module, attention: ChannelAttention):
        super().__init__()
        self.net = net
        self.attention = attention
        self.train(net.training)      # a fresh module is in train mode: do not let it switch the Mean-Net's BN

    def forward(self, x: torch.Tensor) -> dict:
        out = self.net(x)
        b, _ = disentangle(out["f"], self.attention(out["fmap"]))
        return {"feat": b}


@dataclass(frozen=True)
class DCDFAMethod(UDAMethod):
    """SBase + DCDFA. ``use_domain`` / ``use_rreid`` switch L_Domain / L^b_RReID (the Table 3 rows) on top of
    the config weights ``dcdfa.w_*``; ``eval_b`` adds Table 2's "using b only" evaluation (and its partner f′,
    both before any neck) at the last epoch."""
    use_domain: bool = True
    use_rreid: bool = True
    eval_b: bool = True
    sections: tuple = ("dcdfa",)

    def rules(self) -> dict:
        return {"dcdfa.reduction": ge(1), "dcdfa.dropout": below_one(), "dcdfa.tau_init": gt(0),
                "dcdfa.w_cid": ge(0), "dcdfa.w_domain": ge(0), "dcdfa.w_rreid": ge(0), "dcdfa.probe_images": ge(0)}

    def extra_modules(self, model: nn.Module, cfg) -> nn.ModuleDict:
        c, d = model.feat_dim, cfg.dcdfa
        b_neck = nn.BatchNorm1d(c)
        b_neck.bias.requires_grad_(False)            # no shift, like the main BNNeck (Bag of tricks)
        return nn.ModuleDict({
            "attention": ChannelAttention(c, d.reduction),
            "domain": DomainClassifier(c, d.reduction, d.dropout),
            "tau": Temperature(d.tau_init),
            "b_neck": b_neck,
        })

    def chance_values(self, cfg) -> dict[str, float]:
        """L_CID at ln 3 (Eq. 6: positive no closer than the two negatives), L_Domain at ln 2 (Eq. 7), weighted."""
        w = self.weights(cfg)
        return {k: w[k] * c for k, c in (("cid", LN3), ("domain", LN2)) if w[k] > 0}

    def weights(self, cfg) -> dict[str, float]:
        """The effective weights of the three DCDFA terms for this row."""
        d = cfg.dcdfa
        return {"cid": d.w_cid, "domain": d.w_domain if self.use_domain else 0.0,
                "rreid": d.w_rreid if self.use_rreid else 0.0}

    def extra_terms(self, ctx: StepContext) -> dict[str, torch.Tensor]:
        w = self.weights(ctx.cfg)
        mods = ctx.modules
        f_s, f_t = ctx.out_s["f"], ctx.out_t["f"]
        perm = pair_indices(len(f_s), len(f_t), ctx.generator()).to(f_s.device)
        b_s, e_s = disentangle(f_s, mods["attention"](ctx.out_s["fmap"]))
        b_t, e_t = disentangle(f_t, mods["attention"](ctx.out_t["fmap"]))
        # pair k = (source k, target perm[k]): i = k, j = perm[k]
        f_j, b_j, e_j = f_t[perm], b_t[perm], e_t[perm]
        r_t, r_s = recompose(b_s, e_s, b_j, e_j)
        terms: dict[str, torch.Tensor] = {}
        if w["cid"]:
            terms["cid"] = w["cid"] * cid_loss(f_s, f_j, r_s, r_t, mods["tau"](), centre=ctx.cfg.dcdfa.cid_centre)
        if w["domain"]:
            logits = mods["domain"](torch.cat([f_s, r_s, f_j, r_t]))
            terms["domain"] = w["domain"] * domain_loss(*logits.chunk(4))
        if w["rreid"]:
            head = ctx.target_head
            out_b = {"f": b_t, "logits": {head: ctx.model.classifiers[head](mods["b_neck"](b_t))}}
            for k, v in supervised_terms(out_b, ctx.y_t, head, ctx.cfg.loss, prefix="b_").items():
                terms[k] = w["rreid"] * v
        return terms

    def epoch_diagnostics(self, ctx: EpochContext) -> dict:
        if ctx.cfg.dcdfa.probe_images <= 0:
            return {}
        from .dcdfa_probes import run_probes
        # the swap test's domain half needs a trained classifier: rows without L_Domain never train theirs
        clf = ctx.eval_modules["domain"] if self.weights(ctx.cfg)["domain"] > 0 else None
        probes = run_probes(ctx.eval_net, ctx.eval_modules["attention"], clf, ctx.source,
                            ctx.target, ctx.cfg.data, ctx.device, n_images=ctx.cfg.dcdfa.probe_images,
                            seed=ctx.cfg.seed, progress=ctx.progress)
        return {**probes, "tau": float(ctx.eval_modules["tau"]().detach())}    # L_CID's temperature (Eq. 6)

    def extra_evaluations(self, ctx: EvalContext) -> dict[str, nn.Module]:
        """Table 2's pair, both before any neck: ``b`` (b′ = m′(F′) ⊙ f′) and ``f`` (f′)."""
        if not self.eval_b:
            return {}
        return {"b": BaseFeatureNet(ctx.eval_net, ctx.eval_modules["attention"]), "f": PooledFeatureNet(ctx.eval_net)}
