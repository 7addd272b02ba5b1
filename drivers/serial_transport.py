"""Serial transport: any pyserial port or URL (`/dev/ttyUSB0`, `socket://host:port`, `rfc2217://...`) as an
async byte stream, with writes for devices that must be asked to start sending.

pyserial is blocking, so reads run in a worker thread with a short timeout; a read error, or a port that
vanishes, raises DeviceLost. A read returns as soon as bytes have arrived, with whatever else is already waiting
(`read(4096)` alone would wait for 4,096 bytes or the whole timeout: up to 0.2 s added to every reading, measured
by bench/latency.py). Works the same for a USB adapter, a pseudo-terminal and a terminal server.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import serial

from drivers.base import DeviceLost

READ_TIMEOUT = 0.2  # seconds a worker-thread read waits, so cancellation is prompt
CHUNK = 4096  # bytes at most in one read


@dataclass(frozen=True, slots=True)
class SerialSettings:
    """Line settings; each driver gives its device's documented defaults."""

    baudrate: int = 9600
    bytesize: int = 8
    parity: str = "N"  # N, E, O
    stopbits: float = 1


class SerialLink:
    """An open port: `chunks()` yields what arrives, `write()` sends."""

    def __init__(self, port: Any, url: str) -> None:
        self._port = port
        self.url = url

    async def chunks(self) -> AsyncIterator[bytes]:
        while True:
            try:
                chunk = await asyncio.to_thread(read_available, self._port)
            except (serial.SerialException, OSError, TypeError, AttributeError) as exc:
                # pyserial raises TypeError/AttributeError when the port is closed under a blocked read
                raise DeviceLost(f"{self.url}: {exc}") from exc
            if chunk:
                yield chunk

    async def write(self, data: bytes) -> None:
        try:
            await asyncio.to_thread(self._port.write, data)
        except (serial.SerialException, OSError) as exc:
            raise DeviceLost(f"{self.url}: {exc}") from exc


def read_available(port: Any) -> bytes:
    """Wait up to the port's timeout for a first byte, then take what is already waiting too (up to CHUNK bytes);
    b"" when nothing came."""
    data = bytearray(port.read(1))
    while data and len(data) < CHUNK and (waiting := port.in_waiting):
        data += port.read(min(waiting, CHUNK - len(data)))
    return bytes(data)


@asynccontextmanager
async def open_serial(url: str, settings: SerialSettings) -> AsyncIterator[SerialLink]:
    """Open `url` with `settings`; DeviceLost when it cannot be opened. Closed on exit."""
    try:
        port = await asyncio.to_thread(
            serial.serial_for_url,
            url,
            baudrate=settings.baudrate,
            bytesize=settings.bytesize,
            parity=settings.parity,
            stopbits=settings.stopbits,
            timeout=READ_TIMEOUT,
            write_timeout=1.0,
        )
    except (serial.SerialException, OSError, ValueError) as exc:
        raise DeviceLost(f"cannot open {url}: {exc}") from exc
    try:
        yield SerialLink(port, url)
    finally:
        port.close()
