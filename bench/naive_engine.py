"""A straightforward, per-observation Python implementation of the physiological alarm rules, for bench/engine.py.

This is the baseline the vectorised engine (alerts.engine.AlarmEngine) is measured against, and the reference it is
cross-checked with: plain Python, one small state object per alarm condition of each vital of each bay (per-bay
dicts), every condition stepped one value at a time. No numpy.

It applies the same rules as the engine's evaluators (alerts/evaluators.py, whose docstring is the spec) for the
conditions a profile describes (alerts/profile.py):
- absolute low / high limits, each its own alarm (`<vital>_low`, `<vital>_high`), with the alarm delay and the clear
  hysteresis (and clear delay); the SpO2 desat floor as an undelayed threshold when SatSeconds is off;
- SpO2 SatSeconds (`spo2_low`): the index, the 3-crossings-in-60-s safety net and the undelayed desat floor;
- limits relative to a fixed baseline (`<vital>_above_baseline`, `<vital>_below_baseline`), set with `set_baseline`
  (no baseline learning: a relative limit without a baseline never fires);
- the fast rise (`<vital>_rise`): the value at least `rise` above the lowest of the last `RISE_SLOTS` fresh readings
  that are within `rise_window` s.
The tick semantics are the engine's: `observe` only records a value; `tick(now)` first steps every condition over the
elapsed time with the values held since the last tick, then applies the new values at once (an instant step); a
condition that ended over the elapsed time and starts again on the new values did not end (no edges), as in the engine.

Out of scope (the benchmark's workload never needs them): staleness / NOT CURRENT, devices and technical alarms,
baseline learning, profile changes, the alarm lifecycle (latching, acknowledge, ...). So its events are the
conditions' edges: a start carries the crossing time interpolated within the tick, an end the tick's time.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from alerts.profile import Profile, VitalAlarms
from monitor.model import Observation

EPS = 1e-9  # the evaluators' slack for sums of float dt
RISE_SLOTS = 32  # fresh readings kept per bay for the rise condition (alerts.conditions.RISE_SLOTS)
CROSSINGS, CROSSINGS_WINDOW = 3, 60.0  # the SatSeconds safety net: 3 crossings within 60 s
INF = math.inf


Phase = Literal["start", "end"]


@dataclass(frozen=True, slots=True)
class Edge:
    """A condition of a bay started or ended at `time`."""

    bay: str
    alarm_id: str
    phase: Phase
    time: float


class Limit:
    """One limit (`low` or `high`, the other None) with a delay, clear hysteresis and delay, an undelayed threshold."""

    __slots__ = ("active", "alarm_id", "clear_delay", "clear_time", "delay", "high", "hysteresis", "immediate",
                 "low", "outside_time")

    def __init__(self, alarm_id: str, *, low: float | None = None, high: float | None = None, delay: float = 0.0,
                 hysteresis: float = 0.0, clear_delay: float = 0.0, immediate: float | None = None) -> None:
        self.alarm_id = alarm_id
        self.low, self.high, self.immediate = low, high, immediate
        self.delay, self.hysteresis, self.clear_delay = delay, hysteresis, clear_delay
        self.active = False
        self.outside_time = 0.0  # while idle: seconds outside continuously
        self.clear_time = 0.0  # while active: seconds back inside by the hysteresis

    def step(self, v: float, t: float, dt: float, fresh: bool) -> tuple[Phase, float] | None:
        """Hold `v` over (t, t + dt]; return ("start", crossing time) or ("end", t + dt) on an edge."""
        low, high = self.low, self.high
        if low is not None:
            outside = v < low
            clear = v >= low + self.hysteresis
            immediate = outside and self.immediate is not None and v <= self.immediate
        else:
            assert high is not None
            outside = v > high
            clear = v <= high - self.hysteresis
            immediate = outside and self.immediate is not None and v >= self.immediate
        end = t + dt
        if not self.active:
            if outside:
                self.outside_time += dt
            else:
                self.outside_time = 0.0
            by_delay = outside and self.outside_time >= self.delay - EPS
            if by_delay or immediate:
                at = min(max(end - self.outside_time + self.delay, t), end) if by_delay else t
                self.active, self.outside_time = True, 0.0
                return "start", at
            return None
        if not clear:
            self.clear_time = 0.0
            return None
        self.clear_time += dt
        if self.clear_time >= self.clear_delay - EPS:
            self.active, self.clear_time = False, 0.0
            return "end", end
        return None


class SatSecondsLow:
    """The SpO2 low limit with SatSeconds (index, crossings safety net) and the undelayed desat floor."""

    __slots__ = ("active", "alarm_id", "below", "crossed_at", "floor", "index", "low", "setting")

    def __init__(self, alarm_id: str, *, low: float, setting: float, floor: float) -> None:
        self.alarm_id = alarm_id
        self.low, self.setting, self.floor = low, setting, floor
        self.active = False
        self.index = 0.0
        self.below = False  # the last value was below the limit
        self.crossed_at: deque[float] = deque([-INF] * CROSSINGS, maxlen=CROSSINGS)  # last crossings, oldest first

    def step(self, v: float, t: float, dt: float, fresh: bool) -> tuple[Phase, float] | None:
        low = self.low
        before = self.index
        index = before + (low - v) * dt
        self.index = index = index if index > 0.0 else 0.0
        below = v < low
        entered = below and not self.below
        self.below = below
        if entered:
            self.crossed_at.append(t)
        if self.active:
            if not below and index <= 0.0:
                self.active = False
                return "end", t + dt
            return None
        if not below:
            return None
        if v <= self.floor:
            return "start", self._start(t)
        if index >= self.setting - EPS:
            return "start", self._start(min(max(t + (self.setting - before) / (low - v), t), t + dt))
        if entered and t - self.crossed_at[0] <= CROSSINGS_WINDOW + EPS:
            return "start", self._start(t)
        return None

    def _start(self, at: float) -> float:
        self.active = True
        return at


class Rise:
    """A fast rise: the value at least `rise` above the lowest fresh reading of the last `window` s."""

    __slots__ = ("active", "alarm_id", "hysteresis", "rise", "times", "values", "window")

    def __init__(self, alarm_id: str, *, rise: float, window: float, hysteresis: float) -> None:
        self.alarm_id = alarm_id
        self.rise, self.window, self.hysteresis = rise, window, hysteresis
        self.active = False
        self.times: deque[float] = deque(maxlen=RISE_SLOTS)  # the last fresh readings, oldest first
        self.values: deque[float] = deque(maxlen=RISE_SLOTS)

    def step(self, v: float, t: float, dt: float, fresh: bool) -> tuple[Phase, float] | None:
        end = t + dt
        times, values = self.times, self.values
        since = end - self.window - EPS
        while times and times[0] < since:  # readings are in time order: drop those that left the window
            times.popleft()
            values.popleft()
        lowest = min(values) if values else None
        if fresh:
            times.append(end)
            values.append(v)
        if lowest is None:  # nothing to rise from: not risen
            if self.active:
                self.active = False
                return "end", end
            return None
        risen = v - lowest
        if not self.active:
            if risen >= self.rise - EPS:
                self.active = True
                return "start", end
        elif not risen >= self.rise - self.hysteresis - EPS:
            self.active = False
            return "end", end
        return None


Rule = Limit | SatSecondsLow | Rise


class VitalState:
    """One vital of one bay: its current value and its alarm conditions."""

    __slots__ = ("bay", "rules", "value")

    def __init__(self, bay: str, rules: list[Rule]) -> None:
        self.bay = bay
        self.value = math.nan
        self.rules = rules


def rules_for(vital: str, a: VitalAlarms, baseline: float | None) -> list[Rule]:
    """The alarm conditions a profile's entry for `vital` describes (relative limits only with a baseline)."""
    rules: list[Rule] = []
    if a.low is not None:
        if vital == "spo2" and a.satseconds:
            floor = a.low - a.desat_floor if a.desat_floor is not None else -INF
            rules.append(SatSecondsLow(f"{vital}_low", low=a.low, setting=float(a.satseconds), floor=floor))
        else:
            immediate = a.low - a.desat_floor if a.desat_floor is not None else None
            rules.append(Limit(f"{vital}_low", low=a.low, delay=a.delay, hysteresis=a.clear_hysteresis,
                               clear_delay=a.clear_delay, immediate=immediate))
    if a.high is not None:
        rules.append(Limit(f"{vital}_high", high=a.high, delay=a.delay, hysteresis=a.clear_hysteresis,
                           clear_delay=a.clear_delay))
    if baseline is not None and a.above_baseline is not None:
        rules.append(Limit(f"{vital}_above_baseline", high=baseline + a.above_baseline, delay=a.delay,
                           hysteresis=a.clear_hysteresis, clear_delay=a.clear_delay))
    if baseline is not None and a.below_baseline is not None:
        rules.append(Limit(f"{vital}_below_baseline", low=baseline - a.below_baseline, delay=a.delay,
                           hysteresis=a.clear_hysteresis, clear_delay=a.clear_delay))
    if a.rise is not None:
        rules.append(Rise(f"{vital}_rise", rise=a.rise, window=a.rise_window, hysteresis=a.clear_hysteresis))
    return rules


class NaiveEngine:
    """The alarm conditions of `profile` for each bay, evaluated one observation at a time in plain Python."""

    def __init__(self, bays: Iterable[str], profile: Profile,
                 baselines: Mapping[str, Mapping[str, float]] | None = None) -> None:
        self.profile = profile
        self.bays: dict[str, dict[str, VitalState]] = {}
        for bay in bays:
            own = (baselines or {}).get(bay, {})
            self.bays[bay] = {vital: VitalState(bay, rules_for(vital, a, own.get(vital)))
                              for vital, a in profile.vitals.items()}
        self._pending: dict[VitalState, float] = {}
        self._now: float | None = None

    def observe(self, obs: Observation) -> None:
        """Record a reading; it counts from the next `tick`."""
        vitals = self.bays.get(obs.bay)
        state = vitals.get(obs.vital) if vitals is not None else None
        if state is not None and not math.isnan(obs.value):
            self._pending[state] = obs.value

    def tick(self, now: float) -> list[Edge]:
        """Step every condition over the time since the last tick with the held values, then apply new values."""
        last = now if self._now is None else self._now
        dt = max(0.0, now - last)
        now = self._now = max(last, now)
        edges: list[Edge] = []
        ended: dict[Rule, int] = {}  # conditions that ended over the elapsed time -> their edge in `edges`
        for bay, vitals in self.bays.items():
            for state in vitals.values():
                v = state.value
                if v != v:  # NaN: no current value, nothing moves
                    continue
                for rule in state.rules:
                    edge = rule.step(v, last, dt, False)
                    if edge is not None:
                        if edge[0] == "end":
                            ended[rule] = len(edges)
                        edges.append(Edge(bay, rule.alarm_id, edge[0], edge[1]))
        fresh, self._pending = self._pending, {}
        dropped: set[int] = set()
        for state, v in fresh.items():
            state.value = v
            for rule in state.rules:
                edge = rule.step(v, now, 0.0, True)
                if edge is None:
                    continue
                if edge[0] == "start" and rule in ended:  # ended and started again in one tick: it continued
                    dropped.add(ended[rule])
                    continue
                edges.append(Edge(state.bay, rule.alarm_id, edge[0], edge[1]))
        return [e for i, e in enumerate(edges) if i not in dropped] if dropped else edges
