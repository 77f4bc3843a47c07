"""V-Net (Milletari et al. 2016, slide 26).

Oracles: parameter counts from the per-stage conv counts written out here (paper figure and
prototxt), the stage-1 residual recomputed with F.conv3d / F.prelu, kernel sizes read off the modules.
"""
import pytest
import torch
import torch.nn.functional as F

from comp448.nets import VNET_CONVS, VNet, count_parameters
from ._overfit import assert_overfits


def expected_params(c_in, n_cls, base, left, right):
    w = [base * 2 ** s for s in range(5)]
    conv5 = lambda a, b: 125 * a * b + b + b          # conv 5^3 with bias + per-channel PReLU
    n = conv5(c_in, w[0]) + (left[0] - 1) * conv5(w[0], w[0])
    for s in range(4):
        n += 8 * w[s] * w[s + 1] + w[s + 1] + w[s + 1]                   # down conv 2^3 s2 + PReLU
        n += left[s + 1] * conv5(w[s + 1], w[s + 1])
    u = w[4]
    for j in range(4):
        skip = w[3 - j]
        n += 8 * u * skip + skip + skip                                   # up deconv 2^3 s2 + PReLU
        n += right[j] * conv5(2 * skip, 2 * skip)
        u = 2 * skip
    return n + 2 * base * n_cls + n_cls                                   # 1^3 head


def test_conv_counts_presets():
    assert VNET_CONVS["paper"] == ((1, 2, 3, 3, 3), (3, 3, 2, 1))
    assert VNET_CONVS["prototxt"] == ((1, 1, 2, 3, 3), (3, 2, 1, 1))


@pytest.mark.parametrize("convs, count", [("paper", 65_175_314), ("prototxt", 61_974_738)])
def test_default_parameter_counts(convs, count):
    net = VNet(convs=convs)
    assert count_parameters(net) == expected_params(1, 2, 16, *VNET_CONVS[convs]) == count
    n5 = sum(1 for m in net.modules() if isinstance(m, torch.nn.Conv3d) and m.kernel_size == (5, 5, 5))
    assert n5 == sum(VNET_CONVS[convs][0]) + sum(VNET_CONVS[convs][1])
    assert not any(isinstance(m, (torch.nn.BatchNorm3d, torch.nn.MaxPool3d)) for m in net.modules())
    downs = [m for m in net.modules() if isinstance(m, torch.nn.Conv3d) and m.stride == (2, 2, 2)]
    assert len(downs) == 4 and all(m.kernel_size == (2, 2, 2) for m in downs)
    assert [m.out_channels for m in downs] == [32, 64, 128, 256]


def test_custom_conv_counts():
    left, right = (2, 1, 1, 1, 1), (1, 1, 1, 2)
    assert count_parameters(VNet(1, 3, base=4, convs=(left, right))) == expected_params(1, 3, 4, left, right)


def test_stage1_residual_adds_tiled_input():
    torch.manual_seed(0)
    net = VNet(in_channels=2, num_classes=2, base=4).eval()
    x = torch.randn(1, 2, 16, 16, 16)
    conv, act = net.stage1.convs[0], net.stage1.acts[0]
    ref = F.prelu(F.conv3d(x, conv.weight, conv.bias, padding=2) + torch.cat([x, x], 1), act.weight)
    seen = {}

    def hook(m, i, o):
        seen["h"] = o.detach()
    h = net.stage1.register_forward_hook(hook)
    with torch.no_grad():
        net(x)
    h.remove()
    torch.testing.assert_close(seen["h"], ref)


@pytest.mark.parametrize("convs", ["paper", "prototxt"])
@pytest.mark.parametrize("size", [(16, 16, 16), (32, 16, 48)])
def test_forward_backward(convs, size):
    torch.manual_seed(1)
    net = VNet(1, 2, base=2, convs=convs)
    out = net(torch.randn(1, 1, *size))
    assert out.shape == (1, 2, *size)
    out.square().mean().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_small_version_overfits_one_batch():
    torch.manual_seed(0)
    net = VNet(1, 2, base=4)
    g = torch.stack(torch.meshgrid(*[torch.arange(16.0)] * 3, indexing="ij"))
    labels = (((g - 7.5) ** 2).sum(0) < 30).long()[None]
    x = labels[:, None].float() + 0.5 * torch.randn(1, 1, 16, 16, 16)
    assert_overfits(net, lambda: F.cross_entropy(net(x), labels), steps=200, lr=1e-3)


def test_size_not_divisible_names_input_and_nearest_sizes():
    with pytest.raises(ValueError, match=r"x: spatial size \(30, 16, 17\) is not divisible by 16.*30 -> 32 \(or 16\), 17 -> 16 \(or 32\)"):
        VNet(1, 2, base=2)(torch.randn(1, 1, 30, 16, 17))
    with pytest.raises(ValueError, match="8 -> 16"):
        VNet(1, 2, base=2)(torch.randn(1, 1, 8, 16, 16))


@pytest.mark.parametrize("x, exc, word", [
    (torch.randn(1, 16, 16, 16), ValueError, "x"),
    (torch.randn(1, 2, 16, 16, 16), ValueError, "channel"),
    (torch.zeros(1, 1, 16, 16, 16, dtype=torch.int32), TypeError, "floating"),
])
def test_forward_errors(x, exc, word):
    with pytest.raises(exc, match=word):
        VNet(1, 2, base=2)(x)


@pytest.mark.parametrize("kw, exc, word", [
    (dict(in_channels=3), ValueError, "in_channels"),
    (dict(convs="figure"), ValueError, "convs"),
    (dict(convs=((1, 2, 3), (3, 2, 1, 1))), ValueError, "convs"),
    (dict(convs=((1, 2, 3, 3, 0), (3, 2, 1, 1))), ValueError, "convs"),
    (dict(base=0), ValueError, "base"),
    (dict(num_classes="2"), TypeError, "num_classes"),
])
def test_constructor_errors(kw, exc, word):
    with pytest.raises(exc, match=word):
        VNet(**kw)
