"""BG/NBD and MBG/NBD "buy till you die" models.

BG/NBD (Fader, Hardie & Lee 2005, "Counting your customers the easy way: an alternative to the
Pareto/NBD model", Marketing Science 24(2), 275-284; referred to as FHL below): while alive a
customer buys at Poisson rate ``lambda ~ Gamma(r, alpha)``; after every repeat purchase she drops
out with probability ``p ~ Beta(a, b)``.

MBG/NBD (Batislam, Denizel & Filiztekin 2007, "Empirical validation and comparison of models for
customer base analysis", IJRM 24(3), 201-209): as BG/NBD, but a customer may also drop out right
after the first purchase (time 0), so customers without repeat purchases can be inactive.

Numerics
--------
All likelihoods are computed in log space with ``gammaln``/``betaln`` and ``logaddexp``; ratios of
gamma functions with a huge argument (BG/NBD's ``a``, ``b`` at a boundary fit) go through
``betaln``, which scipy evaluates with an asymptotic expansion.

Conditional expectations need the Gauss hypergeometric function
``2F1(r+x, b+x; a+b+x-1; z)`` (FHL eq. 10), which overflows (and makes scipy's ``hyp2f1`` return
NaN) for frequencies in the hundreds. custvalue never evaluates it in that form. With
``s = r + x``, ``beta`` the posterior beta parameter and ``u = t / (alpha + T)``, the alive
customer's expected purchases are

    Q = E_{p ~ Beta(a, beta)} [(1 - (1 + p u)^(-s)) / p]
      = (a + beta - 1) / (a - 1) * [1 - 2F1(a - 1, s; a + beta - 1; -u)]      (Pfaff of FHL eq. 10)

and, applying Pfaff's transformation once more,
``2F1(a-1, s; c; -u) = (1+u)^(1-a) 2F1(a-1, c-s; c; z)`` with ``z = u/(1+u)`` and
``c - s = a + b - 1 - r`` free of ``x``. Its power series, after the factor ``(a - 1)`` is divided
out analytically, has no cancellation at ``a = 1`` and converges fast when ``x`` is large. Rows
where it would converge slowly (``z`` close to 1, i.e. a horizon far longer than ``alpha + T``)
or lose digits are evaluated instead by trapezoidal quadrature of the beta expectation on the
logit scale (exponentially convergent for this analytic integrand). Both paths are checked
against ``mpmath`` in the tests on a grid of extreme arguments.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import betainc, betaln, digamma, expit, gammaln

from .._special import log_gamma_ratio
from ..errors import ParameterError
from ._covariates import TwoProcessCovariatesMixin
from .base import BaseModel, CoreRowsMixin, _dot, unique_rows

__all__ = ["BetaGeoModel", "ModifiedBetaGeoModel", "bg_alive_expectation"]


# ---------------------------------------------------------------------------------------------
# special-function helpers


def _logit_quadrature_q(s: np.ndarray, a: np.ndarray, beta: np.ndarray, u: np.ndarray) -> np.ndarray:
    """``E_{p ~ Beta(a, beta)} [(1 - (1 + p u)^(-s)) / p]`` by trapezoid rule on ``y = logit(p)``.

    The log-density of ``y`` is concave with mode ``log(a / beta)`` and scale
    ``sqrt(1/a + 1/beta)``; its tails decay like ``exp(a y)`` and ``exp(-beta y)``. The grid covers
    the mode +/- 12 scales plus 40 e-folds of each tail (cut at ``y = -700``, beyond which the
    integrand equals its limit ``s u`` and the tail mass is added in closed form), with a step
    below 1/8 of the scale and 0.25. Robust but ~1000x the cost of the series, so it is used only
    for the rows the series cannot handle.
    """
    out = np.empty(s.shape)
    if s.size == 0:
        return out
    sd = np.sqrt(1.0 / a + 1.0 / beta)
    mode = np.log(a) - np.log(beta)
    lo = np.maximum(mode - 12.0 * sd - 40.0 / a, -700.0)
    hi = mode + 12.0 * sd + 40.0 / beta
    h_target = np.minimum(sd / 8.0, 0.25)
    n_nodes = np.clip(np.ceil((hi - lo) / h_target), 64, 40000).astype(int)
    order = np.argsort(n_nodes)
    chunk = 256
    for start in range(0, s.size, chunk):  # chunks of unique rows, not customers
        idx = order[start : start + chunk]
        m = int(n_nodes[idx].max()) + 1
        grid = np.linspace(0.0, 1.0, m)
        y = lo[idx, None] + (hi[idx] - lo[idx])[:, None] * grid[None, :]
        h = (hi[idx] - lo[idx]) / (m - 1)
        log_p = -np.logaddexp(0.0, -y)
        log_q = -np.logaddexp(0.0, y)
        lb = betaln(a[idx], beta[idx])[:, None]
        log_dens = a[idx, None] * log_p + beta[idx, None] * log_q - lb
        p = np.exp(log_p)
        g = -np.expm1(-s[idx, None] * np.log1p(p * u[idx, None])) / p
        vals = g * np.exp(log_dens)
        integral = h * (vals.sum(axis=1) - 0.5 * (vals[:, 0] + vals[:, -1]))
        # left tail below the grid: the log-density is concave with slope a(1-p) - beta p at the
        # grid's end, so the tail mass is at most density(lo) / slope; g <= s u there
        slope = a[idx] * (1.0 - p[:, 0]) - beta[idx] * p[:, 0]
        tail = np.where(
            slope > 0, s[idx] * u[idx] * np.exp(log_dens[:, 0]) / np.where(slope > 0, slope, 1.0), 0.0
        )
        out[idx] = integral + tail
    return out


def bg_alive_expectation(
    s: Any, a: Any, beta: Any, u: Any, *, max_terms: int = 1500
) -> np.ndarray:
    """Expected purchases of an *alive* BG/NBD customer, ``E_p[(1 - (1 + p u)^-s) / p]``.

    With ``p ~ Beta(a, beta)``. For a customer with history ``(x, T)`` under BG/NBD parameters
    ``(r, alpha, a, b)``: ``s = r + x``, ``beta = b + x``, ``u = t / (alpha + T)``; multiplied by
    P(alive) this is FHL (2005) eq. 10. A new customer is ``x = T = 0`` (FHL eq. 9).

    Evaluated as ``(a + beta - 1) * D`` with ``D = (1 - 2F1(a-1, s; c; -u)) / (a - 1)``,
    ``c = a + beta - 1``; after Pfaff's transformation
    ``D = (1 - (1+u)^(1-a)) / (a - 1) - (1+u)^(1-a) * S``, with
    ``S = sum_{k>=1} (a)_{k-1} (c-s)_k / ((c)_k k!) z^k`` and ``z = u / (1 + u)``; rows where the
    series is slow or loses digits use :func:`_logit_quadrature_q`.

    Parameters
    ----------
    s, a, beta, u : array-like
        Broadcastable positive arrays (``u >= 0``).
    max_terms : int
        Series terms tried before a row is handed to quadrature.

    Returns
    -------
    np.ndarray
        Non-negative, finite expected purchases.
    """
    s, a, beta, u = (np.asarray(v, dtype=np.float64) for v in np.broadcast_arrays(s, a, beta, u))
    shape = s.shape
    s, a, beta, u = s.ravel(), a.ravel(), beta.ravel(), u.ravel()
    out = np.zeros(s.shape)
    c = a + beta - 1.0
    m = c - s
    pos = u > 0
    # series rows: c must be comfortably positive (no pole of (c)_k)
    use_series = pos & (c >= 0.5)
    idx = np.flatnonzero(use_series)
    fallback = np.flatnonzero(pos & ~use_series)
    if idx.size:
        zi = u[idx] / (1.0 + u[idx])
        ai, ci, mi = a[idx], c[idx], m[idx]
        term = mi * zi / ci
        acc = term.copy()
        absacc = np.abs(term)
        active = np.arange(idx.size)
        done = np.zeros(idx.size, dtype=bool)
        k = 1
        with np.errstate(all="ignore"):
            while active.size and k < max_terms:
                ratio = (ai[active] + k - 1.0) * (mi[active] + k) * zi[active] / (
                    (ci[active] + k) * (k + 1.0)
                )
                t_new = term[active] * ratio
                term[active] = t_new
                acc[active] += t_new
                absacc[active] += np.abs(t_new)
                k += 1
                small = (np.abs(t_new) <= 1e-17 * np.abs(acc[active])) | (t_new == 0)
                # converged once terms are negligible and shrinking for good
                fin = small & (np.abs(ratio) < 1.0)
                if fin.any():
                    done[active[fin]] = True
                    active = active[~fin]
        with np.errstate(all="ignore"):
            L = np.log1p(u[idx])
            e = ai - 1.0
            first = np.where(e == 0.0, L, -np.expm1(-e * L) / np.where(e == 0.0, 1.0, e))
            w = np.exp(-e * L)
            D = first - w * acc
            err = 1e-15 * (np.abs(first) + w * absacc)
            q = ci * D
        ok = done & np.isfinite(q) & (D > 0) & (err <= 1e-9 * np.abs(D))
        out[idx[ok]] = q[ok]
        fallback = np.concatenate([fallback, idx[~ok]])
    if fallback.size:
        with np.errstate(all="ignore"):
            out[fallback] = _logit_quadrature_q(s[fallback], a[fallback], beta[fallback], u[fallback])
    np.maximum(out, 0.0, out=out)
    return out.reshape(shape)


# ---------------------------------------------------------------------------------------------
# models


class _BetaGeoFamily(CoreRowsMixin, BaseModel):
    """Shared BG/NBD and MBG/NBD code; ``_modified`` selects MBG/NBD."""

    _param_names = ("r", "alpha", "a", "b")
    _data_columns = ("frequency", "recency", "T")
    _limit_groups = (
        (
            ("a", "b"),
            "the Beta distribution of the dropout probability p collapses to the single value "
            "p = a/(a+b) (every customer has the same dropout probability)",
        ),
        (
            ("r", "alpha"),
            "the Gamma distribution of the purchase rate collapses to the single rate r/alpha "
            "(every customer buys at the same rate)",
        ),
    )
    _modified = False

    # ---- pieces shared by likelihood and predictions
    def _dead_shift(self) -> float:
        # BG/NBD: b + x - 1 (only when x > 0); MBG/NBD: b + x (always)
        return 0.0 if self._modified else -1.0

    def _prepare_data(self, data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Distinct x, t_x and T with inverse indices: gamma terms and logs run per distinct value."""
        out = dict(data)
        for key, name in (("x", "frequency"), ("tx", "recency"), ("T", "T")):
            uniq, inv = np.unique(data[name], return_inverse=True)
            out[f"_u_{key}"], out[f"_i_{key}"] = uniq, inv
        return out

    def _core(
        self, log_params: np.ndarray, data: Mapping[str, np.ndarray], need_grad: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Row log-likelihood (FHL 2005 eq. 6; Batislam et al. 2007 eq. 3) and its gradient.

        ``L = B(a, b+x+m)/B(a, b) * Gamma(r+x) alpha^r / Gamma(r) * [(alpha+T)^-(r+x)
        + d * a/(b+x+m-1) * (alpha+t_x)^-(r+x)]`` with ``m = 0, d = 1{x>0}`` for BG/NBD and
        ``m = 1, d = 1`` for MBG/NBD. Terms that depend on x only are computed per distinct x.
        """
        if "_u_x" not in data:
            data = self._prepare_data(dict(data))
        r, alpha, a, b = np.exp(log_params)
        ux, ix = data["_u_x"], data["_i_x"]
        m = 1.0 if self._modified else 0.0
        # per distinct x
        x_terms = log_gamma_ratio(r, ux) + log_gamma_ratio(b, ux + m) - log_gamma_ratio(a + b, ux + m)
        with np.errstate(divide="ignore", invalid="ignore"):
            dead_u = np.log(a) - np.log(b + ux + m - 1.0)
        if not self._modified:
            dead_u = np.where(ux > 0, dead_u, -np.inf)
        rx = r + data["frequency"]
        lat = np.log(alpha + data["_u_T"])[data["_i_T"]]
        lax = np.log(alpha + data["_u_tx"])[data["_i_tx"]]
        log_a3 = -rx * lat
        log_a4 = dead_u[ix] - rx * lax
        d = log_a4 - log_a3
        with np.errstate(invalid="ignore"):
            e = np.exp(-np.abs(d))  # d = -inf (no dead branch) gives e = 0
        pos = d > 0
        ll = r * np.log(alpha) + x_terms[ix] + log_a3 + np.where(pos, d, 0.0) + np.log1p(e)
        if not need_grad:
            return ll, None
        w4 = np.where(pos, 1.0, e) / (1.0 + e)
        w3 = 1.0 - w4
        d_r = (digamma(r + ux) - digamma(r))[ix] + np.log(alpha) - w3 * lat - w4 * lax
        inv_T = 1.0 / (alpha + data["_u_T"])
        inv_tx = 1.0 / (alpha + data["_u_tx"])
        d_alpha = r / alpha - rx * (w3 * inv_T[data["_i_T"]] + w4 * inv_tx[data["_i_tx"]])
        dg_ab = (digamma(a + b) - digamma(a + b + ux + m))[ix]
        d_a = dg_ab + w4 / a
        with np.errstate(divide="ignore", invalid="ignore"):
            inv_dead = np.where(ux + m - 1.0 + b > 0, 1.0 / (b + ux + m - 1.0), 0.0)[ix]
        d_b = dg_ab + (digamma(b + ux + m) - digamma(b))[ix] - w4 * inv_dead
        grad = np.column_stack([d_r * r, d_alpha * alpha, d_a * a, d_b * b])
        return ll, grad

    def _row_core(
        self, lp_groups: np.ndarray, groups: np.ndarray, data: Mapping[str, Any], need_grad: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """:meth:`_core` with ``alpha_i``, ``a_i``, ``b_i`` per covariate pattern (CLVTools
        ``bgnbd_staticcov``: ``alpha_i = alpha exp(-g_p' z)``, ``a_i = a exp(g_d' z)``,
        ``b_i = b exp(g_d' z)``); gamma-function terms run per distinct (x, pattern)."""
        r = float(np.exp(lp_groups[0, 0]))
        m = 1.0 if self._modified else 0.0
        x = data["frequency"]  # data prepared by the covariate mixin (distinct x, t_x, T added)
        n_groups = lp_groups.shape[0]
        xg = data.get("_xg")
        if xg is None or xg[3] != n_groups:
            # distinct (x, pattern), and each row's (pattern, T) and (pattern, t_x) cell: the
            # logs and reciprocals of alpha_i + T and alpha_i + t_x run on those small grids
            n_ux = data["_u_x"].size
            keys, ixg = np.unique(groups * n_ux + data["_i_x"], return_inverse=True)
            xg = (
                data["_u_x"][keys % n_ux],
                keys // n_ux,
                ixg.reshape(-1),
                n_groups,
                groups * data["_u_T"].size + data["_i_T"],
                groups * data["_u_tx"].size + data["_i_tx"],
            )
            if isinstance(data, dict):
                data["_xg"] = xg  # type: ignore[index]
        ux, ug, ixg, _, cell_T, cell_tx = xg
        ag, bg = np.exp(lp_groups[:, 2])[ug], np.exp(lp_groups[:, 3])[ug]
        x_terms = log_gamma_ratio(r, ux) + log_gamma_ratio(bg, ux + m) - log_gamma_ratio(ag + bg, ux + m)
        with np.errstate(divide="ignore", invalid="ignore"):
            dead_u = np.log(ag) - np.log(bg + ux + m - 1.0)
        if not self._modified:
            dead_u = np.where(ux > 0, dead_u, -np.inf)
        log_alpha_g = lp_groups[:, 1]
        alpha_g = np.exp(log_alpha_g)
        shift_T = (alpha_g[:, None] + data["_u_T"][None, :]).reshape(-1)
        shift_tx = (alpha_g[:, None] + data["_u_tx"][None, :]).reshape(-1)
        rx = r + x
        lat = np.log(shift_T)[cell_T]
        lax = np.log(shift_tx)[cell_tx]
        log_a3 = -rx * lat
        log_a4 = dead_u[ixg] - rx * lax
        d = log_a4 - log_a3
        with np.errstate(invalid="ignore"):
            e = np.exp(-np.abs(d))
        pos = d > 0
        ll = (r * log_alpha_g)[groups] + x_terms[ixg] + log_a3 + np.where(pos, d, 0.0) + np.log1p(e)
        if not need_grad:
            return ll, None
        w4 = np.where(pos, 1.0, e) / (1.0 + e)
        w3 = 1.0 - w4
        d_r = (digamma(r + ux) - digamma(r))[ixg] + log_alpha_g[groups] - w3 * lat - w4 * lax
        d_alpha = (r / alpha_g)[groups] - rx * (w3 * (1.0 / shift_T)[cell_T] + w4 * (1.0 / shift_tx)[cell_tx])
        dg_ab = digamma(ag + bg) - digamma(ag + bg + ux + m)
        with np.errstate(divide="ignore", invalid="ignore"):
            inv_dead = np.where(ux + m - 1.0 + bg > 0, 1.0 / (bg + ux + m - 1.0), 0.0)
        # the chain rule to the log-parameters is applied per (x, pattern) where it can
        d_a = (dg_ab * ag)[ixg] + w4
        d_b = ((dg_ab + digamma(bg + ux + m) - digamma(bg)) * bg)[ixg] - w4 * (inv_dead * bg)[ixg]
        grad = np.empty((x.size, 4))
        grad[:, 0] = d_r * r
        grad[:, 1] = d_alpha * alpha_g[groups]
        grad[:, 2] = d_a
        grad[:, 3] = d_b
        return ll, grad

    def _initial_params(self, data: Mapping[str, np.ndarray], weights: np.ndarray) -> np.ndarray:
        x, T = data["frequency"], data["T"]
        wsum = float(weights.sum())
        mean_T = float(_dot(weights, T)) / wsum if wsum else 1.0
        rate = float(_dot(weights, x)) / max(float(_dot(weights, T)), 1e-12)
        rate = rate if rate > 0 else 1.0 / max(mean_T, 1.0)
        alpha0 = 1.0 / rate  # r = 1: mean rate r / alpha matches the pooled purchase rate
        max_T = float(T.max()) if T.size else 10.0
        # second start: lifetimes' default (ones after scaling T to a maximum of 10)
        return np.array(
            [[1.0, alpha0, 1.0, 3.0], [1.0, max(max_T, 1e-6) / 10.0, 1.0, 1.0]], dtype=np.float64
        )

    def _fit_problem(
        self, params: np.ndarray, data: Mapping[str, np.ndarray], weights: np.ndarray
    ) -> str | None:
        r, alpha, _, _ = params
        max_T = float(np.max(data["T"]))
        if r / alpha * max(max_T, 1e-12) < 1e-6:
            n_rep = float(_dot(weights, (data["frequency"] > 0)))
            return (
                f"the mean purchase rate r/alpha ran to zero (r={r:.3g}, alpha={alpha:.3g}); "
                f"{n_rep:g} customers have repeat purchases, which is too few to estimate the "
                "purchase process"
            )
        return None

    # ---- prediction helpers
    def _alive_log_odds_dead(
        self, params: np.ndarray, x: np.ndarray, tx: np.ndarray, T: np.ndarray
    ) -> np.ndarray:
        """log P(dead)/P(alive) given history (FHL 2005 eq. 10's denominator; Batislam eq. 5)."""
        r, alpha, a, b = params
        m = 1.0 if self._modified else 0.0
        with np.errstate(divide="ignore", invalid="ignore"):
            lo = (
                np.log(a)
                - np.log(b + x + m - 1.0)
                + (r + x) * (np.log(alpha + T) - np.log(alpha + tx))
            )
        if not self._modified:
            lo = np.where(x > 0, lo, -np.inf)
        return lo

    def _p_alive(self, params: np.ndarray, x: np.ndarray, tx: np.ndarray, T: np.ndarray) -> np.ndarray:
        return expit(-self._alive_log_odds_dead(params, x, tx, T))

    def probability_alive(self, data: Any, t: float = 0.0) -> pd.Series:
        """Probability that each customer is alive at ``T + t``.

        ``t = 0`` is FHL (2005) eq. (P(alive), the reciprocal of the denominator of eq. 10);
        Batislam et al. (2007) eq. 5 for MBG/NBD:
        ``P(alive) = 1 / (1 + d * a/(b+x+m-1) * ((alpha+T)/(alpha+t_x))^(r+x))``.
        For ``t > 0`` the customer is assumed to make no purchase in ``(T, T+t]`` (as in
        pymc-marketing's ``expected_probability_alive(future_t=...)``); since BG/NBD dropout happens
        only at purchases, this is the same formula with ``T + t``.

        Parameters
        ----------
        data : DataFrame
            Columns ``frequency``, ``recency``, ``T`` (in the model's time unit).
        t : float, array, Series or column name, default 0
            Periods ahead: one number, one value per customer (array in row order, Series
            indexed by customer id) or the name of a column of ``data``.

        Returns
        -------
        pd.Series
            Values in [0, 1], indexed like ``data``.
        """
        arr, index = self._prediction_input(data, context="probability_alive")
        params = self._rows_from_table(data, len(index), "probability_alive")
        t = self._horizon(t, data, index)
        pa = self._p_alive(params, arr["frequency"], arr["recency"], arr["T"] + t)
        return self._as_series(pa, index, "probability_alive")

    def _alive_beta(self, params: np.ndarray, x: np.ndarray) -> np.ndarray:
        b = params[3]
        return b + x + (1.0 if self._modified else 0.0)

    def _expected_purchases_arrays(
        self, params: np.ndarray, x: np.ndarray, tx: np.ndarray, T: np.ndarray, t: Any
    ) -> np.ndarray:
        r, alpha, a, b = params
        tt = np.broadcast_to(np.asarray(t, dtype=np.float64), x.shape)
        if x.size == 0 or not np.any(tt > 0):
            return np.zeros(x.shape)
        if np.ndim(alpha) or np.ndim(a) or np.ndim(b):
            # covariates: Q depends on (x, T, t) and the customer's (alpha_i, a_i, b_i)
            cols = [x, T, tt, *(np.broadcast_to(np.asarray(v, dtype=np.float64), x.shape) for v in (alpha, a, b))]
            (ux, uT, ut, ual, ua, ub), inv = unique_rows(cols)
            q = np.zeros(ux.shape)
            pos = ut > 0
            q[pos] = bg_alive_expectation(
                r + ux[pos], ua[pos], self._alive_beta((r, ual, ua, ub[pos]), ux[pos]),
                ut[pos] / (ual[pos] + uT[pos]),
            )
            return self._p_alive(params, x, tx, T) * q[inv]
        # Q depends on (x, T, t) only: evaluate it once per distinct triple
        (ux, uT, ut), inv = unique_rows([x, T, tt])
        q = np.zeros(ux.shape)
        pos = ut > 0
        q[pos] = bg_alive_expectation(
            r + ux[pos], a, self._alive_beta(params, ux[pos]), ut[pos] / (alpha + uT[pos])
        )
        return self._p_alive(params, x, tx, T) * q[inv]

    def expected_purchases(self, data: Any, t: float) -> pd.Series:
        """Expected number of purchases in the next ``t`` periods, given each customer's history.

        FHL (2005) eq. 10 (BG/NBD) and Batislam et al. (2007) eq. 6 / lifetimes'
        ``ModifiedBetaGeoFitter`` (MBG/NBD), evaluated as P(alive) times the alive customer's
        expectation :func:`bg_alive_expectation` on distinct ``(frequency, T)`` pairs.

        Parameters
        ----------
        data : DataFrame
            Columns ``frequency``, ``recency``, ``T`` (in the model's time unit).
        t : float, array, Series or column name
            Horizon in the model's time unit (``model.time_unit_``): one number, one value per
            customer (array in row order, Series indexed by customer id) or the name of a
            column of ``data`` such as ``"duration_holdout"``.

        Returns
        -------
        pd.Series
            Non-negative expected purchases, indexed like ``data``.
        """
        arr, index = self._prediction_input(data, context="expected_purchases")
        params = self._rows_from_table(data, len(index), "expected_purchases")
        t = self._horizon(t, data, index)
        vals = self._expected_purchases_arrays(params, arr["frequency"], arr["recency"], arr["T"], t)
        return self._as_series(vals, index, "expected_purchases")

    def expected_purchases_new_customer(self, t: Any, covariates: Any = None) -> pd.Series | float:
        """Expected repeat purchases in ``(0, t]`` of a customer just acquired.

        BG/NBD: FHL (2005) eq. 9, ``(a+b-1)/(a-1) [1 - (alpha/(alpha+t))^r 2F1(r, b; a+b-1;
        t/(alpha+t))]``. MBG/NBD: ``b/(a-1) [1 - (alpha/(alpha+t))^r 2F1(r, b+1; a+b;
        t/(alpha+t))]`` (Batislam et al. 2007), i.e. P(alive at 0) = b/(a+b) times the alive
        expectation.

        Parameters
        ----------
        t : float or array-like
            Horizon(s) in the model's time unit.
        covariates : dict or DataFrame, optional
            For a model with covariates: the prospect's covariates (a dict such as
            ``{"channel": "referral"}`` or a one-row frame); its ``alpha_i, a_i, b_i`` enter the
            formula. Several rows give one value per prospect (scalar ``t`` only).

        Returns
        -------
        float, or pd.Series indexed by ``t`` when ``t`` is array-like (by prospect for several
        prospects).
        """
        (r, alpha, a, b), index = self._prospect_params(covariates, "expected_purchases_new_customer")
        scalar = np.ndim(t) == 0
        tt = np.atleast_1d(self._horizon_array(t))
        if index is not None and not scalar:
            raise ParameterError("expected_purchases_new_customer: pass one horizon t for several prospects")
        alpha, a, b = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (alpha, a, b)))
        tt = np.broadcast_to(tt, np.broadcast_shapes(tt.shape, alpha.shape))
        zeros = np.zeros(tt.shape)
        q = bg_alive_expectation(r + zeros, a, self._alive_beta((r, alpha, a, b), zeros), tt / alpha)
        if self._modified:
            q = q * b / (a + b)
        if index is not None:
            return pd.Series(q, index=index, name="expected_purchases")
        if scalar:
            return float(q[0])
        return pd.Series(q, index=pd.Index(tt, name="t"), name="expected_purchases")

    def probability_of_purchases(self, data: Any, n: int, t: float) -> pd.Series:
        """Probability of exactly ``n`` purchases in the next ``t`` periods, given history.

        Given the history, the customer is dead with probability ``1 - P(alive)`` (then 0
        purchases) or alive with posterior ``lambda ~ Gamma(r+x, alpha+T)`` and
        ``p ~ Beta(a, b+x)`` (MBG: ``Beta(a, b+x+1)``), after which purchases follow a fresh
        BG/NBD process, so

        ``P(Y(t)=n | x, t_x, T) = (1 - P(alive)) 1{n=0} + P(alive) P_BG(n; r+x, alpha+T, a, b')``

        where ``P_BG`` is FHL (2005) eq. 8:
        ``B(a, b'+n)/B(a, b') NB(n; r', alpha'/(alpha'+t)) + 1{n>0} B(a+1, b'+n-1)/B(a, b')
        P(NB >= n)``, the negative-binomial tail being the regularised incomplete beta
        ``I_{t/(alpha'+t)}(n, r')``.

        Parameters
        ----------
        data : DataFrame
            Columns ``frequency``, ``recency``, ``T``.
        n : int
            Number of purchases (>= 0).
        t : float, array, Series or column name
            Horizon in the model's time unit: one number or one value per customer (see
            :meth:`expected_purchases`).

        Returns
        -------
        pd.Series
            Probabilities in [0, 1], indexed like ``data``.
        """
        if int(n) != n or n < 0:
            raise ParameterError(f"n must be a whole number >= 0; got {n!r}")
        n = int(n)
        arr, index = self._prediction_input(data, context="probability_of_purchases")
        params = self._rows_from_table(data, len(index), "probability_of_purchases")
        r, alpha, a, _ = params
        t = self._horizon(t, data, index)
        x, tx, T = arr["frequency"], arr["recency"], arr["T"]
        pa = self._p_alive(params, x, tx, T)
        rp = r + x
        ap = alpha + T
        bp = self._alive_beta(params, x)
        alive_pmf = self._bg_pmf(rp, ap, a, bp, n, t)
        out = pa * alive_pmf + (1.0 - pa) * (1.0 if n == 0 else 0.0)
        return self._as_series(np.clip(out, 0.0, 1.0), index, "probability_of_purchases")

    @staticmethod
    def _bg_pmf(r: Any, alpha: Any, a: Any, b: Any, n: int, t: Any) -> np.ndarray:
        """FHL (2005) eq. 8 in log space: P(X(t) = n) for a BG/NBD customer alive at 0."""
        r, alpha, a, b, t = np.broadcast_arrays(
            *(np.asarray(v, dtype=np.float64) for v in (r, alpha, a, b, t))
        )
        if not np.any(t > 0):
            return np.full(r.shape, 1.0 if n == 0 else 0.0)
        at_zero = t == 0
        t = np.where(at_zero, 1.0, t)  # rows with t = 0 are set below
        log_p0 = np.log(alpha) - np.log(alpha + t)  # log(alpha/(alpha+t))
        log_z = np.log(t) - np.log(alpha + t)
        nb = np.full(r.shape, float(n))
        log_first = (
            log_gamma_ratio(b, nb)
            - log_gamma_ratio(a + b, nb)
            + log_gamma_ratio(r, nb)
            - gammaln(n + 1.0)
            + r * log_p0
            + n * log_z
        )
        out = np.exp(log_first)
        if n > 0:
            # B(a+1, b+n-1)/B(a, b) = a/(a+b+n-1) * B(a, b+n-1)/B(a, b)
            nm1 = np.full(r.shape, n - 1.0)
            log_beta_ratio = (
                np.log(a) - np.log(a + b + n - 1.0) + log_gamma_ratio(b, nm1) - log_gamma_ratio(a + b, nm1)
            )
            tail = betainc(float(n), r, np.exp(log_z))  # P(NB(r, alpha/(alpha+t)) >= n)
            out = out + np.exp(log_beta_ratio) * tail
        return np.where(at_zero, 1.0 if n == 0 else 0.0, out)

    def probability_of_purchases_new_customer(self, n: int, t: float, covariates: Any = None) -> float:
        """P(X(t) = n) for a newly acquired customer: FHL (2005) eq. 8 (MBG: Batislam et al.).

        ``covariates`` (a dict or one-row frame) describes the prospect of a covariate model.
        """
        (r, alpha, a, b), index = self._prospect_params(covariates, "probability_of_purchases_new_customer")
        if index is not None:
            raise ParameterError("probability_of_purchases_new_customer takes one prospect")
        alpha, a, b = (float(np.asarray(v).reshape(-1)[0]) for v in (alpha, a, b))
        t = self._check_horizon(t)
        if int(n) != n or n < 0:
            raise ParameterError(f"n must be a whole number >= 0; got {n!r}")
        n = int(n)
        if self._modified:
            pa = b / (a + b)
            alive = float(self._bg_pmf(r, alpha, a, b + 1.0, n, t))
            return pa * alive + (1.0 - pa) * (1.0 if n == 0 else 0.0)
        return float(self._bg_pmf(r, alpha, a, b, n, t))


_BG_BLOCKS = (
    ("purchase", "purchase_covariates", (("alpha", -1.0),)),
    ("dropout", "dropout_covariates", (("a", 1.0), ("b", 1.0))),
)


class _BetaGeoCovariates(TwoProcessCovariatesMixin, _BetaGeoFamily):
    """BG/NBD family with static covariates (constructor shared by both public classes)."""

    _covariate_blocks = _BG_BLOCKS


class BetaGeoModel(_BetaGeoCovariates):
    """BG/NBD model (Fader, Hardie & Lee 2005, Marketing Science 24(2)).

    Parameters
    ----------
    penalizer_coef : float, default 0.0
        Optional L2 penalty (lifetimes' definition, see :class:`~custvalue.models.base.BaseModel`).
    time_unit : str, optional
        Time unit of the summary; default from ``data.attrs["freq"]``, else days.
    purchase_covariates, dropout_covariates, covariate_reference
        Static covariates (see :class:`~custvalue.models._covariates.CovariateModelMixin`):
        ``alpha_i = alpha exp(-gamma_purchase' z_i)``; ``a_i = a exp(gamma_dropout' z_i)`` and
        ``b_i = b exp(gamma_dropout' z_i)`` as in CLVTools' ``bgnbd_staticcov``.

    Attributes
    ----------
    params_ : pd.Series
        ``r, alpha`` (Gamma purchase-rate heterogeneity, alpha in the time unit) and ``a, b``
        (Beta dropout-probability heterogeneity).

    Examples
    --------
    >>> model = BetaGeoModel().fit(rfm)                       # doctest: +SKIP
    >>> model.expected_purchases(rfm, t=52)                   # doctest: +SKIP
    """

    _model_name = "BG/NBD, Fader, Hardie & Lee 2005"
    _modified = False


class ModifiedBetaGeoModel(_BetaGeoCovariates):
    """MBG/NBD model (Batislam, Denizel & Filiztekin 2007), as lifetimes' ModifiedBetaGeoFitter.

    Like BG/NBD, but a customer may drop out right after the first purchase, so customers with
    ``frequency == 0`` can be inactive (P(alive) < 1).

    Parameters
    ----------
    penalizer_coef : float, default 0.0
    time_unit : str, optional
    purchase_covariates, dropout_covariates, covariate_reference
        Static covariates, as for :class:`BetaGeoModel`.
    """

    _model_name = "MBG/NBD, Batislam, Denizel & Filiztekin 2007"
    _modified = True
