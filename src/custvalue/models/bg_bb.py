"""Beta-geometric / beta-Bernoulli (BG/BB) model for discrete-time, non-contractual settings.

Fader, P. S., Hardie, B. G. S. & Shang, J. (2010), "Customer-Base Analysis in a Discrete-Time
Noncontractual Setting", *Marketing Science* 29(6), 1086-1108 (FHS 2010 below).

Each customer has ``n`` transaction opportunities (yearly fund-raising drives, weekly events, ...).
While alive, a customer transacts at each opportunity with probability ``p``; after each
opportunity the customer dies ("drops out") with probability ``theta``. Across customers
``p ~ Beta(alpha, beta)`` and ``theta ~ Beta(gamma, delta)``.

The data per customer are ``frequency`` (x, number of opportunities with a transaction),
``recency`` (t_x, the opportunity of the last transaction, 0 when x = 0) and ``T`` (n, number of
opportunities observed). The maths lives in vectorised module-level functions (log-space, no loop
over customers); :class:`BetaGeoBetaBinomModel` wraps them in the package's fit / predict API.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy.special import betaln, digamma, gammaln, logsumexp

from .._special import hyp2f1_a1
from ..errors import DataValidationError, ParameterError
from .base import BaseModel

__all__ = [
    "BetaGeoBetaBinomModel",
    "bgbb_dert",
    "bgbb_expected_purchases",
    "bgbb_expected_purchases_new_customer",
    "bgbb_log_likelihood",
    "bgbb_probability_alive",
    "bgbb_probability_of_purchases",
]

# Rows x grid cells evaluated at once in the likelihood's finite sum (bounds memory use).
_GRID_CELLS = 4_000_000


def _as_float(*arrays: Any) -> list[np.ndarray]:
    return [np.asarray(a, dtype=float) for a in arrays]


def _log_sum_term(alpha, beta, gamma, delta, x, tx, n) -> np.ndarray:
    """log of sum_{i=0}^{n-t_x-1} B(a+x, b+t_x-x+i) B(g+1, d+t_x+i), second term of the likelihood.

    Parameters may be arrays broadcastable against the data (used for per-draw evaluation).
    Evaluated on a rectangular grid i = 0..max(n - t_x - 1) with cells beyond each row's upper
    limit masked to -inf, in chunks of rows so that memory stays bounded.
    """
    x, tx, n = np.broadcast_arrays(x, tx, n)
    alpha, beta, gamma, delta = np.broadcast_arrays(alpha, beta, gamma, delta, x)[:4]
    out = np.full(x.shape, -np.inf)
    x, tx, n = x.ravel(), tx.ravel(), n.ravel()
    a, b, g, d = alpha.ravel(), beta.ravel(), gamma.ravel(), delta.ravel()
    res = out.reshape(-1)
    upper = n - tx - 1  # last i of the sum; < 0 means an empty sum
    if upper.size == 0 or upper.max() < 0:
        return out
    width = int(upper.max()) + 1
    step = max(1, _GRID_CELLS // width)
    i = np.arange(width, dtype=float)[None, :]
    for lo in range(0, x.size, step):
        sl = slice(lo, lo + step)
        xs, txs, ds = x[sl, None], tx[sl, None], d[sl, None]
        terms = betaln(a[sl, None] + xs, b[sl, None] + txs - xs + i) + betaln(
            g[sl, None] + 1.0, ds + txs + i
        )
        terms = np.where(i <= upper[sl, None], terms, -np.inf)
        res[sl] = logsumexp(terms, axis=1)
    return out


def bgbb_log_likelihood(alpha, beta, gamma, delta, frequency, recency, T) -> np.ndarray:
    """Per-customer log-likelihood of the BG/BB model.

    FHS 2010, sec. 2; eq. (1) of Fader & Hardie (2011), "Implementing the BG/BB Model for
    Customer-Base Analysis in Excel":

    .. math::

        L = \\frac{B(\\alpha+x, \\beta+n-x)}{B(\\alpha,\\beta)}
            \\frac{B(\\gamma, \\delta+n)}{B(\\gamma,\\delta)}
          + \\sum_{i=0}^{n-t_x-1} \\frac{B(\\alpha+x, \\beta+t_x-x+i)}{B(\\alpha,\\beta)}
            \\frac{B(\\gamma+1, \\delta+t_x+i)}{B(\\gamma,\\delta)}

    computed in log space (``betaln`` + ``logsumexp``), finite for any valid data.

    Parameters
    ----------
    alpha, beta, gamma, delta : float or array_like
        Model parameters (positive).
    frequency, recency, T : array_like
        x, t_x and n per customer (0 <= x <= t_x <= n, x = 0 iff t_x = 0).

    Returns
    -------
    numpy.ndarray
        log L per customer.
    """
    x, tx, n = _as_float(frequency, recency, T)
    alpha, beta, gamma, delta = _as_float(alpha, beta, gamma, delta)
    norm = betaln(alpha, beta) + betaln(gamma, delta)
    first = betaln(alpha + x, beta + n - x) + betaln(gamma, delta + n)
    second = _log_sum_term(alpha, beta, gamma, delta, x, tx, n)
    return np.logaddexp(first, second) - norm


def bgbb_probability_alive(alpha, beta, gamma, delta, frequency, recency, T, t=0) -> np.ndarray:
    """P(alive at opportunity n + t | x, t_x, n).

    FHS 2010, appendix eq. (A10) (as referenced by lifetimes):
    ``B(a+x, b+n-x)/B(a,b) * B(g, d+n+t)/B(g,d) / L(a,b,g,d | x, t_x, n)``.
    """
    x, tx, n, t = _as_float(frequency, recency, T, t)
    alpha, beta, gamma, delta = _as_float(alpha, beta, gamma, delta)
    ll = bgbb_log_likelihood(alpha, beta, gamma, delta, x, tx, n)
    log_num = (
        betaln(alpha + x, beta + n - x)
        - betaln(alpha, beta)
        + betaln(gamma, delta + n + t)
        - betaln(gamma, delta)
    )
    return np.clip(np.exp(log_num - ll), 0.0, 1.0)


def _log_ratio_sum(gamma, delta, n, t) -> np.ndarray:
    """log of sum_{k=1}^{t} B(g, d+n+k) / B(g, d)  (probability of being alive at n+k, summed).

    Closed form via the telescoping identity behind FHS 2010 eq. (13):
    ``d/(g-1) * G(g+d)/G(1+d) * [G(1+d+n)/G(g+d+n) - G(1+d+n+t)/G(g+d+n+t)]``; at g = 1 the
    limit ``d * (psi(1+d+n+t) - psi(1+d+n))`` is used.
    """
    gamma, delta, n, t = np.broadcast_arrays(*_as_float(gamma, delta, n, t))
    out = np.full(gamma.shape, -np.inf)
    pos = t > 0
    near_one = np.abs(gamma - 1.0) < 1e-8
    # g == 1: B(1, d+n+k)/B(1, d) = d / (d+n+k)
    m1 = pos & near_one
    if m1.any():
        d, nn, tt = delta[m1], n[m1], t[m1]
        out[m1] = np.log(d) + np.log(digamma(1 + d + nn + tt) - digamma(1 + d + nn))
    m2 = pos & ~near_one
    if m2.any():
        g, d, nn, tt = gamma[m2], delta[m2], n[m2], t[m2]
        la = gammaln(1 + d + nn) - gammaln(g + d + nn)
        lb = gammaln(1 + d + nn + tt) - gammaln(g + d + nn + tt)
        # (la - lb) has the sign of (1 - g); divide by (g - 1) -> positive overall
        # log|e^la - e^lb| computed stably
        big, small = np.maximum(la, lb), np.minimum(la, lb)
        log_diff = big + np.log1p(-np.exp(small - big))
        out[m2] = np.log(d) - np.log(np.abs(g - 1.0)) + gammaln(g + d) - gammaln(1 + d) + log_diff
    return out


def bgbb_expected_purchases(alpha, beta, gamma, delta, frequency, recency, T, t) -> np.ndarray:
    """Expected transactions in the next ``t`` opportunities, E[X(n, n+t) | x, t_x, n].

    FHS 2010, eq. (13):

    .. math::

        \\frac{1}{L} \\frac{B(\\alpha+x+1, \\beta+n-x)}{B(\\alpha,\\beta)}
        \\frac{\\delta}{\\gamma-1} \\frac{\\Gamma(\\gamma+\\delta)}{\\Gamma(1+\\delta)}
        \\left[\\frac{\\Gamma(1+\\delta+n)}{\\Gamma(\\gamma+\\delta+n)}
              - \\frac{\\Gamma(1+\\delta+n+t)}{\\Gamma(\\gamma+\\delta+n+t)}\\right]
    """
    x, tx, n, t = _as_float(frequency, recency, T, t)
    alpha, beta, gamma, delta = _as_float(alpha, beta, gamma, delta)
    ll = bgbb_log_likelihood(alpha, beta, gamma, delta, x, tx, n)
    log_p = betaln(alpha + x + 1, beta + n - x) - betaln(alpha, beta)
    return np.exp(log_p + _log_ratio_sum(gamma, delta, n, t) - ll)


def bgbb_expected_purchases_new_customer(alpha, beta, gamma, delta, t) -> np.ndarray:
    """Expected transactions in the first ``t`` opportunities of a new customer, E[X(t)].

    FHS 2010, mean of the distribution of X(n) in their eq. (7):
    ``alpha/(alpha+beta) * delta/(gamma-1) * [1 - G(g+d)/G(g+d+t) * G(1+d+t)/G(1+d)]``.
    """
    alpha, beta, gamma, delta, t = _as_float(alpha, beta, gamma, delta, t)
    mean_p = alpha / (alpha + beta)
    return mean_p * np.exp(_log_ratio_sum(gamma, delta, np.zeros_like(t), t))


def bgbb_probability_of_purchases(
    alpha, beta, gamma, delta, frequency, recency, T, n_purchases, t
) -> np.ndarray:
    r"""P(X(n, n+t) = k | x, t_x, n): probability of ``k`` transactions in the next ``t`` opportunities.

    FHS 2010 (conditional distribution of X(n, n+n*)); with L the likelihood,

    .. math::

        P = \delta_{k=0}\left(1 - \frac{B(\alpha+x, \beta+n-x)B(\gamma,\delta+n)}
                                      {B(\alpha,\beta)B(\gamma,\delta)L}\right)
          + \binom{t}{k} \frac{B(\alpha+x+k, \beta+n-x+t-k)}{B(\alpha,\beta)}
            \frac{B(\gamma, \delta+n+t)}{B(\gamma,\delta)L}
          + \sum_{i=k}^{t-1} \binom{i}{k} \frac{B(\alpha+x+k, \beta+n-x+i-k)}{B(\alpha,\beta)}
            \frac{B(\gamma+1, \delta+n+i)}{B(\gamma,\delta)L}

    (dead before the window; alive throughout; alive for ``i`` opportunities, then dead).
    ``k`` and ``t`` are whole numbers; evaluated in log space over a grid i = 0..t-1.
    """
    x, tx, n = _as_float(frequency, recency, T)
    alpha, beta, gamma, delta = (float(v) for v in (alpha, beta, gamma, delta))
    k, t = float(n_purchases), float(t)
    ll = bgbb_log_likelihood(alpha, beta, gamma, delta, x, tx, n)
    norm = betaln(alpha, beta) + betaln(gamma, delta)
    out = np.zeros(np.broadcast(x, tx, n).shape)
    if k > t:
        return out
    log_binom = gammaln(t + 1) - gammaln(k + 1) - gammaln(t - k + 1)
    alive_all = log_binom + betaln(alpha + x + k, beta + n - x + t - k) + betaln(gamma, delta + n + t)
    terms = [alive_all - norm - ll]
    if t > k:
        i = np.arange(k, t)[None, :]
        lb = gammaln(i + 1) - gammaln(k + 1) - gammaln(i - k + 1)
        grid = lb + betaln(alpha + x[..., None] + k, beta + n[..., None] - x[..., None] + i - k) + betaln(
            gamma + 1.0, delta + n[..., None] + i
        )
        terms.append(logsumexp(grid, axis=-1) - norm - ll)
    out = np.exp(logsumexp(np.stack(terms, axis=0), axis=0))
    if k == 0:
        p_alive = bgbb_probability_alive(alpha, beta, gamma, delta, x, tx, n, 0)
        out = out + (1.0 - p_alive)
    return np.clip(out, 0.0, 1.0)


def bgbb_dert(alpha, beta, gamma, delta, frequency, recency, T, discount_rate) -> np.ndarray:
    """Discounted expected residual transactions (DERT) per customer.

    FHS 2010, DERT expression:

    .. math::

        DERT(d) = \\frac{B(\\alpha+x+1, \\beta+n-x)}{B(\\alpha,\\beta)}
                  \\frac{B(\\gamma, \\delta+n+1)}{B(\\gamma,\\delta)(1+d)}
                  \\frac{{}_2F_1(1, \\delta+n+1; \\gamma+\\delta+n+1; 1/(1+d))}{L}

    i.e. the sum over future opportunities n+1, n+2, ... of the expected transaction there,
    discounted by ``(1+d)^-(k)`` for opportunity n+k. ``discount_rate`` is per opportunity.
    """
    x, tx, n, d = _as_float(frequency, recency, T, discount_rate)
    alpha, beta, gamma, delta = _as_float(alpha, beta, gamma, delta)
    if np.any(d <= 0):
        raise ParameterError(
            "discount_rate must be > 0 per opportunity (the sum over an infinite future diverges "
            "otherwise); pass e.g. 0.1 for 10% per opportunity"
        )
    ll = bgbb_log_likelihood(alpha, beta, gamma, delta, x, tx, n)
    z = 1.0 / (1.0 + d)
    log_a = (
        betaln(alpha + x + 1, beta + n - x)
        - betaln(alpha, beta)
        + betaln(gamma, delta + n + 1)
        - betaln(gamma, delta)
        - np.log1p(d)
    )
    f = hyp2f1_a1(delta + n + 1, gamma + delta + n + 1, z)
    return np.exp(log_a - ll) * f


def _bgbb_ll_grad(alpha, beta, gamma, delta, x, tx, n) -> tuple[np.ndarray, np.ndarray]:
    """Per-row log-likelihood and its gradient w.r.t. (alpha, beta, gamma, delta).

    The log-likelihood is ``logsumexp`` over the terms of the FHS 2010 likelihood minus the
    normalisers; its derivative is the softmax-weighted average of the terms' derivatives
    (each term is a sum of ``betaln``, whose derivatives are digamma differences).
    """
    a, b, g, d = (float(v) for v in (alpha, beta, gamma, delta))
    rows = x.size
    upper = n - tx - 1
    width = int(max(upper.max(initial=-1), -1)) + 1
    # column 0: the "alive through n" term, columns 1..width: the sum's terms i = 0..width-1
    i = np.arange(width, dtype=float)[None, :]
    xs, txs, ns = x[:, None], tx[:, None], n[:, None]
    valid = np.concatenate([np.ones((rows, 1), bool), i <= upper[:, None]], axis=1)
    terms = np.concatenate(
        [
            betaln(a + xs, b + ns - xs) + betaln(g, d + ns),
            betaln(a + xs, b + txs - xs + i) + betaln(g + 1.0, d + txs + i),
        ],
        axis=1,
    )
    terms = np.where(valid, terms, -np.inf)
    lse = logsumexp(terms, axis=1)
    w = np.exp(terms - lse[:, None])  # softmax weights, 0 on invalid cells
    da = np.concatenate(
        [digamma(a + xs) - digamma(a + b + ns), digamma(a + xs) - digamma(a + b + txs + i)], axis=1
    )
    db = np.concatenate(
        [digamma(b + ns - xs) - digamma(a + b + ns),
         digamma(b + txs - xs + i) - digamma(a + b + txs + i)],
        axis=1,
    )
    dg = np.concatenate(
        [digamma(g) - digamma(g + d + ns), digamma(g + 1.0) - digamma(g + d + txs + i + 1.0)],
        axis=1,
    )
    dd = np.concatenate(
        [digamma(d + ns) - digamma(g + d + ns),
         digamma(d + txs + i) - digamma(g + d + txs + i + 1.0)],
        axis=1,
    )
    norm = betaln(a, b) + betaln(g, d)
    dnorm = np.array(
        [
            digamma(a) - digamma(a + b),
            digamma(b) - digamma(a + b),
            digamma(g) - digamma(g + d),
            digamma(d) - digamma(g + d),
        ]
    )
    grad = np.stack(
        [np.sum(np.where(valid, w * m, 0.0), axis=1) for m in (da, db, dg, dd)], axis=1
    ) - dnorm[None, :]
    return lse - norm, grad


class BetaGeoBetaBinomModel(BaseModel):
    """BG/BB model for discrete transaction opportunities (FHS 2010).

    Parameters
    ----------
    penalizer_coef : float, default 0.0
        L2 penalty on the parameters (as in lifetimes).
    time_unit : str, optional
        Length of one transaction opportunity (e.g. ``"Y"`` for yearly drives). Only used to
        label results and by value calculations.

    Attributes
    ----------
    params_ : pandas.Series
        ``alpha, beta`` (Beta distribution of the transaction probability p) and ``gamma,
        delta`` (Beta distribution of the dropout probability theta).
    log_likelihood_, standard_errors_, covariance_, confidence_intervals_, aic_, bic_
        As for every :class:`~custvalue.models.base.BaseModel`.

    Notes
    -----
    ``fit(data)`` takes ``frequency`` (x), ``recency`` (t_x) and ``T`` (n, number of
    opportunities) per customer, and an optional ``weight`` column (number of identical
    customers, as in the published recency/frequency tables). Identical rows are compressed
    before fitting, so a million donors fit as fast as the few hundred distinct histories.

    Examples
    --------
    >>> from custvalue.datasets import load_donations
    >>> m = BetaGeoBetaBinomModel().fit(load_donations())     # doctest: +SKIP
    >>> m.params_.round(3).tolist()                            # doctest: +SKIP
    [1.204, 0.75, 0.657, 2.783]
    """

    _param_names: ClassVar[tuple[str, ...]] = ("alpha", "beta", "gamma", "delta")
    _data_columns: ClassVar[tuple[str, ...]] = ("frequency", "recency", "T")
    _integer_columns: ClassVar[tuple[str, ...]] = ("frequency", "recency", "T")
    _model_name: ClassVar[str] = "beta-geometric/beta-Bernoulli, Fader, Hardie & Shang 2010"
    contractual: ClassVar[bool] = False

    def fit(self, data: pd.DataFrame, *, weights: Any = None) -> BetaGeoBetaBinomModel:
        """Fit by maximum likelihood; ``data`` has ``frequency``, ``recency``, ``T`` (+ ``weight``).

        Raises
        ------
        DataValidationError
            Missing columns (with a hint for lifetimes' ``periods`` / ``weights`` names),
            negative or fractional counts, ``recency > T`` or ``frequency > recency``.
        """
        if isinstance(data, pd.DataFrame) and "T" not in data.columns:
            alias = next((c for c in ("periods", "n_periods", "n") if c in data.columns), None)
            if alias is not None:
                raise DataValidationError(
                    f"BetaGeoBetaBinomModel.fit needs a 'T' column (number of transaction "
                    f"opportunities); the frame has {alias!r} as in lifetimes - rename it: "
                    f"data.rename(columns={{{alias!r}: 'T', 'weights': 'weight'}})"
                )
        return super().fit(data, weights=weights)  # type: ignore[return-value]

    # ------------------------------------------------------------------ likelihood hooks
    def _log_likelihood_rows(self, log_params: np.ndarray, data: Any) -> np.ndarray:
        a, b, g, d = np.exp(log_params)
        return bgbb_log_likelihood(a, b, g, d, data["frequency"], data["recency"], data["T"])

    def _gradient_rows(self, log_params: np.ndarray, data: Any) -> np.ndarray:
        params = np.exp(log_params)
        x, tx, n = (np.asarray(data[c], dtype=float) for c in self._data_columns)
        out = np.empty((x.size, 4))
        width = int(max((n - tx).max(initial=0), 1))
        step = max(1, _GRID_CELLS // (width * 8))
        for lo in range(0, x.size, step):
            sl = slice(lo, lo + step)
            _, g = _bgbb_ll_grad(*params, x[sl], tx[sl], n[sl])
            out[sl] = g
        return out * params[None, :]  # chain rule to log-parameters

    def _initial_params(self, data: Any, weights: np.ndarray) -> np.ndarray:
        # method of moments for p from the purchase share among opportunities, mild dropout
        x, n = data["frequency"], np.maximum(data["T"], 1.0)
        share = float(np.clip(np.average(x / n, weights=weights), 0.05, 0.95))
        return np.array([share * 2.0, (1.0 - share) * 2.0, 1.0, 3.0])

    def _validate(self, data: Any, index: pd.Index) -> None:
        x, tx = data["frequency"], data["recency"]
        bad = x > tx
        if bad.any():
            ids = ", ".join(repr(i) for i in list(index[bad][:5]))
            raise DataValidationError(
                f"frequency exceeds recency for {int(bad.sum())} of {len(index)} customers "
                f"(customers {ids}): in the BG/BB data recency is the opportunity of the last "
                "transaction, so there can be at most `recency` transactions; check the columns"
            )
        bad = (tx > 0) & (x == 0)
        if bad.any():
            ids = ", ".join(repr(i) for i in list(index[bad][:5]))
            raise DataValidationError(
                f"{int(bad.sum())} customers have recency > 0 but frequency 0 (customers {ids}); "
                "recency must be 0 when there was no transaction"
            )

    # ------------------------------------------------------------------ predictions
    def _inputs(self, data: Any, context: str) -> tuple[list[np.ndarray], pd.Index]:
        arrays, index = self._prediction_input(data, context=context)
        return [arrays[c] for c in self._data_columns], index

    def probability_alive(self, data: pd.DataFrame, t: int = 0) -> pd.Series:
        """P(customer still alive at opportunity ``T + t``), FHS 2010 eq. (A10).

        Parameters
        ----------
        data : DataFrame
            ``frequency``, ``recency``, ``T`` per customer.
        t : int, array, Series or column name, default 0
            Opportunities after the end of the observation window: one whole number or one per
            customer (array in row order, Series indexed by customer id, column of ``data``).
        """
        (x, tx, n), index = self._inputs(data, "probability_alive")
        t = self._horizon(t, data, index, whole=True)
        vals = bgbb_probability_alive(*self._params_array(), x, tx, n, t)
        return self._as_series(vals, index, "probability_alive")

    def expected_purchases(self, data: pd.DataFrame, t: int) -> pd.Series:
        """Expected transactions in the next ``t`` opportunities, FHS 2010 eq. (13).

        ``t`` is one whole number of opportunities or one per customer (array in row order,
        Series indexed by customer id, or a column of ``data``).
        """
        (x, tx, n), index = self._inputs(data, "expected_purchases")
        t = self._horizon(t, data, index, whole=True)
        vals = bgbb_expected_purchases(*self._params_array(), x, tx, n, t)
        return self._as_series(vals, index, "expected_purchases")

    def probability_of_purchases(self, data: pd.DataFrame, n: int, t: int) -> pd.Series:
        """P(exactly ``n`` transactions in the next ``t`` opportunities) (FHS 2010).

        Parameters
        ----------
        data : DataFrame
            ``frequency``, ``recency``, ``T`` per customer.
        n : int
            Number of transactions (>= 0).
        t : int, array, Series or column name
            Number of future opportunities (>= 0), one or one per customer.
        """
        if not np.isfinite(float(n)) or float(n) < 0 or float(n) != round(float(n)):
            raise ParameterError(f"n must be a whole number >= 0; got {n!r}")
        (x, tx, T), index = self._inputs(data, "probability_of_purchases")
        t = self._horizon(t, data, index, whole=True)
        params = self._params_array()
        vals = self._per_distinct_horizon(
            t, len(index),
            lambda tv, rows: bgbb_probability_of_purchases(*params, x[rows], tx[rows], T[rows], n, tv),
        )
        return self._as_series(vals, index, "probability_of_purchases")

    def expected_purchases_new_customer(self, t: Any) -> float | np.ndarray:
        """Expected transactions in the first ``t`` opportunities of a new customer (FHS 2010)."""
        t_arr = self._horizon_array(t, unit="opportunities")
        vals = bgbb_expected_purchases_new_customer(*self._params_array(), t_arr)
        return float(vals) if np.ndim(vals) == 0 else vals

    def expected_residual_transactions(
        self, data: pd.DataFrame, discount_rate: float
    ) -> pd.Series:
        """Discounted expected residual transactions (DERT), FHS 2010.

        Parameters
        ----------
        data : DataFrame
            ``frequency``, ``recency``, ``T`` per customer.
        discount_rate : float
            Discount rate per opportunity (> 0); the transaction at opportunity ``T + k`` is
            discounted by ``(1 + discount_rate) ** -k``.

        Returns
        -------
        pandas.Series
            DERT per customer; multiply by the value per transaction for residual value.
        """
        d = self._check_rate(
            discount_rate, "per opportunity", "the sum over an infinite future diverges otherwise"
        )
        (x, tx, n), index = self._inputs(data, "expected_residual_transactions")
        vals = bgbb_dert(*self._params_array(), x, tx, n, d)
        return self._as_series(vals, index, "dert")

    #: Short alias used in the papers.
    dert = expected_residual_transactions
