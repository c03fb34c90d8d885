"""The ablation ladder: every row (oracle, direct transfer, the DCDFA and LF² rows) for several seeds,
sharing each seed's pretrained model, resumable, with one ``results.md`` / ``results.csv`` of mean ± std.

``python -m reid_uda_lib ladder --source DIR --target DIR --preset cpu --seeds 0,1,2 --jobs 3 --out DIR``
(``make ladder``); :func:`run_ladder` in Python. The demo is the headline subset for one seed.
"""
from .report import collect, csv_text, machine_info, markdown_table, write_report
from .rows import ALL_ROWS, DEFAULT_ROWS, HEADLINE_ROWS, label, parse_rows
from .run import LadderError, parse_seeds, preflight_seed, run_ladder, run_seed, seed_dir

__all__ = ["run_ladder", "run_seed", "preflight_seed", "seed_dir", "parse_seeds", "parse_rows", "LadderError",
           "ALL_ROWS", "DEFAULT_ROWS", "HEADLINE_ROWS", "label", "collect", "markdown_table", "csv_text",
           "machine_info", "write_report"]
