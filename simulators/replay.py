"""Replay a trace CSV (shared/data/README.md; ARCHITECTURE.md "Trace CSV") through any device simulator.

Format: a header row whose first column is `t` and whose other columns are vital keys (monitor.vitals); then one
row per time step. `t` is seconds from the start of the record, or an ISO 8601 UTC time (then it is turned into
seconds from the first row). An empty cell is no value: it becomes None, never 0, and each protocol writes its
own no-value marker for it.

- `load_trace(path)` reads and checks a file (`ReplayError` names the file, the line and the column); the reader
  lives in monitor/trace.py (shared with `bedside replay`) and is re-exported here.
- `replay(trace, speed=...)` is the paced step source: an async iterator of (trace time, values) that yields each
  row when it is due, `speed` times faster than recorded (speed 60 plays a minute per second). Its clock and
  sleep are injectable, so pacing is tested without waiting.
- `ReplaySource(trace, speed)` is a values source (`simulators.state.ValuesSource`) for a device simulator that
  ticks at its own rate: at session time `t` it gives the latest row at or before trace time `t * speed`
  (the row as a whole: a cell empty in that row is None even if an earlier row had a value).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

from monitor.trace import ReplayError, Trace, load_trace, parse_time, parse_trace

__all__ = ["ReplayError", "ReplaySource", "Trace", "load_trace", "parse_time", "parse_trace", "replay"]


def _check_speed(speed: float) -> None:
    if not (speed > 0 and math.isfinite(speed)):
        raise ValueError(f"speed must be > 0, got {speed}")


async def replay(
    trace: Trace,
    *,
    speed: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> AsyncIterator[tuple[float, dict[str, float | None]]]:
    """Yield (trace time, values) for each row when it is due: row i at clock() = start + times[i] / speed.

    Deadlines are computed from the start, not from the previous row, so pacing does not drift; a consumer
    that falls behind gets the late rows at once.
    """
    _check_speed(speed)
    start = clock()
    for t, row in zip(trace.times, trace.rows, strict=True):
        delay = start + t / speed - clock()
        if delay > 0:
            await sleep(delay)
        yield t, dict(row)


class ReplaySource:
    """A values source over a trace: `source(t)` is the row at trace time `t * speed` (held until the next).

    After the last row it keeps giving the last row; `finished(t)` says whether `t` is past the trace's end.
    """

    def __init__(self, trace: Trace, speed: float = 1.0) -> None:
        _check_speed(speed)
        self.trace = trace
        self.speed = speed

    @property
    def duration(self) -> float:
        """Session seconds the trace lasts at this speed."""
        return self.trace.duration / self.speed

    def finished(self, t: float) -> bool:
        return t > self.duration

    def __call__(self, t: float) -> Mapping[str, float | None]:
        return self.trace.at(t * self.speed)
