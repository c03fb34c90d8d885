"""Feature extraction and model evaluation on a query/gallery split."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..config import DataConfig
from ..evaluation import evaluate, pairwise_distance, re_ranking
from .loaders import test_loader


@torch.no_grad()
def extract_features(model: torch.nn.Module, items: Sequence[tuple], cfg: DataConfig,
                     device: torch.device, key: str = "bn", desc: str = "extract",
                     progress: bool = True) -> torch.Tensor:
    """L2-normalised features ``out[key]`` of every item, in item order, on ``device``.

    The model is put in eval mode for the pass and restored to its previous mode afterwards.
    """
    was_training = model.training
    model.eval()
    feats = []
    try:
        for img, *_ in tqdm(test_loader(items, cfg), desc=desc, leave=False, disable=not progress):
            feats.append(model(img.to(device))[key].float())
    finally:
        model.train(was_training)
    return F.normalize(torch.cat(feats), dim=1)


def evaluate_model(model: torch.nn.Module, query: Sequence[tuple], gallery: Sequence[tuple],
                   cfg: DataConfig, device: torch.device, rerank: bool = False,
                   progress: bool = True) -> dict:
    """mAP / CMC of ``model`` on a query/gallery split (Market-1501 protocol).

    Returns ``{"mAP", "rank1", "rank5", "rank10", ...}`` as fractions in [0, 1].
    The global RNG state is left as it was (the loaders draw a seed), so evaluating more or less often
    (``eval_every``) or evaluating again after a resume does not change the training that follows.
    """
    with torch.random.fork_rng(devices=[]):
        qf = extract_features(model, query, cfg, device, desc="query", progress=progress)
        gf = extract_features(model, gallery, cfg, device, desc="gallery", progress=progress)
    distmat = re_ranking(qf, gf) if rerank else pairwise_distance(qf, gf, metric="cosine")
    res = evaluate(distmat, _col(query, 1), _col(gallery, 1), _col(query, 2), _col(gallery, 2),
                   topk=(1, 5, 10))
    out = {"mAP": float(res["mAP"])}
    out.update({f"rank{k}": float(v) for k, v in res["cmc"].items()})
    out["num_skipped_queries"] = int(res["num_skipped_queries"])
    return out


def _col(items: Sequence[tuple], i: int) -> np.ndarray:
    return np.asarray([it[i] for it in items], dtype=np.int64)
