"""The figures of reid_uda_lib.viz on tiny inputs: shapes, worked values, errors, files written atomically.

The Grad-CAM, attention and run-loading tests on trained networks are in test_viz_models.py.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from reid_uda_lib import viz
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
    assert len(fig.axes) == 5 + 1 and (tmp_path / "q.png").is_file()       # 5 panels in 2 rows of 3, 1 legend slot
    assert [len(line.get_xdata()) for line in fig.axes[0].lines] == [3, 2]
    legend = fig.axes[5].get_legend()
    assert not fig.axes[5].axison and [t.get_text() for t in legend.get_texts()] == ["a", "b", "true ids"]
    assert all(ax.get_legend() is None for ax in fig.axes[:5])                # no legend over a curve
    # whole scales: NMI 0.5..0.7 is drawn on [0, 1], the cluster counts from 0 (noise is not a trend)
    assert fig.axes[0].get_ylim() == (0.0, 1.0) and fig.axes[3].get_ylim()[0] == 0.0
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
    assert len(fig.axes) == 8                                   # one row per (query, model): 2 rows of 1 + 3
    assert [fig.axes[r * 4].get_ylabel().splitlines()[0] for r in range(2)] == ["a", "b"]
    assert "AP 100%, 2/3" in fig.axes[4].get_ylabel()
    with pytest.raises(ValueError, match="distmat has shape"):
        viz.ranked(d[:, :5], query, gallery, 0)


def test_pair_similarities_figure():
    x = torch.randn(3, 3, 32, 16)
    sims = torch.eye(4).repeat(3, 1, 1)
    assert len(viz.plot_pair_similarities(x, x, sims, n=2).axes) == 2 * 3 + 2      # + 2 colour bars
    # trained features' cosines in a narrow band: the colours span the off-diagonal values shown, not -1...1
    sims = 0.84 + 0.14 * torch.rand(3, 4, 4, generator=torch.Generator().manual_seed(0))
    sims[:, range(4), range(4)] = 1.0
    fig = viz.plot_pair_similarities(x, x, sims, n=2)
    off = sims[:2][:, ~torch.eye(4, dtype=torch.bool)]
    image = fig.axes[2].get_images()[0]
    assert image.get_clim() == pytest.approx((float(off.min()), float(off.max())))
    assert f"{float(off.min()):.2f}–{float(off.max()):.2f}" in fig.axes[2].get_title()
    with pytest.raises(ValueError, match=r"\(N, 4, 4\)"):
        viz.plot_pair_similarities(x, x, torch.eye(3))


def test_contact_sheet_names_each_person_and_camera(people):
    fig = viz.plot_contact_sheet(people, n_ids=2, per_id=3)      # persons 0 and 3 (spread), cameras 0, 1, 2
    rows = [fig.axes[r * 3:(r + 1) * 3] for r in range(2)]
    assert [row[0].get_ylabel() for row in rows] == ["id 0", "id 3"]
    assert [[ax.get_title() for ax in row] for row in rows] == [["cam 0", "cam 1", "cam 2"]] * 2
    fig = viz.plot_contact_sheet(people, n_ids=1, per_id=2)      # more images than room: every camera spread
    assert [ax.get_title() for ax in fig.axes] == ["cam 0", "cam 2"]
    with pytest.raises(ValueError, match="no items"):
        viz.plot_contact_sheet([])


def test_denormalize_inverts_the_transform():
    from reid_uda_lib.data.transforms import IMAGENET_MEAN, IMAGENET_STD
    rgb = torch.rand(3, 4, 2)
    x = (rgb - torch.tensor(IMAGENET_MEAN).view(3, 1, 1)) / torch.tensor(IMAGENET_STD).view(3, 1, 1)
    np.testing.assert_allclose(viz.denormalize(x), rgb.permute(1, 2, 0).numpy(), atol=1e-6)
    with pytest.raises(ValueError, match="denormalize"):
        viz.denormalize(torch.zeros(2, 4, 4))



# --- legibility: no text under 10 px where the figures are read ---------------------------------------------
PAGE_PX, FLOOR_PX = 900, 10.0        # the notebook column the figures are read in, the smallest text allowed


def _shown_text_px(fig, png: bytes) -> list[tuple[float, str]]:
    """Every text the figure draws, as px on a PAGE_PX-wide page: points x dpi / 72 x the page's scale of the
    PNG (computed here from the PNG itself, not with the library's helpers)."""
    import io

    from matplotlib.text import Text

    im = Image.open(io.BytesIO(png))
    dpi = im.info["dpi"][0]
    scale = min(1.0, PAGE_PX / im.size[0])
    hidden = {id(t) for ax in fig.axes if not ax.axison for a in (ax.xaxis, ax.yaxis)   # axes drawn without axis
              for t in [a.label, *a.get_ticklabels(which="both")]}
    return [(t.get_fontsize() * dpi / 72 * scale, t.get_text()) for t in fig.findobj(Text)
            if t.get_visible() and t.get_text().strip() and id(t) not in hidden]


def _notebook_figures(people):
    """The figures the notebooks draw, at the notebooks' shapes (8 runs over 5 keys, 3 models x top 5, ...)."""
    g = torch.Generator().manual_seed(0)
    runs = {m: _records() for m in ("sbase", "dcdfa", "dcdfa_cid", "dcdfa_cid_rreid", "dcdfa_cid_domain", "lf2",
                                    "lf2_nofm", "lf2_dcdfa")}
    x = torch.randn(4, 3, 64, 32, generator=g)
    d = {m: np.random.default_rng(i).random((12, 12)) for i, m in enumerate(("direct transfer", "sbase", "lf2"))}
    labels = np.arange(12) % 3
    colours = {"identity": np.arange(24) % 12, "domain": np.arange(24) % 2, "camera": np.arange(24) % 3,
               "cluster": np.arange(24) % 6}                       # 4 columns, as 2 methods x 2 colourings
    curves = [{"epoch": e, "ce": 1.0, "tri": 0.5, "target": {"mAP": 0.1, "rank1": 0.2}, "cluster": {"nmi": 0.5}}
              for e in range(3)]
    attn = {"phi0_map": torch.rand(4, 16, 4, 2, generator=g), "fusion_maps": torch.rand(4, 2, 16, 4, 2, generator=g)}
    return {
        "00 contact sheet": lambda: viz.plot_contact_sheet(people, title="domain A: six people, their cameras"),
        "01 curves": lambda: viz.plot_curves(curves, title="SBase on B"),
        "02 attention": lambda: viz.plot_channel_attention(
            {s: {"source": torch.rand(8, 64, generator=g), "target": torch.rand(8, 64, generator=g)}
             for s in ("before", "after")}, title="DCDFA channel attention m(F) (Eq. 3)"),
        "02 embeddings": lambda: viz.plot_embeddings(
            {k: torch.randn(24, 8, generator=g) for k in "fbe"}, colours, methods=("tsne",),
            legends={"domain": {1: "source A", 0: "target B"}}, title="after DCDFA: the Mean-Net's f, b and e"),
        "03 pair similarities": lambda: viz.plot_pair_similarities(
            x, x, 0.84 + 0.14 * torch.rand(4, 4, 4, generator=g), title="cosine similarities inside each pair's set"),
        "03/05 label quality": lambda: viz.plot_label_quality(runs, n_true_ids=100, title="every method run"),
        "04 label quality": lambda: viz.plot_label_quality(runs, keys=("nmi", "ari", "purity"), title="level 0"),
        "04 gates": lambda: viz.plot_fusion_gates(torch.rand(6, 2, 64, generator=g), title="σ(Z^Pj) (Eq. 5)"),
        "04 maps": lambda: viz.plot_fusion_maps(x, attn, n=4, title="Φ^P0 and the fusion maps Φ^Pj"),
        "04 sizes": lambda: viz.plot_cluster_sizes({"P0": labels, "P1": labels, "P2": labels}, true_ids=labels),
        "04 agreement": lambda: viz.plot_agreement(_records(), title="LF²: agreement of the label sets"),
        "05 embeddings": lambda: viz.plot_embeddings(
            {k: torch.randn(24, 8, generator=g) for k in ("direct transfer", "sbase")},
            {"identity": colours["identity"], "camera": colours["camera"]}, seed=0,
            title="B's features: direct transfer vs SBase"),
        "05 gallery": lambda: viz.plot_cluster_gallery(people, np.zeros(12, int), 0),
        "05 cams": lambda: viz.plot_cams(x, {m: np.random.default_rng(0).random((4, 64, 32)) for m in d},
                                         references=x, row_titles=[f"person {i}" for i in range(4)],
                                         title="Grad-CAM of the similarity to the query"),
        "05 ranked": lambda: viz.plot_ranked_lists(d["sbase"], people, people, [0, 3, 6, 9], k=8),
        "05 what changed": lambda: viz.plot_what_changed(d, people, people, [0, 4, 8], k=5),
    }


def test_notebook_figures_keep_text_above_the_floor_at_the_page_width(people):
    too_small = {}
    for name, draw in _notebook_figures(people).items():
        fig = draw()
        sizes = _shown_text_px(fig, fig._repr_png_())
        assert sizes, name
        small = [(round(px, 1), text[:30]) for px, text in sizes if px < FLOOR_PX - 0.05]
        if small:
            too_small[name] = small
    assert not too_small, f"text under {FLOOR_PX} px on a {PAGE_PX} px page: {too_small}"


def _overlapping_titles(fig) -> list[tuple[str, str]]:
    """Pairs of axes titles whose drawn boxes intersect (two panels' titles running into each other)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    boxes = [(ax.title.get_text(), ax.title.get_window_extent(renderer)) for ax in fig.axes
             if ax.title.get_text()]
    return [(a, b) for i, (a, box_a) in enumerate(boxes) for b, box_b in boxes[i + 1:]
            if box_a.overlaps(box_b)]


def test_notebook_figures_keep_panel_titles_apart(people):
    crossed = {name: pairs for name, draw in _notebook_figures(people).items()
               if (pairs := _overlapping_titles(draw()))}
    assert not crossed, f"panel titles drawn over each other: {crossed}"


def test_the_title_check_sees_titles_run_into_each_other():
    """Mutation of the wrapping rule: one-line titles for 05's long feature names overlap, and the check says so."""
    from reid_uda_lib.viz import embed
    g = torch.Generator().manual_seed(0)
    feats = {k: torch.randn(24, 8, generator=g) for k in ("direct transfer", "sbase")}
    colours = {"identity": np.arange(24) % 12, "camera": np.arange(24) % 3}
    keep = embed.TITLE_CHARS
    try:
        embed.TITLE_CHARS = 1000                        # never wrap
        assert _overlapping_titles(viz.plot_embeddings(feats, colours, seed=0))
    finally:
        embed.TITLE_CHARS = keep
    assert not _overlapping_titles(viz.plot_embeddings(feats, colours, seed=0))


def test_the_measure_sees_small_text_and_the_floor_raises_it():
    """Without the floor (a plain matplotlib Figure) the measure above finds the small text; a NotebookFigure,
    at its natural size and scaled down on the page, raises it, and records what the browser check reads."""
    import io

    from matplotlib.figure import Figure

    from reid_uda_lib.viz.figure import PNG_TEXT_KEY

    def draw(fig):
        ax = fig.subplots()
        ax.plot([0, 1], label="a line")
        ax.set_title("a title", fontsize=6)
        ax.legend(fontsize=5)
        fig.tight_layout()
        return fig

    plain = draw(Figure(figsize=(6, 3), dpi=100))
    buf = io.BytesIO()
    plain.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    assert min(px for px, _ in _shown_text_px(plain, buf.getvalue())) < 7      # 5 pt at 100 dpi: 6.9 px
    for width_in in (6, 20):                       # shown at its natural size; scaled to 900 px of ~2000
        fig = draw(viz.new_figure(figsize=(width_in, 3)))
        png = fig._repr_png_()
        sizes = [px for px, _ in _shown_text_px(fig, png)]
        assert min(sizes) >= FLOOR_PX - 0.05, (width_in, sizes)
        im = Image.open(io.BytesIO(png))
        assert float(im.text[PNG_TEXT_KEY]) * min(1.0, PAGE_PX / im.size[0]) == pytest.approx(min(sizes), abs=0.05)
