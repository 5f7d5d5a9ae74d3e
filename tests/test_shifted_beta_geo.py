"""Shifted-beta-geometric model (Fader & Hardie 2007, "How to Project Customer Retention",
Journal of Interactive Marketing 21(1), 76-90: "FH 2007"), DERL (Fader & Hardie 2010,
"Customer-Base Valuation in a Contractual Setting: The Perils of Ignoring Heterogeneity",
Marketing Science 29(1), 85-93: "FH 2010").

Reference values:
* FH 2007, Table 1: survivors of two cohorts of 1,000 customers over 12 years, "regular"
  1000, 631, 468, 382, 326, 289, 262, 241, 223, 207, 194, 183, 173 and "high end" 1000, 869,
  743, 653, 593, 551, 517, 491, 468, 445, 427, 409, 394. Fitted on years 0-7 the paper reports
  alpha = 0.704, beta = 1.182 (regular) and alpha = 0.668, beta = 3.806 (high end).
* FH 2007 (appendix, Excel implementation): the recursion P(T=1) = alpha/(alpha+beta),
  P(T=t) = (beta+t-2)/(alpha+beta+t-1) P(T=t-1) - an independent way to the likelihood.
* Closed forms (geometric limit) and brute-force sums for DERL; mpmath for 2F1.
"""

from __future__ import annotations

import mpmath as mp
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from custvalue._subscriptions import subscriptions, survivors_to_customers
from custvalue.errors import DataValidationError, ParameterError
from custvalue.models import ShiftedBetaGeoModel
from custvalue.models.shifted_beta_geo import (
    hyp2f1_a1,
    sbg_derl,
    sbg_log_likelihood,
    sbg_survival,
)

REGULAR = [1000, 631, 468, 382, 326, 289, 262, 241, 223, 207, 194, 183, 173]
HIGH_END = [1000, 869, 743, 653, 593, 551, 517, 491, 468, 445, 427, 409, 394]
PUBLISHED = {"regular": (0.704, 1.182), "high end": (0.668, 3.806)}


@pytest.fixture(scope="module")
def fh2007_rows() -> pd.DataFrame:
    table = pd.DataFrame([REGULAR[:8], HIGH_END[:8]], index=["regular", "high end"])
    return survivors_to_customers(table)


@pytest.fixture(scope="module")
def fh2007_model(fh2007_rows) -> ShiftedBetaGeoModel:
    return ShiftedBetaGeoModel(by_cohort=True, time_unit="Y").fit(fh2007_rows)


def _recursive_ll(alpha: float, beta: float, survivors: list[int]) -> float:
    """FH 2007 recursion + survivor term, written out independently."""
    s = np.asarray(survivors, float)
    p = alpha / (alpha + beta)
    ll, surv = 0.0, 1.0
    for t in range(1, s.size):
        if t > 1:
            p *= (beta + t - 2) / (alpha + beta + t - 1)
        ll += (s[t - 1] - s[t]) * np.log(p)
        surv -= p
    return ll + s[-1] * np.log(surv)


def test_fh2007_published_estimates(fh2007_model):
    for cohort, (a, b) in PUBLISHED.items():
        assert round(fh2007_model.params_[f"alpha[{cohort}]"], 3) == a
        assert round(fh2007_model.params_[f"beta[{cohort}]"], 3) == b


def test_likelihood_matches_fh2007_recursion(fh2007_model):
    total = 0.0
    for cohort, surv in (("regular", REGULAR[:8]), ("high end", HIGH_END[:8])):
        a = fh2007_model.params_[f"alpha[{cohort}]"]
        b = fh2007_model.params_[f"beta[{cohort}]"]
        total += _recursive_ll(a, b, surv)
    assert fh2007_model.log_likelihood_ == pytest.approx(total, rel=1e-10)


def test_by_cohort_equals_separate_fits(fh2007_rows, fh2007_model):
    for cohort in ("regular", "high end"):
        sub = fh2007_rows[fh2007_rows["cohort"] == cohort]
        single = ShiftedBetaGeoModel().fit(sub)
        assert single.params_["alpha"] == pytest.approx(fh2007_model.params_[f"alpha[{cohort}]"], rel=1e-6)
        assert single.params_["beta"] == pytest.approx(fh2007_model.params_[f"beta[{cohort}]"], rel=1e-6)
        assert single.standard_errors_["beta"] == pytest.approx(
            fh2007_model.standard_errors_[f"beta[{cohort}]"], rel=1e-3
        )


def test_projection_tracks_the_12_year_data(fh2007_model):
    # FH 2007 fit on years 0-7 and show the projection tracks years 8-12 closely
    surv = fh2007_model.survival(np.arange(13))
    for cohort, actual in (("regular", REGULAR), ("high end", HIGH_END)):
        proj = 1000 * surv[cohort].to_numpy()
        np.testing.assert_allclose(proj[8:], actual[8:], rtol=0.06)
    # retention rates rise over time (FH 2007, sorting effect)
    r = fh2007_model.retention_rate(np.arange(1, 13), cohort="high end").to_numpy()
    assert np.all(np.diff(r) > 0)
    s = fh2007_model.survival(np.arange(13), cohort="high end").to_numpy()
    np.testing.assert_allclose(r, s[1:] / s[:-1], rtol=1e-12)


def test_geometric_limit():
    # Beta(c*theta, c*(1-theta)) collapses on theta as c grows: sBG -> geometric (FH 2007 sec. 3)
    theta, d = 0.2, 0.1
    for c, tol in ((1e4, 5e-3), (1e7, 1e-5)):
        m = ShiftedBetaGeoModel.from_params(alpha=c * theta, beta=c * (1 - theta), time_unit="M")
        t = np.arange(0, 15)
        np.testing.assert_allclose(m.survival(t).to_numpy(), (1 - theta) ** t, rtol=tol)
        np.testing.assert_allclose(m.retention_rate([1, 5, 10]).to_numpy(), 1 - theta, rtol=tol)
        data = pd.DataFrame({"T": [0, 3, 30], "churned": [False, False, False]})
        derl = m.expected_residual_lifetime(data, d).to_numpy()
        np.testing.assert_allclose(derl, (1 - theta) * (1 + d) / (d + theta), rtol=tol)
        assert m.expected_residual_lifetime_new_customer(d) == pytest.approx((1 + d) / (d + theta), rel=tol)
        assert m.expected_lifetime() == pytest.approx(1 / theta, rel=tol)


def test_derl_equals_brute_force_sum():
    # FH 2010 eq. (6) against sum_k S(n+1+k)/S(n) (1+d)^-k for a customer with n renewals
    alpha, beta, d = 0.668, 3.806, 0.10
    k = np.arange(0, 3_000)
    for n in (0, 1, 7, 50):
        terms = sbg_survival(alpha, beta, n + 1 + k) / sbg_survival(alpha, beta, n) / (1 + d) ** k
        assert sbg_derl(alpha, beta, n, d) == pytest.approx(terms.sum(), rel=1e-10)
    # new customer (FH 2010 E(DEL)): sum_{t>=0} S(t) / (1+d)^t
    new = (sbg_survival(alpha, beta, k) / (1 + d) ** k).sum()
    assert sbg_derl(alpha, beta, -1, d) == pytest.approx(new, rel=1e-10)


@pytest.mark.parametrize(
    ("b", "c", "z"),
    [(4.806, 5.474, 1 / 1.1), (1e3, 1000.5, 1 / 1.0005), (3.7e4, 3.7e4 + 0.86, 1 / 1.0025), (2.0, 2.3, 0.0)],
)
def test_hypergeometric_helper_matches_mpmath(b, c, z):
    ref = float(mp.hyp2f1(1, mp.mpf(b), mp.mpf(c), mp.mpf(z), maxterms=10**7))
    assert float(hyp2f1_a1(b, c, z)) == pytest.approx(ref, rel=1e-9)


def test_expected_residual_lifetime_per_customer(fh2007_model, fh2007_rows):
    derl = fh2007_model.expected_residual_lifetime(fh2007_rows, 0.1)
    churned = fh2007_rows["churned"].to_numpy()
    assert (derl[churned] == 0).all()
    active = fh2007_rows.loc[~churned]
    for idx, row in active.iterrows():
        a = fh2007_model.params_[f"alpha[{row['cohort']}]"]
        b = fh2007_model.params_[f"beta[{row['cohort']}]"]
        assert derl[idx] == pytest.approx(float(sbg_derl(a, b, row["T"], 0.1)), rel=1e-12)
    # survivors of the loyal segment are worth more
    assert derl[active.index[active["cohort"] == "high end"][0]] > derl[active.index[active["cohort"] == "regular"][0]]
    new = fh2007_model.expected_residual_lifetime_new_customer(0.1)
    assert set(new.index) == {"regular", "high end"}
    pa = fh2007_model.probability_alive(fh2007_rows, t=3)
    assert (pa[churned] == 0).all() and pa[~churned].between(0, 1).all()


def test_parameter_recovery_on_simulated_subscriptions():
    from custvalue.datasets import simulate

    sim = simulate(30_000, seed=11, mode="subscription")
    truth = sim.truth["params"]
    table = subscriptions(sim.subscriptions, period="M", observation_end=sim.truth["observation_end"])
    model = ShiftedBetaGeoModel().fit(table)
    assert model.time_unit_ == "M"
    for name in ("alpha", "beta"):
        est, se = model.params_[name], model.standard_errors_[name]
        assert abs(est - truth[name]) < 4 * se, (name, est, truth[name], se)


def test_parameter_recovery_numpy_simulation():
    rng = np.random.default_rng(3)
    alpha, beta, n, horizon = 1.5, 6.0, 50_000, 24
    life = rng.geometric(rng.beta(alpha, beta, n))
    data = pd.DataFrame({"T": np.minimum(life, horizon), "churned": life <= horizon})
    model = ShiftedBetaGeoModel().fit(data)
    for name, value in (("alpha", alpha), ("beta", beta)):
        assert abs(model.params_[name] - value) < 4 * model.standard_errors_[name]


def test_save_load_and_parameter_draws(fh2007_model, fh2007_rows, tmp_path):
    path = tmp_path / "sbg.json"
    fh2007_model.save(path)
    loaded = ShiftedBetaGeoModel.load(path)
    assert loaded.by_cohort is True
    pd.testing.assert_series_equal(loaded.params_, fh2007_model.params_)
    pd.testing.assert_series_equal(
        loaded.expected_residual_lifetime(fh2007_rows, 0.1),
        fh2007_model.expected_residual_lifetime(fh2007_rows, 0.1),
    )
    draws = fh2007_model.sample_params(200, seed=2)
    assert list(draws.columns) == list(fh2007_model.params_.index)
    assert (draws.to_numpy() > 0).all()
    other = fh2007_model.with_params(draws.iloc[0])
    assert other.cohorts_ == fh2007_model.cohorts_
    assert np.isfinite(other.expected_residual_lifetime(fh2007_rows, 0.1)).all()
    assert ShiftedBetaGeoModel.contractual is True


def test_clv_uses_price_times_derl(fh2007_rows):
    from custvalue.value import customer_lifetime_value

    rows = fh2007_rows[fh2007_rows["cohort"] == "high end"].drop(columns="cohort").reset_index(drop=True)
    model = ShiftedBetaGeoModel(time_unit="Y").fit(rows)
    out = customer_lifetime_value(model, None, rows, horizon=np.inf, time_unit="Y", discount_rate=0.1, price=100.0)
    expected = 100.0 * model.expected_residual_lifetime(rows, 0.1)
    np.testing.assert_allclose(out["clv"].to_numpy(), expected.to_numpy(), rtol=1e-9)


def test_impossible_data_raise_clear_errors(fh2007_model):
    with pytest.raises(DataValidationError, match="T must be >= 1"):
        ShiftedBetaGeoModel().fit(pd.DataFrame({"T": [0, 3], "churned": [True, False]}))
    with pytest.raises(DataValidationError, match="True/False"):
        ShiftedBetaGeoModel().fit(pd.DataFrame({"T": [2, 3], "churned": [2, 0]}))
    with pytest.raises(DataValidationError, match="negative"):
        ShiftedBetaGeoModel().fit(pd.DataFrame({"T": [-2, 3], "churned": [False, False]}))
    with pytest.raises(DataValidationError, match="whole numbers"):
        ShiftedBetaGeoModel().fit(pd.DataFrame({"T": [2.5, 3], "churned": [True, False]}))
    with pytest.raises(DataValidationError, match="missing"):
        ShiftedBetaGeoModel().fit(pd.DataFrame({"T": [2, 3]}))
    with pytest.raises(DataValidationError, match="cohort"):
        ShiftedBetaGeoModel(by_cohort=True).fit(pd.DataFrame({"T": [2, 3], "churned": [True, False]}))
    with pytest.raises(DataValidationError, match="cohort"):
        fh2007_model.expected_residual_lifetime(pd.DataFrame({"T": [2], "churned": [False]}), 0.1)
    with pytest.raises(DataValidationError, match="not fitted on"):
        fh2007_model.probability_alive(pd.DataFrame({"T": [2], "churned": [False], "cohort": ["vip"]}), 1)
    with pytest.raises(ParameterError, match="discount_rate"):
        fh2007_model.expected_residual_lifetime_new_customer(0.0)
    with pytest.raises(ParameterError):
        ShiftedBetaGeoModel.from_params(alpha=1.0, beta=-1.0)
    with pytest.raises(ParameterError):
        ShiftedBetaGeoModel.from_params(alpha=1.0, gamma=1.0)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    a=st.floats(1e-3, 1e5),
    b=st.floats(1e-3, 1e5),
    T=st.integers(0, 5000),
    churned=st.booleans(),
    t=st.integers(0, 1000),
    d=st.floats(1e-3, 2.0),
)
def test_predictions_finite_and_in_range(a, b, T, churned, t, d):
    if churned:
        T = max(T, 1)
    ll = sbg_log_likelihood(a, b, np.array([T]), np.array([churned]))
    assert np.isfinite(ll).all() and (ll <= 1e-12).all()
    m = ShiftedBetaGeoModel.from_params(alpha=a, beta=b, time_unit="M")
    data = pd.DataFrame({"T": [T], "churned": [churned]})
    pa = m.probability_alive(data, t=t)
    assert pa.between(0, 1).all()
    derl = m.expected_residual_lifetime(data, d).to_numpy()
    # at most one payment per period: DERL <= sum_k (1+d)^-k = (1+d)/d
    assert np.isfinite(derl).all() and (derl >= 0).all() and (derl <= (1 + d) / d * (1 + 1e-9)).all()
    s = m.survival([t, t + 1]).to_numpy()
    assert np.isfinite(s).all() and (s[1] <= s[0] + 1e-15) and (0 <= s).all() and (s <= 1).all()
