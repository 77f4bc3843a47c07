"""Runs ONE student notebook inside the grading sandbox (bubblewrap) and streams what happened.

This file is copied into the sandbox and run there as ``python runner.py /input/job.json``;
it imports nothing from the course (only the standard library, nbformat and nbclient).
Everything it prints is treated by the grader as untrusted: the student's kernel shares the
sandbox with it and could forge its output. It only exists so that an honest notebook gets
its outputs, timing and crash notes into the feedback.

Protocol: one JSON object per line on the private copy of stdout.
  {"type": "cell", "index": i, "status": "ok|error|timeout|died|not_run", "execution_count": n,
   "outputs": [...], "truncated": bool, "seconds": s}
  {"type": "record", "line": "<a line of the grading record>"}
  {"type": "end", "reason": "...", "exit": code|null, "log": "<kernel stderr tail>"}
"""
import ctypes
import json
import os
import shutil
import signal
import sys
import threading
import time


def _private_stdout():
    """Keep the pipe to the grader on a private fd; kernels inherit /dev/null and a log file."""
    out = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    try:  # not dumpable: the (same-uid) kernel cannot ptrace us or open /proc/<us>/fd/*
        ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE = 4
    except Exception:  # noqa: BLE001
        pass
    return out


def main(job_path: str) -> None:
    with open(job_path, encoding="utf-8") as f:
        job = json.load(f)
    out = _private_stdout()
    work = job["workdir"]
    grading = os.path.join(work, ".grading")
    home = os.path.join(work, ".home")
    shutil.copytree(job["inputdir"], work, dirs_exist_ok=True)
    os.makedirs(grading, exist_ok=True)
    os.makedirs(home, exist_ok=True)
    log_path = os.path.join(grading, "kernel.log")
    devnull = os.open(os.devnull, os.O_RDWR)
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(devnull, 0)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)

    lock = threading.Lock()

    def emit(obj):
        with lock:
            out.write(json.dumps(obj) + "\n")

    record_path = os.path.join(grading, "record.jsonl")
    record_offset = [0]
    record_budget = [job["record_bytes"]]

    def forward_records():
        try:
            with open(record_path, "rb") as f:
                f.seek(record_offset[0])
                while record_budget[0] > 0:
                    line = f.readline(job["record_line_bytes"] + 1)
                    if not line or not line.endswith(b"\n"):
                        break
                    record_offset[0] = f.tell()
                    record_budget[0] -= len(line)
                    emit({"type": "record", "line": line.decode("utf-8", "replace").rstrip("\n")})
        except OSError:
            pass

    kernels = os.path.join(grading, "jupyter", "kernels", "grading")
    os.makedirs(kernels, exist_ok=True)
    limits = job["limits"]
    argv = [sys.executable, job["launcher"],
            "--memory-mb", str(limits["memory_mb"]), "--cpu-s", str(limits["cpu_s"]),
            "--fsize-mb", str(limits["fsize_mb"]), "--nofile", "1024",
            "--preload", job.get("preload", ""), "--", "-f", "{connection_file}",
            "--HistoryManager.hist_file=:memory:"]
    env = {"COMP448_GRADING_RECORD": record_path, "COMP448_GRADING_SEED": job["seed"],
           "NBGRADER_EXECUTION": "autograde", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "HOME": home, "IPYTHONDIR": os.path.join(home, ".ipython"),
           "MPLCONFIGDIR": os.path.join(home, ".mpl"), "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
    with open(os.path.join(kernels, "kernel.json"), "w", encoding="utf-8") as f:
        json.dump({"argv": argv, "display_name": "grading", "language": "python", "env": env}, f)
    os.environ["JUPYTER_PATH"] = os.path.join(grading, "jupyter")
    os.environ.update({k: env[k] for k in ("HOME", "IPYTHONDIR", "MPLCONFIGDIR")})

    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    cell_limit = job["output_bytes_per_cell"]

    class Client(NotebookClient):
        """nbclient with a per-cell output budget (the rest is dropped, and counted)."""
        spent: dict = {}
        truncated: set = set()

        def output(self, outs, msg, display_id, cell_index):
            size = len(json.dumps(msg.get("content", {}), default=str))
            self.spent[cell_index] = self.spent.get(cell_index, 0) + size
            if self.spent[cell_index] > cell_limit:
                self.truncated.add(cell_index)
                return None
            return super().output(outs, msg, display_id, cell_index)

    nb = nbformat.read(os.path.join(work, job["notebook"]), as_version=4)
    timeout = job["cell_timeout"]
    client = Client(
        nb, timeout=timeout, kernel_name="grading", allow_errors=True, interrupt_on_timeout=True,
        error_on_timeout={"ename": "CellTimeoutError",
                          "evalue": f"this cell ran longer than {timeout} s and was interrupted",
                          "traceback": [f"CellTimeoutError: this cell ran longer than {timeout} s and was interrupted"]},
        iopub_timeout=job["grace_s"], raise_on_iopub_timeout=True, startup_timeout=job["startup_timeout"],
        shutdown_kernel="immediate", record_timing=False, coalesce_streams=True,
        resources={"metadata": {"path": work}})

    reason = ["finished"]
    me = os.getpid()

    def kill_others(why):
        """Kill every process of the sandbox except this runner (and bwrap's pid 1)."""
        reason[0] = why
        for name in os.listdir("/proc"):
            if name.isdigit() and int(name) not in (1, me):
                try:
                    os.kill(int(name), signal.SIGKILL)
                except OSError:
                    pass

    stop = threading.Event()

    def watchdog():  # a fork storm is stopped even where no pids cgroup is available
        while not stop.wait(0.2):
            n = sum(1 for name in os.listdir("/proc") if name.isdigit())
            if n > limits["max_procs"]:
                kill_others(f"more than {limits['max_procs']} processes")

    threading.Thread(target=watchdog, daemon=True).start()
    deadline = time.monotonic() + job["total_timeout"]
    exit_code = None
    try:
        with client.setup_kernel():
            dead = False
            for index, cell in enumerate(nb.cells):
                if cell.cell_type != "code":
                    continue
                left = deadline - time.monotonic()
                if dead or left < 1:
                    if not dead:
                        reason[0] = f"the notebook ran out of its total time ({job['total_timeout']} s)"
                        dead = True
                    emit({"type": "cell", "index": index, "status": "not_run", "outputs": []})
                    continue
                client.timeout = int(max(1, min(timeout, left)))
                started = time.monotonic()
                status = "ok"
                try:
                    client.execute_cell(cell, index)
                    if time.monotonic() - started >= client.timeout - 0.05:
                        status = "timeout"
                        cell.setdefault("outputs", []).append(
                            {"output_type": "error", "ename": "CellTimeoutError", "traceback": [],
                             "evalue": f"this cell ran longer than {client.timeout} s and was interrupted"})
                    elif any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
                        status = "error"
                except CellTimeoutError:
                    status, dead = "timeout", True
                    kill_others(f"cell {index} ignored the interrupt after its {timeout} s timeout")
                except DeadKernelError:
                    status, dead = "died", True
                    if reason[0] == "finished":
                        reason[0] = f"the kernel died in cell {index}"
                except Exception as exc:  # noqa: BLE001 - keep going, say what happened
                    status, dead = "died", True
                    reason[0] = f"cell {index}: {type(exc).__name__}: {exc}"[:500]
                if dead:
                    proc = getattr(getattr(client.km, "provisioner", None), "process", None)
                    if proc is not None:
                        try:
                            exit_code = proc.wait(timeout=2)
                        except Exception:  # noqa: BLE001
                            exit_code = proc.poll()
                forward_records()
                emit({"type": "cell", "index": index, "status": status,
                      "execution_count": cell.get("execution_count"), "outputs": cell.get("outputs", []),
                      "truncated": index in client.truncated, "seconds": round(time.monotonic() - started, 3)})
    except Exception as exc:  # noqa: BLE001 - e.g. the kernel never started
        reason[0] = f"{type(exc).__name__}: {exc}"[:500]
    finally:
        stop.set()
        forward_records()
        try:
            with open(log_path, "rb") as f:
                f.seek(max(0, os.path.getsize(log_path) - 3000))
                tail = f.read().decode("utf-8", "replace")
        except OSError:
            tail = ""
        emit({"type": "end", "reason": reason[0], "exit": exit_code, "log": tail})
        out.flush()


if __name__ == "__main__":
    main(sys.argv[1])
