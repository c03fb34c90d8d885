"""Shared fixtures: the real CUHK03 tree (extracted once per session) and a small synthetic pair."""
from __future__ import annotations

import os
import tarfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CUHK03_TAR = Path(os.environ.get("REID_UDA_CUHK03_TAR", REPO.parent / "shared" / "data" / "cuhk03.tar"))


@pytest.fixture(scope="session")
def cuhk03_root(tmp_path_factory) -> Path:
    """The real CUHK03 tree in Market layout (``<tmp>/cuhk03``), extracted from ../shared/data once."""
    if not CUHK03_TAR.is_file():
        pytest.skip(f"real CUHK03 archive not found at {CUHK03_TAR} "
                    "(set REID_UDA_CUHK03_TAR to its path to run the real-data tests)")
    out = tmp_path_factory.mktemp("real")
    with tarfile.open(CUHK03_TAR) as tar:
        tar.extractall(out, filter="data")
    root = out / "cuhk03"
    assert root.is_dir(), f"{CUHK03_TAR} did not contain a top-level 'cuhk03/' folder"
    return root


@pytest.fixture(scope="session")
def synthetic_pair(tmp_path_factory) -> dict:
    """A small synthetic two-domain pair (``{"A": Path, "B": Path}``), generated once per session."""
    from reid_uda_lib.data.synthetic import generate_synthetic_pair

    out = tmp_path_factory.mktemp("synthetic")
    return generate_synthetic_pair(out, seed=0, num_train_ids=24, num_test_ids=16, height=64, width=32)


@pytest.fixture(scope="session")
def tiny_pretrained(synthetic_pair, tmp_path_factory):
    """``(source, target, checkpoint)``: the small pair loaded and a 1-epoch ``tiny`` pretraining on A, shared by
    the end-to-end tests of the UDA methods (``uda_helpers.tiny_cfg``)."""
    from reid_uda_lib.data import load_dataset
    from reid_uda_lib.train import pretrain
    from uda_helpers import tiny_cfg

    src, tgt = load_dataset(synthetic_pair["A"]), load_dataset(synthetic_pair["B"])
    out = tmp_path_factory.mktemp("tiny_pretrained")
    pretrain(tiny_cfg("sbase"), src, tgt, out, progress=False)
    return src, tgt, out / "checkpoint.pt"


@pytest.fixture
def registry_snapshot():
    """The method registry as it is; what a test registers is removed afterwards (the registry is one dict
    that validation and the ladder rows read, so it is restored in place, never replaced)."""
    from reid_uda_lib.methods.registry import METHODS

    saved = dict(METHODS)
    yield METHODS
    METHODS.clear()
    METHODS.update(saved)
