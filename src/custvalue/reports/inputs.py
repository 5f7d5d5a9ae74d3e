"""A report's data: loading (:func:`load_report_data`), periods, provenance and the pre-flight check.

The runner loads the data once before any kernel starts (:func:`preflight`), so a broken file,
a date outside the data or data the report cannot use is one clear line, not a traceback from
inside a notebook; the notebook loads the same rows again with :func:`load_report_data`.
"""

from __future__ import annotations

import dataclasses
import glob
import hashlib
import html
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, get_args

from .. import _sources
from ..errors import CustvalueError, DataValidationError, ParameterError
from .spec import DATASET_NAMES, Param, is_remote

__all__ = [
    "CANONICAL_COLUMNS",
    "ENGINE_PARAM",
    "DataProvenance",
    "Freq",
    "check_freq",
    "customer_base",
    "load_report_data",
    "preflight",
    "resolve_periods",
]

#: Time units the transaction models can be fitted in (``freq=``).
Freq = Literal["D", "W", "M"]
#: Columns :func:`custvalue.data.load_transactions` standardises; every other column of the
#: transactions is a customer attribute.
CANONICAL_COLUMNS = ("customer_id", "date", "amount", "order_id", "quantity")


@dataclasses.dataclass
class DataProvenance:
    """Where the report's data came from, as shown in the header and ``metrics.json``."""

    source: str
    content_hash: str
    hash_of: str
    n_rows_in: int | None
    n_rows_out: int
    n_customers: int
    first_date: str | None
    last_date: str | None
    quality_ok: bool | None
    quality_html: str
    quality_text: str

    def header_rows(self) -> dict[str, Any]:
        rows_in = "—" if self.n_rows_in is None else f"{self.n_rows_in:,}"
        return {
            "source": self.source,
            "rows": f"{rows_in} read, {self.n_rows_out:,} used",
            "customers": f"{self.n_customers:,}",
            "date range": f"{self.first_date} to {self.last_date}",
            f"content hash ({self.hash_of})": self.content_hash,
            "data quality": {
                True: "all checks passed",
                False: "issues found (see footer)",
                None: "not checked",
            }[self.quality_ok],
        }

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.pop("quality_html")
        return d


def load_report_data(
    data: str,
    *,
    customer_col: str = "customer_id",
    date_col: str = "date",
    amount_col: str = "amount",
    order_col: str | None = None,
    attributes: Sequence[str] = (),
    returns: str = "net",
    observation_end: str | None = None,
    seed: int = 0,
    engine: Literal["duckdb", "spark"] | None = None,
) -> tuple[Any, Any]:
    """Load a report's transactions: a path/glob via ``load_transactions``, or a bundled dataset.

    ``data`` may be ``"cdnow-sample"`` / ``"cdnow-master"`` (Fader & Hardie's CDNOW, shipped with
    lifetimes), ``"simulated"`` (``custvalue.datasets.simulate(2000, seed)``), a CSV/Parquet
    path or glob, a database URL, or a Spark DataFrame. Returns ``(transactions, DataQuality)``
    exactly as :func:`custvalue.data.load_transactions` does, so the runner's pre-flight check
    and the notebook see the same rows.

    ``engine`` (the reports' ``engine`` parameter: ``None``/``"auto"``, ``"duckdb"`` or
    ``"spark"``) says where the report's summaries are computed. With ``"spark"`` a Parquet or
    CSV path is read by Spark (so any path the cluster reads works: ``s3a://``, ``hdfs://``...;
    CSV columns then have the types Spark infers, not the loader's every-value CSV rules), and
    the transactions carry ``attrs["engine"] = "spark"``, so that every
    :mod:`custvalue.summary` function the analysis calls on them runs in Spark
    (:mod:`custvalue.spark`, on the active session or a local one).
    """
    from .. import data as _data

    if engine not in (None, "auto", "duckdb", "spark"):
        raise ParameterError(f"engine must be auto, duckdb or spark; got {engine!r}")
    kwargs: dict[str, Any] = {"returns": returns, "observation_end": observation_end}
    if isinstance(data, str) and data in DATASET_NAMES:
        bundled = _sources.bundled_dataset(data)
        frame = bundled.loader(seed)
        attrs = [c for c in (attributes or bundled.attributes) if c in frame.columns]
        tx, quality = _data.load_transactions(
            frame, order_col=bundled.order_col, attributes=tuple(attrs), **kwargs
        )
    else:
        source: Any = data
        if engine == "spark" and isinstance(data, str) and not _database_url(data):
            from .. import spark as _spark

            source, _ = _spark._as_spark(data, None)
        tx, quality = _data.load_transactions(
            source,
            customer_col=customer_col,
            date_col=date_col,
            amount_col=amount_col,
            order_col=order_col,
            attributes=tuple(attributes),
            **kwargs,
        )
    if engine not in (None, "auto"):
        tx.attrs["engine"] = engine
    return tx, quality


#: Where a report's summaries are computed, shared by every report with a ``data`` parameter
#: (:class:`~custvalue.reports.spec.ReportSpec` adds it after ``data``) and passed to
#: :func:`load_report_data`, which reads a path with Spark for ``spark`` and tags the
#: transactions so that every summary of the analysis runs there.
ENGINE_PARAM = Param(
    "engine",
    "choice",
    None,
    "where summaries are computed: duckdb (this machine) or spark (the active or a local Spark "
    "session; a path is read by Spark); auto: duckdb",
    nullable=True,
    feeds=(load_report_data, "engine"),
)


def _database_url(source: str) -> bool:
    from .._database import is_database_url

    return is_database_url(source)


def check_freq(freq: Any) -> None:
    """Refuse a ``freq`` the models cannot be fitted in (one of :data:`Freq`)."""
    if freq not in get_args(Freq):
        raise ParameterError(f"freq must be one of {', '.join(get_args(Freq))}; got {freq!r}")


def customer_base(
    tx: Any, freq: Freq, calibration_end: Any = None, observation_end: Any = None
) -> tuple[Any, Any, list[str], Any]:
    """The periods and the customer summary a report's analysis starts from.

    Returns
    -------
    (calibration end, observation end, attribute columns, customers)
        The ends from :func:`resolve_periods`; the attributes are the columns of ``tx`` beyond
        :data:`CANONICAL_COLUMNS`; ``customers`` is
        :func:`custvalue.summary.rfm_summary` at the observation end, carrying them.
    """
    from .. import summary as cvsummary

    cal_end, obs_end = resolve_periods(tx, calibration_end, observation_end)
    attributes = [c for c in tx.columns if c not in CANONICAL_COLUMNS]
    customers = cvsummary.rfm_summary(
        tx, freq=freq, observation_end=obs_end, attributes=attributes or None
    )
    return cal_end, obs_end, attributes, customers


def resolve_periods(
    tx: Any, calibration_end: Any = None, observation_end: Any = None
) -> tuple[Any, Any]:
    """The calibration and observation ends a report uses, filling in the automatic defaults.

    ``observation_end`` defaults to the last transaction date; ``calibration_end`` to the day
    halfway between the first transaction and ``observation_end`` (Fader, Hardie & Lee 2005
    split CDNOW's 78 weeks into 39 + 39 the same way).

    Returns
    -------
    (pandas.Timestamp, pandas.Timestamp)

    Raises
    ------
    ParameterError
        If the calibration end is not strictly between the first transaction and the
        observation end.
    """
    import pandas as pd

    first = pd.Timestamp(tx["date"].min()).normalize()
    obs = (
        pd.Timestamp(observation_end)
        if observation_end is not None
        else pd.Timestamp(tx["date"].max()).normalize()
    )
    cal = (
        pd.Timestamp(calibration_end)
        if calibration_end is not None
        else (first + (obs - first) / 2).normalize()
    )
    if not first < cal < obs:
        raise ParameterError(
            f"calibration end {cal.date()} must lie between the first transaction "
            f"({first.date()}) and the observation end ({obs.date()})"
        )
    return cal, obs


def _hash_source(source: str, frame: Any) -> tuple[str, str]:
    """sha256 of the source file bytes (several files: of their names and hashes, sorted)."""
    files: list[Path] = []
    if source not in DATASET_NAMES and not is_remote(source):
        path = Path(source).expanduser()
        if any(ch in source for ch in "*?["):
            files = sorted(Path(p) for p in glob.glob(os.path.expanduser(source)))
        elif path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file())
        elif path.is_file():
            files = [path]
    if files:
        outer = hashlib.sha256()
        for f in files:
            inner = hashlib.sha256()
            with open(f, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    inner.update(chunk)
            if len(files) == 1:
                return "sha256:" + inner.hexdigest(), "file bytes"
            outer.update(f.name.encode() + b"\0" + inner.digest())
        return "sha256:" + outer.hexdigest(), f"{len(files)} files"
    import pandas as pd

    digest = hashlib.sha256(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return "sha256:" + digest.hexdigest(), "loaded rows"


def _quality_parts(quality: Any) -> tuple[bool | None, str, str, int | None]:
    ok = getattr(quality, "ok", None)
    n_in = getattr(quality, "n_rows_in", None)
    text = str(quality) if quality is not None else "no data-quality report"
    table = None
    for attr in ("to_frame", "checks"):
        obj = getattr(quality, attr, None)
        try:
            table = obj() if callable(obj) else obj
        except Exception:  # a broken report must not break the run header
            table = None
        if table is not None:
            break
    if table is not None and hasattr(table, "to_html"):
        quality_html = table.to_html(index=False, escape=True, border=0)
    else:
        quality_html = f"<pre>{html.escape(text)}</pre>"
    return (None if ok is None else bool(ok)), quality_html, text, n_in


def preflight(values: Mapping[str, Any]) -> tuple[DataProvenance | None, Any]:
    """Load the report's data as its notebook will, before any kernel starts.

    Returns
    -------
    (DataProvenance, pandas.DataFrame) or (None, None)
        Provenance for the header and ``metrics.json``, and the transactions (for the report's
        own ``requirements`` check); ``(None, None)`` for a report without a ``data`` parameter.

    Raises
    ------
    DataValidationError
        The data cannot be read or has no usable transactions.
    ParameterError
        A calibration or observation end outside the data.
    """
    if "data" not in values or values["data"] is None:
        return None, None
    source = values["data"]
    load_kwargs = {
        k: values[k]
        for k in (
            "customer_col",
            "date_col",
            "amount_col",
            "order_col",
            "attributes",
            "returns",
            "observation_end",
            "seed",
            "engine",
        )
        if k in values and values[k] is not None
    }
    try:
        frame, quality = load_report_data(source, **load_kwargs)
    except CustvalueError:
        raise
    except Exception as exc:  # unreadable/malformed file; duckdb or pyarrow parser errors
        msg = " ".join(str(exc).split()) or type(exc).__name__
        raise DataValidationError(
            f"cannot read data {source!r}: {type(exc).__name__}: {msg[:300]}"
        ) from exc
    if len(frame) == 0:
        raise DataValidationError(f"data {source!r} has no usable transactions after cleaning")
    ok, quality_html, quality_text, n_in = _quality_parts(quality)
    content_hash, hash_of = _hash_source(source, frame)
    dates = frame["date"]
    prov = DataProvenance(
        source=_display_source(source),
        content_hash=content_hash,
        hash_of=hash_of,
        n_rows_in=None if n_in is None else int(n_in),
        n_rows_out=len(frame),
        n_customers=int(frame["customer_id"].nunique()),
        first_date=str(dates.min().date()),
        last_date=str(dates.max().date()),
        quality_ok=ok,
        quality_html=quality_html,
        quality_text=quality_text,
    )
    _check_dates_against_data(values, prov)
    return prov, frame


def _display_source(source: str) -> str:
    """Local paths as absolute paths (a report is read far from where it was run)."""
    if source in DATASET_NAMES or is_remote(source):
        from .._database import redact

        return redact(source)  # postgresql://user:password@... never reaches a report
    return str(Path(source).expanduser().absolute())


def _check_dates_against_data(values: Mapping[str, Any], prov: DataProvenance) -> None:
    first, last = prov.first_date, prov.last_date
    cal, obs = values.get("calibration_end"), values.get("observation_end")
    if obs is not None and first is not None and obs < first:
        raise ParameterError(
            f"parameter 'observation_end' {obs} is before the first transaction ({first})"
        )
    end = obs or last
    if cal is not None and first is not None and cal <= first:
        raise ParameterError(
            f"parameter 'calibration_end' {cal} is on or before the first transaction ({first}); "
            f"the data run from {first} to {last}"
        )
    if cal is not None and end is not None and cal >= end:
        raise ParameterError(
            f"parameter 'calibration_end' {cal} is not before the end of observation ({end}); "
            f"the data run from {first} to {last}"
        )

