"""Data layer: dataset layouts (Market, MSMT17, folder per person), checks, images, transforms, sampler.

The synthetic two-domain generator lives in :mod:`reid_uda_lib.data.synthetic`; it is not imported
here (import it as a submodule) so that importing the data layer never generates or touches data.
"""
from __future__ import annotations

from .check import CheckReport, DatasetCheckError, check_dataset
from .datasets import DATASET_NAMES, DatasetLayoutError, ReidDataset, find_dataset_dir, load_dataset
from .folder_layout import NO_CAMERA, UNLABELLED
from .image_dataset import CorruptImageError, ImageDataset, read_image
from .samplers import PKSampler
from .transforms import IMAGENET_MEAN, IMAGENET_STD, build_transforms

__all__ = ["load_dataset", "ReidDataset", "ImageDataset", "read_image", "CorruptImageError",
           "DatasetLayoutError", "build_transforms", "PKSampler", "find_dataset_dir", "DATASET_NAMES",
           "IMAGENET_MEAN", "IMAGENET_STD", "check_dataset", "CheckReport", "DatasetCheckError", "NO_CAMERA",
           "UNLABELLED"]
