"""Gamma-Gamma model of average transaction value.

Colombo & Jiang (1999), "A stochastic RFM model", Journal of Interactive Marketing 13(3), in the
parameterisation of Fader, Hardie & Lee (2005), "RFM and CLV: using iso-value curves for customer
base analysis", JMR 42(4), 415-430, and Fader & Hardie (2013), "The Gamma-Gamma model of monetary
value" (http://brucehardie.com/notes/025/).

A customer's transaction values are ``z_j ~ Gamma(p, nu)`` (mean ``p / nu``) and ``nu`` varies
across customers as ``Gamma(q, gamma)``. The model is fitted on customers with at least one
repeat purchase (``frequency > 0``), using their number of repeat transactions ``x`` and the
average value ``m`` of those transactions (``monetary_value`` in an RFM summary).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import digamma, gammaln

from .._special import digamma_difference, log_gamma_ratio
from ..errors import DataValidationError, ParameterError
from ._covariates import CovariateModelMixin
from .base import BaseModel, CoreRowsMixin, _dot, _examples

__all__ = ["GammaGammaModel"]


class _GammaGammaBase(CoreRowsMixin, BaseModel):
    """Likelihood and predictions of :class:`GammaGammaModel` (the public class adds covariates)."""

    _param_names = ("p", "q", "gamma")
    _data_columns = ("frequency", "monetary_value")
    _limit_groups = (
        (
            ("q", "gamma"),
            "the Gamma distribution of the customer-level spend rate nu collapses to a single "
            "value (every customer has the same expected transaction value)",
        ),
    )
    _model_name = "Gamma-Gamma spend model, Fader, Hardie & Lee 2005"
    _compress_rows = False  # monetary_value is continuous: rows are nearly all distinct
    _time_columns = ()  # spend does not depend on the time unit

    def _fit_rows(self, data: Mapping[str, np.ndarray]) -> np.ndarray:
        return data["frequency"] > 0

    def _validate_fit(self, data: Mapping[str, np.ndarray], index: pd.Index) -> None:
        # The likelihood (Fader & Hardie 2013, eq. 3) has ln(m); a prediction does not
        # (eq. 5 is linear in m), so customers whose repeat purchases were worth 0 can be
        # valued but not fitted.
        x, m = data["frequency"], data["monetary_value"]
        bad = (x > 0) & (m <= 0)
        if bad.any():
            raise DataValidationError(
                f"monetary_value must be > 0 for customers with repeat purchases; "
                f"{int(bad.sum())} of {len(index)} rows have frequency > 0 and monetary_value <= 0 "
                f"(customers {_examples(index, bad)}). Drop zero-value or refunded-only customers, "
                "or net returns before summarising"
            )

    def _scale_fit_data(
        self, data: dict[str, np.ndarray], weights: np.ndarray
    ) -> tuple[dict[str, np.ndarray], float]:
        """Fit on ``m / s`` with ``s`` the power of two nearest the median spend.

        The model is scale-equivariant: if every ``m`` is multiplied by ``s``, ``p`` and ``q``
        are unchanged, ``gamma`` is multiplied by ``s`` and the log-likelihood drops by
        ``n log s`` (the Jacobian of ``m``). Spend in the billions would otherwise put ``gamma``
        beyond the optimiser's range. A power of two divides exactly, so spend already near 1
        is fitted unchanged.
        """
        m = data["monetary_value"]
        pos = m[m > 0]
        if pos.size == 0:
            return data, 1.0
        scale = float(2.0 ** np.round(np.log2(np.median(pos))))
        if scale == 1.0 or not np.isfinite(scale) or scale <= 0:
            return data, 1.0
        return {**data, "monetary_value": m / scale}, scale

    def _unscale_fit(self, scale: float) -> None:
        """``gamma`` (the rate of the spend rate) and its covariance scale with ``s``; the
        log-likelihood gains the Jacobian ``-n log s``."""
        k = len(self._names())
        factor = np.ones(k)
        factor[self._names().index("gamma")] = scale
        self.params_ = self.params_ * factor
        cov = getattr(self, "covariance_", None)
        if cov is not None:
            self._set_covariance(cov.to_numpy() * np.outer(factor, factor))
        shift = self.n_customers_ * np.log(scale)
        self.log_likelihood_ -= shift
        self.aic_ += 2.0 * shift
        self.bic_ += 2.0 * shift
        self.diagnostics_["spend_scale"] = scale

    def _prepare_data(self, data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Precompute data-only terms (log m, log(x m), x m) and distinct frequencies."""
        out = dict(data)
        x, m = data["frequency"], data["monetary_value"]
        out["_u_x"], out["_i_x"] = np.unique(x, return_inverse=True)
        out["_log_m"] = np.log(m)
        out["_xm"] = x * m
        out["_log_xm"] = np.log(out["_xm"])
        return out

    def _core(
        self, log_params: np.ndarray, data: Mapping[str, np.ndarray], need_grad: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Log-density of the observed average spend ``m`` given ``x`` transactions.

        Fader & Hardie (2013), eq. 3 (the distribution of the mean of x Gamma(p, nu) values
        integrated over nu ~ Gamma(q, gamma)):
        ``lnG(px+q) - lnG(px) - lnG(q) + q ln(gamma) + (px-1) ln(m) + px ln(x)
        - (px+q) ln(gamma + x m)``.

        Evaluated as ``R(px, q) - lnG(q) + q ln(gamma) - ln m - q ln(x m) - (px+q) l`` with
        ``R = lnG(px+q) - lnG(px)`` (:func:`~custvalue._special.log_gamma_ratio`) and
        ``l = log1p(gamma / (x m))``: the terms proportional to ``p`` cancel exactly, so the
        value stays accurate when ``p`` is huge (written naively, the rounding error grows like
        ``p`` and makes ``p -> inf`` look like a better fit than it is). Gamma-function terms
        are evaluated per distinct ``x``.
        """
        if "_u_x" not in data:
            data = self._prepare_data(dict(data))
        p, q, gamma = np.exp(log_params)
        return _eq3_rows(p, q, gamma, np.log(gamma), data, need_grad)

    def _loglik_and_gradient_totals(
        self, log_params: np.ndarray, data: Mapping[str, np.ndarray], weights: np.ndarray
    ) -> tuple[float, np.ndarray] | None:
        """Weighted totals of :meth:`_core` (Fader & Hardie 2013 eq. 3) and its gradient.

        Only ``log1p(gamma / (x m))`` and ``1 / (gamma + x m)`` are per row; everything else is a
        per-distinct-x term or a data-only sum.
        """
        if "_u_x" not in data:
            return None
        stats = data.get("_stats_w")
        if stats is None or stats[0] is not weights:
            stats = (
                weights,
                np.bincount(data["_i_x"], weights=weights, minlength=data["_u_x"].size),
                _dot(weights, data["_log_m"]),
                _dot(weights, data["_log_xm"]),
                weights * data["frequency"],
                float(weights.sum()),
            )
            data["_stats_w"] = stats  # type: ignore[index]
        _, w_group, s_lm, s_lxm, wx, w_tot = stats
        p, q, gamma = np.exp(log_params)
        ux, xm = data["_u_x"], data["_xm"]
        pux = p * ux
        l1 = np.log1p(gamma / xm)
        inv = 1.0 / (gamma + xm)
        sum_wx_l, sum_w_l = _dot(wx, l1), _dot(weights, l1)
        sum_wx_inv, sum_w_inv = _dot(wx, inv), _dot(weights, inv)
        total = (
            _dot(w_group, log_gamma_ratio(pux, q))
            + w_tot * (q * np.log(gamma) - gammaln(q))
            - s_lm
            - q * s_lxm
            - p * sum_wx_l
            - q * sum_w_l
        )
        d_p = _dot(w_group, ux * digamma_difference(pux, q)) - sum_wx_l
        d_q = (
            _dot(w_group, digamma(pux + q))
            - w_tot * digamma(q)
            + w_tot * np.log(gamma)
            - s_lxm
            - sum_w_l
        )
        d_gamma = q * w_tot / gamma - p * sum_wx_inv - q * sum_w_inv
        return total, np.array([d_p * p, d_q * q, d_gamma * gamma])

    def _initial_params(self, data: Mapping[str, np.ndarray], weights: np.ndarray) -> np.ndarray:
        x, m = data["frequency"], data["monetary_value"]
        wsum = float(weights.sum())
        mean_m = float(_dot(weights, m)) / wsum
        # method of moments: population mean spend p*gamma/(q-1) matches the mean of m
        p0, q0 = 2.0, 3.0
        gamma0 = mean_m * (q0 - 1.0) / p0
        del x
        return np.array([[p0, q0, gamma0], [1.0, 1.0, 1.0]], dtype=np.float64)

    # ------------------------------------------------------------------ predictions
    def expected_population_spend(self, covariates: Any = None) -> float:
        """Mean transaction value of a randomly chosen customer, ``p * gamma / (q - 1)``.

        Fader, Hardie & Lee (2005b), the mean of ``p / nu`` with ``nu ~ Gamma(q, gamma)``;
        infinite when ``q <= 1``. For a model with spend covariates, ``covariates`` (a dict or
        one-row frame) describes the prospect and ``gamma_i = gamma exp(-delta' z)`` is used.
        """
        if covariates is not None or self._has_covariates():
            (p, q, gamma), index = self._prospect_params(covariates, "expected_population_spend")
            if index is not None:
                raise ParameterError("expected_population_spend takes one prospect")
            gamma = float(np.asarray(gamma).reshape(-1)[0])
            if q <= 1:
                raise ParameterError(
                    f"the population mean spend is infinite because q = {q:.4g} <= 1"
                )
            return float(p * gamma / (q - 1.0))
        p, q, gamma = self._params_array()[:3]
        if q <= 1:
            raise ParameterError(
                f"the population mean spend is infinite because q = {q:.4g} <= 1 (very heavy "
                "tail of spend); use a spend summary that excludes outliers or a heuristic spend"
            )
        return float(p * gamma / (q - 1.0))

    def expected_spend(self, data: Any) -> pd.Series:
        """Conditional expected average transaction value of each customer.

        Fader, Hardie & Lee (2005b) eq. 5 / Fader & Hardie (2013) eq. 5:
        ``E[M | x, m] = p (gamma + x m) / (p x + q - 1)``, a weighted average of the population
        mean ``p gamma / (q - 1)`` and the customer's own average ``m`` with weight
        ``p x / (p x + q - 1)`` on ``m``. Customers with ``frequency == 0`` get the population
        mean (their ``monetary_value`` is ignored).

        Parameters
        ----------
        data : DataFrame
            Columns ``frequency`` and ``monetary_value``.

        Returns
        -------
        pd.Series
            Expected average spend, indexed like ``data``.

        Raises
        ------
        ParameterError
            When ``p x + q <= 1`` for some row (the posterior mean spend is infinite).
        """
        arr, index = self._prediction_input(data, context="expected_spend")
        p, q, gamma = self._rows_from_table(data, len(index), "expected_spend")
        x = arr["frequency"]
        m = np.where(x > 0, arr["monetary_value"], 0.0)
        denom = p * x + q - 1.0
        bad = denom <= 0
        if bad.any():
            raise ParameterError(
                f"expected spend is infinite for {int(bad.sum())} of {len(index)} customers "
                f"(p*frequency + q <= 1 with p={p:.4g}, q={q:.4g}; customers "
                f"{_examples(index, bad)}); the fitted spend distribution has too heavy a tail - "
                "trim outlying order values before fitting"
            )
        vals = p * (gamma + x * m) / denom
        return self._as_series(vals, index, "expected_spend")

    def _row_core(
        self, lp_groups: np.ndarray, groups: np.ndarray, data: Mapping[str, Any], need_grad: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """:meth:`_core` (Fader & Hardie 2013 eq. 3) with ``gamma_i`` per covariate pattern."""
        if "_u_x" not in data:
            data = self._prepare_data(dict(data))  # type: ignore[arg-type]
        p, q = float(np.exp(lp_groups[0, 0])), float(np.exp(lp_groups[0, 1]))
        log_gamma = lp_groups[:, 2][groups]
        return _eq3_rows(p, q, np.exp(log_gamma), log_gamma, data, need_grad)


class GammaGammaModel(CovariateModelMixin, _GammaGammaBase):
    """Gamma-Gamma spend model (Colombo & Jiang 1999; Fader, Hardie & Lee 2005).

    Parameters
    ----------
    penalizer_coef : float, default 0.0
        Optional L2 penalty, as lifetimes' ``GammaGammaFitter``.
    time_unit : str, optional
        Only recorded (spend does not depend on time); default from ``data.attrs["freq"]``.
    spend_covariates : list of str, optional
        Columns of the fitted table that shift the spend scale, ``gamma_i = gamma exp(-delta' z_i)``
        (``gamma`` is placed like the purchase model's ``alpha``), so the mean spend per
        transaction ``p gamma_i / (q - 1)`` is multiplied by ``exp(-delta' z_i)``. CLVTools has
        no covariate Gamma-Gamma; this follows the issue's parameterisation.
    covariate_reference : dict, optional
        Reference level per categorical covariate (default: its most frequent level).

    Attributes
    ----------
    params_ : pd.Series
        ``p`` (shape of transaction values), ``q`` and ``gamma`` (shape and rate of the
        customer-level ``nu``).

    Notes
    -----
    The model assumes the average spend is independent of the purchase process; check with the
    correlation of ``frequency`` and ``monetary_value`` among repeat customers before use.
    """

    _covariate_blocks = (("spend", "spend_covariates", (("gamma", -1.0),)),)

    def __init__(
        self,
        penalizer_coef: float = 0.0,
        time_unit: str | None = None,
        *,
        spend_covariates: list[str] | None = None,
        covariate_reference: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(penalizer_coef=penalizer_coef, time_unit=time_unit)
        self._init_covariates(covariate_reference, spend_covariates=spend_covariates)


def _eq3_rows(
    p: float, q: float, gamma: Any, log_gamma: Any, data: Mapping[str, Any], need_grad: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    """Per-row Gamma-Gamma log-likelihood (Fader & Hardie 2013, eq. 3) and its gradient in
    ``log p, log q, log gamma``; ``gamma`` is a scalar or one value per row (covariates).
    The terms in ``p`` cancel analytically (see :meth:`GammaGammaModel._core`)."""
    ux, ix = data["_u_x"], data["_i_x"]
    x, xm = data["frequency"], data["_xm"]
    pux = p * ux
    l1 = np.log1p(gamma / xm)
    ll = (
        log_gamma_ratio(pux, q)[ix]
        - gammaln(q)
        + q * log_gamma
        - data["_log_m"]
        - q * data["_log_xm"]
        - (p * x + q) * l1
    )
    if not need_grad:
        return ll, None
    d_p = x * (digamma_difference(pux, q)[ix] - l1)
    d_q = (digamma(pux + q) - digamma(q))[ix] - np.log1p(xm / gamma)
    d_gamma = q / gamma - (p * x + q) / (gamma + xm)
    return ll, np.column_stack([d_p * p, d_q * q, d_gamma * gamma])
