"""Covariates in the value report and in channel economics (issue 14, phase 2)."""

from __future__ import annotations

import html
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from lifetimes import ParetoNBDFitter

from custvalue import data, datasets, reports, value_report
from custvalue.errors import ParameterError
from custvalue.models import BetaGeoModel, GammaGammaModel, ParetoNBDModel
from custvalue.reports import value as value_module
from custvalue.segments import channel_economics
from custvalue.summary import rfm_summary
from custvalue.value import customer_lifetime_value

EFFECTS = {"purchase": {"channel": {"referral": 0.6}}, "dropout": {"channel": {"referral": -0.7}}}


@pytest.fixture(scope="module")
def sim():
    return datasets.simulate(1500, seed=5, process="pareto_nbd", covariate_effects=EFFECTS)


def test_value_report_analysis_shows_covariate_effects(sim):
    tx, _ = data.load_transactions(sim.transactions, attributes=("region", "channel"))
    result = value_report.analyse(tx, models=["pareto_nbd"], n_draws=0, covariates=["channel"])
    assert result.covariates == ["channel"]
    eff = result.covariate_effects
    assert "purchase:channel[referral]" in eff.index and "dropout:channel[referral]" in eff.index
    assert eff["sentence"].str.contains("times as").all()
    assert result.covariate_test["df"] == len(eff)
    # the refitted model values each customer with their channel
    assert isinstance(result.final_model, ParetoNBDModel) and result.final_model._has_covariates()
    assert result.reference_model.params_.index.tolist() == ["r", "alpha", "s", "beta"]
    assert "channel = " in result.covariate_reference_text
    with pytest.raises(ParameterError, match="not customer attributes"):
        value_report.analyse(tx, models=["pareto_nbd"], n_draws=0, covariates=["tier"])


def test_value_report_parameter_is_checked_before_running():
    spec = reports.get_report("value")
    assert "covariates" in spec.param_names
    with pytest.raises(ParameterError, match="not in 'attributes'"):
        value_module.check_params({"covariates": ["channel"], "attributes": [], "models": ["bgnbd"]})


@pytest.mark.slow
def test_value_report_runner_with_covariates(tmp_path: Path) -> None:
    res = reports.run(
        "value", data="simulated",
        params={"n_draws": 0, "models": "bgnbd", "attributes": ["channel", "region"],
                "covariates": ["channel"]},
        out=tmp_path, log=lambda line: None,
    )
    text = html.unescape(re.sub(r"<[^>]+>", " ", res.html.read_text()))
    assert "Covariate effects" in text
    assert "likelihood-ratio" in text and "times as often as those with channel =" in text
    assert "reference levels of the covariates" in text


def test_channel_economics_values_a_new_customer_per_channel(sim):
    rfm = rfm_summary(sim.transactions, freq="W")
    model = ParetoNBDModel(purchase_covariates=["channel"], dropout_covariates=["channel"]).fit(rfm)
    gg = GammaGammaModel().fit(rfm[rfm["frequency"] > 0])
    clv = customer_lifetime_value(model, gg, rfm, horizon=12, time_unit="M", discount_rate=0.1)
    costs = {"organic": 0.0, "paid_search": 25.0, "social": 15.0, "referral": 10.0}
    res = channel_economics(clv, rfm, by="channel", costs=costs, model=model, spend_model=gg,
                            horizon_months=12, n_draws=20, seed=1)
    table = res.table
    # reference: lifetimes' Pareto/NBD new-customer expectation at the channel's alpha_i, beta_i
    p = model.params_
    months = np.arange(1, 13)
    t = months * 365.25 / 12 / 7
    for ch in costs:
        ref = ParetoNBDFitter()
        ref.params_ = pd.Series({
            "r": p["r"], "alpha": p["alpha"] * np.exp(-p.get(f"purchase:channel[{ch}]", 0.0)),
            "s": p["s"], "beta": p["beta"] * np.exp(-p.get(f"dropout:channel[{ch}]", 0.0)),
        })
        cum = np.array([float(np.squeeze(ref.expected_number_of_purchases_up_to_time(x))) for x in t])
        expected = float(np.sum(np.diff(cum, prepend=0.0) * gg.expected_population_spend()
                                * 1.1 ** (-months / 12)))
        assert table.loc[ch, "new_customer_clv"] == pytest.approx(expected, rel=1e-6)
        assert table.loc[ch, "new_customer_clv_lower"] <= expected <= table.loc[ch, "new_customer_clv_upper"]
    paid = table["cac"] > 0
    np.testing.assert_allclose(
        table.loc[paid, "ltv_cac"], table.loc[paid, "new_customer_clv"] / table.loc[paid, "cac"]
    )
    assert table.loc["referral", "new_customer_clv"] > table.loc["organic", "new_customer_clv"]
    assert any("new_customer_clv" in n for n in res.notes)
    with pytest.raises(ParameterError, match="among its covariates"):
        channel_economics(clv, rfm, by="channel", model=BetaGeoModel().fit(rfm), horizon_months=12)


# --------------------------------------------------------------------------------------------
# the segment report's channel economics from the covariate model
# --------------------------------------------------------------------------------------------
SEGMENT_COSTS = "organic=0, paid_search=25, social=15, referral=10"


@pytest.fixture(scope="module")
def sim_tx(sim):
    tx, _ = data.load_transactions(sim.transactions, attributes=("region", "channel"))
    return tx


def test_segment_report_values_a_new_customer_per_channel_from_the_covariate_model(sim_tx):
    from custvalue.reports import segment as segment_module

    r = segment_module.analyse(sim_tx, freq="W", model="pareto_nbd", n_draws=10, seed=3,
                               costs=SEGMENT_COSTS, covariates=["channel"])
    model, gg = r.channel_model, r.channel_spend_model
    assert isinstance(model, ParetoNBDModel) and model._has_covariates()
    assert gg.covariate_encodings_  # spend covariates too: every channel has repeat buyers
    table = r.channels.table
    # reference: lifetimes' Pareto/NBD new-customer expectation at the channel's alpha_i, beta_i,
    # times the Gamma-Gamma mean spend p gamma_i / (q - 1) at the channel's gamma_i, discounted
    p, s = model.params_, gg.params_
    months = np.arange(1, 13)
    t = months * 365.25 / 12 / 7
    for ch in ("organic", "paid_search", "social", "referral"):
        ref = ParetoNBDFitter()
        ref.params_ = pd.Series({
            "r": p["r"], "alpha": p["alpha"] * np.exp(-p.get(f"purchase:channel[{ch}]", 0.0)),
            "s": p["s"], "beta": p["beta"] * np.exp(-p.get(f"dropout:channel[{ch}]", 0.0)),
        })
        cum = np.array([float(np.squeeze(ref.expected_number_of_purchases_up_to_time(x))) for x in t])
        gamma_i = s["gamma"] * np.exp(-s.get(f"spend:channel[{ch}]", 0.0))
        spend = s["p"] * gamma_i / (s["q"] - 1.0)
        expected = float(np.sum(np.diff(cum, prepend=0.0) * spend * 1.1 ** (-months / 12)))
        assert table.loc[ch, "new_customer_clv"] == pytest.approx(expected, rel=1e-6)
        lo, hi = table.loc[ch, "new_customer_clv_lower"], table.loc[ch, "new_customer_clv_upper"]
        assert lo <= expected <= hi
    paid = table["cac"] > 0
    np.testing.assert_allclose(
        table.loc[paid, "ltv_cac"], table.loc[paid, "new_customer_clv"] / table.loc[paid, "cac"]
    )
    # the simulation's referral customers buy more often and drop out less (EFFECTS)
    assert table.loc["referral", "new_customer_clv"] > table.loc["organic", "new_customer_clv"]
    assert "new customer acquired today" in r.channel_value_text
    assert "Pareto/NBD model fitted with the covariates channel" in r.channel_value_text
    assert r.covariate_effects["sentence"].str.contains("times as").all()
    assert r.covariates == ["channel"]


def test_segment_report_says_when_it_shows_the_per_channel_averages(sim_tx):
    from custvalue.reports import segment as segment_module

    r = segment_module.analyse(sim_tx, freq="W", model="bgnbd", n_draws=2, seed=3,
                               costs=SEGMENT_COSTS, covariates=["region"])
    assert r.channel_model is None
    assert "new_customer_clv" not in r.channels.table
    assert "average expected value of the channel's existing customers" in r.channel_value_text
    assert "do not include channel" in r.channel_value_text
    # the customers are still scored with the region covariates (and the text says so)
    assert list(r.transaction_model.covariate_encodings_["purchase"].columns) == ["region"]
    assert (r.covariate_effects["column"] == "region").all()
    assert "use each customer's region" in r.scoring_text
    plain = segment_module.analyse(sim_tx, freq="W", model="bgnbd", n_draws=2, seed=3)
    assert plain.covariate_effects is None and "no covariates were given" in plain.scoring_text
    with pytest.raises(ParameterError, match="not customer attributes"):
        segment_module.analyse(sim_tx, freq="W", model="bgnbd", n_draws=2, covariates=["tier"])
    with pytest.raises(ParameterError, match="not in 'attributes'"):
        reports.validate_params("segment", {"covariates": ["tier"], "attributes": ["channel"]})


@pytest.mark.slow
def test_segment_report_runner_with_covariates(tmp_path: Path) -> None:
    res = reports.run(
        "segment", data="simulated",
        params={"n_draws": 5, "model": "bgnbd", "covariates": ["channel"],
                "costs": "organic=0, paid_search=40, social=20, referral=15"},
        out=tmp_path, log=lambda line: None,
    )
    text = html.unescape(re.sub(r"<[^>]+>", " ", res.html.read_text()))
    assert "Channel economics" in text
    assert "new customer acquired today through each channel" in text
    assert "BG/NBD model fitted with the covariates channel" in text
    assert "times as often as those with channel =" in text


# --------------------------------------------------------------------------------------------
# scores, value tiers and lists at each customer's own rates
# --------------------------------------------------------------------------------------------
def _lifetimes_pnbd(params: pd.Series, ch: str) -> ParetoNBDFitter:
    ref = ParetoNBDFitter()
    ref.params_ = pd.Series({
        "r": params["r"], "alpha": params["alpha"] * np.exp(-params.get(f"purchase:channel[{ch}]", 0.0)),
        "s": params["s"], "beta": params["beta"] * np.exp(-params.get(f"dropout:channel[{ch}]", 0.0)),
    })
    return ref


def test_score_customers_scores_each_customer_at_her_own_rates(sim):
    from custvalue.segments import score_customers

    rfm = rfm_summary(sim.transactions, freq="W")
    before = rfm.copy()
    scored = score_customers(rfm, model="pareto_nbd", n_draws=5, seed=1, covariates=["channel"])
    model, gg = scored.transaction_model, scored.spend_model
    assert model._has_covariates() and list(gg.covariate_encodings_["spend"].columns) == ["channel"]
    assert "same covariates on the spend scale" in scored.spend_note
    out = scored.customers
    # reference: lifetimes' P(alive) at each channel's alpha_i, beta_i (independent code)
    for ch, rows in out.groupby("channel"):
        ref = _lifetimes_pnbd(model.params_, ch)
        expected = ref.conditional_probability_alive(rows["frequency"], rows["recency"], rows["T"])
        np.testing.assert_allclose(rows["p_alive"], np.asarray(expected, float), rtol=1e-6)
    pd.testing.assert_frame_equal(rfm, before)  # the caller's frame is not modified


def test_value_tier_draws_use_each_customers_rates(sim):
    """The posterior-predictive draws behind tier_probability broadcast the covariate-moved
    parameters: their mean per channel is lifetimes' conditional expectation at alpha_i, beta_i."""
    from custvalue.segments import _customer_params, _posterior_future

    rfm = rfm_summary(sim.transactions, freq="W")
    model = ParetoNBDModel(purchase_covariates=["channel"], dropout_covariates=["channel"]).fit(rfm)
    reps = 400
    big = rfm.loc[rfm.index.repeat(reps)]
    own = _customer_params(model, model.params_.to_dict(), big)
    assert isinstance(own["alpha"], np.ndarray) and isinstance(own["r"], float)
    x, T = big["frequency"].to_numpy(float), big["T"].to_numpy(float)
    p_alive = model.probability_alive(big).to_numpy(float)
    k = _posterior_future("pareto_nbd", own, x, T, p_alive, 26.0, np.random.default_rng(7))
    big = big.assign(k=k)
    for ch, rows in big.groupby("channel"):
        ref = _lifetimes_pnbd(model.params_, ch)
        sub = rows.iloc[::reps]
        expected = ref.conditional_expected_number_of_purchases_up_to_time(
            26.0, sub["frequency"], sub["recency"], sub["T"]
        )
        mean = float(np.mean(np.asarray(expected, float)))
        se = rows["k"].std() / np.sqrt(len(rows))
        assert abs(rows["k"].mean() - mean) < 4 * se, (ch, rows["k"].mean(), mean, se)
