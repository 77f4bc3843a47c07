import numpy as np
import pytest

from comp448.data import foreground_fraction, touching_fraction, touching_pairs
from comp448.data._common import (check_fraction, check_shape, keep_largest_component, make_rng,
                                  place_objects)


def test_touching_pairs_hand_case():
    lab = np.array([[1, 1, 2, 0, 3],
                    [0, 0, 2, 0, 3],
                    [4, 0, 0, 0, 0],
                    [0, 4, 0, 0, 5]])
    # 1-2 share a horizontal face; 4 is diagonal to itself only; 3 and 5 are alone
    assert touching_pairs(lab) == {(1, 2)}
    assert touching_fraction(lab) == pytest.approx(2 / 5)
    assert foreground_fraction(lab) == pytest.approx(9 / 20)
    assert touching_fraction(np.zeros((4, 4), int)) == 0.0


def test_touching_pairs_3d_face_not_edge():
    lab = np.zeros((2, 2, 2), int)
    lab[0, 0, 0], lab[1, 0, 0], lab[1, 1, 1] = 1, 2, 3   # 1-2 share a face, 3 touches only by a corner
    assert touching_pairs(lab) == {(1, 2)}


def test_keep_largest_component_and_relabel():
    lab = np.zeros((5, 7), np.int32)
    lab[0, 0:3] = 4           # big piece of 4
    lab[4, 6] = 4             # stray pixel of 4
    lab[2, 3] = 9
    out = keep_largest_component(lab)
    assert out[4, 6] == 0 and set(np.unique(out)) == {0, 1, 2}
    assert (out[0, 0:3] == out[0, 0]).all() and out[2, 3] != out[0, 0]


def test_place_objects_touching_counts():
    def square(rng):
        g = np.mgrid[-3:4, -3:4].reshape(2, -1).T
        return g
    rng = np.random.default_rng(0)
    lab0, _ = place_objects(rng, (96, 96), 12, 0.0, square, gap=2)
    assert touching_pairs(lab0) == set()            # isolated objects keep the gap
    lab1, c = place_objects(np.random.default_rng(0), (96, 96), 12, 1.0, square, gap=2)
    assert touching_fraction(lab1) == 1.0            # every object touches one placed before it
    assert len(c) == lab1.max()


def test_make_rng_and_checks_errors():
    assert isinstance(make_rng(3), np.random.Generator)
    g = np.random.default_rng(1)
    assert make_rng(g) is g
    with pytest.raises(ValueError, match="seed"):
        make_rng(-1)
    with pytest.raises(TypeError, match="seed"):
        make_rng(1.5)
    with pytest.raises(TypeError, match="seed"):
        make_rng(True)
    assert check_shape("size", 20, 2) == (20, 20)
    with pytest.raises(ValueError, match="size"):
        check_shape("size", 8, 2)
    with pytest.raises(TypeError, match="size"):
        check_shape("size", (20, 20, 20), 2)
    with pytest.raises(TypeError, match="size"):
        check_shape("size", 20.0, 2)
    with pytest.raises(ValueError, match="touching"):
        check_fraction("touching", 1.5)
    with pytest.raises(ValueError, match="touching"):
        check_fraction("touching", float("nan"))
