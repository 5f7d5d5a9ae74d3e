"""Tests for custvalue.evaluation: metrics against hand computations and closed forms, the
holdout scorecard, model comparison and tracking."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from custvalue.errors import DataValidationError, ParameterError
from custvalue.evaluation import (
    auc,
    brier_score,
    decile_table,
    gini,
    holdout_scorecard,
    tracking,
)


class RateModel:
    """Test double: everyone buys at rate ``lam`` per day; P(alive) given per customer."""

    contractual = False

    def __init__(self, lam: float = 0.1, p_alive=None) -> None:
        self.lam = lam
        self.p_alive = p_alive
        self.params_ = {"lam": lam}
        self.time_unit_ = "D"

    def expected_purchases(self, data, t):
        return pd.Series(self.lam * float(t), index=data.index)

    def probability_alive(self, data, t=0):
        p = np.full(len(data), 0.5) if self.p_alive is None else np.asarray(self.p_alive, float)
        return pd.Series(p, index=data.index)

    def expected_purchases_new_customer(self, t):
        return self.lam * np.asarray(t, dtype=float)


# ---------------------------------------------------------------------------------------------
# metric functions
# ---------------------------------------------------------------------------------------------
def _pairwise_auc(y, s):
    """Independent AUC: share of (positive, negative) pairs ordered correctly, ties 1/2."""
    pos = [v for v, t in zip(s, y, strict=True) if t]
    neg = [v for v, t in zip(s, y, strict=True) if not t]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


def test_auc_perfect_reversed_and_ties():
    y = [0, 0, 1, 1]
    assert auc(y, [0.1, 0.2, 0.3, 0.4]) == 1.0
    assert auc(y, [0.4, 0.3, 0.2, 0.1]) == 0.0
    assert auc(y, [0.5] * 4) == 0.5
    assert np.isnan(auc([1, 1], [0.2, 0.3]))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.booleans(), st.integers(0, 5)), min_size=2, max_size=30).filter(
        lambda v: 0 < sum(t for t, _ in v) < len(v)
    )
)
def test_auc_equals_pairwise_count(pairs):
    y = [t for t, _ in pairs]
    s = [float(v) for _, v in pairs]
    assert auc(y, s) == pytest.approx(_pairwise_auc(y, s))


def test_brier_hand_computed():
    assert brier_score([1, 0, 1], [0.8, 0.4, 1.0]) == pytest.approx((0.04 + 0.16 + 0.0) / 3)


def test_gini_hand_computed():
    actual = np.array([0.0, 0.0, 1.0, 3.0])
    pred = np.array([0.1, 0.2, 0.3, 0.4])
    # ranking by pred takes actual in order 3, 1, 0, 0: cumulative shares .75, 1, 1, 1;
    # trapezoid area (0.375 + 0.875 + 1 + 1) / 4 = 0.8125, Gini = 2 * 0.8125 - 1
    assert gini(actual, pred, normalized=False) == pytest.approx(0.625)
    assert gini(actual, pred) == pytest.approx(1.0)  # also the perfect ranking
    # reversed: order 0, 0, 1, 3 -> shares 0, 0, .25, 1; area (0 + 0 + .125 + .625) / 4 = .1875
    assert gini(actual, -pred, normalized=False) == pytest.approx(-0.625)
    assert gini(actual, -pred) == pytest.approx(-1.0)
    assert gini(actual, np.ones(4), normalized=False) == pytest.approx(0.0)  # all tied = random
    assert np.isnan(gini(np.zeros(4), pred))


def test_decile_table_lift_and_shares():
    pred = np.arange(20, dtype=float)
    actual = np.r_[np.zeros(18), 5.0, 5.0]  # only the two highest-predicted customers buy
    tab = decile_table(actual, pred)
    assert list(tab.index) == list(range(1, 11))
    assert (tab["n_customers"] == 2).all()
    assert tab.loc[1, "share_of_actual"] == 1.0
    assert tab.loc[1, "lift"] == pytest.approx(10.0)
    assert tab.loc[1, "mean_predicted"] == pytest.approx(18.5)
    assert tab["total_actual"].sum() == 10.0


# ---------------------------------------------------------------------------------------------
# scorecard
# ---------------------------------------------------------------------------------------------
@pytest.fixture
def holdout_summary() -> pd.DataFrame:
    df = pd.DataFrame(
        {
            "frequency": [0, 2, 5, 1],
            "recency": [0.0, 20.0, 45.0, 3.0],
            "T": [50.0, 50.0, 50.0, 25.0],
            "monetary_value": [0.0, 10.0, 12.0, 8.0],
            "frequency_holdout": [0, 1, 4, 0],
            "monetary_value_holdout": [0.0, 9.0, 11.0, 0.0],
            "duration_holdout": [20.0, 20.0, 20.0, 20.0],
        },
        index=pd.Index(["a", "b", "c", "d"], name="customer_id"),
    )
    df.attrs["freq"] = "D"
    return df


def test_scorecard_hand_computed(holdout_summary):
    model = RateModel(lam=0.05, p_alive=[0.1, 0.6, 0.9, 0.3])
    card = holdout_scorecard(model, holdout_summary)
    actual = np.array([0, 1, 4, 0.0])
    pred = np.full(4, 1.0)  # 0.05 * 20 days
    m = card.metrics
    assert m.loc["model", "mae"] == pytest.approx(np.mean(np.abs(pred - actual)))
    assert m.loc["model", "rmse"] == pytest.approx(np.sqrt(np.mean((pred - actual) ** 2)))
    assert m.loc["no_repeat", "mae"] == pytest.approx(actual.mean())
    carry = np.array([0.0, 2 / 50, 5 / 50, 1 / 25]) * 20
    assert m.loc["carry_forward", "rmse"] == pytest.approx(np.sqrt(np.mean((carry - actual) ** 2)))
    assert m.loc["model", "total_predicted"] == pytest.approx(4.0)
    assert m.loc["model", "total_actual"] == pytest.approx(5.0)
    assert m.loc["model", "total_error_pct"] == pytest.approx(-20.0)
    # P(alive) ranks the two holdout buyers above the two non-buyers: AUC 1
    assert card.ranking["auc_alive"] == 1.0
    assert card.ranking["brier_alive"] == pytest.approx(np.mean((np.array([0.1, 0.6, 0.9, 0.3]) - [0, 1, 1, 0]) ** 2))
    d = card.to_dict()
    assert d["model_mae"] == pytest.approx(m.loc["model", "mae"])
    text = str(card.summary())
    assert "Holdout scorecard" in text and "carry_forward" in text
    assert "<table" in card._repr_html_()
    assert card.summary()._repr_html_() == card._repr_html_() and repr(card.summary()) == text


def test_scorecard_validates_input(holdout_summary):
    with pytest.raises(DataValidationError, match="frequency_holdout"):
        holdout_scorecard(RateModel(), holdout_summary.drop(columns="frequency_holdout"))
    with pytest.raises(DataValidationError, match="calibration_holdout"):
        holdout_scorecard(RateModel(), holdout_summary.to_numpy())


def test_scorecard_does_not_modify_input(holdout_summary):
    before = holdout_summary.copy()
    holdout_scorecard(RateModel(), holdout_summary)
    pd.testing.assert_frame_equal(before, holdout_summary)


# ---------------------------------------------------------------------------------------------
# tracking
# ---------------------------------------------------------------------------------------------
def test_tracking_constant_rate_hand_computed():
    tx = pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "b", "b"],
            "date": pd.to_datetime(
                ["2021-01-04", "2021-01-06", "2021-01-20", "2021-01-11", "2021-01-12"]
            ),
        }
    )
    model = RateModel(lam=0.5)
    tab = tracking(model, tx, period="W", end="2021-01-25")
    # weeks start on 2021-01-04: [04-11), [11-18), [18-25), and the end day [25-26) cut short
    assert list(tab["actual"]) == [1.0, 1.0, 1.0, 0.0]
    assert tab["period_end"].iloc[-1] == pd.Timestamp("2021-01-26")
    # cohort a (01-04) and b (01-11): expected cumulative at the period ends
    # 0.5 * (7, 14 + 7, 21 + 14, 22 + 15)
    np.testing.assert_allclose(tab["expected_cumulative"], 0.5 * np.array([7, 21, 35, 37]))
    np.testing.assert_allclose(tab["actual_cumulative"], [1, 2, 3, 3])
    assert not tab["in_holdout"].any()


def test_tracking_marks_holdout_and_rejects_bad_input():
    tx = pd.DataFrame({"customer_id": ["a", "a"], "date": pd.to_datetime(["2021-01-01", "2021-03-01"])})
    tab = tracking(RateModel(), tx, period="M", calibration_end="2021-01-20")
    assert tab["in_holdout"].any() and not tab["in_holdout"].all()
    with pytest.raises(DataValidationError, match="date"):
        tracking(RateModel(), tx.drop(columns="date"))
    with pytest.raises(ParameterError):
        tracking(RateModel(), tx, period="fortnight")


# ---------------------------------------------------------------------------------------------
# real models on CDNOW (reference values from lifetimes with the same parameters)
# ---------------------------------------------------------------------------------------------
CDNOW_BG_WEEKS = {"r": 0.242594, "alpha": 4.413643, "a": 0.792918, "b": 2.425898}  # FHL 2005a


@pytest.fixture(scope="module")
def cdnow_sample_tx() -> pd.DataFrame:
    from custvalue.datasets import load_cdnow

    return load_cdnow("sample")


@pytest.fixture(scope="module")
def cdnow_ch(cdnow_sample_tx) -> pd.DataFrame:
    from custvalue.summary import calibration_holdout

    return calibration_holdout(
        cdnow_sample_tx, calibration_end="1997-09-30", observation_end="1998-06-30", freq="W"
    )


def test_scorecard_predictions_match_lifetimes(cdnow_ch):
    from lifetimes import BetaGeoFitter

    from custvalue.models import BetaGeoModel

    model = BetaGeoModel.from_params(**CDNOW_BG_WEEKS, time_unit="W")
    card = holdout_scorecard(model, cdnow_ch)
    bgf = BetaGeoFitter()
    bgf.params_ = pd.Series(CDNOW_BG_WEEKS)
    ref = bgf.conditional_expected_number_of_purchases_up_to_time(
        cdnow_ch["duration_holdout"], cdnow_ch["frequency"], cdnow_ch["recency"], cdnow_ch["T"]
    )
    np.testing.assert_allclose(card.predictions["predicted"], np.asarray(ref, float), rtol=1e-8)
    ref_alive = bgf.conditional_probability_alive(cdnow_ch["frequency"], cdnow_ch["recency"], cdnow_ch["T"])
    y = cdnow_ch["frequency_holdout"].to_numpy() > 0
    assert card.ranking["auc_alive"] == pytest.approx(_pairwise_auc_fast(y, np.asarray(ref_alive, float)))
    m = card.metrics
    # the model beats both naive baselines on CDNOW (FHL 2005a, section 4)
    assert m.loc["model", "rmse"] < m.loc["no_repeat", "rmse"]
    assert m.loc["model", "rmse"] < m.loc["carry_forward", "rmse"]
    assert 0.3 < card.ranking["gini"] <= 1.0
    # P(no holdout purchase) = 1 - PA + PA * ((alpha+T)/(alpha+T+t))^(r+x): an alive customer
    # cannot drop out before buying, and lambda | alive ~ Gamma(r+x, alpha+T) (FHL 2005a)
    pa = np.asarray(ref_alive, float)
    c = CDNOW_BG_WEEKS
    T, x, t = cdnow_ch["T"].to_numpy(), cdnow_ch["frequency"].to_numpy(), cdnow_ch["duration_holdout"].to_numpy()
    p0 = 1 - pa + pa * ((c["alpha"] + T) / (c["alpha"] + T + t)) ** (c["r"] + x)
    np.testing.assert_allclose(card.predictions["p_buy"], 1 - p0, rtol=1e-7, atol=1e-12)
    assert card.ranking["auc_buy"] > 0.7 > card.ranking["auc_alive"]


def _pairwise_auc_fast(y, s):
    pos, neg = s[y], s[~y]
    gt = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return gt / (pos.size * neg.size)


class _Broken:
    """A candidate whose fit always fails."""

    def fit(self, data):
        from custvalue.errors import ConvergenceError

        raise ConvergenceError("parameter 'r' ran away")


def test_compare_models_ranks_and_chooses_by_rule(cdnow_ch):
    from custvalue.evaluation import compare_models
    from custvalue.models import BetaGeoModel, ModifiedBetaGeoModel

    before = cdnow_ch.copy()
    res = compare_models(
        {"bgnbd": BetaGeoModel(), "mbgnbd": ModifiedBetaGeoModel(), "broken": _Broken()}, cdnow_ch
    )
    pd.testing.assert_frame_equal(before, cdnow_ch)
    tab = res.table
    assert set(tab.index) == {"bgnbd", "mbgnbd", "broken"}
    assert "ran away" in tab.loc["broken", "error"] and not tab.loc["broken", "chosen"]
    assert res.chosen_name in ("bgnbd", "mbgnbd") and res.chosen is res.models[res.chosen_name]
    ok = tab.drop(index="broken")
    best = ok["rmse"].min()
    near = ok[ok["rmse"] <= best * 1.01]
    assert res.chosen_name == near["bic"].idxmin()
    assert tab.index[0] == res.chosen_name and tab["chosen"].sum() == 1
    # the scorecard of each model is the one holdout_scorecard gives for the fitted model
    card = holdout_scorecard(res.models["bgnbd"], cdnow_ch)
    assert ok.loc["bgnbd", "rmse"] == pytest.approx(card.metrics.loc["model", "rmse"])
    assert "Rule" in str(res.summary()) and "<table" in res._repr_html_()
    assert "<table" in res.summary()._repr_html_()
    by_bic = compare_models([BetaGeoModel, ModifiedBetaGeoModel], cdnow_ch, criterion="bic")
    assert by_bic.chosen_name == by_bic.table["bic"].idxmin()
    with pytest.raises(ParameterError, match="criterion"):
        compare_models([BetaGeoModel], cdnow_ch, criterion="r2")


def test_tracking_matches_lifetimes_expected_cumulative_transactions(cdnow_sample_tx):
    from lifetimes import ParetoNBDFitter
    from lifetimes.utils import expected_cumulative_transactions

    from custvalue.models.pareto_nbd import ParetoNBDModel

    daily = {"r": 0.55, "alpha": 10.58 * 7, "s": 0.61, "beta": 11.67 * 7}  # FHL 2005b, weeks->days
    model = ParetoNBDModel.from_params(**daily, time_unit="D")
    ref_model = ParetoNBDFitter()
    ref_model.params_ = pd.Series(daily)
    days = 120
    tx = cdnow_sample_tx[["customer_id", "date"]]
    ref = expected_cumulative_transactions(ref_model, tx, "date", "customer_id", t=days, freq="D")
    ours = tracking(model, tx, period="D", end=tx["date"].min() + pd.Timedelta(days=days - 1))
    assert len(ours) == days
    np.testing.assert_allclose(ours["expected_cumulative"].to_numpy(), ref["predicted"].to_numpy(), rtol=1e-8)
    np.testing.assert_allclose(ours["actual_cumulative"].to_numpy(), ref["actual"].to_numpy())
