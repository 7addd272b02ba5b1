"""The Nonin data format 8 codec (no checksum: packets confirmed by framing), on packets built by hand from
the documented layout (shared/reference/device-protocols.md §1.4), and property-based tests: any input is
survived, valid packets are recovered from garbage, values round-trip through an encoder written from the spec."""

from __future__ import annotations

import random
from collections.abc import Sequence

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from drivers.nonin import CONFIRM, NoninFormat8Codec
from monitor.model import Condition, DeviceCondition, DeviceEvent, Reading
from tests.unit.nonin_testing import (
    Cond,
    Key,
    changes,
    conditions,
    details,
    expected_readings,
    feed_in_chunks,
    hrs,
    reading_list,
    readings,
    spo2s,
    value_conditions,
)

# ---------------------------------------------------------------- format 8: golden packets


def packet8(hr: int | None, spo2: int | None, status1: int = 0, status2: int = 0) -> bytes:
    """[STATUS1][HR_LSB][SPO2][STATUS2]: STATUS1 bit7 sync, bits 1-0 = HR bits 8-7."""
    raw_hr = 511 if hr is None else hr
    return bytes([0x80 | status1 | raw_hr >> 7, raw_hr & 0x7F, 127 if spo2 is None else spo2, status2])


F8_72_97 = bytes([0x80, 0x48, 0x61, 0x00])
F8_150_98 = bytes([0x81, 0x16, 0x62, 0x00])  # 150 = 1 << 7 | 0x16
F8_300_95 = bytes([0x82, 0x2C, 0x5F, 0x00])  # 300 = 2 << 7 | 44
F8_NO_VALUE = bytes([0x83, 0x7F, 0x7F, 0x00])  # HR 511, SpO2 127
F8_DISCONNECTED = bytes([0xC3, 0x7F, 0x7F, 0x00])  # + bit 6 sensor disconnect


def test_f8_spec_encoder_in_this_test_agrees_with_the_hand_written_bytes() -> None:
    assert packet8(72, 97) == F8_72_97
    assert packet8(150, 98) == F8_150_98
    assert packet8(300, 95) == F8_300_95
    assert packet8(None, None) == F8_NO_VALUE
    assert packet8(None, None, status1=0x40) == F8_DISCONNECTED


# Format 8 has no checksum, so the decoder confirms packets by framing (NoninFormat8Codec): a packet is emitted
# only once the byte after it starts another packet, and after any loss of sync (the initial state included) only
# once CONFIRM contiguous packets have each been followed by a start byte. So a golden packet needs company.

START = b"\x80"  # the first byte of a next packet (bit 7 set): it frames, and so accepts, the packet before it


def framed(*packets: bytes, times: int = CONFIRM) -> bytes:
    """`packets` back to back, all of them `times` times, then a next packet's start byte: from a fresh codec (or
    after garbage) enough contiguous framed packets to confirm them, so every one of them is emitted."""
    return b"".join(packets) * times + START


def each_in_sync(*packets: bytes) -> list[list[DeviceEvent]]:
    """The events of each of `packets` fed one at a time to a codec already in sync (CONFIRM packets 72/97 before
    them, no conditions): a packet's events come with the next packet's first byte (a start byte after the last)."""
    codec = NoninFormat8Codec()
    codec.feed(F8_72_97 * CONFIRM)  # in sync: three emitted, the fourth held
    return [codec.feed(p) for p in (*packets, START)][1:]  # the first feed emits the held fourth 72/97


def test_f8_packet_values() -> None:
    codec = NoninFormat8Codec()
    assert codec.feed(F8_72_97 * CONFIRM + START) == [Reading("spo2", 97.0, None), Reading("pr", 72.0, None)] * 4
    assert (codec.stats.frames, codec.stats.rejected) == (4, 0)


def test_f8_hr_above_127_uses_status1_bits() -> None:
    codec = NoninFormat8Codec()
    assert reading_list(codec.feed(framed(F8_150_98, F8_300_95, times=2))) == [("spo2", 98.0), ("pr", 150.0),
                                                                               ("spo2", 95.0), ("pr", 300.0)] * 2


def test_f8_no_value_is_no_data_and_sensor_disconnect_is_sensor_off() -> None:
    no_value, disconnected, back = each_in_sync(F8_NO_VALUE, F8_DISCONNECTED, F8_72_97)
    assert readings(no_value) == {}
    assert conditions(no_value) == {(Condition.NO_DATA, "spo2", True), (Condition.NO_DATA, "pr", True)}
    assert readings(disconnected) == {}
    assert conditions(disconnected) == {(Condition.SENSOR_OFF, None, True), (Condition.NO_DATA, "spo2", False),
                                        (Condition.NO_DATA, "pr", False)}
    assert readings(back) == {"spo2": 97.0, "pr": 72.0}
    assert conditions(back) == {(Condition.SENSOR_OFF, None, False)}


@pytest.mark.parametrize(("status1", "status2", "want", "text"), [
    (0x20, 0x00, {(Condition.SIGNAL_QUALITY, None, True)}, "out of track"),
    (0x10, 0x00, {(Condition.SIGNAL_QUALITY, None, True)}, "low perfusion"),
    (0x08, 0x00, {(Condition.SIGNAL_QUALITY, None, True)}, "marginal perfusion"),
    (0x04, 0x00, {(Condition.SIGNAL_QUALITY, None, True)}, "artifact"),
    (0x00, 0x08, {(Condition.SENSOR_FAULT, None, True)}, "sensor alarm"),
    (0x00, 0x21, set(), ""),
])
def test_f8_status_bits(status1: int, status2: int, want: set[Cond], text: str) -> None:
    events = NoninFormat8Codec().feed(framed(packet8(88, 96, status1, status2)))
    assert readings(events) == {"spo2": 96.0, "pr": 88.0}
    assert conditions(events) == want  # raised by the first packet, not again by the same status after it
    assert text in details(events)


def test_f8_sensor_alarm_explains_missing_values() -> None:
    events = NoninFormat8Codec().feed(framed(packet8(None, None, 0, 0x08)))
    assert conditions(events) == {(Condition.SENSOR_FAULT, None, True)}


def test_f8_status2_battery_and_smartpoint() -> None:
    codec = NoninFormat8Codec()
    codec.feed(bytes([0x80, 0x48, 0x61, 0x21]) * CONFIRM + F8_72_97[:1])  # the next packet's start confirms them
    assert (codec.smartpoint, codec.low_battery) == (True, True)
    codec.feed(F8_72_97[1:] + START)
    assert (codec.smartpoint, codec.low_battery) == (False, False)


def test_f8_impossible_values_are_invalid_value() -> None:
    events = NoninFormat8Codec().feed(framed(packet8(400, 110)))
    assert readings(events) == {}
    assert conditions(events) == {(Condition.INVALID_VALUE, "spo2", True), (Condition.INVALID_VALUE, "pr", True)}


def test_f8_garbage_then_valid_packets_counted_once_per_run() -> None:
    codec = NoninFormat8Codec()
    # the first 0xff after the 72/97 packets starts a "packet" (it frames the fourth 72/97) that is not one
    events = codec.feed(b"\x01\x02\xff\xfe\x90\x00" + F8_72_97 * CONFIRM + b"\xff\xff\xff\x00\x00"
                        + framed(F8_150_98, F8_300_95, times=2))
    assert reading_list(events) == [("spo2", 97.0), ("pr", 72.0)] * 4 + [("spo2", 98.0), ("pr", 150.0),
                                                                         ("spo2", 95.0), ("pr", 300.0)] * 2
    assert (codec.stats.frames, codec.stats.rejected) == (8, 2)


def test_f8_a_lookalike_in_garbage_cannot_swallow_the_real_packet_after_it() -> None:
    # 0x85 0x01 0x02 is a packet start that runs into the real packet: the real 0x80 has bit 7 set, so the
    # lookalike is not a packet and the real one is decoded
    codec = NoninFormat8Codec()
    events = codec.feed(b"\x85\x01\x02" + framed(F8_72_97))
    assert reading_list(events) == [("spo2", 97.0), ("pr", 72.0)] * 4
    assert codec.stats.rejected == 1


def test_f8_split_at_every_boundary_gives_the_same_events() -> None:
    # a partial packet, 5 contiguous packets (the last dropped: the 0x01 after it is no packet start), the 0x01,
    # then 4 more and a start byte
    stream = (b"\x7f\xc0" + (F8_72_97 + F8_DISCONNECTED) * 2 + F8_72_97 + b"\x01"
              + framed(F8_150_98, F8_NO_VALUE, times=2))
    whole = NoninFormat8Codec()
    want = whole.feed(stream)
    assert reading_list(want) == [("spo2", 97.0), ("pr", 72.0)] * 2 + [("spo2", 98.0), ("pr", 150.0)] * 2
    assert (whole.stats.frames, whole.stats.rejected) == (8, 2)
    for cut in range(len(stream) + 1):
        codec = NoninFormat8Codec()
        assert codec.feed(stream[:cut]) + codec.feed(stream[cut:]) == want, cut
        assert (codec.stats.frames, codec.stats.rejected) == (whole.stats.frames, whole.stats.rejected)
    codec = NoninFormat8Codec()
    assert [e for b in stream for e in codec.feed(bytes([b]))] == want


def test_f8_a_single_isolated_packet_emits_nothing() -> None:
    codec = NoninFormat8Codec()
    assert codec.feed(F8_72_97) == []
    assert codec.feed(START) == []  # framed, but one packet is not CONFIRM contiguous ones
    assert (codec.stats.frames, codec.stats.rejected) == (0, 0)
    codec = NoninFormat8Codec()
    assert codec.feed(b"\x01" + F8_72_97 + b"\x02" + F8_150_98 + b"\x03") == []
    assert (codec.stats.frames, codec.stats.rejected) == (0, 1)  # dropped unconfirmed: once, with the garbage


def test_f8_line_noise_shaped_like_fewer_than_confirm_packets_emits_no_value_and_no_condition() -> None:
    # SpO2 47 % with the sensor-disconnect bit: the false alarm of the fault drill, three times and framed
    codec = NoninFormat8Codec()
    assert codec.feed(b"\x13" + packet8(72, 47, 0x40) * (CONFIRM - 1) + b"\xff\xfe\x05") == []
    assert (codec.stats.frames, codec.stats.rejected) == (0, 1)


def test_f8_after_garbage_nothing_is_emitted_until_confirm_contiguous_packets_and_the_next_start() -> None:
    assert CONFIRM == 4
    codec = NoninFormat8Codec()
    assert len(codec.feed(F8_72_97 * (CONFIRM + 1))) == 2 * CONFIRM  # in sync; the fifth 72/97 is held
    assert codec.feed(b"\x00\xff\x12") == []  # the held packet is not followed by a start byte: dropped
    assert (codec.stats.frames, codec.stats.rejected) == (4, 1)
    stream = F8_150_98 * (CONFIRM - 1) + F8_300_95 + START
    got = [codec.feed(bytes([b])) for b in stream]
    assert [i for i, events in enumerate(got) if events] == [len(stream) - 1]  # only with the fifth start byte
    assert reading_list(got[-1]) == [("spo2", 98.0), ("pr", 150.0)] * 3 + [("spo2", 95.0), ("pr", 300.0)]
    assert (codec.stats.frames, codec.stats.rejected) == (8, 1)  # one loss of sync, one count

    # a start byte not followed by three bytes with bit 7 clear is a loss of sync too (it still frames the packet
    # held before it, which is emitted)
    codec = NoninFormat8Codec()
    codec.feed(F8_72_97 * (CONFIRM + 1))
    assert reading_list(codec.feed(b"\x85\x01")) == [("spo2", 97.0), ("pr", 72.0)]
    assert codec.feed(F8_150_98 * (CONFIRM - 1)) == []
    assert codec.feed(F8_300_95) == []  # 3 framed of 4 contiguous: not yet
    assert len(codec.feed(START)) == 2 * CONFIRM
    assert (codec.stats.frames, codec.stats.rejected) == (9, 1)


def test_f8_in_steady_state_each_packet_is_emitted_one_packet_late() -> None:
    codec = NoninFormat8Codec()
    codec.feed(F8_72_97 * (CONFIRM + 1))  # in sync; the fifth 72/97 is held
    assert reading_list(codec.feed(F8_150_98)) == [("spo2", 97.0), ("pr", 72.0)]  # framed by 150/98's start
    assert reading_list(codec.feed(F8_DISCONNECTED[:1])) == [("spo2", 98.0), ("pr", 150.0)]  # 1 s late
    events = codec.feed(F8_DISCONNECTED[1:])
    assert events == []  # the disconnect waits for the packet after it, too
    events = codec.feed(F8_300_95)
    assert conditions(events) == {(Condition.SENSOR_OFF, None, True)} and readings(events) == {}
    events = codec.feed(START)
    assert conditions(events) == {(Condition.SENSOR_OFF, None, False)}
    assert reading_list(events) == [("spo2", 95.0), ("pr", 300.0)]
    assert (codec.stats.frames, codec.stats.rejected) == (8, 0)



# ---------------------------------------------------------------- format 8 properties

bits8_1 = st.sets(st.sampled_from([0x40, 0x20, 0x10, 0x08, 0x04])).map(sum)
bits8_2 = st.sets(st.sampled_from([0x20, 0x08, 0x01])).map(sum)
Spec8 = tuple[int | None, int | None, int, int]
specs8 = st.tuples(hrs, spo2s, bits8_1, bits8_2)


def encode8(spec: Spec8) -> bytes:
    return packet8(*spec)


def joins_a_run(stream: bytes, lo: int, hi: int) -> bool:
    """Whether a packet-shaped group (a byte with bit 7 set, then three with bit 7 clear) overlapping stream[lo:hi]
    lies in a run of at least CONFIRM contiguous packet-shaped groups. Confirmation by framing cannot tell such a
    group from the device's packets (it emits a group framed in a run of CONFIRM framed groups), so garbage that
    does this may be decoded; garbage that does not never is."""
    starts = {i for i in range(len(stream) - 3)
              if stream[i] >= 0x80 and all(b < 0x80 for b in stream[i + 1 : i + 4])}
    for i in starts:
        if i + 4 > lo and i < hi:
            first, last = i, i
            while first - 4 in starts:
                first -= 4
            while last + 4 in starts:
                last += 4
            if (last - first) // 4 + 1 >= CONFIRM:
                return True
    return False


def is_subsequence(small: Sequence[object], big: Sequence[object]) -> bool:
    it = iter(big)
    return all(any(x == y for y in it) for x in small)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=100) | specs8.map(encode8), max_size=12),
       st.lists(st.integers(0, 2000), max_size=6))
def test_f8_arbitrary_bytes_never_raise_and_counters_only_grow(pieces: list[bytes], cuts: list[int]) -> None:
    codec = NoninFormat8Codec()
    stream = b"".join(pieces)
    frames = rejected = 0
    start = 0
    for cut in [*sorted(c % (len(stream) + 1) for c in cuts), len(stream)]:
        for event in codec.feed(stream[start:cut]):
            assert isinstance(event, Reading | DeviceCondition)
            if isinstance(event, Reading):
                assert event.vital in {"spo2", "pr"} and event.device_time is None
                assert 0 <= event.value <= (100 if event.vital == "spo2" else 350)
        start = cut
        assert codec.stats.frames >= frames and codec.stats.rejected >= rejected
        frames, rejected = codec.stats.frames, codec.stats.rejected
        assert len(codec._buffer) <= 4 * CONFIRM  # never more than CONFIRM unconfirmed packets held


garbage8 = (st.binary(max_size=16) | st.lists(st.integers(0x80, 0xFF), max_size=8).map(bytes)
            | st.lists(st.integers(0x00, 0x7F), max_size=8).map(bytes))
runs8 = st.lists(specs8, min_size=CONFIRM + 1, max_size=7)


def packet_readings(specs: Sequence[Spec8]) -> list[tuple[str, float]]:
    return [r for hr, spo2, *_ in specs for r in expected_readings(hr, spo2)]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(garbage8, runs8), min_size=1, max_size=5), garbage8,
       st.lists(st.integers(0, 2000), max_size=8))
def test_f8_runs_of_valid_packets_between_garbage_are_recovered_in_order(
        pieces: list[tuple[bytes, list[Spec8]]], tail: bytes, cuts: list[int]) -> None:
    """Every packet of a run of CONFIRM + 1 or more contiguous ones is emitted, in order, whatever garbage precedes
    it (a false start overlapping a packet would need the packet's first byte to have bit 7 clear), except the
    run's last one, which is emitted only if the byte after it starts a packet. Unless garbage joins a run of
    CONFIRM packet-shaped groups, nothing else is emitted and each garbage run is counted once."""
    stream = b""
    spans = []
    for garbage, run in pieces:
        spans.append((len(stream), len(stream) + len(garbage)))
        stream += garbage + b"".join(map(encode8, run))
    spans.append((len(stream), len(stream) + len(tail)))
    stream += tail
    codec = NoninFormat8Codec()
    got = reading_list(feed_in_chunks(codec, stream, cuts))
    assert is_subsequence([r for _, run in pieces for r in packet_readings(run[:-1])], got)
    if not any(joins_a_run(stream, lo, hi) for lo, hi in spans):
        assert is_subsequence(got, [r for _, run in pieces for r in packet_readings(run)])
        assert sum(len(run) - 1 for _, run in pieces) <= codec.stats.frames <= sum(len(run) for _, run in pieces)
        runs = sum(1 for g, _ in pieces if g)
        assert runs <= codec.stats.rejected <= runs + 1  # one per garbage run; the tail may still be waiting


# a burst of garbage: hypothesis's binary (short and structured, shrinks well) or uniform line noise (long, with
# packet-shaped groups in 1 position of 16, as on a real line)
bursts = st.binary(min_size=1, max_size=300) | st.builds(lambda seed, n: random.Random(seed).randbytes(n),
                                                         st.integers(0, 2**32), st.integers(1, 300))


@settings(max_examples=300, deadline=None)
@given(st.lists(specs8, min_size=6, max_size=10), bursts, st.lists(specs8, min_size=6, max_size=10),
       st.lists(st.integers(0, 5000), max_size=6))
def test_f8_a_burst_of_garbage_decodes_no_bogus_value_and_the_packets_after_it_are_recovered(
        before: list[Spec8], garbage: bytes, after: list[Spec8], cuts: list[int]) -> None:
    head = b"".join(map(encode8, before))
    stream = head + garbage + b"".join(map(encode8, after))
    # Examples whose garbage holds a packet-shaped group in a run of CONFIRM contiguous packet-shaped groups
    # (counting the valid packets around it) are left out: no framing rule can tell those from the device's
    # packets. That is not only the tiny chance (2**-16 a position) of CONFIRM such groups in the garbage alone:
    # about 1 random burst in 16 begins with a group that continues the packets before it, and 1 in 16 ends
    # with one that runs into the packets after it, and the codec emits those (see NoninFormat8Codec).
    assume(not joins_a_run(stream, len(head), len(head) + len(garbage)))
    codec = NoninFormat8Codec()
    got = reading_list(feed_in_chunks(codec, stream, cuts))
    assert set(got) <= set(packet_readings([*before, *after]))  # no value the device did not send
    recovered = packet_readings(after[:-1])  # the last packet is held: nothing comes after it to frame it
    assert got[len(got) - len(recovered):] == recovered
    # exactly: the packets before the burst (the last one only if the burst's first byte can start a packet,
    # which frames it), then those after it but the last
    kept = before if garbage[0] & 0x80 else before[:-1]
    assert got == packet_readings([*kept, *after[:-1]])
    assert (codec.stats.frames, codec.stats.rejected) == (len(kept) + len(after) - 1, 1)


@settings(max_examples=300, deadline=None)
@given(st.lists(specs8, min_size=1, max_size=12))
def test_f8_round_trip_values_and_conditions(specs: list[Spec8]) -> None:
    codec = NoninFormat8Codec()
    codec.feed(F8_72_97 * CONFIRM)  # in sync: each packet is emitted when the next one begins
    codec.feed(encode8(specs[0]))  # emits the fourth 72/97
    active: set[Key] = set()
    for spec, after in zip(specs, [*map(encode8, specs[1:]), START], strict=True):
        hr, spo2, s1, s2 = spec
        events = codec.feed(after)
        assert reading_list(events) == expected_readings(hr, spo2), spec
        now = value_conditions(hr, spo2, sensor=bool(s1 & 0x40 or s2 & 0x08))
        if s1 & 0x40:
            now.add((Condition.SENSOR_OFF, None))
        if s2 & 0x08:
            now.add((Condition.SENSOR_FAULT, None))
        if s1 & 0x3C:  # out of track, low perfusion, marginal perfusion, artifact
            now.add((Condition.SIGNAL_QUALITY, None))
        assert conditions(events) == changes(active, now), spec
        active = now
        assert (codec.low_battery, codec.smartpoint) == (bool(s2 & 0x01), bool(s2 & 0x20))
    assert (codec.stats.frames, codec.stats.rejected) == (CONFIRM + len(specs), 0)
