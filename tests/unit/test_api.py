"""The dashboard API: health is open, everything else needs a token; the snapshot shows values and alarms; alarm
actions need a nurse, reach the engine, and are audited."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from alerts.engine import AlarmEngine
from dashboard.app import LiveSources, create_app
from monitor import db
from monitor.broadcast import Broadcast
from monitor.hub import Hub
from monitor.model import LiveItem, Observation, Reading
from monitor.store import AuditQuery
from tests.unit.conftest import World, bearer


def test_health_needs_no_token(world: tuple[TestClient, LiveSources, dict[str, str]]) -> None:
    client, _, _ = world
    assert client.get("/api/health").json()["status"] == "ok"


def test_bays_refuses_without_or_with_a_wrong_token(world: tuple[TestClient, LiveSources, dict[str, str]]) -> None:
    client, _, _ = world
    assert client.get("/api/bays").status_code == 401
    assert client.get("/api/bays", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_bays_shows_latest_value_and_active_alarm(world: tuple[TestClient, LiveSources, dict[str, str]]) -> None:
    client, src, tokens = world
    src.hub.ingest("ox1", Reading("spo2", 78), 1000.0)  # below the desat floor (80): an alarm at once
    body = client.get("/api/bays", headers=bearer(tokens, "viewer")).json()
    (bay,) = body["bays"]
    assert bay["vitals"]["spo2"] == {"value": 78, "time": 1000.0, "device": "ox1"}
    assert [(a["id"], a["priority"], a["since"], a["acknowledged"], a["audible"]) for a in bay["alarms"]] == [
        ("spo2_low", "high", 1000.0, False, True)]
    assert bay["profile"] == "ketamine-infusion"


def test_login_sets_httponly_strict_cookie_and_page_needs_it(
    world: tuple[TestClient, LiveSources, dict[str, str]],
) -> None:
    client, _, tokens = world
    page = client.get("/", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/login"
    assert client.post("/api/login", json={"token": "wrong"}).status_code == 401
    ok = client.post("/api/login", json={"token": tokens["nurse"]})
    assert ok.status_code == 200 and ok.json() == {"name": "nurse one", "role": "nurse"}
    cookie = ok.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert tokens["nurse"].lower() not in cookie  # the cookie holds a session id, not the token
    assert client.get("/api/bays").status_code == 200  # the cookie now authenticates
    assert "default-src 'self'" in client.get("/").headers["content-security-policy"]


def test_websocket_refused_without_token_and_sends_snapshot_then_live(
    world: tuple[TestClient, LiveSources, dict[str, str]],
) -> None:
    client, src, tokens = world
    with pytest.raises(WebSocketDisconnect), client.websocket_connect("/ws/live") as ws:
        ws.receive_json()
    headers = {"Authorization": f"Bearer {tokens['viewer']}"}
    with client.websocket_connect("/ws/live", headers=headers) as ws:
        first = ws.receive_json()
        assert first["type"] == "snapshot" and [b["id"] for b in first["bays"]] == ["bay1"]
        src.hub.ingest("ox1", Reading("spo2", 75), 1000.0)
        assert ws.receive_json()["type"] == "obs"
        alarm = ws.receive_json()
        assert (alarm["type"], alarm["id"], alarm["phase"], alarm["value"]) == ("alarm", "spo2_low", "start", 75)


def test_quiet_websocket_gets_heartbeats(world: tuple[TestClient, LiveSources, dict[str, str]]) -> None:
    client, _, tokens = world
    with client.websocket_connect("/ws/live", headers={"Authorization": f"Bearer {tokens['viewer']}"}) as ws:
        assert ws.receive_json()["type"] == "snapshot"
        beat = ws.receive_json()  # nothing happens in the clinic: the server still says it is alive
        assert beat["type"] == "heartbeat" and beat["server_time"] > 0


def test_health_reports_a_failing_recorder(tmp_path: Path) -> None:
    from monitor.recorder import Recorder
    from monitor.sqlite_store import SQLiteStore

    conn = db.connect(tmp_path)
    store = SQLiteStore(tmp_path)
    rec = Recorder(store)
    src = LiveSources("t", Hub([]), AlarmEngine([]), Broadcast[LiveItem](), conn, store, rec)
    with TestClient(create_app(src)) as client:
        assert client.get("/api/health").json()["status"] == "ok"
        rec.record(Observation("b", "d", "spo2", 97.0, None, 1.0))
        conn.execute("DROP TABLE observations")
        rec.flush()
        body = client.get("/api/health").json()
    assert body["status"] == "degraded"
    assert body["recorder"] == {"written": 0, "pending": 1, "failing": True, "dropped": 0}


def test_a_nurse_acknowledges_and_it_is_audited_with_who(world: World) -> None:
    client, src, tokens = world
    src.hub.ingest("ox1", Reading("spo2", 78), 1000.0)
    url = "/api/bays/bay1/alarms/spo2_low/acknowledge"
    assert client.post(url).status_code == 401
    refused = client.post(url, headers=bearer(tokens, "viewer"))
    assert refused.status_code == 403  # the server enforces the role, not only the page
    ok = client.post(url, headers=bearer(tokens, "nurse"))
    assert ok.status_code == 200
    assert [(e["phase"], e["by"]) for e in ok.json()["events"]] == [("acknowledged", "nurse one")]
    (alarm,) = src.engine.active("bay1")
    assert alarm.acknowledged_by == "nurse one" and not alarm.audible
    assert client.post("/api/bays/bay1/alarms/nope/acknowledge", headers=bearer(tokens, "nurse")).status_code == 404
    assert client.post("/api/bays/bay9/alarms/spo2_low/acknowledge", headers=bearer(tokens, "nurse")).status_code \
        == 404
    assert src.recorder is not None
    src.recorder.flush()
    rows = [(r.who, r.action, r.bay, r.target) for r in src.store.audit_log(AuditQuery())]
    assert ("nurse one", "acknowledge", "bay1", "spo2_low") in rows


def test_audio_pause_is_bounded_and_resumable(world: World) -> None:
    client, src, tokens = world
    src.hub.ingest("ox1", Reading("spo2", 78), 1000.0)
    nurse = bearer(tokens, "nurse")
    too_long = client.post("/api/bays/bay1/audio-pause", json={"seconds": 600}, headers=nurse)
    assert too_long.status_code == 400 and "at most 120" in too_long.json()["detail"]
    paused = client.post("/api/bays/bay1/audio-pause", json={}, headers=nurse).json()["events"]
    assert [(e["phase"], e["until"]) for e in paused] == [("audio_paused", 1120.0)]  # default: the 120-s maximum
    resumed = client.post("/api/bays/bay1/audio-resume", headers=nurse).json()["events"]
    assert [e["phase"] for e in resumed] == ["audio_resumed"]


def test_alarm_settings_change_is_validated_applied_and_audited(world: World) -> None:
    client, src, tokens = world
    nurse = bearer(tokens, "nurse")
    settings = client.get("/api/bays/bay1/alarm-settings", headers=bearer(tokens, "viewer")).json()
    assert settings["profile"] == "ketamine-infusion" and "recovery" in settings["profiles"]
    bad = client.put("/api/bays/bay1/alarm-settings", json={"overrides": {"spo2": {"low": 99, "high": 95}}},
                     headers=nurse)
    assert bad.status_code == 400 and "must be below high" in bad.json()["detail"]
    assert src.engine.overrides("bay1") == {}  # nothing changed
    ok = client.put("/api/bays/bay1/alarm-settings", json={"profile": "recovery", "overrides": {"spo2": {"low": 88}}},
                    headers=nurse)
    assert ok.status_code == 200
    assert ok.json()["settings"]["profile"] == "recovery"
    assert src.engine.effective_profile("bay1").vitals["spo2"].low == 88
    assert client.put("/api/bays/bay1/alarm-settings", json={"profile": "nope"}, headers=nurse).status_code == 400
    assert src.engine.profile_name("bay1") == "recovery"
    base = client.put("/api/bays/bay1/baselines/nibp_sys", json={"value": 125}, headers=nurse)
    assert base.json() == {"baselines": {"nibp_sys": 125.0}}
    assert src.recorder is not None
    src.recorder.flush()
    rows = list(reversed(src.store.audit_log(AuditQuery())))  # oldest first
    assert [r.action for r in rows] == ["alarm_settings", "baseline"]
    assert '"profile": "ketamine-infusion"' in (rows[0].before or "") and '"low": 88' in (rows[0].after or "")


@pytest.mark.parametrize("body", ['{"overrides": {"spo2": {"low": NaN}}}', '{"overrides": {"spo2": {"low": -1e999}}}',
                                  '{"overrides": {"spo2": {"low": -5}}}'])
def test_a_limit_cannot_be_made_nan_infinite_or_impossible(world: World, body: str) -> None:
    client, src, tokens = world
    r = client.put("/api/bays/bay1/alarm-settings", content=body,
                   headers={**bearer(tokens, "nurse"), "Content-Type": "application/json"})
    assert 400 <= r.status_code < 500
    assert src.engine.effective_profile("bay1").vitals["spo2"].low == 90  # unchanged


def test_a_baseline_cannot_be_nan_or_impossible(world: World) -> None:
    client, src, tokens = world
    for body in ('{"value": NaN}', '{"value": -5}'):
        r = client.put("/api/bays/bay1/baselines/nibp_sys", content=body,
                       headers={**bearer(tokens, "nurse"), "Content-Type": "application/json"})
        assert 400 <= r.status_code < 500
    assert src.engine.baselines("bay1") == {}


def test_a_refused_settings_request_does_not_touch_a_running_satseconds_count(world: World) -> None:
    client, src, tokens = world
    src.hub.ingest("ox1", Reading("spo2", 86), 1000.0)  # SatSeconds 25 at 4 points/s: due 6.25 s later
    bad = client.put("/api/bays/bay1/alarm-settings", headers=bearer(tokens, "nurse"),
                     json={"profile": "recovry", "overrides": {"spo2": {"satseconds": 0, "delay": 10}}})
    assert bad.status_code == 400
    (slot,) = [s for s in src.engine.conditions if s.kind == "satseconds"]
    assert slot.in_use[0] and slot.evaluator.index[0] == 0.0  # nothing was reset or stepped by the refusal
