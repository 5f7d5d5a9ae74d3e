"""custvalue.models.recommend: which model for which setting (Fader & Hardie 2009, Figure 1)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from custvalue.errors import ParameterError
from custvalue.models import Recommendation, recommend


def _names(rec: Recommendation) -> list[str]:
    return [m.model for m in rec.models]


@pytest.mark.parametrize(
    ("contractual", "discrete", "first"),
    [
        (True, True, "custvalue.models.ShiftedBetaGeoModel"),
        (True, False, "custvalue.survival.kaplan_meier / logrank_test"),
        (False, True, "custvalue.models.BetaGeoBetaBinomModel"),
        (False, False, "custvalue.models.ParetoNBDModel"),
    ],
)
def test_four_settings(contractual, discrete, first):
    rec = recommend(contractual=contractual, discrete=discrete)
    assert rec.primary.model == first
    assert rec.contractual is contractual and rec.discrete is discrete
    # every suggestion and every rejection says why
    assert all(m.reason for m in rec.models + rec.not_suitable)
    ruled_out = {m.model for m in rec.not_suitable}
    assert not (ruled_out & set(_names(rec)))
    if contractual:
        assert "custvalue.models.ParetoNBDModel" in ruled_out
    else:
        assert "custvalue.models.ShiftedBetaGeoModel" in ruled_out


def test_inspects_donation_summary():
    from custvalue.datasets import load_donations

    rec = recommend(load_donations())
    assert rec.setting == "non-contractual, discrete-time"
    assert rec.primary.model == "custvalue.models.BetaGeoBetaBinomModel"
    assert any("opportunities" in e for e in rec.evidence)


def test_inspects_transaction_log_and_rfm_summary():
    from custvalue.datasets import load_cdnow

    tx = load_cdnow("sample")
    rec = recommend(tx)
    assert rec.setting == "non-contractual, continuous-time"
    assert "custvalue.models.BetaGeoModel" in _names(rec)
    assert "custvalue.models.GammaGammaModel" in _names(rec)
    summary = pd.DataFrame(
        {"frequency": [0, 2, 5], "recency": [0.0, 30.5, 200.0], "T": [300.0, 310.0, 320.0],
         "monetary_value": [0.0, 20.0, 35.0]}
    )
    summary.attrs["freq"] = "D"
    assert recommend(summary).discrete is False


def test_gamma_gamma_warns_about_correlated_spend():
    rng = np.random.default_rng(0)
    freq = rng.integers(1, 20, 500)
    spend = 5.0 * freq + rng.normal(0, 1, 500)
    data = pd.DataFrame({"frequency": freq, "recency": freq * 10.0, "T": 400.0, "monetary_value": spend})
    data.attrs["freq"] = "D"
    gg = next(m for m in recommend(data).models if m.role == "spend")
    assert "correlated" in gg.reason


def test_inspects_subscription_tables():
    from custvalue._subscriptions import subscriptions
    from custvalue.datasets import simulate

    sim = simulate(300, seed=2, mode="subscription")
    records = recommend(sim.subscriptions)
    assert records.contractual and records.primary.model == "custvalue.models.ShiftedBetaGeoModel"
    assert any("subscriptions" in e for e in records.evidence)
    table = subscriptions(sim.subscriptions)
    rec = recommend(table)
    assert rec.setting == "contractual, discrete-time"
    tenure = pd.DataFrame({"duration": [1.5, 2.25, 7.1], "churned": [True, False, True]})
    assert recommend(tenure, covariates=True).primary.model.startswith("custvalue.survival")
    assert "custvalue.survival.cox_ph" in _names(recommend(tenure))


def test_text_and_dict_descriptions():
    rec = recommend("monthly software subscription")
    assert rec.contractual and rec.discrete
    assert recommend("online retail store").setting == "non-contractual, continuous-time"
    assert recommend("yearly charity donation drive, non-contractual").primary.model.endswith(
        "BetaGeoBetaBinomModel"
    )
    d = recommend({"contractual": False, "discrete": False, "spend": True})
    assert d.to_frame().loc["Gamma-Gamma spend", "suitable"]
    # explicit arguments override what the description says
    assert recommend("retail", contractual=True, discrete=True).primary.model.endswith("ShiftedBetaGeoModel")
    text = str(rec)
    assert text.startswith("Setting: contractual") and "Not suitable here" in text
    assert "<ol>" in rec._repr_html_()


def test_undecidable_or_bad_input_raises():
    with pytest.raises(ParameterError, match="contractual"):
        recommend()
    with pytest.raises(ParameterError, match="contractual"):
        recommend("some data")
    with pytest.raises(ParameterError, match="unknown keys"):
        recommend({"contract": True})
    with pytest.raises(ParameterError):
        recommend(42)
