"""A bay's recorded history over a time window, for the bay detail page's trends: observations per vital, alarm
periods, technical-status periods and annotations, assembled from rows any store backend reads.

Periods are paired from their start and end events; an alarm or status that began up to `LOOKBACK` before the
window and is still on at its start is included with its true start; one that began even earlier starts at the
beginning of the searched span with `"started_before": true`. The backends (monitor/sqlite_store.py,
monitor/pg_store.py) read the rows, in time order, and call `assemble`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

MAX_SPAN = 24 * 3600.0  # s: the longest window one request may ask for
LOOKBACK = 24 * 3600.0  # s before the window in which the start of a period still on at its start is searched

ObservationRow = tuple[str, float, float]  # vital, receive_time, value
AlarmRow = tuple[str, str, str, str, float, str, str | None]  # alarm_id, phase, kind, priority, time, message, vital
TechnicalRow = tuple[str, str, str | None, int, float]  # device, condition, vital, active, time
AnnotationRow = tuple[int, float, str, str, str]  # id, time, who, kind, text


def assemble(bay: str, since: float, until: float, observations: Iterable[ObservationRow],
             alarms: Iterable[AlarmRow], technical: Iterable[TechnicalRow],
             annotations: Iterable[AnnotationRow]) -> dict[str, Any]:
    """The history's JSON from rows: observations in [since, until]; alarm start/end events and technical
    statuses from `since - LOOKBACK`; annotations in the window."""
    by_vital: dict[str, list[list[float]]] = {}
    for name, t, v in observations:
        by_vital.setdefault(name, []).append([t, v])

    open_alarms: dict[str, dict[str, Any]] = {}  # alarm id -> its open period
    alarm_periods: list[dict[str, Any]] = []
    for alarm_id, phase, kind, priority, t, message, alarm_vital in alarms:
        if phase == "start":
            if alarm_id in open_alarms:  # a start without its end (a restart): the old period ends here
                alarm_periods.append({**open_alarms.pop(alarm_id), "end": t})
            open_alarms[alarm_id] = {"id": alarm_id, "priority": priority, "kind": kind, "vital": alarm_vital,
                                     "message": message, "start": t, "end": None}
        elif phase == "end":
            if alarm_id in open_alarms:
                alarm_periods.append({**open_alarms.pop(alarm_id), "end": t})
            else:  # its start is older than the lookback: it was on when the searched span began
                alarm_periods.append({"id": alarm_id, "priority": priority, "kind": kind, "vital": alarm_vital,
                                      "message": message, "start": since - LOOKBACK, "end": t,
                                      "started_before": True})
    alarm_periods += open_alarms.values()

    open_tech: dict[tuple[str, str, str | None], dict[str, Any]] = {}
    tech_periods: list[dict[str, Any]] = []
    for device, condition, vital, active, t in technical:
        key = (device, condition, vital)
        if active:
            open_tech.setdefault(key, {"device": device, "condition": condition, "vital": vital, "start": t,
                                       "end": None})
        elif key in open_tech:
            tech_periods.append({**open_tech.pop(key), "end": t})
        else:  # it began before the lookback: it was on when the searched span began
            tech_periods.append({"device": device, "condition": condition, "vital": vital, "start": since - LOOKBACK,
                                 "end": t, "started_before": True})
    tech_periods += open_tech.values()

    notes = [{"id": i, "time": t, "who": who, "kind": kind, "text": text} for i, t, who, kind, text in annotations]

    def overlaps(p: dict[str, Any]) -> bool:
        return p["end"] is None or p["end"] >= since

    return {"bay": bay, "since": since, "until": until, "observations": by_vital,
            "alarms": sorted((p for p in alarm_periods if overlaps(p)), key=lambda p: p["start"]),
            "technical": sorted((p for p in tech_periods if overlaps(p)), key=lambda p: p["start"]),
            "annotations": notes}
