"""The driver registry (lazy built-ins, entry points) and the supervisor (a crashing driver becomes "device lost",
is restarted with a backoff capped at 2 s, and never takes another driver down)."""

from __future__ import annotations

import asyncio
from typing import ClassVar

import pytest

from drivers import registry
from drivers import supervise as supervise_module
from drivers.base import CONNECTED, DeviceLost, DeviceSettings, Driver, Emit
from drivers.supervise import supervise
from monitor.model import Condition, DeviceCondition, DeviceEvent, Reading


def test_every_builtin_key_resolves_to_a_driver_with_that_key() -> None:
    for key in registry.BUILTIN:
        cls = registry.driver_class(key)
        assert issubclass(cls, Driver) and cls.key == key


def test_unknown_key_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match=r"unknown driver 'philips'.*masimo"):
        registry.driver_class("philips")


def test_entry_point_drivers_are_found(monkeypatch: pytest.MonkeyPatch) -> None:
    class FakeEntryPoint:
        name, value = "acme", f"{__name__}:Flaky"

    monkeypatch.setattr(registry, "entry_points", lambda group: [FakeEntryPoint()] if group == "bedside.drivers"
                        else [])
    assert registry.driver_class("acme") is Flaky


class Flaky(Driver):
    """Fails with a bug on its first two runs, then reads one value and idles."""

    key: ClassVar[str] = "flaky"
    runs = 0

    async def run(self, emit: Emit) -> None:
        type(self).runs += 1
        if type(self).runs <= 2:
            raise RuntimeError("bug in a driver")
        emit(CONNECTED)
        emit(Reading("spo2", 97))
        await asyncio.Event().wait()


class Steady(Driver):
    key: ClassVar[str] = "steady"

    async def run(self, emit: Emit) -> None:
        emit(CONNECTED)
        while True:
            emit(Reading("hr", 70))
            await asyncio.sleep(0.01)


async def test_crashing_driver_is_lost_then_restarted_and_others_keep_running() -> None:
    flaky_events: list[DeviceEvent] = []
    steady_events: list[DeviceEvent] = []
    tasks = [asyncio.create_task(supervise(Flaky(DeviceSettings("a")), flaky_events.append, first_delay=0.05)),
             asyncio.create_task(supervise(Steady(DeviceSettings("b")), steady_events.append))]
    try:
        for _ in range(250):  # until the flaky one is back and the steady one has kept going (bounded: 5 s)
            steady = sum(isinstance(e, Reading) for e in steady_events)
            if any(isinstance(e, Reading) for e in flaky_events) and steady > 10:
                break
            await asyncio.sleep(0.02)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    lost = [e for e in flaky_events if isinstance(e, DeviceCondition) and e.condition == Condition.DEVICE_LOST]
    assert [e.active for e in lost] == [True, True, False]
    assert lost[0].detail == "bug in a driver"
    assert flaky_events[-1] == Reading("spo2", 97)
    assert sum(isinstance(e, Reading) for e in steady_events) > 10  # never interrupted


def test_serial_line_settings_are_the_devices_unless_configured() -> None:
    from drivers.serial_driver import SerialDriver
    from drivers.serial_transport import SerialSettings

    capno = registry.driver_class("capnostream")
    assert issubclass(capno, SerialDriver)
    assert capno(DeviceSettings("c")).line_settings() == SerialSettings(115200, 8, "N", 1)
    changed = capno(DeviceSettings("c", baudrate=9600, parity="E", stopbits=2)).line_settings()
    assert changed == SerialSettings(9600, 8, "E", 2)


class Unplugged(Driver):
    """Its device is away for the first `away` runs (each fails at once), then it reads one value and idles."""

    key: ClassVar[str] = "unplugged"

    def __init__(self, settings: DeviceSettings, away: int) -> None:
        super().__init__(settings)
        self.away = away
        self.runs = 0

    async def run(self, emit: Emit) -> None:
        self.runs += 1
        if self.runs <= self.away:
            raise DeviceLost("could not open port /dev/ttyUSB0")
        emit(CONNECTED)
        emit(Reading("spo2", 97))
        await asyncio.Event().wait()


async def test_retries_back_off_to_at_most_2_s_and_the_loss_is_logged_once(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    waits: list[float] = []
    real_sleep = asyncio.sleep

    async def sleep(delay: float) -> None:  # record the supervisor's waits instead of waiting
        waits.append(delay)
        await real_sleep(0)

    monkeypatch.setattr(asyncio, "sleep", sleep)  # the supervisor's (this test waits with real_sleep)
    events: list[DeviceEvent] = []
    driver = Unplugged(DeviceSettings("ox1"), away=7)
    task = asyncio.create_task(supervise(driver, events.append))
    try:
        for _ in range(200):
            if Reading("spo2", 97) in events:
                break
            await real_sleep(0)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    # however long the device is away, it is tried again at least every 2 s: data within 5 s of its return
    assert waits == [0.5, 1.0, 2.0, 2.0, 2.0, 2.0, 2.0]
    assert max(waits) == supervise_module.MAX_DELAY
    lost = [e for e in events if isinstance(e, DeviceCondition) and e.condition == Condition.DEVICE_LOST]
    assert [e.active for e in lost] == [True] * 7 + [False]
    warnings = [r for r in caplog.records if r.name == "drivers.supervise" and r.levelname == "WARNING"]
    assert len(warnings) == 1 and "could not open port" in warnings[0].getMessage()  # not one per retry


async def test_a_failing_emit_does_not_end_the_supervision() -> None:
    calls: list[DeviceEvent] = []

    def emit(event: DeviceEvent) -> None:
        calls.append(event)
        if isinstance(event, DeviceCondition) and event.active and len(calls) == 1:
            raise RuntimeError("bug in the hub")

    driver = Unplugged(DeviceSettings("ox1"), away=2)
    task = asyncio.create_task(supervise(driver, emit, first_delay=0.01, max_delay=0.02))
    try:
        for _ in range(100):
            if Reading("spo2", 97) in calls:
                break
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert driver.runs == 3 and calls[-1] == Reading("spo2", 97)
