"""Batch runs: a YAML jobs file of reports run one after the other (``custvalue run jobs.yml``)."""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..errors import CustvalueError, ParameterError
from .runner import one_line, run
from .spec import DATASET_NAMES, get_report, is_remote

__all__ = ["JobResult", "format_job_summary", "resolve_path_params", "run_jobs"]



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
        raise ParameterError(f"jobs file {p}: not valid YAML: {one_line(str(exc), 200)}") from None
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


def _from_jobs_file(value: str, base: Path, *, bundled: bool = True) -> str:
    """A relative local path in a jobs file, relative to that file's directory."""
    if (bundled and value in DATASET_NAMES) or is_remote(value):
        return value
    path = Path(os.path.expanduser(value))
    return str(path if path.is_absolute() else base / path)


def resolve_path_params(report: str, params: dict[str, Any], base: Path) -> dict[str, Any]:
    """``params`` with every relative ``data``/``path`` parameter taken relative to ``base``.

    A jobs file names its files relative to itself, wherever the batch is started from. An
    unknown report is left for :func:`~custvalue.reports.runner.run` to name.
    """
    try:
        spec = get_report(report)
    except CustvalueError:
        return params
    out = dict(params)
    for p in spec.params:
        value = out.get(p.name)
        if p.type in ("data", "path") and isinstance(value, str) and value:
            out[p.name] = _from_jobs_file(value, base, bundled=p.type == "data")
    return out


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
        data = None if job.get("data") is None else _from_jobs_file(str(job["data"]), base)
        job["params"] = resolve_path_params(job["report"], job["params"], base)
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
                    one_line(str(exc)),
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
                    one_line(f"{type(exc).__name__}: {exc}"),
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

