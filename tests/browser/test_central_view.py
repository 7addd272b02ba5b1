"""The central view `/` in real Chromium against a real `bedside run` with simulated bays (issue 5, scope 1, 2, 4).

- An alarm the engine raises from a simulated desaturation shows within 2 s of the engine's event, on its tile and
  in the station-wide list, with its priority, symbol and text; the sound follows the loudest audible alarm of all
  bays (the server's snapshot is the oracle), plays the IEC 60601-1-8 high-priority burst, counts an audio pause
  down, sounds again when the pause ends, and stops when a nurse acknowledges through the API.
- A bay whose device goes silent (its simulator process is stopped with SIGSTOP: the pty stays open, nothing is
  written) shows "---" and NO DATA, never its old number, and shows values again when the device comes back.
- Stopping the server shows the NOT CONNECTED banner and sounds the connection-loss signal within 3 s; when the
  server is back the page resynchronises by itself.
- Sound starts only after the control is tapped, and a browser that cannot play says so.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page

from monitor.mosquitto import free_port
from tests.browser.conftest import VIEWPORT, login, tile_state
from tests.storage import add_storage_to_config

pytestmark = [pytest.mark.timeout(150), pytest.mark.browser, pytest.mark.service]

RANK = {"none": 0, "low": 1, "medium": 2, "high": 3}
DESAT_AT = 25  # s after bedside starts: late enough that the page is open before the alarm

HEAD = """
site = "central-view-test"
data_dir = "data"
[http]
port = {port}
[mqtt]
private = true
"""

MQTT_BAY = """
[[bays]]
id = "{bay}"
name = "{name}"
[[bays.devices]]
id = "monitor-{bay}"
driver = "mqtt"
simulate = true
"""

DESAT = """
[[bays.simulated_patient.episodes]]
vital = "spo2"
value = 80
start = {at}
duration = 900
"""

MASIMO_BAY = """
[[bays]]
id = "{bay}"
name = "{name}"
[[bays.devices]]
id = "masimo-{bay}"
driver = "masimo"
{where}
silent_after = 3
"""


class Bedside:
    """A `bedside run` of `config` in its own directory; start, stop (SIGTERM) and start again on the same port."""

    def __init__(self, root: Path, config: str, port: int) -> None:
        self.root = root
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.config = root / "clinic.toml"
        self.config.write_text(config)
        add_storage_to_config(self.config)  # the PostgreSQL pass: its data dir's test database
        self.proc: subprocess.Popen[bytes] | None = None
        self.tokens: dict[str, str] = {}

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "monitor.cli", "run", "--config", str(self.config)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 25
        while True:
            assert self.proc.poll() is None, "bedside exited"
            with suppress(httpx.HTTPError):
                if httpx.get(f"{self.base}/api/health", timeout=1).status_code == 200:
                    return
            assert time.monotonic() < deadline, "bedside did not serve within 25 s"
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None

    def token(self, role: str) -> str:
        if role not in self.tokens:
            out = subprocess.run([sys.executable, "-m", "monitor.cli", "token", "create", "--data-dir",
                                  str(self.root / "data"), "--role", role, "--label", f"{role} ann"],
                                 capture_output=True, text=True, check=True)
            self.tokens[role] = out.stdout.strip().splitlines()[-1]
        return self.tokens[role]

    def call(self, method: str, path: str, role: str = "viewer", body: Any = None) -> httpx.Response:
        return httpx.request(method, f"{self.base}{path}", json=body, timeout=5,
                             headers={"Authorization": f"Bearer {self.token(role)}"})

    def loudest_audible(self) -> str:
        """The oracle: the highest priority of the alarms the server says are audible, over all bays."""
        snap = self.call("GET", "/api/bays").json()
        best = "none"
        for bay in snap["bays"]:
            for a in bay["alarms"]:
                if a["audible"] and RANK[a["priority"]] > RANK[best]:
                    best = a["priority"]
        return best


@pytest.fixture
def bedside(tmp_path: Path) -> Iterator[Callable[[str], Bedside]]:
    """Make (and start) a Bedside for a config body (HEAD is added); every one is stopped afterwards."""
    made: list[Bedside] = []

    def make(body: str) -> Bedside:
        port = free_port()
        b = Bedside(tmp_path, HEAD.format(port=port) + body, port)
        made.append(b)
        b.start()
        return b

    try:
        yield make
    finally:
        for b in made:
            b.stop()


@pytest.fixture
def masimo_pty() -> Iterator[subprocess.Popen[str]]:
    """A Masimo simulator on a pty of its own (`bedside simulate masimo --pty`); its first line is the path."""
    proc = subprocess.Popen([sys.executable, "-m", "monitor.cli", "simulate", "masimo", "--pty"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        yield proc
    finally:
        with suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGCONT)  # a stopped process only acts on SIGTERM once continued
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        if proc.stdout:
            proc.stdout.close()


def enable_sound(page: Page) -> None:
    """Tap the SOUND OFF control (a real user gesture) and wait until the page says the sound is on."""
    control = page.locator("#sound-enable")
    if page.evaluate("() => document.body.dataset.sound") == "off":  # Chromium sometimes lets audio start unasked
        assert control.is_visible()
        assert "SOUND OFF" in control.inner_text()
        control.click()
    page.wait_for_function("() => document.body.dataset.sound === 'on'", timeout=5_000)
    assert not control.is_visible()
    assert page.locator("#sound-ind").is_visible()


def audio(page: Page) -> dict[str, Any]:
    state: dict[str, Any] = page.evaluate("() => JSON.parse(JSON.stringify(window.__bedsideAudio))")
    return state


def wait_sounding_matches_server(page: Page, bedside: Bedside, timeout_s: float = 3.0) -> str:
    """Wait until what the page sounds is the loudest audible alarm the server reports; return it."""
    deadline = time.monotonic() + timeout_s
    while True:
        expected = bedside.loudest_audible()
        shown = page.evaluate("() => document.body.dataset.sounding")
        if shown == expected:
            return expected
        assert time.monotonic() < deadline, f"page sounds {shown!r}, the server's loudest audible alarm is {expected!r}"
        time.sleep(0.2)


def bursts(log: list[dict[str, Any]], pattern: str) -> list[list[dict[str, Any]]]:
    """The logged pulses of `pattern`, grouped into bursts (a pause of more than 1.5 s between two pulses)."""
    out: list[list[dict[str, Any]]] = []
    for e in (e for e in log if e["pattern"] == pattern):
        if out and e["t"] - out[-1][-1]["t"] <= 1.5:
            out[-1].append(e)
        else:
            out.append([e])
    return out


def check_high_burst(log: list[dict[str, Any]], pattern: str = "high") -> None:
    """IEC 60601-1-8 high priority (reference/alarm-standards.md §1.3): 10 pulses grouped 3 + 2, pause, 3 + 2; td
    75-200 ms; spacing x 50-125 ms; 3rd->4th 2x + td; 5th->6th 0.35-1.30 s; next burst 2.5-15 s after."""
    groups = bursts(log, pattern)
    assert len(groups) >= 2, f"fewer than two {pattern} bursts logged: {groups}"
    b, after = groups[0], groups[1]
    assert len(b) == 10, f"a {pattern} burst has {len(b)} pulses, not 10"
    td = b[0]["td"]
    assert 0.075 <= td <= 0.2
    spacing = [b[i + 1]["t"] - b[i]["t"] - td for i in range(9)]
    x = spacing[0]
    assert 0.05 <= x <= 0.125
    for i in (0, 1, 3, 5, 6, 8):
        assert spacing[i] == pytest.approx(x, abs=0.01), spacing
    for i in (2, 7):
        assert spacing[i] == pytest.approx(2 * x + td, abs=0.01), spacing
    assert 0.35 <= spacing[4] <= 1.30, spacing
    assert 2.5 <= after[0]["t"] - (b[-1]["t"] + td) <= 15
    assert all(150 <= e["f"] <= 1000 for e in b)


def test_engine_alarm_is_shown_heard_paused_and_acknowledged(page: Page, page_errors: list[str],
                                                             bedside: Callable[[str], Bedside]) -> None:
    srv = bedside(MQTT_BAY.format(bay="bay1", name="Bay 1")
                  + MQTT_BAY.format(bay="bay2", name="Bay 2") + DESAT.format(at=DESAT_AT))
    login(page, srv.base, srv.token("viewer"))
    started = time.monotonic()

    # before anything: no patient admitted, links to the detail pages, sound off until tapped
    tile = page.locator('[data-bay="bay2"]')
    assert tile.locator(".patient").inner_text() == "no patient admitted"
    assert tile.locator("a.bay-link").get_attribute("href") == "/bay/bay2"
    enable_sound(page)
    assert page.evaluate("() => document.body.dataset.sounding") == "none"

    # note when the alarm first shows on the tile and in the station list (the browser's clock = the server's)
    page.evaluate("""() => {
        window.__seen = {};
        const sel = {tile: '[data-bay="bay2"] li.alarm[data-alarm-id="spo2_low"]',
                     station: '.station-alarm[data-alarm-bay="bay2"][data-alarm-id="spo2_low"]'};
        const look = () => { for (const [k, s] of Object.entries(sel)) {
            if (!(k in window.__seen) && document.querySelector(s)) window.__seen[k] = Date.now() / 1000; } };
        look();
        new MutationObserver(look).observe(document.body, {subtree: true, childList: true, attributes: true});
    }""")
    assert page.evaluate("() => window.__seen") == {}, "the alarm was there before the page was watching: start later"

    page.wait_for_function("() => 'tile' in window.__seen && 'station' in window.__seen", timeout=60_000)
    seen: dict[str, float] = page.evaluate("() => window.__seen")
    snap = srv.call("GET", "/api/bays").json()
    alarm = next(a for b in snap["bays"] if b["id"] == "bay2" for a in b["alarms"] if a["id"] == "spo2_low")
    for where, at in seen.items():
        assert -0.5 < at - alarm["since"] < 2.0, f"{where}: shown {at - alarm['since']:.2f} s after the engine's event"

    line = tile.locator('li.alarm[data-alarm-id="spo2_low"]')
    assert line.get_attribute("data-priority") == "high" == alarm["priority"]
    assert line.inner_text().startswith("!!! SpO2 LOW")
    assert tile.get_attribute("data-alarm") == "high"
    assert "!!! HIGH" in tile.locator(".alarm-badge").inner_text()
    entry = page.locator(".station-alarm").first  # high first
    assert entry.get_attribute("data-alarm-bay") == "bay2"
    assert entry.get_attribute("data-priority") == "high"
    assert entry.get_attribute("data-alarm-id") == "spo2_low"
    assert re.match(r"^!!! Bay 2 · SpO2 LOW .* · \d+ s$", entry.inner_text()), entry.inner_text()
    assert entry.locator("a").get_attribute("href") == "/bay/bay2"

    # the loudest audible alarm sounds, as the IEC high-priority burst
    assert wait_sounding_matches_server(page, srv) == "high"
    page.wait_for_function("() => window.__bedsideAudio.log.filter(e => e.pattern === 'high').length >= 11",
                           timeout=10_000)
    check_high_burst(audio(page)["log"])

    # audio pause: the tile counts down, the alarm is not audible, nothing high sounds
    r = srv.call("POST", "/api/bays/bay2/audio-pause", "nurse", {"seconds": 100})
    assert r.status_code == 200, r.text
    paused = tile.locator(".audio-paused")
    paused.wait_for(state="visible", timeout=2_000)
    m = re.fullmatch(r"AUDIO PAUSED (\d+):(\d\d)", paused.inner_text())
    assert m and 97 <= int(m[1]) * 60 + int(m[2]) <= 100, paused.inner_text()
    assert wait_sounding_matches_server(page, srv) != "high"
    assert line.get_attribute("data-audible") == "false"
    assert "AUDIO PAUSED 1:" in page.locator('.station-alarm[data-alarm-id="spo2_low"]').inner_text()
    first = int(paused.get_attribute("data-seconds") or 0)
    time.sleep(2.2)
    assert 1 <= first - int(paused.get_attribute("data-seconds") or 0) <= 3, "the countdown does not count"

    # resumed by a nurse: it sounds again; a short pause that runs out: it sounds again by itself
    assert srv.call("POST", "/api/bays/bay2/audio-resume", "nurse").status_code == 200
    assert wait_sounding_matches_server(page, srv) == "high"
    assert paused.is_hidden()
    assert srv.call("POST", "/api/bays/bay2/audio-pause", "nurse", {"seconds": 3}).status_code == 200
    page.wait_for_function("() => document.body.dataset.sounding !== 'high'", timeout=2_000)
    page.wait_for_function("() => document.body.dataset.sounding === 'high'", timeout=6_000)
    assert wait_sounding_matches_server(page, srv) == "high"

    # acknowledged by a nurse (the API, elsewhere): the high pattern stops; what sounds is what the server says
    assert srv.call("POST", "/api/bays/bay2/alarms/spo2_low/acknowledge", "nurse").status_code == 200
    page.wait_for_selector('[data-bay="bay2"] li.alarm[data-alarm-id="spo2_low"][data-acknowledged="true"]',
                           timeout=2_000)
    assert wait_sounding_matches_server(page, srv) != "high"
    before = audio(page)["pulses"]
    time.sleep(2.5)
    now = audio(page)
    started_since = now["pulses"] - before
    later = now["log"][len(now["log"]) - started_since:] if started_since else []
    assert all(e["pattern"] != "high" for e in later), later
    assert "ACK nurse ann" in line.inner_text()

    # touch targets of at least 44 px; the bay name opens the detail page
    for sel in ('[data-bay="bay2"] a.bay-link', ".station-alarm a"):
        box = page.locator(sel).first.bounding_box()
        assert box is not None and box["height"] >= 44, (sel, box)
    assert time.monotonic() - started < 120
    assert page_errors == []
    tile.locator("a.bay-link").click()
    page.wait_for_url(f"{srv.base}/bay/bay2", timeout=5_000)


def test_silent_device_shows_no_data_not_its_old_number(page: Page, page_errors: list[str],
                                                         bedside: Callable[[str], Bedside],
                                                         masimo_pty: subprocess.Popen[str]) -> None:
    assert masimo_pty.stdout is not None
    pty = masimo_pty.stdout.readline().strip()
    assert pty.startswith("/"), f"the simulator printed no pty path: {pty!r}"
    srv = bedside(MASIMO_BAY.format(bay="bay1", name="Bay 1", where=f'port = "{pty}"')
                  + MQTT_BAY.format(bay="bay2", name="Bay 2"))
    login(page, srv.base, srv.token("viewer"))
    spo2 = page.locator('[data-bay="bay1"] [data-vital="spo2"]')
    page.wait_for_function(
        """() => { const e = document.querySelector('[data-bay="bay1"] [data-vital="spo2"]');
                   return e && /^\\d+$/.test(e.textContent) && e.dataset.state === 'current'; }""", timeout=20_000)
    cell = page.locator('[data-bay="bay1"] .vital.spo2')
    assert cell.get_attribute("data-stale") == "false"

    # the device goes silent: from then on the tile may show its last number only until the server or the page's
    # clock says it is not current, then "---" and NO DATA, and never that number again
    old = spo2.inner_text()
    os.kill(masimo_pty.pid, signal.SIGSTOP)
    stopped = time.monotonic()
    shown: list[str] = []
    while (text := spo2.inner_text()) != "---":
        shown.append(text)
        assert time.monotonic() - stopped < 20, f"still showing {text} 20 s after the device went silent"
        time.sleep(0.2)
    assert set(shown) <= {old}, f"new numbers from a silent device: {shown}"
    noticed = time.monotonic() - stopped
    assert noticed < 16, f"noticed only after {noticed:.1f} s"
    state = tile_state(page, "bay1")
    assert state["states"]["spo2"] == "stale"
    assert cell.get_attribute("data-stale") == "true"
    assert cell.locator(".stale-tag").inner_text() == "NO DATA"
    assert re.fullmatch(r"no data for \d+ s", cell.locator(".vital-age").inner_text())
    assert old not in cell.inner_text()
    pulse = page.locator('[data-bay="bay1"] .vital.pulse')
    assert pulse.locator(".num").inner_text() == "---"
    assert pulse.locator(".stale-tag").is_visible()
    # the server's technical alarm says why
    page.wait_for_selector('[data-bay="bay1"] li.alarm[data-alarm-id="no_data:masimo-bay1"]', timeout=10_000)
    assert "NO DATA" in page.locator('[data-bay="bay1"] li.alarm[data-alarm-id="no_data:masimo-bay1"]').inner_text()
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:  # it stays that way
        assert spo2.inner_text() == "---"
        time.sleep(0.25)
    assert tile_state(page, "bay2")["states"]["spo2"] == "current"  # the other bay is unaffected

    # the device speaks again: current values again
    os.kill(masimo_pty.pid, signal.SIGCONT)
    page.wait_for_function(
        """() => { const e = document.querySelector('[data-bay="bay1"] [data-vital="spo2"]');
                   return /^\\d+$/.test(e.textContent) && e.dataset.state === 'current'; }""", timeout=20_000)
    assert cell.get_attribute("data-stale") == "false"
    assert page_errors == []


def test_server_stop_shows_banner_and_sounds_within_3s_then_resyncs(browser: Browser, page: Page,
                                                                    page_errors: list[str],
                                                                    bedside: Callable[[str], Bedside]) -> None:
    srv = bedside(MQTT_BAY.format(bay="bay1", name="Bay 1"))
    login(page, srv.base, srv.token("viewer"))
    enable_sound(page)
    page.wait_for_function(
        """() => /^\\d+$/.test(document.querySelector('[data-bay="bay1"] [data-vital="spo2"]').textContent)""",
        timeout=15_000)
    banner = page.locator("#offline-banner")
    assert banner.is_hidden()
    assert page.evaluate("() => document.body.dataset.sounding") != "connection"

    assert srv.proc is not None
    t0 = time.monotonic()
    srv.proc.terminate()
    page.wait_for_function(
        """() => !document.getElementById('offline-banner').hidden
                 && document.body.dataset.sounding === 'connection'
                 && window.__bedsideAudio.log.some(e => e.pattern === 'connection')""", timeout=3_000)
    elapsed = time.monotonic() - t0
    assert elapsed < 3.0
    assert banner.is_visible()
    assert banner.inner_text() == "NOT CONNECTED — alarms are not being shown"
    srv.stop()
    time.sleep(2)  # it keeps sounding while the server is away
    assert page.evaluate("() => document.body.dataset.sounding") == "connection"
    assert banner.is_visible()
    pulses = [e for e in audio(page)["log"] if e["pattern"] == "connection"]
    assert pulses and pulses[0]["f"] > pulses[1]["f"]  # the "equipment failure" notes: C5 C4 C4 / C5 C4

    # the server comes back on the same address: the page reconnects by itself and shows fresh data
    srv.start()
    page.wait_for_function("() => document.body.dataset.connection === 'live'", timeout=30_000)
    page.wait_for_function("() => document.body.dataset.sounding !== 'connection'", timeout=2_000)
    assert banner.is_hidden()
    page.wait_for_function(
        """() => { const e = document.querySelector('[data-bay="bay1"] [data-vital="spo2"]');
                   return /^\\d+$/.test(e.textContent) && e.dataset.state === 'current'; }""", timeout=15_000)
    assert page_errors == [] or all("WebSocket" in e or "Failed to load" in e or "ERR_CONNECTION" in e
                                    for e in page_errors), page_errors


def test_a_frozen_server_is_noticed_within_3s_though_the_socket_stays_open(
        page: Page, bedside: Callable[[str], Bedside]) -> None:
    """SIGSTOP: the server's sockets stay open but nothing more comes (a half-open link, a stalled Wi-Fi); only the
    heartbeat can tell. SIGCONT: the page finds its way back."""
    srv = bedside(MQTT_BAY.format(bay="bay1", name="Bay 1"))
    login(page, srv.base, srv.token("viewer"))
    page.wait_for_function(
        """() => /^\\d+$/.test(document.querySelector('[data-bay="bay1"] [data-vital="spo2"]').textContent)""",
        timeout=15_000)
    assert srv.proc is not None
    page.wait_for_timeout(1500)  # the first heartbeats have come
    t0 = time.monotonic()
    os.kill(srv.proc.pid, signal.SIGSTOP)
    try:
        page.wait_for_function("() => !document.getElementById('offline-banner').hidden", timeout=3_000)
        assert time.monotonic() - t0 < 3.0
        assert page.evaluate("() => document.body.dataset.connection") != "live"
    finally:
        os.kill(srv.proc.pid, signal.SIGCONT)
    page.wait_for_function("() => document.body.dataset.connection === 'live'", timeout=30_000)
    assert page.locator("#offline-banner").is_hidden()


def test_sound_that_cannot_play_is_said(browser: Browser, bedside: Callable[[str], Bedside]) -> None:
    srv = bedside(MQTT_BAY.format(bay="bay1", name="Bay 1"))
    context = browser.new_context(viewport=VIEWPORT)
    try:
        context.add_init_script("delete window.AudioContext; delete window.webkitAudioContext;")
        page = context.new_page()
        login(page, srv.base, srv.token("viewer"))
        page.wait_for_function("() => document.body.dataset.sound === 'blocked'", timeout=5_000)
        control = page.locator("#sound-enable")
        assert control.is_visible()
        assert "cannot play sound" in control.inner_text()
        assert page.evaluate("() => document.body.dataset.sounding") == "none"
        box = control.bounding_box()
        assert box is not None and box["height"] >= 44 and box["width"] > VIEWPORT["width"] / 2
    finally:
        context.close()
