"""The PDF edition of the book: one PDF, student (no solutions) or instructor (solutions).

``make pdf`` (student) and ``make pdf-instructor`` run the three steps below. The notebooks
are not executed again: each chapter's outputs come from the cache of executed notebooks
that ``make book`` and ``make test`` fill (``_build/.jupyter_cache``, see
scripts/executed_notebooks.py).

``python scripts/pdf_edition.py source EDITION CACHE OUT``
    writes a Jupyter Book source tree to OUT: this book's configuration (no notebook
    executed, the edition in the title), table of contents, bibliography and pages, and
    every notebook with the outputs the cache CACHE holds for it. EDITION ``student``:
    each solution is cut as in the student copies (scripts/make_assignments.py: the lines
    from ``### BEGIN SOLUTION`` to ``### END SOLUTION`` become the stub), the outputs of
    the solution cells and of the check cells are cleared, and the blocks that would hold
    the solutions are dropped. EDITION ``instructor``: the full notebooks, each solution
    shown open under its exercise.
``jupyter-book build OUT --builder singlehtml``
    renders the tree as one HTML page (numbered chapters, figures, the References page).
``python scripts/pdf_edition.py print OUT/_build/singlehtml PDF [--solutions] [--title T]``
    opens that page in headless Chromium with the network blocked, waits until MathJax
    (served with the page) has typeset every formula and every image has loaded, and prints
    it to PDF (A4, each chapter on a new page, code wrapped rather than cut, page numbers,
    a bookmark outline). Fails if a formula is left as raw LaTeX.

Needs Chromium and chromedriver (Debian: ``apt-get install chromium chromium-driver``) and
Selenium (requirements-site.txt), as ``make check-site`` does.
"""

from __future__ import annotations

import argparse
import base64
import copy
import importlib
import json
import re
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EDITIONS = ("student", "instructor")
#: What the source tree needs besides the notebooks (paths relative to the repository).
COPIED = ("_toc.yml", "references.bib", "book/_static", "book/_ext")
GATE_START = re.compile(r"\{solution-start\}")
PDF_SOLUTIONS = (
    "This edition leaves the solutions out: under each exercise is the stub of the\n"
    "student notebooks (`make lab`), and its check, to run once you have written it."
)


def _sibling(name: str):
    """The script ``name``.py next to this one, imported as a module by its name."""
    folder = str(Path(__file__).resolve().parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    return importlib.import_module(name)


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _tags(cell: dict) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def executed(notebook: dict, cache_dir: Path) -> dict:
    """``notebook`` with the outputs of its executed copy in the cache ``cache_dir``."""
    import nbformat
    from jupyter_cache import get_cache

    cache = get_cache(str(cache_dir))
    node = nbformat.reads(json.dumps(notebook), as_version=4)  # sources as strings
    try:
        record = cache.match_cache_notebook(node)
    except KeyError:
        raise LookupError(
            "no executed copy in the cache: run `make book` or `make test-notebooks` first"
        ) from None
    run = cache.get_cache_bundle(record.pk).nb
    code = [c for c in node.cells if c.cell_type == "code"]
    done = [c for c in run.cells if c.cell_type == "code"]
    if [c.source for c in code] != [c.source for c in done]:
        raise LookupError("the cached copy's code differs from the notebook's")
    for cell, ran in zip(code, done):
        cell.outputs, cell.execution_count = ran.outputs, ran.execution_count
    return json.loads(nbformat.writes(node))


def student_edition(notebook: dict) -> dict:
    """The executed ``notebook`` without solutions, as the student copies have it.

    Solution cells get the stub of scripts/make_assignments.py and lose their outputs; the
    check cells lose theirs (they checked the solution); the ``{solution-start}`` and
    ``{solution-end}`` blocks are dropped (nothing is hidden in them any more).
    """
    make_assignments = _sibling("make_assignments")
    cells = []
    for cell in notebook["cells"]:
        source = _source(cell)
        if cell["cell_type"] == "markdown" and make_assignments.GATE.search(source):
            continue
        cell = copy.deepcopy(cell)
        if cell["cell_type"] == "markdown":
            cell["source"] = make_assignments.HIDDEN_SOLUTIONS.sub(PDF_SOLUTIONS, source)
        elif "solution" in _tags(cell):
            if make_assignments.BEGIN not in source:
                raise ValueError("a cell tagged `solution` has no `### BEGIN SOLUTION` marker")
            cell["source"] = make_assignments.strip_solutions(source)
            cell["outputs"], cell["execution_count"] = [], None
        elif make_assignments.CHECK_CALL.search(source):
            cell["outputs"], cell["execution_count"] = [], None
        cells.append(cell)
    return {**notebook, "cells": cells}


def instructor_edition(notebook: dict) -> dict:
    """The executed ``notebook`` with every solution block open (no dropdown) in print."""
    cells = []
    for cell in notebook["cells"]:
        cell = copy.deepcopy(cell)
        source = _source(cell)
        if cell["cell_type"] == "markdown" and GATE_START.search(source):
            lines = [line for line in source.splitlines() if line.strip() != ":class: dropdown"]
            cell["source"] = "\n".join(lines)
        cells.append(cell)
    return {**notebook, "cells": cells}


def _config(edition: str, mathjax: Path, cache_dir: Path) -> str:
    """This book's ``_config.yml`` for the PDF build of ``edition``: no notebook is
    executed (they come with their outputs); the Markdown pages with code (the intro's
    versions) are rendered from the book's cache, as `make book` executed them."""
    import yaml

    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    config["title"] = f"{config['title']} ({edition} edition)"
    config["execute"]["cache"] = str(cache_dir.resolve())
    config["execute"]["exclude_patterns"] = ["*.ipynb", "**/*.ipynb"]
    sphinx = config["sphinx"]["config"]
    sphinx["html_static_path"] = ["book/_static", str(mathjax.resolve())]
    return yaml.safe_dump(config, sort_keys=False, allow_unicode=True)


def write_source(edition: str, cache_dir: Path, out: Path, mathjax: Path) -> list[str]:
    """Write the source tree of ``edition`` to ``out``; return the notebooks written."""
    import yaml

    if edition not in EDITIONS:
        raise ValueError(f"edition: expected one of {EDITIONS}, got {edition!r}")
    if not (mathjax / "mathjax" / "tex-mml-chtml.js").exists():
        raise FileNotFoundError(f"no MathJax in {mathjax}: run `make mathjax` first")
    if out.exists():
        shutil.rmtree(out)
    (out / "book").mkdir(parents=True)
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, out / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copyfile(source, out / name)
    (out / "_config.yml").write_text(_config(edition, mathjax, cache_dir))
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]] + [
        chapter["file"] for part in toc.get("parts", []) for chapter in part["chapters"]
    ]
    written = []
    for name in files:
        path = ROOT / name
        if path.with_suffix(".md").exists():
            shutil.copyfile(path.with_suffix(".md"), out / f"{name}.md")
            continue
        notebook = json.loads(path.with_suffix(".ipynb").read_text())
        try:
            notebook = executed(notebook, cache_dir)
        except LookupError as error:
            raise LookupError(f"{name}.ipynb: {error}") from None
        if edition == "student":
            notebook = student_edition(notebook)
        else:
            notebook = instructor_edition(notebook)
        (out / f"{name}.ipynb").write_text(json.dumps(notebook, indent=1, ensure_ascii=False))
        written.append(f"{name}.ipynb")
    return written


#: Print layout: the book's column only, each chapter on a new page, everything unfolded.
PRINT_CSS = """
@page { size: A4; margin: 16mm 14mm 18mm 14mm; }
.bd-header, .bd-header-article, .header-article, .bd-sidebar-primary, .bd-sidebar-secondary,
.bd-footer, .bd-footer-article, .bd-footer-content, .prev-next-area, .toggle-button,
button.toggle-button, .headerlink, .search-button-field, .theme-switch-button,
.primary-toggle, .secondary-toggle, #pst-back-to-top, .bd-sidebar { display: none !important; }
.bd-main, .bd-content, .bd-article-container, .bd-page-width, .bd-container,
.bd-container__inner, article.bd-article { max-width: 100% !important; width: 100% !important;
  min-width: 0 !important; margin: 0 !important; padding: 0 !important; }
table { display: block; max-width: 100%; overflow-wrap: anywhere; }
article.bd-article code, article.bd-article a { overflow-wrap: anywhere; }
span[id^="document-"] + section, span[id^="document-"] + div + section { break-before: page; }
div.cell_input pre, div.highlight pre, div.cell_output pre {
  white-space: pre-wrap !important; overflow-wrap: anywhere; overflow: visible !important;
  max-height: none !important; font-size: 11.5px !important; line-height: 1.35; }
img { max-width: 100% !important; break-inside: avoid; }
div.cell_output, figure { break-inside: avoid; }
h1, h2, h3 { break-after: avoid; }
"""
SHOW_SOLUTIONS_CSS = "@media print { .solution, div.solution { display: block !important; } }"
_PREPARE = r"""
const style = document.createElement('style');
style.textContent = arguments[0];
document.head.appendChild(style);
document.querySelectorAll('details').forEach(d => { d.open = true; });
document.querySelectorAll('.toggle-hidden').forEach(e => e.classList.remove('toggle-hidden'));
document.querySelectorAll('img[loading="lazy"]').forEach(i => { i.loading = 'eager'; });
"""
#: Width of the printed column in CSS pixels: A4 (210 mm) less the 14 mm side margins.
PRINT_WIDTH = round((210 - 2 * 14) / 25.4 * 96)
# A display formula wider than the column (MathJax 3 does not break lines) is scaled down
# to fit, rather than cut at the paper's edge; run with the page laid out at PRINT_WIDTH.
_FIT_MATHS = r"""
let fitted = 0;
for (const m of document.querySelectorAll('mjx-container[display="true"]')) {
  const box = m.parentElement.getBoundingClientRect().width;
  const wide = m.firstElementChild ? m.firstElementChild.getBoundingClientRect().width : 0;
  if (box > 0 && wide > box) { m.style.zoom = (box / wide).toFixed(3); fitted += 1; }
}
return fitted;
"""
_STATE = r"""
const maths = [...document.querySelectorAll('.math, span.math, div.math')];
const raw = maths.filter(m => !m.querySelector('mjx-container')
                             && /\\\(|\\\[|\\begin/.test(m.textContent));
const images = [...document.images];
return {maths: maths.length, raw: raw.length,
        rawSample: raw.slice(0, 1).map(m => m.textContent.slice(0, 60)),
        images: images.length, loaded: images.filter(i => i.complete).length,
        typeset: window.__mlhTypeset === true};
"""


def single_page(folder: Path, root: str) -> Path:
    """The single-page book in the singlehtml output ``folder``, as a file at its top.

    Sphinx writes the root document ``root`` (``book/intro``) to ``folder/book/intro.html``
    but with the links of a page at the top (``_static/...``, ``_images/...``): a copy at the
    top of ``folder`` finds its styles, scripts and figures.
    """
    page = folder / f"{root}.html"
    if not page.exists():
        raise FileNotFoundError(f"no single-page book at {page}: build with --builder singlehtml")
    top = folder / "book-print.html"
    shutil.copyfile(page, top)
    return top


def print_pdf(html: Path, pdf: Path, *, solutions: bool, title: str, seconds: float = 600.0):
    """Print the single-page book ``html`` to ``pdf``; return what was found on the page."""
    check_site = _sibling("check_site")
    driver = check_site._browser(1000, 1400)
    # Printing a book of several hundred pages takes minutes on a busy machine: longer
    # than Selenium's default of 120 s for one command.
    driver.command_executor.client_config.timeout = seconds
    try:
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": check_site.OFFLINE})
        driver.get(html.resolve().as_uri())
        check_site._wait_for_maths(driver, seconds)
        css = PRINT_CSS + (SHOW_SOLUTIONS_CSS if solutions else "")
        driver.execute_script(_PREPARE, css)
        # Lay the page out at the printed column's width to fit the wide formulas, then
        # print it at the paper's width (not the emulated screen's).
        driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": PRINT_WIDTH, "height": 1000, "deviceScaleFactor": 1, "mobile": False},
        )
        fitted = driver.execute_script(_FIT_MATHS)
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
        end = time.monotonic() + seconds
        state = driver.execute_script(_STATE)
        while state["loaded"] < state["images"] and time.monotonic() < end:
            time.sleep(0.5)
            state = driver.execute_script(_STATE)
        if state["maths"] and not state["typeset"]:
            raise RuntimeError(f"MathJax did not finish typesetting within {seconds:.0f} s")
        if state["raw"]:
            raise RuntimeError(f"{state['raw']} formulas left as raw LaTeX: {state['rawSample']}")
        if state["loaded"] < state["images"]:
            raise RuntimeError(f"{state['images'] - state['loaded']} images did not load")
        small = 'style="font-size:8px; width:100%; margin:0 14mm; color:#555;"'
        result = driver.execute_cdp_cmd(
            "Page.printToPDF",
            {
                "printBackground": True,
                "preferCSSPageSize": True,
                "displayHeaderFooter": True,
                "headerTemplate": f"<div {small}>{title}</div>",
                "footerTemplate": (
                    f'<div {small}><span class="pageNumber"></span> / '
                    '<span class="totalPages"></span></div>'
                ),
                "generateDocumentOutline": True,
                "transferMode": "ReturnAsBase64",
            },
        )
    finally:
        driver.quit()
    pdf.parent.mkdir(parents=True, exist_ok=True)
    pdf.write_bytes(base64.b64decode(result["data"]))
    return {**state, "fitted": fitted}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    source = commands.add_parser("source", help="write the source tree of an edition")
    source.add_argument("edition", choices=EDITIONS)
    source.add_argument("cache", type=Path, help="the cache of executed notebooks")
    source.add_argument("out", type=Path, help="the folder to write the tree to")
    source.add_argument("--mathjax", type=Path, default=ROOT / "_build/mathjax")
    printer = commands.add_parser("print", help="print the single-page HTML book to PDF")
    printer.add_argument("html", type=Path, help="the singlehtml output, OUT/_build/singlehtml")
    printer.add_argument("pdf", type=Path)
    printer.add_argument("--solutions", action="store_true", help="instructor edition")
    printer.add_argument("--title", default="Multiple Losses in PyTorch")
    args = parser.parse_args(argv)
    if args.command == "source":
        written = write_source(args.edition, args.cache, args.out, args.mathjax)
        print(f"{args.edition} edition: {len(written)} executed notebooks written to {args.out}")
        return 0
    import yaml

    root = yaml.safe_load((ROOT / "_toc.yml").read_text())["root"]
    page = single_page(args.html, root)
    started = time.monotonic()
    state = print_pdf(page, args.pdf, solutions=args.solutions, title=args.title)
    size = args.pdf.stat().st_size / 1e6
    print(
        f"{args.pdf}: {size:.1f} MB, {state['maths']} formulas typeset ({state['fitted']} "
        f"scaled to fit the column), {state['images']} images, printed in "
        f"{time.monotonic() - started:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
