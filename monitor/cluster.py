"""What the processes of a deployment beyond one server say to one another over MQTT (docs/deployment.md).

- `MqttLink`: one aiomqtt connection that subscribes to a fixed set of topics, hands every message to a callback,
  publishes on request and reconnects with backoff; `connected` tells whether it is up.
- Commands: a dashboard node asks the engine that holds a bay to acknowledge an alarm or pause or resume the bay's
  audio by publishing `command_json` to `bedside/v1/<site>/bay/<bay>/command` (QoS 1); the engine that holds the
  bay's ward carries it out (audited with the nurse's name) and answers on the asker's reply topic
  (`bedside/v1/<site>/service/<node>/replies`) with `reply_json`. An engine that does not hold the ward stays
  silent, so exactly one answers.
- `AlarmMirror`: a dashboard's copy of every bay's active alarms, from the engines' retained snapshots
  (`bedside/v1/<site>/bay/<bay>/alarms`); it answers what the dashboard asks of an alarm engine (`active`,
  `profile_name`, `life`) without deciding anything.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, replace
from typing import Any

import aiomqtt

from alerts.lifecycle import ActiveAlarm, Lifecycle, LifecycleSettings
from alerts.notify.mqtt_out import BACKOFF, Broker
from alerts.notify.payloads import PREFIX, active_from_json
from dashboard.live import AlarmView
from monitor.model import AlarmEvent
from monitor.ownership import GRACE, Ward

log = logging.getLogger(__name__)

JSON = dict[str, Any]
COMMANDS = ("acknowledge", "audio_pause", "audio_resume")
REPLY_TIMEOUT = 5.0  # s a dashboard waits for the holding engine's answer
NO_ENGINE = "no_engine"  # the dashboard's alarm id for a ward that no live engine holds


def command_topic(site: str, bay: str) -> str:
    return f"{PREFIX}/{site}/bay/{bay}/command"


def reply_topic(site: str, node: str) -> str:
    return f"{PREFIX}/{site}/service/{node}/replies"


def command_json(action: str, who: str, reply_to: str, alarm_id: str | None = None,
                 seconds: float | None = None) -> JSON:
    return {"id": uuid.uuid4().hex, "action": action, "who": who, "reply_to": reply_to, "alarm_id": alarm_id,
            "seconds": seconds, "time": time.time()}


def reply_json(command_id: str, engine: str, events: Sequence[AlarmEvent] = (), error: str | None = None,
               status: int = 200) -> JSON:
    return {"id": command_id, "engine": engine, "status": status, "error": error,
            "events": [asdict(e) for e in events]}


def event_from(body: JSON) -> AlarmEvent:
    """An AlarmEvent back from its JSON (`event_json` or `asdict`); KeyError/TypeError when it is not one."""
    fields = AlarmEvent.__dataclass_fields__
    return AlarmEvent(**{k: body[k] for k in fields if k in body})


def dumps(body: JSON) -> bytes:
    return json.dumps(body, separators=(",", ":"), allow_nan=False).encode()


def loads(payload: object) -> JSON | None:
    """A message's JSON object, or None (logged) when it is not one."""
    data = payload if isinstance(payload, bytes | bytearray) else str(payload).encode()
    try:
        body = json.loads(data)
    except ValueError:
        log.warning("ignored a message that is not JSON (%d bytes)", len(data))
        return None
    return body if isinstance(body, dict) else None


class MqttLink:
    """Subscribes to `topics`, calls `on_message(topic, payload, retained)` for each message, `on_connect()` after
    every (re)connect and `on_disconnect()` when the connection is lost; `publish` sends (QoS 1) while connected.
    A subscription the broker refuses (an ACL) is an error, retried like a lost connection, never a quiet link."""

    def __init__(self, broker: Broker, name: str, topics: Iterable[str],
                 on_message: Callable[[str, bytes, bool], None], *,
                 on_connect: Callable[[], None] | None = None, on_disconnect: Callable[[], None] | None = None,
                 backoff: tuple[float, ...] = BACKOFF) -> None:
        self.broker = broker
        self.name = name
        self.topics = sorted(set(topics))
        self.on_message = on_message
        self.on_connect = on_connect
        self.on_disconnect = on_disconnect
        self.backoff = backoff
        self.connected = False
        self.last_error: str | None = None
        self._client: aiomqtt.Client | None = None

    async def publish(self, topic: str, body: JSON, retain: bool = False) -> None:
        """Publish now; aiomqtt.MqttError when the link is down."""
        if self._client is None or not self.connected:
            raise aiomqtt.MqttError("not connected to the broker")
        await self._client.publish(topic, dumps(body), qos=1, retain=retain)

    async def run(self) -> None:
        attempt = 0
        while True:
            try:
                await self._session()
                attempt = 0
            except (aiomqtt.MqttError, OSError) as exc:
                if self.connected or self.last_error is None:
                    log.warning("%s: MQTT link to %s:%d lost: %s", self.name, self.broker.host, self.broker.port, exc)
                self.last_error = f"{type(exc).__name__}: {exc}"
            finally:
                if self.connected and self.on_disconnect is not None:
                    self.on_disconnect()
                self.connected, self._client = False, None
            await asyncio.sleep(self.backoff[min(attempt, len(self.backoff) - 1)])
            attempt += 1

    async def _session(self) -> None:
        b = self.broker
        async with b.client(f"bedside-{self.name}-{uuid.uuid4().hex[:8]}") as client:
            if self.topics:
                granted = await client.subscribe([(t, 1) for t in self.topics])
                codes = [getattr(g, "value", g) for g in granted]  # MQTT 3.1.1: granted QoS; 5: reason codes
                refused = [t for t, c in zip(self.topics, codes, strict=False) if not isinstance(c, int) or c >= 0x80]
                if refused:
                    raise aiomqtt.MqttError(f"the broker refused the subscriptions {', '.join(refused)}")
            self._client, self.connected, self.last_error = client, True, None
            if self.on_connect is not None:
                self.on_connect()
            async for message in client.messages:
                payload = message.payload
                data = payload if isinstance(payload, bytes) else str(payload).encode()
                try:
                    self.on_message(message.topic.value, data, bool(message.retain))
                except Exception:  # one bad message must not take the link down
                    log.exception("%s: handling a message on %s failed", self.name, message.topic.value)
        raise aiomqtt.MqttError("connection closed")


class AlarmMirror:
    """Every bay's active alarms as the engines last published them (retained snapshots), for a dashboard node;
    and, on top, NO ALARM ENGINE on every bay of a ward that no live engine holds (both of its engines down, or
    this dashboard cut off from the broker): the one thing a dashboard decides, because it is about itself."""

    def __init__(self, bays: Iterable[str], settings: LifecycleSettings,
                 wards: Mapping[str, Ward] | None = None, bay_ward: Mapping[str, str | None] | None = None,
                 grace: float = GRACE) -> None:
        self._active: dict[str, list[ActiveAlarm]] = {b: [] for b in bays}
        self._time: dict[str, float] = {}
        self.life = Lifecycle(settings)  # only its settings are read (the audio pause length for the page)
        self.wards = dict(wards or {})
        self.bay_ward = dict(bay_ward or {})
        self.grace = grace
        self.listening_since: float | None = None
        self._beats: dict[str, tuple[JSON, float]] = {}  # engine -> its last heartbeat, when it was heard
        self._unheld: dict[str, ActiveAlarm] = {}  # bay -> its NO ALARM ENGINE alarm while it stands

    def engines(self) -> list[str]:
        return sorted({e for w in self.wards.values() for e in (w.engine, w.standby) if e is not None})

    def heartbeat(self, engine: str, body: JSON, heard_at: float | None = None) -> None:
        """An engine's heartbeat, heard at `heard_at` (this clock; None: a retained one, aged by its own time)."""
        when = body.get("time")
        if body.get("state") not in ("online", "offline") or not isinstance(when, int | float) \
                or isinstance(when, bool):
            return
        last = self._beats.get(engine)
        session, last_session = body.get("session"), last[0].get("session") if last is not None else None
        if body["state"] == "offline" and last is not None and last[0].get("state") == "online" \
                and isinstance(session, str) and isinstance(last_session, str) and session != last_session:
            return  # a stale last will of a connection the engine has replaced
        self._beats[engine] = (body, float(when) if heard_at is None else heard_at)

    def held(self, ward: Ward, now: float) -> bool:
        """Whether a live engine says it holds `ward`."""
        for name in (ward.engine, ward.standby):
            beat, heard_at = self._beats.get(name, ({}, -1e300)) if name is not None else ({}, -1e300)
            wards = beat.get("wards")
            if beat.get("state") == "online" and now - heard_at <= ward.takeover_after \
                    and isinstance(wards, list) and ward.id in wards:
                return True
        return False

    def check(self, now: float) -> list[AlarmEvent]:
        """Start or end NO ALARM ENGINE on the bays whose ward no live engine holds now (nothing is said in the
        first `grace` s of listening, while the retained heartbeats arrive); the events for the page."""
        if self.listening_since is not None and now - self.listening_since < self.grace:
            return []
        out: list[AlarmEvent] = []
        for bay in self._active:
            ward = self.wards.get(self.bay_ward.get(bay) or "")
            if ward is None:
                continue
            if self.listening_since is None:
                why = "this dashboard cannot reach the broker: alarms are not being shown"
            elif not self.held(ward, now):
                why = f"no engine holds {ward.id}: its alarms are not being decided; see the servers"
            elif bay not in self._time:
                why = f"no engine publishes bay {bay}'s alarms (is it in the engines' configuration?)"
            else:
                why = ""
            was = self._unheld.get(bay)
            if why and (was is None or was.start.message != f"NO ALARM ENGINE: {why}"):
                start = AlarmEvent(bay, NO_ENGINE, "start", "technical", "high", now, f"NO ALARM ENGINE: {why}")
                self._unheld[bay] = ActiveAlarm(start)
                out.append(start)
            elif not why and was is not None:
                del self._unheld[bay]
                out.append(AlarmEvent(bay, NO_ENGINE, "end", "technical", "high", now, was.start.message))
        return out

    def snapshot(self, body: JSON) -> list[AlarmEvent] | None:
        """Take a bay's snapshot (schema $defs/alarm_snapshot): the newest on the topic is the truth, whichever
        engine sent it (the broker keeps one topic's order; the engines' clocks are not compared). Returns what
        changed as events for the pages (an alarm that appeared: its start, and its acknowledgement; one that
        went: its end), since a page follows events and a dashboard may have missed some while it was away;
        None when it is not for a bay here or is malformed."""
        bay = body.get("bay")
        if not isinstance(bay, str) or bay not in self._active:
            return None
        when = body.get("time")
        listed = body.get("alarms", [])
        if not isinstance(when, int | float) or isinstance(when, bool) or not isinstance(listed, list):
            return None
        try:
            active = [active_from_json(bay, a) for a in listed]
        except (KeyError, TypeError, ValueError, AttributeError):
            log.warning("ignored a malformed alarm snapshot for bay %s", bay)
            return None
        before = {a.start.id: a for a in self._active[bay]}
        self._active[bay], self._time[bay] = active, float(when)
        changes: list[AlarmEvent] = []
        for a in active:
            was = before.pop(a.start.id, None)
            if was is None or was.start.time != a.start.time:
                changes.append(a.start)
            if a.acknowledged_by is not None and (was is None or was.acknowledged_by is None):
                changes.append(replace(a.start, phase="acknowledged", time=float(when), by=a.acknowledged_by))
        changes += [replace(a.start, phase="end", time=float(when)) for a in before.values()]
        return changes

    def active(self, bay: str | None = None) -> list[ActiveAlarm]:
        if bay is None:
            return [a for b in self._active for a in self.active(b)]
        unheld = self._unheld.get(bay)
        return [*self._active.get(bay, []), *([unheld] if unheld is not None else [])]

    def profile_name(self, bay: str) -> str:
        return ""  # the holding engine's: not on the wire

    def snapshot_time(self, bay: str) -> float | None:
        return self._time.get(bay)


class HeldView:
    """What an engine node's own pages show of the alarms: its engine's for the bays it holds; for those another
    engine holds, that engine's published snapshots (the hot copy here is not what the nurses are told)."""

    def __init__(self, engine: AlarmView, mirror: AlarmMirror, holds: Callable[[str], bool]) -> None:
        self._engine = engine
        self._mirror = mirror
        self._holds = holds
        self.life = engine.life

    def active(self, bay: str | None = None) -> list[ActiveAlarm]:
        if bay is None:
            return [*self._engine.active(None), *self._mirror.active(None)]  # (not asked by the pages)
        return self._engine.active(bay) if self._holds(bay) else self._mirror.active(bay)

    def profile_name(self, bay: str) -> str:
        return self._engine.profile_name(bay)


class RemoteActions:
    """A dashboard node's alarm actions: each a command to the engine holding the bay, answered on `reply_to`."""

    def __init__(self, site: str, node: str, publish: Callable[[str, JSON], Awaitable[None]],
                 timeout: float = REPLY_TIMEOUT) -> None:
        self.site = site
        self.reply_to = reply_topic(site, node)
        self._publish = publish
        self.timeout = timeout
        self._waiting: dict[str, asyncio.Future[JSON]] = {}

    def reply(self, body: JSON) -> None:
        """An engine's answer (from the reply topic)."""
        future = self._waiting.get(str(body.get("id")))
        if future is not None and not future.done():
            future.set_result(body)

    async def ask(self, bay: str, action: str, who: str, alarm_id: str | None = None,
                  seconds: float | None = None) -> list[AlarmEvent]:
        """Carry out `action` at the holding engine: its events; KeyError (404), ValueError (400) or
        RemoteUnavailable (503) as the engine answered, or when none did within `timeout`."""
        cmd = command_json(action, who, self.reply_to, alarm_id, seconds)
        future: asyncio.Future[JSON] = asyncio.get_running_loop().create_future()
        self._waiting[cmd["id"]] = future
        try:
            try:
                await self._publish(command_topic(self.site, bay), cmd)
            except aiomqtt.MqttError as exc:
                raise RemoteUnavailable(f"the broker cannot be reached ({exc}): the alarm was not {action}d") from None
            try:
                answer = await asyncio.wait_for(future, self.timeout)
            except TimeoutError:
                raise RemoteUnavailable(f"no engine answered within {self.timeout:g} s: the alarm engine of bay "
                                        f"{bay} may be down; nothing was changed") from None
        finally:
            self._waiting.pop(cmd["id"], None)
        status, error = answer.get("status"), str(answer.get("error") or "")
        if status == 404:
            raise KeyError(error)
        if status == 400:
            raise ValueError(error)
        if status != 200:
            raise RemoteUnavailable(error or f"engine answered {status}")
        return [event_from(e) for e in answer.get("events", [])]


class RemoteUnavailable(Exception):
    """The engine holding a bay could not be asked, or did not answer."""


def execute_command(body: JSON, engine: str, run: Callable[[str, str, JSON], list[AlarmEvent]],
                    bay: str) -> JSON:
    """Carry out a command with `run(bay, action, body)` and make its reply (an engine's side of a command)."""
    action, cid = body.get("action"), str(body.get("id", ""))
    if action not in COMMANDS or not isinstance(body.get("who"), str) or not body["who"]:
        return reply_json(cid, engine, error="malformed command", status=400)
    try:
        return reply_json(cid, engine, run(bay, str(action), body))
    except KeyError as exc:
        return reply_json(cid, engine, error=str(exc.args[0]) if exc.args else "not found", status=404)
    except ValueError as exc:
        return reply_json(cid, engine, error=str(exc), status=400)
