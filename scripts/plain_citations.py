"""The book's citations as plain Markdown, for the copies that Jupyter opens.

The book cites through MyST roles (``{cite:t}`lin2017focal```, ``{cite:p}`key```,
``{cite:alp}`key```, with an optional ``{pre}key{post}``) and lists each chapter's
references with a ``{bibliography}`` directive; Jupyter Book renders both from
``references.bib``. Jupyter shows them as raw text, so the student copies
(``scripts/make_assignments.py``) replace them here: a role by "Lin et al. (2017)" (``t``),
"(Lin et al., 2017)" (``p``) or "Lin et al., 2017" (``alp``), and the directive by a bullet
list of the entries the notebook cites, in the order of the .bib file.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

BIB = Path(__file__).resolve().parents[1] / "references.bib"
ROLE = re.compile(r"\{cite(?::(?P<kind>[a-z]+))?\}`(?P<body>[^`]+)`")
ONE_KEY = re.compile(r"^\s*(?:\{(?P<pre>[^}]*)\})?(?P<key>[^{}\s,]+)(?:\{(?P<post>[^}]*)\})?\s*$")
DIRECTIVE = re.compile(
    r"^(?P<fence>`{3,}|:{3,})\{bibliography\}[^\n]*\n.*?^(?P=fence)[ \t]*$", re.M | re.S
)
ENTRY = re.compile(r"@(?P<type>\w+)\{(?P<key>[^,\s]+),(?P<body>.*?)\n\}", re.S)
FIELD = re.compile(r"(?P<name>\w+)\s*=\s*\{(?P<value>(?:[^{}]|\{(?:[^{}]|\{[^{}]*\})*\})*)\}")


class Entry(NamedTuple):
    """One .bib entry, with what a plain citation needs."""

    key: str
    authors: tuple[str, ...]  # last names, or one institution
    year: str
    title: str
    venue: str

    def short(self) -> str:
        """ "Lin et al.", "Arjovsky and Bottou" or "Loshchilov"."""
        if len(self.authors) > 2:
            return f"{self.authors[0]} et al."
        return " and ".join(self.authors)

    def line(self) -> str:
        """The entry as one Markdown list item."""
        venue = f" {self.venue}." if self.venue else ""
        return f"- {self.short()} ({self.year}). {self.title}.{venue}"


def _plain(text: str) -> str:
    """BibTeX text without braces, LaTeX accents or doubled spaces."""
    text = re.sub(r"\\[`'^\"~=.uvHckr]\{?\\?(\w)\}?", r"\1", text)
    return " ".join(text.replace("{", "").replace("}", "").split())


def _last_name(author: str) -> str:
    author = author.strip()
    if author.startswith("{") and author.endswith("}"):
        return _plain(author)  # an institution, kept whole
    return _plain(author.split(",")[0] if "," in author else author.split()[-1])


def read_bib(path: Path = BIB) -> dict[str, Entry]:
    """The entries of ``path`` by key, in file order."""
    entries = {}
    for match in ENTRY.finditer(path.read_text(encoding="utf-8")):
        fields = {f["name"].lower(): f["value"] for f in FIELD.finditer(match["body"])}
        authors = re.split(r"\s+and\s+", fields.get("author", "").strip())
        venue = fields.get("journal") or fields.get("booktitle") or fields.get("howpublished")
        entries[match["key"]] = Entry(
            key=match["key"],
            authors=tuple(_last_name(a) for a in authors if a),
            year=fields.get("year", "n.d."),
            title=_plain(fields.get("title", "")),
            venue=_plain(venue or ""),
        )
    return entries


def _cite(kind: str, body: str, bib: dict[str, Entry]) -> str:
    parts = []
    for item in body.split(","):
        found = ONE_KEY.match(item)
        if not found or found["key"] not in bib:
            raise KeyError(f"citation {item.strip()!r} is not a key of {BIB.name}")
        entry = bib[found["key"]]
        pre = f"{found['pre']} " if found["pre"] else ""
        post = f", {found['post']}" if found["post"] else ""
        if kind == "t":
            parts.append(f"{pre}{entry.short()} ({entry.year}{post})")
        else:
            parts.append(f"{pre}{entry.short()}, {entry.year}{post}")
    text = "; ".join(parts)
    return f"({text})" if kind in ("p", "") else text


def cited_keys(text: str) -> list[str]:
    """The keys ``text`` cites, in order of first citation."""
    keys: list[str] = []
    for role in ROLE.finditer(text):
        for item in role["body"].split(","):
            found = ONE_KEY.match(item)
            if found and found["key"] not in keys:
                keys.append(found["key"])
    return keys


def plain_citations(source: str, keys: list[str], bib: dict[str, Entry]) -> str:
    """``source`` with every citation role and bibliography directive as plain Markdown.

    ``keys`` are the keys the whole notebook cites: a ``{bibliography}`` directive becomes
    their list, in the order of the .bib file.
    """
    text = ROLE.sub(lambda m: _cite(m["kind"] or "", m["body"], bib), source)
    listing = "\n".join(entry.line() for key, entry in bib.items() if key in keys)
    return DIRECTIVE.sub(lambda _: listing, text)
