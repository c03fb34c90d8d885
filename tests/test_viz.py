"""The figures of reid_uda_lib.viz on tiny inputs: shapes, worked values, errors, files written atomically.

The Grad-CAM, attention and run-loading tests on trained networks are in test_viz_models.py.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from reid_uda_lib import viz
from reid_uda_lib.analysis import check_answer
from reid_uda_lib.viz import NotebookFigure


def _png(fig):
    return fig._repr_png_().startswith(b"\x89PNG")


@pytest.fixture
def people(tmp_path):
    """12 tiny images: persons 0..3, three cameras each, as (path, pid, camid) items."""
    items = []
    rng = np.random.default_rng(0)
    for pid in range(4):
        colour = rng.integers(0, 255, 3)
        for cam in range(3):
            arr = np.zeros((32, 16, 3), np.uint8) + colour.astype(np.uint8)
            arr[rng.integers(0, 32), :] = 255
            path = tmp_path / f"{pid}_{cam}.png"
            Image.fromarray(arr).save(path)
            items.append((str(path), pid, cam))
    return items


def test_save_figure_is_atomic_and_optional(tmp_path):
    fig = viz.new_figure(figsize=(2, 2))
    fig.subplots().plot([0, 1])
    assert viz.save_figure(fig, None) is fig
    viz.save_figure(fig, tmp_path / "a" / "f")                 # no suffix: PNG
    assert (tmp_path / "a" / "f.png").read_bytes().startswith(b"\x89PNG")
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["f.png"]        # no temp file left


@pytest.mark.parametrize("method", ["tsne", "umap"])
def test_embed_2d_small_sets_are_seeded(method):
    x = torch.randn(12, 8, generator=torch.Generator().manual_seed(0))
    a, b = viz.embed_2d(x, method, seed=3), viz.embed_2d(x, method, seed=3)
    assert a.shape == (12, 2) and np.isfinite(a).all()
    np.testing.assert_allclose(a, b)      # perplexity / n_neighbors were capped below 12 points


def test_embed_2d_bad_input():
    with pytest.raises(ValueError, match="at least 5 points"):
        viz.embed_2d(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="method must be one of"):
        viz.embed_2d(np.random.rand(10, 3), "pca")
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        viz.embed_2d(np.zeros(10))
    with pytest.raises(ValueError, match="NaN"):
        viz.embed_2d(np.full((10, 3), np.nan))


def test_plot_embeddings_grid(tmp_path):
    g = torch.Generator().manual_seed(0)
    feats = {"f": torch.randn(20, 6, generator=g), "b": torch.randn(20, 6, generator=g)}
    colours = {"domain": np.r_[np.ones(10), np.zeros(10)].astype(int), "identity": np.arange(20) % 5}
    fig = viz.plot_embeddings(feats, colours, methods=("tsne",), legends={"domain": {1: "src", 0: "tgt"}},
                              path=tmp_path / "e.png")
    assert isinstance(fig, NotebookFigure) and len(fig.axes) == 4 and _png(fig)
    assert fig.points[("b", "tsne")].shape == (20, 2) and (tmp_path / "e.png").is_file()
    with pytest.raises(ValueError, match="colouring 'identity' has 3 labels"):
        viz.plot_embeddings(feats, {"identity": [0, 1, 2]})


def test_channel_split_worked_values():
    m_s = torch.tensor([[0.9, 0.2, 0.6], [0.7, 0.4, 0.4]])
    m_t = torch.tensor([[0.8, 0.1, 0.5], [0.6, 0.3, 0.7]])      # means over both: 0.75, 0.25, 0.55
    s = viz.channel_split(m_s, m_t)
    assert s["to_b"].tolist() == [0, 2] and s["to_e"].tolist() == [1]
    assert s["order"].tolist() == [0, 2, 1] and s["share_b"] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="same C"):
        viz.channel_split(m_s, m_t[:, :2])
    fig = viz.plot_channel_attention({"before": {"source": m_s, "target": m_t},
                                      "after": {"source": m_t, "target": m_s}})
    assert len(fig.axes) == 4 and _png(fig)


def test_fusion_figures():
    g = torch.Generator().manual_seed(0)
    gates = torch.rand(5, 2, 16, generator=g)
    assert len(viz.plot_fusion_gates(gates).axes) == 2
    with pytest.raises(ValueError, match=r"\(B, K, C\)"):
        viz.plot_fusion_gates(gates[0])
    fmap = torch.rand(16, 4, 2, generator=g)
    from reid_uda_lib.viz.attention import heat
    h = heat(fmap, (32, 16))
    assert h.shape == (32, 16) and h.min() == pytest.approx(0) and h.max() == pytest.approx(1)
    x = torch.randn(3, 3, 32, 16, generator=g)
    attn = {"phi0_map": torch.rand(3, 16, 4, 2, generator=g), "fusion_maps": torch.rand(3, 2, 16, 4, 2, generator=g)}
    fig = viz.plot_fusion_maps(x, attn, n=2)
    assert len(fig.axes) == 2 * 4 and _png(fig)      # image + Φ^P0 + 2 fusion maps per row


def test_cluster_impostors_and_pick():
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, -1])
    true = np.array([5, 5, 5, 7, 8, 8, 9, 9, 9, 5])
    info = viz.cluster_impostors(labels, true, 0)
    assert info["majority_id"] == 5 and info["impostors"].tolist() == [3] and info["purity"] == 0.75
    assert viz.cluster_impostors(labels, true, 1)["impostors"].tolist() == [4, 5]
    assert viz.pick_cluster(labels, true) == 1            # two impostors beat one
    with pytest.raises(ValueError, match="no member"):
        viz.cluster_impostors(labels, true, 4)
    with pytest.raises(ValueError, match="at least 6 images"):
        viz.pick_cluster(labels, true, min_size=6)


def _records():
    recs = []
    for e in range(3):
        q = {"nmi": 0.5 + 0.1 * e, "ari": 0.3, "purity": 0.8, "n_clusters": 10 + e, "outlier_ratio": 0.1}
        lv = {"P0": q, "P1": q, "agreement": {"P1": {"ari": 0.4 + 0.1 * e, "nmi": 0.6}}}
        recs.append({"epoch": e, "cluster": q, "levels": lv})
    return recs


def test_quality_agreement_and_sizes_figures(tmp_path):
    fig = viz.plot_label_quality({"a": _records(), "b": _records()[:2]}, n_true_ids=12, path=tmp_path / "q.png")
    assert len(fig.axes) == 5 and (tmp_path / "q.png").is_file()
    assert [len(line.get_xdata()) for line in fig.axes[0].lines] == [3, 2]
    with pytest.raises(ValueError, match="no record has a 'cluster'"):
        viz.plot_label_quality({"pretrain": [{"epoch": 0}]})
    fig = viz.plot_agreement(_records())
    np.testing.assert_allclose(fig.axes[0].lines[0].get_ydata(), [0.4, 0.5, 0.6])
    with pytest.raises(ValueError, match="'levels'"):
        viz.plot_agreement([{"epoch": 0, "cluster": {}}])
    fig = viz.plot_cluster_sizes({"x": [0, 0, 1, -1, 1, 1]}, true_ids=[0, 0, 0, 1, 1, 1])
    assert "x: 2 clusters, 1 outliers" in [t.get_text() for t in fig.axes[0].get_legend().get_texts()]


def test_cluster_gallery_marks_impostors(people):
    labels = np.array([0, 0, 0, 1, 1, 1, 0, 1, 1, 1, 1, 1])    # cluster 0: person 0 x3 + one image of person 2
    fig = viz.plot_cluster_gallery(people, labels, 0, per_row=4)
    frames = [ax.spines["top"].get_edgecolor() for ax in fig.axes if ax.axison]
    assert len(frames) == 4 and "impostors" in fig._suptitle.get_text()
    red = [f for f in frames if np.allclose(f[:3], (0xd7 / 255, 0x30 / 255, 0x27 / 255))]
    assert len(red) == 1
    # a cluster of mostly impostors, shown in 4 tiles: each image at most once, both kinds present
    labels = np.array([0, 1, 1, 0, 0, 0, 0, 1, 1, 0, 1, 1])    # cluster 0: person 1 x3, persons 0, 2, 3 x1
    fig = viz.plot_cluster_gallery(people, labels, 0, max_images=4, per_row=4)
    titles = [ax.get_title() for ax in fig.axes if ax.axison]
    assert titles == ["", "", "id 0", "id 2"], titles          # 2 of the majority, 2 impostors, no repeat


def test_ranking_follows_the_protocol(people):
    query = [people[0], people[4]]                      # person 0 cam 0, person 1 cam 1
    gallery = people
    d = np.tile(np.arange(12, dtype=float), (2, 1))     # every query ranks the gallery in item order
    top, good = viz.ranked(d, query, gallery, 0, k=3)
    assert top.tolist() == [1, 2, 3] and good.tolist() == [True, True, False]   # item 0 (same cam) left out
    aps = viz.average_precisions(d, query, gallery)
    assert aps[0] == pytest.approx(1.0)
    assert aps[1] == pytest.approx((1 / 4 + 2 / 5) / 2)          # person 1 at gallery 3, 5 (4 is its own camera)
    d2 = d.copy()
    d2[1, [3, 5]] = -1                                            # a second model ranks person 1 first
    assert viz.most_changed({"a": d, "b": d2}, query, gallery, n=1) == [1]
    fig = viz.plot_ranked_lists(d, query, gallery, [0, 1], k=3)
    assert len(fig.axes) == 2 * 4 and _png(fig)
    fig = viz.plot_what_changed({"a": d, "b": d2}, query, gallery, [1], k=3, path=None)
    assert len(fig.axes) == 8 and "AP 100%" in " ".join(ax.get_title() for ax in fig.axes)
    with pytest.raises(ValueError, match="distmat has shape"):
        viz.ranked(d[:, :5], query, gallery, 0)


def test_pair_similarities_figure():
    x = torch.randn(3, 3, 32, 16)
    sims = torch.eye(4).repeat(3, 1, 1)
    assert len(viz.plot_pair_similarities(x, x, sims, n=2).axes) == 2 * 3 + 2      # + 2 colour bars
    with pytest.raises(ValueError, match=r"\(N, 4, 4\)"):
        viz.plot_pair_similarities(x, x, torch.eye(3))


def test_denormalize_inverts_the_transform():
    from reid_uda_lib.data.transforms import IMAGENET_MEAN, IMAGENET_STD
    rgb = torch.rand(3, 4, 2)
    x = (rgb - torch.tensor(IMAGENET_MEAN).view(3, 1, 1)) / torch.tensor(IMAGENET_STD).view(3, 1, 1)
    np.testing.assert_allclose(viz.denormalize(x), rgb.permute(1, 2, 0).numpy(), atol=1e-6)
    with pytest.raises(ValueError, match="denormalize"):
        viz.denormalize(torch.zeros(2, 4, 4))


def test_check_answer(capsys):
    assert check_answer("x", 0.5001, 0.5, tol=1e-3)
    assert not check_answer("x", 0.6, 0.5, tol=1e-3, hint="look again")
    assert not check_answer("x", ..., 0.5)
    out = capsys.readouterr().out
    assert "✓ x" in out and "hint: look again" in out and "no answer yet" in out
    with pytest.raises(AssertionError, match="expected 'a'"):
        check_answer("s", "b", "a", strict=True)
