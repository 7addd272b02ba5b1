"""Which engine holds a ward (monitor/ownership.py): the rule per peer heartbeat, with an injected clock."""

from __future__ import annotations

import pytest

from monitor.ownership import GRACE, Ownership, Ward

W1 = Ward("ward-1", "engine-a", "engine-b", takeover_after=15.0)
W2 = Ward("ward-2", "engine-b", "engine-a", takeover_after=15.0)
T0 = 100.0
LATER = T0 + GRACE + 0.5  # listening long enough for the retained heartbeats to have come


def beat(own: Ownership, peer: str, state: str, at: float, wards: list[str], session: str | None = "s1",
         heard_at: float | None = -1.0) -> None:
    """A heartbeat sent at `at`; heard then (default), or retained (heard_at None: aged by its own time)."""
    body: dict[str, object] = {"state": state, "instance": peer, "time": at, "interval": 1.0, "wards": wards}
    if session is not None:
        body["session"] = session
    own.heartbeat(peer, body, at if heard_at == -1.0 else heard_at)


def engines() -> tuple[Ownership, Ownership]:
    a, b = Ownership("engine-a", [W1, W2]), Ownership("engine-b", [W1, W2])
    a.listening(T0)
    b.listening(T0)
    return a, b


def test_nothing_is_taken_before_the_grace_while_no_peer_has_been_heard() -> None:
    a, _ = engines()
    assert a.decide(T0 + 1) == ([], [])
    assert a.decide(LATER) == (["ward-1", "ward-2"], [])  # the peer never said anything: it is not there


def test_nothing_changes_while_not_listening() -> None:
    a = Ownership("engine-a", [W1])
    assert a.decide(1000.0) == ([], [])
    b = Ownership("engine-b", [W1])
    b.listening(T0)
    beat(b, "engine-a", "online", T0, ["ward-1"])
    b.decide(LATER)
    b.listening(None)  # this engine's link is down: not hearing engine A is not engine A gone
    assert b.decide(T0 + 100) == ([], [])
    b.listening(T0 + 200)  # up again: engine A's retained heartbeat comes within the grace
    beat(b, "engine-a", "online", T0 + 199, ["ward-1"], heard_at=None)
    assert b.decide(T0 + 200 + GRACE + 0.1) == ([], [])


def test_each_primary_holds_its_ward_and_the_standby_waits() -> None:
    a, b = engines()
    beat(a, "engine-b", "online", T0 + 0.5, ["ward-2"])
    beat(b, "engine-a", "online", T0 + 0.5, ["ward-1"])
    assert a.decide(LATER) == (["ward-1"], [])
    assert b.decide(LATER) == (["ward-2"], [])


def test_a_standby_takes_over_when_the_last_will_says_offline() -> None:
    _, b = engines()
    beat(b, "engine-a", "online", T0 + 0.5, ["ward-1"])
    b.decide(LATER)
    assert b.held == {"ward-2"}
    beat(b, "engine-a", "offline", T0 - 50, [], heard_at=LATER + 1)  # the will carries its connection's time
    assert b.decide(LATER + 1.1) == (["ward-1"], [])


def test_a_stale_will_of_a_replaced_connection_is_ignored() -> None:
    _, b = engines()
    beat(b, "engine-a", "online", T0 + 0.5, ["ward-1"], session="new")
    b.decide(LATER)
    beat(b, "engine-a", "offline", T0 - 50, [], session="old", heard_at=LATER + 1)  # the old connection's will
    assert b.decide(LATER + 1.1) == ([], [])
    beat(b, "engine-a", "offline", T0 - 10, [], session="new", heard_at=LATER + 2)  # its own: it is gone
    assert b.decide(LATER + 2.1) == (["ward-1"], [])


def test_a_standby_takes_over_when_the_heartbeat_stops_for_takeover_after() -> None:
    _, b = engines()
    beat(b, "engine-a", "online", T0 + 1, ["ward-1"])
    b.decide(LATER)
    assert b.decide(T0 + 15.9) == ([], [])  # a frozen engine: its `online` ages out, on this engine's clock
    assert b.next_change(T0 + 15.9) == pytest.approx(T0 + 16)
    assert b.decide(T0 + 16.1) == (["ward-1"], [])


def test_heartbeat_age_is_this_engines_clock_not_the_peers() -> None:
    _, b = engines()
    beat(b, "engine-a", "online", T0 - 60, ["ward-1"], heard_at=T0 + 1)  # engine A's clock a minute behind
    assert b.decide(LATER) == (["ward-2"], [])  # alive all the same
    beat(b, "engine-a", "online", T0 - 100, ["ward-1"], heard_at=None)  # but a retained one counts its own age
    assert b.decide(LATER + 1) == (["ward-1"], [])


def test_a_primary_that_comes_back_leaves_the_ward_to_the_standby_that_holds_it() -> None:
    a, b = engines()
    beat(b, "engine-a", "offline", T0, [])
    b.decide(LATER)
    assert b.held == {"ward-1", "ward-2"}
    a.listening(200.0)  # engine A restarts
    beat(a, "engine-b", "online", 200.1, ["ward-1", "ward-2"])
    assert a.decide(200 + GRACE + 0.2) == ([], [])  # no automatic hand-back: it would be a gap in the alarms
    beat(a, "engine-b", "offline", 300.0, [])  # until the standby stops
    assert a.decide(300.1) == (["ward-1", "ward-2"], [])


def test_when_both_hold_a_ward_the_primary_keeps_it_and_the_standby_yields() -> None:
    a, b = engines()
    a.held, b.held = {"ward-1"}, {"ward-1", "ward-2"}  # a network split has healed
    beat(a, "engine-b", "online", 200.0, ["ward-1", "ward-2"])
    beat(b, "engine-a", "online", 200.0, ["ward-1"])
    assert a.contested(200.1) == ["ward-1"]  # it republishes its picture of the ward
    assert a.decide(200.1) == ([], [])
    assert b.decide(200.1) == ([], ["ward-1"])


def test_a_malformed_heartbeat_changes_nothing() -> None:
    _, b = engines()
    beat(b, "engine-a", "online", T0 + 0.5, ["ward-1"])
    b.heartbeat("engine-a", {"state": "sleepy", "time": "noon"}, T0 + 1)
    b.heartbeat("engine-a", {"state": "offline", "time": True}, T0 + 1)
    b.decide(LATER)
    assert b.held == {"ward-2"}


def test_an_engine_must_belong_to_its_wards() -> None:
    with pytest.raises(ValueError, match="neither the engine nor the standby"):
        Ownership("engine-c", [W1])


def test_a_ward_without_a_standby_is_always_held_by_its_engine() -> None:
    own = Ownership("engine-a", [Ward("solo", "engine-a")])
    assert own.decide(0.0) == (["solo"], [])
