"""The bedside/v1 MQTT numerics codec."""

from __future__ import annotations

import json
import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.mqtt_numerics import MqttNumericsCodec
from monitor.model import Condition, DeviceCondition, Reading


def msg(**fields: object) -> bytes:
    base: dict[str, object] = {"ts": "2026-01-01T12:00:00.000Z", "seq": 1, "values": {}}
    base.update(fields)
    return json.dumps(base).encode()


def test_values_time_and_null_is_no_data() -> None:
    codec = MqttNumericsCodec()
    events = codec.numerics(msg(values={"spo2": 97, "hr": None, "nibp_sys": 121.5}))
    got = {e.vital: (e.value, e.device_time) for e in events if isinstance(e, Reading)}
    assert got == {"spo2": (97.0, 1767268800.0), "nibp_sys": (121.5, 1767268800.0)}
    assert [(e.condition, e.vital, e.active) for e in events if isinstance(e, DeviceCondition)] == [
        (Condition.NO_DATA, "hr", True)]


def test_status_condition_starts_and_ends() -> None:
    codec = MqttNumericsCodec()
    first = codec.numerics(msg(values={"spo2": None}, status={"spo2": "sensor_off"}))
    assert [(e.condition, e.vital, e.active) for e in first if isinstance(e, DeviceCondition)] == [
        (Condition.SENSOR_OFF, "spo2", True)]
    second = codec.numerics(msg(seq=2, values={"spo2": 96}))
    assert [(e.condition, e.active) for e in second if isinstance(e, DeviceCondition)] == [
        (Condition.SENSOR_OFF, False)]


def test_device_status_is_a_condition_of_the_whole_device() -> None:
    codec = MqttNumericsCodec()
    first = codec.numerics(msg(values={"spo2": 97}, device_status=["signal_quality", "sensor_fault"]))
    assert [(e.condition, e.vital, e.active) for e in first if isinstance(e, DeviceCondition)] == [
        (Condition.SIGNAL_QUALITY, None, True), (Condition.SENSOR_FAULT, None, True)]
    second = codec.numerics(msg(seq=2, values={}, device_status=["sensor_fault"]))  # not listed: ended
    assert [(e.condition, e.vital, e.active) for e in second] == [(Condition.SIGNAL_QUALITY, None, False)]
    assert codec.numerics(msg(seq=3, values={}, device_status=[])) == [
        DeviceCondition(Condition.SENSOR_FAULT, False, None, "device reports sensor_fault")]
    for bad in (["on_fire"], "sensor_off", ["sensor_off", "sensor_off"]):
        assert codec.numerics(msg(seq=4, device_status=bad)) == []
    assert codec.stats.rejected == 3


def test_malformed_messages_are_counted_and_yield_nothing() -> None:
    codec = MqttNumericsCodec()
    bad = [b"not json", b"[]", msg(seq=-1), msg(values={"bogus": 1}), msg(values={"spo2": "97"}),
           msg(ts="yesterday"), msg(status={"spo2": "on_fire"}), msg(values={"spo2": True})]
    for payload in bad:
        assert codec.numerics(payload) == []
    assert codec.stats.rejected == len(bad)
    assert codec.stats.frames == 0


def test_presence_offline_is_device_lost() -> None:
    codec = MqttNumericsCodec()
    assert codec.presence(b"offline") == [DeviceCondition(Condition.DEVICE_LOST, True, None, "device reported offline")]
    assert codec.presence(b"online")[0].active is False
    assert codec.presence(b"maybe") == []


def test_published_schema_is_valid_and_the_simulator_follows_it() -> None:
    from datetime import UTC, datetime

    from jsonschema import Draft202012Validator

    from drivers.mqtt_numerics import SCHEMA_FILE
    from simulators.mqtt_monitor import numerics_payload

    schema = json.loads(SCHEMA_FILE.read_text())
    Draft202012Validator.check_schema(schema)
    payload = numerics_payload({"spo2": 97.2, "hr": None, "nibp_sys": 120}, 3, datetime(2026, 1, 1, tzinfo=UTC),
                               {"hr": "sensor_off"})
    assert list(Draft202012Validator(schema).iter_errors(json.loads(payload))) == []
    assert len(MqttNumericsCodec().numerics(payload)) == 3  # sensor_off for hr, readings of spo2 and nibp_sys


def test_rejection_reason_names_the_bad_field(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        MqttNumericsCodec().numerics(msg(values={"spo2": "97"}))
    assert "values/spo2" in caplog.text


# The fast validator (jsonschema-rs) decides alone only when it accepts; it must never accept what jsonschema rejects.
_VITALS = ["hr", "pr", "spo2", "nibp_sys", "rr", "etco2", "temp", "pi", "bogus", ""]
_numbers = st.one_of(st.integers(-(2**70), 2**70), st.floats(allow_nan=True, allow_infinity=True), st.booleans(),
                     st.none(), st.text(max_size=5))
_messages = st.fixed_dictionaries(
    {},
    optional={
        "ts": st.one_of(_numbers, st.sampled_from(["2026-01-01T12:00:00.000Z", "2026-01-01T12:00:00", "x"])),
        "seq": _numbers,
        "values": st.one_of(st.dictionaries(st.sampled_from(_VITALS), _numbers, max_size=4), _numbers),
        "status": st.one_of(st.dictionaries(st.sampled_from(_VITALS),
                                            st.sampled_from(["sensor_off", "no_data", "x", ""]), max_size=3),
                            _numbers),
        "device_status": st.one_of(st.lists(st.sampled_from(["sensor_off", "signal_quality", "x"]), max_size=3),
                                   _numbers),
        "extra": _numbers,
    })


@settings(max_examples=600, deadline=None)
@given(st.one_of(_messages, _numbers, st.lists(_numbers, max_size=3)))
def test_the_fast_validator_never_accepts_what_jsonschema_rejects(msg: object) -> None:
    from drivers.mqtt_numerics import _FAST, _VALIDATOR, _invalid

    slow = _VALIDATOR.is_valid(msg)
    try:
        fast = _FAST.is_valid(msg)
    except (ValueError, OverflowError, RecursionError):
        fast = False
    if fast:
        assert slow, msg
    assert (_invalid(msg) == "") == slow  # the codec's verdict is jsonschema's
