"""Small helpers for integration tests: collect what a driver emits and wait for a condition, bounded."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from monitor.model import Condition, DeviceCondition, DeviceEvent, Reading


class Collected:
    """Every event a driver emitted, in order, with the time it arrived."""

    def __init__(self) -> None:
        self.events: list[tuple[float, DeviceEvent]] = []

    def __call__(self, event: DeviceEvent) -> None:
        self.events.append((time.monotonic(), event))

    def readings(self, vital: str | None = None) -> list[Reading]:
        return [e for _, e in self.events if isinstance(e, Reading) and (vital is None or e.vital == vital)]

    def conditions(self, condition: Condition) -> list[DeviceCondition]:
        return [e for _, e in self.events if isinstance(e, DeviceCondition) and e.condition == condition]

    def lost(self) -> bool | None:
        """Whether the last device_lost event says lost (None: no such event yet)."""
        seen = self.conditions(Condition.DEVICE_LOST)
        return seen[-1].active if seen else None


async def wait_for(predicate: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(0.05)
