"""What every stage runs on, whatever the method: the run folder and its log, checkpoints, provenance (which
settings, data and start checkpoint made a run), the lock, the machine's kernels, torchrun, mixed precision.

:mod:`.rundir` (RunDir: reuse, resume, summary), :mod:`.checkpoint` (atomic, exact resume), :mod:`.provenance`
(run identity), :mod:`.lock`, :mod:`.runlog` (metrics.jsonl), :mod:`.machine` (CPU instruction set and kernels
that computed a run), :mod:`.distributed` (torchrun), :mod:`.amp` (bf16 / fp16).
"""
