"""Statistics of one recorded infusion session, for the session review page, the printed report and the exports.

`session_statistics(trace)` is a pure function of a `SessionTrace` (no clock, no I/O) and returns a JSON-ready dict:

- ``vitals``: per vital its unit, count, min, max and median (numpy) over the session's readings. Missing is
  missing: a vital without readings has count 0 and None for the rest, never 0.
- ``time_outside_limits_s``: per vital the seconds during which at least one physiological alarm of that vital was
  active (overlapping alarms of one vital count once). An alarm runs from its ``start`` to its ``end``, or to its
  ``latched`` event when it latched (the condition, i.e. the value outside its limit, ended then; the alarm only
  stayed on screen until someone acknowledged it); one without an end runs to the end of the trace; one whose
  start lies before the trace began runs from the trace's start. Everything is clipped to [start, end]. None for a
  vital with neither readings nor alarms.
- ``alarms``: counts of ``start`` events by priority, physiological and technical separately and in total.
- ``peaks``: the highest systolic NIBP and heart rate (ECG ``hr``, else the oximeter's ``pr``) during the infusion
  (from ``infusion_started`` to ``infusion_stopped``, else ``recovery_started``, else the end of the trace), with
  its time and the change from the session baseline (absolute and %; None without a baseline).
- ``back_to_baseline``: seconds from the infusion stop until systolic BP and heart rate are both within 20 % of
  their baseline and stay so to the end of the trace (judged on the readings after the stop: the time of the
  first reading after the last one outside; None when there is no baseline, no reading after the stop, or the last
  reading is still outside).
- ``infusion``: start, stop, duration, time running (rate > 0), dose given (``Session.dose_given_mg``), planned
  dose, the number of rate changes and pauses.

`alarm_periods(trace)` pairs the alarm events into periods (also used by monitor/exports/report.py).

Middle floor: standard library, numpy and monitor's own modules only.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from monitor.infusion import BASELINE_VITALS, Session
from monitor.model import AlarmEvent, AlarmKind, Observation, Priority
from monitor.store import SessionTrace
from monitor.vitals import VITALS

PRIORITIES: tuple[Priority, ...] = ("high", "medium", "low")
KINDS: tuple[AlarmKind, ...] = ("physiological", "technical")
BASELINE_FRACTION = 0.20  # "within 20 % of baseline" (monitor.infusion.SessionSettings.stable_fraction)
HEART_RATE_VITALS = ("hr", "pr")  # ECG heart rate first, the oximeter's pulse rate when there is no ECG


@dataclass(frozen=True, slots=True)
class AlarmPeriod:
    """One alarm from its start to its end (clipped to the trace), with who acknowledged it.

    `condition_end` is when the alarm condition ended (the `latched` event of a latching alarm, else `end`);
    `end` is when the alarm itself ended (None: still active at the end of the trace)."""

    id: str
    kind: AlarmKind
    priority: Priority
    vital: str | None
    message: str
    start: float
    condition_end: float | None
    end: float | None
    started_before: bool  # its start event lies before the trace (only its end was recorded)
    acknowledged_by: tuple[str, ...]
    acknowledged_at: float | None


def alarm_periods(trace: SessionTrace) -> list[AlarmPeriod]:
    """Every alarm of the trace as a period, in start order: start/end events paired by alarm id."""
    open_: dict[str, dict[str, Any]] = {}
    out: list[AlarmPeriod] = []

    def close(alarm_id: str, end: float | None) -> None:
        p = open_.pop(alarm_id)
        cond = p["condition_end"] if p["condition_end"] is not None else end
        out.append(AlarmPeriod(alarm_id, p["kind"], p["priority"], p["vital"], p["message"], p["start"], cond, end,
                               p["started_before"], tuple(p["by"]), p["ack_at"]))

    def opened(e: AlarmEvent, start: float, before: bool) -> dict[str, Any]:
        return {"kind": e.kind, "priority": e.priority, "vital": e.vital or _vital_of(e.id), "message": e.message,
                "start": start, "condition_end": None, "started_before": before, "by": [], "ack_at": None}

    for e in sorted(trace.alarms, key=lambda a: a.time):
        if e.phase == "start":
            if e.id in open_:  # a start without its end: the earlier occurrence ends where this one starts
                close(e.id, e.time)
            open_[e.id] = opened(e, e.time, False)
            continue
        if e.id not in open_:  # a transition of an alarm that started before the trace began
            open_[e.id] = opened(e, trace.start, True)
        p = open_[e.id]
        if e.phase == "latched" and p["condition_end"] is None:
            p["condition_end"] = e.time
        elif e.phase == "acknowledged":
            if e.by and e.by not in p["by"]:
                p["by"].append(e.by)
            if p["ack_at"] is None:
                p["ack_at"] = e.time
        elif e.phase == "end":
            close(e.id, e.time)
    for alarm_id in list(open_):
        close(alarm_id, None)
    out.sort(key=lambda p: p.start)
    return out


def session_statistics(trace: SessionTrace, *, within: float = BASELINE_FRACTION) -> dict[str, Any]:
    """The session's statistics as a JSON-ready dict (see the module docstring for what each item means)."""
    s = trace.session
    series = _series(trace.observations, trace.start, trace.end)
    keys = [k for k in VITALS if k in series or k in BASELINE_VITALS]
    periods = alarm_periods(trace)
    outside = _time_outside_limits(periods, trace.start, trace.end)
    return {
        "session_id": s.id,
        "patient_id": s.patient_id,
        "bay": s.bay,
        "start": trace.start,
        "end": trace.end,
        "duration_s": _r(max(0.0, trace.end - trace.start)),
        "vitals": {k: _vital_stats(k, series.get(k)) for k in keys},
        "time_outside_limits_s": {
            k: (_r(outside[k]) if k in outside else 0.0) if (k in series or k in outside) else None
            for k in dict.fromkeys([*keys, *sorted(outside)])
        },
        "alarms": _alarm_counts(trace.alarms),
        "peaks": _peaks(s, series, trace.end),
        "back_to_baseline": _back_to_baseline(s, series, within),
        "infusion": _infusion(s, trace.end),
    }


# --- pieces -------------------------------------------------------------------------------------------------

Series = tuple[np.ndarray[Any, np.dtype[np.float64]], np.ndarray[Any, np.dtype[np.float64]]]  # times, values


def _series(observations: Iterable[Observation], start: float, end: float) -> dict[str, Series]:
    """Each vital's finite readings within [start, end], in receive-time order."""
    raw: dict[str, list[tuple[float, float]]] = {}
    for o in observations:
        if start <= o.receive_time <= end and math.isfinite(o.value):
            raw.setdefault(o.vital, []).append((o.receive_time, float(o.value)))
    out: dict[str, Series] = {}
    for k, pairs in raw.items():
        pairs.sort(key=lambda p: p[0])
        arr = np.asarray(pairs, dtype=np.float64)
        out[k] = (arr[:, 0], arr[:, 1])
    return out


def _vital_stats(key: str, s: Series | None) -> dict[str, Any]:
    unit = VITALS[key].unit if key in VITALS else None
    if s is None or s[1].size == 0:
        return {"unit": unit, "count": 0, "min": None, "max": None, "median": None}
    v = s[1]
    return {"unit": unit, "count": int(v.size), "min": _r(float(np.min(v))), "max": _r(float(np.max(v))),
            "median": _r(float(np.median(v)))}


def _vital_of(alarm_id: str) -> str | None:
    """The vital an alarm id names (`<vital>_<kind>`), for events recorded without one."""
    return max((k for k in VITALS if alarm_id.startswith(k + "_")), key=len, default=None)


def _time_outside_limits(periods: Sequence[AlarmPeriod], start: float, end: float) -> dict[str, float]:
    by_vital: dict[str, list[tuple[float, float]]] = {}
    for p in periods:
        if p.kind != "physiological" or p.vital is None:
            continue
        stop = p.condition_end if p.condition_end is not None else end
        lo, hi = max(p.start, start), min(stop, end)
        by_vital.setdefault(p.vital, [])
        if hi > lo:
            by_vital[p.vital].append((lo, hi))
    return {k: _union_length(v) for k, v in by_vital.items()}


def _union_length(intervals: Iterable[tuple[float, float]]) -> float:
    total, reach = 0.0, -math.inf
    for lo, hi in sorted(intervals):
        if hi > reach:
            total += hi - max(lo, reach)
            reach = hi
    return total


def _alarm_counts(alarms: Iterable[AlarmEvent]) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {k: dict.fromkeys([*PRIORITIES, "total"], 0) for k in [*KINDS, "total"]}
    for e in alarms:
        if e.phase != "start":
            continue
        for k in (e.kind, "total"):
            counts[k][e.priority] += 1
            counts[k]["total"] += 1
    return counts


def _baseline_of(s: Session, vital: str) -> float | None:
    """The baseline of `vital`; for a heart rate the other rate's baseline when it has none (same quantity)."""
    base = s.baseline.get(vital)
    if base is None and vital in HEART_RATE_VITALS:
        other = next(k for k in HEART_RATE_VITALS if k != vital)
        base = s.baseline.get(other)
    return base if base is not None and math.isfinite(base) and base > 0 else None


def _peak(s: Session, vital: str, series: Series | None, lo: float, hi: float) -> dict[str, Any]:
    base = _baseline_of(s, vital)
    out: dict[str, Any] = {"vital": vital, "value": None, "time": None, "baseline": base, "change": None,
                           "change_pct": None}
    if series is None:
        return out
    t, v = series
    mask = (t >= lo) & (t <= hi)
    if not mask.any():
        return out
    i = int(np.argmax(np.where(mask, v, -np.inf)))  # the first reading of the highest value
    peak = float(v[i])
    out.update(value=_r(peak), time=float(t[i]))
    if base is not None:
        out.update(change=_r(peak - base), change_pct=round(100.0 * (peak - base) / base, 1))
    return out


def _heart_rate_vital(series: dict[str, Series], lo: float, hi: float) -> str:
    for k in HEART_RATE_VITALS:
        s = series.get(k)
        if s is not None and bool(((s[0] >= lo) & (s[0] <= hi)).any()):
            return k
    return HEART_RATE_VITALS[0]


def _infusion_window(s: Session, end: float) -> tuple[float, float] | None:
    if s.infusion_started is None:
        return None
    stop = next((x for x in (s.infusion_stopped, s.recovery_started) if x is not None), end)
    return s.infusion_started, stop


def _peaks(s: Session, series: dict[str, Series], end: float) -> dict[str, Any]:
    window = _infusion_window(s, end)
    if window is None:
        return {"window": None, "sbp": None, "heart_rate": None}
    lo, hi = window
    hr = _heart_rate_vital(series, lo, hi)
    return {"window": [lo, hi], "sbp": _peak(s, "nibp_sys", series.get("nibp_sys"), lo, hi),
            "heart_rate": _peak(s, hr, series.get(hr), lo, hi)}


def _settled_at(series: Series | None, since: float, base: float | None, within: float) -> float | None:
    """When a vital is within `within` of `base` from then on (over its readings from `since`), or None."""
    if series is None or base is None:
        return None
    t, v = series
    after = t >= since
    t, v = t[after], v[after]
    if t.size == 0:
        return None
    outside = np.abs(v - base) > within * base
    if bool(outside[-1]):
        return None
    idx = np.flatnonzero(outside)
    return float(t[0] if idx.size == 0 else t[int(idx[-1]) + 1])


def _back_to_baseline(s: Session, series: dict[str, Series], within: float) -> dict[str, Any]:
    stop = s.infusion_stopped
    out: dict[str, Any] = {"fraction": within, "since": stop, "seconds": None, "by_vital": {}}
    if stop is None:
        return out
    hr = next((k for k in HEART_RATE_VITALS if k in series and bool((series[k][0] >= stop).any())),
              HEART_RATE_VITALS[0])
    times: dict[str, float | None] = {}
    for k in ("nibp_sys", hr):
        at = _settled_at(series.get(k), stop, _baseline_of(s, k), within)
        times[k] = at
        out["by_vital"][k] = None if at is None else _r(at - stop)
    if all(x is not None for x in times.values()):
        out["seconds"] = _r(max(x for x in times.values() if x is not None) - stop)
    return out


def _infusion(s: Session, end: float) -> dict[str, Any]:
    window = _infusion_window(s, end)
    running = 0.0
    for i, a in enumerate(s.doses):  # each dose event lasts until the next one (the last until `end`)
        until = s.doses[i + 1].time if i + 1 < len(s.doses) else end
        if a.rate_mg_per_h > 0:
            running += max(0.0, until - a.time)
    return {
        "started": s.infusion_started,
        "stopped": s.infusion_stopped,
        "duration_s": None if window is None else _r(max(0.0, window[1] - window[0])),
        "running_s": _r(running),
        "dose_given_mg": s.dose_given_mg(end),
        "planned_mg": s.total_mg,
        "planned_minutes": s.protocol.planned_minutes,
        "rate_changes": sum(1 for d in s.doses if d.action == "rate"),
        "pauses": sum(1 for d in s.doses if d.action == "pause"),
    }


def _r(x: float) -> float:
    return round(x, 3)
