"""The markdown of ``gpu_check.py``: one file, a header naming the device, the commit and the mode, then one
table per section (or the line saying why it was skipped). Tables through
:func:`reid_uda_lib.experiments.tables.md_table`, the project's one table writer."""
from __future__ import annotations

from reid_uda_lib.experiments.tables import md_table

STEP_HEADER = ["method", "images per domain", "images/step", "amp", "bn_samples", "ms/step (median)", "images/s",
               "peak allocated MiB", "peak reserved MiB", "status"]


def _table(header: list[str], rows: list[list], align: str) -> str:
    """``md_table`` with ``|`` inside cells escaped (error messages and notes may hold one)."""
    return md_table(header, [[str(c).replace("|", "\\|") for c in r] for r in rows], align=align)


def _f(v, fmt: str = "{:.1f}", none: str = "n/a") -> str:
    return none if v is None else fmt.format(v)


def _steps(sec: dict) -> list[str]:
    c = sec["config"]
    out = [f"Preset {c['preset']}: {c['arch']} at {c['height']}x{c['width']} (last stride {c['last_stride']}), "
           f"K = {c['num_instances']} images per identity, weights: {c['weights']}; "
           f"{', '.join(map(str, c['batches']))} images per domain (the preset's: "
           f"{c['preset_batch']}); BatchNorm groups of {c['bn_groups']} against whole-batch (0); "
           f"{c['warmup']} warm-up + {c['steps']} timed steps per row; {c['problem']}; {c['inputs']}.", ""]
    rows, grouped = [], {}
    order = {m: i for i, m in enumerate(dict.fromkeys(r["method"] for r in sec["rows"]))}     # as measured
    for r in sorted(sec["rows"], key=lambda r: (order[r["method"]], ("off", "bf16", "fp16").index(r["amp"]),
                                                 -r["bn_samples"], r["batch"])):
        status = r.get("status", "")
        if status.startswith("skipped") and "not enough time" not in status:
            grouped.setdefault((r["amp"], status), []).append(r)      # e.g. every fp16 row on a CPU: one line
            continue
        measured = status == "measured"
        cells = [_f(r.get("ms_median")), _f(r.get("images_per_s")), _f(r.get("peak_mib"), "{:.0f}"),
                 _f(r.get("reserved_mib"), "{:.0f}")] if measured else [""] * 4
        rows.append([r["method"], str(r["batch"]), str(r.get("images", "")), r["amp"], str(r["bn_samples"]),
                     *cells, "measured" if measured else status + (f" ({r['note']})" if r.get("note") else "")])
    for (amp, status), rs in grouped.items():
        rows.append([", ".join(dict.fromkeys(r["method"] for r in rs)),
                     ", ".join(map(str, sorted({r["batch"] for r in rs}))), "", amp,
                     ", ".join(map(str, sorted({r["bn_samples"] for r in rs}, reverse=True))), "", "", "", "",
                     status])
    return out + [_table(STEP_HEADER, rows, align="lrrlrrrrrl")]


def _clustering(sec: dict) -> list[str]:
    c = sec["config"]
    out = [f"N = {c['n']:,}, d = {c['dim']}, {c['features']}; CPU side: torch threads {c['cpu_threads']}.", ""]
    rows = [[r["task"], _f(r.get("device_s"), "{:.3f}", ""), _f(r.get("cpu_s"), "{:.3f}", ""),
             _f(r.get("ratio"), "{:.1f}x", ""), r.get("agreement", ""), r["status"]] for r in sec["rows"]]
    return out + [_table(["task", "device s", "CPU s", "CPU / device", "agreement", "status"], rows,
                           align="lrrrll")]


def _resume(sec: dict) -> list[str]:
    c = sec["config"]
    out = [f"{c['arch']} at {c['height']}x{c['width']}, {c['batch']} images per domain, bn_samples "
           f"{c['bn_samples']}: two steps, checkpoint, third step; against the checkpoint loaded into a fresh "
           "state and the same third step.", ""]
    rows = []
    for r in sec["rows"]:
        det = "n/a (CPU)" if r.get("cudnn_deterministic") is None else str(r["cudnn_deterministic"])
        measured = r.get("status") == "measured"
        rows.append([r["method"], r["amp"], det, ("yes" if r["exact"] else "no") if measured else "",
                     _f(r.get("max_abs_diff"), "{:.2e}", "") if measured else "",
                     str(r.get("tensors", "")), r["status"]])
    return out + [_table(["method", "amp", "cudnn.deterministic", "bit-identical", "max abs difference",
                            "tensors", "status"], rows, align="lllrrrl")]


def _capacity(sec: dict) -> list[str]:
    out = [f"Formula: {sec['formula']}.", "", f"Schedule: {sec['schedule']}.", ""]
    cards = [c[0] for c in sec["cards"]]
    rows = []
    for r in sec["rows"]:
        fit = r.get("a_mib") is not None
        rows.append([r["method"], r["amp"], str(r["bn_samples"]),
                     f"{r['a_mib']:.0f} + {r['c_mib_per_image']:.1f} b" if fit else r.get("note", ""),
                     *[_f(r.get(f"max_batch_{c.replace(' ', '')}"), "{}", "") for c in cards],
                     _f(r.get("schedule_h"), "{:.1f}", "") + (f" ({r['schedule_batch']}/domain)"
                                                               if r.get("schedule_h") is not None else ""),
                     _f(r.get("clustering_h"), "{:.2f}", "")])
    header = ["method", "amp", "bn_samples", "peak MiB, b images per domain",
              *[f"largest batch, {c}" for c in cards], "80 x 400 steps, h", "+ clustering, h"]
    return out + [_table(header, rows, align="lllr" + "r" * len(cards) + "rr")]


def _environment(sec: dict) -> list[str]:
    return [_table(["field", "value"], [[k, str(v)] for k, v in sec["fields"].items()], align="ll")]


RENDER = {"environment": _environment, "paper_steps": _steps, "lab_steps": _steps, "clustering": _clustering,
          "resume": _resume, "capacity": _capacity}


def render(results: dict) -> str:
    """The whole markdown file from the JSON record."""
    env = results["sections"].get("environment", {}).get("fields", {})
    lines = [f"# GPU check: {env.get('device name', '?')} ({results['mode']})", "",
             f"Commit {env.get('commit', '?')}, {env.get('date (UTC)', '?')}; `{results['command']}`; budget "
             f"{results['budget_s']:.0f} s, used {results['elapsed_s']:.0f} s."
             + (f" Skipped or cut short: {', '.join(results['skipped'])}." if results["skipped"] else ""), ""]
    for name, sec in results["sections"].items():
        lines += [f"## {sec['title']}", ""]
        if sec["status"] in ("measured", "partial"):
            lines += RENDER[name](sec)
            if sec["status"] == "partial":
                lines += ["", f"Partial: {sec['reason']}."]
        else:
            lines.append(f"{sec['status']}" + (f": {sec['reason']}" if sec.get("reason") else "") + ".")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
