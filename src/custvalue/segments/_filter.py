"""The targeting-filter language of :func:`custvalue.segments.select`.

A filter is parsed by a small tokenizer and recursive-descent parser into a tree of
predicates, and the tree is evaluated column-wise with numpy/pandas. Nothing in the text is ever
executed: there is no ``eval``, no ``DataFrame.query`` and no SQL; a name can only refer to a
column of the customer table, and the only operations are those of the grammar below.

Grammar (keywords are case-insensitive)::

    filter     := or
    or         := and ("or" and)*
    and        := not ("and" not)*
    not        := "not" not | "(" or ")" | predicate
    predicate  := field                                   -- a boolean column
                | field op value                          -- op: = == != < <= > >=
                | field ["not"] "in" "[" value ("," value)* "]"
                | field ["not"] "between" value "and" value      (inclusive)
                | field "has" value                       -- a list / ';'-joined column holds it
                | field "within" NUMBER "days"            -- yearly anniversary in the next N days
                | field "within" ("last" | "next") NUMBER "days"
    value      := NUMBER | "string" | 'string' | true | false | field
    field      := NAME | `any column name`

Semantics:

* Numbers compare with numeric columns, strings with text and categorical columns, ``true`` /
  ``false`` with boolean columns, and strings with date columns: a date without a time of day
  stands for that whole day, so ``first_purchase between "2024-01-01" and "2024-06-30"`` includes
  purchases at any time on 30 June, ``d > "2024-06-30"`` starts on 1 July, and ``d = "2024-06-30"``
  is any time that day.
* ``has``: the column holds several values per customer, as a list/tuple/set per row or as text
  joined by ``;`` (``"shoes;bags"``); true when one of them equals the value. On a column with one
  value per customer it is equality.
* ``within N days``: the date's next yearly anniversary (month and day; 29 February counts as 28
  February in other years) falls on the reference date or one of the N days after it, across the
  turn of the year (``birthday within 7 days``). ``within last N days`` / ``within next N days``:
  the date itself lies in ``[reference - N days, reference]`` / ``[reference, reference + N days]``
  (whole days).
* A missing value matches no predicate; ``not`` negates the result, so ``not x = 1`` includes
  customers with a missing ``x``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from ..errors import ParameterError

__all__ = ["FilterError", "evaluate", "parse"]

#: Keywords (lower case); they cannot be field names unless written in backticks.
KEYWORDS = frozenset(
    {
        "and",
        "or",
        "not",
        "in",
        "between",
        "has",
        "within",
        "days",
        "day",
        "last",
        "next",
        "true",
        "false",
    }
)
_OPS = ("==", "!=", "<=", ">=", "=", "<", ">")
_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<number>-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<quoted>`[^`]+`)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>==|!=|<=|>=|=|<|>)
  | (?P<punct>[()\[\],])
    """,
    re.VERBOSE,
)
_MAX_LENGTH = 10_000


class FilterError(ParameterError):
    """A filter that cannot be parsed or evaluated (syntax, unknown field, type mismatch)."""


def _caret(text: str, pos: int, message: str) -> FilterError:
    return FilterError(f"{message}\n  {text}\n  {' ' * pos}^")


@dataclasses.dataclass(frozen=True)
class Token:
    kind: str  # number, string, name, field, op, punct, keyword, end
    value: Any
    pos: int


def tokenize(text: str) -> list[Token]:
    """Split a filter into tokens; an unknown character is a :class:`FilterError` with a caret."""
    if not isinstance(text, str):
        raise FilterError(f"a filter must be a string, got {type(text).__name__}")
    if len(text) > _MAX_LENGTH:
        raise FilterError(
            f"a filter may have at most {_MAX_LENGTH:,} characters, got {len(text):,}"
        )
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            ch = text[pos]
            hint = {
                ".": " (attribute access is not part of the filter language)",
                ";": " (a filter is one expression; ';' separates nothing)",
            }.get(ch, "")
            raise _caret(text, pos, f"unexpected character {ch!r} at position {pos}{hint}")
        kind = m.lastgroup
        raw = m.group()
        if kind == "number":
            if m.end() < len(text) and (text[m.end()].isalpha() or text[m.end()] == "_"):
                raise _caret(
                    text, m.end(), f"a number cannot run into a name at position {m.end()}"
                )
            tokens.append(
                Token("number", float(raw) if any(c in raw for c in ".eE") else int(raw), pos)
            )
        elif kind == "string":
            body = raw[1:-1]
            tokens.append(Token("string", re.sub(r"\\(.)", r"\1", body), pos))
        elif kind == "quoted":
            tokens.append(Token("field", raw[1:-1], pos))
        elif kind == "name":
            low = raw.lower()
            if low in KEYWORDS:
                tokens.append(Token("keyword", low, pos))
            else:
                tokens.append(Token("field", raw, pos))
        elif kind in ("op", "punct"):
            tokens.append(Token(kind, raw, pos))
        pos = m.end()
    tokens.append(Token("end", None, len(text)))
    return tokens


# ------------------------------------------------------------------------------------------------
# syntax tree
# ------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Field:
    name: str
    pos: int


@dataclasses.dataclass(frozen=True)
class Literal:
    value: Any  # int, float, str or bool
    pos: int


@dataclasses.dataclass(frozen=True)
class BoolOp:
    op: str  # "and" / "or"
    items: tuple[Any, ...]


@dataclasses.dataclass(frozen=True)
class Not:
    item: Any


@dataclasses.dataclass(frozen=True)
class Truthy:
    field: Field


@dataclasses.dataclass(frozen=True)
class Compare:
    field: Field
    op: str
    value: Field | Literal


@dataclasses.dataclass(frozen=True)
class In:
    field: Field
    values: tuple[Literal, ...]


@dataclasses.dataclass(frozen=True)
class Between:
    field: Field
    low: Field | Literal
    high: Field | Literal


@dataclasses.dataclass(frozen=True)
class Has:
    field: Field
    value: Literal


@dataclasses.dataclass(frozen=True)
class Within:
    field: Field
    days: int
    mode: str  # "anniversary", "last", "next"


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def fail(self, message: str, tok: Token | None = None) -> FilterError:
        tok = tok or self.tok
        return _caret(self.text, tok.pos, f"{message} at position {tok.pos}")

    def _describe(self, tok: Token) -> str:
        if tok.kind == "end":
            return "the end of the filter"
        if tok.kind == "string":
            return f"the string {tok.value!r}"
        return repr(str(tok.value))

    def is_kw(self, *words: str) -> bool:
        return self.tok.kind == "keyword" and self.tok.value in words

    def expect_kw(self, word: str) -> Token:
        if not self.is_kw(word):
            raise self.fail(f"expected {word!r} but found {self._describe(self.tok)}")
        tok = self.tok
        self.i += 1
        return tok

    def expect_punct(self, ch: str) -> Token:
        if not (self.tok.kind == "punct" and self.tok.value == ch):
            raise self.fail(f"expected {ch!r} but found {self._describe(self.tok)}")
        tok = self.tok
        self.i += 1
        return tok

    def parse(self) -> Any:
        if self.tok.kind == "end":
            raise self.fail("the filter is empty")
        node = self.parse_or()
        if self.tok.kind != "end":
            raise self.fail(
                f"unexpected {self._describe(self.tok)}; expected 'and', 'or' or the end"
            )
        return node

    def parse_or(self) -> Any:
        items = [self.parse_and()]
        while self.is_kw("or"):
            self.i += 1
            items.append(self.parse_and())
        return items[0] if len(items) == 1 else BoolOp("or", tuple(items))

    def parse_and(self) -> Any:
        items = [self.parse_not()]
        while self.is_kw("and"):
            self.i += 1
            items.append(self.parse_not())
        return items[0] if len(items) == 1 else BoolOp("and", tuple(items))

    def parse_not(self) -> Any:
        if self.is_kw("not"):
            self.i += 1
            return Not(self.parse_not())
        if self.tok.kind == "punct" and self.tok.value == "(":
            self.i += 1
            node = self.parse_or()
            self.expect_punct(")")
            return node
        return self.parse_predicate()

    def parse_field(self) -> Field:
        tok = self.tok
        if tok.kind != "field":
            if tok.kind == "keyword":
                raise self.fail(
                    f"expected a field name but found the keyword {tok.value!r} "
                    "(write a column with that name in backticks)"
                )
            raise self.fail(f"expected a field name but found {self._describe(tok)}")
        self.i += 1
        return Field(tok.value, tok.pos)

    def parse_value(self, *, allow_field: bool = True) -> Field | Literal:
        tok = self.tok
        if tok.kind in ("number", "string"):
            self.i += 1
            return Literal(tok.value, tok.pos)
        if self.is_kw("true", "false"):
            self.i += 1
            return Literal(tok.value == "true", tok.pos)
        if tok.kind == "field" and allow_field:
            return self.parse_field()
        raise self.fail(
            f'expected a value (number, "string", true or false) but found {self._describe(tok)}'
        )

    def parse_predicate(self) -> Any:
        field = self.parse_field()
        tok = self.tok
        if tok.kind == "punct" and tok.value == "(":
            raise self.fail("function calls are not part of the filter language")
        if tok.kind == "op":
            self.i += 1
            op = "==" if tok.value == "=" else tok.value
            return Compare(field, op, self.parse_value())
        negate = False
        if self.is_kw("not"):
            self.i += 1
            negate = True
            if not self.is_kw("in", "between"):
                raise self.fail(
                    f"expected 'in' or 'between' after 'not' but found {self._describe(self.tok)}"
                )
        if self.is_kw("in"):
            self.i += 1
            node: Any = In(field, self.parse_list())
        elif self.is_kw("between"):
            self.i += 1
            low = self.parse_value()
            self.expect_kw("and")
            node = Between(field, low, self.parse_value())
        elif self.is_kw("has"):
            self.i += 1
            value = self.parse_value(allow_field=False)
            node = Has(field, value)  # type: ignore[arg-type]
        elif self.is_kw("within"):
            self.i += 1
            mode = "anniversary"
            if self.is_kw("last", "next"):
                mode = self.tok.value
                self.i += 1
            num = self.tok
            if num.kind != "number" or not isinstance(num.value, int) or num.value < 0:
                raise self.fail(f"expected a whole number of days but found {self._describe(num)}")
            self.i += 1
            if not self.is_kw("days", "day"):
                raise self.fail(f"expected 'days' but found {self._describe(self.tok)}")
            self.i += 1
            node = Within(field, int(num.value), mode)
        else:
            return Truthy(field)
        return Not(node) if negate else node

    def parse_list(self) -> tuple[Literal, ...]:
        open_tok = self.tok
        if not (open_tok.kind == "punct" and open_tok.value in "[("):
            raise self.fail(
                f'expected a list such as ["a", "b"] but found {self._describe(open_tok)}'
            )
        close = "]" if open_tok.value == "[" else ")"
        self.i += 1
        values: list[Literal] = []
        while True:
            value = self.parse_value(allow_field=False)
            values.append(value)  # type: ignore[arg-type]
            if self.tok.kind == "punct" and self.tok.value == ",":
                self.i += 1
                continue
            self.expect_punct(close)
            return tuple(values)


def parse(text: str) -> Any:
    """Parse a filter into its syntax tree (see the module docstring for the grammar).

    Raises
    ------
    FilterError
        With the filter and a caret under the position where it breaks.
    """
    return _Parser(text).parse()


def has_fields(node: Any) -> list[str]:
    """Names of the fields used with ``has`` (they need every value a customer has)."""
    out: list[str] = []

    def walk(n: Any) -> None:
        if isinstance(n, Has):
            out.append(n.field.name)
        elif isinstance(n, BoolOp):
            for item in n.items:
                walk(item)
        elif isinstance(n, Not):
            walk(n.item)

    walk(node)
    return list(dict.fromkeys(out))


def fields(node: Any) -> list[Field]:
    """Every field a syntax tree refers to, in order of appearance."""
    out: list[Field] = []

    def walk(n: Any) -> None:
        if isinstance(n, Field):
            out.append(n)
        elif isinstance(n, BoolOp):
            for item in n.items:
                walk(item)
        elif isinstance(n, Not):
            walk(n.item)
        elif dataclasses.is_dataclass(n):
            for f in dataclasses.fields(n):
                value = getattr(n, f.name)
                for v in value if isinstance(value, tuple) else (value,):
                    walk(v)

    walk(node)
    return out


# ------------------------------------------------------------------------------------------------
# evaluation
# ------------------------------------------------------------------------------------------------
def _kind(s: pd.Series) -> str:
    if ptypes.is_bool_dtype(s.dtype):
        return "boolean"
    if ptypes.is_datetime64_any_dtype(s.dtype):
        return "date"
    if ptypes.is_numeric_dtype(s.dtype):
        return "number"
    if isinstance(s.dtype, pd.CategoricalDtype):
        cats = s.cat.categories
        if ptypes.is_numeric_dtype(cats.dtype) and not ptypes.is_bool_dtype(cats.dtype):
            return "number-category"
        return "text"
    if ptypes.is_string_dtype(s.dtype) or s.dtype == object:
        sample = s.dropna().head(50)
        if len(sample) and all(
            isinstance(v, (list, tuple, set, frozenset, np.ndarray)) for v in sample
        ):
            return "list"
        if len(sample) and all(isinstance(v, (bool, np.bool_)) for v in sample):
            return "boolean"
        return "text"
    return "other"


class _Evaluator:
    def __init__(self, text: str, frame: pd.DataFrame, today: pd.Timestamp) -> None:
        self.text = text
        self.frame = frame
        self.today = today
        self.n = len(frame)
        self._cache: dict[str, pd.Series] = {}

    def fail(self, pos: int, message: str) -> FilterError:
        return _caret(self.text, pos, message)

    def available(self) -> str:
        names = [str(self.frame.index.name or "customer_id")] + [str(c) for c in self.frame.columns]
        return ", ".join(f"{n} ({_kind(self.column_by_name(n))})" for n in names)

    def column_by_name(self, name: str) -> pd.Series:
        if name in self._cache:
            return self._cache[name]
        if name in self.frame.columns:
            col = self.frame[name]
            if isinstance(col, pd.DataFrame):
                col = col.iloc[:, 0]
        else:
            col = pd.Series(self.frame.index, index=self.frame.index, name=name)
        self._cache[name] = col
        return col

    def column(self, field: Field) -> pd.Series:
        index_name = str(self.frame.index.name or "customer_id")
        if field.name not in self.frame.columns and field.name != index_name:
            raise self.fail(
                field.pos,
                f"unknown field {field.name!r} at position {field.pos}; available fields: "
                f"{self.available()}",
            )
        return self.column_by_name(field.name)

    def run(self, node: Any) -> np.ndarray:
        if isinstance(node, BoolOp):
            parts = [self.run(item) for item in node.items]
            return np.logical_and.reduce(parts) if node.op == "and" else np.logical_or.reduce(parts)
        if isinstance(node, Not):
            return ~self.run(node.item)
        if isinstance(node, Truthy):
            col = self.column(node.field)
            if _kind(col) != "boolean":
                raise self.fail(
                    node.field.pos,
                    f"field {node.field.name!r} is {_kind(col)}, not boolean, so it cannot stand "
                    f"alone as a condition; compare it (e.g. {node.field.name} = ...)",
                )
            return col.fillna(False).astype(bool).to_numpy()
        if isinstance(node, Compare):
            return self.compare(node.field, node.op, node.value)
        if isinstance(node, In):
            return self.isin(node)
        if isinstance(node, Between):
            return self.compare(node.field, ">=", node.low) & self.compare(
                node.field, "<=", node.high
            )
        if isinstance(node, Has):
            return self.has(node)
        if isinstance(node, Within):
            return self.within(node)
        raise TypeError(f"unknown node {node!r}")  # pragma: no cover - the parser builds no other

    # -- comparisons ---------------------------------------------------------------------------
    def _type_error(self, field: Field, col: pd.Series, value: Any, what: str) -> FilterError:
        return self.fail(
            value.pos if isinstance(value, (Field, Literal)) else field.pos,
            f"type mismatch: field {field.name!r} is {_kind(col)} but {what}",
        )

    def _date_bounds(
        self, field: Field, col: pd.Series, value: Literal
    ) -> tuple[pd.Timestamp, pd.Timestamp]:
        if not isinstance(value.value, str):
            raise self._type_error(
                field,
                col,
                value,
                f'is compared with {value.value!r}; write a date in quotes, e.g. "2024-06-30"',
            )
        try:
            ts = pd.Timestamp(value.value)
        except (ValueError, TypeError):
            raise self.fail(
                value.pos, f'{value.value!r} is not a date (use "YYYY-MM-DD")'
            ) from None
        if ts is pd.NaT:
            raise self.fail(value.pos, f'{value.value!r} is not a date (use "YYYY-MM-DD")')
        tz = getattr(col.dtype, "tz", None)
        if tz is not None and ts.tzinfo is None:
            ts = ts.tz_localize(tz)
        date_only = re.fullmatch(r"\s*\d{4}-\d{1,2}-\d{1,2}\s*", value.value) is not None
        return ts, (ts + pd.Timedelta(days=1) if date_only else ts)

    def compare(self, field: Field, op: str, value: Field | Literal) -> np.ndarray:
        col = self.column(field)
        kind = _kind(col)
        if isinstance(value, Field):
            other = self.column(value)
            okind = _kind(other)
            if kind != okind or kind not in ("number", "date", "text"):
                raise self.fail(
                    value.pos,
                    f"type mismatch: cannot compare {field.name!r} ({kind}) with {value.name!r} ({okind})",
                )
            if kind == "text" and op not in ("==", "!="):
                raise self.fail(
                    value.pos, f"text fields can only be compared with = or !=, not {op}"
                )
            return self._apply(
                col.to_numpy(),
                op,
                other.to_numpy(),
                col.isna().to_numpy() | other.isna().to_numpy(),
            )
        missing = col.isna().to_numpy()
        v = value.value
        if kind == "date":
            start, end = self._date_bounds(field, col, value)
            arr = col.to_numpy()
            start_v, end_v = (
                np.datetime64(start.tz_localize(None) if start.tzinfo else start),
                np.datetime64(end.tz_localize(None) if end.tzinfo else end),
            )
            if getattr(col.dtype, "tz", None) is not None:
                arr = col.dt.tz_convert(None).to_numpy()
            with np.errstate(invalid="ignore"):
                res = {
                    "==": (arr >= start_v) & (arr < end_v),
                    "!=": (arr < start_v) | (arr >= end_v),
                    "<": arr < start_v,
                    "<=": arr < end_v,
                    ">": arr >= end_v,
                    ">=": arr >= start_v,
                }[op]
            return res & ~missing
        if kind in ("number", "number-category"):
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise self._type_error(
                    field, col, value, f"is compared with {v!r}; compare it with a number"
                )
            arr = (
                col.astype(float).to_numpy()
                if kind == "number-category"
                else col.to_numpy(dtype=float, na_value=np.nan)
            )
            return self._apply(arr, op, v, missing)
        if kind == "boolean":
            if not isinstance(v, bool) or op not in ("==", "!="):
                raise self._type_error(
                    field, col, value, "can only be compared with = true / = false"
                )
            return self._apply(col.fillna(not v).astype(bool).to_numpy(), op, v, missing)
        if kind == "text":
            if not isinstance(v, str):
                raise self._type_error(
                    field, col, value, f"is compared with {v!r}; put the text in quotes"
                )
            if op not in ("==", "!="):
                raise self.fail(
                    value.pos,
                    f"text fields can only be compared with = or != (or in / has), not {op}",
                )
            return self._by_unique(col, lambda u: u == v, op == "!=")
        raise self._type_error(field, col, value, "its values cannot be compared (lists: use has)")

    @staticmethod
    def _apply(arr: Any, op: str, v: Any, missing: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            res = {
                "==": arr == v,
                "!=": arr != v,
                "<": arr < v,
                "<=": arr <= v,
                ">": arr > v,
                ">=": arr >= v,
            }[op]
        return np.asarray(res, dtype=bool) & ~missing

    def _by_unique(self, col: pd.Series, test: Any, negate: bool = False) -> np.ndarray:
        """Evaluate ``test`` once per distinct value (vectorised over rows through the codes)."""
        if isinstance(col.dtype, pd.CategoricalDtype):
            codes = col.cat.codes.to_numpy()
            uniques = np.asarray(col.cat.categories, dtype=object)
        else:
            codes, uniques = pd.factorize(col, use_na_sentinel=True)
            uniques = np.asarray(uniques, dtype=object)
        hit = np.fromiter((bool(test(u)) for u in uniques), dtype=bool, count=len(uniques))
        if negate:
            hit = ~hit
        out = np.zeros(len(col), dtype=bool)
        valid = codes >= 0
        out[valid] = hit[codes[valid]]
        return out

    def isin(self, node: In) -> np.ndarray:
        col = self.column(node.field)
        kind = _kind(col)
        values = [lit.value for lit in node.values]
        if kind in ("number", "number-category"):
            bad = [
                lit
                for lit in node.values
                if isinstance(lit.value, bool) or not isinstance(lit.value, (int, float))
            ]
            if bad:
                raise self._type_error(
                    node.field, col, bad[0], f"the list holds {bad[0].value!r}; use numbers"
                )
            arr = (
                col.astype(float).to_numpy()
                if kind == "number-category"
                else col.to_numpy(dtype=float, na_value=np.nan)
            )
            return np.isin(arr, np.asarray(values, dtype=float)) & ~col.isna().to_numpy()
        if kind == "text":
            bad = [lit for lit in node.values if not isinstance(lit.value, str)]
            if bad:
                raise self._type_error(
                    node.field, col, bad[0], f"the list holds {bad[0].value!r}; put text in quotes"
                )
            wanted = set(values)
            return self._by_unique(col, lambda u: u in wanted)
        if kind == "boolean":
            bad = [lit for lit in node.values if not isinstance(lit.value, bool)]
            if bad:
                raise self._type_error(
                    node.field, col, bad[0], f"the list holds {bad[0].value!r}; use true / false"
                )
            arr = col.fillna(False).astype(bool).to_numpy()
            return np.isin(arr, np.asarray(values, dtype=bool)) & ~col.isna().to_numpy()
        if kind == "date":
            parts = [self.compare(node.field, "==", lit) for lit in node.values]
            return np.logical_or.reduce(parts)
        raise self._type_error(
            node.field,
            col,
            node.values[0],
            "'in' needs a number, text, boolean or date field (lists: use has)",
        )

    def has(self, node: Has) -> np.ndarray:
        col = self.column(node.field)
        kind = _kind(col)
        v = node.value.value
        if kind == "list":
            flat = col.explode()
            pos = np.repeat(
                np.arange(self.n),
                col.map(
                    lambda x: (
                        max(len(x), 1)
                        if isinstance(x, (list, tuple, set, frozenset, np.ndarray))
                        else 1
                    )
                ).to_numpy(),
            )
            hit = (flat == v).to_numpy(dtype=bool, na_value=False)
            out = np.zeros(self.n, dtype=bool)
            np.logical_or.at(out, pos, hit)
            return out
        if kind == "text":
            if not isinstance(v, str):
                raise self._type_error(
                    node.field, col, node.value, f"'has' looks for {v!r}; put text in quotes"
                )
            return self._by_unique(
                col, lambda u: isinstance(u, str) and v in (p.strip() for p in u.split(";"))
            )
        if kind in ("number", "number-category", "boolean"):
            return self.compare(node.field, "==", node.value)
        raise self._type_error(node.field, col, node.value, "'has' needs a list or text field")

    def within(self, node: Within) -> np.ndarray:
        col = self.column(node.field)
        kind = _kind(col)
        if kind == "text":  # dates stored as text, e.g. birthdays from a CSV
            parsed = pd.to_datetime(col, errors="coerce", format="ISO8601")
            if parsed.notna().sum() < col.notna().sum():
                raise self.fail(
                    node.field.pos,
                    f"type mismatch: field {node.field.name!r} holds values that are not dates, e.g. {col[parsed.isna() & col.notna()].iloc[0]!r}",
                )
            col = parsed
        elif kind != "date":
            raise self.fail(
                node.field.pos,
                f"type mismatch: 'within ... days' needs a date field, and {node.field.name!r} is {kind}",
            )
        if getattr(col.dtype, "tz", None) is not None:
            col = col.dt.tz_convert(None)
        today = self.today.normalize()
        if node.mode == "anniversary":
            return anniversary_within(col, today, node.days)
        days = col.to_numpy().astype("datetime64[D]")
        missing = col.isna().to_numpy()
        t = np.datetime64(today.date(), "D")
        if node.mode == "last":
            return (days >= t - node.days) & (days <= t) & ~missing
        return (days >= t) & (days <= t + node.days) & ~missing


def _is_leap(year: np.ndarray) -> np.ndarray:
    return (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))


def anniversary_within(dates: pd.Series, today: pd.Timestamp, days: int) -> np.ndarray:
    """True where the next yearly anniversary of ``dates`` is ``today`` or within ``days`` after.

    29 February counts as 28 February in years without it. Missing dates give False.
    """
    values = dates.to_numpy(dtype="datetime64[ns]")
    missing = np.isnat(values)
    day_num = values.astype("datetime64[D]")
    month_start = day_num.astype("datetime64[M]")
    month = np.where(missing, 0, month_start.astype(np.int64) % 12)  # 0 = January
    day = np.where(missing, 1, (day_num - month_start.astype("datetime64[D]")).astype(np.int64) + 1)
    t = np.datetime64(today.normalize().date(), "D")
    best = np.full(len(values), np.iinfo(np.int64).max)
    for year in (today.year, today.year + 1):  # this year's anniversary, else next year's
        starts = (np.datetime64(f"{year:04d}-01", "M") + np.arange(12)).astype(
            "datetime64[D]"
        )  # first day of each month of that year
        leap = bool(_is_leap(np.array([year]))[0])
        d = day if leap else np.where((month == 1) & (day == 29), 28, day)
        delta = (starts[month] + (d - 1) - t).astype(np.int64)
        best = np.where((delta >= 0) & (best == np.iinfo(np.int64).max), delta, best)
    return (best <= days) & ~missing


def evaluate(text: str, frame: pd.DataFrame, *, today: Any = None) -> np.ndarray:
    """Boolean mask (one entry per row of ``frame``) of the customers a filter selects.

    Parameters
    ----------
    text : str
        The filter (see the module docstring for the language).
    frame : pandas.DataFrame
        The customer table; the index (``customer_id``) is a field too.
    today : date-like, optional
        Reference date of ``within`` (default: today's date).

    Raises
    ------
    FilterError
        Syntax errors, unknown fields (the message lists the available ones) and type mismatches,
        each with a caret under the offending position.
    """
    node = parse(text)
    ref = pd.Timestamp.today().normalize() if today is None else pd.Timestamp(today)
    ev = _Evaluator(text, frame, ref)
    for field in fields(node):  # unknown fields first, before any work
        ev.column(field)
    mask = ev.run(node)
    return np.asarray(mask, dtype=bool).reshape(len(frame))


def describe_fields(frame: pd.DataFrame) -> dict[str, str]:
    """Field name -> its kind in the filter language (number, text, date, boolean, list)."""
    ev = _Evaluator("", frame, pd.Timestamp.today())
    names: Sequence[str] = [str(frame.index.name or "customer_id"), *map(str, frame.columns)]
    return {n: _kind(ev.column_by_name(n)) for n in names}
