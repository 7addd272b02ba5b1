"""The SQLite database under the data dir: opening it in WAL mode and creating the schema.

One file, `bedside.db`, holds the recorded traces (observations, technical statuses, alarm events) and the
hashes of API tokens. Every connection uses WAL so the recorder's writes never block a reader.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

DB_NAME = "bedside.db"

SCHEMA = """
CREATE TABLE IF NOT EXISTS observations (
    bay TEXT NOT NULL, device TEXT NOT NULL, vital TEXT NOT NULL, value REAL NOT NULL,
    device_time REAL, receive_time REAL NOT NULL);
CREATE INDEX IF NOT EXISTS observations_bay_time ON observations (bay, receive_time);
CREATE TABLE IF NOT EXISTS technical_statuses (
    bay TEXT NOT NULL, device TEXT NOT NULL, condition TEXT NOT NULL, vital TEXT, active INTEGER NOT NULL,
    time REAL NOT NULL, detail TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS technical_bay_time ON technical_statuses (bay, time);
CREATE TABLE IF NOT EXISTS alarm_events (
    bay TEXT NOT NULL, alarm_id TEXT NOT NULL, phase TEXT NOT NULL, kind TEXT NOT NULL, priority TEXT NOT NULL,
    time REAL NOT NULL, message TEXT NOT NULL, vital TEXT, value REAL, limit_value REAL, device TEXT);
CREATE INDEX IF NOT EXISTS alarm_bay_time ON alarm_events (bay, time);
CREATE TABLE IF NOT EXISTS api_tokens (
    token_hash TEXT PRIMARY KEY, role TEXT NOT NULL, created REAL NOT NULL, label TEXT NOT NULL);
"""


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


def connect(data_dir: Path) -> sqlite3.Connection:
    """Open (creating if needed) the database in `data_dir`, in WAL mode, with the schema in place."""
    data_dir.mkdir(parents=True, exist_ok=True)
    # timeout first: another process (bedside token create, a second connection) may hold the lock right now
    conn = sqlite3.connect(data_dir / DB_NAME, check_same_thread=False, isolation_level=None, timeout=10.0)
    _wal(conn)
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.executescript(SCHEMA)
    return conn
