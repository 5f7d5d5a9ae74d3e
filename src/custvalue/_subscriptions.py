"""Subscription records and cohort survivor tables -> per-customer renewal data.

The shifted-beta-geometric model (:class:`custvalue.models.ShiftedBetaGeoModel`, Fader & Hardie
2007) and the survival functions in :mod:`custvalue.survival` need, per customer, the number of
renewal periods observed (``T``) and whether the customer cancelled (``churned``). This module
builds that table from subscription records (start, end or empty while active) and from the
published form of retention data, a cohort survivor table. Re-exported from
:mod:`custvalue.summary`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ._time import DAYS_PER_UNIT, UNIT_NAMES, normalize_unit
from .errors import DataValidationError, ParameterError

__all__ = ["subscriptions", "survivors_to_customers"]

_PERIOD_ALIAS = {"D": "D", "W": "W", "M": "M", "Q": "Q", "Y": "Y"}


def _examples(values: Any, k: int = 5) -> str:
    return ", ".join(repr(v) for v in list(values)[:k])


def _to_datetime(series: pd.Series, name: str) -> pd.Series:
    try:
        out = pd.to_datetime(series)
    except (TypeError, ValueError) as exc:
        raise DataValidationError(
            f"column {name!r} could not be read as dates ({exc}); pass datetimes or ISO strings"
        ) from exc
    if getattr(out.dt, "tz", None) is not None:
        out = out.dt.tz_convert(None)
    return out.astype("datetime64[ns]")


def subscriptions(
    records: pd.DataFrame,
    *,
    customer_col: str = "customer_id",
    start_col: str = "start",
    end_col: str = "end",
    period: str = "M",
    observation_end: Any = None,
    plan_col: str | None = None,
    price_col: str | None = None,
    multiple: str = "error",
) -> pd.DataFrame:
    """Per-customer renewal table from subscription records.

    Each record is one subscription: a start date and an end date (empty / NaT while the
    subscription is active). The contract period has the length of ``period``
    (calendar-exact: a month is 365.25/12 days, a week 7 days).

    * A cancelled customer paid for ``T = ceil((end - start) / period)`` periods (at least 1)
      and has ``churned = True``: they did not renew at the end of period ``T``.
    * An active customer has renewed ``T = floor((observation_end - start) / period)`` times
      and has ``churned = False``.

    Dates are whole days while a month is 30.44 days, so one day of slack absorbs rounding: an
    end date up to one day past a period boundary counts as the end of that period (half a
    day for daily periods).

    This is the data layout of Fader & Hardie (2007), "How to Project Customer Retention",
    fitted by :class:`custvalue.models.ShiftedBetaGeoModel`.

    Parameters
    ----------
    records : pandas.DataFrame
        One row per subscription. Not modified.
    customer_col, start_col, end_col : str
        Column names of the customer id, start date and end date (NaT / empty = active).
    period : str, default "M"
        Contract period: ``"D"``, ``"W"``, ``"M"``, ``"Q"`` or ``"Y"``.
    observation_end : date-like, optional
        End of the observation window. Default: the latest start or end date in the records.
    plan_col, price_col : str, optional
        Columns copied to the output as ``plan`` and ``price`` (price per period).
    multiple : {"error", "first", "last"}, default "error"
        What to do when a customer has several subscriptions: raise, or keep the earliest /
        latest by start date.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``customer_id`` with ``cohort`` (the start period, e.g. ``"2022-07"``),
        ``start``, ``end``, ``T``, ``churned`` (+ ``plan``, ``price``). ``attrs["freq"]`` holds
        the period code and ``attrs["observation_end"]`` the window end.

    Raises
    ------
    DataValidationError
        Missing columns or start dates, an end before the start (negative tenure), a
        cancellation after the observation end, a start after it, or duplicate customers
        with ``multiple="error"``.
    """
    if not isinstance(records, pd.DataFrame):
        raise DataValidationError(
            f"subscriptions expects a pandas DataFrame of subscription records; got {type(records).__name__}"
        )
    unit = normalize_unit(period)
    if multiple not in ("error", "first", "last"):
        raise ParameterError(f"multiple={multiple!r}: use 'error', 'first' or 'last'")
    needed = [customer_col, start_col, end_col]
    for extra in (plan_col, price_col):
        if extra is not None:
            needed.append(extra)
    missing = [c for c in needed if c not in records.columns]
    if missing:
        raise DataValidationError(
            f"subscription records need columns {needed}; missing {missing} (the frame has "
            f"{list(records.columns)[:12]}). Pass customer_col=, start_col=, end_col= to name them"
        )
    n_in = len(records)
    if n_in == 0:
        raise DataValidationError("subscription records are empty (0 rows)")
    ids = records[customer_col]
    if ids.isna().any():
        raise DataValidationError(
            f"column {customer_col!r} has {int(ids.isna().sum())} missing customer ids; drop those rows"
        )
    start = _to_datetime(records[start_col], start_col)
    end = _to_datetime(records[end_col], end_col)
    no_start = start.isna().to_numpy()
    if no_start.any():
        raise DataValidationError(
            f"column {start_col!r} is empty for {int(no_start.sum())} of {n_in} subscriptions "
            f"(customers {_examples(ids[no_start])}); every subscription needs a start date"
        )
    if observation_end is None:
        obs = max(start.max(), end.max()) if end.notna().any() else start.max()
    else:
        try:
            obs = pd.Timestamp(observation_end)
        except (TypeError, ValueError) as exc:
            raise ParameterError(f"observation_end={observation_end!r} is not a date") from exc
        if obs.tzinfo is not None:
            obs = obs.tz_convert(None)
    obs = pd.Timestamp(obs)
    s_ns = start.to_numpy(dtype="datetime64[ns]")
    e_ns = end.to_numpy(dtype="datetime64[ns]")
    ended = ~np.isnat(e_ns)
    negative = ended & (e_ns < s_ns)
    if negative.any():
        raise DataValidationError(
            f"{int(negative.sum())} of {n_in} subscriptions end before they start (negative "
            f"tenure; customers {_examples(ids[negative])}, e.g. start "
            f"{pd.Timestamp(s_ns[negative][0]).date()} end {pd.Timestamp(e_ns[negative][0]).date()}); "
            f"check that {start_col!r} and {end_col!r} are not swapped"
        )
    late_end = ended & (e_ns > np.datetime64(obs.to_datetime64(), "ns"))
    if late_end.any():
        raise DataValidationError(
            f"{int(late_end.sum())} of {n_in} subscriptions were cancelled after the observation "
            f"end {obs.date()} (customers {_examples(ids[late_end])}, e.g. end "
            f"{pd.Timestamp(e_ns[late_end][0]).date()}); a churn cannot be observed after the "
            "window closes: set observation_end later, or blank the end dates of customers "
            "still active at observation_end"
        )
    late_start = s_ns > np.datetime64(obs.to_datetime64(), "ns")
    if late_start.any():
        raise DataValidationError(
            f"{int(late_start.sum())} of {n_in} subscriptions start after the observation end "
            f"{obs.date()} (customers {_examples(ids[late_start])}); drop them or move "
            "observation_end"
        )

    frame = pd.DataFrame({"customer_id": ids.to_numpy(), "start": start.to_numpy(), "end": end.to_numpy()})
    if plan_col is not None:
        frame["plan"] = records[plan_col].to_numpy()
    if price_col is not None:
        price = pd.to_numeric(records[price_col], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(price) | (price < 0)
        if bad.any():
            raise DataValidationError(
                f"column {price_col!r} has {int(bad.sum())} missing, non-numeric or negative prices "
                f"(customers {_examples(ids[bad])}); the price per period must be a number >= 0"
            )
        frame["price"] = price
    dup = frame["customer_id"].duplicated(keep=False).to_numpy()
    if dup.any():
        if multiple == "error":
            raise DataValidationError(
                f"{int(frame['customer_id'][dup].nunique())} customers have more than one "
                f"subscription (e.g. {_examples(frame['customer_id'][dup].unique())}); the sBG "
                "model needs one contract spell per customer: pass multiple='first' (earliest "
                "start) or multiple='last' (latest start), or give each spell its own id"
            )
        frame = frame.sort_values(["customer_id", "start"], kind="stable")
        frame = frame.drop_duplicates("customer_id", keep=multiple)

    days_per = DAYS_PER_UNIT[unit]
    s = frame["start"].to_numpy(dtype="datetime64[ns]")
    e = frame["end"].to_numpy(dtype="datetime64[ns]")
    churned = ~np.isnat(e)
    stop = np.where(churned, e, np.datetime64(obs.to_datetime64(), "ns"))
    days = (stop - s).astype("timedelta64[ns]").astype(np.int64) / 86_400e9
    slack = min(1.0, 0.5 * days_per) / days_per  # one day of date rounding (half a day for 'D')
    elapsed = days / days_per
    T = np.where(
        churned,
        np.maximum(np.ceil(elapsed - slack), 1.0),
        np.floor(elapsed + 1e-9),
    ).astype(np.int64)
    cohort = pd.Series(frame["start"].to_numpy()).dt.to_period(_PERIOD_ALIAS[unit]).astype(str)
    out = pd.DataFrame(
        {
            "cohort": cohort.to_numpy(),
            "start": frame["start"].to_numpy(),
            "end": frame["end"].to_numpy(),
            "T": T,
            "churned": churned,
        },
        index=pd.Index(frame["customer_id"].to_numpy(), name="customer_id"),
    )
    for extra in ("plan", "price"):
        if extra in frame.columns:
            out[extra] = frame[extra].to_numpy()
    out.attrs["freq"] = unit
    out.attrs["observation_end"] = obs
    out.attrs["period_name"] = UNIT_NAMES[unit]
    return out


def _survivor_rows(label: Any, counts: np.ndarray) -> pd.DataFrame:
    vals = np.asarray(counts, dtype=float)
    finite = np.isfinite(vals)
    if not finite.any():
        raise DataValidationError(f"cohort {label!r} has no survivor counts")
    last = int(np.nonzero(finite)[0].max())
    if not finite[: last + 1].all():
        raise DataValidationError(
            f"cohort {label!r} has missing survivor counts inside the table (positions "
            f"{np.nonzero(~finite[: last + 1])[0].tolist()}); only trailing cells may be empty "
            "(younger cohorts have fewer periods)"
        )
    vals = vals[: last + 1]
    if (vals < 0).any():
        raise DataValidationError(f"cohort {label!r} has negative survivor counts: {vals.tolist()}")
    drops = vals[:-1] - vals[1:]
    if (drops < -1e-9).any():
        at = int(np.nonzero(drops < -1e-9)[0][0]) + 1
        raise DataValidationError(
            f"cohort {label!r}: survivors increase from period {at - 1} to {at} "
            f"({vals[at - 1]:g} -> {vals[at]:g}); a survivor table counts the customers still "
            "active at the start of each period, so it can only fall"
        )
    n = vals.size - 1
    T = np.concatenate([np.arange(1, n + 1), [n]])
    churned = np.concatenate([np.ones(n, dtype=bool), [False]])
    weight = np.concatenate([np.clip(drops, 0.0, None), [vals[-1]]])
    return pd.DataFrame({"cohort": label, "T": T, "churned": churned, "weight": weight})


def survivors_to_customers(counts: Any) -> pd.DataFrame:
    """Cohort survivor table -> weighted per-customer rows for the sBG model.

    ``counts[t]`` is the number of customers of a cohort still active after ``t`` periods
    (``t = 0``: everyone acquired), as in the tables of Fader & Hardie (2007, Table 1). The
    ``counts[t-1] - counts[t]`` customers lost in period ``t`` become one row ``T = t,
    churned = True``; the survivors at the last period ``n`` become ``T = n, churned = False``.

    Parameters
    ----------
    counts : sequence, pandas.Series, dict or pandas.DataFrame
        One cohort (a sequence or Series, whose name becomes the cohort label), several cohorts
        as a dict ``{label: sequence}``, or a DataFrame with one row per cohort (index = label)
        and one column per period ``0, 1, ...``; younger cohorts may end in empty cells.

    Returns
    -------
    pandas.DataFrame
        Columns ``cohort``, ``T``, ``churned``, ``weight`` (rows with zero weight dropped),
        ready for ``ShiftedBetaGeoModel().fit(...)`` (add ``by_cohort=True`` for separate
        parameters per cohort).
    """
    parts: list[pd.DataFrame] = []
    if isinstance(counts, pd.DataFrame):
        for label, row in counts.iterrows():  # one iteration per cohort, not per customer
            parts.append(_survivor_rows(label, pd.to_numeric(row, errors="coerce").to_numpy()))
    elif isinstance(counts, Mapping):
        for label, seq in counts.items():
            parts.append(_survivor_rows(label, np.asarray(seq, dtype=float)))
    elif isinstance(counts, pd.Series):
        parts.append(_survivor_rows(counts.name if counts.name is not None else 0, counts.to_numpy()))
    elif isinstance(counts, Sequence | np.ndarray) and not isinstance(counts, str | bytes):
        try:
            arr = np.asarray(counts, dtype=float)
        except (TypeError, ValueError) as exc:
            raise DataValidationError(f"survivor counts must be numbers ({exc})") from exc
        if arr.ndim != 1:
            raise DataValidationError(
                "survivors_to_customers takes one cohort as a 1-D sequence; pass several cohorts "
                "as a DataFrame (one row per cohort) or a dict"
            )
        parts.append(_survivor_rows(0, arr))
    else:
        raise DataValidationError(
            f"survivors_to_customers expects a sequence, Series, dict or DataFrame; got {type(counts).__name__}"
        )
    for p in parts:
        if len(p) == 1 and p["T"].iloc[0] == 0:
            raise DataValidationError(
                f"cohort {p['cohort'].iloc[0]!r} has only the initial count; a survivor table "
                "needs at least two periods (t = 0 and t = 1)"
            )
    out = pd.concat(parts, ignore_index=True)
    return out.loc[out["weight"] > 0].reset_index(drop=True)
