"""Serial transport: any pyserial port or URL (`/dev/ttyUSB0`, `socket://host:port`, `rfc2217://...`) as an
async byte stream.

pyserial is blocking, so reads run in a worker thread with a short timeout; a read error, or a port that
vanishes, raises DeviceLost. Works the same for a USB adapter, a pseudo-terminal and a terminal server.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import serial

from drivers.base import DeviceLost

READ_TIMEOUT = 0.2  # seconds a worker-thread read waits, so cancellation is prompt


@dataclass(frozen=True, slots=True)
class SerialSettings:
    """Line settings; each driver gives its device's documented defaults."""

    baudrate: int = 9600
    bytesize: int = 8
    parity: str = "N"
    stopbits: float = 1


async def read_serial(url: str, settings: SerialSettings) -> AsyncIterator[bytes]:
    """Yield chunks of bytes from the port until cancelled; raise DeviceLost when it cannot be read."""
    try:
        port = await asyncio.to_thread(
            serial.serial_for_url,
            url,
            baudrate=settings.baudrate,
            bytesize=settings.bytesize,
            parity=settings.parity,
            stopbits=settings.stopbits,
            timeout=READ_TIMEOUT,
        )
    except (serial.SerialException, OSError, ValueError) as exc:
        raise DeviceLost(f"cannot open {url}: {exc}") from exc
    try:
        while True:
            try:
                chunk: bytes = await asyncio.to_thread(port.read, 4096)
            except (serial.SerialException, OSError) as exc:
                raise DeviceLost(f"{url}: {exc}") from exc
            if chunk:
                yield chunk
    finally:
        port.close()
