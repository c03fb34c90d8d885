"""Grad-CAM, the attention read-outs and load_run on trained ``tiny`` networks (the tiny synthetic pair)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from reid_uda_lib import viz
from reid_uda_lib.analysis import dcdfa_features, fusion_attention, load_run
from reid_uda_lib.config import ModelConfig
from reid_uda_lib.train import adapt
from reid_uda_lib.models import build_model
from uda_helpers import tiny_cfg


@pytest.fixture(scope="module")
def lf2_dcdfa_run(tiny_pretrained, tmp_path_factory):
    """One short ``lf2_dcdfa`` run: it holds both DCDFA's attention and LF²'s Fusion Module."""
    src, tgt, ckpt = tiny_pretrained
    out = tmp_path_factory.mktemp("lf2_dcdfa")
    adapt(tiny_cfg("lf2_dcdfa", **{"uda.epochs": 1, "dcdfa.probe_images": 0}), src, tgt, ckpt, out, progress=False)
    return src, tgt, out


def _images(ds, cfg, n=4):
    return viz.load_images(ds.query[:n], cfg.data)


def test_load_run_pretrain(tiny_pretrained):
    src, tgt, ckpt = tiny_pretrained
    run = load_run(ckpt)
    assert run.stage == "pretrain" and run.method is None and run.name == "pretrain"
    assert not run.net.training
    f = run.features(tgt.query[:5])
    assert f.shape == (5, run.net.feat_dim) and torch.allclose(f.norm(dim=1), torch.ones(5), atol=1e-5)
    labels = run.pseudo_labels(tgt.train).labels[0]
    assert labels.shape == (len(tgt.train),) and labels.max() >= 1


def test_grad_cam_on_a_trained_model_is_not_constant(tiny_pretrained):
    src, tgt, ckpt = tiny_pretrained
    run = load_run(ckpt)
    # each query's reference, and another camera's image of the same person to explain (as notebook 05)
    queries = [q for q in tgt.query if any(g[1] == q[1] and g[2] != q[2] for g in tgt.gallery)][:4]
    matches = [next(g for g in tgt.gallery if g[1] == q[1] and g[2] != q[2]) for q in queries]
    x = viz.load_images(matches, run.cfg.data)
    ref = viz.embeddings(run.net, viz.load_images(queries, run.cfg.data), "f")
    flags = [p.requires_grad for p in run.net.parameters()]
    maps = viz.grad_cam(run.net, x, ref, "f")
    assert maps.shape == (4, *x.shape[2:]) and maps.min() >= 0 and maps.max() <= 1
    assert (maps.std(axis=(1, 2)) > 0.05).all(), maps.std(axis=(1, 2))       # every map locates something
    assert [p.requires_grad for p in run.net.parameters()] == flags and not run.net.training
    assert all(p.grad is None for p in run.net.parameters())
    hooks = sum(len(m._forward_hooks) + len(m._backward_hooks) for m in run.net.modules())
    assert hooks == 0                                                          # the CAM's hooks are gone
    other = viz.grad_cam(run.net, x, ref, "f", negate=True)           # 1 - similarity: another map
    assert not np.allclose(other, maps)


def test_grad_cam_frozen_mean_net_and_wrappers(lf2_dcdfa_run):
    src, tgt, out = lf2_dcdfa_run
    run = load_run(out)
    assert run.method.name == "lf2_dcdfa"
    for p in run.net.parameters():
        p.requires_grad_(False)                                # as the training loop's frozen Mean-Net
    x = _images(tgt, run.cfg, 3)
    net, key = run.test_net()                                  # LF²'s concatenated feature
    from reid_uda_lib.methods.dcdfa import BaseFeatureNet
    for model, k in ((net, key), (BaseFeatureNet(run.net, run.modules["attention"]), "feat")):
        maps = viz.grad_cam(model, x, viz.embeddings(model, x.flip(0), k), k)
        assert maps.shape == (3, *x.shape[2:]) and np.isfinite(maps).all()
    assert not any(p.requires_grad for p in run.net.parameters())   # still frozen afterwards


def test_grad_cam_bad_input(tiny_pretrained):
    run = load_run(tiny_pretrained[2])
    x = torch.zeros(2, 3, 64, 32)
    with pytest.raises(ValueError, match="one reference per image"):
        viz.grad_cam(run.net, x, torch.zeros(1, run.net.feat_dim))
    with pytest.raises(ValueError, match="differ in size"):
        viz.EmbeddingSimilarity(torch.ones(3))(torch.ones(4))
    sim = viz.EmbeddingSimilarity(torch.tensor([1.0, 0.0]))
    assert float(sim(torch.tensor([1.0, 1.0]))) == pytest.approx(2 ** -0.5)
    assert float(viz.EmbeddingSimilarity(torch.tensor([1.0, 0.0]), negate=True)(torch.tensor([0.0, 2.0]))) == 1.0


@pytest.mark.parametrize("arch", ["tiny", "resnet18", "resnet50"])
def test_target_layer_every_backbone(arch):
    net = build_model(ModelConfig(arch=arch, weights=None))
    layer = viz.target_layer(net)
    assert layer is net.backbone.layer4[-1]
    if arch == "resnet18":                      # one real CAM on a ResNet: right size, finite
        x = torch.randn(2, 3, 64, 32, generator=torch.Generator().manual_seed(0))
        maps = viz.grad_cam(net, x, viz.embeddings(net, x.flip(0)))
        assert maps.shape == (2, 64, 32) and np.isfinite(maps).all()
    with pytest.raises(ValueError, match="no ReID backbone"):
        viz.target_layer(torch.nn.Linear(2, 2))


def test_fusion_attention_is_eq5(lf2_dcdfa_run):
    src, tgt, out = lf2_dcdfa_run
    run = load_run(out)
    x = _images(tgt, run.cfg)
    a = fusion_attention(run.student, run.net, run.student_modules["fm"], x)
    k, c = run.cfg.lf2.num_parts, run.net.feat_dim
    assert a["gates"].shape == (4, k, c) and a["fusion_maps"].shape[:3] == (4, k, c)
    assert ((a["gates"] > 0) & (a["gates"] < 1)).all()
    # φ^Pj = GAP(σ(Z^Pj) ⊗ Φ^P0) = σ(Z^Pj) ⊙ GAP(Φ^P0), and it is what the module's forward returns
    gated = a["gates"] * a["phi0_map"].mean(dim=(2, 3))[:, None]
    torch.testing.assert_close(a["fusion_maps"].mean(dim=(3, 4)), gated, atol=1e-5, rtol=1e-5)
    with torch.no_grad():
        from reid_uda_lib.models.lf2 import part_features
        fwd = run.student_modules["fm"](run.net(x)["fmap"], part_features(run.student(x)["fmap"], k))
    torch.testing.assert_close(fwd, gated, atol=1e-5, rtol=1e-5)
    with pytest.raises(TypeError, match="FusionModule"):
        fusion_attention(run.student, run.net, run.modules["attention"], x)
    fig = viz.plot_fusion_maps(x, a, n=2)
    assert len(fig.axes) == 2 * (k + 2)


def test_dcdfa_attention_and_levels_of_a_run(lf2_dcdfa_run):
    src, tgt, out = lf2_dcdfa_run
    run = load_run(out)
    feats = dcdfa_features(run.net, run.modules["attention"], tgt.query[:6], run.cfg.data, run.device)
    assert feats["m"].shape == (6, run.net.feat_dim)
    torch.testing.assert_close(feats["b"] + feats["e"], feats["f"])
    sets = run.pseudo_labels(tgt.train)
    assert sets.names == ["P0", "P1", "P2"] and all(len(v) == len(tgt.train) for v in sets.labels)


def test_load_run_with_the_runs_target_statistics_reproduces_its_evaluation(tiny_pretrained, tmp_path):
    """With ``uda.target_bn`` the loop evaluates the Mean-Net under statistics re-estimated on the target train
    images; the checkpoint keeps the training ones. ``load_run(..., target_bn=target.train)`` restores the
    former, so the loaded network scores exactly the run's own mAP."""
    import json

    from reid_uda_lib.core.features import evaluate_model
    src, tgt, ckpt = tiny_pretrained
    cfg = tiny_cfg("sbase", **{"uda.epochs": 1, "uda.target_bn": True})
    res = adapt(cfg, src, tgt, ckpt, tmp_path / "sbase", progress=False)

    def score(run):
        net, key = run.test_net()
        return evaluate_model(net, tgt.query, tgt.gallery, run.cfg.data, run.device, key=key, progress=False)["mAP"]

    plain = load_run(tmp_path / "sbase")
    bn = next(m for m in plain.net.modules() if isinstance(m, torch.nn.BatchNorm2d))
    before = bn.running_mean.clone()
    restored = load_run(tmp_path / "sbase", target_bn=tgt.train)
    bn2 = next(m for m in restored.net.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert not torch.allclose(before, bn2.running_mean)            # the statistics really were re-estimated
    assert score(restored) == res["target"]["mAP"] == json.loads((tmp_path / "sbase" / "summary.json")
                                                                  .read_text())["target"]["mAP"]
    assert score(plain) != res["target"]["mAP"]                     # the training statistics give another mAP
    # a pretraining run (its evaluation has no target statistics) is left as it is
    pre = load_run(ckpt)
    ref = {k: v.clone() for k, v in pre.net.state_dict().items()}
    pre.with_target_bn(tgt.train)
    assert all(torch.equal(v, ref[k]) for k, v in pre.net.state_dict().items())
