"""`bedside replay`: a recorded trace run through the alarm engine in virtual time, its alarms and their summary.

Pure functions that return events, alarm occurrences and summaries (and the text or JSON form of each); no
printing and no clock here: monitor/cli.py prints. The engine is the live service's own (alerts/engine.py), so a
replay shows what bedside would have raised for that patient with that profile.

How a trace is run (`run_trace`)
--------------------------------
- One bay ("replay"), one device ("trace"), the profile given. For each row at time t (seconds from the first
  row): every non-empty cell is observed (receive time t), every empty cell of a column the trace has is reported
  `missing` (no value from that row on: never a 0), then the engine ticks at t. A value holds until the next row:
  the tick at the next row steps the conditions over the elapsed time with it, so an alarm delay or a SatSeconds
  index runs out within the interval and the start event carries that interpolated time. A reading stays current
  until the next row even where the trace is sampled more sparsely than the profile's `stale_after` (the engine's
  `hold` is the trace's median row interval, so a gap of missing rows still becomes NOT CURRENT): a once-a-minute
  trace is not "not current" between its rows, and NOT CURRENT starts one row interval after the last value.
- The trace ends at its last row; a final tick at that time closes the run (no time passes after the last row).
- The device is not watched for silence: a trace says "no value" with empty cells (which the engine turns into
  NOT CURRENT once the vital is stale), and the gaps between rows are the trace's sampling, not a lost link.
- No one acknowledges anything in a replay: every alarm start sounds, and a latching alarm (high priority
  physiological, by default) stays latched once its condition ends.

Summary (`summarise`)
---------------------
Duration; alarms (starts) by priority and kind, and per hour by priority; audible alarms (= starts); time in alarm
per vital, physiological alarms from start to end (overlapping alarms of one vital count once; one still active at
the end counts up to the end; a latching alarm counts its condition's time, start to "latched", since a replay
never resets it); the same for technical alarms separately.

Comparison (`compare`)
----------------------
The same trace under two profiles: an alarm of one run is matched when the other run has an alarm of the same id
whose active interval overlaps it; the unmatched of each side are listed.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from alerts.engine import AlarmEngine
from alerts.lifecycle import LifecycleSettings
from alerts.profile import Profile
from monitor.model import AlarmEvent, AlarmKind, Observation, Priority
from monitor.trace import Trace

BAY = "replay"
DEVICE = "trace"
PRIORITIES: tuple[Priority, ...] = ("high", "medium", "low")
KINDS: tuple[AlarmKind, ...] = ("physiological", "technical")
LATCHING_NOTE = "a latching alarm counts from its start to its 'latched' event (its condition's time)"

Ending = Literal["end", "latched", "active at the end"]


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One alarm from its start to its end, its latching (the condition ended), or the end of the trace."""

    id: str
    vital: str | None
    kind: AlarmKind
    priority: Priority
    start: float
    end: float
    ending: Ending
    message: str

    def overlaps(self, other: Occurrence) -> bool:
        """Whether the two active intervals share time (an instant one: whether it lies within the other)."""
        lo, hi = max(self.start, other.start), min(self.end, other.end)
        if self.start == self.end or other.start == other.end:
            return lo <= hi
        return lo < hi


@dataclass(frozen=True, slots=True)
class Replay:
    """What one run of a trace under one profile produced: every alarm event, in time order, and the occurrences."""

    profile: str
    source: str
    duration: float
    events: tuple[AlarmEvent, ...]
    occurrences: tuple[Occurrence, ...]


@dataclass(frozen=True, slots=True)
class Summary:
    """The numbers of one run (see the module docstring for what each counts)."""

    profile: str
    trace: str
    duration: float
    alarms: int
    by_priority: dict[Priority, int]
    by_kind: dict[AlarmKind, int]
    per_hour: dict[Priority, float | None]  # None for a trace of no duration
    audible: int
    time_in_alarm: dict[str, float]  # physiological, seconds per vital
    time_in_technical_alarm: dict[str, float]  # technical, seconds per vital (or alarm id without a vital)
    latched: int  # alarms whose condition ended and that stayed latched
    active_at_end: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "profile": self.profile, "trace": self.trace, "duration_s": _r(self.duration),
            "alarms": self.alarms, "alarms_by_priority": dict(self.by_priority), "alarms_by_kind": dict(self.by_kind),
            "alarms_per_hour": {k: None if v is None else _r(v) for k, v in self.per_hour.items()},
            "audible_alarms": self.audible,
            "time_in_alarm_s": {k: _r(v) for k, v in self.time_in_alarm.items()},
            "time_in_technical_alarm_s": {k: _r(v) for k, v in self.time_in_technical_alarm.items()},
            "latched": self.latched, "active_at_end": self.active_at_end, "note": LATCHING_NOTE,
        }


@dataclass(frozen=True, slots=True)
class Comparison:
    """Two runs of one trace and the alarms each raised that the other did not."""

    a: Replay
    b: Replay
    only_a: tuple[Occurrence, ...]
    only_b: tuple[Occurrence, ...]


# --- running ------------------------------------------------------------------------------------------------

def run_trace(trace: Trace, profile: Profile, *, lifecycle: LifecycleSettings | None = None) -> Replay:
    """Run `trace` through an alarm engine on `profile` in virtual time; the events and alarm occurrences."""
    gaps = [b - a for a, b in zip(trace.times, trace.times[1:], strict=False)]
    engine = AlarmEngine([BAY], profiles={profile.name: profile}, default_profile=profile.name,
                         phase_profiles={}, lifecycle=lifecycle, t0=trace.times[0] if trace.times else 0.0,
                         hold=statistics.median(gaps) if gaps else 0.0)
    events: list[AlarmEvent] = []
    for t, row in zip(trace.times, trace.rows, strict=True):
        for vital in trace.columns:
            value = row.get(vital)
            if value is None:
                engine.missing(BAY, vital)
            else:
                engine.observe(Observation(BAY, DEVICE, vital, value, None, t))
        events += _in_time_order(engine.tick(t))
    end = trace.times[-1] if trace.times else 0.0
    events += _in_time_order(engine.tick(end))
    return Replay(profile.name, trace.source, trace.duration, tuple(events), tuple(occurrences(events, end)))


def _in_time_order(events: list[AlarmEvent]) -> list[AlarmEvent]:
    # one tick's events: a delayed start carries its crossing time, earlier than the tick's ends; stable otherwise
    return sorted(events, key=lambda e: e.time)


def occurrences(events: Iterable[AlarmEvent], end: float) -> list[Occurrence]:
    """Pair each start with its end or latched event (or `end`, if neither came), in start order."""
    open_: dict[str, AlarmEvent] = {}
    out: list[tuple[AlarmEvent, float, Ending]] = []
    for e in events:
        if e.phase == "start":
            open_[e.id] = e
        elif e.phase in ("end", "latched") and e.id in open_:
            out.append((open_.pop(e.id), e.time, "end" if e.phase == "end" else "latched"))
    out += [(s, max(end, s.time), "active at the end") for s in open_.values()]
    out.sort(key=lambda o: o[0].time)
    return [Occurrence(s.id, s.vital, s.kind, s.priority, s.time, stop, ending, s.message) for s, stop, ending in out]


def _union_length(intervals: Iterable[tuple[float, float]]) -> float:
    total, reach = 0.0, -math.inf
    for lo, hi in sorted(intervals):
        if hi > reach:
            total += hi - max(lo, reach)
            reach = hi
    return total


def summarise(run: Replay) -> Summary:
    """Counts, rates and time in alarm of one run."""
    occ = run.occurrences
    by_priority = {p: sum(1 for o in occ if o.priority == p) for p in PRIORITIES}
    hours = run.duration / 3600.0
    per_hour: dict[Priority, float | None] = {p: (n / hours if hours > 0 else None) for p, n in by_priority.items()}

    def time_per(kind: AlarmKind) -> dict[str, float]:
        keys = sorted({o.vital or o.id for o in occ if o.kind == kind})
        return {k: _union_length((o.start, o.end) for o in occ if o.kind == kind and (o.vital or o.id) == k)
                for k in keys}

    return Summary(
        profile=run.profile, trace=run.source, duration=run.duration, alarms=len(occ), by_priority=by_priority,
        by_kind={k: sum(1 for o in occ if o.kind == k) for k in KINDS}, per_hour=per_hour,
        audible=sum(1 for e in run.events if e.phase == "start"),
        time_in_alarm=time_per("physiological"), time_in_technical_alarm=time_per("technical"),
        latched=sum(1 for o in occ if o.ending == "latched"),
        active_at_end=sum(1 for o in occ if o.ending == "active at the end"),
    )


def compare(a: Replay, b: Replay) -> Comparison:
    """The alarms of `a` with no alarm of the same id overlapping them in `b`, and the other way round."""

    def unmatched(mine: Sequence[Occurrence], theirs: Sequence[Occurrence]) -> tuple[Occurrence, ...]:
        return tuple(o for o in mine if not any(o.id == t.id and o.overlaps(t) for t in theirs))

    return Comparison(a, b, unmatched(a.occurrences, b.occurrences), unmatched(b.occurrences, a.occurrences))


# --- output forms -------------------------------------------------------------------------------------------

def _r(x: float) -> float:
    return round(x, 3)


def clock(seconds: float) -> str:
    """Seconds from the start of the trace as H:MM:SS, with tenths when not whole."""
    tenths = round(abs(seconds) * 10)
    h, rest = divmod(tenths, 36000)
    m, st = divmod(rest, 600)
    sec = f"{st // 10:02d}" if st % 10 == 0 else f"{st // 10:02d}.{st % 10}"
    return f"{'-' if seconds < 0 and tenths else ''}{h}:{m:02d}:{sec}"


def event_json(e: AlarmEvent) -> dict[str, Any]:
    """An alarm event as `bedside replay --json` prints it."""
    return {"time": _r(e.time), "phase": e.phase, "id": e.id, "vital": e.vital, "priority": e.priority,
            "kind": e.kind, "value": e.value, "limit": e.limit, "message": e.message}


def event_line(e: AlarmEvent) -> str:
    """An alarm event as one readable line: when, what happened, the alarm, its priority and message."""
    extra = f" (level {e.level})" if e.phase == "escalated" else ""
    if e.phase in ("end", "latched") and e.kind == "physiological" and e.value is not None:
        extra = f" (now {e.value:g})"  # the message is the start's; the value is the one that ended it
    return f"{clock(e.time):>11}  {e.phase.upper():<9} {e.priority:<6} {e.id:<24} {e.message}{extra}"


def _duration(seconds: float) -> str:
    h, rest = divmod(round(seconds), 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}"


def summary_lines(s: Summary) -> list[str]:
    """The summary as readable lines."""

    def times(d: dict[str, float]) -> str:
        return ", ".join(f"{k} {_duration(v)}" for k, v in d.items()) or "none"

    rates = ", ".join(f"{p} {'n/a' if r is None else f'{r:.2f}'}" for p, r in s.per_hour.items())
    counts = ", ".join(f"{p} {n}" for p, n in s.by_priority.items())
    return [
        f"summary: profile {s.profile}, trace {s.trace}",
        f"  duration: {_duration(s.duration)} ({s.duration:g} s)",
        f"  alarms: {s.alarms} ({counts}; physiological {s.by_kind['physiological']}, "
        f"technical {s.by_kind['technical']})",
        f"  alarms per hour: {rates}",
        f"  audible alarms: {s.audible} (every start sounds; no one acknowledges in a replay)",
        f"  time in alarm (physiological): {times(s.time_in_alarm)}",
        f"  time in technical alarm: {times(s.time_in_technical_alarm)}",
        f"  latched at the end: {s.latched}; still active at the end: {s.active_at_end} ({LATCHING_NOTE})",
    ]


def occurrence_json(o: Occurrence) -> dict[str, Any]:
    return {"id": o.id, "vital": o.vital, "kind": o.kind, "priority": o.priority, "start": _r(o.start),
            "end": _r(o.end), "ending": o.ending, "message": o.message}


def occurrence_line(o: Occurrence) -> str:
    return f"{clock(o.start):>11} - {clock(o.end):<11} {o.priority:<6} {o.id:<24} {o.message}"


def comparison_lines(c: Comparison) -> list[str]:
    """Both summaries, then what each profile raised that the other did not."""
    out = [*summary_lines(summarise(c.a)), "", *summary_lines(summarise(c.b))]
    for mine, theirs, only in ((c.a, c.b, c.only_a), (c.b, c.a, c.only_b)):
        out += ["", f"raised by {mine.profile} but not by {theirs.profile}: {len(only)}"]
        out += [f"  {occurrence_line(o)}" for o in only]
    return out


def comparison_json(c: Comparison) -> list[dict[str, Any]]:
    """Both summaries, one line per unmatched alarm, then the counts: the JSON lines of `--compare --json`."""
    out: list[dict[str, Any]] = [{"summary": summarise(c.a).as_dict()}, {"summary": summarise(c.b).as_dict()}]
    for mine, theirs, only in ((c.a, c.b, c.only_a), (c.b, c.a, c.only_b)):
        out += [{"unmatched": {"raised_by": mine.profile, "not_by": theirs.profile, **occurrence_json(o)}}
                for o in only]
    out.append({"compare": {"a": c.a.profile, "b": c.b.profile, "only_a": len(c.only_a),
                            "only_b": len(c.only_b)}})
    return out
