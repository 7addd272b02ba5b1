"""Scripted faults through the whole chain (simulator on a pty -> driver under its supervisor -> hub -> alarm engine
-> recorder): a silent device becomes a NO DATA alarm, a burst of garbage is counted and skipped, a pulled cable is
DEVICE LOST and the driver recovers by itself when it is plugged back. Each technical alarm comes within 10 s of
its fault and lasts only while the fault does, data flows again within 5 s of the device's return (with the
supervisor's own retry delays), and the recorded trace shows the gap: no readings during the fault, readings
either side of it, and the technical alarm's period over it.

NO DATA is raised here after a short `silent_after` (1.5 s) to keep the drill short; the default (10 s) is drilled
through a real `bedside run` in tests/integration/test_service_faults.py."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from alerts.engine import AlarmEngine, WatchedDevice
from alerts.profile import parse_profile
from drivers.base import DeviceSettings
from drivers.registry import driver_class
from drivers.supervise import supervise
from monitor.hub import Hub
from monitor.model import AlarmEvent, Bay, Observation, TechnicalStatus
from monitor.recorder import Recorder
from monitor.sqlite_store import SQLiteStore
from simulators.devices import serve_device_pty
from simulators.patient import PatientModel
from simulators.scenario import parse_scenario
from tests.integration.helpers import wait_for

pytestmark = pytest.mark.timeout(60)

SILENT = (2.0, 3.0)  # (at, duration) in the simulator's session time
GARBAGE = 6.0
PULLED = (8.0, 2.0)
SCENARIO = parse_scenario({"events": [
    {"at": SILENT[0], "duration": SILENT[1], "kind": "silent"},
    {"at": GARBAGE, "kind": "garbage", "bytes": 200},
    {"at": PULLED[0], "duration": PULLED[1], "kind": "cable_pulled"},
]}, "drill")
INTERVAL = 0.25  # s between the simulated device's frames
SILENT_AFTER = 1.5  # s (the drill's; default 10 s)
TICK = 0.2  # s between the drill's engine ticks
ALARM_WITHIN = 10.0  # s from a fault to its technical alarm (issue 8)
RESUME_WITHIN = 5.0  # s from the device's return to data again (issue 8)


class SessionClock:
    """The simulator's clock, noting when it was first read: its session time 0 (when the scenario starts)."""

    def __init__(self) -> None:
        self.t0: float | None = None

    def __call__(self) -> float:
        now = time.time()
        if self.t0 is None:
            self.t0 = now
        return now

    def at(self, t: float) -> float:
        assert self.t0 is not None, "the simulator has not started"
        return self.t0 + t


@pytest.mark.parametrize("protocol", ["masimo", "nonin8"])
async def test_silent_garbage_and_cable_pulled(protocol: str, tmp_path: Path) -> None:
    hub = Hub([Bay("bay1", "Bay 1", ["dev1"])])
    profile = parse_profile({"name": "drill", "vitals": {"spo2": {"low": 85, "priority": "high"}}}, "drill")
    engine = AlarmEngine(["bay1"], [WatchedDevice("dev1", "bay1", silent_after=SILENT_AFTER)],
                         profiles={"drill": profile}, default_profile="drill", phase_profiles={})
    store = SQLiteStore(tmp_path)
    recorder = Recorder(store)
    alarms: list[AlarmEvent] = []
    readings: list[float] = []  # receive times

    def raised(events: list[AlarmEvent]) -> None:
        alarms.extend(events)
        for e in events:
            recorder.record(e)

    def decide(item: Observation | TechnicalStatus) -> None:
        recorder.record(item)
        if isinstance(item, Observation):
            readings.append(item.receive_time)
            engine.observe(item)
        else:
            raised(engine.technical(item))

    hub.add_sink(decide)
    hub.on_heard(engine.heard)

    async def ticker() -> None:
        while True:
            raised(engine.tick(time.time()))
            await asyncio.sleep(TICK)

    def started(alarm_id: str) -> AlarmEvent:
        return next(a for a in alarms if a.id == alarm_id and a.phase == "start")

    def phases(alarm_id: str) -> list[str]:
        return [a.phase for a in alarms if a.id == alarm_id]

    def first_reading_after(t: float) -> float:
        return next(r for r in readings if r >= t)

    clock = SessionClock()
    async with serve_device_pty(protocol, PatientModel(2), scenario=SCENARIO, interval=INTERVAL,
                                clock=clock) as path:
        driver = driver_class(protocol)(DeviceSettings("dev1", port=path))
        # the supervisor's own retry delays (0.5 s doubling to 2 s): the 5 s bound must hold with them
        tasks = [asyncio.create_task(supervise(driver, lambda e: hub.ingest("dev1", e, time.time()))),
                 asyncio.create_task(ticker())]
        try:
            await wait_for(lambda: phases("no_data:dev1") == ["start", "end"], 15, "no data while silent, then end")
            await wait_for(lambda: driver.stats.rejected >= 1, 10, "the garbage counted")
            await wait_for(lambda: phases("device_lost:dev1")[:2] == ["start", "end"], 20,
                           "device lost while the cable is out, then recovery")
            plugged = clock.at(sum(PULLED))
            await wait_for(lambda: bool(readings) and readings[-1] > plugged, 10,
                           "readings after the cable came back")
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    recorder.close()
    history: dict[str, Any] = store.bay_history("bay1", clock.at(0), time.time())
    store.close()

    silent, quiet_again = clock.at(SILENT[0]), clock.at(sum(SILENT))
    pulled, plugged = clock.at(PULLED[0]), clock.at(sum(PULLED))
    last_before = max(r for r in readings if r < silent + INTERVAL)
    no_data, lost = started("no_data:dev1"), started("device_lost:dev1")
    figures = {"no data after the last reading": no_data.time - last_before,
               "no data after the silence began": no_data.time - silent,
               "data after the silence ended": first_reading_after(quiet_again) - quiet_again,
               "device lost after the pull": lost.time - pulled,
               "data after the replug": first_reading_after(plugged) - plugged}
    print(protocol, ", ".join(f"{k}: {v:.2f} s" for k, v in figures.items()))
    assert figures["no data after the silence began"] <= ALARM_WITHIN
    assert figures["no data after the last reading"] <= SILENT_AFTER + TICK + 0.2  # the delay and a tick, no more
    assert figures["data after the silence ended"] <= RESUME_WITHIN
    assert figures["device lost after the pull"] <= ALARM_WITHIN
    assert figures["data after the replug"] <= RESUME_WITHIN
    assert "spo2_low" not in {a.id for a in alarms}  # no fault was turned into a false physiological alarm

    # the recorded trace: readings up to each fault and after it, none during it, and the alarm's period over it
    recorded = [t for t, _ in history["observations"]["spo2"]]
    periods: dict[str, dict[str, Any]] = {}
    for p in history["alarms"]:  # the first period of each (a pulled cable is also silence: NO DATA again)
        periods.setdefault(p["id"], p)
    for (start, end), alarm_id in (((silent, quiet_again), "no_data:dev1"), ((pulled, plugged), "device_lost:dev1")):
        assert any(start - 1.0 < t <= start + 0.3 for t in recorded), f"readings up to the {alarm_id} fault"
        assert not [t for t in recorded if start + 0.3 < t < end], f"no readings during the {alarm_id} fault"
        assert any(end <= t < end + RESUME_WITHIN for t in recorded), f"readings after the {alarm_id} fault"
        period = periods[alarm_id]
        assert start < period["start"] < end and period["end"] is not None and period["end"] >= end
