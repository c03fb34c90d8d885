"""Per-run metrics log (JSON lines) that survives resumes."""
from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any


class MetricsLog:
    """Append one JSON object per line to ``<run>/metrics.jsonl``.

    On resume, :meth:`truncate` drops the records of epochs that will be run again, so the log of a
    resumed run is identical to the log of an uninterrupted one.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, record: dict[str, Any]) -> None:
        with self.path.open("a") as fh:
            fh.write(json.dumps(_clean(record)) + "\n")

    def read(self) -> list[dict[str, Any]]:
        """All records. A torn last line (a kill during the append) is dropped with a warning; a bad line
        elsewhere raises ``ValueError`` naming the line."""
        if not self.path.exists():
            return []
        lines = self.path.read_text().splitlines()
        out = []
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as err:
                if n == len(lines):
                    warnings.warn(f"{self.path}: dropping the torn last line {n} (a run killed while writing "
                                  f"it): {line[:60]!r}")
                    continue
                raise ValueError(f"{self.path}: line {n} is not JSON ({err}); the metrics log is damaged") from None
        return out

    def truncate(self, stage: str, from_epoch: int, records: list[dict[str, Any]] | None = None) -> None:
        """Keep every record except those of ``stage`` with ``epoch >= from_epoch`` (and a torn last line);
        the file is rewritten (atomically) only when that changes it."""
        records = self.read() if records is None else records
        kept = [r for r in records if not (r.get("stage") == stage and r.get("epoch", -1) >= from_epoch)]
        text = "".join(json.dumps(r) + "\n" for r in kept)
        if self.path.exists() or text:
            from .checkpoint import atomic_write_text
            atomic_write_text(self.path, text)


def _clean(value: Any) -> Any:
    """Make numbers JSON-safe (tensors → floats, NaN → None) and keys strings."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def format_record(record: dict) -> str:
    """One printable line per epoch record: losses, target/source mAP and R1, label quality."""
    parts = [f"[{record['stage']}] epoch {record['epoch'] + 1}"]
    parts += [f"{k}={v:.3f}" for k, v in record.items() if k not in ("stage", "epoch", "step", "lr")
              and isinstance(v, float)]
    for split in ("target", "source") + tuple(k for k in record if k.startswith("target_")):
        if isinstance(record.get(split), dict):
            m = record[split]
            protocol = " (cross-camera)" if m.get("cross_camera_only", True) else " (all cameras)"
            parts.append(f"{split}: mAP {100 * m['mAP']:.1f} R1 {100 * m['rank1']:.1f}{protocol}")
    q = record.get("cluster")
    if isinstance(q, dict):
        parts.append(f"clusters {q.get('n_clusters')} outliers {100 * q.get('outlier_ratio', 0):.0f}% "
                     f"NMI {q.get('nmi', 0):.2f}" + (f" eps {q['eps']:.3f}" if "eps" in q else ""))
    p = record.get("probe")
    if isinstance(p, dict) and "domain_acc_b" in p:
        parts.append(f"domain acc f/b/e {p['domain_acc_f']:.2f}/{p['domain_acc_b']:.2f}/{p['domain_acc_e']:.2f}")
    if isinstance(p, dict) and "tau" in p:
        parts.append(f"tau {p['tau']:.3f}")
    a = record.get("activity")
    if isinstance(a, dict) and a:
        parts.append(" ; ".join(f"{name} {v['value']:.3f} vs chance {v['chance']:.3f}"
                                + (f" ({100 * v['grad_share']:.0f}% of the grad)" if "grad_share" in v else "")
                                + (" AT CHANCE" if v.get("at_chance") else "") for name, v in a.items()))
    return " | ".join(parts)
