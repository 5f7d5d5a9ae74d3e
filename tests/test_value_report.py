"""Tests for custvalue.value_report: the analysis behind the value report notebook.

Reference values come from the transactions themselves (counts, sums, dates), from the
definitions of the tables (shares sum to one, deciles are equal tenths ordered by value) and from
the Gamma-Gamma closed form (Fader & Hardie 2013, eq. 5), never from a previous run.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest

from custvalue import data, datasets, reports, value_report
from custvalue.errors import ParameterError

REPO = Path(__file__).resolve().parents[1]
CANDIDATE_NAMES = {"BG/NBD", "Pareto/NBD", "MBG/NBD"}
#: metrics.json keys of the value report (a published contract: consumers read these).
METRIC_KEYS = [
    "customers", "orders", "revenue", "repeat_rate", "first_date", "calibration_end",
    "observation_end", "horizon_months", "discount_rate", "margin", "clv_total",
    "clv_total_lower", "clv_total_upper", "clv_interval", "clv_per_customer", "top_decile_share",
    "mean_p_alive", "zero_value_repeat_customers", "chosen_model", "holdout_rmse",
    "holdout_rmse_carry_forward", "holdout_total_error_pct", "holdout_gini", "model_params",
    "spend_params",
]  # fmt: skip


@pytest.fixture(scope="module")
def cdnow_tx() -> pd.DataFrame:
    tx, _ = reports.load_report_data("cdnow-sample")
    return tx


@pytest.fixture(scope="module")
def cdnow(cdnow_tx: pd.DataFrame) -> value_report.ValueReport:
    """All three candidates on the CDNOW sample with the classic 39 + 39 week split."""
    return value_report.analyse(
        cdnow_tx, calibration_end="1997-09-30", observation_end="1998-06-30", n_draws=20,
        top_n=15, seed=1,
    )


@pytest.fixture(scope="module")
def simulated() -> tuple[pd.DataFrame, value_report.ValueReport]:
    sim = datasets.simulate(
        300, seed=3, channels=["web", "store", "phone"], regions=["north", "south"]
    )
    tx, _ = data.load_transactions(sim.transactions, attributes=("region", "channel"))
    return tx, value_report.analyse(tx, models=["bgnbd"], n_draws=0)


def test_scores_are_one_row_per_customer_with_the_export_columns(
    cdnow: value_report.ValueReport, cdnow_tx: pd.DataFrame
) -> None:
    scores = cdnow.scores
    assert scores.index.name == "customer_id"
    assert set(scores.index) == set(cdnow_tx["customer_id"]) and scores.index.is_unique
    # customer_id is the index; every other export column is computed
    assert set(reports.SCORE_COLUMNS) - {"customer_id"} <= set(scores.columns)
    assert scores["p_alive"].between(0, 1).all()
    assert (scores["clv"] >= 0).all()
    assert (scores["clv_lower"] <= scores["clv"] + 1e-9).all()
    assert (scores["clv"] <= scores["clv_upper"] + 1e-9).all()
    # CDNOW's customers are the first-quarter 1997 cohort: monthly cohorts Jan, Feb, Mar
    assert cdnow.cohort_freq == "M"
    assert sorted(scores["cohort"].unique()) == list(
        pd.to_datetime(["1997-01-01", "1997-02-01", "1997-03-01"])
    )
    first = cdnow_tx.groupby("customer_id")["date"].min()
    assert (scores["first_purchase"] == first.reindex(scores.index)).all()


def test_headline_numbers_come_from_the_transactions(
    cdnow: value_report.ValueReport, cdnow_tx: pd.DataFrame
) -> None:
    assert cdnow.n_customers == cdnow_tx["customer_id"].nunique() == 2357
    assert cdnow.revenue == pytest.approx(cdnow_tx["amount"].sum(), rel=1e-12)
    assert cdnow.first_date == pd.Timestamp("1997-01-01")
    assert cdnow.calibration_end == pd.Timestamp("1997-09-30")
    assert cdnow.observation_end == pd.Timestamp("1998-06-30")
    assert cdnow.unit == "week" and cdnow.attributes == []
    assert cdnow.cohort_summary["customers"].sum() == cdnow.n_customers
    assert cdnow.cohort_summary["revenue"].sum() == pytest.approx(cdnow.revenue, rel=1e-9)
    # period 0 is the acquisition month: everybody bought in it
    assert np.allclose(cdnow.cohort_retention.iloc[:, 0], 1.0)
    assert 0 < cdnow.retention_latest_period < cdnow.retention_next_period < 1


def test_total_value_is_the_sum_of_customer_values(cdnow: value_report.ValueReport) -> None:
    total = cdnow.total_value
    assert total["estimate"] == pytest.approx(cdnow.scores["clv"].sum(), rel=1e-9)
    assert total["lower"] <= total["estimate"] <= total["upper"]
    assert cdnow.has_interval and cdnow.interval == 0.9


def test_deciles_are_tenths_of_customers_ordered_by_value(cdnow: value_report.ValueReport) -> None:
    deciles, scores = cdnow.deciles, cdnow.scores
    assert list(deciles.index) == list(range(1, 11))
    assert deciles["share_of_value"].sum() == pytest.approx(1.0, abs=1e-12)
    assert deciles["customers"].sum() == len(scores)
    assert deciles["customers"].max() - deciles["customers"].min() <= 1
    assert deciles["expected_value"].sum() == pytest.approx(cdnow.total_value["estimate"])
    by_decile = scores.groupby("clv_decile")["clv"]
    assert (by_decile.min().iloc[:-1].to_numpy() >= by_decile.max().iloc[1:].to_numpy()).all()
    assert cdnow.top_decile_share == deciles.loc[1, "share_of_value"]
    assert cdnow.top_decile_share + cdnow.bottom_half_share < 1
    # the top customers are the largest values, most valuable first
    top = cdnow.top_customers
    assert len(top) == 15
    assert list(top.index) == list(scores["clv"].nlargest(15).index)


def test_chosen_model_is_a_candidate_refitted_on_all_customers(
    cdnow: value_report.ValueReport,
) -> None:
    assert cdnow.chosen_name in CANDIDATE_NAMES
    assert set(cdnow.comparison.table.index) == CANDIDATE_NAMES
    assert bool(cdnow.comparison.table.loc[cdnow.chosen_name, "chosen"])
    assert type(cdnow.final_model) is type(cdnow.chosen_model)
    assert cdnow.final_model is not cdnow.chosen_model
    assert int(cdnow.final_model.n_customers_) == cdnow.n_customers
    # the calibration fit sees the calibration customers only
    assert int(cdnow.chosen_model.n_customers_) == len(cdnow.calibration)


def test_without_channel_or_region_there_is_one_rule_of_thumb(
    cdnow: value_report.ValueReport,
) -> None:
    assert cdnow.segment is None and cdnow.segment_value == {}
    assert list(cdnow.heuristic_vs_model.index) == ["all"]
    assert cdnow.scores["heuristic_ltv"].nunique() == 1
    assert cdnow.cohort_value["customers"].sum() == cdnow.n_customers
    assert cdnow.cohort_value["share_of_value"].sum() == pytest.approx(1.0)


def test_channel_and_region_get_their_own_tables(
    simulated: tuple[pd.DataFrame, value_report.ValueReport],
) -> None:
    tx, result = simulated
    assert result.chosen_name == "BG/NBD"
    assert list(result.segment_value) == ["channel", "region"]
    first = tx.sort_values("date").groupby("customer_id").first()
    for col, table in result.segment_value.items():
        # a customer belongs to the segment of their first purchase
        assert table["customers"].to_dict() == first[col].value_counts().to_dict()
        assert table["share_of_value"].sum() == pytest.approx(1.0)
        assert table["total_clv"].sum() == pytest.approx(result.scores["clv"].sum())
    # the rule of thumb is per channel: one value per channel, several channels
    assert result.segment == "channel"
    per_channel = result.scores.groupby("channel", observed=True)["heuristic_ltv"].nunique()
    assert (per_channel == 1).all()
    assert set(result.heuristic_vs_model.index) == set(first["channel"])


def test_no_draws_means_no_intervals(
    simulated: tuple[pd.DataFrame, value_report.ValueReport],
) -> None:
    _, result = simulated
    assert not result.has_interval and result.interval is None
    assert not {"clv_lower", "clv_upper"} & set(result.scores.columns)
    m = result.metrics()
    assert m["clv_total_lower"] is None and m["clv_total_upper"] is None
    assert m["clv_interval"] is None


def test_metrics_have_the_published_keys(
    cdnow: value_report.ValueReport, tmp_path: Path
) -> None:
    m = cdnow.metrics()
    assert list(m) == METRIC_KEYS
    assert m["customers"] == 2357 and m["chosen_model"] == cdnow.chosen_name
    assert m["clv_total"] == pytest.approx(cdnow.scores["clv"].sum())
    assert m["clv_per_customer"] == pytest.approx(cdnow.scores["clv"].mean())
    assert m["zero_value_repeat_customers"] == 0
    assert 0 < m["holdout_rmse"] and 0 < m["mean_p_alive"] < 1
    path = reports.write_metrics(tmp_path, m)
    doc = json.loads(path.read_text())
    assert doc["first_date"].startswith("1997-01-01")


def test_repeat_customers_whose_purchases_were_worth_zero_are_valued(
    cdnow_tx: pd.DataFrame,
) -> None:
    """Gamma-Gamma is fitted without them (ln m) but values them with eq. 5 at m = 0."""
    tx = cdnow_tx.copy()
    first_day = tx.groupby("customer_id")["date"].transform("min")
    repeat_days = tx.loc[tx["date"] > first_day].groupby("customer_id")["date"].nunique()
    zeroed = repeat_days[repeat_days >= 2].index[:3]
    tx.loc[tx["customer_id"].isin(zeroed) & (tx["date"] > first_day), "amount"] = 0.0

    result = value_report.analyse(
        tx, calibration_end="1997-09-30", observation_end="1998-06-30", models=["bgnbd"],
        n_draws=0, discount_rate=0.0, margin=1.0, horizon_months=12,
    )
    assert result.zero_value_repeat_customers == len(zeroed) == 3
    assert int(result.spend_model.n_customers_) == int((result.customers["frequency"] > 0).sum()) - 3
    p, q, gamma = (result.spend_model.params_[k] for k in ("p", "q", "gamma"))
    rows = result.scores.loc[zeroed]
    x = rows["frequency"]
    np.testing.assert_allclose(rows["expected_spend"], p * gamma / (p * x + q - 1.0), rtol=1e-10)
    # undiscounted value over 12 months = expected purchases x expected spend
    weeks = 12 * 365.25 / 12 / 7
    purchases = result.final_model.expected_purchases(result.customers.loc[zeroed], t=weeks)
    np.testing.assert_allclose(rows["clv"], purchases * rows["expected_spend"], rtol=1e-6)
    assert (rows["clv"] > 0).all()


def test_unknown_models_are_rejected(cdnow_tx: pd.DataFrame) -> None:
    with pytest.raises(ParameterError, match="bgnbd"):
        value_report.analyse(cdnow_tx, models=["bg/nbd"])
    with pytest.raises(ParameterError, match="freq"):
        value_report.analyse(cdnow_tx, freq="Q")


def test_the_notebook_only_presents_the_analysis() -> None:
    """House rule: notebooks hold narrative, parameters and calls into custvalue."""
    nb = nbformat.read(REPO / "notebooks" / "value_report.ipynb", as_version=4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "value_report.analyse(" in code
    for logic in (".fit(", "customer_lifetime_value", "compare_models", "groupby(", ".agg("):
        assert logic not in code, logic


def test_comparison_for_readers_keeps_errors_out_of_the_table(
    cdnow: value_report.ValueReport,
) -> None:
    table = cdnow.comparison_table
    assert "error" not in table.columns and "warnings" not in table.columns
    assert set(table["fitted"]) == {"yes"} and cdnow.fit_failures == {}
    assert table["chosen"].sum() == 1 and table.index[table["chosen"]][0] == cdnow.chosen_name
    assert list(table.index) == list(cdnow.comparison.table.index)
