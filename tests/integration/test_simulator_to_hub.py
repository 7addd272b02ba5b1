"""Simulator -> real transport -> driver -> hub: the Masimo simulator on a pty, the MQTT monitor simulator through
a private Mosquitto. The values the hub holds are the ones the simulated patient had."""

from __future__ import annotations

import asyncio
import time

import pytest

from drivers.base import DeviceSettings
from drivers.masimo_driver import MasimoDriver
from drivers.mqtt_driver import MqttDriver
from drivers.supervise import supervise
from monitor.hub import Hub
from monitor.model import Bay, Observation, TechnicalStatus
from monitor.mosquitto import PrivateMosquitto
from simulators.masimo import serve_pty
from simulators.mqtt_monitor import run_mqtt_simulator
from simulators.patient import PatientModel
from tests.integration.helpers import wait_for

pytestmark = pytest.mark.timeout(30)


def hub_for(device: str) -> tuple[Hub, list[Observation | TechnicalStatus]]:
    hub = Hub([Bay("bay1", "Bay 1", [device])])
    items: list[Observation | TechnicalStatus] = []
    hub.add_sink(items.append)
    return hub, items


async def test_masimo_simulator_over_pty_to_hub() -> None:
    model = PatientModel(7, noise=False)
    hub, items = hub_for("ox1")
    async with serve_pty(model, interval=0.1) as path:
        driver = MasimoDriver(DeviceSettings("ox1", port=path))
        task = asyncio.create_task(supervise(driver, lambda e: hub.ingest("ox1", e, time.time())))
        try:
            await wait_for(lambda: sum(isinstance(i, Observation) for i in items) >= 9, 10, "three lines")
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    spo2 = [o.value for o in items if isinstance(o, Observation) and o.vital == "spo2"]
    pr = [o.value for o in items if isinstance(o, Observation) and o.vital == "pr"]
    # the line carries whole numbers: the model's value rounded (noise off, so it barely moves in 1 s)
    assert all(abs(v - model.sample(0)["spo2"]) <= 1 for v in spo2)
    assert all(abs(v - model.sample(0)["pr"]) <= 2 for v in pr)
    assert driver.codec.stats.frames >= 3
    assert not any(isinstance(i, TechnicalStatus) and i.active for i in items)


async def test_mqtt_simulator_through_mosquitto_to_hub(broker: PrivateMosquitto) -> None:
    model = PatientModel(11, noise=False)
    hub, items = hub_for("mon1")
    driver = MqttDriver(DeviceSettings("mon1", mqtt_host=broker.host, mqtt_port=broker.port, site="clinic"))
    drv = asyncio.create_task(supervise(driver, lambda e: hub.ingest("mon1", e, time.time())))
    sim = asyncio.create_task(run_mqtt_simulator(broker.host, broker.port, "clinic", "mon1", model, interval=0.1,
                                                 nibp_interval=0.3))
    try:
        await wait_for(lambda: {"hr", "spo2", "nibp_sys"} <= set(hub.bays["bay1"].latest), 10, "hr, spo2 and nibp")
        latest = hub.bays["bay1"].latest
        base = model.sample(0)
        assert abs(latest["hr"].value - base["hr"]) < 3
        assert abs(latest["nibp_sys"].value - base["nibp_sys"]) < 3
        assert latest["spo2"].device == "mon1"
        sim.cancel()  # the monitor goes away cleanly: it says offline, which is "device lost"
        await asyncio.gather(sim, return_exceptions=True)
        await wait_for(lambda: any(isinstance(i, TechnicalStatus) and i.active for i in items), 5, "device lost")
    finally:
        for task in (drv, sim):
            task.cancel()
        await asyncio.gather(drv, sim, return_exceptions=True)
