"""Benchmark (issue 8): observations per second through MQTT -> engine -> recorder in one bedside process, beside
what the raw `mosquitto_sub` takes.

    make bench            (or: .venv/bin/python bench/ingest.py [--bays 100] [--rates 250 500 1000 2000 4000]
                                                                [--seconds 10])

What is measured
----------------
A real `bedside run` process (bench/cluster.py `Clinic`) with a private Mosquitto and `--bays` bays of one MQTT
monitor each, and no websocket client; one separate process (bench/publisher.py, QoS 1) publishes `bedside/v1`
numerics (six vitals a message) for every monitor, paced and staggered, at each total rate of `--rates` (messages
per second over all monitors) in turn. Every message bedside takes goes the whole way: schema validation and
decoding, the hub, the alarm engine (observe, and a tick at least every 20 ms), the live fan-out (no subscriber here)
and the recorder's batch into SQLite. At each rate, after 3 s, for `--seconds`: the recorder's count of items written
(`/api/health` `recorder.written`; every observation is one) per second, and bedside's CPU (all threads, and its event
loop thread alone). The ramp stops after the first rate bedside takes less than 90 % of; the ceiling is the most it
took. (A flood is not used for bedside: on two cores the flooding publisher and the broker would take the CPU that
bedside needs, and measure the machine rather than bedside. What bedside cannot take waits in, and then is dropped
by, the broker: Mosquitto keeps at most 1,000 messages per subscriber.)

Baseline, in the same run: `mosquitto_sub -q 1` on the same topics (one wildcard subscription) of a fresh private
broker, with the publisher flooding as fast as it can, for `--seconds`: messages per second received (timestamped
by mosquitto_sub, `-F %U`). mosquitto_sub is C and does nothing with a message, so this is what the broker delivers
to one subscriber on this machine (or the publisher's send rate if that is lower; both are printed).

The LAST line is bedside's ceiling (messages per second) / mosquitto_sub's, as `<n>x`.
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

from bench.cluster import SITE, VITALS, Clinic, ProcStat, Publisher, Window, machine, mosquitto_version, temporary_root
from monitor.mosquitto import PrivateMosquitto

WARMUP = 5.0  # s of flood before the baseline is timed
SETTLE = 3.0  # s at each rate before it is timed
RATES = (250, 500, 1000, 2000, 4000)  # messages per second over all monitors


@dataclass
class Flow:
    offered: float  # messages per second the publisher was asked to send (flood: what it sent)
    messages: float  # ... the consumer took
    cpu: float  # cores, of the consumer
    loop: float  # ... of which its event loop thread
    others: float  # cores used meanwhile by processes that are not the benchmark's

    @property
    def observations(self) -> float:
        return self.messages * len(VITALS)


async def through_bedside(bays: int, rates: list[int], seconds: float) -> list[Flow]:
    flows: list[Flow] = []
    with temporary_root("bedside-bench-ingest-") as root:
        async with Clinic(root, bays, publish=False) as clinic, \
                httpx.AsyncClient(base_url=clinic.base, timeout=30) as http:
            for rate in rates:
                pub = Publisher(clinic.broker, bays, rate=rate / bays, log=root / "publisher.log")
                try:
                    await asyncio.sleep(SETTLE + max(0.0, pub.epoch - time.time()))
                    w0, s0, t0, window = await written(http), clinic.stat(), clinic.threads(), Window()
                    await asyncio.sleep(seconds)
                    w1, s1, t1 = await written(http), clinic.stat(), clinic.threads()
                    elapsed = window.close().elapsed
                finally:
                    await asyncio.to_thread(pub.stop)
                taken = (w1 - w0) / elapsed / len(VITALS)
                flows.append(Flow(rate, taken, (s1.cpu - s0.cpu) / elapsed,
                                  clinic.loop_share(t0, t1, elapsed)[0], window.others()))
                print(f"  offered {rate:,} messages/s: bedside took {taken:,.0f}/s, CPU {flows[-1].cpu:.2f} cores "
                      f"(event loop {flows[-1].loop:.2f}; other processes {flows[-1].others:.2f})", flush=True)
                if taken < 0.9 * rate:
                    break
                await asyncio.sleep(2.0)  # the backlog, if any, drains
    return flows


async def written(http: httpx.AsyncClient) -> int:
    """Items the recorder has written (every observation is one)."""
    n: int = (await http.get("/api/health")).json()["recorder"]["written"]
    return n


def through_mosquitto_sub(bays: int, seconds: float) -> Flow | None:
    exe = shutil.which("mosquitto_sub")
    if exe is None:
        print("mosquitto_sub is not installed (apt-get install mosquitto-clients): no baseline")
        return None
    with temporary_root("bedside-bench-ingest-raw-") as root, PrivateMosquitto() as broker:
        out = root / "sub.txt"
        with open(out, "wb") as sink:
            sub = subprocess.Popen([exe, "-h", broker.host, "-p", str(broker.port), "-q", "1", "-F", "%U",
                                    "-t", f"bedside/v1/{SITE}/dev/+/numerics"], stdout=sink)
            time.sleep(0.5)
            pub = Publisher(broker, bays, flood=True, log=root / "publisher.log")
            time.sleep(WARMUP)
            window, since, before = Window(), time.time(), ProcStat.of(sub.pid).cpu
            time.sleep(seconds)
            until, cpu = time.time(), ProcStat.of(sub.pid).cpu - before
            window.close()
            time.sleep(0.5)
            sent = pub.stop()
            sub.terminate()
            sub.wait(timeout=10)
        stamps = [float(x) for x in out.read_text().split()]
    rate = sum(1 for t in stamps if since <= t < until) / (until - since)
    return Flow(sent.get("rate", float("nan")), rate, cpu / (until - since), float("nan"), window.others())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--bays", type=int, default=100, help="monitors the messages are spread over")
    parser.add_argument("--rates", type=int, nargs="+", default=list(RATES), help="messages/s over all monitors")
    parser.add_argument("--seconds", type=float, default=10.0, help="measuring time per rate")
    args = parser.parse_args(argv)

    print(f"ingest: bedside/v1 numerics (QoS 1, {len(VITALS)} vitals a message, over {args.bays} monitors) through "
          "bedside (MQTT -> engine -> recorder) at rising rates; baseline: mosquitto_sub under a flood")
    print(f"{machine()}; {mosquitto_version()}")
    flows = asyncio.run(through_bedside(args.bays, args.rates, args.seconds))
    raw = through_mosquitto_sub(args.bays, args.seconds)
    best = max(flows, key=lambda f: f.messages)
    print()
    print(f"{'consumer':<48} {'offered/s':>10} {'messages/s':>11} {'observations/s':>15} {'CPU':>6} {'loop':>6} "
          f"{'others':>7}")
    for f in flows:
        print(f"{'bedside (MQTT -> engine -> recorder, SQLite)':<48} {f.offered:>10,.0f} {f.messages:>11,.0f} "
              f"{f.observations:>15,.0f} {f.cpu:>6.2f} {f.loop:>6.2f} {f.others:>7.2f}")
    if raw is not None:
        print(f"{'baseline: mosquitto_sub -q 1 (publisher flooding)':<48} {raw.offered:>10,.0f} {raw.messages:>11,.0f} "
              f"{raw.observations:>15,.0f} {raw.cpu:>6.2f} {'':>6} {raw.others:>7.2f}")
    print("(CPU in cores; loop = bedside's event loop thread; others = cores used meanwhile by processes that are not "
          "the benchmark's; mosquitto_sub's observations = its messages x 6)")
    print(f"bedside's ceiling: {best.messages:,.0f} messages/s = {best.observations:,.0f} observations/s "
          f"(at 1 Hz, {best.messages:,.0f} monitors' numerics, with no websocket client and no margin)")
    print(f"{best.messages / raw.messages:.3f}x" if raw is not None else "n/a")
    return 0


if __name__ == "__main__":
    sys.exit(main())
