"""The ladder's rows, seeds and report (results.md / results.csv) on hand-written seed folders: worked values."""
from __future__ import annotations

import csv
import io
import json

import pytest

from reid_uda_lib.config import get_preset
from reid_uda_lib.experiments import (all_rows, HEADLINE_ROWS, collect, machine_info, parse_rows, parse_seeds,
                                 write_report)


def test_rows_are_checked_and_put_in_table_order():
    assert parse_rows("lf2,sbase,oracle") == ["oracle", "direct", "sbase", "lf2"]      # direct always there
    assert parse_rows(None)[:4] == ["oracle", "direct", "direct_bn", "base"] and "lf2_base" not in parse_rows(None)
    assert parse_rows(list(HEADLINE_ROWS)) == ["oracle", "direct", "direct_bn", "sbase", "dcdfa", "lf2"]
    assert parse_rows(",".join(all_rows())) == list(all_rows())
    with pytest.raises(ValueError, match="unknown ladder row\\(s\\) .sbse.; the rows are: oracle, direct, direct_bn, base"):
        parse_rows("sbase,sbse")
    assert parse_seeds("0, 1,2") == [0, 1, 2] and parse_seeds([3]) == [3]
    for bad in ("0,0", "a", "", "-1"):
        with pytest.raises(ValueError, match="seeds must be"):
            parse_seeds(bad)


def _m(x):
    return {"mAP": x, "rank1": x + 0.1, "rank5": x + 0.2, "rank10": x + 0.3}


def _write(folder, summary):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "summary.json").write_text(json.dumps(summary))


def _seed(root, s, dt, oracle, sbase, b_only, seconds):
    d = root / f"seed{s}"
    _write(d / "pretrain", {"target": _m(dt)})
    _write(d / "oracle", {"target": _m(oracle)})
    q = {"nmi": 0.8 + 0.1 * s, "ari": 0.5, "n_clusters": 100 + 10 * s, "outlier_ratio": 0.1}
    _write(d / "dcdfa", {"target": _m(sbase), "cluster": q, "extra_eval": {"b": _m(b_only)}})
    (d / "timings.json").write_text(json.dumps({"direct": {"seconds": 10.0, "epochs": 2},
                                                "dcdfa": {"seconds": seconds, "epochs": 4}}))


def test_report_worked_values(tmp_path):
    # seed 0: DT 20, oracle 60, dcdfa 40 -> closes (40-20)/(60-20) = 50 %; seed 1: DT 20, oracle 40, dcdfa 35
    # -> 75 %. Mean 62.5, sample std sqrt((12.5² + 12.5²) / 1) = 17.7.
    _seed(tmp_path, 0, 0.20, 0.60, 0.40, 0.30, 100.0)
    _seed(tmp_path, 1, 0.20, 0.40, 0.35, 0.25, 140.0)
    cfg = get_preset("tiny", **{"uda.epochs": 4, "uda.iters_per_epoch": 0, "data.batch_size": 16})
    res = write_report(tmp_path, cfg, [0, 1], ["oracle", "direct", "dcdfa"], n_target_train=100,
                       command="python -m reid_uda_lib ladder --seeds 0,1")
    md = (tmp_path / "results.md").read_text()
    assert md == res["markdown"] and res["table"] in md
    # oracle steps: 4 epochs x (100 // 16 = 6) = 24
    assert "| oracle (SBase with the target's true identities, from the pretrained model, 24 steps) | 2 | 50.0 ± 14.1 |" in md
    assert "| direct transfer (source only) | 2 | 20.0 ± 0.0 | 30.0 ± 0.0 |" in md
    # mAP 40, 35: 37.5 ± 3.5; NMI 0.8, 0.9 -> 0.85 (shown 0.85), clusters 105, outliers 10 %, 120 s
    assert ("| SBase+DCDFA (`dcdfa`) | 2 | 37.5 ± 3.5 | 47.5 ± 3.5 | 57.5 ± 3.5 | 67.5 ± 3.5 | 62 ± 18 % | "
            "0.85 | 0.50 | 105 | 10 | 120 |") in md
    # b only: (30-20)/40 = 25 %, (25-20)/20 = 25 %
    assert "| SBase+DCDFA (`dcdfa`), b only | 2 | 27.5 ± 3.5 | 37.5 ± 3.5 | 47.5 ± 3.5 | 57.5 ± 3.5 | 25 ± 0 % |" in md
    for needle in ("- command: `python -m reid_uda_lib ladder --seeds 0,1`", "- commit: ", "`cpu family`",
                   "logical CPUs", "torch ", "seeds: 0, 1", "`tiny` preset"):
        assert needle in md, needle

    lines = list(csv.DictReader(io.StringIO((tmp_path / "results.csv").read_text())))
    assert [(r["method"], r["evaluation"]) for r in lines] == [("oracle", "main"), ("direct", "main"),
                                                             ("dcdfa", "main"), ("dcdfa", "b")]
    dcdfa = lines[2]
    assert dcdfa["seeds"] == "2" and float(dcdfa["mAP_mean"]) == pytest.approx(37.5)
    assert float(dcdfa["mAP_std"]) == pytest.approx(3.536, abs=1e-3)
    assert float(dcdfa["gap_closed_pct_mean"]) == pytest.approx(62.5)
    assert float(dcdfa["gap_closed_pct_std"]) == pytest.approx(17.68, abs=0.01)
    assert float(dcdfa["nmi_mean"]) == pytest.approx(0.85) and float(dcdfa["seconds_mean"]) == 120.0
    assert lines[0]["gap_closed_pct_mean"] == "" and lines[1]["seconds_mean"] == "10.0"


def test_a_seed_whose_oracle_is_not_above_direct_transfer_gives_no_gap_share(tmp_path):
    _seed(tmp_path, 0, 0.20, 0.60, 0.40, 0.30, 100.0)
    _seed(tmp_path, 1, 0.30, 0.25, 0.35, 0.25, 100.0)           # oracle below DT
    entries = collect(tmp_path, [0, 1], ["oracle", "direct", "dcdfa"])
    assert [r["gap"] for r in entries[2]["runs"]] == [pytest.approx(0.5), None]
    md = write_report(tmp_path, get_preset("tiny"), [0, 1], ["oracle", "direct", "dcdfa"])["table"]
    assert "| 50 % (1 of 2 seeds) |" in md


def test_machine_info_names_the_cpu_and_torch():
    import torch
    info = machine_info("cpu")
    assert info["torch"] == torch.__version__ and info["logical_cpus"] >= 1 and info["cpu"]
    assert info["gpu"] is None


def test_the_header_names_the_cpu_kernels_and_the_variables_that_capped_them(tmp_path, monkeypatch):
    import torch
    from reid_uda_lib.runtime.machine import ISA_LIMIT_VARS, kernels_text
    for var in ISA_LIMIT_VARS:
        monkeypatch.delenv(var, raising=False)
    own = machine_info("cpu")
    assert own["isa_limits"] == {} and own["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert kernels_text(own) == own["cpu_capability"]
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    monkeypatch.setenv("MKL_ENABLE_INSTRUCTIONS", "AVX2")
    capped = machine_info("cpu")
    assert capped["isa_limits"] == {"ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}
    assert kernels_text(capped) == f"{own['cpu_capability']} (capped: ONEDNN_MAX_CPU_ISA=AVX2, MKL_ENABLE_INSTRUCTIONS=AVX2)"
    _seed(tmp_path, 0, 0.20, 0.60, 0.40, 0.30, 100.0)
    md = (tmp_path / "results.md")
    write_report(tmp_path, get_preset("tiny"), [0], ["oracle", "direct", "dcdfa"])
    assert f"CPU kernels: {kernels_text(capped)}" in md.read_text()
    from reid_uda_lib.experiments.report import kernels_note
    assert kernels_note("cpu").startswith(f"CPU kernels: {kernels_text(capped)}. The same seed gives other")


def test_aten_cpu_capability_caps_torch_kernels_in_a_fresh_process():
    # what `make demo CPU_ISA=avx2` relies on: the variable is read when torch loads
    import os
    import subprocess
    import sys
    flags = next((line for line in open("/proc/cpuinfo") if line.startswith("flags")), "").split()
    code = "import torch; print(torch.backends.cpu.get_cpu_capability())"
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "avx2"}
    capped = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert capped.stdout.strip() == ("AVX2" if "avx2" in flags else "DEFAULT")


def test_the_header_lists_stages_trained_with_other_kernels(tmp_path, monkeypatch):
    from reid_uda_lib.runtime.machine import ISA_LIMIT_VARS, kernel_signature
    for var in ISA_LIMIT_VARS:
        monkeypatch.delenv(var, raising=False)
    _seed(tmp_path, 0, 0.20, 0.60, 0.40, 0.30, 100.0)
    own = kernel_signature("cpu")
    other = {**own, "cpu_capability": "OTHER", "threads": own["threads"] + 1}
    for stage, sig in (("pretrain", other), ("oracle", {**own, "threads": own["threads"] + 1}), ("dcdfa", own)):
        path = tmp_path / "seed0" / stage / "summary.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), "kernels": sig}))
    md = write_report(tmp_path, get_preset("tiny", device="cpu"), [0], ["oracle", "direct", "dcdfa"])["markdown"]
    # another thread count alone is not another kernel set; another instruction set is
    assert ("- **trained with other kernels than these** (reused folders): seed0/pretrain (CPU kernels OTHER -> "
            f"{own['cpu_capability']})\n") in md


def test_the_papers_claims_are_paired_by_seed(tmp_path):
    # dcdfa 40, 35 and its b only 30, 25 against sbase 38, 36: +2.0, -1.0 -> 0.5 ± 2.1, 1 of 2 positive;
    # b only: -8, -11 -> -9.5 ± 2.1, 0 of 2. A pair with a row missing (LF²) gives no line.
    _seed(tmp_path, 0, 0.20, 0.60, 0.40, 0.30, 100.0)
    _seed(tmp_path, 1, 0.20, 0.40, 0.35, 0.25, 140.0)
    for s, m in ((0, 0.38), (1, 0.36)):
        _write(tmp_path / f"seed{s}" / "sbase", {"target": _m(m)})
    res = write_report(tmp_path, get_preset("tiny"), [0, 1], ["oracle", "direct", "sbase", "dcdfa"])
    md = res["markdown"]
    assert "| `dcdfa` − `sbase` | DCDFA Table 1: SBase+DCDFA above SBase | 2 | 0.5 ± 2.1 | 1 of 2 | +2.0 -1.0 |" in md
    assert "| `dcdfa` (b only) − `sbase` | DCDFA Table 2: b alone above SBase's f | 2 | -9.5 ± 2.1 | 0 of 2 |" in md
    assert "lf2" not in md.split("paired by seed")[1]
    # the wiring: swapping the two rows of a pair flips the sign
    from reid_uda_lib.experiments.tables import paired_table
    flipped = paired_table(res["rows"], [(("sbase", None), ("dcdfa", None), "x")])
    assert "| -0.5 ± 2.1 | 1 of 2 | -2.0 +1.0 |" in flipped


def test_dcdfa_table3_claims_are_paired_by_seed(tmp_path):
    # cid_domain 37, 34 against sbase 38, 36: -1.0, -2.0 -> -1.5 ± 0.7, 0 of 2; the full dcdfa (40, 35) against
    # cid_domain: +3.0, +1.0 -> 2.0 ± 1.4, 2 of 2 (L^b_RReID's step of Table 3)
    _seed(tmp_path, 0, 0.20, 0.60, 0.40, 0.30, 100.0)
    _seed(tmp_path, 1, 0.20, 0.40, 0.35, 0.25, 140.0)
    for s, m, cd in ((0, 0.38, 0.37), (1, 0.36, 0.34)):
        _write(tmp_path / f"seed{s}" / "sbase", {"target": _m(m)})
        _write(tmp_path / f"seed{s}" / "dcdfa_cid_domain", {"target": _m(cd)})
    md = write_report(tmp_path, get_preset("tiny"), [0, 1],
                      ["oracle", "direct", "sbase", "dcdfa_cid_domain", "dcdfa"])["markdown"]
    paired = md.split("paired by seed")[1]
    assert ("| `dcdfa_cid_domain` − `sbase` | DCDFA Table 3: L_CID + L_Domain add to SBase | 2 | -1.5 ± 0.7 | "
            "0 of 2 | -1.0 -2.0 |") in paired
    assert ("| `dcdfa` − `dcdfa_cid_domain` | DCDFA Table 3: L^b_RReID adds to L_CID + L_Domain | 2 | 2.0 ± 1.4 | "
            "2 of 2 | +3.0 +1.0 |") in paired
    assert "`dcdfa_cid` −" not in paired            # a row not run gives no line
