"""Benchmark (issue 8): end-to-end alarm latency, from a device writing a value over a limit to the alarm event at a
websocket client and on the MQTT alarm topic, at 10, 100 and 1,000 bays, beside the raw Mosquitto round trip.

    make bench            (or: .venv/bin/python bench/latency.py [--bays 10 100 1000] [--seconds 30] [--gap 0.25]
                                                                 [--pty-bays 4])

What is measured
----------------
A real `bedside run` process (bench/cluster.py `Clinic`) with a private Mosquitto, N MQTT bays whose monitors are
published by one separate process at 1 Hz (six vitals a message, staggered evenly over each second), plus
`--pty-bays` bays with a Masimo oximeter on a pty that this process writes (one line a second). Every bay is on the
benchmark profile `bench-undelayed` (delay 0, SpO2 SatSeconds off, no latching, no escalation), so what is timed is
the alarm path itself, never a configured delay.

A probe: at a known instant this process (`Observer`) writes SpO2 75 for one bay, half a second after that bay's own
numerics (and half-way between two bays' messages, as a reading arriving at a random moment would be),
- MQTT path: as the bay's monitor, `{"ts", "seq", "values": {"spo2": 75}}` on its numerics topic (QoS 1);
- pty path: a Masimo "ASCII 1" line with SPO2=075% on the bay's pty;
and times, on its own clock (perf_counter), until the `spo2_low` alarm event with phase `start` for that bay
arrives (1) on its `/ws/live` websocket (a viewer token) and (2) on the MQTT topic
`bedside/v1/<site>/bay/<bay>/alarm_events` (subscribed on its own MQTT connection). Every `--gap` s an MQTT bay
is probed (a bay at most once in 2.5 s; the bay's next ordinary reading ends the alarm); the pty bays in turn
every 0.5 s, at the same time. A probe that has not arrived at both within 5 s is counted as missed.

Baseline, in the same run, on the same connection and broker under the same load: the raw Mosquitto publish ->
subscribe round trip (QoS 1) of a small message, every `--gap` s half-way between the probes.

Also printed: how long every reading of the MQTT monitors in the window took from its monitor to bedside's hub
(its receive stamp minus the message's `ts`, from the recorded trace; a median above 1 s means bedside falls behind
and the probes are lost in the backlog), and, from the alarm event's own `time` (bedside's clock when the engine's
tick decided it; same machine, so the wall clocks agree): device -> decision, decision -> websocket, decision ->
MQTT topic, and bedside's CPU while probing.

The target is a p99 at or below 50 ms at 100 bays (MQTT path, both destinations). The LAST line is, at 100 bays (or
the size nearest it), the alarm p99 (the slower destination) / the raw round trip p99, as `<n>x`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.cluster import Clinic, Observer, Probe, Window, machine, ms, pct, temporary_root

SIZES = (10, 100, 1000)
TARGET_BAYS = 100
TARGET_MS = 50.0
WARMUP = 5.0  # s after every bay is live before probing


@dataclass
class Result:
    bays: int
    probes: list[Probe]
    rtts: list[float]
    started: float  # s until bedside served
    live: float  # s until every bay was live
    live_bays: int  # bays live then (fewer than all: bedside does not keep up)
    cpu: float  # bedside's CPU while probing, in cores
    rss: int
    ws_messages: int
    seconds: float
    publisher: dict[str, float]
    window: Window
    ws_closed: str | None
    lag: list[float]  # ms, monitor -> hub of every recorded reading in the window (bedside's receive stamp - ts)

    def of(self, path: str) -> list[Probe]:
        return [p for p in self.probes if p.path == path]

    def missed(self, path: str) -> int:
        return sum(1 for p in self.of(path) if p.ws is None or p.mqtt is None)

    def lat(self, path: str, dest: str) -> list[float]:
        return ms([v for p in self.of(path) if (v := p.ws if dest == "ws" else p.mqtt) is not None])

    def p99(self, path: str) -> float:
        """The slower destination's p99 (ms)."""
        return max(pct(self.lat(path, "ws"), 99), pct(self.lat(path, "mqtt"), 99))


async def measure(bays: int, seconds: float, gap: float, pty_bays: int) -> Result:
    with temporary_root("bedside-bench-latency-") as root:
        async with Clinic(root, bays, pty_bays=pty_bays) as clinic:
            live, live_bays = await clinic.until_live(30 + bays / 20)
            await asyncio.sleep(WARMUP)
            async with Observer(clinic) as observer:
                before, window, wall = clinic.stat(), Window(), time.time()
                await observer.probe(seconds, gap)
                after, elapsed = clinic.stat(), window.close().elapsed
            publisher = clinic.stop_publisher()
            await asyncio.sleep(1.0)  # the recorder's last batch
            recorded = await asyncio.to_thread(clinic.recorded, wall, wall + elapsed)
            lag = [(receive - device) * 1000 for (bay, _, receive), device in recorded.items()
                   if bay.startswith("bay")]  # MQTT monitors (a Masimo's clock has whole seconds)
            return Result(bays, observer.probes, observer.rtts, clinic.started, live, live_bays,
                          (after.cpu - before.cpu) / elapsed, after.rss, observer.ws_messages, elapsed, publisher,
                          window, observer.ws_closed, lag)


def row(bays: int, what: str, values: list[float], missed: int = 0) -> str:
    return (f"{bays:>6,} {what:<34} {len(values):>5} {pct(values, 50):>8.1f} {pct(values, 99):>8.1f} "
            f"{max(values, default=float('nan')):>8.1f} {missed:>7}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--bays", type=int, nargs="+", default=list(SIZES), help="the sizes (MQTT bays)")
    parser.add_argument("--seconds", type=float, default=30.0, help="probing time per size")
    parser.add_argument("--gap", type=float, default=0.25, help="s between MQTT probes (and raw round trips)")
    parser.add_argument("--pty-bays", type=int, default=4, help="bays with a Masimo on a pty (0: none)")
    args = parser.parse_args(argv)

    print("end-to-end alarm latency: a device writes SpO2 75 -> bedside (real process) -> alarm start at a websocket")
    print("client and on the MQTT alarm topic; profile bench-undelayed (no delay, SatSeconds off); baseline: raw")
    print("Mosquitto publish -> subscribe round trip (QoS 1) in the same run")
    print(machine())
    results: list[Result] = []
    for bays in args.bays:
        r = asyncio.run(measure(bays, args.seconds, args.gap, args.pty_bays))
        results.append(r)
        live = (f"all live after {r.live:.1f} s" if r.live_bays == bays + args.pty_bays else
                f"NOT ALL LIVE: {r.live_bays:,} of {bays + args.pty_bays:,} bays had a reading of the last 3 s after "
                f"{r.live:.0f} s (bedside does not keep up)")
        behind = pct(r.lag, 50) > 1000
        print(f"{bays:,} MQTT bays + {args.pty_bays} pty bays: served after {r.started:.1f} s, {live}; readings "
              f"reached bedside's hub {pct(r.lag, 50):,.0f} ms (p50) / {pct(r.lag, 99):,.0f} ms (p99) after they were "
              f"sent{' (BEDSIDE FALLS BEHIND)' if behind else ''}; while "
              f"probing ({r.seconds:.0f} s) bedside used {r.cpu:.2f} cores, RSS "
              f"{r.rss / 2**20:.0f} MB, websocket {r.ws_messages / r.seconds:,.0f} messages/s; publisher late p99 "
              f"{r.publisher.get('late_p99_ms', float('nan')):.1f} ms; the benchmark's processes used "
              f"{r.window.ours():.2f} cores, other processes on the machine {r.window.others():.2f}"
              + (f"; the websocket was {r.ws_closed}" if r.ws_closed else ""), flush=True)
    print()
    print(f"{'bays':>6} {'path -> where (ms)':<34} {'n':>5} {'p50':>8} {'p99':>8} {'max':>8} {'missed':>7}")
    for r in results:
        for path, name in (("mqtt", "MQTT monitor"), ("pty", "Masimo on pty")):
            if not r.of(path):
                continue
            print(row(r.bays, f"{name} -> websocket", r.lat(path, "ws"), r.missed(path)))
            print(row(r.bays, f"{name} -> MQTT alarm topic", r.lat(path, "mqtt"), r.missed(path)))
        print(row(r.bays, "baseline: raw Mosquitto round trip", ms(r.rtts)))
    print()
    print("where the MQTT path's time goes (ms; from the alarm event's own time, bedside's clock at the decision):")
    for r in results:
        done = [p for p in r.of("mqtt") if p.event_time is not None and p.ws is not None and p.mqtt is not None]
        decide = ms([p.event_time - p.sent_wall for p in done if p.event_time is not None])
        to_ws = ms([p.sent_wall + p.ws - p.event_time for p in done if p.event_time is not None and p.ws])
        to_mqtt = ms([p.sent_wall + p.mqtt - p.event_time for p in done if p.event_time is not None and p.mqtt])
        print(f"{r.bays:>6,} bays: device -> decision p50 {pct(decide, 50):.1f} p99 {pct(decide, 99):.1f}; "
              f"decision -> websocket p50 {pct(to_ws, 50):.1f} p99 {pct(to_ws, 99):.1f}; "
              f"decision -> MQTT topic p50 {pct(to_mqtt, 50):.1f} p99 {pct(to_mqtt, 99):.1f}")
    missed = sum(r.missed(p) for r in results for p in ("mqtt", "pty"))
    if missed:
        print(f"MISSED: {missed} probes whose alarm did not arrive at both within 5 s")
    at = min(results, key=lambda r: abs(r.bays - TARGET_BAYS))
    p99 = at.p99("mqtt")
    print(f"target: alarm p99 <= {TARGET_MS:.0f} ms at {TARGET_BAYS} bays (MQTT monitor, both destinations): "
          f"{'met' if p99 <= TARGET_MS else 'NOT MET'} ({p99:.1f} ms at {at.bays:,} bays"
          + (f"; Masimo on pty {at.p99('pty'):.1f} ms)" if at.of("pty") else ")"))
    print(f"{p99 / pct(ms(at.rtts), 99):.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
