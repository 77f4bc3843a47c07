"""Segmentation metrics: pixel overlap, Hausdorff distance and the GlaS object-level metrics.

Slides 15-16 define the pixel counts these metrics are built from ("high precision TP / (TP + FP)
but low recall TP / (TP + FN)"; "Dice coefficient = 2 TP / (2 TP + FP + FN)"). The object-level
metrics are those of the GlaS gland segmentation challenge that DCAN (slide 19) and AttentionBoost
(slide 17) report: Sirinukunwattana et al., "Gland segmentation in colon histology images: The GlaS
challenge contest", Medical Image Analysis 35:489-502, 2017 (arXiv 1603.00275).

Input
-----
- Pixel metrics (``dice_score``, ``iou_score``, ``precision``, ``recall``, ``hausdorff_distance``)
  take one binary mask per argument: a NumPy array or torch tensor of any shape (Hausdorff: 2D or
  3D), dtype bool, integer or float, holding only 0 and 1. There is no batch axis: call once per
  image and average yourself. Probabilities must be thresholded first (a non-binary mask is an
  error, not silently rounded).
- Object metrics (``object_dice``, ``object_f1``, ``object_hausdorff``) take instance label images
  (2D or 3D, integer, 0 = background, every other value one object). Objects are the label values
  as given: no connected-component relabelling is done, so label your masks first
  (``skimage.measure.label``) if they are binary.
- Every metric returns a Python ``float``; none ever returns NaN.

Empty masks (one convention everywhere)
---------------------------------------
- Both masks empty: Dice = IoU = precision = recall = 1.0, Hausdorff = 0.0 (a perfect answer).
- Exactly one empty: Dice = IoU = precision = recall = 0.0, Hausdorff = inf.
  For precision this means "predicting nothing when there is something to find" scores 0 rather
  than the vacuous 1 (so an empty prediction is never rewarded); for recall it means "predicting
  something when there is nothing to find" scores 0. With this choice
  Dice = 2PR / (P + R) holds in every case (0/0 read as 0).
- Compare: MONAI ``DiceMetric`` returns NaN for an empty target by default (``ignore_empty=True``)
  and then drops it from the mean, so false positives on empty images are never counted; with
  ``ignore_empty=False`` it agrees with us. MONAI's ``HausdorffDistanceMetric(percentile=95)``
  returns NaN (not inf) when one mask is empty, and NaN is then silently dropped from the mean, so
  HD95 *improves* as a model misses more structures (MONAI issue #9095). Ours returns inf for
  every percentile: a miss is never dropped.
"""
from __future__ import annotations

import numbers

import numpy as np
import torch
from scipy import ndimage

from ._checks import check_labels, check_number

__all__ = ["dice_score", "iou_score", "precision", "recall", "hausdorff_distance",
           "object_dice", "object_f1", "object_hausdorff", "confusion_counts"]


# ----------------------------------------------------------------------------- input checks

def _to_numpy(name: str, x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array or torch.Tensor, got {type(x).__name__}")
    return x


def _as_binary(name: str, x, ndim: tuple[int, ...] | None = None) -> np.ndarray:
    """Return ``x`` as a bool array; raise unless it is a 0/1 mask with a sensible dtype."""
    x = _to_numpy(name, x)
    if ndim is not None and x.ndim not in ndim:
        raise ValueError(f"{name} must be {' or '.join(f'{d}D' for d in ndim)}, got shape {x.shape}")
    if x.ndim == 0:
        raise ValueError(f"{name} must be an array with at least one dimension, got a scalar")
    if x.dtype == bool:
        return x
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise TypeError(f"{name} must have a bool, integer or float dtype, got {x.dtype}")
    if np.issubdtype(x.dtype, np.floating) and np.isnan(x).any():
        raise ValueError(f"{name} contains NaN")
    if not np.isin(x, (0, 1)).all():
        bad = np.unique(x[~np.isin(x, (0, 1))])[:5]
        raise ValueError(f"{name} must be a binary mask holding only 0 and 1 "
                         f"(threshold probabilities first), got values such as {bad.tolist()}")
    return x.astype(bool)


def _binary_pair(pred, target, ndim=None) -> tuple[np.ndarray, np.ndarray]:
    p = _as_binary("pred", pred, ndim)
    t = _as_binary("target", target, ndim)
    if p.shape != t.shape:
        raise ValueError(f"target must have the same shape as pred: {t.shape} != {p.shape}")
    return p, t


def _label_pair(pred_labels, gt_labels) -> tuple[np.ndarray, np.ndarray]:
    p = check_labels("pred_labels", pred_labels)
    g = check_labels("gt_labels", gt_labels)
    if p.shape != g.shape:
        raise ValueError(f"gt_labels must have the same shape as pred_labels: {g.shape} != {p.shape}")
    return p, g


def _check_spacing(spacing, ndim: int) -> tuple[float, ...]:
    if spacing is None:
        return (1.0,) * ndim
    if isinstance(spacing, numbers.Real) and not isinstance(spacing, bool):
        spacing = (spacing,) * ndim
    if isinstance(spacing, (str, bytes)):
        raise TypeError(f"spacing must be a positive number or a sequence of {ndim} positive numbers, "
                        f"got {type(spacing).__name__}")
    try:
        spacing = tuple(spacing)
    except TypeError:
        raise TypeError(f"spacing must be a positive number or a sequence of {ndim} positive numbers, "
                        f"got {type(spacing).__name__}") from None
    if len(spacing) != ndim:
        raise ValueError(f"spacing must have one entry per spatial axis ({ndim}), got {len(spacing)}")
    for s in spacing:
        check_number("spacing", s, lo=0.0, lo_open=True)
    return tuple(float(s) for s in spacing)


def _check_percentile(percentile) -> None:
    if percentile is not None:
        check_number("percentile", percentile, lo=0.0, hi=100.0)


# ----------------------------------------------------------------------------- pixel metrics

def confusion_counts(pred, target) -> tuple[int, int, int]:
    """``(TP, FP, FN)`` pixel counts of two binary masks of the same shape (slide 15)."""
    p, t = _binary_pair(pred, target)
    tp = int(np.count_nonzero(p & t))
    return tp, int(np.count_nonzero(p)) - tp, int(np.count_nonzero(t)) - tp


def _ratio(num: int, den: int) -> float:
    # den == 0 only when both masks are empty (every caller's den includes both sides) -> 1.0.
    return 1.0 if den == 0 else num / den


def dice_score(pred, target) -> float:
    """Dice coefficient of two binary masks, slide 15.

    ``Dice = 2 TP / (2 TP + FP + FN) = 2 TP / (actual P + estimated as P)``.
    Both masks empty -> 1.0; exactly one empty -> 0.0. No smoothing term (the ``eps`` of the Dice
    *loss* is not used here), so the value is exact. Equals MONAI
    ``DiceMetric(include_background=True, ignore_empty=False)`` on a single foreground channel.
    """
    tp, fp, fn = confusion_counts(pred, target)
    return _ratio(2 * tp, 2 * tp + fp + fn)


def iou_score(pred, target) -> float:
    """Intersection over union (Jaccard index) of two binary masks.

    ``IoU = TP / (TP + FP + FN) = Dice / (2 - Dice)``. Both empty -> 1.0; exactly one empty -> 0.0.
    """
    tp, fp, fn = confusion_counts(pred, target)
    return _ratio(tp, tp + fp + fn)


def precision(pred, target) -> float:
    """Pixel precision ``TP / (TP + FP)`` (slide 15), the fraction of predicted pixels that are right.

    Empty cases (0/0 is undefined, we choose, never NaN): both masks empty -> 1.0; ``pred`` empty
    but ``target`` not -> 0.0 (an empty prediction is not "perfectly precise" here; sklearn's
    ``zero_division=0`` choice); ``target`` empty but ``pred`` not -> 0.0 (all predictions are FP).
    """
    tp, fp, fn = confusion_counts(pred, target)
    if tp + fp == 0:
        return 1.0 if fn == 0 else 0.0
    return tp / (tp + fp)


def recall(pred, target) -> float:
    """Pixel recall (sensitivity) ``TP / (TP + FN)`` (slide 15), the fraction of the target found.

    Empty cases: both empty -> 1.0; ``target`` empty but ``pred`` not -> 0.0 (the mirror image of
    ``precision``, so the pair is symmetric); ``pred`` empty but ``target`` not -> 0.0.
    """
    tp, fp, fn = confusion_counts(pred, target)
    if tp + fn == 0:
        return 1.0 if fp == 0 else 0.0
    return tp / (tp + fn)


# ----------------------------------------------------------------------------- Hausdorff

def _boundary(mask: np.ndarray) -> np.ndarray:
    """Foreground pixels with a background face-neighbour (4-neighbours in 2D, 6 in 3D).

    ``mask XOR binary_erosion(mask)`` with the cross-shaped structuring element and pixels outside
    the array counted as background, which is MONAI's ``get_mask_edges`` definition.
    """
    return mask & ~ndimage.binary_erosion(mask, border_value=0)


def _union_bbox(a: np.ndarray, b: np.ndarray) -> tuple[slice, ...]:
    """Bounding box of a | b. Distances between a and b are unchanged when both are cropped to it,
    and so are their boundaries (a pixel on the box's edge has a background neighbour outside)."""
    return ndimage.find_objects((a | b).astype(np.int8))[0]


def _directed_distances(a: np.ndarray, b: np.ndarray, spacing, surface: bool):
    """Distances from every point of a to the nearest point of b and vice versa (both non-empty).

    Points are the boundary pixels (``surface=True``) or all pixels (``surface=False``);
    ``distance_transform_edt(~B)`` gives, at every pixel, the distance to the nearest pixel of B.
    """
    box = _union_bbox(a, b)
    a, b = a[box], b[box]
    if surface:
        a, b = _boundary(a), _boundary(b)
    d_ab = ndimage.distance_transform_edt(~b, sampling=spacing)[a]
    d_ba = ndimage.distance_transform_edt(~a, sampling=spacing)[b]
    return d_ab, d_ba


def _hausdorff(a: np.ndarray, b: np.ndarray, spacing, percentile, surface: bool) -> float:
    has_a, has_b = a.any(), b.any()
    if not has_a and not has_b:
        return 0.0
    if not has_a or not has_b:
        return float("inf")
    d_ab, d_ba = _directed_distances(a, b, spacing, surface)
    if percentile is None:
        return float(max(d_ab.max(), d_ba.max()))
    return float(np.percentile(np.concatenate([d_ab, d_ba]), percentile))


def hausdorff_distance(pred, target, percentile=None, spacing=None, surface: bool = True) -> float:
    """Symmetric Hausdorff distance between two binary masks (2D or 3D).

    ``H(A, B) = max( max_{a in A} min_{b in B} ||a - b||, max_{b in B} min_{a in A} ||a - b|| )``

    - ``surface=True`` (default, MONAI's convention): A and B are the *boundary* pixels of the two
      masks, i.e. foreground pixels with a background face-neighbour (``mask XOR erosion(mask)``,
      the image outside the array counts as background). ``surface=False``: A and B are all
      foreground pixels (the set definition the GlaS evaluation code uses). The two agree for most
      shapes; they differ e.g. when a mask has a hole.
    - Distances are Euclidean in physical units: ``spacing`` is a number or one number per axis
      (default 1 = pixels). They come from ``scipy.ndimage.distance_transform_edt`` of the other
      set's complement, evaluated on this set's points (no pairwise loop).
    - ``percentile=q`` (e.g. 95 for HD95) returns the q-th percentile (NumPy's linear interpolation)
      of the *union* of both directed distance sets, i.e. all boundary points of pred and of
      target pooled. MONAI (``compute_hausdorff_distance(percentile=q)``) instead takes the
      percentile of each directed set separately and then the max, so HD95 values differ between
      the two; ``percentile=None`` (the max) and ``percentile=100`` agree with MONAI.
    - Both empty -> 0.0; exactly one empty -> ``inf`` for every percentile. MONAI returns NaN for
      HD95 with an empty mask and drops it from its mean (issue #9095); we never return NaN.
    """
    p, t = _binary_pair(pred, target, ndim=(2, 3))
    _check_percentile(percentile)
    spacing = _check_spacing(spacing, p.ndim)
    if not isinstance(surface, bool):
        raise TypeError(f"surface must be a bool, got {type(surface).__name__}")
    return _hausdorff(p, t, spacing, percentile, surface)


# ----------------------------------------------------------------------------- GlaS object metrics

class _Objects:
    """Both label images relabelled 1..n, their areas and the overlap table.

    ``overlap[i, j]`` = number of pixels in ground-truth object i and segmented object j, with
    row/column 0 for background, computed with one ``np.bincount`` over all pixels.
    """

    def __init__(self, pred_labels, gt_labels):
        s, g = _label_pair(pred_labels, gt_labels)
        self.s_ids, s_idx = np.unique(s, return_inverse=True)
        self.g_ids, g_idx = np.unique(g, return_inverse=True)
        s_idx, g_idx = s_idx.reshape(s.shape), g_idx.reshape(g.shape)
        # make index 0 mean background even when the image has no background pixel
        if self.s_ids[0] != 0:
            self.s_ids, s_idx = np.concatenate([[0], self.s_ids]), s_idx + 1
        if self.g_ids[0] != 0:
            self.g_ids, g_idx = np.concatenate([[0], self.g_ids]), g_idx + 1
        self.s, self.g = s_idx, g_idx                      # (*spatial) ints in 0..n_s / 0..n_g
        self.n_s, self.n_g = len(self.s_ids) - 1, len(self.g_ids) - 1
        n_s1 = self.n_s + 1
        self.overlap = np.bincount((g_idx * n_s1 + s_idx).ravel(),
                                   minlength=(self.n_g + 1) * n_s1).reshape(self.n_g + 1, n_s1)
        self.area_g = self.overlap.sum(axis=1)[1:]        # (n_g,)
        self.area_s = self.overlap.sum(axis=0)[1:]        # (n_s,)
        inter = self.overlap[1:, 1:]                      # (n_g, n_s), objects only
        self.inter = inter
        if self.n_s == 0 or self.n_g == 0:                # callers handle these cases first
            return
        # maximally overlapping partner; argmax takes the smallest label on a tie (as MATLAB's mode)
        self.best_s = np.where(inter.max(axis=1) > 0, inter.argmax(axis=1), -1)   # per GT object
        self.best_g = np.where(inter.max(axis=0) > 0, inter.argmax(axis=0), -1)   # per segmented object


def object_f1(pred_labels, gt_labels, overlap: float = 0.5) -> float:
    """GlaS object-level F1 score (Sirinukunwattana et al. 2017, "detection" criterion).

    For each segmented object S_j its ground-truth partner is the GT object it overlaps most. S_j is
    a true positive when it covers at least ``overlap`` of that partner's area,
    ``|S_j ∩ G*| / |G*| >= overlap``, otherwise a false positive. A GT object is a false negative
    when no true positive segment has it as partner. Then
    ``precision = TP / (TP + FP)``, ``recall = (n_G - FN) / n_G``, ``F1 = 2PR / (P + R)``.

    - ``>=`` follows the paper's "at least 50%"; the official MATLAB code tests ``> 0.5``. The two
      differ only when a segment covers exactly half of its partner.
    - The official code counts ``FN = n_G - TP``; we count missed GT objects instead, which is the
      same whenever each GT object has at most one true-positive segment (always the case for
      ``overlap > 0.5``) and never goes negative for ``overlap <= 0.5``.
    - Ties in "overlaps most" go to the smaller label. Both images empty -> 1.0; exactly one
      without objects -> 0.0 (as the official code).
    """
    check_number("overlap", overlap, lo=0.0, hi=1.0, lo_open=True)
    o = _Objects(pred_labels, gt_labels)
    if o.n_s == 0 and o.n_g == 0:
        return 1.0
    if o.n_s == 0 or o.n_g == 0:
        return 0.0
    j = np.nonzero(o.best_g >= 0)[0]                    # segments touching some GT object
    partner = o.best_g[j]
    hit = o.inter[partner, j] >= overlap * o.area_g[partner]
    tp = int(hit.sum())
    fp = o.n_s - tp
    fn = o.n_g - len(np.unique(partner[hit]))
    p, r = tp / (tp + fp), (o.n_g - fn) / o.n_g
    return 0.0 if p + r == 0 else 2 * p * r / (p + r)


def object_dice(pred_labels, gt_labels) -> float:
    """GlaS object-level Dice (Sirinukunwattana et al. 2017, "segmentation" criterion).

    ``D_obj(G, S) = 1/2 [ sum_i gamma_i D(G_i, S*(G_i)) + sum_j sigma_j D(G*(S_j), S_j) ]`` with
    ``gamma_i = |G_i| / sum_k |G_k|`` and ``sigma_j = |S_j| / sum_k |S_k|`` (area weights on both
    sides), ``S*(G_i)`` the segmented object that overlaps G_i most (the empty set, hence Dice 0,
    if none overlaps) and ``G*(S_j)`` likewise. ``D`` is the pixel Dice of ``dice_score``. The
    first sum punishes missed and under-segmented glands, the second spurious and over-segmented
    ones. Ties go to the smaller label. Both images without objects -> 1.0; exactly one -> 0.0.
    """
    o = _Objects(pred_labels, gt_labels)
    if o.n_s == 0 and o.n_g == 0:
        return 1.0
    if o.n_s == 0 or o.n_g == 0:
        return 0.0
    # GT side: Dice(G_i, S*(G_i)) = 2 |G_i ∩ S*| / (|G_i| + |S*|), 0 when unmatched
    i = np.arange(o.n_g)
    js = np.maximum(o.best_s, 0)
    d_g = np.where(o.best_s >= 0, 2 * o.inter[i, js] / (o.area_g + o.area_s[js]), 0.0)
    j = np.arange(o.n_s)
    ig = np.maximum(o.best_g, 0)
    d_s = np.where(o.best_g >= 0, 2 * o.inter[ig, j] / (o.area_s + o.area_g[ig]), 0.0)
    return float(0.5 * (np.sum(o.area_g * d_g) / o.area_g.sum()
                        + np.sum(o.area_s * d_s) / o.area_s.sum()))


def object_hausdorff(pred_labels, gt_labels, spacing=None, surface: bool = False) -> float:
    """GlaS object-level Hausdorff distance (Sirinukunwattana et al. 2017, shape criterion).

    ``H_obj(G, S) = 1/2 [ sum_i gamma_i H(G_i, S*(G_i)) + sum_j sigma_j H(G*(S_j), S_j) ]`` with the
    area weights and maximal-overlap partners of ``object_dice``. An object that overlaps nothing on
    the other side is paired with the object of the other side *nearest in Hausdorff distance*
    (as the official evaluation code does), so a spurious blob far from every gland costs its
    distance to the nearest gland, weighted by its area.

    ``H`` is ``hausdorff_distance`` with ``spacing`` and ``surface``; the default ``surface=False``
    measures between all object pixels, as the GlaS code does. Both images without objects -> 0.0;
    exactly one -> inf (the official code has no answer there).
    """
    o = _Objects(pred_labels, gt_labels)
    spacing = _check_spacing(spacing, o.s.ndim)
    if not isinstance(surface, bool):
        raise TypeError(f"surface must be a bool, got {type(surface).__name__}")
    if o.n_s == 0 and o.n_g == 0:
        return 0.0
    if o.n_s == 0 or o.n_g == 0:
        return float("inf")

    # object masks are cut out on demand; pair distances are cached (a pair is used from both sides)
    slices_g = ndimage.find_objects(o.g)
    slices_s = ndimage.find_objects(o.s)
    cache: dict[tuple[int, int], float] = {}

    def h(i: int, j: int) -> float:                      # H(G_i, S_j), 0-based object indices
        if (i, j) not in cache:
            box = tuple(slice(min(a.start, b.start), max(a.stop, b.stop))
                        for a, b in zip(slices_g[i], slices_s[j]))
            cache[i, j] = _hausdorff(o.g[box] == i + 1, o.s[box] == j + 1, spacing, None, surface)
        return cache[i, j]

    h_g = [h(i, o.best_s[i]) if o.best_s[i] >= 0 else min(h(i, j) for j in range(o.n_s))
           for i in range(o.n_g)]
    h_s = [h(o.best_g[j], j) if o.best_g[j] >= 0 else min(h(i, j) for i in range(o.n_g))
           for j in range(o.n_s)]
    return float(0.5 * (np.dot(o.area_g, h_g) / o.area_g.sum()
                        + np.dot(o.area_s, h_s) / o.area_s.sum()))
