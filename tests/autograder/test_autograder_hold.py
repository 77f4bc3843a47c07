"""Issue 8 (hold): a class of adversarial and honest hand-ins, graded through the instructor's commands.

The corpus (``submissions/corpus.py``) is built from the released notebook in a temporary
folder, collected, autograded with 2 workers and small limits, exported and turned into
feedback, exactly as an instructor would (``python -m autograder ...``). Every student must get
exactly the points their work earns, the run must finish for everyone, the reports must say what
went wrong, and no submission may touch the course folder, the gradebook or other students.
"""
import hashlib
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))                      # the autograder package lives at the repo root
sys.path.insert(0, str(Path(__file__).parent / "submissions"))

from autograder.sandbox import bwrap_available  # noqa: E402
from corpus import POINTS, build, corpus  # noqa: E402
from _cli import cli  # noqa: E402
LIMITS = ["--workers", "2", "--cell-timeout", "8", "--total-timeout", "100", "--memory-mb", "2048",
          "--max-procs", "40", "--quiet"]

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not bwrap_available(), reason="needs bubblewrap (bwrap)")]


def digest(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def graded():
    # not under pytest's basetemp: other pytest sessions on the machine prune old basetemps
    tmp = Path(tempfile.mkdtemp(prefix="comp448-hold-"))
    try:
        yield _grade_class(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _grade_class(tmp: Path) -> dict:
    course, hand = tmp / "course", tmp / "handins"
    cli(course, "release", "ps3_losses")
    subs = corpus()
    for sub in subs:
        d = hand / sub.student
        d.mkdir(parents=True)
        (d / sub.filename).write_bytes(build(sub, course))
    collect = cli(course, "collect", "ps3_losses", "--from", str(hand)).stdout
    before_source = digest(course / "source")
    before_submitted = digest(course / "submitted")
    started = time.monotonic()
    autograde = cli(course, "autograde", "ps3_losses", *LIMITS)
    seconds = time.monotonic() - started
    cli(course, "feedback", "ps3_losses")
    cli(course, "export", str(tmp / "grades.csv"))
    return {"course": course, "subs": subs, "collect": collect, "autograde": autograde.stdout, "seconds": seconds,
            "before_source": before_source, "before_submitted": before_submitted, "tmp": tmp}


def cell_scores(course: Path, student: str) -> dict:
    from nbgrader.api import Gradebook, MissingEntry
    with Gradebook(f"sqlite:///{course}/gradebook.db", "comp448") as gb:
        try:
            nb = gb.find_submission_notebook("losses", "ps3_losses", student)
        except MissingEntry:
            return {}
        return {g.name: g.score for g in nb.grades if g.name in POINTS}


def report_text(course: Path, student: str) -> str:
    texts = [p.read_text() for p in (course / "reports" / "ps3_losses" / student).glob("*.json")]
    nb = course / "autograded" / student / "ps3_losses" / "losses.ipynb"
    if nb.exists():
        texts.append(json.loads(nb.read_text())["cells"][0]["source"] if nb.stat().st_size < 10 << 20 else "")
    return "\n".join(str(t) for t in texts)


def test_corpus_is_big_enough():
    subs = corpus()
    assert sum(s.honest for s in subs) >= 15 and sum(not s.honest for s in subs) >= 20
    assert len({s.student for s in subs}) == len(subs)


def test_every_student_gets_exactly_the_points_earned(graded):
    wrong = []
    for sub in graded["subs"]:
        got = cell_scores(graded["course"], sub.student)
        want = {g: float(POINTS[g] if g in sub.passes else 0) for g in POINTS}
        if got != want:
            diff = {g: (want[g], got.get(g)) for g in POINTS if got.get(g) != want[g]}
            wrong.append(f"{sub.student} ({sub.what}): cell -> (earned, given) {diff}\n"
                         f"{report_text(graded['course'], sub.student)[:1500]}")
    assert not wrong, "\n\n".join(wrong)


def test_honest_variants_get_full_marks_in_the_csv(graded):
    import csv
    rows = {r["student_id"]: r for r in csv.DictReader((graded["tmp"] / "grades.csv").open())}
    for sub in graded["subs"]:
        assert float(rows[sub.student]["code_score"]) == sub.score(), sub.student
        if sub.honest:
            assert float(rows[sub.student]["code_score"]) == float(rows[sub.student]["max_code_score"]) == 20.0


def test_reports_say_what_went_wrong(graded):
    for sub in graded["subs"]:
        text = report_text(graded["course"], sub.student)
        for words in sub.report:
            assert words in text, f"{sub.student}: {words!r} not in report:\n{text[:2000]}"
    assert "renamed losses (1).ipynb to losses.ipynb" in graded["collect"]


def test_no_submission_touched_the_course_or_other_students(graded):
    course = graded["course"]
    assert digest(course / "source") == graded["before_source"]
    assert digest(course / "submitted") == graded["before_submitted"]
    assert not list(graded["tmp"].rglob("pwned.txt")) and not list(Path("/tmp").glob("pwned.txt"))
    for sub in graded["subs"]:
        if sub.raw is None and sub.filename.endswith(".ipynb"):
            nb = course / "autograded" / sub.student / "ps3_losses" / "losses.ipynb"
            assert nb.exists() and json.loads(nb.read_text())["cells"], sub.student


def test_feedback_for_everyone_and_small_graded_notebooks(graded):
    course = graded["course"]
    for sub in graded["subs"]:
        html = list((course / "feedback" / sub.student / "ps3_losses").glob("*.html"))
        assert html, sub.student
        nb = course / "autograded" / sub.student / "ps3_losses" / "losses.ipynb"
        if nb.exists():
            assert nb.stat().st_size < 3 << 20, f"{sub.student}: {nb.stat().st_size} bytes"
    text = (course / "feedback" / "a02_loop_swallows_interrupt" / "ps3_losses" / "losses.html").read_text()
    assert "Grading report" in text and "did not run" in text


def test_grading_time(graded):
    summary = json.loads((graded["course"] / "reports" / "ps3_losses" / "autograde.json").read_text())
    print(f"\n{len(graded['subs'])} hand-ins graded in {graded['seconds']:.0f} s with {summary['workers']} workers")
    for s in summary["students"]:
        print(f"  {s['student']:32s} {s['seconds']:6.1f} s")
    assert graded["seconds"] < 600
