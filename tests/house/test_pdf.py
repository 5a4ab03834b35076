"""The PDF edition (`make pdf`): read back with pdftotext, as a reader's PDF viewer would.

The student edition must hold every chapter's title, with its number for the numbered
chapters, and no solution: no ``### BEGIN SOLUTION`` marker and no line of a solution
cell's code between its markers (a line that the book shows anyway outside the solutions,
such as a signature or a line another chapter uses too, does not count). No formula may be
left as raw LaTeX (``\\begin``). When the instructor edition is there too (`make
pdf-instructor`), the same search must find the solution lines in it: the check can fail.

The tests of the PDF run when it exists, or with MLH_TEST_PDF=1 (set by `make pdf`), which
also makes a missing PDF or a missing ``pdftotext`` (Debian: poppler-utils) a failure. The
first tests check scripts/pdf_edition.py's editions of a notebook and always run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import unicodedata
from pathlib import Path

import pytest
import yaml
from helpers.scripts import load_script

ROOT = Path(__file__).resolve().parents[2]
PDF = ROOT / "_build/pdf/multiple-losses-in-pytorch.pdf"
INSTRUCTOR = ROOT / "_build/pdf/multiple-losses-in-pytorch-instructor.pdf"
REQUIRED = os.environ.get("MLH_TEST_PDF") == "1"
#: Shorter solution lines ("else:", "return x") could occur in any code or prose.
MIN_CHARS = 12


def _normal(text: str) -> str:
    """``text`` as compared: ligatures and typographic quotes undone, spaces collapsed."""
    text = unicodedata.normalize("NFKC", text)
    text = text.translate(
        str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"'})
    )
    return re.sub(r"\s+", " ", text).strip()


def _squeezed(text: str) -> str:
    """``text`` without any whitespace: code wrapped across lines in the PDF still matches."""
    return re.sub(r"\s+", "", _normal(text))


def _pdf_text(path: Path) -> str:
    """The text of the PDF ``path``; skips (fails with MLH_TEST_PDF=1) when it cannot."""
    if not path.exists():
        if REQUIRED:
            pytest.fail(f"{path.relative_to(ROOT)} is missing: run `make pdf`", pytrace=False)
        pytest.skip("no PDF edition: run `make pdf`")
    if shutil.which("pdftotext") is None:
        if REQUIRED:
            pytest.fail("pdftotext is missing (Debian: apt-get install poppler-utils)")
        pytest.skip("pdftotext is missing (Debian: poppler-utils)")
    result = subprocess.run(
        ["pdftotext", "-enc", "UTF-8", str(path), "-"], capture_output=True, text=True, check=True
    )
    return result.stdout


def _source(cell: dict) -> str:
    src = cell["source"]
    return "".join(src) if isinstance(src, list) else src


def _title(path: Path) -> str:
    """The first level-1 heading of a page, without Markdown emphasis or code marks."""
    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text())["cells"]
        text = "\n".join(_source(c) for c in cells if c["cell_type"] == "markdown")
    else:
        text = path.read_text()
    found = re.search(r"^# (.+)$", text, re.M)
    assert found, f"{path.name}: no title"
    return re.sub(r"[`*_]", "", found.group(1)).strip()


def _page(name: str) -> Path:
    """The notebook or Markdown page of a _toc.yml entry."""
    path = ROOT / name
    return next(p for p in (path.with_suffix(".ipynb"), path.with_suffix(".md")) if p.exists())


def _toc_pages() -> list[tuple[Path, int | None]]:
    """Each page of _toc.yml with its chapter number (None where its part is unnumbered)."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    pages: list[tuple[Path, int | None]] = [(_page(toc["root"]), None)]
    number = 0
    for part in toc["parts"]:
        for chapter in part["chapters"]:
            path = _page(chapter["file"])
            if part.get("numbered"):
                number += 1
                pages.append((path, number))
            else:
                pages.append((path, None))
    return pages


def _shown_anyway() -> str:
    """What a reader sees without any solution, whitespace removed: every chapter's student
    copy, the Markdown pages and the package's source (the API page shows its docstrings,
    a traceback its lines)."""
    make_assignments = load_script("make_assignments")
    texts = []
    for path in sorted((ROOT / "book").glob("*.ipynb")):
        student, _ = make_assignments.student_notebook(json.loads(path.read_text()))
        texts.extend(_source(c) for c in student["cells"])
    texts.extend(p.read_text() for p in sorted((ROOT / "book").glob("*.md")))
    texts.extend(p.read_text() for p in sorted((ROOT / "multiloss_helpers").rglob("*.py")))
    return _squeezed("\n".join(texts))


def _solution_lines() -> list[str]:
    """The lines between the solution markers of every chapter that no page shows anyway
    (:func:`_shown_anyway`), whitespace removed, at least MIN_CHARS long."""
    make_assignments = load_script("make_assignments")
    shown = _shown_anyway()
    lines = []
    for path in sorted((ROOT / "book").glob("*.ipynb")):
        notebook = json.loads(path.read_text())
        for cell in notebook["cells"]:
            if "solution" not in cell.get("metadata", {}).get("tags", []):
                continue
            inside = False
            for line in _source(cell).splitlines():
                marker = line.strip()
                if marker in (make_assignments.BEGIN, make_assignments.END):
                    inside = marker == make_assignments.BEGIN
                    continue
                squeezed = _squeezed(line)
                if inside and len(squeezed) >= MIN_CHARS and squeezed not in shown:
                    lines.append(squeezed)
    return lines


def _notebook(name: str) -> dict:
    return json.loads((ROOT / "book" / name).read_text())


def test_the_student_edition_of_a_chapter_has_no_solution():
    pdf_edition = load_script("pdf_edition")
    notebook = _notebook("09_focal_loss.ipynb")
    edition = pdf_edition.student_edition(notebook)
    text = "\n".join(_source(c) for c in edition["cells"])
    assert "BEGIN SOLUTION" not in text and "{solution-start}" not in text
    book = "\n".join(_source(c) for c in notebook["cells"])
    solution = 'ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")'
    assert solution in book, "the book's solution line looked for"
    assert solution not in text
    assert text.count("raise NotImplementedError()") == sum(
        "solution" in c.get("metadata", {}).get("tags", []) for c in notebook["cells"]
    )
    assert "The solutions are hidden" not in text and "leaves the solutions out" in text
    exercises = [_source(c) for c in notebook["cells"] if "{exercise}" in _source(c)]
    assert exercises and all(e in text for e in exercises), "every exercise is kept"


def test_the_instructor_edition_shows_each_solution_open():
    pdf_edition = load_script("pdf_edition")
    notebook = _notebook("09_focal_loss.ipynb")
    edition = pdf_edition.instructor_edition(notebook)
    starts = [_source(c) for c in edition["cells"] if "{solution-start}" in _source(c)]
    assert starts and not any(":class: dropdown" in s for s in starts)
    assert [c for c in edition["cells"] if c["cell_type"] == "code"] == [
        c for c in notebook["cells"] if c["cell_type"] == "code"
    ]


@pytest.fixture(scope="module")
def student_text() -> str:
    return _pdf_text(PDF)


def test_every_chapter_title_with_its_number(student_text):
    text = _normal(student_text)
    missing = []
    for path, number in _toc_pages():
        title = _normal(_title(path))
        expected = f"{number}. {title}" if number else title
        if expected not in text:
            missing.append(expected)
    assert not missing, f"chapter titles missing from the PDF: {missing}"


def test_no_solution_in_the_student_edition(student_text):
    assert "BEGIN SOLUTION" not in student_text and "END SOLUTION" not in student_text
    lines = _solution_lines()
    assert len(lines) > 50, f"only {len(lines)} solution lines to look for"
    squeezed = _squeezed(student_text)
    leaked = [line for line in lines if line in squeezed]
    assert not leaked, f"{len(leaked)} solution lines in the student PDF, e.g. {leaked[:3]}"


def _code_cells() -> str:
    """Every code cell of the student copies, whitespace removed: LaTeX that code holds
    (a matplotlib label such as ``r"$\\frac{1}{2}$"``) is printed as code, rightly."""
    make_assignments = load_script("make_assignments")
    texts = []
    for path in sorted((ROOT / "book").glob("*.ipynb")):
        student, _ = make_assignments.student_notebook(json.loads(path.read_text()))
        texts.extend(_source(c) for c in student["cells"] if c["cell_type"] == "code")
    return _squeezed("\n".join(texts))


def raw_latex(text: str, code: str) -> list[str]:
    """The lines of ``text`` with a LaTeX command that no code cell holds: a formula that
    MathJax left untypeset."""
    return [
        line
        for line in text.splitlines()
        if re.search(r"\\(begin|end|frac|sum|mathrm|left|right)\b", line)
        and _squeezed(line) not in code
    ]


def test_raw_latex_is_found_in_prose_and_not_in_code():
    code = _squeezed('label = r"weight $\\frac{1}{2}e^{-s_i}$"')
    assert raw_latex('label = r"weight $\\frac{1}{2}e^{-s_i}$"', code) == []
    assert raw_latex("the loss \\frac{1}{N} \\sum_i", code) == ["the loss \\frac{1}{N} \\sum_i"]
    assert raw_latex("\\begin{split}", code) == ["\\begin{split}"]


def test_no_raw_latex(student_text):
    left = raw_latex(student_text, _code_cells())
    assert not left, f"{len(left)} lines of raw LaTeX in the student PDF, e.g. {left[:3]}"


def test_the_check_finds_the_solutions_in_the_instructor_edition():
    if not INSTRUCTOR.exists():
        pytest.skip("no instructor edition: run `make pdf-instructor`")
    squeezed = _squeezed(_pdf_text(INSTRUCTOR))
    lines = _solution_lines()
    found = [line for line in lines if line in squeezed]
    assert len(found) >= 0.9 * len(lines), (
        f"only {len(found)} of {len(lines)} solution lines found in the instructor PDF, "
        f"e.g. missing {[line for line in lines if line not in squeezed][:3]}"
    )
