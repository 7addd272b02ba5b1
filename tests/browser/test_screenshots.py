"""Screenshots of the demo for the docs: the central view with an alarm on bay 3 and bay 3's detail page.

Runs `bedside demo` as a newcomer would, logs in with the link it prints and saves docs/screenshots/central-view.png
and docs/screenshots/bay-detail.png (the README and docs/dashboard.md show them). The demo's bay 3 desaturates
45 s after the start, so this test waits for that alarm: the pictures always show an alarm as it really looks.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page

from monitor.mosquitto import free_port

pytestmark = [pytest.mark.timeout(180), pytest.mark.browser]

SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(base URL, the nurse login link the demo prints)."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "monitor.cli", "demo", "--bays", "6", "--port", str(port),
                             "--data-dir", str(tmp_path / "data")], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        link = None
        deadline = time.monotonic() + 30
        while link is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line or proc.poll() is None, "the demo exited"
            if m := re.search(r"log in at (http://\S+/login#token=\S+)", line):
                link = m.group(1)
        assert link is not None, "the demo printed no login link within 30 s"
        base = f"http://127.0.0.1:{port}"
        while True:
            try:
                if httpx.get(f"{base}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline and proc.poll() is None, "the demo did not serve within 30 s"
            time.sleep(0.2)
        yield base, link
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout:
            proc.stdout.close()


def test_screenshots_of_the_demo(page: Page, demo: tuple[str, str]) -> None:
    base, link = demo
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.goto(link)
    page.wait_for_url(f"{base}/", timeout=10_000)
    page.wait_for_selector('body[data-connection="live"]', timeout=10_000)
    if page.locator("#sound-enable").is_visible():
        page.click("#sound-enable")  # as a nurse would at the start of a shift
    page.wait_for_selector('body[data-sound="on"]', timeout=5_000)
    page.wait_for_selector('[data-bay="bay3"][data-alarm="high"]', timeout=90_000)  # the demo's desaturation
    page.wait_for_selector('body[data-sounding="high"]', timeout=5_000)
    page.wait_for_timeout(1500)  # let the trends draw
    page.screenshot(path=str(SHOTS / "central-view.png"))
    assert (SHOTS / "central-view.png").stat().st_size > 10_000

    page.goto(f"{base}/bay/bay3")
    page.wait_for_selector('body[data-connection="live"]', timeout=10_000)
    page.wait_for_selector('[data-alarm-id="spo2_low"]', timeout=10_000)
    page.wait_for_selector("#trends [data-vital]", timeout=10_000)
    page.wait_for_timeout(2500)
    page.screenshot(path=str(SHOTS / "bay-detail.png"), full_page=True)
    assert (SHOTS / "bay-detail.png").stat().st_size > 10_000
