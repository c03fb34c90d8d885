"""StemMaxPool2d: the channels-last CPU path gives bit-identical outputs and gradients to nn.MaxPool2d."""
import pytest
import torch
from torch import nn

from reid_uda_lib.models import build_backbone
from reid_uda_lib.models.maxpool import StemMaxPool2d


def _relu_input(shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=g).relu()             # about half zeros: many tied windows
    x[:, :, ::7] = 0.0                                       # and some all-zero rows
    return x


@pytest.mark.parametrize("shape", [(3, 5, 12, 7), (9, 4, 11, 6)])
@pytest.mark.parametrize("kernel,stride,padding", [(3, 2, 1), (2, 2, 0), (3, 1, 1)])
def test_forward_and_backward_bit_identical(shape, kernel, stride, padding):
    x = _relu_input(shape)
    ref_pool, fast_pool = nn.MaxPool2d(kernel, stride, padding), StemMaxPool2d(kernel, stride, padding)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    ya, yb = ref_pool(xa), fast_pool(xb)
    assert torch.equal(ya, yb)
    g = torch.randn(ya.shape, generator=torch.Generator().manual_seed(1))
    ya.backward(g)
    yb.backward(g)
    assert torch.equal(xa.grad, xb.grad)


def test_chunked_batches_match(monkeypatch):
    """Batches larger than one chunk are pooled piecewise and concatenated: same values, same gradient."""
    import reid_uda_lib.models.maxpool as mp
    monkeypatch.setattr(mp, "_CHUNK_ELEMENTS", 2 * 4 * 10 * 8)   # two images per chunk, 5 chunks
    x = _relu_input((9, 4, 10, 8), seed=3)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    ya, yb = nn.MaxPool2d(3, 2, 1)(xa), StemMaxPool2d(3, 2, 1)(xb)
    assert torch.equal(ya, yb)
    ya.sum().backward()
    yb.sum().backward()
    assert torch.equal(xa.grad, xb.grad)


def test_worked_values():
    x = torch.tensor([[[[1., 5., 2., 0.],
                        [3., 4., 9., 1.],
                        [0., 2., 2., 8.],
                        [7., 1., 6., 3.]]]])
    y = StemMaxPool2d(2, 2, 0)(x)
    assert y.tolist() == [[[[5., 9.], [7., 8.]]]]


def test_no_grad_and_fallbacks():
    x = _relu_input((2, 3, 8, 6))
    with torch.no_grad():
        assert torch.equal(StemMaxPool2d(3, 2, 1)(x), nn.MaxPool2d(3, 2, 1)(x))
    # ceil_mode, dilation and channels-last inputs take nn.MaxPool2d's own path
    assert torch.equal(StemMaxPool2d(3, 2, 1, ceil_mode=True)(x), nn.MaxPool2d(3, 2, 1, ceil_mode=True)(x))
    assert torch.equal(StemMaxPool2d(3, 2, 1, dilation=2)(x), nn.MaxPool2d(3, 2, 1, dilation=2)(x))
    xc = x.contiguous(memory_format=torch.channels_last)
    assert torch.equal(StemMaxPool2d(3, 2, 1)(xc), nn.MaxPool2d(3, 2, 1)(xc))
    y, i = StemMaxPool2d(3, 2, 1, return_indices=True)(x)
    assert torch.equal(i, nn.MaxPool2d(3, 2, 1, return_indices=True)(x)[1])


@pytest.mark.parametrize("arch", ["tiny", "resnet18"])
def test_backbone_uses_it_with_identical_gradients(arch):
    """The whole backbone: outputs and every parameter gradient equal those with torchvision's max-pool."""
    torch.manual_seed(0)
    fast = build_backbone(arch, last_stride=2)
    assert isinstance(fast.maxpool, StemMaxPool2d)
    ref = build_backbone(arch, last_stride=2)
    ref.load_state_dict(fast.state_dict())
    ref.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
    assert list(fast.state_dict()) == list(ref.state_dict())
    x = torch.randn(4, 3, 64, 32, generator=torch.Generator().manual_seed(2))
    ya, yb = ref(x), fast(x)
    assert torch.equal(ya, yb)
    ya.square().sum().backward()
    yb.square().sum().backward()
    for (name, pa), (_, pb) in zip(ref.named_parameters(), fast.named_parameters()):
        assert torch.equal(pa.grad, pb.grad), name
