"""Driver for Masimo Radical-7 / Rad-8 pulse oximeters on a serial port (ASCII 1 output, 9600 8N1)."""

from __future__ import annotations

from typing import ClassVar

from drivers.base import CONNECTED, DeviceLost, DeviceSettings, Driver, Emit
from drivers.masimo import MasimoCodec
from drivers.serial_transport import SerialSettings, read_serial


class MasimoDriver(Driver):
    key: ClassVar[str] = "masimo"
    DEFAULTS = SerialSettings(baudrate=9600)

    def __init__(self, settings: DeviceSettings) -> None:
        super().__init__(settings)
        self.codec = MasimoCodec()
        self.stats = self.codec.stats

    async def run(self, emit: Emit) -> None:
        if self.settings.port is None:
            raise DeviceLost(f"{self.device_id}: no serial port configured")
        line = SerialSettings(baudrate=self.settings.baudrate or self.DEFAULTS.baudrate)
        first = True
        async for chunk in read_serial(self.settings.port, line):
            if first:
                emit(CONNECTED)
                first = False
            for event in self.codec.feed(chunk):
                emit(event)
