"""Valid frames to mutate, made with the simulators' encoders (written from the specs, apart from the decoders), and
the protocol tokens the mutator inserts.

Each `*_frame(rng)` draws one frame or message with values anywhere in what the format can carry: no-value markers,
zeros, limits, values the decoder must refuse as impossible, every status bit. MLLP and the HL7 ACK have no
simulator: their frames are built here from the framing bytes (reference §4.1) and an ACK's layout (§4.2).
"""

from __future__ import annotations

import random
import string
from datetime import UTC, datetime, timedelta

from alerts.notify.pcd04 import ACK_CODES, alarm_message
from monitor.model import AlarmEvent, Condition
from monitor.vitals import VITALS
from simulators import capnostream, masimo, mqtt_monitor, nellcor, nonin

EPOCH = datetime(2000, 1, 1)
CENTURY = 100 * 365 * 86400


def _when(rng: random.Random) -> datetime:
    """A device clock reading anywhere in 2000..2099 (the two-digit years of the serial formats)."""
    return EPOCH + timedelta(seconds=rng.randrange(CENTURY))


def _value(rng: random.Random, hi: float, *, integer: bool = True) -> float | None:
    """None (no value) 1 in 6, 0 1 in 12, a limit 1 in 12, else anything in 0..hi."""
    r = rng.random()
    if r < 1 / 6:
        return None
    if r < 1 / 4:
        return 0.0
    if r < 1 / 3:
        return float(rng.choice((hi, hi - 1, 1)))
    return float(rng.randint(0, int(hi))) if integer else round(rng.uniform(0, hi), 2)


def _bits(rng: random.Random, mask: int) -> int:
    """No bits 1 in 3, else random bits of `mask`."""
    return 0 if rng.random() < 1 / 3 else rng.getrandbits(mask.bit_length()) & mask


def masimo_frame(rng: random.Random) -> bytes:
    values = {"spo2": _value(rng, 100), "pr": _value(rng, 400), "pi": _value(rng, 25.0, integer=False)}
    exc = rng.choice((masimo.EXC_SET, masimo.EXC_SET | masimo.EXC_SENSOR_OFF, _bits(rng, 0xFFFFFF)))
    serial = "".join(rng.choices(string.ascii_uppercase + string.digits, k=rng.randint(1, 12)))
    return masimo.format_line(values, _when(rng), serial=serial, alarm=_bits(rng, 0xFFFF), exc=exc)


def nellcor_frame(rng: random.Random) -> bytes:
    if rng.random() < 0.15:
        lo, hi = sorted(rng.sample(range(0, 1000), 2))
        pr_limits = (rng.randint(0, 60), rng.randint(61, 250))
        return nellcor.format_header(rng.choice(("N-560", "N-595")), (lo, hi), pr_limits,
                                     mode=rng.choice(("ADULT", "NEO")), sat_seconds=rng.choice((0, 10, 25, 50, 100)))
    by_slot: dict[int, list[str]] = {}
    for code, slot in nellcor.STATUS_SLOT.items():
        by_slot.setdefault(slot, []).append(code)
    status = [rng.choice(codes) for codes in by_slot.values() if rng.random() < 0.3]
    flags = [f for f in ("spo2", "pr") if rng.random() < 0.2]
    return nellcor.format_line(_value(rng, 100), _value(rng, 400), _value(rng, 255), _when(rng), flags=flags,
                               status=status, pad=rng.random() < 0.7)


def nonin7_frame(rng: random.Random) -> bytes:
    start, step = rng.randrange(0x10000), rng.randrange(0x10000)
    pleth = [(start + step * i) & 0xFFFF for i in range(nonin.FRAMES_PER_PACKET)]
    return nonin.format7_packet(_value(rng, 127), _value(rng, 511), pleth, status=_bits(rng, 0x7E),
                                firmware=rng.randrange(256), timer=rng.randrange(1 << 14), stat2=_bits(rng, 0x7F))


def nonin8_frame(rng: random.Random) -> bytes:
    return nonin.format8_packet(_value(rng, 127), _value(rng, 511), status1=_bits(rng, 0x7C),
                                status2=_bits(rng, 0x7F))


def capnostream_frame(rng: random.Random) -> bytes:
    r = rng.random()
    if r < 0.6:
        values = {k: _value(rng, 254) for k in ("etco2", "fico2", "rr", "spo2", "pr")}
        return capnostream.format_numerics(
            values, rng.randrange(1 << 32), slow_status=_bits(rng, 0xFF), event_index=rng.randrange(1 << 24),
            co2_alarms=_bits(rng, 0xFF), spo2_alarms=_bits(rng, 0xFF), no_breath=rng.randrange(256),
            units=rng.choice((1, 1, 2, 3, 0, 0xFF)), extended_status=_bits(rng, 0xFF))
    if r < 0.9:
        return capnostream.format_wave(rng.randrange(256), rng.uniform(0, 255), _bits(rng, 0xFF))
    if r < 0.95:
        return capnostream.format_message(capnostream.MSG_DEVICE_ID, capnostream.DEFAULT_DEVICE_ID.encode("ascii"))
    return capnostream.format_message(rng.randrange(256), rng.randbytes(rng.randint(0, 40)))


def mqtt_frame(rng: random.Random) -> bytes:
    if rng.random() < 0.1:
        return rng.choice((b"online", b"offline", b" OFFLINE\n", b"Online"))
    values: dict[str, float | None] = {}
    for key in rng.sample(sorted(VITALS), rng.randint(0, 5)):
        v = VITALS[key]
        r = rng.random()
        if r < 0.2:
            values[key] = None
        elif r < 0.3:
            values[key] = rng.choice((v.plausible_min - 1, v.plausible_max + 1, -1e9, 1e12))
        else:
            values[key] = rng.uniform(v.plausible_min, v.plausible_max)
    status = {k: rng.choice(list(Condition)).value for k in rng.sample(sorted(VITALS), rng.choice((0, 0, 1, 2)))}
    when = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.uniform(-1e8, 1e8))
    return mqtt_monitor.numerics_payload(values, rng.randrange(1 << 31), when, status)


def ack_text(rng: random.Random) -> str:
    """An HL7 v2 ACK (reference §4.2), with its delimiters, code, segment ends and ERR segment drawn at random."""
    sep, comp = rng.choice((("|", "^"), ("|", "^"), ("#", "$"), ("!", "%")))
    end = rng.choice(("\r", "\r", "\n", "\r\n"))
    code = rng.choice((*ACK_CODES, "OK", ""))
    control = "".join(rng.choices(string.ascii_uppercase + string.digits, k=rng.randint(0, 12)))
    text = rng.choice(("", "unknown bay \\F\\ 4", "busy", "\\X41\\\\E\\", "é ü", "\\S\\\\T\\\\R\\"))
    msh = sep.join((f"MSH{sep}{comp}~\\&", "AM", "HOSP", "BEDSIDE", "ICU", "20250101120006", "",
                    f"ACK{comp}R40{comp}ACK", "X1", "P", "2.6"))
    segments = [msh, sep.join(("MSA", code, control, text))]
    if rng.random() < 0.3:
        segments.append(sep.join(("ERR", "", "", "", "E", "", "", "db down", "no such patient")))
    return end.join(segments) + end


def _alarm_text(rng: random.Random) -> str:
    event = AlarmEvent("BAY1", "spo2_low", rng.choice(("start", "end", "escalated")), "physiological", "high",
                       1.7e9 + rng.uniform(0, 1e6), "SpO2 low", "spo2", 85.0, 90.0, "ox1", level=1)
    return alarm_message(event, control_id=f"A{rng.randrange(10**6)}", facility="ICU", patient_id="P-1")


def mllp_frame(rng: random.Random) -> bytes:
    message = ack_text(rng) if rng.random() < 0.8 else _alarm_text(rng)
    return b"\x0b" + message.encode("utf-8") + b"\x1c\r"


def hl7ack_frame(rng: random.Random) -> bytes:
    return ack_text(rng).encode("utf-8")


MASIMO_TOKENS = (b"SPO2=", b"BPM=", b"PI=", b"EXC=", b"ALARM=", b"SN=", b"---", b"--.--", b"%", b"=", b" ", b"  ",
                 b"\r\n", b"\n", b"\r", b"\x00", b"12/31/99 23:59:59 ", b"02/30/21 25:61:61 ", b"00/00/00 00:00:00 ",
                 b"ffffff", b"FFFFFFFF", b"+-", b"1e999", b"-0", b"0x10", b"999999999999999999999", b"\xff",
                 b"000", b"100.5", b"-1", b"nan", b"inf")
NELLCOR_TOKENS = (b"29-Dec-17 07:18:57", b"31-Feb-99 24:00:00", b"00-Xyz-00 00:00:00", b"---", b"*", b"   ",
                  b"SD", b"SO", b"PS", b"MO", b"LP", b"LM", b"LB", b"AO", b"AS", b"XX", b"VERSION",
                  b"SpO2 Limit: 90-100%", b"PR Limit: 60-170BPM", b"ADULT", b"NEO", b"0SAT-S", b"SAT-S",
                  b"SPO2 RESP MODE: FAST", b"TIME                 %SpO2   BPM     PA     Status", b"Command?",
                  b"1) Dump Trend", b"N-595 Interactive Mode", b"99999", b"0", b"00000", b"\r\n", b"\r", b"\n",
                  b"\t", b"\x00", b"\xff")
NONIN7_TOKENS = (b"\x81", b"\x80", b"\xff", b"\x7f", b"\x01", b"\x00", b"\x81\x00\x00\x00\x81",
                 b"\x80\x00\x00\x00\x80", b"\x80\x00\x00\x7f\xff", b"\xc1\x00\x00\x00\xc1", b"\x00" * 5,
                 b"\x81\x00\x00\x03\x84", b"\x80\x00\x00\x7f\xff" * 5)
NONIN8_TOKENS = (b"\x80", b"\x83\x7f\x7f\x00", b"\xc3\x7f\x7f\x00", b"\x80\x00\x00\x00", b"\x7f", b"\xff",
                 b"\xff\xff\xff\xff", b"\x80\x48\x61\x00" * 4, b"\x80\x00\x00\x00" * 5, b"\x00")
CAPNOSTREAM_TOKENS = (b"\x85", b"\x80", b"\x80\x00", b"\x80\x05", b"\x80\x85", b"\x80\x01", b"\x85\x00",
                      b"\x85\xff", b"\x85\x01\x00\x01", b"\x85\x01\x01\x00", b"\xff" * 4, b"\x00",
                      b"\x85\x1c\x01" + b"\x00" * 27, b"\x85\x05\x00\x01\x02\x03\x00")
MQTT_TOKENS = (b"{", b"}", b"[", b"]", b",", b":", b"null", b'"values"', b'"ts"', b'"seq"', b'"status"', b"NaN",
               b"Infinity", b"-Infinity", b"1e309", b"-1", b"0", b"1.5", b'"spo2"', b'"pi"', b'"sensor_off"',
               b'"device_lost"', b'"2026-01-02T03:04:05Z"', b'"2026-01-02T03:04:05"', b'"9999-99-99"', b"true",
               b'"\\u0000"', b'"\\ud800"', b"\xff", b"\xc3", b"online", b"offline", b"[" * 2000, b"{\"a\":" * 600,
               b'{"ts":1,"seq":1,"values":{"spo2":' + b"[" * 900 + b"]" * 900 + b"}}",
               b'{"ts":1e308,"seq":9223372036854775808,"values":{}}', b'{"ts":1,"seq":-1,"values":{"x":1}}',
               b'{"ts":"2026-01-02T03:04:05+99:00","seq":1,"values":{}}', b" " * 8)
HL7_TOKENS = (b"MSH", b"|", b"^", b"~", b"\\", b"&", b"MSA", b"ERR", b"AA", b"AE", b"AR", b"CA", b"CE", b"CR",
              b"\r", b"\n", b"\r\n", b"\\F\\", b"\\S\\", b"\\X41\\", b"\\Xzz\\", b"\\X\\", b"\\XFFFFFFFFFF\\",
              b"\\Zxx\\", b"\\", b"MSH|^~\\&|A\rMSA|AA|", b"MSH^^", b"MSH||", b"MSH", b"\xff", b"\xe2\x82",
              b"\x00")
MLLP_TOKENS = (b"\x0b", b"\x1c", b"\r", b"\x1c\r", b"\x0b\x1c\r", b"\x0b\x0b", *HL7_TOKENS)
