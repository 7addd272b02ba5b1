"""What a restart of the service finds in the store: alarms left open by a crash are ended in the record (the
engine raises them again if their condition holds), and the open sessions carry on."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config import parse_config
from monitor.model import AlarmEvent
from monitor.service import Service
from tests.storage import open_test_store, with_storage

pytestmark = pytest.mark.service


def config(tmp: Path) -> dict[str, object]:
    return with_storage({"data_dir": str(tmp), "bays": [
        {"id": "bay1", "devices": [{"id": "ox1", "driver": "masimo", "port": "/dev/null"}]}],
        "notify": {"targets": [{"name": "acm", "kind": "hl7", "url": "mllp://127.0.0.1:2575"}]}})


def test_alarms_left_open_by_a_crash_are_ended_at_start(tmp_path: Path) -> None:
    store = open_test_store(tmp_path)
    store.append_durable([
        AlarmEvent("bay1", "spo2_low", "start", "physiological", "high", 900.0, "SpO2 LOW 85 < 90", "spo2", 85.0),
        AlarmEvent("bay1", "hr_high", "start", "physiological", "medium", 910.0, "HR HIGH 130 > 120", "hr", 130.0),
        AlarmEvent("bay1", "hr_high", "end", "physiological", "medium", 950.0, "HR HIGH 130 > 120", "hr", 130.0),
        AlarmEvent("gone", "spo2_low", "start", "physiological", "high", 900.0, "SpO2 LOW", "spo2", 85.0)])
    store.close()
    service = Service(parse_config(config(tmp_path)), clock=lambda: 1000.0)
    try:
        history = service.store.bay_history("bay1", 800.0, 1000.0)
        assert [(a["id"], a["start"], a["end"]) for a in history["alarms"]] == [
            ("spo2_low", 900.0, 1000.0), ("hr_high", 910.0, 950.0)]
        forwarded = [(p.body["id"], p.body["phase"]) for p in service.outbox.pending("acm")]
        assert forwarded == [("spo2_low", "end")]  # the alarm manager learns of the end too
        assert service.store.unended_alarms(0.0) == [  # a bay no longer configured is left as it was
            AlarmEvent("gone", "spo2_low", "start", "physiological", "high", 900.0, "SpO2 LOW", "spo2", 85.0)]
    finally:
        service.close()
    again = Service(parse_config(config(tmp_path)), clock=lambda: 2000.0)  # nothing more to end
    try:
        ends = [a for a in again.store.bay_history("bay1", 0.0, 2000.0)["alarms"] if a["end"] == 2000.0]
        assert ends == []
    finally:
        again.close()
