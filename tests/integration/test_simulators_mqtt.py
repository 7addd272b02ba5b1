"""Tests of simulators.mqtt_monitor against a real Mosquitto broker on a free loopback port.

Uses the shared private-Mosquitto fixture (tests/conftest.py). Covers presence (retained online/offline, last will),
numerics messages, and reconnecting after the broker restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt
import pytest

from monitor.mosquitto import PrivateMosquitto
from simulators.mqtt_monitor import numerics_topic, run_mqtt_simulator, state_topic
from simulators.patient import PatientModel

SITE, DEVICE = "test-site", "mon-1"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
TS_PATTERN = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"
pytestmark = pytest.mark.timeout(30)


@contextlib.asynccontextmanager
async def subscriber(port: int) -> AsyncIterator[asyncio.Queue[tuple[str, bytes, bool]]]:
    """Collect (topic, payload, retain) of every message under the device's topics."""
    queue: asyncio.Queue[tuple[str, bytes, bool]] = asyncio.Queue()
    async with aiomqtt.Client("127.0.0.1", port) as client:
        await client.subscribe(f"bedside/v1/{SITE}/dev/{DEVICE}/#", qos=1)

        async def pump() -> None:
            async for m in client.messages:
                assert isinstance(m.payload, bytes)
                queue.put_nowait((str(m.topic), m.payload, m.retain))

        task = asyncio.create_task(pump())
        try:
            yield queue
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def next_on(queue: asyncio.Queue[tuple[str, bytes, bool]], topic: str) -> tuple[bytes, bool]:
    while True:
        t, payload, retain = await asyncio.wait_for(queue.get(), 3.0)
        if t == topic:
            return payload, retain


async def retained_state(port: int) -> bytes:
    async with subscriber(port) as queue:
        payload, retain = await next_on(queue, state_topic(SITE, DEVICE))
        assert retain
        return payload


async def test_presence_and_numerics(broker: PrivateMosquitto) -> None:
    stop = asyncio.Event()
    async with subscriber(broker.port) as queue:
        sim = asyncio.create_task(
            run_mqtt_simulator("127.0.0.1", broker.port, SITE, DEVICE, PatientModel(1), interval=0.05, stop=stop)
        )
        assert await next_on(queue, state_topic(SITE, DEVICE)) == (b"online", False)
        messages = [json.loads((await next_on(queue, numerics_topic(SITE, DEVICE)))[0]) for _ in range(3)]
        stop.set()
        await asyncio.wait_for(sim, 3.0)
        assert (await next_on(queue, state_topic(SITE, DEVICE)))[0] == b"offline"
    assert [m["seq"] for m in messages] == [0, 1, 2]
    assert all(re.match(TS_PATTERN, m["ts"]) for m in messages)
    # the cuff cycles at start: NIBP in the first message only
    assert {"nibp_sys", "nibp_dia", "nibp_map"} <= set(messages[0]["values"])
    assert set(messages[1]["values"]) == {"hr", "pr", "spo2", "rr", "etco2", "temp"}
    assert 50 < messages[1]["values"]["hr"] < 150
    assert await retained_state(broker.port) == b"offline"


async def test_cancel_publishes_offline(broker: PrivateMosquitto) -> None:
    sim = asyncio.create_task(
        run_mqtt_simulator("127.0.0.1", broker.port, SITE, DEVICE, PatientModel(2), interval=0.05)
    )
    await asyncio.sleep(0.3)
    assert await retained_state(broker.port) == b"online"
    sim.cancel()
    with pytest.raises(asyncio.CancelledError):
        await sim
    assert await retained_state(broker.port) == b"offline"


async def test_reconnects_after_broker_restart(broker: PrivateMosquitto) -> None:
    stop = asyncio.Event()
    sim = asyncio.create_task(
        run_mqtt_simulator("127.0.0.1", broker.port, SITE, DEVICE, PatientModel(3), interval=0.05, stop=stop)
    )
    try:
        async with subscriber(broker.port) as queue:
            before = json.loads((await next_on(queue, numerics_topic(SITE, DEVICE)))[0])["seq"]
        await asyncio.to_thread(broker.stop)
        await asyncio.sleep(0.2)
        await asyncio.to_thread(broker.start)
        async with subscriber(broker.port) as queue:  # the simulator is back within its backoff (<= 1.5 s)
            after = json.loads((await next_on(queue, numerics_topic(SITE, DEVICE)))[0])["seq"]
        assert after > before
    finally:
        stop.set()
        await asyncio.wait_for(sim, 3.0)


async def test_last_will_is_offline(broker: PrivateMosquitto) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "monitor.cli",
        "simulate",
        "mqtt",
        "--broker",
        broker.url,
        "--site",
        SITE,
        "--device",
        DEVICE,
        "--interval",
        "0.05",
        cwd=PROJECT_ROOT,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        async with subscriber(broker.port) as queue:
            assert (await next_on(queue, state_topic(SITE, DEVICE)))[0] == b"online"
            proc.kill()  # no DISCONNECT: the broker publishes the will
            assert await next_on(queue, state_topic(SITE, DEVICE)) == (b"offline", False)
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
    assert await retained_state(broker.port) == b"offline"
