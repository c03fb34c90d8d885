"""The registry of UDA methods: plug-ins to the one loop in :mod:`reid_uda_lib.engine.uda`.

The interface (four hooks) is :class:`~reid_uda_lib.engine.method_base.UDAMethod`. The rows of DCDFA
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
dcdfa                yes        yes          Table 2/3 SBase + DCDFA (all three; also logs "b only")
sbase_dann           yes        yes          sec. 4.2.2 SBase + adversarial domain classifier [10]
lf2_base             yes        no           LF² Table II Baseline (only L^t_ReID), target-only batches
lf2_nofm             yes        no           LF² Table II "w/o FM": part levels from the teacher's stripes
lf2                  yes        no           LF² (Eq. 5-10): Fusion Module levels, experts, part losses
lf2_dcdfa            yes        no           LF² + DCDFA's terms on the global feature (source batches
                                             for the pairs only)
oracle               yes        yes          the upper reference: SBase with the target's true identities
                                             as its labels (engine/oracle.py; needs a labelled target)
===================  =========  ===========  ====================================================

The LF² rows train on target-only batches without SBase's shared terms (engine/method_lf2.py); the
cluster-number rows of LF² Table II are ``lf2`` with ``--set lf2.n_clusters=500`` (700, 900).
"""
from __future__ import annotations

from .method_base import EpochContext, StepContext, UDAMethod
from .method_dann import DANNMethod
from .method_dcdfa import DCDFAMethod
from .method_lf2 import LF2Method
from .oracle import OracleMethod

METHODS: dict[str, UDAMethod] = {
    m.name: m for m in (
        UDAMethod("base", mean_net=False, memory_bank=False,
                  description="clustering baseline: DBSCAN pseudo labels, CE-LS + triplet on both domains"),
        UDAMethod("base_mb", mean_net=False, memory_bank=True, description="Base + memory bank"),
        UDAMethod("base_meannet", mean_net=True, memory_bank=False, description="Base + Mean-Net"),
        UDAMethod("sbase", mean_net=True, memory_bank=True,
                  description="strong baseline: Base + memory bank + Mean-Net (DCDFA sec. 4.1)"),
        DCDFAMethod("dcdfa_cid", use_domain=False, use_rreid=False, eval_b=False,
                    description="SBase + L_CID (DCDFA Table 3, row 2)"),
        DCDFAMethod("dcdfa_cid_rreid", use_domain=False, use_rreid=True, eval_b=False,
                    description="SBase + L_CID + L^b_RReID (DCDFA Table 3, row 3)"),
        DCDFAMethod("dcdfa_cid_domain", use_domain=True, use_rreid=False, eval_b=False,
                    description="SBase + L_CID + L_Domain (DCDFA Table 3, row 4)"),
        DCDFAMethod("dcdfa", description="SBase + DCDFA: L_CID + L_Domain + L^b_RReID (DCDFA Tables 2-3)"),
        DANNMethod("sbase_dann", description="SBase + gradient reversal + domain classifier on f (DANN)"),
        LF2Method("lf2_base", fusion="none", description="LF² baseline: teacher-student, global k-means "
                  "labels, L^t_ReID only (LF² Table II)"),
        LF2Method("lf2_nofm", fusion="split", description="LF² without the Fusion Module: part levels "
                  "clustered from the teacher's stripes (LF² Table II)"),
        LF2Method("lf2", fusion="fm", description="LF²: Fusion Module, multi-level k-means, experts, "
                  "Eq. 10 (LF² Tables I-II)"),
        LF2Method("lf2_dcdfa", fusion="fm", dcdfa=True, source_batches=True,
                  description="LF² + DCDFA's split, recomposition, L_CID, L_Domain, L^b_RReID on f^P0"),
        OracleMethod("oracle", description="upper reference: SBase's loop with the target's true identities "
                     "in place of pseudo labels (needs a labelled target)"),
    )
}


def get_method(name: str) -> UDAMethod:
    if name not in METHODS:
        raise KeyError(f"unknown UDA method '{name}'; available: {', '.join(METHODS)}")
    return METHODS[name]


__all__ = ["METHODS", "get_method", "UDAMethod", "StepContext", "EpochContext"]
