"""Mean-Net (LF² Eq. 4): worked EMA numbers, buffer copies, structure sync, state round-trip."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from reid_uda_lib.config import ModelConfig
from reid_uda_lib.models import MeanTeacher, build_model


def _set_linear(lin: nn.Linear, w, b) -> None:
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([w], dtype=torch.float64))
        lin.bias.copy_(torch.tensor([b], dtype=torch.float64))


def test_one_update_worked_numbers():
    student = nn.Linear(2, 1).double()
    _set_linear(student, [1.0, 2.0], 0.5)
    mt = MeanTeacher(student, momentum=0.9)
    _set_linear(student, [3.0, 4.0], -0.5)  # "an optimiser step"
    mt.update(student)
    # θ' = 0.9·θ'_old + 0.1·θ: w = 0.9·[1, 2] + 0.1·[3, 4] = [1.2, 2.2]; b = 0.9·0.5 + 0.1·(−0.5) = 0.4
    assert torch.allclose(mt.module.weight, torch.tensor([[1.2, 2.2]], dtype=torch.float64))
    assert torch.allclose(mt.module.bias, torch.tensor([0.4], dtype=torch.float64))
    mt.update(student)
    # second step: 0.9·1.2 + 0.1·3 = 1.38, 0.9·2.2 + 0.1·4 = 2.38, 0.9·0.4 + 0.1·(−0.5) = 0.31
    assert torch.allclose(mt.module.weight, torch.tensor([[1.38, 2.38]], dtype=torch.float64))
    assert torch.allclose(mt.module.bias, torch.tensor([0.31], dtype=torch.float64))
    # the student is untouched and the Mean-Net is a separate, frozen copy
    assert torch.equal(student.weight, torch.tensor([[3.0, 4.0]], dtype=torch.float64))
    assert not any(p.requires_grad for p in mt.module.parameters())


def test_buffers_are_copied_not_averaged():
    student = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    mt = MeanTeacher(student, momentum=0.99)
    for _ in range(3):
        student(torch.randn(8, 3) * 5 + 2)  # train-mode forwards move the running stats
    mt.update(student)
    bn_s, bn_t = student[1], mt.module[1]
    assert torch.equal(bn_t.running_mean, bn_s.running_mean)
    assert torch.equal(bn_t.running_var, bn_s.running_var)
    assert int(bn_t.num_batches_tracked) == 3


def test_module_stays_in_eval_mode_and_call_forwards():
    model = build_model(ModelConfig(arch="tiny"), num_classes=4).train()
    mt = MeanTeacher(model, momentum=0.5)
    mt.update(model)
    assert not mt.module.training and model.training
    x = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        assert torch.equal(mt(x)["bn"], mt.module(x)["bn"])


def test_heads_follow_the_student():
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch="tiny"), num_classes=4)
    mt = MeanTeacher(model, momentum=0.9)
    centroids = torch.nn.functional.normalize(torch.randn(6, model.feat_dim), dim=1)
    model.set_classifier("target", 6, weight=centroids)
    model.set_classifier("source", 5)  # re-created with another size
    mt.update(model)
    # new / re-shaped heads are copied, not averaged, and frozen
    assert torch.equal(mt.module.classifiers["target"].weight, centroids)
    assert torch.equal(mt.module.classifiers["source"].weight, model.classifiers["source"].weight)
    assert not mt.module.classifiers["target"].weight.requires_grad
    assert not mt.module.training
    # from now on the head is averaged like every parameter
    with torch.no_grad():
        model.classifiers["target"].weight.add_(1.0)
    mt.update(model)
    assert torch.allclose(mt.module.classifiers["target"].weight, centroids + 0.1)
    with torch.no_grad():
        out = mt(torch.randn(2, 3, 64, 32))
    assert out["logits"]["target"].shape == (2, 6)
    # the student's optimiser still owns only the student's tensors
    assert mt.module.classifiers["target"].weight.data_ptr() != model.classifiers["target"].weight.data_ptr()
    model.remove_classifier("target")
    mt.update(model)
    assert list(mt.module.classifiers) == ["source"]


def test_new_submodule_is_copied():
    student = nn.Sequential(nn.Linear(2, 2))
    mt = MeanTeacher(student, momentum=0.9)
    student.append(nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3)))  # e.g. a plug-in block
    mt.update(student)
    assert torch.equal(mt.module[1][0].weight, student[1][0].weight)
    assert isinstance(mt.module[1][1], nn.BatchNorm1d) and not mt.module[1][0].weight.requires_grad


def test_update_through_dataparallel_wrapper():
    student = nn.Linear(2, 1)
    mt = MeanTeacher(nn.DataParallel(student), momentum=0.5)
    with torch.no_grad():
        student.weight.add_(2.0)
    mt.update(nn.DataParallel(student))
    assert torch.allclose(mt.module.weight, student.weight - 1.0)  # halfway: 0.5·(w−2) + 0.5·w


def test_state_round_trip_with_extra_head():
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch="tiny"), num_classes=4)
    mt = MeanTeacher(model, momentum=0.999)
    model.set_classifier("target", 3)
    for _ in range(2):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.1)
        mt.update(model)
    state = mt.state_dict()
    other = MeanTeacher(build_model(ModelConfig(arch="tiny"), num_classes=4), momentum=0.5)
    other.load_state_dict(state)
    assert other.momentum == 0.999
    a, b = mt.module.state_dict(), other.module.state_dict()
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)
    assert not other.module.classifiers["target"].weight.requires_grad


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"momentum must be in \[0, 1\); got 1.0"):
        MeanTeacher(nn.Linear(1, 1), momentum=1.0)
    with pytest.raises(ValueError, match="expects {'module': ..., 'momentum': ...}"):
        MeanTeacher(nn.Linear(1, 1)).load_state_dict({"weight": torch.zeros(1, 1)})
