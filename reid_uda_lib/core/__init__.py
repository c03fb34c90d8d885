"""What the methods and the training loops share: the data loaders a config asks for (:mod:`.loaders`),
features and evaluation of a model (:mod:`.features`), the target BatchNorm statistics (:mod:`.bn_stats`) and
the optimiser, schedule, supervised terms and NaN guard (:mod:`.training`).
"""
