"""Adding a method is one file plus one registry entry (docs/development.md, "Adding a method").

The toy method below is that file's content; :func:`register` stands for its entry in methods/registry.py. Once
registered, everything else follows from the registry: the config accepts it, the ladder lists it with its
label and cost, its sections leave the pretraining's identity alone, and the one loop trains it (its term in
metrics.jsonl).
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
import torch

from reid_uda_lib.config import ConfigError
from reid_uda_lib.experiments.rows import all_rows, label, parse_rows, row_cost
from reid_uda_lib.methods import METHODS, StepContext, UDAMethod, register, stage_ignores, validate_config
from reid_uda_lib.methods.rules import ge
from reid_uda_lib.train import adapt

from uda_helpers import tiny_cfg


@dataclass(frozen=True)
class FeatureNormMethod(UDAMethod):
    """SBase + ``weight`` · mean over the target images of (‖f‖₂ − ``radius``)² (a toy regulariser)."""
    weight: float = 0.1
    radius: float = 1.0

    def validate(self, cfg) -> list[str]:
        return [] if self.radius > 0 else [f"{self.name}: radius must be > 0, got {self.radius}"]

    def extra_terms(self, ctx: StepContext) -> dict[str, torch.Tensor]:
        norms = ctx.out_t["f"].norm(dim=1)
        return {"fnorm": self.weight * ((norms - self.radius) ** 2).mean()}


@pytest.fixture
def toy(registry_snapshot):
    """The entry, registered for one test (removed afterwards)."""
    return register(FeatureNormMethod("sbase_fnorm", label="SBase+‖f‖ (`sbase_fnorm`)", cost=1.01,
                                      description="SBase + a feature-norm penalty (a toy)"))


def test_one_entry_makes_a_row_a_valid_method_and_a_cost(toy):
    assert "sbase_fnorm" in all_rows() and parse_rows("sbase_fnorm") == ["direct", "sbase_fnorm"]
    assert label("sbase_fnorm") == "SBase+‖f‖ (`sbase_fnorm`)" and row_cost("sbase_fnorm") == 1.01
    validate_config(tiny_cfg("sbase_fnorm"))
    with pytest.raises(ConfigError, match="sbase_fnorm: radius must be > 0"):
        register(FeatureNormMethod("sbase_fnorm", radius=0.0), replace=True)
        validate_config(tiny_cfg("sbase_fnorm"))
    with pytest.raises(ValueError, match="already registered"):
        register(FeatureNormMethod("sbase_fnorm"))


def test_its_sections_and_rules_come_with_it(toy):
    @dataclass(frozen=True)
    class WithSection(FeatureNormMethod):
        sections: tuple = ("dann",)        # pretend it reads an existing section

        def rules(self) -> dict:
            return {"dann.weight": ge(0.5)}

    register(WithSection("toy_sections"))
    assert "dann" in stage_ignores("pretrain") and stage_ignores("uda") == frozenset()
    with pytest.raises(ConfigError, match=r"dann\.weight: expected >= 0.5"):
        validate_config(tiny_cfg("sbase", **{"dann.weight": 0.1}))
    assert "toy_sections" in METHODS and "toy_sections" not in stage_ignores("uda")


@pytest.mark.slow
def test_the_loop_trains_it(toy, tiny_pretrained, tmp_path):
    src, tgt, ckpt = tiny_pretrained
    res = adapt(tiny_cfg("sbase_fnorm"), src, tgt, ckpt, tmp_path / "run", progress=False)
    assert 0.0 <= res["target"]["mAP"] <= 1.0
    logs = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    epochs = [r for r in logs if r.get("stage") == "uda" and "epoch" in r]
    assert epochs and all(r.get("fnorm", 0) > 0 for r in epochs)      # the term of every epoch, logged
