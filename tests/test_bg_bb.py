"""BG/BB model (Fader, Hardie & Shang 2010, Marketing Science 29(6), "FHS 2010").

References used here:
* lifetimes 0.11.3 ``BetaGeoBetaBinomFitter`` (independent implementation) and its bundled
  donations data (``donations.csv``: frequency, recency, periods, weights; 11,104 donors, 6
  yearly opportunities);
* the published estimates for those data (FHS 2010; also in the Fader & Hardie BG/BB Excel
  note, 2011): alpha = 1.204, beta = 0.750, gamma = 0.657, delta = 2.783, LL = -33,225.6;
* closed forms and brute-force sums; simulation with known parameters.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from custvalue.errors import DataValidationError, ModelNotFittedError, ParameterError
from custvalue.models import BetaGeoBetaBinomModel
from custvalue.models.bg_bb import (
    bgbb_dert,
    bgbb_expected_purchases,
    bgbb_log_likelihood,
    bgbb_probability_alive,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from lifetimes import BetaGeoBetaBinomFitter
    from lifetimes.datasets import load_donations as lt_load_donations

PUBLISHED = {"alpha": 1.204, "beta": 0.750, "gamma": 0.657, "delta": 2.783}
PUBLISHED_LL = -33225.6


@pytest.fixture(scope="module")
def donations() -> pd.DataFrame:
    raw = lt_load_donations()
    return raw.rename(columns={"periods": "T", "weights": "weight"})


@pytest.fixture(scope="module")
def lifetimes_fit(donations):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return BetaGeoBetaBinomFitter().fit(
            donations["frequency"], donations["recency"], donations["T"], weights=donations["weight"]
        )


@pytest.fixture(scope="module")
def fitted(donations) -> BetaGeoBetaBinomModel:
    return BetaGeoBetaBinomModel().fit(donations)


def _sig(x: float, digits: int = 4) -> float:
    return float(f"{x:.{digits - 1}e}")


def test_fit_reproduces_lifetimes_on_donations(fitted, lifetimes_fit, donations):
    for name in ("alpha", "beta", "gamma", "delta"):
        assert _sig(fitted.params_[name]) == _sig(lifetimes_fit.params_[name]), name
    # lifetimes minimises the weight-averaged negative log-likelihood
    lt_ll = -lifetimes_fit._negative_log_likelihood_ * donations["weight"].sum()
    assert fitted.log_likelihood_ == pytest.approx(lt_ll, rel=1e-6)


def test_fit_matches_published_estimates(fitted):
    for name, value in PUBLISHED.items():
        assert fitted.params_[name] == pytest.approx(value, abs=6e-4), name
    assert fitted.log_likelihood_ == pytest.approx(PUBLISHED_LL, abs=0.05)
    assert fitted.n_customers_ == 11104
    assert fitted.n_unique_rows_ == 22
    se = fitted.standard_errors_
    assert np.all(np.isfinite(se)) and np.all(se > 0)
    assert fitted.aic_ == pytest.approx(8 - 2 * fitted.log_likelihood_)


def test_predictions_match_lifetimes(lifetimes_fit, donations):
    p = lifetimes_fit.params_
    model = BetaGeoBetaBinomModel.from_params(**p.to_dict(), time_unit="Y")
    x, tx, n = donations["frequency"], donations["recency"], donations["T"]
    for t in (0, 1, 5):
        ours = model.probability_alive(donations, t=t).to_numpy()
        ref = lifetimes_fit.conditional_probability_alive(t, x, tx, n)
        np.testing.assert_allclose(ours, ref, rtol=1e-9)
    for t in (1, 5, 10):
        ours = model.expected_purchases(donations, t).to_numpy()
        ref = lifetimes_fit.conditional_expected_number_of_purchases_up_to_time(t, x, tx, n)
        np.testing.assert_allclose(ours, ref, rtol=1e-9)


def test_expected_purchases_new_customer_matches_lifetimes_distribution(lifetimes_fit):
    # lifetimes gives P(X(n) = x) * customers for x = 0..6 (FHS 2010 eq. 7); its mean is E[X(n)]
    dist = lifetimes_fit.expected_number_of_transactions_in_first_n_periods(6)["model"]
    mean = float((dist.index.to_numpy() * dist.to_numpy()).sum() / dist.sum())
    model = BetaGeoBetaBinomModel.from_params(**lifetimes_fit.params_.to_dict())
    assert model.expected_purchases_new_customer(6) == pytest.approx(mean, rel=1e-9)
    assert dist.sum() == pytest.approx(11104, rel=1e-9)


def test_dert_equals_discounted_sum_of_expected_transactions(fitted, donations):
    # DERT (FHS 2010) = sum_k [E X(n, n+k) - E X(n, n+k-1)] / (1+d)^k
    a, b, g, dl = fitted.params_.to_numpy()
    x, tx, n = (donations[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    d = 0.10
    k = np.arange(0, 600)
    cum = np.stack([bgbb_expected_purchases(a, b, g, dl, x, tx, n, kk) for kk in k], axis=1)
    brute = (np.diff(cum, axis=1) / (1 + d) ** k[None, 1:]).sum(axis=1)
    ours = fitted.expected_residual_transactions(donations, 0.10).to_numpy()
    np.testing.assert_allclose(ours, brute, rtol=1e-9)
    # undiscounted limit: customers with the same history, larger DERT with lower discount rate
    assert np.all(fitted.dert(donations, 0.05).to_numpy() > ours)


def test_expected_purchases_continuous_through_gamma_one():
    x, tx, n = np.array([0.0, 3, 6]), np.array([0.0, 4, 6]), np.array([6.0, 6, 6])
    at_one = bgbb_expected_purchases(1.2, 0.75, 1.0, 2.8, x, tx, n, 10)
    near = bgbb_expected_purchases(1.2, 0.75, 1.0 + 1e-6, 2.8, x, tx, n, 10)
    np.testing.assert_allclose(at_one, near, rtol=1e-5)
    assert np.all(at_one > 0)


def test_log_likelihood_sums_to_one_over_histories():
    # all (x, t_x) histories for n opportunities are exhaustive and exclusive (FHS 2010 likelihood)
    n = 5
    rows = [(0, 0)] + [(x, t) for t in range(1, n + 1) for x in range(1, t + 1)]
    x = np.array([r[0] for r in rows], float)
    tx = np.array([r[1] for r in rows], float)
    # multiplicity: number of binary sequences with x ones and last one at t_x: C(t_x - 1, x - 1)
    from scipy.special import comb

    mult = np.where(x > 0, comb(tx - 1, x - 1), 1.0)
    ll = bgbb_log_likelihood(0.8, 1.3, 0.5, 2.0, x, tx, np.full_like(x, n))
    assert float((mult * np.exp(ll)).sum()) == pytest.approx(1.0, abs=1e-12)


def test_parameter_recovery_on_simulated_donors():
    rng = np.random.default_rng(7)
    truth = {"alpha": 1.2, "beta": 0.75, "gamma": 0.66, "delta": 2.78}
    n_cust, n_opp = 40_000, 8
    p = rng.beta(truth["alpha"], truth["beta"], n_cust)
    theta = rng.beta(truth["gamma"], truth["delta"], n_cust)
    # alive at opportunity k (k = 1..n) if no death after opportunities 0..k-1 (FHS 2010, sec. 2)
    death = rng.geometric(theta)  # first opportunity at which the customer is dead
    k = np.arange(1, n_opp + 1)[None, :]
    alive = k < death[:, None]
    buy = alive & (rng.random((n_cust, n_opp)) < p[:, None])
    freq = buy.sum(axis=1)
    rec = np.where(freq > 0, n_opp - np.argmax(buy[:, ::-1], axis=1), 0)
    data = pd.DataFrame({"frequency": freq, "recency": rec, "T": n_opp})
    model = BetaGeoBetaBinomModel().fit(data)
    for name, value in truth.items():
        est, se = model.params_[name], model.standard_errors_[name]
        assert abs(est - value) < 4 * se, (name, est, value, se)


def test_save_load_roundtrip(fitted, donations, tmp_path):
    path = tmp_path / "bgbb.json"
    fitted.save(path)
    loaded = BetaGeoBetaBinomModel.load(path)
    pd.testing.assert_series_equal(loaded.params_, fitted.params_)
    pd.testing.assert_series_equal(
        loaded.probability_alive(donations), fitted.probability_alive(donations)
    )
    assert loaded.log_likelihood_ == pytest.approx(fitted.log_likelihood_)


def test_sample_and_with_params(fitted, donations):
    draws = fitted.sample_params(50, seed=1)
    assert list(draws.columns) == ["alpha", "beta", "gamma", "delta"]
    assert (draws.to_numpy() > 0).all()
    other = fitted.with_params(draws.iloc[0])
    pa = other.probability_alive(donations)
    assert pa.between(0, 1).all()
    assert BetaGeoBetaBinomModel.contractual is False


def test_predictions_are_indexed_like_input(fitted):
    data = pd.DataFrame(
        {"frequency": [0, 2, 6], "recency": [0, 5, 6], "T": [6, 6, 6]}, index=["a", "b", "c"]
    )
    out = fitted.expected_purchases(data, 5)
    assert list(out.index) == ["a", "b", "c"]
    # a donor who gave every year is more likely alive than one who stopped after year 5
    pa = fitted.probability_alive(data)
    assert pa["c"] > pa["b"]
    # P(alive) after a donation at the last opportunity is 1 (FHS 2010 eq. A10 with t_x = n)
    assert pa["c"] == pytest.approx(1.0, abs=1e-12)


def test_impossible_data_raise_clear_errors(fitted):
    base = {"frequency": [1], "recency": [5], "T": [4]}
    with pytest.raises(DataValidationError, match="recency exceeds T"):
        BetaGeoBetaBinomModel().fit(pd.DataFrame(base))
    with pytest.raises(DataValidationError, match="frequency exceeds recency"):
        fitted.probability_alive(pd.DataFrame({"frequency": [4], "recency": [2], "T": [6]}))
    with pytest.raises(DataValidationError, match="negative"):
        fitted.probability_alive(pd.DataFrame({"frequency": [0], "recency": [0], "T": [-1]}))
    with pytest.raises(DataValidationError, match="whole numbers"):
        fitted.expected_purchases(pd.DataFrame({"frequency": [1], "recency": [2.5], "T": [6]}), 2)
    with pytest.raises(DataValidationError, match="missing"):
        fitted.expected_purchases(pd.DataFrame({"frequency": [1], "T": [6]}), 2)
    with pytest.raises(ParameterError):
        fitted.expected_residual_transactions(pd.DataFrame(base | {"T": [6]}), 0.0)
    with pytest.raises(ModelNotFittedError):
        BetaGeoBetaBinomModel().probability_alive(pd.DataFrame(base | {"T": [6]}))


def test_compression_makes_large_fits_cheap(donations):
    # 11,104 donors as individual rows give exactly the weighted fit
    rows = donations.loc[donations.index.repeat(donations["weight"])].drop(columns="weight")
    model = BetaGeoBetaBinomModel().fit(rows.reset_index(drop=True))
    assert model.n_unique_rows_ == 22
    assert model.log_likelihood_ == pytest.approx(PUBLISHED_LL, abs=0.05)


@st.composite
def _histories(draw):
    n = draw(st.integers(min_value=0, max_value=200))
    tx = draw(st.integers(min_value=0, max_value=n))
    x = 0 if tx == 0 else draw(st.integers(min_value=1, max_value=tx))
    return x, tx, n


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    hist=_histories(),
    a=st.floats(1e-2, 1e3),
    b=st.floats(1e-2, 1e3),
    g=st.floats(1e-2, 1e3),
    d=st.floats(1e-2, 1e3),
    t=st.integers(0, 500),
)
def test_predictions_finite_and_in_range(hist, a, b, g, d, t):
    x, tx, n = (np.array([v], float) for v in hist)
    ll = bgbb_log_likelihood(a, b, g, d, x, tx, n)
    assert np.isfinite(ll).all() and (ll <= 1e-12).all()
    pa = bgbb_probability_alive(a, b, g, d, x, tx, n, t)
    assert np.isfinite(pa).all() and ((pa >= 0) & (pa <= 1)).all()
    ex = bgbb_expected_purchases(a, b, g, d, x, tx, n, t)
    assert np.isfinite(ex).all() and (ex >= 0).all() and (ex <= t * (1 + 1e-9) + 1e-12).all()
    dert = bgbb_dert(a, b, g, d, x, tx, n, 0.1)
    assert np.isfinite(dert).all() and (dert >= 0).all() and (dert <= 10.0 + 1e-9).all()


def test_probability_of_purchases_is_a_distribution_with_eq13_mean(fitted, donations):
    # the FHS 2010 conditional distribution sums to one over k = 0..t and its mean is eq. (13) (checked against
    # lifetimes above)
    for t in (0, 1, 4, 10):
        probs = np.stack([fitted.probability_of_purchases(donations, k, t).to_numpy() for k in range(t + 1)])
        np.testing.assert_allclose(probs.sum(axis=0), 1.0, atol=1e-12)
        mean = (np.arange(t + 1)[:, None] * probs).sum(axis=0)
        np.testing.assert_allclose(mean, fitted.expected_purchases(donations, t).to_numpy(), rtol=1e-10, atol=1e-14)
    assert (fitted.probability_of_purchases(donations, 3, 2) == 0).all()
    with pytest.raises(ParameterError, match="whole number"):
        fitted.probability_of_purchases(donations, 1.5, 3)


def test_lifetimes_column_names_get_a_hint():
    raw = lt_load_donations()
    with pytest.raises(DataValidationError, match="rename"):
        BetaGeoBetaBinomModel().fit(raw)
