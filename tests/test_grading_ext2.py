"""comp448.grading: dict / list / number / array / arc-position / loss-function inputs, and
``Score`` (a quality bar on recorded predictions, decided in verify mode), as used by ps4 and ps5.
Also: comp448.widgets imports without comp448.losses / comp448.targets (ps5's grading sandbox).

Oracles: the references comp448.losses / comp448.targets, hand-written right and wrong versions
whose verdict we know in advance (plain "nearest" resizing, the opposite sign of delta, a missing
ValueError, a list popped in place), and Dice computed by hand on tiny masks.
"""
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from comp448 import grading
from comp448.grading import GradingError


def check(name, fn, reference, cases, **kw):
    grading.check_function(name, reference, cases, namespace={name: fn}, **kw)


def failure(name, fn, reference, cases, **kw) -> str:
    with pytest.raises(GradingError) as info:
        check(name, fn, reference, cases, **kw)
    return str(info.value)


def _record_and_verify(monkeypatch, tmp_path, namespace, source, seed="s3cret"):
    path = tmp_path / "record.jsonl"
    if path.exists():
        path.unlink()
    monkeypatch.setenv(grading.RECORD_ENV, str(path))
    monkeypatch.setenv(grading.SEED_ENV, seed)
    exec(source, {"grading": grading, **namespace})
    monkeypatch.delenv(grading.RECORD_ENV)
    lines = path.read_text().splitlines()
    ctx = grading.VerifyContext(records=grading.parse_records(lines), seed=seed,
                                copies={"__names__": {}, "__copied__": {}})
    return grading.verify_test_cell(source, ctx), lines


# ----------------------------------------------------------------------------- specs

def test_new_specs_draw_what_they_say_reproducibly():
    cases = grading.cases(d=grading.dict_of(a=grading.weights(), b=grading.number(2, 3), c=0.5),
                          s=grading.list_of(grading.logits(2, 1, 4, 4), grading.logits(2, 1, 2, 2)),
                          x=grading.array(7, lo=1, hi=5), l=grading.arc_positions(7, L=3.0),
                          f=grading.loss_fn("bce"), repeat=3)
    first, again = cases.generate("seed"), cases.generate("seed")
    for c1, c2 in zip(first, again):
        d, s, x, l, f = c1.args
        assert type(d) is dict and list(d) == ["a", "b", "c"] and type(d["a"]) is torch.Tensor and d["a"].shape == ()
        assert type(d["b"]) is float and 2 <= d["b"] < 3 and d["c"] == 0.5
        assert type(s) is list and [t.shape for t in s] == [(2, 1, 4, 4), (2, 1, 2, 2)]
        assert type(x) is np.ndarray and x.dtype == np.float64 and x.shape == (7,) and (1 <= x).all() and (x < 5).all()
        assert l[0] == 0 and np.all(np.diff(l) > 0) and l[-1] < 3.0 and l.shape == (7,)
        assert f is grading.LOSS_FNS["bce"]
        assert torch.equal(s[0], c2.args[1][0]) and np.array_equal(l, c2.args[3]) and d["b"] == c2.args[0]["b"]
    assert not np.array_equal(first[0].args[3], first[1].args[3])          # repeat draws new inputs
    assert not np.array_equal(first[0].args[3], grading.cases(l=grading.arc_positions(7, L=3.0)).generate("other")[0].args[0])


def test_loss_fns_are_the_formulas_they_name():
    z = torch.randn(2, 1, 5, 5, dtype=torch.float64)
    y = (torch.rand(2, 1, 5, 5) < 0.4).double()
    p = torch.sigmoid(z)
    torch.testing.assert_close(grading.LOSS_FNS["mse"](z, y), ((p - y) ** 2).mean())
    torch.testing.assert_close(grading.LOSS_FNS["bce"](z, y), F.binary_cross_entropy_with_logits(z, y))
    torch.testing.assert_close(grading.LOSS_FNS["soft_dice"](z, y), 1 - (2 * (p * y).sum() + 1) / (p.sum() + y.sum() + 1))


@pytest.mark.parametrize("make, error", [
    (lambda: grading.dict_of(a=object()), TypeError), (lambda: grading.list_of([1, 2]), TypeError),
    (lambda: grading.number(2, 1), ValueError), (lambda: grading.array(3, lo=1, hi=0), ValueError),
    (lambda: grading.arc_positions(0, L=1.0), ValueError), (lambda: grading.arc_positions(4, L=0.0), ValueError),
    (lambda: grading.loss_fn("l1"), ValueError), (lambda: grading.nuclei(0), ValueError),
    (lambda: grading.nuclei(2, 64, touching=2.0), ValueError), (lambda: grading.Score(at_least=1.5), ValueError),
    (lambda: grading.Score(metric="iou"), ValueError), (lambda: grading.array(3, dtype="int64"), ValueError)])
def test_bad_spec_arguments_raise(make, error):
    with pytest.raises(error):
        make()


def test_container_inputs_are_copied_and_in_place_changes_caught():
    cases = grading.cases(losses=grading.dict_of(a=grading.weights(), b=grading.weights()),
                          weights=grading.dict_of(a=1.0, b=0.5))

    def pops(losses, weights):
        losses.pop("b")
        return losses["a"] * weights["a"]
    assert "changed its input losses in place" in failure("m", pops, "comp448.losses.multitask_loss", cases)

    def scales(losses, weights):
        losses["a"].mul_(2)
        return losses["a"] + 0.5 * losses["b"]
    assert "in place" in failure("m", scales, "comp448.losses.multitask_loss", cases)


# ----------------------------------------------------------------------------- ps4 / ps5 functions

MT_CASES = grading.cases(losses=grading.dict_of(seg=grading.weights(), inner=grading.weights(dtype="float64")),
                         weights=grading.dict_of(seg=grading.number(0, 2), inner=0.0))
MT_BAD = grading.cases(losses=grading.dict_of(seg=grading.weights(), inner=grading.weights()),
                       weights=grading.each({"seg": 1.0}, {"seg": 1.0, "inner": 1.0, "contour": 1.0}))


def good_multitask(losses, weights):
    if set(losses) != set(weights) or not losses:
        raise ValueError("losses and weights must name the same tasks")
    return sum(weights[k] * losses[k] for k in losses)


def test_multitask_dicts_values_and_raises():
    check("multitask_loss", good_multitask, "comp448.losses.multitask_loss", MT_CASES)
    check("multitask_loss", good_multitask, "comp448.losses.multitask_loss", MT_BAD)
    silent = lambda losses, weights: sum(weights.get(k, 0.0) * losses[k] for k in losses)
    assert "reference raises ValueError" in failure("multitask_loss", silent, "comp448.losses.multitask_loss", MT_BAD)
    mean = lambda losses, weights: sum(weights[k] * losses[k] for k in losses) / len(losses)
    assert "does not match" in failure("multitask_loss", mean, "comp448.losses.multitask_loss", MT_CASES)


DS_CASES = grading.cases(
    outputs=grading.list_of(grading.logits(2, 1, 4, 8, 8), grading.logits(2, 1, 2, 4, 4), grading.logits(2, 1, 1, 2, 2)),
    target=grading.mask(2, 1, 4, 8, 8), loss_fn=grading.loss_fn("mse"),
    weights=grading.each(None, (1.0, 0.5, 0.25), (1.0, 0.5)))


def good_ds(outputs, target, loss_fn, weights=None, mode="nearest-exact"):
    weights = [1.0] * len(outputs) if weights is None else weights
    if len(weights) != len(outputs):
        raise ValueError("one weight per output")
    total = 0.0
    for out, w in zip(outputs, weights):
        t = target if out.shape[2:] == target.shape[2:] else F.interpolate(target, size=out.shape[2:], mode=mode)
        total = total + w * loss_fn(out, t)
    return total


def test_deep_supervision_list_and_callable_inputs():
    check("deep_supervision_loss", good_ds, "comp448.losses.deep_supervision_loss", DS_CASES)
    for name in ("bce", "soft_dice"):
        check("deep_supervision_loss", good_ds, "comp448.losses.deep_supervision_loss", grading.cases(
            outputs=grading.list_of(grading.logits(2, 1, 8, 8), grading.logits(2, 1, 4, 4)),
            target=grading.mask(2, 1, 8, 8), loss_fn=grading.loss_fn(name)))
    nearest = lambda outputs, target, loss_fn, weights=None: good_ds(outputs, target, loss_fn, weights, mode="nearest")
    assert "does not match" in failure("deep_supervision_loss", nearest, "comp448.losses.deep_supervision_loss", DS_CASES)
    main_only = lambda outputs, target, loss_fn, weights=None: good_ds(outputs[:1], target, loss_fn, None)
    assert "deep_supervision_loss" in failure("deep_supervision_loss", main_only,
                                              "comp448.losses.deep_supervision_loss", DS_CASES)


FOURIER = grading.cases(xi=grading.array(15, lo=1.0, hi=6.0), l=grading.arc_positions(15, L=12.5), L=12.5,
                        n_harmonics=grading.each(1, 7), repeat=2)


def fourier(xi, l, L, n_harmonics, sign=1.0):
    n = np.arange(1, n_harmonics + 1)
    delta = sign * (np.roll(xi, 1) - xi)
    theta = 2 * np.pi * n[:, None] * l[None] / L
    return (np.sin(theta) @ delta) / (np.pi * n), -(np.cos(theta) @ delta) / (np.pi * n)


def test_fourier_closed_form_sign_of_delta_decides():
    check("fourier_coefficients", fourier, "comp448.targets.fourier_coefficients", FOURIER)
    flipped = lambda xi, l, L, n_harmonics: fourier(xi, l, L, n_harmonics, sign=-1.0)
    assert "does not match" in failure("fourier_coefficients", flipped, "comp448.targets.fourier_coefficients", FOURIER)


# ----------------------------------------------------------------------------- Score

def test_dice_per_image_by_hand():
    pred = torch.tensor([[[1, 1, 0, 0]], [[0, 0, 0, 0]], [[1, 0, 0, 0]]], dtype=torch.bool)
    truth = torch.tensor([[[1, 0, 1, 0]], [[0, 0, 0, 0]], [[0, 0, 0, 0]]], dtype=torch.bool)
    torch.testing.assert_close(grading._dice_per_image(pred, truth), torch.tensor([0.5, 1.0, 0.0], dtype=torch.float64))


def test_nuclei_images_and_their_truth():
    (images,) = grading.cases(images=grading.nuclei(3, 32, n_objects=5)).generate("k")[0].args
    assert type(images) is torch.Tensor and images.shape == (3, 1, 32, 32) and images.dtype == torch.float32
    truth = images._comp448_truth
    assert truth.dtype == torch.bool and truth.shape == images.shape and 0.02 < truth.float().mean() < 0.6
    fresh = grading._fresh(images)                       # what the student's function gets
    assert not hasattr(fresh, "_comp448_truth") and torch.equal(fresh, images)


SCORE_CELL = ("grading.check_function('segment', grading.Score(at_least=0.8), "
              "grading.cases(images=grading.nuclei(4, 32, n_objects=5), repeat=2))\n")



def test_score_direct_mode():
    cases = grading.cases(images=grading.nuclei(4, 32, n_objects=5))
    perfect = {}

    def oracle_seg(images):                                  # direct mode passes a copy: rebuild the truth
        return perfect["truth"].float()
    perfect["truth"] = cases.generate(grading.PUBLIC_SEED)[0].args[0]._comp448_truth
    check("segment", oracle_seg, grading.Score(at_least=0.99), cases)
    empty = lambda images: torch.zeros_like(images)
    assert "mean Dice of 0.000" in failure("segment", empty, grading.Score(at_least=0.5), cases)
    wrong_shape = lambda images: torch.zeros(4, 32, 32)
    assert "shape" in failure("segment", wrong_shape, grading.Score(), cases)
    numpy_out = lambda images: images.numpy()
    assert "exactly a torch.Tensor" in failure("segment", numpy_out, grading.Score(), cases)
    nan = lambda images: images * float("nan")
    assert "NaN" in failure("segment", nan, grading.Score(), cases)
    with pytest.raises(ValueError):
        grading.check_function("segment", grading.Score(), cases, grad="images", namespace={"segment": empty})


def test_score_record_then_verify(monkeypatch, tmp_path):
    seed = "s3cret"
    truth = {}
    for case in grading.cases(images=grading.nuclei(4, 32, n_objects=5), repeat=2).generate(seed):
        truth[case.index] = case.args[0]._comp448_truth
    calls = []

    def perfect(images):                                 # knows the secret truth: must pass
        calls.append(1)
        return truth[len(calls) - 1].float() * 0.9
    result, lines = _record_and_verify(monkeypatch, tmp_path, {"segment": perfect}, SCORE_CELL, seed)
    assert result.passed and "mean Dice 1.000 on 8 secret images" in result.text, result.text
    obs = json.loads(lines[0])["observations"]
    assert len(obs) == 2 and obs[0]["kind"] == "tensor" and obs[0]["shape"] == [4, 1, 32, 32]
    half = lambda images: torch.full_like(images, 0.49)   # below 0.5 everywhere: Dice 0
    result, _ = _record_and_verify(monkeypatch, tmp_path, {"segment": half}, SCORE_CELL, seed)
    assert not result.passed and "mean Dice of 0.000 on 8 images" in result.text and "at least 0.8" in result.text
    result, _ = _record_and_verify(monkeypatch, tmp_path, {}, SCORE_CELL, seed)
    assert not result.passed and "segment is not defined" in result.text
    ctx = grading.VerifyContext(records={}, seed=seed, copies={"__names__": {}})
    r = grading.verify_test_cell(SCORE_CELL, ctx)
    assert not r.passed and "did not run" in r.text and not r.authoring_error


def test_score_verdict_ignores_what_the_kernel_printed(monkeypatch, tmp_path):
    """A function that prints success and returns garbage: verify decides from the numbers alone."""
    def liar(images):
        print("✓ segment: mean Dice 1.000")
        return torch.zeros_like(images)
    result, _ = _record_and_verify(monkeypatch, tmp_path, {"segment": liar}, SCORE_CELL)
    assert not result.passed


# ----------------------------------------------------------------------------- comp448.widgets in the sandbox

@pytest.mark.slow
def test_widgets_builds_without_losses_and_targets():
    code = ("import sys\n"
            "sys.modules['comp448.losses'] = None; sys.modules['comp448.targets'] = None\n"
            "from comp448.widgets import LossWeightingVisualizer, example_data\n"
            "import numpy as np\n"
            "mine = lambda labels, w0, sigma, class_weights='none': {'class_weight': np.ones(labels.shape, np.float32),"
            " 'weight': np.ones(labels.shape, np.float32)}\n"
            "viz = LossWeightingVisualizer(data=example_data(size=32, n_objects=3), weight_map_fn=mine)\n"
            "viz.render('weights')\n"
            "try:\n"
            "    viz.render('focal')\n"
            "except ImportError:\n"
            "    print('focal needs comp448.losses')\n"
            "print('built')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={"MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-1] == "built" and "focal needs comp448.losses" in out.stdout


# ----------------------------------------------------------------------------- dict outputs

def panel(gamma, n=5, eps=0.1):
    p = np.linspace(eps, 1 - eps, n)
    return {"p": p, "bce1": -np.log(p), "focal1": -(1 - p) ** gamma * np.log(p),
            "bce0": -np.log1p(-p), "focal0": -p ** gamma * np.log1p(-p)}


FOCAL_CASES = grading.cases(gamma=grading.each(0.0, 2.0), n=5, eps=0.1)


def test_dict_outputs_direct():
    check("focal_curves", panel, "comp448.widgets.focal_curves", FOCAL_CASES)
    reordered = lambda gamma, n=5, eps=0.1: dict(reversed(list(panel(gamma, n, eps).items())))
    check("focal_curves", reordered, "comp448.widgets.focal_curves", FOCAL_CASES)     # order of keys is free
    missing = lambda gamma, n=5, eps=0.1: {k: v for k, v in panel(gamma, n, eps).items() if k != "p"}
    assert "missing ['p']" in failure("focal_curves", missing, "comp448.widgets.focal_curves", FOCAL_CASES)
    extra = lambda gamma, n=5, eps=0.1: {**panel(gamma, n, eps), "x": 1}
    assert "unexpected ['x']" in failure("focal_curves", extra, "comp448.widgets.focal_curves", FOCAL_CASES)
    def swapped(gamma, n=5, eps=0.1):
        d = panel(gamma, n, eps)
        d["focal1"], d["focal0"] = d["focal0"], d["focal1"]
        return d
    msg = failure("focal_curves", swapped, "comp448.widgets.focal_curves", FOCAL_CASES)
    assert "['focal1'] of what focal_curves" in msg and "does not match" in msg
    as_list = lambda gamma, n=5, eps=0.1: list(panel(gamma, n, eps).values())
    assert "expected a dict with keys" in failure("focal_curves", as_list, "comp448.widgets.focal_curves", FOCAL_CASES)
    f32 = lambda gamma, n=5, eps=0.1: {k: v.astype(np.float32) for k, v in panel(gamma, n, eps).items()}
    assert "dtype float32" in failure("focal_curves", f32, "comp448.widgets.focal_curves", FOCAL_CASES)


DICT_CELL = "grading.check_function('focal_curves', 'comp448.widgets.focal_curves', grading.cases(gamma=grading.each(0.0, 2.0), n=5, eps=0.1))\n"


def test_dict_outputs_record_then_verify(monkeypatch, tmp_path):
    result, lines = _record_and_verify(monkeypatch, tmp_path, {"focal_curves": panel}, DICT_CELL)
    assert result.passed and "2 secret inputs match" in result.text, result.text
    obs = json.loads(lines[0])["observations"][0]
    assert obs["kind"] == "dict" and json.loads(obs["message"]) == ["p", "bce1", "focal1", "bce0", "focal0"]
    assert grading.Observation.from_json(obs).items[0].kind == "ndarray"
    half = lambda gamma, n=5, eps=0.1: {**panel(gamma, n, eps), "focal1": panel(gamma, n, eps)["focal1"] / 2}
    result, _ = _record_and_verify(monkeypatch, tmp_path, {"focal_curves": half}, DICT_CELL)
    assert not result.passed and "['focal1']" in result.text


@pytest.mark.parametrize("bad", [
    {"kind": "dict", "message": '["a", "a"]', "items": [{"kind": "scalar", "type": "int", "dtype": "int", "data": "AAAAAAAAAAA="}] * 2},
    {"kind": "dict", "message": '["a"]', "items": []},
    {"kind": "dict", "message": "not json", "items": []},
    {"kind": "dict", "message": "[1]", "items": [{"kind": "missing"}]},
    {"kind": "dict", "message": '["a"]', "items": [{"kind": "dict", "message": "[]", "items": []}]}])
def test_malformed_dict_records_are_rejected(bad):
    with pytest.raises(ValueError):
        grading.Observation.from_json(bad)
