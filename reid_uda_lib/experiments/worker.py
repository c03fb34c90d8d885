"""One item of a parallel ladder (a seed's pretraining, or one row), in its own process: ``python -m reid_uda_lib.experiments.worker JOB.json``.

The job file (written by :mod:`reid_uda_lib.experiments.parallel` with ``jobs > 1``) holds the seed's full config,
the two dataset folders, the seed folder, the rows and the number of torch threads (a row's process reuses
its seed's finished pretraining read-only). The parent has checked every stage folder and decoded every image already.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1                    # <linux/prctl.h>


def _stop(signum, frame) -> None:
    """SIGTERM (the parent ended or stopped us): leave through the normal unwinding, so that the stage's lock is
    released and its folder keeps its last complete checkpoint."""
    raise SystemExit(128 + signum)


def die_with_parent(parent: int | None = None) -> str:
    """End this process (SIGTERM, handled by :func:`_stop`) when the process that started it ends, even by
    SIGKILL: ``prctl(PR_SET_PDEATHSIG)`` on Linux, elsewhere a daemon thread that polls the parent's pid.
    ``parent``: the pid expected as parent (default ``$REID_UDA_PARENT_PID``, set by the parent); a parent
    already gone ends this process at once. Returns the mechanism used ("prctl", "poll" or "none")."""
    if parent is None:
        from .parallel import PARENT_ENV
        parent = int(os.environ.get(PARENT_ENV, "0") or 0)
    if not parent:
        return "none"
    signal.signal(signal.SIGTERM, _stop)
    how = "poll"
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) == 0:
                how = "prctl"
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:          # the parent died before the death signal was armed
        raise SystemExit(128 + int(signal.SIGTERM))
    if how == "poll":
        def watch() -> None:
            while os.getppid() == parent:
                time.sleep(1.0)
            os.kill(os.getpid(), signal.SIGTERM)
        threading.Thread(target=watch, name="die-with-parent", daemon=True).start()
    return how


def main(argv: list[str] | None = None) -> int:
    die_with_parent()                   # first: a ladder killed during our start must not leave us running
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
    try:
        run_seed(cfg, source, target, job["folder"], job["rows"], progress=False,
                 override_identity=job["override_identity"])
    except KeyboardInterrupt:           # Ctrl-C reaches the whole process group: one line in the log
        print("interrupted: the stage keeps its last complete checkpoint", flush=True)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
