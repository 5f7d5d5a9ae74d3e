"""The scheduled-run documentation is true: examples/jobs.yml runs, and `custvalue run --help`
shows a jobs file that the jobs parser accepts (issue 15)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from custvalue.cli import main
from custvalue.reports import jobs as jobs_module
from custvalue.reports.spec import validate_params

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "jobs.yml"


def _help() -> str:
    res = CliRunner().invoke(main, ["run", "--help"], terminal_width=100)
    assert res.exit_code == 0, res.output
    return res.output


def test_the_example_jobs_file_is_valid_for_every_report_it_names() -> None:
    jobs = jobs_module._load_jobs(EXAMPLE)
    assert [j["name"] for j in jobs] == ["cdnow-weekly", "shop-export"]
    for job in jobs:
        params = jobs_module.resolve_path_params(job["report"], job["params"], EXAMPLE.parent)
        data = jobs_module._from_jobs_file(str(job["data"]), EXAMPLE.parent)
        values = validate_params(job["report"], {**params, "data": data})
        assert values["n_draws"] == 50 and values["horizon_months"] == 12.0  # defaults merged
    assert (EXAMPLE.parent / "messy_orders.csv").is_file()


def test_run_help_shows_a_complete_jobs_file_that_parses(tmp_path: Path) -> None:
    text = _help()
    # the YAML example: the indented block from `defaults:` to the first blank line
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "defaults:")
    end = next(i for i in range(start, len(lines)) if not lines[i].strip())
    indent = len(lines[start]) - len(lines[start].lstrip())
    yaml_text = "\n".join(line[indent:] for line in lines[start:end])
    (tmp_path / "exports").mkdir()
    path = tmp_path / "jobs.yml"
    path.write_text(yaml_text + "\n", encoding="utf-8")
    jobs = jobs_module._load_jobs(path)
    assert [j["report"] for j in jobs] == ["value", "value"]
    assert jobs[1]["params"]["amount_col"] == "Quantity * UnitPrice"
    assert jobs[0]["params"]["horizon_months"] == 12  # defaults merged into each job
    for job in jobs:
        validate_params(job["report"], {k: v for k, v in job["params"].items()})
    # every key a job may have is named, and the help says what each exit code means
    for key in sorted(jobs_module._JOB_KEYS):
        assert key in text
    for code in ("0 every job succeeded", "1 at least one job failed", "2 the jobs file is"):
        assert code in " ".join(text.split())
    assert "failed/" in text and "latest.html" in text
    assert re.search(r"^\s+0 6 \* \* 1 ", text, re.M)  # a cron line
    assert "BashOperator(" in text  # an Airflow task


def test_the_docs_page_includes_the_tested_example() -> None:
    page = (ROOT / "docs" / "guide" / "scheduled.md").read_text(encoding="utf-8")
    assert "```{literalinclude} ../../examples/jobs.yml" in page
    assert (ROOT / "docs" / "guide" / "../../examples/jobs.yml").resolve() == EXAMPLE


@pytest.mark.slow
def test_the_example_jobs_file_runs_through_custvalue_run(tmp_path: Path) -> None:
    out = tmp_path / "reports"
    proc = subprocess.run(
        [sys.executable, "-m", "custvalue.cli", "run", str(EXAMPLE), "--out", str(out)],
        capture_output=True, text=True, timeout=1200, cwd=tmp_path,  # not the repository
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    summary = proc.stdout.splitlines()
    assert summary[-1] == "2 of 2 jobs succeeded"
    assert [line.split()[1] for line in summary[:-1]] == ["cdnow-weekly", "shop-export"]
    runs = sorted((out / "value").glob("20*"))
    assert len(runs) == 2 and (out / "value" / "latest.html").is_file()
    assert not (out / "value" / "failed").exists()
    metrics = {}
    for run in runs:
        assert (run / "report.html").stat().st_size > 10_000
        doc = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
        metrics[doc["run"]["parameters"]["title"]] = doc
    cdnow = metrics["CDNOW sample, 12-month value"]
    # the customers of lifetimes' raw CDNOW sample file, counted here with pandas
    import lifetimes

    raw = pd.read_csv(Path(lifetimes.__file__).parent / "datasets" / "CDNOW_sample.txt",
                      sep=r"\s+", header=None)
    assert cdnow["metrics"]["customers"] == raw[1].nunique() == 2357
    assert cdnow["run"]["parameters"]["margin"] == 0.3
    assert cdnow["run"]["parameters"]["calibration_end"].startswith("1997-09-30")
    shop = metrics["Shop export, 12-month value"]
    export = pd.read_csv(EXAMPLE.parent / "messy_orders.csv")
    assert shop["data"]["n_rows_in"] == len(export)
    # customers: ids present on some line; the loader may only drop some (no valid purchase)
    assert 0.9 * export["CustomerID"].nunique() < shop["data"]["n_customers"] <= export[
        "CustomerID"].nunique()
    assert shop["run"]["parameters"]["amount_col"] == "Quantity * UnitPrice"
    assert shop["run"]["parameters"]["models"] == ["bgnbd", "pareto_nbd"]
