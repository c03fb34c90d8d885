"""The notebook output checks (tools/nbcheck.py, applied to nbval's executed cells by conftest.py), the
committed notebooks (clean, figure cells tagged) and the figures they show (backend-free, inline PNG)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from tools.nbcheck import FIGURE_TAG, main, notebook_problems, output_problems

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
PNG = {"output_type": "display_data",
       "data": {"image/png": "iVBORw0KGgo=", "text/plain": "<Figure size 1000x360 with 2 Axes>"}}


def _stderr(text):
    return {"output_type": "stream", "name": "stderr", "text": text}


def test_clean_outputs_pass():
    bars = ("pretrain 1/2:  50%|█████     | 4/8 [00:01<00:01,  3.20it/s, ce=1.2]\r"
            "pretrain 1/2: 100%|██████████| 8/8\n")
    outs = [{"output_type": "stream", "name": "stdout", "text": "reused ../runs/x, made by preset ci, seed 0\n"},
            _stderr(bars), PNG]
    assert output_problems(outs, tags=[FIGURE_TAG]) == []


@pytest.mark.parametrize("outs, expected", [
    ([_stderr("/x/tqdm/auto.py:21: TqdmWarning: IProgress not found. Please update jupyter and ipywidgets.\n")],
     "stderr shows a warning"),
    ([_stderr("rundir.py:39: UserWarning: --resume given but ../runs/notebook01/pretrain/checkpoint.pt does "
              "not exist yet: starting from epoch 0\n  warnings.warn(\n")], "UserWarning: --resume"),
    ([{"output_type": "execute_result", "data": {"text/plain": "<Figure size 1000x360 with 2 Axes>"}}],
     "only as its text repr"),
    ([{"output_type": "stream", "name": "stdout", "text": "<Figure size 640x480 with 1 Axes>\n"}], "printed as text"),
    ([{"output_type": "error", "ename": "ValueError", "evalue": "bad", "traceback": []}], "raised ValueError"),
])
def test_each_problem_is_named(outs, expected):
    problems = output_problems(outs)
    assert len(problems) >= 1 and expected in problems[0], problems


def test_figure_tag_needs_an_image():
    assert output_problems([], tags=[FIGURE_TAG]) == [
        "the cell is tagged 'figure' but has no image/png output (output types: [])"]
    text_only = [{"output_type": "execute_result", "data": {"text/plain": "<PIL.Image.Image ...>"}}]
    assert "no image/png output" in output_problems(text_only, tags=[FIGURE_TAG])[0]
    assert output_problems(text_only) == []  # untagged cells may show anything that is not a problem


def test_notebook_problems_name_the_cell_and_the_command_line(tmp_path, capsys):
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# title"),
        nbformat.v4.new_code_cell("plot_curves(records);", metadata={"tags": [FIGURE_TAG]}),
    ])
    problems = notebook_problems(nb)
    assert len(problems) == 1 and problems[0].startswith("cell 1 ('plot_curves(records);'): the cell is tagged")
    path = tmp_path / "executed.ipynb"
    nbformat.write(nb, path)
    assert main([str(path)]) == 1
    assert "1 problem(s)" in capsys.readouterr().out
    nb.cells[1].outputs = [nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgo="})]
    nbformat.write(nb, path)
    assert main([str(path)]) == 0


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_notebooks_are_clean_and_tag_their_figures(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    stale = [i for i, c in enumerate(code) if c.outputs or c.execution_count is not None]
    assert not stale, f"{path.name}: code cells {stale} hold outputs; clear them before committing"
    tagged = [c for c in code if FIGURE_TAG in c.metadata.get("tags", [])]
    figure_calls = [c for c in code if re.search(r"\b(plot_\w+|contact_sheet)\(", c.source)]
    assert tagged == figure_calls, f"{path.name}: the cells that draw a figure must be the cells tagged 'figure'"
    assert all(not c.source.rstrip().endswith(";") for c in tagged), f"{path.name}: a ';' hides the figure"


def test_plot_curves_is_an_inline_png_outside_pyplot(tmp_path):
    from matplotlib._pylab_helpers import Gcf

    from reid_uda_lib.viz import NotebookFigure, plot_curves

    records = [{"stage": "uda", "epoch": e, "step": e, "lr": 0.1, "ce": 1.0 / (e + 1),
                "target": {"mAP": 0.1 * e, "rank1": 0.2 * e}, "cluster": {"nmi": 0.5}} for e in range(3)]
    n_managed = len(Gcf.get_all_fig_managers())
    fig = plot_curves(records, tmp_path / "f" / "curves.png", title="t")
    assert isinstance(fig, NotebookFigure) and len(fig.axes) == 2
    assert len(Gcf.get_all_fig_managers()) == n_managed  # not a pyplot figure: nothing to close, no leak
    assert fig._repr_png_().startswith(b"\x89PNG") and (tmp_path / "f" / "curves.png").stat().st_size > 1000


def test_importing_the_library_keeps_the_kernel_backend():
    """Jupyter sets MPLBACKEND to the inline backend; importing the library must not replace it."""
    inline = "module://matplotlib_inline.backend_inline"
    code = ("import matplotlib, reid_uda_lib, reid_uda_lib.viz, reid_uda_lib.train, reid_uda_lib.experiments.demo; "
            "print(matplotlib.rcParams._get_backend_or_none())")
    path = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "MPLBACKEND": inline, "PYTHONPATH": path}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == inline, out.stdout + out.stderr
