"""tools/true_label_check.py: a method trained with the target's true identities as its level-0 labels."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
from true_label_check import main  # noqa: E402

from uda_helpers import tiny_cfg  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("method", ["sbase", "lf2_base"])
def test_level0_labels_are_the_true_identities(method, tiny_pretrained, synthetic_pair, tmp_path, capsys,
                                              registry_snapshot):      # the tool's method does not outlive the test
    _, tgt, init = tiny_pretrained
    sets = [f"{k}={v}" for k, v in tiny_cfg(method).to_dict()["uda"].items()
            if k in ("epochs", "iters_per_epoch", "k1", "k2", "eps", "min_samples")]
    args = ["--method", method, "--preset", "tiny", "--source", str(synthetic_pair["A"]), "--target",
            str(synthetic_pair["B"]), "--init", str(init), "--out", str(tmp_path),
            "--set", "data.batch_size=16", "--set", "uda.eval_every=1", "--set", "lf2.n_clusters=20"]
    for s in sets:
        args += ["--set", f"uda.{s}"]
    assert main(args) == 0
    assert f"{method}_true: target mAP per evaluated epoch: 1: " in capsys.readouterr().out
    records = [json.loads(line) for line in (tmp_path / f"{method}_true" / "metrics.jsonl").read_text().splitlines()]
    quality = [r["cluster"] for r in records]
    # level 0 is the true identities: every target train image labelled, one cluster per identity
    assert len(records) == 2 and all(q["nmi"] == pytest.approx(1.0) and q["n_outliers"] == 0 for q in quality)
    assert all(q["n_clusters"] == q["n_true_ids"] == tgt.num_train_pids for q in quality)
