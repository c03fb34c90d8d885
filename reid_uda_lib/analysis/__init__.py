"""Diagnostics computed from trained models: DCDFA's disentanglement probes, LF²'s Fusion Module attention,
finished runs loaded back, and the notebooks' exercise checks."""
from ..methods.dcdfa_probes import (attention_stats, dcdfa_features, linear_probe_domain, probe_items, run_probes,
                                    swap_test)
from .fusion import fusion_attention
from .notes import preset_note
from .runs import LoadedRun, load_run
from .selfcheck import check_answer

__all__ = ["attention_stats", "dcdfa_features", "linear_probe_domain", "probe_items", "run_probes", "swap_test",
           "fusion_attention", "LoadedRun", "load_run", "check_answer", "preset_note"]
