"""Kaplan-Meier, log-rank and Cox PH on contract durations (custvalue.survival).

References: the product-limit estimator by hand (Kaplan & Meier 1958) and Greenwood's formula;
the empirical survival function without censoring; the two-sample log-rank statistic written out
from its definition (Mantel 1966); simulation with known hazard ratios for Cox (1972), incl.
time-varying covariates in counting-process form (Andersen & Gill 1982).
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest

from custvalue import survival as sv
from custvalue._subscriptions import subscriptions
from custvalue.errors import DataValidationError, ParameterError


@pytest.fixture(scope="module")
def small() -> pd.DataFrame:
    return pd.DataFrame({"duration": [1, 2, 2, 3, 4, 5.0], "event": [1, 1, 0, 1, 0, 1]})


def test_kaplan_meier_by_hand(small):
    km = sv.kaplan_meier(small)
    tab = km.table
    assert tab["time"].tolist() == [1, 2, 3, 5]
    # S(1) = 5/6, S(2) = 5/6 * 4/5, S(3) = S(2) * 2/3, S(5) = 0
    np.testing.assert_allclose(tab["survival"], [5 / 6, 4 / 6, 4 / 6 * 2 / 3, 0.0], rtol=1e-12)
    # Greenwood at t = 1: S sqrt(d / (n (n - d)))
    assert tab["std_error"].iloc[0] == pytest.approx(5 / 6 * np.sqrt(1 / (6 * 5)), rel=1e-10)
    assert tab["at_risk"].tolist() == [6, 5, 3, 1]
    inner = tab["survival"].between(0, 1, inclusive="neither")
    assert (tab["lower"][inner] < tab["survival"][inner]).all()
    assert (tab["upper"][inner] > tab["survival"][inner]).all()
    assert ((tab[["lower", "upper"]] >= 0) & (tab[["lower", "upper"]] <= 1)).all().all()
    assert km.medians.loc["all", "median"] == 3
    at = km.survival_at([0.5, 2.5, 10])
    np.testing.assert_allclose(at["survival"], [1.0, 4 / 6, 0.0])


def test_kaplan_meier_equals_empirical_survival_without_censoring():
    rng = np.random.default_rng(0)
    dur = rng.gamma(2.0, 3.0, 2_000)
    km = sv.kaplan_meier(pd.DataFrame({"duration": dur, "event": True}))
    times = km.table["time"].to_numpy()
    empirical = (dur[None, :] > times[:, None]).mean(axis=1)
    np.testing.assert_allclose(km.table["survival"].to_numpy(), empirical, atol=1e-12)


def test_groups_weights_and_bands():
    rng = np.random.default_rng(1)
    n = 3_000
    plan = rng.choice(["basic", "pro"], n)
    dur = rng.exponential(np.where(plan == "pro", 12.0, 6.0))
    cens = np.minimum(dur, 18.0)
    data = pd.DataFrame({"duration": cens, "event": dur < 18.0, "plan": plan})
    km = sv.kaplan_meier(data, group_col="plan")
    assert km.groups == ["basic", "pro"]
    for g in ("basic", "pro"):
        alone = sv.kaplan_meier(data[data["plan"] == g])
        np.testing.assert_allclose(
            km.table.loc[km.table["group"] == g, "survival"].to_numpy(), alone.table["survival"].to_numpy()
        )
    # exponential truth: S(6) = exp(-6/6) for basic, exp(-6/12) for pro
    at = km.survival_at([6.0])
    assert at.loc[("basic", 6.0), "survival"] == pytest.approx(np.exp(-1.0), abs=0.03)
    assert at.loc[("pro", 6.0), "survival"] == pytest.approx(np.exp(-0.5), abs=0.03)
    simul = sv.kaplan_meier(data, group_col="plan", band="simultaneous")
    width_p = (km.table["upper"] - km.table["lower"]).to_numpy()
    width_s = (simul.table["upper"] - simul.table["lower"]).to_numpy()
    assert np.median(width_s - width_p) > 0
    # frequency weights give the same curve as repeated rows
    compact = data.round({"duration": 0}).groupby(["duration", "event", "plan"]).size().rename("w").reset_index()
    rep = compact.loc[compact.index.repeat(compact["w"])]
    a = sv.kaplan_meier(compact, group_col="plan", weight_col="w").table
    b = sv.kaplan_meier(rep, group_col="plan").table
    np.testing.assert_allclose(a["survival"].to_numpy(), b["survival"].to_numpy(), rtol=1e-12)
    ax = km.plot()
    assert ax.get_xlabel().startswith("tenure") and "plan" in ax.get_title()
    assert "basic" in str(km) and "<table" in km._repr_html_()


def _logrank_by_hand(time, status, group):
    u = v = 0.0
    for t in np.unique(time[status == 1]):
        at_risk = time >= t
        n, n1 = at_risk.sum(), (at_risk & (group == 1)).sum()
        d = ((time == t) & (status == 1)).sum()
        d1 = ((time == t) & (status == 1) & (group == 1)).sum()
        u += d1 - d * n1 / n
        if n > 1:
            v += d * (n1 / n) * (1 - n1 / n) * (n - d) / (n - 1)
    return u * u / v


def test_logrank_matches_definition():
    rng = np.random.default_rng(2)
    n = 400
    group = rng.integers(0, 2, n)
    dur = np.round(rng.exponential(np.where(group == 1, 8.0, 6.0)), 1)
    status = (dur < 15).astype(int)
    dur = np.minimum(dur, 15)
    data = pd.DataFrame({"duration": dur, "event": status, "g": group})
    res = sv.logrank_test(data, "g")
    assert res.statistic == pytest.approx(_logrank_by_hand(dur, status, group), rel=1e-8)
    assert res.df == 1
    assert 0 <= res.p_value <= 1
    assert res.table["observed"].sum() == pytest.approx(res.table["expected"].sum(), rel=1e-10)
    assert res.table["observed"].sum() == status.sum()
    assert "chi2" in str(res)


def test_logrank_power_and_size():
    rng = np.random.default_rng(3)
    same = pd.DataFrame({"duration": rng.exponential(5, 2_000), "event": True, "g": rng.integers(0, 3, 2_000)})
    assert sv.logrank_test(same, "g").p_value > 0.01
    g = rng.integers(0, 2, 2_000)
    diff = pd.DataFrame({"duration": rng.exponential(np.where(g == 1, 8, 5)), "event": True, "g": g})
    assert sv.logrank_test(diff, "g").p_value < 1e-6


def test_cox_recovers_hazard_ratios():
    rng = np.random.default_rng(4)
    n = 6_000
    plan = rng.choice(["basic", "pro", "team"], n)
    price = rng.uniform(5, 25, n)
    lin = np.where(plan == "pro", -0.5, 0.0) + np.where(plan == "team", 0.4, 0.0) + 0.03 * price
    dur = rng.exponential(1.0 / (0.1 * np.exp(lin)))
    data = pd.DataFrame({"duration": np.minimum(dur, 12.0), "event": dur < 12.0, "plan": plan, "price": price})
    res = sv.cox_ph(data, ["plan", "price"], engine="numpy")
    truth = {"plan_pro": -0.5, "plan_team": 0.4, "price": 0.03}
    for name, beta in truth.items():
        est, se = res.table.loc[name, "coef"], res.table.loc[name, "std_error"]
        assert abs(est - beta) < 4 * se, (name, est, beta, se)
    assert res.table.loc["plan_pro", "hazard_ratio"] == pytest.approx(np.exp(res.table.loc["plan_pro", "coef"]))
    lo, hi = res.table.loc["price", ["lower", "upper"]]
    assert lo < res.table.loc["price", "hazard_ratio"] < hi
    # the formula interface gives the same fit
    f = sv.cox_ph(data, "C(plan) + price", engine="numpy")
    np.testing.assert_allclose(np.sort(f.table["coef"].to_numpy()), np.sort(res.table["coef"].to_numpy()), rtol=1e-8)
    ph = res.predict_partial_hazard(pd.DataFrame({"plan_pro": [1.0], "plan_team": [0.0], "price": [10.0]}))
    assert ph.iloc[0] == pytest.approx(np.exp(res.table.loc["plan_pro", "coef"] + 10 * res.table.loc["price", "coef"]))
    assert "Cox proportional hazards" in str(res)


def test_start_stop_split_without_change_leaves_cox_unchanged():
    rng = np.random.default_rng(5)
    n = 1_500
    x = rng.normal(size=n)
    dur = rng.exponential(np.exp(-0.7 * x) * 5)
    spells = pd.DataFrame(
        {"customer_id": np.arange(n), "duration": np.minimum(dur, 10), "event": dur < 10, "x": x}
    )
    changes = pd.DataFrame({"customer_id": np.arange(n), "time": rng.uniform(0, 10, n), "x": x})
    rows = sv.start_stop(spells, changes)
    assert len(rows) > n
    assert rows.groupby("customer_id")["event"].sum().max() <= 1
    whole = sv.cox_ph(spells, ["x"], engine="numpy")
    split = sv.cox_ph(
        rows, ["x"], duration_col="stop", entry_col="start", event_col="event", id_col="customer_id", engine="numpy"
    )
    assert split.table.loc["x", "coef"] == pytest.approx(whole.table.loc["x", "coef"], rel=1e-8)
    assert split.n_customers == n and split.n_rows == len(rows)


def test_cox_time_varying_covariate_recovery():
    rng = np.random.default_rng(6)
    n, base, gamma, horizon = 8_000, 0.08, -0.6, 24.0
    switch = rng.uniform(0, 12, n)  # a discount starts at this tenure
    first = rng.exponential(1 / base, n)
    after = switch + rng.exponential(1 / (base * np.exp(gamma)), n)
    dur = np.where(first < switch, first, after)
    spells = pd.DataFrame(
        {"customer_id": np.arange(n), "duration": np.minimum(dur, horizon), "event": dur < horizon, "discount": 0.0}
    )
    changes = pd.DataFrame({"customer_id": np.arange(n), "time": switch, "discount": 1.0})
    rows = sv.start_stop(spells, changes)
    # rows for customers who left before the switch carry no change
    left_early = spells.loc[first < switch, "customer_id"]
    assert (rows[rows["customer_id"].isin(left_early)]["discount"] == 0).all()
    res = sv.cox_ph(
        rows, ["discount"], duration_col="stop", entry_col="start", event_col="event", id_col="customer_id",
        engine="numpy",
    )
    est, se = res.table.loc["discount", "coef"], res.table.loc["discount", "std_error"]
    assert abs(est - gamma) < 4 * se


def test_durations_from_subscription_table():
    recs = pd.DataFrame(
        {
            "customer_id": [1, 2],
            "start": pd.to_datetime(["2023-01-01", "2023-02-01"]),
            "end": pd.to_datetime(["2023-03-02", None]),
        }
    )
    table = subscriptions(recs, observation_end="2023-08-01")
    d = sv.durations(table)
    assert d["duration"].tolist() == pytest.approx([60 / (365.25 / 12), 181 / (365.25 / 12)])
    assert d["event"].tolist() == [True, False]
    km = sv.kaplan_meier(table)  # uses start/end automatically
    assert km.table["time"].iloc[0] == pytest.approx(60 / (365.25 / 12))
    assert km.unit == "months"


def test_survival_input_errors(small):
    with pytest.raises(DataValidationError, match="negative"):
        sv.kaplan_meier(small.assign(duration=[-1, 2, 2, 3, 4, 5]))
    with pytest.raises(DataValidationError, match="True/False"):
        sv.kaplan_meier(small.assign(event=[2, 1, 0, 1, 0, 1]))
    with pytest.raises(DataValidationError, match="missing"):
        sv.kaplan_meier(small.assign(duration=[np.nan, 2, 2, 3, 4, 5]))
    with pytest.raises(DataValidationError, match="no duration column"):
        sv.kaplan_meier(pd.DataFrame({"x": [1]}))
    with pytest.raises(ParameterError, match=r"0\.95"):
        sv.kaplan_meier(small, band="simultaneous", level=0.9)
    with pytest.raises(DataValidationError, match="only 1 value"):
        sv.logrank_test(small.assign(g=1), "g")
    with pytest.raises(DataValidationError, match="0 <= start < stop"):
        sv.cox_ph(small.assign(x=[1, 2, 3, 4, 5, 6.0], s=[0, 3, 0, 0, 0, 0]), ["x"], entry_col="s")
    with pytest.raises(DataValidationError, match="constant"):
        sv.cox_ph(small.assign(x=1.0), ["x"])
    with pytest.raises(DataValidationError, match="no cancellations"):
        sv.cox_ph(small.assign(event=0, x=[1, 2, 3, 4, 5, 6.0]), ["x"])


@pytest.mark.parametrize("layout", ["plain", "strata", "start_stop"])
def test_numpy_engine_equals_statsmodels_phreg(layout):
    rng = np.random.default_rng(7)
    n = 2_500
    plan = rng.choice(["basic", "pro", "team"], n)
    price = rng.uniform(5, 25, n)
    lin = np.where(plan == "pro", -0.5, 0.0) + 0.03 * price
    dur = np.round(rng.exponential(1.0 / (0.1 * np.exp(lin))), 1)  # rounded: many ties
    data = pd.DataFrame(
        {"duration": np.minimum(dur, 12.0) + 0.1, "event": dur < 12.0, "plan": plan, "price": price,
         "cohort": rng.integers(0, 3, n)}
    )
    kw: dict = {}
    if layout == "strata":
        kw["strata_col"] = "cohort"
    if layout == "start_stop":
        spells = data.assign(customer_id=np.arange(n))
        changes = pd.DataFrame({"customer_id": np.arange(n), "time": rng.uniform(0, 12, n), "price": price * 0.8})
        data = sv.start_stop(spells, changes, covariates=["price"])
        kw.update(duration_col="stop", entry_col="start", event_col="event")
    ref = sv.cox_ph(data, ["plan", "price"], engine="statsmodels", **kw)
    fast = sv.cox_ph(data, ["plan", "price"], engine="numpy", **kw)
    assert ref.engine == "statsmodels" and fast.engine == "numpy"
    np.testing.assert_allclose(fast.table["coef"], ref.table["coef"], rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(fast.table["std_error"], ref.table["std_error"], rtol=1e-7)
    assert fast.log_likelihood == pytest.approx(ref.log_likelihood, rel=1e-12)


@pytest.mark.parametrize("layout", ["start_stop", "strata"])
def test_cluster_robust_errors_equal_statsmodels_phreg_groups(layout):
    """Customer-clustered sandwich errors (Lin & Wei 1989) of the numpy engine equal
    statsmodels' PHReg.fit(groups=...) on the same start-stop rows; and a customer repeated
    with all her rows doubled keeps her coefficient but not her model-based error."""
    rng = np.random.default_rng(17)
    n = 1_500
    x = rng.normal(size=n)
    join = rng.exponential(6.0, n)
    first = rng.exponential(1 / (0.08 * np.exp(0.3 * x)))
    dur = np.where(first < join, first,
                   join + rng.exponential(1 / (0.08 * np.exp(0.3 * x - 0.5)), n))
    dur = np.round(dur, 1) + 0.05  # ties
    spells = pd.DataFrame({"customer_id": np.arange(n), "duration": np.minimum(dur, 20.0),
                           "event": dur < 20.0, "member": 0.0, "x": x,
                           "cohort": rng.integers(0, 3, n)})
    changes = pd.DataFrame({"customer_id": np.arange(n), "time": join, "member": 1.0})
    rows = sv.start_stop(spells, changes, covariates=["member"])
    kw = dict(duration_col="stop", entry_col="start", event_col="event", id_col="customer_id",
              cluster_col="customer_id")
    if layout == "strata":
        kw["strata_col"] = "cohort"
    from statsmodels.duration.hazard_regression import PHReg

    # PHReg itself, on the rows that are at risk at some event time (the others add nothing
    # to the likelihood; PHReg gives them NaN score residuals)
    times = np.sort(rows.loc[rows["event"], "stop"].unique())
    at_risk = (np.searchsorted(times, rows["stop"], side="right")
               > np.searchsorted(times, rows["start"], side="right"))
    sub = rows[at_risk]
    sm = PHReg(sub["stop"].to_numpy(), sub[["member", "x"]].to_numpy(),
               status=sub["event"].to_numpy(dtype=float), entry=sub["start"].to_numpy(),
               strata=sub["cohort"].to_numpy() if layout == "strata" else None,
               ties="breslow").fit(groups=sub["customer_id"].to_numpy())
    ref = sv.cox_ph(rows, ["member", "x"], engine="statsmodels", **kw)
    fast = sv.cox_ph(rows, ["member", "x"], engine="numpy", **kw)
    np.testing.assert_allclose(fast.table["coef"], sm.params, rtol=1e-7)
    np.testing.assert_allclose(fast.covariance.to_numpy(), sm.cov_params(), rtol=1e-6)
    model = sv.cox_ph(rows, ["member", "x"], engine="numpy",
                      **{k: v for k, v in kw.items() if k != "cluster_col"})
    assert "Lin & Wei" in fast.covariance_type and model.covariance_type == "model"
    assert "clustered on customer_id" in str(fast.summary())
    np.testing.assert_allclose(fast.table["coef"], ref.table["coef"], rtol=1e-8)
    np.testing.assert_allclose(fast.covariance.to_numpy(), ref.covariance.to_numpy(), rtol=1e-6)
    np.testing.assert_allclose(fast.table["coef"], model.table["coef"])
    # the sandwich is a different estimate of the same variance: close, not equal
    ratio = fast.table["std_error"] / model.table["std_error"]
    assert ((ratio > 0.8) & (ratio < 1.25)).all() and (ratio != 1).all()
    # duplicated customers: the model-based error shrinks by sqrt(2), the clustered one on the
    # customer does not (each customer's score is doubled, so is the information)
    twice = pd.concat([rows, rows], ignore_index=True)
    m2 = sv.cox_ph(twice, ["member", "x"], engine="numpy",
                   **{k: v for k, v in kw.items() if k != "cluster_col"})
    c2 = sv.cox_ph(twice, ["member", "x"], engine="numpy", **kw)
    np.testing.assert_allclose(m2.table["std_error"] * np.sqrt(2), model.table["std_error"],
                               rtol=1e-6)
    np.testing.assert_allclose(c2.table["std_error"], fast.table["std_error"], rtol=1e-6)
    with pytest.raises(DataValidationError, match="cluster column"):
        sv.cox_ph(rows, ["member"], engine="numpy", duration_col="stop", entry_col="start",
                  event_col="event", cluster_col="nope")


# ---------------------------------------------------------------------------------------------
# estimator convention (options in the constructor, fit -> self, fitted attributes end in "_")
# ---------------------------------------------------------------------------------------------
def _product_limit(time, event, at):
    """S(at) = prod over event times t <= at of (1 - d_t / n_t), written out (Kaplan & Meier 1958)."""
    s = 1.0
    for t in np.unique(time[event]):
        if t > at:
            break
        s *= 1.0 - ((time == t) & event).sum() / (time >= t).sum()
    return s


def test_kaplan_meier_estimator_matches_the_product_limit_formula():
    rng = np.random.default_rng(11)
    n = 300
    plan = rng.choice(["basic", "pro"], n)
    dur = np.round(rng.exponential(np.where(plan == "pro", 10.0, 5.0)), 1) + 0.1  # ties, none at 0
    data = pd.DataFrame({"tenure": np.minimum(dur, 15.0), "cancelled": dur < 15.0, "plan": plan})
    km = sv.KaplanMeier(level=0.9)
    assert km.fit(data, duration_col="tenure", event_col="cancelled", group_col="plan") is km
    assert list(km.survival_function_.columns) == ["basic", "pro"]
    grid = km.survival_function_.index.to_numpy()
    for g in ("basic", "pro"):
        sub = data[data["plan"] == g]
        t, e = sub["tenure"].to_numpy(), sub["cancelled"].to_numpy()
        ref = [_product_limit(t, e, at) for at in grid[::7]]
        np.testing.assert_allclose(km.survival_function_[g].to_numpy()[::7], ref, rtol=1e-12)
    assert km.survival_function_.iloc[0].tolist() == [1.0, 1.0]  # time 0
    # the function form is a thin wrapper: same table
    fn = sv.kaplan_meier(data, duration_col="tenure", event_col="cancelled", group_col="plan", level=0.9)
    pd.testing.assert_frame_equal(fn.table, km.table_)
    assert km.medians_.equals(fn.medians) and km.unit_ == fn.unit
    text = str(km.summary())
    assert "Kaplan-Meier retention (90% pointwise band" in text and "basic" in text
    assert "<table" in km.summary()._repr_html_() and km._repr_html_() == km.summary()._repr_html_()
    assert km.survival_at([5.0]).shape == (2, 3)


def test_survival_estimators_refuse_bad_options_at_construction_and_use_before_fit():
    from custvalue.errors import ModelNotFittedError

    with pytest.raises(ParameterError, match="level"):
        sv.KaplanMeier(level=1.5)
    with pytest.raises(ParameterError, match="band"):
        sv.KaplanMeier(band="wide")
    with pytest.raises(ParameterError, match="ties"):
        sv.CoxPH(ties="exact")
    with pytest.raises(ParameterError, match="Breslow"):
        sv.CoxPH(ties="efron", engine="numpy")
    with pytest.raises(ModelNotFittedError, match="not fitted"):
        sv.CoxPH().summary()
    assert "not fitted" in repr(sv.KaplanMeier())


def test_cox_estimator_recovers_the_truth_and_wraps_cox_ph():
    rng = np.random.default_rng(12)
    n = 3_000
    x = rng.normal(size=n)
    z = rng.integers(0, 2, n).astype(float)
    dur = rng.exponential(1.0 / (0.2 * np.exp(0.5 * x - 0.4 * z)))
    data = pd.DataFrame({"duration": np.minimum(dur, 8.0), "event": dur < 8.0, "x": x, "z": z})
    cox = sv.CoxPH(ties="efron", engine="statsmodels")
    assert cox.fit(data, ["x", "z"]) is cox
    for name, beta in {"x": 0.5, "z": -0.4}.items():
        assert abs(cox.params_[name] - beta) < 4 * cox.standard_errors_[name]
    # continuous times have no ties: Breslow (numpy engine) and Efron (statsmodels) coincide
    other = sv.CoxPH(engine="numpy").fit(data, ["x", "z"])
    np.testing.assert_allclose(other.params_, cox.params_, rtol=1e-5)
    np.testing.assert_allclose(cox.hazard_ratios_, np.exp(cox.params_))
    assert cox.n_events_ == int(data["event"].sum()) and cox.n_customers_ == n
    assert np.isfinite(cox.log_likelihood_) and cox.covariance_.shape == (2, 2)
    fn = sv.cox_ph(data, ["x", "z"], ties="efron", engine="statsmodels")
    pd.testing.assert_frame_equal(fn.table, cox.table_)
    text = str(cox.summary())
    assert "Cox proportional hazards (efron ties)" in text
    assert "<table" in cox.summary()._repr_html_() and "<table" in fn.summary()._repr_html_()
    assert str(fn.summary()) == str(fn)
    ph = cox.predict_partial_hazard(pd.DataFrame({"x": [1.0], "z": [0.0]}))
    assert ph.iloc[0] == pytest.approx(np.exp(cox.params_["x"]))


def test_logrank_summary_prints_and_renders():
    data = pd.DataFrame({"duration": [1, 2, 3, 4, 5, 6.0], "event": [1, 1, 0, 1, 1, 0], "g": list("aabbab")})
    res = sv.logrank_test(data, "g")
    assert "chi2" in str(res.summary()) and "<table" in res.summary()._repr_html_()
