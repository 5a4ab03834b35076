"""Write student notebooks (no solutions), or nbgrader source notebooks, from the book's.

Usage:
    python scripts/make_assignments.py [--keep] [SOURCE] [OUTPUT]          student copies
    python scripts/make_assignments.py --nbgrader-source [SOURCE] [OUTPUT] nbgrader sources

``--keep`` leaves a notebook already in OUTPUT as it is (`make lab` keeps a learner's work).

SOURCE is a folder of notebooks (default: book) and OUTPUT a folder (default:
_build/assignments); `make assignments` writes the student copies.

Both kinds read as plain Jupyter notebooks: the markdown cells that open and close the book's
hidden solution blocks (``{solution-start}``, ``{solution-end}``) are dropped, and each
``{exercise}`` directive becomes a Markdown heading numbered as in the book ("Exercise 9.1",
...) followed by its text, so the prompts read well in Jupyter and Colab; the sentence that
says the solutions are hidden below each exercise says what the copy has instead. Outputs
are cleared. The cells get the nbgrader metadata of scripts/nbgrader_cells.py (answer
cells, graded check cells, ids).

- A *student copy* also replaces, in each code cell tagged ``solution``, the lines from
  ``### BEGIN SOLUTION`` to ``### END SOLUTION`` with nbgrader's stub (``# YOUR CODE HERE``
  and ``raise NotImplementedError()``) at the marker's indentation, so the scaffolding around
  them (a signature, a docstring) stays. It is the notebook ``nbgrader generate_assignment``
  releases from the matching nbgrader source, cell for cell (tests/house/test_grading.py checks).
- An *nbgrader source* keeps the solutions between their markers: put it in an nbgrader
  course's ``source/<assignment>/`` and run ``nbgrader generate_assignment <assignment>``.
  Each graded check cell also gets a hidden test (``### BEGIN HIDDEN TESTS``): the same
  check call, made on a fresh copy of ``multiloss_helpers`` read from its files rather than
  from ``sys.modules`` or the notebook's ``mlh``, so that an answer cell that replaces a
  checker (``mlh.exercises.check_x = lambda fn: True``) still scores 0. nbgrader removes the
  hidden lines from the release (the student copy has none either) and runs them again when
  it autogrades, from the locked cell it stored at ``generate_assignment``.
"""

from __future__ import annotations

import ast
import copy
import importlib.util
import json
import re
import sys
from pathlib import Path

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
# nbgrader's own code stub (ClearSolutions.code_stub for Python), so that the two agree.
STUB_LINES = ("# YOUR CODE HERE", "raise NotImplementedError()")
STUB = "\n".join(STUB_LINES)
HIDDEN_BEGIN, HIDDEN_END = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
CHECK_CALL = re.compile(r"\bmlh\.exercises\.(check_\w+)\(")
# The hidden test's loader: a fresh copy of the package under a private name, found by the
# import system's finders (never through sys.modules), so nothing an answer cell did to
# `mlh`, `mlh.exercises` or the harness reaches it. It is defined again in every check cell.
FRESH_CHECK = '''def _mlh_fresh_check(name):
    """`mlh.exercises.<name>` from a fresh copy of multiloss_helpers, read from its files."""
    import importlib.util, sys, uuid

    alias = f"_mlh_fresh_{uuid.uuid4().hex}"
    found = next(
        spec
        for finder in sys.meta_path
        if (spec := getattr(finder, "find_spec", lambda *a: None)("multiloss_helpers", None))
    )
    spec = importlib.util.spec_from_file_location(
        alias, found.origin, submodule_search_locations=found.submodule_search_locations
    )
    package = importlib.util.module_from_spec(spec)
    sys.modules[alias] = package  # its submodules import each other under this name
    spec.loader.exec_module(package)
    return getattr(package.exercises, name)'''
# The book's sentence about its hidden solutions, and what a copy without them says instead.
HIDDEN_SOLUTIONS = re.compile(r"The solutions are hidden\s+below\s+each\s+exercise[^.]*\.")
COPY_SOLUTIONS = (
    "In this copy, the cell below each exercise is yours to complete: it raises\n"
    "`NotImplementedError` until you do, and its check then says what is left."
)
CHAPTER_NUMBER = re.compile(r"^(\d+)_")
FENCE_OPEN = re.compile(r"^(?P<fence>`{3,}|:{3,})\{exercise\}(?P<title>.*)$")


def _sibling(name: str):
    """The script ``name``.py next to this one, imported as a module."""
    spec = importlib.util.spec_from_file_location(
        name, Path(__file__).resolve().with_name(f"{name}.py")
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


nbgrader_cells = _sibling("nbgrader_cells")
GATE = nbgrader_cells.GATE  # a `{solution-start}` / `{solution-end}` gate cell
plain_citations = _sibling("plain_citations")


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def strip_solutions(source: str) -> str:
    """Replace each marked region of ``source`` with the stub at the marker's indentation."""
    out, inside = [], False
    for line in source.splitlines():
        stripped = line.strip()
        if stripped == BEGIN:
            if inside:
                raise ValueError("nested `### BEGIN SOLUTION` markers")
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            out.extend(indent + stub for stub in STUB_LINES)
        elif stripped == END:
            if not inside:
                raise ValueError("`### END SOLUTION` without a matching BEGIN")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError("`### BEGIN SOLUTION` without a matching END")
    return "\n".join(out)


def _check_statements(source: str) -> list[str]:
    """The top-level statements of a check cell that call ``mlh.exercises.check_*``."""
    tree = ast.parse(source)
    found = []
    for node in tree.body:
        text = ast.get_source_segment(source, node) or ""
        if CHECK_CALL.search(text):
            found.append(text)
    return found


def locked_check(source: str) -> str:
    """A graded check cell with its hidden test: the same calls on a fresh checker."""
    calls = [CHECK_CALL.sub(r'_mlh_fresh_check("\1")(', text) for text in _check_statements(source)]
    if not calls:
        raise ValueError("a graded check cell calls no `mlh.exercises.check_*`")
    hidden = [
        HIDDEN_BEGIN,
        "# Autograding: the same check, from a copy of the package no answer cell can replace.",
        FRESH_CHECK,
        *calls,
        HIDDEN_END,
    ]
    return "\n".join([source.rstrip("\n"), *hidden])


def strip_hidden_tests(source: str) -> str:
    """``source`` without its hidden-test regions, line by line as nbgrader removes them."""
    out, inside = [], False
    for line in source.splitlines():
        if line.strip() == HIDDEN_BEGIN:
            inside = True
        elif line.strip() == HIDDEN_END:
            inside = False
        elif not inside:
            out.append(line)
    return "\n".join(out)


def exercise_markdown(source: str, number: int | str) -> str:
    """An ``{exercise}`` directive cell as plain Markdown: a heading, then the text.

    The directive's options (``:label:``, ``:class:``...) are dropped; the body is kept as
    it is, up to the last line that closes the directive's fence. Text around the directive
    stays. A cell without an exercise directive is returned unchanged.
    """
    lines = source.splitlines()
    start = next((i for i, line in enumerate(lines) if FENCE_OPEN.match(line)), None)
    if start is None:
        return source
    match = FENCE_OPEN.match(lines[start])
    assert match
    fence, title = match["fence"], match["title"].strip()
    closes = [i for i in range(start + 1, len(lines)) if lines[i].strip() == fence]
    end = closes[-1] if closes else len(lines)
    body = lines[start + 1 : end]
    while body and re.match(r"^:[\w-]+:", body[0]):
        body = body[1:]
    while body and not body[0].strip():
        body = body[1:]
    heading = f"### Exercise {number}" + (f": {title}" if title else "")
    bold = re.match(r"^\*\*(?P<name>.+?)\*\*\s*(?P<rest>.*)$", body[0]) if body else None
    if bold and not title:
        heading = f"### Exercise {number}: {bold['name']} {bold['rest']}".rstrip()
        body = body[1:]
        while body and not body[0].strip():
            body = body[1:]
    return "\n".join([*lines[:start], heading, "", *body, *lines[end + 1 :]]).rstrip("\n")


def copy_wording(source: str) -> str:
    """A markdown cell's text as it should read in a copy without solutions."""
    return HIDDEN_SOLUTIONS.sub(COPY_SOLUTIONS, source)


def _plain_cells(notebook: dict, chapter: str = "") -> list[dict]:
    """The cells with gates dropped, exercises and citations as Markdown, outputs cleared.

    Exercises are numbered as in the book: ``<chapter>.<n>`` ("Exercise 9.1") when the
    chapter has a number, else ``<n>``.
    """
    cells, number = [], 0
    prose = "\n".join(_source(c) for c in notebook["cells"] if c["cell_type"] == "markdown")
    keys = plain_citations.cited_keys(prose)
    bib = plain_citations.read_bib() if keys else {}
    for cell in notebook["cells"]:
        source = _source(cell)
        if cell["cell_type"] == "markdown" and GATE.search(source):
            continue
        cell = copy.deepcopy(cell)
        if cell["cell_type"] == "markdown":
            source = copy_wording(source)
            source = cell["source"] = plain_citations.plain_citations(source, keys, bib)
        if cell["cell_type"] == "markdown" and any(
            FENCE_OPEN.match(line) for line in source.splitlines()
        ):
            number += 1
            cell["source"] = exercise_markdown(source, f"{chapter}.{number}" if chapter else number)
        if cell["cell_type"] == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
        cells.append(cell)
    return cells


def _with_nbgrader_metadata(notebook: dict) -> dict:
    """``notebook`` with the metadata of scripts/nbgrader_cells.py and an answer cell after
    each written exercise, as a plain dict."""
    import nbformat

    nb = nbformat.reads(json.dumps(notebook), as_version=4)
    nbgrader_cells.process(nb)
    nbgrader_cells.add_written_answers(nb)
    return json.loads(nbformat.writes(nb))


def chapter_number(name: str) -> str:
    """The book's number of the chapter in notebook ``name`` ("09_focal_loss" -> "9"), or ""."""
    found = CHAPTER_NUMBER.match(Path(name).name)
    return str(int(found.group(1))) if found else ""


def nbgrader_source(notebook: dict, chapter: str = "") -> dict:
    """The nbgrader source version of a book notebook (solutions kept, between markers),
    each graded check cell with its hidden test (:func:`locked_check`); ``chapter`` is the
    chapter's number, for the exercise numbers."""
    tagged = _with_nbgrader_metadata(notebook)
    cells = _plain_cells(tagged, chapter)
    for cell in cells:
        if cell["cell_type"] == "code" and cell.get("metadata", {}).get("nbgrader", {}).get(
            "grade"
        ):
            cell["source"] = locked_check(_source(cell))
    return {**tagged, "cells": cells}


def student_notebook(notebook: dict, chapter: str = "") -> tuple[dict, int]:
    """The student version of a notebook and the number of solution cells stubbed."""
    source = nbgrader_source(notebook, chapter)
    stubbed = 0
    for cell in source["cells"]:
        if cell["cell_type"] == "code" and "solution" in cell.get("metadata", {}).get("tags", []):
            text = _source(cell)
            if BEGIN not in text:
                raise ValueError("a cell tagged `solution` has no `### BEGIN SOLUTION` marker")
            cell["source"] = strip_solutions(text)
            stubbed += 1
        elif cell["cell_type"] == "code" and HIDDEN_BEGIN in _source(cell):
            cell["source"] = strip_hidden_tests(_source(cell))
    return source, stubbed


def _write(notebook: dict, path: Path) -> None:
    import nbformat

    path.write_text(nbformat.writes(nbformat.from_dict(notebook)) + "\n")


def make_assignments(
    source_dir: Path, output_dir: Path, *, nbgrader: bool = False, keep: bool = False
) -> dict[str, int]:
    """Write a student (or nbgrader source) version of every notebook in ``source_dir``.

    With ``keep``, a notebook already in ``output_dir`` is left as it is (a learner's work
    in progress) and not counted. Returns the number of exercise answer cells per notebook
    written.
    """
    output_dir.mkdir(parents=True, exist_ok=True)
    counts = {}
    for path in sorted(source_dir.glob("*.ipynb")):
        if keep and (output_dir / path.name).exists():
            continue
        original = json.loads(path.read_text())
        chapter = chapter_number(path.stem)
        if nbgrader:
            notebook = nbgrader_source(original, chapter)
            count = sum(
                "solution" in c.get("metadata", {}).get("tags", []) for c in notebook["cells"]
            )
        else:
            notebook, count = student_notebook(original, chapter)
        _write(notebook, output_dir / path.name)
        counts[path.name] = count
    return counts


def main(argv: list[str]) -> int:
    flags = {"--nbgrader-source", "--keep"}
    args = [a for a in argv[1:] if a not in flags]
    nbgrader, keep = "--nbgrader-source" in argv[1:], "--keep" in argv[1:]
    source = Path(args[0]) if args else Path("book")
    output = Path(args[1]) if len(args) > 1 else Path("_build/assignments")
    counts = make_assignments(source, output, nbgrader=nbgrader, keep=keep)
    kind = "nbgrader source" if nbgrader else "student"
    for name, count in counts.items():
        print(f"{name}: {count} exercise(s)")
    if keep:
        print(f"(notebooks already in {output} were kept as they are)")
    print(f"{kind} notebooks written to {output.resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
