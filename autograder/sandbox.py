"""The grading sandbox: one student notebook, executed under bubblewrap with hard limits.

What the student's kernel sees (everything else of the machine does not exist for it):

- read-only: /usr, /lib*, /bin, a few /etc files, the Python installation and the virtual
  environment, and a *staged* copy of the comp448 package from which the reference modules of
  the assignment are removed (importing them raises ImportError); packages that re-implement
  the references (MONAI) are replaced by the same kind of stub;
- writable: a private tmpfs scratch folder (size-limited) holding a copy of the student's own
  files, and a private /tmp;
- its own user, pid, network (loopback only: no network), IPC and UTS namespaces, running as
  uid 65534 with no capabilities, even when the grader runs as root (as in CI).

The course folder, the gradebook, the instructor's source notebooks, other students' folders
and the grader's own files are not mounted. Limits: a per-cell timeout with interrupt, a
total wall-clock limit enforced from outside (the whole sandbox is killed), an address-space
limit, CPU time, file size and open files (rlimits in the kernel launcher), a process limit
(pids cgroup where available, plus a watchdog), and output budgets per cell and in total.
"""
from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
RUNNER = HERE / "_runner.py"
LAUNCHER = HERE / "_kernel_launcher.py"
ALWAYS_HIDDEN = ("monai",)          # ships DiceLoss/FocalLoss/TverskyLoss: a second reference


@dataclasses.dataclass
class Limits:
    """Per-student limits. Defaults suit a course; tests pass small ones."""
    cell_timeout: int = 60          # seconds per cell before the kernel is interrupted
    total_timeout: int = 600        # seconds for the whole notebook (then the sandbox is killed)
    grace_s: int = 5                # after an interrupt: seconds to come back before the kernel is killed
    startup_timeout: int = 60
    memory_mb: int = 3072           # address space of the kernel (and of each process it starts)
    cpu_s: int = 900                # CPU seconds of the kernel
    fsize_mb: int = 64              # largest file the kernel may write
    scratch_mb: int = 512           # size of the writable scratch tmpfs
    max_procs: int = 64             # processes in the sandbox
    output_bytes_per_cell: int = 200_000
    stream_bytes: int = 64 << 20    # everything the sandbox may send back
    record_bytes: int = 32 << 20

    @classmethod
    def from_dict(cls, d: dict) -> "Limits":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown limits {sorted(unknown)}; known: {sorted(names)}")
        return cls(**d)


@dataclasses.dataclass
class CellResult:
    index: int
    status: str                     # ok | error | timeout | died | not_run
    outputs: list
    execution_count: int | None = None
    truncated: bool = False
    seconds: float = 0.0


@dataclasses.dataclass
class SandboxResult:
    cells: dict                     # index -> CellResult (untrusted content, validated shape)
    records: list                   # raw record lines (untrusted)
    reason: str                     # why execution stopped, in plain words
    exit_code: int | None
    log_tail: str
    wall_s: float
    killed: bool                    # the grader had to kill the sandbox from outside


def bwrap_available() -> bool:
    return shutil.which("bwrap") is not None


# ----------------------------------------------------------------------------- staged comp448

_STUB = ('raise ImportError("{name} is not available while your notebook is graded: "\n'
         '                  "the tests compare your code with it, so write your own implementation")\n')


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return Path(list(spec.submodule_search_locations)[0]).resolve()
    return Path(spec.origin).resolve() if spec.origin else None


def stage_package(hidden: list[str], cache_root: Path) -> tuple[Path, Path]:
    """A copy of comp448 without the hidden modules. Returns (staged dir, real dir it replaces)."""
    real = _package_dir("comp448")
    if real is None:
        raise RuntimeError("comp448 is not installed in the grading environment")
    digest = hashlib.sha256(repr((str(real), sorted(hidden), _tree_stamp(real))).encode()).hexdigest()[:16]
    staged = cache_root / f"comp448-{digest}" / "comp448"
    if staged.exists():
        return staged, real
    tmp = cache_root / f"tmp-{uuid.uuid4().hex}"
    shutil.copytree(real, tmp / "comp448", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in hidden:
        rel = name.split(".")[1:]
        if not rel:
            raise ValueError("cannot hide the whole comp448 package")
        target = tmp.joinpath("comp448", *rel)
        if target.is_dir():
            shutil.rmtree(target)
            target.mkdir()
            (target / "__init__.py").write_text(_STUB.format(name=name))
        elif target.with_suffix(".py").exists():
            target.with_suffix(".py").write_text(_STUB.format(name=name))
    try:
        os.replace(tmp, staged.parent)
    except OSError:           # another worker staged it first
        shutil.rmtree(tmp, ignore_errors=True)
    return staged, real


def _tree_stamp(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*.py")):
        st = p.stat()
        h.update(f"{p.relative_to(root)}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()


def _stub_package(name: str, cache_root: Path) -> Path:
    d = cache_root / f"stub-{name}" / name
    if not d.exists():
        d.mkdir(parents=True, exist_ok=True)
        (d / "__init__.py").write_text(_STUB.format(name=name))
    return d


# ----------------------------------------------------------------------------- cgroups

class _Cgroups:
    """pids (and memory) cgroup v1 limits where the grader may create them; a no-op elsewhere."""

    def __init__(self, limits: Limits):
        self.dirs: list[Path] = []
        name = f"comp448-{uuid.uuid4().hex[:12]}"
        # pids counts threads too: room for every process's threads, the watchdog counts processes
        for controller, settings in (("pids", {"pids.max": 4 * limits.max_procs + 64}),
                                     ("memory", {"memory.limit_in_bytes": (limits.memory_mb + 1024) << 20})):
            base = Path("/sys/fs/cgroup") / controller
            try:
                rel = _own_cgroup(controller)
                d = base / rel.lstrip("/") / name
                d.mkdir()
                for k, v in settings.items():
                    (d / k).write_text(str(v))
                self.dirs.append(d)
            except (OSError, ValueError):
                continue

    def enter(self) -> None:  # runs in the child between fork and exec
        for d in self.dirs:
            try:
                (d / "cgroup.procs").write_text(str(os.getpid()))
            except OSError:
                pass

    def close(self) -> None:
        for d in self.dirs:
            for _ in range(50):
                try:
                    d.rmdir()
                    break
                except OSError:
                    time.sleep(0.05)


def _own_cgroup(controller: str) -> str:
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, ctrls, path = line.split(":", 2)
        if controller in ctrls.split(","):
            return path
    raise ValueError(controller)


# ----------------------------------------------------------------------------- running

def _etc_files(tmp: Path) -> list[str]:
    (tmp / "passwd").write_text("student:x:65534:65534:student:/scratch/.home:/bin/sh\n")
    (tmp / "group").write_text("student:x:65534:\n")
    (tmp / "hosts").write_text("127.0.0.1 localhost\n")
    args = []
    for name in ("passwd", "group", "hosts"):
        args += ["--ro-bind", str(tmp / name), f"/etc/{name}"]
    for path in ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime", "/etc/fonts"):
        args += ["--ro-bind-try", path, path]
    return args


def build_command(job_dir: Path, staged: Path, real: Path, stubs: dict, limits: Limits) -> list[str]:
    prefixes = sorted({os.path.realpath(sys.prefix), os.path.realpath(sys.base_prefix),
                       os.path.dirname(os.path.dirname(os.path.realpath(sys.executable)))})
    cmd = ["bwrap", "--unshare-all", "--unshare-user", "--uid", "65534", "--gid", "65534",
           "--die-with-parent", "--new-session", "--cap-drop", "ALL", "--hostname", "grading",
           # /tmp first: binds below may live under /tmp (a CI clone, a venv), and a later
           # tmpfs on /tmp would hide them.
           "--size", str(64 << 20), "--tmpfs", "/tmp"]
    for d in ("/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin"):
        cmd += ["--ro-bind-try", d, d]
    cmd += _etc_files(job_dir)
    for p in prefixes:
        if not p.startswith("/usr/"):
            cmd += ["--ro-bind", p, p]
    if sys.prefix != os.path.realpath(sys.prefix):      # the venv as the interpreter names it
        cmd += ["--ro-bind", os.path.realpath(sys.prefix), sys.prefix]
    cmd += ["--ro-bind", str(staged), str(real)]
    for real_dir, stub in stubs.items():
        cmd += ["--ro-bind", str(stub), str(real_dir)]
    cmd += ["--ro-bind", str(job_dir / "input"), "/input",
            "--ro-bind", str(RUNNER), "/opt/grader/runner.py",
            "--ro-bind", str(LAUNCHER), "/opt/grader/launcher.py",
            "--proc", "/proc", "--dev", "/dev",
            "--size", str(limits.scratch_mb << 20), "--tmpfs", "/scratch",
            "--size", str(64 << 20), "--tmpfs", "/dev/shm",
            "--chdir", "/scratch", "--clearenv",
            "--setenv", "PATH", f"{os.path.dirname(sys.executable)}:/usr/bin:/bin",
            "--setenv", "HOME", "/scratch/.home", "--setenv", "USER", "student",
            "--setenv", "LANG", "C.UTF-8", "--setenv", "OMP_NUM_THREADS", "1",
            "--setenv", "PYTHONDONTWRITEBYTECODE", "1",
            sys.executable, "-I", "/opt/grader/runner.py", "/input/job.json"]
    return cmd


def run_notebook(notebook_json: str, files: dict[str, bytes], *, seed: str, hidden: list[str],
                 limits: Limits, cache_root: Path,
                 preload=("numpy", "torch", "matplotlib.pyplot", "comp448.grading")) -> SandboxResult:
    """Execute one notebook in a fresh sandbox; return what came back (untrusted, size-capped)."""
    if not bwrap_available():
        raise RuntimeError("bubblewrap (bwrap) is required for grading: apt-get install bubblewrap")
    cache_root.mkdir(parents=True, exist_ok=True)
    staged, real = stage_package(hidden, cache_root)
    stubs = {}
    for name in ALWAYS_HIDDEN:
        d = _package_dir(name)
        if d is not None and d.is_dir():
            stubs[d] = _stub_package(name, cache_root)
    with tempfile.TemporaryDirectory(prefix="comp448-job-") as tmp:
        job_dir = Path(tmp)
        inp = job_dir / "input"
        inp.mkdir()
        for rel, data in files.items():
            dest = inp / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
        (inp / "submission.ipynb").write_text(notebook_json, encoding="utf-8")
        job = {"workdir": "/scratch", "inputdir": "/input", "notebook": "submission.ipynb", "seed": seed,
               "launcher": "/opt/grader/launcher.py", "preload": ",".join(preload), "cell_timeout": limits.cell_timeout,
               "total_timeout": limits.total_timeout, "grace_s": limits.grace_s,
               "startup_timeout": limits.startup_timeout, "output_bytes_per_cell": limits.output_bytes_per_cell,
               "record_bytes": limits.record_bytes, "record_line_bytes": 8 << 20,
               "limits": {"memory_mb": limits.memory_mb, "cpu_s": limits.cpu_s, "fsize_mb": limits.fsize_mb,
                          "max_procs": limits.max_procs}}
        (inp / "job.json").write_text(json.dumps(job))
        os.chmod(job_dir, 0o755)
        cmd = build_command(job_dir, staged, real, stubs, limits)
        return _run(cmd, limits)


def _run(cmd: list[str], limits: Limits) -> SandboxResult:
    cgroups = _Cgroups(limits)

    def preexec():
        cgroups.enter()
        import resource
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=preexec, start_new_session=True)
    lines: list[bytes] = []
    err: list[bytes] = []
    over = threading.Event()

    def read_stdout():
        budget = limits.stream_bytes
        for line in iter(lambda: proc.stdout.readline(16 << 20), b""):
            budget -= len(line)
            if budget < 0:
                over.set()
                _kill(proc)
                break
            lines.append(line)
        proc.stdout.close()

    def read_stderr():
        data = proc.stderr.read(20000)
        err.append(data)
        while proc.stderr.read(1 << 16):
            pass

    readers = [threading.Thread(target=read_stdout, daemon=True), threading.Thread(target=read_stderr, daemon=True)]
    for t in readers:
        t.start()
    killed = False
    try:
        proc.wait(timeout=limits.total_timeout + limits.startup_timeout + 2 * limits.grace_s + 10)
    except subprocess.TimeoutExpired:
        killed = True
        _kill(proc)
        proc.wait()
    finally:
        for t in readers:
            t.join(timeout=5)
        cgroups.close()
    wall = time.monotonic() - started
    return _parse(lines, err[0] if err else b"", wall, killed, over.is_set(), limits)


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        pass


def _parse(lines, stderr: bytes, wall: float, killed: bool, overflow: bool, limits: Limits) -> SandboxResult:
    cells, records, end = {}, [], None
    for raw in lines:
        try:
            msg = json.loads(raw)
        except ValueError:
            continue
        if not isinstance(msg, dict):
            continue
        kind = msg.get("type")
        if kind == "cell" and isinstance(msg.get("index"), int) and isinstance(msg.get("outputs"), list):
            status = msg.get("status") if msg.get("status") in ("ok", "error", "timeout", "died", "not_run") else "error"
            ec, sec = msg.get("execution_count"), msg.get("seconds")
            cells[msg["index"]] = CellResult(msg["index"], status, msg["outputs"],
                                             ec if isinstance(ec, int) else None, bool(msg.get("truncated")),
                                             float(sec) if isinstance(sec, (int, float)) else 0.0)
        elif kind == "record" and isinstance(msg.get("line"), str):
            records.append(msg["line"])
        elif kind == "end":
            end = msg
    if overflow:
        reason = f"the notebook sent more than {limits.stream_bytes >> 20} MB of output; it was stopped"
    elif killed:
        reason = f"the notebook ran past its total time limit ({limits.total_timeout} s) and was stopped"
    elif end is None:
        reason = "the grading sandbox stopped unexpectedly (its runner was killed from inside the notebook?)"
        tail = stderr.decode("utf-8", "replace").strip()
        if tail:
            reason += f": {tail[-300:]}"
    else:
        reason = str(end.get("reason", ""))[:500]
    exit_code = end.get("exit") if end and isinstance(end.get("exit"), int) else None
    log = str(end.get("log", ""))[-3000:] if end else ""
    return SandboxResult(cells, records, reason, exit_code, log, wall, killed or overflow)
