"""The TraceStore contract, one suite for every backend: SQLite (monitor/sqlite_store.py) and PostgreSQL
(monitor/pg_store.py, in a fresh schema per test, dropped afterwards; skipped where no server answers at
127.0.0.1:5432). Whatever one backend returns, the other must return too: orders, spans, JSON shapes, missing
values."""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
import pytest

from monitor.history import LOOKBACK
from monitor.infusion import Session, admit
from monitor.model import (
    AlarmEvent,
    AlarmPhase,
    Annotation,
    AuditRecord,
    Condition,
    Observation,
    Priority,
    TechnicalStatus,
)
from monitor.pg_store import MIGRATIONS, PostgresStore
from monitor.sqlite_store import SQLiteStore
from monitor.store import SETTLED, AuditQuery, Recordable, SessionFilter, StoreError, TraceStore, session_trends

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
T0 = 1_700_000_000.0
_pg_probe: list[str | None] = []  # [] not probed yet; [None] reachable; [reason] not reachable


def _pg_unreachable() -> str | None:
    """Why PostgreSQL cannot be used here (None: it can), probed once with a 2 s limit."""
    if not _pg_probe:
        async def probe() -> None:
            conn = await asyncpg.connect(PG_URL, timeout=2.0)
            await conn.close()

        try:
            asyncio.run(asyncio.wait_for(probe(), 3.0))
            _pg_probe.append(None)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            _pg_probe.append(f"PostgreSQL not reachable at 127.0.0.1:5432: {exc or type(exc).__name__}")
    return _pg_probe[0]


def _drop_schema(schema: str) -> None:
    async def drop() -> None:
        conn = await asyncpg.connect(PG_URL, timeout=5.0)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()

    asyncio.run(drop())


def _fresh_schema() -> str:
    return f"test_store_{secrets.token_hex(6)}"


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TraceStore]:
    if request.param == "sqlite":
        lite = SQLiteStore(tmp_path)
        yield lite
        lite.close()
        return
    reason = _pg_unreachable()
    if reason is not None:
        pytest.skip(reason)
    schema = _fresh_schema()
    pg = PostgresStore(PG_URL, schema=schema, connect_timeout=2.0)
    try:
        yield pg
    finally:
        pg.close()
        _drop_schema(schema)


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A fresh schema name for a PostgreSQL-only test (dropped afterwards)."""
    reason = _pg_unreachable()
    if reason is not None:
        pytest.skip(reason)
    schema = _fresh_schema()
    yield schema
    _drop_schema(schema)


def reopen(store: TraceStore) -> TraceStore:
    """A second store on the same data (a restart)."""
    if isinstance(store, SQLiteStore):
        return SQLiteStore(store.path.parent)
    assert isinstance(store, PostgresStore)
    return PostgresStore(PG_URL, schema=store.schema)


# --- builders ---------------------------------------------------------------------------------------------------

def obs(bay: str, vital: str, t: float, value: float, device: str = "ox1",
        device_time: float | None = None) -> Observation:
    return Observation(bay, device, vital, value, device_time, t)


def tech(bay: str, t: float, condition: Condition, active: bool, device: str = "ox1",
         vital: str | None = None, detail: str = "") -> TechnicalStatus:
    return TechnicalStatus(bay, device, condition, active, t, vital, detail)


def alarm(bay: str, alarm_id: str, phase: AlarmPhase, t: float, priority: Priority = "medium",
          vital: str | None = None, **more: Any) -> AlarmEvent:
    return AlarmEvent(bay, alarm_id, phase, "physiological", priority, t, alarm_id.upper(), vital, **more)


def session(session_id: str, bay: str, admitted: float, patient: str = "P1", closed: float | None = None) -> Session:
    s = admit(session_id, bay, admitted, "nurse one", patient_id=patient, initials="AB", weight_kg=70.0,
              dose_mg_per_kg=0.5, planned_minutes=40.0, series_total=6)
    return s if closed is None else s.ended(closed, "nurse one", "patient declined")


def newest_first(items: list[Recordable]) -> list[Recordable]:
    """Items written against time order, so that a read in time order cannot be the order of insertion."""
    return sorted(items, key=lambda i: i.receive_time if isinstance(i, Observation) else i.time, reverse=True)


# --- writes and reads ---------------------------------------------------------------------------------------------

def test_append_then_trends_gives_each_vital_in_time_order_within_inclusive_bounds(store: TraceStore) -> None:
    store.append([obs("bay1", "hr", T0 + 2, 72.0), obs("bay1", "spo2", T0 + 1, 97.0), obs("bay1", "hr", T0, 70.0)])
    store.append([obs("bay1", "spo2", T0 + 3, 96.5), obs("bay1", "hr", T0 + 4, 75.25), obs("bay2", "hr", T0 + 2, 120.0),
                  obs("bay1", "hr", T0 - 0.001, 1.0), obs("bay1", "hr", T0 + 4.001, 2.0)])

    trends = store.trends("bay1", T0, T0 + 4)
    assert sorted(trends) == ["hr", "spo2"]
    assert trends["hr"].time.tolist() == [T0, T0 + 2, T0 + 4]
    assert trends["hr"].value.tolist() == [70.0, 72.0, 75.25]
    assert trends["spo2"].time.tolist() == [T0 + 1, T0 + 3]
    assert trends["spo2"].value.tolist() == [97.0, 96.5]
    assert trends["hr"].time.dtype == np.float64 and trends["hr"].value.dtype == np.float64

    inner = store.trends("bay1", T0 + 2, T0 + 3)  # both bounds are samples: both included
    assert {k: (t.time.tolist(), t.value.tolist()) for k, t in inner.items()} == {
        "hr": ([T0 + 2], [72.0]), "spo2": ([T0 + 3], [96.5])}
    only = store.trends("bay1", T0, T0 + 4, ["spo2", "rr"])
    assert list(only) == ["spo2"] and only["spo2"].value.tolist() == [97.0, 96.5]
    assert store.trends("bay1", T0, T0 + 4, ["rr"]) == {}
    assert store.trends("bay1", T0 + 10, T0 + 20) == {}
    assert store.trends("bay3", T0, T0 + 4) == {}
    assert store.trends("bay2", T0, T0 + 4)["hr"].value.tolist() == [120.0]


def test_bay_history_pairs_alarm_starts_and_ends_and_technical_periods(store: TraceStore) -> None:
    since, until = T0, T0 + 100
    store.append_durable([
        alarm("bay1", "etco2_high", "start", T0 - 200, vital="etco2"),  # began before the window, ends in it
        alarm("bay1", "rr_low", "start", T0 - 100, vital="rr"),  # over before the window: not shown
        alarm("bay1", "rr_low", "end", T0 - 50, vital="rr"),
        alarm("bay1", "spo2_low", "start", T0 + 10, priority="high", vital="spo2", value=85.0, limit=88.0),
        alarm("bay1", "spo2_low", "acknowledged", T0 + 15, priority="high", vital="spo2", by="nurse one"),
        alarm("bay1", "etco2_high", "end", T0 + 20, vital="etco2"),
        alarm("bay1", "spo2_low", "end", T0 + 30, priority="high", vital="spo2"),
        alarm("bay1", "hr_high", "start", T0 + 40, vital="hr"),  # still on
        alarm("bay1", "pr_low", "start", T0 + 50, vital="pr"),  # restarted without an end
        alarm("bay1", "pr_low", "start", T0 + 60, vital="pr"),
        alarm("bay1", "temp_high", "start", T0 + 101, vital="temp"),  # after the window
        alarm("bay2", "spo2_low", "start", T0 + 10, vital="spo2"),  # another bay
        AuditRecord.of(T0 + 15, "nurse one", "acknowledge", "bay1", "spo2_low"),
    ])
    store.append([
        tech("bay1", T0 - 30, Condition.NO_DATA, True), tech("bay1", T0 + 3, Condition.NO_DATA, False),
        tech("bay1", T0 + 5, Condition.SENSOR_OFF, True, vital="spo2", detail="probe off"),
        tech("bay1", T0 + 8, Condition.SENSOR_OFF, False, vital="spo2"),
        tech("bay1", T0 + 45, Condition.DEVICE_LOST, True, device="capno1"),
        tech("bay1", T0 - 90, Condition.SIGNAL_QUALITY, True), tech("bay1", T0 - 80, Condition.SIGNAL_QUALITY, False),
        tech("bay2", T0 + 5, Condition.SENSOR_OFF, True),
        obs("bay1", "spo2", T0 - 1, 99.0), obs("bay1", "spo2", T0, 98.0), obs("bay1", "hr", T0 + 50, 80.0),
        obs("bay1", "spo2", T0 + 100, 97.0), obs("bay1", "spo2", T0 + 101, 96.0), obs("bay2", "spo2", T0 + 50, 1.0),
    ])
    note = store.add_annotation("bay1", T0 + 12, "nurse one", "nausea", "ondansetron 4 mg")
    store.add_annotation("bay1", T0 + 150, "nurse one", "note", "later")

    def period(alarm_id: str, vital: str, start: float, end: float | None,
               priority: str = "medium") -> dict[str, object]:
        return {"id": alarm_id, "priority": priority, "kind": "physiological", "vital": vital,
                "message": alarm_id.upper(), "start": start, "end": end}

    expected = {
        "bay": "bay1", "since": since, "until": until,
        "observations": {"spo2": [[T0, 98.0], [T0 + 100, 97.0]], "hr": [[T0 + 50, 80.0]]},
        "alarms": [period("etco2_high", "etco2", T0 - 200, T0 + 20),
                   period("spo2_low", "spo2", T0 + 10, T0 + 30, "high"),
                   period("hr_high", "hr", T0 + 40, None),
                   period("pr_low", "pr", T0 + 50, T0 + 60),
                   period("pr_low", "pr", T0 + 60, None)],
        "technical": [{"device": "ox1", "condition": "no_data", "vital": None, "start": T0 - 30, "end": T0 + 3},
                      {"device": "ox1", "condition": "sensor_off", "vital": "spo2", "start": T0 + 5, "end": T0 + 8},
                      {"device": "capno1", "condition": "device_lost", "vital": None, "start": T0 + 45,
                       "end": None}],
        "annotations": [{"id": note, "time": T0 + 12, "who": "nurse one", "kind": "nausea",
                         "text": "ondansetron 4 mg"}],
    }
    assert store.bay_history("bay1", since, until) == expected
    without = store.bay_history("bay1", since, until, observations=False)
    assert without == {**expected, "observations": {}}


def test_an_alarm_that_began_before_the_lookback_still_shows_in_the_window(store: TraceStore) -> None:
    since = T0
    store.append_durable([alarm("bay1", "hr_high", "start", since - LOOKBACK - 10, vital="hr"),  # not searched
                          alarm("bay1", "hr_high", "end", since + 500, vital="hr"),
                          alarm("bay1", "spo2_low", "start", since - LOOKBACK + 10, vital="spo2")])  # searched
    h = store.bay_history("bay1", since, since + 1000)
    assert h["alarms"] == [
        {"id": "hr_high", "priority": "medium", "kind": "physiological", "vital": "hr", "message": "HR_HIGH",
         "start": since - LOOKBACK, "end": since + 500, "started_before": True},
        {"id": "spo2_low", "priority": "medium", "kind": "physiological", "vital": "spo2", "message": "SPO2_LOW",
         "start": since - LOOKBACK + 10, "end": None}]


def test_a_technical_status_that_began_before_the_lookback_still_shows_in_the_window(store: TraceStore) -> None:
    since = T0
    store.append([tech("bay1", since - LOOKBACK - 10, Condition.SENSOR_OFF, True),
                  tech("bay1", since + 500, Condition.SENSOR_OFF, False)])
    h = store.bay_history("bay1", since, since + 1000)
    assert h["technical"] == [{"device": "ox1", "condition": "sensor_off", "vital": None,
                               "start": since - LOOKBACK, "end": since + 500, "started_before": True}]


def test_unended_alarms_are_the_starts_without_a_later_end(store: TraceStore) -> None:
    store.append_durable([alarm("bay1", "hr_high", "start", T0), alarm("bay1", "hr_high", "end", T0 + 5),
                          alarm("bay1", "hr_high", "start", T0 + 9),  # started again: open
                          alarm("bay2", "hr_high", "start", T0 + 1), alarm("bay1", "spo2_low", "start", T0 - 100),
                          alarm("bay1", "spo2_low", "acknowledged", T0 + 2)])
    assert [(e.bay, e.id, e.time) for e in store.unended_alarms(T0 - 50)] == [
        ("bay2", "hr_high", T0 + 1), ("bay1", "hr_high", T0 + 9)]  # spo2_low began before `since`
    assert [(e.bay, e.id) for e in store.unended_alarms(T0 - 200)] == [
        ("bay1", "spo2_low"), ("bay2", "hr_high"), ("bay1", "hr_high")]


def test_annotations_get_increasing_ids_and_show_in_history_and_session_trace(store: TraceStore) -> None:
    store.save_session(session("S1", "bay1", T0, closed=T0 + 100))
    first = store.add_annotation("bay1", T0 + 50, "nurse one", "note", "calm")
    second = store.add_annotation("bay1", T0 + 20, "nurse two", "infusion_start", "")
    other = store.add_annotation("bay2", T0 + 30, "nurse one", "emergence", "vivid dreams")
    assert isinstance(first, int) and first < second < other

    assert store.bay_history("bay1", T0, T0 + 100)["annotations"] == [
        {"id": second, "time": T0 + 20, "who": "nurse two", "kind": "infusion_start", "text": ""},
        {"id": first, "time": T0 + 50, "who": "nurse one", "kind": "note", "text": "calm"}]
    trace = store.session_trace("S1")
    assert trace is not None
    assert trace.annotations == [Annotation(second, "bay1", T0 + 20, "nurse two", "infusion_start", ""),
                                 Annotation(first, "bay1", T0 + 50, "nurse one", "note", "calm")]


def test_sessions_are_filtered_newest_first_and_saving_again_replaces(store: TraceStore) -> None:
    s1 = session("S1", "bay1", T0, "P1", closed=T0 + 100)
    s2 = session("S2", "bay2", T0 + 200, "P2")
    s3 = session("S3", "bay1", T0 + 300, "P1")
    s4 = session("S4", "bay3", T0 + 400, "P3", closed=T0 + 450)
    for s in (s2, s4, s1, s3):
        store.save_session(s)

    def ids(**query: object) -> list[str]:
        return [s.id for s in store.sessions(SessionFilter(**query))]  # type: ignore[arg-type]

    assert ids() == ["S4", "S3", "S2", "S1"]
    assert ids(patient_id="P1") == ["S3", "S1"]
    assert ids(bay="bay1") == ["S3", "S1"]
    assert ids(since=T0 + 200) == ["S4", "S3", "S2"]  # admitted at or after
    assert ids(until=T0 + 300) == ["S3", "S2", "S1"]  # admitted at or before
    assert ids(since=T0 + 1, until=T0 + 399) == ["S3", "S2"]
    assert ids(open_only=True) == ["S3", "S2"]
    assert ids(limit=2) == ["S4", "S3"]
    assert ids(patient_id="P1", open_only=True) == ["S3"]
    assert ids(patient_id="P9") == []
    assert store.sessions(SessionFilter())[2] == s2  # the whole record comes back

    s2b = s2.with_checklist(fasting_hours=6.0, escort_name="Sam", escort_phone="0123", consent=True)
    s2b = s2b.start_baseline(T0 + 210).dose("start", T0 + 220, "nurse one")
    store.save_session(s2b)
    assert store.sessions(SessionFilter(bay="bay2")) == [s2b]
    assert store.session("S2") == s2b and store.session("S2") != s2
    assert ids(open_only=True) == ["S3", "S2"]
    s2c = s2b.ended(T0 + 260, "nurse one", "nausea")
    store.save_session(s2c)
    assert store.session("S2") == s2c
    assert ids(open_only=True) == ["S3"]
    assert ids() == ["S4", "S3", "S2", "S1"]
    assert store.session("nope") is None

    again = reopen(store)  # what was saved is there after a restart
    try:
        assert [s.id for s in again.sessions(SessionFilter())] == ["S4", "S3", "S2", "S1"]
        assert again.session("S2") == s2c
    finally:
        again.close()


def _span_world(store: TraceStore) -> tuple[Session, dict[str, list[Recordable]]]:
    """A closed session S1 at bay1 from T0+100 to T0+200 and items inside and outside its span or bay."""
    s1 = session("S1", "bay1", T0 + 100, closed=T0 + 200)
    store.save_session(s1)
    inside: list[Recordable] = [
        obs("bay1", "spo2", T0 + 100, 97.0), obs("bay1", "hr", T0 + 150, 80.0, device_time=T0 + 149.5),
        obs("bay1", "spo2", T0 + 200, 96.0),
        tech("bay1", T0 + 120, Condition.SENSOR_OFF, True, vital="spo2", detail="probe off"),
        tech("bay1", T0 + 130, Condition.SENSOR_OFF, False, vital="spo2"),
        alarm("bay1", "spo2_low", "start", T0 + 140, priority="high", vital="spo2", value=86.0, limit=88.0,
              device="ox1"),
        alarm("bay1", "spo2_low", "end", T0 + 160, priority="high", vital="spo2"),
    ]
    outside: list[Recordable] = [
        obs("bay1", "spo2", T0 + 99, 99.0), obs("bay1", "spo2", T0 + 201, 95.0), obs("bay2", "spo2", T0 + 150, 91.0),
        tech("bay1", T0 + 50, Condition.NO_DATA, True), tech("bay2", T0 + 120, Condition.NO_DATA, True),
        alarm("bay1", "hr_high", "start", T0 + 250, vital="hr"), alarm("bay2", "spo2_low", "start", T0 + 140),
    ]
    audit: list[Recordable] = [
        AuditRecord.of(T0 + 105, "nurse one", "acknowledge", "bay1", "spo2_low", None, {"ok": True}),
        AuditRecord.of(T0 + 260, "nurse one", "audio_pause", "bay1"),  # after the span: not the session's
        AuditRecord.of(T0 + 500, "nurse one", "session_edit", None, "S1", {"x": 1}, {"x": 2}),  # its target
        AuditRecord.of(T0 + 150, "nurse two", "acknowledge", "bay2", "spo2_low"),  # another bay
        AuditRecord.of(T0 + 50, "admin", "session_admit", "bay2", "S1"),  # its target, though another bay
    ]
    store.append(newest_first(inside[:5] + outside[:5]))
    store.append_durable(newest_first(inside[5:] + outside[5:] + audit))
    return s1, {"inside": inside, "outside": outside, "audit": audit}


def test_session_trace_holds_the_bays_items_in_the_span_in_time_order_with_its_audit(store: TraceStore) -> None:
    s1, world = _span_world(store)
    note_in = store.add_annotation("bay1", T0 + 110, "nurse one", "infusion_start", "")
    store.add_annotation("bay1", T0 + 300, "nurse one", "note", "after")
    store.add_annotation("bay2", T0 + 110, "nurse one", "note", "other bay")

    trace = store.session_trace("S1")
    assert trace is not None
    assert (trace.session, trace.start, trace.end) == (s1, T0 + 100, T0 + 200)
    inside = world["inside"]
    assert trace.observations == [inside[0], inside[1], inside[2]]
    assert trace.technical == [inside[3], inside[4]]
    assert trace.alarms == [inside[5], inside[6]]
    assert trace.annotations == [Annotation(note_in, "bay1", T0 + 110, "nurse one", "infusion_start", "")]
    audit = world["audit"]
    assert trace.actions == [audit[4], audit[0], audit[2]]
    assert store.session_trace("nope") is None

    open_session = session("S9", "bay3", T0)  # open: its span runs on into the future
    store.save_session(open_session)
    store.append([obs("bay3", "hr", T0 - 1, 60.0), obs("bay3", "hr", T0 + 1e6, 61.0)])
    trace = store.session_trace("S9")
    assert trace is not None and trace.end == float("inf")
    assert [o.value for o in trace.observations] == [61.0]


def test_delete_session_removes_its_bays_rows_in_its_span_only(store: TraceStore) -> None:
    _, world = _span_world(store)
    store.add_annotation("bay1", T0 + 110, "nurse one", "note", "in")
    kept_note = store.add_annotation("bay1", T0 + 210, "nurse one", "note", "after")
    other = session("S2", "bay1", T0 + 300)
    store.save_session(other)

    assert store.delete_session("S1") is True
    assert store.session("S1") is None and store.session_trace("S1") is None
    assert [s.id for s in store.sessions(SessionFilter())] == ["S2"]
    assert store.delete_session("S1") is False
    assert store.delete_session("nope") is False

    bay1 = store.trends("bay1", T0, T0 + 1000)
    assert bay1["spo2"].time.tolist() == [T0 + 99, T0 + 201] and "hr" not in bay1
    assert store.trends("bay2", T0, T0 + 1000)["spo2"].time.tolist() == [T0 + 150]
    h1 = store.bay_history("bay1", T0, T0 + 1000)
    assert [(a["id"], a["start"]) for a in h1["alarms"]] == [("hr_high", T0 + 250)]
    assert [(t["condition"], t["start"]) for t in h1["technical"]] == [("no_data", T0 + 50)]
    assert [n["id"] for n in h1["annotations"]] == [kept_note]
    h2 = store.bay_history("bay2", T0, T0 + 1000)
    assert len(h2["alarms"]) == 1 and len(h2["technical"]) == 1
    assert len(store.audit_log(AuditQuery())) == len(world["audit"])  # the audit log is never deleted

    store.append([obs("bay1", "hr", T0 + 299, 70.0), obs("bay1", "hr", T0 + 5e6, 71.0)])
    assert store.delete_session("S2") is True  # open: everything of its bay from its admission on
    assert store.trends("bay1", T0, T0 + 1e7)["hr"].time.tolist() == [T0 + 299]


def test_a_closed_sessions_trends_are_kept_once_settled_and_read_back_exactly(store: TraceStore) -> None:
    closed = session("S1", "bay1", T0, closed=T0 + 100)
    store.save_session(closed)
    store.append(newest_first([obs("bay1", "hr", T0 + 10.125, 70.5), obs("bay1", "hr", T0 + 20, 71.0),
                               obs("bay1", "spo2", T0 + 30, 0.0), obs("bay1", "hr", T0 + 150, 99.0)]))
    assert store.kept_trends("S1") is None
    early = session_trends(store, closed, T0 + 100 + SETTLED - 1)  # readings may still be on their way
    assert store.kept_trends("S1") is None and early["hr"].value.tolist() == [70.5, 71.0]
    first = session_trends(store, closed, T0 + 1000)
    kept = store.kept_trends("S1")
    assert kept is not None and sorted(kept) == sorted(first) == ["hr", "spo2"]
    rows = store.trends("bay1", T0, T0 + 100)
    for vital, trend in first.items():
        assert kept[vital].time.tolist() == trend.time.tolist() == rows[vital].time.tolist()
        assert kept[vital].value.tolist() == trend.value.tolist()
    assert kept["spo2"].value.tolist() == [0.0]  # a zero stays a zero
    assert session_trends(store, closed, T0 + 2000)["hr"].time.tolist() == [T0 + 10.125, T0 + 20]

    empty = session("S2", "bay2", T0, closed=T0 + 100)  # nothing recorded: an empty copy, not "none kept"
    store.save_session(empty)
    assert session_trends(store, empty, T0 + 1000) == {} and store.kept_trends("S2") == {}
    still_open = session("S3", "bay3", T0)
    store.save_session(still_open)
    store.append([obs("bay3", "hr", T0 + 5, 60.0)])
    assert session_trends(store, still_open, T0 + 1e6)["hr"].value.tolist() == [60.0]
    assert store.kept_trends("S3") is None  # an open session's trends still grow: never kept

    assert store.delete_session("S1") is True
    assert store.kept_trends("S1") is None


def test_audit_log_filters_newest_first(store: TraceStore) -> None:
    r1 = AuditRecord.of(T0 + 1, "alice", "acknowledge", "bay1", "spo2_low", None, {"state": "acknowledged"})
    r2 = AuditRecord.of(T0 + 2, "bob", "audio_pause", "bay1", None, None, {"seconds": 120})
    r3 = AuditRecord.of(T0 + 3, "alice", "limits", "bay2", "hr", {"high": 120}, {"high": 130})
    r4 = AuditRecord.of(T0 + 4, "admin", "login")
    r5 = AuditRecord.of(T0 + 5, "alice", "acknowledge", "bay1", "hr_high")
    r6 = AuditRecord.of(T0 + 3, "bob", "acknowledge", "bay2", "hr")  # same time as r3, written after it
    store.append_durable([r1, r2, r3])
    store.append_durable([r4, r5, r6])

    def log(**query: object) -> list[AuditRecord]:
        return store.audit_log(AuditQuery(**query))  # type: ignore[arg-type]

    assert log() == [r5, r4, r6, r3, r2, r1]
    assert log(bay="bay1") == [r5, r2, r1]
    assert log(who="alice") == [r5, r3, r1]
    assert log(action="acknowledge") == [r5, r6, r1]
    assert log(target="hr") == [r6, r3]
    assert log(since=T0 + 2, until=T0 + 4) == [r4, r6, r3, r2]
    assert log(limit=2) == [r5, r4]
    assert log(who="alice", action="acknowledge", bay="bay1") == [r5, r1]
    assert log(bay="", who="") == log()  # an empty filter is no filter
    assert log(who="nobody") == []


def test_missing_values_stay_missing_and_zeros_stay_zero(store: TraceStore) -> None:
    store.save_session(session("S1", "bay1", T0, closed=T0 + 100))
    items: list[Recordable] = [
        obs("bay1", "hr", T0 + 1, 0.0, device_time=None), obs("bay1", "hr", T0 + 2, 60.0, device_time=0.0),
        tech("bay1", T0 + 3, Condition.DEVICE_LOST, True, vital=None, detail=""),
        tech("bay1", T0 + 4, Condition.INVALID_VALUE, True, vital="spo2", detail="0"),
        AlarmEvent("bay1", "device_lost:ox1", "start", "technical", "medium", T0 + 5, "OX1 LOST"),
        AlarmEvent("bay1", "spo2_low", "start", "physiological", "high", T0 + 6, "SPO2 LOW", "spo2", 0.0, 0.0,
                   "ox1", "", 0, 0.0),
        AlarmEvent("bay1", "spo2_low", "escalated", "physiological", "high", T0 + 7, "SPO2 LOW", "spo2",
                   level=2, until=None),
        AuditRecord(T0 + 8, "nurse one", "note", None, "S1", None, None),
        AuditRecord(T0 + 9, "nurse one", "note", "bay1", "", "", "null"),
    ]
    store.append(items[:4])
    store.append_durable(items[4:])
    trace = store.session_trace("S1")
    assert trace is not None
    assert trace.observations == items[:2]
    assert trace.observations[0].device_time is None and trace.observations[1].device_time == 0.0
    assert trace.technical == items[2:4] and trace.technical[0].vital is None
    assert trace.alarms == items[4:7]
    assert (trace.alarms[0].vital, trace.alarms[0].value, trace.alarms[0].limit) == (None, None, None)
    assert trace.actions == items[7:]
    assert store.audit_log(AuditQuery()) == [items[8], items[7]]
    assert store.trends("bay1", T0, T0 + 10)["hr"].value.tolist() == [0.0, 60.0]
    periods = store.bay_history("bay1", T0, T0 + 10)["alarms"]
    assert [(p["id"], p["vital"]) for p in periods] == [("device_lost:ox1", None), ("spo2_low", "spo2")]


def test_a_large_batch_round_trips_exactly(store: TraceStore) -> None:
    n = 50_000
    rng = np.random.default_rng(7)
    vitals = ["hr", "pr", "spo2", "rr", "etco2"]
    times = T0 + np.cumsum(rng.uniform(0.001, 0.2, n))
    values = rng.normal(80.0, 15.0, n)  # full-precision doubles
    batch = [Observation("bay1", "ox1", vitals[i % 5], float(values[i]), None if i % 3 else float(times[i]) - 0.25,
                         float(times[i])) for i in range(n)]
    store.append(batch)
    store.save_session(session("S1", "bay1", T0, closed=float(times[-1])))

    trends = store.trends("bay1", T0, float(times[-1]))
    assert sorted(trends) == sorted(vitals)
    for k, vital in enumerate(vitals):
        assert np.array_equal(trends[vital].time, times[k::5])
        assert np.array_equal(trends[vital].value, values[k::5])
    trace = store.session_trace("S1")
    assert trace is not None and trace.observations == batch


# --- the store as a shared resource ----------------------------------------------------------------------------

def test_concurrent_writers_lose_nothing(store: TraceStore) -> None:
    def write(worker: int) -> None:
        for batch in range(20):
            store.append([obs("bay1", "hr", T0 + worker * 1000 + batch * 10 + i, float(worker)) for i in range(10)])
        store.append_durable([AuditRecord.of(T0 + worker, f"user{worker}", "login")])

    threads = [threading.Thread(target=write, args=(w,)) for w in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    hr = store.trends("bay1", T0, T0 + 10_000)["hr"]
    assert len(hr.time) == 6 * 20 * 10 and bool(np.all(np.diff(hr.time) > 0))
    assert len(store.audit_log(AuditQuery())) == 6


def test_close_twice_is_harmless_and_a_write_after_close_is_a_store_error(store: TraceStore) -> None:
    store.append([obs("bay1", "hr", T0, 70.0)])
    store.close()
    store.close()
    with pytest.raises(StoreError):
        store.append([obs("bay1", "hr", T0 + 1, 71.0)])
    with pytest.raises(StoreError):
        store.append_durable([AuditRecord.of(T0, "nurse one", "login")])


# --- PostgreSQL only -----------------------------------------------------------------------------------------------

def test_an_unreachable_server_fails_fast_with_where_but_without_the_password() -> None:
    started = time.monotonic()
    with pytest.raises(StoreError) as caught:
        PostgresStore("postgresql://postgres:s3cr3t-pw@127.0.0.1:1/bedside", connect_timeout=2.0)
    assert time.monotonic() - started < 3.0
    message = str(caught.value)
    assert "127.0.0.1:1/bedside" in message and "s3cr3t-pw" not in message
    threads = [t.name for t in threading.enumerate()]
    assert not any(name.startswith("pg-store 127.0.0.1:1/") for name in threads)  # its thread is gone


def test_a_call_that_takes_too_long_is_a_store_error_and_the_store_recovers(pg_schema: str) -> None:
    pg = PostgresStore(PG_URL, schema=pg_schema, timeout=0.5, connect_timeout=2.0)
    locked, release = threading.Event(), threading.Event()

    def hold_lock() -> None:
        async def hold() -> None:
            conn = await asyncpg.connect(PG_URL, timeout=2.0)
            try:
                async with conn.transaction():
                    await conn.execute(f'LOCK TABLE "{pg_schema}".annotations IN ACCESS EXCLUSIVE MODE')
                    locked.set()
                    await asyncio.to_thread(release.wait, 10.0)
            finally:
                await conn.close()

        asyncio.run(hold())

    holder = threading.Thread(target=hold_lock)
    holder.start()
    try:
        assert locked.wait(5.0)
        with pytest.raises(StoreError, match=r"add annotation: no answer within 0\.5 s"):
            pg.add_annotation("bay1", T0, "nurse one", "note", "blocked")
    finally:
        release.set()
        holder.join()
    try:
        first = pg.add_annotation("bay1", T0 + 1, "nurse one", "note", "after")
        assert [n["text"] for n in pg.bay_history("bay1", T0, T0 + 2)["annotations"]] == ["after"]
        assert first >= 1
    finally:
        pg.close()


def test_schema_versions_are_applied_once_and_recorded(pg_schema: str) -> None:
    first = PostgresStore(PG_URL, schema=pg_schema, connect_timeout=2.0)
    first.close()
    again = PostgresStore(PG_URL, schema=pg_schema, connect_timeout=2.0)  # a restart applies nothing twice
    again.close()
    assert first.schema_version == again.schema_version == len(MIGRATIONS)
    assert _pg_rows(f'SELECT version FROM "{pg_schema}".schema_migrations ORDER BY version') == [
        (v,) for v in range(1, len(MIGRATIONS) + 1)]


def test_a_database_made_before_versions_is_adopted_and_its_data_kept(pg_schema: str) -> None:
    store = PostgresStore(PG_URL, schema=pg_schema, connect_timeout=2.0)
    store.append([Observation("bay1", "ox1", "spo2", 97.0, None, T0)])
    store.close()
    _pg_rows(f'DROP TABLE "{pg_schema}".schema_migrations')  # as an earlier bedside left it
    again = PostgresStore(PG_URL, schema=pg_schema, connect_timeout=2.0)
    try:
        assert again.schema_version == len(MIGRATIONS)
        assert _pg_rows(f'SELECT value FROM "{pg_schema}".observations') == [(97.0,)]
        assert _pg_rows(f'SELECT version FROM "{pg_schema}".schema_migrations') == [(1,)]
    finally:
        again.close()


def test_a_database_of_a_newer_bedside_is_refused_and_left_alone(pg_schema: str) -> None:
    PostgresStore(PG_URL, schema=pg_schema, connect_timeout=2.0).close()
    newer = len(MIGRATIONS) + 1
    _pg_rows(f"INSERT INTO \"{pg_schema}\".schema_migrations (version, bedside) VALUES ({newer}, 'later')")
    with pytest.raises(StoreError, match=f"schema version {newer}, made by a newer bedside"):
        PostgresStore(PG_URL, schema=pg_schema, connect_timeout=2.0)
    assert _pg_rows(f'SELECT max(version) FROM "{pg_schema}".schema_migrations') == [(newer,)]


def _pg_rows(sql: str) -> list[tuple[object, ...]]:
    async def run() -> list[tuple[object, ...]]:
        conn = await asyncpg.connect(PG_URL, timeout=5.0)
        try:
            return [tuple(r) for r in await conn.fetch(sql)]
        finally:
            await conn.close()

    return asyncio.run(run())
