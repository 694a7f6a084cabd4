"""Sphinx configuration of the queueing-llm documentation.

Build with ``make -C docs html``: the ``generated`` target first runs the scripts of
``proofs/`` and ``docs/build_theory.py``, which write ``docs/generated/theory.rst`` (the
theory chapter's statements and derivations) from the theorem registry; then
``sphinx-build -W`` (warnings are errors). Built in place, the source tree next to this
file comes first on ``sys.path``; ``tests/test_docs_build.py`` builds a copy of the
folder, so there the installed package is documented.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if (ROOT / "queueing_llm" / "__init__.py").is_file():
    sys.path.insert(0, str(ROOT))

import queueing_llm  # noqa: E402

project = "queueing-llm"
author = "queueing-llm developers"
copyright = "2026, queueing-llm developers"
release = queueing_llm.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",  # numpydoc-style docstrings
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "myst_parser",  # the Markdown pages (user_theorems.md, traces.md)
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}

napoleon_google_docstring = False
napoleon_numpy_docstring = True
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}

# The type of a numpydoc parameter ("runs : Run or list of runs", "warmup : int in [0, iterations)")
# becomes cross-references word by word; a word that is also an attribute of two classes
# (Trajectory.iterations and RelaxedTrajectory.iterations) makes an ambiguous link, which
# says nothing about the docs. Every other warning is an error (sphinx-build -W).
suppress_warnings = ["ref.python"]

exclude_patterns = ["_build", "generated"]  # generated/theory.rst is included by theory.rst
templates_path: list[str] = []
html_theme = "alabaster"
html_static_path: list[str] = []
