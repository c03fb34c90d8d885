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
    outs = [{"output_type": "stream", "name": "stdout", "text": "reused ../runs/x, made by preset tiny, seed 0\n"},
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


# --- what a student gets by default, what the test run sets ------------------------------------------------
PRESET_ENV, SOLUTIONS_ENV = "REID_UDA_NOTEBOOK_PRESET", "REID_UDA_SOLUTIONS"


def _run_parameters(nb, env) -> dict:
    """Execute the notebook's parameters cell(s) (papermill's injected one included) with ``env``."""
    ns: dict = {}
    saved = dict(os.environ)
    try:
        os.environ.clear()
        os.environ.update(env)
        for cell in nb.cells:
            tags = cell.metadata.get("tags", [])
            if "parameters" in tags or "injected-parameters" in tags:
                exec(cell.source, ns)                      # noqa: S102 (the repository's own notebook cells)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return ns


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_preset_is_cpu_for_a_student_ci_for_the_tests_and_papermill_wins(path):
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    nb = load_notebook_node(str(path))                                # as papermill reads it
    assert _run_parameters(nb, {})["preset"] == "cpu"                 # opened as it is: the lab's real preset
    assert _run_parameters(nb, {PRESET_ENV: "ci"})["preset"] == "ci"  # what make test sets
    injected = parameterize_notebook(nb, {"preset": "paper"})         # papermill -p preset paper (render_docs)
    assert _run_parameters(injected, {PRESET_ENV: "ci"})["preset"] == "paper"


def test_make_test_sets_the_ci_preset_and_the_solutions_switch():
    recipe = subprocess.run(["make", "-n", "-W", "pyproject.toml", "test"], cwd=REPO, capture_output=True,
                            text=True, check=True).stdout
    command = recipe[recipe.index(f"{PRESET_ENV}="):]
    assert command.startswith(f"{PRESET_ENV}=ci {SOLUTIONS_ENV}=1 "), command
    assert "-m pytest tests notebooks --nbval-lax" in command


def test_a_hand_run_of_nbval_gets_the_test_settings(monkeypatch):
    """``pytest notebooks --nbval-lax`` without make: the root conftest.py sets the same two defaults for the
    kernels; an explicit value wins, and a run without nbval is left alone."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("root_conftest", REPO / "conftest.py")
    root = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(root)

    class Config:
        def __init__(self, **options):
            self.options = options

        def getoption(self, name, default=None):
            return self.options.get(name, default)

    for key in (PRESET_ENV, SOLUTIONS_ENV):
        monkeypatch.delenv(key, raising=False)
    root.pytest_configure(Config())
    assert PRESET_ENV not in os.environ and SOLUTIONS_ENV not in os.environ
    monkeypatch.setenv(PRESET_ENV, "cpu")
    root.pytest_configure(Config(nbval_lax=True))
    assert os.environ[PRESET_ENV] == "cpu" and os.environ[SOLUTIONS_ENV] == "1"


def _exercise_cells(nb):
    return [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code" and "check_answer(" in c.source
            and "import" not in c.source.split("check_answer(")[0].splitlines()[-1]]


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if "check_answer(" in p.read_text()], ids=lambda p: p.name)
def test_exercises_are_unanswered_with_hidden_reference_answers(path):
    nb = nbformat.read(path, as_version=4)
    solution = [i for i, c in enumerate(nb.cells) if "solution" in c.metadata.get("tags", [])]
    assert len(solution) == 1, f"{path.name}: one cell tagged 'solution' holds the reference answers"
    ref = nb.cells[solution[0]]
    assert ref.metadata.get("jupyter", {}).get("source_hidden") is True, "the reference answers are collapsed"
    exercises = _exercise_cells(nb)
    assert exercises and all(i > solution[0] for i, _ in exercises), "the references are defined before use"
    for i, cell in exercises:
        src = cell.source
        assert src.count("check_answer(") == 1, f"cell {i}: one check per cell (one failure hides nothing)"
        assert "strict" not in src, f"cell {i}: a student never gets a traceback"
        answers = re.findall(r"^(answer_\w+) = (.*)$", src, flags=re.M)
        assert len(answers) == 1 and answers[0][1].split("#")[0].strip() == "...", \
            f"cell {i}: the answer is left as ... for the student: {answers}"
        reference = re.search(r"solution=(reference_\w+)\)", src)
        assert reference and f"def {reference.group(1)}()" in ref.source, f"cell {i}: solution=reference_N"
        assert not src.rstrip().endswith(";"), f"cell {i}: check_answer returns None, no ';' needed"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_results_tables_are_rendered_not_printed(path):
    src = path.read_text()
    assert "print(results_table(" not in src.replace("\\n", "\n").replace(" ", ""), \
        f"{path.name}: end the cell with results_table(...) so it shows as a table"


def test_exercise_of_notebook_00_hints_then_passes_with_its_reference(monkeypatch, capsys):
    """The real exercise cell of 00 (the toy AP), run in-process: a student's '...' and a wrong guess get a
    line each, the switch checks the hidden reference, and a broken reference fails."""
    nb = nbformat.read(REPO / "notebooks" / "00_data_and_evaluation.ipynb", as_version=4)
    toy = next(c.source for c in nb.cells if c.source.startswith("distmat = np.array("))
    ref = next(c.source for c in nb.cells if "solution" in c.metadata.get("tags", []))
    (_, exercise), = _exercise_cells(nb)
    ns: dict = {}
    exec("import numpy as np\nfrom reid_uda_lib.evaluation import evaluate\n"
         "from reid_uda_lib.analysis import check_answer\n" + toy + "\n" + ref, ns)   # noqa: S102
    monkeypatch.delenv(SOLUTIONS_ENV, raising=False)
    exec(exercise.source, ns)                                           # noqa: S102
    exec(exercise.source.replace("answer_2 = ...", "answer_2 = 0.5"), ns)  # noqa: S102
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith("no answer yet (replace the ... with yours)") and out[1].startswith("✗ ")
    assert "hint:" in out[1]
    monkeypatch.setenv(SOLUTIONS_ENV, "1")
    exec(exercise.source, ns)                                           # noqa: S102
    assert capsys.readouterr().out.startswith("✓ ")
    exec(ref.replace("3 / 5", "3 / 4"), ns)                             # a wrong reference answer  # noqa: S102
    with pytest.raises(AssertionError, match="the reference answer"):
        exec(exercise.source, ns)                                       # noqa: S102


def test_library_progress_bars_stay_when_finished():
    """leave=False leaves a blank gap in JupyterLab and, its widget closed, no state to save (a rendered copy
    then shows the bar's first text frame, 0%): every bar of the library keeps leave=True (or the default)."""
    import ast

    calls, gone = 0, []
    for path in sorted((REPO / "reid_uda_lib").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            name = getattr(node.func, "id", getattr(node.func, "attr", "")) if isinstance(node, ast.Call) else ""
            if name != "tqdm":
                continue
            calls += 1
            leave = next((k.value for k in node.keywords if k.arg == "leave"), None)
            if leave is not None and not (isinstance(leave, ast.Constant) and leave.value is True):
                gone.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert calls >= 8, calls                                 # the bars of training, features, checks, data
    assert not gone, f"bars that may vanish when finished: {gone}"
