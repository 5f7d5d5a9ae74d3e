"""Survival analysis of contract durations: Kaplan-Meier retention curves, log-rank tests, Cox PH.

For subscriptions observed in continuous time (a cancellation date, not just a count of renewals)
the non-parametric and semi-parametric tools of survival analysis complement the sBG model:

* :func:`kaplan_meier` - retention curves by segment with pointwise (log-log) or simultaneous
  (Hall-Wellner) confidence bands, built on ``statsmodels.duration.survfunc.SurvfuncRight``
  (Kaplan & Meier 1958; Greenwood's variance; Kalbfleisch & Prentice 2002, sec. 1.4, for the
  log-log interval; Hall & Wellner 1980 for the band).
* :func:`logrank_test` - do segments retain differently? ``statsmodels``' ``survdiff``
  (Mantel 1966), plus observed and expected cancellations per segment.
* :func:`cox_ph` - proportional hazards regression (Cox 1972) with ``statsmodels``' ``PHReg``,
  including time-varying covariates as start-stop rows (counting-process form, Andersen & Gill
  1982) that :func:`start_stop` builds from a table of covariate changes.

The estimators follow the package's convention, like lifelines' fitters: options in the
constructor, ``fit(...) -> self``, fitted attributes ending in ``_`` — :class:`KaplanMeier`
(``survival_function_``, ``medians_``) and :class:`CoxPH` (``params_``, ``standard_errors_``,
``hazard_ratios_``). :func:`kaplan_meier` and :func:`cox_ph` are thin wrappers returning the fitted
result object; every result's ``summary()`` prints as text and shows as HTML.

Durations are in the period unit of the data (``attrs["freq"]`` of
:func:`custvalue.summary.subscriptions`, months by default), calendar-exact (a month is
365.25/12 days).
"""

from __future__ import annotations

import html
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict, Unpack

import numpy as np
import pandas as pd
from scipy import stats

from ._keywords import forwarded
from ._summary import Summary
from ._time import DAYS_PER_UNIT, UNIT_NAMES, normalize_unit
from .errors import ConvergenceError, DataValidationError, ModelNotFittedError, ParameterError

__all__ = [
    "CoxPH",
    "CoxResult",
    "KaplanMeier",
    "KaplanMeierResult",
    "LogrankResult",
    "cox_ph",
    "durations",
    "kaplan_meier",
    "logrank_test",
    "start_stop",
]


# ---------------------------------------------------------------------------------------------
# input helpers
# ---------------------------------------------------------------------------------------------
def durations(
    data: pd.DataFrame, *, unit: str | None = None, observation_end: Any = None
) -> pd.DataFrame:
    """Continuous tenure and event flag from a :func:`custvalue.summary.subscriptions` table.

    ``duration = (end, or observation_end while active) - start`` in ``unit`` (default the
    table's ``attrs["freq"]``), ``event = churned``.

    Parameters
    ----------
    data : pandas.DataFrame
        Output of :func:`custvalue.summary.subscriptions` (``start``, ``end``, ``churned`` and
        ``attrs["observation_end"]``). Not modified.
    unit : str, optional
        Time unit of the durations.
    observation_end : date-like, optional
        End of the window (default ``attrs["observation_end"]``; pandas drops ``attrs`` in
        some operations such as ``join``).

    Returns
    -------
    pandas.DataFrame
        A copy of ``data`` with ``duration`` and ``event`` columns added.
    """
    for col in ("start", "end", "churned"):
        if col not in data.columns:
            raise DataValidationError(
                f"durations needs columns start, end, churned (custvalue.summary.subscriptions "
                f"output); missing {col!r}"
            )
    obs = observation_end if observation_end is not None else data.attrs.get("observation_end")
    if obs is None:
        raise DataValidationError(
            "durations needs the observation end to measure active customers' tenure: pass "
            "observation_end=, or a table from custvalue.summary.subscriptions (attrs)"
        )
    code = normalize_unit(unit or data.attrs.get("freq", "M"))
    stop = pd.to_datetime(data["end"]).fillna(pd.Timestamp(obs))
    days = (stop - pd.to_datetime(data["start"])).dt.total_seconds().to_numpy() / 86_400.0
    if (days < 0).any():
        raise DataValidationError(
            f"{int((days < 0).sum())} customers have a negative tenure (end before start); "
            "check the start and end dates"
        )
    out = data.copy()
    out["duration"] = days / DAYS_PER_UNIT[code]
    out["event"] = data["churned"].astype(bool).to_numpy()
    out.attrs = dict(data.attrs)
    out.attrs["duration_unit"] = code
    return out


def _resolve_duration(data: pd.DataFrame, duration_col: str | None, event_col: str | None):
    if not isinstance(data, pd.DataFrame):
        raise DataValidationError(
            f"survival functions expect a pandas DataFrame; got {type(data).__name__}"
        )
    if duration_col is None:
        if "duration" in data.columns:
            duration_col = "duration"
        elif {"start", "end", "churned"} <= set(data.columns) and "observation_end" in data.attrs:
            data = durations(data)
            duration_col = "duration"
        elif "T" in data.columns:
            duration_col = "T"
        else:
            raise DataValidationError(
                "no duration column: pass duration_col=, or a table with 'duration', with "
                f"start/end/churned (custvalue.summary.subscriptions) or with 'T'; the frame has "
                f"{list(data.columns)[:12]}"
            )
    if event_col is None:
        event_col = "event" if "event" in data.columns else "churned"
    for col in (duration_col, event_col):
        if col not in data.columns:
            raise DataValidationError(
                f"column {col!r} not found; the frame has {list(data.columns)[:12]}"
            )
    time = pd.to_numeric(data[duration_col], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(time)
    if bad.any():
        raise DataValidationError(
            f"column {duration_col!r} has {int(bad.sum())} missing or non-numeric durations "
            f"(rows {list(data.index[bad][:5])}); drop or fill them"
        )
    neg = time < 0
    if neg.any():
        raise DataValidationError(
            f"column {duration_col!r} has {int(neg.sum())} negative durations (rows "
            f"{list(data.index[neg][:5])}, values {time[neg][:5].tolist()}); a tenure cannot be "
            "negative - check the start and end dates"
        )
    ev = data[event_col]
    if ev.isna().any():
        raise DataValidationError(f"column {event_col!r} has {int(ev.isna().sum())} missing values")
    status = ev.astype(float).to_numpy()
    if not np.isin(status, (0.0, 1.0)).all():
        raise DataValidationError(
            f"column {event_col!r} must be True/False (1 = cancelled, 0 = still active / censored); "
            f"found values {sorted(set(status[~np.isin(status, (0.0, 1.0))].tolist()))[:5]}"
        )
    return data, duration_col, event_col, time, status


def _weights(data: pd.DataFrame, weight_col: str | None) -> np.ndarray | None:
    if weight_col is None:
        return None
    if weight_col not in data.columns:
        raise DataValidationError(f"weight column {weight_col!r} not found")
    w = pd.to_numeric(data[weight_col], errors="coerce").to_numpy(dtype=float)
    if (~np.isfinite(w) | (w < 0)).any():
        raise DataValidationError(f"column {weight_col!r} must hold finite weights >= 0")
    return w


def _unit_label(data: pd.DataFrame, duration_col: str) -> str:
    code = data.attrs.get("duration_unit") or data.attrs.get("freq")
    try:
        return UNIT_NAMES[normalize_unit(code)] + "s" if code else "periods"
    except ParameterError:
        return "periods"


# ---------------------------------------------------------------------------------------------
# result views
# ---------------------------------------------------------------------------------------------
def _table_summary(head: str, table: pd.DataFrame, *, title: str | None = None,
                   heading: str = "p") -> Summary:
    """One headline sentence over one table (4 significant digits), as text and as HTML."""
    text = head + "\n" + table.to_string(float_format=lambda v: f"{v:.4g}")
    page = (f"<div><{heading}>{html.escape(head)}</{heading}>"
            f"{table.to_html(float_format=lambda v: f'{v:.4g}')}</div>")
    return Summary(text, page, head if title is None else title)


class _SummaryViews:
    """``str()`` and the notebook view of a result are those of its ``summary()``."""

    summary: Callable[[], Summary]  # each result defines its own

    def __str__(self) -> str:
        return self.summary().text

    def _repr_html_(self) -> str:
        return self.summary().html


# ---------------------------------------------------------------------------------------------
# Kaplan-Meier
# ---------------------------------------------------------------------------------------------
@dataclass
class KaplanMeierResult(_SummaryViews):
    """Kaplan-Meier retention curves, one per group.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per group and distinct event time: ``group``, ``time``, ``survival``,
        ``std_error`` (Greenwood), ``lower``, ``upper``, ``at_risk``, ``events``.
    medians : pandas.DataFrame
        Per group: ``median`` tenure and its confidence interval (``lower``, ``upper``; NaN when
        the curve does not reach 0.5).
    level : float
        Confidence level of the bands.
    band : str
        ``"pointwise"`` (log-log) or ``"simultaneous"`` (Hall-Wellner).
    unit : str
        Unit of the times (e.g. ``"months"``).
    """

    table: pd.DataFrame
    medians: pd.DataFrame
    level: float
    band: str
    unit: str
    group_col: str | None = None
    n: pd.Series = field(default_factory=pd.Series)

    @property
    def groups(self) -> list[Any]:
        return list(self.medians.index)

    def survival_at(self, times: Any) -> pd.DataFrame:
        """Retention (and band) at given times for every group, reading the step function.

        Returns a DataFrame indexed by ``(group, time)`` with ``survival``, ``lower``, ``upper``.
        """
        t = np.atleast_1d(np.asarray(times, dtype=float))
        parts = []
        for g, sub in self.table.groupby("group", sort=False, observed=True):
            times_g = sub["time"].to_numpy()
            pos = np.searchsorted(times_g, t, side="right") - 1
            vals = {}
            for col in ("survival", "lower", "upper"):
                arr = sub[col].to_numpy()
                vals[col] = np.where(pos >= 0, arr[np.clip(pos, 0, None)], 1.0)
            parts.append(pd.DataFrame({"group": g, "time": t, **vals}))
        return pd.concat(parts, ignore_index=True).set_index(["group", "time"])

    def plot(self, ax: Any = None, *, bands: bool = True, title: str | None = None) -> Any:
        """Step plot of the retention curves with their bands; returns the Axes."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(7, 4))
        for g, sub in self.table.groupby("group", sort=False, observed=True):
            t = np.concatenate([[0.0], sub["time"].to_numpy()])
            s = np.concatenate([[1.0], sub["survival"].to_numpy()])
            label = str(g) if self.group_col else "all customers"
            (line,) = ax.step(t, s, where="post", label=label)
            if bands:
                lo = np.concatenate([[1.0], sub["lower"].to_numpy()])
                hi = np.concatenate([[1.0], sub["upper"].to_numpy()])
                ax.fill_between(t, lo, hi, step="post", alpha=0.2, color=line.get_color(), lw=0)
        ax.set_xlabel(f"tenure ({self.unit})")
        ax.set_ylabel("share of customers still subscribed")
        ax.set_ylim(0, 1.02)
        ax.set_title(
            title
            or f"Kaplan-Meier retention{' by ' + self.group_col if self.group_col else ''} "
            f"({100 * self.level:g}% {self.band} band)"
        )
        if self.group_col:
            ax.legend(title=self.group_col)
        return ax

    def summary(self) -> Summary:
        """Median tenure per group with its interval; prints as text, shows as HTML."""
        head = f"Kaplan-Meier retention ({100 * self.level:g}% {self.band} band, times in {self.unit})"
        return _table_summary(head, self.medians, heading="h4")


def _loglog_interval(s: np.ndarray, se: np.ndarray, z: float) -> tuple[np.ndarray, np.ndarray]:
    """Pointwise interval for S(t) on the log(-log) scale (Kalbfleisch & Prentice 2002, 1.4)."""
    lower = np.empty_like(s)
    upper = np.empty_like(s)
    inner = (s > 0) & (s < 1)
    with np.errstate(all="ignore"):
        ls = np.log(s[inner])
        sd = se[inner] / np.abs(s[inner] * ls)
        c = np.log(-ls)
        # S^(exp(+-z*sd)): larger exponent -> smaller value
        lower[inner] = np.exp(-np.exp(c + z * sd))
        upper[inner] = np.exp(-np.exp(c - z * sd))
    lower[s >= 1] = 1.0
    upper[s >= 1] = 1.0
    lower[s <= 0] = 0.0
    upper[s <= 0] = 0.0
    bad = inner & ~(np.isfinite(lower) & np.isfinite(upper))
    lower[bad], upper[bad] = s[bad], s[bad]
    return lower, upper


def kaplan_meier(
    data: pd.DataFrame,
    *,
    duration_col: str | None = None,
    event_col: str | None = None,
    group_col: str | None = None,
    weight_col: str | None = None,
    level: float = 0.95,
    band: str = "pointwise",
) -> KaplanMeierResult:
    """Kaplan-Meier retention curves by segment with confidence bands.

    The product-limit estimate ``S(t) = prod_{t_j <= t} (1 - d_j / n_j)`` (Kaplan & Meier
    1958) with Greenwood's standard error, computed by ``statsmodels``' ``SurvfuncRight`` per
    group. Without censoring it equals the empirical share of customers whose tenure exceeds
    ``t``.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per customer (or per group of identical customers with ``weight_col``). Either
        a ``duration`` column, or the output of :func:`custvalue.summary.subscriptions` (the
        tenure is then measured from ``start`` to ``end`` / observation end, in its period).
    duration_col, event_col : str, optional
        Tenure (>= 0) and cancellation flag (True = cancelled, False = still active, i.e.
        right-censored). Defaults: ``duration`` / ``T`` and ``event`` / ``churned``.
    group_col : str, optional
        Segment column (plan, channel, cohort...): one curve per value.
    weight_col : str, optional
        Frequency weights.
    level : float, default 0.95
        Confidence level.
    band : {"pointwise", "simultaneous"}
        Pointwise log-log intervals, or a Hall-Wellner simultaneous band (statsmodels
        ``simultaneous_cb``, log transform) that covers the whole curve with probability
        ``level`` (0.95 only).

    Returns
    -------
    KaplanMeierResult
    """
    return KaplanMeier(level=level, band=band).fit(
        data, duration_col=duration_col, event_col=event_col, group_col=group_col,
        weight_col=weight_col,
    ).result_


def _check_km_options(level: float, band: str) -> None:
    if not 0 < level < 1:
        raise ParameterError(f"level must be between 0 and 1; got {level}")
    if band not in ("pointwise", "simultaneous"):
        raise ParameterError(f"band={band!r}: use 'pointwise' or 'simultaneous'")
    if band == "simultaneous" and abs(level - 0.95) > 1e-12:
        raise ParameterError(
            "the Hall-Wellner simultaneous band is available at level=0.95 only (statsmodels "
            "tabulates that level); use band='pointwise' for other levels"
        )


def _fit_kaplan_meier(
    data: pd.DataFrame,
    duration_col: str | None,
    event_col: str | None,
    group_col: str | None,
    weight_col: str | None,
    level: float,
    band: str,
) -> KaplanMeierResult:
    """Product-limit curves per group (the body of :meth:`KaplanMeier.fit`)."""
    from statsmodels.duration.survfunc import SurvfuncRight

    data, duration_col, event_col, time, status = _resolve_duration(data, duration_col, event_col)
    w = _weights(data, weight_col)
    if group_col is not None and group_col not in data.columns:
        raise DataValidationError(f"group column {group_col!r} not found in {list(data.columns)[:12]}")
    groups = (
        pd.Series("all", index=data.index)
        if group_col is None
        else data[group_col].astype("object").where(data[group_col].notna(), "(missing)")
    )
    codes, labels = pd.factorize(groups, sort=True)
    z = stats.norm.ppf(0.5 + level / 2.0)
    parts, med_rows, counts = [], [], {}
    for k, label in enumerate(labels):  # one iteration per segment
        sel = codes == k
        fw = None if w is None else w[sel]
        sf = SurvfuncRight(time[sel], status[sel], freq_weights=fw)
        s = np.asarray(sf.surv_prob, dtype=float)
        se = np.nan_to_num(np.asarray(sf.surv_prob_se, dtype=float), nan=0.0)
        if s.size == 0:  # no events in this group: flat at 1
            parts.append(
                pd.DataFrame(
                    {"group": label, "time": [0.0], "survival": [1.0], "std_error": [0.0],
                     "lower": [1.0], "upper": [1.0], "at_risk": [float(sel.sum())], "events": [0.0]}
                )
            )
            med_rows.append((label, np.nan, np.nan, np.nan))
            counts[label] = float(sel.sum() if fw is None else fw.sum())
            continue
        if band == "pointwise":
            lo, hi = _loglog_interval(s, se, z)
        else:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore", RuntimeWarning)
                lo, hi = sf.simultaneous_cb(alpha=0.05, transform="log")
            lo = np.where(np.isfinite(lo), lo, s)
            hi = np.where(np.isfinite(hi), hi, s)
            lo = np.clip(np.minimum(lo, s), 0.0, 1.0)
            hi = np.clip(np.maximum(hi, s), 0.0, 1.0)
        parts.append(
            pd.DataFrame(
                {
                    "group": label,
                    "time": np.asarray(sf.surv_times, dtype=float),
                    "survival": s,
                    "std_error": se,
                    "lower": lo,
                    "upper": hi,
                    "at_risk": np.asarray(sf.n_risk, dtype=float),
                    "events": np.asarray(sf.n_events, dtype=float),
                }
            )
        )
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            med = float(sf.quantile(0.5)) if (s <= 0.5).any() else np.nan
            try:
                mlo, mhi = sf.quantile_ci(0.5, alpha=1.0 - level)
            except Exception:  # pragma: no cover - statsmodels edge cases
                mlo, mhi = np.nan, np.nan
        med_rows.append((label, med, float(mlo) if mlo is not None else np.nan,
                         float(mhi) if mhi is not None else np.nan))
        counts[label] = float(sel.sum() if fw is None else fw.sum())
    table = pd.concat(parts, ignore_index=True)
    medians = pd.DataFrame(med_rows, columns=["group", "median", "lower", "upper"]).set_index("group")
    medians.insert(0, "customers", pd.Series(counts))
    medians.insert(1, "cancelled", table.groupby("group", sort=False)["events"].sum())
    return KaplanMeierResult(
        table=table,
        medians=medians,
        level=level,
        band=band,
        unit=_unit_label(data, duration_col),
        group_col=group_col,
        n=pd.Series(counts, name="customers"),
    )


# ---------------------------------------------------------------------------------------------
# log-rank test
# ---------------------------------------------------------------------------------------------
@dataclass
class LogrankResult(_SummaryViews):
    """Log-rank comparison of retention between groups.

    Attributes
    ----------
    statistic : float
        Chi-square statistic (statsmodels ``survdiff``).
    df : int
        Degrees of freedom (groups - 1).
    p_value : float
    table : pandas.DataFrame
        Per group: ``customers``, ``observed`` and ``expected`` cancellations under equal
        retention (Mantel 1966), and their ratio.
    """

    statistic: float
    df: int
    p_value: float
    table: pd.DataFrame
    group_col: str

    def summary(self) -> Summary:
        """The test and the observed/expected table; prints as text, shows as HTML."""
        head = (
            f"Log-rank test of retention by {self.group_col}: chi2 = {self.statistic:.4g} on "
            f"{self.df} df, p = {self.p_value:.4g}"
        )
        return _table_summary(head, self.table)


def _observed_expected(time: np.ndarray, status: np.ndarray, codes: np.ndarray, k: int):
    """Observed and expected events per group under H0 (vectorised over event times)."""
    uniq, inv = np.unique(time, return_inverse=True)
    m = uniq.size
    d = np.zeros((m, k))
    c = np.zeros((m, k))
    np.add.at(d, (inv, codes), status)
    np.add.at(c, (inv, codes), 1.0)
    # at risk at time t_j: subjects with time >= t_j
    at_risk = np.cumsum(c[::-1], axis=0)[::-1]
    n_tot = at_risk.sum(axis=1)
    d_tot = d.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        expected = np.where(n_tot[:, None] > 0, d_tot[:, None] * at_risk / n_tot[:, None], 0.0)
    return d.sum(axis=0), expected.sum(axis=0)


def logrank_test(
    data: pd.DataFrame,
    group_col: str,
    *,
    duration_col: str | None = None,
    event_col: str | None = None,
) -> LogrankResult:
    """Log-rank test that all groups share one retention curve.

    Parameters
    ----------
    data : pandas.DataFrame
        As for :func:`kaplan_meier` (one row per customer).
    group_col : str
        Segment column; at least two groups.
    duration_col, event_col : str, optional
        As for :func:`kaplan_meier`.

    Returns
    -------
    LogrankResult
    """
    from statsmodels.duration.survfunc import survdiff

    data, duration_col, event_col, time, status = _resolve_duration(data, duration_col, event_col)
    if group_col not in data.columns:
        raise DataValidationError(f"group column {group_col!r} not found in {list(data.columns)[:12]}")
    groups = data[group_col].astype("object").where(data[group_col].notna(), "(missing)")
    codes, labels = pd.factorize(groups, sort=True)
    if labels.size < 2:
        raise DataValidationError(
            f"the log-rank test compares groups; column {group_col!r} has only {labels.size} value(s)"
        )
    stat, p = survdiff(time, status, codes)
    obs, exp = _observed_expected(time, status, codes, labels.size)
    table = pd.DataFrame(
        {
            "customers": np.bincount(codes, minlength=labels.size).astype(float),
            "observed": obs,
            "expected": exp,
        },
        index=pd.Index(labels, name=group_col),
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        table["observed/expected"] = table["observed"] / table["expected"]
    return LogrankResult(float(stat), int(labels.size - 1), float(p), table, group_col)


# ---------------------------------------------------------------------------------------------
# start-stop rows for time-varying covariates
# ---------------------------------------------------------------------------------------------
def start_stop(
    spells: pd.DataFrame,
    changes: pd.DataFrame,
    *,
    id_col: str = "customer_id",
    duration_col: str = "duration",
    event_col: str = "event",
    time_col: str = "time",
    covariates: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Split each customer's spell into start-stop rows at the times covariates change.

    The counting-process layout (Andersen & Gill 1982) that :func:`cox_ph` fits with
    ``entry_col="start"``, ``duration_col="stop"``: a row ``[start, stop)`` carries the
    covariate values in force during that interval, and only a customer's last row can carry
    the event.

    Parameters
    ----------
    spells : pandas.DataFrame
        One row per customer: ``id_col`` (column or index), ``duration_col``, ``event_col``
        and baseline values of the covariates (optional).
    changes : pandas.DataFrame
        Covariate changes: ``id_col``, ``time_col`` (tenure at which the new values take
        effect, same unit as the durations) and the covariate columns. Changes at or after a
        customer's end are ignored; customers without changes keep their baseline row.
    covariates : sequence of str, optional
        Time-varying covariate columns (default: every column of ``changes`` except id/time).
        Before a customer's first change the baseline value from ``spells`` is used when
        present, otherwise NaN.

    Returns
    -------
    pandas.DataFrame
        ``id_col``, ``start``, ``stop``, ``event`` and the covariates, plus the other spell
        columns repeated, sorted by customer and start.
    """
    if id_col not in spells.columns:
        if spells.index.name == id_col:
            spells = spells.reset_index()
        else:
            raise DataValidationError(f"spells need an {id_col!r} column or index")
    for col in (duration_col, event_col):
        if col not in spells.columns:
            raise DataValidationError(f"spells need column {col!r}; have {list(spells.columns)[:12]}")
    for col in (id_col, time_col):
        if col not in changes.columns:
            raise DataValidationError(f"changes need column {col!r}; have {list(changes.columns)[:12]}")
    if spells[id_col].duplicated().any():
        raise DataValidationError(f"spells must have one row per {id_col}")
    covs = list(covariates) if covariates is not None else [
        c for c in changes.columns if c not in (id_col, time_col)
    ]
    missing = [c for c in covs if c not in changes.columns]
    if missing:
        raise DataValidationError(f"changes lack covariate columns {missing}")
    dur = pd.to_numeric(spells[duration_col], errors="coerce")
    if dur.isna().any() or (dur < 0).any():
        raise DataValidationError(f"column {duration_col!r} must hold durations >= 0")
    ch = changes[[id_col, time_col, *covs]].copy()
    ch[time_col] = pd.to_numeric(ch[time_col], errors="coerce")
    if ch[time_col].isna().any() or (ch[time_col] < 0).any():
        raise DataValidationError(f"changes[{time_col!r}] must hold tenures >= 0")
    ends = pd.Series(dur.to_numpy(), index=spells[id_col].to_numpy())
    end_of = ends.reindex(ch[id_col].to_numpy()).to_numpy()
    unknown = np.isnan(end_of)
    if unknown.any():
        raise DataValidationError(
            f"{int(unknown.sum())} covariate changes belong to customers not in spells "
            f"(e.g. {list(ch[id_col][unknown][:5])})"
        )
    ch = ch.loc[(ch[time_col].to_numpy() > 0) & (ch[time_col].to_numpy() < end_of)]
    base_cols = [c for c in spells.columns if c not in (duration_col, event_col)]
    base = spells[base_cols].copy()
    base["start"] = 0.0
    for c in covs:
        if c not in base.columns:
            base[c] = np.nan
    pieces = ch.rename(columns={time_col: "start"})
    other = [c for c in base_cols if c not in covs and c != id_col]
    if other:
        pieces = pieces.merge(spells[[id_col, *other]], on=id_col, how="left")
    rows = pd.concat([base, pieces[base.columns]], ignore_index=True)
    rows = rows.sort_values([id_col, "start"], kind="stable")
    rows = rows.drop_duplicates([id_col, "start"], keep="last")
    nxt = rows.groupby(id_col, sort=False)["start"].shift(-1)
    stop_end = ends.reindex(rows[id_col].to_numpy()).to_numpy()
    last = nxt.isna().to_numpy()
    rows["stop"] = np.where(last, stop_end, nxt.to_numpy())
    ev = pd.Series(spells[event_col].astype(bool).to_numpy(), index=spells[id_col].to_numpy())
    rows["event"] = last & ev.reindex(rows[id_col].to_numpy()).to_numpy()
    # carry covariates forward within a customer where a change leaves some of them empty
    rows[covs] = rows.groupby(id_col, sort=False)[covs].ffill()
    rows = rows.loc[rows["stop"] > rows["start"]]
    lead = [id_col, "start", "stop", "event"]
    return rows[lead + [c for c in rows.columns if c not in lead]].reset_index(drop=True)


# ---------------------------------------------------------------------------------------------
# Cox proportional hazards
# ---------------------------------------------------------------------------------------------
@dataclass
class CoxResult(_SummaryViews):
    """Fitted Cox proportional hazards model.

    Attributes
    ----------
    table : pandas.DataFrame
        Per covariate: ``coef`` (log hazard ratio), ``hazard_ratio``, ``std_error``, ``z``,
        ``p_value`` and the ``lower``/``upper`` hazard-ratio interval.
    log_likelihood : float
        Partial log-likelihood at the estimate.
    n_rows, n_customers, n_events : int
    ties : str
    covariance_type : str
        ``"model"`` (inverse information) or the clustered robust sandwich (``cluster_col``).
    """

    table: pd.DataFrame
    log_likelihood: float
    n_rows: int
    n_customers: int
    n_events: int
    ties: str
    level: float
    covariance: pd.DataFrame
    exog_names: list[str]
    results: Any = None
    engine: str = "statsmodels"
    covariance_type: str = "model"

    @property
    def params(self) -> pd.Series:
        return self.table["coef"]

    @property
    def hazard_ratios(self) -> pd.Series:
        return self.table["hazard_ratio"]

    def summary(self) -> Summary:
        """Coefficients, hazard ratios and their intervals; prints as text, shows as HTML."""
        head = (
            f"Cox proportional hazards ({self.ties} ties): {self.n_customers} customers, "
            f"{self.n_rows} rows, {self.n_events} cancellations, partial log-likelihood "
            f"{self.log_likelihood:.6g}; intervals {100 * self.level:g}% for the hazard ratio"
            + ("" if self.covariance_type == "model" else
               f"; standard errors {self.covariance_type}")
        )
        return _table_summary(head, self.table, title="Cox proportional hazards")

    def predict_partial_hazard(self, data: pd.DataFrame) -> pd.Series:
        """exp(x'beta) per row for covariate columns named as in ``exog_names``."""
        missing = [c for c in self.exog_names if c not in data.columns]
        if missing:
            raise DataValidationError(
                f"predict_partial_hazard needs columns {self.exog_names}; missing {missing} "
                "(dummy columns are named 'column_value')"
            )
        x = data[self.exog_names].to_numpy(dtype=float)
        return pd.Series(np.exp(x @ self.table["coef"].to_numpy()), index=data.index, name="partial_hazard")


def _design(data: pd.DataFrame, covariates: Sequence[str]) -> pd.DataFrame:
    missing = [c for c in covariates if c not in data.columns]
    if missing:
        raise DataValidationError(
            f"covariates {missing} not found; the frame has {list(data.columns)[:12]}"
        )
    parts = []
    for c in covariates:
        col = data[c]
        if pd.api.types.is_bool_dtype(col):
            parts.append(col.astype(float).rename(c))
        elif pd.api.types.is_numeric_dtype(col):
            parts.append(col.astype(float).rename(c))
        else:
            d = pd.get_dummies(col.astype("category"), prefix=c, prefix_sep="_", drop_first=True, dtype=float)
            if d.shape[1] == 0:
                raise DataValidationError(f"covariate {c!r} has a single value; drop it")
            parts.append(d)
    x = pd.concat(parts, axis=1)
    bad = ~np.isfinite(x.to_numpy(dtype=float))
    if bad.any():
        rows = np.nonzero(bad.any(axis=1))[0]
        raise DataValidationError(
            f"covariates have {rows.size} rows with missing or infinite values (rows "
            f"{list(data.index[rows[:5]])}); fill or drop them before fitting"
        )
    const = x.columns[x.nunique() <= 1].tolist()
    if const:
        raise DataValidationError(
            f"covariate column(s) {const} are constant: a Cox model has no intercept, drop them"
        )
    return x


class _BreslowLayout:
    """Sort orders and event-time positions of a Cox data set (independent of beta).

    For each distinct event time t of a stratum the risk set is {j: entry_j < t <= stop_j};
    its sums S0 = sum w_j, S1 = sum w_j x_j, S2 = sum w_j x_j x_j' (w = exp(x beta)) are
    differences of suffix sums over rows sorted by stop and by entry time (Cox 1972 with
    Breslow's 1974 handling of ties; left truncation as in Andersen & Gill 1982). Sorting and
    searching happen once here; each likelihood evaluation is then a cumulative sum.
    """

    def __init__(self, x, stop, status, entry, strata) -> None:
        self.p = x.shape[1]
        self.parts = []
        for s_code in np.unique(strata):  # a handful of strata, vectorised inside
            rows = np.nonzero(strata == s_code)[0]
            st, ev = stop[rows], status[rows] > 0
            if not ev.any():
                continue
            times, inv = np.unique(st[ev], return_inverse=True)
            d = np.bincount(inv, minlength=times.size).astype(float)
            xsum = np.zeros((times.size, self.p))
            np.add.at(xsum, inv, x[rows[ev]])
            # store the stratum's rows in decreasing stop order, so the stop sums need no gather
            o_stop, pos_stop = self._descending(st, times)
            rows = rows[o_stop]
            if entry is not None:
                o_entry, pos_entry = self._descending(entry[rows], times)
            else:
                o_entry = pos_entry = None
            xt_part = np.ascontiguousarray(x[rows].T)
            self.parts.append((xt_part, d, xsum, None, pos_stop, o_entry, pos_entry))

    @staticmethod
    def _descending(keys: np.ndarray, at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Row order by decreasing key, and for each ``at`` the number of rows with key >= at."""
        order = np.argsort(keys, kind="stable")
        count = keys.size - np.searchsorted(keys[order], at, side="left")
        return np.ascontiguousarray(order[::-1]), count

    @staticmethod
    def _suffix(vals: np.ndarray, order_desc: np.ndarray | None, count: np.ndarray) -> np.ndarray:
        # vals is (k, n): running sums along rows in decreasing key order (contiguous, exact
        # - no "total minus prefix" cancellation); column 0 of the result is the empty sum
        csum = np.empty((vals.shape[0], vals.shape[1] + 1))
        csum[:, 0] = 0.0
        np.cumsum(vals if order_desc is None else vals[:, order_desc], axis=1, out=csum[:, 1:])
        return csum[:, count]

    def pieces(self, beta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """Partial log-likelihood, score and observed information at ``beta``."""
        p = self.p
        shift = max((float((beta @ part[0]).max()) for part in self.parts if part[0].size), default=0.0)
        ll, grad, info = 0.0, np.zeros(p), np.zeros((p, p))
        for xt, d, xsum, o_stop, pos_stop, o_entry, pos_entry in self.parts:
            n_rows = xt.shape[1]
            stacked = np.empty((1 + p + p * p, n_rows))
            np.exp(beta @ xt - shift, out=stacked[0])
            np.multiply(xt, stacked[0], out=stacked[1 : 1 + p])
            stacked[1 + p :] = (stacked[1 : 1 + p, None, :] * xt[None, :, :]).reshape(p * p, n_rows)
            sums = self._suffix(stacked, o_stop, pos_stop)
            if o_entry is not None:
                sums -= self._suffix(stacked, o_entry, pos_entry)
            sums = sums.T
            s0 = np.maximum(sums[:, 0], np.finfo(float).tiny)
            s1, s2 = sums[:, 1 : 1 + p], sums[:, 1 + p :]
            ll += float((xsum @ beta).sum() - (d * (np.log(s0) + shift)).sum())
            mean = s1 / s0[:, None]
            grad += xsum.sum(axis=0) - (d[:, None] * mean).sum(axis=0)
            second = (d[:, None] * s2 / s0[:, None]).sum(axis=0).reshape(p, p)
            info += second - np.einsum("k,ki,kj->ij", d, mean, mean)
        return ll, grad, info


def _cox_newton(x, stop, status, entry, strata, max_iter: int = 50):
    """Newton-Raphson with step halving on the Breslow partial likelihood; returns beta, cov, ll."""
    layout = _BreslowLayout(x, stop, status, entry, strata)
    beta = np.zeros(x.shape[1])
    ll, grad, info = layout.pieces(beta)
    for _ in range(max_iter):
        try:
            step = np.linalg.solve(info, grad)
        except np.linalg.LinAlgError as exc:
            raise ConvergenceError(
                f"Cox fit failed ({exc}): covariates may be collinear; drop or merge levels"
            ) from exc
        scale = 1.0
        while True:
            cand = beta + scale * step
            c_ll, c_grad, c_info = layout.pieces(cand)
            if np.isfinite(c_ll) and c_ll >= ll - 1e-12 * max(1.0, abs(ll)):
                break
            scale /= 2.0
            if scale < 1e-8:
                raise ConvergenceError(
                    "Cox fit did not converge (the partial likelihood does not increase); check "
                    "for covariates that perfectly predict cancellation"
                )
        gain = c_ll - ll
        beta, ll, grad, info = cand, c_ll, c_grad, c_info
        if np.max(np.abs(scale * step)) < 1e-10 or gain < 1e-12 * max(1.0, abs(ll)):
            break
    try:
        cov = np.linalg.inv(info)
    except np.linalg.LinAlgError as exc:
        raise ConvergenceError(f"Cox information matrix is singular ({exc}); covariates are collinear") from exc
    return beta, cov, ll


def _score_residuals(x: np.ndarray, stop: np.ndarray, status: np.ndarray,
                     entry: np.ndarray | None, strata: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """Score residuals of the Breslow partial likelihood, one row per data row.

    For row ``i`` (Lin & Wei 1989, eq. 2.1; Therneau & Grambsch 2000, sec. 7.3)
    ``W_i = d_i (x_i - xbar(t_i)) - sum_k Y_i(t_k) w_i (dN_k / S0_k) (x_i - xbar(t_k))``
    over the distinct event times ``t_k`` of the row's stratum at which it is at risk
    (``entry_i < t_k <= stop_i``), with ``w_i = exp(x_i' beta)``, ``S0_k`` the risk set's sum of
    ``w`` and ``xbar_k = S1_k / S0_k``. The inner sum is a difference of two cumulative sums
    over event times, found by binary search, so the cost is a sort per stratum.
    """
    n, p = x.shape
    out = np.zeros((n, p))
    eta = x @ beta
    for s_code in np.unique(strata):
        rows = np.nonzero(strata == s_code)[0]
        st, ev = stop[rows], status[rows] > 0
        if not ev.any():
            continue
        xs = x[rows]
        w = np.exp(eta[rows] - eta[rows].max())
        times, inv = np.unique(st[ev], return_inverse=True)
        d = np.bincount(inv, minlength=times.size).astype(float)
        vals = np.column_stack([w, xs * w[:, None]])

        def at_least(keys: np.ndarray, vals: np.ndarray = vals,
                     times: np.ndarray = times) -> np.ndarray:
            # sum of vals over rows with key >= each event time (suffix sums, sorted once)
            order = np.argsort(keys, kind="stable")[::-1]
            csum = np.vstack([np.zeros(vals.shape[1]), np.cumsum(vals[order], axis=0)])
            count = keys.size - np.searchsorted(np.sort(keys), times, side="left")
            return csum[count]

        sums = at_least(st)
        if entry is not None:
            sums = sums - at_least(entry[rows])
        s0 = np.maximum(sums[:, 0], np.finfo(float).tiny)
        xbar = sums[:, 1:] / s0[:, None]
        haz = d / s0
        c0 = np.r_[0.0, np.cumsum(haz)]
        c1 = np.vstack([np.zeros(p), np.cumsum(haz[:, None] * xbar, axis=0)])
        hi = np.searchsorted(times, st, side="right")
        lo = (np.zeros(rows.size, dtype=np.int64) if entry is None
              else np.searchsorted(times, entry[rows], side="right"))
        a = c0[hi] - c0[lo]
        b = c1[hi] - c1[lo]
        own = np.searchsorted(times, st, side="left").clip(max=times.size - 1)
        resid = -(w[:, None] * (xs * a[:, None] - b))
        resid[ev] += xs[ev] - xbar[own[ev]]
        out[rows] = resid
    return out


def _cluster_sandwich(cov: np.ndarray, resid: np.ndarray, clusters: np.ndarray) -> np.ndarray:
    """Robust covariance ``I^-1 (sum_c U_c U_c') I^-1`` with ``U_c`` the sum of the score
    residuals of cluster ``c`` (Lin & Wei 1989, eq. 2.3; no small-sample factor, as in
    statsmodels' ``PHReg.fit(groups=...)`` and lifelines' ``cluster_col``)."""
    codes = pd.factorize(clusters)[0]
    k = int(codes.max()) + 1
    u = np.column_stack([np.bincount(codes, weights=resid[:, j], minlength=k)
                         for j in range(resid.shape[1])])
    return cov @ (u.T @ u) @ cov


_FAST_ROWS = 20_000


class _CoxColumns(TypedDict, total=False):
    """The column arguments of :func:`cox_ph` and :meth:`CoxPH.fit`, declared once (each
    defaults to ``None``; see :func:`cox_ph`)."""

    duration_col: str | None
    event_col: str | None
    entry_col: str | None
    strata_col: str | None
    id_col: str | None
    cluster_col: str | None


def cox_ph(
    data: pd.DataFrame,
    covariates: Sequence[str] | str,
    *,
    ties: str = "breslow",
    level: float = 0.95,
    engine: str = "auto",
    **columns: Unpack[_CoxColumns],
) -> CoxResult:
    """Cox proportional hazards regression of cancellation on covariates (statsmodels PHReg).

    ``h(t | x) = h0(t) exp(x' beta)`` (Cox 1972), fitted by maximising the partial likelihood.
    With ``entry_col`` the rows are start-stop intervals ``(entry, duration]`` (left-truncated,
    counting-process form), which is how time-varying covariates enter: build them with
    :func:`start_stop`.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per customer, or per customer-interval with ``entry_col``.
    covariates : list of str or str
        Covariate columns (categorical columns become treatment dummies ``column_value``
        against their first level), or a patsy formula right-hand side such as
        ``"C(plan) + price"``.
    duration_col, event_col : str, optional
        Tenure / interval end and cancellation flag (see :func:`kaplan_meier`).
    entry_col : str, optional
        Interval start for start-stop rows.
    strata_col : str, optional
        Stratify the baseline hazard (e.g. by cohort).
    id_col : str, optional
        Customer id of start-stop rows (used to count customers).
    cluster_col : str, optional
        Rows with the same value (a customer's start-stop rows) may be dependent: the
        standard errors are then the robust sandwich of Lin & Wei (1989), clustered on this
        column, ``I^-1 (sum_c U_c U_c') I^-1`` with ``U_c`` the cluster's summed score
        residuals (statsmodels' ``PHReg.fit(groups=...)``; tested against it), and
        ``covariance_type`` says so.
    ties : {"breslow", "efron"}
    level : float
        Confidence level of the hazard-ratio intervals.
    engine : {"auto", "statsmodels", "numpy"}
        ``"statsmodels"`` fits with ``PHReg``; ``"numpy"`` maximises the same Breslow partial
        likelihood by Newton-Raphson with risk-set sums computed as suffix sums over sorted
        times (PHReg loops over event times in Python, which takes minutes for 10^5
        customers). ``"auto"`` uses PHReg up to 20,000 rows or with Efron ties, the numpy
        engine above. The two agree to optimiser precision (tested).

    Returns
    -------
    CoxResult
    """
    columns = forwarded("cox_ph", columns, _CoxColumns)
    return CoxPH(ties=ties, level=level, engine=engine).fit(data, covariates, **columns).result_


def _check_cox_options(ties: str, level: float, engine: str) -> None:
    if ties not in ("breslow", "efron"):
        raise ParameterError(f"ties={ties!r}: use 'breslow' or 'efron'")
    if engine not in ("auto", "statsmodels", "numpy"):
        raise ParameterError(f"engine={engine!r}: use 'auto', 'statsmodels' or 'numpy'")
    if engine == "numpy" and ties == "efron":
        raise ParameterError("the numpy engine implements Breslow ties; use engine='statsmodels' for Efron")
    if not 0 < level < 1:
        raise ParameterError(f"level must be between 0 and 1; got {level}")


def _fit_cox(
    data: pd.DataFrame,
    covariates: Sequence[str] | str,
    columns: Mapping[str, str | None],
    ties: str,
    level: float,
    engine: str,
) -> CoxResult:
    """Partial-likelihood fit (the body of :meth:`CoxPH.fit`); ``columns`` as :class:`_CoxColumns`."""
    duration_col, event_col = columns.get("duration_col"), columns.get("event_col")
    entry_col, strata_col, id_col, cluster_col = (
        columns.get(k) for k in ("entry_col", "strata_col", "id_col", "cluster_col"))
    from statsmodels.duration.hazard_regression import PHReg

    data, duration_col, event_col, time, status = _resolve_duration(data, duration_col, event_col)
    entry = None
    if entry_col is not None:
        if entry_col not in data.columns:
            raise DataValidationError(f"entry column {entry_col!r} not found")
        entry = pd.to_numeric(data[entry_col], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(entry) | (entry < 0) | (entry >= time)
        if bad.any():
            raise DataValidationError(
                f"{int(bad.sum())} start-stop rows have an entry time missing, negative or not "
                f"before the stop time (rows {list(data.index[bad][:5])}); every interval needs "
                "0 <= start < stop"
            )
    strata = None
    if strata_col is not None:
        if strata_col not in data.columns:
            raise DataValidationError(f"strata column {strata_col!r} not found")
        strata = pd.factorize(data[strata_col])[0]
    clusters = None
    if cluster_col is not None:
        if cluster_col not in data.columns:
            raise DataValidationError(f"cluster column {cluster_col!r} not found; the frame has "
                                      f"{list(data.columns)[:12]}")
        if data[cluster_col].isna().any():
            raise DataValidationError(
                f"cluster column {cluster_col!r} has {int(data[cluster_col].isna().sum())} "
                "missing values; every row needs its customer")
        clusters = pd.factorize(data[cluster_col])[0]
    if isinstance(covariates, str):
        import patsy

        try:
            x = patsy.dmatrix(covariates, data, return_type="dataframe", NA_action="raise")
        except patsy.PatsyError as exc:
            raise DataValidationError(f"could not build covariates from {covariates!r}: {exc}") from exc
        # treatment coding against the intercept; the baseline hazard absorbs the intercept
        x = x.drop(columns=[c for c in x.columns if c == "Intercept"])
    else:
        x = _design(data, list(covariates))
    if status.sum() == 0:
        raise DataValidationError("no cancellations (events) in the data: a Cox model needs events")
    use_numpy = engine == "numpy" or (engine == "auto" and ties == "breslow" and len(data) > _FAST_ROWS)
    xa = x.to_numpy(dtype=float)
    res = None
    if use_numpy:
        strata_codes = strata if strata is not None else np.zeros(len(time), dtype=np.int64)
        beta, cov, llf = _cox_newton(xa, time, status, entry, strata_codes)
        if clusters is not None:
            cov = _cluster_sandwich(
                cov, _score_residuals(xa, time, status, entry, strata_codes, beta), clusters)
    else:
        model = PHReg(time, xa, status=status, entry=entry, strata=strata, ties=ties)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                res = model.fit()
            except np.linalg.LinAlgError as exc:
                raise ConvergenceError(
                    f"Cox fit failed ({exc}): covariates may be collinear or perfectly separate the "
                    "cancellations; drop or merge levels"
                ) from exc
        beta = np.asarray(res.params, dtype=float)
        cov = np.asarray(res.cov_params(), dtype=float)
        llf = float(res.llf)
        if clusters is not None:
            # PHReg's own groups= path marks rows that are at risk at no event time NaN (their
            # score residual is 0) and then returns a NaN covariance; the same sandwich here
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                resid = np.nan_to_num(np.asarray(res.score_residuals, dtype=float))
            cov = _cluster_sandwich(cov, resid, clusters)
    if not (np.all(np.isfinite(beta)) and np.all(np.isfinite(cov))):
        raise ConvergenceError(
            "Cox fit did not converge (non-finite estimates); check for covariates that "
            "perfectly predict cancellation"
        )
    se = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    zc = stats.norm.ppf(0.5 + level / 2.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        zval = beta / se
    names = list(x.columns)
    table = pd.DataFrame(
        {
            "coef": beta,
            "hazard_ratio": np.exp(beta),
            "std_error": se,
            "z": zval,
            "p_value": 2 * stats.norm.sf(np.abs(zval)),
            "lower": np.exp(beta - zc * se),
            "upper": np.exp(beta + zc * se),
        },
        index=pd.Index(names, name="covariate"),
    )
    n_cust = int(data[id_col].nunique()) if id_col is not None and id_col in data.columns else len(data)
    return CoxResult(
        table=table,
        log_likelihood=float(llf),
        n_rows=len(data),
        n_customers=n_cust,
        n_events=int(status.sum()),
        ties=ties,
        level=level,
        covariance=pd.DataFrame(cov, index=names, columns=names),
        exog_names=names,
        results=res,
        engine="numpy" if use_numpy else "statsmodels",
        covariance_type=("model" if clusters is None else
                         f"robust, clustered on {cluster_col} ({int(clusters.max()) + 1:,} "
                         "clusters; Lin & Wei 1989)"),
    )


# ---------------------------------------------------------------------------------------------
# estimators (options in the constructor, fit -> self, fitted attributes end in "_")
# ---------------------------------------------------------------------------------------------
class _Estimator:
    """Shared behaviour of the survival estimators (lifelines-style fitters)."""

    result_: Any

    def _fitted(self) -> Any:
        result = getattr(self, "result_", None)
        if result is None:
            name = type(self).__name__
            raise ModelNotFittedError(f"{name} is not fitted: call {name}(...).fit(data, ...) first")
        return result

    def summary(self) -> Summary:
        """The fitted result's summary (text with ``print``, HTML in notebooks)."""
        return self._fitted().summary()

    def _repr_html_(self) -> str:
        if getattr(self, "result_", None) is None:
            return f"<p>{html.escape(repr(self))}</p>"
        return self.summary().html

    def _options(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.__dict__.items() if not k.endswith("_"))

    def __repr__(self) -> str:
        state = "fitted" if getattr(self, "result_", None) is not None else "not fitted"
        return f"<{type(self).__name__}({self._options()}): {state}>"


class KaplanMeier(_Estimator):
    """Kaplan-Meier retention curves by segment with confidence bands (Kaplan & Meier 1958).

    Options in the constructor, data in :meth:`fit` (like lifelines' ``KaplanMeierFitter``):

    >>> km = KaplanMeier(level=0.95).fit(subs, group_col="plan")   # doctest: +SKIP
    >>> km.survival_function_.head()                                # doctest: +SKIP

    Parameters
    ----------
    level : float, default 0.95
        Confidence level of the bands.
    band : {"pointwise", "simultaneous"}
        Pointwise log-log intervals (Kalbfleisch & Prentice 2002, 1.4) or the Hall-Wellner
        simultaneous band (0.95 only). See :func:`kaplan_meier`.

    Attributes
    ----------
    survival_function_ : pandas.DataFrame
        Retention S(t): index ``time`` (every event time of any group, plus 0), one column per
        group (``"all"`` without groups), read from each group's step function.
    table_ : pandas.DataFrame
        Long table per group and event time: ``survival``, ``std_error`` (Greenwood), ``lower``,
        ``upper``, ``at_risk``, ``events``.
    medians_ : pandas.DataFrame
        Median tenure per group with its interval.
    n_ : pandas.Series
        Customers per group.
    unit_ : str
    result_ : KaplanMeierResult
        Everything above in one object (what :func:`kaplan_meier` returns).
    """

    def __init__(self, level: float = 0.95, band: str = "pointwise") -> None:
        _check_km_options(level, band)
        self.level = level
        self.band = band

    def fit(
        self,
        data: pd.DataFrame,
        *,
        duration_col: str | None = None,
        event_col: str | None = None,
        group_col: str | None = None,
        weight_col: str | None = None,
    ) -> KaplanMeier:
        """Estimate the curves; columns as for :func:`kaplan_meier`. Returns ``self``."""
        res = _fit_kaplan_meier(data, duration_col, event_col, group_col, weight_col, self.level, self.band)
        self.result_ = res
        self.table_ = res.table
        self.medians_ = res.medians
        self.n_ = res.n
        self.unit_ = res.unit
        self.group_col_ = group_col
        wide = res.table.pivot_table(index="time", columns="group", values="survival", aggfunc="last",
                                     observed=True, sort=True)
        wide = wide.reindex(wide.index.union(pd.Index([0.0]))).ffill().fillna(1.0)
        wide.columns.name = group_col or "group"
        self.survival_function_ = wide
        return self

    def survival_at(self, times: Any) -> pd.DataFrame:
        """Retention and band at given times per group (:meth:`KaplanMeierResult.survival_at`)."""
        return self._fitted().survival_at(times)

    def plot(self, ax: Any = None, **kwargs: Any) -> Any:
        """Step plot with bands (:meth:`KaplanMeierResult.plot`); returns the Axes."""
        return self._fitted().plot(ax, **kwargs)


class CoxPH(_Estimator):
    """Cox proportional hazards regression of cancellation on covariates (Cox 1972).

    Options in the constructor, data in :meth:`fit` (like lifelines' ``CoxPHFitter``):

    >>> cox = CoxPH(ties="breslow").fit(subs, ["plan", "price"])   # doctest: +SKIP
    >>> cox.params_, cox.standard_errors_                          # doctest: +SKIP

    Parameters
    ----------
    ties : {"breslow", "efron"}
    level : float, default 0.95
        Confidence level of the hazard-ratio intervals.
    engine : {"auto", "statsmodels", "numpy"}
        See :func:`cox_ph`.

    Attributes
    ----------
    params_ : pandas.Series
        Coefficients (log hazard ratios) by covariate.
    standard_errors_ : pandas.Series
    hazard_ratios_ : pandas.Series
    confidence_intervals_ : pandas.DataFrame
        ``lower`` / ``upper`` of the hazard ratio.
    covariance_ : pandas.DataFrame
    log_likelihood_ : float
        Partial log-likelihood at the estimate.
    n_rows_, n_customers_, n_events_ : int
    table_ : pandas.DataFrame
        ``coef``, ``hazard_ratio``, ``std_error``, ``z``, ``p_value``, ``lower``, ``upper``.
    result_ : CoxResult
        Everything above in one object (what :func:`cox_ph` returns).
    """

    def __init__(self, ties: str = "breslow", level: float = 0.95, engine: str = "auto") -> None:
        _check_cox_options(ties, level, engine)
        self.ties = ties
        self.level = level
        self.engine = engine

    def fit(
        self, data: pd.DataFrame, covariates: Sequence[str] | str, **columns: Unpack[_CoxColumns]
    ) -> CoxPH:
        """Maximise the partial likelihood; arguments as for :func:`cox_ph`. Returns ``self``."""
        columns = forwarded("CoxPH.fit", columns, _CoxColumns)
        res = _fit_cox(data, covariates, columns, self.ties, self.level, self.engine)
        self.result_ = res
        self.table_ = res.table
        self.params_ = res.table["coef"].rename("coef")
        self.standard_errors_ = res.table["std_error"].rename("std_error")
        self.hazard_ratios_ = res.table["hazard_ratio"].rename("hazard_ratio")
        self.confidence_intervals_ = res.table[["lower", "upper"]]
        self.covariance_ = res.covariance
        self.log_likelihood_ = res.log_likelihood
        self.n_rows_, self.n_customers_, self.n_events_ = res.n_rows, res.n_customers, res.n_events
        self.engine_ = res.engine
        return self

    def predict_partial_hazard(self, data: pd.DataFrame) -> pd.Series:
        """exp(x'beta) per row (:meth:`CoxResult.predict_partial_hazard`)."""
        return self._fitted().predict_partial_hazard(data)
