"""comp448.grading beyond float tensors: NumPy / int / tuple inputs and outputs, "raise the
reference's ValueError", the new input specs (switches, instance labels, images, displacement
fields, masks, seeded generators), invariant checks of random transforms decided in verify mode,
and references outside comp448 (torch functions) that must not index the whole torch package.

Oracles: functions written plainly here (NumPy flips, scatter unpooling, a loop over max-pool
windows), hand-made wrong versions whose failure we know in advance, and the references
comp448.augment / comp448.targets / comp448.nets / torch.nn.functional.
"""
import json
import pkgutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from comp448 import grading
from comp448.augment import elastic_deform
from comp448.grading import GradingError

FOLLOW = ("pair", "shapes", "dtypes", "labels_subset", "labels_follow_image")


def check(name, fn, reference, cases, **kw):
    grading.check_function(name, reference, cases, namespace={name: fn}, **kw)


def failure(name, fn, reference, cases, **kw) -> str:
    with pytest.raises(GradingError) as info:
        check(name, fn, reference, cases, **kw)
    return str(info.value)


def invariants_failure(fn, invariants, cases) -> str:
    with pytest.raises(GradingError) as info:
        grading.check_invariants("f", invariants, cases, namespace={"f": fn})
    return str(info.value)


def flip_pair(image, labels, axis):
    return np.ascontiguousarray(np.flip(image, axis + 1)), np.ascontiguousarray(np.flip(labels, axis))


FLIP_CASES = grading.cases(image=grading.image(2, 7, 9), labels=grading.instances(7, 9, n_objects=3),
                           axis=grading.each(0, 1))


# ----------------------------------------------------------------------------- input specs

def test_instances_exact_count_any_size_and_dtype():
    gen = torch.Generator().manual_seed(0)
    for (h, w), n in [((32, 32), 6), ((5, 4), 3), ((1, 1), 1), ((3, 3), 9), ((12, 7), 0), ((16, 16), 1)]:
        for touching in (0.0, 1.0):
            lab = grading.instances(h, w, n_objects=n, touching=touching, dtype="uint8").sample(gen)
            assert type(lab) is np.ndarray and lab.dtype == np.uint8 and lab.shape == (h, w)
            ids = set(np.unique(lab).tolist()) - {0}
            assert len(ids) == n and all(1 <= k <= 255 for k in ids)


def test_instances_touching_dial_and_determinism():
    def touching_pairs(lab):
        a, b = lab[:, :-1], lab[:, 1:]
        c, d = lab[:-1], lab[1:]
        pairs = {(min(x, y), max(x, y)) for u, v in ((a, b), (c, d))
                 for x, y in zip(u.ravel(), v.ravel()) if x and y and x != y}
        return len(pairs)
    spec_apart = grading.instances(40, 40, n_objects=5, touching=0.0)
    spec_touch = grading.instances(40, 40, n_objects=5, touching=1.0)
    apart = [touching_pairs(spec_apart.sample(torch.Generator().manual_seed(s))) for s in range(10)]
    touch = [touching_pairs(spec_touch.sample(torch.Generator().manual_seed(s))) for s in range(10)]
    assert sum(touch) >= 30 and sum(apart) <= 3
    a = spec_touch.sample(torch.Generator().manual_seed(3))
    assert np.array_equal(a, spec_touch.sample(torch.Generator().manual_seed(3)))
    assert not np.array_equal(a, spec_touch.sample(torch.Generator().manual_seed(4)))


def test_painted_image_has_one_level_per_object():
    c = grading.cases(image=grading.image(2, 20, 20, paint="labels"), labels=grading.instances(20, 20, n_objects=4))
    (case,) = c.generate("x")
    image, labels = case.args
    assert image.dtype == np.float32 and image.shape == (2, 20, 20)
    for ch in image:
        levels = [np.median(ch[labels == k]) for k in np.unique(labels)]
        assert levels[0] == pytest.approx(0.0, abs=0.02)                    # background
        assert np.min(np.diff(np.sort(levels))) > 0.2                       # objects far apart
        assert np.all(np.abs(ch - np.asarray(levels)[np.searchsorted(np.unique(labels), labels)]) <= 0.021)    # +-0.01 noise about each level
    with pytest.raises(ValueError, match="paint"):
        grading.cases(image=grading.image(1, 4, 4, paint="labels"), mask=grading.instances(4, 4, 1)).generate("x")


def test_other_specs():
    gen = torch.Generator().manual_seed(1)
    m = grading.binary_mask(6, 5, p=0.5, dtype="bool").sample(gen)
    assert m.dtype == bool and m.shape == (6, 5)
    assert grading.binary_mask(4, 4, p=1.0).sample(gen).min() == 1
    assert grading.binary_mask(4, 4, p=0.0).sample(gen).max() == 0
    u = grading.displacement(5, 7, scale=3.0).sample(gen)
    assert u.shape == (2, 5, 7) and u.dtype == np.float64 and 1.5 < u.std() < 4.5
    assert np.all(grading.displacement(3, 3, scale=0.0).sample(gen) == 0)
    r = grading.rng().sample(gen)
    assert isinstance(r, np.random.Generator)


def test_switches_are_max_pool_switches():
    idx = grading.switches(2, 3, 9, 7, kernel=2).sample(torch.Generator().manual_seed(2))
    assert idx.dtype == torch.int64 and idx.shape == (2, 3, 4, 3)
    for i in range(4):                                  # every switch lies in its own 2x2 window
        for j in range(3):
            r, q = idx[..., i, j] // 7, idx[..., i, j] % 7
            assert torch.all((r // 2 == i) & (q // 2 == j))


@pytest.mark.parametrize("make, match", [
    (lambda: grading.instances(4, 4, n_objects=17), "n_objects"),
    (lambda: grading.instances(0, 4, n_objects=0), "H"),
    (lambda: grading.instances(4, 4, n_objects=1, touching=2.0), "touching"),
    (lambda: grading.instances(4, 4, n_objects=1, dtype="float32"), "dtype"),
    (lambda: grading.image(1, 4, 4, dtype="int64"), "dtype"),
    (lambda: grading.image(1, 4, 4, paint=3), "paint"),
    (lambda: grading.switches(1, 1, 1, 4, kernel=2), "kernel"),
    (lambda: grading.displacement(3, 3, scale=-1.0), "scale"),
    (lambda: grading.binary_mask(3, 3, p=2.0), "p"),
])
def test_spec_errors_name_the_argument(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


# ----------------------------------------------------------------------------- ints, raising, NumPy, tuples

def _kernel(channels, kernel_size):
    if channels < 1 or kernel_size < 1:
        raise ValueError("channels and kernel_size must be >= 1")
    f = (kernel_size + 1) // 2
    c = f - 1 if kernel_size % 2 else f - 0.5
    r = 1 - (torch.arange(kernel_size, dtype=torch.float64) - c).abs() / f
    w = torch.zeros(channels, channels, kernel_size, kernel_size)
    w[range(channels), range(channels)] = (r[:, None] * r[None, :]).float()
    return w


KERNEL_CASES = grading.cases(channels=grading.each(1, 3), kernel_size=grading.each(0, 3, 4))


def test_cases_of_plain_values_and_raising_like_the_reference(capsys):
    check("bilinear_kernel", _kernel, "comp448.nets.bilinear_kernel", KERNEL_CASES)
    assert "on 6 inputs" in capsys.readouterr().out
    silent = lambda channels, kernel_size: _kernel(channels, max(kernel_size, 1))
    msg = failure("bilinear_kernel", silent, "comp448.nets.bilinear_kernel", KERNEL_CASES)
    assert "kernel_size=0" in msg and "reference raises ValueError" in msg and "raise ValueError" in msg
    def wrong_error(channels, kernel_size):
        if kernel_size < 1:
            raise TypeError("no")
        return _kernel(channels, kernel_size)
    msg = failure("bilinear_kernel", wrong_error, "comp448.nets.bilinear_kernel", KERNEL_CASES)
    assert "raised TypeError" in msg and "raises ValueError" in msg
    class MyError(ValueError):
        pass
    def subclass(channels, kernel_size):                # a ValueError subclass is a ValueError
        if kernel_size < 1:
            raise MyError("bad")
        return _kernel(channels, kernel_size)
    check("bilinear_kernel", subclass, "comp448.nets.bilinear_kernel", KERNEL_CASES)
    with pytest.raises(ValueError, match="tensor spec"):
        grading.cases(channels=1)


def _unet_size(input_size, depth=4):
    n = input_size
    for _ in range(depth):
        n -= 4
        if n <= 0 or n % 2:
            raise ValueError("odd or empty map before a pool")
        n //= 2
    n -= 4
    for _ in range(depth):
        n = 2 * n - 4 if n > 0 else n
    if n <= 0:
        raise ValueError("a map vanishes")
    return n


SIZE_CASES = grading.cases(input_size=grading.each(572, 570, 188, 60, 12), depth=grading.each(2, 4))


def test_int_outputs_exact_and_strictly_typed():
    check("unet_output_size", _unet_size, "comp448.nets.unet_output_size", SIZE_CASES)
    msg = failure("unet_output_size", lambda input_size, depth=4: np.int64(_unet_size(input_size, depth)),
                  "comp448.nets.unet_output_size", SIZE_CASES)
    assert "numpy.int64" in msg and "exactly a Python int" in msg
    msg = failure("unet_output_size", lambda input_size, depth=4: _unet_size(input_size, depth) + 1,
                  "comp448.nets.unet_output_size", SIZE_CASES)
    assert "returned 533, expected 532" in msg and "input_size=572, depth=2" in msg
    msg = failure("unet_output_size", lambda input_size, depth=4: float(_unet_size(input_size, depth)),
                  "comp448.nets.unet_output_size", SIZE_CASES)
    assert "returned float" in msg


def test_numpy_tuple_outputs_strict_types_dtypes_and_exact_labels():
    check("flip_pair", flip_pair, "comp448.augment.flip", FLIP_CASES)
    cases = [
        (lambda im, lab, axis: list(flip_pair(im, lab, axis)), "expected a tuple of 2"),
        (lambda im, lab, axis: flip_pair(im, lab, axis)[:1], "tuple of 1, expected a tuple of 2"),
        (lambda im, lab, axis: (torch.from_numpy(flip_pair(im, lab, axis)[0]), flip_pair(im, lab, axis)[1]),
         "exactly a numpy.ndarray"),
        (lambda im, lab, axis: (flip_pair(im, lab, axis)[0].astype(np.float64), flip_pair(im, lab, axis)[1]),
         "dtype float64 but the reference gives float32"),
        (lambda im, lab, axis: (flip_pair(im, lab, axis)[0], flip_pair(im, lab, axis)[1].astype(np.int32)),
         "item 1"),
        (lambda im, lab, axis: (flip_pair(im, lab, axis)[0], np.ma.masked_array(flip_pair(im, lab, axis)[1])),
         "MaskedArray"),
        (lambda im, lab, axis: (flip_pair(im, lab, axis)[0], flip_pair(im, lab, 1 - axis)[1]), "values differ"),
    ]
    for fn, words in cases:
        assert words in failure("flip_pair", fn, "comp448.augment.flip", FLIP_CASES), words
    def one_label_off(im, lab, axis):
        a, b = flip_pair(im, lab, axis)
        b = b.copy()
        b[0, 0] += 1
        return a, b
    msg = failure("flip_pair", one_label_off, "comp448.augment.flip", FLIP_CASES)
    assert "1 of 63 values differ (first at index (0, 0))" in msg and "exactly equal" in msg
    def image_off(im, lab, axis):
        a, b = flip_pair(im, lab, axis)
        return a + np.float32(1e-3), b
    assert "largest difference" in failure("flip_pair", image_off, "comp448.augment.flip", FLIP_CASES)


def test_numpy_inputs_changed_in_place_are_reported():
    def clobber(image, labels, axis):
        labels[:] = 0
        return flip_pair(image, labels, axis)
    assert "changed its input labels in place" in failure("flip_pair", clobber, "comp448.augment.flip", FLIP_CASES)


def _elastic_plain(image, labels, rng, sigma=10.0):
    from scipy import ndimage
    H, W = labels.shape
    coarse = rng.normal(0.0, sigma, size=(2, 3, 3))
    u = np.stack([ndimage.zoom(c, (H / 3, W / 3), order=3, mode="mirror", grid_mode=False) for c in coarse])
    coords = np.indices(labels.shape, dtype=float) + u
    im = np.stack([ndimage.map_coordinates(c, coords, order=3, mode="reflect") for c in image])
    return im.astype(image.dtype), ndimage.map_coordinates(labels, coords, order=0, mode="reflect")


def test_seeded_generator_reaches_student_and_reference_identically():
    cases = grading.cases(image=grading.image(1, 12, 12), labels=grading.instances(12, 12, n_objects=2),
                          rng=grading.rng(), sigma=grading.each(1.0, 4.0))
    check("elastic_deform", _elastic_plain, "comp448.augment.elastic_deform", cases)
    drifted = lambda image, labels, rng, sigma=10.0: (rng.normal(), _elastic_plain(image, labels, rng, sigma))[1]
    msg = failure("elastic_deform", drifted, "comp448.augment.elastic_deform", cases)
    assert "does not match" in msg and "seeded numpy.random.Generator" in msg


# ----------------------------------------------------------------------------- torch references

def test_torch_reference_indexes_only_that_function(monkeypatch):
    monkeypatch.setattr(pkgutil, "walk_packages", lambda *a, **k: pytest.fail("walked a package"))
    index = grading._index_for("torch.nn.functional.conv_transpose2d")
    assert index.module_names == [] and len(index.functions) == 1
    idx2 = grading._index_for("torch.nn.functional.max_unpool2d")
    assert idx2.fingerprints                                   # Python code: its bytecode is indexed too


def _unpool(x, indices, kernel_size, output_size):
    B, C, h, w = x.shape
    H, W = output_size
    return x.new_zeros(B, C, H * W).scatter(2, indices.reshape(B, C, h * w), x.reshape(B, C, h * w)).reshape(B, C, H, W)


UNPOOL = grading.cases(x=grading.logits(2, 3, 4, 3), indices=grading.switches(2, 3, 9, 7, kernel=2),
                       kernel_size=2, output_size=(9, 7))
NO_UNPOOL = ("torch.nn.functional.max_unpool2d", "torch.nn.MaxUnpool2d")


def test_torch_reference_honest_code_using_torch_passes_and_calls_are_caught():
    check("max_unpool2d", _unpool, "torch.nn.functional.max_unpool2d", UNPOOL, grad="x", forbid=NO_UNPOOL)
    msg = failure("max_unpool2d", F.max_unpool2d, "torch.nn.functional.max_unpool2d", UNPOOL)
    assert "is the reference torch.nn.functional.max_unpool2d" in msg
    calls = lambda x, indices, kernel_size, output_size: F.max_unpool2d(x, indices, kernel_size, output_size=output_size)
    assert "calls" in failure("max_unpool2d", calls, "torch.nn.functional.max_unpool2d", UNPOOL, forbid=NO_UNPOOL)


def _tconv(x, weight, stride=1, padding=0):
    B, _, H, W = x.shape
    _, O, k, _ = weight.shape
    full = (H - 1) * stride + k
    out = x.new_zeros(B, O, full, (W - 1) * stride + k)
    for u in range(k):
        for v in range(k):
            out[:, :, u:u + stride * (H - 1) + 1:stride, v:v + stride * (W - 1) + 1:stride] += \
                torch.einsum("bchw,co->bohw", x, weight[:, :, u, v])
    return out[:, :, padding:out.shape[2] - padding, padding:out.shape[3] - padding]


def test_builtin_torch_function_is_caught_by_the_profiler():
    cases = grading.cases(x=grading.logits(1, 2, 3, 3), weight=grading.logits(2, 2, 3, 3), stride=grading.each(1, 2))
    check("conv_transpose2d", _tconv, "torch.nn.functional.conv_transpose2d", cases, grad="x",
          forbid=("torch.nn.functional.conv_transpose2d",))
    via_module = lambda x, weight, stride=1, padding=0: torch.conv_transpose2d(x, weight, stride=stride, padding=padding)
    msg = failure("conv_transpose2d", via_module, "torch.nn.functional.conv_transpose2d", cases)
    assert "calls torch.nn.functional.conv_transpose2d" in msg or "is the reference" in msg
    other = lambda x, weight, stride=1, padding=0: _tconv(x, weight, stride, padding) + 0 * F.conv2d(
        torch.zeros(1, 1, 3, 3), torch.zeros(1, 1, 1, 1)).sum()
    msg = failure("conv_transpose2d", other, "torch.nn.functional.conv_transpose2d", cases,
                  forbid=("torch.nn.functional.conv2d",))
    assert "torch.nn.functional.conv2d (not allowed in this exercise)" in msg


def test_static_forbid_ignores_a_function_s_own_name_but_catches_bindings():
    sources = ["import torch.nn.functional as F\nfrom torch.nn.functional import max_unpool2d as mu\n",
               "def max_unpool2d(x, indices, kernel_size, output_size):\n    return helper(x)\n",
               "def helper(x):\n    return x.new_zeros(3).scatter(0, x, x)\n",
               "def conv_transpose2d(x, weight, stride=1, padding=0):\n    return x\n",
               "def sneaky(x):\n    return mu(x)\n",
               "alias = F.max_unpool2d\n", "lam = lambda x: F.max_unpool2d(x, 2)\n"]
    used = grading.find_reference_copies(sources, ["comp448.nets"])["__used__"]
    assert "max_unpool2d" not in used["max_unpool2d"] and "scatter" in used["max_unpool2d"]
    for name in ("sneaky", "alias", "lam"):
        assert "max_unpool2d" in used[name], name
    cell = ("grading.check_function('max_unpool2d', 'torch.nn.functional.max_unpool2d', grading.cases("
            "x=grading.logits(1, 1, 2, 2), indices=grading.switches(1, 1, 4, 4, kernel=2), kernel_size=2, "
            "output_size=(4, 4)), forbid=('torch.nn.functional.max_unpool2d',))\n")
    copies = grading.find_reference_copies(sources, ["comp448.nets"])
    ctx = grading.VerifyContext(records={}, seed="s", copies=copies)
    assert "did not run" in grading.verify_test_cell(cell, ctx).text     # not refused for its name
    ctx = grading.VerifyContext(records={}, seed="s", copies=copies)
    r = grading.verify_test_cell(cell.replace("'max_unpool2d', 'torch", "'alias', 'torch"), ctx)
    assert not r.passed and "not allowed" in r.text


# ----------------------------------------------------------------------------- record -> verify

def _record_and_verify(monkeypatch, tmp_path, namespace, source, seed="s3cret", copies=None):
    path = tmp_path / "record.jsonl"
    if path.exists():
        path.unlink()
    monkeypatch.setenv(grading.RECORD_ENV, str(path))
    monkeypatch.setenv(grading.SEED_ENV, seed)
    exec(source, {"grading": grading, **namespace})
    monkeypatch.delenv(grading.RECORD_ENV)
    lines = path.read_text().splitlines()
    ctx = grading.VerifyContext(records=grading.parse_records(lines), seed=seed,
                                copies=copies or {"__names__": {}, "__copied__": {}})
    return grading.verify_test_cell(source, ctx), lines


FLIP_CELL = ("grading.check_function('flip_pair', 'comp448.augment.flip', grading.cases("
             "image=grading.image(2, 6, 5, dtype='float64'), labels=grading.instances(6, 5, n_objects=2), "
             "axis=grading.each(0, 1)))\n"
             "grading.check_function('unet_output_size', 'comp448.nets.unet_output_size', grading.cases("
             "input_size=grading.each(572, 570, 12), depth=4))\n")


def test_record_then_verify_numpy_tuples_ints_and_raises(monkeypatch, tmp_path):
    ok = {"flip_pair": flip_pair, "unet_output_size": _unet_size}
    result, lines = _record_and_verify(monkeypatch, tmp_path, ok, FLIP_CELL)
    assert result.passed and "2 secret inputs match" in result.text and len(lines) == 2, result.text
    obs = json.loads(lines[0])["observations"][0]
    assert obs["kind"] == "tuple" and obs["items"][1]["kind"] == "ndarray"
    no_raise = {"flip_pair": flip_pair, "unet_output_size": lambda input_size, depth=4: 0}
    result, _ = _record_and_verify(monkeypatch, tmp_path, no_raise, FLIP_CELL)
    assert not result.passed and "returned 0, expected 388" in result.text
    def late(input_size, depth=4):
        return 388 if input_size == 572 else 4
    result, _ = _record_and_verify(monkeypatch, tmp_path, {"flip_pair": flip_pair, "unet_output_size": late}, FLIP_CELL)
    assert not result.passed and "reference raises ValueError" in result.text
    swapped = {"flip_pair": lambda im, lab, axis: flip_pair(im, lab, 1 - axis), "unet_output_size": _unet_size}
    result, _ = _record_and_verify(monkeypatch, tmp_path, swapped, FLIP_CELL)
    assert not result.passed and "does not match" in result.text


INVARIANT_CELL = ("grading.check_function('elastic', grading.Invariants(grading.JOINT_WARP_INVARIANTS), grading.cases("
                  "image=grading.image(2, 32, 32, paint='labels'), labels=grading.instances(32, 32, n_objects=4), "
                  "rng=grading.rng(), sigma=3.0, repeat=2))\n"
                  "grading.check_invariants('elastic', " + repr(FOLLOW) + ", grading.cases("
                  "image=grading.image(2, 32, 32, paint='labels'), labels=grading.instances(32, 32, n_objects=4), "
                  "rng=grading.rng(), sigma=6.0, repeat=4))\n")


def _unwarped_labels(image, labels, rng, sigma=10.0):
    return elastic_deform(image, labels, rng, sigma=sigma)[0], labels.copy()


def _blended_labels(image, labels, rng, sigma=10.0):
    from scipy import ndimage
    from comp448.augment import random_displacement
    u = random_displacement(labels.shape, rng, sigma=sigma)
    coords = np.indices(labels.shape, dtype=float) + u
    im = np.stack([ndimage.map_coordinates(c, coords, order=1, mode="reflect") for c in image])
    return im, ndimage.map_coordinates(labels, coords, order=1, mode="reflect")


def _relabelled(image, labels, rng, sigma=10.0):
    from skimage.measure import label
    im, lab = elastic_deform(image, labels, rng, sigma=sigma)
    return im, label(lab > 0).astype(labels.dtype)


@pytest.mark.parametrize("fn, words", [
    (_unwarped_labels, "labels do not follow the image"),
    (_blended_labels, "not in the input labels"),
    (_relabelled, ""),
    (lambda image, labels, rng, sigma=10.0: list(elastic_deform(image, labels, rng, sigma=sigma)), "tuple (image, labels)"),
    (lambda image, labels, rng, sigma=10.0: (elastic_deform(image, labels, rng, sigma=sigma)[0].astype(np.float64), labels),
     "dtype float64"),
    (lambda image, labels, rng, sigma=10.0: (image[:, ::2], labels), "shape"),
])
def test_invariants_in_direct_and_verify_mode(monkeypatch, tmp_path, fn, words):
    grading.check_invariants("elastic", grading.JOINT_WARP_INVARIANTS,
                             grading.cases(image=grading.image(1, 16, 16, paint="labels"),
                                           labels=grading.instances(16, 16, n_objects=2), rng=grading.rng(),
                                           sigma=1.0), namespace={"elastic": elastic_deform})
    honest, _ = _record_and_verify(monkeypatch, tmp_path, {"elastic": elastic_deform}, INVARIANT_CELL)
    assert honest.passed and "hold on 4 secret inputs" in honest.text, honest.text
    result, _ = _record_and_verify(monkeypatch, tmp_path, {"elastic": fn}, INVARIANT_CELL)
    assert not result.passed and words in result.text and not result.authoring_error, result.text


def test_invariants_need_a_painted_image_and_known_names():
    plain = grading.cases(image=grading.image(1, 16, 16), labels=grading.instances(16, 16, n_objects=3),
                          rng=grading.rng(), sigma=1.0)
    with pytest.raises(ValueError, match="painted"):
        grading.check_invariants("f", FOLLOW, plain, namespace={"f": elastic_deform})
    with pytest.raises(ValueError, match="invariants"):
        grading.check_invariants("f", ("pair", "nonsense"), plain, namespace={"f": elastic_deform})
    ctx = grading.VerifyContext(records={}, seed="x", copies={"__names__": {}})
    r = grading.verify_test_cell(INVARIANT_CELL, ctx)
    assert not r.passed and "did not run" in r.text


def test_invariants_refuse_the_reference_when_named():
    cases = grading.cases(image=grading.image(1, 16, 16, paint="labels"), labels=grading.instances(16, 16, n_objects=2),
                          rng=grading.rng(), sigma=1.0)
    with pytest.raises(GradingError, match="refused"):
        grading.check_invariants("f", FOLLOW, cases, reference="comp448.augment.elastic_deform",
                                 namespace={"f": elastic_deform})


def test_parse_records_new_kinds_strictly():
    good = grading.observe_value((np.arange(6, dtype=np.uint8).reshape(2, 3), 7, 2.5, True)).to_json()
    bad = [
        {"kind": "ndarray", "type": "numpy.ndarray", "dtype": "object", "shape": [1], "data": "AAAAAAAAAAA="},
        {"kind": "tuple", "items": [{"kind": "tuple", "items": []}]},
        {"kind": "tuple", "items": [{"kind": "scalar", "type": "int", "dtype": "int", "shape": []}] * 9},
        {"kind": "scalar", "type": "str", "dtype": "str", "shape": [], "data": "AAAAAAAAAAA="},
        {"kind": "error", "message": "x", "mro": ["a"] * 40},
    ]
    lines = [json.dumps({"key": "good", "observations": [good]})] + [
        json.dumps({"key": f"b{i}", "observations": [b]}) for i, b in enumerate(bad)]
    records = grading.parse_records(lines)
    assert all(records[f"b{i}"] == [None] for i in range(len(bad)))
    value = grading.observation_value(records["good"][0])
    assert value[0].dtype == np.uint8 and np.array_equal(value[0], np.arange(6).reshape(2, 3))
    assert value[1:] == (7, 2.5, True) and [type(v) for v in value[1:]] == [int, float, bool]
    assert grading.observe_value(np.int64(3)).kind == "other"
    assert grading.observe_value([1, 2]).kind == "other"
    assert grading.observe_value(np.zeros(2, dtype=np.complex64)).kind == "other"


def test_invariants_as_a_check_function_reference():
    cases = grading.cases(image=grading.image(1, 16, 16, paint="labels"), labels=grading.instances(16, 16, n_objects=2),
                          rng=grading.rng(), sigma=1.0)
    inv = grading.Invariants(FOLLOW, reference="comp448.augment.elastic_deform")
    check("f", _elastic_plain, inv, cases)
    assert "refused" in failure("f", elastic_deform, inv, cases)
    assert "labels do not follow" in failure("f", _unwarped_labels, grading.Invariants(FOLLOW), cases.__class__(
        cases.arguments[:3] + (("sigma", 6.0),), 4))
    with pytest.raises(ValueError, match="invariants"):
        grading.Invariants(("pair", "nope"))
    with pytest.raises(ValueError, match="grad"):
        check("f", _elastic_plain, inv, cases, grad="image")
