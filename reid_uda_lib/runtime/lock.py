"""One writer per run folder: an exclusive lock file ``<run>/.lock`` (pid, host, start time).

Taken before the first write of a training stage, released when the stage finishes or raises
(:func:`release_on_error`) and at process exit. The folders the stage created for it (``created``) are removed
on release when nothing was written into them: a refused or interrupted stage leaves no empty run folder.
A lock left by a dead process on this host (a SIGKILL, a crashed kernel) is taken over with a message; a
lock held by the current process (a notebook cell re-run after an error) is simply re-taken. A lock of a
live process, or of another host, is refused with :class:`RunLockedError`.
"""
from __future__ import annotations

import atexit
import functools
import json
import os
import socket
import time
from pathlib import Path
from typing import Callable, Iterable

LOCK_NAME = ".lock"
_HELD: dict[Path, "RunLock"] = {}


class RunLockedError(RuntimeError):
    """Another process is writing into the same run folder."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class RunLock:
    """``RunLock(folder).acquire()`` ... ``release()``; the folder must exist. ``created``: the folders made for
    this stage (deepest first), removed on release while they are empty."""

    def __init__(self, folder: str | Path, created: Iterable[str | Path] = ()):
        self.path = Path(folder) / LOCK_NAME
        self.held = False
        self.created = [Path(d) for d in created]

    def _read(self) -> dict:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}

    def check(self) -> None:
        """Raise :class:`RunLockedError` if another live process holds the lock (writes nothing)."""
        owner = self._read() if self.path.exists() else {}
        pid, host = owner.get("pid"), owner.get("host")
        if not isinstance(pid, int) or pid == os.getpid():
            return
        if host != socket.gethostname() or _alive(pid):
            raise RunLockedError(_locked_message(self.path, owner))

    def acquire(self) -> "RunLock":
        me = {"pid": os.getpid(), "host": socket.gethostname(),
              "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        owner: dict = {}
        for _ in range(40):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
            except FileExistsError:
                owner = self._read()
                pid, host = owner.get("pid"), owner.get("host")
                same_host = host == me["host"]
                if same_host and pid == me["pid"]:
                    self.path.unlink(missing_ok=True)       # this process: a re-run after an error
                    continue
                if same_host and isinstance(pid, int) and not _alive(pid):
                    print(f"taking over the stale lock {self.path} of process {pid} (started "
                          f"{owner.get('started')}), which is no longer running", flush=True)
                    self.path.unlink(missing_ok=True)
                    continue
                if not owner:
                    if time.time() - _mtime(self.path) > 60:     # unreadable and old: a torn write
                        self.path.unlink(missing_ok=True)
                    else:                                        # being written by its owner right now
                        time.sleep(0.05)
                    continue
                raise RunLockedError(_locked_message(self.path, owner)) from None
            with os.fdopen(fd, "w") as fh:
                json.dump(me, fh)
            self.held = True
            _HELD[self.path] = self
            return self
        raise RunLockedError(_locked_message(self.path, owner) if owner else
                             f"could not take the lock {self.path} (unreadable; delete it if no run is active)")

    def release(self) -> None:
        if self.held:
            if self._read().get("pid") == os.getpid():
                self.path.unlink(missing_ok=True)
                for folder in self.created:         # deepest first; stop at the first that holds something
                    try:
                        folder.rmdir()
                    except OSError:
                        break
            self.held = False
            _HELD.pop(self.path, None)


def _locked_message(path: Path, owner: dict) -> str:
    return (f"run folder {path.parent} is in use by process {owner.get('pid')} on host {owner.get('host')} "
            f"(started {owner.get('started')}); two runs must not write into one folder. Wait for it, use "
            f"another output folder, or delete {path} if that process is gone")


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return time.time()


def release_on_error(fn: Callable) -> Callable:
    """Decorator for a training stage: locks it took are released when it raises (the process lives on, e.g.
    a notebook kernel, so another kernel may use the folder), and at the end as usual."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        before = set(_HELD)
        try:
            return fn(*args, **kwargs)
        except BaseException:
            for path in set(_HELD) - before:
                _HELD[path].release()
            raise
    return wrapper


@atexit.register
def _release_all() -> None:
    for lock in list(_HELD.values()):
        lock.release()
