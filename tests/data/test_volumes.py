import numpy as np
import pytest
from scipy import ndimage as ndi

from comp448.data import synth_blobs3d, synth_thick_thin, thick_slices, upsample_slices


def brute_touching_objects_3d(labels):
    cross = ndi.generate_binary_structure(3, 1)
    return sum(bool((labels[ndi.binary_dilation(labels == k, cross) & (labels != k)] > 0).any())
               for k in range(1, labels.max() + 1))


def test_blobs3d_contract_and_determinism():
    v, lab = synth_blobs3d((16, 32, 32), seed=0, n_objects=6)
    assert v.dtype == np.float32 and v.shape == (16, 32, 32) and 0 <= v.min() and v.max() <= 1
    assert lab.dtype == np.int32 and lab.shape == v.shape and lab.max() >= 3
    assert (np.unique(lab) == np.arange(lab.max() + 1)).all()
    v2, lab2 = synth_blobs3d((16, 32, 32), seed=0, n_objects=6)
    assert np.array_equal(v, v2) and np.array_equal(lab, lab2)
    assert not np.array_equal(v, synth_blobs3d((16, 32, 32), seed=1, n_objects=6)[0])
    assert v[lab > 0].mean() > v[lab == 0].mean() + 0.2


def test_blobs3d_dials():
    t0 = [brute_touching_objects_3d(synth_blobs3d((16, 40, 40), seed=s, n_objects=8, touching=0.0)[1])
          for s in range(2)]
    t1 = [brute_touching_objects_3d(synth_blobs3d((16, 40, 40), seed=s, n_objects=8, touching=1.0)[1])
          for s in range(2)]
    assert sum(t0) == 0 and sum(t1) >= 8
    fg = [np.mean([(synth_blobs3d((16, 40, 40), seed=s, n_objects=8, foreground=f)[1] > 0).mean()
                   for s in range(2)]) for f in (0.03, 0.15)]
    assert fg[0] < fg[1] and 0.4 * 0.15 < fg[1] < 1.3 * 0.15


def test_thick_slices_oracle():
    rng = np.random.default_rng(0)
    thin = rng.random((8, 3, 4))
    got = thick_slices(thin, 4)
    want = np.stack([np.mean([thin[k * 4 + j] for j in range(4)], axis=0) for k in range(2)])
    np.testing.assert_allclose(got, want)


def test_upsample_slices_reproduces_linear_ramp_between_slab_centres():
    f, D = 4, 16
    z = np.arange(D, dtype=float)
    thin = np.broadcast_to((0.1 * z)[:, None, None], (D, 2, 3)).copy()
    thick = thick_slices(thin, f)                 # slab means sit at the slab centres
    np.testing.assert_allclose(thick[:, 0, 0], 0.1 * (np.arange(D // f) * f + (f - 1) / 2))
    up = upsample_slices(thick, f)
    inner = slice((f - 1) // 2 + 1, D - f // 2 - 1)   # between the first and the last slab centre
    np.testing.assert_allclose(up[inner], thin[inner], atol=1e-6)
    assert np.allclose(upsample_slices(np.ones((3, 2, 2)), 2), 1.0)


def test_thick_thin_pair():
    d = synth_thick_thin((16, 32, 32), factor=4, seed=0, n_objects=10)
    assert d["thin"].shape == d["thick"].shape == (16, 32, 32) and d["thick_slices"].shape == (4, 32, 32)
    assert all(d[k].dtype == np.float32 for k in ("thin", "thick", "thick_slices"))
    np.testing.assert_allclose(d["thick_slices"], thick_slices(d["thin"], 4), atol=1e-6)
    np.testing.assert_allclose(d["thick"], upsample_slices(d["thick_slices"], 4), atol=1e-6)
    err = np.abs(d["thick"] - d["thin"]).mean()
    assert err > 0.01                                   # thick slices lose detail along z
    assert np.array_equal(d["thin"], synth_thick_thin((16, 32, 32), 4, seed=0, n_objects=10)["thin"])


@pytest.mark.parametrize("call,exc,word", [
    (lambda: synth_blobs3d((4, 32, 32)), ValueError, "shape"),
    (lambda: synth_blobs3d((16, 32)), TypeError, "shape"),
    (lambda: synth_blobs3d((16, 32, 32), touching=1.1), ValueError, "touching"),
    (lambda: synth_blobs3d((16, 32, 32), foreground=0.0), ValueError, "foreground"),
    (lambda: synth_blobs3d((16, 32, 32), noise=-1), ValueError, "noise"),
    (lambda: synth_thick_thin((18, 32, 32), factor=4), ValueError, "factor"),
    (lambda: synth_thick_thin((16, 32, 32), factor=0), ValueError, "factor"),
    (lambda: thick_slices(np.zeros((6, 2, 2)), 4), ValueError, "factor"),
    (lambda: thick_slices(np.zeros((8, 2)), 4), ValueError, "thin"),
])
def test_errors(call, exc, word):
    with pytest.raises(exc, match=word):
        call()
