"""Tests for custvalue.data: loading sources, every validation check, the returns policies.

Expected values are computed by hand in the test (or with plain pandas), never taken from
load_transactions' own output.
"""

from __future__ import annotations

import math

import duckdb
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from custvalue.data import CHECKS, DataQuality, load_transactions
from custvalue.errors import CustvalueError, DataValidationError, ParameterError


def check(quality: DataQuality, name: str) -> pd.Series:
    """The row of the checks table for one check."""
    table = quality.to_frame().set_index("check")
    return table.loc[name]


@pytest.fixture
def clean_tx() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": [1, 1, 2, 3],
            "date": pd.to_datetime(["2020-01-01", "2020-02-01", "2020-01-15", "2020-03-01"]),
            "amount": [10.0, 20.0, 5.5, 7.25],
            "region": ["north", "north", "south", "east"],
        }
    )


@pytest.fixture
def messy() -> pd.DataFrame:
    """One problem of each kind, rows numbered 1.. in the comments."""
    return pd.DataFrame(
        {
            "cust": [" a", "a", "b", None, "  ", "nan", "c", "c", "c", "d", "e"],
            "when": [
                "2020-01-01",  # 1 ok
                "2020-01-05",  # 2 ok
                "2020-02-03",  # 3 ok
                "2020-01-01",  # 4 null id
                "2020-01-01",  # 5 blank id
                "2020-01-01",  # 6 'nan' id
                "not a date",  # 7 unparseable
                "2020-03-01",  # 8 ok
                "2020-03-01",  # 9 duplicate of 8
                None,  # 10 missing date
                "2020-04-01",  # 11 non-numeric amount
            ],
            "amt": ["10", "12.5", "5", "1", "1", "1", "3", "0", "0", "2", "abc"],
            "note": ["x"] * 11,
        }
    )


# ------------------------------------------------------------------------------------------------
# canonical output
# ------------------------------------------------------------------------------------------------


def test_canonical_columns_and_types(clean_tx):
    tx, quality = load_transactions(clean_tx, attributes=["region"])
    assert list(tx.columns) == ["customer_id", "date", "amount", "region"]
    assert tx["customer_id"].dtype == np.int64
    assert pd.api.types.is_datetime64_dtype(tx["date"])
    assert tx["date"].dt.tz is None
    assert tx["amount"].dtype == np.float64
    assert tx["customer_id"].tolist() == [1, 1, 2, 3]
    assert tx["amount"].tolist() == [10.0, 20.0, 5.5, 7.25]
    assert tx["region"].tolist() == ["north", "north", "south", "east"]
    assert quality.ok
    assert quality.n_rows_in == quality.n_rows_out == 4
    assert list(quality.checks["check"]) == list(CHECKS)
    assert (quality.checks["rows_affected"] == 0).all()


def test_caller_frame_is_never_modified(messy):
    before = messy.copy(deep=True)
    before_attrs = dict(messy.attrs)
    load_transactions(
        messy, customer_col="cust", date_col="when", amount_col="amt", attributes=["note"]
    )
    pd.testing.assert_frame_equal(messy, before)
    assert messy.attrs == before_attrs


def test_string_ids_are_stripped_and_kept_as_text():
    df = pd.DataFrame(
        {"customer_id": ["  A-1 ", "A-1", "007"], "date": ["2020-01-01"] * 3, "amount": [1.0] * 3}
    )
    tx, _ = load_transactions(df, duplicates="keep")
    assert tx["customer_id"].tolist() == ["A-1", "A-1", "007"]


def test_float_ids_with_nan_become_integers():
    # pandas turns an integer id column with a missing value into float64
    df = pd.DataFrame(
        {"customer_id": [17850.0, np.nan, 12346.0], "date": ["2020-01-01"] * 3,
         "amount": [1.0, 2.0, 3.0]}
    )
    tx, quality = load_transactions(df)
    assert tx["customer_id"].dtype == np.int64
    assert tx["customer_id"].tolist() == [17850, 12346]
    assert check(quality, "missing customer ids")["rows_affected"] == 1


def test_attributes_as_expressions_and_mapping(clean_tx):
    tx, quality = load_transactions(
        clean_tx, attributes=["big=amount > 8", "region"]
    )
    assert tx["big"].tolist() == [True, True, False, False]
    assert quality.columns["big"] == "amount > 8"
    tx2, _ = load_transactions(clean_tx, attributes={"reg": "upper(region)"})
    assert tx2["reg"].tolist() == ["NORTH", "NORTH", "SOUTH", "EAST"]


def test_attribute_name_clash_is_a_parameter_error(clean_tx):
    with pytest.raises(ParameterError, match="clash"):
        load_transactions(clean_tx, attributes=["amount=amount * 2"])


def test_order_col_output(clean_tx):
    df = clean_tx.assign(inv=["A", "B", "C", "D"])
    tx, _ = load_transactions(df, order_col="inv")
    assert list(tx.columns) == ["customer_id", "date", "amount", "order_id"]
    assert tx["order_id"].tolist() == ["A", "B", "C", "D"]


# ------------------------------------------------------------------------------------------------
# missing columns and SQL expressions
# ------------------------------------------------------------------------------------------------


def test_missing_column_lists_columns_and_suggests(clean_tx):
    with pytest.raises(DataValidationError) as err:
        load_transactions(clean_tx, customer_col="customer", amount_col="amout")
    msg = str(err.value)
    assert "customer_col='customer'" in msg and "amount_col='amout'" in msg
    assert "did you mean 'customer_id'" in msg
    assert "did you mean 'amount'" in msg
    for col in clean_tx.columns:
        assert repr(col) in msg  # lists the columns that exist


def test_missing_column_that_is_the_index(clean_tx):
    with pytest.raises(DataValidationError, match="reset_index"):
        load_transactions(clean_tx.set_index("customer_id"))


def test_column_names_match_case_insensitively(clean_tx):
    df = clean_tx.rename(columns={"customer_id": "CustomerID", "date": "Date", "amount": "Amount"})
    tx, quality = load_transactions(df, customer_col="customerid", date_col="DATE",
                                    amount_col="amount")
    assert len(tx) == 4
    assert quality.columns["customer_id"] == "customerid"


def test_sql_expression_columns():
    df = pd.DataFrame(
        {
            "Customer ID": [" x1", "x2"],
            "InvoiceDate": ["2010-12-01 08:26:00", "2010-12-02 09:00:00"],
            "Quantity": [6, 3],
            "UnitPrice": [2.55, 1.5],
        }
    )
    tx, quality = load_transactions(
        df,
        customer_col="Customer ID",
        date_col="InvoiceDate",
        amount_col="Quantity * UnitPrice",
        attributes=["qty=Quantity"],
    )
    assert tx["amount"].tolist() == pytest.approx([6 * 2.55, 3 * 1.5])
    assert tx["customer_id"].tolist() == ["x1", "x2"]
    assert tx["date"].tolist() == [pd.Timestamp("2010-12-01 08:26"), pd.Timestamp("2010-12-02 09:00")]
    assert tx["qty"].tolist() == [6, 3]
    assert quality.columns["amount"] == "Quantity * UnitPrice"


def test_bad_sql_expression_names_the_argument_and_suggests():
    df = pd.DataFrame({"customer_id": [1], "date": ["2020-01-01"], "Quantity": [1],
                       "UnitPrice": [2.0]})
    with pytest.raises(DataValidationError) as err:
        load_transactions(df, amount_col="Quantity * Price")
    msg = str(err.value)
    assert "amount_col='Quantity * Price'" in msg
    assert "UnitPrice" in msg


def test_expression_with_semicolon_is_refused(clean_tx):
    with pytest.raises(DataValidationError, match="may not contain ';'"):
        load_transactions(clean_tx, amount_col="amount; DROP TABLE x")


# ------------------------------------------------------------------------------------------------
# each check
# ------------------------------------------------------------------------------------------------


def test_every_check_on_a_messy_frame(messy):
    tx, q = load_transactions(messy, customer_col="cust", date_col="when", amount_col="amt",
                              duplicates="drop")
    dup = check(q, "exact duplicate rows")
    assert dup["rows_affected"] == 1 and "row 9" in dup["examples"]
    assert dup["action"].startswith("dropped")
    ids = check(q, "missing customer ids")
    assert ids["rows_affected"] == 3
    assert "row 4" in ids["examples"] and "row 5" in ids["examples"] and "row 6" in ids["examples"]
    assert check(q, "missing dates")["rows_affected"] == 1
    assert "row 10" in check(q, "missing dates")["examples"]
    bad = check(q, "unparseable dates")
    assert bad["rows_affected"] == 1 and "'not a date'" in bad["examples"] and "row 7" in bad["examples"]
    amt = check(q, "missing or non-numeric amounts")
    assert amt["rows_affected"] == 1 and "'abc'" in amt["examples"]
    zero = check(q, "zero amounts")
    assert zero["rows_affected"] == 1 and zero["action"].startswith("kept")
    # rows left: 1, 2, 3, 8
    assert tx["customer_id"].tolist() == ["a", "a", "b", "c"]
    assert tx["amount"].tolist() == [10.0, 12.5, 5.0, 0.0]
    assert q.n_rows_in == 11 and q.n_rows_out == 4
    assert not q.ok


def test_counts_add_up(messy):
    _, q = load_transactions(messy, customer_col="cust", date_col="when", amount_col="amt",
                             zero_amounts="drop", duplicates="drop")
    dropping = ["exact duplicate rows", "missing customer ids", "missing dates",
                "unparseable dates", "missing or non-numeric amounts", "zero amounts"]
    dropped = sum(int(check(q, c)["rows_affected"]) for c in dropping)
    assert q.n_rows_in - dropped == q.n_rows_out == 3


def test_duplicates_use_every_source_column():
    df = pd.DataFrame(
        {"customer_id": [1, 1, 1], "date": ["2020-01-01"] * 3, "amount": [5.0] * 3,
         "line": [1, 2, 2]}
    )
    tx, q = load_transactions(df, duplicates="drop")
    assert check(q, "exact duplicate rows")["rows_affected"] == 1  # only line 2 repeats
    assert len(tx) == 2
    tx_keep, q_keep = load_transactions(df, duplicates="keep")
    assert len(tx_keep) == 3
    assert check(q_keep, "exact duplicate rows")["rows_affected"] == 1
    assert "kept" in check(q_keep, "exact duplicate rows")["action"]


def test_duplicates_auto_drops_only_with_an_order_column():
    df = pd.DataFrame(
        {"customer_id": [1, 1], "date": ["2020-01-01"] * 2, "amount": [5.0] * 2,
         "order": ["A1", "A1"]}
    )
    tx_plain, q_plain = load_transactions(df[["customer_id", "date", "amount"]])
    assert len(tx_plain) == 2  # two identical purchases may be genuine without an order id
    assert "kept" in check(q_plain, "exact duplicate rows")["action"]
    tx_order, q_order = load_transactions(df, order_col="order")
    assert len(tx_order) == 1  # the same order line twice is a double export
    assert check(q_order, "exact duplicate rows")["rows_affected"] == 1


def test_nan_and_infinite_amounts_are_dropped():
    df = pd.DataFrame(
        {"customer_id": [1, 2, 3, 4], "date": ["2020-01-01"] * 4,
         "amount": [1.0, np.nan, np.inf, -np.inf]}
    )
    tx, q = load_transactions(df)
    assert tx["customer_id"].tolist() == [1]
    assert check(q, "missing or non-numeric amounts")["rows_affected"] == 3


def test_zero_amounts_drop_policy(clean_tx):
    df = clean_tx.assign(amount=[0.0, 20.0, 0.0, 7.25])
    tx, q = load_transactions(df, zero_amounts="drop")
    assert tx["amount"].tolist() == [20.0, 7.25]
    assert check(q, "zero amounts")["rows_affected"] == 2
    assert check(q, "zero amounts")["action"] == "dropped"


def test_observation_end_date_includes_the_whole_day():
    df = pd.DataFrame(
        {"customer_id": [1, 1, 1, 2],
         "date": pd.to_datetime(["2020-01-31 00:00", "2020-01-31 23:59", "2020-02-01 00:00",
                                 "2020-03-01 00:00"]),
         "amount": [1.0, 2.0, 3.0, 4.0]}
    )
    tx, q = load_transactions(df, observation_end="2020-01-31")
    assert tx["amount"].tolist() == [1.0, 2.0]
    after = check(q, "dates after observation end")
    assert after["rows_affected"] == 2 and "row 3" in after["examples"]
    tx2, _ = load_transactions(df, observation_end="2020-01-31 12:00")
    assert tx2["amount"].tolist() == [1.0]


def test_bad_observation_end_is_a_parameter_error(clean_tx):
    with pytest.raises(ParameterError, match="observation_end"):
        load_transactions(clean_tx, observation_end="next tuesday")


def test_bad_options_are_parameter_errors(clean_tx):
    with pytest.raises(ParameterError, match="returns"):
        load_transactions(clean_tx, returns="keep")
    with pytest.raises(ParameterError, match="duplicates"):
        load_transactions(clean_tx, duplicates="maybe")
    with pytest.raises(ParameterError, match="timezone"):
        load_transactions(clean_tx, timezone="Mars/Olympus")


def test_empty_after_cleaning_raises_with_reasons():
    df = pd.DataFrame({"customer_id": [1, 2], "date": ["31/31/2020", "bad"], "amount": [1.0, 2.0]})
    with pytest.raises(DataValidationError) as err:
        load_transactions(df)
    msg = str(err.value)
    assert "no valid transactions" in msg and "unparseable dates: 2 rows" in msg
    assert "'bad'" in msg


def test_empty_source_raises():
    df = pd.DataFrame({"customer_id": pd.Series([], dtype="int64"),
                       "date": pd.Series([], dtype="datetime64[ns]"),
                       "amount": pd.Series([], dtype="float64")})
    with pytest.raises(DataValidationError, match="no valid transactions"):
        load_transactions(df)


# ------------------------------------------------------------------------------------------------
# dates and time zones
# ------------------------------------------------------------------------------------------------


def test_non_iso_text_dates_are_inferred_and_reported():
    df = pd.DataFrame(
        {"customer_id": [1, 2], "date": ["12/1/2010 8:26", "12/13/2010 17:05"], "amount": [1.0, 2.0]}
    )
    tx, q = load_transactions(df)
    assert tx["date"].tolist() == [pd.Timestamp("2010-12-01 08:26"),
                                   pd.Timestamp("2010-12-13 17:05")]
    assert any("%m/%d/%Y %H:%M" in n for n in q.notes)


def test_explicit_date_format_day_first():
    df = pd.DataFrame({"customer_id": [1, 2], "date": ["01/02/2020", "13/02/2020"],
                       "amount": [1.0, 2.0]})
    tx, _ = load_transactions(df, date_format="%d/%m/%Y")
    assert tx["date"].tolist() == [pd.Timestamp("2020-02-01"), pd.Timestamp("2020-02-13")]


def test_integer_yyyymmdd_dates():
    df = pd.DataFrame({"customer_id": [1, 2], "date": [19970101, 19971231], "amount": [1.0, 2.0]})
    tx, _ = load_transactions(df)
    assert tx["date"].tolist() == [pd.Timestamp("1997-01-01"), pd.Timestamp("1997-12-31")]


def test_mixed_time_zones_are_converted_to_utc_and_reported():
    raw = ["2020-01-01 23:30:00+01:00", "2020-06-01 00:30:00+02:00", "2020-03-01 12:00:00"]
    df = pd.DataFrame({"customer_id": [1, 2, 3], "date": raw, "amount": [1.0, 2.0, 3.0]})
    tx, q = load_transactions(df)
    expected = [
        pd.Timestamp(raw[0]).tz_convert("UTC").tz_localize(None),
        pd.Timestamp(raw[1]).tz_convert("UTC").tz_localize(None),
        pd.Timestamp(raw[2]),
    ]
    assert tx["date"].tolist() == expected
    tz = check(q, "mixed time zones")
    assert tz["rows_affected"] == 2
    assert "row 1" in tz["examples"] and "60 min" in tz["examples"] and "120 min" in tz["examples"]
    assert "UTC" in tz["action"]


def test_mixed_time_zones_to_a_named_zone():
    raw = ["2020-01-01 23:30:00+01:00", "2020-06-01 00:30:00+02:00"]
    df = pd.DataFrame({"customer_id": [1, 2], "date": raw, "amount": [1.0, 2.0]})
    tx, _ = load_transactions(df, timezone="Europe/Berlin")
    expected = [pd.Timestamp(r).tz_convert("Europe/Berlin").tz_localize(None) for r in raw]
    assert tx["date"].tolist() == expected


def test_one_offset_keeps_wall_clock_time():
    raw = ["2020-01-01 23:30:00+05:00", "2020-01-02 10:00:00+05:00"]
    df = pd.DataFrame({"customer_id": [1, 2], "date": raw, "amount": [1.0, 2.0]})
    tx, q = load_transactions(df)
    assert tx["date"].tolist() == [pd.Timestamp("2020-01-01 23:30"), pd.Timestamp("2020-01-02 10:00")]
    assert check(q, "mixed time zones")["rows_affected"] == 0


def test_tz_aware_pandas_column_keeps_its_local_time():
    dates = pd.to_datetime(["2020-01-01 00:30", "2020-07-01 23:30"]).tz_localize("Europe/Berlin")
    df = pd.DataFrame({"customer_id": [1, 2], "date": dates, "amount": [1.0, 2.0]})
    tx, q = load_transactions(df)
    assert tx["date"].tolist() == list(dates.tz_localize(None))
    assert tx["date"].dt.tz is None
    assert q.ok


# ------------------------------------------------------------------------------------------------
# cancelled orders and returns
# ------------------------------------------------------------------------------------------------


@pytest.fixture
def orders() -> pd.DataFrame:
    """Hand-made orders; expected results are worked out in each test."""
    return pd.DataFrame(
        {
            "cust": [1, 1, 1, 1, 1, 2, 2, 3, 3],
            "inv": ["A", "A", "B", "A", "X", "Z", "K", "P", "R"],
            "when": pd.to_datetime([
                "2020-01-01", "2020-01-01", "2020-01-10",  # purchases: A=30+10, B=20
                "2020-01-05",  # return in order A (-10)
                "2020-01-12",  # return with an unknown order (-5): latest earlier purchase B
                "2019-12-31",  # customer 2: return before any purchase (-5)
                "2020-01-02",  # customer 2 purchase 50
                "2020-01-01",  # customer 3 purchase 20
                "2020-01-02",  # customer 3 return of 30: more than the purchase
            ]),
            "amt": [30.0, 10.0, 20.0, -10.0, -5.0, -5.0, 50.0, 20.0, -30.0],
        }
    )


def test_returns_net_by_order_then_latest_purchase(orders):
    tx, q = load_transactions(orders, customer_col="cust", date_col="when", amount_col="amt",
                              order_col="inv")
    got = tx[["customer_id", "order_id", "amount"]].values.tolist()
    # order A: 40 - 10 = 30, each line scaled by 3/4; B: 20 - 5 = 15; customer 2's early return
    # has no earlier purchase and is dropped; customer 3's purchase is fully returned (excess 10).
    assert got == [[1, "A", 22.5], [1, "A", 7.5], [1, "B", 15.0], [2, "K", 50.0]]
    neg = check(q, "negative amounts (returns)")
    assert neg["rows_affected"] == 4
    action = neg["action"]
    assert "4 returns worth 50.00" in action
    assert "1 by order id" in action and "2 by the latest earlier purchase" in action
    assert "1 returns without an earlier purchase (5.00)" in action
    assert "excess returns of 10.00" in action
    assert (tx["amount"] > 0).all()
    # rows in - return rows - fully returned purchase lines (customer 3's) = rows out
    assert q.n_rows_in - 4 - 1 == q.n_rows_out == len(tx)
    assert any("1 fully returned purchase lines removed" in n for n in q.notes)


def test_returns_net_without_order_column():
    df = pd.DataFrame(
        {"customer_id": [4, 4, 4, 4],
         "date": pd.to_datetime(["2020-01-01 10:00", "2020-01-01 10:00", "2020-01-03 00:00", "2020-01-02 00:00"]),
         "amount": [10.0, 30.0, 50.0, -20.0]}
    )
    tx, _ = load_transactions(df)
    # the purchase at 2020-01-01 10:00 (10 + 30) absorbs the return: lines scaled by 20/40
    assert tx["amount"].tolist() == [5.0, 15.0, 50.0]


def test_returns_drop_and_error(orders):
    kw = {"customer_col": "cust", "date_col": "when", "amount_col": "amt", "order_col": "inv"}
    tx, q = load_transactions(orders, returns="drop", **kw)
    assert tx["amount"].tolist() == [30.0, 10.0, 20.0, 50.0, 20.0]
    assert check(q, "negative amounts (returns)")["action"] == "dropped"
    with pytest.raises(DataValidationError, match="4 rows have negative amounts") as err:
        load_transactions(orders, returns="error", **kw)
    assert "row 4" in str(err.value)


def test_cancelled_prefix_like_online_retail():
    df = pd.DataFrame(
        {
            "InvoiceNo": ["536365", "536365", "C536365", "C536999", "536370"],
            "CustomerID": [17850.0, 17850.0, 17850.0, 17850.0, 12583.0],
            "InvoiceDate": ["12/1/2010 8:26", "12/1/2010 8:26", "12/1/2010 9:00",
                            "12/2/2010 9:00", "12/1/2010 8:45"],
            "Quantity": [6, 2, -2, 4, 24],
            "UnitPrice": [2.5, 5.0, 5.0, 1.0, 3.75],
        }
    )
    tx, q = load_transactions(
        df, customer_col="CustomerID", date_col="InvoiceDate", amount_col="Quantity * UnitPrice",
        order_col="InvoiceNo", cancelled="C",
    )
    # C536365 (-10) is netted against order 536365 (15 + 10 = 25): lines scaled by 15/25;
    # C536999 has a positive amount: a cancelled order, not a purchase -> dropped.
    assert tx[["customer_id", "order_id"]].values.tolist() == [
        [17850, "536365"], [17850, "536365"], [12583, "536370"]]
    assert tx["amount"].tolist() == pytest.approx([9.0, 6.0, 90.0])
    c = check(q, "cancelled orders")
    assert c["rows_affected"] == 2
    assert "1 rows with amount >= 0 dropped" in c["action"]
    assert "'C'" in c["action"]
    assert "1 by order id" in check(q, "negative amounts (returns)")["action"]


def test_cancelled_boolean_expression():
    df = pd.DataFrame(
        {"customer_id": [1, 1, 2], "date": ["2020-01-01", "2020-01-02", "2020-01-03"],
         "amount": [10.0, 5.0, 7.0], "status": ["ok", "cancelled", "ok"]}
    )
    tx, q = load_transactions(df, cancelled="status = 'cancelled'")
    assert tx["amount"].tolist() == [10.0, 7.0]
    assert check(q, "cancelled orders")["rows_affected"] == 1


def test_cancelled_prefix_needs_an_order_column(clean_tx):
    with pytest.raises(DataValidationError, match="order_col is not given"):
        load_transactions(clean_tx, cancelled="C")


# ------------------------------------------------------------------------------------------------
# sources
# ------------------------------------------------------------------------------------------------


def test_csv_file_ids_and_leading_zeros(tmp_path):
    path = tmp_path / "tx.csv"
    path.write_text("customer_id,date,amount\n007,2020-01-01,1.5\n12,2020-01-02,2\n")
    tx, q = load_transactions(path)
    assert tx["customer_id"].tolist() == ["007", "12"]  # leading zeros are kept as text
    path2 = tmp_path / "tx2.csv"
    path2.write_text("customer_id,date,amount\n 5 ,2020-01-01,1.5\n,2020-01-02,2\n12,2020-01-03,3\n")
    tx2, q2 = load_transactions(str(path2))
    assert tx2["customer_id"].dtype == np.int64
    assert tx2["customer_id"].tolist() == [5, 12]
    assert check(q2, "missing customer ids")["rows_affected"] == 1
    assert "CSV file" in q.source


def test_parquet_glob_directory_and_list(tmp_path, clean_tx):
    part1, part2 = clean_tx.iloc[:2], clean_tx.iloc[2:]
    (tmp_path / "d" / "sub").mkdir(parents=True)
    part1.to_parquet(tmp_path / "d" / "a.parquet")
    part2.to_parquet(tmp_path / "d" / "sub" / "b.parquet")
    expected = sorted(clean_tx["amount"].tolist())
    for source in (
        tmp_path / "d",
        str(tmp_path / "d" / "**" / "*.parquet"),
        [tmp_path / "d" / "a.parquet", tmp_path / "d" / "sub" / "b.parquet"],
    ):
        tx, q = load_transactions(source)
        assert sorted(tx["amount"].tolist()) == expected
        assert q.n_rows_in == 4
    single, _ = load_transactions(tmp_path / "d" / "a.parquet")
    assert single["amount"].tolist() == part1["amount"].tolist()


def test_csv_directory_with_read_options(tmp_path):
    (tmp_path / "exports").mkdir()
    (tmp_path / "exports" / "jan.csv").write_text("c;d;a\n1;2020-01-01;1,5\n")
    (tmp_path / "exports" / "feb.csv").write_text("c;d;a\n2;2020-02-01;2,0\n")
    tx, _ = load_transactions(
        tmp_path / "exports", customer_col="c", date_col="d",
        amount_col="CAST(replace(a, ',', '.') AS DOUBLE)", read_options={"delim": ";"},
    )
    assert sorted(tx["amount"].tolist()) == [1.5, 2.0]


def test_missing_files_raise_oserror(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_transactions(tmp_path / "nope.csv")
    with pytest.raises(FileNotFoundError, match="no files match"):
        load_transactions(str(tmp_path / "*.parquet"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no CSV or Parquet"):
        load_transactions(tmp_path / "empty")


def test_mixed_formats_refused(tmp_path, clean_tx):
    clean_tx.to_parquet(tmp_path / "a.parquet")
    clean_tx.to_csv(tmp_path / "b.csv", index=False)
    with pytest.raises(DataValidationError, match="mixes CSV and Parquet"):
        load_transactions(tmp_path)


def test_duckdb_table_and_relation(clean_tx):
    con = duckdb.connect()
    con.register("frame", clean_tx)
    con.execute("CREATE TABLE orders AS SELECT * FROM frame")
    con.unregister("frame")
    tables_before = con.execute("SELECT table_name FROM duckdb_tables()").fetchall()
    views_before = con.execute(
        "SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()
    tx, q = load_transactions("orders", connection=con, attributes=["region"])
    assert tx["amount"].tolist() == clean_tx["amount"].tolist()
    assert "DuckDB table" in q.source
    # no temporary objects left in the caller's connection
    assert con.execute("SELECT table_name FROM duckdb_tables()").fetchall() == tables_before
    assert con.execute(
        "SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall() == views_before
    rel = con.sql("SELECT * FROM orders WHERE amount > 6")
    tx2, _ = load_transactions(rel)
    assert tx2["amount"].tolist() == [10.0, 20.0, 7.25]
    with pytest.raises(DataValidationError, match=r"'ordrs' not found.*did you mean 'orders'"):
        load_transactions("ordrs", connection=con)


def test_unsupported_source_type():
    with pytest.raises(DataValidationError, match="unsupported transaction source"):
        load_transactions(42)


# ------------------------------------------------------------------------------------------------
# DataQuality rendering
# ------------------------------------------------------------------------------------------------


def test_quality_text_and_html(messy):
    messy = messy.copy()
    messy.loc[6, "when"] = "<script>alert(1)</script>"
    _, q = load_transactions(messy, customer_col="cust", date_col="when", amount_col="amt",
                             duplicates="drop")
    text = str(q)
    assert "11 rows in, 4 rows out" in text
    for name in CHECKS:
        assert name in text
    page = q._repr_html_()
    assert "<table" in page and "<script>" not in page and "&lt;script&gt;" in page
    assert list(q.to_frame().columns) == ["check", "rows_affected", "examples", "action"]
    assert "DataQuality" in repr(q)


def test_errors_are_custvalue_errors(clean_tx):
    with pytest.raises(CustvalueError):
        load_transactions(clean_tx, date_col="nope")


# ------------------------------------------------------------------------------------------------
# property test
# ------------------------------------------------------------------------------------------------

_ids = st.one_of(
    st.integers(min_value=0, max_value=50),
    st.sampled_from(["a", " b", "c ", "", "  ", None, "nan"]),
)
_rows = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=5),  # customer index
        st.integers(min_value=0, max_value=400),  # day offset
        st.one_of(st.floats(min_value=-100, max_value=100, allow_nan=False), st.just(0.0)),
    ),
    min_size=1,
    max_size=40,
)


@pytest.mark.slow
@settings(max_examples=60, deadline=None)
@given(rows=_rows, text_ids=st.booleans(), returns=st.sampled_from(["net", "drop"]))
def test_random_logs_load_without_nan_and_never_negative(rows, text_ids, returns):
    names = ["a", " b", "c ", "", None, "7"] if text_ids else [1, 2, 3, 4, 5, 6]
    df = pd.DataFrame(
        {
            "customer_id": [names[c] for c, _, _ in rows],
            "date": [pd.Timestamp("2020-01-01") + pd.Timedelta(days=d) for _, d, _ in rows],
            "amount": [a for _, _, a in rows],
        }
    )
    try:
        tx, q = load_transactions(df, returns=returns, duplicates="keep")
    except DataValidationError as exc:
        assert "no valid transactions" in str(exc)
        return
    assert len(tx) > 0 and q.n_rows_out == len(tx) <= q.n_rows_in == len(df)
    assert not tx["customer_id"].isna().any()
    assert not tx["date"].isna().any()
    assert np.isfinite(tx["amount"]).all() and (tx["amount"] >= 0).all()
    if text_ids:
        assert all(s == s.strip() and s for s in tx["customer_id"])
    # netting removes at most the returned value and never more than was bought
    valid = df[df["customer_id"].map(lambda v: v is not None and str(v).strip() != "")]
    key = valid["customer_id"].map(lambda v: str(v).strip())
    bought = valid["amount"].clip(lower=0).groupby(key).sum()
    returned = (-valid["amount"].clip(upper=0)).groupby(key).sum()
    out = tx.groupby(tx["customer_id"].astype(str))["amount"].sum()
    for cust, total in out.items():
        assert total <= bought[cust] + 1e-9
        if returns == "net":
            assert total >= bought[cust] - returned[cust] - 1e-9
        else:
            assert math.isclose(total, bought[cust], rel_tol=1e-9, abs_tol=1e-9)


def test_csv_read_as_one_column_gets_a_delimiter_hint(tmp_path):
    path = tmp_path / "semi.csv"
    path.write_text("customer_id;date;amount\n1;2020-01-01;3\n")
    with pytest.raises(DataValidationError, match="single column"):
        load_transactions(path, read_options={"delim": "|"})
    tx, _ = load_transactions(path, read_options={"delim": ";"})
    assert tx["amount"].tolist() == [3.0]


def test_corrupt_parquet_is_a_validation_error(tmp_path):
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"not parquet at all")
    with pytest.raises(DataValidationError, match=r"broken\.parquet"):
        load_transactions(path)


def test_quality_to_dict_is_json_serialisable(messy):
    import json

    _, q = load_transactions(messy, customer_col="cust", date_col="when", amount_col="amt",
                             duplicates="drop")
    payload = json.loads(json.dumps(q.to_dict()))
    assert payload["n_rows_in"] == 11 and payload["n_rows_out"] == 4 and payload["ok"] is False
    assert [c["check"] for c in payload["checks"]] == list(CHECKS)
    assert payload["columns"]["customer_id"] == "cust"
