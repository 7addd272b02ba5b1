"""What the page and API clients see: the JSON of a full snapshot and of each live item.

These shapes are the contract with dashboard/static/*.js (documented in docs/architecture.md).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Protocol

from alerts.lifecycle import ActiveAlarm, Lifecycle
from monitor.hub import Hub
from monitor.infusion import Session
from monitor.model import (
    AlarmEvent,
    Annotation,
    AuditRecord,
    LiveItem,
    Observation,
    SessionChanged,
    SettingsChanged,
    TechnicalStatus,
)

JSON = dict[str, Any]


class AlarmView(Protocol):
    """What the dashboard reads of the alarms: the alarm engine itself (one server), or a dashboard node's mirror
    of what the engines published (monitor/cluster.py AlarmMirror)."""

    @property
    def life(self) -> Lifecycle: ...

    def active(self, bay: str | None = None) -> list[ActiveAlarm]: ...

    def profile_name(self, bay: str) -> str: ...


def alarm_json(e: AlarmEvent) -> JSON:
    return {"id": e.id, "kind": e.kind, "priority": e.priority, "vital": e.vital, "value": e.value,
            "limit": e.limit, "message": e.message, "device": e.device, "since": e.time}


def active_json(a: ActiveAlarm) -> JSON:
    """An alarm of the active set with where it is in its life (alerts/lifecycle.py)."""
    return {**alarm_json(a.start), "acknowledged": a.acknowledged, "acknowledged_by": a.acknowledged_by,
            "latched": a.latched, "audible": a.audible, "paused_until": a.paused_until, "escalation": a.escalation}


def session_summary(s: Session) -> JSON:
    """What a tile shows of a bay's open session."""
    return {"id": s.id, "initials": s.initials, "patient_id": s.patient_id, "phase": s.phase,
            "phase_since": s.phase_since, "series": s.series_label, "admitted_at": s.admitted_at,
            "infusion_started": s.infusion_started, "rate_mg_per_h": s.running_rate(),
            "checklist_missing": s.checklist.missing()}


def snapshot(site: str, hub: Hub, engine: AlarmView, now: float,
             sessions: Mapping[str, Session] | None = None) -> JSON:
    """Every bay with its latest value and time per vital, technical statuses, active alarms and open session."""
    sessions = sessions or {}
    bays = []
    for state in hub.bays.values():
        bays.append({
            "id": state.bay.id,
            "name": state.bay.name,
            "devices": list(state.bay.devices),
            "vitals": {k: {"value": o.value, "time": o.receive_time, "device": o.device}
                       for k, o in state.latest.items()},
            "technical": [{"device": t.device, "condition": t.condition.value, "vital": t.vital,
                           "detail": t.detail, "since": t.time} for t in state.technical.values()],
            "alarms": [active_json(a) for a in engine.active(state.bay.id)],
            "profile": engine.profile_name(state.bay.id),
            "session": session_summary(sessions[state.bay.id]) if state.bay.id in sessions else None,
        })
    return {"site": site, "server_time": now, "audio_pause_s": engine.life.settings.audio_pause, "bays": bays}


def item_json(item: LiveItem) -> JSON:
    """One live message for /ws/live."""
    if isinstance(item, Observation):
        return {"type": "obs", "bay": item.bay, "device": item.device, "vital": item.vital, "value": item.value,
                "time": item.receive_time}
    if isinstance(item, TechnicalStatus):
        return {"type": "technical", "bay": item.bay, "device": item.device, "condition": item.condition.value,
                "vital": item.vital, "active": item.active, "detail": item.detail, "time": item.time}
    if isinstance(item, AuditRecord):
        return {"type": "audit", "time": item.time, "who": item.who, "action": item.action, "bay": item.bay,
                "target": item.target, "before": item.before, "after": item.after}
    if isinstance(item, SettingsChanged):
        return {"type": "settings", "bay": item.bay, "time": item.time, "who": item.who, "what": item.what}
    if isinstance(item, SessionChanged):
        return {"type": "session", "bay": item.bay, "time": item.time, "who": item.who, "step": item.step,
                "session": item.session}
    if isinstance(item, Annotation):
        return {"type": "annotation", "bay": item.bay, "id": item.id, "time": item.time, "who": item.who,
                "kind": item.kind, "text": item.text}
    body = alarm_json(item)
    del body["since"]
    return {"type": "alarm", "bay": item.bay, "phase": item.phase, "time": item.time, "by": item.by,
            "level": item.level, "until": item.until, **body}


class EncodedItems:
    """The JSON text of recent live items, so that an item going to many websocket clients is encoded once. Bounded:
    it keeps the last `size` items (a client further behind has its items encoded again)."""

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._texts: dict[int, tuple[LiveItem, str]] = {}  # id(item) -> (item, text); the item keeps its id unique

    def text(self, item: LiveItem) -> str:
        key = id(item)
        hit = self._texts.get(key)
        if hit is not None and hit[0] is item:
            return hit[1]
        text = json.dumps(item_json(item), separators=(",", ":"), ensure_ascii=False)
        self._texts.pop(key, None)
        self._texts[key] = (item, text)
        if len(self._texts) > self._size:
            del self._texts[next(iter(self._texts))]  # the oldest
        return text
