"""The Apache Spark engine: customer summaries in Spark SQL and model scoring on the executors.

For customer bases beyond one machine. Every function takes a Spark DataFrame (or a path Spark
reads) and returns a Spark DataFrame, so per-customer results never have to fit on the driver;
only the compressed sufficient statistics the models are fitted on are collected.

* :func:`rfm_summary`, :func:`calibration_holdout`, :func:`cohort_table` -- the summaries of
  :mod:`custvalue.summary` written in Spark SQL with the same definitions (Fader, Hardie & Lee
  2005, "Counting your customers the easy way", Marketing Science 24(2): frequency = repeat
  purchase periods, recency and T as differences of integer period indices, monetary value =
  mean repeat purchase value; Fader & Hardie 2013 for the Gamma-Gamma input). On the same data
  they equal the DuckDB engine's frames: integers, periods, timestamps and attributes exactly,
  sums of amounts up to the order in which floating-point additions happen (exactly when the
  amounts are exact binary fractions, e.g. whole cents stored as integers or quarter units).
* :func:`sufficient_statistics` -- distinct ``(frequency, recency, T)`` rows with their counts
  (and, for Gamma-Gamma, distinct ``(frequency, monetary_value)``), collected to the driver and
  fitted there with ``model.fit(stats)`` (the ``weight`` column).
* :func:`score` -- P(alive), expected purchases and CLV per customer with a fitted model, run on
  the executors with ``mapInPandas``: each task scores its partition with
  :func:`custvalue.value.customer_lifetime_value`.

What moves where (scaling out)
------------------------------
The summary shuffles the transactions once: ``DISTRIBUTE BY customer_id`` hashes the rows (id,
timestamp, amount) over the partitions, and the three GROUP BY levels (orders, customer x
period, customer) then run inside each partition with no further exchange; the customer rows
stay distributed. A profile pass before it (row count, nulls, date range) is one scan with a
one-row result. ``sufficient_statistics`` collects one row per distinct ``(x, t_x, T)``: with
``x <= t_x <= T <= P`` periods in the window, at most ``(P + 1)(P + 2)(P + 3) / 6`` rows whatever
the number of customers (111,552 rows for 22.8M customers over two years in weeks), and for
Gamma-Gamma one row per distinct ``(x, m_x)`` (2.2M rows there; ``benchmarks/RESULTS.md``).
Scoring ships the fitted models (a few parameters) to every task and shuffles nothing.

Sessions
--------
:func:`local_session` starts (or reuses) a small local session for notebooks and tests. On a
cluster use the session you have (``spark`` in Databricks, or the one ``spark-submit`` gives).
Timestamps are read as ``TIMESTAMP_NTZ`` (wall-clock time, no time zone), like the tz-naive
timestamps of the rest of the package.
"""

from __future__ import annotations

import os
import sys
import warnings
import weakref
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import pandas as pd

from .errors import DataValidationError, ParameterError

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame as SparkDataFrame
    from pyspark.sql import SparkSession

    from .summary import _Columns, _Profile

__all__ = [
    "MASTER_ENV",
    "calibration_holdout",
    "cohort_table",
    "is_spark_dataframe",
    "local_session",
    "rfm_summary",
    "score",
    "sufficient_statistics",
    "summary_attrs",
    "to_pandas",
]

_SPARK_HINT = (
    "the Spark engine needs pyspark (pip install 'custvalue[spark]') and Java 17 "
    "(bash scripts/ensure_services.sh java)"
)


def _pyspark() -> Any:
    try:
        import pyspark.sql as ps
    except ImportError as exc:
        raise ParameterError(_SPARK_HINT) from exc
    return ps


def is_spark_dataframe(obj: Any) -> bool:
    """Whether ``obj`` is a PySpark DataFrame (classic or Spark Connect), without importing pyspark."""
    from ._sources import _is_spark_dataframe

    return _is_spark_dataframe(obj)


#: Environment variable naming the Spark master a new session attaches to (``yarn``,
#: ``spark://host:7077``, ``k8s://...``) instead of ``local[cores]``; a report's kernel inherits
#: it, so ``CUSTVALUE_SPARK_MASTER=yarn custvalue report value --engine spark`` runs the
#: report's summaries on the cluster. ``SPARK_REMOTE`` (Spark Connect, ``sc://host:15002``)
#: is honoured the same way.
MASTER_ENV = "CUSTVALUE_SPARK_MASTER"


def local_session(
    cores: int = 2,
    *,
    shuffle_partitions: int = 4,
    driver_memory: str = "1g",
    app_name: str = "custvalue",
) -> SparkSession:
    """The active Spark session, else a new one: on the cluster the environment names, else local.

    In order: the active session (``spark`` in a notebook attached to a cluster, or under
    ``spark-submit``); a Spark Connect session when ``SPARK_REMOTE`` is set; a session on the
    master in ``$CUSTVALUE_SPARK_MASTER`` (:data:`MASTER_ENV`); a local ``local[cores]`` one.
    The options below apply to new sessions only.

    Parameters
    ----------
    cores : int, default 2
        Worker threads of the local master.
    shuffle_partitions : int, default 4
        ``spark.sql.shuffle.partitions`` (Spark's default of 200 is made for clusters).
    driver_memory : str, default "1g"
        JVM heap of the driver (which is also the executor in local mode).
    app_name : str
        Spark application name.

    Returns
    -------
    pyspark.sql.SparkSession
        With the UI disabled, Arrow transfers enabled and the session time zone UTC.
    """
    ps = _pyspark()
    active = ps.SparkSession.getActiveSession()
    if active is not None:
        return active
    os.environ.setdefault("PYARROW_IGNORE_TIMEZONE", "1")
    # Python workers run this interpreter (with custvalue and pandas), not whatever `python3`
    # is first on PATH.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    remote = os.environ.get("SPARK_REMOTE")
    if remote:
        try:
            return ps.SparkSession.builder.remote(remote).appName(app_name).getOrCreate()
        except Exception as exc:
            raise ParameterError(
                f"cannot connect to the Spark Connect server SPARK_REMOTE={remote!r} "
                f"({_first_line(exc)})"
            ) from None
    master = os.environ.get(MASTER_ENV) or f"local[{int(cores)}]"
    try:
        spark = (
            ps.SparkSession.builder.master(master)
            .appName(app_name)
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.shuffle.partitions", str(int(shuffle_partitions)))
            .config("spark.default.parallelism", str(int(shuffle_partitions)))
            .config("spark.driver.memory", driver_memory)
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.sql.execution.arrow.pyspark.enabled", "true")
            .config("spark.sql.ansi.enabled", "false")
            .getOrCreate()
        )
    except Exception as exc:  # no Java: pyspark raises PySparkRuntimeError
        raise ParameterError(
            f"cannot start a Spark session on {master} ({_first_line(exc)}); {_SPARK_HINT}"
        ) from None
    spark.sparkContext.setLogLevel("ERROR")
    return spark


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------


def _as_spark(tx: Any, spark: SparkSession | None) -> tuple[SparkDataFrame, str]:
    """The transactions as a Spark DataFrame and a description for messages."""
    if is_spark_dataframe(tx):
        return tx, "Spark DataFrame"
    spark = spark or local_session()
    if isinstance(tx, pd.DataFrame):
        description = f"DataFrame with {len(tx):,} rows"
        if len(tx) == 0:  # Spark cannot infer a schema from no rows
            _summary_helpers()._row_count({"n": 0}, description)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pyspark 4.x warns about pandas 3 on every call
            return spark.createDataFrame(tx), description
    if isinstance(tx, (str, os.PathLike)) or (
        isinstance(tx, (list, tuple)) and tx and all(isinstance(p, (str, os.PathLike)) for p in tx)
    ):
        paths = [os.fspath(p) for p in ([tx] if isinstance(tx, (str, os.PathLike)) else tx)]
        csv = all(p.lower().endswith((".csv", ".csv.gz")) for p in paths)
        try:
            if csv:
                return spark.read.csv(paths, header=True, inferSchema=True), f"CSV {paths!r}"
            return spark.read.parquet(*paths), f"Parquet {paths!r}"
        except Exception as exc:
            why = _first_line(exc)
            if "TIMESTAMP(NANOS" in why:
                why += (" (Spark reads micro- or millisecond timestamps: write the file with "
                        "df.to_parquet(path, coerce_timestamps='us'))")
            raise DataValidationError(f"Spark cannot read {paths!r}: {why}") from None
    raise DataValidationError(
        f"unsupported transaction source of type {type(tx).__name__} for the Spark engine: pass "
        "a Spark DataFrame, a pandas DataFrame or Parquet/CSV paths"
    )


def _first_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return lines[0] if lines else type(exc).__name__


def _q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


_NUMERIC_TYPES = ("byte", "short", "int", "bigint", "long", "float", "double", "decimal", "tinyint", "smallint")


def _spark_ts(sdf: SparkDataFrame, date_col: str, amount_col: str) -> str:
    """The TIMESTAMP_NTZ expression of the date column; raise when the amounts are no numbers."""
    types = dict(sdf.dtypes)
    amount_type = types[amount_col].lower()
    if not amount_type.startswith(_NUMERIC_TYPES):
        raise DataValidationError(
            f"amount column {amount_col!r} has type {types[amount_col]}, not a number; cast it "
            "first (e.g. F.col(...).cast('double'))"
        )
    date_type = types[date_col].lower()
    if date_type in ("timestamp_ntz", "date", "timestamp"):
        return f"CAST({_q(date_col)} AS TIMESTAMP_NTZ)"
    return f"TRY_CAST({_q(date_col)} AS TIMESTAMP_NTZ)"


# --------------------------------------------------------------------------------------------
# Periods (Spark twins of custvalue.summary's period SQL)
# --------------------------------------------------------------------------------------------

_PERIOD = {
    "D": "CAST(datediff(CAST({ts} AS DATE), DATE '1970-01-01') AS BIGINT)",
    # weeks start on Monday: 1969-12-29 was a Monday
    "W": "CAST(floor(datediff(CAST({ts} AS DATE), DATE '1969-12-29') / 7) AS BIGINT)",
    "M": "CAST(year({ts}) * 12 + month({ts}) - 1 AS BIGINT)",
    "Q": "CAST(year({ts}) * 4 + quarter({ts}) - 1 AS BIGINT)",
    "Y": "CAST(year({ts}) AS BIGINT)",
}

_PERIOD_START = {
    "D": "date_add(DATE '1970-01-01', CAST({p} AS INT))",
    "W": "date_add(DATE '1969-12-29', CAST(7 * {p} AS INT))",
    "M": "make_date(CAST(floor({p} / 12) AS INT), CAST(pmod({p}, 12) + 1 AS INT), 1)",
    "Q": "make_date(CAST(floor({p} / 4) AS INT), CAST(3 * pmod({p}, 4) + 1 AS INT), 1)",
    "Y": "make_date(CAST({p} AS INT), 1, 1)",
}


def _summary_helpers() -> Any:
    """custvalue.summary's period/date helpers (one definition of periods and cut-offs)."""
    from . import summary

    return summary


def _ts_literal(ts: pd.Timestamp) -> str:
    return f"TIMESTAMP_NTZ '{ts.isoformat(sep=' ')}'"


def _cut(obs_end: pd.Timestamp) -> tuple[str, str]:
    """Operator and literal keeping transactions observed by ``obs_end`` (bare date: whole day)."""
    if obs_end == obs_end.normalize():
        return "<", _ts_literal(obs_end + pd.Timedelta(days=1))
    return "<=", _ts_literal(obs_end)


def _profile(spark: SparkSession, sdf: SparkDataFrame, cols: _Columns) -> _Profile:
    """One pass: row count, nulls, unparseable dates, date range; raise on anything unusable."""
    c, a, d, ts = _q(cols.customer), _q(cols.amount), _q(cols.date), cols.ts_expr
    row = spark.sql(
        f"""SELECT count(*) AS n,
               count_if({c} IS NULL) AS null_customer,
               count_if({d} IS NULL) AS null_date,
               count_if({d} IS NOT NULL AND {ts} IS NULL) AS bad_date,
               count_if({a} IS NULL OR isnan(CAST({a} AS DOUBLE))
                        OR abs(CAST({a} AS DOUBLE)) = double('inf')) AS bad_amount,
               min({ts}) AS first, max({ts}) AS last
            FROM {{tx}}""",
        tx=sdf,
    ).collect()[0]
    summary = _summary_helpers()
    n = summary._row_count(row, cols.description)
    problems = summary._row_problems(row, cols.customer, cols.date, cols.amount)
    if row["bad_date"]:
        problems.append(f"{int(row['bad_date']):,} rows whose {cols.date!r} is not a date")
    summary._raise_unclean(
        problems, cols.description, n,
        "Clean them (custvalue.load_transactions on a sample shows the rules) first",
    )
    return summary._Profile(n, pd.Timestamp(row["first"]), pd.Timestamp(row["last"]), False)


def _customer_sql(cols: _Columns, freq: str, where: str, obs_period: int) -> str:
    """Spark SQL of the per-customer RFM aggregate (custvalue.summary's three GROUP BY levels).

    orders (customer x order id, or customer x timestamp) -> purchase periods (amounts summed)
    -> customers. Attribute values come from the earliest row; ties go to the smallest attribute
    tuple with NULLs last, as in the DuckDB engine (each attribute is preceded by an is-null flag
    so that Spark's struct ordering, which puts NULLs first, sorts them last).
    """
    c, a = _q(cols.customer), _q(cols.amount)
    period = _PERIOD[freq].format(ts="ts")
    attr_select = "".join(f", {_q(x)}" for x in cols.attributes)
    if cols.attributes:
        fields = ", ".join(
            ["ts AS __ts"]
            + [
                f"{_q(x)} IS NULL AS n{i}, {_q(x)} AS a{i}"
                for i, x in enumerate(cols.attributes)
            ]
        )
        first_row = f", min(struct({fields})) AS first_row"
        carry = ", min(first_row) AS first_row"
        out_attr = "".join(f", first_row.a{i} AS {_q(x)}" for i, x in enumerate(cols.attributes))
    else:
        first_row = carry = out_attr = ""
    order_key = f", {_q(cols.order)} AS order_key" if cols.order else ""
    summary = _summary_helpers()
    orders = summary._orders_cte(first_row, by_order=bool(cols.order))
    where_clause = f"WHERE {where}" if where else ""
    return f"""
        WITH base AS (
            SELECT {c} AS customer_id, {cols.ts_expr} AS ts, CAST({a} AS DOUBLE) AS amount
                   {order_key}{attr_select}
            FROM {{tx}}
            {where_clause}
            DISTRIBUTE BY customer_id
        ),
        {orders}
        per AS (
            SELECT customer_id, {period} AS p, sum(amount) AS amount,
                   min(ts) AS t0, max(ts) AS t1, count(*) AS n_orders{carry}
            FROM orders GROUP BY customer_id, {period}
        ),
        cust AS (
            SELECT customer_id, count(*) - 1 AS frequency, min(p) AS p0, max(p) AS p1,
                   sum(amount) AS total, min_by(amount, p) AS first_amount,
                   min(t0) AS first_purchase, max(t1) AS last_purchase,
                   sum(n_orders) AS n_orders{carry}
            FROM per GROUP BY customer_id
        )
        {summary._rfm_select(obs_period, out_attr)}"""


def _setup(
    tx: Any,
    spark: SparkSession | None,
    freq: str,
    customer_col: str,
    date_col: str,
    amount_col: str,
    order_col: str | None,
    attributes: Iterable[str] | None,
    freq_name: str = "freq",
) -> tuple[SparkSession, SparkDataFrame, _Columns, str, _Profile]:
    summary = _summary_helpers()
    unit = summary._normalize_freq(freq, freq_name)
    sdf, description = _as_spark(tx, spark)
    session = sdf.sparkSession
    order, attrs, used = summary._choose_columns(
        list(sdf.columns), description, customer_col, date_col, amount_col, order_col,
        attributes, show=lambda names, limit: repr(names),
    )
    summary._check_attributes(attrs, used)
    ts = _spark_ts(sdf, date_col, amount_col)
    cols = summary._Columns(customer_col, date_col, amount_col, order, attrs, ts, description)
    profile = _profile(session, sdf, cols)
    return session, sdf, cols, unit, profile


def rfm_summary(
    tx: Any,
    *,
    freq: str = "D",
    observation_end: Any = None,
    customer_col: str = "customer_id",
    date_col: str = "date",
    amount_col: str = "amount",
    order_col: str | None = None,
    attributes: Iterable[str] | None = None,
    spark: SparkSession | None = None,
) -> SparkDataFrame:
    """One RFM row per customer, computed in Spark SQL.

    The same statistics as :func:`custvalue.summary.rfm_summary` (the BG/NBD and Pareto/NBD
    sufficient statistics ``(x, t_x, T)``, Fader, Hardie & Lee 2005, eq. 3, and the Gamma-Gamma
    mean repeat spend, Fader & Hardie 2013, eq. 1) with the same definitions, arguments and
    column names.

    Parameters
    ----------
    tx : Spark DataFrame, pandas DataFrame, or Parquet/CSV path(s)
        Transactions, one row per line.
    freq, observation_end, customer_col, date_col, amount_col, order_col, attributes
        As for :func:`custvalue.summary.rfm_summary`.
    spark : SparkSession, optional
        Session for non-Spark inputs (default: :func:`local_session`).

    Returns
    -------
    pyspark.sql.DataFrame
        Columns ``customer_id, frequency, recency, T, monetary_value, first_purchase,
        last_purchase, n_orders, total_spend`` and the attributes; lazily evaluated (one job per
        action). :func:`to_pandas` turns it into the DuckDB engine's frame.
    """
    summary = _summary_helpers()
    session, sdf, cols, unit, profile = _setup(
        tx, spark, freq, customer_col, date_col, amount_col, order_col, attributes
    )
    obs_end = _resolve_end(summary, observation_end, profile)
    op, lit = _cut(obs_end)
    where = f"{cols.ts_expr} {op} {lit}" if obs_end < profile.last else ""
    out = session.sql(
        _customer_sql(cols, unit, where, summary._period_index(obs_end, unit)), tx=sdf
    )
    return _tag(out, {"freq": unit, "observation_end": obs_end.isoformat()})


def _resolve_end(summary: Any, value: Any, profile: _Profile, name: str = "observation_end") -> pd.Timestamp:
    return summary._resolve_observation_end(value, profile, name)


# Spark DataFrames cannot carry attrs; the settings ride along keyed by the object (a weak
# reference confirms the entry belongs to that very object, not to a recycled id).
_ATTRS: dict[int, tuple[Any, dict[str, Any]]] = {}


def _tag(sdf: SparkDataFrame, attrs: dict[str, Any]) -> SparkDataFrame:
    for key in [k for k, (ref, _) in _ATTRS.items() if ref() is None]:
        del _ATTRS[key]
    try:
        ref = weakref.ref(sdf)
    except TypeError:  # pragma: no cover - not weak-referenceable
        return sdf
    _ATTRS[id(sdf)] = (ref, attrs)
    return sdf


def summary_attrs(sdf: SparkDataFrame) -> dict[str, Any]:
    """The settings (``freq``, ``observation_end``...) a summary of this module was built with."""
    entry = _ATTRS.get(id(sdf))
    if entry is None or entry[0]() is not sdf:
        return {}
    return dict(entry[1])


def calibration_holdout(
    tx: Any,
    *,
    calibration_end: Any,
    observation_end: Any = None,
    freq: str = "D",
    customer_col: str = "customer_id",
    date_col: str = "date",
    amount_col: str = "amount",
    order_col: str | None = None,
    attributes: Iterable[str] | None = None,
    spark: SparkSession | None = None,
) -> SparkDataFrame:
    """Calibration-period RFM summary plus holdout behaviour, in Spark SQL.

    The split of :func:`custvalue.summary.calibration_holdout` (lifetimes'
    ``calibration_and_holdout_data``), used to validate the conditional expectation
    :math:`E[X(t) | x, t_x, T]` (Fader, Hardie & Lee 2005, eq. 10).

    Parameters
    ----------
    tx, calibration_end, observation_end, freq, customer_col, date_col, amount_col, order_col,
    attributes
        As for :func:`custvalue.summary.calibration_holdout`.
    spark : SparkSession, optional
        Session for non-Spark inputs.

    Returns
    -------
    pyspark.sql.DataFrame
        The :func:`rfm_summary` columns plus ``frequency_holdout``, ``monetary_value_holdout``,
        ``total_spend_holdout`` and ``duration_holdout``.
    """
    summary = _summary_helpers()
    if calibration_end is None:
        raise ParameterError("calibration_end is required, e.g. calibration_end='2024-06-30'")
    session, sdf, cols, unit, profile = _setup(
        tx, spark, freq, customer_col, date_col, amount_col, order_col, attributes
    )
    cal_end = _resolve_end(summary, calibration_end, profile, "calibration_end")
    obs_end = _resolve_end(summary, observation_end, profile)
    summary._check_holdout(cal_end, obs_end)
    cal_op, cal_lit = _cut(cal_end)
    obs_op, obs_lit = _cut(obs_end)
    ts = cols.ts_expr
    cal_sql = _customer_sql(cols, unit, f"{ts} {cal_op} {cal_lit}", summary._period_index(cal_end, unit))
    duration = float(summary._period_index(obs_end, unit) - summary._period_index(cal_end, unit))
    c, a = _q(cols.customer), _q(cols.amount)
    period = _PERIOD[unit].format(ts=ts)
    hold_where = f"NOT ({ts} {cal_op} {cal_lit}) AND {ts} {obs_op} {obs_lit}"
    sql = f"""
        WITH cal AS ({cal_sql}),
        hold_per AS ({summary._period_amounts_sql(c, period, a, "{tx}", hold_where)}),
        {summary._holdout_select(
            "ON cal.customer_id = hold.customer_id",
            f", CAST({duration!r} AS DOUBLE) AS duration_holdout",
        )}"""
    out = session.sql(sql, tx=sdf)
    return _tag(
        out,
        {"freq": unit, "calibration_end": cal_end.isoformat(), "observation_end": obs_end.isoformat()},
    )


def cohort_table(
    tx: Any,
    *,
    cohort_freq: str = "M",
    observation_end: Any = None,
    customer_col: str = "customer_id",
    date_col: str = "date",
    amount_col: str = "amount",
    spark: SparkSession | None = None,
) -> SparkDataFrame:
    """Acquisition cohorts x periods since acquisition, in Spark SQL.

    The long table of :func:`custvalue.summary.cohort_table`: ``cohort`` (first day of the
    acquisition period), ``period``, ``cohort_size``, ``active_customers``, ``active_share``,
    ``revenue``, ``revenue_per_customer``, ``cumulative_revenue_per_customer`` and
    ``complete``; one row per cohort and period up to the period of ``observation_end``.

    Parameters
    ----------
    tx, cohort_freq, observation_end, customer_col, date_col, amount_col
        As for :func:`custvalue.summary.cohort_table`.
    spark : SparkSession, optional
        Session for non-Spark inputs.

    Returns
    -------
    pyspark.sql.DataFrame
        Small (cohorts x periods rows); ``.toPandas()`` is safe.
    """
    summary = _summary_helpers()
    session, sdf, cols, unit, profile = _setup(
        tx, spark, cohort_freq, customer_col, date_col, amount_col, None, (), "cohort_freq"
    )
    obs_end = _resolve_end(summary, observation_end, profile)
    op, lit = _cut(obs_end)
    obs_p = summary._period_index(obs_end, unit)
    complete_all = summary._period_is_complete(obs_end, unit)
    c, a = _q(cols.customer), _q(cols.amount)
    period = _PERIOD[unit].format(ts=cols.ts_expr)
    sql = summary._cohort_sql(
        summary._period_amounts_sql(c, period, a, "{tx}", f"{cols.ts_expr} {op} {lit}"),
        f"explode(sequence(0L, {obs_p} - cohort_p))",
        _PERIOD_START[unit].format(p="grid.cohort_p"),
        "TIMESTAMP_NTZ",
        "true" if complete_all else f"grid.cohort_p + grid.period < {obs_p}",
    )
    out = session.sql(sql, tx=sdf)
    return _tag(out, {"freq": unit, "observation_end": obs_end.isoformat()})


def to_pandas(sdf: SparkDataFrame, *, index: str | None = "customer_id") -> pd.DataFrame:
    """Collect a (small) Spark result as the DuckDB engine's pandas frame.

    Parameters
    ----------
    sdf : pyspark.sql.DataFrame
        A result of this module.
    index : str or None, default "customer_id"
        Column to index by (sorted), ``None`` for a cohort table (kept in its order).

    Returns
    -------
    pandas.DataFrame
        Timestamps as ``datetime64[us]``, ``attrs`` as the summary's settings.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pyspark 4.x warns about pandas 3 on every call
        df = sdf.toPandas()
    for col in df.columns:
        if pd.api.types.is_datetime64_any_dtype(df[col]):
            df[col] = df[col].astype("datetime64[us]")
    if index is not None and index in df.columns:
        df = df.set_index(index).sort_index()
    df.attrs.update(summary_attrs(sdf))
    return df


# --------------------------------------------------------------------------------------------
# Models: fit on collected sufficient statistics, score on the executors
# --------------------------------------------------------------------------------------------


def sufficient_statistics(summary: SparkDataFrame, *, spend: bool = False) -> pd.DataFrame:
    """Distinct summary rows with their counts, collected to the driver for fitting.

    The BG/NBD, Pareto/NBD and MBG/NBD likelihoods depend on a customer only through
    ``(x, t_x, T)`` (Fader, Hardie & Lee 2005, eq. 6), and the Gamma-Gamma likelihood through
    ``(x, m_x)`` (Fader & Hardie 2013, eq. 3), so the fit on these rows with ``weight`` = count
    is the fit on all customers.

    Parameters
    ----------
    summary : pyspark.sql.DataFrame
        Output of :func:`rfm_summary` (or any frame with the columns).
    spend : bool, default False
        ``False``: distinct ``(frequency, recency, T)``; ``True``: distinct
        ``(frequency, monetary_value)`` of repeat customers (the Gamma-Gamma input).

    Returns
    -------
    pandas.DataFrame
        The key columns plus ``weight`` (float64), with the summary's ``attrs["freq"]`` so that
        ``model.fit(stats)`` picks up the time unit.
    """
    cols = ["frequency", "monetary_value"] if spend else ["frequency", "recency", "T"]
    sdf = summary.where("frequency > 0") if spend else summary
    grouped = sdf.groupBy(*cols).count().withColumnRenamed("count", "weight")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        df = grouped.toPandas()
    df = df.sort_values(cols, kind="mergesort").reset_index(drop=True)
    df["weight"] = df["weight"].astype("float64")
    attrs = summary_attrs(summary)
    if "freq" in attrs:
        df.attrs["freq"] = attrs["freq"]
    return df


_SCORE_COLUMNS = ("probability_alive", "expected_purchases", "clv")


def score(
    summary: SparkDataFrame,
    model: Any,
    spend_model: Any | None = None,
    *,
    horizon: float = 12.0,
    time_unit: str = "M",
    discount_rate: float = 0.1,
    margin: float = 1.0,
    id_col: str = "customer_id",
) -> SparkDataFrame:
    """Score every customer with fitted models on the Spark executors (``mapInPandas``).

    Each task receives its partition of the summary as pandas chunks (Arrow batches) and
    computes P(alive) (Fader, Hardie & Lee 2005, eq. 11 for BG/NBD), expected purchases over the
    horizon (eq. 10) and, with a spend model, the discounted CLV of
    :func:`custvalue.value.customer_lifetime_value` (expected spend: Fader & Hardie 2013, eq. 5).
    Only the fitted models travel to the executors; nothing is shuffled or collected.

    Parameters
    ----------
    summary : pyspark.sql.DataFrame
        Per-customer summary (:func:`rfm_summary`), in the model's time unit.
    model : fitted transaction model (BG/NBD, Pareto/NBD, MBG/NBD)
    spend_model : fitted GammaGammaModel, optional
        Adds ``expected_spend`` and ``clv``.
    horizon : float, default 12
        Horizon in ``time_unit``.
    time_unit : str, default "M"
        Unit of the horizon (months are 365.25/12 days).
    discount_rate : float, default 0.1
        Per year.
    margin : float, default 1.0
        Profit margin applied to spend.
    id_col : str, default "customer_id"
        Customer id column, kept in the output.

    Returns
    -------
    pyspark.sql.DataFrame
        ``id_col, probability_alive, expected_purchases[, expected_spend, clv]`` (doubles).
    """
    from pyspark.sql import types as T

    from .scoring import _score_columns
    from .value import _check_fitted

    _check_fitted(model, "transaction model")
    if spend_model is not None:
        _check_fitted(spend_model, "spend model")
    needed, names = _score_columns(spend_model)
    missing = [c for c in [id_col, *needed] if c not in summary.columns]
    if missing:
        raise DataValidationError(
            f"the summary lacks column(s) {missing!r}; pass the output of custvalue.spark.rfm_summary"
        )
    id_type = summary.schema[id_col].dataType
    schema = T.StructType(
        [T.StructField(id_col, id_type)] + [T.StructField(n, T.DoubleType()) for n in names]
    )
    settings = {
        "horizon": float(horizon),
        "time_unit": time_unit,
        "discount_rate": float(discount_rate),
        "margin": float(margin),
    }
    unit = getattr(model, "time_unit_", None)

    def run(chunks: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        from custvalue.scoring import _score_chunk

        for part in chunks:
            out = _score_chunk(part, id_col, model, spend_model, unit, settings)
            yield out.reset_index()[[id_col, *names]]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pyspark 4.x warns about pandas 3 on every call
        return summary.select(id_col, *needed).mapInPandas(run, schema)

