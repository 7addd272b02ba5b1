"""The hub: binds devices to bays, turns device events into observations and statuses, keeps the latest state.

Every device event enters through `ingest`, stamped with the receive time. The hub knows which bay a device
belongs to (from config or admission, never from a topic), keeps each bay's latest value per vital and its
active technical conditions, and hands each resulting Observation or TechnicalStatus to its sinks in order.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from monitor.model import Bay, Condition, DeviceCondition, DeviceEvent, Observation, Reading, TechnicalStatus

log = logging.getLogger(__name__)

Sink = Callable[[Observation | TechnicalStatus], None]
HeardSink = Callable[[str, float], None]


@dataclass(slots=True)
class BayState:
    """What the hub knows of one bay now."""

    bay: Bay
    latest: dict[str, Observation] = field(default_factory=dict)
    technical: dict[tuple[str, Condition, str | None], TechnicalStatus] = field(default_factory=dict)


class Hub:
    """Routes device events to bays and fans the results out to sinks (engine, live view, recorder)."""

    def __init__(self, bays: Iterable[Bay]) -> None:
        self.bays: dict[str, BayState] = {}
        self._bay_of: dict[str, str] = {}
        for bay in bays:
            self.bays[bay.id] = BayState(bay)
            for device in bay.devices:
                self._bay_of[device] = bay.id
        self._sinks: list[Sink] = []
        self._heard: list[HeardSink] = []
        self.unbound = 0  # events from devices bound to no bay

    def add_sink(self, sink: Sink) -> None:
        self._sinks.append(sink)

    def on_heard(self, sink: HeardSink) -> None:
        """`sink(device, time)` is called for every event from a bound device, also ones that change nothing."""
        self._heard.append(sink)

    def bay_of(self, device: str) -> str | None:
        return self._bay_of.get(device)

    def ingest(self, device: str, event: DeviceEvent, receive_time: float) -> None:
        bay_id = self._bay_of.get(device)
        if bay_id is None:
            self.unbound += 1
            return
        replayed = isinstance(event, Reading) and event.replayed
        if not replayed and not (isinstance(event, DeviceCondition) and event.condition == Condition.DEVICE_LOST):
            # the link's own up/down events (made by the supervisor, not sent by the device) are not "heard
            # from the device": else every reconnect attempt would reset the silence timer and NO DATA would flap
            for heard in self._heard:
                heard(device, receive_time)
        state = self.bays[bay_id]
        item: Observation | TechnicalStatus
        if isinstance(event, Reading):
            item = Observation(bay_id, device, event.vital, event.value, event.device_time, receive_time, replayed)
            if not replayed:  # a past value is not the bay's latest
                state.latest[event.vital] = item
        else:
            item = self._status(state, device, event, receive_time)
            key = (device, event.condition, event.vital)
            if event.active == (key in state.technical):
                return  # no change: already active, or ending what was not active
            if event.active:
                state.technical[key] = item
            else:
                del state.technical[key]
        for sink in self._sinks:
            sink(item)

    @staticmethod
    def _status(state: BayState, device: str, event: DeviceCondition, time: float) -> TechnicalStatus:
        return TechnicalStatus(state.bay.id, device, event.condition, event.active, time, event.vital, event.detail)
