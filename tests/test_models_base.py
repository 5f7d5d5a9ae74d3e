"""BaseModel behaviour shared by every model: validation, weights, inference, persistence."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from lifetimes.datasets import load_cdnow_summary

from custvalue.errors import DataValidationError, ModelNotFittedError, ParameterError
from custvalue.models import BaseModel, BetaGeoModel, GammaGammaModel, ModelSummary, load_model


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    df = load_cdnow_summary(index_col=[0])
    df.attrs["freq"] = "W"
    return df


@pytest.fixture(scope="module")
def fitted(cdnow) -> BetaGeoModel:
    return BetaGeoModel().fit(cdnow)


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda d: d.drop(columns="recency"), "recency"),
        (lambda d: d.assign(frequency=d["frequency"].where(d.index != 3, -1)), "negative"),
        (lambda d: d.assign(recency=d["recency"].where(d.index != 1, 100.0)), "recency exceeds T"),
        (lambda d: d.assign(frequency=d["frequency"].where(d.index != 1, 1.5)), "whole numbers"),
        (lambda d: d.assign(T=d["T"].where(d.index != 2, np.nan)), "missing"),
        (lambda d: d.assign(recency=d["recency"].where(d["frequency"] > 0, 3.0)), "frequency 0"),
    ],
)
def test_invalid_input_is_rejected_with_a_message_naming_the_problem(cdnow, mutate, match):
    bad = mutate(cdnow.copy())
    with pytest.raises(DataValidationError, match=match) as info:
        BetaGeoModel().fit(bad)
    if match != "recency":
        assert "customers" in str(info.value)  # example ids are shown


def test_empty_and_non_frame_inputs(cdnow):
    with pytest.raises(DataValidationError, match="empty"):
        BetaGeoModel().fit(cdnow.iloc[:0])
    with pytest.raises(DataValidationError, match="DataFrame"):
        BetaGeoModel().fit([1, 2, 3])
    with pytest.raises(DataValidationError, match="weights has"):
        BetaGeoModel().fit(cdnow, weights=np.ones(3))


def test_fit_does_not_modify_the_callers_frame(cdnow):
    before = cdnow.copy()
    BetaGeoModel().fit(cdnow)
    pd.testing.assert_frame_equal(cdnow, before)
    assert cdnow.attrs == {"freq": "W"}


def test_duplicate_rows_and_weights_are_equivalent(cdnow, fitted):
    doubled = pd.concat([cdnow, cdnow])
    m2 = BetaGeoModel().fit(doubled)
    np.testing.assert_allclose(m2.params_, fitted.params_, rtol=1e-6)
    assert m2.log_likelihood_ == pytest.approx(2 * fitted.log_likelihood_, rel=1e-10)
    assert m2.n_customers_ == 2 * len(cdnow)
    weighted = cdnow.assign(weight=2.0)
    m3 = BetaGeoModel().fit(weighted)
    np.testing.assert_allclose(m3.params_, m2.params_, rtol=1e-6)
    assert m3.log_likelihood_ == pytest.approx(m2.log_likelihood_, rel=1e-10)
    # twice the data: standard errors shrink by sqrt(2)
    np.testing.assert_allclose(
        m2.standard_errors_ * np.sqrt(2), fitted.standard_errors_, rtol=1e-3
    )
    assert fitted.n_unique_rows_ < len(cdnow)


def test_information_criteria_and_intervals(fitted, cdnow):
    k, n, ll = 4, len(cdnow), fitted.log_likelihood_
    assert fitted.aic_ == pytest.approx(2 * k - 2 * ll)
    assert fitted.bic_ == pytest.approx(k * np.log(n) - 2 * ll)
    ci = fitted.confidence_intervals_
    se_log = fitted.standard_errors_ / fitted.params_
    np.testing.assert_allclose(ci["lower"], fitted.params_ * np.exp(-1.959964 * se_log), rtol=1e-5)
    assert (ci["lower"] > 0).all()
    c90 = fitted.conf_int(0.9)
    assert (c90["lower"] > ci["lower"]).all() and (c90["upper"] < ci["upper"]).all()
    assert fitted.diagnostics_["converged"]
    assert fitted.diagnostics_["gradient_norm_per_customer"] < 1e-6
    cov = fitted.covariance_.to_numpy()
    assert np.all(np.linalg.eigvalsh(cov) > 0)


def test_standard_errors_match_the_inverse_numerical_hessian(fitted, cdnow):
    # independent check: central second differences of the total log-likelihood (natural scale)
    theta = fitted.params_.to_numpy()
    data = {c: cdnow[c].to_numpy(float) for c in ("frequency", "recency", "T")}

    def ll(th):
        return fitted._log_likelihood_rows(np.log(th), data).sum()

    k = theta.size
    H = np.empty((k, k))
    h = 1e-4 * theta
    for i in range(k):
        for j in range(k):
            ei, ej = np.eye(k)[i] * h[i], np.eye(k)[j] * h[j]
            H[i, j] = (ll(theta + ei + ej) - ll(theta + ei - ej) - ll(theta - ei + ej) + ll(theta - ei - ej)) / (4 * h[i] * h[j])
    se = np.sqrt(np.diag(np.linalg.inv(-H)))
    np.testing.assert_allclose(fitted.standard_errors_.to_numpy(), se, rtol=1e-3)


def test_summary_renders_text_and_html(fitted):
    s = fitted.summary()
    assert isinstance(s, ModelSummary)
    text, html = str(s), s._repr_html_()
    for name in ("r", "alpha", "a", "b", "gradient norm", "Hessian condition", "log-likelihood"):
        assert name in text
    assert "<table" in html and "alpha" in html
    assert "log scale" in text
    assert "BetaGeoModel" in repr(fitted)


def test_not_fitted_and_from_params_errors(cdnow):
    with pytest.raises(ModelNotFittedError, match="from_params"):
        BetaGeoModel().expected_purchases(cdnow, 10)
    with pytest.raises(ParameterError, match="missing"):
        BetaGeoModel.from_params(r=1, alpha=1, a=1)
    with pytest.raises(ParameterError, match="> 0"):
        BetaGeoModel.from_params(r=1, alpha=-1, a=1, b=1)
    m = BetaGeoModel.from_params(r=0.243, alpha=4.414, a=0.793, b=2.426, time_unit="W")
    with pytest.raises(ParameterError, match="covariance"):
        m.sample_params(5)
    assert "from_params" in str(m.summary())


def test_from_params_predicts_like_the_fitted_model(fitted, cdnow):
    m = BetaGeoModel.from_params(**fitted.params_.to_dict(), time_unit="W")
    pd.testing.assert_series_equal(m.expected_purchases(cdnow, 10), fitted.expected_purchases(cdnow, 10))


def test_sample_params_follow_the_log_normal_approximation(fitted):
    draws = fitted.sample_params(20000, seed=3)
    assert list(draws.columns) == ["r", "alpha", "a", "b"]
    assert (draws > 0).all().all()
    logs = np.log(draws)
    expected_cov = fitted.covariance_.to_numpy() / np.outer(fitted.params_, fitted.params_)
    sd = np.sqrt(np.diag(expected_cov))
    # sampling error of a covariance from 20000 draws is about sd_i sd_j / sqrt(20000) < 0.01
    assert np.all(np.abs(np.cov(logs.T) - expected_cov) <= 0.05 * np.outer(sd, sd))
    err = np.abs(logs.mean().to_numpy() - np.log(fitted.params_.to_numpy()))
    assert np.all(err <= 4 * np.sqrt(np.diag(expected_cov) / 20000))
    same = fitted.sample_params(10, seed=3)
    pd.testing.assert_frame_equal(same, fitted.sample_params(10, seed=3))


def test_with_params_returns_an_independent_model(fitted, cdnow):
    before = fitted.params_.copy()
    other = fitted.with_params({"r": 0.5, "alpha": 4.414, "a": 0.793, "b": 2.426})
    assert isinstance(other, BetaGeoModel) and other is not fitted
    pd.testing.assert_series_equal(fitted.params_, before)
    assert other.time_unit_ == "W"
    assert other.expected_purchases(cdnow, 10).sum() > fitted.expected_purchases(cdnow, 10).sum()


def test_save_load_round_trip(fitted, cdnow, tmp_path):
    path = tmp_path / "bg.json"
    fitted.save(path)
    payload = json.loads(path.read_text())
    assert payload["model"] == "BetaGeoModel" and payload["time_unit"] == "W"
    assert "custvalue_version" in payload and len(payload["covariance"]) == 4
    for loaded in (BetaGeoModel.load(path), BaseModel.load(path), load_model(path)):
        assert isinstance(loaded, BetaGeoModel)
        pd.testing.assert_series_equal(loaded.params_, fitted.params_)
        np.testing.assert_array_equal(loaded.covariance_, fitted.covariance_)
        assert loaded.log_likelihood_ == fitted.log_likelihood_
        pd.testing.assert_series_equal(
            loaded.expected_purchases(cdnow, 5), fitted.expected_purchases(cdnow, 5)
        )
    with pytest.raises(ParameterError, match="not a GammaGammaModel"):
        GammaGammaModel.load(path)
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(ParameterError, match="not a custvalue model"):
        BaseModel.load(bad)


def test_time_unit_from_attrs_and_conflicts(cdnow):
    assert BetaGeoModel().fit(cdnow).time_unit_ == "W"
    plain = pd.DataFrame(cdnow)
    plain.attrs = {}
    assert BetaGeoModel().fit(plain).time_unit_ == "D"
    with pytest.raises(ParameterError, match="weeks"):
        BetaGeoModel(time_unit="D").fit(cdnow)


def test_penalty_shrinks_parameters_and_reports_the_unpenalised_likelihood(fitted, cdnow):
    pen = BetaGeoModel(penalizer_coef=0.05).fit(cdnow)
    assert (pen.params_**2).sum() < (fitted.params_**2).sum()
    assert pen.log_likelihood_ < fitted.log_likelihood_
    ll_direct = pen._log_likelihood_rows(
        np.log(pen.params_.to_numpy()), {c: cdnow[c].to_numpy(float) for c in ("frequency", "recency", "T")}
    ).sum()
    assert pen.log_likelihood_ == pytest.approx(ll_direct, rel=1e-12)


def test_warm_start_path_for_large_data_reaches_the_same_optimum(cdnow, fitted, monkeypatch):
    import custvalue.models.base as base

    monkeypatch.setattr(base, "_WARM_START_ROWS", 400)  # CDNOW has ~1000 distinct rows
    warm = BetaGeoModel().fit(cdnow)
    np.testing.assert_allclose(warm.params_, fitted.params_, rtol=1e-6)
    assert warm.log_likelihood_ >= fitted.log_likelihood_ - 1e-7
    np.testing.assert_allclose(warm.standard_errors_, fitted.standard_errors_, rtol=1e-3)
    gg_data = load_cdnow_summary_with_monetary()
    small = GammaGammaModel().fit(gg_data)
    monkeypatch.setattr(base, "_WARM_START_ROWS", 200)
    big = GammaGammaModel().fit(gg_data)
    np.testing.assert_allclose(big.params_, small.params_, rtol=1e-6)


def load_cdnow_summary_with_monetary() -> pd.DataFrame:
    from lifetimes.datasets import load_cdnow_summary_data_with_monetary_value

    return load_cdnow_summary_data_with_monetary_value()


def test_unique_rows_numbers_rows_as_groupby_does_including_nan_and_wide_keys() -> None:
    """The factorize-based compression gives pandas groupby(sort=False, dropna=False)'s groups,
    also when the product of the columns' cardinalities overflows int64 (re-factorized key)."""
    from custvalue.models.base import unique_rows

    rng = np.random.default_rng(3)
    n = 5000
    cols = [rng.integers(0, 4, n).astype(float), rng.random(n).round(3), rng.random(n),
            rng.random(n), rng.integers(0, 3, n).astype(float)]
    cols[0][rng.random(n) < 0.05] = np.nan
    cols[1][:10] = cols[1][10:20]  # repeated rows
    for k in (2, 5):  # 4 x 1000 levels; and ~4 x 1000 x 5000^2 x 3 > 2**62
        frame = pd.DataFrame({str(i): c for i, c in enumerate(cols[:k])})
        ref = frame.groupby(list(frame.columns), sort=False, dropna=False).ngroup().to_numpy()
        uniq, codes = unique_rows(cols[:k])
        np.testing.assert_array_equal(codes, ref)
        for j in range(k):
            np.testing.assert_array_equal(uniq[j][codes], cols[j])
