"""The ``custvalue`` command line.

Commands
--------
``custvalue validate --data PATH``
    Load a transaction file through :func:`custvalue.data.load_transactions` and print the
    data-quality report.
``custvalue summarize --data PATH --freq W --out summary.parquet``
    Validate, summarise per customer (:func:`custvalue.summary.rfm_summary`) and write the
    summary as Parquet or CSV.
``custvalue select --data PATH --where FILTER --out list.csv``
    Validate, summarise, optionally score, select customers with a targeting filter
    (:func:`custvalue.segments.select`) and write the list with ``customer_id`` first.
``custvalue demo``
    The main job of ``make demo``: CDNOW master -> validation -> weekly summary, printed and
    written to ``reports/demo/``, then the value report.
``custvalue report NAME --data PATH -p name=value ...`` (``--list``, ``--help-params``)
    Run a report notebook (:func:`custvalue.reports.run`) and publish it as HTML; exit code 1
    when the notebook fails, 2 for invalid parameters or data (checked before any kernel starts).
``custvalue run jobs.yml``
    A batch of reports (:func:`custvalue.reports.run_jobs`); a failing job does not stop the rest.

Errors
------
Bad input or bad arguments end the command with exactly one line on stderr (``error: ...``,
saying what is wrong and where) and exit code 2 -- no traceback, and no output file left behind:
outputs are written to a temporary file in the target directory and renamed into place only
when complete. An output path that is one of the input files (also through a symbolic link, a
hard link or a glob) is refused before any work, so a command never replaces its own data
(:func:`custvalue._sources.refuse_overwriting_inputs`); a glob or directory input skips the
files custvalue wrote (see :mod:`custvalue._sources`).
:class:`~custvalue.errors.CustvalueError`, ``OSError`` (missing or unreadable
files, unwritable outputs), DuckDB errors and click's usage errors are all reported this way.

Adding commands
---------------
Commands from later modules are registered at the bottom of this file with
``main.add_command(command)``; a command may raise ``CustvalueError`` for bad input and the
group turns it into the one-line error.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from . import __version__
from ._sources import DATASET_NAMES
from ._text import one_line as _one_line
from .errors import CustvalueError, ParameterError

__all__ = ["main", "report_command", "run_command"]

_CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
_OUT_FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}


def _error_text(exc: BaseException) -> str:
    """The one-line message for an exception the CLI reports instead of a traceback."""
    import duckdb

    if isinstance(exc, click.UsageError):
        where = f"{exc.ctx.command_path}: " if exc.ctx is not None else ""
        hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx is not None else ""
        return f"{where}{exc.format_message()}{hint}"
    if isinstance(exc, click.ClickException):
        return exc.format_message()
    if isinstance(exc, OSError):
        if exc.filename is not None and exc.strerror:
            return f"{exc.strerror}: {os.fspath(exc.filename)!r}"
        return str(exc) or type(exc).__name__
    if isinstance(exc, duckdb.Error):
        return f"DuckDB could not process the data: {str(exc).strip().splitlines()[0]}"
    return str(exc) or type(exc).__name__


_NoArgsIsHelp: type[click.UsageError] = getattr(
    click.exceptions, "NoArgsIsHelpError", type("_Never", (click.UsageError,), {})
)


class CustvalueGroup(click.Group):
    """A click group whose commands fail with one line on stderr and exit code 2."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        import duckdb

        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.Abort:
            click.echo("error: interrupted", err=True)
            sys.exit(130)
        except _NoArgsIsHelp as exc:  # `custvalue` alone (or a group without a command): help
            click.echo(exc.ctx.get_help() if exc.ctx is not None else exc.format_message())
            sys.exit(0)
        except (click.ClickException, CustvalueError, OSError, duckdb.Error) as exc:
            click.echo(f"error: {_one_line(_error_text(exc))}", err=True)
            sys.exit(2)
        sys.exit(rv if isinstance(rv, int) else 0)


# ------------------------------------------------------------------------------------------------
# shared pieces
# ------------------------------------------------------------------------------------------------


def _data_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The options every command that reads transactions shares (load_transactions' arguments)."""
    options = [
        click.option(
            "--data", "data", required=True, metavar="PATH",
            help="Transactions: CSV or Parquet file, glob ('exports/*.parquet') or directory; "
            "or a bundled data set: " + ", ".join(DATASET_NAMES) + ".",
        ),
        click.option("--customer-col", default="customer_id", show_default=True,
                     help="Customer id column or SQL expression."),
        click.option("--date-col", default="date", show_default=True,
                     help="Transaction date column or SQL expression."),
        click.option("--amount-col", default="amount", show_default=True,
                     help="Amount column or SQL expression, e.g. 'Quantity * UnitPrice'."),
        click.option("--order-col", default=None, help="Order / invoice id column (optional)."),
        click.option("--attribute", "attributes", multiple=True, metavar="NAME[=EXPR]",
                     help="Attribute column to carry per customer (repeatable)."),
        click.option("--returns", type=click.Choice(["net", "drop", "error"]), default="net",
                     show_default=True, help="What to do with negative amounts."),
        click.option("--cancelled", default=None,
                     help="How cancelled orders are marked: boolean column/expression, or an "
                     "order-id prefix such as 'C' (with --order-col)."),
        click.option("--date-format", default=None,
                     help="strptime format of text dates, e.g. '%d/%m/%Y %H:%M'."),
        click.option("--timezone", default=None,
                     help="Zone that dates with a UTC offset are converted to and in which dates "
                     "without one are read (default UTC; never the machine's zone)."),
        click.option("--duplicates", type=click.Choice(["auto", "drop", "keep"]), default="auto",
                     show_default=True,
                     help="Exact duplicate rows: 'auto' drops them when --order-col is given, "
                     "else keeps and reports them."),
        click.option("--zero-amounts", type=click.Choice(["keep", "drop"]), default="keep",
                     show_default=True, help="What to do with zero amounts."),
        click.option("--future-dates", type=click.Choice(["drop", "keep"]), default="drop",
                     show_default=True,
                     help="Rows dated a year or more after today (typos, 2099 placeholders)."),
        click.option("--delimiter", default=None, help="CSV field delimiter (default: sniffed)."),
        click.option("--encoding", default=None, metavar="NAME",
                     help="CSV text encoding, e.g. 'latin-1' (default: UTF-8)."),
        click.option("--decimal", default=None, metavar="CHAR",
                     help="CSV decimal separator, e.g. ',' for '1,5' (default: '.')."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _load(
    data: str,
    *,
    customer_col: str,
    date_col: str,
    amount_col: str,
    order_col: str | None,
    attributes: Sequence[str],
    returns: str,
    cancelled: str | None,
    date_format: str | None,
    timezone: str | None,
    duplicates: str,
    zero_amounts: str,
    delimiter: str | None,
    encoding: str | None = None,
    decimal: str | None = None,
    future_dates: str = "drop",
    observation_end: str | None = None,
) -> tuple[Any, Any]:
    from ._sources import bundled_dataset, is_dataset_name
    from .data import load_transactions

    source: Any = data
    if is_dataset_name(data) and not os.path.exists(data):
        bundled = bundled_dataset(data)
        source = bundled.loader(0)
        order_col = order_col or bundled.order_col
        attributes = tuple(attributes) or bundled.attributes
    read_options = _read_options(delimiter=delimiter, encoding=encoding, decimal=decimal)
    return load_transactions(
        source,
        customer_col=customer_col,
        date_col=date_col,
        amount_col=amount_col,
        order_col=order_col,
        attributes=list(attributes),
        returns=returns,
        cancelled=cancelled,
        observation_end=observation_end,
        date_format=date_format,
        timezone=timezone,
        duplicates=duplicates,
        zero_amounts=zero_amounts,
        read_options=read_options,
        future_dates=future_dates,
    )


def _read_options(**given: str | None) -> dict[str, str] | None:
    """The CSV reading options given on the command line (``--delimiter`` is DuckDB's delim)."""
    names = {"delimiter": "delim", "encoding": "encoding", "decimal": "decimal"}
    opts = {names[k]: v for k, v in given.items() if v}
    return opts or None


def _refuse_overwriting(data: str, outputs: Sequence[str | None], kwargs: dict[str, Any]) -> None:
    """Refuse (exit 2, one line) when an output path is one of the transaction files read."""
    from ._sources import refuse_overwriting_inputs

    read_options = _read_options(
        delimiter=kwargs.get("delimiter"), encoding=kwargs.get("encoding"),
        decimal=kwargs.get("decimal"),
    )
    refuse_overwriting_inputs(outputs, [data], read_options)


def _output_format(out: str) -> str:
    suffix = Path(out).suffix.lower()
    if suffix not in _OUT_FORMATS:
        raise ParameterError(
            f"--out {out!r}: unknown output format {suffix or '(no extension)'!r}; "
            "use a path ending in .parquet or .csv"
        )
    return _OUT_FORMATS[suffix]


@contextmanager
def atomic_output(path: str | os.PathLike[str]) -> Iterator[str]:
    """Reserve ``path`` for writing: yield a temporary file next to it, rename on success.

    The temporary file is created at once, so an unwritable or missing directory fails before
    any expensive work; on any error the temporary file is removed and ``path`` is untouched.

    Parameters
    ----------
    path : path-like
        Final location. Its directory must exist.

    Yields
    ------
    str
        Path of the temporary file to write (in the same directory, so the rename is atomic).
    """
    target = Path(path)
    parent = target.parent if str(target.parent) else Path(".")
    if target.exists() and target.is_dir():
        raise IsADirectoryError(21, "output path is a directory", str(target))
    if not parent.exists():
        raise FileNotFoundError(2, "output directory does not exist", str(parent))
    if not parent.is_dir():
        raise NotADirectoryError(20, "output directory is not a directory", str(parent))
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=parent)
    os.close(fd)
    try:
        yield tmp
        umask = os.umask(0o022)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the usual permissions
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _write_frame(df: Any, tmp: str, fmt: str) -> None:
    df = df.copy()
    df.attrs = {k: str(v) for k, v in df.attrs.items()}  # JSON-safe Parquet metadata
    if fmt == "parquet":
        df.to_parquet(tmp)
    else:
        df.to_csv(tmp)


_REPORT_FORMATS = (".txt", ".html", ".json", ".csv")


def _report_format(path: str) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in _REPORT_FORMATS:
        raise ParameterError(
            f"--report {path!r}: unknown format {suffix or '(no extension)'!r}; use a path "
            f"ending in {', '.join(_REPORT_FORMATS)}"
        )
    return suffix


def _write_quality(quality: Any, tmp: str, kind: str) -> None:
    """Write a DataQuality report as text, a standalone HTML page, JSON or the checks CSV."""
    import json

    if kind == ".txt":
        Path(tmp).write_text(str(quality) + "\n", encoding="utf-8")
    elif kind == ".html":
        Path(tmp).write_text(
            "<!doctype html>\n<html><head><meta charset='utf-8'><title>Data quality</title>"
            "</head><body>\n" + quality._repr_html_() + "\n</body></html>\n",
            encoding="utf-8",
        )
    elif kind == ".json":
        Path(tmp).write_text(json.dumps(quality.to_dict(), indent=2) + "\n", encoding="utf-8")
    else:
        quality.to_frame().to_csv(tmp, index=False)


def _summary_statistics(summary: Any) -> str:
    """Plain-text statistics of an RFM summary (customers, repeat buyers, distributions)."""
    n = len(summary)
    repeat = int((summary["frequency"] > 0).sum())
    unit = summary.attrs.get("freq", "?")
    lines = [
        f"customers: {n:,}; repeat buyers: {repeat:,} ({repeat / n:.1%}); "
        f"time unit: {unit}; observation end: {summary.attrs.get('observation_end', '?')}",
        f"first purchases from {summary['first_purchase'].min()} to "
        f"{summary['first_purchase'].max()}; total spend {summary['total_spend'].sum():,.2f}",
        "",
    ]
    cols = [c for c in ("frequency", "recency", "T", "monetary_value", "n_orders", "total_spend")
            if c in summary.columns]
    stats = summary[cols].describe(percentiles=[0.25, 0.5, 0.75, 0.9]).T
    stats["count"] = stats["count"].astype(int)
    lines.append(stats.to_string(float_format=lambda v: f"{v:,.2f}"))
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------
# commands
# ------------------------------------------------------------------------------------------------


@click.group("custvalue", cls=CustvalueGroup, context_settings=_CONTEXT)
@click.version_option(__version__, prog_name="custvalue")
def main() -> None:
    """custvalue: validated transactions, customer summaries, lifetime models and reports.

    Bad input ends a command with one line on stderr and exit code 2.
    """


@main.command(context_settings=_CONTEXT)
@_data_options
@click.option("--observation-end", default=None, metavar="DATE",
              help="Drop transactions after this date (a date means the whole day).")
@click.option("--fail-on-problems", is_flag=True,
              help="Exit with code 1 when any check finds something (for pipelines).")
@click.option("--report", "report_path", default=None, metavar="PATH",
              help="Also write the report to PATH: .txt, .html, .json or .csv (atomically).")
def validate(
    observation_end: str | None, fail_on_problems: bool, report_path: str | None, **kwargs: Any
) -> int:
    """Validate a transaction file and print the data-quality report.

    Exit codes: 0 done, 1 a check found something and --fail-on-problems was given,
    2 bad input or arguments (one line on stderr).
    """
    if report_path is None:
        _, quality = _load(observation_end=observation_end, **kwargs)
    else:
        kind = _report_format(report_path)
        _refuse_overwriting(kwargs["data"], [report_path], kwargs)
        with atomic_output(report_path) as tmp:
            _, quality = _load(observation_end=observation_end, **kwargs)
            _write_quality(quality, tmp, kind)
    click.echo(str(quality))
    if report_path is not None:
        click.echo(f"\nreport written to {os.path.abspath(report_path)}")
    return 1 if fail_on_problems and not quality.ok else 0


@main.command(context_settings=_CONTEXT)
@_data_options
@click.option("--freq", default="D", show_default=True,
              help="Time unit: D (day), W (week), M (month), Q (quarter) or Y (year).")
@click.option("--observation-end", default=None, metavar="DATE",
              help="End of the observation period (default: the last transaction).")
@click.option("--out", "out", required=True, metavar="PATH",
              help="Output file: .parquet or .csv (written atomically).")
@click.option("-q", "--quiet", is_flag=True, help="Do not print the data-quality report.")
@click.option("--engine", type=click.Choice(["auto", "duckdb", "spark"]), default="auto",
              show_default=True,
              help="Where the summary is computed: DuckDB on this machine, or Spark (the "
              "active session, else a local one).")
def summarize(
    freq: str, observation_end: str | None, out: str, quiet: bool, engine: str, **kwargs: Any
) -> None:
    """Validate transactions and write one row per customer (frequency, recency, T, ...)."""
    from ._time import normalize_unit

    unit = normalize_unit(freq)  # bad arguments fail before any work
    fmt = _output_format(out)
    _refuse_overwriting(kwargs["data"], [out], kwargs)
    with atomic_output(out) as tmp:
        tx, quality = _load(observation_end=observation_end, **kwargs)
        from ._sources import parse_attributes
        from .summary import rfm_summary

        # the names the loader gave the attributes: one parser for both
        attributes = [name for name, _ in parse_attributes(kwargs["attributes"])]
        summary = rfm_summary(
            tx, freq=unit, observation_end=observation_end, attributes=attributes or None,
            engine=engine,
        )
        _write_frame(summary, tmp, fmt)
    if not quiet:
        click.echo(str(quality))
        click.echo("")
    click.echo(f"wrote {len(summary):,} customers ({unit}) to {os.path.abspath(out)}")


#: The reports ``custvalue demo`` runs, in order: (name, what it is run on).
_DEMO_REPORTS: dict[str, str] = {
    "value": "CDNOW master",
    "segment": "simulated customers with regions, channels and categories",
    "program": "a simulated self-selected club with a known effect",
}


def _run_demo_report(name: str, reports_dir: str) -> Any:
    """Run one report's ``demo()``; a failed notebook ends the command with exit code 1."""
    import importlib

    from .errors import ReportFailedError

    module = importlib.import_module(f".reports.{name}", __package__)
    click.echo(f"Running the {name} report on {_DEMO_REPORTS[name]} (papermill) ...", err=True)
    try:
        return module.demo(out=reports_dir)
    except ReportFailedError as exc:
        click.echo(f"custvalue: error: {_one_line(str(exc))}", err=True)
        if exc.failed_html is not None:
            click.echo(f"custvalue: the failed notebook: {exc.failed_html}", err=True)
        sys.exit(1)


def _programme_headline(metrics_path: Any) -> str:
    """The demo's programme estimate beside the simulation's true effect, from ``metrics.json``."""
    try:
        m = json.loads(Path(metrics_path).read_text(encoding="utf-8")).get("metrics", {})
        est, lo, hi = m["att_level"], m["att_level_lower"], m["att_level_upper"]
    except (OSError, ValueError, KeyError, TypeError):
        return "Programme report: no headline numbers were recorded (see the report)."
    line = (f"Programme report (simulated self-selected club): estimated effect {est:.4f} "
            f"purchases per member and month, 95% CI {lo:.4f} to {hi:.4f}")
    if m.get("true_effect") is not None:
        line += f"; the simulation's true effect is {m['true_effect']:.4f}"
    if m.get("naive_gap_level") is not None:
        line += f"; the naive member vs non-member gap says {m['naive_gap_level']:.4f}"
    return line + "."


@main.command(context_settings=_CONTEXT)
@click.option("--out-dir", default=os.path.join("reports", "demo"), show_default=True,
              type=click.Path(file_okay=False), help="Where the summary outputs go (created).")
@click.option("--freq", default="W", show_default=True, help="Time unit of the summary.")
@click.option("--reports-dir", default="reports", show_default=True,
              type=click.Path(file_okay=False),
              help="Where the reports go: <dir>/<report>/<run-date>/ and <dir>/<report>/latest.html.")
@click.option("--report/--no-report", default=True, show_default=True,
              help="Also run the reports (a few minutes); --no-report stops after the summary.")
@click.option("--reports", "report_names", default=",".join(_DEMO_REPORTS), show_default=True,
              help="Which reports to run, comma-separated: " + ", ".join(_DEMO_REPORTS) + ".")
def demo(out_dir: str, freq: str, reports_dir: str, report: bool, report_names: str) -> None:
    """CDNOW master: validate, summarise, run the value, segment and programme reports on bundled
    and simulated data, and say where everything is."""
    from ._time import normalize_unit
    from .data import load_transactions
    from .datasets import load_cdnow
    from .summary import rfm_summary

    names = [n.strip() for n in report_names.split(",") if n.strip()] if report else []
    unknown = [n for n in names if n not in _DEMO_REPORTS]
    if unknown:
        raise ParameterError(
            f"--reports: unknown report {', '.join(map(repr, unknown))}; use "
            + ", ".join(_DEMO_REPORTS)
        )
    unit = normalize_unit(freq)
    os.makedirs(out_dir, exist_ok=True)
    summary_path = os.path.join(out_dir, "cdnow_summary.parquet")
    text_path = os.path.join(out_dir, "data_quality.txt")
    html_path = os.path.join(out_dir, "data_quality.html")
    with atomic_output(summary_path) as tmp:
        raw = load_cdnow("master")
        tx, quality = load_transactions(raw)
        summary = rfm_summary(tx, freq=unit)
        _write_frame(summary, tmp, "parquet")
    with atomic_output(text_path) as tmp:
        _write_quality(quality, tmp, ".txt")
    with atomic_output(html_path) as tmp:
        _write_quality(quality, tmp, ".html")
    click.echo("CDNOW master (lifetimes' copy of the Fader, Hardie & Lee 2005 data)")
    click.echo("")
    click.echo(str(quality))
    click.echo("")
    click.echo(f"Customer summary ({unit}):")
    click.echo(_summary_statistics(summary))
    click.echo("")
    results = {name: _run_demo_report(name, reports_dir) for name in names}
    if "program" in results:
        click.echo(_programme_headline(results["program"].metrics))
        click.echo("")
    click.echo("outputs:")
    click.echo(f"  summary:      {os.path.abspath(summary_path)}")
    click.echo(f"  data quality: {os.path.abspath(text_path)}")
    click.echo(f"                {os.path.abspath(html_path)}")
    for name, result in results.items():
        click.echo(f"  {name} report: {os.path.abspath(result.html)}")
        click.echo(f"  latest copy:  {os.path.abspath(result.latest)}")
        files = sorted(p for p in result.run_dir.iterdir() if p.is_file() and p != result.html)
        for path in files:
            click.echo(f"                {os.path.abspath(path)}")


@main.command("select", context_settings=_CONTEXT)
@_data_options
@click.option("--where", "where", required=True, metavar="FILTER",
              help='Targeting filter, e.g. \'region in ["Jiangsu", "Zhejiang"] and total_spend '
              '>= 500\' (see custvalue.segments.select for the language).')
@click.option("--out", "out", required=True, metavar="PATH",
              help="Customer list: .csv or .parquet, customer_id first (written atomically).")
@click.option("--freq", default="D", show_default=True,
              help="Time unit of the summary and the models: D, W or M.")
@click.option("--observation-end", default=None, metavar="DATE",
              help="End of the observation period (default: the last transaction).")
@click.option("--score", type=click.Choice(["auto", "yes", "no"]), default="auto",
              show_default=True,
              help="Add model scores (p_alive, expected_purchases, clv, ...): 'auto' when the "
              "filter uses them.")
@click.option("--model", type=click.Choice(["bgnbd", "pareto_nbd", "mbgnbd"]), default="bgnbd",
              show_default=True, help="Transaction model for the scores.")
@click.option("--covariate", "covariates", multiple=True, metavar="ATTRIBUTE",
              help="Attribute (also given with --attribute) that shifts the purchase, dropout "
              "and spend rates of the scoring models, so each customer is scored at her own "
              "rates (repeatable).")
@click.option("--horizon-months", type=float, default=12.0, show_default=True,
              help="CLV horizon in months.")
@click.option("--discount-rate", type=float, default=0.1, show_default=True,
              help="Yearly discount rate of the CLV.")
@click.option("--margin", type=float, default=1.0, show_default=True,
              help="Profit margin applied to spend.")
@click.option("--today", default=None, metavar="DATE",
              help="Reference date of 'within N days' (default: today).")
@click.option("--include-invalid", is_flag=True,
              help="Keep customers with no valid purchase (net spend <= 0).")
def select_command(
    where: str, out: str, freq: str, observation_end: str | None, score: str, model: str,
    covariates: tuple[str, ...], horizon_months: float, discount_rate: float, margin: float,
    today: str | None, include_invalid: bool, **kwargs: Any,
) -> None:
    """Select the customers a targeting filter matches and write them as a list for CRM tools.

    Loads and validates the transactions, summarises them per customer (attributes at the
    first purchase; attributes used with `has` carry every value the customer bought),
    optionally adds model scores, applies the filter and writes the list.
    """
    from . import segments
    from ._time import normalize_unit
    from .segments import _filter

    unit = normalize_unit(freq)  # bad arguments fail before any work
    fmt = _output_format(out)
    _refuse_overwriting(kwargs["data"], [out], kwargs)
    tree = _filter.parse(where)  # a syntax error fails before loading
    used = {f.name for f in _filter.fields(tree)}
    attributes = [a.split("=", 1)[0] if "=" in a else a for a in kwargs["attributes"]]
    stray = [c for c in covariates if c not in attributes]
    if stray:
        raise ParameterError(
            f"--covariate {', '.join(stray)}: not an attribute of the data; give it with "
            f"--attribute as well (attributes: {', '.join(attributes) or 'none'})"
        )
    if covariates and score == "no":
        raise ParameterError("--covariate needs model scores; drop --score no")
    with atomic_output(out) as tmp:
        tx, _quality = _load(observation_end=observation_end, **kwargs)
        from .summary import rfm_summary

        customers = rfm_summary(
            tx, freq=unit, observation_end=observation_end, attributes=attributes or None
        )
        for name in _filter.has_fields(tree):
            if name in tx.columns:
                values = segments.bought_values(tx, name)
                customers[name] = values.reindex(customers.index).to_numpy()
        if score == "yes" or covariates or (
            score == "auto" and used & set(segments.SCORE_COLUMNS)
        ):
            customers = segments.score_customers(
                customers, model=model, horizon_months=horizon_months,
                discount_rate=discount_rate, margin=margin, covariates=covariates,
            ).customers
        selection = segments.select(
            customers, where, today=today, include_invalid=include_invalid
        )
        segments.export_list(selection, tmp, format=fmt)
    click.echo(str(selection).splitlines()[0])
    click.echo(f"wrote {selection.size:,} of {len(customers):,} customers to {os.path.abspath(out)}")


# ------------------------------------------------------------------------------------------------
# reports: custvalue report NAME ... / --list / --help-params, and custvalue run jobs.yml
# ------------------------------------------------------------------------------------------------


def _parse_kv(pairs: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        if "=" not in pair:
            raise ParameterError(f"-p expects name=value, got {pair!r}")
        name, value = pair.split("=", 1)
        out[name.strip()] = value
    return out


def _quiet_interrupted_kernel_client() -> None:
    """Keep the interrupted run's one-line message the last line a scheduler's log shows.

    An execution stopped by a signal leaves the kernel client's asyncio tasks behind; one of them
    ends in ``DeadKernelError: Kernel died`` once the kernel is shut down, and asyncio logs that
    ("Task exception was never retrieved") when the task is collected, at interpreter exit, after
    the message. The kernel's death is the expected consequence of the stop, not news.
    """
    import logging

    logging.getLogger("asyncio").setLevel(logging.CRITICAL)


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
    "--engine",
    type=click.Choice(["auto", "duckdb", "spark"]),
    default=None,
    help="Where the summaries are computed (the report's engine parameter; default auto).",
)
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
    engine: str | None,
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
    from .errors import ReportFailedError
    from .reports import format_params_help, get_report, list_reports, run
    from .reports.runner import Terminated
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
            ("engine", engine),
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
        _quiet_interrupted_kernel_client()
        _fail("interrupted; the previous report was left in place", 130)
    except Terminated:
        _quiet_interrupted_kernel_client()
        _fail("terminated; the previous report was left in place", 143)
    click.echo(f"report: {result.html}")
    click.echo(f"latest: {result.latest}")
    click.echo(
        f"scores: {result.run_dir / 'scores.parquet'} (and .csv)"
        if (result.run_dir / "scores.parquet").exists()
        else f"outputs: {result.run_dir}"
    )


_RUN_EPILOG = """\b
The jobs file (YAML): a `jobs:` list, each job one report; optional `defaults:`
merged into every job (a job's `params` override the defaults' `params`).

\b
  defaults:
    out: reports              # root output directory (relative: to this file)
    timeout: 900              # seconds any one notebook cell may run
    params: {horizon_months: 12, discount_rate: 0.10}
  jobs:
    - name: cdnow-weekly      # unique; default job<N>-<report>
      report: value           # value, segment or program (custvalue report --list)
      data: cdnow-sample      # a path (relative: to this file), a glob, a
                              # postgresql:// or duckdb:// URL, or a bundled data set
      params: {freq: W, margin: 0.3, calibration_end: "1997-09-30"}
    - name: shop-export
      report: value
      data: exports/orders.csv
      params:
        customer_col: CustomerID
        date_col: InvoiceDate
        amount_col: Quantity * UnitPrice   # a SQL expression on the row
        order_col: InvoiceNo

\b
Keys of a job: report (required), name, data, params, out, kernel, timeout,
start_timeout. `params` are the report's parameters (custvalue report REPORT
--help-params); relative `data` and path parameters are relative to the jobs
file, so the batch runs the same from any directory.

\b
Outputs: OUT/REPORT/RUN-DATE/ (report.html, report.ipynb, metrics.json and the
report's exports; a second run on the same day gets RUN-DATE-2) and
OUT/REPORT/latest.html, replaced only after a successful run. A failed job
writes its executed notebook, code visible, to OUT/REPORT/failed/ and never
touches the last good report; the next jobs still run. Progress goes to
stderr, the one-line-per-job summary to stdout.

\b
Exit codes: 0 every job succeeded; 1 at least one job failed (see the summary
and OUT/REPORT/failed/); 2 the jobs file is unusable (missing, not YAML, an
unknown key), nothing run.

\b
cron (every Monday at 06:00, appending to one log; mail when a job failed):
  0 6 * * 1  cd /srv/custvalue && .venv/bin/custvalue run jobs.yml \\
             >> logs/custvalue.log 2>&1 || mail -s "custvalue jobs failed" team@example.com

\b
Airflow (a BashOperator fails the task on a non-zero exit code):
  BashOperator(task_id="custvalue_reports",
               bash_command="/srv/custvalue/.venv/bin/custvalue run /srv/custvalue/jobs.yml")

\b
Full guide: docs/guide/scheduled.md; a tested example: examples/jobs.yml.
"""


@click.command("run", context_settings={"help_option_names": ["-h", "--help"],
                                        "max_content_width": 100},
               epilog=_RUN_EPILOG)
@click.argument("jobs_file", type=click.Path(dir_okay=False))
@click.option(
    "--out",
    default=None,
    type=click.Path(file_okay=False),
    help="Root output directory for every job (default: each job's `out`, else reports/ next "
    "to the jobs file).",
)
def run_command(jobs_file: str, out: str | None) -> None:
    """Run a batch of reports from a YAML jobs file; failures do not stop the other jobs.

    Exit codes: 0 all jobs succeeded, 1 at least one failed, 2 the jobs file is unusable.
    """
    from .reports import format_job_summary, run_jobs
    try:
        results = run_jobs(jobs_file, out=out)
    except CustvalueError as exc:
        _fail(str(exc), 2)
    click.echo(format_job_summary(results))
    if not all(r.ok for r in results):
        raise SystemExit(1)


main.add_command(report_command)
main.add_command(run_command)


if __name__ == "__main__":  # pragma: no cover
    main()
