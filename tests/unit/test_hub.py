"""The hub: binding devices to bays, latest values, technical status changes only on change."""

from __future__ import annotations

from monitor.hub import Hub
from monitor.model import Bay, Condition, DeviceCondition, Observation, Reading, TechnicalStatus


def test_routes_by_binding_keeps_latest_and_passes_status_changes_once() -> None:
    hub = Hub([Bay("bay1", "Bay 1", ["ox1"]), Bay("bay2", "Bay 2", ["ox2"])])
    seen: list[Observation | TechnicalStatus] = []
    heard: list[tuple[str, float]] = []
    hub.add_sink(seen.append)
    hub.on_heard(lambda d, t: heard.append((d, t)))

    hub.ingest("ox2", Reading("spo2", 97, 1.0), 2.0)
    hub.ingest("ox2", Reading("spo2", 95, 2.0), 3.0)
    assert hub.bays["bay2"].latest["spo2"].value == 95
    assert "spo2" not in hub.bays["bay1"].latest

    lost = DeviceCondition(Condition.DEVICE_LOST, True, None, "port closed")
    hub.ingest("ox1", lost, 4.0)
    hub.ingest("ox1", lost, 5.0)  # repeated: no second status
    hub.ingest("ox1", DeviceCondition(Condition.DEVICE_LOST, False), 6.0)
    hub.ingest("ox1", DeviceCondition(Condition.DEVICE_LOST, False), 7.0)  # ending what is not active
    statuses = [(s.bay, s.active, s.time) for s in seen if isinstance(s, TechnicalStatus)]
    assert statuses == [("bay1", True, 4.0), ("bay1", False, 6.0)]
    assert hub.bays["bay1"].technical == {}
    assert [o.bay for o in seen if isinstance(o, Observation)] == ["bay2", "bay2"]
    # the link's own up/down events are not the device speaking: they must not reset the silence timer
    assert heard == [("ox2", 2.0), ("ox2", 3.0)]


def test_unbound_device_is_counted_not_routed() -> None:
    hub = Hub([Bay("bay1", "Bay 1", ["ox1"])])
    seen: list[object] = []
    hub.add_sink(seen.append)
    hub.ingest("stranger", Reading("spo2", 97), 1.0)
    assert seen == [] and hub.unbound == 1
