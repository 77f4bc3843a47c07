"""Stamp the first two cells of every course notebook: an Open-in-Colab badge and a Colab-only install.

    python tools/stamp_notebooks.py                      # stamp lectures/, exercises/, solutions/
    python tools/stamp_notebooks.py lectures/05b_*.ipynb # stamp only these
    python tools/stamp_notebooks.py --check              # exit 1 listing notebooks that need stamping
    python tools/stamp_notebooks.py --binder-badge       # print the README's Binder badge

What each notebook gets (idempotent: the cells are found again by their tag/id and rewritten in
place, never duplicated, and moved to the top if an edit pushed them down):

1. ``colab-badge`` (markdown): "Open in Colab" badge pointing at the notebook's OWN path in the
   repository (``https://colab.research.google.com/github/<REPO>/blob/<BRANCH>/<path>``) and a
   Binder badge opening the same file in JupyterLab.
2. ``colab-install`` (code): runs only on Colab (``"google.colab" in sys.modules``). Installs
   comp448 from GitHub with ``--no-deps`` so Colab's own torch is never replaced, then installs
   only those light dependencies Colab lacks (never torch). Elsewhere (Binder, a local venv,
   nbgrader autograding) it does nothing.

Training notebooks get Colab's GPU request in the notebook metadata (``accelerator: GPU`` and
``colab.gpuType``). A notebook is a training notebook when its metadata says
``"comp448": {"gpu": true}`` (authors set it; ``false`` opts out), or, without that marker, when
one of its code cells builds a ``Trainer`` or calls ``fit(``/``run_preset(`` of ``comp448.train``.

nbgrader notebooks (under ``solutions/`` or ``exercises/``, or any notebook with nbgrader cell
metadata) get the two cells as read-only nbgrader cells (``locked: true``, ``grade: false``,
``solution: false``, unique ``grade_id``), so ``nbgrader generate_assignment`` keeps them in the
release as locked cells. If a cell already carries an nbgrader ``checksum`` (a released notebook),
the checksum is recomputed after the rewrite, so ``nbgrader validate`` does not report the cell as
changed. Release notebooks (``exercises/``) must be stamped AFTER generation so the badge points at
``exercises/...``, not at the ``solutions/...`` source: ``stamp_paths([...])`` is importable.

The repository lives in ONE place: ``REPO`` / ``BRANCH`` below (also used for the Binder badge).
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import re
import sys
from pathlib import Path

import nbformat

REPO = "comp448/comp448"            # GitHub owner/name: the ONE place the repository is named
BRANCH = "main"
ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIRS = ("lectures", "exercises", "solutions")
NBGRADER_DIRS = ("exercises", "solutions")

BADGE_ID, INSTALL_ID = "colab-badge", "colab-install"
BADGE_TAG, INSTALL_TAG = "comp448-colab-badge", "comp448-colab-install"
GRADE_IDS = {BADGE_ID: "comp448_colab_badge", INSTALL_ID: "comp448_colab_install"}
COLAB_GPU_TYPE = "T4"

COLAB_BADGE_SVG = "https://colab.research.google.com/assets/colab-badge.svg"
BINDER_BADGE_SVG = "https://mybinder.org/badge_logo.svg"

# Light dependencies of comp448 that Colab might lack: (import name, pip name). torch, numpy,
# scipy and matplotlib are part of every Colab runtime and are deliberately absent here.
COLAB_LIGHT_DEPS = (("skimage", "scikit-image"), ("tqdm", "tqdm"), ("ipywidgets", "ipywidgets"))

# Content signal for a training notebook when the author set no marker.
_TRAINING_RE = re.compile(r"\bTrainer\s*\(|\brun_preset\s*\(|\btrain\.fit\s*\(|\btrainer\.fit\s*\(")


def colab_url(relpath: str) -> str:
    return f"https://colab.research.google.com/github/{REPO}/blob/{BRANCH}/{relpath}"


def binder_url(relpath: str) -> str:
    return f"https://mybinder.org/v2/gh/{REPO}/{BRANCH}?urlpath=lab/tree/{relpath}"


def binder_badge(relpath: str = "lectures/00_index.ipynb") -> str:
    """Markdown of the Binder badge (the README uses the default: the course index)."""
    return f"[![Binder]({BINDER_BADGE_SVG})]({binder_url(relpath)})"


def badge_source(relpath: str) -> str:
    return (f"[![Open In Colab]({COLAB_BADGE_SVG})]({colab_url(relpath)}) "
            f"{binder_badge(relpath)}")


def install_source() -> str:
    deps = ", ".join(f'("{mod}", "{pkg}")' for mod, pkg in COLAB_LIGHT_DEPS)
    return (
        "# Colab only: install the course package. Does nothing on Binder, a local install or nbgrader.\n"
        "# --no-deps keeps Colab's own torch (never reinstalled); only missing light packages are added.\n"
        "import importlib.util, subprocess, sys\n"
        "if \"google.colab\" in sys.modules and importlib.util.find_spec(\"comp448\") is None:\n"
        "    subprocess.run([sys.executable, \"-m\", \"pip\", \"install\", \"-q\", \"--no-deps\",\n"
        f"                    \"git+https://github.com/{REPO}@{BRANCH}\"], check=True)\n"
        f"    missing = [pkg for mod, pkg in [{deps}]\n"
        "               if importlib.util.find_spec(mod) is None]\n"
        "    if missing:\n"
        "        subprocess.run([sys.executable, \"-m\", \"pip\", \"install\", \"-q\", *missing], check=True)"
    )


# ----------------------------------------------------------------------------- detection

def is_nbgrader_notebook(nb, relpath: str) -> bool:
    if Path(relpath).parts[:1] and Path(relpath).parts[0] in NBGRADER_DIRS:
        return True
    return any("nbgrader" in c.get("metadata", {}) and not _is_stamped(c) for c in nb.cells)


def wants_gpu(nb) -> bool:
    marker = nb.metadata.get("comp448", {})
    if isinstance(marker, dict) and "gpu" in marker:
        return bool(marker["gpu"])
    return any(c.cell_type == "code" and _TRAINING_RE.search(c.source) for c in nb.cells)


def _is_stamped(cell, which: str | None = None) -> bool:
    ids = (which,) if which else (BADGE_ID, INSTALL_ID)
    tags = {BADGE_ID: BADGE_TAG, INSTALL_ID: INSTALL_TAG}
    return any(cell.get("id") == i or tags[i] in cell.get("metadata", {}).get("tags", []) for i in ids)


# ----------------------------------------------------------------------------- stamping

def _nbgrader_checksum(cell) -> str:
    """nbgrader.utils.compute_checksum for a read-only cell (grade false, solution false, locked)."""
    m = hashlib.md5()
    for part in (cell.source, cell.cell_type, "False", "False", "True", cell.metadata.nbgrader["grade_id"]):
        m.update(part.encode("utf-8"))
    return m.hexdigest()


def _make_cell(which: str, relpath: str, nbgrader: bool, old=None):
    if which == BADGE_ID:
        cell = nbformat.v4.new_markdown_cell(badge_source(relpath))
    else:
        cell = nbformat.v4.new_code_cell(install_source())
    cell.id = which
    meta = copy.deepcopy(old.metadata) if old is not None else nbformat.NotebookNode()
    tag = BADGE_TAG if which == BADGE_ID else INSTALL_TAG
    meta["tags"] = [t for t in meta.get("tags", []) if t != tag] + [tag]
    if which == INSTALL_ID:
        meta.setdefault("collapsed", False)
    if nbgrader:
        nbg = dict(meta.get("nbgrader", {}))
        nbg.update(grade=False, grade_id=GRADE_IDS[which], locked=True, solution=False,
                   schema_version=3, task=False)
        nbg.pop("points", None)
        meta["nbgrader"] = nbg
    else:
        meta.pop("nbgrader", None)
    cell.metadata = nbformat.from_dict(meta)
    if nbgrader and "checksum" in cell.metadata.nbgrader:
        cell.metadata.nbgrader["checksum"] = _nbgrader_checksum(cell)
    if which == INSTALL_ID and old is not None and old.cell_type == "code":
        cell.outputs, cell.execution_count = old.get("outputs", []), old.get("execution_count")
    return cell


def stamp(nb, relpath: str):
    """Return a stamped copy of notebook ``nb`` stored at ``relpath`` (POSIX, relative to the repo)."""
    nb = copy.deepcopy(nb)
    if nb.nbformat_minor < 5:                  # cell ids need nbformat 4.5
        nb.nbformat_minor = 5
    nbgrader = is_nbgrader_notebook(nb, relpath)
    old = {BADGE_ID: None, INSTALL_ID: None}
    rest = []
    for cell in nb.cells:
        which = next((w for w in (BADGE_ID, INSTALL_ID) if _is_stamped(cell, w)), None)
        if which is None:
            rest.append(cell)
        elif old[which] is None:               # keep the first copy's metadata/outputs, drop duplicates
            old[which] = cell
    taken = {c.get("id") for c in rest}
    for i, cell in enumerate(rest):            # give id-less cells an id; keep ours unique
        if not cell.get("id") or cell.get("id") in (BADGE_ID, INSTALL_ID):
            base = hashlib.sha1(f"{relpath}:{i}:{cell.source}".encode()).hexdigest()[:8]
            new_id = base
            while new_id in taken:
                new_id = hashlib.sha1(new_id.encode()).hexdigest()[:8]
            cell.id = new_id
            taken.add(new_id)
    nb.cells = [_make_cell(BADGE_ID, relpath, nbgrader, old[BADGE_ID]),
                _make_cell(INSTALL_ID, relpath, nbgrader, old[INSTALL_ID])] + rest

    md = nb.metadata
    if wants_gpu(nb):
        md["accelerator"] = "GPU"
        colab = dict(md.get("colab", {}))
        colab["gpuType"] = COLAB_GPU_TYPE
        colab.setdefault("provenance", [])
        md["colab"] = colab
    else:
        md.pop("accelerator", None)
        if "colab" in md:
            md["colab"].pop("gpuType", None)
            if not {k for k in md["colab"] if k != "provenance"}:
                md.pop("colab")
    return nb


def relpath_of(path: Path, root: Path = ROOT) -> str:
    path = Path(path).resolve()
    try:
        return path.relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.name


def find_notebooks(root: Path = ROOT) -> list[Path]:
    out = []
    for d in NOTEBOOK_DIRS:
        out += [p for p in sorted((root / d).rglob("*.ipynb")) if ".ipynb_checkpoints" not in p.parts]
    return out


def needs_stamp(path: Path, root: Path = ROOT) -> bool:
    nb = nbformat.read(path, as_version=4)
    return stamp(nb, relpath_of(path, root)) != nb


def stamp_paths(paths, root: Path = ROOT, check: bool = False) -> list[Path]:
    """Stamp (or with ``check=True`` only find) the notebooks that are not up to date; returns them."""
    changed = []
    for path in paths:
        path = Path(path)
        nb = nbformat.read(path, as_version=4)
        new = stamp(nb, relpath_of(path, root))
        if new == nb:
            continue
        changed.append(path)
        if not check:
            nbformat.validate(new)
            nbformat.write(new, path)
    return changed


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("paths", nargs="*", type=Path, help="notebooks (default: all in lectures/, exercises/, solutions/)")
    ap.add_argument("--check", action="store_true", help="change nothing; exit 1 listing notebooks that need stamping")
    ap.add_argument("--binder-badge", action="store_true", help="print the README's Binder badge markdown and exit")
    args = ap.parse_args(argv)
    if args.binder_badge:
        print(binder_badge())
        return 0
    paths = args.paths or find_notebooks()
    for p in paths:
        if not p.is_file() or p.suffix != ".ipynb":
            ap.error(f"paths: {p} is not a notebook file")
    changed = stamp_paths(paths, check=args.check)
    for p in changed:
        print(("needs stamping: " if args.check else "stamped: ") + relpath_of(p))
    if args.check:
        print(f"{len(changed)} of {len(paths)} notebooks need stamping"
              + (" (run: python tools/stamp_notebooks.py)" if changed else ""))
        return 1 if changed else 0
    print(f"{len(changed)} of {len(paths)} notebooks changed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
