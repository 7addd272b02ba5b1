"""The nurse's page in real Chromium against a real bedside: it logs in with a token, shows every bay, values that
change, and the alarm the engine raised (colour attribute and text), and refuses to show data without a login."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page

from monitor.mosquitto import free_port
from tests.browser.conftest import create_token, login, running_bedside

pytestmark = [pytest.mark.timeout(120), pytest.mark.browser, pytest.mark.service]


CONFIG = """
site = "browser-test"
data_dir = "data"
[http]
port = {port}
[mqtt]
private = true
[[bays]]
id = "bay1"
name = "Bay 1"
[[bays.devices]]
id = "masimo-1"
driver = "masimo"
simulate = true
[[bays]]
id = "bay2"
name = "Bay 2"
[[bays.devices]]
id = "monitor-2"
driver = "mqtt"
simulate = true
[[bays.simulated_patient.episodes]]
vital = "spo2"
value = 80
start = 4
duration = 600
"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    port = free_port()
    config = tmp_path / "clinic.toml"
    config.write_text(CONFIG.format(port=port))
    with running_bedside(config, port) as (base, _):
        data = tmp_path / "data"
        yield base, create_token(data, "viewer", "station"), create_token(data, "nurse", "nurse ann")


def numeric(page: Page, bay: str, vital: str) -> str:
    return page.locator(f'[data-bay="{bay}"] [data-vital="{vital}"]').first.inner_text().strip()


def test_page_shows_live_changing_values_and_the_engines_alarm(
    browser: Browser, page: Page, page_errors: list[str], server: tuple[str, str, str]
) -> None:
    base, token, nurse = server
    first = browser.new_page()
    first.goto(f"{base}/")
    first.wait_for_url(f"{base}/login")  # no login: no data, the page sends us to log in
    first.close()

    login(page, base, token)
    assert page.locator("[data-bay]").count() == 2
    page.wait_for_function(
        """() => ['bay1', 'bay2'].every(b => /^\\d/.test(
               document.querySelector(`[data-bay="${b}"] [data-vital="spo2"]`)?.textContent.trim() ?? ''))""",
        timeout=15_000)

    # values change while we watch: collect what the tiles show over a few seconds
    seen: dict[str, set[str]] = {"bay1:pr": set(), "bay2:hr": set(), "bay2:etco2": set()}
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not all(len(v) >= 2 for v in seen.values()):
        for key in seen:
            bay, vital = key.split(":")
            seen[key].add(numeric(page, bay, vital))
        time.sleep(0.5)
    assert all(len(v) >= 2 for v in seen.values()), seen
    assert all(s.replace(".", "").isdigit() for v in seen.values() for s in v), seen

    # bay 2's patient desaturates to 80 %: the engine's high-priority SpO2 alarm shows on its tile, bay 1 stays calm
    page.wait_for_selector('[data-bay="bay2"][data-alarm="high"]', timeout=20_000)
    tile = page.locator('[data-bay="bay2"]')
    assert "SpO2 LOW" in tile.inner_text()
    assert page.locator('[data-bay="bay1"]').get_attribute("data-alarm") == "none"

    # a nurse acknowledges it elsewhere (the API): the engine's new state reaches this page, with who
    line = tile.locator('[data-alarm-id="spo2_low"]')
    assert line.get_attribute("data-acknowledged") == "false"
    viewer = httpx.post(f"{base}/api/bays/bay2/alarms/spo2_low/acknowledge",
                        headers={"Authorization": f"Bearer {token}"})
    assert viewer.status_code == 403  # the page's viewer cannot
    ack = httpx.post(f"{base}/api/bays/bay2/alarms/spo2_low/acknowledge", headers={"Authorization": f"Bearer {nurse}"})
    assert ack.status_code == 200, ack.text
    page.wait_for_selector('[data-bay="bay2"] [data-alarm-id="spo2_low"][data-acknowledged="true"]', timeout=5_000)
    assert "ACK nurse ann" in line.inner_text()
    assert page_errors == []  # no script error, no CSP violation


def test_api_and_page_data_need_a_login(server: tuple[str, str, str]) -> None:
    base, _, _ = server
    assert httpx.get(f"{base}/api/bays").status_code == 401
    assert httpx.get(f"{base}/", follow_redirects=False).status_code == 303
