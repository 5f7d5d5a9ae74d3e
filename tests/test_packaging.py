"""The project's own set-up files agree with each other."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_environment_yml_mirrors_pyproject():
    """environment.yml must install the package from pyproject (no second dependency list)."""
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    python = [d for d in deps if isinstance(d, str) and d.startswith("python")]
    assert python, "environment.yml must pin python"
    pinned = re.search(r"python\s*=+\s*([\d.]+)", python[0]).group(1)
    requires = _pyproject()["project"]["requires-python"]
    assert requires.startswith(">="), requires
    assert tuple(map(int, pinned.split("."))) >= tuple(map(int, requires[2:].split(".")))

    pip_sections = [d["pip"] for d in deps if isinstance(d, dict) and "pip" in d]
    assert pip_sections == [['-e ".[dev]"']], (
        "environment.yml should only `pip install -e .[dev]`; dependencies belong in pyproject.toml"
    )
    conda_pkgs = {re.split(r"[=<> ]", d)[0] for d in deps if isinstance(d, str)}
    assert conda_pkgs <= {"python", "pip"}, (
        f"environment.yml lists packages {sorted(conda_pkgs - {'python', 'pip'})} that would drift "
        "from pyproject.toml; add them to pyproject.toml instead"
    )


def test_dev_extra_exists_and_brief_packages_are_dependencies():
    project = _pyproject()["project"]
    names = {re.split(r"[\[<>=!~ ]", d)[0].lower() for d in project["dependencies"]}
    dev = {re.split(r"[\[<>=!~ ]", d)[0].lower() for d in project["optional-dependencies"]["dev"]}
    for required in ("pandas", "lifetimes", "seaborn", "statsmodels", "papermill", "duckdb"):
        assert required in names, f"{required} missing from [project.dependencies]"
    assert {"jupyterlab", "pytest", "hypothesis"} <= dev


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme and "make demo" in readme
    assert "make test" in ci


def test_package_version_matches_pyproject():
    import custvalue

    assert custvalue.__version__ == _pyproject()["project"]["version"]
