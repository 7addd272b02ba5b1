"""The durable outbox: every alarm message bedside sends is on disk before it is sent, and leaves only when its
receiver has acknowledged it.

One SQLite file (`<data_dir>/outbox.db`, WAL, `synchronous=FULL`), two tables: `events` holds each alarm event
once, as the JSON every output is made from, with a sequence number that orders them; `deliveries` holds one row
per (target, event) still to be delivered. `put` writes an event and its deliveries in one transaction and
returns once it is on disk; `pending(target)` gives a target's undelivered events oldest first; `delivered` removes
one delivery (and the event, once no target needs it). After a restart the rows are still there, so delivery
resumes where it stopped, in order.

Synchronous, like the trace store: `put` runs on the event loop (an alarm is rare; one fsync), the rest in the
forwarders' worker threads or on the loop as well, under one lock.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FILE = "outbox.db"
SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    created REAL NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    target TEXT NOT NULL,
    seq INTEGER NOT NULL REFERENCES events(seq),
    attempts INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (target, seq)
) WITHOUT ROWID;
"""


class OutboxError(Exception):
    """The outbox could not be read or written (the disk is full, the file is damaged)."""


@dataclass(frozen=True, slots=True)
class Pending:
    """An event a target has not acknowledged yet: its sequence number, when it was queued, its JSON body."""

    seq: int
    created: float
    body: dict[str, Any]
    attempts: int


class Outbox:
    """The queue of alarm messages not yet acknowledged, per target, on disk."""

    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / FILE
        self._lock = threading.Lock()
        try:
            self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.executescript(SCHEMA)
        except sqlite3.Error as exc:
            raise OutboxError(f"{self.path}: {exc}") from exc

    def put(self, body: Mapping[str, Any], targets: Iterable[str], now: float) -> int | None:
        """Queue one event for `targets` (on disk when this returns); its sequence number, None if no target."""
        return self.put_many([(body, targets)], now)[0]

    def put_many(self, items: Sequence[tuple[Mapping[str, Any], Iterable[str]]], now: float) -> list[int | None]:
        """Queue several events in one transaction (one fsync), in order; their sequence numbers."""
        out: list[int | None] = []
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                for body, targets in items:
                    names = sorted(set(targets))
                    if not names:
                        out.append(None)
                        continue
                    text = json.dumps(body, separators=(",", ":"), allow_nan=False)
                    seq = self._conn.execute("INSERT INTO events (created, body) VALUES (?, ?)", (now, text)).lastrowid
                    assert seq is not None
                    self._conn.executemany("INSERT INTO deliveries (target, seq) VALUES (?, ?)",
                                           [(t, seq) for t in names])
                    out.append(seq)
                self._conn.execute("COMMIT")
                return out
            except sqlite3.Error as exc:
                self._rollback()
                raise OutboxError(f"{self.path}: could not queue {len(items)} alarm messages: {exc}") from exc

    def pending(self, target: str, limit: int = 100) -> list[Pending]:
        """The target's undelivered events, oldest first."""
        with self._lock:
            try:
                rows = self._conn.execute(
                    "SELECT e.seq, e.created, e.body, d.attempts FROM deliveries d JOIN events e ON e.seq = d.seq "
                    "WHERE d.target = ? ORDER BY d.seq LIMIT ?", (target, limit)).fetchall()
            except sqlite3.Error as exc:
                raise OutboxError(f"{self.path}: {exc}") from exc
        return [Pending(seq, created, json.loads(body), attempts) for seq, created, body, attempts in rows]

    def delivered(self, target: str, seq: int) -> None:
        """The target acknowledged event `seq`: forget its delivery, and the event once nobody needs it."""
        self.delivered_many(target, [seq])

    def delivered_many(self, target: str, seqs: Sequence[int]) -> None:
        """The target acknowledged every event of `seqs`: forget them as `delivered` does, in one transaction."""
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                self._conn.executemany("DELETE FROM deliveries WHERE target = ? AND seq = ?",
                                       [(target, seq) for seq in seqs])
                self._conn.executemany("DELETE FROM events WHERE seq = ? AND NOT EXISTS "
                                       "(SELECT 1 FROM deliveries WHERE seq = ?)", [(seq, seq) for seq in seqs])
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise OutboxError(f"{self.path}: {exc}") from exc

    def failed(self, target: str, seq: int) -> None:
        """Count a failed attempt to deliver `seq` to `target` (shown in the health report)."""
        with self._lock:
            try:
                self._conn.execute("UPDATE deliveries SET attempts = attempts + 1 WHERE target = ? AND seq = ?",
                                   (target, seq))
            except sqlite3.Error as exc:
                raise OutboxError(f"{self.path}: {exc}") from exc

    def counts(self) -> dict[str, int]:
        """Undelivered events per target."""
        with self._lock:
            try:
                rows = self._conn.execute("SELECT target, count(*) FROM deliveries GROUP BY target").fetchall()
            except sqlite3.Error as exc:
                raise OutboxError(f"{self.path}: {exc}") from exc
        return {t: n for t, n in rows}

    def drop_target(self, target: str) -> int:
        """Forget every delivery to a target that is no longer configured; how many there were."""
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                n = self._conn.execute("DELETE FROM deliveries WHERE target = ?", (target,)).rowcount
                self._conn.execute("DELETE FROM events WHERE NOT EXISTS "
                                   "(SELECT 1 FROM deliveries d WHERE d.seq = events.seq)")
                self._conn.execute("COMMIT")
                return n
            except sqlite3.Error as exc:
                self._rollback()
                raise OutboxError(f"{self.path}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _rollback(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._conn.execute("ROLLBACK")
