import math

import numpy as np
import pytest
from skimage.morphology import dilation as binary_dilation, erosion as binary_erosion, disk
from skimage.segmentation import find_boundaries

from comp448.targets import contour_map

from ._images import touching_labels


def two_touching_squares():
    lab = np.zeros((16, 22), int)
    lab[4:12, 3:11] = 1
    lab[4:12, 11:19] = 2           # shares the border between columns 10 and 11
    return lab


def test_two_touching_squares_inner_keeps_shared_border():
    lab = two_touching_squares()
    c = contour_map(lab, width=1, mode="inner")
    assert c.dtype == np.float32 and c.shape == lab.shape
    assert np.all(c[4:12, 10] == 1) and np.all(c[4:12, 11] == 1)     # both sides of the shared border
    assert np.all(c[4, 3:19] == 1) and np.all(c[11, 3:19] == 1)      # top and bottom rows
    assert np.all(c[5:11, 4:10] == 0) and np.all(c[5:11, 12:18] == 0) # interiors
    assert np.all(c[lab == 0] == 0)
    # hand count: each 8x8 square has a 28-pixel inner ring
    assert c.sum() == 56
    # a binary mask loses the shared border: that is why the target is built per instance
    merged = contour_map((lab > 0).astype(int), width=1, mode="inner")
    assert np.all(merged[5:11, 10:12] == 0)


def test_two_touching_squares_thick_is_dilation_minus_erosion():
    lab = two_touching_squares()
    c = contour_map(lab, width=1)
    expected = np.zeros(lab.shape, bool)
    for k in (1, 2):
        m = lab == k
        expected |= binary_dilation(m, disk(1)) & ~binary_erosion(m, disk(1))
    assert np.array_equal(c.astype(bool), expected)
    assert np.all(c[5:11, 10:12] == 1) and np.all(c[5:11, [9, 12]] == 0)   # 1 px each side of the border
    assert np.all(contour_map(lab, width=2)[5:11, 9:13] == 1)                # 2 px each side
    assert np.all(c[3, 3:19] == 1) and np.all(c[2, :] == 0)                  # outside band 1 px wide


@pytest.mark.parametrize("width", [1, 2, 3, 2.5])
def test_thick_matches_skimage_morphology_per_instance(width):
    # hover_net's DCAN target: per instance dilate - erode with a disk, OR-ed (objects away from the edge)
    lab = np.pad(touching_labels((40, 40), n=8, seed=1), 6)
    c = contour_map(lab, width=width, mode="thick")
    expected = np.zeros(lab.shape, bool)
    for k in np.unique(lab)[1:]:
        m = lab == k
        fp = disk(int(width)) if width == int(width) else \
            (np.hypot(*np.mgrid[-3:4, -3:4]) <= width)
        expected |= binary_dilation(m, fp) & ~binary_erosion(m, fp)
    assert np.array_equal(c.astype(bool), expected)


def brute_inner(lab, width):
    """Oracle: a pixel of object k is on the band if a pixel with another label lies within width."""
    out = np.zeros(lab.shape, bool)
    coords = np.argwhere(np.ones(lab.shape, bool))
    flat = lab.ravel()
    for i, q in enumerate(coords):
        k = flat[i]
        if k == 0:
            continue
        other = coords[flat != k]
        if len(other):
            out[tuple(q)] = np.sqrt(((other - q) ** 2).sum(1)).min() <= width
    return out


@pytest.mark.parametrize("width", [1, 2, 1.5])
def test_inner_matches_pixel_brute_force(width):
    lab = touching_labels((24, 28), n=6, seed=2)
    assert np.array_equal(contour_map(lab, width=width, mode="inner").astype(bool), brute_inner(lab, width))


def test_inner_width_one_is_find_boundaries_2d_and_3d():
    for lab in (touching_labels((40, 40), n=10, seed=3, gap=False),
                touching_labels((10, 16, 16), n=6, seed=4, gap=False)):
        expected = find_boundaries(lab, mode="inner", connectivity=1) & (lab > 0)
        assert np.array_equal(contour_map(lab, width=1, mode="inner").astype(bool), expected)


def test_image_edge_is_not_a_contour_and_full_image_object():
    lab = np.zeros((10, 10), int)
    lab[:, :5] = 1                                  # touches three image edges
    c = contour_map(lab, width=1, mode="inner")
    assert np.all(c[:, 4] == 1) and c.sum() == 10
    assert np.all(contour_map(np.ones((6, 6), int)) == 0)
    assert np.all(contour_map(np.zeros((6, 6), int)) == 0)


@pytest.mark.parametrize("kwargs, exc, word", [
    ({"width": 0}, ValueError, "width"),
    ({"width": -1}, ValueError, "width"),
    ({"width": math.inf}, ValueError, "width"),
    ({"width": "3"}, TypeError, "width"),
    ({"mode": "outer"}, ValueError, "mode"),
])
def test_bad_arguments(kwargs, exc, word):
    with pytest.raises(exc, match=word):
        contour_map(two_touching_squares(), **kwargs)


@pytest.mark.parametrize("bad, exc", [
    (np.array([1, 0, 2]), ValueError),
    (np.array([[0.5, 1.0]]), ValueError),
    (np.array([[0.0, 1.0]]), TypeError),
    (np.array([[-1, 1]]), ValueError),
    ("labels", TypeError),
])
def test_bad_labels(bad, exc):
    with pytest.raises(exc, match="labels"):
        contour_map(bad)
