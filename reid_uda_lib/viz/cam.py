"""Grad-CAM for an embedding model (pytorch-grad-cam, ``grad-cam`` on PyPI): where in an image does the
network look when it finds this image similar to a reference?

A ReID network has no class to explain: the score is the **cosine similarity** of the image's embedding to
a reference embedding (a query's, a cluster centroid), :class:`EmbeddingSimilarity`; ``negate=True`` scores
``1 − similarity`` and shows what makes the image *differ*. The CAM is taken at the last block of the
backbone's last stage (:func:`target_layer`), the same module for ``tiny``, ``resnet18`` and ``resnet50``,
and for the inference wrappers of DCDFA (b only) and LF² (global + parts concatenated).

**Which feature to explain.** For the pooled feature ``f = GAP(A)`` (key ``"f"``) the gradient of the cosine
similarity is orthogonal to f, so the weighted map Σ_c w_c A_c averages to exactly zero over the image before
Grad-CAM's ReLU: the heat map shows where the image is *more* similar to the reference than on average, and is
never blank unless the map is uniform. For a feature that is not a plain average of the map (the BNNeck
output ``"bn"``, LF²'s concatenation, DCDFA's b) the average can be negative, and then Grad-CAM's ReLU leaves
an all-zero map: "no region raises the similarity". The notebooks explain ``"f"`` for every model.

Grad-CAM 1.5.x rules this module follows: the model must return one (B, D) tensor (:class:`EmbeddingModel`
picks the feature out of the ReID dict); one target per image (targets are zipped with the batch); the
target layer's output must require grad (the Mean-Net is frozen, so its parameters are switched to
``requires_grad`` for the call and restored); the CAM object is used in a ``with`` block so its hooks are
removed; it puts the model in eval mode, and the model's previous mode is restored afterwards.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .figure import NotebookFigure, new_figure, save_figure
from .images import denormalize, show_image


class EmbeddingSimilarity:
    """Grad-CAM target: cosine similarity of one image's 1-D embedding to ``reference`` (D,), or
    ``1 − similarity`` with ``negate=True``."""

    def __init__(self, reference: torch.Tensor, negate: bool = False):
        if reference.dim() != 1:
            raise ValueError(f"EmbeddingSimilarity: the reference must be one embedding (D,); got "
                             f"{tuple(reference.shape)}")
        self.reference = reference.detach()
        self.negate = negate

    def __call__(self, embedding: torch.Tensor) -> torch.Tensor:
        if embedding.shape != self.reference.shape:
            raise ValueError(f"EmbeddingSimilarity: embedding {tuple(embedding.shape)} and reference "
                             f"{tuple(self.reference.shape)} differ in size (same model and key?)")
        sim = F.cosine_similarity(embedding, self.reference.to(embedding.device, embedding.dtype), dim=0)
        return 1.0 - sim if self.negate else sim


class EmbeddingModel(nn.Module):
    """``net(x)[key]`` as a plain (B, D) tensor: the form Grad-CAM needs."""

    def __init__(self, net: nn.Module, key: str = "bn"):
        super().__init__()
        self.net = net
        self.key = key

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)
        if not isinstance(out, dict) or self.key not in out:
            raise ValueError(f"EmbeddingModel: the network's output has no key {self.key!r} "
                             f"(keys: {list(out) if isinstance(out, dict) else type(out).__name__})")
        return out[self.key]


def reid_net(net: nn.Module) -> nn.Module:
    """The ReidNet inside an inference wrapper (``ConcatFeatureNet``, ``BaseFeatureNet``, ``EmbeddingModel``)."""
    seen = net
    while not hasattr(seen, "backbone"):
        if not hasattr(seen, "net"):
            raise ValueError(f"no ReID backbone found in {type(net).__name__}: expected a ReidNet or a wrapper "
                             "with a .net attribute")
        seen = seen.net
    return seen


def target_layer(net: nn.Module) -> nn.Module:
    """The backbone's last block (``backbone.last_block``: ResNet ``layer4[-1]``, MobileNetV2's last conv) of
    ``net`` or of the net it wraps."""
    backbone = reid_net(net).backbone
    if not hasattr(backbone, "last_block"):
        raise ValueError(f"{type(backbone).__name__} has no last_block: Grad-CAM needs the module whose output "
                         "is the pooled feature map")
    return backbone.last_block


def embeddings(net: nn.Module, images: torch.Tensor, key: str = "bn") -> torch.Tensor:
    """``net(images)[key]`` in eval mode without gradients (the references of :func:`grad_cam`)."""
    was = net.training
    net.eval()
    try:
        with torch.no_grad():
            dev = next(net.parameters()).device
            return net(images.to(dev))[key].detach()
    finally:
        net.train(was)


def grad_cam(net: nn.Module, images: torch.Tensor, references: torch.Tensor, key: str = "bn",
             negate: bool = False) -> np.ndarray:
    """Grad-CAM maps (B, H, W) in [0, 1] of ``images`` (B, 3, H, W) for the similarity of each image's
    embedding ``net(x)[key]`` to ``references[i]`` (B, D) (the i-th image gets the i-th reference)."""
    from pytorch_grad_cam import GradCAM

    if images.dim() != 4 or references.dim() != 2 or len(images) != len(references):
        raise ValueError(f"grad_cam: one reference per image is needed; got images {tuple(images.shape)} and "
                         f"references {tuple(references.shape)}")
    model = EmbeddingModel(net, key)
    layer = target_layer(net)
    was_training = net.training
    grads = [(p, p.requires_grad) for p in net.parameters()]
    for p, _ in grads:
        p.requires_grad_(True)                 # a frozen Mean-Net would give the target layer no gradient
    try:
        targets = [EmbeddingSimilarity(r, negate) for r in references]
        with torch.enable_grad(), GradCAM(model=model, target_layers=[layer]) as cam:
            maps = cam(input_tensor=images, targets=targets)
    finally:
        for p, flag in grads:
            p.requires_grad_(flag)
            p.grad = None
        net.train(was_training)
    return np.asarray(maps, dtype=np.float32)


def overlay(image: torch.Tensor, cam: np.ndarray, weight: float = 0.5) -> np.ndarray:
    """A normalised image (3, H, W) with its CAM (H, W) as a JET heat map on top: RGB (H, W, 3) in [0, 1]."""
    from pytorch_grad_cam.utils.image import show_cam_on_image

    rgb = denormalize(image).astype(np.float32)
    if cam.shape != rgb.shape[:2]:
        raise ValueError(f"overlay: the CAM {cam.shape} and the image {rgb.shape[:2]} differ in size")
    return show_cam_on_image(rgb, cam, use_rgb=True, image_weight=weight).astype(np.float32) / 255.0


def plot_cams(images: torch.Tensor, cams: Mapping[str, np.ndarray], row_titles: Sequence[str] | None = None,
              references: torch.Tensor | None = None, title: str = "",
              path: str | Path | None = None) -> NotebookFigure:
    """One row per image: (its reference image when given), the image, then its CAM under each model.

    ``cams``: ``{model name: (B, H, W)}`` from :func:`grad_cam` for the same ``images`` (B, 3, H, W).
    """
    b = len(images)
    for name, c in cams.items():
        if len(c) != b:
            raise ValueError(f"plot_cams: {len(c)} maps for {name!r} but {b} images")
    lead = (["reference"] if references is not None else []) + ["image"]
    cols = lead + list(cams)
    fig = new_figure(figsize=(1.25 * len(cols) + 0.4, 2.2 * b * images.shape[2] / (2 * images.shape[3]) + 0.6))
    axes = np.atleast_2d(fig.subplots(b, len(cols), squeeze=False))
    for i in range(b):
        c = 0
        if references is not None:
            show_image(axes[i, c], denormalize(references[i]), title="reference" if i == 0 else None)
            c += 1
        show_image(axes[i, c], denormalize(images[i]), title="image" if i == 0 else None)
        if row_titles is not None:
            axes[i, 0].set_ylabel(row_titles[i], fontsize=7)
        for name, maps in cams.items():
            c += 1
            show_image(axes[i, c], overlay(images[i], maps[i]), title=name if i == 0 else None)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)
    return fig
