"""The one UDA fine-tuning loop (clustering-based; SBase = DCDFA sec. 4.1, Fig. 3).

Every epoch:

1. extract target-train features with the Mean-Net (the student when the method has no Mean-Net);
2. cluster them (k-reciprocal Jaccard + DBSCAN, or k-means) into pseudo labels; outliers (-1) are dropped;
   the label quality against the hidden true ids is logged (NMI, ARI, purity, #clusters, outliers).
   Steps 1-2 are the method's ``pseudo_labels`` hook, which may return several label sets (LF²: one per
   feature level); level 0 is trained on, every level's quality and its agreement with level 0 are logged;
3. re-create the target classifier from the cluster centroids and refresh the memory bank's target slots;
4. train on mixed batches of N source + N pseudo-labelled target images (target-only batches for methods
   with ``source_batches=False``): CE-LS + triplet on both domains, plus the memory-bank contrastive loss
   (methods with ``shared_terms=False`` skip these) and any method-specific terms, which see the labels of
   every level; update the Mean-Net (EMA) and the memory bank after each step;
5. write an atomic checkpoint, then evaluate the Mean-Net on the target query/gallery (on the method's
   ``test_net`` feature).

Under ``torchrun`` (:mod:`reid_uda_lib.runtime.distributed`): features are extracted in shards, rank 0
clusters and broadcasts the labels, every process builds the same target head, each process trains on its
share of the global batch (the losses on the gathered global batch, gradients averaged), and only rank 0
writes. ``model.bn_samples`` sets the BatchNorm groups (:mod:`reid_uda_lib.models.bn_groups`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..cluster import check_clusters, label_quality
from ..cluster.multilevel import level_report
from ..config import Config
from ..data import ReidDataset
from ..losses import MemoryBank
from ..models import MeanTeacher, build_model
from ..utils import resolve_device, seed_everything
from ..runtime import distributed as ddp
from ..runtime.checkpoint import CheckpointError, check_model_config, load_checkpoint, rng_state
from ..core.training import RunningMean, build_optimizer, check_finite, uda_optim
from ..core.features import evaluate_model, extract_features
from ..runtime.amp import Precision
from ..runtime.provenance import INIT_PENDING
from ..core.loaders import num_batches_for, to_device, train_loader
from ..core.bn_stats import TargetBNStats, bn_subset
from ..core.pass_cache import PassCache
from ..runtime.lock import release_on_error
from ..methods.activity import stuck_terms, term_activity
from ..methods.base import ClusterContext, EpochContext, EvalContext
from ..methods.registry import get_method
from ..runtime.rundir import RunDir
from .checks import check_start
from .uda_step import TARGET_HEAD, UDAParts, train_step


@release_on_error
def adapt(cfg: Config, source: ReidDataset, target: ReidDataset, init_checkpoint: str | Path | None,
          out_dir: str | Path, resume: bool | str = False, progress: bool = True,
          on_epoch_end: Optional[Callable[[int, dict], None]] = None, override_identity: bool = False,
          pass_cache: str | Path | None = None) -> dict:
    """Adapt a source-pretrained model to ``target`` without its labels, with method ``cfg.uda.method``.

    ``init_checkpoint`` is a pretraining (or earlier UDA) checkpoint; it is ignored when resuming a run
    from ``<out_dir>/checkpoint.pt``. Returns the summary (final target metrics, last label quality).
    ``pass_cache``: a folder shared by the rows of a seed (the ladder gives ``<seed>/pass_cache``). A fresh run
    reads from it the passes its first epoch makes on the initial network (source prototypes, target
    BatchNorm statistics, the first clustering's features) when another row made them with the same weights,
    images, settings and kernels, and writes those it makes (:mod:`reid_uda_lib.core.pass_cache`); the
    results are the same, bit for bit.
    """
    check_start(cfg, "uda", target, source, init=init_checkpoint)
    ddp.init_distributed(cfg.device)
    progress = progress and ddp.is_main()
    seed_everything(cfg.seed, cfg.deterministic)
    method = get_method(cfg.uda.method)
    chances = method.chance_values(cfg)     # the method's own terms, reported against chance every epoch
    # the init checkpoint is part of the run's identity: a row trained from another (retrained) pretraining
    # is refused; resuming without naming it (or after it was deleted) keeps the recorded one
    init_ident = init_checkpoint if init_checkpoint is not None and Path(init_checkpoint).is_file() \
        else INIT_PENDING
    run = RunDir(out_dir, "uda", cfg, resume, datasets={"source": source, "target": target},
                 override_identity=override_identity, init=init_ident)
    device = ddp.local_device(resolve_device(cfg.device))
    n_src = source.num_train_pids

    # every tensor comes from the pretrained checkpoint or the resumed state below: no initial weights to read
    model = build_model(cfg.model, num_classes=n_src, read_weights=False).to(device)
    if run.resume_state is None:
        if init_checkpoint is None:
            raise ValueError("adapt() needs init_checkpoint: a source-pretrained checkpoint "
                             "(run `python -m reid_uda_lib pretrain ...` first)")
        init = load_checkpoint(init_checkpoint, kind=("pretrain", "uda"))
        check_model_config(init, cfg.to_dict()["model"], init_checkpoint)
        _load_weights(model, init["model"], init_checkpoint, n_src)
    extra = method.extra_modules(model, cfg).to(device)
    bs = cfg.data.batch_size
    bn_samples = ddp.setup_bn_groups(cfg.model.bn_samples, 2 * bs if method.source_batches else bs, model, extra,
                                     n_source=bs if method.source_batches else 0)
    mean_net = MeanTeacher(model, momentum=cfg.uda.ema_momentum) if method.mean_net else None
    # the Mean-Net averages the method's modules too (DCDFA's "b only" evaluation needs the mean attention)
    has_extra = len(extra.state_dict()) > 0     # sbase & co. have none: their checkpoints keep the old layout
    mean_extra = MeanTeacher(extra, momentum=cfg.uda.ema_momentum) if method.mean_net and has_extra else None
    memory = None
    if method.memory_bank:
        memory = MemoryBank(n_src, len(target.train), model.feat_dim, momentum=cfg.loss.memory_momentum,
                            scale=cfg.loss.memory_scale, margin=cfg.loss.memory_margin).to(device)
    optimizer = build_optimizer(list(model.parameters()) + list(extra.parameters()), uda_optim(cfg))
    eval_net = mean_net.module if mean_net is not None else model
    eval_extra = mean_extra.module if mean_extra is not None else extra
    precision = Precision(cfg.amp, device)
    parts = UDAParts(model, method, extra, memory, optimizer, mean_net, mean_extra, cfg, bn_samples=bn_samples,
                     precision=precision)

    step = run.restore(model=model, extra=extra, optimizer=optimizer, mean_net=mean_net, mean_extra=mean_extra,
                       memory=memory, precision=precision.checkpointed())
    ddp.broadcast_state(model, extra)               # under torchrun: every process starts from rank 0's weights
    # the passes on the initial network, shared with the seed's other rows (a resumed run has trained weights)
    shared = PassCache(pass_cache) if pass_cache is not None and run.resume_state is None else None
    if run.resume_state is None and memory is not None:
        # Source prototypes: the mean feature of each source identity under the initial model.
        feats = (shared.features if shared else extract_features)(eval_net, source.train, cfg.data, device,
                                                                   desc="source prototypes", progress=progress)
        pids = torch.as_tensor([p for _, p, _ in source.train], device=device)
        memory.init_source(_class_means(feats, pids, n_src))

    true_ids = np.asarray([p for _, p, _ in target.train])
    epochs = cfg.uda.epochs
    target_bn = TargetBNStats(eval_net, bn_subset(target.train, cfg.uda.target_bn_images), cfg.data, device,
                              progress=progress, first_pass=shared.bn_stats if shared else None) \
        if cfg.uda.target_bn else None

    def evaluate(epoch: int) -> dict:
        """After the epoch's checkpoint: the method's probes, the target test metrics of this epoch (and, at
        the last one, the method's extra evaluations). Nothing here draws from the global RNG."""
        probe = method.epoch_diagnostics(EpochContext(eval_net, eval_extra, source, target, cfg, device, epoch,
                                                      progress))
        out = {"probe": probe} if probe else {}
        ectx = EvalContext(eval_net, eval_extra, cfg)
        nets = {"target": method.test_net(ectx)}
        if epoch == epochs - 1:
            nets.update({f"target_{name}": (net, "feat") for name, net in method.extra_evaluations(ectx).items()})
        elif (epoch + 1) % cfg.uda.eval_every != 0:
            return out
        if target_bn is not None:
            target_bn.ensure()
        for name, (net, key) in nets.items():
            out[name] = evaluate_model(net, target.query, target.gallery, cfg.data, device, key=key,
                                       progress=progress, cross_camera_only=cfg.evaluation.cross_camera_only)
        return out

    record: dict = run.complete_pending(evaluate) or {}
    for epoch in range(run.start_epoch, epochs):
        # 1-2. pseudo labels from the Mean-Net's features (one label set per level; level 0 is trained on)
        if target_bn is not None:                       # AdaBN: target statistics for clustering (bn_stats.py);
            target_bn.ensure()                          # skipped when the last evaluation just refreshed them
        first = shared is not None and epoch == 0           # the initial network: its pass may be shared
        sets = method.pseudo_labels(ClusterContext(eval_net, eval_extra, model, extra, target.train, cfg, device,
                                                   epoch, progress, extract=shared.features if first else None))
        for level in sets.labels:
            check_clusters(level, min_clusters=2)
        labels, feats = sets.labels[0], sets.features
        quality = {**label_quality(labels, true_ids), **sets.info}
        parts.labels = torch.as_tensor(np.stack(sets.labels), device=device)
        n_clusters = int(labels.max()) + 1
        labels_t = torch.as_tensor(labels, device=device)

        # 3. per-epoch target head from the centroids; memory bank target slots from the same features
        keep = labels_t >= 0
        centroids = F.normalize(_class_means(feats[keep], labels_t[keep], n_clusters), dim=1)
        model.set_classifier(TARGET_HEAD, n_clusters, weight=centroids)
        optimizer.add_param_group({"params": list(model.classifiers[TARGET_HEAD].parameters())})
        if memory is not None:
            memory.init_target(feats, labels_t)

        # 4. mixed source + target batches
        target_items = [(path, int(y), cam) for (path, _, cam), y in zip(target.train, labels)]
        n_batches = num_batches_for(int(keep.sum()), cfg.data, cfg.uda.iters_per_epoch)
        t_loader = train_loader(target_items, cfg.data, cfg.seed + 1, cfg.data.random_erasing_p, n_batches)
        t_loader.sampler.set_epoch(epoch)
        if method.source_batches:
            s_loader = train_loader(source.train, cfg.data, cfg.seed, cfg.data.random_erasing_p, n_batches)
            s_loader.sampler.set_epoch(epoch)
            batches = zip(s_loader, t_loader)
        else:                                           # target-only batches (LF²)
            batches = ((None, b_t) for b_t in t_loader)
        model.train()
        extra.train()
        if target_bn is not None:
            target_bn.invalidate()                      # the Mean-Net copies the student's buffers at each step
        meter = RunningMean()
        bar = tqdm(batches, total=n_batches, desc=f"{method.name} {epoch + 1}/{epochs}",
                   leave=True, disable=not progress)
        for it, (b_s, b_t) in enumerate(bar):
            x_s, y_s, _, _ = to_device(b_s, device) if b_s is not None else (None, None, None, None)
            x_t, y_t, _, idx_t = to_device(b_t, device)
            probe = model.backbone.last_block if it == n_batches - 1 and chances else None
            terms = train_step(parts, x_s, y_s, x_t, y_t, idx_t, step, epoch,
                               check=lambda t: check_finite(t, method.name, epoch, it, step, str(run.checkpoint)),
                               grad_probe=probe)
            step += 1
            meter.add(terms)
            bar.set_postfix({"loss": f"{sum(meter.means().values()):.3f}"})

        # 5. checkpoint, then evaluate (a failing evaluation never costs the epoch just trained)
        record = {"stage": "uda", "method": method.name, "epoch": epoch, "step": step,
                  "lr": optimizer.param_groups[0]["lr"], **meter.means(), "cluster": quality}
        if chances:                     # each paper term beside its chance value, its share of the gradient
            record["activity"] = term_activity(meter.means(), chances, parts.grad_norms)
            parts.grad_norms = None
        if len(sets.labels) > 1:        # per-level quality + agreement of each level with level 0
            record["levels"] = level_report(sets.labels, sets.names, true_ids)
        # The target head is rebuilt from fresh clusters at the next epoch: drop it (and its optimiser
        # state) so the checkpoint has the same structure as a freshly built model -> exact resume.
        _drop_target_head(model, mean_net, optimizer)
        state = {"epoch": epoch, "step": step, "model": model.state_dict(), "extra": extra.state_dict(),
                 "optimizer": optimizer.state_dict(), "rng": rng_state(), "method": method.name}
        if mean_net is not None:
            state["mean_net"] = mean_net.state_dict()
        if mean_extra is not None:
            state["mean_extra"] = mean_extra.state_dict()
        if memory is not None:
            state["memory"] = memory.state_dict()
        record = run.end_epoch(precision.save_into(state), record, evaluate)   # + the fp16 scaler's state
        if on_epoch_end is not None:
            on_epoch_end(epoch, record)

    if not record:
        record = run.last_record()
    elif run.log is not None:          # trained now: name a term that never left its chance value
        for name in stuck_terms(r for r in run.log.read() if r.get("stage") == "uda"):
            print(f"warning: {method.name}: the term '{name}' stayed at its chance value "
                  f"({chances.get(name, float('nan')):.3f}) in every epoch: it taught the network nothing in "
                  "this run (docs/methods.md, 'Is a term active?')", flush=True)
    if shared is not None and shared.hits:
        print(f"{method.name}: {shared.hits} of the first epoch's passes read from {pass_cache} (made by another "
              "row of this seed)", flush=True)
    extra_eval = {k[len("target_"):]: v for k, v in record.items() if k.startswith("target_")}
    return run.finish({"stage": "uda", "method": method.name, "checkpoint": str(run.checkpoint),
                       "epochs": epochs, "target": record.get("target"), "cluster": record.get("cluster"),
                       "extra_eval": extra_eval, "probe": record.get("probe"),
                       "activity": record.get("activity")})


def _class_means(feats: torch.Tensor, labels: torch.Tensor, n: int) -> torch.Tensor:
    """Mean feature of each class 0..n-1 (rows of classes without members stay zero)."""
    sums = torch.zeros(n, feats.shape[1], device=feats.device, dtype=feats.dtype)
    sums.index_add_(0, labels, feats)
    counts = torch.bincount(labels, minlength=n).clamp_min(1).unsqueeze(1).to(feats.dtype)
    return sums / counts


def _drop_target_head(model, mean_net, optimizer) -> None:
    if TARGET_HEAD not in model.classifiers:
        return
    head_params = {id(p) for p in model.classifiers[TARGET_HEAD].parameters()}
    for group in list(optimizer.param_groups):
        if any(id(p) in head_params for p in group["params"]):
            for p in group["params"]:
                optimizer.state.pop(p, None)
            optimizer.param_groups.remove(group)
    model.remove_classifier(TARGET_HEAD)
    if mean_net is not None and TARGET_HEAD in mean_net.module.classifiers:
        mean_net.module.remove_classifier(TARGET_HEAD)


def _load_weights(model, state: dict, path, n_src: int) -> None:
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise CheckpointError(
            f"the weights in {path} do not fit this model (source has {n_src} identities): {err}") from err
