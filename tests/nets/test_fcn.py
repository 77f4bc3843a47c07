"""FCN-32s/16s/8s, VGG16Encoder, bilinear_kernel, load_torchvision_vgg16.

Oracles: hand-computed bilinear kernels, torch's bilinear interpolation, parameter counts from
the layer list written out here, impulse responses (geometry of the crop alignment), a Linear
layer applied to a flattened 7x7 window (fc6 -> conv reshape).
"""
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from comp448.nets import FCN8s, FCN16s, FCN32s, VGG16Encoder, bilinear_kernel, count_parameters, \
    load_torchvision_vgg16
from ._overfit import overfit

VARIANTS = (FCN32s, FCN16s, FCN8s)


def small(cls, **kw):
    return cls(1, 2, base=4, fc_channels=16, **kw)


def disk(n=32):
    yy, xx = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    return ((yy - 14) ** 2 + (xx - 17) ** 2 < 60).long()


# ------------------------------------------------------------------------------ bilinear kernel
def test_bilinear_kernel_hand_values():
    k4 = torch.tensor([0.25, 0.75, 0.75, 0.25])     # factor 2, centre 1.5
    k3 = torch.tensor([0.5, 1.0, 0.5])              # factor 2, centre 1
    w = bilinear_kernel(2, 4)
    assert w.shape == (2, 2, 4, 4)
    torch.testing.assert_close(w[0, 0], torch.outer(k4, k4))
    torch.testing.assert_close(w[1, 1], torch.outer(k4, k4))
    assert w[0, 1].abs().sum() == 0 and w[1, 0].abs().sum() == 0
    torch.testing.assert_close(bilinear_kernel(1, 3)[0, 0], torch.outer(k3, k3))


@pytest.mark.parametrize("s", [2, 4, 8])
def test_bilinear_deconv_equals_bilinear_interpolation_inside(s):
    x = torch.randn(1, 3, 9, 11)
    up = F.conv_transpose2d(x, bilinear_kernel(3, 2 * s), stride=s, padding=s // 2)
    ref = F.interpolate(x, scale_factor=s, mode="bilinear", align_corners=False)
    assert up.shape == ref.shape
    torch.testing.assert_close(up[..., s:-s, s:-s], ref[..., s:-s, s:-s])


def test_bilinear_kernel_errors():
    with pytest.raises(ValueError, match="kernel_size"):
        bilinear_kernel(2, 0)
    with pytest.raises(TypeError, match="channels"):
        bilinear_kernel(2.0, 4)


# ------------------------------------------------------------------------------ parameter counts
def vgg16_convs(cin, b=64):
    chans = [cin] + [b] * 2 + [2 * b] * 2 + [4 * b] * 3 + [8 * b] * 6
    return sum(ci * co * 9 + co for ci, co in zip(chans[:-1], chans[1:]))


def test_parameter_counts_reference():
    base = vgg16_convs(3) + (512 * 49 * 4096 + 4096) + (4096 * 4096 + 4096) + (4096 * 21 + 21)
    expected = {FCN32s: 134_346_581, FCN16s: 134_357_354, FCN8s: 134_362_751}
    assert base == expected[FCN32s]
    assert base + 512 * 21 + 21 == expected[FCN16s]
    assert base + 512 * 21 + 21 + 256 * 21 + 21 == expected[FCN8s]
    upsampling = {FCN32s: 21 * 21 * 64 ** 2, FCN16s: 21 * 21 * (4 ** 2 + 32 ** 2),
                  FCN8s: 21 * 21 * (2 * 4 ** 2 + 16 ** 2)}
    assert upsampling[FCN8s] == 127_008
    for cls in VARIANTS:
        with torch.device("meta"):
            frozen, learned = cls(learnable_upsampling=False), cls()
        assert count_parameters(frozen) == expected[cls]
        assert count_parameters(learned) == expected[cls] + upsampling[cls]
        assert count_parameters(frozen, trainable_only=False) == count_parameters(learned)


# ------------------------------------------------------------------------------ shapes, alignment
@pytest.mark.parametrize("cls", VARIANTS)
def test_any_input_size_gives_input_size(cls):
    torch.manual_seed(0)
    m = small(cls).eval()
    with torch.no_grad():
        for h, w in [(1, 1), (5, 33), (31, 32), (47, 20), (64, 65)]:
            assert m(torch.randn(2, 1, h, w)).shape == (2, 2, h, w)


def _identity_fcn(cls, path):
    """base=1 FCN whose only non-zero path carries an impulse from the input to the output."""
    m = cls(1, 1, base=1, fc_channels=1, dropout=0.0)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.Conv2d):
                mod.weight.zero_()
                mod.bias.zero_()
                k = mod.kernel_size[0] // 2
                if mod in list(m.encoder.modules()) or mod in (m.fc6, m.fc7):
                    mod.weight[0, 0, k, k] = 1.0
        getattr(m, path).weight.fill_(1.0)
    return m.eval()


PATHS = [(FCN32s, "score_fr"), (FCN16s, "score_fr"), (FCN16s, "score_pool4"),
         (FCN8s, "score_fr"), (FCN8s, "score_pool4"), (FCN8s, "score_pool3")]


@pytest.mark.parametrize("cls,path", PATHS)
def test_crop_alignment_impulse_response(cls, path):
    # An impulse at (i, i) lands in one coarse cell; the upsampled response is a symmetric hat
    # centred on that cell's centre. Over 32 consecutive positions (whole cells of stride <= 32)
    # the mean of (response centroid - i) is 0 when the crops align the output with the input,
    # and equals the misalignment otherwise.
    m = _identity_fcn(cls, path)
    n, pos = 160, torch.arange(64, 96)
    x = torch.zeros(len(pos), 1, n, n)
    x[torch.arange(len(pos)), 0, pos, pos] = 1.0
    with torch.no_grad():
        y = m(x)[:, 0]                                          # (32, n, n)
    assert y.shape == (len(pos), n, n)
    coords = torch.arange(n, dtype=torch.float64)
    for dim in (1, 2):
        profile = y.sum(dim=dim).double()                       # (32, n) marginal
        assert (profile.sum(1) > 0).all()
        centroid = (profile * coords).sum(1) / profile.sum(1)
        assert abs(float((centroid - pos).mean())) < 1e-3
        assert float((centroid - pos).abs().max()) <= 16.0      # within its stride-32 cell


# ------------------------------------------------------------------------------ training
@pytest.mark.parametrize("cls", VARIANTS)
def test_forward_backward_all_learnable_parameters_get_gradients(cls):
    torch.manual_seed(0)
    m = small(cls)
    for p in m.parameters():       # score layers start at zero: give them values so that
        if p.ndim == 4 and p.shape[0] == 2 and p.shape[2] == 1:   # gradients reach the backbone
            nn.init.normal_(p, std=0.1)
    m(torch.randn(2, 1, 45, 50)).square().mean().backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_frozen_upsampling_stays_bilinear():
    m = small(FCN8s, learnable_upsampling=False)
    assert not m.upscore8.weight.requires_grad
    m(torch.randn(1, 1, 16, 16)).sum().backward()
    assert m.upscore8.weight.grad is None
    torch.testing.assert_close(m.upscore8.weight, bilinear_kernel(2, 16))


def test_at_once_scales_skips():
    torch.manual_seed(0)
    a = small(FCN8s, at_once=True).eval()
    b = small(FCN8s).eval()
    b.load_state_dict(a.state_dict())
    with torch.no_grad():
        for m in (a, b):
            m.score_pool3.weight.fill_(1.0)
        x = torch.rand(1, 1, 24, 24)
        assert not torch.allclose(a(x), b(x))
        b.score_pool3.weight.fill_(1e-4)
        torch.testing.assert_close(a(x), b(x))


@pytest.mark.parametrize("cls", [FCN32s, FCN8s])
def test_small_fcn_overfits_one_batch(cls):
    torch.manual_seed(0)
    m = small(cls, dropout=0.0)
    x = torch.rand(1, 1, 32, 32) + disk()[None, None].float()
    target = disk()[None]
    first, last = overfit(m, lambda: F.cross_entropy(m(x), target), seed=0)
    assert last <= 0.1 * first, (first, last)


# ------------------------------------------------------------------------------ torchvision weights
def tv_state_dict(b=4, fc=16, cin=3, device=None):
    """Synthetic state dict with torchvision vgg16's keys and shapes (scaled by b, fc)."""
    g = torch.Generator().manual_seed(0)
    rand = (lambda *s: torch.randn(*s, generator=g)) if device is None else \
        (lambda *s: torch.empty(*s, device=device))
    chans = [cin] + [b] * 2 + [2 * b] * 2 + [4 * b] * 3 + [8 * b] * 6
    sd = {}
    for idx, ci, co in zip((0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28), chans[:-1], chans[1:]):
        sd[f"features.{idx}.weight"], sd[f"features.{idx}.bias"] = rand(co, ci, 3, 3), rand(co)
    sd["classifier.0.weight"], sd["classifier.0.bias"] = rand(fc, 8 * b * 49), rand(fc)
    sd["classifier.3.weight"], sd["classifier.3.bias"] = rand(fc, fc), rand(fc)
    sd["classifier.6.weight"], sd["classifier.6.bias"] = rand(1000, fc), rand(1000)
    return sd


def test_load_torchvision_vgg16_maps_weights():
    sd = tv_state_dict()
    m = FCN8s(3, 21, base=4, fc_channels=16)
    assert load_torchvision_vgg16(m, sd) is m
    convs = [mod for mod in m.encoder.modules() if isinstance(mod, nn.Conv2d)]
    assert len(convs) == 13
    assert torch.equal(convs[0].weight, sd["features.0.weight"])
    assert torch.equal(convs[12].bias, sd["features.28.bias"])
    assert torch.equal(convs[7].weight, sd["features.17.weight"])
    # fc6 as a conv on one 7x7 window == the Linear on the flattened (C, H, W) window
    m.double()   # float64 so that the two summation orders agree to rounding
    window = torch.randn(2, 32, 7, 7, dtype=torch.float64)
    lin = F.linear(window.flatten(1), sd["classifier.0.weight"].double(), sd["classifier.0.bias"].double())
    torch.testing.assert_close(m.fc6(window).flatten(1), lin)
    vec = torch.randn(2, 16, dtype=torch.float64)
    torch.testing.assert_close(m.fc7(vec[..., None, None]).flatten(1),
                               F.linear(vec, sd["classifier.3.weight"].double(), sd["classifier.3.bias"].double()))
    enc = VGG16Encoder(3, base=4)
    load_torchvision_vgg16(enc, sd)
    assert torch.equal(enc.blocks[4][0].weight, sd["features.24.weight"])


def test_load_torchvision_vgg16_full_size_shapes_on_meta():
    with torch.device("meta"):
        m = FCN8s()
    load_torchvision_vgg16(m, tv_state_dict(64, 4096, device="meta"))


def test_load_torchvision_vgg16_errors(monkeypatch):
    m = FCN32s(3, 21, base=4, fc_channels=16)
    sd = tv_state_dict()
    before = m.encoder.blocks[0][0].weight.clone()
    bad = dict(sd)
    del bad["classifier.3.bias"]
    with pytest.raises(ValueError, match="classifier.3.bias"):
        load_torchvision_vgg16(m, bad)
    assert torch.equal(m.encoder.blocks[0][0].weight, before)   # nothing copied on failure
    with pytest.raises(ValueError, match="features.0.weight"):
        load_torchvision_vgg16(FCN32s(1, 21, base=4, fc_channels=16), sd)   # 1 input channel
    with pytest.raises(ValueError, match="classifier.0.weight"):
        load_torchvision_vgg16(m, tv_state_dict(4, 32))
    with pytest.raises(TypeError, match="model"):
        load_torchvision_vgg16(nn.Linear(2, 2), sd)
    with pytest.raises(TypeError, match="state_dict"):
        load_torchvision_vgg16(m, [1, 2])
    with pytest.raises(ValueError, match="batch norm"):
        load_torchvision_vgg16(VGG16Encoder(3, 4, batch_norm=True), sd)
    monkeypatch.setitem(sys.modules, "torchvision", None)
    with pytest.raises(ImportError, match="torchvision"):
        load_torchvision_vgg16(m, None)


# ------------------------------------------------------------------------------ errors
def test_constructor_errors():
    with pytest.raises(ValueError, match="in_channels"):
        FCN8s(0)
    with pytest.raises(TypeError, match="in_channels"):
        FCN8s("3")
    with pytest.raises(ValueError, match="num_classes"):
        FCN16s(3, 0)
    with pytest.raises(ValueError, match="base"):
        FCN32s(3, 2, base=0)
    with pytest.raises(ValueError, match="dropout"):
        FCN8s(3, 2, base=4, fc_channels=8, dropout=1.0)
    with pytest.raises(TypeError, match="base"):
        VGG16Encoder(3, base=4.0)


def test_forward_errors():
    m = small(FCN8s)
    with pytest.raises(ValueError, match="x must have in_channels=1"):
        m(torch.randn(1, 3, 16, 16))
    with pytest.raises(ValueError, match="x must have 4 dimensions"):
        m(torch.randn(1, 16, 16))
    with pytest.raises(TypeError, match="x must be a floating"):
        m(torch.zeros(1, 1, 16, 16, dtype=torch.long))
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        m([[0.0]])


def test_encoder_outputs():
    enc = VGG16Encoder(2, base=2, return_indices=True)
    out = enc(torch.randn(1, 2, 37, 64))
    assert out["conv1"].shape == (1, 2, 37, 64) and out["pool1"].shape == (1, 2, 18, 32)
    assert out["conv5"].shape == (1, 16, 2, 4) and out["pool5"].shape == (1, 16, 1, 2)
    assert out["indices3"].shape == out["pool3"].shape


@pytest.mark.parametrize("batch_norm", [False, True])
def test_encoder_he_initialisation(batch_norm):
    """He et al. 2015: conv weights N(0, 2 / fan_in), biases 0, BatchNorm (1, 0)."""
    torch.manual_seed(0)
    enc = VGG16Encoder(3, base=16, batch_norm=batch_norm)
    convs = [m for m in enc.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 13
    for c in convs:
        fan_in = c.in_channels * 9
        w = c.weight.detach()
        assert abs(w.mean()) < 3 * (2 / fan_in) ** 0.5 / w.numel() ** 0.5 + 1e-3
        assert w.std().item() == pytest.approx((2 / fan_in) ** 0.5, rel=0.1 if w.numel() > 2000 else 0.3)
        assert not c.bias.any()
    for b in (m for m in enc.modules() if isinstance(m, nn.BatchNorm2d)):
        assert torch.equal(b.weight, torch.ones_like(b.weight)) and not b.bias.any()


def test_encoder_init_keeps_the_signal_scale():
    """He et al.'s Eq. 10: with N(0, 2/fan_in) weights a conv + ReLU keeps E[x^2], so a narrow VGG
    (no BatchNorm) passes a unit-variance input to conv5_3 at order-1 scale, for every seed. PyTorch's
    default init gave a mean square of about 3e-4 here (the defect this test guards against)."""
    for seed in range(5):
        torch.manual_seed(seed)
        enc = VGG16Encoder(3, base=8)
        with torch.no_grad():
            f = enc(torch.randn(2, 3, 64, 64))
        for k in range(1, 6):
            ms = f[f"conv{k}"].square().mean().item()
            assert 0.1 < ms < 30, (seed, k, ms)


# ------------------------------------------------------------------------------ fc_as_conv, fuse_scores
from comp448.nets import fc_as_conv, fuse_scores  # noqa: E402


def test_fc_as_conv_equals_the_linear_layer_on_every_window():
    torch.manual_seed(0)
    C, k, O = 3, 4, 5
    fc = nn.Linear(C * k * k, O)
    x = torch.randn(2, C, 9, 7)
    heat = fc_as_conv(x, fc.weight, fc.bias)
    assert heat.shape == (2, O, 6, 4)
    for i in range(6):                                      # the classifier on each window, written out
        for j in range(4):
            window = x[:, :, i:i + k, j:j + k].flatten(1)  # (B, C*k*k), torch.flatten's (c, u, v) order
            torch.testing.assert_close(heat[:, :, i, j], fc(window))
    # the classifier's own input size: the scores as a 1x1 map; no bias; k = 1 is a 1x1 conv
    torch.testing.assert_close(fc_as_conv(x[:, :, :k, :k], fc.weight, fc.bias)[:, :, 0, 0], fc(x[:, :, :k, :k].flatten(1)))
    torch.testing.assert_close(fc_as_conv(x, fc.weight)[:, :, 0, 0], fc(x[:, :, :k, :k].flatten(1)) - fc.bias)
    w1 = torch.randn(2, C)
    torch.testing.assert_close(fc_as_conv(x, w1), torch.einsum("oc,bchw->bohw", w1, x))


def test_fc_as_conv_gradient_matches_the_linear_layer():
    torch.manual_seed(1)
    fc = nn.Linear(2 * 3 * 3, 4).double()
    x = torch.randn(1, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    (g1,) = torch.autograd.grad(fc_as_conv(x, fc.weight, fc.bias).sum(), x)
    (g2,) = torch.autograd.grad(fc(x.flatten(1)).sum(), x)
    torch.testing.assert_close(g1, g2)


@pytest.mark.parametrize("args, err, match", [
    ((torch.zeros(1, 3, 4, 4), torch.zeros(5, 20)), ValueError, "weight"),          # 20 is not 3 * k^2
    ((torch.zeros(1, 2, 4, 4), torch.zeros(5, 2 * 25)), ValueError, "features"),    # k = 5 > 4
    ((torch.zeros(1, 2, 4, 4), torch.zeros(5, 8), torch.zeros(4)), ValueError, "bias"),
    ((torch.zeros(2, 4, 4), torch.zeros(5, 8)), ValueError, "features"),
    ((torch.zeros(1, 2, 4, 4, dtype=torch.long), torch.zeros(5, 8)), TypeError, "features"),
    ((torch.zeros(1, 2, 4, 4), [[1.0]]), TypeError, "weight"),
])
def test_fc_as_conv_errors(args, err, match):
    with pytest.raises(err, match=match):
        fc_as_conv(*args)


def test_fuse_scores_is_upsample_crop_add():
    torch.manual_seed(2)
    coarse, skip = torch.randn(2, 3, 3, 4), torch.randn(2, 3, 14, 16)
    up = nn.ConvTranspose2d(3, 3, 4, stride=2, bias=False)          # FCN's upscore2
    for offset in (0, 5, 6):
        fused = fuse_scores(coarse, skip, up.weight, offset)
        expected = up(coarse) + skip[:, :, offset:offset + 8, offset:offset + 10]
        assert fused.shape == (2, 3, 8, 10)
        torch.testing.assert_close(fused, expected)
    # stride 3, kernel 6: (h0 - 1) * 3 + 6
    w = torch.randn(3, 3, 6, 6)
    big = torch.randn(2, 3, 20, 20)
    torch.testing.assert_close(fuse_scores(coarse, big, w, 1, stride=3),
                               F.conv_transpose2d(coarse, w, stride=3) + big[:, :, 1:13, 1:16])


@pytest.mark.parametrize("cls", [FCN16s, FCN8s])
def test_fcn_fusion_uses_fuse_scores(cls, monkeypatch):
    """The networks' forward calls fuse_scores with the upscore weights and the paper's offsets."""
    import comp448.nets.fcn as fcn
    calls = []
    real = fcn.fuse_scores
    monkeypatch.setattr(fcn, "fuse_scores", lambda *a, **k: calls.append(a[3]) or real(*a, **k))
    m = small(cls).eval()
    m(torch.randn(1, 1, 40, 40))
    assert calls == ([5] if cls is FCN16s else [5, 9])


@pytest.mark.parametrize("args, err, match", [
    ((torch.zeros(1, 2, 3, 3), torch.zeros(1, 2, 8, 8), torch.zeros(2, 2, 4, 4), 1), ValueError, "skip"),
    ((torch.zeros(1, 2, 3, 3), torch.zeros(1, 3, 8, 8), torch.zeros(2, 2, 4, 4), 0), ValueError, "skip"),
    ((torch.zeros(1, 2, 3, 3), torch.zeros(1, 2, 8, 8), torch.zeros(3, 2, 4, 4), 0), ValueError, "up_weight"),
    ((torch.zeros(1, 2, 3, 3), torch.zeros(1, 2, 8, 8), torch.zeros(2, 2, 4, 4), -1), ValueError, "offset"),
    ((torch.zeros(1, 2, 3, 3), torch.zeros(1, 2, 8, 8), torch.zeros(2, 2, 4, 4), 1.5), TypeError, "offset"),
    ((torch.zeros(2, 3, 3), torch.zeros(1, 2, 8, 8), torch.zeros(2, 2, 4, 4), 0), ValueError, "coarse"),
])
def test_fuse_scores_errors(args, err, match):
    with pytest.raises(err, match=match):
        fuse_scores(*args)


# ------------------------------------------------------------------------------ score streams
def _randomised(cls):
    torch.manual_seed(1)
    m = small(cls, dropout=0.0)
    with torch.no_grad():
        for name in ("score_fr", "score_pool4", "score_pool3"):
            if hasattr(m, name):               # score layers start at zero: give them values
                getattr(m, name).weight.normal_(0, 0.5)
                getattr(m, name).bias.normal_(0, 0.5)
    return m.eval()


@pytest.mark.parametrize("cls", VARIANTS)
def test_score_streams_sum_to_the_output(cls):
    m = _randomised(cls)
    x = torch.randn(2, 1, 37, 50)
    streams = m.score_streams(x)
    assert list(streams) == {FCN32s: ["pool5"], FCN16s: ["pool5", "pool4"],
                             FCN8s: ["pool5", "pool4", "pool3"]}[cls]
    with torch.no_grad():
        out = m(x)
    assert all(s.shape == out.shape for s in streams.values())
    assert torch.allclose(sum(streams.values()), out, atol=1e-5)
    assert all(s.abs().max() > 1e-3 for s in streams.values())


@pytest.mark.parametrize("keep", ["pool5", "pool4", "pool3"])
def test_score_streams_equal_the_net_with_the_other_score_layers_zeroed(keep):
    """Oracle: forward() of a copy whose other score layers (weights and biases) are zero."""
    m = _randomised(FCN8s)
    x = torch.randn(1, 1, 40, 40)
    expected_stream = m.score_streams(x)[keep]
    layer = {"pool5": "score_fr", "pool4": "score_pool4", "pool3": "score_pool3"}
    with torch.no_grad():
        for name, lname in layer.items():
            if name != keep:
                getattr(m, lname).weight.zero_()
                getattr(m, lname).bias.zero_()
        assert torch.allclose(m(x), expected_stream, atol=1e-5)


def test_score_streams_errors():
    with pytest.raises(ValueError, match="x must have in_channels=1"):
        small(FCN8s).score_streams(torch.randn(1, 3, 16, 16))
