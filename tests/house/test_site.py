"""scripts/check_site.py on a small book built with the site's CSS and MathJax.

A one-page Jupyter Book (a formula that needs an on-demand TeX extension, a code line of
130 characters, a wide table) is built twice: with ``mathjax_path`` pointing at the MathJax
that `make mathjax` copies into ``_build/mathjax`` it must pass the offline checks at 420
and 1280 px; with Sphinx's default CDN MathJax, the same checks (every request to the
network blocked) must fail on raw LaTeX. Runs with MLH_TEST_SITE=1 and needs `make
mathjax`, Chromium and chromedriver, and selenium (requirements-site.txt).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.scripts import load_script

if os.environ.get("MLH_TEST_SITE") != "1":
    pytest.skip("site check: run with MLH_TEST_SITE=1", allow_module_level=True)
pytest.importorskip("selenium")
if not (shutil.which("chromium") or shutil.which("chromium-browser")):
    pytest.skip("needs Chromium", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[2]
MATHJAX = ROOT / "_build" / "mathjax"
if not (MATHJAX / "mathjax" / "tex-mml-chtml.js").exists():
    pytest.skip("run `make mathjax` first", allow_module_level=True)

PAGE = r"""# Page

Inline $\alpha_t (1 - p_t)^\gamma$ and a display that loads an extension on demand:

$$
\begin{split}\mathrm{FL}(p_t) &= -\alpha_t (1 - p_t)^\gamma \log p_t \\
\boldsymbol{x} &= 1\end{split}
$$

```python
CODE
```

TABLE
"""
CODE = (
    "assert (torch.tensor([1.0, 2.0]) - torch.tensor([1.0, 2.0])).abs().max().item()"
    ' < 1e-12, "a long line"'
)
HEADERS = ["a long column header", "another long column header", "a third", "a fourth", "5"]
TABLE = "\n".join("| " + " | ".join(row) + " |" for row in (HEADERS, ["---"] * 5, list("12345")))
PAGE = PAGE.replace("CODE", CODE).replace("TABLE", TABLE)


def _build(root: Path, offline_maths: bool) -> Path:
    (root / "book").mkdir(parents=True)
    (root / "book" / "01_page.md").write_text(PAGE)
    (root / "intro.md").write_text("# Intro\n\nHello.\n")
    (root / "_toc.yml").write_text(
        "format: jb-book\nroot: intro\nchapters:\n  - file: book/01_page\n"
    )
    static = [str(ROOT / "book" / "_static"), str(MATHJAX)]
    config = (
        'title: Site check\nexecute:\n  execute_notebooks: "off"\nparse:\n'
        "  myst_enable_extensions: [amsmath, dollarmath]\nsphinx:\n  config:\n"
        f"    html_static_path: {static}\n    html_css_files: [readable.css]\n"
    )
    if offline_maths:
        config += "    mathjax_path: mathjax/tex-mml-chtml.js\n"
    (root / "_config.yml").write_text(config)
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    subprocess.run([str(jupyter_book), "build", str(root)], check=True, capture_output=True)
    return root / "_build" / "html"


def _check_site():
    return load_script("check_site")


def test_the_sites_maths_renders_offline_and_code_and_tables_fit(tmp_path):
    html = _build(tmp_path / "offline", offline_maths=True)
    assert _check_site().main([str(html), "--screenshots", str(tmp_path / "shots")]) == 0


def test_a_cdn_mathjax_fails_the_offline_check(tmp_path, capsys):
    html = _build(tmp_path / "cdn", offline_maths=False)
    assert _check_site().main([str(html), "--screenshots", str(tmp_path / "shots")]) == 1
    assert "formulas left as raw LaTeX offline" in capsys.readouterr().out
