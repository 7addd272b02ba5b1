"""The recorder: writes every observation, technical status, alarm event and audit record to the trace store, in
batches.

`record` only appends to a list (it is called on the hot path); `run` flushes the list in a worker thread
every `interval` seconds in one transaction. A failed write keeps the batch for the next try and is logged,
so nothing recorded is dropped because the disk hiccupped; `consecutive_failures` tells the service to raise
a technical alarm. Memory stays bounded: past `max_pending` held items the oldest are dropped and counted.
`close` flushes what is left.
"""

from __future__ import annotations

import asyncio
import logging
import threading

from monitor.store import Recordable, StoreError, TraceStore

log = logging.getLogger(__name__)


MAX_PENDING = 2_000_000  # items held while writes fail (about 30 min of 1,000 bays); beyond, the oldest are dropped


class Recorder:
    def __init__(self, store: TraceStore, interval: float = 0.5, max_pending: int = MAX_PENDING) -> None:
        self._store = store
        self._interval = interval
        self._max_pending = max_pending
        self._pending: list[Recordable] = []
        self._lock = threading.Lock()  # one flush at a time (worker thread vs close)
        self.written = 0
        self.failures = 0
        self.consecutive_failures = 0  # > 0: recording is failing now (the service raises a technical alarm)
        self.dropped = 0

    def record(self, item: Recordable) -> None:
        self._pending.append(item)
        if len(self._pending) > self._max_pending:  # bounded memory: monitoring must outlive a dead disk
            excess = len(self._pending) - self._max_pending
            del self._pending[:excess]
            self.dropped += excess

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def run(self) -> None:
        """Flush periodically until cancelled, then flush once more."""
        try:
            while True:
                await asyncio.sleep(self._interval)
                await asyncio.to_thread(self.flush)
        finally:
            self.flush()

    def close(self) -> None:
        """Write what is left (the store is closed by its owner)."""
        self.flush()

    def flush(self) -> None:
        with self._lock:
            batch, self._pending = self._pending, []
            if not batch:
                return
            try:
                self._store.append(batch)
            except StoreError:
                self.failures += 1
                self.consecutive_failures += 1
                log.exception("recorder: write of %d items failed; keeping them for the next try", len(batch))
                self._pending[:0] = batch
                return
            self.written += len(batch)
            self.consecutive_failures = 0
