"""``model.channels_last``: the same network in NHWC memory layout (models/backbone.py ReidNet.use_channels_last).

A speed switch: the layout must reach the weights and the images (else it buys nothing), survive what a run
does to a model (a checkpoint loaded into it, the Mean-Net copied from it, a training step) and change the
outputs by float rounding only.
"""
from __future__ import annotations

import copy

import torch

from reid_uda_lib.config import get_preset
from reid_uda_lib.models import MeanTeacher, build_model


def _model(arch: str, channels_last: bool, seed: int = 0):
    torch.manual_seed(seed)
    cfg = get_preset("tiny", **{"model.arch": arch, "model.weights": None, "model.channels_last": channels_last})
    return build_model(cfg.model, num_classes=5)


def _is_nhwc(t: torch.Tensor) -> bool:
    """NHWC and not also NCHW (a tensor with one channel, or a 1x1 map, is both)."""
    return t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last) and not t.is_contiguous()


def test_default_layout_is_unchanged():
    net = _model("mobilenet_v2", False)
    assert net.memory_format == torch.contiguous_format
    assert all(p.is_contiguous() for p in net.parameters())


def test_weights_images_and_maps_are_nhwc_and_outputs_equal():
    for arch in ("mobilenet_v2", "resnet18"):
        ref, net = _model(arch, False).eval(), _model(arch, True).eval()
        conv_weights = [p for p in net.backbone.parameters()
                        if p.dim() == 4 and p.shape[1] > 1 and p.shape[2] * p.shape[3] > 1]
        assert conv_weights and all(_is_nhwc(p) for p in conv_weights), arch
        x = torch.randn(3, 3, 64, 32)                                   # an ordinary NCHW batch
        seen = []
        hook = net.backbone.register_forward_pre_hook(lambda m, args: seen.append(args[0]))
        with torch.no_grad():
            a, b = ref(x), net(x)
        hook.remove()
        assert _is_nhwc(seen[0]), f"{arch}: the images reach the backbone in NCHW"
        assert _is_nhwc(b["fmap"]), arch
        for key in ("f", "bn"):
            torch.testing.assert_close(b[key], a[key], rtol=1e-4, atol=1e-5)


def test_layout_survives_a_checkpoint_the_mean_net_and_a_step():
    ref = _model("mobilenet_v2", False)
    net = _model("mobilenet_v2", True, seed=1)
    net.load_state_dict(ref.state_dict())                               # a contiguous checkpoint
    first = net.backbone.features[0][0].weight
    assert _is_nhwc(first) and torch.equal(first, ref.backbone.features[0][0].weight)
    teacher = MeanTeacher(net, momentum=0.9)
    assert teacher.module.memory_format == torch.channels_last and _is_nhwc(teacher.module.backbone.features[0][0].weight)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    out = net.train()(torch.randn(8, 3, 64, 32))
    out["logits"]["source"].logsumexp(1).mean().backward()
    opt.step()
    teacher.update(net)
    assert _is_nhwc(net.backbone.features[0][0].weight)
    assert _is_nhwc(copy.deepcopy(net).backbone.features[0][0].weight)


def test_the_switch_is_read_from_the_config():
    cfg = get_preset("cpu")
    assert isinstance(cfg.model.channels_last, bool)
    net = build_model(get_preset("tiny", **{"model.channels_last": True}).model)
    assert net.memory_format == torch.channels_last
