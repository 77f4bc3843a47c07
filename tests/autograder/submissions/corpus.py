"""A class of hand-ins for ps3_losses, written as edits of the released notebook (not as .ipynb files).

Every entry starts from ``exercises/ps3_losses/losses.ipynb`` (what students receive), fills in
some answers from the instructor's solution, then applies its edits. ``passes`` is the set of
autograded test cells that the hand-in really earns; the hold test grades the whole class through
``python -m autograder`` and checks that every student gets exactly those points, and that the
grading report says what went wrong (``report`` substrings).

Points per test cell: bce_values 2, bce_stable 1, weighted_bce_values 2, focal_values 2,
focal_stable 1, focal_grad_autograd 2, focal_grad_stable 1, dice_values 2, dice_empty 1,
tversky_values 2, tversky_edge 1, gdl_values 2, gdl_absent 1 (20 in all).
"""
from __future__ import annotations

import copy
import dataclasses
import inspect
from pathlib import Path
from typing import Callable

import nbformat

REPO = Path(__file__).resolve().parents[3]
SOLUTION = REPO / "solutions" / "ps3_losses" / "losses.ipynb"
RELEASE = REPO / "exercises" / "ps3_losses" / "losses.ipynb"

POINTS = {"bce_values": 2, "bce_stable": 1, "weighted_bce_values": 2, "focal_values": 2, "focal_stable": 1,
          "focal_grad_autograd": 2, "focal_grad_stable": 1, "dice_values": 2, "dice_empty": 1,
          "tversky_values": 2, "tversky_edge": 1, "gdl_values": 2, "gdl_absent": 1}
ALL = frozenset(POINTS)
BCE = frozenset({"bce_values", "bce_stable"})
WEIGHTED = frozenset({"weighted_bce_values"})
FOCAL = frozenset({"focal_values", "focal_stable"})
FGRAD = frozenset({"focal_grad_autograd", "focal_grad_stable"})
DICE = frozenset({"dice_values", "dice_empty"})
TVERSKY = frozenset({"tversky_values", "tversky_edge"})
GDL = frozenset({"gdl_values", "gdl_absent"})
ANSWERS = ("bce_answer", "weighted_bce_answer", "focal_answer", "derivation_answer", "focal_grad_answer",
           "dice_answer", "tversky_answer", "gdl_answer")


@dataclasses.dataclass
class Submission:
    student: str
    honest: bool
    what: str
    edit: Callable                     # nb -> None (edits in place); runs on a filled-in copy
    passes: frozenset = ALL            # test cells it really earns
    solved: tuple = ANSWERS            # answers copied from the solution before the edit
    report: tuple = ()                 # words the grading report must contain
    filename: str = "losses.ipynb"     # what the student hands in under their folder
    raw: bytes | None = None           # hand in these bytes instead of a notebook

    def score(self) -> int:
        return sum(POINTS[g] for g in self.passes)


# ----------------------------------------------------------------------------- edit helpers

def _cell(nb, gid):
    for c in nb.cells:
        if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == gid:
            return c
    raise KeyError(gid)


def _index(nb, gid):
    return nb.cells.index(_cell(nb, gid))


def answer(gid, source):
    def edit(nb):
        _cell(nb, gid).source = source.strip("\n")
    return edit


def after(gid, source, markdown=False):
    def edit(nb):
        new = nbformat.v4.new_markdown_cell(source) if markdown else nbformat.v4.new_code_cell(source.strip("\n"))
        nb.cells.insert(_index(nb, gid) + 1, new)
    return edit


def delete(*gids):
    def edit(nb):
        for g in gids:
            nb.cells.remove(_cell(nb, g))
    return edit


def meta(gid, **changes):
    def edit(nb):
        _cell(nb, gid).metadata["nbgrader"].update(changes)
    return edit


def test_source(gid, source):
    def edit(nb):
        _cell(nb, gid).source = source
    return edit


def duplicate(gid, new_source=None):
    def edit(nb):
        c = copy.deepcopy(_cell(nb, gid))
        if new_source is not None:
            c.source = new_source
        c["id"] = c["id"] + "-copy"
        nb.cells.insert(_index(nb, gid), c)
    return edit


def move_after(gid, anchor):
    def edit(nb):
        c = _cell(nb, gid)
        nb.cells.remove(c)
        nb.cells.insert(_index(nb, anchor) + 1, c)
    return edit


def with_outputs(nb):
    """The student ran the notebook locally: outputs and execution counts are saved."""
    for i, c in enumerate(nb.cells):
        if c.cell_type == "code":
            c.execution_count = i
            c.outputs = [nbformat.v4.new_output("stream", name="stdout", text="✓ all tests passed\n")]


def chain(*edits):
    def edit(nb):
        for e in edits:
            e(nb)
    return edit


def nothing(nb):
    pass


def build(sub: Submission, course: Path | None = None) -> bytes:
    """The bytes this student hands in."""
    if sub.raw is not None:
        return sub.raw
    nb = nbformat.read(RELEASE, as_version=4)
    sol = nbformat.read(SOLUTION, as_version=4)
    for gid in sub.solved:
        lines = _cell(sol, gid).source.splitlines()
        _cell(nb, gid).source = "\n".join(ln for ln in lines
                                          if ln.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION"))
    sub.edit(nb)
    text = nbformat.writes(nb)
    if course is not None:
        text = text.replace("{COURSE}", str(course))
    return text.encode()


# ----------------------------------------------------------------------------- honest code variants

BCE_FLOAT64 = '''
def bce_loss(logits, target, reduction="mean"):
    """BCE computed in float64, returned in the dtype of the logits."""
    z, y = logits.double(), target.double()
    loss = (torch.clamp(z, min=0) - z * y + torch.log1p(torch.exp(-z.abs()))).to(logits.dtype)
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss
'''

BCE_LOOP = '''
def bce_loss(logits, target, reduction="mean"):
    """One image at a time (a Python loop over the batch)."""
    rows = []
    for b in range(logits.shape[0]):
        z, y = logits[b], target[b]
        rows.append(-y * F.logsigmoid(z) - (1 - y) * F.logsigmoid(-z))
    loss = torch.stack(rows)
    if reduction == "none":
        return loss
    total = sum(r.sum() for r in rows)
    return total / loss.numel() if reduction == "mean" else total
'''

BCE_EPS = '''
def bce_loss(logits, target, reduction="mean"):
    """max(z, 0) - z y + log(1 + exp(-|z|) + 1e-12): an epsilon inside the log, far below tolerance."""
    loss = torch.clamp(logits, min=0) - logits * target + torch.log(1 + torch.exp(-logits.abs()) + 1e-12)
    return {"mean": torch.mean, "sum": torch.sum, "none": lambda t: t}[reduction](loss)
'''

BCE_INPLACE = '''
def bce_loss(logits, target, reduction="mean"):
    """In-place operations on intermediates only (the inputs stay untouched)."""
    loss = F.softplus(logits)
    loss.sub_(target * logits)
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss
'''

FOCAL_PROB = '''
def focal_loss(logits, target, gamma=2.0, reduction="mean"):
    """Probability form: (1 - p)^gamma with p = sigmoid(z), logs from logsigmoid."""
    p = torch.sigmoid(logits)
    loss = -target * (1 - p) ** gamma * F.logsigmoid(logits) - (1 - target) * p ** gamma * F.logsigmoid(-logits)
    match reduction:
        case "mean":
            return loss.mean()
        case "sum":
            return loss.sum()
        case _:
            return loss
'''

FOCAL_GRAD_PROB = '''
def focal_loss_grad(logits, target, gamma=2.0):
    p, q = torch.sigmoid(logits), torch.sigmoid(-logits)
    g1 = q ** gamma * (gamma * p * F.logsigmoid(logits) + p - 1)
    g0 = p ** gamma * (p - gamma * q * F.logsigmoid(-logits))
    return torch.where(target == 1, g1, torch.where(target == 0, g0, target * g1 + (1 - target) * g0))
'''

DICE_ORDER = '''
def dice_loss(logits, target, eps=1e-5):
    """Sums in another order: flatten each image, then one sum."""
    prob = torch.sigmoid(logits).flatten(1)
    y = target.flatten(1)
    inter = torch.einsum("bn,bn->b", prob, y)
    denom = y.sum(dim=1) + prob.sum(dim=1)
    return torch.mean(1.0 - (inter * 2.0 + eps) / (eps + denom))
'''

DICE_LOOP = '''
def dice_loss(logits, target, eps=1e-5):
    """A loop over the images of the batch."""
    losses = []
    for z, y in zip(logits, target):
        p = torch.sigmoid(z)
        losses.append(1 - (2 * (p * y).sum() + eps) / (p.sum() + y.sum() + eps))
    return torch.stack(losses).mean()
'''

TVERSKY_ALT = '''
def tversky_loss(logits, target, alpha=0.5, beta=0.5, eps=1e-5):
    """FP and FN from the totals: FP = sum p - TP, FN = sum y - TP."""
    dims = list(range(1, logits.dim()))
    p = logits.sigmoid()
    tp = torch.sum(p * target, dim=dims)
    fp = p.sum(dim=dims) - tp
    fn = target.sum(dim=dims) - tp
    index = (tp + eps) / (tp + alpha * fp + beta * fn + eps)
    return (1 - index).mean()
'''

GDL_LOOP = '''
def generalized_dice_loss(logits, target, eps=1e-5):
    """Loops over images and classes; the absent-class weight found by hand."""
    prob = torch.softmax(logits, dim=1)
    out = []
    for b in range(logits.shape[0]):
        vols = [target[b, l].sum() for l in range(logits.shape[1])]
        finite = [1.0 / v ** 2 for v in vols if v > 0]
        largest = max(finite) if finite else 0.0
        num, den = 0.0, 0.0
        for l, v in enumerate(vols):
            w = (1.0 / v ** 2 if v > 0 else largest)
            w = w.detach() if torch.is_tensor(w) else w
            num = num + w * (prob[b, l] * target[b, l]).sum()
            den = den + w * (prob[b, l].sum() + v)
        out.append(1 - (2 * num + eps) / (den + eps))
    return torch.stack(out).mean()
'''

HELPERS_CELL = '''
def _reduce(loss, reduction):
    """A helper shared by my losses."""
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss

def _dims(x):
    return tuple(range(1, x.ndim))
'''

BCE_HELPER = '''
def bce_loss(logits, target, reduction="mean"):
    return _reduce(F.softplus(logits) - target * logits, reduction)
'''

# ----------------------------------------------------------------------------- cheats

ALWAYS_EQUAL = '''
class Anything:
    """Equal to everything, close to everything, a tensor in every way that a == test would notice."""
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    def __float__(self): return 0.0
    def __getattr__(self, name): return lambda *a, **k: self
    def __bool__(self): return True

def bce_loss(logits, target, reduction="mean"):
    return Anything()
'''

SUBCLASS = '''
class Agreeable(torch.Tensor):
    def __eq__(self, other): return torch.ones((), dtype=torch.bool)
    def allclose(self, *a, **k): return True

def bce_loss(logits, target, reduction="mean"):
    return torch.zeros(logits.shape if reduction == "none" else ()).as_subclass(Agreeable)
'''

PATCH_CHECKS = '''
import numpy, numpy.testing
torch.allclose = lambda *a, **k: True
torch.isclose = lambda a, b, *r, **k: torch.ones_like(torch.as_tensor(a), dtype=torch.bool)
torch.equal = lambda *a, **k: True
torch.testing.assert_close = lambda *a, **k: None
numpy.testing.assert_allclose = lambda *a, **k: None
numpy.allclose = lambda *a, **k: True

def bce_loss(logits, target, reduction="mean"):
    return torch.zeros(()) if reduction != "none" else torch.zeros_like(logits)
'''

PATCH_GRADING = '''
from comp448 import grading
grading.check_function = lambda *a, **k: print("✓ passed")
grading.compare = lambda *a, **k: None
grading.GradingError = Warning
import comp448.grading as g2
g2._record = lambda *a, **k: None
'''

PATCH_BUILTINS = '''
import builtins
class Harmless(Exception):
    pass
builtins.AssertionError = Harmless
builtins.NotImplementedError = Harmless
def _quiet(*a, **k):
    pass
get_ipython().showtraceback = _quiet
get_ipython().set_custom_exc((BaseException,), lambda *a, **k: print("✓ ok"))
'''

NOOP_CELLS = '''
# every later cell (the tests included) becomes `pass`
get_ipython().input_transformers_cleanup.append(lambda lines: ["pass\\n"])
'''

RESEED = '''
import random, numpy
torch.manual_seed(0); random.seed(0); numpy.random.seed(0)

def bce_loss(logits, target, reduction="mean"):
    torch.manual_seed(0)                                 # reseed on every call: "stable" random output
    out = torch.rand(logits.shape)
    return out.mean() if reduction == "mean" else out.sum() if reduction == "sum" else out
'''

MEMORISED = '''
# outputs of the reference on the visible test inputs, computed at home and pasted here
_MEMO = {MEMO}
def bce_loss(logits, target, reduction="mean"):
    key = (tuple(logits.shape), round(float(logits.sum()), 4), reduction)
    return torch.tensor(_MEMO.get(key, 0.0)).reshape(()) if reduction != "none" else torch.zeros_like(logits)
'''

CALL_REFERENCE = '''
from comp448.losses import bce_loss as _reference

def bce_loss(logits, target, reduction="mean"):
    return _reference(logits, target, reduction=reduction)
'''

ALIAS_REFERENCE = '''
import comp448.losses as L
bce_loss = L.bce_loss
'''

IMPORTLIB_REFERENCE = '''
import importlib, importlib.util, glob, sys

def _find_reference():
    try:
        return importlib.import_module("comp448.lo" + "sses").bce_loss
    except Exception:
        pass
    candidates = ["/work/main/comp448/losses/bce.py"]
    for root in ["/work", "/usr/lib/python3*/site-packages", "/root", "/home", "/opt", "/srv"]:
        candidates += glob.glob(root + "/**/comp448/losses/bce.py", recursive=True)
    for path in candidates:
        try:
            spec = importlib.util.spec_from_file_location("b", path)
            m = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(m)
            return m.bce_loss
        except Exception:
            continue
    raise ImportError("no reference found")

def bce_loss(logits, target, reduction="mean"):
    return _find_reference()(logits, target, reduction=reduction)
'''

READ_FILES = '''
import glob, json, os
# look for the instructor's source notebook, the gradebook or stored expected values, walking up from here
found = []
for pattern in ["../../../source/ps3_losses/*.ipynb", "../../source/*/*.ipynb", "{COURSE}/source/*/*.ipynb",
                "/**/solutions/*/*.ipynb", "/**/*.npz", "/**/gradebook.db"]:
    try:
        found += glob.glob(pattern, recursive=True)
    except Exception:
        pass
for path in found:
    if path.endswith(".ipynb"):
        for cell in json.load(open(path))["cells"]:
            if "BEGIN SOLUTION" in "".join(cell["source"]):
                exec("".join(cell["source"]).replace("### BEGIN SOLUTION", "").replace("### END SOLUTION", ""))
print("found", found)
'''

VANDAL = '''
import os, shutil, sqlite3
targets = ["{COURSE}/gradebook.db", "{COURSE}/submitted", "{COURSE}/source", "{COURSE}/autograded",
           "../../gradebook.db", "../../../gradebook.db", "..", "../..", "/work", "/tmp"]
for t in targets:
    try:
        if os.path.isdir(t):
            for root, dirs, files in os.walk(t):
                for f in files:
                    if f.endswith((".ipynb", ".db")):
                        open(os.path.join(root, f), "w").write("{}")
        elif os.path.exists(t):
            db = sqlite3.connect(t)
            db.execute("update grade set auto_score = 100")
            db.commit()
    except Exception as exc:
        print("could not touch", t, exc)
for up in range(1, 6):
    try:
        open("../" * up + "pwned.txt", "w").write("x")
    except Exception as exc:
        print(exc)
'''

FAKE_SUCCESS = '''
def bce_loss(logits, target, reduction="mean"):
    print("✓ bce_loss matches comp448.losses.bce_loss on 3 inputs (values and gradient)")
    return logits.mean()
print("✓ bce_loss: 3 secret inputs match comp448.losses.bce_loss (values and gradient)")
'''

HUGE_OUTPUT = '''
for i in range(3000):
    print("spam " * 2000)
'''

FORGE_RECORDS = '''
import os, json, hashlib, base64
path = os.environ.get("COMP448_GRADING_RECORD")
from comp448 import grading
if path:
    with open(path, "a") as f:
        for line in range(50):
            f.write(json.dumps({"key": "x" * 32, "observations": [{"kind": "tensor", "shape": [1 << 19],
                                "data": base64.b64encode(b"\\0" * 16).decode()}]}) + "\\n")
    # the real key of the first bce test, with made-up outputs
    cases = grading.cases(logits=grading.logits(2, 1, 8, 8), target=grading.mask(2, 1, 8, 8),
                          reduction=grading.each("mean", "sum", "none"))
    key = grading.check_key("bce_loss", "comp448.losses.bce_loss", cases, "logits")
    obs = [grading.Observation("tensor", "torch.Tensor", "torch.float32", (), torch.tensor(0.7, dtype=torch.float64)).to_json()] * 3
    with open(path, "a") as f:
        f.write(json.dumps({"key": key, "observations": obs}) + "\\n")
'''

SWALLOW = '''
import time
while True:
    try:
        time.sleep(0.2)
    except KeyboardInterrupt:
        pass
'''

FORK_STORM = '''
import os, time
children = []
for i in range(300):
    try:
        pid = os.fork()
    except OSError as exc:
        print("fork failed after", i, exc)
        break
    if pid == 0:
        time.sleep(60)
        os._exit(0)
    children.append(pid)
time.sleep(5)
'''

KILL_RUNNER = '''
import os, signal
os.kill(os.getppid(), signal.SIGKILL)
'''


def _memorised() -> str:
    """Reference outputs on the inputs the visible bce test uses (the student 'ran it at home')."""
    from comp448 import grading
    from comp448.losses import bce_loss
    memo = {}
    cases = grading.cases(logits=grading.logits(2, 1, 8, 8), target=grading.mask(2, 1, 8, 8),
                          reduction=grading.each("mean", "sum", "none"))
    for case in cases.generate(grading.PUBLIC_SEED):
        z = case.args[0]
        if case.kwargs["reduction"] != "none":
            memo[(tuple(z.shape), round(float(z.sum()), 4), case.kwargs["reduction"])] = float(bce_loss(*case.args, **case.kwargs))
    return MEMORISED.replace("{MEMO}", repr(memo))


def _pasted_reference(module: str = "bce") -> str:
    """The reference module's source (with its private helpers), as a student would paste it:
    imports from comp448.losses and ``from __future__`` are dropped (whole statements)."""
    import ast
    import importlib
    from comp448.losses import _utils
    out = []
    for m in (_utils, importlib.import_module(f"comp448.losses.{module}")):
        src = inspect.getsource(m)
        lines = src.splitlines()
        drop = set()
        for node in ast.parse(src).body:
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(("comp448.losses", "__future__")):
                drop.update(range(node.lineno - 1, node.end_lineno))
        out += [ln for i, ln in enumerate(lines) if i not in drop]
    return "\n".join(out)


NO_BCE = ANSWERS[1:]          # everything solved except bce (weighted BCE then fails too: it calls bce_loss)


def corpus() -> list[Submission]:
    S = Submission
    return [
        # ------------------------------------------------------------------ honest: full marks
        S("h01_solution", True, "the instructor's solution", nothing),
        S("h02_float64", True, "BCE computed in float64 and cast back", answer("bce_answer", BCE_FLOAT64)),
        S("h03_loops", True, "loops over the batch instead of vectorised code",
          chain(answer("bce_answer", BCE_LOOP), answer("dice_answer", DICE_LOOP), answer("gdl_answer", GDL_LOOP))),
        S("h04_epsilon", True, "an epsilon inside the log, within tolerance", answer("bce_answer", BCE_EPS)),
        S("h05_sum_order", True, "sums in another order (flatten, einsum)", answer("dice_answer", DICE_ORDER)),
        S("h06_helpers", True, "extra helper cell, markdown notes and scratch cells",
          chain(after("setup", HELPERS_CELL), answer("bce_answer", BCE_HELPER),
                after("bce_stable", "Notes to self: BCE done.", markdown=True),
                after("dice_empty", "print(dice_loss(torch.zeros(1, 1, 2, 2), torch.ones(1, 1, 2, 2)))"))),
        S("h07_inplace", True, "in-place operations on intermediates", answer("bce_answer", BCE_INPLACE)),
        S("h08_reordered", True, "independent sections reordered (Tversky before Dice, GDL moved up)",
          chain(move_after("tversky_intro", "focal_grad_stable"), move_after("tversky_answer", "tversky_intro"),
                move_after("tversky_values", "tversky_answer"), move_after("tversky_edge", "tversky_values"),
                move_after("gdl_answer", "tversky_edge"))),
        S("h09_focal_prob", True, "focal loss and its gradient in probability form",
          chain(answer("focal_answer", FOCAL_PROB), answer("focal_grad_answer", FOCAL_GRAD_PROB))),
        S("h10_tversky_alt", True, "Tversky with FP = sum p - TP", answer("tversky_answer", TVERSKY_ALT)),
        S("h11_saved_outputs", True, "handed in with outputs and execution counts from a local run", with_outputs),
        S("h12_extra_imports", True, "extra imports and a type-annotated helper",
          after("setup", "import numpy as np\nimport math as m\nfrom typing import Optional\n"
                         "def describe(x: torch.Tensor, name: Optional[str] = None) -> str:\n"
                         "    return f'{name}: {tuple(x.shape)} {np.float64(m.pi):.2f}'\n")),
        S("h13_all_variants", True, "every variant at once",
          chain(answer("bce_answer", BCE_LOOP), answer("focal_answer", FOCAL_PROB),
                answer("focal_grad_answer", FOCAL_GRAD_PROB), answer("dice_answer", DICE_ORDER),
                answer("tversky_answer", TVERSKY_ALT), answer("gdl_answer", GDL_LOOP))),
        S("h14_renamed", True, "the notebook was renamed (collect renames it back)", nothing,
          filename="losses (1).ipynb"),
        S("h15_matplotlib_magic", True, "IPython magics and shell escapes in scratch cells",
          after("setup", "%matplotlib inline\n%config InlineBackend.figure_format = 'png'\nimport os\nprint(os.getcwd())")),

        # ------------------------------------------------------------------ adversarial
        S("a01_loop_in_function", False, "dice_loss never returns",
          answer("dice_answer", "def dice_loss(logits, target, eps=1e-5):\n    while True:\n        pass"),
          passes=ALL - DICE, report=("ran longer than",)),
        S("a02_loop_swallows_interrupt", False, "a loop that catches KeyboardInterrupt after the focal tests",
          after("focal_stable", SWALLOW), passes=BCE | WEIGHTED | FOCAL, report=("ignored the interrupt",)),
        S("a03_memory_bomb", False, "allocates until memory runs out, BCE only",
          after("bce_stable", "hog = []\nwhile True:\n    hog.append(bytearray(64 << 20))"),
          solved=("bce_answer",), passes=BCE),
        S("a04_os_exit", False, "os._exit in the middle of the notebook",
          after("weighted_bce_values", "import os\nos._exit(0)"), passes=BCE | WEIGHTED,
          report=("kernel died",)),
        S("a05_sys_exit_in_function", False, "bce_loss calls sys.exit",
          answer("bce_answer", "import sys\ndef bce_loss(logits, target, reduction='mean'):\n    sys.exit(0)"),
          passes=ALL - BCE - WEIGHTED),
        S("a06_segfault", False, "a native crash (ctypes reads address 0) after the Dice tests",
          after("dice_empty", "import ctypes\nctypes.string_at(0)"),
          passes=BCE | WEIGHTED | FOCAL | FGRAD | DICE, report=("SIGSEGV",)),
        S("a07_fork_storm", False, "forks 300 sleeping children after the BCE tests",
          after("bce_stable", FORK_STORM), passes=BCE, report=("processes",)),
        S("a08_edit_tests", False, "wrong BCE, test cells replaced by prints",
          chain(answer("bce_answer", "def bce_loss(logits, target, reduction='mean'):\n    return logits.mean()"),
                test_source("bce_values", "print('✓ passed')"), test_source("bce_stable", "pass")),
          passes=ALL - BCE - WEIGHTED, report=("instructor's version was restored",)),
        S("a09_delete_tests", False, "BCE not done and its test cells deleted",
          delete("bce_values", "bce_stable"), solved=NO_BCE, passes=ALL - BCE - WEIGHTED,
          report=("missing and was added back",)),
        S("a10_metadata", False, "points raised to 100, test cell unmarked as a test, BCE not done",
          chain(meta("bce_values", points=100), meta("bce_stable", grade=False, locked=False),
                meta("weighted_bce_values", solution=True), meta("dice_values", grade_id="dice_free")),
          solved=NO_BCE, passes=ALL - BCE - WEIGHTED, report=("changed metadata",)),
        S("a11_duplicate_cells", False, "test cells and answers duplicated, BCE not done",
          chain(duplicate("bce_values"), duplicate("bce_values", "print('✓')"), duplicate("bce_answer"),
                duplicate("gdl_absent")),
          solved=NO_BCE, passes=ALL - BCE - WEIGHTED),
        S("a12_patch_torch_numpy", False, "torch.allclose/assert_close and numpy.testing patched, BCE wrong",
          answer("bce_answer", PATCH_CHECKS), passes=ALL - BCE - WEIGHTED),
        S("a13_patch_grading", False, "comp448.grading.check_function replaced; nothing done",
          after("setup", PATCH_GRADING), solved=(), passes=frozenset()),
        S("a14_patch_kernel", False, "builtins, IPython's tracebacks patched and every later cell made a no-op; "
                                     "nothing done", after("setup", PATCH_BUILTINS + NOOP_CELLS), solved=(),
          passes=frozenset()),
        S("a15_always_equal", False, "bce_loss returns an object equal to everything, focal_loss a Tensor "
                                     "subclass that agrees with everything",
          chain(answer("bce_answer", ALWAYS_EQUAL), answer("focal_answer", SUBCLASS.replace("bce_loss", "focal_loss"))),
          passes=ALL - BCE - WEIGHTED - FOCAL),
        S("a16_reseed_memorised", False, "reseeds every RNG on every call (random focal loss); "
                                         "reference outputs on the visible inputs pasted in (BCE)",
          chain(answer("bce_answer", _memorised()), answer("focal_answer", RESEED.replace("bce_loss", "focal_loss"))),
          passes=ALL - BCE - WEIGHTED - FOCAL),
        S("a17_call_and_alias_reference", False, "bce_loss calls comp448.losses.bce_loss, focal_loss is the "
                                                 "reference under another name",
          chain(answer("bce_answer", CALL_REFERENCE),
                answer("focal_answer", "import comp448.losses as L\nfocal_loss = L.focal_loss")),
          passes=ALL - BCE - WEIGHTED - FOCAL),
        S("a18_importlib_and_pasted", False, "BCE loads the reference through importlib and file paths; "
                                             "the reference source pasted in for Tversky",
          chain(answer("bce_answer", IMPORTLIB_REFERENCE), answer("tversky_answer", _pasted_reference("tversky"))),
          passes=ALL - BCE - WEIGHTED - TVERSKY, report=("copy",)),
        S("a19_read_files", False, "looks for the source notebook, gradebook and stored values; nothing done",
          after("setup", READ_FILES), solved=(), passes=frozenset()),
        S("a20_vandal", False, "tries to overwrite the gradebook, other students and the source; nothing done",
          after("setup", VANDAL), solved=(), passes=frozenset()),
        S("a21_fake_success_huge_output", False, "prints fake success lines (BCE wrong) and about 30 MB",
          chain(answer("bce_answer", FAKE_SUCCESS), after("bce_stable", HUGE_OUTPUT)),
          passes=ALL - BCE - WEIGHTED, report=("dropped",)),
        S("a22_forge_records", False, "writes made-up grading records; nothing done",
          after("setup", FORGE_RECORDS), solved=(), passes=frozenset()),
        S("a23_kill_runner", False, "kills the sandbox's runner after the BCE tests",
          after("bce_stable", KILL_RUNNER), passes=BCE, report=("runner",)),
        S("a24_forbidden_shortcuts", False, "BCE through torch's built-in loss, focal_loss_grad through autograd",
          chain(answer("bce_answer", "def bce_loss(logits, target, reduction='mean'):\n"
                                     "    return F.binary_cross_entropy_with_logits(logits, target, reduction=reduction)"),
                answer("focal_grad_answer", "def focal_loss_grad(logits, target, gamma=2.0):\n"
                                            "    z = logits.detach().requires_grad_(True)\n"
                                            "    return torch.autograd.grad(focal_loss(z, target, gamma, 'sum'), z)[0]")),
          passes=ALL - BCE - WEIGHTED - FGRAD),
        S("a25_corrupt_json", False, "the hand-in is not a notebook", nothing, passes=frozenset(),
          raw=b"{ this is not json", report=("could not be graded",)),
        S("a26_missing_notebook", False, "handed in a text file instead of the notebook", nothing,
          passes=frozenset(), filename="answers.txt"),
    ]
