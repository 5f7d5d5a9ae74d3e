"""Customer lifetime value: model-based CLV with parameter-uncertainty intervals, and the
rule-of-thumb heuristic LTV that reports put beside it.

Model-based CLV (non-contractual)
---------------------------------
For customer *i* with summary ``(x_i, t_x_i, T_i)`` the transaction model gives the conditional
expected number of purchases in the next *t* time units, :math:`E[X_i(t)]` (Fader, Hardie & Lee
2005a, eq. 10 for BG/NBD; Schmittlein, Morrison & Colombo 1987 for Pareto/NBD). The horizon is
cut into periods of one ``time_unit`` each (the last one possibly partial); the expected
purchases in period *k* are the differences

.. math:: \\Delta_{ik} = E[X_i(t_k)] - E[X_i(t_{k-1})],\\qquad t_0 = 0,

with :math:`t_k` the end of period *k* expressed exactly in the model's time unit (a month is
365.25/12 days, never 30). Each period's cash flow is received at the period end and discounted
with the yearly ``discount_rate`` *d* compounded over the exact elapsed time in years,
:math:`(1+d)^{-y_k}`. With the spend model's expected spend per purchase :math:`m_i`
(Gamma-Gamma: Fader, Hardie & Lee 2005b, eq. 5; Fader & Hardie 2013) and a margin *g*,

.. math:: \\mathrm{CLV}_i = g\\, m_i \\sum_k \\Delta_{ik} (1+d)^{-y_k}.

This is the discrete-period "discounted expected transactions" construction used by lifetimes
(``GammaGammaFitter.customer_lifetime_value``), but with a yearly rate and calendar-exact periods
instead of a monthly rate and 30-day months.

``horizon=np.inf`` uses the model's discounted expected residual transactions (DERT; Fader,
Hardie & Lee 2005b, "RFM and CLV", eq. 2, for Pareto/NBD) where the model offers
``expected_residual_transactions``.

Contractual models
------------------
For a contractual model (``model.contractual is True``, e.g. the shifted-beta-geometric model of
Fader & Hardie 2007) the value is the price per period times the discounted expected residual
lifetime (DERL; Fader & Hardie 2010, eq. 6) for an infinite horizon, or for a finite one the
same sum cut at the horizon, :math:`\\sum_{k=1}^{K} P(\\text{renewed } k \\text{ more times})
(1+d)^{-y_{k-1}}` (each payment at the start of its period, the next one undiscounted, as in DERL).

Models are reached through the protocols of :mod:`custvalue._protocols` (a transaction model
with ``expected_purchases``, a spend model with ``expected_spend``, a contractual model with
``probability_alive`` and ``expected_residual_lifetime``); passing a model in the wrong role is
an error that names the role and the class.

Time units
----------
The summary's unit (``data.attrs["freq"]``, set by :func:`custvalue.summary.rfm_summary`) must be
the transaction model's (``model.time_unit_``): a model fitted on weeks reads a daily summary's
recency and T as weeks, which gives a value several times too small. A mismatch is an error;
``convert_unit=True`` rescales recency and T into the model's unit (calendar-exact) instead.

Intervals
---------
``interval=0.9`` adds ``clv_lower`` / ``clv_upper`` that carry the parameter uncertainty of both
models (:func:`clv_interval_sampling`): *n_draws* parameter sets are drawn independently from
each model's estimated sampling distribution (``model.sample_params``, the asymptotic normal
distribution of the log-parameters given by the inverse Hessian), the CLV of every customer is
recomputed for each pair of draws (``model.with_params``) and the interval is the equal-tailed
percentile interval of those recomputed values. The point estimate stays the value at the
maximum-likelihood estimate. ``interval_method="delta"`` (:func:`clv_interval_delta`) replaces
the draws by the first-order (delta-method) approximation on the log scale, which needs two model
evaluations per parameter instead of ``n_draws`` — the choice for millions of customers. The
interval describes how well the *expected* value is known, not how much an individual customer's
realised spend will vary (that randomness is much larger and is not included). Coverage of the
sampled interval was checked by simulation (90 of 100 simulated data sets; see
``tests/test_value.py``). The total over customers gets its own interval from the per-draw totals
(:attr:`CLVResult.total_lower` / :attr:`CLVResult.total_upper`, or :func:`total_value`), because
the sum of per-customer bounds is not a bound of the sum.

Results
-------
:func:`customer_lifetime_value` returns a :class:`CLVResult` (statsmodels style): ``.frame``
(one row per customer), ``.total`` with ``.total_lower`` / ``.total_upper``, ``.cash_flows``
(customers × periods, when asked for), ``.settings``, ``summary()`` and an HTML view. For
convenience ``result["clv"]`` reads a column of :meth:`CLVResult.to_frame`, the frame with one
``cash_flow_k`` column per period (the layout of earlier versions).

Heuristic LTV
-------------
:func:`heuristic_ltv` computes average check × purchases per month × margin × average lifetime
in months per segment, and :func:`compare_heuristic` puts it beside the model to show where it
goes wrong (no heterogeneity, no dropout at the customer level, past instead of future value).
Its order count is :func:`custvalue.summary.rfm_summary`'s ``n_orders``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, TypedDict, Unpack

import numpy as np
import pandas as pd

from ._arrays import as_float_array, require_columns
from ._keywords import forwarded
from ._protocols import (
    AliveModel,
    ContractualModel,
    CovarianceModel,
    ResidualTransactionsModel,
    SampleableModel,
    SpendModel,
    TransactionModel,
    is_contractual,
    model_time_unit,
)
from ._summary import Summary, build_summary
from ._time import DAYS_PER_UNIT, UNIT_NAMES, normalize_unit
from .errors import DataValidationError, ModelNotFittedError, ParameterError

__all__ = [
    "CLVInterval",
    "CLVResult",
    "CLVSettings",
    "clv_interval_delta",
    "clv_interval_sampling",
    "compare_heuristic",
    "customer_lifetime_value",
    "discount_factors",
    "heuristic_ltv",
    "total_value",
]

_TX_COLUMNS = ("frequency", "recency", "T")
_DAYS_PER_YEAR = 365.25
#: customers per chunk when combining per-draw values (keeps memory ~ n_draws * chunk floats)
_CHUNK = 100_000


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------
def _data_unit(data: pd.DataFrame) -> str | None:
    """The summary's time unit from ``attrs["freq"]``, or None when it does not say."""
    freq = data.attrs.get("freq") if isinstance(data, pd.DataFrame) else None
    if freq is None:
        return None
    try:
        return normalize_unit(str(freq))
    except ParameterError:
        return None


def _model_unit(model: Any, data: pd.DataFrame | None = None) -> str:
    """The model's unit; a model that declares none is taken to be in the data's unit (else days)."""
    unit = model_time_unit(model)
    if unit is not None:
        return normalize_unit(unit)
    return (_data_unit(data) if data is not None else None) or "D"


def _check_fitted(model: Any, role: str) -> None:
    params = getattr(model, "params_", None)
    if params is None:
        raise ModelNotFittedError(
            f"the {role} {type(model).__name__} has no parameters: call .fit(data) or build it "
            f"with {type(model).__name__}.from_params(...) before computing CLV"
        )


def _check_margin(margin: Any) -> float:
    try:
        value = float(margin)
    except (TypeError, ValueError):
        raise ParameterError(f"margin must be a number in (0, 1], got {margin!r}") from None
    if not (np.isfinite(value) and 0.0 < value <= 1.0):
        raise ParameterError(
            f"margin is the share of spend kept as profit and must be in (0, 1] (0.3 = 30 %, "
            f"1 = value revenue), got {margin!r}"
        )
    return value


def discount_factors(
    horizon: float, time_unit: str, discount_rate: float, model_unit: str = "D"
) -> pd.DataFrame:
    """Period ends and discount factors used by :func:`customer_lifetime_value`.

    Parameters
    ----------
    horizon : float
        Length of the horizon in ``time_unit`` (finite, > 0). A non-integer horizon ends with a
        partial period.
    time_unit : str
        Unit of the horizon and of one cash-flow period (``"D"``, ``"W"``, ``"M"``, ...).
    discount_rate : float
        Yearly discount rate *d* (0.1 = 10 % a year).
    model_unit : str, default "D"
        The transaction model's time unit; ``t_model`` is the period end in that unit.

    Returns
    -------
    pandas.DataFrame
        One row per period: ``t`` (period end in ``time_unit``), ``t_model`` (in the model's
        unit, calendar-exact), ``years`` and ``discount`` = :math:`(1+d)^{-\\text{years}}`.
    """
    unit = normalize_unit(time_unit)
    munit = normalize_unit(model_unit)
    n_periods = math.ceil(horizon - 1e-12)
    ends = np.minimum(np.arange(1, n_periods + 1, dtype=float), float(horizon))
    years = ends * DAYS_PER_UNIT[unit] / _DAYS_PER_YEAR
    return pd.DataFrame(
        {
            "t": ends,
            "t_model": ends * DAYS_PER_UNIT[unit] / DAYS_PER_UNIT[munit],
            "years": years,
            "discount": np.power(1.0 + discount_rate, -years),
        },
        index=pd.RangeIndex(1, n_periods + 1, name="period"),
    )


def _integer_key_codes(sub: pd.DataFrame) -> np.ndarray | None:
    """Group codes by hashing one int64 key when every column holds small non-negative whole
    numbers (the usual daily/weekly summaries); None when that does not apply."""
    if len(sub) == 0 or not all(pd.api.types.is_numeric_dtype(sub[c]) for c in sub.columns):
        return None
    key = np.zeros(len(sub), dtype=np.int64)
    span = 1
    for c in sub.columns:
        v = sub[c].to_numpy(dtype=float)
        lo, hi = v.min(), v.max()
        if not (np.isfinite(lo) and np.isfinite(hi)) or lo < 0 or not np.array_equal(v, np.floor(v)):
            return None
        width = int(hi) + 1
        if span * width >= 2**62:
            return None
        key += v.astype(np.int64) * span
        span *= width
    codes, _ = pd.factorize(key, sort=False)
    return codes.astype(np.int64)


def _compress(frame: pd.DataFrame, columns: Sequence[str]) -> tuple[pd.DataFrame, np.ndarray]:
    """Unique rows of ``frame[columns]`` and, for every original row, the index of its unique row."""
    sub = frame.loc[:, list(columns)]
    codes = _integer_key_codes(sub)
    if codes is None:
        codes = sub.groupby(list(columns), sort=False, dropna=False).ngroup().to_numpy()
    first = np.full(codes.max() + 1 if len(codes) else 0, -1, dtype=np.int64)
    # position of the first occurrence of every group (vectorised: reverse assignment)
    first[codes[::-1]] = np.arange(len(codes) - 1, -1, -1)
    uniq = sub.iloc[first].reset_index(drop=True)
    uniq.attrs = dict(frame.attrs)
    return uniq, codes


def _annual_to_period_rate(discount_rate: float, unit: str) -> float:
    return (1.0 + discount_rate) ** (DAYS_PER_UNIT[unit] / _DAYS_PER_YEAR) - 1.0



# ----------------------------------------------------------------------------------------------
# transaction / spend components (evaluated on compressed unique rows)
# ----------------------------------------------------------------------------------------------
def _tx_component(
    model: Any,
    uniq: pd.DataFrame,
    periods: tuple[np.ndarray, np.ndarray] | None,
    discount_rate: float,
    want_flows: bool,
    cache: dict[str, Any] | None = None,
    dynamic: _DynamicRows | None = None,
) -> dict[str, np.ndarray]:
    """Discounted expected transactions (non-contractual) or discounted expected lifetime
    (contractual) per unique row; optionally the per-period expected quantities."""
    n = len(uniq)
    munit = _model_unit(model, uniq)
    contractual = is_contractual(model)
    if dynamic is not None:
        if periods is None:
            raise ParameterError(
                f"{type(model).__name__} values a finite horizon only: its covariates are known "
                "for the periods of the covariate table and unknown beyond (as in CLVTools); "
                "pass a finite horizon that the table covers (e.g. horizon=12, time_unit='M')"
            )
        t_model, disc = periods
        # E[X(T, T + t_k)] of each customer at every period end, from the model's own walks
        # and the horizon's covariates (Bachmann, Meierer & Naef 2021; CLVTools' CET)
        cum = model._purchase_curve(t_model, dynamic.grid)[:, dynamic.positions]
        np.maximum(cum, 0.0, out=cum)
        for k in range(1, cum.shape[0]):
            np.maximum(cum[k], cum[k - 1], out=cum[k])
        steps = np.empty_like(cum)
        steps[0] = cum[0]
        np.subtract(cum[1:], cum[:-1], out=steps[1:])
        out = {"discounted": disc @ steps, "expected": cum[-1]}
        if want_flows:
            out["steps"] = steps * disc[:, None]
        return out
    if periods is None:  # infinite horizon
        if contractual:
            # DERL (Fader & Hardie 2010 eq. 6) takes a discrete rate per model period
            rate = _annual_to_period_rate(discount_rate, munit)
            vals = model.expected_residual_lifetime(uniq, discount_rate=rate)
        else:
            if not isinstance(model, ResidualTransactionsModel):
                raise ParameterError(
                    f"horizon=np.inf needs discounted expected residual transactions, which "
                    f"{type(model).__name__} does not provide; use ParetoNBDModel or a finite "
                    "horizon (e.g. horizon=36, time_unit='M')"
                )
            if discount_rate <= 0:
                raise ParameterError(
                    "horizon=np.inf needs discount_rate > 0: undiscounted residual transactions "
                    "can be infinite"
                )
            # DERT (Fader, Hardie & Lee 2005b eq. 2) discounts continuously: the rate per model
            # unit equivalent to the yearly rate d is log(1 + d) * (days per unit / 365.25)
            delta = math.log1p(discount_rate) * DAYS_PER_UNIT[munit] / _DAYS_PER_YEAR
            vals = model.expected_residual_transactions(uniq, discount_rate=delta)
        return {"discounted": as_float_array(vals, "discounted residual value", n)}

    t_model, disc = periods
    # arrays are (periods, rows): each period's values are contiguous
    if contractual:
        # payment k is made if the contract is renewed k times, P(alive k periods on) =
        # S(T+k)/S(T), at the start of period k — the DERL convention (Fader & Hardie 2010,
        # eq. 6: next payment undiscounted), so a long horizon converges to DERL
        steps = np.empty((len(t_model), n))
        for k, t in enumerate(t_model):
            steps[k] = as_float_array(model.probability_alive(uniq, t=t), "probability_alive", n)
        disc = np.concatenate([[1.0], disc[:-1]])
        out = {"discounted": disc @ steps, "expected": steps.sum(axis=0)}
        if want_flows:
            out["steps"] = steps * disc[:, None]
        return out

    # E[X(t_k)] = scale * curve[:, idx] (scale = P(alive), or 1 for direct evaluation)
    scale, cum, idx = _purchase_curve(model, uniq, t_model, cache)
    # expected purchases are non-decreasing in t; clip rounding noise so flows are >= 0
    np.maximum(cum, 0.0, out=cum)
    for k in range(1, cum.shape[0]):  # running maximum over the (few) periods
        np.maximum(cum[k], cum[k - 1], out=cum[k])
    steps = np.empty_like(cum)
    steps[0] = cum[0]
    np.subtract(cum[1:], cum[:-1], out=steps[1:])
    discounted, expected = disc @ steps, cum[-1]
    if idx is None:
        out = {"discounted": discounted, "expected": expected}
        if want_flows:
            out["steps"] = steps * disc[:, None]
        return out
    out = {"discounted": scale * discounted[idx], "expected": scale * expected[idx]}
    if want_flows:
        out["steps"] = (steps * disc[:, None])[:, idx] * scale[None, :]
    return out


def _direct_curve(model: Any, frame: pd.DataFrame, t_model: np.ndarray) -> np.ndarray:
    n = len(frame)
    cum = np.empty((len(t_model), n))
    for k, t in enumerate(t_model):  # one vectorised model call per period
        cum[k] = as_float_array(model.expected_purchases(frame, float(t)), "expected_purchases", n)
    return cum


def _purchase_curve(
    model: Any, uniq: pd.DataFrame, t_model: np.ndarray, cache: dict[str, Any] | None = None
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None]:
    """Conditional expected purchases E[X(t_k) | x, t_x, T] for every row and period end, as
    ``scale * curve[:, idx]`` (``scale`` and ``idx`` None: ``curve`` holds every row).

    Fast path, exact for the buy-till-you-die models (BG/NBD, MBG/NBD, Pareto/NBD): given that
    the customer is alive at T, the posterior of the latent purchase and dropout rates depends on
    (x, T) only (the likelihood of an alive customer is lambda^x e^{-lambda T} times a dropout
    term in x and T; FHL 2005a eq. 3 and Schmittlein et al. 1987), so

        E[X(t) | x, t_x, T] = P(alive | x, t_x, T) * E[X(t) | x, T, alive].

    The second factor is obtained from the model itself on the (far fewer) distinct (x, T) pairs
    as E[X(t) | x, T, T] / P(alive | x, T, T) (a customer whose last purchase was at T), so the
    period loop runs on distinct (x, T) instead of distinct (x, t_x, T). The identity is checked
    against direct model calls on a spread of rows; if it does not hold to 1e-7 (a model outside
    this family) the direct computation is used.
    """
    n = len(uniq)
    x = uniq["frequency"].to_numpy(dtype=float)
    T = uniq["T"].to_numpy(dtype=float)
    if n < 2000 or not isinstance(model, AliveModel):
        return None, _direct_curve(model, uniq, t_model), None
    if cache is not None and "ref" in cache:
        ref_uniq, ref_idx = cache["ref"]
    else:
        ref = pd.DataFrame({"frequency": x, "recency": np.where(x > 0, T, 0.0), "T": T})
        # a covariate model's posterior also depends on the customer's covariates
        cov_cols = [c for c in _covariate_columns(model) if c in uniq.columns]
        for c in cov_cols:
            ref[c] = uniq[c].to_numpy()
        ref.attrs = dict(uniq.attrs)
        ref_uniq, ref_idx = _compress(ref, ["frequency", "recency", "T", *cov_cols])
        if cache is not None:
            cache["ref"] = (ref_uniq, ref_idx)
    if len(ref_uniq) > 0.5 * n:
        return None, _direct_curve(model, uniq, t_model), None
    try:
        pa = np.clip(as_float_array(model.probability_alive(uniq), "probability_alive", n), 0.0, 1.0)
        pa_ref = as_float_array(model.probability_alive(ref_uniq), "probability_alive", len(ref_uniq))
    except TypeError:
        return None, _direct_curve(model, uniq, t_model), None
    if not np.all(np.isfinite(pa_ref) & (pa_ref > 0)):
        return None, _direct_curve(model, uniq, t_model), None
    alive_curve = _direct_curve(model, ref_uniq, t_model) / pa_ref[None, :]
    check = np.unique(np.linspace(0, n - 1, 64).astype(np.int64))
    direct = _direct_curve(model, uniq.iloc[check], t_model[-1:])[0]
    if not np.allclose(pa[check] * alive_curve[-1, ref_idx[check]], direct, rtol=1e-7, atol=1e-12):
        return None, _direct_curve(model, uniq, t_model), None
    return pa, alive_curve, ref_idx


def _spend_component(model: Any, uniq: pd.DataFrame) -> np.ndarray:
    return as_float_array(model.expected_spend(uniq), "expected_spend", len(uniq))


def _spend_columns(data: pd.DataFrame, model: Any = None) -> list[str]:
    cols = [c for c in ("frequency", "monetary_value") if c in data.columns]
    return cols + [c for c in _covariate_columns(model) if c not in cols]


def _covariate_columns(model: Any) -> list[str]:
    """Columns of the customer table a covariate model reads (its fitted encodings), in order.

    A model fitted with covariates predicts from each customer's covariates, so the compressed
    rows it is evaluated on must carry them: two customers with the same (frequency, recency, T)
    but different channels are different rows.
    """
    encodings = getattr(model, "covariate_encodings_", None) or {}
    out: list[str] = []
    for enc in encodings.values():
        out += [c for c in enc.columns if c not in out]
    return out


def _draw_models(model: Any, n_draws: int, seed: int | None, role: str) -> list[Any]:
    if not isinstance(model, SampleableModel):
        raise ParameterError(
            f"the parameter-sampling interval needs the {role} {type(model).__name__} to offer "
            "sample_params(n, seed) and with_params(params); use interval_method='delta' or a "
            "custvalue model"
        )
    draws = model.sample_params(n_draws, seed=seed)
    if not isinstance(draws, pd.DataFrame):
        draws = pd.DataFrame(draws)
    return [model.with_params(row) for row in draws.to_dict("records")]


def _norm_ppf(q: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(q))


def _log_jacobian(
    model: Any, fn: Any, f0: np.ndarray, role: str, step: float = 1e-4
) -> tuple[np.ndarray, np.ndarray]:
    """Central-difference Jacobian of ``fn(model)`` with respect to the log-parameters, and the
    log-parameter covariance ``Σ_log = Σ / (θ θᵀ)`` (delta method)."""
    cov = model.covariance_ if isinstance(model, CovarianceModel) else None
    if cov is None:
        raise ParameterError(
            f"interval needs the {role}'s parameter covariance: fit {type(model).__name__} to data "
            "(a model built with from_params has none unless given covariance=)"
        )
    theta = pd.Series(model.params_, dtype=float)
    cov = np.asarray(cov, dtype=float)
    # covariate coefficients are unconstrained: differentiate them directly, not on the log scale
    log_mask = getattr(model, "_log_mask", None)
    mask = np.asarray(log_mask(), dtype=bool) if log_mask is not None else np.ones(len(theta), bool)
    jac = np.empty((len(f0), len(theta)))
    for j, name in enumerate(theta.index):  # one pair of evaluations per parameter
        up, down = theta.copy(), theta.copy()
        if mask[j]:
            up[name] *= math.exp(step)
            down[name] *= math.exp(-step)
        else:
            up[name] += step
            down[name] -= step
        jac[:, j] = (fn(model.with_params(up)) - fn(model.with_params(down))) / (2.0 * step)
    scale = np.where(mask, theta.to_numpy(), 1.0)
    return jac, cov / np.outer(scale, scale)

# ----------------------------------------------------------------------------------------------
# results
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CLVSettings:
    """The settings a CLV was computed with (all units explicit).

    Attributes
    ----------
    horizon : float
        In ``time_unit`` (``inf`` for DERT / DERL).
    time_unit : str
        Unit of the horizon and of one cash-flow period.
    model_time_unit : str
        The transaction model's unit.
    data_time_unit : str or None
        The summary's unit before any conversion (``attrs["freq"]``), None when it did not say.
    converted : bool
        True when recency and T were rescaled into the model's unit (``convert_unit=True``).
    discount_rate : float
        Yearly rate.
    margin : float
    contractual : bool
    interval : float or None
        Coverage of the interval, None without one.
    interval_method : str or None
        ``"sample"`` or ``"delta"``.
    n_draws : int or None
        Parameter draws per model (``"sample"``).
    seed : int or None
    transaction_model, spend_model : str
        Class names (``spend_model`` ``"price"`` when a price was given instead).
    """

    horizon: float
    time_unit: str
    model_time_unit: str
    discount_rate: float
    margin: float
    contractual: bool
    data_time_unit: str | None = None
    converted: bool = False
    interval: float | None = None
    interval_method: str | None = None
    n_draws: int | None = None
    seed: int | None = None
    transaction_model: str = ""
    spend_model: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The settings as a plain dictionary."""
        return asdict(self)

    def horizon_text(self) -> str:
        """The horizon in words, e.g. ``"12 months"`` or ``"an infinite horizon"``."""
        if not np.isfinite(self.horizon):
            return "an infinite horizon"
        plural = "" if self.horizon == 1 else "s"
        return f"{self.horizon:g} {UNIT_NAMES[self.time_unit]}{plural}"


@dataclass(frozen=True)
class CLVInterval:
    """Parameter-uncertainty interval of customer values and of their total.

    Returned by :func:`clv_interval_delta` and :func:`clv_interval_sampling`.

    Attributes
    ----------
    lower, upper : pandas.Series
        Per customer, indexed like the summary.
    total_lower, total_upper : float
        Interval of the (weighted) total — not the sum of the per-customer bounds.
    level : float
    method : str
        ``"delta"`` or ``"sample"``.
    n_draws : int or None
    """

    lower: pd.Series
    upper: pd.Series
    total_lower: float
    total_upper: float
    level: float
    method: str
    n_draws: int | None = None

    def total_info(self) -> dict[str, Any]:
        out: dict[str, Any] = {"lower": self.total_lower, "upper": self.total_upper,
                               "interval": self.level, "method": self.method}
        if self.n_draws is not None:
            out["n_draws"] = self.n_draws
        return out


@dataclass(repr=False)
class CLVResult:
    """Customer lifetime values with their total, interval, cash flows and settings.

    Returned by :func:`customer_lifetime_value`.

    Attributes
    ----------
    frame : pandas.DataFrame
        One row per customer, indexed like the summary. Non-contractual:
        ``expected_purchases`` (undiscounted, over the horizon; absent for an infinite
        horizon), ``discounted_purchases``, ``expected_spend``, ``clv`` [, ``clv_lower``,
        ``clv_upper``]. Contractual: ``expected_periods`` (finite horizon),
        ``discounted_periods``, ``price``, ``clv`` ...
    total : float
        Total value (weighted by the summary's ``weight`` column when present).
    total_lower, total_upper : float or None
        Interval of the total (None without ``interval``).
    settings : CLVSettings
    cash_flows : pandas.DataFrame or None
        With ``cash_flows=True``: customers × periods (columns ``1 .. K``, named ``period``),
        the discounted margin received in each period; rows sum to ``clv``.
    total_cash_flows : pandas.Series or None
        The weighted total of ``cash_flows`` per period.
    periods : pandas.DataFrame or None
        The :func:`discount_factors` table of a finite horizon.

    Notes
    -----
    ``result["clv"]`` (``__getitem__``) reads a column of :meth:`to_frame`; ``len(result)`` is
    the number of customers. Use ``result.frame`` wherever a DataFrame is needed.
    """

    frame: pd.DataFrame
    total: float
    settings: CLVSettings
    total_lower: float | None = None
    total_upper: float | None = None
    cash_flows: pd.DataFrame | None = None
    total_cash_flows: pd.Series | None = None
    periods: pd.DataFrame | None = None
    _interval: CLVInterval | None = field(default=None, repr=False)

    # -- frame-like conveniences ---------------------------------------------------------------
    @property
    def index(self) -> pd.Index:
        """Customer ids."""
        return self.frame.index

    @property
    def clv(self) -> pd.Series:
        """The ``clv`` column."""
        return self.frame["clv"]

    def __len__(self) -> int:
        return len(self.frame)

    def __getitem__(self, key: Any) -> Any:
        try:
            return self.frame[key]
        except KeyError:
            if self.cash_flows is None:
                raise
            return self.to_frame()[key]

    def to_frame(self, cash_flows: bool = True) -> pd.DataFrame:
        """The per-customer frame, with one ``cash_flow_k`` column per period appended when
        cash flows were computed (and ``cash_flows`` is True). A new frame every call."""
        out = self.frame.copy()
        if cash_flows and self.cash_flows is not None:
            flows = self.cash_flows.copy()
            flows.columns = [f"cash_flow_{k}" for k in self.cash_flows.columns]
            out = pd.concat([out, flows], axis=1)
        return out

    def total_table(self) -> pd.Series:
        """``estimate`` [, ``lower``, ``upper``, ``interval``, ``method``, ``n_draws``] — the
        same as :func:`total_value`."""
        out: dict[str, Any] = {"estimate": self.total}
        if self._interval is not None:
            out.update(self._interval.total_info())
        return pd.Series(out, name="total_value")

    # -- display -------------------------------------------------------------------------------
    def summary(self) -> Summary:
        """Settings, the total with its interval and the spread of customer values."""
        s = self.settings
        info: list[tuple[str, Any]] = [
            ("customers", f"{len(self.frame):,}"),
            ("horizon", s.horizon_text()),
            ("discount rate", f"{s.discount_rate:.2%} a year"),
            ("margin", f"{s.margin:.0%} of spend"),
            ("transaction model", f"{s.transaction_model} (in {UNIT_NAMES[s.model_time_unit]}s)"),
            ("spend", s.spend_model if s.spend_model != "price" else "the given price"),
            ("total value", f"{self.total:,.2f}"),
        ]
        if s.converted and s.data_time_unit is not None:
            info.append(("unit conversion", f"recency and T converted from {UNIT_NAMES[s.data_time_unit]}s"))
        notes = []
        if self.total_lower is not None and s.interval is not None:
            how = (f"{s.n_draws} parameter draws of each model" if s.interval_method == "sample"
                   else "the delta method")
            info.append((f"{s.interval:.0%} interval of the total",
                         f"{self.total_lower:,.2f} to {self.total_upper:,.2f}"))
            notes.append(
                f"The interval reflects how precisely the model parameters are estimated ({how}); "
                "it does not include the randomness of each customer's future purchases."
            )
        v = self.frame["clv"]
        top = np.sort(v.to_numpy())[::-1]
        k = max(1, math.ceil(0.1 * len(top)))
        share = float(top[:k].sum() / top.sum()) if top.sum() > 0 else float("nan")
        spread = pd.DataFrame(
            {"clv": [v.mean(), v.median(), v.quantile(0.9), v.max()]},
            index=pd.Index(["mean", "median", "90th percentile", "max"], name="per customer"),
        )
        if np.isfinite(share):
            notes.append(f"The most valuable 10 % of customers hold {share:.0%} of the total value.")
        return build_summary(
            f"Customer lifetime value over {s.horizon_text()}", info, [("", spread)], notes,
            float_format=lambda x: f"{x:,.2f}",
        )

    def __repr__(self) -> str:
        s = self.settings
        iv = (f", {s.interval:.0%} interval {self.total_lower:,.2f}–{self.total_upper:,.2f}"
              if self.total_lower is not None and s.interval is not None else "")
        return (f"<CLVResult: {len(self.frame):,} customers over {s.horizon_text()}, "
                f"total {self.total:,.2f}{iv}>")

    def _repr_html_(self) -> str:
        return self.summary()._repr_html_()


# ----------------------------------------------------------------------------------------------
# steps of customer_lifetime_value
# ----------------------------------------------------------------------------------------------
@dataclass
class _DynamicRows:
    """A time-varying covariate model's view of the summary: the horizon's covariate table
    (validated and encoded once, shared by every parameter draw) and each summary row's
    position among the model's fitted customers."""

    grid: Any
    positions: np.ndarray


@dataclass
class _Problem:
    """Validated inputs of one CLV computation, with identical rows compressed."""

    transaction_model: Any
    spend_model: Any | None
    settings: CLVSettings
    index: pd.Index
    periods: tuple[np.ndarray, np.ndarray] | None
    table: pd.DataFrame | None
    tx_uniq: pd.DataFrame
    tx_idx: np.ndarray
    sp_uniq: pd.DataFrame | None
    sp_idx: np.ndarray | None
    spend_fixed: np.ndarray | None
    weights: np.ndarray
    cache: dict[str, Any] = field(default_factory=dict)  # distinct (x, T) rows, shared by draws
    dynamic: _DynamicRows | None = None  # time-varying covariate model (no compression)

    @property
    def n(self) -> int:
        return len(self.index)


@dataclass
class _Point:
    """Point estimate on the compressed rows and per customer."""

    tx: dict[str, np.ndarray]
    spend: np.ndarray  # per customer
    disc_tx: np.ndarray  # per customer
    clv: np.ndarray  # per customer
    total: float


def _validate_data(data: Any) -> None:
    if isinstance(data, tuple) and data and isinstance(data[0], pd.DataFrame):
        raise DataValidationError(
            "data is a tuple: load_transactions returns (transactions, quality); CLV needs the "
            "customer summary, e.g. rfm_summary(tx)"
        )
    if not isinstance(data, pd.DataFrame):
        raise DataValidationError(
            f"data must be a customer summary DataFrame, got {type(data).__name__}"
        )
    if len(data) == 0:
        raise DataValidationError("data has no customers: nothing to value")


def _validate_numbers(
    horizon: Any, time_unit: str, discount_rate: Any, margin: Any
) -> tuple[float, str, float, float]:
    """Horizon, unit, yearly rate and margin as checked floats (the unit/horizon step)."""
    unit = normalize_unit(time_unit)
    try:
        horizon = float(horizon)
    except (TypeError, ValueError):
        raise ParameterError(f"horizon must be a number of {UNIT_NAMES[unit]}s, got {horizon!r}") from None
    if not horizon > 0 or math.isnan(horizon):
        raise ParameterError(f"horizon must be > 0 {UNIT_NAMES[unit]}s (or np.inf), got {horizon}")
    try:
        discount_rate = float(discount_rate)
    except (TypeError, ValueError):
        raise ParameterError(
            f"discount_rate must be a yearly rate (0.1 = 10 %), got {discount_rate!r}"
        ) from None
    if np.isfinite(horizon) and horizon > 100_000:
        raise ParameterError(
            f"horizon of {horizon:g} {UNIT_NAMES[unit]}s means more than 100,000 cash-flow periods; "
            "use a longer time_unit (e.g. 'Y') or horizon=np.inf"
        )
    if not np.isfinite(discount_rate) or discount_rate < 0:
        raise ParameterError(
            f"discount_rate is a yearly rate and must be finite and >= 0 (0.1 = 10 %), got {discount_rate}"
        )
    return horizon, unit, discount_rate, _check_margin(margin)


def _validate_interval(interval: float | None, interval_method: str, n_draws: int) -> None:
    if interval is not None and not 0 < interval < 1:
        raise ParameterError(f"interval must be between 0 and 1 (e.g. 0.9), got {interval}")
    if interval_method not in ("sample", "delta"):
        raise ParameterError(f"interval_method must be 'sample' or 'delta', got {interval_method!r}")
    if interval is not None and interval_method == "sample" and int(n_draws) < 2:
        raise ParameterError(f"n_draws must be at least 2 for an interval, got {n_draws}")


def _check_roles(transaction_model: Any, spend_model: Any | None) -> bool:
    """Check each model fits its role; returns whether the valuation is contractual."""
    name = type(transaction_model).__name__
    contractual = is_contractual(transaction_model)
    if contractual:
        if not isinstance(transaction_model, ContractualModel):
            raise ParameterError(
                f"the transaction model {name} says contractual = True but has no "
                "probability_alive(data, t) and expected_residual_lifetime(data, discount_rate)"
            )
    elif not isinstance(transaction_model, TransactionModel):
        hint = (
            f"; {name} models spend per purchase: pass it as spend_model (the second argument)"
            if isinstance(transaction_model, SpendModel)
            else ""
        )
        raise ParameterError(
            f"the transaction model (first argument) must predict purchases with "
            f"expected_purchases(data, t) — e.g. BetaGeoModel or ParetoNBDModel — or be a "
            f"contractual model; got {name}{hint}"
        )
    _check_fitted(transaction_model, "transaction model")
    if spend_model is not None:
        sname = type(spend_model).__name__
        if not isinstance(spend_model, SpendModel):
            hint = (
                f"; {sname} models purchases: pass it as transaction_model (the first argument)"
                if isinstance(spend_model, (TransactionModel, ContractualModel))
                else ""
            )
            raise ParameterError(
                f"the spend model (second argument) must predict spend per purchase with "
                f"expected_spend(data) — e.g. GammaGammaModel — or be None with price=; got "
                f"{sname}{hint}"
            )
        _check_fitted(spend_model, "spend model")
    return contractual


def _check_unit(
    data: pd.DataFrame, model: Any, contractual: bool, convert_unit: bool
) -> tuple[pd.DataFrame, str, str | None, bool]:
    """The summary in the model's unit: (data, model unit, data unit, converted).

    A summary whose ``attrs["freq"]`` differs from the model's unit is an error unless
    ``convert_unit`` is True; then recency and T are rescaled (calendar-exact) on a copy.
    """
    data_unit = _data_unit(data)
    munit = _model_unit(model, data)
    if data_unit is None or data_unit == munit:
        return data, munit, data_unit, False
    du, mu = UNIT_NAMES[data_unit], UNIT_NAMES[munit]
    name = type(model).__name__
    if not convert_unit:
        raise ParameterError(
            f"time units differ: the transaction model {name} counts time in {mu}s "
            f"(time_unit_={munit!r}) but the summary is in {du}s (data.attrs['freq']="
            f"{data_unit!r}), so its recency and T would be read as {mu}s. Summarise the "
            f"transactions again with rfm_summary(tx, freq={munit!r}), fit the model on "
            f"{du}s, or pass convert_unit=True to rescale recency and T from {du}s to {mu}s"
        )
    if contractual:
        raise ParameterError(
            f"convert_unit=True rescales the recency and T of a purchase summary; the contractual "
            f"model {name} counts renewal periods ({mu}s) and the subscriptions are in {du}s: "
            f"rebuild them with subscriptions(..., freq={munit!r})"
        )
    factor = DAYS_PER_UNIT[data_unit] / DAYS_PER_UNIT[munit]
    converted = data.copy()
    for col in ("recency", "T"):
        if col in converted.columns:
            converted[col] = converted[col].astype(float) * factor
    converted.attrs = {**data.attrs, "freq": munit}
    return converted, munit, data_unit, True


def _horizon_periods(
    horizon: float, unit: str, discount_rate: float, munit: str
) -> tuple[pd.DataFrame | None, tuple[np.ndarray, np.ndarray] | None]:
    """Discounting step: period ends in the model's unit and their discount factors."""
    if not np.isfinite(horizon):
        return None, None
    table = discount_factors(horizon, unit, discount_rate, munit)
    return table, (table["t_model"].to_numpy(), table["discount"].to_numpy())


def _fixed_spend(data: pd.DataFrame, price: Any) -> np.ndarray:
    """Price per purchase / per period for every customer, checked finite and >= 0."""
    if isinstance(price, str):
        require_columns(data, (price,), "price")
        price = data[price]
    if isinstance(price, pd.Series):
        aligned = price.reindex(data.index)
        if aligned.isna().any():
            missing = data.index[aligned.isna().to_numpy()][:5].tolist()
            raise DataValidationError(
                f"price Series has no value for {int(aligned.isna().sum())} customers "
                f"(e.g. {missing}); give a price for every customer id in data"
            )
        try:
            arr = aligned.to_numpy(dtype=float)
        except (TypeError, ValueError):
            raise DataValidationError(f"price must be numeric, got values like {aligned.head(3).tolist()}") from None
    else:
        try:
            value = float(price)
        except (TypeError, ValueError):
            raise ParameterError(f"price must be a number, a Series or a column name, got {price!r}") from None
        arr = np.full(len(data), value)
    bad = ~np.isfinite(arr) | (arr < 0)
    if bad.any():
        ids = data.index[bad][:5].tolist()
        raise ParameterError(
            f"price must be finite and >= 0; {int(bad.sum())} customers have a negative or "
            f"non-finite price (e.g. {ids}: {arr[bad][:5].tolist()})"
        )
    return arr


def _prepare(
    transaction_model: Any,
    spend_model: Any | None,
    data: Any,
    *,
    horizon: Any,
    time_unit: str,
    discount_rate: Any,
    margin: Any = 1.0,
    price: Any = None,
    convert_unit: bool = False,
    covariates: Any = None,
) -> _Problem:
    """Validation, unit/horizon and compression steps shared by CLV and its intervals.

    The keyword arguments are :class:`_Valuation`'s, with the defaults of
    :func:`customer_lifetime_value`.
    """
    _validate_data(data)
    horizon, unit, discount_rate, margin = _validate_numbers(horizon, time_unit, discount_rate, margin)
    contractual = _check_roles(transaction_model, spend_model)
    dynamic = getattr(transaction_model, "time_varying", False) is True
    if covariates is not None and not dynamic:
        raise ParameterError(
            "covariates= is the covariate table of a time-varying model (DynamicParetoNBDModel); "
            f"{type(transaction_model).__name__} reads its covariates from the columns of data"
        )
    if not contractual and not dynamic:
        require_columns(data, _TX_COLUMNS, "customer_lifetime_value")
    if spend_model is None and price is None:
        raise ParameterError(
            "no spend: pass a fitted spend_model (GammaGammaModel) or price= (spend per purchase, "
            "or price per period for a contractual model)"
        )
    if spend_model is not None and not contractual:
        require_columns(data, ("frequency", "monetary_value"), "the spend model")
    if dynamic:  # the model predicts from its own walks; recency and T of data are not read
        munit, data_unit, converted = _model_unit(transaction_model), _data_unit(data), False
    else:
        data, munit, data_unit, converted = _check_unit(data, transaction_model, contractual,
                                                        convert_unit)
    table, periods = _horizon_periods(horizon, unit, discount_rate, munit)
    settings = CLVSettings(
        horizon=horizon, time_unit=unit, model_time_unit=munit, discount_rate=discount_rate,
        margin=margin, contractual=contractual, data_time_unit=data_unit, converted=converted,
        transaction_model=type(transaction_model).__name__,
        spend_model=type(spend_model).__name__ if spend_model is not None else "price",
    )
    n = len(data)
    tx_cols = [c for c in data.columns if c != "weight"] if contractual else list(_TX_COLUMNS)
    cov_cols = [c for c in _covariate_columns(transaction_model) if c not in tx_cols]
    if cov_cols:
        require_columns(data, cov_cols, "customer_lifetime_value (covariates of the transaction model)")
    dyn_rows = None
    if dynamic:
        dyn_rows = _dynamic_rows(transaction_model, data, covariates)
        tx_uniq, tx_idx = data.iloc[:, :0], np.arange(n)
    else:
        tx_uniq, tx_idx = _compress(data, tx_cols + cov_cols)
    spend_fixed = sp_uniq = sp_idx = None
    if spend_model is not None:
        # spend inputs (frequency, a continuous average) are nearly unique per customer and the
        # spend model is cheap: evaluate it row by row rather than hashing the rows first
        spend_cols = _spend_columns(data, spend_model)
        require_columns(data, spend_cols, "customer_lifetime_value (spend model)")
        sp_uniq = data.loc[:, spend_cols]  # keeps the ids for error messages
        sp_uniq.attrs = dict(data.attrs)
        sp_idx = np.arange(n)
    else:
        spend_fixed = _fixed_spend(data, price)
    weights = data["weight"].to_numpy(dtype=float) if "weight" in data.columns else np.ones(n)
    return _Problem(
        transaction_model=transaction_model, spend_model=spend_model, settings=settings,
        index=data.index, periods=periods, table=table, tx_uniq=tx_uniq, tx_idx=tx_idx,
        sp_uniq=sp_uniq, sp_idx=sp_idx, spend_fixed=spend_fixed, weights=weights, dynamic=dyn_rows,
    )


def _dynamic_rows(model: Any, data: pd.DataFrame, covariates: Any) -> _DynamicRows:
    """Match the summary's customers to a time-varying model's fitted customers and validate
    the horizon's covariate table once (None: the table given to ``fit``)."""
    name = type(model).__name__
    positions = model.index_.get_indexer(data.index)
    if (positions < 0).any():
        unknown = data.index[positions < 0]
        raise DataValidationError(
            f"customer_lifetime_value: {len(unknown)} customer(s) of data were not fitted by the "
            f"{name} (e.g. {unknown[:5].tolist()}); a time-varying model values the customers "
            "it was fitted on (their purchase histories and covariate paths): value those, or "
            "refit on all customers"
        )
    grid = model._covariate_grid(covariates, None, None, "customer_lifetime_value")
    return _DynamicRows(grid=grid, positions=positions)


def _point_estimate(pb: _Problem, want_flows: bool) -> _Point:
    """Transaction component × spend component × margin (the discounting is in the former)."""
    s = pb.settings
    tx = _tx_component(pb.transaction_model, pb.tx_uniq, pb.periods, s.discount_rate, want_flows,
                       pb.cache, dynamic=pb.dynamic)
    spend = (
        pb.spend_fixed if pb.spend_model is None
        else _spend_component(pb.spend_model, pb.sp_uniq)[pb.sp_idx]
    )
    disc_tx = tx["discounted"][pb.tx_idx]
    clv = s.margin * spend * disc_tx
    return _Point(tx=tx, spend=spend, disc_tx=disc_tx, clv=clv, total=float(np.dot(pb.weights, clv)))


def _delta_interval(pb: _Problem, pt: _Point, level: float) -> CLVInterval:
    """Delta-method interval on the log scale (see :func:`clv_interval_delta`)."""
    s, weights, tx_idx = pb.settings, pb.weights, pb.tx_idx
    z = float(_norm_ppf(0.5 + level / 2.0))

    def fn_tx(m: Any) -> np.ndarray:
        return _tx_component(m, pb.tx_uniq, pb.periods, s.discount_rate, False, pb.cache,
                             dynamic=pb.dynamic)["discounted"]

    j_tx, cov_tx = _log_jacobian(pb.transaction_model, fn_tx, pt.tx["discounted"], "transaction model")
    var_d = np.einsum("ij,jk,ik->i", j_tx, cov_tx, j_tx)
    d_u = pt.tx["discounted"]
    rel = np.where(d_u > 0, var_d / np.where(d_u > 0, d_u, 1.0) ** 2, 0.0)[tx_idx]
    g_tx = j_tx.T @ np.bincount(tx_idx, weights=weights * s.margin * pt.spend, minlength=len(d_u))
    var_total = float(g_tx @ cov_tx @ g_tx)
    if pb.spend_model is not None:
        s_u = _spend_component(pb.spend_model, pb.sp_uniq)
        j_sp, cov_sp = _log_jacobian(
            pb.spend_model, lambda m: _spend_component(m, pb.sp_uniq), s_u, "spend model"
        )
        var_s = np.einsum("ij,jk,ik->i", j_sp, cov_sp, j_sp)
        rel = rel + np.where(s_u > 0, var_s / np.where(s_u > 0, s_u, 1.0) ** 2, 0.0)[pb.sp_idx]
        g_sp = j_sp.T @ np.bincount(pb.sp_idx, weights=weights * s.margin * pt.disc_tx, minlength=len(s_u))
        var_total += float(g_sp @ cov_sp @ g_sp)
    sd_log = np.sqrt(np.maximum(rel, 0.0))
    a, b = pt.clv * np.exp(-z * sd_log), pt.clv * np.exp(z * sd_log)
    est = pt.total
    sd_tot = math.sqrt(max(var_total, 0.0)) / abs(est) if est != 0 else 0.0
    lo_t, hi_t = est * math.exp(-z * sd_tot), est * math.exp(z * sd_tot)
    return CLVInterval(
        lower=pd.Series(np.minimum(a, b), index=pb.index, name="clv_lower"),
        upper=pd.Series(np.maximum(a, b), index=pb.index, name="clv_upper"),
        total_lower=min(lo_t, hi_t), total_upper=max(lo_t, hi_t), level=level, method="delta",
    )


def _sampling_interval(pb: _Problem, pt: _Point, level: float, n_draws: int, seed: int | None) -> CLVInterval:
    """Percentile interval over parameter draws (see :func:`clv_interval_sampling`)."""
    s, weights, tx_idx = pb.settings, pb.weights, pb.tx_idx
    ss = np.random.SeedSequence(seed)
    seed_tx, seed_sp = (int(q.generate_state(1)[0]) for q in ss.spawn(2))
    n_draws = int(n_draws)
    tx_models = _draw_models(pb.transaction_model, n_draws, seed_tx, "transaction model")
    tx_draws = np.vstack(
        [_tx_component(m, pb.tx_uniq, pb.periods, s.discount_rate, False, pb.cache,
                       dynamic=pb.dynamic)["discounted"]
         for m in tx_models]
    )
    alpha = (1.0 - level) / 2.0
    totals = np.zeros(n_draws)
    if pb.spend_model is not None:
        sp_models = _draw_models(pb.spend_model, n_draws, seed_sp, "spend model")
        sp_draws = np.vstack([_spend_component(m, pb.sp_uniq) for m in sp_models])
        pair = pd.DataFrame({"t": tx_idx, "s": pb.sp_idx})
        pair_uniq, pair_idx = _compress(pair, ["t", "s"])
        pt_, ps = pair_uniq["t"].to_numpy(), pair_uniq["s"].to_numpy()
        pair_w = np.bincount(pair_idx, weights=weights, minlength=len(pair_uniq))
        lo_u = np.empty(len(pt_))
        hi_u = np.empty(len(pt_))
        for start in range(0, len(pt_), _CHUNK):
            sl = slice(start, start + _CHUNK)
            vals = s.margin * tx_draws[:, pt_[sl]] * sp_draws[:, ps[sl]]
            q = np.quantile(vals, [alpha, 1.0 - alpha], axis=0)
            lo_u[sl], hi_u[sl] = q[0], q[1]
            totals += vals @ pair_w[sl]
        lo, hi = lo_u[pair_idx], hi_u[pair_idx]
    else:
        # price is fixed (no uncertainty); bounds scale with the sign of margin * price
        q = np.quantile(tx_draws, [alpha, 1.0 - alpha], axis=0)
        f = s.margin * pt.spend
        a, b = f * q[0][tx_idx], f * q[1][tx_idx]
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        tw = np.bincount(tx_idx, weights=weights * f, minlength=tx_draws.shape[1])
        totals = tx_draws @ tw
    tq = np.quantile(totals, [alpha, 1.0 - alpha])
    return CLVInterval(
        lower=pd.Series(lo, index=pb.index, name="clv_lower"),
        upper=pd.Series(hi, index=pb.index, name="clv_upper"),
        total_lower=float(tq[0]), total_upper=float(tq[1]), level=level, method="sample",
        n_draws=n_draws,
    )


def _assemble(
    pb: _Problem, pt: _Point, iv: CLVInterval | None, settings: CLVSettings, cash_flows: bool
) -> CLVResult:
    """Per-customer frame, total, interval and cash flows as one :class:`CLVResult`."""
    out = pd.DataFrame(index=pb.index)
    finite = pb.periods is not None
    if settings.contractual:
        if finite:
            out["expected_periods"] = pt.tx["expected"][pb.tx_idx]
        out["discounted_periods"] = pt.disc_tx
        out["price"] = pt.spend
    else:
        if finite:
            out["expected_purchases"] = pt.tx["expected"][pb.tx_idx]
        out["discounted_purchases"] = pt.disc_tx
        out["expected_spend"] = pt.spend
    out["clv"] = pt.clv
    if iv is not None:
        out["clv_lower"] = iv.lower.to_numpy()
        out["clv_upper"] = iv.upper.to_numpy()
    flows = total_flows = None
    if cash_flows and finite:
        values = settings.margin * pt.spend[:, None] * pt.tx["steps"][:, pb.tx_idx].T
        columns = pd.RangeIndex(1, values.shape[1] + 1, name="period")
        flows = pd.DataFrame(values, index=pb.index, columns=columns)
        total_flows = pd.Series(pb.weights @ values, index=columns, name="cash_flow")
    return CLVResult(
        frame=out, total=pt.total, settings=settings,
        total_lower=iv.total_lower if iv is not None else None,
        total_upper=iv.total_upper if iv is not None else None,
        cash_flows=flows, total_cash_flows=total_flows, periods=pb.table, _interval=iv,
    )


# ----------------------------------------------------------------------------------------------
# public: CLV and its intervals
# ----------------------------------------------------------------------------------------------
def customer_lifetime_value(
    transaction_model: Any,
    spend_model: Any | None,
    data: pd.DataFrame,
    *,
    horizon: float,
    time_unit: str,
    discount_rate: float,
    margin: float = 1.0,
    interval: float | None = None,
    n_draws: int = 200,
    seed: int | None = None,
    cash_flows: bool = False,
    price: float | pd.Series | str | None = None,
    interval_method: str = "sample",
    convert_unit: bool = False,
    covariates: pd.DataFrame | None = None,
) -> CLVResult:
    """Discounted customer lifetime value per customer, optionally with an uncertainty interval.

    Parameters
    ----------
    transaction_model : TransactionModel or ContractualModel
        Fitted (or ``from_params``) transaction model: BG/NBD, Pareto/NBD, MBG/NBD, or a
        contractual model (``contractual = True``, e.g. sBG) with
        ``expected_residual_lifetime(data, discount_rate)``.
    spend_model : SpendModel or None
        Model of spend per purchase (``expected_spend(data)``, Fader, Hardie & Lee 2005b eq. 5).
        ``None`` requires ``price``.
    data : pandas.DataFrame
        Customer summary indexed by customer id with ``frequency``, ``recency``, ``T`` (in the
        transaction model's time unit) and ``monetary_value`` when a spend model is used;
        optional ``weight`` column (this many identical customers) used for the total.
    horizon : float
        Horizon in ``time_unit`` (e.g. ``12`` with ``time_unit="M"``), or ``np.inf`` for the
        discounted expected residual transactions / lifetime where the model provides them.
    time_unit : str
        Unit of ``horizon`` and length of one cash-flow period. Months are 365.25/12 days.
    discount_rate : float
        Discount rate per YEAR (0.1 = 10 %), >= 0, compounded over the exact elapsed time.
    margin : float, default 1.0
        Share of spend kept as profit, in (0, 1] (1.0 = revenue).
    interval : float, optional
        Coverage of the parameter-uncertainty interval (e.g. 0.9); adds ``clv_lower`` and
        ``clv_upper`` and the total's interval. See :func:`clv_interval_sampling` and
        :func:`clv_interval_delta`.
    n_draws : int, default 200
        Parameter draws per model for the sampled interval.
    seed : int, optional
        Seed of the parameter draws.
    cash_flows : bool, default False
        Also return the discounted margin of every period, ``result.cash_flows`` (customers ×
        periods; rows sum to ``clv``) and ``result.total_cash_flows``.
    price : float, pandas.Series or str, optional
        Spend per purchase (non-contractual, instead of a spend model) or price per period of the
        model's time unit (contractual), finite and >= 0. A Series is aligned on the customer id;
        a string names a column of ``data``.
    interval_method : {"sample", "delta"}, default "sample"
        ``"sample"``: :func:`clv_interval_sampling`; ``"delta"``: :func:`clv_interval_delta`
        (much cheaper for millions of customers; close to ``"sample"`` when the standard
        errors are small).
    convert_unit : bool, default False
        When the summary's unit (``data.attrs["freq"]``) is not the transaction model's, rescale
        recency and T into the model's unit instead of raising.
    covariates : pandas.DataFrame, optional
        Only for a time-varying covariate model (:class:`custvalue.models.DynamicParetoNBDModel`):
        the covariate table (same columns as at fit, every fitted customer) covering the
        horizon; default the table given to ``fit``. The model values the customers it was
        fitted on (``data`` indexed by their ids supplies spend, e.g. ``frequency`` and
        ``monetary_value`` for a Gamma-Gamma model); each period's expected purchases are
        differences of its CET (Bachmann, Meierer & Naef 2021) at the period ends, discounted
        as for every other model. A table that ends before the horizon raises
        ``DataValidationError``.

    Returns
    -------
    CLVResult
        ``.frame`` per customer, ``.total`` [``.total_lower``, ``.total_upper``],
        ``.cash_flows``, ``.settings``, ``summary()``.

    Raises
    ------
    ParameterError
        Invalid horizon, rate, margin, price, interval, a model in the wrong role, time units
        that differ, or no way to value spend.
    DataValidationError
        Missing columns or an empty summary.
    ModelNotFittedError
        A model without parameters.

    Notes
    -----
    Per-period expected purchases are differences of the conditional expectation
    :math:`E[X(t)\\mid x, t_x, T]` at the period ends (Fader, Hardie & Lee 2005a eq. 10 for
    BG/NBD); identical ``(frequency, recency, T)`` rows are evaluated once. The steps are
    validation, unit and horizon, the transaction component (with discounting), the spend
    component, the interval and the assembly of the result.

    Examples
    --------
    >>> clv = customer_lifetime_value(bgf, ggf, rfm, horizon=12, time_unit="M",
    ...                               discount_rate=0.1, interval=0.9)  # doctest: +SKIP
    >>> clv.total, clv.total_lower, clv.total_upper                      # doctest: +SKIP
    >>> clv.frame.nlargest(10, "clv")                                    # doctest: +SKIP
    """
    _validate_interval(interval, interval_method, n_draws)
    if cash_flows:
        try:
            finite = np.isfinite(float(horizon))
        except (TypeError, ValueError):
            finite = True  # reported by the horizon check
        if not finite:
            raise ParameterError("cash_flows=True needs a finite horizon")
    pb = _prepare(
        transaction_model, spend_model, data, horizon=horizon, time_unit=time_unit,
        discount_rate=discount_rate, margin=margin, price=price, convert_unit=convert_unit,
        covariates=covariates,
    )
    pt = _point_estimate(pb, cash_flows)
    iv = None
    settings = pb.settings
    if interval is not None:
        if interval_method == "delta":
            iv = _delta_interval(pb, pt, interval)
        else:
            iv = _sampling_interval(pb, pt, interval, n_draws, seed)
        settings = _with_interval(settings, iv, seed)
    return _assemble(pb, pt, iv, settings, cash_flows)


def _clv_over_months(
    transaction_model: Any,
    spend_model: Any,
    customers: pd.DataFrame,
    *,
    horizon_months: float,
    discount_rate: float,
    margin: float,
    interval: float | None,
    n_draws: int,
    seed: int | None,
) -> CLVResult:
    """:func:`customer_lifetime_value` over ``horizon_months`` calendar months, as the value
    report and :func:`custvalue.segments.score_customers` value every customer."""
    return customer_lifetime_value(
        transaction_model, spend_model, customers, horizon=horizon_months, time_unit="M",
        discount_rate=discount_rate, margin=margin, interval=interval, n_draws=n_draws, seed=seed,
    )


def _with_interval(settings: CLVSettings, iv: CLVInterval, seed: int | None) -> CLVSettings:
    return replace(settings, interval=iv.level, interval_method=iv.method, n_draws=iv.n_draws,
                   seed=seed if iv.method == "sample" else None)


class _RequiredValuation(TypedDict):
    horizon: float
    time_unit: str
    discount_rate: float


class _Valuation(_RequiredValuation, total=False):
    """The valuation arguments :func:`clv_interval_delta` and :func:`clv_interval_sampling`
    forward to :func:`customer_lifetime_value`'s checks (``_prepare``), declared once; the
    meaning and the defaults of each are :func:`customer_lifetime_value`'s (horizon, time_unit
    and discount_rate are required)."""

    margin: float
    price: float | pd.Series | str | None
    convert_unit: bool
    covariates: pd.DataFrame | None


def _interval_only(
    function: str,
    transaction_model: Any,
    spend_model: Any | None,
    data: pd.DataFrame,
    valuation: Mapping[str, Any],
    interval: float,
    n_draws: int | None = None,
    seed: int | None = None,
) -> CLVInterval:
    """The interval alone, by the method of the public ``function`` that forwards here.

    ``n_draws=None`` means the delta method. ``valuation`` is checked against
    :class:`_Valuation` so that a misspelt or missing argument is named with ``function``, as
    Python names it for an explicit signature.
    """
    valuation = forwarded(function, valuation, _Valuation)
    method = "delta" if n_draws is None else "sample"
    _validate_interval(interval, method, 2 if n_draws is None else n_draws)
    pb = _prepare(transaction_model, spend_model, data, **valuation)
    pt = _point_estimate(pb, False)
    if n_draws is None:
        return _delta_interval(pb, pt, interval)
    return _sampling_interval(pb, pt, interval, n_draws, seed)


def clv_interval_delta(
    transaction_model: Any,
    spend_model: Any | None,
    data: pd.DataFrame,
    *,
    interval: float = 0.9,
    **valuation: Unpack[_Valuation],
) -> CLVInterval:
    """Delta-method interval of each customer's CLV and of the total (parameter uncertainty).

    The gradient of each customer's discounted purchases (or periods) and of the spend with
    respect to the log-parameters is taken by central differences (two model evaluations per
    parameter); with the log-parameter covariance :math:`\\Sigma_{\\log} = \\Sigma / (\\theta
    \\theta^\\top)` of each model (the inverse Hessian; independent models), the variance of
    :math:`\\log \\mathrm{CLV}_i` is :math:`J_i \\Sigma_{\\log} J_i^\\top / f_i^2` summed over
    the two models, and the interval is log-normal, :math:`\\mathrm{CLV}_i\\,
    e^{\\pm z\\, \\mathrm{sd}}` (first-order delta method, e.g. Casella & Berger 2002,
    Theorem 5.5.24). The total's variance is :math:`g^\\top \\Sigma_{\\log} g` with *g* the
    gradient of the weighted total, so customers' common dependence on the parameters is kept.

    Parameters
    ----------
    transaction_model, spend_model, data
        As for :func:`customer_lifetime_value`.
    interval : float, default 0.9
        Coverage.
    **valuation
        ``horizon``, ``time_unit`` and ``discount_rate`` (required), ``margin``, ``price`` and
        ``convert_unit``: as for :func:`customer_lifetime_value`.

    Returns
    -------
    CLVInterval

    Raises
    ------
    ParameterError
        A model without a covariance (``from_params`` without ``covariance=``), or any argument
        :func:`customer_lifetime_value` refuses.
    """
    return _interval_only("clv_interval_delta", transaction_model, spend_model, data, valuation,
                          interval)


def clv_interval_sampling(
    transaction_model: Any,
    spend_model: Any | None,
    data: pd.DataFrame,
    *,
    interval: float = 0.9,
    n_draws: int = 200,
    seed: int | None = None,
    **valuation: Unpack[_Valuation],
) -> CLVInterval:
    """Parameter-sampling interval of each customer's CLV and of the total.

    ``n_draws`` parameter sets are drawn independently from each model's estimated sampling
    distribution (``model.sample_params``: the asymptotic normal distribution of the
    log-parameters, covariance from the inverse Hessian), every customer's CLV is recomputed for
    each pair of draws (``model.with_params``), and the interval is the equal-tailed percentile
    interval of the recomputed values (the parametric-bootstrap-style approach of Krinsky & Robb
    1986). The total's interval comes from the per-draw totals. Reproducible with ``seed``.

    Parameters
    ----------
    transaction_model, spend_model, data, interval, **valuation
        As for :func:`clv_interval_delta`.
    n_draws : int, default 200
        Draws per model (>= 2).
    seed : int, optional
        Seed of the parameter draws.

    Returns
    -------
    CLVInterval
        Percentile bounds per customer and of the total (``method="sample"``).
    """
    return _interval_only("clv_interval_sampling", transaction_model, spend_model, data, valuation,
                          interval, n_draws, seed)


def total_value(clv: CLVResult | pd.DataFrame) -> pd.Series:
    """Total value of a :func:`customer_lifetime_value` result, with its interval when computed.

    The interval of the total is the percentile interval of the per-draw totals (each draw
    recomputes every customer's CLV with one parameter set of each model), or the delta-method
    interval of the total, so it accounts for the fact that parameter errors move all
    customers' values together.

    Parameters
    ----------
    clv : CLVResult or pandas.DataFrame
        Result of :func:`customer_lifetime_value`; a DataFrame with a ``clv`` column gives its
        sum (no interval).

    Returns
    -------
    pandas.Series
        ``estimate`` [, ``lower``, ``upper``, ``interval``, ``method``, ``n_draws``].
    """
    if isinstance(clv, CLVResult):
        return clv.total_table()
    if isinstance(clv, pd.DataFrame) and "clv" in clv.columns:
        return pd.Series({"estimate": float(clv["clv"].sum())}, name="total_value")
    raise DataValidationError(
        "total_value needs the CLVResult returned by customer_lifetime_value (or a frame with a "
        f"'clv' column), got {type(clv).__name__}"
    )


# ----------------------------------------------------------------------------------------------
# public: heuristic LTV
# ----------------------------------------------------------------------------------------------
_MONTH_DAYS = DAYS_PER_UNIT["M"]


def _customer_orders(
    tx: pd.DataFrame,
    observation_end: Any,
    customer_col: str,
    date_col: str,
    amount_col: str,
    order_col: str | None,
    by: str | None,
) -> pd.DataFrame:
    """Per customer: ``first`` / ``last`` purchase, ``n_orders``, ``revenue`` and ``segment``,
    counted by :func:`custvalue.summary.rfm_summary` — so an order here is exactly an order there
    (distinct order ids; without an order column, distinct timestamps of a customer)."""
    from .summary import rfm_summary

    rfm = rfm_summary(
        tx, freq="D", observation_end=observation_end, customer_col=customer_col,
        date_col=date_col, amount_col=amount_col, order_col=order_col,
        attributes=[by] if by else (),
    )
    return pd.DataFrame(
        {
            "first": pd.to_datetime(rfm["first_purchase"]),
            "last": pd.to_datetime(rfm["last_purchase"]),
            "n_orders": rfm["n_orders"].astype(float),
            "revenue": rfm["total_spend"].astype(float),
            "segment": rfm[by].to_numpy() if by else "all",
        },
        index=rfm.index,
    )


def heuristic_ltv(
    tx: pd.DataFrame,
    *,
    margin: float,
    lifetime_months: float | None = None,
    by: str | None = None,
    horizon_months: float | None = None,
    lifetime_method: str = "churn",
    lapse_months: float = 6.0,
    observation_end: Any = None,
    customer_col: str = "customer_id",
    date_col: str = "date",
    amount_col: str = "amount",
    order_col: str | None = None,
) -> pd.DataFrame:
    """Rule-of-thumb lifetime value per segment: average check × purchases per month × margin ×
    average lifetime in months.

    This is the spreadsheet formula many teams use (e.g. Gupta & Lehmann 2003 "Customers as
    assets", the simple retention-based LTV). It treats every customer in a segment as the
    segment average: no heterogeneity in purchase rates, no customer-level dropout, and value
    from the first purchase on (not the future value of today's customers). Put it beside the
    model with :func:`compare_heuristic` to see where it goes wrong.

    Parameters
    ----------
    tx : pandas.DataFrame
        Canonical transactions (``customer_id``, ``date``, ``amount`` [, ``order_id``], attributes).
    margin : float
        Profit margin applied to spend.
    lifetime_months : float, optional
        Average customer lifetime in months. Estimated from the data when not given (see
        ``lifetime_method``).
    by : str, optional
        Attribute column defining segments; a customer belongs to the segment of their first
        transaction. Without it, one row ``"all"``.
    horizon_months : float, optional
        Cap the lifetime at this many months (value over a horizon, for a like-for-like comparison
        with a model CLV over the same horizon).
    lifetime_method : {"churn", "span"}
        How the lifetime is estimated when ``lifetime_months`` is None:

        - ``"churn"``: 1 / monthly churn rate. A customer has *lapsed* when their last purchase is
          more than ``lapse_months`` before the observation end; the churn rate is lapsed
          customers divided by the total months customers were observed active (first purchase to
          last purchase if lapsed, else to the observation end) — the maximum-likelihood rate of an
          exponential lifetime with right-censoring. If nobody lapsed, the rate is computed as if
          one customer had (a lower bound on the lifetime) and a warning is raised.
        - ``"span"``: mean observed span from first to last purchase (biased low: active
          customers' spans are cut off at the observation end).
    lapse_months : float, default 6
        Inactivity after which a customer counts as lapsed (``"churn"`` method).
    observation_end : date-like, optional
        End of the observation window; default the last transaction date.
    customer_col, date_col, amount_col : str
        Column names.
    order_col : str, optional
        Order id column; default ``"order_id"`` when present. Orders are counted exactly as
        :func:`custvalue.summary.rfm_summary` counts ``n_orders``: distinct order ids, and without
        an order column (or for lines without an order id) the distinct timestamps of a customer
        (lines at one timestamp form one order). Transactions after ``observation_end`` are
        left out, as in the summary.

    Returns
    -------
    pandas.DataFrame
        One row per segment: ``n_customers``, ``n_orders``, ``revenue``, ``avg_check`` (revenue /
        orders), ``purchases_per_month`` (orders per customer-month of tenure, tenure = first
        purchase to observation end, at least one month), ``margin``, ``lifetime_months``,
        ``heuristic_ltv`` (per customer) and ``heuristic_total``. ``attrs`` records the method.
    """
    if not isinstance(tx, pd.DataFrame):
        raise DataValidationError(f"tx must be a transactions DataFrame, got {type(tx).__name__}")
    if order_col is None and "order_id" in tx.columns:
        order_col = "order_id"
    needed = [customer_col, date_col, amount_col] + ([order_col] if order_col else []) + ([by] if by else [])
    require_columns(tx, needed, "heuristic_ltv")
    if len(tx) == 0:
        raise DataValidationError("tx has no transactions: nothing to summarise")
    if lifetime_method not in ("churn", "span"):
        raise ParameterError(f"lifetime_method must be 'churn' or 'span', got {lifetime_method!r}")
    if lifetime_months is not None and not (np.isfinite(lifetime_months) and lifetime_months > 0):
        raise ParameterError(f"lifetime_months must be a positive number, got {lifetime_months}")
    margin = _check_margin(margin)
    amounts = pd.to_numeric(tx[amount_col], errors="coerce")
    if amounts.isna().any():
        bad = tx.loc[amounts.isna().to_numpy(), amount_col].head(3).tolist()
        raise DataValidationError(
            f"column {amount_col!r} has {int(amounts.isna().sum())} non-numeric values (e.g. {bad})"
        )
    cust = _customer_orders(tx, observation_end, customer_col, date_col, amount_col, order_col, by)
    end = (
        pd.Timestamp(observation_end) if observation_end is not None
        else pd.Timestamp(cust["last"].max())
    )

    month = pd.Timedelta(days=_MONTH_DAYS)
    cust["tenure"] = np.maximum((end - cust["first"]) / month, 1.0)
    lapsed = (end - cust["last"]) / month > lapse_months
    cust["lapsed"] = lapsed.astype(float)
    cust["exposure"] = np.where(lapsed, (cust["last"] - cust["first"]) / month, (end - cust["first"]) / month)
    cust["span"] = (cust["last"] - cust["first"]) / month

    g = cust.groupby("segment", sort=True, dropna=False)
    res = pd.DataFrame(
        {
            "n_customers": g.size(),
            "n_orders": g["n_orders"].sum(),
            "revenue": g["revenue"].sum(),
        }
    )
    res["avg_check"] = res["revenue"] / res["n_orders"]
    res["purchases_per_month"] = res["n_orders"] / g["tenure"].sum()
    res["margin"] = float(margin)
    if lifetime_months is not None:
        life = pd.Series(float(lifetime_months), index=res.index)
        method = "given"
    elif lifetime_method == "span":
        life = g["span"].mean()
        method = "span"
    else:
        n_lapsed = g["lapsed"].sum()
        exposure = g["exposure"].sum()
        if (n_lapsed == 0).any():
            warnings.warn(
                "no customer has lapsed (no purchase in the last "
                f"{lapse_months:g} months) in segment(s) {list(res.index[n_lapsed == 0])[:5]}: "
                "their lifetime is a lower bound computed as if one customer had lapsed; "
                "give lifetime_months or a shorter lapse_months",
                stacklevel=2,
            )
        life = exposure / np.maximum(n_lapsed, 1.0)
        method = f"churn (lapse after {lapse_months:g} months)"
    if horizon_months is not None:
        life = np.minimum(life, float(horizon_months))
    res["lifetime_months"] = life
    res["heuristic_ltv"] = res["avg_check"] * res["purchases_per_month"] * margin * res["lifetime_months"]
    res["heuristic_total"] = res["heuristic_ltv"] * res["n_customers"]
    res.index.name = by or "segment"
    res.attrs = {
        "lifetime_method": method,
        "observation_end": end,
        "horizon_months": horizon_months,
        "formula": "avg_check × purchases_per_month × margin × lifetime_months",
    }
    return res


def compare_heuristic(
    heuristic: pd.DataFrame,
    clv: CLVResult | pd.DataFrame,
    summary: pd.DataFrame,
    *,
    by: str | None = None,
    clv_col: str = "clv",
) -> pd.DataFrame:
    """Put the heuristic LTV beside the model CLV per segment and say why they differ.

    Parameters
    ----------
    heuristic : pandas.DataFrame
        Result of :func:`heuristic_ltv` (same ``by``).
    clv : CLVResult or pandas.DataFrame
        Result of :func:`customer_lifetime_value` (or its ``frame``), indexed by customer id.
    summary : pandas.DataFrame
        Customer summary (``frequency``, ``T`` and the ``by`` column) indexed by customer id.
    by : str, optional
        Segment column in ``summary``; None compares the single ``"all"`` row.
    clv_col : str, default "clv"
        Column of ``clv`` to compare.

    Returns
    -------
    pandas.DataFrame
        Per segment: ``heuristic_ltv``, ``model_clv`` (mean), ``ratio`` (heuristic / model),
        ``share_one_time`` (customers with no repeat purchase), ``rate_cv`` (coefficient of
        variation of the observed repeat rate frequency / T — heterogeneity the heuristic
        averages away), ``top_decile_share`` (share of model value in the top 10 % of customers)
        and ``explanation`` (a sentence for reports).
    """
    require_columns(summary, ["frequency", "T"] + ([by] if by else []), "compare_heuristic")
    if isinstance(clv, CLVResult):
        clv = clv.frame
    if clv_col not in clv.columns:
        raise DataValidationError(f"clv has no column {clv_col!r} (found {list(clv.columns)})")
    s = summary.loc[:, ["frequency", "T"]].copy()
    s["segment"] = summary[by].to_numpy() if by else "all"
    s["clv"] = clv[clv_col].reindex(s.index).to_numpy()
    if s["clv"].isna().any():
        raise DataValidationError(
            f"{int(s['clv'].isna().sum())} customers of the summary have no CLV; compute CLV on the "
            "same summary"
        )
    s["rate"] = np.where(s["T"] > 0, s["frequency"] / s["T"].where(s["T"] > 0, 1.0), 0.0)
    s["one_time"] = (s["frequency"] == 0).astype(float)
    g = s.groupby("segment", sort=True, dropna=False)

    def _top_share(v: pd.Series) -> float:
        arr = np.sort(v.to_numpy())[::-1]
        k = max(1, math.ceil(0.1 * len(arr)))
        tot = arr.sum()
        return float(arr[:k].sum() / tot) if tot > 0 else float("nan")

    mean_rate = g["rate"].mean()
    res = pd.DataFrame(
        {
            "heuristic_ltv": heuristic["heuristic_ltv"].reindex(mean_rate.index),
            "model_clv": g["clv"].mean(),
            "share_one_time": g["one_time"].mean(),
            "rate_cv": (g["rate"].std(ddof=0) / mean_rate.where(mean_rate > 0)).fillna(0.0),
            "top_decile_share": g["clv"].agg(_top_share),
        }
    )
    res["ratio"] = res["heuristic_ltv"] / res["model_clv"].where(res["model_clv"] != 0)
    texts = []
    for seg, row in res.iterrows():  # one row per segment (few), not per customer
        parts = []
        if pd.isna(row["heuristic_ltv"]):
            texts.append(f"segment {seg!r} is missing from the heuristic table")
            continue
        if row["ratio"] > 1.25:
            parts.append(
                f"the heuristic is {row['ratio']:.1f}× the model: it credits every customer with "
                "the segment's average purchase rate and lifetime, although "
                f"{row['share_one_time']:.0%} never bought again and inactive customers are "
                "likely gone"
            )
        elif row["ratio"] < 0.8:
            parts.append(
                f"the heuristic is {row['ratio']:.1f}× the model: the observed lifetime is cut off "
                "by the end of the data (active customers are still buying), so it undervalues "
                "loyal customers"
            )
        else:
            parts.append("heuristic and model agree within 25 %")
        if row["rate_cv"] > 1:
            parts.append(
                f"purchase rates vary a lot between customers (CV {row['rate_cv']:.1f}); the top "
                f"10 % hold {row['top_decile_share']:.0%} of model value, which an average hides"
            )
        texts.append("; ".join(parts) + ".")
    res["explanation"] = texts
    res.index.name = by or "segment"
    return res[
        ["heuristic_ltv", "model_clv", "ratio", "share_one_time", "rate_cv", "top_decile_share",
         "explanation"]
    ]
