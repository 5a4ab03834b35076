"""Releases: one version in every place that states it, and notes for every release.

``multiloss_helpers.__version__`` (read from the source, as the wheel does), the
``version`` of CITATION.cff (valid Citation File Format 1.2.0), the top version of
CHANGELOG.md and the version in the site's footer must agree; the release workflow tags
``v<version>`` and publishes that version's changelog section as the release notes.
Runs without torch (the release workflow runs it with --noconftest).
"""

from __future__ import annotations

import datetime
import re
from pathlib import Path

import yaml
from helpers.scripts import load_script

ROOT = Path(__file__).resolve().parents[2]
release_notes = load_script("release_notes")

VERSION = release_notes.package_version()
SEMVER = re.compile(r"^\d+\.\d+\.\d+$")


def _citation() -> dict:
    return yaml.safe_load((ROOT / "CITATION.cff").read_text())


def test_the_version_is_semantic():
    assert SEMVER.match(VERSION), VERSION


def test_citation_cff_is_valid_cff_1_2_0():
    """The rules of the CFF 1.2.0 schema that this file uses (required keys, types, formats)."""
    cff = _citation()
    allowed = {
        "abstract", "authors", "cff-version", "commit", "contact", "date-released", "doi",
        "identifiers", "keywords", "license", "license-url", "message", "preferred-citation",
        "references", "repository", "repository-artifact", "repository-code", "title",
        "type", "url", "version",
    }  # fmt: skip
    assert set(cff) <= allowed, set(cff) - allowed
    assert cff["cff-version"] == "1.2.0"
    for key in ("message", "title"):
        assert isinstance(cff[key], str) and cff[key].strip()
    assert cff.get("type", "software") in ("software", "dataset")
    authors = cff["authors"]
    assert isinstance(authors, list) and authors
    for author in authors:  # a person (family-names...) or an entity (name)
        assert isinstance(author, dict)
        assert author.get("name") or author.get("family-names") or author.get("given-names")
    assert isinstance(cff["version"], str)
    datetime.date.fromisoformat(str(cff["date-released"]))
    assert re.match(r"^\d{4}-\d{2}-\d{2}$", str(cff["date-released"]))
    assert cff["license"] == "MIT" and (ROOT / "LICENSE").read_text().startswith("MIT License")
    for key in ("repository-code", "url"):
        assert re.match(r"^https://\S+$", cff[key])
    assert all(isinstance(k, str) for k in cff.get("keywords", []))


def test_package_citation_and_changelog_agree():
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert _citation()["version"] == VERSION
    assert release_notes.changelog_versions(changelog)[0] == VERSION
    heading = re.search(rf"^## \[{re.escape(VERSION)}\] - (\S+)$", changelog, re.M)
    assert heading, f"CHANGELOG.md: no dated heading `## [{VERSION}] - YYYY-MM-DD`"
    assert heading.group(1) == str(_citation()["date-released"])


def test_the_release_notes_are_the_versions_changelog_section():
    changelog = (ROOT / "CHANGELOG.md").read_text()
    notes = release_notes.section(changelog, VERSION)
    assert notes.strip() and "## [" not in notes and "]: https://" not in notes
    assert notes.strip() in changelog


def test_the_site_shows_the_version():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert f"version {VERSION}" in config["html"]["extra_footer"]


def test_the_release_workflow_tags_and_publishes_the_version():
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "release.yml").read_text())
    on = workflow[True] if True in workflow else workflow["on"]  # YAML reads `on` as True
    assert on["push"]["branches"] == ["main"]
    assert "multiloss_helpers/__init__.py" in on["push"]["paths"]
    steps = "\n".join(str(step.get("run", "")) for step in workflow["jobs"]["release"]["steps"])
    assert "scripts/release_notes.py version" in steps
    assert 'git tag -a "v$VERSION"' in steps and 'gh release create "v$VERSION"' in steps
    assert "--notes-file release-notes.md" in steps
    assert 'scripts/release_notes.py notes "$VERSION" > release-notes.md' in steps
