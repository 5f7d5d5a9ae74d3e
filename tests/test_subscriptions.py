"""subscriptions() and survivors_to_customers(): renewal tables for the sBG model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from custvalue._subscriptions import subscriptions, survivors_to_customers
from custvalue.errors import DataValidationError, ParameterError

OBS = pd.Timestamp("2023-06-20")


@pytest.fixture()
def records() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "cid": ["a", "b", "c", "d"],
            "begin": pd.to_datetime(["2023-01-01", "2023-01-15", "2023-03-10", "2023-06-01"]),
            "stop": pd.to_datetime(["2023-04-02", None, "2023-03-25", None]),
            "tier": ["basic", "pro", "basic", "pro"],
            "fee": [9.99, 19.99, 9.99, 19.99],
        }
    )


def _table(records, **kw):
    return subscriptions(
        records, customer_col="cid", start_col="begin", end_col="stop", observation_end=OBS, **kw
    )


def test_hand_computed_renewals(records):
    before = records.copy(deep=True)
    out = _table(records, plan_col="tier", price_col="fee")
    pd.testing.assert_frame_equal(records, before)  # the caller's frame is untouched
    assert list(out.index) == ["a", "b", "c", "d"]
    assert out.index.name == "customer_id"
    # a: Jan 1 -> Apr 2 = 91 days = 2.99 months -> paid 3 months, cancelled
    # b: Jan 15 -> Jun 20 (active) = 156 days = 5.13 months -> renewed 5 times
    # c: cancelled inside the first month -> T = 1
    # d: started 19 days before the window end -> no renewal yet
    assert out["T"].tolist() == [3, 5, 1, 0]
    assert out["churned"].tolist() == [True, False, True, False]
    assert out["cohort"].tolist() == ["2023-01", "2023-01", "2023-03", "2023-06"]
    assert out["plan"].tolist() == ["basic", "pro", "basic", "pro"]
    assert out["price"].tolist() == [9.99, 19.99, 9.99, 19.99]
    assert out.attrs["freq"] == "M"
    assert out.attrs["observation_end"] == OBS


def test_weekly_and_yearly_periods(records):
    weekly = _table(records, period="W")
    # a: 91 days = 13 weeks exactly; b: 156 days = 22.3 weeks -> 22 renewals
    assert weekly["T"].tolist()[:2] == [13, 22]
    assert weekly.attrs["freq"] == "W"
    yearly = _table(records, period="year")
    assert yearly["T"].tolist() == [1, 0, 1, 0]
    assert yearly["cohort"].tolist() == ["2023"] * 4


def test_matches_simulation_truth():
    from custvalue.datasets import simulate

    sim = simulate(5_000, seed=5, mode="subscription")
    table = subscriptions(sim.subscriptions, observation_end=sim.truth["observation_end"])
    truth = sim.customers.set_index("customer_id").loc[table.index]
    churned = table["churned"].to_numpy()
    # months paid by cancelled customers equal the simulated geometric lifetimes
    np.testing.assert_array_equal(table["T"].to_numpy()[churned], truth["lifetime_periods"].to_numpy()[churned])
    # active customers have renewed fewer times than their (unobserved) lifetime
    assert (truth["lifetime_periods"].to_numpy()[~churned] > table["T"].to_numpy()[~churned]).all()
    np.testing.assert_array_equal(~churned, truth["alive_at_end"].to_numpy())


def test_default_observation_end_is_latest_date(records):
    out = subscriptions(records, customer_col="cid", start_col="begin", end_col="stop")
    assert out.attrs["observation_end"] == pd.Timestamp("2023-06-01")


def test_multiple_subscriptions(records):
    dup = pd.concat([records, records.iloc[[0]].assign(begin=pd.Timestamp("2023-05-01"), stop=pd.NaT)])
    with pytest.raises(DataValidationError, match="more than one subscription"):
        _table(dup)
    first = _table(dup, multiple="first")
    last = _table(dup, multiple="last")
    assert first.loc["a", "churned"] and not last.loc["a", "churned"]
    assert len(first) == len(last) == 4
    with pytest.raises(ParameterError):
        _table(records, multiple="all")


def test_impossible_records_raise_clear_errors(records):
    swapped = records.copy()
    swapped.loc[0, "stop"] = pd.Timestamp("2022-12-01")
    with pytest.raises(DataValidationError, match="negative tenure"):
        _table(swapped)
    late = records.copy()
    late.loc[0, "stop"] = pd.Timestamp("2023-07-01")
    with pytest.raises(DataValidationError, match="cancelled after the observation end"):
        _table(late)
    future = records.copy()
    future.loc[3, "begin"] = pd.Timestamp("2023-08-01")
    with pytest.raises(DataValidationError, match="start after the observation end"):
        _table(future)
    nostart = records.copy()
    nostart.loc[1, "begin"] = pd.NaT
    with pytest.raises(DataValidationError, match="needs a start date"):
        _table(nostart)
    with pytest.raises(DataValidationError, match="missing"):
        subscriptions(records, observation_end=OBS)  # default column names are absent
    with pytest.raises(DataValidationError, match="price"):
        _table(records.assign(fee=[1.0, -2.0, 3.0, np.nan]), price_col="fee")
    with pytest.raises(ParameterError, match="unknown time unit"):
        _table(records, period="fortnight")


def test_survivors_to_customers_single_cohort():
    surv = [1000, 631, 468, 382]
    rows = survivors_to_customers(surv)
    assert rows["T"].tolist() == [1, 2, 3, 3]
    assert rows["churned"].tolist() == [True, True, True, False]
    assert rows["weight"].tolist() == [369, 163, 86, 382]
    assert rows["weight"].sum() == 1000
    named = survivors_to_customers(pd.Series(surv, name="regular"))
    assert (named["cohort"] == "regular").all()


def test_survivors_to_customers_multi_cohort_table():
    table = pd.DataFrame(
        [[1000, 800, 700, 650], [500, 450, 420, np.nan], [300, 300, np.nan, np.nan]],
        index=["2021", "2022", "2023"],
        columns=[0, 1, 2, 3],
    )
    rows = survivors_to_customers(table)
    assert rows.groupby("cohort")["weight"].sum().to_dict() == {"2021": 1000, "2022": 500, "2023": 300}
    y22 = rows[rows["cohort"] == "2022"]
    assert y22[~y22["churned"]]["T"].tolist() == [2]
    # zero-loss periods are dropped: cohort 2023 lost nobody in period 1
    y23 = rows[rows["cohort"] == "2023"]
    assert y23["churned"].tolist() == [False] and y23["T"].tolist() == [1]
    same = survivors_to_customers({"2021": [1000, 800, 700, 650]})
    pd.testing.assert_frame_equal(same, rows[rows["cohort"] == "2021"].reset_index(drop=True))


def test_survivor_table_errors():
    with pytest.raises(DataValidationError, match="can only fall"):
        survivors_to_customers([1000, 900, 950])
    with pytest.raises(DataValidationError, match="only trailing"):
        survivors_to_customers([1000, np.nan, 800])
    with pytest.raises(DataValidationError, match="negative"):
        survivors_to_customers([1000, -5])
    with pytest.raises(DataValidationError, match="at least two periods"):
        survivors_to_customers([1000])
    with pytest.raises(DataValidationError):
        survivors_to_customers("1000, 900")

_MONTH = 365.25 / 12


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 2_000), st.one_of(st.none(), st.integers(0, 2_000))),
        min_size=1,
        max_size=40,
    )
)
def test_renewal_counts_bracket_the_tenure(spells):
    origin = pd.Timestamp("2018-01-01")
    obs = origin + pd.Timedelta(days=4_100)
    start = [origin + pd.Timedelta(days=s) for s, _ in spells]
    end = [pd.NaT if d is None else origin + pd.Timedelta(days=s + d) for s, d in spells]
    recs = pd.DataFrame({"customer_id": range(len(spells)), "start": start, "end": end})
    out = subscriptions(recs, observation_end=obs)
    days = np.array([(obs - origin).days - s if d is None else d for s, d in spells], float)
    churned = np.array([d is not None for _, d in spells])
    T = out["T"].to_numpy()
    np.testing.assert_array_equal(out["churned"].to_numpy(), churned)
    assert (T >= 0).all() and (T[churned] >= 1).all()
    # a cancelled customer paid T periods: the tenure lies in ((T-1) months - 1 day, T months + 1 day]
    tc, dc = T[churned], days[churned]
    assert (dc <= tc * _MONTH + 1 + 1e-9).all()
    assert ((tc == 1) | (dc > (tc - 1) * _MONTH + 1 - 1e-9)).all()
    # an active customer renewed T times: T months have passed, T + 1 have not
    ta, da = T[~churned], days[~churned]
    assert (ta * _MONTH <= da + 1e-6).all() and (da < (ta + 1) * _MONTH).all()
