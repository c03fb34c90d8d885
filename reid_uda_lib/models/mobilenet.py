"""MobileNetV2 (width 1.0) as a ReID backbone: the lab's ImageNet-initialised CPU network.

``features`` is torchvision's ``mobilenet_v2().features`` (stem, 17 inverted-residual blocks, the 1×1 conv to
1280 channels), so torchvision state dicts (``features.*``) load directly. Its total stride is 32, with
downsampling in the stem and in blocks 2, 4, 7 and 14; ``last_stride=1`` sets the stride of block 14's
depthwise convolution to 1 (the last downsampling, as ``layer4``'s for a ResNet), doubling the map's height and
width. ``last_block`` is the conv that produces the pooled map (Grad-CAM's layer, the gradient-share probe's).
"""
from __future__ import annotations

import torch
import torchvision
from torch import nn

#: Index in ``features`` of the block that does the last downsampling (its depthwise conv is ``conv[1][0]``).
LAST_DOWNSAMPLING_BLOCK = 14


class MobileNetV2Backbone(nn.Module):
    """torchvision's MobileNetV2 feature extractor; ``forward`` returns the (B, 1280, H/s, W/s) map."""

    def __init__(self, last_stride: int = 2):
        super().__init__()
        self.features = torchvision.models.mobilenet_v2(weights=None).features
        depthwise = self.features[LAST_DOWNSAMPLING_BLOCK].conv[1][0]
        if depthwise.groups != depthwise.in_channels or depthwise.stride != (2, 2):
            raise RuntimeError("torchvision's MobileNetV2 changed: block 14 is no longer the strided depthwise "
                               f"block ({depthwise})")
        depthwise.stride = (last_stride, last_stride)
        self.out_channels = int(self.features[-1][0].out_channels)

    @property
    def last_block(self) -> nn.Module:
        """The module whose output is the feature map that is pooled into f."""
        return self.features[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)
