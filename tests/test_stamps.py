"""tools/stamp_notebooks.py: Colab badge + Colab-only install cells, GPU metadata, nbgrader read-only
metadata; and every notebook in the repository carries up-to-date stamps."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import types
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("stamp_notebooks", ROOT / "tools" / "stamp_notebooks.py")
st = importlib.util.module_from_spec(spec)
spec.loader.exec_module(st)

REPO_NOTEBOOKS = st.find_notebooks(ROOT)


def _nb(*cells, **metadata):
    nb = new_notebook(cells=list(cells) or [new_markdown_cell("# Title"), new_code_cell("x = 1")])
    nb.metadata.update(kernelspec={"name": "python3", "display_name": "Python 3", "language": "python"}, **metadata)
    return nb


def _write(tmp_path, rel, nb):
    p = tmp_path / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, p)
    return p


# ----------------------------------------------------------------------------- every notebook in the repo

@pytest.mark.parametrize("path", REPO_NOTEBOOKS, ids=[st.relpath_of(p) for p in REPO_NOTEBOOKS])
def test_repository_notebook_is_stamped(path):
    nb = nbformat.read(path, as_version=4)
    rel = st.relpath_of(path)
    assert nb.cells[0].get("id") == st.BADGE_ID and nb.cells[1].get("id") == st.INSTALL_ID, \
        f"{rel} lacks the Colab cells: run `.venv/bin/python tools/stamp_notebooks.py {rel}`"
    assert not st.needs_stamp(path), f"{rel} has stale Colab cells: run `.venv/bin/python tools/stamp_notebooks.py {rel}`"
    assert st.colab_url(rel) in nb.cells[0].source


def test_some_notebooks_exist():
    assert any(p.parts[-2] == "lectures" for p in REPO_NOTEBOOKS)


# ----------------------------------------------------------------------------- the cells

def test_stamp_puts_badge_and_install_first_and_keeps_the_rest():
    nb = _nb()
    out = st.stamp(nb, "lectures/07_x.ipynb")
    assert [c.get("id") for c in out.cells[:2]] == [st.BADGE_ID, st.INSTALL_ID]
    assert [c.source for c in out.cells[2:]] == ["# Title", "x = 1"]
    badge, install = out.cells[:2]
    assert badge.cell_type == "markdown" and install.cell_type == "code"
    assert st.BADGE_TAG in badge.metadata.tags and st.INSTALL_TAG in install.metadata.tags
    assert f"https://colab.research.google.com/github/{st.REPO}/blob/{st.BRANCH}/lectures/07_x.ipynb" in badge.source
    assert f"https://mybinder.org/v2/gh/{st.REPO}/{st.BRANCH}?urlpath=lab/tree/lectures/07_x.ipynb" in badge.source
    assert install.outputs == [] and install.execution_count is None
    assert "nbgrader" not in badge.metadata and "accelerator" not in out.metadata
    nbformat.validate(out)
    assert nb.cells[0].source == "# Title", "stamp must not modify its input"


def test_stamp_is_idempotent_and_never_duplicates():
    once = st.stamp(_nb(), "lectures/a.ipynb")
    assert st.stamp(once, "lectures/a.ipynb") == once
    # an author copied the stamped cells further down and pushed them out of place
    messy = nbformat.from_dict(json.loads(json.dumps(once)))
    dup = nbformat.from_dict(dict(messy.cells[1]))
    dup.id = "copy1"
    messy.cells = [messy.cells[2], messy.cells[0], messy.cells[3], dup, messy.cells[1]]
    fixed = st.stamp(messy, "lectures/a.ipynb")
    ids = [c.get("id") for c in fixed.cells]
    assert ids[:2] == [st.BADGE_ID, st.INSTALL_ID] and ids.count(st.INSTALL_ID) == 1
    assert sum(st.INSTALL_TAG in c.metadata.get("tags", []) for c in fixed.cells) == 1
    assert [c.source for c in fixed.cells[2:]] == ["# Title", "x = 1"]
    assert len({c.id for c in fixed.cells}) == len(fixed.cells)


def test_renamed_notebook_gets_its_own_path():
    nb = st.stamp(_nb(), "lectures/old_name.ipynb")
    moved = st.stamp(nb, "lectures/new_name.ipynb")
    assert "new_name.ipynb" in moved.cells[0].source and "old_name" not in moved.cells[0].source
    assert len(moved.cells) == len(nb.cells)


def test_old_nbformat_minor_gets_cell_ids():
    nb = _nb()
    nb.nbformat_minor = 4
    for c in nb.cells:
        c.pop("id", None)
    out = st.stamp(nb, "lectures/a.ipynb")
    assert out.nbformat_minor >= 5 and all(c.get("id") for c in out.cells)
    nbformat.validate(out)


def _run_install_cell(monkeypatch, on_colab: bool, have_comp448: bool, missing=()):
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: calls.append((list(cmd), kw)))
    real_find = importlib.util.find_spec

    def find_spec(name, *a):
        if name == "comp448":
            return object() if have_comp448 else None
        if name in missing:
            return None
        return real_find(name, *a)
    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    if on_colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    exec(compile(st.install_source(), "<install cell>", "exec"), {})
    return calls


def test_install_cell_does_nothing_off_colab(monkeypatch):
    assert _run_install_cell(monkeypatch, on_colab=False, have_comp448=False) == []


def test_install_cell_installs_comp448_without_deps_on_colab(monkeypatch):
    calls = _run_install_cell(monkeypatch, on_colab=True, have_comp448=False)
    assert len(calls) == 1
    cmd, kw = calls[0]
    assert cmd[:4] == [sys.executable, "-m", "pip", "install"] and "--no-deps" in cmd and kw["check"] is True
    assert f"git+https://github.com/{st.REPO}@{st.BRANCH}" in cmd


def test_install_cell_adds_only_missing_light_deps_never_torch(monkeypatch):
    calls = _run_install_cell(monkeypatch, on_colab=True, have_comp448=False, missing=("skimage", "tqdm"))
    assert len(calls) == 2
    extra = calls[1][0][4:]
    assert [a for a in extra if not a.startswith("-")] == ["scikit-image", "tqdm"]
    for cmd, _ in calls:
        assert not any(a.split("=")[0].split("<")[0].split(">")[0] == "torch" for a in cmd)
    assert all(pkg != "torch" for _, pkg in st.COLAB_LIGHT_DEPS)


def test_install_cell_skips_when_comp448_already_installed(monkeypatch):
    assert _run_install_cell(monkeypatch, on_colab=True, have_comp448=True) == []


# ----------------------------------------------------------------------------- GPU metadata

def test_gpu_marker_sets_colab_accelerator():
    out = st.stamp(_nb(comp448={"gpu": True}), "lectures/t.ipynb")
    assert out.metadata.accelerator == "GPU" and out.metadata.colab.gpuType == st.COLAB_GPU_TYPE


def test_training_content_detected_without_marker():
    nb = _nb(new_markdown_cell("# T"), new_code_cell("from comp448 import train\ntrainer = train.Trainer(m, a, b)"))
    assert st.stamp(nb, "lectures/t.ipynb").metadata.accelerator == "GPU"


def test_gpu_marker_false_wins_and_stale_gpu_metadata_is_removed():
    nb = _nb(new_markdown_cell("# T"), new_code_cell("trainer = Trainer(m)"), comp448={"gpu": False},
             accelerator="GPU", colab={"gpuType": "T4", "provenance": []})
    out = st.stamp(nb, "lectures/t.ipynb")
    assert "accelerator" not in out.metadata and "colab" not in out.metadata
    plain = st.stamp(_nb(colab={"gpuType": "T4", "name": "x"}), "lectures/t.ipynb")
    assert plain.metadata.colab == {"name": "x"}


# ----------------------------------------------------------------------------- nbgrader

@pytest.mark.parametrize("rel", ["solutions/ps1/a.ipynb", "exercises/ps1/a.ipynb"])
def test_nbgrader_notebooks_get_read_only_cells(rel):
    out = st.stamp(_nb(), rel)
    seen = set()
    for cell in out.cells[:2]:
        nbg = cell.metadata.nbgrader
        assert (nbg.grade, nbg.solution, nbg.locked, nbg.schema_version) == (False, False, True, 3)
        assert "points" not in nbg
        seen.add(nbg.grade_id)
    assert len(seen) == 2


def test_notebook_with_nbgrader_cells_outside_those_folders_is_nbgrader():
    cell = new_code_cell("def f(): pass")
    cell.metadata.nbgrader = {"grade": False, "grade_id": "f", "locked": False, "solution": True,
                              "schema_version": 3, "task": False}
    out = st.stamp(_nb(new_markdown_cell("# T"), cell), "elsewhere/a.ipynb")
    assert out.cells[0].metadata.nbgrader.locked is True
    assert "nbgrader" not in st.stamp(_nb(), "lectures/a.ipynb").cells[1].metadata


def test_release_checksums_are_recomputed_like_nbgrader():
    from nbgrader.utils import compute_checksum
    released = st.stamp(_nb(), "solutions/ps1/a.ipynb")
    for cell in released.cells[:2]:                # what generate_assignment adds to locked cells
        cell.metadata.nbgrader["checksum"] = compute_checksum(cell)
    restamped = st.stamp(released, "exercises/ps1/a.ipynb")
    for cell in restamped.cells[:2]:
        assert cell.metadata.nbgrader.checksum == compute_checksum(cell)
    assert "exercises/ps1/a.ipynb" in restamped.cells[0].source


# ----------------------------------------------------------------------------- command line

def test_check_mode_lists_and_exits_1_then_0(tmp_path, capsys):
    p = _write(tmp_path, "lectures/01_a.ipynb", _nb())
    before = p.read_text()
    assert st.main(["--check", str(p)]) == 1
    assert "needs stamping" in capsys.readouterr().out
    assert p.read_text() == before, "--check must not write"
    assert st.main([str(p)]) == 0
    assert st.main(["--check", str(p)]) == 0
    stamped = p.read_text()
    assert st.main([str(p)]) == 0 and p.read_text() == stamped, "a second run must not rewrite"
    nbformat.validate(nbformat.read(p, as_version=4))


def test_cli_runs_as_a_script(tmp_path):
    p = _write(tmp_path, "lectures/01_a.ipynb", _nb())
    res = subprocess.run([sys.executable, str(ROOT / "tools" / "stamp_notebooks.py"), "--check", str(p)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 1 and "01_a.ipynb" in res.stdout


def test_cli_rejects_non_notebooks(tmp_path, capsys):
    bad = tmp_path / "notes.txt"
    bad.write_text("x")
    with pytest.raises(SystemExit) as exc:
        st.main([str(bad)])
    assert exc.value.code == 2 and "not a notebook" in capsys.readouterr().err
    assert bad.read_text() == "x"


def test_binder_badge_for_the_readme():
    badge = st.binder_badge()
    assert badge == (f"[![Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/{st.REPO}/"
                     f"{st.BRANCH}?urlpath=lab/tree/lectures/00_index.ipynb)")


def test_repository_is_named_in_one_place():
    """No other tool, binder file or notebook generator hard-codes the GitHub repository."""
    for path in [*(ROOT / "tools").glob("*.py"), *(ROOT / "binder").iterdir(), ROOT / "comp448" / "widgets.py"]:
        if path.name == "stamp_notebooks.py" or not path.is_file():
            continue
        assert f"github.com/{st.REPO}" not in path.read_text(), f"{path} hard-codes the repository"


# ----------------------------------------------------------------------------- nbgrader round trip

@pytest.mark.slow
@pytest.mark.timeout(300)
def test_generate_assignment_keeps_the_stamped_cells_locked(tmp_path):
    """nbgrader generate_assignment keeps both cells (locked, checksummed); re-stamping the release
    for its exercises/ path keeps ``nbgrader validate`` free of 'changed cell' complaints."""
    sol = new_code_cell("def f(x):\n    ### BEGIN SOLUTION\n    return x\n    ### END SOLUTION")
    sol.metadata.nbgrader = dict(grade=False, grade_id="f", locked=False, solution=True, schema_version=3, task=False)
    test = new_code_cell("assert f(1) == 1")
    test.metadata.nbgrader = dict(grade=True, grade_id="t", locked=True, solution=False, points=1,
                                  schema_version=3, task=False)
    source = st.stamp(_nb(new_markdown_cell("# PS"), sol, test), "solutions/ps1/a.ipynb")
    _write(tmp_path, "source/ps1/a.ipynb", source)
    (tmp_path / "nbgrader_config.py").write_text("c = get_config()\nc.CourseDirectory.course_id = 'x'\n")
    env_bin = str(Path(sys.executable).parent)
    res = subprocess.run([f"{env_bin}/nbgrader", "generate_assignment", "ps1", "--force"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=240,
                         env={**__import__("os").environ, "PATH": env_bin + ":" + __import__("os").environ["PATH"]})
    assert res.returncode == 0, res.stderr[-2000:]
    release = tmp_path / "release" / "ps1" / "a.ipynb"
    nb = nbformat.read(release, as_version=4)
    assert [c.get("id") for c in nb.cells[:2]] == [st.BADGE_ID, st.INSTALL_ID]
    for cell in nb.cells[:2]:
        assert cell.metadata.nbgrader.locked is True and "checksum" in cell.metadata.nbgrader
    assert "raise NotImplementedError" in nb.cells[3].source
    assert st.stamp_paths([release], root=tmp_path, check=True) == [release]   # its path changed
    nbformat.write(st.stamp(nb, "exercises/ps1/a.ipynb"), release)
    from nbgrader.validator import Validator
    result = Validator().validate(str(release))
    assert "changed" not in result, result.get("changed")
    assert [f["source"] for f in result["failed"]] == ["assert f(1) == 1"]   # only the unsolved exercise
