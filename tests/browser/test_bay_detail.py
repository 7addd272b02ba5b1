"""The bay detail page (/bay/<id>) in real Chromium against a real `bedside run` with simulated bays: trends
backfilled from the recorded history, annotations that reach other screens live, acknowledging and pausing an
alarm, the patient's own alarm limits (and the server's reason when it refuses one), and a viewer who can look
but not act (the server refuses, not only the page).

What the page exposes for tests
  body[data-connection]           "connecting" | "live" | "disconnected"; #offline-banner shown when not live.
  #trends[data-loaded="true"]     the history has been fetched once.
  #trends [data-vital="<group>"]  one chart per vital group the bay has ("hr", "pr", "spo2", "nibp" (sys/dia/map
                                  as points), "rr", "etco2", "temp", "pi", "abp"), with data-points (samples in the
                                  window), data-first (the oldest one's time), data-limits ("spo2.low=90 ..."),
                                  data-bands (alarm periods drawn), data-annotations (markers drawn).
  [data-range]                    "900" | "3600" | "14400" | "session" buttons, aria-pressed.
  #alarms [data-alarm-id]         data-priority, data-acknowledged, data-paused; an "Acknowledge" button (nurse).
  #audio-state[data-paused]       "AUDIO PAUSED m:ss" while paused; #audio-pause / #audio-resume (nurse).
  #annotations [data-annotation-id]  newest first, data-kind; quick buttons #annotate [data-kind]; #note-form.
  #limits form[data-vital]        [data-effective="<vital>.low|high"] (the server's effective limit), inputs
                                  input[name="<vital>.low|high"] and a "Profile value" button [data-reset] (nurse),
                                  the refusal in [role=alert].
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, expect

from monitor.mosquitto import free_port
from tests.browser.conftest import VIEWPORT, create_token, running_bedside

pytestmark = [pytest.mark.timeout(120), pytest.mark.browser, pytest.mark.service]

CONFIG = """
site = "bay-detail-test"
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
duration = 3600
"""

HISTORY_BEFORE_OPEN_S = 8.0  # the server records this long before the first page opens


@dataclass(frozen=True)
class Server:
    base: str
    viewer: str
    nurse: str
    started: float
    proc: subprocess.Popen[bytes]

    def api(self, method: str, path: str, token: str, **kw: Any) -> httpx.Response:
        return httpx.request(method, f"{self.base}{path}", headers={"Authorization": f"Bearer {token}"},
                             timeout=10, **kw)


@contextmanager
def two_bay_bedside(tmp: Path) -> Iterator[Server]:
    port = free_port()
    config = tmp / "clinic.toml"
    config.write_text(CONFIG.format(port=port))
    started = time.time()
    with running_bedside(config, port) as (base, proc):
        data = tmp / "data"
        yield Server(base, create_token(data, "viewer", "station"), create_token(data, "nurse", "nurse ann"),
                     started, proc)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with two_bay_bedside(tmp_path_factory.mktemp("bay-detail")) as srv:
        yield srv


class Screens:
    """Pages in their own browser contexts (own cookie jars), each logged in with a token; errors collected."""

    def __init__(self, browser: Browser) -> None:
        self.browser = browser
        self.contexts: list[BrowserContext] = []
        self.errors: list[str] = []

    def open_bay(self, srv: Server, token: str, bay: str, *, wait_live: bool = True) -> Page:
        context = self.browser.new_context(viewport=VIEWPORT)
        self.contexts.append(context)
        page = context.new_page()

        def on_console(msg: ConsoleMessage) -> None:
            if msg.type == "error":
                self.errors.append(f"console: {msg.text}")

        page.on("console", on_console)
        page.on("pageerror", lambda exc: self.errors.append(f"uncaught: {exc}"))
        page.goto(f"{srv.base}/login?next=/bay/{bay}#token={token}")
        page.wait_for_url(f"{srv.base}/bay/{bay}", timeout=10_000)
        if wait_live:
            page.wait_for_selector('body[data-connection="live"]', timeout=10_000)
            page.wait_for_selector('#trends[data-loaded="true"]', timeout=10_000)
        return page

    def close(self) -> None:
        for c in self.contexts:
            c.close()


@pytest.fixture
def screens(browser: Browser) -> Iterator[Screens]:
    s = Screens(browser)
    try:
        yield s
    finally:
        s.close()


def unexpected(errors: list[str], *allowed: str) -> list[str]:
    """The page's errors less the browser's own log lines for refusals the test asked for (e.g. "status of 400")."""
    return [e for e in errors if not ("Failed to load resource" in e and any(a in e for a in allowed))]


def charts(page: Page) -> dict[str, dict[str, str]]:
    result: dict[str, dict[str, str]] = page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('#trends [data-vital]')].map(e => [
               e.dataset.vital, {points: e.dataset.points, first: e.dataset.first, limits: e.dataset.limits,
                                 bands: e.dataset.bands, annotations: e.dataset.annotations,
                                 canvas: String(e.querySelectorAll('canvas').length)}]))""")
    return result


def settings(srv: Server, bay: str) -> dict[str, Any]:
    resp = srv.api("GET", f"/api/bays/{bay}/alarm-settings", srv.viewer)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def test_trends_are_backfilled_from_history_for_every_vital_the_bay_has(screens: Screens, server: Server) -> None:
    time.sleep(max(0.0, server.started + HISTORY_BEFORE_OPEN_S - time.time()))
    opened = time.time()
    page = screens.open_bay(server, server.nurse, "bay2")
    shown = charts(page)
    # the monitor's vitals, NIBP on one chart of spot measurements; nothing the bay does not have
    assert set(shown) == {"hr", "pr", "spo2", "nibp", "rr", "etco2", "temp"}, shown
    for group in ("hr", "spo2", "rr", "etco2"):
        # points from before the page opened: they came from the recorded history, not the websocket
        assert int(shown[group]["points"]) >= 5, shown[group]
        assert float(shown[group]["first"]) < opened - 4, (group, shown[group], opened)
        assert shown[group]["canvas"] == "1"
    assert int(shown["nibp"]["points"]) >= 1  # the cuff's first cycle
    # the effective limits of the bay's profile are drawn; the desaturation is a band on the SpO2 chart
    expect(page.locator('#trends [data-vital="spo2"]')).to_have_attribute("data-limits", "spo2.low=90",
                                                                           timeout=5_000)
    expect(page.locator('#trends [data-vital="nibp"]')).to_have_attribute(
        "data-limits", re.compile(r"\bnibp_sys\.low=90 nibp_sys\.high=180 nibp_dia\.low=40 nibp_dia\.high=110\b"))
    expect(page.locator('#trends [data-vital="spo2"]')).not_to_have_attribute("data-bands", "0", timeout=10_000)
    assert page.locator('#trends [data-vital="hr"]').get_attribute("data-bands") == "0"

    # a bay with only an oximeter: only its vitals
    other = screens.open_bay(server, server.viewer, "bay1")
    assert set(charts(other)) == {"spo2", "pr", "pi"}, charts(other)

    # live values keep coming after the backfill
    before = int(charts(page)["hr"]["points"])
    page.wait_for_function(
        """(n) => +document.querySelector('#trends [data-vital="hr"]').dataset.points > n + 2""",
        arg=before, timeout=10_000)

    # the window buttons: one pressed at a time, the window grows
    assert page.locator('[data-range="900"]').get_attribute("aria-pressed") == "true"
    page.click('[data-range="3600"]')
    expect(page.locator('[data-range="3600"]')).to_have_attribute("aria-pressed", "true")
    assert page.locator('[data-range="900"]').get_attribute("aria-pressed") == "false"
    page.click('[data-range="session"]')  # no session admitted: the last 12 h
    expect(page.locator('[data-range="session"]')).to_have_attribute("aria-pressed", "true")
    page.wait_for_selector('#trends:not([data-loading="true"])')
    assert float(charts(page)["hr"]["first"]) < opened - 4
    assert "no patient admitted" in page.locator("#patient").inner_text()
    assert screens.errors == []


def test_annotations_are_added_by_a_nurse_and_reach_another_screen_live(screens: Screens, server: Server) -> None:
    nurse = screens.open_bay(server, server.nurse, "bay1")
    station = screens.open_bay(server, server.viewer, "bay1")
    expect(station.locator("#annotate")).to_be_hidden()  # a viewer cannot annotate

    nurse.click('#annotate [data-kind="nausea"]')
    for page in (nurse, station):
        row = page.locator('#annotations [data-kind="nausea"]')
        expect(row).to_have_count(1, timeout=5_000)
        expect(row).to_contain_text("Nausea")
        expect(row).to_contain_text("nurse ann")

    nurse.click("#note-form button")  # an empty note is not sent: the page says so
    expect(nurse.locator("#annotate-error")).to_contain_text("Write the note")
    nurse.fill('#note-form input[name="text"]', "asked for a blanket")
    nurse.click("#note-form button")
    for page in (nurse, station):
        first = page.locator("#annotations [data-annotation-id]").first  # newest first
        expect(first).to_contain_text("asked for a blanket", timeout=5_000)
        expect(first).to_have_attribute("data-kind", "note")
        expect(page.locator("#annotations [data-annotation-id]")).to_have_count(2)
    expect(nurse.locator('#note-form input[name="text"]')).to_have_value("")
    expect(nurse.locator("#annotate-error")).to_be_hidden()
    # markers on the charts, within the next redraw
    expect(station.locator('#trends [data-vital="spo2"]')).to_have_attribute("data-annotations", "2", timeout=3_000)

    # the server recorded them, with who
    now = time.time()
    hist = server.api("GET", f"/api/bays/bay1/history?since={now - 600}&until={now + 5}", server.viewer).json()
    notes = {(n["kind"], n["text"], n["who"]) for n in hist["annotations"]}
    assert notes == {("nausea", "", "nurse ann"), ("note", "asked for a blanket", "nurse ann")}, notes
    assert screens.errors == []


def test_the_bay_page_sounds_every_bays_alarm_not_only_its_own(screens: Screens, server: Server) -> None:
    """A nurse who opens bay 1's page on the station display must still hear bay 2's desaturation; and a value
    that is not current shows no number here either."""
    page = screens.open_bay(server, server.viewer, "bay1")
    if page.locator("#sound-enable").is_visible():  # Chromium may or may not let a page start audio unasked
        page.click("#sound-enable")  # a real user gesture: browsers allow audio after one
    expect(page.locator("body")).to_have_attribute("data-sound", "on", timeout=5_000)
    expect(page.locator("body")).to_have_attribute("data-sounding", "high", timeout=20_000)  # bay 2's SpO2 LOW
    assert page.locator("#alarms [data-alarm-id]").count() == 0  # bay 1 itself has no alarm
    pulses = page.evaluate("() => window.__bedsideAudio.pulses")
    page.wait_for_function("(n) => window.__bedsideAudio.pulses > n", arg=pulses, timeout=5_000)
    assert screens.errors == []


def test_a_nurse_pauses_audio_and_acknowledges_an_alarm_from_the_page(screens: Screens, server: Server) -> None:
    page = screens.open_bay(server, server.nurse, "bay2")
    other = screens.open_bay(server, server.viewer, "bay2")
    row = page.locator('#alarms [data-alarm-id="spo2_low"]')
    expect(row).to_have_attribute("data-acknowledged", "false", timeout=20_000)
    expect(row).to_have_attribute("data-priority", "high")
    expect(row).to_contain_text("!!! SpO2 LOW")

    page.click("#audio-pause")
    expect(page.locator("#audio-state")).to_have_attribute("data-paused", "true", timeout=5_000)
    expect(page.locator("#audio-state")).to_contain_text("AUDIO PAUSED 1:")  # counting down from 2:00
    expect(other.locator('#alarms [data-alarm-id="spo2_low"]')).to_have_attribute("data-paused", "true",
                                                                                   timeout=3_000)
    page.click("#audio-resume")
    expect(page.locator("#audio-state")).to_have_attribute("data-paused", "false", timeout=5_000)
    expect(page.locator("#audio-pause")).to_be_visible()

    row.get_by_role("button", name="Acknowledge").click()
    expect(row).to_have_attribute("data-acknowledged", "true", timeout=5_000)
    expect(row).to_contain_text("ACK nurse ann")
    expect(row.get_by_role("button", name="Acknowledge")).to_be_hidden()
    # the engine's new state, on another screen and in the server's snapshot
    expect(other.locator('#alarms [data-alarm-id="spo2_low"]')).to_have_attribute("data-acknowledged", "true",
                                                                                   timeout=3_000)
    snap = server.api("GET", "/api/bays", server.viewer).json()
    bay2 = next(b for b in snap["bays"] if b["id"] == "bay2")
    alarm = next(a for a in bay2["alarms"] if a["id"] == "spo2_low")
    assert alarm["acknowledged"] is True and alarm["acknowledged_by"] == "nurse ann", alarm
    assert screens.errors == []


def test_a_nurse_sets_the_patients_limits_and_sees_a_refusal(screens: Screens, server: Server) -> None:
    page = screens.open_bay(server, server.nurse, "bay1")
    spo2 = page.locator('#limits form[data-vital="spo2"]')
    expect(spo2.locator('[data-effective="spo2.low"]')).to_have_text("90", timeout=10_000)

    # another vital's patient limit first: it must survive the SpO2 change (PUT replaces all overrides)
    pr = page.locator('#limits form[data-vital="pr"]')
    pr.locator('input[name="pr.high"]').fill("140")
    pr.get_by_role("button", name="Set").click()
    expect(pr.locator('[data-effective="pr.high"]')).to_have_text("140", timeout=5_000)

    spo2.locator('input[name="spo2.low"]').fill("85")
    spo2.get_by_role("button", name="Set").click()
    expect(spo2.locator('[data-effective="spo2.low"]')).to_have_text("85", timeout=5_000)
    expect(spo2).to_have_attribute("data-overridden", "true")
    expect(page.locator('#trends [data-vital="spo2"]')).to_have_attribute("data-limits", "spo2.low=85",
                                                                           timeout=3_000)
    s = settings(server, "bay1")
    assert s["effective"]["vitals"]["spo2"]["low"] == 85
    assert s["overrides"] == {"pr": {"high": 140}, "spo2": {"low": 85}}, s["overrides"]

    # a value the server refuses: its reason is shown, nothing changes
    spo2.locator('input[name="spo2.low"]').fill("150")
    spo2.get_by_role("button", name="Set").click()
    alert = spo2.locator("[role=alert]")
    expect(alert).to_be_visible(timeout=5_000)
    expect(alert).to_contain_text("400")
    expect(alert).to_contain_text("150")
    expect(spo2.locator('[data-effective="spo2.low"]')).to_have_text("85")
    assert settings(server, "bay1")["effective"]["vitals"]["spo2"]["low"] == 85

    # back to the profile's value
    spo2.locator("[data-reset]").click()
    expect(spo2.locator('[data-effective="spo2.low"]')).to_have_text("90", timeout=5_000)
    expect(alert).to_be_hidden()
    expect(spo2.locator('input[name="spo2.low"]')).to_have_value("90")
    assert settings(server, "bay1")["overrides"] == {"pr": {"high": 140}}

    # another profile for this bay
    expect(page.locator("#profile-name")).to_have_text("ketamine-infusion")
    page.select_option('#profile-form select[name="profile"]', "recovery")
    page.click("#profile-form button")
    expect(page.locator("#profile-name")).to_have_text("recovery", timeout=5_000)
    assert settings(server, "bay1")["profile"] == "recovery"
    assert unexpected(screens.errors, "status of 400") == []


def test_a_viewer_sees_no_action_controls_and_the_server_refuses_their_acknowledge(
        screens: Screens, server: Server) -> None:
    page = screens.open_bay(server, server.viewer, "bay2")
    expect(page.locator('#alarms [data-alarm-id="spo2_low"]')).to_have_count(1, timeout=20_000)
    expect(page.locator('#limits form[data-vital="spo2"] [data-effective="spo2.low"]')).to_have_text(
        "90", timeout=10_000)  # the limits are shown ...
    assert page.locator("button.action:visible").count() == 0  # ... but nothing to act with
    assert page.locator("#limits input").count() == 0
    expect(page.locator("#annotate")).to_be_hidden()
    expect(page.locator("#profile-form")).to_be_hidden()

    # the server enforces it: with the viewer's bearer token and with the page's own session and CSRF token
    refused = server.api("POST", "/api/bays/bay2/alarms/spo2_low/acknowledge", server.viewer)
    assert refused.status_code == 403, refused.text
    status = page.evaluate(
        """() => import('/static/api.js').then(m => m.api('POST', '/api/bays/bay2/alarms/spo2_low/acknowledge')
                   .then(() => 200, (e) => [e.status, e.detail]))""")
    assert status == [403, "needs role nurse"], status
    note = server.api("POST", "/api/bays/bay2/annotations", server.viewer, json={"kind": "nausea", "text": ""})
    assert note.status_code == 403, note.text

    missing = screens.open_bay(server, server.viewer, "no-such-bay", wait_live=False)
    expect(missing.locator("#page-error")).to_contain_text("no-such-bay", timeout=10_000)
    assert unexpected(screens.errors, "status of 403") == []


def test_losing_the_server_shows_the_banner(screens: Screens, tmp_path: Path) -> None:
    with two_bay_bedside(tmp_path) as srv:
        page = screens.open_bay(srv, srv.nurse, "bay1")
        expect(page.locator("#offline-banner")).to_be_hidden()
        srv.proc.terminate()
        srv.proc.wait(timeout=10)
        t0 = time.monotonic()
        page.wait_for_selector('body[data-connection="disconnected"]', timeout=3_000)
        expect(page.locator("#offline-banner")).to_be_visible(timeout=3_000)
        assert time.monotonic() - t0 < 3
        expect(page.locator("#offline-banner")).to_have_text("NOT CONNECTED \u2014 alarms are not being shown")
