"""Diagnostics computed from trained models: DCDFA's disentanglement probes."""
from .disentanglement import (attention_stats, dcdfa_features, linear_probe_domain, probe_items, run_probes,
                              swap_test)

__all__ = ["attention_stats", "dcdfa_features", "linear_probe_domain", "probe_items", "run_probes", "swap_test"]
