"""The Masimo ASCII 1 codec on the documented real lines (shared/reference/device-protocols.md §1.2)."""

from __future__ import annotations

from datetime import datetime

from drivers.masimo import MasimoCodec
from monitor.model import Condition, DeviceCondition, Reading

RADICAL7 = (b"12/01/05 11:56:29 SN=0123456789 SPO2=098% BPM=240 PI=20.00% SPCO=01.0% SPMET=00.5% DESAT=01 "
            b"PIDELTA=-02 PVI=027 ALARM=0000 EXC=000820\r\n")
RADICAL5 = b"09/15/10 15:10:29 SPO2=097% BPM=064 PI=11.82% ALARM=20 EXC=800\r\n"
RAD8 = (b"02/22/16 22:47:45 SN=0000056661 SPO2=098% BPM=097 PI=03.60% SPCO=--.-% SPMET=--.-% DESAT=-- "
        b"PIDELTA=+-- ALARM=0000 EXC=000800\r\n")
RAD7_COLOR = (b"03/17/16 19:19:36 SN=---------- SPO2=098% BPM=123 PI=00.55 SPCO=--% SPMET=--.-% SPHB=--.- SPOC=-- "
              b"RESVD=--- DESAT=-- PIDELTA=+-- PVI=--- ALARM=000000 EXC=0000C00 EXC1=00000000\r\n")


def readings(events: list[object]) -> dict[str, float]:
    return {e.vital: e.value for e in events if isinstance(e, Reading)}


def conditions(events: list[object]) -> set[tuple[Condition, str | None, bool]]:
    return {(e.condition, e.vital, e.active) for e in events if isinstance(e, DeviceCondition)}


def test_radical7_line_values_time_and_sensor_off_bit() -> None:
    events = MasimoCodec().feed(RADICAL7)
    assert readings(events) == {"spo2": 98.0, "pr": 240.0, "pi": 20.0}
    assert conditions(events) == {(Condition.SENSOR_OFF, None, True)}  # EXC 0x20 set
    times = {e.device_time for e in events if isinstance(e, Reading)}
    assert times == {datetime(2005, 12, 1, 11, 56, 29).timestamp()}


def test_radical5_short_line() -> None:
    codec = MasimoCodec()
    events = codec.feed(RADICAL5)
    assert readings(events) == {"spo2": 97.0, "pr": 64.0, "pi": 11.82}
    assert conditions(events) == set()
    assert (codec.stats.frames, codec.stats.rejected) == (1, 0)


def test_rad8_dashes_in_fields_we_do_not_read_are_harmless() -> None:
    events = MasimoCodec().feed(RAD8)
    assert readings(events) == {"spo2": 98.0, "pr": 97.0, "pi": 3.6}


def test_rad7_color_low_signal_iq_bit() -> None:
    events = MasimoCodec().feed(RAD7_COLOR)
    assert readings(events) == {"spo2": 98.0, "pr": 123.0, "pi": 0.55}
    assert conditions(events) == {(Condition.SIGNAL_QUALITY, None, True)}  # EXC 0x400 low SIQ


def test_dashes_are_no_value_never_zero_and_the_condition_ends_when_values_return() -> None:
    codec = MasimoCodec()
    dashed = b"02/22/16 22:47:46 SN=0000056661 SPO2=---% BPM=--- PI=--.--% ALARM=0000 EXC=000800\r\n"
    events = codec.feed(dashed)
    assert readings(events) == {}
    assert conditions(events) == {(Condition.NO_DATA, "spo2", True), (Condition.NO_DATA, "pr", True),
                                  (Condition.NO_DATA, "pi", True)}
    back = codec.feed(RAD8)
    assert readings(back) == {"spo2": 98.0, "pr": 97.0, "pi": 3.6}
    assert conditions(back) == {(Condition.NO_DATA, "spo2", False), (Condition.NO_DATA, "pr", False),
                                (Condition.NO_DATA, "pi", False)}


def test_sensor_off_with_dashes_reports_sensor_off_not_no_data() -> None:
    line = b"02/22/16 22:47:46 SPO2=---% BPM=--- PI=--.--% ALARM=0000 EXC=000020\r\n"
    events = MasimoCodec().feed(line)
    assert readings(events) == {}
    assert conditions(events) == {(Condition.SENSOR_OFF, None, True)}


def test_split_across_reads_and_garbage_between_lines() -> None:
    codec = MasimoCodec()
    stream = b"\xff\xfe garbage\r\n" + RADICAL5 + b"12/01/05 broken line\r\n" + RAD8
    got: list[object] = []
    for i in range(0, len(stream), 7):
        got += codec.feed(stream[i : i + 7])
    assert [e.value for e in got if isinstance(e, Reading) and e.vital == "spo2"] == [97.0, 98.0]
    assert codec.stats.frames == 2
    assert codec.stats.rejected == 2


def test_implausible_value_is_an_invalid_value_condition() -> None:
    events = MasimoCodec().feed(b"09/15/10 15:10:29 SPO2=140% BPM=064 PI=11.82% ALARM=20 EXC=800\r\n")
    assert "spo2" not in readings(events)
    assert (Condition.INVALID_VALUE, "spo2", True) in conditions(events)


def test_endless_line_is_dropped_and_counted() -> None:
    codec = MasimoCodec()
    assert codec.feed(b"A" * 2000) == []
    assert codec.stats.rejected == 1
    # what follows up to the next line end is still that line, whether it came in the same read or not
    assert codec.feed(RADICAL5) == [] and MasimoCodec().feed(b"A" * 2000 + RADICAL5) == []
    assert readings(codec.feed(RADICAL5)) == {"spo2": 97.0, "pr": 64.0, "pi": 11.82}
    assert (codec.stats.frames, codec.stats.rejected) == (1, 1)
