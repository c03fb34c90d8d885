"""Probes of DCDFA's disentanglement f = b + e: does b carry the identity and e the domain?

* :func:`linear_probe_domain` — a logistic-regression domain classifier trained on one half of held-out
  source + target features and tested on the other half: its accuracy measures how much domain
  information a feature carries (b should carry less than e; 0.5 = none).
* :func:`swap_test` — recompose held-out pairs (r_i^t = b_i + e_j^t, r_j^s = b_j + e_i^s, DCDFA Eq. 5) and
  ask whether the trained domain classifier follows e (r_i^t called "target") and whether the identity
  follows b (the nearest original feature of r_i^t is an image of person i).
* :func:`attention_stats` — the mean attention m(F) per channel for source and for target images.

:func:`run_probes` runs all three on held-out test images of both domains and returns the numbers the UDA
loop logs once per epoch under ``"probe"``.
"""
from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..models.dcdfa import disentangle


def probe_items(dataset, n: int) -> list[tuple]:
    """``n`` held-out images of a dataset: evenly spaced over its query + gallery (never its train split)."""
    items = list(dataset.query) + list(dataset.gallery)
    if not items:
        raise ValueError("the probes need held-out test images, but the dataset has no query/gallery split")
    if n >= len(items):
        return items
    idx = np.linspace(0, len(items) - 1, n).round().astype(int)
    return [items[i] for i in idx]


@torch.no_grad()
def dcdfa_features(net: nn.Module, attention: nn.Module, items: Sequence[tuple], cfg_data,
                   device: torch.device, progress: bool = False) -> dict[str, torch.Tensor]:
    """``{"f", "b", "e", "m"}`` (N, C) on the CPU for ``items``, with ``net`` and ``attention`` in eval mode."""
    from tqdm.auto import tqdm

    from ..core.loaders import test_loader
    modes = (net.training, attention.training)
    net.eval()
    attention.eval()
    out: dict[str, list] = {"f": [], "b": [], "e": [], "m": []}
    try:
        for img, *_ in tqdm(test_loader(items, cfg_data), desc="probe features", leave=True,
                            disable=not progress):
            o = net(img.to(device))
            m = attention(o["fmap"])
            b, e = disentangle(o["f"], m)
            for k, v in (("f", o["f"]), ("b", b), ("e", e), ("m", m)):
                out[k].append(v.float().cpu())
    finally:
        net.train(modes[0])
        attention.train(modes[1])
    return {k: torch.cat(v) for k, v in out.items()}


def linear_probe_domain(x_source: np.ndarray | torch.Tensor, x_target: np.ndarray | torch.Tensor,
                        seed: int = 0) -> float:
    """Held-out accuracy of a logistic-regression source-vs-target classifier on features (N, C).

    Rows are split by parity (even rows train, odd rows test) in each domain; features are standardised
    with the training half's statistics. 1.0: the domain is linearly readable; 0.5: it is not.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    xs, xt = (np.asarray(x.cpu() if torch.is_tensor(x) else x, dtype=np.float64) for x in (x_source, x_target))
    if len(xs) < 4 or len(xt) < 4:
        raise ValueError(f"linear_probe_domain needs at least 4 images per domain; got {len(xs)} source and "
                         f"{len(xt)} target")
    x = np.concatenate([xs, xt])
    y = np.concatenate([np.ones(len(xs)), np.zeros(len(xt))])
    train = np.concatenate([np.arange(len(xs)) % 2 == 0, np.arange(len(xt)) % 2 == 0])
    scaler = StandardScaler().fit(x[train])
    clf = LogisticRegression(C=0.1, max_iter=2000, random_state=seed)
    clf.fit(scaler.transform(x[train]), y[train])
    return float((clf.predict(scaler.transform(x[~train])) == y[~train]).mean())


@torch.no_grad()
def swap_test(src: dict, tgt: dict, pid_s: torch.Tensor, pid_t: torch.Tensor,
              domain_classifier: nn.Module | None, generator: torch.Generator) -> dict[str, float | None]:
    """Recompose held-out source–target pairs and check what each half decides (DCDFA sec. 3.3's conditions).

    ``src`` / ``tgt``: ``{"f", "b", "e"}`` (N_s, C) / (N_t, C) from :func:`dcdfa_features`. Pairs source k with
    target ``perm[k]`` for k < min(N_s, N_t). Returns

    * ``r_t_is_target`` / ``r_s_is_source``: the share of r_i^t classified "target" / r_j^s classified
      "source" by ``domain_classifier`` (column 1 = source): the domain follows e (None when no trained
      classifier is given, e.g. the Table 3 rows without L_Domain, whose classifier never learns);
    * ``id_follows_b``: the share of r_i^t and r_j^s whose nearest (cosine) original feature among all
      f of both domains shows the person of their b (person i for r_i^t, person j for r_j^s).
    """
    n = min(len(src["f"]), len(tgt["f"]))
    if n < 1:
        raise ValueError("swap_test needs at least one source and one target feature")
    perm = torch.randperm(len(tgt["f"]), generator=generator)[:n]
    b_i, e_i = src["b"][:n], src["e"][:n]
    b_j, e_j = tgt["b"][perm], tgt["e"][perm]
    r_t, r_s = b_i + e_j, b_j + e_i
    r_t_target = r_s_source = None
    if domain_classifier is not None:
        was = domain_classifier.training
        domain_classifier.eval()
        try:
            dev = next(domain_classifier.parameters()).device
            p_src = lambda x: F.softmax(domain_classifier(x.to(dev)).float(), dim=1)[:, 1].cpu()  # noqa: E731
            r_t_target = float((p_src(r_t) < 0.5).float().mean())
            r_s_source = float((p_src(r_s) >= 0.5).float().mean())
        finally:
            domain_classifier.train(was)
    originals = F.normalize(torch.cat([src["f"], tgt["f"]]), dim=1)
    # identity key of every original: (domain, pid) as one integer
    big = int(max(pid_s.max(), pid_t.max())) + 1
    keys = torch.cat([pid_s.long(), pid_t.long() + big])
    near_t = (F.normalize(r_t, dim=1) @ originals.T).argmax(1)
    near_s = (F.normalize(r_s, dim=1) @ originals.T).argmax(1)
    hits = torch.cat([keys[near_t] == pid_s[:n].long(), keys[near_s] == pid_t[perm].long() + big])
    return {"r_t_is_target": r_t_target, "r_s_is_source": r_s_source, "id_follows_b": float(hits.float().mean())}


def attention_stats(m_source: torch.Tensor, m_target: torch.Tensor) -> dict[str, np.ndarray | float]:
    """Mean attention per channel for each domain (C,), and summary numbers for the log.

    ``channel_gap``: mean over channels of |mean m_source − mean m_target| (how differently the two domains
    split their channels); ``mean_source`` / ``mean_target``: the share of f that goes to b on average.
    """
    ms, mt = m_source.float().mean(0), m_target.float().mean(0)
    return {"per_channel_source": ms.numpy(), "per_channel_target": mt.numpy(),
            "mean_source": float(ms.mean()), "mean_target": float(mt.mean()),
            "channel_gap": float((ms - mt).abs().mean())}


def run_probes(net: nn.Module, attention: nn.Module, domain_classifier: nn.Module | None, source, target,
               cfg_data, device: torch.device, n_images: int = 200, seed: int = 0, progress: bool = False) -> dict:
    """All probes on ``n_images`` held-out test images per domain, for metrics.jsonl: floats, and the mean
    attention per channel of each domain as lists (``m_per_channel_source`` / ``_target``, for the plots)."""
    held_out = {name: len(ds.query) + len(ds.gallery) for name, ds in (("source", source), ("target", target))}
    if min(held_out.values()) < 4:      # a diagnostic must never stop a run: say why it is missing
        warnings.warn(f"DCDFA probes skipped: they need at least 4 held-out test images (query + gallery) per "
                      f"domain; the source has {held_out['source']}, the target {held_out['target']} "
                      "(dcdfa.probe_images=0 turns them off)")
        return {}
    items_s, items_t = probe_items(source, n_images), probe_items(target, n_images)
    src = dcdfa_features(net, attention, items_s, cfg_data, device, progress)
    tgt = dcdfa_features(net, attention, items_t, cfg_data, device, progress)
    out = {f"domain_acc_{k}": linear_probe_domain(src[k], tgt[k], seed) for k in ("f", "b", "e")}
    pid_s = torch.as_tensor([p for _, p, _ in items_s])
    pid_t = torch.as_tensor([p for _, p, _ in items_t])
    out.update(swap_test(src, tgt, pid_s, pid_t, domain_classifier, torch.Generator().manual_seed(seed)))
    stats = attention_stats(src["m"], tgt["m"])
    out.update({f"m_{k}": (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in stats.items()})
    return out
