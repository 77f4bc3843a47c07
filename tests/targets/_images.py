"""Seeded label images with touching objects, shared by the target-transform tests."""
import numpy as np
from scipy import ndimage as ndi
from skimage.segmentation import find_boundaries, watershed


def touching_labels(shape=(48, 48), n=12, seed=0, gap=True, holes=True):
    """Voronoi cells of n random seeds (labels 1..n), optionally cut apart by a 1-px background line
    (``gap``) and with a background disk (``holes``)."""
    rng = np.random.default_rng(seed)
    markers = np.zeros(shape, dtype=np.int32)
    idx = tuple(rng.integers(0, s, n) for s in shape)
    markers[idx] = np.arange(1, n + 1)
    labels = watershed(ndi.distance_transform_edt(markers == 0), markers)
    if holes:
        grid = np.indices(shape)
        c = [rng.integers(0, s) for s in shape]
        r = min(shape) / 5
        labels[sum((g - ci) ** 2 for g, ci in zip(grid, c)) < r * r] = 0
    if gap:
        labels[find_boundaries(labels, mode="inner") & (labels > 0)] = 0
    return labels
