"""Every serial device simulator behind one interface, served on a pty, a serial port or TCP.

    PROTOCOLS = ("masimo", "nellcor", "nonin7", "nonin8", "capnostream")

`make_device(protocol, source, ...)` builds the simulator of one protocol over a values source (a
`PatientModel`, whose `sample` is used, or any `simulators.state.ValuesSource`, e.g. a replayed trace). A device
has `interval` (seconds between ticks), `baudrate`, `frame(t, when) -> bytes` and `receive(data) -> bytes`.

`feed(...)` adds a scenario (`simulators.scenario.Scenario`): its patient events are applied to the model (or to
the values source), its sensor events become the device's conditions, and its link events wrap the frame
source (silent, garbage) and drive the cable. The serving entry points take the same arguments:

- `open_device_pty(protocol, source, ...) -> PtyServer`: the pty exists at once (`.path` for the driver);
  `await server.run(stop)` serves until cancelled or stopped and closes it; `server.close()` if it never ran.
- `serve_device_pty(...)`: the same as an async context manager yielding the path.
- `serve_device_serial(url, protocol, source, ...)`: writes to a serial port or pyserial URL until cancelled.
- `serve_device_tcp(protocol, source, host, port, ...)`: an async context manager yielding the bound port.

What a driver sees during `cable_pulled` is described in `simulators.serial_out`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from simulators import nellcor, nonin
from simulators.capnostream import CapnostreamSimulator
from simulators.masimo import MasimoDevice
from simulators.nellcor import NellcorSimulator
from simulators.nonin import Nonin7Simulator, Nonin8Simulator
from simulators.patient import PatientModel
from simulators.scenario import Scenario
from simulators.serial_out import Cable, FrameSource, PtyServer, Responder, serve_serial, serve_tcp, serving
from simulators.state import ConditionsSource, ValuesSource

PROTOCOLS: tuple[str, ...] = ("masimo", "nellcor", "nonin7", "nonin8", "capnostream")
"""Serial protocols with a simulator (the MQTT monitor is simulators.mqtt_monitor)."""
DEFAULT_INTERVALS: dict[str, float] = {
    "masimo": 1.0,
    "nellcor": nellcor.INTERVAL,
    "nonin7": nonin.PACKET_INTERVAL,
    "nonin8": 1.0,
    "capnostream": 1.0,
}
"""Each device's own pace (s): a line, packet or numerics message per interval."""


class Device(Protocol):
    """A simulated serial device."""

    interval: float
    baudrate: int

    def frame(self, t: float, when: datetime) -> bytes: ...

    def receive(self, data: bytes) -> bytes: ...


def _values(source: PatientModel | ValuesSource) -> ValuesSource:
    return source.sample if isinstance(source, PatientModel) else source


def make_device(
    protocol: str,
    source: PatientModel | ValuesSource,
    *,
    conditions: ConditionsSource | None = None,
    interval: float | None = None,
    seed: int = 0,
    handshake: bool = True,
    wave: bool = False,
) -> Device:
    """The simulator of `protocol` reading `source`; `interval` None = the device's own pace (Masimo 1 s,
    Nellcor 2 s, Nonin 7 1/3 s, Nonin 8 1 s, Capnostream numerics 1 s). `handshake` and `wave` are for the
    Capnostream only (see simulators.capnostream). ValueError for an unknown protocol."""
    values = _values(source)
    if protocol not in DEFAULT_INTERVALS:
        raise ValueError(f"no simulator for protocol {protocol!r}; known: {', '.join(PROTOCOLS)}")
    if interval is not None and not interval > 0:
        raise ValueError(f"interval must be > 0 s, got {interval}")
    every = DEFAULT_INTERVALS[protocol] if interval is None else interval
    if protocol == "masimo":
        return MasimoDevice(values, conditions=conditions, seed=seed, interval=every)
    if protocol == "nellcor":
        return NellcorSimulator(values, conditions=conditions, seed=seed, interval=every)
    if protocol == "nonin7":
        return Nonin7Simulator(values, conditions=conditions, seed=seed, interval=every)
    if protocol == "nonin8":
        return Nonin8Simulator(values, conditions=conditions, seed=seed, interval=every)
    if protocol == "capnostream":
        return CapnostreamSimulator(values, conditions=conditions, seed=seed, handshake=handshake, wave=wave,
                                    interval=every)  # fmt: skip
    raise ValueError(f"no simulator for protocol {protocol!r}; known: {', '.join(PROTOCOLS)}")


@dataclass(frozen=True, slots=True)
class Feed:
    """What the serving code needs: the device and its frame source, pace, host answer and cable."""

    device: Device
    frames: FrameSource
    interval: float
    respond: Responder | None
    cable: Cable | None

    @property
    def baudrate(self) -> int:
        return self.device.baudrate


def feed(
    protocol: str,
    source: PatientModel | ValuesSource,
    *,
    scenario: Scenario | None = None,
    interval: float | None = None,
    seed: int = 0,
    handshake: bool = True,
    wave: bool = False,
) -> Feed:
    """The device of `protocol` on `source` with `scenario` wired in.

    Patient events are added to a `PatientModel` (idempotently, so several devices of one bay may share a
    model and a scenario) or pulled into another values source.
    """
    values = _values(source)
    conditions: ConditionsSource | None = None
    cable: Cable | None = None
    if scenario is not None:
        if isinstance(source, PatientModel):
            scenario.apply(source)
        else:
            values = scenario.transform(values)
        conditions = scenario.conditions
        if "cable_pulled" in scenario.kinds:
            cable = scenario.cable
    device = make_device(
        protocol, values, conditions=conditions, interval=interval, seed=seed, handshake=handshake, wave=wave
    )
    frames: FrameSource = device.frame
    if scenario is not None and scenario.kinds & {"silent", "garbage"}:
        frames = scenario.wrap(frames)
    return Feed(device, frames, device.interval, device.receive, cable)


def open_device_pty(
    protocol: str,
    source: PatientModel | ValuesSource,
    *,
    scenario: Scenario | None = None,
    interval: float | None = None,
    seed: int = 0,
    handshake: bool = True,
    wave: bool = False,
    link: str | os.PathLike[str] | None = None,
    clock: Callable[[], float] = time.time,
) -> PtyServer:
    """A simulated device of `protocol` on a new pty: `.path` is the driver's port (a stable symlink when the
    scenario pulls the cable or `link` is given), `await .run(stop)` serves it, `.close()` cleans up."""
    f = feed(protocol, source, scenario=scenario, interval=interval, seed=seed, handshake=handshake, wave=wave)
    return PtyServer(f.frames, interval=f.interval, clock=clock, respond=f.respond, cable=f.cable, link=link)


@contextlib.asynccontextmanager
async def serve_device_pty(
    protocol: str,
    source: PatientModel | ValuesSource,
    *,
    scenario: Scenario | None = None,
    interval: float | None = None,
    seed: int = 0,
    handshake: bool = True,
    wave: bool = False,
    link: str | os.PathLike[str] | None = None,
    clock: Callable[[], float] = time.time,
) -> AsyncIterator[str]:
    """`open_device_pty` served while the context is open; yields the driver's path."""
    server = open_device_pty(protocol, source, scenario=scenario, interval=interval, seed=seed,
                             handshake=handshake, wave=wave, link=link, clock=clock)  # fmt: skip
    async with serving(server) as path:
        yield path


async def serve_device_serial(
    url: str,
    protocol: str,
    source: PatientModel | ValuesSource,
    *,
    scenario: Scenario | None = None,
    interval: float | None = None,
    seed: int = 0,
    handshake: bool = True,
    wave: bool = False,
    baudrate: int | None = None,
    clock: Callable[[], float] = time.time,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve a simulated device of `protocol` on a serial port or pyserial URL (at the device's baud rate
    unless `baudrate` is given) until cancelled or `stop` is set. Errors opening the port propagate."""
    f = feed(protocol, source, scenario=scenario, interval=interval, seed=seed, handshake=handshake, wave=wave)
    await serve_serial(url, f.frames, baudrate=baudrate or f.baudrate, interval=f.interval, clock=clock,
                       stop=stop, respond=f.respond, cable=f.cable)  # fmt: skip


@contextlib.asynccontextmanager
async def serve_device_tcp(
    protocol: str,
    source: PatientModel | ValuesSource,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    scenario: Scenario | None = None,
    interval: float | None = None,
    seed: int = 0,
    handshake: bool = True,
    wave: bool = False,
    clock: Callable[[], float] = time.time,
) -> AsyncIterator[int]:
    """Serve a simulated device of `protocol` as a TCP server while the context is open; yields the bound port
    (a driver connects to `socket://host:port`)."""
    f = feed(protocol, source, scenario=scenario, interval=interval, seed=seed, handshake=handshake, wave=wave)
    async with serve_tcp(f.frames, host, port, interval=f.interval, clock=clock, respond=f.respond,
                         cable=f.cable) as bound:  # fmt: skip
        yield bound
