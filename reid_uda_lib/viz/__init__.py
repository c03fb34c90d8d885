"""Figures: training curves, embeddings (t-SNE/UMAP), Grad-CAM, attention, pseudo-label diagnostics, rankings.

Every figure is a backend-free :class:`NotebookFigure` (see :mod:`.figure`): saved headless by scripts and
the CLI, shown inline when a notebook cell ends with it. Importing this package never selects a backend.
Every plotting function takes ``path`` and then also writes the figure there (atomically).

=====================  ==========================================================================
module                 figures
=====================  ==========================================================================
:mod:`.curves`         loss terms and target mAP / Rank-1 per epoch of one run
:mod:`.embed`          t-SNE and UMAP of feature sets, coloured by identity / domain / cluster
:mod:`.cam`            Grad-CAM of an embedding model (similarity to a reference embedding)
:mod:`.attention`      DCDFA's channel attention m(F); LF²'s Fusion Module gates σ(Z^Pj) and maps Φ^Pj
:mod:`.clusters`       pseudo-label quality per round, cluster sizes, a cluster's gallery, LF² agreement
:mod:`.recompose`      DCDFA's pairs and the similarities inside their L_CID set
:mod:`.ranking`        ranked lists (true matches green, false red) and the "what changed" comparison
:mod:`.images`         a contact sheet of a split: one row per person, its id and each image's camera
=====================  ==========================================================================
"""
from .attention import channel_split, plot_channel_attention, plot_fusion_gates, plot_fusion_maps
from .cam import EmbeddingSimilarity, embeddings, grad_cam, overlay, plot_cams, target_layer
from .clusters import (cluster_impostors, pick_cluster, plot_agreement, plot_cluster_gallery, plot_cluster_sizes,
                       plot_label_quality)
from .curves import plot_curves
from .embed import embed_2d, plot_embeddings
from .figure import NotebookFigure, new_figure, save_figure
from .images import denormalize, load_images, plot_contact_sheet
from .recompose import plot_pair_similarities
from .ranking import average_precisions, most_changed, plot_ranked_lists, plot_what_changed, ranked

__all__ = ["plot_curves", "NotebookFigure", "new_figure", "save_figure", "embed_2d", "plot_embeddings",
           "EmbeddingSimilarity", "embeddings", "grad_cam", "overlay", "plot_cams", "target_layer",
           "channel_split", "plot_channel_attention", "plot_fusion_gates", "plot_fusion_maps",
           "cluster_impostors", "pick_cluster", "plot_agreement", "plot_cluster_gallery", "plot_cluster_sizes",
           "plot_label_quality", "denormalize", "load_images", "plot_contact_sheet", "average_precisions",
           "most_changed", "plot_ranked_lists", "plot_what_changed", "ranked", "plot_pair_similarities"]
