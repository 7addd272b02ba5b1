"""The streaming alarm engine: observations and technical statuses in, alarm events out, for every bay at once.

Pure and clock-injected: it never reads a clock or does I/O; the live service, `bedside replay` and the tests
run this same code and, given the same inputs and times, get the same events.

How it decides
--------------
- `observe` only records a value (O(1)); decisions are made in `tick(now)`, which the service calls once a second
  and right after observations arrive (coalesced), and replay calls at every trace row.
- A tick first steps every condition over the time since the last tick with the values that were current then
  (delays, SatSeconds integrals, clear timers count real elapsed time), then takes in the new values and applies
  them at once (an instant step: an undelayed limit or the desat floor fires the moment the value arrives).
  Physiological conditions are vectorised evaluators over all bays (alerts/conditions.py, alerts/evaluators.py).
- A value is current until it is `stale_after` old (SpO2 30 s, NIBP 15 min, profile-configurable), until its
  device reports the sensor off / no data / lost, or until the device goes silent: then the vital has no value
  (NaN), which neither starts nor ends a physiological alarm, and "<vital> NOT CURRENT" (technical, medium)
  starts when the vital is stale. Missing is never a number.
- Limits relative to the patient's baseline use the baseline set for the bay (`set_baseline`), or else the median
  of the vital's readings over the profile's `baseline_window` from its first reading.
- Technical alarms (device conditions, silence, not current, failures) start and end undelayed: no smart-alarm
  rule ever delays or suppresses them.
- Every alarm's life after its start (acknowledge, audio pause, latching, reminder, escalation) is the
  `Lifecycle`'s (alerts/lifecycle.py).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from alerts.conditions import ConditionSet, Fired, Slot, threshold
from alerts.evaluators import DelayedLimit, RateOfRise, SatSeconds
from alerts.lifecycle import ActiveAlarm, Lifecycle, LifecycleSettings
from alerts.profile import Profile, ProfileError, builtin_profiles
from alerts.rules import TECHNICAL_PRIORITY, TECHNICAL_TEXT
from monitor.model import AlarmEvent, Condition, Observation, Priority, TechnicalStatus
from monitor.vitals import VITALS

VITAL_KEYS: tuple[str, ...] = tuple(VITALS)
DEFAULT_PROFILE = "ketamine-infusion"
# the session phases (issue 6) and the profile each switches a bay to, unless the config says otherwise
PHASE_PROFILES: Mapping[str, str] = {"baseline": "ketamine-infusion", "infusion": "ketamine-infusion",
                                     "recovery": "recovery"}
# a device's technical condition that means its values are no longer the patient's
INVALIDATING = frozenset({Condition.SENSOR_OFF, Condition.NO_DATA, Condition.DEVICE_LOST, Condition.SENSOR_FAULT,
                          Condition.INVALID_VALUE})
NOT_CURRENT_PRIORITY: Priority = "medium"
BASELINE_SAMPLES = 64  # readings kept per vital to learn a baseline, spread evenly over the baseline window


@dataclass(frozen=True, slots=True)
class WatchedDevice:
    """A device the engine expects to hear from, and after how many silent seconds that is "no data"."""

    device: str
    bay: str
    silent_after: float = 10.0


@dataclass(frozen=True, slots=True)
class _Edge:
    """A condition's start (with its event) or end (with the value then) found in one evaluator step."""

    alarm_id: str
    row: int
    time: float
    value: float | None
    start: AlarmEvent | None


def _fmt(value: float) -> str:
    """A value as a nurse reads it: whole numbers without decimals, else one (49.9 stays 49.9, never 50)."""
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


class AlarmEngine:
    """Decides alarms for all bays. Feed it with `observe`, `technical`, `heard` and `tick`."""

    def __init__(
        self,
        bays: Sequence[str],
        devices: Iterable[WatchedDevice] = (),
        *,
        profiles: Mapping[str, Profile] | None = None,
        default_profile: str = DEFAULT_PROFILE,
        bay_profiles: Mapping[str, str] | None = None,
        lifecycle: LifecycleSettings | None = None,
        phase_profiles: Mapping[str, str] | None = None,
        t0: float | None = None,
        hold: float = 0.0,
    ) -> None:
        """`hold`: every reading stays current for at least this long whatever the profile's `stale_after` (a
        replayed trace sampled once a minute holds each value until its next row)."""
        self.bays = list(bays)
        self._row = {b: i for i, b in enumerate(self.bays)}
        if len(self._row) != len(self.bays):
            raise ValueError("bay ids must be unique")
        self.profiles = dict(profiles) if profiles is not None else builtin_profiles()
        self.phase_profiles = dict(PHASE_PROFILES if phase_profiles is None else phase_profiles)
        for name in [default_profile, *(bay_profiles or {}).values(), *self.phase_profiles.values()]:
            if name not in self.profiles:
                raise ProfileError(f"unknown alarm profile {name!r}; known: {', '.join(self.profiles)}")
        n, v = len(self.bays), len(VITAL_KEYS)
        self._col = {k: i for i, k in enumerate(VITAL_KEYS)}
        self._values = np.full((n, v), np.nan)  # the value each bay's vital has now (NaN = none)
        self._read_at = np.full((n, v), np.nan)  # when that vital's last reading arrived
        self._stale_after = np.full((n, v), np.inf)
        self._expire_at = np.full((n, v), np.inf)  # the held value stops counting then (a technical condition)
        self._stale = np.zeros((n, v), dtype=np.bool_)  # NOT CURRENT is active
        self._explained: dict[tuple[int, int], set[str]] = {}  # no value because of these technical alarms
        self._device_ids: dict[str, int] = {}
        self._device_names: list[str] = []
        self._watched_of = np.zeros(0, dtype=np.intp)  # device index -> its WatchedDevice index, or -1
        self._source = np.full((n, v), -1, dtype=np.intp)  # device (index) of the current value; -1: none
        # readings (or NaN: "no value") received since the last tick; the latest per bay and vital wins
        self._pend = np.zeros((n, v), dtype=np.bool_)
        self._pend_value = np.full((n, v), np.nan)
        self._pend_time = np.full((n, v), np.nan)
        self._pend_device = np.full((n, v), -1, dtype=np.intp)
        self._baselines = np.full((n, v), np.nan)
        self._baseline_set = np.zeros((n, v), dtype=np.bool_)  # by a user, not learnt
        self._baseline_window = np.full(n, 300.0)
        self._learn_from = np.full((n, v), np.nan)  # when learning began (first reading); NaN: not begun
        self._learn_n = np.zeros((n, v), dtype=np.intp)
        self._learn_samples = np.full((n, v, BASELINE_SAMPLES), np.nan)
        self._profile_name = {b: (bay_profiles or {}).get(b, default_profile) for b in self.bays}
        self._overrides: dict[str, dict[str, dict[str, Any]]] = {b: {} for b in self.bays}
        self._effective: dict[str, Profile] = {}
        self._now = t0
        self._hold = float(hold)
        self.conditions = ConditionSet(n, self._col, t0=t0 or 0.0)
        self.life = Lifecycle(lifecycle)
        self._devices = list(devices)
        self._device_index = {d.device: i for i, d in enumerate(self._devices)}
        self._last_heard = np.full(len(self._devices), np.nan)
        self._silent_after = np.array([d.silent_after for d in self._devices], dtype=float)
        self._silent = np.zeros(len(self._devices), dtype=bool)
        self._started = False
        for b in self.bays:
            self._apply_profile(b, t0 or 0.0)

    # --- inputs -------------------------------------------------------------------------------------------

    def observe(self, obs: Observation) -> None:
        """Take in a reading; it counts from the next `tick` (call one soon for a prompt decision)."""
        self.heard(obs.device, obs.receive_time)
        row, col = self._row.get(obs.bay), self._col.get(obs.vital)
        if row is None or col is None:
            return
        if math.isnan(obs.value):  # a device's NaN is its "no value": missing, never the old value held on
            self.missing(obs.bay, obs.vital, obs.device)
            return
        self._pend[row, col] = True
        self._pend_value[row, col] = obs.value
        self._pend_time[row, col] = obs.receive_time
        self._pend_device[row, col] = self._device_id(obs.device)

    def observe_block(self, values: np.ndarray[Any, np.dtype[np.float64]], time: float,
                      device: str | None = None) -> None:
        """Take in many readings at once: `values` is bays x VITAL_KEYS (NaN = no reading in this block), all
        received at `time` (e.g. a gateway's batch, a replayed row, a benchmark)."""
        v = np.asarray(values, dtype=np.float64)
        if v.shape != self._values.shape:
            raise ValueError(f"values must have shape {self._values.shape}, got {v.shape}")
        got = ~np.isnan(v)
        self._pend |= got
        self._pend_value[got] = v[got]
        self._pend_time[got] = time
        self._pend_device[got] = -1 if device is None else self._device_id(device)

    def missing(self, bay: str, vital: str, device: str | None = None) -> None:
        """The bay's vital has no value from now (e.g. an empty trace cell); from `device`'s, if given."""
        row, col = self._row.get(bay), self._col.get(vital)
        if row is None or col is None:
            return
        if device is None or self._current_source(row, col) == self._device_ids.get(device, -2):
            self._set_missing(row, col)

    def _device_id(self, device: str) -> int:
        i = self._device_ids.get(device)
        if i is None:
            i = self._device_ids[device] = len(self._device_names)
            self._device_names.append(device)
            self._watched_of = np.append(self._watched_of, self._device_index.get(device, -1))
        return i

    def _current_source(self, row: int, col: int) -> int:
        """The device of the value the bay's vital will have after the pending readings: -1 for none."""
        return int(self._pend_device[row, col] if self._pend[row, col] else self._source[row, col])

    def _set_missing(self, row: int, col: int) -> None:
        self._pend[row, col] = True
        self._pend_value[row, col] = np.nan
        self._pend_time[row, col] = np.nan
        self._pend_device[row, col] = -1

    def technical(self, status: TechnicalStatus) -> list[AlarmEvent]:
        """A device's technical condition started or ended: a technical alarm, at once."""
        alarm_id = f"{status.condition.value}:{status.device}" + (f":{status.vital}" if status.vital else "")
        if status.active and status.condition in INVALIDATING:
            # a low-priority condition does not stand in for NOT CURRENT (medium) while the value is missing
            explains = TECHNICAL_PRIORITY[status.condition] != "low"
            self._invalidate(status.bay, status.device, status.vital, alarm_id if explains else None, status.time)
        if not status.active:
            for key in [k for k, ids in self._explained.items() if alarm_id in ids]:
                self._explained[key].discard(alarm_id)
                if not self._explained[key]:
                    del self._explained[key]
            return self.life.condition_ended(status.bay, alarm_id, status.time)
        what = f"{VITALS[status.vital].short} " if status.vital in VITALS else ""
        text = f"{what}{TECHNICAL_TEXT[status.condition]} ({status.device})"
        if status.detail:
            text += f": {status.detail}"
        return self.life.condition_started(
            AlarmEvent(status.bay, alarm_id, "start", "technical", TECHNICAL_PRIORITY[status.condition],
                       status.time, text, status.vital, None, None, status.device))

    def heard(self, device: str, time: float) -> None:
        """The device sent something (a value, a status, a no-value marker) at `time`."""
        i = self._device_index.get(device)
        if i is not None:
            self._last_heard[i] = time

    def next_silence(self) -> float:
        """When the next device heard from (and not yet silent) becomes silent unless heard again: the time a tick
        is due to raise its NO DATA on time (inf: none is due)."""
        due = self._last_heard + self._silent_after
        due = due[~self._silent & ~np.isnan(due)]
        return float(due.min()) if due.size else math.inf

    def external(self, event: AlarmEvent) -> list[AlarmEvent]:
        """Start (or end) an alarm decided outside the rules, e.g. a failure of bedside itself, so that it is part of
        the active set that every snapshot shows; a start already active is not repeated."""
        if event.phase == "start":
            return self.life.condition_started(event)
        return self.life.condition_ended(event.bay, event.id, event.time, event.value)

    # --- the tick -----------------------------------------------------------------------------------------

    def tick(self, now: float) -> list[AlarmEvent]:
        """Decide everything due by `now`: conditions, staleness, silent devices, lifecycle timers."""
        if self._now is None:
            self._now = now
            self._reset_clocks(now)
        start = self._now
        self._now = max(self._now, now)
        now = self._now
        # 1. the elapsed time, with the values that were current; a held value that stopped being current meanwhile
        #    (stale, its sensor off, its device silent) counts only until then
        elapsed: list[_Edge] = []
        t = start
        for until, expired in self._expiries(start, now):
            elapsed += self._edges(self.conditions.step(self._values, until - t), until)
            self._values[expired] = np.nan  # (its source stays: a technical alarm of that device may explain it)
            t = until
        elapsed += self._edges(self.conditions.step(self._values, now - t), now)
        self._expire_at.fill(np.inf)
        # 2. the readings received since, applied at once
        fresh = self._take_pending(now)
        stale = self._staleness(now)
        arrived = self._edges(self.conditions.step(self._values, 0.0, fresh), now)
        # a condition that ended over the elapsed time and starts again on the new values did not end
        again = {(e.alarm_id, e.row) for e in arrived if e.start is not None} & \
            {(e.alarm_id, e.row) for e in elapsed if e.start is None}
        events: list[AlarmEvent] = []
        for e in elapsed + arrived:
            if (e.alarm_id, e.row) in again:
                continue
            if e.start is not None:
                events += self.life.condition_started(e.start)
            else:
                events += self.life.condition_ended(self.bays[e.row], e.alarm_id, e.time, e.value)
        events += stale
        self._learn_baselines(fresh, now)
        events += self._silence(now)
        events += self.life.tick(now)
        return events

    def _expiries(self, start: float, now: float) -> list[tuple[float, np.ndarray[Any, np.dtype[np.bool_]]]]:
        """When, within (start, now], held values stop being current, and which: [(time, mask)] in time order."""
        with np.errstate(invalid="ignore"):
            until = np.fmin(self._read_at + self._stale_after, self._expire_at)  # NaN read_at: expire_at only
        if self._devices and self._device_names:
            silent_at = np.full(len(self._device_names), np.inf)
            watched = self._watched_of >= 0
            heard = self._last_heard[self._watched_of[watched]] + self._silent_after[self._watched_of[watched]]
            silent_at[watched] = np.where(np.isnan(heard), np.inf, heard)
            until = np.fmin(until, np.where(self._source >= 0, silent_at[np.maximum(self._source, 0)], np.inf))
        due = ~np.isnan(self._values) & (until <= now)
        if not due.any():
            return []
        at = np.clip(until, start, now)
        return [(float(t), due & (at == t)) for t in np.unique(at[due])]

    def _edges(self, fired: list[Fired], at: float) -> list[_Edge]:
        """The starts and ends of one step, with the values they were decided on."""
        out: list[_Edge] = []
        for f in fired:
            s = f.slot
            for row in f.ended:
                value = float(self._values[row, s.column])
                out.append(_Edge(s.alarm_id, int(row), at, None if math.isnan(value) else value, None))
            for row in f.started:
                r = int(row)
                out.append(_Edge(s.alarm_id, r, at, None, self._start_event(s, r, float(f.crossing_time[r]))))
        return out

    def _reset_clocks(self, now: float) -> None:
        for s in self.conditions:
            s.evaluator.time = now

    def _take_pending(self, now: float) -> np.ndarray[Any, np.dtype[np.bool_]]:
        """Apply the readings (and "no value"s) received since the last tick; returns where a reading is new."""
        got = self._pend
        if not got.any():
            return np.zeros(self._values.shape, dtype=np.bool_)
        self._values[got] = self._pend_value[got]
        fresh: np.ndarray[Any, np.dtype[np.bool_]] = got & ~np.isnan(self._pend_value)
        self._source[got] = np.where(fresh, self._pend_device, -1)[got]
        self._read_at[fresh] = self._pend_time[fresh]
        if self._explained:
            for key in [k for k in self._explained if fresh[k]]:
                del self._explained[key]
        self._pend = np.zeros(self._values.shape, dtype=np.bool_)
        return fresh

    def _staleness(self, now: float) -> list[AlarmEvent]:
        with np.errstate(invalid="ignore"):
            stale = (now - self._read_at) >= self._stale_after  # False where never read (NaN)
        self._values[stale] = np.nan
        for row, col in self._explained:  # a technical alarm already says why there is no value
            stale[row, col] = False
        events: list[AlarmEvent] = []
        for row, col in np.argwhere(stale != self._stale):
            bay, vital = self.bays[int(row)], VITAL_KEYS[int(col)]
            alarm_id = f"not_current:{vital}"
            if stale[row, col]:
                after = self._stale_after[row, col]
                since = min(now, float(self._read_at[row, col] + after))
                events += self.life.condition_started(AlarmEvent(
                    bay, alarm_id, "start", "technical", NOT_CURRENT_PRIORITY, since,
                    f"{VITALS[vital].short} NOT CURRENT: no reading for {after:g} s", vital))
            else:
                events += self.life.condition_ended(bay, alarm_id, now)
        self._stale = stale
        return events

    def _start_event(self, s: Slot, row: int, at: float) -> AlarmEvent:
        value = float(self._values[row, s.column])
        limit = threshold(s, row)
        short = VITALS[s.vital].short
        if s.kind in ("low", "satseconds"):
            text = f"{short} LOW {_fmt(value)} < {_fmt(limit or 0)}"
            ev = s.evaluator
            if isinstance(ev, SatSeconds):
                reason = str(ev.reason[row])
                text += {"floor": " (desat)", "index": f" (SatSeconds {ev.setting[row]:g})",
                         "crossings": " (3 dips in 60 s)"}.get(reason, "")
            elif isinstance(ev, DelayedLimit) and value <= float(ev.low_immediate[s.offset + row]):
                text += " (desat)"
        elif s.kind == "high":
            text = f"{short} HIGH {_fmt(value)} > {_fmt(limit or 0)}"
        elif s.kind == "above_baseline":
            base = float(self._baselines[row, s.column])
            text = f"{short} {_fmt(value)} > BASELINE {_fmt(base)} + {_fmt((limit or 0) - base)}"
        elif s.kind == "below_baseline":
            base = float(self._baselines[row, s.column])
            text = f"{short} {_fmt(value)} < BASELINE {_fmt(base)} - {_fmt(base - (limit or 0))}"
        else:
            assert isinstance(s.evaluator, RateOfRise)
            low = float(s.evaluator.rose_from[row])
            window = float(s.evaluator.window[row])
            text = f"{short} RISE +{_fmt(value - low)} in {window / 60:g} min (from {_fmt(low)})"
        priority = s.priority[row]
        assert priority is not None, "a condition fired on a bay that does not have it"
        source = int(self._source[row, s.column])
        return AlarmEvent(self.bays[row], s.alarm_id, "start", "physiological", priority, at, text, s.vital,
                          value, limit, self._device_names[source] if source >= 0 else None)

    def _silence(self, now: float) -> list[AlarmEvent]:
        never = np.isnan(self._last_heard)
        self._last_heard[never] = now  # a device counts as silent from when the engine first looked
        silent = (now - self._last_heard) >= self._silent_after
        changed = np.flatnonzero(silent != self._silent)
        self._silent = silent
        events: list[AlarmEvent] = []
        for i in changed:
            d = self._devices[int(i)]
            events += self.technical(
                TechnicalStatus(d.bay, d.device, Condition.NO_DATA, bool(silent[i]), now,
                                detail=f"nothing received for {d.silent_after:g} s"))
        return events

    def _invalidate(self, bay: str, device: str, vital: str | None, alarm_id: str | None, at: float) -> None:
        """The device's values (of `vital`, or all) are no longer the patient's: the vitals it supplied have no
        value from now, explained by technical alarm `alarm_id` (so NOT CURRENT does not repeat it)."""
        row = self._row.get(bay)
        if row is None:
            return
        cols = [self._col[vital]] if vital in self._col else range(len(VITAL_KEYS))
        dev = self._device_ids.get(device, -2)
        for col in cols:
            source = self._current_source(row, col)
            if source == dev or (vital is not None and source == -1):
                held = int(self._source[row, col])
                if held == dev or held == -1:  # the value held now stops counting at `at`, not at the next tick
                    self._expire_at[row, col] = min(self._expire_at[row, col], at)
                self._set_missing(row, col)
                if alarm_id is not None:
                    self._explained.setdefault((row, col), set()).add(alarm_id)

    # --- baselines ----------------------------------------------------------------------------------------

    def _learn_baselines(self, fresh: np.ndarray[Any, np.dtype[np.bool_]], now: float) -> None:
        """A vital with no baseline set learns one: the median of up to BASELINE_SAMPLES readings spread over the
        profile's baseline window from its first reading."""
        learning = ~self._baseline_set & np.isnan(self._baselines)
        window = self._baseline_window[:, None]
        begin = fresh & learning & np.isnan(self._learn_from)
        self._learn_from[begin] = now
        with np.errstate(invalid="ignore"):
            elapsed = now - self._learn_from
            due = elapsed >= self._learn_n * window / BASELINE_SAMPLES - 1e-9
        take = fresh & learning & (self._learn_n < BASELINE_SAMPLES) & due
        if take.any():
            rows, cols = np.nonzero(take)
            self._learn_samples[rows, cols, self._learn_n[rows, cols]] = self._values[rows, cols]
            self._learn_n[rows, cols] += 1
        with np.errstate(invalid="ignore"):
            done = learning & (self._learn_n > 0) & (elapsed >= window)
        if not done.any():
            return
        rows, cols = np.nonzero(done)
        self._baselines[rows, cols] = np.nanmedian(self._learn_samples[rows, cols], axis=1)
        self._learn_samples[rows, cols] = np.nan
        self._learn_n[rows, cols] = 0
        for row in sorted(set(rows.tolist())):
            self._configure(self.bays[row], now)

    def set_baseline(self, bay: str, vital: str, value: float | None, now: float) -> None:
        """Set (or, with None, forget and learn again) the baseline of a bay's vital."""
        row, col = self._row[bay], self._col[vital]
        v = VITALS[vital]
        if value is not None and not (math.isfinite(value) and v.plausible_min <= value <= v.plausible_max):
            raise ValueError(f"a baseline of {vital} must be within {v.plausible_min:g}..{v.plausible_max:g}, "
                             f"not {value!r}")
        self._learn_from[row, col] = np.nan
        self._learn_n[row, col] = 0
        self._learn_samples[row, col] = np.nan
        self._baselines[row, col] = np.nan if value is None else value
        self._baseline_set[row, col] = value is not None
        self._configure(bay, now)

    def baselines(self, bay: str) -> dict[str, float]:
        row = self._row[bay]
        return {k: float(self._baselines[row, c]) for k, c in self._col.items()
                if not math.isnan(self._baselines[row, c])}

    # --- profiles -----------------------------------------------------------------------------------------

    def profile_name(self, bay: str) -> str:
        return self._profile_name[bay]

    def overrides(self, bay: str) -> dict[str, dict[str, Any]]:
        return {k: dict(v) for k, v in self._overrides[bay].items()}

    def effective_profile(self, bay: str) -> Profile:
        return self._effective[bay]

    def set_profile(self, bay: str, name: str, now: float) -> list[AlarmEvent]:
        """Switch a bay to another profile (its patient overrides stay); ends alarms whose limit is gone."""
        if name not in self.profiles:
            raise ProfileError(f"unknown alarm profile {name!r}; known: {', '.join(self.profiles)}")
        self._row[bay]
        old = self._profile_name[bay]
        self._profile_name[bay] = name
        try:
            return self._apply_profile(bay, now)
        except ProfileError:
            self._profile_name[bay] = old
            raise

    def set_overrides(self, bay: str, overrides: Mapping[str, Mapping[str, Any]], now: float) -> list[AlarmEvent]:
        """Replace the patient's own changes to the bay's profile (e.g. {"spo2": {"low": 88}}); validated."""
        self._row[bay]
        for vital, changes in overrides.items():
            if not isinstance(changes, Mapping):
                raise ProfileError(f"overrides: {vital}: give a table of fields to change, not {changes!r}")
        old = self._overrides[bay]
        self._overrides[bay] = {k: dict(v) for k, v in overrides.items()}
        try:
            return self._apply_profile(bay, now)
        except ProfileError:
            self._overrides[bay] = old
            raise

    def phase_changed(self, bay: str, phase: str, now: float) -> list[AlarmEvent]:
        """A session phase began: switch to the profile configured for it (none configured: no change)."""
        name = self.phase_profiles.get(phase)
        if name is None or name == self._profile_name[bay]:
            return []
        return self.set_profile(bay, name, now)

    def _apply_profile(self, bay: str, now: float) -> list[AlarmEvent]:
        base = self.profiles[self._profile_name[bay]]
        profile = base.with_overrides(self._overrides[bay]) if self._overrides[bay] else base
        self._effective[bay] = profile
        row = self._row[bay]
        watched = np.array([k in profile.vitals for k in VITAL_KEYS])
        stale_after = np.array([max(profile.stale_after(k), self._hold) for k in VITAL_KEYS])
        self._stale_after[row] = np.where(watched, stale_after, np.inf)
        self._baseline_window[row] = profile.baseline_window
        return self._configure(bay, now)

    def _configure(self, bay: str, now: float) -> list[AlarmEvent]:
        row = self._row[bay]
        removed = self.conditions.configure(row, self._effective[bay], self.baselines(bay),
                                            self._now if self._now is not None else now)
        events: list[AlarmEvent] = []
        for s in removed:
            events += self.life.condition_ended(bay, s.alarm_id, now)
        return events

    # --- the alarm lifecycle ------------------------------------------------------------------------------

    def acknowledge(self, bay: str, alarm_id: str, by: str, now: float) -> list[AlarmEvent]:
        return self.life.acknowledge(bay, alarm_id, by, now)

    def pause_audio(self, bay: str, by: str, now: float, seconds: float | None = None) -> list[AlarmEvent]:
        self._row[bay]
        return self.life.pause_audio(bay, by, now, seconds)

    def resume_audio(self, bay: str, by: str, now: float) -> list[AlarmEvent]:
        self._row[bay]
        return self.life.resume_audio(bay, by, now)

    def active(self, bay: str | None = None) -> list[ActiveAlarm]:
        """The alarms in the active set now (of one bay, or all), oldest first."""
        return self.life.active(bay)

    def value(self, bay: str, vital: str) -> float | None:
        """The value the engine holds as current for a bay's vital (None: no current value)."""
        v = float(self._values[self._row[bay], self._col[vital]])
        return None if math.isnan(v) else v
