"""The four session exports (monitor/exports/): trace CSV, FHIR R4 Bundle, HL7 v2.6 ORU^R01 (IHE PCD-01) and the
printable HTML report, each read back by an independent reader (monitor.trace + `bedside replay`'s engine,
fhir.resources' R4B models, python-hl7 and hl7apy, ElementTree for the charts).

The session is tests/unit/test_session_stats.py's `make_trace()`: oximeter ox1 (spo2 + pr in one frame) every 5 s
at T0 + 120 + 5k except the probe-off gap 4000..4115, ECG ecg1 (hr) a quarter second after each frame, cuff nibp1
(sys/dia/map together) every 5 min at T0 + 300.5 + 300k; the trace ends at T0 + 5400. Counts below follow from that:
ox frames (5400 - 120) / 5 + 1 - 24 = 1033, hr readings 1056 (5400.25 is after the end), cuff readings 17.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import math
import re
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import hl7
import pytest
from fhir.resources.R4B.bundle import Bundle  # fhir.resources 8 defaults to R5; R4B is the R4-compatible model
from hl7apy.parser import parse_message

from alerts.profile import resolve_profile
from monitor.exports.csv_export import to_csv
from monitor.exports.fhir import MDC, to_fhir_bundle, to_fhir_json
from monitor.exports.hl7 import to_hl7
from monitor.exports.report import MAX_POINTS, REPORT_CSP, to_report_html
from monitor.model import Observation
from monitor.replay import run_trace
from monitor.session_stats import session_statistics
from monitor.store import SessionTrace
from monitor.trace import parse_trace
from monitor.vitals import VITALS
from tests.unit.test_session_stats import BAY, END, PATIENT, SBP, T0, make_trace

OX_FRAMES, HR_READINGS, CUFF = 1033, 1056, 17
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


# --- CSV ----------------------------------------------------------------------------------------------------

def test_csv_reads_back_with_the_trace_reader_value_for_value() -> None:
    trace = make_trace()
    text = to_csv(trace)
    parsed = parse_trace(text.splitlines(), "session.csv")
    assert parsed.columns == ("hr", "pr", "spo2", "nibp_sys", "nibp_dia", "nibp_map")  # catalogue order
    # one row per distinct receive time: ox frames, ECG readings and cuff readings all at different milliseconds
    assert len(parsed.rows) == OX_FRAMES + HR_READINGS + CUFF
    expected: dict[int, dict[str, float]] = {}
    for o in trace.observations:
        if o.receive_time <= END:
            expected.setdefault(round((o.receive_time - (T0 + 120)) * 1000), {})[o.vital] = o.value
    got = {round(t * 1000): row for t, row in zip(parsed.times, parsed.rows, strict=True)}
    assert got.keys() == expected.keys()
    for ms, row in got.items():
        assert {k: v for k, v in row.items() if v is not None} == expected[ms]
    assert text.splitlines()[1].startswith("2025-01-01T09:02:00.000Z,")  # ISO 8601 UTC, the first frame


def test_csv_keeps_gaps_as_empty_cells() -> None:
    text = to_csv(make_trace())
    lines = text.splitlines()
    # in the probe-off gap only the ECG wrote rows: hr 75, every other cell empty (not 0)
    assert f"{_iso(T0 + 4000.25)},75,,,,," in lines
    parsed = parse_trace(lines)
    t_gap = [(t, r) for t, r in zip(parsed.times, parsed.rows, strict=True) if 4000 - 120 <= t < 4120 - 120]
    assert len(t_gap) == 24 and all(r["spo2"] is None and r["pr"] is None and r["hr"] == 75 for _, r in t_gap)
    # the oximeter alone: no row is invented in the gap, the times jump from 3995 to 4120
    ox_only = make_trace()
    ox_only.observations = [o for o in ox_only.observations if o.device == "ox1"]
    times = parse_trace(to_csv(ox_only).splitlines()).times
    assert 4120 - 3995 in {round(b - a) for a, b in itertools.pairwise(times)}
    assert not any(3995 - 120 < t < 4120 - 120 for t in times)


def test_csv_replays_through_the_alarm_engine() -> None:
    # t counts from the first row, T0 + 120
    run = run_trace(parse_trace(to_csv(make_trace()).splitlines(), "session.csv"),
                    resolve_profile("ketamine-infusion"))
    starts = {(e.id, round(e.time, 3)) for e in run.events if e.phase == "start"}
    # baseline learnt from the first 5 min of cuff readings (120, 120): above baseline + 40 = 160 when 162 arrives
    assert ("nibp_sys_above_baseline", 2100.5 - 120) in starts
    # the probe-off gap: the last SpO2 at 3995, NOT CURRENT 30 s later (SpO2 stale_after)
    assert ("not_current:spo2", 3995 + 30 - 120) in starts


def test_csv_one_second_rows_replay_the_desaturation() -> None:
    # with readings of one second on one row SpO2 holds its value between frames: the desaturation to 88 % from
    # 2400 integrates (90 - 88) * t = 25 %s (SatSeconds 25) after 12.5 s
    text = to_csv(make_trace(), resolution=1.0)
    parsed = parse_trace(text.splitlines())
    assert len(parsed.rows) == (5400 - 120) // 5 + 1  # ECG and cuff share the oximeter's seconds
    run = run_trace(parsed, resolve_profile("ketamine-infusion"))
    spo2 = [e for e in run.events if e.id == "spo2_low" and e.phase == "start"]
    assert [round(e.time, 3) for e in spo2] == [2412.5 - 120]


def test_csv_never_writes_a_formula_or_a_non_number() -> None:
    trace = make_trace()
    trace.observations = [
        *trace.observations[:50],
        Observation(BAY, "ox1", "spo2", math.nan, None, T0 + 200.1),
        Observation(BAY, "ox1", "=HYPERLINK(\"http://x\")", 1.0, None, T0 + 200.2),
        Observation(BAY, "ox1", "pr", math.inf, None, T0 + 200.3),
    ]
    lines = to_csv(trace).splitlines()
    assert lines[0] == "t,hr,pr,spo2"
    for line in lines[1:]:
        t, *cells = line.split(",")
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", t)
        assert all(re.fullmatch(r"(\d+(\.\d+)?)?", c) for c in cells), line
    assert not any(line.startswith(_iso(T0 + 200.1)) for line in lines)  # NaN: nothing written, not an empty row


# --- FHIR ---------------------------------------------------------------------------------------------------

def _resources(bundle: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def _codes(resource: dict[str, Any]) -> set[tuple[str, str]]:
    return {(c["system"], c["code"]) for c in resource["code"]["coding"]}


def test_fhir_bundle_validates_as_r4_and_has_one_observation_per_reading() -> None:
    trace = make_trace()
    bundle = to_fhir_bundle(trace)
    model = Bundle.model_validate(bundle)
    assert model.type == "collection"
    observations = [e.resource for e in model.entry or [] if e.resource is not None
                    and e.resource.get_resource_type() == "Observation"]
    # spo2 and pr: one each per ox frame; hr; one blood-pressure Observation per cuff reading
    assert len(observations) == OX_FRAMES * 2 + HR_READINGS + CUFF
    patients = _resources(bundle, "Patient")
    assert len(patients) == 1
    assert patients[0]["identifier"] == [{"use": "usual", "value": PATIENT}]
    assert patients[0]["name"] == [{"text": "AB"}]  # initials only, as the name's text
    patient_url = next(e["fullUrl"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    assert patient_url.startswith("urn:uuid:")
    assert all(o["subject"] == {"reference": patient_url} for o in _resources(bundle, "Observation"))
    assert len({e["fullUrl"] for e in bundle["entry"]}) == len(bundle["entry"])
    assert json.loads(to_fhir_json(trace)) == bundle == to_fhir_bundle(trace)  # the same trace, the same Bundle


def test_fhir_codes_units_and_profiles() -> None:
    obs = _resources(to_fhir_bundle(make_trace()), "Observation")
    by = {(o["code"]["text"], o["effectiveDateTime"]): o for o in obs}
    hr = by[("Heart rate (ECG)", _iso(T0 + 3000.25))]
    assert _codes(hr) == {(LOINC, "8867-4"), (MDC, "147842")}
    assert hr["valueQuantity"] == {"value": 96.0, "unit": "beats/minute", "system": UCUM, "code": "/min"}
    assert hr["meta"]["profile"] == ["http://hl7.org/fhir/StructureDefinition/vitalsigns",
                                     "http://hl7.org/fhir/StructureDefinition/heartrate"]
    assert hr["category"][0]["coding"][0]["code"] == "vital-signs" and hr["device"] == {"display": "ecg1"}
    assert hr["status"] == "final"
    spo2 = by[("SpO2", _iso(T0 + 2400))]
    assert _codes(spo2) == {(LOINC, "2708-6"), (LOINC, "59408-5"), (MDC, "150456")}
    assert spo2["valueQuantity"]["value"] == 88.0 and spo2["valueQuantity"]["code"] == "%"
    assert spo2["meta"]["profile"][1].endswith("/oxygensat")
    pr = by[("Pulse rate (SpO2)", _iso(T0 + 3000))]
    assert _codes(pr) == {(LOINC, "8867-4"), (LOINC, "8889-8"), (MDC, "149530")}
    assert pr["valueQuantity"]["value"] == 95.0


def test_fhir_blood_pressure_is_one_observation_with_components() -> None:
    obs = _resources(to_fhir_bundle(make_trace()), "Observation")
    bps = [o for o in obs if (LOINC, "85354-9") in _codes(o)]
    assert len(bps) == CUFF
    peak = next(o for o in bps if o["effectiveDateTime"] == _iso(T0 + 2100.5))
    assert peak["meta"]["profile"][1].endswith("/bp") and "valueQuantity" not in peak
    comp = {c["code"]["coding"][0]["code"]: c for c in peak["component"]}
    # systolic 162, diastolic 78 + (162 - 120) / 2 = 99, mean 99 + (162 - 99) / 3 = 120
    assert comp["8480-6"]["valueQuantity"] == {"value": 162.0, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"}
    assert comp["8462-4"]["valueQuantity"]["value"] == 99.0
    assert comp["8478-0"]["valueQuantity"]["value"] == 120.0
    assert comp["8480-6"]["code"]["coding"][1] == {"system": MDC, "code": "150021",
                                                   "display": "MDC_PRESS_BLD_NONINV_SYS"}
    assert [b["component"][0]["valueQuantity"]["value"] for b in bps] == [float(s) for s in SBP]


def test_fhir_vital_without_loinc_and_bp_without_diastolic() -> None:
    trace = make_trace()
    trace.observations = [Observation(BAY, "ox1", "pi", 2.5, None, T0 + 200),
                          Observation(BAY, "nibp1", "nibp_sys", 131.0, None, T0 + 300),
                          Observation(BAY, "nibp2", "nibp_dia", 80.0, None, T0 + 300)]  # another cuff: apart
    bundle = to_fhir_bundle(trace)
    Bundle.model_validate(bundle)
    pi, bp1, bp2 = _resources(bundle, "Observation")
    assert _codes(pi) == {(MDC, "150448")} and pi["valueQuantity"]["code"] == "%"
    c1 = {c["code"]["coding"][0]["code"]: c for c in bp1["component"]}
    assert c1["8480-6"]["valueQuantity"]["value"] == 131.0
    assert "valueQuantity" not in c1["8462-4"] and c1["8462-4"]["dataAbsentReason"]["coding"][0]["code"] == "unknown"
    assert "8478-0" not in c1  # no mean measured: no mean component
    assert bp2["device"] == {"display": "nibp2"}


# --- HL7 ----------------------------------------------------------------------------------------------------

MDC_UNIT = {"hr": "264864^MDC_DIM_BEAT_PER_MIN^MDC", "pr": "264864^MDC_DIM_BEAT_PER_MIN^MDC",
            "spo2": "262688^MDC_DIM_PERCENT^MDC", "nibp_sys": "266016^MDC_DIM_MMHG^MDC",
            "nibp_dia": "266016^MDC_DIM_MMHG^MDC", "nibp_map": "266016^MDC_DIM_MMHG^MDC",
            "rr": "264928^MDC_DIM_RESP_PER_MIN^MDC", "temp": "268192^MDC_DIM_DEGC^MDC"}


def _hl7_time(t: float) -> str:
    return datetime.fromtimestamp(int(t), UTC).strftime("%Y%m%d%H%M%S") + "+0000"


def test_hl7_pcd01_message_parses_with_python_hl7_and_round_trips() -> None:
    trace = make_trace()
    text = to_hl7(trace)
    assert "\n" not in text and text.endswith("\r")
    msg = hl7.parse(text)
    msh = msg.segment("MSH")
    assert str(msh[9]) == "ORU^R01^ORU_R01" and str(msh[12]) == "2.6"
    assert str(msh[21]) == "IHE_PCD_001^IHE PCD^1.3.6.1.4.1.19376.1.6.1.1.1^ISO"
    assert str(msg.segment("PID")[3][0][0]) == PATIENT
    assert str(msg.segment("PV1")[3]) == f"CLINIC^^{BAY}"
    obr = msg.segments("OBR")
    assert len(obr) == (5400 - 120) // 5 + 1  # one group per second with readings (every 5 s)
    assert str(obr[0][4]) == "182777000^monitoring of patient^SCT" and str(obr[0][7]) == _hl7_time(T0 + 120)
    obx = msg.segments("OBX")
    mds = [s for s in obx if str(s[3]).startswith("69965^")]
    numerics = [s for s in obx if str(s[2]) == "NM"]
    assert len(numerics) == OX_FRAMES * 2 + HR_READINGS + CUFF * 3
    assert len(mds) == OX_FRAMES + HR_READINGS + CUFF  # one MDS row per device in each group
    assert all(str(s[11]) == "X" and str(s[4]).endswith(".0.0.0") for s in mds)
    got = Counter((str(s[14]), str(s[18]), str(s[3]), float(str(s[5])), str(s[6]), str(s[11])) for s in numerics)
    want = Counter((_hl7_time(o.receive_time), o.device, f"{VITALS[o.vital].mdc_code}^{VITALS[o.vital].mdc_refid}^MDC",
                    o.value, MDC_UNIT[o.vital], "R") for o in trace.observations if o.receive_time <= END)
    assert got == want


def test_hl7_groups_parse_with_hl7apy() -> None:
    trace = make_trace()
    trace.observations = [o for o in trace.observations if o.receive_time < T0 + 420]  # hl7apy is slow: 5 min
    msg = parse_message(to_hl7(trace), find_groups=True)
    assert msg.msh.msh_9.to_er7() == "ORU^R01^ORU_R01" and msg.msh.msh_12.to_er7() == "2.6"
    result = msg.oru_r01_patient_result
    assert result.oru_r01_patient.pid.pid_3.cx_1.to_er7() == PATIENT
    assert result.oru_r01_patient.oru_r01_visit.pv1.pv1_3.to_er7() == f"CLINIC^^{BAY}"
    groups = result.oru_r01_order_observation
    assert len(groups) == (415 - 120) // 5 + 1
    # the group of second 300: the oximeter frame (spo2 98, pr 71), the ECG (72) and the first cuff reading
    g = next(x for x in groups if x.obr.obr_7.to_er7() == _hl7_time(T0 + 300))
    rows = [(o.obx.obx_3.to_er7().split("^")[1], o.obx.obx_5.to_er7(), o.obx.obx_18.to_er7())
            for o in g.oru_r01_observation]
    assert rows == [("MDC_DEV_MON_PHYSIO_MULTI_PARAM_MDS", "", "ox1"), ("MDC_PULS_OXIM_SAT_O2", "98", "ox1"),
                    ("MDC_PULS_OXIM_PULS_RATE", "71", "ox1"), ("MDC_DEV_MON_PHYSIO_MULTI_PARAM_MDS", "", "ecg1"),
                    ("MDC_ECG_HEART_RATE", "72", "ecg1"), ("MDC_DEV_MON_PHYSIO_MULTI_PARAM_MDS", "", "nibp1"),
                    ("MDC_PRESS_BLD_NONINV_SYS", "120", "nibp1"), ("MDC_PRESS_BLD_NONINV_DIA", "78", "nibp1"),
                    ("MDC_PRESS_BLD_NONINV_MEAN", "92", "nibp1")]


def test_hl7_escapes_special_characters() -> None:
    trace = make_trace()
    nasty = "P|1^2~3\\4&5"
    trace.session = replace(trace.session, patient_id=nasty, bay="bay&3\r")
    trace.observations = [Observation(BAY, "ox|1", "rr", 14.0, None, T0 + 200)]
    text = to_hl7(trace)
    msg = hl7.parse(text)
    segments = text.split("\r")
    assert len(segments) == 7  # MSH PID PV1 OBR OBX OBX + the final empty: no segment was split
    assert segments[1] == "PID|||P\\F\\1\\S\\2\\R\\3\\E\\4\\T\\5^^^CLINIC^PI"
    assert segments[2] == "PV1||O|CLINIC^^bay\\T\\3\\X0D\\"
    pid = msg.segment("PID")
    assert len(pid) == 4 and msg.unescape(str(pid[3][0][0])) == nasty
    assert msg.unescape(str(msg.segment("PV1")[3][0][2])) == "bay&3\r"
    rr = msg.segments("OBX")[1]
    assert msg.unescape(str(rr[18])) == "ox|1" and str(rr[6]) == MDC_UNIT["rr"] and str(rr[5]) == "14"


# --- report -------------------------------------------------------------------------------------------------

def _report(trace: SessionTrace | None = None) -> str:
    trace = trace or make_trace(note="<img src=x onerror=alert(1)> lowered")
    return to_report_html(trace, session_statistics(trace))


def test_report_contents() -> None:
    page = _report()
    for text in (PATIENT, ">AB<", BAY, "induction 2 of 6", "@media print", "discharged", "escort not confirmed",
                 "escort waiting in the car park", "Modified Aldrete score", "<strong>9</strong> / 10",
                 "SpO2 LOW 88 &lt; 90"):
        assert text in page, text
    assert page.count("<svg") == 3
    trace = make_trace()
    rows = re.findall(r"<tr>(.*?)</tr>", page)
    for d in trace.session.doses:  # each dose of the record: its own row with action, rate and who
        assert any(f"<td>{d.action}</td>" in r and f"{d.rate_mg_per_h:g} mg/h" in r and d.who in r for r in rows)
    assert "31.75 mg" in page  # dose given (hand-derived in test_session_stats)
    assert re.search(r"Pain before \(0-10\)</dt><dd>6<", page) and re.search(r"Pain after \(0-10\)</dt><dd>2<", page)
    assert "15:00 min" in page  # back to baseline after 900.5 s


def test_report_escapes_every_text_and_is_self_contained() -> None:
    page = _report()
    assert "<script" not in page.lower() and "<img" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; calm &amp; chatty" in page
    assert "&lt;img src=x onerror=alert(1)&gt; lowered" in page
    # no tag loads anything (the only URL is the SVG namespace), the style imports nothing
    assert not re.search(r"<(link|script|iframe|object|embed|img)\b|<[^>]*\s(src|href)=", page)
    assert re.findall(r"https?://[^\s\"<]+", page) == ["http://www.w3.org/2000/svg"] * 3
    style = re.findall(r"<style>(.*?)</style>", page, flags=re.S)
    assert len(style) == 1 and "@import" not in style[0] and "url(" not in style[0]
    # REPORT_CSP allows exactly this style (by its hash) and nothing else; no style attributes need 'unsafe-inline'
    digest = base64.b64encode(hashlib.sha256(style[0].encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in REPORT_CSP and "default-src 'none'" in REPORT_CSP
    assert " style=" not in page
    for svg in re.findall(r"<svg.*?</svg>", page, flags=re.S):
        ET.fromstring(svg)  # well-formed


def _polylines(page: str, colour: str) -> list[int]:
    """The number of points of each polyline drawn in `colour`."""
    return [len(p.split()) for p in re.findall(rf'<polyline points="([^"]*)" fill="none" stroke="{colour}"', page)]


def test_report_charts_break_at_gaps_and_thin_long_lines() -> None:
    page = _report()
    assert len(_polylines(page, "#117a65")) == 2  # SpO2: broken at the probe-off gap
    assert len(_polylines(page, "#b03a2e")) == 1  # HR: no gap
    assert page.count("stroke=\"#6c3483\"") == 3 * 5  # the five dose changes marked on each of three charts
    assert 'fill="#e74c3c"' in page  # the high-priority alarm band (spo2_low)
    # a long session at 1 Hz: at most MAX_POINTS points, and the single spike survives the thinning
    trace = make_trace()
    trace.end = T0 + 20_000
    trace.observations = [Observation(BAY, "ecg1", "hr", 150.0 if s == 12_345 else 70.0 + (s % 7), None, T0 + s)
                          for s in range(20_000)]
    page = _report(trace)
    points = _polylines(page, "#b03a2e")
    assert points and sum(points) <= MAX_POINTS
    ys = [float(p.split(",")[1]) for line in re.findall(r'<polyline points="([^"]*)" fill="none" stroke="#b03a2e"',
                                                       page) for p in line.split()]
    # the y axis runs from 40 to 150 + 5 over the 192 px between the margins (12 top, 26 bottom): 150 at this y
    assert min(ys) == pytest.approx(12 + (155 - 150) / (155 - 40) * 192, abs=0.05)


def test_report_of_an_open_session_without_readings() -> None:
    trace = make_trace()
    trace.session = replace(trace.session, phase="recovery", discharge=None, aldrete=None)
    trace.observations = []
    page = _report(trace)
    assert "No Aldrete score entered" in page and "Not discharged" in page
    assert "no readings: HR, PR" in page
    assert "<polyline" not in page


def test_every_format_exports_a_session_ended_before_the_infusion() -> None:
    from tests.unit.test_session_stats import ended_before_the_infusion

    trace = ended_before_the_infusion()
    page = to_report_html(trace, session_statistics(trace))
    assert "patient declined" in page
    assert Bundle.model_validate_json(to_fhir_json(trace)).entry
    assert parse_message(to_hl7(trace).replace("\n", "\r"), find_groups=False).msh
    assert to_csv(trace).count("\n") > 1
