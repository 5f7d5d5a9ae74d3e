"""SQL databases as transaction sources: SQLAlchemy-style URLs streamed into DuckDB.

A database source is a URL naming the server and either a table or a query::

    postgresql://user:password@host:5432/shop?table=orders
    postgresql://user@host/shop?table=sales.orders&sslmode=require
    postgresql://user@host/shop?query=SELECT%20customer_id,%20ts%20AS%20date,%20amount%20FROM%20orders
    duckdb:///srv/warehouse.duckdb?table=orders

SQLAlchemy driver suffixes (``postgresql+psycopg://``, ``postgres://``) are accepted and
ignored; every other query parameter (``sslmode``, ``connect_timeout``, ...) goes to libpq. A
password may come from the URL, ``PGPASSWORD`` or ``~/.pgpass`` as for ``psql``. A query can
also be given separately (``sql=`` argument of :func:`open_in_duckdb`).

How the rows travel
-------------------
DuckDB's own PostgreSQL extension cannot be installed here (it is downloaded at run time, and
the PyPI build targets another DuckDB version), so PostgreSQL is read with the ADBC driver
(``adbc-driver-postgresql``): the server sends the result with ``COPY ... TO STDOUT (FORMAT
binary)``, the driver turns it into Arrow record batches of about 16 MB, and DuckDB consumes
that stream into a table of its own (compressed columns, spilled to its temporary directory
beyond the memory limit). The summaries then scan that table as often as they need. No step
holds all rows in pandas or in Python objects. ``NUMERIC`` columns (exact decimals, which the
driver hands over as text) are converted batch by batch to float64, the type the summaries
compute amounts in.

Errors
------
A server that cannot be reached or refuses the login raises
:class:`~custvalue.errors.DataSourceError` with one line naming the host, port, database and
user (never the password); a missing table or a bad query raises
:class:`~custvalue.errors.DataValidationError` naming the table or query.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import urllib.parse
from collections.abc import Iterator
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from .errors import DataSourceError, DataValidationError, ParameterError

__all__ = [
    "DatabaseSource",
    "is_database_url",
    "open_in_duckdb",
    "parse_database_url",
    "read_record_batches",
    "redact",
]

_POSTGRES_SCHEMES = ("postgresql", "postgres")
_DUCKDB_SCHEMES = ("duckdb",)
_OWN_PARAMS = ("table", "query")


def _scheme(url: str) -> str | None:
    m = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://", url)
    if not m:
        return None
    return m.group(1).lower().split("+", 1)[0]


def is_database_url(source: Any) -> bool:
    """Whether ``source`` is a database URL this module opens (``postgresql://``, ``duckdb://``)."""
    if not isinstance(source, str):
        return False
    return _scheme(source.strip()) in (*_POSTGRES_SCHEMES, *_DUCKDB_SCHEMES)


@dataclasses.dataclass(frozen=True)
class DatabaseSource:
    """A parsed database URL: where the server is and what to read.

    Attributes
    ----------
    kind : {"postgresql", "duckdb"}
        Database system.
    uri : str
        Connection URI without custvalue's own parameters (``table``, ``query``); for DuckDB the
        database file path.
    table : str or None
        Table (optionally ``schema.table``) to read, or None when ``query`` is given.
    query : str or None
        SQL query whose result is the transaction log.
    host, port, database, user : str or None
        For messages; never the password.
    """

    kind: str
    uri: str
    table: str | None
    query: str | None
    host: str | None = None
    port: int | None = None
    database: str | None = None
    user: str | None = None

    @property
    def where(self) -> str:
        """Human-readable location: ``PostgreSQL server db.example.com:5432 (database 'shop')``."""
        if self.kind == "duckdb":
            return f"DuckDB database {self.uri!r}"
        port = self.port or 5432
        who = f", user {self.user!r}" if self.user else ""
        return (
            f"PostgreSQL server {self.host or 'localhost'}:{port} "
            f"(database {self.database!r}{who})"
        )

    @property
    def what(self) -> str:
        """``table 'orders'`` or ``query 'SELECT ...'`` (clipped)."""
        if self.table is not None:
            return f"table {self.table!r}"
        q = " ".join(str(self.query).split())
        return f"query {q[:80] + ('...' if len(q) > 80 else '')!r}"

    @property
    def description(self) -> str:
        """One phrase for messages and provenance: what is read from where."""
        return f"{self.what} on {self.where}"


def _quote_table(name: str) -> str:
    """``schema.table`` -> ``"schema"."table"`` (each part quoted, quotes doubled)."""
    parts = [p for p in name.split(".")]
    if not name.strip() or any(not p.strip() for p in parts) or len(parts) > 3:
        raise ParameterError(
            f"table={name!r} is not a table name; use 'orders' or 'schema.orders'"
        )
    return ".".join('"' + p.strip().replace('"', '""') + '"' for p in parts)


def parse_database_url(url: str, sql: str | None = None) -> DatabaseSource:
    """Split a database URL into connection details and what to read.

    Parameters
    ----------
    url : str
        ``postgresql://[user[:password]@]host[:port]/database?table=...`` (or ``?query=...``),
        or ``duckdb:///path/to/file.duckdb?table=...``.
    sql : str, optional
        A query, instead of ``table=``/``query=`` in the URL.

    Returns
    -------
    DatabaseSource

    Raises
    ------
    ParameterError
        Not a database URL, no table or query, or both.
    """
    if not is_database_url(url):
        raise ParameterError(
            f"{url!r} is not a database URL; use postgresql://user@host/db?table=orders or "
            "duckdb:///path/file.duckdb?table=orders"
        )
    url = url.strip()
    kind = "duckdb" if _scheme(url) in _DUCKDB_SCHEMES else "postgresql"
    parts = urllib.parse.urlsplit(url)
    params = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    own = {k: v for k, v in params if k in _OWN_PARAMS}
    rest = [(k, v) for k, v in params if k not in _OWN_PARAMS]
    table, query = own.get("table") or None, own.get("query") or None
    if sql is not None:
        if query is not None or table is not None:
            raise ParameterError(
                "give either sql= or table=/query= in the URL, not both "
                f"(URL has {'table' if table else 'query'}=)"
            )
        query = sql
    if (table is None) == (query is None):
        raise ParameterError(
            f"the database URL must say what to read: add ?table=orders or ?query=SELECT... "
            f"(or pass sql=...), exactly one of them; got {'both' if table else 'neither'}"
        )
    if table is not None:
        _quote_table(table)  # validates
    if kind == "duckdb":
        path = urllib.parse.unquote(parts.path or "")
        if parts.netloc:  # duckdb://relative/path.db
            path = parts.netloc + path
        if not path:
            raise ParameterError(f"{url!r} names no DuckDB database file: duckdb:///path/file.duckdb")
        return DatabaseSource("duckdb", os.path.expanduser(path), table, query)
    scheme = "postgresql"
    uri = urllib.parse.urlunsplit(
        (scheme, parts.netloc, parts.path, urllib.parse.urlencode(rest), "")
    )
    database = urllib.parse.unquote(parts.path.lstrip("/")) or None
    try:
        port = parts.port
    except ValueError:
        raise ParameterError(f"the port in {redact(url)!r} is not a number") from None
    return DatabaseSource(
        "postgresql",
        uri,
        table,
        query,
        host=parts.hostname,
        port=port,
        database=database,
        user=urllib.parse.unquote(parts.username) if parts.username else os.environ.get("PGUSER"),
    )


def redact(text: str) -> str:
    """Replace the password of any URL in ``text`` by ``***`` (for messages and reports)."""
    return re.sub(r"(://[^:/@\s]+:)[^@\s]*@", r"\1***@", text)


def _first_line(exc: BaseException) -> str:
    """The informative line of a driver error: libpq's message, without ADBC's prefixes."""
    text = redact(str(exc)).strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    line = lines[0] if lines else type(exc).__name__
    for ln in lines:  # libpq often puts the reason on a later line
        if "FATAL" in ln or "failed:" in ln or "ERROR" in ln:
            line = ln
            break
    line = re.sub(r"^(IO|INTERNAL|INVALID_ARGUMENT|UNKNOWN|NOT_FOUND):\s*", "", line)
    line = re.sub(r"^\[libpq\]\s*", "", line)
    line = re.sub(r"^Failed to connect:\s*", "", line)
    return " ".join(line.split()).rstrip(".")


def _connect_postgres(src: DatabaseSource) -> Any:
    try:
        import adbc_driver_postgresql.dbapi as pg
    except ImportError as exc:  # pragma: no cover - dependency of the package
        raise DataSourceError(
            "reading PostgreSQL needs the adbc-driver-postgresql package: "
            "pip install adbc-driver-postgresql"
        ) from exc
    try:
        return pg.connect(src.uri)
    except Exception as exc:  # adbc raises OperationalError / ProgrammingError / RuntimeError
        reason = _first_line(exc)
        hint = ""
        low = reason.lower()
        if "password" in low or "authentication" in low:
            hint = "; check the user and password (URL, PGPASSWORD or ~/.pgpass)"
        elif "refused" in low or "timeout" in low or "could not" in low or "no route" in low:
            hint = "; is the server running and reachable?"
        raise DataSourceError(f"cannot connect to {src.where}: {reason}{hint}") from None


_EXT_NUMERIC = "numeric"


def _convert_field(field: pa.Field) -> tuple[pa.Field, str]:
    """Target field and conversion for one column: 'keep', 'numeric' (text -> float64), 'storage'."""
    t = field.type
    if isinstance(t, pa.BaseExtensionType):
        name = getattr(t, "type_name", "") or ""
        meta = (field.metadata or {}).get(b"POSTGRESQL:type", b"").decode()
        if name == _EXT_NUMERIC or meta == _EXT_NUMERIC:
            return pa.field(field.name, pa.float64()), "numeric"
        return pa.field(field.name, t.storage_type), "storage"
    return pa.field(field.name, t), "keep"


def _converted_reader(reader: pa.RecordBatchReader, what: str) -> pa.RecordBatchReader:
    plan = [_convert_field(f) for f in reader.schema]
    if all(how == "keep" for _, how in plan):
        return reader
    schema = pa.schema([f for f, _ in plan])

    def batches() -> Iterator[pa.RecordBatch]:
        for batch in reader:
            cols = []
            for (field, how), col in zip(plan, batch.columns, strict=True):
                if how == "keep":
                    cols.append(col)
                    continue
                storage = col.storage if isinstance(col, pa.ExtensionArray) else col
                if how == "numeric":
                    # PostgreSQL writes 'NaN' for NaN numerics, which float parsing accepts
                    try:
                        cols.append(pc.cast(storage, pa.float64()))
                    except pa.ArrowInvalid as exc:
                        raise DataValidationError(
                            f"NUMERIC column {field.name!r} of {what} has a value that is not a "
                            f"number: {exc}"
                        ) from None
                else:
                    cols.append(storage)
            yield pa.RecordBatch.from_arrays(cols, schema=schema)

    return pa.RecordBatchReader.from_batches(schema, batches())


def read_record_batches(source: DatabaseSource | str) -> tuple[pa.RecordBatchReader, Any]:
    """Open a stream of Arrow record batches of a PostgreSQL table or query.

    Parameters
    ----------
    source : DatabaseSource or str
        A parsed source or a ``postgresql://`` URL.

    Returns
    -------
    (pyarrow.RecordBatchReader, handle)
        The stream (batches of about 16 MB as the server sends them) and a handle whose
        ``close()`` the caller calls after consuming the stream.

    Raises
    ------
    DataSourceError
        The server cannot be reached or refuses the login.
    DataValidationError
        The table does not exist or the query fails.
    """
    src = parse_database_url(source) if isinstance(source, str) else source
    if src.kind != "postgresql":
        raise ParameterError(f"read_record_batches reads PostgreSQL, not {src.kind}")
    conn = _connect_postgres(src)
    sql = f"SELECT * FROM {_quote_table(src.table)}" if src.table is not None else str(src.query)
    try:
        cur = conn.cursor()
        cur.execute(sql)
        reader = cur.fetch_record_batch()
    except Exception as exc:
        conn.close()
        raise DataValidationError(
            f"cannot read {src.what} from {src.where}: {_first_line(exc)}"
        ) from None
    return _converted_reader(reader, src.what), _Connection(conn, cur)


class _Connection:
    """Keeps the cursor (whose garbage collection would close the stream) and the connection."""

    def __init__(self, conn: Any, cursor: Any) -> None:
        self._conn, self._cursor = conn, cursor

    def close(self) -> None:
        """Close the cursor, then the connection; errors while closing are ignored."""
        for obj in (self._cursor, self._conn):
            with contextlib.suppress(Exception):
                obj.close()


def open_in_duckdb(
    source: str | DatabaseSource,
    con: duckdb.DuckDBPyConnection,
    name: str,
    *,
    sql: str | None = None,
) -> str:
    """Make the rows of a database table or query available in DuckDB as ``name``.

    PostgreSQL rows are streamed (Arrow record batches) into a DuckDB temporary table, so the
    summaries can scan them several times; memory stays under DuckDB's ``memory_limit`` (it
    spills to its temporary directory). A DuckDB database file is attached read-only and
    ``name`` is a view on the table or query, so nothing is copied.

    Parameters
    ----------
    source : str or DatabaseSource
        Database URL (see the module docstring).
    con : duckdb.DuckDBPyConnection
        The connection the summaries run on.
    name : str
        Name of the table/view to create (e.g. ``__cv_tx``).
    sql : str, optional
        Query to run instead of ``table=``/``query=`` in the URL.

    Returns
    -------
    str
        Description of the source for messages and provenance (no password).

    Raises
    ------
    DataSourceError
        Server down, wrong password, unknown host, missing DuckDB file.
    DataValidationError
        Missing table, failing query, non-numeric NUMERIC values.
    """
    src = parse_database_url(source, sql) if isinstance(source, str) else source
    target = '"' + name.replace('"', '""') + '"'
    if src.kind == "duckdb":
        if not os.path.exists(src.uri):
            raise DataSourceError(f"cannot open {src.where}: the file does not exist")
        alias = f"__cv_db_{abs(hash((src.uri, name))) % 10**8}"
        try:
            con.execute(f"ATTACH '{src.uri.replace(chr(39), chr(39) * 2)}' AS {alias} (READ_ONLY)")
        except duckdb.Error as exc:
            raise DataSourceError(f"cannot open {src.where}: {_first_line(exc)}") from None
        if src.table is not None:
            body = f"SELECT * FROM {alias}.{_quote_table(src.table)}"
        else:
            con.execute(f"USE {alias}")
            body = str(src.query)
        try:
            con.execute(f"CREATE TEMP VIEW {target} AS {body}")
            con.sql(f"SELECT * FROM {target} LIMIT 0").fetchall()
        except duckdb.Error as exc:
            raise DataValidationError(
                f"cannot read {src.what} from {src.where}: {_first_line(exc)}"
            ) from None
        return src.description
    reader, conn = read_record_batches(src)
    stream = f"__cv_stream_{abs(hash(name)) % 10**8}"
    try:
        con.register(stream, reader)
        con.execute(f"CREATE TEMP TABLE {target} AS SELECT * FROM {stream}")
    except DataValidationError:
        raise
    except (duckdb.Error, pa.ArrowException, OSError) as exc:
        raise DataValidationError(
            f"reading {src.what} from {src.where} failed: {_first_line(exc)}"
        ) from None
    finally:
        with contextlib.suppress(Exception):
            con.unregister(stream)
        with contextlib.suppress(Exception):
            conn.close()
    return src.description

