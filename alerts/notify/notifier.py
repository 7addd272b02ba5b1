"""The alarm outputs as one: the service hands it the engine's events, it queues each for the targets that take
it (alerts/notify/routing.py) in the durable outbox, and its forwarders deliver them (docs/integration.md).

`Notifier.events(events)` runs on the event loop right after the events are recorded: it writes them to the
outbox (one fsync) and wakes the forwarders; it never waits for a receiver. `failing(now)` names the targets whose
delivery has been failing for `[notify] failing_after` seconds, which the service shows as technical alarms.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Protocol

from alerts.notify.forwarder import BACKOFF, Forwarder, Sender
from alerts.notify.mqtt_out import MqttAlarmOutput
from alerts.notify.outbox import Outbox, OutboxError
from alerts.notify.payloads import event_json
from alerts.notify.routing import Route, Router
from monitor.config import NotifyConfig, NotifyTargetConfig
from monitor.model import AlarmEvent

log = logging.getLogger(__name__)


class Output(Protocol):
    """A forwarder or the MQTT output, as the notifier watches it."""

    target: str
    delivered: int
    failures: int
    failing_since: float | None
    last_error: str | None

    def wake(self) -> None: ...

    def failing(self, now: float, after: float) -> bool: ...

    def run(self) -> Coroutine[Any, Any, None]: ...


def make_sender(t: NotifyTargetConfig) -> Sender:
    """The sender of a configured target."""
    if t.kind == "webhook":
        from alerts.notify.webhook import WebhookSender

        assert t.secret is not None  # the config requires it
        return WebhookSender(t.url, t.secret, timeout=t.timeout)
    from alerts.notify.hl7_out import Hl7Sender

    host, _, port = t.url.removeprefix("mllp://").rpartition(":")
    return Hl7Sender(host, int(port), facility=t.facility, timeout=t.timeout)


def route_of(t: NotifyTargetConfig) -> Route:
    kinds = frozenset({"physiological", "technical"} if t.technical else {"physiological"})
    return Route(t.name, t.escalation_level, frozenset(t.priorities), kinds)  # type: ignore[arg-type]


class Notifier:
    """Routes, queues and delivers alarm events to every configured output."""

    def __init__(self, cfg: NotifyConfig, site: str, outbox: Outbox, bay_names: dict[str, str], *,
                 senders: dict[str, Sender] | None = None, clock: Callable[[], float] = time.time,
                 backoff: tuple[float, ...] = BACKOFF, origin: str | None = None) -> None:
        self.cfg = cfg
        self.origin = origin  # an engine node's name: in every event it queues (event ids, HL7 control ids)
        self.site = site
        self.outbox = outbox
        self.bay_names = bay_names
        self.clock = clock
        senders = senders or {}
        self.outputs: dict[str, Output] = {
            t.name: Forwarder(t.name, senders.get(t.name) or make_sender(t), outbox, clock=clock, backoff=backoff)
            for t in cfg.targets}
        self.router = Router([route_of(t) for t in cfg.targets])
        self.mqtt: MqttAlarmOutput | None = None
        self.queue_failing_since: float | None = None  # the outbox itself could not be written
        self.queued = 0
        for name, n in outbox.counts().items():
            if name not in self.outputs and (name != "mqtt" or not cfg.mqtt):
                log.warning("outbox: %d alarm messages for %s, no longer configured, are dropped", n, name)
                outbox.drop_target(name)

    def attach_mqtt(self, output: MqttAlarmOutput) -> None:
        """Also publish on MQTT (the broker is known only once the service runs)."""
        self.mqtt = output
        self.outputs[output.target] = output

    def events(self, events: Sequence[AlarmEvent]) -> None:
        """Queue the events for their targets (on disk, in one transaction, when this returns) and wake their
        outputs."""
        queue: list[tuple[dict[str, Any], list[str]]] = []
        for event in events:
            targets = self.router.targets(event)
            if self.mqtt is not None:
                targets.append(self.mqtt.target)
                self.mqtt.changed(event.bay)
            if targets:
                queue.append((event_json(event, self.site, self.bay_names.get(event.bay), self.origin), targets))
        if not queue:
            return
        try:
            self.outbox.put_many(queue, self.clock())
        except OutboxError:
            log.exception("outbox: %d alarm events not queued: they will not be forwarded", len(queue))
            if self.queue_failing_since is None:
                self.queue_failing_since = self.clock()
            return
        self.queue_failing_since = None
        self.queued += len(queue)
        for name in {t for _, targets in queue for t in targets}:
            self.outputs[name].wake()

    def tasks(self) -> list[Coroutine[Any, Any, None]]:
        """The outputs' delivery loops, to run until the service stops."""
        return [o.run() for o in self.outputs.values()]

    def failing(self, now: float) -> list[str]:
        """The targets whose delivery has failed for `failing_after` s (all of them if the outbox cannot be
        written)."""
        after = self.cfg.failing_after
        if self.queue_failing_since is not None and now - self.queue_failing_since >= after:
            return sorted(self.outputs)
        return sorted(name for name, o in self.outputs.items() if o.failing(now, after))

    def status(self) -> dict[str, Any]:
        """For /api/health: per output, delivered, waiting, failures, failing since, the last error."""
        try:
            waiting = self.outbox.counts()
        except OutboxError:
            waiting = {}
        return {name: {"delivered": o.delivered, "waiting": waiting.get(name, 0), "failures": o.failures,
                       "failing_since": o.failing_since, "last_error": o.last_error}
                for name, o in self.outputs.items()}
