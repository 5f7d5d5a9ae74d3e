"""Static covariates in BG/NBD, MBG/NBD, Pareto/NBD and Gamma-Gamma (issue 14).

References are independent of the covariate code: the models without covariates (all
coefficients 0 must give them exactly), lifetimes' fitters evaluated at a customer's own
``alpha_i, a_i, b_i, beta_i`` (CLVTools' parameterisation), finite differences for gradients,
and simulation with known coefficients (``datasets.simulate(covariate_effects=...)``).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from lifetimes import BetaGeoFitter, ParetoNBDFitter
from lifetimes.datasets import load_cdnow_summary, load_cdnow_summary_data_with_monetary_value

from custvalue.datasets import simulate
from custvalue.errors import DataValidationError, ParameterError
from custvalue.models import (
    BetaGeoModel,
    GammaGammaModel,
    ModifiedBetaGeoModel,
    ParetoNBDModel,
    load_model,
)
from custvalue.summary import rfm_summary
from custvalue.value import customer_lifetime_value

MODELS = [BetaGeoModel, ModifiedBetaGeoModel, ParetoNBDModel]


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    d = load_cdnow_summary(index_col=[0])
    rng = np.random.default_rng(14)
    d["channel"] = rng.choice(["online", "offline", "referral"], len(d), p=[0.5, 0.3, 0.2])
    d["age"] = rng.normal(40, 10, len(d)).round()
    d["one"] = 1.0
    return d


def _design_data(model, data):
    arrays = {c: data[c].to_numpy(float) for c in ("frequency", "recency", "T")}
    arrays.update(model._extra_fit_arrays(data, data.index))
    return model._prepare_data(arrays)


@pytest.mark.parametrize("klass", MODELS)
def test_zero_coefficients_are_the_model_without_covariates(klass, cdnow):
    base = klass(time_unit="W").fit(cdnow)
    model = klass(time_unit="W", purchase_covariates=["channel", "age"], dropout_covariates=["channel"])
    data = _design_data(model, cdnow)
    phi = np.concatenate([np.log(base.params_.to_numpy()), np.zeros(len(model._coef_names()))])
    ll = float(model._log_likelihood_rows(phi, data).sum())
    assert ll == pytest.approx(base.log_likelihood_, abs=1e-8)
    # analytic gradient of the covariate likelihood against central differences, away from 0
    phi1 = phi + np.linspace(-0.05, 0.05, phi.size)
    g = model._gradient_rows(phi1, data).sum(axis=0)
    f = lambda p: float(model._log_likelihood_rows(p, data).sum())  # noqa: E731
    h = 1e-6
    num = np.array([(f(phi1 + h * e) - f(phi1 - h * e)) / (2 * h) for e in np.eye(phi.size)])
    np.testing.assert_allclose(g, num, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("klass", MODELS)
def test_constant_covariate_gives_the_fit_without_covariates(klass, cdnow):
    base = klass(time_unit="W").fit(cdnow)
    const = klass(time_unit="W", purchase_covariates=["one"], dropout_covariates=["one"]).fit(cdnow)
    np.testing.assert_allclose(const.params_.to_numpy(), base.params_.to_numpy(), rtol=1e-8)
    assert const.log_likelihood_ == pytest.approx(base.log_likelihood_, abs=1e-8)
    assert list(const.params_.index) == list(base.params_.index)
    assert "constant" in str(const.summary())


def test_gamma_gamma_zero_and_constant_covariates():
    d = load_cdnow_summary_data_with_monetary_value()
    d["one"] = "all"
    base = GammaGammaModel().fit(d)
    const = GammaGammaModel(spend_covariates=["one"]).fit(d)
    np.testing.assert_allclose(const.params_.to_numpy(), base.params_.to_numpy(), rtol=1e-8)
    assert const.log_likelihood_ == pytest.approx(base.log_likelihood_, abs=1e-8)


def test_gamma_gamma_spend_covariate_recovers_a_known_multiplier():
    d = load_cdnow_summary_data_with_monetary_value()
    rng = np.random.default_rng(5)
    d["tier"] = rng.choice(["basic", "plus"], len(d))
    # scaling every transaction of one group by 1.5 multiplies its spend scale exactly by 1.5
    d["monetary_value"] = d["monetary_value"] * np.where(d["tier"] == "plus", 1.5, 1.0)
    model = GammaGammaModel(spend_covariates=["tier"], covariate_reference={"tier": "basic"}).fit(d)
    eff = model.covariate_effects(0.95).loc["spend:tier[plus]"]
    assert eff["multiplier lower 95%"] < 1.5 < eff["multiplier upper 95%"]
    assert "spend" in eff["sentence"] and "as those with tier = basic" in eff["sentence"]
    ratio = model.expected_population_spend({"tier": "plus"}) / model.expected_population_spend({"tier": "basic"})
    assert ratio == pytest.approx(eff["multiplier"], rel=1e-12)
    assert model.likelihood_ratio_test()["p_value"] < 1e-6


@pytest.fixture(scope="module")
def fitted(cdnow):
    return {
        klass: klass(
            time_unit="W", purchase_covariates=["channel", "age"], dropout_covariates=["channel"]
        ).fit(cdnow)
        for klass in MODELS
    }


def _customer_params(model, row):
    """A customer's own (r, alpha_i, a_i|s, b_i|beta_i) from the coefficients, CLVTools' formulas."""
    p = model.params_
    z_p = (row["channel"] == "offline") * p["purchase:channel[offline]"] + (
        row["channel"] == "referral"
    ) * p["purchase:channel[referral]"] + row["age"] * p["purchase:age"]
    z_d = (row["channel"] == "offline") * p["dropout:channel[offline]"] + (
        row["channel"] == "referral"
    ) * p["dropout:channel[referral]"]
    if isinstance(model, ParetoNBDModel):
        return p["r"], p["alpha"] * np.exp(-z_p), p["s"], p["beta"] * np.exp(-z_d)
    return p["r"], p["alpha"] * np.exp(-z_p), p["a"] * np.exp(z_d), p["b"] * np.exp(z_d)


@pytest.mark.parametrize("klass", [BetaGeoModel, ParetoNBDModel])
def test_predictions_use_each_customers_parameters_against_lifetimes(klass, cdnow, fitted):
    model = fitted[klass]
    assert model.diagnostics_["converged"]
    rows = cdnow.iloc[[0, 5, 17, 40, 99]]
    ours_e = model.expected_purchases(rows, 39.0)
    ours_a = model.probability_alive(rows)
    for cid, row in rows.iterrows():
        params = _customer_params(model, row)
        ref = BetaGeoFitter() if klass is BetaGeoModel else ParetoNBDFitter()
        names = ["r", "alpha", "a", "b"] if klass is BetaGeoModel else ["r", "alpha", "s", "beta"]
        ref.params_ = pd.Series(dict(zip(names, params, strict=True)))
        e = ref.conditional_expected_number_of_purchases_up_to_time(
            39.0, row["frequency"], row["recency"], row["T"]
        )
        a = ref.conditional_probability_alive(row["frequency"], row["recency"], row["T"])
        assert ours_e[cid] == pytest.approx(float(np.squeeze(e)), rel=1e-6)
        assert ours_a[cid] == pytest.approx(float(np.squeeze(a)), rel=1e-6)
    # a prospect: the new-customer formula at the prospect's own parameters
    prospect = {"channel": "referral", "age": 30.0}
    params = _customer_params(model, prospect)
    ref = BetaGeoFitter() if klass is BetaGeoModel else ParetoNBDFitter()
    names = ["r", "alpha", "a", "b"] if klass is BetaGeoModel else ["r", "alpha", "s", "beta"]
    ref.params_ = pd.Series(dict(zip(names, params, strict=True)))
    expected = float(np.squeeze(ref.expected_number_of_purchases_up_to_time(52.0)))
    assert model.expected_purchases_new_customer(52.0, covariates=prospect) == pytest.approx(expected, rel=1e-6)
    one_row = pd.DataFrame([prospect])
    assert model.expected_purchases_new_customer(52.0, covariates=one_row) == pytest.approx(expected, rel=1e-6)
    several = pd.DataFrame({"channel": ["online", "referral"], "age": [30.0, 30.0]}, index=["o", "r"])
    by_row = model.expected_purchases_new_customer(52.0, covariates=several)
    assert by_row["r"] == pytest.approx(expected, rel=1e-6)


def test_prediction_errors_name_the_problem(cdnow, fitted):
    model = fitted[ParetoNBDModel]
    with pytest.raises(DataValidationError, match=r"covariate column\(s\) \['channel'"):
        model.expected_purchases(cdnow[["frequency", "recency", "T"]], 10)
    bad = cdnow.iloc[:3].assign(channel=["online", "tv", "online"])
    with pytest.raises(DataValidationError, match=r"'tv'.*never saw"):
        model.probability_alive(bad)
    with pytest.raises(ParameterError, match="covariates="):
        model.expected_purchases_new_customer(10)
    with pytest.raises(ParameterError, match="list of column names"):
        ParetoNBDModel(purchase_covariates="channel")


def test_caller_data_not_modified(cdnow):
    before = cdnow.copy()
    BetaGeoModel(time_unit="W", purchase_covariates=["channel"]).fit(cdnow)
    pd.testing.assert_frame_equal(cdnow, before)


def test_inference_summary_and_lr_test(cdnow, fitted):
    model = fitted[ParetoNBDModel]
    names = list(model.params_.index)
    assert names[:4] == ["r", "alpha", "s", "beta"]
    assert "purchase:channel[offline]" in names and "dropout:channel[referral]" in names
    ci = model.conf_int(0.9)
    coef = model.params_["purchase:age"]
    se = model.standard_errors_["purchase:age"]
    assert ci.loc["purchase:age", "lower"] == pytest.approx(coef - 1.6448536269514722 * se)
    lr = model.likelihood_ratio_test()
    base = ParetoNBDModel(time_unit="W").fit(cdnow)
    assert lr["log_likelihood_restricted"] == pytest.approx(base.log_likelihood_, abs=1e-6)
    assert lr["statistic"] == pytest.approx(2 * (model.log_likelihood_ - base.log_likelihood_), abs=1e-5)
    assert lr["df"] == 5  # channel (2 dummies) and age on purchase, channel on dropout
    # channel and age are pure noise here: no evidence of an effect
    assert lr["p_value"] > 0.01
    text = str(model.summary())
    assert "LR test vs no covariates" in text
    assert "times as often as those with channel = online (90% CI" in text
    assert "reference level 'online'" in text
    assert "drop out" in text


def test_save_load_with_params_and_sampling(tmp_path, cdnow, fitted):
    model = fitted[BetaGeoModel]
    path = tmp_path / "m.json"
    model.save(path)
    again = load_model(path)
    pd.testing.assert_series_equal(again.params_, model.params_)
    pd.testing.assert_series_equal(again.expected_purchases(cdnow, 10), model.expected_purchases(cdnow, 10))
    draws = model.sample_params(400, seed=1)
    assert (draws["purchase:channel[offline]"] < 0).any() and (draws["purchase:channel[offline]"] > 0).any()
    assert (draws[["r", "alpha", "a", "b"]] > 0).all().all()
    moved = model.with_params(draws.iloc[0])
    assert moved.probability_alive(cdnow).notna().all()


def test_clv_with_intervals_uses_covariates(cdnow, fitted):
    d = load_cdnow_summary_data_with_monetary_value()
    d = d.join(cdnow[["channel", "age"]])
    d.attrs["freq"] = "W"
    gg = GammaGammaModel().fit(d)
    model = fitted[ParetoNBDModel]
    res = customer_lifetime_value(
        model, gg, d, horizon=12, time_unit="M", discount_rate=0.1, interval=0.9, n_draws=10, seed=1
    )
    frame = res.to_frame() if hasattr(res, "to_frame") else res.frame
    assert frame["clv"].notna().all()
    # the same history in another channel is valued differently
    twin = d.iloc[[0, 0]].copy()
    twin["channel"] = ["online", "referral"]
    twin.index = ["a", "b"]
    twin.attrs["freq"] = "W"
    vals = customer_lifetime_value(model, gg, twin, horizon=12, time_unit="M", discount_rate=0.1)
    fr = vals.to_frame() if hasattr(vals, "to_frame") else vals.frame
    assert fr.loc["a", "clv"] != fr.loc["b", "clv"]
    delta = customer_lifetime_value(
        model, gg, twin, horizon=12, time_unit="M", discount_rate=0.1, interval=0.9,
        interval_method="delta",
    )
    fd = delta.to_frame() if hasattr(delta, "to_frame") else delta.frame
    assert np.all(np.isfinite(fd.filter(like="clv").to_numpy()))


EFFECTS = {
    "purchase": {"channel": {"referral": 0.4, "social": -0.3}, "membership": 0.3},
    "dropout": {"channel": {"referral": -0.5}, "region": {"South": 0.4}, "membership": -0.6},
}


def _sim_fit(process, klass, seed, n=4000, effects=EFFECTS):
    sim = simulate(n, seed=seed, process=process, covariate_effects=effects)
    rfm = rfm_summary(sim.transactions, freq="D")
    data = rfm.join(sim.customers.set_index("customer_id")[["membership"]])
    data.attrs = dict(rfm.attrs)
    truth = sim.truth["covariates"]
    cols = ["channel", "region", "membership"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = klass(purchase_covariates=cols, dropout_covariates=cols,
                      covariate_reference=truth["reference"]).fit(data)
    true = pd.Series({f"{b}:{k}": v for b in ("purchase", "dropout") for k, v in truth[b].items()})
    return model, true


def test_simulate_covariate_truth_and_validation():
    sim = simulate(500, seed=1, process="pareto_nbd", covariate_effects=EFFECTS)
    truth = sim.truth["covariates"]
    assert truth["purchase"]["channel[referral]"] == 0.4
    assert truth["dropout"]["region[South]"] == 0.4 and truth["purchase"]["region[South]"] == 0.0
    assert truth["reference"] == {"membership": False, "channel": "organic", "region": "North"}
    assert sim.customers["membership"].dtype == bool
    # the members' latent purchase rates are exp(0.3) times the others' on average
    with pytest.raises(ParameterError, match="unknown level"):
        simulate(10, covariate_effects={"purchase": {"channel": {"tv": 1.0}}})
    with pytest.raises(ParameterError, match="unknown covariate"):
        simulate(10, covariate_effects={"purchase": {"age": 1.0}})


@pytest.mark.parametrize("process,klass", [("pareto_nbd", ParetoNBDModel), ("bgnbd", BetaGeoModel)])
def test_recovers_simulated_coefficients(process, klass):
    model, true = _sim_fit(process, klass, seed=3)
    ci = model.conf_int(0.99)
    inside = (ci.loc[true.index, "lower"] <= true) & (true <= ci.loc[true.index, "upper"])
    # 99% intervals: with 14 coefficients at most one miss is plausible
    assert inside.sum() >= 13, pd.DataFrame({"true": true, "est": model.params_[true.index]})
    assert model.likelihood_ratio_test()["p_value"] < 1e-4


@pytest.mark.slow
def test_coverage_over_seeds_pareto():
    effects = {"purchase": {"channel": {"referral": 0.4}}, "dropout": {"membership": -0.6}}
    hits = []
    for seed in range(40):
        model, true = _sim_fit("pareto_nbd", ParetoNBDModel, seed=100 + seed, n=2000, effects=effects)
        keep = ["purchase:channel[referral]", "dropout:membership[True]"]
        ci = model.conf_int(0.95)
        hits.append(((ci.loc[keep, "lower"] <= true[keep]) & (true[keep] <= ci.loc[keep, "upper"])).to_numpy())
    rate = np.mean(hits, axis=0)
    # 40 seeds: binomial sd of a 95% rate is 3.4 points; accept 85%-100%
    assert np.all(rate >= 0.85), rate


APPAREL = Path(os.environ.get("CUSTVALUE_APPAREL_DIR", "/work/shared/reference/clvtools-apparel"))


@pytest.fixture(scope="module")
def apparel() -> pd.DataFrame:
    """CLVTools' apparel retailer (600 customers, static Gender and Channel), 104 weeks of
    calibration as in CLVTools' vignette (``estimation.split = 104``)."""
    if not (APPAREL / "apparelTrans.csv").exists():  # pragma: no cover - machine without the data
        pytest.skip(f"CLVTools apparel reference data not found in {APPAREL}")
    tx = pd.read_csv(APPAREL / "apparelTrans.csv", parse_dates=["Date"])
    cov = pd.read_csv(APPAREL / "apparelStaticCov.csv").set_index("Id")
    end = tx["Date"].min() + pd.Timedelta(weeks=104) - pd.Timedelta(days=1)
    rfm = rfm_summary(tx, freq="W", observation_end=end, customer_col="Id", date_col="Date",
                      amount_col="Price")
    data = rfm.join(cov)
    data.attrs = dict(rfm.attrs)
    return data


def test_apparel_pareto_nbd_gender_and_channel_on_both_processes(apparel):
    cols = ["Gender", "Channel"]
    model = ParetoNBDModel(purchase_covariates=cols, dropout_covariates=cols).fit(apparel)
    assert model.diagnostics_["converged"]
    assert model.diagnostics_["gradient_norm_per_customer"] < 1e-6
    info = np.linalg.eigvalsh(np.linalg.inv(model.covariance_.to_numpy()))
    assert np.all(info > 0)  # an interior maximum
    assert model.n_unique_rows_ <= len(apparel)
    # the covariates matter here (CLVTools' vignette: women and offline customers buy more)
    assert model.params_["purchase:Gender"] > 0 and model.params_["purchase:Channel"] > 0
    assert model.likelihood_ratio_test()["p_value"] < 1e-6
    # refitting from a different start (other time unit of the same data) lands on the same optimum
    daily = apparel.copy()
    daily[["recency", "T"]] = daily[["recency", "T"]] * 7.0
    daily.attrs = {**apparel.attrs, "freq": "D"}
    again = ParetoNBDModel(purchase_covariates=cols, dropout_covariates=cols).fit(daily)
    np.testing.assert_allclose(again.params_[4:].to_numpy(), model.params_[4:].to_numpy(), atol=1e-4)
    # each repeat-purchase time density gains the Jacobian 1/7 when weeks become days
    jacobian = float(apparel["frequency"].sum()) * np.log(7.0)
    assert again.log_likelihood_ == pytest.approx(model.log_likelihood_ - jacobian, abs=1e-4)


@pytest.mark.parametrize("klass", [BetaGeoModel, ParetoNBDModel, GammaGammaModel])
@pytest.mark.parametrize("penalizer", [0.0, 0.05])
def test_hessian_and_gradient_totals_match_differences_of_the_log_likelihood(
    cdnow: pd.DataFrame, klass: type, penalizer: float
) -> None:
    """The pattern-wise Hessian (row Hessians mapped through the covariate Jacobians) and the
    bincount gradient totals against central differences of the total log-likelihood alone."""
    # a standardised numeric covariate keeps the differences' truncation error small
    if klass is GammaGammaModel:
        data = load_cdnow_summary_data_with_monetary_value()
        data = data[data["frequency"] > 0].copy()
        rng = np.random.default_rng(7)
        data["channel"] = rng.choice(["online", "offline", "referral"], len(data))
        data["age_z"] = rng.normal(0.0, 1.0, len(data)).round(1)
        model = klass(penalizer_coef=penalizer, spend_covariates=["channel", "age_z"]).fit(data)
        cols = {c: data[c].to_numpy(float) for c in ("frequency", "monetary_value")}
    else:
        data = cdnow.assign(age_z=(cdnow["age"] - 40.0) / 10.0)
        model = klass(penalizer_coef=penalizer, time_unit="W", purchase_covariates=["channel", "age_z"],
                      dropout_covariates=["channel"]).fit(data)
        cols = {c: data[c].to_numpy(float) for c in ("frequency", "recency", "T")}
    prepared = model._prepare_data({**cols, **model._extra_fit_arrays(data, data.index)})
    weights = np.ones(len(data))
    loglik, grad = model._objective_factory(prepared, weights)
    phi = model._params_array().copy()
    mask = model._log_mask()
    phi[mask] = np.log(phi[mask])
    phi = phi + np.linspace(-0.02, 0.02, phi.size)  # off the optimum: the gradient is not 0
    k, h = phi.size, 1e-4
    eye = np.eye(k) * h
    g_ref = np.array([(loglik(phi + eye[j]) - loglik(phi - eye[j])) / (2 * h) for j in range(k)])
    h_ref = np.empty((k, k))
    for j in range(k):
        for m in range(j, k):
            h_ref[j, m] = h_ref[m, j] = (
                loglik(phi + eye[j] + eye[m]) - loglik(phi + eye[j] - eye[m])
                - loglik(phi - eye[j] + eye[m]) + loglik(phi - eye[j] - eye[m])
            ) / (4 * h * h)
    np.testing.assert_allclose(grad(phi), g_ref, rtol=1e-6, atol=1e-6 * np.abs(g_ref).max())
    for central in (True, False):
        hess = model._hessian_log(grad, phi, central=central)
        np.testing.assert_allclose(hess, h_ref, rtol=1e-4, atol=1e-5 * np.abs(h_ref).max())


def _warm_path_data(klass, seed):
    """8,000 simulated customers, weekly, with channel and membership on both processes."""
    effects = {"purchase": {"channel": {"referral": 0.4}, "membership": 0.3},
               "dropout": {"channel": {"referral": -0.5}, "membership": -0.6}}
    process = "pareto_nbd" if klass is ParetoNBDModel else "bgnbd"
    sim = simulate(8000, seed=seed, process=process, covariate_effects=effects)
    rfm = rfm_summary(sim.transactions, freq="W")
    data = rfm.join(sim.customers.set_index("customer_id")[["membership"]])
    data.attrs = dict(rfm.attrs)
    cols = ["channel", "membership"]
    return data, {"purchase_covariates": cols, "dropout_covariates": cols}


@pytest.mark.parametrize("klass", MODELS)
def test_large_data_path_with_covariates_reaches_the_small_data_optimum(klass, monkeypatch):
    # the warm start (a seeded subset, then Newton on all rows with the subset's Hessian refined
    # by BFGS updates, and the full-data Hessian by forward differences for the covariance)
    # against the small-data multi-start on the same rows: two routes to the same maximum
    import custvalue.models.base as base

    data, opts = _warm_path_data(klass, seed=5)
    small = klass(**opts).fit(data)
    monkeypatch.setattr(base, "_WARM_START_ROWS", small.n_unique_rows_ // 2)
    warm = klass(**opts).fit(data)
    # the warm path was taken and accepted (no fall-back to the full-data multi-start)
    assert warm.diagnostics_["optimizer_message"].startswith("Newton (subset Hessian with BFGS")
    assert warm.diagnostics_["restarts"] == 1
    np.testing.assert_allclose(warm.params_.to_numpy(), small.params_.to_numpy(), rtol=1e-6, atol=1e-7)
    assert warm.log_likelihood_ >= small.log_likelihood_ - 1e-7 * abs(small.log_likelihood_)
    np.testing.assert_allclose(warm.standard_errors_, small.standard_errors_, rtol=1e-3)


@pytest.mark.parametrize("klass", MODELS)
def test_subset_search_hands_over_to_newton_and_reaches_the_lbfgs_optimum(klass, monkeypatch):
    # the warm start's subset search with covariates stops L-BFGS-B early and finishes with
    # Newton steps on the subset Hessian; against L-BFGS-B run to its own tight tolerance from
    # the same starts on the same subset (the plain multi-start): the same maximum
    import custvalue.models.base as base

    data, opts = _warm_path_data(klass, seed=11)
    seen = []
    original = klass._subset_search

    def spy(self, sub, starts):
        out = original(self, sub, starts)
        seen.append((sub, starts, out))
        return out

    monkeypatch.setattr(klass, "_subset_search", spy)
    monkeypatch.setattr(base, "_WARM_START_ROWS", 4000)
    model = klass(**opts)
    model.fit(data)
    (sub, starts, out), = seen
    assert len(out) == len(starts)  # every start agreed: no fall-back
    for res in out:
        assert res.hess_log.shape == (res.x.size, res.x.size)
        assert model._is_interior(sub, res)  # finished to the interior-optimum standard
    reference = min(model._multi_start(sub, starts), key=lambda r: r.fun)
    best = min(out, key=lambda r: r.fun)
    np.testing.assert_allclose(best.x, reference.x, rtol=1e-6, atol=1e-6)
    assert -best.fun >= -reference.fun - 1e-12 * abs(reference.fun)
    # the Hessian it hands on is the subset's Hessian near that optimum
    exact = model._hessian_log(sub.grad, best.x)
    np.testing.assert_allclose(best.hess_log, exact, rtol=1e-2, atol=1e-3 * np.abs(exact).max())


def test_covariate_patterns_reproduce_the_design_matrix():
    # every row's pattern design vector is the row of the encoding's own design matrix, also for
    # numeric columns and for so many distinct values that the codes cannot be combined into one
    # integer (the hashing fallback)
    from custvalue.models._covariates import _patterns, fit_encoding

    rng = np.random.default_rng(3)
    n = 3000
    table = pd.DataFrame({
        "channel": rng.choice(["a", "b", "c"], n),
        "flag": rng.random(n) < 0.3,
        "age": rng.integers(18, 80, n).astype(float),
    })
    for k in range(12):  # 12 columns of ~2,000 distinct values: far beyond 2**62 combinations
        table[f"u{k}"] = rng.normal(size=n).round(3)
    for cols in (["channel", "flag", "age"], ["channel", *[f"u{k}" for k in range(12)]]):
        encs = {"purchase": fit_encoding(table, cols), "dropout": fit_encoding(table, cols[:2])}
        pattern, zg = _patterns(table, encs, {"purchase": "test", "dropout": "test"})
        for block, enc in encs.items():
            np.testing.assert_array_equal(zg[block][pattern], enc.transform(table))
        # first-occurrence order: pattern k first appears after patterns 0..k-1
        first = pd.Series(pattern).drop_duplicates().to_numpy()
        np.testing.assert_array_equal(first, np.arange(first.size))
