"""Run the engine or the straightforward implementation over a workload: the time spent in them, and the alarm edges.

Shared by bench/engine.py (timing, cross-check) and tests/unit/test_bench_naive.py (the cross-check alone), so the
benchmark's honesty check and the test run the very same code.

What is timed: for each simulated second, handing the second's observations to `observe` one by one (or, for the
engine's informational block run, its values to one `observe_block`) and then one `tick(now)`; that is everything an
implementation does to decide alarms. Not timed: building the implementation (profiles, bays, fixed baselines), making
the second's `Observation` objects or value array (the hub does that in the service), and sorting the events into
starts and ends afterwards.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np

from alerts.engine import VITAL_KEYS, AlarmEngine
from alerts.profile import builtin_profiles
from bench.naive_engine import NaiveEngine
from bench.workload import VITALS, FloatArray, Workload
from monitor.model import Observation

PROFILE = "ketamine-infusion"
Key = tuple[str, str]  # (bay, alarm id)
E = TypeVar("E")
P = TypeVar("P")


@dataclass
class Run:
    """One implementation's run over a workload."""

    name: str
    busy: float = 0.0  # seconds spent in observe + tick
    observing: float = 0.0  # ... of which in observe
    starts: dict[Key, list[float]] = field(default_factory=lambda: defaultdict(list))
    ends: dict[Key, list[float]] = field(default_factory=lambda: defaultdict(list))

    def rate(self, evaluations: int) -> float:
        return evaluations / self.busy if self.busy > 0 else float("inf")

    @property
    def start_count(self) -> int:
        return sum(len(v) for v in self.starts.values())

    @property
    def end_count(self) -> int:
        return sum(len(v) for v in self.ends.values())


def _drive(name: str, w: Workload, prepare: Callable[[int], P], take: Callable[[P], None],
           tick: Callable[[float], list[E]]) -> tuple[Run, list[list[E]]]:
    """Per simulated second: `prepare` its input (not timed), then `take` it and `tick` (timed)."""
    run = Run(name)
    out: list[list[E]] = []
    clock = time.perf_counter
    for s in range(w.seconds):
        batch = prepare(s)
        now = w.time(s)
        began = clock()
        take(batch)
        observed = clock()
        out.append(tick(now))
        ended = clock()
        run.busy += ended - began
        run.observing += observed - began
    return run, out


def _one_by_one(observe: Callable[[Observation], None]) -> Callable[[list[Observation]], None]:
    def take(batch: list[Observation]) -> None:
        for obs in batch:
            observe(obs)
    return take


def make_engine(w: Workload) -> AlarmEngine:
    """The engine, every bay on the ketamine-infusion profile, with the workload's fixed baselines."""
    engine = AlarmEngine(w.bays, default_profile=PROFILE, t0=w.time(0))
    for bay, values in w.baselines.items():
        for vital, value in values.items():
            engine.set_baseline(bay, vital, value, w.time(0))
    return engine


def make_naive(w: Workload) -> NaiveEngine:
    return NaiveEngine(w.bays, builtin_profiles()[PROFILE], w.baselines)


def run_engine(w: Workload, *, block: bool = False) -> Run:
    """The engine fed one `observe` per observation (as the service does), or with `block`, one `observe_block` of
    all bays' values per second (the values only: no Observation objects, no devices)."""
    engine = make_engine(w)
    if block:
        cols = [VITAL_KEYS.index(v) for v in VITALS]
        blank = np.full((len(w.bays), len(VITAL_KEYS)), np.nan)

        def values(s: int) -> tuple[FloatArray, float]:
            b = blank.copy()
            b[:, cols] = w.values[s]
            return b, w.time(s)

        def take(item: tuple[FloatArray, float]) -> None:
            engine.observe_block(*item)

        run, batches = _drive("engine (observe_block)", w, values, take, engine.tick)
    else:
        run, batches = _drive("engine", w, w.observations, _one_by_one(engine.observe), engine.tick)
    latched: set[Key] = set()
    for events in batches:
        for ev in events:
            if ev.kind != "physiological":
                continue
            key = (ev.bay, ev.id)
            if ev.phase == "start":
                run.starts[key].append(ev.time)
            elif ev.phase == "latched":  # the condition ended; the alarm stays until acknowledged or it starts again
                run.ends[key].append(ev.time)
                latched.add(key)
            elif ev.phase == "end":
                if key in latched:  # a latched occurrence closed (by a fresh start): not a condition edge
                    latched.discard(key)
                else:
                    run.ends[key].append(ev.time)
    return run


def run_naive(w: Workload) -> Run:
    naive = make_naive(w)
    run, batches = _drive("naive", w, w.observations, _one_by_one(naive.observe), naive.tick)
    for edges in batches:
        for e in edges:
            (run.starts if e.phase == "start" else run.ends)[e.bay, e.alarm_id].append(e.time)
    return run


def disagreements(a: Run, b: Run, tolerance: float, *, ends: bool = True) -> list[str]:
    """Where two runs differ: an alarm (bay, id) started a different number of times, or one of its starts (and,
    with `ends`, ends) is more than `tolerance` s apart. Empty: they agree."""
    out: list[str] = []
    pairs: Iterable[tuple[str, dict[Key, list[float]], dict[Key, list[float]]]] = [("start", a.starts, b.starts)]
    if ends:
        pairs = [*pairs, ("end", a.ends, b.ends)]
    for what, x, y in pairs:
        for key in sorted(set(x) | set(y)):
            tx, ty = sorted(x.get(key, [])), sorted(y.get(key, []))
            if len(tx) != len(ty):
                out.append(f"{key[0]} {key[1]}: {what}s {a.name} {tx} vs {b.name} {ty}")
                continue
            off = [(p, q) for p, q in zip(tx, ty, strict=True) if abs(p - q) > tolerance]
            if off:
                out.append(f"{key[0]} {key[1]}: {what} times {a.name} {off[0][0]} vs {b.name} {off[0][1]}")
    return out
