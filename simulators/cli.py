"""`bedside simulate <protocol>`: run one device simulator on its own until interrupted (or the replay ends).

    bedside simulate PROTOCOL --pty [--link PATH]     creates a pty pair, prints the driver-side path first
    bedside simulate PROTOCOL --port PATH|URL         writes to a serial port or pyserial URL
    bedside simulate PROTOCOL --tcp PORT [--host H]   serves TCP; prints socket://H:PORT first
        PROTOCOL: masimo, nellcor, nonin7, nonin8, capnostream
        [--scenario FILE] [--replay CSV [--speed X]] [--interval S] [--seed N]
        [--no-handshake] [--co2-wave]                 (capnostream: stream unasked; send CO2 wave messages)
    bedside simulate mqtt --broker mqtt://H:P --device ID [--site S] [--scenario FILE] [--interval S] [--seed N]

The patient is `PatientModel(seed)` (seed: --seed, else the scenario's `seed`, else 1) unless `--replay` plays
a trace CSV (`--speed 60`: a minute per second; the simulator stops at the end of the trace). A scenario's
patient events go to the patient (or the replayed values), its sensor and link events to the device. The MQTT
monitor takes patient events and `sensor_off` (published as the `sensor_off` / `signal_quality` status), not
link events or motion, and no `--replay`.
Bad arguments exit with 2 and a message; a port that cannot be opened with 1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

import serial

from simulators.devices import PROTOCOLS, Feed, feed
from simulators.mqtt_monitor import run_mqtt_simulator
from simulators.patient import PatientModel
from simulators.replay import ReplayError, ReplaySource, load_trace
from simulators.scenario import LINK_KINDS, Scenario, ScenarioError, load_scenario
from simulators.serial_out import PtyServer, TcpServer, serve_serial
from simulators.state import ValuesSource


class UsageError(ValueError):
    """Arguments that do not make sense together."""


def _broker(url: str) -> tuple[str, int]:
    if not url.startswith(("mqtt://", "tcp://")):
        raise UsageError(f"--broker must look like mqtt://host:port (got {url!r})")
    host, _, port = url.split("://", 1)[1].rpartition(":")
    try:
        return (host, int(port)) if host else (url.split("://", 1)[1], 1883)
    except ValueError:
        raise UsageError(f"--broker port must be a number (got {url!r})") from None


def _opt(args: argparse.Namespace, name: str, default: Any = None) -> Any:
    return getattr(args, name, default)


def _mqtt_faults(scenario: Scenario) -> Callable[[float], Mapping[str, str]]:
    def faults(t: float) -> Mapping[str, str]:
        c = scenario.conditions(t)
        out: dict[str, str] = {}
        if c.sensor_off:
            out.update(spo2="sensor_off", pr="sensor_off")
        elif c.pulse_search:
            out.update(spo2="signal_quality", pr="signal_quality")
        if c.co2_off:
            out["etco2"] = "sensor_off"
        return out

    return faults


def _plan(args: argparse.Namespace) -> Coroutine[Any, Any, None]:
    """Check the arguments and build the simulator's coroutine; UsageError, ScenarioError or ReplayError."""
    protocol: str = args.protocol
    interval: float | None = _opt(args, "interval")
    speed: float | None = _opt(args, "speed")
    seed_arg: int | None = _opt(args, "seed")
    if interval is not None and not interval > 0:
        raise UsageError(f"--interval must be > 0 s (got {interval})")
    if speed is not None and not _opt(args, "replay"):
        raise UsageError("--speed needs --replay CSV")
    if speed is not None and not speed > 0:
        raise UsageError(f"--speed must be > 0 (got {speed})")
    scenario = load_scenario(args.scenario) if _opt(args, "scenario") else None
    seed = seed_arg if seed_arg is not None else scenario.seed if scenario and scenario.seed is not None else 1
    outputs = [o for o in ("port", "pty", "tcp") if _opt(args, o) is not None and _opt(args, o) is not False]

    if protocol == "mqtt":
        if outputs:
            raise UsageError(f"mqtt publishes to --broker; --{outputs[0]} is for serial protocols")
        if not _opt(args, "broker") or not _opt(args, "device"):
            raise UsageError("mqtt needs --broker mqtt://HOST:PORT and --device ID")
        if _opt(args, "replay"):
            raise UsageError("--replay is not supported for mqtt (only for the serial protocols)")
        unsupported = sorted(scenario.kinds & (LINK_KINDS | {"motion"})) if scenario else []
        if unsupported:
            raise UsageError(f"{args.scenario}: mqtt cannot simulate {', '.join(unsupported)}")
        host, port = _broker(args.broker)
        model = PatientModel(seed)
        if scenario is not None:
            scenario.apply(model)
        return run_mqtt_simulator(host, port, args.site, args.device, model, interval=interval or 1.0,
                                  faults=_mqtt_faults(scenario) if scenario else None)  # fmt: skip

    if protocol not in PROTOCOLS:
        raise UsageError(f"unknown protocol {protocol!r}; known: {', '.join((*PROTOCOLS, 'mqtt'))}")
    if len(outputs) != 1:
        raise UsageError("give exactly one of --port PATH|URL, --pty or --tcp PORT")
    if _opt(args, "broker") or _opt(args, "device"):
        raise UsageError("--broker and --device are for mqtt")
    if _opt(args, "link") and not _opt(args, "pty"):
        raise UsageError("--link needs --pty")
    if protocol != "capnostream" and (_opt(args, "no_handshake") or _opt(args, "co2_wave")):
        raise UsageError("--no-handshake and --co2-wave are for capnostream")
    tcp: int | None = _opt(args, "tcp")
    if tcp is not None and not 0 <= tcp <= 65535:
        raise UsageError(f"--tcp must be a port number 0-65535 (got {tcp})")

    source: PatientModel | ValuesSource
    duration: float | None = None
    if _opt(args, "replay"):
        replayed = ReplaySource(load_trace(args.replay), speed or 1.0)
        source, duration = replayed, replayed.duration
    else:
        source = PatientModel(seed)
    f = feed(protocol, source, scenario=scenario, interval=interval, seed=seed,
             handshake=not _opt(args, "no_handshake", False), wave=bool(_opt(args, "co2_wave", False)))  # fmt: skip
    return _serve(args, protocol, f, duration)


async def _serve(args: argparse.Namespace, protocol: str, f: Feed, duration: float | None) -> None:
    stop = asyncio.Event()
    if duration is not None:
        asyncio.get_running_loop().call_later(duration + f.interval, stop.set)
    if _opt(args, "pty"):
        pty = PtyServer(f.frames, interval=f.interval, respond=f.respond, cable=f.cable, link=_opt(args, "link"))
        print(pty.path, flush=True)
        await pty.run(stop)
    elif _opt(args, "tcp") is not None:
        tcp = TcpServer(f.frames, args.host, args.tcp, interval=f.interval, respond=f.respond, cable=f.cable)
        bound = await tcp.start()
        print(f"socket://{args.host}:{bound}", flush=True)
        await tcp.run(stop)
    else:
        print(f"{protocol} simulator writing to {args.port} at {f.baudrate} baud", flush=True)
        await serve_serial(args.port, f.frames, baudrate=f.baudrate, interval=f.interval, stop=stop,
                           respond=f.respond, cable=f.cable)  # fmt: skip


def run_simulator(args: argparse.Namespace) -> int:
    """Run the simulator `args` describes; 2 with a message for bad arguments, 1 if the port cannot be used."""
    try:
        main = _plan(args)
    except (UsageError, ScenarioError, ReplayError, ValueError) as exc:
        print(f"bedside simulate: {exc}", file=sys.stderr)
        return 2
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(main)
    except (OSError, serial.SerialException) as exc:
        print(f"bedside simulate: {exc}", file=sys.stderr)
        return 1
    return 0
