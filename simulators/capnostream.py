"""An Oridion / Medtronic Capnostream 20 simulator speaking its host protocol, byte for byte (115200 8N1).

Facts (shared/reference/device-protocols.md §1.6; mdpnp/mdpnp `Capnostream.java`, `MergeBytesInputStream.java`,
`Bits.java` and `DemoCapnostream20.java`, read for the facts only):

- Message: `0x85 <len> <code> <payload...> <chk>`, len = payload length + 1 (the code counts), chk = XOR of
  len, code and every payload byte. After the message is built, every byte after the 0x85 header is escaped:
  0x85 -> `80 05`, 0x80 -> `80 00` (a reader merges `80 xx` into 0x80 + xx), so 0x85 only ever starts a message.
- Host commands (codes): 1 enable communication, 2 disable communication, 3 inquire numeric item, 4 start
  real-time communication, 5 stop real-time communication, 6 link is active, 10 configure periodic message
  (payload: data item, 1 = send / 0 = do not), ... OpenICE enables communication (repeatedly, until the device
  answers with its id), then starts real-time communication, and sends "link is active" every 5 s.
- Device messages (codes): 0 CO2 wave (payload: message number, CO2 integer part, CO2 fraction x 256, fast
  status; about 20 per second), 1 numerics (once per second), 4 device id and software version (30 ASCII
  characters, `V04.05 01/15/2014 B301123456  `: version, release date, SpO2 technology B2 Nellcor / B3
  Masimo, revision, serial number).
- Numerics payload (27 bytes): [0..3] device time, seconds since 1970, unsigned 32-bit big-endian;
  [4] EtCO2; [5] FiCO2; [6] RR; [7] SpO2; [8] pulse rate; [9] slow status; [10..12] events index;
  [13] CO2 active alarms; [14] SpO2 active alarms; [15] no-breath period (s); [16..24] alarm limits: EtCO2
  high, EtCO2 low, RR high, RR low, FiCO2 high, SpO2 high, SpO2 low, pulse high, pulse low; [25] CO2 units
  (1 mmHg, 2 kPa, 3 vol %); [26] extended CO2 status. 0xFF = invalid (no value).
- Bits: slow status 0x01 patient type, 0x02 temporary alarm silence, 0x04 all alarms silenced, 0x08/0x10/0x20
  high/low priority/advisory alarm audible, 0x40 pulse beeps silenced, 0x80 SpO2 manufacturer. CO2 alarms
  0x01 no breath, 0x02 EtCO2 high, 0x04 EtCO2 low, 0x08 RR high, 0x10 RR low, 0x20 FiCO2 high. SpO2 alarms
  0x01 pulse not found, 0x02 SpO2 high, 0x04 SpO2 low, 0x08 PR high, 0x10 PR low, 0x20 sensor off,
  0x40 sensor disconnected. Extended CO2 status 0x01 check calibration, 0x02 check flow, 0x04 pump off,
  0x80 battery low. Fast (wave) status 0x01 invalid CO2, 0x02 initialization, 0x04 occlusion, 0x08 end of
  breath, 0x10 SFM, 0x20 purging, 0x40 filter line not connected, 0x80 CO2 malfunction.

The simulator (`CapnostreamSimulator`) is silent until the host asks: "enable communication" is answered with
the device id message; "start real-time communication" or "configure periodic message" (with its send flag
not 0) starts numerics once per `interval` (and, with `wave=True`, 20 CO2 wave messages per interval); "stop
real-time communication", "disable communication" or "configure periodic message" with send flag 0 stop them.
With `handshake=False` it streams from the start, unasked. Host messages may arrive escaped or not; one with a
bad checksum is ignored. Conditions: SpO2 sensor off -> SpO2 and PR 0xFF and SpO2 alarm "sensor off"; pulse
search -> 0xFF and "pulse not found"; sampling line off (`co2_off`) -> EtCO2, FiCO2 and RR 0xFF (waves: fast
status "filter line not connected"); motion -> noisy SpO2 and PR. The device raises its own alarm bits outside
its limits, as the real one does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from simulators.state import NORMAL, ConditionsSource, ValuesSource, half_up, motion_values

BAUDRATE = 115200
HEADER = 0x85
ESCAPE = 0x80
INVALID = 0xFF
NUMERICS_LENGTH = 27
WAVES_PER_NUMERICS = 20

# Host commands
CMD_ENABLE_COMM = 1
CMD_DISABLE_COMM = 2
CMD_INQUIRE_NUMERIC = 3
CMD_START_RT = 4
CMD_STOP_RT = 5
CMD_LINK_ACTIVE = 6
CMD_CONFIGURE_PERIODIC = 10
# Device messages
MSG_CO2_WAVE = 0
MSG_NUMERICS = 1
MSG_DEVICE_ID = 4

UNITS_MMHG = 1
# CO2 active alarms
CO2_NO_BREATH = 0x01
CO2_ETCO2_HIGH = 0x02
CO2_ETCO2_LOW = 0x04
CO2_RR_HIGH = 0x08
CO2_RR_LOW = 0x10
CO2_FICO2_HIGH = 0x20
# SpO2 active alarms
SPO2_PULSE_NOT_FOUND = 0x01
SPO2_HIGH = 0x02
SPO2_LOW = 0x04
SPO2_PR_HIGH = 0x08
SPO2_PR_LOW = 0x10
SPO2_SENSOR_OFF = 0x20
SPO2_SENSOR_DISCONNECTED = 0x40
# Fast (wave) status
FAST_END_OF_BREATH = 0x08
FAST_FILTER_LINE_OFF = 0x40

DEFAULT_DEVICE_ID = "V04.05 01/15/2014 B301123456  "


@dataclass(frozen=True, slots=True)
class AlarmLimits:
    """The device's alarm limits, sent in every numerics message (mmHg, /min, %)."""

    etco2_high: int = 50
    etco2_low: int = 15
    rr_high: int = 30
    rr_low: int = 8
    fico2_high: int = 8
    spo2_high: int = 100
    spo2_low: int = 90
    pr_high: int = 140
    pr_low: int = 50

    def payload(self) -> bytes:
        """Numerics bytes 16..24."""
        order = (self.etco2_high, self.etco2_low, self.rr_high, self.rr_low, self.fico2_high,
                 self.spo2_high, self.spo2_low, self.pr_high, self.pr_low)  # fmt: skip
        return bytes(_byte(v) for v in order)


DEFAULT_LIMITS = AlarmLimits()


def _byte(value: int) -> int:
    if not 0 <= value <= 0xFF:
        raise ValueError(f"{value} does not fit one byte")
    return value


def escape(data: bytes) -> bytes:
    """0x85 -> 80 05 and 0x80 -> 80 00; other bytes as they are."""
    out = bytearray()
    for b in data:
        if b in (HEADER, ESCAPE):
            out += bytes([ESCAPE, b - ESCAPE])
        else:
            out.append(b)
    return bytes(out)


def checksum(body: bytes) -> int:
    """XOR of `body` (len, code and payload, unescaped)."""
    c = 0
    for b in body:
        c ^= b
    return c


def format_message(code: int, payload: bytes = b"") -> bytes:
    """A complete message on the wire: 0x85, then len, code, payload and checksum, escaped."""
    if len(payload) > 254:
        raise ValueError(f"payload of {len(payload)} bytes does not fit (at most 254)")
    body = bytes([len(payload) + 1, _byte(code), *payload])
    return bytes([HEADER]) + escape(body + bytes([checksum(body)]))


def value_byte(value: float | None, hi: int = 0xFE) -> int:
    """A numeric as one byte: rounded half up, 0..254; 0xFF if missing, not finite or out of range."""
    n = half_up(value, 0, hi)
    return INVALID if n is None else n


def numerics_payload(
    values: Mapping[str, float | None],
    device_time: int,
    *,
    slow_status: int = 0,
    event_index: int = 0,
    co2_alarms: int = 0,
    spo2_alarms: int = 0,
    no_breath: int = 0,
    limits: AlarmLimits = DEFAULT_LIMITS,
    units: int = UNITS_MMHG,
    extended_status: int = 0,
) -> bytes:
    """The 27-byte numerics payload for `values` (`etco2`, `fico2`, `rr`, `spo2`, `pr`; missing or None ->
    0xFF) at `device_time` (seconds since 1970, taken mod 2**32)."""
    if not 0 <= event_index < 1 << 24:
        raise ValueError(f"event index {event_index} does not fit 3 bytes")
    return bytes(
        [
            *(device_time % (1 << 32)).to_bytes(4, "big"),
            value_byte(values.get("etco2")),
            value_byte(values.get("fico2")),
            value_byte(values.get("rr")),
            value_byte(values.get("spo2"), 100),
            value_byte(values.get("pr")),
            _byte(slow_status),
            *event_index.to_bytes(3, "big"),
            _byte(co2_alarms),
            _byte(spo2_alarms),
            _byte(no_breath),
            *limits.payload(),
            _byte(units),
            _byte(extended_status),
        ]
    )


def format_numerics(
    values: Mapping[str, float | None], device_time: int, *, limits: AlarmLimits = DEFAULT_LIMITS, **fields: int
) -> bytes:
    """A numerics message (code 1); `fields` are the status keyword arguments of `numerics_payload`."""
    return format_message(MSG_NUMERICS, numerics_payload(values, device_time, limits=limits, **fields))


def format_wave(number: int, co2: float, status: int = 0) -> bytes:
    """A CO2 wave message (code 0): message number (mod 256), CO2 integer part, fraction x 256, fast status."""
    co2 = min(254.99, max(0.0, co2))
    whole = math.floor(co2)
    frac = min(255, round((co2 - whole) * 256))
    return format_message(MSG_CO2_WAVE, bytes([number & 0xFF, whole, frac, _byte(status)]))


def parse_messages(buffer: bytearray) -> list[tuple[int, bytes]]:
    """Take the complete messages from the start of `buffer` as (code, payload), consuming them.

    Bytes before a 0x85 are dropped; escaped bytes are merged; a message with a bad checksum or a zero length
    is dropped; a new 0x85 inside a message restarts at it; an incomplete message stays in `buffer`.
    """
    out: list[tuple[int, bytes]] = []
    while True:
        start = buffer.find(HEADER)
        if start < 0:
            buffer.clear()
            return out
        del buffer[:start]
        body: list[int] = []
        i = 1
        complete = False
        while i < len(buffer):
            b = buffer[i]
            if b == HEADER:
                break
            if b == ESCAPE:
                if i + 1 >= len(buffer):
                    return out
                body.append((ESCAPE + buffer[i + 1]) & 0xFF)
                i += 2
            else:
                body.append(b)
                i += 1
            if body[0] == 0:
                break
            if len(body) == body[0] + 2:
                complete = True
                break
        if not complete:
            if i >= len(buffer):
                return out  # wait for more bytes
            del buffer[: max(i, 1)]  # zero length or a new header: drop what was read
            continue
        del buffer[:i]
        if checksum(bytes(body[:-1])) == body[-1]:
            out.append((body[1], bytes(body[2:-1])))


def co2_wave(t: float, rr: float, etco2: float) -> float:
    """CO2 (mmHg) of a plausible capnogram at `t`: inspiration near 0, a steep expiratory upstroke, an alveolar
    plateau rising to EtCO2, and a quick fall at the start of the next inspiration."""
    period = 60.0 / max(rr, 1.0)
    phase = (t % period) / period
    if phase < 0.4:
        return 0.0
    if phase < 0.5:
        return etco2 * 0.9 * (phase - 0.4) / 0.1
    return etco2 * (0.9 + 0.1 * (phase - 0.5) / 0.5)


class CapnostreamSimulator:
    """A simulated Capnostream 20 reading a values source; a frame source with a host protocol (`receive`).

    Reads `etco2`, `rr`, `spo2`, `pr` (and `fico2`, default 0 while EtCO2 is measured). See the module
    docstring for the handshake and conditions. `interval` is the numerics period (1 s); with `wave=True` the
    frame source ticks 20 times per interval and sends a CO2 wave message at every tick.
    """

    baudrate = BAUDRATE

    def __init__(
        self,
        values: ValuesSource,
        *,
        conditions: ConditionsSource | None = None,
        interval: float = 1.0,
        seed: int = 0,
        handshake: bool = True,
        wave: bool = False,
        limits: AlarmLimits = DEFAULT_LIMITS,
        device_id: str = DEFAULT_DEVICE_ID,
    ) -> None:
        if len(device_id) != 30 or not device_id.isascii():
            raise ValueError(f"device id must be 30 ASCII characters, got {device_id!r}")
        self.values = values
        self.conditions = conditions
        self.numerics_interval = interval
        self.wave = wave
        self.interval = interval / WAVES_PER_NUMERICS if wave else interval
        """The frame source's tick (s)."""
        self.seed = seed
        self.limits = limits
        self.device_id = device_id
        self.streaming = not handshake
        self.commands: list[int] = []
        """Codes of the host commands received, in order."""
        self._rx = bytearray()
        self._tick = 0
        self._wave_number = 0
        self._breaths = -1

    def receive(self, data: bytes) -> bytes:
        """Handle bytes from the host; returns the answer (the device id message for "enable communication")."""
        self._rx += data
        reply = b""
        for code, payload in parse_messages(self._rx):
            self.commands.append(code)
            if code == CMD_ENABLE_COMM:
                reply += format_message(MSG_DEVICE_ID, self.device_id.encode("ascii"))
            elif code == CMD_START_RT or (code == CMD_CONFIGURE_PERIODIC and (len(payload) < 2 or payload[1])):
                self._start()
            elif code in (CMD_STOP_RT, CMD_DISABLE_COMM, CMD_CONFIGURE_PERIODIC):
                self.streaming = False
        return reply

    def _start(self) -> None:
        if not self.streaming:
            self.streaming = True
            self._tick = 0

    def numerics(self, t: float, when: datetime) -> bytes:
        """The numerics message at session time `t`, device time `when`."""
        cond = self.conditions(t) if self.conditions is not None else NORMAL
        v: dict[str, float | None] = dict(self.values(t))
        spo2_alarms = 0
        if cond.sensor_off:
            v["spo2"] = v["pr"] = None
            spo2_alarms |= SPO2_SENSOR_OFF
        elif cond.pulse_search:
            v["spo2"] = v["pr"] = None
            spo2_alarms |= SPO2_PULSE_NOT_FOUND
        elif cond.motion:
            v = motion_values(v, t, self.seed)
        if cond.co2_off or v.get("etco2") is None:
            v["fico2"] = None
        else:
            v.setdefault("fico2", 0.0)
        if cond.co2_off:
            v["etco2"] = v["rr"] = None
        co2_alarms = 0
        lim = self.limits
        etco2, rr, fico2 = (value_byte(v.get(k)) for k in ("etco2", "rr", "fico2"))
        spo2, pr = value_byte(v.get("spo2"), 100), value_byte(v.get("pr"))
        if etco2 != INVALID:
            co2_alarms |= CO2_ETCO2_HIGH if etco2 > lim.etco2_high else CO2_ETCO2_LOW if etco2 < lim.etco2_low else 0
        if rr != INVALID:
            co2_alarms |= CO2_RR_HIGH if rr > lim.rr_high else CO2_RR_LOW if rr < lim.rr_low else 0
        if fico2 != INVALID and fico2 > lim.fico2_high:
            co2_alarms |= CO2_FICO2_HIGH
        if spo2 != INVALID:
            spo2_alarms |= SPO2_HIGH if spo2 > lim.spo2_high else SPO2_LOW if spo2 < lim.spo2_low else 0
        if pr != INVALID:
            spo2_alarms |= SPO2_PR_HIGH if pr > lim.pr_high else SPO2_PR_LOW if pr < lim.pr_low else 0
        payload = numerics_payload(
            v, int(when.timestamp()), co2_alarms=co2_alarms, spo2_alarms=spo2_alarms, limits=self.limits
        )
        return format_message(MSG_NUMERICS, payload)

    def wave_message(self, t: float) -> bytes:
        """The CO2 wave message at session time `t`."""
        cond = self.conditions(t) if self.conditions is not None else NORMAL
        self._wave_number += 1
        if cond.co2_off:
            return format_wave(self._wave_number, 0.0, FAST_FILTER_LINE_OFF)
        v = self.values(t)
        rr, etco2 = v.get("rr"), v.get("etco2")
        if rr is None or etco2 is None or not math.isfinite(rr) or not math.isfinite(etco2):
            return format_wave(self._wave_number, 0.0)
        co2 = co2_wave(t, rr, etco2)
        breaths = math.floor(t * max(rr, 1.0) / 60.0)
        status = FAST_END_OF_BREATH if self._breaths >= 0 and breaths != self._breaths else 0
        self._breaths = breaths
        return format_wave(self._wave_number, co2, status)

    def frame(self, t: float, when: datetime) -> bytes:
        if not self.streaming:
            return b""
        out = b""
        if not self.wave or self._tick % WAVES_PER_NUMERICS == 0:
            out += self.numerics(t, when)
        if self.wave:
            out += self.wave_message(t)
        self._tick += 1
        return out
