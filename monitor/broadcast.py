"""Fan-out of live items to async consumers (websocket clients, the recorder), each with its own bounded queue.

A consumer that does not keep up never slows the others or grows memory without bound: when its queue is
full it is marked `overflowed` and dropped from the fan-out; it must resynchronise from a snapshot.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

T = TypeVar("T")


class Subscription(Generic[T]):
    """A consumer's queue; `ready` is set whenever an item is queued or the consumer overflowed (a consumer that
    takes items with `get_nowait` clears it and waits on it, one wake-up per burst rather than per item)."""

    def __init__(self, maxsize: int) -> None:
        self.queue: asyncio.Queue[T] = asyncio.Queue(maxsize)
        self.overflowed = asyncio.Event()
        self.ready = asyncio.Event()

    async def __aiter__(self) -> AsyncIterator[T]:
        while True:
            yield await self.queue.get()


class Broadcast(Generic[T]):
    """Publish once, deliver to every subscriber's queue."""

    def __init__(self) -> None:
        self._subscribers: set[Subscription[T]] = set()

    def publish(self, item: T) -> None:
        for sub in list(self._subscribers):
            try:
                sub.queue.put_nowait(item)
            except asyncio.QueueFull:
                self._subscribers.discard(sub)
                sub.overflowed.set()
            sub.ready.set()

    @contextmanager
    def subscribe(self, maxsize: int = 10_000) -> Iterator[Subscription[T]]:
        sub: Subscription[T] = Subscription(maxsize)
        self._subscribers.add(sub)
        try:
            yield sub
        finally:
            self._subscribers.discard(sub)

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)
