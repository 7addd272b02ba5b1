"""`bedside probe`: read a real or simulated device for a while and print what it says, one JSON line per item.

The tool a clinic's IT person uses to check a monitor cable: every decoded value or technical condition is a
line (`{"t": ..., "vital": ..., "value": ...}` or `{"t": ..., "status": ..., "active": ..., ...}`), and the last
line counts the frames decoded and rejected.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import TextIO

from drivers.base import DeviceLost, Driver
from monitor.model import DeviceEvent, Reading


def event_json(event: DeviceEvent, t: float) -> str:
    if isinstance(event, Reading):
        return json.dumps({"t": round(t, 3), "vital": event.vital, "value": event.value})
    return json.dumps({"t": round(t, 3), "status": event.condition.value, "active": event.active,
                       "vital": event.vital, "detail": event.detail})


async def probe(driver: Driver, seconds: float, out: TextIO) -> tuple[int, int]:
    """Run `driver` for `seconds`, writing each event to `out`; returns (frames decoded, frames rejected).

    A port that cannot be opened or is lost ends the probe early with a status line saying so.
    """

    def emit(event: DeviceEvent) -> None:
        out.write(event_json(event, time.time()) + "\n")
        out.flush()

    task = asyncio.create_task(driver.run(emit))
    try:
        await asyncio.wait_for(asyncio.shield(task), seconds)
    except TimeoutError:
        pass
    except DeviceLost as exc:
        out.write(json.dumps({"t": round(time.time(), 3), "status": "device_lost", "active": True,
                              "vital": None, "detail": str(exc)}) + "\n")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, DeviceLost):
            await task
    out.write(json.dumps({"frames": driver.stats.frames, "rejected": driver.stats.rejected}) + "\n")
    out.flush()
    return driver.stats.frames, driver.stats.rejected
