"""Sections 2 and 3 of ``gpu_check.py``: training-step time and peak memory at a preset's shapes.

Every row builds the loop's state for one method (:func:`bench_step.build_parts`: model, method modules, memory
bank, Mean-Net, optimiser), gives its BatchNorm layers their groups the way the UDA loop does
(:func:`reid_uda_lib.runtime.distributed.setup_bn_groups`), then runs ``warmup + steps`` calls of
:func:`reid_uda_lib.train.uda_step.train_step` on synthetic PK batches (:func:`bench_step.step_once`) and keeps
the median of the timed ones. On CUDA the peak memory of the row is ``torch.cuda.max_memory_allocated`` (and
``max_memory_reserved``) from just before the first step, so it holds the weights, the Mean-Net, the memory
bank, the batches, the optimiser state and every activation; an out-of-memory error is a measurement ("does
not fit"), not a failure. One row's state is freed before the next is built.
"""
from __future__ import annotations

import gc
import statistics
import time
from pathlib import Path

import torch

from bench_step import build_parts, make_batch, step_once, time_call

from reid_uda_lib.config import PRESETS, get_preset
from reid_uda_lib.data.synthetic.generator import DEFAULT_TRAIN_IDS
from reid_uda_lib.runtime.amp import cpu_has_bf16
from reid_uda_lib.runtime.distributed import setup_bn_groups

OOM = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)
MIB = 2 ** 20
# (source identities, target training images) of the problems the rows are sized for: the memory bank holds
# one feature per source identity and per target image
MARKET = (751, 12936)                   # Market-1501's train split, the papers' target (paper preset)
SYNTHETIC = (DEFAULT_TRAIN_IDS, 1305)   # the default synthetic pair (`make demo`, the notebooks: cpu preset)


def amp_skip_reason(amp: str, device: torch.device) -> str | None:
    """Why ``amp`` cannot be measured on ``device`` (``None``: it can): fp16 on a CPU has no arithmetic units,
    bf16 needs a GPU with bf16 or a CPU with ``avx512_bf16``/``amx_bf16`` (runtime/amp.py)."""
    if amp == "off":
        return None
    if device.type == "cuda":
        if amp == "bf16" and not torch.cuda.is_bf16_supported():
            return "skipped: this GPU has no bfloat16 (use fp16)"
        return None
    if device.type == "cpu":
        if amp == "fp16":
            return "skipped: a CPU has no fp16 arithmetic (fp16 is for GPUs without bf16)"
        if amp == "bf16" and not cpu_has_bf16():
            return "skipped: this CPU has no avx512_bf16 / amx_bf16 (bf16 measured ~20x slower than float32 there)"
        return None
    return f"skipped: amp={amp} is not measured on {device.type}"


def usable_weights(model_cfg) -> tuple[object, str]:
    """``(weights to build with, what the table says)`` for a preset's ``model`` section. torchvision's ImageNet
    files are used only when already in the torch hub cache (a lent GPU machine cannot download); any other
    value (weights read offline, e.g. shipped in a wheel, or a file path) is tried once through the library's
    loader. What cannot be loaded gives random weights, said so: weights do not change the step time."""
    weights, arch = model_cfg.weights, model_cfg.arch
    if weights is None:
        return None, "random (the preset's)"
    from reid_uda_lib.models import build_model
    from reid_uda_lib.models.weights import IMAGENET_WEIGHTS, imagenet_file_name
    if str(weights).lower() == "imagenet" and arch in IMAGENET_WEIGHTS:
        path = Path(torch.hub.get_dir()) / "checkpoints" / imagenet_file_name(arch)
        if path.is_file():
            return "imagenet", f"ImageNet ({path.name} from the torch hub cache)"
        return None, ("random: the preset's ImageNet weights are not in the torch hub cache and are not downloaded "
                      "here (weights do not change step time)")
    try:
        build_model(model_cfg)
        return weights, f"the preset's ({weights})"
    except Exception as err:
        return None, (f"random: the preset's weights ({weights}) cannot be loaded here: {type(err).__name__}: "
                      f"{str(err).splitlines()[0][:120]} (weights do not change step time)")


def paper_preset_for(method: str) -> str:
    """The preset of a method's paper rows: a ``paper*`` preset whose ``uda.method`` is this method (``paper_lf2``
    for LF², where it exists), else ``paper``."""
    for name in PRESETS:
        if name.startswith("paper") and name != "paper" and get_preset(name).uda.method == method:
            return name
    return "paper"


def preset_shapes(preset: str, quick: bool) -> tuple:
    """``(cfg, facts)`` for a section's rows: the preset's config with usable weights and, in quick mode, the
    tiny sizes of the CPU smoke run; ``facts`` names the backbone, input size, batch and BatchNorm groups
    the table prints."""
    base = get_preset(preset)
    over: dict = {}
    if quick and preset.startswith("paper"):        # tiny stand-in for ResNet-50 at 256x128
        over.update({"model.arch": "tiny", "model.weights": None, "data.height": 64, "data.width": 32})
    if quick:                                       # PK batches of 4 to 16 images: 2 images per identity
        over["data.num_instances"] = 2
    cfg = base.override(**over) if over else base
    weights, note = usable_weights(cfg.model)
    cfg = cfg.override(**{"model.weights": weights})
    facts = {"preset": preset, "arch": cfg.model.arch, "height": cfg.data.height, "width": cfg.data.width,
             "last_stride": cfg.model.last_stride, "preset_batch": base.data.batch_size,
             "preset_bn_samples": base.model.bn_samples, "weights": note, "num_instances": cfg.data.num_instances}
    return cfg, facts


def measure_row(cfg, method: str, batch: int, amp: str, bn_samples: int, device: torch.device,
                problem: tuple[int, int], warmup: int, steps: int) -> dict:
    """One row: ``warmup`` + ``steps`` training steps of ``method`` with ``batch`` images per domain; returns the
    median ms/step, images/s and (CUDA) peak memory, or ``status="out of memory"``."""
    n_src, n_target = problem
    n_clusters = int(cfg.lf2.n_clusters[0])
    row: dict = {"method": method, "batch": batch, "amp": amp, "bn_samples": bn_samples}
    t0 = time.perf_counter()
    cuda = device.type == "cuda"
    parts = None
    try:
        rcfg = cfg.override(**{"data.batch_size": batch, "amp": amp, "model.bn_samples": bn_samples})
        parts = build_parts(method, rcfg, device, n_src, n_target, n_clusters, amp=amp)
        mixed = parts.method.source_batches
        images = 2 * batch if mixed else batch
        row["images"] = images
        parts.bn_samples = setup_bn_groups(bn_samples, images, parts.model, parts.extra,
                                           n_source=batch if mixed else 0)
        k = rcfg.data.num_instances
        xs, ys, _ = make_batch(batch, k, rcfg, device, n_src, n_target, 1)
        xt, _, _ = make_batch(batch, k, rcfg, device, n_clusters, n_target, 2)
        idx = torch.arange(batch, device=device)
        if cuda:
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
        times = [time_call(lambda s=s: step_once(parts, xs, ys, xt, idx, s), device) for s in range(warmup + steps)]
        med = statistics.median(times[warmup:])
        row.update(status="measured", ms_median=1000 * med, ms=[round(1000 * t, 2) for t in times[warmup:]],
                   images_per_s=images / med)
        if cuda:
            row.update(peak_mib=torch.cuda.max_memory_allocated(device) / MIB,
                       reserved_mib=torch.cuda.max_memory_reserved(device) / MIB)
        else:
            row["peak_mib"] = None              # max_memory_allocated exists on CUDA only
    except OOM as err:
        row.update(status="out of memory", note="does not fit: " + str(err).splitlines()[0][:160])
    finally:
        parts = None
    row["wall_s"] = time.perf_counter() - t0
    return row


def free(device: torch.device) -> None:
    """Give the last row's memory back before the next one is built."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def row_estimate(done: list[dict], method: str, batch: int, prior: float) -> float:
    """Seconds a row will take, from the rows measured so far: the slowest row of the same method and batch,
    else the slowest row scaled by the batch ratio, else ``prior``; with a 25 % margin."""
    walls = [r["wall_s"] for r in done if r.get("status") == "measured"
             and r["method"] == method and r["batch"] == batch]
    if walls:
        return 1.25 * max(walls)
    walls = [r["wall_s"] * max(1.0, batch / r["batch"]) for r in done if r.get("status") == "measured"]
    return 1.25 * max(walls) if walls else prior


def run_rows(grid: list[tuple], cfgs: dict, device: torch.device, problem: tuple[int, int], sizes, budget,
             reserve: float, prior: float, log) -> list[dict]:
    """Measure every ``(method, batch, amp, bn_samples)`` of ``grid`` in order, each method with its config
    ``cfgs[method]``, while the budget allows (each row's estimate must fit before ``reserve``, the later
    sections' share); the others are "skipped" rows."""
    rows: list[dict] = []
    for method, batch, amp, bn in grid:
        cfg = cfgs[method]
        base = {"method": method, "preset": cfg.preset, "num_instances": cfg.data.num_instances, "batch": batch,
                "amp": amp, "bn_samples": bn}
        why = amp_skip_reason(amp, device)
        if why:
            rows.append({**base, "status": why})
            continue
        est = row_estimate(rows, method, batch, prior)
        if not budget.fits(est, reserve):
            rows.append({**base, "status": budget.skip_reason(est, reserve)})
            continue
        try:
            row = {**base, **measure_row(cfg, method, batch, amp, bn, device, problem, sizes.warmup, sizes.steps)}
        except Exception as err:            # one line in the table, then the next row
            row = {**base, "status": f"failed: {type(err).__name__}: {str(err).splitlines()[0][:160]}"}
        free(device)
        rows.append(row)
        log(format_row(row))
    return rows


def format_row(r: dict) -> str:
    """A progress line for one row."""
    head = f"  {r['method']:6s} {r['batch']:3d}/domain amp={r['amp']:4s} bn_samples={r['bn_samples']:<3d}"
    if r.get("status") != "measured":
        return f"{head} {r.get('status')}"
    mem = f", peak {r['peak_mib']:.0f} MiB" if r.get("peak_mib") is not None else ""
    return f"{head} {r['ms_median']:8.1f} ms/step{mem} ({r['wall_s']:.1f} s)"


def paper_steps(ctx, reserve: float) -> dict:
    """Section 2: sbase, dcdfa, lf2 at the ``paper`` preset (ResNet-50 at 256x128, random weights), two batch
    sizes, amp off / bf16 / fp16, BatchNorm groups of the preset's size against whole-batch BatchNorm."""
    s = ctx.sizes
    shapes = {m: preset_shapes(paper_preset_for(m), s.quick) for m in s.methods}
    cfgs = {m: cfg for m, (cfg, _) in shapes.items()}
    by_preset: dict = {}
    for m, c in cfgs.items():
        by_preset.setdefault(c.preset, []).append(m)
    facts = dict(shapes[s.methods[0]][1],
                 preset=", ".join(f"{p} ({', '.join(ms)})" for p, ms in by_preset.items()),
                 num_instances=", ".join(f"{cfgs[ms[0]].data.num_instances} ({p})" for p, ms in by_preset.items()))
    groups = s.bn_groups or facts["preset_bn_samples"]
    grid = [(m, b, a, bn) for bn in (groups, 0) for a in ("off", "bf16", "fp16")
            for b in sorted(s.batches, reverse=True) for m in s.methods]
    rows = run_rows(grid, cfgs, ctx.device, MARKET, s, ctx.budget, reserve, s.prior["paper_row"], ctx.log)
    facts.update(batches=list(s.batches), bn_groups=groups, warmup=s.warmup, steps=s.steps,
                 problem="Market-1501 sizes: 751 source identities, 12,936 target images in the memory bank",
                 inputs="synthetic tensors (random images, PK labels)")
    return {"config": facts, "rows": rows}


def lab_steps(ctx, reserve: float) -> dict:
    """Section 3: the same steps for the ``cpu`` preset's backbone (whatever it is today: read at run time),
    at its input size, batch and BatchNorm setting, amp off / bf16 / fp16."""
    s = ctx.sizes
    cfg, facts = preset_shapes("cpu", s.quick)
    batch = min(facts["preset_batch"], s.lab_batch) if s.lab_batch else facts["preset_batch"]
    bn = facts["preset_bn_samples"]
    grid = [(m, batch, a, bn) for a in ("off", "bf16", "fp16") for m in s.methods]
    rows = run_rows(grid, {m: cfg for m in s.methods}, ctx.device, SYNTHETIC, s, ctx.budget, reserve,
                    s.prior["lab_row"], ctx.log)
    facts.update(batches=[batch], bn_groups=bn, warmup=s.warmup, steps=s.steps,
                 problem=f"the default synthetic pair: {SYNTHETIC[0]} source identities, {SYNTHETIC[1]} target "
                         "images in the memory bank", inputs="synthetic tensors (random images, PK labels)")
    return {"config": facts, "rows": rows}
