"""The instructor's workflow on one course folder: release, collect, autograde, feedback, export.

The course folder (default ``autograder/course/``, gitignored; or ``--course PATH``) is an
ordinary nbgrader course: ``nbgrader_config.py``, ``gradebook.db``, ``source/``, ``release/``,
``submitted/``, ``autograded/``, ``feedback/``. We add ``.grading_secret`` (the key of the
secret test inputs, never released), ``grading.json`` (limits and workers) and ``reports/``.
"""
from __future__ import annotations

import concurrent.futures as cf
import csv
import json
import multiprocessing
import os
import re
import secrets
import shutil
import sys
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOLUTIONS = REPO / "solutions"
DEFAULT_COURSE = REPO / "autograder" / "course"
COURSE_ID = "comp448"

CONFIG_TEMPLATE = '''\
# Written by `python -m autograder` (rewritten on every command; edit grading.json instead).
import sys
sys.path.insert(0, {repo!r})
from autograder.course import configure
configure(get_config(), {root!r})
'''


def _venv_on_path() -> None:
    """nbgrader shells out to `alembic`, which lives next to this Python."""
    bindir = os.path.dirname(sys.executable)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")


def settings(root: Path) -> dict:
    path = Path(root) / "grading.json"
    return json.loads(path.read_text()) if path.exists() else {}


def db_url(root) -> str:
    """The gradebook: ``grading.json``'s ``db_url``, else ``<course>/gradebook.db`` (SQLite)."""
    return settings(root).get("db_url", f"sqlite:///{Path(root).resolve()}/gradebook.db")


def configure(c, root, limits: dict | None = None) -> None:
    """nbgrader configuration of a comp448 course (used by nbgrader_config.py and by our commands)."""
    from nbconvert.preprocessors import ClearMetadataPreprocessor
    from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, ClearOutput, DeduplicateIds,
                                        LimitOutput, OverwriteCells, OverwriteKernelspec, SaveAutoGrades)

    from autograder.grade import RestoreCellMetadata, SandboxedExecute, locked
    root = str(Path(root).resolve())
    c.CourseDirectory.root = root
    c.CourseDirectory.course_id = COURSE_ID
    c.CourseDirectory.db_url = db_url(root)
    c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
    c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
    c.OverwriteCells.add_missing_cells = True
    c.LimitOutput.max_lines = 500
    c.LimitOutput.max_traceback = 100
    # the steps that use the gradebook run under the workers' lock (autograder.grade.locked)
    c.Autograde.sanitize_preprocessors = [ClearOutput, RestoreCellMetadata, DeduplicateIds,
                                          locked(OverwriteKernelspec), locked(OverwriteCells), CheckCellMetadata]
    c.Autograde.autograde_preprocessors = [SandboxedExecute, ClearMetadataPreprocessor, LimitOutput,
                                           locked(SaveAutoGrades), locked(AssignLatePenalties), CheckCellMetadata]
    c.SandboxedExecute.course_root = root
    c.SandboxedExecute.limits = dict(settings(root).get("limits", {}), **(limits or {}))


class Course:
    def __init__(self, root: Path | str | None = None):
        self.root = Path(root or DEFAULT_COURSE).resolve()
        _venv_on_path()

    # -- setup --------------------------------------------------------------------------------
    def ensure(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "nbgrader_config.py").write_text(CONFIG_TEMPLATE.format(repo=str(REPO), root=str(self.root)))
        secret = self.root / ".grading_secret"
        if not secret.exists():
            secret.write_bytes(secrets.token_bytes(32))
            secret.chmod(0o600)

    def api(self, limits: dict | None = None):
        from nbgrader.apps import NbGraderAPI
        from traitlets.config import Config
        c = Config()
        configure(c, self.root, limits)
        return NbGraderAPI(config=c)

    def assignments(self) -> list[str]:
        return sorted(p.name for p in (self.root / "source").iterdir() if p.is_dir()) \
            if (self.root / "source").exists() else []

    def notebooks(self, assignment: str) -> list[str]:
        return sorted(p.stem for p in (self.root / "source" / assignment).glob("*.ipynb"))

    # -- release ------------------------------------------------------------------------------
    def release(self, assignment: str, solutions: Path = SOLUTIONS) -> Path:
        """solutions/<a>/ -> source/<a>/ -> nbgrader generate_assignment -> release/<a>/."""
        src = Path(solutions) / assignment
        if not src.is_dir():
            raise SystemExit(f"no such assignment: {src} (assignments: {sorted(p.name for p in Path(solutions).iterdir() if p.is_dir())})")
        self.ensure()
        dest = self.root / "source" / assignment
        if dest.exists():
            shutil.rmtree(dest)
        shutil.copytree(src, dest, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
        result = self.api().generate_assignment(assignment, force=True)
        if not result["success"]:
            raise SystemExit(f"nbgrader generate_assignment failed:\n{result.get('error') or result.get('log')}")
        return self.root / "release" / assignment

    # -- collect ------------------------------------------------------------------------------
    def collect(self, assignment: str, folder: Path | None = None, zips: list[Path] = (),
                regex: str | None = None) -> list[str]:
        """Bring hand-ins into submitted/<student>/<assignment>/; returns notes for the instructor.

        ``folder``: one sub-folder per student (``<folder>/<student>/*.ipynb``) or one notebook per
        student (``<folder>/<student>.ipynb``). ``zips``: LMS downloads, collected by nbgrader's
        zip_collect with ``regex`` (named groups ``student_id`` and ``file_id``) on each file path.
        A single notebook with an unexpected name is renamed to the expected one (with a note).
        """
        self.ensure()
        expected = self.notebooks(assignment)
        if not expected:
            raise SystemExit(f"release {assignment} first (no source notebooks in {self.root / 'source' / assignment})")
        notes = []
        if zips:
            notes += self._zip_collect(assignment, zips, regex)
        if folder is not None:
            folder = Path(folder)
            for entry in sorted(folder.iterdir()):
                if entry.is_dir():
                    student, files = entry.name, [p for p in entry.rglob("*") if p.is_file()]
                    base = entry
                elif entry.suffix == ".ipynb":
                    student, files, base = entry.stem, [entry], entry.parent
                else:
                    continue
                if not re.fullmatch(r"[A-Za-z0-9_.@\-]+", student):
                    notes.append(f"skipped {entry.name}: not a usable student id")
                    continue
                dest = self.root / "submitted" / student / assignment
                if dest.exists():
                    shutil.rmtree(dest)
                dest.mkdir(parents=True)
                for f in files:
                    rel = Path(f.name) if entry.suffix == ".ipynb" else f.relative_to(base)
                    if ".ipynb_checkpoints" in rel.parts or f.stat().st_size > 50 << 20:
                        continue
                    (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(f, dest / rel)
        for student_dir in sorted((self.root / "submitted").glob(f"*/{assignment}")):
            notes += self._fix_names(student_dir, expected)
        return notes

    def _zip_collect(self, assignment, zips, regex) -> list[str]:
        archive = self.root / "downloaded" / assignment / "archive"
        if archive.parent.exists():
            shutil.rmtree(archive.parent)
        archive.mkdir(parents=True)
        for z in zips:
            if not zipfile.is_zipfile(z):
                raise SystemExit(f"{z} is not a zip file")
            shutil.copy2(z, archive / Path(z).name)
        from nbgrader.apps import ZipCollectApp
        from traitlets.config import Config
        c = Config()
        configure(c, self.root)
        c.ZipCollectApp.force = True
        c.FileNameCollectorPlugin.named_regexp = regex or DEFAULT_ZIP_REGEX
        c.FileNameCollectorPlugin.valid_ext = [".ipynb", ".py", ".csv", ".txt", ".npy", ".npz", ".png"]
        app = ZipCollectApp(config=c)
        app.initialize([assignment])              # as `nbgrader zip_collect ASSIGNMENT`
        app.coursedir.assignment_id = assignment
        app.start()
        return [f"zip_collect: {len(list((self.root / 'submitted').glob(f'*/{assignment}')))} students collected"]

    def _fix_names(self, student_dir: Path, expected: list[str]) -> list[str]:
        """One unexpected notebook and one missing: rename it (students rename by accident)."""
        present = {p.stem: p for p in student_dir.glob("*.ipynb")}
        missing = [n for n in expected if n not in present]
        unknown = [p for n, p in present.items() if n not in expected]
        student = student_dir.parent.name
        if len(missing) == 1 and len(unknown) == 1:
            unknown[0].rename(student_dir / f"{missing[0]}.ipynb")
            return [f"{student}: renamed {unknown[0].name} to {missing[0]}.ipynb"]
        notes = [f"{student}: {n}.ipynb is missing (it will score 0)" for n in missing]
        notes += [f"{student}: {p.name} is not part of the assignment (ignored)" for p in unknown]
        return notes

    # -- autograde ----------------------------------------------------------------------------
    def students(self, assignment: str) -> list[str]:
        return sorted(p.parent.name for p in (self.root / "submitted").glob(f"*/{assignment}") if p.is_dir())

    def autograde(self, assignment: str, students: list[str] | None = None, workers: int | None = None,
                  limits: dict | None = None, progress: bool = True) -> list[dict]:
        """Grade every student in parallel workers; the steps that use the gradebook take a lock file."""
        self.ensure()
        students = students or self.students(assignment)
        workers = workers or settings(self.root).get("workers") or max(1, (os.cpu_count() or 2))
        results = []
        started = time.monotonic()
        bar = _progress(len(students), progress, f"autograde {assignment}")
        if workers == 1 or len(students) <= 1:
            for s in students:
                results.append(_grade_one(str(self.root), assignment, s, limits or {}))
                bar.update(1)
        else:
            ctx = multiprocessing.get_context("forkserver")
            with cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
                futures = [pool.submit(_grade_one, str(self.root), assignment, s, limits or {}) for s in students]
                for f in cf.as_completed(futures):
                    results.append(f.result())
                    bar.update(1)
        bar.close()
        results.sort(key=lambda r: r["student"])
        summary = {"assignment": assignment, "seconds": round(time.monotonic() - started, 2),
                   "workers": workers, "students": results}
        (self.root / "reports" / assignment).mkdir(parents=True, exist_ok=True)
        (self.root / "reports" / assignment / "autograde.json").write_text(json.dumps(summary, indent=1))
        return results

    # -- feedback / export / report -----------------------------------------------------------
    def feedback(self, assignment: str, student: str | None = None) -> list[Path]:
        api = self.api()
        result = api.generate_feedback(assignment, student)
        if not result["success"]:
            raise SystemExit(f"nbgrader generate_feedback failed:\n{result.get('error') or result.get('log')}")
        out = []
        for s in ([student] if student else self.students(assignment)):
            d = self.root / "feedback" / s / assignment
            d.mkdir(parents=True, exist_ok=True)
            reports = sorted((self.root / "reports" / assignment / s).glob("*.json"))
            failed = [json.loads(p.read_text()) for p in reports if p.name.endswith(".failed.json")]
            if failed:
                html = "".join(f"<h2>{_esc(r['notebook'])}</h2><p>{_esc(r['stopped'])}</p>" for r in failed)
                (d / "grading_report.html").write_text(
                    f"<html><body><h1>Grading report: {_esc(assignment)}</h1>{html}</body></html>")
            out += sorted(d.glob("*.html"))
        return out

    def export(self, path: Path) -> Path:
        """Grades to CSV, one row per student and assignment (a missing hand-in scores 0).

        ``code_score`` is the autograded part, ``score`` includes manual grades once given;
        ``needs_manual_grade`` flags rows that still wait for the instructor (the derivations).
        """
        from nbgrader.api import Gradebook, MissingEntry
        fields = ["assignment", "student_id", "timestamp", "score", "max_score", "code_score",
                  "max_code_score", "needs_manual_grade"]
        rows = []
        with Gradebook(db_url(self.root), COURSE_ID) as gb:
            for a in gb.assignments:
                for s in gb.students:
                    row = {"assignment": a.name, "student_id": s.id, "timestamp": "", "score": 0.0,
                           "max_score": a.max_score, "code_score": 0.0, "max_code_score": a.max_code_score,
                           "needs_manual_grade": False}
                    try:
                        sub = gb.find_submission(a.name, s.id)
                        row.update(timestamp=sub.timestamp or "", score=sub.score, code_score=sub.code_score,
                                   needs_manual_grade=sub.needs_manual_grade)
                    except MissingEntry:
                        pass
                    rows.append(row)
        path = Path(path)
        with path.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=fields)
            w.writeheader()
            w.writerows(rows)
        return path

    def report(self, assignment: str, student: str | None = None) -> str:
        lines = []
        for p in sorted((self.root / "reports" / assignment).glob(f"{student or '*'}/*.json")):
            r = json.loads(p.read_text())
            head = f"{r.get('student')}/{r.get('notebook')}: "
            if "passed" in r:
                head += f"{r['passed']}/{r['tests']} tests, {r['ran']}/{r['total_code_cells']} cells ran"
            if r.get("stopped"):
                head += f"; stopped: {r['stopped']}"
            lines.append(head)
            for k, v in sorted(r.get("refused", {}).items()):
                lines.append(f"    refused {k}: {v}")
            for rep in r.get("repairs", []):
                lines.append(f"    repaired: {rep}")
            for label in r.get("timeouts", []):
                lines.append(f"    timeout: {label}")
            for g in r.get("authoring_errors", []):
                lines.append(f"    TEST CELL ERROR (instructor): {g}")
        return "\n".join(lines)


# "<student>_<file>" and Canvas' "<student>_<user id>_<submission id>_<file>" (also "_late_")
DEFAULT_ZIP_REGEX = r".*/(?P<student_id>[^/_]+)_(?:late_)?(?:\d+_\d+_)?(?P<file_id>[^/]+)$"


def _esc(s) -> str:
    import html
    return html.escape(str(s))


def _progress(total, enabled, desc):
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, disable=not enabled, file=sys.stderr)


# ----------------------------------------------------------------------------- one student (worker)

_API = {}


def _grade_one(root: str, assignment: str, student: str, limits: dict) -> dict:
    """Run nbgrader's autograde for one student; never raises (a failure becomes a zero + note)."""
    from autograder import grade
    course = Course(root)
    grade.DB_LOCK = grade.FileLock(Path(root) / ".gradebook.lock")
    started = time.monotonic()
    key = (root, json.dumps(limits, sort_keys=True))
    try:
        from nbgrader.utils import capture_log, temp_attrs
        if key not in _API:
            _API[key] = course.api(limits)
        api = _API[key]
        with temp_attrs(api.coursedir, assignment_id=assignment, student_id=student):  # as NbGraderAPI.autograde
            app = grade.locked_autograde()(coursedir=api.coursedir, parent=api)
            app.force, app.create_student = True, True
            result = capture_log(app)
        if not result["success"]:
            with grade.DB_LOCK:
                _zero_failed(course, assignment, student, result)
    except Exception as exc:  # noqa: BLE001 - one broken hand-in must not stop the class
        result = {"success": False, "error": f"{type(exc).__name__}: {exc}", "log": ""}
    finally:
        grade.DB_LOCK = None
    return {"student": student, "success": bool(result["success"]),
            "error": (result.get("error") or "")[-2000:], "seconds": round(time.monotonic() - started, 2)}


def _zero_failed(course: Course, assignment: str, student: str, result: dict) -> None:
    """nbgrader could not grade this hand-in at all: give 0 for every cell and say why."""
    from nbgrader.api import Gradebook
    text = f"{result.get('log') or ''}\n{result.get('error') or ''}"
    if "No notebooks" in text or "No submitted file" in text:
        why = "no notebook with the expected name was handed in"
    elif "JSON" in text or "json" in text:
        why = "the notebook file is not valid JSON (was it saved completely?)"
    else:
        lines = [ln.strip() for ln in text.splitlines() if "Error" in ln and "NbGraderException" not in ln]
        why = lines[-1][:300] if lines else "unknown error (see the autograde log)"
    with Gradebook(db_url(course.root), COURSE_ID) as gb:
        gb.update_or_create_student(student)           # so that the export lists the student with 0
        sub = gb.update_or_create_submission(assignment, student)
        for nb in sub.notebooks:
            for g in nb.grades:
                g.auto_score = 0.0
                g.needs_manual_grade = False
            d = course.root / "reports" / assignment / student
            d.mkdir(parents=True, exist_ok=True)
            (d / f"{nb.notebook.name}.failed.json").write_text(json.dumps(
                {"student": student, "assignment": assignment, "notebook": nb.notebook.name,
                 "stopped": f"the notebook could not be graded: {why}", "refused": {}, "repairs": []}))
        gb.db.commit()
