"""DeepResolve (Chaudhari et al. 2018, slide 28), interpolate_slices and thick_slices.

Oracles: NumPy's np.interp along the slice axis (centre-aligned positions, clamped edges), a plain
loop average for thick slices, the parameter count from the layer list written out here, the
identity "untrained network = interpolation" (zero-initialised last layer).
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from comp448.nets import DeepResolve, count_parameters, interpolate_slices, thick_slices
from ._overfit import assert_overfits


def test_default_parameter_count():
    expected = (27 * 1 * 64 + 64) + 18 * (27 * 64 * 64 + 64) + (27 * 64 * 1 + 1)
    net = DeepResolve()
    assert count_parameters(net) == expected == 1_995_329
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv3d)]
    assert len(convs) == 20 and all(m.kernel_size == (3, 3, 3) for m in convs)


def test_linear_interpolation_matches_numpy_interp():
    torch.manual_seed(0)
    x = torch.randn(2, 1, 5, 3, 4, dtype=torch.float64)
    f = 3
    out = interpolate_slices(x, f, mode="linear")
    assert out.shape == (2, 1, 15, 3, 4)
    pos = (np.arange(5 * f) + 0.5) / f - 0.5                       # thin-slice centres in thick-slice units
    xn = x.numpy()
    ref = np.apply_along_axis(lambda v: np.interp(pos, np.arange(5), v), 2, xn)
    np.testing.assert_allclose(out.numpy(), ref, atol=1e-12)


@pytest.mark.parametrize("mode", ["cubic", "linear", "nearest"])
@pytest.mark.parametrize("axis", [2, 3, -1])
def test_thin_slices_at_thick_centres_reproduce_input(mode, axis):
    torch.manual_seed(1)
    x = torch.randn(1, 2, 4, 5, 6, dtype=torch.float64)
    out = interpolate_slices(x, 3, slice_axis=axis, mode=mode)
    ax = axis % 5
    expected_shape = list(x.shape)
    expected_shape[ax] *= 3
    assert list(out.shape) == expected_shape
    idx = torch.arange(1, expected_shape[ax], 3)                   # thin slice 3i+1 is at the centre of thick i
    torch.testing.assert_close(out.index_select(ax, idx), x)


def test_thick_slices_is_group_mean():
    torch.manual_seed(2)
    x = torch.randn(1, 1, 6, 3, 3)
    t = thick_slices(x, 2)
    assert t.shape == (1, 1, 3, 3, 3)
    for i in range(3):
        torch.testing.assert_close(t[:, :, i], (x[:, :, 2 * i] + x[:, :, 2 * i + 1]) / 2)
    t4 = thick_slices(x, 3, slice_axis=4)
    torch.testing.assert_close(t4[..., 0], x[..., :3].mean(-1))


def test_untrained_network_returns_the_interpolation():
    torch.manual_seed(3)
    net = DeepResolve(scale_factor=2, width=8, depth=3)
    x = torch.randn(1, 1, 4, 6, 6)
    torch.testing.assert_close(net(x), interpolate_slices(x, 2))


@pytest.mark.parametrize("axis, size, expected", [(2, (3, 5, 7), (9, 5, 7)), (4, (3, 5, 7), (3, 5, 21))])
def test_forward_backward_shapes(axis, size, expected):
    torch.manual_seed(4)
    net = DeepResolve(in_channels=2, scale_factor=3, width=4, depth=3, slice_axis=axis, interpolation="linear")
    out = net(torch.randn(2, 2, *size))
    assert out.shape == (2, 2, *expected)
    out.square().mean().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_small_version_overfits_one_batch():
    torch.manual_seed(0)
    net = DeepResolve(scale_factor=2, width=8, depth=4)
    thin = torch.randn(1, 1, 8, 8, 8)
    thick = thick_slices(thin, 2)
    assert_overfits(net, lambda: F.mse_loss(net(thick), thin), steps=500, lr=3e-3)   # L2 loss, as reported


@pytest.mark.parametrize("call, exc, word", [
    (lambda: DeepResolve(width=2, depth=2)(torch.randn(1, 2, 4, 4, 4)), ValueError, "channel"),
    (lambda: DeepResolve(width=2, depth=2)(torch.randn(1, 4, 4, 4)), ValueError, "x"),
    (lambda: interpolate_slices(torch.randn(1, 1, 4, 4), 2), ValueError, "x"),
    (lambda: interpolate_slices(torch.randn(1, 1, 4, 4, 4), 0), ValueError, "scale_factor"),
    (lambda: interpolate_slices(torch.randn(1, 1, 4, 4, 4), 2, mode="spline"), ValueError, "mode"),
    (lambda: interpolate_slices(torch.randn(1, 1, 4, 4, 4), 2, slice_axis=1), ValueError, "slice_axis"),
    (lambda: interpolate_slices(torch.zeros(1, 1, 4, 4, 4, dtype=torch.long), 2), TypeError, "x"),
    (lambda: thick_slices(torch.randn(1, 1, 7, 4, 4), 2), ValueError, "6 or 8"),
    (lambda: thick_slices(torch.randn(1, 1, 8, 4, 4), 2.0), TypeError, "factor"),
    (lambda: DeepResolve(out_channels=2), ValueError, "out_channels"),
    (lambda: DeepResolve(depth=1), ValueError, "depth"),
    (lambda: DeepResolve(width=0), ValueError, "width"),
    (lambda: DeepResolve(interpolation="tricubic"), ValueError, "interpolation"),
    (lambda: DeepResolve(slice_axis=0), ValueError, "slice_axis"),
])
def test_errors(call, exc, word):
    with pytest.raises(exc, match=word):
        call()
