"""Pareto/NBD with time-varying covariates (Bachmann, Meierer & Näf 2021; CLVTools' dyncov).

Reference values from independent sources:

* CLVTools' worked spreadsheet ``dyncov_LL_reference.xlsx`` (its ``Bi()`` and ``Di()`` terms for
  every walk layout it lists), read cell by cell;
* CLVTools' closed form of the likelihood (``pnbd_dyncov_LL_i``: F0, F1, F2 as a sum over the
  auxiliary walk of Gauss hypergeometric differences, F3), re-implemented below from the paper's
  equations with ``scipy.special.hyp2f1`` and plain loops over a few customers;
* the plain Pareto/NBD (``pareto_nbd_log_likelihood``, checked against lifetimes elsewhere), to
  which the model reduces with coefficients at 0 and, per customer, with time-constant
  covariates (``alpha_i = alpha exp(-gamma' z_i)``);
* simulation with known truth (:func:`custvalue.datasets.simulate_dynamic_covariates`).
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import gammaln, hyp2f1

from custvalue.datasets import simulate_dynamic_covariates
from custvalue.errors import DataValidationError, ParameterError
from custvalue.models import DynamicParetoNBDModel
from custvalue.models.pareto_nbd import (
    pareto_nbd_expected_purchases,
    pareto_nbd_log_likelihood,
    pareto_nbd_probability_alive,
)
from custvalue.models.pareto_nbd_dynamic import (
    _build_walks,
    _evaluate,
    dynamic_pareto_nbd_log_likelihood,
    dynamic_walk_terms,
)

REF = Path("/work/shared/reference/clvtools-apparel")
if not REF.exists():  # the repository copy, when the shared folder is not mounted
    REF = Path(__file__).resolve().parents[1] / "shared" / "reference" / "clvtools-apparel"
APPAREL = dict(customer_col="Id", date_col="Date", covariate_customer_col="Id",
               covariate_date_col="Cov.Date")
COVS = ["High.Season", "Gender", "Channel"]


# ----------------------------------------------------------------------------- helpers
def _walk(boundaries, values_p, values_d, purchases, T):
    """One customer's continuous-time layout: periods ``[b_k, b_k+1)`` with exp(cov) values.

    ``values_*`` are the adjusted covariates ``exp(gamma' z)`` of each period (the sheet's
    numbers); they enter as covariate ``log(value)`` with coefficient 1.
    """
    b = np.asarray(boundaries, float)
    k = b.size - 1
    cust = np.zeros(k, np.int64)
    zp = np.log(np.asarray(values_p, float))[:, None]
    zd = np.log(np.asarray(values_d, float))[:, None]
    pur = np.asarray(purchases, float)
    return _build_walks(cust, b[:-1], b[1:], zp, zd, np.array([pur.max() if pur.size else 0.0]),
                        np.array([float(T)]), np.zeros(pur.size, np.int64), pur)


def _sheet():
    openpyxl = pytest.importorskip("openpyxl")
    return openpyxl.load_workbook(REF / "dyncov_LL_reference.xlsx", data_only=True)


def _row_values(ws, row, cols):
    return [float(ws[f"{c}{row}"].value) for c in cols]


# ----------------------------------------------------------------------------- spreadsheet
BI_BLOCKS = [  # (values row, value columns, result cells)
    (8, "BCDEFG", [f"C{r}" for r in range(11, 17)]),
    (19, "BCDE", [f"C{r}" for r in range(22, 26)]),
    (36, "BC", ["C39", "C40"]),
    (43, "B", ["C46"]),
]


@pytest.mark.parametrize("block", BI_BLOCKS, ids=lambda b: f"aux{len(b[1])}")
def test_bi_terms_match_clvtools_spreadsheet(block):
    ws = _sheet()["Bi()"]
    t_x, d1 = float(ws["C2"].value), float(ws["F2"].value)
    vrow, cols, cells = block
    aux = _row_values(ws, vrow, cols)
    expected = [float(ws[c].value) for c in cells]
    # periods of length 1 ending at t_x + d1, + k; before the aux walk arbitrary covariates
    first_end = t_x + d1
    n_before = math.floor(first_end - 1.0)  # periods before the one of t_x
    start0 = first_end - 1.0 - n_before
    b = [0.0] + [start0 + j for j in range(1, n_before + 1)] + [first_end + j for j in range(len(aux))]
    before = list(np.linspace(0.6, 1.9, len(b) - 1 - len(aux)))
    T = first_end + len(aux) - 1.5 if len(aux) > 1 else t_x + d1 / 2
    w = _walk(b, before + aux, [1.0] * (len(b) - 1), [3.0, 17.5, 30.2, t_x], T)
    terms = dynamic_walk_terms([0.7, 5.0, 0.9, 12.0, 1.0, 1.0], w)
    assert terms["i"].tolist() == list(range(1, len(aux) + 1))
    np.testing.assert_allclose(terms["A"], aux, rtol=1e-14)
    np.testing.assert_allclose(terms["B"], expected, rtol=1e-12, atol=1e-12)


DI_BLOCKS = [  # (real walk values, aux values row/cols, result cells)
    ([], (10, "D"), ["D13"]),
    ([], (16, "DE"), ["D19", "D20"]),
    ([], (23, "DEF"), ["D26", "D27", "D28"]),
    ([], (31, "DEFG"), ["D34", "D35", "D36", "D37"]),
    ([(41, "B")], (41, "D"), ["D44"]),
    ([(47, "B")], (47, "DE"), ["D50", "D51"]),
    ([(54, "B")], (54, "DEF"), ["D57", "D58", "D59"]),
    ([(62, "B")], (62, "DEFG"), ["D65", "D66", "D67", "D68"]),
    ([(71, "BC")], (71, "E"), ["D74"]),
    ([(77, "BC")], (77, "EF"), ["D80", "D81"]),
    ([(84, "BC")], (84, "EFG"), ["D87", "D88", "D89"]),
    ([(92, "BC")], (92, "EFGH"), ["D95", "D96", "D97", "D98"]),
]


@pytest.mark.parametrize("block", DI_BLOCKS, ids=lambda b: f"real{len(b[0])}-aux{len(b[1][1])}")
def test_di_terms_match_clvtools_spreadsheet(block):
    ws = _sheet()["Di()"]
    d_omega = float(ws["E2"].value)
    real_spec, (arow, acols), cells = block
    real = [v for r, c in real_spec for v in _row_values(ws, r, c)]
    aux = _row_values(ws, arow, acols)
    expected = [float(ws[c].value) for c in cells]
    # coming alive at 0 inside a period that ends at d_omega; then periods of length 1
    b = [0.0, d_omega] + [d_omega + j for j in range(1, len(real) + len(aux))]
    aux_start = b[len(real)]
    t_x = aux_start + 0.4 * (b[len(real) + 1] - aux_start)
    T = b[-2] + 0.5 * (b[-1] - b[-2]) if len(aux) > 1 else t_x + 0.1 * (b[-1] - t_x)
    purchases = [t_x * f for f in (0.25, 0.5, 0.75, 1.0)]
    w = _walk(b, [1.0] * (len(b) - 1), real + aux, purchases, T)
    terms = dynamic_walk_terms([0.7, 5.0, 0.9, 12.0, 1.0, 1.0], w)
    np.testing.assert_allclose(terms["C"], aux, rtol=1e-14)
    np.testing.assert_allclose(terms["D"], expected, rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------------------- CLVTools closed form
def _clvtools_ll(r, alpha, s, beta, bounds, a, c, purchases, T):
    """CLVTools' ``pnbd_dyncov_LL_i`` written out for one customer (loops; reference only).

    ``log F0 = r log alpha + s log beta + lgamma(x+r) - lgamma(r) + A1sum``; ``F3`` the alive
    term; ``F2`` the sum over the auxiliary walk of ``(A_i/C_i)^s [hyp(alpha_1, beta_1) -
    hyp(alpha_2, beta_2)]`` with ``hyp = 2F1(r+s+x, s+1; r+s+x+1; 1-beta/alpha)/alpha^(r+s+x)``
    (or the ``beta > alpha`` form), ``F1 = s/(r+s+x)``; LL = log F0 + log(F1 F2 + F3).
    """
    x = len(purchases) - 1  # purchases[0] == 0 is coming alive
    t_x = purchases[-1]

    def period(t):
        return max(k for k in range(len(a)) if bounds[k] <= t + 1e-12)

    def cum(vals, t):
        tot = 0.0
        for k in range(len(vals)):
            lo, hi = max(bounds[k], 0.0), min(bounds[k + 1], t)
            if hi > lo:
                tot += vals[k] * (hi - lo)
        return tot

    a1sum = sum(math.log(a[period(t)]) for t in purchases[1:])
    rsx = r + s + x

    def hyp(al, be):
        if al >= be:
            return hyp2f1(rsx, s + 1.0, rsx + 1.0, 1.0 - be / al) / al ** rsx
        return hyp2f1(rsx, r + x, rsx + 1.0, 1.0 - al / be) / be ** rsx

    F2 = 0.0
    for k in range(period(t_x), len(a)):
        lo, hi = max(bounds[k], t_x), min(bounds[k + 1], T)
        if hi <= lo:
            continue
        ratio = a[k] / c[k]
        al1, al2 = alpha + cum(a, lo), alpha + cum(a, hi)
        be1, be2 = (beta + cum(c, lo)) * ratio, (beta + cum(c, hi)) * ratio
        F2 += ratio ** s * (hyp(al1, be1) - hyp(al2, be2))
    log_F0 = r * math.log(alpha) + s * math.log(beta) + gammaln(x + r) - gammaln(r) + a1sum
    F3 = (beta + cum(c, T)) ** (-s) * (alpha + cum(a, T)) ** (-(x + r))
    return log_F0 + math.log(s / rsx * F2 + F3)


def test_log_likelihood_matches_clvtools_closed_form():
    rng = np.random.default_rng(7)
    r, alpha, s, beta = 0.9, 6.0, 0.7, 14.0
    gp, gd = 0.6, -0.4
    cases = []
    for i in range(8):
        first_end = rng.uniform(0.1, 1.0)
        n_per = int(rng.integers(3, 15))
        bounds = [-(1 - first_end)] + [first_end + j for j in range(n_per)]
        zp = rng.normal(size=n_per)
        zd = rng.normal(size=n_per)
        T = bounds[-2] + rng.uniform(0.05, 0.95) * (bounds[-1] - bounds[-2])
        x = int(rng.integers(0, 6)) if i else 0
        times = np.sort(rng.uniform(0, T, x)) if x else np.zeros(0)
        if i == 1:  # a purchase exactly at a period start and one at T
            times = np.r_[bounds[2], T]
        cases.append((bounds, zp, zd, T, times))
    cust, st, en, ZP, ZD, TX, TT, pcs, pts = [], [], [], [], [], [], [], [], []
    for i, (bounds, zp, zd, T, times) in enumerate(cases):
        b = np.asarray(bounds)
        cust.append(np.full(zp.size, i))
        st.append(b[:-1])
        en.append(b[1:])
        ZP.append(zp)
        ZD.append(zd)
        TX.append(times.max() if times.size else 0.0)
        TT.append(T)
        pcs.append(np.full(times.size, i))
        pts.append(times)
    w = _build_walks(np.concatenate(cust), np.concatenate(st), np.concatenate(en),
                     np.concatenate(ZP)[:, None], np.concatenate(ZD)[:, None], np.array(TX),
                     np.array(TT), np.concatenate(pcs).astype(np.int64), np.concatenate(pts))
    ours = dynamic_pareto_nbd_log_likelihood([r, alpha, s, beta, gp, gd], w)
    for i, (bounds, zp, zd, T, times) in enumerate(cases):
        ref = _clvtools_ll(r, alpha, s, beta, bounds, np.exp(gp * zp), np.exp(gd * zd),
                           [0.0, *times.tolist()], T)
        assert ours[i] == pytest.approx(ref, rel=1e-10, abs=1e-10), i


# ----------------------------------------------------------------------------- apparel data
@pytest.fixture(scope="module")
def apparel():
    tx = pd.read_csv(REF / "apparelTrans.csv")
    cov = pd.read_csv(REF / "apparelDynCov.csv.gz")
    return tx, cov


@pytest.fixture(scope="module")
def apparel_walks(apparel):
    tx, cov = apparel
    model = DynamicParetoNBDModel(COVS, COVS)
    return model.prepare(tx, cov, observation_end="2006-12-31", **APPAREL).walks


def test_coefficients_at_zero_give_the_plain_pareto_nbd(apparel_walks):
    w = apparel_walks
    for r, alpha, s, beta in [(0.5, 15.0, 0.5, 10.0), (2.2, 120.0, 1.3, 85.0), (0.05, 0.3, 3.0, 500.0)]:
        ours = dynamic_pareto_nbd_log_likelihood([r, alpha, s, beta] + [0.0] * 6, w)
        plain = pareto_nbd_log_likelihood(r, alpha, s, beta, w.x, w.tx, w.T)
        np.testing.assert_allclose(ours, plain, rtol=0, atol=1e-8)
    # CLVTools' intermediate checks at gamma = 0: A(T) = T and D(T) = T
    terms = dynamic_walk_terms([0.5, 15.0, 0.5, 10.0] + [0.0] * 6, w)
    np.testing.assert_allclose(terms["A_T"], w.T[terms["customer"]], rtol=1e-12)
    np.testing.assert_allclose(terms["D_T"], w.T[terms["customer"]], rtol=1e-12)
    np.testing.assert_allclose(terms["A_tx"], w.tx[terms["customer"]], rtol=1e-12, atol=1e-12)


def test_one_constant_covariate_is_a_rescaled_plain_model(apparel_walks):
    # the likelihood with z = 1 everywhere is the plain one at alpha e^-g, beta e^-g
    w0 = apparel_walks
    w = _build_walks(w0.cust, w0.lo, w0.lo + w0.length, np.ones((w0.cust.size, 1)),
                     np.ones((w0.cust.size, 1)), w0.tx, w0.T, np.zeros(0, np.int64), np.zeros(0))
    w.x, w.zsum = w0.x, w0.x[:, None]  # the same purchases: each one at z = 1
    r, alpha, s, beta, gp, gd = 0.8, 20.0, 0.6, 40.0, 0.37, -0.81
    ours = dynamic_pareto_nbd_log_likelihood([r, alpha, s, beta, gp, gd], w)
    plain = pareto_nbd_log_likelihood(r, alpha * math.exp(-gp), s, beta * math.exp(-gd),
                                      w.x, w.tx, w.T)
    np.testing.assert_allclose(ours, plain, rtol=0, atol=1e-8)


def test_constant_covariate_fit_is_the_no_covariate_fit(apparel):
    # a constant column gives no term (the shared covariate encoding), so the fit is the plain
    # Pareto/NBD fit on the same customers
    tx, cov = apparel
    model = DynamicParetoNBDModel(["one"], ["one"]).fit(
        tx, cov.assign(one=1.0), observation_end="2005-12-31", **APPAREL)
    assert list(model.params_.index) == ["r", "alpha", "s", "beta"]
    assert model.log_likelihood_ == pytest.approx(model.static_log_likelihood_, abs=1e-8)
    np.testing.assert_allclose(model.params_.to_numpy(),
                               model.static_model_.params_.to_numpy(), rtol=1e-6)
    assert model.lr_test_["df"] == 0 and len(model.effects_) == 0


def test_time_constant_covariates_are_clvtools_static_parameterisation(apparel):
    tx, cov = apparel
    w = DynamicParetoNBDModel(["Gender", "Channel"], ["Gender", "Channel"]).prepare(
        tx, cov, observation_end="2006-12-31", **APPAREL).walks
    theta = [0.8, 20.0, 0.6, 40.0, 0.3, -0.5, 0.4, 0.9]
    ours = dynamic_pareto_nbd_log_likelihood(theta, w)
    static = cov.groupby("Id")[["Gender", "Channel"]].first().sort_index().to_numpy()
    alpha_i = theta[1] * np.exp(-(static @ np.array(theta[4:6])))
    beta_i = theta[3] * np.exp(-(static @ np.array(theta[6:8])))
    plain = np.empty(w.n)
    for a_g in np.unique(alpha_i):  # one plain model per (Gender, Channel) group
        g = alpha_i == a_g
        plain[g] = pareto_nbd_log_likelihood(theta[0], a_g, theta[2], beta_i[g][0], w.x[g],
                                             w.tx[g], w.T[g])
    np.testing.assert_allclose(ours, plain, rtol=0, atol=1e-8)


def test_gradient_matches_finite_differences(apparel_walks):
    w = apparel_walks
    theta = np.array([0.7, 5.0, 0.9, 30.0, 0.3, -0.2, 0.5, -0.4, 0.6, 0.1])
    g = _evaluate(theta, w, True).grad.sum(axis=0)
    for j in range(theta.size):
        h = 1e-4 * max(1.0, abs(theta[j]))
        e = np.zeros_like(theta)
        e[j] = h
        up = dynamic_pareto_nbd_log_likelihood(theta + e, w).sum()
        dn = dynamic_pareto_nbd_log_likelihood(theta - e, w).sum()
        assert g[j] == pytest.approx((up - dn) / (2 * h), rel=1e-6, abs=1e-5), j


def test_fit_on_apparel_year_one_converges_and_beats_the_static_model(apparel):
    tx, cov = apparel
    tx0, cov0 = tx.copy(), cov.copy()
    model = DynamicParetoNBDModel(["High.Season", "Gender", "Channel"], ["Gender", "Channel"])
    model.fit(tx, cov, observation_end="2005-12-31", **APPAREL)
    pd.testing.assert_frame_equal(tx, tx0)  # the caller's data are not modified
    pd.testing.assert_frame_equal(cov, cov0)
    assert model.diagnostics_["converged"]
    assert np.all(np.isfinite(model.params_)) and np.all(np.isfinite(model.standard_errors_))
    assert model.log_likelihood_ >= model.static_log_likelihood_ - 1e-8
    lr = model.lr_test_
    assert lr["df"] == 5 and 0.0 <= lr["p_value"] <= 1.0
    assert lr["statistic"] == pytest.approx(2 * (model.log_likelihood_ - model.static_log_likelihood_))
    eff = model.effects_.loc[("purchase", "High.Season")]
    assert eff["ratio"] == pytest.approx(math.exp(model.params_["purchase:High.Season"]))
    assert eff["lower"] < eff["ratio"] < eff["upper"]
    text = str(model.summary())
    assert "purchase:High.Season" in text and "LR test" in text
    pa = model.probability_alive()
    assert pa.index.equals(model.index_) and pa.between(0, 1).all()
    ep = model.expected_purchases(26)
    assert (ep >= 0).all() and np.isfinite(ep).all()


# ----------------------------------------------------------------------------- predictions
def test_predictions_reduce_to_the_plain_model(apparel):
    tx, cov = apparel
    model = DynamicParetoNBDModel(["High.Season", "Gender"], ["High.Season", "Gender"])
    prep = model.prepare(tx, cov, observation_end="2006-06-30", **APPAREL)
    r, alpha, s, beta = 0.9, 30.0, 0.7, 50.0
    for s_ in (s, 1.0, 1.6):
        model._prepared, model.index_ = prep, prep.index
        model.params_ = pd.Series([r, alpha, s_, beta, 0.0, 0.0, 0.0, 0.0], index=model._names())
        w = prep.walks
        np.testing.assert_allclose(
            model.probability_alive(10.0).to_numpy(),
            pareto_nbd_probability_alive(r, alpha, s_, beta, w.x, w.tx, w.T, 10.0), rtol=1e-10)
        np.testing.assert_allclose(
            model.expected_purchases(20.0).to_numpy(),
            pareto_nbd_expected_purchases(r, alpha, s_, beta, w.x, w.tx, w.T, 20.0), rtol=1e-10)


def test_predictions_with_static_covariates_use_each_customers_rates(apparel):
    tx, cov = apparel
    model = DynamicParetoNBDModel(["Gender", "Channel"], ["Gender", "Channel"])
    prep = model.prepare(tx, cov, observation_end="2006-06-30", **APPAREL)
    theta = [0.9, 30.0, 0.7, 50.0, 0.4, -0.3, -0.6, 0.5]
    model._prepared, model.index_ = prep, prep.index
    model.params_ = pd.Series(theta, index=model._names())
    static = cov.groupby("Id")[["Gender", "Channel"]].first().sort_index().to_numpy()
    alpha_i = theta[1] * np.exp(-(static @ np.array(theta[4:6])))
    beta_i = theta[3] * np.exp(-(static @ np.array(theta[6:8])))
    w = prep.walks
    want, want_pa = np.empty(w.n), np.empty(w.n)
    for a_g in np.unique(alpha_i):
        g = alpha_i == a_g
        args = (theta[0], a_g, theta[2], beta_i[g][0], w.x[g], w.tx[g], w.T[g], 13.0)
        want[g] = pareto_nbd_expected_purchases(*args)
        want_pa[g] = pareto_nbd_probability_alive(*args)
    np.testing.assert_allclose(model.expected_purchases(13.0).to_numpy(), want, rtol=1e-10)
    np.testing.assert_allclose(model.probability_alive(13.0).to_numpy(), want_pa, rtol=1e-10)


def test_predictions_need_future_covariates(apparel):
    tx, cov = apparel
    model = DynamicParetoNBDModel(["High.Season"], [])
    short = cov[cov["Cov.Date"] <= "2005-12-25"]
    prep = model.prepare(tx, short, observation_end="2005-12-31", **APPAREL)
    model._prepared, model.index_ = prep, prep.index
    model.params_ = pd.Series([0.9, 30.0, 0.7, 50.0, 0.5], index=model._names())
    with pytest.raises(DataValidationError, match="need covariates until"):
        model.expected_purchases(4)
    # a longer table passed at prediction time works
    out = model.expected_purchases(4, covariates=cov, covariate_customer_col="Id",
                                   covariate_date_col="Cov.Date")
    assert (out > 0).all()


# ----------------------------------------------------------------------------- input errors
def _small():
    tx = pd.DataFrame({
        "customer_id": [1, 1, 2, 2, 2],
        "date": pd.to_datetime(["2024-01-01", "2024-01-20", "2024-01-03", "2024-01-10", "2024-02-01"]),
        "amount": [10.0, 12.0, 5.0, 6.0, 7.0],
    })
    starts = pd.date_range("2024-01-01", periods=8, freq="7D")
    cov = pd.DataFrame({
        "customer_id": np.repeat([1, 2], 8),
        "period_start": np.tile(starts, 2),
        "season": np.tile([0, 0, 1, 1, 0, 0, 1, 0], 2).astype(float),
    })
    return tx, cov


def test_small_input_is_accepted():
    tx, cov = _small()
    prep = DynamicParetoNBDModel(["season"], ["season"]).prepare(tx, cov,
                                                                observation_end="2024-02-10")
    assert prep.walks.x.tolist() == [1.0, 2.0]
    np.testing.assert_allclose(prep.walks.T, [40 / 7, 38 / 7])


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda t, c: (t, c.drop(index=3)), "gaps"),
        (lambda t, c: (t, pd.concat([c, c.iloc[[2]]])), "overlap"),
        (lambda t, c: (t, c.iloc[1:]), "first purchase"),
        (lambda t, c: (t, c[c["period_start"] < "2024-02-01"]), "ending before"),
        (lambda t, c: (t, pd.concat([c, c.iloc[[0]].assign(customer_id=99)])), "no purchase"),
        (lambda t, c: (t, c[c["customer_id"] == 1]), "no rows in the covariate table"),
        (lambda t, c: (t, c.assign(season=np.where(c.index == 4, np.nan, c["season"]))), "missing"),
        (lambda t, c: (t, c.drop(columns="season")), "lacks column"),
        (lambda t, c: (t.drop(columns="date"), c), "lack column"),
    ],
    ids=["gap", "overlap", "start", "end", "unknown", "missing-customer", "nan",
         "cov-column", "tx-column"],
)
def test_bad_input_gets_a_clear_message(edit, message):
    tx, cov = _small()
    tx, cov = edit(tx, cov)
    with pytest.raises(DataValidationError, match=message):
        DynamicParetoNBDModel(["season"], ["season"]).prepare(tx, cov, observation_end="2024-02-10")


def test_categorical_covariates_are_dummy_coded():
    tx, cov = _small()
    cov = cov.assign(tier=np.where(cov["season"] == 1, "gold", "basic"))
    model = DynamicParetoNBDModel(["tier"], [])
    prep = model.prepare(tx, cov, observation_end="2024-02-10")
    model._prepared = prep
    assert model._names()[4:] == ["purchase:tier[gold]"]
    # gold is exactly the season flag here, so the design column equals the numeric one
    season = DynamicParetoNBDModel(["season"], []).prepare(tx, cov, observation_end="2024-02-10")
    np.testing.assert_array_equal(prep.walks.zp, season.walks.zp)


def test_bad_arguments():
    with pytest.raises(ParameterError, match="at least one"):
        DynamicParetoNBDModel()
    with pytest.raises(ParameterError, match="list of column names"):
        DynamicParetoNBDModel("season")
    tx, cov = _small()
    with pytest.raises(ParameterError, match="tuple"):
        DynamicParetoNBDModel(["season"]).fit((tx, None), cov)


# ----------------------------------------------------------------------------- simulation
def _coefficients_covered(model, truth, level_z):
    out = []
    for proc, effects in (("purchase", truth["purchase_effects"]), ("dropout", truth["dropout_effects"])):
        for name, value in effects.items():
            key = f"{proc}:{name}"
            est, se = model.params_[key], model.standard_errors_[key]
            out.append(abs(est - value) <= level_z * se)
    return out


def test_recovers_simulated_effects():
    sim = simulate_dynamic_covariates(1500, seed=11, weeks=78,
                                      purchase_effects={"season": 0.6, "member": 0.4},
                                      dropout_effects={"season": 0.0, "member": -1.0})
    model = DynamicParetoNBDModel(["season", "member"], ["season", "member"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no boundary warning on a well-posed problem
        model.fit(sim.transactions, sim.covariates, observation_end=sim.truth["observation_end"])
    assert all(_coefficients_covered(model, sim.truth, 2.576))  # 99% intervals
    # the purchase effects are sharply estimated
    assert model.standard_errors_["purchase:season"] < 0.08
    for name in ("r", "alpha"):
        lo, hi = model.confidence_intervals_.loc[name]
        assert lo / 1.2 < sim.truth["params"][name] < hi * 1.2


def test_simulation_is_reproducible_and_consistent():
    a = simulate_dynamic_covariates(200, seed=3, weeks=30, acquisition_weeks=10)
    b = simulate_dynamic_covariates(200, seed=3, weeks=30, acquisition_weeks=10)
    pd.testing.assert_frame_equal(a.transactions, b.transactions)
    pd.testing.assert_frame_equal(a.covariates, b.covariates)
    first = a.transactions.groupby("customer_id")["date"].min()
    assert (first == a.customers.set_index("customer_id")["first_purchase"]).all()
    # membership switches on in the first week starting on or after the join date, and stays on
    cov = a.covariates.merge(a.memberships, on="customer_id", how="left")
    on = cov["member"] == 1
    assert (cov.loc[on, "period_start"] >= cov.loc[on, "join_date"]).all()
    assert (cov.groupby("customer_id")["member"].apply(lambda m: m.is_monotonic_increasing)).all()
    assert a.transactions["date"].max() <= a.truth["observation_end"]


@pytest.mark.slow
def test_interval_coverage_over_seeds():
    """95% Wald intervals of the four coefficients cover the truth about 95% of the time."""
    covered = []
    for seed in range(12):
        sim = simulate_dynamic_covariates(800, seed=100 + seed, weeks=78)
        model = DynamicParetoNBDModel(["season", "member"], ["season", "member"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(sim.transactions, sim.covariates, observation_end=sim.truth["observation_end"])
        covered += _coefficients_covered(model, sim.truth, 1.96)
    rate = float(np.mean(covered))
    # 48 intervals: P(Binomial(48, 0.95) <= 40) < 0.01
    assert rate >= 41 / 48, rate


def _fd_hessian(f, x, steps):
    """Central second differences of the scalar ``f`` (values only), one step per coordinate."""
    k = x.size
    f0 = f(x)
    hess = np.empty((k, k))
    for i in range(k):
        ei = np.zeros(k)
        ei[i] = steps[i]
        hess[i, i] = (f(x + ei) - 2.0 * f0 + f(x - ei)) / steps[i] ** 2
        for j in range(i):
            ej = np.zeros(k)
            ej[j] = steps[j]
            hess[i, j] = hess[j, i] = (f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej)
                                       + f(x - ei - ej)) / (4.0 * steps[i] * steps[j])
    return hess


def test_covariance_is_the_inverse_finite_difference_hessian():
    """The reported covariance (compressed walks with weights, log scale for r..beta, delta
    method back) is the inverse of minus the Hessian of the plain per-customer log-likelihood
    sum, taken by central second differences of its values on the natural scale (no gradient,
    no weights, no transform), at the fitted optimum; on the simulated design whose member
    purchase coefficient looked over-covered (most rows have member = 0)."""
    sim = simulate_dynamic_covariates(600, seed=1000, weeks=78)
    model = DynamicParetoNBDModel(["season", "member"], ["season", "member"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(sim.transactions, sim.covariates, observation_end=sim.truth["observation_end"])
    assert model.n_distinct_ < model.n_customers_  # the weights are exercised
    walks = model._prepared.walks  # one walk per customer
    theta = model.params_.to_numpy()
    steps = 1e-3 * np.r_[theta[:4], np.ones(theta.size - 4)]

    def total(t):
        return math.fsum(dynamic_pareto_nbd_log_likelihood(t, walks))

    cov = np.linalg.inv(-_fd_hessian(total, theta, steps))
    se = np.sqrt(np.diag(cov))
    np.testing.assert_allclose(model.standard_errors_.to_numpy(), se, rtol=1e-4)
    corr = cov / np.outer(se, se)
    got = model.covariance_.to_numpy() / np.outer(model.standard_errors_, model.standard_errors_)
    np.testing.assert_allclose(got, corr, atol=1e-4)


def test_information_equality_at_the_truth():
    """At the true parameters of the simulation, the per-customer outer product of scores and
    the observed information (central differences of the analytic gradient) estimate the same
    Fisher information (the simulator and the likelihood describe the same process; a wrong
    Hessian term for a coefficient would break it for that coefficient). Exact purchase times,
    so the one-purchase-per-day recording plays no part."""
    sim = simulate_dynamic_covariates(4000, seed=5, weeks=78)
    pt = sim.purchase_times
    start = sim.truth["start"]
    cust = pt["customer_id"].to_numpy() - 1
    week = pt["week"].to_numpy()
    first = pt.groupby("customer_id")["week"].min().to_numpy()
    last = pt.groupby("customer_id")["week"].max().to_numpy()
    rep = week > first[cust]
    cov = sim.covariates.sort_values(["customer_id", "period_start"])
    cc = cov["customer_id"].to_numpy() - 1
    k = (cov["period_start"] - start).dt.days.to_numpy() / 7.0
    z = cov[["season", "member"]].to_numpy(dtype=np.float64)
    t_end = (sim.truth["observation_end"] - start).days / 7.0
    w = _build_walks(cc, k - first[cc], k + 1.0 - first[cc], z, z.copy(), last - first,
                     t_end - first, cust[rep], week[rep] - first[cust[rep]])
    tr = sim.truth
    theta = np.array([*tr["params"].values(), *tr["purchase_effects"].values(),
                      *tr["dropout_effects"].values()])
    scores = _evaluate(theta, w, True).grad
    opg = scores.T @ scores
    hess = np.empty((theta.size, theta.size))
    for j in range(theta.size):
        e = np.zeros_like(theta)
        e[j] = 1e-4 * max(1.0, abs(theta[j]))
        hess[:, j] = (_evaluate(theta + e, w, True).grad.sum(axis=0)
                      - _evaluate(theta - e, w, True).grad.sum(axis=0)) / (2 * e[j])
    info = -(hess + hess.T) / 2.0
    # the coefficients: diagonal within 5% (sampling noise of 4,000 customers is ~2-3%)
    np.testing.assert_allclose(np.diag(opg)[4:], np.diag(info)[4:], rtol=0.05)
    se_info = np.sqrt(np.diag(np.linalg.inv(info)))
    se_opg = np.sqrt(np.diag(np.linalg.inv(opg)))
    np.testing.assert_allclose(se_opg[4:], se_info[4:], rtol=0.05)


@pytest.mark.slow
def test_apparel_full_window_fit():
    tx = pd.read_csv(REF / "apparelTrans.csv")
    cov = pd.read_csv(REF / "apparelDynCov.csv.gz")
    model = DynamicParetoNBDModel(COVS, COVS).fit(tx, cov, **APPAREL)
    assert model.diagnostics_["converged"] and not model.diagnostics_["boundary"]
    assert model.lr_test_["p_value"] < 1e-10
    # high season: customers buy about twice as often (the effect CLVTools' data were built with)
    assert 1.6 < model.effects_.loc[("purchase", "High.Season"), "ratio"] < 2.5


# ----------------------------------------------------------------------------- programme effect
def test_membership_covariates_are_the_simulated_flag():
    from custvalue.programs import membership_covariates

    sim = simulate_dynamic_covariates(300, seed=4, weeks=40, acquisition_weeks=12)
    end = sim.truth["observation_end"]
    built = membership_covariates(sim.transactions, sim.memberships, date_col="join_date",
                                  grid_start=sim.truth["start"], observation_end=end)
    want = sim.covariates[sim.covariates["period_start"] <= end][
        ["customer_id", "period_start", "member"]].reset_index(drop=True)
    pd.testing.assert_frame_equal(built.reset_index(drop=True), want, check_dtype=False)


@pytest.mark.slow
def test_dynamic_effect_recovers_the_membership_effects():
    from custvalue.programs import dynamic_effect

    sim = simulate_dynamic_covariates(600, seed=21, weeks=60,
                                      purchase_effects={"season": 0.0, "member": 0.5},
                                      dropout_effects={"season": 0.0, "member": -1.0})
    res = dynamic_effect(sim.transactions, sim.memberships, date_col="join_date",
                         grid_start=sim.truth["start"],
                         observation_end=sim.truth["observation_end"])
    assert list(res.table.index) == ["purchase rate", "dropout rate"]
    # the covariate it builds from join dates is the simulator's own membership flag
    direct = DynamicParetoNBDModel(["member"], ["member"]).fit(
        sim.transactions, sim.covariates, observation_end=sim.truth["observation_end"])
    np.testing.assert_allclose(res.model.params_.to_numpy(), direct.params_.to_numpy(), rtol=1e-8)
    for label, proc in (("purchase rate", "purchase_effects"), ("dropout rate", "dropout_effects")):
        row = res.table.loc[label]
        true = sim.truth[proc]["member"]
        assert abs(row["coefficient"] - true) <= 2.576 * row["std_error"], label
        assert row["lower"] < row["ratio"] < row["upper"]
    assert res.n_members == len(sim.memberships)
    assert "times as often" in res.summary() and len(res.sentences) == 2


def test_dynamic_effect_bad_treatments():
    from custvalue.programs import dynamic_effect

    tx, _ = _small()
    with pytest.raises(DataValidationError, match="more than once"):
        dynamic_effect(tx, pd.DataFrame({"customer_id": [1, 1], "date": ["2024-01-05"] * 2}))
    with pytest.raises(DataValidationError, match="no customer is a member"):
        dynamic_effect(tx, pd.DataFrame({"customer_id": [1], "date": ["2030-01-01"]}))


def test_discounted_purchases(apparel):
    tx, cov = apparel
    model = DynamicParetoNBDModel(["High.Season", "Gender"], ["High.Season", "Gender"])
    prep = model.prepare(tx, cov, observation_end="2006-06-30", **APPAREL)
    model._prepared, model.index_ = prep, prep.index
    model.params_ = pd.Series([0.9, 30.0, 0.7, 50.0, 0.6, 0.2, -0.4, 0.3], index=model._names())
    # no discounting: the closed-form expected purchases
    np.testing.assert_allclose(model.expected_discounted_purchases(30.0, 0.0).to_numpy(),
                               model.expected_purchases(30.0).to_numpy(), rtol=1e-12)
    # coefficients at 0: the plain Pareto/NBD with discounting, integrated independently
    model.params_[4:] = 0.0
    from scipy.integrate import quad

    w = prep.walks
    delta = math.log(1.1) / (365.25 / 7)
    got = model.expected_discounted_purchases(30.0, delta).to_numpy()
    r, alpha, s, beta = 0.9, 30.0, 0.7, 50.0
    pa = pareto_nbd_probability_alive(r, alpha, s, beta, w.x, w.tx, w.T)
    for i in (0, 5, 77):
        integ = quad(lambda u, i=i: math.exp(-delta * u) * ((beta + w.T[i]) / (beta + w.T[i] + u)) ** s,
                     0, 30.0, epsabs=1e-13, epsrel=1e-13)[0]
        want = pa[i] * (r + w.x[i]) / (alpha + w.T[i]) * integ
        assert got[i] == pytest.approx(want, rel=1e-10)


# ----------------------------------------------------------------------------- compression
def test_identical_walks_are_compressed_exactly(apparel_walks):
    from custvalue.models.pareto_nbd_dynamic import _compress_walks

    w = apparel_walks
    distinct, walk_of = _compress_walks(w)
    assert distinct.n < w.n  # apparel is a cohort: many customers share their walk
    theta = [0.9, 30.0, 0.7, 50.0, 0.5, 0.2, -0.3, 0.4, -0.2, 0.3]
    every = dynamic_pareto_nbd_log_likelihood(theta, w)
    per_walk = dynamic_pareto_nbd_log_likelihood(theta, distinct)
    # every customer's term is its walk's term, bit for bit (the same arithmetic on equal rows)
    np.testing.assert_array_equal(per_walk[walk_of], every)
    counts = np.bincount(walk_of, minlength=distinct.n)
    assert counts.sum() == w.n and (counts > 0).all()
    # customers with different purchase histories or covariate paths are never merged
    for j in np.flatnonzero(counts > 1)[:20]:
        who = np.flatnonzero(walk_of == j)
        rows = [np.flatnonzero(w.cust == i) for i in who]
        for rr in rows[1:]:
            np.testing.assert_array_equal(w.zp[rr], w.zp[rows[0]])
            np.testing.assert_array_equal(w.zd[rr], w.zd[rows[0]])
            np.testing.assert_array_equal(w.length[rr], w.length[rows[0]])
        assert np.unique(w.x[who]).size == np.unique(w.tx[who]).size == 1


def test_compressed_fit_equals_the_uncompressed_fit(apparel):
    tx, cov = apparel
    fits = []
    for compress in (True, False):
        model = DynamicParetoNBDModel(["High.Season", "Gender"], ["Gender"], compress=compress)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(tx, cov, observation_end="2006-12-31", **APPAREL)
        fits.append(model)
    comp, full = fits
    assert comp.n_customers_ == full.n_customers_ == 600
    assert full.n_distinct_ == 600 and comp.n_distinct_ < 450
    assert comp.summary().info["distinct walks"] == comp.n_distinct_
    assert comp.log_likelihood_ == pytest.approx(full.log_likelihood_, rel=1e-10)
    np.testing.assert_allclose(comp.params_, full.params_, rtol=1e-10)
    np.testing.assert_allclose(comp.standard_errors_, full.standard_errors_, rtol=1e-10)
    np.testing.assert_allclose(comp.probability_alive(10).to_numpy(),
                               full.probability_alive(10).to_numpy(), rtol=1e-10)


# ----------------------------------------------------------------------------- CLV, prospects, files
def _static_model(apparel, end="2006-06-30"):
    """Time-constant covariates (Gender, Channel) on both processes with set parameters."""
    tx, cov = apparel
    model = DynamicParetoNBDModel(["Gender", "Channel"], ["Gender", "Channel"])
    prep = model.prepare(tx, cov, observation_end=end, **APPAREL)
    theta = [0.9, 30.0, 0.7, 50.0, 0.4, -0.3, -0.6, 0.5]
    model._prepared, model.index_ = prep, prep.index
    model.covariate_columns_ = ("Id", "Cov.Date")
    model.params_ = pd.Series(theta, index=model._names())
    static = cov.groupby("Id")[["Gender", "Channel"]].first().sort_index().to_numpy()
    alpha_i = theta[1] * np.exp(-(static @ np.array(theta[4:6])))
    beta_i = theta[3] * np.exp(-(static @ np.array(theta[6:8])))
    w = prep.walks
    summary = pd.DataFrame({"frequency": w.x, "recency": w.tx, "T": w.T}, index=prep.index)
    summary.attrs["freq"] = "W"
    return model, summary, theta, alpha_i, beta_i


def test_clv_with_constant_covariates_is_the_plain_pareto_nbd_clv(apparel):
    from custvalue.models import ParetoNBDModel
    from custvalue.value import customer_lifetime_value

    model, summary, theta, alpha_i, beta_i = _static_model(apparel)
    kw = dict(horizon=12, time_unit="M", discount_rate=0.1, price=25.0, margin=0.3)
    got = customer_lifetime_value(model, None, summary, cash_flows=True, **kw)
    want = pd.Series(np.nan, index=summary.index)
    want_ep = want.copy()
    cols = None
    for a_g in np.unique(alpha_i):  # one plain Pareto/NBD per covariate pattern
        for b_g in np.unique(beta_i[alpha_i == a_g]):
            g = (alpha_i == a_g) & (beta_i == b_g)
            plain = ParetoNBDModel.from_params(r=theta[0], alpha=a_g, s=theta[2], beta=b_g,
                                               time_unit="W")
            ref = customer_lifetime_value(plain, None, summary[g], **kw)
            want[g] = ref.frame["clv"].to_numpy()
            want_ep[g] = ref.frame["expected_purchases"].to_numpy()
            cols = list(ref.frame.columns)
    assert list(got.frame.columns) == cols  # the same columns as for the other models
    np.testing.assert_allclose(got.frame["clv"], want, rtol=1e-8)
    np.testing.assert_allclose(got.frame["expected_purchases"], want_ep, rtol=1e-8)
    np.testing.assert_allclose(got.cash_flows.sum(axis=1), got.frame["clv"], rtol=1e-12)
    assert got.settings.transaction_model == "DynamicParetoNBDModel"


def test_clv_needs_the_horizon_covariates(apparel):
    from custvalue.value import customer_lifetime_value

    tx, cov = apparel
    short = cov[cov["Cov.Date"] <= "2006-12-31"]
    model = DynamicParetoNBDModel(["High.Season"], ["Gender"])
    prep = model.prepare(tx, short, observation_end="2006-12-24", **APPAREL)
    model._prepared, model.index_ = prep, prep.index
    model.covariate_columns_ = ("Id", "Cov.Date")
    model.params_ = pd.Series([0.9, 30.0, 0.7, 50.0, 0.5, -0.4], index=model._names())
    summary = pd.DataFrame({"frequency": prep.walks.x}, index=prep.index)
    kw = dict(horizon=6, time_unit="M", discount_rate=0.1, price=10.0)
    with pytest.raises(DataValidationError, match="need covariates until"):
        customer_lifetime_value(model, None, summary, **kw)
    # the longer table as covariates= covers the horizon
    out = customer_lifetime_value(model, None, summary, covariates=cov, **kw)
    assert np.isfinite(out.frame["clv"]).all() and (out.frame["clv"] > 0).all()
    with pytest.raises(ParameterError, match="finite horizon"):
        customer_lifetime_value(model, None, summary, covariates=cov, horizon=np.inf,
                                time_unit="M", discount_rate=0.1, price=10.0)
    stranger = pd.DataFrame({"frequency": [1.0]}, index=pd.Index([10**9], name="Id"))
    with pytest.raises(DataValidationError, match="were not fitted"):
        customer_lifetime_value(model, None, stranger, covariates=cov, **kw)


def test_clv_intervals_and_spend_model_for_a_fitted_model(apparel):
    from custvalue.models import GammaGammaModel
    from custvalue.value import customer_lifetime_value

    tx, cov = apparel
    model = DynamicParetoNBDModel(["High.Season", "Gender"], ["Gender"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(tx, cov, observation_end="2006-12-31", **APPAREL)
    cal = tx[pd.to_datetime(tx["Date"]) <= "2006-12-31"]
    daily = cal.groupby(["Id", "Date"])["Price"].sum().reset_index()
    spend = daily.groupby("Id")["Price"].agg(["count", "mean"])
    summary = pd.DataFrame({"frequency": (spend["count"] - 1).astype(float),
                            "monetary_value": spend["mean"]}).reindex(model.index_)
    repeat = summary[summary["frequency"] > 0]
    gg = GammaGammaModel().fit(repeat)
    kw = dict(horizon=26, time_unit="W", discount_rate=0.1)
    for method in ("delta", "sample"):
        out = customer_lifetime_value(model, gg, repeat, interval=0.9, interval_method=method,
                                      n_draws=40, seed=3, **kw)
        f = out.frame
        assert list(f.columns) == ["expected_purchases", "discounted_purchases", "expected_spend",
                                   "clv", "clv_lower", "clv_upper"]
        assert (f["clv_lower"] <= f["clv"] * (1 + 1e-12)).all()
        assert (f["clv"] <= f["clv_upper"] * (1 + 1e-12)).all()
        assert out.total_lower < out.total < out.total_upper
    # the discounted purchases are the model's own expectation, discounted at period ends
    ep = model.expected_purchases(26).reindex(repeat.index).to_numpy()
    np.testing.assert_allclose(f["expected_purchases"], ep, rtol=1e-10)
    assert (f["discounted_purchases"] < f["expected_purchases"]).all()


def test_new_customer_expectation_with_a_constant_path_is_the_closed_form(apparel):
    model, _, theta, _, _ = _static_model(apparel)
    r, alpha, s, beta = theta[:4]
    path = pd.DataFrame({"Gender": [1.0] * 80, "Channel": [0.0] * 80})
    a_i = alpha * math.exp(-theta[4])
    b_i = beta * math.exp(-theta[6])
    for t in (0.5, 13.0, 52.0, 79.25):
        # lifetimes' ParetoNBDFitter.expected_number_of_purchases_up_to_time
        want = r * b_i / (a_i * (s - 1)) * (1 - (b_i / (b_i + t)) ** (s - 1))
        assert model.expected_purchases_new_customer(t, path) == pytest.approx(want, rel=1e-12)
    # several prospects (one per channel), and an array of horizons for one prospect
    both = pd.concat([path.assign(who="offline"), path.assign(Channel=1.0, who="online")])
    out = model.expected_purchases_new_customer(20.0, both, prospect_col="who")
    a_on = alpha * math.exp(-theta[4] - theta[5])
    b_on = beta * math.exp(-theta[6] - theta[7])
    assert out["online"] == pytest.approx(
        r * b_on / (a_on * (s - 1)) * (1 - (b_on / (b_on + 20.0)) ** (s - 1)), rel=1e-12)
    assert out["offline"] == pytest.approx(model.expected_purchases_new_customer(20.0, path))
    arr = model.expected_purchases_new_customer(np.array([1.0, 2.0]), path)
    assert arr.shape == (2,) and arr[0] < arr[1]
    with pytest.raises(DataValidationError, match="needs 81 periods"):
        model.expected_purchases_new_customer(80.5, path)


def test_new_customer_expectation_follows_the_path():
    tx, cov = _small()
    model = DynamicParetoNBDModel(["season"], ["season"])
    prep = model.prepare(tx, cov)
    model._prepared, model.index_ = prep, prep.index
    r, alpha, s, beta, gp, gd = 0.8, 6.0, 0.9, 20.0, 0.7, -0.5
    model.params_ = pd.Series([r, alpha, s, beta, gp, gd], index=model._names())
    season = [0.0, 1.0, 1.0, 0.0]
    from scipy.integrate import quad

    def D(u):  # effective dropout time along the path (1-week periods)
        k = min(int(u), 3)
        return sum(math.exp(gd * season[j]) for j in range(k)) + (u - k) * math.exp(gd * season[k])

    def integrand(u):
        return math.exp(gp * season[min(int(u), 3)]) * (beta / (beta + D(u))) ** s

    want = r / alpha * sum(quad(integrand, j, min(j + 1, 3.6), epsabs=1e-14, epsrel=1e-13)[0]
                           for j in range(4))
    got = model.expected_purchases_new_customer(3.6, {"season": season})
    assert got == pytest.approx(want, rel=1e-10)


def test_save_and_load_round_trip(apparel, tmp_path):
    from custvalue.models import BetaGeoModel, load_model

    tx, cov = apparel
    model = DynamicParetoNBDModel(["High.Season", "Gender"], ["Gender"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(tx, cov, observation_end="2006-12-31", **APPAREL)
    path = tmp_path / "dyn.json"
    model.save(path)
    for loaded in (load_model(path), DynamicParetoNBDModel.load(path)):
        assert isinstance(loaded, DynamicParetoNBDModel)
        pd.testing.assert_series_equal(loaded.params_, model.params_)
        pd.testing.assert_frame_equal(loaded.covariance_, model.covariance_)
        pd.testing.assert_frame_equal(loaded.effects_, model.effects_)
        assert loaded.log_likelihood_ == model.log_likelihood_
        assert loaded.n_distinct_ == model.n_distinct_
        for call in (lambda m: m.probability_alive(13), lambda m: m.expected_purchases(26),
                     lambda m: m.expected_discounted_purchases(26, 0.002),
                     lambda m: m.expected_purchases(8, covariates=cov)):
            pd.testing.assert_series_equal(call(loaded), call(model))
        assert str(loaded.summary()) == str(model.summary())
        from custvalue.value import customer_lifetime_value

        kw = dict(horizon=26, time_unit="W", discount_rate=0.1, price=10.0, interval=0.9,
                  interval_method="delta")
        data = pd.DataFrame(index=model.index_[:50])
        pd.testing.assert_frame_equal(customer_lifetime_value(loaded, None, data, **kw).frame,
                                      customer_lifetime_value(model, None, data, **kw).frame)
    # a corrupt file, a foreign file and another model's file get clear errors
    bad = tmp_path / "bad.json"
    bad.write_text(path.read_text()[:5000])
    with pytest.raises(ParameterError, match="not a custvalue model file"):
        load_model(bad)
    text = path.read_text()
    import json

    payload = json.loads(text)
    payload["state"]["walks"]["x"]["base64"] = "!!!"
    bad.write_text(json.dumps(payload))
    with pytest.raises(ParameterError, match="incomplete or corrupt"):
        load_model(bad)
    bad.write_text(json.dumps({"hello": 1}))
    with pytest.raises(ParameterError, match="not a custvalue model file"):
        DynamicParetoNBDModel.load(bad)
    other = tmp_path / "bg.json"
    BetaGeoModel.from_params(r=0.2, alpha=4.0, a=0.8, b=2.4, time_unit="W").save(other)
    with pytest.raises(ParameterError, match="not a DynamicParetoNBDModel"):
        DynamicParetoNBDModel.load(other)
    with pytest.raises(Exception, match="fitted"):
        DynamicParetoNBDModel(["x"], []).save(tmp_path / "unfitted.json")


def test_only_identical_walks_share_a_weight():
    starts = pd.date_range("2024-01-01", periods=6, freq="7D")
    season = [0.0, 1.0, 1.0, 0.0, 0.0, 1.0]
    # 1 and 2: same first day, same repeat days, same covariates -> one walk; 3: a purchase on
    # another day of the same week (same x, different t_x); 4: like 1 with one period changed;
    # 5: like 1 but acquired a day later
    tx = pd.DataFrame({
        "customer_id": [1, 1, 2, 2, 3, 3, 4, 4, 5, 5],
        "date": pd.to_datetime(["2024-01-02", "2024-01-20", "2024-01-02", "2024-01-20",
                                "2024-01-02", "2024-01-19", "2024-01-02", "2024-01-20",
                                "2024-01-03", "2024-01-21"]),
    })
    rows = []
    for cid in (1, 2, 3, 4, 5):
        vals = list(season)
        if cid == 4:
            vals[4] = 1.0
        rows += [{"customer_id": cid, "period_start": d, "season": v}
                 for d, v in zip(starts, vals, strict=True)]
    cov = pd.DataFrame(rows)
    model = DynamicParetoNBDModel(["season"], ["season"])
    prep = model.prepare(tx, cov, observation_end="2024-02-10")
    distinct, walk_of = prep.compressed()
    assert walk_of.tolist() == [0, 0, 1, 2, 3]
    assert distinct.n == 4
    ll = dynamic_pareto_nbd_log_likelihood([0.8, 5.0, 0.7, 9.0, 0.4, -0.3], prep.walks)
    assert ll[0] == ll[1] and len(set(ll[1:].tolist())) == 4
