import math

import numpy as np
import pytest
from scipy import ndimage as ndi

from comp448.targets import border_distances, class_weight_map, unet_weight_map

from ._images import touching_labels


def brute_d1_d2(labels, spacing=None):
    """Oracle: one whole-image EDT per object, then sort per pixel (what the fast path avoids)."""
    ks = [k for k in np.unique(labels) if k > 0]
    stack = np.stack([ndi.distance_transform_edt(labels != k, sampling=spacing) for k in ks])
    stack = np.sort(stack, axis=0)
    inf = np.full(labels.shape, np.inf)
    return (stack[0] if len(ks) else inf), (stack[1] if len(ks) > 1 else inf)


def brute_unet(labels, w0, sigma, cw, spacing=None):
    d1, d2 = brute_d1_d2(labels, spacing)
    w = np.where(labels > 0, cw[1], cw[0]).astype(np.float64)
    bg = labels == 0
    if len([k for k in np.unique(labels) if k > 0]) >= 2:
        w[bg] += w0 * np.exp(-(d1[bg] + d2[bg]) ** 2 / (2 * sigma ** 2))
    return w


# ---------------------------------------------------------------- class weights
def test_class_weight_map_hand_computed():
    m = np.zeros((4, 4), int)
    m[:2, :2] = 3                      # 4 foreground pixels of 16: f_fg = 1/4, f_bg = 3/4
    w = class_weight_map(m)            # 1/f = 4 and 4/3, divided by the max
    assert w.dtype == np.float32 and w.shape == m.shape
    assert np.allclose(w[m > 0], 1.0) and np.allclose(w[m == 0], 1 / 3)
    wm = class_weight_map(m, normalize="mean")   # N / (2 n_c) = 2 and 2/3
    assert np.allclose(wm[m > 0], 2.0) and np.allclose(wm[m == 0], 2 / 3)
    assert wm.mean() == pytest.approx(1.0)
    assert (wm[m > 0].sum()) == pytest.approx(wm[m == 0].sum())


@pytest.mark.parametrize("normalize", ["max", "mean"])
def test_class_weight_map_one_class_only(normalize):
    assert np.all(class_weight_map(np.zeros((3, 5), int), normalize) == 1)
    assert np.all(class_weight_map(np.ones((2, 3, 4), bool), normalize) == 1)


# ---------------------------------------------------------------- U-Net weight map, hand cases
def test_unet_weight_map_hand_computed_row():
    lab = np.array([[1, 0, 2, 0, 0, 3]])
    w = unet_weight_map(lab, w0=10, sigma=5, class_weights=(1, 2))
    g = lambda s: 1 + 10 * math.exp(-s * s / 50)
    # column 1: d = 1 (object 1), 1 (object 2); column 3: 1 (obj 2), 2 (obj 3); column 4: 1 (obj 3), 2 (obj 2)
    assert w[0, 1] == pytest.approx(g(2), abs=1e-5)
    assert w[0, 3] == pytest.approx(g(3), abs=1e-5)
    assert w[0, 4] == pytest.approx(g(3), abs=1e-5)
    assert np.all(w[lab > 0] == 2)     # no border term on objects


def test_unet_weight_map_hand_computed_diagonal():
    lab = np.zeros((3, 3), int)
    lab[0, 0], lab[2, 2] = 1, 2
    w = unet_weight_map(lab, w0=4, sigma=2, class_weights=(0.5, 1))
    # corner (0, 2): d1 = d2 = 2 -> 0.5 + 4 exp(-16/8); centre: sqrt2 + sqrt2 -> 0.5 + 4 exp(-8/8)
    assert w[0, 2] == pytest.approx(0.5 + 4 * math.exp(-2), abs=1e-6)
    assert w[1, 1] == pytest.approx(0.5 + 4 * math.exp(-1), abs=1e-6)
    assert w[1, 0] == pytest.approx(0.5 + 4 * math.exp(-(1 + math.sqrt(5)) ** 2 / 8), abs=1e-6)


def test_unet_weight_map_fewer_than_two_objects_is_class_weight():
    lab = np.zeros((10, 10), int)
    lab[3:6, 3:6] = 7
    assert np.array_equal(unet_weight_map(lab), class_weight_map(lab))
    assert np.array_equal(unet_weight_map(np.zeros((6, 6), int), class_weights=(2, 3)), np.full((6, 6), 2.0))


# ---------------------------------------------------------------- against the brute force
@pytest.mark.parametrize("seed", [0, 1])
def test_unet_weight_map_matches_brute_force_2d(seed):
    lab = touching_labels((64, 64), n=15, seed=seed)
    fast = unet_weight_map(lab)
    n_bg, n_fg = np.count_nonzero(lab == 0), np.count_nonzero(lab)
    inv = np.array([lab.size / n_bg, lab.size / n_fg])   # 1 / frequency, divided by its max
    slow = brute_unet(lab, 10.0, 5.0, inv / inv.max())
    assert fast.dtype == np.float32 and fast.shape == lab.shape
    assert np.abs(fast - slow).max() <= 1e-4
    assert (fast - class_weight_map(lab)).max() > 5      # the border term is really there


def test_unet_weight_map_matches_brute_force_3d_with_spacing():
    lab = touching_labels((12, 20, 20), n=8, seed=3)
    spacing = (2.0, 1.0, 0.5)
    fast = unet_weight_map(lab, w0=5, sigma=3, class_weights=(1, 1), spacing=spacing)
    slow = brute_unet(lab, 5.0, 3.0, (1, 1), spacing=spacing)
    assert np.abs(fast - slow).max() <= 1e-4
    assert np.abs(unet_weight_map(lab, w0=5, sigma=3, class_weights=(1, 1)) - slow).max() > 1e-2


def test_border_distances_exact_where_within_max_distance():
    lab = touching_labels((40, 50), n=10, seed=4)
    t1, t2 = brute_d1_d2(lab)
    e1, e2 = border_distances(lab)                       # max_distance = inf: exact everywhere
    assert np.allclose(e1, t1) and np.allclose(e2, t2)
    assert np.all(e1[lab > 0] == 0)
    c1, c2 = border_distances(lab, max_distance=6.0)
    for c, t in ((c1, t1), (c2, t2)):
        near = t <= 6.0
        assert np.allclose(c[near], t[near])
        assert np.all(c[~near] >= t[~near]) and np.all(c[~near] > 6.0)


@pytest.mark.parametrize("tol", [0.5, 1e-3])
def test_unet_weight_map_truncation_error_bound(tol):
    lab = touching_labels((64, 64), n=15, seed=5)
    exact = brute_unet(lab, 10.0, 5.0, (1, 1))
    fast = unet_weight_map(lab, class_weights=(1, 1), tol=tol).astype(np.float64)
    err = exact - fast
    assert err.max() < tol + 1e-5                         # |error| < tol ...
    assert err.min() > -1e-5                              # ... and the map never overshoots
    if tol == 0.5:
        assert err.max() > 1e-3                           # the truncation is real, so the bound is not vacuous


def test_unet_weight_map_truncation_error_bound_3d_anisotropic():
    lab = touching_labels((12, 40, 40), n=30, seed=8)
    sp = (2.0, 0.7, 1.0)
    exact = brute_unet(lab, 10.0, 1.5, (1, 1), spacing=sp)
    fast = unet_weight_map(lab, sigma=1.5, class_weights=(1, 1), spacing=sp, tol=0.5).astype(np.float64)
    err = exact - fast
    assert err.max() < 0.5 + 1e-5 and err.min() > -1e-5 and err.max() > 1e-3


def test_unet_weight_map_tol_zero_is_exact():
    lab = touching_labels((32, 32), n=8, seed=6)
    exact = brute_unet(lab, 10.0, 2.0, (1, 1))
    assert np.abs(unet_weight_map(lab, sigma=2.0, class_weights=(1, 1), tol=0) - exact).max() < 1e-5


def test_unet_weight_map_default_class_weights_and_no_term_on_objects():
    lab = touching_labels((40, 40), n=9, seed=7)
    w = unet_weight_map(lab)
    cw = class_weight_map(lab)
    assert np.array_equal(w[lab > 0], cw[lab > 0])
    assert np.all(w[lab == 0] >= cw[lab == 0])
    w0 = unet_weight_map(lab, w0=0.0)
    assert np.array_equal(w0, cw)


# ---------------------------------------------------------------- error paths
@pytest.mark.parametrize("kwargs, exc, word", [
    ({"w0": -1.0}, ValueError, "w0"),
    ({"w0": math.inf}, ValueError, "w0"),
    ({"w0": "10"}, TypeError, "w0"),
    ({"sigma": 0.0}, ValueError, "sigma"),
    ({"sigma": math.nan}, ValueError, "sigma"),
    ({"tol": -1e-6}, ValueError, "tol"),
    ({"class_weights": (1.0,)}, TypeError, "class_weights"),
    ({"class_weights": "ab"}, TypeError, "class_weights"),
    ({"class_weights": 3.0}, TypeError, "class_weights"),
    ({"class_weights": (1.0, -2.0)}, ValueError, "class_weights"),
    ({"class_weights": (1.0, math.inf)}, ValueError, "class_weights"),
    ({"class_weights": (1.0, None)}, TypeError, "class_weights"),
    ({"spacing": (1.0, 2.0, 3.0)}, ValueError, "spacing"),
    ({"spacing": 0.0}, ValueError, "spacing"),
    ({"spacing": (1.0, math.inf)}, ValueError, "spacing"),
])
def test_unet_weight_map_bad_arguments(kwargs, exc, word):
    lab = np.array([[1, 0, 2]])
    with pytest.raises(exc, match=word):
        unet_weight_map(lab, **kwargs)


@pytest.mark.parametrize("fn", [unet_weight_map, class_weight_map, border_distances])
@pytest.mark.parametrize("bad, exc", [
    (np.array([1, 0, 2]), ValueError),                   # 1D
    (np.zeros((2, 2, 2, 2), int), ValueError),           # 4D
    (np.array([[0.5, 1.0]]), ValueError),                # non-integer
    (np.array([[0.0, 1.0]]), TypeError),                 # float dtype
    (np.array([[np.nan, 1.0]]), ValueError),             # NaN
    (np.array([[-1, 1]]), ValueError),                   # negative label
    ([[0, 1], [1, 0]], TypeError),                       # not an array
])
def test_bad_labels(fn, bad, exc):
    with pytest.raises(exc, match="labels|mask"):
        fn(bad)


def test_class_weight_map_bad_normalize():
    with pytest.raises(ValueError, match="normalize"):
        class_weight_map(np.zeros((2, 2), int), normalize="median")


def test_border_distances_bad_max_distance():
    with pytest.raises(ValueError, match="max_distance"):
        border_distances(np.zeros((2, 2), int), max_distance=-1.0)
