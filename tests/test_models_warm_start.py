"""The large-data (warm-start) fitting path reaches the small-data path's optimum.

Every data set with more than ``_WARM_START_ROWS`` distinct rows is first solved on a seeded
subset and then finished on all rows. Here the threshold is lowered so that the warm path runs on
small data sets, and its result is compared with the ordinary multi-start fit of the same data:
the reference is the small path (an independent route to the same maximum), never stored output.

Issue 9: on some CPUs the Gamma-Gamma subset optimum of CDNOW ran away (p -> infinity,
gamma -> 0, a flat ridge where the full-data gradient is also tiny) and was accepted. The
engineered cases below force a subset that runs away, or sit the full data on the boundary, and
check that the full-data multi-start decides.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from lifetimes.datasets import load_cdnow_summary, load_cdnow_summary_data_with_monetary_value

import custvalue.models.base as base
from custvalue import datasets, rfm_summary
from custvalue._subscriptions import survivors_to_customers
from custvalue.models import (
    BetaGeoBetaBinomModel,
    BetaGeoModel,
    BoundaryFitWarning,
    GammaGammaModel,
    ModifiedBetaGeoModel,
    ParetoNBDModel,
    ShiftedBetaGeoModel,
)


def _fit(factory, data, threshold=None, monkeypatch=None):
    if threshold is not None:
        monkeypatch.setattr(base, "_WARM_START_ROWS", threshold)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BoundaryFitWarning)
        return factory().fit(data)


def _assert_same_optimum(warm, small, rtol=1e-6):
    np.testing.assert_allclose(warm.params_.to_numpy(), small.params_.to_numpy(), rtol=rtol)
    assert warm.log_likelihood_ >= small.log_likelihood_ - 1e-7 * max(1.0, abs(small.log_likelihood_))


def _distinct_rows(model, data) -> int:
    cols = list(model._data_columns)
    frame = data[cols]
    if model._compress_rows:
        return len(frame.drop_duplicates())
    return len(frame)


@pytest.fixture(scope="module")
def cdnow_sample() -> pd.DataFrame:
    df = load_cdnow_summary(index_col=[0])
    df.attrs["freq"] = "W"
    return df


@pytest.fixture(scope="module")
def cdnow_sample_monetary() -> pd.DataFrame:
    df = load_cdnow_summary_data_with_monetary_value()
    df.attrs["freq"] = "W"
    return df


@pytest.fixture(scope="module")
def cdnow_tx_sample() -> pd.DataFrame:
    return datasets.load_cdnow("sample")


@pytest.fixture(scope="module")
def cdnow_tx_master() -> pd.DataFrame:
    return datasets.load_cdnow("master")


@pytest.fixture(scope="module")
def simulated() -> pd.DataFrame:
    sim = datasets.simulate(4000, seed=11, process="pareto_nbd")
    return rfm_summary(sim.transactions, freq="W")


def _models_for_rfm():
    return [
        pytest.param(BetaGeoModel, id="bgnbd"),
        pytest.param(ModifiedBetaGeoModel, id="mbgnbd"),
        pytest.param(ParetoNBDModel, id="pareto"),
    ]


@pytest.mark.parametrize("factory", _models_for_rfm())
def test_warm_path_on_the_cdnow_sample_summary(factory, cdnow_sample, monkeypatch):
    small = _fit(factory, cdnow_sample)
    n = _distinct_rows(factory(), cdnow_sample)
    warm = _fit(factory, cdnow_sample, threshold=n // 3, monkeypatch=monkeypatch)
    _assert_same_optimum(warm, small)


@pytest.mark.parametrize("factory", [*_models_for_rfm(), pytest.param(GammaGammaModel, id="gg")])
@pytest.mark.parametrize("freq", ["W", "D"])
def test_warm_path_on_cdnow_sample_transactions(factory, freq, cdnow_tx_sample, monkeypatch):
    summary = rfm_summary(cdnow_tx_sample, freq=freq)
    small = _fit(factory, summary)
    n = _distinct_rows(factory(), summary[summary["frequency"] > 0] if factory is GammaGammaModel else summary)
    warm = _fit(factory, summary, threshold=n // 3, monkeypatch=monkeypatch)
    _assert_same_optimum(warm, small)


@pytest.mark.slow
@pytest.mark.parametrize("factory", [*_models_for_rfm(), pytest.param(GammaGammaModel, id="gg")])
@pytest.mark.parametrize("freq", ["W", "D"])
def test_warm_path_on_cdnow_master(factory, freq, cdnow_tx_master, monkeypatch):
    summary = rfm_summary(cdnow_tx_master, freq=freq)
    if factory is GammaGammaModel:  # one repeat buyer's purchases were worth $0
        summary = summary[(summary["frequency"] == 0) | (summary["monetary_value"] > 0)]
    small = _fit(factory, summary)
    warm = _fit(factory, summary, threshold=2000, monkeypatch=monkeypatch)
    _assert_same_optimum(warm, small)


@pytest.mark.parametrize("factory", [*_models_for_rfm(), pytest.param(GammaGammaModel, id="gg")])
def test_warm_path_on_simulated_data(factory, simulated, monkeypatch):
    small = _fit(factory, simulated)
    warm = _fit(factory, simulated, threshold=800, monkeypatch=monkeypatch)
    _assert_same_optimum(warm, small)


def test_warm_path_for_the_discrete_time_and_contractual_models(monkeypatch):
    donations = datasets.load_donations()
    bgbb_small = _fit(BetaGeoBetaBinomModel, donations)
    bgbb_warm = _fit(BetaGeoBetaBinomModel, donations, threshold=12, monkeypatch=monkeypatch)
    _assert_same_optimum(bgbb_warm, bgbb_small)

    regular = [1000, 631, 468, 382, 326, 289, 262, 241]
    high_end = [1000, 869, 743, 653, 593, 551, 517, 491]
    rows = survivors_to_customers(pd.DataFrame([regular, high_end], index=["regular", "high end"]))
    for by_cohort in (False, True):
        def factory(by_cohort=by_cohort):
            return ShiftedBetaGeoModel(by_cohort=by_cohort, time_unit="Y")

        monkeypatch.setattr(base, "_WARM_START_ROWS", 40000)
        small = _fit(factory, rows)
        warm = _fit(factory, rows, threshold=6, monkeypatch=monkeypatch)
        _assert_same_optimum(warm, small)


class _RunawaySubsetGG(GammaGammaModel):
    """Gamma-Gamma whose warm-start subset is 50 CDNOW repeat buyers on which p runs to infinity
    (gamma to zero) while the full data have an interior optimum: the situation of issue 9."""

    def _warm_subset(self, weights: np.ndarray) -> np.ndarray:
        rng = np.random.default_rng(17)
        return np.sort(rng.choice(weights.size, 50, replace=False))


def test_a_runaway_subset_optimum_is_decided_by_the_full_multi_start(cdnow_sample_monetary, monkeypatch):
    data = cdnow_sample_monetary
    repeaters = data[data["frequency"] > 0]
    pick = _RunawaySubsetGG()._warm_subset(np.ones(len(repeaters)))
    # the engineered subset really runs away on its own ...
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BoundaryFitWarning)
        with pytest.raises(base.ConvergenceError, match="ran away"):
            GammaGammaModel().fit(repeaters.iloc[pick])
    small = GammaGammaModel().fit(data)
    assert small.params_["p"] < 100  # ... while the full data are interior
    monkeypatch.setattr(base, "_WARM_START_ROWS", 200)
    warm = _RunawaySubsetGG().fit(data)
    _assert_same_optimum(warm, small)
    assert warm.diagnostics_["restarts"] >= 2  # the full-data multi-start ran


def test_a_boundary_full_data_set_with_an_interior_subset_gives_the_limiting_model(monkeypatch):
    # every customer has the same dropout probability (0.02): the full-data BG/NBD optimum is the
    # limiting model a, b -> inf. The subset is drawn from the heaviest buyers only, whose
    # repeat purchases look heterogeneous enough for an interior subset optimum.
    rng = np.random.default_rng(0)
    n = 4000
    lam = rng.gamma(3.0, 1.0 / 2.0, n)
    T = np.full(n, 40.0)
    g = rng.geometric(0.02, n)
    N = rng.poisson(lam * T)
    k = np.minimum(N, g)
    rec = np.where(k > 0, T * rng.beta(np.maximum(k, 1), N - k + 1), 0.0)
    df = pd.DataFrame({"frequency": k.astype(float), "recency": np.round(rec, 1), "T": T})
    with pytest.warns(BoundaryFitWarning, match="a, b"):
        small = BetaGeoModel(time_unit="W").fit(df)

    class FirstRowsSubset(BetaGeoModel):
        def _warm_subset(self, weights: np.ndarray) -> np.ndarray:
            return np.arange(min(weights.size, 60))

    n_distinct = len(df.drop_duplicates())
    monkeypatch.setattr(base, "_WARM_START_ROWS", n_distinct // 2)
    with pytest.warns(BoundaryFitWarning, match="a, b"):
        warm = FirstRowsSubset(time_unit="W").fit(df)
    np.testing.assert_allclose(warm.params_[["r", "alpha"]], small.params_[["r", "alpha"]], rtol=1e-4)
    p_small = small.params_["a"] / (small.params_["a"] + small.params_["b"])
    p_warm = warm.params_["a"] / (warm.params_["a"] + warm.params_["b"])
    assert p_warm == pytest.approx(p_small, rel=1e-4)
    assert warm.log_likelihood_ >= small.log_likelihood_ - 1e-6 * abs(small.log_likelihood_)


@pytest.mark.parametrize("rel", [1e-13, -1e-13, 1e-10])
def test_warm_path_does_not_depend_on_the_last_digits(cdnow_sample_monetary, monkeypatch, rel):
    """Another CPU (SIMD exp/log, BLAS kernels) changes the last digits of every number; the
    result must not depend on them. Perturb the starting points and the data by a few ulps."""
    small = GammaGammaModel().fit(cdnow_sample_monetary)
    orig = GammaGammaModel._start_points

    def nudged(self, data, weights):
        return [s * (1.0 + rel) + rel for s in orig(self, data, weights)]

    monkeypatch.setattr(GammaGammaModel, "_start_points", nudged)
    monkeypatch.setattr(base, "_WARM_START_ROWS", 200)
    data = cdnow_sample_monetary.assign(
        monetary_value=cdnow_sample_monetary["monetary_value"] * (1.0 + rel)
    )
    for subset_model in (GammaGammaModel, _RunawaySubsetGG):
        warm = subset_model().fit(data)
        _assert_same_optimum(warm, small, rtol=1e-5)
