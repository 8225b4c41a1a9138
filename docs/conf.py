"""Sphinx configuration of pdekit's documentation (``make docs``; warnings are errors)."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))
sys.path.insert(0, str(HERE.parent))

import pdekit  # noqa: E402

project = "pdekit"
author = "the pdekit developers"
copyright = "2026, the pdekit developers"
release = pdekit.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "myst_parser",
    "pdekit_docs",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
myst_enable_extensions = ["dollarmath"]
myst_heading_anchors = 3
autosummary_generate = True
autosummary_imported_members = False
# Flag options take no value: "undoc-members": False would switch undocumented members *on*.
# "ignore-module-all": document each object once, in its defining module (a package's
# ``__all__`` re-exports would otherwise be documented twice and make references ambiguous).
autodoc_default_options = {"members": True, "show-inheritance": True, "ignore-module-all": True}
autodoc_typehints = "description"
autodoc_member_order = "bysource"
napoleon_numpy_docstring = True
napoleon_google_docstring = False
templates_path = ["_templates"]
exclude_patterns = ["_build"]
html_theme = "alabaster"
html_theme_options = {"description": "Scientific machine learning on PDEs", "fixed_sidebar": True}
nitpicky = False
