"""Service-level technical alarms: RECORDING FAILED on every bay while the recorder's writes keep failing, ended
when they succeed again; ALARM ENGINE FAILURE when the engine raises on a sample."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config import parse_config
from monitor.model import Observation
from monitor.service import RECORDING_FAILURES, Service
from tests.storage import with_storage

pytestmark = pytest.mark.service


def service(tmp_path: Path) -> Service:
    cfg = parse_config(with_storage({"data_dir": str(tmp_path), "bays": [
        {"id": "bay1", "devices": [{"id": "ox1", "driver": "masimo", "port": "/dev/null"}]},
        {"id": "bay2", "devices": [{"id": "ox2", "driver": "masimo", "port": "/dev/null"}]}]}))
    return Service(cfg, clock=lambda: 100.0)


def test_recording_failed_starts_on_every_bay_and_ends(tmp_path: Path) -> None:
    s = service(tmp_path)
    s.recorder.consecutive_failures = RECORDING_FAILURES - 1
    assert s._recording_alarms(1.0) == []
    s.recorder.consecutive_failures = RECORDING_FAILURES
    started = s._recording_alarms(2.0)
    assert [(a.bay, a.id, a.phase, a.priority) for a in started] == [
        ("bay1", "recording_failed", "start", "medium"), ("bay2", "recording_failed", "start", "medium")]
    assert s._recording_alarms(3.0) == []  # still failing: no repeat
    assert {a.start.bay for a in s.engine.active() if a.start.id == "recording_failed"} == {"bay1", "bay2"}
    s.recorder.consecutive_failures = 0
    assert [(a.bay, a.phase) for a in s._recording_alarms(4.0)] == [("bay1", "end"), ("bay2", "end")]
    s.db.close()


def test_engine_exception_becomes_a_high_priority_alarm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = service(tmp_path)
    published: list[object] = []
    monkeypatch.setattr(s.broadcast, "publish", published.append)

    def broken(obs: Observation) -> list[object]:
        raise ZeroDivisionError("bug")

    monkeypatch.setattr(s.engine, "observe", broken)
    s._decide(Observation("bay2", "ox2", "spo2", 97.0, None, 100.0))
    s._decide(Observation("bay2", "ox2", "spo2", 97.0, None, 101.0))
    alarms = [p for p in published if getattr(p, "id", None) == "engine_failure"]
    assert [(a.bay, a.priority) for a in alarms] == [("bay2", "high")]  # once, not per sample
    assert [a.start.id for a in s.engine.active("bay2")] == ["engine_failure"]  # so every snapshot shows it
    s.db.close()


def test_a_failing_engine_tick_raises_the_failure_alarm_on_every_bay(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    s = service(tmp_path)
    published: list[object] = []
    monkeypatch.setattr(s.broadcast, "publish", published.append)

    def broken(now: float) -> list[object]:
        raise ValueError("bug")

    monkeypatch.setattr(s.engine, "tick", broken)
    s.tick()
    s.tick()  # the ticks go on; the alarm is not repeated
    from monitor.model import AlarmEvent

    alarms = [p for p in published if isinstance(p, AlarmEvent) and p.id == "engine_failure"]
    assert sorted((a.bay, a.phase, a.priority) for a in alarms) == [
        ("bay1", "start", "high"), ("bay2", "start", "high")]
    s.db.close()


async def test_an_observation_is_decided_within_one_short_tick_not_the_next_second(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    from monitor.model import AlarmEvent
    from monitor.service import MIN_TICK_GAP

    s = service(tmp_path)
    published: list[object] = []
    monkeypatch.setattr(s.broadcast, "publish", published.append)
    for v in (97.0, 75.0, 76.0):  # three readings at once share one tick; 75 is below the desat floor (80)
        s._decide(Observation("bay1", "ox1", "spo2", v, None, 100.0))
    assert not [p for p in published if isinstance(p, AlarmEvent)]  # decided at the tick, not inside _decide
    await asyncio.sleep(MIN_TICK_GAP * 5)
    alarms = [p for p in published if isinstance(p, AlarmEvent)]
    assert [(a.id, a.phase, a.value) for a in alarms] == [("spo2_low", "start", 76.0)]  # the latest value counts
    s.db.close()


async def test_no_data_comes_when_silent_after_runs_out_not_up_to_a_tick_later(tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio
    import time

    from monitor.model import AlarmEvent, Reading
    from monitor.service import TICK

    silent_after = 0.3  # s; much shorter than TICK (1 s), so a once-a-second ticker alone would be late
    cfg = parse_config(with_storage({"data_dir": str(tmp_path), "bays": [{"id": "bay1", "devices": [
        {"id": "ox1", "driver": "masimo", "port": "/dev/null", "silent_after": silent_after}]}]}))
    s = Service(cfg)  # the real clock: the ticker sleeps in real time
    published: list[object] = []
    monkeypatch.setattr(s.broadcast, "publish", published.append)
    s.tick()  # the engine's first look
    ticker = asyncio.create_task(s._ticker())
    try:
        await asyncio.sleep(0.2)  # the ticker is now asleep with nothing due (ox1 never heard)
        heard = time.time()
        s.hub.ingest("ox1", Reading("spo2", 97.0), heard)
        for _ in range(int(2 * TICK / 0.05)):
            if any(isinstance(p, AlarmEvent) and p.id == "no_data:ox1" for p in published):
                break
            await asyncio.sleep(0.05)
    finally:
        ticker.cancel()
        s.db.close()
    no_data = [p for p in published if isinstance(p, AlarmEvent) and p.id == "no_data:ox1"]
    assert [a.phase for a in no_data] == ["start"]
    assert silent_after <= no_data[0].time - heard < silent_after + 0.1  # on time, not at the next whole tick
