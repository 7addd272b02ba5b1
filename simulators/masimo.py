"""A Masimo Radical-7 pulse oximeter simulator speaking the "ASCII 1" serial format, byte for byte.

Format (shared/reference/device-protocols.md §1.2): one line per second, fields separated by one space, CR LF:

    12/01/05 11:56:29 SN=0123456789 SPO2=098% BPM=240 PI=20.00% SPCO=--.-% SPMET=--.-% DESAT=-- PIDELTA=+-- \
PVI=--- ALARM=0000 EXC=000800

The timestamp is the device's local wall clock (`MM/dd/yy HH:mm:ss`), a missing value is its field filled with
dashes, ALARM and EXC are uppercase hex bitfields (4 and 6 digits). The simulated device has no SpCO/SpMet/PVI
options, so those fields are always dashes.

- `format_line` is the pure encoder.
- `MasimoSimulator` samples a `PatientModel` and builds the line for a moment (sensor-off and device alarms
  included); `run()` / `run_masimo_simulator` write one line per interval to a byte sink until cancelled.
- Sinks: `open_pty` + `pty_writer` (a pseudo-terminal whose slave path a driver opens with pyserial),
  `serve_pty` (both, as an async context manager), `serve_serial` (a serial port or pyserial URL), `serve_tcp`
  (a TCP server, like a serial device server; a driver connects with `socket://host:port`).

`python -m simulators.masimo` runs one from the command line (see `main`).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import math
import os
import termios
import time
import tty
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import datetime

import serial

from simulators.patient import PatientModel

# EXC bits (device-protocols.md §1.2)
EXC_NO_SENSOR = 0x000001
EXC_SENSOR_OFF = 0x000020
EXC_SET = 0x000800  # "Masimo SET": normal, algorithm in full SET mode
# ALARM bits
ALARM_SPO2_HIGH = 0x0001
ALARM_SPO2_LOW = 0x0002
ALARM_PR_HIGH = 0x0004
ALARM_PR_LOW = 0x0008
ALARM_ACTIVE = 0x0010

DEFAULT_SERIAL = "0123456789"
BAUDRATE = 9600
# Fields this simulated device always reports as "no value" (no SpCO/SpMet/PVI options).
_FIXED_TAIL = "SPCO=--.-% SPMET=--.-% DESAT=-- PIDELTA=+-- PVI=---"

Writer = Callable[[bytes], None]


def _int_field(value: float | None, width: int) -> str:
    """`value` rounded half up and zero-padded to `width` digits; dashes if missing or not representable."""
    if value is None or not math.isfinite(value):
        return "-" * width
    n = math.floor(value + 0.5)
    if n < 0 or n >= 10**width:
        return "-" * width
    return f"{n:0{width}d}"


def _pi_field(value: float | None) -> str:
    """PI as `dd.dd` (5 characters); dashes (`--.--`) if missing or not representable."""
    if value is None or not math.isfinite(value) or value < 0:
        return "--.--"
    text = f"{value:05.2f}"
    return text if len(text) == 5 else "--.--"


def format_line(
    values: Mapping[str, float | None],
    when: datetime,
    *,
    serial: str = DEFAULT_SERIAL,
    alarm: int = 0,
    exc: int = EXC_SET,
) -> bytes:
    """One "ASCII 1" line (with CR LF) for `values` at device time `when`.

    Reads `spo2` (SPO2, %), `pr` (BPM, /min) and `pi` (PI, %) from `values`; a key that is missing or None, a
    NaN, or a value that does not fit its field is written as dashes of the field's width. SPO2 and BPM are
    rounded half up. `when` is written as is (the device clock has no time zone). `serial` must be printable
    ASCII without spaces or `=`; `alarm` must fit 4 hex digits and `exc` 6.
    """
    if not serial or not serial.isascii() or not serial.isprintable() or " " in serial or "=" in serial:
        raise ValueError(f"serial number {serial!r} must be printable ASCII without spaces or '='")
    if not 0 <= alarm <= 0xFFFF:
        raise ValueError(f"ALARM {alarm:#x} does not fit 4 hex digits")
    if not 0 <= exc <= 0xFFFFFF:
        raise ValueError(f"EXC {exc:#x} does not fit 6 hex digits")
    line = (
        f"{when:%m/%d/%y %H:%M:%S} SN={serial}"
        f" SPO2={_int_field(values.get('spo2'), 3)}%"
        f" BPM={_int_field(values.get('pr'), 3)}"
        f" PI={_pi_field(values.get('pi'))}%"
        f" {_FIXED_TAIL} ALARM={alarm:04X} EXC={exc:06X}\r\n"
    )
    return line.encode("ascii")


class MasimoSimulator:
    """A simulated Radical-7 watching `model`'s patient.

    `sensor_off(t)` (t = seconds since the session started) says whether the probe is off the finger then: the
    line carries dashes for SPO2, BPM and PI and EXC has the sensor-off bit (0x20) set. Otherwise the device
    raises its own alarm bits (ALARM_ACTIVE plus SpO2 low, PR high or PR low) outside the given limits, as a
    real oximeter does on its own; bedside's engine decides its alarms independently of them.
    """

    def __init__(
        self,
        model: PatientModel,
        *,
        serial: str = DEFAULT_SERIAL,
        sensor_off: Callable[[float], bool] | None = None,
        spo2_low: float = 90.0,
        pr_low: float = 50.0,
        pr_high: float = 140.0,
    ) -> None:
        self.model = model
        self.serial = serial
        self.sensor_off = sensor_off
        self.spo2_low = spo2_low
        self.pr_low = pr_low
        self.pr_high = pr_high

    def line(self, t: float, when: datetime) -> bytes:
        """The line the device sends at session time `t`, stamped with device time `when`."""
        if self.sensor_off is not None and self.sensor_off(t):
            return format_line({}, when, serial=self.serial, exc=EXC_SET | EXC_SENSOR_OFF)
        v = self.model.sample(t)
        spo2, pr = math.floor(v["spo2"] + 0.5), math.floor(v["pr"] + 0.5)  # as displayed
        alarm = 0
        if spo2 < self.spo2_low:
            alarm |= ALARM_SPO2_LOW
        if pr > self.pr_high:
            alarm |= ALARM_PR_HIGH
        if pr < self.pr_low:
            alarm |= ALARM_PR_LOW
        if alarm:
            alarm |= ALARM_ACTIVE
        return format_line(v, when, serial=self.serial, alarm=alarm)

    async def run(
        self,
        write: Writer,
        *,
        interval: float = 1.0,
        clock: Callable[[], float] = time.time,
        stop: asyncio.Event | None = None,
    ) -> None:
        """Write one line every `interval` seconds to `write` until cancelled or `stop` is set.

        Session time t = clock() - clock() at the start; the line's timestamp is `clock()` as local time.
        Ticks are scheduled on the event loop's clock, so they do not drift.
        """
        if not interval > 0:
            raise ValueError(f"interval must be > 0 s, got {interval}")
        loop = asyncio.get_running_loop()
        start = clock()
        next_tick = loop.time()
        while stop is None or not stop.is_set():
            now = clock()
            write(self.line(now - start, datetime.fromtimestamp(now)))
            next_tick = max(next_tick + interval, loop.time())  # after a stall, resume without a burst
            if await _wait(stop, next_tick - loop.time()):
                return


async def _wait(stop: asyncio.Event | None, delay: float) -> bool:
    """Sleep `delay` seconds or until `stop` is set; True if stopped."""
    if stop is None:
        await asyncio.sleep(max(0.0, delay))
        return False
    if stop.is_set():
        return True
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), max(0.0, delay))
    return stop.is_set()


async def run_masimo_simulator(
    write: Writer,
    model: PatientModel,
    *,
    interval: float = 1.0,
    clock: Callable[[], float] = time.time,
    stop: asyncio.Event | None = None,
    sensor_off: Callable[[float], bool] | None = None,
    serial: str = DEFAULT_SERIAL,
) -> None:
    """Write a Masimo line for `model` to `write` every `interval` seconds until cancelled or `stop` is set."""
    sim = MasimoSimulator(model, serial=serial, sensor_off=sensor_off)
    await sim.run(write, interval=interval, clock=clock, stop=stop)


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


@contextlib.asynccontextmanager
async def serve_pty(
    model: PatientModel,
    *,
    interval: float = 1.0,
    clock: Callable[[], float] = time.time,
    sensor_off: Callable[[float], bool] | None = None,
    serial: str = DEFAULT_SERIAL,
) -> AsyncIterator[str]:
    """Run a simulator on a new pty while the context is open; yields the slave path for the driver.

    E.g. `async with serve_pty(PatientModel(1), interval=0.2) as path:` then `serial.Serial(path, 9600)`.
    On exit the simulator task is cancelled and the master fd closed.
    """
    master_fd, slave_path = open_pty()
    task = asyncio.create_task(
        run_masimo_simulator(
            pty_writer(master_fd), model, interval=interval, clock=clock, sensor_off=sensor_off, serial=serial
        )
    )
    try:
        yield slave_path
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        os.close(master_fd)


# -- serial port and TCP ------------------------------------------------------------------------------------


async def serve_serial(
    url: str,
    model: PatientModel,
    *,
    interval: float = 1.0,
    clock: Callable[[], float] = time.time,
    stop: asyncio.Event | None = None,
    sensor_off: Callable[[float], bool] | None = None,
    serial_number: str = DEFAULT_SERIAL,
) -> None:
    """Run a simulator writing to a serial port path or pyserial URL (9600 8N1) until cancelled or stopped.

    A line the port cannot take within 0.2 s is dropped. Errors opening the port propagate.
    """
    port = serial.serial_for_url(url, baudrate=BAUDRATE, write_timeout=0.2)

    def write(data: bytes) -> None:
        with contextlib.suppress(serial.SerialTimeoutException):
            port.write(data)

    try:
        await run_masimo_simulator(
            write, model, interval=interval, clock=clock, stop=stop, sensor_off=sensor_off, serial=serial_number
        )
    finally:
        port.close()


@contextlib.asynccontextmanager
async def serve_tcp(
    model: PatientModel,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    interval: float = 1.0,
    clock: Callable[[], float] = time.time,
    sensor_off: Callable[[float], bool] | None = None,
    serial: str = DEFAULT_SERIAL,
) -> AsyncIterator[int]:
    """Run a simulator as a TCP server (like a serial device server) while the context is open.

    Every connected client receives the same lines from the moment it connects; a client that falls more than
    64 KiB behind is disconnected. Yields the bound port (pass `port=0` for a free one); a driver connects with
    `socket://host:port`.
    """
    clients: set[asyncio.StreamWriter] = set()

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        clients.add(writer)
        try:
            while await reader.read(1024):  # a Masimo ignores what it is sent; wait for the client to leave
                pass
        except ConnectionError:
            pass
        finally:
            clients.discard(writer)
            writer.close()

    def broadcast(data: bytes) -> None:
        for w in list(clients):
            if w.is_closing() or w.transport.get_write_buffer_size() > 65536:
                clients.discard(w)
                w.close()
            else:
                w.write(data)

    server = await asyncio.start_server(on_client, host, port)
    bound: int = server.sockets[0].getsockname()[1]
    task = asyncio.create_task(
        run_masimo_simulator(broadcast, model, interval=interval, clock=clock, sensor_off=sensor_off, serial=serial)
    )
    try:
        yield bound
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        server.close()
        for w in list(clients):
            w.close()
        await server.wait_closed()
