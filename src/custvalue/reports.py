"""Parameterised report runs: validated parameters, papermill execution, atomic output, HTML.

A report is a notebook in ``notebooks/`` with a cell tagged ``parameters`` plus a declaration
here (:class:`ReportSpec`): each parameter's name, type, default and help text, declared once and
used for validation, ``--help-params`` and the run header. A run

1. validates every parameter before any kernel starts (unknown names, wrong types, impossible
   values, a data path that does not exist; then a pre-flight load of the data so a broken file
   is one clear line, not a traceback from inside a notebook);
2. executes the notebook with papermill on an explicit kernel (``custvalue`` when registered,
   else ``python3``) with a start timeout and a per-cell execution timeout, writing everything
   to a hidden temporary directory next to the final one;
3. exports a self-contained HTML report (no code, figures embedded, table of contents, header
   with provenance, footer with the data-quality summary) and ``metrics.json``;
4. moves the directory into place as ``<out>/<report>/<run-date>/`` and only then replaces
   ``<out>/<report>/latest.html``.

A failed run writes the executed notebook as HTML *with* its code to ``<out>/<report>/failed/``
and raises :class:`ReportFailedError` whose message names the failing cell and error in one line.
An interrupted run (Ctrl-C, SIGTERM, SIGKILL) leaves at most a hidden ``.tmp-*`` directory that
the next run removes; the last good report and ``latest.html`` are never touched.

>>> from custvalue import reports
>>> result = reports.run("value", data="orders.parquet", params={"horizon_months": 6})
>>> result.html
PosixPath('reports/value/2026-11-23/report.html')
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import difflib
import glob
import hashlib
import html
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import click

from . import _sources
from .errors import CustvalueError, DataValidationError, ParameterError

__all__ = [
    "DATASET_NAMES",
    "SCORE_COLUMNS",
    "DataProvenance",
    "JobResult",
    "Param",
    "ReportFailedError",
    "ReportSpec",
    "RunResult",
    "demo",
    "export_scores",
    "format_params_help",
    "get_report",
    "list_reports",
    "load_report_data",
    "register_report",
    "resolve_periods",
    "run",
    "run_jobs",
    "show_figure",
    "validate_params",
    "write_metrics",
]

#: Built-in data sources a report's ``data`` parameter accepts besides a path (one list, shared
#: with the command line: :mod:`custvalue._sources`).
DATASET_NAMES = _sources.DATASET_NAMES

#: Column order of the per-customer scores export; new columns are only ever appended.
SCORE_COLUMNS: tuple[str, ...] = (
    "customer_id",
    "first_purchase",
    "last_purchase",
    "cohort",
    "n_orders",
    "total_spend",
    "frequency",
    "recency",
    "T",
    "monetary_value",
    "p_alive",
    "expected_purchases",
    "expected_spend",
    "clv",
    "clv_lower",
    "clv_upper",
    "clv_decile",
    "heuristic_ltv",
)

_PACKAGE_DIR = Path(__file__).resolve().parent
_REPO_DIR = _PACKAGE_DIR.parent.parent


class ReportFailedError(CustvalueError, RuntimeError):
    """The report notebook raised, timed out or its kernel died; the message is one line."""

    def __init__(self, message: str, *, failed_html: Path | None = None) -> None:
        super().__init__(message)
        self.failed_html = failed_html


# --------------------------------------------------------------------------------------------
# parameters
# --------------------------------------------------------------------------------------------

_TYPES = ("str", "int", "float", "bool", "date", "data", "list", "choice")
_TRUE = {"1", "true", "yes", "y", "on"}
_FALSE = {"0", "false", "no", "n", "off"}
_NONE = {"", "none", "null", "auto"}


@dataclasses.dataclass(frozen=True)
class Param:
    """One report parameter, declared once.

    Parameters
    ----------
    name : str
        Python identifier used in the notebook's ``parameters`` cell.
    type : str
        ``str``, ``int``, ``float``, ``bool``, ``date`` (ISO date, stored as ``"YYYY-MM-DD"``),
        ``data`` (a path, glob or one of :data:`DATASET_NAMES`), ``list`` (of strings; a
        comma-separated string on the command line) or ``choice`` (one of ``choices``).
    default : Any
        Value used when the caller does not give one. ``None`` means "automatic" where
        ``nullable`` is true.
    help : str
        One sentence for ``--help-params`` and the report header.
    choices : tuple of str, optional
        Allowed values (``choice``) or allowed items (``list``).
    minimum, maximum : float, optional
        Inclusive bounds for ``int``/``float``; ``exclusive_minimum`` makes the lower one strict.
    nullable : bool
        Whether ``None`` (or ``"auto"``/``"none"`` on the command line) is allowed.
    """

    name: str
    type: str
    default: Any
    help: str
    choices: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    nullable: bool = False

    def __post_init__(self) -> None:
        if self.type not in _TYPES:
            raise ValueError(f"Param {self.name}: unknown type {self.type!r}; use one of {_TYPES}")

    @property
    def type_label(self) -> str:
        label = self.type
        if self.type == "choice" and self.choices:
            label = "{" + "|".join(self.choices) + "}"
        if self.nullable:
            label += " or auto"
        return label

    def parse(self, value: Any) -> Any:
        """Convert ``value`` (a Python value or a command-line string) or raise ParameterError."""
        where = f"parameter {self.name!r}"
        if value is None or (
            isinstance(value, str)
            and value.strip().lower() in _NONE
            and (self.nullable or self.type not in ("str", "list"))
        ):
            if self.nullable:
                return None
            raise ParameterError(f"{where} needs a value ({self.type_label}); {self.help}")
        t = self.type
        if t in ("str", "data"):
            if not isinstance(value, str | os.PathLike):
                raise ParameterError(
                    f"{where} must be a string, got {type(value).__name__} {value!r}"
                )
            return os.fspath(value)
        if t == "choice":
            text = str(value).strip()
            if self.choices and text not in self.choices:
                raise ParameterError(
                    f"{where} must be one of {', '.join(self.choices)}; got {text!r}"
                )
            return text
        if t == "bool":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
                return value.strip().lower() in _TRUE
            raise ParameterError(f"{where} must be true or false, got {value!r}")
        if t in ("int", "float"):
            return self._parse_number(value, where)
        if t == "date":
            return self._parse_date(value, where)
        # list
        if isinstance(value, str):
            items = [v.strip() for v in value.split(",") if v.strip()]
        elif isinstance(value, list | tuple):
            items = [str(v).strip() for v in value]
        else:
            raise ParameterError(f"{where} must be a comma-separated list, got {value!r}")
        if self.choices:
            bad = [v for v in items if v not in self.choices]
            if bad:
                raise ParameterError(
                    f"{where}: unknown item(s) {', '.join(map(repr, bad))}; "
                    f"allowed: {', '.join(self.choices)}"
                )
        return items

    def _parse_number(self, value: Any, where: str) -> int | float:
        if isinstance(value, bool):
            raise ParameterError(f"{where} must be a number, got {value!r}")
        try:
            if self.type == "int":
                if isinstance(value, float) and not value.is_integer():
                    raise ValueError
                number: int | float = (
                    int(str(value).strip()) if isinstance(value, str) else int(value)
                )
            else:
                number = float(value)
        except (TypeError, ValueError):
            kind = "a whole number" if self.type == "int" else "a number"
            raise ParameterError(f"{where} must be {kind}, got {value!r}") from None
        if isinstance(number, float) and not math.isfinite(number):
            raise ParameterError(f"{where} must be finite, got {value!r}")
        low, high = self.minimum, self.maximum
        if low is not None and (number < low or (self.exclusive_minimum and number <= low)):
            op = ">" if self.exclusive_minimum else ">="
            raise ParameterError(f"{where} must be {op} {low:g}, got {number:g}")
        if high is not None and number > high:
            raise ParameterError(f"{where} must be <= {high:g}, got {number:g}")
        return number

    @staticmethod
    def _parse_date(value: Any, where: str) -> str:
        if isinstance(value, _dt.datetime):
            return value.date().isoformat()
        if isinstance(value, _dt.date):
            return value.isoformat()
        text = str(value).strip()
        try:
            return _dt.date.fromisoformat(text[:10] if len(text) > 10 else text).isoformat()
        except ValueError:
            raise ParameterError(f"{where} must be a date like 2024-06-30, got {value!r}") from None


@dataclasses.dataclass(frozen=True)
class ReportSpec:
    """A report: its notebook, its parameters and what a successful run must produce.

    Parameters
    ----------
    name : str
        Name used on the command line (``custvalue report NAME``) and in output paths.
    title : str
        Human title for the HTML header.
    description : str
        One line for ``custvalue report --list``.
    notebook : Path
        The notebook to execute (must have a cell tagged ``parameters``).
    params : tuple of Param
        Declared parameters. The runner always injects ``output_dir`` as well.
    check : callable, optional
        ``check(values)`` raises :class:`ParameterError` for impossible combinations.
    outputs : tuple of str
        Files the notebook must write into ``output_dir``; a run without them fails.
    """

    name: str
    title: str
    description: str
    notebook: Path
    params: tuple[Param, ...]
    check: Callable[[dict[str, Any]], None] | None = None
    outputs: tuple[str, ...] = ()

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)


_REGISTRY: dict[str, ReportSpec] = {}


def register_report(spec: ReportSpec, *, replace: bool = False) -> ReportSpec:
    """Add a report to the registry (``custvalue report --list`` shows it)."""
    if spec.name in _REGISTRY and not replace:
        raise ParameterError(f"a report named {spec.name!r} is already registered")
    names = [p.name for p in spec.params]
    if len(set(names)) != len(names) or "output_dir" in names:
        raise ParameterError(f"report {spec.name!r}: duplicate or reserved parameter names {names}")
    _REGISTRY[spec.name] = spec
    return spec


def list_reports() -> list[ReportSpec]:
    """The registered reports, by name."""
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


def get_report(name: str | ReportSpec) -> ReportSpec:
    """Look a report up by name (a :class:`ReportSpec` is returned as is)."""
    if isinstance(name, ReportSpec):
        return name
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(str(name), list(_REGISTRY), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ParameterError(
            f"unknown report {name!r}{hint} Available: {', '.join(sorted(_REGISTRY)) or 'none'}"
        ) from None


def validate_params(
    report: str | ReportSpec, params: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Check and convert parameters; return every declared parameter with its value.

    Raises
    ------
    ParameterError
        Unknown name (with the closest declared one), wrong type, out-of-range value, missing
        data path, or an impossible combination (e.g. calibration end after observation end).
    """
    spec = get_report(report)
    given = dict(params or {})
    unknown = [k for k in given if k not in spec.param_names]
    if unknown:
        name = unknown[0]
        close = difflib.get_close_matches(name, spec.param_names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ParameterError(
            f"unknown parameter {name!r} for report {spec.name!r}{hint} "
            f"(see `custvalue report {spec.name} --help-params`)"
        )
    values: dict[str, Any] = {}
    for p in spec.params:
        raw = given.get(p.name, p.default)
        values[p.name] = p.parse(raw) if (p.name in given or raw is not None) else None
        if values[p.name] is None and not p.nullable:
            raise ParameterError(f"parameter {p.name!r} is required: {p.help}")
        if p.type == "data" and values[p.name] is not None:
            _check_data_path(values[p.name], p.name)
    if spec.check is not None:
        spec.check(values)
    return values


def _is_remote(path: str) -> bool:
    return bool(re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", path))


def _check_data_path(source: str, name: str) -> None:
    if source in DATASET_NAMES or _is_remote(source):
        return
    if any(ch in source for ch in "*?["):
        if not glob.glob(os.path.expanduser(source)):
            raise ParameterError(f"parameter {name!r}: no file matches the pattern {source!r}")
        return
    if not Path(source).expanduser().exists():
        raise ParameterError(
            f"parameter {name!r}: data file {source!r} does not exist (cwd {os.getcwd()}); "
            f"give a path to a CSV/Parquet file or one of {', '.join(DATASET_NAMES)}"
        )


def format_params_help(report: str | ReportSpec) -> str:
    """Plain-text table of a report's parameters: name, type, default and help."""
    spec = get_report(report)
    lines = [f"Parameters of the {spec.name!r} report ({spec.title}); set with -p name=value:", ""]
    width = max(len(p.name) for p in spec.params)
    for p in spec.params:
        default = (
            "auto"
            if p.default is None
            else (",".join(p.default) if isinstance(p.default, list | tuple) else str(p.default))
        )
        lines.append(f"  {p.name:<{width}}  {p.type_label}  (default: {default})")
        lines.append(f"  {'':<{width}}  {p.help}")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# data loading shared by the runner's pre-flight and the notebooks
# --------------------------------------------------------------------------------------------


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
) -> tuple[Any, Any]:
    """Load a report's transactions: a path/glob via ``load_transactions``, or a bundled dataset.

    ``data`` may be ``"cdnow-sample"`` / ``"cdnow-master"`` (Fader & Hardie's CDNOW, shipped with
    lifetimes), ``"simulated"`` (``custvalue.datasets.simulate(2000, seed)``), or a CSV/Parquet
    path or glob. Returns ``(transactions, DataQuality)`` exactly as
    :func:`custvalue.data.load_transactions` does, so the runner's pre-flight check and the
    notebook see the same rows.
    """
    from . import data as _data

    kwargs: dict[str, Any] = {"returns": returns, "observation_end": observation_end}
    if data in DATASET_NAMES:
        bundled = _sources.bundled_dataset(data)
        frame = bundled.loader(seed)
        attrs = [c for c in (attributes or bundled.attributes) if c in frame.columns]
        return _data.load_transactions(
            frame, order_col=bundled.order_col, attributes=tuple(attrs), **kwargs
        )
    return _data.load_transactions(
        data,
        customer_col=customer_col,
        date_col=date_col,
        amount_col=amount_col,
        order_col=order_col,
        attributes=tuple(attributes),
        **kwargs,
    )


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
    if source not in DATASET_NAMES and not _is_remote(source):
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


def _preflight(values: Mapping[str, Any]) -> DataProvenance | None:
    if "data" not in values or values["data"] is None:
        return None
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
    return prov


def _display_source(source: str) -> str:
    """Local paths as absolute paths (a report is read far from where it was run)."""
    if source in DATASET_NAMES or _is_remote(source):
        return source
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


# --------------------------------------------------------------------------------------------
# outputs written by notebooks
# --------------------------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        with contextlib.suppress(Exception):
            value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, _dt.datetime | _dt.date):
        return value.isoformat()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_metrics(
    output_dir: str | os.PathLike[str] | None, metrics: Mapping[str, Any]
) -> Path | None:
    """Write the headline numbers to ``output_dir/metrics.json`` (no-op when ``output_dir`` is None).

    Numpy scalars become Python numbers, timestamps ISO strings, NaN/inf ``null``.
    """
    if output_dir is None:
        return None
    path = Path(output_dir) / "metrics.json"
    _atomic_write_text(path, json.dumps(_jsonable(dict(metrics)), indent=2, sort_keys=False))
    return path


def show_figure(fig: Any = None, *, alt: str | None = None) -> None:
    """Display a matplotlib figure as PNG with alternative text, then close it.

    The alt text (default: the axes titles) travels in the output's metadata and becomes the
    ``alt`` attribute of the image in the HTML report, so screen readers and text-only views of
    the report say what each figure shows.
    """
    import io

    import matplotlib.pyplot as plt
    from IPython.display import Image, display

    fig = plt.gcf() if fig is None else fig
    if alt is None:
        titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
        suptitle = fig._suptitle.get_text() if getattr(fig, "_suptitle", None) else ""
        alt = "; ".join([t for t in (suptitle, *titles) if t]) or "figure"
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    plt.close(fig)
    display(Image(data=buf.getvalue(), format="png"), metadata={"image/png": {"alt": alt}})


def export_scores(
    output_dir: str | os.PathLike[str] | None, scores: Any, *, name: str = "scores"
) -> dict[str, Path]:
    """Write per-customer scores as ``<name>.parquet`` and ``<name>.csv`` with stable columns.

    Columns listed in :data:`SCORE_COLUMNS` come first in that order (those present), then any
    others (attributes) in their existing order. ``customer_id`` is taken from the index when it
    is not a column. The caller's frame is not modified. Returns the written paths (empty when
    ``output_dir`` is None, e.g. when the notebook runs interactively).
    """
    import pandas as pd

    frame = pd.DataFrame(scores).copy()
    if "customer_id" not in frame.columns:
        frame = frame.reset_index()
        if "customer_id" not in frame.columns:
            frame = frame.rename(columns={frame.columns[0]: "customer_id"})
    first = [c for c in SCORE_COLUMNS if c in frame.columns]
    rest = [c for c in frame.columns if c not in first]
    frame = frame[first + rest]
    if output_dir is None:
        return {}
    out = Path(output_dir)
    paths = {"parquet": out / f"{name}.parquet", "csv": out / f"{name}.csv"}
    frame.to_parquet(paths["parquet"], index=False)
    frame.to_csv(paths["csv"], index=False)
    return paths


# --------------------------------------------------------------------------------------------
# execution
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass
class RunResult:
    """What a successful run produced."""

    report: str
    run_dir: Path
    html: Path
    notebook: Path
    metrics: Path
    latest: Path
    started: str
    seconds: float
    kernel: str
    outputs: dict[str, Path]


def _kernel_name(requested: str | None) -> tuple[str, str | None]:
    """The kernel to use and, when falling back, a one-line note saying so.

    Raises
    ------
    ParameterError
        If a kernel was asked for by name and no such kernel is registered.
    """
    try:
        from jupyter_client.kernelspec import KernelSpecManager

        names = set(KernelSpecManager().find_kernel_specs())
    except Exception:
        names = set()
    if requested:
        if names and requested not in names:
            raise ParameterError(
                f"no Jupyter kernel named {requested!r}; registered: {', '.join(sorted(names))} "
                "(`jupyter kernelspec list`)"
            )
        return requested, None
    if "custvalue" in names:
        return "custvalue", None
    return "python3", (
        "note: the 'custvalue' Jupyter kernel is not registered (`make env` registers it); "
        "using 'python3'"
    )


def _git_commit() -> str | None:
    if not (_REPO_DIR / ".git").exists():
        return None
    try:
        sha = subprocess.run(
            ["git", "-C", str(_REPO_DIR), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(_REPO_DIR), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return sha + (" (with uncommitted changes)" if dirty else "")


def _versions() -> dict[str, str]:
    from importlib import metadata

    out = {"python": sys.version.split()[0]}
    for dist in (
        "custvalue",
        "numpy",
        "pandas",
        "scipy",
        "duckdb",
        "pyarrow",
        "statsmodels",
        "matplotlib",
        "seaborn",
        "lifetimes",
        "papermill",
        "nbconvert",
    ):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return out


def _clean_stale_tmp(report_dir: Path) -> None:
    """Remove ``.tmp-*`` directories left by runs that were killed (their process is gone)."""
    if not report_dir.is_dir():
        return
    for tmp in report_dir.glob(".tmp-*"):
        m = re.search(r"-p(\d+)$", tmp.name)
        pid = int(m.group(1)) if m else None
        if pid is not None and pid != os.getpid() and _pid_alive(pid):
            continue
        shutil.rmtree(tmp, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _publish_dir(tmp: Path, parent: Path, stem: str) -> Path:
    """Rename ``tmp`` to ``parent/stem`` (or ``stem-2``, ``stem-3``... if taken); atomic.

    ``os.rename`` onto an existing non-empty directory fails, so two runs finishing at the same
    moment cannot overwrite each other: the loser takes the next free name.
    """
    k = 1
    while True:
        candidate = parent / (stem if k == 1 else f"{stem}-{k}")
        if not candidate.exists():
            try:
                os.rename(tmp, candidate)
                return candidate
            except OSError:
                if not candidate.exists():
                    raise
        k += 1


class _Terminated(BaseException):
    """SIGTERM turned into an exception so the temporary directory is cleaned up."""


@contextlib.contextmanager
def _sigterm_as_exception() -> Iterator[None]:
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise _Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _section_of(nb: Any, index: int) -> str | None:
    """Title of the last markdown heading at or before cell ``index``."""
    for cell in reversed(nb.cells[: index + 1]):
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.lstrip().startswith("#"):
                    return line.lstrip("#").strip()
    return None


def _one_line(text: str, limit: int = 300) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(text))  # ANSI colours from tracebacks
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _make_engine(log: Callable[[str], None] | None, report: str) -> str:
    """Register a papermill engine that logs one plain line per cell when ``log`` is given."""
    from papermill.engines import NBClientEngine, papermill_engines

    class _LoggingEngine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(cls, nb_man: Any, kernel_name: str, **kwargs: Any) -> Any:
            if log is not None:
                original = nb_man.cell_start
                n = len(nb_man.nb.cells)

                def cell_start(cell: Any, cell_index: int | None = None, **kw: Any) -> Any:
                    if cell_index is not None and cell.cell_type == "code":
                        section = _section_of(nb_man.nb, cell_index) or ""
                        log(f"[{report}] cell {cell_index + 1}/{n} {section}".rstrip())
                    return original(cell, cell_index, **kw)

                nb_man.cell_start = cell_start
            return super().execute_managed_notebook(nb_man, kernel_name, **kwargs)

    name = "custvalue-logging" if log is not None else "custvalue"
    papermill_engines.register(name, _LoggingEngine)
    return name


def _failure_message(exc: BaseException, nb: Any) -> str:
    from papermill.exceptions import PapermillExecutionError

    if isinstance(exc, PapermillExecutionError):
        cell_no = exc.cell_index + 1 if exc.cell_index is not None else "?"
        section = (
            _section_of(nb, exc.cell_index)
            if nb is not None and exc.cell_index is not None
            else None
        )
        label = [f"In [{exc.exec_count}]"] if exc.exec_count is not None else []
        label += [section] if section else []
        where = f"cell {cell_no}" + (f" ({', '.join(label)})" if label else "")
        return _one_line(f"{where}: {exc.ename}: {exc.evalue}")
    name = type(exc).__name__
    if "Timeout" in name:
        return _one_line(f"timed out: {exc}")
    if "DeadKernel" in name:
        return _one_line(f"the kernel died (out of memory?): {exc}")
    return _one_line(f"{name}: {exc}")


def run(
    report: str | ReportSpec,
    *,
    data: str | os.PathLike[str] | None = None,
    params: Mapping[str, Any] | None = None,
    out: str | os.PathLike[str] = "reports",
    kernel: str | None = None,
    start_timeout: float = 120.0,
    execution_timeout: float | None = 1800.0,
    progress: bool | None = None,
    log: Callable[[str], None] | None = None,
    run_date: str | None = None,
) -> RunResult:
    """Validate, execute and publish one report.

    Parameters
    ----------
    report : str or ReportSpec
        Report name (``"value"``) or specification.
    data : path-like or str, optional
        Data source; same as ``params["data"]``.
    params : mapping, optional
        Parameter values by name (strings are parsed as on the command line).
    out : path-like
        Root output directory; the report goes to ``<out>/<report>/<run-date>/``.
    kernel : str, optional
        Jupyter kernel; default ``custvalue`` if registered, else ``python3`` (with a note).
    start_timeout : float
        Seconds to wait for the kernel to start.
    execution_timeout : float or None
        Seconds any one cell may run before the run fails (None: no limit).
    progress : bool, optional
        Show a progress bar; default: only when stderr is a terminal. Without a bar, one plain
        log line per cell goes to ``log``.
    log : callable, optional
        Receives progress and note lines; default prints to stderr.
    run_date : str, optional
        Name of the dated output directory (default: today's date, ``YYYY-MM-DD``; a second run
        on the same day gets ``-2``, ``-3``...).

    Returns
    -------
    RunResult

    Raises
    ------
    ParameterError, DataValidationError
        Before any kernel starts, for invalid parameters or data.
    ReportFailedError
        When the notebook fails; the failed notebook is at ``error.failed_html``.
    """
    import nbformat
    import papermill as pm

    from ._html import export_notebook_html, external_references, render_footer, render_header

    spec = get_report(report)
    given = dict(params or {})
    if data is not None:
        given["data"] = os.fspath(data)
    values = validate_params(spec, given)
    emit = log or (lambda line: print(line, file=sys.stderr, flush=True))
    if not Path(spec.notebook).is_file():
        raise ParameterError(
            f"report {spec.name!r}: notebook {spec.notebook} is missing "
            "(set CUSTVALUE_NOTEBOOKS to the directory holding the report notebooks)"
        )
    kernel_name, note = _kernel_name(kernel)
    provenance = _preflight(values)
    if note:
        emit(note)

    report_dir = Path(out) / spec.name
    report_dir.mkdir(parents=True, exist_ok=True)
    _clean_stale_tmp(report_dir)
    started = _dt.datetime.now(_dt.UTC).replace(microsecond=0)
    stamp = started.strftime("%Y%m%dT%H%M%S")
    tmp = report_dir / f".tmp-{stamp}-p{os.getpid()}"
    tmp.mkdir()
    executed = tmp / "report.ipynb"
    show_bar = sys.stderr.isatty() if progress is None else progress
    engine = _make_engine(None if show_bar else emit, spec.name)
    t0 = time.monotonic()
    try:
        with _sigterm_as_exception():
            try:
                pm.execute_notebook(
                    str(spec.notebook),
                    str(executed),
                    parameters={**values, "output_dir": str(tmp.resolve())},
                    engine_name=engine,
                    kernel_name=kernel_name,
                    start_timeout=start_timeout,
                    execution_timeout=execution_timeout,
                    progress_bar=show_bar,
                    log_output=False,
                    # the kernel's own start-up warnings are noise in cron logs and reports
                    extra_arguments=["--IPKernelApp.log_level=ERROR"],
                    cwd=str(tmp),
                )
            except Exception as exc:
                nb = _read_notebook(executed)
                message = _failure_message(exc, nb)
                failed_html = _write_failed_safely(spec, nb, report_dir, stamp, message, values)
                raise ReportFailedError(
                    f"report {spec.name!r} failed in {message}" + _see(failed_html),
                    failed_html=failed_html,
                ) from None
            seconds = time.monotonic() - t0
            missing = [f for f in spec.outputs if not (tmp / f).is_file()]
            nb = nbformat.read(executed, as_version=4)
            if missing:
                message = f"the notebook did not write {', '.join(missing)}"
                failed_html = _write_failed_safely(spec, nb, report_dir, stamp, message, values)
                raise ReportFailedError(
                    f"report {spec.name!r} failed: {message}" + _see(failed_html),
                    failed_html=failed_html,
                )
            versions = _versions()
            commit = _git_commit()
            run_rows = {
                "report": spec.name,
                "started (UTC)": started.isoformat().replace("+00:00", "Z"),
                "run time": f"{seconds:.1f} s",
                "kernel": kernel_name,
                "git commit": commit or "not available",
                "custvalue": versions.get("custvalue", "?"),
            }
            header = render_header(
                title=str(values.get("title") or spec.title),
                subtitle=spec.description,
                run=run_rows,
                parameters=values,
                data=provenance.header_rows() if provenance else None,
                versions=versions,
            )
            footer = render_footer(
                provenance.quality_html if provenance else "<p>No data-quality report.</p>",
                note=(
                    f"{provenance.n_rows_out:,} of "
                    f"{'?' if provenance.n_rows_in is None else f'{provenance.n_rows_in:,}'} rows "
                    f"used. Generated by custvalue {versions.get('custvalue', '?')}."
                )
                if provenance
                else "",
            )
            page = export_notebook_html(
                nb,
                include_code=False,
                title=str(values.get("title") or spec.title),
                header_html=header,
                footer_html=footer,
            )
            leaks = external_references(page)
            if leaks:
                raise ReportFailedError(
                    f"report {spec.name!r}: HTML would load {leaks[0]} from the network"
                )
            (tmp / "report.html").write_text(page, encoding="utf-8")
            metrics_path = tmp / "metrics.json"
            notebook_metrics = (
                json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
            )
            metrics_doc = {
                "report": spec.name,
                "metrics": notebook_metrics,
                "run": {
                    "started": run_rows["started (UTC)"],
                    "seconds": round(seconds, 3),
                    "kernel": kernel_name,
                    "git_commit": commit,
                    "versions": versions,
                    "parameters": values,
                },
                "data": provenance.to_dict() if provenance else None,
            }
            metrics_path.write_text(json.dumps(_jsonable(metrics_doc), indent=2), encoding="utf-8")
            final = _publish_dir(tmp, report_dir, run_date or started.date().isoformat())
            latest = report_dir / "latest.html"
            staging = report_dir / f".latest.html.{os.getpid()}.tmp"
            shutil.copyfile(final / "report.html", staging)
            os.replace(staging, latest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    outputs = {p.name: p for p in sorted(final.iterdir())}
    return RunResult(
        report=spec.name,
        run_dir=final,
        html=final / "report.html",
        notebook=final / "report.ipynb",
        metrics=final / "metrics.json",
        latest=latest,
        started=run_rows["started (UTC)"],
        seconds=seconds,
        kernel=kernel_name,
        outputs=outputs,
    )


def _read_notebook(path: Path) -> Any:
    """The executed notebook as papermill last saved it, or None if absent or unreadable."""
    import nbformat

    try:
        return nbformat.read(path, as_version=4) if path.is_file() else None
    except Exception:
        return None


def _see(failed_html: Path | None) -> str:
    return f" — failed notebook: {failed_html}" if failed_html else ""


def _write_failed_safely(
    spec: ReportSpec, nb: Any, report_dir: Path, stamp: str, message: str, values: Mapping[str, Any]
) -> Path | None:
    """:func:`_write_failed`, but a failure to write the page never hides the run's own error."""
    try:
        return _write_failed(spec, nb, report_dir, stamp, message, values)
    except Exception:
        return None


def _write_failed(
    spec: ReportSpec, nb: Any, report_dir: Path, stamp: str, message: str, values: Mapping[str, Any]
) -> Path:
    """Write the failed notebook (code visible) as HTML and .ipynb into ``<report>/failed/``."""
    import nbformat

    from ._html import export_notebook_html

    failed_dir = report_dir / "failed"
    failed_dir.mkdir(parents=True, exist_ok=True)
    target = failed_dir / f"{stamp}.html"
    banner = (
        '<div class="cv-failed-banner" id="cv-failed"><strong>This run of the '
        f"{html.escape(spec.name)} report failed:</strong> {html.escape(message)}<br>"
        f"Parameters: <code>{html.escape(json.dumps(_jsonable(dict(values))))}</code></div>"
    )
    if nb is None:  # the kernel never started: there is no executed notebook to show
        nb = nbformat.read(spec.notebook, as_version=4)
    page = export_notebook_html(
        nb, include_code=True, title=f"FAILED: {spec.title}", banner_html=banner
    )
    _atomic_write_text(target, page)
    _atomic_write_text(failed_dir / f"{stamp}.ipynb", nbformat.writes(nb))
    return target


# --------------------------------------------------------------------------------------------
# batch runs
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass
class JobResult:
    """Outcome of one job of a batch."""

    name: str
    report: str
    ok: bool
    message: str
    html: Path | None
    seconds: float


_JOB_KEYS = {"name", "report", "data", "params", "out", "kernel", "timeout", "start_timeout"}


def _load_jobs(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    import yaml

    p = Path(path)
    if not p.is_file():
        raise ParameterError(f"jobs file {os.fspath(path)!r} does not exist")
    try:
        doc = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ParameterError(f"jobs file {p}: not valid YAML: {_one_line(str(exc), 200)}") from None
    if isinstance(doc, list):
        doc = {"jobs": doc}
    if not isinstance(doc, dict) or not isinstance(doc.get("jobs"), list) or not doc["jobs"]:
        raise ParameterError(
            f"jobs file {p}: expected a mapping with a non-empty 'jobs:' list "
            "(each job: report, data, params)"
        )
    defaults = doc.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise ParameterError(f"jobs file {p}: 'defaults' must be a mapping")
    jobs = []
    for i, job in enumerate(doc["jobs"], start=1):
        if not isinstance(job, dict) or "report" not in {**defaults, **job}:
            raise ParameterError(f"jobs file {p}: job {i} must be a mapping with a 'report' key")
        merged = {**defaults, **job}
        merged["params"] = {**(defaults.get("params") or {}), **(job.get("params") or {})}
        bad = sorted(set(merged) - _JOB_KEYS)
        if bad:
            raise ParameterError(
                f"jobs file {p}: job {i} has unknown key(s) {', '.join(bad)}; "
                f"allowed: {', '.join(sorted(_JOB_KEYS))}"
            )
        merged.setdefault("name", f"job{i}-{merged['report']}")
        jobs.append(merged)
    names = [j["name"] for j in jobs]
    if len(set(names)) != len(names):
        raise ParameterError(f"jobs file {p}: job names must be unique, got {names}")
    return jobs


def run_jobs(
    path: str | os.PathLike[str],
    *,
    out: str | os.PathLike[str] | None = None,
    log: Callable[[str], None] | None = None,
    progress: bool | None = False,
) -> list[JobResult]:
    """Run every job of a YAML batch file; a failing job does not stop the others.

    The file is ``jobs:`` (a list) with optional ``defaults:`` merged into each job::

        defaults: {out: reports, params: {horizon_months: 12}}
        jobs:
          - name: cdnow
            report: value
            data: cdnow-master
            params: {freq: W}

    Raises :class:`ParameterError` only when the file itself is unusable; per-job errors are
    captured in the returned :class:`JobResult` list.
    """
    emit = log or (lambda line: print(line, file=sys.stderr, flush=True))
    jobs = _load_jobs(path)
    base = Path(path).resolve().parent
    results: list[JobResult] = []
    for job in jobs:
        t0 = time.monotonic()
        data = job.get("data")
        if data is not None and data not in DATASET_NAMES and not _is_remote(str(data)):
            data = str(base / str(data)) if not Path(str(data)).is_absolute() else str(data)
        target = out if out is not None else job.get("out", "reports")
        if not Path(str(target)).is_absolute() and out is None:
            target = base / str(target)
        emit(f"[{job['name']}] {job['report']} report starting")
        try:
            res = run(
                job["report"],
                data=data,
                params=job["params"],
                out=target,
                kernel=job.get("kernel"),
                start_timeout=float(job.get("start_timeout", 120)),
                execution_timeout=float(job.get("timeout", 1800)),
                progress=progress,
                log=log,
            )
            results.append(
                JobResult(job["name"], job["report"], True, "ok", res.html, time.monotonic() - t0)
            )
        except CustvalueError as exc:
            results.append(
                JobResult(
                    job["name"],
                    job["report"],
                    False,
                    _one_line(str(exc)),
                    getattr(exc, "failed_html", None),
                    time.monotonic() - t0,
                )
            )
        except Exception as exc:  # one broken job must not stop the batch
            results.append(
                JobResult(
                    job["name"],
                    job["report"],
                    False,
                    _one_line(f"{type(exc).__name__}: {exc}"),
                    None,
                    time.monotonic() - t0,
                )
            )
        last = results[-1]
        emit(
            f"[{last.name}] {'ok' if last.ok else 'FAILED'} in {last.seconds:.1f} s"
            + (f": {last.message}" if not last.ok else f": {last.html}")
        )
    return results


def format_job_summary(results: Sequence[JobResult]) -> str:
    """The final summary of a batch: one line per job and a count."""
    lines = []
    for r in results:
        status = "ok    " if r.ok else "FAILED"
        detail = str(r.html) if r.ok else r.message
        lines.append(f"{status} {r.name} ({r.report}, {r.seconds:.1f} s): {detail}")
    n_bad = sum(not r.ok for r in results)
    lines.append(
        f"{len(results) - n_bad} of {len(results)} jobs succeeded"
        + (f", {n_bad} failed" if n_bad else "")
    )
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# the value report
# --------------------------------------------------------------------------------------------


def _notebook_dir() -> Path:
    env = os.environ.get("CUSTVALUE_NOTEBOOKS")
    return Path(env) if env else _REPO_DIR / "notebooks"


_MODEL_CHOICES = ("bgnbd", "pareto_nbd", "mbgnbd")


def _check_value(values: dict[str, Any]) -> None:
    cal, obs = values.get("calibration_end"), values.get("observation_end")
    if cal is not None and obs is not None and cal >= obs:
        raise ParameterError(
            f"parameter 'calibration_end' ({cal}) must be before 'observation_end' ({obs})"
        )
    if not values.get("models"):
        raise ParameterError(
            f"parameter 'models' needs at least one of {', '.join(_MODEL_CHOICES)}"
        )


VALUE_PARAMS: tuple[Param, ...] = (
    Param(
        "data",
        "data",
        "cdnow-sample",
        "transactions: a CSV/Parquet path or glob, or cdnow-sample, cdnow-master, simulated",
    ),
    Param("customer_col", "str", "customer_id", "column (or SQL expression) with the customer id"),
    Param("date_col", "str", "date", "column with the transaction date"),
    Param(
        "amount_col", "str", "amount", "column (or SQL expression) with the amount, currency units"
    ),
    Param(
        "order_col",
        "str",
        None,
        "column with the order id, when one order has several lines",
        nullable=True,
    ),
    Param("attributes", "list", [], "attribute columns to carry (e.g. region,channel)"),
    Param(
        "returns",
        "choice",
        "net",
        "how to treat negative amounts (returns)",
        choices=("net", "drop", "keep"),
    ),
    Param(
        "freq",
        "choice",
        "W",
        "time unit the models are fitted in: D, W or M",
        choices=("D", "W", "M"),
    ),
    Param(
        "calibration_end",
        "date",
        None,
        "last day of the calibration period (auto: halfway through the data)",
        nullable=True,
    ),
    Param(
        "observation_end",
        "date",
        None,
        "last day of the observation period (auto: the last transaction date)",
        nullable=True,
    ),
    Param(
        "horizon_months",
        "float",
        12.0,
        "how far ahead customer value is projected, months",
        minimum=0.0,
        maximum=600.0,
        exclusive_minimum=True,
    ),
    Param(
        "discount_rate",
        "float",
        0.10,
        "annual discount rate for future value (0.10 means 10%)",
        minimum=0.0,
        maximum=1.0,
    ),
    Param(
        "margin",
        "float",
        1.0,
        "profit margin applied to revenue (1.0 means value in revenue)",
        minimum=0.0,
        maximum=1.0,
        exclusive_minimum=True,
    ),
    Param(
        "interval",
        "float",
        0.90,
        "coverage of the CLV intervals (0.90 means 90%)",
        minimum=0.5,
        maximum=0.99,
    ),
    Param(
        "n_draws",
        "int",
        200,
        "parameter draws used for the CLV intervals (0: no intervals)",
        minimum=0,
        maximum=5000,
    ),
    Param(
        "models",
        "list",
        list(_MODEL_CHOICES),
        "transaction models to compare",
        choices=_MODEL_CHOICES,
    ),
    Param("top_n", "int", 20, "rows in the top-customers table", minimum=1, maximum=1000),
    Param("seed", "int", 42, "random seed (intervals, simulated data)", minimum=0),
    Param("title", "str", "Customer value report", "title shown at the top of the report"),
    Param("currency", "str", "$", "currency symbol shown before amounts"),
)

register_report(
    ReportSpec(
        name="value",
        title="Customer value report",
        description="Who the customers are, what they will be worth, and how sure we are.",
        notebook=_notebook_dir() / "value_report.ipynb",
        params=VALUE_PARAMS,
        check=_check_value,
        outputs=("metrics.json", "scores.parquet", "scores.csv"),
    )
)


# --------------------------------------------------------------------------------------------
# command line (registered on the `custvalue` group by custvalue.cli)
# --------------------------------------------------------------------------------------------


def _parse_kv(pairs: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        if "=" not in pair:
            raise ParameterError(f"-p expects name=value, got {pair!r}")
        name, value = pair.split("=", 1)
        out[name.strip()] = value
    return out


def _fail(message: str, code: int) -> None:
    click.echo(f"error: {_one_line(message, 500)}", err=True)
    raise SystemExit(code)


@click.command("report", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("report_name", required=False, metavar="REPORT")
@click.option("--list", "list_", is_flag=True, help="List the available reports and exit.")
@click.option("--help-params", is_flag=True, help="List REPORT's parameters and exit.")
@click.option(
    "--data", "data", help="Transactions: CSV/Parquet path or glob, or a bundled dataset."
)
@click.option("--customer-col", help="Column with the customer id.")
@click.option("--date-col", help="Column with the transaction date.")
@click.option("--amount-col", help="Column (or SQL expression) with the amount.")
@click.option("--order-col", help="Column with the order id.")
@click.option("--attribute", "attributes", multiple=True, help="Attribute column (repeatable).")
@click.option(
    "-p",
    "--param",
    "param_pairs",
    multiple=True,
    metavar="NAME=VALUE",
    help="Report parameter (repeatable); see --help-params.",
)
@click.option(
    "--out",
    default="reports",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Root output directory.",
)
@click.option("--kernel", default=None, help="Jupyter kernel (default: custvalue, else python3).")
@click.option(
    "--timeout", default=1800.0, show_default=True, type=float, help="Seconds any one cell may run."
)
@click.option(
    "--start-timeout",
    default=120.0,
    show_default=True,
    type=float,
    help="Seconds to wait for the kernel to start.",
)
@click.option(
    "--progress/--no-progress", default=None, help="Progress bar (default: only on a terminal)."
)
def report_command(
    report_name: str | None,
    list_: bool,
    help_params: bool,
    data: str | None,
    customer_col: str | None,
    date_col: str | None,
    amount_col: str | None,
    order_col: str | None,
    attributes: tuple[str, ...],
    param_pairs: tuple[str, ...],
    out: str,
    kernel: str | None,
    timeout: float,
    start_timeout: float,
    progress: bool | None,
) -> None:
    """Run a report notebook and publish it as HTML under OUT/REPORT/RUN-DATE/.

    Exit codes: 0 success, 1 the notebook failed, 2 invalid parameters or data.
    """
    if list_:
        for spec in list_reports():
            click.echo(f"{spec.name:<12} {spec.description}")
        return
    if not report_name:
        _fail("name a report (see `custvalue report --list`)", 2)
    try:
        spec = get_report(report_name)
        if help_params:
            click.echo(format_params_help(spec))
            return
        params: dict[str, Any] = {}
        for key, value in (
            ("customer_col", customer_col),
            ("date_col", date_col),
            ("amount_col", amount_col),
            ("order_col", order_col),
        ):
            if value is not None:
                params[key] = value
        if attributes:
            params["attributes"] = list(attributes)
        params.update(_parse_kv(param_pairs))
        result = run(
            spec,
            data=data,
            params=params,
            out=out,
            kernel=kernel,
            start_timeout=start_timeout,
            execution_timeout=timeout,
            progress=progress,
        )
    except ReportFailedError as exc:
        _fail(str(exc), 1)
    except CustvalueError as exc:
        _fail(str(exc), 2)
    except KeyboardInterrupt:
        _fail("interrupted; the previous report was left in place", 130)
    except _Terminated:
        _fail("terminated; the previous report was left in place", 143)
    click.echo(f"report: {result.html}")
    click.echo(f"latest: {result.latest}")
    click.echo(
        f"scores: {result.run_dir / 'scores.parquet'} (and .csv)"
        if (result.run_dir / "scores.parquet").exists()
        else f"outputs: {result.run_dir}"
    )


@click.command("run", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("jobs_file", type=click.Path(dir_okay=False))
@click.option(
    "--out",
    default=None,
    type=click.Path(file_okay=False),
    help="Root output directory for every job (default: each job's `out`, else reports/).",
)
def run_command(jobs_file: str, out: str | None) -> None:
    """Run a batch of reports from a YAML jobs file; failures do not stop the other jobs.

    Exit codes: 0 all jobs succeeded, 1 at least one failed, 2 the jobs file is unusable.
    """
    try:
        results = run_jobs(jobs_file, out=out)
    except CustvalueError as exc:
        _fail(str(exc), 2)
    click.echo(format_job_summary(results))
    if not all(r.ok for r in results):
        raise SystemExit(1)


@click.command("demo")
@click.option("--out", default="reports", show_default=True, type=click.Path(file_okay=False))
@click.option(
    "--data",
    default="cdnow-master",
    show_default=True,
    help="Data for the demo (a bundled dataset name or a path).",
)
def demo_command(out: str, data: str) -> None:
    """Run the value report on CDNOW master (the main job of `make demo`) and say where it is."""
    try:
        result = demo(out=out, data=data)
    except ReportFailedError as exc:
        _fail(str(exc), 1)
    except CustvalueError as exc:
        _fail(str(exc), 2)
    click.echo(f"value report: {result.html}")
    click.echo(f"latest copy:  {result.latest}")
    click.echo(
        f"scores:       {result.run_dir / 'scores.parquet'}, {result.run_dir / 'scores.csv'}"
    )
    click.echo(f"metrics:      {result.metrics}")


def demo(*, out: str | os.PathLike[str] = "reports", data: str = "cdnow-master") -> RunResult:
    """The value report on CDNOW master, weekly models, 39-week calibration (Fader et al. 2005)."""
    params: dict[str, Any] = {"freq": "W"}
    if data.startswith("cdnow"):
        # The split used in Fader, Hardie & Lee (2005), "Counting your customers the easy way".
        params.update(calibration_end="1997-09-30", observation_end="1998-06-30")
    return run("value", data=data, params=params, out=out)


@click.group("custvalue-reports")
def cli() -> None:
    """Report commands (also available as `custvalue report|run|demo`)."""


cli.add_command(report_command)
cli.add_command(run_command)
cli.add_command(demo_command)

if __name__ == "__main__":
    cli()
