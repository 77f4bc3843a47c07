"""The instructor's command line, as the autograder tests call it: ``python -m autograder --course C ...``."""
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def cli(course: Path, *args, timeout=900) -> subprocess.CompletedProcess:
    """Run one command on ``course`` with the venv's bin on PATH (nbgrader runs alembic); it must succeed."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    out = subprocess.run([sys.executable, "-m", "autograder", "--course", str(course), *args], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"{args}:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out
