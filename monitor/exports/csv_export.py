"""A session's observations as a trace CSV (shared/ARCHITECTURE.md "Trace CSV"), the format `bedside replay` and
the simulators read (monitor/trace.py).

- Header: ``t``, then one column per vital key that has readings, in catalogue order (monitor/vitals.py).
- One row per distinct receive time rounded to the millisecond: observations received in the same millisecond share
  a row (a device's frame usually carries several vitals). ``t`` is ISO 8601 UTC with milliseconds and ``Z``
  (``2025-01-01T12:00:00.000Z``), which `monitor.trace.parse_time` reads; replay turns it into seconds from the
  first row.
- An empty cell is no value: a vital not received at that time has an empty cell, never a 0. Should one vital be
  received twice in one millisecond (two devices), the later reading is written.
- No cell can be read as a spreadsheet formula: values are finite numbers written in plain positional notation
  (digits, at most one point; non-finite values are never written), the header holds only catalogue keys (an
  observation of an unknown vital is left out, as replay would reject its column) and ``t`` starts with a digit.

Note for replay: `bedside replay` reports an empty cell as "no value from this row on", so in an export of devices
that report at different moments a vital holds its value only until the next row of any vital (an SpO2 read every
5 s counts towards SatSeconds only until the ECG's row a quarter second later). `to_csv(trace, resolution=1.0)`
puts readings within the same second on one row, which avoids that for devices reporting about once a second or
slower; the default keeps every millisecond apart, as recorded.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np

from monitor.model import Observation
from monitor.store import SessionTrace
from monitor.vitals import VITALS

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_csv(trace: SessionTrace, *, resolution: float = 0.001) -> str:
    """The trace CSV of the session's observations (lines end with CRLF, as the csv module writes them).

    `resolution` (s, at least 1 ms) is the width of a row: readings whose receive times round to the same multiple
    of it share a row stamped with that time; the default keeps every distinct millisecond. A coarser one (e.g. 1 s)
    puts the readings of devices that report a little apart on one row, which replays closer to what happened (see
    the module docstring)."""
    step = max(1, round(resolution * 1000.0))
    rows: dict[int, dict[str, float]] = {}
    for o in trace.observations:
        if not exportable(o, trace):
            continue
        rows.setdefault(round(o.receive_time * 1000.0 / step) * step, {})[o.vital] = float(o.value)
    present = {k for row in rows.values() for k in row}
    columns = [k for k in VITALS if k in present]
    lines = [",".join(["t", *columns])]
    for ms in sorted(rows):
        row = rows[ms]
        lines.append(",".join([iso_utc_ms(ms), *(format_number(row[k]) if k in row else "" for k in columns)]))
    return "\r\n".join(lines) + "\r\n"


def exportable(o: Observation, trace: SessionTrace) -> bool:
    """Whether an observation goes into an export: a catalogue vital, a finite value, received within the
    session's trace [start, end] (the same readings the statistics count)."""
    return o.vital in VITALS and math.isfinite(o.value) and trace.start <= o.receive_time <= trace.end


def millis(t: float) -> int:
    """A POSIX time in whole milliseconds (rounded)."""
    return round(t * 1000.0)


def iso_utc_ms(ms: int) -> str:
    """Milliseconds since the epoch as ISO 8601 UTC, e.g. ``2025-01-01T12:00:00.123Z`` (exact, no float error)."""
    return (_EPOCH + timedelta(milliseconds=ms)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def iso_utc(t: float) -> str:
    """A POSIX time as ISO 8601 UTC with milliseconds."""
    return iso_utc_ms(millis(t))


def format_number(value: float) -> str:
    """A finite number in plain positional notation, as short as round-trips (``72``, ``97.5``); never an
    exponent, so it is also a valid HL7 NM and FHIR decimal text. ValueError for NaN or an infinity."""
    if not math.isfinite(value):
        raise ValueError(f"not a finite number: {value!r}")
    text: str = np.format_float_positional(float(value), trim="-")
    return "0" if text == "-0" else text
