"""The alarm engine: limit crossings start and end alarms; a silent device raises "no data"."""

from __future__ import annotations

from alerts.engine import AlarmEngine, WatchedDevice
from alerts.rules import LimitRule
from monitor.model import Condition, Observation, TechnicalStatus


def engine() -> AlarmEngine:
    return AlarmEngine(
        [LimitRule("spo2", 90, None, "high"), LimitRule("nibp_sys", 90, 180, "high")],
        [WatchedDevice("ox1", "bay1", 10.0), WatchedDevice("ox2", "bay2", 5.0)],
    )


def obs(vital: str, value: float, t: float, bay: str = "bay1", device: str = "ox1") -> Observation:
    return Observation(bay, device, vital, value, None, t)


def test_limit_crossing_starts_once_and_ends_when_back_in_range() -> None:
    e = engine()
    assert e.observe(obs("spo2", 95, 0)) == []
    started = e.observe(obs("spo2", 86, 1))
    assert [(a.id, a.phase, a.priority, a.value, a.limit) for a in started] == [("spo2_low", "start", "high", 86, 90)]
    assert started[0].message == "SpO2 LOW 86 < 90"
    assert e.observe(obs("spo2", 84, 2)) == []  # still active: no second start
    assert [a.id for a in e.active("bay1")] == ["spo2_low"]
    ended = e.observe(obs("spo2", 93, 3))
    assert [(a.id, a.phase, a.time) for a in ended] == [("spo2_low", "end", 3)]
    assert e.active() == []


def test_high_and_low_of_one_vital_are_separate_alarms_and_bays_are_independent() -> None:
    e = engine()
    assert [a.id for a in e.observe(obs("nibp_sys", 190, 0))] == ["nibp_sys_high"]
    assert [a.id for a in e.observe(obs("nibp_sys", 80, 1, bay="bay2", device="ox2"))] == ["nibp_sys_low"]
    assert {(a.bay, a.id) for a in e.active()} == {("bay1", "nibp_sys_high"), ("bay2", "nibp_sys_low")}
    # the value at exactly the limit is in range
    assert [(a.id, a.phase) for a in e.observe(obs("nibp_sys", 180, 2))] == [("nibp_sys_high", "end")]


def test_vital_without_rule_never_alarms() -> None:
    assert engine().observe(obs("hr", 250, 0)) == []


def test_silent_device_raises_no_data_after_its_delay_and_ends_when_heard() -> None:
    e = engine()
    assert e.tick(100.0) == []  # first look: silence is counted from here
    e.heard("ox1", 100.0)
    e.heard("ox2", 100.0)
    assert e.tick(104.0) == []
    assert [(a.bay, a.id, a.kind) for a in e.tick(105.0)] == [("bay2", "no_data:ox2", "technical")]
    assert e.tick(106.0) == []  # still silent: no repeat
    events = e.tick(110.0)
    assert [(a.bay, a.id, a.phase) for a in events] == [("bay1", "no_data:ox1", "start")]
    e.observe(obs("spo2", 97, 111.0, bay="bay2", device="ox2"))
    assert [(a.id, a.phase) for a in e.tick(111.5)] == [("no_data:ox2", "end")]
    assert [a.id for a in e.active()] == ["no_data:ox1"]


def test_technical_status_becomes_technical_alarm() -> None:
    e = engine()
    on = e.technical(TechnicalStatus("bay1", "ox1", Condition.SENSOR_OFF, True, 5.0, None, "sensor off patient"))
    assert [(a.id, a.kind, a.priority, a.phase) for a in on] == [("sensor_off:ox1", "technical", "medium", "start")]
    assert "SENSOR OFF" in on[0].message
    off = e.technical(TechnicalStatus("bay1", "ox1", Condition.SENSOR_OFF, False, 9.0))
    assert [(a.id, a.phase, a.time) for a in off] == [("sensor_off:ox1", "end", 9.0)]


def test_external_alarm_is_in_the_active_set_once_per_bay_until_ended() -> None:
    from monitor.model import AlarmEvent

    e = engine()
    failure = AlarmEvent("bay1", "engine_failure", "start", "technical", "high", 1.0, "ALARM ENGINE FAILURE")
    assert e.external(failure) == [failure]
    assert e.external(failure) == []  # not repeated
    assert [a.id for a in e.active("bay1")] == ["engine_failure"]
    other = AlarmEvent("bay2", "engine_failure", "start", "technical", "high", 2.0, "ALARM ENGINE FAILURE")
    assert e.external(other) == [other]  # every bay gets its own
    ended = e.external(AlarmEvent("bay1", "engine_failure", "end", "technical", "high", 3.0, ""))
    assert [(a.id, a.phase) for a in ended] == [("engine_failure", "end")]
    assert [a.bay for a in e.active()] == ["bay2"]


def test_no_data_does_not_flap_while_reconnect_attempts_fail() -> None:
    from monitor.hub import Hub
    from monitor.model import Bay, Condition, DeviceCondition

    e = AlarmEngine([], [WatchedDevice("ox1", "bay1", 5.0)])
    hub = Hub([Bay("bay1", "Bay 1", ["ox1"])])
    hub.on_heard(e.heard)
    events = e.tick(0.0)
    for t in range(1, 30):  # the supervisor reports the lost link on every retry
        hub.ingest("ox1", DeviceCondition(Condition.DEVICE_LOST, True, None, "retry"), float(t))
        events += e.tick(float(t))
    assert [(a.id, a.phase) for a in events] == [("no_data:ox1", "start")]
