"""Helpers shared by the Nonin format 7 and format 8 codec tests."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import strategies as st

from drivers.nonin import NoninFormat7Codec, NoninFormat8Codec
from monitor.model import Condition, DeviceCondition, DeviceEvent, Reading

Cond = tuple[Condition, str | None, bool]
Key = tuple[Condition, str | None]


def readings(events: Sequence[object]) -> dict[str, float]:
    return {e.vital: e.value for e in events if isinstance(e, Reading)}


def reading_list(events: Sequence[object]) -> list[tuple[str, float]]:
    return [(e.vital, e.value) for e in events if isinstance(e, Reading)]


def conditions(events: Sequence[object]) -> set[Cond]:
    return {(e.condition, e.vital, e.active) for e in events if isinstance(e, DeviceCondition)}


def details(events: Sequence[object]) -> str:
    return " | ".join(e.detail for e in events if isinstance(e, DeviceCondition))


def feed_in_chunks(codec: NoninFormat7Codec | NoninFormat8Codec, data: bytes, cuts: Sequence[int]
                   ) -> list[DeviceEvent]:
    events: list[DeviceEvent] = []
    start = 0
    for cut in sorted(c % (len(data) + 1) for c in cuts):
        events += codec.feed(data[start:cut])
        start = cut
    return events + codec.feed(data[start:])



hrs = st.none() | st.integers(0, 510)
spo2s = st.none() | st.integers(0, 100)

def expected_readings(hr: int | None, spo2: int | None) -> list[tuple[str, float]]:
    out: list[tuple[str, float]] = []
    if spo2 is not None:
        out.append(("spo2", float(spo2)))
    if hr is not None and hr <= 350:  # above: not a possible pulse rate
        out.append(("pr", float(hr)))
    return out


def value_conditions(hr: int | None, spo2: int | None, sensor: bool) -> set[Key]:
    now: set[Key] = set()
    if spo2 is None and not sensor:
        now.add((Condition.NO_DATA, "spo2"))
    if hr is None and not sensor:
        now.add((Condition.NO_DATA, "pr"))
    if hr is not None and hr > 350:
        now.add((Condition.INVALID_VALUE, "pr"))
    return now


def changes(before: set[Key], now: set[Key]) -> set[Cond]:
    return {(c, v, True) for c, v in now - before} | {(c, v, False) for c, v in before - now}
