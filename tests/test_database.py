"""SQL databases as transaction sources, against a real PostgreSQL server (tests/conftest.py).

The server is Debian's PostgreSQL, initialised in a temporary directory for the session; the
reference for every summary is the same data summarised from a pandas frame (itself checked
against lifetimes in tests/test_summary.py) and, for CDNOW, lifetimes directly.
"""

from __future__ import annotations

import urllib.parse

import duckdb
import numpy as np
import pandas as pd
import pytest

from custvalue import _database as db
from custvalue.datasets import load_cdnow
from custvalue.errors import DataSourceError, DataValidationError, ParameterError
from custvalue.summary import rfm_summary


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    return load_cdnow("master")[["customer_id", "date", "amount"]]


@pytest.fixture(scope="module")
def shop(postgres_server, cdnow):
    """Tables in the test database: CDNOW master as ``orders`` (double amounts), as
    ``sales.orders_numeric`` (NUMERIC(10,2) amounts, timestamp dates, other column names)."""
    import adbc_driver_postgresql.dbapi as pg
    import pyarrow as pa

    with pg.connect(postgres_server.url()) as conn:
        cur = conn.cursor()
        cur.adbc_ingest("orders", pa.Table.from_pandas(cdnow, preserve_index=False), mode="replace")
        cur.execute("CREATE SCHEMA IF NOT EXISTS sales")
        cur.execute(
            "CREATE TABLE sales.orders_numeric AS SELECT customer_id AS cust, "
            "CAST(date AS timestamp) AS ordered_at, CAST(amount AS numeric(10,2)) AS value "
            "FROM orders"
        )
        cur.execute(
            "CREATE TABLE big AS SELECT (i % 50000) AS customer_id, "
            "DATE '2020-01-01' + (i % 700) AS date, CAST(i % 97 AS double precision) AS amount "
            "FROM generate_series(1, 1500000) AS i"
        )
        conn.commit()
    return postgres_server


def _summary_via_db(url: str, **kwargs) -> pd.DataFrame:
    con = duckdb.connect()
    try:
        db.open_in_duckdb(url, con, "tx", sql=kwargs.pop("sql", None))
        return rfm_summary(con.sql("SELECT * FROM tx"), **kwargs)
    finally:
        con.close()


def test_table_url_gives_the_same_summary_as_the_frame(shop, cdnow):
    got = _summary_via_db(shop.url("?table=orders"), freq="W")
    want = rfm_summary(cdnow, freq="W", engine="duckdb")
    pd.testing.assert_frame_equal(got, want, check_like=False)


def test_cdnow_from_postgres_matches_lifetimes(shop, cdnow):
    from lifetimes.utils import summary_data_from_transaction_data

    got = _summary_via_db(shop.url("?table=orders"), freq="D")
    ref = summary_data_from_transaction_data(cdnow, "customer_id", "date", freq="D")
    ref.index.name = "customer_id"
    for col in ("frequency", "recency", "T"):
        np.testing.assert_array_equal(got[col].to_numpy(), ref.loc[got.index, col].to_numpy())


def test_query_url_numeric_amounts_and_schema_table(shop, cdnow):
    query = (
        "SELECT cust AS customer_id, ordered_at AS date, value AS amount "
        "FROM sales.orders_numeric WHERE cust <= 5000"
    )
    url = shop.url("?" + urllib.parse.urlencode({"query": query}))
    got = _summary_via_db(url, freq="M")
    want = rfm_summary(cdnow[cdnow.customer_id <= 5000], freq="M", engine="duckdb")
    pd.testing.assert_frame_equal(got, want)
    # the same through sql= and through the schema-qualified table with renamed columns
    got_sql = _summary_via_db(shop.url(), sql=query, freq="M")
    pd.testing.assert_frame_equal(got_sql, want)
    con = duckdb.connect()
    db.open_in_duckdb(shop.url("?table=sales.orders_numeric"), con, "t")
    types = dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE t)").fetchall())
    assert (types["ordered_at"], types["value"]) == ("TIMESTAMP", "DOUBLE")
    con.close()


def test_rows_arrive_as_a_stream_of_batches(shop):
    reader, conn = db.read_record_batches(shop.url("?table=big"))
    try:
        sizes = [b.num_rows for b in reader]
    finally:
        conn.close()
    assert len(sizes) > 1  # the driver hands over several batches, not one table
    assert sum(sizes) == 1_500_000
    con = duckdb.connect()
    db.open_in_duckdb(shop.url("?table=big"), con, "t")
    n, customers, total = con.execute(
        "SELECT count(*), count(DISTINCT customer_id), sum(amount) FROM t"
    ).fetchone()
    con.close()
    i = np.arange(1, 1_500_001)
    assert (n, customers, total) == (1_500_000, 50_000, float((i % 97).sum()))


def _one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text
    return text


def test_wrong_password_is_one_line_naming_the_host(shop):
    with pytest.raises(DataSourceError) as info:
        _summary_via_db(shop.url("?table=orders", password="wrong"))
    msg = _one_line(info.value)
    assert f"127.0.0.1:{shop.port}" in msg
    assert "password" in msg
    assert "wrong" not in msg.replace("wrong password", "")


def test_server_down_is_one_line_naming_the_host(shop):
    from conftest import _free_port

    port = _free_port()  # nothing listens there
    url = f"postgresql://{shop.user}:{shop.password}@127.0.0.1:{port}/shop?table=orders"
    with pytest.raises(DataSourceError) as info:
        _summary_via_db(url)
    msg = _one_line(info.value)
    assert f"127.0.0.1:{port}" in msg and "running" in msg
    assert shop.password not in msg


def test_missing_table_names_the_table(shop):
    with pytest.raises(DataValidationError, match="no_such_table") as info:
        _summary_via_db(shop.url("?table=no_such_table"))
    _one_line(info.value)


def test_duckdb_file_url(tmp_path, cdnow):
    path = tmp_path / "shop.duckdb"
    con = duckdb.connect(str(path))
    con.register("c", cdnow)
    con.execute("CREATE TABLE orders AS SELECT * FROM c")
    con.close()
    got = _summary_via_db(f"duckdb:///{path}?table=orders", freq="W")
    pd.testing.assert_frame_equal(got, rfm_summary(cdnow, freq="W", engine="duckdb"))
    # through the source layer (its connection is locked after opening)
    pd.testing.assert_frame_equal(
        rfm_summary(f"duckdb:///{path}?table=orders", freq="W"),
        rfm_summary(cdnow, freq="W", engine="duckdb"),
    )
    with pytest.raises(DataSourceError, match="does not exist"):
        _summary_via_db(f"duckdb:///{tmp_path}/nope.duckdb?table=orders")


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("postgresql://u@h/db", "table=orders or"),
        ("postgresql://u@h/db?table=a&query=select%201", "exactly one"),
        ("postgresql://u@h/db?table=", "table=orders or"),
        ("postgresql://u@h:port/db?table=a", "port"),
        ("mysql://u@h/db?table=a", "not a database URL"),
    ],
)
def test_url_errors(url, match):
    with pytest.raises(ParameterError, match=match):
        db.parse_database_url(url)


def test_url_parsing_keeps_libpq_options_and_hides_password():
    src = db.parse_database_url(
        "postgresql+psycopg://ann:pa%40ss@db.example.com:6543/shop?table=sales.orders&sslmode=require"
    )
    assert (src.host, src.port, src.database, src.user, src.table) == (
        "db.example.com", 6543, "shop", "ann", "sales.orders",
    )
    assert src.uri == "postgresql://ann:pa%40ss@db.example.com:6543/shop?sslmode=require"
    assert "pa%40ss" not in src.description and "db.example.com:6543" in src.description
    assert db.is_database_url("postgres://h/db?table=t")
    assert not db.is_database_url("data/*.parquet")
    assert not db.is_database_url(pd.DataFrame())


# --------------------------------------------------------------------------------------------
# Through the source layer: load_transactions, rfm_summary and the command line take the URL
# --------------------------------------------------------------------------------------------


def test_rfm_summary_and_load_transactions_take_the_url(shop, cdnow):
    from custvalue.data import load_transactions
    from custvalue.summary import calibration_holdout, cohort_table

    url = shop.url("?table=orders")
    pd.testing.assert_frame_equal(
        rfm_summary(url, freq="W"), rfm_summary(cdnow, freq="W", engine="duckdb")
    )
    kw = {"calibration_end": "1997-09-30", "freq": "W"}
    pd.testing.assert_frame_equal(calibration_holdout(url, **kw), calibration_holdout(cdnow, **kw))
    pd.testing.assert_frame_equal(cohort_table(url), cohort_table(cdnow))
    tx, quality = load_transactions(url)
    want, want_quality = load_transactions(cdnow)
    pd.testing.assert_frame_equal(tx, want)
    assert quality.n_rows_in == want_quality.n_rows_in == len(cdnow)
    assert f"127.0.0.1:{shop.port}" in quality.source and shop.password not in quality.source


def _cli(*args: str) -> tuple[int, str, str]:
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "custvalue.cli", *args], capture_output=True, text=True, timeout=300
    )
    return proc.returncode, proc.stdout, proc.stderr


def test_cli_reads_a_database_and_fails_in_one_line(shop, tmp_path):
    out = tmp_path / "s.parquet"
    code, stdout, _ = _cli("summarize", "--data", shop.url("?table=orders"), "--freq", "W",
                           "--out", str(out), "--quiet")
    assert code == 0 and "23,570 customers" in stdout
    assert len(pd.read_parquet(out)) == 23_570
    out.write_bytes(b"previous good output")
    code, _, stderr = _cli("summarize", "--data", shop.url("?table=orders", password="nope"),
                           "--out", str(out))
    assert code == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and f"127.0.0.1:{shop.port}" in lines[0] and "nope" not in lines[0]
    assert out.read_bytes() == b"previous good output"


@pytest.mark.slow
def test_value_report_runs_on_a_database_url_without_showing_the_password(shop, tmp_path):
    import json

    code, _, stderr = _cli("report", "value", "--data", shop.url("?table=orders"),
                           "--out", str(tmp_path / "out"))
    assert code == 0, stderr[-2000:]
    html = (tmp_path / "out" / "value" / "latest.html").read_text()
    assert "23,570" in html and f"127.0.0.1:{shop.port}" in html
    assert shop.password not in html
    doc = json.loads(next((tmp_path / "out" / "value").glob("*/metrics.json")).read_text())
    assert doc["metrics"]["customers"] == 23570
    assert shop.password not in json.dumps(doc)
