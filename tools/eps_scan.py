"""How DBSCAN's radius holds on a target: the first round's clustering of a pretrained model, at fixed radii
and at radii derived from the data (``uda.auto_eps_noise``, reid_uda_lib/cluster/auto_eps.py).

The features are those an adaptation clusters in its first round: the model's BatchNorm statistics
re-estimated on the target train images when the preset sets ``uda.target_bn``, its BNNeck features, each
camera's mean removed when it sets ``uda.camera_norm``, then the k-reciprocal Jaccard distance with the
preset's k1/k2. For each setting it prints the radius, the outlier share, the clusters against the true
identities and the NMI/ARI of the clustered images (the true ids are read for the report only).
``--kmeans`` adds k-means rows on the same features for LF²'s M (``lf2.n_clusters``), each with M / N, the
clusters per target training image, so that an M chosen on one target carries to another by that share:

    python tools/eps_scan.py --init runs/ladder-cpu/seed0/pretrain/checkpoint.pt --target data/synthetic/B
    python tools/eps_scan.py --init runs/ladder-cpu/seed0/pretrain/checkpoint.pt --target data/real/cuhk03 \
           --eps 0.4,0.5,0.6 --noise 0.05,0.1,0.2 --kmeans 50,100,200
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from sklearn.cluster import DBSCAN  # noqa: E402

from reid_uda_lib.analysis import load_run  # noqa: E402
from reid_uda_lib.cluster import camera_centred, label_quality  # noqa: E402
from reid_uda_lib.cluster.auto_eps import eps_for_noise, kth_neighbour_distance  # noqa: E402
from reid_uda_lib.cluster.jaccard import jaccard_distance  # noqa: E402
from reid_uda_lib.cluster.pseudo_labels import pseudo_labels  # noqa: E402
from reid_uda_lib.config import get_preset  # noqa: E402
from reid_uda_lib.core.bn_stats import bn_subset, refresh_bn_stats  # noqa: E402
from reid_uda_lib.core.features import extract_features  # noqa: E402
from reid_uda_lib.data import load_dataset  # noqa: E402


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v.strip()]


def scan(dist, true_ids: np.ndarray, min_samples: int, eps_values, noise_values) -> list[dict]:
    """One row per setting: the radius (given, or derived by Eq. A2), outlier share, clusters, NMI/ARI."""
    kdist = kth_neighbour_distance(dist, min_samples)
    settings = [("eps", e, e) for e in eps_values] + [("noise", p, eps_for_noise(kdist, p)) for p in noise_values]
    rows = []
    for kind, value, eps in settings:
        labels = DBSCAN(eps=eps, min_samples=min_samples, metric="precomputed").fit_predict(dist)
        rows.append(_row(f"{kind} {value:g}", labels, true_ids, eps=eps))
    return rows


def _row(setting: str, labels, true_ids: np.ndarray, **extra) -> dict:
    """One printed row: the labels' outlier share, clusters and NMI/ARI against the true ids, plus ``extra``."""
    q = label_quality(labels, true_ids)
    return {"setting": setting, **extra, "outliers": q["outlier_ratio"], "clusters": q["n_clusters"],
            "true_ids": q["n_true_ids"], "nmi": q["nmi"], "ari": q["ari"], "ari_all": q["ari_all"]}


def kmeans_scan(feats, true_ids: np.ndarray, m_values, seed: int = 0) -> list[dict]:
    """One row per M: k-means (the loop's own, seed ``seed``) into M clusters; M / N, clusters, NMI/ARI."""
    rows = []
    for m in m_values:
        labels = pseudo_labels(feats, method="kmeans", n_clusters=int(m), seed=seed)
        rows.append(_row(f"kmeans {int(m)}", labels, true_ids, m_per_image=int(m) / len(true_ids)))
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--init", required=True, help="a pretraining (or UDA) checkpoint or run folder")
    ap.add_argument("--target", required=True, help="the target dataset folder (Market layout)")
    ap.add_argument("--preset", default=None, help="clustering settings of this preset (default: the run's)")
    ap.add_argument("--eps", default="0.4,0.5,0.6", help="fixed radii (comma-separated)")
    ap.add_argument("--noise", default="0.05,0.1,0.2", help="noise shares p for the derived radius")
    ap.add_argument("--kmeans", default="", help="k-means cluster counts M for LF² (comma-separated; none by default)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    run = load_run(args.init)
    cfg = get_preset(args.preset) if args.preset else run.cfg
    u, device = cfg.uda, run.device
    target = load_dataset(Path(args.target))
    items = list(target.train)
    if u.target_bn:
        refresh_bn_stats(run.net, bn_subset(items, u.target_bn_images), run.cfg.data, device, progress=False)
    feats = extract_features(run.net, items, run.cfg.data, device, key="bn", progress=False).cpu()
    if u.camera_norm:
        feats = camera_centred(feats, [cam for _, _, cam in items])
    dist = jaccard_distance(feats, k1=u.k1, k2=u.k2, sparse=True)
    true_ids = np.array([pid for _, pid, _ in items])
    print(f"{args.target}: {len(items)} train images, {len(set(true_ids))} identities; model {args.init}; "
          f"k1 {u.k1}, k2 {u.k2}, min_samples {u.min_samples}, target BN {u.target_bn}, camera centring "
          f"{u.camera_norm}")
    print("NMI, ARI: over the clustered images; ARI all: every outlier its own cluster (leaving images out is not free)")
    print(f"{'setting':12s} {'eps':>6s} {'outliers':>8s} {'clusters':>8s} {'NMI':>5s} {'ARI':>5s} {'ARI all':>7s}")
    for r in scan(dist, true_ids, u.min_samples, _floats(args.eps), _floats(args.noise)):
        print(f"{r['setting']:12s} {r['eps']:6.3f} {100 * r['outliers']:7.1f}% {r['clusters']:8d} "
              f"{r['nmi']:5.2f} {r['ari']:5.2f} {r['ari_all']:7.3f}")
    m_values = [int(v) for v in _floats(args.kmeans)]
    if m_values:
        print(f"{'setting':12s} {'M/N':>6s} {'clusters':>8s} {'NMI':>5s} {'ARI':>5s} {'ARI all':>7s}")
        for r in kmeans_scan(feats, true_ids, m_values):
            print(f"{r['setting']:12s} {r['m_per_image']:6.3f} {r['clusters']:8d} {r['nmi']:5.2f} {r['ari']:5.2f} {r['ari_all']:7.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
