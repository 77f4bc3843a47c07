"""Helpers shared by the synthetic generators: argument checks, smooth random fields,
non-overlapping object placement with a dial for touching objects, and the statistics
(touching pairs, foreground share) that the dials control.

Conventions: every generator takes ``seed`` (an int >= 0, a ``numpy.random.SeedSequence`` or a
``numpy.random.Generator``) and draws all randomness from one ``numpy.random.Generator``, so the
same seed gives the same image bit for bit. Label images are int32, 0 = background, 1..K = objects
numbered in the order they were placed (consecutive, no gaps).
"""
from __future__ import annotations

import numbers

import numpy as np
from scipy import ndimage as ndi
from skimage import measure, segmentation

from .._checks import check_number


# ----------------------------------------------------------------------------- argument checks
def make_rng(seed) -> np.random.Generator:
    """A ``numpy.random.Generator`` from an int seed >= 0, a SeedSequence or a Generator."""
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, np.random.SeedSequence):
        return np.random.default_rng(seed)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be a non-negative int, a numpy SeedSequence or Generator, "
                        f"got {type(seed).__name__}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    return np.random.default_rng(int(seed))


def check_shape(name: str, value, ndim: int, minimum: int = 16) -> tuple[int, ...]:
    """``value`` is an int (a cube/square of that side) or a tuple of ``ndim`` ints >= ``minimum``."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (int(value),) * ndim
    if not isinstance(value, (tuple, list)) or len(value) != ndim or not all(
            isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in value):
        raise TypeError(f"{name} must be an int or a tuple of {ndim} ints, got {value!r}")
    if min(value) < minimum:
        raise ValueError(f"{name} must be at least {minimum} along every axis, got {tuple(value)}")
    return tuple(int(v) for v in value)


def check_fraction(name: str, value, *, lo_open: bool = False, hi: float = 1.0) -> float:
    """A fraction in [0, hi] (or (0, hi] with ``lo_open``)."""
    check_number(name, value, lo=0.0, hi=hi, lo_open=lo_open)
    return float(value)


def check_count(name: str, value, minimum: int = 1) -> int:
    check_number(name, value, lo=minimum, integer=True)
    return int(value)


# ----------------------------------------------------------------------------- random fields
def smooth_field(rng: np.random.Generator, shape, sigma, lo: float = 0.0, hi: float = 1.0) -> np.ndarray:
    """White noise low-passed by a Gaussian of std ``sigma`` (px), rescaled to [lo, hi]. float64."""
    f = ndi.gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")
    f -= f.min()
    f /= max(f.max(), 1e-12)
    return lo + (hi - lo) * f


def unit_noise(rng: np.random.Generator, shape, sigma) -> np.ndarray:
    """Gaussian-filtered white noise scaled to zero mean, unit standard deviation."""
    f = ndi.gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")
    return (f - f.mean()) / max(f.std(), 1e-12)


# ----------------------------------------------------------------------------- shapes
def star_polygon(rng: np.random.Generator, radius: float, irregularity: float, elongation: float,
                 n_harmonics: int = 6, n_points: int = 64) -> np.ndarray:
    """Vertices (n_points, 2) in (row, col) of an irregular closed outline around (0, 0).

    The radius is a random Fourier series r(phi) = radius * (1 + sum_k a_k cos(k phi + p_k)),
    k = 2..n_harmonics with a_k ~ N(0, irregularity / k), then the outline is stretched by
    (1 + e) along a random axis and shrunk by 1 / (1 + e) across it (area kept).
    """
    phi = np.linspace(0.0, 2 * np.pi, n_points, endpoint=False)
    k = np.arange(2, n_harmonics + 1)[:, None]
    a = rng.normal(0.0, irregularity, size=k.shape) / k
    p = rng.uniform(0, 2 * np.pi, size=k.shape)
    r = radius * np.clip(1.0 + (a * np.cos(k * phi + p)).sum(0), 0.5, 1.6)
    e = 1.0 + rng.uniform(0.0, elongation)
    x, y = r * np.cos(phi) * e, r * np.sin(phi) / e
    t = rng.uniform(0, np.pi)
    return np.stack([x * np.sin(t) + y * np.cos(t), x * np.cos(t) - y * np.sin(t)], axis=1)


# ----------------------------------------------------------------------------- placement
def place_objects(rng: np.random.Generator, shape, n_objects: int, touching: float, sample_offsets,
                  gap: int = 2, max_tries: int = 60, min_inside: float = 0.6):
    """Paint up to ``n_objects`` objects into a label image, a share ``touching`` of them in contact.

    ``sample_offsets(rng)`` returns an int array (M, ndim) of pixel offsets of one object around its
    centre. Object k is either *isolated* (its pixels keep at least ``gap`` px away from all objects
    placed so far) or *touching*: it is pushed out of a randomly chosen earlier object along a random
    direction until it no longer overlaps, then moved 1 px back and painted only where the image is
    still free, so the two share a border with no background between them (as touching nuclei do).
    ``round(touching * (n_objects - 1))`` objects (never the first) are touching ones. Objects may be
    cut by the image border (at least ``min_inside`` of their pixels stay inside). An object that finds
    no place in ``max_tries`` attempts is dropped, so crowded settings hold fewer than ``n_objects``.
    Returns (labels int32, centres float (K, ndim)).
    """
    shape = tuple(shape)
    nd = len(shape)
    labels = np.zeros(shape, np.int32)
    halo = np.zeros(shape, bool)             # objects dilated by `gap`: isolated objects stay out
    dims = np.asarray(shape)
    n_touch = int(round(touching * max(n_objects - 1, 0)))
    is_touch = np.zeros(n_objects, bool)
    is_touch[1:][rng.permutation(n_objects - 1)[:n_touch]] = True
    centres = []
    ball = ndi.iterate_structure(ndi.generate_binary_structure(nd, 1), gap) if gap > 0 else None

    def paint(coords, value):
        inside = np.all((coords >= 0) & (coords < dims), axis=1)
        c = coords[inside]
        idx = tuple(c.T)
        free = labels[idx] == 0
        labels[tuple(c[free].T)] = value
        # update the halo in the object's bounding box only
        lo = np.maximum(c.min(0) - gap - 1, 0)
        hi = np.minimum(c.max(0) + gap + 2, dims)
        box = tuple(slice(a, b) for a, b in zip(lo, hi))
        sub = labels[box] == value
        halo[box] |= ndi.binary_dilation(sub, ball) if ball is not None else sub
        return int(free.sum())

    for k in range(n_objects):
        value = len(centres) + 1
        for _ in range(max_tries):
            offsets = sample_offsets(rng)
            m = len(offsets)
            if is_touch[k] and centres:
                j = int(rng.integers(len(centres)))
                u = rng.standard_normal(nd)
                u /= np.linalg.norm(u)
                prev = None
                ok = False
                for d in np.arange(0.0, 4.0 * float(dims.max()), 1.0):
                    pos = np.rint(centres[j] + d * u).astype(int)
                    coords = offsets + pos
                    inside = np.all((coords >= 0) & (coords < dims), axis=1)
                    if inside.mean() < min_inside:
                        break
                    if not (labels[tuple(coords[inside].T)] > 0).any():
                        ok = prev is not None
                        break
                    prev = (pos, coords)
                if not ok:
                    continue
                pos, coords = prev
                inside = np.all((coords >= 0) & (coords < dims), axis=1)
                n_free = int((labels[tuple(coords[inside].T)] == 0).sum())
                if n_free < 0.7 * m:
                    continue
                paint(coords, value)
            else:
                pos = np.array([rng.integers(0, s) for s in shape])
                coords = offsets + pos
                inside = np.all((coords >= 0) & (coords < dims), axis=1)
                if inside.mean() < min_inside or halo[tuple(coords[inside].T)].any():
                    continue
                paint(coords, value)
            centres.append(pos.astype(float))
            break
    labels = keep_largest_component(labels)
    return labels, np.array(centres, float).reshape(-1, nd)


def keep_largest_component(labels: np.ndarray) -> np.ndarray:
    """Keep, for each object id, its largest 4/6-connected piece; renumber ids to 1..K."""
    comp = measure.label(labels, background=0, connectivity=1)
    if comp.max() != len(np.unique(labels[labels > 0])):
        sizes = np.bincount(comp.ravel())
        owner = np.zeros(comp.max() + 1, labels.dtype)
        owner[comp.ravel()] = labels.ravel()
        keep = np.zeros(comp.max() + 1, bool)
        for lab in np.unique(owner[1:]):
            ids = np.nonzero(owner == lab)[0]
            ids = ids[ids > 0]
            keep[ids[np.argmax(sizes[ids])]] = True
        labels = np.where(keep[comp], labels, 0)
    return segmentation.relabel_sequential(labels)[0].astype(np.int32)


# ----------------------------------------------------------------------------- statistics
def touching_pairs(labels) -> set[tuple[int, int]]:
    """Pairs (a, b), a < b, of objects that share a face (4-adjacency in 2D, 6 in 3D)."""
    labels = np.asarray(labels)
    pairs = []
    for ax in range(labels.ndim):
        a = np.moveaxis(labels, ax, 0)[1:].ravel()
        b = np.moveaxis(labels, ax, 0)[:-1].ravel()
        sel = (a > 0) & (b > 0) & (a != b)
        pairs.append(np.stack([np.minimum(a[sel], b[sel]), np.maximum(a[sel], b[sel])], 1))
    p = np.unique(np.concatenate(pairs), axis=0) if pairs else np.zeros((0, 2), int)
    return {(int(x), int(y)) for x, y in p}


def touching_fraction(labels) -> float:
    """Share of objects that touch at least one other object (0.0 for an image with no object)."""
    labels = np.asarray(labels)
    n = len(np.unique(labels[labels > 0]))
    if n == 0:
        return 0.0
    touched = {i for pair in touching_pairs(labels) for i in pair}
    return len(touched) / n


def foreground_fraction(labels) -> float:
    """Share of pixels that belong to an object."""
    return float(np.mean(np.asarray(labels) > 0))
