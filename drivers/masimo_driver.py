"""Driver for Masimo Radical-7 / Rad-8 pulse oximeters on a serial port (ASCII 1 output, 9600 8N1)."""

from __future__ import annotations

from typing import ClassVar

from drivers.codec import Codec
from drivers.masimo import MasimoCodec
from drivers.serial_driver import SerialDriver
from drivers.serial_transport import SerialSettings


class MasimoDriver(SerialDriver):
    key: ClassVar[str] = "masimo"
    DEFAULTS: ClassVar[SerialSettings] = SerialSettings(baudrate=9600)

    def make_codec(self) -> Codec:
        return MasimoCodec()
