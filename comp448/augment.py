"""Joint image / label augmentation in 2D and 3D (slide 11, "Data augmentation").

Slide 11: "Apply some transformations to existing images - Flipping, rotation, scaling, translation,
adding Gaussian noise, ... Interpolation techniques may be necessary to preserve original image
sizes". The elastic deformation is the one of the U-Net paper (Ronneberger et al., MICCAI 2015,
Sec. 3.1): "random displacement vectors on a coarse 3 by 3 grid. The displacements are sampled
from a Gaussian distribution with 10 pixels standard deviation. Per-pixel displacements are then
computed using bicubic interpolation."

Conventions (other modules rely on them)
---------------------------------------
- ``image``: NumPy float array, channels first, ``(C, H, W)`` or ``(C, D, H, W)``. Its dtype is kept.
- ``labels``: NumPy integer (or bool) array ``(H, W)`` or ``(D, H, W)`` equal to ``image.shape[1:]``,
  0 = background, 1..K = instances. Its dtype is kept.
- ``axis``/``axes`` always count *spatial* axes of ``labels`` (0 = H in 2D, 0 = D in 3D); negative
  values count from the end, so the default ``axes=(-2, -1)`` is the (H, W) plane in 2D and 3D.
- Every geometric function returns ``(image, labels)``, new arrays of the input shapes
  (``rot90`` with odd ``k`` swaps the sizes of the two axes when they differ).
- Resampling (``rotate``, ``scale``, ``translate``, ``warp``/``elastic_deform``) uses
  ``scipy.ndimage``: the image with a spline of ``order`` (default 3, cubic; cubic splines can
  overshoot the input range slightly), the labels ALWAYS with order 0 (nearest neighbour), so
  labels stay integers from the original set (plus background 0 where ``mode="constant"`` fills
  the frame) and instance ids are never blended into new values.
- Boundary ``mode`` (where the transform looks outside the array) applies to image AND labels, so
  the pair stays consistent: ``"reflect"`` (default; half-sample mirror, as U-Net's mirrored
  tiles; a mirrored object keeps its id), ``"mirror"`` (whole-sample mirror), ``"nearest"``
  (edge repeated), ``"wrap"`` (periodic), ``"constant"`` (image filled with ``cval``, labels with
  background 0). ``"constant"``/``"wrap"`` use SciPy's ``grid-constant``/``grid-wrap``, which
  interpolate correctly up to the edge.
- Random transforms are callables ``t(sample, rng) -> sample`` on a dict with keys ``"image"``
  and ``"labels"`` (other keys are passed through untouched, not transformed), ``rng`` a
  ``numpy.random.Generator``: the same seed gives the same result. Each has a probability ``p``;
  the transform always draws one uniform number to decide, then its parameters only if applied.
"""
from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence

import numpy as np
from scipy import ndimage

from ._checks import check_choice, check_labels, check_number

__all__ = ["flip", "rot90", "rotate", "scale", "translate", "gaussian_noise", "warp",
           "random_displacement", "elastic_deform",
           "RandomFlip", "RandomRot90", "RandomRotate", "RandomScale", "RandomTranslate",
           "GaussianNoise", "ElasticDeform", "Compose", "MODES"]

# our name -> scipy.ndimage mode
MODES = {"reflect": "reflect", "mirror": "mirror", "nearest": "nearest",
         "constant": "grid-constant", "wrap": "grid-wrap"}


# ----------------------------------------------------------------------------- checks

def _check_image(image) -> np.ndarray:
    if not isinstance(image, np.ndarray):
        raise TypeError(f"image must be a NumPy array, got {type(image).__name__}")
    if not np.issubdtype(image.dtype, np.floating):
        raise TypeError(f"image must have a floating dtype, got {image.dtype}")
    if image.ndim not in (3, 4):
        raise ValueError(f"image must be channels-first (C, H, W) or (C, D, H, W), got shape {image.shape}")
    if not np.isfinite(image).all():
        raise ValueError("image contains NaN or inf")
    return image


def _check_pair(image, labels) -> tuple[np.ndarray, np.ndarray]:
    image = _check_image(image)
    if isinstance(labels, np.ndarray) and labels.dtype == bool:
        pass  # check_labels would cast; bool masks are kept as bool
    else:
        if not isinstance(labels, np.ndarray):
            raise TypeError(f"labels must be a NumPy array of integer labels, got {type(labels).__name__}")
        check_labels("labels", labels)
    if labels.shape != image.shape[1:]:
        raise ValueError(f"labels must have the image's spatial shape {image.shape[1:]}, got {labels.shape}")
    return image, labels


def _check_axes(name: str, axes, nd: int, count: int | None = None) -> tuple[int, ...]:
    """Normalise spatial axis indices (ints, negatives allowed) and check they are distinct."""
    if isinstance(axes, numbers.Integral) and not isinstance(axes, bool):
        axes = (axes,)
    if not isinstance(axes, Sequence) or not all(
            isinstance(a, numbers.Integral) and not isinstance(a, bool) for a in axes):
        raise TypeError(f"{name} must be an int or a sequence of ints, got {axes!r}")
    if count is not None and len(axes) != count:
        raise ValueError(f"{name} must name {count} spatial axes, got {axes!r}")
    if any(not -nd <= a < nd for a in axes):
        raise ValueError(f"{name} must index the {nd} spatial axes (-{nd}..{nd - 1}), got {axes!r}")
    out = tuple(int(a) % nd for a in axes)
    if len(set(out)) != len(out):
        raise ValueError(f"{name} must name distinct axes, got {axes!r}")
    return out


def _check_resample_opts(order, mode, cval) -> None:
    check_number("order", order, lo=0, hi=5, integer=True)
    check_choice("mode", mode, MODES)
    check_number("cval", cval)


def _per_axis(name: str, value, nd: int, *, lo=None, lo_open=False) -> np.ndarray:
    """A number (same for every spatial axis) or one number per spatial axis."""
    values = (value,) * nd if isinstance(value, numbers.Real) and not isinstance(value, bool) else value
    if not isinstance(values, (Sequence, np.ndarray)) or isinstance(values, str):
        raise TypeError(f"{name} must be a number or a sequence of {nd} numbers, got {value!r}")
    if len(values) != nd:
        raise ValueError(f"{name} must have one entry per spatial axis ({nd}), got {len(values)}")
    for v in values:
        check_number(name, v, lo=lo, lo_open=lo_open)
    return np.asarray(values, dtype=float)


# ----------------------------------------------------------------------------- resampling core

def _work(image: np.ndarray) -> np.ndarray:
    """float64 stays float64; float16/float32 are resampled in float32 (SciPy has no float16)."""
    return image.astype(np.float64 if image.dtype == np.float64 else np.float32, copy=False)


def _affine(image, labels, matrix, order, mode, cval):
    """Resample so that output pixel o takes the input at ``matrix @ (o - c) + c`` (c = centre)."""
    shape = np.asarray(labels.shape, dtype=float)
    centre = (shape - 1) / 2
    offset = centre - matrix @ centre
    m = MODES[mode]
    out = np.stack([ndimage.affine_transform(ch, matrix, offset, order=order, mode=m, cval=cval)
                    for ch in _work(image)]).astype(image.dtype, copy=False)          # (C, *spatial)
    lab = ndimage.affine_transform(labels.astype(np.int64), matrix, offset, order=0, mode=m, cval=0)
    return out, lab.astype(labels.dtype, copy=False)


# ----------------------------------------------------------------------------- functional API

def flip(image, labels, axis):
    """Mirror image and labels along one or more spatial ``axis`` (exact, no interpolation)."""
    image, labels = _check_pair(image, labels)
    axes = _check_axes("axis", axis, labels.ndim)
    return (np.ascontiguousarray(np.flip(image, tuple(a + 1 for a in axes))),
            np.ascontiguousarray(np.flip(labels, axes)))


def rot90(image, labels, k: int = 1, axes=(-2, -1)):
    """Rotate by ``k`` quarter turns in the plane of the two spatial ``axes`` (exact).

    As ``numpy.rot90``: the rotation goes from the first axis towards the second (counter-clockwise
    on screen for ``(H, W)``); ``rotate(.., 90 * k, axes)`` gives the same on a square plane.
    """
    image, labels = _check_pair(image, labels)
    check_number("k", k, integer=True)
    a, b = _check_axes("axes", axes, labels.ndim, count=2)
    return (np.ascontiguousarray(np.rot90(image, int(k), axes=(a + 1, b + 1))),
            np.ascontiguousarray(np.rot90(labels, int(k), axes=(a, b))))


def rotate(image, labels, angle: float, axes=(-2, -1), order: int = 3, mode: str = "reflect",
           cval: float = 0.0):
    """Rotate by ``angle`` degrees about the array centre, in the plane of the spatial ``axes``.

    Same direction as ``rot90``. Output pixel o samples the input at ``R (o - c) + c`` with
    ``R = [[cos t, sin t], [-sin t, cos t]]`` on the two axes (``scipy.ndimage.affine_transform``).
    """
    image, labels = _check_pair(image, labels)
    check_number("angle", angle)
    a, b = _check_axes("axes", axes, labels.ndim, count=2)
    _check_resample_opts(order, mode, cval)
    t = np.deg2rad(angle)
    m = np.eye(labels.ndim)
    m[a, a], m[a, b], m[b, a], m[b, b] = np.cos(t), np.sin(t), -np.sin(t), np.cos(t)
    return _affine(image, labels, m, int(order), mode, cval)


def scale(image, labels, factor, order: int = 3, mode: str = "reflect", cval: float = 0.0):
    """Zoom about the array centre by ``factor`` (a number or one per spatial axis), same shape.

    ``factor > 1`` magnifies (the content grows, the borders leave the frame), ``< 1`` shrinks it
    (the frame is filled according to ``mode``). Output pixel o samples ``(o - c) / factor + c``.
    """
    image, labels = _check_pair(image, labels)
    f = _per_axis("factor", factor, labels.ndim, lo=0.0, lo_open=True)
    _check_resample_opts(order, mode, cval)
    return _affine(image, labels, np.diag(1.0 / f), int(order), mode, cval)


def translate(image, labels, shift, order: int = 3, mode: str = "reflect", cval: float = 0.0):
    """Move the content by ``shift`` pixels (a number or one per spatial axis; may be fractional).

    Output pixel o samples the input at ``o - shift``; integer shifts are exact for every order.
    """
    image, labels = _check_pair(image, labels)
    s = _per_axis("shift", shift, labels.ndim)
    _check_resample_opts(order, mode, cval)
    m = MODES[mode]
    out = np.stack([ndimage.shift(ch, s, order=order, mode=m, cval=cval) for ch in _work(image)])
    lab = ndimage.shift(labels.astype(np.int64), s, order=0, mode=m, cval=0)
    return out.astype(image.dtype, copy=False), lab.astype(labels.dtype, copy=False)


def gaussian_noise(image, std: float, rng: np.random.Generator):
    """``image + N(0, std^2)`` noise, i.i.d. per pixel and channel; returns the image only.

    Labels are unaffected by noise, so this function takes and returns no labels.
    """
    image = _check_image(image)
    check_number("std", std, lo=0.0)
    _check_rng(rng)
    return (image + rng.normal(0.0, std, size=image.shape)).astype(image.dtype, copy=False)


def random_displacement(shape, rng: np.random.Generator, grid=3, sigma: float = 10.0) -> np.ndarray:
    """Dense displacement field ``(ndim, *shape)`` of the U-Net elastic deformation.

    A coarse grid of ``grid`` points per axis (a number or one per axis, at least 2) spans the
    array, its corner points on the corner pixels. Each grid point gets a random displacement with
    every component drawn from N(0, sigma^2) pixels; the per-pixel field is its cubic-spline
    ("bicubic") interpolation (``scipy.ndimage.zoom(order=3, grid_mode=False)``).
    """
    if not isinstance(shape, Sequence) or not all(
            isinstance(s, numbers.Integral) and not isinstance(s, bool) and s >= 1 for s in shape):
        raise TypeError(f"shape must be a sequence of positive ints, got {shape!r}")
    if len(shape) not in (2, 3):
        raise ValueError(f"shape must be 2D or 3D, got {tuple(shape)}")
    nd = len(shape)
    g = _per_axis("grid", grid, nd, lo=2)
    if not np.all(g == np.round(g)):
        raise TypeError(f"grid must hold integers, got {grid!r}")
    g = tuple(int(v) for v in g)
    check_number("sigma", sigma, lo=0.0)
    _check_rng(rng)
    coarse = rng.normal(0.0, sigma, size=(nd, *g))                         # (nd, *grid)
    zoom = [s / n for s, n in zip(shape, g)]
    return np.stack([ndimage.zoom(c, zoom, order=3, mode="mirror", grid_mode=False)
                     for c in coarse])                                     # (nd, *shape)


def warp(image, labels, displacement, order: int = 3, mode: str = "reflect", cval: float = 0.0):
    """Resample with a dense displacement field: output pixel x takes the input at ``x + u(x)``.

    ``displacement`` has shape ``(ndim, *spatial)`` in pixels (``scipy.ndimage.map_coordinates``).
    A zero field is the identity; a constant field ``-s`` is ``translate(.., s)``.
    """
    image, labels = _check_pair(image, labels)
    if not isinstance(displacement, np.ndarray) or not np.issubdtype(displacement.dtype, np.number):
        raise TypeError(f"displacement must be a real NumPy array, got {type(displacement).__name__}")
    if displacement.shape != (labels.ndim, *labels.shape):
        raise ValueError(f"displacement must have shape {(labels.ndim, *labels.shape)}, "
                         f"got {displacement.shape}")
    if not np.isfinite(displacement).all():
        raise ValueError("displacement contains NaN or inf")
    _check_resample_opts(order, mode, cval)
    coords = np.indices(labels.shape, dtype=float) + displacement          # (nd, *spatial)
    m = MODES[mode]
    out = np.stack([ndimage.map_coordinates(ch, coords, order=order, mode=m, cval=cval)
                    for ch in _work(image)])                                 # (C, *spatial)
    lab = ndimage.map_coordinates(labels.astype(np.int64), coords, order=0, mode=m, cval=0)
    return out.astype(image.dtype, copy=False), lab.astype(labels.dtype, copy=False)


def elastic_deform(image, labels, rng: np.random.Generator, grid=3, sigma: float = 10.0,
                   order: int = 3, mode: str = "reflect", cval: float = 0.0):
    """U-Net elastic deformation: ``warp`` with ``random_displacement(shape, rng, grid, sigma)``.

    Defaults are the paper's: a 3x3 (3x3x3 in 3D) grid, 10 px standard deviation, cubic
    interpolation of the displacements and of the image; labels by nearest neighbour.
    ``sigma=0`` is the identity.
    """
    image, labels = _check_pair(image, labels)
    _check_resample_opts(order, mode, cval)
    u = random_displacement(labels.shape, rng, grid=grid, sigma=sigma)
    return warp(image, labels, u, order=order, mode=mode, cval=cval)


# ----------------------------------------------------------------------------- random transforms

def _check_rng(rng) -> None:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator (np.random.default_rng(seed)), "
                        f"got {type(rng).__name__}")


def _check_sample(sample, rng) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(sample, Mapping):
        raise TypeError(f"sample must be a dict with keys 'image' and 'labels', got {type(sample).__name__}")
    if "image" not in sample or "labels" not in sample:
        raise ValueError(f"sample must have keys 'image' and 'labels', got keys {sorted(map(str, sample))}")
    _check_rng(rng)
    return _check_pair(sample["image"], sample["labels"])


def _check_range(name: str, value, *, lo=None, lo_open=False, symmetric=True) -> tuple[float, float]:
    """A number d (meaning (-d, d) if symmetric) or a pair (lo, hi) with lo <= hi."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and symmetric:
        check_number(name, value, lo=0.0)
        value = (-value, value)
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != 2:
        raise TypeError(f"{name} must be {'a number or ' if symmetric else ''}a pair (low, high), "
                        f"got {value!r}")
    for v in value:
        check_number(name, v, lo=lo, lo_open=lo_open)
    if value[0] > value[1]:
        raise ValueError(f"{name} must have low <= high, got {tuple(value)}")
    return float(value[0]), float(value[1])


class _Random:
    """Base class: checks the sample and rng, draws 'apply?' with probability p, copies the dict."""

    def __init__(self, p: float):
        check_number("p", p, lo=0.0, hi=1.0)
        self.p = float(p)

    def __call__(self, sample, rng):
        image, labels = _check_sample(sample, rng)
        out = dict(sample)
        if rng.random() < self.p:
            out["image"], out["labels"] = self.apply(image, labels, rng)
        return out

    def apply(self, image, labels, rng):
        raise NotImplementedError

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


class _Resampling(_Random):
    def __init__(self, p, order, mode, cval):
        super().__init__(p)
        _check_resample_opts(order, mode, cval)
        self.order, self.mode, self.cval = int(order), mode, float(cval)

    def _opts(self):
        return dict(order=self.order, mode=self.mode, cval=self.cval)


class RandomFlip(_Random):
    """Flip along each spatial axis in ``axes`` (default: all) independently with probability ``p``.

    Unlike the other transforms, ``p`` is per axis (one draw per axis, as torchio's RandomFlip), so
    in 2D with ``p=0.5`` each of the four flip combinations is equally likely.
    """

    def __init__(self, axes=None, p: float = 0.5):
        super().__init__(p)
        if axes is not None:
            _check_axes("axes", axes, 3)  # type/distinctness; range is checked per sample
        self.axes = axes

    def __call__(self, sample, rng):
        image, labels = _check_sample(sample, rng)
        nd = labels.ndim
        axes = tuple(range(nd)) if self.axes is None else _check_axes("axes", self.axes, nd)
        chosen = tuple(a for a in axes if rng.random() < self.p)
        out = dict(sample)
        if chosen:
            out["image"], out["labels"] = flip(image, labels, chosen)
        return out


class RandomRot90(_Random):
    """With probability ``p``, ``rot90`` by k quarter turns, k drawn uniformly from ``ks``.

    On a non-square plane odd k swaps the two sizes; pass ``ks=(2,)`` to keep shapes fixed.
    """

    def __init__(self, axes=(-2, -1), p: float = 0.5, ks=(1, 2, 3)):
        super().__init__(p)
        _check_axes("axes", axes, 3, count=2)
        if not isinstance(ks, Sequence) or len(ks) == 0:
            raise TypeError(f"ks must be a non-empty sequence of ints, got {ks!r}")
        for k in ks:
            check_number("ks", k, integer=True)
        self.axes, self.ks = tuple(axes), tuple(int(k) for k in ks)

    def apply(self, image, labels, rng):
        k = self.ks[int(rng.integers(len(self.ks)))]
        return rot90(image, labels, k, axes=self.axes)


class RandomRotate(_Resampling):
    """With probability ``p``, ``rotate`` by an angle drawn uniformly from ``degrees`` (a number d
    means (-d, d), or a pair (low, high)) in the plane of ``axes``."""

    def __init__(self, degrees=180.0, axes=(-2, -1), p: float = 0.5, order: int = 3,
                 mode: str = "reflect", cval: float = 0.0):
        super().__init__(p, order, mode, cval)
        self.degrees = _check_range("degrees", degrees)
        _check_axes("axes", axes, 3, count=2)
        self.axes = tuple(axes)

    def apply(self, image, labels, rng):
        angle = rng.uniform(*self.degrees)
        return rotate(image, labels, angle, axes=self.axes, **self._opts())


class RandomScale(_Resampling):
    """With probability ``p``, ``scale`` by a factor drawn uniformly from ``factor`` = (low, high),
    the same for all axes (``isotropic=True``) or one draw per axis."""

    def __init__(self, factor=(0.9, 1.1), p: float = 0.5, isotropic: bool = True, order: int = 3,
                 mode: str = "reflect", cval: float = 0.0):
        super().__init__(p, order, mode, cval)
        self.factor = _check_range("factor", factor, lo=0.0, lo_open=True, symmetric=False)
        if not isinstance(isotropic, bool):
            raise TypeError(f"isotropic must be a bool, got {type(isotropic).__name__}")
        self.isotropic = isotropic

    def apply(self, image, labels, rng):
        n = 1 if self.isotropic else labels.ndim
        f = rng.uniform(*self.factor, size=n)
        return scale(image, labels, float(f[0]) if self.isotropic else tuple(f), **self._opts())


class RandomTranslate(_Resampling):
    """With probability ``p``, ``translate`` by a shift drawn uniformly from [-m, m] per spatial
    axis, ``m = max_shift`` (pixels; a number or one per axis)."""

    def __init__(self, max_shift=10.0, p: float = 0.5, order: int = 3, mode: str = "reflect",
                 cval: float = 0.0):
        super().__init__(p, order, mode, cval)
        if isinstance(max_shift, numbers.Real) and not isinstance(max_shift, bool):
            check_number("max_shift", max_shift, lo=0.0)
        else:
            if not isinstance(max_shift, Sequence) or isinstance(max_shift, str):
                raise TypeError(f"max_shift must be a number or a sequence of numbers, got {max_shift!r}")
            for v in max_shift:
                check_number("max_shift", v, lo=0.0)
        self.max_shift = max_shift

    def apply(self, image, labels, rng):
        m = _per_axis("max_shift", self.max_shift, labels.ndim, lo=0.0)
        return translate(image, labels, tuple(rng.uniform(-m, m)), **self._opts())


class GaussianNoise(_Random):
    """With probability ``p``, add ``gaussian_noise`` with ``std`` (a number, or a pair (low, high)
    to draw the std uniformly per sample). Labels are unchanged."""

    def __init__(self, std=0.1, p: float = 0.5):
        super().__init__(p)
        if isinstance(std, numbers.Real) and not isinstance(std, bool):
            check_number("std", std, lo=0.0)
            self.std = (float(std), float(std))
        else:
            self.std = _check_range("std", std, lo=0.0, symmetric=False)

    def apply(self, image, labels, rng):
        std = self.std[0] if self.std[0] == self.std[1] else rng.uniform(*self.std)
        return gaussian_noise(image, std, rng), labels.copy()


class ElasticDeform(_Resampling):
    """With probability ``p``, the U-Net ``elastic_deform`` (``grid`` points per axis, ``sigma`` px)."""

    def __init__(self, grid=3, sigma: float = 10.0, p: float = 0.5, order: int = 3,
                 mode: str = "reflect", cval: float = 0.0):
        super().__init__(p, order, mode, cval)
        _per_axis("grid", grid, 1 if not isinstance(grid, Sequence) else len(grid), lo=2)
        check_number("sigma", sigma, lo=0.0)
        self.grid, self.sigma = grid, float(sigma)

    def apply(self, image, labels, rng):
        return elastic_deform(image, labels, rng, grid=self.grid, sigma=self.sigma, **self._opts())


class Compose:
    """Apply ``transforms`` in order, each ``t(sample, rng)``, the whole chain with probability ``p``."""

    def __init__(self, transforms, p: float = 1.0):
        if isinstance(transforms, (str, bytes)) or not isinstance(transforms, Sequence):
            raise TypeError(f"transforms must be a list of callables, got {type(transforms).__name__}")
        for i, t in enumerate(transforms):
            if not callable(t):
                raise TypeError(f"transforms[{i}] must be callable, got {type(t).__name__}")
        check_number("p", p, lo=0.0, hi=1.0)
        self.transforms, self.p = list(transforms), float(p)

    def __call__(self, sample, rng):
        _check_rng(rng)
        if self.p < 1.0 and rng.random() >= self.p:
            return dict(sample)
        for t in self.transforms:
            sample = t(sample, rng)
        return sample

    def __repr__(self):
        inner = ",\n    ".join(map(repr, self.transforms))
        return f"Compose([\n    {inner}\n], p={self.p})"
