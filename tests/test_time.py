"""Time units: calendar-exact lengths and clear errors."""

from __future__ import annotations

import pytest

from custvalue._time import DAYS_PER_UNIT, convert_duration, normalize_unit
from custvalue.errors import CustvalueError, ParameterError


@pytest.mark.parametrize(
    ("alias", "code"),
    [("D", "D"), ("day", "D"), ("Weeks", "W"), ("month", "M"), ("ME", "M"), ("quarterly", "Q"),
     ("Y", "Y"), ("annual", "Y")],
)
def test_aliases(alias, code):
    assert normalize_unit(alias) == code


def test_months_are_calendar_exact():
    # 12 months are exactly one Julian year of 365.25 days, never 360.
    assert DAYS_PER_UNIT["M"] * 12 == pytest.approx(365.25)
    assert convert_duration(12, "M", "D") == pytest.approx(365.25)
    assert convert_duration(1, "Y", "W") == pytest.approx(365.25 / 7)


@pytest.mark.parametrize("bad", ["fortnight", "", None, 3])
def test_unknown_unit_is_a_clear_error(bad):
    with pytest.raises(ParameterError, match="unknown time unit") as info:
        normalize_unit(bad)
    assert isinstance(info.value, CustvalueError) and isinstance(info.value, ValueError)


def test_to_timestamp_one_parser_for_date_arguments():
    import pandas as pd

    from custvalue._time import to_timestamp

    assert to_timestamp("2020-03-01", "observation_end") == pd.Timestamp("2020-03-01")
    assert to_timestamp(pd.Period("2020-02", "M"), "x") == pd.Timestamp("2020-02-29")
    aware = pd.Timestamp("2020-01-01 10:00", tz="Europe/Berlin")
    assert to_timestamp(aware, "x", aware="convert") == pd.Timestamp("2020-01-01 09:00")
    assert to_timestamp(aware, "x", aware="convert", zone="America/New_York") == pd.Timestamp(
        "2020-01-01 04:00")
    with pytest.raises(ParameterError, match="has a time zone"):
        to_timestamp(aware, "x")
    with pytest.raises(ParameterError, match="x='soon' is not a date"):
        to_timestamp("soon", "x")
