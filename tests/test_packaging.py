"""The project's own set-up files agree with each other."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
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


def test_wheel_packages_cover_every_package_and_ship_the_notebooks():
    """The package list in pyproject is explicit (notebooks/ is mapped in as package data):
    it must name every package under src/, and every report notebook must be package data."""
    from setuptools import find_packages

    tool = _pyproject()["tool"]["setuptools"]
    listed = set(tool["packages"])
    assert set(find_packages("src")) | {"custvalue._notebooks"} == listed
    assert tool["package-dir"]["custvalue._notebooks"] == "notebooks"
    globs = tool["package-data"]["custvalue._notebooks"]
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    assert notebooks and all(any(p.match(g) for g in globs) for p in notebooks)


@pytest.mark.slow
def test_installed_wheel_runs_the_value_report_without_environment_variables(tmp_path):
    """Build a wheel, install it (not editable) into a fresh virtual environment and run
    `custvalue report value --data cdnow-master` there with no custvalue environment variable,
    no PYTHONPATH and a fresh home directory (no registered Jupyter kernels).

    The fresh environment gets its dependencies from this one through a plain .pth path entry
    (not site.addsitedir, so this environment's editable custvalue is not picked up); custvalue
    itself must come from the wheel."""
    import shutil
    import sysconfig

    # what the fresh environment sees: no custvalue variables, no PYTHONPATH (the test run's own
    # points at the checkout), a home directory without registered Jupyter kernels
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CUSTVALUE", "PYTHON", "JUPYTER", "VIRTUAL_ENV"))}
    env["HOME"] = str(home)

    # build from a copy, so that no build/ or egg-info lands in the checkout
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    for name in ("src", "notebooks"):
        shutil.copytree(ROOT / name, source / name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", ".ipynb_*"))
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(source)],
        check=True, capture_output=True, timeout=600, env=env,
    )
    wheel = next(dist.glob("custvalue-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, env=env)
    python = venv / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
         "--no-index", str(wheel)],
        check=True, capture_output=True, timeout=600, env=env,
    )
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()
    shared = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (Path(purelib) / "zz_shared_dependencies.pth").write_text("\n".join(sorted(shared)) + "\n")
    # what installing nbconvert would put under the environment's prefix: its HTML templates
    templates = Path(sys.prefix) / "share" / "jupyter" / "nbconvert"
    if templates.is_dir():
        (venv / "share" / "jupyter").mkdir(parents=True)
        (venv / "share" / "jupyter" / "nbconvert").symlink_to(templates)

    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '/usr/bin')}"
    where = subprocess.run(
        [str(python), "-c", "import custvalue; print(custvalue.__file__)"],
        check=True, capture_output=True, text=True, env=env, cwd=tmp_path,
    ).stdout.strip()
    assert Path(where).is_relative_to(venv), where  # the wheel, not the checkout

    work = tmp_path / "work"
    work.mkdir()
    res = subprocess.run(
        [str(venv / "bin" / "custvalue"), "report", "value", "--data", "cdnow-master",
         "--out", "out"],
        capture_output=True, text=True, env=env, cwd=work, timeout=1500,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    latest = work / "out" / "value" / "latest.html"
    assert latest.is_file() and "23,570" in latest.read_text()
    doc = json.loads(next((work / "out" / "value").glob("*/metrics.json")).read_text())
    assert doc["metrics"]["customers"] == 23570
    assert doc["run"]["kernel"] == "python3"  # the fresh environment's own interpreter
