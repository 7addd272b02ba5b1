"""What every codec shares: counters of decoded and rejected frames, and edge detection of conditions.

A codec is sans-I/O: `feed(bytes)` returns the device events decoded so far and never raises, whatever the
input; a malformed frame is counted, logged and skipped, and decoding resumes at the next valid frame.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from monitor.model import Condition, DeviceCondition, DeviceEvent

log = logging.getLogger(__name__)


@dataclass(slots=True)
class CodecStats:
    """How many frames a codec decoded and how many it rejected."""

    frames: int = 0
    rejected: int = 0


class Codec(Protocol):
    """A sans-I/O decoder of one device protocol."""

    stats: CodecStats

    def feed(self, data: bytes) -> list[DeviceEvent]:
        """Decode what `data` completes; keep any partial frame for the next call. Never raises."""
        ...


ConditionKey = tuple[Condition, str | None]


class ConditionTracker:
    """Turns "the conditions present in this frame" into start/end events, emitted only on change."""

    def __init__(self) -> None:
        self._active: dict[ConditionKey, str] = {}

    def update(self, present: dict[ConditionKey, str]) -> list[DeviceCondition]:
        """`present` maps each condition seen in the latest frame to its detail text."""
        events = [
            DeviceCondition(cond, False, vital, self._active[(cond, vital)])
            for (cond, vital) in list(self._active)
            if (cond, vital) not in present
        ]
        for key, detail in present.items():
            if key not in self._active:
                events.append(DeviceCondition(key[0], True, key[1], detail))
        self._active = dict(present)
        return events


def reject(stats: CodecStats, codec: str, frame: bytes | str, why: str) -> None:
    """Count and log (at most the first 80 characters of) a frame that could not be decoded."""
    stats.rejected += 1
    shown = frame[:80] if isinstance(frame, str) else frame[:80].decode("ascii", "backslashreplace")
    log.warning("%s: rejected frame (%s): %r", codec, why, shown)
