"""Driver for the Oridion / Medtronic Capnostream 20 capnograph / pulse oximeter on a serial port (115200 8N1).

The monitor streams nothing until the host asks. What is sent, in the device's own framing (`encode_command`),
follows mdpnp/mdpnp DemoCapnostream20.java (doInitCommands, receiveDeviceIdSoftwareVersion, linkIsActive), and an
independent host, fus_anes `capnostream.py` (initialize_device), sends the same start pair:

  at start   `85 01 01 00`  Enable communication (command 1). The monitor answers with its device id and software
                            version (message 4); mdpnp and fus_anes wait for that answer, this driver waits
                            START_PAUSE seconds (the answer is read, counted and ignored by the codec), then sends
             `85 01 04 05`  Start real-time communication (command 4): from then the monitor streams CO2 wave
                            (message 0, ~20 Hz) and numerics (message 1) messages.
  every 5 s  `85 01 06 07`  Link is active (command 6), as mdpnp's adapter does every 5 s. If no frame at all was
                            decoded since the previous period, the start pair is sent again instead (the monitor
                            was switched off and on, or re-plugged, while the port stayed open).

Not sent: "configure periodic message" (command 10, payload [data item, on/off]) — in the source it switches the
optional periodic IPI (data item 1) and Rainbow parameter (data item 5) messages, not the numerics, and nothing
in mdpnp sends it to start streaming. Neither are mdpnp's host id ("ICE", command 7) and its "communication
interruption indication" setup (command 60, item 4), which only change what the monitor shows.
"""

from __future__ import annotations

import asyncio
import logging
from typing import ClassVar

from drivers.base import DeviceLost, DeviceSettings, Emit
from drivers.capnostream import ESCAPE, HEADER, CapnostreamCodec
from drivers.codec import Codec
from drivers.serial_driver import SerialDriver
from drivers.serial_transport import SerialLink, SerialSettings

log = logging.getLogger(__name__)

# host -> device command codes (mdpnp Capnostream.java `enum Command`)
ENABLE_COMM = 1
START_RT_COMM = 4
LINK_IS_ACTIVE = 6


def encode_command(code: int, payload: bytes = b"") -> bytes:
    """A host -> device message: header, then length (payload + 1), code, payload and the XOR checksum of those,
    with 0x80 escaped as `80 00` and 0x85 as `80 05` after the header (mdpnp SplitBytesOutputStream)."""
    if not 0 <= code <= 0xFF or len(payload) > 0xFE:
        raise ValueError(f"command {code} with {len(payload)} payload bytes does not fit a message")
    body = bytes([len(payload) + 1, code]) + payload
    checksum = 0
    for b in body:
        checksum ^= b
    escaped = bytearray([HEADER])
    for b in (*body, checksum):
        if b == ESCAPE:
            escaped += b"\x80\x00"
        elif b == HEADER:
            escaped += b"\x80\x05"
        else:
            escaped.append(b)
    return bytes(escaped)


ENABLE = encode_command(ENABLE_COMM)  # 85 01 01 00
START_REALTIME = encode_command(START_RT_COMM)  # 85 01 04 05
KEEP_ALIVE = encode_command(LINK_IS_ACTIVE)  # 85 01 06 07


class CapnostreamDriver(SerialDriver):
    key: ClassVar[str] = "capnostream"
    DEFAULTS: ClassVar[SerialSettings] = SerialSettings(baudrate=115200)  # 8N1 are SerialSettings' defaults
    START_PAUSE: ClassVar[float] = 0.5  # seconds between "enable communication" and "start real-time"
    KEEP_ALIVE_PERIOD: ClassVar[float] = 5.0  # seconds between "link is active" messages

    def __init__(self, settings: DeviceSettings) -> None:
        super().__init__(settings)
        self._keep_alive: asyncio.Task[None] | None = None

    def make_codec(self) -> Codec:
        return CapnostreamCodec()

    async def start(self, link: SerialLink) -> None:
        await self._send_start(link)
        self._keep_alive = asyncio.create_task(self._keep_link_alive(link))

    async def run(self, emit: Emit) -> None:
        try:
            await super().run(emit)
        finally:
            await self._stop_keep_alive()

    async def _send_start(self, link: SerialLink) -> None:
        await link.write(ENABLE)
        await asyncio.sleep(self.START_PAUSE)
        await link.write(START_REALTIME)

    async def _keep_link_alive(self, link: SerialLink) -> None:
        seen = self.codec.stats.frames
        try:
            while True:
                await asyncio.sleep(self.KEEP_ALIVE_PERIOD)
                seen = await self._keep_alive_tick(link, seen)
        except DeviceLost as exc:
            log.warning("%s: keep-alive stopped: %s", self.device_id, exc)  # the read loop will see the loss too

    async def _keep_alive_tick(self, link: SerialLink, seen: int) -> int:
        """One period: "link is active" if frames arrived since `seen`, else the start pair again."""
        frames = self.codec.stats.frames
        if frames == seen:
            log.info("%s: no frames for %g s; asking the monitor to start again", self.device_id,
                     self.KEEP_ALIVE_PERIOD)
            await self._send_start(link)
        else:
            await link.write(KEEP_ALIVE)
        return frames

    async def _stop_keep_alive(self) -> None:
        task, self._keep_alive = self._keep_alive, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task])
            if not task.cancelled() and task.exception() is not None:
                log.error("%s: keep-alive failed", self.device_id, exc_info=task.exception())
