"""Serial transport: any pyserial port or URL (`/dev/ttyUSB0`, `socket://host:port`, `rfc2217://...`) as an
async byte stream, with writes for devices that must be asked to start sending.

pyserial opens and configures the port. A local port (a device file: USB adapter, pseudo-terminal) is then read
on the event loop itself: its file descriptor is watched by the loop's selector (epoll) and read without blocking,
so a reading is handed on the moment it arrives and any number of open sockets is fine (pyserial's own blocking read
uses select(), which fails once a descriptor number passes 1,023, as it does beside a thousand MQTT connections,
measured by bench/latency.py). A URL port (terminal server) has no such descriptor and is read in a worker thread
with a short timeout, returning as soon as bytes have arrived. A read error, or a port that vanishes, raises
DeviceLost either way.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import serial

from drivers.base import DeviceLost

READ_TIMEOUT = 0.2  # seconds a worker-thread read waits, so cancellation is prompt
CHUNK = 4096  # bytes at most in one read
WRITE_TIMEOUT = 1.0  # seconds a write may take before the device counts as lost


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
        fd = local_fd(self._port)
        reads = self._fd_chunks(fd) if fd is not None else self._thread_chunks()
        async for chunk in reads:
            yield chunk

    async def _fd_chunks(self, fd: int) -> AsyncIterator[bytes]:
        while True:
            await _until_ready(fd, write=False)
            try:
                chunk = os.read(fd, CHUNK)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError as exc:  # EIO: the other end of a pty closed; a USB adapter unplugged
                raise DeviceLost(f"{self.url}: {exc}") from exc
            if not chunk:  # readable yet empty: the device is gone (as pyserial reports it)
                raise DeviceLost(f"{self.url}: the device reports data but returns none (disconnected?)")
            yield chunk

    async def _thread_chunks(self) -> AsyncIterator[bytes]:
        while True:
            try:
                chunk = await asyncio.to_thread(read_available, self._port)
            except (serial.SerialException, OSError, ValueError, TypeError, AttributeError) as exc:
                # pyserial raises TypeError/AttributeError when the port is closed under a blocked read
                raise DeviceLost(f"{self.url}: {exc}") from exc
            if chunk:
                yield chunk

    async def write(self, data: bytes) -> None:
        fd = local_fd(self._port)
        try:
            if fd is not None:
                await asyncio.wait_for(self._fd_write(fd, data), WRITE_TIMEOUT)
            else:
                await asyncio.to_thread(self._port.write, data)
        except TimeoutError as exc:
            raise DeviceLost(f"{self.url}: a write did not complete in {WRITE_TIMEOUT:.0f} s") from exc
        except (serial.SerialException, OSError, ValueError) as exc:
            raise DeviceLost(f"{self.url}: {exc}") from exc

    @staticmethod
    async def _fd_write(fd: int, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(fd, view):]
                continue
            except (BlockingIOError, InterruptedError):
                pass
            await _until_ready(fd, write=True)


async def _until_ready(fd: int, *, write: bool) -> None:
    """Wait until the event loop's selector says `fd` can be read (or written) without blocking."""
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()
    (loop.add_writer if write else loop.add_reader)(fd, _set, ready)
    try:
        await ready
    finally:
        (loop.remove_writer if write else loop.remove_reader)(fd)


def _set(ready: asyncio.Future[None]) -> None:
    if not ready.done():
        ready.set_result(None)


def local_fd(port: Any) -> int | None:
    """The non-blocking file descriptor of a local port opened by pyserial on POSIX; None for URL handlers."""
    posix = getattr(serial, "serialposix", None)
    if posix is not None and isinstance(port, posix.Serial) and isinstance(getattr(port, "fd", None), int):
        fd: int = port.fd
        return fd
    return None


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
            write_timeout=WRITE_TIMEOUT,
        )
    except (serial.SerialException, OSError, ValueError) as exc:
        raise DeviceLost(f"cannot open {url}: {exc}") from exc
    try:
        yield SerialLink(port, url)
    finally:
        port.close()
