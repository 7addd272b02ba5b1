"""The JSON bedside sends about alarms (schema `bedside/v1`, drivers/schemas/bedside-v1.schema.json): one alarm
event, a bay's snapshot of active alarms, the heartbeat; and the MQTT topics they go to.

The event JSON is also what the outbox keeps (alerts/notify/outbox.py): every output (the MQTT event stream, the
webhook, HL7) is made from it when it is sent, so a queued message is the engine's decision, not a rendering.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from monitor.model import AlarmEvent

if TYPE_CHECKING:
    from alerts.lifecycle import ActiveAlarm

JSON = dict[str, Any]
PREFIX = "bedside/v1"


def alarms_topic(site: str, bay: str) -> str:
    """Retained snapshot of a bay's active alarms (published for every bay, also with none)."""
    return f"{PREFIX}/{site}/bay/{bay}/alarms"


def alarm_events_topic(site: str, bay: str) -> str:
    """The stream of a bay's alarm events (QoS 1, not retained)."""
    return f"{PREFIX}/{site}/bay/{bay}/alarm_events"


def heartbeat_topic(site: str, instance: str) -> str:
    """Retained heartbeat of a bedside service; its last will says `offline` on the same topic."""
    return f"{PREFIX}/{site}/service/{instance}/heartbeat"


def iso(t: float) -> str:
    """A POSIX time as ISO 8601 UTC with milliseconds: 2026-06-01T12:00:00.500Z."""
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def event_json(event: AlarmEvent, site: str, bay_name: str | None = None, origin: str | None = None) -> JSON:
    """One alarm event: the engine's AlarmEvent fields, with the site, the bay's name and an ISO time; `origin`,
    the engine node that decided it (deployments with several engines)."""
    body = {"site": site, **asdict(event), "bay_name": bay_name or event.bay, "ts": iso(event.time)}
    if origin is not None:
        body["origin"] = origin
    return body


def with_sequence(body: JSON, seq: int) -> JSON:
    """The event as sent: with its outbox sequence number and an id a receiver can drop repeats by. The events of
    an engine node carry its name (`origin`): each engine counts from its own outbox, so the id names both."""
    origin = body.get("origin")
    return {**body, "seq": seq, "event_id": f"{body['site']}/{origin}/{seq}" if origin else f"{body['site']}/{seq}"}


def active_json(a: ActiveAlarm) -> JSON:
    """An alarm of the active set as the snapshot lists it."""
    s = a.start
    return {"id": s.id, "kind": s.kind, "priority": s.priority, "message": s.message, "vital": s.vital,
            "value": s.value, "limit": s.limit, "device": s.device, "since": s.time,
            "acknowledged_by": a.acknowledged_by, "latched": a.latched, "audible": a.audible,
            "paused_until": a.paused_until, "escalation": a.escalation}


def active_from_json(bay: str, a: JSON) -> ActiveAlarm:
    """The inverse of `active_json`: an alarm of a retained snapshot back as an ActiveAlarm (its start event and
    where it is in its life). KeyError, TypeError or ValueError when it is not one."""
    from alerts.lifecycle import ActiveAlarm

    if not isinstance(a, dict) or not isinstance(a["id"], str) or not isinstance(a["since"], int | float):
        raise TypeError("not an alarm of a snapshot")
    if a["kind"] not in ("physiological", "technical") or a["priority"] not in ("high", "medium", "low"):
        raise ValueError(f"alarm {a['id']!r}: unknown kind or priority")
    start = AlarmEvent(bay, a["id"], "start", a["kind"], a["priority"], float(a["since"]), str(a["message"]),
                       a.get("vital"), a.get("value"), a.get("limit"), a.get("device"))
    by = a.get("acknowledged_by")
    return ActiveAlarm(start, latched=a.get("latched") is True, acknowledged_by=by if isinstance(by, str) else None,
                       paused_until=a.get("paused_until"), escalation=int(a.get("escalation") or 0))


def snapshot_json(site: str, bay: str, bay_name: str, active: Sequence[ActiveAlarm], now: float) -> JSON:
    """A bay's active alarms now (an empty list: the bay is watched and has none)."""
    return {"site": site, "bay": bay, "bay_name": bay_name, "time": now, "ts": iso(now),
            "alarms": [active_json(a) for a in active]}


def heartbeat_json(instance: str, state: str, now: float, interval: float, session: str | None = None) -> JSON:
    """`online` every `interval` s while bedside runs; `offline` as its last will and when it stops; `session`
    names the connection (the same in its beats and its will)."""
    body: JSON = {"state": state, "instance": instance, "time": now, "ts": iso(now), "interval": interval}
    if session is not None:
        body["session"] = session
    return body
