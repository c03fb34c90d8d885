"""Pseudo labelling: k-reciprocal Jaccard distance, DBSCAN / k-means, label-quality metrics."""
from __future__ import annotations

from .camera_norm import camera_centred
from .jaccard import DENSE_MAX_N, jaccard_distance
from .kmeans import KMeansResult, kmeans
from .knn import neighbour_lists
from .multilevel import cluster_levels, label_agreement, level_report
from .pseudo_labels import (SPARSE_AUTO_MIN_N, EmptyClusterError, check_clusters, pseudo_labels,
                            relabel_first_occurrence)
from .quality import label_quality, purity

__all__ = [
    "DENSE_MAX_N",
    "SPARSE_AUTO_MIN_N",
    "EmptyClusterError",
    "KMeansResult",
    "camera_centred",
    "cluster_levels",
    "kmeans",
    "label_agreement",
    "level_report",
    "check_clusters",
    "jaccard_distance",
    "label_quality",
    "neighbour_lists",
    "pseudo_labels",
    "purity",
    "relabel_first_occurrence",
]
