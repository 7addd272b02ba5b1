"""The Nellcor N-560 / N-595 codec on the documented lines (shared/reference/device-protocols.md §1.3), and
property-based tests: any input is survived, valid lines are recovered from garbage, values round-trip."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.nellcor import NellcorCodec
from drivers.nellcor_driver import NellcorDriver
from monitor.model import Condition, DeviceCondition, DeviceEvent, Reading

HEADER_560 = (b"N-560    VERSION 1.56.00    CRC:XXXX  SpO2 Limit: 90-100%    PR Limit: 60-170BPM\r\n"
              b"                             ADULT            0SAT-S\r\n"
              b"TIME                 %SpO2   BPM     PA     Status\r\n")
NORMAL = b"29-Dec-17 07:18:43    99      66      12\r\n"
STARRED = b"29-Dec-17 07:18:57    89*     66     201    MO SL\r\n"
DISCONNECT = b"29-Dec-17 07:19:29   ---     ---     ---    SD          AS\r\n"
PULSE_SEARCH = b"29-Dec-17 07:20:27     0       0     ---    PS\r\n"
# lines made in the documented format (not in the reference text itself)
SENSOR_OFF = b"29-Dec-17 07:19:57   ---     ---     ---    SO               \r\n"
BACK = b"29-Dec-17 07:20:43    94     119       5                     \r\n"
NO_VALUE = b"29-Dec-17 07:21:15   ---      63     ---\r\n"

Cond = tuple[Condition, str | None, bool]


def readings(events: Sequence[object]) -> dict[str, float]:
    return {e.vital: e.value for e in events if isinstance(e, Reading)}


def conditions(events: Sequence[object]) -> set[Cond]:
    return {(e.condition, e.vital, e.active) for e in events if isinstance(e, DeviceCondition)}


def at(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").timestamp()


# ---------------------------------------------------------------- golden tests on the documented lines


def test_plain_line_values_units_and_device_time() -> None:
    codec = NellcorCodec()
    events = codec.feed(NORMAL)
    assert events == [Reading("spo2", 99.0, at("2017-12-29 07:18:43")), Reading("pr", 66.0, at("2017-12-29 07:18:43"))]
    assert (codec.stats.frames, codec.stats.rejected) == (1, 0)


def test_star_marked_value_is_still_a_reading_and_mo_is_signal_quality() -> None:
    codec = NellcorCodec()
    events = codec.feed(STARRED)
    assert readings(events) == {"spo2": 89.0, "pr": 66.0}
    assert conditions(events) == {(Condition.SIGNAL_QUALITY, None, True)}
    [cond] = [e for e in events if isinstance(e, DeviceCondition)]
    assert "MO" in cond.detail
    assert codec.monitor_codes == {"SL"}  # the monitor's own alarm state: no condition
    ended = codec.feed(NORMAL)
    assert conditions(ended) == {(Condition.SIGNAL_QUALITY, None, False)}


def test_sensor_disconnect_dashes_are_no_value_explained_by_the_sensor_condition() -> None:
    codec = NellcorCodec()
    codec.feed(NORMAL)
    events = codec.feed(DISCONNECT)
    assert readings(events) == {}
    assert conditions(events) == {(Condition.SENSOR_OFF, None, True)}  # no NO_DATA: SD says why
    [cond] = [e for e in events if isinstance(e, DeviceCondition)]
    assert "SD" in cond.detail
    assert codec.feed(SENSOR_OFF) == []  # SD -> SO: still sensor off, no new event
    back = codec.feed(BACK)
    assert conditions(back) == {(Condition.SENSOR_OFF, None, False)}
    assert readings(back) == {"spo2": 94.0, "pr": 119.0}


def test_sensor_off_line() -> None:
    events = NellcorCodec().feed(SENSOR_OFF)
    assert readings(events) == {}
    assert conditions(events) == {(Condition.SENSOR_OFF, None, True)}


def test_zeros_during_pulse_search_are_not_readings() -> None:
    codec = NellcorCodec()
    codec.feed(NORMAL)
    events = codec.feed(PULSE_SEARCH)
    assert readings(events) == {}
    assert all(not isinstance(e, Reading) for e in events)
    assert conditions(events) == {(Condition.SIGNAL_QUALITY, None, True)}
    [cond] = [e for e in events if isinstance(e, DeviceCondition)]
    assert "PS" in cond.detail
    assert codec.feed(PULSE_SEARCH.replace(b"07:20:27", b"07:20:29")) == []  # still searching: nothing new
    back = codec.feed(BACK)
    assert conditions(back) == {(Condition.SIGNAL_QUALITY, None, False)}
    assert readings(back) == {"spo2": 94.0, "pr": 119.0}


def test_zeros_during_loss_of_pulse_are_not_readings() -> None:
    for code in (b"LP", b"LM"):
        events = NellcorCodec().feed(b"29-Dec-17 07:20:27     0       0     ---    " + code + b"\r\n")
        assert readings(events) == {}
        assert conditions(events) == {(Condition.SIGNAL_QUALITY, None, True)}


def test_values_printed_during_pulse_search_that_are_not_zero_are_readings() -> None:
    events = NellcorCodec().feed(b"29-Dec-17 07:21:13    96      63     ---    PS\r\n")
    assert readings(events) == {"spo2": 96.0, "pr": 63.0}
    assert conditions(events) == {(Condition.SIGNAL_QUALITY, None, True)}


def test_dashes_without_a_sensor_code_are_no_data_for_that_vital_until_a_value_returns() -> None:
    codec = NellcorCodec()
    events = codec.feed(NO_VALUE)
    assert readings(events) == {"pr": 63.0}
    assert conditions(events) == {(Condition.NO_DATA, "spo2", True)}
    back = codec.feed(NORMAL)
    assert conditions(back) == {(Condition.NO_DATA, "spo2", False)}
    assert readings(back) == {"spo2": 99.0, "pr": 66.0}


def test_implausible_values_are_invalid_value_conditions_not_readings() -> None:
    events = NellcorCodec().feed(b"29-Dec-17 07:18:43   120     400      12\r\n")
    assert readings(events) == {}
    assert conditions(events) == {(Condition.INVALID_VALUE, "spo2", True), (Condition.INVALID_VALUE, "pr", True)}


def test_low_battery_and_alarm_codes_raise_no_condition() -> None:
    codec = NellcorCodec()
    events = codec.feed(b"29-Dec-17 07:18:43    99      66      12    LB AO PH\r\n")
    assert readings(events) == {"spo2": 99.0, "pr": 66.0}
    assert conditions(events) == set()
    assert codec.low_battery
    assert codec.monitor_codes == {"LB", "AO", "PH"}
    codec.feed(NORMAL)
    assert not codec.low_battery


def test_n560_header_gives_model_and_limits_and_is_not_rejected() -> None:
    codec = NellcorCodec()
    assert codec.feed(HEADER_560) == []
    assert codec.model == "N-560"
    assert codec.version == "1.56.00"
    assert codec.limits == {"spo2": (90.0, 100.0), "pr": (60.0, 170.0)}
    assert codec.patient_mode == "ADULT"
    assert (codec.stats.frames, codec.stats.rejected) == (0, 0)


def test_n595_header_with_resp_mode_and_changed_limits() -> None:
    codec = NellcorCodec()
    codec.feed(HEADER_560)
    n595 = (b"N-595    VERSION 1.3.0.0    CRC:1F2A  SpO2 Limit: 85- 99%    PR Limit: 50-150BPM\r\n"
            b"                             NEO              25SAT-S    SPO2 RESP MODE: FAST\r\n"
            b"TIME                 %SPO2   BPM     PA     Status\r\n"
            b"SPO2 RESP MODE: NORMAL\r\n")
    assert codec.feed(n595) == []
    assert codec.model == "N-595"
    assert codec.limits == {"spo2": (85.0, 99.0), "pr": (50.0, 150.0)}
    assert codec.patient_mode == "NEO"
    assert codec.resp_mode == "NORMAL"  # the later line wins
    assert codec.stats.rejected == 0


def test_interactive_mode_menu_lines_are_not_rejected() -> None:
    codec = NellcorCodec()
    codec.feed(b"NPB-595   Interactive Mode\r\n    1) Dump Instrument Info\r\n    0) Exit Interactive Mode\r\n"
               b"    Command?\r\n")
    assert codec.stats.rejected == 0


def test_whole_capture_decodes_without_rejects() -> None:
    codec = NellcorCodec()
    events = codec.feed(HEADER_560 + NORMAL + STARRED + DISCONNECT + SENSOR_OFF + HEADER_560 + PULSE_SEARCH + BACK)
    assert [(e.vital, e.value) for e in events if isinstance(e, Reading)] == [
        ("spo2", 99.0), ("pr", 66.0), ("spo2", 89.0), ("pr", 66.0), ("spo2", 94.0), ("pr", 119.0)]
    assert [(e.condition, e.active) for e in events if isinstance(e, DeviceCondition)] == [
        (Condition.SIGNAL_QUALITY, True),  # MO
        (Condition.SIGNAL_QUALITY, False), (Condition.SENSOR_OFF, True),  # SD
        (Condition.SENSOR_OFF, False), (Condition.SIGNAL_QUALITY, True),  # PS
        (Condition.SIGNAL_QUALITY, False)]
    assert (codec.stats.frames, codec.stats.rejected) == (6, 0)


def test_lf_alone_and_cr_alone_end_lines_too() -> None:
    for eol in (b"\n", b"\r"):
        codec = NellcorCodec()
        events = codec.feed(NORMAL.replace(b"\r\n", eol) + BACK.replace(b"\r\n", eol))
        assert [e.value for e in events if isinstance(e, Reading)] == [99.0, 66.0, 94.0, 119.0]
        assert codec.stats.rejected == 0


def test_garbage_between_lines_is_counted_and_decoding_continues() -> None:
    codec = NellcorCodec()
    stream = (b"\xff\xfe garbage\r\n" + NORMAL + b"29-Dec-17 broken line\r\n" + STARRED
              + b"31-Feb-17 07:18:43    99      66      12\r\n"  # no such date
              + b"29-Foo-17 07:18:43    99      66      12\r\n"  # no such month
              + b"29-Dec-17 07:18:43    99      66      12    M0\r\n"  # not a status code
              + b"29-Dec-17 07:18:43    9-9     66      12\r\n"
              + BACK)
    events = codec.feed(stream)
    assert [e.value for e in events if isinstance(e, Reading) and e.vital == "spo2"] == [99.0, 89.0, 94.0]
    assert codec.stats.frames == 3
    assert codec.stats.rejected == 6


def test_endless_line_is_dropped_and_counted() -> None:
    codec = NellcorCodec()
    assert codec.feed(b"A" * 2000) == []
    assert codec.stats.rejected == 1
    assert readings(codec.feed(b"\r\n" + NORMAL)) == {"spo2": 99.0, "pr": 66.0}


GOLDEN = (HEADER_560 + NORMAL + b"\x00\xffnoise\r\n" + STARRED + DISCONNECT + SENSOR_OFF + PULSE_SEARCH + BACK
          + NO_VALUE + NORMAL)


def test_lines_split_at_every_byte_boundary_give_the_same_result() -> None:
    whole = NellcorCodec()
    expected = whole.feed(GOLDEN)
    assert len(expected) > 10
    for cut in range(len(GOLDEN) + 1):
        codec = NellcorCodec()
        assert codec.feed(GOLDEN[:cut]) + codec.feed(GOLDEN[cut:]) == expected, cut
        assert codec.stats == whole.stats
        assert codec.limits == whole.limits
    codec = NellcorCodec()
    assert [e for i in range(len(GOLDEN)) for e in codec.feed(GOLDEN[i : i + 1])] == expected
    assert codec.stats == whole.stats


def test_driver_defaults() -> None:
    assert NellcorDriver.key == "nellcor"
    d = NellcorDriver.DEFAULTS
    assert (d.baudrate, d.bytesize, d.parity, d.stopbits) == (9600, 8, "N", 1)


# ---------------------------------------------------------------- property-based tests

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
CODES = ("AO", "AS", "LB", "LM", "LP", "MO", "PH", "PL", "PS", "SH", "SL", "SD", "SO")
SENSOR = {"SD", "SO"}
SIGNAL = {"PS", "MO", "LP", "LM"}
ZERO_IS_MISSING = {"PS", "LP", "LM", "SD", "SO"}

# bytes that look like the protocol, so that generated input reaches deep into the parser
PROTOCOL_ALPHABET = "0123456789-*:% \r\nDecJanFebSDSOPSMOLPLMNVERSIONLimitBPMADULTSAT"


def format_line(t: datetime, spo2: int | None, pr: int | None, pa: int | None, stars: tuple[bool, bool, bool],
                codes: Sequence[str], gaps: Sequence[int], eol: bytes) -> bytes:
    """A trend line as the §1.3 spec shows it: `dd-MMM-yy HH:mm:ss`, right-aligned columns, `---` for no value, a
    `*` after a value outside the monitor's limits, two-letter status codes after it."""
    stamp = f"{t.day:02d}-{MONTHS[t.month - 1]}-{t.year % 100:02d} {t.hour:02d}:{t.minute:02d}:{t.second:02d}"
    cells = ""
    for width, value, star in zip((6, 8, 8), (spo2, pr, pa), stars, strict=True):
        cells += f"{'---' if value is None else value:>{width}}" + ("*" if star and value is not None else "")
    status = "".join(" " * gap + code for gap, code in zip(gaps, codes, strict=False))
    return f"{stamp}{cells}{status}".encode("ascii") + eol


def expected_readings(spo2: int | None, pr: int | None, codes: Sequence[str]) -> dict[str, float]:
    """What the spec says these values mean: `---` no value; 0 while searching / no pulse / no sensor no value."""
    out = {}
    for vital, value in (("spo2", spo2), ("pr", pr)):
        if value is None or (value == 0 and ZERO_IS_MISSING & set(codes)):
            continue
        out[vital] = float(value)
    return out


def expected_conditions(spo2: int | None, pr: int | None, codes: Sequence[str]) -> set[tuple[Condition, str | None]]:
    present: set[tuple[Condition, str | None]] = set()
    if SENSOR & set(codes):
        present.add((Condition.SENSOR_OFF, None))
    if SIGNAL & set(codes):
        present.add((Condition.SIGNAL_QUALITY, None))
    for vital, value in (("spo2", spo2), ("pr", pr)):
        if value is None and not SENSOR & set(codes):
            present.add((Condition.NO_DATA, vital))
    return present


times = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31, 23, 59, 59)).map(
    lambda t: t.replace(microsecond=0))
lines = st.builds(
    lambda t, spo2, pr, pa, stars, codes, gaps, eol: (t, spo2, pr, codes,
                                                      format_line(t, spo2, pr, pa, stars, codes, gaps, eol)),
    times,
    st.none() | st.integers(0, 100),
    st.none() | st.integers(0, 300),
    st.none() | st.integers(0, 255),
    st.tuples(st.booleans(), st.booleans(), st.booleans()),
    st.lists(st.sampled_from(CODES), unique=True, max_size=4),
    st.lists(st.integers(1, 12), min_size=4, max_size=4),
    st.sampled_from([b"\r\n", b"\n"]),
)
garbage = (st.binary(max_size=80) | st.text(PROTOCOL_ALPHABET, max_size=80).map(str.encode)
           | st.just(b"#" * 700)).flatmap(lambda g: st.sampled_from([b"\r\n", b"\n", b"\r"]).map(lambda e: g + e))


def feed_in_chunks(codec: NellcorCodec, data: bytes, cuts: Sequence[int]) -> list[DeviceEvent]:
    events: list[DeviceEvent] = []
    start = 0
    for cut in sorted(c % (len(data) + 1) for c in cuts):
        events += codec.feed(data[start:cut])
        start = cut
    return events + codec.feed(data[start:])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=300) | st.text(PROTOCOL_ALPHABET, max_size=300).map(str.encode), max_size=12))
def test_arbitrary_bytes_never_raise_and_counters_only_grow(chunks: list[bytes]) -> None:
    codec = NellcorCodec()
    frames = rejected = 0
    for chunk in chunks:
        for event in codec.feed(chunk):
            assert isinstance(event, Reading | DeviceCondition)
            if isinstance(event, Reading):
                assert event.vital in {"spo2", "pr"}
                assert event.value == event.value and 0 <= event.value <= 350
        assert codec.stats.frames >= frames and codec.stats.rejected >= rejected
        frames, rejected = codec.stats.frames, codec.stats.rejected


@settings(max_examples=250, deadline=None)
@given(st.lists(st.tuples(garbage, lines), min_size=1, max_size=8), garbage, st.lists(st.integers(0, 10_000)))
def test_valid_lines_between_garbage_are_all_recovered_in_order(
        pieces: list[tuple[bytes, tuple[datetime, int | None, int | None, list[str], bytes]]], tail: bytes,
        cuts: list[int]) -> None:
    stream = b"".join(g + line[-1] for g, line in pieces) + tail
    want = [(vital, value, t.timestamp())
            for _, (t, spo2, pr, codes, _) in pieces
            for vital, value in expected_readings(spo2, pr, codes).items()]
    codec = NellcorCodec()
    events = feed_in_chunks(codec, stream, cuts)
    assert [(e.vital, e.value, e.device_time) for e in events if isinstance(e, Reading)] == want
    assert codec.stats.frames == len(pieces)


@settings(max_examples=300, deadline=None)
@given(st.lists(lines, min_size=1, max_size=10))
def test_round_trip_values_and_conditions(generated: list[tuple[datetime, int | None, int | None, list[str], bytes]]
                                          ) -> None:
    codec = NellcorCodec()
    active: set[tuple[Condition, str | None]] = set()
    for t, spo2, pr, codes, line in generated:
        events = codec.feed(line)
        got = [e for e in events if isinstance(e, Reading)]
        assert readings(got) == expected_readings(spo2, pr, codes), line
        assert all(e.device_time == t.timestamp() for e in got)
        now = expected_conditions(spo2, pr, codes)
        assert conditions(events) == ({(c, v, True) for c, v in now - active}
                                      | {(c, v, False) for c, v in active - now}), line
        active = now
    assert (codec.stats.frames, codec.stats.rejected) == (len(generated), 0)
