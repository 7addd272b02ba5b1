"""One alarm event as an HL7 v2.6 ORU^R40^ORU_R40 message per IHE PCD-04 "Report Alert" (ACM profile), and the
reading of the receiver's ACK. Sans-I/O: text in, text out; alerts/notify/mllp.py sends it.

Layout (shared/reference/device-protocols.md §4.3), segments separated and ended by ``\\r``:

- MSH: sending application, facility, MSH-7 the event's time, ``ORU^R40^ORU_R40``, MSH-10 the caller's control id,
  P, 2.6, MSH-15 ``AL`` / MSH-16 ``NE`` (as the reference example for R40), UTF-8, MSH-21
  ``IHE_PCD_ACM_001^IHE PCD^1.3.6.1.4.1.19376.1.6.1.4.1^ISO``.
- PID: PID-3 ``<patient id>^^^<facility>^PI`` when a patient id is given, else an empty ``PID|`` (the alarm is
  about whoever sits in the bay; PV1 says where). PV1: PV1-2 ``O`` (outpatient), PV1-3 ``<facility>^^<bay>``.
- One OBR: OBR-2 (placer order number) ``<control id>^<sending application>`` names this message; OBR-3 (filler
  order number) ``<bay>/<alarm id>^<sending application>`` names the alarm (e.g. ``BAY04/spo2_low``): the same in
  every message of one alarm, start, updates and end, so a receiver pairs them by OBR-3. Bay ids never contain
  ``/`` (monitor/config.py), so the first ``/`` splits it. One alarm id has at most one occurrence active at a time
  (alerts/lifecycle.py), so in delivery order a start after an end is a new occurrence. OBR-4
  ``196616^MDC_EVT_ALARM^MDC``, OBR-7 the event's time.
- NTE after the OBR, only for an ``escalated`` event (``escalation level <n>``) and an ``audio_paused`` event with
  an end (``audio paused until <YYYYMMDDHHMMSS+0000>``).
- OBX 1: the MDS containment row ``69965^MDC_DEV_MON_PHYSIO_MULTI_PARAM_MDS^MDC``, ``1.0.0.0``, status X, OBX-18 the
  source device when known. Then the facets, OBX-4 ``<instance>.<facet>``; the instance is
  ``1.<n>.1.<vital's MDC code>`` for an alarm about a vital (n: its place in monitor/vitals.py), else
  ``1.0.0.<event code>``:

  ====== ============================================ =========================================================
  facet  OBX-3                                        content
  ====== ============================================ =========================================================
  .1     the event code (table below)                 OBX-2 ST, OBX-5 the alarm's message, OBX-8
                                                      ``abnormality~priority~type`` (abnormality L / H / A, empty
                                                      for technical; priority PH / PM / PL; type SP physiological,
                                                      ST technical), OBX-11 R, OBX-14 the event's time
  .2     the vital's MDC code (only with a vital)     OBX-2 NM and OBX-5 the value when known, OBX-6 the MDC
                                                      unit, OBX-7 the limit: ``>lim`` for a low alarm (the normal
                                                      range lies above it), ``<lim`` for a high one
  .3     ``68481^MDC_ATTR_EVENT_PHASE^MDC``           the phase (table below), OBX-16 who, for a user's action
  .4     ``68482^MDC_ATTR_ALARM_STATE^MDC``           ``active``; ``latched`` while latched; ``inactive`` at end
  .5     ``68483^MDC_ATTR_ALARM_INACTIVATION_STATE^MDC`` ``alert-acknowledged`` once acknowledged (also an end by
                                                      acknowledging a latched alarm), ``audio-paused`` during an
                                                      audio pause, else ``enabled``
  ====== ============================================ =========================================================

Event codes (alarm ids: alerts/conditions.py, alerts/engine.py; codes: reference §3):

  ============================================ ============================== ===========
  alarm id                                     event code                     abnormality
  ============================================ ============================== ===========
  ``<vital>_low``                              196670 MDC_EVT_LO              L
  ``<vital>_below_baseline``                   196670 MDC_EVT_LO              L
  ``<vital>_high``                             196648 MDC_EVT_HI              H
  ``<vital>_above_baseline``                   196648 MDC_EVT_HI              H
  ``<vital>_rise`` (no MDC rate-of-change code 196648 MDC_EVT_HI              H
  in §3; the value is high against its own
  recent low)
  other physiological                          196616 MDC_EVT_ALARM (generic) A
  technical ``sensor_off:<device>[:<vital>]``  196916 MDC_EVT_SENSOR_DISCONN  (none)
  other technical (``device_lost``,            196616 MDC_EVT_ALARM (generic) (none)
  ``no_data``, ``not_current``, ``sensor_fault``,
  ``signal_quality``, ``invalid_value``,
  ``engine_failure`` …)
  ============================================ ============================== ===========

  A desaturation is ``spo2_low`` (its text says ``(desat)``), so MDC_EVT_LO, as in the reference example.

Event phases (AlarmEvent.phase -> PCD-04 event phase):

  ``start`` -> ``start``, ``end`` -> ``end``, ``escalated`` -> ``escalate``; ``acknowledged``, ``audio_paused``,
  ``audio_resumed``, ``reminder`` and ``latched`` -> ``update`` (the alarm state and inactivation state facets say
  what changed).

Every text from the event or the caller (ids, bay, facility, message, device, user) is escaped with
monitor.hl7v2.escape, so no value can break a field or a segment.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal, get_args

from monitor.hl7v2 import escape, hl7_time, mdc_unit, segment, unescape
from monitor.model import AlarmEvent, AlarmPhase
from monitor.vitals import VITALS

PROFILE = "IHE_PCD_ACM_001^IHE PCD^1.3.6.1.4.1.19376.1.6.1.4.1^ISO"
MESSAGE_TYPE = "ORU^R40^ORU_R40"
MDS = "69965^MDC_DEV_MON_PHYSIO_MULTI_PARAM_MDS^MDC"
EVT_ALARM = "196616^MDC_EVT_ALARM^MDC"
EVENT_PHASE = "68481^MDC_ATTR_EVENT_PHASE^MDC"
ALARM_STATE = "68482^MDC_ATTR_ALARM_STATE^MDC"
INACTIVATION_STATE = "68483^MDC_ATTR_ALARM_INACTIVATION_STATE^MDC"

EVT_LO = (196670, "MDC_EVT_LO")
EVT_HI = (196648, "MDC_EVT_HI")
EVT_SENSOR_DISCONN = (196916, "MDC_EVT_SENSOR_DISCONN")
EVT_GENERIC = (196616, "MDC_EVT_ALARM")

# physiological alarm kind (the alarm id's suffix after the vital) -> (event code, abnormality flag)
PHYSIOLOGICAL_CODES: dict[str, tuple[tuple[int, str], str]] = {
    "low": (EVT_LO, "L"),
    "below_baseline": (EVT_LO, "L"),
    "high": (EVT_HI, "H"),
    "above_baseline": (EVT_HI, "H"),
    "rise": (EVT_HI, "H"),
}
# technical condition (the alarm id up to the first ":") -> event code; any other: EVT_GENERIC
TECHNICAL_CODES: dict[str, tuple[int, str]] = {"sensor_off": EVT_SENSOR_DISCONN}

PHASES: dict[AlarmPhase, str] = {
    "start": "start",
    "end": "end",
    "escalated": "escalate",
    "acknowledged": "update",
    "audio_paused": "update",
    "audio_resumed": "update",
    "reminder": "update",
    "latched": "update",
}
PRIORITIES = {"high": "PH", "medium": "PM", "low": "PL"}
TYPES = {"physiological": "SP", "technical": "ST"}

AckCode = Literal["AA", "AE", "AR", "CA", "CE", "CR"]
ACK_CODES: tuple[AckCode, ...] = get_args(AckCode)
_ACK_CODE: dict[str, AckCode] = {c: c for c in ACK_CODES}
_SUFFIXES = sorted(PHYSIOLOGICAL_CODES, key=len, reverse=True)  # "below_baseline" before "low"


@dataclass(frozen=True, slots=True)
class AlarmState:
    """Where the alarm is in its life when the event is sent, for a caller that knows more than the event's phase
    says (e.g. an escalation during an audio pause). Without it the state follows from the phase alone."""

    acknowledged_by: str | None = None  # None: not acknowledged ("" = acknowledged by someone unnamed)
    paused: bool = False  # in an audio pause
    latched: bool = False  # its condition ended, it waits for a user's reset


@dataclass(frozen=True, slots=True)
class Ack:
    """A receiver's acknowledgement: MSA-2 the acknowledged message's control id, MSA-1 the code, and the text
    (MSA-3, else the ERR segment's user message or diagnostics)."""

    control_id: str
    code: AckCode
    text: str = ""

    @property
    def accepted(self) -> bool:
        """AA (application accept) or CA (commit accept, enhanced mode)."""
        return self.code in ("AA", "CA")


def event_code(event: AlarmEvent) -> tuple[int, str, str]:
    """The alarm's MDC event code, its reference id and the OBX-8 abnormality flag (module docstring's table)."""
    if event.kind == "technical":
        code, ref = TECHNICAL_CODES.get(event.id.split(":", 1)[0], EVT_GENERIC)
        return code, ref, ""
    kind = event.id[len(event.vital) + 1:] if event.vital and event.id.startswith(event.vital + "_") else None
    if kind not in PHYSIOLOGICAL_CODES:
        kind = next((s for s in _SUFFIXES if event.id.endswith("_" + s)), None)
    if kind is None:
        return *EVT_GENERIC, "A"
    (code, ref), flag = PHYSIOLOGICAL_CODES[kind]
    return code, ref, flag


def alarm_message(event: AlarmEvent, *, control_id: str, facility: str, sending_application: str = "BEDSIDE",
                  patient_id: str | None = None, state: AlarmState | None = None) -> str:
    """`event` as one HL7 v2.6 ORU^R40^ORU_R40 (IHE PCD-04) message, segments joined and ended by ``\\r``."""
    if event.phase not in PHASES:
        raise ValueError(f"unknown alarm phase {event.phase!r}")
    if not control_id:
        raise ValueError("a message needs a control id (MSH-10)")
    app, fac, when = escape(sending_application), escape(facility), hl7_time(event.time)
    state = state or _state_from_phase(event)
    segments = [
        "MSH|^~\\&|" + "|".join([app, fac, "", "", when, "", MESSAGE_TYPE, escape(control_id), "P", "2.6", "", "",
                                 "AL", "NE", "", "UNICODE UTF-8", "", "", PROFILE]),
        segment("PID", {3: f"{escape(patient_id)}^^^{fac}^PI"} if patient_id else {1: ""}),
        segment("PV1", {2: "O", 3: f"{fac}^^{escape(event.bay)}"}),
        segment("OBR", {1: "1", 2: f"{escape(control_id)}^{app}", 3: f"{escape(f'{event.bay}/{event.id}')}^{app}",
                        4: EVT_ALARM, 7: when}),
    ]
    note = _note(event)
    if note:
        segments.append(segment("NTE", {1: "1", 3: escape(note)}))

    code, ref, abnormal = event_code(event)
    v = VITALS.get(event.vital) if event.vital else None
    instance = f"1.{list(VITALS).index(v.key) + 1}.1.{v.mdc_code}" if v else f"1.0.0.{code}"
    device = {18: escape(event.device)} if event.device else {}
    obx: list[dict[int, str]] = [{3: MDS, 4: "1.0.0.0", 11: "X", **device}]
    flags = "~".join([abnormal, PRIORITIES[event.priority], TYPES[event.kind]])
    obx.append({2: "ST", 3: f"{code}^{ref}^MDC", 4: f"{instance}.1", 5: escape(event.message), 8: flags, 11: "R",
                14: when})
    if v is not None:
        unit_code, unit_ref = mdc_unit(v.key, v.unit)
        value = _number(event.value)
        limit = _number(event.limit)
        limits = "" if not limit else {"L": ">", "H": "<"}.get(abnormal, "") + limit
        obx.append({2: "NM" if value else "", 3: f"{v.mdc_code}^{v.mdc_refid}^MDC", 4: f"{instance}.2", 5: value,
                    6: f"{unit_code}^{unit_ref}^MDC", 7: limits, 11: "R"})
    obx.append({2: "ST", 3: EVENT_PHASE, 4: f"{instance}.3", 5: PHASES[event.phase], 11: "R",
                **({16: escape(event.by)} if event.by else {})})
    alarm_state = "inactive" if event.phase == "end" else "latched" if state.latched else "active"
    obx.append({2: "ST", 3: ALARM_STATE, 4: f"{instance}.4", 5: alarm_state, 11: "R"})
    inactivation = ("alert-acknowledged" if state.acknowledged_by is not None
                    else "audio-paused" if state.paused else "enabled")
    obx.append({2: "ST", 3: INACTIVATION_STATE, 4: f"{instance}.5", 5: inactivation, 11: "R"})
    segments += [segment("OBX", {1: str(n), **fields}) for n, fields in enumerate(obx, start=1)]
    return "\r".join(segments) + "\r"


def _state_from_phase(event: AlarmEvent) -> AlarmState:
    acknowledged = event.phase == "acknowledged" or (event.phase == "end" and event.by is not None)
    return AlarmState(acknowledged_by=(event.by or "") if acknowledged else None,
                      paused=event.phase == "audio_paused", latched=event.phase == "latched")


def _note(event: AlarmEvent) -> str:
    if event.phase == "escalated":
        return f"escalation level {event.level}"
    if event.phase == "audio_paused" and event.until is not None:
        return f"audio paused until {hl7_time(event.until)}"
    return ""


def _number(value: float | None) -> str:
    """A finite number as an HL7 NM (no exponent, no trailing zeros); empty for None, NaN or an infinity."""
    if value is None or not math.isfinite(value):
        return ""
    text = f"{round(float(value), 6):f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


_SEGMENT_SPLIT = re.compile(r"\r\n|\r|\n")


def parse_ack(message: str) -> Ack:
    """The acknowledgement in an HL7 v2 ACK message (segments split by CR, LF or CRLF; the delimiters as MSH
    declares them). ValueError, with the reason, when it has no MSH, no MSA, an unknown code or no control id."""
    segments = [s for s in _SEGMENT_SPLIT.split(message.strip("\x0b\x1c\r\n ")) if s]
    if not segments or not segments[0].startswith("MSH") or len(segments[0]) < 8:
        raise ValueError(f"not an HL7 v2 message (no MSH segment first): {message[:40]!r}")
    sep, comp = segments[0][3], segments[0][4]
    if sep.isalnum() or comp.isalnum() or sep == comp:
        raise ValueError(f"invalid MSH delimiters {segments[0][3:8]!r}")

    def fields_of(name: str) -> list[str] | None:
        found = next((s for s in segments if s.split(sep, 1)[0] == name), None)
        return None if found is None else found.split(sep)

    def field(fields: list[str] | None, n: int, component: int = 1) -> str:
        if fields is None or n >= len(fields):
            return ""
        parts = fields[n].split(comp)
        return unescape(parts[component - 1]) if component <= len(parts) else ""

    msa = fields_of("MSA")
    if msa is None:
        raise ValueError("no MSA segment: not an acknowledgement")
    raw = field(msa, 1)
    code = _ACK_CODE.get(raw)
    if code is None:
        raise ValueError(f"unknown acknowledgement code MSA-1 {raw!r} (expected one of {', '.join(ACK_CODES)})")
    control_id = field(msa, 2)
    if not control_id:
        raise ValueError("MSA-2 (the acknowledged message's control id) is empty")
    err = fields_of("ERR")
    text = next((t for t in (field(msa, 3), field(err, 8), field(err, 7), field(err, 3, 2), field(err, 1, 4)) if t),
                "")
    return Ack(control_id, code, text)
