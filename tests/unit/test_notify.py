"""Alarm outputs without the network: the durable outbox, the escalation routing through the real engine with an
injected clock, the webhook signature, the technical alarm of a failing target."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path
from typing import Any

import pytest

from alerts.notify.outbox import Outbox
from alerts.notify.payloads import event_json, with_sequence
from alerts.notify.routing import Route, Router
from alerts.notify.webhook import signature
from monitor.config import ConfigError, parse_config
from monitor.model import AlarmEvent, Observation
from monitor.service import Service
from tests.storage import with_storage

pytestmark = pytest.mark.service

T0 = 1_780_000_000.0


def event(phase: str, t: float, alarm: str = "spo2_low", priority: str = "high", level: int = 0) -> AlarmEvent:
    return AlarmEvent("bay1", alarm, phase, "physiological", priority, t, "SpO2 LOW 75 < 90", "spo2",  # type: ignore[arg-type]
                      75.0, 90.0, "ox1", level=level)


# --- the outbox ----------------------------------------------------------------------------------------------

def test_the_outbox_keeps_events_in_order_per_target_across_a_reopen(tmp_path: Path) -> None:
    box = Outbox(tmp_path)
    first = box.put(event_json(event("start", T0), "clinic"), ["station", "pager"], T0)
    second = box.put(event_json(event("end", T0 + 5), "clinic"), ["station"], T0 + 5)
    assert box.put(event_json(event("end", T0 + 6), "clinic"), [], T0 + 6) is None  # nobody takes it
    assert first is not None and second is not None and first < second
    box.delivered("station", first)
    box.close()

    again = Outbox(tmp_path)  # bedside restarted: what was not acknowledged is still there, in order
    assert [(p.seq, p.body["phase"]) for p in again.pending("station")] == [(second, "end")]
    assert [(p.seq, p.body["phase"]) for p in again.pending("pager")] == [(first, "start")]
    assert again.counts() == {"station": 1, "pager": 1}
    again.failed("pager", first)
    assert again.pending("pager")[0].attempts == 1
    again.delivered("pager", first)
    again.delivered("station", second)
    assert again.counts() == {}
    assert again._conn.execute("SELECT count(*) FROM events").fetchone() == (0,)  # nothing left behind
    again.close()


def test_events_of_one_tick_are_queued_in_one_transaction_in_order(tmp_path: Path) -> None:
    box = Outbox(tmp_path)
    seqs = box.put_many([(event_json(event("start", T0, f"a{n}"), "clinic"), ["station"] if n != 1 else [])
                         for n in range(3)], T0)
    assert seqs[1] is None and seqs[0] is not None and seqs[2] is not None and seqs[0] < seqs[2]
    assert [p.body["id"] for p in box.pending("station")] == ["a0", "a2"]
    box.close()


def test_several_acknowledged_events_leave_together_and_only_for_their_target(tmp_path: Path) -> None:
    box = Outbox(tmp_path)
    seqs = box.put_many([(event_json(event("start", T0, f"a{n}"), "clinic"), ["mqtt", "station"]) for n in range(4)],
                        T0)
    box.delivered_many("mqtt", [s for s in seqs[:3] if s is not None])
    assert [p.body["id"] for p in box.pending("mqtt")] == ["a3"]
    assert [p.body["id"] for p in box.pending("station")] == ["a0", "a1", "a2", "a3"]  # still owed to the station
    box.delivered_many("station", [s for s in seqs if s is not None])
    assert box.counts() == {"mqtt": 1}
    assert box._conn.execute("SELECT count(*) FROM events").fetchone() == (1,)  # only a3 is still needed
    box.close()


async def test_a_forwarder_stopped_by_an_error_delivers_when_run_again(tmp_path: Path) -> None:
    import asyncio

    from alerts.notify.forwarder import Forwarder
    from alerts.notify.outbox import Pending

    class Flaky:
        def __init__(self) -> None:
            self.sent: list[int] = []
            self.closed = 0
            self.raised = False

        async def send(self, item: Pending) -> None:
            if not self.raised:
                self.raised = True
                raise RuntimeError("a bug in a sender")
            self.sent.append(item.seq)

        async def close(self) -> None:
            self.closed += 1

    box = Outbox(tmp_path)
    seq = box.put(event_json(event("start", T0), "clinic"), ["station"], T0)
    sender = Flaky()
    fwd = Forwarder("station", sender, box, backoff=(0.01,))
    with pytest.raises(RuntimeError):
        await fwd.run()  # the service's _keep_running logs this and runs it again
    assert sender.closed == 0 and box.counts() == {"station": 1}  # the connection is kept, the message too
    task = asyncio.create_task(fwd.run())
    for _ in range(200):
        if box.counts() == {}:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert sender.sent == [seq] and sender.closed == 1 and box.counts() == {}
    box.close()


def test_a_target_no_longer_configured_is_dropped_from_the_outbox(tmp_path: Path) -> None:
    box = Outbox(tmp_path)
    box.put(event_json(event("start", T0), "clinic"), ["old", "station"], T0)
    assert box.drop_target("old") == 1
    assert box.counts() == {"station": 1}
    box.close()


def test_the_event_as_sent_carries_its_sequence_and_an_id() -> None:
    body = with_sequence(event_json(event("start", T0), "clinic", "Bay 1"), 7)
    assert (body["seq"], body["event_id"], body["bay_name"], body["phase"]) == (7, "clinic/7", "Bay 1", "start")
    assert body["ts"] == "2026-05-28T20:26:40.000Z"


# --- routing ------------------------------------------------------------------------------------------------

def test_routing_by_priority_kind_and_escalation_level() -> None:
    router = Router([Route("station"), Route("charge", 1, frozenset({"high"})),
                     Route("doctor", 2, frozenset({"high"}), frozenset({"physiological"}))])
    assert router.targets(event("start", T0)) == ["station"]
    assert router.targets(event("escalated", T0 + 30, level=1)) == ["station", "charge"]
    assert router.targets(event("acknowledged", T0 + 40)) == ["station", "charge"]  # charge learns it was answered
    assert router.targets(event("end", T0 + 50)) == ["station", "charge"]
    assert router.targets(event("start", T0 + 60)) == ["station"]  # a new alarm starts from level 0 again
    assert router.targets(event("start", T0 + 60, "hr_high", "medium")) == ["station"]


# --- escalation through the service: the real engine, an injected clock ---------------------------------------

def service(tmp_path: Path, clock: list[float], **notify: Any) -> Service:
    cfg = parse_config(with_storage({"data_dir": str(tmp_path), "bays": [
        {"id": "bay1", "devices": [{"id": "ox1", "driver": "masimo", "port": "/dev/null"}]},
        {"id": "bay2", "devices": [{"id": "ox2", "driver": "masimo", "port": "/dev/null"}]}],
        "notify": {"targets": [
            {"name": "station", "kind": "hl7", "url": "mllp://127.0.0.1:2575"},
            {"name": "charge", "kind": "webhook", "url": "http://127.0.0.1:9/charge", "secret": "s" * 16,
             "escalation_level": 1, "priorities": ["high"]},
            {"name": "third", "kind": "webhook", "url": "http://127.0.0.1:9/third", "secret": "s" * 16,
             "escalation_level": 2, "priorities": ["high"]}], **notify}}))
    return Service(cfg, clock=lambda: clock[0])


def queued(s: Service, target: str) -> list[tuple[str, str, int]]:
    """The SpO2 alarm's events queued for `target` (bay 2's silent oximeter has its own technical alarm)."""
    return [(p.body["id"], p.body["phase"], p.body["level"]) for p in s.outbox.pending(target)
            if p.body["id"] == "spo2_low"]


def desaturate(s: Service, clock: list[float], seconds: int) -> None:
    for _ in range(seconds):
        s._decide(Observation("bay1", "ox1", "spo2", 75.0, None, clock[0]))
        s.tick()
        clock[0] += 1.0


def test_an_unacknowledged_high_alarm_escalates_at_30_s_and_90_s_and_stops_when_acknowledged(tmp_path: Path) -> None:
    clock = [T0]
    s = service(tmp_path, clock)
    try:
        desaturate(s, clock, 30)  # at or below 80 %: a high alarm at once; t = T0 .. T0 + 29
        assert queued(s, "station") == [("spo2_low", "start", 0)]
        assert queued(s, "charge") == []  # 29 s unacknowledged: not yet
        desaturate(s, clock, 2)  # T0 + 30
        assert queued(s, "charge") == [("spo2_low", "escalated", 1)]
        assert queued(s, "third") == []
        s.acknowledge("bay1", "spo2_low", "nurse.jo")  # at T0 + 32
        desaturate(s, clock, 80)  # past T0 + 90: acknowledged, so no level 2
        assert queued(s, "third") == []
        assert [p for _, p, _ in queued(s, "charge")] == ["escalated", "acknowledged"]
        assert [p for _, p, _ in queued(s, "station")] == ["start", "escalated", "acknowledged"]
    finally:
        s.close()


def test_nobody_answers_so_the_third_target_is_reached_at_90_s_and_the_end_reaches_all(tmp_path: Path) -> None:
    clock = [T0]
    s = service(tmp_path, clock)
    try:
        desaturate(s, clock, 90)
        assert queued(s, "third") == []
        desaturate(s, clock, 1)  # T0 + 90
        assert queued(s, "third") == [("spo2_low", "escalated", 2)]
        for _ in range(200):  # recovered; the high alarm latches until acknowledged, then ends
            s._decide(Observation("bay1", "ox1", "spo2", 97.0, None, clock[0]))
            s.tick()
            clock[0] += 1.0
        s.acknowledge("bay1", "spo2_low", "nurse.jo")
        assert queued(s, "third")[-1][:2] == ("spo2_low", "end")
        assert queued(s, "charge")[-1][:2] == ("spo2_low", "end")
        assert queued(s, "station")[-1][:2] == ("spo2_low", "end")
    finally:
        s.close()


def test_a_failing_target_becomes_a_technical_alarm_on_every_bay_and_ends(tmp_path: Path) -> None:
    clock = [T0]
    s = service(tmp_path, clock, failing_after=60)
    try:
        station = s.notifier.outputs["station"]
        station.failing_since = T0
        clock[0] = T0 + 59
        s.tick()
        assert not [a for a in s.engine.active() if a.start.id.startswith("forwarding_failed")]
        clock[0] = T0 + 60
        s.tick()
        active = [(a.start.bay, a.start.id, a.start.priority, a.start.kind) for a in s.engine.active()]
        assert active == [("bay1", "forwarding_failed:station", "medium", "technical"),
                          ("bay2", "forwarding_failed:station", "medium", "technical")]
        assert "ALARM FORWARDING TO STATION FAILING" in s.engine.active("bay1")[0].start.message
        station.failing_since = None  # delivered again
        clock[0] += 1
        s.tick()
        assert s.engine.active() == []
    finally:
        s.close()


# --- webhook signature and config ---------------------------------------------------------------------------

def test_the_webhook_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    body = b'{"id":"spo2_low"}'
    expected = hmac.new(b"k" * 16, b"1780000000." + body, hashlib.sha256).hexdigest()
    assert signature("k" * 16, "1780000000", body) == "sha256=" + expected
    assert signature("k" * 16, "1780000001", body) != "sha256=" + expected


@pytest.mark.parametrize(("target", "says"), [
    ({"name": "x", "kind": "webhook", "url": "https://h/a"}, "needs secret"),
    ({"name": "x", "kind": "hl7", "url": "http://h:2575"}, "mllp://host:port"),
    ({"name": "mqtt", "kind": "hl7", "url": "mllp://h:2575"}, "taken by the MQTT output"),
    ({"name": "x", "kind": "pager", "url": "mllp://h:2575"}, "notify.targets[0].kind"),
])
def test_a_bad_target_is_named_in_the_config_error(target: dict[str, Any], says: str) -> None:
    with pytest.raises(ConfigError, match="notify") as err:
        parse_config({"notify": {"targets": [target]}}, "bedside.toml")
    assert says in str(err.value) and "bedside.toml" in str(err.value)


def test_the_events_of_two_engines_never_share_an_id() -> None:
    """Each engine of a deployment counts from its own outbox: its name is in the event id and the HL7 control id,
    so a receiver that drops repeats does not drop the standby's events after a takeover."""
    from alerts.notify.hl7_out import control_id

    start = AlarmEvent("bay1", "spo2_low", "start", "physiological", "high", 100.0, "SpO2 LOW")
    one, two = (with_sequence(event_json(start, "hosp", origin=engine), 7) for engine in ("engine-1", "engine-2"))
    assert (one["event_id"], two["event_id"]) == ("hosp/engine-1/7", "hosp/engine-2/7")
    assert with_sequence(event_json(start, "clinic"), 7)["event_id"] == "clinic/7"  # one server: as before
    ids = {control_id(7), control_id(7, "engine-1"), control_id(7, "engine-2")}
    assert len(ids) == 3 and all(len(i) <= 20 for i in ids) and control_id(7) == "BS7"
    assert len(control_id(10**12, "a-very-long-engine-name")) <= 20
