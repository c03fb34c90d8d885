"""A narrow residual CNN for CI and CPU demos (the ``tiny`` arch).

Same layout and attribute names as a torchvision ResNet (``conv1, bn1, relu, maxpool, layer1..layer4``,
built from torchvision's ``BasicBlock``) so every consumer of the backbone -- the ReID head, Grad-CAM on
``backbone.layer4``, LF² part splitting of the feature map -- treats ``tiny`` and ``resnet*`` alike.

Widths 16/32/64/128, one block per stage, total stride 16 with last stride 1 (like a ReID ResNet), about
0.3 M parameters: a 64x32 image gives a 128 x 4 x 2 feature map.
"""
from __future__ import annotations

from typing import Sequence

from torch import nn
from torchvision.models.resnet import BasicBlock

from .maxpool import StemMaxPool2d

TINY_WIDTHS = (16, 32, 64, 128)


def _stage(inplanes: int, planes: int, blocks: int, stride: int) -> nn.Sequential:
    downsample = None
    if stride != 1 or inplanes != planes:
        downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride=stride, bias=False),
                                   nn.BatchNorm2d(planes))
    layers = [BasicBlock(inplanes, planes, stride=stride, downsample=downsample)]
    layers += [BasicBlock(planes, planes) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class TinyBackbone(nn.Module):
    """Stem (3x3 conv stride 2 + max-pool) and four BasicBlock stages; ``forward`` returns the feature map.

    Parameters
    ----------
    last_stride : stride of ``layer4`` (1 keeps a 1/16 map, 2 gives 1/32).
    widths : channels of the four stages; ``out_channels`` is the last one.
    blocks : BasicBlocks per stage.
    """

    def __init__(self, last_stride: int = 1, widths: Sequence[int] = TINY_WIDTHS,
                 blocks: Sequence[int] = (1, 1, 1, 1)):
        super().__init__()
        if len(widths) != 4 or len(blocks) != 4:
            raise ValueError(f"TinyBackbone needs 4 widths and 4 block counts, got {widths} and {blocks}")
        w1, w2, w3, w4 = widths
        self.conv1 = nn.Conv2d(3, w1, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(w1)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = StemMaxPool2d(3, stride=2, padding=1)
        self.layer1 = _stage(w1, w1, blocks[0], 1)
        self.layer2 = _stage(w1, w2, blocks[1], 2)
        self.layer3 = _stage(w2, w3, blocks[2], 2)
        self.layer4 = _stage(w3, w4, blocks[3], last_stride)
        self.out_channels = w4
        # torchvision's ResNet initialisation (He normal for convs, BN weight 1 / bias 0)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    @property
    def last_block(self) -> nn.Module:
        """The last block of ``layer4`` (as for a ResNet)."""
        return self.layer4[-1]

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))
