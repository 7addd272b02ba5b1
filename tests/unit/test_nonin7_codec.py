"""The Nonin data format 7 codec and the Nonin drivers, on packets built by hand from the documented layout
(shared/reference/device-protocols.md §1.4), and property-based tests: any input is survived, valid packets are
recovered from garbage, values round-trip through an encoder written here from the spec."""

from __future__ import annotations

import asyncio
import os
import tty
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.base import DeviceSettings
from drivers.nonin import NoninFormat7Codec, NoninFormat8Codec, format7_hr
from drivers.nonin_driver import NoninFormat7Driver, NoninFormat8Driver, set_format_command
from drivers.serial_transport import SerialSettings, open_serial
from monitor.model import Condition, DeviceCondition, Reading
from tests.unit.nonin_testing import (
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

# ---------------------------------------------------------------- format 7: an encoder written from the spec

# STATUS bits (§1.4, format 2 definitions, shared by format 7)
SNSD, ARTF, OOT, SNSA, RPRF, GPRF, SYNC = 0x40, 0x20, 0x10, 0x08, 0x04, 0x02, 0x01


def frame(status: int, pleth: int, data: int) -> bytes:
    """[STATUS][PLETH_MSB][PLETH_LSB][DATA][CHK], CHK = sum of the first four bytes mod 256."""
    head = [status, pleth >> 8, pleth & 0xFF, data]
    return bytes([*head, sum(head) & 0xFF])


def packet7(hr: int | None, spo2: int | None, status: int = 0, pulse: int = 0, pulse_at: int = 10,
            stat2: int = 0, firmware: int = 0, pleth: Sequence[int] | None = None) -> bytes:
    """25 frames; `status` bits in every frame, `pulse` bits in frames pulse_at..pulse_at+2 (a pulse)."""
    raw_hr = 511 if hr is None else hr
    data = [0] * 25
    data[0], data[1] = raw_hr >> 7, raw_hr & 0x7F  # HR bits 8-7, HR bits 6-0
    data[2] = 127 if spo2 is None else spo2
    data[3], data[7] = firmware, stat2
    out = b""
    for i in range(25):
        s = 0x80 | status | (SYNC if i == 0 else 0) | (pulse if pulse_at <= i < pulse_at + 3 else 0)
        out += frame(s, 0x0040 + 2 * i if pleth is None else pleth[i], data[i])
    return out


# golden packets, every byte written out by hand: frames 0-2 carry HR MSB, HR LSB, SpO2 in DATA (4th byte)
FILL = bytes([0x80, 0x00, 0x40, 0x00, 0xC0])  # status 0x80, pleth 0x0040, data 0: chk 0x80+0x40 = 0xC0
HR72_SPO2_97 = (bytes([0x81, 0x00, 0x40, 0x00, 0xC1])  # SYNC, HR MSB 0
                + bytes([0x80, 0x00, 0x42, 0x48, 0x0A])  # HR LSB 72 = 0x48; 0x80+0x42+0x48 = 0x10A
                + bytes([0x80, 0x00, 0x44, 0x61, 0x25])  # SpO2 97 = 0x61; 0x80+0x44+0x61 = 0x125
                + FILL * 22)
HR150_SPO2_98 = (bytes([0x81, 0x00, 0x40, 0x01, 0xC2])  # HR MSB = 150 >> 7 = 1
                 + bytes([0x80, 0x00, 0x42, 0x16, 0xD8])  # HR LSB = 150 & 0x7F = 0x16; 0x80+0x42+0x16 = 0xD8
                 + bytes([0x80, 0x00, 0x44, 0x62, 0x26])  # SpO2 98 = 0x62
                 + FILL * 22)
DISCONNECTED = (bytes([0xC1, 0x00, 0x40, 0x03, 0x04])  # SNSD|SYNC, HR MSB 3 (511 >> 7); 0x104 -> 0x04
                + bytes([0xC0, 0x00, 0x40, 0x7F, 0x7F])  # HR LSB 0x7F (511 & 0x7F); 0x17F -> 0x7F
                + bytes([0xC0, 0x00, 0x40, 0x7F, 0x7F])  # SpO2 127: no value
                + bytes([0xC0, 0x00, 0x40, 0x00, 0x00]) * 22)


def test_spec_encoder_in_this_test_agrees_with_the_hand_written_bytes() -> None:
    flat = [0x0040, 0x0042, 0x0044] + [0x0040] * 22
    assert packet7(72, 97, pleth=flat) == HR72_SPO2_97
    assert packet7(150, 98, pleth=flat) == HR150_SPO2_98
    assert packet7(None, None, status=SNSD, pleth=[0x0040] * 25) == DISCONNECTED
    assert len(HR72_SPO2_97) == 125


def test_f7_packet_values_no_device_time() -> None:
    codec = NoninFormat7Codec()
    events = codec.feed(HR72_SPO2_97)
    assert events == [Reading("spo2", 97.0, None), Reading("pr", 72.0, None)]
    assert (codec.stats.frames, codec.stats.rejected) == (1, 0)


def test_f7_hr_above_127_uses_the_nonin_9_bit_layout_not_openice_msb_shift() -> None:
    events = NoninFormat7Codec().feed(HR150_SPO2_98)
    assert readings(events) == {"spo2": 98.0, "pr": 150.0}  # OpenICE's (MSB << 8) | LSB would give 278
    assert format7_hr(0x01, 0x16) == 150
    assert format7_hr(0x03, 0x7F) == 511
    assert format7_hr(0xFF, 0xFF) == 511  # bits outside the layout are ignored


def test_f7_no_value_with_sensor_disconnect_is_sensor_off_not_a_reading_and_ends_when_values_return() -> None:
    codec = NoninFormat7Codec()
    events = codec.feed(DISCONNECTED)
    assert readings(events) == {}
    assert conditions(events) == {(Condition.SENSOR_OFF, None, True)}  # no NO_DATA: SENSOR_OFF says why
    assert "SNSD" in details(events)
    back = codec.feed(HR72_SPO2_97)
    assert readings(back) == {"spo2": 97.0, "pr": 72.0}
    assert conditions(back) == {(Condition.SENSOR_OFF, None, False)}


def test_f7_511_and_127_without_a_sensor_condition_are_no_data_never_numbers() -> None:
    codec = NoninFormat7Codec()
    events = codec.feed(packet7(None, None))
    assert readings(events) == {}
    assert conditions(events) == {(Condition.NO_DATA, "spo2", True), (Condition.NO_DATA, "pr", True)}
    assert codec.feed(packet7(None, None)) == []  # still missing: no new event
    only_hr = codec.feed(packet7(64, None))
    assert readings(only_hr) == {"pr": 64.0}
    assert conditions(only_hr) == {(Condition.NO_DATA, "pr", False)}


def test_f7_sensor_alarm_is_sensor_fault_and_explains_missing_values() -> None:
    events = NoninFormat7Codec().feed(packet7(None, None, status=SNSA))
    assert readings(events) == {}
    assert conditions(events) == {(Condition.SENSOR_FAULT, None, True)}


def test_f7_out_of_track_is_signal_quality_values_still_read() -> None:
    events = NoninFormat7Codec().feed(packet7(80, 95, status=OOT))
    assert readings(events) == {"spo2": 95.0, "pr": 80.0}
    assert conditions(events) == {(Condition.SIGNAL_QUALITY, None, True)}
    assert "OOT" in details(events)


def test_f7_impossible_values_are_invalid_value_conditions() -> None:
    events = NoninFormat7Codec().feed(packet7(400, 110))
    assert readings(events) == {}
    assert conditions(events) == {(Condition.INVALID_VALUE, "spo2", True), (Condition.INVALID_VALUE, "pr", True)}


def test_f7_perfusion_green_is_fine_red_and_yellow_are_signal_quality_held_between_pulses() -> None:
    codec = NoninFormat7Codec()
    assert conditions(codec.feed(packet7(70, 97, pulse=GPRF))) == set()  # green: high signal quality
    red = codec.feed(packet7(70, 97, pulse=RPRF))
    assert conditions(red) == {(Condition.SIGNAL_QUALITY, None, True)}
    assert "low perfusion" in details(red)
    no_pulse = codec.feed(packet7(70, 97))  # no pulse in this 1/3 s: the last pulse's state holds
    assert conditions(no_pulse) == set() and readings(no_pulse) == {"spo2": 97.0, "pr": 70.0}
    assert conditions(codec.feed(packet7(70, 97, pulse=GPRF))) == {(Condition.SIGNAL_QUALITY, None, False)}
    yellow = codec.feed(packet7(70, 97, pulse=RPRF | GPRF))
    assert conditions(yellow) == {(Condition.SIGNAL_QUALITY, None, True)}
    assert "marginal perfusion" in details(yellow)
    assert conditions(codec.feed(packet7(70, 97, status=SNSD))) == {(Condition.SENSOR_OFF, None, True),
                                                                    (Condition.SIGNAL_QUALITY, None, False)}


def test_f7_artifact_pulse_is_signal_quality() -> None:
    codec = NoninFormat7Codec()
    events = codec.feed(packet7(70, 97, pulse=ARTF | GPRF))
    assert conditions(events) == {(Condition.SIGNAL_QUALITY, None, True)}
    assert "ARTF" in details(events)
    assert conditions(codec.feed(packet7(70, 97, pulse=GPRF))) == {(Condition.SIGNAL_QUALITY, None, False)}


def test_f7_stat2_and_firmware() -> None:
    codec = NoninFormat7Codec()
    codec.feed(packet7(70, 97, stat2=0x21, firmware=0x2A))
    assert (codec.smartpoint, codec.low_battery, codec.firmware_revision) == (True, True, 0x2A)
    codec.feed(packet7(70, 97))
    assert (codec.smartpoint, codec.low_battery) == (False, False)


def test_f7_bad_checksum_frame_rejects_that_packet_only() -> None:
    bad = bytearray(packet7(90, 91))
    bad[10 * 5 + 4] ^= 0x01  # checksum of frame 10
    codec = NoninFormat7Codec()
    events = codec.feed(HR72_SPO2_97 + bytes(bad) + HR150_SPO2_98)
    assert reading_list(events) == [("spo2", 97.0), ("pr", 72.0), ("spo2", 98.0), ("pr", 150.0)]
    assert (codec.stats.frames, codec.stats.rejected) == (2, 1)


def test_f7_status_bit7_clear_is_rejected() -> None:
    bad = bytearray(packet7(90, 91))
    bad[5 * 5] &= 0x7F  # status of frame 5 without bit 7 ...
    bad[5 * 5 + 4] = (bad[5 * 5 + 4] - 0x80) & 0xFF  # ... and a checksum that matches
    codec = NoninFormat7Codec()
    events = codec.feed(HR72_SPO2_97 + bytes(bad) + HR150_SPO2_98)
    assert reading_list(events) == [("spo2", 97.0), ("pr", 72.0), ("spo2", 98.0), ("pr", 150.0)]
    assert codec.stats.rejected == 1


def test_f7_packet_interrupted_by_sync_is_rejected_and_the_next_packet_decoded() -> None:
    codec = NoninFormat7Codec()
    events = codec.feed(HR72_SPO2_97 + packet7(90, 91)[: 10 * 5] + HR150_SPO2_98)
    assert reading_list(events) == [("spo2", 97.0), ("pr", 72.0), ("spo2", 98.0), ("pr", 150.0)]
    assert (codec.stats.frames, codec.stats.rejected) == (2, 1)


def test_f7_extra_frame_where_a_packet_should_begin_is_rejected() -> None:
    codec = NoninFormat7Codec()
    events = codec.feed(HR72_SPO2_97 + FILL + HR150_SPO2_98)
    assert reading_list(events) == [("spo2", 97.0), ("pr", 72.0), ("spo2", 98.0), ("pr", 150.0)]
    assert codec.stats.rejected == 1


def test_f7_garbage_then_valid_packet_recovered_and_counted_once() -> None:
    codec = NoninFormat7Codec()
    garbage = bytes([0x00, 0x81, 0xFF, 0x13, 0x37, 0x80, 0x81, 0x81]) * 5
    events = codec.feed(garbage + HR72_SPO2_97)
    assert readings(events) == {"spo2": 97.0, "pr": 72.0}
    assert (codec.stats.frames, codec.stats.rejected) == (1, 1)


def test_f7_connecting_mid_packet_skips_to_the_next_sync() -> None:
    codec = NoninFormat7Codec()
    events = codec.feed(HR150_SPO2_98[37:] + HR72_SPO2_97)
    assert reading_list(events) == [("spo2", 97.0), ("pr", 72.0)]
    assert (codec.stats.frames, codec.stats.rejected) == (1, 1)


def test_f7_split_at_every_boundary_gives_the_same_events() -> None:
    stream = b"\x13\x81\x00" + HR72_SPO2_97 + DISCONNECTED + HR150_SPO2_98
    whole = NoninFormat7Codec()
    want = whole.feed(stream)
    assert reading_list(want) == [("spo2", 97.0), ("pr", 72.0), ("spo2", 98.0), ("pr", 150.0)]
    for cut in range(len(stream) + 1):
        codec = NoninFormat7Codec()
        assert codec.feed(stream[:cut]) + codec.feed(stream[cut:]) == want, cut
        assert (codec.stats.frames, codec.stats.rejected) == (whole.stats.frames, whole.stats.rejected)
    codec = NoninFormat7Codec()
    assert [e for b in stream for e in codec.feed(bytes([b]))] == want


def test_f7_endless_garbage_keeps_little() -> None:
    codec = NoninFormat7Codec()
    assert codec.feed(bytes(range(256)) * 40) == []
    assert codec.stats.rejected == 1
    assert len(codec._buffer) < 5
    assert readings(codec.feed(HR72_SPO2_97)) == {"spo2": 97.0, "pr": 72.0}



# ---------------------------------------------------------------- drivers


def test_driver_keys_line_settings_and_codecs() -> None:
    for cls, key, codec in ((NoninFormat7Driver, "nonin7", NoninFormat7Codec),
                            (NoninFormat8Driver, "nonin8", NoninFormat8Codec)):
        assert cls.key == key
        d = cls.DEFAULTS
        assert (d.baudrate, d.bytesize, d.parity, d.stopbits) == (9600, 8, "N", 1)
        assert isinstance(cls(DeviceSettings("ox-1", port="/dev/null")).codec, codec)


def test_set_format_command_bytes() -> None:
    # 02 70 <len 4> 02 <fmt> <flags> <chk = 0x70 + 4 + 2 + fmt + flags> 03
    assert set_format_command(8) == bytes([0x02, 0x70, 0x04, 0x02, 0x08, 0x01, 0x7F, 0x03])
    assert set_format_command(7, 0x61) == bytes([0x02, 0x70, 0x04, 0x02, 0x07, 0x61, 0xDE, 0x03])
    with pytest.raises(ValueError):
        set_format_command(256)


async def test_start_sends_nothing_by_default_and_the_format_when_asked() -> None:
    """Over a real pseudo-terminal: what the driver's start() writes is what the oximeter would receive."""
    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    try:
        async with open_serial(path, SerialSettings()) as link:
            await NoninFormat8Driver(DeviceSettings("ox-1")).start(link)
            await NoninFormat7Driver(DeviceSettings("ox-2")).start(link)

            class Configuring(NoninFormat8Driver):
                SET_FORMAT_AT_START = True

            await Configuring(DeviceSettings("ox-3")).start(link)
            await asyncio.sleep(0.1)
            os.set_blocking(master, False)
            assert os.read(master, 100) == set_format_command(8)  # nothing before it, by default
    finally:
        os.close(slave)
        os.close(master)


# ---------------------------------------------------------------- property-based tests

# pleth: a ramp with any start and step (cheap to draw, and every byte value can occur in the pleth bytes)
pleths = st.builds(lambda a, b: [(a + b * i) & 0xFFFF for i in range(25)], st.integers(0, 0xFFFF),
                   st.integers(0, 0xFFFF))
bits7 = st.sampled_from([0, SNSD, OOT, SNSA, SNSD | SNSA, OOT | SNSA, SNSD | OOT])
pulses7 = st.sampled_from([0, GPRF, RPRF, RPRF | GPRF, ARTF, ARTF | GPRF, ARTF | RPRF])

# (hr, spo2, status, pulse, pulse_at, stat2, pleth) -> packet
Spec7 = tuple[int | None, int | None, int, int, int, int, list[int]]
specs7 = st.tuples(hrs, spo2s, bits7, pulses7, st.integers(0, 22), st.sampled_from([0, 0x01, 0x20, 0x21]), pleths)


def encode7(spec: Spec7) -> bytes:
    hr, spo2, status, pulse, pulse_at, stat2, pleth = spec
    return packet7(hr, spo2, status=status, pulse=pulse, pulse_at=pulse_at, stat2=stat2, pleth=pleth)


# frames that pass the checksum, to reach deep into the hunt
valid_frames = st.builds(frame, st.integers(0x80, 0xFF), st.integers(0, 0xFFFF), st.integers(0, 0xFF))
pieces7 = st.binary(max_size=200) | specs7.map(encode7) | valid_frames | specs7.map(encode7).flatmap(
    lambda p: st.integers(1, len(p) - 1).map(lambda n: p[:n]))


@settings(max_examples=300, deadline=None)
@given(st.lists(pieces7, max_size=10), st.lists(st.integers(0, 5000), max_size=6))
def test_f7_arbitrary_bytes_never_raise_and_counters_only_grow(pieces: list[bytes], cuts: list[int]) -> None:
    codec = NoninFormat7Codec()
    frames = rejected = 0
    stream = b"".join(pieces)
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
        assert len(codec._buffer) < 125  # never more than one packet held


garbage7 = st.binary(max_size=60) | st.lists(valid_frames, max_size=6).map(b"".join)


@settings(max_examples=250, deadline=None)
@given(st.lists(st.tuples(garbage7, specs7), min_size=1, max_size=6), garbage7, st.lists(st.integers(0, 5000)))
def test_f7_valid_packets_between_garbage_are_all_recovered_in_order(
        pieces: list[tuple[bytes, Spec7]], tail: bytes, cuts: list[int]) -> None:
    stream = b"".join(g + encode7(spec) for g, spec in pieces) + tail
    codec = NoninFormat7Codec()
    events = feed_in_chunks(codec, stream, cuts)
    assert reading_list(events) == [r for _, (hr, spo2, *_) in pieces for r in expected_readings(hr, spo2)]
    assert codec.stats.frames == len(pieces)
    garbage_runs = sum(1 for g, _ in pieces if g)
    # one per garbage run; the tail may be counted or may still be waiting for more bytes
    assert garbage_runs <= codec.stats.rejected <= garbage_runs + (1 if tail else 0)


@settings(max_examples=300, deadline=None)
@given(st.lists(specs7, min_size=1, max_size=12))
def test_f7_round_trip_values_and_conditions(specs: list[Spec7]) -> None:
    """Values and conditions as documented: SNSD/SNSA/OOT in the packet, ARTF and perfusion from the latest pulse
    (cleared by SNSD or OOT), 511/127 no value, HR above 350 impossible."""
    codec = NoninFormat7Codec()
    active: set[Key] = set()
    perfusion_poor, artifact = False, False
    for spec in specs:
        hr, spo2, status, pulse, _, stat2, _ = spec
        events = codec.feed(encode7(spec))
        assert reading_list(events) == expected_readings(hr, spo2), spec
        if status & (SNSD | OOT):
            perfusion_poor, artifact = False, False
        elif pulse:
            perfusion_poor, artifact = bool(pulse & RPRF), bool(pulse & ARTF)  # red or yellow; green is fine
        now = value_conditions(hr, spo2, sensor=bool(status & (SNSD | SNSA)))
        if status & SNSD:
            now.add((Condition.SENSOR_OFF, None))
        if status & SNSA:
            now.add((Condition.SENSOR_FAULT, None))
        if status & OOT or perfusion_poor or artifact:
            now.add((Condition.SIGNAL_QUALITY, None))
        assert conditions(events) == changes(active, now), spec
        active = now
        assert (codec.low_battery, codec.smartpoint) == (bool(stat2 & 0x01), bool(stat2 & 0x20))
    assert (codec.stats.frames, codec.stats.rejected) == (len(specs), 0)
