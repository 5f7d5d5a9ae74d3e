"""The documentation site builds without a warning (issue 15): `sphinx-build -W` on docs/.

The build executes every tour notebook and every executable guide page (myst-nb), so it also
fails when an example on a page no longer runs. Needs the `docs` extra (`pip install -e
".[docs]"`, which `make test` installs) and the `custvalue` Jupyter kernel (`make env`).
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _guide_pages() -> list[str]:
    return sorted(p.stem for p in (DOCS / "guide").glob("*.md"))


def test_readme_links_every_guide_page_by_relative_path() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for page in _guide_pages():
        assert f"](docs/guide/{page}.md)" in readme, f"README does not link docs/guide/{page}.md"
    for target in re.findall(r"\]\(((?:docs|notebooks|examples)/[^)#]+)", readme):
        assert (ROOT / target).exists(), f"README links {target}, which does not exist"
    assert "make demo" in readme and "make test" in readme  # the two commands stay the entry


def test_every_guide_page_is_in_the_table_of_contents() -> None:
    index = (DOCS / "index.md").read_text(encoding="utf-8")
    for page in _guide_pages():
        assert f"guide/{page}\n" in index


@pytest.mark.slow
def test_docs_build_without_warnings(tmp_path: Path) -> None:
    missing = [m for m in ("sphinx", "numpydoc", "myst_nb", "pydata_sphinx_theme")
               if importlib.util.find_spec(m) is None]
    assert not missing, (
        f"the docs build needs {', '.join(missing)}: pip install -e '.[docs]' (make test does)"
    )
    out = tmp_path / "html"
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-E", "-q", "-b", "html",
         "-d", str(tmp_path / "doctrees"), str(DOCS), str(out)],
        capture_output=True, text=True, timeout=1500, cwd=ROOT,
    )
    problems = [line for line in proc.stderr.splitlines()
                if "WARNING" in line or "ERROR" in line or "Error" in line]
    problems = [line for line in problems if "[IPKernelApp] WARNING" not in line]
    assert proc.returncode == 0 and not problems, "\n".join(problems) or proc.stderr[-4000:]
    for page in ["index", "gallery", "api/index", "api/custvalue.models",
                 *(f"guide/{p}" for p in _guide_pages()),
                 "tour/first_hour_cdnow", "tour/club_payoff"]:
        assert (out / f"{page}.html").is_file(), page
    # the API reference shows the docstrings' paper and equation citations
    bg = (out / "api" / "generated" / "custvalue.models.BetaGeoModel.html").read_text("utf-8")
    assert "Fader" in bg and "eq." in bg
    # executed notebooks: the gallery's three figures were drawn by this build
    gallery = (out / "gallery.html").read_text(encoding="utf-8")
    assert gallery.count("<img") >= 3
