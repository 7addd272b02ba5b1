"""A bay's recorded history over a time window, for the bay detail page's trends: observations per vital, alarm
periods, technical-status periods and annotations, read from the database.

Periods are paired from their start and end events; an alarm or status that began up to `LOOKBACK` before the
window and is still on at its start is included with its true start; one that began even earlier starts at the
beginning of the searched span with `"started_before": true`. Reads run on their own read-only
connection (call from a worker thread), so a long read never holds up the event loop or the recorder.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

MAX_SPAN = 24 * 3600.0  # s: the longest window one request may ask for
LOOKBACK = 24 * 3600.0  # s before the window in which the start of a period still on at its start is searched


def open_readonly(db_path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=10.0)


def bay_history(conn: sqlite3.Connection, bay: str, since: float, until: float) -> dict[str, Any]:
    observations: dict[str, list[list[float]]] = {}
    for vital, t, v in conn.execute(
            "SELECT vital, receive_time, value FROM observations WHERE bay = ? AND receive_time BETWEEN ? AND ?"
            " ORDER BY receive_time", (bay, since, until)):
        observations.setdefault(vital, []).append([t, v])

    alarms: dict[str, dict[str, Any]] = {}  # alarm id -> its open period
    alarm_periods: list[dict[str, Any]] = []
    for alarm_id, phase, kind, priority, t, message, vital in conn.execute(
            "SELECT alarm_id, phase, kind, priority, time, message, vital FROM alarm_events"
            " WHERE bay = ? AND time BETWEEN ? AND ? AND phase IN ('start', 'end') ORDER BY time, rowid",
            (bay, since - LOOKBACK, until)):
        if phase == "start":
            if alarm_id in alarms:  # a start without its end (a restart): the old period ends here
                alarm_periods.append({**alarms.pop(alarm_id), "end": t})
            alarms[alarm_id] = {"id": alarm_id, "priority": priority, "kind": kind, "vital": vital,
                                "message": message, "start": t, "end": None}
        elif alarm_id in alarms:
            alarm_periods.append({**alarms.pop(alarm_id), "end": t})
        else:  # its start is older than the lookback: it was on when the searched span began
            alarm_periods.append({"id": alarm_id, "priority": priority, "kind": kind, "vital": vital,
                                  "message": message, "start": since - LOOKBACK, "end": t, "started_before": True})
    alarm_periods += alarms.values()

    open_tech: dict[tuple[str, str, str | None], dict[str, Any]] = {}
    tech_periods: list[dict[str, Any]] = []
    for device, condition, vital, active, t in conn.execute(
            "SELECT device, condition, vital, active, time FROM technical_statuses"
            " WHERE bay = ? AND time BETWEEN ? AND ? ORDER BY time, rowid", (bay, since - LOOKBACK, until)):
        key = (device, condition, vital)
        if active:
            open_tech.setdefault(key, {"device": device, "condition": condition, "vital": vital, "start": t,
                                       "end": None})
        elif key in open_tech:
            tech_periods.append({**open_tech.pop(key), "end": t})
    tech_periods += open_tech.values()

    annotations = [{"id": i, "time": t, "who": who, "kind": kind, "text": text} for i, t, who, kind, text in
                   conn.execute("SELECT id, time, who, kind, text FROM annotations WHERE bay = ?"
                                " AND time BETWEEN ? AND ? ORDER BY time, id", (bay, since, until))]

    def overlaps(p: dict[str, Any]) -> bool:
        return p["end"] is None or p["end"] >= since

    return {"bay": bay, "since": since, "until": until, "observations": observations,
            "alarms": sorted((p for p in alarm_periods if overlaps(p)), key=lambda p: p["start"]),
            "technical": sorted((p for p in tech_periods if overlaps(p)), key=lambda p: p["start"]),
            "annotations": annotations}
