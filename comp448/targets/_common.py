"""Small helpers shared by the target transforms (argument checks, per-object crops)."""
from __future__ import annotations

import math

import numpy as np
from scipy import ndimage as ndi

from .._checks import check_number


def check_spacing(spacing, ndim: int) -> tuple[float, ...]:
    """``spacing`` is None (unit pixels), one positive number, or one per axis."""
    if spacing is None:
        return (1.0,) * ndim
    values = (spacing,) * ndim if np.isscalar(spacing) else tuple(spacing)
    if len(values) != ndim:
        raise ValueError(f"spacing must have one value per axis ({ndim}), got {len(values)}")
    for v in values:
        check_number("spacing", v, lo=0.0, lo_open=True)
        if not math.isfinite(v):
            raise ValueError(f"spacing must be finite, got {v!r}")
    return tuple(float(v) for v in values)


def object_crops(labels: np.ndarray, margin: tuple[int, ...]):
    """Yield ``(k, slices)`` for every label k > 0 present in ``labels``.

    ``slices`` is k's bounding box grown by ``margin[axis]`` pixels on each side and
    clipped to the image (scipy.ndimage.find_objects gives the boxes in one pass).
    """
    for k, box in enumerate(ndi.find_objects(labels), start=1):
        if box is None:  # label k absent (labels need not be consecutive)
            continue
        yield k, tuple(slice(max(s.start - m, 0), min(s.stop + m, n))
                       for s, m, n in zip(box, margin, labels.shape))
