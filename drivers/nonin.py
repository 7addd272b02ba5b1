"""Codecs for Nonin pulse oximeters, serial data formats 7 and 8 (shared/reference/device-protocols.md §1.4).

Data format 7 (Onyx II 9560, WristOx2 3150; what OpenICE uses): 75 frames of 5 bytes a second,
`[STATUS][PLETH_MSB][PLETH_LSB][DATA][CHK]` with CHK = sum of the first four bytes mod 256. 25 frames make a
packet (1/3 s); STATUS bit 0 (SYNC) marks its first frame. The DATA byte means something different in each frame
of the packet (the format-2 map); this codec reads frame 0 HR MSB, 1 HR LSB (4-beat average pulse rate), 2 SpO2
(4-beat average), 3 firmware revision (`firmware_revision`) and 7 STAT2 (0x20 SmartPoint, 0x01 low battery).
One `spo2` and one `pr` reading (HR from an oximeter is the pulse rate) per complete packet, about 3 a second.

HR assembly in format 7: the reference notes that OpenICE builds HR as `(MSB << 8) | LSB`; this codec follows the
Nonin format-2 layout instead, `(MSB & 0x03) << 7 | (LSB & 0x7F)` (9 bits, 511 = no value), the same layout as
format 8. Both agree below 128/min; above, OpenICE's form would read 150/min (MSB 0x01, LSB 0x16) as 278 and the
no-value marker (MSB 0x03, LSB 0x7F) as 895. The choice lives in one function, `format7_hr`.

Data format 8 (one 4-byte packet a second): `[STATUS1][HR_LSB][SPO2][STATUS2]`; only STATUS1 has bit 7 set, so a
packet starts at a byte with bit 7 set followed by three bytes with bit 7 clear. HR = (STATUS1 & 0x03) << 7 |
HR_LSB. STATUS2: 0x20 SmartPoint, 0x08 sensor alarm, 0x01 low battery. The format carries no check, so a packet
is accepted only when framing confirms it (the rule, and its one-second cost, are in `NoninFormat8Codec`).

Missing is missing (both formats): HR 511 and SpO2 127 are "no value": no reading, plus a NO_DATA condition for
that vital unless a sensor condition (SENSOR_OFF, SENSOR_FAULT) already says why. A value outside the vital's
plausible range (SpO2 101..126, HR 351..510) is an INVALID_VALUE condition, not a reading. Neither format carries a
clock: `device_time` is None.

Status bits -> conditions (device-wide, `vital` None; the detail names the bits):
  SNSD sensor disconnect (7: STATUS bit 6; 8: STATUS1 bit 6)             -> Condition.SENSOR_OFF
  SNSA sensor alarm (7: STATUS bit 3; 8: STATUS2 0x08)                     -> Condition.SENSOR_FAULT
  OOT out of track (7: bit 4; 8: bit 5), ARTF artifact (7: bit 5; 8: bit 2) -> Condition.SIGNAL_QUALITY
  low perfusion (7: RPRF alone, "red"; 8: bit 4)                           -> Condition.SIGNAL_QUALITY
  marginal perfusion (7: RPRF and GPRF, "yellow"; 8: bit 3)                -> Condition.SIGNAL_QUALITY
  GPRF alone ("green" perfusion)                                           -> no condition
SNSA: Nonin defines the sensor alarm as "the device is providing unusable data for analysis" (drphrozen Format8,
after the Nonin spec). It is not pulse search or motion (OOT, ARTF have their own bits) and not disconnection
(SNSD); it says the sensor's data cannot be used, so it maps to SENSOR_FAULT, the medium-priority "sensor" kind,
and, like SENSOR_OFF, it explains missing values. GPRF alone is Nonin's green perfusion LED, "high signal quality":
mapping it to SIGNAL_QUALITY would raise POOR SIGNAL on every good pulse, so only red and yellow do.

In format 7, ARTF and the perfusion bits are per pulse ("occur only during pulse" in the format-2 definition):
they are set in the frames of a pulse and clear in between, so a 1/3 s packet may hold no pulse at all. Their
state is therefore kept from the latest packet that held a pulse (a frame with any of RPRF, GPRF, ARTF) and is
cleared by SNSD or OOT (no pulse is being tracked); it does not flicker off between beats. SNSD, OOT and SNSA
count when set in any frame of the packet. Format 8's perfusion and artifact bits hold for the whole second.

Low battery is no technical condition of bedside: it is kept in `low_battery` and logged when it appears;
SmartPoint (the measurement met Nonin's SmartPoint quality) is kept in `smartpoint`.

Framing errors (`stats.rejected`, one `reject()` per loss of sync, not per byte): format 7 counts a frame with a
bad checksum or status bit 7 clear, a packet interrupted by a SYNC frame before its 25th frame, or a frame without
SYNC where a packet should begin; decoding then hunts byte by byte, from the byte after the abandoned packet's first
byte, for a frame with bit 7 and SYNC set and a valid checksum, and is back in sync when 25 valid frames follow
it. Bytes skipped while hunting (including a partial packet at connect) count once per run. Format 8 counts each
loss of sync once: the bytes skipped and the packets dropped unconfirmed until it is back in sync. `stats.frames`
counts decoded packets (the unit that yields readings; in format 8, the packets emitted) in both formats.
"""

from __future__ import annotations

import logging

from drivers.codec import CodecStats, ConditionKey, ConditionTracker, reject
from monitor.model import Condition, DeviceEvent, Reading
from monitor.vitals import is_plausible

log = logging.getLogger(__name__)

NO_HR = 511  # "no value" marker of the 9-bit HR
NO_SPO2 = 127  # "no value" marker of SpO2

# ---------------------------------------------------------------- format 7 layout

FRAME = 5  # bytes in a frame
FRAMES = 25  # frames in a packet
PACKET = FRAME * FRAMES

STATUS_HIGH = 0x80  # always 1
SNSD = 0x40  # sensor disconnect
ARTF = 0x20  # artifact (per pulse)
OOT = 0x10  # out of track
SNSA = 0x08  # sensor alarm
RPRF = 0x04  # red perfusion (per pulse)
GPRF = 0x02  # green perfusion (per pulse)
SYNC = 0x01  # first frame of a packet

# index of the frame whose DATA byte carries ...
HR_MSB_FRAME = 0
HR_LSB_FRAME = 1
SPO2_FRAME = 2
FIRMWARE_FRAME = 3
STAT2_FRAME = 7

SMARTPOINT = 0x20  # STAT2 (format 7) / STATUS2 (format 8)
LOW_BATTERY = 0x01  # STAT2 (format 7) / STATUS2 (format 8)

# ---------------------------------------------------------------- format 8 layout

PACKET8 = 4
S1_SNSD = 0x40
S1_OOT = 0x20
S1_LOW_PERFUSION = 0x10
S1_MARGINAL_PERFUSION = 0x08
S1_ARTIFACT = 0x04
S1_HR_HIGH = 0x03
S2_SENSOR_ALARM = 0x08

CONFIRM = 4  # contiguous framed packets that put format 8 back in sync after any loss of sync

# bit -> (condition, text); order = order in the detail text
StatusBits = tuple[tuple[int, Condition, str], ...]
_STATUS7: StatusBits = (
    (SNSD, Condition.SENSOR_OFF, "sensor disconnect (SNSD)"),
    (SNSA, Condition.SENSOR_FAULT, "sensor alarm, unusable data (SNSA)"),
    (OOT, Condition.SIGNAL_QUALITY, "out of track (OOT)"),
)
_STATUS8_1: StatusBits = (
    (S1_SNSD, Condition.SENSOR_OFF, "sensor disconnect"),
    (S1_OOT, Condition.SIGNAL_QUALITY, "out of track"),
    (S1_LOW_PERFUSION, Condition.SIGNAL_QUALITY, "low perfusion"),
    (S1_MARGINAL_PERFUSION, Condition.SIGNAL_QUALITY, "marginal perfusion"),
    (S1_ARTIFACT, Condition.SIGNAL_QUALITY, "artifact"),
)
_STATUS8_2: StatusBits = ((S2_SENSOR_ALARM, Condition.SENSOR_FAULT, "sensor alarm, unusable data"),)
_SENSOR_CONDITIONS = (Condition.SENSOR_OFF, Condition.SENSOR_FAULT)

# format-7 perfusion (RPRF, GPRF bits of a pulse frame) -> SIGNAL_QUALITY detail, None = no condition;
# worse classes first, so the worst pulse of a packet wins
_PERFUSION: tuple[tuple[int, str | None], ...] = (
    (RPRF, "low perfusion (red, RPRF)"),
    (RPRF | GPRF, "marginal perfusion (yellow, RPRF+GPRF)"),
    (GPRF, None),
)


def format7_hr(msb: int, lsb: int) -> int:
    """Format-7 HR from the DATA bytes of frames 0 and 1: Nonin's 9-bit layout (bits 8-7 in MSB bits 1-0, bits
    6-0 in LSB bits 6-0), as in formats 2 and 8. OpenICE would have `(msb << 8) | lsb` here."""
    return (msb & 0x03) << 7 | (lsb & 0x7F)


def _add(present: dict[ConditionKey, str], cond: Condition, detail: str) -> None:
    key = (cond, None)
    if key not in present:
        present[key] = detail
    elif detail not in present[key]:
        present[key] = f"{present[key]}, {detail}"


def _status(bits: int, table: StatusBits, present: dict[ConditionKey, str]) -> None:
    for bit, cond, detail in table:
        if bits & bit:
            _add(present, cond, detail)


def _readings(spo2: int, hr: int, present: dict[ConditionKey, str]) -> list[DeviceEvent]:
    """Readings of one packet; no-value markers and impossible values become conditions in `present`."""
    sensor_problem = any((c, None) in present for c in _SENSOR_CONDITIONS)
    readings: list[DeviceEvent] = []
    for vital, label, raw, missing in (("spo2", "SpO2", spo2, NO_SPO2), ("pr", "HR", hr, NO_HR)):
        if raw == missing:
            if not sensor_problem:  # a sensor condition already says why there is no value
                present[(Condition.NO_DATA, vital)] = f"device sent no value ({label} {raw})"
        elif not is_plausible(vital, raw):
            present[(Condition.INVALID_VALUE, vital)] = f"{label} {raw} is not a possible value"
        else:
            readings.append(Reading(vital, float(raw)))
    return readings


def _frame_problem(frame: bytes, index: int) -> str | None:
    """Why `frame` cannot be frame `index` of a packet, or None if it can."""
    if not frame[0] & STATUS_HIGH:
        return f"frame {index}: status bit 7 clear"
    if sum(frame[:4]) & 0xFF != frame[4]:
        return f"frame {index}: bad checksum"
    if index == 0 and not frame[0] & SYNC:
        return "frame without SYNC where a packet should begin"
    if index > 0 and frame[0] & SYNC:
        return f"packet interrupted by a SYNC frame after {index} frames"
    return None


def _is_sync_frame(buf: bytes, i: int) -> bool:
    return buf[i] & (STATUS_HIGH | SYNC) == STATUS_HIGH | SYNC and sum(buf[i : i + 4]) & 0xFF == buf[i + 4]


class NoninFormat7Codec:
    """Sans-I/O decoder of Nonin data format 7 (25 frames of 5 bytes per packet)."""

    name = "nonin7"

    def __init__(self) -> None:
        self.stats = CodecStats()
        self.firmware_revision: int | None = None
        self.smartpoint = False
        self.low_battery = False
        self._buffer = b""  # starts at the first byte of the packet being assembled, or where the hunt resumes
        self._aligned = False  # the previous packet was complete: the next frame is where a packet begins
        self._lost_counted = False  # this loss of sync (or garbage run) has been counted
        self._conditions = ConditionTracker()
        self._perfusion: str | None = None  # SIGNAL_QUALITY text of the latest pulse's perfusion, None = fine
        self._artifact = False  # the latest pulse had ARTF

    def feed(self, data: bytes) -> list[DeviceEvent]:
        buf = self._buffer + data
        events: list[DeviceEvent] = []
        start = 0
        while True:
            if not self._aligned:
                found = next((i for i in range(start, len(buf) - FRAME + 1) if _is_sync_frame(buf, i)), None)
                if found is None:
                    keep = max(start, len(buf) - FRAME + 1)  # a frame may begin in the last 4 bytes
                    self._skipped(buf[start:keep])
                    start = keep
                    break
                self._skipped(buf[start:found])
                start = found
            problem, complete = self._check(buf, start)
            if problem is not None:
                if self._aligned:
                    reject(self.stats, self.name, buf[start : start + PACKET], problem)
                    self._aligned, self._lost_counted = False, True
                else:
                    self._skipped(buf[start : start + 1])
                start += 1  # hunt again from the byte after this packet's first byte
            elif complete:
                events.extend(self._packet(buf[start : start + PACKET]))
                start += PACKET
                self._aligned, self._lost_counted = True, False
            else:
                break  # the packet goes on in the next read
        self._buffer = buf[start:]
        return events

    def _skipped(self, garbage: bytes) -> None:
        if garbage and not self._lost_counted:
            reject(self.stats, self.name, garbage, "no packet start (SYNC frame) found")
            self._lost_counted = True

    @staticmethod
    def _check(buf: bytes, start: int) -> tuple[str | None, bool]:
        """(problem, complete) for the packet beginning at `start`, as far as `buf` goes."""
        for index in range(FRAMES):
            at = start + index * FRAME
            if at + FRAME > len(buf):
                return None, False
            problem = _frame_problem(buf[at : at + FRAME], index)
            if problem is not None:
                return problem, False
        return None, True

    def _packet(self, packet: bytes) -> list[DeviceEvent]:
        self.stats.frames += 1
        statuses = packet[0::FRAME]
        data = packet[3::FRAME]
        self.firmware_revision = data[FIRMWARE_FRAME]
        self.smartpoint = bool(data[STAT2_FRAME] & SMARTPOINT)
        low_battery = bool(data[STAT2_FRAME] & LOW_BATTERY)
        if low_battery and not self.low_battery:
            log.warning("%s: the oximeter reports low battery", self.name)
        self.low_battery = low_battery

        every = 0
        for s in statuses:
            every |= s
        present: dict[ConditionKey, str] = {}
        _status(every, _STATUS7, present)
        pulses = [s for s in statuses if s & (RPRF | GPRF | ARTF)]
        if every & (SNSD | OOT):
            self._perfusion, self._artifact = None, False  # no pulse is tracked: the last pulse's flags are stale
        elif pulses:
            perfusion = {s & (RPRF | GPRF) for s in pulses}
            self._perfusion = next((text for bits, text in _PERFUSION if bits in perfusion), None)
            self._artifact = any(s & ARTF for s in pulses)
        if self._artifact:
            _add(present, Condition.SIGNAL_QUALITY, "artifact (ARTF)")
        if self._perfusion is not None:
            _add(present, Condition.SIGNAL_QUALITY, self._perfusion)

        readings = _readings(data[SPO2_FRAME], format7_hr(data[HR_MSB_FRAME], data[HR_LSB_FRAME]), present)
        return [*self._conditions.update(present), *readings]


def _is_packet8(buf: bytes, i: int) -> bool:
    """Whether a packet-shaped group (a byte with bit 7 set, then three with bit 7 clear) begins at `buf[i]`."""
    return i + PACKET8 <= len(buf) and bool(buf[i] & 0x80) and not (buf[i + 1] | buf[i + 2] | buf[i + 3]) & 0x80


class NoninFormat8Codec:
    """Sans-I/O decoder of Nonin data format 8 (one 4-byte packet a second), with confirmation by framing.

    Format 8 has no checksum: any byte with bit 7 set followed by three with bit 7 clear looks like a packet, and
    line noise holds such groups (1 in 16 positions of random bytes) that would decode as false values (a false
    SpO2 47 % is a false high-priority alarm) and false sensor conditions. So a packet is accepted only when the
    framing around it confirms it:

    1. A packet is accepted only when the byte right after it is the start of the next packet (bit 7 set). The
       latest packet is held and emitted when the next contiguous packet begins. Latency cost: in steady state
       every reading (and condition) is delayed by one packet, 1 s, the time until the next packet's first byte.
    2. After any loss of sync -- bytes skipped, a gap between packets, a start byte not followed by three bytes
       with bit 7 clear, a held packet not followed by a start byte, and the codec's initial state -- nothing is
       emitted until CONFIRM (4) contiguous packets have each been followed by a start byte; then those packets
       are emitted in order, and rule 1 holds from there on. Latency cost: after connecting or after garbage, the
       first reading comes with the fifth packet, about 4 s after the first good one (and all 4 at once).

    What it does not catch: garbage is emitted when its packet-shaped groups join CONFIRM framed contiguous ones,
    which happens when a group directly continues the device's packets before a garbage burst (and the next byte
    has bit 7 set), or directly precedes its packets after one: about 1 random burst in 13 between packets still
    yields one false packet (7.5 % in a simulation; before this rule, nearly all did). Random bytes alone hold 4
    contiguous framed groups with probability 2**-17 per position. Real packets are never lost to garbage before
    them (a group overlapping a real packet's first byte would need that byte's bit 7 clear), so after a burst
    every packet is recovered, in order, but a held packet whose next byte is garbage with bit 7 clear is dropped
    (rule 1).

    Counting: `stats.frames` counts emitted packets; `stats.rejected` counts each loss of sync once (one
    `reject()` for the bytes skipped and the packets dropped unconfirmed until the next packet is emitted).
    Only emitted packets decode: conditions (via ConditionTracker), `smartpoint` and `low_battery`.
    """

    name = "nonin8"

    def __init__(self) -> None:
        self.stats = CodecStats()
        self.smartpoint = False
        self.low_battery = False
        # from the first packet not yet emitted of the current run of contiguous packets (or a partial packet),
        # or where the hunt for a packet start goes on; never more than CONFIRM packets
        self._buffer = b""
        self._confirmed = False  # the run `_buffer` begins in is confirmed: each packet is emitted once framed
        self._lost_counted = False  # this loss of sync has been counted (at first, nothing has been lost yet)
        self._conditions = ConditionTracker()

    def feed(self, data: bytes) -> list[DeviceEvent]:
        buf = self._buffer + data
        events: list[DeviceEvent] = []
        pos = 0
        while True:
            end = pos  # after the run of contiguous packets from `pos`
            while _is_packet8(buf, end):
                end += PACKET8
            framed = end < len(buf) and bool(buf[end] & 0x80)  # the byte after the run starts another packet
            broken = end < len(buf) and (not framed or any(b & 0x80 for b in buf[end + 1 : end + PACKET8]))
            emit = (end - pos) // PACKET8 - (0 if framed or end == pos else 1)  # packets followed by a start byte
            if emit and (self._confirmed or emit >= CONFIRM):
                for _ in range(emit):
                    events.extend(self._packet(buf[pos : pos + PACKET8]))
                    pos += PACKET8
                self._confirmed, self._lost_counted = True, False
            if not broken:
                break  # the run goes on (or a packet may begin) in the next read
            # loss of sync: the packets not emitted and the byte at `end` are dropped; hunt from the byte after
            self._lost(buf[pos : end + 1], (end - pos) // PACKET8)
            self._confirmed = False
            pos = end + 1
        self._buffer = buf[pos:]
        return events

    def _lost(self, dropped: bytes, packets: int) -> None:
        if not self._lost_counted:
            why = (f"{packets} packet(s) not confirmed by framing" if packets
                   else "no packet start (bit 7 byte then 3 without) found")
            reject(self.stats, self.name, dropped, why)
            self._lost_counted = True

    def _packet(self, packet: bytes) -> list[DeviceEvent]:
        self.stats.frames += 1
        status1, hr_lsb, spo2, status2 = packet
        self.smartpoint = bool(status2 & SMARTPOINT)
        low_battery = bool(status2 & LOW_BATTERY)
        if low_battery and not self.low_battery:
            log.warning("%s: the oximeter reports low battery", self.name)
        self.low_battery = low_battery

        present: dict[ConditionKey, str] = {}
        _status(status1, _STATUS8_1, present)
        _status(status2, _STATUS8_2, present)
        readings = _readings(spo2, (status1 & S1_HR_HIGH) << 7 | hr_lsb, present)
        return [*self._conditions.update(present), *readings]
