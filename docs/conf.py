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

import custvalue  # noqa: E402

project = "custvalue"
author = "the custvalue authors"
copyright = "the custvalue authors"
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
    return [name for name in module.__all__
            if not name.startswith("__") and not inspect.ismodule(getattr(module, name))]


def _public_submodules(modname: str) -> list[str]:
    """Submodules a module lists in its ``__all__`` (``custvalue.reports.runner`` ...)."""
    module = importlib.import_module(modname)
    found = []
    for name in module.__all__:
        obj = getattr(module, name)
        if inspect.ismodule(obj) and obj.__name__.startswith(modname + "."):
            found.append(obj.__name__)
    return found


def api_modules() -> list[tuple[str, str]]:
    """Every documented module with its title: :data:`API_MODULES` and their public submodules."""
    out: list[tuple[str, str]] = []
    for modname, title in API_MODULES:
        out.append((modname, title))
        if modname == "custvalue":
            continue
        for sub in _public_submodules(modname):
            if sub not in {m for m, _ in API_MODULES}:
                doc = (importlib.import_module(sub).__doc__ or sub).strip().splitlines()[0]
                out.append((sub, doc.rstrip(".")))
    return out


def _write_api_pages() -> None:
    api = DOCS / "api"
    api.mkdir(exist_ok=True)
    modules = api_modules()
    for modname, title in modules:
        heading = f"``{modname}`` — {title}"
        lines = [heading, "=" * len(heading), "", f".. automodule:: {modname}", "   :no-members:", ""]
        if modname == "custvalue":
            lines += [
                "The names ``import custvalue as cv`` gives directly; each is documented in the "
                "submodule that defines it.",
                "",
            ]
            for name in _public_names(modname):
                home = next(m for m, _ in modules[1:] if name in _public_names(m))
                lines.append(f"- :py:obj:`cv.{name} <{home}.{name}>` (``{home}``)")
            lines.append("")
        else:
            names = _public_names(modname)
            if names:
                lines += [f".. currentmodule:: {modname}", "", ".. autosummary::",
                          "   :toctree: generated", "   :template: object.rst", ""]
                lines += [f"   {name}" for name in names] + [""]
            subs = _public_submodules(modname)
            if subs:
                lines += ["Submodules:", ""] + [f"- :mod:`{sub}`" for sub in subs] + [""]
        text = "\n".join(lines) + "\n"
        path = api / f"{modname}.rst"
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
    index = ["# API reference", "",
             "Every public name, generated from the docstrings: the names in "
             "`custvalue.__all__`, every public submodule's `__all__`, and the submodules a "
             "package lists in its `__all__`. Each formula's docstring names the paper and "
             "equation it implements.", "", "```{toctree}", ":maxdepth: 1", ""]
    index += [m for m, _ in modules] + ["```", ""]
    text = "\n".join(index)
    path = api / "index.md"
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
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_show_inherited_class_members = False
numpydoc_attributes_as_param_list = True

# --- notebooks (myst-nb) -------------------------------------------------------------------------


def _kernel_aliases() -> dict[str, str]:
    """Run the notebooks' ``custvalue`` kernel, or this Python's when that one is unusable.

    ``make env`` registers ``custvalue`` for the checkout's virtualenv; when it is missing, or
    its interpreter no longer exists (a moved or deleted clone), the notebooks run on
    ``python3``, the kernel of the interpreter running Sphinx (the PYTHONPATH set above makes
    either import this checkout).
    """
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        argv = KernelSpecManager().get_kernel_spec("custvalue").argv
    except NoSuchKernel:
        return {"custvalue": "python3"}
    return {} if argv and shutil.which(argv[0]) else {"custvalue": "python3"}


nb_kernel_rgx_aliases = _kernel_aliases()
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
