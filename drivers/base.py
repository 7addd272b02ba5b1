"""The driver base class: one device, one transport, one codec, run as a long-lived coroutine.

`Driver.run(emit)` connects, then passes every decoded DeviceEvent to `emit` until it is cancelled or the
connection fails (it raises `DeviceLost`). It reports `DeviceCondition(DEVICE_LOST, active=False)` once
connected, so the bay's "device lost" ends when data can flow again. Restarting belongs to `supervise`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from drivers.codec import CodecStats
from monitor.model import Condition, DeviceCondition, DeviceEvent

Emit = Callable[[DeviceEvent], None]

CONNECTED = DeviceCondition(Condition.DEVICE_LOST, False, None, "connected")


class DeviceLost(Exception):
    """The port or broker connection of a device is gone."""


@dataclass(frozen=True, slots=True)
class DeviceSettings:
    """What a driver needs to reach its device; drivers ignore what does not apply to them."""

    device_id: str
    port: str | None = None  # serial device path or pyserial URL
    baudrate: int | None = None
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 1883
    mqtt_username: str | None = None
    mqtt_password: str | None = None
    site: str = "clinic"
    mqtt_tls: bool = False
    mqtt_ca_file: str | None = None
    mqtt_cert_file: str | None = None
    mqtt_key_file: str | None = None
    bytesize: int | None = None  # serial line overrides (None: the device's documented setting)
    parity: str | None = None
    stopbits: float | None = None


class Driver(ABC):
    """A device driver; subclasses set `key` (the registry name) and implement `run`."""

    key: ClassVar[str]

    def __init__(self, settings: DeviceSettings) -> None:
        self.settings = settings
        self.stats = CodecStats()

    @property
    def device_id(self) -> str:
        return self.settings.device_id

    @abstractmethod
    async def run(self, emit: Emit) -> None:
        """Stream the device's events into `emit` until cancelled; raise DeviceLost when the link breaks."""
