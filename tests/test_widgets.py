"""comp448.widgets: the loss-weighting visualizer's pure panel functions against plain NumPy oracles,
the static/interactive switch, and the slider -> figure wiring (without a browser; the browser test
is tests/test_browser.py)."""
from __future__ import annotations

import numpy as np
import pytest

from comp448 import widgets as W

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def data():
    return W.example_data(size=64, n_objects=6, touching=0.6, seed=1)


@pytest.fixture(scope="module")
def viz(data):
    return W.LossWeightingVisualizer(data, n_stages=3)


# ----------------------------------------------------------------------------- data

def test_separate_touching_hand_case():
    labels = np.array([[0, 1, 1, 2, 2, 0],
                       [0, 1, 1, 2, 2, 0],
                       [0, 0, 0, 0, 0, 3]], np.int32)
    expect = np.array([[0, 1, 0, 0, 2, 0],
                       [0, 1, 0, 0, 2, 0],
                       [0, 0, 0, 0, 0, 3]], np.int32)
    out = W.separate_touching(labels)
    np.testing.assert_array_equal(out, expect)
    assert out.dtype == labels.dtype


def test_separate_touching_leaves_no_two_objects_4_adjacent(data):
    lab = data["labels"]
    for a, b in ((lab[1:], lab[:-1]), (lab[:, 1:], lab[:, :-1])):
        assert not np.any((a > 0) & (b > 0) & (a != b))
    assert set(np.unique(lab)) - {0}, "objects must survive the separation"
    assert data["mask"].dtype == np.float32 and set(np.unique(data["mask"])) <= {0.0, 1.0}
    assert data["image"].shape == lab.shape == (64, 64)


def test_separate_touching_rejects_bad_labels():
    with pytest.raises(TypeError, match="labels"):
        W.separate_touching(np.zeros((4, 4), np.float32))
    with pytest.raises(TypeError, match="labels"):
        W.separate_touching(np.zeros((2, 4, 4), np.int32))


# ----------------------------------------------------------------------------- weights (slide 13)

def _border_oracle(labels, w0, sigma):
    """w0 exp(-(d1+d2)^2 / 2 sigma^2) on background pixels, distances by brute force over object pixels."""
    ids = [k for k in np.unique(labels) if k > 0]
    H, Wd = labels.shape
    yy, xx = np.mgrid[:H, :Wd]
    d = np.stack([np.sqrt((yy[..., None] - np.argwhere(labels == k)[:, 0]) ** 2 +
                          (xx[..., None] - np.argwhere(labels == k)[:, 1]) ** 2).min(-1) for k in ids])
    d.sort(0)
    term = w0 * np.exp(-(d[0] + d[1]) ** 2 / (2 * sigma ** 2))
    return np.where(labels == 0, term, 0.0)


def test_weight_map_matches_brute_force_and_class_frequencies():
    labels = np.zeros((12, 14), np.int32)
    labels[2:6, 2:5] = 1
    labels[3:7, 7:10] = 2
    labels[9:11, 3:12] = 3
    panel = W.weight_map(labels, w0=10.0, sigma=3.0, class_weights="1/frequency")
    n_fg, n = (labels > 0).sum(), labels.size
    cw = np.where(labels > 0, 1.0, n_fg / (n - n_fg))              # rarer class (foreground) at 1
    np.testing.assert_allclose(panel["class_weight"], cw, rtol=1e-6)
    np.testing.assert_allclose(panel["weight"], cw + _border_oracle(labels, 10.0, 3.0), rtol=1e-5, atol=1e-5)
    none = W.weight_map(labels, w0=0.0, sigma=3.0, class_weights="none")
    np.testing.assert_array_equal(none["weight"], np.ones_like(none["weight"]))
    bal = W.weight_map(labels, w0=0.0, sigma=3.0, class_weights="balanced")
    assert bal["weight"].mean() == pytest.approx(1.0, rel=1e-6)
    assert bal["weight"][labels > 0].sum() == pytest.approx(bal["weight"][labels == 0].sum(), rel=1e-5)


def test_weight_map_errors(data):
    with pytest.raises(ValueError, match="class_weights"):
        W.weight_map(data["labels"], 10.0, 5.0, "inverse")
    with pytest.raises(ValueError, match="sigma"):
        W.weight_map(data["labels"], 10.0, 0.0)
    with pytest.raises(ValueError, match="w0"):
        W.weight_map(data["labels"], -1.0, 5.0)


# ----------------------------------------------------------------------------- focal (slide 14)

@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0, 5.0])
def test_focal_curves_match_the_slide_formula(gamma):
    c = W.focal_curves(gamma, n=101)
    p = c["p"]
    assert p[0] == pytest.approx(1e-3) and p[-1] == pytest.approx(1 - 1e-3)
    np.testing.assert_allclose(c["bce1"], -np.log(p), rtol=1e-9)
    np.testing.assert_allclose(c["bce0"], -np.log(1 - p), rtol=1e-9)
    np.testing.assert_allclose(c["focal1"], -(1 - p) ** gamma * np.log(p), rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(c["focal0"], -p ** gamma * np.log(1 - p), rtol=1e-9, atol=1e-15)
    assert np.all(c["focal1"] <= c["bce1"] + 1e-12)


def test_focal_curves_errors():
    with pytest.raises(ValueError, match="gamma"):
        W.focal_curves(-0.5)


# ----------------------------------------------------------------------------- Tversky (slide 16)

def test_tversky_sweep_matches_counts(viz, data):
    prob, mask = viz.prediction, data["mask"]
    t = np.array([0.2, 0.5, 0.8])
    s = W.tversky_sweep(prob, mask, 0.3, 0.7, thresholds=t)
    for i, ti in enumerate(t):
        hard = prob >= ti
        y = mask > 0.5
        tp, fp, fn = (hard & y).sum(), (hard & ~y).sum(), (~hard & y).sum()
        assert s["fp"][i] == fp and s["fn"][i] == fn
        assert s["loss"][i] == pytest.approx(1 - tp / (tp + 0.3 * fp + 0.7 * fn), abs=1e-6)
        assert s["dice"][i] == pytest.approx(1 - 2 * tp / (2 * tp + fp + fn), abs=1e-6)
    assert s["best_t"] == t[np.argmin(s["loss"])]


def test_tversky_fn_penalty_lowers_the_best_threshold(viz, data):
    fn_averse = W.tversky_sweep(viz.prediction, data["mask"], 0.1, 0.9)
    fp_averse = W.tversky_sweep(viz.prediction, data["mask"], 0.9, 0.1)
    assert fn_averse["best_t"] < fp_averse["best_t"]


def test_tversky_sweep_errors(viz, data):
    with pytest.raises(ValueError, match="alpha"):
        W.tversky_sweep(viz.prediction, data["mask"], -0.1, 0.5)
    with pytest.raises(ValueError, match="alpha and beta"):
        W.tversky_sweep(viz.prediction, data["mask"], 0.0, 0.0)


# ----------------------------------------------------------------------------- AttentionBoost (slide 17)

def test_boost_stages_follow_the_slide_update(viz, data):
    s = viz.boost(False)
    y = data["mask"] > 0.5
    assert len(s["probs"]) == 3 and len(s["weights"]) == 4 and len(s["dice"]) == 3
    np.testing.assert_array_equal(s["weights"][0], 1.0)
    for n, p in enumerate(s["probs"]):
        correct = (p >= 0.5) == y
        beta = np.where(correct, 1 - np.abs(p - 0.5), 1 + np.abs(p - 0.5))     # slide 17, plainly
        np.testing.assert_allclose(s["weights"][n + 1], beta * s["weights"][n], rtol=1e-12)
    assert s["dice"][0] > 0.8, "stage 1 must be a real prediction of the nuclei"
    hard1 = s["probs"][0] >= 0.5
    assert s["dice"][0] == pytest.approx(2 * (hard1 & y).sum() / (hard1.sum() + y.sum()))


def test_boost_stages_normalised_keep_total_weight(viz):
    s = viz.boost(True)
    for c in s["weights"]:
        assert c.sum() == pytest.approx(s["weights"][0].sum(), rel=1e-9)


def test_stage_fit_lowers_the_weighted_loss(data):
    import torch
    x = torch.as_tensor(W._pixel_features(data["image"])).reshape(6, -1)
    y = torch.as_tensor(data["mask"].astype(np.float64)).reshape(-1)
    c = torch.rand(y.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64) + 0.5
    z = W._fit_stage(x, y, c, iters=30)
    def wbce(z):
        return float((c * torch.nn.functional.binary_cross_entropy_with_logits(z, y, reduction="none")).sum() / c.sum())
    assert wbce(z) < 0.5 * wbce(torch.zeros_like(y))                    # log 2 at zero weights


def test_boost_stages_errors(data):
    with pytest.raises(ValueError, match="n_stages"):
        W.boost_stages(data["image"], data["mask"], n_stages=0)


# ----------------------------------------------------------------------------- frontend switch

@pytest.mark.parametrize("flag", W.STATIC_ENV_FLAGS)
def test_env_flags_force_static(monkeypatch, flag):
    for f in W.STATIC_ENV_FLAGS:
        monkeypatch.delenv(f, raising=False)
    monkeypatch.setenv(flag, "1")
    assert W.has_frontend() is False


def test_no_kernel_means_no_frontend(monkeypatch):
    for f in W.STATIC_ENV_FLAGS:
        monkeypatch.delenv(f, raising=False)
    assert W.has_frontend() is False                 # pytest is no IPython kernel


def test_missing_ipywidgets_means_no_frontend(monkeypatch):
    import sys
    for f in W.STATIC_ENV_FLAGS:
        monkeypatch.delenv(f, raising=False)
    monkeypatch.setitem(sys.modules, "ipywidgets", None)      # import fails
    assert W.has_frontend() is False


# ----------------------------------------------------------------------------- builder

def test_static_draws_every_section(viz):
    pngs = viz.static()
    assert len(pngs) == len(W.SECTIONS) and all(p.startswith(PNG) for p in pngs)
    assert set(viz.last_png) == set(W.SECTIONS)
    viz.show("focal", interactive=False)


@pytest.mark.parametrize("section,a,b", [
    ("weights", dict(w0=10.0), dict(w0=25.0)),
    ("weights", dict(sigma=3.0), dict(sigma=8.0)),
    ("weights", dict(class_weights="1/frequency"), dict(class_weights="none")),
    ("focal", dict(gamma=0.0), dict(gamma=3.0)),
    ("tversky", dict(alpha=0.5, beta=0.5), dict(alpha=0.2, beta=0.8)),
    ("boost", dict(stage=1), dict(stage=3)),
])
def test_figure_depends_on_the_slider(viz, section, a, b):
    assert viz.render(section, **b) != viz.render(section, **a)


def test_same_values_draw_the_same_image(viz):
    assert viz.render("tversky", alpha=0.3, beta=0.7) == viz.render("tversky", alpha=0.3, beta=0.7)


def test_builder_errors(viz, data):
    with pytest.raises(ValueError, match="section"):
        viz.render("dice")
    with pytest.raises(ValueError, match="unknown slider"):
        viz.render("focal", alpha=0.3)
    with pytest.raises(ValueError, match="stage"):
        viz.render("boost", stage=4)
    with pytest.raises(ValueError, match="sections"):
        viz.show([], interactive=False)
    with pytest.raises(ValueError, match="missing 'mask'"):
        W.LossWeightingVisualizer({"image": data["image"], "labels": data["labels"]})
    with pytest.raises(ValueError, match="n_stages"):
        W.LossWeightingVisualizer(data, n_stages=0)


def test_students_functions_replace_the_reference(data):
    calls = []

    def my_focal_curves(gamma, n=201, eps=1e-3):
        calls.append(gamma)
        out = W.focal_curves(gamma, n, eps)
        out["focal1"] = out["focal1"] * 0 + 1.0       # a (wrong) student curve shows up in the plot
        return out
    ref = W.LossWeightingVisualizer(data, n_stages=1)
    mine = W.LossWeightingVisualizer(data, n_stages=1, focal_fn=my_focal_curves)
    assert mine.render("focal", gamma=1.0) != ref.render("focal", gamma=1.0)
    assert calls == [1.0]


def test_widget_sliders_redraw(viz):
    pytest.importorskip("ipywidgets")
    ui = viz.widget(["weights", "boost"])
    assert len(ui.children) == 2
    before = viz.last_png["weights"]
    viz.controls["weights"]["w0"].value = 20.0
    assert viz.last_png["weights"] != before
    before = viz.last_png["boost"]
    viz.controls["boost"]["stage"].value = 2
    assert viz.last_png["boost"] != before
    viz.controls["weights"]["w0"].value = 10.0
