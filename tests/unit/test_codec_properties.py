"""Property-based tests of the Masimo and MQTT codecs (the other codecs have theirs beside their golden tests):
no input makes them raise; valid frames hidden in garbage all come out, in order; encoder -> decoder round trips.
The encoders are the simulators', written apart from the decoders."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.masimo import MasimoCodec
from drivers.mqtt_numerics import MqttNumericsCodec
from monitor.model import Condition, DeviceCondition, Reading
from monitor.vitals import VITALS
from simulators.masimo import format_line
from simulators.mqtt_monitor import numerics_payload

WHEN = datetime(2026, 3, 4, 5, 6, 7)
spo2 = st.none() | st.integers(0, 100)
pulse = st.none() | st.integers(0, 350)
pi = st.none() | st.floats(0.02, 20.0).map(lambda v: round(v, 2))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=200), max_size=20))
def test_masimo_never_raises_and_counts_only_grow(chunks: list[bytes]) -> None:
    codec = MasimoCodec()
    before = (0, 0)
    for chunk in chunks:
        codec.feed(chunk)
        now = (codec.stats.frames, codec.stats.rejected)
        assert now[0] >= before[0] and now[1] >= before[1]
        before = now


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.binary(max_size=80), st.integers(0, 100)), min_size=1, max_size=8))
def test_masimo_lines_between_garbage_are_all_recovered_in_order(pieces: list[tuple[bytes, int]]) -> None:
    stream = b""
    for garbage, value in pieces:
        stream += garbage.replace(b"\n", b"") + b"\r\n"  # garbage ends its own line: it cannot merge into the next
        stream += format_line({"spo2": value, "pr": 70, "pi": 2.0}, WHEN)
    got = [e.value for e in MasimoCodec().feed(stream) if isinstance(e, Reading) and e.vital == "spo2"]
    assert got == [float(v) for _, v in pieces]


@settings(max_examples=300, deadline=None)
@given(spo2, pulse, pi)
def test_masimo_round_trip(s: int | None, p: int | None, i: float | None) -> None:
    events = MasimoCodec().feed(format_line({"spo2": s, "pr": p, "pi": i}, WHEN))
    readings = {e.vital: e.value for e in events if isinstance(e, Reading)}
    expected = {k: float(v) for k, v in (("spo2", s), ("pr", p), ("pi", i)) if v is not None}
    assert readings == expected
    missing = {e.vital for e in events if isinstance(e, DeviceCondition) and e.condition == Condition.NO_DATA}
    assert missing == {k for k, v in (("spo2", s), ("pr", p), ("pi", i)) if v is None}
    assert {e.device_time for e in events if isinstance(e, Reading)} <= {WHEN.timestamp()}


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                                     max_size=3), max_leaves=10)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300) | json_values.map(lambda v: json.dumps(v).encode()))
def test_mqtt_never_raises_on_any_payload(payload: bytes) -> None:
    codec = MqttNumericsCodec()
    codec.numerics(payload)
    codec.presence(payload)
    assert codec.stats.frames + codec.stats.rejected >= 1


vital_values = st.dictionaries(st.sampled_from(sorted(VITALS)),
                               st.none() | st.floats(0, 100, allow_nan=False).map(lambda v: round(v, 1)), max_size=8)


@settings(max_examples=300, deadline=None)
@given(vital_values, st.integers(0, 2**31))
def test_mqtt_round_trip(values: dict[str, float | None], seq: int) -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    events = MqttNumericsCodec().numerics(numerics_payload(values, seq, when))
    readings = {e.vital: e.value for e in events if isinstance(e, Reading)}
    plausible = {k: v for k, v in values.items()
                 if v is not None and VITALS[k].plausible_min <= v <= VITALS[k].plausible_max}
    assert readings == plausible
    assert all(e.device_time == when.timestamp() for e in events if isinstance(e, Reading))
    missing = {e.vital for e in events if isinstance(e, DeviceCondition) and e.condition == Condition.NO_DATA}
    assert missing == {k for k, v in values.items() if v is None}
