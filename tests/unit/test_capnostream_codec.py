"""The Capnostream 20 codec on frames built by hand from the spec (shared/reference/device-protocols.md §1.6 and the
mdpnp sources named in drivers/capnostream.py), the driver's start sequence, and property-based tests: any input is
survived, frames are recovered from garbage, values round-trip through an encoder written here from the spec."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.base import DeviceSettings
from drivers.capnostream import CapnostreamCodec
from drivers.capnostream_driver import CapnostreamDriver, encode_command
from drivers.serial_transport import SerialLink
from monitor.model import Condition, DeviceCondition, DeviceEvent, Reading

Cond = tuple[Condition, str | None, bool]

# ---------------------------------------------------------------- frames written out byte by byte
# 85 <len = payload + 1> <code> <payload> <chk = XOR of len, code, payload>; 0x80 -> 80 00, 0x85 -> 80 05.
# Numerics (code 1), 27 payload bytes: time u32 BE | EtCO2 FiCO2 RR SpO2 PR | slow | events index x3 |
# CO2 alarms | SpO2 alarms | no-breath s | limits: EtCO2 hi lo, RR hi lo, FiCO2 hi, SpO2 hi lo, PR hi lo | units | ext

T0 = 0x5A0B2C80  # 1510681728 s = 2017-11-14 17:48:48 UTC
NORMAL = bytes.fromhex(
    "85 1c 01"
    "5a 0b 2c 80 00"  # time 0x5A0B2C80: its 0x80 escaped
    "26 00 10 62 48"  # EtCO2 38, FiCO2 0, RR 16, SpO2 98, PR 72
    "00 00 00 00 00 00 00"  # slow status, events index, CO2 alarms, SpO2 alarms, no breath
    "32 0a 1e 06 05 64 5a 78 32"  # limits 50/10, 30/6, 5, 100/90, 120/50
    "01 00"  # units 1 = mmHg, extended CO2 status 0
    "ac")  # 1c^01^5a^0b^2c^80^26^10^62^48^32^0a^1e^06^05^64^5a^78^32^01
NO_ETCO2 = bytes.fromhex(
    "85 1c 01 5a 0b 2c 81"  # time T0 + 1
    "ff 00 10 61 80 05"  # EtCO2 0xFF (no value), FiCO2 0, RR 16, SpO2 97, PR 133 = 0x85 escaped
    "00 00 00 00 00 00 00 32 0a 1e 06 05 64 5a 78 32 01 00"
    "ba")
SPO2_OFF = bytes.fromhex(
    "85 1c 01 5a 0b 2c 82"  # time T0 + 2
    "25 00 0f ff ff"  # EtCO2 37, RR 15, SpO2 and PR 0xFF
    "00 00 00 00 00 20 00"  # SpO2 alarms 0x20: SpO2 sensor off patient
    "32 0a 1e 06 05 64 5a 78 32 01 00"
    "b8")
KPA = bytes.fromhex(
    "85 1c 01 5a 0b 2c 83"  # time T0 + 3
    "35 02 0e 60 46"  # EtCO2 53 = 5.3 kPa, FiCO2 0.2 kPa, RR 14, SpO2 96, PR 70
    "00 00 00 00 00 00 00 41 0d 1e 06 05 64 5a 78 32"
    "02 00"  # units 2 = kPa
    "db")
APNEA = bytes.fromhex(
    "85 1c 01 5a 0b 2c 84"  # time T0 + 4
    "00 00 00 62 48"  # EtCO2 0, RR 0, SpO2 98, PR 72
    "00 00 00 00 01 00 1a"  # CO2 alarms 0x01: no breath, for 26 s
    "32 0a 1e 06 05 64 5a 78 32 01 00"
    "80 05")  # the checksum 0x85, escaped
# CO2 wave (code 0): message number, CO2 integer, CO2 fraction/256, fast status
WAVE_LINE_OFF = bytes.fromhex("85 05 00 07 26 80 00 40 e4")  # CO2 38.5 (0x80 escaped), 0x40 FilterLine off
WAVE_OK = bytes.fromhex("85 05 00 08 26 40 00 6b")  # CO2 38.25, fast status 0
WAVE_PADDED = bytes.fromhex("85 05 00 08 26 40 00 00 6b")  # mdpnp: "padded with an extra mysterious 0"
# device id and software version (code 4), the string from mdpnp CapnostreamTest
DEVICE_ID = b"\x85\x1f\x04" + b"V45.67 02/24/2008 B355987654  " + b"\x1d"


def readings(events: Sequence[object]) -> dict[str, float]:
    return {e.vital: e.value for e in events if isinstance(e, Reading)}


def conditions(events: Sequence[object]) -> set[Cond]:
    return {(e.condition, e.vital, e.active) for e in events if isinstance(e, DeviceCondition)}


def stats(codec: CapnostreamCodec) -> tuple[int, int]:
    return codec.stats.frames, codec.stats.rejected


# ---------------------------------------------------------------- a small encoder, from the spec


def frame(code: int, payload: bytes) -> bytes:
    body = bytes([len(payload) + 1, code]) + payload
    chk = 0
    for b in body:
        chk ^= b
    escaped = (body + bytes([chk])).replace(b"\x80", b"\x80\x00").replace(b"\x85", b"\x80\x05")
    return b"\x85" + escaped


@dataclass(frozen=True)
class Numerics:
    time: int = T0
    etco2: int | None = 38
    fico2: int | None = 0
    rr: int | None = 16
    spo2: int | None = 98
    pr: int | None = 72
    slow: int = 0
    co2_alarms: int = 0
    spo2_alarms: int = 0
    no_breath: int = 0
    limits: bytes = bytes([50, 10, 30, 6, 5, 100, 90, 120, 50])
    units: int = 1
    extended: int = 0

    def payload(self) -> bytes:
        def v(x: int | None) -> int:
            return 0xFF if x is None else x

        return (self.time.to_bytes(4, "big")
                + bytes([v(self.etco2), v(self.fico2), v(self.rr), v(self.spo2), v(self.pr), self.slow, 0, 0, 0,
                         self.co2_alarms, self.spo2_alarms, self.no_breath])
                + self.limits + bytes([self.units, self.extended]))

    def frame(self) -> bytes:
        return frame(1, self.payload())


def wave(number: int, fast: int) -> bytes:
    return frame(0, bytes([number & 0xFF, 38, 64, fast]))


def test_the_encoder_gives_the_hand_written_frames() -> None:
    assert Numerics().frame() == NORMAL
    assert Numerics(time=T0 + 1, etco2=None, spo2=97, pr=133).frame() == NO_ETCO2
    assert Numerics(time=T0 + 4, etco2=0, rr=0, co2_alarms=1, no_breath=26).frame() == APNEA
    assert frame(0, bytes([7, 0x26, 0x80, 0x40])) == WAVE_LINE_OFF
    assert frame(4, b"V45.67 02/24/2008 B355987654  ") == DEVICE_ID


# ---------------------------------------------------------------- golden tests


def test_numerics_values_and_device_time() -> None:
    codec = CapnostreamCodec()
    events = codec.feed(NORMAL)
    assert events == [Reading("etco2", 38.0, float(T0)), Reading("rr", 16.0, float(T0)),
                      Reading("spo2", 98.0, float(T0)), Reading("pr", 72.0, float(T0))]
    assert stats(codec) == (1, 0)
    assert codec.co2_units == "mmHg"
    assert codec.device_alarms == frozenset()


def test_ff_is_no_value_with_no_data_never_255_and_escaped_085_is_a_value() -> None:
    codec = CapnostreamCodec()
    codec.feed(NORMAL)
    events = codec.feed(NO_ETCO2)
    assert readings(events) == {"rr": 16.0, "spo2": 97.0, "pr": 133.0}
    assert all(e.device_time == T0 + 1 for e in events if isinstance(e, Reading))
    assert conditions(events) == {(Condition.NO_DATA, "etco2", True)}
    assert codec.feed(NO_ETCO2) == [Reading("rr", 16.0, T0 + 1.0), Reading("spo2", 97.0, T0 + 1.0),
                                    Reading("pr", 133.0, T0 + 1.0)]  # still no EtCO2: no new condition event
    back = codec.feed(NORMAL)
    assert conditions(back) == {(Condition.NO_DATA, "etco2", False)}
    assert readings(back)["etco2"] == 38.0


def test_spo2_sensor_off_explains_the_missing_spo2_and_pr() -> None:
    codec = CapnostreamCodec()
    events = codec.feed(SPO2_OFF)
    assert readings(events) == {"etco2": 37.0, "rr": 15.0}
    assert conditions(events) == {(Condition.SENSOR_OFF, "spo2", True)}  # no NO_DATA: the sensor says why
    [cond] = [e for e in events if isinstance(e, DeviceCondition)]
    assert "sensor off" in cond.detail
    assert conditions(codec.feed(NORMAL)) == {(Condition.SENSOR_OFF, "spo2", False)}


def test_kpa_is_sent_in_tenths_and_converted_to_mmhg() -> None:
    codec = CapnostreamCodec()
    events = codec.feed(KPA)
    assert readings(events) == {"etco2": 39.8, "rr": 14.0, "spo2": 96.0, "pr": 70.0}  # 5.3 kPa * 7.500617
    assert codec.co2_units == "kPa"


def test_apnea_zeros_are_readings_and_the_monitors_alarm_is_no_condition() -> None:
    codec = CapnostreamCodec()
    events = codec.feed(APNEA)  # its checksum is 0x85, sent escaped
    assert readings(events) == {"etco2": 0.0, "rr": 0.0, "spo2": 98.0, "pr": 72.0}
    assert conditions(events) == set()
    assert codec.device_alarms == {"no breath"}
    assert stats(codec) == (1, 0)


def test_volume_percent_and_unknown_units_give_no_etco2_reading() -> None:
    for units in (3, 0, 9):
        codec = CapnostreamCodec()
        events = codec.feed(Numerics(etco2=50, units=units).frame())
        assert readings(events) == {"rr": 16.0, "spo2": 98.0, "pr": 72.0}
        assert conditions(events) == {(Condition.INVALID_VALUE, "etco2", True)}
    assert CapnostreamCodec().feed(Numerics(etco2=None, units=3).frame()) == [
        DeviceCondition(Condition.NO_DATA, True, "etco2", "device sent no value (etco2 0xFF)"),
        Reading("rr", 16.0, float(T0)), Reading("spo2", 98.0, float(T0)), Reading("pr", 72.0, float(T0))]


def test_implausible_values_are_invalid_value_conditions() -> None:
    events = CapnostreamCodec().feed(Numerics(etco2=200, rr=151, spo2=101, pr=254).frame())
    assert readings(events) == {"pr": 254.0}
    assert conditions(events) == {(Condition.INVALID_VALUE, v, True) for v in ("etco2", "rr", "spo2")}


@pytest.mark.parametrize(("field", "bit", "expected"), [
    ("spo2_alarms", 0x20, (Condition.SENSOR_OFF, "spo2")),
    ("spo2_alarms", 0x40, (Condition.SENSOR_OFF, "spo2")),
    ("spo2_alarms", 0x01, (Condition.SIGNAL_QUALITY, "spo2")),
    ("extended", 0x01, (Condition.SENSOR_FAULT, "etco2")),
    ("extended", 0x02, (Condition.SENSOR_FAULT, "etco2")),
    ("extended", 0x04, (Condition.SENSOR_OFF, "etco2")),
])
def test_status_bits_map_to_conditions(field: str, bit: int, expected: tuple[Condition, str]) -> None:
    codec = CapnostreamCodec()
    events = codec.feed((Numerics(spo2_alarms=bit) if field == "spo2_alarms" else Numerics(extended=bit)).frame())
    assert readings(events) == {"etco2": 38.0, "rr": 16.0, "spo2": 98.0, "pr": 72.0}
    assert conditions(events) == {(*expected, True)}
    assert conditions(codec.feed(NORMAL)) == {(*expected, False)}


def test_bits_that_are_not_technical_conditions_raise_none() -> None:
    codec = CapnostreamCodec()
    events = codec.feed(Numerics(slow=0xFF, co2_alarms=0x3F, spo2_alarms=0x1E, extended=0x80 | 0x78).frame())
    assert conditions(events) == set()
    assert codec.low_battery
    assert codec.device_alarms == {"no breath", "EtCO2 high", "EtCO2 low", "RR high", "RR low", "FiCO2 high",
                                   "SpO2 high", "SpO2 low", "pulse rate high", "pulse rate low"}
    codec.feed(NORMAL)
    assert not codec.low_battery
    assert codec.device_alarms == frozenset()


def test_wave_fast_status_gives_filter_line_occlusion_and_malfunction() -> None:
    codec = CapnostreamCodec()
    events = codec.feed(WAVE_LINE_OFF)
    assert conditions(events) == {(Condition.SENSOR_OFF, "etco2", True)}
    assert readings(events) == {}  # the wave itself is not a reading
    assert codec.feed(wave(8, 0x40)) == []  # unchanged status: no event
    assert conditions(codec.feed(WAVE_OK)) == {(Condition.SENSOR_OFF, "etco2", False)}
    assert conditions(codec.feed(wave(9, 0x84))) == {(Condition.SENSOR_FAULT, "etco2", True)}
    assert codec.feed(wave(10, 0x80)) == []  # occlusion gone, malfunction stays: still SENSOR_FAULT
    assert conditions(codec.feed(wave(11, 0x01 | 0x02 | 0x08 | 0x10 | 0x20))) == {
        (Condition.SENSOR_FAULT, "etco2", False)}  # transient and per-sample bits raise nothing
    assert stats(codec) == (6, 0)


def test_wave_and_numerics_conditions_combine_in_either_order() -> None:
    codec = CapnostreamCodec()
    no_co2 = Numerics(etco2=None, rr=None).frame()
    assert conditions(codec.feed(no_co2)) == {(Condition.NO_DATA, "etco2", True), (Condition.NO_DATA, "rr", True)}
    # the wave says why: the sensor condition replaces the NO_DATA of its channel
    assert conditions(codec.feed(WAVE_LINE_OFF)) == {(Condition.SENSOR_OFF, "etco2", True),
                                                     (Condition.NO_DATA, "etco2", False),
                                                     (Condition.NO_DATA, "rr", False)}
    assert conditions(codec.feed(no_co2)) == set()  # numerics do not end the wave's condition
    assert conditions(codec.feed(WAVE_OK)) == {(Condition.SENSOR_OFF, "etco2", False),
                                               (Condition.NO_DATA, "etco2", True), (Condition.NO_DATA, "rr", True)}


def test_checksum_failure_is_rejected_and_the_next_frame_decodes() -> None:
    codec = CapnostreamCodec()
    assert codec.feed(NORMAL[:-1] + b"\xad") == []
    assert stats(codec) == (0, 1)
    assert readings(codec.feed(NO_ETCO2)) == {"rr": 16.0, "spo2": 97.0, "pr": 133.0}
    assert stats(codec) == (1, 1)


def test_garbage_then_a_valid_frame() -> None:
    codec = CapnostreamCodec()
    events = codec.feed(b"\x00\x01 garbage \xff\x80" + NORMAL)
    assert readings(events) == {"etco2": 38.0, "rr": 16.0, "spo2": 98.0, "pr": 72.0}
    assert stats(codec) == (1, 1)  # the garbage run is one rejected frame


def test_a_frame_cut_short_by_a_header_is_rejected_and_the_header_starts_the_next() -> None:
    codec = CapnostreamCodec()
    events = codec.feed(NORMAL[:12] + NO_ETCO2 + NORMAL[:3] + b"\x80" + NORMAL)
    assert [e.vital for e in events if isinstance(e, Reading)] == ["rr", "spo2", "pr", "etco2", "rr", "spo2", "pr"]
    assert stats(codec) == (2, 2)


def test_bad_escape_zero_length_and_short_numerics_are_rejected() -> None:
    codec = CapnostreamCodec()
    bad_escape = NORMAL.replace(b"\x80\x00", b"\x80\x07")
    zero_length = b"\x85\x00\x01\x01"
    short = frame(1, bytes(26))
    events = codec.feed(bad_escape + zero_length + short + NORMAL)
    assert readings(events) == {"etco2": 38.0, "rr": 16.0, "spo2": 98.0, "pr": 72.0}
    assert stats(codec) == (1, 3)  # the rest of each broken frame is not counted again


def test_padded_co2_wave_is_accepted() -> None:
    codec = CapnostreamCodec()
    assert codec.feed(WAVE_PADDED + NORMAL)[-1] == Reading("pr", 72.0, float(T0))
    assert stats(codec) == (2, 0)
    codec.feed(bytes.fromhex("85 1c 01") + NORMAL[3:-1] + b"\x00\x00")  # numerics: no padding allowed
    assert stats(codec) == (2, 1)


def test_other_messages_are_counted_and_ignored() -> None:
    codec = CapnostreamCodec()
    other = DEVICE_ID + frame(9, b"B\x02") + frame(60, bytes([5, 10])) + frame(99, b"") + frame(10, bytes([1, 1]))
    assert codec.feed(other) == []
    assert stats(codec) == (5, 0)


def test_a_long_run_of_garbage_is_counted_per_max_garbage_bytes() -> None:
    codec = CapnostreamCodec()
    codec.feed(b"\x00" * 1100)
    assert stats(codec) == (0, 2)
    codec.feed(NORMAL)
    assert stats(codec) == (1, 3)  # the last 76 bytes end at the header


GOLDEN = (b"\xff\x00noise\x80" + DEVICE_ID + NORMAL + WAVE_LINE_OFF + NORMAL[:-1] + b"\x00" + SPO2_OFF
          + WAVE_PADDED + NO_ETCO2[:9] + KPA + b"\x80\x80" + APNEA + WAVE_OK + frame(1, bytes(27)) + NO_ETCO2
          + NORMAL[:20])


def test_frames_split_at_every_byte_boundary_give_the_same_result() -> None:
    whole = CapnostreamCodec()
    expected = whole.feed(GOLDEN)
    assert len(expected) > 20
    assert stats(whole) == (10, 4)
    for cut in range(len(GOLDEN) + 1):
        codec = CapnostreamCodec()
        assert codec.feed(GOLDEN[:cut]) + codec.feed(GOLDEN[cut:]) == expected, cut
        assert codec.stats == whole.stats, cut
    codec = CapnostreamCodec()
    assert [e for i in range(len(GOLDEN)) for e in codec.feed(GOLDEN[i : i + 1])] == expected
    assert codec.stats == whole.stats


# ---------------------------------------------------------------- the driver


class FakeLink(SerialLink):
    def __init__(self) -> None:
        super().__init__(None, "fake://")
        self.sent: list[bytes] = []

    async def write(self, data: bytes) -> None:
        self.sent.append(data)


class QuickDriver(CapnostreamDriver):
    START_PAUSE = 0.0
    KEEP_ALIVE_PERIOD = 0.02


def test_driver_defaults_and_commands() -> None:
    assert CapnostreamDriver.key == "capnostream"
    d = CapnostreamDriver.DEFAULTS
    assert (d.baudrate, d.bytesize, d.parity, d.stopbits) == (115200, 8, "N", 1)
    assert encode_command(1) == b"\x85\x01\x01\x00"  # enable communication
    assert encode_command(4) == b"\x85\x01\x04\x05"  # start real-time communication
    assert encode_command(6) == b"\x85\x01\x06\x07"  # link is active
    assert encode_command(10, bytes([1, 1])) == b"\x85\x03\x0a\x01\x01\x09"
    assert encode_command(0x80, bytes([0x85])) == b"\x85\x02\x80\x00\x80\x05\x07"  # code, payload escaped
    assert isinstance(CapnostreamDriver(DeviceSettings("c1", port="x")).codec, CapnostreamCodec)


async def test_driver_start_and_keep_alive() -> None:
    driver = QuickDriver(DeviceSettings("capno-1", port="fake://"))
    link = FakeLink()
    await driver._send_start(link)
    assert link.sent == [b"\x85\x01\x01\x00", b"\x85\x01\x04\x05"]
    link.sent.clear()
    seen = await driver._keep_alive_tick(link, 0)  # nothing heard: ask again
    assert link.sent == [b"\x85\x01\x01\x00", b"\x85\x01\x04\x05"]
    driver.codec.feed(NORMAL)
    link.sent.clear()
    assert await driver._keep_alive_tick(link, seen) == 1
    assert link.sent == [b"\x85\x01\x06\x07"]


# ---------------------------------------------------------------- property-based tests

byte_or_none = st.none() | st.integers(0, 254)
numerics = st.builds(
    Numerics,
    time=st.integers(0, 2**32 - 1),
    etco2=byte_or_none, fico2=byte_or_none, rr=byte_or_none, spo2=byte_or_none, pr=byte_or_none,
    slow=st.integers(0, 255), co2_alarms=st.integers(0, 255), spo2_alarms=st.integers(0, 255),
    no_breath=st.integers(0, 255), limits=st.binary(min_size=9, max_size=9), units=st.sampled_from([1, 2]),
    extended=st.integers(0, 255),
)
no_header = st.binary(max_size=60).map(lambda g: g.replace(b"\x85", b""))
PROTOCOL_BYTES = st.lists(st.sampled_from([0x85, 0x80, 0x00, 0x05, 0x01, 0x1C, 0x04, 0xFF, 0x20, 0x40]),
                          max_size=80).map(bytes)


def expected_readings(n: Numerics) -> list[tuple[str, float, float]]:
    """What the spec says the numerics mean: 0xFF no value; EtCO2 in mmHg, or kPa tenths converted; plausible only."""
    out = []
    for vital, raw, top in (("etco2", n.etco2, 150), ("rr", n.rr, 150), ("spo2", n.spo2, 100), ("pr", n.pr, 350)):
        if raw is None:
            continue
        value = float(raw) if vital != "etco2" or n.units == 1 else round(raw / 10 * 7.500617, 1)
        if value <= top:
            out.append((vital, value, float(n.time)))
    return out


def expected_present(n: Numerics | None, fast: int) -> set[tuple[Condition, str | None]]:
    present: set[tuple[Condition, str | None]] = set()
    if fast & 0x40:
        present.add((Condition.SENSOR_OFF, "etco2"))
    if fast & 0x84:
        present.add((Condition.SENSOR_FAULT, "etco2"))
    if n is None:
        return present
    if n.spo2_alarms & 0x60:
        present.add((Condition.SENSOR_OFF, "spo2"))
    if n.spo2_alarms & 0x01:
        present.add((Condition.SIGNAL_QUALITY, "spo2"))
    if n.extended & 0x03:
        present.add((Condition.SENSOR_FAULT, "etco2"))
    if n.extended & 0x04:
        present.add((Condition.SENSOR_OFF, "etco2"))
    sensor = {ch for c, ch in present if c in (Condition.SENSOR_OFF, Condition.SENSOR_FAULT)}
    got = {v for v, _, _ in expected_readings(n)}
    for vital, raw, channel in (("etco2", n.etco2, "etco2"), ("rr", n.rr, "etco2"), ("spo2", n.spo2, "spo2"),
                                ("pr", n.pr, "spo2")):
        if raw is None:
            if channel not in sensor:
                present.add((Condition.NO_DATA, vital))
        elif vital not in got:
            present.add((Condition.INVALID_VALUE, vital))
    return present


def changes(before: set[tuple[Condition, str | None]], after: set[tuple[Condition, str | None]]) -> set[Cond]:
    return {(c, v, True) for c, v in after - before} | {(c, v, False) for c, v in before - after}


def feed_in_chunks(codec: CapnostreamCodec, data: bytes, cuts: Sequence[int]) -> list[DeviceEvent]:
    events: list[DeviceEvent] = []
    start = 0
    for cut in sorted(c % (len(data) + 1) for c in cuts):
        events += codec.feed(data[start:cut])
        start = cut
    return events + codec.feed(data[start:])


def mutated(data: bytes, at: int, xor: int) -> bytes:
    i = at % len(data)
    return data[:i] + bytes([data[i] ^ xor]) + data[i + 1 :]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=300) | PROTOCOL_BYTES
                | st.builds(mutated, numerics.map(Numerics.frame), st.integers(0, 100), st.integers(1, 255)),
                max_size=12))
def test_arbitrary_bytes_never_raise_and_counters_only_grow(chunks: list[bytes]) -> None:
    codec = CapnostreamCodec()
    frames = rejected = 0
    for chunk in chunks:
        for event in codec.feed(chunk):
            assert isinstance(event, Reading | DeviceCondition)
            if isinstance(event, Reading):
                assert event.vital in {"etco2", "rr", "spo2", "pr"}
                assert 0 <= event.value <= {"etco2": 150, "rr": 150, "spo2": 100, "pr": 254}[event.vital]
        assert codec.stats.frames >= frames and codec.stats.rejected >= rejected
        frames, rejected = codec.stats.frames, codec.stats.rejected


@settings(max_examples=250, deadline=None)
@given(st.lists(st.tuples(no_header, numerics | st.integers(0, 255)), min_size=1, max_size=8), no_header,
       st.lists(st.integers(0, 10_000)))
def test_frames_between_garbage_without_headers_are_all_recovered_in_order(
        pieces: list[tuple[bytes, Numerics | int]], tail: bytes, cuts: list[int]) -> None:
    """Garbage holding no 0x85 cannot start a frame, and a raw 0x85 always starts one (even after a stray 0x80):
    every frame is decoded, nothing else is, and each non-empty run of garbage before a frame is one reject."""
    stream = b"".join(g + (f.frame() if isinstance(f, Numerics) else wave(i, f)) for i, (g, f) in enumerate(pieces))
    codec = CapnostreamCodec()
    events = feed_in_chunks(codec, stream + tail, cuts)
    want = [r for _, f in pieces if isinstance(f, Numerics) for r in expected_readings(f)]
    assert [(e.vital, e.value, e.device_time) for e in events if isinstance(e, Reading)] == want
    assert stats(codec) == (len(pieces), sum(1 for g, _ in pieces if g))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.binary(max_size=40) | PROTOCOL_BYTES, numerics), min_size=1, max_size=6),
       st.lists(st.integers(0, 10_000)))
def test_garbage_with_headers_never_swallows_a_valid_frame(pieces: list[tuple[bytes, Numerics]], cuts: list[int]
                                                           ) -> None:
    """Garbage holding 0x85 may start a bogus frame, but the next raw 0x85 ends it: every real frame is still
    decoded, in order (a bogus frame could pass its checksum by chance, so the real ones are a subsequence)."""
    stream = b"".join(g + n.frame() for g, n in pieces)
    codec = CapnostreamCodec()
    got = iter([(e.vital, e.value, e.device_time) for e in feed_in_chunks(codec, stream, cuts)
                if isinstance(e, Reading)])
    want = [r for _, n in pieces for r in expected_readings(n)]
    assert all(r in got for r in want)  # `in` on an iterator consumes it: an in-order subsequence test
    assert codec.stats.frames >= len(pieces)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(numerics, st.none() | st.integers(0, 255)), min_size=1, max_size=10))
def test_round_trip_values_and_conditions(steps: list[tuple[Numerics, int | None]]) -> None:
    codec = CapnostreamCodec()
    last: Numerics | None = None
    fast = 0
    active: set[tuple[Condition, str | None]] = set()
    waves = 0
    for number, (n, new_fast) in enumerate(steps):
        if new_fast is not None:
            waves += 1
            events = codec.feed(wave(number, new_fast))
            fast = new_fast
            now = expected_present(last, fast)
            assert conditions(events) == changes(active, now)
            assert readings(events) == {}
            active = now
        events = codec.feed(n.frame())
        last = n
        now = expected_present(last, fast)
        assert [(e.vital, e.value, e.device_time) for e in events if isinstance(e, Reading)] == expected_readings(n)
        assert conditions(events) == changes(active, now)
        active = now
        assert codec.low_battery == bool(n.extended & 0x80)
        assert codec.co2_units == {1: "mmHg", 2: "kPa"}[n.units]
    assert stats(codec) == (len(steps) + waves, 0)
