"""Every serial protocol end to end: its simulator (encoder written apart from the decoder) on a real pty ->
the driver from the registry -> the hub, with the values checked against the simulated patient. Then faults
from a scenario: the sensor coming off raises the right technical status, and clears again."""

from __future__ import annotations

import asyncio
import time

import pytest

from drivers.base import DeviceSettings
from drivers.registry import driver_class
from drivers.supervise import supervise
from monitor.hub import Hub
from monitor.model import Bay, Condition, Observation, TechnicalStatus
from simulators.devices import PROTOCOLS, serve_device_pty
from simulators.patient import PatientModel
from simulators.scenario import parse_scenario
from tests.integration.helpers import wait_for

pytestmark = pytest.mark.timeout(40)

# What each protocol carries: all of them SpO2 and pulse rate; the Capnostream also EtCO2 and RR.
CARRIES = {"masimo": {"spo2", "pr"}, "nellcor": {"spo2", "pr"}, "nonin7": {"spo2", "pr"}, "nonin8": {"spo2", "pr"},
           "capnostream": {"spo2", "pr", "etco2", "rr"}}
TOLERANCE = {"spo2": 1.5, "pr": 3.0, "etco2": 1.5, "rr": 1.5}  # the wire carries whole numbers; drift is slow


def bay_hub(device: str) -> tuple[Hub, list[Observation | TechnicalStatus]]:
    hub = Hub([Bay("bay1", "Bay 1", [device])])
    items: list[Observation | TechnicalStatus] = []
    hub.add_sink(items.append)
    return hub, items


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_simulator_pty_driver_hub(protocol: str) -> None:
    assert set(CARRIES) == set(PROTOCOLS)
    model = PatientModel(21, noise=False)
    hub, items = bay_hub("dev1")
    start = time.time()
    async with serve_device_pty(protocol, model, interval=0.2) as path:
        driver = driver_class(protocol)(DeviceSettings("dev1", port=path))
        task = asyncio.create_task(supervise(driver, lambda e: hub.ingest("dev1", e, time.time())))
        try:
            await wait_for(lambda: CARRIES[protocol] <= set(hub.bays["bay1"].latest), 15, f"{protocol} values")
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    expected = model.sample(time.time() - start)
    for vital in CARRIES[protocol]:
        got = hub.bays["bay1"].latest[vital].value
        assert abs(got - expected[vital]) <= TOLERANCE[vital], (protocol, vital, got, expected[vital])
    assert driver.stats.frames > 0
    assert driver.stats.rejected <= 1  # at most a partial first frame, read mid-stream when the port opened
    assert not any(isinstance(i, TechnicalStatus) and i.active for i in items), items


SENSOR_OFF = parse_scenario({"events": [{"at": 1.0, "duration": 2.0, "kind": "sensor_off"}]}, "test")


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_sensor_off_raises_the_sensor_status_and_no_zero_values(protocol: str) -> None:
    hub, items = bay_hub("dev1")
    async with serve_device_pty(protocol, PatientModel(3), scenario=SENSOR_OFF, interval=0.2) as path:
        driver = driver_class(protocol)(DeviceSettings("dev1", port=path))
        task = asyncio.create_task(supervise(driver, lambda e: hub.ingest("dev1", e, time.time())))
        try:
            def sensor(active: bool) -> bool:
                return any(isinstance(i, TechnicalStatus) and i.condition == Condition.SENSOR_OFF
                           and i.active is active for i in items)

            await wait_for(lambda: sensor(True), 15, f"{protocol}: sensor off")
            await wait_for(lambda: sensor(False), 15, f"{protocol}: sensor back on")
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    on = next(i for i, x in enumerate(items) if isinstance(x, TechnicalStatus) and x.active
              and x.condition == Condition.SENSOR_OFF)
    off = next(i for i, x in enumerate(items) if isinstance(x, TechnicalStatus) and not x.active
               and x.condition == Condition.SENSOR_OFF)
    during = [x for x in items[on:off] if isinstance(x, Observation) and x.vital in ("spo2", "pr")]
    assert all(x.value > 0 for x in during), during  # missing is missing: never a 0 while the probe is off
