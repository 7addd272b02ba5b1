"""Keeps a driver running: restarts it with capped exponential backoff and reports "device lost" meanwhile.

A driver that fails (DeviceLost, or any bug) never takes another driver down: each runs in its own task
under `supervise`, which only ends when cancelled.
"""

from __future__ import annotations

import asyncio
import logging

from drivers.base import DeviceLost, Driver, Emit
from monitor.model import Condition, DeviceCondition

log = logging.getLogger(__name__)


async def supervise(driver: Driver, emit: Emit, *, first_delay: float = 0.5, max_delay: float = 10.0) -> None:
    """Run `driver` forever; after each failure emit DEVICE_LOST and retry after a growing delay."""
    delay = first_delay
    while True:
        started = asyncio.get_running_loop().time()
        try:
            await driver.run(emit)
            reason = "driver stopped"
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # any failure of one driver must become a technical alarm, not a dead task
            reason = str(exc) or type(exc).__name__
            if not isinstance(exc, DeviceLost | OSError):
                log.exception("driver %s crashed", driver.device_id)
        log.warning("device %s lost: %s; retrying in %.1f s", driver.device_id, reason, delay)
        emit(DeviceCondition(Condition.DEVICE_LOST, True, None, reason))
        if asyncio.get_running_loop().time() - started > 5 * max_delay:
            delay = first_delay  # it ran well for a while: start the backoff afresh
        await asyncio.sleep(delay)
        delay = min(delay * 2, max_delay)
