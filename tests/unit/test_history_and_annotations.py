"""The bay detail page's data: annotations are stored before they are shown, audited and sent live; a bay's history
gives what was recorded over a window: values per vital, alarm periods (also one that began before the window),
technical periods and annotations."""

from __future__ import annotations

from monitor.model import AlarmEvent, Reading
from monitor.store import AuditQuery
from tests.unit.conftest import World, bearer


def test_a_nurse_annotates_it_is_stored_audited_and_sent_live(world: World) -> None:
    client, src, tokens = world
    nurse = bearer(tokens, "nurse")
    with client.websocket_connect("/ws/live", headers=nurse) as ws:
        assert ws.receive_json()["type"] == "snapshot"
        resp = client.post("/api/bays/bay1/annotations", json={"kind": "nausea", "text": " ondansetron 4 mg "},
                           headers=nurse)
        assert resp.status_code == 200, resp.text
        note = resp.json()
        assert (note["kind"], note["text"], note["who"], note["time"]) == ("nausea", "ondansetron 4 mg", "nurse one",
                                                                          1000.0)
        live = ws.receive_json()
        assert live == {**note, "type": "annotation"}
    notes = src.store.bay_history("bay1", 0.0, 2000.0)["annotations"]
    [row] = [(n["id"], n["who"], n["kind"], n["text"]) for n in notes]
    assert row == (note["id"], "nurse one", "nausea", "ondansetron 4 mg")
    audit = [(r.who, r.action, r.bay, r.target) for r in src.store.audit_log(AuditQuery())]
    assert audit == [("nurse one", "annotation", "bay1", "nausea")]


def test_bad_annotations_are_refused_with_the_reason(world: World) -> None:
    client, src, tokens = world
    nurse = bearer(tokens, "nurse")
    cases = [({"kind": "party"}, "kind must be one of"), ({"kind": "note", "text": "  "}, "a note needs text"),
             ({"kind": "note", "text": "x" * 2001}, "at most 2000"), ({"kind": "nausea", "time": 5000.0}, "future"),
             ({"kind": "nausea", "time": 1000.0 - 13 * 3600}, "within the last 12 h")]
    for body, reason in cases:
        resp = client.post("/api/bays/bay1/annotations", json=body, headers=nurse)
        assert resp.status_code == 400 and reason in resp.json()["detail"], (body, resp.text)
    assert client.post("/api/bays/nope/annotations", json={"kind": "nausea"}, headers=nurse).status_code == 404
    assert src.store.bay_history("bay1", 0.0, 2000.0)["annotations"] == []


def test_history_gives_values_alarm_periods_and_annotations_of_the_window(world: World, clock: list[float]) -> None:
    client, src, tokens = world
    viewer, nurse = bearer(tokens, "viewer"), bearer(tokens, "nurse")
    for t, spo2 in ((900.0, 97), (950.0, 75), (990.0, 96)):  # 75 is under the desat floor: an alarm at once
        clock[0] = t
        src.hub.ingest("ox1", Reading("spo2", spo2), t)
        src.hub.ingest("ox1", Reading("pr", 80 + t / 100), t)
    clock[0] = 1000.0
    client.post("/api/bays/bay1/annotations", json={"kind": "infusion_start", "time": 960.0}, headers=nurse)
    resp = client.get("/api/bays/bay1/history", params={"since": 940, "until": 1000}, headers=viewer)
    assert resp.status_code == 200, resp.text
    h = resp.json()
    assert h["observations"]["spo2"] == [[950.0, 75.0], [990.0, 96.0]]  # 900 is before the window
    assert [t for t, _ in h["observations"]["pr"]] == [950.0, 990.0]
    [alarm] = [a for a in h["alarms"] if a["id"] == "spo2_low"]
    assert alarm["priority"] == "high" and alarm["start"] == 950.0 and alarm["end"] is None  # latched: still on
    assert [(a["kind"], a["time"], a["who"]) for a in h["annotations"]] == [("infusion_start", 960.0, "nurse one")]
    # a window after the alarm began still shows it, with its true start
    later = client.get("/api/bays/bay1/history", params={"since": 980, "until": 1000}, headers=viewer).json()
    assert [(a["id"], a["start"]) for a in later["alarms"] if a["id"] == "spo2_low"] == [("spo2_low", 950.0)]
    assert later["annotations"] == []


def test_history_refuses_bad_windows(world: World) -> None:
    client, _, tokens = world
    viewer = bearer(tokens, "viewer")
    assert client.get("/api/bays/bay1/history", params={"since": 10, "until": 5}, headers=viewer).status_code == 400
    too_long = client.get("/api/bays/bay1/history", params={"since": 0, "until": 90_000}, headers=viewer)
    assert too_long.status_code == 400 and "24 h" in too_long.json()["detail"]
    assert client.get("/api/bays/bay1/history", params={"since": "nan"}, headers=viewer).status_code == 422
    assert client.get("/api/bays/zzz/history", headers=viewer).status_code == 404


def test_a_limit_change_tells_every_page_to_read_the_settings_again(world: World) -> None:
    client, _, tokens = world
    nurse = bearer(tokens, "nurse")
    with client.websocket_connect("/ws/live", headers=bearer(tokens, "viewer")) as ws:
        assert ws.receive_json()["type"] == "snapshot"
        resp = client.put("/api/bays/bay1/alarm-settings", json={"overrides": {"spo2": {"low": 88}}}, headers=nurse)
        assert resp.status_code == 200, resp.text
        assert ws.receive_json() == {"type": "settings", "bay": "bay1", "time": 1000.0, "who": "nurse one",
                                     "what": "alarm_settings"}
        client.put("/api/bays/bay1/baselines/hr", json={"value": 72}, headers=nurse)
        assert ws.receive_json()["what"] == "baseline"


def test_an_alarm_that_began_before_the_lookback_still_shows_in_the_window(world: World) -> None:
    from monitor.history import LOOKBACK

    _, src, _ = world
    src.store.append_durable([AlarmEvent("bay1", "hr_high", "end", "physiological", "medium", 5000.0, "HR HIGH")])
    h = src.store.bay_history("bay1", 4000.0, 6000.0)
    [period] = h["alarms"]
    assert (period["id"], period["start"], period["end"], period["started_before"]) == (
        "hr_high", 4000.0 - LOOKBACK, 5000.0, True)
