"""A session's observations as a FHIR R4 Bundle (type ``collection``) of vital-signs Observations.

- One Patient: ``identifier`` = the clinic's patient id; the initials only as the name's ``text`` (no other
  demographics are recorded).
- One Observation per reading, following the FHIR vital-signs profile
  (http://hl7.org/fhir/StructureDefinition/vitalsigns, plus heartrate, oxygensat, resprate, bodytemp where one
  applies): status ``final``, category ``vital-signs``, ``code`` with the LOINC coding(s) and the IEEE 11073 MDC
  coding (system ``urn:iso:std:iso:11073:10101``), ``valueQuantity`` in UCUM (http://unitsofmeasure.org),
  ``effectiveDateTime`` = the receive time in UTC, ``subject`` = the Patient's ``urn:uuid`` fullUrl, ``device``
  display = bedside's device id.
- Heart rate ``hr``: LOINC 8867-4; pulse rate from the oximeter ``pr``: 8867-4 (which the heartrate profile
  requires) and the more specific 8889-8. SpO2: 2708-6 (the oxygensat profile's) and 59408-5 (by pulse oximetry).
  A vital without a LOINC code (``pi``) carries only its MDC coding.
- Blood pressure: one Observation per cuff reading (profile ``bp``, LOINC 85354-9) with components systolic
  8480-6, diastolic 8462-4 and, when measured, mean 8478-0; systolic, diastolic and mean of one device at one
  receive time (to the millisecond) belong together. A component the device did not send carries a
  ``dataAbsentReason`` (the bp profile requires both systolic and diastolic), never a 0. Arterial pressures are
  grouped the same way in their own Observations.
- Ids are UUIDs derived from the session id (uuid5), so the same trace always gives the same Bundle.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from monitor.exports.csv_export import exportable, iso_utc, millis
from monitor.model import Observation
from monitor.store import SessionTrace
from monitor.vitals import VITALS, Vital

LOINC = "http://loinc.org"
MDC = "urn:iso:std:iso:11073:10101"
UCUM = "http://unitsofmeasure.org"
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
DATA_ABSENT = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
SD = "http://hl7.org/fhir/StructureDefinition/"
VITALSIGNS = SD + "vitalsigns"
_NAMESPACE = uuid.UUID("6f1c2a56-4f0e-5b8e-9a43-0c9e1f7b2d11")  # bedside's uuid5 namespace for export ids

LOINC_DISPLAY = {
    "8867-4": "Heart rate",
    "8889-8": "Heart rate by Pulse oximetry",
    "2708-6": "Oxygen saturation in Arterial blood",
    "59408-5": "Oxygen saturation in Arterial blood by Pulse oximetry",
    "9279-1": "Respiratory rate",
    "8310-5": "Body temperature",
    "19889-5": "Carbon dioxide [Partial pressure] in Exhaled gas --at end expiration",
    "85354-9": "Blood pressure panel with all children optional",
    "8480-6": "Systolic blood pressure",
    "8462-4": "Diastolic blood pressure",
    "8478-0": "Mean blood pressure",
}
# the vital-signs profile's code first (the specific profile requires it), then the catalogue's if different
_LOINC_CODES: dict[str, tuple[str, ...]] = {"hr": ("8867-4",), "pr": ("8867-4", "8889-8"),
                                            "spo2": ("2708-6", "59408-5")}
_PROFILE = {"hr": "heartrate", "pr": "heartrate", "spo2": "oxygensat", "rr": "resprate", "temp": "bodytemp"}
_UNIT_TEXT = {"/min": "/min", "%": "%", "mm[Hg]": "mmHg", "Cel": "Cel"}
_UNIT_TEXT_BY_VITAL = {"hr": "beats/minute", "pr": "beats/minute", "rr": "breaths/minute"}
# blood-pressure families: vital key of each component by its role
_BP_FAMILIES: dict[str, dict[str, str]] = {
    "nibp": {"systolic": "nibp_sys", "diastolic": "nibp_dia", "mean": "nibp_map"},
    "abp": {"systolic": "abp_sys", "diastolic": "abp_dia", "mean": "abp_map"},
}
_BP_LOINC = {"systolic": "8480-6", "diastolic": "8462-4", "mean": "8478-0"}
_BP_TEXT = {"nibp": "Blood pressure (non-invasive)", "abp": "Blood pressure (arterial)"}
_BP_FAMILY_OF = {key: fam for fam, roles in _BP_FAMILIES.items() for key in roles.values()}


@dataclass(slots=True)
class _BloodPressure:
    family: str
    device: str
    ms: int
    values: dict[str, float]  # role -> value


def to_fhir_bundle(trace: SessionTrace) -> dict[str, Any]:
    """The session's vital signs as a FHIR R4 Bundle (a JSON-ready dict)."""
    s = trace.session
    patient_url = f"urn:uuid:{_uuid(s.id, 'patient')}"
    entries: list[dict[str, Any]] = [{"fullUrl": patient_url, "resource": {
        "resourceType": "Patient", "id": _uuid(s.id, "patient"),
        "identifier": [{"use": "usual", "value": s.patient_id}],
        "name": [{"text": s.initials}],
    }}]
    items: list[Observation | _BloodPressure] = []
    groups: dict[tuple[str, str, int], _BloodPressure] = {}
    for o in trace.observations:
        if not exportable(o, trace):
            continue
        family = _BP_FAMILY_OF.get(o.vital)
        if family is None:
            items.append(o)
            continue
        key = (family, o.device, millis(o.receive_time))
        group = groups.get(key)
        if group is None:
            group = groups[key] = _BloodPressure(family, o.device, key[2], {})
            items.append(group)
        role = next(r for r, k in _BP_FAMILIES[family].items() if k == o.vital)
        group.values[role] = float(o.value)
    for n, item in enumerate(items):
        oid = _uuid(s.id, f"observation/{n}")
        resource = _blood_pressure(item, patient_url) if isinstance(item, _BloodPressure) else \
            _observation(item, patient_url)
        entries.append({"fullUrl": f"urn:uuid:{oid}", "resource": {"resourceType": "Observation", "id": oid,
                                                                   **resource}})
    return {
        "resourceType": "Bundle",
        "id": _uuid(s.id, "bundle"),
        "identifier": {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{_uuid(s.id, 'bundle')}"},
        "type": "collection",
        "timestamp": iso_utc(trace.end),
        "entry": entries,
    }


def to_fhir_json(trace: SessionTrace) -> str:
    """The Bundle as JSON text (UTF-8, compact)."""
    return json.dumps(to_fhir_bundle(trace), ensure_ascii=False, separators=(",", ":"))


def _uuid(session_id: str, what: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"bedside/session/{session_id}/{what}"))


def _common(profiles: list[str], patient_url: str, time: float, device: str) -> dict[str, Any]:
    return {
        "meta": {"profile": profiles},
        "status": "final",
        "category": [{"coding": [{"system": CATEGORY, "code": "vital-signs", "display": "Vital Signs"}],
                      "text": "Vital Signs"}],
        "subject": {"reference": patient_url},
        "effectiveDateTime": iso_utc(time),
        "device": {"display": device},
    }


def _codings(v: Vital, loinc: tuple[str, ...]) -> list[dict[str, str]]:
    out = [{"system": LOINC, "code": c, "display": LOINC_DISPLAY.get(c, v.label)} for c in loinc]
    out.append({"system": MDC, "code": str(v.mdc_code), "display": v.mdc_refid})
    return out


def _quantity(v: Vital, value: float) -> dict[str, Any]:
    return {"value": value, "unit": _UNIT_TEXT_BY_VITAL.get(v.key, _UNIT_TEXT.get(v.unit, v.unit)), "system": UCUM,
            "code": v.unit}


def _observation(o: Observation, patient_url: str) -> dict[str, Any]:
    v = VITALS[o.vital]
    loinc = _LOINC_CODES.get(v.key, () if v.loinc is None else (v.loinc,))
    profiles = [VITALSIGNS] + ([SD + _PROFILE[v.key]] if v.key in _PROFILE else [])
    return {**_common(profiles, patient_url, o.receive_time, o.device),
            "code": {"coding": _codings(v, loinc), "text": v.label},
            "valueQuantity": _quantity(v, float(o.value))}


def _blood_pressure(bp: _BloodPressure, patient_url: str) -> dict[str, Any]:
    components: list[dict[str, Any]] = []
    for role, key in _BP_FAMILIES[bp.family].items():
        v = VITALS[key]
        component: dict[str, Any] = {"code": {"coding": _codings(v, (_BP_LOINC[role],)), "text": v.label}}
        if role in bp.values:
            component["valueQuantity"] = _quantity(v, bp.values[role])
        elif role == "mean":
            continue  # optional: left out when not measured
        else:
            component["dataAbsentReason"] = {"coding": [{"system": DATA_ABSENT, "code": "unknown",
                                                         "display": "Unknown"}]}
        components.append(component)
    return {**_common([VITALSIGNS, SD + "bp"], patient_url, bp.ms / 1000.0, bp.device),
            "code": {"coding": [{"system": LOINC, "code": "85354-9", "display": LOINC_DISPLAY["85354-9"]}],
                     "text": _BP_TEXT[bp.family]},
            "component": components}
