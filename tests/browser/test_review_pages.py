"""The physician's review pages in real Chromium against a real `bedside run` with a simulated oximeter: the
sessions list (/sessions), the review of one session (/sessions/<id>) and the patient's series (/patients/<id>).
Two sessions of one patient are driven quickly through the API with a nurse's token (admit, checklist, baseline,
infusion with a dose change, recovery, pain scores; one discharged with an override reason, one ended early);
then a viewer reads them, and an admin deletes one from its review page.

What the pages expose for tests
  /sessions        #sessions[data-loaded="true"][data-count]; tr[data-session-id][data-phase][data-outcome]
                   newest first; a.patient-link to /patients/<id>; a.review-link to /sessions/<id>;
                   #filters (GET form: patient, bay, from, to); #page-note after a deletion.
  /sessions/<id>   #review[data-session-id][data-phase][data-loaded="true"]; #charts[data-loaded="true"]
                   [data-alarm-count][data-technical-count][data-zoomed] with figure.review-chart[data-group]
                   ("infusion", "heart", "nibp", "spo2", "resp", ...; data-points, data-bands, data-baselines,
                   data-x-min/data-x-max: the x range shown); #zoom-reset; #stats[data-loaded="true"]
                   [data-stat][data-value]; #doses tr[data-dose]; #alarm-rows tr[data-alarm-id]; #pain
                   [data-pain-before]/[data-pain-after]; #discharge [data-reason]; [data-export] links;
                   #delete-session -> #delete-confirm -> #delete-yes (admins only).
  /patients/<id>   #series[data-loaded="true"][data-count][data-charts-loaded="true"]; .series-session
                   [data-session-id] oldest first with [data-pain-before]/[data-pain-after] and
                   .series-chart[data-loaded="true"][data-points][data-y].
"""

from __future__ import annotations

import math
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, expect

from monitor.mosquitto import free_port
from tests.browser.conftest import VIEWPORT, create_token, running_bedside

pytestmark = [pytest.mark.timeout(180), pytest.mark.browser, pytest.mark.service]

PATIENT = "P-REVIEW-7"
CONFIG = """
site = "review-test"
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
[[bays.simulated_patient.episodes]]
vital = "spo2"
value = 80
start = 2
duration = 3600
"""
CHECKLIST = {"fasting_hours": 6, "escort_name": "Sam Doe", "escort_phone": "+1 555 0100", "consent": True}
OVERRIDE = "escort waiting, physician agreed"
ENDED = "patient asked to stop"


@dataclass(frozen=True)
class Server:
    base: str
    viewer: str
    nurse: str
    admin: str
    proc: subprocess.Popen[bytes]
    first: str  # session ids, oldest first
    second: str

    def api(self, method: str, path: str, token: str | None = None, **kw: Any) -> httpx.Response:
        return httpx.request(method, f"{self.base}{path}",
                             headers={"Authorization": f"Bearer {token or self.viewer}"}, timeout=15, **kw)

    def get(self, path: str) -> Any:
        r = self.api("GET", path)
        assert r.status_code == 200, (path, r.status_code, r.text)
        return r.json()


def step(base: str, nurse: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    r = httpx.post(f"{base}{path}", json=body or {}, headers={"Authorization": f"Bearer {nurse}"}, timeout=15)
    assert r.status_code == 200, (path, r.status_code, r.text)
    session: dict[str, Any] = r.json()["session"]
    return session


def wait_for(predicate: Any, what: str, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, f"not within {within:.0f} s: {what}"
        time.sleep(0.25)


def drive_first(base: str, nurse: str) -> str:
    """Induction 1 of 3: start, a rate change, recovery, pain 7 -> 3, discharged with an override reason."""
    s = step(base, nurse, "/api/bays/bay1/session", {
        "patient_id": PATIENT, "initials": "rv", "weight_kg": 80, "dose_mg_per_kg": 0.5, "planned_minutes": 40,
        "series_kind": "induction", "series_index": 1, "series_total": 3})
    sid = str(s["id"])
    step(base, nurse, f"/api/sessions/{sid}/checklist", CHECKLIST)
    step(base, nurse, f"/api/sessions/{sid}/baseline")
    time.sleep(2.5)  # readings for the baseline
    step(base, nurse, f"/api/sessions/{sid}/dose", {"action": "start"})
    time.sleep(1.5)
    step(base, nurse, f"/api/sessions/{sid}/dose", {"action": "rate", "rate_mg_per_h": 45, "note": "HR up"})
    r = httpx.post(f"{base}/api/bays/bay1/annotations", json={"kind": "nausea", "text": ""},
                   headers={"Authorization": f"Bearer {nurse}"}, timeout=15)
    assert r.status_code == 200, r.text
    time.sleep(1.5)
    step(base, nurse, f"/api/sessions/{sid}/recovery")
    step(base, nurse, f"/api/sessions/{sid}/pain", {"before": 7, "after": 3})
    time.sleep(1.0)
    closed = step(base, nurse, f"/api/sessions/{sid}/discharge", {"override_reason": OVERRIDE})
    assert closed["phase"] == "closed"
    return sid


def drive_second(base: str, nurse: str) -> str:
    """Induction 2 of 3: start, pause, resume, recovery, pain 5 -> 2, ended early with a reason."""
    s = step(base, nurse, "/api/bays/bay1/session", {
        "patient_id": PATIENT, "initials": "rv", "weight_kg": 80, "dose_mg_per_kg": 0.5, "planned_minutes": 40,
        "series_kind": "induction", "series_index": 2, "series_total": 3})
    sid = str(s["id"])
    step(base, nurse, f"/api/sessions/{sid}/checklist", CHECKLIST)
    step(base, nurse, f"/api/sessions/{sid}/baseline")
    time.sleep(2.0)
    step(base, nurse, f"/api/sessions/{sid}/dose", {"action": "start", "rate_mg_per_h": 50})
    time.sleep(1.0)
    step(base, nurse, f"/api/sessions/{sid}/dose", {"action": "pause"})
    time.sleep(0.5)
    step(base, nurse, f"/api/sessions/{sid}/dose", {"action": "resume"})
    time.sleep(1.0)
    step(base, nurse, f"/api/sessions/{sid}/recovery")
    step(base, nurse, f"/api/sessions/{sid}/pain", {"before": 5, "after": 2})
    time.sleep(0.5)
    closed = step(base, nurse, f"/api/sessions/{sid}/end", {"reason": ENDED})
    assert closed["discharge"]["outcome"] == "ended"
    return sid


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("review")
    port = free_port()
    config = tmp / "clinic.toml"
    config.write_text(CONFIG.format(port=port))
    with running_bedside(config, port) as (base, proc):
        data = Path(tmp / "data")
        viewer, nurse, admin = (create_token(data, role, f"{role} rev") for role in ("viewer", "nurse", "admin"))
        first = drive_first(base, nurse)

        def desaturated() -> bool:  # the second session runs during the simulated desaturation's alarm
            bays = httpx.get(f"{base}/api/bays", headers={"Authorization": f"Bearer {viewer}"}, timeout=10).json()
            return any(a["id"] == "spo2_low" for a in bays["bays"][0]["alarms"])

        wait_for(desaturated, "the SpO2 LOW alarm of the simulated desaturation")
        second = drive_second(base, nurse)
        yield Server(base, viewer, nurse, admin, proc, first, second)


class Screens:
    """Pages in their own browser contexts (own cookie jars), each logged in with a token; errors collected."""

    def __init__(self, browser: Browser) -> None:
        self.browser = browser
        self.contexts: list[BrowserContext] = []
        self.errors: list[str] = []

    def open(self, srv: Server, token: str, path: str) -> Page:
        context = self.browser.new_context(viewport=VIEWPORT)
        self.contexts.append(context)
        page = context.new_page()

        def on_console(msg: ConsoleMessage) -> None:
            if msg.type == "error":
                self.errors.append(f"console: {msg.text}")

        page.on("console", on_console)
        page.on("pageerror", lambda exc: self.errors.append(f"uncaught: {exc}"))
        page.goto(f"{srv.base}/login?next={path}#token={token}")
        page.wait_for_url(f"{srv.base}{path}", timeout=10_000)
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


def row_ids(page: Page) -> list[str]:
    ids: list[str] = page.eval_on_selector_all("tr[data-session-id]", "rows => rows.map(r => r.dataset.sessionId)")
    return ids


def test_the_list_shows_both_sessions_newest_first(screens: Screens, server: Server) -> None:
    page = screens.open(server, server.viewer, "/sessions")
    page.wait_for_selector('#sessions[data-loaded="true"]', timeout=10_000)
    assert row_ids(page) == [server.second, server.first]
    first = page.locator(f'tr[data-session-id="{server.first}"]')
    expect(first).to_have_attribute("data-outcome", "discharged")
    expect(first).to_contain_text(PATIENT)
    expect(first).to_contain_text("RV")
    expect(first).to_contain_text("induction 1 of 3")
    expect(first).to_contain_text("discharged (override)")
    expect(first).to_contain_text("Bay 1")
    assert first.locator("a.review-link").get_attribute("href") == f"/sessions/{server.first}"
    assert first.locator("a.patient-link").get_attribute("href") == f"/patients/{PATIENT}"
    second = page.locator(f'tr[data-session-id="{server.second}"]')
    expect(second).to_contain_text("ended early")
    expect(second).to_contain_text("/ 40 mg")  # planned: 0.5 mg/kg x 80 kg

    # filters: a GET form, so the filtered list is a URL
    page.fill('#filters input[name="patient"]', "nobody")
    page.click('#filters button[type="submit"]')
    page.wait_for_url("**/sessions?patient=nobody*", timeout=10_000)
    page.wait_for_selector('#sessions[data-loaded="true"]', timeout=10_000)
    assert row_ids(page) == []
    expect(page.locator("#list-info")).to_contain_text("No sessions match")
    page.fill('#filters input[name="patient"]', PATIENT)
    page.select_option('#filters select[name="bay"]', "bay1")
    today = time.strftime("%Y-%m-%d")
    page.fill('#filters input[name="from"]', today)
    page.fill('#filters input[name="to"]', today)
    page.click('#filters button[type="submit"]')
    page.wait_for_url(f"**/sessions?patient={PATIENT}*", timeout=10_000)
    page.wait_for_selector('#sessions[data-loaded="true"]', timeout=10_000)
    assert row_ids(page) == [server.second, server.first]
    expect(page.locator('#filters select[name="bay"]')).to_have_value("bay1")

    # the central view links here
    page.goto(f"{server.base}/")
    page.click('a.nav-link[href="/sessions"]')
    page.wait_for_url(f"{server.base}/sessions", timeout=10_000)
    page.wait_for_selector('#sessions[data-loaded="true"]', timeout=10_000)
    assert screens.errors == []


def chart_data(page: Page) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('#charts .review-chart')].map(e => [
               e.dataset.group, {...e.dataset, canvas: String(e.querySelectorAll('canvas').length),
                                 text: e.querySelector('figcaption').textContent}]))""")
    return out


def test_the_review_page_shows_the_record_statistics_and_charts(screens: Screens, server: Server) -> None:
    sid = server.first
    page = screens.open(server, server.viewer, f"/sessions/{sid}")
    page.wait_for_selector('#review[data-loaded="true"]', timeout=15_000)
    review = page.locator("#review")
    expect(review).to_have_attribute("data-session-id", sid)
    expect(review).to_have_attribute("data-phase", "closed")
    session = server.get(f"/api/sessions/{sid}")["session"]
    expect(page.locator("#summary-patient")).to_contain_text(PATIENT)
    expect(page.locator("#summary-patient")).to_contain_text("induction 1 of 3")

    # the dose record: start, the rate change, the stop at recovery
    doses = page.locator("#doses tr")
    expect(doses).to_have_count(len(session["doses"]))
    assert [d["action"] for d in session["doses"]] == ["start", "rate", "stop"]
    assert doses.evaluate_all("rows => rows.map(r => r.dataset.dose)") == ["start", "rate", "stop"]
    expect(doses.nth(1)).to_contain_text("45")
    expect(doses.nth(1)).to_contain_text("HR up")

    # statistics: the server's numbers, missing shown as missing
    stats = server.get(f"/api/sessions/{sid}/statistics")
    page.wait_for_selector('#stats[data-loaded="true"]', timeout=10_000)

    def cell(key: str) -> tuple[str | None, str]:
        loc = page.locator(f'#stats [data-stat="{key}"]')
        expect(loc).to_have_count(1)
        return loc.get_attribute("data-value"), loc.inner_text().strip()

    for vital in ("spo2", "pr"):
        v = stats["vitals"][vital]
        assert v["count"] > 0, v
        for what in ("min", "max", "median"):
            value, text = cell(f"{vital}.{what}")
            assert value is not None and math.isclose(float(value), v[what]), (vital, what, value, v)
            assert math.isclose(float(text), v[what], abs_tol=0.05), (vital, what, text, v)
    value, text = cell("nibp_sys.max")  # an oximeter has no blood pressure: missing, never 0
    assert stats["vitals"]["nibp_sys"]["max"] is None and value == "" and text == "\u2014"
    value, text = cell("infusion.dose_given_mg")
    assert math.isclose(float(value or "nan"), stats["infusion"]["dose_given_mg"])
    for kind in ("physiological", "total"):
        for prio in ("high", "total"):
            value, _ = cell(f"alarms.{kind}.{prio}")
            assert value == str(stats["alarms"][kind][prio])
    value, text = cell("peaks.sbp.value")
    assert value == "" and text == "\u2014"

    # the record beside it
    expect(page.locator("#pain [data-pain-before]")).to_have_attribute("data-pain-before", "7")
    expect(page.locator("#pain [data-pain-after]")).to_have_attribute("data-pain-after", "3")
    expect(page.locator("#pain-form")).to_be_hidden()  # closed: read-only
    expect(page.locator("#discharge [data-reason]")).to_contain_text(OVERRIDE)
    expect(page.locator("#checklist")).to_contain_text("Sam Doe")
    expect(page.locator("#aldrete")).to_contain_text("Not scored")
    expect(page.locator("#annotations [data-kind='nausea']")).to_have_count(1)

    # the charts: one time axis, the infusion lane on top, alarm bands counted
    page.wait_for_selector('#charts[data-loaded="true"]', timeout=10_000)
    trace = server.get(f"/api/sessions/{sid}/trace")
    expect(page.locator("#charts")).to_have_attribute("data-alarm-count", str(len(trace["alarms"])))
    expect(page.locator("#alarm-rows tr")).to_have_count(len(trace["alarms"]))
    charts = chart_data(page)
    assert list(charts)[:4] == ["infusion", "heart", "nibp", "spo2"], list(charts)
    assert all(c["canvas"] == "1" for c in charts.values()), charts
    assert int(charts["heart"]["points"]) > 0 and int(charts["spo2"]["points"]) > 0
    assert charts["nibp"]["points"] == "0" and "no readings" in charts["nibp"]["text"]
    assert charts["infusion"]["doses"] == "3"
    drawn = dict(b.split("=") for b in charts["heart"]["baselines"].split())
    assert {k: float(v) for k, v in drawn.items()} == {
        k: v for k, v in session["baseline"].items() if k in ("hr", "pr")}, (drawn, session["baseline"])
    ranges = {(c["xMin"], c["xMax"]) for c in charts.values()}
    assert len(ranges) == 1, ranges  # one time axis

    # zoom one chart: every chart follows; back to the whole session
    over = page.locator('.review-chart[data-group="spo2"] .u-over')
    box = over.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] / 2, steps=5)
    page.mouse.up()
    expect(page.locator("#charts")).to_have_attribute("data-zoomed", "true", timeout=5_000)
    zoomed = {(c["xMin"], c["xMax"]) for c in chart_data(page).values()}
    assert len(zoomed) == 1 and zoomed != ranges, (zoomed, ranges)
    page.click("#zoom-reset")
    expect(page.locator("#charts")).to_have_attribute("data-zoomed", "false", timeout=5_000)
    assert {(c["xMin"], c["xMax"]) for c in chart_data(page).values()} == ranges

    # exports answer with the page's own login
    for fmt in ("csv", "fhir", "hl7", "report"):
        href = page.locator(f'[data-export="{fmt}"]').get_attribute("href")
        assert href == f"/api/sessions/{sid}/export?format={fmt}"
        resp = page.request.get(f"{server.base}{href}")
        assert resp.status == 200, (fmt, resp.status)
        disposition = resp.headers.get("content-disposition", "")
        assert disposition.startswith("inline" if fmt == "report" else "attachment"), (fmt, disposition)
    assert page.locator('[data-export="report"]').get_attribute("target") == "_blank"

    # a viewer cannot delete
    expect(page.locator("#delete-session")).to_have_count(0)
    assert screens.errors == []


def test_the_second_session_shows_its_alarm_and_its_early_end(screens: Screens, server: Server) -> None:
    page = screens.open(server, server.viewer, f"/sessions/{server.second}")
    page.wait_for_selector('#review[data-loaded="true"]', timeout=15_000)
    expect(page.locator("#doses tr")).to_have_count(4)  # start, pause, resume, stop
    trace = server.get(f"/api/sessions/{server.second}/trace")
    assert any(a["id"] == "spo2_low" for a in trace["alarms"]), trace["alarms"]
    expect(page.locator("#charts")).to_have_attribute("data-alarm-count", str(len(trace["alarms"])))
    assert int(chart_data(page)["spo2"]["bands"]) >= 1
    desat = next(a for a in trace["alarms"] if a["id"] == "spo2_low")
    expect(page.locator('#alarm-rows tr[data-alarm-id="spo2_low"]').first).to_have_attribute(
        "data-priority", desat["priority"])
    expect(page.locator("#discharge [data-reason]")).to_contain_text(ENDED)
    expect(page.locator("#summary-patient .outcome")).to_have_text("ended early")
    assert screens.errors == []


def test_the_series_shows_both_sessions_in_time_order(screens: Screens, server: Server) -> None:
    page = screens.open(server, server.viewer, f"/patients/{PATIENT}")
    page.wait_for_selector('#series[data-loaded="true"]', timeout=15_000)
    cards = page.locator(".series-session")
    assert cards.evaluate_all("cs => cs.map(c => c.dataset.sessionId)") == [server.first, server.second]
    pains = [(c.locator("[data-pain-before]").get_attribute("data-pain-before"),
              c.locator("[data-pain-after]").get_attribute("data-pain-after")) for c in cards.all()]
    assert pains == [("7", "3"), ("5", "2")]
    expect(cards.nth(0)).to_contain_text("induction 1 of 3")
    expect(cards.nth(1)).to_contain_text("induction 2 of 3")
    expect(cards.nth(0)).to_contain_text("Nausea")
    series = server.get(f"/api/patients/{PATIENT}/series")["sessions"]
    for card, item in zip(cards.all(), series, strict=True):
        hr = item["peaks"]["heart_rate"]
        value = card.locator('[data-stat="peaks.heart_rate.value"]').get_attribute("data-value")
        if hr is None or hr["value"] is None:
            assert value == ""
        else:
            assert math.isclose(float(value or "nan"), hr["value"]), (value, hr)
        assert card.locator('[data-stat="peaks.sbp.value"]').inner_text() == "\u2014"  # no NIBP: missing
        high = card.locator('[data-stat="alarms.high"]').get_attribute("data-value")
        assert high == str(item["alarms"]["total"]["high"])
    page.wait_for_selector('#series[data-charts-loaded="true"]', timeout=15_000)
    charts = page.locator('.series-chart[data-loaded="true"]')
    expect(charts).to_have_count(2)
    ys = charts.evaluate_all("cs => cs.map(c => c.dataset.y)")
    assert len(set(ys)) == 1, ys  # the same y scale, so they compare
    assert all(int(c.get_attribute("data-points") or 0) > 0 for c in charts.all())
    assert page.locator(".series-chart canvas").count() == 2
    assert screens.errors == []


def test_an_admin_deletes_a_session_from_its_review_page(screens: Screens, server: Server) -> None:
    page = screens.open(server, server.admin, f"/sessions/{server.second}")
    page.wait_for_selector('#review[data-loaded="true"]', timeout=15_000)
    expect(page.locator("#delete-confirm")).to_be_hidden()
    page.click("#delete-session")
    expect(page.locator("#delete-confirm")).to_be_visible()
    page.click("#delete-no")  # changed their mind: nothing happens
    expect(page.locator("#delete-confirm")).to_be_hidden()
    assert server.api("GET", f"/api/sessions/{server.second}").status_code == 200
    page.click("#delete-session")
    page.click("#delete-yes")
    page.wait_for_url(f"{server.base}/sessions?deleted={server.second}", timeout=10_000)
    page.wait_for_selector('#sessions[data-loaded="true"]', timeout=10_000)
    assert row_ids(page) == [server.first]
    expect(page.locator("#page-note")).to_contain_text(server.second)
    assert server.api("GET", f"/api/sessions/{server.second}").status_code == 404
    audit = server.api("GET", "/api/audit", server.admin, params={"action": "session_delete"}).json()["records"]
    assert [(r["who"], r["target"]) for r in audit] == [("admin rev", server.second)]
    assert screens.errors == []


def test_an_open_session_is_reviewed_up_to_now_and_a_nurse_enters_its_pain_score(
        screens: Screens, server: Server) -> None:
    s = step(server.base, server.nurse, "/api/bays/bay1/session", {
        "patient_id": "P-OPEN-1", "initials": "op", "weight_kg": 70, "dose_mg_per_kg": 0.5, "planned_minutes": 40,
        "series_kind": "booster", "series_index": 1})
    sid = str(s["id"])
    try:
        step(server.base, server.nurse, f"/api/sessions/{sid}/checklist", CHECKLIST)
        step(server.base, server.nurse, f"/api/sessions/{sid}/dose", {"action": "start"})
        page = screens.open(server, server.nurse, f"/sessions/{sid}")
        page.wait_for_selector('#review[data-loaded="true"]', timeout=15_000)
        expect(page.locator("#review")).to_have_attribute("data-phase", "infusion")
        expect(page.locator("#stats")).to_have_attribute("data-loaded", "true")
        expect(page.locator("#summary-open")).to_contain_text("Still open")
        expect(page.locator("#discharge")).to_contain_text("Not ready for discharge yet")
        expect(page.locator("#delete-session")).to_have_count(0)  # a nurse cannot delete
        expect(page.locator("#pain [data-pain-before]")).to_have_text("\u2014")
        page.select_option('#pain-form select[name="before"]', "4")
        page.click("#pain-form button")
        expect(page.locator("#pain [data-pain-before]")).to_have_attribute("data-pain-before", "4", timeout=5_000)
        assert server.get(f"/api/sessions/{sid}")["session"]["pain_before"] == 4
        assert screens.errors == []
    finally:
        step(server.base, server.nurse, f"/api/sessions/{sid}/end", {"reason": "test over"})
