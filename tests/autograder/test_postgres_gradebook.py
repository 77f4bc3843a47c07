"""Grading against a real PostgreSQL gradebook (nbgrader's ``db_url``), as on several machines.

A throw-away PostgreSQL server (Debian's ``postgresql`` package, ``make system`` installs it) is
started in a temporary folder, listening only on a Unix socket. The course's ``grading.json``
points ``db_url`` at it; release, collect, autograde with 2 workers, and export then go through
the instructor's commands. The grades must be in PostgreSQL (and no SQLite gradebook be made).
"""
import csv
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from _cli import cli  # noqa: E402
from autograder.sandbox import bwrap_available  # noqa: E402

ASSIGNMENT = "ps3_losses"


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _as_server_user(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: CI runs as root, so use Debian's ``postgres`` user."""
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", "postgres", "--", *cmd]


@pytest.fixture
def postgres():
    pg = _pg_bin()
    if pg is None:
        pytest.skip("PostgreSQL missing: run `make system` (Debian's postgresql)")
    pytest.importorskip("psycopg2")
    top = Path(tempfile.mkdtemp(prefix="comp448-pg-"))
    top.chmod(0o755)                                   # the server user must reach its folders
    data, sock = top / "data", top / "sock"
    sock.mkdir()
    if os.geteuid() == 0:
        shutil.chown(top, "postgres")
        shutil.chown(sock, "postgres")
    env = dict(os.environ, LC_ALL="C.UTF-8")
    run = dict(check=True, capture_output=True, text=True, env=env, timeout=120)
    subprocess.run(_as_server_user([str(pg / "initdb"), "-D", str(data), "-U", "grader", "--auth=trust",
                                    "-E", "UTF8"]), **run)
    subprocess.run(_as_server_user([str(pg / "pg_ctl"), "-D", str(data), "-l", str(top / "server.log"), "-w",
                                    "-o", f"-k {sock} -c listen_addresses=''", "start"]), **run)
    try:
        subprocess.run(_as_server_user([str(pg / "createdb"), "-h", str(sock), "-U", "grader", "comp448"]), **run)
        yield f"postgresql+psycopg2://grader@/comp448?host={sock}"
    finally:
        subprocess.run(_as_server_user([str(pg / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]),
                       capture_output=True, env=env, timeout=120)
        shutil.rmtree(top, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.skipif(not bwrap_available(), reason="needs bubblewrap (bwrap)")
def test_autograde_into_postgresql(postgres, tmp_path):
    import sqlalchemy
    course, hand = tmp_path / "course", tmp_path / "handins"
    course.mkdir()
    (course / "grading.json").write_text(json.dumps({"db_url": postgres, "workers": 2}))
    cli(course, "release", ASSIGNMENT)
    for i, student in enumerate(["ann", "ben", "cem", "dia"]):   # solution, blank, solution, blank
        src = REPO / "solutions" / ASSIGNMENT if i % 2 == 0 else course / "release" / ASSIGNMENT
        shutil.copytree(src, hand / student)
    cli(course, "collect", ASSIGNMENT, "--from", str(hand))
    out = cli(course, "autograde", ASSIGNMENT, "--cell-timeout", "60", "--quiet").stdout
    assert "0 could not be graded" in out
    cli(course, "export", str(tmp_path / "grades.csv"))

    assert not (course / "gradebook.db").exists(), "graded into SQLite, not into PostgreSQL"
    rows = {r["student_id"]: r for r in csv.DictReader((tmp_path / "grades.csv").open())}
    full = float(rows["ann"]["max_code_score"])
    assert full > 0
    assert [float(rows[s]["code_score"]) for s in ("ann", "ben", "cem", "dia")] == [full, 0.0, full, 0.0]

    # the same scores, read straight from the server
    engine = sqlalchemy.create_engine(postgres)
    with engine.connect() as db:
        scores = dict(db.execute(sqlalchemy.text(
            "SELECT s.student_id, SUM(g.auto_score) FROM submitted_assignment s "
            "JOIN submitted_notebook n ON n.assignment_id = s.id JOIN grade g ON g.notebook_id = n.id "
            "GROUP BY s.student_id")).all())
    engine.dispose()
    assert {k: float(v) for k, v in scores.items()} == {"ann": full, "ben": 0.0, "cem": full, "dia": 0.0}
