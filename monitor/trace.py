"""Trace CSV files (shared/data/README.md; ARCHITECTURE.md "Trace CSV"): reading and checking them.

Format: a header row whose first column is `t` and whose other columns are vital keys (monitor.vitals); then one
row per time step. `t` is seconds from the start of the record, or an ISO 8601 UTC time (then it is turned into
seconds from the first row). An empty cell is no value: it becomes None, never 0.

- `load_trace(path)` reads and checks a file, `parse_trace(lines)` its lines (`ReplayError` names the file, the
  line and the column).
- `Trace` is the loaded trace: times from the first row, the vital columns, one values dict per row.

Ground floor (standard library and the vital catalogue only), so that both the device simulators
(simulators/replay.py paces a trace through a simulated device) and `bedside replay` (monitor/replay.py runs one
through the alarm engine) read traces with this one reader.
"""

from __future__ import annotations

import bisect
import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from monitor.vitals import VITALS


class ReplayError(Exception):
    """A trace file that cannot be replayed; the message names the file, the line and what is wrong."""


@dataclass(frozen=True, slots=True)
class Trace:
    """A loaded trace: `times` (seconds from the first row, non-decreasing), `columns` (vital keys) and one
    values dict per row (every column present, None for an empty cell)."""

    times: tuple[float, ...]
    columns: tuple[str, ...]
    rows: tuple[dict[str, float | None], ...]
    source: str = "<trace>"

    @property
    def duration(self) -> float:
        """Seconds from the first row to the last."""
        return self.times[-1] - self.times[0] if self.times else 0.0

    def at(self, trace_t: float) -> dict[str, float | None]:
        """The latest row at or before `trace_t` (seconds from the first row); all None before the first row."""
        i = bisect.bisect_right(self.times, trace_t) - 1
        if i < 0:
            return dict.fromkeys(self.columns)
        return dict(self.rows[i])


def parse_time(text: str) -> float | None:
    """Seconds (a number) or an ISO 8601 time as a POSIX timestamp (UTC if no zone); None if neither."""
    try:
        value = float(text)
    except ValueError:
        pass
    else:
        return value if math.isfinite(value) else None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def parse_trace(lines: Sequence[str], source: str = "<trace>") -> Trace:
    """Parse the lines of a trace CSV; ReplayError for a bad header, time or cell."""
    reader = csv.reader(lines)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise ReplayError(f"{source}: empty file") from None
    if not header or header[0] != "t":
        raise ReplayError(f"{source}: line 1: the first column must be 't', got {header[0] if header else ''!r}")
    columns = header[1:]
    unknown = [c for c in columns if c not in VITALS]
    if unknown:
        raise ReplayError(f"{source}: line 1: unknown vital column(s) {', '.join(map(repr, unknown))}; "
                          f"known: {', '.join(VITALS)}")  # fmt: skip
    if len(set(columns)) != len(columns):
        raise ReplayError(f"{source}: line 1: a column is repeated")
    times: list[float] = []
    rows: list[dict[str, float | None]] = []
    for line_no, cells in enumerate(reader, start=2):
        if not cells or all(not c.strip() for c in cells):
            continue
        if len(cells) > len(header):
            raise ReplayError(f"{source}: line {line_no}: {len(cells)} cells, the header has {len(header)}")
        t = parse_time(cells[0].strip())
        if t is None:
            raise ReplayError(f"{source}: line {line_no}: t: {cells[0]!r} is neither seconds nor ISO 8601")
        if times and t < times[-1]:
            raise ReplayError(f"{source}: line {line_no}: t goes backwards ({cells[0]!r})")
        row: dict[str, float | None] = {}
        for key, cell in zip(columns, [*cells[1:], *[""] * (len(header) - len(cells))], strict=True):
            text = cell.strip()
            if not text:
                row[key] = None
                continue
            try:
                value = float(text)
            except ValueError:
                raise ReplayError(f"{source}: line {line_no}: {key}: {cell!r} is not a number") from None
            row[key] = value if math.isfinite(value) else None
        times.append(t)
        rows.append(row)
    if not rows:
        raise ReplayError(f"{source}: no rows after the header")
    t0 = times[0]
    return Trace(tuple(t - t0 for t in times), tuple(columns), tuple(rows), source)


def load_trace(path: str | Path) -> Trace:
    """Read and check a trace CSV file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ReplayError(f"{p}: cannot read: {exc.strerror}") from None
    return parse_trace(text.splitlines(), str(p))
