"""DCAN: output keys, fused = sum of levels, level alignment by impulse response, counts, training."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from comp448.nets import DCAN, count_parameters, side_outputs
from ._overfit import assert_overfits

KEYS = ["object", "object/aux1", "object/aux2", "object/aux3",
        "contour", "contour/aux1", "contour/aux2", "contour/aux3"]


def small(**kw):
    return DCAN(1, 1, base=4, conv6_channels=16, conv6_kernel=1, **kw)


@pytest.mark.parametrize("hw", [(1, 1), (17, 40), (33, 31), (64, 64)])
def test_keys_shapes_and_fusion(hw):
    torch.manual_seed(0)
    m = small().eval()
    with torch.no_grad():
        out = m(torch.randn(2, 1, *hw))
    assert list(out) == KEYS
    assert all(v.shape == (2, 1, *hw) for v in out.values())
    for t in ("object", "contour"):
        levels = side_outputs(out, t)
        assert len(levels) == 4
        torch.testing.assert_close(levels[0], levels[1] + levels[2] + levels[3])


def test_parameter_count_at_defaults():
    vgg = [3, 64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
    enc = sum(a * b * 9 + b for a, b in zip(vgg[:-1], vgg[1:]))
    conv6 = (512 * 49 * 1024 + 1024) + (1024 * 1024 + 1024)
    per_task = (512 * 2 + 2) * 2 + (1024 * 2 + 2) + 2 * 2 * (16 ** 2 + 32 ** 2 + 64 ** 2)
    with torch.device("meta"):
        m = DCAN()
        frozen = DCAN(learnable_upsampling=False)
    assert count_parameters(m) == enc + conv6 + 2 * per_task
    assert count_parameters(m) - count_parameters(frozen) == 2 * 2 * 2 * (16 ** 2 + 32 ** 2 + 64 ** 2)


def test_he_initialisation_from_scratch():
    """Encoder and conv6 (followed by ReLU): N(0, 2/fan_in); classifiers: N(0, 1/fan_in); biases 0;
    the upsamplers keep their bilinear kernels."""
    from comp448.nets import bilinear_kernel
    torch.manual_seed(0)
    m = DCAN(3, 2, base=16, conv6_channels=64, conv6_kernel=3)
    for c in [c for c in m.conv6 if isinstance(c, nn.Conv2d)]:
        fan_in = c.in_channels * c.kernel_size[0] * c.kernel_size[1]
        assert c.weight.std().item() == pytest.approx((2 / fan_in) ** 0.5, rel=0.1) and not c.bias.any()
    for heads in m.classifiers.values():
        for c in heads:
            assert c.weight.std().item() == pytest.approx((1 / c.in_channels) ** 0.5, rel=0.35) and not c.bias.any()
    for ups in m.upsamplers.values():
        for u in ups:
            torch.testing.assert_close(u.weight.detach(), bilinear_kernel(2, u.kernel_size[0]))
    enc_convs = [c for c in m.encoder.modules() if isinstance(c, nn.Conv2d)]
    assert all(not c.bias.any() for c in enc_convs)


def test_narrow_dcan_logits_start_at_order_one():
    """With PyTorch's default init every level of a narrow DCAN started near a constant logit (the
    signal died in the 13 VGG convs); with He init every level varies over the image at step 0."""
    for seed in range(3):
        torch.manual_seed(seed)
        m = DCAN(3, 1, base=8, conv6_channels=32, conv6_kernel=1)
        with torch.no_grad():
            out = m(torch.randn(2, 3, 64, 64))
        for k, v in out.items():
            assert v.std().item() > 0.05, (seed, k, v.std().item())


@pytest.mark.parametrize("level", [0, 1, 2])
def test_levels_are_aligned_with_the_input(level):
    # Identity-like weights (base=1): an impulse at (i, i) comes out as a bilinear hat centred on
    # its coarse cell; over 32 consecutive positions the mean offset of the hat's centroid is 0.
    m = DCAN(1, 1, base=1, conv6_channels=1, conv6_kernel=1, dropout=0.0)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.Conv2d):
                mod.weight.zero_()
                mod.bias.zero_()
                k = mod.kernel_size[0] // 2
                mod.weight[0, 0, k, k] = 1.0
        for k, cls in enumerate(m.classifiers["object"]):
            cls.weight.fill_(1.0 if k == level else 0.0)
    m.eval()
    n, pos = 128, torch.arange(48, 80)
    x = torch.zeros(len(pos), 1, n, n)
    x[torch.arange(len(pos)), 0, pos, pos] = 1.0
    with torch.no_grad():
        y = m(x)["object"][:, 0].double()
    coords = torch.arange(n, dtype=torch.float64)
    for dim in (1, 2):
        prof = y.sum(dim=dim)
        centroid = (prof * coords).sum(1) / prof.sum(1)
        assert abs(float((centroid - pos).mean())) < 1e-3


def test_forward_backward_and_overfit_with_deep_supervision():
    torch.manual_seed(0)
    m = small(dropout=0.0)
    yy, xx = torch.meshgrid(torch.arange(32), torch.arange(32), indexing="ij")
    obj = (((yy - 14) ** 2 + (xx - 17) ** 2) < 60).float()[None, None]
    contour = ((((yy - 14) ** 2 + (xx - 17) ** 2) < 60) & (((yy - 14) ** 2 + (xx - 17) ** 2) >= 30)).float()[None, None]
    x = torch.rand(1, 1, 32, 32) + obj
    target = {"object": obj, "contour": contour}

    def loss_fn(out):   # fused + auxiliary terms, both tasks
        return sum(F.binary_cross_entropy_with_logits(o, target[t])
                   for t in target for o in side_outputs(out, t))
    assert_overfits(m, lambda: loss_fn(m(x)), check_grads=True)


def test_errors():
    with pytest.raises(ValueError, match="conv6_kernel must be odd"):
        DCAN(conv6_kernel=4)
    with pytest.raises(ValueError, match="in_channels"):
        DCAN(in_channels=0)
    with pytest.raises(TypeError, match="num_classes"):
        DCAN(3, 2.0)
    with pytest.raises(ValueError, match="dropout"):
        DCAN(dropout=1.0)
    m = small()
    with pytest.raises(ValueError, match="x must have in_channels=1"):
        m(torch.randn(1, 3, 16, 16))
    with pytest.raises(TypeError, match="x must be a floating"):
        m(torch.zeros(1, 1, 16, 16, dtype=torch.uint8))
