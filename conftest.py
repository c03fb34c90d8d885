"""Repository-wide pytest hook: the notebook cells nbval executes are also checked as a student sees them.

``make test`` runs ``pytest tests notebooks --nbval-lax``: nbval executes every notebook cell by cell (the
``ci`` preset is each notebook's default parameter) and, in lax mode, compares no outputs. After each cell
has run, this hook inspects the outputs nbval collected (``item.test_outputs``) with
:func:`tools.nbcheck.output_problems`: figures tagged ``figure`` must be images, stderr must hold no warning
or error, no figure may be left as its ``<Figure size ...>`` text. The notebooks are executed once.
"""
from __future__ import annotations

import pytest


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
