"""report.html opened from disk in headless Chromium (Debian chromium + chromium-driver).

Driven through chromedriver's W3C WebDriver HTTP API by a tiny client (urllib, no extra package):
every image must decode (naturalWidth > 0), the console must stay free of errors, the verdict text
must be visible, and a full-page screenshot is saved as a test artifact (its path is printed).

Skips locally when chromium or chromedriver is missing; fails instead under CI=true.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.factories import BF16, CPU, XLA, png_size, result, seed_suite, write
from tests.helpers import IN_CI, tfparity

pytestmark = pytest.mark.browser

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,900",
]


def _binaries() -> tuple[str, str]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not (chromium and driver):
        message = "headless Chromium needs the Debian packages chromium and chromium-driver (.ci/setup-browser.sh)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return chromium, driver


class WebDriver:
    """The handful of W3C WebDriver commands these tests need, over plain HTTP."""

    def __init__(self, chromium: str, driver: str, user_data_dir: str) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.base = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen(
            [driver, f"--port={port}", "--allowed-ips=127.0.0.1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                if self._call("GET", "/status").get("ready"):
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.proc.kill()
                raise RuntimeError(f"chromedriver did not become ready on port {port}")
            time.sleep(0.1)
        caps = {
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "goog:loggingPrefs": {"browser": "ALL"},
                    "goog:chromeOptions": {
                        "binary": chromium,
                        "args": [*CHROMIUM_FLAGS, f"--user-data-dir={user_data_dir}"],
                    },
                }
            }
        }
        try:
            self.session = self._call("POST", "/session", caps)["sessionId"]
        except Exception:
            self.proc.kill()
            raise

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            self.base + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return json.load(resp)["value"]
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"WebDriver {method} {path}: {exc.code} {exc.read()[:500]!r}") from None

    def cmd(self, method: str, path: str, body: Any = None) -> Any:
        return self._call(method, f"/session/{self.session}{path}", body)

    def open(self, url: str) -> None:
        self.cmd("POST", "/url", {"url": url})

    def js(self, script: str) -> Any:
        return self.cmd("POST", "/execute/sync", {"script": script, "args": []})

    def console_log(self) -> list[dict[str, Any]]:
        return self.cmd("POST", "/se/log", {"type": "browser"})

    def screenshot_full_page(self) -> bytes:
        shot = self.cmd(
            "POST",
            "/goog/cdp/execute",
            {"cmd": "Page.captureScreenshot", "params": {"format": "png", "captureBeyondViewport": True}},
        )
        return base64.b64decode(shot["data"])

    def quit(self) -> None:
        try:
            self.cmd("DELETE", "")
        finally:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    chromium, driver = _binaries()
    profile = tempfile.mkdtemp(prefix="tfparity-chromium-")  # a fresh profile for every test module
    wd = WebDriver(chromium, driver, profile)
    try:
        yield wd
    finally:
        wd.quit()
        shutil.rmtree(profile, ignore_errors=True)


IMAGES_JS = (
    "return Array.from(document.images).map(i => ({complete: i.complete, width: i.naturalWidth, "
    "height: i.naturalHeight, alt: i.alt}));"
)


def page_problems(wd: WebDriver) -> list[str]:
    """Everything a reader would notice as broken: undecodable images, console errors."""
    problems = []
    for img in wd.js(IMAGES_JS):
        if not img["complete"] or img["width"] <= 0:
            problems.append(f"image {img['alt']!r} did not decode")
    problems += [f"console {e['level']}: {e['message']}" for e in wd.console_log() if e["level"] == "SEVERE"]
    return problems


def test_report_renders_in_headless_chromium(browser: WebDriver, tmp_path: Path) -> None:
    results = seed_suite(paths=(CPU, XLA, BF16))
    results.append(result("batchnorm", path=BF16, seed=3, status="failed"))
    src = write(results, tmp_path / "results")
    out = tmp_path / "report"
    proc = tfparity("report", str(src), "-o", str(out))
    assert proc.returncode == 0, proc.stderr

    browser.open((out / "report.html").as_uri())
    assert page_problems(browser) == []
    images = browser.js(IMAGES_JS)
    assert [i["alt"] for i in images] == [
        "Train vs validation accuracy",
        "Throughput per path",
        "Step-time distribution",
        "Memory",
    ]
    assert all(i["width"] > 500 and i["height"] > 200 for i in images)
    verdict = browser.js("return document.getElementById('verdict-value').innerText")
    assert verdict in ("Verdict: PASS", "Verdict: WARN", "Verdict: FAIL")
    text = browser.js("return document.body.innerText")
    for heading in ("Per-path results", "The seed experiment", "Plots", "Failed runs", "Environment and provenance"):
        assert heading in text
    assert browser.js("return document.title").startswith("tfparity report — ")
    # Nothing reached out of the page: every resource the page loaded is the page itself or data:.
    urls = browser.js("return performance.getEntriesByType('resource').map(e => e.name)")
    assert all(u.startswith("data:") for u in urls), urls

    shot = browser.screenshot_full_page()
    width, height = png_size(shot)
    assert width >= 1000 and height > 2500  # tables and four plots: a long page
    artifact_dir = Path(os.environ.get("TFPARITY_ARTIFACTS", tempfile.gettempdir()))
    artifact_dir.mkdir(parents=True, exist_ok=True)
    artifact = artifact_dir / "tfparity-report-screenshot.png"
    artifact.write_bytes(shot)
    (tmp_path / "report-screenshot.png").write_bytes(shot)
    print(f"screenshot: {artifact}")


def test_the_checks_catch_a_broken_page(browser: WebDriver, tmp_path: Path) -> None:
    """Negative control: a missing image and a console error are both reported."""
    page = tmp_path / "broken.html"
    page.write_text(
        '<!DOCTYPE html><html><body><p>Verdict: PASS</p><img alt="gone" src="missing.png">'
        "<script>console.error('boom from the page')</script></body></html>"
    )
    browser.open(page.as_uri())
    problems = page_problems(browser)
    assert "image 'gone' did not decode" in problems
    assert any("boom from the page" in p for p in problems)
