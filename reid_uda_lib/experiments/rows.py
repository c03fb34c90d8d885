"""The rows of the ablation ladder, in table order, and how each one is trained.

``oracle`` and ``direct`` are the two references (SBase's loop with the target's true identities, from the
pretrained model: methods/oracle.py; the pretrained model itself); the oracle and every other row but
``direct_bn`` are UDA methods of :mod:`reid_uda_lib.methods.registry` adapting that same pretrained model;
the rows, their labels and costs are derived from the registry. A method's extra evaluations (DCDFA's "b only", LF²'s "global only")
become sub-rows of its row.
"""
from __future__ import annotations

from typing import Iterable, Sequence

from ..methods.registry import METHODS

#: Rows that are no UDA training run: direct transfer and ``direct_bn``, the pretrained model evaluated with
#: BatchNorm statistics re-estimated on the unlabelled target train images (AdaBN; seconds, no training). It
#: shows how much of a method's gain the target statistics alone give (``uda.target_bn``).
NOT_METHODS = ("direct", "direct_bn")
#: The demo's headline rows (``make demo``).
HEADLINE_ROWS: tuple[str, ...] = ("oracle", "direct", "direct_bn", "sbase", "dcdfa", "lf2")
#: Rows a ladder runs only when asked by ``--rows`` (the LF² baseline: one more UDA run per seed).
ON_REQUEST: tuple[str, ...] = ("lf2_base",)

#: The papers' claims as paired differences (same seed, same pretraining): (row, extra evaluation) minus (row,
#: extra), and where the claim comes from. Each paper reports the first above the second.
PAIRED: tuple[tuple[tuple[str, str | None], tuple[str, str | None], str], ...] = (
    (("dcdfa", None), ("sbase", None), "DCDFA Table 1: SBase+DCDFA above SBase"),
    (("dcdfa", "b"), ("sbase", None), "DCDFA Table 2: b alone above SBase's f"),
    (("dcdfa_cid", None), ("sbase", None), "DCDFA Table 3: L_CID alone adds a little to SBase"),
    (("dcdfa_cid_domain", None), ("sbase", None), "DCDFA Table 3: L_CID + L_Domain add to SBase"),
    (("dcdfa", None), ("dcdfa_cid_domain", None), "DCDFA Table 3: L^b_RReID adds to L_CID + L_Domain"),
    (("lf2", None), ("lf2_nofm", None), "LF² Table II: the Fusion Module adds"),
    (("lf2_nofm", None), ("lf2_base", None), "LF² Table II: part features and levels add to the baseline"),
    (("lf2_fmloss", None), ("lf2", None), "LF² + this project's FM term above LF² as printed"),
    (("lf2_dcdfa", None), ("lf2", None), "LF² + DCDFA above LF² (this project's combination)"),
)

_LABELS = {
    "direct": "direct transfer (source only)",
    "direct_bn": "direct transfer + target BN statistics (AdaBN, no training)",
}


def all_rows() -> tuple[str, ...]:
    """Every row the ladder can run, in table order: the references (the oracle), direct transfer and
    ``direct_bn``, then every registered method in registry order (DCDFA Table 1, Table 3, Table 2, the
    adversarial baseline, LF² Table II). A method added to the registry is a row at once."""
    refs = tuple(name for name, m in METHODS.items() if m.reference)
    return refs + NOT_METHODS + tuple(name for name, m in METHODS.items() if not m.reference)


def default_rows() -> tuple[str, ...]:
    """What ``ladder`` runs without ``--rows``: every row but :data:`ON_REQUEST`."""
    return tuple(r for r in all_rows() if r not in ON_REQUEST)


def row_cost(row: str) -> float:
    """The row's run time relative to SBase's (its registry entry's ``cost``; 1 for an unknown row)."""
    return METHODS[row].cost if row in METHODS else 1.0


def oracle_label(steps: int | None) -> str:
    """The oracle row's name, with its number of optimisation steps when known."""
    n = f", {steps} steps" if steps else ""
    return f"oracle (SBase with the target's true identities, from the pretrained model{n})"


def label(row: str, extra: str | None = None) -> str:
    """The table name of a row (``extra``: the name of one of its method's extra evaluations)."""
    if row == "oracle":
        base = oracle_label(None)
    else:
        base = _LABELS.get(row) or (METHODS[row].table_label() if row in METHODS else f"`{row}`")
    return f"{base}, {extra} only" if extra else base


def parse_rows(rows: str | Iterable[str] | None, default: Sequence[str] | None = None) -> list[str]:
    """Rows asked (comma-separated or a list), checked and put in table order; ``None`` gives ``default``.

    ``direct`` is always part of a ladder (every row needs the pretrained model, and the gap column is
    measured from it), so it is added when missing.
    """
    every = all_rows()
    if rows is None:
        asked = list(default_rows() if default is None else default)
    elif isinstance(rows, str):
        asked = [r.strip() for r in rows.split(",") if r.strip()]
    else:
        asked = [str(r) for r in rows]
    unknown = [r for r in asked if r not in every]
    if unknown:
        raise ValueError(f"unknown ladder row(s) {', '.join(map(repr, unknown))}; the rows are: "
                         f"{', '.join(every)}")
    if not asked:
        raise ValueError(f"no ladder row asked; the rows are: {', '.join(every)}")
    wanted = set(asked) | {"direct"}
    return [r for r in every if r in wanted]


def methods_of(rows: Sequence[str]) -> list[str]:
    """The UDA runs among ``rows``: the oracle and the methods (everything but ``direct`` and ``direct_bn``)."""
    return [r for r in rows if r not in NOT_METHODS]
