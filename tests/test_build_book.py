"""tools/build_book.py on one tiny notebook (the full book is `make book`)."""
from __future__ import annotations

import base64
import importlib.util
import re
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("build_book", ROOT / "tools" / "build_book.py")
bb = importlib.util.module_from_spec(spec)
sys.modules["build_book"] = bb                   # dataclasses look their module up there
spec.loader.exec_module(bb)
from stamp_notebooks import stamp  # noqa: E402  (tools/ is on sys.path after loading build_book)


def _tiny(path: Path):
    nb = new_notebook(cells=[
        new_markdown_cell("# Tiny lecture\n\nSee [the section](01_tiny.ipynb#Part-two), "
                          "[the next one](02_next.ipynb) and [an outside page](https://example.org/a.ipynb)."),
        new_code_cell("import os\nprint('NBGRADER_EXECUTION =', os.environ.get('NBGRADER_EXECUTION'))\n"
                      "print('COMP448_STATIC =', os.environ.get('COMP448_STATIC'))"),
        new_code_cell("import matplotlib.pyplot as plt\nplt.plot([0, 1], [1, 0])\nplt.show()"),
        new_markdown_cell("## Part two"),
    ], metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    nb = stamp(nb, "lectures/01_tiny.ipynb")
    nbformat.write(nb, path)
    return nb


def test_lecture_order_and_titles():
    names = ["10_x.ipynb", "05b_v.ipynb", "00_index.ipynb", "05_u.ipynb", "notes.ipynb", "06_w.ipynb"]
    assert [p.name for p in bb.lecture_order(names)] == \
        ["00_index.ipynb", "05_u.ipynb", "05b_v.ipynb", "06_w.ipynb", "10_x.ipynb", "notes.ipynb"]
    nb = stamp(new_notebook(cells=[new_markdown_cell("Intro\n\n## *The* `U-Net` weight map w_0 ##")]),
               "lectures/a.ipynb")
    assert bb.title_of(nb, "a") == "The U-Net weight map w_0"
    assert bb.title_of(new_notebook(cells=[new_code_cell("# not a title")]), "fallback") == "fallback"


def test_kernel_env_drops_grading_and_backend(monkeypatch):
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    env = bb.kernel_env()
    assert "NBGRADER_EXECUTION" not in env and "MPLBACKEND" not in env and env["COMP448_STATIC"] == "1"


def test_link_rewrite():
    body = ('<a href="02_b.ipynb">x</a><a href="../lectures/02_b.ipynb#s">y</a>'
            '<a href="03_c.ipynb">z</a><a href="https://h/02_b.ipynb">w</a>')
    out = bb._rewrite_links(body, {"02_b.ipynb": "02_b.html"})
    assert out == ('<a href="02_b.html">x</a><a href="02_b.html#s">y</a>'
                   '<a href="03_c.ipynb">z</a><a href="https://h/02_b.ipynb">w</a>')


def test_build_book_on_a_tiny_notebook(tmp_path, monkeypatch):
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")          # must not reach the kernel
    monkeypatch.setenv("MPLBACKEND", "Agg")                         # must not hide the figure
    src = tmp_path / "lectures"
    src.mkdir()
    nb_path = src / "01_tiny.ipynb"
    _tiny(nb_path)
    stored = nb_path.read_bytes()
    out = tmp_path / "book"
    pages = bb.build_book([nb_path], out, timeout=120, progress=False)
    assert nb_path.read_bytes() == stored, "the source notebook must stay unexecuted"
    assert [p.error for p in pages] == [None]
    assert sorted(f.name for f in out.iterdir()) == ["01_tiny.html", "index.html"]

    page = (out / "01_tiny.html").read_text()
    assert "NBGRADER_EXECUTION = None" in page and "COMP448_STATIC = 1" in page
    pngs = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=\s]+)"', page)
    assert pngs and base64.b64decode(pngs[0])[:8] == b"\x89PNG\r\n\x1a\n", "the figure must be embedded"
    assert 'href="01_tiny.html#Part-two"' in page                  # link to a page of the book
    assert 'href="02_next.ipynb"' in page                          # not in the book: left alone
    assert 'href="https://example.org/a.ipynb"' in page
    assert "google.colab" not in page, "the Colab install cell is left out of the book"
    assert "colab-badge.svg" in page
    assert page.count('href="index.html">Contents</a>') == 2         # nav at top and bottom

    index = (out / "index.html").read_text()
    assert '<a href="01_tiny.html">Tiny lecture</a>' in index and "failed" not in index


def test_build_book_errors(tmp_path):
    with pytest.raises(ValueError, match="notebooks"):
        bb.build_book([], tmp_path)
    with pytest.raises(ValueError, match="not a notebook"):
        bb.build_book([tmp_path / "missing.ipynb"], tmp_path)


@pytest.mark.slow
def test_failing_notebook_is_reported_and_still_rendered(tmp_path):
    p = tmp_path / "01_bad.ipynb"
    nbformat.write(new_notebook(cells=[new_markdown_cell("# Bad"), new_code_cell("1 / 0"),
                                       new_code_cell("print('never')")],
                                metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                         "language": "python"}}), p)
    assert bb.main([str(p), "--out", str(tmp_path / "book"), "--timeout", "60"]) == 1
    page = (tmp_path / "book" / "01_bad.html").read_text()
    assert "ZeroDivisionError" in page
    assert page.count("never") == 1, "execution must stop at the error (only the source says 'never')"
    assert "failed" in (tmp_path / "book" / "index.html").read_text()
