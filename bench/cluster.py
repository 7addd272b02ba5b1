"""What the load benchmarks (bench/latency.py, capacity.py, ingest.py, dashboard_load.py) share: a real clinic of N
bays run as processes, and the instruments that watch it.

- `Clinic` (async context manager): a private Mosquitto (monitor/mosquitto.py), a config with N bays of one MQTT
  monitor each (`bay0001` / `dev0001`, ...) plus optional bays with a Masimo oximeter on a pty this process owns
  (`pty01` / `ox01`, ...), every bay on the benchmark's undelayed alarm profile (`bench-undelayed`: delay 0,
  SatSeconds off, no latching, no escalation), a real `bedside run` subprocess on it, a viewer token, and the
  publisher.
- The publisher: ONE separate process (bench/publisher.py, paho-mqtt in a thread) that publishes `bedside/v1`
  numerics (`{"ts", "seq", "values"}`, QoS 1) for every MQTT bay: paced at `rate` Hz and staggered (bay i of N at
  epoch + k/rate + i/(N*rate): evenly spread over each period), or, with `--flood`, as fast as it can. `ts` is the
  wall-clock time of the publish call, so a receiver's clock minus `ts` is the latency from the device. At the end
  it prints one JSON line: messages sent, how late the paced publishes were, the send rate.
- `Observer` (async context manager): the measuring client, in this process: one MQTT connection (it injects an
  out-of-range SpO2 for a bay, makes raw publish -> subscribe round trips through the broker, and receives the
  alarm topic `bedside/v1/<site>/bay/+/alarm_events`) and one `/ws/live` websocket, and it times the alarm's
  arrival on each. It can also keep the arrival time of every `obs` message of the websocket.
- `PtyMasimo`: the Masimo oximeters of the pty bays: a normal "ASCII 1" line (simulators/masimo.format_line) every
  second at its own phase, written to a pty (simulators/serial_out.open_pty) that bedside's Masimo driver opens
  as its port; `inject()` writes a line with SpO2 75 at a known time.
- Process figures from /proc (CPU seconds of all threads, RSS), percentiles, and the machine's description.

Why the probes do not collide with the paced numerics: an injection for bay i is made half a period after the
bay's own numerics, and half-way between two bays' slots (epoch + k + i/N + 0.5 + 0.5/N at 1 Hz), so the bay's
next ordinary message, which ends the alarm (SpO2 back to normal), comes half a second later, far beyond any
latency measured here; and the probe does not land on another bay's message (which, with few bays, would make it wait
out bedside's minimum gap between two engine ticks, 20 ms, more often than a reading arriving at a random moment).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import platform
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

if __package__ in (None, ""):  # run as a script (the publisher process): make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiomqtt
import httpx
import numpy as np
import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from bench.publisher import SITE as SITE
from bench.publisher import device_id, normal_values, numerics_topic
from monitor.mosquitto import PrivateMosquitto, free_port, mosquitto_path
from monitor.mqtt_socket import NODELAY
from simulators.masimo import format_line
from simulators.serial_out import open_pty, pty_writer
from tests.processes import create_token, wait_until_serving

ROOT = Path(__file__).resolve().parents[1]
PROFILE = "bench-undelayed"
VITALS: tuple[str, ...] = ("hr", "pr", "spo2", "rr", "etco2", "temp")  # what simulators/mqtt_monitor sends each s
LOW_SPO2 = 75.0  # the injected value: below the low limit (90) and the desat floor (80)
RTT_TOPIC = f"bench-rtt/{SITE}"
PROBE_TIMEOUT = 5.0  # s: an alarm that has not arrived by then is counted as missed
PROFILE_TOML = f"""# Benchmarks only (bench/cluster.py): every limit undelayed, SpO2 SatSeconds off, so that a
# benchmark times the alarm path itself and not a configured delay. Never a clinical profile.
name = "{PROFILE}"
description = "Benchmark profile: no alarm condition delay, SatSeconds off"

[vitals.spo2]
low = 90
priority = "high"
satseconds = 0
delay = 0
desat_floor = 10
clear_hysteresis = 1

[vitals.pr]
low = 40
high = 140
priority = "medium"
delay = 0
clear_hysteresis = 3

[vitals.hr]
low = 40
high = 140
priority = "medium"
delay = 0
clear_hysteresis = 3

[vitals.rr]
low = 6
high = 35
priority = "medium"
delay = 0

[vitals.etco2]
low = 15
high = 55
priority = "medium"
delay = 0
"""


def bay_id(i: int) -> str:
    """The i-th MQTT bay (0-based): bay0001, ...; its monitor is device_id(i)."""
    return f"bay{i + 1:04d}"


# --- the clinic ------------------------------------------------------------------------------------------------


def write_config(root: Path, broker: PrivateMosquitto, http_port: int, bays: int,
                 pty_ports: Sequence[str] = ()) -> Path:
    """A bedside config in `root`: `bays` MQTT bays (one monitor each) and one Masimo bay per pty path, all on the
    benchmark profile (written to root/profiles); no latching, no escalation (a probe's alarm ends when the next
    ordinary reading comes in). Returns the config's path."""
    profiles = root / "profiles"
    profiles.mkdir(exist_ok=True)
    (profiles / f"{PROFILE}.toml").write_text(PROFILE_TOML)
    lines = [f'site = "{SITE}"', 'data_dir = "data"', "[http]", f"port = {http_port}", "[mqtt]",
             f'url = "{broker.url}"', "[alarms]", f'profile = "{PROFILE}"', 'profiles_dir = "profiles"',
             "latching = []", "escalate_after = {}",
             f'phase_profiles = {{ baseline = "{PROFILE}", infusion = "{PROFILE}", recovery = "{PROFILE}" }}']
    for i in range(bays):
        lines += ["[[bays]]", f'id = "{bay_id(i)}"', "[[bays.devices]]", f'id = "{device_id(i)}"', 'driver = "mqtt"']
    for j, port in enumerate(pty_ports):
        lines += ["[[bays]]", f'id = "pty{j + 1:02d}"', "[[bays.devices]]", f'id = "ox{j + 1:02d}"',
                  'driver = "masimo"', f'port = "{port}"']
    cfg = root / "bedside.toml"
    cfg.write_text("\n".join(lines) + "\n")
    return cfg


@dataclass
class ProcStat:
    """CPU seconds (user + system, all threads) and resident memory of a process, from /proc."""

    cpu: float
    rss: int  # bytes

    @staticmethod
    def of(pid: int) -> ProcStat:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        cpu = (int(fields[11]) + int(fields[12])) / ticks
        rss = int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        return ProcStat(cpu, rss)


def thread_cpu(pid: int) -> dict[int, tuple[str, float]]:
    """Per thread of a process: tid -> (name, CPU seconds). The main thread (bedside's event loop) has tid == pid."""
    out: dict[int, tuple[str, float]] = {}
    ticks = os.sysconf("SC_CLK_TCK")
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                head, _, rest = (task / "stat").read_text().rpartition(")")
                fields = rest.split()
                out[int(task.name)] = (head.split("(", 1)[1], (int(fields[11]) + int(fields[12])) / ticks)
    return out


def busy_cpu() -> float:
    """CPU seconds the whole machine has been busy (every core; not idle, not iowait) since boot, from /proc/stat:
    the difference over a window, minus what the benchmark's own processes used, is what others took."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    busy = sum(fields[:8]) - fields[3] - fields[4]  # user nice system idle iowait irq softirq steal
    return busy / os.sysconf("SC_CLK_TCK")


def tree_cpu(pid: int | None = None) -> float:
    """CPU seconds of a process and all its descendants now (default: this benchmark and everything it started)."""
    pid = os.getpid() if pid is None else pid
    total = 0.0
    with contextlib.suppress(OSError):
        total = ProcStat.of(pid).cpu
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                for child in (task / "children").read_text().split():
                    total += tree_cpu(int(child))
    return total


@dataclass
class Window:
    """What the machine did over a measuring window: `others()` = cores used by processes that are not this
    benchmark's (the machine may be shared), `ours()` = cores used by this benchmark and its processes."""

    began: float = field(default_factory=time.monotonic)
    busy0: float = field(default_factory=busy_cpu)
    tree0: float = field(default_factory=tree_cpu)
    elapsed: float = 0.0
    busy: float = 0.0
    tree: float = 0.0

    def close(self) -> Window:
        self.elapsed = time.monotonic() - self.began
        self.busy, self.tree = busy_cpu() - self.busy0, tree_cpu() - self.tree0
        return self

    def ours(self) -> float:
        return self.tree / self.elapsed if self.elapsed else float("nan")

    def others(self) -> float:
        return max(0.0, self.busy - self.tree) / self.elapsed if self.elapsed else float("nan")


class Publisher:
    """The one publisher process for every MQTT bay (see the module docstring)."""

    def __init__(self, broker: PrivateMosquitto, bays: int, *, rate: float = 1.0, epoch: float | None = None,
                 flood: bool = False, log: Path | None = None) -> None:
        self.epoch = epoch if epoch is not None else math.ceil(time.time()) + 2.0
        self.rate = rate
        self.bays = bays
        args = [sys.executable, str(Path(__file__).resolve().parent / "publisher.py"), "--host", broker.host,
                "--port", str(broker.port), "--bays", str(bays), "--rate", str(rate), "--epoch", repr(self.epoch)]
        if flood:
            args.append("--flood")
        err = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 (closed in stop)
        self._err = err
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err, cwd=ROOT)

    def slot(self, i: int, k: int) -> float:
        """When bay i's k-th paced message is due."""
        return self.epoch + (k + i / self.bays) / self.rate

    def stop(self) -> dict[str, Any]:
        """Stop it; its figures (sent, late_p99_ms, late_max_ms, rate)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=30)
        if self._err is not subprocess.DEVNULL:
            self._err.close()  # type: ignore[union-attr]
        lines = out.decode().strip().splitlines()
        result: dict[str, Any] = json.loads(lines[-1]) if lines else {}
        return result


class Bedside:
    """`bedside run` as a subprocess (as tests/processes.py runs it), its stderr kept in a log file; optionally
    under bench/sampler.py (its event loop thread sampled every 2 ms), the profile written to `profile` when it
    stops."""

    def __init__(self, config: Path, port: int, *, profile: Path | None = None) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.log = config.parent / "bedside.log"
        self._log = open(self.log, "wb")  # noqa: SIM115 (closed in stop)
        prefix = [sys.executable, str(ROOT / "bench" / "sampler.py"), str(profile)] if profile else [sys.executable]
        self.proc = subprocess.Popen([*prefix, "-m", "monitor.cli", "run", "--config", str(config)],
                                     stdout=subprocess.DEVNULL, stderr=self._log, cwd=ROOT)
        self.sampled = profile is not None

    def sample(self, on: bool) -> None:
        """Under the sampler: count from now (dropping what was counted) or stop counting."""
        if self.sampled:
            self.proc.send_signal(signal.SIGUSR1 if on else signal.SIGUSR2)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_serving(self, within: float) -> None:
        try:
            wait_until_serving(self.base, self.proc, within)
        except AssertionError:
            self.stop()
            raise RuntimeError(f"bedside did not start; its log:\n{self.tail()}") from None

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stat(self) -> ProcStat:
        return ProcStat.of(self.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()


class PtyMasimo:
    """A Masimo oximeter on a pty of ours: a normal line every second at phase `phase` (s), and `inject()`."""

    def __init__(self, index: int, phase: float) -> None:
        self.bay = f"pty{index + 1:02d}"
        self.phase = phase
        self._master, self.path = open_pty()
        self._write = pty_writer(self._master)
        self._rng = random.Random(index)
        self.epoch = 0.0

    def line(self, spo2: float) -> bytes:
        v = normal_values(self._rng)
        return format_line({"spo2": spo2, "pr": v["pr"], "pi": 3.1}, datetime.now())

    def inject(self) -> None:
        self._write(self.line(LOW_SPO2))

    async def run(self, epoch: float) -> None:
        """Normal lines at epoch + phase + k until cancelled."""
        self.epoch = epoch
        k = max(0, math.ceil(time.time() - epoch - self.phase))
        while True:
            await asyncio.sleep(max(0.0, epoch + self.phase + k - time.time()))
            self._write(self.line(float(self._rng.randint(96, 99))))
            k += 1

    def close(self) -> None:
        os.close(self._master)


class Clinic:
    """Broker, config, bedside and (optionally) the paced publisher: `async with Clinic(tmp, 100) as c:`."""

    def __init__(self, root: Path, bays: int, *, pty_bays: int = 0, rate: float = 1.0, publish: bool = True,
                 profile: Path | None = None) -> None:
        self.root = root
        self.bays = bays
        self.rate = rate
        self.publish = publish
        self.profile = profile
        self.broker = PrivateMosquitto()
        self.ptys = [PtyMasimo(j, (j + 0.5) / max(1, pty_bays)) for j in range(pty_bays)]
        self.port = free_port()
        self.bedside: Bedside | None = None
        self.publisher: Publisher | None = None
        self.token = ""
        self.started = 0.0  # seconds bedside took to serve
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def all_bays(self) -> list[str]:
        return [bay_id(i) for i in range(self.bays)] + [p.bay for p in self.ptys]

    async def __aenter__(self) -> Clinic:
        try:
            await asyncio.to_thread(self.broker.start)
            cfg = write_config(self.root, self.broker, self.port, self.bays, [p.path for p in self.ptys])
            began = time.monotonic()
            self.bedside = Bedside(cfg, self.port, profile=self.profile)
            await asyncio.to_thread(self.bedside.wait_serving, 60 + self.bays / 20)
            self.started = time.monotonic() - began
            self.token = await asyncio.to_thread(create_token, self.data_dir, "viewer", "bench")
            epoch = math.ceil(time.time()) + 2.0
            if self.publish and self.bays:
                self.publisher = Publisher(self.broker, self.bays, rate=self.rate, epoch=epoch,
                                           log=self.root / "publisher.log")
            self._tasks = [asyncio.create_task(p.run(epoch)) for p in self.ptys]
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, t: type[BaseException] | None, v: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    def stop_publisher(self) -> dict[str, Any]:
        if self.publisher is None:
            return {}
        result, self.publisher = self.publisher.stop(), None
        return result

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        with contextlib.suppress(Exception):
            await asyncio.to_thread(self.stop_publisher)
        if self.bedside is not None:
            await asyncio.to_thread(self.bedside.stop)
        for p in self.ptys:
            with contextlib.suppress(OSError):
                p.close()
        self.ptys = []
        await asyncio.to_thread(self.broker.close)

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def until_live(self, within: float) -> tuple[float, int]:
        """Wait (at most `within` s) until every bay shows an SpO2 received in the last 3 s; returns how long that
        took and how many bays were live at the end (fewer than all: bedside does not keep up)."""
        began = time.monotonic()
        async with httpx.AsyncClient(base_url=self.base, headers=self.headers(), timeout=30) as http:
            while True:
                body = (await http.get("/api/bays")).json()
                now = body["server_time"]
                live = sum(1 for b in body["bays"] if now - b["vitals"].get("spo2", {}).get("time", 0) < 3)
                if live == len(body["bays"]) or time.monotonic() - began > within:
                    return time.monotonic() - began, live
                await asyncio.sleep(1.0)

    def stat(self) -> ProcStat:
        assert self.bedside is not None
        return self.bedside.stat()

    def threads(self) -> dict[int, tuple[str, float]]:
        assert self.bedside is not None
        return thread_cpu(self.bedside.pid)

    def loop_share(self, before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]],
                   seconds: float) -> tuple[float, float]:
        """Cores used between two `threads()` readings by bedside's event loop thread and by all its other threads."""
        assert self.bedside is not None
        main = self.bedside.pid
        used = {tid: cpu - before.get(tid, ("", 0.0))[1] for tid, (_, cpu) in after.items()}
        loop = used.pop(main, 0.0)
        return loop / seconds, sum(used.values()) / seconds

    def recorded(self, since: float, until: float) -> dict[tuple[str, str, float], float]:
        """(bay, vital, receive_time) -> device_time of every observation recorded with a receive time in
        [since, until] (read-only, while bedside runs)."""
        conn = sqlite3.connect(f"file:{self.data_dir / 'bedside.db'}?mode=ro", uri=True)
        try:
            rows = conn.execute("SELECT bay, vital, receive_time, device_time FROM observations "
                                "WHERE receive_time BETWEEN ? AND ?", (since, until)).fetchall()
        finally:
            conn.close()
        return {(b, v, r): d for b, v, r, d in rows}


# --- the measuring client ---------------------------------------------------------------------------------------


@dataclass
class Probe:
    """One injected out-of-range SpO2 and when its alarm start arrived (s after the injection; None: not yet)."""

    path: str  # "mqtt" | "pty"
    bay: str
    sent: float  # perf_counter at the injection
    sent_wall: float  # time.time() at the injection
    ws: float | None = None
    mqtt: float | None = None
    event_time: float | None = None  # the alarm event's own time (bedside's clock at the engine's tick)


@dataclass
class Observer:
    """The measuring client (see the module docstring). `async with Observer(clinic) as o:`."""

    clinic: Clinic
    keep_obs: bool = False
    probes: list[Probe] = field(default_factory=list)
    rtts: list[float] = field(default_factory=list)  # s, raw publish -> subscribe round trips
    obs: list[tuple[str, str, float, float]] = field(default_factory=list)  # bay, vital, receive_time, arrival
    ws_messages: int = 0
    ws_closed: str | None = None  # why the websocket ended, if it did (a client that falls behind is dropped)
    _pending: dict[str, Probe] = field(default_factory=dict)
    _rtt_pending: dict[int, float] = field(default_factory=dict)
    _rtt_seq: int = 0
    _mqtt: aiomqtt.Client | None = None
    _ws: ClientConnection | None = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _stack: contextlib.AsyncExitStack = field(default_factory=contextlib.AsyncExitStack)

    async def __aenter__(self) -> Observer:
        c = self.clinic
        try:
            self._mqtt = await self._stack.enter_async_context(
                aiomqtt.Client(c.broker.host, c.broker.port, identifier=f"bench-observer-{os.getpid()}",
                               socket_options=NODELAY))
            await self._mqtt.subscribe(f"bedside/v1/{SITE}/bay/+/alarm_events", qos=1)
            await self._mqtt.subscribe(f"{RTT_TOPIC}/#", qos=1)
            self._ws = await self._stack.enter_async_context(
                connect(f"ws://127.0.0.1:{c.port}/ws/live", additional_headers=c.headers(), max_size=None,
                        max_queue=None))
            first = orjson.loads(await self._ws.recv())
            assert first["type"] == "snapshot", first["type"]
            self._tasks = [asyncio.create_task(self._read_mqtt()), asyncio.create_task(self._read_ws())]
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(self, t: type[BaseException] | None, v: BaseException | None,
                        tb: TracebackType | None) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._stack.aclose()

    async def _read_mqtt(self) -> None:
        assert self._mqtt is not None
        async for msg in self._mqtt.messages:
            arrived = time.perf_counter()
            payload = msg.payload if isinstance(msg.payload, bytes) else str(msg.payload).encode()
            topic = msg.topic.value
            if topic.startswith(RTT_TOPIC):
                sent = self._rtt_pending.pop(int(payload), None)
                if sent is not None:
                    self.rtts.append(arrived - sent)
                continue
            body = orjson.loads(payload)
            if body["id"] == "spo2_low" and body["phase"] == "start":
                probe = self._pending.get(body["bay"])
                if probe is not None and probe.mqtt is None:
                    probe.mqtt = arrived - probe.sent
                    probe.event_time = body["time"]
                    self._settle(probe)

    async def _read_ws(self) -> None:
        assert self._ws is not None
        try:
            async for raw in self._ws:
                arrived = time.perf_counter()
                self.ws_messages += 1
                text = raw if isinstance(raw, str) else raw.decode()
                if text.startswith('{"type":"obs"'):
                    if self.keep_obs:
                        m = orjson.loads(text)
                        self.obs.append((m["bay"], m["vital"], m["time"], time.time()))
                elif text.startswith('{"type":"alarm"'):
                    m = orjson.loads(text)
                    if m["id"] == "spo2_low" and m["phase"] == "start":
                        probe = self._pending.get(m["bay"])
                        if probe is not None and probe.ws is None:
                            probe.ws = arrived - probe.sent
                            probe.event_time = m["time"]
                            self._settle(probe)
            self.ws_closed = f"closed by the server: {self._ws.close_code} {self._ws.close_reason}"
        except ConnectionClosed as exc:
            self.ws_closed = f"closed: {exc}"

    def _settle(self, probe: Probe) -> None:
        if probe.ws is not None and probe.mqtt is not None and self._pending.get(probe.bay) is probe:
            del self._pending[probe.bay]

    async def inject_mqtt(self, i: int) -> Probe:
        """Publish SpO2 75 for MQTT bay i (as its monitor, on its numerics topic)."""
        assert self._mqtt is not None
        body = orjson.dumps({"ts": time.time(), "seq": 1_000_000_000 + len(self.probes),
                             "values": {"spo2": LOW_SPO2}})
        probe = self._start("mqtt", bay_id(i))
        await self._mqtt.publish(numerics_topic(device_id(i)), body, qos=1)
        return probe

    def inject_pty(self, pty: PtyMasimo) -> Probe:
        probe = self._start("pty", pty.bay)
        pty.inject()
        return probe

    def _start(self, path: str, bay: str) -> Probe:
        probe = Probe(path, bay, time.perf_counter(), time.time())
        self._pending[bay] = probe
        self.probes.append(probe)
        return probe

    async def round_trip(self) -> None:
        """One raw publish -> subscribe round trip through the broker (QoS 1, this same connection)."""
        assert self._mqtt is not None
        self._rtt_seq += 1
        self._rtt_pending[self._rtt_seq] = time.perf_counter()
        await self._mqtt.publish(f"{RTT_TOPIC}/{self._rtt_seq % 1000}", str(self._rtt_seq).encode(), qos=1)

    async def probe(self, seconds: float, gap: float, *, pty_gap: float = 0.5) -> None:
        """For `seconds`: every `gap` s inject an MQTT bay's SpO2 75 (half a period after its own numerics; a bay
        at most once in 2.5 s), a raw round trip half-way between, and every `pty_gap` s a pty bay's."""
        c = self.clinic
        if c.publisher is None and c.bays:
            raise RuntimeError("the MQTT probes need the paced publisher")
        end = time.time() + seconds
        tasks = [asyncio.create_task(self._rtt_loop(end, gap))]
        if c.ptys:
            tasks.append(asyncio.create_task(self._pty_loop(end, pty_gap)))
        if c.publisher is not None:
            tasks.append(asyncio.create_task(self._mqtt_loop(end, gap, c.publisher)))
        await asyncio.gather(*tasks)
        deadline = time.perf_counter() + PROBE_TIMEOUT
        while self._pending and time.perf_counter() < deadline:  # noqa: ASYNC110 (two readers settle probes)
            await asyncio.sleep(0.05)

    async def _mqtt_loop(self, end: float, gap: float, pub: Publisher) -> None:
        n, period = pub.bays, 1.0 / pub.rate
        offset = period / 2 + period / n / 2  # half a period after the bay's numerics, between two bays' slots
        last: dict[int, float] = {}
        while True:
            want = time.time() + gap
            j = math.ceil((want - pub.epoch - offset) / period * n)  # the next slot (+ the offset)
            while time.time() - last.get(j % n, -1e9) < 2.5 or j % n in {
                    int(p.bay[3:]) - 1 for p in self._pending.values() if p.path == "mqtt"}:
                j += 1
            moment = pub.epoch + offset + j * period / n
            if moment > end:
                return
            await asyncio.sleep(max(0.0, moment - time.time()))
            last[j % n] = time.time()
            await self.inject_mqtt(j % n)

    async def _pty_loop(self, end: float, gap: float) -> None:
        ptys = self.clinic.ptys
        k = 0
        while True:
            p = ptys[k % len(ptys)]
            k += 1
            now = time.time()
            moment = p.epoch + p.phase + 0.5 + math.ceil(now + gap - p.epoch - p.phase - 0.5)
            if moment > end:
                return
            await asyncio.sleep(max(0.0, moment - time.time()))
            self.inject_pty(p)

    async def _rtt_loop(self, end: float, gap: float) -> None:
        await asyncio.sleep(gap / 2)
        while time.time() < end:
            began = time.time()
            await self.round_trip()
            await asyncio.sleep(max(0.0, gap - (time.time() - began)))


# --- figures -----------------------------------------------------------------------------------------------------


def pct(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100, linear interpolation); NaN when there are none."""
    return float(np.percentile(np.asarray(values, dtype=float), q)) if len(values) else float("nan")


def ms(values: Sequence[float]) -> list[float]:
    return [v * 1000.0 for v in values]


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def machine() -> str:
    """CPU model, cores, clock, memory, load average, Python: one line for the benchmark's header."""
    info: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            info.setdefault(key.strip(), value.strip())
    mem = "?"
    with contextlib.suppress(OSError, IndexError):
        mem = f"{int(Path('/proc/meminfo').read_text().split()[1]) / 2**20:.1f} GiB"
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    mhz = info.get("cpu MHz", "?")
    return (f"CPU {info.get('model name', platform.processor() or '?')} ({cores()} cores, {mhz} MHz), {mem}, "
            f"load average {load}; Python {platform.python_version()}, Linux {platform.release()}")


def mosquitto_version() -> str:
    exe = mosquitto_path()
    if exe is None:
        return "mosquitto: not installed"
    out = subprocess.run([exe, "-h"], capture_output=True, text=True, check=False).stdout
    return out.splitlines()[0] if out else "mosquitto"


@contextlib.contextmanager
def temporary_root(prefix: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        yield Path(tmp)
