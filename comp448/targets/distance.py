"""DeepDistance regression targets (slide 20): inner distance and normalised outer distance.

Koyuncu, Gunesli, Cetin-Atalay, Gunduz-Demir, "DeepDistance: A multi-task deep regression model
for cell detection in inverted microscopy images", Medical Image Analysis 63:101720, 2020.
Authors' code: canfkoyuncu/DeepDistance, calculateDistances.m (papers.md §8).

Slide 20, for a pixel q of object a_i (P(a_i) = pixels of a_i, C(a_i) = its centroid, B(a_i) =
pixels outside a_i that are 4-adjacent to it):

    inner:  d(q) = 1 / (1 + alpha * ||q - C(a_i)||^2)
    outer:  d(q) = min_{b in B(a_i)} ||q - b||^2 / max_{r in P(a_i)} min_{b in B(a_i)} ||r - b||^2

and d(q) = 0 on the background. MISMATCH with the authors' code: the code uses plain (not
squared) Euclidean distances in both maps, a rounded centroid, and, for the inner distance,
the nearest centroid of ANY object. The slide form is the default here; ``squared=False`` and the
keyword options give the code form.

Layout: ``labels`` is a NumPy integer image, 2D ``(H, W)`` or 3D ``(D, H, W)``, 0 = background,
1..K = instances (each label value is one object). Outputs are float32 arrays of the same shape
with values in (0, 1] on objects and 0 on the background. Distances are in units of ``spacing``
(default 1 per axis); 4-adjacency becomes 6-adjacency (face neighbours) in 3D.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import ndimage as ndi
from scipy.spatial import cKDTree

from .._checks import check_labels, check_number
from ._common import check_spacing, object_crops


def _centroids(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(present label ids (K,), centroids (K, ndim) in index units): mean coordinate per label."""
    flat = labels.ravel()
    counts = np.bincount(flat)
    ids = np.flatnonzero(counts)
    ids = ids[ids > 0]
    coords = np.indices(labels.shape).reshape(labels.ndim, -1)           # (ndim, N)
    sums = np.stack([np.bincount(flat, weights=c, minlength=counts.size) for c in coords], axis=1)
    return ids, sums[ids] / counts[ids, None]


def inner_distance_map(labels, alpha: float = 0.1, squared: bool = True, *, round_centroid: bool = False,
                       nearest_centroid: bool = False, spacing=None) -> np.ndarray:
    """DeepDistance inner distance, slide 20: d(q) = 1 / (1 + alpha * ||q - C(a_i)||^2), 0 on background.

    C(a_i) is the centroid (mean pixel coordinate) of q's own object a_i. The value is 1 at the
    centroid and decays with the distance from it; the maxima mark the cells (the paper detects
    cells by h-maxima of this map).

    Args:
        labels: instance label image, NumPy integer, 2D or 3D.
        alpha: decay ratio, > 0 (0.1 is the authors' code default).
        squared: True (slide) uses ||q - C||^2; False uses ||q - C|| as the authors' code does.
        round_centroid: round C(a_i) to the nearest pixel, as the authors' code does.
        nearest_centroid: use the nearest centroid of ANY object instead of q's own object's
            (the code searches all centroids; usually the same one).
        spacing: pixel size per axis (or one number); default 1.
        The authors' code form is ``squared=False, round_centroid=True, nearest_centroid=True``.
    Returns:
        float32 array of ``labels.shape``, values in (0, 1] on objects and 0 on the background.
    """
    labels = check_labels("labels", labels).astype(np.intp, copy=False)
    check_number("alpha", alpha, lo=0.0, lo_open=True)
    if not math.isfinite(alpha):
        raise ValueError(f"alpha must be finite, got {alpha!r}")
    for name, flag in (("squared", squared), ("round_centroid", round_centroid),
                       ("nearest_centroid", nearest_centroid)):
        if not isinstance(flag, (bool, np.bool_)):
            raise TypeError(f"{name} must be a bool, got {type(flag).__name__}")
    spacing = np.asarray(check_spacing(spacing, labels.ndim))
    out = np.zeros(labels.shape, dtype=np.float64)
    ids, cents = _centroids(labels)
    if ids.size == 0:
        return out.astype(np.float32)
    if round_centroid:
        cents = np.floor(cents + 0.5)                                    # MATLAB round: halves away from 0
    fg = np.nonzero(labels)                                              # tuple of (M,) index arrays
    q = np.stack(fg, axis=1) * spacing                                   # (M, ndim) physical coordinates
    cents = cents * spacing
    if nearest_centroid:
        dist2 = cKDTree(cents).query(q)[0] ** 2
    else:
        lookup = np.zeros((labels.max() + 1, labels.ndim))
        lookup[ids] = cents
        dist2 = ((q - lookup[labels[fg]]) ** 2).sum(axis=1)              # own object's centroid
    out[fg] = 1.0 / (1.0 + alpha * (dist2 if squared else np.sqrt(dist2)))
    return out.astype(np.float32)


def outer_distance_map(labels, squared: bool = True, *, spacing=None) -> np.ndarray:
    """DeepDistance normalised outer distance, slide 20 (0 on background, 1 at each object's deepest pixel).

    d(q) = D(q)^2 / max_{r in P(a_i)} D(r)^2 with D(q) = min_{b in B(a_i)} ||q - b||, where B(a_i) is
    the set of pixels outside a_i (background or another object) that are 4-adjacent to a_i
    (6-adjacent in 3D); pixels beyond the image border are not in B. ``squared=False`` gives
    D(q) / max D(r), the authors' code form.

    D(q) is a Euclidean distance transform of the object's crop (scipy.ndimage.distance_transform_edt):
    the nearest pixel outside a_i is always 4-adjacent to a_i (otherwise one step towards q along an
    axis would give a nearer outside pixel), so min over B(a_i) equals the distance to the nearest
    non-a_i pixel. An object with empty B (it fills the whole image) gets 1 on all its pixels.

    Args:
        labels: instance label image, NumPy integer, 2D or 3D.
        squared: True (slide) or False (authors' code).
        spacing: pixel size per axis (or one number); default 1.
    Returns:
        float32 array of ``labels.shape``, values in (0, 1] on objects and 0 on the background.
    """
    labels = check_labels("labels", labels).astype(np.intp, copy=False)
    if not isinstance(squared, (bool, np.bool_)):
        raise TypeError(f"squared must be a bool, got {type(squared).__name__}")
    spacing = check_spacing(spacing, labels.ndim)
    out = np.zeros(labels.shape, dtype=np.float64)
    for k, box in object_crops(labels, (1,) * labels.ndim):    # one pixel of margin holds B(a_k)
        obj = labels[box] == k
        if obj.all():
            out[box][obj] = 1.0
            continue
        D = ndi.distance_transform_edt(obj, sampling=spacing)  # on obj: distance to the nearest non-k pixel
        D = D[obj]
        r = D / D.max()
        out[box][obj] = r * r if squared else r
    return out.astype(np.float32)
