"""Running a report: papermill execution, atomic publishing, signals and failed runs.

A run (:func:`run`)

1. validates every parameter before any kernel starts (:func:`~custvalue.reports.spec.validate_params`;
   then a pre-flight load of the data, :func:`~custvalue.reports.inputs.preflight`, so a broken
   file is one clear line, not a traceback from inside a notebook);
2. executes the notebook with papermill on an explicit kernel (``custvalue`` when registered,
   else ``python3``) with a start timeout and a per-cell execution timeout, writing everything
   to a hidden temporary directory next to the final one;
3. exports a self-contained HTML report (:mod:`custvalue.reports.html`: no code, figures
   embedded, table of contents, header with provenance, footer with the data-quality summary)
   and ``metrics.json``;
4. moves the directory into place as ``<out>/<report>/<run-date>/`` and only then replaces
   ``<out>/<report>/latest.html``.

A failed run writes the executed notebook as HTML *with* its code to ``<out>/<report>/failed/``
and raises :class:`~custvalue.errors.ReportFailedError` whose message names the failing cell and
error in one line. An interrupted run (Ctrl-C, SIGTERM, SIGKILL) leaves at most a hidden
``.tmp-*`` directory that the next run removes; the last good report and ``latest.html`` are
never touched.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import html
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from ..errors import ParameterError, ReportFailedError
from .inputs import preflight
from .outputs import atomic_write_text, jsonable
from .spec import ReportSpec, get_report, validate_params

__all__ = ["RunResult", "Terminated", "one_line", "run"]

_PACKAGE_DIR = Path(__file__).resolve().parent.parent
_REPO_DIR = _PACKAGE_DIR.parent.parent



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


def _missing_interpreter(manager: Any, name: str) -> str | None:
    """The interpreter a kernel spec starts when that file no longer exists, else ``None``.

    A kernel registered from a virtual environment that was later deleted (a removed clone,
    a rebuilt ``.venv``) stays listed by Jupyter but can never start; papermill would fail
    with a bare ``FileNotFoundError`` after the notebook was prepared.
    """
    try:
        argv = manager.get_kernel_spec(name).argv
    except Exception:
        return None
    exe = argv[0] if argv else ""
    if os.path.isabs(exe) and not os.path.exists(exe):
        return exe
    return None


def _kernel_name(requested: str | None) -> tuple[str, str | None]:
    """The kernel to use and, when falling back, a one-line note saying so.

    Raises
    ------
    ParameterError
        If a kernel was asked for by name and no such kernel is registered, or its
        interpreter no longer exists.
    """
    try:
        from jupyter_client.kernelspec import KernelSpecManager

        manager = KernelSpecManager()
        names = set(manager.find_kernel_specs())
    except Exception:
        manager, names = None, set()
    if requested:
        if names and requested not in names:
            raise ParameterError(
                f"no Jupyter kernel named {requested!r}; registered: {', '.join(sorted(names))} "
                "(`jupyter kernelspec list`)"
            )
        missing = _missing_interpreter(manager, requested) if manager is not None else None
        if missing:
            raise ParameterError(
                f"the Jupyter kernel {requested!r} starts {missing}, which does not exist "
                "(re-register it, e.g. `make env`, or pick another with --kernel)"
            )
        return requested, None
    if "custvalue" in names:
        missing = _missing_interpreter(manager, "custvalue")
        if not missing:
            return "custvalue", None
        return "python3", (
            f"note: the 'custvalue' Jupyter kernel starts {missing}, which does not exist "
            "(`make env` registers it again); using 'python3'"
        )
    return "python3", (
        "note: the 'custvalue' Jupyter kernel is not registered (`make env` registers it); "
        "using 'python3'"
    )


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(_REPO_DIR), *args],
        capture_output=True,
        text=True,
        timeout=5,
        check=True,
    ).stdout.strip()


def _git_commit() -> str | None:
    if not (_REPO_DIR / ".git").exists():
        return None
    try:
        sha = _git("rev-parse", "--short=12", "HEAD")
        dirty = _git("status", "--porcelain", "--untracked-files=no")
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


class Terminated(BaseException):
    """SIGTERM turned into an exception so the temporary directory is cleaned up."""


@contextlib.contextmanager
def _sigterm_as_exception() -> Iterator[None]:
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise Terminated()

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


def one_line(text: str, limit: int = 300) -> str:
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
        return one_line(f"{where}: {exc.ename}: {exc.evalue}")
    name = type(exc).__name__
    if "Timeout" in name:
        return one_line(f"timed out: {exc}")
    if "DeadKernel" in name:
        return one_line(f"the kernel died (out of memory?): {exc}")
    return one_line(f"{name}: {exc}")


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

    from .html import export_notebook_html, external_references, render_footer, render_header

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
    provenance, transactions = preflight(values)
    if spec.requirements is not None and transactions is not None:
        spec.requirements(transactions, values)
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
                parameters=_shown(values),
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
            try:
                page = export_notebook_html(
                    nb,
                    include_code=False,
                    title=str(values.get("title") or spec.title),
                    header_html=header,
                    footer_html=footer,
                )
            except Exception as exc:  # e.g. nbconvert's templates missing from the environment
                raise ReportFailedError(
                    f"report {spec.name!r}: the notebook ran but its HTML export failed: "
                    + one_line(f"{type(exc).__name__}: {exc}")
                ) from None
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
                    "parameters": _shown(values),
                },
                "data": provenance.to_dict() if provenance else None,
            }
            metrics_path.write_text(json.dumps(jsonable(metrics_doc), indent=2), encoding="utf-8")
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


def _shown(values: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters as a report shows them: passwords in database URLs replaced by ``***``."""
    from .._database import redact

    return {k: redact(v) if isinstance(v, str) else v for k, v in values.items()}


def _redacted_notebook(nb: Any) -> Any:
    """A copy of ``nb`` whose cell sources (the injected parameters) show no URL password."""
    import copy

    from .._database import redact

    nb = copy.deepcopy(nb)
    for cell in nb.get("cells", []):
        src = cell.get("source")
        if isinstance(src, str):
            cell["source"] = redact(src)
        elif isinstance(src, list):
            cell["source"] = [redact(line) for line in src]
    return nb


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

    from .html import export_notebook_html

    failed_dir = report_dir / "failed"
    failed_dir.mkdir(parents=True, exist_ok=True)
    target = failed_dir / f"{stamp}.html"
    banner = (
        '<div class="cv-failed-banner" id="cv-failed"><strong>This run of the '
        f"{html.escape(spec.name)} report failed:</strong> {html.escape(message)}<br>"
        f"Parameters: <code>{html.escape(json.dumps(jsonable(_shown(values))))}</code></div>"
    )
    if nb is None:  # the kernel never started: there is no executed notebook to show
        nb = nbformat.read(spec.notebook, as_version=4)
    nb = _redacted_notebook(nb)
    page = export_notebook_html(
        nb, include_code=True, title=f"FAILED: {spec.title}", banner_html=banner
    )
    atomic_write_text(target, page)
    atomic_write_text(failed_dir / f"{stamp}.ipynb", nbformat.writes(nb))
    return target

