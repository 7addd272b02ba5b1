"""Benchmark (issue 8): observations per second through MQTT -> engine -> recorder in one bedside process, beside
what the raw `mosquitto_sub` takes from the same flood.

    make bench            (or: .venv/bin/python bench/ingest.py [--bays 100] [--seconds 20])

What is measured
----------------
A real `bedside run` process (bench/cluster.py `Clinic`) with a private Mosquitto and `--bays` bays of one MQTT
monitor each; one separate process (the benchmark's publisher, paho-mqtt, QoS 1) publishes `bedside/v1` numerics
(six vitals a message) round robin over every monitor as fast as it can. Every message bedside takes goes the whole
way: schema validation and decoding, the hub, the alarm engine (observe, and a tick at least every 20 ms), the live
fan-out and the recorder's batch into SQLite. After 5 s of flood, for `--seconds`: the recorder's count of items
written (`/api/health` `recorder.written`, which counts every observation) per second, and bedside's CPU (cores).
What bedside cannot take waits in, and then is dropped by, the broker (Mosquitto keeps at most 1,000 messages per
subscriber), so the flood measures the ceiling, not a sustainable rate with a margin.

Baseline, in the same run: `mosquitto_sub -q 1` on the same topics (one wildcard subscription) of a fresh private
broker, fed by the same publisher flood, for the same time: messages per second received (timestamped by
mosquitto_sub, `-F %U`). mosquitto_sub is C and does nothing with a message, so this is the broker's delivery ceiling
on this machine, or the publisher's send rate if that is lower (both are printed).

The LAST line is bedside's messages per second / mosquitto_sub's, as `<n>x`.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

from bench.cluster import SITE, VITALS, Clinic, Publisher, Window, machine, mosquitto_version, temporary_root
from monitor.mosquitto import PrivateMosquitto

WARMUP = 5.0


@dataclass
class Flow:
    messages: float  # per second
    observations: float  # per second
    cpu: float  # cores, of the consumer
    sent: float  # the publisher's messages per second
    others: float  # cores used meanwhile by processes that are not the benchmark's


async def through_bedside(bays: int, seconds: float) -> Flow:
    with temporary_root("bedside-bench-ingest-") as root:
        async with Clinic(root, bays, publish=False) as clinic:
            pub = Publisher(clinic.broker, bays, flood=True, log=root / "publisher.log")
            try:
                async with httpx.AsyncClient(base_url=clinic.base, timeout=30) as http:
                    await asyncio.sleep(WARMUP)
                    w0, s0, window = await written(http), clinic.stat(), Window()
                    await asyncio.sleep(seconds)
                    w1, s1 = await written(http), clinic.stat()
                    elapsed = window.close().elapsed
            finally:
                sent = await asyncio.to_thread(pub.stop)
    rate = (w1 - w0) / elapsed
    return Flow(rate / len(VITALS), rate, (s1.cpu - s0.cpu) / elapsed, sent.get("rate", float("nan")),
                window.others())


async def written(http: httpx.AsyncClient) -> int:
    """Items the recorder has written (every observation is one)."""
    n: int = (await http.get("/api/health")).json()["recorder"]["written"]
    return n


def through_mosquitto_sub(bays: int, seconds: float) -> Flow:
    exe = shutil.which("mosquitto_sub")
    if exe is None:
        print("mosquitto_sub is not installed (apt-get install mosquitto-clients): no baseline")
        return Flow(*[float("nan")] * 5)
    with temporary_root("bedside-bench-ingest-raw-") as root, PrivateMosquitto() as broker:
        out = root / "sub.txt"
        with open(out, "wb") as sink:
            sub = subprocess.Popen([exe, "-h", broker.host, "-p", str(broker.port), "-q", "1", "-F", "%U",
                                    "-t", f"bedside/v1/{SITE}/dev/+/numerics"], stdout=sink)
            time.sleep(0.5)
            pub = Publisher(broker, bays, flood=True, log=root / "publisher.log")
            time.sleep(WARMUP)
            window, since = Window(), time.time()
            time.sleep(seconds)
            until = time.time()
            window.close()
            time.sleep(0.5)
            sent = pub.stop()
            sub.terminate()
            sub.wait(timeout=10)
        stamps = [float(x) for x in out.read_text().split()]
    rate = sum(1 for t in stamps if since <= t < until) / (until - since)
    return Flow(rate, rate * len(VITALS), float("nan"), sent.get("rate", float("nan")), window.others())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--bays", type=int, default=100, help="monitors the flood is spread over")
    parser.add_argument("--seconds", type=float, default=20.0, help="measuring time (after 5 s of flood)")
    args = parser.parse_args(argv)

    print(f"ingest: a flood of bedside/v1 numerics (QoS 1, {len(VITALS)} vitals a message, round robin over "
          f"{args.bays} monitors) through bedside (MQTT -> engine -> recorder) vs mosquitto_sub")
    print(f"{machine()}; {mosquitto_version()}")
    bedside = asyncio.run(through_bedside(args.bays, args.seconds))
    raw = through_mosquitto_sub(args.bays, args.seconds)
    print()
    print(f"{'consumer':<46} {'messages/s':>11} {'observations/s':>15} {'CPU cores':>10} {'publisher sent/s':>17} "
          f"{'others':>7}")
    print(f"{'bedside (MQTT -> engine -> recorder, SQLite)':<46} {bedside.messages:>11,.0f} "
          f"{bedside.observations:>15,.0f} {bedside.cpu:>10.2f} {bedside.sent:>17,.0f} {bedside.others:>7.2f}")
    print(f"{'baseline: mosquitto_sub -q 1':<46} {raw.messages:>11,.0f} {raw.observations:>15,.0f} "
          f"{'':>10} {raw.sent:>17,.0f} {raw.others:>7.2f}")
    print("(observations/s of mosquitto_sub: its messages x 6; others: cores used meanwhile by processes that are not "
          "the benchmark's)")
    print(f"at 1 Hz this is {bedside.messages:,.0f} bays' numerics per second of one process's ingest "
          f"(a ceiling: the live fan-out, the alarm outputs and a margin come on top)")
    print(f"{bedside.messages / raw.messages:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
