"""Sphinx configuration of the lrjax documentation (Markdown pages through MyST).

    python -m sphinx -W --keep-going -b html docs docs/_build/html

The build reads nothing from the network and the site loads nothing from it: no intersphinx, a
theme that ships its assets, MathJax copied into the site, and the schedule figures drawn locally
by `_ext/schedule_gallery.py`. `_ext/public_api.py` fails the build when a public name has no
docstring or no entry on the API pages.
"""

import os
import sys

DOCS = os.path.dirname(os.path.abspath(__file__))
# The checkout's lrjax, not another installed copy: the pages document the code beside them.
sys.path[:0] = [os.path.dirname(DOCS), os.path.join(DOCS, "_ext")]

import lrjax  # noqa: E402

project = "lrjax"
release = version = lrjax.__version__

extensions = [
  "myst_parser",
  "sphinx.ext.autodoc",
  "sphinx.ext.autosummary",
  "sphinx.ext.napoleon",
  # The docstrings' formulas are typeset in the reader's browser by MathJax, whose files
  # sphinx-mathjax-offline copies into the site (`_static/mathjax/`): no page loads a CDN.
  "sphinx.ext.mathjax",
  "sphinx-mathjax-offline",
  "schedule_gallery",
  "public_api",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

# Docstrings mark names and expressions with single backticks: show them as code.
default_role = "code"

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented"
autosummary_generate = False

napoleon_google_docstring = True
napoleon_numpy_docstring = False

myst_heading_anchors = 3

html_theme = "furo"
html_title = f"lrjax {release}"
html_static_path: list[str] = []
html_show_copyright = False
html_show_sphinx = False
