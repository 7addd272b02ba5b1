// The small per-tile trend: last 10 minutes of HR (or PR) and SpO2, kept in fixed-size ring buffers.
// uPlot is loaded as a classic script (/vendor/uplot/uPlot.iife.min.js) and read from globalThis.

export const TREND_WINDOW_S = 600;
const RING_SIZE = 600;   // points per series
const GAP_S = 10;        // samples further apart than this are not joined by a line

export class Ring {
  constructor(size = RING_SIZE) {
    this.t = new Float64Array(size);
    this.v = new Float64Array(size);
    this.start = 0;
    this.length = 0;
  }

  get lastTime() {
    return this.length ? this.t[(this.start + this.length - 1) % this.t.length] : -Infinity;
  }

  /** Append (time, value); samples not newer than the last one are ignored. */
  push(time, value) {
    if (!(time > this.lastTime) || !Number.isFinite(value)) return false;
    const size = this.t.length;
    const i = (this.start + this.length) % size;
    this.t[i] = time;
    this.v[i] = value;
    if (this.length < size) this.length += 1;
    else this.start = (this.start + 1) % size;
    return true;
  }

  /** [times, values] since `since`, with a null after each gap longer than GAP_S (uPlot breaks the line). */
  series(since) {
    const xs = [];
    const ys = [];
    let prev = -Infinity;
    for (let k = 0; k < this.length; k++) {
      const i = (this.start + k) % this.t.length;
      const t = this.t[i];
      if (t < since) continue;
      if (t - prev > GAP_S && xs.length) {
        xs.push(prev + GAP_S / 2);
        ys.push(null);
      }
      xs.push(t);
      ys.push(this.v[i]);
      prev = t;
    }
    return [xs, ys];
  }
}

const COLORS = { pulse: "#4be35e", spo2: "#5ad1ff" };

export class Trend {
  constructor(container) {
    this.container = container;
    this.rings = { hr: new Ring(), pr: new Ring(), spo2: new Ring() };
    this.dirty = true;
    this.plot = null;
    const uPlot = globalThis.uPlot;
    if (!uPlot) return; // the numerics still work without the chart
    const axis = { stroke: "#9aa4b2", grid: { stroke: "#2a3140", width: 1 }, ticks: { show: false },
      font: "12px system-ui, sans-serif", size: 30, gap: 2 };
    this.plot = new uPlot({
      width: Math.max(container.clientWidth, 50),
      height: Math.max(container.clientHeight, 40),
      legend: { show: false },
      cursor: { show: false },
      pxAlign: 0,
      // x is minutes relative to now (-10 .. 0), so the axis reads "-10 min ... now" on any clock.
      scales: { x: { time: false, range: [-TREND_WINDOW_S / 60, 0] }, pulse: { range: [30, 180] },
        spo2: { range: [70, 100] } },
      axes: [
        { ...axis, size: 16, font: "11px system-ui, sans-serif", space: 40, incrs: [5],
          values: (u, ticks) => ticks.map((m) => (m === 0 ? "now" : `${m} min`)) },
        { ...axis, scale: "pulse", stroke: COLORS.pulse, space: 20 },
        { ...axis, scale: "spo2", side: 1, stroke: COLORS.spo2, space: 20, grid: { show: false } },
      ],
      series: [
        {},
        { label: "HR", scale: "pulse", stroke: COLORS.pulse, width: 2, points: { show: false } },
        { label: "SpO2", scale: "spo2", stroke: COLORS.spo2, width: 2, points: { show: false } },
      ],
    }, [[], [], []], container);
    new ResizeObserver(() => {
      const w = container.clientWidth;
      const h = container.clientHeight;
      if (w > 0 && h > 0) this.plot.setSize({ width: w, height: h });
    }).observe(container);
  }

  push(vital, time, value) {
    const ring = this.rings[vital];
    if (ring && ring.push(time, value)) this.dirty = true;
  }

  /** Redraw with the window ending at `now` (server seconds); called at most once a second. */
  redraw(now) {
    if (!this.plot) return;
    const since = now - TREND_WINDOW_S;
    const pulseRing = this.rings.hr.lastTime >= since || this.rings.pr.lastTime < since ? this.rings.hr : this.rings.pr;
    const data = globalThis.uPlot.join([pulseRing.series(since), this.rings.spo2.series(since)]);
    data[0] = data[0].map((t) => (t - now) / 60);
    this.plot.setData(data);
    this.dirty = false;
  }
}
