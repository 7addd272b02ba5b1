"""Where a simulated serial device writes: a pty, a serial port (or pyserial URL), or a TCP server; any protocol.

A device simulator is reduced to a *frame source*, `frames(t, when) -> bytes`: the bytes the device sends at
session time `t` (seconds since the simulator started), stamped with its wall clock `when` (naive local time,
as a device clock has no zone). `run_frames` calls it every `interval` seconds and writes what it returns. Two
optional hooks make the rest of a device:

- `respond(data) -> bytes`: the device's answer to bytes the host (the driver) sent; written at once. Only a
  device with a host protocol (Capnostream) answers anything; the sinks always read (and without `respond`
  discard) what the host writes, so a driver's writes never block.
- `cable(t) -> bool`: whether the cable is plugged in at session time `t` (scenario event `cable_pulled`).
  While it is pulled nothing is written (the device keeps running: `frames` is still called) and each sink
  does what unplugging does to it, so a driver sees a lost device, not just silence:

  * pty (`PtyServer`, `serve_pty`): the master is closed and the driver-side path disappears. A driver that
    has the port open gets a read error (pyserial: `SerialException: device reports readiness to read but
    returned no data`; writes fail with EIO); opening the path again fails with ENOENT until the cable is
    back. Then a new pty is created and the *stable path* - a symlink that this module keeps pointing at the
    current pty's slave - exists again, like /dev/ttyUSB0 coming back after a USB adapter is replugged. With
    a cable function and no `link`, a symlink in a new temporary directory is made, and that is the path
    to give the driver. Without a cable function the plain /dev/pts/N path is used, as before.
  * TCP (`TcpServer`, `serve_tcp`): the listening socket and every connection are closed; a connected driver
    reads EOF, and connecting fails (connection refused) until the cable is back, when the server listens
    again on the same port.
  * serial port (`serve_serial`): our side of the port is closed (DTR drops) and reopened afterwards. What the
    far end sees depends on the cable: over a null-modem or a socat pty pair only silence (and DSR/CD if
    wired).

Every sink drops bytes that cannot be written at once (nobody listening, buffer full), as a UART does.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import shutil
import tempfile
import termios
import time
import tty
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from pathlib import Path

import serial

Writer = Callable[[bytes], None]
FrameSource = Callable[[float, datetime], bytes]
"""`frames(t, when)`: the bytes a device sends at session time `t` (s), device wall clock `when`."""
Responder = Callable[[bytes], bytes]
"""`respond(data)`: the device's immediate answer (maybe b"") to bytes received from the host."""
Cable = Callable[[float], bool]
"""`cable(t)`: True while the cable is plugged in at session time `t`."""

INPUT_POLL = 0.02  # seconds between reads of what the host wrote


async def wait_or_stop(stop: asyncio.Event | None, delay: float) -> bool:
    """Sleep `delay` seconds or until `stop` is set; True if stopped."""
    if stop is None:
        await asyncio.sleep(max(0.0, delay))
        return False
    if stop.is_set():
        return True
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), max(0.0, delay))
    return stop.is_set()


async def run_frames(
    write: Writer,
    frames: FrameSource,
    *,
    interval: float = 1.0,
    clock: Callable[[], float] = time.time,
    stop: asyncio.Event | None = None,
    cable: Cable | None = None,
    on_cable: Callable[[bool], Awaitable[None]] | None = None,
) -> None:
    """Write `frames(t, when)` every `interval` seconds until cancelled or `stop` is set.

    Session time t = clock() - clock() at the start (clock() is called once at the start and once per tick);
    `when` is clock() as local time. Ticks are scheduled on the event loop's clock, so they do not drift;
    after a stall the loop resumes without a burst. When `cable(t)` changes, `on_cable(plugged)` is awaited
    before anything else happens at that tick; while unplugged, frames are computed but not written.
    """
    if not interval > 0:
        raise ValueError(f"interval must be > 0 s, got {interval}")
    loop = asyncio.get_running_loop()
    start = clock()
    next_tick = loop.time()
    plugged = True
    while stop is None or not stop.is_set():
        now = clock()
        t = now - start
        if cable is not None and cable(t) != plugged:
            plugged = not plugged
            if on_cable is not None:
                await on_cable(plugged)
        data = frames(t, datetime.fromtimestamp(now))
        if plugged and data:
            write(data)
        next_tick = max(next_tick + interval, loop.time())
        if await wait_or_stop(stop, next_tick - loop.time()):
            return


# -- pseudo-terminal ----------------------------------------------------------------------------------------


def open_pty() -> tuple[int, str]:
    """Create a pseudo-terminal for a simulated serial device; returns (master_fd, slave_path).

    The slave side is put in raw mode with echo off and its fd is closed again, so nothing leaks: the driver
    opens `slave_path` (e.g. `serial.Serial(slave_path, 9600)`), the simulator writes to `master_fd`, and the
    caller closes `master_fd` when done. The master is non-blocking: on Linux, while no one has the slave open,
    written bytes pile up until the buffer is full and reads of the master fail with EIO; write through
    `pty_writer`, which drops a line that does not fit, as a real UART does when nobody listens.
    """
    master_fd, slave_fd = os.openpty()
    try:
        slave_path = os.ttyname(slave_fd)
        tty.setraw(slave_fd)
        attrs = termios.tcgetattr(slave_fd)
        attrs[3] &= ~(termios.ECHO | termios.ECHONL | termios.ICANON)
        termios.tcsetattr(slave_fd, termios.TCSANOW, attrs)
    except BaseException:
        os.close(master_fd)
        raise
    finally:
        os.close(slave_fd)
    os.set_blocking(master_fd, False)
    return master_fd, slave_path


def pty_writer(master_fd: int) -> Writer:
    """A sink writing to a non-blocking pty master; bytes that do not fit (no reader, full buffer) are dropped."""

    def write(data: bytes) -> None:
        try:
            os.write(master_fd, data)
        except BlockingIOError:
            pass
        except OSError as exc:
            if exc.errno != errno.EIO:
                raise

    return write


def _point(link: Path, target: str) -> None:
    """Make `link` a symlink to `target`, atomically replacing an older symlink (never a regular file)."""
    if link.exists() and not link.is_symlink():
        raise FileExistsError(f"{link} exists and is not a symlink; not replacing it")
    tmp = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    os.symlink(target, tmp)
    os.replace(tmp, link)


class PtyServer:
    """A simulated device on a pty: created at once (so `path` is known before `run`), served by `run`.

    `path` is what the driver opens: the pty's slave path, or the symlink `link` to it (made in a new
    temporary directory when `cable` is given without `link`, so the path survives a `cable_pulled`). `run`
    writes frames until cancelled or stopped and then closes everything; `close` (idempotent) does that too,
    for a server whose `run` never started. See the module docstring for what a driver sees when unplugged.
    """

    def __init__(
        self,
        frames: FrameSource,
        *,
        interval: float = 1.0,
        clock: Callable[[], float] = time.time,
        respond: Responder | None = None,
        cable: Cable | None = None,
        link: str | os.PathLike[str] | None = None,
    ) -> None:
        self._frames = frames
        self._interval = interval
        self._clock = clock
        self._respond = respond
        self._cable = cable
        self._tmpdir: str | None = None
        self._master: int | None
        self._master, self.slave_path = open_pty()
        self._link: Path | None = None
        try:
            if link is not None:
                self._link = Path(link)
            elif cable is not None:
                self._tmpdir = tempfile.mkdtemp(prefix="bedside-sim-")
                self._link = Path(self._tmpdir) / "tty"
            if self._link is not None:
                _point(self._link, self.slave_path)
        except BaseException:
            self.close()
            raise
        self.path: str = str(self._link) if self._link is not None else self.slave_path
        """The path a driver opens (stable across cable pulls when it is a symlink)."""

    @property
    def plugged(self) -> bool:
        """Whether the pty exists now (False during a cable pull and after close)."""
        return self._master is not None

    def write(self, data: bytes) -> None:
        """Write to the current pty; dropped while unplugged or when nobody reads."""
        if self._master is not None:
            pty_writer(self._master)(data)

    async def _on_cable(self, plugged: bool) -> None:
        if not plugged:
            if self._link is not None:
                with contextlib.suppress(FileNotFoundError):
                    self._link.unlink()
            if self._master is not None:
                os.close(self._master)
                self._master = None
        elif self._master is None:
            self._master, self.slave_path = open_pty()
            if self._link is not None:
                _point(self._link, self.slave_path)

    async def _read_host(self) -> None:
        """Read what the driver writes (so its writes never block on a full pty) and answer it."""
        while True:
            await asyncio.sleep(INPUT_POLL)
            if self._master is None:
                continue
            try:
                data = os.read(self._master, 4096)
            except OSError:  # BlockingIOError: nothing sent; EIO: nobody has the slave open
                continue
            if data and self._respond is not None:
                reply = self._respond(data)
                if reply:
                    self.write(reply)

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Serve until cancelled or `stop` is set, then close the pty (and the symlink this server made)."""
        reader = asyncio.create_task(self._read_host())
        try:
            await run_frames(
                self.write,
                self._frames,
                interval=self._interval,
                clock=self._clock,
                stop=stop,
                cable=self._cable,
                on_cable=self._on_cable,
            )
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            self.close()

    def close(self) -> None:
        """Close the pty and remove the symlink (and its temporary directory, if this server made one)."""
        if self._master is not None:
            os.close(self._master)
            self._master = None
        if self._link is not None:
            with contextlib.suppress(FileNotFoundError):
                if self._link.is_symlink():
                    self._link.unlink()
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None


@contextlib.asynccontextmanager
async def serve_pty(
    frames: FrameSource,
    *,
    interval: float = 1.0,
    clock: Callable[[], float] = time.time,
    respond: Responder | None = None,
    cable: Cable | None = None,
    link: str | os.PathLike[str] | None = None,
) -> AsyncIterator[str]:
    """Serve `frames` on a new pty while the context is open; yields the path for the driver (`PtyServer.path`).

    On exit the simulator task is cancelled and the pty closed.
    """
    server = PtyServer(frames, interval=interval, clock=clock, respond=respond, cable=cable, link=link)
    async with serving(server) as path:
        yield path


@contextlib.asynccontextmanager
async def serving(server: PtyServer) -> AsyncIterator[str]:
    """Run `server` in a task while the block runs, yielding its path; then stop it and close the pty."""
    task = asyncio.create_task(server.run())
    try:
        yield server.path
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        server.close()


# -- serial port --------------------------------------------------------------------------------------------


async def serve_serial(
    url: str,
    frames: FrameSource,
    *,
    baudrate: int = 9600,
    interval: float = 1.0,
    clock: Callable[[], float] = time.time,
    stop: asyncio.Event | None = None,
    respond: Responder | None = None,
    cable: Cable | None = None,
) -> None:
    """Serve `frames` on a serial port path or pyserial URL (8N1) until cancelled or stopped.

    Bytes the port cannot take within 0.2 s are dropped. Errors opening the port propagate.
    """
    port = serial.serial_for_url(url, baudrate=baudrate, write_timeout=0.2, timeout=0)

    def write(data: bytes) -> None:
        if port.is_open:
            with contextlib.suppress(serial.SerialTimeoutException):
                port.write(data)

    async def on_cable(plugged: bool) -> None:
        if plugged:
            port.open()
        else:
            port.close()

    async def read_host() -> None:  # drain what the host writes; answer it if the device has a host protocol
        while True:
            await asyncio.sleep(INPUT_POLL)
            if not port.is_open:
                continue
            try:
                waiting = port.in_waiting
                data = port.read(waiting) if waiting else b""
            except (OSError, serial.SerialException):
                continue
            if data and respond is not None:
                reply = respond(data)
                if reply:
                    write(reply)

    reader = asyncio.create_task(read_host())
    try:
        await run_frames(write, frames, interval=interval, clock=clock, stop=stop, cable=cable, on_cable=on_cable)
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        port.close()


# -- TCP ----------------------------------------------------------------------------------------------------


class TcpServer:
    """A simulated device as a TCP server, like a serial device server; a driver connects to `socket://host:port`.

    Every connected client receives the same bytes from the moment it connects; a client that falls more than
    64 KiB behind is disconnected. Bytes a client sends go to `respond`, and the answer goes to every client
    (they share one serial line). `await start()` binds (port 0: a free one) and returns the port; `run`
    serves until cancelled or stopped and then closes; `close` is idempotent.
    """

    def __init__(
        self,
        frames: FrameSource,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        interval: float = 1.0,
        clock: Callable[[], float] = time.time,
        respond: Responder | None = None,
        cable: Cable | None = None,
    ) -> None:
        self._frames = frames
        self.host = host
        self.port = port
        self._interval = interval
        self._clock = clock
        self._respond = respond
        self._cable = cable
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.StreamWriter] = set()

    @property
    def plugged(self) -> bool:
        """Whether the server is listening now (False during a cable pull)."""
        return self._server is not None

    async def start(self) -> int:
        """Listen (again); returns the bound port, which later restarts reuse."""
        if self._server is None:
            self._server = await asyncio.start_server(self._on_client, self.host, self.port)
            self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._clients.add(writer)
        try:
            while data := await reader.read(1024):
                if self._respond is not None:
                    reply = self._respond(data)
                    if reply:
                        self.write(reply)
        except ConnectionError:
            pass
        finally:
            self._clients.discard(writer)
            writer.close()

    def write(self, data: bytes) -> None:
        """Send to every connected client."""
        for w in list(self._clients):
            if w.is_closing() or w.transport.get_write_buffer_size() > 65536:
                self._clients.discard(w)
                w.close()
            else:
                w.write(data)

    async def _unplug(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for w in list(self._clients):
            self._clients.discard(w)
            w.close()
        if server is not None:
            await server.wait_closed()

    async def _on_cable(self, plugged: bool) -> None:
        if plugged:
            await self.start()
        else:
            await self._unplug()

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Listen if not yet listening, serve until cancelled or stopped, then close."""
        await self.start()
        try:
            await run_frames(
                self.write,
                self._frames,
                interval=self._interval,
                clock=self._clock,
                stop=stop,
                cable=self._cable,
                on_cable=self._on_cable,
            )
        finally:
            await self.close()

    async def close(self) -> None:
        """Stop listening and close every connection."""
        await self._unplug()


@contextlib.asynccontextmanager
async def serve_tcp(
    frames: FrameSource,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    interval: float = 1.0,
    clock: Callable[[], float] = time.time,
    respond: Responder | None = None,
    cable: Cable | None = None,
) -> AsyncIterator[int]:
    """Serve `frames` as a TCP server while the context is open; yields the bound port (`port=0`: a free one)."""
    server = TcpServer(frames, host, port, interval=interval, clock=clock, respond=respond, cable=cable)
    bound = await server.start()
    task = asyncio.create_task(server.run())
    try:
        yield bound
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await server.close()
