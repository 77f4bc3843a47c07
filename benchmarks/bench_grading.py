"""Autograding throughput: the same class graded with 1 worker and with N workers.

    python benchmarks/bench_grading.py                       # 30 hand-ins per assignment, 1 vs 2 workers
    python benchmarks/bench_grading.py --students 10 --workers 4 --assignments ps3_losses

Every assignment in solutions/ is released into a temporary course and handed in by
``--students`` students (alternately the instructor's solution and the blank release, so that both
full runs and failing tests are timed). Each assignment is graded through ``python -m autograder
autograde`` (sandbox, verification, gradebook), once sequentially and once with N workers, on the
same hand-ins. Printed: wall time, seconds per submitted notebook, speed-up, and the load average
(other jobs on the machine slow both runs alike).
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def cli(course: Path, *args) -> None:
    env = dict(os.environ, OMP_NUM_THREADS="1", PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    subprocess.run([sys.executable, "-m", "autograder", "--course", str(course), *args], cwd=REPO, env=env,
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--students", type=int, default=30)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--assignments", nargs="*", default=None, help="default: every assignment in solutions/")
    a = p.parse_args(argv)
    names = a.assignments or sorted({q.parent.name for q in (REPO / "solutions").glob("*/*.ipynb")})
    rows = []
    with tempfile.TemporaryDirectory(prefix="comp448-bench-") as tmp:
        course, hand = Path(tmp) / "course", Path(tmp) / "handins"
        for name in names:
            cli(course, "release", name)
            notebooks = len(list((course / "release" / name).glob("*.ipynb")))
            shutil.rmtree(hand, ignore_errors=True)
            for i in range(a.students):
                src = REPO / "solutions" / name if i % 2 == 0 else course / "release" / name
                shutil.copytree(src, hand / f"s{i:03d}")
            cli(course, "collect", name, "--from", str(hand))
            times = {}
            for workers in (1, a.workers):
                load = os.getloadavg()[0]
                started = time.monotonic()
                cli(course, "autograde", name, "--workers", str(workers), "--quiet")
                times[workers] = (time.monotonic() - started, load)
            rows.append((name, notebooks, times))
    print(f"{'assignment':18s} {'hand-ins':>8s} {'1 worker [s]':>13s} {f'{a.workers} workers [s]':>14s} "
          f"{'s/notebook (1)':>15s} {f's/notebook ({a.workers})':>15s} {'speed-up':>9s} {'load avg':>9s}")
    total1 = totaln = 0.0
    count = 0
    for name, notebooks, times in rows:
        (t1, l1), (tn, ln) = times[1], times[a.workers]
        n = a.students * notebooks
        total1, totaln, count = total1 + t1, totaln + tn, count + n
        print(f"{name:18s} {a.students:8d} {t1:13.1f} {tn:14.1f} {t1 / n:15.2f} {tn / n:15.2f} {t1 / tn:9.2f} "
              f"{(l1 + ln) / 2:9.1f}")
    if len(rows) > 1:
        print(f"{'whole course':18s} {a.students:8d} {total1:13.1f} {totaln:14.1f} {total1 / count:15.2f} "
              f"{totaln / count:15.2f} {total1 / totaln:9.2f}")
    print(f"cores: {os.cpu_count()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
