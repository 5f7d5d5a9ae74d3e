"""Time units shared by summaries, models and value calculations.

A model is fitted in one time unit. Months are calendar-exact: 365.25 / 12 days, never 30.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from .errors import ParameterError

__all__ = [
    "DAYS_PER_UNIT",
    "UNIT_NAMES",
    "convert_duration",
    "normalize_unit",
    "to_timestamp",
]

DAYS_PER_UNIT: dict[str, float] = {
    "D": 1.0,
    "W": 7.0,
    "M": 365.25 / 12.0,
    "Q": 365.25 / 4.0,
    "Y": 365.25,
}

UNIT_NAMES: dict[str, str] = {"D": "day", "W": "week", "M": "month", "Q": "quarter", "Y": "year"}

_ALIASES = {
    "d": "D", "day": "D", "days": "D", "daily": "D",
    "w": "W", "week": "W", "weeks": "W", "weekly": "W",
    "m": "M", "me": "M", "ms": "M", "month": "M", "months": "M", "monthly": "M",
    "q": "Q", "qe": "Q", "qs": "Q", "quarter": "Q", "quarters": "Q", "quarterly": "Q",
    "y": "Y", "a": "Y", "ye": "Y", "ys": "Y", "year": "Y", "years": "Y", "yearly": "Y", "annual": "Y",
}


def normalize_unit(unit: str) -> str:
    """Return the canonical one-letter unit code (``D``, ``W``, ``M``, ``Q``, ``Y``).

    Parameters
    ----------
    unit : str
        A unit code or name, case-insensitive: ``"D"``, ``"week"``, ``"months"``, ...

    Raises
    ------
    ParameterError
        If the unit is not one of the supported ones.
    """
    if isinstance(unit, str):
        key = unit.strip()
        if key in DAYS_PER_UNIT:
            return key
        code = _ALIASES.get(key.lower())
        if code is not None:
            return code
    raise ParameterError(
        f"unknown time unit {unit!r}: use one of 'D' (day), 'W' (week), 'M' (month), "
        "'Q' (quarter) or 'Y' (year)"
    )


def convert_duration(value: float, from_unit: str, to_unit: str) -> float:
    """Convert a duration between units using calendar-exact lengths (a month is 365.25/12 days)."""
    return value * DAYS_PER_UNIT[normalize_unit(from_unit)] / DAYS_PER_UNIT[normalize_unit(to_unit)]


def to_timestamp(value: Any, name: str, *, aware: str = "reject", zone: str | None = None
                 ) -> pd.Timestamp:
    """A user's date argument (``observation_end``, ``calibration_end``...) as a naive Timestamp.

    Parameters
    ----------
    value : date-like
        Anything ``pandas.Timestamp`` accepts; a ``pandas.Period`` means its last day.
    name : str
        Argument name, for the message.
    aware : {"reject", "convert"}, default "reject"
        What to do with a time-zone-aware value: refuse it (summaries work on naive times), or
        convert it to ``zone`` (default UTC) wall-clock time and drop the zone (the loader).
    zone : str, optional
        Zone for ``aware="convert"``.

    Raises
    ------
    ParameterError
        Not a date, or aware while ``aware="reject"``.
    """
    if isinstance(value, pd.Period):  # a whole period: up to and including its last day
        value = value.end_time.normalize()
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{name}={value!r} is not a date or timestamp") from None
    if pd.isna(ts):
        raise ParameterError(f"{name}={value!r} is not a date or timestamp")
    if ts.tzinfo is not None:
        if aware == "reject":
            raise ParameterError(
                f"{name}={value!r} has a time zone; transactions are tz-naive, pass a naive "
                "date (e.g. ts.tz_localize(None))"
            )
        ts = ts.tz_convert(zone or "UTC").tz_localize(None)
    return ts.floor("us")  # DuckDB timestamps have microsecond resolution
