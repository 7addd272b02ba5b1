"""The SQLite database under the data dir: opening it in WAL mode and creating the schema.

One file, `bedside.db`, holds the recorded traces (observations, technical statuses, alarm events) and the
hashes of API tokens. Every connection uses WAL so the recorder's writes never block a reader.
"""

from __future__ import annotations

import sqlite3
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


def connect(data_dir: Path) -> sqlite3.Connection:
    """Open (creating if needed) the database in `data_dir`, in WAL mode, with the schema in place."""
    data_dir.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(data_dir / DB_NAME, check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=5000")
    conn.executescript(SCHEMA)
    return conn
