"""A session recorded by the real service, then listed and exported by `bedside sessions list` / `bedside export`
and by the API: each format read back by an independent parser (fhir.resources, python-hl7), the CSV replayed by
`bedside replay`, the report served with its own Content-Security-Policy, every export audited."""

from __future__ import annotations

import json
from pathlib import Path

import hl7
import pytest
from fhir.resources.R4B.bundle import Bundle

from monitor.cli import main
from tests.storage import uses_sqlite
from tests.unit.conftest import World, bearer
from tests.unit.test_sessions_api import ADMIT, CHECKLIST, feed, post


def recorded_session(world: World, clock: list[float]) -> str:
    """Admit, 2 min of baseline, 10 min of infusion with a desaturation to 84 % for 40 s, end: the session id."""
    client, src, tokens = world
    sid: str = post(client, tokens, "/api/bays/bay1/session", ADMIT).json()["session"]["id"]
    post(client, tokens, f"/api/sessions/{sid}/checklist", CHECKLIST)
    post(client, tokens, f"/api/sessions/{sid}/baseline")
    feed(world, clock, 120)
    post(client, tokens, f"/api/sessions/{sid}/dose", {"action": "start"})
    feed(world, clock, 300)
    feed(world, clock, 40, spo2=84)
    feed(world, clock, 260)
    assert post(client, tokens, f"/api/sessions/{sid}/end", {"reason": "test over"}).status_code == 200
    assert src.recorder is not None
    src.recorder.flush()
    return sid


@pytest.mark.skipif(not uses_sqlite(), reason="`--data-dir` reads and `backup` copies the data dir's bedside.db: "
                                               "SQLite only")
def test_sessions_are_listed_and_exported_from_the_command_line(world: World, clock: list[float], tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    sid = recorded_session(world, clock)
    data = str(tmp_path)
    assert main(["sessions", "list", "--data-dir", data, "--patient", "P-0042"]) == 0
    [line] = capsys.readouterr().out.splitlines()
    assert line.split()[0] == sid and "P-0042 (JD)" in line and "induction 2 of 6" in line

    for fmt in ("csv", "fhir", "hl7", "report"):
        assert main(["export", sid, "--format", fmt, "-o", str(tmp_path / f"out.{fmt}"), "--data-dir", data]) == 0

    csv_rows = (tmp_path / "out.csv").read_text().splitlines()
    assert csv_rows[0] == "t,pr,spo2" and len(csv_rows) == 1 + 120 + 300 + 40 + 260
    capsys.readouterr()
    assert main(["replay", str(tmp_path / "out.csv"), "--json"]) == 0
    events = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    starts = [e for e in events if e.get("phase") == "start" and e.get("id") == "spo2_low"]
    assert len(starts) == 1 and starts[0]["value"] == 84  # the desaturation comes back out of the exported trace

    bundle = Bundle.model_validate_json((tmp_path / "out.fhir").read_text())
    observations = [e.resource for e in bundle.entry if e.resource.get_resource_type() == "Observation"]
    assert len(observations) == 2 * (120 + 300 + 40 + 260)
    assert sum(1 for o in observations if o.valueQuantity.value == 84) == 40

    message = hl7.parse((tmp_path / "out.hl7").read_bytes().decode())  # segments end with CR, kept as written
    assert str(message.segment("MSH")[9]) == "ORU^R01^ORU_R01" and str(message.segment("PID")[3]).startswith("P-0042")
    assert len([s for s in message if str(s[0]) == "OBX" and str(s[2]) == "NM"]) == len(observations)

    report = (tmp_path / "out.report").read_text()
    assert "P-0042" in report and "test over" in report and "<svg" in report

    assert main(["backup", "-o", str(tmp_path / "copy.db"), "--data-dir", data]) == 0
    capsys.readouterr()
    assert main(["sessions", "list", "--data-dir", str(tmp_path / "restored")]) == 2
    (tmp_path / "restored").mkdir()
    (tmp_path / "copy.db").rename(tmp_path / "restored" / "bedside.db")  # a restore is putting the copy back
    assert main(["sessions", "list", "--data-dir", str(tmp_path / "restored")]) == 0
    assert capsys.readouterr().out.split()[0] == sid

    assert main(["export", "nope", "--format", "csv", "-o", "-", "--data-dir", data]) == 2
    assert main(["sessions", "list", "--data-dir", str(tmp_path / "empty")]) == 2


def test_the_review_page_exports_and_each_export_is_audited(world: World, clock: list[float]) -> None:
    client, _, tokens = world
    sid = recorded_session(world, clock)
    viewer = bearer(tokens, "viewer")
    report = client.get(f"/api/sessions/{sid}/export", params={"format": "report"}, headers=viewer)
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/html")
    assert report.headers["content-security-policy"].startswith("default-src 'none'; style-src 'sha256-")
    hl7_file = client.get(f"/api/sessions/{sid}/export", params={"format": "hl7"}, headers=viewer)
    assert hl7_file.headers["content-disposition"] == f'attachment; filename="bedside-{sid}.hl7"'
    assert client.get(f"/api/sessions/{sid}/export", params={"format": "pdf"}, headers=viewer).status_code == 422
    assert client.get(f"/api/sessions/{sid}/export").status_code == 401
    audit = client.get("/api/audit", params={"action": "session_export"}, headers=bearer(tokens, "admin")).json()
    assert [json.loads(r["after"])["format"] for r in audit["records"]] == ["hl7", "report"]

    stats = client.get(f"/api/sessions/{sid}/statistics", headers=viewer).json()
    assert stats["vitals"]["spo2"]["min"] == 84 and stats["vitals"]["pr"]["median"] == 70
    series = client.get("/api/patients/P-0042/series", headers=viewer).json()
    assert [s["session"]["id"] for s in series["sessions"]] == [sid]
    assert client.get("/api/patients/nobody/series", headers=viewer).status_code == 404
