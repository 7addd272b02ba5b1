"""The vectorised alarm evaluators: DelayedLimit (delay + clear hysteresis) and SatSeconds (Nellcor mechanics,
reference/alarm-standards.md §3.1). Expected numbers are derived from the reference's worked example and from the
stated mechanics, never copied from a run of the code."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from alerts.evaluators import DelayedLimit, RateOfRise, SatSeconds

NAN = math.nan

# reference §3.1 worked example: low limit 90, setting 50; 88 % for 2 s, 86 % for 3 s, 84 % for 6 s
LOW = 90.0
EXAMPLE = [(88.0, 2.0), (86.0, 3.0), (84.0, 6.0)]
EXAMPLE_TOTAL = sum((LOW - v) * s for v, s in EXAMPLE)  # 2*2 + 4*3 + 6*6
# the index reaches 50 during the 84 % segment: 16 SatSeconds at 5 s, then 6 per second
EXAMPLE_CROSSING = 5.0 + (50.0 - (2 * 2 + 4 * 3)) / (LOW - 84.0)


def example_series(dt: float) -> list[float]:
    out: list[float] = []
    for value, seconds in EXAMPLE:
        out += [value] * round(seconds / dt)
    return out


def run(ev: SatSeconds | DelayedLimit, series: list[float], dt: float = 1.0) -> tuple[list[bool], list[bool]]:
    """Feed one bay's values; return per-tick (started, ended) of that bay."""
    starts: list[bool] = []
    ends: list[bool] = []
    for v in series:
        s, e = ev.step(np.array([v]), dt)
        starts.append(bool(s[0]))
        ends.append(bool(e[0]))
    return starts, ends


# --- SatSeconds: the worked example ---------------------------------------------------------------------------


def test_worked_example_index_is_52_after_11_s() -> None:
    s = SatSeconds(1, low=LOW, setting=100)  # setting above the total: nothing else interferes
    starts, _ = run(s, example_series(1.0))
    assert EXAMPLE_TOTAL == 52
    assert s.index[0] == pytest.approx(EXAMPLE_TOTAL)
    assert s.time == pytest.approx(11.0)
    assert not any(starts)


def test_worked_example_1s_ticks_start_in_the_tick_covering_10_to_11_s_with_interpolated_time() -> None:
    s = SatSeconds(1, low=LOW, setting=50)
    starts, _ = run(s, example_series(1.0))
    assert starts.index(True) == 10  # the 11th tick covers 10-11 s
    assert starts.count(True) == 1
    assert s.reason[0] == "index"
    assert 10.0 <= s.crossing_time[0] <= 11.0
    assert s.crossing_time[0] == pytest.approx(EXAMPLE_CROSSING, abs=0.05)  # 10.67 s (Edan: "about 10.7 s")


def test_worked_example_tenth_second_ticks_start_within_one_tick_of_the_true_crossing() -> None:
    s = SatSeconds(1, low=LOW, setting=50)
    series = example_series(0.1)
    assert len(series) == 110
    ticks = 0
    for value in series:
        started, _ = s.step(np.array([value]), 0.1)
        ticks += 1
        if started[0]:
            break
    else:
        pytest.fail("no alarm")
    start_tick_end = ticks * 0.1  # the alarm is detected at the end of the tick in which the index reached 50
    assert EXAMPLE_CROSSING <= start_tick_end < EXAMPLE_CROSSING + 0.1 + 1e-9
    assert s.time == pytest.approx(start_tick_end)
    assert s.crossing_time[0] == pytest.approx(EXAMPLE_CROSSING, abs=0.01)
    assert s.reason[0] == "index"


# --- SatSeconds: the other rules -------------------------------------------------------------------------------


def test_floor_fires_undelayed_and_just_above_the_floor_does_not() -> None:
    s = SatSeconds(2, low=LOW, setting=100, floor_offset=10)
    started, _ = s.step(np.array([80.0, 80.5]), 1.0)
    assert started.tolist() == [True, False]
    assert s.reason.tolist() == ["floor", ""]
    assert s.crossing_time[0] == pytest.approx(0.0)  # the value was there from the start of the tick
    assert math.isnan(s.crossing_time[1])


def test_setting_off_is_a_plain_undelayed_limit() -> None:
    s = SatSeconds(1, low=LOW, setting=None)
    starts, ends = run(s, [90.0, 89.5, 89.0, 89.9, 90.0, 95.0, 85.0])
    assert starts == [False, True, False, False, False, False, True]  # at the limit is not below
    assert ends == [False, False, False, False, True, False, False]  # ends as soon as back at the limit
    assert s.reason[0] == "plain"
    assert s.index[0] == 0.0


def test_setting_off_still_reports_the_floor() -> None:
    s = SatSeconds(1, low=LOW, setting=None, floor_offset=5)
    run(s, [85.0])
    assert s.reason[0] == "floor"


def test_three_crossings_within_60_s_alarm_although_the_index_is_small() -> None:
    s = SatSeconds(1, low=LOW, setting=100)
    dip = [89.0] + [95.0] * 9  # 1 point for 1 s, then well above: each dip is one crossing, 10 s apart
    starts, _ = run(s, dip * 2 + [89.0])
    assert starts == [False] * 20 + [True]  # the third crossing, at 20 s
    assert s.reason[0] == "crossings"
    assert s.index[0] < 2  # far below the setting of 100
    assert s.crossing_time[0] == pytest.approx(20.0)


def test_three_crossings_spread_over_more_than_60_s_do_not_alarm() -> None:
    s = SatSeconds(1, low=LOW, setting=100)
    dip = [89.0] + [95.0] * 30  # crossings at 0, 31, 62 s: the first and third are 62 s apart
    starts, _ = run(s, dip * 3)
    assert not any(starts)
    # one more crossing at 68 s: the last three (31, 62, 68 s) are within 60 s
    s2 = SatSeconds(1, low=LOW, setting=100)
    starts2, _ = run(s2, dip * 2 + [89.0] + [95.0] * 5 + [89.0])
    assert starts2.index(True) == len(starts2) - 1
    assert s2.reason[0] == "crossings"


def test_staying_below_is_one_crossing() -> None:
    s = SatSeconds(1, low=LOW, setting=1000)
    starts, _ = run(s, [89.9] * 50)
    assert not any(starts)


def test_a_dip_back_above_the_limit_decrements_the_index_and_never_below_zero() -> None:
    s = SatSeconds(1, low=LOW, setting=100)
    run(s, [85.0, 85.0])
    assert s.index[0] == pytest.approx(10.0)  # 5 points x 2 s
    run(s, [92.0])
    assert s.index[0] == pytest.approx(8.0)  # 2 points above for 1 s
    run(s, [90.0])
    assert s.index[0] == pytest.approx(8.0)  # at the limit: no change
    run(s, [95.0] * 10)
    assert s.index[0] == 0.0  # 50 points of credit clamp at 0


def test_alarm_ends_only_at_or_above_the_limit_with_the_index_back_to_0() -> None:
    s = SatSeconds(1, low=LOW, setting=10)
    starts, ends = run(s, [85.0, 85.0])  # 5 + 5 = 10 -> alarm at 2 s
    assert starts == [False, True]
    _, ends = run(s, [91.0] * 9)  # 1 point credit per second: 10 -> 1
    assert not any(ends)
    assert s.active[0]
    _, ends = run(s, [91.0])
    assert ends == [True]
    assert not s.active[0]
    assert s.reason[0] == ""


def test_floor_alarm_does_not_end_while_the_index_is_positive() -> None:
    s = SatSeconds(1, low=LOW, setting=100, floor_offset=10)
    run(s, [78.0])  # 12 points for 1 s
    assert s.reason[0] == "floor"
    _, ends = run(s, [96.0, 96.0])  # 6 + 6 credit = 12
    assert ends == [False, True]


def test_nan_holds_the_index_the_side_and_the_alarm() -> None:
    s = SatSeconds(1, low=LOW, setting=100)
    run(s, [85.0, 85.0])
    held = s.index[0]
    starts, ends = run(s, [NAN] * 5)
    assert s.index[0] == held
    assert not any(starts) and not any(ends)
    # below, missing, below is one crossing, not two: three such runs make only one crossing in total
    s2 = SatSeconds(1, low=LOW, setting=1000)
    starts2, _ = run(s2, [89.0, NAN, 89.0, NAN, 89.0])
    assert not any(starts2)
    # an active alarm is not ended by missing values
    s3 = SatSeconds(1, low=LOW, setting=None)
    run(s3, [85.0])
    _, ends3 = run(s3, [NAN] * 3)
    assert not any(ends3) and s3.active[0]
    assert s3.time == pytest.approx(4.0)  # the clock still moves


def test_bays_in_one_array_are_independent() -> None:
    s = SatSeconds(4, low=LOW, setting=50)
    started, _ = s.step(np.array([79.0, 95.0, NAN, 89.0]), 1.0)
    assert started.tolist() == [True, False, False, False]
    assert s.index.tolist() == pytest.approx([11.0, 0.0, 0.0, 1.0])
    assert s.reason.tolist() == ["floor", "", "", ""]
    assert np.isnan(s.crossing_time[1:]).all()
    for _ in range(9):
        s.step(np.array([79.0, 95.0, NAN, 84.0]), 1.0)
    # bay 3 has 1 + 9*6 = 55 >= 50 (crossed during the ninth tick); bays 1 and 2 are untouched by their neighbours
    assert s.active.tolist() == [True, False, False, True]
    assert s.reason.tolist() == ["floor", "", "", "index"]


# --- DelayedLimit -----------------------------------------------------------------------------------------------


def test_delay_zero_starts_at_once_and_hysteresis_delays_the_end() -> None:
    d = DelayedLimit(1, low=90, high=None, delay=0, clear_hysteresis=1)
    starts, ends = run(d, [90.0, 89.0, 90.0, 90.9, 91.0])
    assert starts == [False, True, False, False, False]
    assert ends == [False, False, False, False, True]  # ends at >= low + hysteresis
    assert not d.active[0]


def test_delay_needs_continuous_time_outside() -> None:
    d = DelayedLimit(1, low=None, high=120, delay=3, clear_hysteresis=5)
    starts, _ = run(d, [130.0, 130.0, 120.0, 130.0, 130.0])  # an inside value resets the count
    assert not any(starts)
    starts, _ = run(d, [121.0])
    assert starts == [True]
    assert d.crossing_time[0] == pytest.approx(6.0)


def test_clear_delay_needs_continuous_time_cleared() -> None:
    d = DelayedLimit(1, low=90, high=None, delay=0, clear_hysteresis=1, clear_delay=3)
    run(d, [85.0])
    _, ends = run(d, [92.0, 92.0, 90.5, 92.0, 92.0])  # 90.5 is inside but within the hysteresis: restarts the clock
    assert not any(ends)
    _, ends = run(d, [92.0])
    assert ends == [True]


def test_both_limits_in_one_object_are_one_band_condition() -> None:
    d = DelayedLimit(1, low=90, high=180, delay=0, clear_hysteresis=2)
    starts, ends = run(d, [85.0, 190.0, 179.0, 178.0])
    assert starts == [True, False, False, False]  # jumping to the other side keeps it active
    assert ends == [False, False, False, True]


def test_delayed_limit_nan_holds_the_counters() -> None:
    d = DelayedLimit(1, low=90, high=None, delay=5, clear_hysteresis=1, clear_delay=2)
    starts, _ = run(d, [80.0] * 3 + [NAN] * 3 + [80.0])
    assert not any(starts)  # 4 s outside, not 7
    starts, _ = run(d, [80.0])
    assert starts == [True]
    _, ends = run(d, [95.0, NAN, NAN, NAN])
    assert not any(ends) and d.active[0]
    _, ends = run(d, [95.0])
    assert ends == [True]


def test_delayed_limit_bays_are_independent() -> None:
    d = DelayedLimit(3, low=90, high=None, delay=2, clear_hysteresis=1)
    d.step(np.array([80.0, 95.0, 80.0]), 1.0)
    d.step(np.array([80.0, 95.0, NAN]), 1.0)
    assert d.active.tolist() == [True, False, False]
    started, _ = d.step(np.array([80.0, 80.0, 80.0]), 1.0)
    assert started.tolist() == [False, False, True]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"low": None, "high": None, "delay": 0, "clear_hysteresis": 0},
        {"low": 90, "high": None, "delay": -1, "clear_hysteresis": 0},
        {"low": 90, "high": 92, "delay": 0, "clear_hysteresis": 2},
    ],
)
def test_delayed_limit_rejects_impossible_configurations(kwargs: dict[str, float | None]) -> None:
    with pytest.raises(ValueError):
        DelayedLimit(1, **kwargs)  # type: ignore[arg-type]


def test_step_rejects_wrong_shape_and_negative_dt() -> None:
    s = SatSeconds(2, low=LOW, setting=50)
    with pytest.raises(ValueError):
        s.step(np.array([90.0]), 1.0)
    with pytest.raises(ValueError):
        s.step(np.array([90.0, 90.0]), -0.5)
    with pytest.raises(ValueError):
        SatSeconds(1, low=LOW, setting=0)


# --- properties -------------------------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    delay=st.floats(0.0, 30.0),
    dt=st.sampled_from([0.1, 0.25, 0.5, 1.0, 2.0]),
    ticks=st.integers(1, 80),
    side=st.sampled_from(["low", "high"]),
    depth=st.floats(0.01, 50.0),
)
def test_delayed_limit_crossing_shorter_than_the_delay_never_alarms_longer_always_does(
    delay: float, dt: float, ticks: int, side: str, depth: float
) -> None:
    duration = ticks * dt
    assume(abs(duration - delay) > 1e-6)
    low, high = (90.0, None) if side == "low" else (None, 120.0)
    outside = 90.0 - depth if side == "low" else 120.0 + depth
    d = DelayedLimit(1, low=low, high=high, delay=delay, clear_hysteresis=1.0)
    starts, _ = run(d, [100.0] * 3 + [outside] * ticks + [100.0] * 3, dt)
    if duration < delay:
        assert not any(starts)
    else:
        assert starts.count(True) == 1
        start_tick = starts.index(True) - 3
        assert 0 <= start_tick < ticks
        assert (start_tick + 1) * dt >= delay - 1e-6  # not before the delay ran out
        assert start_tick * dt < delay + 1e-6  # and at the first tick at which it did


values_strategy = st.lists(st.one_of(st.just(NAN), st.floats(60.0, 100.0)), min_size=1, max_size=120)


@settings(max_examples=200, deadline=None)
@given(values=values_strategy, setting=st.sampled_from([None, 10, 25, 50, 100]), dt=st.sampled_from([0.5, 1.0]))
def test_satseconds_index_never_negative_and_no_start_while_not_below(
    values: list[float], setting: float | None, dt: float
) -> None:
    s = SatSeconds(1, low=LOW, setting=setting)
    for v in values:
        started, ended = s.step(np.array([v]), dt)
        assert s.index[0] >= 0.0
        if started[0]:
            assert v < LOW  # an alarm only starts on a value below the limit
        if ended[0]:
            assert v >= LOW and s.index[0] == 0.0
        assert not (started[0] and ended[0])


@settings(max_examples=200, deadline=None)
@given(values=st.lists(st.one_of(st.just(NAN), st.floats(LOW, 100.0)), min_size=1, max_size=120),
       setting=st.sampled_from([None, 10, 25, 50, 100]))
def test_satseconds_never_starts_while_every_value_is_at_or_above_the_limit(
    values: list[float], setting: float | None
) -> None:
    s = SatSeconds(1, low=LOW, setting=setting)
    starts, _ = run(s, values)
    assert not any(starts)
    assert s.index[0] == 0.0


@settings(max_examples=100, deadline=None)
@given(
    series=st.lists(st.lists(st.one_of(st.just(NAN), st.floats(70.0, 100.0)), min_size=40, max_size=40),
                    min_size=2, max_size=5),
    setting=st.sampled_from([None, 10, 50]),
)
def test_satseconds_vectorised_equals_one_bay_at_a_time(series: list[list[float]], setting: float | None) -> None:
    together = SatSeconds(len(series), low=LOW, setting=setting)
    alone = [SatSeconds(1, low=LOW, setting=setting) for _ in series]
    grid = np.array(series).T  # ticks x bays
    for row in grid:
        started, ended = together.step(row, 1.0)
        for b, ev in enumerate(alone):
            s1, e1 = ev.step(row[b : b + 1], 1.0)
            assert started[b] == s1[0] and ended[b] == e1[0]
            assert together.index[b] == ev.index[0]
            assert together.reason[b] == ev.reason[0]


# --- instant steps, per-bay parameters, immediate thresholds, rate of rise ------------------------------------


def test_instant_step_applies_a_value_at_once_without_counting_time() -> None:
    d = DelayedLimit(1, low=90, high=None, delay=5, clear_hysteresis=1)
    assert d.step(np.array([85.0]), 0.0)[0].tolist() == [False]  # a delayed condition does not start on arrival
    assert d.outside_time.tolist() == [0.0]
    undelayed = DelayedLimit(1, low=90, high=None, delay=0, clear_hysteresis=1)
    assert undelayed.step(np.array([85.0]), 0.0)[0].tolist() == [True]
    assert undelayed.step(np.array([95.0]), 0.0)[1].tolist() == [True]  # and ends the moment the value is back


def test_parameters_are_per_bay_and_nan_means_no_limit() -> None:
    d = DelayedLimit(3, low=[90.0, 85.0, NAN], high=None, delay=[0.0, 0.0, 0.0], clear_hysteresis=1)
    started, _ = d.step(np.array([87.0, 87.0, 10.0]), 1.0)
    assert started.tolist() == [True, False, False]
    s = SatSeconds(2, low=LOW, setting=[50.0, NAN])  # bay 2 has SatSeconds Off: a plain undelayed limit
    started, _ = s.step(np.array([89.0, 89.0]), 1.0)
    assert started.tolist() == [False, True]
    assert s.reason.tolist() == ["", "plain"]


def test_immediate_threshold_starts_a_delayed_limit_at_once() -> None:
    d = DelayedLimit(2, low=90, high=None, delay=15, clear_hysteresis=1, low_immediate=80)
    started, _ = d.step(np.array([80.0, 81.0]), 0.0)
    assert started.tolist() == [True, False]  # at the floor: undelayed; above it the 15-s delay runs


def test_reset_and_force_active() -> None:
    d = DelayedLimit(2, low=90, high=None, delay=0, clear_hysteresis=1)
    d.force_active([1])
    assert d.active.tolist() == [False, True]
    assert d.step(np.array([95.0, 95.0]), 1.0)[1].tolist() == [False, True]
    s = SatSeconds(1, low=LOW, setting=100)
    s.step(np.array([80.0]), 5.0)
    s.reset([0])
    assert s.index.tolist() == [0.0] and s.active.tolist() == [False]


def test_rate_of_rise_compares_with_the_lowest_fresh_reading_in_the_window() -> None:
    r = RateOfRise(1, rise=30, window=600, clear_hysteresis=5)
    seen: list[tuple[bool, bool]] = []
    # NIBP readings every 300 s: 120, 135, 151 (+31 over 600 s: alarm), then 140 (+20 < 25: ends)
    for value in (120.0, 135.0, 151.0, 140.0):
        s, e = r.step(np.array([value]), 300.0 if seen else 0.0, fresh=[True])
        seen.append((bool(s[0]), bool(e[0])))
        for _ in range(2):  # held between readings: the held value never enters the history twice
            s, e = r.step(np.array([value]), 0.0)
            seen.append((bool(s[0]), bool(e[0])))
    starts = [i for i, (s, _) in enumerate(seen) if s]
    ends = [i for i, (_, e) in enumerate(seen) if e]
    assert starts == [6] and ends == [9]
    assert r.rose_from.tolist() == [135.0]  # 120 left the window (600 s) when 140 arrived


def test_rate_of_rise_ignores_readings_older_than_the_window() -> None:
    r = RateOfRise(1, rise=30, window=600)
    r.step(np.array([100.0]), 0.0, fresh=[True])
    started, _ = r.step(np.array([140.0]), 601.0, fresh=[True])
    assert started.tolist() == [False]
