"""The Capnostream driver over a real pseudo-terminal, with the test playing the monitor: the driver asks the
monitor to start, keeps the link alive once frames flow, decodes what arrives, and stops its keep-alive task
when cancelled."""

from __future__ import annotations

import asyncio
import os
import tty
from collections.abc import Callable

import pytest

from drivers.base import CONNECTED, DeviceSettings
from drivers.capnostream_driver import CapnostreamDriver
from monitor.model import DeviceEvent, Reading

pytestmark = pytest.mark.timeout(30)
ENABLE, START, ALIVE = b"\x85\x01\x01\x00", b"\x85\x01\x04\x05", b"\x85\x01\x06\x07"


def numerics_frame(etco2: int, rr: int, spo2: int, pr: int) -> bytes:
    """A numerics message (code 1) as the monitor sends it, framed by hand from the spec."""
    payload = (1_700_000_000).to_bytes(4, "big") + bytes([etco2, 0, rr, spo2, pr, 0, 0, 0, 0, 0, 0, 0])
    payload += bytes([50, 10, 30, 6, 5, 100, 90, 120, 50]) + bytes([1, 0])  # limits, units mmHg, status
    body = bytes([len(payload) + 1, 1]) + payload
    chk = 0
    for b in body:
        chk ^= b
    return b"\x85" + (body + bytes([chk])).replace(b"\x80", b"\x80\x00").replace(b"\x85", b"\x80\x05")


class QuickDriver(CapnostreamDriver):
    START_PAUSE = 0.0
    KEEP_ALIVE_PERIOD = 0.2


async def test_driver_starts_the_monitor_and_keeps_the_link_alive_over_a_pty() -> None:
    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    os.close(slave)
    os.set_blocking(master, False)
    sent = bytearray()
    loop = asyncio.get_running_loop()
    loop.add_reader(master, lambda: sent.extend(os.read(master, 4096)))
    got: list[DeviceEvent] = []
    driver = QuickDriver(DeviceSettings("capno-1", port=path))
    task = asyncio.create_task(driver.run(got.append))

    async def until(done: Callable[[], bool], what: str) -> None:
        for _ in range(200):
            if done():
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"timed out waiting for {what}; the monitor received {bytes(sent)!r}")

    try:
        await until(lambda: bytes(sent).startswith(ENABLE + START), "the start commands")
        assert ALIVE not in sent  # nothing heard yet: no "link is active"
        os.write(master, numerics_frame(38, 16, 98, 72)[:9])
        os.write(master, numerics_frame(38, 16, 98, 72)[9:] + numerics_frame(0x85, 17, 97, 0x80))
        await until(lambda: sum(isinstance(e, Reading) for e in got) >= 8, "two frames of readings")
        assert got[0] == CONNECTED
        values = [(e.vital, e.value) for e in got if isinstance(e, Reading)]
        assert values == [("etco2", 38.0), ("rr", 16.0), ("spo2", 98.0), ("pr", 72.0),
                          ("etco2", 133.0), ("rr", 17.0), ("spo2", 97.0), ("pr", 128.0)]  # escaped 0x85, 0x80
        await until(lambda: ALIVE in sent, "link is active")
        keep_alive = driver._keep_alive
        assert keep_alive is not None and not keep_alive.done()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        loop.remove_reader(master)
        os.close(master)
    assert driver._keep_alive is None and keep_alive.cancelled()
