"""What must hold after every call of a parser of untrusted bytes, whatever the bytes: the oracle of the fuzzer.

A parser that raises has crashed (the fuzzer counts it as a crash); one that returns but breaks its contract raises
`Violation` here. The contract, from drivers/codec.py, alerts/notify/mllp.py and alerts/notify/pcd04.py:

- device codecs (`CheckedCodec`): `feed` returns device events only; a reading is of a vital the device measures,
  finite and plausible (monitor/vitals.py), its device time finite or None; conditions start and end in turn (no
  start of an active one, no end of an inactive one); the counters of decoded and rejected frames never go down;
  what the codec holds for the next call stays under its bound (no input can make it grow without end).
- MQTT (`CheckedMqtt`): each numerics or presence message is either decoded or counted as rejected, exactly once.
- MLLP (`CheckedMllp`): messages are non-empty text with no frame bytes, no longer than the decoder's limit; its
  counters never go down; what it holds stays under `max_size + 1` bytes; each message then goes to `parse_ack`.
- `parse_ack` (`CheckedAck`): returns an ACK with a known code and a control id, or raises ValueError with a reason;
  nothing else.
- every stream parser (`same_however_cut`): what it decodes from a byte stream does not depend on how the stream
  was cut into reads (a serial read returns whatever arrived within its timeout).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Sequence
from typing import Any, Protocol

from alerts.notify.mllp import MllpDecoder
from alerts.notify.pcd04 import ACK_CODES, parse_ack
from drivers.codec import Codec
from drivers.mqtt_numerics import MqttNumericsCodec
from monitor.model import Condition, DeviceCondition, Reading
from monitor.vitals import VITALS, is_plausible

MLLP_START = b"\x0b"
MLLP_END = "\x1c\r"


class Violation(AssertionError):
    """The parser returned, but broke its contract."""


class Checked(Protocol):
    """A parser under test: `feed` gives it one chunk (a read from a stream, or one message) and checks it."""

    def feed(self, data: bytes) -> None: ...


class EventChecker:
    """Checks the device events of one codec instance, call after call."""

    def __init__(self, vitals: Collection[str], *, edges: bool = True) -> None:
        self.vitals = frozenset(vitals)
        self.edges = edges
        self.active: set[tuple[Condition, str | None]] = set()
        self.readings = 0

    def check(self, events: object) -> None:
        if not isinstance(events, list):
            raise Violation(f"returned {type(events).__name__}, not a list of events")
        for e in events:
            if isinstance(e, Reading):
                self.readings += 1
                if e.vital not in self.vitals:
                    raise Violation(f"reading of {e.vital!r}, which this device does not measure")
                if not isinstance(e.value, float) or not math.isfinite(e.value) or not is_plausible(e.vital, e.value):
                    raise Violation(f"reading {e.vital}={e.value!r} is not a possible value")
                if e.device_time is not None and not math.isfinite(e.device_time):
                    raise Violation(f"device time {e.device_time!r} is not finite")
            elif isinstance(e, DeviceCondition):
                if not isinstance(e.condition, Condition) or not isinstance(e.active, bool):
                    raise Violation(f"malformed condition {e!r}")
                if e.vital is not None and e.vital not in VITALS:
                    raise Violation(f"condition for {e.vital!r}, which is no vital")
                key = (e.condition, e.vital)
                if self.edges and e.condition != Condition.DEVICE_LOST:
                    if e.active == (key in self.active):
                        raise Violation(f"{'start' if e.active else 'end'} of {key} while it is "
                                        f"{'active' if e.active else 'not active'}")
                    if e.active:
                        self.active.add(key)
                    else:
                        self.active.discard(key)
            else:
                raise Violation(f"not a device event: {e!r}")


def _grows(before: tuple[int, ...], after: tuple[int, ...], what: str) -> None:
    if any(a < b for a, b in zip(after, before, strict=True)):
        raise Violation(f"{what} went down: {before} -> {after}")


class CheckedCodec:
    """A sans-I/O device codec fed chunk by chunk, checked after each chunk."""

    def __init__(self, codec: Codec, vitals: Collection[str], held: Callable[[], int], max_held: int) -> None:
        self.codec = codec
        self.events = EventChecker(vitals)
        self._held = held
        self.max_held = max_held

    def feed(self, data: bytes) -> None:
        stats = self.codec.stats
        frames, rejected = stats.frames, stats.rejected
        self.events.check(self.codec.feed(data))
        if stats.frames < frames or stats.rejected < rejected:
            raise Violation(f"frames/rejected counters went down: {(frames, rejected)} -> "
                            f"{(stats.frames, stats.rejected)}")
        held = self._held()
        if held > self.max_held:
            raise Violation(f"holds {held} bytes for the next call, more than its bound of {self.max_held}")


class CheckedMqtt:
    """One device's MQTT messages: each chunk is one payload, read both as numerics and as presence."""

    def __init__(self) -> None:
        self.codec = MqttNumericsCodec()
        self.events = EventChecker(VITALS)

    def feed(self, data: bytes) -> None:
        stats = self.codec.stats
        before = (stats.frames, stats.rejected)
        events = self.codec.numerics(data)
        self.events.check(events)
        moved = (stats.frames - before[0], stats.rejected - before[1])
        if moved not in ((1, 0), (0, 1)) or (moved == (0, 1) and events):
            raise Violation(f"numerics: a message must be decoded or rejected (with no events), once; counters "
                            f"moved by {moved} with {len(events)} event(s)")
        before = (stats.frames, stats.rejected)
        events = self.codec.presence(data)
        self.events.check(events)
        moved = (stats.frames - before[0], stats.rejected - before[1])
        lost = (len(events) == 1 and isinstance(events[0], DeviceCondition)
                and events[0].condition == Condition.DEVICE_LOST and events[0].vital is None)
        if not ((moved == (0, 1) and not events) or (moved == (0, 0) and lost)):
            raise Violation(f"presence: a message must be one device_lost edge or rejected once; counters moved by "
                            f"{moved} with {events!r}")


class CheckedAck:
    """`parse_ack` on one message (as text, the way the MLLP decoder hands it over)."""

    def __init__(self) -> None:
        self.parsed = 0

    def feed(self, data: bytes) -> None:
        check_ack(data.decode("utf-8", errors="replace"))
        self.parsed += 1


def check_ack(text: str) -> None:
    try:
        ack = parse_ack(text)
    except ValueError as exc:
        if not str(exc):
            raise Violation("ValueError without a reason") from exc
        return
    if ack.code not in ACK_CODES or not ack.control_id or not isinstance(ack.text, str):
        raise Violation(f"accepted a malformed ACK: {ack!r}")


class CheckedMllp:
    """An MLLP decoder fed chunk by chunk (with a small `max_size`, so that the too-long path is reached); every
    message it completes is read by `parse_ack`, as the MLLP client does."""

    def __init__(self, max_size: int = 300) -> None:
        self.decoder = MllpDecoder(max_size)
        self.messages = 0

    def feed(self, data: bytes) -> None:
        d = self.decoder
        before = (d.skipped, d.errors)
        messages = d.feed(data)
        _grows(before, (d.skipped, d.errors), "skipped/errors counters")
        if not isinstance(messages, list):
            raise Violation(f"returned {type(messages).__name__}, not a list of messages")
        for m in messages:
            if not isinstance(m, str) or not m:
                raise Violation(f"message {m!r} is not non-empty text")
            if len(m) > d.max_size or "\x0b" in m or MLLP_END in m:
                raise Violation(f"message of {len(m)} characters holds frame bytes or exceeds {d.max_size}")
            check_ack(m)
        self.messages += len(messages)
        if d.pending > d.max_size + 1:
            raise Violation(f"holds {d.pending} bytes, more than max_size + 1 = {d.max_size + 1}")


def same_however_cut(new: Callable[[], Callable[[bytes], list[Any]]], chunks: Sequence[bytes]) -> None:
    """Fresh parsers from `new` give the same output for the stream read at once and read as `chunks`."""
    whole = new()(b"".join(chunks))
    feed = new()
    cut = [item for chunk in chunks for item in feed(chunk)]
    if cut != whole:
        raise Violation(f"read in {len(chunks)} pieces the stream gives {cut!r:.300}, read at once {whole!r:.300}")
