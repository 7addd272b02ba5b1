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
- `dt = 0` is an *instant* step: it accumulates nothing but applies new values at once, so an undelayed criterion
  (delay 0, the desat floor, a value back inside) takes effect the moment a value arrives. The engine steps the
  values it held over the elapsed time, then takes in new observations with an instant step (alerts/engine.py).
- Every threshold, delay and setting is a per-bay array (a scalar is broadcast), so bays on different alarm
  profiles share one evaluator; NaN as a threshold means "this bay has no such limit" and never starts anything.
  `reset(rows)` clears the state of some bays, `force_active(rows)` carries an active condition over when a bay's
  profile moves it from one evaluator to another.
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
Optional undelayed thresholds `low_immediate` / `high_immediate` start the condition at once, whatever the delay,
when the value is at or beyond them (the rapid-desat floor of a delayed SpO2 low limit; reference §3.1, §3.2).
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
  alarm even if the index is below the setting (GE CARESCAPE One; Comen reports it as medium priority, §3.1). A
  crossing is *entering* below the limit: a below value whose last known (non-NaN) value was not below; a NaN
  between two below values is no crossing; the first below value a bay ever reports counts as one. The crossing's
  time is the start of its tick; the rule is checked when a crossing happens (the k-th crossing within `window` of
  the (k-2)-th earlier one). The crossing history is kept across alarms: repeated dips keep triggering the safety
  net.
- Floor (reason "floor"): a value <= `low - floor_offset` starts the alarm at once; SatSeconds does not delay the
  Desat/critical-low alarm (Mindray Passport V, §3.1; Masimo/Philips likewise alarm at once beyond a rapid-desat or
  desat limit, §3.2, §3.3). The default offset 10 is Masimo's larger Rapid Desat choice (§3.2).
- `setting=None` (or NaN for a bay) is "Off" (§3.1 lists Off): a plain undelayed limit (reason "plain", or
  "floor" at/below the floor);
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

RateOfRise — a fast rise of a vital (e.g. SBP during a ketamine infusion)
-------------------------------------------------------------------------
Starts when the current value is at least `rise` above the lowest *fresh reading* of the last `window` seconds
(it keeps the last `slots` fresh readings per bay; for NIBP every reading, for a 1-Hz vital the last `slots` s);
ends when the rise is below `rise - clear_hysteresis` (the low reading left the window, or the value came down).
Only readings marked fresh enter the history, so a held NIBP value is not counted again at every tick. Undelayed:
NIBP is not continuous, so delays do not apply to it (Mindray, reference §3.4). The numbers (30 mmHg within 10 min)
are our own convention, documented in docs/alarms.md; the reference gives none.
"""


from __future__ import annotations

from typing import Final, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
StrArray = NDArray[np.str_]
IntArray = NDArray[np.intp]

Reason = Literal["index", "crossings", "floor", "plain"]
REASONS: Final[tuple[Reason, ...]] = ("floor", "index", "crossings", "plain")  # priority order

EPS: Final = 1e-9  # slack for sums of float dt (ten ticks of 0.1 s reach 1 s)


def _check_n(n: int) -> int:
    if n < 0:
        raise ValueError(f"number of bays must be >= 0, got {n}")
    return n


def _check_step(values: ArrayLike, dt: float, n: int) -> FloatArray:
    if not dt >= 0:
        raise ValueError(f"dt must be >= 0 s, got {dt}")
    v = np.asarray(values, dtype=np.float64)
    if v.shape != (n,):
        raise ValueError(f"values must have shape ({n},), got {v.shape}")
    return v


def per_bay(name: str, value: float | ArrayLike | None, n: int, *, nan_ok: bool, minimum: float | None = None
            ) -> FloatArray:
    """`value` as a float array of shape (n,): a scalar is broadcast, None becomes NaN (only where `nan_ok`)."""
    arr = np.full(n, np.nan) if value is None else np.broadcast_to(np.asarray(value, dtype=np.float64), (n,)).copy()
    if not nan_ok and np.isnan(arr).any():
        raise ValueError(f"{name} must be a number, got NaN/None")
    if minimum is not None and (arr[~np.isnan(arr)] < minimum).any():
        raise ValueError(f"{name} must be >= {minimum:g}, got {value!r}")
    return arr


def _rows(rows: ArrayLike, n: int) -> IntArray:
    r = np.asarray(rows, dtype=np.intp).reshape(-1)
    if r.size and (r.min() < 0 or r.max() >= n):
        raise IndexError(f"rows out of range 0..{n - 1}: {r.tolist()}")
    return r


class DelayedLimit:
    """One limit alarm condition (low, high, or outside the band [low, high]) with a delay, for N bays at once."""

    def __init__(
        self,
        n: int,
        *,
        low: float | ArrayLike | None,
        high: float | ArrayLike | None,
        delay: float | ArrayLike,
        clear_hysteresis: float | ArrayLike,
        clear_delay: float | ArrayLike = 0.0,
        low_immediate: float | ArrayLike | None = None,
        high_immediate: float | ArrayLike | None = None,
        t0: float = 0.0,
    ) -> None:
        self.n = _check_n(n)
        if low is None and high is None:
            raise ValueError("give low, high or both")
        self.low = per_bay("low", low, n, nan_ok=True)
        self.high = per_bay("high", high, n, nan_ok=True)
        self.delay = per_bay("delay", delay, n, nan_ok=False, minimum=0)
        self.clear_hysteresis = per_bay("clear_hysteresis", clear_hysteresis, n, nan_ok=False, minimum=0)
        self.clear_delay = per_bay("clear_delay", clear_delay, n, nan_ok=False, minimum=0)
        self.low_immediate = per_bay("low_immediate", low_immediate, n, nan_ok=True)
        self.high_immediate = per_bay("high_immediate", high_immediate, n, nan_ok=True)
        both = ~np.isnan(self.low) & ~np.isnan(self.high)
        if (self.low[both] + self.clear_hysteresis[both] > self.high[both] - self.clear_hysteresis[both]).any():
            raise ValueError(f"no value clears both limits: low {low!r} + {clear_hysteresis!r} > high {high!r} - "
                             f"{clear_hysteresis!r}")
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

    def reset(self, rows: ArrayLike) -> None:
        """Forget the state of these bays (inactive, counters at 0)."""
        r = _rows(rows, self.n)
        self._active[r] = False
        self._outside_time[r] = 0.0
        self._clear_time[r] = 0.0

    def is_active(self, i: int) -> bool:
        return bool(self._active[i])

    def extend(self, n: int) -> None:
        """Add `n` elements at the end: no limit, inactive (one evaluator can hold many conditions side by side)."""
        def more(a: FloatArray, fill: float) -> FloatArray:
            return np.concatenate([a, np.full(n, fill)])

        self.low, self.high = more(self.low, np.nan), more(self.high, np.nan)
        self.low_immediate, self.high_immediate = more(self.low_immediate, np.nan), more(self.high_immediate, np.nan)
        self.delay, self.clear_hysteresis = more(self.delay, 0.0), more(self.clear_hysteresis, 0.0)
        self.clear_delay = more(self.clear_delay, 0.0)
        self._outside_time, self._clear_time = more(self._outside_time, 0.0), more(self._clear_time, 0.0)
        self._crossing_time = more(self._crossing_time, np.nan)
        self._active = np.concatenate([self._active, np.zeros(n, dtype=np.bool_)])
        self.n += n

    def force_active(self, rows: ArrayLike) -> None:
        """Make the condition of these bays active (it then ends by the usual clear rule)."""
        r = _rows(rows, self.n)
        self._active[r] = True
        self._outside_time[r] = 0.0
        self._clear_time[r] = 0.0

    def step(self, values: ArrayLike, dt: float) -> tuple[BoolArray, BoolArray]:
        """Advance all bays by `dt` seconds with `values` held over the tick; return (started, ended)."""
        v = _check_step(values, dt, self.n)
        t_start = self.time
        self.time = t_start + dt
        present = ~np.isnan(v)
        with np.errstate(invalid="ignore"):
            below = v < self.low  # False where v or the limit is NaN
            above = v > self.high
            outside = below | above
            # back inside by the hysteresis on every side this bay has (a NaN limit clears trivially)
            clear = present & ~(v < self.low + self.clear_hysteresis) & ~(v > self.high - self.clear_hysteresis)
            immediate = (below & (v <= self.low_immediate)) | (above & (v >= self.high_immediate))
        inside = present & ~outside
        idle = ~self._active

        # waiting to start: count time outside, reset on an inside value, hold on NaN
        self._outside_time[idle & outside] += dt
        self._outside_time[idle & inside] = 0.0
        by_delay = outside & (self._outside_time >= self.delay - EPS)
        started = idle & (by_delay | immediate)

        # active: count time cleared, reset on any present value that does not clear, hold on NaN
        self._clear_time[self._active & clear] += dt
        self._clear_time[self._active & present & ~clear] = 0.0
        ended = self._active & clear & (self._clear_time >= self.clear_delay - EPS)

        # outside began at time - outside_time; the delay ran out `delay` later (within this tick)
        reached = np.clip(self.time - self._outside_time + self.delay, t_start, self.time)
        reached = np.where(immediate & ~by_delay, t_start, reached)
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
        low: float | ArrayLike,
        setting: float | ArrayLike | None,
        floor_offset: float | ArrayLike = 10.0,
        window: float = 60.0,
        crossings: int = 3,
        t0: float = 0.0,
    ) -> None:
        self.n = _check_n(n)
        if crossings < 1:
            raise ValueError(f"crossings must be >= 1, got {crossings}")
        if not window >= 0:
            raise ValueError(f"window must be >= 0, got {window}")
        self.low = per_bay("low", low, n, nan_ok=True)
        self.setting = per_bay("setting", setting, n, nan_ok=True)  # NaN = Off
        if (self.setting[~np.isnan(self.setting)] <= 0).any():
            raise ValueError(f"SatSeconds setting must be > 0 or None (Off), got {setting!r}")
        self.floor_offset = per_bay("floor_offset", floor_offset, n, nan_ok=False, minimum=0)
        self.window = float(window)
        self.crossings = crossings
        self.time = float(t0)
        self._index: FloatArray = np.zeros(n, dtype=np.float64)
        self._below: BoolArray = np.zeros(n, dtype=np.bool_)  # last known (non-NaN) value was below the limit
        self._active: BoolArray = np.zeros(n, dtype=np.bool_)
        self._reason: StrArray = np.full(n, "", dtype="<U9")
        self._crossing_time: FloatArray = np.full(n, np.nan)
        # times of each bay's last `crossings` limit crossings, oldest first; -inf = none yet
        self._crossed_at: FloatArray = np.full((n, crossings), -np.inf)

    @property
    def floor(self) -> FloatArray:
        """The undelayed floor of each bay (low - floor_offset)."""
        return self.low - self.floor_offset

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

    def reset(self, rows: ArrayLike) -> None:
        """Forget the state of these bays (inactive, index 0, no crossings)."""
        r = _rows(rows, self.n)
        self._index[r] = 0.0
        self._below[r] = False
        self._active[r] = False
        self._reason[r] = ""
        self._crossed_at[r] = -np.inf

    def is_active(self, i: int) -> bool:
        return bool(self._active[i])

    def force_active(self, rows: ArrayLike) -> None:
        """Make the alarm of these bays active (it ends when the value is back at the limit and the index is 0)."""
        r = _rows(rows, self.n)
        self._active[r] = True
        self._reason[r] = "plain"

    def step(self, values: ArrayLike, dt: float) -> tuple[BoolArray, BoolArray]:
        """Advance all bays by `dt` seconds with `values` held over the tick; return (started, ended)."""
        v = _check_step(values, dt, self.n)
        t_start = self.time
        self.time = t_start + dt
        present = ~np.isnan(v)
        off = np.isnan(self.setting)
        with np.errstate(invalid="ignore"):
            below = v < self.low  # False for NaN (value or limit)
            not_below = present & ~below
            floor = below & (v <= self.floor)
        idle = ~self._active

        # the index: grows by the magnitude below the limit, shrinks "in the same manner" above it, floored at 0
        index_before = self._index.copy()
        counting = present & ~off & ~np.isnan(self.low)
        change = np.where(counting, (self.low - v) * dt, 0.0)
        self._index = np.maximum(index_before + change, 0.0)

        # limit crossings (entering below); NaN keeps the last known side
        entered = below & ~self._below
        self._below = np.where(present, below, self._below)
        rows = np.flatnonzero(entered)
        if rows.size:
            self._crossed_at[rows, :-1] = self._crossed_at[rows, 1:]
            self._crossed_at[rows, -1] = t_start

        with np.errstate(invalid="ignore"):
            by_index = below & ~off & (self._index >= self.setting - EPS)
        by_crossings = entered & ~off & (t_start - self._crossed_at[:, 0] <= self.window + EPS)
        plain = below & off

        reason = np.full(self.n, "", dtype="<U9")
        for name, fired in zip(REASONS[::-1], (plain, by_crossings, by_index, floor), strict=True):
            reason[fired] = name  # reverse priority order: the higher priority overwrites
        started = idle & (reason != "")

        with np.errstate(divide="ignore", invalid="ignore"):
            into_tick = (self.setting - index_before) / (self.low - v)
        when = np.where(reason == "index", np.clip(t_start + into_tick, t_start, self.time), t_start)
        self._crossing_time = np.where(started, when, np.nan)

        ended = self._active & not_below & (self._index <= 0.0)
        self._active = (self._active | started) & ~ended
        self._reason = np.where(started, reason, np.where(ended, "", self._reason))
        return started, ended


class RateOfRise:
    """A fast rise: the value at least `rise` above the lowest fresh reading of the last `window` s, N bays at once."""

    def __init__(
        self,
        n: int,
        *,
        rise: float | ArrayLike | None,
        window: float | ArrayLike,
        clear_hysteresis: float | ArrayLike = 0.0,
        slots: int = 32,
        t0: float = 0.0,
    ) -> None:
        self.n = _check_n(n)
        if slots < 1:
            raise ValueError(f"slots must be >= 1, got {slots}")
        self.rise = per_bay("rise", rise, n, nan_ok=True, minimum=0)  # NaN = off
        self.window = per_bay("window", window, n, nan_ok=False, minimum=0)
        self.clear_hysteresis = per_bay("clear_hysteresis", clear_hysteresis, n, nan_ok=False, minimum=0)
        self.time = float(t0)
        self._times: FloatArray = np.full((n, slots), -np.inf)
        self._values: FloatArray = np.full((n, slots), np.nan)
        self._next: IntArray = np.zeros(n, dtype=np.intp)
        self._active: BoolArray = np.zeros(n, dtype=np.bool_)
        self._crossing_time: FloatArray = np.full(n, np.nan)
        self._from: FloatArray = np.full(n, np.nan)

    @property
    def active(self) -> BoolArray:
        return self._active.copy()

    @property
    def crossing_time(self) -> FloatArray:
        return self._crossing_time.copy()

    @property
    def rose_from(self) -> FloatArray:
        """The lowest reading of the window at the last step (NaN where none): what the value rose from."""
        return self._from.copy()

    def reset(self, rows: ArrayLike) -> None:
        r = _rows(rows, self.n)
        self._times[r] = -np.inf
        self._values[r] = np.nan
        self._active[r] = False

    def force_active(self, rows: ArrayLike) -> None:
        self._active[_rows(rows, self.n)] = True

    def is_active(self, i: int) -> bool:
        return bool(self._active[i])

    def step(self, values: ArrayLike, dt: float, fresh: ArrayLike | None = None) -> tuple[BoolArray, BoolArray]:
        """Advance by `dt`; `fresh` marks bays whose value is a new reading (it then joins the history)."""
        v = _check_step(values, dt, self.n)
        self.time += dt
        present = ~np.isnan(v)
        in_window = self._times >= (self.time - self.window)[:, None] - EPS
        lows = np.where(in_window, self._values, np.inf).min(axis=1)
        lows = np.where(np.isinf(lows), np.nan, lows)
        self._from = lows
        with np.errstate(invalid="ignore"):
            risen = v - lows
            starting = present & (risen >= self.rise - EPS)
            clearing = present & ~(risen >= self.rise - self.clear_hysteresis - EPS)
        started = ~self._active & starting
        ended = self._active & clearing
        self._crossing_time = np.where(started, self.time, np.nan)
        self._active = (self._active | started) & ~ended
        if fresh is not None:
            f = np.asarray(fresh, dtype=np.bool_) & present
            rows = np.flatnonzero(f)
            if rows.size:
                cols = self._next[rows]
                self._times[rows, cols] = self.time
                self._values[rows, cols] = v[rows]
                self._next[rows] = (cols + 1) % self._times.shape[1]
        return started, ended
