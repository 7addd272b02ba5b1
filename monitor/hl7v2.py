"""HL7 v2 text helpers shared by every HL7 message bedside writes or reads (the PCD-01 session export in
monitor/exports/hl7.py, the PCD-04 alarm messages in alerts/notify/pcd04.py): escaping, times, segments, and the
MDC unit of a vital. Ground floor: standard library only.

All of it assumes the default delimiters ``|^~\\&`` (MSH-1 ``|``, MSH-2 ``^~\\&``), which is what bedside writes.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

ENCODING_CHARACTERS = "^~\\&"  # MSH-2: component, repetition, escape, subcomponent

# MDC unit of each UCUM unit (shared/reference/device-protocols.md §3); a respiratory rate is per breath, not per beat
MDC_UNITS: dict[str, tuple[int, str]] = {
    "/min": (264864, "MDC_DIM_BEAT_PER_MIN"),
    "%": (262688, "MDC_DIM_PERCENT"),
    "mm[Hg]": (266016, "MDC_DIM_MMHG"),
    "Cel": (268192, "MDC_DIM_DEGC"),
}
MDC_UNIT_BY_VITAL: dict[str, tuple[int, str]] = {"rr": (264928, "MDC_DIM_RESP_PER_MIN")}

_ESCAPES = {"E": "\\", "F": "|", "S": "^", "R": "~", "T": "&"}
_ESCAPE_SEQUENCE = re.compile(r"\\(E|F|S|R|T|X[0-9A-Fa-f]*|[^\\]*)\\")


def escape(text: str) -> str:
    """Text for an HL7 v2 field with the default delimiters: the delimiters and the escape character escaped,
    control characters as ``\\Xhh\\``."""
    out = (text.replace("\\", "\\E\\").replace("|", "\\F\\").replace("^", "\\S\\").replace("~", "\\R\\")
           .replace("&", "\\T\\"))
    return "".join(f"\\X{ord(c):02X}\\" if ord(c) < 0x20 or ord(c) == 0x7F else c for c in out)


def unescape(text: str) -> str:
    """The inverse of `escape`: ``\\E\\ \\F\\ \\S\\ \\R\\ \\T\\`` and ``\\Xhh…\\`` (hex bytes, read as UTF-8) back to
    characters. Other escape sequences (formatting such as ``\\.br\\``, ``\\H\\``) are dropped; a lone escape
    character is kept as it is. Never raises."""

    def one(m: re.Match[str]) -> str:
        code = m.group(1)
        if code in _ESCAPES:
            return _ESCAPES[code]
        if code.startswith("X") and len(code) % 2 == 1:
            return bytes.fromhex(code[1:]).decode("utf-8", errors="replace")
        return ""

    return _ESCAPE_SEQUENCE.sub(one, text)


def hl7_time(t: float) -> str:
    """A POSIX time as an HL7 DTM to the second in UTC: ``YYYYMMDDHHMMSS+0000``."""
    return datetime.fromtimestamp(math.floor(t), UTC).strftime("%Y%m%d%H%M%S") + "+0000"


def segment(name: str, fields: dict[int, str]) -> str:
    """A segment from its (already escaped) fields by number; the fields in between are empty."""
    last = max(fields, default=0)
    return "|".join([name, *(fields.get(i, "") for i in range(1, last + 1))])


def mdc_unit(vital: str, ucum: str) -> tuple[int, str]:
    """The MDC unit ``(code, MDC_DIM_… reference id)`` of vital `vital` measured in UCUM unit `ucum`; KeyError for a
    unit without one."""
    return MDC_UNIT_BY_VITAL.get(vital) or MDC_UNITS[ucum]
