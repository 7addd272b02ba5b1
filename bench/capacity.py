"""Benchmark (issue 8): how many bays at 1 Hz numerics one bedside process sustains with p99 <= 100 ms, its CPU and
memory there, and whether its memory stays flat over a long run.

    make bench            (or: .venv/bin/python bench/capacity.py [--steps 250 500 1000 1250 1500 2000] [--seconds 30]
                                [--soak 120] [--soak-bays N] [--all] [--profile])

What is measured
----------------
For each size N of `--steps` (in order; it stops at the first size that fails unless `--all`): a real `bedside run`
process (bench/cluster.py `Clinic`) with a private Mosquitto and N bays, each with one MQTT monitor; one separate
process publishes every monitor's numerics at 1 Hz (hr, pr, spo2, rr, etco2, temp: six observations a message, as
simulators/mqtt_monitor.py sends them), staggered evenly over each second. Every bay is on the undelayed benchmark
profile. Once every bay is live and 5 s more, for `--seconds`:

- every observation's latency from its monitor to a websocket client (`/ws/live`, a viewer): the message's `ts` (the
  publisher's clock at the publish call, kept by bedside as the device time) to its arrival at the client, joined
  through the recorded trace (bay, vital, receive time); split into monitor -> hub (bedside's receive stamp) and hub
  -> websocket;
- alarm probes as in bench/latency.py (SpO2 75 on one bay every 0.5 s, to the websocket and the MQTT alarm topic);
- bedside's CPU (user + system of all its threads, /proc, in cores) and its resident memory (RSS).

A size passes when the observation p99 and the alarm p99 (both destinations) are at or below 100 ms, at least 99 %
of the expected observations reached the websocket, no alarm was missed and the websocket was never dropped. The
capacity is the largest size that passes. The publisher's own lateness is printed (it shares the machine).

Soak: then at `--soak-bays` (default: the capacity, at most 1,000; the smallest size if none passed) for `--soak` s,
with the websocket client connected: RSS every 5 s, first, last, peak and the slope fitted over the second half (MB
per hour). Memory must not grow with the session's length.

`--profile` runs bedside under bench/sampler.py (samples of its event loop's stack every 5 ms of its CPU time) and
prints, for each size, where the loop's time went in the measuring window.

There is no baseline to divide by; the LAST line is the capacity, as `<n> bays`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from bench.cluster import VITALS, Clinic, Observer, Window, machine, ms, pct, temporary_root
from bench.sampler import report

STEPS = (250, 500, 1000, 1250, 1500, 2000)
TARGET_MS = 100.0
TARGET_BAYS = 1000
TARGET_RSS = 500 * 2**20
WARMUP = 5.0
SOAK_SAMPLE = 5.0  # s between RSS samples


@dataclass
class Step:
    bays: int
    seconds: float
    started: float = 0.0
    live: float = 0.0
    e2e: list[float] = field(default_factory=list)  # ms, monitor -> websocket
    to_hub: list[float] = field(default_factory=list)  # ms, monitor -> hub
    to_ws: list[float] = field(default_factory=list)  # ms, hub -> websocket
    alarm_ws: list[float] = field(default_factory=list)
    alarm_mqtt: list[float] = field(default_factory=list)
    missed: int = 0
    received: int = 0  # observations at the websocket in the window
    expected: int = 0
    cpu: float = 0.0  # cores
    loop: float = 0.0  # ... of which the event loop thread
    rss: int = 0
    ws_closed: str | None = None
    publisher: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    profile: list[str] = field(default_factory=list)  # the sampler's report (--profile)
    others: float = float("nan")  # cores used by processes that are not the benchmark's

    @property
    def obs_p99(self) -> float:
        return pct(self.e2e, 99)

    @property
    def alarm_p99(self) -> float:
        return max(pct(self.alarm_ws, 99), pct(self.alarm_mqtt, 99))

    @property
    def passed(self) -> bool:
        return (self.error is None and self.ws_closed is None and not self.missed and bool(self.e2e)
                and self.obs_p99 <= TARGET_MS and self.alarm_p99 <= TARGET_MS and self.received >= 0.99 * self.expected)


async def run_step(bays: int, seconds: float, profile: bool) -> Step:
    step = Step(bays, seconds)
    with temporary_root("bedside-bench-capacity-") as root:
        samples = root / "profile.json"
        try:
            async with Clinic(root, bays, profile=samples if profile else None) as clinic:
                step.started = clinic.started
                step.live, live = await clinic.until_live(30 + bays / 20)
                if live < bays:
                    step.error = f"only {live:,} of {bays:,} bays live after {step.live:.0f} s: bedside falls behind"
                    return step
                await asyncio.sleep(WARMUP)
                async with Observer(clinic) as observer:
                    assert clinic.bedside is not None
                    clinic.bedside.sample(True)
                    before, threads, window, wall = clinic.stat(), clinic.threads(), Window(), time.time()
                    observer.keep_obs = True
                    await observer.probe(seconds, 0.5)
                    observer.keep_obs = False
                    after, elapsed = clinic.stat(), window.close().elapsed
                    step.loop = clinic.loop_share(threads, clinic.threads(), elapsed)[0]
                    clinic.bedside.sample(False)
                    step.others = window.others()
                    step.ws_closed = observer.ws_closed
                step.publisher = clinic.stop_publisher()
                step.cpu, step.rss = (after.cpu - before.cpu) / elapsed, after.rss
                await asyncio.sleep(1.5)  # the recorder's last batch
                recorded = await asyncio.to_thread(clinic.recorded, wall - 5, time.time())
        except RuntimeError as exc:
            step.error = str(exc).splitlines()[0]
        if profile and samples.exists():
            step.profile = report(samples)
        if step.error:
            return step
    probes = [p for p in observer.probes if p.path == "mqtt"]
    step.alarm_ws = ms([p.ws for p in probes if p.ws is not None])
    step.alarm_mqtt = ms([p.mqtt for p in probes if p.mqtt is not None])
    step.missed = sum(1 for p in probes if p.ws is None or p.mqtt is None)
    step.received = len(observer.obs)
    step.expected = bays * len(VITALS) * int(elapsed)
    for bay, vital, receive, arrived in observer.obs:
        device = recorded.get((bay, vital, receive))
        if device is not None:
            step.e2e.append((arrived - device) * 1000)
            step.to_hub.append((receive - device) * 1000)
            step.to_ws.append((arrived - receive) * 1000)
    return step


@dataclass
class Soak:
    bays: int
    times: list[float] = field(default_factory=list)  # s since the start
    rss: list[int] = field(default_factory=list)
    cpu: float = 0.0
    others: float = float("nan")
    ws_closed: str | None = None

    def slope(self) -> float:
        """MB per hour, fitted over the second half."""
        half = len(self.times) // 2
        if len(self.times) - half < 2:
            return float("nan")
        t, r = np.array(self.times[half:]), np.array(self.rss[half:], dtype=float) / 2**20
        return float(np.polyfit(t, r, 1)[0] * 3600)


async def soak(bays: int, seconds: float) -> Soak:
    result = Soak(bays)
    with temporary_root("bedside-bench-soak-") as root:
        async with Clinic(root, bays) as clinic:
            await clinic.until_live(60 + bays / 10)
            async with Observer(clinic) as observer:
                window, before = Window(), clinic.stat()
                while (elapsed := time.monotonic() - window.began) <= seconds:
                    result.times.append(elapsed)
                    result.rss.append(clinic.stat().rss)
                    await asyncio.sleep(SOAK_SAMPLE)
                result.cpu = (clinic.stat().cpu - before.cpu) / window.close().elapsed
                result.others = window.others()
                result.ws_closed = observer.ws_closed
    return result





def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--steps", type=int, nargs="+", default=list(STEPS), help="sizes to try, in order")
    parser.add_argument("--seconds", type=float, default=30.0, help="measuring time per size")
    parser.add_argument("--all", action="store_true", help="try every size, also after one fails")
    parser.add_argument("--soak", type=float, default=120.0, help="s of the RSS run (0: none)")
    parser.add_argument("--soak-bays", type=int, default=None, help="bays of the RSS run (default: the capacity, "
                        f"at most {TARGET_BAYS:,})")
    parser.add_argument("--profile", action="store_true", help="sample bedside's event loop; print where its time "
                        "goes at each size")
    args = parser.parse_args(argv)

    print("capacity: bays at 1 Hz numerics (6 vitals a message) one bedside process sustains with p99 <= "
          f"{TARGET_MS:.0f} ms (monitor -> websocket per observation, and alarm probes); CPU and RSS there")
    print(machine())
    steps = args.steps
    results: list[Step] = []
    for bays in steps:
        s = asyncio.run(run_step(bays, args.seconds, args.profile))
        results.append(s)
        if s.error:
            print(f"{bays:,} bays: FAILED to run: {s.error}", flush=True)
        else:
            print(f"{bays:,} bays: served after {s.started:.1f} s, live after {s.live:.1f} s; observations p99 "
                  f"{s.obs_p99:.1f} ms ({len(s.e2e):,} of {s.received:,} received joined to the record), alarms p99 "
                  f"{s.alarm_p99:.1f} ms, CPU {s.cpu:.2f} cores, RSS "
                  f"{s.rss / 2**20:.0f} MB (other processes on the machine: {s.others:.2f} cores): "
                  f"{'pass' if s.passed else 'FAIL'}", flush=True)
        if not s.passed and not args.all:
            break
    print()
    print(f"{'bays':>6} {'obs p50':>8} {'obs p99':>8} {'->hub p99':>9} {'hub->ws p99':>11} {'alarm p50':>9} "
          f"{'alarm p99':>9} {'missed':>6} {'received':>9} {'CPU':>6} {'loop':>5} {'RSS MB':>7} {'pub late p99':>12} "
          f"{'others':>6}  verdict")
    for s in results:
        verdict = "pass" if s.passed else ("FAIL: " + (s.error or s.ws_closed or "over the limits"))
        print(f"{s.bays:>6,} {pct(s.e2e, 50):>8.1f} {s.obs_p99:>8.1f} {pct(s.to_hub, 99):>9.1f} "
              f"{pct(s.to_ws, 99):>11.1f} {pct(s.alarm_ws + s.alarm_mqtt, 50):>9.1f} {s.alarm_p99:>9.1f} "
              f"{s.missed:>6} {s.received / max(1, s.expected):>8.1%} {s.cpu:>6.2f} {s.loop:>5.2f} "
              f"{s.rss / 2**20:>7.0f} {s.publisher.get('late_p99_ms', float('nan')):>12.1f} {s.others:>6.2f}  "
              f"{verdict}")
    print("(ms; obs = monitor -> websocket per observation; alarm = SpO2 75 -> alarm start, the slower of websocket "
          "and MQTT topic; received = observations at the websocket / expected; CPU = bedside's, in cores, loop = its "
          "event loop thread's; others = cores used by processes that are not the benchmark's)")
    for s in results:
        if s.profile:
            print(f"profile at {s.bays:,} bays:")
            print("\n".join(s.profile))
    ran = [s for s in results if s.error is None and s.loop > 0]
    if ran:
        r = max(ran, key=lambda s: s.bays)
        print(f"CPU per bay at {r.bays:,} bays: {1000 * r.cpu / r.bays:.2f} ms a second (event loop thread "
              f"{1000 * r.loop / r.bays:.2f} ms): bedside's one event loop would be saturated at about "
              f"{r.bays / r.loop:,.0f} bays with a core to itself (an estimate, from the CPU it used here)")
    passed = [s for s in results if s.passed]
    capacity = max((s.bays for s in passed), default=0)
    print(f"target: >= {TARGET_BAYS:,} bays at p99 <= {TARGET_MS:.0f} ms: "
          f"{'met' if capacity >= TARGET_BAYS else 'NOT MET'} (largest size passed: {capacity:,}"
          f"{'' if len(results) == len(steps) and results[-1].passed else '; the next size failed'})")
    at = next((s for s in passed if s.bays == capacity), None)
    if at is not None:
        print(f"at {capacity:,} bays: CPU {at.cpu:.2f} cores, RSS {at.rss / 2**20:.0f} MB; target RSS <= "
              f"{TARGET_RSS / 2**20:.0f} MB: {'met' if at.rss <= TARGET_RSS else 'NOT MET'}")
    if args.soak > 0:
        bays = args.soak_bays or min(capacity or min(steps), TARGET_BAYS)
        so = asyncio.run(soak(bays, args.soak))
        mb = [r / 2**20 for r in so.rss]
        print(f"soak: {bays:,} bays for {args.soak:.0f} s: RSS first {mb[0]:.0f} MB, last {mb[-1]:.0f} MB, peak "
              f"{max(mb):.0f} MB, slope over the second half {so.slope():+.0f} MB/h; CPU {so.cpu:.2f} cores "
              f"(other processes {so.others:.2f})"
              + (f"; websocket {so.ws_closed}" if so.ws_closed else ""))
        print(f"target RSS <= {TARGET_RSS / 2**20:.0f} MB over the soak: "
              f"{'met' if max(so.rss) <= TARGET_RSS else 'NOT MET'} (peak {max(mb):.0f} MB)")
    print(f"{capacity} bays")
    return 0


if __name__ == "__main__":
    sys.exit(main())
