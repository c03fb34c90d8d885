"""Experiments over finished stages: the ablation ladder (every row for several seeds, sharing each seed's
pretrained model, resumable, one ``results.md`` / ``results.csv`` of mean ± std), the demo (its headline rows
for one seed) and every results table.

``python -m reid_uda_lib ladder --source DIR --target DIR --preset cpu --seeds 0,1,2 --jobs 3 --out DIR``
(``make ladder``); :func:`run_ladder` in Python; ``make demo`` / :func:`~reid_uda_lib.experiments.demo.run_demo`.

=====================  ==========================================================================
module                 what
=====================  ==========================================================================
:mod:`.rows`           the rows, their order, labels and costs (derived from the method registry)
:mod:`.ladder`         seeds × rows, reuse and resume, row timings
:mod:`.parallel`       ``--jobs``: pretrainings, then one process per row (:mod:`.worker`)
:mod:`.report`         ``results.md`` / ``results.csv`` with the machine, kernels and commit
:mod:`.tables`         every markdown table (one run, the ladder, seeds, probes)
:mod:`.seeds`          the rows of several seeds' run folders (``python -m reid_uda_lib table``)
:mod:`.demo`           ``make demo``
=====================  ==========================================================================
"""
from .folders import LadderError, parse_seeds, seed_dir
from .ladder import preflight_seed, run_ladder, run_seed
from .report import collect, csv_text, machine_info, write_report
from .rows import HEADLINE_ROWS, all_rows, default_rows, label, parse_rows
from .tables import markdown_table, results_table

__all__ = ["run_ladder", "run_seed", "preflight_seed", "seed_dir", "parse_seeds", "parse_rows", "LadderError",
           "all_rows", "default_rows", "HEADLINE_ROWS", "label", "collect", "markdown_table", "results_table",
           "csv_text", "machine_info", "write_report"]
