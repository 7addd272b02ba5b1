"""The nursing-station console's state and screen (monitor/station.py) from the bedside/v1 payloads: priority
order, ACK / PAUSED / LATCHED marks, the offline banner (last will, stale or missing heartbeat, broker lost), the
bell once per new high alarm, malformed messages counted and never raised; and the broker URL (station_app)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from rich.console import Console

from monitor.station import StationState, render
from monitor.station_app import parse_broker

T0 = 1_780_000_000.0
SITE = "clinic"
HB = f"bedside/v1/{SITE}/service/bedside/heartbeat"


def topic(bay: str, leaf: str = "alarms") -> str:
    return f"bedside/v1/{SITE}/bay/{bay}/{leaf}"


def alarm(alarm_id: str, priority: str, message: str, since: float, **more: Any) -> dict[str, Any]:
    return {"id": alarm_id, "kind": "physiological", "priority": priority, "message": message, "vital": None,
            "value": None, "limit": None, "device": None, "since": since, "acknowledged_by": None,
            "latched": False, "audible": True, "paused_until": None, "escalation": 0, **more}


def snapshot(bay: str, alarms: list[dict[str, Any]], now: float = T0) -> bytes:
    return json.dumps({"site": SITE, "bay": bay, "bay_name": bay.replace("bay", "Bay "), "time": now,
                       "ts": "2026-06-01T12:00:00.000Z", "alarms": alarms}).encode()


def heartbeat(state: str, now: float = T0, interval: float = 5.0) -> bytes:
    return json.dumps({"state": state, "instance": "bedside", "time": now, "ts": "x", "interval": interval}).encode()


def online(now: float = T0) -> StationState:
    """A console connected to the broker that has heard bedside's heartbeat at `now`."""
    state = StationState(SITE, "mqtt://broker:1883", started=now)
    assert state.link_up(now) == []
    assert state.apply(HB, heartbeat("online", now), now) == []
    assert state.verdict(now).watched is True
    return state


def screen(state: StationState, now: float, width: int = 80, height: int = 24) -> list[str]:
    console = Console(width=width, height=height, record=True, force_terminal=True, color_system=None)
    console.print(render(state, now, width, height))
    return console.export_text().splitlines()


def line_of(lines: list[str], text: str) -> int:
    return next(i for i, line in enumerate(lines) if text in line)


def test_alarms_are_ordered_high_medium_low_with_their_marks() -> None:
    state = online()
    state.apply(topic("bay2"), snapshot("bay2", [alarm("etco2_low", "low", "EtCO2 LOW 28 < 30", T0 - 5)]), T0)
    state.apply(topic("bay1"), snapshot("bay1", [
        alarm("nibp_sys_high", "medium", "NIBP SYS HIGH 185 > 180", T0 - 400, acknowledged_by="nurse.jo"),
        alarm("spo2_low", "high", "SpO2 LOW 85 < 90", T0 - 75, latched=True, paused_until=T0 + 100),
    ]), T0)
    state.apply(topic("bay3"), snapshot("bay3", []), T0)

    assert [(b.id, a.priority) for b, a in state.active()] == [("bay1", "high"), ("bay1", "medium"),
                                                               ("bay2", "low")]
    lines = screen(state, T0)
    high, medium, low = (line_of(lines, t) for t in ("SpO2 LOW", "NIBP SYS", "EtCO2 LOW"))
    assert high < medium < low
    assert lines[high].startswith("!!!") and "Bay 1" in lines[high]
    assert "1:15" in lines[high] and "PAUSED 1:40" in lines[high] and "LATCHED" in lines[high]
    assert lines[medium].startswith("!! ") and "ACK nurse.jo" in lines[medium] and "6:40" in lines[medium]
    assert lines[low].startswith("!  ")
    assert "Quiet: Bay 3" in lines[line_of(lines, "Quiet")]
    assert not any("OFFLINE" in line for line in lines)


def test_a_pause_that_ran_out_is_not_shown() -> None:
    state = online()
    state.apply(topic("bay1"), snapshot("bay1", [alarm("hr_high", "medium", "HR HIGH", T0, paused_until=T0 + 10)]), T0)
    assert "PAUSED 0:10" in screen(state, T0)[line_of(screen(state, T0), "HR HIGH")]
    later = screen(state, T0 + 11)
    assert "PAUSED" not in later[line_of(later, "HR HIGH")]


def test_high_alarm_colour_and_marks_in_the_rendered_styles() -> None:
    state = online()
    state.apply(topic("bay1"), snapshot("bay1", [alarm("spo2_low", "high", "SpO2 LOW", T0)]), T0)
    console = Console(width=80, height=24, record=True, force_terminal=True, color_system="standard")
    console.print(render(state, T0))
    html = console.export_html(inline_styles=True)
    assert "color: #800000" in html or "color: #ff0000" in html  # red (standard palette)


def test_last_will_offline_shows_the_banner_and_rings_once() -> None:
    state = online()
    bells = state.apply(HB, heartbeat("offline", T0 - 3600), T0 + 1)  # the will carries when bedside connected
    assert len(bells) == 1 and "BEDSIDE OFFLINE" in bells[0]
    assert state.tick(T0 + 2) == [] and state.tick(T0 + 30) == []  # once, not every second
    lines = screen(state, T0 + 2)
    assert any("BEDSIDE OFFLINE" in line for line in lines)
    assert state.apply(HB, heartbeat("online", T0 + 40), T0 + 40) == []
    assert not any("BEDSIDE OFFLINE" in line for line in screen(state, T0 + 40))
    assert len(state.apply(HB, heartbeat("offline", T0 + 50), T0 + 50)) == 1  # a new outage rings again


def test_a_heartbeat_older_than_three_intervals_is_offline() -> None:
    state = online()
    state.apply(HB, heartbeat("online", T0, interval=2.0), T0)
    assert state.tick(T0 + 6.0) == []  # exactly 3 x 2 s: still fine
    assert state.verdict(T0 + 6.0).watched is True
    bells = state.tick(T0 + 6.5)
    assert len(bells) == 1
    verdict = state.verdict(T0 + 6.5)
    assert verdict.watched is False and verdict.title == "BEDSIDE OFFLINE" and "expected every 2 s" in verdict.detail
    assert any("BEDSIDE OFFLINE" in line for line in screen(state, T0 + 7))
    state.apply(HB, heartbeat("online", T0 + 8, interval=2.0), T0 + 8)
    assert state.verdict(T0 + 8).watched is True


def test_no_heartbeat_at_all_after_connecting_is_offline() -> None:
    state = StationState(SITE, "mqtt://broker:1883", started=T0)
    state.link_up(T0)
    assert state.verdict(T0 + 10).watched is None  # still waiting for the first one
    assert state.tick(T0 + 10) == []
    assert len(state.tick(T0 + 16)) == 1
    assert "no heartbeat" in state.verdict(T0 + 16).detail


def test_broker_loss_is_a_banner_and_last_known_alarms_are_marked_not_live() -> None:
    state = online()
    state.apply(topic("bay1"), snapshot("bay1", [alarm("spo2_low", "medium", "SpO2 LOW", T0)]), T0)
    bells = state.link_down(T0 + 1, "connection refused")
    assert len(bells) == 1 and "BROKER CONNECTION LOST" in bells[0]
    lines = screen(state, T0 + 1)
    assert line_of(lines, "BROKER CONNECTION LOST") < line_of(lines, "NOT LIVE") < line_of(lines, "SpO2 LOW")
    assert state.tick(T0 + 60) == []  # the heartbeat going stale meanwhile is the same outage: no second bell
    state.link_up(T0 + 61)
    assert state.apply(HB, heartbeat("online", T0 + 61), T0 + 61) == []
    assert state.verdict(T0 + 61).watched is True


def test_never_connected_is_a_banner_too() -> None:
    state = StationState(SITE, "mqtt://broker:1883", started=T0)
    assert state.verdict(T0).watched is None
    assert len(state.link_down(T0 + 1, "refused")) == 1
    assert state.verdict(T0 + 1).title == "NO CONNECTION TO BROKER"


def test_bell_rings_exactly_once_per_new_high_alarm() -> None:
    state = online()
    high = alarm("spo2_low", "high", "SpO2 LOW 85 < 90", T0)
    event = {"site": SITE, "bay": "bay1", "seq": 1, "event_id": "clinic/bay1/1", "phase": "start", "id": "spo2_low",
             "kind": "physiological", "priority": "high", "message": "SpO2 LOW 85 < 90", "time": T0}
    assert state.apply(topic("bay1", "alarm_events"), json.dumps(event).encode(), T0) == [
        "high alarm: bay1 SpO2 LOW 85 < 90"]
    assert state.apply(topic("bay1"), snapshot("bay1", [high]), T0) == []  # the same start: no second bell
    assert state.apply(topic("bay1"), snapshot("bay1", [high], T0 + 1), T0 + 1) == []  # republished (reconnect)
    acked = {**high, "acknowledged_by": "nurse.jo"}
    assert state.apply(topic("bay1"), snapshot("bay1", [acked], T0 + 2), T0 + 2) == []
    medium = alarm("hr_high", "medium", "HR HIGH", T0 + 3)
    assert state.apply(topic("bay1"), snapshot("bay1", [acked, medium], T0 + 3), T0 + 3) == []  # medium: silent
    state.apply(HB, heartbeat("online", T0 + 100), T0 + 100)
    again = alarm("spo2_low", "high", "SpO2 LOW 84 < 90", T0 + 100)  # the same condition starting anew
    assert state.apply(topic("bay1"), snapshot("bay1", [again], T0 + 100), T0 + 100) == [
        "high alarm: Bay 1 SpO2 LOW 84 < 90"]
    other = alarm("spo2_low", "high", "SpO2 LOW 80 < 90", T0 + 100)
    assert len(state.apply(topic("bay2"), snapshot("bay2", [other], T0 + 100), T0 + 100)) == 1  # another bay


def test_a_high_alarm_already_acknowledged_when_first_seen_does_not_ring() -> None:
    state = online()
    acked = alarm("spo2_low", "high", "SpO2 LOW", T0 - 60, acknowledged_by="nurse.jo")
    assert state.apply(topic("bay1"), snapshot("bay1", [acked]), T0) == []


def test_malformed_payloads_are_counted_and_shown_never_raised() -> None:
    state = online()
    bad: list[tuple[str, bytes]] = [
        (topic("bay1"), b"\xff\xfe not json"),
        (topic("bay1"), b"[1, 2]"),
        (topic("bay1"), b'{"alarms": "none"}'),
        (topic("bay1", "alarm_events"), b'{"phase": 3}'),
        (f"bedside/v1/{SITE}/bay/bay1/whatever", b"{}"),
        ("bedside/v1/elsewhere/bay/bay1/alarms", snapshot("bay1", [])),
        (HB, b'{"state": "sleepy", "interval": "often"}'),
    ]
    for t, payload in bad:
        state.apply(t, payload, T0)
    assert state.malformed == len(bad)
    assert state.verdict(T0).watched is False  # a heartbeat that cannot be read is not "online"
    assert any("malformed: 7" in line for line in screen(state, T0, width=120))


def test_a_partly_malformed_snapshot_keeps_what_it_can_and_fails_safe() -> None:
    state = online()
    odd = [alarm("spo2_low", "urgent", "SpO2 LOW", T0), {"priority": "high"}, {**alarm("hr_high", "low", "HR", T0),
                                                                                "since": "x"}]
    bells = state.apply(topic("bay1"), snapshot("bay1", odd), T0)
    assert state.malformed == 1
    assert [(a.id, a.priority, a.since) for _, a in state.active()] == [("spo2_low", "high", T0),
                                                                       ("hr_high", "low", None)]
    assert len(bells) == 1  # an unknown priority counts as high


def test_the_latest_snapshot_wins_even_if_bedside_clock_went_back() -> None:
    state = online()
    state.apply(topic("bay1"), snapshot("bay1", [], T0 + 5), T0 + 5)
    state.apply(topic("bay1"), snapshot("bay1", [alarm("hr_high", "medium", "HR HIGH", T0)], T0), T0 + 6)
    assert [a.id for _, a in state.active()] == ["hr_high"]


def test_cleared_retained_topics_forget_the_bay_and_the_service() -> None:
    state = online()
    state.apply(topic("bay1"), snapshot("bay1", []), T0)
    state.apply(topic("bay1"), b"", T0)
    assert state.bays == {}
    state.apply(HB, b"", T0)
    assert state.heartbeats == {} and state.malformed == 0


def test_many_alarms_fit_an_80x24_screen_lowest_dropped_first() -> None:
    state = online()
    for i in range(1, 31):
        priority = "high" if i <= 3 else "low"
        state.apply(topic(f"bay{i}"), snapshot(f"bay{i}", [alarm("x", priority, f"ALARM {i:02d}", T0 - i)]), T0)
    lines = screen(state, T0)
    assert len(lines) <= 24
    assert all(any(f"ALARM {i:02d}" in line for line in lines) for i in (1, 2, 3))
    assert any("more alarms" in line for line in lines)
    assert "Ctrl-C" in lines[-1]


def test_the_broker_url() -> None:
    b = parse_broker("mqtts://nurse%40ward:s3cret@broker.example:8884")
    assert (b.host, b.port, b.tls, b.username, b.password) == ("broker.example", 8884, True, "nurse@ward", "s3cret")
    assert "s3cret" not in b.shown() and b.shown() == "mqtts://nurse@ward@broker.example:8884"
    assert parse_broker("mqtt://127.0.0.1").port == 1883
    assert parse_broker("mqtts://h").port == 8883
    for bad in ("http://h:1", "mqtt://h:notaport", "mqtt://:1883", "mqtt://h:1/clinic", "h:1883"):
        with pytest.raises(ValueError):
            parse_broker(bad)
