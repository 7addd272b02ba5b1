"""A Nellcor N-560 / N-595 pulse oximeter simulator speaking the ASCII trend output, byte for byte.

Format (shared/reference/device-protocols.md §1.3, and the real N-560 capture in konz/cosmopusher
`demo_stream.py`, used for the layout only): 9600 8N1, one line every 2 s, CR LF, a header block of three
lines before every 22 data lines (a block of 25 lines):

    N-560    VERSION 1.56.00    CRC:XXXX  SpO2 Limit: 90-100%    PR Limit: 60-170BPM
                                 ADULT            0SAT-S
    TIME                 %SpO2   BPM     PA     Status
    29-Dec-17 07:18:43    99      66      12
    29-Dec-17 07:18:57    89*     66     201    MO SL
    29-Dec-17 07:19:29   ---     ---     ---    SD          AS
    29-Dec-17 07:20:27     0       0     ---    PS

Columns of a data line (0-based): time `dd-MMM-yy HH:mm:ss` (English month) in 0-17; %SpO2 right-aligned to
column 23 and its flag in 24; BPM right-aligned to 31, flag 32; PA right-aligned to 39, flag 40; the status
field from column 44: six 2-letter slots separated by one space (columns 44, 47, 50, 53, 56, 59), so a line
is 61 characters before CR LF. The flag is `*` when the value violates an alarm limit, else a space; a missing
value is `---`. The slot of each status code is inferred from the capture (MO/SD/SO/PS at 44, SL at 47, AS at
56) **(verify)**: signal/sensor codes in slot 0, SpO2 limit codes in slot 1, pulse limit codes in slot 2, low
battery in slot 3, alarm silence/off in slot 4. The real device pads every data line with spaces to its full
width (the capture shows them); `pad=False` gives the stripped form the spec sample shows.

The simulator (`NellcorSimulator`): sensor off -> `---` for all three values with `SD`; pulse search (after the
probe is put back) -> `0 0` and PA `---` with `PS`, as the real device does; motion -> noisy values, large PA
and `MO`; SpO2 or pulse outside the limits -> `*` and SL/SH/PL/PH. PA (pulse amplitude, dimensionless) is
derived from the perfusion index: PA = 10 x PI (%), which gives the capture's range of 4-60 **(verify)**.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from datetime import datetime

from simulators.state import NORMAL, Conditions, ConditionsSource, ValuesSource, half_up, motion_values

BAUDRATE = 9600
INTERVAL = 2.0  # seconds between data lines
BLOCK_LINES = 25  # a header block (3 lines) and 22 data lines
HEADER_LINES = 3
DATA_LINES_PER_BLOCK = BLOCK_LINES - HEADER_LINES

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

STATUS_SLOT: dict[str, int] = {
    # signal / sensor
    "MO": 0, "SD": 0, "SO": 0, "PS": 0, "LP": 0, "LM": 0,
    # saturation limits
    "SL": 1, "SH": 1,
    # pulse limits
    "PL": 2, "PH": 2,
    # battery
    "LB": 3,
    # alarm audio
    "AS": 4, "AO": 4,
}  # fmt: skip
"""Status code -> slot (0-5) in the status field (device-protocols.md §1.3 codes; slots inferred, verify)."""
STATUS_SLOTS = 6
FLAGGABLE = frozenset({"spo2", "pr"})

_NO_VALUE = "---"


def _value(value: float | None) -> str:
    """Rounded half up; `---` if missing, not finite or not representable in 3 digits."""
    n = half_up(value, 0, 999)
    return _NO_VALUE if n is None else str(n)


def format_time(when: datetime) -> str:
    """`dd-MMM-yy HH:mm:ss` with the English month abbreviation, whatever the locale."""
    return f"{when:%d}-{MONTHS[when.month - 1]}-{when:%y %H:%M:%S}"


def format_status(status: Sequence[str]) -> str:
    """The 17-character status field: each code in its slot, blanks elsewhere."""
    slots = ["  "] * STATUS_SLOTS
    for code in status:
        slot = STATUS_SLOT.get(code)
        if slot is None:
            raise ValueError(f"unknown Nellcor status code {code!r}; known: {', '.join(STATUS_SLOT)}")
        if slots[slot] != "  ":
            raise ValueError(f"status codes {slots[slot]} and {code} share slot {slot}")
        slots[slot] = code
    return " ".join(slots)


def format_line(
    spo2: float | None,
    pr: float | None,
    pa: float | None,
    when: datetime,
    *,
    flags: Collection[str] = (),
    status: Sequence[str] = (),
    pad: bool = True,
) -> bytes:
    """One data line (with CR LF): SpO2 (%), pulse rate (BPM) and pulse amplitude at device time `when`.

    `flags` names the values that violate an alarm limit ("spo2", "pr"), written with a `*` after them;
    `status` the 2-letter status codes (see STATUS_SLOT). A value that is None, NaN or does not fit 3 digits
    is `---`; values are rounded half up. `pad=True` (the real device) pads the line with spaces to 61
    characters; `pad=False` strips trailing spaces.
    """
    unknown = set(flags) - FLAGGABLE
    if unknown:
        raise ValueError(f"only spo2 and pr can be flagged, not {', '.join(sorted(unknown))}")
    f_spo2 = "*" if "spo2" in flags else " "
    f_pr = "*" if "pr" in flags else " "
    line = (
        f"{format_time(when)}{_value(spo2):>6}{f_spo2}{_value(pr):>7}{f_pr}{_value(pa):>7}    "
        f"{format_status(status)}"
    )
    if not pad:
        line = line.rstrip(" ")
    return (line + "\r\n").encode("ascii")


def format_header(
    model: str = "N-560",
    spo2_limits: tuple[int, int] = (90, 100),
    pr_limits: tuple[int, int] = (60, 170),
    *,
    version: str = "1.56.00",
    crc: str = "XXXX",
    mode: str = "ADULT",
    sat_seconds: int = 0,
) -> bytes:
    """The three header lines (each with CR LF): model, version, CRC and alarm limits; patient mode and the
    SatSeconds setting; the column titles.

    `mode` is ADULT or NEO; `sat_seconds` the SatSeconds alarm management setting (0 = off). Widths follow the
    capture: model padded to 9, version to 11, CRC to 4 characters.
    """
    for name, (lo, hi) in (("spo2_limits", spo2_limits), ("pr_limits", pr_limits)):
        if not 0 <= lo < hi <= 999:
            raise ValueError(f"{name} must be 0 <= low < high <= 999, got {lo}-{hi}")
    if mode not in ("ADULT", "NEO"):
        raise ValueError(f"mode must be ADULT or NEO, got {mode!r}")
    line1 = (
        f"{model:<9}VERSION {version:<11}CRC:{crc:<4}  SpO2 Limit: {spo2_limits[0]}-{spo2_limits[1]}%    "
        f"PR Limit: {pr_limits[0]}-{pr_limits[1]}BPM"
    )
    line2 = f"{'':29}{mode:<17}{sat_seconds}SAT-S "
    line3 = "TIME                 %SpO2   BPM     PA     Status"
    return "".join(f"{line}\r\n" for line in (line1, line2, line3)).encode("ascii")


class NellcorSimulator:
    """A simulated N-560 (or N-595) reading a values source; a frame source for `simulators.serial_out`.

    `frame(t, when)` gives what the device sends at one tick (every `interval`, default 2 s): the header block
    before the first data line and then before every 22nd, and one data line. Reads `spo2`, `pr` and `pi`
    from the values. The host sends nothing the device answers (`receive` returns b"").
    """

    baudrate = BAUDRATE

    def __init__(
        self,
        values: ValuesSource,
        *,
        conditions: ConditionsSource | None = None,
        interval: float = INTERVAL,
        seed: int = 0,
        model: str = "N-560",
        spo2_limits: tuple[int, int] = (90, 100),
        pr_limits: tuple[int, int] = (60, 170),
        pad: bool = True,
    ) -> None:
        self.values = values
        self.conditions = conditions
        self.interval = interval
        self.seed = seed
        self.spo2_limits = spo2_limits
        self.pr_limits = pr_limits
        self.pad = pad
        self.header = format_header(model, spo2_limits, pr_limits)
        self.lines_sent = 0  # data lines so far

    def data_line(self, t: float, when: datetime) -> bytes:
        """The data line at session time `t` (does not count towards the header cycle)."""
        cond: Conditions = self.conditions(t) if self.conditions is not None else NORMAL
        if cond.sensor_off:
            return format_line(None, None, None, when, status=("SD",), pad=self.pad)
        if cond.pulse_search:
            return format_line(0, 0, None, when, status=("PS",), pad=self.pad)
        v = self.values(t)
        status: list[str] = []
        pi = v.get("pi")
        pa = None if pi is None or not math.isfinite(pi) else 10.0 * pi
        if cond.motion:
            v = motion_values(v, t, self.seed)
            status.append("MO")
            pa = 150.0 + (t * 37.0) % 100.0  # motion drives the plethysmograph amplitude up, as in the capture
        spo2, pr = half_up(v.get("spo2"), 0, 999), half_up(v.get("pr"), 0, 999)
        flags: list[str] = []
        if spo2 is not None and not self.spo2_limits[0] <= spo2 <= self.spo2_limits[1]:
            flags.append("spo2")
            status.append("SL" if spo2 < self.spo2_limits[0] else "SH")
        if pr is not None and not self.pr_limits[0] <= pr <= self.pr_limits[1]:
            flags.append("pr")
            status.append("PL" if pr < self.pr_limits[0] else "PH")
        return format_line(spo2, pr, pa, when, flags=flags, status=status, pad=self.pad)

    def frame(self, t: float, when: datetime) -> bytes:
        head = self.header if self.lines_sent % DATA_LINES_PER_BLOCK == 0 else b""
        self.lines_sent += 1
        return head + self.data_line(t, when)

    def receive(self, data: bytes) -> bytes:
        return b""

