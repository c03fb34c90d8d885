"""Source pretraining: CE with label smoothing + batch-hard triplet on labelled source PK batches.

DCDFA sec. 4.1 / LF² sec. IV-B. Evaluating the pretrained model on the target test split gives the
"direct transfer" number every UDA method starts from.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

from tqdm.auto import tqdm

from ..config import Config
from ..data import ReidDataset
from ..models import build_model
from ..utils import resolve_device, seed_everything
from ..runtime import distributed as ddp
from ..runtime.amp import Precision
from ..runtime.checkpoint import rng_state
from ..core.training import RunningMean, build_optimizer, build_scheduler, check_finite, supervised_terms
from ..core.features import evaluate_model
from ..core.loaders import num_batches_for, to_device, train_loader
from ..runtime.lock import release_on_error
from ..methods.registry import stage_ignores
from .checks import check_start
from .warm_start import load_init_weights
from ..runtime.rundir import RunDir


@release_on_error
def pretrain(cfg: Config, source: ReidDataset, target: Optional[ReidDataset], out_dir: str | Path,
             resume: bool | str = False, progress: bool = True,
             on_epoch_end: Optional[Callable[[int, dict], None]] = None,
             override_identity: bool = False, init: Optional[str | Path] = None) -> dict:
    """Train on ``source`` labels; evaluate on ``target``'s query/gallery (direct transfer).

    ``init``: start from this pretraining checkpoint instead of the model's own initial weights (supervised
    fine-tuning, :mod:`reid_uda_lib.train.warm_start`): backbone and BNNeck are loaded, the classifier is
    built from ``source``'s identity centroids. It is part of the run identity; ignored when resuming
    ``out_dir``'s own checkpoint.

    Returns the summary dict (also written to ``<out_dir>/summary.json``): final ``target`` metrics and,
    at the end, ``source`` in-domain metrics, so the domain gap is visible in one place.
    ``on_epoch_end(epoch, record)`` is called after each epoch's checkpoint is written.
    Reusing ``out_dir`` checks the run identity first (settings, data); ``override_identity=True`` accepts
    a checkpoint made with other ones.

    Under ``torchrun`` the processes share each global batch (:mod:`reid_uda_lib.runtime.distributed`); only
    rank 0 writes. ``model.bn_samples`` sets the BatchNorm groups (:mod:`reid_uda_lib.models.bn_groups`).
    """
    check_start(cfg, "pretrain", target, source, init=init)   # roles: the source (evaluated in-domain), the target
    ddp.init_distributed(cfg.device)
    progress = progress and ddp.is_main()
    seed_everything(cfg.seed, cfg.deterministic)
    run = RunDir(out_dir, "pretrain", cfg, resume, datasets={"source": source, "target": target},
                 override_identity=override_identity, init=init, ignore=stage_ignores("pretrain"))
    device = ddp.local_device(resolve_device(cfg.device))
    # a resumed or reused stage restores every tensor from its checkpoint: no initial weights to read
    model = build_model(cfg.model, num_classes=source.num_train_pids,
                        read_weights=run.resume_state is None).to(device)
    ddp.setup_bn_groups(cfg.model.bn_samples, cfg.data.batch_size, model)
    if init is not None and run.resume_state is None:
        load_init_weights(model, init, cfg, source.train, device, progress=progress)
    optimizer = build_optimizer(model.parameters(), cfg.optim)
    scheduler = build_scheduler(optimizer, cfg.optim)
    n_batches = num_batches_for(len(source.train), cfg.data, cfg.pretrain.iters_per_epoch)
    loader = train_loader(source.train, cfg.data, seed=cfg.seed,
                          random_erasing_p=cfg.data.pretrain_random_erasing_p, num_batches=n_batches)
    precision = Precision(cfg.amp, device)          # config ``amp``: autocast + fp16 gradient scaler (amp.py)
    step = run.restore(model=model, optimizer=optimizer, scheduler=scheduler, precision=precision.checkpointed())
    ddp.broadcast_state(model)                  # under torchrun: every process starts from rank 0's weights

    epochs = cfg.pretrain.epochs

    def evaluate(epoch: int) -> dict:
        out, last = {}, epoch == epochs - 1
        if target is not None and ((epoch + 1) % cfg.pretrain.eval_every == 0 or last):
            out["target"] = evaluate_model(model, target.query, target.gallery, cfg.data, device,
                                           progress=progress, cross_camera_only=cfg.evaluation.cross_camera_only)
        if last and source.query and source is not target:  # the oracle run (source = target) has it already
            out["source"] = evaluate_model(model, source.query, source.gallery, cfg.data, device,
                                           progress=progress, cross_camera_only=cfg.evaluation.cross_camera_only)
        return out

    record: dict = run.complete_pending(evaluate) or {}
    for epoch in range(run.start_epoch, epochs):
        model.train()
        loader.sampler.set_epoch(epoch)
        meter = RunningMean()
        bar = tqdm(loader, desc=f"pretrain {epoch + 1}/{epochs}", leave=True, disable=not progress)
        for it, batch in enumerate(bar):
            img, pid, _, _ = to_device(batch, device)
            # under torchrun: the outputs and labels of the global batch (every process the same loss)
            with precision.autocast():
                terms = supervised_terms(ddp.gather_outputs(model(img)), ddp.gather_tensor(pid), "source",
                                         cfg.loss, prefix="")
            check_finite(terms, "pretrain", epoch, it, step, str(run.checkpoint))
            loss = sum(terms.values())
            optimizer.zero_grad(set_to_none=True)
            precision.backward(loss)
            ddp.average_gradients(model.parameters())      # under torchrun: the data-parallel all-reduce
            precision.step(optimizer)
            ddp.average_bn_statistics(model)
            step += 1
            meter.add(terms)
            bar.set_postfix({k: f"{v:.3f}" for k, v in meter.means().items()})
        lr = optimizer.param_groups[0]["lr"]
        scheduler.step()

        record = {"stage": "pretrain", "epoch": epoch, "step": step, "lr": lr, **meter.means()}
        state = {"epoch": epoch, "step": step, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                 "scheduler": scheduler.state_dict(), "rng": rng_state(), "num_classes": source.num_train_pids}
        record = run.end_epoch(precision.save_into(state), record, evaluate)   # + the fp16 scaler's state
        if on_epoch_end is not None:
            on_epoch_end(epoch, record)

    if not record:  # resumed a finished run: report its last record
        record = run.last_record()
    return run.finish({"stage": "pretrain", "checkpoint": str(run.checkpoint), "epochs": epochs,
                       "target": record.get("target"), "source": record.get("source")})

