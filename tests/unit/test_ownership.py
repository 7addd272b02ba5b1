"""Which engine holds a ward (monitor/ownership.py): the rule per peer heartbeat, with an injected clock."""

from __future__ import annotations

import pytest

from monitor.ownership import Ownership, Ward

W1 = Ward("ward-1", "engine-a", "engine-b", takeover_after=15.0)
W2 = Ward("ward-2", "engine-b", "engine-a", takeover_after=15.0)


def beat(own: Ownership, peer: str, state: str, at: float, wards: list[str]) -> None:
    own.heartbeat(peer, {"state": state, "instance": peer, "time": at, "interval": 1.0, "wards": wards})


def engines(t0: float = 100.0) -> tuple[Ownership, Ownership]:
    a, b = Ownership("engine-a", [W1, W2]), Ownership("engine-b", [W1, W2])
    a.listening(t0)
    b.listening(t0)
    return a, b


def test_nothing_is_taken_before_the_grace_while_no_peer_has_been_heard() -> None:
    a, _ = engines()
    assert a.decide(101.0) == ([], [])
    assert a.decide(103.0) == (["ward-1", "ward-2"], [])  # the peer never said anything: it is not there


def test_nothing_is_taken_while_not_listening() -> None:
    a = Ownership("engine-a", [W1])
    assert a.decide(1000.0) == ([], [])


def test_each_primary_holds_its_ward_and_the_standby_waits() -> None:
    a, b = engines()
    beat(a, "engine-b", "online", 100.5, ["ward-2"])
    beat(b, "engine-a", "online", 100.5, ["ward-1"])
    assert a.decide(101.0) == (["ward-1"], [])
    assert b.decide(101.0) == (["ward-2"], [])


def test_a_standby_takes_over_when_the_last_will_says_offline() -> None:
    _, b = engines()
    beat(b, "engine-a", "online", 100.5, ["ward-1"])
    b.decide(101.0)
    assert b.held == {"ward-2"}
    beat(b, "engine-a", "offline", 102.0, [])
    assert b.decide(102.1) == (["ward-1"], [])


def test_a_standby_takes_over_when_the_heartbeat_stops_for_takeover_after() -> None:
    _, b = engines()
    beat(b, "engine-a", "online", 100.0, ["ward-1"])
    b.decide(101.0)
    assert b.decide(114.9) == ([], [])  # a frozen engine: its retained `online` ages out
    assert b.next_change(114.9) == pytest.approx(115.0)
    assert b.decide(115.1) == (["ward-1"], [])


def test_a_primary_that_comes_back_leaves_the_ward_to_the_standby_that_holds_it() -> None:
    a, b = engines()
    beat(b, "engine-a", "offline", 100.0, [])
    b.decide(103.5)
    assert b.held == {"ward-1", "ward-2"}
    a.listening(200.0)  # engine A restarts
    beat(a, "engine-b", "online", 200.1, ["ward-1", "ward-2"])
    assert a.decide(200.2) == ([], [])  # no automatic hand-back: it would be a gap in the alarms
    beat(a, "engine-b", "offline", 300.0, [])  # until the standby stops
    assert a.decide(300.1) == (["ward-1", "ward-2"], [])


def test_when_both_hold_a_ward_the_primary_keeps_it_and_the_standby_yields() -> None:
    a, b = engines()
    a.held, b.held = {"ward-1"}, {"ward-1", "ward-2"}  # a network split has healed
    beat(a, "engine-b", "online", 200.0, ["ward-1", "ward-2"])
    beat(b, "engine-a", "online", 200.0, ["ward-1"])
    assert a.decide(200.1) == ([], [])
    assert b.decide(200.1) == ([], ["ward-1"])


def test_a_malformed_heartbeat_changes_nothing() -> None:
    _, b = engines()
    beat(b, "engine-a", "online", 100.5, ["ward-1"])
    b.heartbeat("engine-a", {"state": "sleepy", "time": "noon"})
    b.decide(101.0)
    assert b.held == {"ward-2"}


def test_an_engine_must_belong_to_its_wards() -> None:
    with pytest.raises(ValueError, match="neither the engine nor the standby"):
        Ownership("engine-c", [W1])


def test_a_ward_without_a_standby_is_always_held_by_its_engine() -> None:
    own = Ownership("engine-a", [Ward("solo", "engine-a")])
    assert own.decide(0.0) == (["solo"], [])
