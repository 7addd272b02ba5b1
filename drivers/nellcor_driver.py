"""Driver for Nellcor N-560 / N-595 pulse oximeters on a serial port (ASCII trend output, 9600 8N1).

The monitor streams its trend lines (one every 2 s, with a header block every ~25 lines) as soon as its serial
output is set to ASCII, without being asked, so nothing is sent: `start` is the base class's no-op. The N-595's
interactive mode (entered by sending `03 03`; `31 0D 0A` dumps instrument info, `30 0D 0A` exits) is for dumps
and is not used; its menu lines are recognised by the codec should they appear.
"""

from __future__ import annotations

from typing import ClassVar

from drivers.codec import Codec
from drivers.nellcor import NellcorCodec
from drivers.serial_driver import SerialDriver
from drivers.serial_transport import SerialSettings


class NellcorDriver(SerialDriver):
    key: ClassVar[str] = "nellcor"
    DEFAULTS: ClassVar[SerialSettings] = SerialSettings(baudrate=9600)  # 8N1 are SerialSettings' defaults

    def make_codec(self) -> Codec:
        return NellcorCodec()
