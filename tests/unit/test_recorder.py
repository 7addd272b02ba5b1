"""The recorder writes every observation, technical status and alarm event to the trace store (here SQLite in WAL
mode) in batches, and keeps a batch whose write failed for the next try."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from monitor import db
from monitor.model import AlarmEvent, Condition, Observation, TechnicalStatus
from monitor.recorder import Recorder
from monitor.sqlite_store import SQLiteStore

OBS = Observation("bay1", "ox1", "spo2", 86.0, None, 10.0)
TECH = TechnicalStatus("bay1", "ox1", Condition.SENSOR_OFF, True, 11.0, None, "sensor off patient")
ALARM = AlarmEvent("bay1", "spo2_low", "start", "physiological", "high", 10.0, "SpO2 LOW 86 < 90", "spo2", 86.0,
                   90.0, "ox1")


def test_everything_is_written_in_wal_mode(tmp_path: Path) -> None:
    rec = Recorder(SQLiteStore(tmp_path))
    for item in (OBS, TECH, ALARM):
        rec.record(item)
    rec.close()
    conn = sqlite3.connect(tmp_path / db.DB_NAME)
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert conn.execute("SELECT bay, vital, value, device_time FROM observations").fetchall() == [
        ("bay1", "spo2", 86.0, None)]  # no device time stays NULL, never 0
    assert conn.execute("SELECT condition, active, detail FROM technical_statuses").fetchall() == [
        ("sensor_off", 1, "sensor off patient")]
    assert conn.execute("SELECT alarm_id, phase, priority, value, limit_value FROM alarm_events").fetchall() == [
        ("spo2_low", "start", "high", 86.0, 90.0)]
    assert rec.written == 3


def test_a_failed_write_keeps_the_batch(tmp_path: Path) -> None:
    conn = db.connect(tmp_path)
    rec = Recorder(SQLiteStore(tmp_path))
    rec.record(OBS)
    conn.execute("DROP TABLE observations")  # the write will fail
    rec.flush()
    assert rec.failures == 1 and rec.written == 0
    conn.executescript(db.SCHEMA)
    rec.flush()
    assert rec.written == 1
    assert conn.execute("SELECT count(*) FROM observations").fetchone() == (1,)


def test_memory_stays_bounded_while_writes_fail(tmp_path: Path) -> None:
    conn = db.connect(tmp_path)
    rec = Recorder(SQLiteStore(tmp_path), max_pending=5)
    conn.execute("DROP TABLE observations")
    for i in range(8):
        rec.record(Observation("bay1", "ox1", "spo2", 90.0 + i, None, float(i)))
        rec.flush()
    assert rec.consecutive_failures == 8
    assert rec.pending == 5 and rec.dropped == 3
    conn.executescript(db.SCHEMA)
    rec.flush()
    assert rec.consecutive_failures == 0
    assert [v for (v,) in conn.execute("SELECT value FROM observations ORDER BY receive_time")] == [
        93.0, 94.0, 95.0, 96.0, 97.0]  # the newest kept, in order

