"""Holdout evaluation of customer models: scorecards, model comparison and tracking.

The holdout design follows Fader, Hardie & Lee (2005a, "Counting your customers the easy way",
section 4) and Schmittlein & Peterson (1994): fit on a calibration period, predict each
customer's number of repeat purchases in the holdout period with the conditional expectation
:math:`E[X(t^*) \\mid x, t_x, T]`, and compare with what happened — customer by customer, in
total, and by calendar week (tracking plots).
"""

from __future__ import annotations

import copy
import html
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ._protocols import PurchaseProbabilityModel
from ._summary import Summary
from ._time import DAYS_PER_UNIT, UNIT_NAMES, normalize_unit
from .errors import ConvergenceError, CustvalueError, DataValidationError, ParameterError

__all__ = [
    "ModelComparison",
    "Scorecard",
    "auc",
    "brier_score",
    "compare_models",
    "decile_table",
    "gini",
    "holdout_scorecard",
    "predict_holdout",
    "tracking",
]

_CAL_COLUMNS = ("frequency", "recency", "T")
_HOLDOUT_COLUMNS = ("frequency_holdout", "duration_holdout")


# ----------------------------------------------------------------------------------------------
# metric functions (plain numpy, sklearn-free)
# ----------------------------------------------------------------------------------------------
def auc(y_true: Any, score: Any) -> float:
    """Area under the ROC curve via the Mann-Whitney U statistic (ties count one half).

    :math:`AUC = (R_1 - n_1(n_1+1)/2) / (n_1 n_0)` with :math:`R_1` the sum of the mid-ranks of
    the positives (Hanley & McNeil 1982, eq. 2). Returns NaN when only one class is present.

    Parameters
    ----------
    y_true : array-like of bool or {0, 1}
        Observed outcome.
    score : array-like of float
        Predicted score; higher means more likely positive.
    """
    y = np.asarray(y_true, dtype=bool).reshape(-1)
    s = np.asarray(score, dtype=float).reshape(-1)
    if y.shape != s.shape:
        raise ParameterError(f"y_true has {y.size} values but score has {s.size}")
    n1 = int(y.sum())
    n0 = y.size - n1
    if n1 == 0 or n0 == 0:
        return float("nan")
    from scipy.stats import rankdata

    ranks = rankdata(s, method="average")
    return float((ranks[y].sum() - n1 * (n1 + 1) / 2.0) / (n1 * n0))


def brier_score(y_true: Any, prob: Any) -> float:
    """Mean squared difference between predicted probabilities and 0/1 outcomes (Brier 1950)."""
    y = np.asarray(y_true, dtype=float).reshape(-1)
    p = np.asarray(prob, dtype=float).reshape(-1)
    if y.shape != p.shape:
        raise ParameterError(f"y_true has {y.size} values but prob has {p.size}")
    return float(np.mean((p - y) ** 2))


def _concentration_area(actual: np.ndarray, order: np.ndarray) -> float:
    """Area under the cumulative-share curve of ``actual`` when customers are taken in ``order``.

    Ties are handled by the trapezoid rule over customers; the curve starts at (0, 0).
    """
    a = actual[order]
    total = a.sum()
    n = a.size
    cum = np.concatenate([[0.0], np.cumsum(a) / total])
    return float(((cum[1:] + cum[:-1]) / 2.0).sum() / n)


def gini(actual: Any, predicted: Any, *, normalized: bool = True) -> float:
    """Gini coefficient of a ranking: how much of the actual outcome the ranking concentrates.

    Customers are sorted by ``predicted`` (descending, ties broken by averaging over the tied
    block's mean outcome); with :math:`A` the area under the resulting cumulative-share curve of
    ``actual`` (the "gains" or concentration curve), :math:`G = 2A - 1`: 0 for a random ranking.
    With ``normalized=True`` the Gini is divided by that of the perfect ranking (sorting by
    ``actual`` itself), so a perfect ranking scores 1.

    Returns NaN when the actual outcomes sum to zero.
    """
    y = np.asarray(actual, dtype=float).reshape(-1)
    p = np.asarray(predicted, dtype=float).reshape(-1)
    if y.shape != p.shape:
        raise ParameterError(f"actual has {y.size} values but predicted has {p.size}")
    if y.size == 0 or y.sum() <= 0:
        return float("nan")
    # average the outcome within tied prediction blocks so ties do not reward lucky ordering
    _, inv = np.unique(-p, return_inverse=True)
    y_tied = (np.bincount(inv, weights=y) / np.bincount(inv))[inv]
    order = np.argsort(-p, kind="stable")
    g = 2.0 * _concentration_area(y_tied, order) - 1.0
    if not normalized:
        return g
    g_best = 2.0 * _concentration_area(y, np.argsort(-y, kind="stable")) - 1.0
    return float(g / g_best) if g_best > 0 else float("nan")


def decile_table(actual: Any, predicted: Any, *, n_groups: int = 10) -> pd.DataFrame:
    """Calibration table: customers in ``n_groups`` equal-sized groups by predicted value.

    Group 1 holds the highest predictions. Each row gives the number of customers, mean
    predicted, mean actual, their ratio, the share of all actual purchases in the group and the
    lift (share / group size share).
    """
    y = np.asarray(actual, dtype=float).reshape(-1)
    p = np.asarray(predicted, dtype=float).reshape(-1)
    n = y.size
    if n == 0:
        raise DataValidationError("decile_table needs at least one customer")
    k = min(int(n_groups), n)
    order = np.argsort(-p, kind="stable")
    group = np.empty(n, dtype=np.int64)
    group[order] = (np.arange(n) * k) // n + 1
    counts = np.bincount(group, minlength=k + 1)[1:]
    sum_p = np.bincount(group, weights=p, minlength=k + 1)[1:]
    sum_y = np.bincount(group, weights=y, minlength=k + 1)[1:]
    total_y = y.sum()
    share = sum_y / total_y if total_y > 0 else np.full(k, np.nan)
    res = pd.DataFrame(
        {
            "n_customers": counts,
            "mean_predicted": sum_p / counts,
            "mean_actual": sum_y / counts,
            "total_predicted": sum_p,
            "total_actual": sum_y,
            "share_of_actual": share,
            "lift": share / (counts / n),
        },
        index=pd.RangeIndex(1, k + 1, name="decile" if k == 10 else "group"),
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        res["actual_over_predicted"] = np.where(sum_p > 0, sum_y / np.where(sum_p > 0, sum_p, 1), np.nan)
    return res


# ----------------------------------------------------------------------------------------------
# scorecard
# ----------------------------------------------------------------------------------------------
def _validate_holdout(data: Any) -> pd.DataFrame:
    if not isinstance(data, pd.DataFrame):
        raise DataValidationError(
            f"expected a calibration/holdout summary DataFrame, got {type(data).__name__}; build it "
            "with custvalue.summary.calibration_holdout(tx, calibration_end=...)"
        )
    missing = [c for c in (*_CAL_COLUMNS, *_HOLDOUT_COLUMNS) if c not in data.columns]
    if missing:
        raise DataValidationError(
            f"calibration/holdout summary is missing columns {missing} (found "
            f"{list(data.columns)[:12]}); build it with custvalue.summary.calibration_holdout"
        )
    if len(data) == 0:
        raise DataValidationError("calibration/holdout summary has no customers")
    dur = data["duration_holdout"].to_numpy(dtype=float)
    if not np.all(np.isfinite(dur)) or np.any(dur < 0):
        raise DataValidationError(
            "duration_holdout must be finite and >= 0; found "
            f"{data.loc[~(np.isfinite(dur) & (dur >= 0)), 'duration_holdout'].head(3).tolist()}"
        )
    return data


def _calibration_frame(data: pd.DataFrame) -> pd.DataFrame:
    cols = [c for c in data.columns if not c.endswith("_holdout")]
    cal = data.loc[:, cols].copy()
    cal.attrs = dict(data.attrs)
    return cal


def predict_holdout(model: Any, data: pd.DataFrame) -> pd.Series:
    """Conditional expected purchases of each customer over their own holdout duration.

    Customers sharing a ``duration_holdout`` (usually all of them) are predicted together with
    ``model.expected_purchases(calibration, t)``.
    """
    data = _validate_holdout(data)
    cal = _calibration_frame(data)
    dur = data["duration_holdout"].to_numpy(dtype=float)
    pred = np.zeros(len(data))
    for t in np.unique(dur):  # distinct holdout lengths (usually one)
        mask = dur == t
        if t <= 0:
            continue
        sub = cal.loc[mask] if not mask.all() else cal
        pred[mask] = np.asarray(model.expected_purchases(sub, float(t)), dtype=float)
    return pd.Series(pred, index=data.index, name="predicted_holdout")


def _probability_any_purchase(model: Any, data: pd.DataFrame, dur: np.ndarray) -> np.ndarray | None:
    """P(at least one purchase in the holdout) = 1 - P(X(t*) = 0 | x, t_x, T), or None when the
    model has no ``probability_of_purchases``."""
    if not isinstance(model, PurchaseProbabilityModel):
        return None
    cal = _calibration_frame(data)
    out = np.zeros(len(data))
    try:
        for t in np.unique(dur):  # distinct holdout lengths (usually one)
            mask = dur == t
            if t <= 0:
                continue
            sub = cal.loc[mask] if not mask.all() else cal
            p0 = np.asarray(model.probability_of_purchases(sub, 0, float(t)), dtype=float)
            out[mask] = 1.0 - p0
    except (CustvalueError, TypeError, ValueError):
        return None
    return np.clip(out, 0.0, 1.0)


class _TextViews:
    """``str()``/``repr()`` show a result's ``_text()``, notebooks its ``_html()``."""

    _text: Callable[[], str]
    _html: Callable[[], str]

    def __str__(self) -> str:
        return self._text()

    def __repr__(self) -> str:
        return self._text()

    def _repr_html_(self) -> str:
        return self._html()


@dataclass(repr=False)
class Scorecard(_TextViews):
    """Holdout scorecard of one model (see :func:`holdout_scorecard`).

    Attributes
    ----------
    metrics : pandas.DataFrame
        Rows ``model``, ``no_repeat``, ``carry_forward``; columns ``mae``, ``rmse``,
        ``total_predicted``, ``total_actual``, ``total_error_pct``.
    ranking : dict
        ``gini`` (normalised), ``gini_raw``, ``top_decile_lift``, ``auc_alive``,
        ``brier_alive``, ``share_repeat_holdout`` and, when the model has
        ``probability_of_purchases``, ``auc_buy`` / ``brier_buy`` for
        P(at least one holdout purchase).
    deciles : pandas.DataFrame
        Decile calibration table by predicted holdout purchases.
    predictions : pandas.DataFrame
        Per customer: ``actual``, ``predicted``, ``no_repeat``, ``carry_forward``, ``p_alive``.
    model_name : str
    """

    metrics: pd.DataFrame
    ranking: dict[str, float]
    deciles: pd.DataFrame
    predictions: pd.DataFrame
    model_name: str = "model"
    info: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Flat dictionary of the headline numbers (for logging, JSON, comparison tables)."""
        out: dict[str, Any] = {"model": self.model_name}
        for name, row in self.metrics.iterrows():
            for col, val in row.items():
                out[f"{name}_{col}"] = float(val)
        out.update({k: float(v) for k, v in self.ranking.items()})
        out.update(self.info)
        return out

    def summary(self) -> Summary:
        """The scorecard as a :class:`~custvalue._summary.Summary`: ``print()`` shows text,
        a notebook shows HTML tables."""
        return Summary(self._text(), self._html(), f"Holdout scorecard: {self.model_name}")

    def _text(self) -> str:
        m = self.metrics
        lines = [
            f"Holdout scorecard: {self.model_name}",
            f"  customers: {int(self.info.get('n_customers', len(self.predictions)))}, "
            f"holdout length: {self.info.get('holdout_length', '?')}",
            "",
            "  Customer-level error of holdout repeat purchases (lower is better):",
            m[["mae", "rmse", "total_predicted", "total_actual", "total_error_pct"]]
            .round(4)
            .to_string()
            .replace("\n", "\n  ")
            .join(["  ", ""]),
            "",
            "  Ranking and P(alive):",
        ]
        for k, v in self.ranking.items():
            lines.append(f"    {k:<22} {v:.4f}")
        lines += ["", "  Decile calibration (1 = highest predicted):",
                  "  " + self.deciles[["n_customers", "mean_predicted", "mean_actual", "lift"]]
                  .round(3).to_string().replace("\n", "\n  ")]
        return "\n".join(lines)

    def _html(self) -> str:
        rank = pd.Series(self.ranking, name="value").to_frame()
        return (
            f"<h4>Holdout scorecard: {html.escape(self.model_name)}</h4>"
            f"<p>{int(self.info.get('n_customers', len(self.predictions)))} customers; holdout "
            f"length {html.escape(str(self.info.get('holdout_length', '?')))}. MAE/RMSE are "
            "per-customer errors of holdout repeat purchases; the two baselines predict no "
            "repeat purchases and the calibration purchase rate carried forward.</p>"
            + self.metrics.to_html(float_format=lambda v: f"{v:,.4f}")
            + "<p>Ranking quality (Gini, lift) and P(alive) as a predictor of buying again "
            "(AUC, Brier score). P(alive) is not the probability of buying in the holdout (BG/NBD "
            "counts every customer without repeat purchases as alive); <code>auc_buy</code> / "
            "<code>brier_buy</code> score P(at least one holdout purchase) instead.</p>"
            + rank.to_html(float_format=lambda v: f"{v:,.4f}")
            + "<p>Decile calibration (1 = highest predicted).</p>"
            + self.deciles.to_html(float_format=lambda v: f"{v:,.3f}")
        )


def holdout_scorecard(
    model: Any,
    calibration_holdout_summary: pd.DataFrame,
    *,
    n_groups: int = 10,
    model_name: str | None = None,
) -> Scorecard:
    """Score a fitted transaction model on the holdout period.

    Parameters
    ----------
    model : BaseModel
        Transaction model fitted on the calibration columns (``frequency, recency, T``).
    calibration_holdout_summary : pandas.DataFrame
        From :func:`custvalue.summary.calibration_holdout`: calibration ``frequency, recency, T``
        plus ``frequency_holdout`` and ``duration_holdout`` (in the model's time unit).
    n_groups : int, default 10
        Groups of the calibration table (deciles).
    model_name : str, optional
        Label; default the model's class name.

    Returns
    -------
    Scorecard
        Customer-level MAE/RMSE of the model and of two naive baselines — *no repeat* (predicts 0)
        and *carry forward* (the calibration repeat rate ``frequency / T`` times the holdout
        length); total predicted vs actual; decile calibration; normalised Gini and top-decile
        lift of the ranking by predicted purchases; AUC and Brier score of ``P(alive)`` at the end
        of calibration as a prediction of "bought again in the holdout"
        (``frequency_holdout > 0``), and the same for P(at least one holdout purchase)
        ``1 - probability_of_purchases(data, 0, t*)`` when the model has it (BG/NBD's P(alive)
        is 1 for every customer without repeat purchases, so it ranks poorly on that outcome).

    Notes
    -----
    Predicted holdout purchases are :math:`E[X(t^*) \\mid x, t_x, T]` (Fader, Hardie & Lee 2005a,
    eq. 10 for BG/NBD).
    """
    data = _validate_holdout(calibration_holdout_summary)
    name = model_name or type(model).__name__
    pred = predict_holdout(model, data).to_numpy()
    actual = data["frequency_holdout"].to_numpy(dtype=float)
    dur = data["duration_holdout"].to_numpy(dtype=float)
    freq = data["frequency"].to_numpy(dtype=float)
    T = data["T"].to_numpy(dtype=float)
    carry = np.where(T > 0, freq / np.where(T > 0, T, 1.0), 0.0) * dur
    p_alive = np.clip(
        np.asarray(model.probability_alive(_calibration_frame(data)), dtype=float), 0.0, 1.0
    )
    bought = actual > 0
    p_buy = _probability_any_purchase(model, data, dur)

    rows = {}
    for label, p in (("model", pred), ("no_repeat", np.zeros_like(pred)), ("carry_forward", carry)):
        err = p - actual
        tp, ta = float(p.sum()), float(actual.sum())
        rows[label] = {
            "mae": float(np.mean(np.abs(err))),
            "rmse": float(np.sqrt(np.mean(err**2))),
            "total_predicted": tp,
            "total_actual": ta,
            "total_error_pct": 100.0 * (tp - ta) / ta if ta > 0 else float("nan"),
        }
    metrics = pd.DataFrame.from_dict(rows, orient="index")
    metrics.index.name = "predictor"
    deciles = decile_table(actual, pred, n_groups=n_groups)
    ranking = {
        "gini": gini(actual, pred),
        "gini_raw": gini(actual, pred, normalized=False),
        "top_decile_lift": float(deciles["lift"].iloc[0]),
        "auc_alive": auc(bought, p_alive),
        "brier_alive": brier_score(bought, p_alive),
        "share_repeat_holdout": float(bought.mean()),
    }
    if p_buy is not None:
        ranking["auc_buy"] = auc(bought, p_buy)
        ranking["brier_buy"] = brier_score(bought, p_buy)
    unit = data.attrs.get("freq") or getattr(model, "time_unit_", None) or "D"
    durations = np.unique(dur)
    length = (
        f"{durations[0]:g} {UNIT_NAMES.get(normalize_unit(unit), unit)}s"
        if durations.size == 1
        else f"{durations.min():g}-{durations.max():g} {UNIT_NAMES.get(normalize_unit(unit), unit)}s"
    )
    predictions = pd.DataFrame(
        {"actual": actual, "predicted": pred, "no_repeat": 0.0, "carry_forward": carry,
         "p_alive": p_alive},
        index=data.index,
    )
    if p_buy is not None:
        predictions["p_buy"] = p_buy
    return Scorecard(
        metrics=metrics,
        ranking=ranking,
        deciles=deciles,
        predictions=predictions,
        model_name=name,
        info={"n_customers": len(data), "holdout_length": length},
    )


# ----------------------------------------------------------------------------------------------
# model comparison
# ----------------------------------------------------------------------------------------------
@dataclass(repr=False)
class ModelComparison(_TextViews):
    """Result of :func:`compare_models`.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per candidate, sorted best first: holdout ``rmse``, ``mae``, ``total_error_pct``,
        ``gini``, ``log_likelihood``, ``n_params``, ``aic``, ``bic``, ranks on each, ``error``
        (fit failure message, if any) and ``chosen``.
    chosen : BaseModel or None
        The selected fitted model.
    chosen_name : str or None
    models : dict
        Every successfully fitted model by name.
    scorecards : dict
        Every candidate's :class:`Scorecard` by name.
    rule : str
        The selection rule in words.
    """

    table: pd.DataFrame
    chosen: Any
    chosen_name: str | None
    models: dict[str, Any]
    scorecards: dict[str, Scorecard]
    rule: str

    def summary(self) -> Summary:
        """The comparison as a :class:`~custvalue._summary.Summary` (text and HTML)."""
        return Summary(self._text(), self._html(), f"Model comparison (chosen: {self.chosen_name})")

    def _text(self) -> str:
        cols = [c for c in ("rmse", "mae", "total_error_pct", "gini", "aic", "bic", "chosen", "error")
                if c in self.table.columns]
        return (
            f"Model comparison (chosen: {self.chosen_name})\nRule: {self.rule}\n"
            + self.table[cols].to_string()
        )

    def _html(self) -> str:
        return (
            f"<h4>Model comparison — chosen: {html.escape(str(self.chosen_name))}</h4>"
            f"<p>{html.escape(self.rule)}</p>"
            + self.table.to_html(float_format=lambda v: f"{v:,.4f}")
        )


def _candidate_dict(candidates: Any) -> dict[str, Any]:
    if isinstance(candidates, Mapping):
        items = list(candidates.items())
    elif isinstance(candidates, Sequence) and not isinstance(candidates, str):
        items = []
        for c in candidates:
            label = c.__name__ if isinstance(c, type) else type(c).__name__
            items.append((label, c))
    else:
        raise ParameterError(
            "candidates must be a dict name -> model or a list of models/model classes, e.g. "
            "[BetaGeoModel(), ParetoNBDModel()]"
        )
    if not items:
        raise ParameterError("candidates is empty: give at least one model")
    out: dict[str, Any] = {}
    for label, c in items:
        model = c() if isinstance(c, type) else copy.deepcopy(c)
        key, k = str(label), 2
        while key in out:
            key, k = f"{label}_{k}", k + 1
        out[key] = model
    return out


def compare_models(
    candidates: Mapping[str, Any] | Sequence[Any],
    calibration_holdout_summary: pd.DataFrame,
    *,
    criterion: str = "rmse",
    tolerance: float = 0.01,
) -> ModelComparison:
    """Fit candidate transaction models on the calibration period and pick one.

    Parameters
    ----------
    candidates : dict or list
        Unfitted models (or model classes) such as ``[BetaGeoModel(), ParetoNBDModel(),
        ModifiedBetaGeoModel()]``, or a dict ``name -> model``. They are copied, never modified.
    calibration_holdout_summary : pandas.DataFrame
        From :func:`custvalue.summary.calibration_holdout`.
    criterion : {"rmse", "mae", "bic", "aic"}, default "rmse"
        Primary ranking criterion.
    tolerance : float, default 0.01
        Relative tolerance on a holdout criterion within which candidates count as tied.

    Returns
    -------
    ModelComparison
        ``table`` (sorted best first), ``chosen`` model and its name, all fitted models and
        their scorecards.

    Notes
    -----
    Selection rule: rank the models that fitted on ``criterion`` (holdout RMSE by default —
    out-of-sample error is what a forecast is judged on); among those within ``tolerance``
    (relative) of the best, choose the one with the lowest BIC (the simpler, better-supported
    model when the holdout cannot tell them apart). With ``criterion="aic"`` or ``"bic"`` the
    information criterion alone decides. Candidates whose fit fails are listed with the error
    and never chosen.
    """
    data = _validate_holdout(calibration_holdout_summary)
    criterion = criterion.lower()
    if criterion not in ("rmse", "mae", "aic", "bic"):
        raise ParameterError(f"criterion must be 'rmse', 'mae', 'aic' or 'bic', got {criterion!r}")
    cal = _calibration_frame(data)
    fit_cols = [c for c in cal.columns if c in ("frequency", "recency", "T", "monetary_value", "weight")]
    cal_fit = cal.loc[:, fit_cols]
    cal_fit.attrs = dict(data.attrs)
    models = _candidate_dict(candidates)

    rows: list[dict[str, Any]] = []
    fitted: dict[str, Any] = {}
    cards: dict[str, Scorecard] = {}
    for name, model in models.items():  # a handful of candidates
        row: dict[str, Any] = {"model": name}
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                model.fit(cal_fit)
            card = holdout_scorecard(model, data, model_name=name)
        except (CustvalueError, ConvergenceError, FloatingPointError, ValueError) as exc:
            row["error"] = f"{type(exc).__name__}: {exc}"
            rows.append(row)
            continue
        fitted[name] = model
        cards[name] = card
        m = card.metrics.loc["model"]
        row.update(
            {
                "rmse": m["rmse"],
                "mae": m["mae"],
                "total_error_pct": m["total_error_pct"],
                "gini": card.ranking["gini"],
                "auc_alive": card.ranking["auc_alive"],
                "log_likelihood": float(getattr(model, "log_likelihood_", np.nan)),
                "n_params": len(getattr(model, "params_", [])),
                "aic": float(getattr(model, "aic_", np.nan)),
                "bic": float(getattr(model, "bic_", np.nan)),
                "warnings": "; ".join(str(w.message) for w in caught)[:300],
                "error": "",
            }
        )
        rows.append(row)

    table = pd.DataFrame(rows).set_index("model")
    for col in ("rmse", "mae", "aic", "bic"):
        if col not in table.columns:
            table[col] = np.nan
        table[f"rank_{col}"] = table[col].rank(method="min")
    ok = table["rmse"].notna() if "rmse" in table.columns else pd.Series(False, index=table.index)
    chosen_name: str | None = None
    if ok.any():
        good = table.loc[ok]
        if criterion in ("aic", "bic"):
            chosen_name = str(good[criterion].idxmin())
            rule = f"lowest {criterion.upper()} among the models that fitted"
        else:
            best = good[criterion].min()
            near = good.loc[good[criterion] <= best * (1.0 + tolerance) + 1e-15]
            chosen_name = str(near["bic"].idxmin()) if near["bic"].notna().any() else str(near[criterion].idxmin())
            rule = (
                f"lowest holdout {criterion.upper()}; models within {tolerance:.0%} of the best "
                "count as tied and the lowest BIC among them is chosen"
            )
    else:
        rule = "no candidate fitted; see the error column"
    table["chosen"] = table.index == chosen_name
    sort_col = criterion
    table = table.sort_values(["chosen", sort_col], ascending=[False, True], na_position="last")
    return ModelComparison(
        table=table,
        chosen=fitted.get(chosen_name) if chosen_name else None,
        chosen_name=chosen_name,
        models=fitted,
        scorecards=cards,
        rule=rule,
    )


# ----------------------------------------------------------------------------------------------
# tracking
# ----------------------------------------------------------------------------------------------
def _new_customer_curve(model: Any, t: np.ndarray) -> np.ndarray:
    """E[X(t)] for a new customer at each t (vectorised if the model accepts arrays)."""
    t = np.asarray(t, dtype=float)
    out = np.zeros_like(t)
    pos = t > 0
    if not pos.any():
        return out
    tp = t[pos]
    try:
        vals = np.asarray(model.expected_purchases_new_customer(tp), dtype=float).reshape(-1)
        if vals.shape != tp.shape:
            raise ValueError
    except (TypeError, ValueError, CustvalueError):
        uniq, inv = np.unique(tp, return_inverse=True)
        vals = np.array([float(np.asarray(model.expected_purchases_new_customer(float(u))).reshape(-1)[0])
                         for u in uniq])[inv]
    out[pos] = vals
    return out


def tracking(
    model: Any,
    tx: pd.DataFrame,
    summary: pd.DataFrame | None = None,
    *,
    period: str = "W",
    calibration_end: Any = None,
    end: Any = None,
    customer_col: str = "customer_id",
    date_col: str = "date",
) -> pd.DataFrame:
    """Actual vs expected repeat transactions by calendar period (tracking table).

    Expected repeat transactions follow Fader, Hardie & Lee (2005a, section 4, the weekly
    tracking plot): a cohort of :math:`n_s` customers who made their first purchase at :math:`s`
    contributes :math:`n_s\\,E[X(\\tau - s)]` cumulative repeat transactions by calendar time
    :math:`\\tau`, with :math:`E[X(t)]` the model's expectation for a new customer
    (``expected_purchases_new_customer``). Summing over first-purchase days and differencing at
    the period boundaries gives the expected repeat transactions per period.

    Parameters
    ----------
    model : BaseModel
        Fitted transaction model (its time unit converts calendar time).
    tx : pandas.DataFrame
        Canonical transactions (``customer_id``, ``date``).
    summary : pandas.DataFrame, optional
        Customer summary whose index restricts the population (e.g. the calibration customers).
        When it has ``first_purchase``, that date defines each customer's cohort.
    period : str, default "W"
        Calendar period of the table (``"D"``, ``"W"``, ``"M"``, ``"Q"``, ``"Y"``), exact lengths
        from the first purchase date.
    calibration_end : date-like, optional
        Marks rows in the holdout (``in_holdout`` column); default ``summary.attrs
        ["calibration_end"]`` if present.
    end : date-like, optional
        Last date of the table (a bare date includes that day; the last period is cut there so
        its expected count covers the same days as the actual one); default the last
        transaction date (or ``summary.attrs["observation_end"]``).
    customer_col, date_col : str
        Column names in ``tx``.

    Returns
    -------
    pandas.DataFrame
        Indexed by period start: ``period_end``, ``actual``, ``expected`` (repeat transactions in
        the period), ``actual_cumulative``, ``expected_cumulative``, ``in_holdout``.

    Notes
    -----
    A repeat transaction is a purchase on a later day in the model's time unit than the first
    purchase (several purchases in one day-unit count once, as in the RFM summary).
    """
    if not isinstance(tx, pd.DataFrame):
        raise DataValidationError(f"tx must be a transactions DataFrame, got {type(tx).__name__}")
    missing = [c for c in (customer_col, date_col) if c not in tx.columns]
    if missing:
        raise DataValidationError(f"tracking: tx is missing columns {missing} (found {list(tx.columns)[:12]})")
    punit = normalize_unit(period)
    munit = normalize_unit(getattr(model, "time_unit_", None) or "D")
    df = pd.DataFrame({"c": tx[customer_col].to_numpy(), "d": pd.to_datetime(tx[date_col]).to_numpy()})
    if summary is not None:
        df = df.loc[df["c"].isin(summary.index)]
    if len(df) == 0:
        raise DataValidationError("tracking: no transactions for the customers of the summary")
    first = df.groupby("c", sort=False)["d"].min()
    if summary is not None and "first_purchase" in summary.columns:
        fp = pd.to_datetime(summary["first_purchase"]).reindex(first.index)
        first = fp.fillna(first)
    attrs = summary.attrs if summary is not None else {}
    if calibration_end is None:
        calibration_end = attrs.get("calibration_end")
    if end is None:
        end = attrs.get("observation_end") or df["d"].max()
    end = pd.Timestamp(end)
    start = first.min().normalize()
    plen = pd.Timedelta(days=DAYS_PER_UNIT[punit])
    # a bare date as end includes that whole day; the last period is cut at the end
    end_excl = end + pd.Timedelta(days=1) if end == end.normalize() else end
    n_periods = max(1, math.ceil((end_excl - start) / plen - 1e-9))
    bounds = start + plen * np.arange(n_periods + 1)
    bounds = pd.DatetimeIndex(np.minimum(np.asarray(bounds, dtype="datetime64[ns]"), end_excl.to_datetime64()))

    # actual repeat transactions: distinct model-unit buckets after the first one
    unit_td = pd.Timedelta(days=DAYS_PER_UNIT[munit])
    df["f"] = first.reindex(df["c"]).to_numpy()
    df["bucket"] = np.floor((df["d"] - df["f"]) / unit_td).astype(np.int64)
    rep = df.loc[df["bucket"] > 0].drop_duplicates(["c", "bucket"])
    rep_dates = rep.groupby(["c", "bucket"], sort=False)["d"].min().to_numpy()
    pos = np.searchsorted(bounds.to_numpy(), rep_dates, side="right") - 1
    pos = pos[(pos >= 0) & (pos < n_periods)]
    actual = np.bincount(pos, minlength=n_periods).astype(float)

    # expected: cohorts by first-purchase day
    cohort = first.dt.normalize().value_counts()
    cdays = cohort.index.to_numpy()
    csize = cohort.to_numpy(dtype=float)
    # elapsed model units from each cohort day to each boundary: (n_cohorts x n_bounds)
    elapsed = (bounds.to_numpy()[None, :] - cdays[:, None]) / unit_td
    elapsed = np.maximum(np.asarray(elapsed, dtype=float), 0.0)
    uniq, inv = np.unique(elapsed, return_inverse=True)
    curve = _new_customer_curve(model, uniq)[inv].reshape(elapsed.shape)
    cum_expected = csize @ curve
    expected = np.diff(cum_expected)

    res = pd.DataFrame(
        {
            "period_end": bounds[1:],
            "actual": actual,
            "expected": expected,
            "actual_cumulative": np.cumsum(actual),
            "expected_cumulative": np.cumsum(expected),
        },
        index=pd.DatetimeIndex(bounds[:-1], name="period_start"),
    )
    res["in_holdout"] = (
        res.index >= pd.Timestamp(calibration_end) if calibration_end is not None else False
    )
    res.attrs = {
        "period": punit,
        "model_time_unit": munit,
        "calibration_end": pd.Timestamp(calibration_end) if calibration_end is not None else None,
        "n_customers": len(first),
    }
    return res
