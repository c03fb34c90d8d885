"""Per-camera centring of the clustering features (``uda.camera_norm``).

Every camera adds its own offset to the features of its images (its light, colour cast and background), so
images of different people seen by the same camera look alike, and DBSCAN's neighbourhoods partly follow the
camera instead of the person. Subtracting each camera's mean feature before clustering removes that offset
(the camera ids are part of the unlabelled target data in every ReID layout: Market's ``c<k>``; camera-aware
UDA methods such as CAP (Wang et al., AAAI 2021) rely on them too):

    x̃_i = (x_i − μ_{c(i)}) / ‖x_i − μ_{c(i)}‖,    μ_c = mean of the L2-normalised x_j with c(j) = c.

Only the clustering sees x̃; the training, the classifier's centroids and the evaluation use the features as
they are.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F


def camera_centred(features, cameras: Sequence[int]) -> torch.Tensor:
    """(N, d) features with each camera's mean removed, L2-normalised again (the equation above).

    ``features`` are L2-normalised first. A camera with a single image keeps its feature (its mean is the
    image itself); a row that becomes all-zero keeps its original feature too.
    """
    x = F.normalize(torch.as_tensor(features).detach().float(), dim=1)
    cams = np.asarray(cameras)
    if x.dim() != 2 or cams.shape != (x.shape[0],):
        raise ValueError(f"camera_centred: need (N, d) features and N camera ids; got features of shape "
                         f"{tuple(x.shape)} and {cams.shape[0] if cams.ndim else 0} camera ids")
    out = x.clone()
    for cam in np.unique(cams):
        idx = torch.as_tensor(np.flatnonzero(cams == cam), device=x.device)
        if idx.numel() > 1:
            out[idx] = x[idx] - x[idx].mean(0, keepdim=True)
    norms = out.norm(dim=1, keepdim=True)
    dead = norms.squeeze(1) <= 1e-12
    out[dead] = x[dead]
    return F.normalize(out, dim=1)
