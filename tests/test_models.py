"""ReidNet outputs, heads, last stride, and the weights loader (local files, wrong files, offline)."""
from __future__ import annotations

import urllib.error

import pytest
import torch
import torchvision

from reid_uda_lib.config import ModelConfig
from reid_uda_lib.models import ReidNet, WeightsError, build_model, guess_arch, imagenet_file_name


def _tiny(num_classes: int = 7) -> ReidNet:
    torch.manual_seed(0)
    return build_model(ModelConfig(arch="tiny"), num_classes=num_classes)


@pytest.mark.parametrize("train", [True, False])
def test_tiny_outputs_in_train_and_eval_mode(train):
    model = _tiny(7).train(train)
    out = model(torch.randn(4, 3, 64, 32))
    assert set(out) == {"fmap", "f", "bn", "logits"}
    assert model.feat_dim == 128
    assert out["fmap"].shape == (4, 128, 4, 2)  # total stride 16 with last stride 1
    assert out["f"].shape == out["bn"].shape == (4, 128)
    assert torch.allclose(out["f"], out["fmap"].mean(dim=(2, 3)))
    assert list(out["logits"]) == ["source"] and out["logits"]["source"].shape == (4, 7)
    # logits are the source head applied to the BNNeck output
    assert torch.allclose(out["logits"]["source"], out["bn"] @ model.classifiers["source"].weight.t(), atol=1e-6)


def test_tiny_is_small():
    n = sum(p.numel() for p in _tiny(0).parameters())
    assert n < 1_000_000


def test_bnneck_and_classifier_init():
    model = _tiny(751)
    assert torch.equal(model.bnneck.weight, torch.ones(128))
    assert torch.equal(model.bnneck.bias, torch.zeros(128))
    assert model.bnneck.bias.requires_grad is False and model.bnneck.weight.requires_grad
    head = model.classifiers["source"]
    assert head.bias is None and head.weight.shape == (751, 128)
    assert 0.0009 < float(head.weight.detach().std()) < 0.0011  # normal(0, 0.001): 96k samples
    assert abs(float(head.weight.detach().mean())) < 1e-4
    assert len(build_model(ModelConfig(arch="tiny"), num_classes=0).classifiers) == 0


@pytest.mark.parametrize("arch,dim,block_attr", [("resnet18", 512, "conv1"), ("resnet50", 2048, "conv2")])
def test_resnet_last_stride(arch, dim, block_attr):
    for last_stride, size in [(1, (4, 2)), (2, (2, 1))]:  # 64x32 input: stride 16 vs 32
        model = build_model(ModelConfig(arch=arch, last_stride=last_stride), num_classes=3).eval()
        block = model.backbone.layer4[0]
        assert getattr(block, block_attr).stride == (last_stride, last_stride)
        assert block.downsample[0].stride == (last_stride, last_stride)
        if arch == "resnet18":  # one forward is enough to see the map size; resnet50 only checks strides
            with torch.no_grad():
                out = model(torch.randn(1, 3, 64, 32))
            assert out["fmap"].shape == (1, dim, *size)
        assert model.feat_dim == dim


def test_set_and_remove_classifier():
    model = _tiny(5)
    w = torch.nn.functional.normalize(torch.randn(9, 128), dim=1)
    head = model.set_classifier("target", 9, weight=w)
    assert torch.equal(head.weight, w) and head.weight.requires_grad
    assert head.weight.data_ptr() != w.data_ptr()  # a copy: training the head leaves the centroids alone
    out = model(torch.randn(2, 3, 64, 32))
    assert set(out["logits"]) == {"source", "target"} and out["logits"]["target"].shape == (2, 9)
    model.set_classifier("source", 4)  # re-create with another size
    assert model.classifiers["source"].weight.shape == (4, 128)
    model.remove_classifier("target")
    assert list(model.classifiers) == ["source"]
    with pytest.raises(KeyError, match="no classifier named 'target'"):
        model.remove_classifier("target")
    with pytest.raises(ValueError, match=r"must have shape \(3, 128\); got \(3, 64\)"):
        model.set_classifier("x", 3, weight=torch.zeros(3, 64))
    with pytest.raises(ValueError, match="num_classes >= 1"):
        model.set_classifier("x", 0)
    with pytest.raises(ValueError, match="without '.'"):
        model.set_classifier("a.b", 3)


def test_new_head_follows_model_dtype():
    model = _tiny(2).double()
    assert model.set_classifier("t", 3).weight.dtype == torch.float64
    out = model(torch.randn(2, 3, 64, 32, dtype=torch.float64))
    assert out["logits"]["t"].dtype == torch.float64


def test_load_state_dict_creates_missing_heads():
    src = _tiny(5)
    src.set_classifier("target", 11)
    dst = _tiny(5)
    dst.load_state_dict(src.state_dict())
    assert torch.equal(dst.classifiers["target"].weight, src.classifiers["target"].weight)
    wrong = _tiny(6)  # same head name, other size: still an error
    with pytest.raises(RuntimeError, match="size mismatch"):
        wrong.load_state_dict(src.state_dict())


def test_bad_config_and_input():
    with pytest.raises(ValueError, match="model.arch must be one of tiny, resnet18, resnet50, mobilenet_v2; got 'vgg'"):
        build_model(ModelConfig(arch="vgg"))
    with pytest.raises(ValueError, match="model.last_stride must be 1 or 2"):
        build_model(ModelConfig(arch="tiny", last_stride=3))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        _tiny()(torch.randn(3, 64, 32))


# -- weights -------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def resnet18_file(tmp_path_factory):
    """A torchvision-format resnet18 state dict (random weights; no download)."""
    torch.manual_seed(1)
    state = torchvision.models.resnet18(weights=None).state_dict()
    path = tmp_path_factory.mktemp("w") / "resnet18-local.pth"
    torch.save(state, path)
    return path, state


def _assert_backbone_equals(model: ReidNet, state: dict) -> None:
    own = model.backbone.state_dict()
    assert set(own) == {k for k in state if not k.startswith("fc.")}
    assert all(torch.equal(own[k], state[k]) for k in own)


def test_weights_from_local_torchvision_file(resnet18_file):
    path, state = resnet18_file
    model = build_model(ModelConfig(arch="resnet18", weights=str(path)), num_classes=3)
    _assert_backbone_equals(model, state)


def test_weights_with_dataparallel_prefix(resnet18_file, tmp_path):
    _, state = resnet18_file
    path = tmp_path / "dp.pth"
    torch.save({f"module.{k}": v for k, v in state.items()}, path)
    _assert_backbone_equals(build_model(ModelConfig(arch="resnet18", weights=str(path))), state)


def test_wrong_weight_files(resnet18_file, tmp_path):
    missing = tmp_path / "nope.pth"
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        build_model(ModelConfig(arch="resnet18", weights=str(missing)))
    text = tmp_path / "notes.pth"
    text.write_text("not a torch file")
    with pytest.raises(WeightsError, match="notes.pth could not be read as a torch state dict"):
        build_model(ModelConfig(arch="resnet18", weights=str(text)))
    lst = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], lst)
    with pytest.raises(WeightsError, match="list.pth does not hold a state dict.*a list"):
        build_model(ModelConfig(arch="resnet18", weights=str(lst)))
    r34 = tmp_path / "r34.pth"
    torch.save(torchvision.models.resnet34(weights=None).state_dict(), r34)
    with pytest.raises(WeightsError, match=r"do not fit model.arch 'resnet18': \d+ unexpected keys "
                                           r"\(e.g. \['layer1.2.conv1.weight'.*seems to be for resnet34"):
        build_model(ModelConfig(arch="resnet18", weights=str(r34)))
    tiny = tmp_path / "tiny.pth"
    torch.save(_tiny(0).backbone.state_dict(), tiny)
    with pytest.raises(WeightsError, match=r"shape mismatches.*conv1.weight \(16, 3, 3, 3\) vs \(64, 3, 7, 7\)"
                                           r".*seems to be for tiny"):
        build_model(ModelConfig(arch="resnet18", weights=str(tiny)))
    path, _ = resnet18_file
    with pytest.raises(WeightsError, match=r"missing keys.*layer1.0.conv3.weight.*seems to be for resnet18"):
        build_model(ModelConfig(arch="resnet50", weights=str(path)))
    with pytest.raises(WeightsError, match="'tiny' has no pretrained weights"):
        build_model(ModelConfig(arch="tiny", weights=str(path)))


def test_guess_arch_on_our_checkpoint():
    assert "reid_uda_lib model checkpoint" in guess_arch(_tiny(3).state_dict())


def test_imagenet_offline_error(monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", offline)
    name = imagenet_file_name("resnet50")
    assert name == "resnet50-0676ba61.pth"
    with pytest.raises(RuntimeError) as err:
        build_model(ModelConfig(arch="resnet50", weights="imagenet"))
    msg = str(err.value)
    assert "appears to be offline" in msg and "name resolution" in msg
    assert f'ModelConfig(weights="/path/to/{name}")' in msg
    assert f"--set model.weights=/path/to/{name}" in msg


def test_imagenet_goes_through_torchvision_api(monkeypatch, resnet18_file):
    _, state = resnet18_file
    urls = []

    def fake_download(url, *args, **kwargs):
        urls.append(url)
        return dict(state)

    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", fake_download)
    model = build_model(ModelConfig(arch="resnet18", weights="imagenet"))
    assert urls == [torchvision.models.ResNet18_Weights.IMAGENET1K_V1.url]
    _assert_backbone_equals(model, state)


def test_tiny_backbone_keeps_torchvisions_initialisation():
    """He-normal convs (fan_out) as torchvision's ResNet: every tiny-preset number rests on it (a property once
    swallowed this loop and every tiny run changed)."""
    import math
    from reid_uda_lib.models.tiny import TinyBackbone
    torch.manual_seed(0)
    net = TinyBackbone(last_stride=2)
    conv = net.layer3[0].conv1
    fan_out = conv.out_channels * conv.kernel_size[0] * conv.kernel_size[1]
    assert float(conv.weight.detach().std()) == pytest.approx(math.sqrt(2.0 / fan_out), rel=0.1)
    assert net.last_block is net.layer4[-1]
