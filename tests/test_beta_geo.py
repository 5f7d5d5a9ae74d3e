"""BG/NBD and MBG/NBD: parity with lifetimes, published values, stability, recovery."""

from __future__ import annotations

import warnings
from pathlib import Path

import lifetimes
import mpmath as mp
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lifetimes import BetaGeoFitter, ModifiedBetaGeoFitter
from lifetimes.datasets import load_cdnow_summary

from custvalue.errors import ConvergenceError
from custvalue.models import BetaGeoModel, BoundaryFitWarning, ModifiedBetaGeoModel
from custvalue.models.beta_geo import bg_alive_expectation

COLS = ["frequency", "recency", "T"]


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    df = load_cdnow_summary(index_col=[0])
    df.attrs["freq"] = "W"
    return df


def _arrays(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return tuple(df[c].to_numpy(dtype=float) for c in COLS)  # type: ignore[return-value]


def _lifetimes_ll(fitter_cls, params: np.ndarray, df: pd.DataFrame) -> float:
    f, r, T = _arrays(df)
    mean_nll = fitter_cls._negative_log_likelihood(np.log(params), f, r, T, np.ones(f.size), 0.0)
    return -mean_nll * f.size  # lifetimes reports the mean negative log-likelihood


@pytest.mark.parametrize(
    ("model_cls", "fitter_cls"),
    [(BetaGeoModel, BetaGeoFitter), (ModifiedBetaGeoModel, ModifiedBetaGeoFitter)],
)
def test_parity_with_lifetimes_on_cdnow_sample(cdnow, model_cls, fitter_cls):
    ours = model_cls().fit(cdnow)
    f, r, T = _arrays(cdnow)
    ref = fitter_cls().fit(f, r, T)
    ref_params = ref.params_[["r", "alpha", "a", "b"]].to_numpy()
    np.testing.assert_allclose(ours.params_.to_numpy(), ref_params, rtol=1e-4)
    ref_ll = _lifetimes_ll(fitter_cls, ref_params, cdnow)
    assert ours.log_likelihood_ == pytest.approx(ref_ll, rel=1e-6)
    assert ours.log_likelihood_ >= ref_ll - 1e-6
    # the same likelihood function: evaluate lifetimes' at our optimum
    assert _lifetimes_ll(fitter_cls, ours.params_.to_numpy(), cdnow) == pytest.approx(
        ours.log_likelihood_, rel=1e-12
    )
    # predictions at identical parameters
    same = fitter_cls()
    same.params_ = pd.Series(ours.params_.to_numpy(), index=["r", "alpha", "a", "b"])
    for t in (1.0, 39.0, 104.0):
        np.testing.assert_allclose(
            ours.expected_purchases(cdnow, t).to_numpy(),
            same.conditional_expected_number_of_purchases_up_to_time(t, f, r, T),
            rtol=1e-9,
        )
        assert ours.expected_purchases_new_customer(t) == pytest.approx(
            float(same.expected_number_of_purchases_up_to_time(t)), rel=1e-10
        )
        for n in (0, 1, 2, 5):
            assert ours.probability_of_purchases_new_customer(n, t) == pytest.approx(
                float(same.probability_of_n_purchases_up_to_time(t, n)), rel=1e-9, abs=1e-14
            )
    np.testing.assert_allclose(
        ours.probability_alive(cdnow).to_numpy(),
        np.asarray(same.conditional_probability_alive(f, r, T)).ravel(),
        rtol=1e-12,
        atol=1e-14,
    )
    assert ours.time_unit_ == "W"
    assert ours.n_customers_ == len(cdnow)


def test_published_bgnbd_cdnow_estimates(cdnow):
    # Fader, Hardie & Lee (2005), Marketing Science 24(2), section 4: CDNOW 1/10th sample, weeks
    m = BetaGeoModel().fit(cdnow)
    assert m.params_["r"] == pytest.approx(0.243, abs=5e-4)
    assert m.params_["alpha"] == pytest.approx(4.414, abs=5e-4)
    assert m.params_["a"] == pytest.approx(0.793, abs=5e-4)
    assert m.params_["b"] == pytest.approx(2.426, abs=5e-4)
    assert m.log_likelihood_ == pytest.approx(-9582.4, abs=0.05)
    # inference: positive standard errors, intervals that bracket the estimates
    ci = m.confidence_intervals_
    assert (ci["lower"] < m.params_).all() and (ci["upper"] > m.params_).all()
    assert (m.standard_errors_ > 0).all()


@pytest.mark.slow
def test_parity_with_lifetimes_on_cdnow_master():
    from lifetimes.utils import summary_data_from_transaction_data

    path = Path(lifetimes.__file__).parent / "datasets" / "CDNOW_master.txt"
    tx = pd.read_csv(path, sep=r"\s+", header=0, names=["id", "date", "qty", "amount"])
    tx["date"] = pd.to_datetime(tx["date"].astype(str), format="%Y%m%d")
    summ = summary_data_from_transaction_data(
        tx, "id", "date", freq="W", observation_period_end="1998-06-30"
    )
    f, r, T = _arrays(summ)
    for model_cls, fitter_cls in [
        (BetaGeoModel, BetaGeoFitter),
        (ModifiedBetaGeoModel, ModifiedBetaGeoFitter),
    ]:
        ours = model_cls(time_unit="W").fit(summ)
        ref = fitter_cls().fit(f, r, T)
        ref_params = ref.params_[["r", "alpha", "a", "b"]].to_numpy()
        np.testing.assert_allclose(ours.params_.to_numpy(), ref_params, rtol=1e-4)
        ref_ll = _lifetimes_ll(fitter_cls, ref_params, summ)
        assert ours.log_likelihood_ == pytest.approx(ref_ll, rel=1e-6)
        assert ours.log_likelihood_ >= ref_ll - 1e-6
        same = fitter_cls()
        same.params_ = pd.Series(ours.params_.to_numpy(), index=["r", "alpha", "a", "b"])
        np.testing.assert_allclose(
            ours.expected_purchases(summ, 52.0).to_numpy(),
            same.conditional_expected_number_of_purchases_up_to_time(52.0, f, r, T),
            rtol=1e-8,
        )


def _mp_alive_expectation(s, a, beta, u):
    c = a + beta - 1
    mp.mp.dps = 30
    return float(mp.mpf(c) / (a - 1) * (1 - mp.hyp2f1(a - 1, s, c, -u)))


@pytest.mark.parametrize("a", [0.05, 0.79, 1.3, 20.0])
@pytest.mark.parametrize("b", [0.3, 2.4, 50.0])
@pytest.mark.parametrize("x", [0, 1, 40, 3000])
def test_alive_expectation_matches_mpmath_on_extreme_grid(a, b, x):
    r = 0.24
    us = [1e-5, 0.3, 3.0, 80.0, 3000.0]
    got = bg_alive_expectation(r + x, a, b + x, np.array(us))
    for u, g in zip(us, got, strict=True):
        assert g == pytest.approx(_mp_alive_expectation(r + x, a, b + x, u), rel=1e-9)


def test_alive_expectation_near_a_equal_one_and_at_the_beta_limit():
    # a = 1 is a removable singularity of (a+b-1)/(a-1) [1 - 2F1(...)]: continuous across it
    vals = bg_alive_expectation(2.5, np.array([1 - 1e-9, 1.0, 1 + 1e-9]), 4.0, 1.7)
    assert np.ptp(vals) < 1e-7 * vals.mean()
    # a, b -> infinity with p = a/(a+b): E[(1 - (1+pu)^-s)/p] -> (1 - (1 + p u)^-s) / p
    p, s, u = 0.25, 3.3, 7.0
    limit = (1 - (1 + p * u) ** -s) / p
    got = bg_alive_expectation(s, 1e9 * p, 1e9 * (1 - p), u)
    assert got == pytest.approx(limit, rel=1e-6)


def test_extreme_inputs_give_finite_predictions():
    m = BetaGeoModel.from_params(r=0.24, alpha=30.0, a=0.79, b=2.4, time_unit="D")
    mb = ModifiedBetaGeoModel.from_params(r=0.52, alpha=43.0, a=0.89, b=1.6, time_unit="D")
    ten_years = 3652.5
    x = np.array([0, 0, 1, 5, 200, 1000, 5000, 5000, 3000])
    T = np.array([0.0, ten_years, ten_years, 30, ten_years, ten_years, ten_years, ten_years, 1.0])
    rec = np.array([0.0, 0.0, 1.0, 30, ten_years, 10.0, ten_years, 5.0, 1.0])
    df = pd.DataFrame({"frequency": x, "recency": rec, "T": T})
    for model in (m, mb):
        for t in (0.0, 1.0, 365.25, 10 * 365.25):
            e = model.expected_purchases(df, t).to_numpy()
            assert np.isfinite(e).all() and (e >= 0).all()
        pa = model.probability_alive(df).to_numpy()
        assert np.isfinite(pa).all() and ((pa >= 0) & (pa <= 1)).all()
        pn = model.probability_of_purchases(df, 3, 365.25).to_numpy()
        assert np.isfinite(pn).all() and ((pn >= 0) & (pn <= 1)).all()
        ll = model._log_likelihood_rows(np.log(model.params_.to_numpy()), {c: df[c].to_numpy(float) for c in COLS})
        assert np.isfinite(ll).all()
    # heavy buyer still buying: expects about rate * t purchases
    heavy = pd.DataFrame({"frequency": [5000], "recency": [ten_years], "T": [ten_years]})
    assert m.expected_purchases(heavy, 365.25).iloc[0] == pytest.approx(
        (0.24 + 5000) / (30 + ten_years) * 365.25, rel=0.05
    )


@pytest.mark.parametrize("model_cls", [BetaGeoModel, ModifiedBetaGeoModel])
def test_conditional_pmf_is_a_distribution_with_the_right_mean(cdnow, model_cls):
    m = model_cls().fit(cdnow)
    sub = cdnow.iloc[:200]
    t = 52.0
    probs = np.column_stack([m.probability_of_purchases(sub, n, t).to_numpy() for n in range(400)])
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-8)
    mean = probs @ np.arange(400)
    np.testing.assert_allclose(mean, m.expected_purchases(sub, t).to_numpy(), rtol=1e-6)


def test_probability_alive_ahead_is_silence_until_then(cdnow):
    m = BetaGeoModel().fit(cdnow)
    now = m.probability_alive(cdnow).to_numpy()
    later = m.probability_alive(cdnow, t=10).to_numpy()
    shifted = cdnow.assign(T=cdnow["T"] + 10)
    np.testing.assert_allclose(later, m.probability_alive(shifted).to_numpy(), rtol=1e-12)
    assert (later <= now + 1e-15).all()
    assert (later[cdnow["frequency"].to_numpy() > 0] < now[cdnow["frequency"].to_numpy() > 0]).all()


def _simulate_bgnbd(n, r, alpha, a, b, T_max, seed, modified=False):
    """Exact continuous-time BG/NBD / MBG/NBD simulation (FHL 2005 assumptions i-v)."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(r, 1.0 / alpha, n)
    p = rng.beta(a, b, n)
    T = rng.uniform(0.2 * T_max, T_max, n)
    # purchases until dropout: geometric number of repeat purchases allowed
    # BG: dropout after each repeat purchase -> at most G repeat purchases, G ~ Geom(p) on 1,2,...
    # MBG: also possible at time 0 -> G - 1 on 0,1,...
    g = rng.geometric(p) - (1 if modified else 0)
    x = np.zeros(n)
    rec = np.zeros(n)
    # Poisson arrivals in (0, T]: count, then the last arrival time among the first min(G, N)
    N = rng.poisson(lam * T)
    k = np.minimum(N, g)
    x[:] = k
    # given N arrivals uniform in (0, T], the k-th order statistic of N uniforms
    has = k > 0
    rec[has] = T[has] * rng.beta(k[has], N[has] - k[has] + 1)
    return pd.DataFrame({"frequency": x, "recency": rec, "T": T})


@pytest.mark.slow
@pytest.mark.parametrize("modified", [False, True])
def test_recovers_known_parameters_from_simulation(modified):
    truth = {"r": 0.6, "alpha": 8.0, "a": 1.2, "b": 3.5}
    cls = ModifiedBetaGeoModel if modified else BetaGeoModel
    inside = []
    for seed in range(6):
        df = _simulate_bgnbd(20000, *truth.values(), T_max=60.0, seed=seed, modified=modified)
        m = cls(time_unit="W").fit(df)
        z = (m.params_ - pd.Series(truth)) / m.standard_errors_
        inside.append((z.abs() < 2).to_numpy())
    inside = np.array(inside)
    assert inside.mean() >= 0.8  # about 95% expected
    assert inside.sum(axis=0).min() >= 4  # every parameter covered in most seeds


def test_boundary_fit_returns_limiting_model_with_warning():
    # every customer has the same dropout probability: the Beta(a, b) collapses, a, b -> inf
    rng = np.random.default_rng(0)
    n = 4000
    lam = rng.gamma(3.0, 1.0 / 2.0, n)  # heavy buyers
    T = np.full(n, 40.0)
    g = rng.geometric(0.02, n)
    N = rng.poisson(lam * T)
    k = np.minimum(N, g)
    rec = np.where(k > 0, T * rng.beta(np.maximum(k, 1), N - k + 1), 0.0)
    df = pd.DataFrame({"frequency": k.astype(float), "recency": rec, "T": T})
    # lifetimes gives up on exactly this data
    from lifetimes.utils import ConvergenceError as LifetimesConvergenceError

    with pytest.raises(LifetimesConvergenceError):
        BetaGeoFitter().fit(*_arrays(df))
    with pytest.warns(BoundaryFitWarning, match="a, b"):
        m = BetaGeoModel(time_unit="W").fit(df)
    assert np.isfinite(m.params_).all()
    assert m.params_["a"] > 1e3 and m.params_["b"] > 1e3
    p_hat = m.params_["a"] / (m.params_["a"] + m.params_["b"])
    assert p_hat == pytest.approx(0.02, rel=0.3)
    assert np.isfinite(m.standard_errors_).all()
    assert np.isfinite(m.expected_purchases(df, 10.0)).all()
    draws = m.sample_params(50, seed=1)
    assert (draws > 0).all().all() and np.isfinite(draws).all().all()
    # at least as good as an interior fit with a moderately heterogeneous p
    interior = BetaGeoModel.from_params(
        r=m.params_["r"], alpha=m.params_["alpha"], a=2.0, b=98.0, time_unit="W"
    )
    ll_interior = interior._log_likelihood_rows(
        np.log(interior.params_.to_numpy()), {c: df[c].to_numpy() for c in COLS}
    ).sum()
    assert m.log_likelihood_ >= ll_interior


def test_all_zero_frequency_fit_fails_with_a_clear_error():
    df = pd.DataFrame({"frequency": np.zeros(50), "recency": np.zeros(50), "T": np.linspace(5, 50, 50)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BoundaryFitWarning)
        with pytest.raises(ConvergenceError, match=r"ran away|penalizer_coef|time unit"):
            BetaGeoModel().fit(df)


@settings(max_examples=60, deadline=None)
@given(
    r=st.floats(0.01, 20), alpha=st.floats(0.01, 500), a=st.floats(0.01, 50), b=st.floats(0.01, 50),
    x=st.integers(0, 3000), frac=st.floats(0, 1), T=st.floats(0, 4000),
    t1=st.floats(0, 3000), dt=st.floats(0.001, 3000), modified=st.booleans(),
)
def test_predictions_are_finite_bounded_and_monotone(r, alpha, a, b, x, frac, T, t1, dt, modified):
    cls = ModifiedBetaGeoModel if modified else BetaGeoModel
    m = cls.from_params(r=r, alpha=alpha, a=a, b=b)
    rec = frac * T if x > 0 else 0.0
    df = pd.DataFrame({"frequency": [x], "recency": [rec], "T": [T]})
    e1 = m.expected_purchases(df, t1).iloc[0]
    e2 = m.expected_purchases(df, t1 + dt).iloc[0]
    assert np.isfinite(e1) and np.isfinite(e2)
    assert 0 <= e1 <= e2 * (1 + 1e-9) + 1e-12
    pa = m.probability_alive(df).iloc[0]
    assert 0.0 <= pa <= 1.0
    assert 0.0 <= m.probability_alive(df, t=dt).iloc[0] <= pa + 1e-12
    pn = m.probability_of_purchases(df, 2, t1).iloc[0]
    assert 0.0 <= pn <= 1.0
    new = m.expected_purchases_new_customer(t1)
    assert np.isfinite(new) and new >= 0
