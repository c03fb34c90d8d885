"""reid_uda_lib: unsupervised domain-adaptive person re-identification (SBase, DCDFA, LF2)."""
__version__ = "0.1.0"
