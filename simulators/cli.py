"""`bedside simulate <protocol>`: run one device simulator on its own until interrupted.

    bedside simulate masimo --pty                       creates a pty pair, prints the driver-side path first
    bedside simulate masimo --port PATH|URL             writes to a serial port or pyserial URL
    bedside simulate mqtt --broker mqtt://H:P --device ID [--site S]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys

from simulators.masimo import serve_pty, serve_serial
from simulators.mqtt_monitor import run_mqtt_simulator
from simulators.patient import PatientModel


def _broker(url: str) -> tuple[str, int]:
    if not url.startswith(("mqtt://", "tcp://")):
        raise ValueError(f"--broker must look like mqtt://host:port (got {url!r})")
    host, _, port = url.split("://", 1)[1].rpartition(":")
    return (host, int(port)) if host else (url.split("://", 1)[1], 1883)


async def _masimo(args: argparse.Namespace) -> None:
    model = PatientModel(args.seed)
    if args.port:
        print(f"masimo simulator writing to {args.port}", flush=True)
        await serve_serial(args.port, model, interval=args.interval)
    else:
        async with serve_pty(model, interval=args.interval) as path:
            print(path, flush=True)
            await asyncio.Event().wait()


def run_simulator(args: argparse.Namespace) -> int:
    """Run the simulator `args.protocol` describes; 2 with a message for bad arguments."""
    try:
        if args.protocol == "masimo":
            if bool(args.port) == bool(args.pty):
                raise ValueError("give exactly one of --port PATH|URL or --pty")
            main = _masimo(args)
        else:
            if not args.broker or not args.device:
                raise ValueError("mqtt needs --broker mqtt://HOST:PORT and --device ID")
            host, port = _broker(args.broker)
            main = run_mqtt_simulator(host, port, args.site, args.device, PatientModel(args.seed),
                                      interval=args.interval)
    except ValueError as exc:
        print(f"bedside simulate: {exc}", file=sys.stderr)
        return 2
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main)
    return 0
