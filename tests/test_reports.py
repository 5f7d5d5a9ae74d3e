"""Report runner: parameter validation, papermill execution, atomic output, failures, batches.

Most tests drive a tiny notebook written by the fixture below (a few cells, one figure, one
table) so that the machinery is exercised in seconds; the value report itself runs end to end on
the CDNOW sample in a slow test.
"""

from __future__ import annotations

import html
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from click.testing import CliRunner

from custvalue import cli, reports
from custvalue.errors import CustvalueError, ParameterError
from custvalue.reports.html import external_references

REPO = Path(__file__).resolve().parents[1]

TINY_CELLS = [
    ("markdown", "# Tiny report\n\nA report small enough to run in a test."),
    ("code", "n = 3\nfail = False\nsleep = 0.0\nmarker = None\noutput_dir = None", ["parameters"]),
    ("code", "import json, time\nimport matplotlib.pyplot as plt\nimport pandas as pd\n"
             "from custvalue import reports"),
    ("markdown", "## First section\n\nA figure with a title and labelled axes."),
    ("code", "fig, ax = plt.subplots(figsize=(4, 3))\nax.plot(range(n), [i * i for i in range(n)])\n"
             "ax.set_title('Squares')\nax.set_xlabel('i (count)')\nax.set_ylabel('i squared (count)')\n"
             "plt.show()"),
    ("markdown", "## Second section\n\nA table and a warning that readers should not see."),
    ("code", "import warnings\nwarnings.warn('internal warning for developers')\n"
             "pd.DataFrame({'i': range(n), 'square': [i * i for i in range(n)]})"),
    ("markdown", "### Second section\n\nSame heading text twice: ids must stay unique."),
    ("code", "if marker:\n    open(marker, 'w').write('running')\ntime.sleep(sleep)\n"
             "if fail:\n    raise ValueError(f'boom at n={n}')"),
    ("code", "scores = pd.DataFrame({'customer_id': [f'c{i}' for i in range(n)], 'clv': [1.5] * n,"
             " 'extra': 1, 'p_alive': 0.5})\nreports.export_scores(output_dir, scores)\n"
             "reports.write_metrics(output_dir, {'n': n, 'total': float(1.5 * n)})\nprint('done')"),
]


def _tiny_notebook(path: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for kind, source, *tags in TINY_CELLS:
        cell = (nbformat.v4.new_markdown_cell if kind == "markdown" else nbformat.v4.new_code_cell)(
            source
        )
        if tags:
            cell.metadata["tags"] = tags[0]
        nb.cells.append(cell)
    nbformat.write(nb, path)
    return path


def _tiny_spec(notebook: Path) -> reports.ReportSpec:
    return reports.ReportSpec(
        name="tiny",
        title="Tiny report",
        description="Test report.",
        notebook=notebook,
        params=(
            reports.Param("n", "int", 3, "number of rows", minimum=1),
            reports.Param("fail", "bool", False, "raise in the middle"),
            reports.Param("sleep", "float", 0.0, "seconds to sleep mid-run", minimum=0),
            reports.Param("marker", "str", None, "file written when the sleep starts",
                          nullable=True),
        ),
        outputs=("metrics.json", "scores.parquet", "scores.csv"),
    )


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> reports.ReportSpec:
    nb = _tiny_notebook(tmp_path_factory.mktemp("nb") / "tiny.ipynb")
    return reports.register_report(_tiny_spec(nb), replace=True)


def _quiet(lines: list[str]):
    return lines.append


# ---------------------------------------------------------------------------- validation


def test_value_report_declares_its_parameters_once() -> None:
    spec = reports.get_report("value")
    values = reports.validate_params("value", {})
    assert set(values) == set(spec.param_names)
    assert values["horizon_months"] == 12.0 and values["freq"] == "W"
    text = reports.format_params_help("value")
    for p in spec.params:
        assert p.name in text and p.help in text


@pytest.mark.parametrize(
    ("params", "pattern"),
    [
        ({"horizon_month": "12"}, r"unknown parameter 'horizon_month'.*did you mean 'horizon_months'"),
        ({"horizon_months": "twelve"}, r"'horizon_months' must be a number, got 'twelve'"),
        ({"horizon_months": "-3"}, r"'horizon_months' must be > 0, got -3"),
        ({"n_draws": "2.5"}, r"'n_draws' must be a whole number"),
        ({"freq": "fortnight"}, r"'freq' must be one of D, W, M"),
        ({"calibration_end": "1997-13-01"}, r"'calibration_end' must be a date"),
        ({"calibration_end": "1998-01-01", "observation_end": "1997-06-30"},
         r"'calibration_end' \(1998-01-01\) must be before 'observation_end' \(1997-06-30\)"),
        ({"models": "bgnbd,prophet"}, r"unknown item\(s\) 'prophet'"),
        ({"data": "/nonexistent/orders.csv"}, r"data file '/nonexistent/orders.csv' does not exist"),
        ({"data": "/nonexistent/*.parquet"}, r"no file matches"),
        ({"margin": "0"}, r"'margin' must be > 0"),
    ],
)
def test_impossible_parameters_are_one_line_errors(params: dict, pattern: str) -> None:
    with pytest.raises(ParameterError, match=pattern) as info:
        reports.validate_params("value", params)
    assert "\n" not in str(info.value)


def test_parameters_parse_from_command_line_strings() -> None:
    values = reports.validate_params(
        "value",
        {"horizon_months": "6", "models": "bgnbd, mbgnbd", "n_draws": "0",
         "calibration_end": "1997-09-30", "order_col": "auto"},
    )
    assert values["horizon_months"] == 6.0
    assert values["models"] == ["bgnbd", "mbgnbd"]
    assert values["n_draws"] == 0
    assert values["calibration_end"] == "1997-09-30"
    assert values["order_col"] is None


def test_unknown_report_is_named() -> None:
    with pytest.raises(ParameterError, match=r"unknown report 'valu'.*did you mean 'value'"):
        reports.get_report("valu")


def test_cli_list_and_help_params() -> None:
    runner = CliRunner()
    res = runner.invoke(cli.report_command, ["--list"])
    assert res.exit_code == 0 and re.search(r"^value\s+\S", res.output, re.M)
    res = runner.invoke(cli.report_command, ["value", "--help-params"])
    assert res.exit_code == 0
    assert "horizon_months" in res.output and "float" in res.output and "default: 12" in res.output


def test_cli_invalid_parameter_exits_2_before_any_kernel(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "out"
    res = runner.invoke(
        cli.report_command,
        ["value", "--data", "cdnow-sample", "-p", "horizon_months=-1", "--out", str(out)],
    )
    assert res.exit_code == 2
    assert res.output.strip().count("\n") == 0
    assert res.output.startswith("error: parameter 'horizon_months' must be > 0")
    assert not out.exists()  # nothing written, no kernel started
    res = runner.invoke(cli.report_command, ["value", "--data", str(tmp_path / "no.csv")])
    assert res.exit_code == 2 and "does not exist" in res.output
    res = runner.invoke(cli.report_command, ["value", "-p", "nonsense"])
    assert res.exit_code == 2 and "name=value" in res.output
    res = runner.invoke(cli.report_command, ["value", "--kernel", "no-such-kernel"])
    assert res.exit_code == 2 and "no Jupyter kernel named 'no-such-kernel'" in res.output


# ---------------------------------------------------------------------------- runs


@pytest.mark.slow
def test_successful_run_publishes_atomically(tiny: reports.ReportSpec, tmp_path: Path) -> None:
    lines: list[str] = []
    res = reports.run(tiny, params={"n": "4"}, out=tmp_path, log=lines.append, progress=False)
    report_dir = tmp_path / "tiny"
    assert res.run_dir.parent == report_dir
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", res.run_dir.name)
    for name in ("report.html", "report.ipynb", "metrics.json", "scores.parquet", "scores.csv"):
        assert (res.run_dir / name).is_file(), name
    assert not list(report_dir.glob(".tmp-*")) and not list(report_dir.glob(".*.tmp"))
    assert res.latest.read_bytes() == res.html.read_bytes()
    # plain log lines, one per code cell, naming the section
    assert any(re.fullmatch(r"\[tiny\] cell \d+/\d+ First section", line) for line in lines)

    page = res.html.read_text()
    assert not re.search(r'class="[^"]*(jp-CodeMirrorEditor|jp-InputPrompt)', page)  # no code
    assert "reports.export_scores" not in page and "plt.subplots" not in page
    assert "internal warning for developers" not in page  # stderr dropped
    assert re.search(r'<img[^>]+src="data:image/png;base64,', page)
    assert external_references(page) == []
    ids = re.findall(r'<h[1-3][^>]*\sid="([^"]+)"', page)
    assert len(ids) == len(set(ids))
    toc = re.search(r'<nav class="cv-toc".*?</nav>', page, re.S).group(0)
    links = re.findall(r'href="#([^"]+)"', toc)
    assert links and all(link in ids for link in links)
    for text in ("First section", "Second section", "Parameters", "Package versions",
                 "run time", "started (UTC)", "git commit", "Data quality"):
        assert text in page, text

    metrics = json.loads(res.metrics.read_text())
    assert metrics["metrics"] == {"n": 4, "total": 6.0}
    assert metrics["run"]["parameters"]["n"] == 4 and metrics["report"] == "tiny"
    scores = pd.read_parquet(res.run_dir / "scores.parquet")
    assert list(scores.columns) == ["customer_id", "p_alive", "clv", "extra"]  # stable order
    assert pd.read_csv(res.run_dir / "scores.csv").shape == scores.shape

    again = reports.run(tiny, params={"n": "2"}, out=tmp_path, log=lines.append)
    assert again.run_dir.name == res.run_dir.name + "-2"
    assert res.html.is_file()  # the earlier run is kept
    assert again.latest.read_bytes() == again.html.read_bytes()


@pytest.mark.slow
def test_failed_run_keeps_latest_and_writes_failed_page(
    tiny: reports.ReportSpec, tmp_path: Path
) -> None:
    good = reports.run(tiny, out=tmp_path, log=_quiet([]))
    before = good.latest.read_bytes()
    with pytest.raises(reports.ReportFailedError) as info:
        reports.run(tiny, params={"fail": "true", "n": 7}, out=tmp_path, log=_quiet([]))
    message = str(info.value)
    assert "\n" not in message
    assert re.search(r"failed in cell \d+ \(In \[\d+\], Second section\): ValueError: boom at n=7", message)
    failed = info.value.failed_html
    assert failed.parent == tmp_path / "tiny" / "failed" and failed.is_file()
    page = failed.read_text()
    text = html.unescape(re.sub(r"<[^>]+>", "", page))
    assert "raise ValueError(f'boom at n={n}')" in text  # code visible on the failed page
    assert "jp-CodeMirrorEditor" in page
    assert "boom at n=7" in page
    assert good.latest.read_bytes() == before
    dated = [p for p in (tmp_path / "tiny").iterdir() if re.match(r"\d{4}-", p.name)]
    assert dated == [good.run_dir]
    assert not list((tmp_path / "tiny").glob(".tmp-*"))


@pytest.mark.slow
def test_cell_timeout_is_a_failure(tiny: reports.ReportSpec, tmp_path: Path) -> None:
    with pytest.raises(reports.ReportFailedError, match=r"timed out|Timeout"):
        reports.run(tiny, params={"sleep": 30}, out=tmp_path, execution_timeout=2, log=_quiet([]))
    assert not (tmp_path / "tiny" / "latest.html").exists()


_DRIVER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    from custvalue import reports
    import test_reports as t
    spec = reports.register_report(t._tiny_spec(Path({nb!r})), replace=True)
    reports.run(spec, params={params!r}, out={out!r}, progress=False)
    """
)


def _wait_for_sleeping_cell(proc: subprocess.Popen, marker: Path, timeout: float = 90) -> None:
    """Block until the running report touches ``marker`` (its sleeping cell has started)."""
    deadline = time.monotonic() + timeout
    while not marker.exists():
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, "the run never reached its sleeping cell"
        time.sleep(0.2)


@pytest.mark.slow
def test_killed_run_leaves_last_good_report_intact(
    tiny: reports.ReportSpec, tmp_path: Path
) -> None:
    psutil = pytest.importorskip("psutil")
    good = reports.run(tiny, out=tmp_path, log=_quiet([]))
    before = good.latest.read_bytes()
    marker = tmp_path / "running.flag"
    driver = _DRIVER.format(
        tests=str(REPO / "tests"), nb=str(tiny.notebook),
        params={"sleep": 120, "marker": str(marker), "n": 5}, out=str(tmp_path),
    )
    proc = subprocess.Popen([sys.executable, "-c", driver], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        _wait_for_sleeping_cell(proc, marker)
        assert list((tmp_path / "tiny").glob(".tmp-*"))  # a run is in flight
        family = [proc.pid] + [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
        for pid in family:  # SIGKILL: no cleanup handlers get to run
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert good.latest.read_bytes() == before
    dated = [p for p in (tmp_path / "tiny").iterdir() if re.match(r"\d{4}-", p.name)]
    assert dated == [good.run_dir]
    assert good.html.read_bytes() == before
    # the next run sweeps the dead run's temporary directory and publishes normally
    after = reports.run(tiny, params={"n": 2}, out=tmp_path, log=_quiet([]))
    assert not list((tmp_path / "tiny").glob(".tmp-*"))
    assert after.latest.read_bytes() == after.html.read_bytes() != before


_CLI_DRIVER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    from custvalue import reports
    import test_reports as t
    reports.register_report(t._tiny_spec(Path({nb!r})), replace=True)
    from custvalue.cli import main
    main({args!r})
    """
)


@pytest.mark.slow
def test_sigterm_mid_run_cleans_up_and_exits_143(
    tiny: reports.ReportSpec, tmp_path: Path
) -> None:
    """What a scheduler does on a timeout: SIGTERM to the runner only."""
    psutil = pytest.importorskip("psutil")
    good = reports.run(tiny, out=tmp_path, log=_quiet([]))
    before = good.latest.read_bytes()
    marker = tmp_path / "running.flag"
    args = ["report", "tiny", "--out", str(tmp_path), "-p", "sleep=120", "-p", f"marker={marker}"]
    driver = _CLI_DRIVER.format(tests=str(REPO / "tests"), nb=str(tiny.notebook), args=args)
    proc = subprocess.Popen([sys.executable, "-c", driver], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        _wait_for_sleeping_cell(proc, marker)
        kernels = [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
        os.kill(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 143
    last = err.decode().strip().splitlines()[-1]
    assert last == "error: terminated; the previous report was left in place"
    assert good.latest.read_bytes() == before
    assert not list((tmp_path / "tiny").glob(".tmp-*"))  # cleaned up on the way out
    deadline = time.monotonic() + 30
    while any(psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"
              for pid in kernels):
        assert time.monotonic() < deadline, "the kernel outlived the terminated run"
        time.sleep(0.5)


_STRAY_TASK_DRIVER = textwrap.dedent(
    """
    import asyncio
    from custvalue import cli, reports
    from custvalue.reports.runner import Terminated

    class DeadKernelError(RuntimeError):
        pass

    STRAY = []  # collected at interpreter exit, after the CLI's message, as nbclient's task is

    def fake_run(*args, **kwargs):
        async def poll():
            raise DeadKernelError("Kernel died")
        loop = asyncio.new_event_loop()
        task = loop.create_task(poll())
        loop.run_until_complete(asyncio.sleep(0))  # the task fails; nobody retrieves it
        STRAY.append((loop, task))
        raise Terminated()

    cli.run = reports.run = fake_run
    cli.main(["report", "value"])
    """
)


@pytest.mark.slow
def test_terminated_run_ends_its_log_with_the_one_line_message() -> None:
    """The kernel client's failed asyncio task, collected at exit, must not print a traceback
    after the message (seen once in CI: the log of a SIGTERM-ed run ended in
    'DeadKernelError: Kernel died')."""
    proc = subprocess.run([sys.executable, "-c", _STRAY_TASK_DRIVER], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 143, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines[-1] == "error: terminated; the previous report was left in place", proc.stderr
    assert "Kernel died" not in proc.stderr


def test_kernel_falls_back_to_python3_with_a_note(monkeypatch: pytest.MonkeyPatch) -> None:
    from jupyter_client.kernelspec import KernelSpecManager

    monkeypatch.setattr(KernelSpecManager, "find_kernel_specs", lambda self: {"python3": "/x"})
    name, note = reports.runner._kernel_name(None)
    assert name == "python3" and "'custvalue' Jupyter kernel is not registered" in note
    monkeypatch.setattr(KernelSpecManager, "find_kernel_specs",
                        lambda self: {"python3": "/x", "custvalue": "/y"})
    assert reports.runner._kernel_name(None) == ("custvalue", None)
    with pytest.raises(ParameterError, match="no Jupyter kernel named 'other'"):
        reports.runner._kernel_name("other")


def test_kernel_whose_interpreter_is_gone_is_not_used(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # a real kernel spec left behind by a deleted virtual environment (a removed clone)
    spec = tmp_path / "kernels" / "custvalue"
    spec.mkdir(parents=True)
    gone = str(tmp_path / "deleted-venv" / "bin" / "python")
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [gone, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python (custvalue)", "language": "python"}))
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path))
    name, note = reports.runner._kernel_name(None)
    assert name == "python3" and gone in note and "does not exist" in note
    with pytest.raises(ParameterError, match=r"starts .*deleted-venv.* which does not exist"):
        reports.runner._kernel_name("custvalue")


# ---------------------------------------------------------------------------- batches


@pytest.mark.slow
def test_batch_runs_every_job_and_reports_failures(
    tiny: reports.ReportSpec, tmp_path: Path
) -> None:
    jobs = tmp_path / "jobs.yml"
    jobs.write_text(textwrap.dedent(
        """
        defaults:
          out: out
          params: {n: 2}
        jobs:
          - {name: breaks, report: tiny, params: {fail: true}}
          - {name: invalid, report: tiny, params: {n: -1}}
          - {name: works, report: tiny}
        """
    ))
    runner = CliRunner()
    res = runner.invoke(cli.run_command, [str(jobs)])
    assert res.exit_code == 1
    summary = res.stdout.strip().splitlines()
    assert summary[-1] == "1 of 3 jobs succeeded, 2 failed"
    assert summary[0].startswith("FAILED breaks (tiny") and "boom at n=2" in summary[0]
    assert summary[1].startswith("FAILED invalid") and "'n' must be >= 1" in summary[1]
    assert summary[2].startswith("ok     works")
    assert (tmp_path / "out" / "tiny" / "latest.html").is_file()


@pytest.mark.parametrize(
    ("content", "pattern"),
    [
        ("jobs: [", "not valid YAML"),
        ("jobs: []", "non-empty 'jobs:' list"),
        ("jobs:\n  - {report: tiny, colour: red}", "unknown key"),
    ],
)
def test_unusable_jobs_file_exits_2(tmp_path: Path, content: str, pattern: str) -> None:
    jobs = tmp_path / "jobs.yml"
    jobs.write_text(content)
    res = CliRunner().invoke(cli.run_command, [str(jobs)])
    assert res.exit_code == 2 and pattern in res.output
    assert res.output.count("\n") == 1


# ---------------------------------------------------------------------------- notebooks in git


def _repo_notebooks() -> list[Path]:
    return sorted((REPO / "notebooks").rglob("*.ipynb"))


def test_committed_notebooks_are_output_free() -> None:
    notebooks = [p for p in _repo_notebooks() if ".ipynb_checkpoints" not in p.parts]
    assert REPO / "notebooks" / "value_report.ipynb" in notebooks
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        for i, cell in enumerate(nb.cells):
            if cell.cell_type == "code":
                assert cell.outputs == [], f"{path.name} cell {i} has outputs"
                assert cell.execution_count is None, f"{path.name} cell {i} has a count"
            assert "papermill" not in cell.metadata, f"{path.name} cell {i}: papermill metadata"
            assert "execution" not in cell.metadata, f"{path.name} cell {i}: timing metadata"
        # one JSON layout so diffs stay small: what nbformat itself writes
        assert path.read_text() == nbformat.writes(nb) + "\n" or path.read_text() == nbformat.writes(nb)


def test_value_notebook_parameters_match_the_declaration() -> None:
    nb = nbformat.read(REPO / "notebooks" / "value_report.ipynb", as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    names: dict[str, object] = {}
    exec(tagged[0].source, {}, names)  # the parameters cell is plain assignments
    spec = reports.get_report("value")
    assert set(names) == set(spec.param_names) | {"output_dir"}
    for p in spec.params:
        assert names[p.name] == p.default, p.name


def test_errors_are_custvalue_errors() -> None:
    assert issubclass(reports.ReportFailedError, CustvalueError)


# ---------------------------------------------------------------------------- broken data


@pytest.mark.parametrize(
    ("content", "pattern"),
    [
        (b"customer_id,date,amount\n1,2020-01-01,abc\n2,notadate,3\n", "no valid transactions"),
        (b"PAR1\x00\x01garbage", "cannot read"),
        (b"who,when,how_much\n1,2020-01-01,3.5\n", "customer_id"),
    ],
)
def test_broken_data_file_is_one_line_exit_2(tmp_path: Path, content: bytes, pattern: str) -> None:
    suffix = ".parquet" if content.startswith(b"PAR1") else ".csv"
    broken = tmp_path / f"orders{suffix}"
    broken.write_bytes(content)
    out = tmp_path / "out"
    res = CliRunner().invoke(cli.report_command,
                             ["value", "--data", str(broken), "--out", str(out)])
    assert res.exit_code == 2, res.output
    assert res.output.startswith("error: ") and res.output.count("\n") == 1
    assert pattern in res.output
    assert not out.exists()  # rejected before any kernel started or any file was written


# ---------------------------------------------------------------------------- the value report


@pytest.fixture(scope="module")
def value_run(tmp_path_factory: pytest.TempPathFactory) -> reports.RunResult:
    """The value report on the CDNOW sample with the classic 39 + 39 week split, BG/NBD only,
    no discounting (so the total can be checked against lifetimes)."""
    out = tmp_path_factory.mktemp("value")
    return reports.run(
        "value", data="cdnow-sample",
        params={"calibration_end": "1997-09-30", "observation_end": "1998-06-30",
                "models": "bgnbd", "discount_rate": 0, "n_draws": 40,
                "horizon_months": 12},
        out=out, log=lambda line: None,
    )


@pytest.mark.slow
def test_value_report_end_to_end(value_run: reports.RunResult) -> None:
    lifetimes = pytest.importorskip("lifetimes")
    from lifetimes.datasets import load_dataset

    page = value_run.html.read_text()
    assert value_run.html.stat().st_size < 5 * 1024 * 1024
    assert external_references(page) == []
    toc = re.search(r'<nav class="cv-toc".*?</nav>', page, re.S).group(0)
    for section in ("Summary", "Customer base", "Models", "Value", "Rule of thumb vs model",
                    "Exports"):
        assert f">{section}<" in toc, section
    assert not re.search(r'class="[^"]*jp-InputPrompt', page)
    assert len(re.findall(r'<img[^>]+src="data:image/png;base64,', page)) >= 6
    # every figure's alt text is its title (reports.show_figure), not nbconvert's placeholder
    assert "No description has been provided" not in page
    assert 'alt="Cohort retention: share of each cohort buying' in page

    # counts against lifetimes' own copy of the file and its summary function
    raw = load_dataset("CDNOW_sample.txt", header=None, sep=r"\s+")
    raw.columns = ["customer_index", "customer_id", "date", "quantity", "amount"]
    raw["date"] = pd.to_datetime(raw["date"].astype(str), format="%Y%m%d")
    ref = lifetimes.utils.summary_data_from_transaction_data(
        raw, "customer_id", "date", observation_period_end="1998-06-30"
    )
    doc = json.loads(value_run.metrics.read_text())
    m = doc["metrics"]
    assert m["customers"] == len(ref) == doc["data"]["n_customers"]
    assert m["chosen_model"] == "BG/NBD"
    assert m["clv_total_lower"] <= m["clv_total"] <= m["clv_total_upper"]
    assert 0 < m["top_decile_share"] <= 1 and 0 < m["mean_p_alive"] < 1
    assert doc["data"]["first_date"] == "1997-01-01" and doc["data"]["last_date"] == "1998-06-30"
    assert doc["run"]["parameters"]["calibration_end"] == "1997-09-30"

    scores = pd.read_parquet(value_run.run_dir / "scores.parquet")
    expected_first = [c for c in reports.SCORE_COLUMNS if c in scores.columns]
    assert list(scores.columns[: len(expected_first)]) == expected_first
    for col in ("customer_id", "clv", "clv_lower", "clv_upper", "p_alive", "clv_decile"):
        assert col in scores.columns
    assert scores["customer_id"].is_unique and len(scores) == len(ref)
    assert scores["clv"].sum() == pytest.approx(m["clv_total"], rel=1e-9)
    assert set(scores["clv_decile"]) == set(range(1, 11))

    # the undiscounted 12-month value of the chosen model agrees with lifetimes' own fit
    # BG/NBD is the only candidate in this run
    weekly = lifetimes.utils.summary_data_from_transaction_data(
        raw, "customer_id", "date", monetary_value_col="amount", freq="W",
        observation_period_end="1998-06-30",
    )
    bgf = lifetimes.BetaGeoFitter().fit(weekly["frequency"], weekly["recency"], weekly["T"])
    rep = weekly[(weekly["frequency"] > 0) & (weekly["monetary_value"] > 0)]
    ggf = lifetimes.GammaGammaFitter().fit(rep["frequency"], rep["monetary_value"])
    horizon_weeks = 12 * 365.25 / 12 / 7
    purchases = bgf.conditional_expected_number_of_purchases_up_to_time(
        horizon_weeks, weekly["frequency"], weekly["recency"], weekly["T"]
    )
    spend = ggf.conditional_expected_average_profit(weekly["frequency"], weekly["monetary_value"])
    assert m["clv_total"] == pytest.approx(float((purchases * spend).sum()), rel=0.03)


def test_papermill_sees_every_declared_parameter() -> None:
    papermill = pytest.importorskip("papermill")
    found = papermill.inspect_notebook(str(REPO / "notebooks" / "value_report.ipynb"))
    assert set(found) == set(reports.get_report("value").param_names) | {"output_dir"}


@pytest.mark.slow
def test_value_report_breaks_value_down_by_channel_and_region(tmp_path: Path) -> None:
    """Simulated data carry region and channel: the report must use them."""
    res = reports.run("value", data="simulated", params={"n_draws": 0, "models": "bgnbd"},
                      out=tmp_path, log=lambda line: None)
    text = html.unescape(re.sub(r"<[^>]+>", " ", res.html.read_text()))
    assert "By channel" in text and "By region" in text
    assert "no channel or region columns" not in text
    scores = pd.read_parquet(res.run_dir / "scores.parquet")
    assert {"region", "channel", "heuristic_ltv"} <= set(scores.columns)
    assert len(scores) == 2000  # simulate(2000, seed) in load_report_data
    # the rule of thumb is per channel (the segment of the customer's first purchase)
    per_channel = scores.groupby("channel")["heuristic_ltv"].nunique()
    assert (per_channel == 1).all() and scores["heuristic_ltv"].nunique() == len(per_channel) > 1
    assert "clv_lower" not in scores.columns  # n_draws=0: no intervals, and no empty columns


@pytest.mark.slow
def test_run_without_its_declared_outputs_fails(tiny: reports.ReportSpec, tmp_path: Path) -> None:
    import dataclasses

    spec = dataclasses.replace(tiny, name="tiny-needs-more", outputs=("metrics.json", "extra.txt"))
    with pytest.raises(reports.ReportFailedError, match=r"did not write extra\.txt") as info:
        reports.run(spec, out=tmp_path, log=_quiet([]))
    assert info.value.failed_html.is_file()
    assert not (tmp_path / "tiny-needs-more" / "latest.html").exists()
    assert [p.name for p in (tmp_path / "tiny-needs-more").iterdir()] == ["failed"]


@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        (["-p", "calibration_end=1990-01-01"], r"'calibration_end' 1990-01-01 is on or before the first transaction \(1997-01-01\)"),
        (["-p", "calibration_end=1999-01-01"], r"'calibration_end' 1999-01-01 is not before the end of observation \(1998-06-30\)"),
        (["-p", "observation_end=1996-12-31"], r"no valid transactions left after cleaning"),
    ],
)
def test_dates_outside_the_data_are_rejected_before_any_kernel(
    tmp_path: Path, args: list[str], pattern: str
) -> None:
    out = tmp_path / "out"
    res = CliRunner().invoke(cli.report_command,
                             ["value", "--data", "cdnow-sample", "--out", str(out), *args])
    assert res.exit_code == 2, res.output
    assert res.output.count("\n") == 1 and re.search(pattern, res.output)
    assert not out.exists()


@pytest.mark.slow
def test_progress_bar_replaces_plain_log_lines(
    tiny: reports.ReportSpec, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    lines: list[str] = []
    res = reports.run(tiny, out=tmp_path, log=lines.append, progress=True)
    assert res.html.is_file()
    assert not any("cell" in line for line in lines)  # no per-cell lines with a bar
    assert re.search(r"\d+/\d+ \[", capfd.readouterr().err)  # tqdm's "n/N [elapsed" on stderr
