"""Build the static course book: every lecture notebook executed and rendered to HTML.

    python tools/build_book.py                       # all lectures/*.ipynb -> _build/book/
    python tools/build_book.py lectures/05b_*.ipynb  # only these
    python tools/build_book.py --out /tmp/book --timeout 300 --allow-errors
    make book

What it does:

1. copies ``lectures/`` to a temporary folder (the repository's notebooks are never touched: they
   are stored without outputs) and executes each notebook there with nbclient, in lecture order
   (file-name order), in a fresh kernel. The kernel's environment has ``NBGRADER_EXECUTION`` and
   ``MPLBACKEND`` removed (so notebooks run at their normal size and figures use the inline
   backend even under ``make``, which exports ``MPLBACKEND=Agg``) and ``COMP448_STATIC=1`` set
   (``comp448.widgets`` draws static figures instead of sliders nobody can move);
2. renders one HTML page per lecture with nbconvert (JupyterLab template, figures embedded as
   data URIs, the Colab-only install cell left out, the Open-in-Colab/Binder badges kept), with
   previous / contents / next links, and links between notebooks (``02_x.ipynb``) pointing at
   the pages (``02_x.html``);
3. writes ``index.html``: the table of contents in lecture order with each lecture's title
   (its first heading), execution time, and a mark on any lecture that failed.

A notebook that raises stops there; its page is still written (with the traceback) and the
command exits 1 listing it, unless ``--allow-errors`` (then every cell runs and errors are shown).
"""
from __future__ import annotations

import argparse
import html
import os
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from stamp_notebooks import INSTALL_TAG  # noqa: E402  (the Colab install cell's tag: one definition)

DEFAULT_OUT = ROOT / "_build" / "book"
BOOK_TITLE = "comp448: Dense prediction networks for medical image analysis"
KERNEL_ENV_DROP = ("NBGRADER_EXECUTION", "MPLBACKEND")
KERNEL_ENV_SET = {"COMP448_STATIC": "1"}

NAV_CSS = """<style>
.comp448-nav{font:14px/1.5 system-ui,sans-serif;padding:8px 16px;background:#f4f6f8;border-bottom:1px solid #dde;
display:flex;justify-content:space-between}
.comp448-nav a{text-decoration:none}
</style>"""


@dataclass
class Page:
    source: Path
    html_name: str
    title: str
    seconds: float = 0.0
    error: str | None = None


def lecture_order(paths) -> list[Path]:
    """Lecture order is file-name order (``00_index``, ``01_...``, ``05b_...``, ``06_...``)."""
    def key(p: Path):
        m = re.match(r"(\d+)([a-z]?)", p.stem)
        return (int(m.group(1)), m.group(2), p.stem) if m else (10 ** 9, "", p.stem)
    return sorted((Path(p) for p in paths), key=key)


def title_of(nb, fallback: str) -> str:
    """The first markdown heading that is not the stamped badge cell; else ``fallback``."""
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        for line in cell.source.splitlines():
            m = re.match(r"\s*#{1,6}\s+(.+?)\s*#*\s*$", line)
            if m:
                return re.sub(r"[*`]", "", m.group(1))
    return fallback


def kernel_env() -> dict:
    """This process's environment without NBGRADER_EXECUTION/MPLBACKEND, with COMP448_STATIC=1."""
    env = {k: v for k, v in os.environ.items() if k not in KERNEL_ENV_DROP}
    env.update(KERNEL_ENV_SET)
    return env


def execute(nb, cwd: Path, timeout: int, allow_errors: bool):
    """Run ``nb`` in place in a fresh kernel started in ``cwd``; return the error text or None."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=allow_errors,
                            resources={"metadata": {"path": str(cwd)}})
    try:
        client.execute(env=kernel_env(), cwd=str(cwd))
    except CellExecutionError as err:
        return str(err)
    except Exception as err:                  # kernel died, cell timeout, ...
        return f"{type(err).__name__}: {err}"
    return None


def _rewrite_links(body: str, pages: dict[str, str]) -> str:
    """href="[../lectures/]02_x.ipynb[#a]" -> href="02_x.html[#a]" for notebooks in the book."""
    def sub(m):
        target, anchor = m.group(2), m.group(3) or ""
        name = Path(target).name
        if "://" in target or name not in pages:
            return m.group(0)
        return f'{m.group(1)}{pages[name]}{anchor}"'
    return re.sub(r'(href=")([^"#]+\.ipynb)(#[^"]*)?"', sub, body)


def _nav(pages: list[Page], i: int) -> str:
    prev = f'<a href="{pages[i - 1].html_name}">&larr; {html.escape(pages[i - 1].title)}</a>' if i > 0 else "<span></span>"
    nxt = (f'<a href="{pages[i + 1].html_name}">{html.escape(pages[i + 1].title)} &rarr;</a>'
           if i + 1 < len(pages) else "<span></span>")
    return f'<nav class="comp448-nav">{prev}<a href="index.html">Contents</a>{nxt}</nav>'


def render(nb, nav: str, link_map: dict[str, str]) -> str:
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor

    exporter = HTMLExporter(template_name="lab", embed_images=True)
    exporter.register_preprocessor(TagRemovePreprocessor(remove_cell_tags={INSTALL_TAG}, enabled=True),
                                   enabled=True)
    body, _ = exporter.from_notebook_node(nb)
    body = _rewrite_links(body, link_map)
    body = re.sub(r"(<body[^>]*>)", lambda m: m.group(1) + NAV_CSS + nav, body, count=1)
    return body.replace("</body>", nav + "</body>", 1)


def render_index(pages: list[Page]) -> str:
    items = []
    for p in pages:
        status = f' <span style="color:#b00">(failed: see the page)</span>' if p.error else ""
        items.append(f'<li><a href="{p.html_name}">{html.escape(p.title)}</a> '
                     f'<small>({html.escape(p.source.name)}, {p.seconds:.1f} s){status}</small></li>')
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(BOOK_TITLE)}</title></head>\n"
            "<body style=\"font:16px/1.6 system-ui,sans-serif;max-width:50em;margin:2em auto\">\n"
            f"<h1>{html.escape(BOOK_TITLE)}</h1>\n<p>Lecture notebooks, executed by "
            "<code>make book</code> (<code>python tools/build_book.py</code>).</p>\n<h2>Contents</h2>\n<ol>\n"
            + "\n".join(items) + "\n</ol>\n</body></html>\n")


def build_book(notebooks, out_dir: Path = DEFAULT_OUT, *, execute_notebooks: bool = True, timeout: int = 600,
               allow_errors: bool = False, progress: bool = True) -> list[Page]:
    """Execute (in a temporary copy) and render ``notebooks`` into ``out_dir``; return the pages."""
    notebooks = lecture_order(notebooks)
    if not notebooks:
        raise ValueError("notebooks: no notebook to build")
    for p in notebooks:
        if not p.is_file() or p.suffix != ".ipynb":
            raise ValueError(f"notebooks: {p} is not a notebook file")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pages, nbs = [], []
    for p in notebooks:
        nb = nbformat.read(p, as_version=4)
        pages.append(Page(source=p, html_name=p.stem + ".html", title=title_of(nb, p.stem)))
        nbs.append(nb)
    link_map = {p.source.name: p.html_name for p in pages}

    from tqdm.auto import tqdm
    with tempfile.TemporaryDirectory(prefix="comp448-book-") as tmp:
        copies = {}
        for src_dir in sorted({p.parent.resolve() for p in notebooks}):
            dst = Path(tmp) / f"{len(copies)}_{src_dir.name}"
            shutil.copytree(src_dir, dst, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
            copies[src_dir] = dst
        bar = tqdm(list(zip(pages, nbs)), desc="book", unit="nb", disable=not progress)
        for page, nb in bar:
            bar.set_postfix_str(page.source.name)
            if execute_notebooks:
                t0 = time.perf_counter()
                page.error = execute(nb, copies[page.source.parent.resolve()], timeout, allow_errors)
                page.seconds = time.perf_counter() - t0
    for i, (page, nb) in enumerate(zip(pages, nbs)):
        (out_dir / page.html_name).write_text(render(nb, _nav(pages, i), link_map), encoding="utf-8")
    (out_dir / "index.html").write_text(render_index(pages), encoding="utf-8")
    return pages


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("notebooks", nargs="*", type=Path, help="default: lectures/*.ipynb")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default _build/book)")
    ap.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    ap.add_argument("--allow-errors", action="store_true", help="run every cell even after an error")
    ap.add_argument("--no-execute", action="store_true", help="render the notebooks as stored")
    args = ap.parse_args(argv)
    notebooks = args.notebooks or sorted((ROOT / "lectures").glob("*.ipynb"))
    pages = build_book(notebooks, args.out, execute_notebooks=not args.no_execute, timeout=args.timeout,
                       allow_errors=args.allow_errors)
    failed = [p for p in pages if p.error]
    print(f"wrote {len(pages)} pages + index.html to {args.out} "
          f"({sum(p.seconds for p in pages):.0f} s executing)")
    for p in failed:
        print(f"FAILED {p.source}:\n{p.error[-2000:]}\n", file=sys.stderr)
    return 1 if failed and not args.allow_errors else 0


if __name__ == "__main__":
    sys.exit(main())
