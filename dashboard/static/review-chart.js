// The session review's charts (uPlot, loaded as a classic script that sets globalThis.uPlot): one time axis for the
// whole session, stacked charts that share it. Drag on any chart to zoom, and every chart follows (uPlot's cursor
// sync plus a setScale hook); double-click or "Whole session" goes back to the whole session.
//
// On each vital chart: the readings (lines broken at gaps, NIBP as points), the session baseline of each vital as
// a dashed line, alarm periods as bands in the alarm's priority colour (an alarm of no particular vital as a strip
// along the top), technical periods as a hatched strip along the bottom, phase boundaries (solid), dose changes
// (dashed, ketamine colour) and annotations (dotted). The infusion lane on top draws the rate (mg/h, stepped) and
// carries the labels of the phases, the dose changes (with their rate) and the annotations.
//
// Display only: alarm periods, baselines and phases come from the server (GET /api/sessions/<id>/trace); nothing
// here decides anything clinical. The data shaping (gaps, thinning) is bay-history.js's Samples, as on the bay page.

import { Samples } from "./bay-history.js";
import { ANNOTATION_KINDS, VITALS } from "./bay-vitals.js";
import { fmtNum, fmtTime } from "./review-common.js";

export const BAND = { high: "rgba(255, 42, 42, 0.28)", medium: "rgba(255, 210, 31, 0.22)", low: "rgba(46, 230, 230, 0.18)" };
export const BAND_EDGE = { high: "#ff2a2a", medium: "#ffd21f", low: "#2ee6e6" };
const PRIORITY_ORDER = { low: 0, medium: 1, high: 2 };
export const KETAMINE = "#c4a7ff";
const PHASE_COLOR = "#8d97a6";
const NOTE_COLOR = "#e9edf3";
const TECH_COLOR = "rgba(255, 176, 32, 0.55)";
const STRIP = 8; // px: bay-wide alarm strip (top), technical strip (bottom)
const Y_AXIS = 58; // px: every chart's y axis has this width, so the plot areas line up on one time axis
const BUCKETS = 4000; // a line is thinned to about 2 points per bucket over the whole session

/**
 * The stacked charts: pressures share one (points), heart rate and pulse rate one, RR and EtCO2 one.
 * `always`: shown (empty, "no readings") even when the session has no reading of it; the others only when present.
 * `span`: the least y range shown, so a flat trace stays flat; `empty`: the y range of a chart without readings.
 */
export const REVIEW_GROUPS = [
  { key: "heart", label: "HR / PR", unit: "/min", vitals: ["hr", "pr"], always: true, span: 30, empty: [40, 120] },
  { key: "nibp", label: "NIBP", unit: "mmHg", vitals: ["nibp_sys", "nibp_dia", "nibp_map"], points: true,
    always: true, span: 40, empty: [40, 180] },
  { key: "abp", label: "ABP", unit: "mmHg", vitals: ["abp_sys", "abp_dia", "abp_map"], span: 40, empty: [40, 180] },
  { key: "spo2", label: "SpO2", unit: "%", vitals: ["spo2"], always: true, span: 10, empty: [85, 100] },
  { key: "resp", label: "RR / EtCO2", unit: "/min \u00B7 mmHg", vitals: ["rr", "etco2"], span: 10, empty: [0, 50] },
  { key: "temp", label: "Temp", unit: "\u00B0C", vitals: ["temp"], span: 1, empty: [35, 39] },
  { key: "pi", label: "PI", unit: "%", vitals: ["pi"], span: 2, empty: [0, 10] },
];

const DOSE_WORDS = { start: "start", rate: "rate", pause: "pause", resume: "resume", stop: "stop" };

/** The phase boundaries of a session as marks: [{time, label, kind: "phase"}]. */
export function phaseMarks(s) {
  const out = [{ time: s.admitted_at, label: "Admitted", kind: "phase" }];
  if (s.baseline_started != null) out.push({ time: s.baseline_started, label: "Baseline", kind: "phase" });
  if (s.infusion_started != null) out.push({ time: s.infusion_started, label: "Infusion", kind: "phase" });
  if (s.recovery_started != null) out.push({ time: s.recovery_started, label: "Recovery", kind: "phase" });
  if (s.discharge) {
    out.push({ time: s.discharge.time, label: s.discharge.outcome === "ended" ? "Ended" : "Discharged", kind: "phase" });
  }
  return out;
}

/** A dose event's words: "start 60 mg/h", "rate 45 mg/h", "pause", "resume 45 mg/h", "stop". */
export function doseLabel(d) {
  const word = DOSE_WORDS[d.action] ?? d.action;
  return d.rate_mg_per_h > 0 ? `${word} ${fmtNum(d.rate_mg_per_h, 2)} mg/h` : word;
}

export function doseMarks(s) {
  return (s.doses ?? []).map((d) => ({ time: d.time, label: doseLabel(d), kind: "dose", action: d.action }));
}

export function annotationLabel(n) {
  const kind = ANNOTATION_KINDS[n.kind] ?? n.kind;
  const text = (n.text ?? "").trim();
  if (!text) return kind;
  return n.kind === "note" ? text : `${kind}: ${text}`;
}

export function annotationMarks(annotations) {
  return (annotations ?? []).map((n) => ({ time: n.time, label: annotationLabel(n), kind: "note" }));
}

/** Each vital's readings of a trace as Samples (non-finite values dropped: missing is missing). */
export function samplesOf(trends) {
  const out = new Map();
  for (const [vital, col] of Object.entries(trends ?? {})) {
    const s = new Samples();
    const t = col?.t ?? [];
    const v = col?.v ?? [];
    for (let i = 0; i < t.length; i++) {
      if (v[i] !== null) s.add(t[i], v[i]);
    }
    if (s.length) out.set(vital, s);
  }
  return out;
}

/** A dashed horizontal line at `value` with a label at its right end. */
export function drawHLine(u, value, color, label, scale = "y") {
  const y = u.valToPos(value, scale, true);
  const { left, top, width, height } = u.bbox;
  if (!(y >= top && y <= top + height)) return;
  const dpr = globalThis.devicePixelRatio || 1;
  const ctx = u.ctx;
  ctx.save();
  ctx.strokeStyle = color;
  ctx.fillStyle = color;
  ctx.globalAlpha = 0.9;
  ctx.lineWidth = 1.5 * dpr;
  ctx.setLineDash([7 * dpr, 5 * dpr]);
  ctx.beginPath();
  ctx.moveTo(left, Math.round(y));
  ctx.lineTo(left + width, Math.round(y));
  ctx.stroke();
  if (label) {
    ctx.font = `${11 * dpr}px system-ui, sans-serif`;
    ctx.textAlign = "right";
    ctx.textBaseline = "bottom";
    ctx.fillText(label, left + width - 4 * dpr, y - 2 * dpr);
  }
  ctx.restore();
}

/** A vertical line at `time` across the plot: style "solid" | "dashed" | "dotted". */
export function drawVLine(u, time, color, style = "solid", scale = "x") {
  const x = Math.round(u.valToPos(time, scale, true));
  const { left, top, width, height } = u.bbox;
  if (!(x >= left && x <= left + width)) return null;
  const dpr = globalThis.devicePixelRatio || 1;
  const ctx = u.ctx;
  ctx.save();
  ctx.strokeStyle = color;
  ctx.lineWidth = (style === "solid" ? 1.5 : 1.25) * dpr;
  ctx.setLineDash(style === "dashed" ? [6 * dpr, 4 * dpr] : style === "dotted" ? [2 * dpr, 3 * dpr] : []);
  ctx.beginPath();
  ctx.moveTo(x, top);
  ctx.lineTo(x, top + height);
  ctx.stroke();
  ctx.restore();
  return x;
}

/** Labels for marks at the top of the plot, in up to `rows` rows so neighbours do not overlap. */
function drawLabels(u, marks, rows = 4) {
  const ctx = u.ctx;
  const { left, top, width } = u.bbox;
  const dpr = globalThis.devicePixelRatio || 1;
  ctx.save();
  ctx.font = `600 ${11 * dpr}px system-ui, sans-serif`;
  ctx.textBaseline = "top";
  ctx.textAlign = "left";
  const rowEnds = new Array(rows).fill(-Infinity);
  for (const m of [...marks].sort((a, b) => a.time - b.time)) {
    const x = Math.round(u.valToPos(m.time, "x", true));
    if (x < left - 1 || x > left + width + 1) continue;
    const text = m.label.length > 40 ? `${m.label.slice(0, 39)}\u2026` : m.label;
    const w = ctx.measureText(text).width + 8 * dpr;
    let row = rowEnds.findIndex((end) => end < x);
    if (row < 0) row = rowEnds.indexOf(Math.min(...rowEnds));
    const tx = Math.min(x + 3 * dpr, left + width - w);
    rowEnds[row] = tx + w;
    const ty = top + 2 * dpr + row * 14 * dpr;
    ctx.fillStyle = "rgba(5, 7, 11, 0.75)";
    ctx.fillRect(tx - 2 * dpr, ty - 1 * dpr, w - 4 * dpr, 13 * dpr);
    ctx.fillStyle = m.kind === "dose" ? KETAMINE : m.kind === "phase" ? "#c9d1dc" : NOTE_COLOR;
    ctx.fillText(text, tx, ty);
  }
  ctx.restore();
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

const AXIS = { stroke: "#9aa4b2", grid: { stroke: "#232b39", width: 1 }, ticks: { stroke: "#2a3140", width: 1 },
  font: "12px system-ui, sans-serif" };

/** The charts of one session on one time axis [start, end]: zoom one, all follow. */
export class ChartGroup {
  constructor(start, end) {
    this.start = start;
    this.end = end;
    this.charts = [];
    this.syncKey = `review-${Math.random().toString(36).slice(2)}`;
    this.syncing = false;
    this.onZoom = null; // (min, max, whole) => void
  }

  add(chart) {
    this.charts.push(chart);
  }

  /** A chart's x scale changed (a drag, a double-click): every other chart follows. */
  scaled(u) {
    if (this.syncing) return;
    const { min, max } = u.scales.x;
    if (!Number.isFinite(min) || !Number.isFinite(max)) return;
    this.syncing = true;
    try {
      for (const c of this.charts) {
        const p = c.plot;
        if (!p || p === u) continue;
        if (Math.abs(p.scales.x.min - min) > 1e-6 || Math.abs(p.scales.x.max - max) > 1e-6) {
          p.setScale("x", { min, max });
        }
      }
    } finally {
      this.syncing = false;
    }
    this.onZoom?.(min, max, min <= this.start + 1e-6 && max >= this.end - 1e-6);
  }

  /** Show [min, max] (clipped to the session) on every chart. */
  zoom(min, max) {
    const lo = Math.max(this.start, min);
    const hi = Math.min(this.end, max);
    if (!(hi > lo)) return;
    const first = this.charts.find((c) => c.plot);
    if (first) first.plot.setScale("x", { min: lo, max: hi }); // the others follow via scaled()
  }

  reset() {
    this.zoom(this.start, this.end);
  }
}

/**
 * One chart of the review. spec: {key, label, unit, height, series: [{label, color, points?, stepped?, scale?}],
 * data: uPlot columns (x first), yRange(min, max) -> [lo, hi], drawBack(u), drawFront(u), keys: [[label, color]]}
 */
export class ReviewChart {
  constructor(parent, group, spec) {
    this.spec = spec;
    this.root = el("figure", "review-chart");
    this.root.dataset.group = spec.key;
    const cap = el("figcaption", "chart-head");
    cap.append(el("span", "chart-label", spec.label), el("span", "chart-unit", spec.unit ?? ""));
    for (const [label, color] of spec.keys ?? []) {
      const k = el("span", "chart-key", label);
      k.style.color = color;
      cap.append(k);
    }
    if (spec.note) cap.append(el("span", "chart-note", spec.note));
    this.plotEl = el("div", "chart-plot");
    this.root.append(cap, this.plotEl);
    parent.append(this.root);
    this.plot = null;

    const uPlot = globalThis.uPlot;
    if (!uPlot) {
      this.plotEl.textContent = "chart unavailable (uPlot not loaded)";
      return;
    }
    const series = [{ value: (u, v) => (v == null ? "\u2014" : fmtTime(v, true)) }];
    for (const s of spec.series) {
      const base = { label: s.label, stroke: s.color, scale: s.scale ?? "y",
        value: (u, v) => (v == null ? "\u2014" : fmtNum(v, 1)) };
      if (s.points) {
        series.push({ ...base, width: 0, paths: () => null, points: { show: true, size: 7, stroke: s.color, fill: s.color } });
      } else if (s.stepped) {
        series.push({ ...base, width: 2, fill: "rgba(196, 167, 255, 0.15)", paths: uPlot.paths.stepped({ align: 1 }),
          points: { show: false } });
      } else {
        series.push({ ...base, width: 2, points: { show: false } });
      }
    }
    const width = Math.max(this.plotEl.clientWidth, 300);
    this.plot = new uPlot({
      width,
      height: spec.height ?? 150,
      legend: { show: spec.legend !== false, live: true },
      cursor: {
        y: false,
        drag: { x: true, y: false, setScale: true },
        sync: { key: group.syncKey, setSeries: false, scales: ["x", null] },
      },
      scales: {
        x: { time: true, range: (u, min, max) => [min, max] },
        y: { range: (u, min, max) => spec.yRange(min, max) },
      },
      axes: [
        { ...AXIS, size: 32 },
        { ...AXIS, size: Y_AXIS },
      ],
      series,
      hooks: {
        drawClear: [(u) => spec.drawBack?.(u)],
        draw: [(u) => spec.drawFront?.(u)],
        setScale: [(u, key) => {
          if (key !== "x") return;
          this.root.dataset.xMin = String(Math.round(u.scales.x.min * 1000) / 1000);
          this.root.dataset.xMax = String(Math.round(u.scales.x.max * 1000) / 1000);
          group.scaled(u);
        }],
      },
    }, spec.data, this.plotEl);
    group.add(this);
    new ResizeObserver(() => {
      const w = this.plotEl.clientWidth;
      if (w > 0 && this.plot && Math.abs(w - this.plot.width) > 1) {
        this.plot.setSize({ width: w, height: spec.height ?? 150 });
      }
    }).observe(this.plotEl);
  }
}

/** y range over the data and `extra` values, padded, at least `span` wide; `fallback` when there is nothing. */
function rangeWith(min, max, extra, span, fallback) {
  let lo = Number.isFinite(min) ? min : Infinity;
  let hi = Number.isFinite(max) ? max : -Infinity;
  for (const v of extra) {
    if (Number.isFinite(v)) {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
  }
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return fallback;
  if (hi - lo < span) {
    const mid = (hi + lo) / 2;
    lo = mid - span / 2;
    hi = mid + span / 2;
  }
  const pad = (hi - lo) * 0.08;
  return [lo - pad, hi + pad];
}

function overlapsView(u, start, end) {
  return (end === null || end >= u.scales.x.min) && start <= u.scales.x.max;
}

/** Fill [start, end] (end null: to the end of the session) within the plot, full height or a strip. */
function fillSpan(u, start, end, sessionEnd, color, where) {
  const { left, top, width, height } = u.bbox;
  const dpr = globalThis.devicePixelRatio || 1;
  const x0 = Math.max(left, u.valToPos(start, "x", true));
  const x1 = Math.min(left + width, u.valToPos(end ?? sessionEnd, "x", true));
  if (!(x1 >= x0)) return;
  const w = Math.max(x1 - x0, 2 * dpr);
  u.ctx.fillStyle = color;
  if (where === "top") u.ctx.fillRect(x0, top, w, STRIP * dpr);
  else if (where === "bottom") u.ctx.fillRect(x0, top + height - STRIP * dpr, w, STRIP * dpr);
  else u.ctx.fillRect(x0, top, w, height);
}

/**
 * A vital chart of the review: `group` (REVIEW_GROUPS entry), the trace's samples (samplesOf), the session,
 * its alarm and technical periods, the marks (phases, doses, annotations).
 */
export function vitalChart(parent, chartGroup, group, ctx) {
  const { samples, session, alarms, technical, marks, start, end } = ctx;
  const vitals = group.vitals;
  const present = vitals.filter((v) => samples.has(v));
  let count = 0;
  const tables = present.map((v) => {
    const s = samples.get(v);
    count += s.window(start, end).count;
    return group.points ? s.points(start, end) : s.line(start, end, BUCKETS);
  });
  // the session's start and end are x values too, so "the whole range of the data" is the whole session
  const data = globalThis.uPlot ? globalThis.uPlot.join([...tables, [[start, end]]]) : [[]];
  const baselines = present.filter((v) => Number.isFinite(session.baseline?.[v]))
    .map((v) => ({ vital: v, value: session.baseline[v] }));
  const bands = alarms
    .filter((a) => !a.vital || vitals.includes(a.vital))
    .sort((a, b) => (PRIORITY_ORDER[a.priority] ?? 0) - (PRIORITY_ORDER[b.priority] ?? 0));
  const techs = technical.filter((t) => !t.vital || vitals.includes(t.vital));
  const color = (v) => VITALS[v]?.color ?? "#ffffff";
  const fallback = group.empty; // no readings: an empty chart over a usual range (nothing drawn in it)

  const chart = new ReviewChart(parent, chartGroup, {
    key: group.key,
    label: group.label,
    unit: group.unit,
    note: count ? "" : "no readings in this session",
    keys: present.length > 1 || vitals.length > 1
      ? present.map((v) => [`${group.points ? "\u25CF" : "\u2014"} ${VITALS[v]?.label ?? v}`, color(v)]) : [],
    height: 150,
    series: present.map((v) => ({ label: VITALS[v]?.label ?? v, color: color(v), points: group.points })),
    data,
    yRange: (min, max) => rangeWith(min, max, baselines.map((b) => b.value), group.span, fallback),
    drawBack: (u) => {
      u.ctx.save();
      for (const a of bands) {
        if (!overlapsView(u, a.start, a.end)) continue;
        fillSpan(u, a.start, a.end, end, a.vital ? (BAND[a.priority] ?? BAND.low) : (BAND_EDGE[a.priority] ?? BAND_EDGE.low),
          a.vital ? "full" : "top");
      }
      for (const t of techs) {
        if (overlapsView(u, t.start, t.end)) fillSpan(u, t.start, t.end, end, TECH_COLOR, "bottom");
      }
      u.ctx.restore();
    },
    drawFront: (u) => {
      for (const m of marks) {
        if (m.kind === "phase") drawVLine(u, m.time, PHASE_COLOR, "solid");
        else if (m.kind === "dose") drawVLine(u, m.time, KETAMINE, "dashed");
        else drawVLine(u, m.time, NOTE_COLOR, "dotted");
      }
      for (const b of baselines) {
        drawHLine(u, b.value, color(b.vital), `${vitals.length > 1 ? `${VITALS[b.vital]?.label ?? b.vital} ` : ""}baseline ${fmtNum(b.value)}`);
      }
    },
  });
  const r = chart.root;
  r.dataset.vitals = present.join(",");
  r.dataset.points = String(count);
  r.dataset.bands = String(bands.length);
  r.dataset.technical = String(techs.length);
  r.dataset.baselines = baselines.map((b) => `${b.vital}=${b.value}`).join(" ");
  r.dataset.marks = String(marks.length);
  return chart;
}

/** The infusion lane: the running rate (mg/h, stepped) and the labels of phases, dose changes and annotations. */
export function infusionChart(parent, chartGroup, ctx) {
  const { session, marks, start, end } = ctx;
  const doses = session.doses ?? [];
  const xs = [start];
  const ys = [null]; // no rate before the first dose event
  for (const d of doses) {
    if (d.time <= xs[xs.length - 1]) {
      ys[ys.length - 1] = d.rate_mg_per_h; // same time: the later event wins
      continue;
    }
    xs.push(d.time);
    ys.push(d.rate_mg_per_h);
  }
  if (end > xs[xs.length - 1]) {
    xs.push(end);
    ys.push(doses.length ? doses[doses.length - 1].rate_mg_per_h : null);
  }
  const top = Math.max(0, ...doses.map((d) => d.rate_mg_per_h));
  const chart = new ReviewChart(parent, chartGroup, {
    key: "infusion",
    label: "Ketamine",
    unit: "mg/h",
    note: doses.length ? "" : "no infusion given",
    height: 130,
    legend: false,
    series: [{ label: "rate", color: KETAMINE, stepped: true }],
    data: [xs, ys],
    // the labels take the upper half; the rate stays below them
    yRange: () => [0, top > 0 ? top * 2.1 : 10],
    drawFront: (u) => {
      for (const m of marks) {
        drawVLine(u, m.time, m.kind === "dose" ? KETAMINE : m.kind === "phase" ? PHASE_COLOR : NOTE_COLOR,
          m.kind === "phase" ? "solid" : m.kind === "dose" ? "dashed" : "dotted");
      }
      drawLabels(u, marks);
    },
  });
  chart.root.dataset.doses = String(doses.length);
  chart.root.dataset.marks = String(marks.length);
  return chart;
}
