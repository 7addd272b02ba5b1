"""A session survives kill -9: bedside (a real subprocess) records a monitor publishing 20 readings a second over a
real Mosquitto; it is killed with SIGKILL mid-infusion and started again on the same data dir. Every reading
received more than a second before the kill is in the trace, the open session resumes in its phase with its
baseline and alarm profile, and recording carries on."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import pytest

from monitor.mosquitto import PrivateMosquitto, free_port
from monitor.store import SessionFilter
from tests.processes import create_token, running_bedside
from tests.storage import open_test_store

pytestmark = [pytest.mark.timeout(90), pytest.mark.service]

ADMIT = {"patient_id": "P-7", "initials": "AB", "weight_kg": 70, "dose_mg_per_kg": 0.5, "planned_minutes": 40,
         "series_kind": "booster", "series_index": 1}
CHECKLIST = {"fasting_hours": 6, "escort_name": "C. Doe", "escort_phone": "555 0100", "consent": True}
RATE = 20.0  # readings a second


def write_config(tmp: Path, broker: PrivateMosquitto, port: int) -> Path:
    cfg = tmp / "bedside.toml"
    cfg.write_text(f"""
site = "clinic"
data_dir = "data"
[http]
port = {port}
[mqtt]
url = "{broker.url}"
[[bays]]
id = "bay1"
[[bays.devices]]
id = "mon1"
driver = "mqtt"
""")
    return cfg


class Monitor:
    """A monitor publishing `bedside/v1` numerics at RATE per second; remembers when each reading was sent."""

    def __init__(self, broker: PrivateMosquitto) -> None:
        self.broker = broker
        self.sent: list[float] = []  # the `ts` of every reading, = when it was published

    async def run(self, seconds: float) -> None:
        async with aiomqtt.Client(self.broker.host, self.broker.port) as client:
            await client.publish("bedside/v1/clinic/dev/mon1/state", b"online", qos=1, retain=True)
            end = time.time() + seconds
            while time.time() < end:
                ts = time.time()
                body = {"ts": ts, "seq": len(self.sent), "values": {"hr": 70.0 + len(self.sent) % 5, "spo2": 97.0}}
                await client.publish("bedside/v1/clinic/dev/mon1/numerics", json.dumps(body).encode(), qos=1)
                self.sent.append(ts)
                await asyncio.sleep(1 / RATE)


def recorded_device_times(data_dir: Path) -> list[float]:
    """The device times of mon1's heart rates in the trace of the (one) session, read through the trace store."""
    store = open_test_store(data_dir)
    try:
        [session] = store.sessions(SessionFilter())
        trace = store.session_trace(session.id)
        assert trace is not None
        return sorted(o.device_time for o in trace.observations
                      if o.device == "mon1" and o.vital == "hr" and o.device_time is not None)
    finally:
        store.close()


async def test_kill_9_mid_session_loses_at_most_the_last_second(tmp_path: Path, broker: PrivateMosquitto) -> None:
    port = free_port()
    config = write_config(tmp_path, broker, port)
    data = tmp_path / "data"
    base = f"http://127.0.0.1:{port}"
    monitor = Monitor(broker)
    with running_bedside(config, port) as (_, proc):
        nurse = {"Authorization": f"Bearer {create_token(data, 'nurse', 'nurse one')}"}
        async with httpx.AsyncClient(base_url=base, headers=nurse, timeout=10) as api:
            sid = (await api.post("/api/bays/bay1/session", json=ADMIT)).json()["session"]["id"]
            await api.post(f"/api/sessions/{sid}/checklist", json=CHECKLIST)
            await api.post(f"/api/sessions/{sid}/baseline")
            publishing = asyncio.create_task(monitor.run(30))
            await asyncio.sleep(3)
            started = (await api.post(f"/api/sessions/{sid}/dose", json={"action": "start"})).json()["session"]
            assert started["phase"] == "infusion" and 70 <= started["baseline"]["hr"] <= 74
            await asyncio.sleep(2.3)  # mid-batch, mid-infusion
            killed_at = time.time()
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
            publishing.cancel()

    stored = recorded_device_times(data)
    sent_before = [t for t in monitor.sent if t < killed_at - 1.0]
    missing = sorted(set(sent_before) - set(stored))
    assert not missing, f"{len(missing)} readings sent more than 1 s before the kill are missing: {missing[:5]}"
    assert killed_at - max(stored) <= 1.0  # the gap the kill left in the trace
    assert len(stored) >= 5 * RATE * 0.9  # about 5 s of readings before the kill

    with running_bedside(config, port):
        async with httpx.AsyncClient(base_url=base, headers=nurse, timeout=10) as api:
            resumed = (await api.get("/api/bays/bay1/session")).json()
            assert resumed["session"]["id"] == sid and resumed["session"]["phase"] == "infusion"
            assert [d["action"] for d in resumed["session"]["doses"]] == ["start"]
            settings = (await api.get("/api/bays/bay1/alarm-settings")).json()
            assert settings["profile"] == "ketamine-infusion"
            assert settings["baselines"] == started["baseline"]  # the engine has the session's baseline again
            before_restart = len(recorded_device_times(data))
            await monitor.run(2)
            await asyncio.sleep(1.2)  # a recorder batch
            assert len(recorded_device_times(data)) >= before_restart + RATE
            trace: dict[str, Any] = (await api.get(f"/api/sessions/{sid}/trace")).json()
            hr_times = trace["trends"]["hr"]["t"]
            assert hr_times[0] < killed_at < hr_times[-1]  # one trace across the restart
            stopped = await api.post(f"/api/sessions/{sid}/dose", json={"action": "stop"})
            assert stopped.status_code == 200  # the resumed session carries on
