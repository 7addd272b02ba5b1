"""A whole infusion session through the API of a real `bedside run` whose bay is watched by a simulated Masimo
oximeter on a pseudo-terminal: admit -> checklist -> baseline -> infusion -> recovery -> discharge refused, then
allowed; then the recorded trace and the audit log are checked. The clinic's discharge rules are shortened in the
config (recovery 3 s, vitals stable for 6 s) so the test takes seconds, not an hour."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from monitor.mosquitto import free_port
from tests.processes import create_token, running_bedside

pytestmark = [pytest.mark.timeout(90), pytest.mark.service]

ADMIT = {"patient_id": "P-0042", "initials": "JD", "weight_kg": 82.5, "dose_mg_per_kg": 0.5, "planned_minutes": 40,
         "series_kind": "induction", "series_index": 1, "series_total": 6}
ALDRETE = {"activity": 2, "respiration": 2, "circulation": 2, "consciousness": 1, "spo2": 2}


def config(tmp: Path, port: int) -> Path:
    path = tmp / "bedside.toml"
    path.write_text(f"""
data_dir = "data"
[http]
port = {port}
[sessions]
min_recovery_minutes = 0.05
stable_minutes = 0.1
[[bays]]
id = "bay1"
name = "Bay 1"
[[bays.devices]]
id = "masimo-1"
driver = "masimo"
simulate = true
""")
    return path


def test_a_whole_session_with_a_simulated_oximeter(tmp_path: Path) -> None:
    port = free_port()
    cfg = config(tmp_path, port)
    with running_bedside(cfg, port) as (base, _):
        nurse = {"Authorization": f"Bearer {create_token(tmp_path / 'data', 'nurse', 'Nurse Ann')}"}
        admin = {"Authorization": f"Bearer {create_token(tmp_path / 'data', 'admin', 'IT Ian')}"}
        with httpx.Client(base_url=base, headers=nurse, timeout=10) as api:
            def step(name: str, body: dict[str, Any] | None = None, expect: int = 200) -> dict[str, Any]:
                r = api.post(f"/api/sessions/{sid}/{name}", json=body or {})
                assert r.status_code == expect, r.text
                result: dict[str, Any] = r.json()
                return result

            admitted = api.post("/api/bays/bay1/session", json=ADMIT).json()["session"]
            sid = admitted["id"]
            assert (admitted["total_mg"], admitted["rate_mg_per_h"]) == (41.25, 61.88)
            step("checklist", {"fasting_hours": 8, "escort_name": "Sam", "escort_phone": "555 0100",
                               "consent": True})
            assert step("baseline")["session"]["phase"] == "baseline"
            time.sleep(4)  # the oximeter's readings (1 a second) of the baseline
            infusion = step("dose", {"action": "start"})["session"]
            baseline = infusion["baseline"]
            assert set(baseline) == {"spo2", "pr"}  # what the oximeter measures; nothing else is made up
            assert 85 <= baseline["spo2"] <= 100 and 40 <= baseline["pr"] <= 120
            assert api.get("/api/bays/bay1/alarm-settings").json()["baselines"] == baseline
            step("dose", {"action": "rate", "rate_mg_per_h": 50, "note": "nausea"})
            time.sleep(1)
            recovery = step("recovery")["session"]
            assert recovery["phase"] == "recovery"
            assert api.get("/api/bays/bay1/alarm-settings").json()["profile"] == "recovery"

            refused = step("discharge", expect=409)["detail"]
            assert "no Aldrete score entered" in refused["unmet"] and "escort not confirmed" in refused["unmet"]
            step("aldrete", ALDRETE)
            step("checklist", {"escort_confirmed": True})
            step("pain", {"before": 8, "after": 4})
            time.sleep(7)  # past the 3 s of recovery, and 6 s of stable vitals
            assert api.get("/api/bays/bay1/session").json()["readiness"] == []
            closed = step("discharge")["session"]
            assert closed["phase"] == "closed" and closed["discharge"]["outcome"] == "discharged"
            assert closed["discharge"]["who"] == "Nurse Ann"

            trace = api.get(f"/api/sessions/{sid}/trace").json()
            spo2 = trace["trends"]["spo2"]
            assert trace["start"] == admitted["admitted_at"] and trace["end"] == closed["discharge"]["time"]
            assert all(trace["start"] <= t <= trace["end"] for t in spo2["t"])
            assert len(spo2["t"]) >= 10 and spo2["t"] == sorted(spo2["t"])
            assert [d["action"] for d in trace["session"]["doses"]] == ["start", "rate", "stop"]
            listed = api.get("/api/sessions", params={"patient": "P-0042"}).json()["sessions"]
            assert [s["id"] for s in listed] == [sid]

        audit = httpx.get(f"{base}/api/audit", params={"bay": "bay1"}, headers=admin, timeout=10).json()["records"]
        steps = [(r["action"], r["who"]) for r in reversed(audit) if r["target"] == sid]
        assert steps == [(f"session_{a}", "Nurse Ann") for a in (
            "admit", "checklist", "baseline", "dose", "dose", "recovery", "discharge_refused", "aldrete",
            "checklist", "pain", "discharge")]
