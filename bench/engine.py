"""Benchmark (issue 4, item 8): observation-evaluations per second of the alarm engine, against a straightforward
per-observation Python implementation of the same rules (bench/naive_engine.py), at 10, 100 and 1,000 bays.

    make bench            (or: .venv/bin/python bench/engine.py [--quick])

What is measured
----------------
An *observation-evaluation* is one new reading of one vital of one bay, taken in by the implementation (`observe`)
and evaluated against every alarm condition the profile has for that vital in one tick (`tick(now)`: the step over
the elapsed time with the value held since the last tick, then the instant step with the new value). The workload
(bench/workload.py) has every bay report every vital the ketamine-infusion profile watches (spo2, pr, hr, nibp_sys,
nibp_dia, rr, etco2) once per simulated second, and the implementation is ticked once per simulated second in
virtual time, so a run of S seconds over N bays is exactly 7 * N * S observation-evaluations, for both
implementations. Evaluations per second = that count / the wall-clock seconds spent inside `observe` and `tick`
(bench/harness.py says what is and is not timed). Every bay is on ketamine-infusion with fixed baselines (the
workload's resting values, set before the first tick), so the engine does no baseline learning.

The engine is run with each of its two inputs:
- "engine eval/s": fed with `observe_block`, its vectorised input (one bays x vitals array of the second's new
  values, as a replay, a gateway's batch or a bulk ingest hands it over), then `tick`. This is the engine as
  designed: intake and decisions are numpy over all bays. The targets and the last line are about this figure.
- "engine observe() eval/s": fed with one `observe(Observation)` per reading, as the live service feeds it today.
  Here the per-call Python cost of taking in a reading (about 0.6 us: the same kind of work the straightforward
  implementation does per reading) dominates; it is printed beside the other so that nobody mistakes one for the
  other. (At 1,000 bays x 7 vitals at 1 Hz that intake costs the service a few ms of CPU per second, small beside
  decoding the MQTT JSON that carries the readings.)

Each size is run REPEATS times, the implementations alternating, and the best run of each is reported (the machine
may be shared; the best run is the least disturbed one). Ratios are engine / straightforward in this same run.

Cross-check
-----------
In every run the engine (with either input) and the straightforward implementation must raise the same alarm starts
(alarm id and bay, times within one tick) and end the same conditions (for the engine an "end" or, for a latching
alarm, "latched"); any difference is printed and the benchmark exits with status 1.

The LAST line of the output is the ratio engine / straightforward at 1,000 bays, as `<number>x`.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script (python bench/engine.py): make the `bench` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from bench.harness import Run, disagreements, run_engine, run_naive
from bench.workload import make_workload

SIZES: tuple[tuple[int, int], ...] = ((10, 1800), (100, 900), (1000, 300))  # (bays, simulated seconds)
QUICK: tuple[tuple[int, int], ...] = ((10, 300), (100, 120), (1000, 60))
REPEATS = 3
SEED = 8
TICK = 1.0  # s: the cross-check's tolerance on times
TARGET_RATE = 1_000_000.0  # engine evaluations/s at 1,000 bays
TARGET_RATIO = 10.0  # engine / straightforward at 1,000 bays


@dataclass
class Result:
    bays: int
    seconds: int
    evaluations: int
    engine: Run
    naive: Run
    block: Run
    problems: list[str]

    @property
    def ratio(self) -> float:
        """Engine (its vectorised input) / straightforward."""
        return self.block.rate(self.evaluations) / self.naive.rate(self.evaluations)

    @property
    def observe_ratio(self) -> float:
        """Engine fed one observe() per reading / straightforward."""
        return self.engine.rate(self.evaluations) / self.naive.rate(self.evaluations)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def measure(bays: int, seconds: int, repeats: int) -> Result:
    w = make_workload(bays, seconds, SEED)
    engines: list[Run] = []
    naives: list[Run] = []
    blocks: list[Run] = []
    problems: list[str] = []
    for _ in range(repeats):
        engines.append(run_engine(w))
        naives.append(run_naive(w))
        blocks.append(run_engine(w, block=True))
        problems += disagreements(engines[-1], naives[-1], TICK)
        problems += disagreements(blocks[-1], naives[-1], TICK)
    return Result(bays, seconds, w.evaluations, _best(engines), _best(naives), _best(blocks), sorted(set(problems)))


def _best(runs: list[Run]) -> Run:
    return min(runs, key=lambda r: r.busy)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="short runs, one repetition (a smoke test)")
    args = parser.parse_args(argv)
    sizes, repeats = (QUICK, 1) if args.quick else (SIZES, REPEATS)

    print("alarm engine (alerts.engine.AlarmEngine) vs straightforward per-observation Python (bench/naive_engine.py)")
    print("profile ketamine-infusion; every bay reports spo2 pr hr nibp_sys nibp_dia rr etco2 at 1 Hz; 1 tick/s")
    print(f"Python {platform.python_version()}, numpy {np.__version__}, CPU {cpu_model()} "
          f"({_cores()} cores); best of {repeats} run(s) per size; workload seed {SEED}")
    results = []
    for bays, seconds in sizes:
        results.append(measure(bays, seconds, repeats))
    print()
    print(f"{'bays':>5} {'sim s':>6} {'evaluations':>12} {'engine eval/s':>14} {'naive eval/s':>13} "
          f"{'engine/naive':>13} {'engine observe() eval/s':>24} {'observe()/naive':>16} {'starts':>7} {'ends':>6}"
          f"  cross-check")
    for r in results:
        verdict = "agree" if not r.problems else f"DISAGREE ({len(r.problems)})"
        print(f"{r.bays:>5} {r.seconds:>6} {r.evaluations:>12,} {r.block.rate(r.evaluations):>14,.0f} "
              f"{r.naive.rate(r.evaluations):>13,.0f} {r.ratio:>12.2f}x {r.engine.rate(r.evaluations):>24,.0f} "
              f"{r.observe_ratio:>15.2f}x {r.engine.start_count:>7} {r.engine.end_count:>6}  {verdict}")
    print()
    print("engine eval/s: the engine fed its vectorised input, observe_block() of all bays' new values each second,")
    print("  then tick() (the figure the targets are about); engine observe() eval/s: fed one observe() per reading,")
    print("  as the live service does today, where the per-call Python intake dominates")
    print("share of the engine's time spent in observe(): "
          + ", ".join(f"{r.bays} bays {100 * r.engine.observing / r.engine.busy:.0f} %" for r in results))
    failed = False
    for r in results:
        for p in r.problems[:10]:
            print(f"cross-check, {r.bays} bays: {p}")
        failed |= bool(r.problems)
    print("cross-check: " + ("FAILED: the implementations disagree" if failed else
                             "both implementations raise the same alarm starts and ends at every size"))
    last = results[-1]
    rate = last.block.rate(last.evaluations)
    print(f"targets at {last.bays:,} bays: engine >= {TARGET_RATE:,.0f} eval/s: "
          f"{'met' if rate >= TARGET_RATE else 'NOT met'} ({rate:,.0f}); engine >= {TARGET_RATIO:g}x straightforward: "
          f"{'met' if last.ratio >= TARGET_RATIO else 'NOT met'} ({last.ratio:.2f}x); with one observe() per "
          f"reading: {last.engine.rate(last.evaluations):,.0f} eval/s, {last.observe_ratio:.2f}x")
    print(f"{last.ratio:.1f}x")
    return 1 if failed else 0


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


if __name__ == "__main__":
    sys.exit(main())
