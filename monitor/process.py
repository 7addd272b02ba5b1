"""Running one bedside process, whatever its role: the listening socket (bound first, so a port in use is a clear
error), SIGINT/SIGTERM, the core tasks whose failure stops the process rather than leaving it half alive, and
what a driver is given from the config. Shared by the service (monitor/service.py) and a gateway node
(monitor/gateway_node.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Callable
from pathlib import Path

from drivers.base import DeviceSettings
from monitor.config import BedsideConfig, DeviceConfig

log = logging.getLogger(__name__)


class ServiceError(Exception):
    """bedside cannot start as configured; the message says why."""


def listen_socket(host: str, port: int) -> socket.socket:
    """Bind the dashboard's socket here, so a port in use is a clear error before anything else starts."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ServiceError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(128)
    sock.setblocking(False)
    return sock


async def until_stopped_or_failed(stop: asyncio.Event, core: list[asyncio.Task[None]]) -> None:
    """Wait until `stop` is set; a core task (ticker, recorder, HTTP server, gateway) that fails or ends first
    stops the process with an error rather than leaving it half alive."""
    stopper = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait([stopper, *core], return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    for task in done:
        if task is not stopper and not task.cancelled() and task.exception() is not None:
            raise RuntimeError(f"bedside core task {task.get_name()} failed") from task.exception()
        if task is not stopper:
            raise RuntimeError(f"bedside core task {task.get_name()} ended unexpectedly")


async def cancel_all(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel `tasks` and wait for them, up to 4 s (what does not stop by then is logged)."""
    for task in tasks:
        task.cancel()
    _, pending = await asyncio.wait(tasks, timeout=4) if tasks else (set(), set())
    for task in pending:
        log.error("task %s did not stop within 4 s", task.get_name())


def stop_on_signals(stop: Callable[[], None]) -> None:
    """SIGINT and SIGTERM call `stop` (on the running loop; where signals cannot be handled, nothing)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        # not on the main thread (a test running the service in a thread) or not on this platform: the caller's
        # own stop() is then the only way to stop it
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop)


def device_settings(cfg: BedsideConfig, dev: DeviceConfig, port: str | None, mqtt_host: str,
                    mqtt_port: int) -> DeviceSettings:
    """What a driver of `dev` needs: its port (or the broker), line settings, the broker's credentials."""
    m = cfg.mqtt
    return DeviceSettings(dev.id, port, dev.baudrate, mqtt_host, mqtt_port, m.username, m.password, cfg.site,
                          m.tls, _str(m.ca_file), _str(m.cert_file), _str(m.key_file),
                          dev.bytesize, dev.parity, dev.stopbits)


def _str(path: Path | None) -> str | None:
    return None if path is None else str(path)


def host_port(url: str) -> tuple[str, int]:
    rest = url.split("://", 1)[1]
    host, _, port = rest.rpartition(":")
    return (host, int(port)) if host else (rest, 1883)
