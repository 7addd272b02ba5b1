"""`bedside probe` on lines written by an independent program into a socat pty pair, and a serial device that is
unplugged and plugged in again at the same path: the driver reports "device lost", then recovers by itself."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from drivers.base import DeviceSettings
from drivers.masimo_driver import MasimoDriver
from drivers.supervise import supervise
from tests.integration.helpers import Collected, wait_for
from tests.integration.socat import SocatPair

pytestmark = pytest.mark.timeout(40)

LINES = [
    b"09/15/10 15:10:29 SPO2=097% BPM=064 PI=11.82% ALARM=20 EXC=800\r\n",
    b"not a masimo line\r\n",
    b"09/15/10 15:10:30 SPO2=---% BPM=--- PI=--.--% ALARM=20 EXC=820\r\n",
    b"09/15/10 15:10:31 SPO2=088% BPM=131 PI=02.50% ALARM=0000 EXC=000800\r\n",
]


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[SocatPair]:
    p = SocatPair(tmp_path)
    p.start()
    yield p
    p.stop()


def test_probe_decodes_lines_written_by_printf(pair: SocatPair) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "monitor.cli", "--log-level", "ERROR", "probe", "masimo",
                             "--port", str(pair.host), "--for", "4"], stdout=subprocess.PIPE, text=True)

    def feed() -> None:
        time.sleep(1.5)  # let the probe open its port first
        for line in LINES:
            # printf, an independent writer; %% is printf's percent sign
            subprocess.run(["sh", "-c", f"printf '{line.decode().replace('%', '%%')}' > {pair.device}"], check=True)

    writer = threading.Thread(target=feed)
    writer.start()
    out, _ = proc.communicate(timeout=20)
    writer.join()
    rows = [json.loads(line) for line in out.splitlines()]
    values = [(r["vital"], r["value"]) for r in rows if "vital" in r and "value" in r]
    assert values == [("spo2", 97.0), ("pr", 64.0), ("pi", 11.82), ("spo2", 88.0), ("pr", 131.0), ("pi", 2.5)]
    statuses = [(r["status"], r["active"]) for r in rows if "status" in r and r["status"] != "device_lost"]
    assert statuses == [("sensor_off", True), ("sensor_off", False)]
    assert rows[-1] == {"frames": 3, "rejected": 1}
    assert proc.returncode == 0


async def test_unplugged_port_is_device_lost_and_recovers_at_the_same_path(pair: SocatPair) -> None:
    got = Collected()
    driver = MasimoDriver(DeviceSettings("ox1", port=str(pair.host)))
    task = asyncio.create_task(supervise(driver, got, first_delay=0.2, max_delay=1.0))

    async def write_until(predicate: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + 10
        while not predicate():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            with contextlib.suppress(OSError):  # the device side may not be there yet
                await asyncio.to_thread(pair.write, LINES[0])
            await asyncio.sleep(0.2)

    try:
        await write_until(lambda: len(got.readings("spo2")) >= 1, "first reading")
        assert got.lost() is False
        await asyncio.to_thread(pair.stop)  # unplugged
        await wait_for(lambda: got.lost() is True, 5, "device lost")
        lost_at = len(got.readings("spo2"))
        await asyncio.sleep(1.0)  # a while unplugged: the supervisor keeps retrying, still lost
        assert got.lost() is True and len(got.readings("spo2")) == lost_at
        await asyncio.to_thread(pair.start)  # plugged in again, same path
        await write_until(lambda: len(got.readings("spo2")) > lost_at, "readings after replug")
        assert got.lost() is False  # the same driver object recovered: no restart of bedside
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
