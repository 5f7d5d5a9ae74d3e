"""``from_params`` with covariate coefficients (issue 14): scoring with a published covariate fit.

References: the fitted covariate model itself (a model rebuilt from its own published numbers
must predict what it predicts), and the closed form of CLVTools' static parameterisation
(Bachmann, Meierer & Naef 2021): a customer with covariate ``z`` is the model *without*
covariates at ``alpha exp(-gamma z)`` (Pareto/NBD also ``beta exp(-gamma_d z)``; BG/NBD and
MBG/NBD ``a exp(gamma_d z)``, ``b exp(gamma_d z)``; Gamma-Gamma ``gamma exp(-delta z)``).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from lifetimes.datasets import load_cdnow_summary, load_cdnow_summary_data_with_monetary_value

from custvalue.errors import ParameterError
from custvalue.models import (
    BetaGeoBetaBinomModel,
    BetaGeoModel,
    GammaGammaModel,
    ModifiedBetaGeoModel,
    ParetoNBDModel,
    load_model,
)

MODELS = [BetaGeoModel, ModifiedBetaGeoModel, ParetoNBDModel]
# published CDNOW estimates (weeks): BG/NBD Fader, Hardie & Lee (2005) p. 281; Pareto/NBD
# Fader, Hardie & Lee (2005) "RFM and CLV"; the MBG/NBD values are illustrative
PUBLISHED = {
    BetaGeoModel: {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426},
    ModifiedBetaGeoModel: {"r": 0.525, "alpha": 6.183, "a": 0.891, "b": 1.614},
    ParetoNBDModel: {"r": 0.553, "alpha": 10.58, "s": 0.606, "beta": 11.67},
}


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    d = load_cdnow_summary(index_col=[0])
    rng = np.random.default_rng(41)
    d["channel"] = rng.choice(["online", "offline", "referral"], len(d), p=[0.5, 0.3, 0.2])
    d["age"] = rng.normal(40, 10, len(d)).round()
    return d


@pytest.fixture(scope="module")
def fitted(cdnow):
    out = {}
    for klass in MODELS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out[klass] = klass(
                time_unit="W", purchase_covariates=["channel", "age"], dropout_covariates=["channel"]
            ).fit(cdnow)
    return out


def _published(model):
    """What a paper or a colleague publishes: base parameters, coefficients, levels."""
    p = model.params_
    base = {k: float(p[k]) for k in model._base_names()}
    coefs = {k: float(v) for k, v in p.items() if ":" in k}
    return base, coefs


@pytest.mark.parametrize("klass", MODELS)
def test_from_params_with_a_fits_coefficients_predicts_as_that_fit(klass, cdnow, fitted):
    model = fitted[klass]
    base, coefs = _published(model)
    ref = model.covariate_encodings_["purchase"].reference["channel"]
    others = [v for v in ("online", "offline", "referral") if v != ref]
    built = klass.from_params(time_unit="W", coefficients=coefs,
                              levels={"channel": [ref, *others]}, **base)
    assert list(built.params_.index) == list(model.params_.index)
    rows = cdnow.iloc[::97]
    for got, want in (
        (built.expected_purchases(rows, 39.0), model.expected_purchases(rows, 39.0)),
        (built.probability_alive(rows), model.probability_alive(rows)),
        (built.expected_purchases_new_customer(52.0, covariates=rows[["channel", "age"]]),
         model.expected_purchases_new_customer(52.0, covariates=rows[["channel", "age"]])),
    ):
        pd.testing.assert_series_equal(got, want, rtol=1e-13, atol=0)
    # the same through the fit's own encodings (e.g. a colleague's saved model description)
    again = klass.from_params(time_unit="W", coefficients=model.params_[list(coefs)],
                              encodings={b: e.to_dict() for b, e in model.covariate_encodings_.items()},
                              **base)
    pd.testing.assert_series_equal(again.expected_purchases(rows, 39.0),
                                   model.expected_purchases(rows, 39.0), rtol=1e-13, atol=0)
    # nested coefficients, another reference level: the same customers, the same predictions
    # (the base parameters are those of the new reference level: alpha_ref exp(-gamma_ref))
    new_ref = others[0]
    g = {blk: {t.split(":", 1)[1]: v for t, v in coefs.items() if t.startswith(blk + ":")}
         for blk in ("purchase", "dropout")}
    shift = {blk: g[blk][f"channel[{new_ref}]"] for blk in g}
    nested = {
        blk: {**{f"channel[{lv}]": g[blk].get(f"channel[{lv}]", 0.0) - shift[blk]
                 for lv in ("online", "offline", "referral") if lv != new_ref},
              **({"age": g[blk]["age"]} if "age" in g[blk] else {})}
        for blk in g
    }
    rebased = dict(base)
    rebased["alpha"] = base["alpha"] * np.exp(-shift["purchase"])
    if klass is ParetoNBDModel:
        rebased["beta"] = base["beta"] * np.exp(-shift["dropout"])
    else:
        rebased["a"] = base["a"] * np.exp(shift["dropout"])
        rebased["b"] = base["b"] * np.exp(shift["dropout"])
    moved = klass.from_params(time_unit="W", coefficients=nested,
                              levels={"channel": ["online", "offline", "referral"]},
                              covariate_reference={"channel": new_ref}, **rebased)
    pd.testing.assert_series_equal(moved.expected_purchases(rows, 39.0),
                                   model.expected_purchases(rows, 39.0), rtol=1e-10, atol=0)


@pytest.mark.parametrize("klass", MODELS)
def test_closed_form_a_customer_is_the_plain_model_at_its_own_parameters(klass, cdnow):
    base = PUBLISHED[klass]
    g_p, g_d = 0.35, -0.6
    model = klass.from_params(time_unit="W", coefficients={"purchase:z": g_p, "dropout:z": g_d}, **base)
    rows = cdnow.iloc[[0, 3, 8, 20, 151, 777]].copy()
    rows["z"] = [-1.0, 0.0, 0.5, 1.0, 2.0, 3.5]
    e = model.expected_purchases(rows, 26.0)
    a = model.probability_alive(rows)
    for cid, row in rows.iterrows():
        own = dict(base)
        own["alpha"] = base["alpha"] * np.exp(-g_p * row["z"])
        if klass is ParetoNBDModel:
            own["beta"] = base["beta"] * np.exp(-g_d * row["z"])
        else:
            own["a"] = base["a"] * np.exp(g_d * row["z"])
            own["b"] = base["b"] * np.exp(g_d * row["z"])
        plain = klass.from_params(time_unit="W", **own)
        one = rows.loc[[cid], ["frequency", "recency", "T"]]
        assert e[cid] == pytest.approx(float(plain.expected_purchases(one, 26.0).iloc[0]), rel=1e-12)
        assert a[cid] == pytest.approx(float(plain.probability_alive(one).iloc[0]), rel=1e-12)
        assert model.expected_purchases_new_customer(26.0, covariates={"z": row["z"]}) == pytest.approx(
            float(plain.expected_purchases_new_customer(26.0)), rel=1e-12)


def test_gamma_gamma_from_params_with_spend_coefficients():
    d = load_cdnow_summary_data_with_monetary_value()
    d = d[d["frequency"] > 0].iloc[:400].copy()
    rng = np.random.default_rng(7)
    d["tier"] = rng.choice(["basic", "plus", "gold"], len(d))
    d["size"] = rng.normal(0.0, 1.0, len(d))
    fit = GammaGammaModel(spend_covariates=["tier", "size"], covariate_reference={"tier": "basic"}).fit(d)
    base = {k: float(fit.params_[k]) for k in ("p", "q", "gamma")}
    coefs = {k: float(v) for k, v in fit.params_.items() if ":" in k}
    built = GammaGammaModel.from_params(coefficients=coefs, levels={"tier": ["basic", "gold", "plus"]},
                                        **base)
    pd.testing.assert_series_equal(built.expected_spend(d), fit.expected_spend(d), rtol=1e-13, atol=0)
    # closed form: gamma_i = gamma exp(-delta z)
    delta = 0.4
    m = GammaGammaModel.from_params(coefficients={"spend:size": delta}, p=6.25, q=3.74, gamma=15.44)
    got = m.expected_spend(d)
    for cid in d.index[:6]:
        plain = GammaGammaModel.from_params(p=6.25, q=3.74, gamma=15.44 * np.exp(-delta * d.at[cid, "size"]))
        want = float(plain.expected_spend(d.loc[[cid], ["frequency", "monetary_value"]]).iloc[0])
        assert got[cid] == pytest.approx(want, rel=1e-12)
    assert m.expected_population_spend({"size": 1.0}) == pytest.approx(
        6.25 * 15.44 * np.exp(-delta) / (3.74 - 1.0), rel=1e-12)


def test_covariance_sampling_and_save_load(tmp_path, cdnow, fitted):
    model = fitted[ParetoNBDModel]
    base, coefs = _published(model)
    built = ParetoNBDModel.from_params(
        time_unit="W", coefficients=coefs, encodings=model.covariate_encodings_,
        covariance=model.covariance_.to_numpy(), **base,
    )
    pd.testing.assert_series_equal(built.standard_errors_, model.standard_errors_, rtol=1e-12)
    draws = built.sample_params(50, seed=1)
    assert list(draws.columns) == list(model.params_.index) and np.isfinite(draws.to_numpy()).all()
    path = tmp_path / "pnbd.json"
    built.save(path)
    again = load_model(path)
    rows = cdnow.iloc[:30]
    pd.testing.assert_series_equal(again.expected_purchases(rows, 10.0), model.expected_purchases(rows, 10.0),
                                   rtol=1e-12, atol=0)
    with pytest.raises(ParameterError, match=r"7x7|9x9|matrix in the order"):
        ParetoNBDModel.from_params(time_unit="W", coefficients=coefs, encodings=model.covariate_encodings_,
                                   covariance=np.eye(4), **base)


BG = PUBLISHED[BetaGeoModel]
LEVELS = {"channel": ["online", "offline", "referral"]}
FULL = {"purchase:channel[offline]": 0.2, "purchase:channel[referral]": -0.1, "dropout:age": 0.01}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(coefficients={**FULL, "spend:age": 1.0}, levels=LEVELS), r"'spend:age'.*block one of \['purchase', 'dropout'\]"),
        (dict(coefficients={"age": 1.0}), r"'age' must be named '<block>:<term>'"),
        (dict(coefficients={**FULL, "purchase:channel[email]": 0.1}, levels=LEVELS),
         r"'purchase:channel\[email\]' names a level of 'channel' that is not among its levels"),
        (dict(coefficients={"purchase:channel[offline]": 0.2}, levels=LEVELS),
         r"'purchase:channel\[referral\]'\] are missing"),
        (dict(coefficients={**FULL, "purchase:channel[online]": 0.0}, levels=LEVELS),
         r"reference level of 'channel'"),
        (dict(coefficients=FULL), r"looks like a level of the categorical covariate 'channel'.*levels="),
        (dict(coefficients={"dropout:age": 0.01}, levels=LEVELS), r"levels= names covariate\(s\) \['channel'\] that no coefficient uses"),
        (dict(coefficients={"dropout:age": float("nan")}), r"'dropout:age' must be a finite number"),
        (dict(coefficients=FULL, levels=LEVELS, covariate_reference={"channel": "email"}),
         r"reference level 'email' of 'channel' is not among its levels"),
        (dict(coefficients=FULL, levels={"channel": ["online"]}), r"at least two distinct levels"),
        (dict(levels=LEVELS), r"no coefficients= were given"),
        (dict(coefficients=FULL, levels=LEVELS, encodings={}), r"either encodings= or levels="),
    ],
)
def test_clear_errors(kwargs, message):
    with pytest.raises(ParameterError, match=message):
        BetaGeoModel.from_params(time_unit="W", **kwargs, **BG)


def test_errors_for_encodings_and_models_without_covariates(cdnow, fitted):
    model = fitted[BetaGeoModel]
    base, coefs = _published(model)
    encs = model.covariate_encodings_
    short = {k: v for k, v in coefs.items() if k != "purchase:age"}
    with pytest.raises(ParameterError, match=r"\['purchase:age'\] are missing"):
        BetaGeoModel.from_params(time_unit="W", coefficients=short, encodings=encs, **base)
    with pytest.raises(ParameterError, match=r"'dropout:age'\] name no term of the dropout covariates"):
        BetaGeoModel.from_params(time_unit="W", coefficients={**coefs, "dropout:age": 0.1}, encodings=encs, **base)
    with pytest.raises(ParameterError, match="takes no covariates"):
        BetaGeoBetaBinomModel.from_params(coefficients={"purchase:z": 1.0}, alpha=1.2, beta=0.75, gamma=0.66,
                                          delta=2.78)
    # without coefficients nothing changed: the plain model, its own parameters only
    # built without a covariance: the effects read without an interval, not "CI nan-nan"
    built = BetaGeoModel.from_params(time_unit="W", coefficients=FULL, levels=LEVELS, **BG)
    sentences = " ".join(built.covariate_effects(0.9)["sentence"])
    assert "no interval without a covariance" in sentences and "nan" not in sentences
    plain = BetaGeoModel.from_params(time_unit="W", **BG)
    assert list(plain.params_.index) == ["r", "alpha", "a", "b"]
    with pytest.raises(ParameterError, match="needs exactly the parameters"):
        BetaGeoModel.from_params(time_unit="W", coefficients={"purchase:z": 1.0}, r=0.2, alpha=4.0, a=0.8)
