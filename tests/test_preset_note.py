"""analysis.preset_note: what a notebook prints about its preset before training."""
from reid_uda_lib.analysis import preset_note
from reid_uda_lib.config import get_preset


def test_the_note_names_the_backbone_its_start_and_size():
    assert preset_note(get_preset("cpu")).startswith(
        "preset 'cpu': mobilenet_v2 from ImageNet weights at 128x64, 8 pretraining and 2 adaptation epochs")
    assert "resnet18 from random weights at 96x48" in preset_note(get_preset("scratch"))


def test_only_the_smoke_preset_says_its_figures_are_noise():
    assert "figures are noise" in preset_note(get_preset("tiny"))
    for name in ("ci", "cpu", "scratch", "paper", "paper_lf2"):
        assert "noise" not in preset_note(get_preset(name))
    for name in ("cpu", "scratch", "paper", "paper_lf2"):
        assert "noise" not in preset_note(get_preset(name)) and "\n" not in preset_note(get_preset(name))


def test_the_short_preset_names_itself_and_the_preset_with_the_readme_numbers():
    note = preset_note(get_preset("ci"))
    assert note.startswith("preset 'ci': mobilenet_v2 from ImageNet weights at 96x48, 4 pretraining and 2 "
                           "adaptation epochs\n")
    assert "cut short" in note and "preset = 'cpu'" in note
