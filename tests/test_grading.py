"""comp448.grading: input specs, strict comparison, plain-words messages, refusing the reference,
record -> verify round trip, static detection of copied reference code.

Oracles: BCE written plainly here (softplus(z) - y z), hand-made wrong implementations whose
failure we know in advance, and the reference comp448.losses for the cheats that use it.
"""
import functools
import importlib
import importlib.util
import inspect
import json
import math
import sys
import textwrap
import types

import pytest
import torch
import torch.nn.functional as F

from comp448 import grading
from comp448.grading import GradingError

REF = "comp448.losses.bce_loss"
CASES = grading.cases(logits=grading.logits(2, 1, 4, 4), target=grading.mask(2, 1, 4, 4),
                      reduction=grading.each("mean", "sum", "none"))


def plain_bce(logits, target, reduction="mean"):
    loss = F.softplus(logits) - target * logits
    return {"mean": loss.mean, "sum": loss.sum, "none": lambda: loss}[reduction]()


def check(fn, cases=CASES, reference=REF, **kw):
    grading.check_function("fn", reference, cases, namespace={"fn": fn}, **kw)


def failure(fn, **kw) -> str:
    with pytest.raises(GradingError) as info:
        check(fn, **kw)
    return str(info.value)


# ----------------------------------------------------------------------------- input specs

def test_specs_shapes_dtypes_and_determinism():
    c = grading.cases(logits=grading.logits(2, 1, 3, 3, dtype="float64"), target=grading.mask(2, 1, 3, 3),
                      w=grading.weights(1, 1, 3, 3), reduction=grading.each("mean", "sum"), repeat=2)
    a, b = c.generate("seed"), c.generate("seed")
    assert len(a) == 4 and a[0].names == ("logits", "target", "w")
    assert a[0].args[0].dtype == torch.float64 and a[0].args[1].dtype == torch.float32
    assert [x.kwargs["reduction"] for x in a] == ["mean", "sum", "mean", "sum"]
    for x, y in zip(a, b):
        assert all(torch.equal(u, v) for u, v in zip(x.args, y.args))
    other = c.generate("another seed")
    assert not torch.equal(a[0].args[0], other[0].args[0])          # secret seeds change the inputs
    assert not torch.equal(a[0].args[0], a[2].args[0])              # repeats differ


def test_specs_edge_cases():
    gen = torch.Generator().manual_seed(0)
    m = grading.mask(3, 1, 4, 4, empty=(0,), full=(2,)).sample(gen)
    assert m[0].sum() == 0 and m[2].min() == 1 and set(m.unique().tolist()) <= {0.0, 1.0}
    oh = grading.one_hot(2, 4, 5, 5, absent=(1, 3)).sample(gen)
    assert oh.shape == (2, 4, 5, 5) and torch.all(oh.sum(1) == 1) and oh[:, [1, 3]].sum() == 0
    lab = grading.labels(2, 6, 6, num_classes=3, absent=(0,)).sample(gen)
    assert lab.dtype == torch.int64 and lab.min() >= 1 and lab.max() <= 2
    z = grading.logits(1000, scale=60.0, shift=5.0).sample(gen)
    assert 50 < z.std() < 70 and abs(z.mean() - 5) < 6
    assert torch.all(grading.const(2, 2, value=0.25).sample(gen) == 0.25)


@pytest.mark.parametrize("make, match", [
    (lambda: grading.logits(2, -1), "shape"),
    (lambda: grading.logits(2, 2, dtype="float16"), "dtype"),
    (lambda: grading.mask(2, 2, p=1.5), "p"),
    (lambda: grading.one_hot(2, 2, 3, absent=(0, 1)), "absent"),
    (lambda: grading.labels(4, num_classes=2, absent=(0, 1)), "absent"),
    (lambda: grading.each(), "each"),
    (lambda: grading.cases(reduction="mean"), "tensor spec"),
    (lambda: grading.cases(x=grading.soft(2), repeat=0), "repeat"),
])
def test_spec_errors_name_the_argument(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_check_function_argument_errors():
    with pytest.raises(TypeError, match="name"):
        grading.check_function(plain_bce, REF, CASES)
    with pytest.raises(TypeError, match="cases"):
        grading.check_function("fn", REF, [1, 2], namespace={"fn": plain_bce})
    with pytest.raises(ValueError, match="grad"):
        grading.check_function("fn", REF, CASES, grad="weight", namespace={"fn": plain_bce})
    with pytest.raises(TypeError, match="reference"):
        grading.check_function("fn", plain_bce, CASES, namespace={"fn": plain_bce})


# ----------------------------------------------------------------------------- honest code passes

def test_honest_implementation_passes_values_and_gradient(capsys):
    check(plain_bce, grad="logits")
    assert "matches comp448.losses.bce_loss on 3 inputs (values and gradient)" in capsys.readouterr().out


def test_float64_cast_back_and_loops_pass():
    def loop_bce(logits, target, reduction="mean"):
        rows = [F.softplus(z.double()) - y.double() * z.double() for z, y in zip(logits, target)]
        loss = torch.stack(rows).to(logits.dtype)
        return loss.mean() if reduction == "mean" else loss.sum() if reduction == "sum" else loss
    check(loop_bce, grad="logits")


def test_gradient_reference_for_closed_forms():
    def grad_bce(logits, target):
        return torch.sigmoid(logits) - target                        # d/dz (softplus(z) - y z)
    cases = grading.cases(logits=grading.logits(2, 1, 3, 3), target=grading.soft(2, 1, 3, 3))
    check(grad_bce, cases=cases, reference=grading.Gradient(REF, wrt="logits", reduction="sum"))
    msg = failure(lambda logits, target: torch.sigmoid(logits), cases=cases,
                  reference=grading.Gradient(REF, wrt="logits", reduction="sum"))
    assert "autograd gradient of comp448.losses.bce_loss" in msg


# ----------------------------------------------------------------------------- messages

def test_wrong_values_message_says_where_and_what():
    msg = failure(lambda logits, target, reduction="mean": plain_bce(logits, target, reduction) * 1.5)
    assert "input 1 of 3" in msg and "reduction='mean'" in msg and "logits: float32 (2, 1, 4, 4)" in msg
    assert "largest difference" in msg and "expected" in msg and "got" in msg and "rtol=0.0001" in msg
    msg = failure(lambda logits, target, reduction="mean":
                  plain_bce(logits, target, "none") * 1.5 if reduction == "none" else plain_bce(logits, target, reduction))
    assert "input 3 of 3" in msg and "at index (" in msg and "values differ" in msg


@pytest.mark.parametrize("fn, words", [
    (lambda z, y, reduction="mean": plain_bce(z, y, "none"), "shape (2, 1, 4, 4) but the reference gives shape ()"),
    (lambda z, y, reduction="mean": plain_bce(z.double(), y.double(), reduction), "dtype torch.float64"),
    (lambda z, y, reduction="mean": float(plain_bce(z, y, "mean")), "returned float"),
    (lambda z, y, reduction="mean": plain_bce(z, y, reduction).numpy(), "numpy.ndarray"),
    (lambda z, y, reduction="mean": -y * torch.log(torch.sigmoid(z)) - (1 - y) * torch.log(1 - torch.sigmoid(z)),
     "shape"),
    (lambda z, y, reduction="mean": 1 / 0, "raised ZeroDivisionError"),
])
def test_type_shape_dtype_and_error_messages(fn, words):
    assert words in failure(fn)


def test_nan_and_inf_are_reported():
    cases = grading.cases(logits=grading.logits(2, 1, 4, 4, scale=80.0), target=grading.mask(2, 1, 4, 4, p=0.5),
                          reduction="none")
    naive = lambda z, y, reduction="mean": -y * torch.log(torch.sigmoid(z)) - (1 - y) * torch.log(1 - torch.sigmoid(z))
    msg = failure(naive, cases=cases)
    assert "inf" in msg or "NaN" in msg


def test_always_equal_objects_and_tensor_subclasses_fail():
    class Yes:
        def __eq__(self, other):
            return True
        __ne__ = lambda self, other: False
        def __getattr__(self, name):
            return lambda *a, **k: self
    class Sneaky(torch.Tensor):
        def __eq__(self, other):
            return torch.ones((), dtype=torch.bool)
    assert "returned" in failure(lambda z, y, reduction="mean": Yes()) and "Yes" in failure(lambda z, y, reduction="mean": Yes())
    msg = failure(lambda z, y, reduction="mean": plain_bce(z, y, reduction).as_subclass(Sneaky))
    assert "Sneaky" in msg and "exactly a torch.Tensor" in msg


def test_in_place_change_of_inputs_fails():
    def clobber(logits, target, reduction="mean"):
        target.zero_()
        return plain_bce(logits, target, reduction)
    assert "changed its input target in place" in failure(clobber)


def test_missing_and_uncallable_names():
    with pytest.raises(GradingError, match="fn is not defined"):
        grading.check_function("fn", REF, CASES, namespace={})
    with pytest.raises(GradingError, match="not a function"):
        grading.check_function("fn", REF, CASES, namespace={"fn": 3})


def test_gradient_problems_are_reported():
    detached = lambda z, y, reduction="mean": plain_bce(z.detach(), y, reduction)
    assert "does not depend on logits" in failure(detached, grad="logits")
    def wrong_grad(z, y, reduction="mean"):                          # right values, wrong gradient
        value = plain_bce(z, y, reduction)
        return value + (z - z.detach()).sum() * 0.1
    assert "gradient of fn with respect to logits" in failure(wrong_grad, grad="logits")


def test_name_is_looked_up_in_the_calling_cell():
    ns = {"grading": grading, "bce_loss": plain_bce}
    exec("grading.check_function('bce_loss', 'comp448.losses.bce_loss', grading.cases("
         "logits=grading.logits(2, 2), target=grading.mask(2, 2)))", ns)


# ----------------------------------------------------------------------------- refusing the reference

def _module(src: str, **extra):
    mod = types.ModuleType("student_cell")
    mod.__dict__.update(extra)
    exec(textwrap.dedent(src), mod.__dict__)
    return mod


@pytest.mark.parametrize("src, words", [
    ("from comp448.losses import bce_loss as fn", "is the reference"),
    ("import comp448.losses as L\nfn = L.bce_loss", "is the reference"),
    ("import comp448.losses as L\ndef fn(z, y, reduction='mean'):\n    return L.bce_loss(z, y, reduction=reduction)",
     "uses the reference module"),
    ("import comp448\nimport comp448.losses\ndef fn(z, y, reduction='mean'):\n    return comp448.losses.bce_loss(z, y, reduction=reduction)",
     "comp448.losses"),
    ("import functools, comp448.losses\nfn = functools.partial(comp448.losses.bce_loss, weight=None)", "partial"),
    ("import functools, comp448.losses\n@functools.wraps(comp448.losses.bce_loss)\ndef fn(*a, **k):\n    return 0",
     "__wrapped__"),
    ("import comp448.losses\ndef make(f):\n    def inner(z, y, reduction='mean'):\n        return f(z, y, reduction=reduction)\n"
     "    return inner\nfn = make(comp448.losses.bce_loss)", "closure"),
    ("import comp448.losses\ndef fn(z, y, reduction='mean', _f=comp448.losses.bce_loss):\n    return _f(z, y, reduction=reduction)",
     "default argument"),
    ("import comp448.losses\nFUNCS = [comp448.losses.bce_loss]\ndef fn(z, y, reduction='mean'):\n    return FUNCS[0](z, y, reduction=reduction)",
     "is the reference"),
    ("import comp448.losses\nclass C:\n    def __call__(self, z, y, reduction='mean'):\n        return REF(z, y, reduction=reduction)\n"
     "REF = comp448.losses.bce_loss\nfn = C()", "is the reference"),
    ("import types, comp448.losses.bce as b\nfn = types.FunctionType(b.bce_loss.__code__, b.__dict__, 'fn', b.bce_loss.__defaults__)",
     "same bytecode"),
])
def test_wrapping_or_calling_the_reference_is_refused(src, words):
    fn = _module(src).fn
    msg = failure(fn)
    assert "refused" in msg or "calls" in msg
    assert words in msg, msg


def pasted(*modules) -> str:
    """What a student gets by pasting the reference modules' source into a cell (imports of
    comp448.losses and ``from __future__`` dropped, whole statements)."""
    import ast
    out = []
    for m in modules:
        src = inspect.getsource(m)
        drop = set()
        for node in ast.parse(src).body:
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(("comp448.losses", "__future__")):
                drop.update(range(node.lineno - 1, node.end_lineno))
        out += [ln for i, ln in enumerate(src.splitlines()) if i not in drop]
    return "\n".join(out) + "\n"


def test_copied_reference_source_is_refused():
    from comp448.losses import _utils, bce
    mod = _module(pasted(_utils, bce).replace("def bce_loss(", "def fn("))
    assert "same bytecode as the reference comp448.losses.bce.bce_loss" in failure(mod.fn)


def test_tripwires_catch_calls_obtained_at_call_time():
    def sneaky(z, y, reduction="mean"):
        mod = sys.modules["comp448.losses." + "bce"]
        return getattr(mod, "bce_" + "loss")(z, y, reduction=reduction)
    assert "calls comp448.losses.bce.bce_loss" in failure(sneaky)

    def reimported(z, y, reduction="mean"):                          # a second copy of the module
        import comp448.losses.bce as b
        spec = importlib.util.spec_from_file_location("copy_of_bce", b.__file__)
        m = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(m)
        return m.bce_loss(z, y, reduction=reduction)
    assert "re-imported copy of the reference" in failure(reimported)

    def reloaded(z, y, reduction="mean"):
        import comp448.losses.bce as b
        return importlib.reload(b).bce_loss(z, y, reduction=reduction)
    try:
        assert "calls" in failure(reloaded)
    finally:
        import comp448.losses
        importlib.reload(sys.modules["comp448.losses.bce"])
        importlib.reload(comp448.losses)


def test_tripwires_are_removed_afterwards():
    import comp448.losses
    code = comp448.losses.bce.bce_loss.__code__ if hasattr(comp448.losses, "bce") else None
    check(plain_bce)
    assert sys.getprofile() is None
    from comp448.losses import bce
    assert "__comp448_tripwire__" not in bce.__dict__
    assert code is None or bce.bce_loss.__code__ is code
    torch.testing.assert_close(comp448.losses.bce_loss(torch.zeros(2, 2), torch.zeros(2, 2)), torch.tensor(math.log(2)))


def test_forbidden_functions_and_autograd():
    torch_bce = lambda z, y, reduction="mean": F.binary_cross_entropy_with_logits(z, y, reduction=reduction)
    assert "not allowed" in failure(torch_bce, forbid=grading.TORCH_LOSSES)
    check(torch_bce)                                                  # fine where not forbidden

    def by_autograd(logits, target):
        z = logits.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(plain_bce(z, target, "sum"), z)
        return g
    cases = grading.cases(logits=grading.logits(2, 3), target=grading.soft(2, 3))
    msg = failure(by_autograd, cases=cases, reference=grading.Gradient(REF, reduction="sum"), forbid=grading.AUTOGRAD)
    assert "torch.autograd.grad" in msg and "not allowed" in msg


def test_switching_the_profiler_off_is_noticed():
    def quiet(z, y, reduction="mean"):
        sys.setprofile(None)
        return plain_bce(z, y, reduction)
    assert "profiler" in failure(quiet)


# ----------------------------------------------------------------------------- record -> verify

def _record_and_verify(monkeypatch, tmp_path, fn, source, seed="s3cret"):
    path = tmp_path / "record.jsonl"
    monkeypatch.setenv(grading.RECORD_ENV, str(path))
    monkeypatch.setenv(grading.SEED_ENV, seed)
    exec(source, {"grading": grading, "bce_loss": fn})
    monkeypatch.delenv(grading.RECORD_ENV)
    lines = path.read_text().splitlines()
    ctx = grading.VerifyContext(records=grading.parse_records(lines), seed=seed,
                                copies={"__names__": {}, "__copied__": {}})
    return grading.verify_test_cell(source, ctx), lines


TEST_CELL = ("grading.check_function('bce_loss', 'comp448.losses.bce_loss', grading.cases("
             "logits=grading.logits(2, 1, 4, 4), target=grading.soft(2, 1, 4, 4), "
             "reduction=grading.each('mean', 'none')), grad='logits')\n")


def test_record_then_verify_passes_honest_and_fails_wrong(monkeypatch, tmp_path):
    result, lines = _record_and_verify(monkeypatch, tmp_path, plain_bce, TEST_CELL)
    assert result.passed and "2 secret inputs match" in result.text and len(lines) == 1
    wrong = lambda z, y, reduction="mean": plain_bce(z, y, reduction) + 0.01
    result, _ = _record_and_verify(monkeypatch, tmp_path, wrong, TEST_CELL)
    assert not result.passed and "does not match" in result.text and not result.authoring_error


def test_record_mode_never_imports_the_reference(monkeypatch, tmp_path):
    monkeypatch.setenv(grading.RECORD_ENV, str(tmp_path / "r.jsonl"))
    monkeypatch.setattr(grading, "_resolve", lambda path: pytest.fail("record mode resolved the reference"))
    grading.check_function("fn", REF, CASES, grad="logits", namespace={"fn": plain_bce})
    assert len((tmp_path / "r.jsonl").read_text().splitlines()) == 1


def test_memorised_public_outputs_fail_on_secret_inputs(monkeypatch, tmp_path):
    from comp448.losses import bce_loss
    memo = {}
    for case in grading.cases(logits=grading.logits(2, 1, 4, 4), target=grading.soft(2, 1, 4, 4),
                              reduction=grading.each("mean", "none")).generate(grading.PUBLIC_SEED):
        memo[case.args[0].numpy().tobytes()] = bce_loss(*case.args, **case.kwargs)
    lookup = lambda z, y, reduction="mean": memo.get(z.detach().numpy().tobytes(), torch.zeros(()))
    check(lookup, cases=grading.cases(logits=grading.logits(2, 1, 4, 4), target=grading.soft(2, 1, 4, 4),
                                      reduction=grading.each("mean", "none")))   # passes the visible test
    result, _ = _record_and_verify(monkeypatch, tmp_path, lookup, TEST_CELL.replace(", grad='logits'", ""))
    assert not result.passed


def test_verify_reports_tests_that_did_not_run_and_authoring_errors():
    ctx = grading.VerifyContext(records={}, seed="x", copies={"__names__": {}})
    r = grading.verify_test_cell(TEST_CELL, ctx)
    assert not r.passed and "did not run" in r.text and not r.authoring_error
    r = grading.verify_test_cell("assert bce_loss(1, 2) == 3\n", ctx)
    assert not r.passed and r.authoring_error
    r = grading.verify_test_cell("x = 1\n", ctx)
    assert not r.passed and r.authoring_error and "no grading.check_function" in r.text


def test_parse_records_rejects_malformed_and_oversized_lines():
    good = grading.Observation("tensor", "torch.Tensor", "torch.float32", (2,), torch.tensor([1.0, 2.0], dtype=torch.float64))
    lines = [
        "not json", "[]", json.dumps({"key": 5, "observations": []}),
        json.dumps({"key": "a", "observations": [{"kind": "tensor", "shape": [3], "data": "AAAA"}]}),
        json.dumps({"key": "b", "observations": [{"kind": "tensor", "shape": [1 << 30], "data": ""}]}),
        json.dumps({"key": "c", "observations": [{"kind": "evil"}]}),
        json.dumps({"key": "d", "observations": [good.to_json()]}),
    ]
    records = grading.parse_records(lines)
    assert records["a"] == [None] and records["b"] == [None] and records["c"] == [None]
    assert set(records) == {"a", "b", "c", "d"}
    torch.testing.assert_close(records["d"][0].values, good.values)
    assert records["d"][0].dtype == "torch.float32" and records["d"][0].shape == (2,)


# ----------------------------------------------------------------------------- static analysis

def test_find_reference_copies():
    from comp448.losses import bce
    copy = pasted(bce).replace("def bce_loss(", "def my_bce(")
    sources = [copy, "def bce_loss(z, y, reduction='mean'):\n    return my_bce(z, y, reduction=reduction)\n",
               "alias = bce_loss\n",
               "from comp448.losses import focal_loss as fl\ndef focal(z, y):\n    return fl(z, y)\n",
               "def honest(z, y):\n    return (F.softplus(z) - y * z).mean()\n",
               "def uses_torch(z, y):\n    return F.binary_cross_entropy_with_logits(z, y)\n",
               "%matplotlib inline\n!pip install nothing\n"]
    found = grading.find_reference_copies(sources, ["comp448.losses"])
    assert "bytecode" in found["my_bce"]
    assert "it calls" in found["bce_loss"] and "bytecode" in found["bce_loss"]
    assert found["alias"] == found["bce_loss"]
    assert "imported from the reference" in found["focal"]
    assert "honest" not in found and "uses_torch" not in found
    assert "binary_cross_entropy_with_logits" in found["__names__"]["uses_torch"]
    assert "comp448.losses.bce_loss" in found["__copied__"]
