"""Memory bank + circle loss (DCDFA sec. 4.1; Sun et al. 2020 Eq. 4, 6–8)."""
from __future__ import annotations

import math

import pytest
import torch

from reid_uda_lib.losses import MemoryBank

R = 1 / math.sqrt(2)


def _toy(momentum: float = 0.2) -> MemoryBank:
    """Ns = 2 prototypes e1, e2; Nt = 3 instances: (1,1)/√2 and (−1,0) with pseudo label 0, (0,−1) outlier."""
    mb = MemoryBank(2, 3, 2, momentum=momentum, scale=16.0, margin=0.25)
    mb.init_source(torch.tensor([[3.0, 0.0], [0.0, 0.5]]))  # stored normalised: e1, e2
    mb.init_target(torch.tensor([[1.0, 1.0], [-2.0, 0.0], [0.0, -1.0]]), torch.tensor([0, 0, -1]))
    return mb


def test_init_normalises():
    mb = _toy()
    assert torch.allclose(mb.source, torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    assert torch.allclose(mb.target, torch.tensor([[R, R], [-1.0, 0.0], [0.0, -1.0]]))
    assert mb.slot_labels().tolist() == [0, 1, 2, 2, -1]  # target label y → Ns + y; outlier → −1


def test_masks_for_both_domains_and_outliers():
    mb = _toy()
    pos, neg = mb.masks(torch.tensor([1, 0]), "source")
    assert pos.tolist() == [[False, True, False, False, False], [True, False, False, False, False]]
    assert torch.equal(neg, ~pos)
    pos, neg = mb.masks(torch.tensor([0, -1]), "target")
    # a target query with pseudo label 0: both label-0 instances; never the outlier slot, never a prototype
    assert pos.tolist() == [[False, False, True, True, False], [False] * 5]
    assert neg[0].tolist() == [True, True, False, False, True]  # outlier slot is a negative


# Circle-loss logits with γ = 16, m = 0.25 (α detached):
#   positive: −γ·α_p·(s − Δ_p) = −γ·(1.25 − s)(s − 0.75)   → s = 1: −16·0.25·0.25 = −1
#   negative:  γ·α_n·(s − Δ_n) =  γ·[s + 0.25]_+·(s − 0.25) → s = 0: −1; s = 1/√2: 16·(0.5 − 0.0625) = 7;
#                                                             s ≤ −0.25: 0 (α_n clamps to 0)
def test_worked_value_source_query():
    mb = _toy()
    # query (2, 0) → e1, pid 0. sims to slots: [1, 0, 1/√2, −1, 0]; positive: prototype 0
    # negatives: prototype 1 (s=0 → −1), t0 (1/√2 → 7), t1 (−1 → 0), t2 (0 → −1)
    expected = math.log(1 + (math.exp(-1) + math.exp(7) + math.exp(0) + math.exp(-1)) * math.exp(-1))
    loss = mb.loss(torch.tensor([[2.0, 0.0]]), torch.tensor([0]), "source")
    assert loss.item() == pytest.approx(expected, rel=1e-5)  # ≈ 6.00404


def test_worked_value_target_query():
    mb = _toy()
    # query (1, 1)/√2, pseudo label 0. positives t0 (s=1 → −1) and t1 (s=−1/√2 →
    #   −16·(1.25 + 1/√2)(−1/√2 − 0.75) = 16·((1 + 1/√2)² − 0.0625) = 45.627417)
    # negatives: prototypes (s = 1/√2 → 7 each), outlier t2 (s = −1/√2 → 0)
    lp = 16 * ((1 + R) ** 2 - 0.0625)
    expected = math.log(1 + (2 * math.exp(7) + 1) * (math.exp(-1) + math.exp(lp)))
    loss = mb.loss(torch.tensor([[1.0, 1.0]]), torch.tensor([0]), "target")
    assert loss.item() == pytest.approx(expected, rel=1e-5)  # ≈ 53.32


def _brute(mb: MemoryBank, f: torch.Tensor, labels: list[int], domain: str) -> float:
    """Circle loss (Sun et al. Eq. 4) with explicit loops, in python floats."""
    bank = torch.cat([mb.source, mb.target]).double()
    slot = [j for j in range(mb.num_source)] + \
           [mb.num_source + int(y) if y >= 0 else None for y in mb.target_labels.tolist()]
    g, m = mb.scale, mb.margin
    losses = []
    for q, y in zip(torch.nn.functional.normalize(f.double(), dim=1), labels):
        qlab = y if domain == "source" else (mb.num_source + y if y >= 0 else "none")
        sum_p = sum_n = 0.0
        n_pos = 0
        for k in range(len(bank)):
            s = float(q @ bank[k])
            if slot[k] == qlab:
                n_pos += 1
                sum_p += math.exp(-g * max(1 + m - s, 0.0) * (s - (1 - m)))
            else:
                sum_n += math.exp(g * max(s + m, 0.0) * (s - m))
        if n_pos:
            losses.append(math.log(1 + sum_n * sum_p))
    return sum(losses) / len(losses)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("domain", ["source", "target"])
def test_matches_brute_force(seed, domain):
    g = torch.Generator().manual_seed(seed)
    mb = MemoryBank(5, 12, 8, scale=16.0, margin=0.25)
    mb.init_source(torch.randn(5, 8, generator=g))
    mb.init_target(torch.randn(12, 8, generator=g), torch.tensor([0, 1, 2, 3, -1, 0, 1, 2, 3, -1, 0, 1]))
    f = torch.randn(6, 8, generator=g) * 3
    # one target query is an outlier (no positive: left out of the mean)
    labels = [0, 1, 4, 2, 3, 1] if domain == "source" else [0, 1, 2, 3, -1, 0]
    ours = mb.loss(f, torch.tensor(labels), domain)
    assert ours.item() == pytest.approx(_brute(mb, f, labels, domain), rel=1e-5)


def test_only_the_query_gets_gradients():
    mb = _toy()
    f = torch.tensor([[1.0, 0.2], [0.3, 1.0]], requires_grad=True)
    mb.loss(f, torch.tensor([0, 1]), "source").backward()
    assert torch.isfinite(f.grad).all() and f.grad.abs().sum() > 0
    assert not mb.bank.requires_grad and mb.bank.grad is None


def test_no_valid_query_gives_zero_with_grad():
    mb = _toy()
    f = torch.tensor([[1.0, 0.0]], requires_grad=True)
    loss = mb.loss(f, torch.tensor([-1]), "target")  # an outlier query has no positive
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(f.grad, torch.zeros_like(f))


def test_outlier_query_is_left_out_of_the_mean():
    mb = _toy()
    f = torch.tensor([[1.0, 1.0], [0.0, 1.0]])
    both = mb.loss(f, torch.tensor([0, -1]), "target")
    assert both.item() == pytest.approx(mb.loss(f[:1], torch.tensor([0]), "target").item())


def test_update_source_worked_value():
    mb = _toy(momentum=0.2)
    # pid 1 twice: (2, 0) and (0, 3) → normalised e1, e2 → mean (0.5, 0.5)
    # slot 1 ← norm(0.2·(0, 1) + 0.8·(0.5, 0.5)) = norm(0.4, 0.6) = (0.5547002, 0.8320503)
    mb.update_source(torch.tensor([[2.0, 0.0], [0.0, 3.0]]), torch.tensor([1, 1]))
    assert torch.allclose(mb.source[1], torch.tensor([0.5547002, 0.8320503]))
    assert torch.equal(mb.source[0], torch.tensor([1.0, 0.0]))  # untouched
    assert torch.allclose(mb.target, _toy().target)  # target part untouched


def test_update_target_worked_value_and_momentum_direction():
    mb = _toy(momentum=0.5)
    # slot 2 = (0, −1) with f = (1, 0): norm(0.5·(0, −1) + 0.5·(1, 0)) = (1/√2, −1/√2)
    mb.update_target(torch.tensor([[4.0, 0.0]]), torch.tensor([2]))
    assert torch.allclose(mb.target[2], torch.tensor([R, -R]))
    assert torch.allclose(mb.target[:2], _toy().target[:2])
    keep = _toy(momentum=1.0)  # μ is the weight of the old slot: 1 keeps it, 0 replaces it
    keep.update_target(torch.tensor([[4.0, 0.0]]), torch.tensor([2]))
    assert torch.allclose(keep.target[2], torch.tensor([0.0, -1.0]))
    replace = _toy(momentum=0.0)
    replace.update_target(torch.tensor([[4.0, 0.0], [0.0, 2.0]]), torch.tensor([2, 2]))  # repeated index: mean
    assert torch.allclose(replace.target[2], torch.tensor([R, R]))


@pytest.mark.parametrize("device", ["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
def test_device_and_state_dict_round_trip(device):
    mb = _toy().to(device)
    assert mb.bank.device.type == device and mb.target_labels.device.type == device
    assert set(mb.state_dict()) == {"bank", "target_labels", "source_ready", "target_ready"}
    fresh = MemoryBank(2, 3, 2).to(device)
    fresh.load_state_dict(mb.state_dict())
    f = torch.tensor([[1.0, 0.5]], device=device)
    assert fresh.loss(f, torch.tensor([0], device=device), "target").item() == \
        mb.loss(f, torch.tensor([0], device=device), "target").item()
    double = _toy().to(torch.float64)
    assert double.loss(torch.tensor([[1.0, 0.5]]), torch.tensor([0]), "source").dtype == torch.float64


def test_clear_errors():
    mb = MemoryBank(2, 3, 2)
    with pytest.raises(RuntimeError, match="source part of the bank is not initialised; call init_source"):
        mb.loss(torch.zeros(1, 2), torch.tensor([0]), "source")
    with pytest.raises(ValueError, match=r"source prototypes must have shape \(2, 2\); got \(2, 5\)"):
        mb.init_source(torch.zeros(2, 5))
    with pytest.raises(ValueError, match=r"target pseudo labels must be a \(3,\) integer tensor; got \(2,\)"):
        mb.init_target(torch.zeros(3, 2), torch.tensor([0, 1]))
    mb = _toy()
    with pytest.raises(ValueError, match=r"query features f must have shape \(B, 2\); got \(1, 3\)"):
        mb.loss(torch.zeros(1, 3), torch.tensor([0]), "source")
    with pytest.raises(ValueError, match=r"source query labels must lie in \[0, 2\); got values in \[0, 2\]"):
        mb.loss(torch.zeros(2, 2), torch.tensor([0, 2]), "source")
    with pytest.raises(ValueError, match=r"target query pseudo labels must lie in \[-1, 1\); got values in \[1, 1\]"):
        mb.loss(torch.zeros(1, 2), torch.tensor([1]), "target")
    with pytest.raises(ValueError, match="domain must be 'source' or 'target'; got 'src'"):
        mb.loss(torch.zeros(1, 2), torch.tensor([0]), "src")
    with pytest.raises(ValueError, match=r"target indices must lie in \[0, 3\); got values in \[3, 3\]"):
        mb.update_target(torch.zeros(1, 2), torch.tensor([3]))
    with pytest.raises(ValueError, match=r"source pids must be a \(2,\) integer tensor"):
        mb.update_source(torch.zeros(2, 2), torch.tensor([0]))
    with pytest.raises(ValueError, match=">= 0 or -1"):
        mb.set_target_labels(torch.tensor([0, -2, 1]))
