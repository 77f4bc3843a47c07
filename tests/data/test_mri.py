import numpy as np
import pytest
import torch

from comp448.data import cartesian_mask, fft2c, ifft2c, synth_mri


def test_kspace_convention_against_numpy():
    d = synth_mri(64, seed=0)
    img, k = d["image"], d["kspace"]
    assert k.dtype == np.complex64 and k.shape == (64, 64)
    ref = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(img.astype(np.float64)), norm="ortho"))
    np.testing.assert_allclose(k, ref, atol=1e-5)
    # DC at the centre: sum(image) / sqrt(H W)
    assert abs(k[32, 32] - img.sum() / 64) < 1e-3
    # Parseval (orthonormal)
    assert np.isclose((np.abs(k) ** 2).sum(), (img.astype(np.float64) ** 2).sum(), rtol=1e-5)
    # ifft of the fully sampled k-space gives the image back
    back = ifft2c(torch.from_numpy(k)).numpy()
    np.testing.assert_allclose(back.real, img, atol=1e-5)
    assert np.abs(back.imag).max() < 1e-5


def test_fft2c_roundtrip_batched():
    x = torch.randn(2, 3, 16, 20, dtype=torch.complex64)
    assert torch.allclose(ifft2c(fft2c(x)), x, atol=1e-5)


def test_mask_and_zero_filled():
    d = synth_mri(64, seed=1, acceleration=4, center_fraction=0.125)
    m = d["mask_kspace"]
    assert m.dtype == np.float32 and set(np.unique(m)) <= {0.0, 1.0}
    assert (m == m[:, :1]).all()                         # whole ky rows
    rows = m[:, 0].astype(bool)
    assert rows.sum() == 16                              # H / acceleration lines
    assert rows[28:36].all()                             # 8 centre lines kept (12.5% of 64)
    zf = np.abs(np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(d["kspace"] * m), norm="ortho")))
    np.testing.assert_allclose(d["zero_filled"], zf, atol=1e-5)
    assert np.abs(d["zero_filled"] - d["image"]).mean() > 0.005    # aliasing present


def test_acceleration_one_is_fully_sampled():
    d = synth_mri(48, seed=2, acceleration=1)
    assert d["mask_kspace"].all()
    np.testing.assert_allclose(d["zero_filled"], d["image"], atol=1e-5)


def test_one_kspace_convention_in_the_package():
    """data and nets re-export the SAME functions of comp448.kspace (no second implementation)."""
    import comp448.kspace as K
    import comp448.data as D
    import comp448.nets as N
    for name in ("fft2c", "ifft2c", "cartesian_mask"):
        assert getattr(D, name) is getattr(K, name) is getattr(N, name), name


def test_cartesian_mask_properties():
    m = cartesian_mask((100, 30), acceleration=5, center_fraction=0.04, seed=3)
    assert isinstance(m, torch.Tensor) and m.dtype == torch.float32
    m = m.numpy()
    assert m.shape == (100, 30) and m[:, 0].sum() == 20 and m[48:52, 0].all()
    assert np.array_equal(m, cartesian_mask((100, 30), 5, 0.04, seed=3))
    assert not np.array_equal(m, cartesian_mask((100, 30), 5, 0.04, seed=4))
    # centre block larger than the budget: only the centre is kept
    m2 = cartesian_mask((40, 8), acceleration=8, center_fraction=0.5)
    assert m2[:, 0].sum() == 20 and m2[10:30, 0].all()
    # a numpy Generator is drawn from (synth_mri passes its own), an int seeds a fresh one
    assert np.array_equal(cartesian_mask((64, 4), seed=np.random.default_rng(7)), cartesian_mask((64, 4), seed=7))


def test_mri_lesions_and_determinism():
    d = synth_mri(64, seed=5, n_lesions=2)
    lab = d["labels"]
    assert lab.dtype == np.int32 and lab.max() == 2
    assert d["image"].dtype == np.float32 and 0 <= d["image"].min() and d["image"].max() <= 1
    d2 = synth_mri(64, seed=5, n_lesions=2)
    assert all(np.array_equal(d[k], d2[k]) for k in d)
    assert not np.array_equal(d["image"], synth_mri(64, seed=6, n_lesions=2)["image"])
    assert synth_mri(64, seed=5, n_lesions=0)["labels"].max() == 0


@pytest.mark.parametrize("call,exc,word", [
    (lambda: synth_mri(16), ValueError, "size"),
    (lambda: synth_mri(64, acceleration=0.5), ValueError, "acceleration"),
    (lambda: synth_mri(64, n_lesions=-1), ValueError, "n_lesions"),
    (lambda: synth_mri(64, center_fraction=0), ValueError, "center_fraction"),
    (lambda: synth_mri(64, noise=-0.1), ValueError, "noise"),
    (lambda: cartesian_mask((32, 32), center_fraction=1.5), ValueError, "center_fraction"),
    (lambda: cartesian_mask((32,), 4), ValueError, "shape"),
    (lambda: cartesian_mask((32, 0), 4), ValueError, "shape"),
    (lambda: cartesian_mask((32, 8.0), 4), TypeError, "shape"),
    (lambda: cartesian_mask((32, 32), seed=-1), TypeError, "seed"),
    (lambda: cartesian_mask((32, 32), seed=torch.Generator()), TypeError, "seed"),
])
def test_errors(call, exc, word):
    with pytest.raises(exc, match=word):
        call()
