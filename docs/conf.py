"""Sphinx configuration for the daskasync documentation.

Build with warnings as errors (what ``tests/test_docs.py`` runs)::

    python -m sphinx -W --keep-going -b html docs docs/_build/html
"""

from __future__ import annotations

import os
import sys

# Import the package from this checkout (an editable install works too).
sys.path.insert(0, os.path.abspath(".."))

import daskasync  # noqa: E402

project = "daskasync"
author = "daskasync developers"
copyright = "daskasync developers"
version = daskasync.__version__
release = daskasync.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    # no sphinx.ext.intersphinx: the build must not need the network
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

# -- MyST ---------------------------------------------------------------------------------
myst_enable_extensions = ["colon_fence"]
myst_heading_anchors = 3

# -- autodoc / napoleon -------------------------------------------------------------------
# numpydoc-style docstrings throughout the package
napoleon_numpy_docstring = True
napoleon_google_docstring = False
napoleon_use_rtype = False
# Keep grouped entries such as "max_updates, max_epochs, time_budget" as one item with one
# description (instead of repeating the description for every name).
napoleon_use_param = False
# Type hints are already spelled out in the numpydoc "Parameters" sections; rendering them
# again in the signatures (or merging them into the descriptions) would duplicate them.
autodoc_typehints = "none"
autodoc_member_order = "bysource"
# ``:show-inheritance:`` is set per class on the API page (barrier, loss, penalty and
# straggler subclasses), not globally: "Bases: object" on every class is noise.
# The library's public names live in the flat ``daskasync`` namespace.
add_module_names = False

# References to types outside the package (numpy, distributed, ...) cannot resolve without
# intersphinx; they render as plain text rather than failing the build.
nitpicky = False

# -- HTML ---------------------------------------------------------------------------------
html_theme = "furo"
html_title = f"daskasync {release}"
html_static_path = []
