"""Section 5 of ``gpu_check.py``: does a run resumed from a checkpoint continue bit for bit on this device?

Run A: two training steps, a checkpoint written and read back through ``reid_uda_lib.runtime.checkpoint`` (the
state the UDA loop saves: model, method modules, optimiser, Mean-Net, the modules' Mean-Net, memory bank, RNG
states, the fp16 scaler), then a third step. Run B: the state built afresh, the checkpoint loaded into it,
the third step. The third step's images are drawn from the global RNG on the device after the checkpoint, so
the RNG state is part of what is checked. Compared: every tensor of the model, the Mean-Nets, the method's
modules and the memory bank after the third step (bit for bit, else the largest difference). On CUDA a
mismatch is retried with ``torch.backends.cudnn.deterministic = True`` (the library's default,
``cfg.deterministic``), to say whether that closes it.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from bench_step import build_parts, make_batch, step_once
from gpu_check_steps import MARKET, paper_preset_for, preset_shapes

from reid_uda_lib.runtime.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from reid_uda_lib.runtime.distributed import setup_bn_groups

COMPONENTS = ("model", "extra", "optimizer", "mean_net", "mean_extra", "memory", "precision")


def _objects(p) -> dict:
    """The checkpointed objects of a step's state, by the names the UDA loop saves them under."""
    return {"model": p.model, "extra": p.extra, "optimizer": p.optimizer, "mean_net": p.mean_net,
            "mean_extra": p.mean_extra, "memory": p.memory, "precision": p.precision.checkpointed()}


def _tensors(p) -> dict[str, torch.Tensor]:
    """Every tensor the third step changes: model, method modules, Mean-Nets, memory bank."""
    out = {f"model.{k}": v for k, v in p.model.state_dict().items()}
    out.update({f"extra.{k}": v for k, v in p.extra.state_dict().items()})
    for name, obj in (("mean_net", p.mean_net), ("mean_extra", p.mean_extra)):
        if obj is not None:
            out.update({f"{name}.{k}": v for k, v in obj.module.state_dict().items()})
    if p.memory is not None:
        out.update({f"memory.{k}": v for k, v in p.memory.state_dict().items()})
    return {k: v.detach().cpu().clone() for k, v in out.items()}


def resume_once(cfg, method: str, batch: int, amp: str, device: torch.device, folder: Path,
                restore: tuple[str, ...] = COMPONENTS + ("rng",)) -> dict:
    """Runs A and B for one method; ``restore``: what B loads from the checkpoint (all of it normally; a test
    leaves one out to see the comparison fail). Returns ``exact``, ``max_abs_diff``, ``tensors``."""
    n_src, n_target = MARKET
    n_clusters = int(cfg.lf2.n_clusters[0])
    cfg = cfg.override(**{"data.batch_size": batch, "amp": amp})
    k = cfg.data.num_instances

    def state():
        p = build_parts(method, cfg, device, n_src, n_target, n_clusters, amp=amp)
        mixed = p.method.source_batches
        p.bn_samples = setup_bn_groups(cfg.model.bn_samples, 2 * batch if mixed else batch, p.model, p.extra,
                                       n_source=batch if mixed else 0)
        return p

    xs, ys, _ = make_batch(batch, k, cfg, device, n_src, n_target, 1)
    xt, _, _ = make_batch(batch, k, cfg, device, n_clusters, n_target, 2)
    idx = torch.arange(batch, device=device)

    def third_step(p) -> None:
        x3 = torch.randn(xt.shape, device=device)          # from the global RNG: its state must be restored
        step_once(p, xs, ys, x3, idx, 2)

    a = state()
    torch.manual_seed(1)
    for s in range(2):
        step_once(a, xs, ys, xt, idx, s)
    path = folder / f"resume-{method}-{amp}.pt"
    saved = {name: obj.state_dict() for name, obj in _objects(a).items() if obj is not None}
    save_checkpoint(path, {"kind": "gpu_check", "step": 2, "rng": rng_state(), **saved})
    third_step(a)
    ta = _tensors(a)
    del a

    b = state()
    ckpt = load_checkpoint(path, kind="gpu_check")          # to the CPU, as the loop reads it
    for name, obj in _objects(b).items():
        if obj is not None and name in restore:
            obj.load_state_dict(ckpt[name])
    if "rng" in restore:
        set_rng_state(ckpt["rng"])
    third_step(b)
    tb = _tensors(b)
    path.unlink(missing_ok=True)
    diffs = [float((ta[n].double() - tb[n].double()).abs().max()) if ta[n].numel() else 0.0 for n in ta
             if ta[n].dtype.is_floating_point]
    exact = all(torch.equal(ta[n], tb[n]) for n in ta)
    return {"exact": exact, "max_abs_diff": max(diffs, default=0.0), "tensors": len(ta)}


def resume(ctx, reserve: float) -> dict:
    """Section 5: every method at the paper preset's shapes (``batch`` images per domain), amp off (and fp16,
    the gradient-scaler case, on CUDA); on CUDA with cuDNN's default kernels first, then with
    ``cudnn.deterministic`` if they differ."""
    s, dev = ctx.sizes, ctx.device
    shapes = {m: preset_shapes(paper_preset_for(m), s.quick) for m in s.methods}
    facts = shapes[s.methods[0]][1]
    bn = s.bn_groups or facts["preset_bn_samples"]
    cfgs = {m: cfg.override(**{"model.bn_samples": bn}) for m, (cfg, _) in shapes.items()}
    amps = ("off", "fp16") if dev.type == "cuda" else ("off",)
    rows = []
    flags = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    with tempfile.TemporaryDirectory(prefix="gpu_check_resume_") as tmp:
        for amp in amps:
            for method in s.methods:
                for det in ((False, True) if dev.type == "cuda" else (None,)):
                    row = {"method": method, "preset": cfgs[method].preset, "amp": amp, "batch": s.resume_batch,
                           "cudnn_deterministic": det}
                    est = s.prior["resume_row"]
                    if not ctx.budget.fits(est, reserve):
                        rows.append({**row, "status": ctx.budget.skip_reason(est, reserve)})
                        break
                    try:
                        if det is not None:
                            torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = det, False
                        row.update(resume_once(cfgs[method], method, s.resume_batch, amp, dev, Path(tmp)),
                                   status="measured")
                    except Exception as err:
                        row["status"] = f"failed: {type(err).__name__}: {str(err).splitlines()[0][:160]}"
                    finally:
                        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = flags
                    rows.append(row)
                    ctx.log(f"  {method} amp={amp} cudnn.deterministic={det}: "
                            + (("bit-identical" if row["exact"] else f"differs by {row['max_abs_diff']:.2e}")
                               if row["status"] == "measured" else row["status"]))
                    if row.get("exact", False) or row["status"] != "measured":
                        break                   # deterministic kernels are tried only after a mismatch
    facts.update(batch=s.resume_batch, bn_samples=bn, amps=list(amps))
    return {"config": facts, "rows": rows}
