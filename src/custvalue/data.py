"""Loading and validating transaction logs.

:func:`load_transactions` turns a raw export -- a pandas DataFrame, CSV or Parquet files, a DuckDB
table or relation -- into the canonical transaction frame every other module consumes:

================  ===================================================================
``customer_id``   int64 when the source ids are integers (also float ids that are all
                  whole numbers, e.g. a pandas int column with NaN; and text ids in CSV
                  files that are *all* canonical integers -- no leading zeros, no ``+``,
                  checked on every row -- so two distinct texts never become one id);
                  else strings with blanks stripped
``date``          tz-naive ``datetime64``
``amount``        float64, after the returns policy
``order_id``      only when ``order_col`` is given
attributes        whatever the caller names (region, channel, membership flags, ...)
================  ===================================================================

Every column argument may be a column name or a SQL expression evaluated by DuckDB, so real
exports work without pre-processing (``amount_col="Quantity * UnitPrice"``, an attribute
``"is_uk=Country = 'United Kingdom'"``). The work is done by DuckDB: a DataFrame is scanned in
place (never copied, never modified), files are read by DuckDB's CSV and Parquet readers.

Validation produces a :class:`DataQuality` report: for each check the rows affected, example
values (with the 1-based source row number) and the action taken. The checks run in a fixed
order and each one sees only the rows the earlier checks kept, so ``n_rows_in`` minus the rows
dropped by each check (and the purchase lines removed by netting) is ``n_rows_out``:

1. missing columns -- raises :class:`~custvalue.errors.DataValidationError` listing the columns
   that exist and close matches;
2. exact duplicate rows -- rows equal to an earlier row in *every* source column (the first
   occurrence is kept);
3. missing customer ids -- null, blank, or the text ``nan``/``none``/``null``/``<NA>``;
4. missing dates;
5. unparseable dates -- with the raw values as examples;
6. missing or non-numeric amounts (including NaN and infinities);
7. mixed time zones -- time-zone-aware values are converted to one zone and made naive;
8. dates in the far future -- on or after today + 1 year: dropped by default
   (``future_dates="keep"`` keeps them);
9. dates after the observation end;
10. cancelled orders -- when ``cancelled`` says how orders are marked;
11. zero amounts -- kept by default (they are purchases of zero value);
12. negative amounts -- returns, handled by the ``returns`` policy (see below);
13. empty input after cleaning -- raises :class:`~custvalue.errors.DataValidationError`.

Each check is found in code by its :class:`CheckId`; the report states the rule each applied
(:attr:`DataQuality.rules`), including how text dates were read.

Sources and time zones
----------------------
Sources are opened by :mod:`custvalue._sources`, the layer shared with the summaries: CSV
columns are typed from every value (a ``"00123"`` or an ``"n/a"`` past the first rows is
treated as it would be at the top), dates in CSV files are text read by the rules below
whatever the reader would have guessed, and DuckDB runs in UTC so results do not depend on
the machine's time zone. Column expressions run on a connection that cannot read files or
URLs, and subqueries or file functions in them are refused.

Returns policy ``"net"`` (the default)
--------------------------------------
A negative row is a return of value ``R = -amount``. It is netted against exactly one purchase
of the same customer, where a *purchase* is an order (all positive lines with one
``order_id``) when ``order_col`` is given, and otherwise all positive lines of the customer at one
timestamp:

* the purchase with the same ``order_id`` (for cancelled orders marked by a prefix, the order id
  without the prefix), if there is one;
* else the customer's most recent purchase at or before the return's date (ties between orders
  with the same timestamp: the largest order id).

All returns that target one purchase are summed; each of the purchase's lines is scaled by
``max(0, 1 - R_total / P)`` where ``P`` is the purchase's value, so no purchase becomes negative.
Lines scaled to zero (fully returned) are removed. The excess ``max(0, R_total - P)`` and returns
with no earlier purchase are dropped; their count and value are reported. Return rows themselves
never reach the output. ``"drop"`` drops negative rows; ``"error"`` raises a
:class:`~custvalue.errors.DataValidationError` with their count and examples.
"""

from __future__ import annotations

import difflib
import enum
import html
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import duckdb
import pandas as pd

from ._sources import FLOAT_TYPES as _FLOAT_TYPES
from ._sources import INT_TYPES as _INT_TYPES
from ._sources import Source as _Source
from ._sources import base_type as _base_type
from ._sources import check_expression, open_source, parse_attributes
from ._sources import first_line as _first_line
from ._sources import ident as _ident
from ._sources import lit as _lit
from ._text import clip as _clip
from ._text import clip_list
from ._time import to_timestamp
from .errors import DataValidationError, ParameterError

#: What ``load_transactions(returns=...)`` accepts (reports read their choices from here).
ReturnsPolicy = Literal["net", "drop", "error"]

__all__ = ["CHECKS", "CheckId", "DataQuality", "load_transactions"]

class CheckId(enum.Enum):
    """The checks of :func:`load_transactions`, in the order they are applied and reported.

    Code finds a check by its member (``CheckId.RETURNS``), never by its text or position; the
    value is the name shown in :class:`DataQuality`.
    """

    MISSING_COLUMNS = "missing columns"
    DUPLICATES = "exact duplicate rows"
    MISSING_IDS = "missing customer ids"
    MISSING_DATES = "missing dates"
    BAD_DATES = "unparseable dates"
    BAD_AMOUNTS = "missing or non-numeric amounts"
    MIXED_ZONES = "mixed time zones"
    FUTURE_DATES = "dates in the far future"
    AFTER_END = "dates after observation end"
    CANCELLED = "cancelled orders"
    ZERO_AMOUNTS = "zero amounts"
    RETURNS = "negative amounts (returns)"


#: Names of the checks, in the order they are applied and reported.
CHECKS: tuple[str, ...] = tuple(c.value for c in CheckId)

CANONICAL_COLUMNS = ("customer_id", "date", "amount", "order_id")
_N_EXAMPLES = 5
_MISSING_TEXT = ("", "nan", "none", "null", "<na>", "nat")
_WS = "' \t\n\r\u00a0'"  # SQL literal: space, tab, newline, CR, no-break space
# Formats tried (after ISO 8601) when a text date column has values DuckDB cannot cast.
_DATE_FORMATS = (
    "%Y%m%d",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y",
    "%d/%m/%Y %H:%M",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y",
    "%Y/%m/%d",
    "%Y/%m/%d %H:%M:%S",
    "%d.%m.%Y",
    "%d.%m.%Y %H:%M",
    "%d.%m.%Y %H:%M:%S",
    "%d-%m-%Y",
    "%m-%d-%Y",
    "%d %b %Y",
    "%d-%b-%Y",
    "%b %d %Y",
    "%d %B %Y",
    "%B %d, %Y",
    "%m/%d/%y",
    "%d/%m/%y",
)
# A time of day followed by a zone: Z, an offset (+01, +0100, +01:00) or a zone name.
_AWARE_RE = r"[0-9]:[0-9]{2}(:[0-9]{2}([.,][0-9]+)?)?\s*([zZ]|[A-Za-z][A-Za-z_/+-]*|[+-][0-9]{2}(:?[0-9]{2})?)$"


# ------------------------------------------------------------------------------------------------
# DataQuality
# ------------------------------------------------------------------------------------------------


@dataclass
class DataQuality:
    """What :func:`load_transactions` found in the data and what it did about it.

    Attributes
    ----------
    checks : pandas.DataFrame
        One row per check (see :data:`CHECKS`) with columns ``check``, ``rows_affected`` (int),
        ``examples`` (text: up to five offending values with their 1-based source row) and
        ``action`` (what was done). Checks run in order; each counts only rows kept so far.
    n_rows_in : int
        Rows in the source.
    n_rows_out : int
        Rows in the returned transaction frame.
    source : str
        Description of the source.
    columns : dict
        Canonical column -> the source column or SQL expression it came from.
    notes : list of str
        Further facts: date format used, date range, time zone, ...
    rules : dict
        Check name -> the rule it applied (what counts as a finding, with the thresholds and
        formats actually used), so a reader can tell what each row of the table means.
    """

    checks: pd.DataFrame
    n_rows_in: int
    n_rows_out: int
    source: str = ""
    columns: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    rules: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when no check found anything (every ``rows_affected`` is 0)."""
        return bool((self.checks["rows_affected"] == 0).all())

    @property
    def n_rows_dropped(self) -> int:
        """Rows in minus rows out."""
        return self.n_rows_in - self.n_rows_out

    def to_frame(self) -> pd.DataFrame:
        """The checks table (a copy), indexed 0..n-1."""
        return self.checks.copy()

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable form (for run metadata and provenance files)."""
        return {
            "source": self.source,
            "n_rows_in": int(self.n_rows_in),
            "n_rows_out": int(self.n_rows_out),
            "ok": self.ok,
            "columns": dict(self.columns),
            "checks": [
                {"check": str(r.check), "rows_affected": int(r.rows_affected),
                 "examples": str(r.examples), "action": str(r.action),
                 "rule": self.rules.get(str(r.check), "")}
                for r in self.checks.itertuples(index=False)
            ],
            "notes": list(self.notes),
        }

    def _headline(self) -> str:
        verdict = "no problems found" if self.ok else "problems found and handled"
        return (
            f"Data quality: {self.n_rows_in:,} rows in, {self.n_rows_out:,} rows out "
            f"({verdict})"
        )

    def __str__(self) -> str:
        lines = [self._headline()]
        if self.source:
            lines.append(f"source: {self.source}")
        if self.columns:
            lines.append(
                "columns: " + ", ".join(f"{k} <- {v}" for k, v in self.columns.items())
            )
        width = max(len(c) for c in self.checks["check"]) if len(self.checks) else 10
        lines.append("")
        lines.append(f"  {'check':<{width}}  {'rows':>10}  action")
        for row in self.checks.itertuples(index=False):
            flag = "!" if row.rows_affected else " "
            lines.append(f"{flag} {row.check:<{width}}  {row.rows_affected:>10,}  {row.action}")
            if row.examples:
                lines.append(f"  {'':<{width}}  {'':>10}  e.g. {row.examples}")
        if self.rules:
            lines.append("")
            lines.append("rules applied:")
            lines.extend(f"  {k}: {v}" for k, v in self.rules.items())
        if self.notes:
            lines.append("")
            lines.extend(f"note: {n}" for n in self.notes)
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (
            f"<DataQuality: {self.n_rows_in:,} rows in, {self.n_rows_out:,} out, "
            f"{int((self.checks['rows_affected'] > 0).sum())} checks with findings>"
        )

    def _repr_html_(self) -> str:
        esc = html.escape
        rows = []
        for row in self.checks.itertuples(index=False):
            style = ' style="background:#fff4e5"' if row.rows_affected else ""
            rows.append(
                f"<tr{style}><td>{esc(row.check)}</td>"
                f'<td style="text-align:right">{row.rows_affected:,}</td>'
                f"<td>{esc(row.action)}</td><td><code>{esc(row.examples)}</code></td>"
                f"<td>{esc(self.rules.get(str(row.check), ''))}</td></tr>"
            )
        parts = [
            '<div class="cv-data-quality">',
            f"<p><b>{esc(self._headline())}</b></p>",
        ]
        if self.source:
            parts.append(f"<p>Source: {esc(self.source)}</p>")
        if self.columns:
            parts.append(
                "<p>Columns: "
                + ", ".join(
                    f"<code>{esc(k)}</code> &larr; <code>{esc(v)}</code>"
                    for k, v in self.columns.items()
                )
                + "</p>"
            )
        parts.append(
            '<table class="cv-quality"><thead><tr><th>check</th><th>rows affected</th>'
            "<th>action</th><th>examples</th><th>rule</th></tr></thead><tbody>"
            + "".join(rows)
            + "</tbody></table>"
        )
        if self.notes:
            parts.append("<ul>" + "".join(f"<li>{esc(n)}</li>" for n in self.notes) + "</ul>")
        parts.append("</div>")
        return "\n".join(parts)


# ------------------------------------------------------------------------------------------------
# Columns and expressions
# ------------------------------------------------------------------------------------------------


@dataclass
class _Expr:
    role: str  # argument name, e.g. "amount_col"
    given: str  # what the caller passed
    sql: str  # SQL over the source
    type: str  # DuckDB type name
    is_column: bool


_IDENT_LIKE = re.compile(r"[\w .\-/#]+")


@dataclass
class _Problems:
    """What is wrong with the column arguments, by kind (each kind heads its own message)."""

    missing: list[str] = field(default_factory=list)  # no such column
    invalid: list[str] = field(default_factory=list)  # not a valid expression
    refused: list[str] = field(default_factory=list)  # reads outside the row

    def __bool__(self) -> bool:
        return bool(self.missing or self.invalid or self.refused)


def _resolve(src: _Source, role: str, given: Any, problems: _Problems) -> _Expr | None:
    if not isinstance(given, str) or not given.strip():
        problems.invalid.append(
            f"{role}={_clip(repr(given))} must be a non-empty column name or SQL expression"
        )
        return None
    lower = {c.lower(): c for c in src.columns}
    if given in src.columns:
        sql, is_col = _ident(given), True
    elif given.lower() in lower:
        sql, is_col = _ident(lower[given.lower()]), True
    else:
        if ";" in given:
            problems.invalid.append(f"{role}={given!r}: a SQL expression may not contain ';'")
            return None
        refusal = check_expression(src.con, given, role)
        if refusal is not None:
            problems.refused.append(refusal)
            return None
        sql, is_col = f"({given})", False
    try:
        row = src.sql(f"DESCRIBE SELECT {sql} AS v FROM {src.table}").fetchall()[0]
    except duckdb.PermissionException:
        problems.refused.append(
            f"{role}={_clip(given)!r} tries to read a file or URL; column expressions may only "
            "compute on the row's own columns"
        )
        return None
    except duckdb.Error as exc:
        kind, text = _explain_missing(src, role, given, exc)
        (problems.missing if kind == "missing" else problems.invalid).append(text)
        return None
    return _Expr(role, given, sql, str(row[1]), is_col)


def _explain_missing(src: _Source, role: str, given: str, exc: BaseException) -> tuple[str, str]:
    """("missing" or "invalid", the message) for a column argument DuckDB could not bind."""
    msg = _first_line(exc)
    if _IDENT_LIKE.fullmatch(given) and not isinstance(exc, duckdb.ParserException):
        close = difflib.get_close_matches(given, src.columns, n=3, cutoff=0.5)
        close += [c for c in src.columns if given.lower() in c.lower() and c not in close][:2]
        hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
        if given in src.frame_index:
            hint += f" ({given!r} is the DataFrame's index: call .reset_index() first)"
        return "missing", f"{role}={given!r} is not a column{hint}"
    ref = re.search(r'column "?([^"\s]+)"? not found', msg, flags=re.I)
    hint = ""
    if ref:
        close = difflib.get_close_matches(ref.group(1), src.columns, n=3, cutoff=0.5)
        if close:
            hint = f" (for {ref.group(1)!r} did you mean {', '.join(map(repr, close))}?)"
    msg = re.sub(r"^\w+ Error: ", "", msg)
    kind = "missing" if ref else "invalid"
    return kind, (f"{role}={_clip(given)!r} is neither a column nor a valid SQL expression: "
                  f"{_clip(msg, 200)}{hint}")


# ------------------------------------------------------------------------------------------------
# Normalisation SQL
# ------------------------------------------------------------------------------------------------


def _missing_text_sql(col: str) -> str:
    trimmed = f"trim(CAST({col} AS VARCHAR), {_WS})"
    missing = ", ".join(_lit(t) for t in _MISSING_TEXT)
    return f"CASE WHEN lower({trimmed}) IN ({missing}) THEN NULL ELSE {trimmed} END"


def _id_sql(src: _Source, expr: _Expr, col: str, *, integerize_text: bool) -> tuple[str, str]:
    """SQL normalising an id column -> (sql, kind) where kind is 'int' or 'text'."""
    base = _base_type(expr.type)
    if base in _INT_TYPES:
        if base in ("UBIGINT", "HUGEINT", "UHUGEINT"):
            lo, hi = src.sql(
                f"SELECT min({expr.sql}), max({expr.sql}) FROM {src.table}"
            ).fetchone()
            if lo is not None and (lo < -(2**63) or hi >= 2**63):
                return f"CAST({col} AS VARCHAR)", "text"
        return f"CAST({col} AS BIGINT)", "int"
    if base in _FLOAT_TYPES or base == "DECIMAL":
        n_bad = len(src.sql(  # stops at the first non-integer value
            f"SELECT 1 FROM {src.table} WHERE {expr.sql} IS NOT NULL AND NOT ("
            f"isfinite(CAST({expr.sql} AS DOUBLE)) AND {expr.sql} = round({expr.sql}) "
            f"AND abs(CAST({expr.sql} AS DOUBLE)) < 9.0e15) LIMIT 1"
        ).fetchall())
        finite = f"CASE WHEN isfinite(CAST({col} AS DOUBLE)) THEN {col} END"
        if n_bad == 0:  # float ids that are all whole numbers (pandas ints with NaN): integers
            return f"CAST({finite} AS BIGINT)", "int"
        return f"CAST({finite} AS VARCHAR)", "text"
    text = _missing_text_sql(col)
    if integerize_text and base == "VARCHAR":
        n_bad = len(src.sql(  # stops at the first value that is not an integer
            f"SELECT 1 FROM (SELECT {_missing_text_sql(expr.sql)} AS v FROM {src.table}) "
            f"WHERE v IS NOT NULL AND NOT regexp_full_match(v, '0|-?[1-9][0-9]{{0,17}}') "
            f"LIMIT 1"
        ).fetchall())
        if n_bad == 0:
            return f"CAST({text} AS BIGINT)", "int"
    return text, "text"


@dataclass
class _DatePlan:
    sql: str  # parsed TIMESTAMP from column d_raw
    aware_sql: str  # BOOLEAN: the value carried a time zone
    offset_sql: str  # offset in minutes (for examples), NULL when naive
    mixed: bool
    notes: list[str]
    tz_action: str
    rule: str = "dates are typed by the source"  # how text dates are read


def _date_plan(
    src: _Source, expr: _Expr, date_format: str | Sequence[str] | None, timezone: str | None
) -> _DatePlan:
    base = _base_type(expr.type)
    col = "d_raw"
    notes: list[str] = []
    if base in ("DATE", "TIMESTAMP", "TIMESTAMP_NS", "TIMESTAMP_MS", "TIMESTAMP_S", "DATETIME"):
        if date_format is not None:
            notes.append(f"date_format={date_format!r} not used: the column already holds dates")
        return _DatePlan(f"CAST({col} AS TIMESTAMP)", "false", "NULL", False, notes,
                         "none: dates carry no time zone")
    if base in ("TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ"):
        zone = timezone or src.tz_hint.get(expr.given) or "UTC"
        return _DatePlan(
            f"timezone({_lit(zone)}, {col})", "false", "NULL", False, notes,
            f"none: one time zone; times converted to {zone} wall-clock time, zone dropped",
            "dates are typed by the source, with a time zone",
        )
    if base in _INT_TYPES:
        text = f"CAST({col} AS VARCHAR)"
        fmt = date_format if date_format is not None else "%Y%m%d"
        _validate_format(src, expr, f"CAST({expr.sql} AS VARCHAR)", _lit(fmt))
        notes.append(f"integer dates parsed with format {fmt!r}")
        return _DatePlan(f"try_strptime({text}, {_lit(fmt)})", "false", "NULL", False, notes,
                         "none: dates carry no time zone", f"integer dates read with {fmt!r}")
    if base != "VARCHAR":
        raise DataValidationError(
            f"date_col={expr.given!r} has type {expr.type}, which is not a date, timestamp or "
            "text; pass a column of dates or an expression that yields one"
        )
    ds = f"trim({col}, {_WS})"
    if date_format is not None:
        fmts = [date_format] if isinstance(date_format, str) else list(date_format)
        fmt_lit = _lit(fmts if len(fmts) > 1 else fmts[0])
        _validate_format(src, expr, f"trim(CAST({expr.sql} AS VARCHAR), {_WS})", fmt_lit)
        parsed = f"try_strptime({ds}, {fmt_lit})"
        rule = f"text dates read with the given date_format={date_format!r} only"
        if any("%z" in f or "%Z" in f for f in fmts):
            zone = timezone or "UTC"
            notes.append(f"dates parsed with format {date_format!r}, converted to {zone}")
            return _DatePlan(f"timezone({_lit(zone)}, {parsed})", "true", "NULL", False, notes,
                             f"zone-aware times converted to {zone} wall-clock time", rule)
        notes.append(f"dates parsed with format {date_format!r}")
        return _DatePlan(parsed, "false", "NULL", False, notes, "none: dates carry no time zone",
                         rule)

    # Text without a format: ISO 8601 first, then the best of the common formats.
    src_ds = f"trim(CAST({expr.sql} AS VARCHAR), {_WS})"
    # The candidate formats are scored on up to 2,000 distinct values that are not ISO 8601.
    not_iso = (
        f"(SELECT DISTINCT s FROM (SELECT {src_ds} AS s FROM {src.table}) "
        f"WHERE s <> '' AND TRY_CAST(s AS TIMESTAMP) IS NULL LIMIT 2000)"
    )
    fmt_counts = ", ".join(f"count(try_strptime(s, {_lit(f)}))" for f in _DATE_FORMATS)
    row = src.sql(f"SELECT count(*), {fmt_counts} FROM {not_iso}").fetchone()
    n_not_iso, counts = row[0], row[1:]
    fallback = None
    if n_not_iso and max(counts) > 0:
        best = max(range(len(counts)), key=lambda i: counts[i])  # first wins ties: month first
        fallback = _DATE_FORMATS[best]
        ties = [
            _DATE_FORMATS[i] for i, c in enumerate(counts) if c == counts[best] and i != best
        ]
        note = f"non-ISO dates parsed with format {fallback!r}"
        if ties:
            note = (
                f"ambiguous dates: every non-ISO value fits {fallback!r} and equally "
                f"{', '.join(map(repr, ties[:2]))}; read with {fallback!r} (the first in "
                "custvalue's order, month first); pass date_format= to choose"
            )
        notes.append(note)
    naive = f"TRY_CAST({ds} AS TIMESTAMP)"
    rule = "text dates read as ISO 8601 (no date_format given)"
    if fallback:  # the inferred format first: most values are in it
        naive = f"coalesce(try_strptime({ds}, {_lit(fallback)}), {naive})"
        rule = (f"text dates read with {fallback!r} (the format that parses most non-ISO "
                f"values{', ambiguous' if ties else ''}), else as ISO 8601")
    # cheap pre-filter (a '+', a '-' near the end, or a trailing letter) before the regex
    aware_sql = (
        f"coalesce((contains({ds}, '+') OR contains(right({ds}, 6), '-') OR "
        f"lower(right({ds}, 1)) BETWEEN 'a' AND 'z') AND "
        f"regexp_matches({ds}, {_lit(_AWARE_RE)}) AND TRY_CAST({ds} AS TIMESTAMPTZ) IS NOT NULL, "
        "false)"
    )
    offset_sql = (
        f"CASE WHEN {aware_sql} THEN CAST(round((epoch(TRY_CAST({ds} AS TIMESTAMP)) - "
        f"epoch(TRY_CAST({ds} AS TIMESTAMPTZ))) / 60) AS INTEGER) END"
    )
    # Profile the zones over the whole column (the trimmed text is computed once per row).
    n_aware, n_offsets, n_naive = src.sql(
        f"SELECT count(*) FILTER (WHERE a), count(DISTINCT o) FILTER (WHERE a), "
        f"count(*) FILTER (WHERE NOT a AND d_raw IS NOT NULL AND d_raw <> '') FROM ("
        f"SELECT d_raw, {aware_sql.replace(ds, 'd_raw')} AS a, "
        f"{offset_sql.replace(ds, 'd_raw')} AS o FROM (SELECT {src_ds} AS d_raw FROM {src.table}))"
    ).fetchone()
    if n_aware == 0:
        return _DatePlan(naive, "false", "NULL", False, notes, "none: dates carry no time zone",
                         rule)
    mixed = n_offsets > 1 or n_naive > 0
    if not mixed and timezone is None:
        notes.append("all dates carry the same UTC offset; its wall-clock times are used")
        return _DatePlan(naive, aware_sql, offset_sql, False, notes,
                         "none: one UTC offset; wall-clock times kept, offset dropped", rule)
    zone = timezone or "UTC"
    sql = (
        f"CASE WHEN {aware_sql} THEN timezone({_lit(zone)}, TRY_CAST({ds} AS TIMESTAMPTZ)) "
        f"ELSE {naive} END"
    )
    if mixed:
        action = (
            f"converted to {zone} and made naive ({n_offsets} distinct UTC offsets"
            + (f"; {n_naive:,} rows without a zone taken as {zone}" if n_naive else "")
            + ")"
            + ("" if timezone else "; pass timezone='Area/City' for local times")
        )
    else:
        action = f"none: one UTC offset; converted to {zone} wall-clock time"
    rule += (f"; values with a UTC offset converted to {zone} wall-clock time, values without "
             f"one read as {zone} time")
    return _DatePlan(sql, aware_sql, offset_sql, mixed, notes, action, rule)


def _validate_format(src: _Source, expr: _Expr, text_sql: str, fmt_sql: str) -> None:
    """An explicit date format must be valid and parse the column (else it is the wrong one)."""
    try:
        n_text, n_parsed, example = src.sql(
            f"SELECT count(*), count(try_strptime(t, {fmt_sql})), "
            f"any_value(t) FILTER (WHERE try_strptime(t, {fmt_sql}) IS NULL) "
            f"FROM (SELECT {text_sql} AS t FROM {src.table}) WHERE t IS NOT NULL AND t <> ''"
        ).fetchall()[0]
    except duckdb.Error as exc:
        raise ParameterError(
            f"date_format {fmt_sql} is not a valid strptime format ({_first_line(exc)}); "
            "use e.g. '%d/%m/%Y' or '%Y-%m-%d %H:%M:%S'"
        ) from None
    if n_text and not n_parsed:
        raise DataValidationError(
            f"date_format {fmt_sql} parses none of the values of date_col={expr.given!r} "
            f"(e.g. {_clip(repr(example), 40)}); pass the format the dates are written in"
        )


def _amount_sql(expr: _Expr, decimal: str = ".") -> str:
    base = _base_type(expr.type)
    if base in _INT_TYPES or base in _FLOAT_TYPES or base == "DECIMAL":
        return "CAST(a_raw AS DOUBLE)"
    if base == "VARCHAR":
        text = f"trim(a_raw, {_WS})"
        if decimal != ".":
            text = f"replace({text}, {_lit(decimal)}, '.')"
        return f"TRY_CAST({text} AS DOUBLE)"
    raise DataValidationError(
        f"amount_col={expr.given!r} has type {expr.type}, which is not numeric; pass a numeric "
        "column or an expression such as 'Quantity * UnitPrice'"
    )


# ------------------------------------------------------------------------------------------------
# load_transactions
# ------------------------------------------------------------------------------------------------


def load_transactions(
    source: Any,
    *,
    customer_col: str = "customer_id",
    date_col: str = "date",
    amount_col: str = "amount",
    order_col: str | None = None,
    attributes: Iterable[str] | Mapping[str, str] | None = (),
    returns: ReturnsPolicy = "net",
    cancelled: str | None = None,
    observation_end: Any = None,
    date_format: str | Sequence[str] | None = None,
    timezone: str | None = None,
    duplicates: str = "auto",
    zero_amounts: str = "keep",
    connection: duckdb.DuckDBPyConnection | None = None,
    read_options: Mapping[str, Any] | None = None,
    future_dates: str = "drop",
) -> tuple[pd.DataFrame, DataQuality]:
    """Load a transaction log, validate it and return the canonical frame and a quality report.

    Parameters
    ----------
    source : DataFrame, path, glob, directory, list of paths, DuckDB relation or table name
        A pandas DataFrame (scanned by DuckDB in place, never copied or modified); CSV or
        Parquet files given as a path, a glob (``"exports/*.parquet"``, ``**`` recursive), a
        directory (all ``.csv``/``.parquet`` files below it) or a list of these; a
        ``duckdb.DuckDBPyRelation``; or the name of a table or view in ``connection``.
    customer_col, date_col, amount_col : str
        Column names or DuckDB SQL expressions (``amount_col="Quantity * UnitPrice"``). Names
        are matched exactly first, then case-insensitively.
    order_col : str, optional
        Order / invoice id column (or expression). Returned as ``order_id``; used to net returns
        against the matching order and to recognise cancelled orders.
    attributes : iterable of str or mapping, optional
        Extra columns carried per row under their own names. An item may be a column, a SQL
        expression, or ``"name=expression"`` (``"is_uk=Country = 'United Kingdom'"``); a mapping
        is ``{name: expression}``.
    returns : {"net", "drop", "error"}
        What to do with negative amounts; see the module docstring for how netting works.
    cancelled : str, optional
        How cancelled orders are marked: the name of a boolean column or a SQL expression that is
        true for cancelled rows (``"Status = 'cancelled'"``); otherwise, when ``order_col`` is
        given, a prefix of cancelled order ids (``"C"`` in the Online Retail data). Cancelled rows
        with a non-negative amount are dropped (a cancelled order is not a purchase); cancelled
        rows with a negative amount are returns and go to the ``returns`` policy.
    observation_end : date-like, optional
        Rows after it are dropped. A date without a time of day means the whole day is observed.
    date_format : str or list of str, optional
        ``strptime`` format(s) for text dates (``"%d/%m/%Y %H:%M"``). By default ISO 8601 is
        tried first, then the common format that parses most values (reported in ``notes``);
        integer dates are read as ``%Y%m%d``.
    timezone : str, optional
        Zone that time-zone-aware values are converted to before the zone is dropped. Default:
        the column's own zone for a tz-aware pandas column, the common offset when all text
        values carry the same offset, else UTC.
    duplicates : {"auto", "drop", "keep"}
        What to do with exact duplicate rows (equal in every source column to an earlier row).
        ``"auto"`` (default) drops them when ``order_col`` is given — the same order line twice
        is a double export — and otherwise keeps and reports them, because without an order id
        two identical purchases on the same day can be genuine (CDNOW master has 255 such rows,
        and lifetimes counts them).
    zero_amounts : {"keep", "drop"}
        What to do with rows whose amount is exactly zero.
    connection : duckdb.DuckDBPyConnection, optional
        Connection that holds the table when ``source`` is a table name.
    read_options : mapping, optional
        Extra named options for DuckDB's ``read_csv`` / ``read_parquet`` (``{"delim": ";",
        "encoding": "latin-1"}``); ``"decimal": ","`` reads numbers written with decimal
        commas (``1,5``). CSV column types are decided from every value, not a sample (see
        :mod:`custvalue._sources`).
    future_dates : {"drop", "keep"}
        Rows dated on or after today + 1 year (or after a later ``observation_end``) are
        almost always typos or placeholders (``2099-12-31``) and would stretch every
        customer's observation period; by default they are dropped and reported.

    Returns
    -------
    transactions : DataFrame
        ``customer_id``, ``date``, ``amount`` [, ``order_id``], then the attributes, in source
        order, with a fresh RangeIndex.
    quality : DataQuality
        The checks, rows affected, examples and actions.

    Raises
    ------
    DataValidationError
        Missing columns or bad expressions (the message lists the columns that exist and close
        matches), unsupported column types, returns when ``returns="error"``, or no valid rows
        left after cleaning.
    ParameterError
        An option has an invalid value.
    FileNotFoundError
        A path, glob or directory matches no file.

    Examples
    --------
    >>> tx, quality = load_transactions(                                   # doctest: +SKIP
    ...     "online_retail.csv", customer_col="CustomerID", date_col="InvoiceDate",
    ...     amount_col="Quantity * UnitPrice", order_col="InvoiceNo", cancelled="C",
    ...     attributes=["Country"], date_format="%m/%d/%Y %H:%M")
    >>> print(quality)                                                     # doctest: +SKIP
    """
    if returns not in get_args(ReturnsPolicy):
        raise ParameterError(f"returns={returns!r}: use 'net', 'drop' or 'error'")
    if duplicates not in ("auto", "drop", "keep"):
        raise ParameterError(f"duplicates={duplicates!r}: use 'auto', 'drop' or 'keep'")
    if duplicates == "auto":
        duplicates = "drop" if order_col is not None else "keep"
    if zero_amounts not in ("keep", "drop"):
        raise ParameterError(f"zero_amounts={zero_amounts!r}: use 'keep' or 'drop'")
    if future_dates not in ("drop", "keep"):
        raise ParameterError(f"future_dates={future_dates!r}: use 'drop' or 'keep'")
    if timezone is not None:
        try:
            pd.Timestamp("2000-01-01", tz=timezone)
        except Exception as exc:
            raise ParameterError(
                f"timezone={timezone!r} is not a known time zone; use e.g. 'UTC' or "
                "'Europe/Berlin'"
            ) from exc
    obs_end = (
        None if observation_end is None
        else to_timestamp(observation_end, "observation_end", aware="convert", zone=timezone)
    )
    attr_specs = parse_attributes(attributes)
    names = [n for n, _ in attr_specs]
    reserved = [n for n in names if n in CANONICAL_COLUMNS]
    if reserved:
        raise ParameterError(
            f"attribute names {reserved!r} clash with the canonical columns "
            f"{', '.join(CANONICAL_COLUMNS)}; rename them with 'name=expression'"
        )
    if len(set(names)) != len(names):
        raise ParameterError(f"attribute names must be unique; got {names!r}")

    src = open_source(source, connection=connection, read_options=read_options)
    try:
        return _load(
            src, customer_col=customer_col, date_col=date_col, amount_col=amount_col,
            order_col=order_col, attr_specs=attr_specs, returns=returns, cancelled=cancelled,
            obs_end=obs_end, date_format=date_format, timezone=timezone,
            duplicates=duplicates, zero_amounts=zero_amounts, future_dates=future_dates,
        )
    except duckdb.PermissionException as exc:
        raise DataValidationError(
            f"a column expression tried to read a file or URL ({_first_line(exc)}); column "
            "expressions may only compute on the row's own columns"
        ) from exc
    except duckdb.Error as exc:
        raise DataValidationError(
            f"could not evaluate the transactions from {src.description}: {_first_line(exc)}"
        ) from exc
    finally:
        src.close()


@dataclass
class _Check:
    id: CheckId
    flag: str  # SQL predicate over the normalised table
    drops: bool
    example: str  # SQL producing a VARCHAR example
    action: str
    rule: str  # what counts as a finding, for the report


@dataclass
class _Cols:
    """The resolved column arguments."""

    cust: _Expr
    date: _Expr
    amount: _Expr
    order: _Expr | None
    attrs: list[tuple[str, _Expr]]
    cancel_expr: _Expr | None
    cancel_prefix: str | None


def _resolve_columns(
    src: _Source, *, customer_col: str, date_col: str, amount_col: str, order_col: str | None,
    attr_specs: list[tuple[str, str]], cancelled: str | None,
) -> _Cols:
    """Step 1: every column argument bound to the source, or one error saying what is wrong."""
    problems = _Problems()
    cust = _resolve(src, "customer_col", customer_col, problems)
    date = _resolve(src, "date_col", date_col, problems)
    amount = _resolve(src, "amount_col", amount_col, problems)
    order = _resolve(src, "order_col", order_col, problems) if order_col is not None else None
    attrs = [(n, _resolve(src, f"attribute {n!r}", e, problems)) for n, e in attr_specs]
    cancel_expr: _Expr | None = None
    cancel_prefix: str | None = None
    if cancelled is not None:
        if not isinstance(cancelled, str) or not cancelled:
            raise ParameterError(
                f"cancelled={cancelled!r}: pass a boolean column / SQL expression, or an order-id "
                "prefix such as 'C' together with order_col="
            )
        probe = _Problems()
        cancel_expr = _resolve(src, "cancelled", cancelled, probe)
        problems.refused.extend(probe.refused)
        if cancel_expr is None and not probe.refused:
            if order_col is None:
                problems.missing.append(
                    f"cancelled={cancelled!r} is not a column or SQL expression, and cannot be an "
                    "order-id prefix because order_col is not given"
                )
            else:
                cancel_prefix = cancelled
    if problems:
        raise DataValidationError(_problems_message(src, problems))
    assert cust is not None and date is not None and amount is not None
    resolved = [(n, e) for n, e in attrs if e is not None]
    return _Cols(cust, date, amount, order, resolved, cancel_expr, cancel_prefix)


def _problems_message(src: _Source, problems: _Problems) -> str:
    parts = []
    if problems.refused:
        parts.append(f"refused column expressions for {src.description}: "
                     + "; ".join(problems.refused))
    if problems.invalid:
        parts.append(f"invalid column expressions for {src.description}: "
                     + "; ".join(problems.invalid))
    if problems.missing:
        parts.append(f"missing columns in {src.description}: " + "; ".join(problems.missing))
    hint = ""
    if src.kind == "csv" and len(src.columns) == 1:
        hint = (
            ". The CSV was read as a single column: it uses another delimiter or has "
            "malformed lines; pass read_options={'delim': ...} (CLI: --delimiter)"
        )
    return (". ".join(parts) + f". Columns that exist: {clip_list(src.columns, 30)}{hint}")


def _cancel_sql(src: _Source, cols: _Cols, cancelled: str | None) -> str:
    """Step 2c: SQL that is true for cancelled rows of the normalised table."""
    if cols.cancel_expr is not None:
        ctype = _base_type(cols.cancel_expr.type)
        if ctype == "BOOLEAN":
            return "coalesce(x_raw, false)"
        if ctype in _INT_TYPES or ctype in _FLOAT_TYPES:
            return "coalesce(x_raw <> 0, false)"
        raise ParameterError(
            f"cancelled={cancelled!r} has type {cols.cancel_expr.type}; it must be boolean "
            "(e.g. \"Status = 'cancelled'\") or an order-id prefix with order_col="
        )
    if cols.cancel_prefix is not None:
        return f"coalesce(starts_with(CAST(order_id AS VARCHAR), {_lit(cols.cancel_prefix)}), false)"
    return "false"


def _normalised_sql(
    src: _Source, cols: _Cols, plan: _DatePlan, c_sql: str, o_sql: str | None, a_sql: str,
) -> str:
    """Step 3: one row per source row with raw values, normalised values and the row number."""
    raw_cols = [f"{cols.cust.sql} AS c_raw", f"{cols.date.sql} AS d_raw",
                f"{cols.amount.sql} AS a_raw"]
    if cols.order is not None:
        raw_cols.append(f"{cols.order.sql} AS o_raw")
    if cols.cancel_expr is not None:
        raw_cols.append(f"{cols.cancel_expr.sql} AS x_raw")
    raw_cols += [f"{e.sql} AS attr_{i}" for i, (_, e) in enumerate(cols.attrs)]
    partition = ", ".join(_ident(c) for c in src.columns)
    inner = (
        f"SELECT __cv_row, __cv_dup, {', '.join(raw_cols)} FROM ("
        f"SELECT *, row_number() OVER (PARTITION BY {partition} ORDER BY __cv_row) AS __cv_dup "
        f"FROM (SELECT row_number() OVER () AS __cv_row, * FROM {src.table}) __cv_a) __cv_b"
    )
    norm_cols = [
        "__cv_row AS row_", "__cv_dup AS dup_", "c_raw", "d_raw", "a_raw",
        f"{c_sql} AS customer_id", f"{plan.sql} AS date", f"{plan.aware_sql} AS aware_",
        f"{plan.offset_sql} AS offset_", f"{a_sql} AS amount",
    ]
    if o_sql is not None:
        norm_cols.append(f"{o_sql} AS order_id")
    if cols.cancel_expr is not None:
        norm_cols.append("x_raw")
    norm_cols += [f"attr_{i}" for i in range(len(cols.attrs))]
    return f"SELECT {', '.join(norm_cols)} FROM ({inner})"


def _future_cut(obs_end: pd.Timestamp | None) -> pd.Timestamp:
    """Dates after today + 1 year (or after an explicit later observation end) are suspicious."""
    today = pd.Timestamp.now(tz="UTC").tz_localize(None).normalize()
    cut = today + pd.DateOffset(years=1)
    if obs_end is not None and obs_end > cut:
        cut = obs_end + pd.Timedelta(days=1)
    return cut


def _define_checks(
    cols: _Cols, plan: _DatePlan, *, duplicates: str, zero_amounts: str, future_dates: str,
    obs_end: pd.Timestamp | None, date_format: Any, decimal: str,
) -> dict[CheckId, _Check]:
    """Step 4: every row check, keyed by its id, in the order they are applied."""
    def ex(*parts: str) -> str:
        return "'row ' || row_ || ': ' || " + " || ', ' || ".join(parts)

    def q(col: str) -> str:  # quoted text of a raw value for examples
        return f"coalesce('''' || CAST({col} AS VARCHAR) || '''', 'NULL')"

    def num(col: str) -> str:  # an amount without binary noise (-74.52, not -74.52000000000001)
        return f"coalesce(CAST(round({col}, 6) AS VARCHAR), 'NULL')"

    def v(col: str) -> str:  # a typed value (id, timestamp) for examples
        return f"coalesce(regexp_replace(CAST({col} AS VARCHAR), ' 00:00:00$', ''), 'NULL')"

    cut_sql = None
    if obs_end is not None:
        whole_day = obs_end == obs_end.normalize()
        cut = obs_end + pd.Timedelta(days=1) if whole_day else obs_end
        op = ">=" if whole_day else ">"
        cut_sql = f"date {op} TIMESTAMP '{cut.isoformat(sep=' ')}'"
    future = _future_cut(obs_end)
    missing_text = ", ".join(repr(t) for t in _MISSING_TEXT if t)
    text_date = _base_type(cols.date.type) == "VARCHAR"
    cust_row, date_row = "'customer ' || " + v("customer_id"), "'date ' || " + v("date")
    checks = [
        _Check(CheckId.DUPLICATES, "dup_ > 1", duplicates == "drop",
               ex("'customer ' || " + q("c_raw"), "'date ' || " + q("d_raw"),
                  "'amount ' || " + q("a_raw")),
               "dropped: equal to an earlier row in every column (first kept; duplicates='keep' "
               "keeps them)" if duplicates == "drop"
               else "kept: without an order column identical purchases may be genuine "
               "(duplicates='drop' removes them)",
               "a row equal to an earlier row in every source column"),
        _Check(CheckId.MISSING_IDS, "customer_id IS NULL", True, ex(q("c_raw")), "dropped",
               f"customer id null, blank (after trimming spaces) or the text {missing_text}"),
        _Check(CheckId.MISSING_DATES,
               f"d_raw IS NULL OR trim(CAST(d_raw AS VARCHAR), {_WS}) = ''" if text_date
               else "d_raw IS NULL", True, ex(cust_row, "'date ' || " + q("d_raw")), "dropped",
               "date null or blank"),
        _Check(CheckId.BAD_DATES, "date IS NULL", True, ex(q("d_raw")),
               "dropped" + ("" if date_format else "; pass date_format= if these are valid"),
               f"a date that does not parse; {plan.rule}"),
        _Check(CheckId.BAD_AMOUNTS, "amount IS NULL OR NOT isfinite(amount)", True,
               ex(q("a_raw")), "dropped",
               "amount null, not a number, NaN or infinite"
               + (f" (decimal separator {decimal!r})" if decimal != "." else "")),
        _Check(CheckId.MIXED_ZONES, "aware_" if plan.mixed else "false", False,
               ex(q("d_raw"), "'UTC offset ' || coalesce(CAST(offset_ AS VARCHAR), '?') || ' min'"),
               plan.tz_action,
               "dates with a UTC offset mixed with dates without one or with other offsets"),
        _Check(CheckId.FUTURE_DATES, f"date >= TIMESTAMP '{future.isoformat(sep=' ')}'",
               future_dates == "drop", ex(cust_row, date_row),
               "dropped (future_dates='keep' keeps them)" if future_dates == "drop"
               else "kept (future_dates='keep')",
               f"a date on or after {future.date()} (today + 1 year, or the day after a later "
               "observation_end): a typo or a placeholder such as 2099-12-31"),
        _Check(CheckId.AFTER_END, cut_sql or "false", True, ex(cust_row, date_row),
               f"dropped (after {obs_end})" if obs_end is not None
               else "none: no observation_end given",
               f"a date after observation_end={obs_end}" if obs_end is not None
               else "none: no observation_end given"),
        _Check(CheckId.CANCELLED, "cancelled_", False,
               ex(cust_row,
                  ("'order ' || " + v("order_id")) if cols.order is not None else "''",
                  "'amount ' || " + num("amount")),
               "none: cancelled= not given",
               (f"order id starting with {cols.cancel_prefix!r}" if cols.cancel_prefix
                else f"{cols.cancel_expr.given} is true" if cols.cancel_expr is not None
                else "none: cancelled= not given")),
        _Check(CheckId.ZERO_AMOUNTS, "amount = 0", zero_amounts == "drop",
               ex(cust_row, date_row),
               "dropped" if zero_amounts == "drop" else
               "kept as purchases of zero value (zero_amounts='drop' removes them)",
               "amount exactly 0"),
        _Check(CheckId.RETURNS, "amount < 0", False,
               ex(cust_row, date_row, "'amount ' || " + num("amount")), "",
               "amount below 0 (a return), handled by the returns= policy"),
    ]
    return {c.id: c for c in checks}


@dataclass
class _Counts:
    table: str  # quoted name of the normalised table
    n_in: int
    rows: dict[CheckId, int]
    examples: dict[CheckId, str]
    position: dict[CheckId, int]  # the check's position among the row checks
    kept: str = "true"  # predicate: the row passed every check

    def alive(self, cid: CheckId) -> str:
        """Predicate: the row reached check ``cid`` (no earlier check dropped it)."""
        return f"drop_at_ >= {self.position[cid]}"


def _run_checks(s: _Source, checks: dict[CheckId, _Check], norm_sql: str, x_sql: str) -> _Counts:
    """Step 5: flag every row once, find the first check that drops it, count and give examples."""
    order = list(checks)
    position = {cid: k for k, cid in enumerate(order)}
    drop_cases = []
    for cid in order:
        k = position[cid]
        if cid is CheckId.CANCELLED:  # cancelled rows with a negative amount are returns
            drop_cases.append(f"WHEN f{k}_ AND amount >= 0 THEN {k}")
        elif checks[cid].drops:
            drop_cases.append(f"WHEN f{k}_ THEN {k}")
    flags = ", ".join(f"coalesce({checks[c].flag}, false) AS f{position[c]}_" for c in order)
    n_checks = len(order)
    norm = s.name("norm")
    s.create(
        "TABLE", norm,
        f"SELECT *, CASE {' '.join(drop_cases)} ELSE {n_checks} END AS drop_at_ FROM ("
        f"SELECT *, {flags} FROM (SELECT *, {x_sql} AS cancelled_ FROM ({norm_sql})))",
    )
    norm_t = _ident(norm)
    row = s.sql(
        "SELECT count(*), "
        + ", ".join(f"count(*) FILTER (WHERE f{k}_ AND drop_at_ >= {k})" for k in range(n_checks))
        + f" FROM {norm_t}"
    ).fetchall()[0]
    counts = _Counts(norm_t, int(row[0]), dict(zip(order, map(int, row[1:]), strict=True)), {},
                     position)
    for cid in order:
        if counts.rows[cid]:
            k = position[cid]
            rows = s.sql(
                f"SELECT {checks[cid].example} FROM {norm_t} WHERE drop_at_ >= {k} AND f{k}_ "
                f"ORDER BY row_ LIMIT {_N_EXAMPLES}"
            ).fetchall()
            counts.examples[cid] = "; ".join(_clip(r[0]) for r in rows)
        else:
            counts.examples[cid] = ""
    counts.kept = f"drop_at_ = {n_checks}"
    return counts


def _describe_cancelled(s: _Source, check: _Check, counts: _Counts, cols: _Cols,
                        cancelled: str | None) -> None:
    """Step 6: the cancelled-orders action, split by sign."""
    if cancelled is None:
        return
    n_c_pos, n_c_neg = s.sql(
        f"SELECT count(*) FILTER (WHERE amount >= 0), count(*) FILTER (WHERE amount < 0) "
        f"FROM {counts.table} WHERE {counts.alive(CheckId.CANCELLED)} AND cancelled_"
    ).fetchall()[0]
    how = (f"order ids starting with {cols.cancel_prefix!r}" if cols.cancel_prefix is not None
           else f"rows where {cancelled} is true")
    check.action = (
        f"{how}: {n_c_pos:,} rows with amount >= 0 dropped (not purchases); "
        f"{n_c_neg:,} rows with negative amounts handled as returns"
    )


def _decimal_hint(s: _Source, counts: _Counts, cols: _Cols) -> str:
    """A hint when the non-numeric amounts look like numbers written with decimal commas."""
    if not counts.rows[CheckId.BAD_AMOUNTS] or _base_type(cols.amount.type) != "VARCHAR":
        return ""
    n = s.sql(
        f"SELECT count(*) FROM {counts.table} WHERE {counts.alive(CheckId.BAD_AMOUNTS)} AND "
        f"regexp_full_match(trim(CAST(a_raw AS VARCHAR), {_WS}), "
        r"'-?[0-9]{1,3}(\.?[0-9]{3})*,[0-9]+')"
    ).fetchall()[0][0]
    if not n:
        return ""
    return (f"; {n:,} of them look like numbers with a decimal comma (such as '1,5'): pass "
            "read_options={'decimal': ','} (CLI: --decimal ,)")


def _load(
    src: _Source,
    *,
    customer_col: str,
    date_col: str,
    amount_col: str,
    order_col: str | None,
    attr_specs: list[tuple[str, str]],
    returns: str,
    cancelled: str | None,
    obs_end: pd.Timestamp | None,
    date_format: str | Sequence[str] | None,
    timezone: str | None,
    duplicates: str,
    zero_amounts: str,
    future_dates: str = "drop",
) -> tuple[pd.DataFrame, DataQuality]:
    s = src
    cols = _resolve_columns(
        src, customer_col=customer_col, date_col=date_col, amount_col=amount_col,
        order_col=order_col, attr_specs=attr_specs, cancelled=cancelled,
    )
    # step 2: how each canonical column is normalised
    c_sql, c_kind = _id_sql(src, cols.cust, "c_raw", integerize_text=src.kind == "csv")
    o_sql = None
    if cols.order is not None:
        o_sql, _ = _id_sql(src, cols.order, "o_raw", integerize_text=src.kind == "csv")
    plan = _date_plan(src, cols.date, date_format, timezone)
    a_sql = _amount_sql(cols.amount, src.decimal)
    x_sql = _cancel_sql(src, cols, cancelled)
    norm_sql = _normalised_sql(src, cols, plan, c_sql, o_sql, a_sql)
    checks = _define_checks(
        cols, plan, duplicates=duplicates, zero_amounts=zero_amounts, future_dates=future_dates,
        obs_end=obs_end, date_format=date_format, decimal=src.decimal,
    )
    counts = _run_checks(s, checks, norm_sql, x_sql)
    _describe_cancelled(s, checks[CheckId.CANCELLED], counts, cols, cancelled)
    checks[CheckId.BAD_AMOUNTS].action += _decimal_hint(s, counts, cols)

    # step 7: returns
    ret = checks[CheckId.RETURNS]
    n_neg = counts.rows[CheckId.RETURNS]
    attr_out = [f"attr_{i}" for i in range(len(cols.attrs))]
    out_cols = ["customer_id", "date", "amount"] + (["order_id"] if cols.order is not None else [])
    sel = ", ".join(out_cols + attr_out)
    clean = s.name("clean")
    s.create("TABLE", clean,
             f"SELECT row_, cancelled_, {sel} FROM {counts.table} WHERE {counts.kept}")
    clean_t = _ident(clean)
    netting_removed = 0
    if n_neg and returns == "error":
        raise DataValidationError(
            f"{n_neg:,} rows have negative amounts (returns) and returns='error'; e.g. "
            f"{counts.examples[CheckId.RETURNS]}. Use returns='net' to net them against "
            "purchases or returns='drop' to drop them"
        )
    if returns == "drop" or n_neg == 0:
        ret.action = "dropped" if returns == "drop" else "none"
        final_sql = f"SELECT row_, {sel} FROM {clean_t} WHERE amount >= 0"
    else:
        final_sql, ret.action, netting_removed = _net_returns(
            s, clean_t, sel, has_order=cols.order is not None, prefix=cols.cancel_prefix
        )

    out = s.df(f"SELECT {sel} FROM ({final_sql}) ORDER BY row_")
    out = out.rename(columns={f"attr_{i}": n for i, (n, _) in enumerate(cols.attrs)})
    return _report(src, out, cols, plan, checks, counts, c_kind, netting_removed)


def _report(
    src: _Source, out: pd.DataFrame, cols: _Cols, plan: _DatePlan,
    checks: dict[CheckId, _Check], counts: _Counts, c_kind: str, netting_removed: int,
) -> tuple[pd.DataFrame, DataQuality]:
    """Step 8: the quality report (or the error when nothing is left) and the typed frame."""
    check_rows = [
        {"check": CheckId.MISSING_COLUMNS.value, "rows_affected": 0, "examples": "",
         "action": "none: all columns found"}
    ] + [
        {"check": cid.value, "rows_affected": counts.rows[cid], "examples": counts.examples[cid],
         "action": c.action if counts.rows[cid] or c.action.startswith("none") else "none"}
        for cid, c in checks.items()
    ]
    rules = {CheckId.MISSING_COLUMNS.value: "every column argument names a column (exactly, "
             "else case-insensitively) or is an expression on the row's own columns"}
    rules.update({cid.value: c.rule for cid, c in checks.items()})
    mapping = {"customer_id": cols.cust.given, "date": cols.date.given,
               "amount": cols.amount.given}
    if cols.order is not None:
        mapping["order_id"] = cols.order.given
    mapping.update({n: e.given for n, e in cols.attrs})
    notes = list(src.notes) + list(plan.notes)
    if netting_removed:
        notes.append(f"{netting_removed:,} fully returned purchase lines removed by netting")
    n_out = len(out)
    if n_out == 0:
        found = [f"{r['check']}: {r['rows_affected']:,} rows" for r in check_rows[1:]
                 if r["rows_affected"]]
        first = next((r for r in check_rows[1:] if r["rows_affected"]), None)
        raise DataValidationError(
            f"no valid transactions left after cleaning {src.description} ({counts.n_in:,} rows in"
            + (f"; {', '.join(found)}" if found else "")
            + (f"; e.g. {first['examples']}" if first and first["examples"] else "")
            + _decimal_hint(src, counts, cols)
            + "). Check the column arguments, date_format and observation_end"
        )
    out = _finish_types(out, c_kind)
    lo, hi = out["date"].min(), out["date"].max()

    def day(ts: pd.Timestamp) -> str:
        return str(ts.date()) if ts == ts.normalize() else str(ts)

    notes.append(
        f"dates from {day(lo)} to {day(hi)}; {out['customer_id'].nunique():,} customers"
    )
    quality = DataQuality(
        checks=pd.DataFrame(check_rows, columns=["check", "rows_affected", "examples", "action"]),
        n_rows_in=counts.n_in, n_rows_out=int(n_out), source=src.description, columns=mapping,
        notes=notes, rules=rules,
    )
    return out, quality


def _finish_types(out: pd.DataFrame, c_kind: str) -> pd.DataFrame:
    if c_kind == "int":
        out["customer_id"] = out["customer_id"].astype("int64")
    else:
        out["customer_id"] = out["customer_id"].astype("str")
    out["amount"] = out["amount"].astype("float64")
    if not pd.api.types.is_datetime64_dtype(out["date"]):  # pragma: no cover - DuckDB types it
        out["date"] = pd.to_datetime(out["date"])
    return out


def _net_returns(
    s: _Source, clean_t: str, sel: str, *, has_order: bool, prefix: str | None
) -> tuple[str, str, int]:
    """Net negative rows against purchases; return (final SQL, action text, lines removed)."""
    def unit_key(alias: str) -> str:
        date_key = f"'d:' || CAST({alias}date AS VARCHAR)"
        if has_order:
            return f"coalesce('o:' || CAST({alias}order_id AS VARCHAR), {date_key})"
        return date_key

    ukey = unit_key("")
    if has_order:
        order_txt = "CAST(order_id AS VARCHAR)"
        if prefix is not None:
            order_txt = (
                f"CASE WHEN cancelled_ THEN substr({order_txt}, {len(prefix) + 1}) "
                f"ELSE {order_txt} END"
            )
        mkey = f"'o:' || {order_txt}"
    else:
        mkey = "NULL"
    units, targets = s.name("units"), s.name("targets")
    s.create(
        "TABLE", units,
        f"SELECT customer_id, {ukey} AS ukey, min(date) AS udate, sum(amount) AS p "
        f"FROM {clean_t} WHERE amount > 0 GROUP BY ALL",
    )
    u = _ident(units)
    # One target purchase per return: same order, else the latest purchase at or before it.
    s.create(
        "TABLE", targets,
        f"""
        WITH r AS (
            SELECT row_, customer_id, date, -amount AS r, {mkey} AS mkey
            FROM {clean_t} WHERE amount < 0
        ),
        by_order AS (
            SELECT r.row_, u.ukey FROM r JOIN {u} u
            ON r.customer_id = u.customer_id AND r.mkey = u.ukey
        ),
        last_day AS (
            SELECT r.row_, r.customer_id, d.udate FROM r
            ASOF JOIN (SELECT DISTINCT customer_id, udate FROM {u}) d
            ON r.customer_id = d.customer_id AND r.date >= d.udate
        ),
        by_date AS (
            SELECT l.row_, max(u.ukey) AS ukey FROM last_day l JOIN {u} u
            ON l.customer_id = u.customer_id AND l.udate = u.udate GROUP BY l.row_
        )
        SELECT r.row_, r.customer_id, r.r, coalesce(o.ukey, d.ukey) AS tkey,
               CASE WHEN o.ukey IS NOT NULL THEN 'order' WHEN d.ukey IS NOT NULL THEN 'date'
                    ELSE 'none' END AS how
        FROM r LEFT JOIN by_order o ON r.row_ = o.row_ LEFT JOIN by_date d ON r.row_ = d.row_
        """,
    )
    t = _ident(targets)
    alloc = (
        f"SELECT a.customer_id, a.tkey, a.r, u.p FROM (SELECT customer_id, tkey, sum(r) AS r "
        f"FROM {t} WHERE tkey IS NOT NULL GROUP BY ALL) a JOIN {u} u "
        f"ON a.customer_id = u.customer_id AND a.tkey = u.ukey"
    )
    stats = s.sql(
        f"SELECT count(*), coalesce(sum(r), 0), count(*) FILTER (WHERE how = 'order'), "
        f"count(*) FILTER (WHERE how = 'date'), count(*) FILTER (WHERE how = 'none'), "
        f"coalesce(sum(r) FILTER (WHERE how = 'none'), 0) FROM {t}"
    ).fetchone()
    n_ret, total, n_order, n_date, n_none, v_none = stats
    n_units, excess, n_full = s.sql(
        f"SELECT count(*), coalesce(sum(greatest(r - p, 0)), 0), count(*) FILTER (WHERE r >= p) "
        f"FROM ({alloc})"
    ).fetchone()
    netted = (
        "SELECT c.row_, c.customer_id, c.date, "
        "CASE WHEN c.amount > 0 AND al.r IS NOT NULL THEN "
        "CASE WHEN al.r >= al.p THEN 0.0 ELSE c.amount * ((al.p - al.r) / al.p) END "
        "ELSE c.amount END AS amount, c.amount AS amount_before"
        + "".join(
            f", c.{col}" for col in sel.split(", ") if col not in ("customer_id", "date", "amount")
        )
        + f" FROM {clean_t} c LEFT JOIN ({alloc}) al "
        f"ON c.amount > 0 AND c.customer_id = al.customer_id AND {unit_key('c.')} = al.tkey "
        f"WHERE c.amount >= 0"
    )
    final_sql = f"SELECT * FROM ({netted}) WHERE NOT (amount_before > 0 AND amount <= 0)"
    removed = s.sql(
        f"SELECT count(*) FROM ({netted}) WHERE amount_before > 0 AND amount <= 0"
    ).fetchone()[0]
    action = (
        f"net: {n_ret:,} returns worth {total:,.2f} netted against {n_units:,} purchases "
        f"({n_order:,} by order id, {n_date:,} by the latest earlier purchase); "
        f"{n_full:,} purchases fully returned ({removed:,} lines removed); "
        f"{n_none:,} returns without an earlier purchase ({v_none:,.2f}) and excess returns "
        f"of {excess:,.2f} dropped"
    )
    return final_sql, action, int(removed)
