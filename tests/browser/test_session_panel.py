"""The bay page's infusion session panel (#session, dashboard/static/bay-session.js) in real Chromium against a
real `bedside run` with a simulated oximeter: a nurse takes a patient from admission to discharge on the bay page
(the checklist, baseline, infusion with a rate change, recovery, a refused discharge with its reasons, the Aldrete
score and the escort, the discharge once ready), while the central view and a viewer's bay page follow live; a
viewer's buttons are disabled; ending early needs a reason.

What the panel exposes for tests
  #session[data-phase]        "none" | "admitted" | "baseline" | "infusion" | "recovery" | "closed" (a session
                              closed on this page, shown above the admit form); data-role "nurse" | "viewer" (set
                              once GET /api/me has answered).
  button[data-action=...]     admit, checklist, baseline, start, rate, pause, resume, stop, recovery, aldrete, pain,
                              discharge, override, end: disabled for a viewer, and (like the bay page's other
                              nurse-only controls) not shown to one.
  #session-error              the last error (the server's reason), placed in the group of the control that failed.
  #session-readiness li       one per unmet discharge item (in recovery); #session-ready when there is none.
  #admit-preview[data-total][data-rate]  the admit form's total dose (mg) and rate (mg/h) as typed.
  #checklist-form [data-item=<key>][data-missing]  fasting_hours, escort_name, escort_phone, consent,
                              escort_confirmed.
  #session-patient, #session-phase, #session-protocol, #session-given[data-mg], #session-baseline,
  #session-doses tbody tr[data-dose=<action>], #aldrete-form input[name=<item>][value=0|1|2], #pain-form select.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, expect

from monitor.mosquitto import free_port
from tests.browser.conftest import VIEWPORT, create_token, login, running_bedside

pytestmark = [pytest.mark.timeout(150), pytest.mark.browser, pytest.mark.service]

CONFIG = """
site = "session-panel-test"
data_dir = "data"
[http]
port = {port}
[sessions]
min_recovery_minutes = 0.05
stable_minutes = 0.1
[[bays]]
id = "bay1"
name = "Bay 1"
[[bays.devices]]
id = "masimo-1"
driver = "masimo"
simulate = true
"""

ACTIONS = ("admit", "checklist", "baseline", "start", "rate", "pause", "resume", "stop", "recovery", "aldrete",
           "pain", "discharge", "override", "end")


@dataclass(frozen=True)
class Server:
    base: str
    viewer: str
    nurse: str
    proc: subprocess.Popen[bytes]

    def session(self) -> dict[str, object]:
        r = httpx.get(f"{self.base}/api/bays/bay1/session", headers={"Authorization": f"Bearer {self.viewer}"},
                      timeout=10)
        assert r.status_code == 200, r.text
        body: dict[str, object] = r.json()
        return body

    def end_open_session(self) -> None:
        s = self.session()["session"]
        if isinstance(s, dict):
            httpx.post(f"{self.base}/api/sessions/{s['id']}/end", json={"reason": "test cleanup"},
                       headers={"Authorization": f"Bearer {self.nurse}"}, timeout=10).raise_for_status()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("session-panel")
    port = free_port()
    config = tmp / "clinic.toml"
    config.write_text(CONFIG.format(port=port))
    with running_bedside(config, port) as (base, proc):
        data = Path(tmp / "data")
        yield Server(base, create_token(data, "viewer", "station"), create_token(data, "nurse", "nurse ann"), proc)


class Screens:
    """Pages in their own browser contexts (own cookie jars), each logged in with a token; errors collected."""

    def __init__(self, browser: Browser) -> None:
        self.browser = browser
        self.contexts: list[BrowserContext] = []
        self.errors: list[str] = []

    def new_page(self) -> Page:
        context = self.browser.new_context(viewport=VIEWPORT)
        self.contexts.append(context)
        page = context.new_page()

        def on_console(msg: ConsoleMessage) -> None:
            if msg.type == "error":
                self.errors.append(f"console: {msg.text}")

        page.on("console", on_console)
        page.on("pageerror", lambda exc: self.errors.append(f"uncaught: {exc}"))
        return page

    def open_bay(self, srv: Server, token: str, bay: str = "bay1") -> Page:
        page = self.new_page()
        page.goto(f"{srv.base}/login?next=/bay/{bay}#token={token}")
        page.wait_for_url(f"{srv.base}/bay/{bay}", timeout=10_000)
        page.wait_for_selector('body[data-connection="live"]', timeout=10_000)
        page.wait_for_selector("#session[data-role]", state="attached", timeout=10_000)
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


def refusals_only(errors: list[str]) -> list[str]:
    """The page's errors less the browser's own log lines for the refusals the test asked for (409)."""
    return [e for e in errors if not ("Failed to load resource" in e and "409" in e)]


def buttons_disabled(page: Page) -> dict[str, bool]:
    result: dict[str, bool] = page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('#session button[data-action]')]
                                      .map(b => [b.dataset.action, b.disabled]))""")
    return result


def click(page: Page, action: str) -> None:
    page.locator(f'#session button[data-action="{action}"]').click(timeout=5_000)


def test_a_nurse_takes_a_patient_from_admission_to_discharge(screens: Screens, server: Server) -> None:
    station = screens.new_page()
    login(station, server.base, server.viewer)
    tile_patient = station.locator('[data-bay="bay1"] .patient')
    expect(tile_patient).to_have_text("no patient admitted")

    nurse = screens.open_bay(server, server.nurse)
    watcher = screens.open_bay(server, server.viewer)  # another screen on the same bay
    panel = nurse.locator("#session")
    expect(panel).to_have_attribute("data-phase", "none", timeout=5_000)
    expect(panel).to_have_attribute("data-role", "nurse")
    error = nurse.locator("#session-error")

    # --- admit: the total dose and rate follow what is typed
    preview = nurse.locator("#admit-preview")
    nurse.fill('#admit-form input[name="patient_id"]', "P-0042")
    nurse.fill('#admit-form input[name="initials"]', "jd")
    nurse.fill('#admit-form input[name="weight_kg"]', "80")
    expect(preview).to_have_attribute("data-total", "40")  # 0.5 mg/kg (default) x 80 kg
    expect(preview).to_have_attribute("data-rate", "60")  # over 40 min (default)
    expect(preview).to_contain_text("40 mg")
    nurse.fill('#admit-form input[name="weight_kg"]', "70")
    expect(preview).to_have_attribute("data-total", "35")
    expect(preview).to_have_attribute("data-rate", "52.5")
    nurse.fill('#admit-form input[name="series_index"]', "2")
    nurse.fill('#admit-form input[name="series_total"]', "6")
    click(nurse, "admit")
    expect(panel).to_have_attribute("data-phase", "admitted", timeout=5_000)
    expect(nurse.locator("#session-patient")).to_have_text("JD \u00B7 P-0042 \u00B7 induction 2 of 6")
    expect(nurse.locator("#session-protocol")).to_contain_text("total 35 mg")
    expect(nurse.locator("#session-protocol")).to_contain_text("rate 52.5 mg/h")
    # the other screens follow live: the central view's tile and the viewer's bay page
    expect(tile_patient).to_contain_text("JD \u00B7 admitted \u00B7 induction 2 of 6", timeout=5_000)
    expect(tile_patient).to_have_attribute("data-patient", "admitted")
    expect(watcher.locator("#session")).to_have_attribute("data-phase", "admitted", timeout=5_000)
    expect(nurse.locator("#patient")).to_contain_text("JD")

    # --- the checklist: everything missing; the infusion cannot start yet, and the page says why
    for item in ("fasting_hours", "escort_name", "escort_phone", "consent", "escort_confirmed"):
        expect(nurse.locator(f'#checklist-form [data-item="{item}"]')).to_have_attribute("data-missing", "true")
    click(nurse, "start")
    expect(error).to_be_visible(timeout=5_000)
    expect(error).to_contain_text("checklist incomplete")
    assert nurse.locator('[data-group="steps"] #session-error').count() == 1  # next to the control that failed
    nurse.fill('#checklist-form input[name="fasting_hours"]', "6")
    nurse.fill('#checklist-form input[name="escort_name"]', "Sam Doe")
    nurse.fill('#checklist-form input[name="escort_phone"]', "+1 555 0100")
    nurse.check('#checklist-form input[name="consent"]')
    click(nurse, "checklist")
    for item in ("fasting_hours", "escort_name", "escort_phone", "consent"):
        expect(nurse.locator(f'#checklist-form [data-item="{item}"]')).to_have_attribute("data-missing", "false",
                                                                                          timeout=5_000)
    expect(nurse.locator('#checklist-form [data-item="escort_confirmed"]')).to_have_attribute("data-missing", "true")
    expect(error).to_be_hidden()
    expect(watcher.locator('#checklist-form input[name="escort_name"]')).to_have_value("Sam Doe", timeout=5_000)

    # --- baseline, then the infusion (the baseline is what the oximeter measured meanwhile)
    click(nurse, "baseline")
    expect(panel).to_have_attribute("data-phase", "baseline", timeout=5_000)
    nurse.wait_for_timeout(3_000)  # a few readings at 1 Hz
    click(nurse, "start")
    expect(panel).to_have_attribute("data-phase", "infusion", timeout=5_000)
    expect(nurse.locator("#session-baseline")).to_contain_text("SpO2", timeout=5_000)
    expect(nurse.locator("#session-running")).to_contain_text("RUNNING at 52.5 mg/h")
    expect(watcher.locator("#session")).to_have_attribute("data-phase", "infusion", timeout=5_000)
    expect(tile_patient).to_contain_text("JD \u00B7 infusion", timeout=5_000)

    nurse.fill('#session input[name="rate"]', "45")
    click(nurse, "rate")
    rows = nurse.locator("#session-doses tbody tr")
    expect(rows).to_have_count(2, timeout=5_000)
    expect(rows.nth(1)).to_have_attribute("data-dose", "rate")
    expect(rows.nth(1)).to_contain_text("45")
    expect(rows.nth(1)).to_contain_text("nurse ann")
    expect(nurse.locator("#session-running")).to_contain_text("RUNNING at 45 mg/h")
    expect(watcher.locator("#session-doses tbody tr")).to_have_count(2, timeout=5_000)

    # --- recovery; the first discharge is refused with the reasons, and the override appears
    click(nurse, "recovery")
    expect(panel).to_have_attribute("data-phase", "recovery", timeout=5_000)
    expect(rows).to_have_count(3)
    expect(rows.nth(2)).to_have_attribute("data-dose", "stop")
    expect(nurse.locator("#session-given")).not_to_have_attribute("data-mg", "")
    assert not nurse.locator('#session button[data-action="override"]').is_visible()
    click(nurse, "discharge")
    expect(error).to_contain_text("discharge refused", timeout=5_000)
    assert nurse.locator('[data-group="recovery"] #session-error').count() == 1
    reasons = nurse.locator("#session-readiness li")
    expect(reasons.filter(has_text="no Aldrete score entered")).to_have_count(1)
    expect(reasons.filter(has_text="escort not confirmed")).to_have_count(1)
    expect(nurse.locator('#session button[data-action="override"]')).to_be_visible()
    expect(panel).to_have_attribute("data-phase", "recovery")

    # --- the Aldrete score, the escort and pain; then the patient is ready and discharged
    for item in ("activity", "respiration", "circulation", "consciousness", "spo2"):
        nurse.check(f'#aldrete-form input[name="{item}"][value="2"]')
    expect(nurse.locator("#aldrete-total")).to_have_text("10/10")
    click(nurse, "aldrete")
    expect(reasons.filter(has_text="no Aldrete score entered")).to_have_count(0, timeout=5_000)
    nurse.check('#checklist-form input[name="escort_confirmed"]')
    click(nurse, "checklist")
    expect(nurse.locator('#checklist-form [data-item="escort_confirmed"]')).to_have_attribute(
        "data-missing", "false", timeout=5_000)
    expect(reasons.filter(has_text="escort not confirmed")).to_have_count(0, timeout=5_000)
    nurse.select_option('#pain-form select[name="before"]', "7")
    nurse.select_option('#pain-form select[name="after"]', "3")
    click(nurse, "pain")
    expect(error).to_be_hidden(timeout=5_000)
    # recovery time and stable vitals come within seconds here; the list is re-read every 10 s
    expect(nurse.locator("#session-ready")).to_be_visible(timeout=30_000)
    expect(reasons).to_have_count(0)
    click(nurse, "discharge")
    expect(panel).to_have_attribute("data-phase", "closed", timeout=5_000)
    expect(nurse.locator("#session-closed")).to_contain_text("JD (P-0042) discharged")
    expect(nurse.locator('#session button[data-action="admit"]')).to_be_visible()
    expect(tile_patient).to_have_text("no patient admitted", timeout=5_000)
    expect(watcher.locator("#session")).to_have_attribute("data-phase", "closed", timeout=5_000)
    expect(nurse.locator("#patient")).to_have_text("no patient admitted")

    # what the server recorded
    assert server.session() == {"session": None}
    r = httpx.get(f"{server.base}/api/sessions", params={"patient": "P-0042"},
                  headers={"Authorization": f"Bearer {server.viewer}"}, timeout=10)
    [done] = r.json()["sessions"]
    assert done["discharge"]["outcome"] == "discharged" and done["discharge"]["unmet"] == []
    assert (done["aldrete"]["total"], done["pain_before"], done["pain_after"]) == (10, 7, 3)
    assert [d["action"] for d in done["doses"]] == ["start", "rate", "stop"]
    assert done["doses"][1]["rate_mg_per_h"] == 45 and done["checklist"]["escort_confirmed"] is True
    assert refusals_only(screens.errors) == []


def test_a_viewer_sees_the_session_but_every_button_is_disabled(screens: Screens, server: Server) -> None:
    server.end_open_session()  # (when the test before failed half-way)
    viewer = screens.open_bay(server, server.viewer)
    panel = viewer.locator("#session")
    expect(panel).to_have_attribute("data-role", "viewer", timeout=5_000)
    expect(panel).to_have_attribute("data-phase", "none")
    expect(panel).to_contain_text("No patient admitted")
    assert buttons_disabled(viewer) == dict.fromkeys(ACTIONS, True)
    # like the page's other nurse-only controls, they are not shown either (test_bay_detail: no action controls)
    assert viewer.locator("#session button:visible").count() == 0

    # a nurse admits (from another screen): the viewer's panel shows it, still with nothing to press
    nurse = screens.open_bay(server, server.nurse)
    nurse.fill('#admit-form input[name="patient_id"]', "P-0043")
    nurse.fill('#admit-form input[name="initials"]', "AB")
    nurse.fill('#admit-form input[name="weight_kg"]', "60")
    nurse.select_option('#admit-form select[name="series_kind"]', "booster")
    click(nurse, "admit")
    expect(panel).to_have_attribute("data-phase", "admitted", timeout=5_000)
    expect(viewer.locator("#session-patient")).to_contain_text("AB \u00B7 P-0043 \u00B7 booster 1")
    assert buttons_disabled(viewer) == dict.fromkeys(ACTIONS, True)
    assert viewer.locator("#session button:visible").count() == 0
    assert viewer.evaluate("() => [...document.querySelectorAll('#session input, #session select')]"
                           ".every(e => e.disabled)")

    # ending early needs a reason; the viewer's page follows
    click(nurse, "end")
    expect(nurse.locator("#session-error")).to_contain_text("reason", timeout=5_000)
    nurse.fill('#end-form input[name="end_reason"]', "patient declined")
    click(nurse, "end")
    expect(panel).to_have_attribute("data-phase", "closed", timeout=5_000)
    expect(viewer.locator("#session-closed")).to_contain_text("ended early (patient declined)")
    assert server.session() == {"session": None}
    assert refusals_only(screens.errors) == []
