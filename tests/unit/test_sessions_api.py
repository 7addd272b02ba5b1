"""Infusion sessions through the API on the real service (clock in the test's hand): each step's rules, the alarm
profile and baselines following the session, discharge readiness, the audit and what the page is sent."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from monitor.model import Reading
from tests.unit.conftest import World, bearer

ADMIT = {"patient_id": "P-0042", "initials": "jd", "weight_kg": 80, "dose_mg_per_kg": 0.5, "planned_minutes": 40,
         "series_kind": "induction", "series_index": 2, "series_total": 6}
CHECKLIST = {"fasting_hours": 6, "escort_name": "Sam Doe", "escort_phone": "+1 555 0100", "consent": True}
ALDRETE = {"activity": 2, "respiration": 2, "circulation": 2, "consciousness": 2, "spo2": 2}


def feed(world: World, clock: list[float], seconds: int, spo2: float = 97, pr: float = 70) -> None:
    """`seconds` of 1 Hz readings from the bay's oximeter, the clock moving with them."""
    _, src, _ = world
    for _ in range(seconds):
        clock[0] += 1
        src.hub.ingest("ox1", Reading("spo2", spo2), clock[0])
        src.hub.ingest("ox1", Reading("pr", pr), clock[0])


def post(client: TestClient, tokens: dict[str, str], path: str, body: dict[str, Any] | None = None,
         role: str = "nurse") -> Any:
    return client.post(path, json=body or {}, headers=bearer(tokens, role))


def test_a_whole_session_admit_to_discharge(world: World, clock: list[float]) -> None:
    client, _, tokens = world
    assert post(client, tokens, "/api/bays/bay1/session", ADMIT, role="viewer").status_code == 403
    r = post(client, tokens, "/api/bays/bay1/session", ADMIT)
    assert r.status_code == 200, r.text
    s = r.json()["session"]
    sid = s["id"]
    assert (s["phase"], s["initials"], s["total_mg"], s["rate_mg_per_h"], s["series_label"]) == (
        "admitted", "JD", 40.0, 60.0, "induction 2 of 6")
    assert s["checklist"]["missing"] == ["fasting hours", "escort name", "escort phone", "consent"]
    assert post(client, tokens, "/api/bays/bay1/session", ADMIT).status_code == 409  # one patient per bay
    tile = client.get("/api/bays", headers=bearer(tokens, "viewer")).json()["bays"][0]["session"]
    assert (tile["initials"], tile["phase"]) == ("JD", "admitted")

    refused = post(client, tokens, f"/api/sessions/{sid}/dose", {"action": "start"})
    assert refused.status_code == 409 and "checklist incomplete" in refused.json()["detail"]
    assert post(client, tokens, f"/api/sessions/{sid}/checklist", CHECKLIST).status_code == 200
    assert post(client, tokens, f"/api/sessions/{sid}/baseline").json()["session"]["phase"] == "baseline"
    feed(world, clock, 60, spo2=97, pr=70)
    started = post(client, tokens, f"/api/sessions/{sid}/dose", {"action": "start"}).json()["session"]
    assert started["phase"] == "infusion" and started["baseline"] == {"spo2": 97.0, "pr": 70.0}
    settings = client.get("/api/bays/bay1/alarm-settings", headers=bearer(tokens, "viewer")).json()
    assert settings["profile"] == "ketamine-infusion" and settings["baselines"] == {"spo2": 97.0, "pr": 70.0}

    clock[0] += 600
    assert post(client, tokens, f"/api/sessions/{sid}/dose", {"action": "rate", "rate_mg_per_h": 45}).status_code \
        == 200
    clock[0] += 600
    after = post(client, tokens, f"/api/sessions/{sid}/recovery").json()
    assert after["session"]["phase"] == "recovery"
    assert [d["action"] for d in after["session"]["doses"]] == ["start", "rate", "stop"]
    # 600 s at 60 mg/h then 600 s at 45 mg/h: 10 + 7.5 mg
    assert after["dose_given_mg"] == 17.5
    assert client.get("/api/bays/bay1/alarm-settings", headers=bearer(tokens, "viewer")).json()["profile"] == \
        "recovery"

    feed(world, clock, 60, spo2=97, pr=95)  # pulse 95 is more than 20 % above its baseline of 70
    refused = post(client, tokens, f"/api/sessions/{sid}/discharge")
    assert refused.status_code == 409
    unmet = refused.json()["detail"]["unmet"]
    assert "no Aldrete score entered" in unmet and "escort not confirmed" in unmet
    assert any(u.startswith("recovery 1 min of at least 30") for u in unmet)
    assert any(u.startswith("pr 95 not within 20% of baseline 70") for u in unmet)

    assert post(client, tokens, f"/api/sessions/{sid}/aldrete", {**ALDRETE, "spo2": 1}).status_code == 200
    assert post(client, tokens, f"/api/sessions/{sid}/checklist", {"escort_confirmed": True}).status_code == 200
    assert post(client, tokens, f"/api/sessions/{sid}/pain", {"before": 7, "after": 3}).status_code == 200
    feed(world, clock, 30 * 60, spo2=97, pr=72)
    ready = client.get("/api/bays/bay1/session", headers=bearer(tokens, "viewer")).json()
    assert ready["readiness"] == []  # Aldrete 9 is enough; vitals back for 15 min; 31 min of recovery
    done = post(client, tokens, f"/api/sessions/{sid}/discharge")
    assert done.status_code == 200, done.text
    closed = done.json()["session"]
    assert closed["phase"] == "closed" and closed["discharge"]["outcome"] == "discharged"
    assert (closed["pain_before"], closed["pain_after"], closed["aldrete"]["total"]) == (7, 3, 9)
    assert client.get("/api/bays/bay1/session", headers=bearer(tokens, "viewer")).json() == {"session": None}
    handed_back = client.get("/api/bays/bay1/alarm-settings", headers=bearer(tokens, "viewer")).json()
    assert handed_back["profile"] == "ketamine-infusion" and handed_back["baselines"] == {}

    audit = client.get("/api/audit", params={"bay": "bay1"}, headers=bearer(tokens, "admin")).json()["records"]
    actions = [(a["action"], a["who"], a["target"]) for a in reversed(audit) if a["action"].startswith("session")]
    assert actions == [(f"session_{step}", "nurse one", sid) for step in (
        "admit", "checklist", "baseline", "dose", "dose", "recovery", "discharge_refused", "aldrete", "checklist",
        "pain", "discharge")]

    trace = client.get(f"/api/sessions/{sid}/trace", headers=bearer(tokens, "viewer")).json()
    assert trace["session"]["id"] == sid
    assert len(trace["trends"]["spo2"]["t"]) == 60 + 60 + 30 * 60
    assert trace["trends"]["pr"]["v"][:60] == [70.0] * 60


def test_a_discharge_can_be_overridden_with_a_reason(world: World, clock: list[float]) -> None:
    client, _, tokens = world
    sid = post(client, tokens, "/api/bays/bay1/session", ADMIT).json()["session"]["id"]
    post(client, tokens, f"/api/sessions/{sid}/checklist", CHECKLIST)
    post(client, tokens, f"/api/sessions/{sid}/dose", {"action": "start"})
    post(client, tokens, f"/api/sessions/{sid}/recovery")
    done = post(client, tokens, f"/api/sessions/{sid}/discharge", {"override_reason": "transferred to ED"})
    assert done.status_code == 200
    d = done.json()["session"]["discharge"]
    assert d["reason"] == "transferred to ED" and "no Aldrete score entered" in d["unmet"]
    audit = client.get("/api/audit", params={"action": "session_discharge"}, headers=bearer(tokens, "admin"))
    [record] = audit.json()["records"]
    assert "transferred to ED" in record["after"] and "no Aldrete score entered" in record["after"]


def test_bad_requests_are_refused_with_a_reason(world: World) -> None:
    client, _, tokens = world
    assert post(client, tokens, "/api/bays/nope/session", ADMIT).status_code == 404
    bad = post(client, tokens, "/api/bays/bay1/session", {**ADMIT, "weight_kg": 2})
    assert bad.status_code == 400 and "weight_kg" in bad.json()["detail"]
    assert post(client, tokens, "/api/bays/bay1/session", {**ADMIT, "extra": 1}).status_code == 422
    sid = post(client, tokens, "/api/bays/bay1/session", ADMIT).json()["session"]["id"]
    assert post(client, tokens, f"/api/sessions/{sid}/fly").status_code == 404
    assert post(client, tokens, "/api/sessions/none/baseline").status_code == 404
    assert post(client, tokens, f"/api/sessions/{sid}/aldrete", {**ALDRETE, "activity": 3}).status_code == 409
    assert post(client, tokens, f"/api/sessions/{sid}/dose", {"action": "fly"}).status_code == 422
    assert post(client, tokens, f"/api/sessions/{sid}/end", {"reason": ""}).status_code == 422
    ended = post(client, tokens, f"/api/sessions/{sid}/end", {"reason": "patient declined"})
    assert ended.json()["session"]["discharge"]["outcome"] == "ended"
    assert post(client, tokens, f"/api/sessions/{sid}/baseline").status_code == 409  # closed


def test_the_page_is_told_of_every_step(world: World) -> None:
    client, _, tokens = world
    with client.websocket_connect("/ws/live", headers=bearer(tokens, "viewer")) as ws:
        assert ws.receive_json()["bays"][0]["session"] is None
        post(client, tokens, "/api/bays/bay1/session", ADMIT)
        msg = ws.receive_json()
        while msg["type"] != "session":
            msg = ws.receive_json()
        assert (msg["step"], msg["who"], msg["session"]["initials"]) == ("admit", "nurse one", "JD")


def test_sessions_are_listed_and_an_admin_deletes_a_closed_one(world: World, clock: list[float]) -> None:
    client, _, tokens = world
    sid = post(client, tokens, "/api/bays/bay1/session", ADMIT).json()["session"]["id"]
    feed(world, clock, 5)
    listed = client.get("/api/sessions", params={"patient": "P-0042"}, headers=bearer(tokens, "viewer")).json()
    assert [s["id"] for s in listed["sessions"]] == [sid]
    assert client.get("/api/sessions", params={"patient": "other"}, headers=bearer(tokens, "viewer")).json() == {
        "sessions": []}
    assert client.delete(f"/api/sessions/{sid}", headers=bearer(tokens, "admin")).status_code == 409  # still open
    post(client, tokens, f"/api/sessions/{sid}/end", {"reason": "test"})
    assert client.delete(f"/api/sessions/{sid}", headers=bearer(tokens, "nurse")).status_code == 403
    assert client.delete(f"/api/sessions/{sid}", headers=bearer(tokens, "admin")).status_code == 200
    assert client.get(f"/api/sessions/{sid}", headers=bearer(tokens, "viewer")).status_code == 404
    audit = client.get("/api/audit", params={"action": "session_delete"}, headers=bearer(tokens, "admin")).json()
    assert [(r["who"], r["target"]) for r in audit["records"]] == [("admin one", sid)]
