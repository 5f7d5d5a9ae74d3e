"""Regression tests for issue 10: no silent corruption, no overwritten inputs, no file reads
through column expressions, clear messages instead of dead ends.

Every test builds its input in the test and states the expected result from the input itself
(the customers that are in the file, the calendar date written in it), never from custvalue's
own earlier output.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from custvalue.cli import main
from custvalue.data import load_transactions
from custvalue.errors import DataValidationError, DataWarning, ParameterError
from custvalue.summary import rfm_summary

SAMPLE = 30_000  # beyond DuckDB's CSV type-sniffing sample (20,480 rows)


def _quality_row(quality, name: str) -> pd.Series:
    return quality.to_frame().set_index("check").loc[name]


def _one_line_error(result, *needles: str) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


# ------------------------------------------------------------------------------------------------
# silent wrong results
# ------------------------------------------------------------------------------------------------


def _late_ids_csv(path: Path) -> None:
    lines = ["customer_id,date,amount"]
    lines += [f"{i},2020-01-{1 + i % 28:02d},1.0" for i in range(1000, 1000 + SAMPLE)]
    lines += ["00123,2020-02-01,5.0", "123,2020-02-02,7.0"]
    path.write_text("\n".join(lines) + "\n")


def test_late_text_ids_are_never_merged_with_numbers(tmp_path):
    path = tmp_path / "ids.csv"
    _late_ids_csv(path)
    tx, _ = load_transactions(path)
    assert tx["customer_id"].nunique() == SAMPLE + 2  # "00123" and "123" are two customers
    ids = set(tx["customer_id"])
    assert {"00123", "123"} <= ids
    summary = rfm_summary(path, freq="D")
    assert len(summary) == SAMPLE + 2
    assert summary.loc["00123", "total_spend"] == 5.0
    assert summary.loc["123", "total_spend"] == 7.0


def test_plain_integer_text_ids_stay_integers_but_zero_and_minus_zero_do_not_merge(tmp_path):
    path = tmp_path / "ids.csv"
    path.write_text("customer_id,date,amount\n0,2020-01-01,1\n-0,2020-01-02,2\n")
    tx, _ = load_transactions(path)
    assert tx["customer_id"].nunique() == 2


def test_long_numeric_ids_are_not_rounded_into_each_other(tmp_path):
    path = tmp_path / "ids.csv"
    a, b = "1234567890123456789012345678901234567890", "1234567890123456789012345678901234567891"
    path.write_text(f"customer_id,date,amount\n{a},2020-01-01,1\n{b},2020-01-02,2\n"
                    "12.5,2020-01-03,3\n")
    tx, quality = load_transactions(path)
    assert tx["customer_id"].tolist() == [a, b, "12.5"]
    assert any("read as text" in n for n in quality.notes)
    assert len(rfm_summary(path)) == 3


_DATES = ["01/02/2020", "03/04/2020", "05/06/2020"]  # ambiguous: no day above 12


def _date_sources(tmp_path: Path) -> dict[str, object]:
    frame = pd.DataFrame({"customer_id": ["a", "b", "c"], "date": _DATES, "amount": [1.0, 2, 3]})
    frame.to_csv(tmp_path / "dates.csv", index=False)
    frame.to_parquet(tmp_path / "dates.parquet", index=False)
    return {"csv": tmp_path / "dates.csv", "parquet": tmp_path / "dates.parquet", "frame": frame}


@pytest.mark.parametrize("fmt, expected", [
    ("%m/%d/%Y", ["2020-01-02", "2020-03-04", "2020-05-06"]),
    ("%d/%m/%Y", ["2020-02-01", "2020-04-03", "2020-06-05"]),
])
def test_an_explicit_date_format_wins_for_every_kind_of_source(tmp_path, fmt, expected):
    for kind, source in _date_sources(tmp_path).items():
        tx, quality = load_transactions(source, date_format=fmt)
        assert tx["date"].tolist() == [pd.Timestamp(d) for d in expected], kind
        assert fmt in quality.rules["unparseable dates"], kind


def test_cli_date_format_is_used_for_csv(runner, tmp_path):
    path = _date_sources(tmp_path)["csv"]
    out = tmp_path / "s.csv"
    for fmt, first in (("%m/%d/%Y", "2020-01-02"), ("%d/%m/%Y", "2020-02-01")):
        result = runner.invoke(main, ["summarize", "--data", str(path), "--date-format", fmt,
                                      "--out", str(out), "-q"])
        assert result.exit_code == 0, result.output
        got = pd.read_csv(out, index_col="customer_id", parse_dates=["first_purchase"])
        assert got.loc["a", "first_purchase"] == pd.Timestamp(first), fmt


def test_a_format_that_parses_nothing_is_an_error(tmp_path):
    path = _date_sources(tmp_path)["csv"]
    with pytest.raises(DataValidationError, match=r"date_format '%Y-%m-%d'.*date_col='date'.*01/02/2020"):
        load_transactions(path, date_format="%Y-%m-%d")


def test_ambiguous_dates_without_a_format_are_reported_the_same_for_every_source(tmp_path):
    results = {}
    for kind, source in _date_sources(tmp_path).items():
        tx, quality = load_transactions(source)
        results[kind] = tx["date"].tolist()
        assert any("ambiguous" in n for n in quality.notes), (kind, quality.notes)
        assert "ambiguous" in quality.rules["unparseable dates"], kind
    assert results["csv"] == results["parquet"] == results["frame"]


_ZONE_SCRIPT = """
import json, sys
from custvalue.data import load_transactions
tx, q = load_transactions(sys.argv[1], timezone=sys.argv[2] if len(sys.argv) > 2 else None)
mixed = q.to_frame().set_index("check").loc["mixed time zones", "rows_affected"]
print(json.dumps({"dates": [str(d) for d in tx["date"]], "mixed": int(mixed)}))
"""


def _run_in_zone(tz: str, *args: str) -> dict:
    env = {**os.environ, "TZ": tz}
    out = subprocess.run([sys.executable, "-c", _ZONE_SCRIPT, *args], env=env, check=True,
                         capture_output=True, text=True, timeout=120)
    return json.loads(out.stdout)


def test_mixed_zone_csv_gives_the_same_times_on_every_machine(tmp_path):
    path = tmp_path / "zones.csv"
    path.write_text("customer_id,date,amount\n"
                    "a,2020-01-01 10:00:00+02:00,1\n"
                    "b,2020-01-01 10:00:00,2\n")
    utc = _run_in_zone("UTC", str(path))
    new_york = _run_in_zone("America/New_York", str(path))
    assert utc == new_york
    # the +02:00 value is 08:00 UTC; the naive value is read as UTC wall-clock time
    assert utc["dates"] == ["2020-01-01 08:00:00", "2020-01-01 10:00:00"]
    assert utc["mixed"] == 1
    berlin = _run_in_zone("America/New_York", str(path), "Europe/Berlin")
    assert berlin["dates"] == ["2020-01-01 09:00:00", "2020-01-01 10:00:00"]


# ------------------------------------------------------------------------------------------------
# destroyed data
# ------------------------------------------------------------------------------------------------


@pytest.fixture
def orders(tmp_path) -> Path:
    path = tmp_path / "orders.csv"
    path.write_text("customer_id,date,amount\na,2020-01-01,1\na,2020-01-05,2\nb,2020-01-03,3\n")
    return path


def test_summarize_refuses_to_overwrite_its_input(runner, orders, tmp_path):
    before = orders.read_bytes()
    link = tmp_path / "link.csv"
    link.symlink_to(orders)
    for out in (orders, link):
        result = runner.invoke(main, ["summarize", "--data", str(orders), "--out", str(out)])
        _one_line_error(result, "refusing to overwrite", "orders.csv")
    glob_result = runner.invoke(
        main, ["summarize", "--data", str(tmp_path / "*.csv"), "--out", str(orders)])
    _one_line_error(glob_result, "refusing to overwrite")
    assert orders.read_bytes() == before


def test_validate_refuses_a_report_path_that_is_the_input(runner, orders):
    before = orders.read_bytes()
    result = runner.invoke(main, ["validate", "--data", str(orders), "--report", str(orders)])
    _one_line_error(result, "refusing to overwrite")
    assert orders.read_bytes() == before


def test_a_glob_never_reads_the_commands_earlier_output(runner, tmp_path):
    exports = tmp_path / "exports"
    exports.mkdir()
    (exports / "jan.csv").write_text("customer_id,date,amount\na,2020-01-01,1\n")
    (exports / "feb.csv").write_text("customer_id,date,amount\na,2020-02-01,2\nb,2020-02-03,3\n")
    out = exports / "summary.csv"
    report = exports / "quality.csv"
    for _ in range(2):  # the second run sees the first run's outputs in the glob
        result = runner.invoke(
            main, ["summarize", "--data", str(exports / "*.csv"), "--out", str(out)])
        assert result.exit_code == 0, result.output
        assert "3 rows in, 3 rows out" in result.stdout  # only jan.csv and feb.csv were read
        result = runner.invoke(
            main, ["validate", "--data", str(exports / "*.csv"), "--report", str(report)])
        assert result.exit_code == 0, result.output
        assert "3 rows in, 3 rows out" in result.stdout
    got = pd.read_csv(out, index_col="customer_id")
    assert sorted(got.index) == ["a", "b"]
    assert got.loc["a", "total_spend"] == 3.0


def test_files_with_different_columns_in_one_glob_are_named(tmp_path):
    (tmp_path / "a.csv").write_text("customer_id,date,amount\na,2020-01-01,1\n")
    (tmp_path / "b.csv").write_text("customer_id,date,value\na,2020-02-01,2\n")
    with pytest.raises(DataValidationError, match=r"different columns.*b\.csv.*'amount'.*a\.csv"):
        load_transactions(str(tmp_path / "*.csv"))
    with pytest.raises(DataValidationError, match="different columns"):
        rfm_summary(str(tmp_path / "*.csv"))


# ------------------------------------------------------------------------------------------------
# column expressions cannot read the machine
# ------------------------------------------------------------------------------------------------


ATTEMPTS = [
    "(SELECT content FROM read_text('/etc/hostname'))",
    "(SELECT count(*) FROM read_csv('/etc/passwd'))",
    "(SELECT count(*) FROM glob('/etc/*'))",
    "(SELECT count(*) FROM read_parquet('https://example.invalid/x.parquet'))",
    "read_text('/etc/hostname')",
    "getenv('HOME')",
    "1) FROM read_text('/etc/hostname') --",
]


@pytest.mark.parametrize("expr", ATTEMPTS)
def test_column_expressions_cannot_read_files_or_urls(orders, expr):
    for kwargs in ({"attributes": [f"x={expr}"]}, {"amount_col": f"amount + length({expr})"},
                   {"customer_col": expr}):
        with pytest.raises(DataValidationError, match=r"(refused|invalid) column expressions"):
            load_transactions(orders, **kwargs)


@pytest.mark.parametrize("expr", ATTEMPTS[:3])
def test_cli_refuses_reading_expressions_and_writes_nothing(runner, orders, tmp_path, expr):
    out = tmp_path / "out.parquet"
    result = runner.invoke(main, ["summarize", "--data", str(orders), "--attribute", f"x={expr}",
                                  "--out", str(out)])
    _one_line_error(result, "refused column expressions")
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["orders.csv"]


def test_ordinary_expressions_still_work(orders):
    tx, _ = load_transactions(orders, amount_col="amount * 2 + length(customer_id)",
                              attributes=["up=upper(customer_id)", "big=amount > 1"])
    assert tx["amount"].tolist() == [3.0, 5.0, 7.0]
    assert tx["up"].tolist() == ["A", "A", "B"]


# ------------------------------------------------------------------------------------------------
# clear messages instead of dead ends
# ------------------------------------------------------------------------------------------------


def _late_bad_values_csv(path: Path, late: bool) -> None:
    good = [f"c{i},2020-01-{1 + i % 28:02d},{1 + i % 7}.5" for i in range(SAMPLE)]
    bad = ["x1,unknown,1.0", "x2,2020-01-01,n/a"]
    rows = good + bad if late else bad + good
    path.write_text("customer_id,date,amount\n" + "\n".join(rows) + "\n")


def test_a_bad_value_late_in_the_file_is_a_quality_row_like_an_early_one(tmp_path):
    reports = {}
    for late in (False, True):
        path = tmp_path / f"late_{late}.csv"
        _late_bad_values_csv(path, late)
        tx, quality = load_transactions(path)
        assert len(tx) == SAMPLE
        dates, amounts = (_quality_row(quality, "unparseable dates"),
                          _quality_row(quality, "missing or non-numeric amounts"))
        assert dates["rows_affected"] == 1 and "'unknown'" in dates["examples"]
        assert amounts["rows_affected"] == 1 and "'n/a'" in amounts["examples"]
        reports[late] = (dates["rows_affected"], amounts["rows_affected"])
    assert reports[False] == reports[True]


def test_latin1_files_get_an_encoding_hint_and_load_with_encoding(runner, tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("customer_id,date,amount,city\n1,2020-01-01,1.5,München\n"
                     "2,2020-01-02,2.5,Köln\n".encode("latin-1"))
    with pytest.raises(DataValidationError, match=r"not UTF-8.*encoding"):
        load_transactions(path, attributes=["city"])
    tx, _ = load_transactions(path, attributes=["city"], read_options={"encoding": "latin-1"})
    assert tx["city"].tolist() == ["München", "Köln"]
    result = runner.invoke(main, ["validate", "--data", str(path)])
    _one_line_error(result, "--encoding")
    result = runner.invoke(main, ["validate", "--data", str(path), "--encoding", "latin-1"])
    assert result.exit_code == 0, result.output


def test_decimal_commas_get_a_hint_and_load_with_decimal(runner, tmp_path):
    path = tmp_path / "comma.csv"
    path.write_text("customer_id;date;amount\na;2020-01-01;1,5\nb;2020-01-02;12,25\n")
    with pytest.raises(DataValidationError, match=r"decimal comma.*'decimal': ','"):
        load_transactions(path, read_options={"delim": ";"})
    tx, _ = load_transactions(path, read_options={"delim": ";", "decimal": ","})
    assert tx["amount"].tolist() == [1.5, 12.25]
    out = tmp_path / "s.parquet"
    result = runner.invoke(main, ["summarize", "--data", str(path), "--delimiter", ";",
                                  "--decimal", ",", "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    assert pd.read_parquet(out)["total_spend"].sum() == pytest.approx(13.75)


def test_a_literal_file_name_with_glob_characters_wins(tmp_path):
    literal = tmp_path / "sales[2020].csv"
    literal.write_text("customer_id,date,amount\nliteral,2020-01-01,1\n")
    (tmp_path / "sales2.csv").write_text("customer_id,date,amount\nglobbed,2020-01-01,1\n")
    tx, quality = load_transactions(literal)
    assert tx["customer_id"].tolist() == ["literal"]
    assert "sales[2020].csv" in quality.source
    assert rfm_summary(str(literal)).index.tolist() == ["literal"]


def test_far_future_dates_are_reported_and_dropped_unless_kept():
    df = pd.DataFrame({"customer_id": ["a", "a", "b"],
                       "date": ["2020-01-01", "2099-12-31", "2020-03-01"],
                       "amount": [1.0, 2.0, 3.0]})
    tx, quality = load_transactions(df)
    row = _quality_row(quality, "dates in the far future")
    assert row["rows_affected"] == 1 and "2099-12-31" in row["examples"]
    assert tx["date"].max() == pd.Timestamp("2020-03-01")
    assert "today + 1 year" in quality.rules["dates in the far future"]
    kept, _ = load_transactions(df, future_dates="keep")
    assert kept["date"].max() == pd.Timestamp("2099-12-31")
    with pytest.raises(ParameterError, match="future_dates"):
        load_transactions(df, future_dates="maybe")


def test_cli_future_dates_option(runner, tmp_path):
    path = tmp_path / "tx.csv"
    path.write_text("customer_id,date,amount\na,2020-01-01,1\na,2099-12-31,2\n")
    result = runner.invoke(main, ["validate", "--data", str(path)])
    assert result.exit_code == 0 and "2 rows in, 1 rows out" in result.stdout
    result = runner.invoke(main, ["validate", "--data", str(path), "--future-dates", "keep"])
    assert result.exit_code == 0 and "2 rows in, 2 rows out" in result.stdout


def test_negative_raw_amounts_in_a_summary_warn():
    df = pd.DataFrame({"customer_id": ["a", "a", "b"],
                       "date": pd.to_datetime(["2020-01-01", "2020-01-05", "2020-01-03"]),
                       "amount": [10.0, -4.0, 3.0]})
    for engine in ("numpy", "duckdb"):
        with pytest.warns(DataWarning, match=r"1 of 3 transactions have a negative 'amount'"):
            rfm_summary(df, engine=engine)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rfm_summary(df.assign(amount=df["amount"].abs()))


def test_cli_attribute_expression_is_split_like_the_loader(runner, tmp_path):
    path = tmp_path / "tx.csv"
    path.write_text("customer_id,date,amount,Country\na,2020-01-01,1,UK\nb,2020-01-02,2,FR\n")
    out = tmp_path / "s.csv"
    result = runner.invoke(main, ["summarize", "--data", str(path), "--out", str(out), "-q",
                                  "--attribute", "Country = 'UK'", "--attribute", "uk=Country = 'UK'"])
    assert result.exit_code == 0, result.output
    got = pd.read_csv(out, index_col="customer_id")
    assert got.loc["a", "uk"] and not got.loc["b", "uk"]
    assert got.loc["a", "Country = 'UK'"] and not got.loc["b", "Country = 'UK'"]


def test_error_messages_never_dump_whole_arrays():
    wide = pd.DataFrame({f"col_{i}": [1] for i in range(2000)})
    wide["customer_id"], wide["date"], wide["amount"] = "a", pd.Timestamp("2020-01-01"), 1.0
    for call in (lambda: rfm_summary(wide, amount_col="value"),
                 lambda: load_transactions(wide, amount_col="value"),
                 lambda: rfm_summary(wide, attributes=[f"nope_{i}" for i in range(500)])):
        with pytest.raises(DataValidationError) as err:
            call()
        assert len(str(err.value)) < 2000, len(str(err.value))


def test_a_syntax_error_is_not_called_a_missing_column(orders):
    with pytest.raises(DataValidationError) as err:
        load_transactions(orders, amount_col="amount * * 2")
    assert str(err.value).startswith("invalid column expressions")
    assert "missing columns" not in str(err.value)


def test_the_quality_report_names_every_rule(orders):
    _, quality = load_transactions(orders)
    names = list(quality.to_frame()["check"])
    assert set(quality.rules) == set(names)
    assert all(quality.rules[n] for n in names)
    text = str(quality)
    assert "rules applied:" in text and quality.rules["missing customer ids"] in text
    assert all(c["rule"] for c in quality.to_dict()["checks"])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.from_regex(r"[+-]?0{0,2}[0-9]{1,4}", fullmatch=True), min_size=1, max_size=30))
def test_property_csv_ids_never_merge_distinct_texts(tmp_path, ids):
    path = tmp_path / "ids.csv"
    path.write_text("customer_id,date,amount\n"
                    + "".join(f"{i},2020-01-01,1\n" for i in ids))
    tx, _ = load_transactions(path)
    # as many customers as distinct texts in the file, whatever the reader's type guess
    assert tx["customer_id"].nunique() == len(set(ids))
    assert tx["customer_id"].astype(str).nunique() == len(set(ids))
