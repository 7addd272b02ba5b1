"""Masimo over a real pseudo-terminal: bytes written by an independent writer reach the hub; a closed port is
"device lost" and the driver recovers when the port returns, with no restart."""

from __future__ import annotations

import asyncio
import os
import tty

import pytest

from drivers.base import DeviceSettings
from drivers.masimo_driver import MasimoDriver
from drivers.supervise import supervise
from monitor.hub import Hub
from monitor.model import Bay, DeviceEvent, Observation, TechnicalStatus
from tests.integration.helpers import Collected, wait_for

LINE = b"09/15/10 15:10:29 SPO2=097% BPM=064 PI=11.82% ALARM=20 EXC=800\r\n"
pytestmark = pytest.mark.timeout(30)


def raw_pty() -> tuple[int, str]:
    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    os.close(slave)
    return master, path


async def test_pty_lines_reach_the_hub_and_a_closed_port_is_device_lost_then_recovers() -> None:
    master, path = raw_pty()
    got = Collected()
    hub = Hub([Bay("bay1", "Bay 1", ["ox1"])])
    items: list[Observation | TechnicalStatus] = []
    hub.add_sink(items.append)

    def emit(event: DeviceEvent) -> None:
        got(event)
        hub.ingest("ox1", event, 0.0)

    driver = MasimoDriver(DeviceSettings("ox1", port=path))
    task = asyncio.create_task(supervise(driver, emit, first_delay=0.1, max_delay=0.5))
    try:
        await asyncio.sleep(0.3)  # let the driver open the port
        os.write(master, LINE[:20])
        os.write(master, LINE[20:] + LINE)
        await wait_for(lambda: len(got.readings("spo2")) >= 2, 5, "two SpO2 readings")
        assert [o.value for o in items if isinstance(o, Observation) and o.vital == "pr"][:2] == [64.0, 64.0]
        assert hub.bays["bay1"].latest["spo2"].value == 97.0

        os.close(master)  # the cable is pulled: the pty's other side is gone
        await wait_for(lambda: got.lost() is True, 5, "device lost")
        assert any(isinstance(i, TechnicalStatus) and i.active for i in items)

        # a new device on a new pty at the same path is impossible, so point the same driver at a fresh pty
        master, path2 = raw_pty()
        driver.settings = DeviceSettings("ox1", port=path2)
        before = len(got.readings("spo2"))
        deadline = asyncio.get_running_loop().time() + 5
        while len(got.readings("spo2")) == before and asyncio.get_running_loop().time() < deadline:
            os.write(master, LINE)
            await asyncio.sleep(0.2)
        assert len(got.readings("spo2")) > before
        assert got.lost() is False  # "device lost" ended once data flowed again
        assert driver.codec.stats.rejected == 0
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        os.close(master)


async def test_garbage_burst_is_counted_and_decoding_continues() -> None:
    master, path = raw_pty()
    got = Collected()
    driver = MasimoDriver(DeviceSettings("ox1", port=path))
    task = asyncio.create_task(supervise(driver, got))
    try:
        await asyncio.sleep(0.3)
        os.write(master, bytes(range(256)) * 4 + b"\r\n" + LINE)
        await wait_for(lambda: len(got.readings("spo2")) == 1, 5, "the line after the garbage")
        assert driver.codec.stats.rejected >= 1
        assert got.lost() is False
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        os.close(master)
