"""The benchmark's straightforward implementation (bench/naive_engine.py) decides what the engine decides.

bench/engine.py compares the engine's speed with that implementation's, which is only honest if both apply the same
rules: this runs both on a small bench workload, and on a few hand-made cases whose expected times follow from the
ketamine-infusion profile by hand.
"""

from __future__ import annotations

from alerts.engine import AlarmEngine
from alerts.profile import builtin_profiles
from bench.harness import PROFILE, disagreements, run_engine, run_naive
from bench.naive_engine import NaiveEngine
from bench.workload import make_workload
from monitor.model import Observation

Script = list[tuple[float, str, float]]  # (time, vital, value) for one bay "b1", ticked at every second


def _starts_and_ends(script: Script, baselines: dict[str, float] | None = None, until: float = 40.0
                     ) -> tuple[list[tuple[str, str, float]], list[tuple[str, str, float]]]:
    """Run `script` through the engine and the naive implementation; both sets of (phase, id, time) edges."""
    engine = AlarmEngine(["b1"], default_profile=PROFILE, t0=0.0)
    naive = NaiveEngine(["b1"], builtin_profiles()[PROFILE], {"b1": baselines or {}})
    for vital, value in (baselines or {}).items():
        engine.set_baseline("b1", vital, value, 0.0)
    got_engine: list[tuple[str, str, float]] = []
    got_naive: list[tuple[str, str, float]] = []
    latched: set[str] = set()
    t = 0.0
    while t <= until:
        for at, vital, value in script:
            if at == t:
                obs = Observation("b1", "mon1", vital, value, None, t)
                engine.observe(obs)
                naive.observe(obs)
        for e in engine.tick(t):
            if e.kind != "physiological" or e.phase not in ("start", "end", "latched"):
                continue
            if e.phase == "end" and e.id in latched:  # a latched occurrence closed: not the condition's edge
                latched.discard(e.id)
                continue
            if e.phase == "latched":  # the condition ended (a high-priority alarm latches)
                latched.add(e.id)
            got_engine.append(("start" if e.phase == "start" else "end", e.id, e.time))
        got_naive += [(e.phase, e.alarm_id, e.time) for e in naive.tick(t)]
        t += 1.0
    return got_engine, got_naive


def _held(vital: str, values: list[tuple[float, float]], until: float = 40.0) -> Script:
    """A 1-Hz series of `vital`: each (from time, value) holds until the next one."""
    out: Script = []
    for i, (start, value) in enumerate(values):
        end = values[i + 1][0] if i + 1 < len(values) else until + 1
        out += [(float(t), vital, value) for t in range(int(start), int(end))]
    return out


def test_both_raise_the_same_alarms_on_a_small_bench_workload() -> None:
    w = make_workload(5, 120, seed=4)
    engine, naive = run_engine(w), run_naive(w)
    assert disagreements(engine, naive, tolerance=1.0) == []
    assert disagreements(run_engine(w, block=True), naive, tolerance=1.0) == []
    # not vacuous: the workload starts (and ends) alarms of several kinds
    assert len(engine.starts) >= 5 and engine.end_count > 0


def test_satseconds_index_start_is_interpolated_within_the_tick() -> None:
    # SpO2 limit 90, SatSeconds 25: 88 held 2 s (index 4), 86 held 3 s (+12 = 16), then 84 (+6 a second):
    # 22 at t=6, 25 reached half-way through the tick (6, 7]: start at 6 + (25 - 22) / 6 = 6.5, decided at tick 7.
    script = _held("spo2", [(0, 88), (2, 86), (5, 84), (9, 97)])
    engine, naive = _starts_and_ends(script)
    assert [e for e in engine if e[0] == "start"] == [("start", "spo2_low", 6.5)]
    assert engine == naive


def test_desat_floor_starts_at_once_and_the_alarm_ends_when_the_index_is_back_to_zero() -> None:
    # 97, then 80 (the floor, 90 - 10) at t=3: start at 3. Held 2 s below: index 2 * 10 = 20; from t=5 at 95
    # (5 above the limit) it drains 5 a second: 0 after the tick (8, 9], so the end is at 9.
    script = _held("spo2", [(0, 97), (3, 80), (5, 95)])
    engine, naive = _starts_and_ends(script)
    assert engine == [("start", "spo2_low", 3.0), ("end", "spo2_low", 9.0)]
    assert naive == engine


def test_delayed_limit_and_clear_hysteresis() -> None:
    # HR high 130, delay 10, clear hysteresis 3: 131 from t=2 starts at 12; 128 (inside, within the hysteresis)
    # does not end it; 127 at t=25 does.
    script = _held("hr", [(0, 80), (2, 131), (20, 128), (25, 127)])
    engine, naive = _starts_and_ends(script)
    assert engine == [("start", "hr_high", 12.0), ("end", "hr_high", 25.0)]
    assert naive == engine


def test_fast_rise_and_baseline_relative_limit() -> None:
    # SBP baseline 110: above-baseline limit 150 (> is outside). 120 -> 150 at t=4 is a rise of 30 (>= 30: start
    # at 4) and not above 150; 151 at t=8 is above the baseline limit (start at 8), back to 150 at t=12 ends it.
    script = _held("nibp_sys", [(0, 120), (4, 150), (8, 151), (12, 150)], until=20)
    engine, naive = _starts_and_ends(script, baselines={"nibp_sys": 110.0}, until=20)
    starts = [e for e in engine if e[0] == "start"]
    assert starts == [("start", "nibp_sys_rise", 4.0), ("start", "nibp_sys_above_baseline", 8.0)]
    assert ("end", "nibp_sys_above_baseline", 12.0) in engine
    assert sorted(naive) == sorted(engine)
