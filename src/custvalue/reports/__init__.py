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
========================  ===================================================================

A report module declares its :class:`Param` tuple, a check of impossible parameter combinations,
an ``analyse()`` that returns a result object the notebook only presents, and registers its
:class:`ReportSpec`; the command line (``custvalue report NAME``) lives in :mod:`custvalue.cli`.

>>> from custvalue import reports
>>> result = reports.run("value", data="orders.parquet", params={"horizon_months": 6})
>>> result.html
PosixPath('reports/value/2026-11-23/report.html')
"""

from __future__ import annotations

from ..errors import ReportFailedError
from . import html, inputs, jobs, outputs, runner, segment, spec, value
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
