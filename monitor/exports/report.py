"""A printable report of one infusion session: one self-contained HTML page to print or save as PDF.

`to_report_html(trace, stats)` takes the recorded session and its statistics (monitor.session_stats) and returns
the page: the patient and series, the protocol and the dose record, the checklist, the baseline, charts (heart and
pulse rate, blood pressure, SpO2 over the session, with alarm bands and the dose changes), the statistics, the
alarms, the annotations, the Aldrete score, the pain scores and the discharge assessment.

Self-contained and safe to open anywhere: one inline ``<style>`` (with ``@media print`` rules), charts as inline
SVG polylines drawn here (at most `MAX_POINTS` points per line: min/max per bucket, so peaks survive; a line breaks
where readings are missing), no scripts, no external fonts, images or links. Every text from the record goes
through ``html.escape``. Times are shown in UTC unless a time zone is given. Serve it with `REPORT_CSP` (its inline
style allowed by hash), not with the dashboard's policy, which blocks inline styles.
"""

from __future__ import annotations

import base64
import hashlib
import html
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

import numpy as np

from monitor.infusion import ALDRETE_ITEMS, Session
from monitor.session_stats import AlarmPeriod, alarm_periods
from monitor.store import SessionTrace
from monitor.vitals import VITALS

MAX_POINTS = 1500  # per line
WIDTH, HEIGHT = 960, 230
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 12, 26
COLOURS = {"hr": "#b03a2e", "pr": "#d35400", "nibp_sys": "#1f4e9c", "nibp_dia": "#5d8fd6", "nibp_map": "#7b8794",
           "spo2": "#117a65"}
BAND = {"high": ("#e74c3c", "0.22"), "medium": ("#f1c40f", "0.30"), "low": ("#3498db", "0.20")}


@dataclass(frozen=True, slots=True)
class Chart:
    title: str
    vitals: tuple[str, ...]
    lo: float  # the y range shown at least; widened to the data
    hi: float
    unit: str


CHARTS = (
    Chart("Heart rate (ECG) and pulse rate (SpO2)", ("hr", "pr"), 40, 140, "/min"),
    Chart("Blood pressure (NIBP systolic, diastolic, mean)", ("nibp_sys", "nibp_dia", "nibp_map"), 40, 180, "mmHg"),
    Chart("SpO2", ("spo2",), 85, 100, "%"),
)

CSS = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { font: 13px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; color: #111;
       margin: 24px auto; max-width: 1000px; padding: 0 16px; }
h1 { font-size: 20px; margin: 0 0 4px; }
h2 { font-size: 15px; margin: 20px 0 6px; border-bottom: 1px solid #999; padding-bottom: 2px; }
h3 { font-size: 13px; margin: 10px 0 4px; }
table { border-collapse: collapse; width: 100%; margin: 4px 0 8px; }
th, td { border: 1px solid #bbb; padding: 3px 6px; text-align: left; vertical-align: top; }
th { background: #eef0f3; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
dl.facts { display: grid; grid-template-columns: max-content 1fr max-content 1fr; gap: 2px 12px; margin: 8px 0; }
dl.facts dt { font-weight: 600; }
dl.facts dd { margin: 0; }
.muted { color: #555; }
.warn { color: #a00; font-weight: 600; }
.prio-high { color: #b00; font-weight: 600; }
.prio-medium { color: #8a6d00; font-weight: 600; }
.chart { margin: 6px 0 12px; }
.chart svg { width: 100%; height: auto; border: 1px solid #ccc; background: #fff; }
.legend span { margin-right: 14px; white-space: nowrap; }
.legend i { display: inline-block; width: 18px; height: 3px; vertical-align: middle; margin-right: 4px; }
footer { margin-top: 24px; font-size: 11px; color: #555; }
@page { size: A4; margin: 14mm 12mm; }
@media print {
  body { margin: 0; max-width: none; padding: 0; font-size: 10.5pt; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  .chart, tr, dl.facts, header { break-inside: avoid; page-break-inside: avoid; }
  thead { display: table-header-group; }
  h2 { break-after: avoid; page-break-after: avoid; }
  .chart svg { border-color: #999; }
}
""" + "".join(f".legend i.swatch-{k} {{ background: {c}; }}\n" for k, c in COLOURS.items())
# The Content-Security-Policy to serve the report with: nothing but its own inline style (by hash; the dashboard's
# own policy, default-src 'self', would block it). No style attributes are used, so no 'unsafe-inline'.
REPORT_CSP = ("default-src 'none'; style-src 'sha256-"
              + base64.b64encode(hashlib.sha256(CSS.encode()).digest()).decode()
              + "'; img-src data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")


def to_report_html(trace: SessionTrace, stats: dict[str, Any], *, tz: tzinfo | None = None) -> str:
    """The session report as one HTML page (UTF-8 text)."""
    zone = tz or UTC
    s = trace.session
    fmt = _Formats(zone, trace.start)
    title = f"Infusion session report: {s.patient_id} ({s.initials}), {fmt.date(s.admitted_at)}"
    body = [
        _header(s, trace, fmt),
        _protocol(s, stats, fmt),
        _checklist(s),
        _baseline(s),
        _charts(trace, fmt),
        _statistics(stats, fmt),
        _alarms(alarm_periods(trace), fmt),
        _annotations(trace, fmt),
        _recovery(s, fmt),
        f"<footer>Generated from the bedside record of session {_e(s.id)}. Times in {_e(fmt.zone_name)}. "
        f"Missing values are shown as &#8212; (no reading), never as 0.</footer>",
    ]
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{_e(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
            + "\n".join(body) + "\n</body>\n</html>\n")


# --- formatting ---------------------------------------------------------------------------------------------

DASH = "&#8212;"


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


class _Formats:
    def __init__(self, zone: tzinfo, at: float) -> None:
        self.zone = zone
        self.zone_name = datetime.fromtimestamp(at, UTC).astimezone(zone).tzname() or str(zone)

    def _dt(self, t: float) -> datetime:
        return datetime.fromtimestamp(t, UTC).astimezone(self.zone)

    def date(self, t: float | None) -> str:
        return DASH if t is None else _e(self._dt(t).strftime("%Y-%m-%d"))

    def when(self, t: float | None) -> str:
        return DASH if t is None else _e(self._dt(t).strftime("%Y-%m-%d %H:%M:%S"))

    def time(self, t: float | None) -> str:
        return DASH if t is None else _e(self._dt(t).strftime("%H:%M:%S"))

    def hm(self, t: float) -> str:
        return self._dt(t).strftime("%H:%M")


def _num(value: Any, unit: str = "", digits: int = 1) -> str:
    if value is None or isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return DASH
    text = f"{value:.{digits}f}".rstrip("0").rstrip(".") if digits else f"{value:.0f}"
    return _e(f"{text} {unit}".strip())


def _duration(seconds: Any) -> str:
    if not isinstance(seconds, int | float) or isinstance(seconds, bool) or not math.isfinite(seconds):
        return DASH
    total = round(seconds)
    h, rest = divmod(total, 3600)
    m, sec = divmod(rest, 60)
    return _e(f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d} min")


def _table(head: Sequence[str], rows: Iterable[Sequence[str]], numeric: Sequence[int] = (),
           empty: str = "none") -> str:
    """A table; `head` is plain text (escaped here), cells are already-escaped HTML."""
    body = ["<tr>" + "".join(f"<td class=\"num\">{c}</td>" if i in numeric else f"<td>{c}</td>"
                             for i, c in enumerate(r)) + "</tr>" for r in rows]
    if not body:
        return f"<p class=\"muted\">{_e(empty)}</p>"
    return ("<table><thead><tr>" + "".join(f"<th>{_e(h)}</th>" for h in head) + "</tr></thead><tbody>"
            + "".join(body) + "</tbody></table>")


def _facts(pairs: Iterable[tuple[str, str]]) -> str:
    return "<dl class=\"facts\">" + "".join(f"<dt>{_e(k)}</dt><dd>{v}</dd>" for k, v in pairs) + "</dl>"


def _unit(key: str) -> str:
    u = VITALS[key].unit if key in VITALS else ""
    return {"mm[Hg]": "mmHg", "Cel": "°C"}.get(u, u)


def _short(key: str) -> str:
    return VITALS[key].short if key in VITALS else key


# --- sections -----------------------------------------------------------------------------------------------

def _header(s: Session, trace: SessionTrace, fmt: _Formats) -> str:
    closed = s.discharge.time if s.discharge is not None else None
    return "<header><h1>Ketamine infusion session report</h1>" + _facts([
        ("Patient id", _e(s.patient_id)),
        ("Initials", _e(s.initials)),
        ("Bay", _e(s.bay)),
        ("Series", _e(s.series_label)),
        ("Admitted", f"{fmt.when(s.admitted_at)} by {_e(s.admitted_by)}"),
        ("Closed", fmt.when(closed) if closed is not None else f"open (phase {_e(s.phase)})"),
        ("Record from", fmt.when(trace.start)),
        ("Record to", fmt.when(trace.end)),
        ("Weight", _num(s.weight_kg, "kg")),
        ("Session", _e(s.id)),
    ]) + "</header>"


def _protocol(s: Session, stats: dict[str, Any], fmt: _Formats) -> str:
    inf = stats.get("infusion") or {}
    facts = _facts([
        ("Protocol", _e(f"{s.protocol.dose_mg_per_kg:g} mg/kg over {s.protocol.planned_minutes:g} min")),
        ("Planned dose", _num(s.total_mg, "mg", 2)),
        ("Planned rate", _num(s.rate_mg_per_h, "mg/h", 2)),
        ("Dose given", _num(inf.get("dose_given_mg"), "mg", 2)),
        ("Infusion started", fmt.when(s.infusion_started)),
        ("Infusion stopped", fmt.when(s.infusion_stopped)),
        ("Infusion duration", _duration(inf.get("duration_s"))),
        ("Time running", _duration(inf.get("running_s"))),
    ])
    rows = [(fmt.when(d.time), _e(d.action), _num(d.rate_mg_per_h, "mg/h", 2), _e(d.who), _e(d.note))
            for d in s.doses]
    return ("<section><h2>Protocol and dose record</h2>" + facts
            + _table(("Time", "Action", "Rate after", "Who", "Note"), rows, numeric=(2,), empty="no dose given")
            + "</section>")


def _checklist(s: Session) -> str:
    c = s.checklist
    missing = c.missing()
    rows = [
        ("Fasting", _num(c.fasting_hours, "h") if c.fasting_hours is not None else DASH),
        ("Escort", _e(c.escort_name) if c.escort_name else DASH),
        ("Escort phone", _e(c.escort_phone) if c.escort_phone else DASH),
        ("Consent", "yes" if c.consent else "<span class=\"warn\">no</span>"),
        ("Escort confirmed", "yes" if c.escort_confirmed else "<span class=\"warn\">no</span>"),
    ]
    note = (f"<p class=\"warn\">Not done: {_e(', '.join(missing))}</p>" if missing else "")
    return "<section><h2>Checklist</h2>" + _table(("Item", "Entry"), rows) + note + "</section>"


def _baseline(s: Session) -> str:
    rows = [(_e(_short(k)), _num(v, _unit(k))) for k, v in s.baseline.items()]
    return ("<section><h2>Baseline</h2>"
            + _table(("Vital", "Baseline"), rows, numeric=(1,), empty="no baseline recorded") + "</section>")


def _statistics(stats: dict[str, Any], fmt: _Formats) -> str:
    vitals: dict[str, Any] = stats.get("vitals") or {}
    outside: dict[str, Any] = stats.get("time_outside_limits_s") or {}
    rows = []
    for k, v in vitals.items():
        unit = _unit(k)
        rows.append((_e(_short(k)), _e(str(v.get("count", 0))), _num(v.get("min"), unit), _num(v.get("median"), unit),
                     _num(v.get("max"), unit), _duration(outside.get(k)) if outside.get(k) is not None else DASH))
    parts = ["<section><h2>Statistics</h2>",
             _table(("Vital", "Readings", "Min", "Median", "Max", "Time outside limits"), rows,
                    numeric=(1, 2, 3, 4, 5), empty="no readings")]
    peaks = stats.get("peaks") or {}
    prow = []
    for label, key in (("Peak systolic BP", "sbp"), ("Peak heart rate", "heart_rate")):
        p = peaks.get(key)
        if not p:
            continue
        unit = _unit(str(p.get("vital", "")))
        change = DASH if p.get("change") is None else \
            f"{_num(p.get('change'), unit)} ({_num(p.get('change_pct'), '%')})"
        prow.append((_e(f"{label} ({_short(str(p.get('vital', '')))})"), _num(p.get("value"), unit),
                     fmt.time(p.get("time")), _num(p.get("baseline"), unit), change))
    parts.append("<h3>During the infusion</h3>")
    parts.append(_table(("", "Peak", "At", "Baseline", "Change"), prow, numeric=(1, 3),
                        empty="no infusion recorded"))
    back = stats.get("back_to_baseline") or {}
    frac = back.get("fraction")
    frac_text = f"{frac * 100:g} %" if isinstance(frac, int | float) else "20 %"
    seconds = back.get("seconds")
    reached = _duration(seconds) if seconds is not None else "not reached"
    parts.append(f"<p>Back to baseline (systolic BP and heart rate within {_e(frac_text)} of baseline from then on, "
                 f"counted from the infusion stop): <strong>{reached}</strong></p>")
    alarms: dict[str, Any] = stats.get("alarms") or {}
    arows = [(_e(kind), *(_e(str((alarms.get(kind) or {}).get(p, 0))) for p in ("high", "medium", "low", "total")))
             for kind in ("physiological", "technical", "total")]
    parts.append("<h3>Alarms started</h3>")
    parts.append(_table(("Kind", "High", "Medium", "Low", "Total"), arows, numeric=(1, 2, 3, 4)))
    parts.append("</section>")
    return "".join(parts)


def _alarms(periods: Sequence[AlarmPeriod], fmt: _Formats) -> str:
    rows = []
    for p in periods:
        start = ("before " if p.started_before else "") + fmt.time(p.start)
        end = fmt.time(p.end) if p.end is not None else "active at the end"
        if p.condition_end is not None and p.end is not None and p.condition_end != p.end:
            end += f" (condition ended {fmt.time(p.condition_end)})"
        ack = DASH if not p.acknowledged_by else f"{_e(', '.join(p.acknowledged_by))} at {fmt.time(p.acknowledged_at)}"
        rows.append((start, end, f"<span class=\"prio-{_e(p.priority)}\">{_e(p.priority)}</span>", _e(p.kind),
                     _e(p.message), ack))
    return ("<section><h2>Alarms</h2>"
            + _table(("Start", "End", "Priority", "Kind", "Message", "Acknowledged by"), rows, empty="no alarms")
            + "</section>")


def _annotations(trace: SessionTrace, fmt: _Formats) -> str:
    rows = [(fmt.when(a.time), _e(a.kind.replace("_", " ")), _e(a.who), _e(a.text)) for a in trace.annotations]
    return ("<section><h2>Annotations</h2>" + _table(("Time", "Kind", "Who", "Text"), rows, empty="no annotations")
            + "</section>")


def _recovery(s: Session, fmt: _Formats) -> str:
    parts = ["<section><h2>Recovery and discharge</h2>"]
    a = s.aldrete
    if a is None:
        parts.append("<p class=\"warn\">No Aldrete score entered.</p>")
    else:
        rows = [(_e(item.capitalize() if item != "spo2" else "SpO2"), _e(str(getattr(a, item))))
                for item in ALDRETE_ITEMS]
        rows.append(("<strong>Total</strong>", f"<strong>{_e(str(a.total))}</strong> / 10"))
        parts.append(f"<h3>Modified Aldrete score ({fmt.when(a.time)}, {_e(a.who)})</h3>")
        parts.append(_table(("Item", "Score"), rows, numeric=(1,)))
    pain = [("Pain before (0-10)", _e(str(s.pain_before)) if s.pain_before is not None else DASH),
            ("Pain after (0-10)", _e(str(s.pain_after)) if s.pain_after is not None else DASH)]
    parts.append(_facts(pain))
    d = s.discharge
    if d is None:
        parts.append(f"<p>Not discharged: the session is {_e(s.phase)}.</p>")
    else:
        unmet = ("<ul>" + "".join(f"<li>{_e(u)}</li>" for u in d.unmet) + "</ul>") if d.unmet else "none"
        parts.append(_facts([
            ("Outcome", f"<strong>{_e(d.outcome)}</strong>"),
            ("When", fmt.when(d.time)),
            ("Who", _e(d.who)),
            ("Unmet items", unmet),
            ("Override / reason" if d.outcome == "discharged" else "Reason", _e(d.reason) if d.reason else DASH),
        ]))
    parts.append("</section>")
    return "".join(parts)


# --- charts -------------------------------------------------------------------------------------------------

FloatArray = np.ndarray[Any, np.dtype[np.float64]]


def _charts(trace: SessionTrace, fmt: _Formats) -> str:
    series: dict[str, tuple[FloatArray, FloatArray]] = {}
    raw: dict[str, list[tuple[float, float]]] = {}
    for o in trace.observations:
        if o.vital in COLOURS and math.isfinite(o.value) and trace.start <= o.receive_time <= trace.end:
            raw.setdefault(o.vital, []).append((o.receive_time, o.value))
    for k, pairs in raw.items():
        arr = np.asarray(sorted(pairs), dtype=np.float64)
        series[k] = (arr[:, 0], arr[:, 1])
    periods = [p for p in alarm_periods(trace) if p.kind == "physiological"]
    parts = ["<section><h2>Charts</h2>"]
    for chart in CHARTS:
        parts.append(_chart(chart, trace, series, periods, fmt))
    parts.append("</section>")
    return "".join(parts)


def thin(t: FloatArray, v: FloatArray, max_points: int = MAX_POINTS) -> tuple[FloatArray, FloatArray]:
    """At most `max_points` points: each of max_points/2 buckets (by index) keeps its lowest and highest reading,
    in time order, so peaks and troughs survive."""
    n = t.size
    if n <= max_points:
        return t, v
    keep: list[int] = []
    for bucket in np.array_split(np.arange(n), max_points // 2):
        if bucket.size == 0:
            continue
        lo, hi = int(bucket[np.argmin(v[bucket])]), int(bucket[np.argmax(v[bucket])])
        keep += sorted({lo, hi})
    idx = np.asarray(keep, dtype=np.intp)
    return t[idx], v[idx]


def _segments(t: FloatArray, v: FloatArray, gap: float) -> list[tuple[FloatArray, FloatArray]]:
    """The runs of readings no more than `gap` apart (a longer gap breaks the line: missing is missing)."""
    if t.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(t) > gap) + 1
    return list(zip(np.split(t, breaks), np.split(v, breaks), strict=True))


def _chart(chart: Chart, trace: SessionTrace, series: dict[str, tuple[FloatArray, FloatArray]],
           periods: Sequence[AlarmPeriod], fmt: _Formats) -> str:
    s = trace.session
    t0, t1 = trace.start, max(trace.end, trace.start + 1.0)
    present = [k for k in chart.vitals if k in series]
    lo, hi = chart.lo, chart.hi
    for k in present:
        lo = min(lo, float(np.min(series[k][1])) - 5)
        hi = max(hi, float(np.max(series[k][1])) + 5)
    if chart.vitals == ("spo2",):
        hi = min(hi, 101.0)
    pw, ph = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(t: float) -> float:
        return LEFT + (t - t0) / (t1 - t0) * pw

    def y(v: float) -> float:
        return TOP + (hi - v) / (hi - lo) * ph

    out = [f"<div class=\"chart\"><h3>{_e(chart.title)}</h3>",
           f"<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" "
           f"aria-label=\"{_e(chart.title)}\">"]
    # alarm bands of this chart's vitals
    for p in periods:
        if p.vital not in chart.vitals:
            continue
        a = max(p.start, t0)
        b = min(p.condition_end if p.condition_end is not None else t1, t1)
        if b < a:
            continue
        colour, opacity = BAND.get(p.priority, BAND["low"])
        out.append(f"<rect x=\"{x(a):.1f}\" y=\"{TOP}\" width=\"{max(1.0, x(b) - x(a)):.1f}\" height=\"{ph}\" "
                   f"fill=\"{colour}\" fill-opacity=\"{opacity}\"><title>{_e(p.message)}</title></rect>")
    # y grid and labels
    step = _nice_step(hi - lo, 6)
    tick = math.ceil(lo / step) * step
    while tick <= hi:
        out.append(f"<line x1=\"{LEFT}\" x2=\"{WIDTH - RIGHT}\" y1=\"{y(tick):.1f}\" y2=\"{y(tick):.1f}\" "
                   "stroke=\"#e3e3e3\" stroke-width=\"1\"/>")
        out.append(f"<text x=\"{LEFT - 4}\" y=\"{y(tick) + 4:.1f}\" font-size=\"11\" text-anchor=\"end\" "
                   f"fill=\"#444\">{tick:g}</text>")
        tick += step
    # x ticks
    tstep = next((c for c in (60, 300, 600, 900, 1800, 3600, 7200, 14400, 28800) if (t1 - t0) / c <= 10), 86400)
    tick = math.ceil(t0 / tstep) * tstep
    while tick <= t1:
        out.append(f"<line x1=\"{x(tick):.1f}\" x2=\"{x(tick):.1f}\" y1=\"{TOP}\" y2=\"{TOP + ph}\" "
                   "stroke=\"#eeeeee\" stroke-width=\"1\"/>")
        out.append(f"<text x=\"{x(tick):.1f}\" y=\"{HEIGHT - 8}\" font-size=\"11\" text-anchor=\"middle\" "
                   f"fill=\"#444\">{_e(fmt.hm(tick))}</text>")
        tick += tstep
    out.append(f"<text x=\"4\" y=\"{TOP + 10}\" font-size=\"11\" fill=\"#444\">{_e(chart.unit)}</text>")
    # baselines
    for k in present:
        base = s.baseline.get(k)
        if base is not None and lo <= base <= hi:
            out.append(f"<line x1=\"{LEFT}\" x2=\"{WIDTH - RIGHT}\" y1=\"{y(base):.1f}\" y2=\"{y(base):.1f}\" "
                       f"stroke=\"{COLOURS[k]}\" stroke-width=\"1\" stroke-dasharray=\"2 4\"/>")
    # dose changes
    for i, d in enumerate(s.doses):
        if not t0 <= d.time <= t1:
            continue
        label = d.action if d.action in ("pause", "stop") else f"{d.action} {d.rate_mg_per_h:g} mg/h"
        out.append(f"<line x1=\"{x(d.time):.1f}\" x2=\"{x(d.time):.1f}\" y1=\"{TOP}\" y2=\"{TOP + ph}\" "
                   "stroke=\"#6c3483\" stroke-width=\"1.2\" stroke-dasharray=\"5 3\"/>")
        out.append(f"<text x=\"{x(d.time) + 3:.1f}\" y=\"{TOP + 11 + 12 * (i % 2)}\" font-size=\"10\" "
                   "fill=\"#6c3483\">"
                   f"{_e(label)}</text>")
    # the lines
    for k in present:
        t, v = series[k]
        gaps = np.diff(t)
        gap = max(60.0, 4.0 * float(np.median(gaps))) if gaps.size else 60.0
        tt, vv = thin(t, v)
        colour = COLOURS[k]
        for seg_t, seg_v in _segments(tt, vv, gap):
            pts = " ".join(f"{x(float(a)):.1f},{y(float(b)):.1f}" for a, b in zip(seg_t, seg_v, strict=True))
            if seg_t.size > 1:
                out.append(f"<polyline points=\"{pts}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.4\" "
                           "stroke-linejoin=\"round\"/>")
        if tt.size <= 300:
            out += [f"<circle cx=\"{x(float(a)):.1f}\" cy=\"{y(float(b)):.1f}\" r=\"2.2\" fill=\"{colour}\"/>"
                    for a, b in zip(tt, vv, strict=True)]
    out.append(f"<rect x=\"{LEFT}\" y=\"{TOP}\" width=\"{pw}\" height=\"{ph}\" fill=\"none\" stroke=\"#999\"/>")
    out.append("</svg>")
    legend = "".join(f"<span><i class=\"swatch-{_e(k)}\"></i>{_e(_short(k))}</span>" for k in chart.vitals)
    missing = [k for k in chart.vitals if k not in series]
    note = f" <span class=\"muted\">(no readings: {_e(', '.join(_short(k) for k in missing))})</span>" \
        if missing else ""
    out.append(f"<div class=\"legend\">{legend}{note}</div></div>")
    return "".join(out)


def _nice_step(span: float, ticks: int) -> float:
    raw = span / max(1, ticks)
    mag = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    return float(next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw))

