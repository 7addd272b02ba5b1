"""The `gateway` role's publishing side: device events in, bedside/v1 MQTT messages out, buffered on disk.

A gateway runs device drivers near the monitors and publishes what they decode over MQTT in schema `bedside/v1`
(drivers/schemas/bedside-v1.schema.json), so that an engine elsewhere reads each device with the ordinary `mqtt`
driver (drivers/mqtt_driver.py) under the same device id. `Gateway.emitter(device_id)` is what
`drivers.supervise.supervise(driver, emit)` gets for that device; `Gateway.run()` keeps the broker connection.

Per device, the events emitted within one event-loop iteration (a codec decodes several at once) become one
numerics message on `bedside/v1/<site>/dev/<device>/numerics`: `ts` (the gateway's clock when it received them:
the receive time at the bedside, which an engine records them at, so that what was buffered through an outage
lands at its own time in the trace; a monitor's own clock is often unset), `seq` (per device, kept on disk, so it
keeps increasing across restarts), `values`, `status` (vital-level conditions) and `device_status` (device-level
conditions). The decoder (drivers/mqtt_numerics.py) treats a condition missing from a message as ended, so every
message carries all of the device's active conditions; a condition change alone is a message too. Two readings of
one vital in one iteration are not merged (a value would be lost): they go in consecutive messages. The
supervisor's link state (DEVICE_LOST, vital None) is the device's presence instead: retained `offline` / `online`
on `.../state`.

Every message is on disk before it is sent: SQLite (WAL, synchronous=FULL) `<data_dir>/gateway-buffer.db`, one row
per message, in order. The messages of one loop iteration are written in one transaction, by one worker thread, so
the event loop never waits for an fsync. The sender publishes the oldest rows first, up to 100 at a time without
waiting for each acknowledgement (QoS 1), and deletes the leading run the broker acknowledged; the rest is sent
again after the reconnect, in order (at least once: a consumer may see a repeat, with its `seq`). While the broker is
unreachable the rows wait; past `max_buffered` rows the oldest are dropped, counted and logged (the `seq` gap
shows the consumer the loss). Rows left by a previous run are sent after a restart.

The gateway's own retained heartbeat (`alerts.notify.payloads.heartbeat_topic(site, node)`, with `"role":
"gateway"` and the number of buffered messages) says `online` every `heartbeat_interval` s; its last will and a
clean stop say `offline`. On every (re)connect the current presence of every device is queued again behind the
buffer, so a broker that restarted without persistence has it again. Limits: `status` carries one condition per
vital, so when a device reports two for the same vital, the more serious one is sent (`_PRECEDENCE`); the detail
texts stay on the gateway; a gateway that dies leaves its devices' last `online` retained (its last will is its
heartbeat): a consumer sees that through the heartbeat, or through no data.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt

from alerts.notify.mqtt_out import Broker, acknowledged_run
from alerts.notify.payloads import heartbeat_json, heartbeat_topic
from drivers.codec import ConditionKey
from drivers.mqtt_numerics import numerics_topic, state_topic
from monitor.model import Condition, DeviceEvent, Reading

log = logging.getLogger(__name__)

FILE = "gateway-buffer.db"
SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    retain INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sequences (
    device TEXT PRIMARY KEY,
    seq INTEGER NOT NULL
) WITHOUT ROWID;
"""
BACKOFF = (0.5, 1.0, 2.0)  # s between connection attempts: data flows again within 2 s of the broker's return
PUBLISH_TIMEOUT = 10.0  # s for the broker to acknowledge one message
REPLAYED_AFTER = 5.0  # s: a message older than this when it is sent is marked replayed (`_marked`)
IN_FLIGHT = 100  # messages published before their acknowledgements are awaited
DROP_LOG_EVERY = 60.0  # s between warnings about messages dropped over the limit

# When a device reports several conditions for one vital, `status` (one per vital) carries the first of these.
_PRECEDENCE: tuple[Condition, ...] = (Condition.SENSOR_OFF, Condition.SENSOR_FAULT, Condition.NO_DATA,
                                      Condition.DEVICE_LOST, Condition.SIGNAL_QUALITY, Condition.INVALID_VALUE)


@dataclass(frozen=True, slots=True)
class _Message:
    topic: str
    payload: bytes
    retain: bool
    device: str | None = None  # with seq: the numerics counter to keep on disk
    seq: int | None = None


@dataclass(slots=True)
class _Group:
    """The numerics message being gathered for one device in this loop iteration."""

    received: float  # the gateway's clock when the first of its events arrived: the edge's receive time
    values: dict[str, float] = field(default_factory=dict)
    changed: set[ConditionKey] = field(default_factory=set)


@dataclass(slots=True)
class _Device:
    id: str
    numerics: str
    state: str
    active: dict[ConditionKey, str] = field(default_factory=dict)  # conditions now, device_lost aside
    online: bool | None = None  # presence last reported (None: not yet)
    group: _Group | None = None


class Gateway:
    """Publishes device events as bedside/v1 MQTT messages through an ordered on-disk buffer."""

    def __init__(self, data_dir: Path, broker: Broker, site: str, node: str, *,
                 heartbeat_interval: float = 5.0, clock: Callable[[], float] = time.time,
                 max_buffered: int = 2_000_000) -> None:
        if max_buffered < 1:
            raise ValueError(f"max_buffered must be at least 1, got {max_buffered}")
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / FILE
        self.broker = broker
        self.site = site
        self.node = node
        self.interval = heartbeat_interval
        self.clock = clock
        self.max_buffered = max_buffered
        self.backoff: tuple[float, ...] = BACKOFF
        self.connected = False
        self.published = 0
        self.dropped = 0
        self.failing_since: float | None = None
        self.last_error: str | None = None
        self._devices: dict[str, _Device] = {}
        self._queue: list[_Message] = []  # sealed, not yet on disk (guarded by _qlock)
        self._qlock = threading.Lock()
        self._dblock = threading.Lock()  # one writer at a time, so rows go to disk in the order they were sealed
        self._writing = False
        self._flush_scheduled = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gateway-buffer")
        self._dropped_logged_at = -math.inf
        self._closed = False
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        try:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.executescript(SCHEMA)
            self._seq: dict[str, int] = dict(self._conn.execute("SELECT device, seq FROM sequences").fetchall())
            self._rows: int = self._conn.execute("SELECT count(*) FROM messages").fetchone()[0]
        except sqlite3.Error:
            self._conn.close()
            raise
        if self._rows:
            log.info("gateway: %d messages buffered by a previous run will be sent first", self._rows)

    # ---- the device side ------------------------------------------------------------------------------------

    def emitter(self, device_id: str) -> Callable[[DeviceEvent], None]:
        """The `emit` of one device's supervised driver."""
        device = self._devices.get(device_id)
        if device is None:
            device = self._devices[device_id] = _Device(device_id, numerics_topic(self.site, device_id),
                                                        state_topic(self.site, device_id))
        dev = device

        def emit(event: DeviceEvent) -> None:
            self._event(dev, event)

        return emit

    def _event(self, dev: _Device, event: DeviceEvent) -> None:
        if self._closed:
            log.warning("gateway closed: %s's %r is not sent", dev.id, event)
            return
        if isinstance(event, Reading):
            if not math.isfinite(event.value):
                log.warning("gateway: %s sent a non-finite %s, not published", dev.id, event.vital)
                return
            g = dev.group
            if g is not None and event.vital in g.values:
                self._seal(dev)  # merging would lose a value: a message of its own
                g = None
            if g is None:
                g = dev.group = _Group(self.clock())
            g.values[event.vital] = event.value
        elif event.condition is Condition.DEVICE_LOST and event.vital is None:
            if dev.group is not None:
                self._seal(dev)
            dev.online = not event.active
            self._put(self._presence(dev))
        else:
            key: ConditionKey = (event.condition, event.vital)
            if (key in dev.active) == event.active:
                return  # no change
            if dev.group is not None and key in dev.group.changed:
                self._seal(dev)  # it changed back within the iteration: keep both changes on the wire
            if event.active:
                dev.active[key] = event.detail
            else:
                del dev.active[key]
            if dev.group is None:
                dev.group = _Group(self.clock())
            dev.group.changed.add(key)
        self._schedule()

    def _presence(self, dev: _Device) -> _Message:
        return _Message(dev.state, b"online" if dev.online else b"offline", True)

    def _seal(self, dev: _Device) -> None:
        """Turn the device's gathered group into its numerics message (queued for the disk)."""
        g, dev.group = dev.group, None
        if g is None:
            return
        seq = self._seq.get(dev.id, -1) + 1
        self._seq[dev.id] = seq
        status: dict[str, str] = {}
        device_status: list[str] = []
        for cond in _PRECEDENCE:
            for c, vital in dev.active:
                if c is not cond:
                    continue
                if vital is None:
                    device_status.append(cond.value)
                else:
                    status.setdefault(vital, cond.value)
        body: dict[str, Any] = {"ts": g.received, "seq": seq, "values": g.values}
        if status:
            body["status"] = status
        if device_status:
            body["device_status"] = device_status
        payload = json.dumps(body, separators=(",", ":"), allow_nan=False).encode()
        self._put(_Message(dev.numerics, payload, False, dev.id, seq))

    def _put(self, message: _Message) -> None:
        with self._qlock:
            self._queue.append(message)

    def _schedule(self) -> None:
        """Write what this loop iteration gathered once it ends; at once when no loop runs."""
        if self._flush_scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._flush(None)
            return
        self._flush_scheduled = True
        loop.call_soon(self._flush, loop)

    def _flush(self, loop: asyncio.AbstractEventLoop | None) -> None:
        self._flush_scheduled = False
        if self._closed:
            return  # close() wrote everything
        for dev in self._devices.values():
            if dev.group is not None:
                self._seal(dev)
        if loop is None:
            self._write_queued()
            return
        self._loop = loop
        with self._qlock:
            if self._writing or not self._queue:
                return
            self._writing = True
        loop.run_in_executor(self._executor, self._write_job).add_done_callback(self._written)

    def _written(self, future: asyncio.Future[None]) -> None:
        if not future.cancelled() and future.exception() is not None:
            log.error("gateway: writing the buffer failed", exc_info=future.exception())
        if self._wake is not None:
            self._wake.set()

    def _write_job(self) -> None:
        """In the worker thread: write what is queued, in transactions, until the queue is empty."""
        try:
            while self._write_queued():
                pass
        finally:
            with self._qlock:
                self._writing = False
                again = bool(self._queue)
            if again and self._loop is not None:  # queued between the last take and the flag
                with contextlib.suppress(RuntimeError):
                    self._loop.call_soon_threadsafe(self._flush, self._loop)

    def _write_queued(self) -> int:
        """Write every queued message in one transaction (dropping the oldest rows over the limit); how many."""
        with self._dblock:
            with self._qlock:
                items, self._queue = self._queue, []
            if not items:
                return 0
            seqs = {m.device: m.seq for m in items if m.device is not None and m.seq is not None}
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                self._conn.executemany("INSERT INTO messages (topic, payload, retain) VALUES (?, ?, ?)",
                                       [(m.topic, m.payload, int(m.retain)) for m in items])
                self._conn.executemany("INSERT INTO sequences (device, seq) VALUES (?, ?) "
                                       "ON CONFLICT (device) DO UPDATE SET seq = excluded.seq", list(seqs.items()))
                over = self._rows + len(items) - self.max_buffered
                if over > 0:
                    self._conn.execute("DELETE FROM messages WHERE id IN "
                                       "(SELECT id FROM messages ORDER BY id LIMIT ?)", (over,))
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
                self.dropped += len(items)
                self.last_error = f"buffer: {type(exc).__name__}: {exc}"
                log.error("gateway: %s: could not buffer %d messages, dropped: %s", self.path, len(items), exc)
                return len(items)
            self._rows += len(items) - max(over, 0)
            if over > 0:
                self.dropped += over
                now = time.monotonic()
                if now - self._dropped_logged_at >= DROP_LOG_EVERY:
                    self._dropped_logged_at = now
                    log.warning("gateway: buffer full (%d messages): dropped the %d oldest, %d dropped in all",
                                self.max_buffered, over, self.dropped)
            return len(items)

    def _oldest(self, limit: int) -> list[tuple[int, str, bytes, bool]]:
        with self._dblock:
            rows = self._conn.execute("SELECT id, topic, payload, retain FROM messages ORDER BY id LIMIT ?",
                                      (limit,)).fetchall()
        return [(i, t, bytes(p), bool(r)) for i, t, p, r in rows]

    def _delete(self, ids: Sequence[int]) -> None:
        with self._dblock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                n = self._conn.executemany("DELETE FROM messages WHERE id = ?", [(i,) for i in ids]).rowcount
                self._conn.execute("COMMIT")
            except sqlite3.Error:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
                raise
            self._rows -= n

    # ---- the broker side ------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Connect, publish the buffered messages oldest first, reconnect with backoff; until cancelled."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._wake = asyncio.Event()
        attempt = 0
        try:
            while True:
                try:
                    await self._session(loop)
                except (aiomqtt.MqttError, OSError, sqlite3.Error) as exc:
                    if self.connected:
                        attempt = 0  # it worked for a while: start the backoff afresh
                    self.connected = False
                    self.last_error = f"{type(exc).__name__}: {exc}"
                    if self.failing_since is None:
                        self.failing_since = self.clock()
                        log.warning("gateway: MQTT broker %s:%d failing (%d messages buffered): %s",
                                    self.broker.host, self.broker.port, self.buffered, exc)
                await asyncio.sleep(self.backoff[min(attempt, len(self.backoff) - 1)])
                attempt += 1
        finally:
            self.connected = False

    async def _session(self, loop: asyncio.AbstractEventLoop) -> None:
        b = self.broker
        will = aiomqtt.Will(heartbeat_topic(self.site, self.node), self._heartbeat_payload("offline"), qos=1,
                            retain=True)
        async with b.client(f"bedside-{self.node}-gateway-{uuid.uuid4().hex[:8]}", will=will,
                            timeout=PUBLISH_TIMEOUT) as client:
            client.pending_calls_threshold = IN_FLIGHT + 10  # aiomqtt warns past 10; IN_FLIGHT are meant
            lost = asyncio.create_task(_until_lost(client))
            work = asyncio.create_task(self._publish(client, loop))
            try:
                done, _ = await asyncio.wait({lost, work}, return_when=asyncio.FIRST_COMPLETED)
            except asyncio.CancelledError:  # a clean stop: say so, briefly, before the connection closes
                work.cancel()
                with contextlib.suppress(BaseException):
                    await work
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._heartbeat(client, "offline"), 2.0)
                raise
            finally:
                for task in (lost, work):
                    task.cancel()
                await asyncio.gather(lost, work, return_exceptions=True)
            for task in done:
                task.result()  # the reason the session ended
            raise aiomqtt.MqttError("the session ended")

    async def _publish(self, client: aiomqtt.Client, loop: asyncio.AbstractEventLoop) -> None:
        assert self._wake is not None
        await self._heartbeat(client, "online")
        if self.failing_since is not None:
            log.warning("gateway: MQTT broker %s:%d works again; %d messages to send", self.broker.host,
                        self.broker.port, self.buffered)
        self.connected, self.failing_since, self.last_error = True, None, None
        for dev in self._devices.values():  # behind the buffer: a broker without persistence has it again
            if dev.online is not None:
                self._put(self._presence(dev))
        self._flush(loop)
        next_beat = loop.time() + self.interval
        while True:
            self._wake.clear()
            await self._drain(client, loop)
            if loop.time() >= next_beat:
                await self._heartbeat(client, "online")
                next_beat = loop.time() + self.interval
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(0.0, next_beat - loop.time()))

    async def _drain(self, client: aiomqtt.Client, loop: asyncio.AbstractEventLoop) -> None:
        """Publish the buffered messages oldest first, IN_FLIGHT at a time; delete the leading acknowledged run."""
        while batch := await loop.run_in_executor(self._executor, self._oldest, IN_FLIGHT):
            now = self.clock()
            results = await asyncio.gather(
                *(client.publish(topic, _marked(topic, payload, now), qos=1, retain=retain)
                  for _, topic, payload, retain in batch),
                return_exceptions=True)
            acked, failure = acknowledged_run(results)
            if acked:
                await loop.run_in_executor(self._executor, self._delete, [row[0] for row in batch[:acked]])
                self.published += acked
            if failure is not None:
                raise failure

    def _heartbeat_payload(self, state: str) -> bytes:
        body = {**heartbeat_json(self.node, state, self.clock(), self.interval), "role": "gateway",
                "buffered": self.buffered}
        return json.dumps(body, separators=(",", ":"), allow_nan=False).encode()

    async def _heartbeat(self, client: aiomqtt.Client, state: str) -> None:
        await client.publish(heartbeat_topic(self.site, self.node), self._heartbeat_payload(state), qos=1,
                             retain=True)

    # ---- status and shutdown --------------------------------------------------------------------------------

    @property
    def buffered(self) -> int:
        """Messages waiting: rows on disk and messages on their way there."""
        with self._qlock:
            queued = len(self._queue)
        return self._rows + queued

    def status(self) -> dict[str, Any]:
        """JSON-able: connected, buffered, published, dropped, failing_since, last_error."""
        return {"connected": self.connected, "buffered": self.buffered, "published": self.published,
                "dropped": self.dropped, "failing_since": self.failing_since, "last_error": self.last_error}

    def close(self) -> None:
        """Write what is gathered or queued, then close the buffer (stop `run` first)."""
        if self._closed:
            return
        self._closed = True
        for dev in self._devices.values():
            if dev.group is not None:
                self._seal(dev)
        self._executor.shutdown(wait=True)
        self._write_queued()
        with self._dblock:
            self._conn.close()


def _marked(topic: str, payload: bytes, now: float) -> bytes:
    """A numerics message sent more than REPLAYED_AFTER s after the gateway received its values (it waited in the
    buffer through an outage) says so, `"replayed": true`, so that an engine records it at its time but does not
    decide on it as the current value; judged on the gateway's own clock, so the engine's clock does not matter."""
    if not topic.endswith("/numerics"):
        return payload
    try:
        body = json.loads(payload)
    except ValueError:
        return payload
    ts = body.get("ts") if isinstance(body, dict) else None
    if not isinstance(ts, int | float) or isinstance(ts, bool) or now - ts <= REPLAYED_AFTER:
        return payload
    return json.dumps({**body, "replayed": True}, separators=(",", ":"), allow_nan=False).encode()


async def _until_lost(client: aiomqtt.Client) -> None:
    """Returns or raises when the connection drops (aiomqtt's message iterator watches for it; nothing is
    subscribed, so no message comes)."""
    async for _ in client.messages:
        pass
    raise aiomqtt.MqttError("connection closed")
