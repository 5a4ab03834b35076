"""A notebook judges a paired comparison with `mlh.paired_difference`, never with a typed
Student quantile.

A threshold typed into a notebook drifts from the number of seeds the cell runs: chapter 9
once judged five seeds with the constant for six. `mlh.paired_difference(a, b)` computes
Student's two-sided threshold from the number of pairs and returns it as `t_critical`, so
a chapter prints it and its prose refers to it. Read from the notebooks' source, this test
fails on

- a threshold's name (`CLEAR`, `T_CRIT`, `T_CRITICAL`, `CRITICAL_T`, `Z_CRIT`, ...) bound to
  a number literal;
- a constant (an upper-case name) bound to a Student quantile typed as a literal;
- a Student quantile typed as a literal (2.776, 2.78, 2.57, 2.36, ...: the two-sided 90%,
  95% and 99% points for 1 to 200 degrees of freedom, and the normal's, to two or more
  decimals) in a comparison, an assert or a product, in a statement that also reads a
  standard error (`se`, `SE`, `sem()`, `std`, ...) or a t statistic (`t`, "mean / SE");
- prose that types such a quantile as a number of standard errors ("2.78 standard
  errors", "$t_{0.975,\\,4} = 2.776$").
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

import multiloss_helpers as mlh

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted(
    p for p in (ROOT / "book").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts
)
#: Names that a typed threshold for a paired comparison goes by.
THRESHOLD_NAME = re.compile(
    r"(?i)^(clear|clear_t|t_?crit(ical)?|crit(ical)?(_t|_value)?|z_?crit(ical)?"
    r"|t_?(star|threshold|95|975)|student_?t)$"
)
#: A name, attribute, call or column that reads a standard error (or the spread behind
#: it), or a t statistic (`t`, `t_stat`, "mean / SE").
STANDARD_ERROR = re.compile(
    r"(?i)(^|_)(se|sem|sd|std|stderr|standard_error)($|_)|^t(_?stat|_value)?$|/ ?se\b"
)
FLOAT = r"\d+\.\d{2,}"
#: Prose that types a quantile as a number of standard errors, or as a t quantile.
PROSE = (
    re.compile(rf"({FLOAT})\s*(?:\\times\s*|×\s*)?(?:standard\s+errors?\b|SEs?\b)"),
    re.compile(rf"t_\{{?[0-9.]+[^$=]*=\s*({FLOAT})"),
)


def _student_quantiles() -> frozenset[float]:
    """Two-sided 90/95/99% points of Student's t (1..200 df) and the normal's, rounded."""
    normal = [1.6448536, 1.9599640, 2.5758293]
    points = [mlh.t_quantile(p, df) for p in (0.95, 0.975, 0.995) for df in range(1, 201)]
    points += normal
    return frozenset(round(x, k) for x in points for k in (2, 3, 4))


QUANTILES = _student_quantiles()


def _is_quantile(node: ast.AST) -> bool:
    """A float literal with two or more decimals that is a rounded Student quantile."""
    if not (isinstance(node, ast.Constant) and isinstance(node.value, float)):
        return False
    decimals = repr(node.value).partition(".")[2]
    return len(decimals) >= 2 and "e" not in decimals and node.value in QUANTILES


def _names(node: ast.AST) -> set[str]:
    """Every identifier and attribute name read inside `node`."""
    out: set[str] = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            out.add(sub.id)
        elif isinstance(sub, ast.Attribute):
            out.add(sub.attr)
        elif isinstance(sub, ast.Constant) and isinstance(sub.value, str):
            out.add(sub.value)  # a column: stats["se"]
    return out


def _is_number(node: ast.AST) -> bool:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        node = node.operand
    return isinstance(node, ast.Constant) and type(node.value) in (int, float)


def typed_thresholds(source: str) -> list[str]:
    """What in one code cell types a Student threshold (empty when nothing does)."""
    found = []
    lines = "\n".join(
        "" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines()
    )
    for statement in ast.walk(ast.parse(lines)):
        if isinstance(statement, ast.Assign | ast.AnnAssign) and statement.value is not None:
            targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
            for target in targets:
                if not isinstance(target, ast.Name):
                    continue
                if THRESHOLD_NAME.match(target.id) and _is_number(statement.value):
                    found.append(f"`{ast.unparse(statement)}` (a typed threshold)")
                elif target.id.isupper() and any(
                    _is_quantile(leaf) for leaf in ast.walk(statement.value)
                ):  # a constant, or a table of them: T95 = {4: 2.776, 15: 2.131}
                    found.append(f"`{ast.unparse(statement)}` (a typed Student quantile)")
        if not isinstance(statement, ast.stmt):
            continue
        if not any(STANDARD_ERROR.search(name) for name in _names(statement)):
            continue
        for node in ast.walk(statement):
            judged = isinstance(node, ast.Compare | ast.Assert) or (
                isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult)
            )
            if judged and any(_is_quantile(leaf) for leaf in ast.walk(node)):
                found.append(f"`{ast.unparse(node)}` (a Student quantile against an SE)")
                break
    return found


def typed_prose(text: str) -> list[str]:
    """Numbers in Markdown that type a Student quantile as a count of standard errors."""
    return [
        match.group(0)
        for pattern in PROSE
        for match in pattern.finditer(text)
        if float(match.group(1)) in QUANTILES
    ]


def _cells(path: Path) -> list[tuple[int, str, str]]:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return [(index, cell["cell_type"], "".join(cell["source"])) for index, cell in enumerate(cells)]


@pytest.mark.parametrize(
    "source",
    [
        "CLEAR = 2.78  # Student's t, 4 degrees of freedom",
        "T_CRIT = 2.776",
        "T_CRITICAL: float = 2.36",
        "t_crit = 3",
        "THRESHOLD = 2.571",
        "assert diff.mean() > 2.776 * diff.sem()",
        "assert mean > max(0.1, 2.36 * se), name",
        'verdict = "clear" if abs(t) > 2.78 else "no clear difference"  # t = mean / se',
        'stats.loc[stats["mean"] > 2.26 * stats["se"], "verdict"] = "higher"',
        "ok = gain.mean() > 1.96 * gain.std() / len(gain) ** 0.5",
        "T95 = {4: 2.776, 15: 2.131}  # Student's t by degrees of freedom",
    ],
)
def test_the_check_catches_a_typed_threshold(source):
    assert typed_thresholds(source), source


@pytest.mark.parametrize(
    "source",
    [
        "result = mlh.paired_difference(a, b)\nassert result.verdict == 'higher'",
        "assert diff.mean > diff.t_critical * diff.se",
        "T_CRIT = mlh.t_quantile(0.975, len(SEEDS) - 1)",
        "assert abs(diff.mean) < 3 * diff.se + 0.05  # a tolerance, not a quantile",
        "assert ratio > 2.78  # no standard error in sight",
        "gamma = 2.0\nlr = 3e-3",
        "%timeit x = 1",
    ],
)
def test_the_check_leaves_computed_thresholds_alone(source):
    assert not typed_thresholds(source), source


@pytest.mark.parametrize(
    ("text", "caught"),
    [
        ("clear when the mean is more than 2.78 standard errors from zero", True),
        ("when it exceeds $t_{0.975,\\,4} = 2.776$ standard errors", True),
        ("more than 2.36 SE from zero", True),
        ("more than `t_critical` standard errors from zero (printed)", False),
        ("the loss falls by 2.78 nats", False),
        ("not the 2 that suits many seeds", False),
    ],
)
def test_the_check_reads_prose(text, caught):
    assert bool(typed_prose(text)) is caught, text


def test_there_are_notebooks():
    assert NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_notebook_types_a_student_threshold(path):
    found = []
    for index, kind, source in _cells(path):
        if kind == "code":
            found += [f"cell {index}: {what}" for what in typed_thresholds(source)]
        elif kind == "markdown":
            found += [f"cell {index}: prose {what!r}" for what in typed_prose(source)]
    assert not found, (
        f"{path.name} types a Student threshold; judge the comparison with "
        "`mlh.paired_difference(a, b)` (its `.verdict`, `.t` and `.t_critical`, computed "
        f"from the number of seeds) and refer to the printed `t_critical`: {found}"
    )
