"""Keeps a driver running: restarts it with capped exponential backoff and reports "device lost" meanwhile.

A driver that fails (DeviceLost, or any bug) never takes another driver down: each runs in its own task
under `supervise`, which only ends when cancelled. The backoff is capped at `MAX_DELAY` (2 s) so that data
flows again within a few seconds of the device, the cable or the broker coming back, however long it was away
(a retry is a port open or one TCP connect: cheap even for many devices). While a device stays away, its
failures are logged once and then once a minute, not at every retry.
"""

from __future__ import annotations

import asyncio
import logging

from drivers.base import DeviceLost, Driver, Emit
from monitor.model import Condition, DeviceCondition

log = logging.getLogger(__name__)

FIRST_DELAY = 0.5  # s before the first retry
MAX_DELAY = 2.0  # s: the longest wait between retries (the drills require data within 5 s of the device's return)
LOG_EVERY = 60.0  # s between repeated warnings about the same lost device


async def supervise(driver: Driver, emit: Emit, *, first_delay: float = FIRST_DELAY,
                    max_delay: float = MAX_DELAY) -> None:
    """Run `driver` forever; after each failure emit DEVICE_LOST and retry after a growing delay."""
    loop = asyncio.get_running_loop()
    delay = first_delay
    last_reason, warned_at = "", -float("inf")
    while True:
        started = loop.time()
        try:
            await driver.run(emit)
            reason = "driver stopped"
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # any failure of one driver must become a technical alarm, not a dead task
            reason = str(exc) or type(exc).__name__
            if not isinstance(exc, DeviceLost | OSError):
                log.exception("driver %s crashed", driver.device_id)
        now = loop.time()
        if now - started > 5 * max_delay:
            delay = first_delay  # it ran well for a while: start the backoff afresh
        if reason != last_reason or now - warned_at >= LOG_EVERY:
            log.warning("device %s lost: %s; retrying every %.1f s at most", driver.device_id, reason, max_delay)
            last_reason, warned_at = reason, now
        try:
            emit(DeviceCondition(Condition.DEVICE_LOST, True, None, reason))
        except Exception:  # a failing hub must not end the supervision of this device
            log.exception("device %s: reporting the loss failed", driver.device_id)
        await asyncio.sleep(delay)
        delay = min(delay * 2, max_delay)
