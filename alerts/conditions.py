"""The physiological alarm conditions of every bay as vectorised evaluators, configured per bay from its profile.

One `Slot` is one alarm condition kind of one vital over all N bays (e.g. `nibp_sys_high`), backed by an
evaluator whose thresholds are per-bay arrays: each bay's row is set from that bay's effective profile (NaN where
the profile has no such limit), so bays on different profiles share one evaluator and one numpy step. Every
limit-type slot (low, high, above/below baseline) lives side by side in one DelayedLimit "bank" of N x slots
elements (slot-major: a slot's bays are `offset .. offset + N`), so a tick steps all of them with one set of numpy
operations instead of one per slot.

Alarm ids (stable on the wire): `<vital>_low`, `<vital>_high` (absolute limits), `<vital>_above_baseline`,
`<vital>_below_baseline` (relative to the patient's baseline), `<vital>_rise` (fast rise). `spo2_low` is backed by
two evaluators: SatSeconds when the profile's `satseconds` is set, else a delayed limit with the undelayed desat
floor; a bay uses exactly one of them, and an active alarm is carried over when a profile change moves it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from alerts.evaluators import BoolArray, DelayedLimit, FloatArray, RateOfRise, SatSeconds
from alerts.profile import Profile, VitalAlarms
from monitor.model import Priority

Kind = Literal["low", "high", "above_baseline", "below_baseline", "rise", "satseconds"]
Evaluator = DelayedLimit | SatSeconds | RateOfRise
NAN = math.nan
RISE_SLOTS = 32  # fresh readings kept per bay for the rise condition (NIBP: 2.5 h at 5-min cycles)


@dataclass(slots=True)
class Slot:
    """One alarm condition kind of one vital, over all bays."""

    vital: str
    column: int  # the vital's column in the engine's value matrix
    kind: Kind
    evaluator: Evaluator
    priority: list[Priority | None]  # per bay; None where the bay has no such condition
    in_use: BoolArray  # per bay: this slot is the one responsible for its alarm id
    offset: int = 0  # where this slot's bays start in its evaluator (the bank holds many slots)

    @property
    def alarm_id(self) -> str:
        return f"{self.vital}_low" if self.kind == "satseconds" else f"{self.vital}_{self.kind}"


@dataclass(slots=True)
class Fired:
    """Bays whose condition in `slot` started or ended in one step, with the crossing times of the starts."""

    slot: Slot
    started: NDArray[np.intp]
    ended: NDArray[np.intp]
    crossing_time: FloatArray


def _kinds(vital: str) -> tuple[Kind, ...]:
    base: tuple[Kind, ...] = ("low", "high", "above_baseline", "below_baseline", "rise")
    return (*base, "satseconds") if vital == "spo2" else base


@dataclass
class ConditionSet:
    """Every physiological condition slot the profiles in use need, for `n` bays; slots are added on first use."""

    n: int
    columns: Mapping[str, int]
    t0: float = 0.0
    slots: dict[tuple[str, Kind], Slot] = field(default_factory=dict)
    bank: DelayedLimit | None = None  # every limit-type slot, side by side
    bank_slots: list[Slot] = field(default_factory=list)
    bank_columns: NDArray[np.intp] = field(default_factory=lambda: np.zeros(0, dtype=np.intp))

    def __iter__(self) -> Iterator[Slot]:
        return iter(list(self.slots.values()))

    def _slot(self, vital: str, kind: Kind, now: float) -> Slot:
        key = (vital, kind)
        if key not in self.slots:
            ev: Evaluator
            if kind == "satseconds":
                ev = SatSeconds(self.n, low=NAN, setting=NAN, floor_offset=np.inf, t0=now)
            elif kind == "rise":
                ev = RateOfRise(self.n, rise=NAN, window=600.0, slots=RISE_SLOTS, t0=now)
            else:
                ev = DelayedLimit(0, low=NAN, high=NAN, delay=0.0, clear_hysteresis=0.0)  # replaced by the bank
            offset = 0
            if kind in ("low", "high", "above_baseline", "below_baseline"):
                if self.bank is None:
                    self.bank = DelayedLimit(self.n, low=NAN, high=NAN, delay=0.0, clear_hysteresis=0.0, t0=now)
                else:
                    self.bank.extend(self.n)
                ev, offset = self.bank, len(self.bank_slots) * self.n
            slot = Slot(vital, self.columns[vital], kind, ev, [None] * self.n,
                        np.zeros(self.n, dtype=np.bool_), offset)
            if ev is self.bank:
                self.bank_slots.append(slot)
                self.bank_columns = np.append(self.bank_columns, slot.column)
            self.slots[key] = slot
        return self.slots[key]

    def needed(self, profile: Profile) -> list[tuple[str, Kind]]:
        out: list[tuple[str, Kind]] = []
        for vital, a in profile.vitals.items():
            out += [(vital, k) for k in _kinds(vital) if _wants(a, k)]
        return out

    def configure(self, row: int, profile: Profile, baselines: Mapping[str, float], now: float) -> list[Slot]:
        """Set bay `row`'s parameters from `profile` (relative limits from `baselines`; NaN = none yet).

        Returns the slots whose alarm was active on this bay and now has no condition behind it (the profile no
        longer has that limit): the caller ends those alarms. An active alarm whose evaluator changes (SpO2 low:
        SatSeconds <-> delayed limit) is carried over to the new evaluator.
        """
        for key in self.needed(profile):
            self._slot(*key, now)
        was_active = {s.alarm_id: s for s in self if s.evaluator.is_active(s.offset + row) and s.in_use[row]}
        for s in self:
            a = profile.vitals.get(s.vital)
            wanted = a is not None and _wants(a, s.kind)
            s.in_use[row] = wanted
            s.priority[row] = _priority(a, s.kind) if a is not None and wanted else None
            _set_params(s, row, a if wanted else None, baselines.get(s.vital, NAN))
        removed: list[Slot] = []
        for alarm_id, old in was_active.items():
            new = next((s for s in self if s.alarm_id == alarm_id and s.in_use[row]), None)
            if new is None:
                old.evaluator.reset([old.offset + row])
                removed.append(old)
            elif new is not old:
                old.evaluator.reset([old.offset + row])
                new.evaluator.force_active([new.offset + row])
        for s in self:  # a slot no longer in use keeps no state for this bay
            if not s.in_use[row] and s.alarm_id not in was_active:
                s.evaluator.reset([s.offset + row])
        return removed

    def step(self, values: FloatArray, dt: float, fresh: BoolArray | None = None) -> list[Fired]:
        """Step every slot over `dt` with `values` (N x vitals; NaN = no current value)."""
        out: list[Fired] = []
        if self.bank is not None:
            started, ended = self.bank.step(values[:, self.bank_columns].T.ravel(), dt)
            fired = np.flatnonzero(started | ended)
            if fired.size:
                crossing = self.bank.crossing_time
                for j in np.unique(fired // self.n):
                    s, lo = self.bank_slots[int(j)], int(j) * self.n
                    out.append(Fired(s, np.flatnonzero(started[lo:lo + self.n]),
                                     np.flatnonzero(ended[lo:lo + self.n]), crossing[lo:lo + self.n]))
        for s in self:
            if s.evaluator is self.bank:
                continue
            col = values[:, s.column]
            if isinstance(s.evaluator, RateOfRise):
                started, ended = s.evaluator.step(col, dt, None if fresh is None else fresh[:, s.column])
            else:
                started, ended = s.evaluator.step(col, dt)
            if started.any() or ended.any():
                out.append(Fired(s, np.flatnonzero(started), np.flatnonzero(ended), s.evaluator.crossing_time))
        return out


def _wants(a: VitalAlarms, kind: Kind) -> bool:
    if kind == "low":
        return a.low is not None and not a.satseconds
    if kind == "satseconds":
        return a.low is not None and bool(a.satseconds)
    if kind == "high":
        return a.high is not None
    if kind == "above_baseline":
        return a.above_baseline is not None
    if kind == "below_baseline":
        return a.below_baseline is not None
    return a.rise is not None


def _priority(a: VitalAlarms, kind: Kind) -> Priority:
    if kind in ("low", "satseconds"):
        return a.low_prio
    if kind == "high":
        return a.high_prio
    if kind == "rise":
        return a.rise_priority
    return a.baseline_priority


def _set_params(s: Slot, bay: int, a: VitalAlarms | None, baseline: float) -> None:
    ev, row = s.evaluator, s.offset + bay
    if isinstance(ev, SatSeconds):
        ev.low[row] = NAN if a is None or a.low is None else a.low
        ev.setting[row] = NAN if a is None or not a.satseconds else float(a.satseconds)
        ev.floor_offset[row] = np.inf if a is None or a.desat_floor is None else a.desat_floor
        return
    if isinstance(ev, RateOfRise):
        ev.rise[row] = NAN if a is None or a.rise is None else a.rise
        ev.window[row] = 600.0 if a is None else a.rise_window
        ev.clear_hysteresis[row] = 0.0 if a is None else a.clear_hysteresis
        return
    ev.delay[row] = 0.0 if a is None else a.delay
    ev.clear_hysteresis[row] = 0.0 if a is None else a.clear_hysteresis
    ev.clear_delay[row] = 0.0 if a is None else a.clear_delay
    ev.low[row] = ev.high[row] = ev.low_immediate[row] = NAN
    if a is None:
        return
    if s.kind == "low" and a.low is not None:
        ev.low[row] = a.low
        if a.desat_floor is not None:
            ev.low_immediate[row] = a.low - a.desat_floor
    elif s.kind == "high" and a.high is not None:
        ev.high[row] = a.high
    elif s.kind == "above_baseline" and a.above_baseline is not None:
        ev.high[row] = baseline + a.above_baseline
    elif s.kind == "below_baseline" and a.below_baseline is not None:
        ev.low[row] = baseline - a.below_baseline


def threshold(s: Slot, bay: int) -> float | None:
    """The limit a bay's condition compares with now (None where it has none, or no baseline yet)."""
    ev, row = s.evaluator, s.offset + bay
    if isinstance(ev, RateOfRise):
        value = float(ev.rose_from[row]) + float(ev.rise[row])
    elif isinstance(ev, SatSeconds):
        value = float(ev.low[row])
    else:
        value = float(ev.low[row] if s.kind in ("low", "below_baseline") else ev.high[row])
    return None if math.isnan(value) else value
