"""Tests for comp448.metrics against hand counts, plainly written brute-force oracles and MONAI."""
import math
import warnings

import numpy as np
import pytest
import torch

from comp448 import metrics as M

RNG = np.random.default_rng(0)
pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")


# ----------------------------------------------------------------------------- oracles (plain code)

def brute_boundary(mask):
    """Foreground pixels that have a background (or out-of-image) face neighbour, by explicit shifts."""
    mask = np.asarray(mask, bool)
    padded = np.pad(mask, 1, constant_values=False)
    out = np.zeros_like(mask)
    for axis in range(mask.ndim):
        for step in (-1, 1):
            nb = np.roll(padded, step, axis=axis)[tuple(slice(1, -1) for _ in range(mask.ndim))]
            out |= mask & ~nb
    return out


def brute_directed(a_pts, b_pts, spacing):
    """For every point of a, the distance to the nearest point of b, by all pairwise distances."""
    diff = (a_pts[:, None, :] - b_pts[None, :, :]) * np.asarray(spacing)
    return np.sqrt((diff ** 2).sum(-1)).min(axis=1)


def brute_hausdorff(a, b, spacing=None, percentile=None, surface=True):
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    spacing = spacing or (1.0,) * a.ndim
    if not a.any() and not b.any():
        return 0.0
    if not a.any() or not b.any():
        return math.inf
    if surface:
        a, b = brute_boundary(a), brute_boundary(b)
    pa, pb = np.argwhere(a).astype(float), np.argwhere(b).astype(float)
    d1, d2 = brute_directed(pa, pb, spacing), brute_directed(pb, pa, spacing)
    if percentile is None:
        return max(d1.max(), d2.max())
    return float(np.percentile(np.concatenate([d1, d2]), percentile))


def objects_of(labels):
    return [int(v) for v in np.unique(labels) if v != 0]


def max_overlap_partner(obj_mask, other_labels):
    """Label of the other side's object overlapping obj_mask most (smallest label on ties), or None."""
    best, best_count = None, 0
    for lab in objects_of(other_labels):
        count = int(np.sum(obj_mask & (other_labels == lab)))
        if count > best_count:
            best, best_count = lab, count
    return best


def brute_object_f1(S, G, overlap=0.5):
    s_objs, g_objs = objects_of(S), objects_of(G)
    if not s_objs and not g_objs:
        return 1.0
    if not s_objs or not g_objs:
        return 0.0
    tp, detected = 0, set()
    for s in s_objs:
        g = max_overlap_partner(S == s, G)
        if g is not None and np.sum((S == s) & (G == g)) / np.sum(G == g) >= overlap:
            tp += 1
            detected.add(g)
    fp = len(s_objs) - tp
    fn = len(g_objs) - len(detected)
    p, r = tp / (tp + fp), (len(g_objs) - fn) / len(g_objs)
    return 0.0 if p + r == 0 else 2 * p * r / (p + r)


def plain_dice(a, b):
    return 2 * np.sum(a & b) / (np.sum(a) + np.sum(b))


def brute_object_dice(S, G):
    s_objs, g_objs = objects_of(S), objects_of(G)
    if not s_objs and not g_objs:
        return 1.0
    if not s_objs or not g_objs:
        return 0.0
    total_s, total_g = np.sum(S > 0), np.sum(G > 0)
    term_s = 0.0
    for s in s_objs:
        g = max_overlap_partner(S == s, G)
        d = 0.0 if g is None else plain_dice(S == s, G == g)
        term_s += np.sum(S == s) / total_s * d
    term_g = 0.0
    for g in g_objs:
        s = max_overlap_partner(G == g, S)
        d = 0.0 if s is None else plain_dice(G == g, S == s)
        term_g += np.sum(G == g) / total_g * d
    return 0.5 * (term_s + term_g)


def brute_object_hausdorff(S, G, spacing=None):
    s_objs, g_objs = objects_of(S), objects_of(G)
    total_s, total_g = np.sum(S > 0), np.sum(G > 0)

    def haus(a, b):
        return brute_hausdorff(a, b, spacing=spacing, surface=False)

    term_s = 0.0
    for s in s_objs:
        g = max_overlap_partner(S == s, G)
        h = haus(S == s, G == g) if g is not None else min(haus(S == s, G == gg) for gg in g_objs)
        term_s += np.sum(S == s) / total_s * h
    term_g = 0.0
    for g in g_objs:
        s = max_overlap_partner(G == g, S)
        h = haus(G == g, S == s) if s is not None else min(haus(G == g, S == ss) for ss in s_objs)
        term_g += np.sum(G == g) / total_g * h
    return 0.5 * (term_s + term_g)


def random_blobs(shape, n, rng, max_size=6):
    """Label image with up to n random boxes (later ones overwrite earlier ones)."""
    lab = np.zeros(shape, np.int32)
    for k in range(1, n + 1):
        lo = [rng.integers(0, s - 1) for s in shape]
        hi = [min(s, l + rng.integers(1, max_size + 1)) for l, s in zip(lo, shape)]
        lab[tuple(slice(l, h) for l, h in zip(lo, hi))] = k
    return lab


def random_mask(shape, rng, density=0.3):
    return (random_blobs(shape, 4, rng) > 0) | (rng.random(shape) < density * 0.1)


# ----------------------------------------------------------------------------- pixel metrics

def test_hand_counted_pixel_metrics():
    pred = np.array([[1, 1, 1, 0, 0, 0, 0]])
    target = np.array([[0, 1, 1, 1, 1, 1, 0]])
    # TP = 2, FP = 1, FN = 3
    assert M.confusion_counts(pred, target) == (2, 1, 3)
    assert M.dice_score(pred, target) == pytest.approx(4 / 8)
    assert M.iou_score(pred, target) == pytest.approx(2 / 6)
    assert M.precision(pred, target) == pytest.approx(2 / 3)
    assert M.recall(pred, target) == pytest.approx(2 / 5)
    for f in (M.dice_score, M.iou_score, M.precision, M.recall):
        assert type(f(pred, target)) is float


EMPTY = np.zeros((4, 5), bool)
FULL = np.zeros((4, 5), bool)
FULL[1:3, 1:4] = True


@pytest.mark.parametrize("f", [M.dice_score, M.iou_score, M.precision, M.recall])
def test_empty_mask_conventions(f):
    assert f(EMPTY, EMPTY) == 1.0
    assert f(EMPTY, FULL) == 0.0
    assert f(FULL, EMPTY) == 0.0
    assert f(FULL, FULL) == 1.0


def test_hausdorff_empty_conventions():
    for q in (None, 50, 95, 100):
        assert M.hausdorff_distance(EMPTY, EMPTY, percentile=q) == 0.0
        assert M.hausdorff_distance(EMPTY, FULL, percentile=q) == math.inf
        assert M.hausdorff_distance(FULL, EMPTY, percentile=q) == math.inf
        assert M.hausdorff_distance(FULL, FULL, percentile=q) == 0.0


def test_dice_is_harmonic_mean_of_precision_and_recall_and_iou_relation():
    for _ in range(30):
        p = random_mask((12, 11), RNG) & (RNG.random() < 0.8)
        t = random_mask((12, 11), RNG) & (RNG.random() < 0.8)
        d, P, R, J = M.dice_score(p, t), M.precision(p, t), M.recall(p, t), M.iou_score(p, t)
        assert d == pytest.approx(0.0 if P + R == 0 else 2 * P * R / (P + R))
        assert J == pytest.approx(d / (2 - d))


def test_input_types_agree():
    p, t = random_mask((9, 10), RNG), random_mask((9, 10), RNG)
    ref = M.dice_score(p, t)
    assert M.dice_score(p.astype(np.uint8), t.astype(np.int64)) == ref
    assert M.dice_score(p.astype(np.float32), t.astype(float)) == ref
    assert M.dice_score(torch.from_numpy(p), torch.from_numpy(t).float()) == ref
    assert M.hausdorff_distance(torch.from_numpy(p), t) == M.hausdorff_distance(p, t)


def test_pixel_metrics_match_monai():
    monai_metrics = pytest.importorskip("monai.metrics")
    for _ in range(10):
        p, t = random_mask((2, 16, 15), RNG), random_mask((2, 16, 15), RNG)
        p[1] = False if RNG.random() < 0.5 else p[1]  # sometimes an empty prediction
        yp = torch.from_numpy(p[:, None].astype(np.float32))  # (B, 1, H, W), one foreground channel
        yt = torch.from_numpy(t[:, None].astype(np.float32))
        dm = monai_metrics.DiceMetric(include_background=True, reduction="none", ignore_empty=False)
        dice_ref = dm(yp, yt).numpy()[:, 0]
        iou_ref = monai_metrics.compute_iou(yp, yt, include_background=True, ignore_empty=False).numpy()[:, 0]
        cm = monai_metrics.get_confusion_matrix(yp, yt, include_background=True)
        prec_ref = monai_metrics.compute_confusion_matrix_metric("precision", cm).numpy()[:, 0]
        rec_ref = monai_metrics.compute_confusion_matrix_metric("recall", cm).numpy()[:, 0]
        for b in range(2):
            assert M.dice_score(p[b], t[b]) == pytest.approx(dice_ref[b], rel=1e-6)
            assert M.iou_score(p[b], t[b]) == pytest.approx(iou_ref[b], rel=1e-6)
            if p[b].any():  # MONAI's precision is NaN for an empty prediction; ours is documented
                assert M.precision(p[b], t[b]) == pytest.approx(prec_ref[b], rel=1e-6)
            if t[b].any():
                assert M.recall(p[b], t[b]) == pytest.approx(rec_ref[b], rel=1e-6)


# ----------------------------------------------------------------------------- Hausdorff

def test_hausdorff_hand_counted():
    a = np.zeros((6, 6), bool)
    b = np.zeros((6, 6), bool)
    a[0, 0] = True
    b[3, 4] = True
    assert M.hausdorff_distance(a, b) == pytest.approx(5.0)
    assert M.hausdorff_distance(a, b, spacing=(2.0, 1.0)) == pytest.approx(math.sqrt(36 + 16))
    assert M.hausdorff_distance(a, b, spacing=0.5) == pytest.approx(2.5)
    # a 5x5 square vs its centre pixel: the farthest boundary pixel of the square is a corner
    sq = np.zeros((7, 7), bool)
    sq[1:6, 1:6] = True
    c = np.zeros((7, 7), bool)
    c[3, 3] = True
    assert M.hausdorff_distance(sq, c) == pytest.approx(2 * math.sqrt(2))
    # one-sided: pred inside target; the directed distances differ but H is symmetric
    assert M.hausdorff_distance(c, sq) == M.hausdorff_distance(sq, c)


def test_hausdorff_surface_vs_region_differ_with_a_hole():
    full = np.zeros((13, 13), bool)
    full[1:12, 1:12] = True
    holed = full.copy()
    holed[6, 6] = False
    # all-pixels: the hole pixel is 1 from the holed mask
    assert M.hausdorff_distance(full, holed, surface=False) == pytest.approx(1.0)
    # boundaries: the rim of the hole is 4 pixels from the outer boundary
    assert M.hausdorff_distance(full, holed, surface=True) == pytest.approx(4.0)


@pytest.mark.parametrize("shape", [(14, 13), (7, 8, 6)])
@pytest.mark.parametrize("surface", [True, False])
def test_hausdorff_matches_brute_force(shape, surface):
    rng = np.random.default_rng(len(shape) + surface)
    for _ in range(8):
        a, b = random_mask(shape, rng), random_mask(shape, rng)
        spacing = tuple(rng.uniform(0.5, 2.0, len(shape)))
        for q in (None, 95, 50, 0):
            for sp in (None, spacing):
                ours = M.hausdorff_distance(a, b, percentile=q, spacing=sp, surface=surface)
                ref = brute_hausdorff(a, b, spacing=sp, percentile=q, surface=surface)
                assert ours == pytest.approx(ref, rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("shape", [(16, 15), (8, 9, 7)])
def test_hausdorff_matches_monai(shape):
    monai_metrics = pytest.importorskip("monai.metrics")
    rng = np.random.default_rng(7)
    for _ in range(6):
        a, b = random_mask(shape, rng), random_mask(shape, rng)
        spacing = tuple(float(s) for s in rng.uniform(0.5, 2.0, len(shape)))
        yp = torch.from_numpy(a[None, None].astype(np.float32))
        yt = torch.from_numpy(b[None, None].astype(np.float32))
        for q in (None, 100):
            for sp in (None, spacing):
                ref = float(monai_metrics.compute_hausdorff_distance(
                    yp, yt, include_background=True, percentile=q, spacing=sp)[0, 0])
                assert M.hausdorff_distance(a, b, percentile=q, spacing=sp) == pytest.approx(ref, rel=1e-5)


def test_hd95_does_not_drop_a_miss_unlike_monai():
    monai_metrics = pytest.importorskip("monai.metrics")
    t = np.zeros((10, 10), bool)
    t[2:6, 3:7] = True
    p = np.zeros_like(t)
    with warnings.catch_warnings():  # MONAI warns about the empty prediction
        warnings.simplefilter("ignore")
        ref = float(monai_metrics.compute_hausdorff_distance(
            torch.from_numpy(p[None, None]).float(), torch.from_numpy(t[None, None]).float(),
            include_background=True, percentile=95)[0, 0])
    assert not math.isfinite(ref)  # NaN in MONAI 1.6 (issue #9095), dropped from its mean
    assert M.hausdorff_distance(p, t, percentile=95) == math.inf


def test_hd95_pools_both_directions():
    # pred = 1 pixel, target = a 3x3 block around it: distances target->pred are 1, 1.41..;
    # the pooled percentile differs from the max of per-direction percentiles (MONAI's form)
    t = np.zeros((5, 5), bool)
    t[1:4, 1:4] = True
    p = np.zeros_like(t)
    p[2, 2] = True
    d_tp = [math.sqrt(2), 1, math.sqrt(2), 1, 1, math.sqrt(2), 1, math.sqrt(2)]  # 8 boundary pixels
    d_pt = [1.0]
    expected = float(np.percentile(d_tp + d_pt, 50))
    assert M.hausdorff_distance(p, t, percentile=50) == pytest.approx(expected)


# ----------------------------------------------------------------------------- GlaS object metrics

def glas_case():
    G = np.zeros((20, 24), np.int32)
    G[1:5, 1:5] = 1          # 16 px
    G[8:16, 2:10] = 2        # 64 px
    G[10:14, 15:23] = 3      # 32 px, missed entirely
    S = np.zeros_like(G)
    S[1:5, 1:4] = 7          # 12 px inside G1 (covers 75%) -> TP
    S[8:12, 2:10] = 4        # 32 px, exactly half of G2 -> TP under ">= 0.5"
    S[12:16, 2:6] = 5        # 16 px, quarter of G2 -> FP
    S[0:2, 20:24] = 9        # 8 px, overlaps nothing -> FP
    return S, G


def test_object_f1_hand_counted():
    S, G = glas_case()
    # TP = 2 (7, 4), FP = 2 (5, 9), FN = 1 (G3); P = 2/4, R = 2/3, F1 = 2PR/(P+R) = 4/7
    assert M.object_f1(S, G) == pytest.approx(4 / 7)
    # at overlap 0.6 only segment 7 counts: P = 1/4, R = 1/3 -> F1 = 2/7
    assert M.object_f1(S, G, overlap=0.6) == pytest.approx(2 / 7)
    # 0.25: segment 5 covers a quarter of G2 -> TP too, but G2 is found once: P = 3/4, R = 2/3
    assert M.object_f1(S, G, overlap=0.25) == pytest.approx(2 * 0.75 * (2 / 3) / (0.75 + 2 / 3))


def test_object_dice_hand_counted():
    S, G = glas_case()
    # GT side (areas 16, 64, 32; total 112): G1<->S7 Dice 24/28, G2<->S4 Dice 64/96, G3 unmatched 0
    gt_term = (16 * 24 / 28 + 64 * 64 / 96 + 0) / 112
    # S side (areas 12, 32, 16, 8; total 68): S7<->G1 24/28, S4<->G2 64/96, S5<->G2 32/80, S9 0
    s_term = (12 * 24 / 28 + 32 * 64 / 96 + 16 * 32 / 80 + 0) / 68
    assert M.object_dice(S, G) == pytest.approx(0.5 * (gt_term + s_term))


def test_object_hausdorff_hand_counted():
    G = np.zeros((10, 30), np.int32)
    G[2, 2] = 1
    G[2, 20] = 2
    S = np.zeros_like(G)
    S[2, 2:5] = 3            # overlaps G1: H = 2
    S[6, 20] = 4             # overlaps nothing: nearest GT object is G2 at distance 4
    # S side (areas 3, 1): (3*2 + 1*4)/4 ; G side (areas 1, 1): G1<->S3 = 2, G2 unmatched -> S4 = 4
    expected = 0.5 * ((3 * 2 + 1 * 4) / 4 + (2 + 4) / 2)
    assert M.object_hausdorff(S, G) == pytest.approx(expected)
    assert M.object_hausdorff(S, G, spacing=(1.0, 1.0)) == pytest.approx(expected)


def test_object_metrics_perfect_and_empty():
    S, G = glas_case()
    assert M.object_f1(G, G) == 1.0
    assert M.object_dice(G, G) == pytest.approx(1.0)
    assert M.object_hausdorff(G, G) == 0.0
    E = np.zeros_like(G)
    assert M.object_f1(E, E) == 1.0 and M.object_dice(E, E) == 1.0 and M.object_hausdorff(E, E) == 0.0
    assert M.object_f1(E, G) == 0.0 and M.object_dice(E, G) == 0.0 and M.object_hausdorff(E, G) == math.inf
    assert M.object_f1(G, E) == 0.0 and M.object_dice(G, E) == 0.0 and M.object_hausdorff(G, E) == math.inf
    # relabelling (ids need not be consecutive) changes nothing; no background pixel is fine
    assert M.object_dice(S * 3, G + 0) == pytest.approx(M.object_dice(S, G))
    full = np.ones((5, 5), np.int32)
    assert M.object_dice(full, full) == 1.0 and M.object_hausdorff(full, full) == 0.0


@pytest.mark.parametrize("shape", [(18, 20), (7, 8, 9)])
def test_object_metrics_match_brute_force(shape):
    rng = np.random.default_rng(len(shape))
    for _ in range(8):
        G = random_blobs(shape, int(rng.integers(1, 6)), rng)
        S = random_blobs(shape, int(rng.integers(1, 6)), rng)
        S[S > 0] += 10  # different ids on the two sides
        spacing = tuple(rng.uniform(0.5, 2.0, len(shape)))
        assert M.object_dice(S, G) == pytest.approx(brute_object_dice(S, G))
        assert M.object_hausdorff(S, G) == pytest.approx(brute_object_hausdorff(S, G))
        assert M.object_hausdorff(S, G, spacing=spacing) == pytest.approx(
            brute_object_hausdorff(S, G, spacing=spacing))
        for ov in (0.5, 0.3, 0.8):
            assert M.object_f1(S, G, overlap=ov) == pytest.approx(brute_object_f1(S, G, overlap=ov))


def test_object_metrics_accept_torch_and_bool():
    S, G = glas_case()
    assert M.object_dice(torch.from_numpy(S), torch.from_numpy(G)) == M.object_dice(S, G)
    assert M.object_f1(S > 0, G == 2) == pytest.approx(brute_object_f1((S > 0).astype(int), (G == 2).astype(int)))


# ----------------------------------------------------------------------------- error paths

PIXEL_FUNCS = [M.dice_score, M.iou_score, M.precision, M.recall, M.hausdorff_distance, M.confusion_counts]
OBJECT_FUNCS = [M.object_dice, M.object_f1, M.object_hausdorff]


@pytest.mark.parametrize("f", PIXEL_FUNCS)
def test_pixel_metric_errors(f):
    good = np.zeros((4, 4), np.uint8)
    nan = np.zeros((4, 4))
    nan[0, 0] = np.nan
    nonbin = np.zeros((4, 4))
    nonbin[0, 0] = 0.5
    for name, args in (("pred", (nan, good)), ("target", (good, nan))):
        with pytest.raises(ValueError, match=f"{name} contains NaN"):
            f(*args)
    with pytest.raises(ValueError, match="pred must be a binary mask"):
        f(nonbin, good)
    with pytest.raises(ValueError, match="target must be a binary mask"):
        f(good, 2 * np.ones((4, 4), int))
    with pytest.raises(ValueError, match="target must have the same shape as pred"):
        f(good, np.zeros((4, 5), np.uint8))
    with pytest.raises(TypeError, match="pred must be a NumPy array or torch.Tensor"):
        f([[0, 1]], good)
    with pytest.raises(TypeError, match="target must have a bool, integer or float dtype"):
        f(good, np.zeros((4, 4), complex))


def test_pixel_metric_scalar_and_hausdorff_ndim_errors():
    with pytest.raises(ValueError, match="pred must be an array with at least one dimension"):
        M.dice_score(np.array(1), np.array(1))
    with pytest.raises(ValueError, match="pred must be 2D or 3D"):
        M.hausdorff_distance(np.zeros(5), np.zeros(5))
    with pytest.raises(ValueError, match="target must be 2D or 3D"):
        M.hausdorff_distance(np.zeros((3, 3)), np.zeros((1, 3, 3, 3)))


def test_hausdorff_option_errors():
    a = np.zeros((4, 4), bool)
    for q in (-1, 100.5, float("nan")):
        with pytest.raises(ValueError, match="percentile"):
            M.hausdorff_distance(a, a, percentile=q)
    with pytest.raises(TypeError, match="percentile"):
        M.hausdorff_distance(a, a, percentile="95")
    with pytest.raises(ValueError, match="spacing must have one entry per spatial axis"):
        M.hausdorff_distance(a, a, spacing=(1.0, 1.0, 1.0))
    for sp in (0.0, (1.0, -2.0)):
        with pytest.raises(ValueError, match="spacing must be > 0"):
            M.hausdorff_distance(a, a, spacing=sp)
    with pytest.raises(TypeError, match="spacing"):
        M.hausdorff_distance(a, a, spacing="1")
    with pytest.raises(TypeError, match="spacing"):
        M.object_hausdorff(a.astype(int), a.astype(int), spacing=object())
    with pytest.raises(TypeError, match="surface must be a bool"):
        M.hausdorff_distance(a, a, surface=1)
    with pytest.raises(TypeError, match="surface must be a bool"):
        M.object_hausdorff(a.astype(int), a.astype(int), surface="yes")


@pytest.mark.parametrize("f", OBJECT_FUNCS)
def test_object_metric_errors(f):
    good = np.zeros((4, 4), np.int32)
    neg = good.copy()
    neg[0, 0] = -1
    with pytest.raises(ValueError, match="pred_labels must be non-negative"):
        f(neg, good)
    with pytest.raises(ValueError, match="gt_labels must be non-negative"):
        f(good, neg)
    with pytest.raises(ValueError, match="gt_labels must have the same shape as pred_labels"):
        f(good, np.zeros((4, 5), np.int32))
    with pytest.raises(TypeError, match="pred_labels must have an integer dtype"):
        f(good.astype(float), good)
    nan = good.astype(float)
    nan[1, 1] = np.nan
    with pytest.raises(ValueError, match="gt_labels contains NaN"):
        f(good, nan)
    with pytest.raises(ValueError, match="gt_labels must hold integer labels"):
        f(good, good + 0.5)
    with pytest.raises(ValueError, match="pred_labels must be 2D or 3D"):
        f(np.zeros(4, np.int32), np.zeros(4, np.int32))
    with pytest.raises(TypeError, match="gt_labels must be a NumPy array"):
        f(good, [[0]])


def test_object_f1_overlap_errors():
    g = np.zeros((4, 4), np.int32)
    for ov in (0.0, -0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="overlap"):
            M.object_f1(g, g, overlap=ov)
    with pytest.raises(TypeError, match="overlap"):
        M.object_f1(g, g, overlap="0.5")
