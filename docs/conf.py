"""Sphinx configuration of the custvalue documentation (``make docs``).

The build fails on any warning (``-W --keep-going`` in the Makefile and in tests/test_docs.py):
a docstring numpydoc cannot parse, a broken cross-reference, or a notebook cell that raises
(myst-nb executes every notebook and every executable guide page on each build).

Two things are generated here, before Sphinx reads the sources, so they cannot drift from the code:

- ``api/<module>.rst``: one page per public submodule of :mod:`custvalue`, listing every name in
  that module's ``__all__`` (autosummary then writes one page per name into ``api/generated/``);
- ``tour/``: a copy of the tour notebooks in ``notebooks/tour/`` (the one source; the test suite
  runs the same files through papermill).
"""

from __future__ import annotations

import importlib
import inspect
import os
import shutil
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT / "src"))
# the notebooks' kernels inherit the environment: make them import this checkout too
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]
)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import custvalue  # noqa: E402

project = "custvalue"
author = "the custvalue authors"
copyright = "the custvalue authors"  # noqa: A001
version = release = custvalue.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_nb",
]
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = ["_build", "jupyter_execute", "**.ipynb_checkpoints", ".gitignore"]
templates_path = ["_templates"]

# --- API reference -------------------------------------------------------------------------------
#: The public submodules documented, in the order of the data flow (README "Layout").
API_MODULES = [
    ("custvalue", "Top-level names"),
    ("custvalue.data", "Loading and validation"),
    ("custvalue.summary", "Customer summaries"),
    ("custvalue.datasets", "Bundled and simulated data"),
    ("custvalue.models", "Models"),
    ("custvalue.value", "Customer lifetime value"),
    ("custvalue.evaluation", "Holdout evaluation"),
    ("custvalue.survival", "Survival analysis"),
    ("custvalue.segments", "Segments and lists"),
    ("custvalue.programs", "Programme effects"),
    ("custvalue.plots", "Plots"),
    ("custvalue.scoring", "Larger than memory"),
    ("custvalue.spark", "Spark"),
    ("custvalue.reports", "Reports"),
    ("custvalue.value_report", "Value report analysis"),
    ("custvalue.errors", "Errors"),
]


def _public_names(modname: str) -> list[str]:
    """The names of ``modname.__all__`` that are documented objects, not submodules."""
    module = importlib.import_module(modname)
    names = []
    for name in module.__all__:
        obj = getattr(module, name)
        if inspect.ismodule(obj) or name.startswith("__"):
            continue
        names.append(name)
    return names


def _write_api_pages() -> None:
    api = DOCS / "api"
    api.mkdir(exist_ok=True)
    documented: dict[str, str] = {}  # name -> the submodule page that documents it
    for modname, title in API_MODULES:
        heading = f"``{modname}`` — {title}"
        lines = [heading, "=" * len(heading), "", f".. automodule:: {modname}", "   :no-members:", ""]
        if modname == "custvalue":
            lines += [
                "The names ``import custvalue as cv`` gives directly; each is documented in the "
                "submodule that defines it.",
                "",
            ]
            for name in _public_names(modname):
                home = next(m for m, _ in API_MODULES[1:] if name in _public_names(m))
                lines.append(f"- :py:obj:`cv.{name} <{home}.{name}>` (``{home}``)")
            lines.append("")
        else:
            lines += [f".. currentmodule:: {modname}", "", ".. autosummary::",
                      "   :toctree: generated", "   :template: object.rst", ""]
            for name in _public_names(modname):
                documented.setdefault(name, modname)
                lines.append(f"   {name}")
        text = "\n".join(lines) + "\n"
        path = api / f"{modname}.rst"
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")


def _copy_tour() -> None:
    src = ROOT / "notebooks" / "tour"
    dst = DOCS / "tour"
    dst.mkdir(exist_ok=True)
    for nb in sorted(src.glob("*.ipynb")):
        target = dst / nb.name
        if not target.exists() or target.read_bytes() != nb.read_bytes():
            shutil.copyfile(nb, target)


_write_api_pages()
_copy_tour()

autosummary_generate = True
autosummary_imported_members = True
autodoc_default_options = {"members": False}
autodoc_typehints = "none"  # numpydoc shows the documented types
numpydoc_show_class_members = True
numpydoc_class_members_toctree = False
numpydoc_show_inherited_class_members = False
numpydoc_attributes_as_param_list = True

# --- notebooks (myst-nb) -------------------------------------------------------------------------
nb_execution_mode = "force"
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_execution_timeout = 600
nb_execution_allow_errors = False
nb_merge_streams = True
myst_enable_extensions = ["colon_fence", "dollarmath"]
myst_heading_anchors = 3
suppress_warnings = ["mystnb.unknown_mime_type"]

# --- HTML ----------------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"custvalue {version}"
html_static_path: list[str] = []
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
}
html_show_sourcelink = False
