"""What the nodes say to one another (monitor/cluster.py): a dashboard's mirror of the engines' snapshots, commands
and their answers."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from alerts.lifecycle import LifecycleSettings
from monitor.cluster import (
    AlarmMirror,
    RemoteActions,
    RemoteUnavailable,
    command_topic,
    event_from,
    execute_command,
    reply_json,
    reply_topic,
)
from monitor.model import AlarmEvent
from monitor.ownership import Ward

START = AlarmEvent("bay1", "spo2_low", "start", "physiological", "high", 100.0, "SpO2 LOW", "spo2", 85.0, 90.0,
                   "ox1")


def snapshot(bay: str, at: float, alarms: list[dict[str, Any]]) -> dict[str, Any]:
    return {"site": "s", "bay": bay, "bay_name": bay, "time": at, "ts": "", "alarms": alarms}


ALARM = {"id": "spo2_low", "kind": "physiological", "priority": "high", "message": "SpO2 LOW", "vital": "spo2",
         "value": 85.0, "limit": 90.0, "device": "ox1", "since": 100.0, "acknowledged_by": "ann", "latched": False,
         "audible": False, "paused_until": None, "escalation": 1}


def test_the_mirror_holds_the_newest_snapshot_of_each_of_its_bays_and_says_what_changed() -> None:
    mirror = AlarmMirror(["bay1", "bay2"], LifecycleSettings())
    changed = mirror.snapshot(snapshot("bay1", 10.0, [ALARM]))
    assert changed is not None
    assert [(e.id, e.phase, e.by) for e in changed] == [("spo2_low", "start", None),
                                                        ("spo2_low", "acknowledged", "ann")]
    [a] = mirror.active("bay1")
    assert (a.start.id, a.start.priority, a.start.time, a.acknowledged_by, a.escalation) == (
        "spo2_low", "high", 100.0, "ann", 1)
    assert a.acknowledged and not a.audible
    assert mirror.snapshot(snapshot("bay1", 10.5, [ALARM])) == []  # the same picture: nothing for the pages
    # the newest on the topic is the truth, whatever its time says (another engine's clock may be behind)
    ended = mirror.snapshot(snapshot("bay1", 9.0, []))
    assert ended is not None and [(e.id, e.phase) for e in ended] == [("spo2_low", "end")]
    assert mirror.active("bay1") == [] and mirror.active() == []
    assert mirror.snapshot(snapshot("bay9", 12.0, [])) is None  # not a bay of this dashboard
    assert mirror.snapshot(snapshot("bay2", 12.0, [{"id": "x"}])) is None  # malformed
    assert mirror.snapshot({**snapshot("bay2", 12.0, []), "alarms": None}) is None
    assert mirror.life.settings.audio_pause == 120.0


def test_no_alarm_engine_on_a_ward_no_live_engine_holds_or_a_bay_no_engine_publishes() -> None:
    wards = {"w1": Ward("w1", "e1", "e2", takeover_after=15.0)}
    mirror = AlarmMirror(["bay1", "bay2"], LifecycleSettings(), wards, {"bay1": "w1", "bay2": "w1"})
    cut_off = mirror.check(0.0)  # not connected to the broker: said on every bay
    assert [(e.bay, e.id, e.phase, e.priority) for e in cut_off] == [("bay1", "no_engine", "start", "high"),
                                                                     ("bay2", "no_engine", "start", "high")]
    assert "cannot reach the broker" in cut_off[0].message
    mirror.listening_since = 100.0
    assert mirror.check(101.0) == []  # the grace: the retained heartbeats and snapshots are on their way
    mirror.heartbeat("e1", {"state": "online", "time": 100.5, "wards": ["w1"], "session": "a"}, 100.5)
    mirror.snapshot(snapshot("bay1", 100.5, []))
    changed = mirror.check(104.0)
    assert [(e.bay, e.phase) for e in changed] == [("bay1", "end"), ("bay2", "start")]
    assert "no engine publishes bay bay2" in changed[1].message  # the reason now
    mirror.snapshot(snapshot("bay2", 104.5, []))
    assert [(e.bay, e.phase) for e in mirror.check(105.0)] == [("bay2", "end")]
    mirror.heartbeat("e1", {"state": "offline", "time": 50.0, "session": "old"}, 106.0)  # a stale will: ignored
    assert mirror.check(106.5) == []
    mirror.heartbeat("e1", {"state": "offline", "time": 50.0, "session": "a"}, 107.0)  # engine 1 is gone
    down = mirror.check(107.5)
    assert {(e.bay, e.phase) for e in down} == {("bay1", "start"), ("bay2", "start")}
    assert [a.start.id for a in mirror.active("bay1")] == ["no_engine"]
    mirror.heartbeat("e2", {"state": "online", "time": 110.0, "wards": ["w1"], "session": "b"}, 110.0)
    assert {(e.bay, e.phase) for e in mirror.check(110.5)} == {("bay1", "end"), ("bay2", "end")}


def test_an_event_survives_its_trip_through_json() -> None:
    assert event_from(reply_json("c", "e1", [START])["events"][0]) == START


def test_a_command_is_carried_out_and_its_failures_answered_with_a_status() -> None:
    def run(bay: str, action: str, body: dict[str, Any]) -> list[AlarmEvent]:
        if body.get("alarm_id") == "gone":
            raise KeyError("no active alarm 'gone'")
        if body.get("alarm_id") == "odd":
            raise ValueError("cannot")
        return [START]

    ok = execute_command({"id": "1", "action": "acknowledge", "who": "ann", "alarm_id": "spo2_low"}, "e1", run, "b")
    assert ok["status"] == 200 and event_from(ok["events"][0]) == START and ok["engine"] == "e1"
    assert execute_command({"id": "2", "action": "acknowledge", "who": "ann", "alarm_id": "gone"}, "e1", run,
                           "b")["status"] == 404
    assert execute_command({"id": "3", "action": "acknowledge", "who": "ann", "alarm_id": "odd"}, "e1", run,
                           "b")["status"] == 400
    assert execute_command({"id": "4", "action": "reboot", "who": "ann"}, "e1", run, "b")["status"] == 400
    assert execute_command({"id": "5", "action": "acknowledge", "who": ""}, "e1", run, "b")["status"] == 400


async def test_remote_actions_wait_for_the_holding_engines_answer() -> None:
    sent: list[tuple[str, dict[str, Any]]] = []
    remote: RemoteActions

    async def publish(topic: str, body: dict[str, Any]) -> None:
        sent.append((topic, body))
        answer = reply_json(body["id"], "e1", [START]) if body["alarm_id"] == "spo2_low" else \
            reply_json(body["id"], "e1", error="no active alarm", status=404)
        asyncio.get_running_loop().call_later(0.01, remote.reply, answer)

    remote = RemoteActions("s", "dash", publish, timeout=1.0)
    assert await remote.ask("bay1", "acknowledge", "ann", alarm_id="spo2_low") == [START]
    topic, body = sent[0]
    assert topic == command_topic("s", "bay1") and body["reply_to"] == reply_topic("s", "dash")
    assert (body["action"], body["who"]) == ("acknowledge", "ann")
    with pytest.raises(KeyError, match="no active alarm"):
        await remote.ask("bay1", "acknowledge", "ann", alarm_id="other")


async def test_no_answer_is_said_as_such_and_changes_nothing() -> None:
    async def publish(topic: str, body: dict[str, Any]) -> None:
        return None  # no engine holds the bay

    remote = RemoteActions("s", "dash", publish, timeout=0.1)
    with pytest.raises(RemoteUnavailable, match="no engine answered"):
        await remote.ask("bay1", "audio_pause", "ann", seconds=60.0)
    remote.reply({"id": "late", "status": 200})  # a late answer to nobody is ignored
