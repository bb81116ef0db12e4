"""Sphinx configuration of the docs site (`make docs` builds it).

The site is the Markdown pages of docs/ (read by MyST, so they stay plain
Markdown that reads well on a code host too), a tutorial, and an API
reference generated from the docstrings of the names trioweb exports.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
# Build from this checkout even when another trioweb is installed.
sys.path.insert(0, str(HERE.parent))

import trioweb  # noqa: E402

project = "trioweb"
author = "the trioweb authors"
copyright = "the trioweb authors"
version = release = trioweb.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    # The docstrings have Google-style "Args:", "Raises:" and "Attributes:".
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    # Marks coroutines, async context managers and decorators as such.
    "sphinxcontrib_trio",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]

# A snippet Pygments cannot lex (pseudo-code with "...") is shown unhighlighted
# rather than failing the build; every other warning fails it.
suppress_warnings = ["misc.highlighting_failure"]

# Links like handlers.md#deadlines-and-overload resolve to the heading.
myst_heading_anchors = 3

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}

html_theme = "furo"
html_title = f"trioweb {release}"

# Pages with their own place in index.md; every other docs/*.md is a guide.
PLACED = {
    "index",
    "tutorial",
    "quickstart",
    "performance",
    "tornado-differences",
    "api",
    "changelog",
}
# The guides in reading order; a page not listed here (a new one) follows
# them in alphabetical order, so adding a page never needs this file.
GUIDE_ORDER = [
    "handlers",
    "request-input",
    "security",
    "static-files",
    "templates",
    "compression",
    "sse",
    "websockets",
    "testing",
    "server",
    "deployment",
    "design",
]
GUIDES_MARKER = "GUIDES (filled in by conf.py)"


def guides() -> list[str]:
    """The guide pages present in docs/, in reading order."""
    names = {path.stem for path in HERE.glob("*.md")} - PLACED
    ordered = [name for name in GUIDE_ORDER if name in names]
    return ordered + sorted(names - set(ordered))


API_MARKER = "API_UNLISTED (filled in by conf.py)"


def unlisted_api(text: str) -> str:
    """reST for the names in ``trioweb.__all__`` that ``text`` does not document.

    A name exported after api.rst was last edited is documented anyway,
    under "More names", until someone gives it its place.
    """
    missing = [name for name in trioweb.__all__ if not re.search(rf":: {name}\b", text)]
    if not missing:
        return ""
    lines = ["More names", "----------", ""]
    for name in missing:
        obj = getattr(trioweb, name)
        if isinstance(obj, type):
            kind = "autoexception" if issubclass(obj, BaseException) else "autoclass"
        elif callable(obj):
            kind = "autofunction"
        else:
            kind = "autodata"
        lines += [f".. {kind}:: {name}", ""]
    return "\n".join(lines)


def _fill_in(app: Any, docname: str, source: list[str]) -> None:
    if docname == "index":
        source[0] = source[0].replace(GUIDES_MARKER, "\n".join(guides()))
    elif docname == "api":
        source[0] = source[0].replace(API_MARKER, unlisted_api(source[0]))


def _drop_object_base(
    app: Any, name: str, obj: Any, options: Any, bases: list[type]
) -> None:
    # "Bases: object" tells a reader nothing; exceptions keep their base.
    # Neither do RequestHandler's mixins (its methods grouped by module):
    # api.rst documents their methods as RequestHandler's own.
    if bases == [object] or obj is trioweb.RequestHandler:
        bases.clear()


def setup(app: Any) -> None:
    app.connect("source-read", _fill_in)
    app.connect("autodoc-process-bases", _drop_object_base)
