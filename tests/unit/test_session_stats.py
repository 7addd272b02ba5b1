"""Session statistics (monitor/session_stats.py) on a realistic recorded ketamine session built by hand.

`make_trace()` (also used by tests/unit/test_session_exports.py) builds the session through the real steps of
monitor.infusion and places every reading and alarm at a known time, so each expected number below is derived by
hand from the placed data (the derivation is in the comments), never copied from a run of the code.

Timeline (seconds after T0 = 2025-01-01 09:00:00 UTC): admitted 0, baseline 300, infusion start 900 at 60 mg/h,
rate 45 mg/h at 1500, pause 2100, resume 2160 (45 mg/h), stop and recovery 3300, Aldrete 5100, discharge 5400
(= the end of the trace).
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from monitor.infusion import Session, admit
from monitor.model import AlarmEvent, Annotation, Observation
from monitor.session_stats import alarm_periods, session_statistics
from monitor.store import SessionTrace

T0 = 1_735_722_000.0  # 2025-01-01T09:00:00Z
BAY = "bay-3"
PATIENT = "MRN-004711"
STOP = T0 + 3300
END = T0 + 5400

# NIBP cuff every 5 min at T0 + 300.5 + 300 k (systolic; the peak 162 at 2100.5 is during the infusion)
SBP = [120, 120, 128, 136, 142, 150, 162, 152, 148, 146, 150, 140, 146, 138, 130, 125, 122]
OX_GAP = (4000, 4120)  # the oximeter sent nothing then (probe off): no spo2/pr readings, never 0


def hr_at(s: float) -> float:
    """ECG heart rate at s seconds after T0: 72 before the infusion, 80 during it with one reading of 96 at
    3000.25, 90 for 10 min after the stop (above 72 * 1.2 = 86.4), then 75."""
    if s < 900:
        return 72.0
    if s < 3300:
        return 96.0 if s == 3000.25 else 80.0
    return 90.0 if s < 3900 else 75.0


def spo2_at(s: float) -> float:
    if s < 900:
        return 98.0
    if 2400 <= s < 2460:
        return 88.0
    return 97.0 if s < 3300 else 96.0


def make_session(note: str = "rate lowered: patient dizzy") -> Session:
    s = admit("sess-2025-0001", BAY, T0, "nurse.jo", patient_id=PATIENT, initials="ab", weight_kg=80.0,
              dose_mg_per_kg=0.5, planned_minutes=40, series_kind="induction", series_index=2, series_total=6)
    s = s.with_checklist(fasting_hours=6, escort_name="C. Example", escort_phone="+44 7700 900123", consent=True)
    s = s.start_baseline(T0 + 300)
    s = s.with_baseline({"hr": 72.0, "pr": 71.0, "spo2": 98.0, "nibp_sys": 120.0, "nibp_dia": 78.0,
                         "nibp_map": 92.0})
    s = s.with_pain(before=6)
    s = s.dose("start", T0 + 900, "dr.lee")  # 0.5 mg/kg * 80 kg = 40 mg over 40 min: 60 mg/h
    s = s.dose("rate", T0 + 1500, "dr.lee", rate_mg_per_h=45.0, note=note)
    s = s.dose("pause", T0 + 2100, "nurse.jo", note="desaturation")
    s = s.dose("resume", T0 + 2160, "nurse.jo")
    s = s.start_recovery(STOP, "nurse.jo")
    s = s.with_aldrete({"activity": 1, "respiration": 2, "circulation": 2, "consciousness": 2, "spo2": 2},
                       T0 + 5100, "nurse.jo")
    s = s.with_pain(after=2)
    return s.discharged(END, "nurse.jo", ["escort not confirmed"], reason="escort waiting in the car park")


def observations(*, with_hr: bool = True) -> list[Observation]:
    obs: list[Observation] = []
    for k in range((5400 - 120) // 5 + 1):
        s = 120 + 5 * k  # the oximeter: every 5 s, spo2 and pr in one frame (same receive time)
        if not OX_GAP[0] <= s < OX_GAP[1]:
            obs.append(Observation(BAY, "ox1", "spo2", spo2_at(s), None, T0 + s))
            obs.append(Observation(BAY, "ox1", "pr", hr_at(s + 0.25) - 1, None, T0 + s))
        if with_hr:  # the ECG, a quarter second later
            obs.append(Observation(BAY, "ecg1", "hr", hr_at(s + 0.25), None, T0 + s + 0.25))
    for i, sys in enumerate(SBP):
        t = T0 + 300.5 + 300 * i
        dia = 78.0 + (sys - 120) / 2
        obs += [Observation(BAY, "nibp1", "nibp_sys", float(sys), t - 20, t),
                Observation(BAY, "nibp1", "nibp_dia", dia, t - 20, t),
                Observation(BAY, "nibp1", "nibp_map", round(dia + (sys - dia) / 3, 1), t - 20, t)]
    obs.sort(key=lambda o: o.receive_time)
    return obs


def alarms() -> list[AlarmEvent]:
    def ev(alarm_id: str, phase: str, s: float, kind: str = "physiological", priority: str = "medium",
           vital: str | None = None, message: str = "", by: str | None = None) -> AlarmEvent:
        return AlarmEvent(BAY, alarm_id, phase, kind, priority, T0 + s, message, vital, by=by)  # type: ignore[arg-type]

    out = [
        # started before admission (its start is not in the trace): counts from the trace's start, 125 s
        ev("spo2_low", "end", 125, priority="high", vital="spo2", message="SpO2 LOW"),
        # two overlapping alarms of nibp_sys: 1800.5..2400.5 and 2100.5..2400.5 -> 600 s once
        ev("nibp_sys_rise", "start", 1800.5, vital="nibp_sys", message="NIBP sys RISE +30 in 10 min"),
        ev("nibp_sys_above_baseline", "start", 2100.5, vital="nibp_sys", message="NIBP sys 162 > baseline + 40"),
        ev("nibp_sys_above_baseline", "end", 2400.5, vital="nibp_sys"),
        ev("nibp_sys_rise", "end", 2400.5, vital="nibp_sys"),
        # high priority, latching: the condition ends at "latched" (2470), the alarm when acknowledged (2480)
        ev("spo2_low", "start", 2415, priority="high", vital="spo2", message="SpO2 LOW 88 < 90"),
        ev("spo2_low", "latched", 2470, priority="high", vital="spo2"),
        ev("spo2_low", "acknowledged", 2480, priority="high", vital="spo2", by="nurse.jo"),
        ev("spo2_low", "end", 2480, priority="high", vital="spo2"),
        ev("sensor_off:ox1", "start", 4000, kind="technical", message="SpO2 SENSOR OFF"),
        ev("sensor_off:ox1", "end", 4120, kind="technical"),
        ev("signal_quality:ox1:spo2", "start", 5350, kind="technical", priority="low", vital="spo2",
           message="SpO2 LOW SIGNAL QUALITY"),
        # never ends: runs to the end of the trace, 10 s
        ev("pr_low", "start", 5390, vital="pr", message="PR LOW 44 < 45"),
    ]
    return sorted(out, key=lambda e: e.time)


def make_trace(note: str = "rate lowered: patient dizzy", *, with_hr: bool = True) -> SessionTrace:
    return SessionTrace(
        session=make_session(note), start=T0, end=END, observations=observations(with_hr=with_hr), alarms=alarms(),
        annotations=[Annotation(1, BAY, T0 + 905, "nurse.jo", "infusion_start", "started on time"),
                     Annotation(2, BAY, T0 + 3100, "nurse.jo", "note", "<script>alert('x')</script> calm & chatty")],
    )


# --- the tests ----------------------------------------------------------------------------------------------

def test_vital_statistics_and_missing_vitals() -> None:
    st = session_statistics(make_trace())
    sbp = st["vitals"]["nibp_sys"]
    # 17 cuff readings; sorted: 120 120 122 125 128 130 136 138 [140] 142 146 146 148 150 150 152 162
    assert sbp == {"unit": "mm[Hg]", "count": 17, "min": 120.0, "max": 162.0, "median": 140.0}
    hr = st["vitals"]["hr"]
    assert hr["count"] == 1056  # at 120.25 + 5 k up to 5395.25 (5400.25 is after the end)
    assert (hr["min"], hr["max"]) == (72.0, 96.0)
    spo2 = st["vitals"]["spo2"]
    # every 5 s from 120 to 5400: (5400 - 120) / 5 + 1 = 1057, less 24 frames in the probe-off gap 4000..4115
    assert spo2["count"] == 1057 - 24
    assert (spo2["min"], spo2["max"]) == (88.0, 98.0)
    # no respiratory rate or EtCO2 were measured: missing, never 0
    for k in ("rr", "etco2"):
        assert st["vitals"][k] == {"unit": "/min" if k == "rr" else "mm[Hg]", "count": 0, "min": None, "max": None,
                                   "median": None}
        assert st["time_outside_limits_s"][k] is None


def test_time_outside_limits() -> None:
    out = session_statistics(make_trace())["time_outside_limits_s"]
    assert out["nibp_sys"] == pytest.approx(600.0)  # union of 1800.5..2400.5 and 2100.5..2400.5
    assert out["spo2"] == pytest.approx(125.0 + 55.0)  # 0..125 (started before) + 2415..2470 (to "latched")
    assert out["pr"] == pytest.approx(10.0)  # 5390 .. the end 5400
    assert out["hr"] == 0.0 and out["nibp_dia"] == 0.0  # readings but no alarm


def test_time_outside_limits_is_clipped_to_the_trace() -> None:
    trace = make_trace()
    trace.end = T0 + 2200.5  # the nibp_sys alarms now run past the end: 1800.5 .. 2200.5
    assert session_statistics(trace)["time_outside_limits_s"]["nibp_sys"] == pytest.approx(400.0)


def test_alarm_counts_by_priority() -> None:
    a = session_statistics(make_trace())["alarms"]
    assert a["physiological"] == {"high": 1, "medium": 3, "low": 0, "total": 4}  # the "end"-only spo2 not counted
    assert a["technical"] == {"high": 0, "medium": 1, "low": 1, "total": 2}
    assert a["total"] == {"high": 1, "medium": 4, "low": 1, "total": 6}


def test_peaks_during_the_infusion_against_baseline() -> None:
    p = session_statistics(make_trace())["peaks"]
    assert p["window"] == [T0 + 900, STOP]
    assert p["sbp"] == {"vital": "nibp_sys", "value": 162.0, "time": T0 + 2100.5, "baseline": 120.0,
                        "change": 42.0, "change_pct": 35.0}
    assert p["heart_rate"]["vital"] == "hr"
    assert p["heart_rate"]["value"] == 96.0 and p["heart_rate"]["time"] == T0 + 3000.25
    assert p["heart_rate"]["change"] == 24.0 and p["heart_rate"]["change_pct"] == pytest.approx(33.3)


def test_peak_heart_rate_falls_back_to_pulse_rate() -> None:
    p = session_statistics(make_trace(with_hr=False))["peaks"]["heart_rate"]
    # pr = hr - 1: the peak 95 at 3000 (the oximeter frame whose hr_at(s + 0.25) is 96); pr baseline 71
    assert (p["vital"], p["value"], p["time"], p["baseline"], p["change"]) == ("pr", 95.0, T0 + 3000, 71.0, 24.0)


def test_back_to_baseline() -> None:
    b = session_statistics(make_trace())["back_to_baseline"]
    # SBP after the stop: 150 (out: > 144), 140 in, 146 out at 3900.5, then 138 in from 4200.5 on -> 900.5 s;
    # HR 90 (> 86.4) until 3895.25, 75 from 3900.25 on -> 600.25 s; both: the later one
    assert b["by_vital"] == {"nibp_sys": 900.5, "hr": 600.25}
    assert b["seconds"] == 900.5


def test_back_to_baseline_none_without_baseline_or_when_never() -> None:
    trace = make_trace()
    trace.session = replace(trace.session, baseline={})
    assert session_statistics(trace)["back_to_baseline"]["seconds"] is None
    never = make_trace()
    never.end = T0 + 3800  # SBP is back (140 at 3600.5) but HR is still 90 at the end: not back
    assert session_statistics(never)["back_to_baseline"]["seconds"] is None


def test_infusion_duration_and_dose() -> None:
    inf = session_statistics(make_trace())["infusion"]
    assert inf["duration_s"] == 2400.0  # 900 .. 3300
    assert inf["running_s"] == 2340.0  # less the 60 s pause
    # 60 mg/h * 600 s + 45 mg/h * 600 s + 45 mg/h * 1140 s = 10 + 7.5 + 14.25 mg
    assert inf["dose_given_mg"] == pytest.approx(31.75)
    assert inf["planned_mg"] == 40.0
    assert (inf["rate_changes"], inf["pauses"]) == (1, 1)


def test_statistics_are_json_ready() -> None:
    import json

    st = session_statistics(make_trace())
    assert json.loads(json.dumps(st, allow_nan=False)) == st


def test_alarm_periods_pairing() -> None:
    periods = {(p.id, p.start): p for p in alarm_periods(make_trace())}
    before = periods[("spo2_low", T0)]
    assert before.started_before and before.end == T0 + 125
    latched = periods[("spo2_low", T0 + 2415)]
    assert (latched.condition_end, latched.end, latched.acknowledged_by) == (T0 + 2470, T0 + 2480, ("nurse.jo",))
    assert periods[("pr_low", T0 + 5390)].end is None


def ended_before_the_infusion() -> SessionTrace:
    """A patient who declined after the baseline: no dose event at all."""
    s = admit("sess-2025-0002", BAY, T0, "nurse.jo", patient_id=PATIENT, initials="ab", weight_kg=80.0,
              dose_mg_per_kg=0.5, planned_minutes=40, series_kind="booster")
    s = s.start_baseline(T0 + 300).ended(T0 + 900, "nurse.jo", "patient declined")
    obs = [o for o in observations() if o.receive_time <= T0 + 900]
    return SessionTrace(session=s, start=T0, end=T0 + 900, observations=obs, alarms=[], annotations=[])


def test_a_session_ended_before_the_infusion_has_statistics() -> None:
    st = session_statistics(ended_before_the_infusion())
    inf = st["infusion"]
    assert (inf["started"], inf["duration_s"], inf["running_s"], inf["dose_given_mg"]) == (None, None, 0.0, 0.0)
    assert st["vitals"]["spo2"]["max"] == 98.0
