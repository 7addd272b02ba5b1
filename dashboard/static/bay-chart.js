// One trend chart of the bay detail page (uPlot, loaded as a classic script that sets globalThis.uPlot):
// the group's vitals over a time window, lines broken at gaps (NIBP as points), the current alarm limits as
// dashed lines, alarm periods as bands coloured by priority, annotations as vertical markers with their label.

import { VITALS } from "./bay-vitals.js";

const BAND = { high: "rgba(255, 42, 42, 0.28)", medium: "rgba(255, 210, 31, 0.22)", low: "rgba(46, 230, 230, 0.18)" };
const BAND_EDGE = { high: "#ff2a2a", medium: "#ffd21f", low: "#2ee6e6" };
const PRIORITY_ORDER = { low: 0, medium: 1, high: 2 };
const HEIGHT = 150;
const BAY_WIDE_STRIP = 8; // px: an alarm of no particular vital is a strip along the top of every chart

function hhmm(t) {
  const d = new Date(t * 1000);
  return `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`;
}

const TICK_STEPS = [60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600];

/** Ticks at whole local minutes/hours, about 90 px apart. */
function timeSplits(u, min, max) {
  const px = u.bbox.width / (globalThis.devicePixelRatio || 1) || 600;
  const want = ((max - min) / px) * 90;
  const step = TICK_STEPS.find((s) => s >= want) ?? TICK_STEPS[TICK_STEPS.length - 1];
  const tz = -new Date(min * 1000).getTimezoneOffset() * 60; // local time of day, so hours fall on the hour
  const ticks = [];
  for (let t = Math.ceil((min + tz) / step) * step - tz; t <= max; t += step) ticks.push(t);
  return ticks;
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

export class TrendChart {
  /** group: {key, label, unit, vitals, points?}; showLabels: draw annotation labels on this chart */
  constructor(parent, group, showLabels) {
    this.group = group;
    this.showLabels = showLabels;
    this.since = 0;
    this.until = 1;
    this.limits = []; // [{vital, which: "low"|"high", value}]
    this.bands = []; // [{priority, start, end, vital}]
    this.marks = []; // [{time, label}]

    this.root = el("figure", "chart");
    this.root.dataset.vital = group.key;
    this.root.dataset.series = group.vitals.join(",");
    this.root.dataset.points = "0";
    const cap = el("figcaption", "chart-head");
    cap.append(el("span", "chart-label", group.label), el("span", "chart-unit", group.unit));
    if (group.vitals.length > 1) {
      for (const v of group.vitals) {
        const key = el("span", "chart-key", `${group.points ? "\u25CF" : "\u2014"} ${VITALS[v]?.label ?? v}`);
        key.style.color = VITALS[v]?.color ?? "#ffffff";
        cap.append(key);
      }
    }
    this.limitText = el("span", "chart-limits");
    cap.append(this.limitText);
    this.plotEl = el("div", "chart-plot");
    this.root.append(cap, this.plotEl);
    parent.append(this.root);

    this.plot = null;
    const uPlot = globalThis.uPlot;
    if (!uPlot) {
      this.plotEl.textContent = "trend unavailable (uPlot not loaded)";
      return;
    }
    const axis = { stroke: "#9aa4b2", grid: { stroke: "#232b39", width: 1 }, ticks: { stroke: "#2a3140", width: 1 },
      font: "12px system-ui, sans-serif" };
    const series = [{}];
    for (const v of group.vitals) {
      const color = VITALS[v]?.color ?? "#ffffff";
      series.push(group.points
        ? { label: VITALS[v]?.label ?? v, stroke: color, width: 0, paths: () => null,
          points: { show: true, size: 7, stroke: color, fill: color } }
        : { label: VITALS[v]?.label ?? v, stroke: color, width: 2, points: { show: false } });
    }
    this.plot = new uPlot({
      width: Math.max(this.plotEl.clientWidth, 200),
      height: HEIGHT,
      legend: { show: false },
      cursor: { y: false, drag: { x: false, y: false } },
      pxAlign: 0,
      scales: {
        x: { time: true, range: () => [this.since, this.until] },
        y: { range: (u, min, max) => this.yRange(min, max) },
      },
      axes: [
        { ...axis, size: 30, splits: (u, i, min, max) => timeSplits(u, min, max), values: (u, ticks) => ticks.map(hhmm) },
        { ...axis, size: 44 },
      ],
      series,
      hooks: {
        drawClear: [(u) => this.drawBands(u)],
        draw: [(u) => { this.drawLimits(u); this.drawMarks(u); }],
      },
    }, [[], ...group.vitals.map(() => [])], this.plotEl);
    new ResizeObserver(() => {
      const w = this.plotEl.clientWidth;
      if (w > 0 && this.plot && Math.abs(w - this.plot.width) > 1) this.plot.setSize({ width: w, height: HEIGHT });
    }).observe(this.plotEl);
  }

  get width() {
    return this.plot ? this.plot.bbox.width / (globalThis.devicePixelRatio || 1) : 600;
  }

  /** y range covering the data and the limits drawn, with a little room. */
  yRange(min, max) {
    let lo = Number.isFinite(min) ? min : Infinity;
    let hi = Number.isFinite(max) ? max : -Infinity;
    for (const l of this.limits) {
      lo = Math.min(lo, l.value);
      hi = Math.max(hi, l.value);
    }
    if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [0, 100];
    const pad = Math.max((hi - lo) * 0.1, 1);
    return [lo - pad, hi + pad];
  }

  /**
   * Draw the window [since, until] from `history` (BayHistory) with `limits` (effective profile vitals) and
   * the bay's alarm periods and annotations (already filtered to the window by the caller or not: clipped here).
   */
  update(history, since, until, effective, alarmPeriods, annotations, labelOf) {
    this.since = since;
    this.until = until;
    const g = this.group;
    this.limits = [];
    const limitWords = [];
    for (const v of g.vitals) {
      const lim = effective?.[v];
      if (!lim) continue;
      for (const which of ["low", "high"]) {
        if (Number.isFinite(lim[which])) {
          this.limits.push({ vital: v, which, value: lim[which] });
          limitWords.push(`${g.vitals.length > 1 ? `${VITALS[v]?.label ?? v} ` : ""}${which} ${lim[which]}`);
        }
      }
    }
    this.limitText.textContent = limitWords.length ? `limits: ${limitWords.join(" \u00B7 ")}` : "no limits";
    this.root.dataset.limits = this.limits.map((l) => `${l.vital}.${l.which}=${l.value}`).join(" ");

    this.bands = alarmPeriods
      .filter((p) => (p.end === null || p.end >= since) && p.start <= until)
      .filter((p) => !p.vital || g.vitals.includes(p.vital))
      .sort((a, b) => (PRIORITY_ORDER[a.priority] ?? 0) - (PRIORITY_ORDER[b.priority] ?? 0));
    this.root.dataset.bands = String(this.bands.length);
    this.marks = annotations.filter((n) => n.time >= since && n.time <= until)
      .map((n) => ({ time: n.time, label: labelOf(n) }));
    this.root.dataset.annotations = String(this.marks.length);

    let count = 0;
    let first = null;
    const buckets = Math.max(100, Math.round(this.width));
    const tables = [];
    for (const v of g.vitals) {
      const s = history.samples.get(v);
      if (!s) {
        tables.push([[], []]);
        continue;
      }
      const w = s.window(since, until);
      count += w.count;
      if (w.first !== null && (first === null || w.first < first)) first = w.first;
      tables.push(g.points ? s.points(since, until) : s.line(since, until, buckets));
    }
    this.root.dataset.points = String(count);
    this.root.dataset.first = first === null ? "" : String(first);
    if (!this.plot) return;
    const data = tables.length === 1 ? tables[0] : globalThis.uPlot.join(tables);
    this.plot.batch(() => {
      this.plot.setData(data, false);
      this.plot.setScale("x", { min: since, max: until });
    });
  }

  drawBands(u) {
    const ctx = u.ctx;
    const { left, top, width, height } = u.bbox;
    const dpr = globalThis.devicePixelRatio || 1;
    ctx.save();
    for (const p of this.bands) {
      const x0 = Math.max(left, u.valToPos(Math.max(p.start, this.since), "x", true));
      const x1 = Math.min(left + width, u.valToPos(p.end === null ? this.until : Math.min(p.end, this.until), "x", true));
      if (!(x1 >= x0)) continue;
      const w = Math.max(x1 - x0, 2 * dpr);
      if (p.vital) {
        ctx.fillStyle = BAND[p.priority] ?? BAND.low;
        ctx.fillRect(x0, top, w, height);
      } else {
        ctx.fillStyle = BAND_EDGE[p.priority] ?? BAND_EDGE.low;
        ctx.fillRect(x0, top, w, BAY_WIDE_STRIP * dpr);
      }
    }
    ctx.restore();
  }

  drawLimits(u) {
    const ctx = u.ctx;
    const { left, width } = u.bbox;
    const dpr = globalThis.devicePixelRatio || 1;
    ctx.save();
    ctx.setLineDash([6 * dpr, 5 * dpr]);
    ctx.lineWidth = 1.5 * dpr;
    ctx.font = `${11 * dpr}px system-ui, sans-serif`;
    ctx.textBaseline = "bottom";
    ctx.textAlign = "left";
    for (const l of this.limits) {
      const y = Math.round(u.valToPos(l.value, "y", true));
      ctx.strokeStyle = VITALS[l.vital]?.color ?? "#ffffff";
      ctx.globalAlpha = 0.85;
      ctx.beginPath();
      ctx.moveTo(left, y);
      ctx.lineTo(left + width, y);
      ctx.stroke();
      ctx.fillStyle = ctx.strokeStyle;
      ctx.fillText(`${l.which} ${l.value}`, left + 4 * dpr, l.which === "low" ? y + 13 * dpr : y - 2 * dpr);
    }
    ctx.restore();
  }

  drawMarks(u) {
    const ctx = u.ctx;
    const { left, top, width, height } = u.bbox;
    const dpr = globalThis.devicePixelRatio || 1;
    ctx.save();
    ctx.strokeStyle = "#e9edf3";
    ctx.fillStyle = "#e9edf3";
    ctx.lineWidth = 1.5 * dpr;
    ctx.setLineDash([2 * dpr, 3 * dpr]);
    ctx.font = `600 ${11 * dpr}px system-ui, sans-serif`;
    ctx.textBaseline = "top";
    ctx.textAlign = "left";
    const rowEnds = [-Infinity, -Infinity, -Infinity]; // labels side by side would overlap: up to 3 rows
    for (const m of [...this.marks].sort((a, b) => a.time - b.time)) {
      const x = Math.round(u.valToPos(m.time, "x", true));
      if (x < left || x > left + width) continue;
      ctx.beginPath();
      ctx.moveTo(x, top);
      ctx.lineTo(x, top + height);
      ctx.stroke();
      if (this.showLabels) {
        const text = m.label.length > 28 ? `${m.label.slice(0, 27)}\u2026` : m.label;
        const tw = ctx.measureText(text).width;
        const tx = x + 3 * dpr + tw > left + width ? x - 3 * dpr - tw : x + 3 * dpr;
        let row = rowEnds.findIndex((end) => tx > end + 6 * dpr);
        if (row < 0) row = rowEnds.indexOf(Math.min(...rowEnds));
        rowEnds[row] = tx + tw;
        ctx.fillText(text, tx, top + (2 + row * 13) * dpr);
      }
    }
    ctx.restore();
  }
}
