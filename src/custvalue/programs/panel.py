"""Customer x period panels built from a transaction log (vectorised, one pass).

A :class:`Panel` holds each outcome as a dense ``(customers, periods)`` array: the customer is
observed from the period of her first purchase (or ``start``) to the last complete period
before the observation end. Cells before entry are NaN.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import DataValidationError, ParameterError

__all__ = ["OUTCOMES", "Panel", "build_panel", "period_codes", "rfm_covariates"]

#: Outcomes per customer and period.
OUTCOMES: tuple[str, ...] = ("purchases", "revenue", "active")

_NEVER = np.iinfo(np.int64).max // 4


def period_codes(dates: pd.Series | np.ndarray | pd.DatetimeIndex, freq: str) -> np.ndarray:
    """Period ordinals (``pandas.Period.ordinal``) of dates at frequency ``freq``."""
    idx = pd.DatetimeIndex(dates)
    return idx.to_period(freq).asi8.astype(np.int64)


def _freq(freq: str) -> str:
    key = str(freq).strip().upper()
    aliases = {"M": "M", "MS": "M", "ME": "M", "MONTH": "M", "W": "W", "WEEK": "W",
               "Q": "Q", "QUARTER": "Q", "QS": "Q", "QE": "Q"}
    if key not in aliases:
        raise ParameterError(f"freq={freq!r}: use 'M' (months), 'W' (weeks) or 'Q' (quarters)")
    return aliases[key]


@dataclass(frozen=True)
class Panel:
    """Dense customer x period outcomes.

    Attributes
    ----------
    customers : pandas.Index
        Customer ids, one per row.
    periods : pandas.PeriodIndex
        The periods, one per column (complete periods only).
    outcomes : dict of str -> numpy.ndarray
        ``purchases`` (transactions), ``revenue`` (sum of amounts), ``active`` (0/1), each of
        shape ``(n_customers, n_periods)``, NaN before the customer's entry period.
    entry : numpy.ndarray
        Column of each customer's first observed period.
    freq : str
        Period frequency.
    """

    customers: pd.Index
    periods: pd.PeriodIndex
    outcomes: dict[str, np.ndarray]
    entry: np.ndarray
    freq: str

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.customers), len(self.periods)

    def column_of(self, dates: pd.Series | np.ndarray) -> np.ndarray:
        """Column index of each date's period (may be < 0 or >= n_periods when outside)."""
        return period_codes(dates, self.freq) - int(self.periods[0].ordinal)


def build_panel(transactions: pd.DataFrame, *, freq: str = "M", start: object = None,
                observation_end: object = None) -> Panel:
    """Build the customer x period panel of purchases, revenue and activity.

    Parameters
    ----------
    transactions : pandas.DataFrame
        Canonical transactions (``customer_id, date, amount``) as returned by
        :func:`custvalue.data.load_transactions`.
    freq : {"M", "W", "Q"}
        Period length.
    start : date-like, optional
        First period of the panel (default: the period of the first transaction). Customers
        are observed from ``max(start, first purchase)``.
    observation_end : date-like, optional
        Last observed day (default ``transactions.attrs["observation_end"]`` or the last
        transaction date). A last period that ends after it is incomplete and dropped.

    Returns
    -------
    Panel
    """
    f = _freq(freq)
    missing = [c for c in ("customer_id", "date", "amount") if c not in transactions.columns]
    if missing:
        raise DataValidationError(
            f"transactions lack column(s) {missing} (have {list(transactions.columns)}): pass "
            "the frame returned by custvalue.load_transactions")
    if len(transactions) == 0:
        raise DataValidationError("transactions are empty: nothing to build a panel from")
    dates = pd.DatetimeIndex(transactions["date"])
    end = observation_end if observation_end is not None else transactions.attrs.get(
        "observation_end", dates.max())
    end_ts = pd.Timestamp(end).normalize()
    last = pd.Period(end_ts, f)
    if (end_ts + pd.Timedelta(days=1)).to_period(f) == last:
        last = last - 1  # incomplete last period
    first = pd.Period(dates.min(), f) if start is None else pd.Period(pd.Timestamp(start), f)
    n_periods = int(last.ordinal - first.ordinal + 1)
    if n_periods < 2:
        raise DataValidationError(
            f"the data cover {max(n_periods, 0)} complete {f}-period(s) "
            f"({first}..{last}): a before/after comparison needs at least two")
    cust_codes, customers = pd.factorize(transactions["customer_id"], sort=True)
    col = period_codes(dates, f) - int(first.ordinal)
    n = len(customers)
    entry = np.full(n, n_periods, dtype=np.int64)
    np.minimum.at(entry, cust_codes, np.clip(col, 0, n_periods))
    inside = (col >= 0) & (col < n_periods)
    flat = cust_codes[inside].astype(np.int64) * n_periods + col[inside]
    size = n * n_periods
    purchases = np.bincount(flat, minlength=size).astype(np.float64).reshape(n, n_periods)
    amount = transactions["amount"].to_numpy(dtype=np.float64)[inside]
    revenue = np.bincount(flat, weights=amount, minlength=size).reshape(n, n_periods)
    active = (purchases > 0).astype(np.float64)
    before = np.arange(n_periods)[None, :] < entry[:, None]
    for arr in (purchases, revenue, active):
        arr[before] = np.nan
    periods = pd.period_range(first, last, freq=f)
    return Panel(customers=pd.Index(customers, name="customer_id"), periods=periods,
                 outcomes={"purchases": purchases, "revenue": revenue, "active": active},
                 entry=entry, freq=f)


def rfm_covariates(panel: Panel, base: int, window: int = 3,
                   rows: np.ndarray | None = None) -> np.ndarray:
    """Pre-period behaviour of every customer as of column ``base`` (inclusive).

    Columns: constant, purchases in the base period, purchases in the ``window`` periods
    ending at ``base``, ``log1p`` of all purchases up to ``base``, periods since the last
    purchase (recency, capped at 12) and tenure (periods since entry, capped at 24). Customers
    not yet observed at ``base`` get zeros (they are never used in a cell that needs them).
    ``rows`` (a boolean mask or indices): only these customers, in that order.
    """
    y = panel.outcomes["purchases"][:, : base + 1]
    entry = panel.entry
    if rows is not None:
        y, entry = y[rows], entry[rows]
    y = np.nan_to_num(y, nan=0.0)
    n = y.shape[0]
    lo = max(0, base - window + 1)
    recent = y[:, lo:].sum(axis=1)
    total = y.sum(axis=1)
    bought = y > 0
    since_last = np.where(bought.any(axis=1), np.argmax(bought[:, ::-1], axis=1), 12)
    recency = np.minimum(since_last, 12).astype(np.float64)
    tenure = np.clip(base - entry, 0, 24).astype(np.float64)
    return np.column_stack([np.ones(n), y[:, -1], recent, np.log1p(total), recency, tenure])
