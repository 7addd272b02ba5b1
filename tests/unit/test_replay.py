"""`bedside replay`: a trace CSV run through the alarm engine in virtual time (monitor/replay.py, monitor/cli.py).

Every expected time below is derived by hand from the trace rows and the profile's rules (limit, delay,
hysteresis, SatSeconds), as each comment says; none is copied from a run of the code. Conventions used throughout:
a row's value holds until the next row, so with one row a minute an out-of-range value lasts 60 s; a delayed start
is stamped at (first outside row) + delay; an end at the tick of the first row that clears the limit.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from alerts.profile import resolve_profile
from monitor.cli import main
from monitor.replay import compare, run_trace, summarise
from monitor.trace import parse_trace

DATA = Path(__file__).parents[2].parent / "shared" / "data"
MIMIC = DATA / "mimic3wdb-s00001-numerics.csv"

# "Bare thresholds": the ketamine-infusion limits and priorities (baseline and rise rules too), with none of the
# smart-alarm features: no delays, no clear hysteresis, SatSeconds off, no desat floor.
BARE = """\
name = "bare"
[vitals.spo2]
low = 90
priority = "high"
[vitals.pr]
low = 45
high = 130
[vitals.hr]
low = 45
high = 130
[vitals.nibp_sys]
low = 90
high = 180
priority = "high"
above_baseline = 40
rise = 30
[vitals.nibp_dia]
low = 40
high = 110
above_baseline = 30
[vitals.rr]
low = 8
high = 30
[vitals.etco2]
low = 15
high = 50
"""


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["replay", *args])
    out, err = capsys.readouterr()
    return code, out, err


def _json_lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines()]


def _intervals(events: list[dict[str, Any]], kind: str = "physiological") -> dict[str, list[tuple[float, float]]]:
    """alarm id -> [(start, end or latched)] from the JSON event lines."""
    started: dict[str, float] = {}
    out: dict[str, list[tuple[float, float]]] = {}
    for e in events:
        if e["kind"] != kind:
            continue
        if e["phase"] == "start":
            started[e["id"]] = e["time"]
        elif e["phase"] in ("end", "latched"):
            out.setdefault(e["id"], []).append((started.pop(e["id"]), e["time"]))
    assert not started, f"still active at the end: {started}"
    return out


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- (1) the real MIMIC trace, default profile ketamine-infusion ------------------------------------------------

def test_mimic_trace_json_events_match_the_rules_applied_by_hand(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, str(MIMIC), "--json")
    assert code == 0, err
    lines = _json_lines(out)
    events, summary = lines[:-1], lines[-1]["summary"]
    assert all(set(e) == {"time", "phase", "id", "vital", "priority", "kind", "value", "limit", "message"}
               for e in events)
    assert [e["time"] for e in events] == sorted(e["time"] for e in events)
    alarms = _intervals(events)

    # NIBP (no delays apply to NIBP; a value holds until the next cuff reading). Readings taken from the CSV:
    # the first is t=840 120/72, and the baseline is the median of the first 300 s of readings from it: that is
    # that one reading, so SBP baseline 120 (limit 120 + 40 = 160) and DBP baseline 72 (limit 72 + 30 = 102).
    # - SBP > 160: only t=10320 (167, ends at the next reading t=10500, 143) and t=62580 (164, ends at t=62760, 136);
    #   SBP ranges 108..167 so never < 90 or > 180; DBP ranges 51..88, so never < 40, > 102 or > 110.
    # - rise >= 30 above the lowest reading of the last 600 s: at t=10320 the window [9720, 10320) holds 9720 (135)
    #   and 10020 (123): 167 - 123 = 44. It ends at t=10500: 143 - 123 = 20 < 30. No other reading rises 30 within
    #   600 s (the next largest: t=61980 150 vs t=61380 123, +27; t=66780 146 vs 66180 124, +22).
    assert alarms["nibp_sys_above_baseline"] == [(10320, 10500), (62580, 62760)]
    assert alarms["nibp_sys_rise"] == [(10320, 10500)]
    starts = {e["id"]: e for e in events if e["phase"] == "start"}
    assert starts["nibp_sys_above_baseline"]["limit"] == 160
    assert starts["nibp_sys_rise"]["value"] == 167

    # RR in the first two hours (low 8, strict; delay 15 s; ends at >= 8 + 1 = 9). Rows with rr < 8 before t=7200:
    # 4320 (7.5): outside, held 60 s > 15 s -> start 4335; then 4380 8.6 (inside but < 9: stays), 4440 7, 4500 6,
    #   4560 7.4, 4620 7.3, 4680 9.5 -> end 4680.
    # 4860 (7.5) -> start 4875; 4920 9.2 -> end 4920.
    # 5400 (7.2) -> start 5415; 5460 8.6 stays; 5520 11.6 -> end 5520.
    # 6300 (7.7) -> start 6315; 6360 8.7 stays; 6420 9.7 -> end 6420.
    # 6840 (7.9) -> start 6855; 6900 9.4 -> end 6900.
    # (4980 8.2 and 5040 8.6 are not below 8: no start.)
    assert [iv for iv in alarms["rr_low"] if iv[0] < 7200] == [
        (4335, 4680), (4875, 4920), (5415, 5520), (6315, 6420), (6855, 6900)]

    # HR: one artefact, t=83340 hr 11.5 (< 45), in a 14-minute gap (83280..84060 have no hr). It is held 60 s,
    # longer than the 10 s delay -> start 83350; the empty cells after it hold the alarm (no value neither starts
    # nor ends one); the next hr, 53.2 at t=84120, is >= 45 + 3 -> end 84120. HR never exceeds 99.8 (< 130).
    assert alarms["hr_low"] == [(83350, 84120)]

    # SpO2 never goes below 91.9 and PR stays within 47.4..93.7, so no SpO2 or PR alarm; RR never exceeds 23.6.
    assert set(alarms) == {"nibp_sys_above_baseline", "nibp_sys_rise", "rr_low", "hr_low"}

    # time in alarm: NIBP sys 180 + 180 s (the rise overlaps the first above-baseline alarm: counted once),
    # HR 84120 - 83350 = 770 s. Duration: last row t=116100 minus the first, t=0.
    assert summary["duration_s"] == 116100
    assert summary["time_in_alarm_s"]["nibp_sys"] == 360
    assert summary["time_in_alarm_s"]["hr"] == 770
    assert summary["alarms_by_priority"]["high"] == 0  # no SpO2 and no absolute SBP alarm: nothing high
    assert summary["latched"] == 0
    assert summary["audible_alarms"] == summary["alarms"] == len([e for e in events if e["phase"] == "start"])

    # empty cells are no value, never 0: SpO2 is first read at t=840 (96) and the next row has none: at t=900,
    # 60 s >= 30 s after the reading, SpO2 is NOT CURRENT, until the next spo2 value at t=3120 (CSV line 54).
    assert all(e["value"] != 0 for e in events)
    first = [(e["phase"], e["time"]) for e in events if e["id"] == "not_current:spo2"][:2]
    assert first == [("start", 900), ("end", 3120)]
    # NIBP: read at t=840, the next cuff reading at t=3900: NOT CURRENT at the first row >= 840 + 900 s (t=1740)
    nibp = [(e["phase"], e["time"]) for e in events if e["id"] == "not_current:nibp_sys"][:2]
    assert nibp == [("start", 1740), ("end", 3900)]


# --- (2) --compare against bare thresholds ------------------------------------------------------------------------

def test_compare_shows_fewer_alarms_for_ketamine_infusion_than_bare_thresholds(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bare = _write(tmp_path, "bare.toml", BARE)
    code, out, err = _run(capsys, str(MIMIC), "--compare", "ketamine-infusion", str(bare), "--json")
    assert code == 0, err
    lines = _json_lines(out)
    a, b = lines[0]["summary"], lines[1]["summary"]
    assert (a["profile"], b["profile"]) == ("ketamine-infusion", "bare")
    # By hand: on this trace the RR hysteresis is what differs. With bare thresholds (ends at >= 8) the episode
    # 4320 7.5 / 4380 8.6 / 4440 7 ... is two alarms (4320-4380, 4440-4680); under ketamine-infusion 8.6 is inside
    # the 1-point hysteresis band, so it is one. It is the only place in the trace where a value in [8, 9) lies
    # between two values < 8 (awk over the rr column), so bare has exactly one more physiological alarm. The delays
    # and SatSeconds hide nothing here: a row's value lasts 60 s, longer than any delay, and SpO2 is never < 90.
    assert a["alarms"] < b["alarms"]
    assert b["alarms_by_kind"]["physiological"] - a["alarms_by_kind"]["physiological"] == 1
    assert a["alarms_by_kind"]["technical"] == b["alarms_by_kind"]["technical"]  # same data, same staleness rules
    # bare has no HR delay: its HR alarm starts with the artefact row itself, 84120 - 83340 = 780 s (ketamine: 770)
    assert b["time_in_alarm_s"]["hr"] == 780
    # every alarm of one side overlaps one of the same id on the other (the 15 s delay falls within the row)
    assert lines[-1] == {"compare": {"a": "ketamine-infusion", "b": "bare", "only_a": 0, "only_b": 0}}

    # (the readable form of --compare: test_compare_lists_the_dip_satseconds_does_not_alarm, on a short trace)


def test_compare_lists_the_dip_satseconds_does_not_alarm(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # 1-s rows: SpO2 88 for 5 s (t=10..14), else 97. ketamine-infusion: SatSeconds index 2 points x 5 s = 10 < 25,
    # and 88 is above the floor 80: no alarm. Bare thresholds: 88 < 90 at once -> start 10; 97 at t=15 -> end 15.
    rows = ["t,spo2"] + [f"{t},{88 if 10 <= t < 15 else 97}" for t in range(30)]
    trace = _write(tmp_path, "dip.csv", "\n".join(rows) + "\n")
    bare = _write(tmp_path, "bare.toml", BARE)
    code, out, _ = _run(capsys, str(trace), "--compare", "ketamine-infusion", str(bare), "--json")
    assert code == 0
    unmatched = [d["unmatched"] for d in _json_lines(out) if "unmatched" in d]
    assert [(u["raised_by"], u["id"], u["start"], u["end"]) for u in unmatched] == [("bare", "spo2_low", 10, 15)]
    assert unmatched[0]["message"] == "SpO2 LOW 88 < 90"
    code, text, _ = _run(capsys, str(trace), "--compare", "ketamine-infusion", str(bare))
    assert "raised by bare but not by ketamine-infusion: 1" in text
    assert "0:00:10 - 0:00:15" in text


def test_a_profile_from_profiles_dir_is_found_by_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # the clinic's own profile "strict" (SpO2 low 95, undelayed): 94 at t=2 starts at once, 97 at t=4 ends it
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "strict.toml").write_text('[vitals.spo2]\nlow = 95\npriority = "medium"\n')
    trace = _write(tmp_path, "t.csv", "t,spo2\n0,97\n2,94\n4,97\n6,97\n")
    code, out, _ = _run(capsys, str(trace), "--profile", "strict", "--profiles-dir", str(tmp_path / "profiles"),
                        "--json")
    assert code == 0
    assert [(d["phase"], d["id"], d["time"]) for d in _json_lines(out) if "phase" in d] == [
        ("start", "spo2_low", 2), ("end", "spo2_low", 4)]
    code, _, err = _run(capsys, str(trace), "--profile", "strict")  # without the folder the name is unknown
    assert code == 2 and "unknown alarm profile 'strict'" in err


# --- (3) small synthetic traces -------------------------------------------------------------------------------------

def test_a_value_crossing_a_limit_starts_after_the_delay_and_ends_when_back(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # 1-s rows, HR 140 at t=10..29, 120 from t=30. ketamine-infusion HR high 130, delay 10 s, hysteresis 3:
    # outside from t=10 -> start at 10 + 10 = 20; 120 <= 127 at t=30 -> end 30. A 5-s excursion (t=40..44, 140)
    # is shorter than the delay: no alarm.
    rows = ["t,hr"] + [f"{t},{140 if 10 <= t < 30 or 40 <= t < 45 else 120}" for t in range(60)]
    trace = _write(tmp_path, "hr.csv", "\n".join(rows) + "\n")
    code, out, _ = _run(capsys, str(trace), "--json")
    assert code == 0
    events = _json_lines(out)[:-1]
    assert [(e["id"], e["phase"], e["time"]) for e in events] == [("hr_high", "start", 20), ("hr_high", "end", 30)]
    assert (events[0]["value"], events[0]["limit"], events[0]["priority"]) == (140, 130, "medium")
    # the same trace with bare thresholds (no delay): starts as the value arrives, and the short excursion alarms
    bare = _write(tmp_path, "bare.toml", BARE)
    code, out, _ = _run(capsys, str(trace), "--profile", str(bare), "--json")
    assert [(e["phase"], e["time"]) for e in _json_lines(out)[:-1]] == [
        ("start", 10), ("end", 30), ("start", 40), ("end", 45)]


def test_iso_times_and_the_readable_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # t as ISO 8601: seconds from the first row. RR 5 (< 8) from 00:01:00, held 60 s, delay 15 -> start 75 s;
    # RR 12 at 00:02:00 -> end 120 s.
    trace = _write(tmp_path, "iso.csv", "t,rr\n2024-05-01T10:00:00Z,12\n2024-05-01T10:01:00Z,5\n"
                                        "2024-05-01T10:02:00Z,12\n")
    code, out, _ = _run(capsys, str(trace))
    assert code == 0
    lines = out.splitlines()
    assert "0:01:15" in lines[0] and "START" in lines[0] and "rr_low" in lines[0] and "< 8" in lines[0]
    assert "0:02:00" in lines[1] and "END" in lines[1] and "(now 12)" in lines[1]
    assert "  duration: 0:02:00 (120 s)" in lines


def test_a_delayed_start_carries_the_value_that_crossed_the_limit(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    # RR 12, then 5 at t=60 (held 60 s: start at 60 + 15 = 75), then 12 at t=120 (end). The start is decided over
    # 60..120 with the value 5, so it says 5: "RR LOW 5 < 8", not the 12 that arrived with the tick at 120.
    trace = _write(tmp_path, "rr.csv", "t,rr\n0,12\n60,5\n120,12\n")
    code, out, _ = _run(capsys, str(trace), "--json")
    assert code == 0
    start, end = _json_lines(out)[:-1]
    assert (start["phase"], start["time"], start["value"], start["limit"]) == ("start", 75, 5, 8)
    assert start["message"] == "RR LOW 5 < 8"
    assert (end["phase"], end["time"], end["value"]) == ("end", 120, 12)


def test_empty_cells_are_no_value_not_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # SpO2 97 at t=0, empty at t=10..50, 97 at t=60 (rows every 10 s). A 0 would be at the desat floor (<= 80) and
    # alarm at once; no value starts nothing. The reading at t=0 is stale from the first row >= 30 s later (t=30):
    # SpO2 NOT CURRENT (technical, medium) from 30 until the value at 60.
    rows = ["t,spo2,hr", "0,97,70"] + [f"{t},,70" for t in range(10, 60, 10)] + ["60,97,70"]
    trace = _write(tmp_path, "gap.csv", "\n".join(rows) + "\n")
    code, out, _ = _run(capsys, str(trace), "--json")
    assert code == 0
    events = _json_lines(out)[:-1]
    assert [(e["id"], e["phase"], e["time"], e["kind"]) for e in events] == [
        ("not_current:spo2", "start", 30, "technical"), ("not_current:spo2", "end", 60, "technical")]
    assert all(e["value"] is None for e in events)


def test_an_empty_cell_ends_the_held_value(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # rows every 5 s: HR 140 (> 130) at t=0, then empty. The value holds until the next row only: outside for 5 s,
    # less than the 10 s delay, so no HR alarm (held until it went stale at 30 s, it would start at t=10).
    # NOT CURRENT from the first row >= 30 s after the reading (t=30).
    rows = ["t,hr", "0,140"] + [f"{t}," for t in range(5, 45, 5)]
    trace = _write(tmp_path, "held.csv", "\n".join(rows) + "\n")
    code, out, _ = _run(capsys, str(trace), "--json")
    assert code == 0
    assert [(e["id"], e["phase"], e["time"]) for e in _json_lines(out)[:-1]] == [("not_current:hr", "start", 30)]


@pytest.mark.parametrize("content, expected", [
    ("name = 'x'\n[vitals.spo2]\nlow = 'ninety'\n", "vitals.spo2.low"),
    ("name = 'x'\n[vitals.spo2\n", "not valid TOML"),
    ("name = 'x'\n[vitals.hr]\nlow = 100\nhigh = 50\n", "must be below high"),
])
def test_a_bad_profile_file_exits_2_naming_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                    content: str, expected: str) -> None:
    profile = _write(tmp_path, "bad.toml", content)
    trace = _write(tmp_path, "t.csv", "t,hr\n0,70\n")
    code, out, err = _run(capsys, str(trace), "--profile", str(profile))
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("bedside replay: ")
    assert str(profile) in err and expected in err


def test_unknown_profile_missing_file_and_bad_trace_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = _write(tmp_path, "t.csv", "t,hr\n0,70\n")
    code, _, err = _run(capsys, str(trace), "--profile", "no-such-profile")
    assert code == 2 and "unknown alarm profile 'no-such-profile'" in err and err.count("\n") == 1
    code, _, err = _run(capsys, str(trace), "--profile", str(tmp_path / "missing.toml"))
    assert code == 2 and f"{tmp_path / 'missing.toml'}: cannot read" in err
    code, _, err = _run(capsys, str(trace), "--compare", "ketamine-infusion", "nope")
    assert code == 2 and "'nope'" in err
    bad = _write(tmp_path, "bad.csv", "t,hr\n0,70\n60,seventy\n")
    code, _, err = _run(capsys, str(bad))
    assert code == 2 and f"{bad}: line 3: hr: 'seventy' is not a number" in err and err.count("\n") == 1
    code, _, err = _run(capsys, str(tmp_path / "none.csv"))
    assert code == 2 and "none.csv: cannot read" in err


# --- (4) summary numbers on a synthetic trace -----------------------------------------------------------------------

HOUR = """\
One hour, a row a minute (t = 0 .. 3600), RR 12 and SpO2 97 except:
- RR 6 at t=600 and 660, 12 at 720: ketamine-infusion RR low 8, delay 15 -> start 615, end 720 (105 s).
- RR 7 at t=1800, 8.5 at 1860 (inside, but below 8 + 1: stays), 12 at 1920 -> start 1815, end 1920 (105 s).
- SpO2 70 at t=3000: at or below the desat floor 90 - 10 = 80 -> start 3000 at once (high, latching). SatSeconds
  index: 20 points x 60 s = 1200 by t=3060; from 97 it falls 7 per second: 1200 - 7 x 180 < 0 at the tick
  t=3240 (at 3180 it is 1200 - 7 x 120 = 360 > 0) -> the condition ends at 3240: "latched" (no one acknowledges).
  Escalation (high: 30 s and 90 s unacknowledged): due 3030 and 3090, decided at the ticks 3060 and 3120.
"""


def _hour_trace() -> str:
    lines = ["t,rr,spo2"]
    for t in range(0, 3601, 60):
        rr = {600: 6, 660: 6, 1800: 7, 1860: 8.5}.get(t, 12)
        spo2 = 70 if t == 3000 else 97
        lines.append(f"{t},{rr},{spo2}")
    return "\n".join(lines) + "\n"


def test_summary_numbers_by_hand() -> None:
    run = run_trace(parse_trace(_hour_trace().splitlines(), "hour.csv"), resolve_profile("ketamine-infusion"))
    assert [(e.id, e.phase, e.time, e.level) for e in run.events] == [
        ("rr_low", "start", 615, 0), ("rr_low", "end", 720, 0),
        ("rr_low", "start", 1815, 0), ("rr_low", "end", 1920, 0),
        ("spo2_low", "start", 3000, 0), ("spo2_low", "escalated", 3060, 1), ("spo2_low", "escalated", 3120, 2),
        ("spo2_low", "latched", 3240, 0)], HOUR
    s = summarise(run)
    assert s.duration == 3600
    assert s.alarms == s.audible == 3
    assert s.by_priority == {"high": 1, "medium": 2, "low": 0}
    assert s.per_hour == {"high": 1.0, "medium": 2.0, "low": 0.0}  # 1 h of trace
    # RR 105 + 105 s; SpO2 from its start to "latched" (3240 - 3000), not to the end of the trace (600 s)
    assert s.time_in_alarm == {"rr": 210, "spo2": 240}
    assert s.time_in_technical_alarm == {}
    assert (s.latched, s.active_at_end) == (1, 0)


def test_summary_json_line_and_an_alarm_still_active_at_the_end(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    # 30 minutes (t = 0 .. 1800, a row a minute): RR 5 from t=1500 to the end -> start 1515, still active at the
    # end: counts 1800 - 1515 = 285 s. One medium alarm in half an hour: 2 per hour.
    rows = ["t,rr"] + [f"{t},{5 if t >= 1500 else 12}" for t in range(0, 1801, 60)]
    trace = _write(tmp_path, "end.csv", "\n".join(rows) + "\n")
    code, out, _ = _run(capsys, str(trace), "--json")
    assert code == 0
    summary = _json_lines(out)[-1]["summary"]
    assert summary["alarms_per_hour"] == {"high": 0.0, "medium": 2.0, "low": 0.0}
    assert summary["time_in_alarm_s"] == {"rr": 285}
    assert (summary["active_at_end"], summary["latched"]) == (1, 0)
    assert "latched" in summary["note"]


def test_compare_function_matches_by_id_and_overlap() -> None:
    # the same run twice matches everything. Against adult-default (RR low 8, delay 15, hysteresis 1 as well; SpO2
    # low 90 with a plain delayed limit and the floor 80: 70 at t=3000 starts at once, 97 at 3060 ends it) every
    # alarm of the HOUR trace overlaps one of the same id: RR 615-720 and 1815-1920, SpO2 3000-3240 vs 3000-3060
    trace = parse_trace(_hour_trace().splitlines(), "hour.csv")
    a = run_trace(trace, resolve_profile("ketamine-infusion"))
    c = compare(a, a)
    assert c.only_a == c.only_b == ()
    d = compare(a, run_trace(trace, resolve_profile("adult-default")))
    assert d.only_a == d.only_b == ()
