"""A hospital deployment on one machine (issue 9, docs/deployment.md): a private Mosquitto, PostgreSQL shared by
every node, two gateways (simulated Masimo oximeters on ptys), two engines each owning one ward and standing by for
the other, and one dashboard, each a real `bedside run --node NAME` process of one config file. MQTT monitors (this
test) publish each bay's heart rate straight to the broker, so alarms can be raised when the test says.

Checked: every bay's observations and alarms reach the dashboard's API (live and from the shared store) and the
MQTT alarm topic; a nurse's acknowledgement on the dashboard is carried out by the holding engine; killing an
engine (SIGKILL) makes its standby take its ward over within 15 s, shown as a technical alarm, with an alarm raised
during the takeover still reaching the dashboard and the MQTT alarm topic and an alarm raised before it kept; a
gateway cut off from the broker for 20 s (a TCP relay cut) delivers what it buffered, at the times it was measured;
with both engines down the dashboard shows NO ALARM ENGINE on every bay.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiomqtt
import asyncpg
import httpx
import pytest
from jsonschema import Draft202012Validator

from drivers.mqtt_numerics import SCHEMA_FILE
from monitor.mosquitto import PrivateMosquitto, free_port
from tests.processes import create_token, wait_until_serving
from tests.storage import ENV, unreachable
from tests.tcp_proxy import TcpRelay

pytestmark = [pytest.mark.timeout(240)]

PG_SERVER = os.environ.get(ENV) or "postgresql://root@127.0.0.1:5432/test"
SITE = "hosp"
WARDS = {"ward-1": ["bay1", "bay2"], "ward-2": ["bay3", "bay4"]}
GATEWAY = {"ward-1": "gw-1", "ward-2": "gw-2"}
BAYS = [b for bays in WARDS.values() for b in bays]
SCHEMA = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
PROFILE = Path(__file__).parents[2] / "alerts" / "profiles" / "ketamine-infusion.toml"


def valid(body: dict[str, Any], definition: str) -> dict[str, Any]:
    errors = list(Draft202012Validator({**SCHEMA, "$ref": f"#/$defs/{definition}"}).iter_errors(body))
    assert not errors, [e.message for e in errors]
    return body


@contextmanager
def database() -> Iterator[str]:
    """A fresh PostgreSQL database for the deployment (skipped, saying why, when the server cannot be used)."""
    why = unreachable(PG_SERVER)
    if why is not None:
        pytest.skip(f"PostgreSQL at {PG_SERVER} cannot be used ({why}): the deployment test needs it")
    name = "bedside_deploy_" + secrets.token_hex(4)

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(PG_SERVER, timeout=5)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_SERVER.rsplit("/", 1)[0] + f"/{name}"
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def write_config(tmp: Path, broker: PrivateMosquitto, relay: TcpRelay, pg: str, ports: dict[str, int]) -> Path:
    profiles = tmp / "profiles"
    profiles.mkdir()
    # the clinic's profile, but a heart rate over 130 is a high-priority alarm at once (latching until acknowledged)
    text = PROFILE.read_text(encoding="utf-8").replace('name = "ketamine-infusion"', 'name = "deploy-test"')
    hr = text.index("[vitals.hr]")
    end = text.index("[vitals.nibp_sys]")
    text = text[:hr] + '[vitals.hr]\nlow = 45\nhigh = 130\npriority = "high"\n\n' + text[end:]
    rr = text.index("[vitals.rr]")
    end = text.index("[vitals.etco2]")
    text = text[:rr] + '[vitals.rr]\nlow = 8\nhigh = 30\npriority = "high"\n\n' + text[end:]
    (profiles / "deploy-test.toml").write_text(text, encoding="utf-8")
    nodes = [("gw-1", "gateway", ""), ("gw-2", "gateway", f'mqtt_url = "{relay.url}"'),
             ("engine-a", "engine", ""), ("engine-b", "engine", ""), ("dash", "dashboard", "")]
    lines = [f'site = "{SITE}"', 'data_dir = "data"', f'[mqtt]\nurl = "{broker.url}"', f'[storage]\nurl = "{pg}"',
             '[alarms]\nprofile = "deploy-test"\nprofiles_dir = "profiles"', "[notify]\nheartbeat_interval = 1"]
    for name, role, extra in nodes:
        lines.append(f'[[nodes]]\nname = "{name}"\nrole = "{role}"\n{extra}\nhttp = {{ port = {ports[name]} }}')
    lines.append('[[wards]]\nid = "ward-1"\nengine = "engine-a"\nstandby = "engine-b"')
    lines.append('[[wards]]\nid = "ward-2"\nengine = "engine-b"\nstandby = "engine-a"')
    for ward, bays in WARDS.items():
        for bay in bays:
            lines.append(f'[[bays]]\nid = "{bay}"\nward = "{ward}"\ngateway = "{GATEWAY[ward]}"\n'
                         f'[[bays.devices]]\nid = "ox-{bay}"\ndriver = "masimo"\nsimulate = true\n'
                         f'[[bays.devices]]\nid = "mon-{bay}"\ndriver = "mqtt"')
    config = tmp / "hospital.toml"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return config


class Nodes:
    """The deployment's processes: started with `bedside run --config F --node NAME`, killed at the end."""

    def __init__(self, config: Path, ports: dict[str, int]) -> None:
        self.config = config
        self.ports = ports
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str) -> None:
        log = (self.config.parent / f"{name}.log").open("ab")
        try:
            self.procs[name] = subprocess.Popen(
                [sys.executable, "-m", "monitor.cli", "run", "--config", str(self.config), "--node", name],
                stdout=subprocess.DEVNULL, stderr=log)
        finally:
            log.close()

    def base(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def wait(self, name: str) -> None:
        wait_until_serving(self.base(name), self.procs[name], within=30)

    def health(self, name: str) -> dict[str, Any]:
        body: dict[str, Any] = httpx.get(f"{self.base(name)}/api/health", timeout=2).json()
        return body

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
                         for p in sorted(self.config.parent.glob("*.log")))


class Monitors:
    """An MQTT monitor per bay publishing its heart rate (`hr[bay]`) and respiratory rate (`rr[bay]`) twice a
    second, straight to the broker."""

    def __init__(self, broker: PrivateMosquitto) -> None:
        self.broker = broker
        self.hr = dict.fromkeys(BAYS, 80.0)
        self.rr = dict.fromkeys(BAYS, 14.0)
        self.seq = 0

    async def run(self) -> None:
        async with aiomqtt.Client(self.broker.host, self.broker.port) as client:
            for bay in BAYS:
                await client.publish(f"bedside/v1/{SITE}/dev/mon-{bay}/state", b"online", qos=1, retain=True)
            while True:
                self.seq += 1
                for bay in BAYS:
                    body = {"ts": time.time(), "seq": self.seq, "values": {"hr": self.hr[bay], "rr": self.rr[bay]}}
                    await client.publish(f"bedside/v1/{SITE}/dev/mon-{bay}/numerics", json.dumps(body).encode(),
                                         qos=1)
                await asyncio.sleep(0.5)


class Listener:
    """The MQTT alarm topics as a consumer sees them: each bay's retained snapshot, the event stream, heartbeats."""

    def __init__(self, broker: PrivateMosquitto) -> None:
        self.broker = broker
        self.snapshots: dict[str, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self.heartbeats: dict[str, dict[str, Any]] = {}

    async def run(self) -> None:
        async with aiomqtt.Client(self.broker.host, self.broker.port) as client:
            await client.subscribe([(f"bedside/v1/{SITE}/bay/+/alarms", 1),
                                    (f"bedside/v1/{SITE}/bay/+/alarm_events", 1),
                                    (f"bedside/v1/{SITE}/service/+/heartbeat", 1)])
            async for msg in client.messages:
                body = json.loads(msg.payload if isinstance(msg.payload, bytes) else str(msg.payload))
                parts = str(msg.topic).split("/")
                if parts[-1] == "alarms":
                    self.snapshots[parts[4]] = valid(body, "alarm_snapshot")
                elif parts[-1] == "alarm_events":
                    self.events.append(valid(body, "alarm_event"))
                else:
                    self.heartbeats[parts[4]] = valid(body, "heartbeat")

    def alarm_ids(self, bay: str) -> set[str]:
        return {a["id"] for a in self.snapshots.get(bay, {}).get("alarms", [])}


@contextmanager
def background(*coros: Coroutine[Any, Any, None]) -> Iterator[None]:
    """Run `coros` on an event loop of their own, in a thread, while the test goes on (and polls with blocking
    HTTP); cancelled at the end."""
    loop = asyncio.new_event_loop()
    tasks: list[asyncio.Task[None]] = []

    def work() -> None:
        asyncio.set_event_loop(loop)
        tasks.extend(loop.create_task(c) for c in coros)
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    try:
        yield
    finally:
        for t in list(tasks):
            loop.call_soon_threadsafe(t.cancel)
        thread.join(10)
        loop.close()


def until(predicate: Callable[[], Any], within: float, what: str, nodes: Nodes | None = None) -> None:
    deadline = time.monotonic() + within
    while True:
        try:
            if predicate():
                return
        except (httpx.HTTPError, KeyError):
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what}"
                                 + (f"\n{nodes.logs()}" if nodes is not None else ""))
        time.sleep(0.2)


def test_gateways_two_engines_and_a_dashboard_share_the_work_and_survive_failures(
        tmp_path: Path, broker: PrivateMosquitto) -> None:
    ports = {name: free_port() for name in ("gw-1", "gw-2", "engine-a", "engine-b", "dash")}
    with database() as pg, TcpRelay(broker.host, broker.port) as relay:
        config = write_config(tmp_path, broker, relay, pg, ports)
        nodes = Nodes(config, ports)
        monitors, listener = Monitors(broker), Listener(broker)
        try:
            for name in ("engine-a", "engine-b", "dash", "gw-1", "gw-2"):
                nodes.start(name)
            for name in ("engine-a", "engine-b", "dash", "gw-1", "gw-2"):
                nodes.wait(name)
            token = create_token(tmp_path / "data" / "dash", "nurse", "deploy test")
            auth = {"Authorization": f"Bearer {token}"}
            dash = nodes.base("dash")

            def bays() -> dict[str, dict[str, Any]]:
                body = httpx.get(f"{dash}/api/bays", headers=auth, timeout=2).json()
                return {b["id"]: b for b in body["bays"]}

            with background(monitors.run(), listener.run()):
                # each engine holds its own ward
                until(lambda: nodes.health("engine-a")["node"]["wards"] == ["ward-1"]
                            and nodes.health("engine-b")["node"]["wards"] == ["ward-2"], 20, "each engine's ward",
                            nodes)
                # every bay's observations at the dashboard: SpO2 through its gateway, HR straight from its monitor
                until(lambda: all({"spo2", "pr", "hr"} <= set(b["vitals"]) for b in bays().values()), 30,
                            "every bay's SpO2, PR and HR on the dashboard", nodes)
                assert set(bays()) == set(BAYS)

                # an alarm on every bay: on the dashboard and on the MQTT alarm topic
                for bay in BAYS:
                    monitors.hr[bay] = 150.0
                until(lambda: all("hr_high" in {a["id"] for a in b["alarms"]} for b in bays().values()), 15,
                            "hr_high on every bay of the dashboard", nodes)
                until(lambda: all("hr_high" in listener.alarm_ids(b) for b in BAYS), 10,
                            "hr_high in every bay's retained snapshot")
                for bay in BAYS:
                    monitors.hr[bay] = 80.0  # over: a high-priority alarm stays latched until acknowledged

                # recorded by the engines in the shared PostgreSQL, read back by the dashboard
                now = time.time()
                for bay in BAYS:
                    history = httpx.get(f"{dash}/api/bays/{bay}/history", params={"since": now - 120, "until": now},
                                        headers=auth, timeout=5).json()
                    assert {"spo2", "hr"} <= set(history["observations"]), (bay, list(history["observations"]))
                    assert any(p["id"] == "hr_high" for p in history["alarms"]), (bay, history["alarms"])

                # a nurse acknowledges on the dashboard; the engine holding bay 2 carries it out
                answer = httpx.post(f"{dash}/api/bays/bay2/alarms/hr_high/acknowledge", headers=auth, timeout=10)
                assert answer.status_code == 200, answer.text
                assert any(e["phase"] in ("acknowledged", "end") for e in answer.json()["events"])
                until(lambda: "hr_high" not in {a["id"] for a in bays()["bay2"]["alarms"]}, 10,
                            "bay 2's alarm ended by the acknowledgement")
                missing = httpx.post(f"{dash}/api/bays/bay2/alarms/nothing/acknowledge", headers=auth, timeout=10)
                assert missing.status_code in (200, 404), missing.text

                # engine A dies; an alarm is raised on its ward at once
                killed = time.time()
                nodes.procs["engine-a"].kill()
                monitors.rr["bay2"] = 40.0
                until(lambda: "ward-1" in nodes.health("engine-b")["node"]["wards"], 15,
                      "engine B to take ward 1 over", nodes)
                took = time.time() - killed
                assert took <= 15
                until(lambda: "rr_high" in {a["id"] for a in bays()["bay2"]["alarms"]}, 15,
                      "the alarm raised during the takeover on the dashboard", nodes)
                until(lambda: "rr_high" in listener.alarm_ids("bay2"), 10,
                      "the alarm raised during the takeover on the MQTT alarm topic")
                until(lambda: any(e["bay"] == "bay2" and e["id"] == "rr_high" and e["phase"] == "start"
                                  and e["time"] >= killed for e in listener.events), 10,
                      "its start on the MQTT event stream (it follows the snapshot)")
                # the alarm raised before the takeover is kept (latched, not acknowledged); the one a nurse
                # acknowledged before it does not come back
                assert "hr_high" in {a["id"] for a in bays()["bay1"]["alarms"]}
                assert "hr_high" in listener.alarm_ids("bay1")
                assert "hr_high" not in {a["id"] for a in bays()["bay2"]["alarms"]}
                assert "hr_high" not in listener.alarm_ids("bay2")
                # the takeover itself is a technical alarm on each bay of the ward
                until(lambda: all("takeover:engine-a" in {a["id"] for a in bays()[b]["alarms"]}
                                        for b in WARDS["ward-1"]), 10, "the takeover alarm")
                assert listener.heartbeats["engine-a"]["state"] == "offline"
                assert sorted(listener.heartbeats["engine-b"]["wards"]) == ["ward-1", "ward-2"]

                # gateway 2 loses the broker for 20 s; what it measured meanwhile arrives afterwards
                relay.cut()
                cut = time.time()
                until(lambda: nodes.health("gw-2")["gateway"]["buffered"] > 0, 10, "gateway 2 to buffer")
                assert not nodes.health("gw-2")["gateway"]["connected"]
                time.sleep(max(0.0, cut + 20 - time.time()))
                relay.restore()
                restored = time.time()
                until(lambda: nodes.health("gw-2")["gateway"]["buffered"] == 0
                            and nodes.health("gw-2")["gateway"]["connected"], 30, "gateway 2 to send its buffer",
                            nodes)
                time.sleep(1.5)  # the engine's recorder writes every 0.5 s
                for bay in WARDS["ward-2"]:
                    history = httpx.get(f"{dash}/api/bays/{bay}/history",
                                        params={"since": cut + 1, "until": restored - 1}, headers=auth,
                                        timeout=5).json()
                    times = [p[0] for p in history["observations"].get("spo2", [])]
                    assert len(times) >= 15, (bay, len(times))  # ~1 a second of the 18 s: none lost
                    assert times == sorted(times)
                    assert all(cut + 1 <= t <= restored - 1 for t in times)
                assert all(p.poll() is None for n, p in nodes.procs.items() if n != "engine-a"), nodes.logs()

                # with no engine left, the dashboard says so on every bay rather than showing a quiet ward
                assert not any("no_engine" in {a["id"] for a in b["alarms"]} for b in bays().values())
                nodes.procs["engine-b"].kill()
                until(lambda: all(any(a["id"] == "no_engine" and a["priority"] == "high" for a in b["alarms"])
                                  for b in bays().values()), 10, "NO ALARM ENGINE on every bay", nodes)
        finally:
            nodes.stop()
