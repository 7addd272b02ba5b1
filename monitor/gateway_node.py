"""A gateway node (`bedside run --node NAME` with role `gateway`): the drivers of the bays that name this gateway,
near their monitors, publishing every reading and technical condition over MQTT in schema `bedside/v1`
(monitor/gateway.py, buffered on disk while the broker is away), for the engines and dashboards to read.

It decides no alarm and records nothing: a device that stops talking or a cable pulled reaches the engine as the
device's conditions (`device_lost` on its state topic, `no_data`), and a gateway that dies is silence, which the
engine turns into NO DATA for each of its devices. It serves only `GET /api/health` (no login: counts only).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable
from typing import Any

import uvicorn
from fastapi import FastAPI

from alerts.notify.mqtt_out import Broker
from drivers.base import Driver
from drivers.registry import driver_class
from drivers.supervise import supervise
from monitor.config import BedsideConfig
from monitor.gateway import Gateway
from monitor.process import (
    cancel_all,
    device_settings,
    host_port,
    listen_socket,
    stop_on_signals,
    until_stopped_or_failed,
)
from monitor.simulated import Simulated

log = logging.getLogger(__name__)


class GatewayNode:
    """A built gateway: `run()` serves until `stop()` (or SIGINT/SIGTERM). Same surface as monitor.service.Service
    for the command line (`started`, `bound_port`, `alarm_broker`)."""

    def __init__(self, config: BedsideConfig, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.clock = clock
        self.bays = [b for b in config.bays if b.gateway == config.node]
        self.simulated = Simulated(config.site, clock)
        self.drivers: list[Driver] = []
        self.started = asyncio.Event()
        self.bound_port: int | None = None
        self.alarm_broker: str | None = None  # a gateway publishes no alarms
        self.gateway: Gateway | None = None
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def until_stopped(self) -> None:
        await self._stop.wait()

    async def run(self) -> None:
        cfg = self.config
        stop_on_signals(self.stop)
        assert cfg.mqtt.url is not None  # the config's check: nodes have a broker
        host, port = host_port(cfg.mqtt.url)
        m = cfg.mqtt
        tasks: list[asyncio.Task[None]] = []
        server: uvicorn.Server | None = None
        sock: socket.socket | None = None
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        gateway = self.gateway = Gateway(
            cfg.data_dir, Broker(host, port, m.username, m.password, m.tls, m.ca_file, m.cert_file, m.key_file),
            cfg.site, cfg.node or "gateway", heartbeat_interval=cfg.notify.heartbeat_interval, clock=self.clock)
        try:
            sock = listen_socket(cfg.http.host, cfg.http.port)
            self.bound_port = sock.getsockname()[1]
            for bay in self.bays:
                for dev in bay.devices:
                    dev_port = dev.port
                    if dev.simulate:
                        dev_port, sim = self.simulated.device(dev, bay, host, port)
                        tasks.append(asyncio.create_task(sim, name=f"sim-{dev.id}"))
                    if dev.driver == "mqtt":
                        continue  # an MQTT monitor publishes to the broker itself
                    driver = driver_class(dev.driver)(device_settings(cfg, dev, dev_port, host, port))
                    self.drivers.append(driver)
                    tasks.append(asyncio.create_task(supervise(driver, gateway.emitter(dev.id)),
                                                     name=f"drv-{dev.id}"))
            server = uvicorn.Server(uvicorn.Config(self._app(), log_level="warning", lifespan="off"))
            core = [asyncio.create_task(gateway.run(), name="gateway"),
                    asyncio.create_task(server.serve(sockets=[sock]), name="http")]
            tasks += core
            self.started.set()
            log.info("gateway %s: %d devices of %d bays to %s:%d", cfg.node, len(self.drivers), len(self.bays),
                     host, port)
            await until_stopped_or_failed(self._stop, core)
        finally:
            if server is not None:
                server.should_exit = True
            await cancel_all(tasks)
            if sock is not None:
                sock.close()
            self.simulated.close()
            gateway.close()

    def _app(self) -> FastAPI:
        app = FastAPI(title="bedside gateway", docs_url=None, redoc_url=None, openapi_url=None)

        @app.get("/api/health")
        async def health() -> dict[str, Any]:
            """Counts only (no login): what waits for the broker, what was sent, whether the broker is reached."""
            assert self.gateway is not None
            status = self.gateway.status()
            body: dict[str, Any] = {
                "status": "ok" if status.get("failing_since") is None else "degraded",
                "site": self.config.site, "node": {"role": "gateway", "node": self.config.node},
                "devices": len(self.drivers), "time": time.time(),
                "gateway": {k: status.get(k) for k in ("connected", "buffered", "published", "dropped")},
            }
            return body

        return app
