"""Pareto/NBD: parity with lifetimes and the published CDNOW fit, extreme inputs, recovery of known
parameters from simulation, mpmath references for the predictions, property tests, save/load.

Reference values come from independent sources: lifetimes 0.11.3's ParetoNBDFitter (its fit, its
``_conditional_log_likelihood`` = Fader & Hardie 2005 eq. 18-20 and its prediction methods),
the published CDNOW estimates (Fader, Hardie & Lee 2005, "RFM and CLV", JMR; Fader & Hardie's
Pareto/NBD note: r=0.553, alpha=10.58, s=0.606, beta=11.67, LL=-9595.0), 60-digit mpmath
evaluations of the papers' closed forms, and simulation with known truth.
"""

from __future__ import annotations

import math
import os
import warnings

import mpmath as mp
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from custvalue.errors import DataValidationError, ModelNotFittedError, ParameterError
from custvalue.models.base import BaseModel
from custvalue.models.pareto_nbd import (
    ParetoNBDModel,
    pareto_nbd_gradient,
    pareto_nbd_log_likelihood,
)

lifetimes = pytest.importorskip("lifetimes")
from lifetimes import ParetoNBDFitter  # noqa: E402
from lifetimes.datasets import load_cdnow_summary  # noqa: E402

mp.mp.dps = 50
CDNOW_PUBLISHED = {"r": 0.553, "alpha": 10.58, "s": 0.606, "beta": 11.67}
PARAMS = ("r", "alpha", "s", "beta")


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    """CDNOW sample summary shipped with lifetimes (2,357 customers, weeks)."""
    return load_cdnow_summary(index_col=[0])


@pytest.fixture(scope="module")
def cdnow_fit(cdnow: pd.DataFrame) -> ParetoNBDModel:
    return ParetoNBDModel(time_unit="W").fit(cdnow)


@pytest.fixture(scope="module")
def lifetimes_cdnow_fit(cdnow: pd.DataFrame):
    x, tx, T = (cdnow[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    # lifetimes draws its Nelder-Mead start from the legacy global generator
    np.random.seed(2005)  # noqa: NPY002
    return ParetoNBDFitter().fit(x, tx, T)


def _arrays(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return tuple(df[c].to_numpy(float) for c in ("frequency", "recency", "T"))


def _lifetimes_with(params: pd.Series) -> ParetoNBDFitter:
    f = ParetoNBDFitter()
    f.params_ = pd.Series({k: float(params[k]) for k in PARAMS})
    return f


def _mp_log_likelihood(r, alpha, s, beta, x, tx, T) -> mp.mpf:
    """FH 2005 eq. (18)-(20) in mpmath (both alpha >= beta and alpha < beta cases)."""
    r, alpha, s, beta, x, tx, T = (mp.mpf(v) for v in (r, alpha, s, beta, x, tx, T))
    m = r + s + x
    if alpha >= beta:
        def a0(y):
            return mp.hyp2f1(m, s + 1, m + 1, (alpha - beta) / (alpha + y)) / (alpha + y) ** m
    else:
        def a0(y):
            return mp.hyp2f1(m, r + x, m + 1, (beta - alpha) / (beta + y)) / (beta + y) ** m
    bracket = 1 / ((alpha + T) ** (r + x) * (beta + T) ** s) + s / m * (a0(tx) - a0(T))
    return (mp.loggamma(r + x) - mp.loggamma(r) + r * mp.log(alpha) + s * mp.log(beta)
            + mp.log(bracket))


def _simulate_summary(params: dict, n: int, seed: int, horizon: float = 78.0) -> pd.DataFrame:
    """Continuous-time Pareto/NBD (SMC 1987) summary with staggered acquisition."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(params["r"], 1.0 / params["alpha"], n)
    mu = rng.gamma(params["s"], 1.0 / params["beta"], n)
    T = horizon - rng.uniform(0.0, horizon / 2.0, n)
    active = np.minimum(rng.exponential(1.0 / mu), T)
    x = rng.poisson(lam * active)
    tx = np.where(x > 0, active * rng.uniform(size=n) ** (1.0 / np.maximum(x, 1)), 0.0)
    return pd.DataFrame({"frequency": x.astype(float), "recency": tx, "T": T},
                        index=pd.RangeIndex(n, name="customer_id"))


# ----------------------------------------------------------------------------- CDNOW parity
def test_cdnow_sample_matches_published_estimates(cdnow_fit: ParetoNBDModel) -> None:
    for k, v in CDNOW_PUBLISHED.items():
        assert cdnow_fit.params_[k] == pytest.approx(v, rel=2e-3), k  # 3-4 published digits
    assert cdnow_fit.log_likelihood_ == pytest.approx(-9595.0, abs=0.05)
    assert cdnow_fit.n_customers_ == 2357
    assert list(cdnow_fit.params_.index) == list(PARAMS)


def test_cdnow_sample_matches_lifetimes_fit(cdnow, cdnow_fit, lifetimes_cdnow_fit) -> None:
    lt = lifetimes_cdnow_fit.params_
    for k in PARAMS:  # 4 significant digits
        assert cdnow_fit.params_[k] == pytest.approx(lt[k], rel=5e-4), k
    x, tx, T = _arrays(cdnow)
    ll_lt = ParetoNBDFitter._conditional_log_likelihood(lt.to_numpy(), x, tx, T).sum()
    # same definition as lifetimes' per-customer likelihood, and at least as high an optimum
    assert cdnow_fit.log_likelihood_ == pytest.approx(ll_lt, rel=1e-6)
    assert cdnow_fit.log_likelihood_ >= ll_lt - 1e-9
    # lifetimes' _negative_log_likelihood_ is neither our total nor a mean: it is the negative
    # total in time rescaled by 1/max(T), which shifts it by sum(x) * log(max T)
    shifted = -cdnow_fit.log_likelihood_ - x.sum() * math.log(T.max())
    assert lifetimes_cdnow_fit._negative_log_likelihood_ == pytest.approx(shifted, rel=1e-6)


def test_log_likelihood_rows_equal_lifetimes(cdnow) -> None:
    x, tx, T = _arrays(cdnow)
    for p in [(0.553, 10.58, 0.606, 11.67), (2.0, 3.0, 0.3, 40.0), (0.2, 40.0, 3.0, 2.0)]:
        ours = pareto_nbd_log_likelihood(*p, x, tx, T)
        theirs = ParetoNBDFitter._conditional_log_likelihood(np.array(p), x, tx, T)
        np.testing.assert_allclose(ours, theirs, rtol=1e-10)


def test_predictions_equal_lifetimes(cdnow, cdnow_fit) -> None:
    lt = _lifetimes_with(cdnow_fit.params_)
    x, tx, T = _arrays(cdnow)
    pa = cdnow_fit.probability_alive(cdnow)
    assert pa.index.equals(cdnow.index) and pa.name == "probability_alive"
    np.testing.assert_allclose(pa, lt.conditional_probability_alive(x, tx, T), rtol=1e-10)
    for t in (1.0, 10.0, 39.0, 104.0):
        np.testing.assert_allclose(
            cdnow_fit.expected_purchases(cdnow, t),
            lt.conditional_expected_number_of_purchases_up_to_time(t, x, tx, T), rtol=1e-10)
        assert cdnow_fit.expected_purchases_new_customer(t) == pytest.approx(
            float(lt.expected_number_of_purchases_up_to_time(t)), rel=1e-12)
    for n in (0, 1, 2, 5, 10):
        np.testing.assert_allclose(
            cdnow_fit.probability_of_purchases(cdnow, n, 39.0),
            lt.conditional_probability_of_n_purchases_up_to_time(n, 39.0, x, tx, T),
            rtol=1e-9, atol=1e-15)


@pytest.mark.slow
def test_cdnow_master_weekly_matches_lifetimes() -> None:
    """CDNOW master (23,570 customers), weekly summary computed with lifetimes, both fits."""
    from lifetimes.utils import summary_data_from_transaction_data

    path = os.path.join(os.path.dirname(lifetimes.__file__), "datasets", "CDNOW_master.txt")
    tx = pd.read_csv(path, sep=r"\s+", header=0, names=["id", "date", "qty", "amount"],
                     dtype={"date": str})
    tx["date"] = pd.to_datetime(tx["date"], format="%Y%m%d")
    summary = summary_data_from_transaction_data(
        tx, "id", "date", freq="W", observation_period_end="1998-06-30")
    assert len(summary) == 23570
    ours = ParetoNBDModel(time_unit="W").fit(summary)
    x, rec, T = _arrays(summary)
    # lifetimes draws its Nelder-Mead start from the legacy global generator
    np.random.seed(2005)  # noqa: NPY002
    lt = ParetoNBDFitter().fit(x, rec, T)
    for k in PARAMS:
        assert ours.params_[k] == pytest.approx(lt.params_[k], rel=5e-4), k
    ll_lt = ParetoNBDFitter._conditional_log_likelihood(lt.params_.to_numpy(), x, rec, T).sum()
    assert ours.log_likelihood_ == pytest.approx(ll_lt, rel=1e-6)
    assert ours.log_likelihood_ >= ll_lt - 1e-6
    np.testing.assert_allclose(
        ours.expected_purchases(summary, 52.0),
        _lifetimes_with(ours.params_).conditional_expected_number_of_purchases_up_to_time(
            52.0, x, rec, T), rtol=1e-9)


# ----------------------------------------------------------------------------- extreme inputs
EXTREME = pd.DataFrame(
    {
        "frequency": [0, 0, 1, 5000, 3000, 2500, 800, 40],
        "recency": [0.0, 0.0, 3649.0, 3649.5, 10.0, 3650.0, 1825.0, 0.001],
        "T": [3650.0, 0.5, 3650.0, 3650.0, 3650.0, 3650.0, 3650.0, 3650.0],
    },
    index=pd.Index(list("abcdefgh"), name="customer_id"),
)


@pytest.mark.parametrize(
    "params",
    [
        dict(r=0.55, alpha=74.0, s=0.61, beta=82.0),
        dict(r=0.55, alpha=74.0, s=0.61, beta=74.0 * (1 + 1e-12)),  # alpha == beta
        dict(r=0.243, alpha=4.41, s=0.793, beta=1.5e4),
        dict(r=12.0, alpha=0.05, s=0.02, beta=0.01),
    ],
)
def test_heavy_buyers_and_ten_year_ages_match_mpmath(params) -> None:
    x, tx, T = _arrays(EXTREME)
    ours = pareto_nbd_log_likelihood(*params.values(), x, tx, T)
    assert np.all(np.isfinite(ours))
    want = np.array([float(_mp_log_likelihood(*params.values(), *row))
                     for row in zip(x, tx, T, strict=True)])
    np.testing.assert_allclose(ours, want, rtol=1e-10)


def test_lifetimes_overflows_where_we_do_not() -> None:
    """The motivation: lifetimes' hypergeometric form is not finite for heavy buyers."""
    x, tx, T = _arrays(EXTREME)
    p = np.array([0.55, 74.0, 0.61, 82.0])
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = ParetoNBDFitter._conditional_log_likelihood(p, x, tx, T)
    assert not np.all(np.isfinite(theirs))
    assert np.all(np.isfinite(pareto_nbd_log_likelihood(*p, x, tx, T)))
    model = ParetoNBDModel.from_params(r=0.55, alpha=74.0, s=0.61, beta=82.0)
    for values in (model.probability_alive(EXTREME), model.probability_alive(EXTREME, 365.0),
                   model.expected_purchases(EXTREME, 365.0),
                   model.probability_of_purchases(EXTREME, 3, 365.0),
                   model.expected_residual_transactions(EXTREME, 0.1 / 365.0)):
        assert np.all(np.isfinite(values)) and values.index.equals(EXTREME.index)


def test_gradient_matches_finite_differences() -> None:
    data = pd.concat([_simulate_summary(dict(r=0.5, alpha=10.0, s=0.7, beta=12.0), 300, 5),
                      EXTREME.reset_index(drop=True)], ignore_index=True)
    x, tx, T = _arrays(data)
    for p in [(0.5, 10.0, 0.7, 12.0), (3.0, 0.8, 0.05, 300.0), (0.1, 200.0, 5.0, 0.5)]:
        _, grad = pareto_nbd_gradient(*p, x, tx, T)
        total = grad.sum(axis=0)
        for j in range(4):
            h = 1e-6 * p[j]
            up, dn = list(p), list(p)
            up[j] += h
            dn[j] -= h
            fd = (pareto_nbd_log_likelihood(*up, x, tx, T).sum()
                  - pareto_nbd_log_likelihood(*dn, x, tx, T).sum()) / (2 * h)
            assert total[j] == pytest.approx(fd, rel=1e-5, abs=1e-4), (p, j)


def test_fit_on_heavy_buyers_is_finite() -> None:
    data = _simulate_summary(dict(r=8.0, alpha=0.2, s=0.5, beta=300.0), 600, 11,
                             horizon=3650.0)
    assert data["frequency"].max() > 1000
    model = ParetoNBDModel(time_unit="D").fit(data)
    assert np.all(np.isfinite(model.params_)) and np.isfinite(model.log_likelihood_)
    assert np.all(np.isfinite(model.standard_errors_))
    assert model.params_["r"] == pytest.approx(8.0, rel=0.25)


# ----------------------------------------------------------------------------- predictions
def test_probability_alive_ahead_matches_mpmath() -> None:
    """P(tau > T + t | x, tx, T): joint density of the data and survival past T + t (FH 2005
    eq. 11 restricted to tau > T + t) over the likelihood, all in mpmath."""
    r, alpha, s, beta = 0.55, 10.6, 0.61, 11.7
    model = ParetoNBDModel.from_params(r=r, alpha=alpha, s=s, beta=beta, time_unit="W")
    data = pd.DataFrame({"frequency": [0, 2, 30], "recency": [0.0, 30.4, 37.0],
                         "T": [38.9, 38.9, 38.9]})
    for t in (0.0, 5.0, 52.0):
        got = model.probability_alive(data, t).to_numpy()
        for i, (x, tx, T) in enumerate(zip(*_arrays(data), strict=True)):
            joint = (mp.loggamma(r + x) - mp.loggamma(r) + r * mp.log(alpha) + s * mp.log(beta)
                     - (r + x) * mp.log(alpha + T) - s * mp.log(beta + T + t))
            want = float(mp.exp(joint - _mp_log_likelihood(r, alpha, s, beta, x, tx, T)))
            assert got[i] == pytest.approx(want, rel=1e-10)


def test_dert_matches_fhl_2005_equation_2() -> None:
    """DERT = alpha^r beta^s delta^(s-1) Gamma(r+x+1) U(s,s;delta(beta+T))
    / (Gamma(r) (alpha+T)^(r+x+1) L)  (Fader, Hardie & Lee 2005, eq. 2), in mpmath."""
    r, alpha, s, beta = 0.5533, 10.5776, 0.6062, 11.6679
    model = ParetoNBDModel.from_params(r=r, alpha=alpha, s=s, beta=beta, time_unit="W")
    data = pd.DataFrame({"frequency": [0, 1, 7, 400], "recency": [0.0, 1.7, 35.0, 38.0],
                         "T": [38.86, 38.86, 38.86, 38.86]})
    for delta in (math.log(1.15) / 52.0, 0.5):
        got = model.expected_residual_transactions(data, delta).to_numpy()
        for i, (x, tx, T) in enumerate(zip(*_arrays(data), strict=True)):
            log_num = (r * mp.log(alpha) + s * mp.log(beta) + (s - 1) * mp.log(delta)
                       + mp.loggamma(r + x + 1) + mp.log(mp.hyperu(s, s, delta * (beta + T))))
            log_den = (mp.loggamma(r) + (r + x + 1) * mp.log(alpha + T)
                       + _mp_log_likelihood(r, alpha, s, beta, x, tx, T))
            assert got[i] == pytest.approx(float(mp.exp(log_num - log_den)), rel=1e-8)


def test_dert_without_discounting_tends_to_lifetime_purchases() -> None:
    # for s > 1 the undiscounted expected future purchases are finite (FH 2005 eq. 16, t->inf)
    model = ParetoNBDModel.from_params(r=0.5, alpha=10.0, s=2.5, beta=20.0, time_unit="W")
    data = _simulate_summary(dict(r=0.5, alpha=10.0, s=2.5, beta=20.0), 50, 3)
    dert = model.expected_residual_transactions(data, 1e-9)
    np.testing.assert_allclose(dert, model.expected_purchases(data, 1e12), rtol=1e-6)


def test_purchase_distribution_sums_to_one_with_the_right_mean(cdnow_fit, cdnow) -> None:
    data = pd.concat([cdnow.iloc[:20], pd.DataFrame(
        {"frequency": [60.0], "recency": [38.0], "T": [38.86]}, index=[99999])])
    t = 26.0
    probs = np.column_stack([cdnow_fit.probability_of_purchases(data, n, t)
                             for n in range(0, 130)])
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-9)
    mean = probs @ np.arange(130)
    np.testing.assert_allclose(mean, cdnow_fit.expected_purchases(data, t), rtol=1e-7)


def test_expected_purchases_new_customer_limits() -> None:
    model = ParetoNBDModel.from_params(r=0.5, alpha=10.0, s=1.0, beta=20.0)  # s == 1 exactly
    t = np.array([0.0, 1.0, 50.0])
    # s = 1: r beta / alpha * log(1 + t / beta)  (limit of SMC 1987 eq. 17)
    np.testing.assert_allclose(model.expected_purchases_new_customer(t),
                               0.5 * 20.0 / 10.0 * np.log1p(t / 20.0), rtol=1e-12)
    near = ParetoNBDModel.from_params(r=0.5, alpha=10.0, s=1.0 + 1e-10, beta=20.0)
    assert near.expected_purchases_new_customer(50.0) == pytest.approx(
        model.expected_purchases_new_customer(50.0), rel=1e-8)
    assert isinstance(model.expected_purchases_new_customer(5.0), float)


# ----------------------------------------------------------------------------- recovery
@pytest.mark.slow
def test_recovers_known_parameters_from_simulation() -> None:
    """Five simulated data sets of 3,000 customers: the truth lies within two standard errors
    for most parameters (r and alpha, s and beta are strongly correlated, so a miss usually
    comes in pairs) and never beyond four."""
    truth = pd.Series(dict(r=0.55, alpha=10.58, s=0.61, beta=11.67))
    zs = []
    for seed in range(5):
        model = ParetoNBDModel(time_unit="W").fit(_simulate_summary(truth.to_dict(), 3000, 100 + seed))
        zs.append(((model.params_ - truth) / model.standard_errors_).to_numpy())
    zs = np.abs(np.array(zs))
    assert (zs < 2.0).mean() >= 0.8, zs
    assert (zs < 4.0).all(), zs


@pytest.mark.slow
def test_recovers_parameters_from_datasets_simulate() -> None:
    """End to end: simulated transactions -> rfm_summary -> fit, truth within two SE mostly."""
    datasets = pytest.importorskip("custvalue.datasets")
    summary_mod = pytest.importorskip("custvalue.summary")
    inside = 0
    total = 0
    for seed in range(4):
        sim = datasets.simulate(5000, seed, process="pareto_nbd", time_unit="W")
        rfm = summary_mod.rfm_summary(sim.transactions, freq="W")
        model = ParetoNBDModel().fit(rfm)
        assert model.time_unit_ == "W"
        truth = pd.Series(sim.truth["params"])[list(PARAMS)]
        z = (model.params_ - truth) / model.standard_errors_
        inside += int((z.abs() < 2.0).sum())
        total += 4
        assert (z.abs() < 4.0).all(), (seed, z.to_dict())
    assert inside / total >= 0.75


# ----------------------------------------------------------------------------- properties
rows = st.tuples(
    st.integers(min_value=0, max_value=3000),
    st.floats(min_value=0.0, max_value=1.0),
    st.floats(min_value=0.01, max_value=4000.0),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.lists(rows, min_size=1, max_size=8),
    r=st.floats(0.01, 20.0), alpha=st.floats(0.01, 1e4),
    s=st.floats(0.01, 20.0), beta=st.floats(0.01, 1e4),
    t=st.floats(0.0, 1000.0), dt=st.floats(0.1, 1000.0),
)
def test_predictions_are_finite_and_well_behaved(data, r, alpha, s, beta, t, dt) -> None:
    x = np.array([d[0] for d in data], dtype=float)
    T = np.array([d[2] for d in data])
    tx = np.where(x > 0, np.array([d[1] for d in data]) * T, 0.0)
    frame = pd.DataFrame({"frequency": x, "recency": tx, "T": T})
    model = ParetoNBDModel.from_params(r=r, alpha=alpha, s=s, beta=beta)
    ll = pareto_nbd_log_likelihood(r, alpha, s, beta, x, tx, T)
    assert np.all(np.isfinite(ll))
    pa = model.probability_alive(frame, t).to_numpy()
    assert np.all((pa >= 0) & (pa <= 1))
    assert np.all(model.probability_alive(frame, t + dt).to_numpy() <= pa + 1e-12)
    e1 = model.expected_purchases(frame, t).to_numpy()
    e2 = model.expected_purchases(frame, t + dt).to_numpy()
    assert np.all(np.isfinite(e1)) and np.all(e1 >= 0)
    assert np.all(e2 >= e1 * (1 - 1e-12))
    p0 = model.probability_of_purchases(frame, 0, t).to_numpy()
    assert np.all(np.isfinite(p0)) and np.all((p0 >= 0) & (p0 <= 1))
    dert = model.expected_residual_transactions(frame, 0.001).to_numpy()
    assert np.all(np.isfinite(dert)) and np.all(dert >= 0)


# ----------------------------------------------------------------------------- API / errors
def test_save_load_round_trip(tmp_path, cdnow, cdnow_fit) -> None:
    path = tmp_path / "pnbd.json"
    cdnow_fit.save(path)
    loaded = BaseModel.load(path)
    assert isinstance(loaded, ParetoNBDModel)
    pd.testing.assert_series_equal(loaded.params_, cdnow_fit.params_)
    pd.testing.assert_frame_equal(loaded.covariance_, cdnow_fit.covariance_)
    assert loaded.time_unit_ == "W"
    assert loaded.log_likelihood_ == cdnow_fit.log_likelihood_
    pd.testing.assert_series_equal(loaded.expected_purchases(cdnow, 10.0),
                                   cdnow_fit.expected_purchases(cdnow, 10.0))
    assert "ParetoNBDModel" in str(loaded.summary())


def test_summary_and_uncertainty(cdnow_fit) -> None:
    summ = cdnow_fit.summary()
    assert "gradient norm" in str(summ) and "<table" in summ._repr_html_()
    ci = cdnow_fit.confidence_intervals_
    assert (ci["lower"] < cdnow_fit.params_).all() and (ci["upper"] > cdnow_fit.params_).all()
    draws = cdnow_fit.sample_params(200, seed=1)
    assert list(draws.columns) == list(PARAMS) and (draws > 0).all().all()
    other = cdnow_fit.with_params(draws.iloc[0])
    assert isinstance(other, ParetoNBDModel) and other.params_["r"] == draws.iloc[0]["r"]
    assert cdnow_fit.aic_ == pytest.approx(8 - 2 * cdnow_fit.log_likelihood_)


def test_weights_equal_repeated_rows(cdnow) -> None:
    counts = cdnow.value_counts().rename("weight").reset_index()
    weighted = ParetoNBDModel(time_unit="W").fit(counts)
    plain = ParetoNBDModel(time_unit="W").fit(cdnow)
    np.testing.assert_allclose(weighted.params_, plain.params_, rtol=1e-6)
    assert weighted.log_likelihood_ == pytest.approx(plain.log_likelihood_, rel=1e-10)


def test_errors_say_what_is_wrong(cdnow) -> None:
    with pytest.raises(ModelNotFittedError):
        ParetoNBDModel().probability_alive(cdnow)
    with pytest.raises(DataValidationError, match="recency"):
        ParetoNBDModel().fit(cdnow.drop(columns="recency"))
    bad = cdnow.copy()
    bad.iloc[0, bad.columns.get_loc("recency")] = 100.0
    with pytest.raises(DataValidationError, match="recency exceeds T"):
        ParetoNBDModel().fit(bad)
    model = ParetoNBDModel.from_params(**CDNOW_PUBLISHED, time_unit="W")
    with pytest.raises(ParameterError):
        model.expected_residual_transactions(cdnow, 0.0)
    with pytest.raises(ParameterError):
        model.probability_of_purchases(cdnow, -1, 10.0)
    with pytest.raises(ParameterError):
        model.expected_purchases(cdnow, -1.0)
    with pytest.raises(ParameterError):
        ParetoNBDModel.from_params(r=1.0, alpha=1.0, s=-1.0, beta=1.0)
    original = cdnow.copy()
    ParetoNBDModel(time_unit="W").fit(cdnow)
    pd.testing.assert_frame_equal(cdnow, original)  # caller's frame untouched


def test_time_unit_from_summary_attrs(cdnow) -> None:
    data = cdnow.copy()
    data.attrs["freq"] = "W"
    assert ParetoNBDModel().fit(data).time_unit_ == "W"
    with pytest.raises(ParameterError):
        ParetoNBDModel(time_unit="D").fit(data)


def test_zero_horizon_and_newborn_customers() -> None:
    model = ParetoNBDModel.from_params(r=0.55, alpha=10.5, s=0.6, beta=11.7, time_unit="W")
    data = pd.DataFrame({"frequency": [0, 3, 0], "recency": [0.0, 20.0, 0.0],
                         "T": [38.0, 38.0, 0.0]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no NaN arithmetic on the way
        np.testing.assert_array_equal(model.probability_of_purchases(data, 0, 0.0), 1.0)
        np.testing.assert_array_equal(model.probability_of_purchases(data, 2, 0.0), 0.0)
        np.testing.assert_array_equal(model.expected_purchases(data, 0.0), 0.0)
        # a customer observed for no time at all is alive and behaves like a new customer
        assert model.probability_alive(data).iloc[2] == 1.0
        assert model.expected_purchases(data, 10.0).iloc[2] == pytest.approx(
            model.expected_purchases_new_customer(10.0), rel=1e-12)


@pytest.mark.slow
def test_homogeneous_dropout_returns_limiting_fit_with_warning() -> None:
    """Everyone has the same dropout rate (mu = 0.02 per week): s and beta run to infinity
    together. The fit returns finite values, the right rate s/beta, and a BoundaryFitWarning."""
    from custvalue.models.base import BoundaryFitWarning

    data = _simulate_summary(dict(r=0.55, alpha=10.58, s=1e7, beta=1e7 / 0.02), 2000, 7)
    with pytest.warns(BoundaryFitWarning, match="s and beta|s, beta"):
        model = ParetoNBDModel(time_unit="W").fit(data)
    assert np.all(np.isfinite(model.params_))
    assert model.params_["s"] > 1e3
    assert model.params_["s"] / model.params_["beta"] == pytest.approx(0.02, rel=0.3)
    assert model.params_["r"] == pytest.approx(0.55, rel=0.25)
    assert any("boundary" in note for note in model.summary().notes)
    assert np.all(np.isfinite(model.expected_purchases(data, 52.0)))


@pytest.mark.parametrize("one_key", [True, False])
def test_pair_layout_is_sorted_unique_and_maps_every_row(monkeypatch, one_key: bool) -> None:
    """The pair table: distinct (x, pattern, y) in sorted order, each row's two pairs found, and
    the death-time tails on it equal the direct quadrature (both the one-integer-key path and the
    sorted fallback for too many combinations)."""
    from custvalue._special import log_power_product_integral
    from custvalue.models import pareto_nbd as pnbd

    if not one_key:
        monkeypatch.setattr(pnbd, "_KEY_LIMIT", 0.0)
    rng = np.random.default_rng(7)
    n = 3000
    x = rng.integers(0, 12, n).astype(float)
    T = rng.integers(1, 200, n).astype(float)
    tx = np.where(x > 0, np.floor(T * rng.uniform(size=n)), 0.0)
    groups = rng.integers(0, 5, n)
    lay = pnbd._PairLayout(x, tx, T, groups)
    g_pair = groups[lay.row]
    keys = list(zip(lay.x, g_pair, lay.y, strict=True))
    assert keys == sorted(set(keys))  # distinct and in (x, pattern, y) order
    np.testing.assert_array_equal(lay.x[lay.idx_tx], x)
    np.testing.assert_array_equal(lay.y[lay.idx_tx], tx)
    np.testing.assert_array_equal(lay.y[lay.idx_T], T)
    np.testing.assert_array_equal(g_pair[lay.idx_T], groups)
    np.testing.assert_array_equal(lay.ux[lay.ix], lay.x)
    alpha = np.array([5.0, 8.0, 13.0, 0.4, 90.0])[g_pair]
    beta = np.array([9.0, 2.0, 13.0, 40.0, 0.7])[g_pair]
    got, mom = lay.tails.evaluate(alpha, 0.6 + lay.x, beta, 1.7, moments=True)
    ref, ref_mom = log_power_product_integral(lay.y, np.inf, alpha, 0.6 + lay.x, beta, 1.7,
                                              moments=True)
    np.testing.assert_allclose(got, ref, rtol=1e-13, atol=1e-13)
    for a, b in zip(mom, ref_mom, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_compressed_row_order_leaves_the_fit_unchanged(monkeypatch) -> None:
    """Sorting the distinct rows like the pair table is only for speed: the same optimum as in
    first-occurrence order (large enough for the warm-start path)."""
    data = _simulate_summary(dict(r=0.6, alpha=9.0, s=0.8, beta=14.0), 50_000, 11)
    sorted_fit = ParetoNBDModel().fit(data)
    monkeypatch.setattr(ParetoNBDModel, "_compressed_row_order", lambda self, d: None)
    plain_fit = ParetoNBDModel().fit(data)
    assert sorted_fit.log_likelihood_ == pytest.approx(plain_fit.log_likelihood_, rel=1e-12)
    np.testing.assert_allclose(sorted_fit.params_, plain_fit.params_, rtol=1e-6)
