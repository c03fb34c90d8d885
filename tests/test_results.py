"""The seeds table: mean ± sample std over the run folders of several seeds."""
from __future__ import annotations

import json

import pytest

from reid_uda_lib.experiments.seeds import collect_rows
from reid_uda_lib.experiments.tables import probes_table, seeds_table


def _write(path, summary):
    path.mkdir(parents=True)
    (path / "summary.json").write_text(json.dumps(summary))


def _m(x):
    return {"mAP": x, "rank1": x + 0.1, "rank5": x + 0.2, "rank10": x + 0.3}


def test_mean_and_std_over_seeds_worked_values(tmp_path):
    for seed, (dt, s) in enumerate([(0.20, 0.30), (0.22, 0.40)]):
        d = tmp_path / f"s{seed}"
        _write(d / "pretrain", {"target": _m(dt)})
        _write(d / "dcdfa", {"target": _m(s), "extra_eval": {"b": _m(s - 0.1)},
                             "probe": {"domain_acc_f": 0.9, "domain_acc_b": 0.6 + 0.1 * seed,
                                       "domain_acc_e": 1.0, "r_t_is_target": 0.5, "r_s_is_source": 0.5,
                                       "id_follows_b": 0.25}})
    rows = collect_rows([tmp_path / "s0", tmp_path / "s1"])
    assert list(rows) == ["direct transfer (source only)", "dcdfa", "dcdfa (b only)"]
    table = seeds_table(rows)
    # mAP 30 and 40: mean 35.0, sample std sqrt(((30-35)^2 + (40-35)^2) / 1) = 7.07
    assert "| dcdfa | 2 | 35.0 ± 7.1 | 45.0 ± 7.1 |" in table
    assert "| direct transfer (source only) | 2 | 21.0 ± 1.4 |" in table
    assert "| dcdfa | 2 | 90 ± 0 | 65 ± 7 | 100 ± 0 |" in probes_table(rows)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        collect_rows([tmp_path / "missing"])


def test_listed_direct_and_oracle_rows_appear_once_in_their_places(tmp_path):
    d = tmp_path / "s0"
    _write(d / "pretrain", {"target": _m(0.2)})
    _write(d / "sbase", {"target": _m(0.5)})
    _write(d / "oracle", {"target": _m(0.7)})
    rows = collect_rows([d], ["oracle", "direct", "sbase"])
    assert list(rows) == ["direct transfer (source only)", "sbase", "oracle (SBase with the true target identities)"]
    assert rows["oracle (SBase with the true target identities)"][0]["mAP"] == 0.7


def test_probe_table_blanks_the_domain_half_of_rows_without_l_domain(tmp_path):
    probe = {"domain_acc_f": 0.9, "domain_acc_b": 0.6, "domain_acc_e": 1.0, "r_t_is_target": 0.5,
             "r_s_is_source": 0.5, "id_follows_b": 0.25}
    for name in ("dcdfa_cid", "dcdfa"):
        _write(tmp_path / "s0" / name, {"target": _m(0.3), "probe": probe})
    table = probes_table(collect_rows([tmp_path / "s0"]))
    assert "| dcdfa_cid | 1 | 90 | 60 | 100 | – | – | 25 |" in table
    assert "| dcdfa | 1 | 90 | 60 | 100 | 50 | 50 | 25 |" in table
