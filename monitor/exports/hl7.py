"""A session's observations as one HL7 v2.6 ORU^R01^ORU_R01 message per IHE PCD-01 (shared/reference/
device-protocols.md §4.2), for a hospital's interface engine or an EMR import.

Layout: ONE message with one OBR group per observation time (to the second), which both python-hl7 (``hl7.parse``)
and hl7apy (``parse_message(..., find_groups=True)``: MSH, PATIENT_RESULT{PATIENT{PID, VISIT{PV1}},
ORDER_OBSERVATION{OBR, OBSERVATION{OBX}*}*}) read as one message. Segments are separated (and ended) by ``\\r``.

- MSH: sending application ``BEDSIDE``, facility, message time = the end of the session, ``ORU^R01^ORU_R01``, a
  control id derived from the session (the same trace gives the same message), P, 2.6, NE/AL, UTF-8, and MSH-21
  ``IHE_PCD_001^IHE PCD^1.3.6.1.4.1.19376.1.6.1.1.1^ISO``.
- PID-3 the clinic's patient id (type PI, assigned by the facility); PID-5 is left empty (bedside records initials
  only, which are no name). PV1-2 ``O`` (outpatient), PV1-3 point of care ``<facility>^^<bay>``.
- Per time group: OBR (OBR-4 ``182777000^monitoring of patient^SCT``, OBR-7 the time), then per device an MDS
  containment OBX (``69965^MDC_DEV_MON_PHYSIO_MULTI_PARAM_MDS^MDC``, OBX-4 ``<m>.0.0.0``, status X, OBX-18 the
  device) and its numerics: OBX-2 NM, OBX-3 ``code^REFID^MDC``, OBX-4 ``<m>.1.1.<n>`` (m: the device's number in
  the message, n: the vital's place in the catalogue), OBX-5 the value, OBX-6 the MDC unit ``code^MDC_DIM_…^MDC``,
  OBX-11 R, OBX-14 the time ``YYYYMMDDHHMMSS+0000``, OBX-18 the device id. OBX-1 counts from 1 in each group.
- Every text taken from the session (ids, facility, bay, device) is escaped: ``\\ | ^ ~ &`` become ``\\E\\ \\F\\ \\S\\
  \\R\\ \\T\\`` and control characters (CR, LF, …) ``\\Xhh\\``, so no value can break a field or a segment.
"""

from __future__ import annotations

import hashlib
import math

from monitor.exports.csv_export import exportable, format_number
from monitor.hl7v2 import MDC_UNIT_BY_VITAL as MDC_UNIT_BY_VITAL  # re-exported: the tables moved to the ground floor
from monitor.hl7v2 import MDC_UNITS as MDC_UNITS
from monitor.hl7v2 import escape, hl7_time, mdc_unit, segment
from monitor.model import Observation
from monitor.store import SessionTrace
from monitor.vitals import VITALS

PROFILE = "IHE_PCD_001^IHE PCD^1.3.6.1.4.1.19376.1.6.1.1.1^ISO"
MDS = "69965^MDC_DEV_MON_PHYSIO_MULTI_PARAM_MDS^MDC"
MONITORING = "182777000^monitoring of patient^SCT"
_CATALOGUE_INDEX = {k: i + 1 for i, k in enumerate(VITALS)}


def to_hl7(trace: SessionTrace, *, facility: str = "CLINIC", sending_application: str = "BEDSIDE") -> str:
    """The session's numerics as one HL7 v2.6 ORU^R01 (IHE PCD-01) message, segments ended by ``\\r``."""
    s = trace.session
    control = "BS" + hashlib.sha256(f"{s.id}|{trace.end!r}".encode()).hexdigest()[:18].upper()
    app, fac = escape(sending_application), escape(facility)
    segments = [
        "MSH|^~\\&|" + "|".join([app, fac, "", "", hl7_time(trace.end), "", "ORU^R01^ORU_R01", control, "P", "2.6",
                                 "", "", "NE", "AL", "", "UNICODE UTF-8", "", "", PROFILE]),
        segment("PID", {3: f"{escape(s.patient_id)}^^^{fac}^PI"}),
        segment("PV1", {2: "O", 3: f"{fac}^^{escape(s.bay)}"}),
    ]
    groups: dict[int, list[Observation]] = {}
    devices: dict[str, int] = {}
    for o in trace.observations:
        if not exportable(o, trace):
            continue
        groups.setdefault(math.floor(o.receive_time), []).append(o)
        devices.setdefault(o.device, len(devices) + 1)
    for n, second in enumerate(sorted(groups), start=1):
        when = hl7_time(second)
        order = f"{control}-{n}^{app}"
        segments.append(segment("OBR", {1: str(n), 2: order, 3: order, 4: MONITORING, 7: when}))
        set_id = 0
        by_device: dict[str, list[Observation]] = {}
        for o in groups[second]:
            by_device.setdefault(o.device, []).append(o)
        for device, observations in by_device.items():
            m, dev = devices[device], escape(device)
            set_id += 1
            segments.append(segment("OBX", {1: str(set_id), 3: MDS, 4: f"{m}.0.0.0", 11: "X", 18: dev}))
            for o in observations:
                v = VITALS[o.vital]
                unit_code, unit_ref = mdc_unit(v.key, v.unit)
                set_id += 1
                segments.append(segment("OBX", {
                    1: str(set_id), 2: "NM", 3: f"{v.mdc_code}^{v.mdc_refid}^MDC",
                    4: f"{m}.1.1.{_CATALOGUE_INDEX[v.key]}", 5: format_number(float(o.value)),
                    6: f"{unit_code}^{unit_ref}^MDC", 11: "R", 14: when, 18: dev}))
    return "\r".join(segments) + "\r"

