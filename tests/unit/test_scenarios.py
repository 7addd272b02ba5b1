"""Scenarios (parsing, validation, their effect over time), replay of a trace CSV, the serving code's cable pull,
and the `bedside simulate` command line."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import os
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
import serial

from monitor.cli import build_parser
from simulators import capnostream as cs
from simulators.cli import run_simulator
from simulators.devices import (
    PROTOCOLS,
    feed,
    make_device,
    serve_device_pty,
    serve_device_serial,
    serve_device_tcp,
)
from simulators.nellcor import NellcorSimulator
from simulators.nonin import Nonin8Simulator
from simulators.patient import PatientModel
from simulators.replay import ReplayError, ReplaySource, load_trace, parse_trace, replay
from simulators.scenario import Scenario, ScenarioError, load_scenario, parse_scenario
from simulators.serial_out import open_pty
from simulators.state import Conditions

T0 = datetime(2024, 1, 1)
ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "scenarios"
SHARED_CSV = ROOT.parent / "shared" / "data" / "mimic3wdb-s00001-numerics.csv"
if not SHARED_CSV.exists():
    SHARED_CSV = Path("/work/shared/data/mimic3wdb-s00001-numerics.csv")


def _scenario(*events: dict[str, object], seed: int | None = None) -> Scenario:
    raw: dict[str, object] = {"events": list(events)}
    if seed is not None:
        raw["seed"] = seed
    return parse_scenario(raw, "test.toml")


# -- parsing and validation ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["desaturation", "hypertensive-surge", "faults"])
def test_example_scenarios_load(name: str) -> None:
    s = load_scenario(EXAMPLES / f"{name}.toml")
    assert s.events and s.name
    assert [e.at for e in s.events] == sorted(e.at for e in s.events)


def test_faults_example_has_every_fault() -> None:
    assert load_scenario(EXAMPLES / "faults.toml").kinds == {"sensor_off", "silent", "garbage", "cable_pulled"}


@pytest.mark.parametrize(
    ("toml", "where", "what"),
    [
        ('[[events]]\nat = 1\nduration = 5\nkind = "desaturation"\n', "events[0].to", "Field required"),
        ('[[events]]\nat = 1\nduration = 5\nkind = "desaturation"\nto = 120\n', "events[0].to", "less than"),
        ('[[events]]\nat = 0\nkind = "silent"\nduration = 2\n[[events]]\nat = 1\nkind = "sneeze"\nduration = 1\n',
         "events[1].kind", "sneeze"),
        ('[[events]]\nat = 1\nduration = 5\nkind = "hypertension"\nsbp = 100\ndbp = 120\n', "events[0]",
         "dbp (120) must be below sbp (100)"),
        ('[[events]]\nat = 1\nduration = 5\nkind = "tachycardia"\nhr = 80\n', "events[0].hr", "greater than 100"),
        ('[[events]]\nat = 1\nduration = 5\nkind = "motion"\nsevere = true\n', "events[0].severe", "Extra"),
        ('[[events]]\nat = 1\nkind = "silent"\n', "events[0].duration", "Field required"),
        ('[[events]]\nat = -1\nkind = "garbage"\nbytes = 0\n', "events[0].bytes", "greater than or equal to 1"),
        ('[[events]]\nat = 2\nduration = 1\n', "events[0].kind", "kind"),
        ('evnts = []\n', "evnts", "Extra"),
    ],
)  # fmt: skip
def test_scenario_errors_name_the_file_and_the_key(tmp_path: Path, toml: str, where: str, what: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(toml)
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    message = str(err.value)
    assert f"{path}: {where}: " in message and what in message, message


def test_scenario_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="not valid TOML"):
        bad = tmp_path / "x.toml"
        bad.write_text("[[events]\n")
        load_scenario(bad)
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario(tmp_path / "missing.toml")


# -- patient events over time --------------------------------------------------------------------------------


def test_desaturation_ramps_in_holds_and_recovers() -> None:
    plain = PatientModel(5, noise=False)
    model = PatientModel(5, noise=False)
    _scenario({"at": 60, "duration": 60, "kind": "desaturation", "to": 85, "ramp": 10}).apply(model)
    assert model.sample(30)["spo2"] == plain.sample(30)["spo2"]
    assert model.sample(65)["spo2"] == pytest.approx((plain.sample(65)["spo2"] + 85) / 2)
    assert model.sample(90)["spo2"] == pytest.approx(85)
    assert model.sample(115)["spo2"] == pytest.approx((plain.sample(115)["spo2"] + 85) / 2)
    assert model.sample(125)["spo2"] == plain.sample(125)["spo2"]
    assert model.sample(90)["hr"] == plain.sample(90)["hr"]


def test_hypertension_tachycardia_bradycardia() -> None:
    model = PatientModel(8, noise=False)
    scenario = load_scenario(EXAMPLES / "hypertensive-surge.toml")
    scenario.apply(model)
    scenario.apply(model)  # idempotent: a bay's devices may share the model and the scenario
    assert len(model.episodes) == 3 + 2 + 2
    v = model.sample(250)  # surge and tachycardia at full weight
    assert (v["nibp_sys"], v["nibp_dia"]) == pytest.approx((190, 110))
    assert v["nibp_map"] == pytest.approx(110 + 80 / 3)
    assert (v["hr"], v["pr"]) == pytest.approx((150, 150))
    slow = model.sample(450)
    assert (slow["hr"], slow["pr"]) == pytest.approx((38, 38))
    assert model.sample(60)["nibp_sys"] == PatientModel(8, noise=False).sample(60)["nibp_sys"]


def test_transform_pulls_replayed_values_and_keeps_none() -> None:
    pulled = _scenario({"at": 0, "duration": 100, "kind": "desaturation", "to": 80, "ramp": 0}).transform(
        lambda t: {"spo2": 97.0, "pr": None}
    )
    assert pulled(50) == {"spo2": 80.0, "pr": None}
    assert pulled(150) == {"spo2": 97.0, "pr": None}


# -- sensor and link events ----------------------------------------------------------------------------------


def test_conditions_timeline() -> None:
    s = _scenario(
        {"at": 10, "duration": 5, "kind": "sensor_off", "search": 3},
        {"at": 30, "duration": 5, "kind": "motion"},
        {"at": 40, "duration": 5, "kind": "sensor_off", "sensor": "co2"},
    )
    assert s.conditions(9.9) == Conditions()
    assert s.conditions(10) == s.conditions(14.9) == Conditions(sensor_off=True)
    assert s.conditions(15) == s.conditions(17.9) == Conditions(pulse_search=True)
    assert s.conditions(18) == Conditions()
    assert s.conditions(32) == Conditions(motion=True)
    assert s.conditions(41) == Conditions(co2_off=True)  # the capnograph's line, not the oximeter
    assert s.conditions(45.5) == Conditions()


def test_cable_silent_and_garbage() -> None:
    s = _scenario(
        {"at": 5, "duration": 2, "kind": "cable_pulled"},
        {"at": 10, "duration": 2, "kind": "silent"},
        {"at": 3.5, "kind": "garbage", "bytes": 16},
        seed=4,
    )
    assert [s.cable(t) for t in (4.9, 5, 6.9, 7)] == [True, False, False, True]
    frames = s.wrap(lambda t, when: b"<%d>" % int(t))
    out = {t: frames(t, T0) for t in (0.0, 3.0, 4.0, 5.0, 10.0, 11.9, 12.0)}
    assert out[0.0] == b"<0>" and out[3.0] == b"<3>" and out[5.0] == b"<5>"
    assert len(out[4.0]) == 16 + 3 and out[4.0].endswith(b"<4>")  # garbage once, at the first tick after 3.5
    assert out[4.0][:16] == s.garbage(3.0, 4.0) == _scenario(*[e.model_dump(by_alias=True) for e in s.events],
                                                              seed=4).garbage(0, 4)  # fmt: skip
    assert out[4.0][:16] != _scenario({"at": 3.5, "kind": "garbage", "bytes": 16}, seed=5).garbage(0, 4)
    assert out[10.0] == out[11.9] == b"" and out[12.0] == b"<12>"


def test_faults_scenario_through_a_nellcor() -> None:
    s = load_scenario(EXAMPLES / "faults.toml")
    f = feed("nellcor", PatientModel(3), scenario=s, interval=2.0)
    assert f.cable is not None and f.respond is not None and f.respond(b"\x03\x03") == b""
    lines = {t: f.frames(float(t), T0) for t in range(0, 130, 2)}
    assert b"SD" in lines[24] and b"---" in lines[24]
    assert b"     0       0     ---    PS" in lines[36]  # searching for 6 s after the probe is back at 35 s
    assert b"PS" not in lines[42] and b"SD" not in lines[42]
    assert lines[64] == b"" and lines[80] != b""  # silent from 60 to 80 s
    assert len(lines[90]) == 64 + 63 and lines[90][64:].startswith(b"01-Jan-24 ")  # 64 garbage bytes at 90 s
    assert [f.cable(t) for t in (108, 110, 124, 126)] == [True, False, False, True]


def test_make_device_knows_every_protocol() -> None:
    for protocol in PROTOCOLS:
        dev = make_device(protocol, PatientModel(1), handshake=False)
        assert dev.frame(0.0, T0), protocol
    with pytest.raises(ValueError):
        make_device("philips", PatientModel(1))
    with pytest.raises(ValueError):
        make_device("nonin8", PatientModel(1), interval=0)


# -- serving: host protocol and cable pull on a real pty and TCP ----------------------------------------------


def _exists(path: str) -> bool:
    return os.path.exists(path)


def _is_link(path: str) -> bool:
    return os.path.islink(path)


async def _until(predicate: Callable[[], bool], within: float = 1.5) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.01)


async def test_capnostream_handshake_over_a_pty() -> None:
    async with serve_device_pty("capnostream", PatientModel(4), interval=0.05) as path:
        port = serial.Serial(path, 115200, timeout=0.15)
        try:
            assert await asyncio.to_thread(port.read, 64) == b""  # silent until asked
            port.write(bytes([0x85, 0x01, 0x01, 0x00]))  # enable communication
            reply = await asyncio.to_thread(port.read, 34)
            assert reply[:3] == bytes([0x85, 0x1F, 0x04]) and reply[3:9] == b"V04.05"
            port.write(bytes([0x85, 0x01, 0x04, 0x05]))  # start real-time communication
            stream = await asyncio.to_thread(port.read, 200)
        finally:
            port.close()
    codes = [code for code, _ in cs.parse_messages(bytearray(stream))]
    assert codes.count(1) >= 2 and set(codes) == {1}


async def test_capnostream_handshake_over_a_serial_port_and_cable_pull() -> None:
    # a pty stands in for the serial cable: the simulator opens the slave path, the test is the host on the master
    master, slave = open_pty()
    stop = asyncio.Event()
    s = _scenario({"at": 0.3, "duration": 0.5, "kind": "cable_pulled"})
    started = time.monotonic()
    task = asyncio.create_task(
        serve_device_serial(slave, "capnostream", PatientModel(4), scenario=s, interval=0.05, stop=stop)
    )
    received = bytearray()

    def pump() -> bool:
        with contextlib.suppress(OSError):
            received.extend(os.read(master, 4096))
        return False

    try:
        await asyncio.sleep(0.1)
        os.write(master, bytes([0x85, 0x01, 0x01, 0x00, 0x85, 0x01, 0x04, 0x05]))  # enable, start real-time
        await _until(lambda: pump() or received.count(bytes([0x85, 0x1C, 0x01])) >= 2)
        assert received.startswith(bytes([0x85, 0x1F, 0x04]) + b"V04.05")
        assert time.monotonic() - started < 0.3
        await asyncio.sleep(started + 0.4 - time.monotonic())  # into the pull: our side of the port is closed
        pump()
        received.clear()
        await asyncio.sleep(0.1)
        pump()
        assert received == b""
        await _until(lambda: pump() or bytes([0x85, 0x1C, 0x01]) in received)  # reopened, still streaming
    finally:
        stop.set()
        await asyncio.wait_for(task, 2.0)
        os.close(master)


async def test_cable_pulled_on_a_pty_removes_the_path_and_brings_it_back() -> None:
    s = _scenario({"at": 0.25, "duration": 0.4, "kind": "cable_pulled"})
    async with serve_device_pty("nonin8", PatientModel(2), scenario=s, interval=0.02) as path:
        assert _is_link(path)
        port = serial.Serial(path, 9600, timeout=0.05)
        first = await asyncio.to_thread(port.read, 8)
        assert len(first) >= 4
        with pytest.raises(serial.SerialException):  # the driver's open port fails once the cable is out
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline:
                await asyncio.to_thread(port.read, 64)
        port.close()
        assert not _exists(path)
        with pytest.raises(serial.SerialException):
            serial.Serial(path, 9600)
        await _until(lambda: _exists(path))
        with serial.Serial(path, 9600, timeout=0.3) as again:
            assert len(await asyncio.to_thread(again.read, 8)) == 8
    assert not _exists(path) and not _is_link(path)


async def test_cable_pulled_on_tcp_closes_then_listens_again() -> None:
    s = _scenario({"at": 0.2, "duration": 0.4, "kind": "cable_pulled"})
    async with serve_device_tcp("nellcor", PatientModel(2), scenario=s, interval=0.02) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert (await asyncio.wait_for(reader.readline(), 1.0)).endswith(b"\r\n")
        while await asyncio.wait_for(reader.read(4096), 1.0):  # until EOF: the simulator closed the connection
            pass
        writer.close()
        with pytest.raises(OSError):  # nobody listens during the pull
            await asyncio.open_connection("127.0.0.1", port)
        deadline = time.monotonic() + 1.5
        while True:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                break
            except OSError:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.02)
        assert (await asyncio.wait_for(reader.readline(), 1.0)).endswith(b"\r\n")
        writer.close()


# -- replay --------------------------------------------------------------------------------------------------


def test_shared_trace_loads_with_none_for_empty_cells() -> None:
    trace = load_trace(SHARED_CSV)
    assert trace.columns == ("hr", "pr", "spo2", "rr", "nibp_sys", "nibp_dia", "nibp_map", "abp_sys", "abp_dia",
                             "abp_map")  # fmt: skip
    assert trace.rows[0] == {k: (23.0 if k == "rr" else None) for k in trace.columns}
    assert trace.rows[1]["hr"] == 62.8 and trace.rows[1]["spo2"] is None and trace.rows[1]["rr"] == 12.7
    assert len(trace.rows) == 1936 and trace.duration == 1935 * 60
    with SHARED_CSV.open() as fh:
        raw = list(csv.DictReader(fh))
    for raw_row, row in zip(raw, trace.rows, strict=True):
        for key in trace.columns:
            assert (row[key] is None) == (raw_row[key] == ""), (raw_row["t"], key)


async def test_replay_paces_with_an_injected_clock() -> None:
    now = [1000.0]
    sleeps: list[float] = []

    async def sleep(d: float) -> None:
        sleeps.append(d)
        now[0] += d

    trace = load_trace(SHARED_CSV)
    seen: list[tuple[float, float]] = []
    async for t, values in replay(trace, speed=60, clock=lambda: now[0], sleep=sleep):
        seen.append((now[0] - 1000.0, t))
        if t == 0:
            assert values["rr"] == 23.0 and values["hr"] is None
        now[0] += 0.25  # the consumer takes a quarter of a second per row
        if len(seen) == 5:
            break
    assert seen == [(0.0, 0.0), (1.0, 60.0), (2.0, 120.0), (3.0, 180.0), (4.0, 240.0)]
    assert sleeps == pytest.approx([0.75] * 4)  # deadlines from the start: no drift


def test_replay_source_through_encoders_keeps_missing_missing() -> None:
    source = ReplaySource(load_trace(SHARED_CSV), speed=60)
    assert source(0.5) == source(0.0) and source(1.0)["hr"] == 62.8
    assert source.duration == pytest.approx(1935) and not source.finished(1935) and source.finished(1936)
    # t = 0: only rr; the oximeters must send their no-value markers, never 0
    assert Nonin8Simulator(source).frame(0.0, T0) == bytes([0x83, 0x7F, 0x7F, 0x00])
    line = NellcorSimulator(source, pad=False).data_line(0.0, T0)
    assert line == b"01-Jan-24 00:00:00   ---     ---     ---\r\n"
    # a row with SpO2 and PR
    i = next(i for i, r in enumerate(source.trace.rows) if r["spo2"] is not None and r["pr"] is not None)
    row = source.trace.rows[i]
    packet = Nonin8Simulator(source).frame(source.trace.times[i] / 60, T0)
    assert packet[2] == int(row["spo2"] + 0.5)  # type: ignore[operator]


def test_trace_iso_times_and_errors() -> None:
    trace = parse_trace(["t,hr,spo2", "2024-01-01T00:00:00Z,60,", "2024-01-01T00:01:30Z,,97"])
    assert trace.times == (0.0, 90.0)
    assert trace.rows == ({"hr": 60.0, "spo2": None}, {"hr": None, "spo2": 97.0})
    assert trace.at(89.0) == {"hr": 60.0, "spo2": None}
    for lines, match in [
        (["time,hr", "0,60"], "first column must be 't'"),
        (["t,heart", "0,60"], "unknown vital column"),
        (["t,hr", "0,sixty"], "line 2: hr: 'sixty' is not a number"),
        (["t,hr", "10,60", "5,61"], "line 3: t goes backwards"),
        (["t,hr", "yesterday,60"], "line 2: t:"),
        (["t,hr"], "no rows"),
    ]:
        with pytest.raises(ReplayError, match=match):
            parse_trace(lines, "x.csv")


# -- command line --------------------------------------------------------------------------------------------


def _cli(*argv: str) -> int:
    return run_simulator(build_parser().parse_args(["simulate", *argv]))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["nellcor"], "exactly one of --port"),
        (["nonin7", "--pty", "--speed", "2"], "--speed needs --replay"),
        (["nonin7", "--pty", "--interval", "0"], "--interval must be > 0"),
        (["nonin8", "--tcp", "1", "--no-handshake"], "are for capnostream"),
        (["mqtt", "--pty"], "mqtt publishes to --broker"),
        (["mqtt", "--broker", "mqtt://h:1", "--device", "d", "--replay", "x.csv"], "--replay is not supported"),
        (["masimo", "--pty", "--broker", "mqtt://h:1"], "are for mqtt"),
        (["masimo", "--pty", "--replay", "/nonexistent.csv"], "/nonexistent.csv: cannot read"),
    ],
)
def test_cli_bad_arguments_exit_2(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli(*argv) == 2
    assert message in capsys.readouterr().err


def test_cli_scenario_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "s.toml"
    bad.write_text('[[events]]\nat = 1\nduration = 5\nkind = "desaturation"\nto = 120\n')
    assert _cli("nellcor", "--pty", "--scenario", str(bad)) == 2
    assert f"{bad}: events[0].to" in capsys.readouterr().err
    faults = str(EXAMPLES / "faults.toml")
    assert _cli("mqtt", "--broker", "mqtt://127.0.0.1:1", "--device", "d", "--scenario", faults) == 2
    assert "mqtt cannot simulate cable_pulled, garbage, silent" in capsys.readouterr().err


def test_cli_replay_on_a_pty_prints_the_path_first_and_ends(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = tmp_path / "t.csv"
    trace.write_text("t,spo2,pr\n0,97,70\n1,,71\n2,96,\n")
    started = time.monotonic()
    assert _cli("nonin8", "--pty", "--replay", str(trace), "--speed", "20", "--interval", "0.02") == 0
    assert time.monotonic() - started < 1.0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("/dev/pts/") and len(out) == 1
