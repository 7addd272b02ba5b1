"""Which wards an engine holds now: the rule that keeps each ward's alarm state in exactly one engine.

A ward (config `[[wards]]`) has a primary engine and, optionally, a standby. Each engine publishes a retained
heartbeat (`bedside/v1/<site>/service/<engine>/heartbeat`) every few seconds that names the wards it holds, with a
retained last will `offline`; each reads its peer's. The rule, per ward, at any moment:

- the peer is *alive* when its last heartbeat said `online` and was heard less than the ward's `takeover_after`
  ago (a killed engine's will says `offline` at once; a frozen one stops beating and ages out); ages are taken on
  this engine's clock, but for a retained heartbeat (which may be old) its own time;
- peer alive and holding the ward: the standby leaves it to the peer; so does the primary, unless it holds the
  ward itself too (both holding, as after a network split heals: the primary keeps it, the standby yields);
- peer alive and not holding it: the primary takes it, the standby waits;
- peer not alive: take it;
- while this engine cannot hear (its subscription is down), and for `grace` seconds after it connects (until the
  retained heartbeats have arrived), nothing changes: not hearing a peer is not the peer being gone;
- an `offline` naming another connection (`session`) than the peer's latest `online` is a stale last will of a
  connection the peer has already replaced, and is ignored.

There is no automatic hand-back: a standby that took a ward keeps it until it stops; the primary then takes it
back within a moment (the standby's will). Pure and clock-injected, like the alarm engine.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

GRACE = 3.0  # s of listening before a peer never heard of is taken to be down


@dataclass(frozen=True, slots=True)
class Ward:
    """A ward as ownership sees it."""

    id: str
    engine: str
    standby: str | None = None
    takeover_after: float = 15.0


@dataclass(frozen=True, slots=True)
class Peer:
    """What the last heartbeat of another engine said, and when it was heard."""

    online: bool
    time: float  # the heartbeat's own time (the peer's clock)
    heard_at: float  # when it was heard here (this clock); for a retained one, its own time
    holds: frozenset[str] = frozenset()
    session: str | None = None  # the peer's connection the heartbeat belongs to


@dataclass(slots=True)
class Ownership:
    """The wards `me` holds, decided again whenever a heartbeat arrives or time passes (`decide`)."""

    me: str
    wards: list[Ward]
    grace: float = GRACE
    held: set[str] = field(default_factory=set)
    peers: dict[str, Peer] = field(default_factory=dict)
    listening_since: float | None = None  # when the heartbeat subscription was made; None: not listening

    def __post_init__(self) -> None:
        for w in self.wards:
            if self.me not in (w.engine, w.standby):
                raise ValueError(f"engine {self.me!r} is neither the engine nor the standby of ward {w.id!r}")

    def peer_names(self) -> list[str]:
        """The engines whose heartbeats this one must read."""
        return sorted({p for w in self.wards for p in (w.engine, w.standby) if p is not None and p != self.me})

    def listening(self, now: float | None) -> None:
        """The heartbeat subscription is up since `now` (None: it is down). While it is down, and for `grace` s
        after it comes up (until the retained heartbeats are in), nothing is taken or given up: an engine that
        cannot hear its peer must not conclude that the peer is gone."""
        self.listening_since = now

    def heartbeat(self, peer: str, body: Mapping[str, Any], heard_at: float | None = None) -> None:
        """A heartbeat of `peer` (its JSON, schema $defs/heartbeat), heard at `heard_at` (this clock; None for a
        retained message, which may be old: its own time counts). A malformed one is ignored, and so is an
        `offline` of another connection than the peer's latest `online` (a stale last will)."""
        state, when, wards, session = body.get("state"), body.get("time"), body.get("wards", []), body.get("session")
        if state not in ("online", "offline") or not isinstance(when, int | float) or isinstance(when, bool) \
                or not isinstance(wards, list):
            return
        session = session if isinstance(session, str) else None
        last = self.peers.get(peer)
        if state == "offline" and last is not None and last.online and session is not None \
                and last.session is not None and session != last.session:
            return
        self.peers[peer] = Peer(state == "online", float(when), float(when) if heard_at is None else heard_at,
                                frozenset(str(w) for w in wards), session)

    def alive(self, peer: str, ward: Ward, now: float) -> bool:
        p = self.peers.get(peer)
        return p is not None and p.online and now - p.heard_at <= ward.takeover_after

    def should_hold(self, ward: Ward, now: float) -> bool:
        primary = ward.engine == self.me
        peer = ward.standby if primary else ward.engine
        if peer is None:
            return True
        if self.listening_since is None or now - self.listening_since < self.grace:
            return ward.id in self.held
        if not self.alive(peer, ward, now):
            return True
        if ward.id in self.peers[peer].holds:
            return primary and ward.id in self.held
        return primary

    def contested(self, now: float) -> list[str]:
        """The wards held here that a live peer says it holds too (a split that is healing)."""
        out = []
        for w in self.wards:
            peer = w.standby if w.engine == self.me else w.engine
            if w.id in self.held and peer is not None and self.alive(peer, w, now) and w.id in self.peers[peer].holds:
                out.append(w.id)
        return out

    def decide(self, now: float) -> tuple[list[str], list[str]]:
        """Update `held`; returns the wards gained and the wards given up now."""
        want = {w.id for w in self.wards if self.should_hold(w, now)}
        gained, lost = sorted(want - self.held), sorted(self.held - want)
        self.held = want
        return gained, lost

    def next_change(self, now: float) -> float:
        """The latest time by which `decide` must run again (a peer's heartbeat ageing out, the grace ending)."""
        times = [now + 1.0]
        if self.listening_since is not None:
            times.append(self.listening_since + self.grace)
        for w in self.wards:
            peer = w.standby if w.engine == self.me else w.engine
            p = self.peers.get(peer) if peer is not None else None
            if p is not None and p.online:
                times.append(p.heard_at + w.takeover_after)
        return min(t for t in times if t >= now) if any(t >= now for t in times) else now + 1.0


def wards_from(configs: Iterable[Any]) -> list[Ward]:
    """Ownership's wards from config `[[wards]]` entries (monitor.config.WardConfig)."""
    return [Ward(w.id, w.engine, w.standby, w.takeover_after) for w in configs]
