"""Drivers for Nonin pulse oximeters on a serial port (9600 8N1): data format 7 and data format 8.

Which format a Nonin streams is a setting of the oximeter, chosen with the set-format command
(shared/reference/device-protocols.md §1.4, as OpenICE's NoninPulseOx sends it):

    02 70 <len> 02 <fmt> <flags> <chk> 03

STX, op code 0x70, the length of what follows up to the checksum (4), 0x02, the format (0x07 or 0x08), flags
(OpenICE: 0x01, plus 0x40 spot-check mode and 0x20 Bluetooth on at power-on; verify against the device's manual),
checksum = (0x70 + len + 0x02 + fmt + flags) mod 256, ETX. The oximeter answers ACK 0x06 or NAK 0x15. OpenICE
also sends a short form without flags and checksum, `02 70 02 02 <fmt> 03`. `set_format_command` builds the
long form.

The oximeter is configured once, at installation (with Nonin's tools or `set_format_command` over this port),
and keeps streaming the chosen format at every power-on without being asked. So `start` sends nothing by default:
writing to a sensor that is already streaming gains nothing, and a command sent to a device in another format
(or a model that does not know it) would only produce an ACK/NAK byte that the codec skips as garbage. A subclass
that must set the format at every connection sets `SET_FORMAT_AT_START = True`.
"""

from __future__ import annotations

from typing import ClassVar

from drivers.codec import Codec
from drivers.nonin import NoninFormat7Codec, NoninFormat8Codec
from drivers.serial_driver import SerialDriver
from drivers.serial_transport import SerialLink, SerialSettings

STX = 0x02
ETX = 0x03
OP_SET_FORMAT = 0x70
DEFAULT_FLAGS = 0x01  # what OpenICE always sets


def set_format_command(fmt: int, flags: int = DEFAULT_FLAGS) -> bytes:
    """The long-form set-format command for data format `fmt` (e.g. 7 or 8)."""
    if not (0 <= fmt <= 0xFF and 0 <= flags <= 0xFF):
        raise ValueError(f"format {fmt} / flags {flags} do not fit a byte")
    body = bytes([0x02, fmt, flags])
    checksum = (OP_SET_FORMAT + len(body) + 1 + sum(body)) & 0xFF
    return bytes([STX, OP_SET_FORMAT, len(body) + 1, *body, checksum, ETX])


class _NoninDriver(SerialDriver):
    DEFAULTS: ClassVar[SerialSettings] = SerialSettings(baudrate=9600)  # 8N1 are SerialSettings' defaults
    FORMAT: ClassVar[int]
    SET_FORMAT_AT_START: ClassVar[bool] = False  # configured once at install; see the module docstring

    async def start(self, link: SerialLink) -> None:
        """Nothing by default; the set-format command if `SET_FORMAT_AT_START`."""
        if self.SET_FORMAT_AT_START:
            await link.write(set_format_command(self.FORMAT))


class NoninFormat7Driver(_NoninDriver):
    key: ClassVar[str] = "nonin7"
    FORMAT: ClassVar[int] = 7

    def make_codec(self) -> Codec:
        return NoninFormat7Codec()


class NoninFormat8Driver(_NoninDriver):
    key: ClassVar[str] = "nonin8"
    FORMAT: ClassVar[int] = 8

    def make_codec(self) -> Codec:
        return NoninFormat8Codec()
