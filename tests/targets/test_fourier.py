import math

import numpy as np
import pytest
from skimage import measure
from skimage.draw import disk, ellipse

from comp448.targets import (arc_lengths, distance_to_center, fourier_coefficients, fourier_descriptors,
                             fourier_series)


def random_step_function(seed=0, T=37):
    rng = np.random.default_rng(seed)
    L = 50.0
    l = np.concatenate([[0.0], np.sort(rng.uniform(0, L, T - 1))])
    xi = rng.uniform(1, 3, T)
    return xi, l, L


def exact_step_coefficients(xi, l, L, N):
    """Oracle: integrate the step function (xi[t] on [l[t], l[t+1]), xi[T-1] on [l[T-1], L)) interval by
    interval, with the antiderivatives of cos and sin written out."""
    ends = np.append(l[1:], L)
    a, b = np.zeros(N), np.zeros(N)
    for n in range(1, N + 1):
        w = 2 * math.pi * n / L
        for t in range(len(xi)):
            a[n - 1] += 2 / L * xi[t] * (math.sin(w * ends[t]) - math.sin(w * l[t])) / w
            b[n - 1] += 2 / L * xi[t] * (-math.cos(w * ends[t]) + math.cos(w * l[t])) / w
    a0 = sum(xi[t] * (ends[t] - l[t]) for t in range(len(xi))) / L
    return a0, a, b


def quadrature_step_coefficients(xi, l, L, N, per=64):
    """Second oracle: Gauss-Legendre quadrature of (2/L) int xi cos / sin on every interval."""
    x, wts = np.polynomial.legendre.leggauss(per)
    ends = np.append(l[1:], L)
    n = np.arange(1, N + 1)[:, None]
    a, b = np.zeros(N), np.zeros(N)
    for t in range(len(xi)):
        s = 0.5 * (ends[t] - l[t]) * (x + 1) + l[t]
        h = 0.5 * (ends[t] - l[t]) * wts
        a += 2 / L * (xi[t] * np.cos(2 * np.pi * n * s / L)) @ h
        b += 2 / L * (xi[t] * np.sin(2 * np.pi * n * s / L)) @ h
    return a, b


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_closed_form_equals_exact_integration_of_step_function(seed):
    xi, l, L = random_step_function(seed)
    a0, a, b = fourier_coefficients(xi, l, L, 12, return_a0=True)
    ea0, ea, eb = exact_step_coefficients(xi, l, L, 12)
    assert np.abs(a - ea).max() < 1e-10 and np.abs(b - eb).max() < 1e-10 and abs(a0 - ea0) < 1e-12
    qa, qb = quadrature_step_coefficients(xi, l, L, 12)
    assert np.abs(a - qa).max() < 1e-10 and np.abs(b - qb).max() < 1e-10
    assert np.abs(ea).max() > 0.05                       # coefficients are not trivially small


def test_opposite_sign_of_delta_is_wrong():
    xi, l, L = random_step_function(3)
    _, ea, eb = exact_step_coefficients(xi, l, L, 8)
    n = np.arange(1, 9)[:, None]
    wrong = xi - np.roll(xi, 1)                          # current minus previous
    wa = (np.sin(2 * np.pi * n * l / L) @ wrong) / (np.pi * n[:, 0])
    wb = -(np.cos(2 * np.pi * n * l / L) @ wrong) / (np.pi * n[:, 0])
    assert np.abs(wa - ea).max() > 0.1 and np.abs(wb - eb).max() > 0.1
    a, b = fourier_coefficients(xi, l, L, 8)
    assert np.allclose(wa, -a) and np.allclose(np.hypot(wa, wb), np.hypot(a, b))   # only the sign flips


def test_zero_length_steps_are_allowed():
    xi, l, L = random_step_function(4, T=10)
    l2 = np.insert(l, 5, l[5])                           # a repeated position: an empty interval
    xi2 = np.insert(xi, 5, 7.0)
    a, b = fourier_coefficients(xi2, l2, L, 6)
    _, ea, eb = exact_step_coefficients(xi2, l2, L, 6)
    assert np.allclose(a, ea, atol=1e-12) and np.allclose(b, eb, atol=1e-12)


def test_arc_lengths_and_distance_to_center_hand_computed():
    sq = np.array([[0.0, 0.0], [0.0, 2.0], [2.0, 2.0], [2.0, 0.0]])
    l, L = arc_lengths(sq)
    assert np.allclose(l, [0, 2, 4, 6]) and L == 8.0
    l, L = arc_lengths(np.array([[0, 0], [1, 1], [1, 0]]))
    assert np.allclose(l, [0, math.sqrt(2), math.sqrt(2) + 1]) and L == pytest.approx(2 + math.sqrt(2))
    assert np.allclose(distance_to_center(sq), math.sqrt(2))
    assert np.allclose(distance_to_center(sq, center=[0, 0]), [0, 2, math.sqrt(8), 2])


def test_fourier_series_evaluates_and_reconstructs():
    l = np.array([0.0, 1.0, 2.5])
    got = fourier_series([0.0, 2.0], [1.0, 0.0], 5.0, l, 4.0)
    want = 5 + np.sin(2 * np.pi * l / 4) + 2 * np.cos(4 * np.pi * l / 4)
    assert np.allclose(got, want)
    # a dense ellipse contour: 15 harmonics redraw xi to within a small fraction of its range
    t = np.linspace(0, 2 * np.pi, 2000, endpoint=False)
    c = np.stack([20 * np.sin(t), 8 * np.cos(t)], axis=1)
    xi, (ll, L) = distance_to_center(c), arc_lengths(c)
    a0, a, b = fourier_coefficients(xi, ll, L, 15, return_a0=True)
    assert np.abs(fourier_series(a, b, a0, ll, L) - xi).max() < 0.05 * (xi.max() - xi.min())


def test_circle_has_only_a0():
    t = np.linspace(0, 2 * np.pi, 300, endpoint=False)
    c = np.stack([7 + 12 * np.sin(t), -3 + 12 * np.cos(t)], axis=1)
    assert np.abs(fourier_descriptors(c, 10)).max() < 1e-12
    a0, _, _ = fourier_coefficients(distance_to_center(c), *arc_lengths(c), 3, return_a0=True)
    assert a0 == pytest.approx(12.0)
    m = np.zeros((64, 64), np.uint8)
    m[disk((31.5, 31.5), 20)] = 1                      # a rasterised disk: small, not zero (pixel grid)
    assert fourier_descriptors(m, 10).max() < 0.01 * 20


def test_amplitudes_invariant_to_start_point_and_translation():
    t = np.sort(np.random.default_rng(0).uniform(0, 2 * np.pi, 80))
    r = 10 + 3 * np.cos(3 * t) + np.sin(5 * t)
    c = np.stack([r * np.sin(t), r * np.cos(t)], axis=1)
    amp = fourier_descriptors(c, 8)
    assert amp[2] > 1.0                                  # the shape's 3-fold harmonic shows up
    for shift in (1, 17, 55):
        assert np.allclose(fourier_descriptors(np.roll(c, shift, axis=0), 8), amp, atol=1e-10)
    assert np.allclose(fourier_descriptors(c + [40.0, -13.0], 8), amp, atol=1e-10)
    # the coefficients themselves rotate under a shift: only the amplitudes are invariant
    xi, (l, L) = distance_to_center(c), arc_lengths(c)
    c2 = np.roll(c, 17, axis=0)
    a1, _ = fourier_coefficients(xi, l, L, 8)
    a2, _ = fourier_coefficients(distance_to_center(c2), *arc_lengths(c2), 8)
    assert np.abs(a1 - a2).max() > 0.1


def test_mask_path_uses_find_contours_of_largest_object():
    m = np.zeros((60, 70), int)
    m[ellipse(30, 25, 20, 9)] = 1
    big = fourier_descriptors(m, 6)
    # oracle: the same extraction written out with skimage directly
    c = measure.find_contours(np.pad(m, 1).astype(float), 0.5, fully_connected="high")[0][:-1] - 1
    assert np.allclose(big, fourier_descriptors(c, 6), atol=1e-12)
    assert big[1] > 5 and big[1] == big.max()           # an ellipse is a 2-fold shape
    m2 = m.copy()
    m2[5:9, 55:60] = 2                                   # a smaller second object is ignored
    m2[28:32, 24:27] = 0                                 # a hole only adds an inner contour
    assert np.allclose(fourier_descriptors(m2, 6), big, atol=1e-12)
    assert np.allclose(fourier_descriptors(np.roll(m, (5, 9), axis=(0, 1)), 6), big, atol=1e-10)
    assert np.allclose(fourier_descriptors(m.astype(bool), 6), big)
    # an integer (T, 2) array is read as a mask in auto mode; kind="contour" forces the contour path
    ci = np.round(c).astype(int)
    assert np.allclose(fourier_descriptors(ci, 6, kind="contour"), fourier_descriptors(ci.astype(float), 6))


def test_object_on_image_edge_is_closed():
    m = np.zeros((30, 30), int)
    m[:12, :12] = 1
    amp = fourier_descriptors(m, 4)
    assert np.all(np.isfinite(amp))
    m2 = np.zeros((40, 40), int)
    m2[5:17, 5:17] = 1
    assert np.allclose(amp, fourier_descriptors(m2, 4), atol=1e-10)


# ---------------------------------------------------------------- error paths
@pytest.mark.parametrize("contour, exc, word", [
    (np.zeros((5, 3)), ValueError, "shape"),
    (np.zeros(6), ValueError, "shape"),
    (np.zeros((2, 2)), ValueError, "at least 3"),
    (np.array([[0.0, 0.0], [1.0, np.nan], [1.0, 1.0]]), ValueError, "finite"),
    (np.array([["a", "b"]] * 3), TypeError, "numeric"),
    (np.ones((4, 2)) * 1j, TypeError, "numeric"),
])
def test_bad_contours(contour, exc, word):
    for fn in (arc_lengths, distance_to_center):
        with pytest.raises(exc, match=f"contour.*{word}|{word}.*contour"):
            fn(contour)


def test_zero_perimeter_and_bad_center():
    with pytest.raises(ValueError, match="perimeter"):
        arc_lengths(np.ones((4, 2)))
    c = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    with pytest.raises(ValueError, match="center"):
        distance_to_center(c, center=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="center"):
        distance_to_center(c, center=[1.0, np.inf])


@pytest.mark.parametrize("args, exc, word", [
    ((np.ones(3), np.array([0.0, 1.0]), 3.0, 2), ValueError, "l must have the same shape"),
    ((np.ones(3), np.array([0.5, 1.0, 2.0]), 3.0, 2), ValueError, "l must start at 0"),
    ((np.ones(3), np.array([0.0, 2.0, 1.0]), 3.0, 2), ValueError, "non-decreasing"),
    ((np.ones(3), np.array([0.0, 1.0, 4.0]), 3.0, 2), ValueError, "before L"),
    ((np.ones(3), np.array([0.0, 1.0, 2.0]), 0.0, 2), ValueError, "L must be >"),
    ((np.ones(3), np.array([0.0, 1.0, 2.0]), math.inf, 2), ValueError, "L must be finite"),
    ((np.ones(3), np.array([0.0, 1.0, 2.0]), 3.0, 0), ValueError, "n_harmonics"),
    ((np.ones(3), np.array([0.0, 1.0, 2.0]), 3.0, 2.5), TypeError, "n_harmonics"),
    ((np.ones(3), np.array([0.0, 1.0, 2.0]), 3.0, True), TypeError, "n_harmonics"),
    ((np.ones((3, 1)), np.array([0.0, 1.0, 2.0]), 3.0, 2), ValueError, "xi must be 1D"),
    ((np.array([1.0, np.nan, 1.0]), np.array([0.0, 1.0, 2.0]), 3.0, 2), ValueError, "xi must be finite"),
    ((np.array([]), np.array([]), 3.0, 2), ValueError, "xi must not be empty"),
    ((["a", "b"], [0.0, 1.0], 3.0, 2), TypeError, "xi must be a real"),
])
def test_fourier_coefficients_bad_arguments(args, exc, word):
    with pytest.raises(exc, match=word):
        fourier_coefficients(*args)


@pytest.mark.parametrize("args, exc, word", [
    (([1.0], [1.0, 2.0], 0.0, [0.0], 1.0), ValueError, "b must have the same shape"),
    (([1.0], [1.0], "x", [0.0], 1.0), TypeError, "a0"),
    (([1.0], [1.0], 0.0, [[0.0]], 1.0), ValueError, "l must be 1D"),
    (([1.0], [1.0], 0.0, [0.0], -1.0), ValueError, "L must be >"),
    (([1.0], [1.0], math.nan, [0.0], 1.0), ValueError, "a0"),
    (([1.0], [1.0], 0.0, [0.0], math.inf), ValueError, "L must be finite"),
])
def test_fourier_series_bad_arguments(args, exc, word):
    with pytest.raises(exc, match=word):
        fourier_series(*args)


@pytest.mark.parametrize("arg, kwargs, exc, word", [
    (np.zeros((8, 8), int), {}, ValueError, "no foreground"),
    (np.zeros((4, 8, 8), int), {}, ValueError, "mask_or_contour must be 2D"),
    (np.zeros((8, 8), int), {"kind": "polygon"}, ValueError, "kind"),
    (np.ones((8, 8), int), {"n_harmonics": 0}, ValueError, "n_harmonics"),
    (np.array([[0.5, 1.0], [1.0, 0.0], [0.0, 0.0]]), {"kind": "mask"}, ValueError, "mask_or_contour"),
    (np.ones((8, 3)), {"kind": "contour"}, ValueError, "mask_or_contour must have shape"),
    (np.array([[-1, 0], [0, 1]]), {}, ValueError, "non-negative"),
])
def test_fourier_descriptors_bad_arguments(arg, kwargs, exc, word):
    kwargs.setdefault("n_harmonics", 3)
    with pytest.raises(exc, match=word):
        fourier_descriptors(arg, **kwargs)
