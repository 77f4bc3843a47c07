"""Helpers that nbgrader test cells call: compare a student's function with the reference.

A test cell names the student's function, the reference and the inputs, nothing else::

    grading.check_function(
        "bce_loss", "comp448.losses.bce_loss",
        grading.cases(logits=grading.logits(2, 1, 8, 8), target=grading.mask(2, 1, 8, 8),
                      reduction=grading.each("mean", "sum", "none")),
        grad="logits")

``check_function`` generates the inputs, calls the student's function and the reference,
and says in plain words what differs (which input, the largest error, where, expected vs
got). Types, shapes and dtypes are checked strictly: the output must be exactly a
``torch.Tensor`` (``type(out) is torch.Tensor``; objects whose ``__eq__`` always says yes and
tensor subclasses fail), with the reference's shape and dtype, and values within
``torch.testing.assert_close`` tolerances. With ``grad="logits"`` the gradient of the output
(times a random cotangent) with respect to that input is compared as well.

The same test cell runs in three modes:

- **direct** (the student's Jupyter, ``nbgrader validate``): everything happens in the
  student's kernel. A function that *is*, wraps or calls the reference is refused: identity,
  ``__wrapped__``, ``functools.partial``, closures/defaults/globals that reach a reference
  function or module, code objects with the reference's bytecode, and tripwires that catch a
  call of the reference (or of a reloaded / re-imported copy of it) while the check runs.
  This mode helps students; it cannot stop a student who patches this module in their own
  kernel.
- **record** (inside the grading sandbox of ``python -m autograder autograde``, set by the
  environment variable ``COMP448_GRADING_RECORD``): the reference is not importable there.
  The student's function is called on inputs drawn from a secret per-student seed and its
  outputs are appended to the record file. Nothing is compared in the student's process.
- **verify** (the grader's own process, which never runs student code): the autograder
  executes the *instructor's* copy of each test cell again; ``check_function`` now draws the
  same secret inputs, runs the reference and compares with the recorded outputs. This verdict
  is the only one that scores. See ``autograder/README.md`` for what is and is not protected.

Input generators (``logits``, ``mask``, ``soft``, ``weights``, ``const``, ``labels``,
``one_hot``) are small frozen specs, so both sides regenerate identical inputs from a seed.
Generated tensors are passed positionally in the order given; other values as keywords.
"""
from __future__ import annotations

import ast
import base64
import dataclasses
import functools
import hashlib
import importlib
import inspect
import itertools
import json
import math
import os
import sys
import types
import contextlib
import copy
from contextlib import contextmanager

import numpy as np
import torch

from comp448._checks import check_number

__all__ = [
    "check_function", "cases", "each", "logits", "mask", "soft", "weights", "const", "labels",
    "one_hot", "Gradient", "Observation", "GradingError", "find_reference_copies",
    "verify_test_cell", "VerifyResult",
    "check_invariants", "image", "instances", "binary_mask", "displacement", "switches", "rng", "Raised",
    "INVARIANTS", "JOINT_WARP_INVARIANTS", "Invariants", "observe_value", "compare_value",
]

RECORD_ENV = "COMP448_GRADING_RECORD"     # path of the record file (record mode)
SEED_ENV = "COMP448_GRADING_SEED"         # secret seed (record mode)
PUBLIC_SEED = "comp448-public"            # seed of the inputs students see (direct mode)
MAX_ELEMENTS = 1 << 20                    # largest tensor a record may hold


class GradingError(AssertionError):
    """A check failed. The message says what differs, in plain words."""


# ----------------------------------------------------------------------------- input specs

_DTYPES = {"float32": torch.float32, "float64": torch.float64, "int64": torch.int64}


def _shape(shape) -> tuple[int, ...]:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    for s in shape:
        check_number("shape", s, lo=0, integer=True)
    return tuple(int(s) for s in shape)


@dataclasses.dataclass(frozen=True)
class TensorSpec:
    """How to draw one input tensor; ``kind`` picks the recipe, ``params`` its knobs."""
    kind: str
    shape: tuple[int, ...]
    dtype: str = "float32"
    params: tuple = ()

    def describe(self) -> str:
        knobs = ", ".join(f"{k}={v!r}" for k, v in self.params)
        return f"{self.kind}({knobs})" if knobs else self.kind

    def sample(self, gen: torch.Generator) -> torch.Tensor:
        p = dict(self.params)
        shape, kind = self.shape, self.kind
        if kind == "logits":                                  # N(shift, scale^2)
            x = torch.randn(shape, generator=gen, dtype=torch.float64) * p["scale"] + p["shift"]
        elif kind == "mask":                                  # 0/1, P(1) = p; chosen images empty/full
            x = (torch.rand(shape, generator=gen, dtype=torch.float64) < p["p"]).double()
            for b in p["empty"]:
                x[b] = 0.0
            for b in p["full"]:
                x[b] = 1.0
        elif kind == "soft":                                  # U[0, 1)
            x = torch.rand(shape, generator=gen, dtype=torch.float64)
        elif kind == "weights":                               # U[lo, hi)
            x = p["lo"] + (p["hi"] - p["lo"]) * torch.rand(shape, generator=gen, dtype=torch.float64)
        elif kind == "const":
            x = torch.full(shape, float(p["value"]), dtype=torch.float64)
        elif kind in ("labels", "one_hot"):                   # classes drawn from the allowed ones
            n = p["num_classes"]
            allowed = torch.tensor([c for c in range(n) if c not in p["absent"]])
            lab_shape = shape if kind == "labels" else (shape[0], *shape[2:])
            idx = torch.randint(len(allowed), lab_shape, generator=gen)
            lab = allowed[idx]
            if kind == "labels":
                return lab.to(_DTYPES[self.dtype])
            x = torch.nn.functional.one_hot(lab, n).movedim(-1, 1).double()   # (B, C, *spatial)
        else:  # pragma: no cover - specs are built by the functions below
            raise ValueError(f"unknown input kind {kind!r}")
        return x.to(_DTYPES[self.dtype])


def _check_dtype(dtype: str, allowed=("float32", "float64")) -> str:
    if dtype not in allowed:
        raise ValueError(f"dtype must be one of {list(allowed)}, got {dtype!r}")
    return dtype


def logits(*shape, scale: float = 3.0, shift: float = 0.0, dtype: str = "float32") -> TensorSpec:
    """Raw scores ~ N(shift, scale^2). ``scale=60`` gives extreme logits (up to about +-200)."""
    check_number("scale", scale, lo=0.0)
    check_number("shift", shift)
    return TensorSpec("logits", _shape(shape), _check_dtype(dtype), (("scale", scale), ("shift", shift)))


def mask(*shape, p: float = 0.3, empty: tuple = (), full: tuple = (), dtype: str = "float32") -> TensorSpec:
    """A binary 0/1 target with P(1) = p; images listed in ``empty``/``full`` are all 0 / all 1."""
    check_number("p", p, lo=0.0, hi=1.0)
    return TensorSpec("mask", _shape(shape), _check_dtype(dtype),
                      (("p", p), ("empty", tuple(empty)), ("full", tuple(full))))


def soft(*shape, dtype: str = "float32") -> TensorSpec:
    """A soft target, uniform in [0, 1)."""
    return TensorSpec("soft", _shape(shape), _check_dtype(dtype))


def weights(*shape, lo: float = 0.1, hi: float = 5.0, dtype: str = "float32") -> TensorSpec:
    """A positive per-pixel weight map c_p, uniform in [lo, hi)."""
    check_number("lo", lo, lo=0.0)
    check_number("hi", hi, lo=lo)
    return TensorSpec("weights", _shape(shape), _check_dtype(dtype), (("lo", lo), ("hi", hi)))


def const(*shape, value: float, dtype: str = "float32") -> TensorSpec:
    """A constant tensor (e.g. an all-zero target)."""
    check_number("value", value)
    return TensorSpec("const", _shape(shape), _check_dtype(dtype), (("value", value),))


def labels(*shape, num_classes: int, absent: tuple = (), dtype: str = "int64") -> TensorSpec:
    """Integer class labels in [0, num_classes), never any class listed in ``absent``."""
    check_number("num_classes", num_classes, lo=1, integer=True)
    if len(set(absent)) >= num_classes:
        raise ValueError(f"absent must leave at least one of the {num_classes} classes, got {absent!r}")
    return TensorSpec("labels", _shape(shape), _check_dtype(dtype, ("int64",)),
                      (("num_classes", int(num_classes)), ("absent", tuple(absent))))


def one_hot(*shape, absent: tuple = (), dtype: str = "float32") -> TensorSpec:
    """A one-hot target of shape (B, C, *spatial); the classes in ``absent`` never occur."""
    shape = _shape(shape)
    if len(shape) < 2:
        raise ValueError(f"shape must be (B, C, *spatial), got {shape}")
    if len(set(absent)) >= shape[1]:
        raise ValueError(f"absent must leave at least one of the {shape[1]} classes, got {absent!r}")
    return TensorSpec("one_hot", shape, _check_dtype(dtype),
                      (("num_classes", shape[1]), ("absent", tuple(absent))))


@dataclasses.dataclass(frozen=True)
class Each:
    """A keyword argument that takes each of these values in turn (cartesian product)."""
    values: tuple


def each(*values) -> Each:
    """Try every value, e.g. ``reduction=grading.each("mean", "sum", "none")``."""
    if not values:
        raise ValueError("each() needs at least one value")
    return Each(tuple(values))


@dataclasses.dataclass(frozen=True)
class Case:
    index: int
    total: int
    args: tuple            # generated tensors, positional, in the order given
    kwargs: dict           # plain values
    names: tuple           # names of the positional arguments

    def describe(self) -> str:
        parts = [f"{n}: {_describe_tensor(a)}" for n, a in zip(self.names, self.args)]
        parts += [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"input {self.index + 1} of {self.total} ({', '.join(parts)})"


def _describe_tensor(t: torch.Tensor) -> str:
    if not isinstance(t, torch.Tensor):
        return _describe_value(t)
    return f"{str(t.dtype).replace('torch.', '')} {tuple(t.shape)}"


@dataclasses.dataclass(frozen=True)
class Cases:
    """Input recipes: tensors from specs (positional), options (keywords), ``repeat`` draws each."""
    arguments: tuple       # ((name, TensorSpec | Each | value), ...)
    repeat: int = 1

    @property
    def key(self) -> str:
        return repr(self)

    def generate(self, seed: str) -> list[Case]:
        tensors = [(n, v) for n, v in self.arguments if isinstance(v, TensorSpec)]
        options = [(n, v) for n, v in self.arguments if not isinstance(v, TensorSpec)]
        choice_lists = [v.values if isinstance(v, Each) else (v,) for _, v in options]
        combos = list(itertools.product(*choice_lists))
        total = len(combos) * self.repeat
        out = []
        for i in range(total):
            combo = combos[i % len(combos)]
            gen = torch.Generator().manual_seed(_int_seed(seed, self.key, i))
            args = _sample_all(tensors, gen)
            kwargs = {n: c for (n, _), c in zip(options, combo)}
            out.append(Case(i, total, args, kwargs, tuple(n for n, _ in tensors)))
        return out


def cases(*, repeat: int = 1, **arguments) -> Cases:
    """Inputs for a check: tensor specs are passed positionally in this order, the rest as keywords.

    ``grading.each(...)`` values are crossed; ``repeat`` draws every combination that many
    times with different random tensors.
    """
    check_number("repeat", repeat, lo=1, integer=True)
    if not any(isinstance(v, (TensorSpec, Each)) for v in arguments.values()):
        raise ValueError("cases() needs at least one tensor spec (e.g. grading.logits(2, 1, 8, 8)) "
                         "or a grading.each(...) value")
    return Cases(tuple(arguments.items()), int(repeat))


def _int_seed(*parts: str) -> int:
    h = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(h[:8], "little") & ((1 << 63) - 1)


# ----------------------------------------------------------------------------- references

@dataclasses.dataclass(frozen=True)
class Gradient:
    """The reference's gradient: autograd of ``reference(*args, **kwargs, **fixed)`` summed, w.r.t. ``wrt``.

    E.g. ``Gradient("comp448.losses.focal_loss", wrt="logits", reduction="sum")`` is the
    elementwise d(focal)/d(logit) that a closed-form gradient function must return.
    """
    reference: str
    wrt: str = "logits"
    fixed: tuple = ()

    def __init__(self, reference: str, wrt: str = "logits", **fixed):
        object.__setattr__(self, "reference", reference)
        object.__setattr__(self, "wrt", wrt)
        object.__setattr__(self, "fixed", tuple(sorted(fixed.items())))

    def __str__(self) -> str:
        return f"the autograd gradient of {self.reference} with respect to {self.wrt}"


def _reference_name(reference) -> str:
    return reference.reference if isinstance(reference, Gradient) else reference


def _resolve(path: str):
    """'comp448.losses.bce_loss' or 'torch.Tensor.backward' -> the object (importing as needed)."""
    if not isinstance(path, str) or "." not in path:
        raise TypeError(f"reference must be a dotted name like 'comp448.losses.bce_loss', got {path!r}")
    parts = path.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError as exc:
            error = exc
            continue
        try:
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
            return obj
        except AttributeError as exc:
            error = exc
            break
    raise GradingError(f"the reference {path} is not available here ({error}). The tests compare "
                       f"with the comp448 package: install it (pip install comp448) and restart "
                       f"the kernel.")


# torch's own losses: using them instead of writing the formula is not accepted
TORCH_LOSSES = ("torch.nn.functional.binary_cross_entropy", "torch.nn.functional.binary_cross_entropy_with_logits",
                "torch.nn.BCELoss", "torch.nn.BCEWithLogitsLoss", "torch.nn.functional.cross_entropy",
                "torch.nn.functional.nll_loss")
# autograd: a closed-form gradient must not be computed by autograd
AUTOGRAD = ("torch.autograd.grad", "torch.autograd.backward", "torch.Tensor.backward", "torch.func.grad",
            "torch.func.vjp", "torch.autograd.functional.vjp", "torch.autograd.functional.jacobian")


def reference_module(reference) -> str:
    """The comp448 subpackage that holds a reference ('comp448.losses' for 'comp448.losses.bce_loss')."""
    parts = _reference_name(reference).split(".")
    return ".".join(parts[:2]) if parts[0] == "comp448" and len(parts) > 2 else parts[0]


def _call_reference(reference, case: Case):
    if isinstance(reference, Gradient):
        fn = _resolve(reference.reference)
        args = [a.detach().clone() for a in case.args]
        if reference.wrt not in case.names:
            raise GradingError(f"Gradient(wrt={reference.wrt!r}) names no generated input "
                               f"(inputs: {', '.join(case.names)})")
        i = case.names.index(reference.wrt)
        args[i].requires_grad_(True)
        out = fn(*args, **case.kwargs, **dict(reference.fixed))
        (g,) = torch.autograd.grad(out.sum(), args[i])
        return g
    fn = _resolve(reference)
    try:
        return fn(*[_fresh(a) for a in case.args], **case.kwargs)
    except ValueError as exc:             # an invalid input: the student's function must raise it too
        return Raised(exc)


# ----------------------------------------------------------------------------- observations

@dataclasses.dataclass
class Observation:
    """What a function returned on one input, in a form that can cross a process boundary.

    ``kind`` is "tensor", "other" (not a tensor), "error" (it raised), "missing" (no such
    function) or "refused" (it is or calls the reference). ``values`` are float64.
    """
    kind: str
    type: str = ""
    dtype: str = ""
    shape: tuple = ()
    values: torch.Tensor | None = None
    message: str = ""
    grad: "Observation | None" = None
    items: "list | None" = None           # kind "tuple": one Observation per item
    mro: tuple = ()                       # kind "error": qualified names of the exception's classes

    def to_json(self) -> dict:
        d = {"kind": self.kind, "type": self.type, "dtype": self.dtype, "shape": list(self.shape),
             "message": self.message[:2000]}
        if self.values is not None:
            d["data"] = base64.b64encode(self.values.contiguous().numpy().tobytes()).decode()
        if self.grad is not None:
            d["grad"] = self.grad.to_json()
        if self.items is not None:
            d["items"] = [x.to_json() for x in self.items]
        if self.mro:
            d["mro"] = list(self.mro)
        return d

    @classmethod
    def from_json(cls, d, depth: int = 0) -> "Observation":
        """Parse untrusted JSON strictly (raises ValueError on anything unexpected)."""
        if not isinstance(d, dict) or depth > 1:
            raise ValueError("observation must be an object")
        extra = _observation_from_json(d, depth)
        if extra is not None:
            return extra
        kind = d.get("kind")
        if kind not in ("tensor", "other", "error", "missing", "refused"):
            raise ValueError(f"bad kind {kind!r}")
        shape = d.get("shape", [])
        if (not isinstance(shape, list) or len(shape) > 8
                or not all(isinstance(s, int) and 0 <= s <= MAX_ELEMENTS for s in shape)):
            raise ValueError("bad shape")
        strings = [d.get(k, "") for k in ("type", "dtype", "message")]
        if not all(isinstance(s, str) and len(s) <= 4000 for s in strings):
            raise ValueError("bad strings")
        values = None
        if kind == "tensor":
            n = math.prod(shape)
            if n > MAX_ELEMENTS:
                raise ValueError("tensor too large")
            raw = base64.b64decode(d.get("data", ""), validate=True)
            if len(raw) != 8 * n:
                raise ValueError("data does not match the shape")
            values = torch.frombuffer(bytearray(raw), dtype=torch.float64).reshape(shape) if n else \
                torch.zeros(shape, dtype=torch.float64)
        grad = cls.from_json(d["grad"], depth + 1) if d.get("grad") is not None else None
        mro = d.get("mro", [])
        if not isinstance(mro, list) or len(mro) > 16 or not all(isinstance(m, str) and len(m) <= 200 for m in mro):
            raise ValueError("bad mro")
        return cls(kind, strings[0], strings[1], tuple(shape), values, strings[2], grad, mro=tuple(mro))


def _qualname(tp: type) -> str:
    return f"{tp.__module__}.{tp.__qualname__}" if tp.__module__ != "builtins" else tp.__qualname__


def observe(out) -> Observation:
    """Turn a returned value into an Observation (strict: exactly torch.Tensor)."""
    tp = type(out)
    if tp is not torch.Tensor:
        return Observation("other", _qualname(tp), message=_short_repr(out))
    if out.numel() > MAX_ELEMENTS:
        return Observation("other", "torch.Tensor", str(out.dtype), tuple(out.shape),
                           message=f"a tensor with {out.numel()} elements (too large to compare)")
    vals = out.detach().cpu()
    vals = vals.real if vals.is_complex() else vals
    return Observation("tensor", "torch.Tensor", str(out.dtype), tuple(out.shape), vals.to(torch.float64))


def _short_repr(x) -> str:
    try:
        r = object.__repr__(x) if not isinstance(x, (int, float, str, tuple, list, dict)) else repr(x)
    except Exception:  # noqa: BLE001 - anything a student returns
        r = "<unprintable>"
    return r if len(r) <= 200 else r[:200] + "..."


def _error_text(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if isinstance(exc, NotImplementedError):
        text += " (not written yet?)"
    return text if len(text) <= 1000 else text[:1000] + "..."


def _evaluate(fn, case: Case, grad: str | None, cotangent_seed: str, pause=None) -> Observation:
    """Call the student's function on fresh copies of the inputs; observe output and gradient.

    ``pause`` (from ``tripwires``) switches the forbidden-call watch off while the grader
    itself runs autograd on the output.
    """
    args = [_fresh(a) for a in case.args]
    if grad is not None:
        args[case.names.index(grad)].requires_grad_(True)
    before = [_snapshot(a) for a in args]
    try:
        out = fn(*args, **dict(case.kwargs))
    except Exception as exc:  # noqa: BLE001 - report whatever the student's code raised
        return Observation("error", message=_error_text(exc), mro=_exception_names(exc))
    with (pause() if pause is not None else contextlib.nullcontext()):
        return _observe_call(out, args, before, case, grad, cotangent_seed)


def _observe_call(out, args, before, case: Case, grad, cotangent_seed) -> Observation:
    obs = observe_value(out)
    for name, a, b in zip(case.names, args, before):
        if not _unchanged(a, b):
            return Observation("error", message=f"it changed its input {name} in place; your function must "
                                                f"leave its inputs untouched (work on a copy)")
    if grad is not None and obs.kind == "tensor":
        x = args[case.names.index(grad)]
        if not out.requires_grad:
            obs.grad = Observation("error", message=f"the output does not depend on {grad} through "
                                                    f"autograd (no gradient flows back)")
        else:
            try:
                (g,) = torch.autograd.grad(out, x, _cotangent(out, cotangent_seed), allow_unused=True)
                obs.grad = observe(g) if g is not None else Observation(
                    "error", message=f"the output does not depend on {grad}")
            except Exception as exc:  # noqa: BLE001
                obs.grad = Observation("error", message=_error_text(exc))
    return obs


def _cotangent(like: torch.Tensor, seed: str) -> torch.Tensor:
    """A random weighting of the outputs, so that every output element's gradient counts."""
    if like.ndim == 0:
        return torch.ones((), dtype=like.dtype)
    gen = torch.Generator().manual_seed(_int_seed(seed, "cotangent", tuple(like.shape)))
    return (torch.rand(like.shape, generator=gen, dtype=torch.float64) + 0.5).to(like.dtype)


# ----------------------------------------------------------------------------- comparison

def _tolerance(dtype: str, rtol, atol) -> tuple[float, float]:
    default = (1e-6, 1e-8) if dtype == "torch.float64" else (1e-4, 1e-5)
    return (default[0] if rtol is None else rtol, default[1] if atol is None else atol)


def _fmt(x: float) -> str:
    return f"{x:.6g}"


def compare(got: Observation, expected: torch.Tensor, *, what: str, rtol=None, atol=None) -> str | None:
    """Return None if ``got`` matches ``expected`` strictly, else a plain-words explanation."""
    exp_type = type(expected)
    if got.kind == "error":
        return f"{what} raised {got.message}"
    if got.kind == "refused":
        return got.message
    if got.kind == "missing":
        return got.message
    if got.kind == "other" or got.type != "torch.Tensor":
        return (f"{what} returned {got.type or 'something'} ({got.message}), expected exactly a "
                f"torch.Tensor (type(out) is torch.Tensor; subclasses and look-alikes do not count)")
    if exp_type is not torch.Tensor:  # pragma: no cover - references return tensors
        raise TypeError(f"the reference returned {exp_type}")
    if tuple(got.shape) != tuple(expected.shape):
        hint = ""
        if expected.ndim == 0:
            hint = " (the reference reduces to a single number here)"
        elif len(got.shape) == 0:
            hint = " (the reference does not reduce here)"
        return f"{what} has shape {tuple(got.shape)} but the reference gives shape {tuple(expected.shape)}{hint}"
    if got.dtype != str(expected.dtype):
        return (f"{what} has dtype {got.dtype} but the reference gives {expected.dtype} "
                f"(keep the dtype of the inputs)")
    rtol, atol = _tolerance(got.dtype, rtol, atol)
    exp = expected.detach().to(torch.float64)
    try:
        torch.testing.assert_close(got.values, exp, rtol=rtol, atol=atol, equal_nan=False)
        return None
    except AssertionError:
        pass
    bad_nan = torch.isnan(got.values) & ~torch.isnan(exp)
    diff = (got.values - exp).abs()
    diff = torch.where(torch.isnan(diff) | torch.isinf(diff), torch.full_like(diff, math.inf), diff)
    bad = ~torch.isclose(got.values, exp, rtol=rtol, atol=atol)
    flat = int(torch.argmax(diff.reshape(-1))) if diff.numel() else 0
    where = tuple(int(i) for i in torch.unravel_index(torch.tensor(flat), exp.shape)) if exp.ndim else ()
    e, g = float(exp.reshape(-1)[flat]), float(got.values.reshape(-1)[flat])
    at = f" at index {where}" if exp.ndim else ""
    count = f"{int(bad.sum())} of {exp.numel()} values differ; " if exp.ndim else ""
    nan = " It contains NaN where the reference is finite (a log of 0, or 0/0?)." if bool(bad_nan.any()) else ""
    return (f"{what} does not match: {count}the largest difference is {_fmt(abs(g - e))}{at}: "
            f"expected {_fmt(e)}, got {_fmt(g)} (tolerance rtol={rtol:g}, atol={atol:g}).{nan}")


# ----------------------------------------------------------------------------- refusing the reference

def _reference_modules(names) -> list[types.ModuleType]:
    mods = []
    for name in sorted(set(names)):
        try:
            mod = importlib.import_module(name)
        except ImportError:
            continue
        mods.append(mod)
        if hasattr(mod, "__path__"):                          # a package: import its submodules
            import pkgutil
            for info in pkgutil.walk_packages(mod.__path__, name + "."):
                try:
                    mods.append(importlib.import_module(info.name))
                except Exception:  # noqa: BLE001 - a broken submodule is not ours to judge
                    pass
    return mods


def _module_functions(mod: types.ModuleType):
    """Python functions defined in ``mod`` (module level and inside its classes)."""
    for obj in list(vars(mod).values()):
        if isinstance(obj, types.FunctionType) and obj.__module__ == mod.__name__:
            yield obj
        elif isinstance(obj, type) and obj.__module__ == mod.__name__:
            for attr in vars(obj).values():
                fn = attr.__func__ if isinstance(attr, (staticmethod, classmethod)) else attr
                if isinstance(fn, types.FunctionType):
                    yield fn


def _code_objects(code: types.CodeType):
    yield code
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            yield from _code_objects(c)


def _code_fingerprint(code: types.CodeType) -> str | None:
    """Bytecode + constants + names, independent of file, line numbers and function name.

    Tiny code objects (e.g. a one-line lambda) are ignored: two people can write them alike.
    """
    if len(code.co_code) < 48:
        return None
    consts = tuple("<code>" if isinstance(c, types.CodeType) else repr(c) for c in code.co_consts)
    return hashlib.sha256(repr((code.co_code, consts, code.co_names)).encode()).hexdigest()


class _ReferenceIndex:
    """Everything that identifies the reference: its functions, modules, files and bytecode."""

    def __init__(self, module_names):
        self.module_names = sorted(set(module_names))
        self.modules = _reference_modules(self.module_names)
        self.functions: dict[int, tuple[types.FunctionType, str]] = {}
        self.fingerprints: dict[str, str] = {}
        self.files = set()
        for mod in self.modules:
            if getattr(mod, "__file__", None):
                self.files.add(os.path.realpath(mod.__file__))
            for fn in _module_functions(mod):
                name = f"{mod.__name__}.{fn.__qualname__}"
                self.functions[id(fn)] = (fn, name)
                for c in _code_objects(fn.__code__):
                    fp = _code_fingerprint(c)
                    if fp:
                        self.fingerprints.setdefault(fp, name)

    def is_reference_module(self, mod) -> bool:
        return any(mod.__name__ == m or mod.__name__.startswith(m + ".") for m in self.module_names)

    def leaf_names(self) -> set[str]:
        return {m.rsplit(".", 1)[-1] for m in self.module_names}


def _names_in(code: types.CodeType) -> set[str]:
    names = set()
    for c in _code_objects(code):
        names.update(c.co_names)
    return names


def refusal(fn, index: _ReferenceIndex) -> str | None:
    """Why ``fn`` is (or reaches) the reference, or None. Walks wrappers, closures and globals."""
    seen: set[int] = set()
    stack = [(fn, "the function")]
    while stack and len(seen) < 5000:
        obj, path = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if id(obj) in index.functions:
            return f"{path} is the reference {index.functions[id(obj)][1]}"
        if isinstance(obj, types.ModuleType):
            if index.is_reference_module(obj):
                return f"{path} uses the reference module {obj.__name__}"
            continue
        if isinstance(obj, (functools.partial, functools.partialmethod)):
            stack.append((obj.func, f"{path} (a functools.partial of it)"))
            stack.extend((v, f"{path} (a partial argument)") for v in (*obj.args, *obj.keywords.values()))
            continue
        if isinstance(obj, (staticmethod, classmethod, types.MethodType)):
            stack.append((obj.__func__, path))
            continue
        wrapped = inspect.getattr_static(obj, "__wrapped__", None) if not isinstance(obj, type) else None
        if wrapped is not None:
            stack.append((wrapped, f"{path} (through __wrapped__)"))
        if isinstance(obj, types.FunctionType):
            for c in _code_objects(obj.__code__):
                fp = _code_fingerprint(c)
                if fp in index.fingerprints:
                    return (f"{path} has the same bytecode as the reference {index.fingerprints[fp]} "
                            f"(a copy of the reference code)")
            for cell in obj.__closure__ or ():
                try:
                    stack.append((cell.cell_contents, f"{path} (a closure variable)"))
                except ValueError:
                    pass
            stack.extend((d, f"{path} (a default argument)")
                         for d in (*(obj.__defaults__ or ()), *(obj.__kwdefaults__ or {}).values()))
            names = _names_in(obj.__code__)
            for name in names:
                if name in obj.__globals__:
                    val = obj.__globals__[name]
                    if (isinstance(val, types.ModuleType) and val.__name__ == "comp448"
                            and names & index.leaf_names()):
                        return f"{path} reaches the reference through comp448.{sorted(names & index.leaf_names())[0]}"
                    if isinstance(val, (types.FunctionType, types.ModuleType, functools.partial, type,
                                        types.MethodType, list, tuple, dict)) or callable(val):
                        stack.append((val, f"{name} (used by {path})" if path == "the function" else
                                      f"{name} (used by {path})"))
            continue
        if isinstance(obj, (list, tuple, set, frozenset)):
            stack.extend((v, path) for v in list(obj)[:100])
            continue
        if isinstance(obj, dict):
            stack.extend((v, path) for v in list(obj.values())[:100])
            continue
        if isinstance(obj, type):
            if obj.__module__.startswith("comp448.") and any(
                    obj.__module__ == m or obj.__module__.startswith(m + ".") for m in index.module_names):
                return f"{path} is the reference class {obj.__module__}.{obj.__qualname__}"
            if obj.__module__ in ("__main__", "builtins") or obj.__module__.startswith("__"):
                stack.extend((v, path) for v in vars(obj).values())
            continue
        call = getattr(type(obj), "__call__", None)
        if call is not None and type(obj).__module__ not in ("builtins",) and not isinstance(obj, torch.nn.Module):
            stack.append((call, f"{path} (its __call__)"))
    return None


class _Watch:
    """What ``tripwires`` saw; ``paused()`` hides the grader's own work from the profile hook."""

    def __init__(self):
        self.calls: list[str] = []
        self.paused_depth = 0

    @contextmanager
    def paused(self):
        self.paused_depth += 1
        try:
            yield
        finally:
            self.paused_depth -= 1


_TRIP_SOURCE = "def _tripwire(*args, **kwargs):\n    return __comp448_tripwire__({key!r}, args, kwargs)\n"


@contextmanager
def tripwires(index: _ReferenceIndex, forbidden=()):
    """While active, any call of a reference function (however it was obtained) is recorded.

    Each reference function's ``__code__`` is swapped for a stub that records the call and
    then runs the original, and a profile hook catches reloaded or re-imported copies (same
    file or same bytecode) and ``forbidden`` functions. Yields the list of calls seen.
    """
    watch = _Watch()
    calls = watch.calls
    originals: dict[str, tuple[types.FunctionType, types.FunctionType]] = {}
    swapped = []
    forbidden_codes = {}
    builtins_seen: dict[int, tuple] = {}          # C functions: caught by the profiler's c_call event
    for path in forbidden:
        try:
            obj = _resolve(path)
        except GradingError:
            continue
        code = getattr(obj, "__code__", None)
        if code is not None:
            forbidden_codes[code] = path
        elif isinstance(obj, types.BuiltinFunctionType):
            builtins_seen[id(obj)] = (obj, f"{path} (not allowed in this exercise)")
    for fn, name in index.functions.values():
        if isinstance(fn, types.BuiltinFunctionType):
            builtins_seen[id(fn)] = (fn, name)

    def trip(key, args, kwargs):
        fn, name = originals[key]
        calls.append(name)
        return fn(*args, **kwargs)

    for fid, (fn, name) in index.functions.items():
        if not isinstance(fn, types.FunctionType) or fn.__code__.co_freevars:
            continue
        key = str(fid)
        copy = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__)
        copy.__kwdefaults__ = fn.__kwdefaults__
        originals[key] = (copy, name)
        ns: dict = {}
        exec(compile(_TRIP_SOURCE.format(key=key), "<comp448 tripwire>", "exec"), ns)
        stub = ns["_tripwire"].__code__
        try:
            saved = fn.__code__
            fn.__code__ = stub
        except ValueError:
            continue
        fn.__globals__["__comp448_tripwire__"] = trip
        swapped.append((fn, saved))
    own = {c for fn, saved in swapped for c in _code_objects(saved)}
    cache: dict[int, str | None] = {}

    def profile(frame, event, arg):
        if watch.paused_depth:
            return
        if event == "c_call":
            hit = builtins_seen.get(id(arg))
            if hit is not None and hit[0] is arg:
                calls.append(hit[1])
            return
        if event != "call":
            return
        code = frame.f_code
        if code in forbidden_codes:
            calls.append(f"{forbidden_codes[code]} (not allowed in this exercise)")
            return
        if id(code) not in cache:
            hit = None
            if code not in own:
                if os.path.realpath(code.co_filename) in index.files:
                    hit = f"a re-imported copy of the reference ({code.co_name} from {code.co_filename})"
                else:
                    fp = _code_fingerprint(code)
                    if fp in index.fingerprints:
                        hit = f"a copy of the reference {index.fingerprints[fp]}"
            cache[id(code)] = hit
        if cache[id(code)]:
            calls.append(cache[id(code)])

    previous = sys.getprofile()
    sys.setprofile(profile)
    try:
        yield watch
    finally:
        tampered = sys.getprofile() is not profile
        sys.setprofile(previous)
        for fn, saved in swapped:
            fn.__code__ = saved
            fn.__globals__.pop("__comp448_tripwire__", None)
        if tampered:
            calls.append("the profiler that watches for calls of the reference was switched off")


# ----------------------------------------------------------------------------- the check

_VERIFY: "VerifyContext | None" = None


def check_function(name: str, reference, cases: Cases, *, grad: str | None = None,
                   rtol: float | None = None, atol: float | None = None, forbid: tuple = (),
                   namespace: dict | None = None) -> None:
    """Compare the student's function ``name`` with ``reference`` on ``cases``; raise GradingError if they differ.

    Args:
        name: the name of the student's function in the notebook (a string, so that the grader
            can run this test cell without the student's code).
        reference: dotted name of the reference ('comp448.losses.bce_loss') or a ``Gradient``.
        cases: from ``grading.cases(...)``.
        grad: name of a generated input; also compare d(sum(out * v))/d(input) for a random v.
        rtol, atol: tolerances (default 1e-4/1e-5 for float32 outputs, 1e-6/1e-8 for float64).
        forbid: dotted names of functions the student must not call (e.g. torch's own BCE).
        namespace: where to look ``name`` up (default: the globals of the calling cell).
    """
    if isinstance(reference, Invariants):      # no reference output: properties of the outputs
        if grad is not None:
            raise ValueError("grad= cannot be combined with grading.Invariants")
        return check_invariants(name, reference.names, cases, reference=reference.reference,
                                namespace=namespace if namespace is not None else sys._getframe(1).f_globals)
    if isinstance(reference, Score):           # no reference output: a quality bar decided by the grader
        if grad is not None:
            raise ValueError("grad= cannot be combined with grading.Score")
        return check_score(name, reference, cases,
                           namespace=namespace if namespace is not None else sys._getframe(1).f_globals)
    if not isinstance(name, str) or not name.isidentifier():
        raise TypeError(f"name must be the name of the student's function as a string, got {name!r}")
    if not isinstance(cases, Cases):
        raise TypeError(f"cases must come from grading.cases(...), got {type(cases).__name__}")
    if not isinstance(reference, (str, Gradient)):
        raise TypeError(f"reference must be a dotted name or grading.Gradient, got {type(reference).__name__}")
    if grad is not None and grad not in dict(cases.arguments):
        raise ValueError(f"grad must name one of the generated inputs {[n for n, _ in cases.arguments]}, got {grad!r}")
    key = check_key(name, reference, cases, grad)
    if _VERIFY is not None:
        return _VERIFY.check(key, name, reference, cases, grad, rtol, atol, forbid)
    ns = namespace if namespace is not None else sys._getframe(1).f_globals
    if os.environ.get(RECORD_ENV):
        return _record(key, name, cases, grad, ns)
    return _direct(key, name, reference, cases, grad, rtol, atol, forbid, ns)


def check_key(name, reference, cases: Cases, grad) -> str:
    ref = repr(reference) if isinstance(reference, Gradient) else str(reference)
    return hashlib.sha256(f"{name}|{ref}|{cases.key}|{grad}".encode()).hexdigest()[:32]


def _lookup(name: str, ns: dict):
    fn = ns.get(name)
    if fn is None:
        return None, Observation("missing", message=(
            f"{name} is not defined: run the cell where you define it, and keep the name {name}"))
    if not callable(fn):
        return None, Observation("missing", message=f"{name} is a {type(fn).__name__}, not a function")
    return fn, None


def _direct(key, name, reference, cases, grad, rtol, atol, forbid, ns) -> None:
    fn, missing = _lookup(name, ns)
    if missing is not None:
        raise GradingError(missing.message)
    index = _index_for(reference)
    why = refusal(fn, index)
    if why:
        raise GradingError(f"{name} is refused: {why}. Write your own implementation; the reference "
                           f"is not available when your notebook is graded.")
    ref_name = _reference_name(reference)
    generated = cases.generate(PUBLIC_SEED)
    for case in generated:
        expected = _call_reference(reference, case)
        exp_grad = _reference_grad(reference, case, grad, expected, PUBLIC_SEED) \
            if grad and not isinstance(expected, Raised) else None
        with tripwires(index, forbid) as watch:
            got = _evaluate(fn, case, grad, PUBLIC_SEED, pause=watch.paused)
        if watch.calls:
            raise GradingError(f"{name} calls {watch.calls[0]} (detected while the test ran). Write your own "
                               f"implementation; the reference is not available when your notebook is graded.")
        _raise_if_different(name, ref_name, reference, case, got, expected, exp_grad, grad, rtol, atol)
    print(f"✓ {name} matches {reference if isinstance(reference, Gradient) else ref_name} "
          f"on {len(generated)} input{'s' * (len(generated) != 1)}" + (" (values and gradient)" if grad else ""))


def _reference_grad(reference, case: Case, grad: str, expected: torch.Tensor, seed: str) -> torch.Tensor:
    args = [_fresh(a) for a in case.args]
    i = case.names.index(grad)
    args[i].requires_grad_(True)
    if isinstance(reference, Gradient):
        raise GradingError("grad= cannot be combined with a Gradient reference")
    out = _resolve(reference)(*args, **case.kwargs)
    (g,) = torch.autograd.grad(out, args[i], _cotangent(out, seed))
    return g


def _raise_if_different(name, ref_name, reference, case, got, expected, exp_grad, grad, rtol, atol):
    what = f"{name} on {case.describe()}"
    why = compare_value(got, expected, what=what, rtol=rtol, atol=atol)
    if why is None and grad is not None and not isinstance(expected, Raised):
        if got.grad is None:
            why = f"{what}: no gradient was recorded"
        else:
            why = compare(got.grad, exp_grad, what=f"the gradient of {name} with respect to {grad} on "
                                                     f"{case.describe()}", rtol=rtol, atol=atol)
    if why:
        target = str(reference) if isinstance(reference, Gradient) else ref_name
        raise GradingError(f"{why}\n(compared with {target})")


def _record(key, name, cases, grad, ns) -> None:
    """Record mode: evaluate on secret inputs and append the observations to the record file."""
    path, seed = os.environ[RECORD_ENV], os.environ.get(SEED_ENV, "")
    fn, missing = _lookup(name, ns)
    generated = cases.generate(seed)
    observations = []
    for case in generated:
        obs = missing if fn is None else _evaluate(fn, case, grad, seed)
        observations.append(obs.to_json())
    line = json.dumps({"key": key, "name": name, "observations": observations})
    with open(path, "a", encoding="utf-8") as f:
        f.write(line + "\n")
    print(f"{name}: {len(generated)} outputs recorded for the grader")


# ----------------------------------------------------------------------------- verify mode (the grader)

@dataclasses.dataclass
class VerifyContext:
    records: dict            # key -> list[Observation | None]
    seed: str
    copies: dict             # student function name -> why it is refused (static analysis)
    checks: list = dataclasses.field(default_factory=list)

    def _refuse_copy(self, name) -> None:
        """Count the check, and refuse a function that static analysis found copied from the reference."""
        self.checks.append(name)
        if name in self.copies:
            raise GradingError(f"{name} is refused: {self.copies[name]}.")

    def _recorded(self, key, name) -> list:
        """What the student's notebook recorded for this test (it did not run: a clear error)."""
        observed = self.records.get(key)
        if observed is None:
            raise GradingError(f"this test did not run in your notebook, so {name} could not be "
                               f"checked (a cell before it stopped the kernel, ran out of time, or the "
                               f"test cell was changed)")
        return observed

    def check(self, key, name, reference, cases, grad, rtol, atol, forbid) -> None:
        self._refuse_copy(name)
        ref_name = _reference_name(reference)
        used = self.copies.get("__used__", self.copies.get("__names__", {}))
        for path in forbid:
            leaf = path.rsplit(".", 1)[-1]
            if leaf in used.get(name, ()):
                raise GradingError(f"{name} uses {path} (directly or through a helper), which is not "
                                   f"allowed in this exercise.")
        for ref_fn, why in self.copies.get("__copied__", {}).items():
            if ref_fn == ref_name or ref_fn.startswith(ref_name + "."):
                raise GradingError(f"{name} is refused: your notebook contains {why}.")
        observed = self._recorded(key, name)
        generated = cases.generate(self.seed)
        for case in generated:
            got = observed[case.index] if case.index < len(observed) else None
            if got is None:
                raise GradingError(f"no output of {name} was recorded for {case.describe()}")
            if got.kind == "missing":
                raise GradingError(got.message)
            expected = _call_reference(reference, case)
            exp_grad = _reference_grad(reference, case, grad, expected, self.seed) \
                if grad and not isinstance(expected, Raised) else None
            _raise_if_different(name, ref_name, reference, case, got, expected, exp_grad, grad, rtol, atol)
        print(f"✓ {name}: {len(generated)} secret input{'s match' if len(generated) != 1 else ' matches'} "
              f"{reference if isinstance(reference, Gradient) else ref_name}"
              + (" (values and gradient)" if grad else ""))


def parse_records(lines, max_lines: int = 10000) -> dict:
    """Untrusted record lines -> {key: [Observation | None]}; malformed lines are skipped."""
    records: dict = {}
    for line in list(lines)[:max_lines]:
        try:
            d = json.loads(line)
            key, obs = d["key"], d["observations"]
            if not isinstance(key, str) or len(key) > 64 or not isinstance(obs, list) or len(obs) > 1000:
                continue
            parsed = []
            for o in obs:
                try:
                    parsed.append(Observation.from_json(o))
                except (ValueError, TypeError, KeyError):
                    parsed.append(None)
            records[key] = parsed
        except (ValueError, TypeError, KeyError):
            continue
    return records


@dataclasses.dataclass
class VerifyResult:
    passed: bool
    text: str                  # what the student sees in the feedback for this test cell
    authoring_error: bool = False


def verify_test_cell(source: str, context: VerifyContext, *, cell_name: str = "test cell") -> VerifyResult:
    """Run the instructor's test-cell ``source`` in verify mode (no student code involved)."""
    import contextlib
    import io
    global _VERIFY
    buf = io.StringIO()
    context.checks = []
    ns = {"__name__": "__comp448_verify__", "grading": sys.modules[__name__], "torch": torch}
    _VERIFY = context
    try:
        with contextlib.redirect_stdout(buf):
            exec(compile(_strip_magics(source), f"<{cell_name}>", "exec"), ns)
    except GradingError as exc:
        return VerifyResult(False, buf.getvalue() + str(exc))
    except Exception as exc:  # noqa: BLE001 - a broken test cell is the instructor's problem
        return VerifyResult(False, f"the grader could not run this test cell ({_error_text(exc)}); "
                                   f"your instructor has been told", authoring_error=True)
    finally:
        _VERIFY = None
    if not context.checks:
        return VerifyResult(False, "this test cell holds no grading.check_function call, so the grader "
                                   "cannot verify it; your instructor has been told", authoring_error=True)
    return VerifyResult(True, buf.getvalue())


def _strip_magics(source: str) -> str:
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())


# ----------------------------------------------------------------------------- static analysis (the grader)

def find_reference_copies(sources: list[str], module_names) -> dict:
    """Static check of the student's code cells: which top-level functions copy the reference.

    The sources are compiled, never executed. A function is refused when one of its code
    objects has the bytecode of a reference function, or when it reaches such a function, or
    a reference module, through the global names it uses. Returns {function name: why} plus
    "__names__": {function name: every global/attribute name it reaches} for ``forbid``.
    """
    index = _ReferenceIndex(module_names)
    leafs = {m.rsplit(".", 1)[-1] for m in index.module_names}
    defs: dict[str, types.CodeType] = {}
    aliases: dict[str, str] = {}
    imports_ref: set[str] = set()
    all_names: set[str] = set()
    copied: dict[str, str] = {}                       # public reference name -> what was copied
    for src in sources:
        try:
            text = _to_python(src)
            tree = ast.parse(text)
            code = compile(tree, "<student>", "exec")
        except (SyntaxError, ValueError):
            continue
        for node in tree.body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                mod = getattr(node, "module", None) or ""
                for alias in node.names:
                    full = f"{mod}.{alias.name}" if mod else alias.name
                    if any(full == m or full.startswith(m + ".") for m in index.module_names) or (
                            mod == "comp448" and alias.name in leafs):
                        imports_ref.add((alias.asname or alias.name).split(".")[0])
            elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Name):
                for t in node.targets:
                    if isinstance(t, ast.Name):
                        aliases[t.id] = node.value.id
        all_names |= _names_in(code)
        for c in _code_objects(code):
            fp = _code_fingerprint(c)
            if fp in index.fingerprints:
                copied[_public_name(index.fingerprints[fp])] = (
                    f"a copy of the reference code of {index.fingerprints[fp]} (in {c.co_name})")
        for c in code.co_consts:
            if isinstance(c, types.CodeType):
                defs[c.co_name] = c
    direct: dict[str, str] = {}
    for fname, code in defs.items():
        for c in _code_objects(code):
            fp = _code_fingerprint(c)
            if fp in index.fingerprints:
                direct[fname] = f"it has the same bytecode as the reference {index.fingerprints[fp]} (a copy)"
                break
    reach: dict[str, set[str]] = {}
    for fname, code in defs.items():
        seen, todo = set(), [fname]
        while todo:
            n = todo.pop()
            if n in seen:
                continue
            seen.add(n)
            n2 = aliases.get(n, n)
            if n2 in defs:
                todo.extend(_names_in(defs[n2]))
            elif n2 != n:
                todo.append(n2)
        reach[fname] = seen
    out: dict = {}
    for fname, names in reach.items():
        if fname in direct:
            out[fname] = direct[fname]
            continue
        for n in sorted(names):
            if n in direct:
                out[fname] = direct[n] if n == fname else f"it calls {n}, and {direct[n]}"
                break
            if n in imports_ref:
                out[fname] = f"it uses {n}, imported from the reference"
                break
    for alias, target in aliases.items():
        if target in out and alias not in out:
            out[alias] = out[target]
    out["__all_names__"] = all_names
    out["__copied__"] = copied
    out["__names__"] = {f: names for f, names in reach.items()}
    for alias, target in aliases.items():
        if target in reach:
            out["__names__"].setdefault(alias, reach[target])
    out["__used__"] = _used_names(sources, defs, aliases)
    return out


def _public_name(qualified: str) -> str:
    """'comp448.losses.focal.focal_loss' -> 'comp448.losses.focal_loss' (the name tests use)."""
    parts = qualified.split(".")
    return ".".join(parts[:2] + parts[-1:]) if len(parts) > 3 else qualified


def _to_python(src: str) -> str:
    try:
        from IPython.core.inputtransformer2 import TransformerManager
        return TransformerManager().transform_cell(src)
    except Exception:  # noqa: BLE001 - IPython missing or odd syntax: drop magics
        return _strip_magics(src)


# ----------------------------------------------------------------------------- beyond float tensors
#
# NumPy arrays, pool switches, instance label images, seeded generators as inputs; NumPy arrays,
# Python numbers and tuples as outputs; "raise the reference's ValueError"; invariant checks of
# random transforms. The record/verify design is unchanged: outputs are recorded as
# Observations (kind "ndarray", "scalar", "tuple" besides "tensor") and every verdict is computed
# in the grader's process.

NP_DTYPES = ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
             "float16", "float32", "float64")
MAX_ITEMS = 8                               # longest tuple a record may hold


@dataclasses.dataclass(frozen=True)
class ValueSpec(TensorSpec):
    """How to draw one input that is not a float tensor (NumPy arrays, switches, a generator).

    A subclass of TensorSpec, so ``cases`` passes it positionally like the tensors. ``link``
    finishes an input that depends on another one (an image painted from its label image).
    """

    def describe(self) -> str:
        return TensorSpec.describe(self)

    def sample(self, gen: torch.Generator):
        p = dict(self.params)
        kind, shape = self.kind, self.shape
        if kind == "switches":                                # argmax positions of a max-pool
            B, C, H, W = shape
            x = torch.rand((B, C, H, W), generator=gen, dtype=torch.float64)
            _, idx = torch.nn.functional.max_pool2d(x, p["kernel"], return_indices=True)
            return idx                                        # (B, C, H // k, W // k) int64
        rng = np.random.default_rng(int(torch.randint(0, 1 << 62, (1,), generator=gen)))
        if kind == "rng":
            return rng
        if kind == "image":                                   # U[0, 1), channels first
            return rng.random(shape).astype(self.dtype)
        if kind == "binary":
            return (rng.random(shape) < p["p"]).astype(self.dtype)
        if kind == "displacement":                            # (2, H, W) pixels, N(0, scale^2)
            return rng.normal(0.0, p["scale"], size=shape).astype(self.dtype)
        if kind == "instances":
            return _instances(rng, shape, p["n_objects"], p["touching"]).astype(self.dtype)
        raise ValueError(f"unknown input kind {kind!r}")   # pragma: no cover - built below

    def link(self, value, named: dict):
        """An image with ``paint=<name>``: every object of that label image gets its own grey level."""
        source = dict(self.params).get("paint")
        if self.kind != "image" or source is None:
            return value
        if source not in named or not isinstance(named[source], np.ndarray):
            raise ValueError(f"image(paint={source!r}) needs an instance label input named {source!r}")
        lab = named[source]
        if lab.shape != value.shape[1:]:
            raise ValueError(f"image(paint={source!r}): the labels have shape {lab.shape}, the image "
                             f"{value.shape} (expected (C, *labels.shape))")
        ids, inverse = np.unique(lab, return_inverse=True)
        out = np.empty_like(value)
        for c in range(value.shape[0]):
            order = np.argsort(value[c].ravel()[:len(ids)], kind="stable")       # a random order
            levels = np.zeros(len(ids))
            objects = [i for i in order if ids[i] != 0]
            levels[objects] = 0.3 + 0.7 * np.arange(len(objects)) / max(len(objects) - 1, 1)
            noise = (value[c] - 0.5) * 0.02
            out[c] = levels[inverse.reshape(lab.shape)] + noise
        return out


def _instances(rng: np.random.Generator, shape, n: int, touching: float) -> np.ndarray:
    """Exactly ``n`` discs as instance labels (``n`` distinct ids in 1..255, not consecutive; 0 = background).

    Objects cover about a third of the image. With probability ``touching`` a new object is
    placed against an earlier one (they share a border), otherwise apart where there is room.
    Each pixel goes to the disc it lies deepest in (relative to the radius); each centre pixel
    keeps its own object, so no object can vanish, however small the image.
    """
    H, W = shape
    out = np.zeros((H, W), dtype=np.int64)
    if n == 0:
        return out
    r_mean = max(math.sqrt(0.35 * H * W / (math.pi * n)), 0.8)
    centres, radii, pixels, taken = [], [], [], set()
    for _ in range(n):
        r = r_mean * rng.uniform(0.7, 1.3)
        touch = bool(centres) and rng.random() < touching
        best = None
        for attempt in range(200):
            if touch:
                j = int(rng.integers(len(centres)))
                t = rng.uniform(0, 2 * math.pi)
                d = radii[j] + r - 1.0
                c = (centres[j][0] + d * math.sin(t), centres[j][1] + d * math.cos(t))
            else:
                c = (rng.uniform(0, H - 1), rng.uniform(0, W - 1))
            pix = (int(round(c[0])), int(round(c[1])))
            if not (0 <= pix[0] < H and 0 <= pix[1] < W) or pix in taken:
                continue
            best = best or (c, pix)
            apart = all(math.dist(c, o) >= r + ro + 1.5 for o, ro in zip(centres, radii))
            if touch or apart or attempt >= 100:
                best = (c, pix)
                break
        if best is None:                                      # crowded: any free pixel
            free = [(i, j) for i in range(H) for j in range(W) if (i, j) not in taken]
            pix = free[int(rng.integers(len(free)))]
            best = ((float(pix[0]), float(pix[1])), pix)
        centres.append(best[0])
        radii.append(r)
        pixels.append(best[1])
        taken.add(best[1])
    yy, xx = np.mgrid[:H, :W]
    cy = np.array([c[0] for c in centres])[:, None, None]
    cx = np.array([c[1] for c in centres])[:, None, None]
    depth = np.hypot(yy - cy, xx - cx) / np.array(radii)[:, None, None]          # (n, H, W)
    pool = np.arange(1, 256) if n <= 60 else np.arange(1, n + 1)
    ids = rng.choice(pool, size=n, replace=False)             # sparse ids: blended ids show up
    nearest = depth.argmin(0)
    out = np.where(depth.min(0) <= 1.0, ids[nearest], 0)
    for k, pix in enumerate(pixels):                          # every object keeps its centre pixel
        out[pix] = ids[k]
    return out


def _np_dtype(dtype: str, allowed) -> str:
    if dtype not in allowed:
        raise ValueError(f"dtype must be one of {list(allowed)}, got {dtype!r}")
    return dtype


def _hw(H, W) -> tuple[int, int]:
    for name, v in (("H", H), ("W", W)):
        check_number(name, v, lo=1, integer=True)
    return int(H), int(W)


def image(C: int, H: int, W: int, *, dtype: str = "float32", paint: str | None = None) -> ValueSpec:
    """A NumPy float image ``(C, H, W)``, U[0, 1); ``paint="labels"`` paints it from that label input.

    A painted image has one grey level per object (background 0, objects spread over [0.3, 1],
    in a random order per channel) plus noise of +-0.01, so that "the labels follow the image"
    can be checked after a random transform.
    """
    check_number("C", C, lo=1, integer=True)
    H, W = _hw(H, W)
    if paint is not None and not (isinstance(paint, str) and paint.isidentifier()):
        raise TypeError(f"paint must name the label input (e.g. 'labels'), got {paint!r}")
    params = (("paint", paint),) if paint else ()
    return ValueSpec("image", (int(C), H, W), _np_dtype(dtype, ("float32", "float64")), params)


def instances(H: int, W: int, n_objects: int, *, touching: float = 0.0, dtype: str = "int64") -> ValueSpec:
    """A NumPy instance label image ``(H, W)``: exactly ``n_objects`` discs, 0 = background.

    The ids are distinct but not consecutive (drawn from 1..255 for up to 60 objects, so that
    ``uint8`` holds them and an id blended by interpolation is almost never a real one).

    Any size works (also below 16 pixels) and ``n_objects`` may be 0 or 1. ``touching`` is the
    probability that an object is placed against an earlier one, so that they share a border.
    """
    H, W = _hw(H, W)
    check_number("n_objects", n_objects, lo=0, hi=H * W, integer=True)
    check_number("touching", touching, lo=0.0, hi=1.0)
    return ValueSpec("instances", (H, W), _np_dtype(dtype, ("int64", "int32", "int16", "uint8", "uint16")),
                     (("n_objects", int(n_objects)), ("touching", float(touching))))


def binary_mask(*shape, p: float = 0.3, dtype: str = "int64") -> ValueSpec:
    """A NumPy 0/1 mask with P(1) = p (``p=0`` all background, ``p=1`` all foreground)."""
    check_number("p", p, lo=0.0, hi=1.0)
    return ValueSpec("binary", _shape(shape), _np_dtype(dtype, ("int64", "int32", "uint8", "bool")), (("p", p),))


def displacement(H: int, W: int, *, scale: float = 2.0, dtype: str = "float64") -> ValueSpec:
    """A NumPy displacement field ``(2, H, W)`` in pixels, every component ~ N(0, scale^2)."""
    H, W = _hw(H, W)
    check_number("scale", scale, lo=0.0)
    return ValueSpec("displacement", (2, H, W), _np_dtype(dtype, ("float32", "float64")), (("scale", scale),))


def switches(B: int, C: int, H: int, W: int, *, kernel: int = 2) -> ValueSpec:
    """Max-pool switches: ``F.max_pool2d(x, kernel, return_indices=True)[1]`` of a random ``x``.

    An int64 tensor ``(B, C, H // kernel, W // kernel)``; each value is the position of the
    window's maximum in the flattened ``H x W`` plane (``row * W + column``).
    """
    for name, v in (("B", B), ("C", C)):
        check_number(name, v, lo=1, integer=True)
    H, W = _hw(H, W)
    check_number("kernel", kernel, lo=1, integer=True)
    if H < kernel or W < kernel:
        raise ValueError(f"H and W must be >= kernel={kernel}, got {(H, W)}")
    return ValueSpec("switches", (int(B), int(C), H, W), "int64", (("kernel", int(kernel)),))


def rng() -> ValueSpec:
    """A seeded ``numpy.random.Generator``; the student's function and the reference get identical copies."""
    return ValueSpec("rng", (), "none")


def _sample_all(specs, gen: torch.Generator) -> tuple:
    """Draw every generated input in order, then let linked inputs (painted images) see the others."""
    values = [spec.sample(gen) for _, spec in specs]
    named = {n: v for (n, _), v in zip(specs, values)}
    return tuple(spec.link(v, named) if isinstance(spec, ValueSpec) else v for (_, spec), v in zip(specs, values))


def _fresh(a):
    """A copy of an input that the callee may change or consume (tensors, arrays, generators)."""
    if isinstance(a, torch.Tensor):
        return a.clone()
    if isinstance(a, np.ndarray):
        return a.copy()
    if isinstance(a, np.random.Generator):
        return copy.deepcopy(a)
    if type(a) in (list, tuple):                              # list_of / dict_of inputs: copy the items too
        return type(a)(_fresh(x) for x in a)
    if type(a) is dict:
        return {k: _fresh(v) for k, v in a.items()}
    return a


def _snapshot(a):
    if isinstance(a, torch.Tensor):
        return a.detach().clone()
    if isinstance(a, np.ndarray):
        return a.copy()
    if type(a) in (list, tuple, dict):                        # structure and items, to catch pop/append too
        return _container_snapshot(a)
    return None


def _unchanged(a, before) -> bool:
    if isinstance(a, torch.Tensor):
        return torch.equal(a.detach(), before)
    if isinstance(a, np.ndarray):
        return a.dtype == before.dtype and a.shape == before.shape and np.array_equal(a, before)
    if type(a) in (list, tuple, dict):
        return _container_unchanged(a, before)
    return True


def _describe_value(a) -> str:
    if isinstance(a, (torch.Tensor, np.ndarray)):
        prefix = "" if isinstance(a, torch.Tensor) else "NumPy "
        return f"{prefix}{str(a.dtype).replace('torch.', '')} {tuple(a.shape)}"
    if isinstance(a, np.random.Generator):
        return "a seeded numpy.random.Generator"
    if type(a) in (list, tuple, dict) or isinstance(a, (float, int)) or callable(a):
        return _describe_extra(a)
    return type(a).__name__


# -- observing outputs ---------------------------------------------------------------------

def observe_value(out, depth: int = 0) -> Observation:
    """An Observation of anything a function returns, strict about types.

    Exactly ``torch.Tensor`` -> "tensor"; exactly ``numpy.ndarray`` of a numeric dtype ->
    "ndarray" (integers are kept exactly); exactly ``int``/``float``/``bool`` -> "scalar";
    exactly ``tuple`` (up to MAX_ITEMS items, not nested deeper than one level) -> "tuple".
    Everything else (subclasses, lists, NumPy scalars, look-alikes) -> "other".
    """
    tp = type(out)
    if tp is torch.Tensor:
        return observe(out)
    if tp is np.ndarray:
        dt = str(out.dtype)
        if dt not in NP_DTYPES:
            return Observation("other", "numpy.ndarray", dt, tuple(out.shape),
                               message=f"a NumPy array of dtype {dt}")
        if out.size > MAX_ELEMENTS or out.ndim > 8:
            return Observation("other", "numpy.ndarray", dt, tuple(out.shape),
                               message=f"an array with {out.size} elements (too large to compare)")
        store = torch.float64 if out.dtype.kind == "f" else torch.int64
        vals = torch.from_numpy(np.ascontiguousarray(out).astype(np.float64 if store is torch.float64 else np.int64))
        return Observation("ndarray", "numpy.ndarray", dt, tuple(out.shape), vals,
                           message=f"NumPy {dt} array of shape {tuple(out.shape)}")
    if tp in (int, bool) or tp is float:
        if tp is int and not -(1 << 63) <= out < (1 << 63):
            return Observation("other", "int", message="an int too large to compare")
        vals = torch.tensor(float(out), dtype=torch.float64) if tp is float else torch.tensor(int(out), dtype=torch.int64)
        return Observation("scalar", tp.__name__, tp.__name__, (), vals, message=repr(out))
    if tp is tuple and depth == 0 and len(out) <= MAX_ITEMS:
        return Observation("tuple", "tuple", message=f"a tuple of {len(out)}",
                           items=[observe_value(x, depth + 1) for x in out])
    if tp is dict and depth == 0 and len(out) <= MAX_ITEMS and all(type(k) is str and len(k) <= 100 for k in out):
        return _observe_dict(out)
    return Observation("other", _qualname(tp), message=_short_repr(out))


def _values_from_json(d: dict, kind: str, dtype: str, shape: tuple) -> torch.Tensor:
    """The stored numbers of an "ndarray"/"scalar" observation (float64 or int64), strictly."""
    n = math.prod(shape)
    if n > MAX_ELEMENTS:
        raise ValueError("array too large")
    floating = dtype.startswith("float")
    raw = base64.b64decode(d.get("data", ""), validate=True)
    if len(raw) != 8 * n:
        raise ValueError("data does not match the shape")
    store = torch.float64 if floating else torch.int64
    return torch.frombuffer(bytearray(raw), dtype=store).reshape(shape) if n else torch.zeros(shape, dtype=store)


def _observation_from_json(d: dict, depth: int) -> "Observation | None":
    """The new kinds ("ndarray", "scalar", "tuple"); None for the kinds Observation.from_json knows."""
    if d.get("kind") == "dict":
        return _dict_observation_from_json(d, depth)
    kind = d.get("kind")
    if kind not in ("ndarray", "scalar", "tuple"):
        return None
    shape = d.get("shape", [])
    if (not isinstance(shape, list) or len(shape) > 8
            or not all(isinstance(s, int) and 0 <= s <= MAX_ELEMENTS for s in shape)):
        raise ValueError("bad shape")
    shape = tuple(shape)
    strings = [d.get(k, "") for k in ("type", "dtype", "message")]
    if not all(isinstance(s, str) and len(s) <= 4000 for s in strings):
        raise ValueError("bad strings")
    tp, dtype, message = strings
    if kind == "tuple":
        items = d.get("items")
        if depth > 0 or not isinstance(items, list) or len(items) > MAX_ITEMS:
            raise ValueError("bad tuple")
        return Observation("tuple", "tuple", message=message, items=[
            Observation.from_json(x, depth + 1) for x in items])
    if kind == "ndarray":
        if tp != "numpy.ndarray" or dtype not in NP_DTYPES:
            raise ValueError("bad array type")
    elif tp not in ("int", "float", "bool") or dtype != tp or shape != ():
        raise ValueError("bad scalar")
    return Observation(kind, tp, dtype, shape, _values_from_json(d, kind, dtype, shape), message)


def observation_value(obs: Observation):
    """The Python value an observation stands for (tensor, NumPy array, number, tuple).

    Raises GradingError for kinds that hold no value (it raised, it is missing or refused, or it
    returned something that is not a tensor, an array, a number or a tuple).
    """
    if obs.kind == "tensor":
        dtype = getattr(torch, obs.dtype.replace("torch.", ""), None)
        if not isinstance(dtype, torch.dtype):
            raise GradingError(f"returned a tensor of an unsupported dtype {obs.dtype}")
        return obs.values.to(dtype)
    if obs.kind == "ndarray":
        return obs.values.numpy().astype(obs.dtype)
    if obs.kind == "scalar":
        return {"int": int, "float": float, "bool": bool}[obs.type](obs.values.item())
    if obs.kind == "tuple":
        return tuple(observation_value(x) for x in obs.items)
    if obs.kind == "dict":
        return {k: observation_value(x) for k, x in zip(json.loads(obs.message), obs.items)}
    if obs.kind == "error":
        raise GradingError(f"raised {obs.message}")
    if obs.kind in ("missing", "refused"):
        raise GradingError(obs.message)
    raise GradingError(f"returned {obs.type or 'something'} ({obs.message})")


# -- comparing with the reference ------------------------------------------------------------

@dataclasses.dataclass
class Raised:
    """The reference raised ValueError on this input: the student's function must raise it too."""
    exc: BaseException

    @property
    def name(self) -> str:
        return type(self.exc).__name__


def _exception_names(exc: BaseException) -> tuple:
    return tuple(_qualname(c) for c in type(exc).__mro__ if c is not object)[:16]


def _kind_words(obs: Observation) -> str:
    if obs.kind == "dict":
        return f"a dict with keys {json.loads(obs.message)}"
    if obs.kind == "tuple":
        return f"a tuple of {len(obs.items)}"
    if obs.kind == "scalar":
        return f"{obs.type} {obs.message}"
    if obs.kind in ("tensor", "ndarray"):
        return f"a {'NumPy array' if obs.kind == 'ndarray' else 'tensor'} of dtype {obs.dtype}, shape {tuple(obs.shape)}"
    return f"{obs.type or 'something'} ({obs.message})"


def compare_value(got: Observation, expected, *, what: str, rtol=None, atol=None) -> str | None:
    """Like ``compare`` for any reference output: tensors, NumPy arrays, numbers, tuples, Raised."""
    if isinstance(expected, Raised):
        if got.kind == "error":
            if _qualname(type(expected.exc)) in got.mro:
                return None
            return (f"{what} raised {got.message}, but the reference raises {expected.name} for this input "
                    f"({expected.exc}); raise {expected.name}")
        if got.kind in ("missing", "refused"):
            return got.message
        return (f"{what} returned {_kind_words(got)}, but this input is not valid: the reference raises "
                f"{expected.name} ({expected.exc}). Check the input and raise {expected.name}")
    if type(expected) is torch.Tensor:
        return compare(got, expected, what=what, rtol=rtol, atol=atol)
    if got.kind == "error":
        return f"{what} raised {got.message}"
    if got.kind in ("missing", "refused"):
        return got.message
    if type(expected) is dict:
        return _compare_dict(got, expected, what=what, rtol=rtol, atol=atol)
    if type(expected) is tuple:
        if got.kind != "tuple":
            return f"{what} returned {_kind_words(got)}, expected a tuple of {len(expected)} (return a, b)"
        if len(got.items) != len(expected):
            return f"{what} returned a tuple of {len(got.items)}, expected a tuple of {len(expected)}"
        for i, (g, e) in enumerate(zip(got.items, expected)):
            why = compare_value(g, e, what=f"{what}: item {i} of the returned tuple", rtol=rtol, atol=atol)
            if why:
                return why
        return None
    if type(expected) is np.ndarray:
        return _compare_array(got, expected, what=what, rtol=rtol, atol=atol)
    if type(expected) in (int, float, bool):
        name = type(expected).__name__
        if got.kind != "scalar" or got.type != name:
            return f"{what} returned {_kind_words(got)}, expected exactly a Python {name}" + (
                " (convert with int(...))" if name == "int" else "")
        g = got.values.item()
        if name == "float":
            r, a = _tolerance("torch.float64", rtol, atol)
            if math.isclose(g, expected, rel_tol=r, abs_tol=a):
                return None
        elif g == int(expected):
            return None
        return f"{what} returned {_fmt(g) if name == 'float' else g}, expected {_fmt(expected) if name == 'float' else expected}"
    raise TypeError(f"the reference returned {type(expected).__name__}, which grading cannot compare")


def _compare_array(got: Observation, expected: np.ndarray, *, what: str, rtol=None, atol=None) -> str | None:
    if got.kind != "ndarray":
        return (f"{what} returned {_kind_words(got)}, expected exactly a numpy.ndarray "
                f"(type(out) is np.ndarray; tensors, lists and array subclasses do not count)")
    if tuple(got.shape) != tuple(expected.shape):
        return f"{what} has shape {tuple(got.shape)} but the reference gives shape {tuple(expected.shape)}"
    if got.dtype != str(expected.dtype):
        return f"{what} has dtype {got.dtype} but the reference gives {expected.dtype} (keep the input's dtype)"
    if expected.dtype.kind != "f":                            # integers and booleans: exactly equal
        exp = torch.from_numpy(expected.astype(np.int64))
        bad = got.values != exp
        if not bool(bad.any()):
            return None
        first = tuple(int(i) for i in torch.nonzero(bad)[0]) if exp.ndim else ()
        at = f" (first at index {first})" if exp.ndim else ""
        return (f"{what} does not match: {int(bad.sum())} of {exp.numel()} values differ{at}: expected "
                f"{int(exp[first])}, got {int(got.values[first])} (integers must be exactly equal)")
    rt, at = _tolerance("torch.float64" if expected.dtype == np.float64 else "torch.float32", rtol, atol)
    exp = torch.from_numpy(expected.astype(np.float64))
    as_tensor = Observation("tensor", "torch.Tensor", "torch.float64", got.shape, got.values)
    return compare(as_tensor, exp, what=what, rtol=rt, atol=at)


# -- invariants of random transforms ---------------------------------------------------------

MIN_SURVIVOR = 9                 # objects with this many pixels away from the border survive a warp
SURVIVOR_MARGIN = 6              # ... "away": at least this many pixels from the image border
FOLLOW_AGREEMENT = 0.8           # share of inner object pixels whose grey level names their own label
# (calibrated: comp448.augment.elastic_deform, sigma 3 and 6 on 32x32 with 4 objects, never below 0.84 in
#  1500 draws; labels left unwarped or warped with a second draw pass a sigma-6 draw about 1 time in 10)


def _pair(out, args) -> str | None:
    if type(out) is not tuple or len(out) != 2 or not all(type(x) is np.ndarray for x in out):
        return "it must return a tuple (image, labels) of two NumPy arrays"
    return None


def _shapes(out, args) -> str | None:
    for i, name in enumerate(("image", "labels")):
        if out[i].shape != args[i].shape:
            return f"the {name} has shape {out[i].shape}, expected the input's shape {args[i].shape}"
    return None


def _dtypes(out, args) -> str | None:
    for i, name in enumerate(("image", "labels")):
        if out[i].dtype != args[i].dtype:
            return f"the {name} has dtype {out[i].dtype}, expected the input's dtype {args[i].dtype}"
    return None


def _labels_subset(out, args) -> str | None:
    new = sorted(set(np.unique(out[1]).tolist()) - set(np.unique(args[1]).tolist()))
    if new:
        return (f"the labels contain {new[:5]}, values that are not in the input labels (interpolate labels "
                f"with order=0, nearest neighbour, never blend instance ids)")
    return None


def _objects_survive(out, args) -> str | None:
    """Objects with >= MIN_SURVIVOR pixels at least SURVIVOR_MARGIN from the border are still there.

    (A warp may push an object at the border out of the frame; one in the middle must stay.)
    """
    m = SURVIVOR_MARGIN
    inner = args[1][m:-m, m:-m] if min(args[1].shape) > 2 * m else args[1][:0, :0]
    ids, counts = np.unique(inner, return_counts=True)
    lost = [int(k) for k, c in zip(ids, counts) if k != 0 and c >= MIN_SURVIVOR and not np.any(out[1] == k)]
    if lost:
        return f"objects {lost[:5]} of the input labels are gone after a moderate deformation"
    return None


def _labels_follow_image(out, args) -> str | None:
    image_in, lab_in = args[0], args[1]
    if out[0].ndim != 3 or out[0].shape[1:] != out[1].shape:
        return f"the image {out[0].shape} and the labels {out[1].shape} do not fit together ((C, H, W) and (H, W))"
    ids = [int(k) for k in np.unique(lab_in)]
    levels = np.array([np.median(image_in[0][lab_in == k]) for k in ids])                 # (K,)
    if len(ids) > 1 and np.min(np.diff(np.sort(levels))) < 0.05:
        raise ValueError("labels_follow_image needs an image painted from the labels "
                         "(grading.image(..., paint='labels'))")
    if len(ids) < 2:
        return None
    from scipy import ndimage
    named = np.asarray(ids)[np.abs(out[0][0][..., None] - levels).argmin(-1)]           # (H, W)
    lab = out[1].astype(np.int64)
    # inner object pixels: the whole 5x5 neighbourhood has one label (interpolation blurs only edges)
    flat = ndimage.maximum_filter(lab, 5, mode="nearest") == ndimage.minimum_filter(lab, 5, mode="nearest")
    objects = flat & (lab != 0)
    if not objects.any():
        return None
    agree = float(np.mean(named[objects] == lab[objects]))
    if agree < FOLLOW_AGREEMENT:
        return (f"the labels do not follow the image: on only {agree:.0%} of the inner object pixels does the image "
                f"show the object the labels name there (transform the image and the labels with the same "
                f"random draw)")
    return None


INVARIANTS = {"pair": _pair, "shapes": _shapes, "dtypes": _dtypes, "labels_subset": _labels_subset,
              "objects_survive": _objects_survive, "labels_follow_image": _labels_follow_image}
# f(image, labels, ...) -> (image, labels) with the same shapes: flips, rotations, warps, elastic
JOINT_WARP_INVARIANTS = ("pair", "shapes", "dtypes", "labels_subset", "objects_survive", "labels_follow_image")


def _check_invariants_on(name: str, invariants, case: Case, got: Observation) -> str | None:
    what = f"{name} on {case.describe()}"
    if got.kind in ("missing", "refused"):
        return got.message
    try:
        out = observation_value(got)
    except GradingError as exc:
        hint = f"; {_pair(None, case.args)}" if got.kind == "other" else ""
        return f"{what} {exc}{hint}"
    for inv in ("pair",) + tuple(i for i in invariants if i != "pair"):   # all of them need the pair
        why = INVARIANTS[inv](out, case.args)
        if why:
            return f"{what}: {why}"
    return None


@dataclasses.dataclass(frozen=True)
class Invariants:
    """A "reference" for ``check_function`` that is a list of properties, for random functions.

    ``grading.check_function("elastic_deform", grading.Invariants(grading.JOINT_WARP_INVARIANTS,
    reference="comp448.augment.elastic_deform"), cases)`` is ``check_invariants(...)``: the outputs
    are checked against the properties named (see ``INVARIANTS``), not against a reference output;
    ``reference`` (optional) is only used to refuse a function that is or calls it.
    """
    names: tuple
    reference: str | None = None

    def __init__(self, names, reference: str | None = None):
        names = (names,) if isinstance(names, str) else tuple(names)
        unknown = [n for n in names if n not in INVARIANTS]
        if not names or unknown:
            raise ValueError(f"invariants must be names from {sorted(INVARIANTS)}, got {list(names)}")
        if reference is not None and not isinstance(reference, str):
            raise TypeError(f"reference must be a dotted name or None, got {type(reference).__name__}")
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "reference", reference)


def check_invariants(name: str, invariants, cases: Cases, *, reference: str | None = None,
                     namespace: dict | None = None) -> None:
    """Check properties that must hold for every output of a random function (no reference output).

    ``invariants``: names from ``INVARIANTS`` (e.g. ``grading.JOINT_WARP_INVARIANTS``), each a
    property of ``(output, inputs)``. ``reference``: optional dotted name; a function that is or
    calls it is refused (as in ``check_function``). The modes are those of ``check_function``:
    record mode only records the outputs; verify mode regenerates the secret inputs and decides
    the invariants here, in the grader's process, from the recorded outputs.
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise TypeError(f"name must be the name of the student's function as a string, got {name!r}")
    if not isinstance(cases, Cases):
        raise TypeError(f"cases must come from grading.cases(...), got {type(cases).__name__}")
    invariants = tuple(invariants) if not isinstance(invariants, str) else (invariants,)
    unknown = [i for i in invariants if i not in INVARIANTS]
    if not invariants or unknown:
        raise ValueError(f"invariants must be names from {sorted(INVARIANTS)}, got {list(invariants)}")
    if reference is not None and not isinstance(reference, str):
        raise TypeError(f"reference must be a dotted name or None, got {type(reference).__name__}")
    key = check_key(name, f"invariants:{','.join(invariants)}:{reference}", cases, None)
    if _VERIFY is not None:
        return _VERIFY.check_invariants(key, name, invariants, cases, reference)
    ns = namespace if namespace is not None else sys._getframe(1).f_globals
    if os.environ.get(RECORD_ENV):
        return _record(key, name, cases, None, ns)
    fn, missing = _lookup(name, ns)
    if missing is not None:
        raise GradingError(missing.message)
    index = _index_for(reference) if reference else None
    why = refusal(fn, index) if index else None
    if why:
        raise GradingError(f"{name} is refused: {why}. Write your own implementation; the reference "
                           f"is not available when your notebook is graded.")
    generated = cases.generate(PUBLIC_SEED)
    for case in generated:
        with (tripwires(index) if index else contextlib.nullcontext(None)) as watch:
            got = _evaluate(fn, case, None, PUBLIC_SEED, pause=watch.paused if watch else None)
        if watch is not None and watch.calls:
            raise GradingError(f"{name} calls {watch.calls[0]} (detected while the test ran). Write your own "
                               f"implementation; the reference is not available when your notebook is graded.")
        why = _check_invariants_on(name, invariants, case, got)
        if why:
            raise GradingError(why)
    print(f"✓ {name}: {', '.join(invariants)} hold on {len(generated)} input{'s' * (len(generated) != 1)}")


def _verify_invariants(self, key, name, invariants, cases, reference) -> None:
    """VerifyContext.check_invariants: decide the invariants from the recorded outputs."""
    self._refuse_copy(name)
    observed = self._recorded(key, name)
    generated = cases.generate(self.seed)
    for case in generated:
        got = observed[case.index] if case.index < len(observed) else None
        if got is None:
            raise GradingError(f"no output of {name} was recorded for {case.describe()}")
        why = _check_invariants_on(name, invariants, case, got)
        if why:
            raise GradingError(why)
    print(f"✓ {name}: {', '.join(invariants)} hold on {len(generated)} secret input"
          f"{'s' * (len(generated) != 1)}")


VerifyContext.check_invariants = _verify_invariants


# -- which functions identify a reference -----------------------------------------------------

def _index_for(reference) -> "_ReferenceIndex":
    """The reference index for refusals: a comp448 subpackage, or the one outside function itself.

    A reference outside comp448 (``torch.nn.functional.conv_transpose2d``) indexes only that
    function (its identity, and its bytecode if it is Python code), never its package: using
    torch is allowed, calling the very function the exercise asks for is not.
    """
    module = reference_module(reference)
    if module == "comp448" or module.startswith("comp448."):
        return _ReferenceIndex([module])
    return _ReferenceIndex.single(_reference_name(reference))


def _single_index(cls, path: str) -> "_ReferenceIndex":
    index = cls.__new__(cls)
    index.module_names, index.modules, index.files = [], [], set()
    index.functions, index.fingerprints = {}, {}
    obj = _resolve(path)
    index.functions[id(obj)] = (obj, path)
    if isinstance(obj, types.FunctionType):
        for c in _code_objects(obj.__code__):
            fp = _code_fingerprint(c)
            if fp:
                index.fingerprints.setdefault(fp, path)
    return index


_ReferenceIndex.single = classmethod(_single_index)


def _used_names(sources, defs: dict, aliases: dict) -> dict:
    """{name: every global/attribute name it uses}, for each top-level function and binding.

    For a function: the names its code (and the helpers it calls) uses. Unlike ``__names__`` its
    own name is not included unless it calls itself, so ``forbid=("torch.nn.functional.max_unpool2d",)``
    does not refuse a student function that is merely *named* max_unpool2d. A top-level binding
    that is not a ``def`` (``f = F.max_unpool2d``, ``f = lambda ...``, ``from m import g as f``) uses
    the names of its right-hand side or import, so binding the forbidden function is caught too.
    """
    bindings: dict[str, set] = {}
    for src in sources:
        try:
            tree = ast.parse(_to_python(src))
        except (SyntaxError, ValueError):
            continue
        for node in tree.body:
            if isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    bindings.setdefault(alias.asname or alias.name, set()).add(alias.name)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    bindings.setdefault(alias.asname or alias.name.split(".")[0], set()).update(
                        alias.name.split("."))
            elif isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                used = {n.id for n in ast.walk(node.value) if isinstance(n, ast.Name)}
                used |= {n.attr for n in ast.walk(node.value) if isinstance(n, ast.Attribute)}
                for t in targets:
                    if isinstance(t, ast.Name):
                        bindings.setdefault(t.id, set()).update(used)

    def closure(start: str, first) -> set:
        seen, todo = set(), list(first)
        while todo:
            n = todo.pop()
            if n in seen:
                continue
            seen.add(n)
            if n in aliases:
                todo.append(aliases[n])
            if n in defs and n != start:
                todo.extend(_names_in(defs[n]))
            elif n not in defs and n != start:
                todo.extend(bindings.get(n, ()))
        return seen

    out = {fname: closure(fname, _names_in(code)) for fname, code in defs.items()}
    for bound, used in bindings.items():
        if bound not in out:
            out[bound] = closure(bound, used)
    return out


# ----------------------------------------------------------------------------- containers, callables, scores
#
# Inputs a function of the lecture takes besides tensors and arrays: a dict of named task losses
# (``multitask_loss``), a list of side outputs and a loss function (``deep_supervision_loss``), a
# 1D array of arc positions (``fourier_coefficients``). And ``Score``: a "reference" that is a
# quality bar, for a trained model, decided in the grader's process from the recorded predictions.

def _loss_mse(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """mean (sigmoid(z) - y)^2: a loss_fn input (``grading.loss_fn("mse")``)."""
    return ((torch.sigmoid(logits) - target) ** 2).mean()


def _loss_bce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """mean softplus(z) - y z (binary cross entropy from logits): ``grading.loss_fn("bce")``."""
    return (torch.nn.functional.softplus(logits) - target * logits).mean()


def _loss_soft_dice(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 - (2 sum p y + 1) / (sum p + sum y + 1) over the whole batch: ``grading.loss_fn("soft_dice")``."""
    p = torch.sigmoid(logits)
    return 1 - (2 * (p * target).sum() + 1) / (p.sum() + target.sum() + 1)


LOSS_FNS = {"mse": _loss_mse, "bce": _loss_bce, "soft_dice": _loss_soft_dice}


@dataclasses.dataclass(frozen=True)
class ExtraSpec(ValueSpec):
    """Inputs that hold other inputs or are not arrays: dicts, lists, numbers, loss functions,
    arc positions, nuclei images with their ground truth. Passed positionally like every spec."""

    def sample(self, gen: torch.Generator):
        p = dict(self.params)
        kind = self.kind
        if kind == "dict":                                    # items drawn in the order given
            return {k: (v.sample(gen) if isinstance(v, TensorSpec) else v) for k, v in p["items"]}
        if kind == "list":
            return [v.sample(gen) if isinstance(v, TensorSpec) else v for v in p["items"]]
        if kind == "callable":
            return LOSS_FNS[p["name"]]
        if kind == "nuclei":
            return _nuclei_batch(int(torch.randint(0, 1 << 31, (1,), generator=gen)), self.shape, p)
        rng_ = np.random.default_rng(int(torch.randint(0, 1 << 62, (1,), generator=gen)))
        if kind == "number":
            return float(p["lo"] + (p["hi"] - p["lo"]) * rng_.random())
        if kind == "array":
            return (p["lo"] + (p["hi"] - p["lo"]) * rng_.random(self.shape)).astype(self.dtype)
        if kind == "arc":                                     # 0 = l_0 < l_1 < ... < l_{T-1} < L
            gaps = rng_.uniform(0.2, 1.0, self.shape[0] + 1)
            gaps *= p["L"] / gaps.sum()
            return np.concatenate([[0.0], np.cumsum(gaps[:-2])]).astype(self.dtype)
        raise ValueError(f"unknown input kind {kind!r}")   # pragma: no cover - built below

    def link(self, value, named: dict):
        return value


def _nuclei_batch(seed: int, shape, p: dict) -> torch.Tensor:
    """``(B, 1, H, W)`` float32 nuclei images of ``comp448.data.SegmentationDataset``; their
    ground-truth masks ride along as the attribute ``_comp448_truth`` (never passed to the student)."""
    from comp448.data import SegmentationDataset
    B, _, H, _ = shape
    ds = SegmentationDataset("nuclei", B, size=H, seed=seed, n_objects=p["n_objects"], touching=p["touching"],
                             progress=False)
    items = [ds[i] for i in range(B)]
    images = torch.stack([torch.as_tensor(it["image"]) for it in items]).float()          # (B, 1, H, W)
    images._comp448_truth = torch.stack([torch.as_tensor(it["mask"]) for it in items]).float() >= 0.5
    return images


def dict_of(**items) -> ExtraSpec:
    """A dict input, e.g. ``dict_of(seg=logits(), inner=weights(), contour=number(0, 2))``: each
    value is drawn from its spec (in the order given), other values are used as they are."""
    for k, v in items.items():
        if not isinstance(v, (TensorSpec, int, float, str, bool, type(None))):
            raise TypeError(f"dict_of({k}=...) must be an input spec or a plain value, got {type(v).__name__}")
    return ExtraSpec("dict", (), "none", (("items", tuple(items.items())),))


def list_of(*items) -> ExtraSpec:
    """A list input, e.g. the side outputs ``list_of(logits(2, 1, 8, 8), logits(2, 1, 4, 4))``."""
    for i, v in enumerate(items):
        if not isinstance(v, (TensorSpec, int, float, str, bool, type(None))):
            raise TypeError(f"list_of item {i} must be an input spec or a plain value, got {type(v).__name__}")
    return ExtraSpec("list", (), "none", (("items", tuple(items)),))


def number(lo: float = 0.0, hi: float = 1.0) -> ExtraSpec:
    """A Python float, uniform in [lo, hi)."""
    check_number("lo", lo)
    check_number("hi", hi, lo=lo)
    return ExtraSpec("number", (), "float64", (("lo", float(lo)), ("hi", float(hi))))


def array(*shape, lo: float = 0.0, hi: float = 1.0, dtype: str = "float64") -> ExtraSpec:
    """A NumPy float array, uniform in [lo, hi) (e.g. samples xi of a function along a contour)."""
    check_number("lo", lo)
    check_number("hi", hi, lo=lo)
    return ExtraSpec("array", _shape(shape), _np_dtype(dtype, ("float32", "float64")),
                     (("lo", float(lo)), ("hi", float(hi))))


def arc_positions(T: int, *, L: float) -> ExtraSpec:
    """``(T,)`` float64 positions along a closed curve of length ``L``: ``l[0] = 0``, strictly
    increasing, ``l[-1] < L``, random gaps (pass the same ``L`` to the function as an option)."""
    check_number("T", T, lo=1, integer=True)
    check_number("L", L, lo=0.0, lo_open=True)
    return ExtraSpec("arc", (int(T),), "float64", (("L", float(L)),))


def loss_fn(name: str) -> ExtraSpec:
    """A loss function ``f(logits, target) -> scalar tensor`` as an input: one of ``LOSS_FNS``
    ("mse", "bce", "soft_dice"), defined here so that it exists in the grading sandbox too."""
    if name not in LOSS_FNS:
        raise ValueError(f"name must be one of {sorted(LOSS_FNS)}, got {name!r}")
    return ExtraSpec("callable", (), "none", (("name", name),))


def nuclei(B: int, size: int = 64, *, n_objects: int = 12, touching: float = 0.5) -> ExtraSpec:
    """``(B, 1, size, size)`` float32 nuclei images (``comp448.data.SegmentationDataset("nuclei")``,
    a seed drawn from the test's seed), for ``Score``: the grader knows their ground truth."""
    check_number("B", B, lo=1, integer=True)
    check_number("size", size, lo=8, integer=True)
    check_number("n_objects", n_objects, lo=1, integer=True)
    check_number("touching", touching, lo=0.0, hi=1.0)
    return ExtraSpec("nuclei", (int(B), 1, int(size), int(size)), "float32",
                     (("n_objects", int(n_objects)), ("touching", float(touching))))


def _container_snapshot(a):
    if type(a) is dict:
        return (dict, tuple(a.keys()), [_snapshot(v) for v in a.values()])
    return (type(a), len(a), [_snapshot(v) for v in a])


def _container_unchanged(a, before) -> bool:
    tp, shape, items = before
    if type(a) is not tp:
        return False
    if tp is dict:
        return tuple(a.keys()) == shape and all(
            b is None or _unchanged(v, b) for v, b in zip(a.values(), items))
    return len(a) == shape and all(b is None or _unchanged(v, b) for v, b in zip(a, items))


def _describe_extra(a) -> str:
    if type(a) is dict:
        return "dict {" + ", ".join(f"{k!r}: {_describe_value(v)}" for k, v in a.items()) + "}"
    if type(a) in (list, tuple):
        return f"{type(a).__name__} [" + ", ".join(_describe_value(v) for v in a) + "]"
    if isinstance(a, (float, int)):
        return repr(a)
    for key, fn in LOSS_FNS.items():
        if a is fn:
            return f"loss_fn {key!r} ({fn.__doc__.split(':')[0]})"
    return getattr(a, "__name__", type(a).__name__)


@dataclasses.dataclass(frozen=True)
class Score:
    """A "reference" for ``check_function`` that is a quality bar instead of a function.

    ``grading.check_function("segment", grading.Score(at_least=0.7), grading.cases(images=grading.nuclei(8)))``
    calls the student's ``segment(images)`` (images from ``grading.nuclei``) and requires its
    output, a tensor shaped like ``images`` that is >= 0.5 on foreground pixels (probabilities or a
    0/1 mask), to reach a mean per-image Dice of at least ``at_least`` against the ground truth that
    came with the images, over all images of all cases. In record mode only the predictions are
    recorded; the Dice is computed in verify mode, in the grader's process. Dice of two empty masks is 1.
    """
    at_least: float = 0.7
    metric: str = "dice"

    def __post_init__(self):
        check_number("at_least", self.at_least, lo=0.0, hi=1.0)
        if self.metric != "dice":
            raise ValueError(f"metric must be 'dice', got {self.metric!r}")


def _dice_per_image(pred: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Dice of two boolean (B, ...) masks per image; 1 where both are empty."""
    dims = tuple(range(1, pred.ndim))
    inter = (pred & truth).sum(dims).double()
    total = pred.sum(dims).double() + truth.sum(dims).double()
    return torch.where(total > 0, 2 * inter / total.clamp_min(1), torch.ones_like(total))


def _score_cases(name: str, score: Score, generated, observed) -> tuple[float, int]:
    """Mean Dice of the recorded predictions over all cases; raises GradingError on bad outputs."""
    dice = []
    for case, got in zip(generated, observed):
        what = f"{name} on {case.describe()}"
        truths = [a._comp448_truth for a in case.args if hasattr(a, "_comp448_truth")]
        if len(truths) != 1:
            raise ValueError("grading.Score needs exactly one grading.nuclei(...) input per case")
        truth = truths[0]
        if got is None:
            raise GradingError(f"no output of {name} was recorded for {case.describe()}")
        if got.kind in ("missing", "refused"):
            raise GradingError(got.message)
        if got.kind == "error":
            raise GradingError(f"{what} raised {got.message}")
        if got.kind != "tensor":
            raise GradingError(f"{what} returned {_kind_words(got)}, expected exactly a torch.Tensor of "
                               f"probabilities shaped like the images {tuple(truth.shape)}")
        if tuple(got.shape) != tuple(truth.shape):
            raise GradingError(f"{what} has shape {tuple(got.shape)}, expected the images' shape "
                               f"{tuple(truth.shape)} (one probability per pixel)")
        if not bool(torch.isfinite(got.values).all()):
            raise GradingError(f"{what} contains NaN or infinite values")
        dice.append(_dice_per_image(got.values >= 0.5, truth))
    mean = float(torch.cat(dice).mean()) if dice else 0.0
    n = sum(len(d) for d in dice)
    if mean < score.at_least:
        raise GradingError(f"{name} reaches a mean Dice of {mean:.3f} on {n} images the grader chose "
                           f"(pixels >= 0.5 are foreground); at least {score.at_least:g} is needed")
    return mean, n


def check_score(name: str, score: Score, cases: Cases, *, namespace: dict | None = None) -> None:
    """``check_function`` with a ``Score``: the student's predictions must reach the quality bar.

    Direct mode computes the score here on the public inputs; record mode only records the
    predictions on the secret inputs; verify mode regenerates the secret inputs and their ground
    truth and decides, in the grader's process.
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise TypeError(f"name must be the name of the student's function as a string, got {name!r}")
    if not isinstance(score, Score):
        raise TypeError(f"score must be a grading.Score, got {type(score).__name__}")
    if not isinstance(cases, Cases):
        raise TypeError(f"cases must come from grading.cases(...), got {type(cases).__name__}")
    key = check_key(name, f"score:{score!r}", cases, None)
    if _VERIFY is not None:
        return _VERIFY.check_score(key, name, score, cases)
    ns = namespace if namespace is not None else sys._getframe(1).f_globals
    if os.environ.get(RECORD_ENV):
        return _record(key, name, cases, None, ns)
    fn, missing = _lookup(name, ns)
    if missing is not None:
        raise GradingError(missing.message)
    generated = cases.generate(PUBLIC_SEED)
    observed = [_evaluate(fn, case, None, PUBLIC_SEED) for case in generated]
    mean, n = _score_cases(name, score, generated, observed)
    print(f"✓ {name}: mean Dice {mean:.3f} on {n} images (at least {score.at_least:g} needed)")


def _verify_score(self, key, name, score, cases) -> None:
    """VerifyContext.check_score: the Dice of the recorded predictions, computed here."""
    self._refuse_copy(name)
    observed = self._recorded(key, name)
    generated = cases.generate(self.seed)
    got = [observed[c.index] if c.index < len(observed) else None for c in generated]
    mean, n = _score_cases(name, score, generated, got)
    print(f"✓ {name}: mean Dice {mean:.3f} on {n} secret images (at least {score.at_least:g} needed)")


VerifyContext.check_score = _verify_score

__all__ += ["dict_of", "list_of", "number", "array", "arc_positions", "loss_fn", "nuclei", "Score",
            "check_score", "LOSS_FNS"]


# -- dict outputs (a visualizer panel returns {"class_weight": ..., "weight": ...}) -------------

def _observe_dict(out: dict) -> Observation:
    """kind "dict": the keys (in order) as JSON in ``message``, one Observation per value in ``items``."""
    return Observation("dict", "dict", message=json.dumps(list(out)), items=[observe_value(v, 1) for v in out.values()])


def _dict_observation_from_json(d: dict, depth: int) -> Observation:
    items, message = d.get("items"), d.get("message", "")
    if depth > 0 or not isinstance(items, list) or len(items) > MAX_ITEMS or not isinstance(message, str):
        raise ValueError("bad dict")
    keys = json.loads(message)
    if (not isinstance(keys, list) or len(keys) != len(items) or len(set(keys)) != len(keys)
            or not all(isinstance(k, str) and len(k) <= 100 for k in keys)):
        raise ValueError("bad dict keys")
    return Observation("dict", "dict", message=message, items=[Observation.from_json(x, depth + 1) for x in items])


def _compare_dict(got: Observation, expected: dict, *, what: str, rtol=None, atol=None) -> str | None:
    """The same keys (any order), then every value as ``compare_value`` compares it."""
    if got.kind != "dict":
        return f"{what} returned {_kind_words(got)}, expected a dict with keys {list(expected)}"
    keys = json.loads(got.message)
    missing, extra = [k for k in expected if k not in keys], [k for k in keys if k not in expected]
    if missing or extra:
        return (f"{what} returned a dict with keys {keys}, expected the keys {list(expected)}"
                + (f" (missing {missing})" if missing else "") + (f" (unexpected {extra})" if extra else ""))
    for key, g in zip(keys, got.items):
        why = compare_value(g, expected[key], what=f"[{key!r}] of what {what} returned", rtol=rtol, atol=atol)
        if why:
            return why
    return None
