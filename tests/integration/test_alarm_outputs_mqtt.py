"""The MQTT alarm output against a real private Mosquitto and a real `bedside run`: the retained snapshot and the
event stream follow an alarm's life (start, acknowledge, end), every payload valid against the published JSON
Schema; the heartbeat says online, and its last will says offline when bedside is killed with SIGKILL."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import pytest
from jsonschema import Draft202012Validator

from drivers.mqtt_numerics import SCHEMA_FILE
from monitor.mosquitto import PrivateMosquitto, free_port
from tests.processes import create_token, running_bedside

pytestmark = [pytest.mark.timeout(90), pytest.mark.service]

SCHEMA = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))


def valid(body: dict[str, Any], definition: str) -> dict[str, Any]:
    errors = list(Draft202012Validator({**SCHEMA, "$ref": f"#/$defs/{definition}"}).iter_errors(body))
    assert not errors, [e.message for e in errors]
    return body


def write_config(tmp: Path, broker: PrivateMosquitto, port: int) -> Path:
    cfg = tmp / "bedside.toml"
    cfg.write_text(f"""
site = "clinic"
data_dir = "data"
[http]
port = {port}
[mqtt]
url = "{broker.url}"
[notify]
instance = "main"
heartbeat_interval = 1
[[bays]]
id = "bay1"
name = "Bay 1"
[[bays.devices]]
id = "mon1"
driver = "mqtt"
[[bays]]
id = "bay2"
[[bays.devices]]
id = "mon2"
driver = "mqtt"
""")
    return cfg


class Listener:
    """Everything bedside publishes under bedside/v1/clinic/ (bay alarms, events, heartbeat), as it arrives."""

    def __init__(self) -> None:
        self.snapshots: dict[str, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self.heartbeats: list[dict[str, Any]] = []

    async def run(self, broker: PrivateMosquitto) -> None:
        async with aiomqtt.Client(broker.host, broker.port) as client:
            await client.subscribe("bedside/v1/clinic/bay/+/alarms", qos=1)
            await client.subscribe("bedside/v1/clinic/bay/+/alarm_events", qos=1)
            await client.subscribe("bedside/v1/clinic/service/+/heartbeat", qos=1)
            async for msg in client.messages:
                body = json.loads(bytes(msg.payload))  # type: ignore[arg-type]
                topic = str(msg.topic)
                if topic.endswith("/alarms"):
                    self.snapshots[topic.split("/")[4]] = valid(body, "alarm_snapshot")
                elif topic.endswith("/alarm_events"):
                    self.events.append(valid(body, "alarm_event"))
                else:
                    assert topic == "bedside/v1/clinic/service/main/heartbeat"
                    self.heartbeats.append(valid(body, "heartbeat"))

    def alarms(self, bay: str) -> list[dict[str, Any]]:
        return self.snapshots.get(bay, {}).get("alarms", [])


async def until(predicate: Any, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, f"timed out after {within} s waiting for {what}"
        await asyncio.sleep(0.05)


async def publish_spo2(client: aiomqtt.Client, value: float, seq: int) -> None:
    body = {"ts": time.time(), "seq": seq, "values": {"spo2": value, "hr": 80.0}}
    await client.publish("bedside/v1/clinic/dev/mon1/numerics", json.dumps(body).encode(), qos=1)


async def test_snapshot_and_events_follow_an_alarm_and_the_last_will_says_offline(
        tmp_path: Path, broker: PrivateMosquitto) -> None:
    port = free_port()
    config = write_config(tmp_path, broker, port)
    listener = Listener()
    listening = asyncio.create_task(listener.run(broker))
    try:
        with running_bedside(config, port) as (base, proc):
            token = create_token(tmp_path / "data", "nurse", "test")
            # watched: every bay has a retained snapshot, empty; the heartbeat says online and repeats
            await until(lambda: {"bay1", "bay2"} <= set(listener.snapshots), 10, "a snapshot of every bay")
            assert listener.alarms("bay1") == [] and listener.alarms("bay2") == []
            assert listener.snapshots["bay1"]["bay_name"] == "Bay 1"
            await until(lambda: len([h for h in listener.heartbeats if h["state"] == "online"]) >= 2, 10,
                        "two online heartbeats")

            async with aiomqtt.Client(broker.host, broker.port) as monitor:
                seq = 0
                for _ in range(3):  # 75 %: at or below 80 % a high SpO2 alarm starts at once
                    seq += 1
                    await publish_spo2(monitor, 75.0, seq)
                    await asyncio.sleep(0.3)
                await until(lambda: [a["id"] for a in listener.alarms("bay1")] == ["spo2_low"], 10,
                            "spo2_low in bay 1's snapshot")
                alarm = listener.alarms("bay1")[0]
                assert (alarm["priority"], alarm["vital"], alarm["value"], alarm["acknowledged_by"]) == (
                    "high", "spo2", 75.0, None)
                start = [e for e in listener.events if e["id"] == "spo2_low"]
                assert [(e["bay"], e["phase"], e["priority"]) for e in start] == [("bay1", "start", "high")]
                assert listener.alarms("bay2") == []  # the other bay is untouched

                async with httpx.AsyncClient(timeout=5) as http:
                    answer = await http.post(f"{base}/api/bays/bay1/alarms/spo2_low/acknowledge",
                                             headers={"Authorization": f"Bearer {token}"})
                assert answer.status_code == 200, answer.text
                await until(lambda: listener.alarms("bay1") and listener.alarms("bay1")[0]["acknowledged_by"],
                            10, "the acknowledgement in the snapshot")
                await until(lambda: any(e["phase"] == "acknowledged" for e in listener.events), 10, "ack event")

                for _ in range(12):  # recovered: the acknowledged alarm ends once SatSeconds run down
                    seq += 1
                    await publish_spo2(monitor, 97.0, seq)
                    await asyncio.sleep(0.5)
                await until(lambda: listener.alarms("bay1") == [], 20, "an empty snapshot again")
                phases = [e["phase"] for e in listener.events if e["id"] == "spo2_low"]
                assert phases[0] == "start" and phases[-1] == "end" and "acknowledged" in phases
                seqs = [e["seq"] for e in listener.events]
                assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)  # in order, no repeat
                async with httpx.AsyncClient(timeout=5) as http:
                    mqtt = (await http.get(f"{base}/api/health")).json()["forwarding"]["mqtt"]
                assert mqtt["delivered"] >= len(listener.events) and not mqtt["failing"]

            proc.kill()  # SIGKILL: no goodbye; the broker publishes the last will
            proc.wait(timeout=10)
            await until(lambda: listener.heartbeats[-1]["state"] == "offline", 20, "the last will")
            assert listener.heartbeats[-1]["instance"] == "main"
    finally:
        listening.cancel()
        await asyncio.gather(listening, return_exceptions=True)
