"""The targeting-filter language of ``custvalue.segments.select``: grammar, semantics, errors and
safety. Reference results are written independently in pandas (boolean masks and
``DataFrame.query``), never taken from the filter itself."""

from __future__ import annotations

import builtins

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from custvalue import segments
from custvalue.errors import ParameterError
from custvalue.segments import FilterError, select
from custvalue.segments._filter import evaluate, parse


@pytest.fixture
def table() -> pd.DataFrame:
    idx = pd.Index([101, 102, 103, 104, 105, 106], name="customer_id")
    return pd.DataFrame(
        {
            "region": pd.Categorical(
                ["Jiangsu", "Beijing", "Shanghai", "Zhejiang", "Jiangsu", "Guangdong"]
            ),
            "total_spend": [600.0, 900.0, 400.0, 500.0, 1200.0, 0.0],
            "n_orders": [5, 1, 7, 12, 4, 1],
            "p_alive": [0.9, 0.4, 0.55, 0.7, 0.2, 0.1],
            "clv": [150.0, 20.0, 101.0, 99.0, 300.0, 0.0],
            "member": [True, False, True, True, False, True],
            "first_purchase": pd.to_datetime(
                [
                    "2024-06-30 18:45",
                    "2024-01-01 00:00",
                    "2023-12-31 23:59",
                    "2024-07-01 00:00",
                    "2024-03-15 12:00",
                    "2024-02-01 09:00",
                ]
            ),
            "category": ["shoes;bags", "bags", "shoes", "toys;shoes-care", "books", "shoes"],
            "birthday": pd.to_datetime(
                ["1990-12-30", "1992-02-29", "1980-01-02", "1985-12-20", None, "2000-06-01"]
            ),
        },
        index=idx,
    )


def ids(result: segments.SegmentResult) -> list[int]:
    return sorted(result.customers.index.tolist())


# ------------------------------------------------------------------------------------------------
# the examples of the issue
# ------------------------------------------------------------------------------------------------
def test_region_list_and_spend(table: pd.DataFrame) -> None:
    got = select(table, 'region in ["Jiangsu", "Zhejiang", "Shanghai"] and total_spend >= 500')
    assert ids(got) == [101, 104, 105]


def test_orders_and_model_columns(table: pd.DataFrame) -> None:
    assert ids(select(table, "n_orders >= 5")) == [101, 103, 104]
    assert ids(select(table, "p_alive >= 0.5 and clv > 100")) == [101, 103]


def test_has_looks_inside_joined_values_and_lists(table: pd.DataFrame) -> None:
    # "shoes-care" is another category, not "shoes"; 106 bought shoes but spent nothing
    assert ids(select(table, 'category has "shoes"')) == [101, 103]
    assert ids(select(table, 'category has "shoes"', include_invalid=True)) == [101, 103, 106]
    listed = table.assign(category=table["category"].str.split(";"))
    assert ids(select(listed, 'category has "shoes"')) == [101, 103]
    assert ids(select(listed, 'category has "toys"')) == [104]


def test_member_and_date_range_includes_the_whole_last_day(table: pd.DataFrame) -> None:
    got = select(table, 'member and first_purchase between "2024-01-01" and "2024-06-30"')
    assert ids(got) == [101]  # 18:45 on 30 June is inside; 106 spent nothing; 103 is 2023
    got = select(table, 'first_purchase between "2024-01-01" and "2024-06-30"')
    assert ids(got) == [101, 102, 105]


def test_date_comparisons_with_a_whole_day(table: pd.DataFrame) -> None:
    assert ids(select(table, 'first_purchase > "2024-06-30"')) == [104]
    assert ids(select(table, 'first_purchase = "2024-06-30"')) == [101]
    assert ids(select(table, 'first_purchase < "2024-01-01"')) == [103]
    assert ids(select(table, 'first_purchase >= "2024-07-01"')) == [104]
    assert ids(select(table, 'first_purchase <= "2023-12-31"')) == [103]
    assert ids(select(table, 'first_purchase >= "2024-06-30 19:00"')) == [104]


def test_birthday_within_days_wraps_around_the_year(table: pd.DataFrame) -> None:
    # 27 Dec 2025: 30 Dec is 3 days ahead, 2 Jan 6 days ahead (next year), 20 Dec has passed
    got = select(table, "birthday within 7 days", today="2025-12-27")
    assert ids(got) == [101, 103]
    assert ids(select(table, "birthday within 3 days", today="2025-12-27")) == [101]
    assert ids(select(table, "birthday within 0 days", today="2025-12-30")) == [101]
    # a missing birthday matches nothing
    assert 105 not in ids(select(table, "birthday within 366 days", today="2025-01-01"))


@pytest.mark.parametrize(
    ("today", "expected"),
    [
        ("2025-02-26", True),  # non-leap year: celebrated on 28 Feb, 2 days ahead
        ("2025-02-28", True),
        ("2025-03-01", False),  # passed; next one is 28 Feb 2026
        ("2028-02-26", True),  # leap year: 29 Feb, 3 days ahead
        ("2028-02-25", False),  # 4 days ahead
    ],
)
def test_birthday_on_29_february(table: pd.DataFrame, today: str, expected: bool) -> None:
    got = select(table, "birthday within 3 days", today=today)
    assert (102 in got.customers.index) is expected


def test_within_last_and_next_days(table: pd.DataFrame) -> None:
    assert ids(select(table, "first_purchase within last 31 days", today="2024-07-15")) == [
        101,
        104,
    ]
    assert ids(select(table, "first_purchase within next 1 days", today="2024-06-30")) == [101, 104]


def test_birthdays_as_text_are_parsed(table: pd.DataFrame) -> None:
    text = table.assign(birthday=table["birthday"].dt.strftime("%Y-%m-%d"))
    assert ids(select(text, "birthday within 7 days", today="2025-12-27")) == [101, 103]


# ------------------------------------------------------------------------------------------------
# operators and precedence
# ------------------------------------------------------------------------------------------------
def test_precedence_not_and_or(table: pd.DataFrame) -> None:
    # and binds tighter than or; not tighter than and
    got = select(table, "n_orders = 1 or n_orders >= 12 and member", include_invalid=True)
    assert ids(got) == [102, 104, 106]
    got = select(table, "(n_orders = 1 or n_orders >= 12) and not member", include_invalid=True)
    assert ids(got) == [102]
    got = select(table, "not n_orders >= 5 and not member")
    assert ids(got) == [102, 105]


def test_not_in_not_between_and_field_comparisons(table: pd.DataFrame) -> None:
    assert ids(select(table, 'region not in ["Jiangsu", "Beijing"]')) == [103, 104]
    assert ids(select(table, "n_orders not between 2 and 6")) == [102, 103, 104]
    with pytest.raises(FilterError, match="unexpected character"):
        select(table, "clv * 1 > 0")  # arithmetic is not part of the language
    assert ids(select(table, "clv > total_spend")) == []
    assert ids(select(table, "total_spend > clv and p_alive < 0.5")) == [102, 105]


def test_keywords_case_insensitive_and_backticks(table: pd.DataFrame) -> None:
    spaced = table.rename(columns={"total_spend": "total spend"})
    assert ids(select(spaced, "`total spend` >= 900 AND NOT member")) == [102, 105]
    assert ids(select(table, "member = TRUE and n_orders IN (5, 7)")) == [101, 103]


def test_customer_id_is_a_field(table: pd.DataFrame) -> None:
    assert ids(select(table, "customer_id in [101, 105]")) == [101, 105]


def test_missing_values_match_no_predicate() -> None:
    t = pd.DataFrame({"x": [1.0, np.nan, 3.0], "total_spend": 1.0}, index=[1, 2, 3])
    assert evaluate("x != 1", t).tolist() == [False, False, True]
    assert evaluate("not x = 1", t).tolist() == [False, True, True]


def test_select_never_modifies_the_table(table: pd.DataFrame) -> None:
    before = table.copy(deep=True)
    select(table, 'category has "shoes" and birthday within 7 days', today="2025-12-27")
    pd.testing.assert_frame_equal(table, before)


# ------------------------------------------------------------------------------------------------
# errors
# ------------------------------------------------------------------------------------------------
def test_unknown_field_lists_the_available_ones(table: pd.DataFrame) -> None:
    with pytest.raises(FilterError) as err:
        select(table, "regoin = 'Jiangsu'")
    msg = str(err.value)
    assert "unknown field 'regoin'" in msg
    for name in (
        "region (text)",
        "total_spend (number)",
        "first_purchase (date)",
        "member (boolean)",
    ):
        assert name in msg
    assert isinstance(err.value, ParameterError)


def test_syntax_error_shows_a_caret_under_the_position(table: pd.DataFrame) -> None:
    text = "n_orders >= 5 and and member"
    with pytest.raises(FilterError) as err:
        select(table, text)
    lines = str(err.value).splitlines()
    assert lines[1].strip() == text
    col = lines[2].index("^") - 2  # both lines are indented by two spaces
    assert text[col:].startswith("and member")
    assert "position 18" in lines[0]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('region > "A"', "only be compared with = or !="),
        ("region = 3", "type mismatch"),
        ('total_spend >= "500"', "type mismatch"),
        ("n_orders", "not boolean"),
        ("member = 1", "type mismatch"),
        ("n_orders within 7 days", "needs a date field"),
        ("first_purchase > 2024", "type mismatch"),
        ('first_purchase > "yesterday-ish"', "is not a date"),
        ('region in ["Jiangsu", 3]', "type mismatch"),
        ("clv > p_alive and region > total_spend", "cannot compare"),
        ("n_orders >=", "expected a value"),
        ("(n_orders >= 5", "expected ')'"),
        ("n_orders >= 5)", "unexpected ')'"),
        ("n_orders 5", "unexpected '5'"),
        ("birthday within seven days", "whole number of days"),
        ("", "empty"),
        ('region = "unterminated', "unexpected character"),
        ("and = 3", "keyword 'and'"),
    ],
)
def test_clear_errors(table: pd.DataFrame, text: str, fragment: str) -> None:
    with pytest.raises(FilterError, match=None) as err:
        select(table, text)
    assert fragment in str(err.value)
    assert "^" in str(err.value)


# ------------------------------------------------------------------------------------------------
# safety: nothing in the text is ever executed
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "attack",
    [
        "__import__('os').system('touch /tmp/pwned')",
        "region.__class__",
        "region = 'x'; DROP TABLE customers",
        "region = 'x' ; DROP TABLE customers; --",
        "open('/etc/passwd')",
        "total_spend >= 500 or 1=1 --",
        "@total_spend > 1",
        "lambda: 1",
        "[c for c in region]",
        "total_spend + 1 > 2",
        "region = 'a' | n_orders > 1",
        "exec('1')",
        "region == `__class__`",
    ],
)
def test_injection_attempts_are_rejected(
    table: pd.DataFrame, attack: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("eval/exec/query must never be called")

    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    monkeypatch.setattr(pd.DataFrame, "query", forbidden)
    monkeypatch.setattr(pd.DataFrame, "eval", forbidden)
    with pytest.raises(FilterError):
        select(table, attack)


def test_a_string_that_looks_like_sql_is_just_a_value(table: pd.DataFrame) -> None:
    assert ids(select(table, 'region = "x\'; DROP TABLE customers; --"')) == []
    assert ids(select(table, r'region = "Jiang\"su"')) == []


def test_parse_builds_a_tree_not_code() -> None:
    tree = parse('a >= 1 and not (b in ["x"] or c has "y")')
    assert type(tree).__name__ == "BoolOp"


# ------------------------------------------------------------------------------------------------
# property tests against the same filter written in pandas
# ------------------------------------------------------------------------------------------------
_WORDS = ["x", "y", "z"]


@st.composite
def frames(draw: st.DrawFn) -> pd.DataFrame:
    n = draw(st.integers(1, 30))
    a = draw(st.lists(st.integers(-5, 5), min_size=n, max_size=n))
    f = draw(st.lists(st.floats(-10, 10, allow_nan=False), min_size=n, max_size=n))
    b = draw(st.lists(st.sampled_from(_WORDS), min_size=n, max_size=n))
    c = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    tags = draw(
        st.lists(st.lists(st.sampled_from(_WORDS), min_size=1, max_size=3), min_size=n, max_size=n)
    )
    return pd.DataFrame(
        {"a": a, "f": f, "b": b, "c": c, "tags": [";".join(t) for t in tags]},
        index=pd.RangeIndex(n, name="customer_id"),
    )


def _atoms() -> st.SearchStrategy[tuple[str, str, object]]:
    num = st.integers(-6, 6)
    ops = st.sampled_from(["==", "!=", "<", "<=", ">", ">="])
    word = st.sampled_from(_WORDS)
    return st.one_of(
        st.tuples(st.sampled_from(["a", "f"]), ops, num).map(
            lambda t: (f"{t[0]} {t[1]} {t[2]}", f"({t[0]} {t[1]} {t[2]})", None)
        ),
        st.tuples(st.sampled_from(["==", "!="]), word).map(
            lambda t: (f'b {t[0]} "{t[1]}"', f'(b {t[0]} "{t[1]}")', None)
        ),
        st.lists(word, min_size=1, max_size=3).map(
            lambda w: (f"b in {w!r}".replace("'", '"'), f"b in {w!r}", None)
        ),
        st.tuples(num, num).map(
            lambda t: (f"a between {t[0]} and {t[1]}", f"((a >= {t[0]}) & (a <= {t[1]}))", None)
        ),
        st.just(("c", "(c)", None)),
        word.map(lambda w: (f'tags has "{w}"', None, w)),
    )


def _tree(depth: int = 3) -> st.SearchStrategy[tuple[str, str, object]]:
    return st.recursive(
        _atoms(),
        lambda inner: st.one_of(
            st.tuples(inner, inner).map(lambda t: ("and", t)),
            st.tuples(inner, inner).map(lambda t: ("or", t)),
            inner.map(lambda t: ("not", t)),
        ),
        max_leaves=6,
    )


def _render(node: object, frame: pd.DataFrame) -> tuple[str, np.ndarray]:
    """The filter text and its meaning computed independently with pandas."""
    if isinstance(node, tuple) and node and node[0] in ("and", "or", "not") and len(node) == 2:
        if node[0] == "not":
            text, mask = _render(node[1], frame)
            return f"not ({text})", ~mask
        (lt, lm), (rt, rm) = (_render(x, frame) for x in node[1])
        return f"({lt}) {node[0]} ({rt})", (lm & rm) if node[0] == "and" else (lm | rm)
    text, query, word = node  # type: ignore[misc]
    if query is None:  # has: membership in the ';'-joined tags, by plain Python sets
        mask = np.array([word in set(t.split(";")) for t in frame["tags"]], dtype=bool)
    else:
        mask = frame.index.isin(frame.query(query, engine="python").index)
    return text, mask


@given(frame=frames(), node=_tree())
def test_filters_agree_with_pandas(frame: pd.DataFrame, node: object) -> None:
    text, expected = _render(node, frame)
    got = evaluate(text, frame)
    np.testing.assert_array_equal(got, expected, err_msg=text)


@given(text=st.text(max_size=40))
def test_arbitrary_text_parses_or_fails_cleanly(text: str) -> None:
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}, index=pd.RangeIndex(2, name="customer_id"))
    try:
        mask = evaluate(text, frame)
    except FilterError:
        return
    assert mask.dtype == bool and mask.shape == (2,)


# ------------------------------------------------------------------------------------------------
# command line: custvalue select
# ------------------------------------------------------------------------------------------------
@pytest.fixture
def tx_csv(tmp_path):
    rows = [
        ("c1", "2024-01-01", 600.0, "Jiangsu", "shoes"),
        ("c1", "2024-02-01", 100.0, "Jiangsu", "bags"),
        ("c2", "2024-01-03", 900.0, "Beijing", "shoes"),
        ("c3", "2024-01-05", 300.0, "Shanghai", "books"),
        ("c3", "2024-03-05", 250.0, "Shanghai", "shoes"),
        ("c4", "2024-02-05", 50.0, "Zhejiang", "toys"),
    ]
    df = pd.DataFrame(rows, columns=["customer_id", "date", "amount", "region", "category"])
    path = tmp_path / "tx.csv"
    df.to_csv(path, index=False)
    return path


def _run(args: list[str]):
    from click.testing import CliRunner

    from custvalue.cli import main

    return CliRunner().invoke(main, args)


def test_cli_select_writes_the_list(tx_csv, tmp_path) -> None:
    out = tmp_path / "list.csv"
    result = _run(
        [
            "select",
            "--data",
            str(tx_csv),
            "--attribute",
            "region",
            "--attribute",
            "category",
            "--where",
            'region in ["Jiangsu", "Zhejiang", "Shanghai"] and total_spend >= 500',
            "--out",
            str(out),
        ]
    )
    assert result.exit_code == 0, result.output
    back = pd.read_csv(out)
    assert back.columns[0] == "customer_id"
    assert back["customer_id"].tolist() == ["c1", "c3"]  # c1 700, c3 550; c4 spent 50
    # 'has' sees every category bought, not only the first purchase's
    result = _run(
        [
            "select",
            "--data",
            str(tx_csv),
            "--attribute",
            "region",
            "--attribute",
            "category",
            "--where",
            'category has "shoes"',
            "--out",
            str(out),
        ]
    )
    assert result.exit_code == 0, result.output
    assert pd.read_csv(out)["customer_id"].tolist() == ["c1", "c2", "c3"]


@pytest.mark.parametrize(
    ("where", "needle"),
    [
        ("regoin = 'x'", "unknown field 'regoin'"),
        ("n_orders >= 5 and and x", "position 18"),
        ("__import__('os')", "function calls"),
    ],
)
def test_cli_select_errors_are_one_line_and_leave_the_old_list(
    tx_csv, tmp_path, where, needle
) -> None:
    out = tmp_path / "list.csv"
    out.write_text("previous good list\n")
    result = _run(["select", "--data", str(tx_csv), "--where", where, "--out", str(out)])
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], result.stderr
    assert out.read_text() == "previous good list\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["list.csv", "tx.csv"]


def test_cli_select_refuses_to_overwrite_the_input(tx_csv) -> None:
    before = tx_csv.read_text()
    result = _run(
        ["select", "--data", str(tx_csv), "--where", "n_orders >= 1", "--out", str(tx_csv)]
    )
    assert result.exit_code == 2
    assert "is the input file" in result.stderr
    assert tx_csv.read_text() == before


def test_cli_select_scores_when_the_filter_uses_model_columns(tmp_path) -> None:
    import custvalue as cv

    data = tmp_path / "sim.csv"
    cv.simulate(800, seed=4).transactions.to_csv(data, index=False)
    out = tmp_path / "list.parquet"
    result = _run(
        [
            "select",
            "--data",
            str(data),
            "--where",
            "p_alive >= 0.5 and clv > 100",
            "--out",
            str(out),
        ]
    )
    assert result.exit_code == 0, result.output
    back = pd.read_parquet(out)
    assert back.columns[0] == "customer_id" and len(back) > 0
    assert (back["p_alive"] >= 0.5).all() and (back["clv"] > 100).all()
    assert {"expected_purchases", "clv_lower", "clv_upper"} <= set(back.columns)


def test_cli_select_scores_each_customer_at_her_own_rates_with_covariates(tmp_path) -> None:
    import custvalue as cv
    from custvalue.models import BetaGeoModel
    from custvalue.summary import rfm_summary

    effects = {"purchase": {"channel": {"referral": 0.6}}, "dropout": {"channel": {"referral": -0.7}}}
    sim = cv.simulate(800, seed=4, covariate_effects=effects)
    data = tmp_path / "sim.csv"
    sim.transactions.to_csv(data, index=False)
    out = tmp_path / "list.csv"
    args = ["select", "--data", str(data), "--attribute", "channel", "--where", "n_orders >= 1",
            "--out", str(out)]
    result = _run([*args, "--covariate", "channel"])
    assert result.exit_code == 0, result.output
    back = pd.read_csv(out, dtype={"customer_id": str}).set_index("customer_id")
    # the same model fitted directly on the same summary gives the same P(alive)
    tx = cv.load_transactions(str(data), attributes=("channel",))[0]
    rfm = rfm_summary(tx, freq="D", attributes=["channel"])
    model = BetaGeoModel(purchase_covariates=["channel"], dropout_covariates=["channel"]).fit(rfm)
    p_alive = model.probability_alive(rfm)
    expected = p_alive.set_axis(p_alive.index.astype(str)).reindex(back.index)
    assert expected.notna().all()
    np.testing.assert_allclose(back["p_alive"], expected, rtol=1e-8)
    # a covariate that is not an attribute is refused before anything is written
    result = _run([*args[:3], *args[5:], "--covariate", "channel"])
    assert result.exit_code == 2 and "give it with --attribute" in result.stderr
