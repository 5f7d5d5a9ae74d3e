"""Tests for custvalue.value: CLV (closed forms, lifetimes parity, intervals) and heuristic LTV."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from custvalue._time import DAYS_PER_UNIT
from custvalue.errors import DataValidationError, ModelNotFittedError, ParameterError
from custvalue.value import (
    compare_heuristic,
    customer_lifetime_value,
    discount_factors,
    heuristic_ltv,
    total_value,
)


# ---------------------------------------------------------------------------------------------
# test doubles with closed-form behaviour
# ---------------------------------------------------------------------------------------------
class ConstantRate:
    """Everyone buys at Poisson rate ``lam`` per model unit forever: E[X(t)] = lam * t."""

    contractual = False

    def __init__(self, lam: float, unit: str = "D", sd: float = 0.1) -> None:
        self.params_ = {"lam": lam}
        self.covariance_ = np.array([[(lam * sd) ** 2]])  # log-scale sd = sd
        self.time_unit_ = unit
        self.sd = sd

    def expected_purchases(self, data, t):
        return np.full(len(data), self.params_["lam"] * float(t))

    def sample_params(self, n, seed=None):
        rng = np.random.default_rng(seed)
        return pd.DataFrame({"lam": self.params_["lam"] * np.exp(rng.normal(0.0, self.sd, n))})

    def with_params(self, row):
        return ConstantRate(float(row["lam"]), self.time_unit_, self.sd)


class ConstantSpend:
    contractual = False

    def __init__(self, m: float, sd: float = 0.1) -> None:
        self.params_ = {"m": m}
        self.covariance_ = np.array([[(m * sd) ** 2]])
        self.sd = sd

    def expected_spend(self, data):
        return np.full(len(data), self.params_["m"], dtype=float)

    def sample_params(self, n, seed=None):
        rng = np.random.default_rng(seed)
        return pd.DataFrame({"m": self.params_["m"] * np.exp(rng.normal(0.0, self.sd, n))})

    def with_params(self, row):
        return ConstantSpend(float(row["m"]), self.sd)


@pytest.fixture
def small_summary() -> pd.DataFrame:
    df = pd.DataFrame(
        {
            "frequency": [0, 1, 2, 2, 5],
            "recency": [0.0, 3.0, 5.0, 5.0, 40.0],
            "T": [10.0, 10.0, 10.0, 10.0, 50.0],
            "monetary_value": [0.0, 10.0, 20.0, 20.0, 15.0],
        },
        index=pd.Index(["a", "b", "c", "d", "e"], name="customer_id"),
    )
    df.attrs["freq"] = "D"
    return df


# ---------------------------------------------------------------------------------------------
# closed forms
# ---------------------------------------------------------------------------------------------
def test_constant_rate_clv_matches_closed_form(small_summary):
    lam, m, d = 0.05, 40.0, 0.12
    res = customer_lifetime_value(
        ConstantRate(lam), ConstantSpend(m), small_summary,
        horizon=12, time_unit="M", discount_rate=d, margin=0.3,
    )
    month_days = 365.25 / 12
    expected = sum(0.3 * m * lam * month_days * (1 + d) ** (-k / 12) for k in range(1, 13))
    np.testing.assert_allclose(res["clv"], expected, rtol=1e-12)
    np.testing.assert_allclose(res["expected_purchases"], lam * 365.25, rtol=1e-12)
    assert list(res.index) == list(small_summary.index)


def test_zero_discount_equals_expected_purchases_times_spend(small_summary):
    res = customer_lifetime_value(
        ConstantRate(0.02), ConstantSpend(25.0), small_summary,
        horizon=2, time_unit="Y", discount_rate=0.0,
    )
    np.testing.assert_allclose(res["clv"], res["expected_purchases"] * res["expected_spend"])
    np.testing.assert_allclose(res["expected_purchases"], 0.02 * 2 * 365.25)


def test_cash_flows_sum_to_clv_and_partial_period(small_summary):
    res = customer_lifetime_value(
        ConstantRate(0.03), ConstantSpend(10.0), small_summary,
        horizon=2.5, time_unit="M", discount_rate=0.2, cash_flows=True,
    )
    flows = res.to_frame().filter(like="cash_flow_")
    assert flows.shape[1] == 3  # two full months and a half month
    np.testing.assert_allclose(flows.sum(axis=1), res["clv"], rtol=1e-12)
    # the half month carries half the purchases of a full month (before discounting)
    ratio = flows["cash_flow_3"] / flows["cash_flow_2"]
    disc = (1.2 ** (-2.5 / 12)) / (1.2 ** (-2 / 12))
    np.testing.assert_allclose(ratio, 0.5 * disc, rtol=1e-12)


def test_discount_factors_use_calendar_exact_months():
    df = discount_factors(12, "M", 0.1, "D")
    np.testing.assert_allclose(df["t_model"].iloc[-1], 365.25)
    np.testing.assert_allclose(df["discount"].iloc[-1], 1 / 1.1)
    np.testing.assert_allclose(df["t_model"].iloc[0], DAYS_PER_UNIT["M"])
    assert DAYS_PER_UNIT["M"] != 30


def test_time_unit_of_model_is_respected(small_summary):
    """The same business horizon gives the same value whether the model counts days or weeks."""
    lam_day = 0.01
    in_days = customer_lifetime_value(ConstantRate(lam_day, "D"), ConstantSpend(5.0), small_summary,
                                      horizon=6, time_unit="M", discount_rate=0.1)
    weekly = small_summary.assign(recency=small_summary["recency"] / 7, T=small_summary["T"] / 7)
    weekly.attrs["freq"] = "W"  # the same customers summarised in the weekly model's unit
    in_weeks = customer_lifetime_value(ConstantRate(lam_day * 7, "W"), ConstantSpend(5.0), weekly,
                                       horizon=6, time_unit="M", discount_rate=0.1)
    np.testing.assert_allclose(in_days["clv"], in_weeks["clv"], rtol=1e-12)


def test_price_instead_of_spend_model(small_summary):
    price = pd.Series([1.0, 2.0, 3.0, 4.0, 5.0], index=small_summary.index[::-1])
    res = customer_lifetime_value(ConstantRate(0.1), None, small_summary, horizon=1, time_unit="M",
                                  discount_rate=0.0, price=price)
    np.testing.assert_allclose(res["expected_spend"], [5.0, 4.0, 3.0, 2.0, 1.0])
    with pytest.raises(DataValidationError, match="no value for 1 customers"):
        customer_lifetime_value(ConstantRate(0.1), None, small_summary, horizon=1, time_unit="M",
                                discount_rate=0.0, price=price.iloc[1:])


def test_does_not_modify_input(small_summary):
    before = small_summary.copy()
    customer_lifetime_value(ConstantRate(0.1), ConstantSpend(3.0), small_summary, horizon=3,
                            time_unit="M", discount_rate=0.1, interval=0.8, n_draws=20, seed=0)
    pd.testing.assert_frame_equal(small_summary, before)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"horizon": 0}, "horizon must be > 0"),
        ({"horizon": -3}, "horizon must be > 0"),
        ({"discount_rate": -1.5}, "yearly rate"),
        ({"interval": 1.2}, "interval must be between 0 and 1"),
        ({"time_unit": "fortnight"}, "unknown time unit"),
    ],
)
def test_invalid_arguments(small_summary, kwargs, match):
    args = {"horizon": 12, "time_unit": "M", "discount_rate": 0.1} | kwargs
    with pytest.raises(ParameterError, match=match):
        customer_lifetime_value(ConstantRate(0.1), ConstantSpend(3.0), small_summary, **args)


def test_missing_columns_and_unfitted_models(small_summary):
    with pytest.raises(DataValidationError, match="recency"):
        customer_lifetime_value(ConstantRate(0.1), ConstantSpend(3.0), small_summary.drop(columns="recency"),
                                horizon=1, time_unit="M", discount_rate=0.1)
    unfitted = ConstantRate(0.1)
    unfitted.params_ = None
    with pytest.raises(ModelNotFittedError):
        customer_lifetime_value(unfitted, ConstantSpend(3.0), small_summary, horizon=1, time_unit="M",
                                discount_rate=0.1)
    with pytest.raises(ParameterError, match="no spend"):
        customer_lifetime_value(ConstantRate(0.1), None, small_summary, horizon=1, time_unit="M",
                                discount_rate=0.1)


def test_infinite_horizon_needs_dert(small_summary):
    with pytest.raises(ParameterError, match="expected residual transactions"):
        customer_lifetime_value(ConstantRate(0.1), ConstantSpend(3.0), small_summary,
                                horizon=np.inf, time_unit="M", discount_rate=0.1)


def test_interval_of_constant_rate_matches_lognormal_quantiles(small_summary):
    """With log(lam) ~ N(log lam0, s1^2) and log(m) ~ N(log m0, s2^2) independent, CLV is
    lognormal: its 90 % interval is CLV0 * exp(+-1.645 sqrt(s1^2 + s2^2))."""
    s1, s2 = 0.1, 0.2
    res = customer_lifetime_value(
        ConstantRate(0.05, sd=s1), ConstantSpend(30.0, sd=s2), small_summary,
        horizon=1, time_unit="Y", discount_rate=0.1, interval=0.9, n_draws=5000, seed=3,
    )
    # 5000 draws: the sample 5 % quantile of log CLV has sd ~0.02; allow 3 sd
    z = 1.6448536269514722 * math.sqrt(s1**2 + s2**2)
    np.testing.assert_allclose(res["clv_lower"], res["clv"] * math.exp(-z), rtol=0.06)
    np.testing.assert_allclose(res["clv_upper"], res["clv"] * math.exp(z), rtol=0.06)
    tot = total_value(res)
    np.testing.assert_allclose(tot["estimate"], res["clv"].sum())
    # all customers move together with the parameters: total bounds = sum of bounds here
    np.testing.assert_allclose(tot["lower"], res["clv_lower"].sum(), rtol=1e-9)
    assert tot["lower"] < tot["estimate"] < tot["upper"]


def test_delta_interval_is_exact_for_log_linear_value(small_summary):
    """CLV is proportional to lam * m, so the delta method on the log scale is exact:
    bounds CLV * exp(+-z sqrt(s1^2 + s2^2)) for every customer and for the total."""
    s1, s2 = 0.1, 0.2
    res = customer_lifetime_value(
        ConstantRate(0.05, sd=s1), ConstantSpend(30.0, sd=s2), small_summary,
        horizon=12, time_unit="M", discount_rate=0.1, interval=0.9, interval_method="delta",
    )
    f = math.exp(1.6448536269514722 * math.sqrt(s1**2 + s2**2))
    np.testing.assert_allclose(res["clv_lower"], res["clv"] / f, rtol=1e-7)
    np.testing.assert_allclose(res["clv_upper"], res["clv"] * f, rtol=1e-7)
    tot = total_value(res)
    assert tot["method"] == "delta"
    np.testing.assert_allclose([tot["lower"], tot["upper"]], [tot["estimate"] / f, tot["estimate"] * f], rtol=1e-7)


def test_interval_is_reproducible_with_seed(small_summary):
    kw = {"horizon": 3, "time_unit": "M", "discount_rate": 0.1, "interval": 0.9, "n_draws": 50}
    a = customer_lifetime_value(ConstantRate(0.05), ConstantSpend(3.0), small_summary, seed=7, **kw)
    b = customer_lifetime_value(ConstantRate(0.05), ConstantSpend(3.0), small_summary, seed=7, **kw)
    pd.testing.assert_frame_equal(a.frame, b.frame)
    assert (a.total_lower, a.total_upper) == (b.total_lower, b.total_upper)


def test_weights_enter_total(small_summary):
    w = small_summary.assign(weight=[1, 2, 3, 4, 5])
    res = customer_lifetime_value(ConstantRate(0.05), ConstantSpend(3.0), w, horizon=3, time_unit="M",
                                  discount_rate=0.1)
    np.testing.assert_allclose(total_value(res)["estimate"], (res["clv"] * w["weight"]).sum())


# ---------------------------------------------------------------------------------------------
# heuristic LTV
# ---------------------------------------------------------------------------------------------
@pytest.fixture
def tiny_tx() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": ["c1", "c1", "c2", "c3", "c3", "c3"],
            "date": pd.to_datetime(
                ["2020-01-01", "2020-03-01", "2020-01-01", "2020-06-01", "2020-06-01", "2020-12-01"]
            ),
            "amount": [10.0, 30.0, 20.0, 5.0, 5.0, 50.0],
            "region": ["A", "A", "A", "B", "B", "B"],
        }
    )


def test_heuristic_ltv_hand_computed(tiny_tx):
    end = pd.Timestamp("2020-12-31")
    m = 365.25 / 12
    res = heuristic_ltv(tiny_tx, margin=0.5, lifetime_months=10, by="region", observation_end=end)
    a = res.loc["A"]
    assert a["n_customers"] == 2 and a["n_orders"] == 3
    assert a["avg_check"] == pytest.approx(20.0)
    tenure = 2 * (365 / m)
    assert a["purchases_per_month"] == pytest.approx(3 / tenure)
    assert a["heuristic_ltv"] == pytest.approx(20.0 * 3 / tenure * 0.5 * 10)
    b = res.loc["B"]  # two lines on 2020-06-01 form one order (no order_id): 2 orders, 60 spend
    assert b["n_orders"] == 2 and b["avg_check"] == pytest.approx(30.0)
    assert b["purchases_per_month"] == pytest.approx(2 / (213 / m))
    assert b["heuristic_total"] == pytest.approx(b["heuristic_ltv"])


def test_heuristic_lifetime_estimates(tiny_tx):
    end = pd.Timestamp("2020-12-31")
    m = 365.25 / 12
    churn = heuristic_ltv(tiny_tx, margin=1.0, observation_end=end, lapse_months=6)
    # lapsed: c1 (last 2020-03-01), c2; active: c3 (exposure to the end)
    exposure = 60 / m + 0.0 + 213 / m
    assert churn.loc["all", "lifetime_months"] == pytest.approx(exposure / 2)
    span = heuristic_ltv(tiny_tx, margin=1.0, observation_end=end, lifetime_method="span")
    assert span.loc["all", "lifetime_months"] == pytest.approx((60 / m + 0 + 183 / m) / 3)
    capped = heuristic_ltv(tiny_tx, margin=1.0, observation_end=end, horizon_months=1.0)
    assert capped.loc["all", "lifetime_months"] == 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        heuristic_ltv(tiny_tx, margin=1.0, lifetime_months=3)  # given lifetime: no warning
    with pytest.warns(UserWarning, match="no customer has lapsed"):
        heuristic_ltv(tiny_tx, margin=1.0, observation_end=end, lapse_months=24)


def test_heuristic_errors_and_input_untouched(tiny_tx):
    before = tiny_tx.copy()
    heuristic_ltv(tiny_tx, margin=0.3, lifetime_months=12)
    pd.testing.assert_frame_equal(tiny_tx, before)
    with pytest.raises(DataValidationError, match="amount"):
        heuristic_ltv(tiny_tx.drop(columns="amount"), margin=0.3)
    with pytest.raises(ParameterError, match="lifetime_method"):
        heuristic_ltv(tiny_tx, margin=0.3, lifetime_method="guess")


def test_compare_heuristic_flags_overvaluation():
    summary = pd.DataFrame(
        {"frequency": [0, 0, 0, 10], "T": [50.0, 50.0, 50.0, 50.0], "region": ["A"] * 4},
        index=pd.Index(list("wxyz"), name="customer_id"),
    )
    clv = pd.DataFrame({"clv": [1.0, 1.0, 1.0, 37.0]}, index=summary.index)
    heur = pd.DataFrame({"heuristic_ltv": [40.0]}, index=pd.Index(["A"], name="region"))
    res = compare_heuristic(heur, clv, summary, by="region")
    assert res.loc["A", "model_clv"] == pytest.approx(10.0)
    assert res.loc["A", "ratio"] == pytest.approx(4.0)
    assert res.loc["A", "share_one_time"] == pytest.approx(0.75)
    assert res.loc["A", "top_decile_share"] == pytest.approx(37 / 40)
    assert "4.0×" in res.loc["A", "explanation"]


# ---------------------------------------------------------------------------------------------
# real models: infinite horizon (Pareto/NBD DERT)
# ---------------------------------------------------------------------------------------------
def test_infinite_horizon_matches_long_finite_horizon():
    """DERT (continuous discounting) equals an 80-year yearly horizon whose cash flows are
    moved from the year end to the middle of the year."""
    from custvalue.models.pareto_nbd import ParetoNBDModel

    m = ParetoNBDModel.from_params(r=0.55, alpha=10.58, s=0.61, beta=11.67, time_unit="W")
    d = pd.DataFrame({"frequency": [0, 2, 5.0, 20], "recency": [0, 30, 35, 38.0], "T": [39.0] * 4})
    inf = customer_lifetime_value(m, None, d, horizon=np.inf, time_unit="M", discount_rate=0.1, price=2.0)
    fin = customer_lifetime_value(m, None, d, horizon=80, time_unit="Y", discount_rate=0.1, price=2.0)
    assert "expected_purchases" not in inf.frame.columns
    np.testing.assert_allclose(inf["clv"], fin["clv"] * 1.1 ** (1 / 2), rtol=5e-3)
    assert (inf["clv"] > 0).all() and np.isfinite(inf["clv"]).all()


# ---------------------------------------------------------------------------------------------
# real models: BG/NBD + Gamma-Gamma
# ---------------------------------------------------------------------------------------------
CDNOW_BG = {"r": 0.242594, "alpha": 4.413643, "a": 0.792918, "b": 2.425898}  # FHL 2005a, weeks
CDNOW_GG = {"p": 6.248802, "q": 3.744588, "gamma": 15.447748}  # Fader & Hardie 2013


@pytest.fixture(scope="module")
def cdnow_summary() -> pd.DataFrame:
    from lifetimes.datasets import load_cdnow_summary_data_with_monetary_value

    df = load_cdnow_summary_data_with_monetary_value()
    df = df[["frequency", "recency", "T", "monetary_value"]].astype(float)
    df.attrs["freq"] = "W"
    return df


def test_matches_lifetimes_clv_on_matching_configuration(cdnow_summary):
    """lifetimes discounts with a monthly rate over periods of ``factor`` model units; with the
    model in months (factor 1) and our yearly rate equal to the compounded monthly rate, the two
    definitions coincide exactly."""
    from lifetimes import BetaGeoFitter, GammaGammaFitter

    from custvalue.models import BetaGeoModel, GammaGammaModel

    bg = BetaGeoModel.from_params(**CDNOW_BG, time_unit="M")
    gg = GammaGammaModel.from_params(**CDNOW_GG)
    bgf = BetaGeoFitter()
    bgf.params_ = pd.Series(CDNOW_BG)
    bgf.predict = bgf.conditional_expected_number_of_purchases_up_to_time  # set by fit() in lifetimes
    ggf = GammaGammaFitter()
    ggf.params_ = pd.Series({"p": CDNOW_GG["p"], "q": CDNOW_GG["q"], "v": CDNOW_GG["gamma"]})
    d_month = 0.01
    s = cdnow_summary.copy()
    s.attrs["freq"] = "M"  # lifetimes' freq="M": the summary's periods are read as months
    theirs = ggf.customer_lifetime_value(bgf, s["frequency"], s["recency"], s["T"], s["monetary_value"],
                                         time=12, discount_rate=d_month, freq="M")
    ours = customer_lifetime_value(bg, gg, s, horizon=12, time_unit="M",
                                   discount_rate=(1 + d_month) ** 12 - 1)
    np.testing.assert_allclose(ours["clv"].to_numpy(), np.asarray(theirs, float), rtol=1e-7)


def test_expected_purchases_column_is_models_conditional_expectation(cdnow_summary):
    from custvalue.models import BetaGeoModel, GammaGammaModel

    bg = BetaGeoModel.from_params(**CDNOW_BG, time_unit="W")
    gg = GammaGammaModel.from_params(**CDNOW_GG)
    s = cdnow_summary.iloc[:300]
    res = customer_lifetime_value(bg, gg, s, horizon=1, time_unit="Y", discount_rate=0.0, cash_flows=True)
    np.testing.assert_allclose(res["expected_purchases"], bg.expected_purchases(s, 365.25 / 7), rtol=1e-10)
    np.testing.assert_allclose(res["expected_spend"], gg.expected_spend(s), rtol=1e-12)
    np.testing.assert_allclose(res["clv"], res["expected_purchases"] * res["expected_spend"], rtol=1e-10)
    assert np.isfinite(res.to_frame().to_numpy(float)).all() and (res["clv"] >= 0).all()


def _simulate_bgnbd_gg(n: int, rng: np.random.Generator) -> pd.DataFrame:
    """BG/NBD + Gamma-Gamma summary in weeks with the CDNOW parameters (FHL 2005a)."""
    lam = rng.gamma(CDNOW_BG["r"], 1.0 / CDNOW_BG["alpha"], n)
    p = rng.beta(CDNOW_BG["a"], CDNOW_BG["b"], n)
    T = rng.uniform(26.0, 52.0, n).round()
    m = rng.poisson(lam * T)
    k = np.minimum(m, rng.geometric(p))
    last = np.where(k > 0, T * rng.beta(np.maximum(k, 1), np.maximum(m - k + 1, 1)), 0.0)
    nu = rng.gamma(CDNOW_GG["q"], 1.0 / CDNOW_GG["gamma"], n)
    kk = np.maximum(k, 1)
    spend = np.where(k > 0, rng.gamma(CDNOW_GG["p"] * kk, 1.0) / (kk * nu), 0.0)
    df = pd.DataFrame({"frequency": k.astype(float), "recency": np.round(last, 2), "T": T,
                       "monetary_value": spend})
    df.attrs["freq"] = "W"
    return df


@pytest.mark.slow
def test_total_clv_interval_covers_truth_about_90_percent():
    """Repeated simulations with known parameters: the 90 % interval of total expected CLV
    (parameter uncertainty of both models) covers the CLV computed with the true parameters in
    about 90 % of them (binomial tolerance: 100 runs, sd 3)."""
    from custvalue.models import BetaGeoModel, GammaGammaModel

    rng = np.random.default_rng(20261123)
    true_bg = BetaGeoModel.from_params(**CDNOW_BG, time_unit="W")
    true_gg = GammaGammaModel.from_params(**CDNOW_GG)
    n_runs, covered = 100, 0
    kw = {"horizon": 1, "time_unit": "Y", "discount_rate": 0.1}
    for run in range(n_runs):
        data = _simulate_bgnbd_gg(1500, rng)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            bg = BetaGeoModel(time_unit="W").fit(data[["frequency", "recency", "T"]])
            gg = GammaGammaModel().fit(data[["frequency", "monetary_value"]])
        truth = customer_lifetime_value(true_bg, true_gg, data, **kw)["clv"].sum()
        est = customer_lifetime_value(bg, gg, data, interval=0.9, n_draws=100, seed=run, **kw)
        tot = total_value(est)
        covered += int(tot["lower"] <= truth <= tot["upper"])
    print(f"90 % interval of total CLV covered the truth in {covered} of {n_runs} simulations")
    assert 80 <= covered <= 97, f"covered {covered} of {n_runs}"


@pytest.fixture(scope="module")
def many_customers() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    n = 3000
    T = rng.integers(30, 60, n).astype(float)
    x = rng.poisson(2.0, n).astype(float)
    r = np.where(x > 0, np.floor(T * rng.uniform(0.2, 1.0, n)), 0.0)
    df = pd.DataFrame({"frequency": x, "recency": r, "T": T, "monetary_value": 10.0})
    df.attrs["freq"] = "W"
    return df


def test_period_curve_equals_direct_model_calls(many_customers):
    """The per-period expected purchases equal differences of direct model calls at the period
    ends (whatever shortcut is taken internally)."""
    from custvalue.models.pareto_nbd import ParetoNBDModel

    m = ParetoNBDModel.from_params(r=0.55, alpha=10.58, s=0.61, beta=11.67, time_unit="W")
    res = customer_lifetime_value(m, None, many_customers, horizon=3, time_unit="M", discount_rate=0.2,
                                  price=1.0, cash_flows=True)
    ends = np.arange(1, 4) * (365.25 / 12) / 7
    cum = np.column_stack([m.expected_purchases(many_customers, t).to_numpy() for t in ends])
    flows = np.diff(np.column_stack([np.zeros(len(cum)), cum]), axis=1) * 1.2 ** (-np.arange(1, 4) / 12)
    np.testing.assert_allclose(res[["cash_flow_1", "cash_flow_2", "cash_flow_3"]].to_numpy(), flows,
                               rtol=1e-9, atol=1e-14)
    np.testing.assert_allclose(res["expected_purchases"], cum[:, -1], rtol=1e-9)


class NotSeparable(ConstantRate):
    """Expected purchases depend on recency in a way P(alive) does not explain."""

    def expected_purchases(self, data, t):
        return self.params_["lam"] * float(t) * (1.0 + data["recency"].to_numpy() / 100.0)

    def probability_alive(self, data, t=0):
        return np.full(len(data), 0.5)

    def with_params(self, row):
        return NotSeparable(float(row["lam"]), self.time_unit_, self.sd)


def test_models_outside_the_btyd_family_are_computed_directly(many_customers):
    m = NotSeparable(0.1, "W")
    res = customer_lifetime_value(m, None, many_customers, horizon=2, time_unit="W", discount_rate=0.0, price=1.0)
    np.testing.assert_allclose(res["expected_purchases"], 0.2 * (1 + many_customers["recency"] / 100), rtol=1e-12)


class ConstantChurn:
    """Contractual double: every subscriber cancels with probability ``theta`` each month."""

    contractual = True

    def __init__(self, theta: float) -> None:
        self.params_ = {"theta": theta}
        self.time_unit_ = "M"
        self.rates_seen: list[float] = []

    def probability_alive(self, data, t=0):
        return np.full(len(data), (1 - self.params_["theta"]) ** float(t))

    def expected_residual_lifetime(self, data, discount_rate):
        # DERL convention (FH 2010 eq. 6): payment k >= 1 if renewed k times, discounted k - 1
        # periods: sum_k (1-theta)^k (1+d)^-(k-1) = (1-theta) / (1 - (1-theta)/(1+d))
        self.rates_seen.append(discount_rate)
        q = (1 - self.params_["theta"]) / (1 + discount_rate)
        return np.full(len(data), (1 - self.params_["theta"]) / (1.0 - q))


def test_contractual_value_is_price_times_discounted_lifetime():
    subs = pd.DataFrame({"T": [3.0, 10.0], "churned": [False, False]}, index=["s1", "s2"])
    model = ConstantChurn(0.05)
    inf = customer_lifetime_value(model, None, subs, horizon=np.inf, time_unit="M", discount_rate=0.1,
                                  price=pd.Series({"s1": 10.0, "s2": 20.0}))
    d_month = 1.1 ** (1 / 12) - 1
    assert model.rates_seen[-1] == pytest.approx(d_month)
    derl = 0.95 / (1 - 0.95 / (1 + d_month))
    np.testing.assert_allclose(inf["clv"], [10 * derl, 20 * derl])
    fin = customer_lifetime_value(model, None, subs, horizon=24, time_unit="M", discount_rate=0.1, price=10.0)
    expected = sum(0.95**k * 1.1 ** (-(k - 1) / 12) for k in range(1, 25))
    np.testing.assert_allclose(fin["clv"], 10 * expected)
    np.testing.assert_allclose(fin["expected_periods"], sum(0.95**k for k in range(1, 25)))


def test_sbg_finite_horizon_converges_to_derl():
    """Real sBG (Fader & Hardie 2007/2010): a 100-year horizon equals DERL; the value uses the
    price column and gives churned customers nothing."""
    from custvalue.models.shifted_beta_geo import ShiftedBetaGeoModel

    m = ShiftedBetaGeoModel.from_params(alpha=0.668, beta=3.806, time_unit="Y")  # FH 2007 "regular"
    subs = pd.DataFrame({"T": [0, 1, 4, 4], "churned": [False, False, False, True],
                         "price": [100.0, 100.0, 120.0, 120.0]}, index=["a", "b", "c", "d"])
    inf = customer_lifetime_value(m, None, subs, horizon=np.inf, time_unit="Y", discount_rate=0.1, price="price")
    fin = customer_lifetime_value(m, None, subs, horizon=100, time_unit="Y", discount_rate=0.1, price="price")
    derl = m.expected_residual_lifetime(subs, discount_rate=0.1).to_numpy()
    np.testing.assert_allclose(inf["clv"], subs["price"] * derl, rtol=1e-12)
    np.testing.assert_allclose(fin["clv"], inf["clv"], rtol=1e-4)
    assert inf.frame.loc["d", "clv"] == 0.0


# ---------------------------------------------------------------------------------------------
# properties on arbitrary valid summaries
# ---------------------------------------------------------------------------------------------


@st.composite
def _summaries(draw):
    n = draw(st.integers(1, 12))
    rows = []
    for _ in range(n):
        T = draw(st.floats(0.0, 3650.0, allow_nan=False))
        x = draw(st.integers(0, 3000))
        rec = 0.0 if x == 0 else draw(st.floats(0.0, T, allow_nan=False))
        m = 0.0 if x == 0 else draw(st.floats(0.01, 1e5, allow_nan=False))
        rows.append((float(x), rec, T, m))
    df = pd.DataFrame(rows, columns=["frequency", "recency", "T", "monetary_value"])
    df.attrs["freq"] = "D"
    return df


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=_summaries(), rate=st.floats(0.0, 0.5), horizon=st.floats(0.5, 60.0))
def test_clv_is_finite_nonnegative_and_bounded_by_undiscounted(data, rate, horizon):
    from custvalue.models import BetaGeoModel, GammaGammaModel

    bg = BetaGeoModel.from_params(r=0.24, alpha=30.9, a=0.79, b=2.43, time_unit="D")
    gg = GammaGammaModel.from_params(**CDNOW_GG)
    res = customer_lifetime_value(bg, gg, data, horizon=horizon, time_unit="M", discount_rate=rate,
                                  cash_flows=True)
    assert np.isfinite(res.to_frame().to_numpy(float)).all()
    assert (res["clv"] >= 0).all()
    assert (res["clv"] <= res["expected_purchases"] * res["expected_spend"] * (1 + 1e-9) + 1e-12).all()
    flows = res.to_frame().filter(like="cash_flow_")
    np.testing.assert_allclose(flows.sum(axis=1), res["clv"], rtol=1e-9, atol=1e-9)


@st.composite
def _transactions(draw):
    n = draw(st.integers(1, 40))
    cust = draw(st.lists(st.sampled_from(["a", "b", "c", "d", "e"]), min_size=n, max_size=n))
    days = draw(st.lists(st.integers(0, 900), min_size=n, max_size=n))
    amounts = draw(st.lists(st.floats(0.0, 1e4, allow_nan=False), min_size=n, max_size=n))
    seg = draw(st.lists(st.sampled_from(["x", "y"]), min_size=n, max_size=n))
    return pd.DataFrame({"customer_id": cust, "date": pd.Timestamp("2020-01-01") + pd.to_timedelta(days, unit="D"),
                         "amount": amounts, "segment": seg})


@settings(max_examples=30, deadline=None)
@given(tx=_transactions(), method=st.sampled_from(["churn", "span"]))
def test_heuristic_is_finite_and_counts_every_customer(tx, method):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = heuristic_ltv(tx, margin=0.4, by="segment", lifetime_method=method)
    assert res["n_customers"].sum() == tx["customer_id"].nunique()
    assert res["n_orders"].sum() == len(tx.assign(d=tx["date"].dt.normalize())[["customer_id", "d"]].drop_duplicates())
    vals = res[["avg_check", "purchases_per_month", "lifetime_months", "heuristic_ltv"]].to_numpy(float)
    assert np.isfinite(vals).all() and (vals >= 0).all()


# ---------------------------------------------------------------------------------------------
# the result object (issue 9: results that carry themselves)
# ---------------------------------------------------------------------------------------------
def test_result_carries_total_interval_cash_flows_and_settings(small_summary):
    from custvalue.value import CLVResult

    w = small_summary.assign(weight=[1, 2, 3, 4, 5])
    lam, m, d = 0.05, 40.0, 0.12
    res = customer_lifetime_value(ConstantRate(lam), ConstantSpend(m), w, horizon=12, time_unit="M",
                                  discount_rate=d, margin=0.3, interval=0.9, n_draws=50, seed=1,
                                  cash_flows=True)
    assert isinstance(res, CLVResult)
    month_days = 365.25 / 12
    per_customer = sum(0.3 * m * lam * month_days * (1 + d) ** (-k / 12) for k in range(1, 13))
    assert res.total == pytest.approx(per_customer * 15, rel=1e-12)  # weights 1..5
    assert res.total_lower < res.total < res.total_upper
    assert res.frame.attrs == {}  # no totals hidden in DataFrame.attrs
    assert list(res.frame.columns) == ["expected_purchases", "discounted_purchases", "expected_spend",
                                       "clv", "clv_lower", "clv_upper"]
    # cash flows: customers x periods, rows sum to clv, weighted column sums to the total
    assert res.cash_flows.shape == (5, 12) and list(res.cash_flows.columns) == list(range(1, 13))
    np.testing.assert_allclose(res.cash_flows.sum(axis=1), res["clv"], rtol=1e-12)
    np.testing.assert_allclose(res.total_cash_flows.sum(), res.total, rtol=1e-12)
    np.testing.assert_allclose(res.cash_flows[1], 0.3 * m * lam * month_days * (1 + d) ** (-1 / 12))
    assert res.to_frame()["cash_flow_12"].equals(res["cash_flow_12"])
    assert res.settings.horizon == 12 and res.settings.time_unit == "M"
    assert res.settings.discount_rate == d and res.settings.margin == 0.3
    assert res.settings.interval == 0.9 and res.settings.interval_method == "sample"
    assert res.settings.n_draws == 50 and res.settings.seed == 1
    tot = total_value(res)
    assert tot["estimate"] == res.total and tot["lower"] == res.total_lower and tot["n_draws"] == 50
    assert len(res) == 5 and list(res.index) == list(w.index)


def test_summary_prints_as_text_and_shows_as_html(small_summary):
    res = customer_lifetime_value(ConstantRate(0.05), ConstantSpend(3.0), small_summary, horizon=12,
                                  time_unit="M", discount_rate=0.1, interval=0.9, interval_method="delta")
    text = str(res.summary())
    assert "Customer lifetime value over 12 months" in text
    assert f"{res.total:,.2f}" in text and f"{res.total_lower:,.2f}" in text
    assert "10.00% a year" in text and "90% interval" in text
    html = res.summary()._repr_html_()
    assert html.startswith("<div>") and "<table" in html and f"{res.total:,.2f}" in html
    assert res._repr_html_() == html
    assert "CLVResult" in repr(res) and "5 customers" in repr(res)


def test_interval_functions_give_the_numbers_of_customer_lifetime_value(small_summary):
    from custvalue.value import clv_interval_delta, clv_interval_sampling

    kw = {"horizon": 6, "time_unit": "M", "discount_rate": 0.1, "margin": 0.5}
    tx, sp = ConstantRate(0.05, sd=0.1), ConstantSpend(30.0, sd=0.2)
    full = customer_lifetime_value(tx, sp, small_summary, interval=0.8, interval_method="delta", **kw)
    delta = clv_interval_delta(tx, sp, small_summary, interval=0.8, **kw)
    pd.testing.assert_series_equal(delta.lower, full["clv_lower"], check_names=False)
    pd.testing.assert_series_equal(delta.upper, full["clv_upper"], check_names=False)
    assert (delta.total_lower, delta.total_upper) == (full.total_lower, full.total_upper)
    assert delta.method == "delta" and delta.level == 0.8
    full = customer_lifetime_value(tx, sp, small_summary, interval=0.8, n_draws=40, seed=5, **kw)
    samp = clv_interval_sampling(tx, sp, small_summary, interval=0.8, n_draws=40, seed=5, **kw)
    np.testing.assert_array_equal(samp.lower.to_numpy(), full["clv_lower"].to_numpy())
    np.testing.assert_array_equal(samp.upper.to_numpy(), full["clv_upper"].to_numpy())
    assert (samp.total_lower, samp.total_upper) == (full.total_lower, full.total_upper)
    assert samp.method == "sample" and samp.n_draws == 40


def test_delta_interval_needs_a_covariance(small_summary):
    from custvalue.models import BetaGeoModel, GammaGammaModel
    from custvalue.value import clv_interval_delta

    bg = BetaGeoModel.from_params(r=0.24, alpha=30.9, a=0.79, b=2.43, time_unit="D")
    with pytest.raises(ParameterError, match="covariance"):
        clv_interval_delta(bg, GammaGammaModel.from_params(**CDNOW_GG), small_summary, horizon=3,
                           time_unit="M", discount_rate=0.1)


# ---------------------------------------------------------------------------------------------
# arguments refused where they are given (issue 10)
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"margin": 2.0}, r"margin .* must be in \(0, 1\]"),
        ({"margin": 0.0}, r"margin .* must be in \(0, 1\]"),
        ({"margin": -0.3}, r"margin .* must be in \(0, 1\]"),
        ({"margin": float("nan")}, r"margin .* must be in \(0, 1\]"),
        ({"margin": float("inf")}, r"margin .* must be in \(0, 1\]"),
        ({"margin": "high"}, "margin must be a number"),
        ({"discount_rate": -0.05}, "yearly rate and must be finite and >= 0"),
        ({"discount_rate": float("inf")}, "yearly rate and must be finite and >= 0"),
        ({"discount_rate": float("nan")}, "yearly rate and must be finite and >= 0"),
        ({"horizon": float("nan")}, "horizon must be > 0"),
    ],
)
def test_bad_money_arguments_are_refused(small_summary, kwargs, match):
    args = {"horizon": 12, "time_unit": "M", "discount_rate": 0.1} | kwargs
    with pytest.raises(ParameterError, match=match):
        customer_lifetime_value(ConstantRate(0.1), ConstantSpend(3.0), small_summary, **args)


@pytest.mark.parametrize(
    "price, match",
    [
        (-5.0, "price must be finite and >= 0; 5 customers"),
        (float("nan"), "price must be finite and >= 0"),
        (float("inf"), "price must be finite and >= 0"),
        ("cheap", "no column|missing"),
    ],
)
def test_bad_prices_are_refused(small_summary, price, match):
    with pytest.raises((ParameterError, DataValidationError), match=match):
        customer_lifetime_value(ConstantRate(0.1), None, small_summary, horizon=1, time_unit="M",
                                discount_rate=0.1, price=price)


def test_a_negative_price_in_a_series_names_the_customer(small_summary):
    price = pd.Series([1.0, 2.0, -3.0, 4.0, 5.0], index=small_summary.index)
    with pytest.raises(ParameterError, match=r"1 customers .*\['c'\]"):
        customer_lifetime_value(ConstantRate(0.1), None, small_summary, horizon=1, time_unit="M",
                                discount_rate=0.1, price=price)
    with pytest.raises(ParameterError, match=r"1 customers .*\['c'\]"):
        customer_lifetime_value(ConstantRate(0.1), None, small_summary.assign(p=price), horizon=1,
                                time_unit="M", discount_rate=0.1, price="p")


def test_models_in_the_wrong_role_are_named(small_summary):
    from custvalue.models import BetaGeoModel, GammaGammaModel

    bg = BetaGeoModel.from_params(r=0.24, alpha=30.9, a=0.79, b=2.43, time_unit="D")
    gg = GammaGammaModel.from_params(**CDNOW_GG)
    kw = {"horizon": 12, "time_unit": "M", "discount_rate": 0.1}
    with pytest.raises(ParameterError, match=r"transaction model .* got GammaGammaModel.* pass it as spend_model"):
        customer_lifetime_value(gg, bg, small_summary, **kw)
    with pytest.raises(ParameterError, match=r"spend model .* got BetaGeoModel.* pass it as transaction_model"):
        customer_lifetime_value(bg, bg, small_summary, **kw)
    with pytest.raises(ParameterError, match=r"transaction model .* got str"):
        customer_lifetime_value("bgnbd", gg, small_summary, **kw)
    with pytest.raises(DataValidationError, match="load_transactions returns"):
        customer_lifetime_value(bg, gg, (small_summary, None), **kw)


def test_protocols_recognise_the_package_models_and_duck_typed_ones():
    from custvalue._protocols import ContractualModel, SampleableModel, SpendModel, TransactionModel
    from custvalue.models import BetaGeoModel, GammaGammaModel, ParetoNBDModel
    from custvalue.models.shifted_beta_geo import ShiftedBetaGeoModel

    assert isinstance(BetaGeoModel(), TransactionModel) and not isinstance(BetaGeoModel(), SpendModel)
    assert isinstance(ParetoNBDModel(), TransactionModel)
    assert isinstance(GammaGammaModel(), SpendModel) and not isinstance(GammaGammaModel(), TransactionModel)
    assert isinstance(ShiftedBetaGeoModel(), ContractualModel)
    assert isinstance(ConstantRate(0.1), TransactionModel) and isinstance(ConstantRate(0.1), SampleableModel)
    assert isinstance(ConstantSpend(1.0), SpendModel)


# ---------------------------------------------------------------------------------------------
# time units of the model and the data (issue 10)
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cdnow_tx() -> pd.DataFrame:
    from custvalue.datasets import load_cdnow

    return load_cdnow("sample")


def test_weekly_model_refuses_a_daily_summary_and_converts_on_request(cdnow_tx):
    """A model fitted in weeks reads a daily summary's recency and T as weeks (a value several
    times too small); it must refuse, and with convert_unit=True value the daily summary like
    the weekly one (the two summaries differ only in merging purchases per day or per week)."""
    from custvalue.models import BetaGeoModel, GammaGammaModel
    from custvalue.summary import rfm_summary

    bg = BetaGeoModel.from_params(**CDNOW_BG, time_unit="W")
    gg = GammaGammaModel.from_params(**CDNOW_GG)
    weekly, daily = rfm_summary(cdnow_tx, freq="W"), rfm_summary(cdnow_tx, freq="D")
    kw = {"horizon": 12, "time_unit": "M", "discount_rate": 0.1}
    with pytest.raises(ParameterError, match=r"weeks \(time_unit_='W'\).*days \(data.attrs\['freq'\]='D'\)"
                                             r".*rfm_summary\(tx, freq='W'\).*convert_unit=True"):
        customer_lifetime_value(bg, gg, daily, **kw)
    ref = customer_lifetime_value(bg, gg, weekly, **kw)
    conv = customer_lifetime_value(bg, gg, daily, convert_unit=True, **kw)
    assert conv.total == pytest.approx(ref.total, rel=0.01)
    assert conv.settings.converted and conv.settings.data_time_unit == "D"
    assert daily.attrs["freq"] == "D" and daily["T"].max() > 500  # the caller's frame untouched
    # a summary without a unit is taken to be in the model's unit (nothing to check against)
    bare = weekly.copy()
    bare.attrs = {}
    assert customer_lifetime_value(bg, gg, bare, **kw).total == pytest.approx(ref.total, rel=1e-12)


def test_contractual_unit_mismatch_is_refused():
    from custvalue.models.shifted_beta_geo import ShiftedBetaGeoModel

    m = ShiftedBetaGeoModel.from_params(alpha=0.668, beta=3.806, time_unit="Y")
    subs = pd.DataFrame({"T": [1, 4], "churned": [False, False]}, index=["a", "b"])
    subs.attrs["freq"] = "M"
    for convert in (False, True):
        with pytest.raises(ParameterError, match="year"):
            customer_lifetime_value(m, None, subs, horizon=np.inf, time_unit="Y", discount_rate=0.1,
                                    price=10.0, convert_unit=convert)


# ---------------------------------------------------------------------------------------------
# heuristic LTV counts orders like rfm_summary (issue 9)
# ---------------------------------------------------------------------------------------------
def _heuristic_orders_per_customer(tx, **kw):
    from custvalue.value import _customer_orders

    return _customer_orders(tx, None, "customer_id", "date", "amount", kw.get("order_col"), None)["n_orders"]


def test_heuristic_order_count_equals_rfm_summary_on_cdnow(cdnow_tx):
    from custvalue.summary import rfm_summary

    rfm = rfm_summary(cdnow_tx, freq="D")
    res = heuristic_ltv(cdnow_tx, margin=1.0, lifetime_months=12)
    assert res.loc["all", "n_orders"] == rfm["n_orders"].sum() == 6696  # 6,919 lines, same-day merged
    assert res.loc["all", "revenue"] == pytest.approx(rfm["total_spend"].sum())


def test_heuristic_order_count_equals_rfm_summary_on_simulated_data_with_times_of_day():
    """Simulated transactions plus a second purchase later on the same day for some customers:
    rfm_summary counts distinct timestamps as orders, and so must the heuristic (the old rule,
    one order per calendar day, counted fewer)."""
    from custvalue.datasets import simulate
    from custvalue.summary import rfm_summary

    tx = simulate(400, seed=3).transactions[["customer_id", "date", "amount", "region"]]
    extra = tx.iloc[::7].assign(date=lambda d: d["date"] + pd.Timedelta(hours=15))
    tx = pd.concat([tx, extra], ignore_index=True)
    rfm = rfm_summary(tx, freq="D", attributes=["region"])
    res = heuristic_ltv(tx, margin=0.5, lifetime_months=12, by="region")
    per_region = rfm.groupby("region", observed=True)["n_orders"].sum()
    np.testing.assert_array_equal(res["n_orders"].to_numpy(), per_region.reindex(res.index).to_numpy())
    assert res["n_orders"].sum() > tx.assign(d=tx["date"].dt.normalize())[["customer_id", "d"]].drop_duplicates().shape[0]
    # with an order column, orders are distinct order ids, as in rfm_summary
    with_orders = tx.assign(order_id=np.arange(len(tx)) // 2)
    rfm_o = rfm_summary(with_orders, freq="D", attributes=())
    assert heuristic_ltv(with_orders, margin=0.5, lifetime_months=12)["n_orders"].sum() == rfm_o["n_orders"].sum()
