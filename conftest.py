"""Repository-wide pytest hook: the notebook cells nbval executes are also checked as a student sees them.

``make test`` runs ``pytest tests notebooks --nbval-lax`` with ``REID_UDA_NOTEBOOK_PRESET=ci`` (each
notebook's parameters cell reads it; its default is the ``cpu`` preset a student gets) and
``REID_UDA_SOLUTIONS=1`` (each exercise checks its reference answer): nbval executes every notebook cell by
cell in kernels that inherit both and, in lax mode, compares no outputs. A hand-run ``pytest ... --nbval-lax``
gets the same two values unless they are set (:func:`pytest_configure`). After each cell has run, this hook
inspects the outputs nbval collected (``item.test_outputs``) with :func:`tools.nbcheck.output_problems`:
figures tagged ``figure`` must be images, stderr must hold no warning or error, no figure may be left as its
``<Figure size ...>`` text. The notebooks are executed once.
"""
from __future__ import annotations

import os

import pytest

#: What the notebooks' kernels inherit in a test run (``make test`` sets the same).
NOTEBOOK_TEST_ENV = {"REID_UDA_NOTEBOOK_PRESET": "ci", "REID_UDA_SOLUTIONS": "1"}


def pytest_configure(config):
    """With nbval on, default the notebook kernels to the test settings (an explicit value wins)."""
    if config.getoption("nbval", default=False) or config.getoption("nbval_lax", default=False):
        for key, value in NOTEBOOK_TEST_ENV.items():
            os.environ.setdefault(key, value)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    result = yield  # nbval executed the cell (an exception from it propagates unchanged)
    if type(item).__name__ == "IPyNbCell" and getattr(item, "test_outputs", None) is not None:
        from nbval.plugin import NbCellError

        from tools.nbcheck import output_problems

        problems = output_problems(item.test_outputs, item.cell.metadata.get("tags", ()))
        if problems:
            raise NbCellError(item.cell_num, "executed outputs fail the notebook checks:\n  - "
                              + "\n  - ".join(problems), item.cell.source)
    return result
