"""Instructor commands, one per step (see autograder/README.md)::

    python -m autograder release   ps3_losses                   # solutions/ -> release/ (student copy)
    python -m autograder collect   ps3_losses --from DIR        # or --zip lms.zip [--regex ...]
    python -m autograder autograde ps3_losses [--student S] [--workers N]
    python -m autograder feedback  ps3_losses [--student S]
    python -m autograder export    grades.csv
    python -m autograder report    ps3_losses [--student S]     # what went wrong, per student

Every command takes ``--course PATH`` (default: autograder/course/, which git ignores).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from autograder.course import DEFAULT_COURSE, Course


def _limits(a) -> dict:
    out = {}
    for name in ("cell_timeout", "total_timeout", "memory_mb", "max_procs"):
        v = getattr(a, name, None)
        if v is not None:
            out[name] = v
    if getattr(a, "limits", None):
        out.update(json.loads(a.limits))
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m autograder", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--course", type=Path, default=DEFAULT_COURSE, help="course folder (default %(default)s)")
    sub = p.add_subparsers(dest="cmd", required=True)

    r = sub.add_parser("release", help="generate the student version of an assignment")
    r.add_argument("assignment")
    r.add_argument("--solutions", type=Path, default=None, help="folder holding <assignment>/ (default solutions/)")

    c = sub.add_parser("collect", help="bring hand-ins into submitted/")
    c.add_argument("assignment")
    c.add_argument("--from", dest="folder", type=Path, help="folder of <student>/ folders or <student>.ipynb files")
    c.add_argument("--zip", dest="zips", type=Path, nargs="*", default=[], help="LMS download(s)")
    c.add_argument("--regex", help="named regex (student_id, file_id) applied to paths inside the zip")

    g = sub.add_parser("autograde", help="grade hand-ins in the sandbox")
    g.add_argument("assignment")
    g.add_argument("--student", action="append", help="only this student (repeatable): re-grading one")
    g.add_argument("--workers", type=int, help="parallel workers (default: grading.json or CPU count)")
    g.add_argument("--cell-timeout", type=int)
    g.add_argument("--total-timeout", type=int)
    g.add_argument("--memory-mb", type=int)
    g.add_argument("--max-procs", type=int)
    g.add_argument("--limits", help="JSON object of further limits (see autograder/sandbox.py Limits)")
    g.add_argument("--quiet", action="store_true")

    f = sub.add_parser("feedback", help="HTML feedback for students")
    f.add_argument("assignment")
    f.add_argument("--student")

    e = sub.add_parser("export", help="grades to CSV")
    e.add_argument("path", type=Path, nargs="?", default=Path("grades.csv"))

    rp = sub.add_parser("report", help="per-student grading report (what went wrong)")
    rp.add_argument("assignment")
    rp.add_argument("--student")

    a = p.parse_args(argv)
    course = Course(a.course)
    if a.cmd == "release":
        kwargs = {"solutions": a.solutions} if a.solutions else {}
        print(f"released: {course.release(a.assignment, **kwargs)}")
    elif a.cmd == "collect":
        if a.folder is None and not a.zips:
            p.error("collect needs --from DIR or --zip FILE")
        for note in course.collect(a.assignment, a.folder, a.zips, a.regex):
            print(note)
        print(f"{len(course.students(a.assignment))} hand-ins in {course.root / 'submitted'}")
    elif a.cmd == "autograde":
        results = course.autograde(a.assignment, a.student, a.workers, _limits(a), progress=not a.quiet)
        bad = [r for r in results if not r["success"]]
        print(f"graded {len(results)} hand-ins; {len(bad)} could not be graded (scored 0)")
        for r in bad:
            print(f"  {r['student']}: {r['error'].strip().splitlines()[-1] if r['error'].strip() else 'failed'}")
        report = course.report(a.assignment)
        if report:
            print(report)
    elif a.cmd == "feedback":
        files = course.feedback(a.assignment, a.student)
        print(f"{len(files)} feedback files in {course.root / 'feedback'}")
    elif a.cmd == "export":
        print(f"grades written to {course.export(a.path)}")
    elif a.cmd == "report":
        print(course.report(a.assignment, a.student))
    return 0


if __name__ == "__main__":
    sys.exit(main())
