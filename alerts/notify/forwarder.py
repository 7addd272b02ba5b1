"""Delivery of one target's queued alarm messages, in order, until each is acknowledged.

A `Forwarder` takes the target's oldest undelivered event from the outbox, hands it to the target's `Sender`, and
removes it from the outbox only when the sender returns (the receiver acknowledged it). A failure is counted and
retried after a backoff (1, 2, 4 … 30 s), the same message first: nothing is skipped, nothing overtakes. While a
target fails, `failing_since` says since when, so the service can raise "ALARM FORWARDING TO <target> FAILING"
once it has lasted `failing_after` seconds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Protocol

from alerts.notify.outbox import Outbox, OutboxError, Pending

log = logging.getLogger(__name__)

BACKOFF = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0)  # s between attempts while a target fails


class DeliveryError(Exception):
    """The receiver did not acknowledge the message (refused, timed out, answered with an error)."""


class Sender(Protocol):
    """Sends one queued event to a receiver; returns once it acknowledged it, else raises DeliveryError."""

    async def send(self, item: Pending) -> None: ...

    async def close(self) -> None: ...


class Forwarder:
    """Delivers one target's outbox in order; `wake()` when something was queued for it."""

    def __init__(self, target: str, sender: Sender, outbox: Outbox, *,
                 clock: Callable[[], float] = time.time, backoff: tuple[float, ...] = BACKOFF) -> None:
        self.target = target
        self.sender = sender
        self.outbox = outbox
        self.clock = clock
        self.backoff = backoff
        self.delivered = 0
        self.failures = 0
        self.failing_since: float | None = None  # clock() of the first failure of the current outage
        self.last_error: str | None = None
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        """Deliver until cancelled (then the sender's connection is closed; a run after an error reuses it)."""
        attempt = 0
        try:
            while True:
                self._wake.clear()
                try:
                    batch = await asyncio.to_thread(self.outbox.pending, self.target, 50)
                except OutboxError as exc:
                    self._failed(str(exc))
                    await asyncio.sleep(self.backoff[-1])
                    continue
                if not batch:
                    await self._wake.wait()
                    continue
                for item in batch:
                    try:
                        await self.sender.send(item)
                    except DeliveryError as exc:
                        self._failed(str(exc))
                        await asyncio.to_thread(self._count_failure, item.seq)
                        await asyncio.sleep(self.backoff[min(attempt, len(self.backoff) - 1)])
                        attempt += 1
                        break
                    attempt = 0
                    self.delivered += 1
                    if self.failing_since is not None:
                        log.warning("alarm forwarding to %s works again", self.target)
                    self.failing_since, self.last_error = None, None
                    try:
                        await asyncio.to_thread(self.outbox.delivered, self.target, item.seq)
                    except OutboxError:  # delivered but still queued: it will be sent again (a repeat, not a loss)
                        log.exception("outbox: could not mark %s #%d delivered", self.target, item.seq)
                        break
        except asyncio.CancelledError:
            await self.sender.close()
            raise

    def _failed(self, reason: str) -> None:
        self.failures += 1
        if self.failing_since is None:
            self.failing_since = self.clock()
            log.warning("alarm forwarding to %s failing: %s", self.target, reason)
        self.last_error = reason

    def _count_failure(self, seq: int) -> None:
        try:
            self.outbox.failed(self.target, seq)
        except OutboxError:
            log.exception("outbox: could not count a failed attempt")

    def failing(self, now: float, after: float) -> bool:
        """Whether deliveries have been failing for `after` seconds or more."""
        return self.failing_since is not None and now - self.failing_since >= after
