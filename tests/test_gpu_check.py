"""``benchmarks/gpu_check.py`` (``make gpu-check``) at its CPU smoke size, so the GPU measurement cannot rot
between lent GPUs: every section is present in both outputs (measured, or skipped with its reason), a tiny
budget skips the later sections cleanly, the resume check finds a broken resume, and the memory fit of
section 6 follows its formula."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

import gpu_check  # noqa: E402
from gpu_check_capacity import CARDS, HEADROOM_GIB, affine_fit, capacity, largest_batch  # noqa: E402
from gpu_check_report import STEP_HEADER  # noqa: E402
from gpu_check_resume import COMPONENTS, resume_once  # noqa: E402
from gpu_check_steps import paper_preset_for, preset_shapes  # noqa: E402

from reid_uda_lib.config import get_preset  # noqa: E402

SECTION_NAMES = [name for name, _, _ in gpu_check.SECTIONS]


@pytest.fixture
def one_thread():
    """One torch thread: on a shared 2-core machine two spinning OpenMP threads make tiny steps 10x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """One ``--device cpu --quick`` run (about 30 s on the 2-core VM), shared by the tests below."""
    out = tmp_path_factory.mktemp("gpu_check")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rc = gpu_check.main(["--device", "cpu", "--quick", "--budget-s", "600", "--out", str(out)])
    finally:
        torch.set_num_threads(before)
    return rc, json.loads((out / "gpu_check.json").read_text()), (out / "gpu_check.md").read_text()


def test_quick_run_measures_every_section(quick_run):
    rc, res, md = quick_run
    assert rc == 0
    assert list(res["sections"]) == SECTION_NAMES
    for name, sec in res["sections"].items():
        assert sec["status"] in ("measured", "partial"), (name, sec["status"], sec.get("reason"))
        assert f"## {sec['title']}" in md
    assert res["sections"]["environment"]["fields"]["commit"]
    assert "| " + " | ".join(STEP_HEADER) + " |" in md
    # float32 rows ran for every method and batch; the precisions a CPU cannot run are skipped with a reason
    for name in ("paper_steps", "lab_steps"):
        rows = res["sections"][name]["rows"]
        off = [r for r in rows if r["amp"] == "off"]
        assert off and all(r["status"] == "measured" and r["ms_median"] > 0 for r in off), off
        assert all(r["peak_mib"] is None for r in off)          # max_memory_allocated: CUDA only
        fp16 = [r for r in rows if r["amp"] == "fp16"]
        assert fp16 and all(r["status"].startswith("skipped: a CPU has no fp16") for r in fp16)
    # section 4: device and CPU agree (here both are the CPU)
    for row in res["sections"]["clustering"]["rows"]:
        assert row["status"] == "measured" and row["device_s"] > 0 and row["cpu_s"] > 0, row
    # section 6: a schedule time per measured group
    assert all(r["schedule_h"] > 0 for r in res["sections"]["capacity"]["rows"])


def test_resume_is_exact_on_cpu(quick_run):
    _, res, md = quick_run
    rows = res["sections"]["resume"]["rows"]
    assert {r["method"] for r in rows} == {"sbase", "dcdfa", "lf2"}
    assert all(r["status"] == "measured" and r["exact"] and r["max_abs_diff"] == 0.0 for r in rows), rows
    assert "| sbase | off | n/a (CPU) | yes |" in md


def test_lab_section_reads_the_cpu_preset(quick_run):
    """Section 3 takes the backbone and input size from get_preset("cpu") at run time (not a copy of today's)."""
    _, res, md = quick_run
    cfg, sec = get_preset("cpu"), res["sections"]["lab_steps"]["config"]
    assert (sec["arch"], sec["height"], sec["width"]) == (cfg.model.arch, cfg.data.height, cfg.data.width)
    assert f"{cfg.model.arch} at {cfg.data.height}x{cfg.data.width}" in md
    # and the paper section the paper presets', with the tiny stand-in of quick mode
    paper = res["sections"]["paper_steps"]
    assert paper["config"]["arch"] == "tiny"
    assert {r["preset"] for r in paper["rows"] if r["method"] == "lf2"} == {paper_preset_for("lf2")}


def test_lab_section_follows_a_changed_cpu_preset(monkeypatch, one_thread):
    """Mutation: a cpu preset with another backbone and input size changes section 3 with it."""
    import gpu_check_steps

    real = gpu_check_steps.get_preset

    def changed(name, **over):
        cfg = real(name, **over)
        return cfg.override(**{"model.arch": "tiny", "data.height": 64, "data.width": 32}) if name == "cpu" else cfg

    monkeypatch.setattr(gpu_check_steps, "get_preset", changed)
    ctx = gpu_check.Context(device=torch.device("cpu"), sizes=gpu_check.QUICK, budget=gpu_check.Budget(600),
                            log=lambda s: None)
    sec = gpu_check_steps.lab_steps(ctx, reserve=0.0)
    assert (sec["config"]["arch"], sec["config"]["height"], sec["config"]["width"]) == ("tiny", 64, 32)
    assert all(r["status"] == "measured" for r in sec["rows"] if r["amp"] == "off")


def test_tiny_budget_skips_later_sections_cleanly(tmp_path):
    rc = gpu_check.main(["--device", "cpu", "--quick", "--budget-s", "1", "--out", str(tmp_path)])
    assert rc == 0
    res = json.loads((tmp_path / "gpu_check.json").read_text())
    md = (tmp_path / "gpu_check.md").read_text()
    assert res["sections"]["environment"]["status"] == "measured"
    for name in SECTION_NAMES[1:]:
        sec = res["sections"][name]
        assert sec["status"] == "skipped" and sec["reason"], (name, sec)
        assert f"## {sec['title']}\n\nskipped: {sec['reason']}." in md
    for name in ("paper_steps", "lab_steps", "clustering", "resume"):
        assert "not enough time left" in res["sections"][name]["reason"]
    assert len(res["skipped"]) == len(SECTION_NAMES) - 1


def test_budget_reserves_the_later_sections_share():
    now = [0.0]
    budget = gpu_check.Budget(100, clock=lambda: now[0])
    now[0] = 60.0
    assert budget.fits(30) and not budget.fits(30, reserve=20)
    assert "needs ~30 s, 20 s left" in budget.skip_reason(30, reserve=20)


def test_rows_stop_when_their_estimate_no_longer_fits(monkeypatch):
    """Each row's estimate comes from the rows measured so far (+25 %); the first that does not fit before the
    later sections' share is skipped, and the section reads "partial"."""
    import gpu_check_steps

    now = [0.0]

    def fake_row(cfg, method, batch, amp, bn, device, problem, warmup, steps):
        now[0] += 10.0                                   # every row takes 10 s of the fake clock
        return {"status": "measured", "wall_s": 10.0, "ms_median": 1.0, "batch": batch, "method": method}

    monkeypatch.setattr(gpu_check_steps, "measure_row", fake_row)
    budget = gpu_check.Budget(45, clock=lambda: now[0])
    cfg = get_preset("tiny")
    grid = [("sbase", 8, "off", 0)] * 4 + [("sbase", 8, "fp16", 0)]
    rows = gpu_check_steps.run_rows(grid, {"sbase": cfg}, torch.device("cpu"), (10, 100), gpu_check.QUICK, budget,
                                    reserve=10.0, prior=5.0, log=lambda s: None)
    # left before each row: 35, 25, 15 (estimate 12.5 each after the first) -> the fourth does not fit
    assert [r["status"] for r in rows[:3]] == ["measured"] * 3
    assert rows[3]["status"].startswith("skipped: not enough time left (needs ~12 s, 5 s left")
    assert rows[4]["status"].startswith("skipped: a CPU has no fp16")
    status, reason = gpu_check.section_status({"rows": rows})
    assert status == "partial" and "2 of 5 rows not measured" in reason


def test_resume_check_finds_a_broken_resume(tmp_path, one_thread):
    """The comparison must fail when the resumed state misses a piece: the optimiser's moments, or the RNG
    state that draws the third step's images."""
    cfg, _ = preset_shapes(paper_preset_for("sbase"), quick=True)
    cfg = cfg.override(**{"model.bn_samples": 8})
    cpu = torch.device("cpu")
    everything = COMPONENTS + ("rng",)
    assert resume_once(cfg, "sbase", 8, "off", cpu, tmp_path, restore=everything)["exact"]
    for missing in ("optimizer", "rng"):
        res = resume_once(cfg, "sbase", 8, "off", cpu, tmp_path, restore=tuple(c for c in everything if c != missing))
        assert not res["exact"] and res["max_abs_diff"] > 0, missing


def test_capacity_fit_and_largest_batch():
    a, c = affine_fit(32, 10000.0, 64, 18000.0)
    assert (a, c) == (2000.0, 250.0)
    m16 = (CARDS[0][2] - HEADROOM_GIB) * 1024
    assert largest_batch(a, c, m16, 4) == (int((m16 - a) // c)) // 4 * 4
    assert largest_batch(a, c, m16, 16) % 16 == 0
    assert largest_batch(a, 0.0, m16) is None and largest_batch(1e9, c, m16) == 0
    with pytest.raises(ValueError, match="two different batch sizes"):
        affine_fit(32, 1.0, 32, 2.0)
    rows = [{"method": "sbase", "amp": "off", "bn_samples": 32, "num_instances": 4, "batch": 32,
             "status": "measured", "peak_mib": 10000.0, "ms_median": 100.0},
            {"method": "sbase", "amp": "off", "bn_samples": 32, "num_instances": 4, "batch": 64,
             "status": "measured", "peak_mib": 18000.0, "ms_median": 180.0},
            {"method": "lf2", "amp": "off", "bn_samples": 32, "num_instances": 4, "batch": 64,
             "status": "out of memory"},
            {"method": "lf2", "amp": "off", "bn_samples": 32, "num_instances": 4, "batch": 32,
             "status": "measured", "peak_mib": 30000.0, "ms_median": 90.0}]
    clustering = {"rows": [{"key": "dbscan", "device_s": 9.0}, {"key": "kmeans", "device_s": 2.0}]}
    out = {r["method"]: r for r in capacity({"rows": rows}, clustering)["rows"]}
    assert out["sbase"]["max_batch_16GB"] == largest_batch(2000.0, 250.0, m16, 4)
    assert out["sbase"]["schedule_h"] == pytest.approx(80 * 400 * 0.180 / 3600)
    assert out["sbase"]["clustering_h"] == pytest.approx(80 * 9.0 / 3600)
    assert out["lf2"]["clustering_h"] == pytest.approx(80 * 3 * 2.0 / 3600)       # one k-means per level
    assert "out of memory at 64" in out["lf2"]["note"] and "max_batch_16GB" not in out["lf2"]


def test_make_target_runs_the_script_on_cuda():
    """``make gpu-check``: the venv's python after setup; ``GPU_PY=python3`` (a lent GPU machine) skips setup."""
    def dry(*args: str) -> str:
        return subprocess.run(["make", "-n", "-s", "gpu-check", *args], cwd=REPO, capture_output=True, text=True,
                              check=True).stdout
    assert ".venv/bin/python benchmarks/gpu_check.py --device cuda --out outputs/gpu_check" in dry()
    assert dry("GPU_PY=python3", "GPU_OUT=out", "COMMIT=abc1234").strip() == \
        "python3 benchmarks/gpu_check.py --device cuda --out out --commit abc1234"
