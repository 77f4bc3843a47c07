import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from comp448 import targets as T
from comp448.data import (MRIDataset, SampleDataset, SegmentationDataset, SuperResolutionDataset,
                          synth_nuclei, upsample_slices)

ALL2D = ("weight_map", "class_weights", "contour", "inner", "outer", "amplitudes")
SMALL = {"nuclei": dict(size=48, n_objects=8), "glands": dict(size=48, n_objects=3),
         "oct": dict(size=48), "blobs3d": dict(size=(8, 24, 24), n_objects=4)}
CH = {"nuclei": 1, "glands": 3, "oct": 1, "blobs3d": 1}


@pytest.mark.parametrize("kind", sorted(SMALL))
def test_contract(kind):
    targets = ALL2D if kind != "blobs3d" else ALL2D[:-1]
    ds = SegmentationDataset(kind, 2, targets=targets, **SMALL[kind])
    s = ds[1]
    spatial = tuple(s["labels"].shape)
    assert len(spatial) == (3 if kind == "blobs3d" else 2)
    assert s["image"].dtype == torch.float32 and s["image"].shape == (CH[kind],) + spatial
    assert s["mask"].dtype == torch.float32 and s["mask"].shape == (1,) + spatial
    assert set(torch.unique(s["mask"]).tolist()) <= {0.0, 1.0}
    assert s["labels"].dtype == torch.int64
    assert torch.equal(s["mask"][0], (s["labels"] > 0).float())
    for t in targets:
        assert s[t].dtype == torch.float32
        assert s[t].shape == ((5,) if t == "amplitudes" else (1,) + spatial), t
    assert set(s) == {"image", "mask", "labels", *targets}
    # targets equal comp448.targets on the sample's labels
    lab = s["labels"].numpy()
    np.testing.assert_allclose(s["weight_map"][0].numpy(), T.unet_weight_map(lab), rtol=1e-6)
    np.testing.assert_allclose(s["inner"][0].numpy(), T.inner_distance_map(lab), rtol=1e-6)
    np.testing.assert_allclose(s["contour"][0].numpy(), T.contour_map(lab), rtol=1e-6)
    if kind != "blobs3d":
        np.testing.assert_allclose(s["amplitudes"].numpy(), T.fourier_descriptors(lab, 5), rtol=1e-5)


def test_image_matches_generator_and_determinism():
    a = SegmentationDataset("nuclei", 3, size=48, seed=7, n_objects=8)
    b = SegmentationDataset("nuclei", 3, size=48, seed=7, n_objects=8, lazy=True)
    for i in (2, 0, 1):                                    # order of access does not matter
        assert torch.equal(a[i]["image"], b[i]["image"])
    assert not torch.equal(a[0]["image"], a[1]["image"])
    c = SegmentationDataset("nuclei", 1, size=48, seed=8, n_objects=8)
    assert not torch.equal(a[0]["image"], c[0]["image"])
    img, lab = synth_nuclei(48, n_objects=8, seed=np.random.SeedSequence(7, spawn_key=(0, 0)))
    assert np.array_equal(a[0]["image"][0].numpy(), img) and np.array_equal(a[0]["labels"].numpy(), lab)
    assert torch.equal(a[-1]["image"], a[2]["image"])


def flip_all(sample, rng):
    """A hand-written augmentation: flip both axes with probability 1/2 each (rng-driven)."""
    img, lab = sample["image"], sample["labels"]
    for ax in (0, 1):
        if rng.random() < 0.5:
            img, lab = np.flip(img, ax + 1), np.flip(lab, ax)
    return {"image": img.copy(), "labels": lab.copy()}


def test_targets_are_computed_after_augmentation_and_epochs():
    ds = SegmentationDataset("nuclei", 4, size=48, n_objects=8, augment=flip_all, targets=("weight_map",))
    raw = SegmentationDataset("nuclei", 4, size=48, n_objects=8)
    seen_flip = False
    for i in range(4):
        s = ds[i]
        lab = s["labels"].numpy()
        np.testing.assert_allclose(s["weight_map"][0].numpy(), T.unet_weight_map(lab), rtol=1e-6)
        r = raw[i]["labels"].numpy()
        variants = [r, r[::-1], r[:, ::-1], r[::-1, ::-1]]
        assert any(np.array_equal(lab, v) for v in variants)
        seen_flip |= not np.array_equal(lab, r)
        assert torch.equal(ds[i]["image"], s["image"])           # same epoch: same augmentation
    assert seen_flip
    before = [ds[i]["labels"] for i in range(4)]
    changed = False
    for e in range(1, 4):
        ds.set_epoch(e)
        changed |= any(not torch.equal(ds[i]["labels"], before[i]) for i in range(4))
    assert changed
    ds.set_epoch(0)
    assert all(torch.equal(ds[i]["labels"], before[i]) for i in range(4))


def test_with_comp448_augment():
    aug = pytest.importorskip("comp448.augment")
    t = aug.Compose([aug.RandomFlip(), aug.RandomRotate(degrees=20, p=1.0), aug.ElasticDeform(sigma=3, p=1.0)])
    ds = SegmentationDataset("nuclei", 2, size=48, n_objects=8, augment=t, targets=("contour", "inner"))
    raw = SegmentationDataset("nuclei", 2, size=48, n_objects=8)
    s = ds[0]
    assert not torch.equal(s["labels"], raw[0]["labels"])
    assert s["image"].dtype == torch.float32 and s["image"].shape == (1, 48, 48)
    np.testing.assert_allclose(s["contour"][0].numpy(), T.contour_map(s["labels"].numpy()), rtol=1e-6)
    np.testing.assert_allclose(s["inner"][0].numpy(), T.inner_distance_map(s["labels"].numpy()), rtol=1e-6)
    assert torch.equal(ds[0]["image"], s["image"])


def test_dataloader_batches():
    ds = SegmentationDataset("glands", 4, size=48, n_objects=3, targets=("contour", "amplitudes"))
    batch = next(iter(DataLoader(ds, batch_size=4)))
    assert batch["image"].shape == (4, 3, 48, 48) and batch["contour"].shape == (4, 1, 48, 48)
    assert batch["amplitudes"].shape == (4, 5)


def test_target_kwargs_passed():
    ds = SegmentationDataset("nuclei", 1, size=48, n_objects=8, targets=("weight_map", "amplitudes"),
                             target_kwargs={"weight_map": {"w0": 3.0, "sigma": 2.0},
                                            "amplitudes": {"n_harmonics": 3}})
    s = ds[0]
    np.testing.assert_allclose(s["weight_map"][0].numpy(),
                               T.unet_weight_map(s["labels"].numpy(), w0=3.0, sigma=2.0), rtol=1e-6)
    assert s["amplitudes"].shape == (3,)


def test_sample_dataset_over_pairs():
    img = np.random.default_rng(0).random((20, 20)).astype(np.float32)
    lab = np.zeros((20, 20), np.int32)
    lab[5:10, 5:10] = 1
    ds = SampleDataset([(img, lab)], targets=("outer",))
    s = ds[0]
    assert s["image"].shape == (1, 20, 20) and s["labels"].dtype == torch.int64
    np.testing.assert_allclose(s["outer"][0].numpy(), T.outer_distance_map(lab), rtol=1e-6)
    empty = SampleDataset([(img, np.zeros((20, 20), int))], targets=("amplitudes",))
    assert torch.equal(empty[0]["amplitudes"], torch.zeros(5))


def np_fft2c(z):                   # the centred orthonormal DFT of comp448.kspace, written in NumPy
    return np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(z, axes=(-2, -1)), norm="ortho"), axes=(-2, -1))


def np_ifft2c(k):
    return np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(k, axes=(-2, -1)), norm="ortho"), axes=(-2, -1))


def test_mri_dataset():
    ds = MRIDataset(2, size=48, acceleration=4)
    s = ds[0]
    assert set(s) == {"kspace", "mask_kspace", "zero_filled", "image", "mask", "labels"}
    assert s["kspace"].dtype == torch.complex64 and s["kspace"].shape == (1, 48, 48)
    for k in ("mask_kspace", "zero_filled", "image", "mask"):
        assert s[k].dtype == torch.float32 and s[k].shape == (1, 48, 48), k
    m = s["mask_kspace"][0].numpy()
    assert (m == m[:, :1]).all() and m[:, 0].sum() == 12          # whole rows, H / 4 of them
    y_np = m * np_fft2c(s["image"][0].double().numpy())           # measured k-space, NumPy oracle
    np.testing.assert_allclose(s["kspace"][0].numpy(), y_np, atol=1e-5)
    np.testing.assert_allclose(s["zero_filled"][0].numpy(), np_ifft2c(y_np).real, atol=1e-5)
    assert torch.equal(MRIDataset(2, size=48)[1]["image"], ds[1]["image"])
    assert not torch.equal(ds[0]["mask_kspace"], ds[1]["mask_kspace"])
    batch = next(iter(DataLoader(ds, batch_size=2)))
    assert batch["kspace"].shape == (2, 1, 48, 48)


def test_mri_dataset_complex_channels():
    s = MRIDataset(1, size=48, channels=2)[0]
    assert s["zero_filled"].shape == s["image"].shape == (2, 48, 48)
    assert torch.equal(s["image"][0], MRIDataset(1, size=48)[0]["image"][0]) and not s["image"][1].any()
    zf = np_ifft2c(s["kspace"][0].numpy().astype(complex))        # F^-1(y), complex
    np.testing.assert_allclose(s["zero_filled"][0].numpy(), zf.real, atol=1e-5)
    np.testing.assert_allclose(s["zero_filled"][1].numpy(), zf.imag, atol=1e-5)
    assert np.abs(zf.imag).max() > 1e-3              # a random row mask is not point-symmetric


@pytest.mark.parametrize("channels", [1, 2])
def test_mri_dataset_is_consistent_with_segnetmri(channels):
    """The regression test for the k-space layout bug: data and nets once used different FFT
    shifts and masks of different directions, so data consistency moved the TRUE image by 0.8."""
    from comp448.nets import SegNetMRI, data_consistency, undersample
    batch = next(iter(DataLoader(MRIDataset(2, size=32, seed=3, channels=channels), batch_size=2)))
    x, y, m = batch["image"], batch["kspace"][:, 0], batch["mask_kspace"][:, 0]
    torch.testing.assert_close(data_consistency(x, y, m), x, atol=1e-5, rtol=0)     # true image unchanged
    zf, y_net = undersample(x, m)                                   # the network module's measurement
    torch.testing.assert_close(y_net, y, atol=1e-5, rtol=0)
    torch.testing.assert_close(zf, batch["zero_filled"], atol=1e-5, rtol=0)
    # DC of an all-zero image is the zero-filled image F^-1(m * y)
    torch.testing.assert_close(data_consistency(torch.zeros_like(x), y, m), batch["zero_filled"], atol=1e-5, rtol=0)
    if channels == 2:                                               # exact k-space agreement on the mask
        net = SegNetMRI(in_channels=2, num_classes=2, n_blocks=1, base=2, depth=1).eval()
        with torch.no_grad():
            rec = net(batch["zero_filled"], y, m)["recon"]
        k_rec = np_fft2c(rec[:, 0].double().numpy() + 1j * rec[:, 1].double().numpy())
        on = m.numpy().astype(bool)
        np.testing.assert_allclose(k_rec[on], y.numpy()[on], atol=1e-5)


def test_super_resolution_dataset():
    ds = SuperResolutionDataset(2, shape=(8, 24, 24), factor=2, n_objects=6)
    s = ds[0]
    assert s["thick"].shape == s["thin"].shape == (1, 8, 24, 24) and s["thick_slices"].shape == (1, 4, 24, 24)
    np.testing.assert_allclose(s["thick"][0].numpy(), upsample_slices(s["thick_slices"][0].numpy(), 2),
                               atol=1e-6)
    assert not torch.equal(ds[0]["thin"], ds[1]["thin"])


@pytest.mark.parametrize("call,exc,word", [
    (lambda: SegmentationDataset("cells", 2), ValueError, "kind"),
    (lambda: SegmentationDataset("nuclei", 0, size=48), ValueError, "n"),
    (lambda: SegmentationDataset("nuclei", 1, size=8), ValueError, "size"),
    (lambda: SegmentationDataset("nuclei", 1, size=48, targets=("edges",)), ValueError, "targets"),
    (lambda: SegmentationDataset("nuclei", 1, size=48, touching=3), ValueError, "touching"),
    (lambda: SegmentationDataset("nuclei", 1, size=48, augment=3), TypeError, "augment"),
    (lambda: SegmentationDataset("nuclei", 1, size=48, seed=-1), ValueError, "seed"),
    (lambda: SegmentationDataset("nuclei", 1, size=48, target_kwargs={"x": {}}), ValueError, "target_kwargs"),
    (lambda: SegmentationDataset("nuclei", 1, size=48, target_kwargs=[1]), TypeError, "target_kwargs"),
    (lambda: SegmentationDataset("blobs3d", 1, size=(8, 24, 24), n_objects=3, targets=("amplitudes",))[0],
     ValueError, "amplitudes"),
    (lambda: SegmentationDataset("nuclei", 1, size=48, augment=lambda s, r: 1)[0], TypeError, "augment"),
    (lambda: SegmentationDataset("nuclei", 2, size=48)[2], IndexError, "index"),
    (lambda: SegmentationDataset("nuclei", 2, size=48).set_epoch(-1), ValueError, "epoch"),
    (lambda: SampleDataset([(np.zeros((3, 8, 8)), np.zeros((9, 9), int))]), ValueError, "image"),
    (lambda: SampleDataset([(np.zeros((8, 8)), np.zeros((8, 8)))]), TypeError, "labels"),
    (lambda: MRIDataset(0), ValueError, "n"),
    (lambda: MRIDataset(1, size=32, channels=3), ValueError, "channels"),
    (lambda: SuperResolutionDataset(1, shape=(10, 24, 24), factor=4), ValueError, "factor"),
])
def test_errors(call, exc, word):
    with pytest.raises(exc, match=word):
        call()
