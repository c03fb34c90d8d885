"""Backbones and the ReID network: backbone → feature map → GAP → f → BNNeck → bn → classifier heads.

The BNNeck follows "Bag of tricks and a strong baseline for deep person re-ID" (Luo et al. 2019): the
triplet loss and the memory bank see the pooled feature ``f``, the classifiers see the batch-normalised
``bn`` (also the inference feature). The feature map is part of the output so later plug-ins (DCDFA
channel attention on ``f``; LF² part split of the map, Fusion Module, experts) can work on it, and the
forward is split into :meth:`ReidNet.pool`, :meth:`ReidNet.neck` and :meth:`ReidNet.classify`.
"""
from __future__ import annotations

from typing import Any, Optional

import torch
import torchvision
from torch import nn

from .maxpool import StemMaxPool2d
from .mobilenet import MobileNetV2Backbone
from .tiny import TinyBackbone
from .weights import load_backbone_weights

ARCHS = ("tiny", "resnet18", "resnet50", "mobilenet_v2")


class ResNetBackbone(nn.Module):
    """A torchvision ResNet without ``avgpool``/``fc``; ``forward`` returns the last feature map.

    Parameter names are torchvision's (``conv1.weight``, ``layer1.0.conv1.weight``, ...), so torchvision
    state dicts load directly. ``last_stride=1`` sets the stride of ``layer4``'s first block to 1 (both
    its strided conv and its downsample shortcut), doubling the map's height and width (ReID practice,
    LF² sec. IV-B).
    """

    def __init__(self, arch: str, last_stride: int = 1):
        super().__init__()
        net = getattr(torchvision.models, arch)(weights=None)
        block = net.layer4[0]
        # torchvision puts the stride on conv2 of a Bottleneck (ResNet v1.5) and on conv1 of a BasicBlock
        strided = block.conv2 if isinstance(block, torchvision.models.resnet.Bottleneck) else block.conv1
        strided.stride = (last_stride, last_stride)
        block.downsample[0].stride = (last_stride, last_stride)
        net.maxpool = StemMaxPool2d(3, stride=2, padding=1)      # torchvision's, with a faster CPU path
        for name in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"):
            setattr(self, name, getattr(net, name))
        self.out_channels = net.fc.in_features

    @property
    def last_block(self) -> nn.Module:
        """The last block of ``layer4``: its output is the feature map that is pooled into f."""
        return self.layer4[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


def build_backbone(arch: str, last_stride: int = 1, weights: Optional[str] = None) -> nn.Module:
    """Backbone module with ``out_channels`` and ``layer1..layer4``; ``weights`` as in :func:`build_model`."""
    if arch not in ARCHS:
        raise ValueError(f"model.arch must be one of {', '.join(ARCHS)}; got {arch!r}")
    if last_stride not in (1, 2):
        raise ValueError(f"model.last_stride must be 1 or 2; got {last_stride!r}")
    if arch == "tiny":
        backbone = TinyBackbone(last_stride)
    elif arch == "mobilenet_v2":
        backbone = MobileNetV2Backbone(last_stride)
    else:
        backbone = ResNetBackbone(arch, last_stride)
    load_backbone_weights(backbone, weights, arch)
    return backbone


class ReidNet(nn.Module):
    """Backbone + GAP + BNNeck + named linear classifier heads.

    ``forward(x)`` returns, in train and eval mode, a dict with

    * ``"fmap"``: (B, C, h, w) last feature map,
    * ``"f"``: (B, C) global-average-pooled feature (triplet loss, memory bank, DCDFA),
    * ``"bn"``: (B, C) BNNeck output (inference feature, classifier input),
    * ``"logits"``: ``{name: (B, n_name)}`` one entry per head in :attr:`classifiers`.
    """

    def __init__(self, backbone: nn.Module, num_classes: int = 0, channels_last: bool = False):
        super().__init__()
        self.backbone = backbone
        #: the memory layout the images are put in before the backbone (see :meth:`use_channels_last`)
        self.memory_format = torch.contiguous_format
        self.feat_dim: int = int(backbone.out_channels)
        self.bnneck = nn.BatchNorm1d(self.feat_dim)
        nn.init.ones_(self.bnneck.weight)
        nn.init.zeros_(self.bnneck.bias)
        self.bnneck.bias.requires_grad_(False)  # Bag of tricks: no shift in the BNNeck
        self.classifiers = nn.ModuleDict()
        if num_classes > 0:
            self.set_classifier("source", num_classes)
        if channels_last:
            self.use_channels_last()

    def use_channels_last(self) -> "ReidNet":
        """Keep the backbone's 4-d weights and the input images in channels-last (NHWC) layout.

        ``model.channels_last`` in the config. Every later ``load_state_dict`` copies into these tensors and
        keeps their layout, and a Mean-Net copied from the model inherits it. Only the layout changes: the
        outputs equal the default layout's up to float rounding (``tests/test_channels_last.py``).
        """
        self.backbone.to(memory_format=torch.channels_last)
        self.memory_format = torch.channels_last
        return self

    # -- forward pieces ----------------------------------------------------------------------------
    @staticmethod
    def pool(fmap: torch.Tensor) -> torch.Tensor:
        """Global average pooling (B, C, h, w) → (B, C)."""
        return fmap.mean(dim=(2, 3))

    def neck(self, f: torch.Tensor) -> torch.Tensor:
        """BNNeck (B, C) → (B, C)."""
        return self.bnneck(f)

    def classify(self, bn: torch.Tensor) -> dict[str, torch.Tensor]:
        """Logits of every head on the BNNeck feature."""
        return {name: head(bn) for name, head in self.classifiers.items()}

    def forward(self, x: torch.Tensor) -> dict[str, Any]:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"ReidNet expects images of shape (B, 3, H, W); got {tuple(x.shape)}")
        fmap = self.backbone(x.contiguous(memory_format=self.memory_format))
        f = self.pool(fmap)
        bn = self.neck(f)
        return {"fmap": fmap, "f": f, "bn": bn, "logits": self.classify(bn)}

    # -- heads ---------------------------------------------------------------------------------------
    def set_classifier(self, name: str, num_classes: int, weight: Optional[torch.Tensor] = None) -> nn.Linear:
        """(Re)create head ``name``: ``Linear(C, num_classes, bias=False)`` on the model's device.

        ``weight`` (num_classes, C), e.g. L2-normalised cluster centroids, initialises it; otherwise
        normal(0, 0.001) (Bag of tricks). An existing head of that name is replaced.
        """
        if not isinstance(name, str) or not name or "." in name:
            raise ValueError(f"classifier name must be a non-empty string without '.'; got {name!r}")
        if int(num_classes) < 1:
            raise ValueError(f"classifier '{name}' needs num_classes >= 1; got {num_classes}")
        ref = self.bnneck.weight
        head = nn.Linear(self.feat_dim, int(num_classes), bias=False, device=ref.device, dtype=ref.dtype)
        if weight is None:
            nn.init.normal_(head.weight, std=0.001)
        else:
            if tuple(weight.shape) != (int(num_classes), self.feat_dim):
                raise ValueError(f"weight for classifier '{name}' must have shape ({num_classes}, "
                                 f"{self.feat_dim}); got {tuple(weight.shape)}")
            with torch.no_grad():
                head.weight.copy_(weight.detach())
        self.classifiers[name] = head
        return head

    def remove_classifier(self, name: str) -> None:
        """Delete head ``name``."""
        if name not in self.classifiers:
            raise KeyError(f"no classifier named {name!r}; heads: {list(self.classifiers)}")
        del self.classifiers[name]

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """``nn.Module.load_state_dict``, creating heads the state has and the model lacks.

        A checkpoint saved with an extra head (e.g. a per-epoch target head) thus loads into a freshly
        built model; heads present in both must have the same shape (else the usual error).
        """
        for key, value in state_dict.items():
            parts = key.split(".")
            if len(parts) == 3 and parts[0] == "classifiers" and parts[2] == "weight" \
                    and parts[1] not in self.classifiers and value.dim() == 2:
                self.set_classifier(parts[1], value.shape[0])
        return super().load_state_dict(state_dict, strict=strict, assign=assign)


def build_model(cfg_model: Any, num_classes: int = 0, read_weights: bool = True) -> ReidNet:
    """Build the ReID network from a :class:`reid_uda_lib.config.ModelConfig`.

    Parameters
    ----------
    cfg_model : has ``arch`` ("tiny" | "resnet18" | "resnet50" | "mobilenet_v2"), ``weights`` (None |
        "imagenet" | path to a torchvision state dict), ``last_stride`` (1 | 2) and, optionally,
        ``channels_last`` (:meth:`ReidNet.use_channels_last`).
    num_classes : > 0 creates the ``"source"`` head with that many identities.
    read_weights : False leaves the backbone at its random initialisation whatever ``weights`` says: for a
        model whose every tensor a checkpoint replaces next (adaptation from a pretrained model, evaluation,
        a finished run loaded back), so no ImageNet file is read, needed or announced. The random
        generator is used exactly as with ``True`` (the initial weights are copied over the initialisation).
    """
    for field in ("arch", "weights", "last_stride"):
        if not hasattr(cfg_model, field):
            raise TypeError(f"build_model needs a ModelConfig with field '{field}'; "
                            f"got {type(cfg_model).__name__}")
    backbone = build_backbone(cfg_model.arch, int(cfg_model.last_stride), cfg_model.weights if read_weights else None)
    return ReidNet(backbone, num_classes=num_classes, channels_last=bool(getattr(cfg_model, "channels_last", False)))
