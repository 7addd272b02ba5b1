"""The nursing-station console's state and screen, sans-I/O (`bedside station`; the I/O is monitor/station_app.py).

`StationState.apply(topic, payload, now)` takes one message of bedside's MQTT alarm channel (schema `bedside/v1`:
a bay's retained alarm snapshot, its alarm events, a service's heartbeat and last will) and returns the reasons to
ring the terminal bell; `tick(now)`, `link_up` and `link_down` do the same for what time and the broker link
change. `render(state, now)` draws the screen as a rich renderable that fits the terminal (80x24 and up).

The payloads are read from the wire here, independently of the publisher's code (alerts/notify), so a mistake on
either side of the contract shows up rather than being shared. A malformed message never raises: it is counted
and shown in the footer, and whatever of it can be read is used (an alarm of unknown priority shows as high).

Bedside is *watched* when the broker link is up and every service's heartbeat says `online` and arrived within
3 x its `interval`; anything else is a full-width red banner. The bell rings once per new high-priority alarm (a
(bay, id, since) not seen before, unless already acknowledged when first seen) and once each time the banner
appears (bedside offline, heartbeat stale or never heard, broker connection lost).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from rich.align import Align
from rich.console import Group, RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

PRIORITIES = ("high", "medium", "low")
MARK = {"high": "!!!", "medium": "!!", "low": "!"}
COLOUR = {"high": "red", "medium": "yellow", "low": "cyan"}
STALE_FACTOR = 3.0  # a heartbeat older than this many intervals means bedside is not running
DEFAULT_INTERVAL = 5.0  # s: bedside's default heartbeat interval, assumed until a heartbeat names its own
FORGET_AFTER = 600.0  # s: a high alarm gone this long from every snapshot may be forgotten (its bell is spent)

Link = Literal["connecting", "up", "down"]
AlarmKey = tuple[str, str, float | None]


@dataclass(frozen=True)
class Alarm:
    """One active alarm of a bay's snapshot, as much of it as the console shows."""

    id: str
    priority: str
    message: str
    since: float | None
    acknowledged_by: str | None = None
    paused_until: float | None = None
    latched: bool = False
    escalation: int = 0


@dataclass(frozen=True)
class Bay:
    """A bay's latest snapshot (the retained message of its alarms topic)."""

    id: str
    name: str
    time: float | None
    alarms: tuple[Alarm, ...]


@dataclass(frozen=True)
class Heartbeat:
    """A bedside service's latest heartbeat; `received` is this console's clock (staleness never trusts theirs)."""

    instance: str
    state: str
    interval: float
    received: float


@dataclass(frozen=True)
class Verdict:
    """Whether the nurse can trust the screen: True watched, False a banner (`title`, `detail`), None not yet."""

    watched: bool | None
    title: str
    detail: str


class Malformed(ValueError):
    """A message this console cannot read (the reason is shown in the footer)."""


@dataclass
class StationState:
    site: str
    broker: str  # as shown in the header (never with a password)
    started: float = field(default_factory=time.time)
    link: Link = "connecting"
    link_detail: str = ""
    ever_connected: bool = False
    connected_at: float | None = None
    bays: dict[str, Bay] = field(default_factory=dict)
    heartbeats: dict[str, Heartbeat] = field(default_factory=dict)
    messages: int = 0
    malformed: int = 0
    last_malformed: str = ""
    last_event: str = ""
    notice: str = ""  # the last warning of the runner itself (shown in the footer)
    _rung: dict[AlarmKey, float] = field(default_factory=dict)  # high alarms seen -> when last seen
    _last_verdict: bool | None = None  # the last definite verdict (None: none yet)

    # --- input -------------------------------------------------------------------------------------------------

    def apply(self, topic: str, payload: bytes, now: float) -> list[str]:
        """One MQTT message; returns why to ring the bell (one reason per ring, usually none)."""
        self.messages += 1
        bells: list[str] = []
        try:
            bells += self._apply(topic, payload, now)
        except Malformed as exc:
            self.malformed += 1
            self.last_malformed = f"{topic}: {exc}"
        except Exception as exc:  # a shape nobody foresaw must not take the nurses' console down
            self.malformed += 1
            self.last_malformed = f"{topic}: unreadable ({type(exc).__name__})"
        return bells + self.tick(now)

    def tick(self, now: float) -> list[str]:
        """What time alone changes: the bell when the banner appears (e.g. a heartbeat that went stale)."""
        self._forget(now)
        verdict = self.verdict(now)
        if verdict.watched is None:
            return []
        before, self._last_verdict = self._last_verdict, verdict.watched
        if verdict.watched is False and before is not False:
            return [f"{verdict.title}: {verdict.detail}"]
        return []

    def link_up(self, now: float) -> list[str]:
        self.link, self.link_detail, self.ever_connected, self.connected_at = "up", "", True, now
        return self.tick(now)

    def link_down(self, now: float, detail: str) -> list[str]:
        self.link, self.link_detail = "down", detail
        return self.tick(now)

    def _apply(self, topic: str, payload: bytes, now: float) -> list[str]:
        parts = topic.split("/")
        if len(parts) != 6 or parts[:2] != ["bedside", "v1"] or parts[2] != self.site:
            raise Malformed("not a bedside/v1 topic of this site")
        kind, name, leaf = parts[3], parts[4], parts[5]
        if kind == "service" and leaf == "heartbeat":
            if not payload:  # the retained heartbeat was cleared: that service is retired
                self.heartbeats.pop(name, None)
                return []
            self._heartbeat(name, _json(payload), now)
            return []
        if kind == "bay" and leaf == "alarms":
            if not payload:  # the retained snapshot was cleared: the bay is no longer watched
                self.bays.pop(name, None)
                return []
            return self._snapshot(name, _json(payload), now)
        if kind == "bay" and leaf == "alarm_events":
            return self._event(name, _json(payload), now)
        raise Malformed("unexpected topic")

    def _heartbeat(self, instance: str, data: dict[str, Any], now: float) -> None:
        state = data.get("state")
        interval = _number(data.get("interval", DEFAULT_INTERVAL))
        if interval is None or interval <= 0:
            interval = DEFAULT_INTERVAL
        # an unreadable state counts as offline (fail safe) and as malformed
        self.heartbeats[instance] = Heartbeat(instance, state if state in ("online", "offline") else "unknown",
                                              interval, now)
        if state not in ("online", "offline"):
            raise Malformed(f"heartbeat state {str(state)[:20]!r}")

    def _snapshot(self, bay: str, data: dict[str, Any], now: float) -> list[str]:
        alarms_in = data.get("alarms")
        if not isinstance(alarms_in, list):
            raise Malformed("snapshot without an alarms list")
        # the latest message replaces the bay's snapshot: MQTT keeps one topic's messages in order, and an "older"
        # time may only mean bedside's clock was set back (ignoring it would hide alarms)
        when = _number(data.get("time"))
        name = data.get("bay_name")
        problems: list[str] = []
        alarms = tuple(a for a in (_alarm(x, problems) for x in alarms_in) if a is not None)
        self.bays[bay] = Bay(bay, name if isinstance(name, str) and name else bay, when, alarms)
        bells = []
        for a in alarms:
            if a.priority == "high" and self._new_high((bay, a.id, a.since), now) and a.acknowledged_by is None:
                bells.append(f"high alarm: {self.bays[bay].name} {a.message}")
        if problems:
            self.malformed += 1
            self.last_malformed = f"bay {bay}: {problems[0]}"
        return bells

    def _event(self, bay: str, data: dict[str, Any], now: float) -> list[str]:
        phase, alarm_id, priority = data.get("phase"), data.get("id"), data.get("priority")
        if not isinstance(phase, str) or not isinstance(alarm_id, str):
            raise Malformed("event without phase or id")
        message = data.get("message") if isinstance(data.get("message"), str) else alarm_id
        since = _number(data.get("time"))
        name = self.bays[bay].name if bay in self.bays else str(data.get("bay_name") or bay)
        at = time.strftime("%H:%M:%S", time.localtime(since if since is not None else now))
        by = data.get("by")
        self.last_event = f"{at} {name} {message} {phase}{f' by {by}' if isinstance(by, str) and by else ''}"
        if phase == "start" and priority == "high" and self._new_high((bay, alarm_id, since), now):
            return [f"high alarm: {name} {message}"]
        return []

    def _new_high(self, key: AlarmKey, now: float) -> bool:
        new = key not in self._rung
        self._rung[key] = now
        return new

    def _forget(self, now: float) -> None:
        active = {(b.id, a.id, a.since) for b in self.bays.values() for a in b.alarms}
        for key, seen in list(self._rung.items()):
            if key not in active and now - seen > FORGET_AFTER:
                del self._rung[key]

    # --- what it means ------------------------------------------------------------------------------------------

    def verdict(self, now: float) -> Verdict:
        if self.link == "down":
            title = "BROKER CONNECTION LOST" if self.ever_connected else "NO CONNECTION TO BROKER"
            return Verdict(False, title, f"{self.broker}: {self.link_detail or 'unreachable'}")
        if self.link == "connecting":
            return Verdict(None, "", "connecting to the broker")
        if not self.heartbeats:
            waited = now - (self.connected_at or now)
            if waited > STALE_FACTOR * DEFAULT_INTERVAL:
                return Verdict(False, "BEDSIDE OFFLINE", f"no heartbeat from bedside in {waited:.0f} s")
            return Verdict(None, "", "waiting for bedside's heartbeat")
        for hb in sorted(self.heartbeats.values(), key=lambda h: h.instance):
            if hb.state != "online":
                return Verdict(False, "BEDSIDE OFFLINE",
                               f"{hb.instance} says {hb.state} (at {_clock(hb.received)}): alarms are not reaching "
                               "this station")
            age = now - hb.received
            if age > STALE_FACTOR * hb.interval:
                return Verdict(False, "BEDSIDE OFFLINE",
                               f"no heartbeat from {hb.instance} for {age:.0f} s (expected every {hb.interval:g} s)")
        return Verdict(True, "", "")

    def active(self) -> list[tuple[Bay, Alarm]]:
        """Every bay's active alarms: high first, then medium, low; oldest first within a priority."""
        rows = [(b, a) for b in self.bays.values() for a in b.alarms]
        return sorted(rows, key=lambda r: (PRIORITIES.index(r[1].priority), r[1].since or 0.0, _natural(r[0].name)))

    def quiet(self) -> list[Bay]:
        return sorted((b for b in self.bays.values() if not b.alarms), key=lambda b: _natural(b.name))


# --- reading payloads -----------------------------------------------------------------------------------------


def _json(payload: bytes) -> dict[str, Any]:
    try:
        data = json.loads(payload)
    except (UnicodeDecodeError, ValueError):
        raise Malformed("not JSON") from None
    if not isinstance(data, dict):
        raise Malformed("not a JSON object")
    return data


def _number(x: object) -> float | None:
    """A JSON number as a float; None for anything else (a bool, a string, NaN, null)."""
    if isinstance(x, int | float) and not isinstance(x, bool) and x == x:
        return float(x)
    return None


def _alarm(x: object, problems: list[str]) -> Alarm | None:
    if not isinstance(x, dict) or not isinstance(x.get("id"), str):
        problems.append("an alarm without an id")
        return None
    priority = x.get("priority")
    if priority not in PRIORITIES:
        problems.append(f"alarm {x['id'][:40]} has priority {str(priority)[:10]!r}: shown as high")
        priority = "high"
    message = x.get("message")
    by = x.get("acknowledged_by")
    escalation = _number(x.get("escalation"))
    return Alarm(x["id"], str(priority), message if isinstance(message, str) and message else x["id"],
                 _number(x.get("since")), by if isinstance(by, str) and by else None,
                 _number(x.get("paused_until")), x.get("latched") is True,
                 int(escalation) if escalation is not None and abs(escalation) < 1e6 else 0)


def _natural(name: str) -> tuple[object, ...]:
    """Bay 2 before Bay 10."""
    return tuple(int(p) if p.isdigit() else p.lower() for p in re.split(r"(\d+)", name))


# --- the screen -----------------------------------------------------------------------------------------------


def _clock(t: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(t))


def duration(seconds: float) -> str:
    """m:ss, or h:mm:ss from an hour."""
    s = max(0, int(seconds))
    h, rest = divmod(s, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


def marks(alarm: Alarm, now: float) -> str:
    """ACK <who>, PAUSED m:ss (audio paused, time left), LATCHED, ESC <level>."""
    out = []
    if alarm.acknowledged_by:
        out.append(f"ACK {alarm.acknowledged_by}")
    if alarm.paused_until is not None and alarm.paused_until > now:
        out.append(f"PAUSED {duration(alarm.paused_until - now)}")
    if alarm.latched:
        out.append("LATCHED")
    if alarm.escalation > 0:
        out.append(f"ESC {alarm.escalation}")
    return " ".join(out)


def _header(state: StationState, verdict: Verdict, now: float) -> Table:
    grid = Table.grid(expand=True)
    grid.add_column(ratio=1, no_wrap=True, overflow="ellipsis")
    grid.add_column(justify="right", no_wrap=True)
    grid.add_row(Text.assemble(("BEDSIDE STATION", "bold"), f"  site {state.site}  broker {state.broker}"),
                 Text(f" {_clock(now)}", style="bold"))
    link = {"up": ("link up", "green"), "down": ("BROKER LINK DOWN", "bold red"),
            "connecting": ("connecting to the broker", "yellow")}[state.link]
    bedside: tuple[str, str] = ("", "")
    if state.link == "up":
        bedside = (("bedside online", "green") if verdict.watched else ("waiting for bedside", "yellow")
                   if verdict.watched is None else ("BEDSIDE OFFLINE", "bold red"))
    beat = max(state.heartbeats.values(), key=lambda h: h.received, default=None)
    heard = f"heartbeat {now - beat.received:.0f} s ago" if beat and state.link == "up" else ""
    grid.add_row(Text.assemble(link, "  ", bedside, "  ", (heard, "dim")), "")
    return grid


def _banner(verdict: Verdict) -> RenderableType:
    body = Text(justify="center", no_wrap=False)
    body.append(f"!!!  {verdict.title}  !!!\n", style="bold")
    body.append(verdict.detail)
    return Padding(Align.center(body), (1, 1), style="bold reverse red", expand=True)


def _alarm_table(rows: list[tuple[Bay, Alarm]], now: float, dim: bool) -> Table:
    table = Table(box=None, expand=True, padding=(0, 1, 0, 0), show_edge=False, header_style="dim")
    table.add_column("", width=3, no_wrap=True)
    table.add_column("BAY", max_width=14, no_wrap=True, overflow="ellipsis")
    table.add_column("ALARM", ratio=1, no_wrap=True, overflow="ellipsis")
    table.add_column("FOR", justify="right", no_wrap=True, min_width=5)
    table.add_column("STATE", no_wrap=True, max_width=24, overflow="ellipsis")
    for bay, a in rows:
        colour = COLOUR[a.priority]
        style = "dim" if dim else f"bold {colour}" if a.priority == "high" and not a.acknowledged_by else colour
        age = duration(now - a.since) if a.since is not None else "?"
        table.add_row(MARK[a.priority], bay.name, a.message, age, marks(a, now), style=style)
    return table


def render(state: StationState, now: float, width: int = 80, height: int = 24) -> RenderableType:
    """The whole screen for a terminal of `width` x `height` (alarms that do not fit are counted, lowest last)."""
    verdict = state.verdict(now)
    parts: list[RenderableType] = [_header(state, verdict, now), Text("─" * width, style="dim")]
    used = 3
    if verdict.watched is False:
        parts.append(_banner(verdict))
        used += 4 + len(verdict.detail) // max(1, width - 4)
    elif verdict.watched is None:
        parts.append(Text(f"{verdict.detail}…", style="yellow"))
        used += 1
    rows = state.active()
    quiet = state.quiet()
    quiet_text = Text.assemble(("Quiet: ", "green"), " · ".join(b.name for b in quiet)) if quiet else None
    footer = _footer(state)
    used += 1 + (len(quiet_text.plain) // width + 1 if quiet_text else 0) + (1 if rows else 0)
    if verdict.watched is False and (rows or quiet):
        parts.append(Text("Last known alarms, NOT LIVE:", style="bold"))
        used += 1
    if not state.bays:
        parts.append(Text("No bay has reported yet.", style="dim"))
    if rows:
        room = max(1, height - used)
        shown = rows if len(rows) <= room else rows[: room - 1]
        parts.append(_alarm_table(shown, now, dim=verdict.watched is False))
        if len(shown) < len(rows):
            parts.append(Text(f"… and {len(rows) - len(shown)} more alarms (lower priority)", style="bold"))
    if quiet_text:
        parts.append(quiet_text)
    parts.append(footer)
    return Group(*parts)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _footer(state: StationState) -> Text:
    text = Text(style="dim", no_wrap=True, overflow="ellipsis")
    alarms = sum(len(b.alarms) for b in state.bays.values())
    text.append(f"{_count(len(state.bays), 'bay')}, {_count(alarms, 'alarm')}")
    if state.last_event:
        text.append(f" · last: {state.last_event}")
    if state.malformed:
        text.append(f" · malformed: {state.malformed} ({state.last_malformed})", style="bold yellow")
    if state.notice:
        text.append(f" · {state.notice}")
    text.append(" · Ctrl-C quits")
    return text
