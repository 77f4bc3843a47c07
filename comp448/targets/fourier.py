"""FourierNet shape descriptors (slides 21-22): Fourier series of the distance-to-center function.

Cansiz et al., "FourierNet: Shape-preserving network for Henle's fiber layer segmentation in
optical coherence tomography images", IEEE JBHI 2023. No FourierNet code is public; the same lab's
FourierLoss code (DeepMedIA-Lab/FourierLoss, fourier.py) computes the same descriptors and is the
reference for the conventions below (papers.md §9).

Slide 22. xi(l) is the distance from the object's center z_c to the contour point at arc length l,
on a closed contour of perimeter L, expanded as

    xi(l) = a_0 + sum_n [ a_n cos(2 pi n l / L) + b_n sin(2 pi n l / L) ],
    a_n = (2/L) int_0^L xi(l) cos(2 pi n l / L) dl,    b_n = (2/L) int_0^L xi(l) sin(2 pi n l / L) dl.

For a contour of T points the slide gives the closed form

    a_n =  1/(pi n) * sum_t delta_t * sin(2 pi n l_t / L),
    b_n = -1/(pi n) * sum_t delta_t * cos(2 pi n l_t / L),     delta_t = xi_{t-1} - xi_t.

It is exact (not an approximation) when xi is a STEP function: xi[t] held from l[t] up to the
next position l[t+1] (the last value held up to L, where the contour closes). delta_t is the
jump at l_t, value just before minus value just after = previous minus current; the opposite
sign flips (a_n, b_n) (same amplitudes, but not the slide's coefficients). Each per-interval
integral is NOT the summand: the closed form needs summation by parts around the whole closed
curve (papers.md §9.1). For any other interpolation of the samples (e.g. the true, continuous xi)
it is an approximation, with an O(h) phase error in (a_n, b_n) but O(h^2) error in the amplitudes.

Contours are ``(T, 2)`` float arrays of (row, col) points, closed, the first point NOT repeated
at the end.
"""
from __future__ import annotations

import math

import numpy as np
from skimage import measure

from .._checks import check_choice, check_labels, check_number


def _check_contour(name: str, contour) -> np.ndarray:
    c = np.asarray(contour)
    if c.dtype == object or not (np.issubdtype(c.dtype, np.number) and not np.iscomplexobj(c)):
        raise TypeError(f"{name} must be a real numeric array of shape (T, 2), got dtype {c.dtype}")
    if c.ndim != 2 or c.shape[1] != 2:
        raise ValueError(f"{name} must have shape (T, 2) (row, col points), got shape {c.shape}")
    if c.shape[0] < 3:
        raise ValueError(f"{name} must have at least 3 points to enclose a shape, got {c.shape[0]}")
    c = c.astype(np.float64)
    if not np.isfinite(c).all():
        raise ValueError(f"{name} must be finite (no NaN/inf)")
    return c


def _check_1d(name: str, x) -> np.ndarray:
    a = np.asarray(x)
    if a.dtype == object or not np.issubdtype(a.dtype, np.number) or np.iscomplexobj(a):
        raise TypeError(f"{name} must be a real numeric 1D array, got dtype {a.dtype}")
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1D, got shape {a.shape}")
    a = a.astype(np.float64)
    if not np.isfinite(a).all():
        raise ValueError(f"{name} must be finite (no NaN/inf)")
    return a


def distance_to_center(contour, center=None) -> np.ndarray:
    """xi_t = ||z_t - z_c||: distance of every contour point to the center (slide 22's xi(l_x)).

    Args:
        contour: ``(T, 2)`` points (row, col).
        center: ``(2,)`` point; default the mean of the contour points, as in the lab's FourierLoss
            code (not the region centroid).
    Returns:
        ``(T,)`` float64 array.
    """
    c = _check_contour("contour", contour)
    if center is None:
        z = c.mean(axis=0)
    else:
        z = _check_1d("center", center)
        if z.shape != (2,):
            raise ValueError(f"center must have shape (2,), got {z.shape}")
    return np.sqrt(((c - z) ** 2).sum(axis=1))


def arc_lengths(contour) -> tuple[np.ndarray, float]:
    """Arc length l_t at each point of a closed contour, and the perimeter L.

    ``l[0] = 0``, ``l[t] = sum_{s<t} ||z_{s+1} - z_s||`` and ``L = l[T-1] + ||z_0 - z_{T-1}||`` (the
    contour closes from the last point back to the first, which must not be repeated).
    Returns:
        (l, L): ``(T,)`` float64 array and a float.
    """
    c = _check_contour("contour", contour)
    steps = np.sqrt((np.diff(c, axis=0, append=c[:1]) ** 2).sum(axis=1))    # (T,), last = closing step
    l = np.concatenate([[0.0], np.cumsum(steps[:-1])])
    L = float(steps.sum())
    if L <= 0:
        raise ValueError("contour must have a positive perimeter (all points coincide)")
    return l, L


def fourier_coefficients(xi, l, L: float, n_harmonics: int, *, return_a0: bool = False):
    """Slide 22 closed form: (a_n, b_n) for n = 1..N of the step function xi.

        a_n =  1/(pi n) * sum_t (xi_{t-1} - xi_t) * sin(2 pi n l_t / L)
        b_n = -1/(pi n) * sum_t (xi_{t-1} - xi_t) * cos(2 pi n l_t / L)

    with t = 0..T-1 and xi_{-1} = xi_{T-1} (cyclic). Exact Fourier coefficients (slide 21's integrals)
    of the step function equal to ``xi[t]`` on [l[t], l[t+1]) and to ``xi[T-1]`` on [l[T-1], L).
    This is the slide's sum over t = 1..T with its l_T = L moved to l_0 = 0 (the same angle).

    Args:
        xi: ``(T,)`` samples, e.g. ``distance_to_center(contour)``.
        l: ``(T,)`` positions with ``l[0] = 0``, non-decreasing, ``l[T-1] <= L``; e.g. ``arc_lengths``.
        L: period (the perimeter), > 0.
        n_harmonics: N >= 1.
        return_a0: also return a_0 = (1/L) * sum_t xi_t (l_{t+1} - l_t), the mean of xi.
    Returns:
        (a, b), two ``(N,)`` float64 arrays for n = 1..N; (a0, a, b) with ``return_a0``.
    """
    xi = _check_1d("xi", xi)
    l = _check_1d("l", l)
    if xi.size < 1:
        raise ValueError("xi must not be empty")
    if l.shape != xi.shape:
        raise ValueError(f"l must have the same shape as xi: {l.shape} != {xi.shape}")
    check_number("L", L, lo=0.0, lo_open=True)
    if not math.isfinite(L):
        raise ValueError(f"L must be finite, got {L!r}")
    check_number("n_harmonics", n_harmonics, lo=1, integer=True)
    if l[0] != 0:
        raise ValueError(f"l must start at 0, got l[0] = {l[0]!r}")
    if np.any(np.diff(l) < 0) or l[-1] > L:
        raise ValueError("l must be non-decreasing and end at or before L")
    n = np.arange(1, int(n_harmonics) + 1, dtype=np.float64)               # (N,)
    delta = np.roll(xi, 1) - xi                                            # (T,) xi_{t-1} - xi_t
    theta = 2.0 * np.pi * n[:, None] * l[None, :] / L                      # (N, T)
    a = (np.sin(theta) @ delta) / (np.pi * n)
    b = -(np.cos(theta) @ delta) / (np.pi * n)
    if return_a0:
        a0 = float(xi @ np.diff(l, append=L)) / L
        return a0, a, b
    return a, b


def fourier_series(a, b, a0: float, l, L: float) -> np.ndarray:
    """Evaluate xi(l) = a_0 + sum_{n=1}^N [a_n cos(2 pi n l / L) + b_n sin(2 pi n l / L)] (slide 22).

    Redraws a shape from N harmonics: the point at arc position l lies at distance xi(l) from the
    center. Args: a, b ``(N,)`` coefficients for n = 1..N; a0 the mean; l any 1D positions; L > 0.
    Returns a float64 array shaped like ``l``.
    """
    a = _check_1d("a", a)
    b = _check_1d("b", b)
    if a.shape != b.shape:
        raise ValueError(f"b must have the same shape as a: {b.shape} != {a.shape}")
    check_number("a0", a0)
    l = _check_1d("l", l)
    check_number("L", L, lo=0.0, lo_open=True)
    if not (math.isfinite(a0) and math.isfinite(L)):
        raise ValueError(f"a0 and L must be finite, got a0={a0!r}, L={L!r}")
    n = np.arange(1, a.size + 1, dtype=np.float64)
    theta = 2.0 * np.pi * l[:, None] * n[None, :] / L                      # (len(l), N)
    return a0 + np.cos(theta) @ a + np.sin(theta) @ b


def _largest_object_contour(labels: np.ndarray) -> np.ndarray:
    """Outer contour (T, 2) of the largest connected object, closed, first point not repeated."""
    comps = measure.label(labels, background=0, connectivity=labels.ndim)    # split instances + components
    if comps.max() == 0:
        raise ValueError("mask_or_contour has no foreground object")
    areas = np.bincount(comps.ravel())
    areas[0] = 0
    obj = np.pad(comps == int(np.argmax(areas)), 1)                        # pad: closes at image edges
    contours = measure.find_contours(obj.astype(np.float64), 0.5, fully_connected="high")

    def enclosed_area(c):   # shoelace
        return 0.5 * abs(np.dot(c[:, 0], np.roll(c[:, 1], 1)) - np.dot(c[:, 1], np.roll(c[:, 0], 1)))

    outer = max(contours, key=enclosed_area)                               # holes give inner contours
    return outer[:-1] - 1.0                                                # drop the repeated point, undo pad


def fourier_descriptors(mask_or_contour, n_harmonics: int, *, kind: str = "auto") -> np.ndarray:
    """FourierNet descriptors: the first N harmonic amplitudes sqrt(a_n^2 + b_n^2), n = 1..N (slide 22).

    Pipeline: contour -> xi = ``distance_to_center`` (center = mean of contour points) ->
    (l, L) = ``arc_lengths`` -> (a_n, b_n) = ``fourier_coefficients`` -> amplitudes. a_0 (the mean
    radius) is not included, as in the lab's code; amplitudes are in pixels (no scale normalisation).
    They do not depend on the contour's start point or position (a cyclic shift only rotates
    (a_n, b_n) by the angle 2 pi n l_shift / L).

    Contour extraction from a mask: the largest connected object (8-connected; different labels are
    different objects) is traced with ``skimage.measure.find_contours`` at level 0.5 (marching squares,
    ``fully_connected="high"``), on the mask padded by one pixel so that objects on the image edge
    close; of its contours (holes make more) the one enclosing the largest area is kept. The
    points lie on pixel-edge midpoints, steps of 1 or sqrt(2)/2. MISMATCH: the lab's code uses
    ``cv2.findContours(RETR_TREE, CHAIN_APPROX_NONE)``, whose points are the boundary pixels' centers
    (steps 1 or sqrt(2)); the two contours differ by about half a pixel, so the amplitudes agree to
    within about a pixel, not exactly. Pass a ``(T, 2)`` contour to use any other extraction.

    Args:
        mask_or_contour: a 2D binary mask / label image (NumPy integer or bool), or a ``(T, 2)``
            float contour of (row, col) points (closed, first point not repeated).
        n_harmonics: N >= 1.
        kind: ``"auto"`` (a floating ``(T, 2)`` array is a contour, anything else a mask),
            ``"mask"`` or ``"contour"``.
    Returns:
        ``(N,)`` float64 amplitudes.
    """
    check_choice("kind", kind, ("auto", "mask", "contour"))
    check_number("n_harmonics", n_harmonics, lo=1, integer=True)
    if kind == "auto":
        arr = np.asarray(mask_or_contour)
        is_contour = (np.issubdtype(arr.dtype, np.floating) and arr.ndim == 2 and arr.shape[1] == 2)
        kind = "contour" if is_contour else "mask"
    if kind == "contour":
        contour = _check_contour("mask_or_contour", mask_or_contour)
    else:
        labels = check_labels("mask_or_contour", mask_or_contour, ndim=(2,))
        contour = _largest_object_contour(labels)
    xi = distance_to_center(contour)
    l, L = arc_lengths(contour)
    a, b = fourier_coefficients(xi, l, L, n_harmonics)
    return np.hypot(a, b)
