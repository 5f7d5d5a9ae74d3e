"""Diagnostic and reporting plots for customer models (seaborn / matplotlib).

Every function takes ``ax=None`` (a new figure is made when missing), returns the Axes, never calls
``plt.show()``, sets a title and labels both axes with their units — the plots go into HTML
reports read by people who never see the code.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ._time import UNIT_NAMES, normalize_unit
from .errors import DataValidationError, ParameterError

__all__ = [
    "expected_frequency_distribution",
    "plot_calibration_holdout",
    "plot_clv_distribution",
    "plot_cohort_retention",
    "plot_cohort_revenue",
    "plot_decile_calibration",
    "plot_expected_purchases_heatmap",
    "plot_frequency_recency_heatmap",
    "plot_period_transactions",
    "plot_probability_alive_heatmap",
    "plot_tracking",
    "plot_value_by_segment",
]


def _axes(ax: Any, figsize: tuple[float, float] = (7.0, 4.5)) -> Any:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=figsize)
    return ax


def _unit_name(model: Any = None, data: Any = None) -> str:
    unit = None
    if data is not None and hasattr(data, "attrs"):
        unit = data.attrs.get("freq")
    if unit is None and model is not None:
        unit = getattr(model, "time_unit_", None)
    try:
        return UNIT_NAMES[normalize_unit(unit or "D")]
    except ParameterError:
        return str(unit)


def _need(data: Any, columns: tuple[str, ...], where: str) -> pd.DataFrame:
    if not isinstance(data, pd.DataFrame):
        raise DataValidationError(f"{where} needs a DataFrame, got {type(data).__name__}")
    missing = [c for c in columns if c not in data.columns]
    if missing:
        raise DataValidationError(
            f"{where} needs columns {list(columns)}; missing {missing} (found {list(data.columns)[:12]})"
        )
    if len(data) == 0:
        raise DataValidationError(f"{where}: the data have no rows")
    return data


# ----------------------------------------------------------------------------------------------
# period transactions
# ----------------------------------------------------------------------------------------------
def expected_frequency_distribution(
    model: Any, T: Any, *, max_frequency: int = 7, max_groups: int = 60
) -> pd.Series:
    """Expected number of customers with 0, 1, ..., ``max_frequency`` or more repeat purchases.

    For a customer first seen ``T`` time units ago the model's probability of exactly *n* repeat
    purchases is that of a new customer, :math:`P(X(T) = n)` (Fader, Hardie & Lee 2005a, eq. 8
    for BG/NBD), obtained as ``model.probability_of_purchases`` conditional on an empty history
    ``(x, t_x, T) = (0, 0, 0)``. The expected histogram is :math:`\\sum_i P(X(T_i)=n)`; the last
    bin collects ``max_frequency`` or more.

    When ``T`` takes more than ``max_groups`` distinct values, customers are grouped into
    ``max_groups`` quantile groups of ``T`` and each group is evaluated at its mean age (the
    probabilities are smooth in ``T``; this keeps the number of model calls bounded).
    """
    T = np.asarray(T, dtype=float).reshape(-1)
    if max_frequency < 1:
        raise ParameterError(f"max_frequency must be >= 1, got {max_frequency}")
    uniq, counts = np.unique(T, return_counts=True)
    if uniq.size > max_groups:
        edges = np.unique(np.quantile(T, np.linspace(0.0, 1.0, max_groups + 1)))
        group = np.clip(np.searchsorted(edges, T, side="right") - 1, 0, edges.size - 2)
        counts = np.bincount(group, minlength=edges.size - 1).astype(float)
        sums = np.bincount(group, weights=T, minlength=edges.size - 1)
        keep = counts > 0
        uniq, counts = sums[keep] / counts[keep], counts[keep]
    blank = pd.DataFrame(
        {"frequency": np.zeros(len(uniq)), "recency": np.zeros(len(uniq)), "T": np.zeros(len(uniq))}
    )
    blank.attrs["freq"] = getattr(model, "time_unit_", None) or "D"
    probs = np.zeros((len(uniq), max_frequency))
    for n in range(max_frequency):  # a few purchase counts
        try:
            p = np.asarray(model.probability_of_purchases(blank, n, uniq), dtype=float).reshape(-1)
            if p.shape != uniq.shape:
                raise ValueError("t not aligned")
        except (TypeError, ValueError):
            one = blank.iloc[:1]
            p = np.array(
                [float(np.asarray(model.probability_of_purchases(one, n, float(t))).reshape(-1)[0])
                 for t in uniq]
            )
        probs[:, n] = p
    probs = np.clip(probs, 0.0, 1.0)
    tail = np.clip(1.0 - probs.sum(axis=1), 0.0, 1.0)
    expected = np.concatenate([counts @ probs, [counts @ tail]])
    return pd.Series(expected, index=pd.Index(_frequency_labels(max_frequency), name="repeat purchases"),
                     name="expected")


def _frequency_labels(max_frequency: int) -> list[str]:
    """Bin labels ``"0"`` ... ``"max_frequency-1"`` and ``"max_frequency+"``."""
    return [str(n) for n in range(max_frequency)] + [f"{max_frequency}+"]


def plot_period_transactions(
    model: Any,
    summary: pd.DataFrame,
    *,
    max_frequency: int = 7,
    ax: Any = None,
) -> Any:
    """Bar chart of customers by number of repeat purchases: actual vs model.

    Parameters
    ----------
    model : BaseModel
        Fitted transaction model.
    summary : pandas.DataFrame
        The summary the model was fitted on (``frequency``, ``T``).
    max_frequency : int, default 7
        Last bin collects this many or more repeat purchases.
    ax : matplotlib Axes, optional
    """
    import seaborn as sns

    data = _need(summary, ("frequency", "T"), "plot_period_transactions")
    ax = _axes(ax)
    freq = np.minimum(data["frequency"].to_numpy(dtype=float), max_frequency).astype(int)
    labels = _frequency_labels(max_frequency)
    actual = np.bincount(freq, minlength=max_frequency + 1)[: max_frequency + 1]
    expected = expected_frequency_distribution(model, data["T"], max_frequency=max_frequency)
    long = pd.DataFrame(
        {
            "repeat purchases": labels * 2,
            "customers": np.concatenate([actual, expected.to_numpy()]),
            "source": ["actual"] * len(labels) + ["model"] * len(labels),
        }
    )
    sns.barplot(data=long, x="repeat purchases", y="customers", hue="source", ax=ax)
    unit = _unit_name(model, data)
    ax.set_title("Customers by number of repeat purchases: actual vs model")
    ax.set_xlabel(f"repeat purchases in the calibration period (distinct {unit}s)")
    ax.set_ylabel("customers (count)")
    ax.legend(title=None)
    return ax


# ----------------------------------------------------------------------------------------------
# calibration vs holdout
# ----------------------------------------------------------------------------------------------
def plot_calibration_holdout(
    model: Any,
    calibration_holdout_summary: pd.DataFrame,
    *,
    max_frequency: int = 7,
    ax: Any = None,
) -> Any:
    """Mean holdout purchases, actual and predicted, by calibration-period repeat purchases
    (Fader, Hardie & Lee 2005a, figure 4)."""
    from .evaluation import predict_holdout

    data = _need(
        calibration_holdout_summary,
        ("frequency", "recency", "T", "frequency_holdout", "duration_holdout"),
        "plot_calibration_holdout",
    )
    ax = _axes(ax)
    pred = predict_holdout(model, data).to_numpy()
    f = np.minimum(data["frequency"].to_numpy(dtype=float), max_frequency).astype(int)
    n = np.bincount(f, minlength=max_frequency + 1)
    act = np.bincount(f, weights=data["frequency_holdout"].to_numpy(dtype=float), minlength=max_frequency + 1)
    prd = np.bincount(f, weights=pred, minlength=max_frequency + 1)
    keep = n > 0
    x = np.arange(max_frequency + 1)[keep]
    labels = [str(v) if v < max_frequency else f"{max_frequency}+" for v in x]
    ax.plot(x, act[keep] / n[keep], marker="o", label="actual")
    ax.plot(x, prd[keep] / n[keep], marker="s", linestyle="--", label="model")
    ax.set_xticks(x, labels)
    unit = _unit_name(model, data)
    dur = np.unique(data["duration_holdout"].to_numpy(dtype=float))
    length = f"{dur[0]:g} {unit}s" if dur.size == 1 else f"{dur.min():g}-{dur.max():g} {unit}s"
    ax.set_title(f"Holdout purchases by calibration purchases (holdout {length})")
    ax.set_xlabel("repeat purchases in the calibration period (count)")
    ax.set_ylabel("mean repeat purchases in the holdout (per customer)")
    ax.legend()
    return ax


# ----------------------------------------------------------------------------------------------
# tracking
# ----------------------------------------------------------------------------------------------
def plot_tracking(table: pd.DataFrame, *, cumulative: bool = True, ax: Any = None) -> Any:
    """Actual vs expected repeat transactions over calendar time, from
    :func:`custvalue.evaluation.tracking` (Fader, Hardie & Lee 2005a, figures 2-3).

    ``cumulative=True`` plots the running totals, ``False`` the per-period counts. A vertical
    line marks the end of the calibration period when known.
    """
    cols = ("actual_cumulative", "expected_cumulative") if cumulative else ("actual", "expected")
    data = _need(table, cols, "plot_tracking")
    ax = _axes(ax)
    x = data.index
    ax.plot(x, data[cols[0]], label="actual")
    ax.plot(x, data[cols[1]], linestyle="--", label="model")
    cal_end = data.attrs.get("calibration_end")
    if cal_end is not None:
        ax.axvline(pd.Timestamp(cal_end), color="grey", linestyle=":", label="end of calibration")
    period = UNIT_NAMES.get(data.attrs.get("period", "W"), "period")
    what = "cumulative repeat transactions" if cumulative else f"repeat transactions per {period}"
    ax.set_title(f"Tracking: {what}, actual vs model")
    ax.set_xlabel(f"{period} starting (calendar date)")
    ax.set_ylabel(f"{what} (count)")
    ax.legend()
    for label in ax.get_xticklabels():  # rotate this Axes only (autofmt_xdate hides others)
        label.set_rotation(30)
        label.set_horizontalalignment("right")
    return ax


# ----------------------------------------------------------------------------------------------
# heatmaps
# ----------------------------------------------------------------------------------------------
def plot_frequency_recency_heatmap(
    model: Any,
    *,
    quantity: str = "expected_purchases",
    T: float | None = None,
    t: float = 1.0,
    max_frequency: int | None = None,
    max_recency: float | None = None,
    n_recency: int = 40,
    summary: pd.DataFrame | None = None,
    ax: Any = None,
) -> Any:
    """Heatmap over (frequency, recency) of expected purchases in the next ``t`` units or of
    P(alive), for customers of age ``T`` (lifetimes' ``plot_frequency_recency_matrix`` /
    ``plot_probability_alive_matrix``).

    Parameters
    ----------
    model : BaseModel
        Fitted transaction model.
    quantity : {"expected_purchases", "probability_alive"}
    T : float, optional
        Customer age in the model's time unit; default the maximum ``T`` of ``summary``.
    t : float, default 1
        Horizon of the expected purchases, in the model's time unit.
    max_frequency, max_recency : optional
        Grid limits; defaults from ``summary`` (99th percentile of frequency, ``T``).
    n_recency : int, default 40
        Number of recency columns.
    summary : pandas.DataFrame, optional
        Used for the defaults.
    ax : matplotlib Axes, optional
    """
    import seaborn as sns

    if quantity not in ("expected_purchases", "probability_alive"):
        raise ParameterError(
            f"quantity must be 'expected_purchases' or 'probability_alive', got {quantity!r}"
        )
    if T is None:
        if summary is None:
            raise ParameterError("give T (customer age) or a summary to take it from")
        T = float(_need(summary, ("frequency", "T"), "plot_frequency_recency_heatmap")["T"].max())
    if max_frequency is None:
        max_frequency = (
            int(np.ceil(np.quantile(summary["frequency"], 0.99))) if summary is not None else 20
        )
    max_frequency = max(int(max_frequency), 1)
    max_recency = float(T if max_recency is None else min(max_recency, T))
    freqs = np.arange(max_frequency + 1, dtype=float)
    recs = np.linspace(0.0, max_recency, max(int(n_recency), 2))
    F, R = np.meshgrid(freqs, recs, indexing="ij")
    valid = ~((F == 0) & (R > 0)) & ~((F > 0) & (R == 0))
    grid = pd.DataFrame({"frequency": F[valid], "recency": R[valid], "T": np.full(valid.sum(), T)})
    grid.attrs["freq"] = getattr(model, "time_unit_", None) or "D"
    if quantity == "expected_purchases":
        vals = np.asarray(model.expected_purchases(grid, t), dtype=float)
    else:
        vals = np.asarray(model.probability_alive(grid), dtype=float)
    Z = np.full(F.shape, np.nan)
    Z[valid] = vals
    unit = _unit_name(model, summary)
    mat = pd.DataFrame(
        Z[::-1],
        index=pd.Index(freqs[::-1].astype(int), name="frequency"),
        columns=pd.Index(np.round(recs, 1), name="recency"),
    )
    ax = _axes(ax, figsize=(8.0, 5.5))
    label = (
        f"expected purchases in the next {t:g} {unit}s"
        if quantity == "expected_purchases"
        else "P(alive)"
    )
    sns.heatmap(mat, ax=ax, cmap="viridis", cbar_kws={"label": label},
                vmin=0.0, vmax=1.0 if quantity == "probability_alive" else None,
                xticklabels=max(1, len(recs) // 10), yticklabels=max(1, len(freqs) // 15))
    title = (
        f"Expected purchases in the next {t:g} {unit}s by frequency and recency"
        if quantity == "expected_purchases"
        else "Probability a customer is still active, by frequency and recency"
    )
    ax.set_title(f"{title} (customer age {T:g} {unit}s)")
    ax.set_xlabel(f"recency: age at last purchase ({unit}s)")
    ax.set_ylabel("frequency: repeat purchases (count)")
    return ax


def plot_expected_purchases_heatmap(model: Any, **kwargs: Any) -> Any:
    """Frequency–recency heatmap of expected purchases (see :func:`plot_frequency_recency_heatmap`)."""
    return plot_frequency_recency_heatmap(model, quantity="expected_purchases", **kwargs)


def plot_probability_alive_heatmap(model: Any, **kwargs: Any) -> Any:
    """Frequency–recency heatmap of P(alive) (see :func:`plot_frequency_recency_heatmap`)."""
    return plot_frequency_recency_heatmap(model, quantity="probability_alive", **kwargs)


# ----------------------------------------------------------------------------------------------
# CLV and deciles
# ----------------------------------------------------------------------------------------------
def plot_clv_distribution(
    clv: Any,
    *,
    column: str = "clv",
    currency: str = "",
    log_scale: bool = False,
    clip_quantile: float | None = 0.99,
    ax: Any = None,
) -> Any:
    """Histogram of customer lifetime values with the mean and median marked.

    Parameters
    ----------
    clv : CLVResult, DataFrame or Series
        Result of :func:`custvalue.value.customer_lifetime_value` (its horizon goes into the
        title), a frame with ``column``, or a Series of values.
    column : str, default "clv"
    currency : str, optional
        Currency label for the axis, e.g. ``"USD"``.
    log_scale : bool, default False
        Logarithmic value axis (values <= 0 are dropped from the histogram).
    clip_quantile : float or None, default 0.99
        Values above this quantile are gathered in the last bin so a few large customers do not
        squash the histogram (None: no clipping).
    ax : matplotlib Axes, optional
    """
    import seaborn as sns

    from .value import CLVResult

    if isinstance(clv, CLVResult):  # settings travel with the result
        _need(clv.frame, (column,), "plot_clv_distribution")
        values = clv.frame[column].to_numpy(dtype=float)
        attrs = {"horizon": clv.settings.horizon, "time_unit": clv.settings.time_unit}
    elif isinstance(clv, pd.DataFrame):
        _need(clv, (column,), "plot_clv_distribution")
        values = clv[column].to_numpy(dtype=float)
        attrs = clv.attrs
    else:
        values = np.asarray(clv, dtype=float)
        attrs = getattr(clv, "attrs", {})
    values = values[np.isfinite(values)]
    if values.size == 0:
        raise DataValidationError("plot_clv_distribution: no finite values to plot")
    ax = _axes(ax)
    shown = values
    if clip_quantile is not None and 0 < clip_quantile < 1:
        shown = np.minimum(values, np.quantile(values, clip_quantile))
    if log_scale:
        shown = shown[shown > 0]
    sns.histplot(shown, bins=50, log_scale=log_scale, ax=ax)
    cur = f" ({currency})" if currency else " (currency units)"
    ax.axvline(float(np.mean(values)), color="C3", linestyle="--", label=f"mean {np.mean(values):,.2f}")
    ax.axvline(float(np.median(values)), color="C2", linestyle=":", label=f"median {np.median(values):,.2f}")
    horizon = attrs.get("horizon")
    unit = attrs.get("time_unit")
    span = ""
    if horizon is not None and unit is not None:
        span = " over an infinite horizon" if not np.isfinite(horizon) else f" over {horizon:g} {UNIT_NAMES.get(unit, unit)}s"
    ax.set_title(f"Distribution of customer lifetime value{span}")
    ax.set_xlabel(f"{column.replace('_', ' ')} per customer{cur}")
    ax.set_ylabel("customers (count)")
    ax.legend()
    return ax


def plot_decile_calibration(scorecard_or_table: Any, *, ax: Any = None) -> Any:
    """Mean predicted vs mean actual holdout purchases by decile of the prediction.

    Accepts a :class:`custvalue.evaluation.Scorecard` or its ``deciles`` table.
    """
    table = getattr(scorecard_or_table, "deciles", scorecard_or_table)
    data = _need(table, ("mean_predicted", "mean_actual"), "plot_decile_calibration")
    ax = _axes(ax)
    x = np.arange(len(data))
    w = 0.4
    ax.bar(x - w / 2, data["mean_predicted"], width=w, label="model")
    ax.bar(x + w / 2, data["mean_actual"], width=w, label="actual")
    ax.set_xticks(x, [str(i) for i in data.index])
    name = getattr(scorecard_or_table, "model_name", None)
    ax.set_title("Decile calibration of holdout purchases" + (f": {name}" if name else ""))
    ax.set_xlabel("decile of predicted purchases (1 = highest)")
    ax.set_ylabel("mean repeat purchases in the holdout (per customer)")
    ax.legend()
    return ax


def _cohort_labels(index: pd.Index) -> list[str]:
    """Acquisition-cohort start dates as YYYY-MM (anything else as text)."""
    return [f"{d:%Y-%m}" if isinstance(d, (pd.Timestamp, np.datetime64)) else str(d) for d in index]


def plot_cohort_retention(
    active_share: pd.DataFrame, *, period_name: str = "month", ax: Any = None
) -> Any:
    """Heatmap of the share of each acquisition cohort buying in each period after acquisition.

    ``active_share``: cohorts (rows, indexed by cohort start) x periods since acquisition
    (columns), values in [0, 1] — ``custvalue.summary.pivot_cohorts(cohort_table(tx))``.
    Shown in percent; cells are annotated when the table is small enough to read.
    """
    import seaborn as sns

    if not isinstance(active_share, pd.DataFrame) or active_share.empty:
        raise DataValidationError("plot_cohort_retention needs a non-empty cohorts x periods table")
    ax = _axes(ax, (10.0, max(2.5, 0.35 * len(active_share) + 1.5)))
    shown = 100 * active_share.set_axis(_cohort_labels(active_share.index))
    small = len(shown) <= 12 and shown.shape[1] <= 18
    sns.heatmap(shown, ax=ax, cmap="Blues", annot=small, fmt=".0f",
                cbar_kws={"label": "customers of the cohort buying (%)"})
    ax.set_title(
        f"Cohort retention: share of each cohort buying in each {period_name} after acquisition"
    )
    ax.set_xlabel(f"{period_name}s since first purchase (0 = acquisition {period_name})")
    ax.set_ylabel(f"acquisition cohort (first {period_name})")
    return ax


def plot_cohort_revenue(
    cumulative: pd.DataFrame,
    *,
    period_name: str = "month",
    currency: str = "",
    max_lines: int = 8,
    ax: Any = None,
) -> Any:
    """Cumulative revenue per acquired customer by cohort: one line per cohort.

    ``cumulative``: cohorts (rows) x periods since acquisition (columns) of cumulative revenue
    per customer. With more than ``max_lines`` cohorts every k-th one is drawn (the legend
    says which).
    """
    if not isinstance(cumulative, pd.DataFrame) or cumulative.empty:
        raise DataValidationError("plot_cohort_revenue needs a non-empty cohorts x periods table")
    if max_lines < 1:
        raise ParameterError(f"max_lines={max_lines!r} must be at least 1")
    ax = _axes(ax)
    step = max(1, int(np.ceil(len(cumulative) / max_lines)))
    drawn = cumulative.iloc[::step]
    for label, (_, row) in zip(_cohort_labels(drawn.index), drawn.iterrows(), strict=True):
        ax.plot(row.index, row.to_numpy(), marker=".", label=label)
    ax.set_title("Cumulative revenue per customer by acquisition cohort"
                 + ("" if step == 1 else f" (one cohort in {step})"))
    ax.set_xlabel(f"{period_name}s since first purchase")
    ax.set_ylabel(f"revenue to date per customer ({currency or 'currency units'})")
    ax.legend(title="cohort", fontsize=8, ncols=1 if len(drawn) <= 10 else 2,
              bbox_to_anchor=(1.02, 1), loc="upper left")
    return ax


def plot_value_by_segment(
    table: pd.DataFrame,
    *,
    column: str = "mean_clv",
    segment: str = "acquisition cohort",
    horizon: str = "",
    currency: str = "",
    ax: Any = None,
) -> Any:
    """Bar chart of expected value per customer by segment (cohort, channel, region ...).

    ``table`` is indexed by segment with a ``column`` of values per customer, as the value
    report's ``value_by`` tables are.
    """
    data = _need(table, (column,), "plot_value_by_segment")
    ax = _axes(ax)
    ax.bar(_cohort_labels(data.index), data[column].to_numpy(dtype=float), color="#4878a8")
    what = "Expected value per customer" if column == "mean_clv" else column.replace("_", " ")
    ax.set_title(f"{what} by {segment}" + (f" ({horizon})" if horizon else ""))
    ax.set_xlabel(segment)
    ax.set_ylabel(f"{column.replace('_', ' ')} per customer ({currency or 'currency units'})")
    ax.tick_params(axis="x", rotation=45)
    return ax


# ----------------------------------------------------------------------------------------------
# segments (custvalue.segments and the segment report)
# ----------------------------------------------------------------------------------------------
__all__ += ["plot_alive_value_grid", "plot_segment_migration"]


def plot_alive_value_grid(
    matrix: pd.DataFrame, *, what: str = "customers", currency: str = "", ax: Any = None
) -> Any:
    """Heatmap of P(alive) bands (rows) x value bands (columns).

    ``matrix``: one of the matrices of :func:`custvalue.segments.alive_value_grid`
    (``result.extra["counts"]``, ``["expected_value"]`` or ``["past_revenue"]``); ``what`` names
    it (``"customers"``, ``"expected value"``, ``"past revenue"``) for the title and colour bar.
    """
    import seaborn as sns

    if not isinstance(matrix, pd.DataFrame) or matrix.empty:
        raise DataValidationError("plot_alive_value_grid needs a non-empty bands x bands table")
    ax = _axes(ax, (8.0, 4.5))
    money = what != "customers"
    unit = f" ({currency or 'currency units'})" if money else ""
    shown = matrix.iloc[::-1].astype(float)  # highest P(alive) band on top
    sns.heatmap(shown, ax=ax, cmap="Blues", annot=True, fmt=",.0f",
                cbar_kws={"label": f"{what}{unit}"})
    ax.set_title(f"{what.capitalize()} by probability of being active and value band")
    ax.set_xlabel("value band: share of customers ranked by expected value, lowest first (%)")
    ax.set_ylabel("probability of being active (P(alive) band)")
    return ax


def plot_segment_migration(
    counts: pd.DataFrame, *, then: str = "then", now: str = "now", ax: Any = None
) -> Any:
    """Heatmap of how customers moved between segments: rows = segment ``then``, columns =
    segment ``now``, cells = share of the row's customers (%), annotated with the share.

    ``counts``: the count matrix of :func:`custvalue.segments.migration` (``result.table``).
    """
    import seaborn as sns

    if not isinstance(counts, pd.DataFrame) or counts.empty:
        raise DataValidationError("plot_segment_migration needs a non-empty segments x segments table")
    share = 100 * counts.div(counts.sum(axis=1).replace(0, np.nan), axis=0).fillna(0.0)
    ax = _axes(ax, (10.0, max(3.5, 0.45 * len(share) + 1.5)))
    sns.heatmap(share, ax=ax, cmap="Purples", annot=True, fmt=".0f", vmin=0, vmax=100,
                cbar_kws={"label": "customers of the row's segment (%)"})
    ax.set_title(f"Segment migration: where each segment of {then} is on {now}")
    ax.set_xlabel(f"segment on {now}")
    ax.set_ylabel(f"segment on {then}")
    ax.tick_params(axis="x", rotation=45)
    return ax
