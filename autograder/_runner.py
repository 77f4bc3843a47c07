"""Runs ONE student notebook inside the grading sandbox (bubblewrap) and streams what happened.

This file is bound into the sandbox and run there as ``python -I runner.py /input/job.json``.
It uses only the standard library and jupyter_client (no nbformat/nbclient: their imports alone
cost about two CPU seconds per student). Everything it prints is treated by the grader as
untrusted: the student's kernel shares the sandbox with it and could forge its output. It exists
so that an honest notebook gets its outputs, timing and crash notes into the feedback.

Protocol: one JSON object per line on a private copy of stdout.
  {"type": "cell", "index": i, "status": "ok|error|timeout|died|not_run", "execution_count": n,
   "outputs": [...], "truncated": bool, "seconds": s}
  {"type": "record", "line": "<a line of the grading record>"}
  {"type": "end", "reason": "...", "exit": code|null, "log": "<kernel stderr tail>"}
"""
import ctypes
import json
import os
import queue
import shutil
import signal
import sys
import threading
import time


def _private_stdout():
    """Keep the pipe to the grader on a private fd; the kernel inherits /dev/null and a log file."""
    out = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    try:  # not dumpable: the (same-uid) kernel cannot ptrace us or open /proc/<us>/fd/*
        ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE = 4
    except Exception:  # noqa: BLE001
        pass
    return out


class Cell:
    """Outputs of one cell, in nbformat's JSON form, with a byte budget."""

    def __init__(self, budget: int):
        self.outputs, self.budget, self.spent, self.truncated = [], budget, 0, False
        self.execution_count, self.error = None, False

    def add(self, msg_type: str, content: dict) -> None:
        size = len(json.dumps(content, default=str))
        self.spent += size
        if self.spent > self.budget:
            self.truncated = True
            return
        if msg_type == "stream":
            name, text = content.get("name", "stdout"), content.get("text", "")
            last = self.outputs[-1] if self.outputs else None
            if last is not None and last["output_type"] == "stream" and last["name"] == name:
                last["text"] += text
            else:
                self.outputs.append({"output_type": "stream", "name": name, "text": text})
        elif msg_type in ("display_data", "execute_result"):
            out = {"output_type": msg_type, "data": content.get("data", {}), "metadata": content.get("metadata", {})}
            if msg_type == "execute_result":
                out["execution_count"] = content.get("execution_count")
            self.outputs.append(out)
        elif msg_type == "error":
            self.error = True
            self.outputs.append({"output_type": "error", "ename": content.get("ename", ""),
                                 "evalue": content.get("evalue", ""), "traceback": content.get("traceback", [])})


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
    record_offset, record_budget = [0], [job["record_bytes"]]

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

    limits = job["limits"]
    kernels = os.path.join(grading, "jupyter", "kernels", "grading")
    os.makedirs(kernels, exist_ok=True)
    argv = [sys.executable, job["launcher"],
            "--memory-mb", str(limits["memory_mb"]), "--cpu-s", str(limits["cpu_s"]),
            "--fsize-mb", str(limits["fsize_mb"]), "--nofile", "1024", "--preload", job.get("preload", ""),
            "--", "-f", "{connection_file}", "--HistoryManager.hist_file=:memory:"]
    env = {"COMP448_GRADING_RECORD": record_path, "COMP448_GRADING_SEED": job["seed"],
           "NBGRADER_EXECUTION": "autograde", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "HOME": home, "IPYTHONDIR": os.path.join(home, ".ipython"),
           "MPLCONFIGDIR": os.path.join(home, ".mpl"), "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
    with open(os.path.join(kernels, "kernel.json"), "w", encoding="utf-8") as f:
        json.dump({"argv": argv, "display_name": "grading", "language": "python", "env": env}, f)
    os.environ["JUPYTER_PATH"] = os.path.join(grading, "jupyter")
    os.environ.update({k: env[k] for k in ("HOME", "IPYTHONDIR", "MPLCONFIGDIR")})

    with open(os.path.join(work, job["notebook"]), encoding="utf-8") as f:
        nb = json.load(f)

    reason = ["finished"]
    me = os.getpid()

    def kill_others(why):
        """Kill every process of the sandbox except this runner (and bwrap's pid 1)."""
        if reason[0] == "finished":
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
                kill_others(f"more than {limits['max_procs']} processes were started")

    threading.Thread(target=watchdog, daemon=True).start()
    deadline = time.monotonic() + job["total_timeout"]
    exit_code = None
    km = None
    try:
        from jupyter_client import KernelManager
        km = KernelManager(kernel_name="grading")
        km.start_kernel(cwd=work)
        kc = km.client()
        kc.start_channels()
        kc.wait_for_ready(timeout=job["startup_timeout"])
        dead = False
        for index, cell in enumerate(nb.get("cells", [])):
            if not isinstance(cell, dict) or cell.get("cell_type") != "code":
                continue
            if dead or deadline - time.monotonic() < 1:
                if not dead:
                    reason[0] = f"the notebook ran out of its total time ({job['total_timeout']} s)"
                    dead = True
                emit({"type": "cell", "index": index, "status": "not_run", "outputs": []})
                continue
            source = cell.get("source", "")
            source = "".join(source) if isinstance(source, list) else str(source)
            result, status, seconds = run_cell(kc, km, source, job, deadline)
            if status == "hung":
                kill_others(f"cell {index + 1} ignored the interrupt after its {job['cell_timeout']} s timeout")
                status, dead = "timeout", True
                exit_code = _exit_code(km)
            elif status in ("died", "timeout") and not km.is_alive():
                dead = True
                if reason[0] == "finished":
                    reason[0] = f"the kernel died in cell {index + 1}"
                exit_code = _exit_code(km)
            forward_records()
            emit({"type": "cell", "index": index, "status": status, "execution_count": result.execution_count,
                  "outputs": result.outputs, "truncated": result.truncated, "seconds": round(seconds, 3)})
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
        if km is not None:
            try:
                km.shutdown_kernel(now=True)
            except Exception:  # noqa: BLE001
                pass


def _exit_code(km):
    proc = getattr(getattr(km, "provisioner", None), "process", None)
    if proc is None:
        return None
    try:
        return proc.wait(timeout=2)
    except Exception:  # noqa: BLE001
        return proc.poll()


def run_cell(kc, km, source: str, job: dict, deadline: float):
    """Execute one cell: (Cell, status, seconds). status: ok | error | timeout | died | hung."""
    cell = Cell(job["output_bytes_per_cell"])
    started = time.monotonic()
    timeout = min(job["cell_timeout"], max(1.0, deadline - started))
    msg_id = kc.execute(source, store_history=True, allow_stdin=False, stop_on_error=False)
    stop_at, interrupted = started + timeout, False
    while True:
        now = time.monotonic()
        if now >= stop_at:
            if interrupted:               # it did not come back after the interrupt
                return cell, "hung", now - started
            km.interrupt_kernel()
            interrupted, stop_at = True, now + job["grace_s"]
            cell.add("error", {"ename": "CellTimeoutError", "traceback": [],
                               "evalue": f"this cell ran longer than {int(timeout)} s and was interrupted"})
            continue
        try:
            msg = kc.get_iopub_msg(timeout=min(0.5, stop_at - now))
        except queue.Empty:
            if not km.is_alive():
                return cell, "died", time.monotonic() - started
            continue
        if msg.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        kind, content = msg.get("msg_type"), msg.get("content", {})
        if kind == "status" and content.get("execution_state") == "idle":
            status = "timeout" if interrupted else ("error" if cell.error else "ok")
            return cell, status, time.monotonic() - started
        if kind == "execute_input":
            cell.execution_count = content.get("execution_count")
        elif kind == "clear_output":
            cell.outputs = []
        elif kind in ("stream", "display_data", "execute_result", "error"):
            cell.add(kind, content)


if __name__ == "__main__":
    main(sys.argv[1])
