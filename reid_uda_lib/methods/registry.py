"""The registry of UDA methods: plug-ins to the one loop in :mod:`reid_uda_lib.train.uda`.

The interface (six hooks) is :class:`~reid_uda_lib.methods.base.UDAMethod`. An entry here is a method's only
record: its table label, its ladder cost, the config sections it reads and its checks travel with it, and the
ladder rows (:mod:`reid_uda_lib.experiments.rows`), the provenance of a pretraining (:func:`stage_ignores`) and
the config validation (:mod:`.validate`) are derived from :data:`METHODS`. Adding a method is one file plus
one entry (docs/development.md shows a worked example). The rows of DCDFA
Tables 1–3 and the adversarial baseline are settings of that one loop:

===================  =========  ===========  ====================================================
name                 Mean-Net   memory bank  row
===================  =========  ===========  ====================================================
base                 no         no           Table 1 Baseline (Base): clustering + CE-LS + triplet
base_mb              no         yes          Table 1 Base+MB
base_meannet         yes        no           Table 1 Base+Mean-Net
sbase                yes        yes          Table 1 Base+MB+Mean-Net (SBase)
dcdfa_cid            yes        yes          Table 3 SBase + L_CID
dcdfa_cid_rreid      yes        yes          Table 3 SBase + L_CID + L^b_RReID
dcdfa_cid_domain     yes        yes          Table 3 SBase + L_CID + L_Domain
dcdfa                yes        yes          Table 2/3 SBase + DCDFA (all three; also logs Table 2's "b only"
                                             and "f only", both before the BNNeck)
sbase_dann           yes        yes          sec. 4.2.2 SBase + adversarial domain classifier [10]
lf2_base             yes        no           LF² Table II Baseline (only L^t_ReID), target-only batches,
                                             evaluated on the global feature (no parts)
lf2_nofm             yes        no           LF² Table II "w/o FM": part levels from the teacher's stripes
lf2                  yes        no           LF² (Eq. 5-10 as printed): Fusion Module levels, experts, part
                                             losses; no loss reaches the FM (Eq. 10 has no term for it)
lf2_fmloss           yes        no           this project: ``lf2`` + a term that trains the FM (lf2.w_fm);
                                             the only difference from ``lf2``
lf2_dcdfa            yes        no           ``lf2`` + DCDFA's terms on the global feature (source batches
                                             for the pairs only)
oracle               yes        yes          the upper reference: SBase with the target's true identities
                                             as its labels (methods/oracle.py; needs a labelled target)
===================  =========  ===========  ====================================================

The LF² rows train on target-only batches without SBase's shared terms (methods/lf2.py); the
cluster-number rows of LF² Table II are ``lf2`` with ``--set lf2.n_clusters=500`` (700, 900).
"""
from __future__ import annotations

from .base import EpochContext, StepContext, UDAMethod
from .dann import DANNMethod
from .dcdfa import DCDFAMethod
from .lf2 import LF2Method
from .oracle import OracleMethod

METHODS: dict[str, UDAMethod] = {
    m.name: m for m in (
        UDAMethod("base", mean_net=False, memory_bank=False, label="Base (`base`)", cost=0.7,
                  description="clustering baseline: DBSCAN pseudo labels, CE-LS + triplet on both domains"),
        UDAMethod("base_mb", mean_net=False, memory_bank=True, label="Base+MB (`base_mb`)", cost=0.9,
                  description="Base + memory bank"),
        UDAMethod("base_meannet", mean_net=True, memory_bank=False, label="Base+Mean-Net (`base_meannet`)",
                  cost=0.8, description="Base + Mean-Net"),
        UDAMethod("sbase", mean_net=True, memory_bank=True, label="SBase (`sbase`)", cost=1.0,
                  description="strong baseline: Base + memory bank + Mean-Net (DCDFA sec. 4.1)"),
        DCDFAMethod("dcdfa_cid", use_domain=False, use_rreid=False, eval_b=False, cost=1.02,
                    label="SBase+L_CID (`dcdfa_cid`)",
                    description="SBase + L_CID (DCDFA Table 3, row 2)"),
        DCDFAMethod("dcdfa_cid_rreid", use_domain=False, use_rreid=True, eval_b=False, cost=1.03,
                    label="SBase+L_CID+L^b_RReID (`dcdfa_cid_rreid`)",
                    description="SBase + L_CID + L^b_RReID (DCDFA Table 3, row 3)"),
        DCDFAMethod("dcdfa_cid_domain", use_domain=True, use_rreid=False, eval_b=False, cost=1.03,
                    label="SBase+L_CID+L_Domain (`dcdfa_cid_domain`)",
                    description="SBase + L_CID + L_Domain (DCDFA Table 3, row 4)"),
        DCDFAMethod("dcdfa", label="SBase+DCDFA (`dcdfa`)", cost=1.04, description="SBase + DCDFA: L_CID + L_Domain + L^b_RReID (DCDFA Tables 2-3)"),
        DANNMethod("sbase_dann", label="SBase+DANN (`sbase_dann`)", cost=1.1, description="SBase + gradient reversal + domain classifier on f (DANN)"),
        LF2Method("lf2_base", fusion="none", label="LF² baseline (`lf2_base`)", cost=0.81, description="LF² baseline: teacher-student, global k-means "
                  "labels, L^t_ReID only, tested on the global feature (LF² Table II)"),
        LF2Method("lf2_nofm", fusion="split", label="LF² w/o FM (`lf2_nofm`)", cost=0.82, description="LF² without the Fusion Module: part levels "
                  "clustered from the teacher's stripes (LF² Table II)"),
        # costs of lf2 (1.03) and lf2_dcdfa (1.34): measured when they had the FM term (now lf2_fmloss's); without
        # it a step saves one no-grad teacher forward (not re-measured; the cost only orders the ladder's queue)
        LF2Method("lf2", fusion="fm", label="LF² (`lf2`)", cost=1.03, description="LF²: Fusion Module, multi-level k-means, experts, "
                  "Eq. 10 as printed: no term trains the FM (LF² Tables I-II)"),
        LF2Method("lf2_fmloss", fusion="fm", fm_loss=True, label="LF² + FM term (`lf2_fmloss`)", cost=1.03,
                  description="this project's addition: LF² + a softmax-triplet term that trains the Fusion "
                  "Module (lf2.w_fm); otherwise the lf2 row"),
        LF2Method("lf2_dcdfa", fusion="fm", dcdfa=True, source_batches=True, label="LF²+DCDFA (`lf2_dcdfa`)",
                  cost=1.34, sections=("lf2", "dcdfa"),
                  description="LF² + DCDFA's split, recomposition, L_CID, L_Domain, L^b_RReID on f^P0"),
        OracleMethod("oracle", reference=True, cost=1.06, description="upper reference: SBase's loop with the target's true identities "
                     "in place of pseudo labels (needs a labelled target)"),
    )
}


def get_method(name: str) -> UDAMethod:
    if name not in METHODS:
        raise KeyError(f"unknown UDA method '{name}'; available: {', '.join(METHODS)}")
    return METHODS[name]


def register(method: UDAMethod, replace: bool = False) -> UDAMethod:
    """Add ``method`` to :data:`METHODS` from outside this file (a script's variant of a method, a test's toy
    method): it is then a valid ``uda.method``, a ladder row with its label and cost, and its sections leave
    the pretraining's identity alone. A name already registered is refused unless ``replace``."""
    if not isinstance(method, UDAMethod):
        raise TypeError(f"register expects a UDAMethod, got {type(method).__name__}")
    if method.name in METHODS and not replace:
        raise ValueError(f"UDA method '{method.name}' is already registered; pass replace=True to replace it")
    METHODS[method.name] = method
    return method


#: Sections every stage but the pretraining reads (the UDA loop's own settings).
UDA_SECTIONS = frozenset({"uda"})


def stage_ignores(stage: str) -> frozenset[str]:
    """The config sections that do not define a run of ``stage``: the source pretraining reads neither the
    UDA settings nor any method's own sections, so ``train --method base`` and ``train --method sbase`` share
    ``OUT/pretrain``. Derived from the registry: a new method's sections are ignored by pretraining at once."""
    if stage != "pretrain":
        return frozenset()
    return UDA_SECTIONS | frozenset(s for m in METHODS.values() for s in m.sections)


__all__ = ["METHODS", "get_method", "register", "stage_ignores", "UDAMethod", "StepContext", "EpochContext"]
