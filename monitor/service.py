"""The composition root: builds the whole of bedside from a config and runs it until told to stop.

The only place that constructs drivers, the hub, the alarm engine, the recorder, simulators and the dashboard
together. Data flows one way: driver -> hub -> engine -> (broadcast to the dashboard, recorder).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import math
import socket
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

import uvicorn

from alerts.engine import AlarmEngine, WatchedDevice
from alerts.lifecycle import LifecycleSettings
from alerts.notify.mqtt_out import Broker, MqttAlarmOutput
from alerts.notify.notifier import Notifier, Output
from alerts.notify.outbox import Outbox, OutboxError
from alerts.notify.payloads import PREFIX, alarm_events_topic, alarms_topic, heartbeat_topic, snapshot_json
from alerts.profile import ProfileError, load_profiles
from alerts.takeover import published_alarms, reconcile, unsaid
from dashboard.app import LiveSources, create_app
from dashboard.live import AlarmView
from drivers.base import Driver
from drivers.registry import driver_class
from drivers.supervise import supervise
from monitor import db
from monitor.broadcast import Broadcast
from monitor.cluster import (
    AlarmMirror,
    HeldView,
    MqttLink,
    RemoteActions,
    command_topic,
    event_from,
    execute_command,
    loads,
    reply_topic,
)
from monitor.config import BedsideConfig
from monitor.hub import Hub
from monitor.infusion import Session, SessionError, SessionSettings
from monitor.model import (
    ANNOTATION_KINDS,
    AlarmEvent,
    Annotation,
    AuditRecord,
    Bay,
    DeviceEvent,
    LiveItem,
    Observation,
    Reading,
    SessionChanged,
    SettingsChanged,
    TechnicalStatus,
)
from monitor.mosquitto import PrivateMosquitto
from monitor.ownership import GRACE, Ownership, wards_from
from monitor.process import (
    ServiceError,
    cancel_all,
    device_settings,
    host_port,
    listen_socket,
    stop_on_signals,
    until_stopped_or_failed,
)
from monitor.recorder import Recorder
from monitor.sessions import Sessions
from monitor.simulated import Simulated
from monitor.store import StoreError, TraceStore, open_store
from monitor.users import end_idle_sessions

if TYPE_CHECKING:
    from simulators.patient import PatientModel

log = logging.getLogger(__name__)

# Python's cyclic garbage collector stops the event loop while it scans: at 1,000 bays (a thousand MQTT connections,
# the engine, the buffers) its full collections took 50-75 ms and its middle ones 10-13 ms, several times a minute,
# which was the tail of the alarm latency (bench/capacity.py, docs/performance.md). What exists once the service
# is up lives as long as it does, so it is moved out of the collector's view (gc.freeze), once at start and once
# more GC_SETTLE s later when the devices have connected; and the youngest generation is collected every
# GC_YOUNG allocations instead of 700 (fewer objects that die young are promoted to be scanned again; 20,000 made
# each young collection itself 20-25 ms).
GC_SETTLE = 20.0
GC_YOUNG = 5000


def tune_garbage_collector() -> None:
    """Collect once, freeze what is left (the running service's own structures), collect young objects less often."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG, middle, old)

TICK = 1.0  # seconds between the engine's periodic ticks (silence, staleness, delays, lifecycle timers)
MIN_TICK_GAP = 0.02  # s: observations arriving together share one tick; an undelayed alarm waits at most this
SILENCE_MARGIN = 0.005  # s after a device's silence is due that its tick runs (so the engine sees it as due)
MAX_ANNOTATION = 2000  # characters of an annotation's text
ANNOTATION_BACKDATE = 12 * 3600.0  # s: how far back a nurse may place an annotation ("infusion started 10 min ago")
RESTART_LOOKBACK = 7 * 24 * 3600.0  # s: alarms left open by a stop this long ago are ended at start
RECORDING_FAILURES = 3  # consecutive failed recorder writes (about 1.5 s) before RECORDING FAILED
SHADOW = 60.0  # s of a standby's readings kept, to record what a failed engine had not written at a takeover


@dataclass
class Service:
    """A built bedside: call `run()` to serve until `stop()` (or SIGINT/SIGTERM)."""

    config: BedsideConfig
    clock: Callable[[], float] = time.time
    hub: Hub = field(init=False)
    engine: AlarmEngine = field(init=False)
    broadcast: Broadcast[LiveItem] = field(init=False)
    drivers: list[Driver] = field(init=False, default_factory=list)
    bound_port: int | None = field(init=False, default=None)
    alarm_broker: str | None = field(init=False, default=None)  # mqtt://host:port the alarm topics go to

    def __post_init__(self) -> None:
        self.role = self.config.role
        # devices a gateway relays: their readings carry the gateway's receive time (monitor/gateway.py)
        self._relayed = {d.id for b in self.config.bays if b.gateway is not None and self.role != "all"
                         for d in b.devices if d.driver != "mqtt"}
        cfg = self.config = node_view(self.config)
        self._ward_of = {b.id: b.ward for b in cfg.bays}
        self.ownership: Ownership | None = None
        if self.role == "engine":
            primary, standby = cfg.wards_of(cfg.node or "")
            self.ownership = Ownership(cfg.node or "", wards_from([*primary, *standby]))
        self._snapshots: dict[str, dict[str, Any]] = {}  # bay -> its last retained alarm snapshot (engine role)
        self._shadow: deque[Observation] = deque()  # readings of bays held by another engine, the last SHADOW s
        self._shadow_events: deque[AlarmEvent] = deque()  # this engine's decisions for them, the last SHADOW s
        self._heard_events: deque[tuple[str, str, str, float]] = deque()  # (bay, id, phase, time) their holder said
        self._peer_online_at: dict[str, float] = {}  # engine -> the time of its last `online` heartbeat
        self._ownership_wake = asyncio.Event()  # a heartbeat came, or the link went up or down: decide again
        self._takeovers: dict[str, str] = {}  # ward -> the engine this standby took it over from
        self.link: MqttLink | None = None
        self.mirror: AlarmMirror | None = None
        self.remote: RemoteActions | None = None
        self.hub = Hub(Bay(b.id, b.name or b.id, [d.id for d in b.devices]) for b in cfg.bays)
        self.engine = build_engine(cfg)
        self.broadcast = Broadcast()
        self.db = db.connect(cfg.data_dir)  # accounts: users, login sessions, tokens (always this server's SQLite)
        end_idle_sessions(self.db)
        try:
            self.store: TraceStore = open_store(cfg.data_dir, cfg.storage.url)
        except StoreError as exc:
            self.db.close()
            raise ServiceError(f"storage: {exc}") from None
        self.recorder = Recorder(self.store)
        try:
            self.outbox = Outbox(cfg.data_dir)
            self.notifier = Notifier(cfg.notify, cfg.site, self.outbox, {b.id: b.name or b.id for b in cfg.bays},
                                     clock=self.clock, origin=cfg.node if self.role == "engine" else None)
        except OutboxError as exc:
            self.store.close()
            self.db.close()
            raise ServiceError(f"alarm outbox: {exc}") from None
        self.sessions = Sessions(self.store, SessionSettings(**cfg.sessions.model_dump()), self._readings,
                                 bays=set(self.hub.bays))
        self.hub.on_heard(self.engine.heard)
        self.hub.add_sink(self._decide)
        self._stop = asyncio.Event()
        self.simulated = Simulated(cfg.site, self.clock)
        self._recording_failed = False
        self._forwarding_failed: set[str] = set()
        self._tick_handle: asyncio.TimerHandle | None = None
        self._last_tick = -float("inf")  # loop time of the last tick
        self._longest_sleep = min([TICK, *(d.silent_after for b in cfg.bays for d in b.devices)])
        self.started = asyncio.Event()
        for session in self.sessions.open.values():  # after a restart the open sessions carry on
            self._apply_session(None, session, self.clock())
        if self.role == "all":  # an engine node does this for a ward when it takes the ward (_gain)
            self._end_alarms_left_open()

    def holds(self, bay: str) -> bool:
        """Whether this service decides, records and publishes `bay`'s alarms now: always on one server; on an
        engine node while it holds the bay's ward; never on a dashboard node (it shows what the engines said)."""
        if self.role == "all":
            return True
        if self.ownership is None:
            return False
        return self._ward_of.get(bay) in self.ownership.held

    def _end_alarms_left_open(self) -> None:
        """Alarms a crash left without an end are ended now, in the record, so a history does not show them as
        still on; the engine raises each again if its condition still holds."""
        now = self.clock()
        try:
            left = self.store.unended_alarms(now - RESTART_LOOKBACK)
            ends = [replace(e, phase="end", time=now, by=None, level=0, until=None,
                            message=f"{e.message} (ended at restart: bedside had stopped)")
                    for e in left if e.bay in self.hub.bays]
            if ends:
                self.store.append_durable(ends)
                log.warning("ended %d alarms left open when bedside stopped", len(ends))
                self.notifier.events(ends)  # a receiver that was told of the start is told of the end
        except StoreError:
            log.exception("could not end the alarms left open when bedside stopped; their history shows them on")

    # --- the data path ------------------------------------------------------------------------------------

    def _publish(self, item: Observation | TechnicalStatus) -> None:
        if self.holds(item.bay):
            self.recorder.record(item)
        elif self.role == "engine" and isinstance(item, Observation):
            self._shadow.append(item)  # recorded at a takeover if the other engine had not written it yet
            while self._shadow and self._shadow[0].receive_time < item.receive_time - SHADOW:
                self._shadow.popleft()
        self.broadcast.publish(item)

    def _publish_alarms(self, events: list[AlarmEvent], force: bool = False) -> list[AlarmEvent]:
        """Alarm events are on disk (one fsync for all of them) before anyone is shown them; if the store fails
        they are shown all the same, and the recorder keeps retrying them. On an engine node only the events of
        the bays it holds go anywhere (`force`: also others; the engine's own decisions for a standby's bays are
        its hot copy of their state)."""
        if not force and self.role != "all":
            held = [e for e in events if self.holds(e.bay)]
            if self.role == "engine" and len(held) < len(events):
                self._keep_shadow_events([e for e in events if not self.holds(e.bay)])
            events = held
        if events:
            try:
                self.store.append_durable(events)
            except StoreError:
                log.exception("store: %d alarm events not written now; the recorder will retry", len(events))
                for event in events:
                    self.recorder.record(event)
            for event in events:
                self.broadcast.publish(event)
            self.notifier.events(events)
        return events

    def _decide(self, item: Observation | TechnicalStatus) -> None:
        if self.role == "dashboard":  # shown as they come; the engines decide and record
            self.broadcast.publish(item)
            return
        self._publish(item)
        try:
            if isinstance(item, Observation):
                if item.replayed:
                    return  # from a gateway's buffer after an outage: recorded at its time, not decided as current
                self.engine.observe(item)
                self._tick_soon()
                return
            events = self.engine.technical(item)
        except Exception:  # a bug in the engine must be seen at the station, not swallowed with the sample
            log.exception("alarm engine failed on %r", item)
            events = self.engine.external(self._engine_failure(item.bay))
        self._publish_alarms(events)

    def _engine_failure(self, bay: str) -> AlarmEvent:
        return AlarmEvent(bay, "engine_failure", "start", "technical", "high", self.clock(),
                          "ALARM ENGINE FAILURE: alarms may be missed; see the server log")

    def emitter(self, device: str) -> Callable[[DeviceEvent], None]:
        if device in self._relayed:
            return lambda event: self.hub.ingest(device, event, self._edge_time(event))
        return lambda event: self.hub.ingest(device, event, self.clock())

    def _edge_time(self, event: DeviceEvent) -> float:
        """The receive time of what a gateway relays: now, as for any monitor, but for a reading it replays from its
        buffer after an outage, when the gateway received it (its `ts`, never later than now), so that it lands at
        its own time in the trace. (Live readings do not depend on the two machines' clocks agreeing.)"""
        now = self.clock()
        if isinstance(event, Reading) and event.replayed and event.device_time is not None:
            return min(event.device_time, now)
        return now

    def _tick_soon(self) -> None:
        """Decide on new observations promptly: one tick for all that arrive within MIN_TICK_GAP."""
        if self._tick_handle is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not on an event loop (a test feeding the hub directly): decide now
            self.tick()
            return
        delay = max(0.0, self._last_tick + MIN_TICK_GAP - loop.time())
        self._tick_handle = loop.call_later(delay, self.tick)

    def tick(self) -> None:
        """Run one engine tick now and publish its events; an engine failure becomes a technical alarm on every
        bay (and is logged) instead of ending the ticks."""
        if self._tick_handle is not None:
            self._tick_handle.cancel()
            self._tick_handle = None
        with contextlib.suppress(RuntimeError):  # no running loop: called from a test
            self._last_tick = asyncio.get_running_loop().time()
        now = self.clock()
        try:
            events = self.engine.tick(now)
        except Exception:
            log.exception("alarm engine tick failed")
            events = [e for bay in self.hub.bays for e in self.engine.external(self._engine_failure(bay))]
        self._publish_alarms([*events, *self._recording_alarms(now), *self._forwarding_alarms(now)])

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(self._until_next_tick())
            self.tick()

    def _until_next_tick(self) -> float:
        """Seconds to the next periodic tick: TICK, or sooner when a device is due to become silent, so that its
        NO DATA is raised `silent_after` after it was last heard rather than up to a TICK later. (Never longer
        than the shortest `silent_after`: a device heard while the ticker sleeps is due no sooner than that.)"""
        silent_in = self.engine.next_silence() - self.clock() + SILENCE_MARGIN
        return min(self._longest_sleep, max(silent_in, MIN_TICK_GAP))

    # --- user actions (the dashboard calls these; each is audited) ------------------------------------------

    def audit(self, who: str, action: str, bay: str | None = None, target: str | None = None,
              before: object = None, after: object = None) -> None:
        """Record a user action now, in its own transaction (an audit record is visible and on disk when the user's
        request returns); if that write fails, the recorder keeps it and retries with the next batch."""
        record = AuditRecord.of(self.clock(), who, action, bay, target, before, after)
        try:
            self.store.append_durable([record])
        except StoreError:
            log.exception("audit: direct write failed; the recorder will retry it")
            self.recorder.record(record)

    def annotate(self, bay: str, who: str, kind: str, text: str, at: float | None = None) -> Annotation:
        """Store a nurse's annotation (before it is shown anywhere), audit it and send it to every page."""
        self._check_bay(bay)
        checked = next((k for k in ANNOTATION_KINDS if k == kind), None)
        if checked is None:
            raise ValueError(f"kind must be one of {', '.join(ANNOTATION_KINDS)} (got {kind!r})")
        text = text.strip()
        if checked == "note" and not text:
            raise ValueError("a note needs text")
        if len(text) > MAX_ANNOTATION:
            raise ValueError(f"text: at most {MAX_ANNOTATION} characters")
        now = self.clock()
        when = now if at is None else at
        if not now - ANNOTATION_BACKDATE <= when <= now + 5:
            raise ValueError(f"time: within the last {ANNOTATION_BACKDATE / 3600:.0f} h and not in the future")
        note = Annotation(self.store.add_annotation(bay, when, who, checked, text), bay, when, who, checked, text)
        self.audit(who, "annotation", bay, checked, after={"id": note.id, "time": when, "text": text})
        self.broadcast.publish(note)
        return note

    def _check_bay(self, bay: str) -> None:
        if bay not in self.hub.bays:
            raise KeyError(f"no bay {bay!r}")
        if not self.holds(bay):
            raise ValueError(f"bay {bay!r} is held by another engine now: ask the dashboard, or that engine")

    def acknowledge(self, bay: str, alarm_id: str, who: str) -> list[AlarmEvent]:
        self._check_bay(bay)
        events = self.engine.acknowledge(bay, alarm_id, who, self.clock())
        self.audit(who, "acknowledge", bay, alarm_id, after=[e.phase for e in events])
        return self._publish_alarms(events)

    def pause_audio(self, bay: str, who: str, seconds: float | None = None) -> list[AlarmEvent]:
        self._check_bay(bay)
        events = self.engine.pause_audio(bay, who, self.clock(), seconds)
        self.audit(who, "audio_pause", bay, after={"seconds": seconds, "alarms": [e.id for e in events]})
        return self._publish_alarms(events)

    def resume_audio(self, bay: str, who: str) -> list[AlarmEvent]:
        self._check_bay(bay)
        events = self.engine.resume_audio(bay, who, self.clock())
        self.audit(who, "audio_resume", bay, after={"alarms": [e.id for e in events]})
        return self._publish_alarms(events)

    def alarm_settings(self, bay: str) -> dict[str, Any]:
        self._check_bay(bay)
        e = self.engine
        return {"bay": bay, "profile": e.profile_name(bay), "overrides": e.overrides(bay),
                "baselines": e.baselines(bay), "effective": e.effective_profile(bay).model_dump(mode="json"),
                "profiles": sorted(e.profiles)}

    def set_alarm_settings(self, bay: str, who: str, profile: str | None = None,
                           overrides: dict[str, dict[str, Any]] | None = None) -> list[AlarmEvent]:
        """Change a bay's profile and/or its patient's overrides; ProfileError (nothing changed) if invalid."""
        self._check_bay(bay)
        e, now = self.engine, self.clock()
        # validate the whole request first, so that a refused one changes nothing (not even a running delay)
        name = profile if profile is not None else e.profile_name(bay)
        if name not in e.profiles:
            raise ProfileError(f"unknown alarm profile {name!r}; known: {', '.join(e.profiles)}")
        if overrides is not None:
            if not all(isinstance(v, dict) for v in overrides.values()):
                raise ProfileError("overrides: give a table of fields to change per vital")
            e.profiles[name].with_overrides(overrides)
        before = {"profile": e.profile_name(bay), "overrides": e.overrides(bay)}
        old_overrides = e.overrides(bay)
        events: list[AlarmEvent] = []
        if overrides is not None:
            events += e.set_overrides(bay, overrides, now)
        if profile is not None:
            try:
                events += e.set_profile(bay, profile, now)
            except ProfileError:
                if overrides is not None:
                    e.set_overrides(bay, old_overrides, now)
                raise
        self.audit(who, "alarm_settings", bay, None, before,
                   {"profile": e.profile_name(bay), "overrides": e.overrides(bay)})
        self.broadcast.publish(SettingsChanged(bay, now, who, "alarm_settings"))
        return self._publish_alarms(events)

    def set_baseline(self, bay: str, vital: str, value: float | None, who: str) -> None:
        self._check_bay(bay)
        before = self.engine.baselines(bay).get(vital)
        self.engine.set_baseline(bay, vital, value, self.clock())
        self.audit(who, "baseline", bay, vital, before, value)
        self.broadcast.publish(SettingsChanged(bay, self.clock(), who, "baseline"))

    # --- infusion sessions (monitor/sessions.py decides what is allowed; here: engine, audit, live) ----------

    def admit(self, bay: str, who: str, fields: dict[str, Any]) -> Session:
        """Admit a patient to a bay: a new session (SessionError if the bay has one open or a field is wrong)."""
        self._check_bay(bay)
        session = self.sessions.admit(bay, self.clock(), who, **fields)
        self._session_changed(None, session, who, "admit", fields)
        return session

    def session_step(self, session_id: str, who: str, step: str, args: dict[str, Any]) -> Session:
        """One step of an open session (checklist, baseline, dose, recovery, aldrete, pain, discharge, end);
        a refused discharge is audited with its reasons too."""
        before = self.sessions.get(session_id)
        self._check_bay(before.bay)
        try:
            after = self.sessions.step(session_id, step, self.clock(), who, args)
        except SessionError as exc:
            if step == "discharge":
                self.audit(who, "session_discharge_refused", before.bay, session_id, after={"reason": str(exc)})
            raise
        self._session_changed(before, after, who, step, args)
        return after

    def session_status(self, session_id: str) -> dict[str, Any]:
        """An open session's state now: what stands between the patient and discharge, the dose given so far."""
        s, now = self.sessions.get(session_id), self.clock()
        return {"readiness": self.sessions.readiness(s, now), "dose_given_mg": s.dose_given_mg(now)}

    def delete_session(self, session_id: str, who: str) -> None:
        """Delete a closed session and its trace (admin); audited with what it was."""
        gone = self.sessions.delete(session_id)
        self.audit(who, "session_delete", gone.bay, session_id,
                   before={"patient_id": gone.patient_id, "admitted_at": gone.admitted_at})

    def _session_changed(self, before: Session | None, after: Session, who: str, step: str,
                         args: dict[str, Any]) -> None:
        now = self.clock()
        self._publish_alarms(self._apply_session(before, after, now, admitted=step == "admit"))
        detail = {**args, "phase": after.phase}
        if after.discharge is not None and step in ("discharge", "end"):
            detail["unmet"] = list(after.discharge.unmet)
        self.audit(who, f"session_{step}", after.bay, after.id,
                   None if before is None else {"phase": before.phase}, detail)
        self.broadcast.publish(SessionChanged(after.bay, now, who, step, after.to_json()))

    def _apply_session(self, before: Session | None, after: Session, now: float,
                       admitted: bool = False) -> list[AlarmEvent]:
        """What a session step means for the alarm engine: a new patient starts from the bay's own profile with
        no personal limits or baselines; a phase switches the profile (`[alarms] phase_profiles`); the baseline
        taken before the infusion becomes the engine's; a closed session hands the bay back clean."""
        e, bay = self.engine, after.bay
        events: list[AlarmEvent] = []
        if admitted or not after.open:
            events += self._reset_bay(bay, now)
        if after.open and (before is None or before.phase != after.phase):
            events += e.phase_changed(bay, after.phase, now)
        if after.baseline and (before is None or before.baseline != after.baseline):
            for vital, value in after.baseline.items():
                e.set_baseline(bay, vital, value, now)
        return events

    def _reset_bay(self, bay: str, now: float) -> list[AlarmEvent]:
        """The bay's own profile, no personal limits, no baselines: as for a new patient, or a bay handed back."""
        e = self.engine
        default = next((b.profile for b in self.config.bays if b.id == bay), None) or self.config.alarms.profile
        events = e.set_overrides(bay, {}, now)
        events += e.set_profile(bay, default, now)
        for vital in e.baselines(bay):
            e.set_baseline(bay, vital, None, now)
        return events

    def _readings(self, bay: str, since: float, until: float) -> dict[str, list[tuple[float, float]]]:
        """A bay's recorded readings per vital (what the recorder still holds is written first)."""
        self.recorder.flush()
        return {k: list(zip(t.time.tolist(), t.value.tolist(), strict=True))
                for k, t in self.store.trends(bay, since, until).items()}

    def _recording_alarms(self, now: float) -> list[AlarmEvent]:
        """RECORDING FAILED on every bay while the recorder's writes keep failing; ended when they succeed."""
        failing = self.recorder.consecutive_failures >= RECORDING_FAILURES
        if failing == self._recording_failed:
            return []
        self._recording_failed = failing
        phase: Literal["start", "end"] = "start" if failing else "end"
        return [e for bay in self.hub.bays for e in self.engine.external(AlarmEvent(
            bay, "recording_failed", phase, "technical", "medium", now,
            "RECORDING FAILED: vitals are not being saved; see the server log"))]

    def _forwarding_alarms(self, now: float) -> list[AlarmEvent]:
        """ALARM FORWARDING TO <target> FAILING on every bay while alarms cannot be delivered to it for
        `[notify] failing_after` seconds; ended when they are delivered again."""
        failing = set(self.notifier.failing(now))
        out: list[AlarmEvent] = []
        for name in sorted(failing ^ self._forwarding_failed):
            phase: Literal["start", "end"] = "start" if name in failing else "end"
            out += [e for bay in self.hub.bays for e in self.engine.external(AlarmEvent(
                bay, f"forwarding_failed:{name}", phase, "technical", "medium", now,
                f"ALARM FORWARDING TO {name.upper()} FAILING: alarms are not reaching it; see the server log"))]
        self._forwarding_failed = failing
        return out

    # --- a node of a deployment beyond one server (docs/deployment.md) -----------------------------------

    def _heartbeat_extra(self) -> dict[str, Any]:
        """What an engine's heartbeat says besides `online`: its role and the wards it holds now."""
        if self.role != "engine" or self.ownership is None:
            return {"role": self.role}
        return {"role": "engine", "wards": sorted(self.ownership.held)}

    def _cluster_status(self) -> dict[str, Any]:
        """For /api/health on a node: the MQTT link to the other nodes and, on an engine, the wards it holds."""
        body: dict[str, Any] = {"role": self.role, "node": self.config.node,
                                "link": self.link is not None and self.link.connected}
        if self.ownership is not None:
            body["wards"] = sorted(self.ownership.held)
        return body

    def _start_engine_node(self, broker: Broker) -> list[asyncio.Task[None]]:
        """An engine reads its peers' heartbeats, its bays' retained alarm snapshots (what to rebuild from when it
        takes a ward) and the commands for its bays; and decides again and again which wards it holds."""
        own = self.ownership
        assert own is not None
        site = self.config.site
        topics = [heartbeat_topic(site, peer) for peer in own.peer_names()]
        for bay in self.hub.bays:
            topics += [alarms_topic(site, bay), alarm_events_topic(site, bay), command_topic(site, bay)]
        self.mirror = AlarmMirror(self.hub.bays, self.engine.life.settings)  # the holders' snapshots, for the pages
        self.link = MqttLink(broker, f"{self.config.node}-cluster", topics, self._on_engine_message,
                             on_connect=lambda: self._listening(True), on_disconnect=lambda: self._listening(False))
        return [asyncio.create_task(self.link.run(), name="cluster-link"),
                asyncio.create_task(self._ownership_loop(), name="ownership")]

    def _listening(self, up: bool) -> None:
        assert self.ownership is not None
        self.ownership.listening(self.clock() if up else None)
        self._ownership_wake.set()

    def _on_engine_message(self, topic: str, payload: bytes, retained: bool = False) -> None:
        own, site = self.ownership, self.config.site
        assert own is not None
        body = loads(payload)
        if body is None:
            return
        for peer in own.peer_names():
            if topic == heartbeat_topic(site, peer):
                own.heartbeat(peer, body, None if retained else self.clock())
                if body.get("state") == "online" and isinstance(body.get("time"), int | float):
                    self._peer_online_at[peer] = float(body["time"])
                self._ownership_wake.set()
                return
        bay = topic.split("/")[4] if topic.count("/") >= 5 else ""
        if bay not in self.hub.bays:
            return
        if topic == alarms_topic(site, bay):
            self._snapshots[bay] = body
            changed = self.mirror.snapshot(body) if self.mirror is not None else None
            if changed and not self.holds(bay):  # this engine's own pages show the holder's picture of the bay
                for event in changed:
                    self.broadcast.publish(event)
        elif topic == alarm_events_topic(site, bay) and not self.holds(bay):
            self._follow(bay, body)
            with contextlib.suppress(KeyError, TypeError):
                self.broadcast.publish(event_from(body))
            if isinstance(body.get("id"), str) and isinstance(body.get("phase"), str) \
                    and isinstance(body.get("time"), int | float):
                self._heard_events.append((bay, body["id"], body["phase"], float(body["time"])))
                while self._heard_events and self._heard_events[0][3] < self.clock() - SHADOW:
                    self._heard_events.popleft()
        elif topic == command_topic(site, bay) and self.holds(bay):
            reply = execute_command(body, self.config.node or "", self._command, bay)
            to = body.get("reply_to")
            if isinstance(to, str) and to.startswith(f"{PREFIX}/{site}/service/") and to.endswith("/replies") \
                    and to.count("/") == 5 and self.link is not None:
                task = asyncio.get_running_loop().create_task(self.link.publish(to, reply))
                task.add_done_callback(_log_failure)

    def _follow(self, bay: str, body: dict[str, Any]) -> None:
        """A standby's hot copy follows what nurses did at the engine holding the bay: an acknowledgement there (or
        the reset of a latched alarm: its end, by a user), an audio pause or resume, is made here too, silently (the
        holder told everyone), so that a takeover does not sound again what a nurse has silenced."""
        by, alarm_id, phase, now = body.get("by"), body.get("id"), body.get("phase"), self.clock()
        if not isinstance(by, str) or not isinstance(alarm_id, str):
            return
        with contextlib.suppress(KeyError, ValueError):  # the copy had not raised it (yet): nothing to follow
            if phase in ("acknowledged", "end"):
                self.engine.acknowledge(bay, alarm_id, by, now)
            elif phase == "audio_paused" and isinstance(body.get("until"), int | float) and body["until"] > now:
                self.engine.pause_audio(bay, by, now, min(float(body["until"]) - now,
                                                          self.engine.life.settings.audio_pause))
            elif phase == "audio_resumed":
                self.engine.resume_audio(bay, by, now)

    def _command(self, bay: str, action: str, body: dict[str, Any]) -> list[AlarmEvent]:
        """A dashboard node's command, carried out as if asked on this engine's own page (and audited so)."""
        who = str(body["who"])
        if action == "acknowledge":
            return self.acknowledge(bay, str(body.get("alarm_id")), who)
        if action == "audio_pause":
            seconds = body.get("seconds")
            return self.pause_audio(bay, who, float(seconds) if isinstance(seconds, int | float) else None)
        return self.resume_audio(bay, who)

    async def _ownership_loop(self) -> None:
        own = self.ownership
        assert own is not None
        while True:
            now = self.clock()
            gained, lost = own.decide(now)
            for ward in lost:
                await self._guarded(ward, "giving up", self._lose(ward))
            for ward in gained:
                await self._guarded(ward, "taking over", self._gain(ward))
            if (gained or lost) and self.notifier.mqtt is not None:
                self.notifier.mqtt.beat_now()
            if self.notifier.mqtt is not None:
                for ward in own.contested(now):  # the peer says it holds it too: this engine's picture stands
                    for bay in self._bays_of(ward):
                        self.notifier.mqtt.changed(bay)
            self._ownership_wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ownership_wake.wait(),
                                       max(0.05, min(1.0, own.next_change(self.clock()) - self.clock())))

    async def _guarded(self, ward: str, what: str, step: Coroutine[Any, Any, None]) -> None:
        """A takeover or hand-back that fails on a bug must not end the ownership task in silence: the ward's bays
        show ALARM ENGINE FAILURE, their snapshots are published again, and ownership goes on."""
        try:
            await step
        except Exception:
            log.exception("%s ward %s failed", what, ward)
            events = [e for bay in self._bays_of(ward) for e in self.engine.external(self._engine_failure(bay))]
            self._publish_alarms(events, force=True)
            if self.notifier.mqtt is not None:
                for bay in self._bays_of(ward):
                    self.notifier.mqtt.changed(bay)

    def _bays_of(self, ward: str) -> list[str]:
        return [b for b, w in self._ward_of.items() if w == ward]

    async def _gain(self, ward: str) -> None:
        """This engine now holds `ward`: rebuild what its bays' alarms are from the retained snapshots and the store
        against this engine's own hot copy, record the readings the previous holder had not written, reload the
        open sessions, and, taking over from a primary, say so with a technical alarm on each bay. What it reads of
        the store it reads in a worker thread, so the other wards' alarms are not held up meanwhile."""
        own = self.ownership
        assert own is not None
        bays = self._bays_of(ward)
        log.warning("engine %s now holds ward %s (bays %s)", self.config.node, ward, ", ".join(bays))
        snapshots = {bay: self._snapshots.get(bay, {}) for bay in bays}  # the previous holder's, not this engine's
        left_open, recorded, sessions = await asyncio.to_thread(self._takeover_reads, bays, self.clock())
        now = self.clock()
        primary = next((w.engine for w in own.wards if w.id == ward), "")
        peer = primary if primary != self.config.node else next((w.standby for w in own.wards if w.id == ward), None)
        events = self._gap_events(bays, peer)  # what this engine decided that no engine said
        for bay in bays:
            said_after = [(i, ph, t) for b, i, ph, t in self._heard_events if b == bay]
            said_after += [(e.id, e.phase, e.time) for e in events if e.bay == bay]
            published = published_alarms(bay, snapshots[bay], said_after)
            left = {e.id: e for e in left_open if e.bay == bay}
            events += reconcile(self.engine, bay, published, left, now, self.config.node or "")
        self._record_shadow(bays, recorded)
        if sessions is not None:  # (None: the store could not be read: the copy's sessions stay)
            had = {bay: self.sessions.open.get(bay) for bay in bays}
            adopted = self.sessions.adopt(bays, sessions)
            for bay in bays:
                old, session = had.get(bay), adopted.get(bay)
                if session is None:
                    if old is not None:  # closed at the other engine meanwhile: the bay is handed back clean
                        events += self._reset_bay(bay, now)
                    continue
                new_patient = old is None or old.id != session.id  # admitted at the other engine meanwhile
                events += self._apply_session(None if new_patient else old, session, now, admitted=new_patient)
        if primary != self.config.node:
            self._takeovers[ward] = primary
            for bay in bays:
                events += self.engine.external(AlarmEvent(
                    bay, f"takeover:{primary}", "start", "technical", "low", now,
                    f"ENGINE {primary.upper()} DOWN: {self.config.node} has taken over {ward}"))
        self._publish_alarms(events)
        if self.notifier.mqtt is not None:
            for bay in bays:
                self.notifier.mqtt.changed(bay)

    def _keep_shadow_events(self, events: list[AlarmEvent]) -> None:
        """This engine's decisions for bays another engine holds, kept SHADOW s for a takeover (`_gap_events`)."""
        self._shadow_events.extend(events)
        newest = max(e.time for e in events)
        while self._shadow_events and self._shadow_events[0].time < newest - SHADOW:
            self._shadow_events.popleft()

    def _gap_events(self, bays: list[str], peer: str | None) -> list[AlarmEvent]:
        """The events this engine decided for `bays` since shortly before `peer` (the engine that held them) was
        last heard alive, that `peer` did not publish: alarms that came (and went) while no engine published the
        ward. They are published at the takeover with their own times. (Same alarm, same phase, within MATCH s: the
        same decision, however the two copies' timing differed.)"""
        wanted = set(bays)
        alive_at = self._peer_online_at.get(peer, -math.inf) if peer is not None else -math.inf
        since = alive_at - 2 * self.config.notify.heartbeat_interval
        gap = unsaid((e for e in self._shadow_events if e.bay in wanted), self._heard_events, since)
        self._shadow_events = deque(e for e in self._shadow_events if e.bay not in wanted)
        if gap:
            log.warning("takeover: %d alarm events decided while no engine published bays %s", len(gap),
                        ", ".join(sorted({e.bay for e in gap})))
        return gap

    def _takeover_reads(self, bays: list[str], now: float
                        ) -> tuple[list[AlarmEvent], dict[tuple[str, str], float], dict[str, Session] | None]:
        """What a takeover reads of the store (in a worker thread): the alarms left open on `bays`, the time of the
        last recorded reading per (bay, vital) in the last SHADOW s, the open sessions. A store that cannot be read
        gives nothing of that part (logged): the takeover goes on with the hot copy and the snapshots."""
        wanted = set(bays)
        left_open: list[AlarmEvent] = []
        recorded: dict[tuple[str, str], float] = {}
        sessions: dict[str, Session] | None = None
        try:
            left_open = [e for e in self.store.unended_alarms(now - RESTART_LOOKBACK) if e.bay in wanted]
            for bay in bays:
                for vital, trend in self.store.trends(bay, now - SHADOW, now + 60).items():
                    if len(trend.time):
                        recorded[(bay, vital)] = float(trend.time[-1])
            sessions = self.sessions.stored_open(wanted)
        except StoreError:
            log.exception("takeover of bays %s: could not read the store", ", ".join(bays))
        return left_open, recorded, sessions

    async def _lose(self, ward: str) -> None:
        """Another engine holds `ward` now: end this engine's takeover alarm there (said while it still may)."""
        log.warning("engine %s no longer holds ward %s", self.config.node, ward)
        primary = self._takeovers.pop(ward, None)
        if primary is None:
            return
        now = self.clock()
        events = [e for bay in self._bays_of(ward) for e in self.engine.external(AlarmEvent(
            bay, f"takeover:{primary}", "end", "technical", "low", now,
            f"ENGINE {primary.upper()} DOWN: {self.config.node} has taken over {ward}"))]
        self._publish_alarms(events, force=True)

    def _record_shadow(self, bays: list[str], recorded: dict[tuple[str, str], float]) -> None:
        """Record the readings of `bays` that arrived after the previous holder's last written one (`recorded`: per
        bay and vital; it may have died with them in its recorder's batch)."""
        wanted = set(bays)
        keep: deque[Observation] = deque()
        for obs in self._shadow:
            if obs.bay not in wanted:
                keep.append(obs)
            elif obs.receive_time > recorded.get((obs.bay, obs.vital), -math.inf):
                self.recorder.record(obs)
        self._shadow = keep

    def _start_dashboard_node(self, broker: Broker) -> list[asyncio.Task[None]]:
        """A dashboard shows the bays' alarms from the engines' retained snapshots and event streams, and asks the
        holding engine to carry out acknowledgements and audio pauses."""
        site, node = self.config.site, self.config.node or "dashboard"
        wards = {w.id: w for w in wards_from(self.config.wards)}
        mirror = self.mirror = AlarmMirror(self.hub.bays, self.engine.life.settings, wards, self._ward_of)
        topics = [reply_topic(site, node), *(heartbeat_topic(site, e) for e in mirror.engines())]
        for bay in self.hub.bays:
            topics += [alarms_topic(site, bay), alarm_events_topic(site, bay)]

        def listening(up: bool) -> None:
            mirror.listening_since = self.clock() if up else None

        self.link = MqttLink(broker, f"{node}-alarms", topics, self._on_dashboard_message,
                             on_connect=lambda: listening(True), on_disconnect=lambda: listening(False))
        self.remote = RemoteActions(site, node, self.link.publish)
        return [asyncio.create_task(self.link.run(), name="cluster-link"),
                asyncio.create_task(self._watch_engines(), name="engine-watch")]

    async def _watch_engines(self) -> None:
        """Once a second: NO ALARM ENGINE on the bays of a ward that no live engine holds (AlarmMirror.check)."""
        assert self.mirror is not None
        await asyncio.sleep(GRACE)  # the retained heartbeats arrive first
        while True:
            for event in self.mirror.check(self.clock()):
                if event.phase == "start":
                    log.error("bay %s: %s", event.bay, event.message)
                self.broadcast.publish(event)
            await asyncio.sleep(1.0)

    def _on_dashboard_message(self, topic: str, payload: bytes, retained: bool = False) -> None:
        assert self.mirror is not None and self.remote is not None
        body = loads(payload)
        if body is None:
            return
        site = self.config.site
        if topic == reply_topic(site, self.config.node or "dashboard"):
            self.remote.reply(body)
            return
        for engine in self.mirror.engines():
            if topic == heartbeat_topic(site, engine):
                self.mirror.heartbeat(engine, body, None if retained else self.clock())
                return
        bay = topic.split("/")[4] if topic.count("/") >= 5 else ""
        if bay not in self.hub.bays:
            return
        if topic == alarms_topic(site, bay):
            for event in self.mirror.snapshot(body) or []:
                self.broadcast.publish(event)
        elif topic == alarm_events_topic(site, bay):
            try:
                event = event_from(body)
            except (KeyError, TypeError):
                log.warning("ignored a malformed alarm event for bay %s", bay)
                return
            self.broadcast.publish(event)

    # --- running ------------------------------------------------------------------------------------------

    def stop(self) -> None:
        self._stop.set()

    async def until_stopped(self) -> None:
        """Return once the service is told to stop (stop(), SIGINT, SIGTERM), before it shuts down."""
        await self._stop.wait()

    async def run(self) -> None:
        cfg = self.config
        stop_on_signals(self.stop)
        broker: PrivateMosquitto | None = None
        tasks: list[asyncio.Task[None]] = []
        server: uvicorn.Server | None = None
        sock: socket.socket | None = None
        try:
            sock = listen_socket(cfg.http.host, cfg.http.port)
            self.bound_port = sock.getsockname()[1]
            mqtt_host, mqtt_port = "127.0.0.1", 1883
            if cfg.mqtt.private:
                broker = PrivateMosquitto()
                await asyncio.to_thread(broker.start)
                mqtt_host, mqtt_port = broker.host, broker.port
                log.info("private Mosquitto on %s", broker.url)
            elif cfg.mqtt.url:
                mqtt_host, mqtt_port = host_port(cfg.mqtt.url)

            for bay in cfg.bays:
                for dev in bay.devices:
                    port = dev.port
                    if dev.simulate:
                        port, sim = self.simulated.device(dev, bay, mqtt_host, mqtt_port)
                        tasks.append(asyncio.create_task(sim, name=f"sim-{dev.id}"))
                    driver = driver_class(dev.driver)(device_settings(cfg, dev, port, mqtt_host, mqtt_port))
                    self.drivers.append(driver)
                    tasks.append(asyncio.create_task(supervise(driver, self.emitter(dev.id)), name=f"drv-{dev.id}"))

            if cfg.notify.mqtt and (cfg.mqtt.private or cfg.mqtt.url):
                m = cfg.mqtt
                self.notifier.attach_mqtt(MqttAlarmOutput(
                    Broker(mqtt_host, mqtt_port, m.username, m.password, m.tls, m.ca_file, m.cert_file, m.key_file),
                    cfg.site, cfg.notify.instance, list(self.hub.bays), self.outbox, self._alarm_snapshot,
                    heartbeat_interval=cfg.notify.heartbeat_interval, clock=self.clock,
                    publishes=self.holds, heartbeat_extra=self._heartbeat_extra))
                self.alarm_broker = f"mqtt://{mqtt_host}:{mqtt_port}"
            for output in self.notifier.outputs.values():
                tasks.append(asyncio.create_task(_keep_running(output, self.clock), name=f"notify-{output.target}"))

            m = cfg.mqtt
            broker_of_nodes = Broker(mqtt_host, mqtt_port, m.username, m.password, m.tls, m.ca_file, m.cert_file,
                                     m.key_file)
            node_tasks: list[asyncio.Task[None]] = []  # a node's links are core: one failing stops the process
            if self.role == "engine":
                node_tasks = self._start_engine_node(broker_of_nodes)
            elif self.role == "dashboard":
                node_tasks = self._start_dashboard_node(broker_of_nodes)
            tasks += node_tasks
            view: AlarmView = self.engine
            if self.role == "dashboard" and self.mirror is not None:
                view = self.mirror
            elif self.role == "engine" and self.mirror is not None:
                view = HeldView(self.engine, self.mirror, self.holds)
            sources = LiveSources(cfg.site, self.hub, view, self.broadcast, self.db,
                                  self.store, self.recorder, actions=None if self.role == "dashboard" else self,
                                  sessions=self.sessions.open, forwarding=self.notifier.status, remote=self.remote,
                                  cluster=self._cluster_status if self.role != "all" else None)
            app = create_app(sources)
            server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off",
                                                   ws_ping_interval=10, ws_ping_timeout=10))
            core = [asyncio.create_task(self._ticker(), name="ticker"),
                    asyncio.create_task(self.recorder.run(), name="recorder"),
                    asyncio.create_task(server.serve(sockets=[sock]), name="http")]
            tasks += core
            core += node_tasks
            self.started.set()
            tune_garbage_collector()
            asyncio.get_running_loop().call_later(GC_SETTLE, gc.freeze)  # what the devices' connections made
            await until_stopped_or_failed(self._stop, core)
        finally:
            if server is not None:
                server.should_exit = True
            if self._tick_handle is not None:
                self._tick_handle.cancel()
            await cancel_all(tasks)
            if sock is not None:
                sock.close()  # uvicorn closes it when it served; not when start-up failed before that
            self.simulated.close()
            if broker is not None:
                await asyncio.to_thread(broker.close)
            self.close()

    def close(self) -> None:
        """Write what the recorder holds and close the store, the outbox and the accounts database."""
        self.recorder.close()
        self.store.close()
        self.outbox.close()
        self.db.close()

    def _alarm_snapshot(self, bay: str) -> dict[str, Any]:
        """What the MQTT output publishes, retained, for `bay`: its active alarms now."""
        return snapshot_json(self.config.site, bay, self.hub.bays[bay].bay.name, self.engine.active(bay), self.clock())

    def simulated_patient(self, bay: str) -> tuple[PatientModel, float] | None:
        """The simulated patient of `bay` and the clock() time its simulators count from (their session time
        t = clock() - origin); None when the bay has no simulated device or they have not started yet."""
        return self.simulated.patient(bay)


async def _keep_running(output: Output, clock: Callable[[], float]) -> None:
    """Run an alarm output; one that fails on a bug is logged, counted as failing (so its technical alarm comes
    up after `failing_after`) and started again a second later."""
    while True:
        try:
            await output.run()
        except Exception:
            log.exception("alarm output %s failed; starting it again", output.target)
            if output.failing_since is None:
                output.failing_since = clock()
        await asyncio.sleep(1.0)


def build_engine(cfg: BedsideConfig) -> AlarmEngine:
    """The alarm engine the config describes: its profiles (built-in and the clinic's), each bay's, the lifecycle
    settings. ServiceError names what is wrong."""
    a = cfg.alarms
    try:
        profiles = load_profiles(a.profiles_dir)
        lifecycle = LifecycleSettings(frozenset(a.latching), a.audio_pause, a.reminder_after,
                                      {p: tuple(t) for p, t in a.escalate_after.items()})
        return AlarmEngine(
            [b.id for b in cfg.bays],
            [WatchedDevice(d.id, b.id, d.silent_after) for b in cfg.bays for d in b.devices],
            profiles=profiles, default_profile=a.profile,
            bay_profiles={b.id: b.profile for b in cfg.bays if b.profile is not None},
            lifecycle=lifecycle, phase_profiles=a.phase_profiles)
    except (ProfileError, ValueError) as exc:
        raise ServiceError(f"alarms: {exc}") from None



def node_view(cfg: BedsideConfig) -> BedsideConfig:
    """The config as an engine or dashboard node serves it: the bays of its wards (an engine: those it owns and
    those it stands by for; a dashboard: its `wards`, default all), every device read over MQTT under its own id
    (a gateway publishes the serial ones; simulators run there). Other roles: unchanged."""
    if cfg.role not in ("engine", "dashboard"):
        return cfg
    if cfg.role == "engine":
        primary, standby = cfg.wards_of(cfg.node or "")
        wards = {w.id for w in [*primary, *standby]}
    else:
        node = cfg.node_config()
        wards = set(node.wards) if node is not None and node.wards is not None else {w.id for w in cfg.wards}
    bays = [b.model_copy(update={"devices": [d.model_copy(update={"driver": "mqtt", "port": None, "simulate": False})
                                             for d in b.devices]})
            for b in cfg.bays if b.ward in wards]
    update: dict[str, Any] = {"bays": bays}
    if cfg.role == "dashboard":  # alarm outputs are the engines'
        update["notify"] = cfg.notify.model_copy(update={"mqtt": False, "targets": []})
    return cfg.model_copy(update=update)



def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("could not answer a command: %s", task.exception())
