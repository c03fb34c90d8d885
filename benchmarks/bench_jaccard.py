"""Speed and memory of the k-reciprocal Jaccard distance (reid_uda_lib.cluster.jaccard_distance).

Usage::

    python benchmarks/bench_jaccard.py                 # N=12,936 dense (Market-1501 train size)
    python benchmarks/bench_jaccard.py --sparse --n 32621   # MSMT17 train size, sparse output
    python benchmarks/bench_jaccard.py --quick         # small sizes, a few seconds (smoke test)

Features: seeded synthetic 2048-d identities (751 by default; uneven sizes, a shared per-camera
offset so that different identities seen by one camera are confusable, Gaussian noise), L2-normalised.

Measurement:

* Each measured case runs in a fresh Python subprocess. It creates the features (chunked, so the
  creation leaves no temporary peak behind), runs a tiny warm-up call (library / kernel start-up),
  resets the kernel's peak-RSS counter (``echo 5 > /proc/self/clear_refs``), runs the case once and
  reads the peak back (``VmHWM`` in ``/proc/self/status``): peak memory = highest resident set
  during the call minus the resident set just before it, i.e. what the call adds on top of its
  input (the output included). ``getrusage(RUSAGE_SELF).ru_maxrss`` is not used for the delta:
  Linux carries the parent's high-water mark over fork + exec, so a worker started by a big parent
  reports the parent's peak as its baseline and under-states the increase (observed here: 0.31 GB).
  Without ``clear_refs`` (non-Linux) the script falls back to ru_maxrss and says so.
* The ratio is against a straightforward dense implementation of the same convention (dense N x N
  similarity, full argsort, Python loops for the sets, dense V, Σmin row by row), run in this
  process at a size where it is affordable (N=3,000); both results must agree to 1e-5.
* Timings on a shared machine are noisy: each case is repeated (``--repeats``, fresh processes) and
  the best and the median are printed with the load average, plus the process CPU time of the call
  (user + system, all threads), which other jobs on the machine inflate much less than wall time.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

TARGETS = {  # (N, sparse) -> (seconds, GB) from the task brief; SpCL's CPU faiss: 29-37 s, 1.8 GB
    (12936, False): (6.0, 0.9),
    (32621, True): (None, 4.0),
}


def make_features(n: int, ids: int = 751, dim: int = 2048, seed: int = 0, noise: float = 1.6,
                  cam: float = 0.8, n_cams: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded clustered features (N, dim), L2-normalised, and their identity labels."""
    g = torch.Generator().manual_seed(seed)
    centres = F.normalize(torch.randn(ids, dim, generator=g), dim=1)
    cam_dirs = F.normalize(torch.randn(n_cams, dim, generator=g), dim=1)
    weights = torch.rand(ids, generator=g) + 0.3                    # uneven identity sizes
    labels = torch.multinomial(weights, n, replacement=True, generator=g)
    cams = torch.randint(0, n_cams, (n,), generator=g)
    x = torch.empty(n, dim)
    for s in range(0, n, 2048):                                      # chunked: no big temporaries
        e = min(s + 2048, n)
        x[s:e] = centres[labels[s:e]] + cam * cam_dirs[cams[s:e]]
        x[s:e] += noise / dim ** 0.5 * torch.randn(e - s, dim, generator=g)
    x /= x.norm(dim=1, keepdim=True)
    return x, labels


def dense_reference(x: np.ndarray, k1: int, k2: int) -> np.ndarray:
    """Straightforward dense implementation of the same convention (for the speed ratio and agreement)."""
    n = x.shape[0]
    sim = x @ x.T
    key = -sim
    np.fill_diagonal(key, -np.inf)                                   # self first
    knn = np.argsort(key, axis=1, kind="stable")[:, :k1]             # ties: lower index
    rank = np.full((n, n), k1, dtype=np.int64)                       # rank[j, i]: position of i in L_j
    np.put_along_axis(rank, knn, np.arange(k1)[None, :].repeat(n, 0), axis=1)

    def recip(i: int, k: int) -> np.ndarray:
        fw = knn[i, :k + 1]
        return fw[rank[fw, i] < min(k + 1, k1)]

    half = int(np.around(k1 / 2))
    r_full = [recip(i, k1) for i in range(n)]
    r_half = [recip(i, half) for i in range(n)]
    v = np.zeros((n, n), dtype=np.float32)
    for i in range(n):
        exp = set(r_full[i].tolist())
        for c in r_full[i]:
            if len(np.intersect1d(r_half[c], r_full[i])) > 2 / 3 * len(r_half[c]):
                exp.update(r_half[c].tolist())
        e = np.array(sorted(exp))
        w = np.exp(-(2 - 2 * sim[i, e]))
        v[i, e] = w / w.sum()
    if k2 > 1:
        v = np.stack([v[knn[i, :k2]].mean(0) for i in range(n)])
    out = np.empty((n, n), dtype=np.float32)
    for i in range(n):
        nz = np.nonzero(v[i])[0]
        m = np.minimum(v[i, nz][None, :], v[:, nz]).sum(1)
        out[i] = 1 - m / (2 - m)
    return np.maximum(out, 0)


def _status_bytes(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024                      # kB
    raise KeyError(field)


def _reset_peak() -> str:
    """Reset the peak-RSS counter; return the method used to read the peak afterwards."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return "VmHWM"
    except OSError:
        return "ru_maxrss"


def _peak_bytes(method: str) -> int:
    if method == "VmHWM":
        return _status_bytes("VmHWM")
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024       # Linux: kB


def worker(n: int, sparse: bool, k1: int, k2: int, seed: int, device: str = "cpu") -> dict:
    """One measured case (run in a fresh subprocess). On a GPU the features are a tensor on it (the distance
    stays there when dense) and the peak is the host memory's, as on the CPU."""
    from reid_uda_lib.cluster import jaccard_distance
    from reid_uda_lib.utils import resolve_device

    dev = resolve_device(device)
    x, _ = make_features(n, ids=max(2, round(751 * n / 12936)), seed=seed)
    if dev.type != "cpu":
        x = x.to(dev)
    as_input = (lambda t: t.numpy()) if dev.type == "cpu" else (lambda t: t)
    jaccard_distance(as_input(x[:256]), k1=k1, k2=k2, sparse=sparse)       # warm-up
    method = _reset_peak()
    base_peak = _peak_bytes(method)
    base = _status_bytes("VmRSS") if method == "VmHWM" else base_peak
    t0, c0 = time.perf_counter(), time.process_time()
    d = jaccard_distance(as_input(x), k1=k1, k2=k2, sparse=sparse)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = _peak_bytes(method) - base
    if sparse:
        nnz = int(d.nnz)
        out_bytes = d.data.nbytes + d.indices.nbytes + d.indptr.nbytes
    else:
        nnz = int((d < 1).sum())
        out_bytes = d.nbytes if isinstance(d, np.ndarray) else d.numel() * d.element_size()
    return {"n": n, "sparse": sparse, "wall_s": wall, "cpu_s": cpu, "peak_bytes": peak, "peak_method": method,
            "baseline_peak_bytes": base_peak, "baseline_rss_bytes": base, "pairs_below_1_per_row": nnz / n,
            "output_bytes": out_bytes, "threads": torch.get_num_threads()}


def run_case(n: int, sparse: bool, k1: int, k2: int, seed: int, device: str = "cpu") -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--n", str(n), "--k1", str(k1),
           "--k2", str(k2), "--seed", str(seed), "--device", device] + (["--sparse"] if sparse else [])
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"worker failed ({' '.join(cmd)}):\n{res.stderr}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def compare_reference(n: int, k1: int, k2: int, seed: int) -> None:
    from reid_uda_lib.cluster import jaccard_distance

    x, _ = make_features(n, ids=max(2, round(751 * n / 12936)), seed=seed)
    xn = x.numpy()
    jaccard_distance(xn[:256], k1=k1, k2=k2, sparse=False)                # warm-up
    t0 = time.perf_counter()
    ours = jaccard_distance(xn, k1=k1, k2=k2, sparse=False)
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    ref = dense_reference(xn, k1, k2)
    t_ref = time.perf_counter() - t0
    diff = float(np.abs(ours - ref).max())
    print(f"[reference] N={n}: ours {t_ours:.2f} s, straightforward dense {t_ref:.2f} s, "
          f"ratio {t_ref / t_ours:.1f}x; max |difference| {diff:.2e} "
          f"({'agree' if diff <= 1e-5 else 'DISAGREE'} at 1e-5)")
    if diff > 1e-5:
        raise SystemExit("the fast and the straightforward implementations disagree")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=12936, help="points in the measured case (default 12,936)")
    p.add_argument("--sparse", action="store_true", help="measure the sparse (scipy CSR) output")
    p.add_argument("--quick", action="store_true", help="small sizes (N=3,000 measured, N=800 reference)")
    p.add_argument("--ref-n", type=int, default=3000, help="N of the in-process comparison (0: skip)")
    p.add_argument("--k1", type=int, default=30)
    p.add_argument("--k2", type=int, default=6)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeats", type=int, default=3, help="fresh-process repeats of the measured case")
    p.add_argument("--device", default="cpu", help="device of the measured case's features (cuda: on the GPU; "
                                                   "the reference comparison stays on the CPU)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.n, args.sparse, args.k1, args.k2, args.seed, args.device)))
        return
    if args.quick:
        args.n, args.ref_n = min(args.n, 3000), min(args.ref_n, 800)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f}")
    if args.ref_n:
        compare_reference(args.ref_n, args.k1, args.k2, args.seed)
    runs = [run_case(args.n, args.sparse, args.k1, args.k2, args.seed, args.device)
            for _ in range(max(1, args.repeats))]
    walls = sorted(r["wall_s"] for r in runs)
    cpus = sorted(r["cpu_s"] for r in runs)
    r = max(runs, key=lambda run: run["peak_bytes"])                 # report the worst peak
    r["wall_s"] = walls[0]
    gib = 1e9                                                        # decimal GB, as in the targets
    kind = "sparse CSR" if r["sparse"] else "dense"
    print(f"[measured] N={r['n']} {kind}, {len(runs)} runs: best {walls[0]:.2f} s, median "
          f"{walls[len(walls) // 2]:.2f} s (all: {', '.join(f'{w:.2f}' for w in walls)}; CPU time "
          f"best {cpus[0]:.2f} s over {r['threads']} threads); "
          f"peak +{r['peak_bytes'] / gib:.2f} GB (output {r['output_bytes'] / gib:.2f} GB; "
          f"pairs with d<1: {r['pairs_below_1_per_row']:.0f}/row; peak read from {r['peak_method']}, "
          f"RSS before the call {r['baseline_rss_bytes'] / gib:.2f} GB); "
          f"load average now {os.getloadavg()[0]:.2f}, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}")
    target = TARGETS.get((r["n"], r["sparse"]))
    if target:
        t_s, t_gib = target
        parts = []
        if t_s is not None:
            parts.append(f"best time {r['wall_s']:.2f} s vs <= {t_s:.0f} s: {'OK' if r['wall_s'] <= t_s else 'MISSED'}")
        parts.append(f"memory {r['peak_bytes'] / gib:.2f} GB vs <= {t_gib} GB: "
                     f"{'OK' if r['peak_bytes'] / gib <= t_gib else 'MISSED'}")
        print("[target] " + "; ".join(parts))


if __name__ == "__main__":
    main()
