"""Training engine: source pretraining and the one UDA loop with method plug-ins."""
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .common import NonFiniteLossError
from .features import evaluate_model, extract_features
from .methods import METHODS, UDAMethod, get_method
from .pretrain import pretrain
from .uda import adapt

__all__ = ["pretrain", "adapt", "evaluate_model", "extract_features", "save_checkpoint", "load_checkpoint",
           "CheckpointError", "NonFiniteLossError", "METHODS", "UDAMethod", "get_method"]
