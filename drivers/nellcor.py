"""Codec for the Nellcor N-560 / N-595 ASCII trend output (shared/reference/device-protocols.md §1.3).

The monitor prints one line every 2 s, ending CR LF (LF alone or CR alone is accepted too):

    29-Dec-17 07:18:57    89*     66     201    MO SL

`dd-MMM-yy HH:mm:ss` (the monitor's local clock), then %SpO2, BPM and PA (pulse amplitude, not read), then
zero or more two-letter status codes. `---` is "no value"; a `*` suffix marks a value outside the monitor's own
alarm limits (ignored: bedside's engine decides alarms). A header block repeats every ~25 lines: the model,
firmware version and alarm limits (kept in `limits`, `model`, `version`), the ADULT/NEO + SatSeconds line (N-595:
with `SPO2 RESP MODE`) and the column titles. Header lines and N-595 interactive-mode menu lines are recognised,
not rejected; they are not counted as frames either (`stats.frames` counts data lines).

Missing is missing: `---` becomes no reading plus NO_DATA for that vital, unless a sensor code (SD, SO) already
says why. During pulse search (PS) and loss of pulse (LP, LM) the monitor prints `0` for SpO2 and BPM; those
zeros are not readings (nor are zeros printed with SD/SO): the SIGNAL_QUALITY (or SENSOR_OFF) condition of the
status code stands for them. A value not plausible for the vital (monitor.vitals) becomes INVALID_VALUE.

Status codes -> conditions (device-wide, `vital` None; detail names the codes):
  SD sensor disconnect, SO sensor off                                   -> Condition.SENSOR_OFF
  PS pulse search, MO motion/interference, LP loss of pulse,
  LM loss of pulse with motion                                          -> Condition.SIGNAL_QUALITY
  AO alarm off, AS alarm silence, PH/PL pulse high/low, SH/SL sat high/low,
  LB low battery                                                        -> no condition
The last group describes the monitor's own alarm and battery state. It is kept in `monitor_codes` (the codes of
the latest data line) and `low_battery`; LB is logged when it appears, since bedside's technical conditions have
no battery kind. Unknown two-letter codes are ignored (logged once each), so a firmware with an extra code still
delivers its values.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime

from drivers.codec import CodecStats, ConditionKey, ConditionTracker, reject
from monitor.model import Condition, DeviceEvent, Reading
from monitor.vitals import is_plausible

log = logging.getLogger(__name__)

MAX_LINE = 512  # a longer run without a line end is garbage, not a line

_EOL = re.compile(rb"\r\n|\r|\n")
_VALUE = r"(\d{1,5}\*?|-{1,5})"
_DATA = re.compile(
    r"(\d\d)-([A-Za-z]{3})-(\d\d) (\d\d):(\d\d):(\d\d)"
    rf"\s+{_VALUE}\s+{_VALUE}\s+{_VALUE}"
    r"((?:\s+[A-Z]{2})*)"
)
_VERSION = re.compile(r"(\S+)\s+VERSION\s+(\S+)(.*)")
_SPO2_LIMIT = re.compile(r"SpO2 Limit:\s?(\d{1,3})-\s?(\d{1,3})%", re.IGNORECASE)
_PR_LIMIT = re.compile(r"PR Limit:\s?(\d{1,3})-\s?(\d{1,3})BPM", re.IGNORECASE)
_MODE = re.compile(r"([A-Za-z]+)\s+(\S*)SAT-S(?:\s+SPO2 RESP MODE:\s*(\w+))?", re.IGNORECASE)
_RESP_MODE = re.compile(r"SPO2 RESP MODE:\s*(\w+)", re.IGNORECASE)
_TITLES = re.compile(r"TIME\s+%SPO2\s+BPM\s+PA\s+STATUS", re.IGNORECASE)
_MENU = re.compile(
    r"Command\?|\S+\s+Interactive Mode"
    r"|\d\) (?:Dump Instrument Info|Set Date and Time|Dump Trend|Dump Error Log|Exit Interactive Mode)"
)

_MONTHS = {m: i for i, m in enumerate(
    ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), start=1)}

# status code -> (condition, text); codes not listed here raise no condition
_STATUS: dict[str, tuple[Condition, str]] = {
    "SD": (Condition.SENSOR_OFF, "sensor disconnect (SD)"),
    "SO": (Condition.SENSOR_OFF, "sensor off (SO)"),
    "PS": (Condition.SIGNAL_QUALITY, "pulse search (PS)"),
    "MO": (Condition.SIGNAL_QUALITY, "motion/interference (MO)"),
    "LP": (Condition.SIGNAL_QUALITY, "loss of pulse (LP)"),
    "LM": (Condition.SIGNAL_QUALITY, "loss of pulse with motion (LM)"),
}
MONITOR_CODES = frozenset({"AO", "AS", "LB", "PH", "PL", "SH", "SL"})  # the monitor's own alarm/battery state
_SENSOR_CODES = frozenset({"SD", "SO"})
_ZERO_IS_MISSING = frozenset({"PS", "LP", "LM"}) | _SENSOR_CODES  # with these, a printed 0 is not a reading

# column (in the order printed) -> vital key; None = not read
_COLUMNS: tuple[tuple[str, str | None], ...] = (("SpO2", "spo2"), ("BPM", "pr"), ("PA", None))


class NellcorCodec:
    """Sans-I/O decoder of Nellcor N-560 / N-595 ASCII trend lines."""

    name = "nellcor"

    def __init__(self) -> None:
        self.stats = CodecStats()
        self.model: str | None = None  # e.g. "N-560", from the header
        self.version: str | None = None  # firmware version, from the header
        self.limits: dict[str, tuple[float, float]] = {}  # vital key -> (low, high) alarm limits of the monitor
        self.patient_mode: str | None = None  # "ADULT" or "NEO"
        self.resp_mode: str | None = None  # N-595 SpO2 response mode: "NORMAL" or "FAST"
        self.monitor_codes: frozenset[str] = frozenset()  # alarm/battery codes of the latest data line
        self._buffer = b""
        self._overlong = False  # the buffer held a too-long line's start and dropped it: skip to its end
        self._conditions = ConditionTracker()
        self._unknown_codes: set[str] = set()

    @property
    def low_battery(self) -> bool:
        """Whether the latest data line carried LB (low battery)."""
        return "LB" in self.monitor_codes

    def feed(self, data: bytes) -> list[DeviceEvent]:
        *lines, self._buffer = _EOL.split(self._buffer + data)  # a CR LF split across reads: one empty line more
        events: list[DeviceEvent] = []
        for line in lines:
            if self._overlong:  # the rest of a line already rejected as too long
                self._overlong = False
            else:
                events.extend(self._line(line))
        if len(self._buffer) > MAX_LINE:
            if not self._overlong:
                reject(self.stats, self.name, self._buffer, "no line end")
            self._buffer = b""
            self._overlong = True
        return events

    def _line(self, raw: bytes) -> list[DeviceEvent]:
        if len(raw) > MAX_LINE:  # as if it had come in pieces: the same line is rejected however it is read
            reject(self.stats, self.name, raw, "line too long")
            return []
        line = raw.strip(b"\x00 \t")
        if not line:
            return []
        try:
            text = line.decode("ascii")
        except UnicodeDecodeError:
            reject(self.stats, self.name, line, "not ASCII")
            return []
        m = _DATA.fullmatch(text)
        if m is not None:
            return self._data(m, text)
        if self._header(text):
            return []
        reject(self.stats, self.name, line, "neither a data nor a header line")
        return []

    def _data(self, m: re.Match[str], text: str) -> list[DeviceEvent]:
        when = _device_time(m.group(1, 2, 3, 4, 5, 6))
        if when is None:
            reject(self.stats, self.name, text, "impossible date or time")
            return []
        self.stats.frames += 1
        codes = m.group(10).split()

        present: dict[ConditionKey, str] = {}
        for code in codes:
            if code in _STATUS:
                cond, detail = _STATUS[code]
                key = (cond, None)
                if key not in present:
                    present[key] = detail
                elif detail not in present[key]:
                    present[key] = f"{present[key]}, {detail}"
            elif code not in MONITOR_CODES and code not in self._unknown_codes:
                self._unknown_codes.add(code)
                log.warning("%s: unknown status code %r ignored", self.name, code)
        monitor_codes = frozenset(codes) & MONITOR_CODES
        if "LB" in monitor_codes and not self.low_battery:
            log.warning("%s: the monitor reports low battery (LB)", self.name)
        self.monitor_codes = monitor_codes
        sensor_problem = any(c in _SENSOR_CODES for c in codes)
        zero_is_missing = any(c in _ZERO_IS_MISSING for c in codes)

        readings: list[DeviceEvent] = []
        for (column, vital), raw in zip(_COLUMNS, m.group(7, 8, 9), strict=True):
            if vital is None:
                continue
            digits = raw.rstrip("*")
            if digits.startswith("-"):
                if not sensor_problem:  # a sensor condition already says why there is no value
                    present[(Condition.NO_DATA, vital)] = f"device sent no value ({column} {raw})"
                continue
            value = float(int(digits))
            if value == 0 and zero_is_missing:
                continue  # the 0 printed during pulse search / loss of pulse / sensor off is not a reading
            if not is_plausible(vital, value):
                present[(Condition.INVALID_VALUE, vital)] = f"{column} {raw} is not a possible value"
            else:
                readings.append(Reading(vital, value, when))
        return [*self._conditions.update(present), *readings]

    def _header(self, text: str) -> bool:
        """Take what a header-block line says; False if `text` is not one."""
        m = _VERSION.fullmatch(text)
        if m is not None:
            self.model, self.version = m.group(1), m.group(2)
            for vital, pattern in (("spo2", _SPO2_LIMIT), ("pr", _PR_LIMIT)):
                limit = pattern.search(m.group(3))
                if limit is not None:
                    self.limits[vital] = (float(limit.group(1)), float(limit.group(2)))
            return True
        m = _MODE.fullmatch(text)
        if m is not None:
            self.patient_mode = m.group(1).upper()
            if m.group(3) is not None:
                self.resp_mode = m.group(3).upper()
            return True
        m = _RESP_MODE.fullmatch(text)
        if m is not None:
            self.resp_mode = m.group(1).upper()
            return True
        return _TITLES.fullmatch(text) is not None or _MENU.fullmatch(text) is not None


def _device_time(groups: tuple[str | None, ...]) -> float | None:
    day, month, year, hh, mm, ss = (g or "" for g in groups)
    mo = _MONTHS.get(month.upper())
    if mo is None:
        return None
    try:
        return datetime(2000 + int(year), mo, int(day), int(hh), int(mm), int(ss)).timestamp()  # local clock
    except (ValueError, OverflowError):
        return None
