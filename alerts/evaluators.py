"""Vectorised alarm-condition evaluators: state arrays over all bays, updated once per engine tick with numpy.

These are the building blocks of the tick-driven alarm engine (issue 4). Each evaluator holds, for one alarm
condition, one state array per quantity over the N bays of a ward, and `step(values, dt)` advances every bay at once.
They are pure and clock-injected: no clock reads, no I/O; the only notion of time is the sum of the `dt` passed in
(plus an optional `t0`), exposed as `time`, so live service, replay and tests get the same decisions.

Common conventions
------------------
- `values` is a float array of shape (N,): the latest value of the vital per bay; NaN = no current value.
  "Missing is missing" (shared/ARCHITECTURE.md, "Names on the wire"): a NaN neither starts, nor ends, nor advances,
  nor resets anything. Every counter holds; only the evaluator's clock moves on.
- A tick covers the interval (time, time + dt]; the value passed in is taken as held over that whole interval
  (sample-and-hold), which is how the SatSeconds worked example is stated: "88 % for 2 s" = two 1-s ticks of 88
  (reference/alarm-standards.md §3.1).
- `step` returns two boolean arrays `(started, ended)` for this tick. A bay never starts and ends in the same tick.
  `crossing_time` (absolute, on the evaluator's clock; NaN for bays that did not start this tick) is the
  interpolated instant within the tick at which the start criterion was met, so the engine can stamp the event
  to better than one tick (the engine's own "now" corresponds to `time`).
- Time comparisons (`>= delay`, `>= setting`) allow an absolute slack of 1e-9 so that sums of float `dt`s such as
  ten ticks of 0.1 s still reach a 1-s delay.
- Delays here are the *alarm condition delay* of IEC 60601-1-8 (time from the triggering event to the alarm
  system deciding the condition exists); the engine must disclose them (reference §1.4, [M] for the disclosure duty).
- Ending is automatic when the triggering event no longer exists (a *non-latching* condition, reference §1.5);
  latching, acknowledge and audio pause are the alarm lifecycle's job, not the evaluators'.

DelayedLimit — a limit with an alarm delay and clear hysteresis
---------------------------------------------------------------
For any continuous vital (HR, RR, EtCO2, BP ...). Starts when the value has been outside the limit continuously for
>= `delay` s (0 = at once); ends when the value is back inside by at least `clear_hysteresis` for >= `clear_delay` s.
Outside is strict, as in the current engine (low 90: 89.9 is outside, 90 is inside); back inside by h means
`value >= low + h` (low 90, h 1 -> ends at >= 91) or `value <= high - h`. A value inside the limit but within the
hysteresis band breaks a running delay (it is inside) but does not clear an active condition, and resets the clear
timer. Sources: configurable alarm delays for continuous parameters, e.g. Mindray's general alarm delay, Philips 0-30 s
(reference §3.4, §3.3); the Dartmouth surveillance system notified only after > 30 s of violation (§3.4). The
hysteresis and clear delay are our own convention (the reference gives no numbers; §3.1's GE example, "91 % lowest
non-alarming", shows the idea of a non-alarming margin).
Design: one object is one alarm condition. Given both `low` and `high` it is the single condition "outside the band"
(it stays active if the value jumps from one side to the other). The current engine reports `<vital>_low` and
`<vital>_high` as separate alarms (alerts/engine.py), so the engine should build one object per side
(`low=..., high=None` and `low=None, high=...`).

SatSeconds — the Nellcor SatSeconds integral for the SpO2 low limit
-------------------------------------------------------------------
Mechanics from reference §3.1 with the Nellcor N-395 / Mindray / Edan magnitude convention (distance from the limit:
88 vs limit 90 = 2 points; not GE's distance from the lowest non-alarming value):
- Below = `value < low` (strict). While below, the index grows by `(low - value) * dt`.
- While not below (`value >= low`) it "decrements in the same manner in which it increments" (GE wording, §3.1):
  by `(value - low) * dt`, clamped at 0. So the index is the signed integral Σ(SpO2 - limit)·t of Mindray Passport V
  (§3.1) floored at 0, and the Nellcor/Mindray manuals' "integrates the number of %SpO2 points, both positive and
  negative" (N-395 / Mindray manual pages cited in §3.1). Consequence: a value sitting exactly at the limit neither
  grows nor shrinks the index.
- Starts (reason "index") when index >= `setting` (settings in use: 10, 25, 50, 100, §3.1).
- Safety net (reason "crossings"): `crossings` (3) or more separate limit crossings within `window` (60) s start the
  alarm even if the index is below the setting (GE CARESCAPE One, Mindray BeneHeart, §3.1). A crossing is *entering*
  below the limit: a below value whose last known (non-NaN) value was not below; a NaN between two below values is no
  crossing; the first below value a bay ever reports counts as one. The crossing's time is the start of its tick;
  the rule is checked when a crossing happens (the k-th crossing within `window` of the (k-2)-th earlier one).
  The crossing history is kept across alarms: repeated dips keep triggering the safety net.
- Floor (reason "floor"): a value <= `low - floor_offset` starts the alarm at once; SatSeconds does not delay the
  Desat/critical-low alarm (Mindray Passport V, §3.1; Masimo/Philips likewise alarm at once beyond a rapid-desat or
  desat limit, §3.2, §3.3). The default offset 10 is Masimo's larger Rapid Desat choice (§3.2).
- `setting=None` is "Off" (§3.1 lists Off): a plain undelayed limit (reason "plain", or "floor" at/below the floor);
  the index stays 0 and the crossings rule is not used.
- Ends when the value is back at/above the limit and the index is back to 0 (our reading of "until ... the patient
  %SpO2 re-enters the non-alarm range and remains there", §3.1), whichever rule started it. With setting Off the
  index is always 0, so it ends as soon as the value is >= low.
- Reason priority when several rules fire in the same tick: floor, index, crossings, plain. `reason` holds the reason
  of each active alarm ("" when not active); `reason[started]` are this tick's.
- `crossing_time`: for "index" the instant the integral reached the setting, interpolated within the tick
  (tick start + (setting - index before) / (low - value)); for the other rules the start of the tick (the value is
  held over the tick). For the worked example (limit 90, setting 50; 88 % 2 s, 86 % 3 s, 84 % 6 s = 52) this gives
  5 + 34/6 ≈ 10.67 s, which matches Edan's "≈10.7 s"; the Nellcor/Mindray manuals print "≈10.9 s", a figure the
  stated step values cannot produce (16 SatSeconds at 5 s plus 6 per second reaches 50 at 10.67 s).
"""

from __future__ import annotations

from typing import Final, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
StrArray = NDArray[np.str_]

Reason = Literal["index", "crossings", "floor", "plain"]
REASONS: Final[tuple[Reason, ...]] = ("floor", "index", "crossings", "plain")  # priority order

EPS: Final = 1e-9  # slack for sums of float dt (ten ticks of 0.1 s reach 1 s)


def _check_n(n: int) -> int:
    if n < 0:
        raise ValueError(f"number of bays must be >= 0, got {n}")
    return n


def _check_step(values: ArrayLike, dt: float, n: int) -> FloatArray:
    if not dt > 0:
        raise ValueError(f"dt must be > 0 s, got {dt}")
    v = np.asarray(values, dtype=np.float64)
    if v.shape != (n,):
        raise ValueError(f"values must have shape ({n},), got {v.shape}")
    return v


def _nonnegative(name: str, value: float) -> float:
    if not value >= 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return float(value)


class DelayedLimit:
    """One limit alarm condition (low, high, or outside the band [low, high]) with a delay, for N bays at once."""

    def __init__(
        self,
        n: int,
        *,
        low: float | None,
        high: float | None,
        delay: float,
        clear_hysteresis: float,
        clear_delay: float = 0.0,
        t0: float = 0.0,
    ) -> None:
        if low is None and high is None:
            raise ValueError("DelayedLimit needs a low or a high limit")
        self.delay = _nonnegative("delay", delay)
        self.clear_hysteresis = _nonnegative("clear_hysteresis", clear_hysteresis)
        self.clear_delay = _nonnegative("clear_delay", clear_delay)
        if low is not None and high is not None and low + self.clear_hysteresis > high - self.clear_hysteresis:
            raise ValueError(f"no value clears both limits: low {low} + {clear_hysteresis} > high {high} - "
                             f"{clear_hysteresis}")
        self.low = low
        self.high = high
        self.n = _check_n(n)
        self.time = float(t0)
        self._active: BoolArray = np.zeros(n, dtype=np.bool_)
        self._outside_time: FloatArray = np.zeros(n, dtype=np.float64)
        self._clear_time: FloatArray = np.zeros(n, dtype=np.float64)
        self._crossing_time: FloatArray = np.full(n, np.nan)

    @property
    def active(self) -> BoolArray:
        """Bays whose condition is active now (a copy)."""
        return self._active.copy()

    @property
    def outside_time(self) -> FloatArray:
        """Seconds each not-yet-active bay has been outside continuously (0 once active; a copy)."""
        return self._outside_time.copy()

    @property
    def crossing_time(self) -> FloatArray:
        """For bays that started in the last step: when the delay ran out (evaluator clock); NaN elsewhere."""
        return self._crossing_time.copy()

    def step(self, values: ArrayLike, dt: float) -> tuple[BoolArray, BoolArray]:
        """Advance all bays by `dt` seconds with `values` held over the tick; return (started, ended)."""
        v = _check_step(values, dt, self.n)
        t_start = self.time
        self.time = t_start + dt
        present = ~np.isnan(v)
        outside = np.zeros(self.n, dtype=np.bool_)
        clear = present.copy()
        if self.low is not None:
            outside |= v < self.low
            clear &= v >= self.low + self.clear_hysteresis
        if self.high is not None:
            outside |= v > self.high
            clear &= v <= self.high - self.clear_hysteresis
        inside = present & ~outside
        idle = ~self._active

        # waiting to start: count time outside, reset on an inside value, hold on NaN
        self._outside_time[idle & outside] += dt
        self._outside_time[idle & inside] = 0.0
        started = idle & outside & (self._outside_time >= self.delay - EPS)

        # active: count time cleared, reset on any present value that does not clear, hold on NaN
        self._clear_time[self._active & clear] += dt
        self._clear_time[self._active & present & ~clear] = 0.0
        ended = self._active & clear & (self._clear_time >= self.clear_delay - EPS)

        # outside began at time - outside_time; the delay ran out `delay` later (within this tick)
        reached = np.clip(self.time - self._outside_time + self.delay, t_start, self.time)
        self._crossing_time = np.where(started, reached, np.nan)

        self._active = (self._active | started) & ~ended
        self._outside_time[started | ended] = 0.0
        self._clear_time[started | ended] = 0.0
        return started, ended


class SatSeconds:
    """The Nellcor SatSeconds low-SpO2 alarm (index, 3-crossings safety net, undelayed floor) for N bays at once."""

    def __init__(
        self,
        n: int,
        *,
        low: float,
        setting: float | None,
        floor_offset: float = 10.0,
        window: float = 60.0,
        crossings: int = 3,
        t0: float = 0.0,
    ) -> None:
        if setting is not None and not setting > 0:
            raise ValueError(f"SatSeconds setting must be > 0 or None (Off), got {setting}")
        if crossings < 1:
            raise ValueError(f"crossings must be >= 1, got {crossings}")
        self.low = float(low)
        self.setting = None if setting is None else float(setting)
        self.floor = self.low - _nonnegative("floor_offset", floor_offset)
        self.window = _nonnegative("window", window)
        self.crossings = crossings
        self.n = _check_n(n)
        self.time = float(t0)
        self._index: FloatArray = np.zeros(n, dtype=np.float64)
        self._below: BoolArray = np.zeros(n, dtype=np.bool_)  # last known (non-NaN) value was below the limit
        self._active: BoolArray = np.zeros(n, dtype=np.bool_)
        self._reason: StrArray = np.full(n, "", dtype="<U9")
        self._crossing_time: FloatArray = np.full(n, np.nan)
        # times of each bay's last `crossings` limit crossings, oldest first; -inf = none yet
        self._crossed_at: FloatArray = np.full((n, crossings), -np.inf)

    @property
    def active(self) -> BoolArray:
        """Bays whose alarm is active now (a copy)."""
        return self._active.copy()

    @property
    def index(self) -> FloatArray:
        """The SatSeconds index of each bay (always 0 with setting Off; a copy)."""
        return self._index.copy()

    @property
    def reason(self) -> StrArray:
        """Which rule started each active alarm ("floor", "index", "crossings", "plain"); "" if not active."""
        return self._reason.copy()

    @property
    def crossing_time(self) -> FloatArray:
        """For bays that started in the last step: when the rule fired (evaluator clock); NaN elsewhere."""
        return self._crossing_time.copy()

    def step(self, values: ArrayLike, dt: float) -> tuple[BoolArray, BoolArray]:
        """Advance all bays by `dt` seconds with `values` held over the tick; return (started, ended)."""
        v = _check_step(values, dt, self.n)
        t_start = self.time
        self.time = t_start + dt
        present = ~np.isnan(v)
        below = v < self.low  # False for NaN
        not_below = present & ~below
        idle = ~self._active

        # the index: grows by the magnitude below the limit, shrinks "in the same manner" above it, floored at 0
        index_before = self._index.copy()
        if self.setting is not None:
            change = np.where(present, (self.low - v) * dt, 0.0)
            self._index = np.maximum(index_before + change, 0.0)

        # limit crossings (entering below); NaN keeps the last known side
        entered = below & ~self._below
        self._below = np.where(present, below, self._below)
        rows = np.flatnonzero(entered)
        if rows.size:
            self._crossed_at[rows, :-1] = self._crossed_at[rows, 1:]
            self._crossed_at[rows, -1] = t_start

        floor = below & (v <= self.floor)
        if self.setting is None:
            by_index = np.zeros(self.n, dtype=np.bool_)
            by_crossings = np.zeros(self.n, dtype=np.bool_)
        else:
            by_index = below & (self._index >= self.setting - EPS)
            by_crossings = entered & (t_start - self._crossed_at[:, 0] <= self.window + EPS)
        plain = below if self.setting is None else np.zeros(self.n, dtype=np.bool_)

        reason = np.full(self.n, "", dtype="<U9")
        for name, fired in zip(REASONS[::-1], (plain, by_crossings, by_index, floor), strict=True):
            reason[fired] = name  # reverse priority order: the higher priority overwrites
        started = idle & (reason != "")

        when = np.full(self.n, t_start)
        if self.setting is not None:
            with np.errstate(divide="ignore", invalid="ignore"):
                into_tick = (self.setting - index_before) / (self.low - v)
            when = np.where(reason == "index", np.clip(t_start + into_tick, t_start, self.time), t_start)
        self._crossing_time = np.where(started, when, np.nan)

        ended = self._active & not_below & (self._index <= 0.0)
        self._active = (self._active | started) & ~ended
        self._reason = np.where(started, reason, np.where(ended, "", self._reason))
        return started, ended
