"""nbgrader preprocessors that grade a notebook in the sandbox and score it from the grader's side.

nbgrader's autograde runs two passes over each submitted notebook. We change both:

sanitize (trusted, reads the gradebook):
    ClearOutput -> RestoreCellMetadata -> DeduplicateIds -> OverwriteKernelspec ->
    OverwriteCells(add_missing_cells=True) -> CheckCellMetadata
autograde:
    SandboxedExecute -> ClearMetadataPreprocessor -> LimitOutput -> SaveAutoGrades ->
    AssignLatePenalties -> CheckCellMetadata

``RestoreCellMetadata`` resets every nbgrader metadata block to the instructor's (grade, solution,
locked, points), drops unknown ids and notes what it repaired, so that edited metadata can
neither change the points nor crash nbgrader ("Inconsistent checksums").

``SandboxedExecute`` replaces nbgrader's Execute. It runs the notebook in the bubblewrap sandbox
(``autograder/sandbox.py``) with the grading record switched on, then **re-runs every
autograded test cell from the gradebook's copy in this (clean) process** in verify mode
(``comp448.grading.verify_test_cell``): the reference runs here on the same secret inputs and
is compared with the outputs the student's functions produced. Each test cell's outputs are
replaced by that verdict, so ``SaveAutoGrades`` scores exactly what the grader verified,
nothing the student's kernel printed. Cells that never ran get a note and no points, and a
"Grading report" cell at the top says what happened.
"""
from __future__ import annotations

import contextlib
import copy
import fcntl
import functools
import hashlib
import hmac
import json
import os
import re
import signal
import time
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Dict, Unicode

from autograder import sandbox

REPORT_KEY = "comp448_grading"
TEXT_LIMIT = 20_000                 # characters kept per output in the graded notebook


# ----------------------------------------------------------------------------- gradebook lock

class FileLock:
    """An exclusive lock on a file: gradebook writes of parallel workers one at a time."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.fd: int | None = None
        self.depth = 0

    def acquire(self) -> None:
        if self.depth == 0:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        self.depth += 1

    def release(self) -> None:
        self.depth -= 1
        if self.depth == 0 and self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc):
        self.release()


DB_LOCK: FileLock | None = None     # set by the worker process that runs nbgrader for one student


@contextlib.contextmanager
def db_lock():
    """Hold the gradebook lock (if a worker set one) while touching the gradebook."""
    lock = DB_LOCK
    if lock is None:
        yield
        return
    lock.acquire()
    try:
        yield
    finally:
        lock.release()


def locked(cls):
    """A subclass of an nbgrader preprocessor whose ``preprocess`` runs under ``db_lock``.

    Only the steps that read or write the gradebook are serialised; the CPU work of the other
    steps (and the sandbox) runs in parallel across workers. nbgrader's configuration of the base
    class (e.g. ``OverwriteCells.add_missing_cells``) applies to the subclass.
    """
    def preprocess(self, nb, resources):
        with db_lock():
            return super(sub, self).preprocess(nb, resources)
    sub = type(f"Locked{cls.__name__}", (cls,), {"preprocess": preprocess, "__doc__": cls.__doc__})
    return sub


@functools.cache
def locked_autograde():
    """nbgrader's Autograde converter with its gradebook set-up (``init_assignment``) under the lock."""
    from nbgrader.converters import Autograde

    class LockedAutograde(Autograde):
        def init_assignment(self, assignment_id, student_id):
            with db_lock():
                return super().init_assignment(assignment_id, student_id)
    return LockedAutograde


# ----------------------------------------------------------------------------- master copies

def master_cells(db_url: str, assignment: str, notebook: str) -> dict:
    """The instructor's cells for one notebook, from the gradebook: {grade_id: {...}}."""
    out = {}
    with Gradebook(db_url) as gb:
        nb = gb.find_notebook(notebook, assignment)
        graded = {c.name: c for c in nb.grade_cells}
        solution = {c.name for c in nb.solution_cells}
        task = {c.name: c for c in nb.task_cells}
        for cell in nb.source_cells:
            gc = graded.get(cell.name)
            out[cell.name] = {
                "source": cell.source, "cell_type": cell.cell_type, "locked": bool(cell.locked),
                "grade": gc is not None, "solution": cell.name in solution, "task": cell.name in task,
                "points": float(gc.max_score) if gc is not None else (
                    float(task[cell.name].max_score) if cell.name in task else None)}
    return out


def hidden_modules(master: dict, source_notebook: Path | None) -> list[str]:
    """Which comp448 subpackages the sandbox removes: those the test cells name as references.

    A notebook may override this with ``metadata.comp448.sandbox_hide`` (a list of module names)
    in the instructor's source notebook.
    """
    from comp448.grading import reference_module
    if source_notebook is not None and source_notebook.exists():
        meta = json.loads(source_notebook.read_text(encoding="utf-8")).get("metadata", {})
        override = meta.get("comp448", {}).get("sandbox_hide")
        if override is not None:
            return sorted(set(override))
    names = set()
    for cell in master.values():
        if cell["grade"] and not cell["solution"]:
            for ref in re.findall(r"""["'](comp448\.[A-Za-z_][\w.]*)["']""", cell["source"]):
                names.add(reference_module(ref))
    return sorted(n for n in names if n.count(".") >= 1)


def secret_seed(secret: bytes, assignment: str, student: str, notebook: str) -> str:
    return hmac.new(secret, f"{assignment}|{student}|{notebook}".encode(), hashlib.sha256).hexdigest()


# ----------------------------------------------------------------------------- sanitize pass

class RestoreCellMetadata(NbGraderPreprocessor):
    """Reset nbgrader metadata to the instructor's; note every repair (before OverwriteCells)."""

    def preprocess(self, nb, resources):
        info = resources["nbgrader"]
        with db_lock():
            master = master_cells(info["db_url"], info["assignment"], info["notebook"])
        repairs = []
        seen = set()
        last = {}                                   # nbgrader keeps the last copy of a duplicated id
        for i, cell in enumerate(nb.cells):
            meta = cell.get("metadata", {}).get("nbgrader")
            if isinstance(meta, dict) and isinstance(meta.get("grade_id"), str):
                last[meta["grade_id"]] = i
        for i, cell in enumerate(nb.cells):
            meta = cell.get("metadata", {}).get("nbgrader")
            if meta is None:
                continue
            gid = meta.get("grade_id") if isinstance(meta, dict) else None
            if isinstance(gid, str) and last.get(gid) != i:
                # a copy: an ordinary cell now (nbgrader's DeduplicateIds would leave an empty
                # metadata block that crashes OverwriteCells.add_missing_task_cells)
                repairs.append(f"cell {i}: a duplicate of {gid} is treated as an ordinary cell")
                del cell.metadata["nbgrader"]
                continue
            if not isinstance(gid, str) or gid not in master:
                repairs.append(f"cell {i}: nbgrader metadata with an unknown id ({str(gid)[:40]!r}) was removed")
                del cell.metadata["nbgrader"]
                continue
            m = master[gid]
            fresh = {"grade": m["grade"], "solution": m["solution"], "locked": m["locked"],
                     "grade_id": gid, "schema_version": 3, "task": m["task"]}
            if m["points"] is not None and (m["grade"] or m["task"]):
                fresh["points"] = m["points"]
            if isinstance(meta.get("checksum"), str):
                fresh["checksum"] = meta["checksum"]
            changed = [k for k in ("grade", "solution", "locked", "points", "task")
                       if k in fresh and meta.get(k) != fresh[k]]
            if changed:
                repairs.append(f"{gid}: changed metadata ({', '.join(changed)}) was restored")
            if m["locked"] and cell.get("source") not in (m["source"], _released(m["source"])) and gid not in seen:
                repairs.append(f"{gid}: the cell was edited; the instructor's version was restored")
            if cell.cell_type != m["cell_type"]:
                repairs.append(f"{gid}: the cell type was changed back to {m['cell_type']}")
            seen.add(gid)
            cell.metadata["nbgrader"] = fresh
        for gid, m in master.items():
            if (m["grade"] or m["locked"]) and gid not in seen and m["grade"]:
                repairs.append(f"{gid}: the cell was missing and was added back")
        nb.metadata[REPORT_KEY] = {"repairs": repairs}      # replaces anything the student put there
        return nb, resources


def _released(source: str) -> str:
    """The source as released: nbgrader's ClearHiddenTests removes the hidden-test region."""
    out, hidden = [], False
    for line in source.splitlines():
        if "### BEGIN HIDDEN TESTS" in line:
            hidden = True
        elif "### END HIDDEN TESTS" in line:
            hidden = False
        elif not hidden:
            out.append(line)
    return "\n".join(out)


# ----------------------------------------------------------------------------- autograde pass

class SandboxedExecute(NbGraderPreprocessor):
    """Execute in the sandbox, then verify every autograded test cell in this clean process."""

    course_root = Unicode("", help="The course folder (for the grading secret and reports).").tag(config=True)
    limits = Dict({}, help="Per-student limits, see autograder.sandbox.Limits.").tag(config=True)
    cache_dir = Unicode("", help="Where the staged comp448 copies live.").tag(config=True)

    def preprocess(self, nb, resources):
        info = resources["nbgrader"]
        assignment, student, notebook = info["assignment"], info["student"], info["notebook"]
        root = Path(self.course_root or os.getcwd())
        with db_lock():
            master = master_cells(info["db_url"], assignment, notebook)
        hidden = hidden_modules(master, root / "source" / assignment / f"{notebook}.ipynb")
        secret = (root / ".grading_secret").read_bytes()
        seed = secret_seed(secret, assignment, student, notebook)
        limits = sandbox.Limits.from_dict(dict(self.limits))
        files = _assignment_files(Path(resources.get("metadata", {}).get("path") or "."))
        to_run = copy.deepcopy(nb)
        to_run.metadata.pop(REPORT_KEY, None)
        for cell in to_run.cells:
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
        cache = Path(self.cache_dir) if self.cache_dir else _default_cache()
        started = time.monotonic()
        result = sandbox.run_notebook(nbformat.writes(to_run), files, seed=seed, hidden=hidden,
                                      limits=limits, cache_root=cache)
        verdicts, findings = verify(nb, master, result, seed, hidden)
        elapsed = time.monotonic() - started
        report = merge(nb, master, result, verdicts, findings, limits)
        report.update(student=student, assignment=assignment, notebook=notebook, seconds=round(elapsed, 2),
                      hidden_modules=hidden)
        _write_report(root, report)
        return nb, resources


def _default_cache() -> Path:
    import tempfile
    return Path(tempfile.gettempdir()) / f"comp448-grading-cache-{os.getuid()}"


def _assignment_files(folder: Path, max_bytes: int = 50 << 20) -> dict:
    """Files next to the notebook (data, helper modules), notebooks excluded, size-capped."""
    files, total = {}, 0
    if not folder.is_dir():
        return files
    for p in sorted(folder.rglob("*")):
        if p.is_file() and not p.is_symlink() and p.suffix != ".ipynb" and "__pycache__" not in p.parts:
            size = p.stat().st_size
            if total + size > max_bytes:
                break
            files[str(p.relative_to(folder))] = p.read_bytes()
            total += size
    return files


def _is_test_cell(cell, master) -> bool:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    gid = meta.get("grade_id")
    return (cell.cell_type == "code" and gid in master and master[gid]["grade"]
            and not master[gid]["solution"])


def verify(nb, master: dict, result: sandbox.SandboxResult, seed: str, hidden: list[str]):
    """Verdict of every autograded test cell, computed here from the master sources."""
    from comp448 import grading
    records = grading.parse_records(result.records)
    student_sources = [c.source for c in nb.cells
                       if c.cell_type == "code" and not c.get("metadata", {}).get("nbgrader", {}).get("locked")]
    findings = grading.find_reference_copies(student_sources, hidden)
    verdicts = {}
    for gid, m in master.items():
        if not (m["grade"] and not m["solution"] and m["cell_type"] == "code"):
            continue
        ctx = grading.VerifyContext(records=records, seed=seed, copies=findings)
        verdicts[gid] = grading.verify_test_cell(m["source"], ctx, cell_name=gid)
    return verdicts, findings


_SIGNALS = {signal.SIGKILL: "it was killed (memory limit, process limit or the grader's watchdog)",
            signal.SIGSEGV: "a crash in native code (segmentation fault)",
            signal.SIGABRT: "it aborted", signal.SIGXCPU: "it used up its CPU time",
            signal.SIGXFSZ: "it wrote a file larger than allowed", signal.SIGBUS: "a bus error"}


def describe_exit(code) -> str:
    if code is None:
        return ""
    if code < 0:
        try:
            return f" (signal {signal.Signals(-code).name}: {_SIGNALS.get(-code, 'killed by a signal')})"
        except ValueError:
            return f" (signal {-code})"
    return f" (exit code {code}: the notebook ended its own process, e.g. with os._exit)"


def _clean_outputs(outputs: list) -> list:
    """Keep plain text, images and errors; drop HTML/JS and anything malformed; cap sizes."""
    clean = []
    for o in outputs[:50]:
        if not isinstance(o, dict):
            continue
        kind = o.get("output_type")
        if kind == "stream" and o.get("name") in ("stdout", "stderr"):
            clean.append(nbformat.v4.new_output("stream", name=o["name"], text=_text(o.get("text"))))
        elif kind == "error":
            tb = o.get("traceback") if isinstance(o.get("traceback"), list) else []
            clean.append(nbformat.v4.new_output("error", ename=_text(o.get("ename"))[:200],
                                                evalue=_text(o.get("evalue"))[:2000],
                                                traceback=[_text(t)[:5000] for t in tb[:40]]))
        elif kind in ("display_data", "execute_result") and isinstance(o.get("data"), dict):
            data = {}
            if isinstance(o["data"].get("image/png"), str) and len(o["data"]["image/png"]) < 2_000_000:
                data["image/png"] = o["data"]["image/png"]
            if "text/plain" in o["data"]:
                data["text/plain"] = _text(o["data"]["text/plain"])
            if data:
                if kind == "execute_result":
                    clean.append(nbformat.v4.new_output("execute_result", data=data, execution_count=None))
                else:
                    clean.append(nbformat.v4.new_output("display_data", data=data))
    return clean


def _text(x) -> str:
    if isinstance(x, list):
        x = "".join(str(s) for s in x)
    x = "" if x is None else str(x)
    return x if len(x) <= TEXT_LIMIT else x[:TEXT_LIMIT] + f"\n... [{len(x) - TEXT_LIMIT} more characters cut by the grader]"


def _note(text: str):
    return nbformat.v4.new_output("error", ename="GradingNote", evalue=text, traceback=[f"GradingNote: {text}"])


def merge(nb, master: dict, result: sandbox.SandboxResult, verdicts: dict, findings: dict, limits) -> dict:
    """Put sandbox outputs and the grader's verdicts into ``nb``; return the instructor's report."""
    ran = sum(1 for c in result.cells.values() if c.status not in ("not_run",))
    total = sum(1 for c in nb.cells if c.cell_type == "code")
    stopped = result.reason if result.reason != "finished" else ""
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        got = result.cells.get(i)
        if _is_test_cell(cell, master):
            gid = cell.metadata.nbgrader["grade_id"]
            v = verdicts.get(gid)
            cell.execution_count = got.execution_count if got else None
            if v is not None and not v.passed and got is not None and got.status in ("timeout", "died"):
                why = (f"this test ran longer than {limits.cell_timeout} s and was interrupted (does the function "
                       f"loop forever?)" if got.status == "timeout" else "the kernel died while this test ran")
                v = type(v)(False, f"{why}; {v.text}", v.authoring_error)
            if v is None:
                cell.outputs = [_note("the grader has no verdict for this test cell")]
            elif v.passed:
                cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=_text(v.text))]
            else:
                cell.outputs = [nbformat.v4.new_output(
                    "error", ename="GradingError", evalue=_text(v.text),
                    traceback=[f"GradingError: {line}" if k == 0 else line
                               for k, line in enumerate(_text(v.text).splitlines())])]
            continue
        if got is None or got.status == "not_run":
            cell.outputs = [_note(f"this cell did not run{': ' + stopped if stopped else ''}")]
            cell.execution_count = None
            continue
        cell.outputs = _clean_outputs(got.outputs)
        cell.execution_count = got.execution_count
        if got.truncated:
            cell.outputs.append(_note(f"this cell printed more than {limits.output_bytes_per_cell} bytes; "
                                      f"the rest was dropped"))
        if got.status == "died":
            cell.outputs.append(_note(f"the kernel died while running this cell{describe_exit(result.exit_code)}; "
                                      f"the cells after it did not run and earn no points"))
        elif got.status == "timeout" and not any(o.get("ename") == "CellTimeoutError" for o in cell.outputs):
            cell.outputs.append(_note(f"this cell ran longer than {limits.cell_timeout} s and was stopped"))
    timeouts, errors, truncated = [], {}, []
    for i, cell in enumerate(nb.cells):
        got = result.cells.get(i)
        if cell.cell_type != "code" or got is None:
            continue
        # 1-based position in the notebook as handed in (the report cell is inserted above later)
        label = f"cell {i + 1}" + (f" (`{cell.metadata.nbgrader['grade_id']}`)" if "nbgrader" in cell.metadata else "")
        if got.status == "timeout":
            timeouts.append(label)
        if got.truncated:
            truncated.append(label)
        for o in got.outputs[:3]:
            if isinstance(o, dict) and o.get("output_type") == "error" and o.get("ename") != "CellTimeoutError":
                errors[label] = f"{_text(o.get('ename'))[:80]}: {_text(o.get('evalue'))[:200]}"
    repairs = list(nb.metadata.get(REPORT_KEY, {}).get("repairs", []))
    refused = {k: v for k, v in findings.items() if not k.startswith("__")}
    refused.update({f"copy of {k}": v for k, v in findings.get("__copied__", {}).items()})
    failed = {g: v.text.splitlines()[0][:300] if v.text else "" for g, v in verdicts.items() if not v.passed}
    authoring = [g for g, v in verdicts.items() if v.authoring_error]
    lines = ["## Grading report", "",
             f"*Added by the autograder.* {ran} of {total} code cells ran in the grading sandbox "
             f"({result.wall_s:.1f} s).", ""]
    if stopped:
        lines.append(f"- **The run stopped early:** {stopped}{describe_exit(result.exit_code)}. "
                     f"Cells that did not run earn no points.")
    for label in timeouts:
        lines.append(f"- {label[0].upper()}{label[1:]} ran longer than {limits.cell_timeout} s and was interrupted "
                     f"(an endless loop?).")
    for label in truncated:
        lines.append(f"- {label[0].upper()}{label[1:]} printed more than {limits.output_bytes_per_cell} bytes; "
                     f"the rest was dropped.")
    passed = sum(1 for v in verdicts.values() if v.passed)
    lines.append(f"- Autograded tests: {passed} of {len(verdicts)} passed. The grader checked your functions "
                 f"outside your notebook, on secret inputs, against the reference; what your notebook printed "
                 f"in the test cells was not used.")
    for name, why in sorted(refused.items()):
        lines.append(f"- **Refused:** `{name}`: {why}.")
    for r in repairs:
        lines.append(f"- Repaired: {r}.")
    nb.cells.insert(0, nbformat.v4.new_markdown_cell("\n".join(lines)))
    return {"ran": ran, "total_code_cells": total, "stopped": stopped, "exit_code": result.exit_code,
            "killed": result.killed, "passed": passed, "tests": len(verdicts), "failed": failed,
            "authoring_errors": authoring, "refused": refused, "repairs": repairs, "timeouts": timeouts, "truncated": truncated,
            "sandbox_errors": errors,
            "kernel_log": result.log_tail[-1500:]}


def _write_report(root: Path, report: dict) -> None:
    d = root / "reports" / report["assignment"] / report["student"]
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{report['notebook']}.json").write_text(json.dumps(report, indent=1, default=str))
