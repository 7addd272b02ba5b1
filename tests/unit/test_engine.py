"""The alarm engine (issue 4) driven in virtual time: observe the value of time t, then tick(t).

Written from the docstrings of alerts/engine.py, alerts/conditions.py and alerts/evaluators.py and from the issue,
not from runs of the code. Every expected number is derived by hand from the stated rules (see the comments): a
tick first steps every condition over the elapsed time with the values that were current (sample-and-hold), then
applies the new values at once. Profiles are small dicts, so no test depends on the built-in numbers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from alerts.engine import AlarmEngine, WatchedDevice
from alerts.lifecycle import LifecycleSettings
from alerts.profile import Profile, ProfileError, load_profile_file, parse_profile
from monitor.model import AlarmEvent, Condition, Observation, TechnicalStatus

BAY = "b1"
DEV = "ox1"
NAN = math.nan


def near(x: float, abs: float | None = None) -> Any:
    """pytest.approx, typed so that it can sit inside the tuples and lists an assertion compares."""
    return pytest.approx(x, abs=abs)


def profile(name: str, baseline_window: float | None = None, **vitals: Mapping[str, Any]) -> Profile:
    raw: dict[str, Any] = {"name": name, "vitals": {k: dict(v) for k, v in vitals.items()}}
    if baseline_window is not None:
        raw["baseline_window"] = baseline_window
    return parse_profile(raw, f"test profile {name}")


def make_engine(*profiles: Profile, bays: Sequence[str] = (BAY,), devices: Iterable[WatchedDevice] = (),
                bay_profiles: Mapping[str, str] | None = None, phase_profiles: Mapping[str, str] | None = None,
                lifecycle: LifecycleSettings | None = None) -> AlarmEngine:
    """An engine over only these profiles; the first is every bay's default."""
    return AlarmEngine(bays, devices, profiles={p.name: p for p in profiles}, default_profile=profiles[0].name,
                       bay_profiles=bay_profiles, phase_profiles=phase_profiles or {}, lifecycle=lifecycle)


@dataclass
class Sim:
    """Drives an engine in virtual time and keeps every event it returns."""

    engine: AlarmEngine
    events: list[AlarmEvent] = field(default_factory=list)

    def observe(self, t: float, vital: str, value: float, bay: str = BAY, device: str = DEV) -> None:
        self.engine.observe(Observation(bay, device, vital, value, None, t))

    def tick(self, t: float) -> list[AlarmEvent]:
        out = self.engine.tick(t)
        self.events += out
        return out

    def feed(self, t: float, vital: str, value: float, bay: str = BAY, device: str = DEV) -> list[AlarmEvent]:
        """The reading of time t, then the tick of time t."""
        self.observe(t, vital, value, bay, device)
        return self.tick(t)

    def hold(self, vital: str, value: float, start: int, stop: int, bay: str = BAY) -> list[AlarmEvent]:
        """One reading a second at t = start .. stop - 1, each followed by its tick."""
        out: list[AlarmEvent] = []
        for t in range(start, stop):
            out += self.feed(float(t), vital, value, bay)
        return out

    def ticks(self, start: int, stop: int) -> list[AlarmEvent]:
        out: list[AlarmEvent] = []
        for t in range(start, stop):
            out += self.tick(float(t))
        return out

    def technical(self, status: TechnicalStatus) -> list[AlarmEvent]:
        out = self.engine.technical(status)
        self.events += out
        return out

    def of(self, alarm_id: str, phases: Sequence[str] = ("start", "end", "latched")) -> list[tuple[str, float]]:
        """The condition edges (by default; lifecycle transitions are tests/unit/test_lifecycle.py's) of one id."""
        return [(e.phase, e.time) for e in self.events if e.id == alarm_id and e.phase in phases]

    def ids(self, bay: str = BAY) -> list[str]:
        return [a.start.id for a in self.engine.active(bay)]


def sensor(condition: Condition, active: bool, t: float, bay: str = BAY, device: str = DEV) -> TechnicalStatus:
    return TechnicalStatus(bay, device, condition, active, t)


# --- SatSeconds: the reference's worked example --------------------------------------------------------------

# reference §3.1: limit 90, setting 50; 88 % for 2 s, 86 % for 3 s, 84 % for 6 s.
# Index = 2 points x 2 s + 4 x 3 + 6 x 6 = 4 + 12 + 36 = 52. It is 16 at 5 s and grows by 6 a second during
# the 84 % segment, so it reaches 50 at 5 + (50 - 16) / 6 = 10.67 s after the first low value (the reference's
# "about 10.9 s" cannot come from the stated steps; Edan's 10.7 s can: alerts/evaluators.py docstring).
EXAMPLE = [88.0] * 2 + [86.0] * 3 + [84.0] * 6  # one reading a second, each held for 1 s
EXAMPLE_START = 5.0 + (50.0 - (2 * 2 + 4 * 3)) / (90.0 - 84.0)
SAT50 = {"low": 90, "priority": "high", "satseconds": 50}

SAT50_TOML = """
name = "sat50"
[vitals.spo2]
low = 90
priority = "high"
satseconds = 50
"""


def _sat50(source: str, tmp_path: Path) -> Profile:
    if source == "dict":
        return profile("sat50", spo2=SAT50)
    path = tmp_path / "sat50.toml"
    path.write_text(SAT50_TOML, encoding="utf-8")
    return load_profile_file(path)


@pytest.mark.parametrize("source", ["dict", "file"])
def test_satseconds_worked_example_starts_at_10_67_s_after_the_first_low_value(source: str, tmp_path: Path) -> None:
    t0 = 1000.0  # not 0, so the start time is measured from the first low value, not from the clock's origin
    sim = Sim(make_engine(_sat50(source, tmp_path)))
    sim.feed(t0 - 1, "spo2", 97.0)
    for i, value in enumerate(EXAMPLE):
        assert sim.feed(t0 + i, "spo2", value) == []  # index 0, 2, 4, 8, 12, 16, 22, 28, 34, 40, 46 by t0 + 10
    started = sim.tick(t0 + 11)  # the 84 % of t0 + 10 held over (t0 + 10, t0 + 11]: 46 + 6 = 52 >= 50
    assert [(e.id, e.phase, e.kind, e.priority, e.value, e.limit, e.device) for e in started] == [
        ("spo2_low", "start", "physiological", "high", 84.0, 90.0, DEV)]
    assert started[0].time == near(t0 + EXAMPLE_START)
    assert started[0].time == near(t0 + 10.67, abs=0.005)
    assert started[0].message == "SpO2 LOW 84 < 90 (SatSeconds 50)"
    assert sim.ids() == ["spo2_low"]


def test_satseconds_worked_example_with_half_second_ticks_and_readings_only_when_the_value_changes() -> None:
    # sample-and-hold: a value is held until the next one, so the tick rate does not change the integral;
    # 10.67 s falls in the tick (10.5, 11.0], which reports it with the interpolated time
    sim = Sim(make_engine(profile("sat50", spo2=SAT50)))
    changes = {0.0: 88.0, 2.0: 86.0, 5.0: 84.0}
    for k in range(23):  # t = 0, 0.5, ... 11.0
        t = k * 0.5
        if t in changes:
            sim.observe(t, "spo2", changes[t])
        out = sim.tick(t)
        assert out == [] or t == 11.0
    assert sim.of("spo2_low") == [("start", near(EXAMPLE_START))]


def test_worked_example_total_52_stays_below_a_setting_of_100() -> None:
    sim = Sim(make_engine(profile("sat100", spo2={"low": 90, "satseconds": 100})))
    for i, value in enumerate(EXAMPLE):
        sim.feed(float(i), "spo2", value)
    sim.feed(11.0, "spo2", 95.0)  # 52 at 11 s < 100: no alarm, and back above the limit
    assert sim.events == []


def test_satseconds_three_dips_within_60_s_alarm_although_the_index_is_small() -> None:
    # safety net (reference §3.1): 3 limit crossings within 60 s. Dips of 89 % for 1 s at 0, 10 and 20 s add 1
    # each and decay at 5 a second at 95 %; the third crossing starts the alarm at the tick it arrives (20 s)
    sim = Sim(make_engine(profile("sat100", spo2={"low": 90, "satseconds": 100})))
    for t in range(21):
        sim.feed(float(t), "spo2", 89.0 if t % 10 == 0 else 95.0)
    assert sim.of("spo2_low") == [("start", 20.0)]
    assert sim.events[0].message == "SpO2 LOW 89 < 90 (3 dips in 60 s)"




@pytest.mark.parametrize("arrives", [95.0, NAN], ids=["back-above", "missing"])
def test_a_start_found_over_the_elapsed_time_reports_the_value_that_crossed(arrives: float) -> None:
    # the worked example, but a reading (95 %, or "no value") arrives with the tick that finds the crossing: the
    # index reached 50 at 10.67 s while 84 % was held, so the alarm is "SpO2 LOW 84"
    sim = Sim(make_engine(profile("sat50", spo2=SAT50)))
    for i, value in enumerate(EXAMPLE):
        sim.feed(float(i), "spo2", value)
    if math.isnan(arrives):
        sim.engine.missing(BAY, "spo2")
        started = sim.tick(11.0)
    else:
        started = sim.feed(11.0, "spo2", arrives)
    assert [(e.id, e.phase, e.time) for e in started] == [("spo2_low", "start", near(EXAMPLE_START))]
    assert started[0].value == 84.0
    assert started[0].message == "SpO2 LOW 84 < 90 (SatSeconds 50)"


def test_a_delay_that_runs_out_as_the_value_comes_back_reports_the_outside_value() -> None:
    # HR 40 held over [0, 10): 10 s outside >= the 10-s delay, so the alarm starts at 10 (and ends at once with
    # the 70 that arrives at 10); its start is "HR LOW 40 < 50", not the 70
    sim = Sim(make_engine(profile("p", hr={"low": 50, "delay": 10})))
    sim.hold("hr", 40.0, 0, 10)
    sim.feed(10.0, "hr", 70.0)
    assert sim.of("hr_low") == [("start", near(10.0)), ("end", 10.0)]
    start = sim.events[0]
    assert (start.value, start.message) == (40.0, "HR LOW 40 < 50")


# --- the desat floor -------------------------------------------------------------------------------------------


def test_desat_floor_starts_at_the_tick_the_value_arrives_while_satseconds_integrates() -> None:
    # floor = low - desat_floor = 90 - 10 = 80; "at or below" the floor: at once, whatever SatSeconds says
    sim = Sim(make_engine(profile("sat", spo2={**SAT50, "desat_floor": 10})))
    sim.hold("spo2", 85.0, 0, 3)  # integrating: 5 a second, 10 at 2 s, far from 50
    started = sim.feed(3.0, "spo2", 80.0)
    assert [(e.id, e.phase, e.time, e.value, e.priority) for e in started] == [
        ("spo2_low", "start", 3.0, 80.0, "high")]
    assert started[0].message == "SpO2 LOW 80 < 90 (desat)"


def test_just_above_the_desat_floor_is_left_to_satseconds() -> None:
    # 81 is 9 points below 90: 9 a second, so the index reaches 50 at 50 / 9 = 5.56 s, not at once
    sim = Sim(make_engine(profile("sat", spo2={**SAT50, "desat_floor": 10})))
    assert sim.hold("spo2", 81.0, 0, 6) == []  # 45 at 5 s
    started = sim.tick(6.0)
    assert [(e.id, e.time) for e in started] == [("spo2_low", near(50 / 9))]
    assert "(desat)" not in started[0].message


DELAYED_SPO2 = {"low": 90, "priority": "high", "satseconds": 0, "delay": 15, "desat_floor": 10}


def test_desat_floor_is_undelayed_on_a_delayed_plain_limit() -> None:
    sim = Sim(make_engine(profile("delayed", spo2=DELAYED_SPO2)))
    sim.hold("spo2", 86.0, 0, 5)  # below the limit, 4 s into the 15-s delay
    started = sim.feed(5.0, "spo2", 79.0)  # at or below 80: at once
    assert [(e.id, e.phase, e.time, e.value) for e in started] == [("spo2_low", "start", 5.0, 79.0)]
    assert started[0].message == "SpO2 LOW 79 < 90 (desat)"


def test_delayed_plain_limit_above_the_floor_waits_for_its_delay() -> None:
    # 81 from t = 2: the 15-s delay runs out at 17 s
    sim = Sim(make_engine(profile("delayed", spo2=DELAYED_SPO2)))
    sim.feed(0.0, "spo2", 95.0)
    assert sim.hold("spo2", 81.0, 2, 17) == []  # tick 16: 14 s outside
    started = sim.tick(17.0)
    assert [(e.id, e.time) for e in started] == [("spo2_low", near(17.0))]
    assert started[0].message == "SpO2 LOW 81 < 90"


@pytest.mark.parametrize("satseconds", [
    0, 25])
def test_a_value_at_the_limit_never_alarms_even_with_desat_floor_0(satseconds: int) -> None:
    # outside is strict (low 90: 90 is inside); the floor is "at or below low - desat_floor" = 90, but a value
    # that is not below the limit is not a desaturation
    sim = Sim(make_engine(profile("p", spo2={"low": 90, "desat_floor": 0, "satseconds": satseconds})))
    sim.hold("spo2", 90.0, 0, 20)
    assert sim.events == []


# --- a crossing shorter than its delay never alarms, a longer one always does ---------------------------------

DELAY_VITALS = {  # vital -> (outside value, inside value); spo2 stays above its desat floor of 80
    "hr_low": ("hr", 40.0, 70.0), "hr_high": ("hr", 130.0, 70.0), "spo2_low": ("spo2", 85.0, 97.0)}


def delay_profile(delay: float) -> Profile:
    return profile("delayed", hr={"low": 50, "high": 120, "delay": delay},
                   spo2={"low": 90, "delay": delay, "desat_floor": 10})


def check_crossing(times: Sequence[float], i: int, j: int, delay: float, alarm_id: str,
                   extra_ticks: Sequence[float] = ()) -> None:
    """Readings at `times`, outside the limit for times[i] <= t < times[j], inside otherwise (ticks at every
    reading and at `extra_ticks`). Outside lasts times[j] - times[i]: at least `delay` starts the alarm at
    times[i] + delay (and it ends at times[j]); shorter never does."""
    vital, outside, inside = DELAY_VITALS[alarm_id]
    sim = Sim(make_engine(delay_profile(delay)))
    readings = {t: (outside if i <= k < j else inside) for k, t in enumerate(times)}
    for t in sorted(set(times) | set(extra_ticks)):
        if t in readings:
            sim.observe(t, vital, readings[t])
        sim.tick(t)
    duration = times[j] - times[i]
    if duration >= delay:
        assert sim.of(alarm_id) == [("start", near(times[i] + delay)), ("end", times[j])]
    else:
        assert sim.of(alarm_id) == []
    assert [e for e in sim.events if e.id != alarm_id] == []


@settings(max_examples=150, deadline=None)
@given(delay=st.floats(0.5, 30.0), start=st.integers(0, 10), duration=st.integers(1, 45),
       alarm_id=st.sampled_from(sorted(DELAY_VITALS)))
def test_property_1hz_crossing_shorter_than_delay_never_alarms_longer_always(
        delay: float, start: int, duration: int, alarm_id: str) -> None:
    assume(abs(duration - delay) > 1e-6)
    times = [float(t) for t in range(start + duration + 5)]
    check_crossing(times, start, start + duration, delay, alarm_id)


@settings(max_examples=150, deadline=None)
@given(delay=st.floats(0.5, 30.0), gaps=st.lists(st.floats(0.05, 5.0), min_size=2, max_size=40),
       data=st.data(), alarm_id=st.sampled_from(sorted(DELAY_VITALS)), one_hz_ticks=st.booleans())
def test_property_irregular_crossing_shorter_than_delay_never_alarms_longer_always(
        delay: float, gaps: list[float], data: st.DataObject, alarm_id: str, one_hz_ticks: bool) -> None:
    times = [100.0]
    for g in gaps:
        times.append(times[-1] + g)
    i = data.draw(st.integers(0, len(times) - 2), label="first outside reading")
    j = data.draw(st.integers(i + 1, len(times) - 1), label="first inside reading again")
    assume(abs((times[j] - times[i]) - delay) > 1e-6)
    # the service also ticks once a second between readings: that must not change the decision
    extra = [float(t) for t in range(101, math.ceil(times[-1]))] if one_hz_ticks else []
    check_crossing(times, i, j, delay, alarm_id, extra)


def test_a_crossing_of_exactly_the_delay_alarms() -> None:
    # DelayedLimit: "outside the limit continuously for >= delay s"; 40 held over [3, 13) is 10 s
    check_crossing([float(t) for t in range(20)], 3, 13, 10.0, "hr_low")


# --- missing values --------------------------------------------------------------------------------------------


def test_missing_value_holds_a_running_delay_and_is_never_a_zero() -> None:
    # hr low 50, delay 10. 40 held over [0, 3) = 3 s outside; missing from the tick at 3 (held, not reset, not
    # counted); 40 again from 20: 7 more seconds reach 10 at 27 s.
    sim = Sim(make_engine(profile("p", hr={"low": 50, "delay": 10})))
    sim.hold("hr", 40.0, 0, 3)
    sim.engine.missing(BAY, "hr")
    sim.ticks(3, 20)
    assert sim.engine.value(BAY, "hr") is None  # no value, not a 0 (which would be far below the limit)
    sim.hold("hr", 40.0, 20, 27)
    assert sim.events == []
    started = sim.tick(27.0)
    assert [(e.id, e.time, e.value) for e in started] == [("hr_low", near(27.0), 40.0)]


def test_missing_value_holds_the_satseconds_index() -> None:
    # 86 % is 4 points: 4 a second. Readings at 0..4, missing from the tick at 5: index 4 x 5 = 20 (the 86 of
    # t = 4 held over (4, 5]). Held over 5..20. 86 again from 20: 20 + 4 x 7.5 = 50 at 27.5 s.
    sim = Sim(make_engine(profile("sat50", spo2=SAT50)))
    sim.hold("spo2", 86.0, 0, 5)
    sim.engine.missing(BAY, "spo2")
    sim.ticks(5, 20)
    assert sim.engine.value(BAY, "spo2") is None
    sim.hold("spo2", 86.0, 20, 28)  # 48 at the tick of 27
    assert sim.of("spo2_low") == []
    sim.tick(28.0)
    assert sim.of("spo2_low") == [("start", near(27.5))]


def test_missing_value_neither_ends_an_active_alarm_nor_restarts_it() -> None:
    sim = Sim(make_engine(profile("p", hr={"low": 50, "priority": "medium"})))
    sim.feed(0.0, "hr", 40.0)
    sim.engine.missing(BAY, "hr")
    sim.ticks(1, 10)
    assert sim.ids() == ["hr_low"]
    sim.feed(10.0, "hr", 42.0)  # still low: the same alarm, no second start
    sim.feed(11.0, "hr", 70.0)
    assert sim.of("hr_low") == [("start", 0.0), ("end", 11.0)]
    assert all(e.value is None or e.value > 0 for e in sim.events)


def test_missing_from_another_device_does_not_blank_the_value() -> None:
    sim = Sim(make_engine(profile("p", hr={"low": 50})))
    sim.feed(0.0, "hr", 70.0)  # from ox1
    sim.engine.missing(BAY, "hr", device="ecg-2")
    sim.tick(1.0)
    assert sim.engine.value(BAY, "hr") == 70.0
    sim.engine.missing(BAY, "hr", device=DEV)
    sim.tick(2.0)
    assert sim.engine.value(BAY, "hr") is None


def test_a_nan_observation_is_never_taken_as_a_number() -> None:
    sim = Sim(make_engine(profile("p", hr={"low": 50, "high": 120})))
    sim.feed(0.0, "hr", 70.0)
    sim.feed(1.0, "hr", NAN)
    sim.ticks(2, 5)
    assert sim.events == []  # neither a low (a 0) nor anything else
    assert sim.engine.value(BAY, "hr") != 0.0


# --- staleness -------------------------------------------------------------------------------------------------


def test_spo2_not_current_30_s_after_its_last_reading_and_ends_with_a_new_one() -> None:
    # ISO 80601-2-61: SpO2 not current after 30 s (the profile names no stale_after: the default)
    sim = Sim(make_engine(profile("p", spo2={"low": 90})))
    sim.feed(0.0, "spo2", 97.0)
    assert sim.ticks(1, 30) == []
    started = sim.tick(30.0)
    assert [(e.id, e.phase, e.kind, e.priority, e.time, e.vital) for e in started] == [
        ("not_current:spo2", "start", "technical", "medium", 30.0, "spo2")]
    assert "SpO2 NOT CURRENT" in started[0].message
    assert sim.engine.value(BAY, "spo2") is None
    sim.feed(35.0, "spo2", 96.0)
    assert sim.of("not_current:spo2") == [("start", 30.0), ("end", 35.0)]
    assert sim.engine.value(BAY, "spo2") == 96.0


def test_stale_after_from_the_profile() -> None:
    sim = Sim(make_engine(profile("p", hr={"low": 50, "stale_after": 5})))
    sim.feed(0.0, "hr", 70.0)
    sim.ticks(1, 5)
    assert sim.events == []
    assert [e.id for e in sim.tick(5.0)] == ["not_current:hr"]


def test_a_vital_the_profile_does_not_watch_is_never_not_current() -> None:
    sim = Sim(make_engine(profile("p", spo2={"low": 90})))
    sim.feed(0.0, "etco2", 38.0)
    sim.ticks(1, 100)
    assert sim.events == []


def test_no_not_current_when_a_sensor_off_alarm_explains_the_gap() -> None:
    sim = Sim(make_engine(profile("p", spo2={"low": 90})))
    sim.feed(0.0, "spo2", 97.0)
    on = sim.technical(sensor(Condition.SENSOR_OFF, True, 5.0))
    assert [(e.id, e.phase, e.time) for e in on] == [("sensor_off:ox1", "start", 5.0)]
    sim.ticks(5, 100)
    assert sim.engine.value(BAY, "spo2") is None  # the device's values are no longer the patient's
    assert [e.id for e in sim.events] == ["sensor_off:ox1"]
    # the sensor is back but still no reading: now nothing explains the gap
    sim.technical(sensor(Condition.SENSOR_OFF, False, 100.0))
    assert [e.id for e in sim.tick(101.0)] == ["not_current:spo2"]


def test_a_stale_value_stops_counting_at_the_moment_it_stops_being_current() -> None:
    # "steps every condition over the time since the last tick with the values that were current then": hr 40
    # read at 0 is current until 10 (stale_after 10), so the 20-s delay never runs out, however the ticks fall.
    # With 1-s ticks the value is NaN from the tick at 10 and nothing starts; one tick at 60 must agree.
    dense = Sim(make_engine(profile("p", hr={"low": 50, "delay": 20, "stale_after": 10})))
    dense.feed(0.0, "hr", 40.0)
    dense.ticks(1, 61)
    assert [(e.id, e.phase, e.time) for e in dense.events] == [("not_current:hr", "start", 10.0)]
    sparse = Sim(make_engine(profile("p", hr={"low": 50, "delay": 20, "stale_after": 10})))
    sparse.feed(0.0, "hr", 40.0)
    sparse.tick(60.0)
    assert [e.id for e in sparse.events] == ["not_current:hr"]


def test_a_value_invalidated_by_sensor_off_stops_counting_when_the_sensor_goes_off() -> None:
    # 84 % from 0 (6 a second toward 50, i.e. 8.33 s); SENSOR OFF at 1 s: the index is 6 when the value stops
    # being the patient's, and it holds. The next tick (20 s, e.g. a sparse replay row) must not integrate the
    # invalid 84 over (1, 20] and start spo2_low at 8.33 s.
    sim = Sim(make_engine(profile("sat50", spo2=SAT50)))
    sim.feed(0.0, "spo2", 84.0)
    sim.technical(sensor(Condition.SENSOR_OFF, True, 1.0))
    sim.tick(20.0)
    assert sim.of("spo2_low") == []
    assert sim.engine.value(BAY, "spo2") is None


def test_a_value_of_a_silent_device_stops_counting_when_it_goes_silent() -> None:
    # 84 % (6 a second toward 100, i.e. 16.67 s); the device is silent after 10 s: NO DATA at 10 with the index at
    # 60, and from then the value is not the patient's. A next tick at 25 must not integrate 84 over (10, 25].
    sim = Sim(make_engine(profile("sat100", spo2={"low": 90, "satseconds": 100}),
                          devices=[WatchedDevice(DEV, BAY, 10.0)]))
    sim.feed(0.0, "spo2", 84.0)
    assert [e.id for e in sim.tick(10.0)] == ["no_data:ox1"]
    sim.tick(25.0)
    assert sim.of("spo2_low") == []


# --- technical alarms --------------------------------------------------------------------------------------------


def test_technical_status_becomes_a_technical_alarm_at_once_and_ends() -> None:
    sim = Sim(make_engine(profile("p", spo2={"low": 90})))
    on = sim.technical(TechnicalStatus(BAY, DEV, Condition.SENSOR_OFF, True, 5.0, None, "sensor off patient"))
    assert [(e.id, e.kind, e.priority, e.phase, e.time) for e in on] == [
        ("sensor_off:ox1", "technical", "medium", "start", 5.0)]
    assert "SENSOR OFF" in on[0].message and "sensor off patient" in on[0].message
    assert sim.technical(sensor(Condition.SENSOR_OFF, True, 6.0)) == []  # already active: not repeated
    off = sim.technical(sensor(Condition.SENSOR_OFF, False, 9.0))
    assert [(e.id, e.phase, e.time) for e in off] == [("sensor_off:ox1", "end", 9.0)]
    assert sim.ids() == []


def test_technical_alarm_for_one_vital_has_the_vital_in_its_id() -> None:
    sim = Sim(make_engine(profile("p", spo2={"low": 90})))
    on = sim.technical(TechnicalStatus(BAY, DEV, Condition.SIGNAL_QUALITY, True, 1.0, "spo2"))
    assert [(e.id, e.priority, e.vital) for e in on] == [("signal_quality:ox1:spo2", "low", "spo2")]


def test_technical_alarms_start_at_once_while_satseconds_integrates() -> None:
    # 86 %: 4 a second, 12 at 3 s, far from 50. Technical alarms are never delayed by a smart-alarm rule.
    sim = Sim(make_engine(profile("sat50", spo2=SAT50)))
    sim.hold("spo2", 86.0, 0, 4)
    quality = sim.technical(TechnicalStatus(BAY, DEV, Condition.SIGNAL_QUALITY, True, 3.5, "spo2"))
    assert [(e.id, e.phase, e.time) for e in quality] == [("signal_quality:ox1:spo2", "start", 3.5)]
    off = sim.technical(sensor(Condition.SENSOR_OFF, True, 3.7))
    assert [(e.id, e.phase, e.time) for e in off] == [("sensor_off:ox1", "start", 3.7)]
    assert set(sim.ids()) == {"signal_quality:ox1:spo2", "sensor_off:ox1"}
    sim.ticks(4, 60)  # the sensor is off: no value, so SatSeconds never reaches 50
    assert sim.of("spo2_low") == []


def test_not_current_starts_at_once_while_satseconds_integrates() -> None:
    # 88 %: 2 a second; read at 0 with stale_after 5: the index is 10 when the value stops being current
    sim = Sim(make_engine(profile("sat50", spo2={**SAT50, "stale_after": 5})))
    sim.feed(0.0, "spo2", 88.0)
    sim.ticks(1, 5)
    assert [(e.id, e.time) for e in sim.tick(5.0)] == [("not_current:spo2", 5.0)]
    sim.ticks(6, 60)
    assert sim.of("spo2_low") == []


def test_silent_device_raises_no_data_after_its_delay_and_ends_when_heard() -> None:
    sim = Sim(make_engine(profile("p", spo2={"low": 90}), bays=["b1", "b2"],
                          devices=[WatchedDevice("ox1", "b1", 10.0), WatchedDevice("ox2", "b2", 5.0)]))
    assert sim.engine.next_silence() == math.inf  # nothing heard, nothing looked at: no silence due
    assert sim.tick(100.0) == []  # first look: silence is counted from here
    sim.engine.heard("ox1", 100.0)
    sim.engine.heard("ox2", 100.0)
    assert sim.engine.next_silence() == 105.0  # when the service's ticker must tick for ox2's NO DATA
    assert sim.tick(104.0) == []
    assert [(e.bay, e.id, e.kind, e.phase) for e in sim.tick(105.0)] == [("b2", "no_data:ox2", "technical", "start")]
    assert sim.engine.next_silence() == 110.0  # ox2 is silent already: only ox1 is still due
    assert sim.tick(106.0) == []  # still silent: no repeat
    assert [(e.bay, e.id, e.phase) for e in sim.tick(110.0)] == [("b1", "no_data:ox1", "start")]
    assert sim.engine.next_silence() == math.inf
    sim.observe(111.0, "spo2", 97.0, bay="b2", device="ox2")
    assert [(e.id, e.phase) for e in sim.tick(111.5)] == [("no_data:ox2", "end")]
    assert sim.engine.next_silence() == 116.0
    assert [a.start.id for a in sim.engine.active()] == ["no_data:ox1"]


def test_silent_device_blanks_its_values_without_a_not_current_alarm() -> None:
    sim = Sim(make_engine(profile("p", spo2={"low": 90}), devices=[WatchedDevice(DEV, BAY, 10.0)]))
    sim.feed(0.0, "spo2", 97.0)
    sim.ticks(1, 100)
    assert [(e.id, e.phase, e.time) for e in sim.events] == [("no_data:ox1", "start", 10.0)]
    assert sim.engine.value(BAY, "spo2") is None


def test_no_data_does_not_flap_while_reconnect_attempts_fail() -> None:
    from monitor.hub import Hub
    from monitor.model import Bay, DeviceCondition

    e = make_engine(profile("p", spo2={"low": 90}), devices=[WatchedDevice(DEV, BAY, 5.0)])
    hub = Hub([Bay(BAY, "Bay 1", [DEV])])
    hub.on_heard(e.heard)
    events = e.tick(0.0)
    for t in range(1, 30):  # the supervisor reports the lost link on every retry
        hub.ingest(DEV, DeviceCondition(Condition.DEVICE_LOST, True, None, "retry"), float(t))
        events += e.tick(float(t))
    assert [(a.id, a.phase, a.time) for a in events] == [("no_data:ox1", "start", 5.0)]


def test_external_alarm_is_in_the_active_set_once_per_bay_until_ended() -> None:
    e = make_engine(profile("p"), bays=["b1", "b2"])
    failure = AlarmEvent("b1", "engine_failure", "start", "technical", "high", 1.0, "ALARM ENGINE FAILURE")
    assert e.external(failure) == [failure]
    assert e.external(failure) == []  # not repeated
    assert [a.start.id for a in e.active("b1")] == ["engine_failure"]
    other = AlarmEvent("b2", "engine_failure", "start", "technical", "high", 2.0, "ALARM ENGINE FAILURE")
    assert e.external(other) == [other]  # every bay gets its own
    ended = e.external(AlarmEvent("b1", "engine_failure", "end", "technical", "high", 3.0, ""))
    assert [(a.id, a.phase, a.time) for a in ended] == [("engine_failure", "end", 3.0)]
    assert [a.start.bay for a in e.active()] == ["b2"]


# --- limits, baselines, rise -------------------------------------------------------------------------------------


def test_limits_are_strict_and_high_and_low_are_separate_alarms() -> None:
    sim = Sim(make_engine(profile("p", hr={"low": 50, "high": 120})))
    assert sim.feed(0.0, "hr", 120.0) == []  # at the limit is inside
    assert [(e.id, e.message) for e in sim.feed(1.0, "hr", 121.0)] == [("hr_high", "HR HIGH 121 > 120")]
    sim.feed(2.0, "hr", 45.0)  # one tick: high ends, low starts
    assert sorted((e.id, e.phase, e.time) for e in sim.events[1:]) == [("hr_high", "end", 2.0),
                                                                        ("hr_low", "start", 2.0)]
    assert sim.feed(3.0, "hr", 50.0)[0].phase == "end"


def test_clear_hysteresis_and_clear_delay_decide_the_end() -> None:
    # high 120, hysteresis 3, clear delay 5: the alarm ends once the value has been <= 117 for 5 s. 118 is inside
    # but in the band: it does not clear and resets the clear timer. 116 from 10, 118 at 12, 116 from 13: the
    # 5 s run from 13 and end at 18.
    sim = Sim(make_engine(profile("p", hr={"high": 120, "clear_hysteresis": 3, "clear_delay": 5})))
    sim.feed(0.0, "hr", 130.0)
    sim.hold("hr", 116.0, 10, 12)
    sim.hold("hr", 118.0, 12, 13)
    sim.hold("hr", 116.0, 13, 18)
    assert sim.of("hr_high") == [("start", 0.0)]
    sim.tick(18.0)
    assert sim.of("hr_high") == [("start", 0.0), ("end", 18.0)]


def test_a_running_satseconds_integral_survives_an_unrelated_override() -> None:
    # the worked example with the patient's HR limits changed half-way: still 10.67 s
    sim = Sim(make_engine(profile("sat50", spo2=SAT50, hr={"high": 120})))
    for i, value in enumerate(EXAMPLE):
        if i == 6:
            sim.engine.set_overrides(BAY, {"hr": {"high": 140}}, 6.0)
        sim.feed(float(i), "spo2", value)
    sim.tick(11.0)
    assert sim.of("spo2_low") == [("start", near(EXAMPLE_START))]


def test_a_vital_without_limits_never_alarms() -> None:
    sim = Sim(make_engine(profile("p", spo2={"low": 90})))
    sim.hold("hr", 250.0, 0, 20)
    assert sim.events == []


def test_baseline_is_the_median_of_the_baseline_window_and_an_above_baseline_limit_uses_it() -> None:
    # window 300 s from the first reading: readings 120, 130, 110, 140, 125 at 0..240 -> sorted
    # 110 120 125 130 140 -> median 125; the limit is then 125 + 40 = 165 (strict: 165 does not alarm)
    nibp = {"high": 250, "above_baseline": 40}
    sim = Sim(make_engine(profile("p", baseline_window=300, nibp_sys=nibp)))
    for t, v in zip((0, 60, 120, 180, 240), (120.0, 130.0, 110.0, 140.0, 125.0), strict=True):
        sim.feed(float(t), "nibp_sys", v)
    assert sim.engine.baselines(BAY) == {}
    sim.tick(299.0)
    assert sim.engine.baselines(BAY) == {}
    sim.tick(300.0)
    assert sim.engine.baselines(BAY) == {"nibp_sys": 125.0}
    assert sim.feed(360.0, "nibp_sys", 165.0) == []
    started = sim.feed(420.0, "nibp_sys", 166.0)
    assert [(e.id, e.priority, e.time, e.value, e.limit) for e in started] == [
        ("nibp_sys_above_baseline", "medium", 420.0, 166.0, 165.0)]
    assert started[0].message == "NIBP sys 166 > BASELINE 125 + 40"
    assert sim.feed(480.0, "nibp_sys", 150.0)[0].phase == "end"
    assert sim.engine.baselines(BAY) == {"nibp_sys": 125.0}  # learnt once, not moving with later readings


def test_baseline_of_a_1hz_vital_is_the_median_over_the_whole_window() -> None:
    # HR at 1 Hz: 60 for the first 100 s of the 300-s window, 80 for the other 200 s: two thirds of the window
    # read 80, so the median is 80 (not the 60 of the first readings); below_baseline 15 -> limit 65
    sim = Sim(make_engine(profile("p", baseline_window=300, hr={"below_baseline": 15})))
    sim.hold("hr", 60.0, 0, 100)
    sim.hold("hr", 80.0, 100, 301)
    assert sim.engine.baselines(BAY) == {"hr": 80.0}
    assert sim.feed(301.0, "hr", 65.0) == []
    assert [(e.id, e.limit) for e in sim.feed(302.0, "hr", 64.0)] == [("hr_below_baseline", 65.0)]


def test_forgetting_a_baseline_learns_it_again_from_the_next_readings() -> None:
    # set 100 (limit 85): 70 alarms at once. Forgotten at 10: no baseline, no relative limit (a NaN limit clears),
    # so the alarm ends at the next tick; learnt again from the reading at 10 over 60 s: 70, limit 55
    sim = Sim(make_engine(profile("p", baseline_window=60, hr={"below_baseline": 15})))
    sim.engine.set_baseline(BAY, "hr", 100.0, 0.0)
    sim.hold("hr", 70.0, 0, 10)
    sim.engine.set_baseline(BAY, "hr", None, 10.0)
    assert sim.engine.baselines(BAY) == {}
    sim.hold("hr", 70.0, 10, 71)  # learning from the reading at 10 over 60 s
    assert sim.engine.baselines(BAY) == {"hr": 70.0}
    assert sim.of("hr_below_baseline") == [("start", 0.0), ("end", 10.0)]


def test_no_baseline_alarm_before_the_baseline_is_known() -> None:
    sim = Sim(make_engine(profile("p", baseline_window=300, nibp_sys={"above_baseline": 40})))
    sim.feed(0.0, "nibp_sys", 100.0)
    sim.feed(60.0, "nibp_sys", 200.0)  # 100 above the first reading, but there is no baseline yet
    assert sim.events == []


def test_baseline_set_explicitly_and_below_baseline() -> None:
    sim = Sim(make_engine(profile("p", baseline_window=300, nibp_sys={"above_baseline": 40},
                                  hr={"below_baseline": 20, "baseline_priority": "high"})))
    sim.engine.set_baseline(BAY, "nibp_sys", 100.0, 0.0)
    sim.engine.set_baseline(BAY, "hr", 80.0, 0.0)
    assert sim.engine.baselines(BAY) == {"nibp_sys": 100.0, "hr": 80.0}
    assert sim.feed(0.0, "nibp_sys", 140.0) == []  # 100 + 40 = 140 is not above
    assert [(e.id, e.limit) for e in sim.feed(60.0, "nibp_sys", 141.0)] == [("nibp_sys_above_baseline", 140.0)]
    assert sim.feed(61.0, "hr", 60.0) == []  # 80 - 20 = 60 is not below
    low = sim.feed(62.0, "hr", 59.0)
    assert [(e.id, e.priority, e.limit) for e in low] == [("hr_below_baseline", "high", 60.0)]
    assert low[0].message == "HR 59 < BASELINE 80 - 20"
    sim.ticks(63, 400)  # a set baseline is not replaced by learning
    assert sim.engine.baselines(BAY) == {"nibp_sys": 100.0, "hr": 80.0}


def test_nibp_rate_of_rise_from_the_lowest_reading_of_the_window() -> None:
    # rise 30 within 600 s: 120 at 0, 140 at 300, 150 at 400 -> 150 - 120 = 30 >= 30 (at least `rise`);
    # the 120 leaves the window after 600 s: from then on the lowest is 140, 150 - 140 = 10 < 30 -> ends
    sim = Sim(make_engine(profile("p", nibp_sys={"rise": 30, "rise_window": 600})))
    sim.feed(0.0, "nibp_sys", 120.0)
    sim.feed(300.0, "nibp_sys", 140.0)
    assert sim.events == []
    started = sim.feed(400.0, "nibp_sys", 150.0)
    assert [(e.id, e.phase, e.priority, e.time, e.value, e.limit) for e in started] == [
        ("nibp_sys_rise", "start", "medium", 400.0, 150.0, 150.0)]
    assert started[0].message == "NIBP sys RISE +30 in 10 min (from 120)"
    sim.tick(600.0)
    assert sim.of("nibp_sys_rise") == [("start", 400.0)]
    sim.tick(601.0)
    assert sim.of("nibp_sys_rise") == [("start", 400.0), ("end", 601.0)]


def test_a_held_nibp_value_is_one_reading() -> None:
    # 100 at 0, 125 at 60, then 140 s of ticks with 125 held: only fresh readings join the rise history, so the
    # 100 is still the lowest of the last 600 s when 131 arrives at 200 (131 - 100 = 31 >= 30). Were the held
    # 125 counted at every tick, it would have pushed the 100 out of the history's 32 slots.
    sim = Sim(make_engine(profile("p", nibp_sys={"rise": 30})))
    sim.feed(0.0, "nibp_sys", 100.0)
    sim.feed(60.0, "nibp_sys", 125.0)
    sim.ticks(61, 200)
    assert sim.events == []
    started = sim.feed(200.0, "nibp_sys", 131.0)
    assert [(e.id, e.time, e.limit) for e in started] == [("nibp_sys_rise", 200.0, 130.0)]


# --- per-bay profiles, profile changes, overrides ------------------------------------------------------------------

SAT = profile("sat", spo2={"low": 90, "priority": "high", "satseconds": 50, "desat_floor": 10})
DELAYED = profile("delayed", spo2={"low": 90, "priority": "high", "delay": 10, "desat_floor": 10,
                                   "clear_hysteresis": 1}, hr={"high": 120})


def test_bays_on_different_profiles_share_nothing_but_the_code() -> None:
    # 88 % from 0 on both bays: "delayed" starts at its 10-s delay; "sat" when 2 a second reaches 50, at 25 s.
    # HR 130 on both: only "delayed" has an HR limit (high 120, undelayed).
    sim = Sim(make_engine(SAT, DELAYED, bays=["b1", "b2"], bay_profiles={"b2": "delayed"}))
    for t in range(26):
        for bay, device in (("b1", "ox1"), ("b2", "ox2")):
            sim.observe(float(t), "spo2", 88.0, bay=bay, device=device)
            sim.observe(float(t), "hr", 130.0, bay=bay, device=device)
        sim.tick(float(t))
    starts = {(e.bay, e.id): e.time for e in sim.events if e.phase == "start"}
    assert starts == {("b2", "hr_high"): 0.0, ("b2", "spo2_low"): near(10.0),
                      ("b1", "spo2_low"): near(25.0)}
    assert sim.engine.profile_name("b1") == "sat" and sim.engine.profile_name("b2") == "delayed"


def test_switching_satseconds_to_delay_carries_an_active_spo2_low_over() -> None:
    sim = Sim(make_engine(SAT, DELAYED))
    started = sim.feed(0.0, "spo2", 78.0)  # floor 80: at once
    assert [e.id for e in started] == ["spo2_low"]
    assert sim.engine.set_profile(BAY, "delayed", 1.0) == []  # no end, no new start
    sim.hold("spo2", 78.0, 1, 30)
    assert sim.of("spo2_low") == [("start", 0.0)]
    assert [a.start.time for a in sim.engine.active(BAY)] == [0.0]
    sim.feed(30.0, "spo2", 90.5)  # the delayed limit's clear rule: back inside by 1 -> >= 91
    assert sim.of("spo2_low") == [("start", 0.0)]
    sim.feed(31.0, "spo2", 91.0)
    assert sim.of("spo2_low") == [("start", 0.0), ("latched", 31.0)]  # high priority: latches


def test_switching_delay_to_satseconds_carries_an_active_spo2_low_over() -> None:
    # under "sat" the carried-over alarm ends when the value is back at the limit and the index is 0. The index
    # counts from 0 at the switch (at 10 s): 85 held over (10, 12] adds 5 x 2 = 10; 95 from 12 takes 5 a second
    # off: 0 at 14 s. High priority: the alarm then latches.
    sim = Sim(make_engine(DELAYED, SAT))
    sim.hold("spo2", 85.0, 0, 11)  # delay 10: starts at 10
    assert sim.of("spo2_low") == [("start", near(10.0))]
    assert sim.engine.set_profile(BAY, "sat", 10.0) == []
    sim.hold("spo2", 85.0, 11, 12)
    sim.hold("spo2", 95.0, 12, 14)
    assert sim.of("spo2_low") == [("start", near(10.0))]
    sim.tick(14.0)
    assert sim.of("spo2_low") == [("start", near(10.0)), ("latched", 14.0)]


def test_builtin_ketamine_to_adult_default_and_back_carries_spo2_low_over() -> None:
    # built-ins (the brief's pair): ketamine-infusion (SatSeconds 25, floor 80) <-> adult-default (10-s delay,
    # floor 80, ends at >= 91). 75 % is below both floors: at once. After the switch back at 6 the index counts
    # from 0: 75 held over (5, 6] adds 15; 96 from 6 takes 6 a second off: 0 at 8.5, so the tick of 9 ends it
    # (high priority: latched).
    sim = Sim(AlarmEngine([BAY]))
    assert sim.engine.profile_name(BAY) == "ketamine-infusion"
    assert [(e.id, e.message) for e in sim.feed(0.0, "spo2", 75.0)] == [("spo2_low", "SpO2 LOW 75 < 90 (desat)")]
    assert sim.engine.set_profile(BAY, "adult-default", 1.0) == []
    sim.hold("spo2", 75.0, 1, 6)
    assert sim.engine.set_profile(BAY, "ketamine-infusion", 6.0) == []
    sim.hold("spo2", 96.0, 6, 9)
    assert sim.of("spo2_low") == [("start", 0.0)]
    sim.tick(9.0)
    assert sim.of("spo2_low") == [("start", 0.0), ("latched", 9.0)]


def test_phase_changed_switches_to_the_configured_profile() -> None:
    sim = Sim(make_engine(SAT, DELAYED, phase_profiles={"infusion": "sat", "recovery": "delayed"}))
    sim.feed(0.0, "spo2", 78.0)
    assert sim.engine.phase_changed(BAY, "recovery", 1.0) == []
    assert sim.engine.profile_name(BAY) == "delayed"
    assert sim.ids() == ["spo2_low"]
    assert sim.engine.phase_changed(BAY, "debrief", 2.0) == []  # no profile configured for it: no change
    assert sim.engine.profile_name(BAY) == "delayed"
    sim.engine.phase_changed(BAY, "infusion", 3.0)
    assert sim.engine.profile_name(BAY) == "sat"
    assert sim.of("spo2_low") == [("start", 0.0)]


def test_a_removed_limit_ends_its_alarm() -> None:
    sim = Sim(make_engine(DELAYED, SAT))
    sim.feed(0.0, "hr", 130.0)
    assert sim.ids() == ["hr_high"]
    ended = sim.engine.set_profile(BAY, "sat", 5.0)  # "sat" has no hr limits
    assert [(e.id, e.phase, e.time) for e in ended] == [("hr_high", "end", 5.0)]
    assert sim.ids() == []
    sim.hold("hr", 130.0, 6, 20)
    assert sim.of("hr_high") == [("start", 0.0)]


def test_overrides_change_a_limit_of_the_profile() -> None:
    sim = Sim(make_engine(DELAYED))
    sim.engine.set_overrides(BAY, {"hr": {"high": 140}}, 0.0)
    assert sim.engine.effective_profile(BAY).vitals["hr"].high == 140
    assert sim.engine.profile_name(BAY) == "delayed"
    assert sim.engine.overrides(BAY) == {"hr": {"high": 140}}
    assert sim.feed(1.0, "hr", 135.0) == []
    assert [e.id for e in sim.feed(2.0, "hr", 141.0)] == ["hr_high"]


def test_a_patients_own_limit_removed_with_the_overrides_ends_its_alarm() -> None:
    # "delayed" has no HR low limit; the override adds one (medium, the default priority: no latching)
    sim = Sim(make_engine(DELAYED))
    sim.engine.set_overrides(BAY, {"hr": {"low": 40}}, 0.0)
    assert [e.id for e in sim.feed(1.0, "hr", 35.0)] == ["hr_low"]
    ended = sim.engine.set_overrides(BAY, {}, 3.0)
    assert [(e.id, e.phase, e.time) for e in ended] == [("hr_low", "end", 3.0)]
    assert sim.ids() == []
    sim.hold("hr", 35.0, 4, 10)  # no HR low limit any more
    assert sim.of("hr_low") == [("start", 1.0)]


@pytest.mark.parametrize("bad", [
    {"hr": {"low": 130}},  # low >= high (120)
    {"hr": {"satseconds": 25}},  # SpO2 only
    {"spo2": {"satseconds": 33}},  # not a SatSeconds setting
    {"nibp_sys": {"high": 180, "delay": 5}},  # NIBP is not continuous
    {"tempp": {"high": 38}},  # unknown vital
    {"hr": {"hihg": 100}},  # unknown key
    {"spo2": {"delay": 60}},  # more than 30 s
    {"hr": {"high": None}},  # an override may change a limit of the profile, never remove it
    {"hr": 130},  # not a table of fields (e.g. a malformed request body)
    {"hr": "high"},
])
def test_invalid_overrides_raise_and_leave_the_old_settings(bad: dict[str, Any]) -> None:
    sim = Sim(make_engine(DELAYED))
    sim.engine.set_overrides(BAY, {"hr": {"high": 140}}, 0.0)
    before = sim.engine.effective_profile(BAY)
    with pytest.raises(ProfileError):
        sim.engine.set_overrides(BAY, bad, 1.0)
    assert sim.engine.overrides(BAY) == {"hr": {"high": 140}}
    assert sim.engine.effective_profile(BAY) == before
    assert sim.feed(2.0, "hr", 135.0) == []  # still 140, not the profile's 120
    assert [e.id for e in sim.feed(3.0, "hr", 141.0)] == ["hr_high"]


def test_unknown_profile_raises_and_keeps_the_old_one() -> None:
    sim = Sim(make_engine(DELAYED))
    with pytest.raises(ProfileError, match="nope"):
        sim.engine.set_profile(BAY, "nope", 0.0)
    assert sim.engine.profile_name(BAY) == "delayed"
    with pytest.raises(ProfileError):
        make_engine(DELAYED, bay_profiles={BAY: "nope"})


def test_a_profile_the_overrides_do_not_fit_raises_and_keeps_the_old_one() -> None:
    # the override "hr low 125" fits "loose" (high 200); under "strict" (high 120) it makes low >= high
    strict = profile("strict", hr={"high": 120})
    loose = profile("loose", hr={"high": 200})
    sim = Sim(make_engine(loose, strict))
    sim.engine.set_overrides(BAY, {"hr": {"low": 125}}, 0.0)
    with pytest.raises(ProfileError):
        sim.engine.set_profile(BAY, "strict", 1.0)
    assert sim.engine.profile_name(BAY) == "loose"
    assert sim.engine.effective_profile(BAY).vitals["hr"].high == 200


# --- clock and types -------------------------------------------------------------------------------------------


def test_event_priority_is_a_plain_str() -> None:
    sim = Sim(make_engine(profile("p", hr={"low": 50, "priority": "high"})))
    started = sim.feed(0.0, "hr", 40.0)
    assert type(started[0].priority) is str


def test_a_limit_added_while_the_clock_is_at_zero_counts_on_the_engine_clock() -> None:
    # last tick at 0; at 0.5 an override adds HR low 50 with a 10-s delay; HR 40 from the reading at 1:
    # the delay runs out at 1 + 10 = 11 (the same as with the clock started at 100, then at 111)
    sim = Sim(make_engine(profile("p", spo2={"low": 90})))
    sim.tick(0.0)
    sim.engine.set_overrides(BAY, {"hr": {"low": 50, "delay": 10}}, 0.5)
    sim.hold("hr", 40.0, 1, 13)
    assert sim.of("hr_low") == [("start", near(11.0))]


def test_a_condition_added_to_the_bank_later_leaves_the_running_ones_as_they_were() -> None:
    # bay b1 has an active HR LOW (limit 50, undelayed) and a running 10-s delay on RR LOW; then bay b2's override
    # adds an EtCO2 limit, a slot the bank did not have, so the bank grows. b1's HR alarm must stay active (no second
    # start) and end when HR is back above 50 + 3; b1's RR delay must keep counting: RR 6 from t=0 starts at 10.
    sim = Sim(make_engine(profile("p", hr={"low": 50, "clear_hysteresis": 3},
                                  rr={"low": 8, "delay": 10}), bays=("b1", "b2")))
    sim.observe(0.0, "hr", 40.0)
    sim.observe(0.0, "rr", 6.0)
    sim.tick(0.0)
    sim.engine.set_overrides("b2", {"etco2": {"low": 15}}, 3.0)
    assert ("etco2", "low") in sim.engine.conditions.slots
    for t in range(1, 13):
        sim.observe(float(t), "hr", 40.0 if t < 12 else 60.0)
        sim.observe(float(t), "rr", 6.0)
        sim.tick(float(t))
    assert [(e.id, e.phase, e.time) for e in sim.events if e.bay == "b1"] == [
        ("hr_low", "start", 0.0), ("rr_low", "start", 10.0), ("hr_low", "end", 12.0)]
