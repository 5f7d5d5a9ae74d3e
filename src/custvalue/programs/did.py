"""Difference-in-differences estimators for programme effects.

* :func:`dr_did` -- the doubly robust DiD for two periods of panel data of Sant'Anna & Zhao
  (2020), "Doubly robust difference-in-differences estimators", J. Econometrics 219(1),
  eq. (3.1): a logit propensity score and a linear outcome regression for the change of the
  untreated, with its influence function (their Theorem 3.1, estimation effects of both
  nuisance models included).
* :func:`callaway_santanna` -- the group-time average treatment effects on the treated
  ``ATT(g, t)`` of Callaway & Sant'Anna (2021), "Difference-in-differences with multiple time
  periods", J. Econometrics 225(2), eq. (2.4)/(2.6) with not-yet-treated (or never-treated)
  comparison customers, each cell a :func:`dr_did` on the customers observed in the base and
  the current period; aggregated to the overall ATT (their eq. (3.10), the "simple"
  average over treated customer-periods) and the event study (eq. (3.5)), with influence
  functions (the estimated weights' part included) so every aggregate has a standard error
  clustered by customer.
* :func:`imputation_did` -- the imputation estimator (Borusyak, Jaravel & Spiess 2024,
  Review of Economic Studies 91(6); Gardner 2022 "did2s"), vectorised here (pyfixest's did2s,
  which the tests compare it with, takes minutes on a few thousand customers);
  :func:`twfe` -- two-way fixed effects by Frisch-Waugh-Lovell on the wide arrays (checked
  against ``pyfixest.feols`` in the tests), a labelled benchmark only.

Everything is vectorised over customers; the only Python loop is over the (group, period)
cells, of which there are at most ``periods ** 2``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special, stats

from ..errors import DataValidationError

__all__ = ["CSResult", "callaway_santanna", "dr_did", "imputation_did", "imputation_wide",
           "pattern_codes", "twfe", "twfe_wide"]

NEVER = np.iinfo(np.int64).max // 4
_Z = float(stats.norm.ppf(0.975))


def pattern_codes(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of ``x`` and the row of each customer among them.

    Pre-period RFM covariates are counts, so a million customers share a few thousand
    distinct covariate rows; the logit and the outcome regression of :func:`dr_did` are then
    fitted on the distinct rows with frequency weights (the same likelihood and least-squares
    objective, summed in another order).

    Returns
    -------
    codes : numpy.ndarray of int64, shape (n,)
    patterns : numpy.ndarray, shape (n_patterns, k)
        ``x == patterns[codes]``.
    """
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[0]
    key = np.zeros(n, dtype=np.int64)
    for j in range(x.shape[1]):
        col, levels = pd.factorize(x[:, j])
        key = pd.factorize(key * np.int64(len(levels)) + col)[0].astype(np.int64)
    _, first, codes = np.unique(key, return_index=True, return_inverse=True)
    return codes.astype(np.int64).reshape(-1), x[first]


def _usable_columns(x: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Keep the constant and the columns that vary and are not collinear (QR pivoting).

    ``weights``: frequency of each row (rows are distinct covariate patterns); the QR of
    ``sqrt(weights) * (x - mean)`` has the same ``R`` as that of the expanded rows.
    """
    keep = [0] + [j for j in range(1, x.shape[1]) if np.ptp(x[:, j]) > 1e-12]
    x = x[:, keep]
    if x.shape[1] > 1:
        if weights is None:
            centred = x - np.r_[0.0, x[:, 1:].mean(axis=0)][None, :]
        else:
            mean = weights @ x[:, 1:] / weights.sum()
            centred = (x - np.r_[0.0, mean][None, :]) * np.sqrt(weights)[:, None]
        _, r = np.linalg.qr(centred)
        diag = np.abs(np.diag(r))
        ok = diag > 1e-8 * max(diag.max(), 1.0)
        ok[0] = True
        x = x[:, ok]
    return x


def _logit(x: np.ndarray, d: np.ndarray, max_iter: int = 50, ridge: float = 1e-8,
           weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Logit by Newton-Raphson: fitted probabilities and ``(X'WX/n)^-1``.

    A tiny ridge penalty (``ridge * n`` on the slopes of standardised covariates) keeps the
    fit finite under (quasi-)separation; with overlap it changes nothing visible.

    ``weights``: rows are distinct covariate patterns, ``weights`` their frequencies and
    ``d`` the number of treated customers in each (the likelihood of the expanded rows);
    ``n`` is then ``weights.sum()``.
    """
    nw = np.ones(x.shape[0]) if weights is None else weights
    n, k = float(nw.sum()), x.shape[1]
    beta = np.zeros(k)
    p1 = d.sum() / n
    beta[0] = np.log(p1 / (1 - p1))
    if k > 1:
        mean = nw @ x[:, 1:] / n
        scale = np.r_[0.0, nw @ (x[:, 1:] - mean) ** 2 / n]
    else:
        scale = np.zeros(1)
    pen = ridge * n * np.diag(scale)

    def objective(b: np.ndarray) -> float:
        eta = x @ b
        return float(np.sum(d * eta - nw * np.logaddexp(0.0, eta)) - 0.5 * b @ pen @ b)

    current = objective(beta)
    for _ in range(max_iter):
        p = special.expit(x @ beta)
        w = nw * p * (1 - p)
        hess = (x * w[:, None]).T @ x + pen
        step = np.linalg.lstsq(hess, x.T @ (d - nw * p) - pen @ beta, rcond=None)[0]
        for _half in range(30):  # step halving keeps every iteration an ascent
            trial = objective(beta + step)
            if trial >= current - 1e-12:
                break
            step = step / 2
        beta = beta + step
        improvement = trial - current
        current = trial
        if np.max(np.abs(step)) < 1e-9 or abs(improvement) < 1e-12:
            break
    p = special.expit(x @ beta)
    w = nw * p * (1 - p)
    info = ((x * w[:, None]).T @ x + pen) / n
    return p, np.linalg.pinv(info)


def dr_did(dy: np.ndarray, d: np.ndarray, x: np.ndarray | None = None
           ) -> tuple[float, np.ndarray]:
    """Doubly robust DiD for panel data (Sant'Anna & Zhao 2020, eq. 3.1).

    Parameters
    ----------
    dy : array
        Outcome change ``Y_t - Y_base`` per customer.
    d : array of 0/1
        Treated indicator.
    x : array (n, k), optional
        Covariates measured at the base period; the first column must be the constant.
        Without covariates the estimator is the difference of mean changes.

    Returns
    -------
    att : float
    influence : array
        Influence function per customer, ``att - ATT ~ mean(influence)``, so the variance is
        ``mean(influence ** 2) / n``. Includes the estimation effect of the logit propensity
        score and of the least-squares outcome regression (Sant'Anna & Zhao 2020, Thm 3.1).
    """
    n = np.asarray(d).size
    if x is None:
        codes, patterns = np.zeros(n, dtype=np.int64), np.ones((1, 1))
    else:
        codes, patterns = pattern_codes(np.asarray(x, dtype=np.float64))
    return _dr_did_patterns(np.asarray(dy, dtype=np.float64), np.asarray(d) == 1, codes,
                            patterns)


def _dr_did_patterns(dy: np.ndarray, d: np.ndarray, codes: np.ndarray, patterns: np.ndarray
                     ) -> tuple[float, np.ndarray]:
    """:func:`dr_did` with the covariates given as distinct rows ``patterns`` and each
    customer's row ``codes``: the nuisance fits run on the distinct rows with frequency
    weights, the influence function (Sant'Anna & Zhao 2020, Thm 3.1) is assembled per
    customer from per-row scalars, so the cost per customer is a few vector operations."""
    n = d.size
    n_pat = patterns.shape[0]
    count = np.bincount(codes, minlength=n_pat)
    present = np.flatnonzero(count)
    local = np.zeros(n_pat, dtype=np.int64)
    local[present] = np.arange(present.size)
    u = local[codes]
    nw = count[present].astype(np.float64)
    n1_p = np.bincount(u[d], minlength=present.size).astype(np.float64)
    n0_p = nw - n1_p
    x = _usable_columns(patterns[present], nw)
    ps_p, hess_ps = _logit(x, n1_p, weights=nw)
    ps_p = np.minimum(ps_p, 1 - 1e-6)
    ctrl = ~d
    # outcome regression of the controls' change: least squares on the distinct rows with
    # the controls' frequencies and mean change (the same objective up to a constant)
    sum_dy0 = np.bincount(u[ctrl], weights=dy[ctrl], minlength=present.size)
    mean_dy0 = np.divide(sum_dy0, n0_p, out=np.zeros_like(sum_dy0), where=n0_p > 0)
    sw = np.sqrt(n0_p)
    beta = np.linalg.lstsq(x * sw[:, None], sw * mean_dy0, rcond=None)[0]
    r = dy - (x @ beta)[u]
    wc_p = np.where(ps_p < 0.995, ps_p / (1 - ps_p), 0.0)  # trimmed odds weights
    wc = np.where(ctrl, wc_p[u], 0.0)
    n1 = float(n1_p.sum())
    eta_t = float(np.sum(r[d]) / n1)
    sum_wc = float(wc.sum())
    eta_c = float(np.sum(wc * r) / sum_wc)
    # influence functions: OLS of the controls' change, logit of the propensity score
    xpx_inv = np.linalg.pinv((x * n0_p[:, None]).T @ x / n)
    m1 = x.T @ n1_p / n                                   # mean of w_t x
    m2 = x.T @ np.bincount(u, weights=wc * (r - eta_c), minlength=present.size) / n
    m3 = x.T @ (wc_p * n0_p) / n                          # mean of w_c x
    a_p, b_p, c_p = x @ (xpx_inv @ m1), x @ (hess_ps @ m2), x @ (xpx_inv @ m3)
    rc = np.where(ctrl, r, 0.0)
    inf_t = (np.where(d, r - eta_t, 0.0) - rc * a_p[u]) / (n1 / n)
    inf_c = (wc * (r - eta_c) + (d.astype(np.float64) - ps_p[u]) * b_p[u] - rc * c_p[u]) / (sum_wc / n)
    return eta_t - eta_c, inf_t - inf_c


@dataclass(frozen=True)
class CSResult:
    """Callaway & Sant'Anna estimates.

    Attributes
    ----------
    overall : tuple (estimate, std_error)
        Average over treated customer-periods after joining.
    ratio : tuple (estimate, std_error)
        ``overall`` relative to the treated customers' counterfactual mean.
    treated_mean : float
        Mean outcome of the treated customer-periods after joining.
    att_gt : pandas.DataFrame
        One row per cell: ``group, time, event_time, estimate, std_error, n_treated,
        n_control``.
    event_study : pandas.DataFrame
        Indexed by ``event_time``: ``estimate, std_error, lower, upper, n_customers``.
    pretrend_stat, pretrend_df, pretrend_p : float, int, float
        Wald test that all pre-joining event-time effects are zero (chi-squared).
    n_treated : int
        Treated customers with a pre-period.
    n_cells : int
        Treated customer-periods after joining.
    dropped_cells : list of (g, t)
        Cells without comparison customers.
    influence : numpy.ndarray
        Per-customer influence of ``overall`` (variance = sum of squares).
    """

    overall: tuple[float, float]
    ratio: tuple[float, float]
    treated_mean: float
    att_gt: pd.DataFrame
    event_study: pd.DataFrame
    pretrend_stat: float
    pretrend_df: int
    pretrend_p: float
    n_treated: int
    n_cells: int
    dropped_cells: list[tuple[int, int]]
    influence: np.ndarray


def callaway_santanna(
    y: np.ndarray,
    entry: np.ndarray,
    group: np.ndarray,
    covariates: Callable[[int], np.ndarray] | None = None,
    *,
    control: str = "notyettreated",
    max_pre: int | None = 6,
    last_time: np.ndarray | None = None,
    patterns: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None,
) -> CSResult:
    """Group-time ATTs with not-yet-treated controls and doubly robust adjustment.

    Callaway & Sant'Anna (2021), eq. (2.6) for each ``ATT(g, t)`` (with the "varying" base
    period: ``g - 1`` after joining, ``t - 1`` before), computed by :func:`dr_did`; the
    overall ATT is eq. (3.10) with weights proportional to the number of treated customers
    in each cell (the average over treated customer-periods); the event study is eq. (3.5).

    Parameters
    ----------
    y : array (n, T)
        Outcome per customer and period (NaN before entry).
    entry : array (n,)
        First observed column per customer.
    group : array (n,)
        Column in which the customer is first treated (:data:`NEVER` for never treated).
    covariates : callable, optional
        ``covariates(base) -> (n, k)`` pre-period covariates as of column ``base`` (first
        column constant).
    control : {"notyettreated", "nevertreated"}
    max_pre : int, optional
        Pre-joining event times estimated (for the event study and the pre-trend test).
    last_time : array (n,), optional
        Last column in which a treated customer counts as treated (placebo analyses stop
        before the real joining); default: the last column.
    patterns : dict, optional
        Cache of the covariates' distinct rows (:func:`pattern_codes`), keyed by the id of
        the array ``covariates`` returns; pass one dict to several calls that share
        covariates so they are encoded once.

    Returns
    -------
    CSResult

    Notes
    -----
    The cells are a Python loop (at most ``T ** 2``); within a cell everything is vectorised
    over customers and the nuisance models are fitted on the distinct covariate rows
    (:func:`pattern_codes`), so a cell costs a few passes over its customers.
    """
    n, n_t = y.shape
    groups = np.unique(group[(group >= 1) & (group < n_t)])
    if groups.size == 0:
        raise DataValidationError(
            "no treated customer joined after her first period inside the panel: nothing to "
            "compare before and after joining")
    n_total = n
    last = np.full(n, n_t - 1) if last_time is None else last_time
    cache = {} if patterns is None else patterns
    ones = (np.zeros(n, dtype=np.int64), np.ones((1, 1)))

    def encoded(base: int) -> tuple[np.ndarray, np.ndarray]:
        if covariates is None:
            return ones
        x = covariates(base)
        key = id(x)
        if key not in cache or cache[key][0] is not x:
            cache[key] = (x, *pattern_codes(x))
        return cache[key][1], cache[key][2]

    cells = []
    for g in groups:
        for t in range(1, n_t):
            base = g - 1 if t >= g else t - 1
            if t < g and max_pre is not None and g - t > max_pre:
                continue
            cells.append((int(g), t, base))
    # aggregates: overall (post cells) and each event time
    ev_times = sorted({t - g for g, t, _ in cells})
    agg_names = ["overall", *[f"e{e}" for e in ev_times]]
    col_of = {name: i for i, name in enumerate(agg_names)}
    weights_total = np.zeros(len(agg_names))
    usable = []
    dropped = []
    for g, t, base in cells:
        obs = entry <= min(base, t)
        tr = obs & (group == g) & (last >= t)
        nt = int(np.count_nonzero(tr))
        if nt == 0:
            continue
        if control == "nevertreated":
            ct = obs & (group >= NEVER)
        else:
            ct = obs & (group > max(t, base)) & (group != g)
        nc = int(np.count_nonzero(ct))
        if nc == 0:
            dropped.append((g, t))
            continue
        usable.append((g, t, base, nt, nc))
        weights_total[col_of[f"e{t - g}"]] += nt
        if t >= g:
            weights_total[0] += nt
    if weights_total[0] == 0:
        raise DataValidationError(
            "no treated customer-period after joining has not-yet-treated or never-treated "
            "customers to compare with: the design cannot estimate an effect")
    y_cols = np.ascontiguousarray(y.T)  # one contiguous row per period
    phi = np.zeros((len(agg_names), n))  # per-aggregate influence, one row each
    rows = []
    for g, t, base, nt, nc in usable:
        obs = entry <= min(base, t)
        tr = obs & (group == g) & (last >= t)
        if control == "nevertreated":
            ct = obs & (group >= NEVER)
        else:
            ct = obs & (group > max(t, base)) & (group != g)
        idx = np.flatnonzero(tr | ct)
        dy = y_cols[t][idx] - y_cols[base][idx]
        codes, pats = encoded(base)
        att, inf = _dr_did_patterns(dy, tr[idx], codes[idx], pats)
        phi_cell = inf / idx.size
        se = float(np.sqrt(np.sum(phi_cell ** 2)))
        rows.append({"group": g, "time": t, "event_time": t - g, "estimate": att,
                     "std_error": se, "n_treated": nt, "n_control": nc})
        targets = [col_of[f"e{t - g}"]] + ([0] if t >= g else [])
        for j in targets:
            phi[j, idx] += (nt / weights_total[j]) * phi_cell
    att_gt = pd.DataFrame(rows)
    est = np.zeros(len(agg_names))
    for j, name in enumerate(agg_names):
        if name == "overall":
            sub = att_gt[att_gt["event_time"] >= 0]
        else:
            sub = att_gt[att_gt["event_time"] == int(name[1:])]
        if len(sub) == 0 or weights_total[j] == 0:
            est[j] = np.nan
            continue
        est[j] = float(np.sum(sub["estimate"] * sub["n_treated"]) / weights_total[j])
    # estimated weights' influence (Callaway & Sant'Anna 2021, Appendix; with weights
    # c_k = n_treated_k / n): phi_i += sum over cells k treating i of (att_k - a) / (n S)
    for (g, t, base, _nt, _nc), row in zip(usable, rows, strict=True):
        tr = (entry <= min(base, t)) & (group == g) & (last >= t)
        targets = [col_of[f"e{t - g}"]] + ([0] if t >= g else [])
        for j in targets:
            s = weights_total[j] / n_total
            phi[j, tr] += (row["estimate"] - est[j]) / (n_total * s)
    se = np.sqrt(np.einsum("ij,ij->i", phi, phi))
    # treated mean after joining (for the ratio scale), its influence
    post_cells = np.zeros(n)
    post_sum = np.zeros(n)
    for g in groups:
        tr = (group == g) & (entry <= g - 1)
        if not tr.any():
            continue
        cols = np.arange(g, n_t)
        lim = last[tr][:, None] >= cols[None, :]
        vals = np.where(lim, np.nan_to_num(y[np.ix_(np.flatnonzero(tr), cols)]), 0.0)
        post_sum[tr] = vals.sum(axis=1)
        post_cells[tr] = lim.sum(axis=1)
    n_cells = float(post_cells.sum())
    mu1 = float(post_sum.sum() / n_cells)
    phi_mu1 = (post_sum - mu1 * post_cells) / n_cells
    a, phi_a = est[0], phi[0]
    mu0 = mu1 - a
    ratio = a / mu0 if mu0 > 0 else np.nan
    phi_r = (phi_a * mu1 - phi_mu1 * a) / mu0 ** 2 if mu0 > 0 else np.zeros(n)
    es_rows = []
    for e in ev_times:
        j = col_of[f"e{e}"]
        es_rows.append({"event_time": e, "estimate": est[j], "std_error": se[j],
                        "lower": est[j] - _Z * se[j], "upper": est[j] + _Z * se[j],
                        "n_customers": int(weights_total[j])})
    event_study = pd.DataFrame(es_rows).set_index("event_time")
    pre = [col_of[f"e{e}"] for e in ev_times if e < 0 and np.isfinite(est[col_of[f"e{e}"]])]
    if pre:
        b = est[pre]
        v = phi[pre] @ phi[pre].T
        stat = float(b @ np.linalg.pinv(v) @ b)
        dof = int(np.linalg.matrix_rank(v))
        p_pre = float(stats.chi2.sf(stat, dof)) if dof > 0 else float("nan")
    else:
        stat, dof, p_pre = float("nan"), 0, float("nan")
    return CSResult(
        overall=(float(a), float(se[0])),
        ratio=(float(ratio), float(np.sqrt(np.sum(phi_r ** 2)))),
        treated_mean=mu1, att_gt=att_gt, event_study=event_study,
        pretrend_stat=stat, pretrend_df=dof, pretrend_p=p_pre,
        n_treated=int(np.sum(np.isin(group, groups) & (entry <= group - 1))),
        n_cells=int(n_cells), dropped_cells=dropped, influence=phi_a.copy(),
    )


def long_panel(y: np.ndarray, entry: np.ndarray, group: np.ndarray, keep: np.ndarray
               ) -> pd.DataFrame:
    """Observed cells of the customers in ``keep`` as a long frame (unit, time, y, treat)."""
    n_t = y.shape[1]
    idx = np.flatnonzero(keep)
    t = np.tile(np.arange(n_t), idx.size)
    u = np.repeat(idx, n_t)
    obs = t >= entry[u]
    u, t = u[obs], t[obs]
    g = group[u]
    return pd.DataFrame({
        "unit": u, "time": t, "y": y[u, t],
        "treat": (t >= g).astype(np.int64),
        "first_treat": np.where(g >= NEVER, 0, g + 1),  # pyfixest: 0 = never treated
    })


def wide_cells(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A long panel (``unit, time, y, treat`` and optionally ``first_treat``, as from
    :func:`long_panel`) as wide arrays: outcome (0 where unobserved), observed mask, treated
    mask and each unit's cohort label (``first_treat``, else the unit)."""
    unit = pd.factorize(frame["unit"])[0]
    time = pd.factorize(frame["time"], sort=True)[0]
    n_u, n_t = int(unit.max()) + 1, int(time.max()) + 1
    y = np.zeros((n_u, n_t))
    obs = np.zeros((n_u, n_t), dtype=bool)
    treated = np.zeros((n_u, n_t), dtype=bool)
    y[unit, time] = frame["y"].to_numpy(dtype=np.float64)
    obs[unit, time] = True
    treated[unit, time] = frame["treat"].to_numpy() == 1
    cohort = np.zeros(n_u, dtype=np.int64)
    cohort[unit] = (frame["first_treat"].to_numpy() if "first_treat" in frame
                    else np.arange(n_u)[unit])
    return y, obs, treated, cohort


def _two_way_solve(m: np.ndarray, rhs_u: np.ndarray, rhs_t: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Solve the normal equations of ``y ~ a_unit + l_time`` on the cells ``m`` (0/1, units
    x periods) for right-hand sides ``rhs_u = sum_t m y`` and ``rhs_t = sum_u m y``.

    The unit effects are eliminated (``a = (rhs_u - m l) / n_u``), leaving the periods x
    periods system ``(diag(n_t) - m' diag(1/n_u) m) l = rhs_t - m' (rhs_u / n_u)``, solved by
    least squares (its null space is the usual shift between ``a`` and ``l``, which leaves
    every fitted ``a_u + l_t`` unchanged). Exact, where alternating projections converge
    slowly when few units span many periods. Units without cells get ``a = 0``.
    """
    cu = m.sum(axis=1)
    ct = m.sum(axis=0)
    inv = np.divide(1.0, cu, out=np.zeros_like(cu), where=cu > 0)
    mw = m * inv[:, None]
    lhs = np.diag(ct) - mw.T @ m
    lam = np.linalg.lstsq(lhs, rhs_t - m.T @ (rhs_u * inv), rcond=None)[0]
    a = (rhs_u - m @ lam) * inv
    return a, lam


def _imputation(y: np.ndarray, obs: np.ndarray, treated: np.ndarray, cohort: np.ndarray
                ) -> tuple[float, float]:
    """Imputation ATT and its conservative clustered standard error on wide arrays (see
    :func:`imputation_did`)."""
    untreated = obs & ~treated
    m = untreated.astype(np.float64)
    my = np.where(untreated, y, 0.0)
    a, lam = _two_way_solve(m, my.sum(axis=1), my.sum(axis=0))
    del my
    ok1 = treated & (m.sum(axis=1) > 0)[:, None] & (m.sum(axis=0) > 0)[None, :]
    n1 = int(np.count_nonzero(ok1))
    if n1 == 0:
        raise DataValidationError("imputation estimator: no treated customer-period has "
                                  "untreated customer-periods of the same customer and period")
    resid = y - a[:, None] - lam[None, :]
    rows, cols = np.nonzero(ok1)
    tau = resid[rows, cols]
    att = float(tau.mean())
    w1 = 1.0 / n1
    # implied weights on the untreated cells: v0 = -Z0 (Z0'Z0)^-1 Z1' w1, i.e. minus the fitted
    # values of the FE normal equations whose right-hand side is the treated weights
    bu, bt = _two_way_solve(m, ok1.sum(axis=1) * w1, ok1.sum(axis=0) * w1)
    contrib = -np.einsum("ij,ij->i", m * (bu[:, None] + bt[None, :]), resid)
    del resid, m
    n_t = y.shape[1]
    cell = pd.factorize(cohort[rows] * np.int64(n_t) + cols)[0]
    cell_mean = np.bincount(cell, weights=tau) / np.bincount(cell)
    contrib += np.bincount(rows, weights=w1 * (tau - cell_mean[cell]), minlength=y.shape[0])
    return att, float(np.sqrt(np.sum(contrib ** 2)))


def imputation_did(frame: pd.DataFrame) -> tuple[float, float]:
    """Imputation ATT of Borusyak, Jaravel & Spiess (2024, eq. 5-6; Gardner 2022 "did2s").

    Unit and period fixed effects are estimated on the untreated customer-periods only
    (never-treated customers and the treated before joining); each treated customer-period's
    effect is its outcome minus the imputed ``a_i + l_t``; the ATT is their mean. The
    standard error is BJS's conservative clustered variance (their Theorem 3):
    ``sum_i (sum_t v_it e_it)^2`` with the estimator's implied weights ``v`` (the treated
    weights, and minus the fitted effects of the weighted treated cells on the untreated ones)
    and residuals ``e`` (first-stage residuals; treated effects minus their group-period mean).
    The fixed effects are solved exactly (:func:`_two_way_solve`).

    Parameters
    ----------
    frame : DataFrame
        Long panel with ``unit, time, y, treat`` (as from :func:`long_panel`).
    """
    return _imputation(*wide_cells(frame))


def imputation_wide(y: np.ndarray, entry: np.ndarray, group: np.ndarray, keep: np.ndarray
                    ) -> tuple[float, float]:
    """:func:`imputation_did` on the customer x period arrays (no long panel): the customers
    in ``keep``, observed from ``entry``, treated from column ``group``."""
    obs, treated, cohort = _wide_masks(entry, group, keep, y.shape[1])
    return _imputation(np.where(obs, np.nan_to_num(y), 0.0), obs, treated, cohort)


def _wide_masks(entry: np.ndarray, group: np.ndarray, keep: np.ndarray, n_t: int
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    t = np.arange(n_t)[None, :]
    obs = keep[:, None] & (t >= entry[:, None])
    return obs, obs & (t >= group[:, None]), np.asarray(group, dtype=np.int64)


def _twfe(y: np.ndarray, obs: np.ndarray, treated: np.ndarray) -> tuple[float, float]:
    """Static TWFE ``y ~ treat | unit + time`` by Frisch-Waugh-Lovell on wide arrays, CRV1
    errors clustered by unit with fixest's / pyfixest's small-sample factor
    ``G/(G-1) * (N-1)/(N-K)``, ``K = 1 + periods`` (the unit effects are nested in the
    clusters and count once)."""
    m = obs.astype(np.float64)
    units = m.sum(axis=1) > 0
    y, m, d = y[units], m[units], treated[units].astype(np.float64)
    ay, ly = _two_way_solve(m, (m * y).sum(axis=1), (m * y).sum(axis=0))
    ad, ld = _two_way_solve(m, (m * d).sum(axis=1), (m * d).sum(axis=0))
    dt = m * (d - ad[:, None] - ld[None, :])
    yt = m * (y - ay[:, None] - ly[None, :])
    sdd = float(np.sum(dt * dt))
    beta = float(np.sum(dt * yt)) / sdd
    score = np.einsum("ij,ij->i", dt, yt - beta * dt)
    n_obs, n_g = float(m.sum()), int(units.sum())
    n_periods = int(np.count_nonzero(m.sum(axis=0)))
    adj = n_g / (n_g - 1) * (n_obs - 1) / (n_obs - 1 - n_periods)
    return beta, float(np.sqrt(adj * np.sum(score ** 2)) / sdd)


def twfe(frame: pd.DataFrame) -> tuple[float, float]:
    """Static two-way fixed effects regression ``y ~ treat | unit + time`` (benchmark only:
    with staggered joining and heterogeneous effects it mixes already-treated customers into
    the comparison, Goodman-Bacon 2021), errors clustered by customer.

    Computed on wide arrays (:func:`_twfe`, the tests check it against ``pyfixest.feols``
    with ``vcov={"CRV1": "unit"}``)."""
    y, obs, treated, _ = wide_cells(frame)
    return _twfe(y, obs, treated)


def twfe_wide(y: np.ndarray, entry: np.ndarray, group: np.ndarray, keep: np.ndarray
              ) -> tuple[float, float]:
    """:func:`twfe` on the customer x period arrays (no long panel)."""
    obs, treated, _ = _wide_masks(entry, group, keep, y.shape[1])
    return _twfe(np.where(obs, np.nan_to_num(y), 0.0), obs, treated)
