"""The rows of the ablation ladder, in table order, and how each one is trained.

``oracle`` and ``direct`` are the two references (SBase's loop with the target's true identities, from the
pretrained model: engine/oracle.py; the pretrained model itself); the oracle and every other row but
``direct_bn`` are UDA methods of :mod:`reid_uda_lib.engine.methods` adapting that same pretrained model. A method's extra evaluations (DCDFA's "b only", LF²'s "global only")
become sub-rows of its row.
"""
from __future__ import annotations

from typing import Iterable, Sequence

#: Every row the ladder can run, in table order: the references, DCDFA Table 1 (Base → SBase), Table 3 and
#: Table 2 (SBase + DCDFA), the adversarial baseline, then LF² Table II.
ALL_ROWS: tuple[str, ...] = ("oracle", "direct", "direct_bn", "base", "base_mb", "base_meannet", "sbase", "dcdfa_cid",
                             "dcdfa_cid_rreid", "dcdfa_cid_domain", "dcdfa", "sbase_dann", "lf2_base",
                             "lf2_nofm", "lf2", "lf2_dcdfa")
#: What ``ladder`` runs without ``--rows``: every row but ``lf2_base`` (the LF² baseline row, one more
#: UDA run per seed; ask for it with ``--rows``).
DEFAULT_ROWS: tuple[str, ...] = tuple(r for r in ALL_ROWS if r != "lf2_base")
#: The demo's headline rows (``make demo``).
HEADLINE_ROWS: tuple[str, ...] = ("oracle", "direct", "direct_bn", "sbase", "dcdfa", "lf2")

REFERENCES = ("oracle", "direct")
#: Rows that are no UDA training run: direct transfer and ``direct_bn``, the pretrained model evaluated with
#: BatchNorm statistics re-estimated on the unlabelled target train images (AdaBN; seconds, no training). It
#: shows how much of a method's gain the target statistics alone give (``uda.target_bn``).
NOT_METHODS = ("direct", "direct_bn")

LABELS = {
    "direct": "direct transfer (source only)",
    "direct_bn": "direct transfer + target BN statistics (AdaBN, no training)",
    "base": "Base (`base`)",
    "base_mb": "Base+MB (`base_mb`)",
    "base_meannet": "Base+Mean-Net (`base_meannet`)",
    "sbase": "SBase (`sbase`)",
    "dcdfa_cid": "SBase+L_CID (`dcdfa_cid`)",
    "dcdfa_cid_rreid": "SBase+L_CID+L^b_RReID (`dcdfa_cid_rreid`)",
    "dcdfa_cid_domain": "SBase+L_CID+L_Domain (`dcdfa_cid_domain`)",
    "dcdfa": "SBase+DCDFA (`dcdfa`)",
    "sbase_dann": "SBase+DANN (`sbase_dann`)",
    "lf2_base": "LF² baseline (`lf2_base`)",
    "lf2_nofm": "LF² w/o FM (`lf2_nofm`)",
    "lf2": "LF² (`lf2`)",
    "lf2_dcdfa": "LF²+DCDFA (`lf2_dcdfa`)",
}


def oracle_label(steps: int | None) -> str:
    """The oracle row's name, with its number of optimisation steps when known."""
    n = f", {steps} steps" if steps else ""
    return f"oracle (SBase with the target's true identities, from the pretrained model{n})"


def label(row: str, extra: str | None = None) -> str:
    """The table name of a row (``extra``: the name of one of its method's extra evaluations)."""
    base = oracle_label(None) if row == "oracle" else LABELS.get(row, f"`{row}`")
    return f"{base}, {extra} only" if extra else base


def parse_rows(rows: str | Iterable[str] | None, default: Sequence[str] = DEFAULT_ROWS) -> list[str]:
    """Rows asked (comma-separated or a list), checked and put in table order; ``None`` gives ``default``.

    ``direct`` is always part of a ladder (every row needs the pretrained model, and the gap column is
    measured from it), so it is added when missing.
    """
    if rows is None:
        asked = list(default)
    elif isinstance(rows, str):
        asked = [r.strip() for r in rows.split(",") if r.strip()]
    else:
        asked = [str(r) for r in rows]
    unknown = [r for r in asked if r not in ALL_ROWS]
    if unknown:
        raise ValueError(f"unknown ladder row(s) {', '.join(map(repr, unknown))}; the rows are: "
                         f"{', '.join(ALL_ROWS)}")
    if not asked:
        raise ValueError(f"no ladder row asked; the rows are: {', '.join(ALL_ROWS)}")
    wanted = set(asked) | {"direct"}
    return [r for r in ALL_ROWS if r in wanted]


def methods_of(rows: Sequence[str]) -> list[str]:
    """The UDA runs among ``rows``: the oracle and the methods (everything but ``direct`` and ``direct_bn``)."""
    return [r for r in rows if r not in NOT_METHODS]
