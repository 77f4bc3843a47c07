"""Every assignment in solutions/: valid grader cells, solution passes, release fails, no drift.

Written over ``solutions/*/*.ipynb`` so that later assignments are covered without new tests.
"""
import json
import sys
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tools"))

from comp448 import grading  # noqa: E402

SOLUTIONS = sorted(p for p in (REPO / "solutions").glob("*/*.ipynb") if ".ipynb_checkpoints" not in p.parts)
IDS = [f"{p.parent.name}/{p.name}" for p in SOLUTIONS]


def released(path: Path) -> Path:
    return REPO / "exercises" / path.parent.name / path.name


def nbgrader_cells(nb):
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader")
        if meta is not None:
            yield cell, meta


def test_there_is_at_least_the_pilot():
    assert REPO / "solutions" / "ps3_losses" / "losses.ipynb" in SOLUTIONS


@pytest.mark.parametrize("path", SOLUTIONS, ids=IDS)
def test_cells_follow_the_authoring_pattern(path):
    nb = nbformat.read(path, as_version=4)
    ids = [m.get("grade_id") for _, m in nbgrader_cells(nb)]
    assert len(ids) == len(set(ids)) and all(ids), "grade_id missing or repeated"
    assert all(c.get("metadata", {}).get("nbgrader") for c in nb.cells), "every cell needs nbgrader metadata"
    tests = 0
    for cell, meta in nbgrader_cells(nb):
        assert meta["schema_version"] == 3
        if meta["grade"]:
            assert meta.get("points", 0) > 0, meta["grade_id"]
        if meta["solution"]:
            assert "### BEGIN SOLUTION" in cell.source and "### END SOLUTION" in cell.source, meta["grade_id"]
        if meta["grade"] and not meta["solution"]:
            tests += 1
            assert meta["locked"] and cell.cell_type == "code"
            visible = cell.source.split("### BEGIN HIDDEN TESTS")[0]
            assert "grading.check_function(" in visible, f"{meta['grade_id']}: no visible check"
            # the grader can run the cell without the student's code: with no records every check
            # fails as "did not run", never as an authoring error
            ctx = grading.VerifyContext(records={}, seed="lint", copies={"__names__": {}})
            result = grading.verify_test_cell(cell.source, ctx, cell_name=meta["grade_id"])
            assert not result.passed and not result.authoring_error, f"{meta['grade_id']}: {result.text}"
    assert tests > 0
    assert nb.metadata["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("path", SOLUTIONS, ids=IDS)
def test_exercise_is_committed_and_has_no_solutions(path):
    nb = nbformat.read(released(path), as_version=4)
    text = json.dumps(nb)
    assert "BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text
    assert "raise NotImplementedError()" in text
    assert not any(c.get("outputs") for c in nb.cells if c.cell_type == "code")


@pytest.mark.slow
@pytest.mark.parametrize("path", SOLUTIONS, ids=IDS)
def test_solution_passes_and_release_fails(path, tmp_path):
    from nbgrader.validator import Validator
    v = Validator()
    v.timeout = 300
    assert v.validate(str(path)) == {}, "the solution notebook fails its own tests"
    result = v.validate(str(released(path)))
    failed = result.get("failed", [])             # nbgrader lists the failing cells
    assert len(failed) > 0, f"the released notebook passes its tests: {result}"


@pytest.mark.slow
def test_exercises_do_not_drift(tmp_path):
    import make_exercises
    names = sorted({p.parent.name for p in SOLUTIONS})
    out = tmp_path / "exercises"                  # same relative paths as the repo (for the badges)
    make_exercises.make(names, out)
    for path in SOLUTIONS:
        fresh = nbformat.read(out / path.parent.name / path.name, as_version=4)
        committed = nbformat.read(released(path), as_version=4)
        assert [c.cell_type for c in fresh.cells] == [c.cell_type for c in committed.cells]
        for a, b in zip(fresh.cells, committed.cells):
            assert a.source == b.source, f"{path.name}: cell {a.get('id')} drifted; run make exercises"
            assert a.metadata == b.metadata, f"{path.name}: metadata of cell {a.get('id')} drifted"
        assert fresh.metadata == committed.metadata

