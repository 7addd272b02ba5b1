"""Codec for the Oridion / Medtronic Capnostream 20 binary serial protocol (shared/reference/device-protocols.md §1.6).

Facts below are from mdpnp/mdpnp `devices/oridion/src/main/java/org/mdpnp/devices/oridion/capnostream/`
(`Capnostream.java`, `MergeBytesInputStream.java`, `SplitBytesOutputStream.java`, `FastStatus.java`,
`SlowStatus.java`, `CO2ActiveAlarms.java`, `SpO2ActiveAlarms.java`, `ExtendedCO2Status.java`) and its adapter
`DemoCapnostream20.java`, cited below as "mdpnp <file>".

Framing: `85 <len> <code> <payload…> <chk>`, len = payload length + 1 (it counts the code), chk = XOR of len, code
and payload. Everything after the header is escaped on the wire: 0x85 as `80 05`, 0x80 as `80 00` (mdpnp
SplitBytesOutputStream / MergeBytesInputStream), so a raw 0x85 always starts a new message. The codec unescapes,
then reads the length and checks the checksum (XOR over the escaped pair equals the byte it stands for, so it
does not matter which form the device sums). A frame cut short by a raw 0x85, an escape other than `80 00` /
`80 05`, a zero length or a wrong checksum is rejected and decoding resumes at the next raw 0x85. Bytes outside
a frame are skipped; each run of them is counted as one rejected frame (once it ends, or per MAX_GARBAGE
bytes), except the rest of a frame just rejected. Quirk kept from mdpnp Capnostream.receiveMessage: a CO2 wave
message whose checksum byte is 0 but should not be is sometimes followed by its real checksum ("padded with an
extra mysterious 0"); that frame is accepted.

Messages (device -> host codes: mdpnp Capnostream.java `enum Response`, RESPONSE_CODES below): every well-formed
frame counts in `stats.frames`. Only two are read:
- NUMERICS (code 1, about once a second), payload of at least NUMERICS_LENGTH (27) bytes: [0..3] device time
  (u32 big-endian seconds since the epoch: mdpnp `1000L * Bits.getUnsignedInt(payload, 0)`, whose
  getUnsignedInt is big-endian), [4] EtCO2, [5] FiCO2 (not in bedside's catalogue: skipped), [6] RR, [7] SpO2,
  [8] PR, [9] slow status, [10..12] events index, [13] CO2 active alarms, [14] SpO2 active alarms, [15] no-breath
  seconds, [16..24] the monitor's alarm limits, [25] CO2 units, [26] extended CO2 status. 0xFF = no value.
- CO2_WAVE (code 0, ~20 Hz): [0] message number, [1..2] CO2 (integer + fraction/256), [3] fast status. The wave
  is not decoded (bedside records numerics); only its fast-status byte is read, because the filter-line,
  occlusion and CO2-malfunction bits exist nowhere else.

Missing is missing: 0xFF becomes no reading plus NO_DATA for that vital, unless a sensor condition of the same
channel (SENSOR_OFF or SENSOR_FAULT keyed on "spo2" for spo2/pr, on "etco2" for etco2/rr) already says why. A
value not plausible for its vital (monitor.vitals) becomes INVALID_VALUE. EtCO2 units ([25], mdpnp `enum CO2Units`
mmHg=1, kPa=2, VolPct=3): mmHg is read as is; kPa is sent in tenths (mdpnp DemoCapnostream20.divisor() divides
kPa and % by 10 — verify on a device set to kPa) and converted, 1 kPa = 7.500617 mm[Hg], rounded to 0.1; vol% (a
fraction of the ambient pressure, which the protocol does not send) and unknown unit codes give no reading but
INVALID_VALUE for etco2, since guessing the pressure could show a wrong EtCO2.

Status bits -> conditions (the `vital` of each condition is the channel's key; details name the bits):
  SpO2 active alarms [14] (mdpnp SpO2ActiveAlarms.java):
    0x20 SPO2_SENSOR_OFF "SpO2 Sensor Off Patient"            -> SENSOR_OFF, "spo2"
    0x40 SPO2_SENSOR_DISCONNECTED "SpO2 Sensor Disconnected"   -> SENSOR_OFF, "spo2"
    0x01 PULSE_NOT_FOUND "Pulse Not Found"                     -> SIGNAL_QUALITY, "spo2"
    0x02/0x04 SpO2 high/low, 0x08/0x10 pulse rate high/low     -> no condition (the monitor's own limit alarms)
  Extended CO2 status [26] (mdpnp ExtendedCO2Status.java):
    0x01 CHECK_CALIBRATION "Check calibration"                 -> SENSOR_FAULT, "etco2"
    0x02 CHECK_FLOW "Check flow"                               -> SENSOR_FAULT, "etco2"
    0x04 PUMP_OFF "Pump off"                                   -> SENSOR_OFF, "etco2" (the line samples nothing)
    0x80 BATTERY_LOW "Battery low"                             -> no condition: `low_battery`, logged
    0x08, 0x10, 0x20, 0x40 are not defined by the source       -> ignored
  Fast status, CO2 wave [3] (mdpnp FastStatus.java; DemoCapnostream20 also reads 0x40 as "filter line not
  connected"):
    0x40 FILTER_LINE_NOT_CONNECTED "FilterLine not connected"  -> SENSOR_OFF, "etco2"
    0x04 OCCLUSION_IN_GAS_INPUT_LINE "Occlusion in gas input line" -> SENSOR_FAULT, "etco2"
    0x80 CO2_MALFUNCTION "CO2 malfunction"                     -> SENSOR_FAULT, "etco2"
    0x01 invalid CO2 value (per wave sample), 0x02 initialization, 0x08 end of breath, 0x10 SFM in progress,
    0x20 purging in progress                                   -> no condition (per-sample or transient states;
                                                                  the numerics' 0xFF says when there is no value)
  CO2 active alarms [13] (mdpnp CO2ActiveAlarms.java: no breath, EtCO2/RR high/low, FiCO2 high) -> no condition:
    bedside's engine decides physiological alarms; the names of the monitor's active alarms are in `device_alarms`.
  Slow status [9] (mdpnp SlowStatus.java: patient type, alarm silence states, audible alarm states, pulse beeps
    silenced, SpO2 manufacturer) -> no condition: none of its bits is a sensor or signal state.
The wave's fast-status conditions and the numerics' conditions are kept apart and merged, so either message
updates its own part without ending the other's.

Not done: mdpnp's Capnostream.receiveNumerics drops a numerics message whose SpO2 equals the previous message's RR,
suspecting an offset payload (its "TODO Report this behavior to Oridion"). That heuristic would also drop real
values (RR and SpO2 can be equal), so it is not copied; the plausibility check still catches SpO2 > 100.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from drivers.codec import CodecStats, ConditionKey, ConditionTracker, reject
from monitor.model import Condition, DeviceEvent, Reading
from monitor.vitals import is_plausible

log = logging.getLogger(__name__)

HEADER = 0x85
ESCAPE = 0x80
_UNESCAPED = {0x00: 0x80, 0x05: 0x85}  # byte after ESCAPE -> the byte it stands for

CO2_WAVE = 0  # device -> host: CO2 waveform sample with the fast status, ~20 Hz
NUMERICS = 1  # device -> host: the numerics message, ~1 Hz
RESPONSE_CODES: dict[int, str] = {  # mdpnp Capnostream.java `enum Response`
    CO2_WAVE: "CO2 wave",
    NUMERICS: "numerics",
    2: "patient id (non-unicode)",
    3: "numeric item",
    4: "device id and software version",
    9: "protocol revision",
    10: "configurable (periodic) message",
    12: "patient id (unicode)",
    21: "events list (non-unicode)",
    22: "events list (unicode)",
    55: "long trend download",
    56: "long trend configurable",
    57: "new patient (non-unicode)",
    58: "new patient (unicode)",
    60: "configurable setup",
}
NUMERICS_LENGTH = 27  # mdpnp ignores a shorter numerics payload; a longer one is read (later firmware may add)
INVALID = 0xFF  # "no value" in any numerics byte
MAX_GARBAGE = 512  # a longer run of bytes outside a frame is counted as one more rejected frame

# payload index -> vital key (FiCO2 at [5] has no vital in the catalogue)
_VALUES: tuple[tuple[str, int], ...] = (("etco2", 4), ("rr", 6), ("spo2", 7), ("pr", 8))
# which sensor (channel key) measures each vital: the Microstream CO2 line or the SpO2 probe
CHANNEL = {"etco2": "etco2", "rr": "etco2", "spo2": "spo2", "pr": "spo2"}

MMHG_PER_KPA = 7.500617
CO2_UNITS = {1: "mmHg", 2: "kPa", 3: "%"}  # mdpnp `enum CO2Units`

StatusBits = tuple[tuple[int, Condition, str, str], ...]  # (bit, condition, channel key, text)
_SPO2_ALARM_BITS: StatusBits = (
    (0x20, Condition.SENSOR_OFF, "spo2", "SpO2 sensor off patient"),
    (0x40, Condition.SENSOR_OFF, "spo2", "SpO2 sensor disconnected"),
    (0x01, Condition.SIGNAL_QUALITY, "spo2", "pulse not found"),
)
_EXTENDED_CO2_BITS: StatusBits = (
    (0x01, Condition.SENSOR_FAULT, "etco2", "CO2 check calibration"),
    (0x02, Condition.SENSOR_FAULT, "etco2", "CO2 check flow"),
    (0x04, Condition.SENSOR_OFF, "etco2", "CO2 pump off"),
)
_FAST_STATUS_BITS: StatusBits = (
    (0x40, Condition.SENSOR_OFF, "etco2", "FilterLine not connected"),
    (0x04, Condition.SENSOR_FAULT, "etco2", "occlusion in gas input line"),
    (0x80, Condition.SENSOR_FAULT, "etco2", "CO2 malfunction"),
)
EXTENDED_BATTERY_LOW = 0x80
_DEVICE_ALARMS: tuple[tuple[int, int, str], ...] = (  # (payload index, bit, name): the monitor's own alarms
    (13, 0x01, "no breath"),
    (13, 0x02, "EtCO2 high"),
    (13, 0x04, "EtCO2 low"),
    (13, 0x08, "RR high"),
    (13, 0x10, "RR low"),
    (13, 0x20, "FiCO2 high"),
    (14, 0x02, "SpO2 high"),
    (14, 0x04, "SpO2 low"),
    (14, 0x08, "pulse rate high"),
    (14, 0x10, "pulse rate low"),
)
_SENSOR_CONDITIONS = (Condition.SENSOR_OFF, Condition.SENSOR_FAULT)


@dataclass(frozen=True, slots=True)
class _Frame:
    code: int
    payload: bytes
    end: int  # index just after the frame in the raw buffer


@dataclass(frozen=True, slots=True)
class _Bad:
    why: str
    resume: int  # where to look for the next header


def _parse(buf: bytes) -> _Frame | _Bad | None:
    """The frame starting at buf[0] (a header), a reason to reject it, or None while it is incomplete."""
    out = bytearray()  # unescaped: len, code, payload, chk
    need = 0  # how many unescaped bytes the frame has, once its length is known
    padded = False
    i = 1
    while True:
        if need and len(out) == need:
            *body, chk = out
            calc = 0
            for b in body:
                calc ^= b
            if chk == calc:
                return _Frame(out[1], bytes(out[2:-1]), i)
            if out[1] == CO2_WAVE and chk == 0 and not padded:
                padded = True  # mdpnp: some CO2 wave messages carry an extra 0 before their checksum
                out.pop()
                continue
            return _Bad(f"checksum {chk:02x}, expected {calc:02x}", i)
        if i >= len(buf):
            return None
        b = buf[i]
        if b == HEADER:
            return _Bad("cut short by the next header", i)
        if b == ESCAPE:
            if i + 1 >= len(buf):
                return None
            escaped = buf[i + 1]
            if escaped not in _UNESCAPED:
                return _Bad(f"bad escape 80 {escaped:02x}", i + 1)
            out.append(_UNESCAPED[escaped])
            i += 2
        else:
            out.append(b)
            i += 1
        if not need:
            if out[0] == 0:
                return _Bad("length 0", i)
            need = 1 + out[0] + 1


def _bits(value: int, table: StatusBits) -> dict[ConditionKey, str]:
    present: dict[ConditionKey, str] = {}
    for bit, cond, channel, detail in table:
        if value & bit:
            key = (cond, channel)
            present[key] = f"{present[key]}, {detail}" if key in present else detail
    return present


def _merge(into: dict[ConditionKey, str], more: dict[ConditionKey, str]) -> None:
    for key, detail in more.items():
        into[key] = f"{into[key]}, {detail}" if key in into else detail


def etco2_mmhg(raw: int, units: int) -> float | None:
    """EtCO2 in mm[Hg] from the numerics byte and the units byte; None when the units cannot be converted."""
    if units == 1:
        return float(raw)
    if units == 2:
        return round(raw / 10 * MMHG_PER_KPA, 1)
    return None


class CapnostreamCodec:
    """Sans-I/O decoder of the Capnostream 20 binary protocol (numerics, and the CO2 wave's fast status)."""

    name = "capnostream"

    def __init__(self) -> None:
        self.stats = CodecStats()
        self.co2_units: str | None = None  # "mmHg", "kPa" or "%", from the latest numerics
        self.device_alarms: frozenset[str] = frozenset()  # the monitor's own active alarms, latest numerics
        self.low_battery = False  # extended CO2 status bit 0x80 in the latest numerics
        self._buffer = b""  # empty, or starting with a header
        self._garbage = 0  # bytes skipped outside frames since the last header or count
        self._garbage_counts = True  # False while skipping the rest of a frame already rejected
        self._garbage_seen = b""  # the start of the skipped run, for the log
        self._conditions = ConditionTracker()
        self._numeric_conditions: dict[ConditionKey, str] = {}  # from the latest numerics' status bytes
        self._fast_conditions: dict[ConditionKey, str] = {}  # from the latest CO2 wave's fast status
        self._fast_status = 0
        self._no_value: dict[str, str] = {}  # vitals sent as 0xFF in the latest numerics -> detail
        self._invalid: dict[ConditionKey, str] = {}  # INVALID_VALUE conditions of the latest numerics
        self._unknown_codes: set[int] = set()

    def feed(self, data: bytes) -> list[DeviceEvent]:
        events: list[DeviceEvent] = []
        buf = self._buffer + data
        while buf:
            start = buf.find(HEADER)
            if start != 0:
                self._skip(buf if start < 0 else buf[:start])
                if start < 0:
                    buf = b""
                    break
                buf = buf[start:]
            if self._garbage:
                if self._garbage_counts:
                    reject(self.stats, self.name, self._garbage_seen, "bytes outside a frame")
                self._garbage, self._garbage_seen = 0, b""
            self._garbage_counts = True
            result = _parse(buf)
            if result is None:
                break
            if isinstance(result, _Bad):
                reject(self.stats, self.name, buf[: result.resume], result.why)
                buf = buf[result.resume :]
                self._garbage_counts = False  # what follows up to the next header is the rest of this frame
                continue
            buf = buf[result.end :]
            events.extend(self._frame(result.code, result.payload))
        self._buffer = buf
        return events

    def _skip(self, skipped: bytes) -> None:
        if len(self._garbage_seen) < 80:
            self._garbage_seen += skipped[: 80 - len(self._garbage_seen)]
        self._garbage += len(skipped)
        while self._garbage >= MAX_GARBAGE:
            reject(self.stats, self.name, self._garbage_seen, f"{MAX_GARBAGE} bytes without a frame")
            self._garbage -= MAX_GARBAGE
            self._garbage_seen = b""
            self._garbage_counts = True

    def _frame(self, code: int, payload: bytes) -> list[DeviceEvent]:
        if code == NUMERICS and len(payload) < NUMERICS_LENGTH:
            reject(self.stats, self.name, payload, f"numerics payload of {len(payload)} bytes")
            return []
        self.stats.frames += 1
        if code == NUMERICS:
            return self._numerics(payload)
        if code == CO2_WAVE:
            if len(payload) < 4 or payload[3] == self._fast_status:
                return []
            self._fast_status = payload[3]
            self._fast_conditions = _bits(payload[3], _FAST_STATUS_BITS)
            return list(self._update_conditions())
        if code not in RESPONSE_CODES and code not in self._unknown_codes:
            self._unknown_codes.add(code)
            log.info("%s: message code %d is not known; ignored", self.name, code)
        return []

    def _numerics(self, p: bytes) -> list[DeviceEvent]:
        when = float(int.from_bytes(p[0:4], "big"))
        units = p[25]
        self.co2_units = CO2_UNITS.get(units)
        extended = p[26]
        low_battery = bool(extended & EXTENDED_BATTERY_LOW)
        if low_battery and not self.low_battery:
            log.warning("%s: the monitor reports low battery", self.name)
        self.low_battery = low_battery
        self.device_alarms = frozenset(name for index, bit, name in _DEVICE_ALARMS if p[index] & bit)

        conditions = _bits(p[14], _SPO2_ALARM_BITS)
        _merge(conditions, _bits(extended, _EXTENDED_CO2_BITS))
        self._numeric_conditions = conditions
        self._no_value = {}
        self._invalid = {}
        readings: list[DeviceEvent] = []
        for vital, index in _VALUES:
            raw = p[index]
            if raw == INVALID:
                self._no_value[vital] = f"device sent no value ({vital} 0xFF)"
                continue
            value = etco2_mmhg(raw, units) if vital == "etco2" else float(raw)
            if value is None:
                unit = CO2_UNITS.get(units, f"unknown code {units}")
                self._invalid[(Condition.INVALID_VALUE, vital)] = (
                    f"EtCO2 {raw} sent in {unit}: not convertible to mm[Hg]; set the monitor to mmHg or kPa")
            elif not is_plausible(vital, value):
                self._invalid[(Condition.INVALID_VALUE, vital)] = f"{vital} {value:g} is not a possible value"
            else:
                readings.append(Reading(vital, value, when))
        return [*self._update_conditions(), *readings]

    def _update_conditions(self) -> list[DeviceEvent]:
        present = dict(self._numeric_conditions)
        _merge(present, self._fast_conditions)
        sensor_problem = {channel for cond, channel in present if cond in _SENSOR_CONDITIONS}
        for vital, detail in self._no_value.items():
            if CHANNEL[vital] not in sensor_problem:  # a sensor condition already says why there is no value
                present[(Condition.NO_DATA, vital)] = detail
        present.update(self._invalid)
        return list(self._conditions.update(present))
