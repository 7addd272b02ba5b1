"""The trace store: one interface over where bedside keeps what it recorded.

Every observation, technical status, alarm event, annotation, user action (the audit log) and infusion session
goes through a `TraceStore`. Two backends implement it: `monitor.sqlite_store.SQLiteStore` (the default: the
WAL-mode `bedside.db` in the data dir) and `monitor.pg_store.PostgresStore` (asyncpg, when `[storage] url` names a
PostgreSQL database). `open_store` picks one from the config.

The interface is synchronous, like the DB-API: the service calls the small durable writes (an alarm event, an audit
record, a session change; fsync'd before they return) on the event loop and everything long (batches of
observations, history and trace reads) from worker threads. Durable: alarm events, audit records, annotations and
session changes are on disk when the call returns; observations are written in batches by the recorder.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from monitor.infusion import Session
from monitor.model import AlarmEvent, Annotation, AuditRecord, Observation, TechnicalStatus

Recordable = Observation | TechnicalStatus | AlarmEvent | AuditRecord
FloatArray = np.ndarray[Any, np.dtype[np.float64]]


@dataclass(frozen=True, slots=True)
class Trend:
    """One vital's readings over a window, columnar: receive times (s since the epoch) and values."""

    time: FloatArray
    value: FloatArray


@dataclass(frozen=True, slots=True)
class AuditQuery:
    since: float | None = None
    until: float | None = None
    bay: str | None = None
    who: str | None = None
    action: str | None = None
    target: str | None = None
    limit: int = 1000


@dataclass(slots=True)
class SessionTrace:
    """Everything recorded of one infusion session, for review, statistics and exports: the session record,
    and the bay's observations, technical statuses, alarm events, annotations and user actions (audit records)
    from admission to close (or now, while open). Lists are in time order."""

    session: Session
    start: float
    end: float
    observations: list[Observation] = field(default_factory=list)
    technical: list[TechnicalStatus] = field(default_factory=list)
    alarms: list[AlarmEvent] = field(default_factory=list)
    annotations: list[Annotation] = field(default_factory=list)
    actions: list[AuditRecord] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class SessionFilter:
    patient_id: str | None = None
    bay: str | None = None
    since: float | None = None  # admitted at or after
    until: float | None = None  # admitted at or before
    open_only: bool = False
    limit: int = 1000


def session_span(session: Session) -> tuple[float, float]:
    """The time a session's trace covers: admission to close (still open: to the far future)."""
    end = session.discharge.time if session.discharge is not None else float("inf")
    return session.admitted_at, end


KEPT = "*"  # the row that says a session's copy is kept (also when it has no readings at all)
SETTLED = 10.0  # s after a close by which every reading of the session is written (the recorder: every 0.5 s)


def to_blobs(trends: dict[str, Trend]) -> list[tuple[str, bytes, bytes]]:
    """Rows of session_trends: per vital its times and values as little-endian float64 bytes, and the marker."""
    rows = [(k, t.time.astype("<f8").tobytes(), t.value.astype("<f8").tobytes()) for k, t in trends.items()]
    return [*rows, (KEPT, b"", b"")]


def from_blobs(rows: Sequence[tuple[str, bytes, bytes]]) -> dict[str, Trend] | None:
    if not any(vital == KEPT for vital, _, _ in rows):
        return None
    return {vital: Trend(np.frombuffer(t, dtype="<f8").astype(np.float64), np.frombuffer(v, dtype="<f8")
                         .astype(np.float64)) for vital, t, v in rows if vital != KEPT}


def session_trends(store: TraceStore, session: Session, now: float) -> dict[str, Trend]:
    """A session's trends, admission to close (to `now` while open). A closed session's never change, so the
    first read after it settled keeps a column copy (`keep_trends`) and later reads take that: one row per vital
    instead of one per reading, for the review page's whole-session read."""
    start = session.admitted_at
    end = session.discharge.time if session.discharge is not None else now
    if session.open or now < end + SETTLED:
        return store.trends(session.bay, start, end)
    kept = store.kept_trends(session.id)
    if kept is not None:
        return kept
    trends = store.trends(session.bay, start, end)
    store.keep_trends(session.id, trends)
    return trends


def unended(events: Sequence[AlarmEvent]) -> list[AlarmEvent]:
    """Of alarm events in time order, the starts not followed by an end of the same bay and alarm id."""
    open_: dict[tuple[str, str], AlarmEvent] = {}
    for e in events:
        if e.phase == "start":
            open_[(e.bay, e.id)] = e
        elif e.phase == "end":
            open_.pop((e.bay, e.id), None)
    return sorted(open_.values(), key=lambda e: e.time)


class StoreError(Exception):
    """The store could not do what was asked (the backend's error is chained)."""


class TraceStore(Protocol):
    """Where traces live. Implementations are safe to call from several threads."""

    # writes
    def append(self, items: Sequence[Recordable]) -> None:
        """Write a batch in one transaction (the recorder's path; not necessarily fsync'd)."""

    def append_durable(self, items: Sequence[Recordable]) -> None:
        """Write now, in one transaction, on disk (fsync) before returning: alarm events and audit records."""

    def add_annotation(self, bay: str, time: float, who: str, kind: str, text: str) -> int:
        """Store an annotation durably; returns its id."""

    def save_session(self, session: Session) -> None:
        """Insert or replace a session record, durably."""

    def delete_session(self, session_id: str) -> bool:
        """Delete a session and what was recorded of its bay between its admission and close. False: no such."""

    # reads
    def session(self, session_id: str) -> Session | None: ...

    def sessions(self, query: SessionFilter) -> list[Session]:
        """Sessions, newest admission first."""

    def session_trace(self, session_id: str) -> SessionTrace | None: ...

    def trends(self, bay: str, since: float, until: float, vitals: Sequence[str] | None = None) -> dict[str, Trend]:
        """Each vital's readings of a bay in [since, until], in time order (the fast path of trend charts)."""

    def kept_trends(self, session_id: str) -> dict[str, Trend] | None:
        """The column copy of a closed session's trends (session_trends), None when none is kept."""

    def keep_trends(self, session_id: str, trends: dict[str, Trend]) -> None:
        """Keep a closed session's trends as one column copy per vital (replacing any earlier one)."""

    def bay_history(self, bay: str, since: float, until: float, observations: bool = True) -> dict[str, Any]:
        """The bay detail page's history: observations per vital (unless `observations` is False: then an
        empty table, for callers that read them with `trends`), alarm and technical periods, annotations (the
        shape of GET /api/bays/{bay}/history)."""

    def audit_log(self, query: AuditQuery) -> list[AuditRecord]:
        """Audit records, newest first."""

    def unended_alarms(self, since: float) -> list[AlarmEvent]:
        """The start events, from `since` on, of alarms that have no end recorded after them (left open when
        bedside stopped without ending them: a crash, a kill), in time order."""

    def close(self) -> None: ...


def open_store(data_dir: Path, url: str | None = None) -> TraceStore:
    """The store a config names: PostgreSQL at `url`, else SQLite in `data_dir`. StoreError says why it cannot."""
    if url is not None:
        from monitor.pg_store import PostgresStore

        return PostgresStore(url)
    from monitor.sqlite_store import SQLiteStore

    return SQLiteStore(data_dir)
