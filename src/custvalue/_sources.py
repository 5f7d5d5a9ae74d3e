"""Where transactions come from: the one place that names and opens data sources.

Both :mod:`custvalue.data` and :mod:`custvalue.summary` open sources through
:func:`open_source`, and the command line and the reports resolve bundled data set names
through :func:`resolve_dataset`, so a source that works in one place works in every other, and
a missing file raises the same :class:`~custvalue.errors.SourceNotFoundError` everywhere.

Sources
-------
* a pandas DataFrame -- registered with DuckDB and scanned in place (never copied or modified);
* CSV files (``.csv``, ``.tsv``, ``.txt``, also ``.gz``/``.zst`` compressed) and Parquet files,
  given as a path, a glob (``"exports/*.parquet"``, ``**`` recursive), a directory (every CSV or
  Parquet file below it) or a list of these; remote URLs (``s3://``, ``https://``...) too;
* a Spark DataFrame -- collected to the driver as Arrow (``toArrow``) and scanned in place;
  only :func:`custvalue.data.load_transactions` opens one here (its result is a pandas frame
  anyway): the summaries compute a Spark DataFrame's statistics in Spark;
* a DuckDB relation, or the name of a table in a caller's DuckDB ``connection`` (copied into
  the loader's own connection, so nothing is created in, or read through, the caller's one);
* a database URL, ``postgresql://user@host/db?table=orders`` (or ``?query=SELECT ...``) or
  ``duckdb:///path/file.duckdb?table=orders``: rows streamed into DuckDB as Arrow batches, see
  :mod:`custvalue._database`.

Rules
-----
* **A literal file wins.** A path that names an existing file is that file, even when its
  name contains glob characters (``sales[2020].csv``).
* **CSV column types come from every value, not a sample.** DuckDB's reader guesses types
  from the first rows; a later ``"00123"`` in a column of numbers would then be cast to ``123``
  (merging two customers) and a later ``"n/a"`` would fail the whole file. Here CSV text is
  read as text and a column keeps a number type only if *every* non-blank value is one (and,
  for integers, written canonically: no leading zeros or ``+``; for decimals, at most 15
  significant digits, so a 20-digit id is never rounded into another one); otherwise it stays
  text and the
  loader's checks report the values. Date and time columns stay text, so the loader's explicit
  and documented date rules (``date_format=``, ISO 8601, time zones) apply to CSV exactly as to
  a DataFrame of strings.
* **One glob, one layout.** Files of one glob, directory or list must have the same columns;
  otherwise the error names the files and the columns that differ
  (``read_options={"union_by_name": True}`` combines them anyway, with nulls).
* **Never read our own outputs.** Expanding a glob or a directory skips hidden files (such as
  custvalue's temporary files) and files whose columns are one of custvalue's output layouts
  (an RFM summary: ``frequency``, ``recency``, ``T``; a data-quality table: ``check``,
  ``rows_affected``, ``examples``, ``action``); they are listed in :attr:`Source.notes`. An
  output path that *is* one of the inputs is refused by :func:`refuse_overwriting_inputs`.
* **Machine-independent times.** Every connection runs with ``TimeZone = 'UTC'``, so text
  without an offset means the same instant on every machine.
* **Column expressions cannot read the machine.** Once the source is opened the connection is
  locked: external access (files other than the source's own, URLs) disabled, extension
  autoloading and autoinstalling off, configuration locked. :func:`check_expression` also
  refuses subqueries and table functions in a user's column expression before it runs.
"""

from __future__ import annotations

import dataclasses
import difflib
import glob as _glob
import json
import os
import re
import tempfile
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import duckdb
import pandas as pd

from ._database import is_database_url, open_in_duckdb
from ._text import clip, clip_list
from .errors import DataValidationError, ParameterError, SourceNotFoundError

__all__ = [
    "CSV_EXT",
    "DATASET_NAMES",
    "FLOAT_TYPES",
    "INT_TYPES",
    "PARQUET_EXT",
    "TABLE",
    "BundledDataset",
    "Source",
    "base_type",
    "bundled_dataset",
    "check_expression",
    "connect",
    "expand_paths",
    "first_line",
    "ident",
    "input_files",
    "is_dataset_name",
    "lit",
    "open_source",
    "parse_attributes",
    "refuse_overwriting_inputs",
    "reject_result_pair",
    "resolve_dataset",
]

#: Name under which an opened source is queried (``SELECT ... FROM __cv_tx``).
TABLE = "__cv_tx"
PARQUET_EXT = (".parquet", ".pq", ".parq")
CSV_EXT = tuple(
    base + comp for base in (".csv", ".tsv", ".txt") for comp in ("", ".gz", ".zst")
)
_REMOTE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_WS = "' \t\n\r\u00a0'"  # SQL literal: space, tab, newline, CR, no-break space
INT_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER",
             "UBIGINT", "HUGEINT", "UHUGEINT")
FLOAT_TYPES = ("FLOAT", "DOUBLE", "REAL")
_INT_TYPES = INT_TYPES
_NUMBER_TYPES = (*INT_TYPES, *FLOAT_TYPES, "DECIMAL")
#: Column sets that mark a file as one of custvalue's own outputs (never read as input).
_OUTPUT_LAYOUTS: tuple[frozenset[str], ...] = (
    frozenset({"frequency", "recency", "T"}),
    frozenset({"check", "rows_affected", "examples", "action"}),
)


# ------------------------------------------------------------------------------------------------
# SQL text
# ------------------------------------------------------------------------------------------------


def ident(name: str) -> str:
    """A DuckDB quoted identifier."""
    return '"' + str(name).replace('"', '""') + '"'


def lit(value: Any) -> str:
    """A Python value as a DuckDB SQL literal (for reader options, formats and settings)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{lit(str(k))}: {lit(v)}" for k, v in value.items()) + "}"
    if isinstance(value, Sequence):
        return "[" + ", ".join(lit(v) for v in value) + "]"
    raise ParameterError(f"cannot pass {clip(repr(value))} ({type(value).__name__}) to DuckDB")


def first_line(exc: BaseException) -> str:
    """The first line of an exception's text (DuckDB errors carry long hints below it)."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def base_type(type_name: str) -> str:
    """``DECIMAL(18,3)`` -> ``DECIMAL``."""
    return str(type_name).upper().split("(")[0].strip()


# ------------------------------------------------------------------------------------------------
# The caller passed load_transactions' result where transactions are expected
# ------------------------------------------------------------------------------------------------


def reject_result_pair(obj: Any, where: str = "transactions") -> None:
    """Raise a clear error when ``obj`` is the ``(transactions, quality)`` pair itself.

    :func:`custvalue.data.load_transactions` returns two things; passing the pair on (to
    ``rfm_summary``, ``calibration_holdout``, ``cohort_table``, ``load_transactions``...) would
    otherwise fail with an unrelated message about the source type.
    """
    if (
        isinstance(obj, tuple)
        and len(obj) == 2
        and isinstance(obj[0], pd.DataFrame)
        and type(obj[1]).__name__ == "DataQuality"
    ):
        raise DataValidationError(
            f"{where}: got the (transactions, quality) pair that load_transactions returns; "
            "unpack it first: tx, quality = load_transactions(...), then pass tx"
        )


# ------------------------------------------------------------------------------------------------
# Connections
# ------------------------------------------------------------------------------------------------


def _default_memory_limit() -> str:
    """Half of physical memory (the machine is shared with pandas, which receives the result)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return "4GB"
    return f"{max(1, int(total * 0.5 / 2**30))}GB"


def _default_threads() -> int:
    """CPUs this process may use minus the current 1-minute load average, at least one.

    DuckDB's parallel hash aggregation does extra partition/merge work; on a busy shared machine
    the extra threads only contend (measured: 1 thread 2.9 s vs 2 threads 5.1 s for 3.2M groups
    on 2 cores at load 7), while on an idle machine all cores are used.
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        cpus = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except OSError:  # pragma: no cover - unavailable
        load = 0.0
    return max(1, min(cpus, int(cpus - load + 0.5)))


def _temp_dir() -> str:
    return os.path.join(tempfile.gettempdir(), f"custvalue_duckdb_{os.getpid()}")


def connect(
    memory_limit: str | None = None, threads: int | None = None, *, stream: bool = False
) -> duckdb.DuckDBPyConnection:
    """A new in-memory DuckDB connection set up the same way for every source.

    ``TimeZone = 'UTC'`` (results never depend on the machine's zone), extension autoloading
    and autoinstalling off, the memory limit (default half the physical memory) with spilling
    to a per-process temporary directory, and the worker threads (default: usable CPUs minus the
    load average). ``stream=True`` also drops insertion order, which lets DuckDB stream and
    spill aggregates (for summaries; the loader keeps it to number the source rows).
    """
    if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool)
                                or threads < 1):
        raise ParameterError(f"threads={threads!r} must be a positive integer or None")
    con = duckdb.connect(
        database=":memory:",
        config={"autoload_known_extensions": False, "autoinstall_known_extensions": False},
    )
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"SET threads = {threads or _default_threads()}")
    limit = memory_limit or _default_memory_limit()
    try:
        con.execute(f"SET memory_limit = {lit(str(limit))}")
    except duckdb.Error as exc:
        con.close()
        raise ParameterError(
            f"memory_limit={memory_limit!r} is not a memory size such as '4GB' or '500MB'"
        ) from exc
    con.execute(f"SET temp_directory = {lit(_temp_dir())}")
    if stream:
        # Insertion order is irrelevant for aggregates; dropping it lets DuckDB stream and spill.
        con.execute("SET preserve_insertion_order = false")
    return con


def _lock(con: duckdb.DuckDBPyConnection, local_files: Sequence[str]) -> None:
    """No file or URL access beyond the source's own files; no extensions; no more settings."""
    if local_files:  # as given and as escaped for DuckDB's glob (see _literal_path)
        allowed = set(local_files) | {_literal_path(f) for f in local_files}
        con.execute(f"SET allowed_paths = {lit(sorted(allowed))}")
    con.execute(f"SET allowed_directories = {lit([_temp_dir() + os.sep])}")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


def _load_httpfs(con: duckdb.DuckDBPyConnection, url: str) -> None:
    try:
        con.execute("LOAD httpfs")
    except duckdb.Error:
        try:
            con.execute("INSTALL httpfs")
            con.execute("LOAD httpfs")
        except duckdb.Error as exc:
            raise DataValidationError(
                f"reading {url!r} needs DuckDB's httpfs extension, which could not be loaded "
                f"({first_line(exc)}); install it once with duckdb.sql('INSTALL httpfs') or "
                "download the file first"
            ) from exc


# ------------------------------------------------------------------------------------------------
# Column expressions
# ------------------------------------------------------------------------------------------------

#: Functions that reach outside the row: files, URLs, the environment, settings, the catalog.
_FORBIDDEN_FUNCTIONS = re.compile(
    r"(read_|parquet_|sniff_|glob$|getenv$|current_setting$|query$|query_table$|duckdb_|"
    r"pragma_|which_secret$|load_|install_|iceberg_|delta_|postgres_|mysql_|sqlite_|"
    r"http|s3_|json_execute|enable_|disable_)",
    re.I,
)


def check_expression(con: duckdb.DuckDBPyConnection, sql: str, role: str) -> str | None:
    """Why the column expression ``sql`` is refused, or None when it is allowed.

    An expression is for arithmetic and functions on the row's own columns: it must parse as
    one select item, with no subquery, no ``FROM``, and no function that reads files, URLs,
    the environment or settings (``read_text``, ``read_csv``, ``glob``, ``getenv``...). The
    connection is locked as well (:func:`open_source`), so this is the clear message, not the
    only guard.
    """
    try:
        raw = con.execute("SELECT json_serialize_sql(?)", [f"SELECT ({sql})"]).fetchall()[0][0]
        doc = json.loads(raw)
    except (duckdb.Error, ValueError, IndexError):  # pragma: no cover - json not available
        return None
    if doc.get("error"):
        return None  # a syntax error: reported with DuckDB's own words by the caller
    statements = doc.get("statements") or []
    if len(statements) != 1:
        return f"{role}={clip(sql)!r} must be one expression"
    node = statements[0].get("node", {})
    extra = (
        (node.get("from_table") or {}).get("type") not in (None, "EMPTY")
        or len(node.get("select_list", [])) != 1
        or node.get("type") != "SELECT_NODE"
        or any(node.get(k) for k in ("where_clause", "group_expressions", "having", "qualify",
                                     "modifiers", "sample"))
        or (node.get("cte_map") or {}).get("map")
    )
    if extra:
        return (f"{role}={clip(sql)!r} must be one expression on the row's columns, without "
                "FROM or further select items")
    for item in _walk(node.get("select_list", [])):
        cls = item.get("class")
        if cls == "SUBQUERY" or "subquery" in item or item.get("type") == "SELECT_NODE":
            return (f"{role}={clip(sql)!r} contains a subquery; column expressions may only "
                    "compute on the row's own columns")
        if cls == "FUNCTION" and not item.get("is_operator"):
            name = str(item.get("function_name", ""))
            if _FORBIDDEN_FUNCTIONS.match(name):
                return (f"{role}={clip(sql)!r} calls {name}(), which reads outside the row "
                        "(files, URLs, environment or settings); column expressions may only "
                        "compute on the row's own columns")
    return None


def _walk(obj: Any) -> Iterable[dict[str, Any]]:
    if isinstance(obj, dict):
        yield obj
        for value in obj.values():
            yield from _walk(value)
    elif isinstance(obj, list):
        for value in obj:
            yield from _walk(value)


def parse_attributes(attributes: Any) -> list[tuple[str, str]]:
    """``attributes`` as ``(name, expression)`` pairs: the one parser for the API and the CLI.

    An item is a column name or SQL expression (its own name), or ``"name=expression"`` where
    ``name`` is an identifier directly followed by one ``=`` (``"is_uk=Country = 'UK'"``). An
    expression such as ``"Country = 'UK'"`` (a comparison: spaces around ``=``) is named by
    its text. A mapping is ``{name: expression}``.
    """
    if attributes is None:
        return []
    if isinstance(attributes, str):
        attributes = [attributes]
    if isinstance(attributes, Mapping):
        return [(str(k), str(v)) for k, v in attributes.items()]
    out: list[tuple[str, str]] = []
    for item in attributes:
        if not isinstance(item, str):
            raise ParameterError(
                "attributes must be column names, SQL expressions or 'name=expression' "
                f"strings; got {clip(repr(item))}"
            )
        m = re.fullmatch(r"\s*([A-Za-z_][A-Za-z0-9_]*)=(?!=)(.+)", item, flags=re.S)
        if m:
            out.append((m.group(1), m.group(2).strip()))
        else:
            out.append((item, item))
    return out


# ------------------------------------------------------------------------------------------------
# Paths
# ------------------------------------------------------------------------------------------------


def _is_remote(path: str) -> bool:
    return bool(_REMOTE.match(path))


def expand_paths(raw: Sequence[str | os.PathLike[str]]) -> tuple[list[str], list[bool]]:
    """Files named by paths, globs and directories, and for each whether a pattern found it.

    A path naming an existing file is taken literally (glob characters included); a directory
    gives every CSV/Parquet file below it; a glob gives its matching files. Hidden files are
    never matched. Raises :class:`~custvalue.errors.SourceNotFoundError` when an item matches
    nothing.
    """
    files: list[str] = []
    matched: list[bool] = []
    for item in raw:
        text = os.fspath(item)
        if _is_remote(text):  # s3://, https://, gs://...: DuckDB reads these
            files.append(text)
            matched.append(_glob.has_magic(text))
            continue
        p = os.path.expanduser(text)
        if os.path.isfile(p):
            files.append(p)
            matched.append(False)
            continue
        if os.path.isdir(p):
            found = sorted(
                f for f in _glob.glob(os.path.join(p, "**", "*"), recursive=True)
                if os.path.isfile(f) and f.lower().endswith(PARQUET_EXT + CSV_EXT)
            )
            if not found:
                raise SourceNotFoundError(
                    f"directory {text!r} holds no CSV or Parquet files (looked for "
                    f"{', '.join(PARQUET_EXT + CSV_EXT)} recursively)"
                )
        elif _glob.has_magic(p):
            found = sorted(f for f in _glob.glob(p, recursive=True) if os.path.isfile(f))
            if not found:
                raise SourceNotFoundError(
                    f"no files match {text!r}: the transaction source matches no files"
                )
        elif os.path.exists(p):
            raise SourceNotFoundError(f"{text!r} is neither a file nor a directory")
        else:
            raise SourceNotFoundError(
                f"file {text!r} does not exist; pass a DataFrame, a CSV/Parquet path, a glob "
                "such as 'data/*.parquet', or a directory"
            )
        files.extend(found)
        matched.extend([True] * len(found))
    return files, matched


def _file_format(files: list[str]) -> str:
    kinds = set()
    for f in files:
        low = f.lower()
        if low.endswith(PARQUET_EXT):
            kinds.add("parquet")
        elif low.endswith(CSV_EXT):
            kinds.add("csv")
        elif _is_remote(f):
            raise DataValidationError(
                f"cannot tell the format of remote file {f!r}: use a name ending in .parquet "
                "or .csv"
            )
        else:
            with open(f, "rb") as fh:  # sniff: Parquet files start with the magic PAR1
                kinds.add("parquet" if fh.read(4) == b"PAR1" else "csv")
    if len(kinds) > 1:
        raise DataValidationError(
            f"the source mixes CSV and Parquet files ({len(files)} files, e.g. "
            f"{', '.join(repr(f) for f in files[:3])}); load one format at a time"
        )
    return kinds.pop()


def _csv_options(read_options: Mapping[str, Any] | None) -> dict[str, Any]:
    opts = dict(read_options or {})
    if "decimal" in opts:  # the friendly spelling of DuckDB's decimal_separator
        opts["decimal_separator"] = opts.pop("decimal")
    return opts


def _literal_path(path: str) -> str:
    """``path`` escaped for DuckDB's own glob matching, so it names exactly that file."""
    if _is_remote(path) or not _glob.has_magic(path):
        return path
    return "".join({"[": "[[]", "*": "[*]", "?": "[?]"}.get(ch, ch) for ch in path)


def _reader(fmt: str, files: Sequence[str], opts: Mapping[str, Any]) -> str:
    """DuckDB's reader over exactly these files (expanded already: no glob left to DuckDB)."""
    opt_sql = "".join(f", {k} = {lit(v)}" for k, v in opts.items())
    return f"read_{fmt}({lit([_literal_path(f) for f in files])}{opt_sql})"


def _explain_read_error(exc: BaseException, desc: str) -> DataValidationError:
    msg = str(exc)
    if "unicode" in msg.lower() or "utf-8" in msg.lower() or "utf8" in msg.lower():
        return DataValidationError(
            f"cannot read {desc}: the file is not UTF-8 text ({first_line(exc)}); pass its "
            "encoding, e.g. read_options={'encoding': 'latin-1'} (CLI: --encoding latin-1)"
        )
    return DataValidationError(f"cannot read {desc}: {first_line(exc)}")


def _file_columns(
    con: duckdb.DuckDBPyConnection, fmt: str, path: str, opts: Mapping[str, Any]
) -> list[str]:
    rows = con.execute(f"DESCRIBE SELECT * FROM {_reader(fmt, [path], opts)}").fetchall()
    return [r[0] for r in rows]


def _select_files(
    con: duckdb.DuckDBPyConnection,
    fmt: str,
    files: list[str],
    matched: list[bool],
    opts: Mapping[str, Any],
    notes: list[str],
) -> list[str]:
    """Skip custvalue's own outputs found by a pattern; refuse files with different columns."""
    if len(files) == 1 and not matched[0]:
        return files
    per_file: list[tuple[str, list[str]]] = []
    for f, by_pattern in zip(files, matched, strict=True):
        if _is_remote(f):
            per_file.append((f, []))
            continue
        try:
            cols = _file_columns(con, fmt, f, opts)
        except duckdb.Error as exc:
            raise _explain_read_error(exc, f"file {f!r}") from exc
        if by_pattern and any(layout <= set(cols) for layout in _OUTPUT_LAYOUTS):
            notes.append(f"skipped {f!r}: it has the columns of a custvalue output, not "
                         "transactions")
            continue
        per_file.append((f, cols))
    if not per_file:
        raise SourceNotFoundError(
            f"the source matches only custvalue outputs ({clip_list(files, 3)}), no transactions"
        )
    if not opts.get("union_by_name"):
        local = [(f, c) for f, c in per_file if c]
        if local:
            ref_file, ref = local[0]
            for f, cols in local[1:]:
                if set(cols) != set(ref):
                    missing = [c for c in ref if c not in cols]
                    extra = [c for c in cols if c not in ref]
                    raise DataValidationError(
                        f"the files of the source have different columns: {f!r} "
                        + (f"lacks {clip_list(missing, 5)} " if missing else "")
                        + ("and " if missing and extra else "")
                        + (f"has extra {clip_list(extra, 5)} " if extra else "")
                        + f"compared with {ref_file!r}; load them separately, or pass "
                        "read_options={'union_by_name': True} to combine them with nulls"
                    )
    return [f for f, _ in per_file]


# ------------------------------------------------------------------------------------------------
# Source
# ------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Source:
    """An opened transaction source: a locked DuckDB connection with the rows as ``__cv_tx``.

    Attributes
    ----------
    con : duckdb.DuckDBPyConnection
        The connection (ours; closed by :meth:`close`).
    table : str
        Quoted name to select from.
    columns : list of str
        Source columns, in order.
    types : dict
        Column -> DuckDB type name.
    description : str
        What the source is, for messages and the data-quality report.
    kind : str
        ``frame``, ``csv``, ``parquet``, ``table``, ``relation`` or ``database``.
    files : list of str
        Files actually read (after expansion).
    notes : list of str
        Facts worth reporting (columns read as text and why, files skipped).
    tz_hint : dict
        Zone of each time-zone-aware DataFrame column.
    frame_index : list of str
        Names of a DataFrame's index levels (for "did you mean" hints).
    decimal : str
        Decimal separator of a CSV source (``"."`` unless ``decimal=`` was given).
    """

    con: duckdb.DuckDBPyConnection
    table: str
    columns: list[str]
    types: dict[str, str]
    description: str
    kind: str
    files: list[str] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    tz_hint: dict[str, str] = dataclasses.field(default_factory=dict)
    frame_index: list[str] = dataclasses.field(default_factory=list)
    decimal: str = "."
    prefix: str = dataclasses.field(default_factory=lambda: f"__cv_{uuid.uuid4().hex[:10]}_")

    def name(self, suffix: str) -> str:
        """A fresh name for a temporary object of this load."""
        return self.prefix + suffix

    def sql(self, query: str) -> Any:
        """Run ``query``; the cursor (fetch with ``fetchall``/``fetchone``/``df``)."""
        return self.con.execute(query)

    def df(self, query: str) -> pd.DataFrame:
        """Run ``query`` and return a DataFrame."""
        return self.con.execute(query).df()

    def create(self, kind: str, name: str, query: str) -> None:
        """``CREATE TEMP <kind> name AS query``."""
        self.con.execute(f"CREATE TEMP {kind} {ident(name)} AS {query}")

    def close(self) -> None:
        """Release DuckDB's buffers now rather than at garbage collection."""
        self.con.close()

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _describe(con: duckdb.DuckDBPyConnection, desc: str) -> tuple[list[str], dict[str, str]]:
    try:
        rows = con.execute(f"DESCRIBE SELECT * FROM {TABLE}").fetchall()
    except duckdb.Error as exc:
        raise _explain_read_error(exc, desc) from exc
    return [r[0] for r in rows], {r[0]: str(r[1]) for r in rows}


def _open_frame(con: duckdb.DuckDBPyConnection, frame: pd.DataFrame) -> None:
    if not all(isinstance(c, str) for c in frame.columns):
        raise DataValidationError(
            "transaction DataFrame column names must be strings; found "
            f"{clip_list([c for c in frame.columns if not isinstance(c, str)], 5)}: rename them "
            "(df.columns = df.columns.astype(str))"
        )
    dup = frame.columns[frame.columns.duplicated()]
    if len(dup):
        raise DataValidationError(
            f"transaction DataFrame has duplicated column names {clip_list(sorted(set(dup)), 5)}"
            "; rename them first"
        )
    try:
        con.register(TABLE, frame)  # a view on the frame's buffers: no copy
    except duckdb.Error:
        # DuckDB cannot scan some strided views in place (e.g. df.iloc[::-1] raises
        # std::bad_cast in duckdb 2.0); those are converted to Arrow, which copies.
        import pyarrow as pa

        con.register(TABLE, pa.Table.from_pandas(frame, preserve_index=False))


def _open_table(
    con: duckdb.DuckDBPyConnection, name: str, connection: duckdb.DuckDBPyConnection
) -> str:
    if re.fullmatch(r"[A-Za-z_][\w$]*(\.[A-Za-z_][\w$]*)*", name):
        table = ".".join(ident(part) for part in name.split("."))
    else:
        table = ident(name)
    try:
        arrow = connection.sql(f"SELECT * FROM {table}").to_arrow_table()
    except duckdb.Error as exc:
        try:
            tables = sorted({r[0] for r in connection.execute("SHOW TABLES").fetchall()})
        except duckdb.Error:  # pragma: no cover
            tables = []
        hint = difflib.get_close_matches(name, tables, n=3)
        raise DataValidationError(
            f"DuckDB table {name!r} not found in the given connection "
            f"({first_line(exc)}); tables: {clip_list(tables) or 'none'}"
            + (f"; did you mean {', '.join(map(repr, hint))}?" if hint else "")
        ) from exc
    con.register(TABLE, arrow)
    return f"DuckDB table {name!r}"


def _typed_csv_columns(
    con: duckdb.DuckDBPyConnection, raw: str, sniffed: dict[str, str], decimal: str,
    notes: list[str],
) -> list[str]:
    """Select items giving each raw-text CSV column the type *all* its values have."""
    checks: list[str] = []
    cands: list[tuple[str, str, str]] = []
    for col, typ in sniffed.items():
        b = base_type(typ)
        if b not in _NUMBER_TYPES and b != "BOOLEAN":
            continue  # text, and dates/times: parsed by the loader's documented rules
        prep = f"trim({ident(col)}, {_WS})"
        if decimal != "." and b in ("FLOAT", "DOUBLE", "REAL", "DECIMAL"):
            prep = f"replace({prep}, {lit(decimal)}, '.')"
        bad = f"{prep} <> '' AND TRY_CAST({prep} AS {typ}) IS NULL"
        if b in _INT_TYPES:  # "007", "+5" and "-0" are text codes, not numbers
            bad = f"{prep} <> '' AND coalesce(CAST(TRY_CAST({prep} AS {typ}) AS VARCHAR) <> " \
                  f"{prep}, true)"
        elif b in ("FLOAT", "DOUBLE", "REAL"):  # more than 15 significant digits: not exact
            digits = f"length(ltrim(regexp_replace(split_part({prep}, 'e', 1), '[^0-9]', '', 'g'), '0'))"
            bad = f"{bad} OR ({prep} <> '' AND {digits} > 15)"
        k = len(cands)
        checks.append(f"count(*) FILTER (WHERE {bad}) AS n{k}, "
                      f"any_value({ident(col)}) FILTER (WHERE {bad}) AS e{k}")
        cands.append((col, typ, prep))
    typed: dict[str, str] = {}
    if cands:
        row = con.execute(f"SELECT {', '.join(checks)} FROM {raw}").fetchall()[0]
        for k, (col, typ, prep) in enumerate(cands):
            n_bad, example = row[2 * k], row[2 * k + 1]
            if n_bad:
                notes.append(
                    f"CSV column {col!r} read as text: {n_bad:,} values are not exactly "
                    f"{base_type(typ)} numbers (e.g. {clip(repr(example), 40)}: not a number, "
                    "a leading zero or sign, or too many digits), though others are"
                )
            else:
                typed[col] = f"TRY_CAST(nullif({prep}, '') AS {typ})"
    return [f"{typed[c]} AS {ident(c)}" if c in typed else ident(c) for c in sniffed]


def _open_files(
    con: duckdb.DuckDBPyConnection,
    raw_paths: list[str],
    read_options: Mapping[str, Any] | None,
    *,
    materialize: bool,
    notes: list[str],
) -> tuple[str, str, list[str], str]:
    """Create ``__cv_tx`` over the files; (kind, description, files, decimal separator)."""
    files, matched = expand_paths(raw_paths)
    fmt = _file_format(files)
    opts = _csv_options(read_options) if fmt == "csv" else dict(read_options or {})
    files = _select_files(con, fmt, files, matched, opts, notes)
    desc = (
        f"{'CSV' if fmt == 'csv' else 'Parquet'} "
        + (f"file {files[0]!r}" if len(files) == 1
           else f"{len(files)} files from {', '.join(repr(p) for p in raw_paths[:3])}")
    )
    remote = [f for f in files if _is_remote(f)]
    if remote:
        _load_httpfs(con, remote[0])
        materialize = True  # read once now: the locked connection cannot reach the network
    opts.setdefault("union_by_name", True)
    kind = "TABLE" if materialize else "VIEW"
    decimal = str(opts.get("decimal_separator", "."))
    try:
        if fmt == "parquet":
            con.execute(f"CREATE TEMP {kind} {TABLE} AS SELECT * FROM {_reader(fmt, files, opts)}")
            return fmt, desc, files, decimal
        rows = con.execute(f"DESCRIBE SELECT * FROM {_reader(fmt, files, opts)}").fetchall()
        sniffed = {r[0]: str(r[1]) for r in rows}
        text_opts = {**opts, "all_varchar": True}
        text_opts.setdefault(
            "header", not all(re.fullmatch(r"column\d+", c) for c in sniffed)
        )
        raw = "__cv_raw"
        con.execute(
            f"CREATE TEMP {kind} {raw} AS SELECT * FROM {_reader(fmt, files, text_opts)}"
        )
        names = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {raw}").fetchall()]
        if names != list(sniffed):  # pragma: no cover - the text read saw another layout
            con.execute(f"DROP {kind} {raw}")
            con.execute(f"CREATE TEMP {kind} {TABLE} AS SELECT * FROM {_reader(fmt, files, opts)}")
            return fmt, desc, files, decimal
        items = _typed_csv_columns(con, raw, sniffed, decimal, notes)
        con.execute(f"CREATE TEMP {kind} {TABLE} AS SELECT {', '.join(items)} FROM {raw}")
        if materialize:
            con.execute(f"DROP TABLE {raw}")
    except duckdb.Error as exc:
        raise _explain_read_error(exc, desc) from exc
    return fmt, desc, files, decimal


def _is_spark_dataframe(obj: Any) -> bool:
    """Whether ``obj`` is a PySpark DataFrame, without importing pyspark."""
    mod = type(obj).__module__ or ""
    return mod.startswith("pyspark.sql") and type(obj).__name__ == "DataFrame"


def _spark_to_arrow(sdf: Any) -> Any:
    """A Spark DataFrame's rows as one Arrow table on the driver (``DataFrame.toArrow``).

    For the loader, whose result is a pandas frame anyway; the summaries of a Spark DataFrame
    stay in Spark (:mod:`custvalue.spark`) and collect only their result.
    """
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pyspark 4.x warns about pandas 3 on every call
            return sdf.toArrow()
    except Exception as exc:  # AnalysisException, Py4JJavaError...
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        raise DataValidationError(
            f"cannot read the Spark DataFrame: {lines[0] if lines else type(exc).__name__}"
        ) from None


def open_source(
    source: Any,
    *,
    connection: duckdb.DuckDBPyConnection | None = None,
    read_options: Mapping[str, Any] | None = None,
    memory_limit: str | None = None,
    threads: int | None = None,
    stream: bool = False,
) -> Source:
    """Open any transaction source on a new, locked DuckDB connection.

    Parameters
    ----------
    source : DataFrame, path, glob, directory, list of paths, DuckDB relation or table name
        See the module docstring.
    connection : duckdb.DuckDBPyConnection, optional
        Holds the table when ``source`` is a table name.
    read_options : mapping, optional
        Options for DuckDB's ``read_csv`` / ``read_parquet`` (``{"delim": ";"}``); for CSV also
        ``encoding`` (``"latin-1"``) and ``decimal`` (``","``, DuckDB's ``decimal_separator``).
    memory_limit, threads
        See :func:`connect`.
    stream : bool, default False
        Leave files as views read on every query, without insertion order (summaries of files
        larger than memory); else CSV text is parsed once into a temporary table.

    Raises
    ------
    SourceNotFoundError
        A path, glob or directory matches no file.
    DataValidationError
        An unsupported source, an unreadable file, files with different columns, or the
        ``(transactions, quality)`` pair of ``load_transactions``.
    """
    reject_result_pair(source)
    if isinstance(source, os.PathLike):
        source = os.fspath(source)
    is_paths = isinstance(source, str) or (
        isinstance(source, Sequence)
        and not isinstance(source, str | bytes)
        and len(source) > 0
        and all(isinstance(p, str | os.PathLike) for p in source)
    )
    spark_frame = _is_spark_dataframe(source)
    if not (isinstance(source, pd.DataFrame | duckdb.DuckDBPyRelation) or is_paths or spark_frame):
        raise DataValidationError(
            f"unsupported transaction source of type {type(source).__name__}: pass a pandas "
            "DataFrame, a CSV/Parquet path, glob, directory or list of paths, a DuckDB relation, "
            "a Spark DataFrame, or a table name together with connection="
        )
    con = connect(memory_limit, threads, stream=stream)
    notes: list[str] = []
    files: list[str] = []
    decimal = "."
    tz_hint: dict[str, str] = {}
    frame_index: list[str] = []
    try:
        if isinstance(source, duckdb.DuckDBPyRelation):
            try:
                con.register(TABLE, source.to_arrow_table())
            except duckdb.Error as exc:
                raise DataValidationError(
                    f"cannot read the DuckDB relation: {first_line(exc)}"
                ) from exc
            kind, desc = "relation", "DuckDB relation"
        elif spark_frame:
            table = _spark_to_arrow(source)
            con.register(TABLE, table)
            kind = "spark"
            desc = f"Spark DataFrame ({table.num_rows:,} rows x {table.num_columns} columns)"
        elif isinstance(source, pd.DataFrame):
            _open_frame(con, source)
            kind = "frame"
            desc = f"DataFrame ({len(source):,} rows x {source.shape[1]} columns)"
            tz_hint = {
                c: str(source[c].dtype.tz)
                for c in source.columns
                if isinstance(source[c].dtype, pd.DatetimeTZDtype)
            }
            frame_index = [n for n in source.index.names if isinstance(n, str)]
        elif isinstance(source, str) and is_database_url(source):
            # postgresql://... and duckdb://... URLs: streamed into a temporary table (_database)
            desc = open_in_duckdb(source, con, TABLE)
            kind = "database"
        elif isinstance(source, str) and connection is not None and not (
            os.path.exists(source) or _glob.has_magic(source) or _is_remote(source)
        ):
            desc = _open_table(con, source, connection)
            kind = "table"
        else:
            raw = [source] if isinstance(source, str) else [os.fspath(p) for p in source]
            kind, desc, files, decimal = _open_files(
                con, raw, read_options, materialize=not stream, notes=notes
            )
        columns, types = _describe(con, desc)
        _lock(con, [f for f in files if not _is_remote(f)])
    except BaseException:
        con.close()
        raise
    return Source(con, TABLE, columns, types, desc, kind, files=files, notes=notes,
                  tz_hint=tz_hint, frame_index=frame_index, decimal=decimal)


# ------------------------------------------------------------------------------------------------
# Outputs never replace inputs
# ------------------------------------------------------------------------------------------------


def input_files(source: Any, read_options: Mapping[str, Any] | None = None) -> list[str]:
    """The local files ``source`` would be read from (empty for frames, tables, data sets).

    Uses the same expansion and the same skipping of custvalue outputs as :func:`open_source`.
    A source that matches nothing gives an empty list (opening it reports the error).
    """
    if isinstance(source, os.PathLike):
        source = os.fspath(source)
    if isinstance(source, str):
        if is_dataset_name(source) and not os.path.exists(source):
            return []
        raw = [source]
    elif (isinstance(source, Sequence) and not isinstance(source, str | bytes) and source
          and all(isinstance(p, str | os.PathLike) for p in source)):
        raw = [os.fspath(p) for p in source]
    else:
        return []
    try:
        files, matched = expand_paths(raw)
        fmt = _file_format([f for f in files if not _is_remote(f)] or files)
        con = duckdb.connect(config={"autoload_known_extensions": False,
                                     "autoinstall_known_extensions": False})
        try:
            opts = _csv_options(read_options) if fmt == "csv" else dict(read_options or {})
            opts["union_by_name"] = True  # layouts are checked when the source is opened
            files = _select_files(con, fmt, files, matched, opts, [])
        finally:
            con.close()
    except (DataValidationError, OSError, duckdb.Error):
        return []
    return [f for f in files if not _is_remote(f)]


def refuse_overwriting_inputs(
    outputs: Iterable[str | os.PathLike[str] | None],
    sources: Iterable[Any],
    read_options: Mapping[str, Any] | None = None,
) -> None:
    """Raise :class:`~custvalue.errors.ParameterError` if an output path is one of the inputs.

    Inputs are resolved as :func:`open_source` reads them (globs and directories expanded,
    custvalue outputs skipped); paths are compared after resolving symbolic links, and hard
    links to the same file count as the same file. Call it before any work, with every path a
    command will write (the CLI's ``--out`` and ``--report``, a report's exports).
    """
    inputs: list[str] = []
    for source in sources:
        inputs.extend(input_files(source, read_options))
    if not inputs:
        return
    real = {os.path.realpath(f): f for f in inputs}
    for out in outputs:
        if out is None:
            continue
        path = os.path.expanduser(os.fspath(out))
        hit = real.get(os.path.realpath(path))
        if hit is None and os.path.exists(path):
            hit = next((f for f in inputs if os.path.exists(f) and os.path.samefile(f, path)),
                       None)
        if hit is not None:
            raise ParameterError(
                f"output {os.fspath(out)!r} is the input file {hit!r}: refusing to overwrite "
                "the data; write the output to another path"
            )


# ------------------------------------------------------------------------------------------------
# Bundled data sets
# ------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class BundledDataset:
    """A data set shipped with the package (or its dependencies), usable wherever a path is."""

    name: str
    description: str
    loader: Callable[[int], pd.DataFrame]
    #: Columns besides customer_id/date/amount/order_id that are customer attributes.
    attributes: tuple[str, ...] = ()
    #: The order id column, where the data set has one.
    order_col: str | None = None


def _cdnow(kind: str) -> Callable[[int], pd.DataFrame]:
    def load(seed: int = 0) -> pd.DataFrame:
        from .datasets import load_cdnow

        return load_cdnow(kind)

    return load


def _simulated(seed: int = 0) -> pd.DataFrame:
    from .datasets import simulate

    return simulate(2000, seed=seed).transactions


_DATASETS: dict[str, BundledDataset] = {
    d.name: d
    for d in (
        BundledDataset(
            "cdnow-sample",
            "CDNOW sample: 6,919 transactions of 2,357 customers (Fader, Hardie & Lee 2005)",
            _cdnow("sample"),
        ),
        BundledDataset(
            "cdnow-master",
            "CDNOW master: 69,659 transactions of 23,570 customers (Fader, Hardie & Lee 2005)",
            _cdnow("master"),
        ),
        BundledDataset(
            "simulated",
            "2,000 simulated customers with regions, channels and categories (datasets.simulate)",
            _simulated,
            attributes=("region", "channel", "category"),
        ),
    )
}

#: Built-in data sources accepted wherever a transactions path is (CLI ``--data``, reports).
DATASET_NAMES: tuple[str, ...] = tuple(_DATASETS)

#: Spellings accepted for the canonical names (``cdnow_master``, ``CDNOW``...).
_ALIASES: dict[str, str] = {
    "cdnow": "cdnow-master",
    "cdnow_master": "cdnow-master",
    "cdnow_sample": "cdnow-sample",
}


def _canonical(name: Any) -> str | None:
    if not isinstance(name, str):
        return None
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    return key if key in _DATASETS else None


def is_dataset_name(name: Any) -> bool:
    """Whether ``name`` names a bundled data set (case and ``-``/``_`` spelling ignored)."""
    return _canonical(name) is not None


def bundled_dataset(name: str) -> BundledDataset:
    """The :class:`BundledDataset` called ``name``; ``KeyError`` listing the names otherwise."""
    key = _canonical(name)
    if key is None:
        raise KeyError(f"{name!r} is not a bundled data set; use one of {', '.join(DATASET_NAMES)}")
    return _DATASETS[key]


def resolve_dataset(name: str, *, seed: int = 0) -> pd.DataFrame:
    """Load the bundled data set ``name`` as a transactions frame.

    Parameters
    ----------
    name : str
        One of :data:`DATASET_NAMES` (or an accepted alias such as ``cdnow``).
    seed : int
        Random seed, used by ``simulated`` only.
    """
    return bundled_dataset(name).loader(seed)
