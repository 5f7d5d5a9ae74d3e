"""Gamma-Gamma spend model: lifetimes parity, recovery, validation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lifetimes import GammaGammaFitter
from lifetimes.datasets import load_cdnow_summary_data_with_monetary_value

from custvalue.errors import DataValidationError, ParameterError
from custvalue.models import GammaGammaModel


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    return load_cdnow_summary_data_with_monetary_value()


def test_parity_with_lifetimes(cdnow):
    ours = GammaGammaModel().fit(cdnow)  # frequency == 0 rows are left out by the model
    rep = cdnow[cdnow["frequency"] > 0]
    ref = GammaGammaFitter().fit(rep["frequency"], rep["monetary_value"])
    ref_params = ref.params_[["p", "q", "v"]].to_numpy()
    np.testing.assert_allclose(ours.params_.to_numpy(), ref_params, rtol=1e-4)
    ref_ll = -GammaGammaFitter._negative_log_likelihood(
        np.log(ref_params), rep["frequency"].to_numpy(), rep["monetary_value"].to_numpy(),
        np.ones(len(rep)), 0.0,
    ) * len(rep)
    assert ours.log_likelihood_ == pytest.approx(ref_ll, rel=1e-6)
    assert ours.log_likelihood_ >= ref_ll - 1e-6
    assert ours.n_customers_ == len(rep)
    same = GammaGammaFitter()
    same.params_ = pd.Series(ours.params_.to_numpy(), index=["p", "q", "v"])
    np.testing.assert_allclose(
        ours.expected_spend(cdnow).to_numpy(),
        same.conditional_expected_average_profit(cdnow["frequency"], cdnow["monetary_value"]).to_numpy(),
        rtol=1e-10,
    )
    # published (Fader, Hardie & Lee 2005b; Fader & Hardie 2013 note): p=6.25, q=3.74, gamma=15.44
    np.testing.assert_allclose(ours.params_.to_numpy(), [6.25, 3.74, 15.44], atol=0.01)


def test_expected_spend_shrinks_towards_the_population_mean(cdnow):
    m = GammaGammaModel().fit(cdnow)
    pop = m.expected_population_spend()
    p, q, g = m.params_
    assert pop == pytest.approx(p * g / (q - 1))
    es = m.expected_spend(cdnow)
    zero = cdnow["frequency"] == 0
    np.testing.assert_allclose(es[zero], pop)
    rep = ~zero
    lo = np.minimum(pop, cdnow.loc[rep, "monetary_value"])
    hi = np.maximum(pop, cdnow.loc[rep, "monetary_value"])
    assert ((es[rep] >= lo - 1e-9) & (es[rep] <= hi + 1e-9)).all()


def test_recovers_known_parameters_from_simulation():
    truth = np.array([4.0, 6.0, 30.0])
    inside = 0
    for seed in range(5):
        rng = np.random.default_rng(seed)
        n = 8000
        x = rng.integers(1, 12, n)
        nu = rng.gamma(truth[1], 1 / truth[2], n)
        m = rng.gamma(truth[0] * x) / (x * nu)  # mean of x Gamma(p, nu) draws
        df = pd.DataFrame({"frequency": x.astype(float), "monetary_value": m})
        fit = GammaGammaModel().fit(df)
        z = np.abs(fit.params_.to_numpy() - truth) / fit.standard_errors_.to_numpy()
        inside += int((z < 2).sum())
    assert inside >= 12  # of 15; about 14 expected


def test_validation(cdnow):
    bad = cdnow.copy()
    bad.loc[bad.index[bad["frequency"] > 0][:2], "monetary_value"] = 0.0
    with pytest.raises(DataValidationError, match="monetary_value must be > 0"):
        GammaGammaModel().fit(bad)
    # a prediction is linear in m (Fader & Hardie 2013, eq. 5): zero-value repeat buyers can be
    # valued by a fitted model, and get p * gamma / (p x + q - 1)
    fitted = GammaGammaModel.from_params(p=6.25, q=3.74, gamma=15.44)
    spend = fitted.expected_spend(bad)
    zero = bad.index[(bad["frequency"] > 0) & (bad["monetary_value"] == 0)]
    x = bad.loc[zero, "frequency"]
    np.testing.assert_allclose(spend[zero], 6.25 * 15.44 / (6.25 * x + 3.74 - 1.0), rtol=1e-12)
    negative = bad.assign(monetary_value=bad["monetary_value"].where(bad["frequency"] == 0, -1.0))
    with pytest.raises(DataValidationError, match=r"negative values \(customers"):
        fitted.expected_spend(negative)
    with pytest.raises(DataValidationError, match="monetary_value"):
        GammaGammaModel().fit(cdnow.drop(columns="monetary_value"))
    with pytest.raises(DataValidationError, match="no customers"):
        GammaGammaModel().fit(cdnow.assign(frequency=0, recency=0))


def test_heavy_tail_is_reported_not_nan():
    m = GammaGammaModel.from_params(p=2.0, q=0.8, gamma=10.0)
    with pytest.raises(ParameterError, match="infinite"):
        m.expected_population_spend()
    df = pd.DataFrame({"frequency": [0.0, 3.0], "monetary_value": [0.0, 20.0]})
    with pytest.raises(ParameterError, match="infinite"):
        m.expected_spend(df)
    assert np.isfinite(m.expected_spend(df.iloc[[1]])).all()


def test_save_load(tmp_path, cdnow):
    m = GammaGammaModel().fit(cdnow)
    m.save(tmp_path / "gg.json")
    back = GammaGammaModel.load(tmp_path / "gg.json")
    pd.testing.assert_series_equal(back.expected_spend(cdnow), m.expected_spend(cdnow))


@settings(max_examples=60, deadline=None)
@given(
    p=st.floats(0.05, 50), q=st.floats(1.01, 50), g=st.floats(0.01, 1e4),
    x=st.integers(0, 5000), mval=st.floats(0.01, 1e6),
)
def test_expected_spend_is_finite_and_between_prior_and_own_mean(p, q, g, x, mval):
    m = GammaGammaModel.from_params(p=p, q=q, gamma=g)
    df = pd.DataFrame({"frequency": [float(x)], "monetary_value": [mval if x else 0.0]})
    es = m.expected_spend(df).iloc[0]
    pop = p * g / (q - 1)
    assert np.isfinite(es) and es > 0
    if x:
        assert min(pop, mval) * (1 - 1e-9) <= es <= max(pop, mval) * (1 + 1e-9)
    ll = m._log_likelihood_rows(np.log(m.params_.to_numpy()), {"frequency": np.array([max(x, 1.0)]), "monetary_value": np.array([mval])})
    assert np.isfinite(ll).all()


@pytest.mark.parametrize("p", [6.25, 1e7, 1.0686e13])
def test_log_likelihood_stays_accurate_for_a_huge_shape_p(cdnow, p):
    """Issue 9: written naively, the rounding error of eq. 3 grows like p (about 0.1 in total at
    p = 1e13 on CDNOW), enough to make p -> inf, gamma -> 0 look better than the real optimum
    on some CPUs. Reference: the same equation in 60-digit mpmath."""
    import mpmath as mp

    rep = cdnow[cdnow["frequency"] > 0]
    x, m = rep["frequency"].to_numpy(float), rep["monetary_value"].to_numpy(float)
    q, gamma = 2.9739, 7.4e1 / p
    model = GammaGammaModel()
    data = model._prepare_data({"frequency": x, "monetary_value": m})
    ours = model._log_likelihood_rows(np.log([p, q, gamma]), data).sum()
    totals = model._loglik_and_gradient_totals(np.log([p, q, gamma]), data, np.ones(x.size))[0]
    with mp.workdps(60):
        P, Q, G = mp.mpf(p), mp.mpf(q), mp.mpf(gamma)
        ref = mp.fsum(
            mp.loggamma(P * xi + Q) - mp.loggamma(P * xi) - mp.loggamma(Q) + Q * mp.log(G)
            + (P * xi - 1) * mp.log(mi) + P * xi * mp.log(xi) - (P * xi + Q) * mp.log(G + xi * mi)
            for xi, mi in zip(map(mp.mpf, x), map(mp.mpf, m), strict=True)
        )
    assert ours == pytest.approx(float(ref), abs=1e-8)
    assert totals == pytest.approx(float(ref), abs=1e-8)
