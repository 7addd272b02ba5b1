"""The streaming alarm engine: observations and technical statuses in, alarm start/end events out.

Pure and clock-injected: it never reads a clock or does I/O, so the live service, replay and the tests get the
same events from the same inputs. Per-observation limit checks are O(1); the periodic `tick` that finds silent
devices is vectorised with numpy over every device of every bay.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from alerts.rules import TECHNICAL_PRIORITY, TECHNICAL_TEXT, LimitRule
from monitor.model import AlarmEvent, Condition, Observation, TechnicalStatus
from monitor.vitals import VITALS


@dataclass(frozen=True, slots=True)
class WatchedDevice:
    """A device the engine expects to hear from, and after how many silent seconds that is "no data"."""

    device: str
    bay: str
    silent_after: float = 10.0


def _fmt(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() or abs(value) >= 10 else f"{value:.1f}"


class AlarmEngine:
    """Decides alarms for all bays. Feed it with `observe`, `technical`, `heard` and `tick`."""

    def __init__(self, limits: Iterable[LimitRule], devices: Iterable[WatchedDevice]) -> None:
        self._limits: dict[str, LimitRule] = {rule.vital: rule for rule in limits}
        self._devices = list(devices)
        self._device_index = {d.device: i for i, d in enumerate(self._devices)}
        self._last_heard = np.full(len(self._devices), np.nan)
        self._silent_after = np.array([d.silent_after for d in self._devices], dtype=float)
        self._silent = np.zeros(len(self._devices), dtype=bool)
        self._active: dict[tuple[str, str], AlarmEvent] = {}  # (bay, alarm id) -> its start event

    # --- inputs -------------------------------------------------------------------------------------------

    def observe(self, obs: Observation) -> list[AlarmEvent]:
        """Check one observation against its vital's limits."""
        self.heard(obs.device, obs.receive_time)
        rule = self._limits.get(obs.vital)
        if rule is None:
            return []
        short = VITALS[obs.vital].short
        events: list[AlarmEvent] = []
        for side, limit, outside in (
            ("low", rule.low, rule.low is not None and obs.value < rule.low),
            ("high", rule.high, rule.high is not None and obs.value > rule.high),
        ):
            if limit is None:
                continue
            alarm_id = f"{obs.vital}_{side}"
            sign = "<" if side == "low" else ">"
            if outside:
                message = f"{short} {side.upper()} {_fmt(obs.value)} {sign} {_fmt(limit)}"
                events += self._start(
                    AlarmEvent(obs.bay, alarm_id, "start", "physiological", rule.priority, obs.receive_time,
                               message, obs.vital, obs.value, limit, obs.device)
                )
            else:
                events += self._end(obs.bay, alarm_id, obs.receive_time, obs.value)
        return events

    def technical(self, status: TechnicalStatus) -> list[AlarmEvent]:
        """A device's technical condition started or ended."""
        alarm_id = f"{status.condition.value}:{status.device}" + (f":{status.vital}" if status.vital else "")
        if not status.active:
            return self._end(status.bay, alarm_id, status.time, None)
        what = f"{VITALS[status.vital].short} " if status.vital in VITALS else ""
        text = f"{what}{TECHNICAL_TEXT[status.condition]} ({status.device})"
        if status.detail:
            text += f": {status.detail}"
        return self._start(
            AlarmEvent(status.bay, alarm_id, "start", "technical", TECHNICAL_PRIORITY[status.condition],
                       status.time, text, status.vital, None, None, status.device)
        )

    def heard(self, device: str, time: float) -> None:
        """The device sent something (a value, a status, a no-value marker) at `time`."""
        i = self._device_index.get(device)
        if i is not None:
            self._last_heard[i] = time

    def tick(self, now: float) -> list[AlarmEvent]:
        """Find devices that went silent or came back. Call about once a second."""
        never = np.isnan(self._last_heard)
        self._last_heard[never] = now  # a device counts as silent from when the engine first looked
        silent = (now - self._last_heard) >= self._silent_after
        changed = np.flatnonzero(silent != self._silent)
        self._silent = silent
        events: list[AlarmEvent] = []
        for i in changed:
            d = self._devices[int(i)]
            events += self.technical(
                TechnicalStatus(d.bay, d.device, Condition.NO_DATA, bool(silent[i]), now,
                                detail=f"nothing received for {d.silent_after:g} s")
            )
        return events

    def external(self, event: AlarmEvent) -> list[AlarmEvent]:
        """Start (or end) an alarm decided outside the rules, e.g. a failure of bedside itself, so that it is part of
        the active set that every snapshot shows; a start already active is not repeated."""
        if event.phase == "start":
            return self._start(event)
        return self._end(event.bay, event.id, event.time, event.value)

    # --- state --------------------------------------------------------------------------------------------

    def active(self, bay: str | None = None) -> list[AlarmEvent]:
        """The start events of the alarms active now (of one bay, or all), oldest first."""
        return [e for (b, _), e in self._active.items() if bay is None or b == bay]

    def set_limits(self, limits: Mapping[str, LimitRule]) -> None:
        self._limits = dict(limits)

    # --- lifecycle ----------------------------------------------------------------------------------------

    def _start(self, event: AlarmEvent) -> list[AlarmEvent]:
        key = (event.bay, event.id)
        if key in self._active:
            return []
        self._active[key] = event
        return [event]

    def _end(self, bay: str, alarm_id: str, time: float, value: float | None) -> list[AlarmEvent]:
        start = self._active.pop((bay, alarm_id), None)
        if start is None:
            return []
        return [
            AlarmEvent(bay, alarm_id, "end", start.kind, start.priority, time, start.message, start.vital,
                       value, start.limit, start.device)
        ]
