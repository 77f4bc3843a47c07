"""UNet3D with multi-level deep supervision (Zeng et al. 2017, slide 25).

Oracles: parameter count from a layer list written out here, forward hooks on the auxiliary heads
(their native resolution, floor pooling computed by hand, and trilinear up-sampling via
F.interpolate).
"""
import pytest
import torch
import torch.nn.functional as F

from comp448.nets import UNet3D, count_parameters, side_outputs
from ._overfit import assert_overfits


def _double_conv3(c_in, c_out):
    return 27 * c_in * c_out + 2 * c_out + 27 * c_out * c_out + 2 * c_out


def expected_params(c_in, n_cls, widths, aux=True):
    enc = _double_conv3(c_in, widths[0]) + sum(_double_conv3(widths[l - 1], widths[l]) for l in range(1, len(widths)))
    dec = sum(8 * widths[l + 1] * widths[l] + widths[l] + _double_conv3(2 * widths[l], widths[l])
              for l in range(len(widths) - 1))
    head = widths[0] * n_cls + n_cls
    aux_heads = sum(widths[k] * n_cls + n_cls for k in range(1, len(widths) - 1)) if aux else 0
    return enc + dec + head + aux_heads


def sphere(n=16):
    g = torch.stack(torch.meshgrid(*[torch.arange(float(n))] * 3, indexing="ij"))
    return (((g - (n - 1) / 2) ** 2).sum(0) < (n / 3) ** 2).long()


def test_default_parameter_count():
    assert count_parameters(UNet3D()) == expected_params(1, 2, [32, 64, 128, 256]) == 5_601_542
    assert count_parameters(UNet3D(deep_supervision=False)) == expected_params(1, 2, [32, 64, 128, 256], aux=False)


@pytest.mark.parametrize("size", [(16, 16, 16), (13, 9, 17)])
def test_outputs_at_input_size_and_aux_are_upsampled_levels(size):
    torch.manual_seed(0)
    net = UNet3D(1, 3, base=4, depth=3).eval()
    x = torch.randn(2, 1, *size)
    native = {}
    hooks = [h.register_forward_hook(lambda m, i, o, k=k: native.__setitem__(k, o.detach()))
             for k, h in enumerate(net.aux_heads, start=1)]
    with torch.no_grad():
        out = net(x)
    for h in hooks:
        h.remove()
    assert list(out) == ["seg", "seg/aux1", "seg/aux2"]
    for v in out.values():
        assert v.shape == (2, 3, *size)
    for k in (1, 2):
        s_k = list(size)
        for _ in range(k):
            s_k = [s // 2 for s in s_k]                     # floor pooling along the encoder
        assert tuple(native[k].shape[2:]) == tuple(s_k)
        ref = F.interpolate(native[k], size=size, mode="trilinear", align_corners=False)
        torch.testing.assert_close(out[f"seg/aux{k}"], ref)
    assert len(side_outputs(out, "seg")) == 3


def test_without_deep_supervision_returns_tensor():
    out = UNet3D(1, 2, base=4, depth=2, deep_supervision=False)(torch.randn(1, 1, 8, 8, 8))
    assert isinstance(out, torch.Tensor) and out.shape == (1, 2, 8, 8, 8)


def test_forward_backward_all_parameters_get_gradients():
    torch.manual_seed(1)
    net = UNet3D(2, 2, base=4, depth=2)
    out = net(torch.randn(2, 2, 8, 12, 8))
    sum(o.square().mean() for o in side_outputs(out, "seg")).backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_small_version_overfits_one_batch():
    torch.manual_seed(0)
    net = UNet3D(1, 2, base=4, depth=2)
    labels = sphere(12)[None]
    x = labels[:, None].float() + 0.5 * torch.randn(1, 1, 12, 12, 12)
    assert_overfits(net, lambda: sum(F.cross_entropy(o, labels) for o in side_outputs(net(x), "seg")))


@pytest.mark.parametrize("x, exc, word", [
    (torch.randn(1, 1, 8, 8), ValueError, "x"),
    (torch.randn(1, 2, 8, 8, 8), ValueError, "channel"),
    (torch.randn(1, 1, 8, 3, 8), ValueError, ">= 4"),
    (torch.zeros(1, 1, 8, 8, 8, dtype=torch.int64), TypeError, "floating"),
    ("volume", TypeError, "x"),
])
def test_forward_errors(x, exc, word):
    with pytest.raises(exc, match=word):
        UNet3D(1, 2, base=2, depth=2)(x)


@pytest.mark.parametrize("kw, exc, word", [
    (dict(base=0), ValueError, "base"), (dict(depth=0), ValueError, "depth"),
    (dict(num_classes=2.0), TypeError, "num_classes"), (dict(deep_supervision="yes"), TypeError, "deep_supervision"),
])
def test_constructor_errors(kw, exc, word):
    with pytest.raises(exc, match=word):
        UNet3D(**kw)
