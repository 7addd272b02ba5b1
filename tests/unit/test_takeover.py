"""A standby engine taking a ward over (monitor/service.py `_gain`), in process with an injected clock: the alarms
its hot copy decided while no engine published the ward are published with their own times, what the holder had
already said is not said again, what a nurse silenced at the holder stays silenced, the takeover is shown."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from alerts.notify.payloads import alarm_events_topic, alarms_topic, heartbeat_topic
from alerts.takeover import MATCH, published_alarms, unsaid
from monitor.config import parse_config
from monitor.model import AlarmEvent, Reading
from monitor.service import Service
from tests.storage import with_storage

pytestmark = pytest.mark.service

SITE = "hosp"


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def standby(tmp_path: Path, clock: Clock) -> Service:
    """engine-b: standby for ward-1 (bay1, held by engine-a), with nothing of its own."""
    raw: dict[str, Any] = {
        "site": SITE, "data_dir": str(tmp_path), "mqtt": {"url": "mqtt://127.0.0.1:1"},
        "nodes": [{"name": "engine-a", "role": "engine"}, {"name": "engine-b", "role": "engine"}],
        "wards": [{"id": "ward-1", "engine": "engine-a", "standby": "engine-b"}],
        "bays": [{"id": "bay1", "ward": "ward-1", "devices": [{"id": "mon1", "driver": "mqtt"}]}]}
    return Service(parse_config(with_storage(raw)).for_node("engine-b"), clock=clock)


def say(s: Service, topic: str, body: dict[str, Any]) -> None:
    s._on_engine_message(topic, json.dumps(body).encode())


def beat(s: Service, state: str, at: float, wards: list[str]) -> None:
    say(s, heartbeat_topic(SITE, "engine-a"),
        {"state": state, "instance": "engine-a", "time": at, "ts": "", "interval": 5.0, "wards": wards})


def holder_event(s: Service, alarm_id: str, phase: str, at: float, by: str | None = None) -> None:
    say(s, alarm_events_topic(SITE, "bay1"), {"site": SITE, "bay": "bay1", "id": alarm_id, "phase": phase,
                                             "kind": "physiological", "priority": "high", "time": at,
                                             "message": "", "by": by})


def snapshot_alarm(alarm_id: str, priority: str, vital: str, value: float, limit: float, *, since: float,
          latched: bool) -> dict[str, Any]:
    """An alarm of a retained snapshot, unacknowledged (schema $defs/alarm_snapshot)."""
    return {"id": alarm_id, "kind": "physiological", "priority": priority, "message": f"{vital.upper()} alarm",
            "vital": vital, "value": value, "limit": limit, "device": "mon1", "since": since, "acknowledged_by": None,
            "latched": latched, "audible": True, "paused_until": None, "escalation": 0}


def holder_snapshot(s: Service, at: float, *alarms: dict[str, Any]) -> None:
    say(s, alarms_topic(SITE, "bay1"), {"site": SITE, "bay": "bay1", "bay_name": "bay1", "time": at, "ts": "",
                                        "alarms": list(alarms)})


def feed(s: Service, clock: Clock, vital: str, value: float, seconds: int) -> None:
    """One reading a second for `seconds` s, each decided (a tick after each)."""
    for _ in range(seconds):
        s.emitter("mon1")(Reading(vital, value))
        clock.t += 1.0
        s.tick()


def start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Service, Clock, list[AlarmEvent]]:
    clock = Clock(1000.0)
    s = standby(tmp_path, clock)
    out: list[AlarmEvent] = []
    monkeypatch.setattr(s.notifier, "events", lambda events: out.extend(events))  # what goes to the outputs
    assert s.ownership is not None
    s.ownership.listening(clock.t - 10)  # listening for a while: engine A's heartbeat is in
    beat(s, "online", clock.t, ["ward-1"])
    assert s.ownership.decide(clock.t) == ([], [])  # engine A holds ward 1
    return s, clock, out


async def take_over(s: Service, clock: Clock) -> None:
    assert s.ownership is not None
    beat(s, "offline", 900.0, [])  # the last will: the time is when its connection was made
    gained, _ = s.ownership.decide(clock.t)
    assert gained == ["ward-1"]
    await s._gain("ward-1")


async def test_an_alarm_that_came_and_went_while_no_engine_published_is_published_at_the_takeover(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s, clock, out = start(tmp_path, monkeypatch)
    feed(s, clock, "hr", 80.0, 3)
    beat(s, "online", clock.t, ["ward-1"])  # engine A's last heartbeat: it freezes just after
    feed(s, clock, "hr", 150.0, 14)  # over 130 for more than the 10 s delay: a medium alarm, in this copy only
    feed(s, clock, "hr", 80.0, 8)  # and over again (medium alarms do not latch)
    assert not s.engine.active("bay1") and out == []  # nothing is said for a ward this engine does not hold
    await take_over(s, clock)
    said = [(e.id, e.phase) for e in out if e.id == "hr_high"]
    assert said == [("hr_high", "start"), ("hr_high", "end")]  # said now, with their own times
    assert all(e.time < clock.t - 5 for e in out if e.id == "hr_high")
    assert ("takeover:engine-a", "start") in [(e.id, e.phase) for e in out]
    assert s.holds("bay1")
    s.close()


async def test_what_the_holder_already_said_is_not_said_again(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    s, clock, out = start(tmp_path, monkeypatch)
    feed(s, clock, "spo2", 97.0, 3)
    beat(s, "online", clock.t, ["ward-1"])
    feed(s, clock, "spo2", 75.0, 2)
    mine = next(a for a in s.engine.active("bay1") if a.start.id == "spo2_low")
    holder_event(s, "spo2_low", "start", mine.start.time + 0.5)  # engine A decided the same, a moment apart
    await take_over(s, clock)
    assert [e.phase for e in out if e.id == "spo2_low"] == []  # still active in both: nothing new to say
    s.close()


async def test_an_alarm_a_nurse_reset_at_the_holder_does_not_sound_again(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    s, clock, out = start(tmp_path, monkeypatch)
    feed(s, clock, "spo2", 75.0, 2)
    [alarm] = [a for a in s.engine.active("bay1") if a.start.id == "spo2_low"]
    holder_event(s, "spo2_low", "start", alarm.start.time)
    feed(s, clock, "spo2", 97.0, 40)  # over: a high alarm stays latched, here as at the holder
    assert [a.start.id for a in s.engine.active("bay1")] == ["spo2_low"]
    holder_event(s, "spo2_low", "end", clock.t, by="ann")  # the nurse reset it at engine A
    assert s.engine.active("bay1") == []  # followed
    beat(s, "online", clock.t, ["ward-1"])
    await take_over(s, clock)
    assert [e for e in out if e.id == "spo2_low"] == []
    s.close()


async def test_a_paused_alarm_stays_paused_through_the_takeover(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    s, clock, _ = start(tmp_path, monkeypatch)
    feed(s, clock, "spo2", 75.0, 2)
    [alarm] = [a for a in s.engine.active("bay1") if a.start.id == "spo2_low"]
    holder_event(s, "spo2_low", "start", alarm.start.time)
    say(s, alarm_events_topic(SITE, "bay1"), {"bay": "bay1", "id": "spo2_low", "phase": "audio_paused",
                                             "time": clock.t, "by": "ann", "until": clock.t + 90})
    [alarm] = s.engine.active("bay1")
    assert alarm.paused_until == pytest.approx(clock.t + 90) and not alarm.audible
    beat(s, "online", clock.t, ["ward-1"])
    await take_over(s, clock)
    assert not s.engine.active("bay1")[0].audible
    s.close()


async def test_a_latched_alarm_this_copy_never_saw_is_kept_until_acknowledged(tmp_path: Path,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    s, clock, out = start(tmp_path, monkeypatch)
    feed(s, clock, "spo2", 97.0, 3)  # this engine started after the desaturation: its copy has no alarm
    latched = snapshot_alarm("spo2_low", "high", "spo2", 75.0, 90.0, since=clock.t - 100, latched=True)
    holder_snapshot(s, clock.t, latched)
    beat(s, "online", clock.t, ["ward-1"])
    await take_over(s, clock)
    assert [e for e in out if e.id == "spo2_low"] == []  # not ended, not said again
    [alarm] = [a for a in s.engine.active("bay1") if a.start.id == "spo2_low"]
    assert alarm.latched and alarm.audible and alarm.start.time == clock.t - 100
    ended = s.acknowledge("bay1", "spo2_low", "ann")  # a nurse resets it at the new holder
    assert [(e.id, e.phase, e.by) for e in ended] == [("spo2_low", "end", "ann")]
    s.close()


async def test_an_alarm_the_holder_showed_that_is_over_here_is_ended_at_the_takeover(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s, clock, out = start(tmp_path, monkeypatch)
    feed(s, clock, "hr", 80.0, 3)
    active = snapshot_alarm("hr_high", "medium", "hr", 140.0, 130.0, since=clock.t - 30, latched=False)
    holder_snapshot(s, clock.t, active)
    beat(s, "online", clock.t, ["ward-1"])
    await take_over(s, clock)
    [end] = [e for e in out if e.id == "hr_high"]
    assert end.phase == "end" and "ended at takeover by engine-b" in end.message
    s.close()


async def test_a_relayed_reading_is_decided_whatever_the_gateways_clock_but_a_replayed_one_is_not(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock(1000.0)
    raw: dict[str, Any] = {
        "site": SITE, "data_dir": str(tmp_path), "mqtt": {"url": "mqtt://127.0.0.1:1"},
        "nodes": [{"name": "gw", "role": "gateway"}, {"name": "engine-a", "role": "engine"}],
        "wards": [{"id": "ward-1", "engine": "engine-a"}],
        "bays": [{"id": "bay1", "ward": "ward-1", "gateway": "gw",
                  "devices": [{"id": "ox1", "driver": "masimo", "port": "/dev/ttyUSB0"}]}]}
    s = Service(parse_config(with_storage(raw)).for_node("engine-a"), clock=clock)
    out: list[AlarmEvent] = []
    monkeypatch.setattr(s.notifier, "events", lambda events: out.extend(events))
    assert s.ownership is not None
    s.ownership.listening(clock.t)
    assert s.ownership.decide(clock.t) == (["ward-1"], [])  # no standby: held at once
    emit = s.emitter("ox1")
    emit(Reading("spo2", 75.0, clock.t - 40, replayed=True))  # from the buffer, after an outage: the past
    s.tick()
    assert s.hub.bays["bay1"].latest == {} and out == []
    emit(Reading("spo2", 75.0, clock.t - 40))  # live, from a gateway whose clock is 40 s behind
    s.tick()
    assert [(e.id, e.phase) for e in out] == [("spo2_low", "start")]
    assert s.hub.bays["bay1"].latest["spo2"].receive_time == clock.t  # the engine's clock
    s.recorder.flush()
    times = list(s.store.trends("bay1", 0, 2000)["spo2"].time)
    assert times == [960.0, 1000.0]  # the replayed one at the gateway's time, in the record
    s.close()


def test_unsaid_is_what_the_holder_did_not_say_within_the_match_window() -> None:
    ev = AlarmEvent("bay1", "hr_high", "start", "physiological", "medium", 100.0, "HR")
    late = replace(ev, time=120.0)
    assert unsaid([ev, late], [("bay1", "hr_high", "start", 100.0 + MATCH / 2)], since=0.0) == [late]
    assert unsaid([ev], [("bay1", "hr_high", "end", 100.0)], since=0.0) == [ev]  # another phase is not it
    assert unsaid([ev], [], since=101.0) == []  # before the window: the holder was alive then


def test_the_published_picture_is_the_snapshot_then_what_was_said_after_it() -> None:
    snap = {"time": 50.0, "alarms": [snapshot_alarm("hr_high", "medium", "hr", 140.0, 130.0, since=40.0, latched=False),
                                     {"id": "broken"}]}
    assert set(published_alarms("bay1", snap, [])) == {"hr_high"}  # the malformed one left out
    assert published_alarms("bay1", snap, [("hr_high", "end", 49.0)]).keys() == {"hr_high"}  # older: shown
    assert published_alarms("bay1", snap, [("hr_high", "end", 51.0)]) == {}
    assert published_alarms("bay1", snap, [("rr_high", "start", 52.0)])["rr_high"] is None  # known by id
