"""The domain model that travels through bedside: device readings, technical conditions, observations, bays.

A driver's codec turns bytes into `Reading`s and `DeviceCondition`s (what the device said). The hub stamps them
with the bay and the receive time, turning them into `Observation`s and `TechnicalStatus` changes (what bedside
knows). A missing value is never a number: it is no Reading plus a condition.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

Priority = Literal["high", "medium", "low"]
AlarmKind = Literal["physiological", "technical"]
# An alarm's life (alerts/lifecycle.py): start -> [acknowledged | audio_paused -> audio_resumed | reminder |
# escalated | latched]* -> end. Every phase but start and end leaves the alarm in the active set.
AlarmPhase = Literal["start", "end", "acknowledged", "audio_paused", "audio_resumed", "reminder", "escalated",
                     "latched"]


class Condition(enum.StrEnum):
    """Technical conditions: the device or bedside cannot say what the patient's value is."""

    SENSOR_OFF = "sensor_off"  # probe off the patient, or no sensor connected
    NO_DATA = "no_data"  # nothing heard from the device (or for one vital) for too long
    DEVICE_LOST = "device_lost"  # the port or broker connection is gone
    INVALID_VALUE = "invalid_value"  # the device sent a value outside what is physiologically possible
    SIGNAL_QUALITY = "signal_quality"  # pulse search, low perfusion, interference, motion
    SENSOR_FAULT = "sensor_fault"  # defective, unrecognised, incompatible or expired sensor or cable


@dataclass(frozen=True, slots=True)
class Reading:
    """One value of one vital as decoded from a device, before bedside knows which bay it belongs to."""

    vital: str
    value: float
    device_time: float | None = None  # seconds since the epoch, when the device stamps its data
    replayed: bool = False  # sent late from a gateway's buffer (after an outage): a past value, not a current one


@dataclass(frozen=True, slots=True)
class DeviceCondition:
    """A device-reported technical condition that starts (active) or ends; `vital` None = the whole device."""

    condition: Condition
    active: bool
    vital: str | None = None
    detail: str = ""


DeviceEvent = Reading | DeviceCondition


@dataclass(frozen=True, slots=True)
class Observation:
    """A vital value of a bay, with the device that measured it and both clocks."""

    bay: str
    device: str
    vital: str
    value: float
    device_time: float | None
    receive_time: float
    replayed: bool = False  # a past value delivered late (a gateway's buffer): recorded and shown, not decided on


@dataclass(frozen=True, slots=True)
class TechnicalStatus:
    """A technical condition of a bay's device that started (active) or ended, at `time` (receive clock)."""

    bay: str
    device: str
    condition: Condition
    active: bool
    time: float
    vital: str | None = None
    detail: str = ""


@dataclass(slots=True)
class Bay:
    """A treatment bay: where one patient sits and which devices watch them."""

    id: str
    name: str
    devices: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class AlarmEvent:
    """The alarm engine's decision: alarm `id` of `bay` started or ended at `time`.

    `id` is stable for one alarm condition of a bay (e.g. "spo2_low", "device_lost:masimo-1"), so a start, the
    transitions of its life and its end share it. `by` names the user of a user action (acknowledge, audio pause);
    `level` is the escalation level of an "escalated" event; `until` is when an audio pause ends. Produced only by
    alerts/; the dashboard, recorder and notifiers only show, store and send it.
    """

    bay: str
    id: str
    phase: AlarmPhase
    kind: AlarmKind
    priority: Priority
    time: float
    message: str
    vital: str | None = None
    value: float | None = None
    limit: float | None = None
    device: str | None = None
    by: str | None = None
    level: int = 0
    until: float | None = None


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """A user action or setting change, for the audit log: who did what to which bay, when, before and after."""

    time: float
    who: str
    action: str  # e.g. "acknowledge", "audio_pause", "profile", "limits", "baseline"
    bay: str | None = None
    target: str | None = None  # e.g. the alarm id
    before: str | None = None  # JSON
    after: str | None = None  # JSON

    @classmethod
    def of(cls, time: float, who: str, action: str, bay: str | None = None, target: str | None = None,
           before: object = None, after: object = None) -> AuditRecord:
        """A record with `before` and `after` written as JSON (None stays None)."""
        return cls(time, who, action, bay, target, None if before is None else json.dumps(before, sort_keys=True),
                   None if after is None else json.dumps(after, sort_keys=True))


AnnotationKind = Literal["note", "infusion_start", "infusion_stop", "nausea", "emergence", "analgesia"]
ANNOTATION_KINDS: tuple[AnnotationKind, ...] = get_args(AnnotationKind)


@dataclass(frozen=True, slots=True)
class Annotation:
    """A nurse's note on a bay's timeline: free text, or a quick event (infusion start/stop, nausea, emergence
    reaction, analgesia) with optional text. `id` is its row in the database (it is stored before it is shown)."""

    id: int
    bay: str
    time: float
    who: str
    kind: AnnotationKind
    text: str = ""


@dataclass(frozen=True, slots=True)
class SettingsChanged:
    """A bay's alarm settings (profile, the patient's limits, a baseline) were changed by `who`: pages showing
    them read them again. The change itself is in the audit log."""

    bay: str
    time: float
    who: str
    what: str  # "alarm_settings" | "baseline"


@dataclass(frozen=True, slots=True)
class SessionChanged:
    """A bay's infusion session took a step (admitted, checklist, dose change, phase, discharge...): `session` is
    the session's JSON after it (monitor.infusion.Session.to_json), `step` what was done and by `who`."""

    bay: str
    time: float
    who: str
    step: str
    session: dict[str, Any]


LiveItem = Observation | TechnicalStatus | AlarmEvent | AuditRecord | Annotation | SettingsChanged | SessionChanged
