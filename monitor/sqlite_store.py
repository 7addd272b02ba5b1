"""The SQLite trace store (the default): `bedside.db` in the data dir, in WAL mode.

One write connection, shared by the recorder's worker thread and the event loop under a lock: batches of
observations are committed with `synchronous=NORMAL` (a crash of the process loses nothing committed; a power
cut at most the last batches), durable writes (alarm events, audit records, annotations, sessions) with
`synchronous=FULL`, so the WAL is fsync'd before the call returns. Reads open their own read-only connection, so
a long read never waits for a write nor holds one up.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from monitor import db
from monitor.history import LOOKBACK, assemble
from monitor.infusion import Session
from monitor.model import AlarmEvent, Annotation, AuditRecord, Condition, Observation, TechnicalStatus
from monitor.store import (
    AuditQuery,
    Recordable,
    SessionFilter,
    SessionTrace,
    StoreError,
    Trend,
    from_blobs,
    session_span,
    to_blobs,
    unended,
)
from monitor.vitals import VITALS


class SQLiteStore:
    """The trace store in `<data_dir>/bedside.db` (see the module docstring)."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / db.DB_NAME
        self._conn = db.connect(data_dir)
        self._lock = threading.Lock()

    # --- writes -------------------------------------------------------------------------------------------

    @contextmanager
    def _writing(self, durable: bool) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self._conn
            try:
                conn.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
                with conn:
                    conn.execute("BEGIN IMMEDIATE")
                    yield conn
            except sqlite3.Error as exc:
                raise StoreError(f"{self.path}: {exc}") from exc

    def append(self, items: Sequence[Recordable]) -> None:
        with self._writing(durable=False) as conn:
            _insert(conn, items)

    def append_durable(self, items: Sequence[Recordable]) -> None:
        with self._writing(durable=True) as conn:
            _insert(conn, items)

    def add_annotation(self, bay: str, time: float, who: str, kind: str, text: str) -> int:
        with self._writing(durable=True) as conn:
            row = conn.execute("INSERT INTO annotations (bay, time, who, kind, text) VALUES (?,?,?,?,?)",
                               (bay, time, who, kind, text))
        assert row.lastrowid is not None
        return row.lastrowid

    def save_session(self, session: Session) -> None:
        closed = session.discharge.time if session.discharge is not None else None
        with self._writing(durable=True) as conn:
            conn.execute("INSERT OR REPLACE INTO infusion_sessions (id, bay, patient_id, admitted_at, closed_at,"
                         " phase, body) VALUES (?,?,?,?,?,?,?)",
                         (session.id, session.bay, session.patient_id, session.admitted_at, closed,
                          session.phase, json.dumps(session.to_json())))

    def delete_session(self, session_id: str) -> bool:
        found = self.session(session_id)
        if found is None:
            return False
        start, end = session_span(found)
        with self._writing(durable=True) as conn:
            for table, column in (("observations", "receive_time"), ("technical_statuses", "time"),
                                  ("alarm_events", "time"), ("annotations", "time")):
                conn.execute(f"DELETE FROM {table} WHERE bay = ? AND {column} BETWEEN ? AND ?",
                             (found.bay, start, end))
            conn.execute("DELETE FROM infusion_sessions WHERE id = ?", (session_id,))
            conn.execute("DELETE FROM session_trends WHERE session_id = ?", (session_id,))
        return True

    def keep_trends(self, session_id: str, trends: dict[str, Trend]) -> None:
        with self._writing(durable=False) as conn:
            conn.execute("DELETE FROM session_trends WHERE session_id = ?", (session_id,))
            conn.executemany("INSERT INTO session_trends (session_id, vital, t, v) VALUES (?, ?, ?, ?)",
                             [(session_id, *r) for r in to_blobs(trends)])

    # --- reads --------------------------------------------------------------------------------------------

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        try:
            conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=10.0)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: {exc}") from exc
        try:
            yield conn
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: {exc}") from exc
        finally:
            conn.close()

    def session(self, session_id: str) -> Session | None:
        with self._reading() as conn:
            row = conn.execute("SELECT body FROM infusion_sessions WHERE id = ?", (session_id,)).fetchone()
        return None if row is None else Session.from_json(json.loads(row[0]))

    def sessions(self, query: SessionFilter) -> list[Session]:
        where: list[str] = []
        args: list[str | float] = []
        for column, value in (("patient_id", query.patient_id), ("bay", query.bay)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if query.since is not None:
            where.append("admitted_at >= ?")
            args.append(query.since)
        if query.until is not None:
            where.append("admitted_at <= ?")
            args.append(query.until)
        if query.open_only:
            where.append("phase != 'closed'")
        sql = ("SELECT body FROM infusion_sessions" + (f" WHERE {' AND '.join(where)}" if where else "")
               + " ORDER BY admitted_at DESC LIMIT ?")
        with self._reading() as conn:
            rows = conn.execute(sql, (*args, query.limit)).fetchall()
        return [Session.from_json(json.loads(r[0])) for r in rows]

    def session_trace(self, session_id: str) -> SessionTrace | None:
        found = self.session(session_id)
        if found is None:
            return None
        start, end = session_span(found)
        bay = found.bay
        with self._reading() as conn:
            obs = [Observation(bay, d, v, x, dt, t) for d, v, x, dt, t in conn.execute(
                "SELECT device, vital, value, device_time, receive_time FROM observations"
                " WHERE bay = ? AND receive_time BETWEEN ? AND ? ORDER BY receive_time, rowid", (bay, start, end))]
            tech = [TechnicalStatus(bay, d, Condition(c), bool(a), t, v, det) for d, c, v, a, t, det in conn.execute(
                "SELECT device, condition, vital, active, time, detail FROM technical_statuses"
                " WHERE bay = ? AND time BETWEEN ? AND ? ORDER BY time, rowid", (bay, start, end))]
            alarms = [AlarmEvent(*r) for r in conn.execute(
                "SELECT bay, alarm_id, phase, kind, priority, time, message, vital, value, limit_value, device,"
                " by_user, level, until FROM alarm_events WHERE bay = ? AND time BETWEEN ? AND ?"
                " ORDER BY time, rowid", (bay, start, end))]
            notes = [Annotation(i, bay, t, who, kind, text) for i, t, who, kind, text in conn.execute(
                "SELECT id, time, who, kind, text FROM annotations WHERE bay = ? AND time BETWEEN ? AND ?"
                " ORDER BY time, id", (bay, start, end))]
            actions = [AuditRecord(*r) for r in conn.execute(
                "SELECT time, who, action, bay, target, before, after FROM audit_log"
                " WHERE (bay = ? AND time BETWEEN ? AND ?) OR target = ? ORDER BY time, rowid",
                (bay, start, end, session_id))]
        return SessionTrace(found, start, end, obs, tech, alarms, notes, actions)

    def trends(self, bay: str, since: float, until: float, vitals: Sequence[str] | None = None) -> dict[str, Trend]:
        """One index-only range scan per vital (observations_trend covers bay, vital, time and value)."""
        out = {}
        with self._reading() as conn:
            for vital in vitals if vitals is not None else VITALS:
                rows = conn.execute("SELECT receive_time, value FROM observations WHERE bay = ? AND vital = ?"
                                    " AND receive_time BETWEEN ? AND ? ORDER BY receive_time",
                                    (bay, vital, since, until)).fetchall()
                if rows:
                    columns = np.array(rows, dtype=np.float64).T.copy()  # each row of it contiguous
                    out[vital] = Trend(columns[0], columns[1])
        return out

    def kept_trends(self, session_id: str) -> dict[str, Trend] | None:
        with self._reading() as conn:
            rows = conn.execute("SELECT vital, t, v FROM session_trends WHERE session_id = ?", (session_id,)).fetchall()
        return from_blobs(rows)

    def bay_history(self, bay: str, since: float, until: float, observations: bool = True) -> dict[str, Any]:
        with self._reading() as conn:
            obs = conn.execute("SELECT vital, receive_time, value FROM observations"
                               " WHERE bay = ? AND receive_time BETWEEN ? AND ? ORDER BY receive_time",
                               (bay, since, until)).fetchall() if observations else []
            alarms = conn.execute(
                "SELECT alarm_id, phase, kind, priority, time, message, vital FROM alarm_events"
                " WHERE bay = ? AND time BETWEEN ? AND ? AND phase IN ('start', 'end') ORDER BY time, rowid",
                (bay, since - LOOKBACK, until)).fetchall()
            tech = conn.execute("SELECT device, condition, vital, active, time FROM technical_statuses"
                                " WHERE bay = ? AND time BETWEEN ? AND ? ORDER BY time, rowid",
                                (bay, since - LOOKBACK, until)).fetchall()
            notes = conn.execute("SELECT id, time, who, kind, text FROM annotations WHERE bay = ?"
                                 " AND time BETWEEN ? AND ? ORDER BY time, id", (bay, since, until)).fetchall()
        return assemble(bay, since, until, obs, alarms, tech, notes)

    def audit_log(self, query: AuditQuery) -> list[AuditRecord]:
        where: list[str] = []
        args: list[str | float] = []
        for column, value in (("bay", query.bay), ("who", query.who), ("action", query.action),
                              ("target", query.target)):
            if value:
                where.append(f"{column} = ?")
                args.append(value)
        if query.since is not None:
            where.append("time >= ?")
            args.append(query.since)
        if query.until is not None:
            where.append("time <= ?")
            args.append(query.until)
        sql = ("SELECT time, who, action, bay, target, before, after FROM audit_log"
               + (f" WHERE {' AND '.join(where)}" if where else "") + " ORDER BY time DESC, rowid DESC LIMIT ?")
        with self._reading() as conn:
            return [AuditRecord(*r) for r in conn.execute(sql, (*args, query.limit))]

    def unended_alarms(self, since: float) -> list[AlarmEvent]:
        with self._reading() as conn:
            return unended([AlarmEvent(*r) for r in conn.execute(
                "SELECT bay, alarm_id, phase, kind, priority, time, message, vital, value, limit_value, device,"
                " by_user, level, until FROM alarm_events WHERE time >= ? AND phase IN ('start', 'end')"
                " ORDER BY time, rowid", (since,))])

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _insert(conn: sqlite3.Connection, items: Sequence[Recordable]) -> None:
    obs = [(i.bay, i.device, i.vital, i.value, i.device_time, i.receive_time)
           for i in items if isinstance(i, Observation)]
    tech = [(i.bay, i.device, i.condition.value, i.vital, int(i.active), i.time, i.detail)
            for i in items if isinstance(i, TechnicalStatus)]
    alarms = [(i.bay, i.id, i.phase, i.kind, i.priority, i.time, i.message, i.vital, i.value, i.limit,
               i.device, i.by, i.level, i.until) for i in items if isinstance(i, AlarmEvent)]
    audit = [(i.time, i.who, i.action, i.bay, i.target, i.before, i.after)
             for i in items if isinstance(i, AuditRecord)]
    if obs:
        conn.executemany("INSERT INTO observations VALUES (?,?,?,?,?,?)", obs)
    if tech:
        conn.executemany("INSERT INTO technical_statuses VALUES (?,?,?,?,?,?,?)", tech)
    if alarms:
        conn.executemany(
            "INSERT INTO alarm_events (bay, alarm_id, phase, kind, priority, time, message, vital, value,"
            " limit_value, device, by_user, level, until) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", alarms)
    if audit:
        conn.executemany("INSERT INTO audit_log VALUES (?,?,?,?,?,?,?)", audit)
