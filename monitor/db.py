"""The SQLite database under the data dir: opening it in WAL mode and creating the schema.

One file, `bedside.db`, holds the recorded traces (observations, technical statuses, alarm events, annotations,
infusion sessions; written through monitor/sqlite_store.py), the audit log of user actions, users (argon2
password hashes), login sessions and the hashes of API tokens.
Columns added by a later version are added to an older file when it is opened (`_migrate`), so upgrading keeps
what was recorded. Every connection uses WAL so the recorder's writes never block a reader.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from monitor.model import AuditRecord

DB_NAME = "bedside.db"

SCHEMA = """
CREATE TABLE IF NOT EXISTS observations (
    bay TEXT NOT NULL, device TEXT NOT NULL, vital TEXT NOT NULL, value REAL NOT NULL,
    device_time REAL, receive_time REAL NOT NULL);
CREATE INDEX IF NOT EXISTS observations_bay_time ON observations (bay, receive_time);
CREATE INDEX IF NOT EXISTS observations_trend ON observations (bay, vital, receive_time, value);
CREATE TABLE IF NOT EXISTS technical_statuses (
    bay TEXT NOT NULL, device TEXT NOT NULL, condition TEXT NOT NULL, vital TEXT, active INTEGER NOT NULL,
    time REAL NOT NULL, detail TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS technical_bay_time ON technical_statuses (bay, time);
CREATE TABLE IF NOT EXISTS alarm_events (
    bay TEXT NOT NULL, alarm_id TEXT NOT NULL, phase TEXT NOT NULL, kind TEXT NOT NULL, priority TEXT NOT NULL,
    time REAL NOT NULL, message TEXT NOT NULL, vital TEXT, value REAL, limit_value REAL, device TEXT,
    by_user TEXT, level INTEGER NOT NULL DEFAULT 0, until REAL);
CREATE INDEX IF NOT EXISTS alarm_bay_time ON alarm_events (bay, time);
CREATE TABLE IF NOT EXISTS audit_log (
    time REAL NOT NULL, who TEXT NOT NULL, action TEXT NOT NULL, bay TEXT, target TEXT, before TEXT, after TEXT);
CREATE INDEX IF NOT EXISTS audit_time ON audit_log (time);
CREATE TABLE IF NOT EXISTS api_tokens (
    token_hash TEXT PRIMARY KEY, role TEXT NOT NULL, created REAL NOT NULL, label TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY, role TEXT NOT NULL, password_hash TEXT NOT NULL, disabled INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL, last_login REAL);
CREATE TABLE IF NOT EXISTS sessions (
    id_hash TEXT PRIMARY KEY, user TEXT, token_hash TEXT, csrf TEXT NOT NULL, created REAL NOT NULL,
    last_seen REAL NOT NULL);
CREATE TABLE IF NOT EXISTS annotations (
    id INTEGER PRIMARY KEY AUTOINCREMENT, bay TEXT NOT NULL, time REAL NOT NULL, who TEXT NOT NULL,
    kind TEXT NOT NULL, text TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS annotations_bay_time ON annotations (bay, time);
CREATE TABLE IF NOT EXISTS infusion_sessions (
    id TEXT PRIMARY KEY, bay TEXT NOT NULL, patient_id TEXT NOT NULL, admitted_at REAL NOT NULL, closed_at REAL,
    phase TEXT NOT NULL, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS infusion_sessions_patient ON infusion_sessions (patient_id, admitted_at);
CREATE INDEX IF NOT EXISTS infusion_sessions_bay ON infusion_sessions (bay, admitted_at);
CREATE TABLE IF NOT EXISTS session_trends (
    session_id TEXT NOT NULL, vital TEXT NOT NULL, t BLOB NOT NULL, v BLOB NOT NULL,
    PRIMARY KEY (session_id, vital)) WITHOUT ROWID;
"""


def insert_audit(conn: sqlite3.Connection, record: AuditRecord) -> None:
    """Write one audit record now, in its own transaction."""
    conn.execute("INSERT INTO audit_log VALUES (?,?,?,?,?,?,?)", (record.time, record.who, record.action, record.bay,
                                                                  record.target, record.before, record.after))


def _wal(conn: sqlite3.Connection, within: float = 10.0) -> None:
    """Switch to WAL. SQLite answers "database is locked" at once, without its busy handler, when another process
    is creating or switching the same file at that moment: retry for a while instead of failing at start."""
    deadline = time.monotonic() + within
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


ADDED_COLUMNS = {  # table -> columns a later version added, with their definitions
    "alarm_events": {"by_user": "TEXT", "level": "INTEGER NOT NULL DEFAULT 0", "until": "REAL"},
}


def _migrate(conn: sqlite3.Connection) -> None:
    for table, columns in ADDED_COLUMNS.items():
        have = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        for name, definition in columns.items():
            if name not in have:
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {definition}")


def connect(data_dir: Path) -> sqlite3.Connection:
    """Open (creating if needed) the database in `data_dir`, in WAL mode, with the schema in place."""
    data_dir.mkdir(parents=True, exist_ok=True)
    # timeout first: another process (bedside token create, a second connection) may hold the lock right now
    conn = sqlite3.connect(data_dir / DB_NAME, check_same_thread=False, isolation_level=None, timeout=10.0)
    _wal(conn)
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.executescript(SCHEMA)
    _migrate(conn)
    return conn
