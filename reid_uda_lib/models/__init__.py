"""Networks: backbones (tiny / resnet18 / resnet50), the BNNeck ReID head, the Mean-Net, weight loading."""
from __future__ import annotations

from .backbone import ARCHS, ReidNet, ResNetBackbone, build_backbone, build_model
from .ema import MeanTeacher
from .tiny import TinyBackbone
from .weights import WeightsError, guess_arch, imagenet_file_name, load_backbone_weights

__all__ = ["ARCHS", "ReidNet", "ResNetBackbone", "TinyBackbone", "build_backbone", "build_model",
           "MeanTeacher", "WeightsError", "guess_arch", "imagenet_file_name", "load_backbone_weights"]
