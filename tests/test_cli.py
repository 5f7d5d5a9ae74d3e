"""Tests for the `custvalue` command line: outputs, and the one-line error contract.

Bad input or bad arguments must give exactly one line on stderr, exit code 2, no traceback and
no output file (not even a temporary one) left behind.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from custvalue.cli import main

CUSTVALUE = Path(sys.executable).parent / "custvalue"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def tx_csv(tmp_path: Path) -> Path:
    """A small transaction export with one problem (a zero amount) and an attribute."""
    rows = [
        ("c1", "2020-01-01", 10.0, "north"),
        ("c1", "2020-01-09", 20.0, "north"),
        ("c1", "2020-02-20", 5.0, "north"),
        ("c2", "2020-01-03", 7.5, "south"),
        ("c3", "2020-01-05", 3.0, "south"),
        ("c3", "2020-01-05", 0.0, "south"),
        ("c3", "2020-03-30", 4.0, "south"),
    ]
    df = pd.DataFrame(rows, columns=["customer_id", "date", "amount", "region"])
    path = tmp_path / "tx.csv"
    df.to_csv(path, index=False)
    return path


def assert_one_line_error(result_stderr: str, *needles: str) -> None:
    lines = result_stderr.splitlines()
    assert len(lines) == 1, result_stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result_stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# ------------------------------------------------------------------------------------------------
# validate
# ------------------------------------------------------------------------------------------------


def test_validate_prints_the_report(runner, tx_csv):
    result = runner.invoke(main, ["validate", "--data", str(tx_csv), "--attribute", "region"])
    assert result.exit_code == 0, result.output
    assert "7 rows in, 7 rows out" in result.stdout
    assert "zero amounts" in result.stdout and "missing customer ids" in result.stdout
    assert result.stderr == ""


def test_validate_fail_on_problems(runner, tx_csv):
    result = runner.invoke(main, ["validate", "--data", str(tx_csv), "--fail-on-problems"])
    assert result.exit_code == 1  # the zero amount is a finding


def test_validate_policies_from_the_command_line(runner, tx_csv):
    result = runner.invoke(
        main, ["validate", "--data", str(tx_csv), "--zero-amounts", "drop", "--duplicates", "keep"]
    )
    assert result.exit_code == 0, result.output
    assert "7 rows in, 6 rows out" in result.stdout


def test_validate_missing_column_is_one_line(runner, tx_csv):
    result = runner.invoke(main, ["validate", "--data", str(tx_csv), "--amount-col", "amt"])
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, "amount_col='amt'", "did you mean 'amount'", "tx.csv")
    assert result.stdout == ""


def test_validate_missing_file_is_one_line(runner, tmp_path):
    result = runner.invoke(main, ["validate", "--data", str(tmp_path / "nope.csv")])
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, "nope.csv", "does not exist")


def test_bad_choice_and_unknown_option_are_one_line(runner, tx_csv):
    result = runner.invoke(main, ["validate", "--data", str(tx_csv), "--returns", "keep"])
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, "--returns", "custvalue validate")
    result = runner.invoke(main, ["validate", "--dta", str(tx_csv)])
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, "--dta")
    result = runner.invoke(main, ["validate"])
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, "--data")


def test_bad_sql_expression_is_one_line(runner, tx_csv):
    result = runner.invoke(
        main, ["validate", "--data", str(tx_csv), "--amount-col", "amount * (("]
    )
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, "amount_col=")


def test_no_arguments_prints_help(runner):
    result = runner.invoke(main, [])
    assert result.exit_code == 0
    assert "Usage:" in result.stdout and "validate" in result.stdout
    assert result.stderr == ""


def test_help_and_version(runner):
    result = runner.invoke(main, ["--help"])
    assert result.exit_code == 0
    for command in ("validate", "summarize", "demo"):
        assert command in result.stdout
    result = runner.invoke(main, ["--version"])
    assert result.exit_code == 0 and "custvalue" in result.stdout


# ------------------------------------------------------------------------------------------------
# summarize
# ------------------------------------------------------------------------------------------------


@pytest.mark.slow  # importing lifetimes takes seconds
def test_summarize_matches_lifetimes(runner, tx_csv, tmp_path):
    from lifetimes.utils import summary_data_from_transaction_data

    out = tmp_path / "summary.parquet"
    result = runner.invoke(
        main, ["summarize", "--data", str(tx_csv), "--freq", "D", "--out", str(out), "-q"]
    )
    assert result.exit_code == 0, result.output
    assert str(out) in result.stdout
    got = pd.read_parquet(out)
    raw = pd.read_csv(tx_csv, parse_dates=["date"])
    ref = summary_data_from_transaction_data(
        raw, "customer_id", "date", monetary_value_col="amount", freq="D"
    )
    got = got.sort_index()
    ref = ref.sort_index()
    assert list(got.index) == list(ref.index) == ["c1", "c2", "c3"]
    for col in ("frequency", "recency", "T", "monetary_value"):
        assert got[col].tolist() == pytest.approx(ref[col].tolist()), col
    assert leftovers(tmp_path) == ["summary.parquet", "tx.csv"]


def test_summarize_weekly_csv_with_attribute(runner, tx_csv, tmp_path):
    out = tmp_path / "summary.csv"
    result = runner.invoke(
        main,
        ["summarize", "--data", str(tx_csv), "--freq", "W", "--out", str(out),
         "--attribute", "region", "--observation-end", "2020-03-31"],
    )
    assert result.exit_code == 0, result.output
    assert "Data quality" in result.stdout
    got = pd.read_csv(out, index_col="customer_id")
    assert set(got.index) == {"c1", "c2", "c3"}
    assert got.loc["c2", "region"] == "south"
    # c2 first bought on Friday 2020-01-03 (week of Mon 2019-12-30); the observation end
    # 2020-03-31 lies in the week of Mon 2020-03-30: 13 weeks later.
    assert got.loc["c2", "T"] == 13
    assert got.loc["c2", "frequency"] == 0


def test_summarize_bad_freq_leaves_no_file(runner, tx_csv, tmp_path):
    out = tmp_path / "s.parquet"
    result = runner.invoke(
        main, ["summarize", "--data", str(tx_csv), "--freq", "fortnight", "--out", str(out)]
    )
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, "fortnight")
    assert leftovers(tmp_path) == ["tx.csv"]


def test_summarize_bad_extension(runner, tx_csv, tmp_path):
    result = runner.invoke(
        main, ["summarize", "--data", str(tx_csv), "--out", str(tmp_path / "s.xlsx")]
    )
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, ".xlsx", ".parquet or .csv")
    assert leftovers(tmp_path) == ["tx.csv"]


def test_summarize_unwritable_output(runner, tx_csv, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    for out in (blocker / "s.parquet", tmp_path / "missing_dir" / "s.parquet"):
        result = runner.invoke(main, ["summarize", "--data", str(tx_csv), "--out", str(out)])
        assert result.exit_code == 2
        assert_one_line_error(result.stderr, str(out.parent))
    assert leftovers(tmp_path) == ["file", "tx.csv"]


def test_summarize_bad_data_leaves_no_file_or_temp(runner, tx_csv, tmp_path):
    out = tmp_path / "s.parquet"
    out_existing = tmp_path / "keep.parquet"
    out_existing.write_bytes(b"old contents")
    for target in (out, out_existing):
        result = runner.invoke(
            main, ["summarize", "--data", str(tx_csv), "--customer-col", "cust",
                   "--out", str(target)]
        )
        assert result.exit_code == 2
        assert_one_line_error(result.stderr, "customer_col='cust'")
    assert leftovers(tmp_path) == ["keep.parquet", "tx.csv"]
    assert out_existing.read_bytes() == b"old contents"  # an old output is left untouched


# ------------------------------------------------------------------------------------------------
# demo
# ------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_demo_on_cdnow_master(runner, tmp_path):
    out_dir = tmp_path / "demo"
    result = runner.invoke(main, ["demo", "--out-dir", str(out_dir), "--no-report"])
    assert result.exit_code == 0, result.output
    summary = pd.read_parquet(out_dir / "cdnow_summary.parquet")
    # Fader, Hardie & Lee (2005): CDNOW master has 23,570 customers, first purchases in
    # 1997 Q1, observed until the end of June 1998.
    assert len(summary) == 23_570
    assert summary["first_purchase"].max() < pd.Timestamp("1997-04-01")
    assert (summary["recency"] <= summary["T"]).all()
    assert "69,659 rows in" in result.stdout
    assert str(out_dir / "cdnow_summary.parquet") in result.stdout
    assert (out_dir / "data_quality.txt").read_text().startswith("Data quality")
    assert "<table" in (out_dir / "data_quality.html").read_text()
    assert "value report" not in result.stdout


@pytest.mark.slow
def test_demo_runs_the_value_report_and_prints_where_it_is(runner, tmp_path):
    result = runner.invoke(
        main, ["demo", "--out-dir", str(tmp_path / "demo"), "--reports-dir", str(tmp_path / "r")]
    )
    assert result.exit_code == 0, result.output
    latest = tmp_path / "r" / "value" / "latest.html"
    assert f"latest copy:  {latest}" in result.stdout
    html = latest.read_text(encoding="utf-8")
    assert "23,570" in html  # CDNOW master customers, named in the report
    runs = [p for p in (tmp_path / "r" / "value").iterdir() if p.is_dir() and p.name != "failed"]
    assert len(runs) == 1
    assert (runs[0] / "scores.parquet").is_file() and (runs[0] / "metrics.json").is_file()
    assert str(runs[0] / "report.html") in result.stdout
    # the segment report on simulated customers writes its lists; the programme report states the
    # simulation's true effect beside the estimate
    for name in ("segment", "program"):
        assert f"{name} report: " in result.stdout
        assert (tmp_path / "r" / name / "latest.html").is_file()
    seg_runs = [p for p in (tmp_path / "r" / "segment").iterdir() if p.is_dir() and p.name != "failed"]
    for listing in ("winback.csv", "club.csv", "milestones.csv", "invalid_members.csv"):
        assert (seg_runs[0] / listing).is_file()
        assert str(seg_runs[0] / listing) in result.stdout
    program_html = (tmp_path / "r" / "program" / "latest.html").read_text(encoding="utf-8")
    assert "true effect" in program_html.lower()
    program_run = next(p for p in (tmp_path / "r" / "program").iterdir()
                       if p.is_dir() and p.name != "failed")
    metrics = json.loads((program_run / "metrics.json").read_text())["metrics"]
    assert (f"the simulation's true effect is {metrics['true_effect']:.4f}" in result.stdout
            and f"estimated effect {metrics['att_level']:.4f}" in result.stdout)


def test_programme_headline_reads_metrics(tmp_path):
    from custvalue.cli import _programme_headline

    path = tmp_path / "metrics.json"
    path.write_text(json.dumps({"metrics": {"att_level": 0.05, "att_level_lower": 0.03,
                                            "att_level_upper": 0.07, "true_effect": 0.052,
                                            "naive_gap_level": 0.19}}))
    line = _programme_headline(path)
    assert "estimated effect 0.0500" in line and "95% CI 0.0300 to 0.0700" in line
    assert "true effect is 0.0520" in line and "naive member vs non-member gap says 0.1900" in line
    assert "no headline numbers" in _programme_headline(tmp_path / "missing.json")


def test_demo_refuses_an_unknown_report(runner, tmp_path):
    result = runner.invoke(main, ["demo", "--out-dir", str(tmp_path / "d"), "--reports", "value,nope"])
    assert result.exit_code == 2
    assert "unknown report 'nope'" in result.stderr
    assert not (tmp_path / "d").exists()


# ------------------------------------------------------------------------------------------------
# the real executable
# ------------------------------------------------------------------------------------------------


def test_installed_command_one_line_error_and_no_file(tx_csv, tmp_path):
    out = tmp_path / "s.parquet"
    proc = subprocess.run(
        [str(CUSTVALUE), "summarize", "--data", str(tx_csv), "--date-col", "when",
         "--out", str(out)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 2
    assert_one_line_error(proc.stderr, "date_col='when'", "'date'")
    assert proc.stdout == ""
    assert leftovers(tmp_path) == ["tx.csv"]


def test_installed_command_missing_file(tmp_path):
    proc = subprocess.run(
        [str(CUSTVALUE), "validate", "--data", str(tmp_path / "missing.parquet")],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 2
    assert_one_line_error(proc.stderr, "missing.parquet")


def test_corrupt_file_is_one_line(runner, tmp_path):
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"garbage")
    result = runner.invoke(main, ["validate", "--data", str(path)])
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, "broken.parquet")


def test_validate_bundled_cdnow_sample(runner):
    result = runner.invoke(main, ["validate", "--data", "cdnow-sample"])
    assert result.exit_code == 0, result.output
    assert "6,919 rows in" in result.stdout  # the CDNOW sample has 6,919 transaction lines


def test_returns_error_policy_is_one_line(runner, tmp_path):
    path = tmp_path / "returns.csv"
    path.write_text("customer_id,date,amount\n1,2020-01-01,10\n1,2020-01-02,-4\n")
    result = runner.invoke(main, ["validate", "--data", str(path), "--returns", "error"])
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, "1 rows have negative amounts", "row 2")
    result = runner.invoke(main, ["validate", "--data", str(path)])
    assert result.exit_code == 0
    assert "netted" in result.stdout


def test_bad_observation_end_leaves_no_file(runner, tx_csv, tmp_path):
    out = tmp_path / "s.csv"
    result = runner.invoke(
        main, ["summarize", "--data", str(tx_csv), "--observation-end", "soon", "--out", str(out)]
    )
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, "observation_end='soon'")
    assert leftovers(tmp_path) == ["tx.csv"]


def test_summarize_an_online_retail_style_export(runner, tmp_path):
    """Raw export: amount as an expression, float ids with blanks, cancelled 'C' invoices."""
    path = tmp_path / "retail.csv"
    path.write_text(
        "InvoiceNo,StockCode,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
        "536365,85123A,6,12/1/2010 8:26,2.5,17850.0,United Kingdom\n"
        "536365,71053,2,12/1/2010 8:26,5.0,17850.0,United Kingdom\n"
        "C536365,71053,-2,12/1/2010 9:00,5.0,17850.0,United Kingdom\n"
        "536370,22728,24,12/1/2010 8:45,3.75,12583.0,France\n"
        "536371,22728,1,12/1/2010 8:50,3.75,,United Kingdom\n"
        "536400,21730,3,12/15/2010 10:00,4.0,17850.0,United Kingdom\n"
    )
    out = tmp_path / "summary.csv"
    result = runner.invoke(
        main,
        ["summarize", "--data", str(path), "--customer-col", "CustomerID",
         "--date-col", "InvoiceDate", "--amount-col", "Quantity * UnitPrice",
         "--order-col", "InvoiceNo", "--cancelled", "C", "--attribute", "Country",
         "--freq", "D", "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    got = pd.read_csv(out, index_col="customer_id")
    # 17850: order 536365 = 6*2.5 + 2*5 = 25, less the cancelled 10 -> 15 on Dec 1;
    # 536400 = 12 on Dec 15. 12583: 90 on Dec 1. The blank-id row is dropped.
    # Observation end = last transaction (Dec 15), so T = 14 days for both.
    assert sorted(got.index) == [12583, 17850]
    assert got.loc[17850, "frequency"] == 1 and got.loc[17850, "recency"] == 14
    assert got.loc[17850, "T"] == 14 and got.loc[12583, "T"] == 14
    assert got.loc[17850, "monetary_value"] == pytest.approx(12.0)
    assert got.loc[17850, "total_spend"] == pytest.approx(27.0)
    assert got.loc[12583, "total_spend"] == pytest.approx(90.0)
    assert got.loc[12583, "Country"] == "France"


@pytest.mark.parametrize("suffix", [".txt", ".html", ".json", ".csv"])
def test_validate_writes_the_report(runner, tx_csv, tmp_path, suffix):
    import json

    out = tmp_path / f"quality{suffix}"
    result = runner.invoke(main, ["validate", "--data", str(tx_csv), "--report", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text()
    if suffix == ".json":
        payload = json.loads(text)
        assert payload["n_rows_in"] == 7 and payload["ok"] is False
        zero = next(c for c in payload["checks"] if c["check"] == "zero amounts")
        assert zero["rows_affected"] == 1
    elif suffix == ".csv":
        table = pd.read_csv(out)
        assert list(table.columns) == ["check", "rows_affected", "examples", "action"]
    elif suffix == ".html":
        assert text.startswith("<!doctype html>") and "<table" in text
    else:
        assert text.startswith("Data quality: 7 rows in")


def test_validate_report_bad_extension_or_data_leaves_nothing(runner, tx_csv, tmp_path):
    result = runner.invoke(
        main, ["validate", "--data", str(tx_csv), "--report", str(tmp_path / "q.pdf")]
    )
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, ".pdf")
    result = runner.invoke(
        main, ["validate", "--data", str(tx_csv), "--date-col", "day",
               "--report", str(tmp_path / "q.json")]
    )
    assert result.exit_code == 2
    assert_one_line_error(result.stderr, "date_col='day'")
    assert leftovers(tmp_path) == ["tx.csv"]
