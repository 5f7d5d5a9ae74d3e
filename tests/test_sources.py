"""Tests for custvalue._sources: one source layer under both the loader and the summaries.

The same sources go through ``load_transactions`` and ``rfm_summary`` (and the other summary
functions); the expected summary is computed by ``rfm_summary`` on the plain in-memory frame,
whose equality with lifetimes is checked in test_summary.py.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pytest

from custvalue._sources import expand_paths, open_source, parse_attributes
from custvalue.data import load_transactions
from custvalue.errors import DataValidationError, SourceNotFoundError
from custvalue.summary import calibration_holdout, cohort_table, rfm_summary


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": [1, 1, 2, 3, 3, 3, 4],
            "date": pd.to_datetime(
                ["2020-01-01", "2020-01-20", "2020-01-05", "2020-02-01", "2020-02-15",
                 "2020-03-01", "2020-03-02"]
            ),
            "amount": [10.0, 20.0, 5.5, 7.25, 1.0, 2.0, 3.0],
        }
    )


def _write_sources(frame: pd.DataFrame, tmp: Path) -> dict[str, object]:
    """The frame as every kind of file source."""
    frame.to_csv(tmp / "tx.csv", index=False)
    frame.to_csv(tmp / "tx.csv.gz", index=False)
    text = frame.to_csv(index=False).encode()
    with pa.CompressedOutputStream(str(tmp / "tx.csv.zst"), "zstd") as out:
        out.write(text)
    frame.to_parquet(tmp / "tx.parquet", index=False)
    parts = tmp / "parts"
    parts.mkdir()
    frame.iloc[:3].to_parquet(parts / "a.parquet", index=False)
    frame.iloc[3:].to_parquet(parts / "b.parquet", index=False)
    return {
        "csv": tmp / "tx.csv",
        "csv.gz": str(tmp / "tx.csv.gz"),
        "csv.zst": str(tmp / "tx.csv.zst"),
        "parquet": tmp / "tx.parquet",
        "glob": str(parts / "*.parquet"),
        "directory": parts,
        "list": [parts / "a.parquet", str(parts / "b.parquet")],
    }


def test_the_same_sources_work_through_both_entry_points(frame, tmp_path):
    expected = rfm_summary(frame, freq="W")
    sources = _write_sources(frame, tmp_path)
    sources["relation"] = duckdb.connect().from_df(frame)
    for kind, source in sources.items():
        tx, quality = load_transactions(source)
        assert quality.n_rows_out == len(frame), kind
        assert sorted(tx["amount"]) == sorted(frame["amount"]), kind
        direct = rfm_summary(source, freq="W")
        via_loader = rfm_summary(tx, freq="W")
        pd.testing.assert_frame_equal(direct, expected, check_dtype=False, obj=kind)
        pd.testing.assert_frame_equal(via_loader, expected, check_dtype=False, obj=kind)
        # the other summaries accept every source as well
        assert len(calibration_holdout(source, calibration_end="2020-02-01")) == 3, kind
        assert cohort_table(source)["cohort_size"].max() >= 1, kind


@pytest.mark.parametrize("name", ["nope.csv", "nope-*.parquet"])
def test_a_missing_file_is_the_same_error_everywhere(tmp_path, name):
    path = str(tmp_path / name)
    messages = set()
    for call in (
        lambda: load_transactions(path),
        lambda: rfm_summary(path),
        lambda: calibration_holdout(path, calibration_end="2020-01-01"),
        lambda: cohort_table(path),
    ):
        with pytest.raises(SourceNotFoundError) as err:
            call()
        assert isinstance(err.value, FileNotFoundError)
        assert isinstance(err.value, DataValidationError)
        messages.add(str(err.value))
    assert len(messages) == 1, messages
    assert name in messages.pop()


def test_the_loaders_pair_gets_an_unpack_message(frame):
    pair = load_transactions(frame)
    for call in (
        lambda: rfm_summary(pair),
        lambda: calibration_holdout(pair, calibration_end="2020-02-01"),
        lambda: cohort_table(pair),
        lambda: load_transactions(pair),
    ):
        with pytest.raises(DataValidationError, match=r"tx, quality = load_transactions"):
            call()


def test_remote_paths_are_passed_to_duckdb_unexpanded():
    files, matched = expand_paths(["s3://bucket/exports/tx.csv", "https://example.org/a.parquet"])
    assert files == ["s3://bucket/exports/tx.csv", "https://example.org/a.parquet"]
    assert matched == [False, False]


def test_every_connection_runs_in_utc(frame):
    with open_source(frame) as src:
        assert src.sql("SELECT current_setting('TimeZone')").fetchall() == [("UTC",)]


def test_source_connection_cannot_read_other_files(frame, tmp_path):
    other = tmp_path / "secret.txt"
    other.write_text("secret")
    with open_source(frame) as src:
        with pytest.raises(duckdb.Error, match=r"disabled|Permission"):
            src.sql(f"SELECT content FROM read_text('{other}')").fetchall()


def test_attribute_parser_names():
    assert parse_attributes(["region", "is_uk=Country = 'UK'", "Country = 'UK'"]) == [
        ("region", "region"),
        ("is_uk", "Country = 'UK'"),
        ("Country = 'UK'", "Country = 'UK'"),
    ]
    assert parse_attributes({"big": "amount > 8"}) == [("big", "amount > 8")]
