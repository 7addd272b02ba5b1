"""The alarm lifecycle (alerts/lifecycle.py) driven through the real AlarmEngine in virtual time: latching,
acknowledge, reminder, audio pause, escalation, and who did what when.

Written from the module docstrings and reference §1.5-1.6, not from runs of the code. The clock is injected:
every time below is a tick or user-action time chosen by the test, and every expected time is derived from the
settings (e.g. reminder at acknowledge + reminder_after).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from alerts.engine import AlarmEngine
from alerts.lifecycle import MAX_AUDIO_PAUSE, ActiveAlarm, LifecycleSettings
from alerts.profile import Profile, parse_profile
from monitor.model import AlarmEvent, Condition, Observation, Priority, TechnicalStatus

BAY = "b1"
DEV = "ox1"
NURSE = "nurse.kim"


def profile(name: str, **vitals: Mapping[str, Any]) -> Profile:
    return parse_profile({"name": name, "vitals": {k: dict(v) for k, v in vitals.items()}}, f"test profile {name}")


# undelayed limits, so an alarm starts at the tick its value arrives: SpO2 low is high priority, HR medium,
# RR low priority. A value stays current for an hour, so no NOT CURRENT alarm joins the active set here.
LIMITS = profile("limits", spo2={"low": 90, "priority": "high", "stale_after": 3600},
                 hr={"low": 50, "high": 120, "priority": "medium", "stale_after": 3600},
                 rr={"low": 8, "priority": "low", "stale_after": 3600})


@dataclass
class Ward:
    """One bay on the LIMITS profile; keeps every event, also those of user actions."""

    settings: LifecycleSettings | None = None
    events: list[AlarmEvent] = field(default_factory=list)
    engine: AlarmEngine = field(init=False)

    def __post_init__(self) -> None:
        self.engine = AlarmEngine([BAY], profiles={LIMITS.name: LIMITS}, default_profile=LIMITS.name,
                                  phase_profiles={}, lifecycle=self.settings)

    def _keep(self, out: list[AlarmEvent]) -> list[AlarmEvent]:
        self.events += out
        return out

    def feed(self, t: float, vital: str, value: float) -> list[AlarmEvent]:
        self.engine.observe(Observation(BAY, DEV, vital, value, None, t))
        return self.tick(t)

    def tick(self, t: float) -> list[AlarmEvent]:
        return self._keep(self.engine.tick(t))

    def ticks(self, start: int, stop: int) -> list[AlarmEvent]:
        out: list[AlarmEvent] = []
        for t in range(start, stop):
            out += self.tick(float(t))
        return out

    def ack(self, alarm_id: str, t: float, by: str = NURSE) -> list[AlarmEvent]:
        return self._keep(self.engine.acknowledge(BAY, alarm_id, by, t))

    def pause(self, t: float, seconds: float | None = None, by: str = NURSE) -> list[AlarmEvent]:
        return self._keep(self.engine.pause_audio(BAY, by, t, seconds))

    def resume(self, t: float, by: str = NURSE) -> list[AlarmEvent]:
        return self._keep(self.engine.resume_audio(BAY, by, t))

    def alarm(self, alarm_id: str) -> ActiveAlarm:
        found = [a for a in self.engine.active(BAY) if a.start.id == alarm_id]
        assert len(found) == 1, f"{alarm_id} not in the active set {[a.start.id for a in self.engine.active(BAY)]}"
        return found[0]

    def ids(self) -> list[str]:
        return [a.start.id for a in self.engine.active(BAY)]

    def of(self, alarm_id: str, phases: Sequence[str] | None = None) -> list[tuple[str, float]]:
        return [(e.phase, e.time) for e in self.events if e.id == alarm_id and (phases is None or e.phase in phases)]


def no_escalation() -> LifecycleSettings:
    return LifecycleSettings(escalate_after={})


# --- latching ---------------------------------------------------------------------------------------------------


def test_high_priority_physiological_alarm_latches_until_acknowledged() -> None:
    w = Ward(no_escalation())
    w.feed(0.0, "spo2", 85.0)
    latched = w.feed(5.0, "spo2", 96.0)  # the condition ends
    assert [(e.id, e.phase, e.time, e.value) for e in latched] == [("spo2_low", "latched", 5.0, 96.0)]
    w.ticks(6, 100)
    alarm = w.alarm("spo2_low")  # still in the active set, and still sounding
    assert alarm.latched and alarm.audible and not alarm.acknowledged
    assert alarm.start.time == 0.0
    reset = w.ack("spo2_low", 100.0)
    assert [(e.id, e.phase, e.time, e.by) for e in reset] == [("spo2_low", "end", 100.0, NURSE)]
    assert w.ids() == []
    assert w.of("spo2_low") == [("start", 0.0), ("latched", 5.0), ("end", 100.0)]


def test_medium_priority_physiological_alarm_does_not_latch() -> None:
    w = Ward(no_escalation())
    w.feed(0.0, "hr", 130.0)
    ended = w.feed(5.0, "hr", 80.0)
    assert [(e.id, e.phase, e.time, e.by) for e in ended] == [("hr_high", "end", 5.0, None)]
    assert w.ids() == []


def test_latching_priorities_come_from_the_settings() -> None:
    w = Ward(LifecycleSettings(latching=frozenset({"high", "medium"}), escalate_after={}))
    w.feed(0.0, "hr", 130.0)
    w.feed(1.0, "rr", 6.0)
    w.feed(5.0, "hr", 80.0)
    w.feed(5.0, "rr", 12.0)
    assert sorted((e.id, e.phase) for e in w.events if e.time == 5.0) == [("hr_high", "latched"), ("rr_low", "end")]


@pytest.mark.parametrize("latching", [frozenset({"high"}), frozenset({"high", "medium", "low"})])
def test_technical_alarms_never_latch(latching: frozenset[Priority]) -> None:
    w = Ward(LifecycleSettings(latching=latching, escalate_after={}))
    w._keep(w.engine.technical(TechnicalStatus(BAY, DEV, Condition.SENSOR_OFF, True, 1.0)))
    off = w._keep(w.engine.technical(TechnicalStatus(BAY, DEV, Condition.SENSOR_OFF, False, 4.0)))
    assert [(e.id, e.phase, e.time) for e in off] == [("sensor_off:ox1", "end", 4.0)]
    failure = AlarmEvent(BAY, "engine_failure", "start", "technical", "high", 5.0, "ALARM ENGINE FAILURE")
    w.engine.external(failure)
    ended = w.engine.external(AlarmEvent(BAY, "engine_failure", "end", "technical", "high", 6.0, ""))
    assert [(e.id, e.phase) for e in ended] == [("engine_failure", "end")]  # high, but technical
    assert w.ids() == []


def test_a_latched_alarm_whose_condition_returns_is_a_fresh_occurrence() -> None:
    w = Ward(no_escalation())
    w.feed(0.0, "spo2", 85.0)
    w.feed(5.0, "spo2", 96.0)
    again = w.feed(10.0, "spo2", 84.0)
    # the latched occurrence ends as the new one starts, so every start has its end in the record
    assert [(e.id, e.phase, e.time) for e in again] == [("spo2_low", "end", 10.0), ("spo2_low", "start", 10.0)]
    alarm = w.alarm("spo2_low")
    assert not alarm.latched and alarm.start.time == 10.0


# --- acknowledge and reminder -----------------------------------------------------------------------------------


def test_acknowledge_silences_until_the_condition_ends_which_then_ends_the_alarm() -> None:
    w = Ward(no_escalation())
    w.feed(0.0, "spo2", 85.0)
    acked = w.ack("spo2_low", 3.0)
    assert [(e.id, e.phase, e.time, e.by) for e in acked] == [("spo2_low", "acknowledged", 3.0, NURSE)]
    alarm = w.alarm("spo2_low")
    assert alarm.acknowledged and not alarm.audible
    w.ticks(4, 60)  # before the reminder (180 s): silent
    assert not w.alarm("spo2_low").audible
    ended = w.feed(60.0, "spo2", 96.0)  # acknowledged high priority: the end is the end, no latch
    assert [(e.id, e.phase, e.time) for e in ended] == [("spo2_low", "end", 60.0)]
    assert w.ids() == []


def test_acknowledging_twice_is_one_acknowledgement_and_an_unknown_alarm_is_a_key_error() -> None:
    w = Ward(no_escalation())
    w.feed(0.0, "spo2", 85.0)
    w.ack("spo2_low", 3.0)
    assert w.ack("spo2_low", 4.0, by="someone.else") == []
    assert w.alarm("spo2_low").acknowledged_by == NURSE
    with pytest.raises(KeyError):
        w.ack("hr_high", 5.0)


def test_reminder_exactly_reminder_after_seconds_after_acknowledge_while_still_active() -> None:
    # acknowledged at 12.5 with reminder_after 60: the reminder is due at 72.5
    w = Ward(LifecycleSettings(reminder_after=60.0, escalate_after={}))
    w.feed(0.0, "spo2", 85.0)
    w.ack("spo2_low", 12.5)
    w.ticks(13, 73)  # ... 71, 72
    assert w.of("spo2_low", ["reminder"]) == []
    reminder = w.tick(72.5)
    assert [(e.id, e.phase, e.time, e.by) for e in reminder] == [("spo2_low", "reminder", 72.5, None)]
    alarm = w.alarm("spo2_low")
    assert alarm.audible and not alarm.acknowledged  # sounds again
    w.ticks(73, 300)
    assert w.of("spo2_low", ["reminder"]) == [("reminder", 72.5)]  # once per acknowledgement


def test_no_reminder_once_the_condition_has_ended() -> None:
    w = Ward(LifecycleSettings(reminder_after=60.0, escalate_after={}))
    w.feed(0.0, "spo2", 85.0)
    w.ack("spo2_low", 10.0)
    w.feed(30.0, "spo2", 96.0)
    w.ticks(31, 200)
    assert w.of("spo2_low") == [("start", 0.0), ("acknowledged", 10.0), ("end", 30.0)]


def test_default_reminder_after_is_180_s() -> None:
    w = Ward(no_escalation())
    w.feed(0.0, "hr", 130.0)
    w.ack("hr_high", 5.0)
    assert w.tick(184.0) == []
    assert [e.phase for e in w.tick(185.0)] == ["reminder"]


# --- audio pause ------------------------------------------------------------------------------------------------


def test_audio_pause_expires_at_exactly_now_plus_seconds() -> None:
    w = Ward(no_escalation())
    w.feed(0.0, "spo2", 85.0)
    w.feed(1.0, "hr", 130.0)
    paused = w.pause(10.5, 60.0)
    assert sorted((e.id, e.phase, e.time, e.by, e.until) for e in paused) == [
        ("hr_high", "audio_paused", 10.5, NURSE, 70.5), ("spo2_low", "audio_paused", 10.5, NURSE, 70.5)]
    assert not w.alarm("spo2_low").audible and w.alarm("spo2_low").paused_until == 70.5
    w.ticks(11, 71)  # ... 69, 70
    assert not w.alarm("hr_high").audible
    resumed = w.tick(70.5)
    assert sorted((e.id, e.phase, e.time, e.by) for e in resumed) == [
        ("hr_high", "audio_resumed", 70.5, None), ("spo2_low", "audio_resumed", 70.5, None)]
    assert w.alarm("spo2_low").audible and w.alarm("hr_high").audible


def test_audio_pause_defaults_to_120_s_and_may_not_be_longer() -> None:
    assert MAX_AUDIO_PAUSE == 120.0  # ISO 80601-2-61: at most 2 min for a pulse oximeter
    w = Ward(no_escalation())
    w.feed(0.0, "spo2", 85.0)
    with pytest.raises(ValueError):
        w.pause(1.0, 121.0)
    with pytest.raises(ValueError):
        w.pause(1.0, 0.0)
    assert w.alarm("spo2_low").audible  # a refused pause changes nothing
    assert [e.until for e in w.pause(1.0)] == [121.0]
    assert w.tick(120.0) == []
    assert [e.phase for e in w.tick(121.0)] == ["audio_resumed"]


def test_audio_pause_limit_comes_from_the_settings_and_is_capped_at_120_s() -> None:
    w = Ward(LifecycleSettings(audio_pause=60.0, escalate_after={}))
    w.feed(0.0, "spo2", 85.0)
    with pytest.raises(ValueError):
        w.pause(1.0, 90.0)
    assert [e.until for e in w.pause(1.0)] == [61.0]
    with pytest.raises(ValueError):
        LifecycleSettings(audio_pause=121.0)


def test_user_resumes_audio_early() -> None:
    w = Ward(no_escalation())
    w.feed(0.0, "spo2", 85.0)
    w.pause(10.0, 120.0)
    resumed = w.resume(40.0, by="dr.lee")
    assert [(e.id, e.phase, e.time, e.by) for e in resumed] == [("spo2_low", "audio_resumed", 40.0, "dr.lee")]
    assert w.alarm("spo2_low").audible
    w.ticks(41, 200)
    assert w.of("spo2_low", ["audio_resumed"]) == [("audio_resumed", 40.0)]  # the old expiry does not fire


def test_an_alarm_that_starts_during_an_audio_pause_sounds() -> None:
    w = Ward(no_escalation())
    w.feed(0.0, "spo2", 85.0)
    w.pause(5.0, 120.0)
    w.feed(10.0, "hr", 130.0)
    hr = w.alarm("hr_high")
    assert hr.audible and hr.paused_until is None
    assert not w.alarm("spo2_low").audible
    resumed = w.resume(20.0)
    assert [e.id for e in resumed] == ["spo2_low"]  # only what was paused


def test_audio_pause_with_nothing_sounding_pauses_nothing() -> None:
    w = Ward(no_escalation())
    assert w.pause(0.0) == []
    w.feed(1.0, "spo2", 85.0)
    assert w.alarm("spo2_low").audible


def test_acknowledge_during_audio_pause_then_reminder_sounds() -> None:
    w = Ward(LifecycleSettings(reminder_after=30.0, escalate_after={}))
    w.feed(0.0, "spo2", 85.0)
    w.pause(1.0, 120.0)
    w.ack("spo2_low", 2.0)
    w.ticks(3, 33)
    assert w.of("spo2_low", ["reminder", "audio_resumed"]) == [("reminder", 32.0)]
    assert w.alarm("spo2_low").audible


# --- escalation ---------------------------------------------------------------------------------------------------


def test_high_priority_unacknowledged_escalates_at_30_and_90_s() -> None:
    w = Ward()  # the default settings: high (30, 90)
    w.feed(0.0, "spo2", 85.0)
    w.ticks(1, 200)
    escalated = [(e.time, e.level) for e in w.events if e.phase == "escalated"]
    assert escalated == [(30.0, 1), (90.0, 2)]
    assert w.alarm("spo2_low").escalation == 2


def test_escalation_counts_from_the_start_time() -> None:
    # hr 130 from 100.5 (undelayed): "escalate_after s after its start" with escalate_after 30 is 130.5,
    # reported by the first tick at or after it
    w = Ward(LifecycleSettings(escalate_after={"medium": (30.0,)}))
    w.feed(100.5, "hr", 130.0)
    w.ticks(101, 131)
    assert [e for e in w.events if e.phase == "escalated"] == []
    assert [(e.phase, e.time, e.level) for e in w.tick(131.0)] == [("escalated", 131.0, 1)]


def test_no_escalation_after_acknowledge() -> None:
    w = Ward()
    w.feed(0.0, "spo2", 85.0)
    w.ack("spo2_low", 20.0)
    w.ticks(21, 150)  # before the 180-s reminder
    assert [e for e in w.events if e.phase == "escalated"] == []


def test_escalation_between_levels_stops_at_acknowledge() -> None:
    w = Ward()
    w.feed(0.0, "spo2", 85.0)
    w.ticks(1, 40)
    w.ack("spo2_low", 40.0)
    w.ticks(41, 150)
    assert [(e.time, e.level) for e in w.events if e.phase == "escalated"] == [(30.0, 1)]


def test_a_reminder_does_not_escalate_at_once_but_anew_from_the_reminder() -> None:
    # acknowledged at 20 (before 30 s): "none after acknowledge". The reminder at 20 + 180 = 200 makes the alarm
    # unacknowledged again, and it "escalates anew from level 1, counting from the reminder": 230 and 290, not
    # at once because 30 and 90 s have long passed since the start
    w = Ward()
    w.feed(0.0, "spo2", 85.0)
    w.ack("spo2_low", 20.0)
    w.ticks(21, 300)
    assert w.of("spo2_low", ["reminder"]) == [("reminder", 200.0)]
    assert [(e.time, e.level) for e in w.events if e.phase == "escalated"] == [(230.0, 1), (290.0, 2)]


def test_medium_priority_does_not_escalate_by_default() -> None:
    w = Ward()
    w.feed(0.0, "hr", 130.0)
    w.feed(0.0, "rr", 5.0)
    w.ticks(1, 300)
    assert [e for e in w.events if e.phase == "escalated"] == []


def test_audio_pause_does_not_stop_escalation() -> None:
    w = Ward()
    w.feed(0.0, "spo2", 85.0)
    w.pause(5.0, 120.0)
    w.ticks(6, 31)
    assert [(e.time, e.level) for e in w.events if e.phase == "escalated"] == [(30.0, 1)]


def test_escalation_ends_with_the_alarm() -> None:
    w = Ward()
    w.feed(0.0, "spo2", 85.0)
    w.feed(10.0, "spo2", 96.0)  # latched (high)
    w.ack("spo2_low", 20.0)  # reset: the alarm ends
    w.ticks(21, 120)
    assert [e for e in w.events if e.phase == "escalated"] == []


def test_a_late_tick_yields_every_escalation_level_that_is_due() -> None:
    # a replay row 100 s after the start: both the 30-s and the 90-s escalation are due at that tick
    w = Ward()
    w.feed(0.0, "spo2", 85.0)
    w.tick(100.0)
    assert [(e.time, e.level) for e in w.events if e.phase == "escalated"] == [(100.0, 1), (100.0, 2)]


def test_lifecycle_settings_are_validated() -> None:
    with pytest.raises(ValueError):
        LifecycleSettings(reminder_after=0.0)
    with pytest.raises(ValueError):
        LifecycleSettings(escalate_after={"high": (90.0, 30.0)})
    with pytest.raises(ValueError):
        LifecycleSettings(escalate_after={"high": (0.0,)})


# --- the audit trail -----------------------------------------------------------------------------------------------


def test_every_user_transition_carries_who_and_when_and_timer_transitions_carry_no_user() -> None:
    w = Ward(LifecycleSettings(reminder_after=30.0, escalate_after={"high": (15.0,)}))
    w.feed(0.0, "spo2", 85.0)
    w.feed(0.0, "hr", 130.0)
    w.pause(2.0, 10.0, by="a")  # expires at 12
    w.ticks(3, 16)  # escalation of spo2_low at 15
    w.ack("hr_high", 16.0, by="b")  # reminder at 46
    w.pause(17.0, 60.0, by="c")
    w.resume(18.0, by="d")
    w.feed(20.0, "spo2", 96.0)  # latches (high, unacknowledged)
    w.ack("spo2_low", 21.0, by="e")  # reset
    w.ticks(22, 50)
    trail = [(e.id, e.phase, e.time, e.by) for e in w.events if e.phase != "start"]
    assert trail == [
        ("spo2_low", "audio_paused", 2.0, "a"), ("hr_high", "audio_paused", 2.0, "a"),
        ("spo2_low", "audio_resumed", 12.0, None), ("hr_high", "audio_resumed", 12.0, None),
        ("spo2_low", "escalated", 15.0, None),
        ("hr_high", "acknowledged", 16.0, "b"),
        ("spo2_low", "audio_paused", 17.0, "c"),
        ("spo2_low", "audio_resumed", 18.0, "d"),
        ("spo2_low", "latched", 20.0, None),
        ("spo2_low", "end", 21.0, "e"),
        ("hr_high", "reminder", 46.0, None),
    ]
    # every transition keeps the alarm's identity from its start
    assert all(e.bay == BAY and e.kind == "physiological" for e in w.events)
    assert {e.priority for e in w.events if e.id == "spo2_low"} == {"high"}
