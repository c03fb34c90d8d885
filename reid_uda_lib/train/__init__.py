"""Training: the source pretraining and the one UDA loop, which calls a method's hooks (:mod:`..methods`).

=========================  =====================================================================
module                     what
=========================  =====================================================================
:mod:`.pretrain`           supervised training on the labelled source (CE-LS + triplet)
:mod:`.uda`                the UDA loop: pseudo labels every epoch, then steps, then evaluation
:mod:`.uda_step`           one UDA step (SBase's shared terms + the method's extra terms)
:mod:`.warm_start`         ``pretrain(..., init=)``: start a pretraining from another checkpoint
:mod:`.checks`             what is checked where a run starts: config, memory, run folder
:mod:`.evaluate_checkpoint`  a saved stage scored on a dataset (``python -m reid_uda_lib evaluate``)
=========================  =====================================================================
"""
from ..core.features import evaluate_model, extract_features
from ..core.training import NonFiniteLossError
from ..methods.registry import METHODS, UDAMethod, get_method
from ..runtime.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .checks import preflight
from .pretrain import pretrain
from .uda import adapt

__all__ = ["pretrain", "adapt", "preflight", "evaluate_model", "extract_features", "save_checkpoint",
           "load_checkpoint", "CheckpointError", "NonFiniteLossError", "METHODS", "UDAMethod", "get_method"]
