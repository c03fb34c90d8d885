"""Feature extraction and model evaluation on a query/gallery split."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..config import DataConfig
from ..evaluation import evaluate, pairwise_distance, re_ranking
from ..runtime import distributed as ddp
from .loaders import test_loader


@torch.no_grad()
def extract_features(model: torch.nn.Module, items: Sequence[tuple], cfg: DataConfig,
                     device: torch.device, key: str = "bn", desc: str = "extract",
                     progress: bool = True) -> torch.Tensor:
    """L2-normalised features ``out[key]`` of every item, in item order, on ``device``.

    The model is put in eval mode for the pass and restored to its previous mode afterwards. Under torchrun
    each process extracts a contiguous shard of ``items`` and every process gets all the features.
    """
    was_training = model.training
    model.eval()
    feats = []
    start, stop = ddp.shard_bounds(len(items))
    try:
        shard = list(items)[start:stop]
        if shard or not ddp.is_distributed():
            for img, *_ in tqdm(test_loader(shard, cfg), desc=desc, leave=True,
                                disable=not progress or not ddp.is_main()):
                feats.append(model(img.to(device))[key].float())
        else:       # an empty shard (fewer items than processes): the feature width from one image
            feats.append(model(test_loader(list(items)[:1], cfg).dataset[0][0][None].to(device))[key].float()[:0])
    finally:
        model.train(was_training)
    return F.normalize(ddp.gather_shards(torch.cat(feats), len(items)), dim=1)


def evaluate_model(model: torch.nn.Module, query: Sequence[tuple], gallery: Sequence[tuple],
                   cfg: DataConfig, device: torch.device, rerank: bool = False,
                   progress: bool = True, key: str = "bn", cross_camera_only: bool = True) -> dict:
    """mAP / CMC of ``model`` on a query/gallery split, on feature ``out[key]``.

    ``cross_camera_only``: the Market-1501 protocol (default), or, when False, ignore only the query
    image itself (same file path) -- for data without camera ids (``evaluation.cross_camera_only``).
    Returns ``{"mAP", "rank1", "rank5", "rank10", ..., "cross_camera_only"}``, metrics as fractions in [0, 1].
    """
    qf = extract_features(model, query, cfg, device, key=key, desc="query", progress=progress)
    gf = extract_features(model, gallery, cfg, device, key=key, desc="gallery", progress=progress)
    distmat = re_ranking(qf, gf) if rerank else pairwise_distance(qf, gf, metric="cosine")
    res = evaluate(distmat, _col(query, 1), _col(gallery, 1), _col(query, 2), _col(gallery, 2),
                   topk=(1, 5, 10), cross_camera_only=cross_camera_only,
                   query_paths=[it[0] for it in query], gallery_paths=[it[0] for it in gallery])
    out = {"mAP": float(res["mAP"])}
    out.update({f"rank{k}": float(v) for k, v in res["cmc"].items()})
    out["num_skipped_queries"] = int(res["num_skipped_queries"])
    out["cross_camera_only"] = bool(cross_camera_only)
    return out


def _col(items: Sequence[tuple], i: int) -> np.ndarray:
    return np.asarray([it[i] for it in items], dtype=np.int64)
