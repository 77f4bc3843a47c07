import numpy as np
import pytest
from scipy import ndimage as ndi

from comp448.data import synth_glands, synth_nuclei, synth_oct


def brute_touching_objects(labels):
    """Objects 4-adjacent to a different object, found by dilating each one (oracle)."""
    n = 0
    cross = ndi.generate_binary_structure(2, 1)
    for k in range(1, labels.max() + 1):
        ring = ndi.binary_dilation(labels == k, cross) & (labels != k)
        n += bool((labels[ring] > 0).any())
    return n


def check_labels_contract(lab, shape):
    assert lab.dtype == np.int32 and lab.shape == shape
    ids = np.unique(lab)
    assert ids[0] == 0 and (ids == np.arange(len(ids))).all()     # consecutive 0..K


GENS = [
    (lambda seed: synth_nuclei(64, n_objects=15, seed=seed), (64, 64), (64, 64)),
    (lambda seed: synth_glands(64, seed=seed, n_objects=3), (3, 64, 64), (64, 64)),
    (lambda seed: synth_oct(64, seed=seed), (64, 64), (64, 64)),
]


@pytest.mark.parametrize("gen,ishape,lshape", GENS)
def test_contract_and_determinism(gen, ishape, lshape):
    im, lab = gen(0)
    assert im.dtype == np.float32 and im.shape == ishape
    assert np.isfinite(im).all() and im.min() >= 0 and im.max() <= 1 and im.std() > 0.02
    check_labels_contract(lab, lshape)
    assert lab.max() >= 1
    im2, lab2 = gen(0)
    assert np.array_equal(im, im2) and np.array_equal(lab, lab2)
    im3, lab3 = gen(1)
    assert not np.array_equal(im, im3) and not np.array_equal(lab, lab3)
    im4, _ = gen(np.random.SeedSequence(0))
    assert im4.shape == ishape


def test_nuclei_touching_dial_moves_touching_count():
    counts = []
    for t in (0.0, 0.5, 1.0):
        labs = [synth_nuclei(96, n_objects=20, touching=t, seed=s)[1] for s in range(2)]
        counts.append(np.mean([brute_touching_objects(lab) / lab.max() for lab in labs]))
    assert counts[0] < 0.05          # isolated nuclei keep a gap: (almost) nothing touches
    assert counts[0] < counts[1] < counts[2]
    assert counts[2] > 0.8


def test_nuclei_foreground_dial():
    fg = [np.mean([(synth_nuclei(96, n_objects=15, touching=0.3, foreground=f, seed=s)[1] > 0).mean()
                   for s in range(2)]) for f in (0.05, 0.15, 0.3)]
    assert fg[0] < fg[1] < fg[2]
    for got, want in zip(fg, (0.05, 0.15, 0.3)):
        assert 0.5 * want < got < 1.3 * want


def test_nuclei_look_like_fluorescence():
    im, lab = synth_nuclei(128, n_objects=25, seed=3)
    fg, bg = im[lab > 0], im[lab == 0]
    assert fg.mean() > bg.mean() + 0.2           # bright nuclei on a dark background
    # irregular outlines: not discs (solidity < 1 for some, eccentricity spread)
    from skimage.measure import regionprops
    ecc = [r.eccentricity for r in regionprops(lab)]
    assert np.std(ecc) > 0.05 and max(ecc) > 0.5
    # shot noise: the background is not flat
    assert bg.std() > 0.005


def test_glands_structure_and_colour():
    im, lab = synth_glands(128, seed=2, n_objects=4)
    rgb = im.transpose(1, 2, 0)
    stroma = (ndi.distance_transform_edt(lab == 0) > 4)
    # stroma is eosin pink: red and blue above green
    s = rgb[stroma].mean(0)
    assert s[0] > s[1] + 0.1 and s[2] > s[1] + 0.1
    # lumen (deep inside a gland) is paler than stroma; gland rims hold dark nuclei
    d_in = ndi.distance_transform_edt(lab > 0)
    k = d_in.max()
    assert rgb[d_in > 0.8 * k].mean() > s.mean()
    rim = (d_in > 1) & (d_in < 8)
    assert np.percentile(rgb[rim].mean(1), 10) < np.percentile(rgb[stroma].mean(1), 10)


def test_glands_touching_dial():
    t0 = [brute_touching_objects(synth_glands(128, seed=s, n_objects=5, touching=0.0)[1]) for s in range(2)]
    t1 = [brute_touching_objects(synth_glands(128, seed=s, n_objects=5, touching=1.0)[1]) for s in range(2)]
    assert sum(t0) == 0 and sum(t1) >= 4


def test_oct_layer_is_one_thin_curved_object():
    im, lab = synth_oct(128, seed=0)
    assert lab.max() == 1 and ndi.label(lab)[1] == 1
    rows, cols = np.nonzero(lab)
    thickness = np.bincount(cols).max()
    assert (cols.max() - cols.min()) > 4 * thickness                   # thin and long
    top = np.array([rows[cols == c].min() for c in np.unique(cols)])
    assert top.max() - top.min() >= 3                                   # curved, not a straight band
    # vitreous (top rows) is darker than the retina around the layer
    assert im[:5].mean() < im[lab > 0].mean()


def test_oct_contrast_dial():
    a, lab = synth_oct(96, seed=1, layer_contrast=0.0, speckle=0.0)
    b, _ = synth_oct(96, seed=1, layer_contrast=2.0, speckle=0.0)
    assert b[lab > 0].mean() > a[lab > 0].mean() + 0.05


@pytest.mark.parametrize("call,exc,word", [
    (lambda: synth_nuclei(8), ValueError, "size"),
    (lambda: synth_nuclei(64, n_objects=0), ValueError, "n_objects"),
    (lambda: synth_nuclei(64, touching=1.2), ValueError, "touching"),
    (lambda: synth_nuclei(64, touching=-0.1), ValueError, "touching"),
    (lambda: synth_nuclei(64, foreground=0.0), ValueError, "foreground"),
    (lambda: synth_nuclei(64, foreground=0.9), ValueError, "foreground"),
    (lambda: synth_nuclei(64, photons=0), ValueError, "photons"),
    (lambda: synth_nuclei("64"), TypeError, "size"),
    (lambda: synth_nuclei(64, seed=-3), ValueError, "seed"),
    (lambda: synth_glands(16), ValueError, "size"),
    (lambda: synth_glands(64, touching=2), ValueError, "touching"),
    (lambda: synth_glands(64, stain_variation=-1), ValueError, "stain_variation"),
    (lambda: synth_oct(64, tilt=2.0), ValueError, "tilt"),
    (lambda: synth_oct(64, fovea=1.5), ValueError, "fovea"),
    (lambda: synth_oct(64, looks=0), ValueError, "looks"),
    (lambda: synth_oct(64, speckle=-1), ValueError, "speckle"),
])
def test_errors(call, exc, word):
    with pytest.raises(exc, match=word):
        call()
