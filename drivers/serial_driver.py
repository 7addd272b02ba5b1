"""The base of every serial-port driver: open the port with the device's documented line settings (overridable
by config), optionally send a start command, and feed what arrives to the device's codec."""

from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar

from drivers.base import CONNECTED, DeviceLost, DeviceSettings, Driver, Emit
from drivers.codec import Codec
from drivers.serial_transport import SerialLink, SerialSettings, open_serial


class SerialDriver(Driver):
    """Subclasses set `key`, `DEFAULTS` and `make_codec`; override `start` to ask the device for data."""

    DEFAULTS: ClassVar[SerialSettings] = SerialSettings()

    def __init__(self, settings: DeviceSettings) -> None:
        super().__init__(settings)
        self.codec = self.make_codec()
        self.stats = self.codec.stats

    @abstractmethod
    def make_codec(self) -> Codec:
        """A fresh codec for this device's protocol."""

    async def start(self, link: SerialLink) -> None:
        """Send whatever the device needs before it streams (nothing, for most devices)."""

    def line_settings(self) -> SerialSettings:
        d, s = self.DEFAULTS, self.settings
        return SerialSettings(s.baudrate or d.baudrate, s.bytesize or d.bytesize, s.parity or d.parity,
                              s.stopbits or d.stopbits)

    async def run(self, emit: Emit) -> None:
        if self.settings.port is None:
            raise DeviceLost(f"{self.device_id}: no serial port configured")
        async with open_serial(self.settings.port, self.line_settings()) as link:
            await self.start(link)
            first = True
            frames_at_open = self.codec.stats.frames
            async for chunk in link.chunks():
                events = self.codec.feed(chunk)
                if first and self.codec.stats.frames > frames_at_open:
                    emit(CONNECTED)  # "device lost" ends once the device is understood again, not at open
                    first = False
                for event in events:
                    emit(event)
