import itertools
import math

import numpy as np
import pytest

from comp448.targets import inner_distance_map, outer_distance_map

from ._images import touching_labels


def pixels_of(lab, k):
    return [p for p in itertools.product(*map(range, lab.shape)) if lab[p] == k]


def brute_inner(lab, alpha, squared, round_centroid=False, nearest_centroid=False, spacing=None):
    """Oracle: loops over objects and pixels; centroid = mean pixel coordinate."""
    sp = np.ones(lab.ndim) if spacing is None else np.asarray(spacing, float)
    ks = [k for k in np.unique(lab) if k > 0]
    cents = {}
    for k in ks:
        c = np.mean(np.array(pixels_of(lab, k), float), axis=0)
        cents[k] = np.floor(c + 0.5) if round_centroid else c
    out = np.zeros(lab.shape)
    for p in itertools.product(*map(range, lab.shape)):
        if lab[p] == 0:
            continue
        cands = ks if nearest_centroid else [lab[p]]
        d = min(math.sqrt(sum(((pi - ci) * s) ** 2 for pi, ci, s in zip(p, cents[k], sp))) for k in cands)
        out[p] = 1 / (1 + alpha * (d * d if squared else d))
    return out


def brute_outer(lab, squared, spacing=None):
    """Oracle: B(a_k) = pixels outside a_k that are 4-adjacent (6-adjacent in 3D) to a_k, in the image."""
    sp = np.ones(lab.ndim) if spacing is None else np.asarray(spacing, float)
    out = np.zeros(lab.shape)
    steps = [tuple(s * (i == j) for j in range(lab.ndim)) for i in range(lab.ndim) for s in (-1, 1)]
    for k in [k for k in np.unique(lab) if k > 0]:
        P = pixels_of(lab, k)
        B = set()
        for p in P:
            for st in steps:
                b = tuple(pi + si for pi, si in zip(p, st))
                if all(0 <= bi < n for bi, n in zip(b, lab.shape)) and lab[b] != k:
                    B.add(b)
        D = {p: min(math.sqrt(sum(((pi - bi) * s) ** 2 for pi, bi, s in zip(p, b, sp))) for b in B) for p in P}
        m = max(D.values())
        for p in P:
            out[p] = (D[p] / m) ** 2 if squared else D[p] / m
    return out


# ---------------------------------------------------------------- inner distance
@pytest.mark.parametrize("squared", [True, False])
def test_inner_matches_brute_force_2d(squared):
    lab = touching_labels((20, 24), n=6, seed=0)
    got = inner_distance_map(lab, alpha=0.1, squared=squared)
    assert got.dtype == np.float32 and got.shape == lab.shape
    assert np.allclose(got, brute_inner(lab, 0.1, squared), atol=1e-6)
    assert np.all(got[lab == 0] == 0) and np.all((got[lab > 0] > 0) & (got[lab > 0] <= 1))


def test_inner_code_form_matches_brute_force():
    # the authors' code: plain distance, rounded centroid, nearest centroid of any object
    lab = touching_labels((20, 24), n=7, seed=1, gap=False)
    got = inner_distance_map(lab, alpha=0.3, squared=False, round_centroid=True, nearest_centroid=True)
    assert np.allclose(got, brute_inner(lab, 0.3, False, True, True), atol=1e-6)
    # and it differs from the slide form
    assert np.abs(got - inner_distance_map(lab, alpha=0.3)).max() > 0.1


def test_inner_3d_with_spacing_matches_brute_force():
    lab = touching_labels((6, 9, 10), n=4, seed=2)
    sp = (2.0, 1.0, 0.5)
    assert np.allclose(inner_distance_map(lab, alpha=0.2, spacing=sp), brute_inner(lab, 0.2, True, spacing=sp),
                       atol=1e-6)
    assert np.allclose(inner_distance_map(lab, alpha=0.2, squared=False, nearest_centroid=True),
                       brute_inner(lab, 0.2, False, nearest_centroid=True), atol=1e-6)


def test_inner_hand_computed():
    lab = np.zeros((5, 5), int)
    lab[1:4, 1:4] = 9                              # centroid (2, 2)
    got = inner_distance_map(lab, alpha=0.5)
    assert got[2, 2] == 1 and got[1, 2] == pytest.approx(1 / 1.5) and got[1, 1] == pytest.approx(1 / 2)
    assert inner_distance_map(lab, alpha=0.5, squared=False)[1, 1] == pytest.approx(1 / (1 + 0.5 * math.sqrt(2)))
    assert np.all(inner_distance_map(np.zeros((4, 4), int)) == 0)


# ---------------------------------------------------------------- outer distance
@pytest.mark.parametrize("squared", [True, False])
def test_outer_matches_brute_force_2d(squared):
    lab = touching_labels((20, 24), n=6, seed=3)
    got = outer_distance_map(lab, squared=squared)
    assert got.dtype == np.float32
    assert np.allclose(got, brute_outer(lab, squared), atol=1e-6)
    for k in np.unique(lab)[1:]:
        assert got[lab == k].max() == pytest.approx(1.0) and got[lab == k].min() > 0
    assert np.all(got[lab == 0] == 0)


def test_outer_touching_objects_and_image_edge():
    lab = touching_labels((18, 20), n=5, seed=4, gap=False, holes=False)   # no background at all
    assert np.allclose(outer_distance_map(lab), brute_outer(lab, True), atol=1e-6)


@pytest.mark.parametrize("squared", [True, False])
def test_outer_3d_with_spacing_matches_brute_force(squared):
    lab = touching_labels((6, 9, 10), n=4, seed=5)
    sp = (1.5, 1.0, 0.75)
    assert np.allclose(outer_distance_map(lab, squared=squared, spacing=sp), brute_outer(lab, squared, sp),
                       atol=1e-6)


def test_outer_hand_computed_and_degenerate():
    lab = np.zeros((7, 7), int)
    lab[1:6, 1:6] = 2                              # D = 1 on the ring, 2 next, 3 at the centre
    got = outer_distance_map(lab)
    assert got[3, 3] == 1 and got[2, 3] == pytest.approx(4 / 9) and got[1, 1] == pytest.approx(1 / 9)
    assert outer_distance_map(lab, squared=False)[2, 2] == pytest.approx(2 / 3)
    assert np.all(outer_distance_map(np.full((3, 4), 5)) == 1)          # empty B: the documented 1
    assert np.all(outer_distance_map(np.zeros((3, 4), int)) == 0)


# ---------------------------------------------------------------- error paths
@pytest.mark.parametrize("kwargs, exc, word", [
    ({"alpha": 0.0}, ValueError, "alpha"),
    ({"alpha": -0.1}, ValueError, "alpha"),
    ({"alpha": math.inf}, ValueError, "alpha"),
    ({"alpha": None}, TypeError, "alpha"),
    ({"squared": 1}, TypeError, "squared"),
    ({"round_centroid": "yes"}, TypeError, "round_centroid"),
    ({"nearest_centroid": None}, TypeError, "nearest_centroid"),
    ({"spacing": (1.0,)}, ValueError, "spacing"),
    ({"spacing": -1.0}, ValueError, "spacing"),
])
def test_inner_bad_arguments(kwargs, exc, word):
    with pytest.raises(exc, match=word):
        inner_distance_map(np.ones((3, 3), int), **kwargs)


@pytest.mark.parametrize("kwargs, exc, word", [
    ({"squared": "no"}, TypeError, "squared"),
    ({"spacing": (1.0, 2.0, 3.0)}, ValueError, "spacing"),
    ({"spacing": (1.0, "a")}, TypeError, "spacing"),
])
def test_outer_bad_arguments(kwargs, exc, word):
    with pytest.raises(exc, match=word):
        outer_distance_map(np.ones((3, 3), int), **kwargs)


@pytest.mark.parametrize("fn", [inner_distance_map, outer_distance_map])
@pytest.mark.parametrize("bad, exc", [
    (np.array([1, 0, 2]), ValueError),
    (np.zeros((2, 2, 2, 2), int), ValueError),
    (np.array([[0.5, 1.0]]), ValueError),
    (np.array([[0.0, 1.0]]), TypeError),
    (np.array([[-3, 1]]), ValueError),
    (None, TypeError),
])
def test_bad_labels(fn, bad, exc):
    with pytest.raises(exc, match="labels"):
        fn(bad)
