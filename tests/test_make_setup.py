"""``make setup``'s installer: uv by default (the caps pip is configured with passed on), pip where uv fails,
``INSTALLER=pip`` for pip alone. The recipes run for real against a fake venv whose ``python`` and ``uv``
only log their arguments, so what is tested is the Makefile's wiring, not a download."""
from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

LOGGER = """#!/bin/sh
echo "$(basename "$0") $*" >> "{log}"
{body}
"""


def _fake_venv(tmp_path: Path, uv_exit: int) -> tuple[Path, Path]:
    venv, log = tmp_path / "venv", tmp_path / "calls.log"
    (venv / "bin").mkdir(parents=True)
    # what `pip config list` prints on a machine whose pip is capped (this workplace's /etc/xdg/pip) and has
    # its own index
    config = ("global.constraint='/caps/torch.txt'\nglobal.index-url='https://mirror.example/simple'\n"
              "global.find-links='/opt/wheels'")
    scripts = {"python": f'[ "$*" = "-m pip config list" ] && printf "{config}\\n"\nexit 0',
               "uv": f"exit {uv_exit}"}
    for name, body in scripts.items():
        p = venv / "bin" / name
        p.write_text(LOGGER.format(log=log, body=body))
        p.chmod(p.stat().st_mode | stat.S_IEXEC)
    return venv, log


def _make(target: str, venv: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, **(env or {})}
    for k in ("MAKEFLAGS", "PIP_CONSTRAINT", "PIP_INDEX_URL"):
        env.pop(k, None)
    return subprocess.run(["make", "-s", target, f"VENV={venv}", f"PYTHON={venv}/bin/python", *args],
                          cwd=REPO, capture_output=True, text=True, env=env)


@pytest.mark.parametrize("uv_exit", [0, 1])
def test_uv_installs_with_pips_caps_and_pip_takes_over_when_it_fails(tmp_path, uv_exit):
    venv, log = _fake_venv(tmp_path, uv_exit)
    res = _make("setup-dev", venv)
    assert res.returncode == 0, res.stderr
    calls = log.read_text().splitlines()
    uv_calls = [c for c in calls if c.startswith("uv ")]
    assert len(uv_calls) == 2                                   # the package, then the dev extras
    for c, what in zip(uv_calls, ("-e .", "-e .[dev]")):
        assert c.startswith(f"uv pip install --quiet --python {venv}/bin/python")
        assert "--constraint /caps/torch.txt" in c               # pip's cap reaches uv
        assert "--default-index https://mirror.example/simple" in c   # and so does its index
        assert "find-links" not in c
        assert c.endswith(what)
    pip_installs = [c for c in calls if c.startswith("python -m pip install --quiet -e")]
    if uv_exit == 0:                                            # uv did it: pip installs nothing of the project
        assert pip_installs == []
        assert "installing with pip" not in res.stdout
        assert "python -m pip install --quiet --upgrade pip" not in calls     # nor upgrades itself for nothing
    else:                                                       # uv failed: pip installs both, and says so
        assert pip_installs == ["python -m pip install --quiet -e .", "python -m pip install --quiet -e .[dev]"]
        assert res.stdout.count("installing with pip") == 2
    assert (venv / ".installed").is_file() and (venv / ".installed-dev").is_file()


def test_installer_pip_never_calls_uv(tmp_path):
    venv, log = _fake_venv(tmp_path, 0)
    res = _make("setup", venv, "INSTALLER=pip")
    assert res.returncode == 0, res.stderr
    calls = log.read_text().splitlines()
    assert not any("uv" in c for c in calls)
    assert calls[-2:] == ["python -m pip install --quiet --upgrade pip", "python -m pip install --quiet -e ."]


def test_an_unknown_installer_is_refused_in_one_line(tmp_path):
    venv, log = _fake_venv(tmp_path, 0)
    res = _make("setup", venv, "INSTALLER=conda")
    assert res.returncode != 0
    assert "INSTALLER=conda: expected uv or pip" in res.stderr
    assert not log.exists() or "install" not in log.read_text()


def _dry_run(target: str, *args: str) -> subprocess.CompletedProcess:
    """``make -n``: the recipes as make would run them, nothing run (the venv is assumed made)."""
    env = {k: v for k, v in os.environ.items() if k != "MAKEFLAGS"}
    return subprocess.run(["make", "-n", target, "-o", "setup", "-o", "setup-dev", *args],
                          cwd=REPO, capture_output=True, text=True, env=env)


@pytest.mark.parametrize("source, src_dir, out", [("real", "data/real/cuhk03-pair/A", "runs/ladder-cpu-cuhk03"),
                                                  ("synthetic", "data/synthetic/A", "runs/ladder-cpu-syn2cuhk03")])
def test_ladder_real_wires_the_source_and_the_camera_pair_target(tmp_path, source, src_dir, out):
    tar = tmp_path / "cuhk03.tar"
    tar.write_bytes(b"")
    res = _dry_run("ladder-real", f"REAL_SOURCE={source}", f"REAL_TAR={tar}", "REAL_SEEDS=0 3", "JOBS=2")
    assert res.returncode == 0, res.stderr
    ladder = [ln for ln in res.stdout.replace("\\\n", " ").splitlines() if " ladder " in ln]
    assert len(ladder) == 1, res.stdout
    words = ladder[0].split()
    assert words[words.index("--source") + 1] == src_dir
    assert words[words.index("--target") + 1] == "data/real/cuhk03-pair/B"     # the same real target either way
    assert words[words.index("--seeds") + 1] == "0,3"
    assert words[words.index("--out") + 1] == out


def test_ladder_real_refuses_a_missing_archive_and_an_unknown_source(tmp_path):
    missing = tmp_path / "nowhere.tar"
    res = _dry_run("data/real/cuhk03/bounding_box_train", f"REAL_TAR={missing}", "-B")
    assert res.returncode != 0
    assert f"REAL_TAR={missing}: no such file" in res.stderr
    res = _dry_run("ladder-real", "REAL_SOURCE=market")
    assert res.returncode != 0 and "REAL_SOURCE=market: expected real or synthetic" in res.stderr
