"""Which alarm outputs are sent which alarm events: the escalation policy.

The engine decides escalation (alerts/lifecycle.py): a high-priority alarm still unacknowledged 30 s after it
started yields an "escalated" event of level 1, at 90 s one of level 2 (`[alarms] escalate_after`); acknowledging
it, or its end, stops that. This module only routes:

- a target of `escalation_level` 0 (the nursing station, the alarm manager) is sent every event of the
  priorities and kinds it takes;
- a target of level k > 0 (the charge nurse's pager at 1, the next at 2) is sent an alarm first by its
  "escalated" event of level >= k, then every later event of that alarm (acknowledged, audio paused, end ...), so
  the receiver learns that it was answered; an alarm that is acknowledged or ends before level k never reaches
  it. A reminder (the alarm alerts again after an acknowledgement) restarts the escalation from level 1.

Pure and clock-free: the same events give the same routes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from monitor.model import AlarmEvent, AlarmKind, Priority


@dataclass(frozen=True, slots=True)
class Route:
    """What one target takes: its name, the escalation level it joins at, the priorities and kinds."""

    target: str
    escalation_level: int = 0
    priorities: frozenset[Priority] = frozenset({"high", "medium", "low"})
    kinds: frozenset[AlarmKind] = frozenset({"physiological", "technical"})


class Router:
    """Decides, event by event, which targets are sent it."""

    def __init__(self, routes: Sequence[Route]) -> None:
        self.routes = list(routes)
        self._escalated: dict[str, set[tuple[str, str]]] = {r.target: set() for r in self.routes}

    def targets(self, event: AlarmEvent) -> list[str]:
        """The targets `event` goes to (call once per event, in the engine's order)."""
        key = (event.bay, event.id)
        out = []
        for r in self.routes:
            if event.priority not in r.priorities or event.kind not in r.kinds:
                continue
            if r.escalation_level == 0:
                out.append(r.target)
                continue
            reached = self._escalated[r.target]
            if event.phase == "escalated" and event.level >= r.escalation_level:
                reached.add(key)
            if key in reached:
                out.append(r.target)
                if event.phase == "end":
                    reached.discard(key)
        return out
