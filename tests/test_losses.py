"""CE with label smoothing, batch-hard triplet (LF² Eq. 9), softmax triplet (LF² Eq. 6–7)."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from reid_uda_lib.losses import batch_hard_triplet, cross_entropy_ls, softmax_triplet

# -- cross-entropy with label smoothing ----------------------------------------------------------------


def test_ce_ls_worked_value():
    logits = torch.tensor([[0.0, math.log(3.0)]])  # p = [1/4, 3/4]
    # CE = −ln(3/4) = 0.2876821; mean_k(−ln p_k) = (ln 4 + ln 4/3)/2 = 0.8369882
    # L = 0.9·0.2876821 + 0.1·0.8369882 = 0.3426127
    assert cross_entropy_ls(logits, torch.tensor([1]), epsilon=0.1).item() == pytest.approx(0.3426127, abs=1e-6)
    assert cross_entropy_ls(logits, torch.tensor([1]), epsilon=0.0).item() == pytest.approx(0.2876821, abs=1e-6)


def test_ce_ls_matches_torch_label_smoothing():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(16, 11, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 11, (16,), generator=g)
    ours = cross_entropy_ls(logits, y, epsilon=0.1)
    ref = F.cross_entropy(logits, y, label_smoothing=0.1)
    assert ours.item() == pytest.approx(ref.item(), rel=1e-6)
    ours.backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


def test_ce_ls_errors():
    with pytest.raises(ValueError, match=r"targets must be class indices in \[0, 3\); got values in \[-1, 2\]"):
        cross_entropy_ls(torch.zeros(2, 3), torch.tensor([-1, 2]))
    with pytest.raises(ValueError, match=r"targets must be a \(B,\) tensor with B = 2"):
        cross_entropy_ls(torch.zeros(2, 3), torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match=r"logits must be a \(B, K\) tensor"):
        cross_entropy_ls(torch.zeros(3), torch.tensor([0]))
    with pytest.raises(ValueError, match="epsilon must be in"):
        cross_entropy_ls(torch.zeros(1, 3), torch.tensor([0]), epsilon=1.5)


# -- triplets: worked values ---------------------------------------------------------------------------
# Four points on a line, x = 0, 2, 3, 6 with labels 0, 0, 1, 1.
#   anchor 0: hardest pos d(0,2)=2, hardest neg min(d(0,3)=3, d(0,6)=6)=3
#   anchor 2: pos 2, neg min(1, 4)=1;  anchor 3: pos d(3,6)=3, neg min(3, 1)=1;  anchor 6: pos 3, neg min(6, 4)=4
# d_ap − d_an = −1, 1, 2, −1.
X = torch.tensor([[0.0, 0.0], [2.0, 0.0], [3.0, 0.0], [6.0, 0.0]], dtype=torch.float64)
Y = torch.tensor([0, 0, 1, 1])


def test_batch_hard_triplet_worked_value():
    # hinge with m = 0.3: max(0, 0.3 + [−1, 1, 2, −1]) = [0, 1.3, 2.3, 0] → mean 0.9
    assert batch_hard_triplet(X, Y, margin=0.3).item() == pytest.approx(0.9, abs=1e-6)


def test_soft_margin_and_softmax_triplet_worked_value():
    # log(1 + e^{[−1, 1, 2, −1]}) = [0.3132617, 1.3132617, 2.1269280, 0.3132617] → mean 1.0166783
    assert batch_hard_triplet(X, Y, margin=None).item() == pytest.approx(1.0166783, abs=1e-6)
    # LF² Eq. 7: −log(e^{d_an} / (e^{d_ap} + e^{d_an})) = log(1 + e^{d_ap − d_an}): the same numbers
    assert softmax_triplet(X, Y).item() == pytest.approx(1.0166783, abs=1e-6)


def test_anchors_without_positive_are_excluded():
    # labels 0, 0, 1, 2: anchors 3 and 6 have no positive; anchor 0: 0.3+2−3 → 0; anchor 2: 0.3+2−1 = 1.3
    assert batch_hard_triplet(X, torch.tensor([0, 0, 1, 2]), margin=0.3).item() == pytest.approx(0.65, abs=1e-6)


@pytest.mark.parametrize("labels", [[0, 1, 2, 3], [5, 5, 5, 5]])
@pytest.mark.parametrize("loss", ["hard", "soft", "softmax"])
def test_no_valid_anchor_gives_zero_with_grad(labels, loss):
    x = X.clone().requires_grad_(True)
    y = torch.tensor(labels)
    value = {"hard": lambda: batch_hard_triplet(x, y), "soft": lambda: batch_hard_triplet(x, y, margin=None),
             "softmax": lambda: softmax_triplet(x, y)}[loss]()
    assert value.item() == 0.0 and value.requires_grad
    value.backward()
    assert torch.equal(x.grad, torch.zeros_like(x))


def test_large_distances_do_not_overflow():
    x = torch.tensor([[0.0], [1.0], [1000.0], [3000.0]])
    value = softmax_triplet(x, torch.tensor([0, 0, 1, 1]))
    # d_ap − d_an per anchor: 1 − 1000, 1 − 999, 2000 − 999 = 1001, 2000 − 2999; a naive e^{2000} is inf,
    # log(1 + e^{1001}) = 1001 (+e^{−1001}) and the others are ≈ 0 → mean 1001/4 = 250.25
    assert value.item() == pytest.approx(250.25, rel=1e-4)


# -- triplets: brute force -----------------------------------------------------------------------------

def _brute(x: torch.Tensor, y: torch.Tensor, kind: str, margin: float = 0.3) -> torch.Tensor:
    terms = []
    n = len(y)
    for i in range(n):
        pos = [torch.linalg.norm(x[i] - x[j]) for j in range(n) if j != i and y[j] == y[i]]
        neg = [torch.linalg.norm(x[i] - x[j]) for j in range(n) if y[j] != y[i]]
        if not pos or not neg:
            continue
        d_ap, d_an = max(pos), min(neg)
        if kind == "hard":
            terms.append(torch.clamp(margin + d_ap - d_an, min=0))
        elif kind == "soft":
            terms.append(torch.log1p(torch.exp(d_ap - d_an)))
        else:  # LF² Eq. 7 literally
            terms.append(-torch.log(torch.exp(d_an) / (torch.exp(d_ap) + torch.exp(d_an))))
    return torch.stack(terms).mean()


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("kind", ["hard", "soft", "softmax"])
def test_triplets_match_brute_force_values_and_gradients(seed, kind):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(12, 5, generator=g, dtype=torch.float64)
    y = torch.randint(0, 4, (12,), generator=g)
    y[-1] = 99  # an anchor with no positive
    fn = {"hard": lambda a: batch_hard_triplet(a, y, margin=0.3),
          "soft": lambda a: batch_hard_triplet(a, y, margin=None),
          "softmax": lambda a: softmax_triplet(a, y)}[kind]
    # distances are computed in float32 inside the loss (AMP-safe); compare at float32 precision
    xa = x.clone().requires_grad_(True)
    xb = x.clone().requires_grad_(True)
    ours, ref = fn(xa), _brute(xb, y, kind)
    assert ours.item() == pytest.approx(ref.item(), rel=1e-5, abs=1e-6)
    ours.backward()
    ref.backward()
    assert torch.allclose(xa.grad, xb.grad, atol=1e-5)
    assert xa.grad.abs().sum() > 0


def test_duplicate_features_keep_gradients_finite():
    x = torch.tensor([[1.0, 2.0], [1.0, 2.0], [1.5, 2.0], [4.0, 0.0]], requires_grad=True)
    loss = batch_hard_triplet(x, torch.tensor([0, 0, 1, 1]), margin=0.3)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(x.grad).all()


def test_triplet_shape_errors():
    with pytest.raises(ValueError, match=r"batch_hard_triplet: features must be a \(B, C\) tensor; got shape \(4,\)"):
        batch_hard_triplet(torch.zeros(4), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"softmax_triplet: labels must be a \(B,\) tensor with B = 4"):
        softmax_triplet(torch.zeros(4, 2), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="labels must be an integer tensor; got torch.float32"):
        batch_hard_triplet(torch.zeros(4, 2), torch.zeros(4))
    with pytest.raises(ValueError, match="margin must be >= 0 or None"):
        batch_hard_triplet(torch.zeros(4, 2), torch.zeros(4, dtype=torch.long), margin=-1.0)
