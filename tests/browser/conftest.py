"""Fixtures for driving the nurse's live page (dashboard/static/) in Debian's Chromium.

Fixtures
  browser      (module)   playwright.sync_api.Browser: headless /usr/bin/chromium, launched with CHROMIUM_ARGS.
                          Playwright never downloads a browser here. Without /usr/bin/chromium the test is
                          skipped with the reason, except under CI=true, where it fails (a missing system
                          package must not turn into a green run).
                          Module-scoped on purpose: while Playwright's sync API is open its event loop counts
                          as running in this thread, so every pytest-asyncio test after it would fail with
                          "Runner.run() cannot be called from a running event loop". Closing it at the end of
                          each module keeps the async tests elsewhere working; keep browser test modules to
                          sync tests only (a launch costs well under a second).
  page         (function) a Page in its own BrowserContext (own cookie jar), 1920x1080; closed afterwards.
  page_errors  (function) list[str]: console errors and uncaught exceptions of `page` (a CSP violation shows up
                          here as a console error), for `assert not page_errors`.

Helpers (from tests.browser.conftest import ...)
  running_bedside(config_path, port) -> context manager yielding (base URL, process) of `bedside run` once it
      serves /api/health; terminated (killed if need be) afterwards.  wait_until_serving(base, proc).
  create_token(data_dir, role, label) -> str: a token from `bedside token create`.
  login(page, base_url, token, *, timeout_ms=10_000) -> None
      opens {base_url}/login#token=<token> (the one-click URL), waits for "/" to show at least one tile
      and for the websocket to be live (body[data-connection="live"]).
  tile_state(page, bay_id) -> dict: {"alarm": "high", "vitals": {"spo2": "86", ...},
      "states": {"spo2": "current", ...}, "alarms": ["!!! SpO2 LOW 86 < 90"], "technical": ["sensor_off", ...]}

What the page exposes for tests (the central view `/`)
  body[data-connection]      "connecting" | "live" (snapshot received) | "disconnected"; same on #conn.
  #offline-banner            visible (within 3 s) whenever not live: "NOT CONNECTED — alarms are not being shown".
  body[data-sound]           "off" (the browser has not let the page play sound yet: #sound-enable, a full-width
                             "SOUND OFF — tap to enable alarm sound" button, is shown; tapping it or anything on the
                             page starts the sound) | "on" (#sound-ind "SOUND ON" in the header) | "blocked" (this
                             browser cannot play: #sound-enable says "... cannot play sound here ...").
  body[data-sounding]        what is sounding now: "high" | "medium" | "low" (the loudest audible alarm of all bays:
                             not acknowledged, not in an audio pause) | "connection" (while #offline-banner shows) |
                             "none" (nothing, or the sound is not on).
  window.__bedsideAudio      {state, wanted, pattern, pulses, log}: pulses = how many pulses have started;
                             log = the last 60 started pulses [{t (AudioContext s), f (Hz), td (s), pattern}].
                             #sound-enable[data-wanted] = the pattern that would sound (flashes when not "none").
  .station-alarm             the station-wide list under the header, one per active alarm of every bay, highest
                             priority then oldest first; data-alarm-bay (not data-bay: [data-bay] means a tile),
                             data-alarm-id, data-priority, data-acknowledged, data-audible; text
                             "!!! Bay 2 · SpO2 LOW 86 < 90 · 1 min[ · LATCHED][ · ACK <who>][ · AUDIO PAUSED 1:47]",
                             its link to /bay/<id>. #station-count[data-count] and "N ALARMS" / "No active alarms".
  [data-bay="<bay id>"]      one tile per bay, in the server's order, with
    data-alarm               "high" | "medium" | "low" | "none": highest priority among the bay's active alarms.
    a.bay-link               the bay's name, a link to /bay/<id> (at least 44 px high).
    .patient                 "<initials> · <phase> · <series> · <time since start>" from the snapshot's session, else
                             "no patient admitted" (data-patient = "admitted" | "none").
    .audio-paused            shown while an alarm of the bay is audio-paused: "AUDIO PAUSED 1:47" counting down
                             (data-seconds = seconds left).
    [data-vital="<key>"]     textContent is the displayed number ("97", "124"; temp and pi with one decimal), or
                             "---" whenever the value is not current. data-state = "current" | "stale" (seen but
                             not current: older than 15 s (NIBP 15 min), or the server reports its device lost,
                             silent (no data), sensor off/fault or the value invalid) | "missing" (never seen).
                             Keys: the big pulse cell is "hr" when HR is current, else "pr"; a small "pr" cell
                             is shown beside it when the big one shows HR; "spo2"; "nibp_sys", "nibp_dia",
                             "nibp_map"; "rr" and "etco2" only once the bay has such a value.
    .vital[data-stale]       "true" when a value in that cell is not current (stale or missing): the cell's
                             .stale-tag says why ("NO DATA", "DEVICE LOST", "SENSOR OFF", ...) and .vital-age
                             "no data for 40 s" (or "no data" when never seen; data-never="true"); otherwise
                             .vital-age is the age of the value ("3 s ago"; NIBP "3 min ago", its cuff reading).
    .vital[data-alarm]       priority of the alarm on that cell's vital (its number flashes), else "none".
    .spark[data-spark]       30-minute sparkline (a canvas) of "hr"/"pr" (whichever the pulse cell shows), "spo2",
                             "nibp_sys" (points) and "rr"; backfilled from GET /api/bays/<id>/history when it can.
    li.alarm                 one per active alarm, highest first (at most 3, then "+N more"): text
                             "<symbol> <message>[ · LATCHED][ · ACK <who>][ · AUDIO PAUSED m:ss]" with symbol "!!!"
                             high, "!!" medium, "!" low; data-priority, data-alarm-id, data-kind, data-acknowledged,
                             data-latched, data-audible.
    li.tech                  one per technical status: data-condition ("no_data", "sensor_off", ...), data-device.
Write wait_for_function/evaluate scripts as functions ("() => ..."): a bare expression is run with eval, which the
page's Content-Security-Policy refuses.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, ViewportSize, sync_playwright

from tests.processes import create_token, running_bedside, wait_until_serving

__all__ = ["create_token", "running_bedside", "wait_until_serving"]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
VIEWPORT: ViewportSize = {"width": 1920, "height": 1080}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is not installed (apt-get install chromium); browser tests need Debian's Chromium"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page_errors() -> list[str]:
    return []


@pytest.fixture
def page(browser: Browser, page_errors: list[str]) -> Iterator[Page]:
    context = browser.new_context(viewport=VIEWPORT)
    pg = context.new_page()

    def on_console(msg: ConsoleMessage) -> None:
        if msg.type == "error":
            page_errors.append(f"console: {msg.text}")

    pg.on("console", on_console)
    pg.on("pageerror", lambda exc: page_errors.append(f"uncaught: {exc}"))
    try:
        yield pg
    finally:
        context.close()


def login(page: Page, base_url: str, token: str, *, timeout_ms: float = 10_000) -> None:
    """Log in with the one-click URL and wait until the live page shows tiles over a live websocket."""
    base = base_url.rstrip("/")
    page.goto(f"{base}/login#token={token}")
    page.wait_for_url(f"{base}/", timeout=timeout_ms)
    page.wait_for_selector("[data-bay]", timeout=timeout_ms)
    page.wait_for_selector('body[data-connection="live"]', timeout=timeout_ms)


def tile_state(page: Page, bay_id: str) -> dict[str, Any]:
    """What the tile of `bay_id` shows now (see the module docstring for the attributes read)."""
    state: dict[str, Any] = page.evaluate(
        """(bay) => {
            const tile = document.querySelector(`[data-bay="${CSS.escape(bay)}"]`);
            if (!tile) return null;
            const nums = [...tile.querySelectorAll('[data-vital]')];
            return {
                alarm: tile.dataset.alarm,
                vitals: Object.fromEntries(nums.map(e => [e.dataset.vital, e.textContent.trim()])),
                states: Object.fromEntries(nums.map(e => [e.dataset.vital, e.dataset.state])),
                alarms: [...tile.querySelectorAll('li.alarm')].map(e => e.textContent.trim()),
                technical: [...tile.querySelectorAll('li.tech')].map(e => e.dataset.condition),
            };
        }""",
        bay_id,
    )
    if state is None:
        raise AssertionError(f"no tile for bay {bay_id!r} on {page.url}")
    return state
