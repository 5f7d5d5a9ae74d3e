"""The Spark engine against the DuckDB engine, in Spark local mode (pyspark 4, Java 17).

The reference for every Spark summary is the DuckDB engine on the same rows (itself checked
against lifetimes in tests/test_summary.py); the reference for Spark scoring is the package's
CLV and P(alive) functions on the collected summary. All tests share one local[2] session.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from custvalue import spark as cs
from custvalue import summary
from custvalue.datasets import load_cdnow, simulate
from custvalue.models import BetaGeoModel, GammaGammaModel
from custvalue.scoring import score_frame

pytestmark = pytest.mark.slow


def _sdf(spark, frame: pd.DataFrame):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pyspark 4.x about pandas 3 and frame attrs
        return spark.createDataFrame(frame).cache()


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    return load_cdnow("master")[["customer_id", "date", "amount"]]


@pytest.fixture(scope="module")
def cdnow_sdf(spark_session, cdnow):
    return _sdf(spark_session, cdnow)


def _assert_same(got: pd.DataFrame, want: pd.DataFrame, exact: bool) -> None:
    """Equal frames; with ``exact=False`` the sums of amounts (monetary_value, total_spend...)
    may differ in the last bits, because Spark adds a customer's amounts in another order than
    DuckDB does (floating-point addition is not associative); everything else must be exact."""
    assert list(got.columns) == list(want.columns)
    sums = [c for c in want.columns if c.startswith(("monetary_value", "total_spend", "revenue",
                                                      "cumulative_revenue"))]
    keep = [c for c in want.columns if exact or c not in sums]
    pd.testing.assert_frame_equal(got[keep], want[keep], check_exact=True)
    if not exact:
        for c in sums:
            np.testing.assert_allclose(got[c].to_numpy(), want[c].to_numpy(), rtol=1e-13, atol=0)


@pytest.fixture(scope="module")
def orders() -> pd.DataFrame:
    """Simulated lines with order ids (some null), text attributes (some null, some tied at
    the first timestamp) and amounts in quarter units, so every float sum is exact in any
    order and the two engines must agree bit for bit."""
    tx = simulate(3000, seed=7).transactions
    rng = np.random.default_rng(3)
    tx = tx.assign(
        amount=np.round(tx["amount"].to_numpy() * 4) / 4,
        region=tx["region"].astype(str),
        channel=tx["channel"].astype(str).where(rng.random(len(tx)) > 0.1),
        category=tx["category"].astype(str),
    )
    # lines of the same customer and day share an order id 2/3 of the time, else none
    day = tx["date"].dt.strftime("%Y%m%d")
    order = tx["customer_id"].astype(str) + "-" + day
    tx["order_id"] = order.where(rng.random(len(tx)) < 2 / 3)
    # duplicate some first lines with other attributes and an intraday time: ties and merges
    dup = tx.sample(400, random_state=1).assign(
        region="Zeta", date=lambda d: d["date"] + pd.Timedelta(hours=3)
    )
    return pd.concat([tx, dup], ignore_index=True)


def _duck(fn, frame, **kw):
    if fn is summary.rfm_summary:
        kw.setdefault("engine", "duckdb")
    return fn(frame, **kw)


@pytest.mark.parametrize(
    ("freq", "observation_end"),
    [("D", None), ("W", "1997-12-31"), ("M", "1998-03-15 12:00")],
)
def test_rfm_summary_equals_duckdb_on_cdnow(cdnow_sdf, cdnow, freq, observation_end):
    got = cs.to_pandas(cs.rfm_summary(cdnow_sdf, freq=freq, observation_end=observation_end))
    want = _duck(summary.rfm_summary, cdnow, freq=freq, observation_end=observation_end)
    _assert_same(got, want, exact=False)
    assert got.attrs == want.attrs


def test_rfm_summary_on_cdnow_in_cents_is_bit_exact(spark_session, cdnow):
    cents = cdnow.assign(amount=np.round(cdnow["amount"].to_numpy() * 100))  # whole numbers
    got = cs.to_pandas(cs.rfm_summary(_sdf(spark_session, cents), freq="W"))
    want = _duck(summary.rfm_summary, cents, freq="W")
    _assert_same(got, want, exact=True)


def test_rfm_summary_with_orders_and_attributes_is_exact(spark_session, orders):
    sdf = _sdf(spark_session, orders)
    for freq in ("D", "Q"):
        got = cs.to_pandas(cs.rfm_summary(sdf, freq=freq))
        want = _duck(summary.rfm_summary, orders, freq=freq)
        _assert_same(got, want, exact=True)
    assert set(want.columns) >= {"region", "channel", "category"}


def test_calibration_holdout_equals_duckdb(spark_session, cdnow, orders):
    for frame, exact, kw in (
        (cdnow, False, {"calibration_end": "1997-09-30", "freq": "W"}),
        (orders, True, {"calibration_end": "2022-09-30", "observation_end": "2023-03-31",
                        "freq": "M"}),
    ):
        got = cs.to_pandas(cs.calibration_holdout(_sdf(spark_session, frame), **kw))
        want = summary.calibration_holdout(frame, **kw)
        _assert_same(got, want, exact)
        assert got.attrs == want.attrs


def test_cohort_table_equals_duckdb(spark_session, cdnow, orders):
    for frame, exact, kw in (
        (cdnow, False, {"cohort_freq": "M"}),
        (orders, True, {"cohort_freq": "W", "observation_end": "2022-11-02"}),
    ):
        got = cs.to_pandas(cs.cohort_table(_sdf(spark_session, frame), **kw), index=None)
        want = summary.cohort_table(frame, **kw)
        _assert_same(got, want, exact)


def test_models_fit_on_collected_statistics_and_score_on_executors(cdnow_sdf, cdnow):
    rfm = cs.rfm_summary(cdnow_sdf, freq="W")
    stats = cs.sufficient_statistics(rfm)
    weekly = summary.rfm_summary(cdnow, freq="W")
    assert stats.attrs["freq"] == "W" and stats["weight"].sum() == len(weekly)
    assert len(stats) < len(weekly) / 5
    bg = BetaGeoModel().fit(stats)
    np.testing.assert_allclose(
        bg.params_.to_numpy(), BetaGeoModel().fit(weekly).params_.to_numpy(), rtol=1e-6
    )
    spend = cs.sufficient_statistics(rfm, spend=True)
    gg = GammaGammaModel().fit(spend[spend.monetary_value > 0])
    scored = cs.to_pandas(cs.score(rfm, bg, gg, horizon=12, time_unit="M", discount_rate=0.1))
    want = score_frame(weekly, bg, gg, horizon=12, time_unit="M", discount_rate=0.1)
    assert list(scored.columns) == list(want.columns)
    np.testing.assert_array_equal(
        scored["probability_alive"].to_numpy(), want["probability_alive"].to_numpy()
    )
    for col in ("expected_purchases", "expected_spend", "clv"):
        np.testing.assert_allclose(scored[col].to_numpy(), want[col].to_numpy(), rtol=1e-13)
    only_bg = cs.to_pandas(cs.score(rfm, bg))
    assert list(only_bg.columns) == ["probability_alive", "expected_purchases"]


def test_a_path_source_and_bad_input(spark_session, cdnow, tmp_path):
    path = tmp_path / "tx.parquet"
    cdnow.to_parquet(path, index=False, coerce_timestamps="us")  # Spark rejects nanoseconds
    got = cs.to_pandas(cs.rfm_summary(str(path), freq="W", spark=spark_session))
    _assert_same(got, summary.rfm_summary(cdnow, freq="W"), exact=False)
    from custvalue.errors import DataValidationError

    with pytest.raises(DataValidationError, match="customer_col='cust'"):
        cs.rfm_summary(spark_session.read.parquet(str(path)), customer_col="cust")
    bad = cdnow.head(50).assign(amount=[np.nan] + [1.0] * 49)
    with pytest.raises(DataValidationError, match="1 rows with a null/NaN/inf 'amount'"):
        cs.rfm_summary(_sdf(spark_session, bad))


def test_summary_functions_route_spark_dataframes_and_engine_spark(cdnow_sdf, cdnow):
    got = summary.rfm_summary(cdnow_sdf, freq="W")  # a Spark DataFrame picks the Spark engine
    _assert_same(got, summary.rfm_summary(cdnow, freq="W", engine="duckdb"), exact=False)
    wide = summary.cohort_table(cdnow, engine="spark", values="active_customers")
    pd.testing.assert_frame_equal(wide, summary.cohort_table(cdnow, values="active_customers"))
    from custvalue.errors import ParameterError

    with pytest.raises(ParameterError, match="engine='numpy' cannot read a Spark DataFrame"):
        summary.rfm_summary(cdnow_sdf, engine="numpy")


def test_attributes_that_are_value_or_summary_columns_are_refused_like_duckdb(cdnow_sdf, cdnow):
    from custvalue.errors import ParameterError

    small = cdnow.head(200).assign(frequency=1)
    for attrs, match in ((["amount"], "already used"), (["date"], "already used"),
                         (["frequency"], "would overwrite summary columns")):
        with pytest.raises(ParameterError, match=match) as duck:
            summary.rfm_summary(small, attributes=attrs, engine="duckdb")
        with pytest.raises(ParameterError, match=match) as spark:
            cs.rfm_summary(_sdf(cdnow_sdf.sparkSession, small), attributes=attrs)
        assert str(spark.value) == str(duck.value)
    with pytest.raises(ParameterError, match="already used"):
        cs.calibration_holdout(cdnow_sdf, calibration_end="1997-09-30", attributes=["amount"])


def test_empty_transactions_are_a_clear_error(spark_session, cdnow_sdf, cdnow):
    from custvalue.errors import DataValidationError

    empty = cdnow_sdf.limit(0)
    for call in (
        lambda: cs.rfm_summary(empty),
        lambda: cs.calibration_holdout(empty, calibration_end="1997-09-30"),
        lambda: cs.cohort_table(empty),
        lambda: summary.rfm_summary(empty),
    ):
        with pytest.raises(DataValidationError, match=r"\(Spark DataFrame\) are empty"):
            call()
    # a pandas frame without rows has no schema Spark could infer: the same error, not pyspark's
    with pytest.raises(DataValidationError, match=r"\(DataFrame with 0 rows\) are empty"):
        summary.rfm_summary(cdnow.iloc[:0], engine="spark")


def test_load_transactions_reads_a_spark_dataframe(cdnow_sdf, cdnow):
    from custvalue.data import load_transactions

    got, quality = load_transactions(cdnow_sdf)
    want, want_quality = load_transactions(cdnow)
    pd.testing.assert_frame_equal(got, want)
    assert quality.n_rows_in == want_quality.n_rows_in == len(cdnow)
    assert "Spark DataFrame" in quality.source


def test_report_data_with_engine_spark_is_read_and_summarised_in_spark(
    spark_session, cdnow, tmp_path, monkeypatch
):
    from custvalue import reports

    path = tmp_path / "tx.parquet"
    cdnow.to_parquet(path, index=False, coerce_timestamps="us")
    tx, _ = reports.load_report_data(str(path), engine="spark")
    local, _ = reports.load_report_data(str(path))
    assert tx.attrs["engine"] == "spark" and "engine" not in local.attrs
    pd.testing.assert_frame_equal(tx, local, check_like=False)
    calls = []
    for name in ("rfm_summary", "calibration_holdout", "cohort_table"):
        real = getattr(cs, name)
        monkeypatch.setattr(cs, name, lambda *a, _real=real, _name=name, **k: (
            calls.append(_name), _real(*a, **k))[1])
    _assert_same(summary.rfm_summary(tx, freq="W"), summary.rfm_summary(local, freq="W"),
                 exact=False)
    _assert_same(summary.calibration_holdout(tx, calibration_end="1997-09-30", freq="W"),
                 summary.calibration_holdout(local, calibration_end="1997-09-30", freq="W"),
                 exact=False)
    _assert_same(summary.cohort_table(tx).reset_index(drop=True),
                 summary.cohort_table(local).reset_index(drop=True), exact=False)
    assert calls == ["rfm_summary", "calibration_holdout", "cohort_table"]
    # a subset keeps the tag; an explicit engine wins over it
    assert tx[tx["amount"] > 0].attrs["engine"] == "spark"
    summary.rfm_summary(tx, freq="W", engine="duckdb")
    assert calls == ["rfm_summary", "calibration_holdout", "cohort_table"]


def test_value_report_runs_with_engine_spark_and_equals_duckdb(cdnow, tmp_path):
    """A small value report run end to end in a kernel whose summaries run in Spark local
    mode (command line: ``custvalue report value --engine spark``), against the same report
    on the DuckDB engine."""
    from custvalue import reports

    path = tmp_path / "tx.parquet"
    cdnow.head(4000).to_parquet(path, index=False, coerce_timestamps="us")
    params = {"models": "bgnbd", "n_draws": 0, "freq": "W"}
    runs = {
        engine: reports.run("value", data=str(path), params={**params, "engine": engine},
                            out=tmp_path / engine, log=lambda line: None, progress=False,
                            kernel="python3")  # the venv's own kernel: inherits PYTHONPATH
        for engine in ("spark", "duckdb")
    }
    scores = {k: pd.read_parquet(r.run_dir / "scores.parquet") for k, r in runs.items()}
    assert len(scores["spark"]) == cdnow.head(4000)["customer_id"].nunique()
    pd.testing.assert_frame_equal(scores["spark"], scores["duckdb"], check_exact=False,
                                  rtol=1e-9)
    import json

    metrics = {k: json.loads((r.run_dir / "metrics.json").read_text()) for k, r in runs.items()}
    assert metrics["spark"]["run"]["parameters"]["engine"] == "spark"


def test_a_new_session_attaches_to_the_master_the_environment_names(monkeypatch):
    """CUSTVALUE_SPARK_MASTER (inherited by a report's kernel) and SPARK_REMOTE choose where a
    new session runs; an active session always wins. A recording stand-in for the builder:
    no second JVM is started."""
    import pyspark.sql as ps

    seen: list[tuple[str, str]] = []

    class Builder:
        def __getattr__(self, name):
            def record(*args):
                seen.append((name, args[0] if args else ""))
                return self
            return record

        def getOrCreate(self):
            seen.append(("getOrCreate", ""))
            return _Session()

    class _Session:
        class sparkContext:  # mimics the attribute
            @staticmethod
            def setLogLevel(level):
                pass

    monkeypatch.setattr(ps.SparkSession, "getActiveSession", staticmethod(lambda: None))
    monkeypatch.setattr(ps.SparkSession, "builder", Builder())
    monkeypatch.delenv("SPARK_REMOTE", raising=False)
    monkeypatch.setenv(cs.MASTER_ENV, "spark://cluster:7077")
    cs.local_session()
    assert ("master", "spark://cluster:7077") in seen
    seen.clear()
    monkeypatch.delenv(cs.MASTER_ENV)
    cs.local_session(3)
    assert ("master", "local[3]") in seen
    seen.clear()
    monkeypatch.setenv("SPARK_REMOTE", "sc://connect:15002")
    cs.local_session()
    assert ("remote", "sc://connect:15002") in seen and not any(k == "master" for k, _ in seen)


def test_cli_summarize_and_report_take_an_engine(spark_session, cdnow, tmp_path):
    from click.testing import CliRunner

    from custvalue.cli import main

    path = tmp_path / "tx.parquet"
    cdnow.to_parquet(path, index=False, coerce_timestamps="us")
    runner = CliRunner()
    outs = {}
    for engine in ("spark", "duckdb"):
        outs[engine] = tmp_path / f"rfm_{engine}.parquet"
        res = runner.invoke(main, ["summarize", "--data", str(path), "--freq", "W", "--engine",
                                   engine, "--out", str(outs[engine]), "-q"])
        assert res.exit_code == 0, res.output
    got, want = (pd.read_parquet(outs[k]) for k in ("spark", "duckdb"))
    _assert_same(got, want, exact=False)
    bad = runner.invoke(main, ["summarize", "--data", str(path), "--engine", "polars",
                               "--out", str(tmp_path / "x.parquet")])
    assert bad.exit_code == 2 and "polars" in bad.output
    # every report declares the engine parameter, checked before any kernel starts
    from custvalue import reports

    for name in ("value", "segment", "program"):
        spec = reports.get_report(name)
        assert spec.param_names[spec.param_names.index("data") + 1] == "engine"
        param = spec.param("engine")
        assert param.parse("spark") == "spark" and param.parse("auto") is None
    res = runner.invoke(main, ["report", "value", "--data", str(path), "--engine", "polars"])
    assert res.exit_code == 2 and "polars" in res.output
