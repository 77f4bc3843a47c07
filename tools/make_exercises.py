"""Generate the student notebooks exercises/<a>/ from the instructor's solutions/<a>/ with nbgrader.

    python tools/make_exercises.py                 # every assignment in solutions/
    python tools/make_exercises.py ps3_losses      # one
    python tools/make_exercises.py --out DIR       # somewhere else (the drift test uses a tmp dir)

Each assignment is released by ``nbgrader generate_assignment`` in a throw-away course folder
(the same code path as ``python -m autograder release``): solution regions become
``# YOUR CODE HERE`` stubs, hidden tests are removed, cells are locked and checksummed. The
result is copied to ``exercises/<a>/`` and stamped (Colab badge + Colab-only install cell,
``tools/stamp_notebooks.py``; stamping comes after generation so that the badge opens the
exercise, not the solution); commit it. ``make exercises`` runs this script.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tools"))

from autograder.course import SOLUTIONS, Course  # noqa: E402


def assignments(solutions: Path = SOLUTIONS) -> list[str]:
    return sorted(p.parent.name for p in solutions.glob("*/*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def make(names: list[str], out: Path, solutions: Path = SOLUTIONS) -> list[Path]:
    written = []
    with tempfile.TemporaryDirectory(prefix="comp448-release-") as tmp:
        course = Course(Path(tmp) / "course")
        for name in names:
            release = course.release(name, solutions)
            dest = out / name
            if dest.exists():
                shutil.rmtree(dest)
            shutil.copytree(release, dest)
            written += sorted(dest.rglob("*.ipynb"))
    from stamp_notebooks import stamp_paths
    stamp_paths(written, root=out.parent)          # badge paths relative to the repo: exercises/<a>/...
    return written


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("assignment", nargs="*", help="default: every folder of solutions/ with a notebook")
    p.add_argument("--out", type=Path, default=REPO / "exercises")
    a = p.parse_args(argv)
    names = a.assignment or assignments()
    for path in make(names, a.out):
        print(f"wrote {path.relative_to(a.out.parent) if a.out.parent in path.parents else path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
