"""The MQTT driver against a real private Mosquitto: numerics and presence arrive; a broker that goes away is
"device lost" and the driver recovers when the broker returns, with no restart."""

from __future__ import annotations

import asyncio
import json

import aiomqtt
import pytest

from drivers.base import DeviceSettings
from drivers.mqtt_driver import MqttDriver
from drivers.supervise import supervise
from monitor.model import Condition
from monitor.mosquitto import PrivateMosquitto
from tests.integration.helpers import Collected, wait_for

pytestmark = pytest.mark.timeout(40)
TOPIC = "bedside/v1/clinic/dev/mon1"


def numerics(seq: int, spo2: float | None) -> bytes:
    return json.dumps({"ts": "2026-01-01T12:00:00.000Z", "seq": seq, "values": {"spo2": spo2, "hr": 70}}).encode()


async def publish(broker: PrivateMosquitto, topic: str, payload: bytes, retain: bool = False) -> None:
    async with aiomqtt.Client(broker.host, broker.port) as client:
        await client.publish(topic, payload, qos=1, retain=retain)


async def test_numerics_presence_and_broker_restart(broker: PrivateMosquitto) -> None:
    got = Collected()
    driver = MqttDriver(DeviceSettings("mon1", mqtt_host=broker.host, mqtt_port=broker.port, site="clinic"))
    task = asyncio.create_task(supervise(driver, got, first_delay=0.2, max_delay=1.0))
    try:
        await wait_for(lambda: got.lost() is False, 5, "connected")
        await publish(broker, f"{TOPIC}/numerics", numerics(1, 97))
        await wait_for(lambda: len(got.readings("spo2")) == 1, 5, "a reading")
        assert [r.value for r in got.readings()] == [97.0, 70.0]

        await publish(broker, f"{TOPIC}/numerics", numerics(2, None))
        await wait_for(lambda: bool(got.conditions(Condition.NO_DATA)), 5, "no data for spo2")
        assert got.conditions(Condition.NO_DATA)[0].vital == "spo2"

        await publish(broker, f"{TOPIC}/state", b"offline", retain=True)
        await wait_for(lambda: got.lost() is True, 5, "device offline")
        await publish(broker, f"{TOPIC}/state", b"online", retain=True)
        await wait_for(lambda: got.lost() is False, 5, "device online")

        await asyncio.to_thread(broker.stop)
        await wait_for(lambda: got.lost() is True, 10, "device lost when the broker stops")
        await asyncio.to_thread(broker.start)
        await wait_for(lambda: got.lost() is False, 10, "reconnected")
        before = len(got.readings("spo2"))
        for seq in range(3, 30):  # the subscription may need a moment after reconnecting
            await publish(broker, f"{TOPIC}/numerics", numerics(seq, 95))
            if len(got.readings("spo2")) > before:
                break
            await asyncio.sleep(0.2)
        assert got.readings("spo2")[-1].value == 95.0
        assert driver.codec.stats.rejected == 0
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_malformed_payloads_are_counted_and_skipped(broker: PrivateMosquitto) -> None:
    got = Collected()
    driver = MqttDriver(DeviceSettings("mon1", mqtt_host=broker.host, mqtt_port=broker.port, site="clinic"))
    task = asyncio.create_task(supervise(driver, got))
    try:
        await wait_for(lambda: got.lost() is False, 5, "connected")
        await publish(broker, f"{TOPIC}/numerics", b"\xff\x00 not json")
        await publish(broker, f"{TOPIC}/numerics", numerics(1, 96))
        await wait_for(lambda: len(got.readings("spo2")) == 1, 5, "the good message")
        assert driver.codec.stats.rejected == 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
