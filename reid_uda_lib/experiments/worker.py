"""One item of a parallel ladder (a seed's pretraining, or one row), in its own process: ``python -m reid_uda_lib.experiments.worker JOB.json``.

The job file (written by :mod:`reid_uda_lib.experiments.parallel` with ``jobs > 1``) holds the seed's full config,
the two dataset folders, the seed folder, the rows and the number of torch threads (a row's process reuses
its seed's finished pretraining read-only). The parent has checked every stage folder and decoded every image already.
"""
from __future__ import annotations

import json
import sys


def main(argv: list[str] | None = None) -> int:
    import torch

    from ..config import Config
    from ..data import load_dataset
    from .ladder import run_seed

    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m reid_uda_lib.experiments.worker JOB.json", file=sys.stderr)
        return 2
    job = json.loads(open(argv[0]).read())
    torch.set_num_threads(int(job.get("threads", 1)))
    cfg = Config.from_dict(job["config"])
    source, target = load_dataset(job["source"]), load_dataset(job["target"])
    run_seed(cfg, source, target, job["folder"], job["rows"], progress=False,
             override_identity=job["override_identity"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
