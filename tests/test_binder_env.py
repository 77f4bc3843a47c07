"""binder/: the repo2docker files are complete and consistent, and the environment they describe runs
the course.

Fast tests read the files. The slow test builds ONE clean virtual environment (no system site
packages) from ``binder/requirements.txt`` with its torch pin mapped to this machine's local
torch 2.13.0 (``torch==2.13.0+cpu`` -> ``torch==2.13.0``, the PyTorch CPU index line dropped: pip
here must never resolve a CUDA build, and the exact pin is in the same pip command), runs
``binder/postBuild`` in it, checks nbgrader's student/instructor extensions, and executes a lecture
notebook and a solution notebook with that environment's own Jupyter and kernel.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BINDER = ROOT / "binder"
LECTURE = ROOT / "lectures" / "05b_loss_weighting_visualizer.ipynb"
TORCH_PIN = "torch==2.13.0+cpu"
CPU_INDEX = "--extra-index-url https://download.pytorch.org/whl/cpu"
DISABLED_LAB = ("@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:create-assignment",
                "@jupyter/nbgrader:course-list")


def _requirement_lines(path: Path) -> list[str]:
    lines = []
    for raw in path.read_text().splitlines():
        line = raw.split(" #")[0].strip()
        if line and not line.startswith("#"):
            lines.append(line)
    return lines


def _pins(lines) -> dict[str, str]:
    out = {}
    for line in lines:
        m = re.fullmatch(r"([A-Za-z0-9_.\-]+)\s*==\s*([^\s;]+)", line)
        if m:
            out[m.group(1).lower()] = m.group(2)
    return out


def local_requirements(text_lines: list[str]) -> list[str]:
    """binder/requirements.txt as this machine installs it: local torch 2.13.0, no CPU index line."""
    out = []
    for line in text_lines:
        if line.startswith("--extra-index-url") or line.startswith("--index-url"):
            continue
        out.append("torch==2.13.0" if line == TORCH_PIN else line)
    return out


# ----------------------------------------------------------------------------- fast: the files

def test_binder_folder_is_what_repo2docker_reads():
    assert BINDER.is_dir()
    assert not (ROOT / ".binder").exists(), "binder/ and .binder/ together are an error for repo2docker"
    for other in ("environment.yml", "Dockerfile", "Pipfile"):
        assert not (BINDER / other).exists(), f"binder/{other} would override requirements.txt + runtime.txt"
    assert (BINDER / "runtime.txt").read_text().strip() == "python-3.11"


def test_requirements_pin_cpu_torch_and_install_comp448():
    lines = _requirement_lines(BINDER / "requirements.txt")
    assert CPU_INDEX in lines, "the +cpu wheel needs PyTorch's CPU index"
    assert TORCH_PIN in lines
    assert sum(l.lower().startswith("torch") for l in lines) == 1
    assert "-e ." in lines or "." in lines, "comp448 itself must be installed from the repository"
    names = {re.split(r"[=<>\[ ]", l)[0].lower() for l in lines if not l.startswith("-") and l != "."}
    for needed in ("torch", "numpy", "scipy", "scikit-image", "matplotlib", "tqdm", "ipywidgets",
                   "jupyterlab", "nbgrader", "ipykernel"):
        assert needed in names, f"binder/requirements.txt lacks {needed}"
    for test_only in ("monai", "playwright", "pytest-xdist"):
        assert test_only not in names, f"{test_only} is test-only; students' image does not need it"


def test_requirements_agree_with_the_repository_pins():
    binder = _pins(_requirement_lines(BINDER / "requirements.txt"))
    repo = _pins(_requirement_lines(ROOT / "requirements.txt"))
    assert binder.pop("torch") == repo.pop("torch") + "+cpu"
    common = set(binder) & set(repo)
    assert {"numpy", "jupyterlab", "nbgrader", "ipywidgets"} <= common
    diff = {k: (binder[k], repo[k]) for k in common if binder[k] != repo[k]}
    assert not diff, f"binder/requirements.txt and requirements.txt pin different versions: {diff}"


def test_local_mapping_keeps_torch_pinned_in_the_same_file():
    lines = local_requirements(_requirement_lines(BINDER / "requirements.txt"))
    assert "torch==2.13.0" in lines and TORCH_PIN not in lines
    assert not any(l.startswith("--extra-index-url") for l in lines)


def test_postbuild_disables_instructor_extensions_only():
    text = (BINDER / "postBuild").read_text()
    lines = [l.strip() for l in text.splitlines() if l.strip() and not l.strip().startswith("#")]
    assert text.startswith("#!/bin/bash") and lines[0] == "set -e", "postBuild must start with set -e"
    assert os.access(BINDER / "postBuild", os.X_OK), "postBuild must be executable"
    for plugin in DISABLED_LAB:
        assert f"jupyter labextension disable --level=sys_prefix {plugin}" in lines
    assert "jupyter server extension disable --sys-prefix nbgrader.server_extensions.formgrader" in lines
    assert "validate" not in text.replace("Validate button", ""), "validate-assignment must stay enabled"


def test_start_caps_threads_and_hands_over():
    """binder/start (run at every launch) caps torch's threads unless set, then execs the server."""
    path = BINDER / "start"
    assert os.access(path, os.X_OK), "binder/start must be executable"
    lines = [l.strip() for l in path.read_text().splitlines() if l.strip() and not l.strip().startswith("#")]
    assert lines[-1] == 'exec "$@"', "binder/start must end with exec \"$@\""
    run = lambda env: subprocess.run([str(path), "bash", "-c", "echo $OMP_NUM_THREADS $MKL_NUM_THREADS"],
                                     capture_output=True, text=True, env=env, timeout=30).stdout.split()
    base = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    assert run(base) == ["2", "2"]
    assert run(dict(base, OMP_NUM_THREADS="1")) == ["1", "2"]          # an explicit setting wins


# ----------------------------------------------------------------------------- slow: a clean environment

def _clean_env(venv: Path, home: Path) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTHON", "JUPYTER", "VIRTUAL_ENV", "PIP_", "MPLBACKEND", "CONDA"))}
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}/usr/bin{os.pathsep}/bin", VIRTUAL_ENV=str(venv),
               PYTHONNOUSERSITE="1", JUPYTER_CONFIG_DIR=str(home / "config"),
               JUPYTER_DATA_DIR=str(home / "data"), JUPYTER_RUNTIME_DIR=str(home / "runtime"),
               IPYTHONDIR=str(home / "ipython"), MPLCONFIGDIR=str(home / "mpl"),
               OMP_NUM_THREADS="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    return env


def _run(cmd, env, cwd=ROOT, timeout=900):
    res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, f"{' '.join(map(str, cmd))} failed ({res.returncode}):\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return res.stdout + res.stderr


@pytest.fixture(scope="module")
def binder_env(tmp_path_factory):
    work = tmp_path_factory.mktemp("binder")
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    env = _clean_env(venv, work)
    req = work / "requirements-local.txt"
    req.write_text("\n".join(local_requirements(_requirement_lines(BINDER / "requirements.txt"))) + "\n")
    # One pip command: the torch==2.13.0 pin is in the same file as everything else (no CUDA build).
    _run([venv / "bin" / "python", "-m", "pip", "install", "-q", "-r", str(req)], env)
    _run(["bash", str(BINDER / "postBuild")], env)
    return venv, env, work


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_binder_environment_is_complete(binder_env):
    venv, env, work = binder_env
    py = venv / "bin" / "python"
    assert Path(_run([py, "-c", "import sys; print(sys.prefix)"], env).strip()).resolve() == venv.resolve()
    info = json.loads(_run([py, "-c", "import json, torch, comp448, sys; print(json.dumps("
                                      "[torch.__version__, torch.version.cuda, comp448.__file__, sys.version_info[:2]]))"],
                           env).strip().splitlines()[-1])
    assert info[0].startswith("2.13.0") and info[1] is None, f"expected CPU torch 2.13.0, got {info[:2]}"
    assert Path(info[2]).resolve().is_relative_to(ROOT / "comp448")
    assert tuple(info[3]) == (3, 11)
    frozen = _run([py, "-m", "pip", "freeze"], env).lower()
    assert "nvidia-" not in frozen, "a CUDA wheel got into the Binder environment"
    _run([py, "-m", "pip", "check"], env)

    # postBuild: instructor side off, the student's Validate extension on.
    lab = _run([venv / "bin" / "jupyter", "labextension", "list"], env)
    disabled = lab.split("Disabled extensions:")[1] if "Disabled extensions:" in lab else ""
    for plugin in DISABLED_LAB:
        assert plugin in disabled, f"{plugin} is not disabled:\n{lab}"
    assert "validate-assignment" not in disabled
    server = re.sub(r"\x1b\[[0-9;]*m", "", _run([venv / "bin" / "jupyter", "server", "extension", "list"], env))
    assert re.search(r"nbgrader\.server_extensions\.formgrader\s+disabled", server), server
    assert re.search(r"nbgrader\.server_extensions\.validate_assignment\s+enabled", server), server
    kernels = json.loads(_run([venv / "bin" / "jupyter", "kernelspec", "list", "--json"], env))["kernelspecs"]
    # the python3 kernel the notebooks ask for is this environment's own
    assert Path(kernels["python3"]["resource_dir"]).resolve().is_relative_to(venv.resolve()), kernels["python3"]


def _execute(venv: Path, env: dict, nb: Path, out: Path):
    _run([venv / "bin" / "jupyter", "nbconvert", "--to", "notebook", "--execute",
          "--ExecutePreprocessor.timeout=600", "--output", str(out), str(nb)], env, cwd=nb.parent)
    import nbformat
    executed = nbformat.read(out, as_version=4)
    code = [c for c in executed.cells if c.cell_type == "code"]
    assert code and all(c.execution_count is not None for c in code)
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors, errors
    return executed


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_binder_environment_runs_a_lecture(binder_env):
    venv, env, work = binder_env
    executed = _execute(venv, env, LECTURE, work / "lecture.ipynb")
    images = [o for c in executed.cells if c.cell_type == "code" for o in c.outputs
              if "image/png" in o.get("data", {})]
    assert images, "the lecture drew no figure in the Binder environment"


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_binder_environment_runs_a_solution_notebook(binder_env):
    solutions = sorted((ROOT / "solutions").glob("*/*.ipynb"), key=lambda p: p.stat().st_size)
    if not solutions:
        pytest.skip("no solutions/*/*.ipynb yet: nothing nbgrader-based to execute")
    venv, env, work = binder_env
    # A solution notebook runs every solution and every (visible and hidden) test cell: it needs
    # comp448.grading and all of the environment. Copy its folder: notebooks may read neighbours.
    src = solutions[0]
    dst = work / "solution" / src.parent.name
    shutil.copytree(src.parent, dst)
    _execute(venv, env, dst / src.name, work / "solution_executed.ipynb")
