"""The PostgreSQL trace store (`[storage] url = "postgresql://..."`): what a clinic or hospital uses when the traces
outgrow one machine's SQLite file, or when several bedside processes (gateways, engines per ward) share one store.

It implements `monitor.store.TraceStore` with exactly the semantics of `monitor.sqlite_store.SQLiteStore` (same
orderings, same JSON shapes, same spans): the contract tests in tests/unit/test_store.py run against both.

Threading: the store's interface is synchronous (the service calls it from its event loop and from worker
threads), asyncpg is asyncio-only. So the store owns one daemon thread running a private asyncio event loop, and
on that loop an asyncpg pool (1 to 4 connections). Every public method submits one coroutine to that loop with
`asyncio.run_coroutine_threadsafe` and waits for its result (at most `timeout`, 30 s, after which the coroutine is
cancelled): callers in several threads run concurrently, each on a pool connection. Any failure (a timeout, an
asyncpg error, a socket error) becomes `StoreError`, whose message names the server and database but never the
password. The private loop never runs bedside's code, so nothing can block it but the database.

Durability: a PostgreSQL commit with `synchronous_commit = on` (the server default) has flushed the WAL to disk
when it returns, so the durable writes (alarm events, audit records, annotations, sessions) are on disk when the
call returns, like SQLite's `synchronous=FULL`; should the server run with `synchronous_commit = off`, the durable
writes turn it on for their transaction. Batches of observations (`append`) commit with `synchronous_commit = off`,
like SQLite's `synchronous=NORMAL`: a crash of the server may lose the last fraction of a second of batches, never
consistency. Observations are written with COPY (`copy_records_to_table`), the fastest bulk path.

Schema: versioned migrations (`MIGRATIONS`, plain SQL, version n is `MIGRATIONS[n - 1]`) applied at start in one
transaction under an advisory lock, so that several processes (engines, dashboards) may start at once and exactly
one of them migrates; table `schema_migrations` records each version applied and when. A database migrated by a
newer bedside (a version this one does not know) is refused with StoreError rather than written with an older
idea of its tables. Version 1 is the schema as it was before migrations were numbered, written with `IF NOT
EXISTS`, so a database made by an earlier bedside is adopted as version 1. Optionally every table lives in its own
`schema` (then the pool's `search_path` is that schema only). The columns
are SQLite's with proper types; every table SQLite orders by `rowid` has a `BIGSERIAL id` that plays that role.
A session's body is stored as TEXT, exactly the JSON SQLite keeps (JSONB would reorder keys, drop `-0.0` and
refuse the `NaN` that json.dumps may write); reports can still read it as `body::jsonb`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import threading
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

import asyncpg
import numpy as np

from monitor.history import LOOKBACK, AlarmRow, AnnotationRow, ObservationRow, TechnicalRow, assemble
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

T = TypeVar("T")
if TYPE_CHECKING:  # asyncpg's classes are generic in its stubs only
    Connection: TypeAlias = asyncpg.pool.PoolConnectionProxy[asyncpg.Record]  # what the pool lends

TIMEOUT = 30.0  # s: the longest any call may take before it fails with StoreError
CONNECT_TIMEOUT = 10.0  # s: the longest the constructor waits for the server
POOL_MIN, POOL_MAX = 1, 4
_SCHEMA_LOCK = 0x6265647369646501  # pg_advisory_xact_lock key held while the schema is created ("bedside" + 1)

SCHEMA = """
CREATE TABLE IF NOT EXISTS observations (
    id BIGSERIAL PRIMARY KEY, bay TEXT NOT NULL, device TEXT NOT NULL, vital TEXT NOT NULL,
    value DOUBLE PRECISION NOT NULL, device_time DOUBLE PRECISION, receive_time DOUBLE PRECISION NOT NULL);
CREATE INDEX IF NOT EXISTS observations_bay_time ON observations (bay, receive_time, id);
CREATE INDEX IF NOT EXISTS observations_trend ON observations (bay, vital, receive_time) INCLUDE (value);
CREATE TABLE IF NOT EXISTS technical_statuses (
    id BIGSERIAL PRIMARY KEY, bay TEXT NOT NULL, device TEXT NOT NULL, condition TEXT NOT NULL, vital TEXT,
    active BOOLEAN NOT NULL, time DOUBLE PRECISION NOT NULL, detail TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS technical_bay_time ON technical_statuses (bay, time, id);
CREATE TABLE IF NOT EXISTS alarm_events (
    id BIGSERIAL PRIMARY KEY, bay TEXT NOT NULL, alarm_id TEXT NOT NULL, phase TEXT NOT NULL, kind TEXT NOT NULL,
    priority TEXT NOT NULL, time DOUBLE PRECISION NOT NULL, message TEXT NOT NULL, vital TEXT,
    value DOUBLE PRECISION, limit_value DOUBLE PRECISION, device TEXT, by_user TEXT,
    level INTEGER NOT NULL DEFAULT 0, until DOUBLE PRECISION);
CREATE INDEX IF NOT EXISTS alarm_bay_time ON alarm_events (bay, time, id);
CREATE TABLE IF NOT EXISTS audit_log (
    id BIGSERIAL PRIMARY KEY, time DOUBLE PRECISION NOT NULL, who TEXT NOT NULL, action TEXT NOT NULL, bay TEXT,
    target TEXT, before TEXT, after TEXT);
CREATE INDEX IF NOT EXISTS audit_time ON audit_log (time, id);
CREATE INDEX IF NOT EXISTS audit_bay_time ON audit_log (bay, time);
CREATE INDEX IF NOT EXISTS audit_target ON audit_log (target);
CREATE TABLE IF NOT EXISTS annotations (
    id BIGSERIAL PRIMARY KEY, bay TEXT NOT NULL, time DOUBLE PRECISION NOT NULL, who TEXT NOT NULL,
    kind TEXT NOT NULL, text TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS annotations_bay_time ON annotations (bay, time, id);
CREATE TABLE IF NOT EXISTS infusion_sessions (
    id TEXT PRIMARY KEY, bay TEXT NOT NULL, patient_id TEXT NOT NULL, admitted_at DOUBLE PRECISION NOT NULL,
    closed_at DOUBLE PRECISION, phase TEXT NOT NULL, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS infusion_sessions_admitted ON infusion_sessions (admitted_at);
CREATE INDEX IF NOT EXISTS infusion_sessions_patient ON infusion_sessions (patient_id, admitted_at);
CREATE INDEX IF NOT EXISTS infusion_sessions_bay ON infusion_sessions (bay, admitted_at);
CREATE TABLE IF NOT EXISTS session_trends (
    session_id TEXT NOT NULL, vital TEXT NOT NULL, t BYTEA NOT NULL, v BYTEA NOT NULL,
    PRIMARY KEY (session_id, vital));
"""

# Each entry is one schema version, applied once, in order; never edit one that has shipped: add the next.
MIGRATIONS: tuple[str, ...] = (SCHEMA,)
_MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now(), bedside TEXT NOT NULL);
"""

# what a failed call may raise inside the loop: all become StoreError
_DB_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.exceptions.InternalClientError, OSError,
              TimeoutError)

OBSERVATION_COLUMNS = ("bay", "device", "vital", "value", "device_time", "receive_time")
_SPANNED = (("observations", "receive_time"), ("technical_statuses", "time"), ("alarm_events", "time"),
            ("annotations", "time"))  # what delete_session removes of a bay within a session's span


class PostgresStore:
    """The trace store in a PostgreSQL database (see the module docstring).

    `url`: a libpq-style URL (`postgresql://user[:password]@host[:port]/database[?...]`); `schema`: put every
    table in this schema (created if missing) instead of the server's default search path; `timeout`: the
    longest a call may take; `connect_timeout`: the longest the constructor waits for the server.
    """

    def __init__(self, url: str, *, schema: str | None = None, timeout: float = TIMEOUT,
                 connect_timeout: float = CONNECT_TIMEOUT) -> None:
        self.where = _describe(url)
        self._secrets = _secrets(url)
        self._timeout = timeout
        self.schema = schema
        self._closed = False
        self._close_lock = threading.Lock()
        self._pool: asyncpg.Pool[asyncpg.Record] | None = None
        self._force_sync_commit = False
        self.schema_version = 0  # the database's schema version once open
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name=f"pg-store {self.where}", daemon=True)
        self._thread.start()
        try:
            self._submit("connect", self._open(url, connect_timeout), connect_timeout + 5.0)
        except BaseException:
            self._stop_loop()
            self._closed = True
            raise

    # --- the private loop ---------------------------------------------------------------------------------

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10.0)
        if not self._thread.is_alive():
            self._loop.close()

    async def _open(self, url: str, connect_timeout: float) -> None:
        settings = {"search_path": _quote(self.schema)} if self.schema is not None else None
        self._pool = await asyncpg.create_pool(url, min_size=POOL_MIN, max_size=POOL_MAX, timeout=connect_timeout,
                                               server_settings=settings)
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", _SCHEMA_LOCK)
                if self.schema is not None:
                    await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {_quote(self.schema)}")
                try:
                    self.schema_version = await _migrate(conn)
                except StoreError as exc:
                    raise StoreError(f"PostgreSQL {self.where}: {exc}") from None
                self._force_sync_commit = await conn.fetchval("SHOW synchronous_commit") == "off"
        except BaseException:
            await self._pool.close()
            raise

    def _submit(self, what: str, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run `coro` on the private loop and wait for it; every failure becomes StoreError."""
        if threading.current_thread() is self._thread:  # would wait for itself forever
            coro.close()
            raise StoreError(f"PostgreSQL {self.where}: {what}: called from the store's own thread")
        try:
            future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        except RuntimeError as exc:  # the loop was closed meanwhile (close() in another thread)
            coro.close()
            raise StoreError(f"PostgreSQL {self.where}: {what}: the store is closed") from exc
        limit = self._timeout if timeout is None else timeout
        try:
            return future.result(limit)
        except concurrent.futures.TimeoutError as exc:
            future.cancel()
            raise StoreError(f"PostgreSQL {self.where}: {what}: no answer within {limit:g} s") from exc
        except _DB_ERRORS as exc:
            raise StoreError(f"PostgreSQL {self.where}: {what}: {self._scrub(exc)}") from exc
        except ValueError as exc:  # an unparsable url (asyncpg's ClientConfigurationError is one too)
            raise StoreError(f"PostgreSQL {self.where}: {what}: {self._scrub(exc)}") from exc

    def _run(self, what: str, work: Callable[[Connection], Awaitable[T]]) -> T:
        """Run `work` with a pooled connection on the private loop (see `_submit`)."""
        with self._close_lock:
            if self._closed or self._pool is None:
                raise StoreError(f"PostgreSQL {self.where}: {what}: the store is closed")
            pool = self._pool

        async def job() -> T:
            async with pool.acquire() as conn:
                return await work(conn)

        return self._submit(what, job())

    def _scrub(self, exc: BaseException) -> str:
        text = str(exc) or type(exc).__name__
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    # --- writes -------------------------------------------------------------------------------------------

    def append(self, items: Sequence[Recordable]) -> None:
        if items:
            rows = _rows(items)  # built in the caller's thread: the loop stays free for other callers
            self._run("append", lambda conn: self._insert(conn, rows, durable=False))

    def append_durable(self, items: Sequence[Recordable]) -> None:
        if items:
            rows = _rows(items)
            self._run("durable append", lambda conn: self._insert(conn, rows, durable=True))

    async def _insert(self, conn: Connection, rows: _Rows, durable: bool) -> None:
        obs, tech, alarms, audit = rows
        async with conn.transaction():
            await self._commit_mode(conn, durable)
            if obs:
                await conn.copy_records_to_table("observations", records=obs, columns=OBSERVATION_COLUMNS)
            if tech:
                await conn.executemany(
                    "INSERT INTO technical_statuses (bay, device, condition, vital, active, time, detail)"
                    " VALUES ($1, $2, $3, $4, $5, $6, $7)", tech)
            if alarms:
                await conn.executemany(
                    "INSERT INTO alarm_events (bay, alarm_id, phase, kind, priority, time, message, vital, value,"
                    " limit_value, device, by_user, level, until)"
                    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)", alarms)
            if audit:
                await conn.executemany(
                    "INSERT INTO audit_log (time, who, action, bay, target, before, after)"
                    " VALUES ($1, $2, $3, $4, $5, $6, $7)", audit)

    async def _commit_mode(self, conn: Connection, durable: bool) -> None:
        """Inside a transaction: durable ones wait for the WAL flush, batches do not (see the module docstring)."""
        if not durable:
            await conn.execute("SET LOCAL synchronous_commit = off")
        elif self._force_sync_commit:
            await conn.execute("SET LOCAL synchronous_commit = on")

    def add_annotation(self, bay: str, time: float, who: str, kind: str, text: str) -> int:
        async def work(conn: Connection) -> int:
            async with conn.transaction():
                await self._commit_mode(conn, durable=True)
                new_id = await conn.fetchval("INSERT INTO annotations (bay, time, who, kind, text)"
                                             " VALUES ($1, $2, $3, $4, $5) RETURNING id", bay, time, who, kind, text)
            return int(new_id)

        return self._run("add annotation", work)

    def save_session(self, session: Session) -> None:
        closed = session.discharge.time if session.discharge is not None else None
        body = json.dumps(session.to_json())

        async def work(conn: Connection) -> None:
            async with conn.transaction():
                await self._commit_mode(conn, durable=True)
                await conn.execute(
                    "INSERT INTO infusion_sessions (id, bay, patient_id, admitted_at, closed_at, phase, body)"
                    " VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO UPDATE SET bay = EXCLUDED.bay,"
                    " patient_id = EXCLUDED.patient_id, admitted_at = EXCLUDED.admitted_at,"
                    " closed_at = EXCLUDED.closed_at, phase = EXCLUDED.phase, body = EXCLUDED.body",
                    session.id, session.bay, session.patient_id, session.admitted_at, closed, session.phase, body)

        self._run("save session", work)

    def delete_session(self, session_id: str) -> bool:
        async def work(conn: Connection) -> bool:
            async with conn.transaction():
                await self._commit_mode(conn, durable=True)
                body = await conn.fetchval("SELECT body FROM infusion_sessions WHERE id = $1 FOR UPDATE", session_id)
                if body is None:
                    return False
                found = _session(body)
                start, end = session_span(found)
                for table, column in _SPANNED:
                    await conn.execute(f"DELETE FROM {table} WHERE bay = $1 AND {column} BETWEEN $2 AND $3",
                                       found.bay, start, end)
                await conn.execute("DELETE FROM infusion_sessions WHERE id = $1", session_id)
                await conn.execute("DELETE FROM session_trends WHERE session_id = $1", session_id)
            return True

        return self._run("delete session", work)

    # --- reads --------------------------------------------------------------------------------------------

    def session(self, session_id: str) -> Session | None:
        async def work(conn: Connection) -> Session | None:
            body = await conn.fetchval("SELECT body FROM infusion_sessions WHERE id = $1", session_id)
            return None if body is None else _session(body)

        return self._run("read session", work)

    def sessions(self, query: SessionFilter) -> list[Session]:
        where: list[str] = []
        args: list[object] = []
        for condition, value in (("patient_id = ", query.patient_id), ("bay = ", query.bay),
                                 ("admitted_at >= ", query.since), ("admitted_at <= ", query.until)):
            if value is not None:
                args.append(value)
                where.append(f"{condition}${len(args)}")
        if query.open_only:
            where.append("phase != 'closed'")
        args.append(_limit(query.limit))
        sql = ("SELECT body FROM infusion_sessions" + (f" WHERE {' AND '.join(where)}" if where else "")
               + f" ORDER BY admitted_at DESC, id DESC LIMIT ${len(args)}")

        async def work(conn: Connection) -> list[Session]:
            return [_session(r[0]) for r in await conn.fetch(sql, *args)]

        return self._run("read sessions", work)

    def session_trace(self, session_id: str) -> SessionTrace | None:
        async def work(conn: Connection) -> SessionTrace | None:
            async with conn.transaction(isolation="repeatable_read", readonly=True):  # one consistent snapshot
                body = await conn.fetchval("SELECT body FROM infusion_sessions WHERE id = $1", session_id)
                if body is None:
                    return None
                found = _session(body)
                start, end = session_span(found)
                bay = found.bay
                obs = [Observation(bay, d, v, x, dt, t) for d, v, x, dt, t in await conn.fetch(
                    "SELECT device, vital, value, device_time, receive_time FROM observations"
                    " WHERE bay = $1 AND receive_time BETWEEN $2 AND $3 ORDER BY receive_time, id", bay, start, end)]
                tech = [TechnicalStatus(bay, d, Condition(c), bool(a), t, v, det)
                        for d, c, v, a, t, det in await conn.fetch(
                            "SELECT device, condition, vital, active, time, detail FROM technical_statuses"
                            " WHERE bay = $1 AND time BETWEEN $2 AND $3 ORDER BY time, id", bay, start, end)]
                alarms = [AlarmEvent(*r) for r in await conn.fetch(
                    "SELECT bay, alarm_id, phase, kind, priority, time, message, vital, value, limit_value, device,"
                    " by_user, level, until FROM alarm_events WHERE bay = $1 AND time BETWEEN $2 AND $3"
                    " ORDER BY time, id", bay, start, end)]
                notes = [Annotation(i, bay, t, who, kind, text) for i, t, who, kind, text in await conn.fetch(
                    "SELECT id, time, who, kind, text FROM annotations WHERE bay = $1 AND time BETWEEN $2 AND $3"
                    " ORDER BY time, id", bay, start, end)]
                actions = [AuditRecord(*r) for r in await conn.fetch(
                    "SELECT time, who, action, bay, target, before, after FROM audit_log"
                    " WHERE (bay = $1 AND time BETWEEN $2 AND $3) OR target = $4 ORDER BY time, id",
                    bay, start, end, session_id)]
            return SessionTrace(found, start, end, obs, tech, alarms, notes, actions)

        return self._run("read session trace", work)

    def trends(self, bay: str, since: float, until: float, vitals: Sequence[str] | None = None) -> dict[str, Trend]:
        # one row per vital with its times and values as float8 arrays (decoded by asyncpg in C): several times
        # faster than a row per reading; ORDER BY inside the aggregate guarantees the order
        sql = ("SELECT vital, array_agg(receive_time ORDER BY receive_time, id),"
               " array_agg(value ORDER BY receive_time, id) FROM observations"
               " WHERE bay = $1 AND receive_time BETWEEN $2 AND $3"
               + (" AND vital = ANY($4::text[])" if vitals is not None else "") + " GROUP BY vital ORDER BY vital")
        args: list[object] = [bay, since, until] if vitals is None else [bay, since, until, list(vitals)]

        async def work(conn: Connection) -> list[asyncpg.Record]:
            rows: list[asyncpg.Record] = await conn.fetch(sql, *args)
            return rows

        return {r[0]: Trend(np.array(r[1], dtype=np.float64), np.array(r[2], dtype=np.float64))
                for r in self._run("read trends", work)}

    def kept_trends(self, session_id: str) -> dict[str, Trend] | None:
        async def work(conn: Connection) -> list[asyncpg.Record]:
            rows: list[asyncpg.Record] = await conn.fetch(
                "SELECT vital, t, v FROM session_trends WHERE session_id = $1", session_id)
            return rows

        return from_blobs([(r[0], r[1], r[2]) for r in self._run("read kept trends", work)])

    def keep_trends(self, session_id: str, trends: dict[str, Trend]) -> None:
        rows = to_blobs(trends)

        async def work(conn: Connection) -> None:
            async with conn.transaction():
                await conn.execute("DELETE FROM session_trends WHERE session_id = $1", session_id)
                await conn.executemany("INSERT INTO session_trends (session_id, vital, t, v) VALUES ($1, $2, $3, $4)",
                                       [(session_id, *r) for r in rows])

        self._run("keep trends", work)

    def bay_history(self, bay: str, since: float, until: float, observations: bool = True) -> dict[str, Any]:
        async def work(conn: Connection) -> dict[str, Any]:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                obs: list[ObservationRow] = [tuple(r) for r in await conn.fetch(
                    "SELECT vital, receive_time, value FROM observations"
                    " WHERE bay = $1 AND receive_time BETWEEN $2 AND $3 ORDER BY receive_time, id",
                    bay, since, until)] if observations else []
                alarms: list[AlarmRow] = [tuple(r) for r in await conn.fetch(
                    "SELECT alarm_id, phase, kind, priority, time, message, vital FROM alarm_events"
                    " WHERE bay = $1 AND time BETWEEN $2 AND $3 AND phase IN ('start', 'end') ORDER BY time, id",
                    bay, since - LOOKBACK, until)]
                tech: list[TechnicalRow] = [(d, c, v, int(a), t) for d, c, v, a, t in await conn.fetch(
                    "SELECT device, condition, vital, active, time FROM technical_statuses"
                    " WHERE bay = $1 AND time BETWEEN $2 AND $3 ORDER BY time, id", bay, since - LOOKBACK, until)]
                notes: list[AnnotationRow] = [tuple(r) for r in await conn.fetch(
                    "SELECT id, time, who, kind, text FROM annotations WHERE bay = $1"
                    " AND time BETWEEN $2 AND $3 ORDER BY time, id", bay, since, until)]
            return assemble(bay, since, until, obs, alarms, tech, notes)

        return self._run("read bay history", work)

    def audit_log(self, query: AuditQuery) -> list[AuditRecord]:
        where: list[str] = []
        args: list[object] = []
        for condition, value in (("bay = ", query.bay), ("who = ", query.who), ("action = ", query.action),
                                 ("target = ", query.target)):
            if value:  # like SQLite: an empty filter is no filter
                args.append(value)
                where.append(f"{condition}${len(args)}")
        for condition, bound in (("time >= ", query.since), ("time <= ", query.until)):
            if bound is not None:
                args.append(bound)
                where.append(f"{condition}${len(args)}")
        args.append(_limit(query.limit))
        sql = ("SELECT time, who, action, bay, target, before, after FROM audit_log"
               + (f" WHERE {' AND '.join(where)}" if where else "")
               + f" ORDER BY time DESC, id DESC LIMIT ${len(args)}")

        async def work(conn: Connection) -> list[AuditRecord]:
            return [AuditRecord(*r) for r in await conn.fetch(sql, *args)]

        return self._run("read audit log", work)

    def unended_alarms(self, since: float) -> list[AlarmEvent]:
        sql = ("SELECT bay, alarm_id, phase, kind, priority, time, message, vital, value, limit_value, device,"
               " by_user, level, until FROM alarm_events WHERE time >= $1 AND phase IN ('start', 'end')"
               " ORDER BY time, id")

        async def work(conn: Connection) -> list[AlarmEvent]:
            return [AlarmEvent(*r) for r in await conn.fetch(sql, since)]

        return unended(self._run("read unended alarms", work))

    def close(self) -> None:
        """Close the pool and stop the store's thread (again: nothing happens)."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
            pool, self._pool = self._pool, None
        try:
            if pool is not None:
                self._submit("close", _close_pool(pool), timeout=15.0)
        finally:
            self._stop_loop()


async def _close_pool(pool: asyncpg.Pool[asyncpg.Record]) -> None:
    try:
        await asyncio.wait_for(pool.close(), 10.0)  # waits for calls still running
    except TimeoutError:
        pool.terminate()


_Rows = tuple[list[tuple[object, ...]], list[tuple[object, ...]], list[tuple[object, ...]], list[tuple[object, ...]]]


def _rows(items: Sequence[Recordable]) -> _Rows:
    """A batch's rows per table: observations, technical statuses, alarm events, audit records."""
    obs: list[tuple[object, ...]] = [(i.bay, i.device, i.vital, i.value, i.device_time, i.receive_time)
                                     for i in items if isinstance(i, Observation)]
    tech: list[tuple[object, ...]] = [(i.bay, i.device, i.condition.value, i.vital, i.active, i.time, i.detail)
                                      for i in items if isinstance(i, TechnicalStatus)]
    alarms: list[tuple[object, ...]] = [
        (i.bay, i.id, i.phase, i.kind, i.priority, i.time, i.message, i.vital, i.value, i.limit, i.device, i.by,
         i.level, i.until) for i in items if isinstance(i, AlarmEvent)]
    audit: list[tuple[object, ...]] = [(i.time, i.who, i.action, i.bay, i.target, i.before, i.after)
                                       for i in items if isinstance(i, AuditRecord)]
    return obs, tech, alarms, audit


def _session(body: str) -> Session:
    return Session.from_json(json.loads(body))


def _limit(limit: int) -> int | None:
    """SQLite reads a negative LIMIT as none; PostgreSQL refuses it (LIMIT NULL is none)."""
    return limit if limit >= 0 else None


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


async def _migrate(conn: Connection) -> int:
    """Bring the database to the last version of MIGRATIONS (the caller holds the schema lock in a transaction);
    the version it is at. StoreError if the database is at a version this bedside does not know."""
    await conn.execute(_MIGRATIONS_TABLE)
    current = await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_migrations")
    assert isinstance(current, int)
    if current > len(MIGRATIONS):
        raise StoreError(f"the database is at schema version {current}, made by a newer bedside; this one knows "
                         f"versions up to {len(MIGRATIONS)}: upgrade bedside (the database is left as it is)")
    for version in range(current + 1, len(MIGRATIONS) + 1):
        await conn.execute(MIGRATIONS[version - 1])
        await conn.execute("INSERT INTO schema_migrations (version, bedside) VALUES ($1, $2)", version,
                           _bedside_version())
    return len(MIGRATIONS)


def _bedside_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("bedside")
    except PackageNotFoundError:
        return "unknown"


def _describe(url: str) -> str:
    """host[:port]/database of a URL, for messages and the thread's name (never the user or the password)."""
    try:
        parts = urlsplit(url)
        query = parse_qs(parts.query)
    except ValueError:
        return "(unparsable url)"
    hosts = parts.netloc.rpartition("@")[2] or ",".join(query.get("host", [])) or "localhost"
    database = unquote(parts.path.lstrip("/")) or ",".join(query.get("dbname", [])) or "(default database)"
    return f"{hosts}/{database}"


def _secrets(url: str) -> list[str]:
    """The password(s) a URL holds, to be blanked out of any message."""
    try:
        parts = urlsplit(url)
        found = [parts.password, *parse_qs(parts.query).get("password", [])]
    except ValueError:
        return []
    out = [s for s in found if s]
    return out + [unquote(s) for s in out if unquote(s) != s]
