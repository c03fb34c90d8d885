"""The UDA methods: plug-ins to the one loop of :mod:`reid_uda_lib.train.uda`.

=====================  ==========================================================================
module                 what
=====================  ==========================================================================
:mod:`.base`           the interface: six hooks, the switches, the registry fields, the contexts
:mod:`.registry`       :data:`METHODS`: one entry per method, its only record
:mod:`.validate`       the config checked once where a run starts (shared rules + each method's)
:mod:`.rules`          the building blocks of those rules
(one file a method)    :mod:`.oracle` (SBase's loop on the true identities), :mod:`.dcdfa` (+ its probes,
                       :mod:`.dcdfa_probes`), :mod:`.dann`, :mod:`.lf2`; SBase and its Table 1 rows are
                       settings of the base class
=====================  ==========================================================================
"""
from .base import ClusterContext, EpochContext, EvalContext, LabelSets, StepContext, UDAMethod
from .registry import METHODS, get_method, register, stage_ignores
from .validate import validate_config

__all__ = ["METHODS", "get_method", "register", "stage_ignores", "validate_config", "UDAMethod", "StepContext",
           "EpochContext", "EvalContext", "ClusterContext", "LabelSets"]
