"""LF² as a plug-in of the one UDA loop (Ding & Zhou, sec. III; Table II rows; and LF² + DCDFA).

Every epoch (hook ``pseudo_labels``), one pass over the target train images computes with the teacher
(the Mean-Net, LF² Eq. 4) its global feature φ^P0 and, per part j, the clustering feature of level j:

* ``lf2``: the fusion feature φ^Pj = GAP(σ(Z^Pj) ⊗ Φ^P0) of the Fusion Module (Eq. 5) on the student's
  stripe F^Pj and the teacher's map Φ^P0;
* ``lf2_nofm``: the teacher's own stripe j, pooled (Fig. 2's dotted lines: no FM);
* ``lf2_base``: no part level (global only).

Each level is clustered separately (k-means, ``lf2.n_clusters`` per level), giving K + 1 labels per image;
level 0 drives the PK sampler and the target classifier C^t (initialised from the centroids of the teacher's
BNNeck features). Every step (hook ``extra_terms``) then trains on a **target-only** batch with **one**
student forward serving all K + 1 label sets:

* global f^P0: α·(L^t_cls (Eq. 8, CE with ε = ``lf2.label_smoothing``; the paper's plain CE is ε = 0) +
  λ·L^t_tri (Eq. 9)) with the level-0 labels;
* part j: γ·L^Pj_tri, the softmax triplet (Eq. 6–7) on f^Pj = Expert-j(F^Pj) with the level-j labels;
* only in the rows with ``fm_loss`` (``lf2_fmloss``; this project's addition): the Fusion Module's own term
  (below), w_fm·Σ_j L_FM^j.

**The Fusion Module's term (this project; row ``lf2_fmloss``).** In the paper φ^Pj only feeds k-means and no
term of Eq. 10 involves the FM, so nothing trains it: in the ``lf2`` row (Eq. 10 as printed) it stays at its
random initialisation. ``lf2_fmloss`` trains it with ``fusion_loss``: the softmax triplet (Eq. 6–7
form) on the batch's L2-normalised fusion features φ^Pj with the level-j labels, i.e. the FM learns the
channel gates, conditioned on the student's stripe j, under which the teacher's global feature separates the
pseudo identities of level j -- the same self-training signal the student gets, aimed at the feature that
is clustered. Its inputs are detached (the teacher's map has no gradient anyway, and F^Pj is detached), so
this term moves only the FM and the student's objective stays exactly Eq. 10. It needs the teacher's map of
the batch: one teacher forward (no grad) per step. ``lf2_fmloss`` and ``lf2`` differ only by this term.
(The paper's "Expert-j aligns f^Pj and φ^Pj" happens through the labels: f^Pj is trained with the labels
clustered from φ^Pj.)

Inference (hook ``test_net``): the teacher's map split into K stripes, pooled, concatenated with its global
feature (each piece L2-normalised); the FM and the experts are not used. The global feature alone is logged
at the last epoch as ``target_global``. ``lf2_base`` (Table II's "Baseline (only L^t_ReID)": no parts) is
evaluated on the teacher's global feature alone.

``lf2_dcdfa`` adds DCDFA's channel-attention split, cross-domain recomposition and its three losses on the
global feature (:class:`~reid_uda_lib.methods.dcdfa.DCDFAMethod`'s terms, with y_t = the level-0
labels); it is the one LF² row that loads source batches, which serve only DCDFA's source-target pairs.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ..cluster.multilevel import cluster_levels, level_n_clusters
from ..losses import batch_hard_triplet, softmax_triplet
from ..losses.lf2 import fusion_loss, lf2_cls_loss, lf2_total
from ..models.lf2 import FM_MODES, ConcatFeatureNet, Experts, FusionModule, part_features
from ..runtime.distributed import gather_shards, on_rank0, shard_bounds, world_size
from ..core.loaders import test_loader
from .activity import LN2
from .base import (ClusterContext, EpochContext, EvalContext, LabelSets, StepContext, UDAMethod,
                   clustering_features)
from .dcdfa import DCDFAMethod

FUSIONS = ("fm", "split", "none")


def lf2_problems(cfg) -> list[str]:
    """LF² settings the method cannot use, one string each naming the dotted field."""
    c, problems = cfg.lf2, []
    if int(c.num_parts) != c.num_parts or c.num_parts < 1:
        problems.append(f"lf2.num_parts must be a positive integer (K stripes); got {c.num_parts!r}")
    if c.fm_mode not in FM_MODES:
        problems.append(f"lf2.fm_mode must be one of {FM_MODES}; got {c.fm_mode!r}")
    if c.cluster not in ("kmeans", "dbscan"):
        problems.append(f"lf2.cluster must be 'kmeans' or 'dbscan'; got {c.cluster!r}")
    if not 0.0 <= c.label_smoothing < 1.0:
        problems.append(f"lf2.label_smoothing must be in [0, 1) (Eq. 8's CE; 0 = plain CE); got {c.label_smoothing!r}")
    if c.w_fm < 0:
        problems.append(f"lf2.w_fm must be >= 0 (weight of the FM term of lf2_fmloss); got {c.w_fm!r}")
    if not problems:
        try:
            ks = level_n_clusters(c.n_clusters, c.num_parts + 1)
        except (TypeError, ValueError) as err:
            return [str(err) if "lf2.n_clusters" in str(err) else f"lf2.n_clusters: {err}"]
        p = cfg.data.batch_size // max(cfg.data.num_instances, 1)
        if c.cluster == "kmeans" and min(ks) < max(p, 2):
            problems.append(f"lf2.n_clusters ({', '.join(map(str, ks))}) must be at least the identities per "
                            f"batch P = data.batch_size // data.num_instances = {p} at every level: a PK batch "
                            "draws P different pseudo identities")
    return problems


def check_lf2_config(cfg) -> None:
    """Fail early, naming the field, on an LF² setting the method cannot use."""
    problems = lf2_problems(cfg)
    if problems:
        raise ValueError("; ".join(problems))


@torch.no_grad()
def level_features(teacher: nn.Module, student: nn.Module, fm: nn.Module | None, items, cfg, device,
                   fusion: str, progress: bool = True) -> tuple[list[torch.Tensor], torch.Tensor]:
    """One pass over ``items``: the clustering features of every level, ``[φ^P0, φ^P1, ..., φ^PK]`` (each
    (N, C), L2-normalised; only φ^P0 when ``fusion == "none"``), and the teacher's L2-normalised BNNeck
    features (N, C) for the target-head centroids. The student runs in eval mode (restored afterwards).
    Under torchrun each process extracts a contiguous shard and every process gets all the features."""
    k = cfg.lf2.num_parts
    was = student.training
    student.eval()
    levels: list[list[torch.Tensor]] = [[] for _ in range(1 + (k if fusion != "none" else 0))]
    bns = []
    n = len(items)
    start, stop = shard_bounds(n) if n >= world_size() else (0, n)     # under torchrun: this process's shard
    try:
        for img, *_ in tqdm(test_loader(list(items)[start:stop], cfg.data), desc="LF² level features", leave=True,
                            disable=not progress):
            img = img.to(device)
            t = teacher(img)
            levels[0].append(t["f"].float())
            bns.append(t["bn"].float())
            if fusion == "fm":
                phi = fm(t["fmap"], part_features(student(img)["fmap"], k))
            elif fusion == "split":
                phi = part_features(t["fmap"], k)
            else:
                continue
            for j in range(k):
                levels[j + 1].append(phi[:, j].float())
    finally:
        student.train(was)
    norm = torch.nn.functional.normalize

    def joined(parts):      # every process's shard, in item order
        local = torch.cat(parts)
        return gather_shards(local, n) if stop - start < n else local
    return [norm(joined(v), dim=1) for v in levels], norm(joined(bns), dim=1)


@dataclass(frozen=True)
class LF2Method(UDAMethod):
    """LF² rows. ``fusion``: "fm" (Fusion Module), "split" (teacher stripes, no FM) or "none" (global level
    only, no part losses); ``fm_loss``: add this project's Fusion-Module term w_fm·Σ_j L_FM^j (not in Eq. 10;
    needs ``fusion="fm"``); ``dcdfa``: add DCDFA's terms on the global feature (needs source batches)."""
    fusion: str = "fm"
    fm_loss: bool = False
    dcdfa: bool = False
    memory_bank: bool = False
    shared_terms: bool = False
    source_batches: bool = False
    sections: tuple = ("lf2",)

    def validate(self, cfg) -> list[str]:
        return lf2_problems(cfg)

    def clusterings(self, cfg) -> list[tuple[str, str, int]]:
        lf = cfg.lf2
        levels = 1 + (lf.num_parts if self.parts else 0)
        return [("lf2", lf.cluster, k) for k in level_n_clusters(lf.n_clusters, lf.num_parts + 1)[:levels]]

    def __post_init__(self):
        super().__post_init__()
        if self.fusion not in FUSIONS:
            raise ValueError(f"LF2Method '{self.name}': fusion must be one of {FUSIONS}; got {self.fusion!r}")
        if self.dcdfa != self.source_batches:
            raise ValueError(f"LF2Method '{self.name}': source batches serve only DCDFA's pairs "
                             "(source_batches must equal dcdfa)")
        if not self.mean_net:
            raise ValueError(f"LF2Method '{self.name}': LF² needs the Mean-Net (the teacher, Eq. 4)")
        if self.fm_loss and self.fusion != "fm":
            raise ValueError(f"LF2Method '{self.name}': fm_loss trains the Fusion Module, which only "
                             f"fusion='fm' has; got fusion={self.fusion!r}")

    @property
    def parts(self) -> bool:
        return self.fusion != "none"

    def _dcdfa(self) -> DCDFAMethod:
        return DCDFAMethod(self.name)

    def extra_modules(self, model: nn.Module, cfg) -> nn.ModuleDict:
        check_lf2_config(cfg)
        c, lf = model.feat_dim, cfg.lf2
        mods = nn.ModuleDict()
        if self.parts:
            mods["experts"] = Experts(c, lf.num_parts)
        if self.fusion == "fm":
            mods["fm"] = FusionModule(c, lf.num_parts, lf.reduction, lf.fm_mode)
        if self.dcdfa:
            mods.update(self._dcdfa().extra_modules(model, cfg))
        return mods

    def pseudo_labels(self, ctx: ClusterContext) -> LabelSets:
        cfg, lf, u = ctx.cfg, ctx.cfg.lf2, ctx.cfg.uda
        feats, bn = level_features(ctx.eval_net, ctx.model, ctx.modules["fm"] if self.fusion == "fm" else None,
                                   ctx.items, cfg, ctx.device, self.fusion, ctx.progress)
        feats = [clustering_features(f, ctx) for f in feats]     # camera-centred when uda.camera_norm
        ks = level_n_clusters(lf.n_clusters, lf.num_parts + 1)[:len(feats)]
        labels = on_rank0(lambda: cluster_levels(      # under torchrun: rank 0 clusters, the others get its labels
            feats, method=lf.cluster, n_clusters=ks, seed=cfg.seed,
            **({} if lf.cluster == "kmeans" else {"eps": u.eps, "min_samples": u.min_samples, "k1": u.k1, "k2": u.k2,
                                            "noise": u.auto_eps_noise})))
        return LabelSets([np.asarray(v) for v in labels], bn, [f"P{j}" for j in range(len(feats))])

    def extra_terms(self, ctx: StepContext) -> dict[str, torch.Tensor]:
        cfg, lf = ctx.cfg, ctx.cfg.lf2
        out, y0 = ctx.out_t, ctx.y_t
        l_cls = lf2_cls_loss(out["logits"][ctx.target_head], y0, lf.label_smoothing)
        l_tri = batch_hard_triplet(out["f"], y0, margin=cfg.loss.triplet_margin)
        l_parts: list[torch.Tensor] = []
        if self.parts:
            y = ctx.y_levels
            if y is None or y.shape[0] != lf.num_parts + 1:
                raise ValueError(f"{self.name}: the step needs the labels of all {lf.num_parts + 1} levels "
                                 f"(StepContext.y_levels); got {None if y is None else tuple(y.shape)}")
            f_raw = part_features(out["fmap"], lf.num_parts)            # F^Pj (student)
            f_parts = ctx.modules["experts"](f_raw)                     # f^Pj = Expert-j(F^Pj)
            for j in range(lf.num_parts):
                keep = y[j + 1] >= 0
                l_parts.append(softmax_triplet(f_parts[keep, j], y[j + 1][keep]))
        terms = lf2_total(l_cls, l_tri, l_parts, lf.alpha, lf.lam, lf.gamma)
        if self.fm_loss and lf.w_fm:
            if ctx.teacher is None or ctx.x_t is None:
                raise ValueError(f"{self.name}: the Fusion Module's loss needs the teacher and the target "
                                 "images in the StepContext")
            with torch.no_grad():
                phi0_map = ctx.teacher(ctx.x_t)["fmap"]                 # Φ^P0 of the batch
            phi = ctx.modules["fm"](phi0_map, f_raw.detach())           # φ^Pj
            terms["fm"] = lf.w_fm * sum(fusion_loss(phi[:, j], y[j + 1]) for j in range(lf.num_parts))
        if self.dcdfa:
            terms.update(self._dcdfa().extra_terms(ctx))
        return terms

    def chance_values(self, cfg) -> dict[str, float]:
        """The FM term (a softmax triplet per part, summed over the K parts) at K · ln 2, weighted; with DCDFA's
        terms, theirs."""
        out = self._dcdfa().chance_values(cfg) if self.dcdfa else {}
        if self.fm_loss and cfg.lf2.w_fm > 0:
            out["fm"] = cfg.lf2.w_fm * cfg.lf2.num_parts * LN2
        return out

    def epoch_diagnostics(self, ctx: EpochContext) -> dict:
        return self._dcdfa().epoch_diagnostics(ctx) if self.dcdfa else {}

    def test_net(self, ctx: EvalContext) -> tuple[nn.Module, str]:
        """The teacher's global + part features concatenated (sec. III-C); for the baseline, which has no
        parts (Table II "Baseline (only L^t_ReID)"), its global feature alone."""
        if not self.parts:
            return ConcatFeatureNet(ctx.eval_net, global_only=True), "feat"
        return ConcatFeatureNet(ctx.eval_net, ctx.cfg.lf2.num_parts), "feat"

    def extra_evaluations(self, ctx: EvalContext) -> dict[str, nn.Module]:
        """``global``: the teacher's global feature alone (the rows with parts); with DCDFA, its "b only"
        (the global feature is already the pre-neck f′ that Table 2 compares b′ with)."""
        out = {"global": ConcatFeatureNet(ctx.eval_net, global_only=True)} if self.parts else {}
        if self.dcdfa:
            out["b"] = self._dcdfa().extra_evaluations(ctx)["b"]
        return out
