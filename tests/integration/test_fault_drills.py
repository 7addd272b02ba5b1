"""Scripted faults through the whole chain (simulator on a pty -> driver -> hub -> alarm engine): a silent device
becomes a NO DATA alarm, a burst of garbage is counted and skipped, a pulled cable is DEVICE LOST and the driver
recovers by itself when it is plugged back — each alarm lasting only while its fault does."""

from __future__ import annotations

import asyncio
import time

import pytest

from alerts.engine import AlarmEngine, WatchedDevice
from alerts.profile import parse_profile
from drivers.base import DeviceSettings
from drivers.registry import driver_class
from drivers.supervise import supervise
from monitor.hub import Hub
from monitor.model import AlarmEvent, Bay, Observation, TechnicalStatus
from simulators.devices import serve_device_pty
from simulators.patient import PatientModel
from simulators.scenario import parse_scenario
from tests.integration.helpers import wait_for

pytestmark = pytest.mark.timeout(60)

SCENARIO = parse_scenario({"events": [
    {"at": 2.0, "duration": 3.0, "kind": "silent"},
    {"at": 6.0, "kind": "garbage", "bytes": 200},
    {"at": 8.0, "duration": 2.0, "kind": "cable_pulled"},
]}, "drill")


@pytest.mark.parametrize("protocol", ["masimo", "nonin8"])
async def test_silent_garbage_and_cable_pulled(protocol: str) -> None:
    hub = Hub([Bay("bay1", "Bay 1", ["dev1"])])
    profile = parse_profile({"name": "drill", "vitals": {"spo2": {"low": 85, "priority": "high"}}}, "drill")
    engine = AlarmEngine(["bay1"], [WatchedDevice("dev1", "bay1", silent_after=1.5)], profiles={"drill": profile},
                         default_profile="drill", phase_profiles={})
    alarms: list[AlarmEvent] = []
    readings: list[float] = []

    def decide(item: Observation | TechnicalStatus) -> None:
        if isinstance(item, Observation):
            readings.append(item.receive_time)
            engine.observe(item)
        else:
            alarms.extend(engine.technical(item))

    hub.add_sink(decide)
    hub.on_heard(engine.heard)

    async def ticker() -> None:
        while True:
            alarms.extend(engine.tick(time.time()))
            await asyncio.sleep(0.2)

    def phases(alarm_id: str) -> list[str]:
        return [a.phase for a in alarms if a.id == alarm_id]

    async with serve_device_pty(protocol, PatientModel(2), scenario=SCENARIO, interval=0.25) as path:
        driver = driver_class(protocol)(DeviceSettings("dev1", port=path))
        tasks = [asyncio.create_task(supervise(driver, lambda e: hub.ingest("dev1", e, time.time()),
                                               first_delay=0.2, max_delay=0.5)),
                 asyncio.create_task(ticker())]
        try:
            await wait_for(lambda: phases("no_data:dev1") == ["start", "end"], 15, "no data while silent, then end")
            await wait_for(lambda: driver.stats.rejected >= 1, 10, "the garbage counted")
            await wait_for(lambda: phases("device_lost:dev1")[:2] == ["start", "end"], 20,
                           "device lost while the cable is out, then recovery")
            back = time.time()
            await wait_for(lambda: readings[-1] > back + 0.5, 10, "readings after the cable came back")
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    assert "spo2_low" not in {a.id for a in alarms}  # no fault was turned into a false physiological alarm
