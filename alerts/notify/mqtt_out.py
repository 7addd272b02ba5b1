"""The MQTT alarm output: per bay a retained snapshot of its active alarms, the stream of alarm events, and the
service's heartbeat with its last will (topics in alerts/notify/payloads.py, JSON Schema in
drivers/schemas/bedside-v1.schema.json).

One connection (aiomqtt). On every (re)connect it publishes the heartbeat `online` and every bay's snapshot, so a
consumer that joins late, or a broker that restarted without persistence, has the whole picture at once; then,
as things happen, the snapshots of the bays that changed and the events queued in the outbox for target `mqtt`,
oldest first, each removed from the outbox only once the broker acknowledged it (QoS 1 PUBACK). The heartbeat
repeats every `interval` s with the time; the last will (retained, QoS 1) replaces it with `offline` when the
connection drops without a goodbye (bedside killed, the machine gone), and a clean stop publishes `offline`
itself. While the broker cannot be reached, events wait in the outbox and `failing_since` says since when.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomqtt

from alerts.notify.outbox import Outbox, OutboxError
from alerts.notify.payloads import (
    alarm_events_topic,
    alarms_topic,
    heartbeat_json,
    heartbeat_topic,
    with_sequence,
)
from monitor.mqtt_socket import NODELAY

log = logging.getLogger(__name__)

TARGET = "mqtt"
BACKOFF = (1.0, 2.0, 4.0, 8.0, 10.0)  # s between connection attempts
PUBLISH_TIMEOUT = 10.0  # s for the broker to acknowledge one message


@dataclass(frozen=True, slots=True)
class Broker:
    """Where to publish: the service's broker ([mqtt] url or the private one) and its credentials."""

    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None

    def client(self, identifier: str, *, will: aiomqtt.Will | None = None,
               timeout: float = PUBLISH_TIMEOUT) -> aiomqtt.Client:
        """A connection to this broker as every bedside client makes it: keepalive 10 s (a dead link is noticed, and
        a last will published, within 15 s), TCP_NODELAY, TLS with the configured files."""
        tls = aiomqtt.TLSParameters(str(self.ca_file) if self.ca_file else None,
                                    str(self.cert_file) if self.cert_file else None,
                                    str(self.key_file) if self.key_file else None) if self.tls else None
        return aiomqtt.Client(self.host, self.port, identifier=identifier, username=self.username,
                              password=self.password, keepalive=10, will=will, timeout=timeout,
                              socket_options=NODELAY, tls_params=tls)


def acknowledged_run(results: Sequence[object]) -> tuple[int, BaseException | None]:
    """Of a pipelined batch's publish results (None: acknowledged), how many from the first were acknowledged, and
    the first failure among the rest (they are sent again after the reconnect, in order)."""
    acked = 0
    while acked < len(results) and results[acked] is None:
        acked += 1
    failure = next((r for r in results[acked:] if isinstance(r, BaseException)), None)
    return acked, failure


def _dumps(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), allow_nan=False).encode()


class MqttAlarmOutput:
    """Publishes snapshots, events and the heartbeat; `changed(bay)` and `wake()` when there is something new."""

    target = TARGET

    def __init__(self, broker: Broker, site: str, instance: str, bays: Sequence[str], outbox: Outbox,
                 snapshot: Callable[[str], dict[str, Any]], *, heartbeat_interval: float = 5.0,
                 clock: Callable[[], float] = time.time, backoff: tuple[float, ...] = BACKOFF,
                 publishes: Callable[[str], bool] | None = None,
                 heartbeat_extra: Callable[[], dict[str, Any]] | None = None) -> None:
        self.broker = broker
        self.site = site
        self.instance = instance
        self.bays = list(bays)
        self.outbox = outbox
        self.snapshot = snapshot
        self.interval = heartbeat_interval
        self.clock = clock
        self.backoff = backoff
        self.connected = False
        self.delivered = 0
        self.failures = 0
        self.failing_since: float | None = None
        self.last_error: str | None = None
        self.publishes = publishes  # which bays' snapshots this service publishes now (default: all of them)
        self.heartbeat_extra = heartbeat_extra  # more for the heartbeat's JSON (an engine: the wards it holds)
        self._dirty: set[str] = set(self.bays)
        self._beat_now = False
        self._session_id: str | None = None
        self._wake = asyncio.Event()

    def changed(self, bay: str) -> None:
        self._dirty.add(bay)
        self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    def beat_now(self) -> None:
        """Publish the heartbeat at once (what it says changed), not only at the next interval."""
        self._beat_now = True
        self._wake.set()

    def failing(self, now: float, after: float) -> bool:
        return self.failing_since is not None and now - self.failing_since >= after

    async def run(self) -> None:
        """Publish until cancelled, reconnecting with backoff."""
        attempt = 0
        while True:
            try:
                await self._session()
            except (aiomqtt.MqttError, OutboxError, OSError) as exc:
                self.connected = False
                self.failures += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                if self.failing_since is None:
                    self.failing_since = self.clock()
                    log.warning("MQTT alarm output to %s:%d failing: %s", self.broker.host, self.broker.port, exc)
            await asyncio.sleep(self.backoff[min(attempt, len(self.backoff) - 1)])
            attempt += 1

    async def _session(self) -> None:
        b = self.broker
        hb = heartbeat_topic(self.site, self.instance)
        self._session_id = uuid.uuid4().hex[:12]  # this connection's: its will cannot be taken for a later one's
        will = aiomqtt.Will(hb, _dumps(heartbeat_json(self.instance, "offline", self.clock(), self.interval,
                                                      self._session_id)), qos=1, retain=True)
        async with b.client(f"bedside-{self.instance}-alarms-{uuid.uuid4().hex[:8]}", will=will) as client:
            try:
                await self._heartbeat(client, "online")
                self._dirty.update(self.bays)
                if self.failing_since is not None:
                    log.warning("MQTT alarm output to %s:%d works again", b.host, b.port)
                self.connected, self.failing_since, self.last_error = True, None, None
                next_beat = self.clock() + self.interval
                while True:
                    self._wake.clear()
                    await self._snapshots(client)
                    await self._events(client)
                    if self.clock() >= next_beat or self._beat_now:
                        self._beat_now = False
                        await self._heartbeat(client, "online")
                        next_beat = self.clock() + self.interval
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), max(0.0, next_beat - self.clock()))
            except asyncio.CancelledError:  # a clean stop: say so, briefly, before the connection closes
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._heartbeat(client, "offline"), 2.0)
                raise

    async def _heartbeat(self, client: aiomqtt.Client, state: str) -> None:
        body = heartbeat_json(self.instance, state, self.clock(), self.interval, self._session_id)
        if self.heartbeat_extra is not None and state == "online":
            body.update(self.heartbeat_extra())
        await client.publish(heartbeat_topic(self.site, self.instance), _dumps(body), qos=1, retain=True)

    async def _snapshots(self, client: aiomqtt.Client) -> None:
        """Publish the changed bays' snapshots, all at once (the broker's acknowledgements are awaited together, not
        one round trip after another)."""
        bays, self._dirty = sorted(self._dirty), set()
        if self.publishes is not None:
            bays = [b for b in bays if self.publishes(b)]
        try:
            await asyncio.gather(*(client.publish(alarms_topic(self.site, bay), _dumps(self.snapshot(bay)), qos=1,
                                                  retain=True) for bay in bays))
        except BaseException:
            self._dirty.update(bays)  # published again after the reconnect
            raise

    async def _events(self, client: aiomqtt.Client) -> None:
        """Publish the queued events, oldest first, up to 100 at a time without waiting for each acknowledgement;
        the leading run of acknowledged ones leaves the outbox (in one transaction), the rest is sent again after
        the reconnect, in order."""
        while batch := await asyncio.to_thread(self.outbox.pending, TARGET, 100):
            bodies = [with_sequence(item.body, item.seq) for item in batch]
            results = await asyncio.gather(
                *(client.publish(alarm_events_topic(self.site, str(b["bay"])), _dumps(b), qos=1) for b in bodies),
                return_exceptions=True)
            acked, failure = acknowledged_run(results)
            if acked:
                await asyncio.to_thread(self.outbox.delivered_many, TARGET, [item.seq for item in batch[:acked]])
                self.delivered += acked
            if failure is not None:
                raise failure
