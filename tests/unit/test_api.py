"""The dashboard API: health is open, everything else needs a token; the snapshot shows values and alarms."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from alerts.engine import AlarmEngine, WatchedDevice
from alerts.rules import LimitRule
from dashboard.app import LiveSources, create_app
from monitor import db
from monitor.broadcast import Broadcast
from monitor.hub import Hub
from monitor.model import Bay, LiveItem, Observation, Reading, TechnicalStatus
from monitor.tokens import create_token


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[TestClient, LiveSources, dict[str, str]]]:
    conn = db.connect(tmp_path)
    hub = Hub([Bay("bay1", "Bay 1", ["ox1"])])
    engine = AlarmEngine([LimitRule("spo2", 90, None, "high")], [WatchedDevice("ox1", "bay1")])
    src = LiveSources("test", hub, engine, Broadcast[LiveItem](), conn)
    def decide(item: Observation | TechnicalStatus) -> None:
        events = engine.observe(item) if isinstance(item, Observation) else engine.technical(item)
        for event in events:
            src.broadcast.publish(event)

    hub.add_sink(decide)
    tokens = {role: create_token(conn, role) for role in ("viewer", "nurse")}
    with TestClient(create_app(src)) as client:
        yield client, src, tokens
    conn.close()


def test_health_needs_no_token(world: tuple[TestClient, LiveSources, dict[str, str]]) -> None:
    client, _, _ = world
    assert client.get("/api/health").json()["status"] == "ok"


def test_bays_refuses_without_or_with_a_wrong_token(world: tuple[TestClient, LiveSources, dict[str, str]]) -> None:
    client, _, _ = world
    assert client.get("/api/bays").status_code == 401
    assert client.get("/api/bays", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_bays_shows_latest_value_and_active_alarm(world: tuple[TestClient, LiveSources, dict[str, str]]) -> None:
    client, src, tokens = world
    src.hub.ingest("ox1", Reading("spo2", 86), 1000.0)
    body = client.get("/api/bays", headers={"Authorization": f"Bearer {tokens['viewer']}"}).json()
    (bay,) = body["bays"]
    assert bay["vitals"]["spo2"] == {"value": 86, "time": 1000.0, "device": "ox1"}
    assert [(a["id"], a["priority"], a["since"]) for a in bay["alarms"]] == [("spo2_low", "high", 1000.0)]


def test_login_sets_httponly_strict_cookie_and_page_needs_it(
    world: tuple[TestClient, LiveSources, dict[str, str]],
) -> None:
    client, _, tokens = world
    page = client.get("/", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/login"
    assert client.post("/api/login", json={"token": "wrong"}).status_code == 401
    ok = client.post("/api/login", json={"token": tokens["nurse"]})
    assert ok.status_code == 200 and ok.json() == {"role": "nurse"}
    cookie = ok.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
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
        src.hub.ingest("ox1", Reading("spo2", 80), 5.0)
        alarm = ws.receive_json()
        assert (alarm["type"], alarm["id"], alarm["phase"], alarm["value"]) == ("alarm", "spo2_low", "start", 80)


def test_quiet_websocket_gets_heartbeats(world: tuple[TestClient, LiveSources, dict[str, str]]) -> None:
    client, _, tokens = world
    with client.websocket_connect("/ws/live", headers={"Authorization": f"Bearer {tokens['viewer']}"}) as ws:
        assert ws.receive_json()["type"] == "snapshot"
        beat = ws.receive_json()  # nothing happens in the clinic: the server still says it is alive
        assert beat["type"] == "heartbeat" and beat["server_time"] > 0


def test_health_reports_a_failing_recorder(tmp_path: Path) -> None:
    from monitor.recorder import Recorder

    conn = db.connect(tmp_path)
    rec = Recorder(conn)
    src = LiveSources("t", Hub([]), AlarmEngine([], []), Broadcast[LiveItem](), conn, rec)
    with TestClient(create_app(src)) as client:
        assert client.get("/api/health").json()["status"] == "ok"
        rec.record(Observation("b", "d", "spo2", 97.0, None, 1.0))
        conn.execute("DROP TABLE observations")
        rec.flush()
        body = client.get("/api/health").json()
    assert body["status"] == "degraded"
    assert body["recorder"] == {"written": 0, "pending": 1, "failing": True, "dropped": 0}
