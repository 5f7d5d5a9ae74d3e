"""Parameterised reports: declared parameters, papermill runs, atomic output, self-contained HTML.

One module per concern, and one module per report:

========================  ===================================================================
:mod:`.spec`              :class:`Param`, :class:`ReportSpec`, the registry, validation
:mod:`.inputs`            loading a report's data, provenance, periods, the pre-flight check
:mod:`.outputs`           ``metrics.json``, score exports, figures, money and number formatting
:mod:`.runner`            papermill execution, atomic publishing, signals, failed runs
:mod:`.jobs`              batch files (``custvalue run jobs.yml``)
:mod:`.html`              export of an executed notebook as one self-contained HTML page
:mod:`.value`             the customer value report: parameters, checks, ``analyse()``, result
:mod:`.segment`           the segment report: segments, lists, channel economics
:mod:`.program`           the programme-effect report: did the club or campaign pay off
========================  ===================================================================

A report module (``value.py`` is the model; ``segment.py`` and ``program.py`` follow it) holds,
in this order:

1. ``analyse(tx, ...) -> Result``: all the computation, returning one result object (a
   dataclass with the tables, the headline properties and ``metrics()`` for ``metrics.json``);
   the notebook only presents it, with the helpers of :mod:`.outputs` (``Money``, ``say``,
   ``show_figure``, ``FitDescription``, ``Collapsed``, ``export_scores``, ``write_metrics``);
2. its parameters, a tuple of :class:`Param`; a parameter passed on to a function takes its
   choices from that function (``feeds=(function, "argument")``), files are ``data``/``path``
   parameters (made absolute before the kernel starts);
3. ``check_params(values)``: impossible combinations of parameters (:class:`ParameterError`);
4. ``check_data(tx, values)``: what the report needs from the loaded data, run in pre-flight
   before any kernel starts (:class:`~custvalue.errors.DataValidationError`);
5. ``SPEC = register_report(ReportSpec(name, ..., notebook=notebook_path("x_report.ipynb"),
   params=..., check=check_params, requirements=check_data, outputs=(...)))``;

and is imported below so that it registers. The command line (``custvalue report NAME``)
lives in :mod:`custvalue.cli`; the notebook in the top-level ``notebooks/`` (shipped in the
wheel as ``custvalue/_notebooks``).

>>> from custvalue import reports
>>> result = reports.run("value", data="orders.parquet", params={"horizon_months": 6})
>>> result.html
PosixPath('reports/value/2026-11-23/report.html')
"""

from __future__ import annotations

from ..errors import ReportFailedError
from . import html, inputs, jobs, outputs, program, runner, segment, spec, value
from .inputs import DataProvenance, load_report_data, resolve_periods
from .jobs import JobResult, format_job_summary, run_jobs
from .outputs import SCORE_COLUMNS, export_scores, show_figure, write_metrics
from .runner import RunResult, run
from .spec import (
    DATASET_NAMES,
    Param,
    ReportSpec,
    format_params_help,
    get_report,
    list_reports,
    register_report,
    validate_params,
)
from .value import demo

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
    "format_job_summary",
    "format_params_help",
    "get_report",
    "html",
    "inputs",
    "jobs",
    "list_reports",
    "load_report_data",
    "outputs",
    "program",
    "register_report",
    "resolve_periods",
    "run",
    "run_jobs",
    "runner",
    "segment",
    "show_figure",
    "spec",
    "validate_params",
    "value",
    "write_metrics",
]
