"""Tests for custvalue.summary: RFM summaries, calibration/holdout split, cohort tables.

Reference values come from lifetimes (``summary_data_from_transaction_data`` and
``calibration_and_holdout_data``) on CDNOW master and on simulated logs, from hand-computed
cases, and from pandas ``Period`` arithmetic for the calendar units lifetimes cannot handle
under pandas 3.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import lifetimes
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lifetimes.utils import calibration_and_holdout_data, summary_data_from_transaction_data

from custvalue.errors import CustvalueError, DataValidationError, ParameterError
from custvalue.summary import calibration_holdout, cohort_table, pivot_cohorts, rfm_summary

LT_COLS = ["frequency", "recency", "T", "monetary_value"]


# ---------------------------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    """CDNOW master as shipped with lifetimes, read directly (not via custvalue.datasets)."""
    path = os.path.join(os.path.dirname(lifetimes.__file__), "datasets", "CDNOW_master.txt")
    df = pd.read_csv(
        path,
        sep=r"\s+",
        header=0,
        names=["customer_id", "date", "quantity", "amount"],
        dtype={"date": str},
    )
    df["date"] = pd.to_datetime(df["date"], format="%Y%m%d")
    return df


def make_log(n_customers: int = 400, seed: int = 7, with_times: bool = False) -> pd.DataFrame:
    """Small random transaction log with same-day repeats, regions and channels."""
    rng = np.random.default_rng(seed)
    n_tx = rng.geometric(0.3, n_customers)
    cust = np.repeat(np.arange(n_customers), n_tx)
    first = rng.integers(0, 200, n_customers)
    offset = np.where(
        rng.random(cust.size) < 0.15, 0, rng.integers(0, 400, cust.size)
    )  # 15 % on the first day: same-day duplicates
    days = first[cust] + offset
    dates = pd.Timestamp("2021-03-01") + pd.to_timedelta(days, unit="D")
    if with_times:
        dates = dates + pd.to_timedelta(rng.integers(0, 86_400, cust.size), unit="s")
    df = pd.DataFrame(
        {
            "customer_id": cust + 100,
            "date": dates,
            "amount": np.round(rng.gamma(2.0, 20.0, cust.size), 2),
            "region": rng.choice(["north", "south", "east"], cust.size),
            "channel": rng.choice(["web", "store"], cust.size),
        }
    )
    return df.sample(frac=1.0, random_state=seed).reset_index(drop=True)


@pytest.fixture(scope="module")
def sim() -> pd.DataFrame:
    return make_log()


def assert_matches_lifetimes(ours: pd.DataFrame, theirs: pd.DataFrame, cols=LT_COLS) -> None:
    assert list(ours.index) == list(theirs.index)
    for col in cols:
        np.testing.assert_allclose(
            ours[col].to_numpy(), theirs[col].to_numpy(), rtol=1e-10, atol=1e-9, err_msg=col
        )


# ---------------------------------------------------------------------------------------------
# equality with lifetimes
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("freq", ["D", "W"])
def test_rfm_matches_lifetimes_on_cdnow(cdnow: pd.DataFrame, freq: str) -> None:
    ours = rfm_summary(cdnow, freq=freq)
    theirs = summary_data_from_transaction_data(
        cdnow, "customer_id", "date", monetary_value_col="amount", freq=freq
    )
    assert len(ours) == 23_570  # CDNOW master cohort size (Fader, Hardie & Lee 2005)
    assert_matches_lifetimes(ours, theirs)
    assert ours.index.name == "customer_id"
    assert ours.attrs["freq"] == freq
    assert pd.Timestamp(ours.attrs["observation_end"]) == pd.Timestamp("1998-06-30")


@pytest.mark.parametrize("freq", ["D", "W"])
@pytest.mark.parametrize("observation_end", [None, "2022-01-02"])  # 2022-01-02 is a Sunday
def test_rfm_matches_lifetimes_on_simulated(sim: pd.DataFrame, freq: str, observation_end) -> None:
    ours = rfm_summary(sim, freq=freq, observation_end=observation_end)
    theirs = summary_data_from_transaction_data(
        sim,
        "customer_id",
        "date",
        monetary_value_col="amount",
        freq=freq,
        observation_period_end=observation_end,
    )
    assert_matches_lifetimes(ours, theirs)


@pytest.mark.parametrize("freq", ["D", "W"])
def test_calibration_holdout_matches_lifetimes_on_cdnow(cdnow: pd.DataFrame, freq: str) -> None:
    ours = calibration_holdout(
        cdnow, calibration_end="1997-09-30", observation_end="1998-06-30", freq=freq
    )
    theirs = calibration_and_holdout_data(
        cdnow,
        "customer_id",
        "date",
        calibration_period_end="1997-09-30",
        observation_period_end="1998-06-30",
        monetary_value_col="amount",
        freq=freq,
    )
    theirs = theirs.rename(columns=lambda c: c.removesuffix("_cal"))
    assert_matches_lifetimes(ours, theirs, [*LT_COLS, "frequency_holdout", "duration_holdout"])
    assert ours.attrs["freq"] == freq
    assert pd.Timestamp(ours.attrs["calibration_end"]) == pd.Timestamp("1997-09-30")


@pytest.mark.slow
@pytest.mark.parametrize("freq", ["D", "W"])
def test_monetary_value_holdout_is_mean_of_period_merged_purchases(
    cdnow: pd.DataFrame, freq: str
) -> None:
    """lifetimes averages raw holdout rows; we average purchases merged per period, like its own
    calibration monetary_value. Reference: lifetimes on a log pre-merged per period."""

    def merge(part: pd.DataFrame) -> pd.DataFrame:
        return part.groupby(
            ["customer_id", part["date"].dt.to_period(freq).rename("p")], as_index=False
        ).agg(date=("date", "min"), amount=("amount", "sum"))

    is_cal = cdnow["date"] <= "1997-09-30"  # merge each side of the split on its own
    merged = pd.concat([merge(cdnow[is_cal]), merge(cdnow[~is_cal])], ignore_index=True)
    theirs = calibration_and_holdout_data(
        merged,
        "customer_id",
        "date",
        calibration_period_end="1997-09-30",
        observation_period_end="1998-06-30",
        monetary_value_col="amount",
        freq=freq,
    )
    ours = calibration_holdout(
        cdnow, calibration_end="1997-09-30", observation_end="1998-06-30", freq=freq
    )
    assert_matches_lifetimes(ours, theirs, ["monetary_value_holdout"])
    # and it differs from lifetimes on the raw log exactly where a holdout period has >1 row
    raw = calibration_and_holdout_data(
        cdnow,
        "customer_id",
        "date",
        calibration_period_end="1997-09-30",
        observation_period_end="1998-06-30",
        monetary_value_col="amount",
        freq=freq,
    )
    hold = cdnow[(cdnow["date"] > "1997-09-30") & (cdnow["date"] <= "1998-06-30")]
    multi = hold.groupby(["customer_id", hold["date"].dt.to_period(freq)]).size()
    affected = set(multi[multi > 1].index.get_level_values(0))
    differs = ~np.isclose(ours["monetary_value_holdout"], raw["monetary_value_holdout"])
    assert set(ours.index[differs]) <= affected
    assert differs.sum() > 0


def test_calibration_holdout_matches_lifetimes_on_simulated(sim: pd.DataFrame) -> None:
    ours = calibration_holdout(sim, calibration_end="2021-12-31", freq="D")
    theirs = calibration_and_holdout_data(
        sim,
        "customer_id",
        "date",
        calibration_period_end="2021-12-31",
        monetary_value_col="amount",
        freq="D",
    ).rename(columns=lambda c: c.removesuffix("_cal"))
    assert_matches_lifetimes(ours, theirs, [*LT_COLS, "frequency_holdout", "duration_holdout"])
    assert ours.index.isin(sim["customer_id"]).all()
    first = sim.groupby("customer_id")["date"].min()
    assert set(ours.index) == set(first[first <= "2021-12-31"].index)


def test_lifetimes_cannot_do_calendar_months_under_pandas3(sim: pd.DataFrame) -> None:
    """Documents why M/Q/Y are tested against hand-computed and Period-based references."""
    with pytest.raises(ValueError, match="Unit M is not supported"):
        summary_data_from_transaction_data(sim, "customer_id", "date", freq="M")


# ---------------------------------------------------------------------------------------------
# calendar periods, hand-computed
# ---------------------------------------------------------------------------------------------


def tx_frame(rows: list[tuple], **extra) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=["customer_id", "date", "amount"])
    df["date"] = pd.to_datetime(df["date"], format="ISO8601")
    for k, v in extra.items():
        df[k] = v
    return df


def test_monthly_hand_computed() -> None:
    tx = tx_frame(
        [
            ("a", "2020-01-31", 10.0),  # Jan (period 0)
            ("a", "2020-02-01", 5.0),  # Feb (1) ...
            ("a", "2020-02-29", 7.0),  # ... merged with the line above: 12
            ("a", "2020-05-15", 20.0),  # May (4)
            ("b", "2020-03-31", 3.0),  # Mar, only purchase
            ("b", "2020-07-01", 99.0),  # after observation end: excluded
        ]
    )
    out = rfm_summary(tx, freq="M", observation_end="2020-06-30")
    assert out.loc["a", ["frequency", "recency", "T"]].tolist() == [2.0, 4.0, 5.0]
    assert out.loc["a", "monetary_value"] == pytest.approx((12.0 + 20.0) / 2)
    assert out.loc["a", "total_spend"] == pytest.approx(42.0)
    assert out.loc["a", "n_orders"] == 4
    assert out.loc["b", ["frequency", "recency", "T", "monetary_value"]].tolist() == [0, 0, 3, 0]
    assert out.loc["b", "total_spend"] == pytest.approx(3.0)
    assert out.loc["b", "last_purchase"] == pd.Timestamp("2020-03-31")
    assert out.attrs["freq"] == "M"


@pytest.mark.parametrize(
    ("freq", "expected"),
    [
        # dates: 2019-12-30 (Mon), 2020-01-05 (Sun), 2020-01-06 (Mon), 2020-04-01, 2021-02-01
        ("D", (4, 399, 399)),  # 2020 is a leap year
        ("W", (3, 57, 57)),  # Mon..Sun of the same week merge; 2021-02-01 is 57 weeks on
        ("M", (3, 14, 14)),  # Dec, Jan(x2 merged), Apr, Feb 2021
        ("Q", (3, 5, 5)),  # 2019Q4, 2020Q1 (2 merged), 2020Q2, 2021Q1
        ("Y", (2, 2, 2)),  # 2019, 2020, 2021
    ],
)
def test_period_boundaries_hand_computed(freq: str, expected: tuple) -> None:
    tx = tx_frame(
        [
            ("c", "2019-12-30", 1.0),
            ("c", "2020-01-05", 2.0),
            ("c", "2020-01-06", 4.0),
            ("c", "2020-04-01", 8.0),
            ("c", "2021-02-01", 16.0),
        ]
    )
    out = rfm_summary(tx, freq=freq, observation_end="2021-02-01")
    assert tuple(out.loc["c", ["frequency", "recency", "T"]]) == expected
    # the repeat purchases hold everything except the first period's merged amount
    first_period = {"D": 1.0, "W": 3.0, "M": 1.0, "Q": 1.0, "Y": 1.0}[freq]
    assert out.loc["c", "monetary_value"] == pytest.approx((31.0 - first_period) / expected[0])


@pytest.mark.parametrize("freq", ["M", "Q", "Y", "W"])
def test_calendar_units_match_pandas_periods(sim: pd.DataFrame, freq: str) -> None:
    """Independent reference: pandas Period ordinals (calendar-exact) + groupby."""
    obs = pd.Timestamp("2022-03-15")
    ours = rfm_summary(sim, freq=freq, observation_end=obs)
    tx = sim[sim["date"] <= obs]
    per = tx.assign(p=tx["date"].dt.to_period(freq).map(lambda p: p.ordinal))
    per = per.groupby(["customer_id", "p"])["amount"].sum().reset_index()
    g = per.groupby("customer_id")
    first_amount = per.loc[g["p"].idxmin(), ["customer_id", "amount"]].set_index("customer_id")
    ref = pd.DataFrame({"frequency": g.size() - 1, "recency": g["p"].max() - g["p"].min()})
    ref["T"] = obs.to_period(freq).ordinal - g["p"].min()
    repeat = g["amount"].sum() - first_amount["amount"]
    ref["monetary_value"] = (repeat / ref["frequency"]).where(ref["frequency"] > 0, 0.0)
    assert_matches_lifetimes(ours, ref.sort_index())


def test_observation_end_semantics() -> None:
    tx = tx_frame(
        [
            ("a", "2020-01-01 08:00", 1.0),
            ("a", "2020-01-10 09:00", 2.0),
            ("a", "2020-01-10 18:00", 4.0),
            ("a", "2020-01-11 00:00", 8.0),
        ]
    )
    # a bare date observes the whole day
    day = rfm_summary(tx, observation_end="2020-01-10")
    assert day.loc["a", "total_spend"] == 7.0
    assert day.loc["a", "n_orders"] == 3  # distinct timestamps
    assert day.loc["a", "last_purchase"] == pd.Timestamp("2020-01-10 18:00")
    # a timestamp observes up to that instant
    noon = rfm_summary(tx, observation_end="2020-01-10 12:00")
    assert noon.loc["a", "total_spend"] == 3.0
    assert noon.loc["a", ["frequency", "recency", "T"]].tolist() == [1.0, 9.0, 9.0]
    # a pandas Period observes up to and including its last day
    jan = rfm_summary(tx, observation_end=pd.Period("2020-01", freq="M"))
    assert jan.loc["a", "total_spend"] == 15.0
    # default: the last transaction timestamp
    full = rfm_summary(tx)
    assert pd.Timestamp(full.attrs["observation_end"]) == pd.Timestamp("2020-01-11")
    assert full.loc["a", ["frequency", "recency", "T", "total_spend"]].tolist() == [2, 10, 10, 15]


def test_mid_week_observation_end_excludes_later_days_unlike_lifetimes() -> None:
    """lifetimes keeps the whole week of observation_end (even days after it); we do not."""
    tx = tx_frame([("a", "2020-01-06", 1.0), ("a", "2020-01-13", 2.0), ("a", "2020-01-16", 4.0)])
    ours = rfm_summary(tx, freq="W", observation_end="2020-01-14")  # Tuesday
    assert ours.loc["a", ["frequency", "recency", "T", "total_spend"]].tolist() == [1, 1, 1, 3]
    assert ours.loc["a", "monetary_value"] == 2.0
    theirs = summary_data_from_transaction_data(
        tx, "customer_id", "date", "amount", observation_period_end="2020-01-14", freq="W"
    )
    assert theirs.loc["a", "monetary_value"] == 6.0  # includes the 16th, after the end


def test_order_column_counts_orders_and_merges_lines() -> None:
    tx = tx_frame(
        [
            ("a", "2020-01-01 10:00", 5.0),
            ("a", "2020-01-01 10:00", 6.0),  # same order, second line
            ("a", "2020-01-01 15:00", 1.0),  # second order the same day
            ("a", "2020-01-03 09:00", 2.0),
        ],
        order_id=["o1", "o1", "o2", "o3"],
    )
    out = rfm_summary(tx, order_col="order_id")
    assert out.loc["a", "n_orders"] == 3
    assert out.loc["a", "frequency"] == 1.0  # two purchase days
    assert out.loc["a", "monetary_value"] == 2.0
    assert out.loc["a", "total_spend"] == 14.0
    assert out.loc["a", "first_purchase"] == pd.Timestamp("2020-01-01 10:00")
    assert "order_id" not in out.columns  # the order column is never an attribute
    # the canonical order_id column is picked up without naming it
    pd.testing.assert_frame_equal(rfm_summary(tx), out)
    # lines without an order id: one order per timestamp
    tx.loc[[2, 3], "order_id"] = None
    assert rfm_summary(tx).loc["a", "n_orders"] == 3


def test_first_and_last_purchase_and_total_spend(sim: pd.DataFrame) -> None:
    out = rfm_summary(sim, freq="W", attributes=())
    g = sim.groupby("customer_id")
    pd.testing.assert_series_equal(
        out["first_purchase"], g["date"].min(), check_names=False, check_dtype=False
    )
    pd.testing.assert_series_equal(
        out["last_purchase"], g["date"].max(), check_names=False, check_dtype=False
    )
    np.testing.assert_allclose(out["total_spend"], g["amount"].sum())
    np.testing.assert_array_equal(out["n_orders"], g["date"].nunique())
    assert list(out.columns) == [
        "frequency",
        "recency",
        "T",
        "monetary_value",
        "first_purchase",
        "last_purchase",
        "n_orders",
        "total_spend",
    ]


# ---------------------------------------------------------------------------------------------
# attributes
# ---------------------------------------------------------------------------------------------


def test_attributes_take_first_purchase_value_with_deterministic_ties() -> None:
    tx = tx_frame(
        [
            ("a", "2020-01-02", 1.0),
            ("a", "2020-01-01", 1.0),
            ("a", "2020-01-01", 1.0),
            ("b", "2020-01-05", 1.0),
        ],
        region=["west", "south", "north", "east"],
        channel=["web", "store", "web", None],
    )
    out = rfm_summary(tx)
    assert out.loc["a", "region"] == "north"  # tie on 2020-01-01: smallest (region, channel)
    assert out.loc["a", "channel"] == "web"  # from the same row as region
    assert out.loc["b", "region"] == "east"
    assert pd.isna(out.loc["b", "channel"])
    shuffled = rfm_summary(tx.iloc[::-1])
    pd.testing.assert_frame_equal(out, shuffled)
    only = rfm_summary(tx, attributes=["channel"])
    # the tie-break looks at the carried columns only: now the smallest channel wins
    assert "region" not in only.columns and only.loc["a", "channel"] == "store"
    none = rfm_summary(tx, attributes=())
    assert "region" not in none.columns and "channel" not in none.columns


def test_attributes_default_carries_every_extra_column(sim: pd.DataFrame) -> None:
    out = rfm_summary(sim, freq="D")
    assert {"region", "channel"} <= set(out.columns)
    first = sim.sort_values(["customer_id", "date", "region", "channel"]).groupby("customer_id")
    assert (out["region"] == first["region"].first()).all()
    assert (out["channel"] == first["channel"].first()).all()


# ---------------------------------------------------------------------------------------------
# inputs: frames are not modified, files and relations work
# ---------------------------------------------------------------------------------------------


def test_caller_frame_not_modified(sim: pd.DataFrame) -> None:
    before = sim.copy(deep=True)
    rfm_summary(sim, freq="W")
    calibration_holdout(sim, calibration_end="2021-12-31", freq="M")
    cohort_table(sim)
    pd.testing.assert_frame_equal(sim, before)
    assert sim.attrs == before.attrs


def test_sources_give_identical_summaries(sim: pd.DataFrame, tmp_path: Path) -> None:
    expected = rfm_summary(sim, freq="W", attributes=())
    sim.to_parquet(tmp_path / "one.parquet", index=False)
    parts = tmp_path / "parts"
    parts.mkdir()
    for i, chunk in enumerate(np.array_split(np.arange(len(sim)), 3)):
        sim.iloc[chunk].to_parquet(parts / f"part-{i}.parquet", index=False)
    sim.to_csv(tmp_path / "tx.csv", index=False)
    con = duckdb.connect()
    rel = con.from_df(sim)
    sources = [
        tmp_path / "one.parquet",
        str(parts / "*.parquet"),
        str(parts),
        sorted(str(p) for p in parts.glob("*.parquet")),
        str(tmp_path / "tx.csv"),
        rel,
    ]
    for source in sources:
        got = rfm_summary(source, freq="W", attributes=())
        pd.testing.assert_frame_equal(got, expected, check_dtype=False, obj=str(source))


def test_string_ids_nanosecond_dates_and_string_dates() -> None:
    tx = pd.DataFrame(
        {
            "cust": pd.array(["x", "y", "x"], dtype="str"),
            "when": pd.to_datetime(["2020-01-01", "2020-01-02", "2020-01-05"]).astype(
                "datetime64[ns]"
            ),
            "value": [1, 2, 3],  # integer amounts are fine
        }
    )
    out = rfm_summary(tx, customer_col="cust", date_col="when", amount_col="value")
    assert out.index.name == "customer_id"
    assert list(out.index) == ["x", "y"]
    assert out.loc["x", ["frequency", "recency", "T", "monetary_value"]].tolist() == [1, 4, 4, 3]
    as_text = tx.assign(when=tx["when"].dt.strftime("%Y-%m-%d").astype(object))
    out_text = rfm_summary(as_text, customer_col="cust", date_col="when", amount_col="value")
    pd.testing.assert_frame_equal(out, out_text, check_dtype=False)


# ---------------------------------------------------------------------------------------------
# validation at the door
# ---------------------------------------------------------------------------------------------


def test_missing_column_is_named(sim: pd.DataFrame) -> None:
    with pytest.raises(DataValidationError, match=r"amount_col='value'.*available columns"):
        rfm_summary(sim, amount_col="value")
    with pytest.raises(DataValidationError, match="nope"):
        rfm_summary(sim, attributes=["nope"])


@pytest.mark.parametrize("freq", ["H", "fortnight", 7, "2W"])
def test_invalid_freq(sim: pd.DataFrame, freq) -> None:
    with pytest.raises(ParameterError, match="not supported"):
        rfm_summary(sim, freq=freq)
    with pytest.raises(ParameterError):
        cohort_table(sim, cohort_freq=freq)


def test_freq_aliases(sim: pd.DataFrame) -> None:
    assert rfm_summary(sim, freq="week").attrs["freq"] == "W"
    assert rfm_summary(sim, freq="monthly").attrs["freq"] == "M"


def test_observation_end_before_first_transaction(sim: pd.DataFrame) -> None:
    with pytest.raises(ParameterError, match="before the first transaction"):
        rfm_summary(sim, observation_end="2020-01-01")
    with pytest.raises(ParameterError, match="not a date"):
        rfm_summary(sim, observation_end="last tuesday")


def test_empty_input() -> None:
    empty = pd.DataFrame(
        {
            "customer_id": pd.Series([], dtype="int64"),
            "date": pd.Series([], dtype="datetime64[us]"),
            "amount": pd.Series([], dtype="float64"),
        }
    )
    with pytest.raises(DataValidationError, match="empty"):
        rfm_summary(empty)
    with pytest.raises(DataValidationError, match="empty"):
        cohort_table(empty)


def test_unclean_values_are_reported() -> None:
    tx = tx_frame([("a", "2020-01-01", 1.0), (None, "2020-01-02", 2.0), ("b", None, 3.0)])
    with pytest.raises(
        DataValidationError, match=r"1 rows with a null 'customer_id'.*load_transactions"
    ):
        rfm_summary(tx)
    bad_dates = pd.DataFrame(
        {"customer_id": [1, 2], "date": ["2020-01-01", "31/12/2020"], "amount": [1.0, 2.0]}
    )
    with pytest.raises(DataValidationError, match=r"31/12/2020"):
        rfm_summary(bad_dates)
    nan_amount = tx_frame([("a", "2020-01-01", np.nan)])
    with pytest.raises(DataValidationError, match="NaN"):
        rfm_summary(nan_amount)
    text_amount = tx_frame([("a", "2020-01-01", 1.0)]).astype({"amount": str})
    with pytest.raises(DataValidationError, match="not a number"):
        rfm_summary(text_amount)


def test_timezone_aware_dates_rejected() -> None:
    tx = tx_frame([("a", "2020-01-01", 1.0)])
    tx["date"] = tx["date"].dt.tz_localize("Europe/Berlin")
    with pytest.raises(DataValidationError, match="time-zone aware"):
        rfm_summary(tx)


def test_bad_sources(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError, match="matches no files"):
        rfm_summary(str(tmp_path / "nothing-*.parquet"))
    with pytest.raises(DataValidationError, match="unsupported transaction source"):
        rfm_summary(42)  # type: ignore[arg-type]


def test_calibration_holdout_argument_errors(sim: pd.DataFrame) -> None:
    with pytest.raises(ParameterError, match="must be after calibration_end"):
        calibration_holdout(sim, calibration_end="2022-01-01", observation_end="2021-12-01")
    with pytest.raises(ParameterError, match="calibration_end"):
        calibration_holdout(sim, calibration_end="2019-01-01")
    assert issubclass(ParameterError, CustvalueError)


def test_calibration_holdout_hand_computed() -> None:
    tx = tx_frame(
        [
            ("a", "2020-01-01", 10.0),
            ("a", "2020-01-20", 20.0),
            ("a", "2020-02-05 10:00", 5.0),  # holdout, merged with the next line (same day)
            ("a", "2020-02-05 16:00", 7.0),
            ("a", "2020-03-01", 30.0),
            ("b", "2020-01-31", 1.0),
            ("c", "2020-02-10", 2.0),  # first seen in the holdout: not in the table
        ]
    )
    out = calibration_holdout(tx, calibration_end="2020-01-31", observation_end="2020-03-31")
    assert list(out.index) == ["a", "b"]
    a = out.loc["a"]
    assert [a["frequency"], a["recency"], a["T"], a["monetary_value"]] == [1, 19, 30, 20]
    assert a["frequency_holdout"] == 2
    assert a["monetary_value_holdout"] == pytest.approx((12.0 + 30.0) / 2)
    assert a["total_spend_holdout"] == pytest.approx(42.0)
    assert a["duration_holdout"] == 60  # days from 2020-01-31 to 2020-03-31
    b = out.loc["b"]
    assert [b["frequency_holdout"], b["monetary_value_holdout"], b["T"]] == [0, 0, 0]
    monthly = calibration_holdout(
        tx, calibration_end="2020-01-31", observation_end="2020-03-31", freq="M"
    )
    assert monthly.loc[
        "a", ["frequency", "T", "frequency_holdout", "duration_holdout"]
    ].tolist() == [
        0,
        0,
        2,
        2,
    ]
    assert monthly.loc["a", "monetary_value_holdout"] == pytest.approx(21.0)


# ---------------------------------------------------------------------------------------------
# cohorts
# ---------------------------------------------------------------------------------------------


def test_cohort_table_hand_computed() -> None:
    tx = tx_frame(
        [
            ("a", "2020-01-05", 10.0),
            ("a", "2020-01-20", 5.0),
            ("a", "2020-03-02", 20.0),
            ("b", "2020-01-31", 4.0),
            ("c", "2020-02-14", 8.0),
            ("c", "2020-02-15", 2.0),
        ]
    )
    long = cohort_table(tx, cohort_freq="M", observation_end="2020-03-15")
    jan = long[long["cohort"] == pd.Timestamp("2020-01-01")].set_index("period")
    feb = long[long["cohort"] == pd.Timestamp("2020-02-01")].set_index("period")
    assert list(jan.index) == [0, 1, 2] and list(feb.index) == [0, 1]
    assert (jan["cohort_size"] == 2).all() and (feb["cohort_size"] == 1).all()
    assert jan["active_customers"].tolist() == [2, 0, 1]  # empty February kept as 0
    assert jan["active_share"].tolist() == [1.0, 0.0, 0.5]
    assert jan["revenue"].tolist() == [19.0, 0.0, 20.0]
    assert jan["revenue_per_customer"].tolist() == [9.5, 0.0, 10.0]
    assert jan["cumulative_revenue_per_customer"].tolist() == [9.5, 9.5, 19.5]
    assert feb["revenue"].tolist() == [10.0, 0.0]
    # March is observed only to the 15th: the last period of each cohort is incomplete
    assert jan["complete"].tolist() == [True, True, False]
    assert feb["complete"].tolist() == [True, False]
    full = cohort_table(tx, cohort_freq="M", observation_end="2020-03-31")
    assert full["complete"].all()

    wide = cohort_table(tx, cohort_freq="M", observation_end="2020-03-15", values="active_share")
    assert wide.loc[pd.Timestamp("2020-01-01")].tolist() == [1.0, 0.0, 0.5]
    assert np.isnan(wide.loc[pd.Timestamp("2020-02-01"), 2])
    pd.testing.assert_frame_equal(wide, pivot_cohorts(long, "active_share"))
    with pytest.raises(ParameterError, match="not a cohort column"):
        pivot_cohorts(long, "profit")


@pytest.mark.parametrize("freq", ["W", "M", "Q"])
def test_cohort_table_totals_are_consistent(sim: pd.DataFrame, freq: str) -> None:
    long = cohort_table(sim, cohort_freq=freq)
    sizes = long.groupby("cohort")["cohort_size"].first()
    assert sizes.sum() == sim["customer_id"].nunique()
    assert long["revenue"].sum() == pytest.approx(sim["amount"].sum())
    starts = sim.groupby("customer_id")["date"].min().dt.to_period(freq).dt.start_time
    assert (sizes == starts.value_counts().sort_index()).all()
    last = long.groupby("cohort").tail(1)
    assert (last["cumulative_revenue_per_customer"] * last["cohort_size"]).sum() == pytest.approx(
        sim["amount"].sum()
    )
    assert long["active_share"].between(0, 1).all()
    assert (long.loc[long["period"] == 0, "active_share"] == 1.0).all()


# ---------------------------------------------------------------------------------------------
# properties
# ---------------------------------------------------------------------------------------------


@st.composite
def transaction_logs(draw):
    n = draw(st.integers(min_value=1, max_value=40))
    customers = draw(st.lists(st.integers(0, 6), min_size=n, max_size=n))
    days = draw(st.lists(st.integers(0, 800), min_size=n, max_size=n))
    seconds = draw(st.lists(st.integers(0, 86_399), min_size=n, max_size=n))
    amounts = draw(
        st.lists(st.floats(0.0, 1e6, allow_nan=False, allow_infinity=False), min_size=n, max_size=n)
    )
    dates = pd.Timestamp("2019-12-28") + pd.to_timedelta(days, unit="D")
    if draw(st.booleans()):
        dates = dates + pd.to_timedelta(seconds, unit="s")
    return pd.DataFrame({"customer_id": customers, "date": dates, "amount": amounts})


@pytest.mark.slow
@settings(max_examples=40)
@given(tx=transaction_logs(), freq=st.sampled_from(["D", "W", "M", "Q", "Y"]))
def test_property_summaries_are_valid(tx: pd.DataFrame, freq: str) -> None:
    out = rfm_summary(tx, freq=freq, attributes=())
    assert len(out) == tx["customer_id"].nunique()
    numeric = out[["frequency", "recency", "T", "monetary_value", "total_spend"]]
    assert np.isfinite(numeric.to_numpy()).all()
    assert (out["recency"] >= 0).all()
    assert (out["recency"] <= out["T"]).all()
    assert (out["frequency"] <= out["recency"]).all()  # one repeat per distinct period at most
    assert (out["frequency"] < out["n_orders"]).all()
    assert (out["monetary_value"] >= 0).all()
    assert (out["first_purchase"] <= out["last_purchase"]).all()


@pytest.mark.slow
@settings(max_examples=25)
@given(tx=transaction_logs(), freq=st.sampled_from(["D", "W", "M"]), cut=st.integers(0, 800))
def test_property_holdout_is_valid(tx: pd.DataFrame, freq: str, cut: int) -> None:
    cal_end = pd.Timestamp("2019-12-28") + pd.Timedelta(days=cut)
    first, last = tx["date"].min(), tx["date"].max()
    if not (first.normalize() <= cal_end < last.normalize()):
        with pytest.raises(ParameterError):
            calibration_holdout(tx, calibration_end=cal_end, freq=freq)
        return
    out = calibration_holdout(tx, calibration_end=cal_end, freq=freq, attributes=())
    assert np.isfinite(out.select_dtypes("number").to_numpy()).all()
    assert (out["recency"] <= out["T"]).all()
    assert (out["frequency_holdout"] <= out["duration_holdout"] + 1).all()
    assert (out["frequency_holdout"] >= 0).all()


def test_subscription_helpers_are_reexported() -> None:
    import custvalue._subscriptions as subs
    import custvalue.summary as summary

    assert summary.subscriptions is subs.subscriptions
    assert summary.survivors_to_customers is subs.survivors_to_customers


# ---------------------------------------------------------------------------------------------
# the two engines (DuckDB SQL and the in-memory sort) give the same frame
# ---------------------------------------------------------------------------------------------


def _assert_engines_agree(tx: pd.DataFrame, **kwargs) -> pd.DataFrame:
    sql = rfm_summary(tx, engine="duckdb", **kwargs)
    mem = rfm_summary(tx, engine="numpy", **kwargs)
    pd.testing.assert_frame_equal(mem, sql, check_exact=False, rtol=1e-12, atol=1e-9)
    assert mem.attrs == sql.attrs
    assert mem.index.dtype == sql.index.dtype
    return mem


@pytest.mark.parametrize("freq", ["D", "W", "M", "Q", "Y"])
@pytest.mark.parametrize("observation_end", [None, "1997-09-30", "1997-10-01 12:00"])
def test_engines_agree_on_cdnow(cdnow: pd.DataFrame, freq: str, observation_end) -> None:
    _assert_engines_agree(cdnow, freq=freq, observation_end=observation_end, attributes=())


def test_engines_agree_on_times_of_day_string_ids_and_nanoseconds() -> None:
    rng = np.random.default_rng(7)
    n = 5_000
    seconds = rng.integers(0, 400 * 86_400, n)
    tx = pd.DataFrame(
        {
            "customer_id": pd.array([f"c{i:03d}" for i in rng.integers(0, 300, n)], dtype="str"),
            "date": (pd.Timestamp("1969-06-01") + pd.to_timedelta(seconds, unit="s")).astype(
                "datetime64[ns]"
            ),
            "amount": rng.gamma(2.0, 20.0, n).round(2),
        }
    )
    tx.loc[::7, "date"] = tx.loc[::7, "date"] + pd.Timedelta(nanoseconds=999)  # sub-microsecond
    for freq in ("D", "W", "M"):
        out = _assert_engines_agree(tx, freq=freq)
        out = _assert_engines_agree(tx, freq=freq, observation_end="1969-12-31 06:00")
    assert out["n_orders"].sum() > 0


@pytest.mark.parametrize(
    ("dtype", "base", "scale"),
    [
        ("int64", 1_000_000, 1),  # a dense id range: ids are sort keys, no hashing
        ("int32", -5_000, 7),  # negative ids, a narrow dtype
        ("int64", -(2**62), 2**52),  # a range too wide for one key: factorised
        ("uint64", 2**63 + 5, 3),  # ids above the int64 range: factorised
    ],
)
def test_engines_agree_on_integer_ids_of_any_range(dtype: str, base: int, scale: int) -> None:
    rng = np.random.default_rng(11)
    n = 4_000
    ids = np.array([base + scale * int(k) for k in rng.integers(0, 500, n)], dtype=object)
    tx = pd.DataFrame(
        {
            "customer_id": ids.astype(dtype),
            "date": pd.Timestamp("2021-01-01") + pd.to_timedelta(rng.integers(0, 300, n), unit="D"),
            "amount": rng.gamma(2.0, 20.0, n).round(2),
        }
    )
    before = tx.copy()
    for freq in ("D", "W"):
        out = _assert_engines_agree(tx, freq=freq)
        out_auto = rfm_summary(tx, freq=freq)
        pd.testing.assert_frame_equal(out_auto, out)
    assert out.index.is_monotonic_increasing and out.index.dtype == np.dtype(dtype)
    assert set(out.index) == set(tx["customer_id"])
    pd.testing.assert_frame_equal(tx, before)  # the caller's frame is not modified


def test_auto_engine_falls_back_to_duckdb_for_what_numpy_does_not_handle() -> None:
    tx = pd.DataFrame(
        {
            "customer_id": [1, 1, 2],
            "date": pd.to_datetime(["2020-01-01", "2020-01-03", "2020-01-02"]),
            "amount": [1.0, 2.0, 3.0],
            "region": ["N", "N", "S"],
        }
    )
    out = rfm_summary(tx)  # an attribute column: DuckDB carries it
    assert out["region"].tolist() == ["N", "S"]
    with pytest.raises(ParameterError, match=r"engine='numpy'.*attribute"):
        rfm_summary(tx, engine="numpy")
    with pytest.raises(ParameterError, match="engine="):
        rfm_summary(tx, engine="polars")  # "spark" is an engine now (issue 13)
    mixed = tx.drop(columns="region").astype({"customer_id": object})
    mixed.loc[2, "customer_id"] = "2"  # ints and strings cannot be sorted together
    with pytest.raises(ParameterError, match="engine='numpy'"):
        rfm_summary(mixed, engine="numpy")


@pytest.mark.slow
@settings(max_examples=60)
@given(tx=transaction_logs(), freq=st.sampled_from(["D", "W", "M", "Q", "Y"]), cut=st.integers(0, 800))
def test_property_engines_agree(tx: pd.DataFrame, freq: str, cut: int) -> None:
    end = pd.Timestamp("2019-12-28") + pd.Timedelta(days=cut)
    if end < tx["date"].min().normalize():
        end = None
    _assert_engines_agree(tx, freq=freq, observation_end=end, attributes=())
