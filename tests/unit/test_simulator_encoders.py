"""Byte-exact tests of the Nellcor, Nonin and Capnostream simulator encoders, and of the simulators around them.

Expected bytes are written by hand from shared/reference/device-protocols.md (§1.3, §1.4, §1.6), the real N-560
capture in konz/cosmopusher (layout only) and mdpnp/mdpnp's Capnostream sources (facts only); never produced by
the code under test, and never from the decoders in drivers/.
"""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Mapping
from datetime import datetime

import pytest

from simulators import capnostream as cs
from simulators import nellcor, nonin
from simulators.patient import PatientModel
from simulators.state import Conditions, ValuesSource

WHEN = datetime(2017, 12, 29, 7, 18, 43)


def _at(h: int, m: int, s: int) -> datetime:
    return datetime(2017, 12, 29, h, m, s)


def _const(values: Mapping[str, float | None]) -> ValuesSource:
    return lambda t: values


# -- Nellcor -------------------------------------------------------------------------------------------------


def test_nellcor_line_matches_the_spec_sample_when_stripped() -> None:
    assert nellcor.format_line(99, 66, 12, WHEN, pad=False) == b"29-Dec-17 07:18:43    99      66      12\r\n"


@pytest.mark.parametrize(
    ("args", "kwargs", "expected"),
    [  # lines of the real N-560 capture (cosmopusher demo_stream.py), trailing spaces included
        ((99, 66, 12, _at(7, 18, 43)), {}, "29-Dec-17 07:18:43    99      66      12                     "),
        ((89, 66, 201, _at(7, 18, 57)), {"flags": {"spo2"}, "status": ("MO", "SL")},
         "29-Dec-17 07:18:57    89*     66     201    MO SL            "),
        ((79, 66, 18, _at(7, 19, 1)), {"flags": {"spo2"}, "status": ("MO", "SL", "AS")},
         "29-Dec-17 07:19:01    79*     66      18    MO SL       AS   "),
        ((77, 70, 8, _at(7, 19, 7)), {"flags": {"spo2"}, "status": ("SL", "AS")},
         "29-Dec-17 07:19:07    77*     70       8       SL       AS   "),
        ((None, None, None, _at(7, 19, 29)), {"status": ("SD", "AS")},
         "29-Dec-17 07:19:29   ---     ---     ---    SD          AS   "),
        ((0, 0, None, _at(7, 20, 27)), {"status": ("PS",)},
         "29-Dec-17 07:20:27     0       0     ---    PS               "),
        ((94, 119, 5, _at(7, 20, 43)), {}, "29-Dec-17 07:20:43    94     119       5                     "),
    ],
)  # fmt: skip
def test_nellcor_line_matches_the_real_capture(
    args: tuple[float | None, float | None, float | None, datetime], kwargs: dict[str, object], expected: str
) -> None:
    assert nellcor.format_line(*args, **kwargs) == expected.encode("ascii") + b"\r\n"  # type: ignore[arg-type]


def test_nellcor_pulse_flag_and_status_slots() -> None:
    line = nellcor.format_line(97, 175, 30, WHEN, flags={"pr"}, status=("PH", "LB", "AO"), pad=False)
    assert line == b"29-Dec-17 07:18:43    97     175*     30          PH LB AO\r\n"


def test_nellcor_rounds_half_up_and_dashes_what_does_not_fit() -> None:
    line = nellcor.format_line(96.5, 1000, math.nan, WHEN, pad=False)
    assert line == b"29-Dec-17 07:18:43    97     ---     ---\r\n"
    assert nellcor.format_line(-1, 59.49, 0.5, WHEN, pad=False) == b"29-Dec-17 07:18:43   ---      59       1\r\n"


def test_nellcor_month_is_english_whatever_the_locale() -> None:
    months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    for m, name in enumerate(months, start=1):
        assert nellcor.format_line(None, None, None, datetime(2024, m, 5, 1, 2, 3)).startswith(
            f"05-{name}-24 01:02:03".encode()
        )


@pytest.mark.parametrize(
    "kwargs", [{"status": ("XX",)}, {"status": ("MO", "SD")}, {"flags": {"pa"}}, {"status": ("SL", "SH")}]
)
def test_nellcor_rejects_bad_flags_and_status(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        nellcor.format_line(90, 60, 10, WHEN, **kwargs)  # type: ignore[arg-type]


def test_nellcor_header_matches_the_real_capture() -> None:
    assert nellcor.format_header() == (
        b"N-560    VERSION 1.56.00    CRC:XXXX  SpO2 Limit: 90-100%    PR Limit: 60-170BPM\r\n"
        b"                             ADULT            0SAT-S \r\n"
        b"TIME                 %SpO2   BPM     PA     Status\r\n"
    )
    custom = nellcor.format_header("N-595", (85, 100), (50, 140))
    assert custom.startswith(b"N-595    VERSION 1.56.00    CRC:XXXX  SpO2 Limit: 85-100%    PR Limit: 50-140BPM\r\n")
    with pytest.raises(ValueError):
        nellcor.format_header(spo2_limits=(100, 90))


def test_nellcor_simulator_repeats_the_header_every_25_lines() -> None:
    sim = nellcor.NellcorSimulator(PatientModel(1).sample)
    assert sim.interval == 2.0
    out = b"".join(sim.frame(2.0 * i, datetime(2024, 1, 1, 0, 0, 0)) for i in range(50))
    lines = out.split(b"\r\n")[:-1]
    assert len(lines) == 50 + 3 * 3  # headers before data lines 0, 22 and 44
    headers = [i for i, line in enumerate(lines) if line.startswith(b"N-560 ")]
    assert headers == [0, 25, 50]
    assert all(lines[i + 2].startswith(b"TIME ") for i in headers)


def test_nellcor_simulator_sensor_off_pulse_search_motion_and_limits() -> None:
    state = {"cond": Conditions(sensor_off=True)}
    values: dict[str, float | None] = {"spo2": 97.0, "pr": 72.0, "pi": 2.0}
    sim = nellcor.NellcorSimulator(lambda t: values, conditions=lambda t: state["cond"], pad=False)
    assert sim.data_line(0, WHEN) == b"29-Dec-17 07:18:43   ---     ---     ---    SD\r\n"
    state["cond"] = Conditions(pulse_search=True)
    assert sim.data_line(0, WHEN) == b"29-Dec-17 07:18:43     0       0     ---    PS\r\n"
    state["cond"] = Conditions()
    assert sim.data_line(0, WHEN) == b"29-Dec-17 07:18:43    97      72      20\r\n"  # PA = 10 x PI
    values.update(spo2=85.0, pr=180.0)
    assert sim.data_line(0, WHEN) == b"29-Dec-17 07:18:43    85*    180*     20       SL PH\r\n"
    state["cond"] = Conditions(motion=True)
    assert sim.data_line(3.0, WHEN)[44:46] == b"MO"


# -- Nonin format 8 ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spo2", "hr", "kwargs", "expected"),
    [
        (95, 72, {}, [0x80, 0x48, 0x5F, 0x00]),
        (97, 300, {}, [0x82, 0x2C, 0x61, 0x00]),  # 300 = 2 << 7 | 44
        (None, None, {}, [0x83, 0x7F, 0x7F, 0x00]),  # no value: HR 511, SpO2 127
        (None, None, {"status1": nonin.F8_SNSD}, [0xC3, 0x7F, 0x7F, 0x00]),
        (96, 72, {"status1": nonin.F8_ARTIFACT, "status2": nonin.LOW_BATTERY}, [0x84, 0x48, 0x60, 0x01]),
        (101, 511, {}, [0x83, 0x7F, 0x7F, 0x00]),  # not representable: no value
        (99.5, 71.5, {}, [0x80, 0x48, 0x64, 0x00]),  # half up
    ],
)
def test_nonin8_packet(spo2: float | None, hr: float | None, kwargs: dict[str, int], expected: list[int]) -> None:
    assert nonin.format8_packet(spo2, hr, **kwargs) == bytes(expected)


def test_nonin8_only_the_first_byte_has_bit7() -> None:
    for hr in (0, 127, 128, 255, 300, 510, None):
        packet = nonin.format8_packet(98, hr)
        assert packet[0] & 0x80 and not any(b & 0x80 for b in packet[1:])
    with pytest.raises(ValueError):
        nonin.format8_packet(98, 60, status1=0x01)  # bits 1-0 are the HR's


# -- Nonin format 7 ------------------------------------------------------------------------------------------

# spo2 97 (0x61), hr 72 (0x48), firmware 0x2A, every pleth sample 0x1234; CHK = sum of the four bytes mod 256:
# 0x80 + 0x12 + 0x34 = 0xC6, so CHK = 0xC6 + DATA (mod 256); frame 0 has SYNC (0x81) and CHK 0xC7.
NONIN7_EXPECTED = [
    [0x81, 0x12, 0x34, 0x00, 0xC7],  # 0 HR MSB
    [0x80, 0x12, 0x34, 0x48, 0x0E],  # 1 HR LSB
    [0x80, 0x12, 0x34, 0x61, 0x27],  # 2 SpO2
    [0x80, 0x12, 0x34, 0x2A, 0xF0],  # 3 firmware
    [0x80, 0x12, 0x34, 0x00, 0xC6],  # 4 reserved
    [0x80, 0x12, 0x34, 0x00, 0xC6],  # 5 timer MSB
    [0x80, 0x12, 0x34, 0x00, 0xC6],  # 6 timer LSB
    [0x80, 0x12, 0x34, 0x00, 0xC6],  # 7 STAT2
    [0x80, 0x12, 0x34, 0x61, 0x27],  # 8 SpO2-D
    [0x80, 0x12, 0x34, 0x61, 0x27],  # 9 SpO2 fast
    [0x80, 0x12, 0x34, 0x61, 0x27],  # 10 SpO2 beat-to-beat
    [0x80, 0x12, 0x34, 0x00, 0xC6],  # 11 reserved
    [0x80, 0x12, 0x34, 0x00, 0xC6],  # 12 reserved
    [0x80, 0x12, 0x34, 0x00, 0xC6],  # 13 E-HR MSB
    [0x80, 0x12, 0x34, 0x48, 0x0E],  # 14 E-HR LSB
    [0x80, 0x12, 0x34, 0x61, 0x27],  # 15 E-SpO2
    [0x80, 0x12, 0x34, 0x61, 0x27],  # 16 E-SpO2-D
    [0x80, 0x12, 0x34, 0x00, 0xC6],  # 17 reserved
    [0x80, 0x12, 0x34, 0x00, 0xC6],  # 18 reserved
    [0x80, 0x12, 0x34, 0x00, 0xC6],  # 19 HR-D MSB
    [0x80, 0x12, 0x34, 0x48, 0x0E],  # 20 HR-D LSB
    [0x80, 0x12, 0x34, 0x00, 0xC6],  # 21 E-HR-D MSB
    [0x80, 0x12, 0x34, 0x48, 0x0E],  # 22 E-HR-D LSB
    [0x80, 0x12, 0x34, 0x00, 0xC6],  # 23 reserved
    [0x80, 0x12, 0x34, 0x00, 0xC6],  # 24 reserved
]


def test_nonin7_packet_byte_exact() -> None:
    packet = nonin.format7_packet(97, 72, [0x1234] * 25, firmware=0x2A)
    assert packet == b"".join(bytes(frame) for frame in NONIN7_EXPECTED)


def test_nonin7_no_value_sensor_off_and_large_heart_rate() -> None:
    off = nonin.format7_packet(None, None, [0] * 25, status=nonin.SNSD)
    frames = [off[i : i + 5] for i in range(0, 125, 5)]
    assert [f[0] for f in frames] == [0xC1] + [0xC0] * 24  # SNSD on every frame, SYNC on the first only
    assert (frames[0][3], frames[1][3], frames[2][3]) == (0x03, 0x7F, 0x7F)  # HR 511, SpO2 127
    assert frames[1] == bytes([0xC0, 0x00, 0x00, 0x7F, 0x3F])  # 0xC0 + 0x7F = 0x13F
    fast = nonin.format7_packet(90, 300, [0xFFFF] * 25)
    assert fast[3] == 0x02 and fast[8] == 0x2C  # 300 = 2 << 7 | 44
    assert fast[0:5] == bytes([0x81, 0xFF, 0xFF, 0x02, 0x81])  # 0x81 + 0xFF + 0xFF + 0x02 = 0x281
    with pytest.raises(ValueError):
        nonin.format7_packet(90, 60, [0] * 24)
    with pytest.raises(ValueError):
        nonin.format7_packet(90, 60, [0] * 25, status=nonin.SYNC)


def test_nonin7_simulator_pleth_is_a_pulse_wave_at_the_pulse_rate() -> None:
    sim = nonin.Nonin7Simulator(_const({"spo2": 96.0, "pr": 60.0, "pi": 3.0}))
    assert sim.interval == pytest.approx(1 / 3)
    stream = b"".join(sim.frame(i / 3, WHEN) for i in range(6))  # 2 s = 150 samples, two beats at 60 /min
    assert len(stream) == 6 * 125
    pleth = [stream[i + 1] << 8 | stream[i + 2] for i in range(0, len(stream), 5)]
    assert max(pleth) - min(pleth) > 5000
    assert pleth[:75] == pytest.approx(pleth[75:], abs=2)  # one beat per second repeats
    assert all(sum(stream[i : i + 4]) % 256 == stream[i + 4] for i in range(0, len(stream), 5))


def test_nonin_simulators_show_conditions() -> None:
    cond = {"c": Conditions(sensor_off=True)}
    v = _const({"spo2": 96.0, "pr": 70.0, "pi": 2.0})
    s7 = nonin.Nonin7Simulator(v, conditions=lambda t: cond["c"])
    s8 = nonin.Nonin8Simulator(v, conditions=lambda t: cond["c"])
    assert s8.frame(0, WHEN) == bytes([0xC3, 0x7F, 0x7F, 0x00])
    assert s7.frame(0, WHEN)[0] == 0xC1
    cond["c"] = Conditions(pulse_search=True)
    assert s8.frame(0, WHEN) == bytes([0xA3, 0x7F, 0x7F, 0x00])  # out of track, no values
    cond["c"] = Conditions(motion=True)
    moving = s8.frame(1.0, WHEN)
    assert moving[0] & 0x84 == 0x84 and moving[0] & 0x40 == 0
    assert s7.frame(1.0, WHEN)[0] == 0xA1  # ARTF + SYNC
    cond["c"] = Conditions()
    assert s8.frame(0, WHEN) == bytes([0x80, 70, 96, 0x00])


# -- Capnostream ---------------------------------------------------------------------------------------------


def test_capnostream_escape() -> None:
    assert cs.escape(bytes([0x01, 0x85, 0x80, 0x7F, 0x86])) == bytes([0x01, 0x80, 0x05, 0x80, 0x00, 0x7F, 0x86])


@pytest.mark.parametrize(
    ("code", "payload", "expected"),
    [
        (1, b"", [0x85, 0x01, 0x01, 0x00]),  # enable communication: chk = 1 ^ 1
        (4, b"", [0x85, 0x01, 0x04, 0x05]),  # start real-time communication
        (10, bytes([0x01, 0x01]), [0x85, 0x03, 0x0A, 0x01, 0x01, 0x09]),  # 3 ^ 0x0A ^ 1 ^ 1 = 0x09
        # payload bytes escaped; chk 3 ^ 0x0A ^ 0x85 ^ 0x80 = 0x0C computed before escaping
        (10, bytes([0x85, 0x80]), [0x85, 0x03, 0x0A, 0x80, 0x05, 0x80, 0x00, 0x0C]),
        # the checksum itself is escaped: 2 ^ 4 ^ 0x83 = 0x85
        (4, bytes([0x83]), [0x85, 0x02, 0x04, 0x83, 0x80, 0x05]),
    ],
)
def test_capnostream_message(code: int, payload: bytes, expected: list[int]) -> None:
    assert cs.format_message(code, payload) == bytes(expected)


def test_capnostream_numerics_byte_exact() -> None:
    values = {"etco2": 38.0, "fico2": 0.0, "rr": 14.0, "spo2": 97.0, "pr": 72.0}
    # len 28 (27 + code), code 1; time 0x5A5A5A5A big-endian; EtCO2 38, FiCO2 0, RR 14, SpO2 97, PR 72;
    # slow status 0, events 000000, CO2 alarms 0, SpO2 alarms 0, no breath 0; limits 50 15 30 8 8 100 90 140 50;
    # units 1 (mmHg); extended status 0; chk = XOR of everything after the header = 0xBE (by hand).
    expected = bytes(
        [0x85, 0x1C, 0x01, 0x5A, 0x5A, 0x5A, 0x5A, 0x26, 0x00, 0x0E, 0x61, 0x48, 0x00, 0x00, 0x00, 0x00,
         0x00, 0x00, 0x00, 0x32, 0x0F, 0x1E, 0x08, 0x08, 0x64, 0x5A, 0x8C, 0x32, 0x01, 0x00, 0xBE]
    )  # fmt: skip
    assert cs.format_numerics(values, 0x5A5A5A5A) == expected


def test_capnostream_numerics_invalid_and_time_escaped() -> None:
    payload = cs.numerics_payload({"spo2": None, "pr": 300.0, "etco2": math.nan}, 0x01020385, co2_alarms=0x01)
    assert len(payload) == 27
    assert payload[:4] == bytes([0x01, 0x02, 0x03, 0x85])
    assert payload[4:9] == bytes([0xFF] * 5)  # missing, not representable and NaN are all 0xFF
    assert payload[13] == 0x01
    message = cs.format_numerics({}, 0x01020385)
    assert message[:7] == bytes([0x85, 0x1C, 0x01, 0x01, 0x02, 0x03, 0x80]) and message[7] == 0x05
    assert 0x85 not in message[1:]


def test_capnostream_wave_message() -> None:
    # number 7, CO2 38.5 mmHg = 38 + 128/256, end of breath: chk 5 ^ 0 ^ 7 ^ 0x26 ^ 0x80 ^ 0x08 = 0xAC
    expected = bytes([0x85, 0x05, 0x00, 0x07, 0x26, 0x80, 0x00, 0x08, 0xAC])  # 0x80 escaped as 80 00
    assert cs.format_wave(7, 38.5, cs.FAST_END_OF_BREATH) == expected


def test_capnostream_parses_host_commands() -> None:
    buf = bytearray(b"\x00\x13junk" + bytes([0x85, 0x01, 0x01, 0x00]) + bytes([0x85, 0x01, 0x04, 0x07]))  # bad chk
    buf += bytes([0x85, 0x03, 0x0A, 0x80, 0x05, 0x80, 0x00, 0x0C]) + bytes([0x85, 0x01])  # escaped, then partial
    assert cs.parse_messages(buf) == [(1, b""), (10, bytes([0x85, 0x80]))]
    assert buf == bytearray([0x85, 0x01])
    buf += bytes([0x05, 0x04])
    assert cs.parse_messages(buf) == [(5, b"")]
    assert buf == bytearray()


def _messages(stream: bytes) -> list[tuple[int, bytes]]:
    return cs.parse_messages(bytearray(stream))


def test_capnostream_simulator_waits_for_the_host() -> None:
    model = PatientModel(2)
    sim = cs.CapnostreamSimulator(model.sample)
    assert sim.frame(0.0, WHEN) == b""  # nothing unasked
    reply = sim.receive(bytes([0x85, 0x01, 0x01, 0x00]))  # enable communication
    text = b"V04.05 01/15/2014 B301123456  "
    chk = functools.reduce(operator.xor, [0x1F, 0x04, *text])
    assert reply == bytes([0x85, 0x1F, 0x04]) + text + bytes([chk])
    assert sim.frame(1.0, WHEN) == b""
    assert sim.receive(bytes([0x85, 0x01, 0x04, 0x05])) == b""  # start real-time communication
    [(code, payload)] = _messages(sim.frame(2.0, WHEN))
    assert code == 1 and len(payload) == 27
    assert payload[:4] == int(WHEN.timestamp()).to_bytes(4, "big")
    v = model.sample(2.0)
    assert payload[4] == math.floor(v["etco2"] + 0.5) and payload[6] == math.floor(v["rr"] + 0.5)
    assert payload[7] == math.floor(v["spo2"] + 0.5) and payload[8] == math.floor(v["pr"] + 0.5)
    sim.receive(bytes([0x85, 0x01, 0x05, 0x04]))  # stop real-time communication
    assert sim.frame(3.0, WHEN) == b""
    sim.receive(bytes([0x85, 0x03, 0x0A, 0x01, 0x01, 0x09]))  # configure periodic message, send = 1
    assert _messages(sim.frame(4.0, WHEN))[0][0] == 1
    assert sim.commands == [1, 4, 5, 10]


def test_capnostream_simulator_unasked_conditions_alarms_and_waves() -> None:
    values: dict[str, float | None] = {"etco2": 60.0, "rr": 5.0, "spo2": 97.0, "pr": 72.0}
    cond = {"c": Conditions(sensor_off=True)}
    sim = cs.CapnostreamSimulator(lambda t: values, conditions=lambda t: cond["c"], handshake=False)
    [(_, p)] = _messages(sim.frame(0.0, WHEN))
    assert (p[4], p[5], p[6], p[7], p[8]) == (60, 0, 5, 0xFF, 0xFF)
    assert p[13] == cs.CO2_ETCO2_HIGH | cs.CO2_RR_LOW and p[14] == cs.SPO2_SENSOR_OFF
    cond["c"] = Conditions(co2_off=True, pulse_search=True)
    [(_, p)] = _messages(sim.frame(1.0, WHEN))
    assert (p[4], p[5], p[6], p[7], p[8]) == (0xFF,) * 5 and p[13] == 0 and p[14] == cs.SPO2_PULSE_NOT_FOUND

    waving = cs.CapnostreamSimulator(_const({"etco2": 38.0, "rr": 30.0}), handshake=False, wave=True, interval=1.0)
    assert waving.interval == pytest.approx(0.05)
    msgs = _messages(b"".join(waving.frame(i * 0.05, WHEN) for i in range(40)))
    assert [c for c, _ in msgs].count(1) == 2 and [c for c, _ in msgs].count(0) == 40
    co2 = [p[1] + p[2] / 256 for c, p in msgs if c == 0]
    assert max(co2) == pytest.approx(38.0, abs=1.0) and min(co2) == 0.0
