"""A full round trip for every assignment, through the instructor's commands, in a temporary course.

release -> two students (the solution, collected from a folder: full autograded marks; the blank
release, collected from an LMS zip: zero) ->
autograde -> feedback HTML -> CSV export.
"""
import csv
import shutil
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from _cli import cli  # noqa: E402
from autograder.sandbox import bwrap_available  # noqa: E402

ASSIGNMENTS = sorted({p.parent.name for p in (REPO / "solutions").glob("*/*.ipynb")})


@pytest.mark.slow
@pytest.mark.skipif(not bwrap_available(), reason="needs bubblewrap (bwrap)")
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_round_trip(assignment, tmp_path):
    course, hand = tmp_path / "course", tmp_path / "handins"
    assert "released" in cli(course, "release", assignment).stdout
    shutil.copytree(REPO / "solutions" / assignment, hand / "alice")          # a folder per student
    with zipfile.ZipFile(tmp_path / "lms.zip", "w") as z:                     # an LMS download
        for nb in (course / "release" / assignment).glob("*.ipynb"):
            z.write(nb, f"submissions/bob_4242_77_{nb.name}")
    cli(course, "collect", assignment, "--from", str(hand), "--zip", str(tmp_path / "lms.zip"))
    assert sorted(p.name for p in (course / "submitted").iterdir()) == ["alice", "bob"]
    out = cli(course, "autograde", assignment, "--workers", "2", "--cell-timeout", "60", "--quiet").stdout
    assert "0 could not be graded" in out
    cli(course, "feedback", assignment)
    cli(course, "export", str(tmp_path / "grades.csv"))

    rows = {r["student_id"]: r for r in csv.DictReader((tmp_path / "grades.csv").open())}
    assert float(rows["alice"]["max_code_score"]) > 0
    assert float(rows["alice"]["code_score"]) == float(rows["alice"]["max_code_score"])
    assert float(rows["bob"]["code_score"]) == 0.0
    for student in ("alice", "bob"):
        pages = list((course / "feedback" / student / assignment).glob("*.html"))
        assert pages and all("Grading report" in p.read_text() for p in pages)
    alice = (course / "feedback" / "alice" / assignment)
    assert "secret inputs match" in next(alice.glob("*.html")).read_text()
    bob = next((course / "feedback" / "bob" / assignment).glob("*.html")).read_text()
    assert "NotImplementedError" in bob and "GradingError" in bob
    assert "tests" in cli(course, "report", assignment, "--student", "bob").stdout
