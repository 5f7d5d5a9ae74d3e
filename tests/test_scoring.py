"""Out-of-core pipeline: summary to Parquet, fits on compressed statistics, chunked scoring."""

from __future__ import annotations

import math
import os

import duckdb
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from custvalue.datasets import load_cdnow
from custvalue.errors import DataValidationError, ParameterError
from custvalue.models import BetaGeoModel, GammaGammaModel
from custvalue.scoring import (
    score_frame,
    score_to_parquet,
    sufficient_statistics,
    summary_to_parquet,
)
from custvalue.summary import rfm_summary
from custvalue.value import customer_lifetime_value


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    return load_cdnow("master")[["customer_id", "date", "amount"]]


@pytest.fixture(scope="module")
def weekly(cdnow) -> pd.DataFrame:
    return rfm_summary(cdnow, freq="W", engine="duckdb", attributes=())


@pytest.fixture(scope="module")
def models(weekly):
    # one CDNOW customer's repeat purchases are worth 0: not fittable by Gamma-Gamma (log m)
    return BetaGeoModel().fit(weekly), GammaGammaModel().fit(weekly[weekly.monetary_value > 0])


def _read(path: str) -> pd.DataFrame:
    return pq.read_table(path).to_pandas().set_index("customer_id")


def test_summary_to_parquet_equals_rfm_summary(tmp_path, cdnow, weekly):
    info = summary_to_parquet(cdnow, tmp_path / "s.parquet", freq="W", threads=1)
    got = _read(info["path"]).sort_index()
    pd.testing.assert_frame_equal(got, weekly, check_freq=False, check_like=True)
    assert info["n_customers"] == len(weekly) and info["n_transactions"] == len(cdnow)
    assert (info["freq"], info["observation_end"]) == ("W", weekly.attrs["observation_end"])


def test_summary_to_parquet_reads_hive_partitioned_files(tmp_path, cdnow):
    parts = cdnow.assign(month=cdnow["date"].dt.strftime("%Y-%m"))
    root = tmp_path / "tx"
    parts.to_parquet(root, partition_cols=["month"], index=False)
    assert len(os.listdir(root)) == 18  # CDNOW spans 18 months
    info = summary_to_parquet(str(root), tmp_path / "s.parquet", freq="D", observation_end="1997-12-31")
    got = _read(info["path"]).sort_index()
    want = rfm_summary(cdnow, freq="D", observation_end="1997-12-31", engine="duckdb", attributes=())
    pd.testing.assert_frame_equal(got, want, check_like=True)


def test_sufficient_statistics_fit_equals_the_fit_on_every_customer(tmp_path, cdnow, weekly, models):
    path = summary_to_parquet(cdnow, tmp_path / "s.parquet", freq="W")["path"]
    stats = sufficient_statistics(path)
    assert stats.attrs["freq"] == "W"
    assert stats["weight"].sum() == len(weekly)
    assert len(stats) < len(weekly) / 5  # the compression that makes 20M customers cheap
    # every distinct row once, with its multiplicity
    want = weekly.groupby(["frequency", "recency", "T"]).size()
    got = stats.set_index(["frequency", "recency", "T"])["weight"]
    np.testing.assert_array_equal(got.to_numpy(), want.to_numpy().astype(float))
    bg = BetaGeoModel().fit(stats)
    np.testing.assert_allclose(bg.params_.to_numpy(), models[0].params_.to_numpy(), rtol=1e-6)
    spend = sufficient_statistics(path, spend=True)
    assert spend["weight"].sum() == (weekly["frequency"] > 0).sum()
    gg = GammaGammaModel().fit(spend[spend.monetary_value > 0])
    np.testing.assert_allclose(gg.params_.to_numpy(), models[1].params_.to_numpy(), rtol=1e-6)


def test_score_to_parquet_in_chunks_equals_scoring_everyone_at_once(tmp_path, weekly, models):
    bg, gg = models
    src = tmp_path / "s.parquet"
    weekly.reset_index().to_parquet(src, index=False)
    out = tmp_path / "scores.parquet"
    res = score_to_parquet(str(src), out, bg, gg, horizon=12, time_unit="M", chunk_rows=1000)
    assert res.n_customers == len(weekly)
    assert res.n_chunks == math.ceil(len(weekly) / 1000)
    got = _read(res.path).sort_index()
    # reference: the package's CLV and P(alive) functions on the whole frame at once
    clv = customer_lifetime_value(bg, gg, weekly, horizon=12, time_unit="M", discount_rate=0.1)
    # CLV compresses identical rows and sums cash flows vectorised: per-chunk arithmetic may
    # differ from the whole-frame one in the last bit
    np.testing.assert_allclose(got["clv"].to_numpy(), clv["clv"].to_numpy(), rtol=1e-13)
    np.testing.assert_array_equal(
        got["probability_alive"].to_numpy(), bg.probability_alive(weekly).to_numpy()
    )
    np.testing.assert_allclose(
        got["expected_purchases"].to_numpy(), clv["expected_purchases"].to_numpy(), rtol=1e-13
    )
    assert res.totals["clv"] == pytest.approx(clv["clv"].sum(), rel=1e-12)
    # a DuckDB relation as the source gives the same file
    con = duckdb.connect()
    rel = con.sql(f"SELECT * FROM read_parquet('{src}')")
    res2 = score_to_parquet(rel, tmp_path / "scores2.parquet", bg, gg, chunk_rows=5000)
    pd.testing.assert_frame_equal(_read(res2.path).sort_index(), got)
    con.close()


def test_score_frame_without_spend_model_converts_the_horizon(weekly, models):
    bg = models[0]
    got = score_frame(weekly, bg, horizon=12, time_unit="M")
    weeks = 12 * 365.25 / 12 / 7  # 12 calendar-exact months in weeks
    want = bg.expected_purchases(weekly, weeks)
    np.testing.assert_allclose(got["expected_purchases"].to_numpy(), want.to_numpy(), rtol=1e-13)
    assert list(got.columns) == ["probability_alive", "expected_purchases"]


def test_failed_scoring_keeps_the_previous_output(tmp_path, weekly, models):
    bg, gg = models
    out = tmp_path / "scores.parquet"
    out.write_bytes(b"previous good output")
    bad = tmp_path / "bad.parquet"
    weekly.reset_index().drop(columns="monetary_value").to_parquet(bad, index=False)
    with pytest.raises(DataValidationError, match="monetary_value"):
        score_to_parquet(str(bad), out, bg, gg)
    with pytest.raises(DataValidationError, match="does not exist"):
        score_to_parquet(str(tmp_path / "nope.parquet"), out, bg, gg)
    with pytest.raises(ParameterError, match="chunk_rows"):
        score_to_parquet(str(bad), out, bg, chunk_rows=0)
    assert out.read_bytes() == b"previous good output"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".custvalue")] == []
