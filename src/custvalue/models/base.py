"""Shared machinery for custvalue's probabilistic customer models.

A model is its log-likelihood plus its predictions; everything else (input validation, compressing
identical customers into weights, maximum-likelihood fitting with restarts, standard errors,
intervals, AIC/BIC, boundary handling, ``summary()``, ``from_params``, parameter sampling and JSON
save/load) is inherited from :class:`BaseModel`.

Writing a model (the subclass API)
----------------------------------
Class attributes

``_param_names`` : tuple of str
    Parameter names as in the paper, in the order of the parameter vector (e.g. ``("r", "alpha",
    "a", "b")``). All parameters are strictly positive; the optimiser works on their logarithms.
``_data_columns`` : tuple of str
    Summary columns the likelihood needs, e.g. ``("frequency", "recency", "T")``.
``_integer_columns`` : tuple of str
    Columns that must hold whole numbers (default ``("frequency",)``).
``_compress_rows`` : bool
    Compress identical rows into weights before fitting (default ``True``; Gamma-Gamma turns it
    off because a continuous ``monetary_value`` makes nearly every row distinct).
``contractual`` : bool
    ``True`` for contractual (subscription) models such as the shifted-beta-geometric.
``_time_columns`` : tuple of str
    Duration columns in the model's time unit (default ``("recency", "T")``; ``()`` for
    Gamma-Gamma). Predictions compare ``data.attrs["freq"]`` with ``time_unit_`` through
    :func:`check_data_unit` when the model has any.
``_limit_groups`` : tuple of ((names...), description)
    Groups of parameters that may legitimately run to infinity *together* (ratio fixed) because the
    likelihood's supremum is a limiting model, e.g. BG/NBD's ``(("a", "b"), "the dropout
    probability is the same for everyone")``. When the fit ends up there the base class returns
    the limiting fit with finite values and a :class:`BoundaryFitWarning`; any other parameter
    that runs away raises :class:`~custvalue.errors.ConvergenceError`.

Methods to implement

``_log_likelihood_rows(self, log_params, data) -> np.ndarray``
    Per-row log-likelihood (length ``n`` array) for log-parameters ``log_params`` (1-D array in
    ``_param_names`` order) and ``data``, a mapping column name -> float64 array (compressed unique
    rows). Must be finite for every valid row.
``_gradient_rows(self, log_params, data) -> np.ndarray | None`` (optional)
    ``(n, k)`` array of d(row log-likelihood)/d(log-parameter). Return ``None`` (the default) to
    let the base class use central finite differences of the total log-likelihood.
``_initial_params(self, data, weights) -> np.ndarray`` (optional)
    Starting values on the natural (positive) scale, e.g. moment-based: a ``(k,)`` vector or a
    ``(n_starts, k)`` array of several starts (all are optimised, the best wins). Default: ones.
``_validate(self, data, index) -> None`` (optional)
    Extra checks on the raw input arrays; raise :class:`~custvalue.errors.DataValidationError`.
``_validate_fit(self, data, index) -> None`` (optional)
    Checks that only the likelihood needs (values a prediction can take but a fit cannot).
``_fit_rows(self, data) -> np.ndarray | None`` (optional)
    Boolean mask of the rows the likelihood uses (Gamma-Gamma: repeat customers only).
``_loglik_and_gradient_rows(self, log_params, data) -> (ll_rows, grad_rows) | None`` (optional)
    Both at once when they share work; the optimiser asks for value and gradient at the same
    point, and the base class memoises the pair.
``_loglik_and_gradient_totals(self, log_params, data, weights) -> (float, ndarray) | None``
    (optional) Weighted totals directly, when sufficient statistics make them cheaper than rows.
``_prepare_data(self, data) -> dict`` (optional)
    Called once on the compressed fit data; add precomputed keys (e.g. distinct frequencies and
    their inverse index, so gamma-function terms are evaluated per distinct value).
``_fit_problem(self, params, data, weights) -> str | None`` (optional)
    Model-specific check of a degenerate optimum (e.g. the mean purchase rate running to zero);
    a returned message is raised as :class:`~custvalue.errors.ConvergenceError`.
``_names(self)`` / ``_fit_columns(self)`` (optional)
    Parameter names and fit columns of this instance, when they depend on the data (the
    shifted-beta-geometric's one pair per cohort). Never rewrite the class attributes.
``_edge_groups(self, phi)`` (optional)
    The ``_limit_groups`` worth probing at the optimum ``phi`` (Pareto/NBD skips groups whose
    shape is small, because probing costs whole optimisations).
``_scale_fit_data(self, data, weights) -> (data, scale)`` / ``_unscale_fit(self, scale)``
    (optional) Fit on rescaled data and map the result back (Gamma-Gamma divides spend by a
    power of two near its median, so spend in the billions fits like spend in dollars).

Prediction methods are written by the subclass using ``self._params_array()`` (natural scale,
raises :class:`~custvalue.errors.ModelNotFittedError` when there are none) and
``self._prediction_input(data, columns)`` which validates input and returns
``(dict of arrays, index)``; wrap results with ``self._as_series(values, index, name)``.

Fitting in one paragraph
------------------------
``fit`` maximises the weighted log-likelihood ``sum_i w_i * ll_i`` minus an optional L2 penalty.
The penalty is the one lifetimes uses: the optimiser minimises ``-sum(w*ll)/sum(w) +
penalizer_coef * sum(params**2)``; ``log_likelihood_`` always reports the unpenalised total
``sum(w*ll)`` (the definition used in the papers). L-BFGS-B with analytic gradients runs on the
log-parameters from the model's moment-based start and from a vector of ones, with jittered
restarts when those disagree; the best optimum is polished with a Newton step. With more than
40,000 distinct rows the optimiser first solves a seeded random 10,000-row subset (reweighted)
with the same multi-start, then takes Newton steps on the full data with the subset's Hessian,
so a million-customer fit needs only a handful of full likelihood evaluations (models with
covariates, whose Hessian is cheap, stop the subset's L-BFGS-B early and finish it with Newton
steps: :meth:`_subset_search`). The subset's
optimum is trusted only when it is a clean interior maximum on which every start agrees and the
full-data Newton ends at a clean interior maximum too; otherwise (a parameter running away, a
flat ridge, a boundary) the full-data multi-start decides. Nothing that decides a branch uses
BLAS reductions, whose last digits depend on the CPU and thread count. Fits on the edge of the
parameter space return the limiting model with a :class:`BoundaryFitWarning`. The Hessian of the
(penalised) total log-likelihood is obtained by central differences of the gradient in
log-parameter space and mapped to the natural scale exactly (chain rule, including the gradient
term). ``covariance_`` is the inverse observed information on the natural scale;
``confidence_intervals_`` are Wald intervals computed on the **log scale** and exponentiated, so
they are always positive. ``sample_params`` draws log-parameters from the same asymptotic normal
(delta method), so every draw is valid.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy import optimize, stats

from .._arrays import as_float_array as _as_float_array
from .._arrays import require_columns
from .._time import DAYS_PER_UNIT, UNIT_NAMES, normalize_unit
from ..errors import (
    ConvergenceError,
    DataValidationError,
    ModelNotFittedError,
    ParameterError,
)

__all__ = ["BaseModel", "BoundaryFitWarning", "ModelSummary", "check_data_unit", "load_model"]

_LOG_BOUND = 30.0  # |log(param)| beyond which a parameter has "run away" (1e-13 .. 1e13)
_WARM_START_ROWS = 40000  # above this many distinct rows, warm-start from a subset
_RUNAWAY = math.log(1e10)  # a parameter beyond 1e10 or below 1e-10 has run away (unless a limit)
_INTERIOR_LOG = math.log(1e6)  # a warm-start optimum outside 1e-6 .. 1e6 is confirmed on all rows
_RIDGE_CHECK = math.log(1e6)  # a limiting-model ridge is judged from here, not from further out
_MODEL_REGISTRY: dict[str, type[BaseModel]] = {}


class BoundaryFitWarning(UserWarning):
    """The likelihood is maximised on the edge of the parameter space.

    The returned parameters are a finite stand-in for the limiting model (for example BG/NBD's
    ``a`` and ``b`` growing together so that every customer has the same dropout probability).
    Predictions are those of the limiting model; standard errors along the runaway direction are
    not identified and are reported as zero variance for that direction.
    """


def _package_version() -> str:
    try:
        from .. import __version__

        return str(__version__)
    except Exception:  # pragma: no cover - only when the package is half-installed
        return "unknown"


def _examples(index: pd.Index, mask: np.ndarray, k: int = 5) -> str:
    ids = list(index[np.asarray(mask)][:k])
    return ", ".join(repr(i) for i in ids)


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    """Inner product of two 1-D arrays without BLAS.

    ``a @ b`` calls BLAS ``ddot``, whose kernel is chosen per CPU and which may split the sum over
    threads, so its last digits depend on the machine; numpy's own reduction does not.
    """
    return float(np.einsum("i,i->", np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)))


@dataclass
class _Objective:
    """What the optimiser maximises: the penalised total log-likelihood in log-parameters."""

    loglik: Any
    grad: Any
    scale: float
    data: Mapping[str, np.ndarray]
    weights: np.ndarray


def _clip_values(values: Any, k: int = 5) -> str:
    """A few example values for an error message (never a whole array)."""
    arr = np.asarray(values).reshape(-1)
    shown = ", ".join(f"{v:.6g}" if isinstance(v, float | np.floating) else repr(v) for v in arr[:k].tolist())
    more = f", ... ({arr.size} in all)" if arr.size > k else ""
    return f"[{shown}{more}]"


def check_data_unit(
    model: BaseModel, data: Any, *, convert: bool = False, context: str = "predict"
) -> Any:
    """Check that a summary is in the model's time unit, or convert it when asked.

    A model fitted in weeks predicts nonsense from a daily summary: ``recency`` and ``T`` would
    be read as weeks. The data's unit is ``data.attrs["freq"]`` (set by
    :func:`custvalue.summary.rfm_summary` and :func:`custvalue.summary.calibration_holdout`);
    the model's is ``model.time_unit_``. Every prediction method calls this check, and
    :func:`custvalue.value.customer_lifetime_value` can call it before valuing.

    Parameters
    ----------
    model : BaseModel
        A fitted model (or one built with ``from_params``).
    data : DataFrame
        A customer summary. Data without ``attrs["freq"]`` (plain frames, mappings) are assumed
        to be in the model's unit and returned unchanged, as are models without time columns
        (Gamma-Gamma).
    convert : bool, default False
        ``False``: a different unit raises :class:`~custvalue.errors.DataValidationError`.
        ``True``: return a copy with the duration columns (``recency``, ``T``, and
        ``duration_holdout`` when present) rescaled to the model's unit with calendar-exact
        lengths (a month is 365.25/12 days) and ``attrs["freq"]`` set to the model's unit. The
        caller's frame is not modified. Frequencies are not changed: purchases merged within one
        coarse period stay merged, so re-summarising in the model's unit is more exact.
        Discrete-time models (whole-number ``T``) cannot be converted.
    context : str
        Name of the calling method, for the message.

    Returns
    -------
    DataFrame or the input
        ``data`` itself when it is already in the model's unit (or has no unit), else the
        converted copy.

    Raises
    ------
    DataValidationError
        The units differ and ``convert`` is False, or conversion is impossible.
    """
    if not isinstance(data, pd.DataFrame) or not model._time_columns:
        return data
    if getattr(model, "time_unit_", None) is None:
        return data  # not fitted: the prediction itself says so
    freq = data.attrs.get("freq")
    if freq is None:
        return data
    try:
        data_unit = normalize_unit(str(freq))
    except ParameterError:
        return data  # not a time unit custvalue wrote; nothing to compare
    model_unit = model._unit()
    if data_unit == model_unit:
        return data
    name = type(model).__name__
    data_name, model_name = UNIT_NAMES[data_unit], UNIT_NAMES[model_unit]
    if not convert:
        raise DataValidationError(
            f"{name}.{context}: the data are a summary in {data_name}s (data.attrs['freq']="
            f"{freq!r}) but the model was fitted in {model_name}s (time_unit_={model_unit!r}); "
            f"its recency and T would be read as {model_name}s. Summarise the transactions with "
            f"freq={model_unit!r}, or convert explicitly with "
            "custvalue.models.check_data_unit(model, data, convert=True)"
        )
    if "T" in model._integer_columns:
        raise DataValidationError(
            f"{name} counts whole {model_name}s (discrete opportunities); a summary in "
            f"{data_name}s cannot be converted - summarise the data with freq={model_unit!r}"
        )
    factor = DAYS_PER_UNIT[data_unit] / DAYS_PER_UNIT[model_unit]
    out = data.copy()
    for col in (*model._time_columns, "duration_holdout"):
        if col in out.columns:
            out[col] = out[col].astype(np.float64) * factor
    out.attrs = {**data.attrs, "freq": model_unit, "converted_from_freq": data_unit}
    return out


def _optima_agree(results: Sequence[Any]) -> bool:
    """Whether at least two of the optimiser results are finite and their log-likelihoods agree
    to 1e-7 relative (the multi-start's test that every start found the same maximum)."""
    vals = [-r.fun for r in results if np.isfinite(r.fun) and r.fun < 1e299]
    return len(vals) >= 2 and (max(vals) - min(vals)) <= 1e-7 * max(1.0, abs(max(vals)))


def ascent_step(
    loglik: Any, phi: np.ndarray, step: np.ndarray, cur: float, halvings: int = 8
) -> tuple[np.ndarray, float, float] | None:
    """Backtracking along a Newton step: ``(phi + lam * step, loglik there, lam)`` for the first
    ``lam`` in 1, 1/2, ... (``halvings`` tries) that keeps the log-likelihood finite and not
    below ``cur`` (up to 1e-12 relative), or None when none does."""
    lam = 1.0
    for _ in range(halvings):
        cand = phi + lam * step
        with np.errstate(all="ignore"):
            val = loglik(cand)
        if np.isfinite(val) and val >= cur - 1e-12 * abs(cur):
            return cand, val, lam
        lam /= 2.0
    return None


def unique_rows(columns: Sequence[np.ndarray]) -> tuple[list[np.ndarray], np.ndarray]:
    """Return the unique combinations of several equal-length arrays and the inverse map.

    Hash-based (pandas factorize), so it costs O(n) for a million customers: each column is
    factorized, the codes are combined into one int64 key in mixed radix (re-factorizing the
    partial key first when the product of the cardinalities would overflow), and the key is
    factorized once more. Unique rows are numbered in order of first occurrence, as a
    ``groupby(sort=False).ngroup()`` numbers them, at a fraction of its fixed cost (which
    dominated on the few hundred rows a prediction sees).

    Returns
    -------
    uniques : list of np.ndarray
        One array per input column holding the unique combinations.
    inverse : np.ndarray
        ``uniques[j][inverse]`` reproduces ``columns[j]``.
    """
    if len(columns) == 1:
        codes, uniq = pd.factorize(np.asarray(columns[0]), sort=False)
        return [np.asarray(uniq, dtype=np.float64)], codes
    key: np.ndarray | None = None
    span = 1
    for column in columns:
        col_codes, levels = pd.factorize(np.asarray(column), sort=False, use_na_sentinel=False)
        width = max(len(levels), 1)
        if key is None:
            key, span = col_codes.astype(np.int64), width
            continue
        if span * width >= 2**62:
            key = pd.factorize(key, sort=False)[0].astype(np.int64)
            span = int(key.max()) + 1 if key.size else 1
        key += col_codes.astype(np.int64) * np.int64(span)
        span *= width
    assert key is not None
    codes = pd.factorize(key, sort=False)[0].astype(np.int64)
    n_unique = int(codes.max()) + 1 if codes.size else 0
    first = np.full(n_unique, -1, dtype=np.int64)
    # first occurrence of each code (reverse assignment keeps the smallest index)
    first[codes[::-1]] = np.arange(codes.size - 1, -1, -1)
    return [np.asarray(c, dtype=np.float64)[first] for c in columns], codes


@dataclass
class ModelSummary:
    """Fitted-model summary that renders as text (``str``) and as HTML in notebooks.

    Attributes
    ----------
    model_name : str
    table : pd.DataFrame
        One row per parameter: ``estimate``, ``std_error``, ``lower``, ``upper``.
    info : dict
        Fit information (customers, log-likelihood, AIC, BIC, time unit, diagnostics).
    notes : list of str
    """

    model_name: str
    table: pd.DataFrame
    info: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    def to_frame(self) -> pd.DataFrame:
        """Return the parameter table."""
        return self.table.copy()

    def _info_lines(self) -> list[tuple[str, str]]:
        out = []
        for key, value in self.info.items():
            if isinstance(value, float):
                text = f"{value:.6g}"
            else:
                text = str(value)
            out.append((key, text))
        return out

    def __str__(self) -> str:
        lines = [self.model_name, "=" * len(self.model_name)]
        width = max((len(k) for k, _ in self._info_lines()), default=0)
        lines += [f"{k:<{width}}  {v}" for k, v in self._info_lines()]
        lines.append("")
        lines.append(self.table.to_string(float_format=lambda v: f"{v:.6g}"))
        for note in self.notes:
            lines.append("")
            lines.append(f"Note: {note}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.__str__()

    def _repr_html_(self) -> str:
        import html

        rows = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
            for k, v in self._info_lines()
        )
        info = f"<table>{rows}</table>"
        table = self.table.to_html(float_format=lambda v: f"{v:.6g}")
        notes = "".join(f"<p><em>Note:</em> {html.escape(n)}</p>" for n in self.notes)
        return f"<div><h4>{html.escape(self.model_name)}</h4>{info}{table}{notes}</div>"


class CoreRowsMixin:
    """Row log-likelihood hooks from one ``_core(log_params, data, need_grad)`` method.

    For models whose per-row log-likelihood and gradient share their work: ``_core`` returns
    ``(ll_rows, grad_rows or None)`` and this mixin exposes it as the three
    :class:`BaseModel` hooks. Put it before ``BaseModel`` in the bases.
    """

    def _core(
        self, log_params: np.ndarray, data: Mapping[str, np.ndarray], need_grad: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        raise NotImplementedError

    def _log_likelihood_rows(
        self, log_params: np.ndarray, data: Mapping[str, np.ndarray]
    ) -> np.ndarray:
        return self._core(log_params, data, need_grad=False)[0]

    def _gradient_rows(self, log_params: np.ndarray, data: Mapping[str, np.ndarray]) -> np.ndarray:
        return self._core(log_params, data, need_grad=True)[1]  # type: ignore[return-value]

    def _loglik_and_gradient_rows(
        self, log_params: np.ndarray, data: Mapping[str, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        return self._core(log_params, data, need_grad=True)  # type: ignore[return-value]


class BaseModel:
    """Base class of every custvalue customer model (see the module docstring for the API).

    Parameters
    ----------
    penalizer_coef : float, default 0.0
        L2 penalty as in lifetimes: the optimiser minimises the mean negative log-likelihood plus
        ``penalizer_coef * sum(params ** 2)``. Use a small value (0.001 - 0.1) when a parameter
        runs away on sparse data.
    time_unit : str, optional
        Unit of ``recency``/``T`` and of prediction horizons. ``None`` takes it from
        ``data.attrs["freq"]`` (set by :func:`custvalue.summary.rfm_summary`) and falls back to
        days.
    """

    _param_names: ClassVar[tuple[str, ...]] = ()
    _data_columns: ClassVar[tuple[str, ...]] = ("frequency", "recency", "T")
    _integer_columns: ClassVar[tuple[str, ...]] = ("frequency",)
    _limit_groups: ClassVar[tuple[tuple[tuple[str, ...], str], ...]] = ()
    _model_name: ClassVar[str] = "model"
    _compress_rows: ClassVar[bool] = True
    _time_columns: ClassVar[tuple[str, ...]] = ("recency", "T")
    contractual: ClassVar[bool] = False

    def __init__(self, penalizer_coef: float = 0.0, time_unit: str | None = None) -> None:
        try:
            pen = float(penalizer_coef)
        except (TypeError, ValueError) as exc:
            raise ParameterError(
                f"{type(self).__name__}: penalizer_coef must be a number >= 0; got {penalizer_coef!r}"
            ) from exc
        if not math.isfinite(pen) or pen < 0:
            raise ParameterError(
                f"{type(self).__name__}: penalizer_coef must be finite and >= 0 (0 = no penalty, "
                f"0.001-0.1 for sparse data); got {penalizer_coef!r}"
            )
        if time_unit is not None:
            normalize_unit(time_unit)  # an unknown unit is refused here, not at fit
        self.penalizer_coef = penalizer_coef
        self.time_unit = time_unit

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _MODEL_REGISTRY[cls.__name__] = cls

    # ------------------------------------------------------------------ subclass hooks
    def _names(self) -> tuple[str, ...]:
        """Parameter names of this instance, in the order of the parameter vector.

        Default: the class's ``_param_names``. A model whose parameter vector depends on the
        data (the shifted-beta-geometric's one pair per cohort) overrides this hook instead of
        rewriting the class attribute on the instance.
        """
        return type(self)._param_names

    def _fit_columns(self) -> tuple[str, ...]:
        """Columns :meth:`fit` collects, validates and compresses (default ``_data_columns``)."""
        return type(self)._data_columns

    def _compress_columns(self) -> tuple[str, ...]:
        """Columns of the fit data compressed into unique rows: the fit columns plus any that
        :meth:`_extra_fit_arrays` adds (the covariate models: each row's covariate pattern)."""
        return self._fit_columns()

    def _extra_fit_arrays(self, data: Any, index: pd.Index) -> dict[str, np.ndarray]:
        """Further per-row float arrays the likelihood needs, read from the fit table and
        validated by the hook itself (default none; covariate models add each row's covariate pattern)."""
        return {}

    def _log_mask(self) -> np.ndarray:
        """Which parameters are positive and optimised on the log scale (default: all).

        Covariate coefficients are unconstrained: the optimiser works on them directly, their
        intervals are symmetric and their draws normal.
        """
        return np.ones(len(self._names()), dtype=bool)

    def _natural(self, phi: np.ndarray) -> np.ndarray:
        """Optimiser coordinates -> parameters (``exp`` for the log-scale ones)."""
        mask = self._log_mask()
        if mask.all():
            return np.exp(phi)
        return np.where(mask, np.exp(np.where(mask, phi, 0.0)), phi)

    def _dnatural(self, theta: np.ndarray) -> np.ndarray:
        """d(parameter)/d(optimiser coordinate): ``theta`` on the log scale, 1 otherwise."""
        mask = self._log_mask()
        return np.where(mask, theta, 1.0)

    def _checked_params(self, params: Mapping[str, Any]) -> pd.Series:
        """Validate a full parameter mapping for this instance (default: the class check)."""
        return type(self)._check_params(params)

    def _extra_state(self) -> dict[str, Any] | None:
        """Fitted state beyond the parameters that :meth:`save` must write (default none)."""
        return None

    def _restore_state(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`_extra_state` wrote (called by :meth:`load` before the params)."""
        return None

    def _copy_state(self, other: BaseModel) -> None:
        """Carry fitted state other than parameters to a model built by :meth:`with_params`."""
        return None

    def _log_likelihood_rows(
        self, log_params: np.ndarray, data: Mapping[str, np.ndarray]
    ) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _gradient_rows(
        self, log_params: np.ndarray, data: Mapping[str, np.ndarray]
    ) -> np.ndarray | None:
        return None

    def _initial_params(
        self, data: Mapping[str, np.ndarray], weights: np.ndarray
    ) -> np.ndarray:
        return np.ones(len(self._names()))

    def _validate(self, data: Mapping[str, np.ndarray], index: pd.Index) -> None:
        return None

    def _validate_fit(self, data: Mapping[str, np.ndarray], index: pd.Index) -> None:
        return None

    def _fit_rows(self, data: Mapping[str, np.ndarray]) -> np.ndarray | None:
        return None

    def _loglik_and_gradient_rows(
        self, log_params: np.ndarray, data: Mapping[str, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray] | None:
        return None

    def _loglik_and_gradient_totals(
        self, log_params: np.ndarray, data: Mapping[str, np.ndarray], weights: np.ndarray
    ) -> tuple[float, np.ndarray] | None:
        return None

    def _prepare_data(self, data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return data

    def _fit_problem(
        self, params: np.ndarray, data: Mapping[str, np.ndarray], weights: np.ndarray
    ) -> str | None:
        return None

    def _scale_fit_data(
        self, data: dict[str, np.ndarray], weights: np.ndarray
    ) -> tuple[dict[str, np.ndarray], float]:
        """Rescale validated fit data for the optimiser; return ``(data, scale)`` (1 = none)."""
        return data, 1.0

    def _unscale_fit(self, scale: float) -> None:
        """Map a fit on data rescaled by ``scale`` back to the original units."""
        return None

    def _edge_groups(self, phi: np.ndarray) -> tuple[tuple[tuple[str, ...], str], ...]:
        """The limiting-model groups worth probing at ``phi`` (default: all ``_limit_groups``).

        Probing a group costs whole optimisations; a model can skip groups that are clearly
        interior at ``phi``.
        """
        return self._limit_groups

    # ------------------------------------------------------------------ options / params
    def _options(self) -> dict[str, Any]:
        import inspect

        sig = inspect.signature(type(self).__init__)
        return {
            name: getattr(self, name)
            for name in sig.parameters
            if name != "self" and hasattr(self, name)
        }

    def _params_array(self) -> np.ndarray:
        params = getattr(self, "params_", None)
        if params is None:
            raise ModelNotFittedError(
                f"{type(self).__name__} has no parameters yet: call .fit(data) or build it with "
                f"{type(self).__name__}.from_params({', '.join(p + '=...' for p in self._names())})"
            )
        return params.to_numpy(dtype=np.float64)

    def _unit(self) -> str:
        return getattr(self, "time_unit_", None) or "D"

    @classmethod
    def _check_params(cls, params: Mapping[str, Any]) -> pd.Series:
        names = list(cls._param_names)
        missing = [n for n in names if n not in params]
        extra = [n for n in params if n not in names]
        if missing or extra:
            raise ParameterError(
                f"{cls.__name__} needs exactly the parameters {names}; "
                f"missing {missing}, unexpected {extra}"
            )
        values = np.array([float(params[n]) for n in names], dtype=np.float64)
        bad = ~np.isfinite(values) | (values <= 0)
        if bad.any():
            shown = {n: params[n] for n, b in zip(names, bad, strict=True) if b}
            raise ParameterError(
                f"{cls.__name__} parameters must be finite and > 0; got {shown}"
            )
        return pd.Series(values, index=names, name="estimate", dtype=np.float64)

    @classmethod
    def from_params(
        cls,
        *,
        time_unit: str = "D",
        covariance: pd.DataFrame | np.ndarray | None = None,
        coefficients: Mapping[str, Any] | pd.Series | None = None,
        levels: Mapping[str, Sequence[Any]] | None = None,
        covariate_reference: Mapping[str, Any] | None = None,
        encodings: Mapping[str, Any] | None = None,
        **params: float,
    ) -> BaseModel:
        """Build a model from known parameter values (published estimates, scenarios).

        Parameters
        ----------
        time_unit : str, default "D"
            Unit the parameters are expressed in (e.g. ``"W"`` for the CDNOW papers).
        covariance : DataFrame or array, optional
            Covariance of the parameters on the natural scale, in the order of ``params_``
            (the model's parameters, then the coefficients); needed only for
            :meth:`sample_params` (and hence CLV intervals).
        coefficients : dict or Series, optional
            Covariate coefficients of a model with covariates (BG/NBD, MBG/NBD, Pareto/NBD,
            Gamma-Gamma), named as in a fitted model's ``params_``: ``"<block>:<term>"`` with
            block ``purchase`` / ``dropout`` (``spend`` for Gamma-Gamma) and a term that is a
            numeric column (``"purchase:age"``) or a level of a categorical one
            (``"dropout:channel[offline]"``); or nested, ``{"purchase": {"age": 0.01}}``. The
            parameterisation is CLVTools' (Bachmann, Meierer & Naef 2021), e.g. Pareto/NBD
            ``alpha_i = alpha exp(-gamma_purchase' z_i)``, ``beta_i = beta exp(-gamma_dropout' z_i)``
            (:class:`~custvalue.models._covariates.CovariateModelMixin`), so the other parameters
            are those of a customer with every covariate 0 or at its reference level.
        levels : dict, optional
            Categorical covariate -> its levels, the reference level first, e.g.
            ``{"channel": ["online", "offline"]}``; every non-reference level needs a coefficient
            in each block that uses the column. Covariates not listed are numeric.
        covariate_reference : dict, optional
            Reference level per categorical covariate, if not the first of its ``levels``.
        encodings : dict, optional
            Instead of ``levels``: block -> encoding, e.g. a fitted model's
            ``covariate_encodings_`` (or their ``to_dict()``), so the terms are exactly that fit's.
        **params : float
            Every parameter of the model by its paper name, all > 0.

        Returns
        -------
        BaseModel
            A model whose predictions work like a fitted one's (no fit statistics); with
            coefficients, predictions read each customer's covariates from the table passed.

        Raises
        ------
        ParameterError
            A parameter is missing, unexpected or not > 0; a coefficient names an unknown block,
            covariate or level, or a term lacks one (see
            :func:`~custvalue.models._covariates.encodings_from_coefficients`); the model takes
            no covariates; the covariance has the wrong shape.
        """
        model = cls(time_unit=time_unit)
        published = any(v is not None for v in (coefficients, levels, covariate_reference, encodings))
        if published:
            from ._covariates import encodings_from_coefficients

            blocks = [b for b, _, _ in getattr(cls, "_covariate_blocks", ())]
            if not blocks:
                raise ParameterError(
                    f"{cls.__name__} takes no covariates, so coefficients=, levels=, "
                    "covariate_reference= and encodings= do not apply"
                )
            if coefficients is None:
                raise ParameterError(
                    f"{cls.__name__}.from_params: levels=/encodings= describe covariates, but no "
                    "coefficients= were given"
                )
            encs, coefs = encodings_from_coefficients(
                blocks, coefficients, levels=levels, reference=covariate_reference,
                encodings=encodings, context=f"{cls.__name__}.from_params",
            )
            clash = sorted(set(coefs) & set(params))
            if clash:  # pragma: no cover - ':' cannot appear in a keyword from a call site
                raise ParameterError(f"{cls.__name__}.from_params: {clash} given twice")
            model._adopt_encodings(encs)  # type: ignore[attr-defined]
            model.params_ = model._checked_params({**params, **coefs})
        else:
            model.params_ = cls._check_params(params)
        model.time_unit_ = normalize_unit(time_unit)
        model.covariance_ = None
        if covariance is not None:
            cov = np.asarray(covariance, dtype=np.float64)
            names = list(model._names())
            k = len(names)
            if cov.shape != (k, k) or not np.all(np.isfinite(cov)):
                raise ParameterError(
                    f"covariance must be a finite {k}x{k} matrix in the order {names}; "
                    f"got shape {cov.shape}"
                )
            model._set_covariance(cov)
        else:
            model.standard_errors_ = None
            model.confidence_intervals_ = None
        return model

    def with_params(self, params: Mapping[str, float] | pd.Series) -> BaseModel:
        """Return a new model of the same class and options with other parameter values.

        Used by CLV intervals to evaluate predictions at draws from :meth:`sample_params`.
        The new model carries no covariance or fit statistics.
        """
        new = type(self)(**self._options())
        self._copy_state(new)
        new.params_ = new._checked_params(dict(params))
        new.time_unit_ = self._unit()
        new.covariance_ = None
        new.standard_errors_ = None
        new.confidence_intervals_ = None
        return new

    def sample_params(self, n: int, seed: int | np.random.Generator | None = None) -> pd.DataFrame:
        """Draw parameter vectors from the estimated sampling distribution.

        Log-parameters are drawn from the asymptotic normal ``N(log(theta_hat), Sigma_log)`` where
        ``Sigma_log = D^-1 Sigma D^-1`` is the delta-method covariance of the log-parameters
        (``D = diag(theta_hat)``, ``Sigma = covariance_``), then exponentiated, so every draw is
        positive and valid.

        Parameters
        ----------
        n : int
            Number of draws.
        seed : int or numpy Generator, optional

        Returns
        -------
        pd.DataFrame
            ``n`` rows, one column per parameter.
        """
        theta = self._params_array()
        cov = getattr(self, "covariance_", None)
        if cov is None:
            raise ParameterError(
                f"{type(self).__name__} has no parameter covariance (it was built with from_params "
                "or with_params): fit it to data, or pass covariance= to from_params, before "
                "sampling parameters"
            )
        if int(n) < 1:
            raise ParameterError(f"n must be a positive integer; got {n!r}")
        rng = np.random.default_rng(seed)
        mask = self._log_mask()
        jac = self._dnatural(theta)
        cov_log = np.asarray(cov, dtype=np.float64) / np.outer(jac, jac)
        # symmetric square root via eigen-decomposition tolerates singular (boundary) covariances
        vals, vecs = np.linalg.eigh((cov_log + cov_log.T) / 2.0)
        root = vecs * np.sqrt(np.clip(vals, 0.0, None))
        z = rng.standard_normal((int(n), theta.size))
        # einsum, not BLAS: the draws must not depend on the CPU or the BLAS thread count
        if mask.all():
            draws = np.exp(np.log(theta) + np.einsum("nk,jk->nj", z, root))
            draws = np.clip(draws, np.finfo(float).tiny, np.finfo(float).max / 1e10)
        else:
            phi = np.where(mask, np.log(np.where(mask, theta, 1.0)), theta)
            draws = self._natural(phi + np.einsum("nk,jk->nj", z, root))
            draws = np.where(
                mask, np.clip(draws, np.finfo(float).tiny, np.finfo(float).max / 1e10), draws
            )
        return pd.DataFrame(draws, columns=list(self._names()))

    # ------------------------------------------------------------------ input handling
    def _collect(
        self, data: Any, columns: Sequence[str], *, context: str
    ) -> tuple[dict[str, np.ndarray], pd.Index]:
        if isinstance(data, pd.DataFrame):
            require_columns(data, columns, f"{type(self).__name__}.{context}")
            arrays = {c: _as_float_array(data[c].to_numpy(), c) for c in columns}
            index = data.index
        elif isinstance(data, Mapping):
            missing = [c for c in columns if c not in data]
            if missing:
                raise DataValidationError(
                    f"{type(self).__name__}.{context} needs keys {list(columns)}; missing {missing}"
                )
            arrays = {c: _as_float_array(data[c], c) for c in columns}
            n = len(next(iter(arrays.values()))) if arrays else 0
            index = pd.RangeIndex(n)
        else:
            raise DataValidationError(
                f"{type(self).__name__}.{context} expects a pandas DataFrame (or a mapping of "
                f"arrays) with columns {list(columns)}; got {type(data).__name__}"
            )
        lengths = {c: a.size for c, a in arrays.items()}
        if len(set(lengths.values())) > 1:
            raise DataValidationError(f"input columns have different lengths: {lengths}")
        return arrays, index

    def _check_values(self, arrays: Mapping[str, np.ndarray], index: pd.Index) -> None:
        n = len(index)
        for name, arr in arrays.items():
            bad = ~np.isfinite(arr)
            if bad.any():
                raise DataValidationError(
                    f"column {name!r} has {int(bad.sum())} of {n} rows missing or infinite "
                    f"(customers {_examples(index, bad)}); drop or fill them before fitting"
                )
            neg = arr < 0
            if neg.any():
                raise DataValidationError(
                    f"column {name!r} has {int(neg.sum())} of {n} negative values (customers "
                    f"{_examples(index, neg)}, values {arr[neg][:5].tolist()}); durations and "
                    "counts must be >= 0"
                )
        for name in self._integer_columns:
            if name in arrays:
                arr = arrays[name]
                frac = arr != np.round(arr)
                if frac.any():
                    raise DataValidationError(
                        f"column {name!r} must hold whole numbers of repeat purchases; "
                        f"{int(frac.sum())} of {n} rows are fractional (customers "
                        f"{_examples(index, frac)}, values {arr[frac][:5].tolist()})"
                    )
        if "recency" in arrays and "T" in arrays:
            rec, T = arrays["recency"], arrays["T"]
            over = rec > T * (1 + 1e-12) + 1e-12
            if over.any():
                raise DataValidationError(
                    f"recency exceeds T for {int(over.sum())} of {n} customers (customers "
                    f"{_examples(index, over)}): recency is the age at the last purchase and "
                    "cannot be larger than the age T; check observation_end and the time unit"
                )
        if "frequency" in arrays and "recency" in arrays:
            freq, rec = arrays["frequency"], arrays["recency"]
            odd = (freq == 0) & (rec != 0)
            if odd.any():
                raise DataValidationError(
                    f"{int(odd.sum())} of {n} customers have frequency 0 but recency != 0 "
                    f"(customers {_examples(index, odd)}); by convention recency is 0 when there "
                    "is no repeat purchase - use custvalue.summary.rfm_summary"
                )

    def _prediction_input(
        self, data: Any, columns: Sequence[str] | None = None, *, context: str = "predict"
    ) -> tuple[dict[str, np.ndarray], pd.Index]:
        """Validate prediction input and return ``(arrays, index)``."""
        cols = tuple(columns) if columns is not None else self._data_columns
        check_data_unit(self, data, context=context)
        arrays, index = self._collect(data, cols, context=context)
        self._check_values(arrays, index)
        self._validate(arrays, index)
        return arrays, index

    @staticmethod
    def _as_series(values: np.ndarray, index: pd.Index, name: str) -> pd.Series:
        return pd.Series(np.asarray(values, dtype=np.float64), index=index, name=name)

    def _horizon(
        self, t: Any, data: Any, index: pd.Index, name: str = "t", *, whole: bool = False
    ) -> float | np.ndarray:
        """A prediction horizon: one number, or one value per customer.

        ``t`` may be a number, an array with one value per row of ``data``, a Series aligned on
        the customer index (by label; every customer must be present) or the name of a column
        of ``data`` (e.g. ``"duration_holdout"`` from
        :func:`custvalue.summary.calibration_holdout`). Returns a float for a number, else a
        float array in the row order of ``data``. ``whole=True`` requires whole numbers
        (discrete-time models count opportunities or periods).
        """
        if isinstance(t, str):
            if not isinstance(data, pd.DataFrame) or t not in data.columns:
                cols = list(data.columns)[:12] if isinstance(data, pd.DataFrame) else []
                raise ParameterError(
                    f"{name}={t!r} names no column of the data (columns: {cols}); pass a number, "
                    "an array, a Series indexed by customer or an existing column name"
                )
            values = _as_float_array(data[t].to_numpy(), t)
        elif isinstance(t, pd.Series):
            missing = ~index.isin(t.index)
            if missing.any():
                raise ParameterError(
                    f"{name} is a Series without a value for {int(missing.sum())} of {len(index)} "
                    f"customers (customers {_examples(index, missing)}); index it by customer id"
                )
            if not t.index.is_unique:
                raise ParameterError(f"{name} is a Series with duplicate customer ids in its index")
            values = _as_float_array(t.reindex(index).to_numpy(), name)
        elif np.ndim(t) == 0:
            value = self._check_horizon(t, name)
            if whole and value != round(value):
                raise ParameterError(f"{name} must be a whole number >= 0; got {t!r}")
            return value
        else:
            values = _as_float_array(t, name)
            if values.size != len(index):
                raise ParameterError(
                    f"{name} has {values.size} values but the data have {len(index)} customers; "
                    "pass one horizon per customer (or a Series indexed by customer id)"
                )
        bad = ~np.isfinite(values) | (values < 0)
        if whole:
            bad |= values != np.round(values)
        if bad.any():
            rule = "whole numbers >= 0" if whole else "finite and >= 0"
            raise ParameterError(
                f"{name} must be {rule}; {int(bad.sum())} of {values.size} values are not "
                f"(customers {_examples(index, bad)}, values {_clip_values(values[bad])})"
            )
        return values

    @staticmethod
    def _per_distinct_horizon(t: float | np.ndarray, n: int, compute: Any) -> np.ndarray:
        """Evaluate ``compute(t_value, rows)`` once per distinct horizon and assemble the rows.

        For formulas that need a scalar horizon (e.g. a sum over future opportunities). The loop
        runs over distinct horizons (a handful: whole numbers of opportunities), never over
        customers; a scalar ``t`` is one call with ``rows = slice(None)``.
        """
        if np.ndim(t) == 0:
            return np.asarray(compute(float(t), slice(None)), dtype=np.float64)
        out = np.empty(n)
        values, inverse = np.unique(np.asarray(t, dtype=np.float64), return_inverse=True)
        for j, value in enumerate(values):
            rows = inverse == j
            out[rows] = compute(float(value), rows)
        return out

    @staticmethod
    def _horizon_array(t: Any, name: str = "t", unit: str = "time units") -> np.ndarray:
        """Validate horizons given as a number or array (curves, new-customer predictions)."""
        try:
            arr = np.asarray(t, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ParameterError(
                f"{name} must be a number or an array of numbers of {unit}; got {type(t).__name__}"
            ) from exc
        bad = ~np.isfinite(arr) | (arr < 0)
        if bad.any():
            raise ParameterError(
                f"{name} must be finite and >= 0 {unit}; {int(bad.sum())} of {arr.size} values "
                f"are not ({_clip_values(arr[bad])})"
            )
        return arr

    @staticmethod
    def _check_rate(discount_rate: Any, unit: str, why: str = "") -> float:
        """A discount rate: a finite number > 0 (``unit`` and ``why`` complete the message)."""
        try:
            rate = float(discount_rate)
        except (TypeError, ValueError) as exc:
            raise ParameterError(f"discount_rate must be a number; got {discount_rate!r}") from exc
        if not np.isfinite(rate) or rate <= 0:
            raise ParameterError(
                f"discount_rate must be > 0 {unit}; got {discount_rate!r}" + (f" ({why})" if why else "")
            )
        return rate

    @staticmethod
    def _check_horizon(t: Any, name: str = "t") -> float:
        try:
            value = float(t)
        except (TypeError, ValueError) as exc:
            raise ParameterError(f"{name} must be a number of time units; got {t!r}") from exc
        if not np.isfinite(value) or value < 0:
            raise ParameterError(f"{name} must be finite and >= 0; got {t!r}")
        return value

    # ------------------------------------------------------------------ fitting
    def _resolve_unit(self, data: Any) -> str:
        attrs_unit = None
        if isinstance(data, pd.DataFrame):
            attrs_unit = data.attrs.get("freq")
        if self.time_unit is not None:
            unit = normalize_unit(self.time_unit)
            if attrs_unit is not None and normalize_unit(str(attrs_unit)) != unit:
                raise ParameterError(
                    f"time_unit={self.time_unit!r} but the data were summarised in "
                    f"{UNIT_NAMES[normalize_unit(str(attrs_unit))]}s (data.attrs['freq']="
                    f"{attrs_unit!r}); re-summarise with freq={unit!r} or drop time_unit"
                )
            return unit
        if attrs_unit is not None:
            return normalize_unit(str(attrs_unit))
        return "D"

    def _objective_factory(
        self, data: Mapping[str, np.ndarray], weights: np.ndarray
    ) -> tuple[Any, Any]:
        """Return (fun, grad) of the *total* penalised log-likelihood in log-parameter space."""
        total_w = float(weights.sum())
        pen = float(self.penalizer_coef)
        all_log = bool(self._log_mask().all())

        def pen_grad(phi: np.ndarray) -> np.ndarray:
            if all_log:
                return total_w * pen * 2.0 * np.exp(2.0 * phi)
            theta = self._natural(phi)
            return total_w * pen * 2.0 * theta * self._dnatural(theta)

        memo: dict[str, Any] = {}

        def both(phi: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
            key = phi.tobytes()
            if memo.get("key") != key:
                memo["key"] = key
                memo["totals"] = self._loglik_and_gradient_totals(phi, data, weights)
                memo["value"] = (
                    None
                    if memo["totals"] is not None
                    else self._loglik_and_gradient_rows(phi, data)
                )
            return memo["value"]

        def loglik(phi: np.ndarray) -> float:
            pair = both(phi)
            if memo["totals"] is not None:
                value = float(memo["totals"][0])
            else:
                ll = pair[0] if pair is not None else self._log_likelihood_rows(phi, data)
                value = float(np.einsum("i,i->", weights, ll))  # no BLAS: threads contend
            if pen:
                if all_log:
                    value -= total_w * pen * float(np.sum(np.exp(2.0 * phi)))
                else:
                    value -= total_w * pen * float(np.sum(self._natural(phi) ** 2))
            return value

        def grad(phi: np.ndarray) -> np.ndarray:
            pair = both(phi)
            if memo["totals"] is not None:
                g = np.array(memo["totals"][1], dtype=np.float64)
                if pen:
                    g = g - pen_grad(phi)
                return g
            rows = pair[1] if pair is not None else self._gradient_rows(phi, data)
            if rows is None:
                g = np.empty_like(phi)
                for j in range(phi.size):
                    h = 1e-6 * max(1.0, abs(phi[j]))
                    e = np.zeros_like(phi)
                    e[j] = h
                    g[j] = (loglik(phi + e) - loglik(phi - e)) / (2 * h)
                return g
            g = np.einsum("ij,i->j", rows, weights)
            if pen:
                g = g - pen_grad(phi)
            return np.asarray(g, dtype=np.float64)

        return loglik, grad

    def _optimise(
        self,
        loglik: Any,
        grad: Any,
        start: np.ndarray,
        scale: float,
        fixed: Sequence[int] = (),
        gtol: float = 1e-10,
    ) -> optimize.OptimizeResult:
        bounds = [(-_LOG_BOUND, _LOG_BOUND)] * start.size
        for j in fixed:
            bounds[j] = (start[j], start[j])

        def fun(phi: np.ndarray) -> tuple[float, np.ndarray]:
            with np.errstate(all="ignore"):
                v = loglik(phi)
                g = grad(phi)
            if not np.isfinite(v) or not np.all(np.isfinite(g)):
                return 1e300, np.zeros_like(phi)
            return -v / scale, -g / scale

        return optimize.minimize(
            fun,
            np.clip(start, -_LOG_BOUND, _LOG_BOUND),
            jac=True,
            method="L-BFGS-B",
            bounds=bounds,
            options={"maxiter": 5000, "ftol": 1e-15, "gtol": gtol, "maxcor": 20},
        )

    def _newton_fixed(
        self,
        loglik: Any,
        grad: Any,
        phi: np.ndarray,
        hess: np.ndarray,
        scale: float,
        max_iter: int = 15,
    ) -> optimize.OptimizeResult:
        """Newton iterations with a fixed Hessian (from the warm-start subset, which matches the
        full one up to sampling error, so each step gains about two digits)."""
        cur = loglik(phi)
        it = 0
        msg = "fixed-Hessian Newton: converged"
        for it in range(1, max_iter + 1):  # noqa: B007
            g = grad(phi)
            try:
                # the subset Hessian is on the full-data scale already (weights reweighted)
                step = np.linalg.solve(hess, -g)
            except np.linalg.LinAlgError:
                msg = "fixed-Hessian Newton: singular Hessian"
                break
            if not np.all(np.isfinite(step)):
                msg = "fixed-Hessian Newton: non-finite step"
                break
            found = ascent_step(loglik, phi, step, cur)
            if found is None:
                msg = "fixed-Hessian Newton: no ascent"
                break
            cand, val, lam = found
            phi, gain, cur = cand, val - cur, val
            if np.max(np.abs(lam * step)) < 1e-8 or abs(gain) < 1e-13 * max(1.0, abs(cur)):
                break
        return optimize.OptimizeResult(
            x=phi, fun=-cur / scale, success=True, message=msg, nit=it
        )

    def _hessian_log(self, grad: Any, phi: np.ndarray, central: bool = True) -> np.ndarray:
        """Hessian by differences of the analytic gradient (central, or forward for big data)."""
        k = phi.size
        hess = np.empty((k, k))
        g0 = None if central else grad(phi)
        for j in range(k):
            h = (1e-5 if central else 2e-6) * max(1.0, abs(phi[j]))
            e = np.zeros(k)
            e[j] = h
            if central:
                hess[:, j] = (grad(phi + e) - grad(phi - e)) / (2 * h)
            else:
                hess[:, j] = (grad(phi + e) - g0) / h
        return (hess + hess.T) / 2.0

    def fit(self, data: pd.DataFrame, *, weights: Any = None) -> BaseModel:
        """Fit the model by maximum likelihood.

        Parameters
        ----------
        data : pd.DataFrame
            Customer summary with the model's columns (see ``_data_columns``), e.g. from
            :func:`custvalue.summary.rfm_summary`. A ``weight`` column, if present, means "this
            many identical customers".
        weights : array-like, optional
            Per-row weights (overrides a ``weight`` column).

        Returns
        -------
        self

        Raises
        ------
        DataValidationError
            Missing columns, negative or missing values, recency > T, fractional frequency.
        ConvergenceError
            The optimiser failed or a parameter ran away (not along a known limiting model).
        """
        arrays, index = self._collect(data, self._fit_columns(), context="fit")
        n_rows = len(index)
        if n_rows == 0:
            raise DataValidationError(f"{type(self).__name__}.fit got an empty summary (0 rows)")
        self._check_values(arrays, index)
        self._validate(arrays, index)
        self._validate_fit(arrays, index)
        arrays.update(self._extra_fit_arrays(data, index))
        if weights is None and isinstance(data, pd.DataFrame) and "weight" in data.columns:
            weights = data["weight"].to_numpy()
        if weights is None:
            w = np.ones(n_rows)
        else:
            w = _as_float_array(weights, "weight")
            if w.size != n_rows:
                raise DataValidationError(
                    f"weights has {w.size} entries but the data has {n_rows} rows"
                )
            badw = ~np.isfinite(w) | (w < 0)
            if badw.any():
                raise DataValidationError(
                    f"weights must be finite and >= 0; {int(badw.sum())} rows are not "
                    f"(customers {_examples(index, badw)})"
                )
        mask = self._fit_rows(arrays)
        if mask is not None:
            arrays = {c: a[mask] for c, a in arrays.items()}
            w = w[mask]
        keep = w > 0
        if not keep.all():
            arrays = {c: a[keep] for c, a in arrays.items()}
            w = w[keep]
        if w.size == 0:
            raise DataValidationError(
                f"{type(self).__name__}.fit has no customers to fit after filtering "
                f"({n_rows} rows in, 0 usable); "
                + ("Gamma-Gamma needs customers with frequency > 0" if mask is not None else "")
            )
        self.time_unit_ = self._resolve_unit(data)
        arrays, scale = self._scale_fit_data(arrays, w)
        # compress identical rows into weights
        cols = list(self._compress_columns())
        if self._compress_rows:
            uniq, inverse = unique_rows([arrays[c] for c in cols])
            cw = np.bincount(inverse, weights=w, minlength=uniq[0].size)
            order = self._compressed_row_order(dict(zip(cols, uniq, strict=True)))
            if order is not None:
                uniq, cw = [u[order] for u in uniq], cw[order]
        else:
            uniq, cw = [arrays[c] for c in cols], w
        cdata = self._prepare_data(dict(zip(cols, uniq, strict=True)))
        self._fit_core(cdata, cw)
        self._warn_edges()  # on the optimiser's scale, where "edge" means the same for any data
        if scale != 1.0:
            self._unscale_fit(scale)
        return self

    def _compressed_row_order(self, data: Mapping[str, np.ndarray]) -> np.ndarray | None:
        """An order for the compressed distinct rows, or ``None`` to keep first occurrence.

        A likelihood that gathers per-row values from shared tables (the Pareto/NBD's pairs)
        runs faster when neighbouring rows read neighbouring entries; the order changes no
        total beyond rounding.
        """
        return None

    def _fit_core(self, data: dict[str, np.ndarray], weights: np.ndarray) -> None:
        """Maximise the likelihood on prepared, compressed data and store the fitted attributes.

        The steps, each a method: :meth:`_objective` (value and gradient of the penalised total),
        :meth:`_start_points`, the search (:meth:`_multi_start` on small data,
        :meth:`_warm_start` on large data), :meth:`_best_result`, :meth:`_handle_boundary`
        (known limiting models), :meth:`_polish` (one Newton step), :meth:`_check_runaway` and
        :meth:`_store_fit` (standard errors, information criteria, diagnostics, warnings).
        """
        obj = self._objective(data, weights)
        starts = self._start_points(data, weights)
        big = weights.size > _WARM_START_ROWS
        results = self._warm_start(obj, starts) if big else self._multi_start(obj, starts)
        best = self._best_result(results)
        phi, boundary_groups = self._handle_boundary(obj.loglik, obj.grad, best.x.copy(), obj.scale)
        phi, hess_log = self._polish(obj.loglik, obj.grad, phi, boundary_groups, central=not big)
        self._check_runaway(phi, boundary_groups, data, weights)
        self._store_fit(obj, phi, hess_log, best, results, boundary_groups, central=not big)

    # -- fitting steps
    def _objective(self, data: Mapping[str, np.ndarray], weights: np.ndarray) -> _Objective:
        """The penalised total log-likelihood of ``data`` and its gradient, in log-parameters."""
        loglik, grad = self._objective_factory(data, weights)
        total_w = float(weights.sum())
        return _Objective(loglik, grad, max(total_w, 1.0), data, weights)

    def _start_points(self, data: Mapping[str, np.ndarray], weights: np.ndarray) -> list[np.ndarray]:
        """Log-scale starting points: the model's own (moment-based) and a vector of zeros."""
        mask = self._log_mask()
        k = int(mask.sum())  # positive parameters come first; coefficients start at 0
        with np.errstate(all="ignore"):
            init = np.asarray(self._initial_params(data, weights), dtype=np.float64)
        init = np.atleast_2d(init)
        if init.shape[1:] != (k,) or not np.all(np.isfinite(init)) or np.any(init <= 0):
            init = np.ones((1, k))
        starts = [np.log(row) for row in init]
        if len(starts) < 2:
            starts.append(np.zeros(k))
        extra = mask.size - k
        if extra:
            starts = [np.concatenate([s, np.zeros(extra)]) for s in starts]
        return starts

    def _multi_start(self, obj: _Objective, starts: Sequence[np.ndarray]) -> list[Any]:
        """L-BFGS-B from every start; three seeded jittered restarts when the optima disagree."""
        results = [self._optimise(obj.loglik, obj.grad, s, obj.scale) for s in starts]
        if not _optima_agree(results):
            rng = np.random.default_rng(20050101)
            best = min(results, key=lambda r: r.fun)
            k = best.x.size
            for _ in range(3):
                jitter = best.x + rng.normal(0, 0.7, k)
                results.append(self._optimise(obj.loglik, obj.grad, jitter, obj.scale))
        return results

    def _warm_subset(self, weights: np.ndarray) -> np.ndarray:
        """Sorted positions of the distinct rows the warm start solves first (seeded: the same
        rows on every machine)."""
        n_rows = weights.size
        rng = np.random.default_rng(1987)
        return np.sort(rng.choice(n_rows, min(n_rows, _WARM_START_ROWS // 4), replace=False))

    def _is_interior(self, obj: _Objective, res: Any) -> bool:
        """Whether an optimum is a clean interior maximum of ``obj``.

        Finite, gradient per customer below 1e-6, every log-parameter within
        ``+-_INTERIOR_LOG`` (a parameter between 1e-6 and 1e6) and a negative definite Hessian.
        Anything else (a parameter running away, a flat ridge towards a limiting model, a saddle)
        is decided by the full-data multi-start.
        """
        if not np.isfinite(res.fun) or res.fun >= 1e299:
            return False
        phi = np.asarray(res.x, dtype=np.float64)
        if not np.all(np.isfinite(phi)) or float(np.max(np.abs(phi))) >= _INTERIOR_LOG:
            return False
        with np.errstate(all="ignore"):
            g = obj.grad(phi)
        if not np.all(np.isfinite(g)) or float(np.max(np.abs(g))) / obj.scale >= 1e-6:
            return False
        return True

    def _warm_start(self, obj: _Objective, starts: Sequence[np.ndarray]) -> list[Any]:
        """Large data: solve a seeded subset, then Newton steps on all rows; confirm when unsure.

        The subset (a quarter of ``_WARM_START_ROWS`` distinct rows, reweighted to the full
        total) gets the same multi-start as small data. Its optimum is used only when it is a
        clean interior maximum (:meth:`_is_interior`) on which every start agrees; then Newton
        steps with the subset's Hessian (which matches the full one up to sampling error) and, if
        needed, L-BFGS-B finish on the full data, and the result is accepted only when it too is
        a clean interior maximum of the full likelihood. Otherwise -- a subset optimum on the
        boundary or running away, starts that disagree, Newton that does not converge -- the
        full-data multi-start (exactly the small-data path) decides, with the warm candidate as
        one more contender.
        """
        pick = self._warm_subset(obj.weights)
        raw = {c: np.asarray(obj.data[c])[pick] for c in self._compress_columns()}
        sub_w = obj.weights[pick]
        sub_w = sub_w * (float(obj.weights.sum()) / max(float(sub_w.sum()), 1e-300))
        sub = self._objective(self._prepare_data(raw), sub_w)
        sub.scale = obj.scale
        sub_results = self._subset_search(sub, starts)
        sub_best = min(sub_results, key=lambda r: r.fun)
        candidates: list[Any] = []
        agree = len(sub_results) == len(starts)  # no jittered restarts: every start agreed
        if agree and self._is_interior(sub, sub_best):
            hess = getattr(sub_best, "hess_log", None)
            if hess is None:
                hess = self._hessian_log(sub.grad, sub_best.x)
            info_ok = bool(np.all(np.linalg.eigvalsh(-hess) > 0))
            if info_ok:
                full = self._newton_fixed(obj.loglik, obj.grad, sub_best.x, hess, obj.scale)
                if not self._is_interior(obj, full):
                    x0 = full.x if np.isfinite(full.fun) else sub_best.x
                    full = self._optimise(obj.loglik, obj.grad, x0, obj.scale)
                if self._is_interior(obj, full):
                    return [full]
                candidates.append(full)
        else:
            x0 = sub_best.x if np.isfinite(sub_best.fun) else starts[0]
            candidates.append(self._optimise(obj.loglik, obj.grad, x0, obj.scale))
        return self._multi_start(obj, starts) + candidates

    def _subset_search(self, sub: _Objective, starts: Sequence[np.ndarray]) -> list[Any]:
        """The warm start's search on the subset: :meth:`_multi_start`. One result per start
        when the starts agree (more means they did not); a result may carry ``hess_log``, the
        subset Hessian near its optimum, which the full-data Newton steps then start from."""
        return self._multi_start(sub, starts)

    def _best_result(self, results: Sequence[Any]) -> Any:
        """The optimum with the highest penalised log-likelihood."""
        best = min(results, key=lambda r: r.fun)
        if not np.isfinite(best.fun) or best.fun >= 1e299:
            raise ConvergenceError(
                f"{type(self).__name__}: the log-likelihood is not finite at any starting point "
                f"({len(results)} starts). Check the data (time unit, outliers) or set "
                "penalizer_coef > 0"
            )
        return best

    def _check_runaway(
        self,
        phi: np.ndarray,
        boundary_groups: Sequence[Any],
        data: Mapping[str, np.ndarray],
        weights: np.ndarray,
    ) -> None:
        """Raise :class:`ConvergenceError` for a degenerate optimum or a parameter that ran away
        (beyond 1e10 or below 1e-10) other than along a known limiting model."""
        names = list(self._names())
        advice = (
            ". Try another time unit (weeks instead of days), more data or a longer observation "
            "window, or a small penalty such as penalizer_coef=0.01"
        )
        problem = self._fit_problem(self._natural(phi), data, weights)
        if problem:
            raise ConvergenceError(f"{type(self).__name__} did not converge: {problem}{advice}")
        mask = self._log_mask()
        runaway = [
            j
            for j, name in enumerate(names)
            if abs(phi[j]) >= _RUNAWAY and not any(name in g for g, _ in boundary_groups)
        ]
        if runaway:
            raise ConvergenceError(
                f"{type(self).__name__} did not converge: parameter(s) ran away "
                + ", ".join(
                    (
                        f"{names[j]} {'to infinity' if phi[j] > 0 else 'to zero'} "
                        f"(value {np.exp(phi[j]):.3g})"
                    )
                    if mask[j]
                    else (
                        f"coefficient {names[j]} to {phi[j]:+.3g} (the covariate separates "
                        "customers perfectly, or its scale is extreme: rescale it or merge levels)"
                    )
                    for j in runaway
                )
                + advice
            )

    def _store_fit(
        self,
        obj: _Objective,
        phi: np.ndarray,
        hess_log: np.ndarray | None,
        best: Any,
        results: Sequence[Any],
        boundary_groups: Sequence[Any],
        central: bool,
    ) -> None:
        """Set ``params_``, the covariance, information criteria, diagnostics and notes."""
        names = list(self._names())
        k = len(names)
        loglik, grad, scale = obj.loglik, obj.grad, obj.scale
        data, weights = obj.data, obj.weights
        total_w = float(weights.sum())
        ll_pen = loglik(phi)
        g_log = grad(phi)
        ll = _dot(weights, self._log_likelihood_rows(phi, data))
        if not np.isfinite(ll):
            raise ConvergenceError(
                f"{type(self).__name__}: the log-likelihood at the optimum is not finite"
            )
        if hess_log is None:
            hess_log = self._hessian_log(grad, phi, central=central)
        theta = self._natural(phi)
        mask = self._log_mask()
        jac = self._dnatural(theta)
        # information in log space including the gradient term: I = -(H_log - diag(g)) (the
        # term comes from the log transform, so only log-scale parameters have it)
        info_log = -(hess_log - np.diag(np.where(mask, g_log, 0.0)))
        info_log = (info_log + info_log.T) / 2.0
        notes: list[str] = []
        vals_e, vecs_e = np.linalg.eigh(info_log)
        tol = max(abs(vals_e).max(), 1e-300) * 1e-10
        good = vals_e > tol
        if boundary_groups:
            # directions along which the boundary group scales are not identified
            for group, _ in boundary_groups:
                v = np.zeros(k)
                for nme in group:
                    v[names.index(nme)] = 1.0
                v /= np.linalg.norm(v)
                proj = np.abs(vecs_e.T @ v)
                good &= proj < 0.5
        if good.all():
            cov_log = np.linalg.inv(info_log)
        else:
            inv_vals = np.where(good, 1.0 / np.where(good, vals_e, 1.0), 0.0)
            cov_log = (vecs_e * inv_vals) @ vecs_e.T
            if not boundary_groups:
                notes.append(
                    "the observed information matrix is singular or not positive definite; "
                    "standard errors use its pseudo-inverse on the identified directions"
                )
        cov_log = (cov_log + cov_log.T) / 2.0
        cov_nat = cov_log * np.outer(jac, jac)
        self.params_ = pd.Series(theta, index=names, name="estimate", dtype=np.float64)
        self._set_covariance(cov_nat)
        self.log_likelihood_ = ll
        self.n_customers_ = total_w
        self.n_unique_rows_ = int(weights.size)
        self.aic_ = 2 * k - 2 * ll
        self.bic_ = k * math.log(max(total_w, 1.0)) - 2 * ll
        hess_nat = (hess_log - np.diag(np.where(mask, g_log, 0.0))) / np.outer(jac, jac)
        try:
            cond = float(np.linalg.cond(hess_nat))
        except np.linalg.LinAlgError:  # pragma: no cover
            cond = float("inf")
        self.diagnostics_ = {
            "converged": bool(best.success) or float(np.max(np.abs(g_log))) / scale < 1e-5,
            "optimizer_message": str(best.message),
            "iterations": int(best.nit),
            "restarts": len(results),
            "gradient_norm": float(np.linalg.norm(g_log)),
            "gradient_norm_per_customer": float(np.linalg.norm(g_log)) / scale,
            "hessian_condition": cond,
            "penalized_log_likelihood": float(ll_pen),
            "boundary": [list(g) for g, _ in boundary_groups],
        }
        for group, desc in boundary_groups:
            msg = (
                f"{type(self).__name__}: the likelihood is maximised on the boundary of the "
                f"parameter space - {', '.join(group)} grow without limit together because "
                f"{desc}. Returning the limiting fit with finite values "
                + ", ".join(f"{n}={self.params_[n]:.4g}" for n in group)
                + "; predictions are those of the limiting model and the standard errors of "
                "these parameters are not meaningful."
            )
            notes.append(msg)
            warnings.warn(msg, BoundaryFitWarning, stacklevel=5)
        if not self.diagnostics_["converged"]:
            notes.append(
                f"the optimiser reported: {best.message}; gradient norm per customer "
                f"{self.diagnostics_['gradient_norm_per_customer']:.3g}"
            )
        self._notes = notes

    def _warn_edges(self) -> None:
        """One mechanism for every model: warn when a fit sits on the edge of the parameter space.

        Beyond the limiting models that :meth:`_handle_boundary` detects and moves to, a fit is
        on the edge when a limit group's parameters are all above 1e3 (the mixing distribution
        has numerically collapsed, e.g. Pareto/NBD's ``s, beta``) or when any other parameter
        lies outside ``[1e-4, 1e6]`` or has a log-scale standard error above 10 (its 95%
        interval spans more than 17 orders of magnitude): tiny data sets, no repeat buyers, where
        the likelihood keeps rising towards a limit the optimiser stops short of. Each case gives a
        :class:`BoundaryFitWarning`, a note in ``summary()`` and an entry in
        ``diagnostics_["boundary"]``. The README promises it: "fits on the edge of the
        parameter space return the limiting model with a warning".
        """
        params = self.params_
        flagged = [list(g) for g in self.diagnostics_.get("boundary", [])]
        covered = {n for g in flagged for n in g}
        notes = list(getattr(self, "_notes", []))
        name = type(self).__name__
        for group, desc in self._limit_groups:
            if set(group) & covered or min(float(params[n]) for n in group) <= 1e3:
                continue
            values = ", ".join(f"{n}={params[n]:.4g}" for n in group)
            msg = (
                f"{name}: the likelihood is maximised on the boundary of the parameter space - "
                f"{', '.join(group)} grow without limit together because {desc}. Returning the "
                f"limiting fit with finite values {values}; predictions are those of the "
                "limiting model and the standard errors of these parameters are not meaningful."
            )
            flagged.append(list(group))
            covered |= set(group)
            notes.append(msg)
            warnings.warn(msg, BoundaryFitWarning, stacklevel=3)
        se = getattr(self, "standard_errors_", None)
        rel_se = (se / params) if se is not None else pd.Series(0.0, index=params.index)
        positive = dict(zip(self._names(), self._log_mask(), strict=True))
        edge = [
            n for n in self._names()
            if n not in covered and positive[n]
            and (not 1e-4 <= float(params[n]) <= 1e6 or float(rel_se[n]) > 10.0)
        ]
        if edge:
            values = ", ".join(f"{n}={params[n]:.4g}" for n in edge)
            msg = (
                f"{name}: the fit is on the edge of the parameter space ({values}): the "
                "likelihood keeps improving towards a limiting model, so the data do not "
                "identify these parameters. Predictions are those of the limiting model and their "
                "standard errors are not meaningful. This happens with very few customers or no "
                "repeat buyers; fit on more data, or set a small penalizer_coef."
            )
            flagged.append(edge)
            notes.append(msg)
            warnings.warn(msg, BoundaryFitWarning, stacklevel=3)
        self.diagnostics_["boundary"] = flagged
        self._notes = notes

    def _handle_boundary(
        self, loglik: Any, grad: Any, phi: np.ndarray, scale: float
    ) -> tuple[np.ndarray, list[tuple[tuple[str, ...], str]]]:
        """Detect maxima on a known limiting model and move to a finite stand-in for the limit."""
        names = list(self._names())
        found: list[tuple[tuple[str, ...], str]] = []
        base_ll = loglik(phi)
        for group, desc in self._edge_groups(phi):
            idx = [names.index(n) for n in group]
            if np.ptp(phi[idx]) > math.log(1e8) or phi[idx].min() < -math.log(1e3):
                # one member ran off alone: not this joint limit
                continue
            if phi[idx].min() > _RIDGE_CHECK:
                # far out along the ridge the likelihood's large terms (r log alpha and the like,
                # ~1e13 at r ~ 1e12) round to ~1e-3, as much as the differences compared below,
                # and an optimiser wandering there finds spurious maxima: judge the ridge from
                # the same direction at a scale where the likelihood is exact to ~1e-9, with the
                # other parameters re-optimised there
                pulled = phi.copy()
                pulled[idx] -= phi[idx].min() - _RIDGE_CHECK
                res = self._optimise(loglik, grad, pulled, scale, fixed=idx)
                with np.errstate(all="ignore"):
                    pulled_ll = -res.fun * scale
                if np.isfinite(pulled_ll):
                    phi, base_ll = res.x.copy(), pulled_ll
            # cheap screen: scaling the group up 1000x (ratio fixed, others held) must not cost
            # more than a sliver of likelihood, otherwise the optimum is interior for this group
            quick = phi.copy()
            quick[idx] += math.log(1e3)
            with np.errstate(all="ignore"):
                quick_ll = loglik(quick)
            if not np.isfinite(quick_ll) or quick_ll < base_ll - 1e-3 * max(1.0, abs(base_ll)):
                continue
            if phi[idx].min() > math.log(1e5):
                # the optimiser already walked far along the ridge; the likelihood there is flat
                # to rounding error, so this is the limiting model
                found.append((tuple(group), desc))
                continue
            probe = phi.copy()
            probe[idx] += math.log(1e3)
            res = self._optimise(loglik, grad, probe, scale, fixed=idx)
            with np.errstate(all="ignore"):
                probe_ll = -res.fun * scale
            tol = 1e-9 * max(1.0, abs(base_ll))
            if not np.isfinite(probe_ll) or probe_ll < base_ll - tol:
                continue
            # the supremum lies further out: walk out until the gain is negligible
            cur, cur_ll = res.x.copy(), probe_ll
            for _ in range(12):
                if cur[idx].max() >= _LOG_BOUND - 6.0:
                    break
                nxt = cur.copy()
                nxt[idx] += math.log(10.0)
                r2 = self._optimise(loglik, grad, nxt, scale, fixed=idx)
                ll2 = -r2.fun * scale
                if not np.isfinite(ll2):
                    break
                gain = ll2 - cur_ll
                if gain < -tol:
                    break
                cur, cur_ll = r2.x.copy(), ll2
                if gain < 1e-10 * max(1.0, abs(cur_ll)):
                    break
            if cur[idx].min() < math.log(1e2):
                # not the joint limit: a single parameter is running away (caught by the caller)
                continue
            phi = cur
            found.append((tuple(group), desc))
        return phi, found

    def _polish(
        self,
        loglik: Any,
        grad: Any,
        phi: np.ndarray,
        boundary_groups: Sequence[Any],
        central: bool = True,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """One safeguarded Newton step on the log-parameters (skipped at boundary fits).

        Returns the new point and the Hessian when it may be reused for the covariance (the step
        was rejected or negligible), else ``None``.
        """
        if boundary_groups:
            return phi, None
        cur_ll = loglik(phi)
        g = grad(phi)
        h = self._hessian_log(grad, phi, central=central)
        try:
            step = np.linalg.solve(h, -g)
        except np.linalg.LinAlgError:
            return phi, h
        if not np.all(np.isfinite(step)) or np.max(np.abs(step)) > 1.0:
            return phi, h
        cand = phi + step
        with np.errstate(all="ignore"):
            cand_ll = loglik(cand)
            cand_g = grad(cand)
        # Near the maximum the likelihood is flat to rounding error: accept a step that does not
        # lose more than rounding and brings the gradient closer to zero.
        flat = 1e-13 * max(1.0, abs(cur_ll))
        if (
            not np.isfinite(cand_ll)
            or cand_ll < cur_ll - flat
            or (cand_ll < cur_ll and not np.max(np.abs(cand_g)) < np.max(np.abs(g)))
        ):
            return phi, h
        return cand, (h if np.max(np.abs(step)) < 1e-5 else None)

    def _set_covariance(self, cov: np.ndarray) -> None:
        names = list(self._names())
        theta = self._params_array()
        cov = (np.asarray(cov, dtype=np.float64) + np.asarray(cov, dtype=np.float64).T) / 2.0
        self.covariance_ = pd.DataFrame(cov, index=names, columns=names)
        se = np.sqrt(np.clip(np.diag(cov), 0.0, None))
        self.standard_errors_ = pd.Series(se, index=names, name="std_error")
        self.confidence_intervals_ = self._wald_intervals(theta, se, 0.95, self._log_mask())

    @staticmethod
    def _wald_intervals(
        theta: np.ndarray, se: np.ndarray, level: float, mask: np.ndarray | None = None
    ) -> pd.DataFrame:
        """Log-scale Wald intervals for positive parameters, plain ones for coefficients."""
        z = stats.norm.ppf(0.5 + level / 2.0)
        if mask is None or np.all(mask):
            se_log = np.minimum(se / theta, 50.0)
            return pd.DataFrame(
                {"lower": theta * np.exp(-z * se_log), "upper": theta * np.exp(z * se_log)}
            )
        pos = np.where(mask, theta, 1.0)
        se_log = np.minimum(se / pos, 50.0)
        return pd.DataFrame(
            {
                "lower": np.where(mask, pos * np.exp(-z * se_log), theta - z * se),
                "upper": np.where(mask, pos * np.exp(z * se_log), theta + z * se),
            }
        )

    def conf_int(self, level: float = 0.95) -> pd.DataFrame:
        """Wald intervals on the log scale, exponentiated (always positive).

        ``exp(log(theta) +/- z * se / theta)``, where ``se / theta`` is the delta-method standard
        error of ``log(theta)``.
        """
        if not 0 < level < 1:
            raise ParameterError(f"level must be between 0 and 1; got {level}")
        if getattr(self, "standard_errors_", None) is None:
            raise ModelNotFittedError(
                f"{type(self).__name__} has no standard errors: fit it or pass covariance="
            )
        theta = self._params_array()
        out = self._wald_intervals(theta, self.standard_errors_.to_numpy(), level, self._log_mask())
        out.index = list(self._names())
        return out

    @property
    def _is_fitted(self) -> bool:
        return getattr(self, "params_", None) is not None

    # keep intervals indexed by parameter name
    def __setattr__(self, name: str, value: Any) -> None:
        if name == "confidence_intervals_" and isinstance(value, pd.DataFrame):
            value.index = list(self._names())
        super().__setattr__(name, value)

    # ------------------------------------------------------------------ reporting
    def summary(self, level: float = 0.95) -> ModelSummary:
        """Estimates, standard errors, log-scale Wald intervals and fit diagnostics.

        Renders as text with ``print(model.summary())`` and as an HTML table in notebooks.
        """
        theta = self._params_array()
        se = getattr(self, "standard_errors_", None)
        table = pd.DataFrame({"estimate": theta}, index=list(self._names()))
        if se is not None:
            ci = self.conf_int(level)
            table["std_error"] = se.to_numpy()
            pct = f"{100 * level:g}%"
            table[f"lower {pct}"] = ci["lower"].to_numpy()
            table[f"upper {pct}"] = ci["upper"].to_numpy()
        info: dict[str, Any] = {"time unit": UNIT_NAMES.get(self._unit(), self._unit())}
        if getattr(self, "log_likelihood_", None) is not None:
            diag = self.diagnostics_
            info.update(
                {
                    "customers": self.n_customers_,
                    "unique rows": self.n_unique_rows_,
                    "log-likelihood": self.log_likelihood_,
                    "AIC": self.aic_,
                    "BIC": self.bic_,
                    "penalizer_coef": float(self.penalizer_coef),
                    "converged": diag["converged"],
                    "gradient norm": diag["gradient_norm"],
                    "Hessian condition": diag["hessian_condition"],
                    "iterations": diag["iterations"],
                    "optimizer": diag["optimizer_message"],
                }
            )
        else:
            info["source"] = "from_params (not fitted)"
        notes = list(getattr(self, "_notes", []))
        if se is not None:
            notes.append(
                f"intervals are {100 * level:g}% Wald intervals on the log scale, "
                "exp(log(theta) +/- z*se/theta), so they are always positive"
            )
        return ModelSummary(type(self).__name__ + f" ({self._model_name})", table, info, notes)

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self._options().items())
        if self._is_fitted:
            ps = ", ".join(f"{k}={v:.4g}" for k, v in self.params_.items())
            extra = f" fitted on {self.n_customers_:g} customers" if hasattr(self, "n_customers_") else ""
            return f"<{type(self).__name__}({opts}): {ps} [{self._unit()}]{extra}>"
        return f"<{type(self).__name__}({opts}): not fitted>"

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> None:
        """Write the model as JSON (parameters, covariance, options, time unit, version)."""
        self._params_array()
        cov = getattr(self, "covariance_", None)
        payload: dict[str, Any] = {
            "format": "custvalue-model",
            "custvalue_version": _package_version(),
            "model": type(self).__name__,
            "time_unit": self._unit(),
            "options": {k: v for k, v in self._options().items()},
            "params": {k: float(v) for k, v in self.params_.items()},
            "covariance": None if cov is None else np.asarray(cov, dtype=float).tolist(),
        }
        extra = self._extra_state()
        if extra is not None:
            payload["state"] = extra
        if getattr(self, "log_likelihood_", None) is not None:
            payload["fit"] = {
                "log_likelihood": self.log_likelihood_,
                "n_customers": self.n_customers_,
                "n_unique_rows": self.n_unique_rows_,
                "aic": self.aic_,
                "bic": self.bic_,
                "diagnostics": self.diagnostics_,
                "notes": list(getattr(self, "_notes", [])),
            }
        Path(path).write_text(json.dumps(payload, indent=2, allow_nan=True))

    @classmethod
    def load(cls, path: str | Path) -> BaseModel:
        """Read a model written by :meth:`save`.

        ``BaseModel.load`` returns whichever model class the file holds; ``SomeModel.load``
        additionally checks that the file holds that class.
        """
        try:
            payload = json.loads(Path(path).read_text())
        except json.JSONDecodeError as exc:
            raise ParameterError(f"{path} is not a custvalue model file (invalid JSON: {exc})") from exc
        if not isinstance(payload, dict) or payload.get("format") != "custvalue-model":
            raise ParameterError(f"{path} is not a custvalue model file (no 'format' marker)")
        name = payload.get("model")
        klass = _MODEL_REGISTRY.get(str(name))
        if klass is None:
            raise ParameterError(
                f"{path} holds a {name!r} model, which this custvalue does not know; "
                f"known: {sorted(_MODEL_REGISTRY)}"
            )
        if cls is not BaseModel and not issubclass(klass, cls):
            raise ParameterError(f"{path} holds a {name} model, not a {cls.__name__}")
        model = klass(**payload.get("options", {}))
        if payload.get("state") is not None:
            model._restore_state(payload["state"])
        model.params_ = model._checked_params(payload["params"])
        model.time_unit_ = normalize_unit(payload.get("time_unit", "D"))
        if payload.get("covariance") is not None:
            model._set_covariance(np.asarray(payload["covariance"], dtype=float))
        else:
            model.covariance_ = None
            model.standard_errors_ = None
            model.confidence_intervals_ = None
        fit = payload.get("fit")
        if fit:
            model.log_likelihood_ = float(fit["log_likelihood"])
            model.n_customers_ = float(fit["n_customers"])
            model.n_unique_rows_ = int(fit.get("n_unique_rows", 0))
            model.aic_ = float(fit["aic"])
            model.bic_ = float(fit["bic"])
            model.diagnostics_ = dict(fit.get("diagnostics", {}))
            model._notes = list(fit.get("notes", []))
        return model


def load_model(path: str | Path) -> BaseModel:
    """Load any custvalue model saved with ``model.save(path)``."""
    return BaseModel.load(path)
