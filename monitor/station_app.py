"""`bedside station --broker URL [--site S]`: the nursing-station console's I/O around monitor/station.py.

One task keeps the MQTT link (aiomqtt; QoS 1 subscriptions to the site's alarm snapshots, alarm events and service
heartbeats) and reconnects with capped exponential backoff (0.5 s doubling to 10 s) while the screen shows the
loss; the other redraws the full screen (rich Live, alternate screen) at every message and at least once a second,
and writes the terminal bell for each reason the state gives. Ctrl-C, SIGTERM and SIGHUP end it with status 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import aiomqtt
from rich.console import Console
from rich.live import Live

from monitor.mqtt_socket import NODELAY
from monitor.station import StationState, render

FIRST_DELAY, MAX_DELAY = 0.5, 10.0  # s: reconnect backoff
MIN_REDRAW_GAP = 0.05  # s: a burst of messages (every retained snapshot at connect) is one redraw


@dataclass(frozen=True)
class Broker:
    """Where to connect: mqtt://[user[:password]@]host[:port] (1883) or mqtts://... (TLS, 8883, system CAs)."""

    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = None

    def shown(self) -> str:
        """The URL as the header shows it: never the password."""
        user = f"{self.username}@" if self.username else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}"


def parse_broker(url: str) -> Broker:
    """Raises ValueError with the reason (and never the password) for a URL that is not an MQTT broker's."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ValueError("--broker must look like mqtt://host:port (the port a number)") from None
    if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl") or not parts.hostname:
        raise ValueError("--broker must look like mqtt://host:port or mqtts://host:port")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError("--broker takes no path or query (the site is --site)")
    tls = parts.scheme in ("mqtts", "ssl")
    return Broker(parts.hostname, port or (8883 if tls else 1883), tls,
                  unquote(parts.username) if parts.username else None,
                  unquote(parts.password) if parts.password is not None else None)


def topics(site: str) -> list[str]:
    base = f"bedside/v1/{site}"
    return [f"{base}/service/+/heartbeat", f"{base}/bay/+/alarms", f"{base}/bay/+/alarm_events"]


Changed = Callable[[list[str]], None]


async def keep_link(state: StationState, broker: Broker, changed: Changed) -> None:
    """Connect, subscribe, feed every message to `state`; on any loss show it and retry with backoff, forever."""
    delay = FIRST_DELAY
    while True:
        try:
            async with aiomqtt.Client(
                broker.host, broker.port, identifier=f"bedside-station-{uuid.uuid4().hex[:8]}",
                username=broker.username, password=broker.password, keepalive=10, timeout=10, socket_options=NODELAY,
                tls_params=aiomqtt.TLSParameters() if broker.tls else None,
            ) as client:
                for topic in topics(state.site):
                    await client.subscribe(topic, qos=1)
                changed(state.link_up(time.time()))
                delay = FIRST_DELAY
                async for message in client.messages:
                    payload = message.payload
                    data = payload if isinstance(payload, bytes) else str(payload or "").encode()
                    changed(state.apply(str(message.topic), data, time.time()))
            detail = "connection closed"
        except (aiomqtt.MqttError, OSError) as exc:
            detail = str(exc) or type(exc).__name__
        changed(state.link_down(time.time(), f"{detail}; retrying (every {MAX_DELAY:g} s at most)"))
        await asyncio.sleep(delay)
        delay = min(delay * 2, MAX_DELAY)


class _Notice(logging.Handler):
    """Log records of WARNING and above go to the footer, not over the full-screen display."""

    def __init__(self, state: StationState, changed: Changed) -> None:
        super().__init__(logging.WARNING)
        self.state, self.changed = state, changed

    def emit(self, record: logging.LogRecord) -> None:
        self.state.notice = f"{record.levelname.lower()}: {record.getMessage()}"[:120]
        self.changed([])


async def run_station(broker: Broker, site: str, console: Console) -> None:
    state = StationState(site, broker.shown())
    dirty = asyncio.Event()

    def changed(bells: list[str]) -> None:
        if bells:
            console.file.write("\a" * len(bells))
            console.file.flush()
        dirty.set()

    root = logging.getLogger()
    saved = root.handlers[:]
    root.handlers = [_Notice(state, changed)]
    link = asyncio.create_task(keep_link(state, broker, changed), name="station-link")
    try:
        with Live(console=console, screen=True, auto_refresh=False, redirect_stdout=False,
                  redirect_stderr=False) as live:
            while not link.done():
                now = time.time()
                changed(state.tick(now))
                dirty.clear()
                live.update(render(state, now, console.width, console.height), refresh=True)
                with contextlib.suppress(TimeoutError):  # the clock and the ages tick every second
                    await asyncio.wait_for(dirty.wait(), 1.0 - now % 1.0 + 0.005)
                await asyncio.sleep(MIN_REDRAW_GAP)
        await link  # it only ends by raising: show why
    finally:
        link.cancel()
        await asyncio.gather(link, return_exceptions=True)
        root.handlers = saved


def main(url: str, site: str) -> int:
    """The `bedside station` command: 0 when stopped (Ctrl-C, SIGTERM, SIGHUP), 2 for a bad URL or no terminal."""
    try:
        broker = parse_broker(url)
    except ValueError as exc:
        print(f"bedside station: {exc}", file=sys.stderr)
        return 2
    if not sys.stdout.isatty():
        print("bedside station: needs a terminal (it draws a full-screen console)", file=sys.stderr)
        return 2

    async def until_stopped() -> None:
        task = asyncio.create_task(run_station(broker, site, Console()))
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(until_stopped())
    return 0
