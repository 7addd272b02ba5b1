"""The IHE PCD-04 alarm message (alerts/notify/pcd04.py), read back by two independent HL7 readers: python-hl7
(`hl7.parse`, tolerant, field by field) and hl7apy (structure-aware: ORU^R40 has no structure in hl7apy, so it is
parsed flat, and re-typed as ORU^R01, the same structure, to validate it against HL7 v2.6). Also the escaping of
hostile text, the HL7 text helpers of monitor/hl7v2.py and the ACK reader.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import hl7
import pytest
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message
from hypothesis import given
from hypothesis import strategies as st

from alerts.notify.pcd04 import (
    PROFILE,
    Ack,
    AlarmState,
    alarm_message,
    event_code,
    parse_ack,
)
from monitor.exports.hl7 import escape as export_escape
from monitor.hl7v2 import escape, hl7_time, segment, unescape
from monitor.model import AlarmEvent

T = 1735732805.0  # 2025-01-01 12:00:05 UTC
WHEN = "20250101120005+0000"
SPO2_LOW = AlarmEvent("BAY04", "spo2_low", "start", "physiological", "medium", T, "SpO2 LOW 86 < 90", vital="spo2",
                      value=86.0, limit=90.0, device="ox1")
HOSTILE = "a|b^c~d&e\\f\rMSH|^~\\&|EVIL\ng\x00h"


def _msg(event: AlarmEvent = SPO2_LOW, *, patient_id: str | None = "MRN123", state: AlarmState | None = None) -> str:
    return alarm_message(event, control_id="A0001", facility="ICU", patient_id=patient_id, state=state)


def _field(seg: hl7.Segment, n: int) -> str:
    """Field `n` of a python-hl7 segment as text, empty when the segment ends before it."""
    return str(seg[n]) if n < len(seg) else ""


def _facets(msg: hl7.Message) -> dict[str, hl7.Segment]:
    """The OBX segments of a PCD-04 message by facet (the last component of OBX-4), containment row as "0"."""
    out = {}
    for obx in msg.segments("OBX"):
        instance = str(obx[4])
        out["0" if instance == "1.0.0.0" else instance.rsplit(".", 1)[1]] = obx
    return out


# --- the message, read by python-hl7 --------------------------------------------------------------------------

def test_start_has_the_pcd04_header_patient_location_and_order() -> None:
    text = _msg()
    assert text.endswith("\r") and "\n" not in text
    msg = hl7.parse(text)
    assert [str(s[0]) for s in msg] == ["MSH", "PID", "PV1", "OBR", "OBX", "OBX", "OBX", "OBX", "OBX", "OBX"]
    msh = msg.segment("MSH")
    assert str(msh[3]) == "BEDSIDE" and str(msh[4]) == "ICU"
    assert str(msh[7]) == WHEN
    assert str(msh[9]) == "ORU^R40^ORU_R40"
    assert str(msh[10]) == "A0001" and str(msh[11]) == "P" and str(msh[12]) == "2.6"
    assert (str(msh[15]), str(msh[16])) == ("AL", "NE")
    assert str(msh[18]) == "UNICODE UTF-8"
    assert str(msh[21]) == PROFILE == "IHE_PCD_ACM_001^IHE PCD^1.3.6.1.4.1.19376.1.6.1.4.1^ISO"
    assert str(msg.segment("PID")[3]) == "MRN123^^^ICU^PI"
    assert str(msg.segment("PV1")[3]) == "ICU^^BAY04"
    obr = msg.segment("OBR")
    assert str(obr[2]) == "A0001^BEDSIDE"
    assert str(obr[3]) == "BAY04/spo2_low^BEDSIDE"  # the alarm: the same in every message of it
    assert str(obr[4]) == "196616^MDC_EVT_ALARM^MDC"
    assert str(obr[7]) == WHEN


def test_start_facets_identity_source_phase_state_inactivation() -> None:
    f = _facets(hl7.parse(_msg()))
    assert sorted(f) == ["0", "1", "2", "3", "4", "5"]
    assert str(f["0"][3]) == "69965^MDC_DEV_MON_PHYSIO_MULTI_PARAM_MDS^MDC" and str(f["0"][11]) == "X"
    assert str(f["0"][18]) == "ox1"
    ident = f["1"]
    assert str(ident[2]) == "ST" and str(ident[3]) == "196670^MDC_EVT_LO^MDC"
    assert str(ident[4]) == "1.3.1.150456.1"  # spo2 is the catalogue's 3rd vital
    assert str(ident[5]) == "SpO2 LOW 86 < 90"
    assert [str(r) for r in ident[8]] == ["L", "PM", "SP"]  # abnormality ~ priority ~ type: three repetitions
    assert str(ident[11]) == "R" and str(ident[14]) == WHEN
    source = f["2"]
    assert str(source[2]) == "NM" and str(source[3]) == "150456^MDC_PULS_OXIM_SAT_O2^MDC"
    assert str(source[5]) == "86" and str(source[6]) == "262688^MDC_DIM_PERCENT^MDC"
    assert str(source[7]) == ">90"  # the normal range lies above the low limit
    assert str(f["3"][3]) == "68481^MDC_ATTR_EVENT_PHASE^MDC" and str(f["3"][5]) == "start"
    assert str(f["4"][3]) == "68482^MDC_ATTR_ALARM_STATE^MDC" and str(f["4"][5]) == "active"
    assert str(f["5"][3]) == "68483^MDC_ATTR_ALARM_INACTIVATION_STATE^MDC" and str(f["5"][5]) == "enabled"
    assert [int(str(s[1])) for s in hl7.parse(_msg()).segments("OBX")] == [1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize(("phase", "by", "level", "want"), [
    ("start", None, 0, ("start", "active", "enabled")),
    ("acknowledged", "nurse.kim", 0, ("update", "active", "alert-acknowledged")),
    ("audio_paused", "nurse.kim", 0, ("update", "active", "audio-paused")),
    ("audio_resumed", None, 0, ("update", "active", "enabled")),
    ("reminder", None, 0, ("update", "active", "enabled")),
    ("escalated", None, 2, ("escalate", "active", "enabled")),
    ("latched", None, 0, ("update", "latched", "enabled")),
    ("end", None, 0, ("end", "inactive", "enabled")),
    ("end", "nurse.kim", 0, ("end", "inactive", "alert-acknowledged")),  # a latched alarm reset by a user
])
def test_phase_alarm_state_and_inactivation_state(phase: str, by: str | None, level: int,
                                                  want: tuple[str, str, str]) -> None:
    event = replace(SPO2_LOW, phase=phase, by=by, level=level, time=T + 40)  # type: ignore[arg-type]
    msg = hl7.parse(_msg(event))
    f = _facets(msg)
    assert (str(f["3"][5]), str(f["4"][5]), str(f["5"][5])) == want
    assert _field(f["3"], 16) == (by or "")  # who did it, on the phase facet
    assert str(msg.segment("MSH")[7]) == str(msg.segment("OBR")[7]) == "20250101120045+0000"
    assert str(msg.segment("OBR")[3]) == "BAY04/spo2_low^BEDSIDE"  # pairs with the start
    notes = [str(s[3]) for s in msg.segments("NTE")] if any(str(s[0]) == "NTE" for s in msg) else []
    assert notes == (["escalation level 2"] if phase == "escalated" else [])


def test_audio_pause_says_until_when_and_an_explicit_state_wins_over_the_phase() -> None:
    paused = replace(SPO2_LOW, phase="audio_paused", by="kim", until=T + 120)
    assert [str(s[3]) for s in hl7.parse(_msg(paused)).segments("NTE")] == ["audio paused until 20250101120205+0000"]
    # an escalation during an audio pause: the phase alone would say "enabled"
    escalated = replace(SPO2_LOW, phase="escalated", level=1)
    f = _facets(hl7.parse(_msg(escalated, state=AlarmState(paused=True))))
    assert (str(f["3"][5]), str(f["5"][5])) == ("escalate", "audio-paused")
    f = _facets(hl7.parse(_msg(replace(SPO2_LOW, phase="reminder"), state=AlarmState(latched=True,
                                                                                         acknowledged_by="kim"))))
    assert (str(f["4"][5]), str(f["5"][5])) == ("latched", "alert-acknowledged")


@pytest.mark.parametrize(("alarm_id", "kind", "vital", "want"), [
    ("spo2_low", "physiological", "spo2", (196670, "MDC_EVT_LO", "L")),
    ("nibp_sys_high", "physiological", "nibp_sys", (196648, "MDC_EVT_HI", "H")),
    ("nibp_sys_rise", "physiological", "nibp_sys", (196648, "MDC_EVT_HI", "H")),
    ("hr_above_baseline", "physiological", "hr", (196648, "MDC_EVT_HI", "H")),
    ("nibp_map_below_baseline", "physiological", "nibp_map", (196670, "MDC_EVT_LO", "L")),
    ("rr_low", "physiological", None, (196670, "MDC_EVT_LO", "L")),  # from the id alone
    ("something_new", "physiological", None, (196616, "MDC_EVT_ALARM", "A")),
    ("sensor_off:ox1:spo2", "technical", "spo2", (196916, "MDC_EVT_SENSOR_DISCONN", "")),
    ("sensor_off:ox1", "technical", None, (196916, "MDC_EVT_SENSOR_DISCONN", "")),
    ("device_lost:ox1", "technical", None, (196616, "MDC_EVT_ALARM", "")),
    ("not_current:spo2", "technical", "spo2", (196616, "MDC_EVT_ALARM", "")),
    ("engine_failure", "technical", None, (196616, "MDC_EVT_ALARM", "")),
])
def test_event_codes(alarm_id: str, kind: str, vital: str | None, want: tuple[int, str, str]) -> None:
    event = replace(SPO2_LOW, id=alarm_id, kind=kind, vital=vital)  # type: ignore[arg-type]
    assert event_code(event) == want
    ident = _facets(hl7.parse(_msg(event)))["1"]
    assert str(ident[3]) == f"{want[0]}^{want[1]}^MDC"
    assert str(ident[8]) == f"{want[2]}~PM~{'SP' if kind == 'physiological' else 'ST'}"


def test_technical_alarm_without_a_vital_has_no_source_facet_and_high_limit_reads_below() -> None:
    lost = AlarmEvent("BAY04", "device_lost:ox1", "start", "technical", "high", T, "DEVICE LOST (ox1)",
                      device="ox1")
    f = _facets(hl7.parse(_msg(lost)))
    assert sorted(f) == ["0", "1", "3", "4", "5"]
    assert str(f["1"][4]) == "1.0.0.196616.1" and str(f["1"][8]) == "~PH~ST"
    off = replace(lost, id="sensor_off:ox1:spo2", vital="spo2", message="SpO2 SENSOR OFF (ox1)")
    source = _facets(hl7.parse(_msg(off)))["2"]
    assert str(source[3]) == "150456^MDC_PULS_OXIM_SAT_O2^MDC" and str(source[2]) == "" and str(source[5]) == ""
    high = replace(SPO2_LOW, id="nibp_sys_high", vital="nibp_sys", value=182.5, limit=180.0, priority="high",
                   message="NIBP sys HIGH 182.5 > 180")
    source = _facets(hl7.parse(_msg(high)))["2"]
    assert (str(source[5]), str(source[6]), str(source[7])) == ("182.5", "266016^MDC_DIM_MMHG^MDC", "<180")
    rr = replace(SPO2_LOW, id="rr_low", vital="rr", value=7.0, limit=8.0, priority="low")
    ident, source = (_facets(hl7.parse(_msg(rr)))[k] for k in "12")
    assert str(source[6]) == "264928^MDC_DIM_RESP_PER_MIN^MDC" and str(ident[8]) == "L~PL~SP"


def test_without_a_patient_id_the_pid_is_empty_and_the_location_remains() -> None:
    msg = hl7.parse(_msg(patient_id=None))
    assert str(msg.segment("PID")) == "PID|"
    assert str(msg.segment("PV1")[3]) == "ICU^^BAY04"


# --- the message, read by hl7apy --------------------------------------------------------------------------------

def test_hl7apy_reads_every_phase_flat_and_validates_it_as_oru_r01(tmp_path: Path) -> None:
    for phase in ("start", "acknowledged", "escalated", "end"):
        event = replace(SPO2_LOW, phase=phase, by="kim" if phase == "acknowledged" else None, level=1)
        text = _msg(event)
        flat = parse_message(text, find_groups=False)
        assert [c.name for c in flat.children] == (["MSH", "PID", "PV1", "OBR"] + ["NTE"] * (phase == "escalated")
                                                  + ["OBX"] * 6)
        assert flat.msh.msh_9.to_er7() == "ORU^R40^ORU_R40" and flat.msh.msh_10.to_er7() == "A0001"
        assert flat.obr.obr_4.to_er7() == "196616^MDC_EVT_ALARM^MDC"
        obx = [c for c in flat.children if c.name == "OBX"]
        assert obx[1].obx_3.to_er7() == "196670^MDC_EVT_LO^MDC"
        assert obx[3].obx_5.to_er7() == {"start": "start", "acknowledged": "update", "escalated": "escalate",
                                          "end": "end"}[phase]
        # the same structure as ORU^R01: groups found, and valid HL7 v2.6 but for what bedside cannot know
        typed = parse_message(text.replace("ORU^R40^ORU_R40", "ORU^R01^ORU_R01"), find_groups=True,
                              validation_level=VALIDATION_LEVEL.STRICT)
        result = typed.oru_r01_patient_result
        assert result.oru_r01_patient.pid.pid_3.to_er7() == "MRN123^^^ICU^PI"
        assert result.oru_r01_patient.oru_r01_visit.pv1.pv1_3.to_er7() == "ICU^^BAY04"
        order = result.oru_r01_order_observation
        assert order.obr.obr_3.to_er7() == "BAY04/spo2_low^BEDSIDE"
        assert [o.obx.obx_4.to_er7() for o in order.oru_r01_observation] == [
            "1.0.0.0", *(f"1.3.1.150456.{k}" for k in range(1, 6))]
        report = tmp_path / f"{phase}.txt"
        with pytest.raises(Exception, match="PID_5"):
            typed.validate(report_file=str(report))
        lines = report.read_text().splitlines()
        # the one error: no patient name (PID-5 is required; bedside records no names); the warnings: IHE's
        # priority and type codes in OBX-8, which HL7 table 0078 does not list
        assert [x for x in lines if x.startswith("Error")] == ["Error: Missing required child PID.PID_5"]
        assert {x for x in lines if x.startswith("Warning")} == {
            "Warning: Value PM not in table HL70078 in element OBX.OBX_8",
            "Warning: Value SP not in table HL70078 in element OBX.OBX_8"}


# --- hostile text -------------------------------------------------------------------------------------------

def test_hostile_text_cannot_break_a_field_or_a_segment() -> None:
    event = replace(SPO2_LOW, bay=HOSTILE, id=HOSTILE, message=HOSTILE, device=HOSTILE, phase="acknowledged",
                    by=HOSTILE)
    text = alarm_message(event, control_id=HOSTILE, facility=HOSTILE, sending_application=HOSTILE,
                         patient_id=HOSTILE)
    assert text.count("\r") == 10 and "\n" not in text and "\x00" not in text
    msg = hl7.parse(text)
    assert [str(s[0]) for s in msg] == ["MSH", "PID", "PV1", "OBR", "OBX", "OBX", "OBX", "OBX", "OBX", "OBX"]
    msh = msg.segment("MSH")
    assert str(msh[9]) == "ORU^R40^ORU_R40" and str(msh[12]) == "2.6" and str(msh[21]) == PROFILE
    assert unescape(str(msh[10])) == HOSTILE and unescape(str(msh[3])) == HOSTILE
    f = _facets(msg)
    assert unescape(str(f["1"][5])) == HOSTILE  # OBX-5: the whole text in one field
    assert unescape(str(f["0"][18])) == HOSTILE and unescape(str(f["3"][16])) == HOSTILE
    assert str(f["3"][5]) == "update" and str(f["5"][5]) == "alert-acknowledged"
    bay = msg.segment("PV1")[3]
    assert unescape(str(bay[0][2])) == HOSTILE  # PL.3 (bed): one component
    assert unescape(str(msg.segment("OBR")[3][0][0])) == f"{HOSTILE}/{HOSTILE}"
    assert len(parse_message(text, find_groups=False).children) == 10


@given(st.text(max_size=60))
def test_any_message_text_stays_one_field(message: str) -> None:
    text = _msg(replace(SPO2_LOW, message=message))
    segments = text.split("\r")
    assert len(segments) == 11 and segments[-1] == ""
    ident = next(s for s in segments if s.startswith("OBX|2|")).split("|")
    assert len(ident) == 15 and unescape(ident[5]) == message


@given(st.text())
def test_unescape_inverts_escape(text: str) -> None:
    escaped = escape(text)
    assert not any(c in escaped for c in "|^~&\r\n")
    assert unescape(escaped) == text


def test_hl7_text_helpers_moved_to_the_ground_floor_unchanged() -> None:
    assert export_escape is escape  # monitor/exports/hl7.py uses the ground floor's
    assert escape("a|b^c~d&e\\f\r") == "a\\F\\b\\S\\c\\R\\d\\T\\e\\E\\f\\X0D\\"
    assert hl7_time(T + 0.9) == WHEN
    assert segment("PV1", {2: "O", 3: "x"}) == "PV1||O|x" and segment("PID", {}) == "PID"
    assert unescape("\\H\\bold\\N\\ \\.br\\ \\") == "bold  \\"  # formatting dropped, a lone escape kept
    assert unescape("\\XC3A9\\") == "é"


def test_required_arguments() -> None:
    with pytest.raises(ValueError, match="control id"):
        alarm_message(SPO2_LOW, control_id="", facility="ICU")
    with pytest.raises(ValueError, match="phase"):
        alarm_message(replace(SPO2_LOW, phase="exploded"), control_id="A1", facility="ICU")  # type: ignore[arg-type]


# --- the ACK --------------------------------------------------------------------------------------------------

def test_parse_ack_accept_error_and_text_from_msa_or_err() -> None:
    ack = parse_ack("MSH|^~\\&|AM|HOSP|BEDSIDE|ICU|20250101120006||ACK^R40^ACK|X1|P|2.6\rMSA|AA|A0001\r")
    assert ack == Ack("A0001", "AA", "") and ack.accepted
    ack = parse_ack("MSH|^~\\&|AM|HOSP|||20250101120006||ACK^R40^ACK|X2|P|2.6\nMSA|AE|A0002|unknown bay \\F\\ 4\n")
    assert ack == Ack("A0002", "AE", "unknown bay | 4") and not ack.accepted
    ack = parse_ack("MSH|^~\\&|AM||||||ACK|X3|P|2.6\r\nMSA|AR|A0003\r\nERR||||E||||no such patient\r\n")
    assert ack == Ack("A0003", "AR", "no such patient")
    ack = parse_ack("MSH|^~\\&|AM||||||ACK|X4|P|2.6\rMSA|CA|A0004\r")
    assert ack.accepted
    ack = parse_ack("MSH#$%*+#AM||||||ACK#X5#P#2.6\rMSA#CR#A0005#busy\r")  # the delimiters MSH declares
    assert ack == Ack("A0005", "CR", "busy")
    ack = parse_ack("MSH|^~\\&|AM|||||ACK|X6|P|2.6\rMSA|AE|A0006\rERR||||E|||db down\r")  # ERR-7
    assert ack.text == "db down"


@pytest.mark.parametrize(("text", "reason"), [
    ("", "no MSH"),
    ("hello", "no MSH"),
    ("PID|1\rMSA|AA|1\r", "no MSH"),
    ("MSH|^~\\&|AM|||||ACK|X|P|2.6\r", "no MSA"),
    ("MSH|^~\\&|AM|||||ACK|X|P|2.6\rMSA|OK|A1\r", "unknown acknowledgement code"),
    ("MSH|^~\\&|AM|||||ACK|X|P|2.6\rMSA|AA\r", "MSA-2"),
    ("MSHa^~\\&|AM\rMSA|AA|1\r", "delimiters"),
])
def test_parse_ack_says_why_it_refuses(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_ack(text)


@given(st.text(max_size=200))
def test_parse_ack_raises_nothing_but_value_error(text: str) -> None:
    for candidate in (text, "MSH" + text, "MSH|^~\\&|" + text, "MSH|^~\\&|A\rMSA|" + text):
        try:
            parse_ack(candidate)
        except ValueError as exc:
            assert str(exc)
