"""Invariant tests for comp448.augment (joint image/label transforms, 2D and 3D)."""
import numpy as np
import pytest
from scipy import ndimage
from skimage.segmentation import find_boundaries

from comp448 import augment as A

MODES = list(A.MODES)


def make_labels(shape, seed=0):
    """A few non-touching boxes with instance ids 1..K, kept away from the border."""
    rng = np.random.default_rng(seed)
    lab = np.zeros(shape, np.int32)
    k = 0
    for _ in range(40):
        lo = [int(rng.integers(3, s - 8)) for s in shape]
        hi = [l + int(rng.integers(3, 7)) for l in lo]
        box = tuple(slice(l - 1, h + 1) for l, h in zip(lo, hi))
        if lab[box].any():
            continue
        k += 1
        lab[tuple(slice(l, h) for l, h in zip(lo, hi))] = k
        if k == 4:
            break
    return lab


LAB2 = make_labels((28, 32))
LAB3 = make_labels((14, 16, 18), seed=1)


def img_of(lab, channels=1):
    """image = labels cast to float (channel c holds (c + 1) * labels)."""
    return np.stack([(c + 1) * lab.astype(np.float32) for c in range(channels)])


def geometric(lab, rng, order=3, mode="reflect"):
    """One call of every resampling transform with random parameters: name -> (image, labels)."""
    img = img_of(lab)
    nd = lab.ndim
    opts = dict(order=order, mode=mode)
    return {
        "rotate": A.rotate(img, lab, rng.uniform(-180, 180), **opts),
        "scale": A.scale(img, lab, rng.uniform(0.8, 1.25), **opts),
        "scale_aniso": A.scale(img, lab, tuple(rng.uniform(0.8, 1.25, nd)), **opts),
        "translate": A.translate(img, lab, tuple(rng.uniform(-4, 4, nd)), **opts),
        "elastic": A.elastic_deform(img, lab, rng, sigma=3.0, **opts),
    }


# ----------------------------------------------------------------------------- exact transforms

@pytest.mark.parametrize("lab", [LAB2, LAB3], ids=["2d", "3d"])
def test_flip_twice_is_identity_and_matches_numpy(lab):
    img = img_of(lab, channels=2)
    for axis in [*range(lab.ndim), -1, (0, 1)]:
        i1, l1 = A.flip(img, lab, axis)
        np.testing.assert_array_equal(l1, np.flip(lab, axis))
        np.testing.assert_array_equal(i1[1], np.flip(img[1], axis))
        i2, l2 = A.flip(i1, l1, axis)
        np.testing.assert_array_equal(i2, img)
        np.testing.assert_array_equal(l2, lab)


@pytest.mark.parametrize("lab", [LAB2, LAB3], ids=["2d", "3d"])
def test_rot90_four_times_is_identity(lab):
    img = img_of(lab, channels=2)
    i, l = img, lab
    for _ in range(4):
        i, l = A.rot90(i, l, 1)
        np.testing.assert_array_equal(i[0], l)  # image and labels rotate together
    np.testing.assert_array_equal(i, img)
    np.testing.assert_array_equal(l, lab)
    i, l = A.rot90(*A.rot90(img, lab, 3, axes=(0, 1)), -3, axes=(0, 1))
    np.testing.assert_array_equal(l, lab)
    assert A.rot90(img, lab, 1)[1].shape == lab.shape[:-2] + lab.shape[-1:] + lab.shape[-2:-1]


@pytest.mark.parametrize("axes", [(0, 1), (1, 0), (0, 2)])
def test_rotate_by_quarter_turns_equals_rot90(axes):
    lab = make_labels((20, 20, 20), seed=3) if 2 in axes else make_labels((21, 21), seed=3)
    img = img_of(lab) + np.linspace(0, 1, lab.size).reshape(lab.shape)[None].astype(np.float32)
    for k in (1, 2, 3, -1):
        i_ref, l_ref = A.rot90(img, lab, k, axes=axes)
        i, l = A.rotate(img, lab, 90.0 * k, axes=axes)
        np.testing.assert_array_equal(l, l_ref)
        np.testing.assert_allclose(i, i_ref, atol=1e-4)


# ----------------------------------------------------------------------------- identities

@pytest.mark.parametrize("lab", [LAB2, LAB3], ids=["2d", "3d"])
@pytest.mark.parametrize("mode", MODES)
def test_zero_transforms_are_identity(lab, mode):
    img = img_of(lab, 2) + np.random.default_rng(0).random((2, *lab.shape)).astype(np.float32)
    zero = np.zeros((lab.ndim, *lab.shape))
    for i, l in [A.rotate(img, lab, 0.0, mode=mode), A.scale(img, lab, 1.0, mode=mode),
                 A.translate(img, lab, 0, mode=mode), A.warp(img, lab, zero, mode=mode),
                 A.elastic_deform(img, lab, np.random.default_rng(1), sigma=0.0, mode=mode)]:
        np.testing.assert_array_equal(l, lab)
        np.testing.assert_allclose(i, img, atol=1e-5)
        assert i.dtype == img.dtype and l.dtype == lab.dtype


def test_integer_translate_matches_slicing_and_constant_fill():
    img = img_of(LAB2)
    i, l = A.translate(img, LAB2, (3, -2), mode="constant", cval=-1.0)
    np.testing.assert_array_equal(l[3:, :-2], LAB2[:-3, 2:])
    assert (l[:3] == 0).all() and (l[:, -2:] == 0).all()
    np.testing.assert_allclose(i[0, 3:, :-2], img[0, :-3, 2:], atol=1e-5)
    np.testing.assert_allclose(i[0, :3], -1.0, atol=1e-5)


def test_constant_warp_equals_translate():
    rng = np.random.default_rng(2)
    img = rng.random((2, 16, 18))
    shift = np.array([1.5, -2.25])
    u = -shift[:, None, None] * np.ones((2, 16, 18))
    for mode in MODES:
        a = A.warp(img, LAB2[:16, :18], u, mode=mode)
        b = A.translate(img, LAB2[:16, :18], tuple(shift), mode=mode)
        np.testing.assert_allclose(a[0], b[0], atol=1e-8)
        np.testing.assert_array_equal(a[1], b[1])


def test_scale_magnifies_about_the_centre():
    lab = np.zeros((21, 21), np.int32)
    lab[8:13, 8:13] = 1  # 5x5 centred
    _, l = A.scale(img_of(lab), lab, 1.8)
    ys, xs = np.nonzero(l)
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == (6, 14, 6, 14)  # 2.5 px half-width -> 4.5 about centre 10
    _, l = A.scale(img_of(lab), lab, (1.0, 1.8))
    ys, xs = np.nonzero(l)
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == (8, 12, 6, 14)


# ----------------------------------------------------------------------------- label invariants

@pytest.mark.parametrize("lab", [LAB2, LAB3], ids=["2d", "3d"])
@pytest.mark.parametrize("mode", MODES)
def test_labels_stay_integer_in_the_set_and_follow_the_image_exactly(lab, mode):
    """With order 0 for the image too, image and labels go through the same geometry: equal."""
    rng = np.random.default_rng(5)
    allowed = set(np.unique(lab).tolist()) | {0}
    for name, (i, l) in geometric(lab, rng, order=0, mode=mode).items():
        assert l.dtype == lab.dtype and l.shape == lab.shape, name
        assert set(np.unique(l).tolist()) <= allowed, name
        np.testing.assert_array_equal(i[0], l.astype(np.float32), err_msg=name)


@pytest.mark.parametrize("lab", [LAB2, LAB3], ids=["2d", "3d"])
def test_instance_ids_survive_moderate_transforms(lab):
    """Every instance id is still there, exactly once as one connected piece (never blended)."""
    rng = np.random.default_rng(6)
    img, nd = img_of(lab), lab.ndim
    for _ in range(3):
        for name, (_, l) in {
            "rotate": A.rotate(img, lab, rng.uniform(-20, 20), mode="constant"),
            "scale": A.scale(img, lab, rng.uniform(0.9, 1.1), mode="constant"),
            "translate": A.translate(img, lab, tuple(rng.uniform(-2, 2, nd)), mode="constant"),
            "elastic": A.elastic_deform(img, lab, rng, sigma=1.5, mode="constant"),
        }.items():
            np.testing.assert_array_equal(np.unique(l), np.unique(lab), err_msg=name)
            for k in np.unique(l)[1:]:
                assert ndimage.label(l == k)[1] == 1, (name, k)


@pytest.mark.parametrize("lab", [LAB2, LAB3], ids=["2d", "3d"])
@pytest.mark.parametrize("order", [1, 3])
def test_mask_moves_with_the_image(lab, order):
    """image = labels > 0 as float, cubic/linear resampled, thresholded at 0.5: it disagrees with the
    nearest-resampled labels only on pixels next to an object boundary, and on few of them."""
    rng = np.random.default_rng(7)
    fg = (lab > 0).astype(np.int32)
    for name, (i, l) in geometric(fg, rng, order=order).items():
        wrong = (i[0] > 0.5) != (l > 0)
        near_edge = find_boundaries(l, mode="thick", connectivity=l.ndim)  # incl. diagonal
        assert not (wrong & ~near_edge).any(), name
        assert wrong.sum() <= 0.5 * near_edge.sum(), name


def test_channels_are_transformed_identically():
    rng = np.random.default_rng(8)
    base = rng.random((1, 20, 22)).astype(np.float32)
    img = np.concatenate([base, 3 * base])
    for name, (i, _) in {
        "rotate": A.rotate(img, LAB2[:20, :22], 33.0),
        "elastic": A.elastic_deform(img, LAB2[:20, :22], rng),
    }.items():
        np.testing.assert_allclose(i[1], 3 * i[0], rtol=1e-5, atol=1e-5, err_msg=name)


def test_bool_labels_and_float64_images_keep_their_dtype():
    lab = LAB2 > 0
    i, l = A.rotate(img_of(LAB2).astype(np.float64), lab, 20.0)
    assert l.dtype == bool and i.dtype == np.float64
    i, l = A.elastic_deform(img_of(LAB2).astype(np.float16), LAB2.astype(np.uint8), np.random.default_rng(0))
    assert l.dtype == np.uint8 and i.dtype == np.float16


# ----------------------------------------------------------------------------- elastic field

def test_random_displacement_is_the_interpolated_coarse_grid():
    shape, sigma = (21, 31), 10.0
    u = A.random_displacement(shape, np.random.default_rng(3), grid=3, sigma=sigma)
    coarse = np.random.default_rng(3).normal(0.0, sigma, size=(2, 3, 3))  # the same draws
    assert u.shape == (2, 21, 31)
    # grid points sit on pixels 0, (n-1)/2, n-1 of each axis
    for gi, y in enumerate((0, 10, 20)):
        for gj, x in enumerate((0, 15, 30)):
            np.testing.assert_allclose(u[:, y, x], coarse[:, gi, gj], atol=1e-9)
    # smooth: neighbouring pixels differ by far less than sigma
    assert np.abs(np.diff(u, axis=1)).max() < sigma / 2 and np.abs(np.diff(u, axis=2)).max() < sigma / 2


def test_random_displacement_3d_and_statistics():
    u = A.random_displacement((9, 11, 13), np.random.default_rng(0), grid=(2, 3, 4), sigma=2.0)
    assert u.shape == (3, 9, 11, 13)
    corners = np.stack([A.random_displacement((5, 5), np.random.default_rng(s), sigma=10.0)[:, 0, 0]
                        for s in range(400)])
    assert corners.std() == pytest.approx(10.0, rel=0.1)
    assert abs(corners.mean()) < 1.5


# ----------------------------------------------------------------------------- random transforms

ALL = [A.RandomFlip(p=1.0), A.RandomRot90(p=1.0), A.RandomRotate(p=1.0), A.RandomScale(p=1.0),
       A.RandomTranslate(p=1.0), A.GaussianNoise(p=1.0), A.ElasticDeform(p=1.0)]


@pytest.mark.parametrize("lab", [LAB2, LAB3], ids=["2d", "3d"])
@pytest.mark.parametrize("t", ALL + [A.Compose(ALL)], ids=lambda t: type(t).__name__)
def test_random_transforms_are_deterministic_and_pass_other_keys(lab, t):
    extra = {"name": "case-1", "weight": np.ones(3)}
    sample = {"image": img_of(lab), "labels": lab, **extra}
    a = t(sample, np.random.default_rng(11))
    b = t(sample, np.random.default_rng(11))
    np.testing.assert_array_equal(a["image"], b["image"])
    np.testing.assert_array_equal(a["labels"], b["labels"])
    for k, v in extra.items():
        assert a[k] is v
    assert sample["labels"] is lab and set(sample) == {"image", "labels", *extra}  # input untouched
    assert a["labels"].dtype == lab.dtype and set(np.unique(a["labels"])) <= set(np.unique(lab)) | {0}
    assert a["image"].shape[0] == 1 and a["image"].shape[1:] == a["labels"].shape
    assert not np.array_equal(a["image"], sample["image"]) or isinstance(t, A.RandomRot90)


def test_different_seeds_differ_and_probability_zero_is_identity():
    sample = {"image": img_of(LAB2), "labels": LAB2}
    t = A.ElasticDeform(p=1.0)
    a, b = t(sample, np.random.default_rng(1)), t(sample, np.random.default_rng(2))
    assert not np.array_equal(a["image"], b["image"])
    for cls in (A.RandomFlip, A.RandomRot90, A.RandomRotate, A.RandomScale, A.RandomTranslate,
                A.GaussianNoise, A.ElasticDeform):
        out = cls(p=0.0)(sample, np.random.default_rng(0))
        assert out["image"] is sample["image"] and out["labels"] is sample["labels"]
    out = A.Compose(ALL, p=0.0)(sample, np.random.default_rng(0))
    assert out["image"] is sample["image"]


def test_probability_is_respected():
    sample = {"image": img_of(LAB2), "labels": LAB2}
    rng = np.random.default_rng(0)
    t = A.RandomRotate(p=0.3)
    applied = sum(not np.array_equal(t(sample, rng)["labels"], LAB2) for _ in range(300))
    assert 60 <= applied <= 120
    # RandomFlip: p per axis, so in 2D "both axes flipped" happens with p^2
    f = A.RandomFlip(p=0.5)
    both = sum(np.array_equal(f(sample, rng)["labels"], LAB2[::-1, ::-1]) for _ in range(400))
    assert 70 <= both <= 130


def test_gaussian_noise_std_and_labels():
    rng = np.random.default_rng(0)
    img = np.zeros((2, 64, 64), np.float32)
    noisy = A.gaussian_noise(img, 0.2, rng)
    assert noisy.dtype == np.float32 and noisy.std() == pytest.approx(0.2, rel=0.05)
    out = A.GaussianNoise(std=(0.05, 0.1), p=1.0)({"image": img, "labels": np.zeros((64, 64), int)}, rng)
    assert 0.04 < out["image"].std() < 0.11 and (out["labels"] == 0).all()


def test_rot90_transform_can_keep_shapes():
    lab = make_labels((20, 26))
    t = A.RandomRot90(p=1.0, ks=(2,))
    out = t({"image": img_of(lab), "labels": lab}, np.random.default_rng(0))
    np.testing.assert_array_equal(out["labels"], lab[::-1, ::-1])


# ----------------------------------------------------------------------------- error paths

IMG, LAB = img_of(LAB2), LAB2
RNG = np.random.default_rng(0)
FUNCS = {
    "flip": lambda i, l: A.flip(i, l, 0),
    "rot90": lambda i, l: A.rot90(i, l, 1),
    "rotate": lambda i, l: A.rotate(i, l, 10.0),
    "scale": lambda i, l: A.scale(i, l, 1.1),
    "translate": lambda i, l: A.translate(i, l, 1.0),
    "elastic_deform": lambda i, l: A.elastic_deform(i, l, np.random.default_rng(0)),
    "warp": lambda i, l: A.warp(i, l, np.zeros((2, *l.shape)) if getattr(l, "ndim", 0) == 2 else None),
    "RandomRotate": lambda i, l: A.RandomRotate(p=1.0)({"image": i, "labels": l}, np.random.default_rng(0)),
    "RandomFlip": lambda i, l: A.RandomFlip(p=1.0)({"image": i, "labels": l}, np.random.default_rng(0)),
}


@pytest.mark.parametrize("name", list(FUNCS))
def test_image_and_label_errors(name):
    f = FUNCS[name]
    with pytest.raises(TypeError, match="image must be a NumPy array"):
        f(IMG.tolist(), LAB)
    with pytest.raises(TypeError, match="image must have a floating dtype"):
        f(IMG.astype(np.int32), LAB)
    with pytest.raises(ValueError, match="image must be channels-first"):
        f(IMG[0], LAB)
    bad = IMG.copy()
    bad[0, 1, 1] = np.nan
    with pytest.raises(ValueError, match="image contains NaN"):
        f(bad, LAB)
    with pytest.raises(ValueError, match="labels must have the image's spatial shape"):
        f(IMG, LAB[:-1])
    with pytest.raises(TypeError, match="labels must have an integer dtype"):
        f(IMG, LAB.astype(np.float32))
    with pytest.raises(ValueError, match="labels must be non-negative"):
        f(IMG, LAB - 1)
    with pytest.raises(TypeError, match="labels must be a NumPy array"):
        f(IMG, LAB.tolist())
    with pytest.raises(ValueError, match="labels must be 2D or 3D"):
        f(IMG, LAB[0])


def test_option_errors():
    with pytest.raises(ValueError, match="axis must index the 2 spatial axes"):
        A.flip(IMG, LAB, 2)
    with pytest.raises(ValueError, match="axis must name distinct axes"):
        A.flip(IMG, LAB, (0, -2))
    with pytest.raises(TypeError, match="axis must be an int"):
        A.flip(IMG, LAB, 0.5)
    with pytest.raises(ValueError, match="axes must name 2 spatial axes"):
        A.rot90(IMG, LAB, 1, axes=(0,))
    with pytest.raises(TypeError, match="k must be an integer"):
        A.rot90(IMG, LAB, 1.5)
    with pytest.raises(ValueError, match="mode must be one of"):
        A.rotate(IMG, LAB, 10.0, mode="bogus")
    with pytest.raises(ValueError, match="mode must be one of"):
        A.RandomScale(mode="grid-mirror")
    with pytest.raises(ValueError, match="order must be <= 5"):
        A.scale(IMG, LAB, 1.1, order=6)
    with pytest.raises(TypeError, match="order must be an integer"):
        A.translate(IMG, LAB, 1.0, order=1.5)
    with pytest.raises(TypeError, match="angle must be a real number"):
        A.rotate(IMG, LAB, "10")
    with pytest.raises(ValueError, match="factor must be > 0"):
        A.scale(IMG, LAB, 0.0)
    with pytest.raises(ValueError, match="shift must have one entry per spatial axis"):
        A.translate(IMG, LAB, (1.0, 2.0, 3.0))
    with pytest.raises(ValueError, match="std must be >= 0"):
        A.gaussian_noise(IMG, -1.0, RNG)
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        A.gaussian_noise(IMG, 1.0, np.random.RandomState(0))
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        A.elastic_deform(IMG, LAB, 0)
    with pytest.raises(ValueError, match="grid must be >= 2"):
        A.elastic_deform(IMG, LAB, RNG, grid=1)
    with pytest.raises(TypeError, match="grid must hold integers"):
        A.random_displacement((8, 8), RNG, grid=2.5)
    with pytest.raises(ValueError, match="sigma must be >= 0"):
        A.random_displacement((8, 8), RNG, sigma=-1.0)
    with pytest.raises(ValueError, match="shape must be 2D or 3D"):
        A.random_displacement((8,), RNG)
    with pytest.raises(TypeError, match="shape must be a sequence of positive ints"):
        A.random_displacement((8, 0), RNG)
    with pytest.raises(ValueError, match="displacement must have shape"):
        A.warp(IMG, LAB, np.zeros((3, *LAB.shape)))
    with pytest.raises(ValueError, match="displacement contains NaN"):
        A.warp(IMG, LAB, np.full((2, *LAB.shape), np.nan))
    with pytest.raises(TypeError, match="displacement must be a real NumPy array"):
        A.warp(IMG, LAB, [[0.0]])


@pytest.mark.parametrize("cls", [A.RandomFlip, A.RandomRot90, A.RandomRotate, A.RandomScale,
                                 A.RandomTranslate, A.GaussianNoise, A.ElasticDeform])
def test_random_transform_errors(cls):
    for p in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="p must"):
            cls(p=p)
    with pytest.raises(TypeError, match="p must be a real number"):
        cls(p="0.5")
    t = cls(p=1.0)
    with pytest.raises(TypeError, match="sample must be a dict"):
        t((IMG, LAB), RNG)
    with pytest.raises(ValueError, match="sample must have keys 'image' and 'labels'"):
        t({"image": IMG}, RNG)
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        t({"image": IMG, "labels": LAB}, 42)
    with pytest.raises(ValueError, match="labels must have the image's spatial shape"):
        t({"image": IMG, "labels": LAB.T}, RNG)


def test_random_transform_option_errors():
    with pytest.raises(ValueError, match="degrees must have low <= high"):
        A.RandomRotate(degrees=(10, -10))
    with pytest.raises(ValueError, match="degrees must be >= 0"):
        A.RandomRotate(degrees=-5)
    with pytest.raises(ValueError, match="factor must be > 0"):
        A.RandomScale(factor=(0.0, 1.0))
    with pytest.raises(TypeError, match="factor must be a pair"):
        A.RandomScale(factor=1.1)
    with pytest.raises(TypeError, match="isotropic must be a bool"):
        A.RandomScale(isotropic="yes")
    with pytest.raises(ValueError, match="max_shift must be >= 0"):
        A.RandomTranslate(max_shift=-1)
    with pytest.raises(ValueError, match="max_shift must have one entry per spatial axis"):
        A.RandomTranslate(max_shift=(1, 2, 3), p=1.0)({"image": IMG, "labels": LAB}, RNG)
    with pytest.raises(ValueError, match="std must be >= 0"):
        A.GaussianNoise(std=-0.1)
    with pytest.raises(ValueError, match="grid must be >= 2"):
        A.ElasticDeform(grid=1)
    with pytest.raises(ValueError, match="sigma must be >= 0"):
        A.ElasticDeform(sigma=-2.0)
    with pytest.raises(TypeError, match="ks must be a non-empty sequence"):
        A.RandomRot90(ks=())
    with pytest.raises(ValueError, match="axes must index the 2 spatial axes"):
        A.RandomFlip(axes=(0, 2), p=1.0)({"image": IMG, "labels": LAB}, RNG)
    with pytest.raises(TypeError, match=r"transforms\[1\] must be callable"):
        A.Compose([A.RandomFlip(), "flip"])
    with pytest.raises(TypeError, match="transforms must be a list of callables"):
        A.Compose(A.RandomFlip())
    with pytest.raises(ValueError, match="p must be <= 1"):
        A.Compose([], p=2.0)
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        A.Compose([A.RandomFlip()])({"image": IMG, "labels": LAB}, None)
