"""Benchmark (issue 6): a 4-hour session's full trend for one bay, served by the API.

    make bench            (or: .venv/bin/python bench/trend.py [--hours H] [--requests N] [--postgres URL])

What is measured
----------------
The wall-clock time of `GET /api/sessions/{id}/trace` (every reading of every vital of the session, columnar, with
its alarm periods, technical periods and annotations) made with httpx to a real uvicorn server on loopback, as the
review page asks for it. The session is closed, so the first request reads the readings row by row and keeps a
column copy of them (monitor/store.py `session_trends`); that first request is reported on its own, the rest
read the copy. The store holds 6 bays x 4 h: hr, pr, spo2, rr and etco2 once a second and a cuff
pressure (sys/dia/map) every 5 minutes on every bay (6 x 72,144 = 432,864 rows), written through the recorder's
path; the session is bay 1's and spans the 4 h, so one request carries 72,144 readings. Each request is made
`--requests` times after one warm-up; the median and the 95th percentile are reported.

Baseline, in the same run: `GET /api/bays/{bay}/history` over the same window, the bay page's history endpoint
(rows read one by one into [t, v] pairs and encoded by FastAPI's default JSON encoder): the straightforward way.
The target is a median at or below 100 ms for the trace. The LAST line is the ratio history / trace, as `<n>x`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import numpy as np
import uvicorn

from alerts.engine import AlarmEngine
from dashboard.app import LiveSources, create_app
from monitor import db
from monitor.broadcast import Broadcast
from monitor.hub import Hub
from monitor.infusion import admit
from monitor.model import AlarmEvent, Bay, LiveItem, Observation
from monitor.mosquitto import free_port
from monitor.pg_store import PostgresStore
from monitor.sqlite_store import SQLiteStore
from monitor.store import TraceStore
from monitor.tokens import create_token

BAYS = 6
T0 = 1_780_000_000.0
TARGET_MS = 100.0


def fill(store: TraceStore, hours: float) -> str:
    """Six bays of `hours` of readings; bay 1's session spans them. Returns the session id."""
    rng = np.random.default_rng(6)
    seconds = int(hours * 3600)
    for bay in range(1, BAYS + 1):
        batch: list[Observation | AlarmEvent] = []
        for t in range(seconds):
            when = T0 + t + 0.013 * bay
            for vital, value in (("hr", 72), ("pr", 72), ("spo2", 97), ("rr", 14), ("etco2", 38)):
                batch.append(Observation(f"bay{bay}", "mon", vital, float(value + rng.integers(-3, 4)), when, when))
            if t % 300 == 0:
                for vital, value in (("nibp_sys", 125), ("nibp_dia", 80), ("nibp_map", 95)):
                    batch.append(Observation(f"bay{bay}", "mon", vital, float(value), when, when))
            if len(batch) >= 50_000:
                store.append(batch)
                batch = []
        for k in range(0, seconds, 1800):  # an alarm now and then
            batch += [AlarmEvent(f"bay{bay}", "hr_high", "start", "physiological", "medium", T0 + k + 60, "HR HIGH"),
                      AlarmEvent(f"bay{bay}", "hr_high", "end", "physiological", "medium", T0 + k + 120, "HR HIGH")]
        store.append(batch)
    s = admit("bench-session", "bay1", T0, "bench", patient_id="P1", initials="AB", weight_kg=70,
              dose_mg_per_kg=0.5, planned_minutes=40, series_kind="booster")
    s = s.ended(T0 + seconds, "bench", "benchmark")
    store.save_session(s)
    return s.id


def drop_schema(url: str, schema: str) -> None:
    import asyncpg

    async def drop() -> None:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()

    asyncio.run(drop())


def timed(client: httpx.Client, url: str, params: dict[str, float] | None, n: int) -> tuple[list[float], int, float]:
    """`n` timed requests after a first one (timed apart: for the trace, it keeps the column copy)."""
    start = time.perf_counter()
    client.get(url, params=params).raise_for_status()
    first = (time.perf_counter() - start) * 1000
    times, size = [], 0
    for _ in range(n):
        start = time.perf_counter()
        r = client.get(url, params=params)
        times.append((time.perf_counter() - start) * 1000)
        r.raise_for_status()
        size = len(r.content)
    return times, size, first


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hours", type=float, default=4.0)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--postgres", default=None, help="a PostgreSQL url: measure that store instead of SQLite "
                        "(in a schema of its own, dropped afterwards)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bedside-bench-") as tmp:
        data = Path(tmp)
        schema = f"bedside_bench_{os.getpid()}"
        store: TraceStore = PostgresStore(args.postgres, schema=schema) if args.postgres else SQLiteStore(data)
        started = time.perf_counter()
        sid = fill(store, args.hours)
        print(f"filled {BAYS} bays x {args.hours:g} h in {time.perf_counter() - started:.1f} s "
              f"({'PostgreSQL' if args.postgres else 'SQLite'})")
        conn = db.connect(data)
        token = create_token(conn, "viewer", "bench")
        bays = [f"bay{i}" for i in range(1, BAYS + 1)]
        src = LiveSources("bench", Hub(Bay(b, b) for b in bays), AlarmEngine(bays), Broadcast[LiveItem](), conn,
                          store)
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(create_app(src), host="127.0.0.1", port=port, log_level="warning",
                                               lifespan="off"))
        thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
        thread.start()
        try:
            while not server.started:
                time.sleep(0.05)
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {token}"},
                              timeout=60) as client:
                trace, trace_size, trace_first = timed(client, f"/api/sessions/{sid}/trace", None, args.requests)
                window = {"since": T0, "until": T0 + args.hours * 3600}
                history, history_size, _ = timed(client, "/api/bays/bay1/history", window, args.requests)
                points = sum(len(v["t"]) for v in client.get(f"/api/sessions/{sid}/trace").json()["trends"].values())
        finally:
            server.should_exit = True
            thread.join(timeout=10)
            conn.close()
            store.close()
            if args.postgres:
                drop_schema(args.postgres, schema)

    def line(name: str, ms: list[float], size: int) -> str:
        p95 = sorted(ms)[int(0.95 * (len(ms) - 1))]
        return f"{name:<34} median {statistics.median(ms):7.1f} ms   p95 {p95:7.1f} ms   {size / 1e6:5.2f} MB"

    print(f"{platform.python_implementation()} {platform.python_version()}, {platform.machine()}, "
          f"{args.requests} requests each, {points} readings in the session")
    print(f"{'trace, first read (keeps the copy)':<34} once   {trace_first:7.1f} ms")
    print(line("trace (GET /api/sessions/{id}/trace)", trace, trace_size))
    print(line("baseline: bay history endpoint", history, history_size))
    ok = statistics.median(trace) <= TARGET_MS
    print(f"target: trace median <= {TARGET_MS:.0f} ms: {'met' if ok else 'NOT MET'}")
    print(f"{statistics.median(history) / statistics.median(trace):.1f}x")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
