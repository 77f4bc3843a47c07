"""SegNetMRI (Sun et al. 2018, slide 23), its data-consistency step and the k-space helpers.

Oracles: NumPy's FFT (np.fft with fftshift/ifftshift, norm="ortho"), the data-consistency formula
evaluated in NumPy, Parseval's identity, parameter counts from a layer list written out here.
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from comp448.nets import (SegNetMRI, cartesian_mask, count_parameters, data_consistency, fft2c, ifft2c,
                          side_outputs, undersample)
from ._overfit import assert_overfits


def np_fft2c(z):
    return np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(z, axes=(-2, -1)), norm="ortho"), axes=(-2, -1))


def to_np_complex(img):                    # (B, 2, H, W) tensor -> (B, H, W) complex128
    a = img.detach().double().numpy()
    return a[:, 0] + 1j * a[:, 1]


def mask_for(h, w, seed=0, acc=4.0):
    return cartesian_mask((h, w), acceleration=acc, seed=seed)


# ---------------------------------------------------------------- k-space helpers
def test_fft2c_matches_numpy_and_is_unitary():
    torch.manual_seed(0)
    z = torch.randn(2, 7, 6, dtype=torch.complex128)
    k = fft2c(z)
    np.testing.assert_allclose(k.numpy(), np_fft2c(z.numpy()), atol=1e-12)
    np.testing.assert_allclose(ifft2c(k).numpy(), z.numpy(), atol=1e-12)
    assert abs(k.abs().square().sum() - z.abs().square().sum()) < 1e-10       # Parseval
    # DC at the centre: a constant image has all its energy at (H//2, W//2)
    k1 = fft2c(torch.ones(1, 7, 6, dtype=torch.complex128))
    assert abs(k1[0, 3, 3]) == pytest.approx(np.sqrt(42)) and k1.abs().sum() == pytest.approx(np.sqrt(42))


def test_cartesian_mask_properties():
    m = mask_for(64, 32, acc=4)
    assert m.shape == (64, 32) and set(m.unique().tolist()) <= {0.0, 1.0}
    assert (m == m[:, :1]).all()                               # whole rows (phase-encoding lines ky)
    assert m[:, 0].sum() == 16                                 # H / acceleration
    c = int(round(64 * 0.08))
    assert m[32 - c // 2: 32 - c // 2 + c, 0].all()            # centre lines (DC row H // 2) always sampled
    torch.testing.assert_close(m, mask_for(64, 32, acc=4))    # reproducible with a seed
    assert not torch.equal(m, mask_for(64, 32, seed=1, acc=4))
    assert cartesian_mask((4, 8), acceleration=1).all()


@pytest.mark.parametrize("kw, exc, word", [
    (dict(shape=(0, 4)), ValueError, "shape"), (dict(shape=(4,)), ValueError, "shape"),
    (dict(shape=(4, 4), acceleration=0.5), ValueError, "acceleration"),
    (dict(shape=(4, 4), center_fraction=1.5), ValueError, "center_fraction"),
    (dict(shape=(4, 4), acceleration="4"), TypeError, "acceleration"),
])
def test_cartesian_mask_errors(kw, exc, word):
    with pytest.raises(exc, match=word):
        cartesian_mask(**kw)


def test_undersample_matches_numpy():
    torch.manual_seed(1)
    x = torch.randn(2, 2, 9, 8, dtype=torch.float64)
    m = mask_for(9, 8)
    zf, y = undersample(x, m)
    y_np = m.numpy() * np_fft2c(to_np_complex(x))
    np.testing.assert_allclose(y.numpy(), y_np, atol=1e-12)
    zf_np = np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(y_np, axes=(-2, -1)), norm="ortho"), axes=(-2, -1))
    np.testing.assert_allclose(to_np_complex(zf), zf_np, atol=1e-12)


# ---------------------------------------------------------------- data consistency
def test_data_consistency_sampled_kspace_equals_measurement():
    torch.manual_seed(2)
    H, W = 12, 10
    m = mask_for(H, W)
    _, y = undersample(torch.randn(2, 2, H, W, dtype=torch.float64), m)
    net = torch.randn(2, 2, H, W, dtype=torch.float64)             # any network output
    out = data_consistency(net, y, m)
    k_out = np_fft2c(to_np_complex(out))
    k_net = np_fft2c(to_np_complex(net))
    s = m.numpy().astype(bool)
    np.testing.assert_allclose(k_out[:, s], y.numpy()[:, s], atol=1e-12)     # measured where sampled
    np.testing.assert_allclose(k_out[:, ~s], k_net[:, ~s], atol=1e-12)       # network's elsewhere
    torch.testing.assert_close(data_consistency(out, y, m), out)              # a projection: idempotent


def test_data_consistency_noise_level_formula_and_per_image_mask():
    torch.manual_seed(3)
    H, W, nu = 8, 8, 0.7
    m = torch.stack([mask_for(H, W, 0), mask_for(H, W, 1)])          # (B, H, W)
    _, y = undersample(torch.randn(2, 2, H, W, dtype=torch.float64), m)
    net = torch.randn(2, 2, H, W, dtype=torch.float64)
    out = data_consistency(net, y, m, noise_lvl=nu)
    k_net = np_fft2c(to_np_complex(net))
    mm = m.numpy()
    expected = (1 - mm) * k_net + mm * (k_net + nu * y.numpy()) / (1 + nu)
    np.testing.assert_allclose(np_fft2c(to_np_complex(out)), expected, atol=1e-12)
    torch.testing.assert_close(data_consistency(net, y, m, noise_lvl=0.0), net)   # nu = 0: no change


def test_data_consistency_real_image_with_symmetric_mask_is_exact():
    torch.manual_seed(4)
    H, W = 8, 8
    # centred layout, even size: index j holds frequency j - 4, its mirror -(j - 4) sits at (8 - j) % 8
    rows = torch.zeros(H)
    rows[[0, 1, 7, 3, 5, 4]] = 1
    m = rows[:, None].expand(H, W).clone()
    sym = m.numpy().astype(bool)
    mirror = (8 - np.arange(8)) % 8
    assert (sym == sym[mirror][:, mirror]).all()
    _, y = undersample(torch.randn(1, 1, H, W, dtype=torch.float64), m)
    out = data_consistency(torch.randn(1, 1, H, W, dtype=torch.float64), y, m)
    assert out.shape == (1, 1, H, W)
    k_out = np_fft2c(out[:, 0].numpy().astype(complex))
    np.testing.assert_allclose(k_out[:, sym], y.numpy()[:, sym], atol=1e-12)


@pytest.mark.parametrize("args, exc, word", [
    ((torch.randn(1, 3, 4, 4), torch.zeros(1, 4, 4, dtype=torch.complex64), torch.ones(4, 4)), ValueError, "image"),
    ((torch.randn(1, 2, 4, 4), torch.zeros(1, 4, 4), torch.ones(4, 4)), TypeError, "kspace"),
    ((torch.randn(1, 2, 4, 4), torch.zeros(1, 4, 5, dtype=torch.complex64), torch.ones(4, 4)), ValueError, "kspace"),
    ((torch.randn(1, 2, 4, 4), torch.zeros(1, 4, 4, dtype=torch.complex64), torch.ones(4, 5)), ValueError, "mask"),
    ((torch.randn(1, 2, 4, 4), torch.zeros(1, 4, 4, dtype=torch.complex64), torch.full((4, 4), 0.5)), ValueError, "mask"),
    ((torch.full((1, 2, 4, 4), float("nan")), torch.zeros(1, 4, 4, dtype=torch.complex64), torch.ones(4, 4)), ValueError, "image"),
    ((torch.zeros(1, 2, 4, 4, dtype=torch.long), torch.zeros(1, 4, 4, dtype=torch.complex64), torch.ones(4, 4)), TypeError, "image"),
])
def test_data_consistency_errors(args, exc, word):
    with pytest.raises(exc, match=word):
        data_consistency(*args)


def test_data_consistency_bad_noise_level():
    with pytest.raises(ValueError, match="noise_lvl"):
        data_consistency(torch.randn(1, 2, 4, 4), torch.zeros(1, 4, 4, dtype=torch.complex64), torch.ones(4, 4), -1.0)


# ---------------------------------------------------------------- the network
def small(**kw):
    return SegNetMRI(**{"base": 4, "depth": 2, "n_blocks": 2, **kw})


def _double_conv(c_in, c_out):
    return 9 * c_in * c_out + 2 * c_out + 9 * c_out * c_out + 2 * c_out      # bias-free convs + 2 BN


def _unet_parts(c_in, c_rec, c_seg, widths):
    enc = _double_conv(c_in, widths[0]) + sum(_double_conv(widths[l - 1], widths[l]) for l in range(1, len(widths)))
    dec = sum(4 * widths[l + 1] * widths[l] + widths[l] + _double_conv(2 * widths[l], widths[l])
              for l in range(len(widths) - 1))
    return enc + (dec + widths[0] * c_rec + c_rec) + (dec + widths[0] * c_seg + c_seg)


def test_default_parameter_count():
    widths = [32, 64, 128, 256, 512]
    merge = 9 * 5 * 4 * 32 + 2 * 32 + 32 * 4 + 4
    expected = 5 * _unet_parts(2, 2, 4, widths) + merge
    assert expected == 54_064_546
    assert count_parameters(SegNetMRI()) == expected


@pytest.mark.parametrize("H, W", [(16, 16), (15, 13)])
def test_outputs_and_data_consistency_of_every_stage(H, W):
    torch.manual_seed(5)
    net = small(n_blocks=3).double().eval()
    m = mask_for(H, W)
    x = torch.randn(2, 2, H, W, dtype=torch.float64)
    zf, y = undersample(x, m)
    with torch.no_grad():
        out = net(zf, y, m)
    assert list(out) == ["recon", "seg", "seg/aux1", "seg/aux2", "seg/aux3", "recon/stage1", "recon/stage2"]
    assert out["recon"].shape == (2, 2, H, W)
    for k in ("seg", "seg/aux1", "seg/aux2", "seg/aux3"):
        assert out[k].shape == (2, 4, H, W)
    assert len(side_outputs(out, "seg")) == 4
    s = m.numpy().astype(bool)
    for key in ("recon", "recon/stage1", "recon/stage2"):
        np.testing.assert_allclose(np_fft2c(to_np_complex(out[key]))[:, s], y.numpy()[:, s], atol=1e-10)
    # the per-block segmentations are what the merge layer combines
    torch.testing.assert_close(net.merge(torch.cat([out[f"seg/aux{k}"] for k in (1, 2, 3)], 1)), out["seg"])


def test_real_image_variant_forward_backward():
    torch.manual_seed(6)
    net = small(in_channels=1, num_classes=3)
    m = mask_for(16, 16)
    zf, y = undersample(torch.randn(2, 1, 16, 16), m)
    out = net(zf, y, m)
    assert out["recon"].shape == (2, 1, 16, 16) and out["seg"].shape == (2, 3, 16, 16)
    (out["recon"].square().mean() + sum(v.square().mean() for k, v in out.items() if k.startswith("seg"))).backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_small_version_overfits_one_batch():
    torch.manual_seed(0)
    net = small()
    x = torch.randn(2, 2, 16, 16)
    m = mask_for(16, 16)
    zf, y = undersample(x, m)
    labels = torch.randint(0, 4, (2, 16, 16))

    def loss():   # slide 23, lambda = 1
        out = net(zf, y, m)
        return F.mse_loss(out["recon"], x) + F.cross_entropy(out["seg"], labels)
    assert_overfits(net, loss)


@pytest.mark.parametrize("call, exc, word", [
    (lambda n, zf, y, m: n(zf[:, :1], y, m), ValueError, "channel"),
    (lambda n, zf, y, m: n(zf[:, :, :3, :3], y[:, :3, :3], m[:3, :3]), ValueError, ">= 4"),
    (lambda n, zf, y, m: n(zf, y.real, m), TypeError, "kspace"),
    (lambda n, zf, y, m: n(zf, y[:1], m), ValueError, "kspace"),
    (lambda n, zf, y, m: n(zf, y, m * 2), ValueError, "mask"),
    (lambda n, zf, y, m: n(zf[0], y, m), ValueError, "image"),
])
def test_forward_errors(call, exc, word):
    net = small()
    m = mask_for(8, 8)
    zf, y = undersample(torch.randn(2, 2, 8, 8), m)
    with pytest.raises(exc, match=word):
        call(net, zf, y, m)


@pytest.mark.parametrize("kw, exc, word", [
    (dict(in_channels=3), ValueError, "in_channels"), (dict(n_blocks=0), ValueError, "n_blocks"),
    (dict(base=1.5), TypeError, "base"), (dict(depth=-1), ValueError, "depth"),
    (dict(noise_lvl=-0.1), ValueError, "noise_lvl"), (dict(num_classes=0), ValueError, "num_classes"),
])
def test_constructor_errors(kw, exc, word):
    with pytest.raises(exc, match=word):
        SegNetMRI(**kw)
