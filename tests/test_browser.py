"""Produced HTML reports opened in a real headless Chromium (Debian's, see scripts/ensure_chromium.sh).

Chromium is driven over the DevTools protocol with ``websocket-client`` (no driver download): the
page is loaded from ``file://`` with networking disabled, then we check that nothing was logged as
an error, nothing was fetched from the network, every image decodes, every table-of-contents
link resolves to an element, and save a screenshot under ``test-artifacts/``.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from custvalue import reports

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = os.environ.get("CUSTVALUE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--hide-scrollbars",
    "--window-size=1280,900",
]

# What the page must satisfy, evaluated inside the page (returns a JSON-able object).
CHECK_JS = """
(async () => {
  const imgs = [...document.images];
  const decoded = await Promise.all(imgs.map(img => img.decode().then(
      () => ({ok: img.naturalWidth > 0, w: img.naturalWidth, alt: img.alt}),
      () => ({ok: false, w: img.naturalWidth, alt: img.alt}))));
  const toc = [...document.querySelectorAll('nav.cv-toc a')].map(a => {
      const id = decodeURIComponent(a.hash.slice(1));
      return {id: id, text: a.textContent, found: document.getElementById(id) !== null};
  });
  const external = [...document.querySelectorAll('script[src], link[href], img[src], iframe[src]')]
      .map(e => e.getAttribute('src') || e.getAttribute('href'))
      .filter(u => /^(https?:)?\\/\\//.test(u));
  return {
    title: document.title,
    images: decoded,
    toc: toc,
    external: external,
    header: document.querySelector('header.cv-header') !== null,
    footer: document.querySelector('footer.cv-footer') !== null,
    height: document.documentElement.scrollHeight,
  };
})()
"""


class DevTools:
    """Minimal Chrome DevTools protocol client over one page's websocket."""

    def __init__(self, ws_url: str) -> None:
        import websocket

        self.ws = websocket.create_connection(ws_url, timeout=60, suppress_origin=True)
        self.ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        msg_id = next(self.ids)
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)

    def wait_for(self, method: str, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        for event in self.events:
            if event["method"] == method:
                return event
        while time.monotonic() < deadline:
            msg = json.loads(self.ws.recv())
            if "method" in msg:
                self.events.append(msg)
                if msg["method"] == method:
                    return msg
        raise TimeoutError(f"no {method} within {timeout} s")

    def close(self) -> None:
        self.ws.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory):
    """A headless Chromium with remote debugging on a free port; yields the HTTP endpoint."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(
            f"{CHROMIUM} not found: run `bash scripts/ensure_chromium.sh` (make test does) "
            "or set CUSTVALUE_CHROMIUM"
        )
    profile = tmp_path_factory.mktemp("chromium-profile")
    proc = subprocess.Popen(
        [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0",
         "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text().strip()):
            assert proc.poll() is None, f"chromium exited with {proc.returncode}"
            assert time.monotonic() < deadline, "chromium did not open its DevTools port"
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def open_page(endpoint: str, html_path: Path, screenshot: Path) -> dict[str, Any]:
    """Load ``html_path`` in a fresh tab; return the page checks plus errors and requests."""
    req = urllib.request.Request(f"{endpoint}/json/new?about:blank", method="PUT")
    with urllib.request.urlopen(req, timeout=30) as resp:
        target = json.load(resp)
    tab = DevTools(target["webSocketDebuggerUrl"])
    try:
        for domain in ("Page", "Runtime", "Log", "Network"):
            tab.call(f"{domain}.enable")
        tab.events.clear()
        tab.call("Page.navigate", url=html_path.resolve().as_uri())
        tab.wait_for("Page.loadEventFired")
        result = tab.call("Runtime.evaluate", expression=CHECK_JS, awaitPromise=True,
                          returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"check script failed: {result['exceptionDetails']}")
        checks = result["result"]["value"]
        height = min(int(checks["height"]), 12000)
        shot = tab.call(
            "Page.captureScreenshot", format="png", captureBeyondViewport=True,
            clip={"x": 0, "y": 0, "width": 1280, "height": height, "scale": 1},
        )
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        screenshot.write_bytes(base64.b64decode(shot["data"]))
        events = list(tab.events)
    finally:
        tab.close()
        with contextlib.suppress(OSError):
            urllib.request.urlopen(f"{endpoint}/json/close/{target['id']}", timeout=10).close()
    checks["errors"] = [
        e["params"] for e in events
        if e["method"] == "Runtime.exceptionThrown"
        or (e["method"] == "Runtime.consoleAPICalled" and e["params"]["type"] in ("error", "assert"))
        or (e["method"] == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")
    ]
    checks["requests"] = [
        e["params"]["request"]["url"] for e in events
        if e["method"] == "Network.requestWillBeSent"
        and not e["params"]["request"]["url"].startswith(("file:", "data:", "about:"))
    ]
    return checks


def assert_page_is_sound(checks: dict[str, Any], *, expect_images: bool, expect_toc: bool) -> None:
    assert checks["errors"] == [], f"console errors: {checks['errors'][:3]}"
    assert checks["requests"] == [], f"network requests: {checks['requests'][:5]}"
    assert checks["external"] == []
    bad = [img for img in checks["images"] if not img["ok"]]
    assert bad == [], f"images that do not decode: {bad}"
    if expect_images:
        assert checks["images"], "no images in the page"
    missing = [link for link in checks["toc"] if not link["found"]]
    assert missing == [], f"table-of-contents links without a target: {missing}"
    if expect_toc:
        assert checks["toc"], "no table of contents"


# ---------------------------------------------------------------------------- tiny report


@pytest.fixture(scope="module")
def tiny_pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from test_reports import _tiny_notebook, _tiny_spec  # helpers, not fixtures

    base = tmp_path_factory.mktemp("browser-tiny")
    spec = reports.register_report(_tiny_spec(_tiny_notebook(base / "tiny.ipynb")), replace=True)
    ok = reports.run(spec, params={"n": 5}, out=base / "out", log=lambda line: None)
    with pytest.raises(reports.ReportFailedError) as info:
        reports.run(spec, params={"fail": True}, out=base / "out", log=lambda line: None)
    return {"report": ok.html, "latest": ok.latest, "failed": info.value.failed_html}


@pytest.mark.slow
def test_tiny_report_renders_cleanly(browser: str, tiny_pages: dict[str, Path]) -> None:
    checks = open_page(browser, tiny_pages["report"], ARTIFACTS / "tiny-report.png")
    assert_page_is_sound(checks, expect_images=True, expect_toc=True)
    assert checks["header"] and checks["footer"]
    assert [t["text"] for t in checks["toc"]] == ["First section", "Second section",
                                                  "Second section"]
    assert (ARTIFACTS / "tiny-report.png").stat().st_size > 10_000


@pytest.mark.slow
def test_failed_page_renders_cleanly(browser: str, tiny_pages: dict[str, Path]) -> None:
    checks = open_page(browser, tiny_pages["failed"], ARTIFACTS / "tiny-failed.png")
    assert_page_is_sound(checks, expect_images=True, expect_toc=True)
    assert checks["title"].startswith("FAILED")


# ---------------------------------------------------------------------------- value report


@pytest.fixture(scope="module")
def value_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("browser-value")
    result = reports.run(
        "value", data="cdnow-sample",
        params={"calibration_end": "1997-09-30", "observation_end": "1998-06-30", "n_draws": 50},
        out=out, log=lambda line: None,
    )
    keep = ARTIFACTS / "value-report.html"
    keep.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(result.html, keep)
    return result.html


@pytest.mark.slow
def test_value_report_renders_cleanly(browser: str, value_page: Path) -> None:
    checks = open_page(browser, value_page, ARTIFACTS / "value-report.png")
    assert_page_is_sound(checks, expect_images=True, expect_toc=True)
    assert checks["header"] and checks["footer"]
    assert len(checks["images"]) >= 6
    assert all(img["alt"] and "No description" not in img["alt"] for img in checks["images"])
    toc = " | ".join(t["text"] for t in checks["toc"])
    for section in ("Summary", "Customer base", "Models", "Value", "Rule of thumb", "Exports"):
        assert section in toc, toc
    assert value_page.stat().st_size < 5 * 1024 * 1024


# ---------------------------------------------------------------------------- programme report


@pytest.fixture(scope="module")
def program_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from custvalue.reports import program

    out = tmp_path_factory.mktemp("browser-program")
    result = program.demo(out=out, n_customers=1500)
    keep = ARTIFACTS / "program-report.html"
    keep.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(result.html, keep)
    return result.html


@pytest.mark.slow
def test_program_report_renders_cleanly(browser: str, program_page: Path) -> None:
    """The programme-effect report (make demo's simulated club) opens without console errors,
    every plot decodes and has a description, the sections are in the table of contents and
    no code is shown."""
    checks = open_page(browser, program_page, ARTIFACTS / "program-report.png")
    assert_page_is_sound(checks, expect_images=True, expect_toc=True)
    assert checks["header"] and checks["footer"]
    assert len(checks["images"]) >= 3  # cohorts, raw means, event study
    assert all(img["alt"] and "No description" not in img["alt"] for img in checks["images"])
    toc = " | ".join(t["text"] for t in checks["toc"])
    for section in ("What was estimated", "Timing and cohort sizes", "Raw means around joining",
                    "The estimators side by side", "Effect by time since joining",
                    "Falsification", "Return on investment", "Threats to validity"):
        assert section in toc, toc
    page = program_page.read_text()
    assert "program_report." not in page and "import " not in page  # no code shown
    assert "true effect is" in page
    assert program_page.stat().st_size < 5 * 1024 * 1024
