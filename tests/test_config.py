import pytest

from reid_uda_lib.config import Config, get_preset


def test_presets_differ_in_scale():
    tiny, cpu, paper = get_preset("tiny"), get_preset("cpu"), get_preset("paper")
    assert (tiny.model.arch, cpu.model.arch, paper.model.arch) == ("tiny", "mobilenet_v2", "resnet50")
    assert get_preset("scratch").model.arch == "resnet18" and get_preset("scratch").model.weights is None
    assert (paper.data.height, paper.data.width) == (256, 128)
    # DCDFA's batch: 4 identities x 16 images = 64 per domain; LF²'s (paper_lf2): 16 x 4 (every value with its
    # sentence of the paper: tests/test_paper_presets.py); Adam 3.5e-4, EMA 0.999, DBSCAN eps 0.6 / 4
    assert paper.data.batch_size == 64 and paper.data.batch_size // paper.data.num_instances == 4
    assert get_preset("paper_lf2").data.batch_size // get_preset("paper_lf2").data.num_instances == 16
    assert paper.optim.lr == pytest.approx(3.5e-4) and paper.uda.ema_momentum == pytest.approx(0.999)
    assert (paper.uda.eps, paper.uda.min_samples, paper.uda.k1, paper.uda.k2) == (0.6, 4, 30, 6)
    assert paper.model.weights == "imagenet" and paper.optim.milestones == (40, 70)


def test_dotted_overrides_convert_strings_like_the_cli():
    cfg = get_preset("tiny", **{"uda.epochs": "5", "optim.lr": "1e-2", "model.weights": "none",
                              "deterministic": "false", "optim.milestones": "3,6"})
    assert cfg.uda.epochs == 5 and cfg.optim.lr == 0.01 and cfg.model.weights is None
    assert cfg.deterministic is False and cfg.optim.milestones == (3, 6)
    # overrides return a copy: the preset itself is untouched
    assert get_preset("tiny").uda.epochs != 5


def test_unknown_field_and_bad_value_name_the_field():
    with pytest.raises(KeyError, match="uda.epochz"):
        get_preset("tiny", **{"uda.epochz": 1})
    with pytest.raises(ValueError, match="uda.epochs.*int"):
        get_preset("tiny", **{"uda.epochs": "three"})
    with pytest.raises(KeyError, match="unknown preset 'gpu'"):
        get_preset("gpu")


def test_dict_round_trip():
    cfg = get_preset("paper", seed=3)
    again = Config.from_dict(cfg.to_dict())
    assert again == cfg


def test_ci_is_the_cpu_recipe_cut_short():
    """The notebooks' test preset differs from ``cpu`` only in size and length (presets.py's ``_ci``): the same
    backbone, weights, losses, clustering and learning rates, so its figures show the cpu preset's structure."""
    ci, cpu = get_preset("ci").to_dict(), get_preset("cpu").to_dict()
    differ = {(sec, k) for sec in cpu if isinstance(cpu[sec], dict)
              for k in cpu[sec] if ci[sec][k] != cpu[sec][k]}
    assert differ == {("data", "height"), ("data", "width"), ("data", "pad"), ("pretrain", "epochs"),
                      ("pretrain", "eval_every"), ("uda", "iters_per_epoch"), ("uda", "target_bn_images")}
    assert ci["preset"] == "ci" and (ci["model"]["arch"], ci["model"]["weights"]) == ("mobilenet_v2", "imagenet")
    assert get_preset("tiny").model.arch == "tiny"
