"""Nonin pulse oximeter simulators speaking serial data formats 7 and 8, byte for byte (9600 8N1).

Formats (shared/reference/device-protocols.md §1.4; status bits as in mdpnp/mdpnp `Status.java` and
mattjlewis/NoninPulseOx `DataFormat8Serialiser.java`):

Data format 7 - 75 frames/s, a packet of 25 frames (1/3 s). Frame = [STATUS][PLETH_MSB][PLETH_LSB][DATA][CHK]:

- STATUS: bit7 always 1; bit6 SNSD sensor disconnect; bit5 ARTF artifact; bit4 OOT out of track; bit3 SNSA
  sensor alarm; bit2 RPRF red perfusion; bit1 GPRF green perfusion (both = yellow); bit0 SYNC, set on the
  first frame of a packet only.
- PLETH: a 16-bit plethysmogram sample, MSB first.
- DATA by frame index: 0 HR MSB, 1 HR LSB, HR = (MSB & 0x03) << 7 | (LSB & 0x7F) (4-beat average);
  2 SpO2; 3 firmware revision; 4 reserved; 5-6 timer (7 bits per byte, like HR, **verify**); 7 STAT2
  (0x20 SmartPoint, 0x01 low battery); 8 SpO2-D; 9 SpO2 fast; 10 SpO2 beat-to-beat; 11-12 reserved;
  13-14 E-HR (8-beat); 15 E-SpO2; 16 E-SpO2-D; 17-18 reserved; 19-20 HR-D; 21-22 E-HR-D; 23-24 reserved.
  This simulator writes its one SpO2 into every SpO2 slot and its one HR into every HR slot.
- CHK = (STATUS + PLETH_MSB + PLETH_LSB + DATA) mod 256.

Data format 8 - one 4-byte packet per second: [STATUS1][HR_LSB][SPO2][STATUS2]. STATUS1: bit7 sync (always 1),
bit6 sensor disconnect, bit5 out of track, bit4 low perfusion, bit3 marginal perfusion, bit2 artifact,
bits1-0 HR bits 8-7; HR_LSB = HR & 0x7F; STATUS2: 0x20 SmartPoint, 0x08 sensor alarm, 0x01 low battery.
Only STATUS1 has bit7 set, which is how a reader finds the packet start.

No value: HR 511 and SpO2 127 (both formats). The simulators show a scenario's conditions as the device does:
sensor off -> sensor-disconnect bit and no values (flat pleth); pulse search -> out-of-track bit and no values;
motion -> artifact bit and noisy values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime

from simulators.state import NORMAL, Conditions, ConditionsSource, ValuesSource, half_up, motion_values

BAUDRATE = 9600
FRAMES_PER_PACKET = 25
FRAME_RATE = 75.0  # frames per second
PACKET_INTERVAL = FRAMES_PER_PACKET / FRAME_RATE  # 1/3 s
HR_NONE = 511
SPO2_NONE = 127

# Format 7 STATUS bits
STATUS_ALWAYS = 0x80
SNSD = 0x40  # sensor disconnect
ARTF = 0x20  # artifact
OOT = 0x10  # out of track
SNSA = 0x08  # sensor alarm
RPRF = 0x04  # red perfusion
GPRF = 0x02  # green perfusion
SYNC = 0x01  # first frame of a packet
# STAT2 (format 7 frame 7) and STATUS2 (format 8)
SMARTPOINT = 0x20
SENSOR_ALARM = 0x08
LOW_BATTERY = 0x01
# Format 8 STATUS1 bits
F8_SNSD = 0x40
F8_OOT = 0x20
F8_LOW_PERFUSION = 0x10
F8_MARGINAL_PERFUSION = 0x08
F8_ARTIFACT = 0x04

DEFAULT_FIRMWARE = 0x2A  # an arbitrary firmware revision byte


def hr_code(hr: float | None) -> int:
    """HR as sent: rounded half up, 0..510; 511 if missing or out of range."""
    n = half_up(hr, 0, HR_NONE - 1)
    return HR_NONE if n is None else n


def spo2_code(spo2: float | None) -> int:
    """SpO2 as sent: rounded half up, 0..100; 127 if missing or out of range."""
    n = half_up(spo2, 0, 100)
    return SPO2_NONE if n is None else n


def _hr_bytes(hr: int) -> tuple[int, int]:
    return (hr >> 7) & 0x03, hr & 0x7F


def format7_data(spo2: int, hr: int, *, firmware: int = DEFAULT_FIRMWARE, timer: int = 0, stat2: int = 0) -> list[int]:
    """The 25 DATA bytes of a format 7 packet for already encoded `spo2` (0..127) and `hr` (0..511)."""
    if not 0 <= spo2 <= 127 or not 0 <= hr <= 511:
        raise ValueError(f"spo2 must be 0..127 and hr 0..511, got {spo2}, {hr}")
    msb, lsb = _hr_bytes(hr)
    timer %= 1 << 14
    data = [0] * FRAMES_PER_PACKET
    data[0], data[1], data[2], data[3] = msb, lsb, spo2, firmware & 0xFF
    data[5], data[6], data[7] = (timer >> 7) & 0x7F, timer & 0x7F, stat2 & 0x7F
    data[8] = data[9] = data[10] = spo2  # SpO2-D, fast, beat-to-beat
    data[13], data[14] = msb, lsb  # E-HR
    data[15] = data[16] = spo2  # E-SpO2, E-SpO2-D
    data[19], data[20] = msb, lsb  # HR-D
    data[21], data[22] = msb, lsb  # E-HR-D
    return data


def format7_frame(status: int, pleth: int, data: int) -> bytes:
    """One 5-byte frame; `status` gets bit7 set; CHK = sum of the 4 bytes mod 256."""
    if not 0 <= pleth <= 0xFFFF or not 0 <= data <= 0xFF or not 0 <= status <= 0xFF:
        raise ValueError(f"status, pleth or data out of range: {status}, {pleth}, {data}")
    b = [STATUS_ALWAYS | status, pleth >> 8, pleth & 0xFF, data]
    return bytes([*b, sum(b) & 0xFF])


def format7_packet(
    spo2: float | None,
    hr: float | None,
    pleth: Sequence[int],
    *,
    status: int = 0,
    firmware: int = DEFAULT_FIRMWARE,
    timer: int = 0,
    stat2: int = 0,
) -> bytes:
    """A format 7 packet (125 bytes): 25 frames with the 25 `pleth` samples (0..65535).

    `status` holds STATUS bits 1-6 for every frame (SNSD, ARTF, OOT, SNSA, RPRF, GPRF); SYNC is set on frame 0
    only. None (or a value out of range) is sent as HR 511 / SpO2 127.
    """
    if len(pleth) != FRAMES_PER_PACKET:
        raise ValueError(f"a packet has {FRAMES_PER_PACKET} pleth samples, got {len(pleth)}")
    if status & ~0x7E:
        raise ValueError(f"status may only hold bits 1-6, got {status:#04x}")
    data = format7_data(spo2_code(spo2), hr_code(hr), firmware=firmware, timer=timer, stat2=stat2)
    return b"".join(
        format7_frame(status | (SYNC if i == 0 else 0), pleth[i], data[i]) for i in range(FRAMES_PER_PACKET)
    )


def format8_packet(spo2: float | None, hr: float | None, *, status1: int = 0, status2: int = 0) -> bytes:
    """A format 8 packet (4 bytes). `status1` holds STATUS1 bits 2-6, `status2` STATUS2 bits (0..0x7F).

    None (or a value out of range) is sent as HR 511 / SpO2 127.
    """
    if status1 & ~0x7C:
        raise ValueError(f"status1 may only hold bits 2-6, got {status1:#04x}")
    if not 0 <= status2 <= 0x7F:
        raise ValueError(f"status2 must be 0..0x7f, got {status2:#04x}")
    h = hr_code(hr)
    return bytes([0x80 | status1 | ((h >> 7) & 0x03), h & 0x7F, spo2_code(spo2), status2])


def pleth_sample(t: float, pr: float, pi: float) -> int:
    """A plausible 16-bit plethysmogram at time `t` for pulse rate `pr` (/min) and perfusion index `pi` (%).

    One beat: a quick systolic upstroke, a dicrotic notch and a slow diastolic decay, around mid-scale; the
    amplitude grows with the perfusion index.
    """
    phase = (t * pr / 60.0) % 1.0
    systolic = math.exp(-(((phase - 0.15) / 0.07) ** 2))
    dicrotic = 0.35 * math.exp(-(((phase - 0.45) / 0.08) ** 2))
    decay = 0.25 * math.exp(-phase / 0.35)
    amplitude = 4000.0 + 2500.0 * min(pi, 10.0)
    value = 32768.0 + amplitude * (systolic + dicrotic + decay - 0.4)
    return max(0, min(0xFFFF, round(value)))


class _NoninBase:
    baudrate = BAUDRATE

    def __init__(self, values: ValuesSource, conditions: ConditionsSource | None, interval: float, seed: int) -> None:
        self.values = values
        self.conditions = conditions
        self.interval = interval
        self.seed = seed

    def _read(self, t: float) -> tuple[Conditions, float | None, float | None, float | None]:
        """(conditions, spo2, pr, pi) as the device reads them at `t`; no values while off or searching."""
        cond = self.conditions(t) if self.conditions is not None else NORMAL
        if cond.sensor_off or cond.pulse_search:
            return cond, None, None, None
        v = self.values(t)
        if cond.motion:
            v = motion_values(v, t, self.seed)
        return cond, v.get("spo2"), v.get("pr"), v.get("pi")

    def receive(self, data: bytes) -> bytes:
        return b""


class Nonin7Simulator(_NoninBase):
    """A Nonin in data format 7 as a frame source: one 25-frame packet per tick.

    The real device sends 3 packets per second (`interval` = 1/3 s); a different `interval` changes only the
    pace, not the content (each packet's 25 pleth samples are 1/75 s apart from the packet's time `t`).
    """

    def __init__(
        self,
        values: ValuesSource,
        *,
        conditions: ConditionsSource | None = None,
        interval: float = PACKET_INTERVAL,
        seed: int = 0,
        firmware: int = DEFAULT_FIRMWARE,
    ) -> None:
        super().__init__(values, conditions, interval, seed)
        self.firmware = firmware

    def frame(self, t: float, when: datetime) -> bytes:
        cond, spo2, pr, pi = self._read(t)
        status = 0
        if cond.sensor_off:
            status |= SNSD
        elif cond.pulse_search:
            status |= OOT
        if cond.motion and not cond.sensor_off:
            status |= ARTF
        if pr is None or not math.isfinite(pr) or cond.sensor_off:
            pleth = [0 if cond.sensor_off else 32768] * FRAMES_PER_PACKET
        else:
            p_pi = pi if pi is not None and math.isfinite(pi) else 1.0
            pleth = [pleth_sample(t + i / FRAME_RATE, pr, p_pi) for i in range(FRAMES_PER_PACKET)]
        return format7_packet(spo2, pr, pleth, status=status, firmware=self.firmware, timer=int(t))


class Nonin8Simulator(_NoninBase):
    """A Nonin in data format 8 as a frame source: one 4-byte packet per tick (default every second)."""

    def __init__(
        self,
        values: ValuesSource,
        *,
        conditions: ConditionsSource | None = None,
        interval: float = 1.0,
        seed: int = 0,
    ) -> None:
        super().__init__(values, conditions, interval, seed)

    def frame(self, t: float, when: datetime) -> bytes:
        cond, spo2, pr, _ = self._read(t)
        status1 = 0
        if cond.sensor_off:
            status1 |= F8_SNSD
        elif cond.pulse_search:
            status1 |= F8_OOT
        if cond.motion and not cond.sensor_off:
            status1 |= F8_ARTIFACT
        return format8_packet(spo2, pr, status1=status1)
