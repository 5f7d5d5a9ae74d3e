"""Pareto/NBD with time-varying (piecewise-constant) covariates on both processes.

Bachmann, P., Meierer, M. & Näf, J. (2021), "The Role of Time-Varying Contextual Factors in
Latent Attrition Models for Customer Base Analysis", *Marketing Science* 40(4), 783-809
(BMN 2021 below), as implemented in R's CLVTools (``pnbd()`` on data with
``SetDynamicCovariates``). The plain model is Schmittlein, Morrison & Colombo (1987); see
:mod:`custvalue.models.pareto_nbd`.

Model
-----
Calendar time is cut into covariate periods (weeks, say); in period ``k`` customer ``i`` has
purchase covariates ``z_ik`` and dropout covariates ``w_ik``. While alive the customer buys as a
Poisson process with rate ``lambda_i * exp(gamma_p' z_i(t))`` and drops out with hazard
``mu_i * exp(gamma_d' w_i(t))``; ``lambda_i ~ Gamma(r, alpha)`` and ``mu_i ~ Gamma(s, beta)``
(shape, rate) as in the plain model. With covariates constant in time this is CLVTools' static
parameterisation ``alpha_i = alpha exp(-gamma_p' z_i)``, ``beta_i = beta exp(-gamma_d' w_i)``, and
with all coefficients at 0 it is the plain Pareto/NBD.

Time is measured from the customer's first purchase ("coming alive"). The covariates enter
through the *effective* times

.. math::

    A(t) = \\int_0^t e^{\\gamma_p' z(u)} du, \\qquad D(t) = \\int_0^t e^{\\gamma_d' w(u)} du,

both piecewise linear. Integrating ``lambda`` and ``mu`` out of the individual likelihood (as
BMN 2021 derive it) gives, for ``x`` repeat purchases at ``t_1..t_x`` and age ``T``,

.. math::

    L = \\frac{\\Gamma(r+x)\\alpha^r\\beta^s}{\\Gamma(r)} \\prod_j a(t_j)
        \\Big[ (\\alpha+A(T))^{-(r+x)}(\\beta+D(T))^{-s}
        + s \\int_{t_x}^{T} c(\\tau) (\\alpha+A(\\tau))^{-(r+x)} (\\beta+D(\\tau))^{-(s+1)} d\\tau \\Big]

with ``a = exp(gamma_p' z)``, ``c = exp(gamma_d' w)``. BMN 2021 (and CLVTools'
``pnbd_dyncov_LL_i``, as ``log F0 + log(F1 F2 + F3)``) write the death-time integral as a sum
over the covariate periods between the last purchase and ``T`` (the "auxiliary walk") of Gauss
hypergeometric differences; in period ``i`` of that walk ``A(tau) - A(t_x) = B_i + A_i tau`` and ``D(tau) = D_i + C_i tau``
(their ``A_i, C_i`` are our ``a, c`` in the period and their ``B_i(), D_i()`` the intercepts,
:func:`dynamic_walk_terms`). custvalue evaluates each period's integral directly in log space
with the same stable quadrature as the plain model
(:func:`custvalue._special.log_interval_integrals`: within a period both factors are shifted
powers), sums the periods with log-sum-exp, and differentiates analytically: the gradient with
respect to the coefficients follows from ``dA(tau)/dgamma_p = int_0^tau z e^{gamma_p' z}``.

Data layout (no loop over customers)
------------------------------------
All customers' covariate periods inside their estimation window are one flat set of rows
sorted by customer and time, with each row's clipped start ``lo`` and length; cumulative
effective times are sums over each customer's own rows (blocks of customers x periods), and the
periods after the last purchase are a second flat set of rows (the auxiliary walks). Customers
with identical walks (same ``x, t_x, T``, purchase-period covariates and covariate path from
their first purchase) are fitted once with a frequency weight, as the static models compress
identical rows; totals are correctly rounded, so the compressed fit is the uncompressed one.

Inputs
------
Transactions as :func:`custvalue.data.load_transactions` returns them (one purchase per customer
and calendar day, as CLVTools aggregates them) and a covariate table with one row per customer
and period: the customer id, the period's start date (CLVTools' ``Cov.Date``: periods are
"forward looking", ``[start, next start)``) and numeric covariate columns. All periods have one
length (the step between consecutive starts, e.g. 7 days), and each customer's periods must run
without gaps or overlaps from the period of the first purchase to the one holding the end of
the estimation window. Predictions beyond that (P(alive) later, expected purchases) need the
covariates of the future periods too, as in CLVTools (``predict(..., newdata=)``): the table
given to ``fit`` may run further, or a longer one is passed to the prediction.
"""

from __future__ import annotations

import base64
import json
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from scipy import optimize, stats
from scipy.special import digamma, gammaln

from .._special import log_interval_integrals
from .._time import DAYS_PER_UNIT, UNIT_NAMES, normalize_unit
from ..errors import ConvergenceError, DataValidationError, ModelNotFittedError, ParameterError
from ._covariates import CovariateEncoding, fit_encoding
from .base import BoundaryFitWarning, ModelSummary

__all__ = [
    "DynamicParetoNBDModel",
    "dynamic_pareto_nbd_log_likelihood",
    "dynamic_walk_terms",
]

_BASE = ("r", "alpha", "s", "beta")
_N_NODES = 32
_DAY_NS = 86_400_000_000_000
_GAMMA_BOUND = 20.0  # |coefficient| bound of the optimiser (a rate ratio of 5e8)
_EDGE = 8.0  # |coefficient| beyond which the effect counts as not identified (ratio 3000)
_WARM_CUSTOMERS = 20_000  # above this many customers, warm-start from a subset
_SUBSET = 8_000


# ============================================================================ walks (layout)
@dataclass
class _Walks:
    """Flat, parameter-free layout of the likelihood's data (module docstring).

    Times are in model units from each customer's first purchase. ``rows_*`` describe every
    covariate period inside ``[0, T]`` (sorted by customer and start); ``aux`` indexes the rows
    that overlap ``(t_x, T]``.
    """

    x: np.ndarray  # (n,) repeat purchases
    tx: np.ndarray  # (n,) age at the last purchase
    T: np.ndarray  # (n,) age at the end of the estimation window
    cust: np.ndarray  # (m,) customer position of each row
    lo: np.ndarray  # (m,) row start, clipped to [0, T]
    length: np.ndarray  # (m,) row length inside [0, T]
    zp: np.ndarray  # (m, p) purchase covariates
    zd: np.ndarray  # (m, q) dropout covariates
    zsum: np.ndarray  # (n, p) sum of purchase covariates at the repeat purchases
    seg_start: np.ndarray  # (n,) first row of each customer
    aux: np.ndarray  # (k,) rows overlapping (t_x, T]
    aux_off: np.ndarray  # (k,) from the row start to the integration start, max(lo, t_x) - lo
    aux_h: np.ndarray  # (k,) integration length inside the row

    @property
    def n(self) -> int:
        return int(self.x.size)

    @property
    def aux_cust(self) -> np.ndarray:
        return self.cust[self.aux]

    @property
    def row_pos(self) -> np.ndarray:
        """Position of each row within its customer's rows (0 = the first period)."""
        pos = self.__dict__.get("_row_pos")
        if pos is None:
            pos = np.arange(self.cust.size) - self.seg_start[self.cust]
            self.__dict__["_row_pos"] = pos
        return pos


def _build_walks(
    cust: np.ndarray,
    start: np.ndarray,
    end: np.ndarray,
    zp: np.ndarray,
    zd: np.ndarray,
    tx: np.ndarray,
    T: np.ndarray,
    purchase_cust: np.ndarray,
    purchase_time: np.ndarray,
) -> _Walks:
    """Layout from covariate periods and purchase times, all in model units from coming alive.

    ``cust, start, end`` (periods sorted by customer and start, covering ``[0, T]`` of each
    customer without gaps) and the repeat purchases ``purchase_cust, purchase_time``. Periods
    outside ``[0, T]`` are dropped; the one that starts exactly at ``T`` is kept (length 0) so
    that a purchase at ``T`` finds its covariates.
    """
    n = tx.size
    keep = (start <= T[cust]) & (end > 0.0)
    cust, start, end = cust[keep], start[keep], end[keep]
    zp, zd = zp[keep], zd[keep]
    lo = np.clip(start, 0.0, T[cust])
    hi = np.clip(end, 0.0, T[cust])
    length = hi - lo
    counts = np.bincount(cust, minlength=n)
    if np.any(counts == 0):  # pragma: no cover - the date front end checks coverage first
        raise DataValidationError("some customers have no covariate period in their window")
    seg_start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    # the period of each repeat purchase: last row of the customer with start <= time
    row_key = np.lexsort((start, cust))
    if not np.array_equal(row_key, np.arange(cust.size)):
        raise RuntimeError("covariate periods must be sorted by customer and start")
    order = np.lexsort((purchase_time, purchase_cust))
    pc, pt = purchase_cust[order], purchase_time[order]
    # searchsorted on (customer, start) pairs: offset each customer's starts by its rank
    span = float(max(np.max(np.abs(end)) if end.size else 1.0, np.max(T) if T.size else 1.0)) + 2.0
    key_rows = cust * span + start
    key_tx = pc * span + pt
    pos = np.searchsorted(key_rows, key_tx, side="right") - 1
    p = zp.shape[1]
    zsum = np.zeros((n, p))
    for j in range(p):
        zsum[:, j] = np.bincount(pc, weights=zp[pos, j], minlength=n)
    aux_mask = hi > tx[cust]
    aux = np.flatnonzero(aux_mask)
    aux_lo = np.maximum(lo[aux], tx[cust[aux]])
    return _Walks(
        x=np.bincount(pc, minlength=n).astype(np.float64),
        tx=tx.astype(np.float64),
        T=T.astype(np.float64),
        cust=cust.astype(np.int64),
        lo=lo,
        length=length,
        zp=np.ascontiguousarray(zp, dtype=np.float64),
        zd=np.ascontiguousarray(zd, dtype=np.float64),
        zsum=zsum,
        seg_start=seg_start.astype(np.int64),
        aux=aux,
        aux_off=aux_lo - lo[aux],
        aux_h=hi[aux] - aux_lo,
    )


def _subset(w: _Walks, pick: np.ndarray) -> _Walks:
    """The layout of the customers ``pick`` (sorted positions), rows renumbered."""
    new_code = np.full(w.n, -1, dtype=np.int64)
    new_code[pick] = np.arange(pick.size)
    keep = new_code[w.cust] >= 0
    row_map = np.cumsum(keep) - 1
    cust = new_code[w.cust[keep]]
    counts = np.bincount(cust, minlength=pick.size)
    aux_keep = keep[w.aux]
    return _Walks(
        x=w.x[pick], tx=w.tx[pick], T=w.T[pick], cust=cust, lo=w.lo[keep],
        length=w.length[keep], zp=w.zp[keep], zd=w.zd[keep], zsum=w.zsum[pick],
        seg_start=np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64),
        aux=row_map[w.aux[aux_keep]], aux_off=w.aux_off[aux_keep], aux_h=w.aux_h[aux_keep],
    )


def _compress_walks(w: _Walks) -> tuple[_Walks, np.ndarray]:
    """Distinct walks and, for every customer, the position of its walk among them.

    Two customers contribute identical likelihood terms when their ``(x, t_x, T)``, the sum of
    the purchase covariates at their repeat purchases (``zsum``; the only way purchase times
    enter, module docstring) and their whole sequence of covariate rows inside ``[0, T]``
    (start, length and covariates, aligned to their own first purchase) agree, so the fit runs
    on the distinct walks with frequency weights, as the static models compress identical
    ``(x, t_x, T)`` rows. The comparison is exact: every row is coded by its values, every
    customer becomes one row of (scalar code, row codes...) padded to the longest walk, and the
    distinct byte strings of those rows are the distinct walks (first-occurrence order).
    """
    n, m = w.n, w.cust.size
    if n == 0:
        return w, np.zeros(0, dtype=np.int64)
    from .base import unique_rows

    _, row_code = unique_rows([w.lo, w.length, *w.zp.T, *w.zd.T])
    _, cust_code = unique_rows([w.x, w.tx, w.T, *w.zsum.T])
    counts = np.bincount(w.cust, minlength=n)
    top = int(max(row_code.max(initial=0), cust_code.max(initial=0)))
    dtype = np.int32 if top < 2**31 - 1 else np.int64
    mat = np.full((n, int(counts.max()) + 1), -1, dtype=dtype)
    mat[:, 0] = cust_code
    mat[w.cust, 1 + np.arange(m) - w.seg_start[w.cust]] = row_code
    keys = np.ascontiguousarray(mat).view(np.dtype((np.void, mat.dtype.itemsize * mat.shape[1])))
    _, first, inverse = np.unique(keys.ravel(), return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")  # distinct walks in first-occurrence order
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    walk_of = rank[inverse.ravel()].astype(np.int64)
    return _subset(w, first[order]), walk_of


# ============================================================================ likelihood
def _lin(z: np.ndarray, g: np.ndarray) -> np.ndarray:
    """``z @ g`` without BLAS (its last digits would depend on the CPU and thread count)."""
    out = np.zeros(z.shape[0])
    for j in range(g.size):
        out += z[:, j] * g[j]
    return out


_PREFIX_BLOCK = 4_000_000  # cells of the customers x periods x columns block of _prefix_sums


def _prefix_sums(values: np.ndarray, w: _Walks, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-customer sums of the columns of ``values`` (one row per covariate period).

    Returns the sum over the customer's rows *before* each row in ``rows`` (sorted) and the
    customer's total. The rows of a block of customers are laid out as customers x periods
    and cumulated along the periods, so a customer's sums are sequential sums of its own rows:
    the same floating-point numbers whatever other customers are in the data (compression and
    subsets change nothing), unlike differences of one cumulative sum over everybody.
    """
    m, ncol = values.shape
    n = w.n
    pos = w.row_pos
    width = int(pos.max()) + 2 if m else 1
    before = np.empty((rows.size, ncol))
    total = np.zeros((n, ncol))
    per_block = max(1, _PREFIX_BLOCK // (width * max(ncol, 1)))
    for c0 in range(0, n, per_block):
        c1 = min(n, c0 + per_block)
        r0 = int(w.seg_start[c0])
        r1 = int(w.seg_start[c1]) if c1 < n else m
        flat = (w.cust[r0:r1] - c0) * width + pos[r0:r1] + 1
        mat = np.zeros(((c1 - c0) * width, ncol))
        mat[flat] = values[r0:r1]
        cube = mat.reshape(c1 - c0, width, ncol)
        np.cumsum(cube, axis=1, out=cube)
        total[c0:c1] = cube[:, -1, :]
        k0, k1 = np.searchsorted(rows, [r0, r1])
        if k1 > k0:
            before[k0:k1] = mat[flat[rows[k0:k1] - r0] - 1]
    return before, total


def _split(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Veltkamp's split ``a = hi + lo`` into two 26-bit halves (exact, no overflow below 1e290)."""
    c = 134217729.0 * a
    hi = c - (c - a)
    return hi, a - hi


def _exact_total(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``sum_i weights_i * values_i`` (per column of 2-D ``values``), correctly rounded.

    Every product is split exactly into ``p + e`` (Dekker's TwoProduct) and the sum of all of
    them is taken with :func:`math.fsum`, so the total is the exact sum rounded once: a fit on
    distinct walks with integer weights and a fit on every customer get bit-identical totals
    (and hence the same optimiser path), and the total does not depend on the order of the
    customers. Non-finite or huge values fall back to an ordinary sum.
    """
    v = values if values.ndim == 2 else values[:, None]
    w = np.asarray(weights, dtype=np.float64)
    with np.errstate(all="ignore"):
        big = float(np.max(np.abs(v))) if v.size else 0.0
    if not np.isfinite(big) or big > 1e290:
        out = np.einsum("i,ij->j", w, v)
    else:
        p = v * w[:, None]
        vh, vl = _split(v)
        wh, wl = _split(w)
        e = vl * wl[:, None] - (((p - vh * wh[:, None]) - vl * wh[:, None]) - vh * wl[:, None])
        out = np.array([math.fsum(p[:, j].tolist() + e[:, j].tolist()) for j in range(v.shape[1])])
    return out if values.ndim == 2 else out[0]


def _seg_totals(values: np.ndarray, cust: np.ndarray, n: int) -> np.ndarray:
    """Per-customer column sums of rows sorted by customer (zeros for customers without rows)."""
    out = np.zeros((n, values.shape[1]))
    if values.shape[0] == 0:
        return out
    starts = np.flatnonzero(np.r_[True, cust[1:] != cust[:-1]])
    out[cust[starts]] = np.add.reduceat(values, starts, axis=0)
    return out


def _seg_logsumexp(v: np.ndarray, cust: np.ndarray, n: int) -> np.ndarray:
    """``log sum exp`` of ``v`` per customer (rows sorted by customer); ``-inf`` for none."""
    out = np.full(n, -np.inf)
    if v.size == 0:
        return out
    starts = np.flatnonzero(np.r_[True, cust[1:] != cust[:-1]])
    who = cust[starts]
    vmax = np.maximum.reduceat(v, starts)
    vmax_rows = np.repeat(vmax, np.diff(np.r_[starts, v.size]))
    with np.errstate(invalid="ignore"):
        tot = np.add.reduceat(np.exp(v - vmax_rows), starts)
    out[who] = vmax + np.log(tot)
    return out


class _CustomerState(NamedTuple):
    """Per-customer quantities of the estimation window that predictions use."""

    x: np.ndarray
    A_T: np.ndarray
    D_T: np.ndarray
    log_p_alive: np.ndarray


@dataclass
class _State:
    """Per-customer and per-row quantities at one parameter vector."""

    a: np.ndarray
    c: np.ndarray
    A_start: np.ndarray
    D_start: np.ndarray
    A_T: np.ndarray
    D_T: np.ndarray
    log_E1: np.ndarray
    log_I: np.ndarray
    log_J: np.ndarray
    ll: np.ndarray
    log_bracket: np.ndarray
    grad: np.ndarray | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _evaluate(theta: np.ndarray, w: _Walks, need_grad: bool, n_nodes: int = _N_NODES) -> _State:
    """Log-likelihood per customer (and gradient w.r.t. ``(r, alpha, s, beta, gamma_p, gamma_d)``
    on the natural scale of ``r..beta``) for ``theta = (r, alpha, s, beta, gamma_p..., gamma_d...)``.
    """
    p, q = w.zp.shape[1], w.zd.shape[1]
    r, alpha, s, beta = (float(v) for v in theta[:4])
    gp, gd = np.asarray(theta[4:4 + p], float), np.asarray(theta[4 + p:4 + p + q], float)
    n = w.n
    a = np.exp(_lin(w.zp, gp))
    c = np.exp(_lin(w.zd, gd))
    la, lc = a * w.length, c * w.length
    k = w.aux
    cols = [la, lc]
    if need_grad:  # d/dgamma of the effective times: int z e^{gamma'z}, summed the same way
        cols += [la * w.zp[:, j] for j in range(p)] + [lc * w.zd[:, j] for j in range(q)]
    before, total = _prefix_sums(np.stack(cols, axis=1), w, k)
    A_start, D_start = before[:, 0], before[:, 1]  # at the auxiliary rows only
    A_T, D_T = total[:, 0], total[:, 1]
    x = w.x
    rx = r + x
    log_E1 = -rx * np.log(alpha + A_T) - s * np.log(beta + D_T)
    # death-time integral, one term per period of the auxiliary walk
    kc = w.cust[k]
    ak, ck = a[k], c[k]
    A_lo = A_start + ak * w.aux_off
    D_lo = D_start + ck * w.aux_off
    alpha_p = (alpha + A_lo) / ak
    beta_p = (beta + D_lo) / ck
    log_ppi, mom = log_interval_integrals(
        w.aux_h, alpha_p, rx[kc], beta_p, s + 1.0, moments=need_grad, n_nodes=n_nodes
    )
    log_ak, log_ck = np.log(ak), np.log(ck)
    log_I = -rx[kc] * log_ak - s * log_ck + log_ppi
    log_J = _seg_logsumexp(log_I, kc, n)
    log_sJ = math.log(s) + log_J
    log_bracket = np.logaddexp(log_E1, log_sJ)
    const = gammaln(rx) - gammaln(r) + r * math.log(alpha) + s * math.log(beta)
    ll = const + _lin(w.zsum, gp) + log_bracket
    st = _State(a, c, A_start, D_start, A_T, D_T, log_E1, log_I, log_J, ll, log_bracket)
    st.extra = {"A_lo": A_lo, "D_lo": D_lo}
    if not need_grad:
        return st
    p_alive = np.exp(log_E1 - log_bracket)
    p_dead = np.exp(log_sJ - log_bracket)  # 0 where there is no auxiliary walk
    # derivatives of log E1
    inv_aT = 1.0 / (alpha + A_T)
    inv_bT = 1.0 / (beta + D_T)
    dA_T = total[:, 2:2 + p]
    dD_T = total[:, 2 + p:]
    e1 = np.empty((n, 4 + p + q))
    e1[:, 0] = -np.log(alpha + A_T)
    e1[:, 1] = -rx * inv_aT
    e1[:, 2] = -np.log(beta + D_T)
    e1[:, 3] = -s * inv_bT
    e1[:, 4:4 + p] = -(rx * inv_aT)[:, None] * dA_T
    e1[:, 4 + p:] = -(s * inv_bT)[:, None] * dD_T
    # derivatives of log I_k (module docstring): E[.] over the normalised integrand
    e_inv_a = mom.inv_a / ak  # E[1/(alpha + A(tau))]
    e_inv_b = mom.inv_b / ck  # E[1/(beta + D(tau))]
    dI = np.empty((k.size, 4 + p + q))
    dI[:, 0] = -(log_ak + mom.log_a)
    dI[:, 1] = -rx[kc] * e_inv_a
    dI[:, 2] = -(log_ck + mom.log_b)
    dI[:, 3] = -(s + 1.0) * e_inv_b
    if p:
        dA_lo = before[:, 2:2 + p] + (ak * w.aux_off)[:, None] * w.zp[k]
        dI[:, 4:4 + p] = -rx[kc][:, None] * (
            w.zp[k] + e_inv_a[:, None] * dA_lo - ((alpha + A_lo) * e_inv_a)[:, None] * w.zp[k]
        )
    if q:
        dD_lo = before[:, 2 + p:] + (ck * w.aux_off)[:, None] * w.zd[k]
        dI[:, 4 + p:] = -s * w.zd[k] - (s + 1.0) * (
            e_inv_b[:, None] * dD_lo - ((beta + D_lo) * e_inv_b)[:, None] * w.zd[k]
        )
    wk = np.exp(log_I - log_J[kc])  # share of each period in J
    dJ = _seg_totals(wk[:, None] * dI, kc, n)
    grad = p_alive[:, None] * e1 + p_dead[:, None] * dJ
    grad[:, 2] += p_dead / s
    grad[:, 0] += digamma(rx) - digamma(r) + math.log(alpha)
    grad[:, 1] += r / alpha
    grad[:, 2] += math.log(beta)
    grad[:, 3] += s / beta
    grad[:, 4:4 + p] += w.zsum
    st.grad = grad
    return st


def dynamic_pareto_nbd_log_likelihood(
    params: Sequence[float], walks: _Walks, *, n_nodes: int = _N_NODES
) -> np.ndarray:
    """Per-customer log-likelihood of the Pareto/NBD with time-varying covariates.

    BMN 2021 (module docstring; CLVTools' ``pnbd_dyncov_LL_i``); all coefficients at 0 give the
    plain Pareto/NBD likelihood (Fader & Hardie 2005, eq. 11) exactly.

    Parameters
    ----------
    params : sequence of float
        ``r, alpha, s, beta`` followed by the purchase and the dropout coefficients.
    walks : _Walks
        The layout built by :meth:`DynamicParetoNBDModel.prepare` (``model.walks_``).
    n_nodes : int, default 32
        Gauss-Legendre nodes per period integral.

    Returns
    -------
    np.ndarray
        ``log L`` per customer, in the order of ``walks``.
    """
    return _evaluate(np.asarray(params, dtype=np.float64), walks, False, n_nodes).ll


def dynamic_walk_terms(params: Sequence[float], walks: _Walks) -> pd.DataFrame:
    """The terms of BMN 2021 / CLVTools for every period of every auxiliary walk.

    For period ``i`` (1 = the period of the last purchase) of customer ``customer``:
    ``A`` and ``C`` are ``exp(gamma_p' z)`` and ``exp(gamma_d' w)`` in the period (CLVTools'
    ``A_i``, ``C_i``), ``B = A(tau) - A(t_x) - A * tau`` and ``D = D(tau) - C * tau`` the
    intercepts of the effective times in the period (CLVTools' ``Bi()`` and ``Di()``, its
    ``dyncov_LL_reference.xlsx``), with ``tau`` the age; plus per customer ``A_tx = A(t_x)``
    (CLVTools' ``Bjsum``), ``A_T = A(T)`` (``Bksum``) and ``D_T = D(T)`` (``DkT``).
    """
    theta = np.asarray(params, dtype=np.float64)
    st = _evaluate(theta, walks, False)
    k = walks.aux
    kc = walks.cust[k]
    tau_lo = walks.lo[k] + walks.aux_off
    # A(t_x): the first auxiliary row of each customer starts at t_x
    A_lo, D_lo = st.extra["A_lo"], st.extra["D_lo"]
    first = np.r_[True, kc[1:] != kc[:-1]] if k.size else np.zeros(0, bool)
    A_tx = np.full(walks.n, np.nan)
    A_tx[kc[first]] = A_lo[first]
    i = np.arange(k.size) - np.flatnonzero(first).repeat(np.diff(np.r_[np.flatnonzero(first), k.size])) + 1
    return pd.DataFrame({
        "customer": kc,
        "i": i,
        "A": st.a[k],
        "B": A_lo - A_tx[kc] - st.a[k] * tau_lo,
        "C": st.c[k],
        "D": D_lo - st.c[k] * tau_lo,
        "A_tx": A_tx[kc],
        "A_T": st.A_T[kc],
        "D_T": st.D_T[kc],
    })


def _survival_integrals(
    cust: np.ndarray, length: np.ndarray, a: np.ndarray, c: np.ndarray, b0: np.ndarray,
    s: float, n: int,
) -> np.ndarray:
    """``sum_k a_k int_k (b0 / (b0 + D(tau) - D(0)))^s dtau`` per customer, in closed form.

    Rows ``k`` are consecutive covariate periods (sorted by customer and time) of ``length``
    with purchase and dropout multipliers ``a_k``, ``c_k``; ``b0`` is ``beta + D`` at the start
    of the first row of each row's customer. Within a period ``D`` is linear, so
    ``int_0^len (b0 / (B + c v))^s dv = (b0 / c) (b0 / B)^(s-1) (1 - (1 + c len / B)^(1-s)) / (s-1)``
    with ``B`` the value at the period start (the limit ``log(1 + c len / B)`` at ``s = 1``).
    This is the purchase-rate-weighted survival integral behind CLVTools' CET for the dynamic
    model and the new-customer expectation.
    """
    lc = c * length
    cs = np.cumsum(lc)
    excl = cs - lc
    starts = np.flatnonzero(np.r_[True, cust[1:] != cust[:-1]]) if cust.size else np.zeros(0, int)
    base = np.repeat(excl[starts], np.diff(np.r_[starts, cust.size]))
    B = b0 + (excl - base)
    u = np.log1p(lc / B)
    km = s - 1.0
    small = np.abs(km * u) < 1e-8
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        f = np.where(small, u * (1.0 - km * u / 2.0), -np.expm1(-km * u) / km)
    term = a / c * b0 * np.exp(-km * np.log(B / b0)) * f
    return np.bincount(cust, weights=term, minlength=n)


# ============================================================================ date front end
def _day_numbers(values: Any, what: str) -> np.ndarray:
    """Calendar days (int64 days since 1970-01-01) of date-like values; clear error otherwise."""
    try:
        ts = pd.to_datetime(pd.Series(np.asarray(values)), errors="raise")
    except (TypeError, ValueError) as exc:
        raise DataValidationError(f"{what} holds values that are not dates ({exc})") from None
    if ts.isna().any():
        bad = int(ts.isna().sum())
        raise DataValidationError(f"{what} has {bad} missing dates; fill or drop them")
    if getattr(ts.dt, "tz", None) is not None:
        ts = ts.dt.tz_localize(None)
    ns = ts.to_numpy(dtype="datetime64[ns]").astype(np.int64)
    return np.floor_divide(ns, _DAY_NS)


def _fmt_day(day: Any) -> str:
    return str(np.datetime64(int(day), "D"))


def _examples(values: Sequence[Any], k: int = 5) -> str:
    vals = list(values)
    shown = ", ".join(repr(v) for v in vals[:k])
    return shown + (f", ... ({len(vals)} in all)" if len(vals) > k else "")


@dataclass
class _Grid:
    """The covariate table of the fitted customers, sorted, as day numbers and arrays."""

    cust: np.ndarray  # position of the customer in the model's index
    start: np.ndarray  # day number of the period start
    step: int  # period length in days
    zp: np.ndarray
    zd: np.ndarray
    enc_p: CovariateEncoding
    enc_d: CovariateEncoding


@dataclass
class _Prepared:
    index: pd.Index
    first_day: np.ndarray
    last_day: np.ndarray
    end_day: int
    walks: _Walks  # one walk per customer, in the order of ``index``
    grid: _Grid
    distinct: _Walks | None = None  # the distinct walks (:func:`_compress_walks`)
    walk_of: np.ndarray | None = None  # (n,) position of each customer's walk in ``distinct``

    def compressed(self) -> tuple[_Walks, np.ndarray]:
        """Distinct walks and the customer -> walk map (computed once)."""
        if self.distinct is None or self.walk_of is None:
            self.distinct, self.walk_of = _compress_walks(self.walks)
        return self.distinct, self.walk_of


def _grid(
    covariates: pd.DataFrame,
    index: pd.Index,
    cov_customer_col: str,
    cov_date_col: str,
    p_cols: Sequence[str],
    d_cols: Sequence[str],
    step: int | None,
    what: str,
    encodings: tuple[CovariateEncoding, CovariateEncoding] | None = None,
) -> _Grid:
    """Validate the covariate table (columns, ids, regular periods), encode and sort it.

    The covariate columns become design columns with the encoding of the static-covariate
    models (:mod:`custvalue.models._covariates`: numbers as they are, categories as 0/1 dummies
    against a reference level, constant columns dropped); ``encodings`` learnt at fit are
    applied to later (prediction) tables.
    """
    if not isinstance(covariates, pd.DataFrame):
        raise DataValidationError(
            f"{what}: covariates must be a pandas DataFrame with one row per customer and period; "
            f"got {type(covariates).__name__}"
        )
    need = [cov_customer_col, cov_date_col, *dict.fromkeys([*p_cols, *d_cols])]
    missing = [c for c in need if c not in covariates.columns]
    if missing:
        raise DataValidationError(
            f"{what}: the covariate table lacks column(s) {missing}; it has "
            f"{list(covariates.columns)[:12]}. Name the id and period columns with "
            "covariate_customer_col= and covariate_date_col="
        )
    ids = covariates[cov_customer_col]
    if ids.isna().any():
        raise DataValidationError(
            f"{what}: the covariate table has {int(ids.isna().sum())} rows without a customer id"
        )
    pos = index.get_indexer(ids.to_numpy())
    unknown = pos < 0
    if unknown.any():
        who = pd.unique(ids.to_numpy()[unknown])
        raise DataValidationError(
            f"{what}: the covariate table has {len(who)} customer id(s) with no purchase in the "
            f"transactions (e.g. {_examples(who.tolist())}); check that both tables use the same "
            "ids (types too: 1 vs '1'), or drop those customers from the covariates"
        )
    days = _day_numbers(covariates[cov_date_col].to_numpy(), f"{what}: column {cov_date_col!r}")
    order = np.lexsort((days, pos))
    pos, days = pos[order], days[order]
    if encodings is None:
        encodings = (fit_encoding(covariates, p_cols, context=what),
                     fit_encoding(covariates, d_cols, context=what))
    enc_p, enc_d = encodings
    zp = enc_p.transform(covariates, context=what)[order]
    zd = enc_d.transform(covariates, context=what)[order]
    present = np.bincount(pos, minlength=len(index)) > 0
    if not present.all():
        who = index[~present]
        raise DataValidationError(
            f"{what}: {len(who)} of {len(index)} customers have no rows in the covariate table "
            f"(e.g. {_examples(who.tolist())}); every customer needs covariates for every period "
            "of the estimation window"
        )
    same = pos[1:] == pos[:-1]
    diffs = np.diff(days)[same]
    if step is None:
        if diffs.size == 0:
            raise DataValidationError(
                f"{what}: every customer has one covariate period, so the period length cannot "
                "be read from the table; pass period_days="
            )
        vals, counts = np.unique(diffs[diffs > 0], return_counts=True)
        if vals.size == 0:
            raise DataValidationError(f"{what}: all covariate periods share their start dates")
        step = int(vals[np.argmax(counts)])
    step = int(step)
    if step < 1:
        raise ParameterError(f"period_days must be a whole number of days >= 1; got {step}")
    within = np.flatnonzero(same)
    bad_over = within[diffs < step]
    bad_gap = within[diffs > step]
    if bad_over.size:
        rows = bad_over[:5]
        shown = ", ".join(
            f"{index[pos[i]]!r} ({_fmt_day(days[i])} and {_fmt_day(days[i + 1])})" for i in rows
        )
        raise DataValidationError(
            f"{what}: covariate periods overlap for {np.unique(pos[bad_over]).size} customer(s): "
            f"periods are {step} days long but these starts are closer (duplicates included): "
            f"{shown}. Keep one row per customer and period"
        )
    if bad_gap.size:
        rows = bad_gap[:5]
        shown = ", ".join(
            f"{index[pos[i]]!r} (after {_fmt_day(days[i])} the next is {_fmt_day(days[i + 1])})"
            for i in rows
        )
        raise DataValidationError(
            f"{what}: the covariate table has gaps for {np.unique(pos[bad_gap]).size} "
            f"customer(s): periods are {step} days long but periods are missing: {shown}. "
            "Add the missing periods"
        )
    return _Grid(cust=pos, start=days, step=step, zp=zp, zd=zd, enc_p=enc_p, enc_d=enc_d)


def _customer_bounds(grid: _Grid, n: int) -> tuple[np.ndarray, np.ndarray]:
    first = np.full(n, np.iinfo(np.int64).max)
    last = np.full(n, np.iinfo(np.int64).min)
    np.minimum.at(first, grid.cust, grid.start)
    np.maximum.at(last, grid.cust, grid.start)
    return first, last + grid.step  # covered: [first, last_end)


def _transactions_days(
    transactions: pd.DataFrame, customer_col: str, date_col: str, what: str
) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(transactions, tuple):
        raise ParameterError(
            "transactions is a tuple: load_transactions returns (transactions, quality); "
            "unpack it: `tx, quality = load_transactions(...)` and pass `tx`"
        )
    if not isinstance(transactions, pd.DataFrame):
        raise DataValidationError(
            f"{what}: transactions must be a pandas DataFrame (as load_transactions returns); "
            f"got {type(transactions).__name__}"
        )
    missing = [c for c in (customer_col, date_col) if c not in transactions.columns]
    if missing:
        raise DataValidationError(
            f"{what}: the transactions lack column(s) {missing}; they have "
            f"{list(transactions.columns)[:12]}. Name them with customer_col= and date_col="
        )
    ids = transactions[customer_col]
    if ids.isna().any():
        raise DataValidationError(
            f"{what}: {int(ids.isna().sum())} transactions have no customer id"
        )
    days = _day_numbers(transactions[date_col].to_numpy(), f"{what}: column {date_col!r}")
    return ids.to_numpy(), days


def _prepare(
    transactions: pd.DataFrame,
    covariates: pd.DataFrame,
    p_cols: Sequence[str],
    d_cols: Sequence[str],
    *,
    unit: str,
    observation_end: Any,
    customer_col: str,
    date_col: str,
    cov_customer_col: str,
    cov_date_col: str,
    period_days: int | None,
    what: str,
) -> _Prepared:
    ids, days = _transactions_days(transactions, customer_col, date_col, what)
    if ids.size == 0:
        raise DataValidationError(f"{what}: the transactions are empty")
    if observation_end is None:
        end_day = int(days.max())
    else:
        end_day = int(_day_numbers([observation_end], "observation_end")[0])
    keep = days <= end_day
    if not keep.any():
        raise DataValidationError(
            f"{what}: no transaction on or before observation_end={_fmt_day(end_day)}"
        )
    ids, days = ids[keep], days[keep]
    codes, uniq = pd.factorize(ids, sort=True)
    index = pd.Index(uniq, name=customer_col)
    # one purchase per customer and calendar day (CLVTools aggregates the same way)
    pairs = np.unique(np.stack([codes.astype(np.int64), days]), axis=1)
    pc, pd_ = pairs[0], pairs[1]
    n = len(index)
    first_day = np.full(n, np.iinfo(np.int64).max)
    np.minimum.at(first_day, pc, pd_)
    last_day = np.full(n, np.iinfo(np.int64).min)
    np.maximum.at(last_day, pc, pd_)
    grid = _grid(covariates, index, cov_customer_col, cov_date_col, p_cols, d_cols,
                 period_days, what)
    cov_first, cov_end = _customer_bounds(grid, n)
    late = cov_first > first_day
    short = cov_end <= end_day
    if late.any() or short.any():
        parts = []
        if late.any():
            i = np.flatnonzero(late)[:3]
            parts.append(
                f"{int(late.sum())} customer(s) have no covariates for the period of their first "
                "purchase (e.g. " + ", ".join(
                    f"{index[j]!r}: first purchase {_fmt_day(first_day[j])}, covariates from "
                    f"{_fmt_day(cov_first[j])}" for j in i) + ")"
            )
        if short.any():
            i = np.flatnonzero(short)[:3]
            parts.append(
                f"{int(short.sum())} customer(s) have covariates ending before the end of the "
                f"estimation window {_fmt_day(end_day)} (e.g. " + ", ".join(
                    f"{index[j]!r}: covered until {_fmt_day(cov_end[j] - 1)}" for j in i) + ")"
            )
        raise DataValidationError(
            f"{what}: periods are missing in the estimation window: " + "; ".join(parts)
            + ". Every customer needs one covariate row per period from the first purchase "
            "to the end of the window"
        )
    u = DAYS_PER_UNIT[unit]
    rel_start = (grid.start - first_day[grid.cust]) / u
    rel_end = (grid.start + grid.step - first_day[grid.cust]) / u
    T = (end_day - first_day) / u
    tx = (last_day - first_day) / u
    repeat = pd_ != first_day[pc]
    walks = _build_walks(
        grid.cust, rel_start, rel_end, grid.zp, grid.zd, tx, T,
        pc[repeat], (pd_[repeat] - first_day[pc[repeat]]) / u,
    )
    return _Prepared(index, first_day, last_day, end_day, walks, grid)


# ============================================================================ the model
class DynamicParetoNBDModel:
    """Pareto/NBD with time-varying covariates (Bachmann, Meierer & Näf 2021; CLVTools).

    Parameters
    ----------
    purchase_covariates, dropout_covariates : sequence of str
        Numeric columns of the covariate table that shift the purchase rate and the dropout
        rate. A covariate may act on both processes. Time-invariant ones (gender, channel) are
        given as columns that are constant per customer, as CLVTools does.
    time_unit : str, default "W"
        Unit of ``alpha`` and ``beta`` and of prediction horizons.
    penalizer_coef : float, default 0.0
        L2 penalty ``penalizer_coef * n * sum(gamma**2)`` on the coefficients only (CLVTools'
        ``reg.lambdas``); 0 is maximum likelihood.
    n_nodes : int, default 32
        Gauss-Legendre nodes per period integral.
    compress : bool, default True
        Fit on the distinct walks with frequency weights (customers whose ``(x, t_x, T)``,
        purchase-period covariates and whole covariate path from their first purchase agree
        contribute identical likelihood terms); ``False`` evaluates every customer (same
        estimates, for checking).

    Attributes
    ----------
    params_ : pd.Series
        ``r, alpha, s, beta`` then ``purchase:<col>`` and ``dropout:<col>`` coefficients.
    standard_errors_, confidence_intervals_, covariance_ :
        Inverse observed information; 95% Wald intervals (log scale for ``r..beta``, natural
        scale for the coefficients).
    effects_ : pd.DataFrame
        One row per coefficient: the multiplicative effect ``exp(gamma)`` on the purchase rate
        or on the dropout rate with its 95% interval, p-value and a sentence.
    log_likelihood_, static_log_likelihood_, lr_test_ :
        Log-likelihood, that of the plain Pareto/NBD on the same customers, and the
        likelihood-ratio test of all coefficients against it.
    index_ : pd.Index
        The fitted customers, in the order of every per-customer result.
    n_customers_, n_distinct_ : int
        Customers fitted and distinct walks the likelihood was evaluated on.
    """

    def __init__(
        self,
        purchase_covariates: Sequence[str] = (),
        dropout_covariates: Sequence[str] = (),
        *,
        time_unit: str = "W",
        penalizer_coef: float = 0.0,
        n_nodes: int = _N_NODES,
        compress: bool = True,
    ) -> None:
        for name, cols in (("purchase_covariates", purchase_covariates),
                           ("dropout_covariates", dropout_covariates)):
            if isinstance(cols, str):
                raise ParameterError(f"{name} must be a list of column names; got the string {cols!r}")
            if len(set(cols)) != len(list(cols)):
                raise ParameterError(f"{name} lists a column twice: {list(cols)}")
        if not list(purchase_covariates) and not list(dropout_covariates):
            raise ParameterError(
                "DynamicParetoNBDModel needs at least one purchase or dropout covariate; "
                "without covariates use ParetoNBDModel"
            )
        pen = float(penalizer_coef)
        if not math.isfinite(pen) or pen < 0:
            raise ParameterError(f"penalizer_coef must be finite and >= 0; got {penalizer_coef!r}")
        self.purchase_covariates = list(purchase_covariates)
        self.dropout_covariates = list(dropout_covariates)
        self.time_unit = normalize_unit(time_unit)
        self.penalizer_coef = pen
        self.n_nodes = int(n_nodes)
        self.compress = bool(compress)

    # ------------------------------------------------------------------ names
    def _names(self) -> list[str]:
        prep = getattr(self, "_prepared", None)
        tp = prep.grid.enc_p.terms if prep is not None else self.purchase_covariates
        td = prep.grid.enc_d.terms if prep is not None else self.dropout_covariates
        return [*_BASE, *(f"purchase:{c}" for c in tp), *(f"dropout:{c}" for c in td)]

    def _params_array(self) -> np.ndarray:
        params = getattr(self, "params_", None)
        if params is None:
            raise ModelNotFittedError(
                "DynamicParetoNBDModel has no parameters yet: call .fit(transactions, covariates)"
            )
        return params.to_numpy(dtype=np.float64)

    # ------------------------------------------------------------------ data
    def prepare(
        self,
        transactions: pd.DataFrame,
        covariates: pd.DataFrame,
        *,
        observation_end: Any = None,
        customer_col: str = "customer_id",
        date_col: str = "date",
        covariate_customer_col: str = "customer_id",
        covariate_date_col: str = "period_start",
        period_days: int | None = None,
    ) -> _Prepared:
        """Validate the inputs and build the likelihood's flat layout (see :meth:`fit`)."""
        return _prepare(
            transactions, covariates, self.purchase_covariates, self.dropout_covariates,
            unit=self.time_unit, observation_end=observation_end, customer_col=customer_col,
            date_col=date_col, cov_customer_col=covariate_customer_col,
            cov_date_col=covariate_date_col, period_days=period_days,
            what="DynamicParetoNBDModel",
        )

    # ------------------------------------------------------------------ fitting
    def fit(
        self,
        transactions: pd.DataFrame,
        covariates: pd.DataFrame,
        *,
        observation_end: Any = None,
        customer_col: str = "customer_id",
        date_col: str = "date",
        covariate_customer_col: str = "customer_id",
        covariate_date_col: str = "period_start",
        period_days: int | None = None,
    ) -> DynamicParetoNBDModel:
        """Fit by maximum likelihood (log ``r, alpha, s, beta``; coefficients as they are).

        Parameters
        ----------
        transactions : pd.DataFrame
            As :func:`custvalue.data.load_transactions` returns (``customer_id``, ``date``);
            several purchases of a customer on one calendar day count as one.
        covariates : pd.DataFrame
            One row per customer and period: id, period start date and the covariate columns
            (e.g. CLVTools' ``apparelDynCov`` with ``covariate_customer_col="Id"``,
            ``covariate_date_col="Cov.Date"``). Every customer of the transactions needs every
            period from the one of the first purchase to the one holding ``observation_end``;
            rows beyond are kept for predictions.
        observation_end : date-like, optional
            End of the estimation window (default: the last transaction date). Later
            transactions are ignored.
        customer_col, date_col : str
            Transaction columns.
        covariate_customer_col, covariate_date_col : str
            Covariate table columns.
        period_days : int, optional
            Period length in days (default: the common step between a customer's period starts).

        Returns
        -------
        self

        Raises
        ------
        DataValidationError
            Missing columns, non-numeric covariates, unknown or missing customers, overlapping
            or missing periods (the message names customers and dates).
        ConvergenceError
            The likelihood is not finite at the start or the optimiser fails.
        """
        from .pareto_nbd import ParetoNBDModel

        prep = self.prepare(
            transactions, covariates, observation_end=observation_end,
            customer_col=customer_col, date_col=date_col,
            covariate_customer_col=covariate_customer_col,
            covariate_date_col=covariate_date_col, period_days=period_days,
        )
        w = prep.walks
        summary = pd.DataFrame({"frequency": w.x, "recency": w.tx, "T": w.T})
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            static = ParetoNBDModel(time_unit=self.time_unit).fit(summary)
        self._prepared = prep
        self.index_ = prep.index
        self.observation_end_ = pd.Timestamp(np.datetime64(prep.end_day, "D"))
        self.covariate_columns_ = (covariate_customer_col, covariate_date_col)
        self.static_model_ = static
        self.static_log_likelihood_ = float(static.log_likelihood_)
        k = len(self._names())
        phi0 = np.concatenate([np.log(static.params_.to_numpy()), np.zeros(k - 4)])
        if self.compress:
            fw, walk_of = prep.compressed()
            wts = np.bincount(walk_of, minlength=fw.n).astype(np.float64)
        else:
            fw, walk_of, wts = w, np.arange(w.n), np.ones(w.n)
        self._fit_phi(phi0, fw, wts, walk_of, [str(c.message) for c in caught])
        return self

    def _objective(self, w: _Walks, wts: np.ndarray) -> Any:
        """Penalised weighted log-likelihood and its gradient on the optimiser's scale."""
        n = float(np.sum(wts))
        pen = self.penalizer_coef
        memo: dict[str, Any] = {}

        def both(phi: np.ndarray) -> tuple[float, np.ndarray]:
            key = phi.tobytes()
            if memo.get("key") != key:
                theta = phi.copy()
                theta[:4] = np.exp(phi[:4])
                with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
                    st = _evaluate(theta, w, True, self.n_nodes)
                g = _exact_total(st.grad, wts)
                g[:4] *= theta[:4]
                val = float(_exact_total(st.ll, wts))
                if pen:
                    val -= n * pen * float(np.sum(phi[4:] ** 2))
                    g[4:] -= 2.0 * n * pen * phi[4:]
                memo.update(key=key, value=(val, g), st=st)
            return memo["value"]

        return both, memo

    def _lbfgs(self, w: _Walks, wts: np.ndarray, phi0: np.ndarray) -> Any:
        both, _ = self._objective(w, wts)
        n = float(np.sum(wts))

        def fun(phi: np.ndarray) -> tuple[float, np.ndarray]:
            v, g = both(phi)
            if not np.isfinite(v) or not np.all(np.isfinite(g)):
                return 1e300, np.zeros_like(phi)
            return -v / n, -g / n

        k = phi0.size
        bounds = [(-30.0, 30.0)] * 4 + [(-_GAMMA_BOUND, _GAMMA_BOUND)] * (k - 4)
        return optimize.minimize(
            fun, phi0, jac=True, method="L-BFGS-B", bounds=bounds,
            options={"maxiter": 2000, "ftol": 1e-13, "gtol": 1e-7, "maxcor": 20},
        )

    def _fit_phi(self, phi0: np.ndarray, w: _Walks, wts: np.ndarray, walk_of: np.ndarray,
                 notes: list[str]) -> None:
        """L-BFGS-B from the plain Pareto/NBD fit, then Newton steps with a fixed Hessian.

        With more than ``_WARM_CUSTOMERS`` customers the optimiser first solves a seeded random
        subset of ``_SUBSET`` customers and takes the Newton steps on all customers with the
        subset's (rescaled) Hessian, as :class:`custvalue.models.base.BaseModel` does, so a big
        fit needs only a handful of full likelihood evaluations. ``w`` holds the distinct walks
        with weights ``wts``; ``walk_of`` maps customers to walks (the subset is drawn from
        customers, so the warm start does not depend on the compression).
        """
        both, _ = self._objective(w, wts)
        n_cust = float(np.sum(wts))
        v0, _ = both(phi0)
        if not np.isfinite(v0):
            raise ConvergenceError(
                "DynamicParetoNBDModel: the log-likelihood is not finite at the plain Pareto/NBD "
                "estimates; check the covariate values (very large values overflow exp(gamma*z); "
                "standardise them)"
            )
        big = w.n > _WARM_CUSTOMERS
        if big:
            rng = np.random.default_rng(2021)
            pick = rng.choice(walk_of.size, min(_SUBSET, walk_of.size), replace=False)
            sub_count = np.bincount(walk_of[pick], minlength=w.n)
            keep = np.flatnonzero(sub_count)
            sub, sub_wts = _subset(w, keep), sub_count[keep].astype(np.float64)
            res = self._lbfgs(sub, sub_wts, phi0)
            sub_both, _ = self._objective(sub, sub_wts)
            hess = self._hessian(sub_both, res.x) * (n_cust / float(np.sum(sub_wts)))
        else:
            res = self._lbfgs(w, wts, phi0)
            hess = self._hessian(both, res.x)
        phi = res.x.copy()
        phi_start = phi.copy()
        for _ in range(8 if big else 3):
            v, g = both(phi)
            try:
                step = np.linalg.solve(hess, -g)
            except np.linalg.LinAlgError:
                break
            if not np.all(np.isfinite(step)) or np.max(np.abs(step)) > 1.0:
                break
            cand = np.clip(phi + step, -_GAMMA_BOUND, _GAMMA_BOUND)
            cand[:4] = np.clip(phi[:4] + step[:4], -30.0, 30.0)
            v_new, _ = both(cand)
            if not np.isfinite(v_new) or v_new < v - 1e-12 * max(1.0, abs(v)):
                break
            phi = cand
            if np.max(np.abs(step)) < 1e-9:
                break
        if big:
            _, g = both(phi)
            if float(np.max(np.abs(g))) / n_cust > 1e-6:  # Newton did not finish: full L-BFGS-B
                res = self._lbfgs(w, wts, phi)
                phi = res.x.copy()
        if big or np.max(np.abs(phi - phi_start)) > 1e-4:  # else the Hessian is still exact
            hess = self._hessian(both, phi, central=not big)
        self._store(phi, hess, both, res, w, wts, notes)

    @staticmethod
    def _hessian(both: Any, phi: np.ndarray, central: bool = True) -> np.ndarray:
        """Differences of the analytic gradient (central; forward for big data)."""
        k = phi.size
        hess = np.empty((k, k))
        g0 = None if central else both(phi)[1]
        for j in range(k):
            h = (1e-5 if central else 2e-6) * max(1.0, abs(phi[j]))
            e = np.zeros(k)
            e[j] = h
            if central:
                hess[:, j] = (both(phi + e)[1] - both(phi - e)[1]) / (2.0 * h)
            else:
                hess[:, j] = (both(phi + e)[1] - g0) / h
        return (hess + hess.T) / 2.0

    def _store(self, phi: np.ndarray, hess: np.ndarray, both: Any, res: Any, w: _Walks,
               wts: np.ndarray, notes: list[str]) -> None:
        names = self._names()
        k = len(names)
        _, g = both(phi)
        theta = phi.copy()
        theta[:4] = np.exp(phi[:4])
        with np.errstate(all="ignore"):
            ll_rows = _evaluate(theta, w, False, self.n_nodes).ll
        ll = float(_exact_total(ll_rows, wts))
        n_cust = round(float(np.sum(wts)))
        if not np.isfinite(ll):
            raise ConvergenceError("DynamicParetoNBDModel: the log-likelihood at the optimum is not finite")
        # observed information on phi (log r..beta, gamma); gradient term for the log scale
        info = -(hess - np.diag(np.r_[g[:4], np.zeros(k - 4)]))
        info = (info + info.T) / 2.0
        vals, vecs = np.linalg.eigh(info)
        good = vals > max(abs(vals).max(), 1e-300) * 1e-10
        if good.all():
            cov_phi = np.linalg.inv(info)
        else:
            inv = np.where(good, 1.0 / np.where(good, vals, 1.0), 0.0)
            cov_phi = (vecs * inv) @ vecs.T
            notes.append(
                "the observed information is singular (a covariate without variation, or one "
                "that duplicates another?): standard errors use its pseudo-inverse"
            )
        cov_phi = (cov_phi + cov_phi.T) / 2.0
        jac = np.r_[theta[:4], np.ones(k - 4)]
        cov = cov_phi * np.outer(jac, jac)
        se = np.sqrt(np.clip(np.diag(cov), 0.0, None))
        se_phi = np.sqrt(np.clip(np.diag(cov_phi), 0.0, None))
        self.params_ = pd.Series(theta, index=names, name="estimate")
        self.covariance_ = pd.DataFrame(cov, index=names, columns=names)
        self._cov_phi = cov_phi
        self.standard_errors_ = pd.Series(se, index=names, name="std_error")
        self.confidence_intervals_ = self.conf_int(0.95)
        self.log_likelihood_ = ll
        self.n_customers_ = n_cust
        self.n_distinct_ = w.n
        self.aic_ = 2 * k - 2 * ll
        self.bic_ = k * math.log(max(n_cust, 1)) - 2 * ll
        df = k - 4
        lr = max(0.0, 2.0 * (ll - self.static_log_likelihood_))
        self.lr_test_ = {
            "statistic": lr,
            "df": df,
            "p_value": float(stats.chi2.sf(lr, df)),
            "log_likelihood_static": self.static_log_likelihood_,
            "log_likelihood": ll,
        }
        grad_norm = float(np.linalg.norm(g)) / max(n_cust, 1)
        self.diagnostics_ = {
            "converged": bool(res.success) or grad_norm < 1e-6,
            "optimizer_message": str(res.message),
            "iterations": int(res.nit),
            "gradient_norm_per_customer": grad_norm,
            "hessian_condition": float(np.linalg.cond(info)) if np.all(np.isfinite(info)) else float("inf"),
            "se_log_scale": dict(zip(names, se_phi.tolist(), strict=True)),
        }
        if not self.diagnostics_["converged"]:
            notes.append(f"the optimiser reported: {res.message}")
        edge = [nm for nm, v in zip(names[4:], phi[4:], strict=True) if abs(v) >= _EDGE]
        self.diagnostics_["boundary"] = edge
        if edge:
            msg = (
                "DynamicParetoNBDModel: the likelihood keeps rising as "
                + ", ".join(f"{nm} (at {self.params_[nm]:.3g})" for nm in edge)
                + " run(s) off towards infinity: the data are best described by a rate that is "
                "(almost) zero or infinite in the periods where the covariate is on, so the size "
                "of the effect is not identified and its standard error is not meaningful. Drop "
                "the covariate from that process, or set penalizer_coef > 0"
            )
            notes.append(msg)
            warnings.warn(msg, BoundaryFitWarning, stacklevel=3)
        self._notes = notes
        self.effects_ = self._effects(0.95)

    # ------------------------------------------------------------------ inference
    def conf_int(self, level: float = 0.95) -> pd.DataFrame:
        """Wald intervals: log scale for ``r, alpha, s, beta`` (always positive), natural scale
        for the coefficients."""
        if not 0 < level < 1:
            raise ParameterError(f"level must be between 0 and 1; got {level}")
        theta = self._params_array()
        cov_phi = getattr(self, "_cov_phi", None)
        if cov_phi is None:
            raise ModelNotFittedError("DynamicParetoNBDModel has no standard errors: fit it first")
        z = stats.norm.ppf(0.5 + level / 2.0)
        se_phi = np.sqrt(np.clip(np.diag(cov_phi), 0.0, None))
        phi = theta.copy()
        phi[:4] = np.log(theta[:4])
        lo, hi = phi - z * se_phi, phi + z * se_phi
        lo[:4], hi[:4] = np.exp(lo[:4]), np.exp(hi[:4])
        return pd.DataFrame({"lower": lo, "upper": hi}, index=self._names())

    def _effects(self, level: float) -> pd.DataFrame:
        theta = self._params_array()
        se = self.standard_errors_.to_numpy()
        z = stats.norm.ppf(0.5 + level / 2.0)
        rows = []
        pct = f"{100 * level:g}%"
        grid = self._prepared.grid
        where = {}
        for proc, enc, z_ in (("purchase", grid.enc_p, grid.zp), ("dropout", grid.enc_d, grid.zd)):
            for j, (term, col, lev) in enumerate(
                    zip(enc.terms, enc.term_columns, enc.term_levels, strict=True)):
                if lev is not None:
                    where[(proc, term)] = (f"in periods with {col} = {lev} (against "
                                           f"{enc.reference[col]})")
                elif np.isin(z_[:, j], (0.0, 1.0)).all():
                    where[(proc, term)] = f"in periods with {col} = 1 (against 0)"
                else:
                    where[(proc, term)] = f"with {col} one unit higher"
        for j, name in enumerate(self._names()[4:], start=4):
            process, col = name.split(":", 1)
            g, s_ = theta[j], se[j]
            with np.errstate(over="ignore"):  # an unidentified effect: s.e. in the hundreds
                ratio, lo, hi = (float(v) for v in np.exp([g, g - z * s_, g + z * s_]))
            pval = float(2 * stats.norm.sf(abs(g) / s_)) if s_ > 0 else float("nan")
            what = "buy" if process == "purchase" else "drop out"
            how = "as often" if process == "purchase" else "as fast"
            sentence = (
                f"{where[(process, col)]}, customers {what} {ratio:.3g} times {how} "
                f"({pct} CI {lo:.3g}-{hi:.3g})"
            )
            rows.append({
                "process": process, "covariate": col, "coefficient": g, "std_error": s_,
                "ratio": ratio, "lower": lo, "upper": hi, "p_value": pval, "sentence": sentence,
            })
        cols = ["process", "covariate", "coefficient", "std_error", "ratio", "lower", "upper",
                "p_value", "sentence"]
        return pd.DataFrame(rows, columns=cols).set_index(["process", "covariate"])

    def summary(self, level: float = 0.95) -> ModelSummary:
        """Estimates, standard errors, Wald intervals, the LR test against the plain model."""
        theta = self._params_array()
        ci = self.conf_int(level)
        pct = f"{100 * level:g}%"
        table = pd.DataFrame({
            "estimate": theta,
            "std_error": self.standard_errors_.to_numpy(),
            f"lower {pct}": ci["lower"].to_numpy(),
            f"upper {pct}": ci["upper"].to_numpy(),
        }, index=self._names())
        lr = self.lr_test_
        info = {
            "time unit": UNIT_NAMES[self.time_unit],
            "customers": self.n_customers_,
            "distinct walks": self.n_distinct_,
            "observation end": str(self.observation_end_.date()),
            "log-likelihood": self.log_likelihood_,
            "log-likelihood (no covariates)": self.static_log_likelihood_,
            "LR test": f"{lr['statistic']:.4g} on {lr['df']} df, p = {lr['p_value']:.3g}",
            "AIC": self.aic_,
            "BIC": self.bic_,
            "converged": self.diagnostics_["converged"],
        }
        notes = list(getattr(self, "_notes", []))
        notes += [str(s) for s in self.effects_["sentence"]]
        notes.append(
            "intervals for r, alpha, s, beta are Wald intervals on the log scale; for the "
            "coefficients on their own scale (exp of them for the rate ratios)"
        )
        return ModelSummary(
            "DynamicParetoNBDModel (Pareto/NBD with time-varying covariates, "
            "Bachmann, Meierer & Naef 2021)", table, info, notes)

    def __repr__(self) -> str:
        cov = f"purchase={self.purchase_covariates}, dropout={self.dropout_covariates}"
        if getattr(self, "params_", None) is None:
            return f"<DynamicParetoNBDModel({cov}): not fitted>"
        ps = ", ".join(f"{k}={v:.4g}" for k, v in self.params_.items())
        return f"<DynamicParetoNBDModel({cov}): {ps} [{self.time_unit}]>"

    # ------------------------------------------------------------------ predictions
    def _state(self) -> _CustomerState:
        """What predictions need per customer at the current parameters: ``x``, ``A(T)``,
        ``D(T)`` and ``log P(alive at T)``, evaluated on the distinct walks and expanded (cached
        per parameter vector)."""
        prep = getattr(self, "_prepared", None)
        if prep is None:
            raise ModelNotFittedError("DynamicParetoNBDModel has not been fitted")
        theta = self._params_array()
        cached = getattr(self, "_state_cache", None)
        if cached is not None and cached[0] is prep and cached[1] == theta.tobytes():
            return cached[2]
        walks, walk_of = prep.compressed()
        with np.errstate(all="ignore"):
            st = _evaluate(theta, walks, False, self.n_nodes)
        out = _CustomerState(
            x=walks.x[walk_of], A_T=st.A_T[walk_of], D_T=st.D_T[walk_of],
            log_p_alive=(st.log_E1 - st.log_bracket)[walk_of],
        )
        self._state_cache = (prep, theta.tobytes(), out)
        return out

    def _covariate_grid(self, covariates: pd.DataFrame | None, col_id: str | None,
                        col_date: str | None, what: str) -> _Grid:
        """A prediction covariate table validated and encoded as at fit (None: the fit's)."""
        prep = getattr(self, "_prepared", None)
        if prep is None:
            raise ModelNotFittedError("DynamicParetoNBDModel has not been fitted")
        if covariates is None:
            return prep.grid
        fit_id, fit_date = getattr(self, "covariate_columns_", ("customer_id", "period_start"))
        return _grid(covariates, prep.index, col_id or fit_id, col_date or fit_date,
                     self.purchase_covariates, self.dropout_covariates, prep.grid.step, what,
                     (prep.grid.enc_p, prep.grid.enc_d))

    def _future(self, t: float, covariates: pd.DataFrame | _Grid | None, col_id: str | None,
                col_date: str | None, what: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Rows of the prediction horizon ``(T, T + t]``: customer, length, a, c (model units)."""
        prep = self._prepared
        if isinstance(covariates, _Grid):  # already validated (customer_lifetime_value)
            grid = covariates
        else:
            grid = self._covariate_grid(covariates, col_id, col_date, what)
        u = DAYS_PER_UNIT[self.time_unit]
        end = prep.end_day
        horizon_days = t * u
        _, cov_end = _customer_bounds(grid, len(prep.index))
        short = cov_end < end + horizon_days
        if short.any():
            i = np.flatnonzero(short)[:3]
            need = _fmt_day(math.ceil(end + horizon_days) - 1)
            raise DataValidationError(
                f"{what}: predictions over {t:g} {UNIT_NAMES[self.time_unit]}s need covariates "
                f"until {need}, but {int(short.sum())} customer(s) have them only until (e.g. "
                + ", ".join(f"{prep.index[j]!r}: {_fmt_day(cov_end[j] - 1)}" for j in i)
                + "). Pass covariates= with the future periods (as CLVTools' newdata)"
            )
        s_day = grid.start.astype(np.float64)
        e_day = s_day + grid.step
        keep = (e_day > end) & (s_day < end + horizon_days)
        lo = np.maximum(s_day[keep], end)
        hi = np.minimum(e_day[keep], end + horizon_days)
        theta = self._params_array()
        p = prep.grid.enc_p.n_terms
        gp, gd = theta[4:4 + p], theta[4 + p:]
        a = np.exp(_lin(grid.zp[keep], gp))
        c = np.exp(_lin(grid.zd[keep], gd))
        return grid.cust[keep], (hi - lo) / u, a, c

    def _horizon(self, t: Any) -> float:
        try:
            value = float(t)
        except (TypeError, ValueError):
            raise ParameterError(f"t must be a number of {UNIT_NAMES[self.time_unit]}s; got {t!r}") from None
        if not math.isfinite(value) or value < 0:
            raise ParameterError(f"t must be finite and >= 0; got {t!r}")
        return value

    def probability_alive(
        self,
        t: float = 0.0,
        *,
        covariates: pd.DataFrame | None = None,
        covariate_customer_col: str | None = None,
        covariate_date_col: str | None = None,
    ) -> pd.Series:
        """P(alive) of each fitted customer at the end of the estimation window, or ``t`` later.

        ``P(alive at T) = E1 / (E1 + s J)`` (the alive term's share of the likelihood bracket,
        BMN 2021; CLVTools' ``pnbd_dyncov_palive``); ``t`` units later it is multiplied by
        ``((beta + D(T)) / (beta + D(T + t)))^s``, which needs the dropout covariates of the
        periods in ``(T, T + t]`` (from the table given to ``fit`` or ``covariates=``).
        """
        t = self._horizon(t)
        st = self._state()
        _, _, s, beta = self._params_array()[:4]
        log_p = st.log_p_alive
        if t > 0:
            cust, length, _, c = self._future(t, covariates, covariate_customer_col,
                                              covariate_date_col, "probability_alive")
            dD = np.bincount(cust, weights=c * length, minlength=len(self.index_))
            log_p = log_p - s * np.log1p(dD / (beta + st.D_T))
        return pd.Series(np.clip(np.exp(log_p), 0.0, 1.0), index=self.index_, name="probability_alive")

    def expected_purchases(
        self,
        t: float,
        *,
        covariates: pd.DataFrame | None = None,
        covariate_customer_col: str | None = None,
        covariate_date_col: str | None = None,
    ) -> pd.Series:
        """Expected purchases of each fitted customer in ``(T, T + t]`` (CLVTools' CET).

        Given alive at ``T``, ``lambda ~ Gamma(r + x, alpha + A(T))`` and ``mu ~ Gamma(s,
        beta + D(T))``; hence ``E = P(alive) (r+x)/(alpha+A(T)) * sum_k a_k int_k ((beta+D(T)) /
        (beta+D(tau)))^s dtau`` over the future periods, each integral in closed form
        (``D`` is linear in a period). Needs the covariates of ``(T, T + t]``.

        Parameters
        ----------
        t : float
            Horizon in the model's time unit.
        covariates : pd.DataFrame, optional
            A covariate table that covers the horizon (default: the one given to ``fit``).
        covariate_customer_col, covariate_date_col : str, optional
            Its id and period-start columns (default: the names given to ``fit``).
        """
        t = self._horizon(t)
        st = self._state()
        r, alpha, s, beta = self._params_array()[:4]
        n = len(self.index_)
        if t == 0:
            return pd.Series(np.zeros(n), index=self.index_, name="expected_purchases")
        cust, length, a, c = self._future(t, covariates, covariate_customer_col,
                                          covariate_date_col, "expected_purchases")
        # D at the start of each future row: D(T) + cumulative c * length of earlier rows
        order = np.lexsort((np.arange(cust.size), cust))
        cust, length, a, c = cust[order], length[order], a[order], c[order]
        integral = _survival_integrals(cust, length, a, c, beta + st.D_T[cust], s, n)
        p_alive = np.exp(st.log_p_alive)
        out = p_alive * (r + st.x) / (alpha + st.A_T) * integral
        return pd.Series(out, index=self.index_, name="expected_purchases")

    def expected_discounted_purchases(
        self,
        t: float,
        discount_rate: float,
        *,
        covariates: pd.DataFrame | None = None,
        covariate_customer_col: str | None = None,
        covariate_date_col: str | None = None,
        n_nodes: int = 8,
    ) -> pd.Series:
        """Discounted expected purchases in ``(T, T + t]`` (CLVTools' DECT for dyncov models).

        ``P(alive) (r+x)/(alpha+A(T)) sum_k a_k int_k exp(-delta (tau - T)) ((beta+D(T)) /
        (beta+D(tau)))^s dtau``: the expected purchases of :meth:`expected_purchases` with a
        continuous discount factor inside the integral, which is evaluated per covariate period
        by ``n_nodes``-point Gauss-Legendre (the integrand is smooth within a period). As in
        CLVTools, a time-varying model values a *finite* horizon, because covariates beyond the
        table are unknown; multiply by margin and expected spend for the customer value.

        Parameters
        ----------
        t : float
            Horizon in the model's time unit.
        discount_rate : float
            Continuously compounded rate per model time unit (an annual 10% in weeks is
            ``log(1.1) / (365.25 / 7)``); 0 gives :meth:`expected_purchases`.
        covariates : pd.DataFrame, optional
            A covariate table covering the horizon (default: the one given to ``fit``).
        """
        from .._special import gauss_legendre

        t = self._horizon(t)
        delta = float(discount_rate)
        if not math.isfinite(delta) or delta < 0:
            raise ParameterError(f"discount_rate must be finite and >= 0; got {discount_rate!r}")
        st = self._state()
        r, alpha, s, beta = self._params_array()[:4]
        n = len(self.index_)
        if t == 0:
            return pd.Series(np.zeros(n), index=self.index_, name="expected_discounted_purchases")
        cust, length, a, c = self._future(t, covariates, covariate_customer_col,
                                          covariate_date_col, "expected_discounted_purchases")
        order = np.lexsort((np.arange(cust.size), cust))
        cust, length, a, c = cust[order], length[order], a[order], c[order]
        starts = np.flatnonzero(np.r_[True, cust[1:] != cust[:-1]])
        reps = np.diff(np.r_[starts, cust.size])
        lc = c * length
        excl = np.cumsum(lc) - lc
        b0 = beta + st.D_T[cust]
        B = b0 + excl - np.repeat(excl[starts], reps)
        off = np.cumsum(length) - length
        off = off - np.repeat(off[starts], reps)  # time from T to the row start
        nodes, weights = gauss_legendre(int(n_nodes))
        v = length[:, None] * nodes[None, :]
        integrand = np.exp(-delta * (off[:, None] + v) - s * np.log1p(c[:, None] * v / B[:, None]))
        term = a * length * np.exp(-s * np.log(B / b0)) * np.einsum("ij,j->i", integrand, weights)
        integral = np.bincount(cust, weights=term, minlength=n)
        p_alive = np.exp(st.log_p_alive)
        out = p_alive * (r + st.x) / (alpha + st.A_T) * integral
        return pd.Series(out, index=self.index_, name="expected_discounted_purchases")

    # ------------------------------------------------------------------ value (CLV hook)
    time_varying = True  # customer_lifetime_value dispatches on this marker

    def _purchase_curve(self, t_ends: np.ndarray, grid: _Grid) -> np.ndarray:
        """Expected purchases ``E[X(T, T + t_k)]`` of every fitted customer at each horizon
        ``t_k`` (model units; one row per horizon), from one pass over the future periods.

        The same closed form per covariate period as :meth:`expected_purchases`, with every
        period clipped to ``(T, T + t_k]``.
        """
        t_ends = np.asarray(t_ends, dtype=np.float64)
        n = len(self.index_)
        out = np.zeros((t_ends.size, n))
        if t_ends.size == 0 or float(t_ends.max()) <= 0:
            return out
        st = self._state()
        r, alpha, s, beta = self._params_array()[:4]
        cust, length, a, c = self._future(float(t_ends.max()), grid, "", "",
                                          "customer_lifetime_value")
        order = np.lexsort((np.arange(cust.size), cust))
        cust, length, a, c = cust[order], length[order], a[order], c[order]
        starts = np.flatnonzero(np.r_[True, cust[1:] != cust[:-1]]) if cust.size else cust
        off = np.cumsum(length) - length
        off = off - np.repeat(off[starts], np.diff(np.r_[starts, cust.size]))  # from T
        b0 = beta + st.D_T[cust]
        scale = np.exp(st.log_p_alive) * (r + st.x) / (alpha + st.A_T)
        for k, t in enumerate(t_ends):  # one vectorised pass per horizon (not per customer)
            clipped = np.clip(t - off, 0.0, length)
            out[k] = scale * _survival_integrals(cust, clipped, a, c, b0, s, n)
        return out

    def expected_purchases_new_customer(
        self,
        t: Any,
        covariates: pd.DataFrame | Mapping[str, Any],
        *,
        prospect_col: str | None = None,
    ) -> float | np.ndarray | pd.Series:
        """Expected purchases of a newly acquired customer in ``(0, t]`` given its covariate path.

        A prospect acquired at the start of a covariate period, with covariates ``z_k`` (purchase)
        and ``w_k`` (dropout) in its ``k``-th period, buys while alive at ``lambda a_k`` and
        survives with ``(beta / (beta + D(tau)))^s`` (``mu`` integrated out), so
        ``E[X(t)] = (r / alpha) int_0^t a(tau) (beta / (beta + D(tau)))^s dtau``, in closed form
        per period (:func:`_survival_integrals`). With a constant path this is the plain
        Pareto/NBD's ``r beta_i / (alpha_i (s-1)) (1 - (beta_i / (beta_i + t))^(s-1))``
        (Schmittlein, Morrison & Colombo 1987, eq. 17) at ``alpha_i = alpha exp(-gamma_p' z)``,
        ``beta_i = beta exp(-gamma_d' w)``.

        Parameters
        ----------
        t : float or array_like
            Horizon(s) in the model's time unit (at most the length of the path).
        covariates : DataFrame or dict of columns
            The covariate columns of the model, one row per period of the model's period length
            (``period_days_``), in time order from the prospect's first period; several
            prospects are stacked with an id column named by ``prospect_col``.
        prospect_col : str, optional
            Column identifying prospects (rows of each keep their order).

        Returns
        -------
        float, np.ndarray or pd.Series
            A float for one prospect and a scalar ``t``; an array for an array ``t``; a Series
            indexed by prospect for several prospects (scalar ``t``).
        """
        prep = getattr(self, "_prepared", None)
        if prep is None:
            raise ModelNotFittedError("DynamicParetoNBDModel has not been fitted")
        what = "expected_purchases_new_customer"
        frame = covariates if isinstance(covariates, pd.DataFrame) else pd.DataFrame(covariates)
        if len(frame) == 0:
            raise DataValidationError(f"{what}: the covariate path has no rows")
        arr = np.asarray(t, dtype=np.float64)
        if not np.all(np.isfinite(arr)) or np.any(arr < 0):
            raise ParameterError(f"t must be finite and >= 0; got {t!r}")
        if prospect_col is not None:
            if prospect_col not in frame.columns:
                raise DataValidationError(
                    f"{what}: prospect_col={prospect_col!r} is not a column of the covariate "
                    f"path; it has {list(frame.columns)[:12]}")
            codes, ids = pd.factorize(frame[prospect_col], sort=False)
            index = pd.Index(ids, name=prospect_col)
            if arr.ndim:
                raise ParameterError(f"{what}: pass one horizon t for several prospects")
        else:
            codes, index = np.zeros(len(frame), dtype=np.int64), None
        order = np.argsort(codes, kind="stable")
        zp = prep.grid.enc_p.transform(frame, context=what)[order]
        zd = prep.grid.enc_d.transform(frame, context=what)[order]
        cust = codes[order].astype(np.int64)
        n = int(cust.max()) + 1
        period = prep.grid.step / DAYS_PER_UNIT[self.time_unit]
        counts = np.bincount(cust, minlength=n)
        horizon = float(arr.max()) if arr.size else 0.0
        if horizon > counts.min() * period * (1 + 1e-12):
            raise DataValidationError(
                f"{what}: a horizon of {horizon:g} {UNIT_NAMES[self.time_unit]}s needs "
                f"{math.ceil(horizon / period - 1e-12)} periods of {prep.grid.step} days, but the "
                f"path has {int(counts.min())}; add the later periods")
        theta = self._params_array()
        r, alpha, s, beta = theta[:4]
        p = prep.grid.enc_p.n_terms
        a = np.exp(_lin(zp, theta[4:4 + p]))
        c = np.exp(_lin(zd, theta[4 + p:]))
        starts = np.flatnonzero(np.r_[True, cust[1:] != cust[:-1]])
        pos = np.arange(cust.size) - np.repeat(starts, np.diff(np.r_[starts, cust.size]))
        off = pos * period
        b0 = np.full(cust.size, float(beta))
        vals = np.array([
            r / alpha * _survival_integrals(cust, np.clip(tk - off, 0.0, period), a, c, b0, s, n)
            for tk in np.atleast_1d(arr).ravel()
        ])
        if index is not None:
            return pd.Series(vals[0], index=index, name="expected_purchases")
        out = vals[:, 0]
        return float(out[0]) if arr.ndim == 0 else out.reshape(arr.shape)

    # ------------------------------------------------------------------ parameter draws
    def _log_mask(self) -> np.ndarray:
        """``r, alpha, s, beta`` are positive (log scale); the coefficients are not."""
        k = len(self._names())
        return np.r_[np.ones(4, dtype=bool), np.zeros(k - 4, dtype=bool)]

    def with_params(self, params: Mapping[str, float] | pd.Series) -> DynamicParetoNBDModel:
        """A copy on the same customers and covariates with other parameter values (no
        covariance); used by CLV intervals."""
        import copy

        names = self._names()
        vals = pd.Series(params, dtype=np.float64)
        missing = [nm for nm in names if nm not in vals.index]
        if missing:
            raise ParameterError(f"DynamicParetoNBDModel.with_params lacks {missing}")
        theta = vals[names].to_numpy()
        if not np.all(np.isfinite(theta)) or np.any(theta[:4] <= 0):
            raise ParameterError(
                f"DynamicParetoNBDModel: r, alpha, s, beta must be > 0 and all finite; got "
                f"{dict(zip(names, theta.tolist(), strict=True))}")
        new = copy.copy(self)
        new.__dict__.pop("_state_cache", None)
        new.params_ = pd.Series(theta, index=names, name="estimate")
        new.covariance_ = None
        new.standard_errors_ = None
        new._cov_phi = None
        return new

    def sample_params(self, n: int, seed: int | np.random.Generator | None = None) -> pd.DataFrame:
        """Draws from the asymptotic normal of ``(log r, log alpha, log s, log beta, gamma)``
        (the optimiser's scale, covariance = inverse observed information)."""
        cov_phi = getattr(self, "_cov_phi", None)
        if cov_phi is None:
            raise ParameterError(
                "DynamicParetoNBDModel has no parameter covariance (built with with_params?): "
                "fit it before sampling parameters")
        if int(n) < 1:
            raise ParameterError(f"n must be a positive integer; got {n!r}")
        theta = self._params_array()
        phi = theta.copy()
        phi[:4] = np.log(theta[:4])
        vals, vecs = np.linalg.eigh((cov_phi + cov_phi.T) / 2.0)
        root = vecs * np.sqrt(np.clip(vals, 0.0, None))
        z = np.random.default_rng(seed).standard_normal((int(n), theta.size))
        draws = phi + np.einsum("nk,jk->nj", z, root)  # einsum: no BLAS, same on every CPU
        draws[:, :4] = np.exp(draws[:, :4])
        return pd.DataFrame(draws, columns=self._names())

    # ------------------------------------------------------------------ persistence
    @property
    def n_unique_rows_(self) -> int:
        """Alias of ``n_distinct_`` (the name the other models' files use)."""
        return int(getattr(self, "n_distinct_", 0))

    @n_unique_rows_.setter
    def n_unique_rows_(self, value: int) -> None:
        self.n_distinct_ = int(value)

    def _options(self) -> dict[str, Any]:
        return {
            "purchase_covariates": list(self.purchase_covariates),
            "dropout_covariates": list(self.dropout_covariates),
            "time_unit": self.time_unit,
            "penalizer_coef": self.penalizer_coef,
            "n_nodes": self.n_nodes,
            "compress": self.compress,
        }

    def _extra_state(self) -> dict[str, Any]:
        """Everything predictions need beyond the parameters: the encodings, the fitted
        customers, their distinct walks and the covariate periods after the window."""
        prep = self._prepared
        walks, walk_of = prep.compressed()
        grid = prep.grid
        future = grid.start + grid.step > prep.end_day
        ids = prep.index
        return {
            "encodings": {"purchase": grid.enc_p.to_dict(), "dropout": grid.enc_d.to_dict()},
            "index": {"name": ids.name, "values": [_json_id(v) for v in ids.tolist()],
                      "dtype": str(ids.dtype)},
            "end_day": int(prep.end_day),
            "period_days": int(grid.step),
            "covariate_columns": list(getattr(self, "covariate_columns_",
                                              ("customer_id", "period_start"))),
            "observation_end": str(self.observation_end_.date()),
            "walks": {name: _encode_array(getattr(walks, name)) for name in _WALK_FIELDS},
            "walk_of": _encode_array(walk_of),
            "future": {"cust": _encode_array(grid.cust[future]),
                       "start": _encode_array(grid.start[future]),
                       "zp": _encode_array(grid.zp[future]), "zd": _encode_array(grid.zd[future])},
            "static_log_likelihood": self.static_log_likelihood_,
            "lr_test": dict(self.lr_test_),
            "effects": json.loads(self.effects_.reset_index().to_json(orient="split")),
        }

    def _restore_state(self, state: Mapping[str, Any]) -> None:
        try:
            enc_p = CovariateEncoding.from_dict(state["encodings"]["purchase"])
            enc_d = CovariateEncoding.from_dict(state["encodings"]["dropout"])
            idx = state["index"]
            index = pd.Index(idx["values"], name=idx["name"])
            if idx.get("dtype") and str(index.dtype) != idx["dtype"]:
                index = index.astype(idx["dtype"])
            walks = _Walks(**{name: _decode_array(state["walks"][name]) for name in _WALK_FIELDS})
            fut = state["future"]
            grid = _Grid(cust=_decode_array(fut["cust"]), start=_decode_array(fut["start"]),
                         step=int(state["period_days"]), zp=_decode_array(fut["zp"]),
                         zd=_decode_array(fut["zd"]), enc_p=enc_p, enc_d=enc_d)
            walk_of = _decode_array(state["walk_of"])
            eff = state["effects"]
            effects = pd.DataFrame(eff["data"], columns=eff["columns"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ParameterError(
                f"the DynamicParetoNBDModel file is incomplete or corrupt ({type(exc).__name__}: "
                f"{exc}); save the fitted model again") from None
        if walk_of.size != len(index) or (walk_of.size and walk_of.max() >= walks.n):
            raise ParameterError("the DynamicParetoNBDModel file is corrupt: the customer -> walk "
                                 "map does not match the walks; save the fitted model again")
        self._prepared = _Prepared(index=index, first_day=None, last_day=None,  # type: ignore[arg-type]
                                   end_day=int(state["end_day"]), walks=None,  # type: ignore[arg-type]
                                   grid=grid, distinct=walks, walk_of=walk_of)
        self.index_ = index
        self.observation_end_ = pd.Timestamp(state["observation_end"])
        self.covariate_columns_ = tuple(state["covariate_columns"])
        self.static_log_likelihood_ = float(state["static_log_likelihood"])
        self.lr_test_ = dict(state["lr_test"])
        self.effects_ = effects.set_index(["process", "covariate"])

    def _checked_params(self, params: Mapping[str, Any]) -> pd.Series:
        names = self._names()
        if set(params) != set(names):
            raise ParameterError(
                f"the DynamicParetoNBDModel file holds parameters {sorted(params)}, expected "
                f"{names}; it is corrupt or from another model")
        theta = np.array([float(params[nm]) for nm in names])
        if not np.all(np.isfinite(theta)) or np.any(theta[:4] <= 0):
            raise ParameterError("the DynamicParetoNBDModel file holds invalid parameters")
        return pd.Series(theta, index=names, name="estimate")

    def _set_covariance(self, cov: np.ndarray) -> None:
        names = self._names()
        if cov.shape != (len(names), len(names)):
            raise ParameterError("the DynamicParetoNBDModel file's covariance has the wrong shape")
        theta = self._params_array()
        jac = np.r_[theta[:4], np.ones(len(names) - 4)]
        self.covariance_ = pd.DataFrame(cov, index=names, columns=names)
        self._cov_phi = cov / np.outer(jac, jac)
        self.standard_errors_ = pd.Series(np.sqrt(np.clip(np.diag(cov), 0.0, None)),
                                          index=names, name="std_error")
        self.confidence_intervals_ = self.conf_int(0.95)

    def _unit(self) -> str:
        return self.time_unit

    def save(self, path: str | Path) -> None:
        """Write the fitted model as JSON in the format of :meth:`custvalue.models.BaseModel.save`
        (``"format": "custvalue-model"``; read back with :meth:`load` or
        :func:`custvalue.models.load_model`).

        Beyond parameters and covariance the file holds what predictions need: the fitted
        customers' ids, their distinct walks (binary arrays, base64) and the covariate periods
        after the estimation window, so a loaded model predicts exactly as the fitted one. It
        holds no transactions or dates beyond those.
        """
        from .base import BaseModel

        if getattr(self, "_prepared", None) is None or getattr(self, "log_likelihood_", None) is None:
            raise ModelNotFittedError("DynamicParetoNBDModel.save needs a fitted model: call .fit first")
        BaseModel.save(self, path)  # type: ignore[arg-type]

    @classmethod
    def load(cls, path: str | Path) -> DynamicParetoNBDModel:
        """Read a model written by :meth:`save`; a file of another model is refused."""
        from .base import BaseModel

        model = BaseModel.load.__func__(cls, path)  # type: ignore[attr-defined]
        model.n_customers_ = int(model.n_customers_)
        return model  # type: ignore[no-any-return]


_WALK_FIELDS = ("x", "tx", "T", "cust", "lo", "length", "zp", "zd", "zsum", "seg_start", "aux",
                "aux_off", "aux_h")


def _json_id(v: Any) -> Any:
    """A customer id as a JSON value (numpy scalars to Python)."""
    return v.item() if isinstance(v, np.generic) else v


def _encode_array(a: np.ndarray) -> dict[str, Any]:
    arr = np.ascontiguousarray(a)
    dtype = "<f8" if arr.dtype.kind == "f" else "<i8"
    raw = arr.astype(dtype).tobytes()
    return {"dtype": dtype, "shape": list(arr.shape), "base64": base64.b64encode(raw).decode("ascii")}


def _decode_array(d: Mapping[str, Any]) -> np.ndarray:
    dtype = str(d["dtype"])
    if dtype not in ("<f8", "<i8"):
        raise ValueError(f"unknown array dtype {dtype!r}")
    raw = base64.b64decode(d["base64"], validate=True)
    arr = np.frombuffer(raw, dtype=dtype).reshape([int(v) for v in d["shape"]])
    return arr.astype(np.float64 if dtype == "<f8" else np.int64)


def _register() -> None:
    """Let :func:`custvalue.models.load_model` read this model's files."""
    from .base import _MODEL_REGISTRY

    _MODEL_REGISTRY["DynamicParetoNBDModel"] = DynamicParetoNBDModel  # type: ignore[assignment]


_register()
