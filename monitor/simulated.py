"""The simulated devices a config asks for (`simulate = true`): one simulated patient per bay, measured by every
simulated device of that bay, each device served in its own wire protocol (a pty for serial protocols, a
publisher for MQTT). Used by the service (role `all`) and by a gateway node, so that a whole deployment runs with
no hardware.
"""

from __future__ import annotations

import contextlib
import time
import zlib
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from monitor.config import BayConfig, DeviceConfig

if TYPE_CHECKING:
    from simulators.patient import PatientModel


class Simulated:
    """Starts simulators for devices and keeps each bay's simulated patient and its session clock."""

    def __init__(self, site: str, clock: Callable[[], float] = time.time) -> None:
        self.site = site
        self.clock = clock
        self._closers: list[Callable[[], None]] = []  # simulators' ptys
        self._patients: dict[str, PatientModel] = {}
        self._t0: dict[str, float] = {}  # bay -> clock() at its simulators' session time 0

    def device(self, dev: DeviceConfig, bay: BayConfig, host: str, port: int
               ) -> tuple[str | None, Coroutine[Any, Any, None]]:
        """Start a simulator for `dev`; returns the port the driver should use and the simulator's coroutine."""
        from simulators.devices import PROTOCOLS, open_device_pty
        from simulators.mqtt_monitor import run_mqtt_simulator

        model = self._patient(bay)
        if dev.driver in PROTOCOLS:
            server = open_device_pty(dev.driver, model, clock=self._clock_of(bay.id))
            self._closers.append(server.close)
            return server.path, server.run()
        if dev.driver == "mqtt":
            return None, run_mqtt_simulator(host, port, self.site, dev.id, model, vitals=dev.simulate_vitals,
                                            clock=self._clock_of(bay.id))
        raise ValueError(f"bay {bay.id} device {dev.id}: no simulator for driver {dev.driver!r}")

    def _patient(self, bay: BayConfig) -> PatientModel:
        """The one simulated patient of `bay`, shared by its simulated devices."""
        from simulators.patient import Episode, PatientModel

        if bay.id not in self._patients:
            p = bay.simulated_patient
            seed = p.seed if p.seed is not None else zlib.crc32(bay.id.encode())
            episodes = [Episode(e.vital, e.value, e.start, e.duration, e.every) for e in p.episodes]
            self._patients[bay.id] = PatientModel(seed, p.infusion_start, p.infusion_minutes, episodes=episodes)
        return self._patients[bay.id]

    def _clock_of(self, bay: str) -> Callable[[], float]:
        """The clock of `bay`'s simulators: the service's, noting its first reading (their session time 0)."""
        def clock() -> float:
            now = self.clock()
            self._t0.setdefault(bay, now)
            return now
        return clock

    def patient(self, bay: str) -> tuple[PatientModel, float] | None:
        """The simulated patient of `bay` and the clock() time its simulators count from; None when the bay has
        no simulated device or they have not started yet."""
        model, origin = self._patients.get(bay), self._t0.get(bay)
        return None if model is None or origin is None else (model, origin)

    def close(self) -> None:
        """Close the simulators' ptys."""
        for close in self._closers:
            with contextlib.suppress(OSError):
                close()
        self._closers.clear()
