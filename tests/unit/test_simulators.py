"""Tests of simulators/: the patient model, the Masimo "ASCII 1" encoder and pty, the MQTT numerics payload.

Expected Masimo lines are written by hand from shared/reference/device-protocols.md §1.2, not produced by the
code under test.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import re
import time
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest
import serial

from simulators.masimo import (
    MasimoSimulator,
    format_line,
    open_pty,
    pty_writer,
    run_masimo_simulator,
    serve_pty,
    serve_serial,
    serve_tcp,
)
from simulators.mqtt_monitor import (
    CONTINUOUS_VITALS,
    NIBP_VITALS,
    format_ts,
    monitor_values,
    numerics_payload,
    numerics_topic,
    state_topic,
)
from simulators.patient import BASELINE_RANGES, VITAL_KEYS, NibpCuff, PatientModel

WHEN = datetime(2005, 12, 1, 11, 56, 29)
TAIL = b" SPCO=--.-% SPMET=--.-% DESAT=-- PIDELTA=+-- PVI=---"
# One ASCII 1 line: timestamp, SN, SPO2, BPM, PI, the fixed tail, ALARM, EXC.
LINE_RE = re.compile(
    rb"^(\d\d)/(\d\d)/(\d\d) (\d\d):(\d\d):(\d\d) SN=(\S+) SPO2=(\d{3}|---)% BPM=(\d{3}|---) "
    rb"PI=(\d\d\.\d\d|--\.--)% SPCO=--\.-% SPMET=--\.-% DESAT=-- PIDELTA=\+-- PVI=--- "
    rb"ALARM=([0-9A-F]{4}) EXC=([0-9A-F]{6})\r\n$"
)


# -- Masimo encoder -------------------------------------------------------------------------------------------


def test_masimo_line_matches_the_protocol_example() -> None:
    line = format_line({"spo2": 98, "pr": 240, "pi": 20.0}, WHEN)
    assert line == (
        b"12/01/05 11:56:29 SN=0123456789 SPO2=098% BPM=240 PI=20.00% SPCO=--.-% SPMET=--.-% DESAT=-- "
        b"PIDELTA=+-- PVI=--- ALARM=0000 EXC=000800\r\n"
    )


def test_masimo_line_pads_and_rounds() -> None:
    when = datetime(2024, 3, 7, 8, 5, 9)
    line = format_line({"spo2": 96.6, "pr": 64.4, "pi": 3.6, "hr": 200.0}, when, serial="0000056661")
    assert line == b"03/07/24 08:05:09 SN=0000056661 SPO2=097% BPM=064 PI=03.60%" + TAIL + b" ALARM=0000 EXC=000800\r\n"
    # half up (not to even), one-digit values
    line = format_line({"spo2": 96.5, "pr": 6.5, "pi": 0.5}, when)
    assert b" SPO2=097% BPM=007 PI=00.50% " in line


def test_masimo_line_missing_values_are_dashes() -> None:
    line = format_line({"spo2": None}, WHEN, alarm=0x12, exc=0x820)
    assert line == (
        b"12/01/05 11:56:29 SN=0123456789 SPO2=---% BPM=--- PI=--.--% SPCO=--.-% SPMET=--.-% DESAT=-- "
        b"PIDELTA=+-- PVI=--- ALARM=0012 EXC=000820\r\n"
    )


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"spo2": math.nan, "pr": 60, "pi": 2}, b"SPO2=---% BPM=060 PI=02.00%"),
        ({"spo2": 90, "pr": 1000, "pi": 2}, b"SPO2=090% BPM=--- PI=02.00%"),
        ({"spo2": 90, "pr": -3, "pi": 100.0}, b"SPO2=090% BPM=--- PI=--.--%"),
        ({"spo2": 90, "pr": 60, "pi": math.inf}, b"SPO2=090% BPM=060 PI=--.--%"),
    ],
)
def test_masimo_values_that_do_not_fit_are_dashes(values: dict[str, float], expected: bytes) -> None:
    assert expected in format_line(values, WHEN)


def test_masimo_hex_fields_are_uppercase_and_padded() -> None:
    line = format_line({}, WHEN, alarm=0xAB, exc=0xABCDE)
    assert line.endswith(b" ALARM=00AB EXC=0ABCDE\r\n")


@pytest.mark.parametrize(
    "kwargs", [{"serial": "01 23"}, {"serial": "A=B"}, {"serial": ""}, {"alarm": 0x10000}, {"exc": -1}]
)
def test_masimo_rejects_what_would_break_the_line(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        format_line({}, WHEN, **kwargs)  # type: ignore[arg-type]


def test_masimo_simulator_alarm_bits_and_sensor_off() -> None:
    model = PatientModel(3)
    sim = MasimoSimulator(model, sensor_off=lambda t: t >= 100.0)
    normal = LINE_RE.match(sim.line(10.0, WHEN))
    assert normal is not None
    assert int(normal[12], 16) == 0x800 and normal[8] != b"---"

    model.set_override("spo2", 85.0)
    model.set_override("pr", 150.0)
    alarmed = LINE_RE.match(sim.line(10.0, WHEN))
    assert alarmed is not None
    assert (alarmed[8], alarmed[9]) == (b"085", b"150")
    assert int(alarmed[11], 16) == 0x0002 | 0x0004 | 0x0010  # SpO2 low, PR high, alarm active

    off = LINE_RE.match(sim.line(100.0, WHEN))
    assert off is not None
    assert (off[8], off[9], off[10]) == (b"---", b"---", b"--.--")
    assert int(off[12], 16) & 0x20


async def test_run_masimo_simulator_writes_lines_until_stopped() -> None:
    lines: list[bytes] = []
    stop = asyncio.Event()
    fake_now = [1_700_000_000.0]

    def clock() -> float:
        fake_now[0] += 1.0  # each call one second later
        return fake_now[0]

    def write(data: bytes) -> None:
        lines.append(data)
        if len(lines) == 5:
            stop.set()

    model = PatientModel(11)
    await asyncio.wait_for(
        run_masimo_simulator(write, model, interval=0.01, clock=clock, stop=stop, sensor_off=lambda t: t > 3.5),
        timeout=2.0,
    )
    assert len(lines) == 5
    parsed = [LINE_RE.match(line) for line in lines]
    assert all(p is not None for p in parsed)
    spo2 = [p[8] for p in parsed if p is not None]
    assert all(s != b"---" for s in spo2[:3]) and spo2[3:] == [b"---", b"---"]
    expected = [
        datetime.fromtimestamp(1_700_000_000.0 + 2 + i).strftime("%m/%d/%y %H:%M:%S").encode() for i in range(5)
    ]
    assert [line[:17] for line in lines] == expected


# -- pty and TCP ---------------------------------------------------------------------------------------------


def test_pty_line_reaches_a_pyserial_reader() -> None:
    master_fd, slave_path = open_pty()
    try:
        write = pty_writer(master_fd)
        line = MasimoSimulator(PatientModel(5)).line(30.0, WHEN)
        with serial.Serial(slave_path, 9600, timeout=2) as port:
            write(line)
            assert port.read_until(b"\r\n") == line
            # raw mode: CR is not translated and nothing is echoed back to the master
            write(b"12\r34\r\n")
            assert port.read_until(b"\r\n") == b"12\r34\r\n"
            with pytest.raises(BlockingIOError):
                os.read(master_fd, 100)  # nothing was echoed back to the master
    finally:
        os.close(master_fd)


def test_pty_writer_never_blocks_without_a_reader() -> None:
    master_fd, _ = open_pty()
    try:
        write = pty_writer(master_fd)
        started = time.monotonic()
        for _ in range(2000):  # ~280 kB: far more than the pty buffer
            write(b"x" * 139 + b"\r\n")
        assert time.monotonic() - started < 1.0
    finally:
        os.close(master_fd)


async def test_serve_pty_streams_lines() -> None:
    async with serve_pty(PatientModel(8), interval=0.05) as path:
        port = serial.Serial(path, 9600, timeout=2)
        try:
            await asyncio.to_thread(port.readline)  # may be a partial line from before the open
            lines = [await asyncio.to_thread(port.readline) for _ in range(3)]
        finally:
            port.close()
    assert all(LINE_RE.match(line) for line in lines), lines


async def test_serve_serial_writes_to_a_port() -> None:
    # a pty stands in for the serial cable: the simulator opens the slave path, the test reads the master
    master_fd, slave_path = open_pty()
    stop = asyncio.Event()
    task = asyncio.create_task(serve_serial(slave_path, PatientModel(10), interval=0.05, stop=stop))
    received = b""
    try:
        deadline = time.monotonic() + 2.0
        while received.count(b"\r\n") < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
            with contextlib.suppress(BlockingIOError, OSError):
                received += os.read(master_fd, 4096)
    finally:
        stop.set()
        await asyncio.wait_for(task, 2.0)
        os.close(master_fd)
    lines = received.split(b"\r\n")[:2]
    assert len(lines) == 2 and all(LINE_RE.match(line + b"\r\n") for line in lines), received


async def test_serve_tcp_streams_lines() -> None:
    async with serve_tcp(PatientModel(9), interval=0.05) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            lines = [await asyncio.wait_for(reader.readline(), 2.0) for _ in range(2)]
        finally:
            writer.close()
    assert all(LINE_RE.match(line) for line in lines), lines


# -- patient model -------------------------------------------------------------------------------------------


def test_patient_model_is_deterministic_for_a_seed() -> None:
    times = [0.0, 1.0, 59.5, 600.0, 2520.0, 5000.25]
    a = [PatientModel(42).sample(t) for t in times]
    b_model = PatientModel(42)
    b = [b_model.sample(t) for t in times]
    assert a == b
    c = PatientModel(43).sample(600.0)
    assert c != a[3]
    # a pure function of t: the call order and other calls do not matter
    shuffled = PatientModel(42)
    shuffled.sample(9999.0)
    assert shuffled.sample(59.5) == a[2]


def test_patient_model_has_all_vitals_and_baselines_in_range() -> None:
    for seed in range(30):
        model = PatientModel(seed)
        for key, (lo, hi) in BASELINE_RANGES.items():
            assert lo <= model.baseline[key] <= hi, (seed, key)
        assert set(model.sample(10.0)) == set(VITAL_KEYS)


def test_blood_pressure_and_heart_rate_rise_at_the_infusion_peak() -> None:
    rise: dict[str, list[float]] = {"nibp_sys": [], "nibp_dia": [], "hr": []}
    before: list[float] = []
    after: list[float] = []
    for seed in range(20):
        model = PatientModel(seed)
        peak = model.sample(model.infusion_start + 40 * 60)
        for key, values in rise.items():
            values.append(peak[key] - model.baseline[key])
        before.append(model.sample(60.0)["nibp_sys"] - model.baseline["nibp_sys"])
        after.append(model.sample(model.infusion_start + 120 * 60)["nibp_sys"] - model.baseline["nibp_sys"])
    assert np.mean(rise["nibp_sys"]) > 8.0
    assert np.mean(rise["nibp_dia"]) > 5.0
    assert np.mean(rise["hr"]) > 4.0
    assert np.mean(rise["nibp_sys"]) - np.mean(before) > 8.0
    assert abs(np.mean(after)) < 6.0  # back near baseline 80 min after the peak
    assert np.std(rise["nibp_sys"]) > 1.0  # patients differ


def test_infusion_response_is_smooth() -> None:
    model = PatientModel(1, noise=False)
    sys = [model.sample(float(t))["nibp_sys"] for t in range(0, 7200, 5)]
    steps = np.abs(np.diff(sys))
    assert steps.max() < 2.0  # no jumps between 5-s samples without measurement noise


def test_spo2_never_exceeds_100_and_values_are_plausible() -> None:
    for seed in range(20):
        model = PatientModel(seed)
        for t in np.arange(0.0, 7200.0, 37.0):
            v = model.sample(float(t))
            assert 0.0 <= v["spo2"] <= 100.0
            assert 30.0 <= v["hr"] <= 150.0 and 30.0 <= v["pr"] <= 150.0
            assert v["nibp_sys"] > v["nibp_dia"] > 30.0
            assert v["nibp_map"] == pytest.approx(v["nibp_dia"] + (v["nibp_sys"] - v["nibp_dia"]) / 3)
            assert 35.0 <= v["temp"] <= 38.5 and 0.0 < v["pi"] <= 20.0


def test_pulse_rate_follows_heart_rate_with_its_own_noise() -> None:
    model = PatientModel(2)
    samples = [model.sample(float(t)) for t in range(0, 600, 3)]
    diffs = np.array([s["pr"] - s["hr"] for s in samples])
    assert np.abs(diffs).mean() < 4.0
    assert np.count_nonzero(diffs) > len(diffs) // 2


def test_override_forces_a_value_until_cleared() -> None:
    model = PatientModel(4)
    normal = model.sample(300.0)["spo2"]
    model.set_override("spo2", 85.0)
    assert model.sample(300.0)["spo2"] == 85.0
    assert model.sample(900.0)["spo2"] == 85.0
    model.set_override("nibp_sys", 180.0)
    v = model.sample(300.0)
    assert v["nibp_map"] == pytest.approx(v["nibp_dia"] + (180.0 - v["nibp_dia"]) / 3)
    model.set_override("spo2", None)
    assert model.sample(300.0)["spo2"] == normal
    with pytest.raises(ValueError):
        model.set_override("spo3", 1.0)


def test_nibp_cuff_cycles() -> None:
    cuff = NibpCuff(interval=180.0)
    due = [t for t in range(0, 600) if cuff.due(float(t))]
    assert due == [0, 180, 360, 540]
    other = NibpCuff(interval=60.0, first=30.0)
    assert not other.due(10.0)
    assert other.due(30.0) and not other.due(89.0) and other.due(90.0)
    with pytest.raises(ValueError):
        NibpCuff(interval=0.0)


# -- MQTT ----------------------------------------------------------------------------------------------------


def test_topics() -> None:
    assert numerics_topic("clinic-a", "mon_1") == "bedside/v1/clinic-a/dev/mon_1/numerics"
    assert state_topic("clinic-a", "mon_1") == "bedside/v1/clinic-a/dev/mon_1/state"
    for bad in ("a/b", "+", "#", ""):
        with pytest.raises(ValueError):
            numerics_topic(bad, "mon")


def test_numerics_payload_fields() -> None:
    when = datetime(2025, 1, 2, 3, 4, 5, 678_900, tzinfo=UTC)
    raw = numerics_payload({"hr": 72.04, "spo2": None, "temp": 36.74, "pr": math.nan}, 7, when)
    msg = json.loads(raw.decode("utf-8"))
    assert msg == {
        "ts": "2025-01-02T03:04:05.678Z",
        "seq": 7,
        "values": {"hr": 72.0, "spo2": None, "temp": 36.7, "pr": None},
    }
    assert b"null" in raw and b"NaN" not in raw


def test_numerics_payload_status_and_time_zones() -> None:
    when = datetime(2025, 6, 30, 23, 30, 0, 5_000, tzinfo=timezone(timedelta(hours=2)))
    msg = json.loads(numerics_payload({"spo2": None}, 0, when, {"spo2": "sensor_off"}))
    assert msg["ts"] == "2025-06-30T21:30:00.005Z"
    assert msg["status"] == {"spo2": "sensor_off"}
    assert format_ts(datetime(2025, 1, 1, 0, 0, 0)) == "2025-01-01T00:00:00.000Z"  # naive = UTC
    with pytest.raises(ValueError):
        numerics_payload({"heart": 1.0}, 0, when)
    with pytest.raises(ValueError):
        numerics_payload({"spo2": None}, 0, when, {"spo2": "probe_off"})
    with pytest.raises(ValueError):
        numerics_payload({}, -1, when)


def test_monitor_values_send_nibp_only_at_cuff_cycles() -> None:
    model = PatientModel(6)
    cuff = NibpCuff(interval=180.0)
    first, _ = monitor_values(model, 0.0, cuff)
    second, _ = monitor_values(model, 1.0, cuff)
    assert set(first) == set(CONTINUOUS_VITALS) | set(NIBP_VITALS)
    assert set(second) == set(CONTINUOUS_VITALS)
    values, status = monitor_values(model, 2.0, cuff, {"etco2": "sensor_off"})
    assert values["etco2"] is None and status == {"etco2": "sensor_off"}
    msg = json.loads(numerics_payload(values, 2, datetime.now(UTC), status))
    assert msg["values"]["etco2"] is None and isinstance(msg["values"]["hr"], float)


def test_start_infusion_moves_the_response_to_the_new_infusion() -> None:
    for seed in range(10):
        model = PatientModel(seed, infusion_start=1e9, noise=False)
        reference = PatientModel(seed, infusion_start=1e9, noise=False)
        assert model.infusion_effect(3600.0) == 0.0  # no infusion yet
        model.start_infusion(600.0, 4.0, recovery_minutes=2.0)  # a 40-min infusion compressed 10 times
        assert (model.infusion_start, model.infusion_minutes, model.recovery_minutes) == (600.0, 4.0, 2.0)
        # none before it; the peak near its end (within 10 % of its length), never before it started
        assert all(model.infusion_effect(t) == 0.0 for t in np.arange(0.0, 600.1, 10.0))
        assert 600.0 + 0.9 * 240.0 <= model.peak_time <= 600.0 + 1.1 * 240.0
        ts = np.arange(600.0, 1200.0, 1.0)
        peak_at = ts[int(np.argmax([model.infusion_effect(float(t)) for t in ts]))]
        assert abs(peak_at - model.peak_time) <= 1.0 and model.infusion_effect(model.peak_time) == 1.0
        assert model.infusion_effect(model.peak_time + 10 * 60.0) < 0.01  # faded after 5 recovery widths
        # the vitals follow: at the peak, BP and HR are up by the patient's response; before, the same patient
        at_peak, before = model.sample(model.peak_time), model.sample(300.0)
        assert at_peak["nibp_sys"] - reference.sample(model.peak_time)["nibp_sys"] == pytest.approx(
            model.response["nibp_sys"])
        assert before == reference.sample(300.0)


def test_start_infusion_keeps_the_patient_and_checks_its_arguments() -> None:
    model = PatientModel(3)
    baseline, response, jitter = dict(model.baseline), dict(model.response), model.peak_time - 120.0 - 2400.0
    model.start_infusion(100.0, 40.0)
    assert model.baseline == baseline and model.response == response
    assert model.peak_time - 100.0 - 2400.0 == pytest.approx(jitter)  # a 40-min infusion: the same jitter
    assert model.recovery_minutes == 20.0
    with pytest.raises(ValueError):
        model.start_infusion(0.0, 0.0)
    with pytest.raises(ValueError):
        model.start_infusion(0.0, 10.0, recovery_minutes=0.0)
