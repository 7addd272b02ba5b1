"""`bedside demo --speed 60`: the demo nurse takes the simulated patients through whole sessions. Through the API
(with the tokens the demo prints) a bay is seen in infusion, then a session closes discharged with its dose
record (start, rate change, stop), audited as the demo nurse, with a trace of readings; SIGINT then stops
everything within 5 s, leaving no process or pty."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from monitor.mosquitto import free_port
from tests.integration.test_demo import alive, bedside, children_of, ptys_held

pytestmark = pytest.mark.timeout(150)

WITHIN = 120.0  # s: at speed 60 a session takes about 80 s (a clinic's 80 min) from the demo's start


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str, Path, set[str]]]:
    ptys_before = set(os.listdir("/dev/pts"))
    port = free_port()
    out = tmp_path / "demo.log"
    with out.open("wb") as log:  # a file, not a pipe: the demo never blocks on a full pipe
        proc = subprocess.Popen(bedside("demo", "--bays", "2", "--speed", "60", "--port", str(port),
                                        "--data-dir", str(tmp_path / "data")),
                                stdout=log, stderr=subprocess.STDOUT)
    try:
        yield proc, f"http://127.0.0.1:{port}", out, ptys_before
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def printed_tokens(out: Path, proc: subprocess.Popen[bytes]) -> tuple[str, str]:
    """The nurse and admin tokens of the login links the demo prints."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        text = out.read_text(errors="replace")
        nurse = re.search(r"log in at \S+/login#token=(\S+)", text)
        admin = re.search(r"audit log: \S+/login\?next=/admin#token=(\S+)", text)
        if nurse and admin:
            return nurse.group(1), admin.group(1)
        assert proc.poll() is None, text
        time.sleep(0.2)
    raise AssertionError(f"no login links within 30 s: {out.read_text(errors='replace')}")


def test_demo_nurse_takes_bays_through_whole_sessions(
    demo: tuple[subprocess.Popen[bytes], str, Path, set[str]],
) -> None:
    proc, base, out, ptys_before = demo
    nurse, admin = printed_tokens(out, proc)
    api = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {nurse}"}, timeout=5)
    deadline = time.monotonic() + WITHIN
    in_infusion: set[str] = set()
    closed: dict[str, Any] | None = None
    while closed is None:
        assert proc.poll() is None, out.read_text(errors="replace")
        assert time.monotonic() < deadline, f"in infusion: {in_infusion}, no discharged session within {WITHIN:.0f} s"
        time.sleep(0.5)
        try:
            bays = api.get("/api/bays").json()["bays"]
            for b in bays:
                if (b["session"] or {}).get("phase") == "infusion":
                    # the bay's own session endpoint agrees, and shows the running dose
                    own = api.get(f"/api/bays/{b['id']}/session").json()
                    if own["session"] is not None and own["session"]["phase"] == "infusion":
                        assert own["session"]["doses"][0]["action"] == "start"
                        in_infusion.add(b["id"])
            if in_infusion:
                sessions = api.get("/api/sessions").json()["sessions"]
                closed = next((s for s in sessions if s["phase"] == "closed"), None)
        except httpx.HTTPError:
            continue
    assert in_infusion, "a closed session but never a bay seen in infusion"
    out_text = out.read_text(errors="replace")
    assert "Traceback" not in out_text, out_text

    # the closed session: discharged, its whole dose record, the series and the Aldrete score
    assert closed["discharge"]["outcome"] == "discharged", closed
    assert closed["discharge"]["who"] == "demo nurse"
    assert [d["action"] for d in closed["doses"]] == ["start", "rate", "stop"], closed["doses"]
    assert closed["doses"][1]["rate_mg_per_h"] < closed["doses"][0]["rate_mg_per_h"]
    assert re.fullmatch(r"DEMO-\d{4}", closed["patient_id"]) and closed["series_label"] == "induction 1 of 6"
    assert closed["protocol"] == {"dose_mg_per_kg": 0.5, "planned_minutes": 40.0}
    assert 55 <= closed["weight_kg"] <= 95 and closed["aldrete"]["total"] >= 9
    assert closed["pain_before"] is not None and closed["pain_after"] is not None
    assert closed["baseline"], "the baseline phase should have given a baseline"

    # every step audited as the demo nurse
    records = httpx.get(f"{base}/api/audit", params={"bay": closed["bay"]},
                        headers={"Authorization": f"Bearer {admin}"}, timeout=5).json()["records"]
    mine = [r for r in records if r["target"] == closed["id"]]
    actions = {r["action"] for r in mine}
    assert {"session_admit", "session_checklist", "session_baseline", "session_dose", "session_recovery",
            "session_aldrete", "session_pain", "session_discharge"} <= actions, actions
    assert {r["who"] for r in mine} == {"demo nurse"}

    # the session's trace has readings
    trace = api.get(f"/api/sessions/{closed['id']}/trace").json()
    assert trace["session"]["id"] == closed["id"]
    assert len(trace["trends"]["hr"]["t"]) > 30 and len(trace["trends"]["spo2"]["t"]) > 30

    # SIGINT stops everything within 5 s, leaving no child and no pty
    children = children_of(proc.pid)
    held = ptys_held(proc.pid)
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=5)
    assert time.monotonic() - started < 5
    assert proc.returncode == 0
    assert not [c for c in children if alive(c)], "a child process outlived the demo"
    assert held - ptys_before, "the demo's Masimo bays should use ptys"
    assert not (held - ptys_before) & set(os.listdir("/dev/pts")), "a pty outlived the demo"
