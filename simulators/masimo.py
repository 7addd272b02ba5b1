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
- `MasimoDevice` is the same device as a frame source over any values source and scenario conditions (sensor
  off, pulse search, motion); `simulators.devices` serves it like every other protocol.
- Sinks: `open_pty` + `pty_writer` (a pseudo-terminal whose slave path a driver opens with pyserial),
  `serve_pty` (both, as an async context manager), `serve_serial` (a serial port or pyserial URL), `serve_tcp`
  (a TCP server, like a serial device server; a driver connects with `socket://host:port`). The code behind
  them is protocol-neutral and lives in `simulators.serial_out`; these keep their Masimo-specific signatures.

`bedside simulate masimo --pty` runs one from the command line (simulators/cli.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import datetime

from simulators import serial_out
from simulators.patient import PatientModel
from simulators.serial_out import Writer as Writer
from simulators.serial_out import open_pty as open_pty
from simulators.serial_out import pty_writer as pty_writer
from simulators.state import NORMAL, Conditions, ConditionsSource, ValuesSource, motion_values

# EXC bits (device-protocols.md §1.2)
EXC_NO_SENSOR = 0x000001
EXC_PULSE_SEARCH = 0x000008
EXC_INTERFERENCE = 0x000010
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


def device_alarm(
    values: Mapping[str, float | None], *, spo2_low: float = 90.0, pr_low: float = 50.0, pr_high: float = 140.0
) -> int:
    """The ALARM bits a Radical-7 raises on its own for `values` as displayed (rounded half up): SpO2 low, PR
    high, PR low, plus ALARM_ACTIVE when any is set. A missing value raises nothing."""
    alarm = 0
    spo2, pr = values.get("spo2"), values.get("pr")
    if spo2 is not None and math.isfinite(spo2) and math.floor(spo2 + 0.5) < spo2_low:
        alarm |= ALARM_SPO2_LOW
    if pr is not None and math.isfinite(pr):
        shown = math.floor(pr + 0.5)
        if shown > pr_high:
            alarm |= ALARM_PR_HIGH
        if shown < pr_low:
            alarm |= ALARM_PR_LOW
    return alarm | ALARM_ACTIVE if alarm else 0


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
        alarm = device_alarm(v, spo2_low=self.spo2_low, pr_low=self.pr_low, pr_high=self.pr_high)
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
        Ticks are scheduled on the event loop's clock, so they do not drift (see serial_out.run_frames).
        """
        await serial_out.run_frames(write, self.line, interval=interval, clock=clock, stop=stop)


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


class MasimoDevice:
    """A Radical-7 as a frame source for any values source (a `PatientModel`'s `sample`, a replayed trace).

    `frame(t, when)` is the line at session time `t`. Conditions (from a scenario): sensor off -> dashes and
    EXC sensor-off (0x20); pulse search -> dashes and EXC pulse search (0x08); motion -> noisy values and EXC
    interference (0x10). Otherwise, as `MasimoSimulator`, its own ALARM bits outside the limits. A Masimo
    ignores what the host sends (`receive` answers nothing).
    """

    baudrate = BAUDRATE

    def __init__(
        self,
        values: ValuesSource,
        *,
        conditions: ConditionsSource | None = None,
        interval: float = 1.0,
        seed: int = 0,
        serial: str = DEFAULT_SERIAL,
        spo2_low: float = 90.0,
        pr_low: float = 50.0,
        pr_high: float = 140.0,
    ) -> None:
        self.values = values
        self.conditions = conditions
        self.interval = interval
        self.seed = seed
        self.serial = serial
        self.spo2_low, self.pr_low, self.pr_high = spo2_low, pr_low, pr_high

    def frame(self, t: float, when: datetime) -> bytes:
        cond: Conditions = self.conditions(t) if self.conditions is not None else NORMAL
        if cond.sensor_off:
            return format_line({}, when, serial=self.serial, exc=EXC_SET | EXC_SENSOR_OFF)
        if cond.pulse_search:
            return format_line({}, when, serial=self.serial, exc=EXC_SET | EXC_PULSE_SEARCH)
        v = self.values(t)
        exc = EXC_SET
        if cond.motion:
            v = motion_values(v, t, self.seed)
            exc |= EXC_INTERFERENCE
        alarm = device_alarm(v, spo2_low=self.spo2_low, pr_low=self.pr_low, pr_high=self.pr_high)
        return format_line(v, when, serial=self.serial, alarm=alarm, exc=exc)

    def receive(self, data: bytes) -> bytes:
        return b""


# -- pty, serial port and TCP (protocol-neutral code in simulators.serial_out) ---------------------------------


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
    sim = MasimoSimulator(model, serial=serial, sensor_off=sensor_off)
    async with serial_out.serve_pty(sim.line, interval=interval, clock=clock) as path:
        yield path


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
    sim = MasimoSimulator(model, serial=serial_number, sensor_off=sensor_off)
    await serial_out.serve_serial(url, sim.line, baudrate=BAUDRATE, interval=interval, clock=clock, stop=stop)


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
    sim = MasimoSimulator(model, serial=serial, sensor_off=sensor_off)
    async with serial_out.serve_tcp(sim.line, host, port, interval=interval, clock=clock) as bound:
        yield bound
