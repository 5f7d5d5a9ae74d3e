"""Tests for custvalue.datasets: bundled data and the simulator with known truth.

Reference values come from the raw files shipped with lifetimes (row counts, lifetimes' own
CDNOW summary), from the closed forms of the generating models, and from lifetimes'
independent implementations of those closed forms:

* BG/NBD, Fader, Hardie & Lee (2005), "Counting your customers the easy way", Marketing Science
  24(2): eq. (7) E[X(t)] and eq. (8) at x = 0, P(X(t) = 0) = (alpha / (alpha + t)) ** r.
* MBG/NBD, Batislam, Denizel & Filiztekin (2007), IJRM 24(3): E[X(t)] = b / (a - 1)
  [1 - (alpha / (alpha + t)) ** r 2F1(r, b + 1; a + b; t / (alpha + t))].
* Pareto/NBD, Schmittlein, Morrison & Colombo (1987), Management Science 33(1); E[X(t)] =
  r beta / (alpha (s - 1)) [1 - (beta / (beta + t)) ** (s - 1)] and P(alive at t) =
  (beta / (beta + t)) ** s for a new customer (Fader & Hardie 2005, "A note on deriving the
  Pareto/NBD model and related expressions", brucehardie.com note 009).
* Gamma-Gamma, Fader, Hardie & Lee (2005b) "RFM and CLV", JMR 42(4): E[Z] = p gamma / (q - 1).
* sBG, Fader & Hardie (2007) "How to project customer retention", JIM 21(1):
  S(t) = B(alpha, beta + t) / B(alpha, beta).

Comparisons of simulated averages with closed forms allow 4 standard errors; parameter
recovery by a fitted model (lifetimes', or the package's own pipeline) allows 3.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import mpmath
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special, stats

from custvalue.datasets import (
    DEFAULT_BGNBD_PARAMS,
    DEFAULT_PARETO_NBD_PARAMS,
    DEFAULT_SPEND_PARAMS,
    DEFAULT_SUBSCRIPTION,
    Simulation,
    load_cdnow,
    load_donations,
    simulate,
)
from custvalue.errors import ParameterError

LIFETIMES_DATA = Path(importlib.util.find_spec("lifetimes").submodule_search_locations[0]) / "datasets"


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------


def _repeat_counts(sim: Simulation) -> pd.Series:
    """Repeat transactions per customer (rows - 1), indexed by customer_id."""
    n = sim.transactions.groupby("customer_id").size()
    return (n - 1).reindex(sim.customers["customer_id"], fill_value=0)


def _exposure_days(sim: Simulation) -> np.ndarray:
    """Days each customer is observed after acquisition (mid-day of the first purchase)."""
    end_plus = sim.truth["observation_end"] + pd.Timedelta(days=1)
    return ((end_plus - sim.customers["first_purchase"]).dt.days - 0.5).to_numpy()


def _bgnbd_expected(r: float, alpha: float, a: float, b: float, t: float) -> float:
    """Fader, Hardie & Lee (2005) eq. (7), evaluated with mpmath."""
    z = t / (alpha + t)
    val = (a + b - 1) / (a - 1) * (
        1 - (alpha / (alpha + t)) ** r * mpmath.hyp2f1(r, b, a + b - 1, z)
    )
    return float(val)


def _pareto_expected(r: float, alpha: float, s: float, beta: float, t: float) -> float:
    return r * beta / (alpha * (s - 1)) * (1 - (beta / (beta + t)) ** (s - 1))


def _per_day_mean(fn, exposure: np.ndarray) -> float:
    """Mean of fn(T_i) over customers, evaluating fn once per distinct exposure."""
    values, counts = np.unique(exposure, return_counts=True)
    return float(np.sum([fn(v) * c for v, c in zip(values, counts, strict=True)]) / counts.sum())


def _within(observed: float, expected: float, se: float, k: float = 4.0) -> None:
    assert abs(observed - expected) <= k * se, (
        f"observed {observed:.5g}, expected {expected:.5g}, |diff| = "
        f"{abs(observed - expected):.3g} > {k} SE = {k * se:.3g}"
    )


# ------------------------------------------------------------------------------------------
# bundled data
# ------------------------------------------------------------------------------------------


def test_cdnow_master_counts_and_schema():
    tx = load_cdnow("master")
    assert len(tx) == 69_659
    assert tx["customer_id"].nunique() == 23_570
    assert list(tx.columns[:3]) == ["customer_id", "date", "amount"]
    assert "quantity" in tx.columns
    assert tx["customer_id"].dtype == np.int64
    assert tx["amount"].dtype == np.float64
    assert pd.api.types.is_datetime64_any_dtype(tx["date"]) and tx["date"].dt.tz is None
    # first purchases in Q1 1997, observation until end of June 1998 (Fader, Hardie & Lee 2005)
    assert tx.groupby("customer_id")["date"].min().max() <= pd.Timestamp("1997-03-31")
    assert tx["date"].min() == pd.Timestamp("1997-01-01")
    assert tx["date"].max() == pd.Timestamp("1998-06-30")
    assert (tx["amount"] >= 0).all()


def test_cdnow_master_matches_raw_file_lines():
    tx = load_cdnow("master")
    lines = (LIFETIMES_DATA / "CDNOW_master.txt").read_text().split("\n")[1:]
    rows = [ln.split() for ln in lines if ln.strip()]
    raw_total = sum(float(r[3]) for r in rows)
    raw_cds = sum(int(r[2]) for r in rows)
    assert tx["amount"].sum() == pytest.approx(raw_total, rel=1e-12)
    assert tx["quantity"].sum() == raw_cds
    first = tx.iloc[0]
    assert (first["customer_id"], first["date"], first["amount"], first["quantity"]) == (
        1, pd.Timestamp("1997-01-01"), 11.77, 1)


def test_cdnow_sample_matches_lifetimes_shipped_summary():
    tx = load_cdnow("sample")
    assert len(tx) == 6_919
    assert tx["customer_id"].nunique() == 2_357
    assert set(tx["customer_id"]) == set(range(1, 2358))
    # lifetimes' cdnow_customers_summary.csv: 39-week calibration period ending 1997-09-30,
    # x = repeat purchase days, t_x = weeks from first to last purchase.
    ref = pd.read_csv(LIFETIMES_DATA / "cdnow_customers_summary.csv").set_index("ID")
    cal = tx[tx["date"] <= pd.Timestamp("1997-09-30")]
    days = cal.drop_duplicates(["customer_id", "date"]).groupby("customer_id")["date"]
    x = days.size() - 1
    t_x = (days.max() - days.min()).dt.days / 7
    np.testing.assert_array_equal(x.reindex(ref.index).to_numpy(), ref["frequency"].to_numpy())
    np.testing.assert_allclose(t_x.reindex(ref.index).to_numpy(), ref["recency"].to_numpy(),
                               atol=0.006)
    # the sample's customers are a subset of the master's, with the same transactions
    master = load_cdnow("master")
    merged = tx.merge(master, left_on=["master_customer_id", "date", "amount"],
                      right_on=["customer_id", "date", "amount"], how="left", indicator=True)
    assert (merged["_merge"] == "both").all()


def test_cdnow_rejects_unknown_kind():
    with pytest.raises(ParameterError, match="master"):
        load_cdnow("full")


def test_load_cdnow_does_not_import_lifetimes():
    import subprocess
    import sys

    code = ("import sys; from custvalue.datasets import load_cdnow; load_cdnow('sample'); "
            "print('lifetimes' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_missing_lifetimes_gives_a_clear_error(monkeypatch):
    import custvalue.datasets as ds

    real = importlib.util.find_spec
    monkeypatch.setattr(ds.importlib.util, "find_spec",
                        lambda name, *a: None if name == "lifetimes" else real(name, *a))
    with pytest.raises(ModuleNotFoundError, match="pip install lifetimes"):
        load_cdnow("master")
    with pytest.raises(ModuleNotFoundError, match=r"donations\.csv"):
        load_donations()


def test_donations_summary():
    d = load_donations()
    assert list(d.columns) == ["frequency", "recency", "T", "weight"]
    assert d["weight"].sum() == 11_104
    assert (d["T"] == 6).all()
    assert (d["frequency"] <= d["recency"]).all() and (d["recency"] <= d["T"]).all()
    assert ((d["frequency"] == 0) == (d["recency"] == 0)).all()
    # published cell: 3,464 donors never gave again (Fader, Hardie & Shang 2010, Table 1)
    assert d.loc[d["frequency"] == 0, "weight"].sum() == 3_464


# ------------------------------------------------------------------------------------------
# simulator: structure
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bg_sim() -> Simulation:
    return simulate(60_000, seed=11)


@pytest.fixture(scope="module")
def pareto_sim() -> Simulation:
    return simulate(60_000, seed=12, process="pareto_nbd")


def test_simulate_is_deterministic_for_a_seed():
    kw = dict(loyalty=True, winback=True)
    a, b = simulate(3_000, 5, **kw), simulate(3_000, 5, **kw)
    for name in ("transactions", "customers", "memberships", "campaign"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name))
    assert a.truth == b.truth
    c = simulate(3_000, 6, **kw)
    assert not a.transactions["amount"].equals(c.transactions["amount"])
    s1, s2 = simulate(2_000, 3, mode="subscription"), simulate(2_000, 3, mode="subscription")
    pd.testing.assert_frame_equal(s1.subscriptions, s2.subscriptions)
    pd.testing.assert_frame_equal(s1.transactions, s2.transactions)


def test_transactions_are_canonical_and_within_dates(bg_sim):
    tx, cust, truth = bg_sim.transactions, bg_sim.customers, bg_sim.truth
    assert list(tx.columns) == ["customer_id", "date", "amount", "region", "channel", "category"]
    assert tx["customer_id"].dtype == np.int64 and tx["amount"].dtype == np.float64
    assert pd.api.types.is_datetime64_any_dtype(tx["date"]) and tx["date"].dt.tz is None
    assert not tx.isna().any().any()
    assert tx["date"].min() >= pd.Timestamp("2022-01-01")
    assert tx["date"].max() <= truth["observation_end"] == pd.Timestamp("2023-12-31")
    assert tx["date"].is_monotonic_increasing
    assert (tx["amount"] >= 0.01).all()
    # ids 1..n, each customer has her first purchase on first_purchase, within acquisition
    np.testing.assert_array_equal(cust["customer_id"], np.arange(1, len(cust) + 1))
    first = tx.groupby("customer_id")["date"].min()
    pd.testing.assert_series_equal(
        first.reindex(cust["customer_id"]).reset_index(drop=True),
        cust["first_purchase"], check_names=False)
    assert cust["first_purchase"].max() < pd.Timestamp("2022-01-01") + pd.Timedelta(days=365)
    # attributes per customer are constant across her transactions
    per_cust = tx.groupby("customer_id")[["region", "channel"]].nunique()
    assert (per_cust == 1).all().all()
    assert truth["n_transactions"] == len(tx)
    assert bg_sim.memberships is None and bg_sim.campaign is None and bg_sim.subscriptions is None
    assert "Simulation(" in repr(bg_sim) and len(repr(bg_sim)) < 200


def test_default_scale_is_about_three_transactions_per_customer(bg_sim, pareto_sim):
    # benchmarks rely on ~2.7-3M transactions per million customers
    for sim in (bg_sim, pareto_sim):
        assert 2.5 < len(sim.transactions) / len(sim.customers) < 3.3


def test_dropout_times_are_consistent_with_purchases(bg_sim, pareto_sim):
    for sim in (bg_sim, pareto_sim):
        last = sim.transactions.groupby("customer_id")["date"].max()
        cust = sim.customers.set_index("customer_id")
        dead = ~cust["alive_at_end"]
        assert (cust.loc[dead, "dropout_date"].notna()).all()
        assert cust.loc[~dead, "dropout_date"].isna().all()
        # nobody buys after dropping out
        assert (last[dead] <= cust.loc[dead, "dropout_date"]).all()
        assert (cust["lifetime_days"] > 0).all()
    # BG/NBD: dropout happens right after a repeat purchase (FHL 2005, assumption iii)
    cust = bg_sim.customers.set_index("customer_id")
    last = bg_sim.transactions.groupby("customer_id")["date"].max()
    dead = ~cust["alive_at_end"]
    pd.testing.assert_series_equal(last[dead], cust.loc[dead, "dropout_date"], check_names=False)
    n_tx = bg_sim.transactions.groupby("customer_id").size()
    assert (n_tx[dead] >= 2).all()


# ------------------------------------------------------------------------------------------
# simulator: known truth against closed forms
# ------------------------------------------------------------------------------------------


def test_bgnbd_repeat_purchases_match_eq7(bg_sim):
    p = DEFAULT_BGNBD_PARAMS
    x = _repeat_counts(bg_sim).to_numpy()
    exposure = _exposure_days(bg_sim)
    expected = _per_day_mean(lambda t: _bgnbd_expected(p["r"], p["alpha"], p["a"], p["b"], t),
                             exposure)
    _within(x.mean(), expected, x.std(ddof=1) / math.sqrt(x.size))


def test_bgnbd_zero_repeat_share_matches_nbd_zero_class(bg_sim):
    # FHL 2005 eq. (8) at x = 0: no purchase means no chance to drop out, so NBD's zero term
    p = DEFAULT_BGNBD_PARAMS
    zero = (_repeat_counts(bg_sim).to_numpy() == 0)
    expected = float(np.mean((p["alpha"] / (p["alpha"] + _exposure_days(bg_sim))) ** p["r"]))
    _within(zero.mean(), expected, math.sqrt(expected * (1 - expected) / zero.size))


def test_bgnbd_in_weeks_with_other_params():
    params = {"r": 0.8, "alpha": 6.0, "a": 1.5, "b": 4.0}  # weekly units
    sim = simulate(40_000, seed=3, params=params, time_unit="W", acquisition_period="1D")
    assert sim.truth["params"] == params and sim.truth["time_unit"] == "W"
    assert sim.truth["params_daily"]["alpha"] == pytest.approx(42.0)
    x = _repeat_counts(sim).to_numpy()
    weeks = _exposure_days(sim) / 7.0
    expected = _per_day_mean(lambda t: _bgnbd_expected(0.8, 6.0, 1.5, 4.0, t), weeks)
    _within(x.mean(), expected, x.std(ddof=1) / math.sqrt(x.size))
    # latent rates are Gamma(r, alpha) per day: mean r / alpha_days
    lam = sim.customers["lambda"].to_numpy()
    _within(lam.mean(), 0.8 / 42.0, lam.std(ddof=1) / math.sqrt(lam.size))
    pv = sim.customers["p"].to_numpy()
    _within(pv.mean(), 1.5 / 5.5, pv.std(ddof=1) / math.sqrt(pv.size))


def test_pareto_nbd_repeat_purchases_match_closed_form(pareto_sim):
    p = DEFAULT_PARETO_NBD_PARAMS
    x = _repeat_counts(pareto_sim).to_numpy()
    expected = _per_day_mean(
        lambda t: _pareto_expected(p["r"], p["alpha"], p["s"], p["beta"], t),
        _exposure_days(pareto_sim))
    _within(x.mean(), expected, x.std(ddof=1) / math.sqrt(x.size))
    # P(alive at T) for a new customer: (beta / (beta + T)) ** s (Schmittlein et al. 1987)
    alive = pareto_sim.customers["alive_at_end"].to_numpy()
    exp_alive = float(np.mean((p["beta"] / (p["beta"] + _exposure_days(pareto_sim))) ** p["s"]))
    _within(alive.mean(), exp_alive, math.sqrt(exp_alive * (1 - exp_alive) / alive.size))


def test_default_params_expressed_in_the_requested_unit():
    daily = simulate(500, 1)
    weekly = simulate(500, 1, time_unit="W")
    assert weekly.truth["time_unit"] == "W"
    assert weekly.truth["params"]["alpha"] == pytest.approx(4.414)  # FHL 2005 CDNOW, weeks
    assert weekly.truth["params_daily"] == pytest.approx(daily.truth["params_daily"])
    pd.testing.assert_frame_equal(daily.transactions, weekly.transactions)


def test_pareto_nbd_other_params():
    params = {"r": 2.0, "alpha": 100.0, "s": 1.5, "beta": 200.0}
    sim = simulate(30_000, seed=8, process="Pareto/NBD", params=params)
    x = _repeat_counts(sim).to_numpy()
    expected = _per_day_mean(lambda t: _pareto_expected(2.0, 100.0, 1.5, 200.0, t),
                             _exposure_days(sim))
    _within(x.mean(), expected, x.std(ddof=1) / math.sqrt(x.size))


def _lifetimes_expectation(fitter_cls, params: dict, exposure: np.ndarray) -> float:
    """Mean over customers of lifetimes' expected repeat purchases for a new customer."""
    model = fitter_cls()
    model.params_ = pd.Series(params)
    values, counts = np.unique(exposure, return_counts=True)
    expected = np.asarray(model.expected_number_of_purchases_up_to_time(values), dtype=float)
    return float(np.sum(expected * counts) / counts.sum())


def test_bgnbd_and_pareto_agree_with_lifetimes_expectations(bg_sim, pareto_sim):
    from lifetimes import BetaGeoFitter, ParetoNBDFitter

    for sim, fitter, params in ((bg_sim, BetaGeoFitter, DEFAULT_BGNBD_PARAMS),
                                (pareto_sim, ParetoNBDFitter, DEFAULT_PARETO_NBD_PARAMS)):
        x = _repeat_counts(sim).to_numpy()
        expected = _lifetimes_expectation(fitter, params, _exposure_days(sim))
        _within(x.mean(), expected, x.std(ddof=1) / math.sqrt(x.size))


def test_lifetimes_fit_recovers_the_true_parameters():
    """An independent fitter (lifetimes) recovers the truth from the simulated log.

    The summary counts every transaction and measures times in exact days, so no purchases are
    merged: what is left is sampling error.
    """
    from lifetimes import BetaGeoFitter

    sim = simulate(20_000, seed=3)
    tx, end = sim.transactions, sim.truth["observation_end"]
    g = tx.groupby("customer_id")["date"]
    x = g.size() - 1
    t_x = (g.max() - g.min()).dt.days.astype(float)
    big_t = (end - g.min()).dt.days + 0.5
    fit = BetaGeoFitter().fit(x, t_x, big_t)
    for name, true in sim.truth["params"].items():
        _within(fit.params_[name], true, fit.standard_errors_[name], k=3.0)
    # same-day purchases are counted, and they are what a daily summary would merge
    dup = tx.duplicated(["customer_id", "date"]).sum()
    assert sim.truth["same_day_purchases"] == dup
    assert 0 < dup < 0.03 * x.sum()


def test_mbgnbd_matches_lifetimes_and_its_zero_class():
    from lifetimes import ModifiedBetaGeoFitter

    params = {"r": 0.5, "alpha": 40.0, "a": 1.2, "b": 3.0}
    sim = simulate(60_000, seed=14, process="MBG/NBD", params=params)
    assert sim.truth["process"] == "mbgnbd"
    x = _repeat_counts(sim).to_numpy()
    exposure = _exposure_days(sim)
    # Batislam et al. (2007): E[X(t)] = b/(a-1) [1 - (alpha/(alpha+t))^r 2F1(r, b+1; a+b; z)]
    expected = _per_day_mean(
        lambda t: float(3.0 / 0.2 * (1 - (40 / (40 + t)) ** 0.5
                                     * mpmath.hyp2f1(0.5, 4.0, 4.2, t / (40 + t)))),
        exposure)
    _within(x.mean(), expected, x.std(ddof=1) / math.sqrt(x.size))
    lt = _lifetimes_expectation(ModifiedBetaGeoFitter, params, exposure)
    assert lt == pytest.approx(expected, rel=1e-6)
    # no repeat purchase: dropped right after the first (prob E[p]) or no purchase yet
    zero = x == 0
    exp_zero = float(np.mean(1.2 / 4.2 + 3.0 / 4.2 * (40 / (40 + exposure)) ** 0.5))
    _within(zero.mean(), exp_zero, math.sqrt(exp_zero * (1 - exp_zero) / zero.size))
    # those who dropped out at once have their dropout on the first purchase day
    cust = sim.customers
    at_once = cust["lifetime_days"] == 0
    assert at_once.any()
    assert (cust.loc[at_once, "dropout_date"] == cust.loc[at_once, "first_purchase"]).all()
    assert (x[at_once.to_numpy()] == 0).all()


def test_gamma_gamma_mean_transaction_value(bg_sim):
    p, q, g = DEFAULT_SPEND_PARAMS["p"], DEFAULT_SPEND_PARAMS["q"], DEFAULT_SPEND_PARAMS["gamma"]
    mean = p * g / (q - 1)
    # Var(Z) = E[Var(Z|nu)] + Var(E[Z|nu]) with 1/nu ~ InvGamma(q, gamma)
    e_inv2 = g**2 / ((q - 1) * (q - 2))
    var = p * e_inv2 + p**2 * (e_inv2 - (g / (q - 1)) ** 2)
    # first purchases are one draw per customer, independent across customers
    first = bg_sim.transactions.drop_duplicates("customer_id")["amount"].to_numpy()
    _within(first.mean(), mean, math.sqrt(var / first.size))
    assert bg_sim.truth["mean_transaction_value"] == pytest.approx(mean)
    # each customer's amounts scatter around her own true mean spend p / nu
    tx = bg_sim.transactions
    ms = bg_sim.customers.set_index("customer_id")["mean_spend"]
    ratio = tx["amount"].sum() / ms.reindex(tx["customer_id"]).sum()
    assert ratio == pytest.approx(1.0, abs=0.01)


def test_channels_change_who_buys_not_the_population():
    sim = simulate(50_000, seed=21)
    cust = sim.customers
    r, alpha = DEFAULT_BGNBD_PARAMS["r"], DEFAULT_BGNBD_PARAMS["alpha"]
    # pooled lambda is still exactly Gamma(r, alpha)
    ks = stats.kstest(cust["lambda"], stats.gamma(a=r, scale=1 / alpha).cdf)
    assert ks.pvalue > 1e-3
    means = cust.groupby("channel", observed=True)["lambda"].mean()
    # tilts: referral 0.5 > organic 0.3 > paid_search 0 > social -0.4
    assert means["referral"] > means["organic"] > means["paid_search"] > means["social"]
    costs = cust.groupby("channel", observed=True)["acquisition_cost"].unique()
    assert {k: float(v[0]) for k, v in costs.items()} == {
        "organic": 0.0, "paid_search": 25.0, "social": 15.0, "referral": 10.0}
    shares = cust["channel"].value_counts(normalize=True)
    for name, info in sim.truth["channels"].items():
        assert abs(shares[name] - info["share"]) < 0.03
        assert info["mean_lambda"] == pytest.approx(means[name])


def test_custom_attributes_and_no_tilt():
    sim = simulate(20_000, seed=4, regions=["A", "B"],
                   channels={"web": {"share": 3, "cost": 5.0}, "store": {"share": 1, "cost": 9.0}},
                   categories={"x": 1.0})
    cust = sim.customers
    assert set(cust["region"].cat.categories) == {"A", "B"}
    share = (cust["channel"] == "web").mean()
    _within(share, 0.75, math.sqrt(0.75 * 0.25 / len(cust)))
    assert (sim.transactions["category"] == "x").all()
    # without tilt, channels are independent of the purchase rate
    lam = cust.groupby("channel", observed=True)["lambda"]
    diff = lam.mean()["web"] - lam.mean()["store"]
    se = math.sqrt((lam.var() / lam.size()).sum())
    _within(diff, 0.0, se)


def test_subscription_survival_matches_sbg():
    a, b = 0.7, 2.5
    sim = simulate(60_000, seed=9, mode="subscription", subscription={"alpha": a, "beta": b})
    cust, subs, tx = sim.customers, sim.subscriptions, sim.transactions
    assert sim.truth["process"] == "sbg" and sim.truth["params"] == {"alpha": a, "beta": b}
    life = cust["lifetime_periods"].to_numpy()
    for t in (1, 2, 3, 6, 12):
        s_t = math.exp(special.betaln(a, b + t) - special.betaln(a, b))
        _within((life > t).mean(), s_t, math.sqrt(s_t * (1 - s_t) / life.size))
    # the same from the observable records: subscribers observed for >= t months
    month = pd.Timedelta(days=365.25 / 12)
    end_obs = sim.truth["observation_end"] + pd.Timedelta(days=1)
    for t in (3, 9):
        observed = subs["start"] + t * month <= end_obs - pd.Timedelta(days=1)
        # dates are whole days: months paid = round((end - start) / month)
        paid = ((subs["end"] - subs["start"]) / month).round()
        active = subs["end"].isna() | (paid > t)
        s_t = math.exp(special.betaln(a, b + t) - special.betaln(a, b))
        frac = active[observed].mean()
        _within(frac, s_t, math.sqrt(s_t * (1 - s_t) / observed.sum()))
    # records: end NaT exactly while active, after the start, within the window
    ended = subs["end"].notna()
    paid = ((subs["end"] - subs["start"]) / month).round()[ended].astype(int)
    np.testing.assert_array_equal(paid.to_numpy(), life[ended.to_numpy()])
    assert (subs["end"].isna() == cust["alive_at_end"]).all()
    assert (subs["end"].dropna() > subs.loc[subs["end"].notna(), "start"]).all()
    assert subs["end"].max() <= sim.truth["observation_end"]
    # payments: one per started month, at the plan price
    n_pay = tx.groupby("customer_id").size().reindex(cust["customer_id"]).to_numpy()
    months_observed = np.ceil(((end_obs - cust["first_purchase"]).dt.days) / (365.25 / 12))
    assert np.all(n_pay <= life) and np.all(n_pay <= months_observed + 1)
    price = cust.set_index("customer_id")["price"]
    np.testing.assert_array_equal(tx["amount"].to_numpy(), price.reindex(tx["customer_id"]).to_numpy())
    assert set(tx["category"].cat.categories) == set(DEFAULT_SUBSCRIPTION["plans"])


def test_subscription_plans_and_default_params():
    sim = simulate(20_000, seed=2, mode="subscription")
    assert sim.truth["params"] == {"alpha": DEFAULT_SUBSCRIPTION["alpha"],
                                   "beta": DEFAULT_SUBSCRIPTION["beta"]}
    theta = sim.customers["theta"].to_numpy()
    mean = DEFAULT_SUBSCRIPTION["alpha"] / (DEFAULT_SUBSCRIPTION["alpha"] + DEFAULT_SUBSCRIPTION["beta"])
    _within(theta.mean(), mean, theta.std(ddof=1) / math.sqrt(theta.size))
    shares = sim.subscriptions["plan"].value_counts(normalize=True)
    for plan, info in DEFAULT_SUBSCRIPTION["plans"].items():
        _within(shares[plan], info["share"], math.sqrt(info["share"] / len(theta)))
        assert (sim.subscriptions.loc[sim.subscriptions["plan"] == plan, "price"] == info["price"]).all()
    assert sim.memberships is None and sim.campaign is None


# ------------------------------------------------------------------------------------------
# loyalty programme and win-back campaign
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def loyalty_sim() -> Simulation:
    return simulate(60_000, seed=31, loyalty={"effect": 1.5, "launch": "2023-01-01",
                                              "join_rate": 0.003, "selection": 1.0})


def test_loyalty_members_self_select(loyalty_sim):
    sim = loyalty_sim
    launch = pd.Timestamp("2023-01-01")
    mem = sim.memberships
    assert list(mem.columns) == ["customer_id", "join_date"]
    assert 0 < len(mem) < len(sim.customers)
    assert (mem["join_date"] >= launch).all()
    assert mem["join_date"].max() <= sim.truth["observation_end"]
    # everyone was acquired in 2022, before launch: compare purchases in the pre-launch period
    tx = sim.transactions
    pre = tx[tx["date"] < launch].groupby("customer_id").size()
    pre = pre.reindex(sim.customers["customer_id"], fill_value=0)
    joined = sim.customers["customer_id"].isin(mem["customer_id"]).to_numpy()
    a, b = pre.to_numpy()[joined], pre.to_numpy()[~joined]
    se = math.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)
    assert a.mean() - b.mean() > 4 * se
    assert (sim.customers.loc[joined, "lambda"].mean()
            > 2 * sim.customers.loc[~joined, "lambda"].mean())
    assert sim.truth["loyalty"]["effect"] == 1.5
    assert sim.truth["loyalty"]["n_members"] == len(mem)


def _post_join_ratio(sim: Simulation) -> tuple[float, float]:
    """Members' purchases after the join day / expected at the base rate, with Poisson SE."""
    cust = sim.customers.set_index("customer_id")
    mem = cust[cust["member"]]
    end_plus = sim.truth["observation_end"] + pd.Timedelta(days=1)
    # acquisition happened within the first-purchase day: take its middle
    drop = mem["first_purchase"] + pd.to_timedelta(
        np.minimum(mem["lifetime_days"].to_numpy(), 1e4) + 0.5, unit="D")
    until = drop.where(drop < end_plus, end_plus)
    # count purchases from the day after joining on, against exposure from that day on
    exposure = (until - (mem["join_date"] + pd.Timedelta(days=1))).dt.total_seconds() / 86400
    base = float((mem["lambda"] * exposure.clip(lower=0)).sum())
    tx = sim.transactions.merge(mem["join_date"], left_on="customer_id", right_index=True)
    count = int((tx["date"] > tx["join_date"]).sum())
    return count / base, math.sqrt(count) / base


def test_loyalty_effect_is_the_purchase_rate_lift(loyalty_sim):
    ratio, se = _post_join_ratio(loyalty_sim)
    _within(ratio, 1.5, se + 0.02)
    # the same measurement without an effect gives 1: the test measures the lift, not an artefact
    none = simulate(60_000, seed=31, loyalty={"effect": 1.0, "launch": "2023-01-01",
                                              "join_rate": 0.003})
    ratio0, se0 = _post_join_ratio(none)
    _within(ratio0, 1.0, se0 + 0.02)


def test_loyalty_keeps_non_members_on_the_base_process():
    base = simulate(20_000, seed=40)
    with_prog = simulate(20_000, seed=40, loyalty=True)
    # dropout times are not changed by the programme
    np.testing.assert_array_equal(base.customers["lifetime_days"],
                                  with_prog.customers["lifetime_days"])
    assert with_prog.customers["member"].sum() == len(with_prog.memberships)


@pytest.fixture(scope="module")
def winback_sim() -> Simulation:
    return simulate(80_000, seed=51, winback={"effect": 0.12, "send_date": "2023-09-01",
                                              "lapsed_days": 120, "response_days": 30})


def test_winback_targets_lapsed_customers(winback_sim):
    sim = winback_sim
    send = pd.Timestamp("2023-09-01")
    camp = sim.campaign
    assert list(camp.columns) == ["customer_id", "group", "send_date"]
    assert (camp["send_date"] == send).all()
    tx = sim.transactions
    before = tx[tx["date"] < send]
    last = before.groupby("customer_id")["date"].max()
    lapsed = last[last <= send - pd.Timedelta(days=120)].index
    assert set(camp["customer_id"]) == set(lapsed)
    counts = camp["group"].value_counts()
    assert abs(counts["treatment"] - counts["control"]) <= 1


def test_winback_groups_are_balanced_and_effect_is_recovered(winback_sim):
    sim = winback_sim
    send = pd.Timestamp("2023-09-01")
    camp = sim.campaign.set_index("customer_id")
    tx = sim.transactions
    pre = tx[tx["date"] < send].groupby("customer_id").size().reindex(camp.index, fill_value=0)
    window = tx[(tx["date"] >= send) & (tx["date"] < send + pd.Timedelta(days=30))]
    resp = window.groupby("customer_id").size().reindex(camp.index, fill_value=0)
    lam = sim.customers.set_index("customer_id")["lambda"].reindex(camp.index)
    treat = (camp["group"] == "treatment").to_numpy()

    def diff(values: pd.Series) -> tuple[float, float]:
        a, b = values.to_numpy()[treat], values.to_numpy()[~treat]
        return a.mean() - b.mean(), math.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)

    d_pre, se_pre = diff(pre)
    _within(d_pre, 0.0, se_pre)  # randomised: no pre-period difference
    d_lam, se_lam = diff(lam)
    _within(d_lam, 0.0, se_lam)
    d_resp, se_resp = diff(resp)
    _within(d_resp, 0.12, se_resp)  # average treatment effect on purchases in the window
    assert sim.truth["campaign"]["effect"] == 0.12
    assert sim.truth["campaign"]["n_treatment"] == int(treat.sum())


# ------------------------------------------------------------------------------------------
# errors
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_customers": 0}, "n_customers"),
        ({"n_customers": 2.5}, "n_customers"),
        ({"process": "nbd"}, "process"),
        ({"params": {"r": -1, "alpha": 1, "a": 1, "b": 1}}, "positive"),
        ({"params": {"r": 1, "alpha": 1}}, "missing"),
        ({"acquisition_period": "800D"}, "acquisition_period"),
        ({"end": "2021-01-01"}, "before start"),
        ({"start": "not a date"}, "start"),
        ({"spend_params": {"p": 1, "q": 0, "gamma": 1}}, "spend_params"),
        ({"channels": {"web": {"share": 1, "price": 3}}}, "unknown keys"),
        ({"regions": {"A": -1, "B": 2}}, "regions"),
        ({"winback": {"treatment_share": 1.0}}, "treatment_share"),
        ({"winback": {"send_date": "2023-12-30"}}, "response_days"),
        ({"loyalty": {"join_rate": 0}}, "join_rate"),
        ({"loyalty": {"bonus": 2}}, "unknown keys"),
        ({"loyalty": {"effect": "big"}}, "not a number"),
        ({"winback": {"effect": None}}, "not a number"),
        ({"mode": "contract"}, "mode"),
        ({"mode": "subscription", "loyalty": True}, "subscription"),
        ({"subscription": {"alpha": 1, "beta": 1}}, "mode='subscription'"),
        ({"mode": "subscription", "subscription": {"alpha": 0}}, "alpha"),
        ({"mode": "subscription", "params": dict(DEFAULT_BGNBD_PARAMS)}, "params"),
        ({"time_unit": "fortnight", "params": dict(DEFAULT_BGNBD_PARAMS)}, "time unit"),
    ],
)
def test_invalid_arguments_raise_parameter_error(kwargs, match):
    args = {"n_customers": 100, "seed": 0, **kwargs}
    with pytest.raises(ParameterError, match=match):
        simulate(**args)


def test_end_as_duration_and_as_date_agree():
    a = simulate(2_000, 1, end="365D", acquisition_period=100)
    b = simulate(2_000, 1, end="2022-12-31", acquisition_period="100D")
    pd.testing.assert_frame_equal(a.transactions, b.transactions)
    assert a.truth["observation_end"] == pd.Timestamp("2022-12-31")


# ------------------------------------------------------------------------------------------
# property test: any valid configuration gives a valid transaction log
# ------------------------------------------------------------------------------------------


@settings(max_examples=40)
@given(
    n=st.integers(1, 300),
    seed=st.integers(0, 2**32 - 1),
    process=st.sampled_from(["bgnbd", "mbgnbd", "pareto_nbd"]),
    r=st.floats(0.05, 5.0),
    alpha=st.floats(0.5, 500.0),
    c1=st.floats(0.05, 5.0),
    c2=st.floats(0.05, 500.0),
    window=st.integers(30, 1500),
    acq_frac=st.floats(0.01, 1.0),
    loyalty=st.booleans(),
)
def test_any_valid_configuration_gives_a_valid_log(n, seed, process, r, alpha, c1, c2, window,
                                                   acq_frac, loyalty):
    if process in ("bgnbd", "mbgnbd"):
        params = {"r": r, "alpha": alpha, "a": c1, "b": c2}
    else:
        params = {"r": r, "alpha": alpha, "s": c1, "beta": c2}
    sim = simulate(n, seed, process=process, params=params, end=window,
                   acquisition_period=max(1.0, acq_frac * window), loyalty=loyalty)
    tx, cust = sim.transactions, sim.customers
    assert not tx[["customer_id", "date", "amount"]].isna().any().any()
    assert np.isfinite(tx["amount"]).all() and (tx["amount"] > 0).all()
    assert tx["date"].min() >= sim.truth["start"]
    assert tx["date"].max() <= sim.truth["observation_end"]
    assert set(tx["customer_id"]) == set(range(1, n + 1))
    assert np.isfinite(cust["lambda"]).all() and (cust["lambda"] > 0).all()
    assert (cust["lifetime_days"] >= 0).all()
    assert (cust["dropout_date"].dropna() <= sim.truth["observation_end"]).all()


@settings(max_examples=30)
@given(
    n=st.integers(1, 300),
    seed=st.integers(0, 2**32 - 1),
    a=st.floats(0.05, 20.0),
    b=st.floats(0.05, 20.0),
    window=st.integers(1, 1500),
    acq_frac=st.floats(0.001, 1.0),
)
def test_any_valid_subscription_configuration_gives_valid_records(n, seed, a, b, window,
                                                                  acq_frac):
    sim = simulate(n, seed, mode="subscription", subscription={"alpha": a, "beta": b},
                   end=window, acquisition_period=max(1.0, acq_frac * window))
    subs, tx, cust = sim.subscriptions, sim.transactions, sim.customers
    assert len(subs) == n and set(tx["customer_id"]) == set(range(1, n + 1))
    assert (subs["end"].isna() == cust["alive_at_end"]).all()
    ended = subs["end"].notna()
    assert (subs.loc[ended, "end"] > subs.loc[ended, "start"]).all()
    assert (subs.loc[ended, "end"] <= sim.truth["observation_end"]).all()
    assert tx["date"].min() >= sim.truth["start"]
    assert tx["date"].max() <= sim.truth["observation_end"]
    n_pay = tx.groupby("customer_id").size().reindex(cust["customer_id"]).to_numpy()
    assert (n_pay >= 1).all() and (n_pay <= cust["lifetime_periods"].to_numpy()).all()
    assert ((cust["theta"] > 0) & (cust["theta"] <= 1)).all()


# ------------------------------------------------------------------------------------------
# integration: the package's own pipeline recovers the truth
# ------------------------------------------------------------------------------------------


def test_subscription_records_feed_the_sbg_pipeline():
    from custvalue._subscriptions import subscriptions
    from custvalue.models.shifted_beta_geo import ShiftedBetaGeoModel

    sim = simulate(40_000, seed=7, mode="subscription", subscription={"alpha": 0.7, "beta": 2.5})
    table = subscriptions(sim.subscriptions, customer_col="customer_id", start_col="start",
                          end_col="end", period="M", observation_end=sim.truth["observation_end"])
    assert len(table) == 40_000
    assert int(table["churned"].sum()) == int((~sim.customers["alive_at_end"]).sum())
    model = ShiftedBetaGeoModel().fit(table)
    for name, true in sim.truth["params"].items():
        _within(model.params_[name], true, model.standard_errors_[name], k=3.0)


def _fit_on_daily_summary(sim: Simulation, model_cls, spend: bool = False):
    from custvalue.summary import rfm_summary

    summary = rfm_summary(sim.transactions, freq="D", observation_end=sim.truth["observation_end"])
    model = model_cls().fit(summary)
    if spend:
        return summary, model
    return model


def test_daily_summary_and_bgnbd_fit_recover_the_truth():
    from custvalue.models import BetaGeoModel, GammaGammaModel

    sim = simulate(10_000, seed=1)
    summary, model = _fit_on_daily_summary(sim, BetaGeoModel, spend=True)
    for name, true in sim.truth["params"].items():
        _within(model.params_[name], true, model.standard_errors_[name], k=3.0)
    spend = GammaGammaModel().fit(summary[summary["frequency"] > 0])
    for name, true in sim.truth["spend_params"].items():
        _within(spend.params_[name], true, spend.standard_errors_[name], k=3.0)


@pytest.mark.slow
def test_daily_summary_and_pareto_nbd_fit_recover_the_truth():
    from custvalue.models import ParetoNBDModel

    sim = simulate(20_000, seed=1, process="pareto_nbd")
    model = _fit_on_daily_summary(sim, ParetoNBDModel)
    for name, true in sim.truth["params"].items():
        _within(model.params_[name], true, model.standard_errors_[name], k=3.0)


# ------------------------------------------------------------------------------------------
# loyalty joining mechanisms for programme-effect validation (history, recency)
# ------------------------------------------------------------------------------------------


def _member_months(sim: Simulation) -> tuple[dict[str, float], int, pd.Series]:
    """Members' purchases in the post-joining months, recomputed with pandas from the
    returned frames (independently of the simulator): observed purchases after the joining
    day, on the joining day (before or after joining: the day does not say), and the
    counterfactual (untreated-path) purchases."""
    end = sim.truth["observation_end"]
    last = pd.Period(end, "M") - (0 if (end + pd.Timedelta(days=1)).month != end.month else 1)
    join = sim.memberships.set_index("customer_id")["join_date"]
    m = join.dt.to_period("M")
    entry = sim.customers.set_index("customer_id")["first_purchase"].dt.to_period("M")
    keep = (m > entry.reindex(m.index)) & (m <= last)
    m, join = m[keep], join[keep]
    out = {}
    for name, frame in (("y1", sim.transactions), ("cf", sim.counterfactual)):
        f = frame[frame["customer_id"].isin(m.index)]
        jd = join.reindex(f["customer_id"]).to_numpy()
        inside = (f["date"].dt.to_period("M") <= last).to_numpy()
        out[name + "_after"] = float(np.sum(inside & (f["date"].to_numpy() > jd)))
        out[name + "_sameday"] = float(np.sum(inside & (f["date"].to_numpy() == jd)))
    cells = sum(int((last - g).n) + 1 for g in m)
    return out, cells, m


@pytest.mark.parametrize("mechanism", [{"history": True}, {"recency": 5.0, "join_rate": 0.001}])
def test_programme_estimand_is_computed_from_the_untreated_path(mechanism):
    sim = simulate(6000, seed=21, acquisition_period="180D",
                   loyalty={"effect": 1.4, "launch": "2022-09-01", **mechanism})
    att = sim.truth["loyalty"]["att"]
    counts, cells, members = _member_months(sim)
    assert att["n_cells"] == cells and att["n_treated"] == len(members)
    # after joining, members' observed purchases are the treated path and the returned
    # counterfactual purchases the untreated path: the estimand is their mean difference
    lam = sim.customers.set_index("customer_id")["lambda"]
    assert sim.counterfactual is not None and len(sim.counterfactual) > 0
    # the counterfactual holds the replaced purchases (joining day included); the observed
    # joining-day purchases are some before joining (in both paths) and some after
    y0_post = counts["cf_after"] + counts["cf_sameday"]
    low = (counts["y1_after"] - y0_post) / cells
    high = (counts["y1_after"] + counts["y1_sameday"] - y0_post) / cells
    assert low - 1e-12 <= att["level"] <= high + 1e-12
    assert high - low < 0.1 * att["level"]
    assert att["level"] > 0 and att["ratio"] > 0
    # members are heavier buyers than non-members (self-selection)
    is_member = lam.index.isin(sim.memberships["customer_id"])
    assert lam[is_member].mean() > lam[~is_member].mean()


def test_programme_estimand_is_near_zero_without_an_effect():
    sim = simulate(6000, seed=22, acquisition_period="180D",
                   loyalty={"history": True, "effect": 1.0, "launch": "2022-09-01"})
    att = sim.truth["loyalty"]["att"]
    # observed and untreated paths are independent Poisson draws of the same mean: the
    # realised difference per cell has sd about sqrt(2 * mean / cells)
    se = np.sqrt(2 * att["untreated_mean"] / att["n_cells"])
    assert abs(att["level"]) < 4 * se


def test_history_joining_depends_on_recent_activity_at_launch():
    sim = simulate(20_000, seed=23, acquisition_period="180D",
                   loyalty={"history": True, "launch": "2022-09-01"})
    tx = sim.transactions
    before = tx[tx["date"] < "2022-09-01"]
    recent = (before[before["date"] >= "2022-06-01"].groupby("customer_id").size()
              .reindex(sim.customers["customer_id"], fill_value=0))
    joined = sim.customers["member"].to_numpy()
    active = recent.to_numpy() >= 2
    assert joined[active].mean() > 2 * joined[~active].mean()
    assert sim.memberships["join_date"].min() >= pd.Timestamp("2022-09-01")
    assert sim.memberships["join_date"].dt.to_period("M").nunique() > 10  # staggered


def test_default_loyalty_has_no_counterfactual_and_unchanged_truth_keys():
    sim = simulate(500, seed=1, loyalty=True)
    assert sim.counterfactual is None
    assert set(sim.truth["loyalty"]) == {"join_rate", "selection", "effect", "launch",
                                         "n_members", "description"}


@pytest.mark.parametrize(
    ("loyalty", "match"),
    [({"history": True, "recency": 2.0}, "not both"),
     ({"history": {"slope": 1}}, "unknown keys"),
     ({"history": "yes"}, "True or a dict"),
     ({"recency": -1.0}, "non-negative")],
)
def test_new_loyalty_options_are_checked(loyalty, match):
    with pytest.raises(ParameterError, match=match):
        simulate(100, seed=0, loyalty=loyalty)


def test_simulated_frames_write_to_parquet_with_their_observation_end(tmp_path):
    sim = simulate(300, seed=3)
    path = tmp_path / "tx.parquet"
    sim.transactions.to_parquet(path)  # attrs go into the file's metadata as JSON
    back = pd.read_parquet(path)
    assert pd.Timestamp(back.attrs["observation_end"]) == sim.truth["observation_end"]
    sub = simulate(200, seed=3, mode="subscription")
    sub.subscriptions.to_parquet(tmp_path / "sub.parquet")
