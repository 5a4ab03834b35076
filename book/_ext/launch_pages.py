"""Sphinx extension: launch buttons only on pages whose source is a real notebook.

sphinx-book-theme offers Binder and Colab for every page with a ``kernelspec``. The
intro is a MyST Markdown page with a kernel (it prints the versions the book was built
with), and Colab cannot open ``intro.md``, so its launch button would be broken. This
hides the kernelspec from the theme for such pages; execution is not affected.
"""

from __future__ import annotations

from typing import Any


def _hide_kernelspec_of_text_pages(
    app, pagename: str, templatename, context: dict[str, Any], doctree
) -> None:
    if context.get("page_source_suffix") == ".ipynb":
        return
    metadata = app.env.metadata.get(pagename, {})
    metadata.pop("kernelspec", None)


def setup(app) -> dict[str, Any]:
    # Before sphinx-book-theme's own handler (priority 500) reads the metadata.
    app.connect("html-page-context", _hide_kernelspec_of_text_pages, priority=400)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
