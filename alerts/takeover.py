"""The alarm decisions of a takeover: when an engine starts holding a ward another engine held, what it must say
about the ward's alarms so that nothing is lost and nothing a nurse has silenced sounds again (docs/deployment.md).

Pure (no I/O, the clock passed in), like the engine whose hot copy it reconciles:

- `unsaid`: of the events this engine decided while it did not hold the bays, those the holder did not publish
  (the same alarm and phase within `match` s is the same decision, however the two copies' timing differed);
- `reconcile`: one bay's alarms, as the holder last published them (its retained snapshot, then what it said
  after it) and as the store has them open, against this engine's active set: an alarm only here is said as
  starting; one published but over here is ended ("ended at takeover"), unless it is latched and not yet
  acknowledged, which is adopted as it is; an acknowledgement made at the holder is made here, silently.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from alerts.engine import AlarmEngine
from alerts.lifecycle import ActiveAlarm
from alerts.notify.payloads import active_from_json
from monitor.model import AlarmEvent

MATCH = 10.0  # s: two engines' events of the same alarm and phase this close are the same decision


def unsaid(decided: Iterable[AlarmEvent], heard: Iterable[tuple[str, str, str, float]], since: float,
           match: float = MATCH) -> list[AlarmEvent]:
    """The events of `decided` from `since` on that no (bay, id, phase, time) of `heard` says, oldest first."""
    said: dict[tuple[str, str, str], list[float]] = {}
    for bay, alarm_id, phase, t in heard:
        said.setdefault((bay, alarm_id, phase), []).append(t)
    gap = [e for e in decided if e.time >= since
           and not any(abs(t - e.time) <= match for t in said.get((e.bay, e.id, e.phase), []))]
    return sorted(gap, key=lambda e: e.time)


def published_alarms(bay: str, snapshot: Mapping[str, Any], said_after: Iterable[tuple[str, str, float]]
                     ) -> dict[str, ActiveAlarm | None]:
    """What the holder had told everyone of `bay` is active: its snapshot's alarms (malformed ones left out), then
    what it (or this engine, for the gap) said after the snapshot, as (id, phase, time): an end removes an alarm,
    anything else makes it known (None: known by id only)."""
    listed = snapshot.get("alarms")
    out: dict[str, ActiveAlarm | None] = {}
    for a in listed if isinstance(listed, list) else []:
        try:
            alarm = active_from_json(bay, a)
        except (KeyError, TypeError, ValueError):
            continue
        out[alarm.start.id] = alarm
    when = snapshot.get("time")
    for alarm_id, phase, t in sorted(said_after, key=lambda h: h[2]):
        if isinstance(when, int | float) and t <= when:
            continue  # the snapshot shows it already
        if phase == "end":
            out.pop(alarm_id, None)
        else:
            out.setdefault(alarm_id, None)
    return out


def reconcile(engine: AlarmEngine, bay: str, published: Mapping[str, ActiveAlarm | None],
              left_open: Mapping[str, AlarmEvent], now: float, by: str) -> list[AlarmEvent]:
    """The events to say for `bay` now that engine node `by` holds it (`left_open`: the alarms the store has with
    a start and no end); adopts the holder's latched alarms and acknowledgements into `engine`."""
    events: list[AlarmEvent] = []
    mine = {a.start.id: a for a in engine.active(bay)}
    for alarm_id in sorted((set(published) | set(left_open)) - set(mine)):
        theirs, stored = published.get(alarm_id), left_open.get(alarm_id)
        start = stored if stored is not None else theirs.start if theirs is not None else None
        if start is None:
            continue  # said in the gap and over here: its end is among the gap's events
        if theirs is not None and theirs.latched and start.kind == "physiological":
            # latched at the holder, not yet acknowledged (this copy started after it): kept, latched, until a nurse
            # acknowledges it here; its start and latching were said already
            engine.external(start)
            engine.external(replace(start, phase="end", time=now))
            continue
        events.append(replace(start, phase="end", time=now, by=None, level=0, until=None,
                              message=f"{start.message} (ended at takeover by {by}: its condition is not present)"))
    for alarm_id, active in mine.items():
        if alarm_id not in published and alarm_id not in left_open:
            events.append(active.start)  # decided here while no engine was publishing this bay
            continue
        theirs = published.get(alarm_id)
        if theirs is not None and theirs.acknowledged_by is not None and not active.acknowledged:
            engine.acknowledge(bay, alarm_id, theirs.acknowledged_by, now)  # already said: not repeated
    return events
