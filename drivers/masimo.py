"""Codec for Masimo Radical-5/7 and Rad-8 "ASCII 1" serial output (shared/reference/device-protocols.md §1.2).

One line per second: `MM/dd/yy HH:mm:ss` then space-separated `TAG=value` fields, ending CR LF. Fields differ
by model and firmware, so the line is parsed by tag. A value filled with dashes means "no value": it becomes no
reading plus a technical condition, never a 0. EXC bits become sensor and signal-quality conditions.
"""

from __future__ import annotations

import math
import re
from datetime import datetime

from drivers.codec import CodecStats, ConditionKey, ConditionTracker, reject
from monitor.model import Condition, DeviceEvent, Reading
from monitor.vitals import is_plausible

MAX_LINE = 512  # a longer run without a line end is garbage, not a line

_TIME = re.compile(rb"^(\d\d)/(\d\d)/(\d\d) (\d\d):(\d\d):(\d\d)$")
_NUMBER = re.compile(r"^[+-]?\d+(\.\d+)?%?$")

# Masimo tag -> vital key
_TAGS = {"SPO2": "spo2", "BPM": "pr", "PI": "pi"}

# EXC bits -> (condition, text)
_EXC: tuple[tuple[int, Condition, str], ...] = (
    (0x000001, Condition.SENSOR_OFF, "no sensor"),
    (0x000020, Condition.SENSOR_OFF, "sensor off patient"),
    (0x001000, Condition.SENSOR_OFF, "no cable"),
    (0x000002, Condition.SENSOR_FAULT, "defective sensor"),
    (0x000080, Condition.SENSOR_FAULT, "unrecognised sensor"),
    (0x000100, Condition.SENSOR_FAULT, "incompatible sensor"),
    (0x002000, Condition.SENSOR_FAULT, "cable expired"),
    (0x004000, Condition.SENSOR_FAULT, "incompatible cable"),
    (0x008000, Condition.SENSOR_FAULT, "unrecognised cable"),
    (0x010000, Condition.SENSOR_FAULT, "defective cable"),
    (0x040000, Condition.SENSOR_FAULT, "sensor expired"),
    (0x000004, Condition.SIGNAL_QUALITY, "low perfusion"),
    (0x000008, Condition.SIGNAL_QUALITY, "pulse search"),
    (0x000010, Condition.SIGNAL_QUALITY, "interference"),
    (0x000040, Condition.SIGNAL_QUALITY, "ambient light"),
    (0x000400, Condition.SIGNAL_QUALITY, "low signal IQ"),
)
_SENSOR_CONDITIONS = (Condition.SENSOR_OFF, Condition.SENSOR_FAULT)


class MasimoCodec:
    """Sans-I/O decoder of Masimo ASCII 1 lines."""

    name = "masimo"

    def __init__(self) -> None:
        self.stats = CodecStats()
        self._buffer = b""
        self._overlong = False  # the buffer held a too-long line's start and dropped it: skip to its end
        self._conditions = ConditionTracker()

    def feed(self, data: bytes) -> list[DeviceEvent]:
        self._buffer += data
        events: list[DeviceEvent] = []
        while True:
            end = self._buffer.find(b"\n")
            if end < 0:
                break
            line, self._buffer = self._buffer[:end], self._buffer[end + 1 :]
            if self._overlong:  # the rest of a line already rejected as too long
                self._overlong = False
            elif len(line) > MAX_LINE:  # as if it had come in pieces: the same line is rejected however it is read
                reject(self.stats, self.name, line, "line too long")
            else:
                events.extend(self._line(line.strip(b"\r\x00 ")))
        if len(self._buffer) > MAX_LINE:
            if not self._overlong:
                reject(self.stats, self.name, self._buffer, "no line end")
            self._buffer = b""
            self._overlong = True
        return events

    def _line(self, line: bytes) -> list[DeviceEvent]:
        if not line:
            return []
        when = _device_time(line[:17])
        if when is None:
            reject(self.stats, self.name, line, "no timestamp")
            return []
        try:
            text = line[18:].decode("ascii")
        except UnicodeDecodeError:
            reject(self.stats, self.name, line, "not ASCII")
            return []
        fields: dict[str, str] = {}
        for token in text.split():
            tag, sep, field = token.partition("=")
            if not sep or not tag:
                reject(self.stats, self.name, line, f"bad field {token!r}")
                return []
            fields[tag] = field
        exc = _hex(fields.get("EXC"))
        if exc is None:
            reject(self.stats, self.name, line, "EXC missing or not hex")
            return []
        self.stats.frames += 1

        present: dict[ConditionKey, str] = {}
        for bit, cond, detail in _EXC:
            if exc & bit:
                key = (cond, None)
                present[key] = f"{present[key]}, {detail}" if key in present else detail
        sensor_problem = any((c, None) in present for c in _SENSOR_CONDITIONS)

        readings: list[DeviceEvent] = []
        for tag, vital in _TAGS.items():
            raw = fields.get(tag)
            if raw is None:
                continue  # this model does not send it
            value = _number(raw)
            if value is None:
                if not sensor_problem:  # a sensor condition already says why there is no value
                    present[(Condition.NO_DATA, vital)] = f"device sent no value ({tag}={raw})"
            elif not is_plausible(vital, value):
                present[(Condition.INVALID_VALUE, vital)] = f"{tag}={raw} is not a possible value"
            else:
                readings.append(Reading(vital, value, when))
        return [*self._conditions.update(present), *readings]


def _device_time(stamp: bytes) -> float | None:
    m = _TIME.match(stamp)
    if m is None:
        return None
    mo, d, y, hh, mm, ss = (int(g) for g in m.groups())
    try:
        return datetime(2000 + y, mo, d, hh, mm, ss).timestamp()  # the monitor's clock is local time
    except ValueError:
        return None


def _number(raw: str) -> float | None:
    """The value of a field, or None for a no-value marker (dashes) or anything not a number."""
    if "-" in raw[1:] or not _NUMBER.match(raw):
        return None
    value = float(raw.rstrip("%"))
    return value if math.isfinite(value) else None


def _hex(raw: str | None) -> int | None:
    if raw is None:
        return None
    try:
        return int(raw, 16)
    except ValueError:
        return None
