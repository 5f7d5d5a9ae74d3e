"""Pareto/NBD model of non-contractual repeat purchasing.

Schmittlein, D. C., Morrison, D. G. & Colombo, R. (1987), "Counting Your Customers: Who Are They
and What Will They Do Next?", *Management Science* 33(1), 1-24 (SMC 1987 below); the likelihood
and the conditional expressions as written by Fader, P. S. & Hardie, B. G. S. (2005), "A Note on
Deriving the Pareto/NBD Model and Related Expressions" (FH 2005 below); the conditional
distribution of future purchases from Fader, P. S., Hardie, B. G. S. & Shang, J. (2010),
"Customer-Base Analysis in a Discrete-Time Noncontractual Setting" and Fader & Hardie (2006),
"Deriving the Conditional PMF of the Pareto/NBD Model" (FH 2006 below); discounted expected
residual transactions from Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005), "RFM and CLV:
Using Iso-Value Curves for Customer Base Analysis", *Journal of Marketing Research* 42(4),
415-430 (FHL 2005 below).

Model: while alive a customer buys as a Poisson process with rate ``lambda``; the unobserved
lifetime is exponential with rate ``mu``; across customers ``lambda ~ Gamma(r, alpha)`` and
``mu ~ Gamma(s, beta)`` (shape, rate), independent. ``alpha`` and ``beta`` are in the model's time
unit. Data per customer: ``x`` = repeat purchases (``frequency``), ``t_x`` = age at the last
purchase (``recency``), ``T`` = age at the end of observation.

The likelihood (FH 2005 eq. 11 integrated over the death time ``tau``) is

.. math::

    L = \\frac{\\Gamma(r+x)\\alpha^r\\beta^s}{\\Gamma(r)} \\Big[ (\\alpha+T)^{-(r+x)}(\\beta+T)^{-s}
        + s \\int_{t_x}^{T} (\\alpha+\\tau)^{-(r+x)} (\\beta+\\tau)^{-(s+1)} d\\tau \\Big],

the first term for a customer still alive at ``T``, the second for one who died at ``tau``
between the last purchase and ``T``. FH 2005 (eq. 19-20) write the integral with Gauss
hypergeometric functions, in two cases ``alpha >= beta`` and ``alpha < beta``; lifetimes evaluates
those and overflows for heavy buyers. custvalue evaluates the integral itself in log space with a
substitution that makes the integrand smooth for any argument and Gauss-Legendre quadrature
(:func:`custvalue._special.log_power_product_integral`), accurate to ~1e-13 relative against
60-digit mpmath on extreme inputs; the gradient is an integral of the same kind on the same nodes.
The integral is ``G(x, t_x) - G(x, T)`` with ``G(x, y)`` the integral from ``y`` to infinity;
for the customers of one frequency (and one covariate pattern) ``G`` at all their ``t_x`` and ``T``
is one tail plus short integrals between neighbouring ages, which need 4 or 8 nodes
(:class:`custvalue._special.TailIntegrals`).
"""

from __future__ import annotations

import math
import warnings
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy.special import digamma, gammaln

from .._special import (
    TailIntegrals,
    gauss_legendre,
    log_tricomi_u_ss,
)
from ..errors import ParameterError
from ._covariates import TwoProcessCovariatesMixin
from .base import BaseModel, _dot

__all__ = [
    "ParetoNBDModel",
    "pareto_nbd_expected_purchases",
    "pareto_nbd_expected_purchases_new_customer",
    "pareto_nbd_expected_residual_transactions",
    "pareto_nbd_gradient",
    "pareto_nbd_log_likelihood",
    "pareto_nbd_probability_alive",
    "pareto_nbd_probability_of_purchases",
]

_COLUMNS = ("frequency", "recency", "T")
_KEY_LIMIT = 2.0**62  # columns get one int64 key below this many combinations


def _sorted_key(columns: list[np.ndarray]) -> np.ndarray | None:
    """One int64 key per row whose order is the rows' lexicographic order (each column's values
    factorised in sorted order, the codes combined in mixed radix), or ``None`` when the number of
    combinations would overflow the key."""
    key = np.zeros(np.asarray(columns[0]).size, dtype=np.int64)
    span = 1.0
    for col in columns:
        codes, levels = pd.factorize(np.asarray(col), sort=True)
        width = max(len(levels), 1)
        span *= width
        if span >= _KEY_LIMIT:
            return None
        key = key * width + codes
    return key


def _arrays(*values: Any) -> list[np.ndarray]:
    return [np.asarray(v, dtype=np.float64) for v in values]


class _PairLayout:
    """Unique ``(x, t_x)`` and ``(x, T)`` pairs of a set of rows.

    The death-time integral over ``[t_x, T]`` is ``G(x, t_x) - G(x, T)`` with
    ``G(x, y) = int_y^inf (alpha+tau)^-(r+x) (beta+tau)^-(s+1) dtau``, and ``G`` depends on the row
    only through the pair. A daily summary of a million customers has ~340,000 distinct
    ``(x, t_x, T)`` rows but only ~20,000 distinct pairs, so the quadrature runs on the pairs.
    The difference loses no accuracy that matters: ``s G(x, T)`` is at most the "alive" term of
    the likelihood, so the rounding error of the difference is a rounding error of the total.

    The pairs are ordered by (frequency, covariate pattern, ``y``): the pairs of one frequency
    and pattern share ``alpha_i``, ``beta_i`` and the exponents, so ``G`` at all their ``y`` is a
    sum of integrals between neighbouring ``y`` plus one tail
    (:class:`custvalue._special.TailIntegrals`, built once here and evaluated at every pass).
    """

    def __init__(
        self, x: np.ndarray, tx: np.ndarray, T: np.ndarray, groups: np.ndarray | None = None
    ) -> None:
        n = x.size
        x2, y2 = np.concatenate([x, x]), np.concatenate([tx, T])
        g2 = np.zeros(2 * n, dtype=np.int64) if groups is None else np.concatenate([groups, groups])
        # distinct (x, pattern, y), numbered in sorted order: (x, pattern) blocks, y ascending
        xc, ux = pd.factorize(x2, sort=True)
        keyx = xc.astype(np.int64) * (int(g2.max()) + 1 if g2.size else 1) + g2
        key = _sorted_key([keyx, y2])
        if key is not None:
            codes, ukey = pd.factorize(key, sort=True)
            first = np.empty(len(ukey), dtype=np.int64)
            first[codes[::-1]] = np.arange(codes.size - 1, -1, -1)
        else:  # too many distinct ages for one integer key
            order = np.lexsort((y2, keyx))
            ks, ys = keyx[order], y2[order]
            new = np.ones(order.size, dtype=bool)
            new[1:] = (ks[1:] != ks[:-1]) | (ys[1:] != ys[:-1])
            codes = np.empty(order.size, dtype=np.int64)
            codes[order] = np.cumsum(new) - 1
            first = order[new]
        codes = np.asarray(codes, dtype=np.int64)
        self.x = x2[first]
        self.y = y2[first]
        self.row = first % max(n, 1)  # a row of each pair (its covariate pattern)
        self.idx_tx = codes[:n]
        self.idx_T = codes[n:]
        # distinct x of the pairs: the gamma-function terms depend on x only (with covariates
        # there are many pairs per x, one set per covariate pattern)
        self.ux = np.asarray(ux, dtype=np.float64)
        self.ix = xc[first]
        self.tails = TailIntegrals(self.y, keyx[first])


def _layout(
    x: np.ndarray, tx: np.ndarray, T: np.ndarray, groups: np.ndarray | None = None
) -> _PairLayout:
    return _PairLayout(x, tx, T, groups)


def _core(r, alpha, s, beta, x, tx, T, layout=None, gradient=False, log_alpha=None, log_beta=None):
    """Per-row log-likelihood pieces, optionally with the gradient (natural scale).

    Everything that depends on a row only through ``(x, T)`` or ``(x, t_x)`` is computed once per
    pair and gathered; per row only the combination remains.

    ``alpha`` and ``beta`` are numbers, or one value per row (static covariates, CLVTools'
    ``alpha_i = alpha exp(-gamma' z_i)``, ``beta_i = beta exp(-gamma' z_i)``); then the pairs are
    formed per covariate pattern (``layout`` built with the row groups, or from the distinct
    ``(alpha_i, beta_i)``); ``log_alpha``, ``log_beta`` may then give their logs per row (the
    covariate models have them per pattern, which saves two logarithms per row).

    Returns ``(ll, log_alive, log_died, grad_or_None)``.
    """
    x, tx, T = _arrays(x, tx, T)
    r, s = float(r), float(s)
    scalar = np.ndim(alpha) == 0 and np.ndim(beta) == 0
    if scalar:
        alpha, beta = float(alpha), float(beta)
        if layout is None:
            layout = _layout(x, tx, T)
        alpha_p, beta_p = alpha, beta
        la0_p = la0 = math.log(alpha)
        lb0_p = lb0 = math.log(beta)
    else:
        alpha, beta = (np.broadcast_to(np.asarray(v, dtype=np.float64), x.shape) for v in (alpha, beta))
        if layout is None:
            from .base import unique_rows

            layout = _layout(x, tx, T, unique_rows([alpha, beta])[1])
        alpha_p, beta_p = alpha[layout.row], beta[layout.row]
        la0 = np.log(alpha) if log_alpha is None else np.asarray(log_alpha, dtype=np.float64)
        lb0 = np.log(beta) if log_beta is None else np.asarray(log_beta, dtype=np.float64)
        la0_p, lb0_p = la0[layout.row], lb0[layout.row]
    px, py = layout.x, layout.y
    i_tx, i_T = layout.idx_tx, layout.idx_T
    res = layout.tails.evaluate(alpha_p, r + px, beta_p, s + 1.0, moments=gradient)
    log_g, mom = (res if gradient else (res, None))
    # pair-level pieces (the (x, T) pairs are a subset of all pairs)
    la_p = np.log(alpha_p + py)
    lb_p = np.log(beta_p + py)
    log_alive_p = -(r + px) * la_p - s * lb_p
    const_p = gammaln(r + layout.ux)[layout.ix] + (r * la0_p + s * lb0_p - gammaln(r))
    # row level. The death-time integral is J = G(x, tx) - G(x, T) = G(x, tx) * om with
    # om = 1 - G(x, T)/G(x, tx); the bracket is E1 + s J = E1 (1 + e), e = exp(q) * om with
    # q = log(s G(x, tx) / E1). Three transcendental calls per row (expm1, exp, log1p).
    lg_tx = log_g[i_tx]
    om = -np.expm1(np.minimum(log_g[i_T] - lg_tx, 0.0))  # 0 when tx == T
    log_alive = log_alive_p[i_T]
    q = (math.log(s) + lg_tx) - log_alive
    eq = np.exp(np.minimum(q, 600.0))
    e = eq * om
    log_bracket = np.log1p(e)
    big = q > 600.0
    if big.any():  # the alive term is negligible: work in logs for these rows
        with np.errstate(divide="ignore"):
            d_big = q[big] + np.log(om[big])
        log_bracket[big] = np.logaddexp(0.0, d_big)
    ll = const_p[i_T] + log_alive + log_bracket
    if not gradient:
        with np.errstate(divide="ignore"):
            log_died = log_alive + np.log(e)
            if big.any():
                log_died[big] = log_alive[big] + d_big
        return ll, log_alive, log_died, None
    w = 1.0 / (1.0 + e)  # P(alive at T)
    v = e * w  # 1 - w without cancellation
    rho = 1.0 - om
    c = eq * w  # v / om, without dividing by om
    if big.any():
        w[big] = np.exp(-log_bracket[big])
        v[big] = -np.expm1(-log_bracket[big])
        c[big] = np.exp(q[big] - log_bracket[big])

    def died_moment(m: np.ndarray) -> np.ndarray:
        # v * E_J[g] = v * (G(tx) m(tx) - G(T) m(T)) / J = c * (m(tx) - rho * m(T))
        return c * (m[i_tx] - rho * m[i_T])

    dig_p = (digamma(r + layout.ux) - digamma(r))[layout.ix]
    grad = np.empty((4, x.size)).T  # column-major: each column below is written in one pass
    grad[:, 0] = dig_p[i_T] + la0 - w * la_p[i_T] - died_moment(mom.log_a)
    grad[:, 1] = r / alpha - (r + x) * (w / (alpha + T) + died_moment(mom.inv_a))
    grad[:, 2] = lb0 - w * lb_p[i_T] + v / s - died_moment(mom.log_b)
    grad[:, 3] = s / beta - w * (s / (beta + T)) - (s + 1.0) * died_moment(mom.inv_b)
    return ll, log_alive, None, grad


def _terms(r, alpha, s, beta, x, tx, T):
    """``(log_alive, log_died)`` per row: the two terms of the likelihood bracket, in logs."""
    _, log_alive, log_died, _ = _core(r, alpha, s, beta, x, tx, T)
    return log_alive, log_died


def pareto_nbd_log_likelihood(r, alpha, s, beta, x, tx, T) -> np.ndarray:
    """Per-customer Pareto/NBD log-likelihood, vectorised and finite for every valid row.

    FH 2005, eq. (11) with the death-time integral evaluated directly (module docstring);
    equal to FH 2005 eq. (18)-(20) (lifetimes' ``_conditional_log_likelihood``) where that one is
    finite.

    Parameters
    ----------
    r, alpha, s, beta : float
        Model parameters (``alpha``, ``beta`` in the time unit of ``tx`` and ``T``).
    x, tx, T : array_like
        Repeat purchases, recency and age.

    Returns
    -------
    np.ndarray
        ``log L`` per row.
    """
    return _core(r, alpha, s, beta, x, tx, T)[0]


def pareto_nbd_gradient(
    r, alpha, s, beta, x, tx, T, *, _layout_cache: _PairLayout | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per-row log-likelihood and its gradient with respect to ``(r, alpha, s, beta)``.

    Differentiating FH 2005 eq. (11) under the integral sign (the limits ``t_x`` and ``T`` do
    not depend on the parameters), with ``w`` the posterior probability of being alive at ``T``,
    ``v = 1 - w`` and ``E[.]`` averages over the normalised death-time integrand on ``[t_x, T]``:

    * d/dr = psi(r+x) - psi(r) + log(alpha) - w log(alpha+T) - v E[log(alpha+tau)]
    * d/dalpha = r/alpha - (r+x) (w/(alpha+T) + v E[1/(alpha+tau)])
    * d/ds = log(beta) - w log(beta+T) + v (1/s - E[log(beta+tau)])
    * d/dbeta = s/beta - w s/(beta+T) - v (s+1) E[1/(beta+tau)]

    Returns
    -------
    ll : np.ndarray
        Per-row log-likelihood, shape ``(n,)``.
    grad : np.ndarray
        Shape ``(n, 4)``, columns in the order r, alpha, s, beta.
    """
    ll, _, _, grad = _core(r, alpha, s, beta, x, tx, T, layout=_layout_cache, gradient=True)
    return ll, grad


def _log_p_alive(r, alpha, s, beta, x, tx, T) -> np.ndarray:
    log_alive, log_died = _terms(r, alpha, s, beta, x, tx, T)
    return log_alive - np.logaddexp(log_alive, log_died)


def pareto_nbd_probability_alive(r, alpha, s, beta, x, tx, T, t=0.0) -> np.ndarray:
    """P(alive at ``T + t``) given ``(x, t_x, T)``.

    FH 2005 eq. (13) / SMC 1987 eq. (11): ``P(alive at T) = (alive term) / (alive + died)`` of the
    likelihood bracket; ``t`` periods later it is multiplied by the survival of the posterior
    dropout rate, ``((beta+T)/(beta+T+t))^s`` (``mu | alive ~ Gamma(s, beta+T)``).
    """
    x, tx, T, t = _arrays(x, tx, T, t)
    log_p = _log_p_alive(r, alpha, s, beta, x, tx, T) - s * np.log1p(t / (beta + T))
    return np.clip(np.exp(log_p), 0.0, 1.0)


def _one_minus_pow_over(k: np.ndarray | float, u: np.ndarray) -> np.ndarray:
    """``(1 - exp(-k u)) / k`` with its limit ``u`` at ``k = 0`` (no cancellation)."""
    k = np.asarray(k, dtype=np.float64)
    small = np.abs(k * u) < 1e-8
    with np.errstate(divide="ignore", invalid="ignore"):
        full = -np.expm1(-k * u) / k
    return np.where(small, u * (1.0 - k * u / 2.0), full)


def pareto_nbd_expected_purchases(r, alpha, s, beta, x, tx, T, t) -> np.ndarray:
    """Expected purchases in ``(T, T + t]`` given ``(x, t_x, T)``.

    FH 2005 eq. (16) / SMC 1987 eq. (22)::

        E[X(T, T+t)] = P(alive at T) * (r+x)(beta+T) / ((alpha+T)(s-1))
                       * [1 - ((beta+T)/(beta+T+t))^(s-1)]

    written as ``(1 - exp(-(s-1) u)) / (s-1)`` with ``u = log((beta+T+t)/(beta+T))`` so that
    ``s = 1`` (limit ``u``) and ``s`` near 1 are exact.
    """
    x, tx, T, t = _arrays(x, tx, T, t)
    p_alive = np.exp(_log_p_alive(r, alpha, s, beta, x, tx, T))
    u = np.log1p(t / (beta + T))
    return p_alive * (r + x) / (alpha + T) * (beta + T) * _one_minus_pow_over(s - 1.0, u)


def pareto_nbd_expected_purchases_new_customer(r, alpha, s, beta, t) -> np.ndarray:
    """Expected purchases of a newly acquired customer in ``(0, t]``.

    SMC 1987 eq. (17) / FH 2005 eq. (9): ``r beta / (alpha (s-1)) [1 - (beta/(beta+t))^(s-1)]``.
    """
    t = np.asarray(t, dtype=np.float64)
    return r / alpha * beta * _one_minus_pow_over(s - 1.0, np.log1p(t / beta))


def _log_death_integral(n, c, a1, b1, v_t, s, chunk=1 << 14):
    """log int_0^v_t v^n (1-v)^c (b1 + (a1-b1) v)^-(s+1) dv, 4 x 32-node Gauss-Legendre panels."""
    nodes, weights = gauss_legendre(32)
    panels = 4
    pos = ((np.arange(panels)[:, None] + nodes[None, :]) / panels).reshape(-1)
    log_wts = np.log(np.tile(weights / panels, panels))
    out = np.empty(v_t.size)
    for start in range(0, v_t.size, chunk):
        sl = slice(start, start + chunk)
        v = v_t[sl, None] * pos[None, :]
        log_g = c[sl, None] * np.log1p(-v) - (s + 1.0) * np.log(
            b1[sl, None] + (a1 - b1)[sl, None] * v
        ) + log_wts[None, :]
        if n > 0:
            log_g += n * np.log(v)
        gmax = log_g.max(axis=1)
        out[sl] = np.log(np.exp(log_g - gmax[:, None]).sum(axis=1)) + gmax + np.log(v_t[sl])
    return out


def pareto_nbd_probability_of_purchases(r, alpha, s, beta, x, tx, T, n, t) -> np.ndarray:
    """P(exactly ``n`` purchases in ``(T, T + t]``) given ``(x, t_x, T)``.

    FH 2006, eq. (23)-(24), written through the posterior: given alive at ``T``,
    ``lambda ~ Gamma(r+x, alpha+T)`` and ``mu ~ Gamma(s, beta+T)`` independently, and the
    remaining lifetime ``omega`` is exponential(``mu``). Hence::

        P(X = n) = 1[n = 0] (1 - P_alive)
                 + P_alive * [ NB(n; r+x, (alpha+T)/(alpha+T+t)) ((beta+T)/(beta+T+t))^s
                               + int_0^t s (beta+T)^s (beta+T+w)^-(s+1)
                                         NB(n; r+x, (alpha+T)/(alpha+T+w)) dw ]

    The last integral is evaluated with ``v = w / (alpha+T+w)`` (which turns it into a beta-type
    integrand ``v^n (1-v)^(r+x+s-1) (beta' + (alpha'-beta') v)^-(s+1)``) and 4 x 32-node
    Gauss-Legendre panels, in log space.
    """
    x, tx, T, t = _arrays(x, tx, T, t)
    x, tx, T, t = np.broadcast_arrays(x, tx, T, t)
    n = float(n)
    rx = r + x
    a1 = alpha + T
    b1 = beta + T
    log_pa = _log_p_alive(r, alpha, s, beta, x, tx, T)
    log_nb_coef = gammaln(rx + n) - gammaln(rx) - gammaln(n + 1.0)
    # alive throughout (T, T+t]: negative binomial count times survival of the dropout
    with np.errstate(divide="ignore"):
        log_first = (
            log_nb_coef
            + rx * np.log(a1 / (a1 + t))
            + (n * np.log(t / (a1 + t)) if n > 0 else 0.0)
            - s * np.log1p(t / b1)
        )
    # dies at w in (0, t]
    v_t = (t / (a1 + t)).reshape(-1)
    log_int = np.full(v_t.size, -np.inf)
    pos_t = v_t > 0
    if pos_t.any():
        log_int[pos_t] = _log_death_integral(
            n, (rx + s - 1.0).reshape(-1)[pos_t], a1.reshape(-1)[pos_t],
            b1.reshape(-1)[pos_t], v_t[pos_t], s,
        )
    log_int = log_int.reshape(np.shape(t))
    log_second = math.log(s) + s * np.log(b1) + np.log(a1) + log_nb_coef + log_int
    prob = np.exp(log_pa + np.logaddexp(log_first, log_second))
    if n == 0:
        prob = prob + (-np.expm1(log_pa))
    return np.clip(prob, 0.0, 1.0)


def pareto_nbd_expected_residual_transactions(r, alpha, s, beta, x, tx, T, discount_rate) -> np.ndarray:
    """Discounted expected residual transactions (DERT) under continuous discounting.

    FHL 2005, eq. (2)::

        DERT = alpha^r beta^s delta^(s-1) Gamma(r+x+1) U(s, s; delta (beta+T))
               / (Gamma(r) (alpha+T)^(r+x+1) L(r, alpha, s, beta | x, t_x, T))

    computed as ``P(alive) * (r+x)/(alpha+T) * (beta+T) * K`` with
    ``K = int_0^inf exp(-z u) (1+u)^-s du = z^(s-1) U(s, s; z)``, ``z = delta (beta+T)``, which is
    the same expression rearranged so that no factor overflows.

    ``delta`` is the continuously compounded discount rate per model time unit: an annual rate of
    15% with weekly units is ``log(1.15) / (365.25/7)``.
    """
    x, tx, T = _arrays(x, tx, T)
    delta = float(discount_rate)
    z = delta * (beta + T)
    log_k = (s - 1.0) * np.log(z) + log_tricomi_u_ss(s, z)
    log_p = _log_p_alive(r, alpha, s, beta, x, tx, T)
    return np.exp(log_p + np.log(r + x) - np.log(alpha + T) + np.log(beta + T) + log_k)


class _ParetoNBDBase(BaseModel):
    """Likelihood and predictions of :class:`ParetoNBDModel` (the public class adds covariates)."""

    _param_names: ClassVar[tuple[str, ...]] = ("r", "alpha", "s", "beta")
    _data_columns: ClassVar[tuple[str, ...]] = _COLUMNS
    _model_name: ClassVar[str] = "Pareto/NBD, Schmittlein, Morrison & Colombo 1987"
    _limit_groups: ClassVar[tuple[tuple[tuple[str, ...], str], ...]] = (
        (("s", "beta"), "every customer has the same dropout rate (the gamma mixing "
         "distribution of mu collapses to one value)"),
        (("r", "alpha"), "every customer has the same purchase rate (the gamma mixing "
         "distribution of lambda collapses to one value)"),
    )

    # ------------------------------------------------------------------ likelihood hooks
    def _prepare_data(self, data: dict[str, np.ndarray]) -> dict[str, Any]:
        """Add the distinct ``(x, t_x)`` / ``(x, T)`` pairs on which the quadrature runs."""
        out: dict[str, Any] = dict(data)
        out["_layout"] = _layout(data["frequency"], data["recency"], data["T"], data.get("_grp"))
        return out

    def _compressed_row_order(self, data: Any) -> np.ndarray | None:
        """Rows by (frequency, covariate pattern, recency): the order of the pair table, so the
        per-row gathers from it run through memory instead of jumping (a third faster on a
        million customers with covariates)."""
        cols = [data["frequency"], *([data["_pat"]] if "_pat" in data else []), data["recency"]]
        key = _sorted_key(cols)
        if key is None:  # the combined code would overflow: sort on the columns
            return np.lexsort(cols[::-1])
        return np.argsort(key, kind="stable")

    def _loglik_and_gradient_rows(
        self, log_params: np.ndarray, data: Any
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per-row log-likelihood and gradient in log-parameters (the base class memoises the
        pair for the optimiser, which asks for both at the same point)."""
        log_params = np.asarray(log_params, dtype=np.float64)
        r, alpha, s, beta = np.exp(log_params)
        layout = data.get("_layout") if isinstance(data, dict) else None
        with np.errstate(over="ignore", under="ignore"):
            ll, g = pareto_nbd_gradient(
                r, alpha, s, beta, data["frequency"], data["recency"], data["T"],
                _layout_cache=layout,
            )
        g *= np.exp(log_params)[None, :]  # d/dlog(theta) = theta * d/dtheta
        return ll, g

    def _log_likelihood_rows(self, log_params: np.ndarray, data: Any) -> np.ndarray:
        return self._loglik_and_gradient_rows(log_params, data)[0]

    def _gradient_rows(self, log_params: np.ndarray, data: Any) -> np.ndarray:
        return self._loglik_and_gradient_rows(log_params, data)[1]

    def _initial_params(self, data: Any, weights: np.ndarray) -> np.ndarray:
        x, T = data["frequency"], data["T"]
        total_w = float(weights.sum())
        mean_T = float(_dot(weights, T)) / total_w if total_w > 0 else 1.0
        rate = float(_dot(weights, x)) / max(float(_dot(weights, T)), 1e-12)
        mean_T = max(mean_T, 1e-6)
        alpha = 1.0 / rate if rate > 0 else mean_T
        return np.array([1.0, max(alpha, 1e-6), 1.0, mean_T])

    def _edge_groups(self, phi: np.ndarray) -> tuple[tuple[tuple[str, ...], str], ...]:
        # A gamma mixing distribution collapses only when its shape has grown large; probing a
        # group costs whole optimisations, so only do it when the shape parameter is past 20.
        names = list(self._names())
        return tuple(
            g for g in self._limit_groups if math.exp(phi[names.index(g[0][0])]) > 20.0
        )

    # ------------------------------------------------------------------ predictions
    def _predict(self, fn: Any, data: Any, t: Any, name: str) -> pd.Series:
        """``fn(r, alpha, s, beta, x, t_x, T, t)`` per customer, with per-customer ``t``."""
        x, tx, T, index = self._inputs(data, name)
        t = self._horizon(t, data, index)
        r, alpha, s, beta = self._rows_from_table(data, len(index), name)
        with np.errstate(over="ignore", under="ignore"):
            values = fn(r, alpha, s, beta, x, tx, T, t)
        return self._as_series(values, index, name)

    def _inputs(self, data: Any, context: str) -> tuple[np.ndarray, ...]:
        arrays, index = self._prediction_input(data, _COLUMNS, context=context)
        return arrays["frequency"], arrays["recency"], arrays["T"], index

    def probability_alive(self, data: pd.DataFrame, t: float = 0.0) -> pd.Series:
        """Probability that each customer is alive at the end of observation, or ``t`` later.

        FH 2005 eq. (13); ``t > 0`` multiplies by ``((beta+T)/(beta+T+t))^s``.

        Parameters
        ----------
        data : pd.DataFrame
            Summary with ``frequency``, ``recency``, ``T``.
        t : float, array, Series or column name, default 0
            Periods (model time unit) after the end of observation: one number, one value per
            customer (array in row order, Series indexed by customer id) or a column of ``data``.

        Returns
        -------
        pd.Series
            Indexed like ``data``, values in [0, 1].
        """
        return self._predict(pareto_nbd_probability_alive, data, t, "probability_alive")

    def expected_purchases(self, data: pd.DataFrame, t: float) -> pd.Series:
        """Expected number of purchases in the next ``t`` periods, per customer (FH 2005 eq. 16).

        Parameters
        ----------
        data : pd.DataFrame
            Summary with ``frequency``, ``recency``, ``T``.
        t : float, array, Series or column name
            Horizon in the model's time unit: one number, one value per customer (array in row
            order, Series indexed by customer id) or a column of ``data`` such as
            ``"duration_holdout"``.

        Returns
        -------
        pd.Series
            Indexed like ``data``.
        """
        return self._predict(pareto_nbd_expected_purchases, data, t, "expected_purchases")

    def probability_of_purchases(self, data: pd.DataFrame, n: int, t: float) -> pd.Series:
        """P(exactly ``n`` purchases in the next ``t`` periods), per customer (FH 2006).

        Parameters
        ----------
        data : pd.DataFrame
            Summary with ``frequency``, ``recency``, ``T``.
        n : int
            Number of purchases, >= 0.
        t : float, array, Series or column name
            Horizon in the model's time unit, one number or one value per customer (see
            :meth:`expected_purchases`).
        """
        if int(n) != n or n < 0:
            raise ParameterError(f"n must be a whole number >= 0; got {n!r}")
        x, tx, T, index = self._inputs(data, "probability_of_purchases")
        t = self._horizon(t, data, index)
        r, alpha, s, beta = self._rows_from_table(data, len(index), "probability_of_purchases")
        with np.errstate(over="ignore", under="ignore"):
            p = pareto_nbd_probability_of_purchases(r, alpha, s, beta, x, tx, T, int(n), t)
        return self._as_series(p, index, f"probability_of_{int(n)}_purchases")

    def expected_purchases_new_customer(
        self, t: Any, covariates: Any = None
    ) -> float | np.ndarray | pd.Series:
        """Expected purchases of a newly acquired customer in ``(0, t]`` (SMC 1987 eq. 17).

        Parameters
        ----------
        t : float or array_like
            Horizon(s) in the model's time unit.
        covariates : dict or DataFrame, optional
            For a model with covariates: the prospect's covariates, e.g.
            ``{"channel": "referral"}`` (a dict or a one-row frame); several rows give one value
            per prospect for a scalar ``t``. Its ``alpha_i`` and ``beta_i`` enter eq. 17.

        Returns
        -------
        float, np.ndarray or pd.Series
            A float for a scalar ``t`` and one prospect; an array for an array ``t``; a Series
            indexed like ``covariates`` for several prospects.
        """
        arr = self._horizon_array(t)
        (r, alpha, s, beta), index = self._prospect_params(covariates, "expected_purchases_new_customer")
        if index is not None:
            if arr.ndim:
                raise ParameterError(
                    "expected_purchases_new_customer: pass one horizon t for several prospects"
                )
            out = pareto_nbd_expected_purchases_new_customer(r, alpha, s, beta, arr)
            return pd.Series(out, index=index, name="expected_purchases")
        alpha, beta = (float(np.asarray(v).reshape(-1)[0]) for v in (alpha, beta))
        out = pareto_nbd_expected_purchases_new_customer(r, alpha, s, beta, arr)
        return float(out) if out.ndim == 0 else out

    def expected_residual_transactions(self, data: pd.DataFrame, discount_rate: float) -> pd.Series:
        """Discounted expected residual transactions per customer (DERT, FHL 2005 eq. 2).

        Parameters
        ----------
        data : pd.DataFrame
            Summary with ``frequency``, ``recency``, ``T``.
        discount_rate : float
            Continuously compounded discount rate **per model time unit**, > 0 (an annual rate
            ``d`` in weekly units is ``log(1 + d) / (365.25 / 7)``).

        Returns
        -------
        pd.Series
            Present value, in transactions, of all future purchases (multiply by margin and
            expected spend for residual value).
        """
        delta = self._check_rate(discount_rate, "(continuous rate per model time unit)")
        x, tx, T, index = self._inputs(data, "expected_residual_transactions")
        r, alpha, s, beta = self._rows_from_table(data, len(index), "expected_residual_transactions")
        with np.errstate(over="ignore", under="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            d = pareto_nbd_expected_residual_transactions(r, alpha, s, beta, x, tx, T, delta)
        return self._as_series(d, index, "expected_residual_transactions")


class ParetoNBDModel(TwoProcessCovariatesMixin, _ParetoNBDBase):
    """Pareto/NBD model (Schmittlein, Morrison & Colombo 1987) with a stable, fast likelihood.

    Parameters
    ----------
    penalizer_coef : float, default 0.0
        L2 penalty on the parameters as in lifetimes (see :class:`BaseModel`).
    time_unit : str, optional
        Unit of ``recency``/``T``; ``None`` takes ``data.attrs["freq"]`` or days.
    purchase_covariates : list of str, optional
        Columns of the fitted table that shift the purchase rate:
        ``alpha_i = alpha exp(-gamma_purchase' z_i)`` (CLVTools ``pnbd`` with static covariates,
        Bachmann, Meierer & Naef 2021), so ``exp(gamma)`` multiplies the mean purchase rate.
        Numeric columns enter as they are, categorical ones dummy-coded
        (:mod:`custvalue.models._covariates`).
    dropout_covariates : list of str, optional
        Columns that shift the dropout rate: ``beta_i = beta exp(-gamma_dropout' z_i)``.
    covariate_reference : dict, optional
        Reference level per categorical covariate (default: its most frequent level).

    Attributes
    ----------
    params_ : pd.Series
        ``r, alpha, s, beta`` (``alpha``, ``beta`` in ``time_unit_``; with covariates, those of
        a customer whose covariates are all 0 / at the reference level), then the coefficients
        ``"purchase:<term>"`` and ``"dropout:<term>"``.
    covariate_encodings_ : dict
        Block (``"purchase"``, ``"dropout"``) -> :class:`~custvalue.models._covariates.CovariateEncoding`.

    Examples
    --------
    >>> model = ParetoNBDModel().fit(rfm)                        # doctest: +SKIP
    >>> model.expected_purchases(rfm, t=52)                       # doctest: +SKIP
    """

    _covariate_blocks = (
        ("purchase", "purchase_covariates", (("alpha", -1.0),)),
        ("dropout", "dropout_covariates", (("beta", -1.0),)),
    )

    def _row_core(
        self, lp_groups: np.ndarray, groups: np.ndarray, data: Any, need_grad: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """FH 2005 eq. (11) with ``alpha_i``, ``beta_i`` per covariate pattern (pairs per pattern)."""
        r, s = math.exp(lp_groups[0, 0]), math.exp(lp_groups[0, 2])
        alpha = np.exp(lp_groups[:, 1])[groups]
        beta = np.exp(lp_groups[:, 3])[groups]
        layout = data.get("_layout")
        with np.errstate(over="ignore", under="ignore"):
            ll, _, _, g = _core(
                r, alpha, s, beta, data["frequency"], data["recency"], data["T"],
                layout=layout, gradient=need_grad,
                log_alpha=lp_groups[:, 1][groups], log_beta=lp_groups[:, 3][groups],
            )
        if not need_grad:
            return ll, None
        g[:, 0] *= r
        g[:, 1] *= alpha
        g[:, 2] *= s
        g[:, 3] *= beta
        return ll, g
