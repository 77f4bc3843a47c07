"""VoxResNet (Chen et al. 2018, slide 27).

Oracles: the 25-layer count and a parameter count from the layer list written out here, the VoxRes
identity x + F(x) checked with the body zeroed, the fused output recomputed as the sum of the four
side outputs, deconvolution output sizes (n -> s*n) computed by hand.
"""
import pytest
import torch
import torch.nn.functional as F

from comp448.nets import VoxRes, VoxResNet, count_parameters, side_outputs
from ._overfit import assert_overfits


def expected_params(c_in, n_cls, b, n_vox=2, side=4):
    c = 2 * b
    conv = lambda a, o, k=3: k ** 3 * a * o + o
    bn = lambda ch: 2 * ch
    n = conv(c_in, b) + bn(b) + conv(b, b) + bn(b)                      # conv1a, conv1b
    n += conv(b, c) + 2 * conv(c, c) + 3 * n_vox * (2 * bn(c) + 2 * conv(c, c)) + 2 * bn(c)   # conv1c, conv4, conv7, VoxRes, BN before conv4/7
    n += 3 * bn(c)                                                      # BN-ReLU before the level 2-4 branches
    n += conv(b, side) + sum(conv(c, side, 2 * f) for f in (2, 4, 8))    # deconvolutions
    n += 4 * (side * n_cls + n_cls)                                     # 1^3 classifiers
    return n


def test_default_has_25_layers_and_expected_parameters():
    net = VoxResNet()
    layers = [m for m in net.modules() if isinstance(m, (torch.nn.Conv3d, torch.nn.ConvTranspose3d))]
    assert len(layers) == 25
    assert count_parameters(net) == expected_params(3, 4, 32) == 2_836_736
    strided = [m for m in layers if isinstance(m, torch.nn.Conv3d) and m.stride == (2, 2, 2)]
    assert [m.out_channels for m in strided] == [64, 64, 64]


def test_voxres_is_identity_plus_residual():
    torch.manual_seed(0)
    block = VoxRes(4).eval()
    x = torch.randn(1, 4, 5, 5, 5)
    for p in block.body[-1].parameters():
        torch.nn.init.zeros_(p)
    torch.testing.assert_close(block(x), x)
    torch.nn.init.normal_(block.body[-1].weight)
    assert not torch.allclose(block(x), x)


@pytest.mark.parametrize("size", [(16, 16, 16), (13, 9, 17), (5, 6, 7)])
def test_fused_output_is_sum_of_side_outputs(size):
    torch.manual_seed(1)
    net = VoxResNet(2, 3, base=2).eval()
    with torch.no_grad():
        out = net(torch.randn(2, 2, *size))
    assert list(out) == ["seg", "seg/aux1", "seg/aux2", "seg/aux3", "seg/aux4"]
    for v in out.values():
        assert v.shape == (2, 3, *size)
    torch.testing.assert_close(out["seg"], sum(out[f"seg/aux{k}"] for k in range(1, 5)))
    assert len(side_outputs(out, "seg")) == 5


def test_deconvolutions_upsample_by_their_factor():
    net = VoxResNet(1, 2, base=2)
    for k, factor in enumerate((1, 2, 4, 8)):
        deconv = net.sides[k][0]
        c_in = deconv.in_channels
        y = deconv(torch.randn(1, c_in, 3, 4, 5))
        assert y.shape[2:] == (3 * factor, 4 * factor, 5 * factor)


def test_forward_backward_all_parameters_get_gradients():
    torch.manual_seed(2)
    net = VoxResNet(1, 2, base=2)
    out = net(torch.randn(2, 1, 8, 8, 8))
    sum(o.square().mean() for o in side_outputs(out, "seg")).backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_small_version_overfits_one_batch():
    torch.manual_seed(0)
    net = VoxResNet(1, 2, base=4)
    g = torch.stack(torch.meshgrid(*[torch.arange(12.0)] * 3, indexing="ij"))
    labels = (((g - 5.5) ** 2).sum(0) < 16).long()[None]
    x = labels[:, None].float() + 0.5 * torch.randn(1, 1, 12, 12, 12)
    assert_overfits(net, lambda: sum(F.cross_entropy(o, labels) for o in side_outputs(net(x), "seg")))


@pytest.mark.parametrize("x, exc, word", [
    (torch.randn(1, 3, 8, 8), ValueError, "x"),
    (torch.randn(1, 1, 8, 8, 8), ValueError, "channel"),
    (torch.zeros(1, 3, 8, 8, 8, dtype=torch.uint8), TypeError, "floating"),
    (torch.randn(1, 3, 0, 8, 8), ValueError, "empty"),
])
def test_forward_errors(x, exc, word):
    with pytest.raises(exc, match=word):
        VoxResNet(base=2)(x)


@pytest.mark.parametrize("kw, exc, word", [
    (dict(base=0), ValueError, "base"), (dict(n_voxres=1.0), TypeError, "n_voxres"),
    (dict(side_channels=0), ValueError, "side_channels"), (dict(in_channels=None), TypeError, "in_channels"),
])
def test_constructor_errors(kw, exc, word):
    with pytest.raises(exc, match=word):
        VoxResNet(**kw)
