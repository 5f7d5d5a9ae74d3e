"""Out-of-core pipeline on one machine: summaries to Parquet, fits on compressed statistics,
customers scored chunk by chunk into Parquet.

For customer bases whose per-customer table does not fit comfortably in memory (tens of millions
of customers), each step streams:

1. :func:`summary_to_parquet` -- the RFM summary of :func:`custvalue.summary.rfm_summary`, run by
   DuckDB and written straight to Parquet (``COPY ... TO``); DuckDB spills its hash tables to
   disk under ``memory_limit``, and no pandas frame of all customers is built.
2. :func:`sufficient_statistics` -- ``GROUP BY frequency, recency, T`` (or ``frequency,
   monetary_value`` for Gamma-Gamma) in DuckDB: the BG/NBD family's likelihood depends on a
   customer only through ``(x, t_x, T)`` (Fader, Hardie & Lee 2005, eq. 6), so
   ``model.fit(stats)`` with the ``weight`` column is the fit on every customer, on a few hundred
   thousand rows at most.
3. :func:`score_to_parquet` -- P(alive), expected purchases and CLV per customer, computed on
   chunks of ``chunk_rows`` customers read from the summary Parquet (or a DuckDB relation) and
   appended to a Parquet file; at most one chunk is in memory at a time. The output appears
   atomically (written beside the target and renamed), so a failed run never replaces a previous
   good file.

:func:`score_frame` is the per-chunk computation, shared with the Spark engine
(:func:`custvalue.spark.score`); a customer's scores depend only on its own row, so chunking
changes a result by floating-point rounding at most (relative 1e-15, tested).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from ._time import convert_duration
from .errors import DataValidationError, ParameterError

__all__ = [
    "ScoreResult",
    "score_frame",
    "score_to_parquet",
    "sufficient_statistics",
    "summary_to_parquet",
]


# --------------------------------------------------------------------------------------------
# Per-chunk scoring
# --------------------------------------------------------------------------------------------


def score_frame(
    data: pd.DataFrame,
    model: Any,
    spend_model: Any | None = None,
    *,
    horizon: float = 12.0,
    time_unit: str = "M",
    discount_rate: float = 0.1,
    margin: float = 1.0,
) -> pd.DataFrame:
    """P(alive), expected purchases and (with a spend model) CLV for a frame of customers.

    Parameters
    ----------
    data : pandas.DataFrame
        Customer summary indexed by customer id with ``frequency``, ``recency``, ``T`` in the
        model's time unit (and ``monetary_value`` with a spend model).
    model : fitted transaction model
        BG/NBD, MBG/NBD or Pareto/NBD: ``probability_alive`` (Fader, Hardie & Lee 2005, eq. 11
        for BG/NBD) and ``expected_purchases`` (eq. 10).
    spend_model : fitted GammaGammaModel, optional
        Adds ``expected_spend`` (Fader & Hardie 2013, eq. 5) and ``clv`` from
        :func:`custvalue.value.customer_lifetime_value` (discounted, exact calendar months).
    horizon : float, default 12
        Horizon in ``time_unit``.
    time_unit : str, default "M"
        Unit of ``horizon``.
    discount_rate : float, default 0.1
        Per year.
    margin : float, default 1.0
        Profit margin applied to spend.

    Returns
    -------
    pandas.DataFrame
        Indexed like ``data``: ``probability_alive``, ``expected_purchases`` (undiscounted,
        over the horizon) and, with a spend model, ``expected_spend`` and ``clv``.
    """
    from .value import _check_fitted, _model_unit, customer_lifetime_value

    _check_fitted(model, "transaction model")
    out = pd.DataFrame(index=data.index)
    if len(data) == 0:
        for col in _score_columns(spend_model)[1]:
            out[col] = np.empty(0)
        return out
    out["probability_alive"] = model.probability_alive(data).to_numpy()
    if spend_model is not None:
        clv = customer_lifetime_value(
            model,
            spend_model,
            data,
            horizon=horizon,
            time_unit=time_unit,
            discount_rate=discount_rate,
            margin=margin,
        )
        out["expected_purchases"] = clv["expected_purchases"].to_numpy()
        out["expected_spend"] = clv["expected_spend"].to_numpy()
        out["clv"] = clv["clv"].to_numpy()
    else:
        t = convert_duration(float(horizon), time_unit, _model_unit(model))
        out["expected_purchases"] = model.expected_purchases(data, t).to_numpy()
    return out


def _score_columns(spend_model: Any | None) -> tuple[list[str], list[str]]:
    """The summary columns scoring reads and the score columns it writes.

    ``(frequency, recency, T)`` feed the transaction model (Fader, Hardie & Lee 2005, eq. 10
    and 11); with a spend model ``monetary_value`` feeds the Gamma-Gamma expected spend (Fader &
    Hardie 2013, eq. 5) and ``expected_spend`` and ``clv`` are added.
    """
    if spend_model is None:
        return ["frequency", "recency", "T"], ["probability_alive", "expected_purchases"]
    return (
        ["frequency", "recency", "T", "monetary_value"],
        ["probability_alive", "expected_purchases", "expected_spend", "clv"],
    )


def _score_chunk(
    part: pd.DataFrame,
    id_col: str,
    model: Any,
    spend_model: Any | None,
    unit: str | None,
    settings: dict[str, Any],
) -> pd.DataFrame:
    """:func:`score_frame` of one chunk of summary rows (``id_col`` a column, not the index).

    ``unit`` (the model's time unit) is set as the chunk's ``attrs["freq"]``, which a chunk
    read from Parquet or Arrow has lost; ``settings`` are score_frame's keyword arguments.
    """
    data = part.set_index(id_col)
    if unit is not None:
        data.attrs["freq"] = unit
    return score_frame(data, model, spend_model, **settings)


# --------------------------------------------------------------------------------------------
# Sources of customer summaries
# --------------------------------------------------------------------------------------------


def _parquet_paths(source: Any) -> list[str] | None:
    if isinstance(source, (str, os.PathLike)):
        return [os.fspath(source)]
    if isinstance(source, Sequence) and source and all(
        isinstance(p, (str, os.PathLike)) for p in source
    ):
        return [os.fspath(p) for p in source]
    return None


def _summary_batches(
    source: Any, columns: list[str], chunk_rows: int
) -> tuple[pa.Schema, Iterator[pa.RecordBatch], str]:
    """Record batches of the summary columns, ``chunk_rows`` rows at most, without reading all."""
    paths = _parquet_paths(source)
    if paths is not None:
        for p in paths:
            if not os.path.exists(p):
                raise DataValidationError(
                    f"customer summary {p!r} does not exist; write one with summary_to_parquet()"
                )
        try:
            dataset = pads.dataset(paths, format="parquet", partitioning="hive")
        except (pa.ArrowInvalid, OSError) as exc:
            raise DataValidationError(f"cannot read the summary {paths!r} as Parquet: {exc}") from None
        missing = [c for c in columns if c not in dataset.schema.names]
        if missing:
            raise DataValidationError(
                f"the summary {paths!r} lacks column(s) {missing!r}; found "
                f"{dataset.schema.names!r}. Write it with summary_to_parquet()"
            )
        scanner = dataset.scanner(columns=columns, batch_size=chunk_rows, use_threads=False)
        return scanner.projected_schema, iter(scanner.to_batches()), f"Parquet {paths!r}"
    if isinstance(source, duckdb.DuckDBPyRelation):
        missing = [c for c in columns if c not in source.columns]
        if missing:
            raise DataValidationError(
                f"the summary relation lacks column(s) {missing!r}; found {source.columns!r}"
            )
        reader = source.select(*[f'"{c}"' for c in columns]).to_arrow_reader(chunk_rows)
        return reader.schema, iter(reader), "DuckDB relation"
    if isinstance(source, pd.DataFrame):
        frame = source.reset_index() if source.index.name in columns else source
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise DataValidationError(f"the summary lacks column(s) {missing!r}")
        table = pa.Table.from_pandas(frame[columns], preserve_index=False)
        return table.schema, iter(table.to_batches(max_chunksize=chunk_rows)), "DataFrame"
    raise DataValidationError(
        f"unsupported summary source of type {type(source).__name__}: pass a Parquet path (from "
        "summary_to_parquet), a DuckDB relation or a DataFrame"
    )


@dataclasses.dataclass(frozen=True)
class ScoreResult:
    """What :func:`score_to_parquet` wrote."""

    path: str
    n_customers: int
    n_chunks: int
    totals: dict[str, float]  #: sums of expected_purchases (and clv) over all customers

    def __str__(self) -> str:
        tot = ", ".join(f"{k} {v:,.2f}" for k, v in self.totals.items())
        return f"{self.n_customers:,} customers scored in {self.n_chunks} chunks -> {self.path} ({tot})"


def score_to_parquet(
    summary: Any,
    path: str | os.PathLike,
    model: Any,
    spend_model: Any | None = None,
    *,
    horizon: float = 12.0,
    time_unit: str = "M",
    discount_rate: float = 0.1,
    margin: float = 1.0,
    chunk_rows: int = 500_000,
    id_col: str = "customer_id",
) -> ScoreResult:
    """Score every customer of a summary chunk by chunk and write the scores to Parquet.

    Parameters
    ----------
    summary : str, list of str, duckdb.DuckDBPyRelation or pandas.DataFrame
        Customer summary: Parquet file(s) or directory (e.g. from :func:`summary_to_parquet`),
        or a DuckDB relation; read ``chunk_rows`` customers at a time.
    path : str or PathLike
        Output Parquet file; replaced atomically when the run succeeds.
    model, spend_model, horizon, time_unit, discount_rate, margin
        As for :func:`score_frame`.
    chunk_rows : int, default 500,000
        Customers per chunk (memory is about 200 bytes x chunk_rows).
    id_col : str, default "customer_id"
        Customer id column.

    Returns
    -------
    ScoreResult
        Path, number of customers and chunks, totals of ``expected_purchases`` and ``clv``.

    Raises
    ------
    DataValidationError
        Missing summary file or columns.
    ParameterError
        ``chunk_rows`` not a positive integer.
    """
    if not isinstance(chunk_rows, (int, np.integer)) or chunk_rows < 1:
        raise ParameterError(f"chunk_rows={chunk_rows!r} must be a positive integer")
    needed = _score_columns(spend_model)[0]
    _, batches, what = _summary_batches(summary, [id_col, *needed], int(chunk_rows))
    unit = getattr(model, "time_unit_", None)
    settings = {
        "horizon": horizon,
        "time_unit": time_unit,
        "discount_rate": discount_rate,
        "margin": margin,
    }
    target = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(target)) or "."
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".custvalue_scores_", suffix=".parquet", dir=directory)
    os.close(fd)
    writer: pq.ParquetWriter | None = None
    n = chunks = 0
    totals: dict[str, float] = {}
    try:
        for batch in batches:
            if batch.num_rows == 0:
                continue
            scores = _score_chunk(batch.to_pandas(), id_col, model, spend_model, unit, settings)
            for col in ("expected_purchases", "clv"):
                if col in scores:
                    totals[col] = totals.get(col, 0.0) + float(scores[col].sum())
            table = pa.Table.from_pandas(scores.reset_index(), preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(tmp, table.schema, compression="zstd")
            writer.write_table(table)
            n += batch.num_rows
            chunks += 1
        if writer is None:
            raise DataValidationError(f"the customer summary ({what}) has no rows to score")
        writer.close()
        writer = None
        os.replace(tmp, target)
    except BaseException:
        if writer is not None:
            with contextlib.suppress(Exception):
                writer.close()
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return ScoreResult(target, n, chunks, totals)


# --------------------------------------------------------------------------------------------
# DuckDB steps
# --------------------------------------------------------------------------------------------


def _duck_source(source: Any, memory_limit: str | None, threads: int | None) -> tuple[Any, str]:
    """A DuckDB connection + table expression over a summary source."""
    from . import _sources

    paths = _parquet_paths(source)
    if isinstance(source, duckdb.DuckDBPyRelation):
        return None, "rel"
    con = _sources.connect(memory_limit, threads, stream=True)
    if paths is not None:
        expanded = []
        for p in paths:
            if os.path.isdir(p):
                p = os.path.join(p, "**", "*.parquet")
            expanded.append(p)
        listing = _sources.lit(expanded)
        return con, f"read_parquet({listing}, union_by_name = true)"
    if isinstance(source, pd.DataFrame):
        con.register("__cv_summary", source.reset_index() if source.index.name else source)
        return con, "__cv_summary"
    con.close()
    raise DataValidationError(
        f"unsupported summary source of type {type(source).__name__}: pass a Parquet path, a "
        "DuckDB relation or a DataFrame"
    )


def sufficient_statistics(
    summary: Any,
    *,
    spend: bool = False,
    memory_limit: str | None = None,
    threads: int | None = None,
) -> pd.DataFrame:
    """Distinct summary rows with counts, computed by DuckDB, for fitting with weights.

    Parameters
    ----------
    summary : str, list of str, duckdb.DuckDBPyRelation or pandas.DataFrame
        Customer summary (Parquet from :func:`summary_to_parquet`, a relation or a frame).
    spend : bool, default False
        ``False``: ``GROUP BY frequency, recency, T`` (BG/NBD, Pareto/NBD, MBG/NBD: Fader,
        Hardie & Lee 2005, eq. 6 depends on a customer only through these). ``True``: ``GROUP
        BY frequency, monetary_value`` over repeat customers (Gamma-Gamma, Fader & Hardie 2013,
        eq. 3).
    memory_limit, threads
        DuckDB settings, as for :func:`custvalue.summary.rfm_summary`.

    Returns
    -------
    pandas.DataFrame
        Key columns plus ``weight`` (float64), sorted by the keys; ``model.fit(stats)`` uses the
        weights. ``attrs["freq"]`` is copied from the Parquet metadata when present.
    """
    keys = ["frequency", "monetary_value"] if spend else ["frequency", "recency", "T"]
    where = "WHERE frequency > 0" if spend else ""
    key_sql = ", ".join(f'"{k}"' for k in keys)
    sql = (
        f"SELECT {key_sql}, CAST(count(*) AS DOUBLE) AS weight FROM {{src}} {where} "
        f"GROUP BY ALL ORDER BY {key_sql}"
    )
    con, table = _duck_source(summary, memory_limit, threads)
    try:
        if con is None:
            rel = summary
            missing = [k for k in keys if k not in rel.columns]
            if missing:
                raise DataValidationError(f"the summary relation lacks column(s) {missing!r}")
            df = rel.query("__cv_s", sql.format(src="__cv_s")).df()
        else:
            try:
                df = con.sql(sql.format(src=table)).df()
            except duckdb.Error as exc:
                raise DataValidationError(
                    f"cannot compute sufficient statistics of the summary: {exc}"
                ) from None
    finally:
        if con is not None:
            con.close()
    freq = _parquet_freq(summary)
    if freq is not None:
        df.attrs["freq"] = freq
    elif isinstance(summary, pd.DataFrame) and "freq" in summary.attrs:
        df.attrs["freq"] = summary.attrs["freq"]
    return df


_META_KEY = b"custvalue"


def _parquet_freq(source: Any) -> str | None:
    paths = _parquet_paths(source)
    if not paths or not os.path.isfile(paths[0]):
        return None
    with contextlib.suppress(Exception):
        meta = pq.read_schema(paths[0]).metadata or {}
        import json

        return json.loads(meta.get(_META_KEY, b"{}")).get("freq")
    return None


def summary_to_parquet(
    tx: Any,
    path: str | os.PathLike,
    *,
    freq: str = "D",
    observation_end: Any = None,
    customer_col: str = "customer_id",
    date_col: str = "date",
    amount_col: str = "amount",
    order_col: str | None = None,
    attributes: Iterable[str] | None = (),
    memory_limit: str | None = None,
    threads: int | None = None,
) -> dict[str, Any]:
    """Write the RFM summary of a transaction log to Parquet without a pandas frame of it.

    The SQL of :func:`custvalue.summary.rfm_summary` (same definitions, same columns), run by
    DuckDB with ``COPY ... TO``: transactions are streamed from Parquet/CSV files (hive
    partitions included), aggregation spills to disk under ``memory_limit``, and the customer
    rows go straight to the file.

    Parameters
    ----------
    tx : path, glob, list of paths, DataFrame or duckdb.DuckDBPyRelation
        Transactions, as for :func:`custvalue.summary.rfm_summary`.
    path : str or PathLike
        Output Parquet file; replaced atomically when the run succeeds.
    freq, observation_end, customer_col, date_col, amount_col, order_col, attributes
        As for :func:`custvalue.summary.rfm_summary` (``attributes`` defaults to none here).
    memory_limit, threads
        DuckDB settings.

    Returns
    -------
    dict
        ``path``, ``n_customers``, ``n_transactions``, ``freq`` and ``observation_end`` (ISO);
        ``freq`` and ``observation_end`` are also stored in the Parquet file's metadata.
    """
    from . import summary as S

    unit = S._normalize_freq(freq)
    target = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(target)) or "."
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".custvalue_summary_", suffix=".parquet", dir=directory)
    os.close(fd)
    try:
        with S._open_source(tx, memory_limit, threads) as source:
            cols = S._resolve_columns(source, customer_col, date_col, amount_col, order_col, attributes)
            profile = S._profile(source, cols)
            obs_end = S._resolve_observation_end(observation_end, profile)
            op, literal = S._cutoff(obs_end)
            sql = S._customer_sql(
                cols,
                unit,
                f"{cols.ts_expr} {op} {literal}" if obs_end < profile.last else "",
                S._period_index(obs_end, unit),
                one_order_per_period=unit == "D" and profile.dates_only,
            )
            # streamed in batches through Arrow (the source connection is locked: no COPY TO)
            reader = source.con.sql(sql).to_arrow_reader(1_000_000)
            meta = {"freq": unit, "observation_end": obs_end.isoformat()}
            import json

            schema = reader.schema.with_metadata({_META_KEY: json.dumps(meta).encode()})
            n = 0
            with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
                for batch in reader:
                    writer.write_batch(
                        pa.RecordBatch.from_arrays(batch.columns, schema=schema)
                    )
                    n += batch.num_rows
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return {
        "path": target,
        "n_customers": n,
        "n_transactions": profile.n_rows,
        "freq": unit,
        "observation_end": obs_end.isoformat(),
    }
