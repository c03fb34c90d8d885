"""Section 4 of ``gpu_check.py``: the clustering and the evaluation on the device, each against the CPU in the
same run.

Features: :func:`bench_jaccard.make_features` (seeded, clustered: identity centres, a per-camera offset and
noise, L2-normalised; 751 identities at N = 12,936, scaled with N). Timed, once each after a small warm-up call
(CUDA's first kernels and cuBLAS start-up out of the figure), on the device and on the CPU:

* ``jaccard_distance`` (k1 = 30, k2 = 6, dense output), with the largest difference between the two results;
* ``pseudo_labels(method="dbscan")`` (the Jaccard distance + sklearn DBSCAN, eps 0.6, min_samples 4: what the
  loop runs every epoch for SBase / DCDFA), with whether both give the same labels;
* ``kmeans`` (LF²'s clustering, k = 700 at full size), with both inertias;
* ``evaluate`` on a Market-test-sized distance matrix (:func:`bench_evaluation.make_problem`; on the device the
  matrix lives there, as after a GPU ``pairwise_distance``), best of 3 after a warm-up
  (:func:`bench_evaluation.best_of`), with the mAP difference.
"""
from __future__ import annotations

import numpy as np
import torch

from bench_evaluation import best_of, make_problem
from bench_jaccard import make_features
from bench_step import time_call
from gpu_check_steps import OOM, free

from reid_uda_lib.cluster import jaccard_distance, kmeans, pseudo_labels
from reid_uda_lib.evaluation import evaluate

K1, K2, EPS, MIN_SAMPLES = 30, 6, 0.6, 4


def _call(fn, device) -> tuple[float, object]:
    """``(seconds, fn())``, the device synchronised around the call."""
    out = {}
    t = time_call(lambda: out.setdefault("v", fn()), device)
    return t, out["v"]


def _numpy(d) -> np.ndarray:
    return d.cpu().numpy() if isinstance(d, torch.Tensor) else np.asarray(d)


def _jaccard(x: torch.Tensor, dev: torch.device) -> dict:
    xd, xn = x.to(dev), x.numpy()
    jaccard_distance(xd[:256], k1=K1, k2=K2, sparse=False)
    jaccard_distance(xn[:256], k1=K1, k2=K2, sparse=False)
    t_dev, d_dev = _call(lambda: jaccard_distance(xd, k1=K1, k2=K2, sparse=False), dev)
    t_cpu, d_cpu = _call(lambda: jaccard_distance(xn, k1=K1, k2=K2, sparse=False), torch.device("cpu"))
    diff = float(np.abs(_numpy(d_dev) - _numpy(d_cpu)).max())
    return {"device_s": t_dev, "cpu_s": t_cpu, "agreement": f"max abs difference {diff:.1e}", "max_abs_diff": diff}


def _dbscan(x: torch.Tensor, dev: torch.device) -> dict:
    xd, xn = x.to(dev), x.numpy()
    kw = dict(method="dbscan", eps=EPS, min_samples=MIN_SAMPLES, k1=K1, k2=K2)
    t_dev, l_dev = _call(lambda: pseudo_labels(xd, **kw), dev)
    t_cpu, l_cpu = _call(lambda: pseudo_labels(xn, **kw), torch.device("cpu"))
    same = bool(np.array_equal(l_dev, l_cpu))
    return {"device_s": t_dev, "cpu_s": t_cpu, "same_labels": same,
            "agreement": f"labels {'identical' if same else 'DIFFER'}; {l_dev.max() + 1} / {l_cpu.max() + 1} "
                         f"clusters, {100 * (l_dev < 0).mean():.1f} % outliers"}


def _kmeans(x: torch.Tensor, dev: torch.device, k: int) -> dict:
    xd = x.to(dev)
    kmeans(xd[: min(2000, len(x))], min(50, k), seed=0)
    kmeans(x[: min(2000, len(x))], min(50, k), seed=0)
    t_dev, r_dev = _call(lambda: kmeans(xd, k, seed=0), dev)
    t_cpu, r_cpu = _call(lambda: kmeans(x, k, seed=0), torch.device("cpu"))
    same = bool(torch.equal(r_dev.labels.cpu(), r_cpu.labels.cpu()))
    return {"device_s": t_dev, "cpu_s": t_cpu, "same_labels": same,
            "agreement": f"inertia {r_dev.inertia:.2f} / {r_cpu.inertia:.2f}; labels "
                         f"{'identical' if same else 'differ'}"}


def _evaluate(dev: torch.device, nq: int, ng: int) -> dict:
    ids = max(1, round(751 * ng / 15913))
    distmat, qpid, gpid, qcam, gcam = make_problem(nq, ng, ids, 6, 1.8, seed=0)
    ids_np = [v.numpy() for v in (qpid, gpid, qcam, gcam)]
    d_dev = distmat.to(dev)

    def on_device() -> dict:
        res = evaluate(d_dev, *ids_np)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        return res

    t_dev, _, r_dev = best_of(on_device, 3)
    t_cpu, _, r_cpu = best_of(lambda: evaluate(distmat.numpy(), *ids_np), 3)
    diff = abs(r_dev["mAP"] - r_cpu["mAP"])
    return {"device_s": t_dev, "cpu_s": t_cpu,
            "agreement": f"mAP {r_dev['mAP']:.4f} / {r_cpu['mAP']:.4f}, abs difference {diff:.1e}"}


def clustering(ctx, reserve: float) -> dict:
    """Section 4: one row per task (measured, skipped when the budget does not allow its prior estimate, or
    failed in one line)."""
    s, dev = ctx.sizes, ctx.device
    x, _ = make_features(s.n_feat, ids=max(2, round(751 * s.n_feat / 12936)), dim=s.dim, seed=0)
    tasks = [
        ("jaccard", f"jaccard_distance (k1 {K1}, k2 {K2}, dense)", lambda: _jaccard(x, dev)),
        ("dbscan", f"pseudo_labels: Jaccard + DBSCAN (eps {EPS}, min_samples {MIN_SAMPLES})",
         lambda: _dbscan(x, dev)),
        ("kmeans", f"kmeans k = {s.k}", lambda: _kmeans(x, dev, s.k)),
        ("evaluate", f"evaluate {s.queries:,} x {s.gallery:,}", lambda: _evaluate(dev, s.queries, s.gallery)),
    ]
    rows = []
    for key, title, fn in tasks:
        row = {"key": key, "task": title}
        est = s.prior["cluster_" + key]
        if not ctx.budget.fits(est, reserve):
            rows.append({**row, "status": ctx.budget.skip_reason(est, reserve)})
            continue
        try:
            row.update(fn(), status="measured")
            row["ratio"] = row["cpu_s"] / row["device_s"] if row["device_s"] > 0 else None
        except OOM as err:
            row["status"] = "out of memory: " + str(err).splitlines()[0][:160]
        except Exception as err:
            row["status"] = f"failed: {type(err).__name__}: {str(err).splitlines()[0][:160]}"
        free(dev)
        rows.append(row)
        ctx.log(f"  {title}: {row['status']}" + (f", device {row['device_s']:.3f} s, CPU {row['cpu_s']:.3f} s"
                                                  if row["status"] == "measured" else ""))
    return {"config": {"n": s.n_feat, "dim": s.dim, "k": s.k, "queries": s.queries, "gallery": s.gallery,
                       "cpu_threads": torch.get_num_threads(),
                       "features": f"bench_jaccard.make_features: seeded clustered {s.dim}-d features "
                                   "(identity centres + camera offset + noise), L2-normalised"},
            "rows": rows}
