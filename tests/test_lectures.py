"""The lecture notebooks (lectures/*.ipynb): stored clean, built on comp448, and runnable on a laptop.

Fast checks (every notebook found at collection time):
- stored without outputs (no outputs, ``execution_count`` null) with the python3 kernelspec;
- imports comp448 and never redefines a public comp448 name (``def bce_loss``, ``class UNet``, ...):
  the notebooks teach the library, the exercises are where students re-implement it;
- the course index (00_index) links every lecture notebook and the exercises folder, and every
  relative link in it resolves.

Slow check (``@pytest.mark.slow``, one test per notebook, so ``pytest -n 2`` runs two at a time):
each notebook runs top to bottom in a fresh kernel within ``TIME_LIMIT_S`` seconds of kernel CPU
time (user + system, the kernel and its waited-for children) and with a peak kernel memory
(resident set size) under ``MEMORY_LIMIT_MB``: the Binder budget. CPU time is what a notebook costs
whatever else the machine runs: on one core of its own it is the wall time, on Binder's two at most
that. Wall time depends on the neighbours (``make test`` runs a notebook beside another test, e.g. a
grading run with two workers), so it is only checked against ``WALL_GUARD_S``, against hangs.
The peak and the CPU time are the kernel's own counters, ``resource.getrusage(RUSAGE_SELF)``, read
by a probe cell appended to the in-memory copy of the notebook (exact, no polling), together with
the waited-for child processes (``RUSAGE_CHILDREN``). Time and memory are printed per
notebook (``pytest -rA`` shows them) and recorded as test properties (``--junitxml``).

The kernel runs with ``COMP448_RUN_MODE=cpu`` (the short CPU versions of the training cells, even
on a GPU machine) and without ``MPLBACKEND`` (matplotlib's inline backend, as for a student).
"""
from __future__ import annotations

import ast
import importlib
import json
import os
import re
import time
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
LECTURES = ROOT / "lectures"
NOTEBOOKS = sorted(LECTURES.glob("*.ipynb"))
INDEX = LECTURES / "00_index.ipynb"

TIME_LIMIT_S = 120          # kernel CPU seconds
WALL_GUARD_S = 2 * TIME_LIMIT_S
MEMORY_LIMIT_MB = 1536

# The course's lecture notebooks, in order (00_index must link each of them).
COURSE = ["01_fcn", "02_deconvnet", "03_unet", "04_challenges", "05_losses", "05b_loss_weighting_visualizer",
          "06_attentionboost", "07_multitask", "08_fouriernet", "09_reconstruction", "10_3d", "11_training"]

# comp448 modules whose public names a notebook must not redefine: the course content. comp448.grading
# is left out on purpose: it is the nbgrader test DSL, whose input generators have generic names
# (``image``, ``rng``, ``loss_fn``) that a lecture may well use for its own helpers.
PUBLIC_MODULES = ["comp448.losses", "comp448.targets", "comp448.metrics", "comp448.nets", "comp448.augment",
                  "comp448.data", "comp448.train", "comp448.viz"]

_PROBE = """
import json as _json, resource as _resource
_self, _kids = _resource.getrusage(_resource.RUSAGE_SELF), _resource.getrusage(_resource.RUSAGE_CHILDREN)
print("__COMP448_PEAK_RSS__" + _json.dumps({
    "self_kb": _self.ru_maxrss, "children_kb": _kids.ru_maxrss,
    "cpu_s": _self.ru_utime + _self.ru_stime + _kids.ru_utime + _kids.ru_stime}))
"""


def _ids(paths):
    return [p.name for p in paths]


def _code(nb) -> list[str]:
    return [cell.source for cell in nb.cells if cell.cell_type == "code"]


def _python(source: str) -> str:
    """Cell source with IPython-only lines (magics, shell escapes) blanked so that ast can parse it."""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())


def _public_names() -> dict[str, str]:
    names: dict[str, str] = {}
    for mod_name in PUBLIC_MODULES:
        mod = importlib.import_module(mod_name)
        public = getattr(mod, "__all__", None)
        if public is None:   # no __all__: the public functions and classes defined in the module itself
            public = [n for n, v in vars(mod).items() if not n.startswith("_") and callable(v)
                      and getattr(v, "__module__", "") == mod_name]
        for n in public:
            names.setdefault(n, mod_name)
    return names


def _definitions(source: str) -> set[str]:
    """Names a cell defines as code, at any nesting level: ``def``/``class``, and ``name = lambda ...``.

    Plain data variables (``image = ...``, ``logits = ...``) are not definitions of library code and
    are allowed even where a comp448 helper has the same name.
    """
    tree = ast.parse(_python(source))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)) and isinstance(node.value, ast.Lambda):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            out.update(t.id for t in targets if isinstance(t, ast.Name))
    return out


# ----------------------------------------------------------------------------- fast checks

def test_lecture_notebooks_exist():
    assert NOTEBOOKS, f"no notebooks found in {LECTURES}"
    assert INDEX in NOTEBOOKS, "lectures/00_index.ipynb (the course index) is missing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_stored_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3", f"{path.name}: kernelspec must be python3"
    dirty = [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code"
             and (cell.outputs or cell.execution_count is not None)]
    assert not dirty, f"{path.name}: code cells {dirty} have outputs or an execution count; clear them"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_imports_comp448_and_redefines_nothing(path):
    nb = nbformat.read(path, as_version=4)
    code = _code(nb)
    assert any(re.search(r"^\s*(import comp448\b|from comp448(\.\w+)* import )", src, re.M) for src in code), \
        f"{path.name} never imports comp448"
    public = _public_names()
    clashes = []
    for i, src in enumerate(code):
        try:
            defined = _definitions(src)
        except SyntaxError as e:
            pytest.fail(f"{path.name}: code cell {i} does not parse: {e}")
        clashes += [f"{n} (comp448 provides {public[n]}.{n}; code cell {i})" for n in sorted(defined & set(public))]
    assert not clashes, f"{path.name} redefines public comp448 names: {clashes}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_leaves_the_thread_count_to_the_environment(path):
    """No hard-coded torch thread count: Binder's start script sets 2, `make test` runs every kernel
    with OMP_NUM_THREADS=1 beside another test; a notebook asking for more oversubscribes the cores."""
    code = "\n".join(_code(nbformat.read(path, as_version=4)))
    assert "set_num_threads" not in code, f"{path.name} sets torch's thread count"


def test_definitions_detects_redefinitions():
    # the checker itself: a def, a nested def, a class and a lambda are caught; data variables are not
    src = ("%matplotlib inline\ndef bce_loss(x):\n    def dice_loss(): pass\nclass UNet: pass\n"
           "focal_loss = lambda z, y: z\nlogits = 1\n")
    assert _definitions(src) == {"bce_loss", "dice_loss", "UNet", "focal_loss"}
    assert {"bce_loss", "UNet", "unet_weight_map", "synth_nuclei"} <= set(_public_names())


def _index_links() -> list[str]:
    nb = nbformat.read(INDEX, as_version=4)
    text = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "markdown")
    return re.findall(r"\]\(([^)#\s]+)\)", text)


def test_index_links_every_lecture_and_the_exercises():
    links = {Path(link).name for link in _index_links() if not link.startswith("http")}
    missing = [f"{name}.ipynb" for name in COURSE if f"{name}.ipynb" not in links]
    missing += [p.name for p in NOTEBOOKS if p != INDEX and p.name not in links]
    assert not missing, f"00_index.ipynb does not link {sorted(set(missing))}"
    assert any(re.fullmatch(r"(\.\./)?exercises/?", link) for link in _index_links()), \
        "00_index.ipynb must link the exercises folder"


def test_index_links_resolve():
    dead = [link for link in _index_links() if not link.startswith("http") and not (LECTURES / link).exists()]
    assert not dead, f"00_index.ipynb links files that do not exist: {dead}"


# ----------------------------------------------------------------------------- slow: run them

@pytest.mark.slow
@pytest.mark.timeout(WALL_GUARD_S + 60)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_runs_within_budget(path, monkeypatch, record_property):
    from nbclient import NotebookClient

    monkeypatch.delenv("MPLBACKEND", raising=False)       # the inline backend, as a student gets it
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    monkeypatch.setenv("COMP448_RUN_MODE", "cpu")          # the short runs, also on a GPU machine
    monkeypatch.setenv("PYDEVD_DISABLE_FILE_VALIDATION", "1")

    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(_PROBE))
    client = NotebookClient(nb, timeout=WALL_GUARD_S, kernel_name="python3",
                            resources={"metadata": {"path": str(LECTURES)}})
    start = time.perf_counter()
    client.execute()                                       # raises CellExecutionError on any error
    wall = time.perf_counter() - start

    probe = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.output_type == "stream")
    match = re.search(r"__COMP448_PEAK_RSS__(\{.*\})", probe)
    assert match, f"{path.name}: the memory probe printed nothing: {probe!r}"
    usage = json.loads(match.group(1))
    peak_mb = max(usage["self_kb"], usage["children_kb"]) / 1024   # Linux reports ru_maxrss in KiB
    cpu = usage["cpu_s"]

    record_property("wall_s", round(wall, 1))
    record_property("cpu_s", round(cpu, 1))
    record_property("peak_rss_mb", round(peak_mb))
    print(f"{path.name}: {cpu:.1f} s kernel CPU (limit {TIME_LIMIT_S}), {wall:.1f} s wall (guard {WALL_GUARD_S}), "
          f"peak kernel RSS {peak_mb:.0f} MB (limit {MEMORY_LIMIT_MB}), "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, load {os.getloadavg()[0]:.1f}")
    assert cpu <= TIME_LIMIT_S, f"{path.name} used {cpu:.1f} s of CPU, over the {TIME_LIMIT_S} s budget"
    assert wall <= WALL_GUARD_S, f"{path.name} took {wall:.1f} s of wall time, over the {WALL_GUARD_S} s guard"
    assert peak_mb <= MEMORY_LIMIT_MB, f"{path.name} peaked at {peak_mb:.0f} MB, over {MEMORY_LIMIT_MB} MB"
