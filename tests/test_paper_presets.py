"""The ``paper`` and ``paper_lf2`` presets against the papers' texts, value by value.

Each row of a table is (what, the value, the sentence of the paper that states it, a note). The value is checked
against the preset, and the sentence against the paper's text (whitespace normalised), so neither the preset
nor the table can drift from the text. A value the paper does not state has no sentence and a note that says
so and why we chose it; this project's additions are listed the same way, switched off.
``paper`` = SBase and DCDFA (DCDFA, Zhang et al., sec. 3-4.1); ``paper_lf2`` = the LF² rows (Ding & Zhou,
sec. III-IV.A). Where they differ (the batch, random erasing in pretraining, the pretraining loss) each follows
its own paper.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from reid_uda_lib.config import get_preset
from reid_uda_lib.core.training import uda_optim
from reid_uda_lib.methods.registry import get_method

PAPERS = Path(os.environ.get("REID_UDA_PAPERS", Path(__file__).resolve().parents[2] / "shared" / "papers"))
TEXTS = {"DCDFA": "000_3570c817ddc15976.txt", "LF2": "002_aaade29208902e59.txt"}

#: quantities that are not one field
DERIVED = {
    "identities per batch P": lambda c: c.data.batch_size // c.data.num_instances,
    "fine-tuning learning rate": lambda c: uda_optim(c).lr,
    "the lf2 row has an FM term": lambda c: get_method("lf2").fm_loss,
}


def NOT_STATED(why: str) -> str:
    return f"not in the paper: {why}"


# (what, value, (paper, sentence) or None, note)
LF2_SECTION = [
    ("lf2.num_parts", 2, ("LF2", "In our framework, $K$ is empirically set to 2"), ""),
    ("lf2.reduction", 4, ("LF2", "In the $FM$ module, the reduction ratio $r$ is set to 4."), ""),
    ("lf2.alpha", 1.0, ("LF2", "The loss weights $\\alpha, \\lambda, \\gamma$ are set as 1, 0.5, 0.5 respectively."), ""),
    ("lf2.lam", 0.5, ("LF2", "The loss weights $\\alpha, \\lambda, \\gamma$ are set as 1, 0.5, 0.5 respectively."), ""),
    ("lf2.gamma", 0.5, ("LF2", "The loss weights $\\alpha, \\lambda, \\gamma$ are set as 1, 0.5, 0.5 respectively."), ""),
    ("lf2.label_smoothing", 0.0,
     ("LF2", "L_{cls}^t = \\frac{1}{N_t} \\sum_{i=1}^{N_t} L_{ce}(C^t(f^{P_0}(x_i)), \\hat{y}_{i,0})"),
     "Eq. 8 is a plain cross-entropy; the cpu preset's 0.1 is ours"),
    ("lf2.cluster", "kmeans", ("LF2", "we utilize K-means algorithm and set the number $M_{t,j}$ of pseudo "
                                      "identities as 500, 700 and 900, respectively."), ""),
    ("lf2.n_clusters", (700,), ("LF2", "Note that $M_{t,j}$ of global and fusion features are set as the same values"),
     "one value for every level; 700 is Table II's best on D->M (900 on M->D: --set lf2.n_clusters=900)"),
    ("lf2.fm_mode", "add", ("LF2", "we design a residual structure to aggregate $F^{P_j}$ and the output of MLP to "
                                   "obtain the attention map"),
     "Eq. 5's lines 2 and 3 read otherwise: lf2.fm_mode=mul | mul_outside"),
    ("the lf2 row has an FM term", False,
     ("LF2", "\\alpha (L_{cls}^t + \\lambda L_{tri}^t) + \\gamma \\sum_{j=1}^K L_{tri}^{P_j}"),
     "Eq. 10 has no term for the FM; ours is the row lf2_fmloss"),
]

OURS_OFF = [
    ("uda.target_bn", False, None, NOT_STATED("this project's target BatchNorm statistics (AdaBN), off")),
    ("uda.camera_norm", False, None, NOT_STATED("this project's camera-centred clustering features, off")),
    ("dcdfa.cid_centre", False, None, NOT_STATED("this project's batch-centred cosines in L_CID, off")),
]

PAPER = [
    ("model.arch", "resnet50", ("DCDFA", "We use ResNet50 pretrained on ImageNet as our backbone networks."), ""),
    ("model.weights", "imagenet", ("DCDFA", "We use ResNet50 pretrained on ImageNet as our backbone networks."), ""),
    ("model.last_stride", 1, None, NOT_STATED("1 as LF² (sec. IV-A) and Luo et al., DCDFA's ref. [25]")),
    ("data.height", 256, ("DCDFA", "All images are resized to $256 \\times 128$ ."), ""),
    ("data.width", 128, ("DCDFA", "All images are resized to $256 \\times 128$ ."), ""),
    ("data.batch_size", 64, ("DCDFA", "each mini-batch contains N=64 source-domain images of 4 identities and N=64 "
                                      "target-domain images of 4 pseudo identities, in which there are 16 images for "
                                      "each identity."), "64 per domain, so N = 64 pairs"),
    ("data.num_instances", 16, ("DCDFA", "in which there are 16 images for each identity."), ""),
    ("identities per batch P", 4, ("DCDFA", "For source pretraining, each mini-batch contains 64 images of 4 "
                                            "identities."), "pretraining reads the same data.* fields"),
    ("data.pretrain_random_erasing_p", 0.5,
     ("DCDFA", "we perform widely used data augmentation of cropping, flipping, and random erasing [45] on the "
               "images in all experiments."), "the probability 0.5 is not stated: Zhong et al.'s (ref. [45])"),
    ("data.random_erasing_p", 0.5,
     ("DCDFA", "we perform widely used data augmentation of cropping, flipping, and random erasing [45] on the "
               "images in all experiments."), "the probability 0.5 is not stated: Zhong et al.'s (ref. [45])"),
    ("data.flip_p", 0.5, ("DCDFA", "data augmentation of cropping, flipping, and random erasing"),
     "the probability is not stated: 0.5"),
    ("data.pad", 10, None, NOT_STATED("cropping after a 10-pixel zero padding (Luo et al.'s, ref. [25])")),
    ("uda.cluster", "dbscan", ("DCDFA", "Similar to [11, 38], we use the clustering algorithm of DBSCAN"), ""),
    ("uda.eps", 0.6, ("DCDFA", "where the maximum distance between neighbors is set to eps = 0.6"), ""),
    ("uda.min_samples", 4, ("DCDFA", "the minimal number of neighbors for a dense point is set to 4."), ""),
    ("uda.k1", 30, None, NOT_STATED("k1 of the Jaccard distance, 30 as MMT and SpCL (DCDFA's refs. [11], [13])")),
    ("uda.k2", 6, None, NOT_STATED("k2 of the Jaccard distance, 6 as MMT and SpCL")),
    ("optim.lr", 3.5e-4, ("DCDFA", "Adam optimizer is adopted. The initial learning rate is set to 0.00035."), ""),
    ("fine-tuning learning rate", 3.5e-4, ("DCDFA", "The initial learning rate is set to 0.00035."),
     "no decay in fine-tuning is stated: fixed, as LF²"),
    ("optim.weight_decay", 5e-4, None, NOT_STATED("5e-4, LF²'s (sec. IV-A)")),
    ("pretrain.epochs", 80, None, NOT_STATED("80, LF²'s (sec. IV-A)")),
    ("optim.milestones", (40, 70), None, NOT_STATED("x0.1 at epochs 40 and 70, LF²'s")),
    ("optim.gamma", 0.1, None, NOT_STATED("x0.1 at each milestone, LF²'s")),
    ("pretrain.iters_per_epoch", 200, None, NOT_STATED("200: about one pass over Market's 12,936 images")),
    ("uda.epochs", 80, None, NOT_STATED("80, LF²'s")),
    ("uda.iters_per_epoch", 400, None, NOT_STATED("400, LF²'s")),
    ("uda.ema_momentum", 0.999, None, NOT_STATED("the Mean-Net's momentum: LF²'s ω = 0.999")),
    ("loss.label_smoothing", 0.1, None,
     NOT_STATED("the text says \"identity loss\"; CE with ε = 0.1 as Luo et al. (ref. [25], cited for its good practices)")),
    ("loss.triplet_margin", 0.3, None, NOT_STATED("the margin of the batch-hard triplet loss, 0.3 (Hermans et al.)")),
    ("loss.memory_scale", 16.0, None, NOT_STATED("circle loss's γ, not given")),
    ("loss.memory_margin", 0.25, None, NOT_STATED("circle loss's m, not given")),
    ("loss.memory_momentum", 0.2, None, NOT_STATED("the memory slots' update, not given")),
    ("model.bn_samples", 32, None, NOT_STATED("no hardware is named: SpCL-style 4 GPUs with 16 + 16 images each "
                                              "(our assumption)")),
    ("loss.w_ce", 1.0, ("DCDFA", "found weights of 1 work well"), "L_BReID's identity term"),
    ("loss.w_triplet", 1.0, ("DCDFA", "found weights of 1 work well"), "L_BReID's triplet term, pretraining too"),
    ("loss.w_memory", 1.0, ("DCDFA", "found weights of 1 work well"), ""),
    ("dcdfa.w_cid", 1.0, ("DCDFA", "found weights of 1 work well"), ""),
    ("dcdfa.w_domain", 1.0, ("DCDFA", "found weights of 1 work well"), ""),
    ("dcdfa.w_rreid", 1.0, ("DCDFA", "found weights of 1 work well"), ""),
    ("dcdfa.reduction", 8, ("DCDFA", "The hyperparameter r (see around Eq. (3)) is set to 8."),
     "also the domain classifier's ratio: \"with a ratio of 8\""),
    ("dcdfa.dropout", 0.1, ("DCDFA", "the dropout ratio is set to 0.1 experimentally"), ""),
    ("dcdfa.tau_init", 1.0, ("DCDFA", "denotes a trainable temperature value initialized with one"), ""),
] + LF2_SECTION + OURS_OFF

PAPER_LF2 = [
    ("model.arch", "resnet50", ("LF2", "ResNet50 [36] is adopted as our backbone."), ""),
    ("model.weights", "imagenet", None, NOT_STATED("LF² does not say; ImageNet as DCDFA and Luo et al. (its ref. [37])")),
    ("model.last_stride", 1, ("LF2", "Referring to [37], the last residual layer’s stride size is set as 1."), ""),
    ("data.height", 256, ("LF2", "We resize each input image to fixed $256 \\times 128$"), ""),
    ("data.width", 128, ("LF2", "We resize each input image to fixed $256 \\times 128$"), ""),
    ("data.batch_size", 64, ("LF2", "The mini-batch size is 64, including 16 randomly selected identities with 4 "
                                    "images of each identity."), "pretraining and fine-tuning"),
    ("data.num_instances", 4, ("LF2", "including 16 randomly selected identities with 4 images of each identity."), ""),
    ("data.flip_p", 0.5, ("LF2", "random horizontal flipping, random cropping, and zero padding"),
     "the probability is not stated: 0.5"),
    ("data.pad", 10, ("LF2", "random horizontal flipping, random cropping, and zero padding"),
     "the padding's width is not stated: 10"),
    ("data.pretrain_random_erasing_p", 0.0,
     ("LF2", "Random erasing [38] is only adopted during the target-domain fine-tuning."), ""),
    ("data.random_erasing_p", 0.5, ("LF2", "Random erasing [38] is only adopted during the target-domain fine-tuning."),
     "the probability is not stated: 0.5, Zhong et al.'s (ref. [38])"),
    ("optim.lr", 3.5e-4, ("LF2", "For the source-domain pre-training, the initial learning rate is 0.00035"), ""),
    ("optim.milestones", (40, 70), ("LF2", "is decreased to its 0.1x and 0.01x at the 40th and 70th epoch in the total "
                                           "80 epochs."), ""),
    ("optim.gamma", 0.1, ("LF2", "is decreased to its 0.1x and 0.01x at the 40th and 70th epoch"), ""),
    ("pretrain.epochs", 80, ("LF2", "at the 40th and 70th epoch in the total 80 epochs."), ""),
    ("pretrain.iters_per_epoch", 200, None, NOT_STATED("200: about one pass over Market's 12,936 images")),
    ("uda.epochs", 80, ("LF2", "For the target-domain fine-tuning, we totally train 80 epochs and each epoch "
                               "contains 400 iterations."), ""),
    ("uda.iters_per_epoch", 400, ("LF2", "each epoch contains 400 iterations."), ""),
    ("fine-tuning learning rate", 3.5e-4, ("LF2", "The learning rate is fixed to 0.00035 and we use the Adam with "
                                                  "weight decay 0.0005."), ""),
    ("optim.weight_decay", 5e-4, ("LF2", "we use the Adam with weight decay 0.0005."), ""),
    ("uda.ema_momentum", 0.999, ("LF2", "The temporal ensemble momentum $\\omega$ in Eq.(4) is set to 0.999."), ""),
    ("loss.w_ce", 1.0, ("LF2", "L_{ReID}^s = L_{cls}^s + \\lambda L_{tri}^s"), "Eq. 3: pretraining"),
    ("loss.w_triplet", 0.5, ("LF2", "L_{ReID}^s = L_{cls}^s + \\lambda L_{tri}^s"),
     "Eq. 3's λ is the λ that sec. IV-A sets to 0.5 (the text names one λ)"),
    ("loss.label_smoothing", 0.0, ("LF2", "$L_{ce}$ is cross entropy loss"), "Eq. 1: plain cross-entropy"),
    ("loss.triplet_margin", 0.3, None, NOT_STATED("Eq. 2 and 9 have a margin m whose value is not given: 0.3")),
    ("model.bn_samples", 32, ("LF2", "The whole model is optimized with two GeForce RTX 2080Ti GPUs."),
     "64 images / 2 GPUs; that the batch was split evenly is our assumption"),
] + LF2_SECTION + OURS_OFF

TABLES = {"paper": PAPER, "paper_lf2": PAPER_LF2}


def _value(cfg, what: str):
    if what in DERIVED:
        return DERIVED[what](cfg)
    obj = cfg
    for part in what.split("."):
        obj = getattr(obj, part)
    return obj


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


@pytest.mark.parametrize("preset", TABLES)
def test_the_paper_preset_holds_the_papers_values(preset):
    cfg = get_preset(preset)
    wrong = []
    for what, value, source, note in TABLES[preset]:
        got = _value(cfg, what)
        same = got == pytest.approx(value) if isinstance(value, float) else got == value
        if not same:
            said = f'"{source[1]}" ({source[0]})' if source else note
            wrong.append(f"{what} = {got!r}, expected {value!r}: {said}")
    assert not wrong, f"{preset}: " + "; ".join(wrong)


@pytest.mark.parametrize("preset", TABLES)
def test_every_row_has_its_sentence_or_says_it_is_not_in_the_paper(preset):
    for what, _, source, note in TABLES[preset]:
        assert source or note.startswith("not in the paper: "), f"{preset}: {what} has neither a sentence nor a note"
    texts = {}
    for name, file in TEXTS.items():
        path = PAPERS / file
        if not path.is_file():
            pytest.skip(f"the papers' texts are not at {PAPERS} (set REID_UDA_PAPERS to their folder)")
        texts[name] = _norm(path.read_text(encoding="utf-8"))
    missing = [f"{what}: {source[1]!r} not in {source[0]}" for what, _, source, _ in TABLES[preset]
               if source and _norm(source[1]) not in texts[source[0]]]
    assert not missing, "; ".join(missing)


def test_the_two_paper_presets_differ_where_the_papers_do():
    """DCDFA: 4 identities x 16 images and random erasing in pretraining; LF²: 16 x 4, erasing in fine-tuning
    only, Eq. 1-3's plain CE with λ = 0.5. What neither paper has is off in both."""
    d, l = get_preset("paper"), get_preset("paper_lf2")
    assert (d.data.num_instances, l.data.num_instances) == (16, 4)
    assert (d.data.pretrain_random_erasing_p, l.data.pretrain_random_erasing_p) == (0.5, 0.0)
    assert (d.loss.w_triplet, l.loss.w_triplet) == (1.0, 0.5)
    assert (d.loss.label_smoothing, l.loss.label_smoothing) == (0.1, 0.0)
    for cfg in (d, l):
        assert not cfg.uda.target_bn and not cfg.uda.camera_norm and cfg.lf2.label_smoothing == 0.0
