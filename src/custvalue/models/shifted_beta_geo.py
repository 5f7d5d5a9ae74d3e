"""Shifted-beta-geometric (sBG) model of contract renewals.

Fader, P. S. & Hardie, B. G. S. (2007), "How to Project Customer Retention", *Journal of
Interactive Marketing* 21(1), 76-90 (FH 2007 below), and Fader, P. S. & Hardie, B. G. S. (2010),
"Customer-Base Valuation in a Contractual Setting: The Perils of Ignoring Heterogeneity",
*Marketing Science* 29(1), 85-93 (FH 2010 below).

At the end of every period a customer who is still under contract cancels with probability
``theta`` (constant for that customer); across customers ``theta ~ Beta(alpha, beta)``. The
lifetime ``L`` (number of periods paid for) is shifted-geometric given ``theta``:

* ``P(L = t) = B(alpha + 1, beta + t - 1) / B(alpha, beta)``  (FH 2007)
* ``S(t) = P(L > t) = B(alpha, beta + t) / B(alpha, beta)``    (FH 2007)
* ``r(t) = S(t) / S(t - 1) = (beta + t - 1) / (alpha + beta + t - 1)`` (FH 2007), the
  period-``t`` retention rate, which rises with ``t`` (sorting of a heterogeneous cohort).

Data per customer (or per group of identical customers, with a ``weight``): ``T`` = number of
renewal periods observed and ``churned`` = whether the customer cancelled at the end of period
``T``. A churned row contributes ``log P(L = T)``, an active one ``log S(T)`` (it has renewed ``T``
times). Parameters can be shared by all cohorts or estimated per ``cohort`` (``by_cohort=True``).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy.special import betaln, digamma

from .._special import hyp2f1_a1
from ..errors import DataValidationError, ParameterError
from .base import BaseModel

__all__ = [
    "ShiftedBetaGeoModel",
    "sbg_churn_probability",
    "sbg_derl",
    "sbg_log_likelihood",
    "sbg_retention_rate",
    "sbg_survival",
]


def _f(*arrays: Any) -> list[np.ndarray]:
    return [np.asarray(a, dtype=float) for a in arrays]


def sbg_survival(alpha, beta, t) -> np.ndarray:
    """S(t) = B(alpha, beta + t) / B(alpha, beta), FH 2007; S(0) = 1."""
    alpha, beta, t = _f(alpha, beta, t)
    return np.exp(betaln(alpha, beta + t) - betaln(alpha, beta))


def sbg_churn_probability(alpha, beta, t) -> np.ndarray:
    """P(L = t) = B(alpha + 1, beta + t - 1) / B(alpha, beta) for t >= 1, FH 2007."""
    alpha, beta, t = _f(alpha, beta, t)
    return np.exp(betaln(alpha + 1.0, beta + t - 1.0) - betaln(alpha, beta))


def sbg_retention_rate(alpha, beta, t) -> np.ndarray:
    """Period-t retention rate r(t) = (beta + t - 1) / (alpha + beta + t - 1), FH 2007."""
    alpha, beta, t = _f(alpha, beta, t)
    return (beta + t - 1.0) / (alpha + beta + t - 1.0)


def sbg_log_likelihood(alpha, beta, T, churned) -> np.ndarray:
    """Per-row log-likelihood: log P(L = T) if churned else log S(T) (FH 2007, appendix)."""
    alpha, beta, T = _f(alpha, beta, T)
    churned = np.asarray(churned, dtype=bool)
    log_b = betaln(alpha, beta)
    lost = betaln(alpha + 1.0, beta + np.maximum(T, 1.0) - 1.0) - log_b
    alive = betaln(alpha, beta + T) - log_b
    return np.where(churned, lost, alive)


def sbg_derl(alpha, beta, renewals, discount_rate) -> np.ndarray:
    """Discounted expected residual lifetime of a customer who has renewed ``n`` times.

    FH 2010, eq. (6): for a customer who has made ``n - 1`` renewals (in their notation),
    evaluated just before the next renewal decision,

    .. math::

        DERL(d \\mid \\alpha, \\beta, n-1) = \\frac{B(\\alpha, \\beta+n)}{B(\\alpha, \\beta+n-1)}
            \\; {}_2F_1\\!\\left(1, \\beta+n; \\alpha+\\beta+n; \\frac{1}{1+d}\\right)

    This function takes the number of renewals made so far, ``renewals = n - 1``. The value is
    the expected number of *future* payments, the next one (made if the customer renews now)
    undiscounted and the k-th later one discounted by ``(1+d)^-k``; multiply by the price per
    period to get residual value. ``renewals = -1`` gives the value of a customer about to make
    the first payment (FH 2010's ``E(DEL)``): ``2F1(1, beta; alpha+beta; 1/(1+d))``.

    Parameters
    ----------
    alpha, beta : float or array_like
        sBG parameters.
    renewals : array_like
        Renewals made so far (>= -1).
    discount_rate : float
        Discount rate per model period, > 0.
    """
    alpha, beta, k, d = _f(alpha, beta, renewals, discount_rate)
    if np.any(d <= 0):
        raise ParameterError(
            f"discount_rate must be > 0 per period, got {discount_rate!r}: the expected lifetime "
            "sum does not converge without discounting for small alpha"
        )
    if np.any(k < -1):
        raise ParameterError("renewals must be >= -1 (-1 = before the first payment)")
    n = k + 1.0
    with np.errstate(all="ignore"):
        # S(n)/S(n-1) = (beta + n - 1)/(alpha + beta + n - 1): P(next renewal | n-1 renewals)
        ratio = np.where(n == 0, 1.0, (beta + n - 1.0) / (alpha + beta + n - 1.0))
    return ratio * hyp2f1_a1(beta + n, alpha + beta + n, 1.0 / (1.0 + d))


def _cohort_names(label: Any) -> tuple[str, str]:
    return f"alpha[{label}]", f"beta[{label}]"


def _parse_param_names(names: list[str]) -> list[str] | None:
    """Cohort labels from names ``alpha[c]``/``beta[c]``; ``None`` for shared ``alpha, beta``."""
    if sorted(names) == ["alpha", "beta"]:
        return None
    cohorts: list[str] = []
    for nm in names:
        if nm.startswith("alpha[") and nm.endswith("]"):
            cohorts.append(nm[6:-1])
    expected = sorted(n for c in cohorts for n in _cohort_names(c))
    if not cohorts or sorted(names) != expected:
        raise ParameterError(
            "ShiftedBetaGeoModel needs the parameters alpha and beta, or one pair "
            f"alpha[<cohort>], beta[<cohort>] per cohort; got {names}"
        )
    return cohorts


class ShiftedBetaGeoModel(BaseModel):
    """Shifted-beta-geometric model of contract renewals (FH 2007), valued with DERL (FH 2010).

    Parameters
    ----------
    by_cohort : bool, default False
        ``False``: one ``alpha, beta`` shared by every customer. ``True``: one pair per value of
        the ``cohort`` column (named ``alpha[<cohort>]``, ``beta[<cohort>]``), as in FH 2007's
        separate fits of the "regular" and "high end" segments. The cohorts' likelihoods are
        independent, so this equals separate fits, with one covariance matrix for all.
    penalizer_coef : float, default 0.0
        L2 penalty on the parameters (as in lifetimes).
    time_unit : str, optional
        Length of one contract period (``"M"`` monthly, ``"Y"`` yearly...). ``None`` takes it
        from ``data.attrs["freq"]`` (set by :func:`custvalue.summary.subscriptions`).

    Notes
    -----
    ``fit(data)`` takes one row per customer (or per group of identical customers with a
    ``weight`` column): ``T`` = renewal periods observed and ``churned`` = whether the customer
    cancelled at the end of period ``T`` (``False``: still active, i.e. renewed ``T`` times).
    A published survivor table becomes such rows with
    :func:`custvalue.summary.survivors_to_customers`.

    ``contractual = True``: :func:`custvalue.value.customer_lifetime_value` values these models
    with a price per period times :meth:`expected_residual_lifetime`.
    """

    _param_names: ClassVar[tuple[str, ...]] = ("alpha", "beta")
    _data_columns: ClassVar[tuple[str, ...]] = ("T", "churned")
    _integer_columns: ClassVar[tuple[str, ...]] = ("T", "churned")
    _time_columns: ClassVar[tuple[str, ...]] = ("T",)
    _model_name: ClassVar[str] = "shifted-beta-geometric, Fader & Hardie 2007"
    contractual: ClassVar[bool] = True

    def __init__(
        self, by_cohort: bool = False, penalizer_coef: float = 0.0, time_unit: str | None = None
    ) -> None:
        super().__init__(penalizer_coef=penalizer_coef, time_unit=time_unit)
        self.by_cohort = bool(by_cohort)

    # parameter names follow the parameters (shared, or one pair per cohort): base-class hooks
    def _names(self) -> tuple[str, ...]:
        fitting = getattr(self, "_fit_cohorts", None)
        if fitting is not None:  # during fit: () for shared parameters, else the cohorts
            if not fitting:
                return type(self)._param_names
            return tuple(n for c in fitting for n in _cohort_names(c))
        params = getattr(self, "params_", None)
        if params is not None:
            return tuple(str(i) for i in params.index)
        return type(self)._param_names

    def _fit_columns(self) -> tuple[str, ...]:
        if getattr(self, "_fit_cohorts", None):
            return ("T", "churned", "_cohort")
        return type(self)._data_columns

    @classmethod
    def _check_params(cls, params: Any) -> pd.Series:
        params = dict(params)
        names = [str(k) for k in params]
        cohorts = _parse_param_names(names)
        order = ["alpha", "beta"] if cohorts is None else [n for c in cohorts for n in _cohort_names(c)]
        values = np.array([float(params[n]) for n in order], dtype=np.float64)
        bad = ~np.isfinite(values) | (values <= 0)
        if bad.any():
            shown = {n: params[n] for n, b in zip(order, bad, strict=True) if b}
            raise ParameterError(f"ShiftedBetaGeoModel parameters must be finite and > 0; got {shown}")
        return pd.Series(values, index=order, name="estimate", dtype=np.float64)

    @property
    def cohorts_(self) -> list[str] | None:
        """Cohort labels of a per-cohort model (``None`` when the parameters are shared)."""
        if getattr(self, "params_", None) is None:
            return None
        return _parse_param_names([str(i) for i in self.params_.index])

    # ------------------------------------------------------------------ fitting
    def fit(self, data: pd.DataFrame, *, weights: Any = None) -> ShiftedBetaGeoModel:
        """Fit by maximum likelihood (FH 2007); see the class notes for the columns.

        Raises
        ------
        DataValidationError
            Missing columns, negative or fractional ``T``, ``churned`` not 0/1, a churned
            customer with ``T = 0``, or ``by_cohort=True`` without a ``cohort`` column.
        """
        if not isinstance(data, pd.DataFrame):
            raise DataValidationError(
                "ShiftedBetaGeoModel.fit expects a DataFrame with columns T and churned "
                f"(one row per customer); got {type(data).__name__}"
            )
        if not self.by_cohort:
            self._fit_cohorts = ()  # a new fit's names come from its data, not a previous fit
            try:
                return super().fit(data, weights=weights)
            finally:
                self._fit_cohorts = None
        if "cohort" not in data.columns:
            raise DataValidationError(
                "ShiftedBetaGeoModel(by_cohort=True) needs a 'cohort' column; the frame has "
                f"{list(data.columns)[:12]}. Use custvalue.summary.subscriptions (it adds the "
                "acquisition cohort) or fit with by_cohort=False"
            )
        labels = data["cohort"].astype(str)
        if data["cohort"].isna().any():
            raise DataValidationError(
                f"column 'cohort' has {int(data['cohort'].isna().sum())} missing values; "
                "give every customer a cohort"
            )
        codes, uniq = pd.factorize(labels, sort=True)
        frame = data.drop(columns=["cohort"]).assign(_cohort=codes.astype(float))
        frame.attrs = dict(data.attrs)
        self._fit_cohorts = [str(c) for c in uniq]
        try:
            super().fit(frame, weights=weights)
        finally:
            self._fit_cohorts = None  # from here on the names come from params_
        return self

    def _split(self, log_params: np.ndarray, data: Any) -> tuple[np.ndarray, np.ndarray]:
        p = np.exp(np.asarray(log_params, dtype=float))
        if "_cohort" in data and p.size > 2:
            code = np.asarray(data["_cohort"], dtype=int)
            return p[0::2][code], p[1::2][code]
        return np.full(len(data["T"]), p[0]), np.full(len(data["T"]), p[1])

    def _log_likelihood_rows(self, log_params: np.ndarray, data: Any) -> np.ndarray:
        a, b = self._split(log_params, data)
        return sbg_log_likelihood(a, b, data["T"], data["churned"] > 0.5)

    def _gradient_rows(self, log_params: np.ndarray, data: Any) -> np.ndarray:
        a, b = self._split(log_params, data)
        T = np.asarray(data["T"], dtype=float)
        churned = np.asarray(data["churned"]) > 0.5
        ab = digamma(a + b)
        # churned: log B(a+1, b+T-1) - log B(a, b); active: log B(a, b+T) - log B(a, b)
        da = np.where(
            churned,
            digamma(a + 1.0) - digamma(a + b + T) - digamma(a) + ab,
            ab - digamma(a + b + T),
        )
        db = np.where(
            churned,
            digamma(b + np.maximum(T, 1.0) - 1.0) - digamma(a + b + T) - digamma(b) + ab,
            digamma(b + T) - digamma(a + b + T) - digamma(b) + ab,
        )
        k = len(self._names())
        out = np.zeros((T.size, k))
        if k == 2:
            out[:, 0], out[:, 1] = da * a, db * b
        else:
            code = np.asarray(data["_cohort"], dtype=int)
            rows = np.arange(T.size)
            out[rows, 2 * code] = da * a
            out[rows, 2 * code + 1] = db * b
        return out

    def _initial_params(self, data: Any, weights: np.ndarray) -> np.ndarray:
        return np.ones(len(self._names()))

    def _validate(self, data: Any, index: pd.Index) -> None:
        churned = data["churned"]
        bad = (churned != 0) & (churned != 1)
        if bad.any():
            ids = ", ".join(repr(i) for i in list(index[bad][:5]))
            raise DataValidationError(
                f"column 'churned' must be True/False (or 1/0); {int(bad.sum())} of {len(index)} "
                f"rows are not (customers {ids}, values {churned[bad][:5].tolist()})"
            )
        bad = (churned == 1) & (data["T"] < 1)
        if bad.any():
            ids = ", ".join(repr(i) for i in list(index[bad][:5]))
            raise DataValidationError(
                f"{int(bad.sum())} churned customers have T = 0 (customers {ids}); a customer "
                "who cancels has paid at least one period, so T must be >= 1 when churned is True"
            )

    # ------------------------------------------------------------------ helpers
    def _pairs(self, cohort: Any = None) -> tuple[np.ndarray, np.ndarray, list[str] | None]:
        p = self._params_array()
        cohorts = self.cohorts_
        if cohorts is None:
            return p[:1], p[1:2], None
        if cohort is not None:
            key = str(cohort)
            if key not in cohorts:
                raise ParameterError(f"unknown cohort {cohort!r}; the model has cohorts {cohorts}")
            j = cohorts.index(key)
            return p[2 * j : 2 * j + 1], p[2 * j + 1 : 2 * j + 2], [key]
        return p[0::2], p[1::2], cohorts

    def _row_params(self, data: Any, context: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, pd.Index]:
        arrays, index = self._prediction_input(data, ("T", "churned"), context=context)
        n = len(index)
        cohorts = self.cohorts_
        p = self._params_array()
        if cohorts is None:
            a, b = np.full(n, p[0]), np.full(n, p[1])
        else:
            if not isinstance(data, pd.DataFrame) or "cohort" not in data.columns:
                raise DataValidationError(
                    f"this ShiftedBetaGeoModel has per-cohort parameters ({cohorts[:5]}...); "
                    f"{context} needs a 'cohort' column to pick them"
                )
            labels = data["cohort"].astype(str).to_numpy()
            pos = pd.Index(cohorts).get_indexer(labels)
            if (pos < 0).any():
                unknown = sorted(set(labels[pos < 0].tolist()))[:5]
                raise DataValidationError(
                    f"{int((pos < 0).sum())} rows have cohorts the model was not fitted on "
                    f"({unknown}); known cohorts: {cohorts[:10]}"
                )
            a, b = p[0::2][pos], p[1::2][pos]
        return a, b, arrays["T"], arrays["churned"] > 0.5, index

    @classmethod
    def _t_array(cls, t: Any, name: str = "t") -> np.ndarray:
        return cls._horizon_array(t, name, unit="periods")

    def _curve(self, fn: Any, t: Any, cohort: Any, name: str) -> pd.Series | pd.DataFrame:
        t_arr = self._t_array(t)
        a, b, labels = self._pairs(cohort)
        flat = np.atleast_1d(t_arr)
        vals = fn(a[None, :], b[None, :], flat[:, None])
        idx = pd.Index(flat, name="t")
        if labels is None or (cohort is not None):
            out = pd.Series(vals[:, 0], index=idx, name=name)
            return out.iloc[0] if t_arr.ndim == 0 else out
        return pd.DataFrame(vals, index=idx, columns=pd.Index(labels, name="cohort"))

    # ------------------------------------------------------------------ predictions
    def survival(self, t: Any, cohort: Any = None) -> Any:
        """S(t): share of a new cohort still under contract after ``t`` periods (FH 2007).

        Returns a float for scalar ``t``, a Series indexed by ``t`` otherwise, or a DataFrame
        with one column per cohort for a per-cohort model when ``cohort`` is not given.
        """
        return self._curve(sbg_survival, t, cohort, "survival")

    def retention_rate(self, t: Any, cohort: Any = None) -> Any:
        """Period-``t`` retention rate r(t) = S(t)/S(t-1) (FH 2007), for t >= 1.

        Rises with ``t`` because the customers most likely to cancel leave first.
        """
        t_arr = self._t_array(t)
        if np.any(t_arr < 1):
            raise ParameterError("retention_rate is defined for periods t >= 1")
        return self._curve(sbg_retention_rate, t, cohort, "retention_rate")

    def probability_alive(self, data: pd.DataFrame, t: float = 0) -> pd.Series:
        """P(customer still under contract ``t`` periods from now).

        For an active customer who has renewed ``T`` times this is ``S(T + t)/S(T) =
        B(alpha, beta + T + t) / B(alpha, beta + T)`` (the posterior of theta after ``T``
        renewals is Beta(alpha, beta + T), FH 2010 sec. 2); ``t = 0`` gives 1. A churned
        customer gives 0. ``t`` is one number of periods or one per customer (array in row
        order, Series indexed by customer id, or a column of ``data``).
        """
        a, b, T, churned, index = self._row_params(data, "probability_alive")
        t = self._horizon(t, data, index)
        vals = np.exp(betaln(a, b + T + t) - betaln(a, b + T))
        return self._as_series(np.where(churned, 0.0, vals), index, "probability_alive")

    def expected_residual_lifetime(self, data: pd.DataFrame, discount_rate: float) -> pd.Series:
        """Discounted expected residual lifetime (DERL) per customer, FH 2010 eq. (6).

        For an active customer who has renewed ``T`` times: the expected number of further
        payments, evaluated just before the next renewal decision (the next payment is not
        discounted, the k-th after it by ``(1 + discount_rate) ** -k``). Churned customers get 0.
        Multiply by the price per period for residual value.

        Parameters
        ----------
        data : DataFrame
            ``T`` (renewals so far) and ``churned`` per customer (+ ``cohort`` for a per-cohort
            model).
        discount_rate : float
            Discount rate per model period (> 0), e.g. ``1.1 ** (1 / 12) - 1`` monthly for 10%
            a year.
        """
        d = self._rate(discount_rate)
        a, b, T, churned, index = self._row_params(data, "expected_residual_lifetime")
        vals = np.zeros(T.size)
        live = ~churned
        if live.any():
            vals[live] = sbg_derl(a[live], b[live], T[live], d)
        return self._as_series(vals, index, "derl")

    def expected_residual_lifetime_new_customer(self, discount_rate: float, cohort: Any = None) -> Any:
        """Discounted expected lifetime of a customer about to make the first payment.

        FH 2010: ``E[DEL] = 2F1(1, beta; alpha + beta; 1/(1+d))``, counting the first
        payment (undiscounted). A float, or a Series by cohort for a per-cohort model.
        """
        d = self._rate(discount_rate)
        a, b, labels = self._pairs(cohort)
        vals = sbg_derl(a, b, -1.0, d)
        if labels is None or cohort is not None:
            return float(vals[0])
        return pd.Series(vals, index=pd.Index(labels, name="cohort"), name="derl_new")

    def expected_lifetime(self, cohort: Any = None) -> Any:
        """Mean number of periods paid for by a new customer: ``(alpha + beta - 1)/(alpha - 1)``.

        The mean of the shifted-beta-geometric distribution; infinite when ``alpha <= 1``.
        """
        a, b, labels = self._pairs(cohort)
        with np.errstate(divide="ignore"):
            vals = np.where(a > 1.0, (a + b - 1.0) / np.where(a > 1, a - 1.0, 1.0), np.inf)
        if labels is None or cohort is not None:
            return float(vals[0])
        return pd.Series(vals, index=pd.Index(labels, name="cohort"), name="expected_lifetime")

    @classmethod
    def _rate(cls, discount_rate: Any) -> float:
        return cls._check_rate(
            discount_rate, "per period",
            "with heterogeneous churn the undiscounted expected lifetime can be infinite",
        )
