"""The gateway's publishing side (monitor/gateway.py) against a real private Mosquitto and a real aiomqtt
subscriber: what a gateway publishes decodes, with the engine's own MQTT codec, to the events its drivers emitted;
an outage is buffered on disk and sent in order once the broker is back; a buffer survives a restart; the
over-limit drop is counted."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from jsonschema import Draft202012Validator

from alerts.notify.mqtt_out import Broker
from drivers.mqtt_numerics import SCHEMA_FILE, MqttNumericsCodec
from monitor.gateway import FILE, REPLAYED_AFTER, Gateway, _marked
from monitor.model import Condition, DeviceCondition, DeviceEvent, Reading
from monitor.mosquitto import PrivateMosquitto, free_port

pytestmark = pytest.mark.timeout(40)

SITE = "clinic"
NOW = 1_780_000_000.0
SCHEMA = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
CONNECTED = DeviceCondition(Condition.DEVICE_LOST, False, None, "connected")


def valid(body: Any, definition: str) -> Any:
    errors = list(Draft202012Validator({**SCHEMA, "$ref": f"#/$defs/{definition}"}).iter_errors(body))
    assert not errors, [e.message for e in errors]
    return body


class Subscriber:
    """Everything under bedside/v1/clinic/, in arrival order; reconnects (same persistent session) after a drop."""

    def __init__(self, broker: PrivateMosquitto) -> None:
        self.broker = broker
        self.identifier = f"test-sub-{uuid.uuid4().hex[:8]}"
        self.got: list[tuple[str, bytes]] = []
        self.ready = asyncio.Event()

    async def run(self) -> None:
        while True:
            try:
                async with aiomqtt.Client(self.broker.host, self.broker.port, identifier=self.identifier,
                                          clean_session=False) as client:
                    await client.subscribe(f"bedside/v1/{SITE}/#", qos=1)
                    self.ready.set()
                    async for msg in client.messages:
                        assert isinstance(msg.payload, bytes)
                        self.got.append((str(msg.topic), msg.payload))
            except aiomqtt.MqttError:
                self.ready.clear()
                await asyncio.sleep(0.1)

    def on(self, suffix: str) -> list[bytes]:
        return [p for t, p in self.got if t.endswith(suffix)]

    def numerics(self, device: str) -> list[dict[str, Any]]:
        return [valid(json.loads(p), "numerics") for p in self.on(f"/dev/{device}/numerics")]


async def until(predicate: Callable[[], object], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, f"timed out after {within} s waiting for {what}"
        await asyncio.sleep(0.02)


async def tick() -> None:
    """Let the loop iteration end, so that the gateway flushes what was emitted in it."""
    await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def running(*coros: Any) -> AsyncIterator[None]:
    tasks = [asyncio.create_task(c) for c in coros]
    try:
        yield
    finally:
        for t in tasks:
            t.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for r in results:
            if not isinstance(r, asyncio.CancelledError | type(None)):
                raise r


def broker_of(b: PrivateMosquitto) -> Broker:
    return Broker(b.host, b.port)


def decode(sub: Subscriber, device: str) -> list[tuple[object, ...]]:
    """What the engine's mqtt driver makes of a device's messages, in order, without the detail texts."""
    codec = MqttNumericsCodec()
    out: list[tuple[object, ...]] = []
    for topic, payload in sub.got:
        if topic.endswith(f"/dev/{device}/numerics"):
            events = codec.numerics(payload)
        elif topic.endswith(f"/dev/{device}/state"):
            events = codec.presence(payload)
        else:
            continue
        out += [key(e) for e in events]
    assert codec.stats.rejected == 0
    return out


def key(e: DeviceEvent, clock: float | None = None) -> tuple[object, ...]:
    """A reading with the time it is published at: the gateway's clock when it received it (`clock`), whatever the
    device's own clock said."""
    if isinstance(e, Reading):
        return ("reading", e.vital, e.value, clock if clock is not None else e.device_time)
    return ("condition", e.condition, e.active, e.vital)


async def test_round_trip_decodes_to_the_emitted_events(tmp_path: Path, broker: PrivateMosquitto) -> None:
    gw = Gateway(tmp_path, broker_of(broker), SITE, "gw1", heartbeat_interval=0.5, clock=lambda: NOW)
    sub = Subscriber(broker)
    emit, other = gw.emitter("mon1"), gw.emitter("mon2")
    steps: list[list[DeviceEvent]] = [
        [CONNECTED],
        [Reading("spo2", 97.0, NOW + 1), Reading("pr", 72.0, NOW + 1)],  # one message
        [Reading("rr", 14.0)],  # no device time: the gateway's clock
        [DeviceCondition(Condition.SENSOR_OFF, True, "spo2", "probe off"), Reading("pr", 70.0, NOW + 2)],
        [DeviceCondition(Condition.SIGNAL_QUALITY, True, None, "motion")],  # device-level, no readings
        [Reading("pr", 71.0, NOW + 3)],  # both conditions go on: nothing ends
        [DeviceCondition(Condition.SENSOR_OFF, False, "spo2", "probe off"), Reading("spo2", 95.0, NOW + 4)],
        [DeviceCondition(Condition.SIGNAL_QUALITY, False, None, "motion")],
        [DeviceCondition(Condition.DEVICE_LOST, True, None, "port closed")],
        [CONNECTED, Reading("spo2", 96.0, NOW + 5), Reading("spo2", 94.0, NOW + 6)],  # one vital twice: 2 messages
    ]
    try:
        async with running(sub.run(), gw.run()):
            await until(lambda: sub.ready.is_set() and gw.status()["connected"], 10, "the gateway to connect")
            for events in steps:
                for e in events:
                    emit(e)
                if events is steps[1]:
                    other(Reading("hr", 60.0, NOW + 1))  # another device in the same iteration: its own message
                await tick()
            want = [key(e, NOW) for events in steps for e in events]
            await until(lambda: len(decode(sub, "mon1")) >= len(want) and sub.on("/dev/mon2/numerics"), 10,
                        "every message")
            assert decode(sub, "mon1") == want
            assert decode(sub, "mon2") == [("reading", "hr", 60.0, NOW)]

            mon1 = sub.numerics("mon1")
            assert [m["seq"] for m in mon1] == list(range(len(mon1)))
            assert mon1[0] == {"ts": NOW, "seq": 0, "values": {"spo2": 97.0, "pr": 72.0}}  # the gateway's time
            assert mon1[1]["ts"] == NOW
            assert mon1[3] == {"ts": NOW, "seq": 3, "values": {}, "status": {"spo2": "sensor_off"},
                               "device_status": ["signal_quality"]}
            assert sub.numerics("mon2")[0]["seq"] == 0  # counted per device
            assert sub.on("/dev/mon1/state") == [b"online", b"offline", b"online"]

            await until(lambda: len(sub.on("/service/gw1/heartbeat")) >= 2, 5, "two heartbeats")
            beat = valid(json.loads(sub.on("/service/gw1/heartbeat")[-1]), "heartbeat")
            assert (beat["state"], beat["instance"], beat["role"], beat["buffered"]) == ("online", "gw1", "gateway",
                                                                                          0)
            status = gw.status()
            assert json.loads(json.dumps(status)) == status
            assert (status["buffered"], status["dropped"], status["failing_since"]) == (0, 0, None)
            assert status["published"] >= len(mon1) + 3 + 1

            async with aiomqtt.Client(broker.host, broker.port) as late:  # retained: the presence, the heartbeat
                await late.subscribe(f"bedside/v1/{SITE}/dev/mon1/state", qos=1)
                msg = await asyncio.wait_for(anext(aiter(late.messages)), 5)
                assert (msg.payload, msg.retain) == (b"online", True)
        # a clean stop says offline
        async with aiomqtt.Client(broker.host, broker.port) as late:
            await late.subscribe(f"bedside/v1/{SITE}/service/gw1/heartbeat", qos=1)
            msg = await asyncio.wait_for(anext(aiter(late.messages)), 5)
            assert isinstance(msg.payload, bytes)
            assert valid(json.loads(msg.payload), "heartbeat")["state"] == "offline"
    finally:
        gw.close()


async def test_an_outage_is_buffered_and_sent_in_order(tmp_path: Path) -> None:
    with PrivateMosquitto(persistence=True) as broker:  # the subscriber's session outlives the broker's restart
        gw = Gateway(tmp_path, broker_of(broker), SITE, "gw1", heartbeat_interval=1.0)
        sub = Subscriber(broker)
        emit = gw.emitter("mon1")
        try:
            async with running(sub.run(), gw.run()):
                await until(lambda: sub.ready.is_set() and gw.status()["connected"], 10, "the gateway to connect")
                for i in range(5):
                    emit(Reading("hr", 60.0 + i, NOW + i))
                    await tick()
                await until(lambda: len(sub.numerics("mon1")) == 5, 10, "the first five messages")

                broker.stop()
                await until(lambda: not gw.status()["connected"], 10, "the gateway to notice the outage")
                for i in range(5, 65):
                    emit(Reading("hr", 60.0 + i, NOW + i))
                    await tick()
                status = gw.status()
                assert status["buffered"] == 60
                assert status["failing_since"] is not None and status["last_error"]
                assert len(sub.numerics("mon1")) == 5

                broker.start()  # same port, same persistence
                await until(lambda: len(sub.numerics("mon1")) >= 65, 20, "every buffered message")
                await until(lambda: gw.status()["buffered"] == 0, 5, "an empty buffer")
                got = sub.numerics("mon1")
                assert [m["seq"] for m in got] == list(range(65))  # in order, none lost, none twice
                assert [m["values"]["hr"] for m in got] == [60.0 + i for i in range(65)]
                status = gw.status()
                assert status["connected"] and status["failing_since"] is None and status["last_error"] is None
                assert status["dropped"] == 0
        finally:
            gw.close()


async def test_a_buffer_left_by_a_closed_gateway_is_sent_after_the_restart(tmp_path: Path) -> None:
    nowhere = Broker("127.0.0.1", free_port())  # nothing listens
    first = Gateway(tmp_path, nowhere, SITE, "gw1")
    emit = first.emitter("mon1")
    async with running(first.run()):
        await until(lambda: first.status()["failing_since"] is not None, 10, "the connection to fail")
        for i in range(4):
            emit(Reading("spo2", 90.0 + i, NOW + i))
            await tick()
    emit(Reading("spo2", 99.0, NOW + 9))  # gathered, not yet flushed: close() writes it too
    first.close()

    with PrivateMosquitto() as broker:
        second = Gateway(tmp_path, broker_of(broker), SITE, "gw1")
        assert second.status()["buffered"] == 5
        sub = Subscriber(broker)
        try:
            async with running(sub.run()):
                await until(sub.ready.is_set, 10, "the subscriber")
                async with running(second.run()):
                    await until(lambda: len(sub.numerics("mon1")) == 5, 10, "the previous run's messages")
                    second.emitter("mon1")(Reading("spo2", 98.0, NOW + 10))
                    await until(lambda: len(sub.numerics("mon1")) == 6, 10, "a new message")
            got = sub.numerics("mon1")
            assert [m["seq"] for m in got] == list(range(6))  # the counter went on from the disk
            assert [m["values"]["spo2"] for m in got] == [90.0, 91.0, 92.0, 93.0, 99.0, 98.0]
            assert second.status()["buffered"] == 0
        finally:
            second.close()


def test_over_the_limit_the_oldest_are_dropped_and_counted(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    gw = Gateway(tmp_path, Broker("127.0.0.1", free_port()), SITE, "gw1", max_buffered=10)
    emit = gw.emitter("mon1")
    with caplog.at_level(logging.WARNING, logger="monitor.gateway"):
        for i in range(25):  # no event loop runs: each event is written at once
            emit(Reading("hr", 60.0 + i, NOW + i))
    status = gw.status()
    gw.close()
    assert (status["buffered"], status["dropped"]) == (10, 15)
    assert "dropped" in caplog.text
    with sqlite3.connect(tmp_path / FILE) as db:
        seqs = [json.loads(p)["seq"] for (p,) in db.execute("SELECT payload FROM messages ORDER BY id")]
    assert seqs == list(range(15, 25))  # the newest are kept


def test_only_what_waited_in_the_buffer_is_marked_replayed() -> None:
    topic = f"bedside/v1/{SITE}/dev/mon1/numerics"
    fresh = json.dumps({"ts": 1000.0, "seq": 1, "values": {"spo2": 97}}).encode()
    assert _marked(topic, fresh, 1000.0 + REPLAYED_AFTER) == fresh  # sent on time: as it is
    late = json.loads(_marked(topic, fresh, 1000.0 + REPLAYED_AFTER + 0.1))
    assert late == {"ts": 1000.0, "seq": 1, "values": {"spo2": 97}, "replayed": True}
    decoded = MqttNumericsCodec().numerics(json.dumps(late).encode())
    assert decoded == [Reading("spo2", 97.0, 1000.0, True)]
    assert _marked(f"bedside/v1/{SITE}/dev/mon1/state", b"online", 5000.0) == b"online"  # presence: never
