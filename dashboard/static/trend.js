// The tiles' 30-minute sparklines: per vital a fixed-size ring buffer of (time, value), drawn on a small canvas
// at most once a second and only when something changed (new data, a new size, or the window moved a pixel).
// Plain 2D canvas: 12 bays x 4 sparklines cost next to nothing; the bay detail page has the real charts.

export const SPARK_WINDOW_S = 30 * 60;
const RING_SIZE = 2048;  // points per vital: 30 min at 1 Hz with room to spare
const MIN_DT_S = 0.9;    // faster devices are thinned to about one point a second
const GAP_S = 15;        // samples further apart than this are not joined by a line

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

  get firstTime() {
    return this.length ? this.t[this.start] : Infinity;
  }

  /** Append (time, value); samples not newer than the last one (or < MIN_DT_S after it) are ignored. */
  push(time, value) {
    if (!(time >= this.lastTime + MIN_DT_S) || !Number.isFinite(value)) return false;
    const size = this.t.length;
    const i = (this.start + this.length) % size;
    this.t[i] = time;
    this.v[i] = value;
    if (this.length < size) this.length += 1;
    else this.start = (this.start + 1) % size;
    return true;
  }

  /** Merge recorded [[t, v], ...] (t ascending, e.g. from the history API) with what the ring holds. */
  merge(points) {
    if (!points.length) return false;
    const old = [];
    this.forEach((t, v) => old.push([t, v]));
    const all = old.concat(points.filter((p) => Number.isFinite(p[0]) && Number.isFinite(p[1])));
    all.sort((a, b) => a[0] - b[0]);
    this.start = 0;
    this.length = 0;
    const keep = all.slice(Math.max(0, all.length - this.t.length * 2));
    for (const [t, v] of keep) this.push(t, v);
    return true;
  }

  forEach(fn) {
    for (let k = 0; k < this.length; k++) {
      const i = (this.start + k) % this.t.length;
      fn(this.t[i], this.v[i]);
    }
  }
}

/** Per vital: the lowest range the y axis always shows and a hard clamp, so a flat line stays flat. */
const RANGE = {
  hr: [50, 120, 0, 300], pr: [50, 120, 0, 300], spo2: [88, 100, 0, 100], nibp_sys: [90, 160, 0, 300],
  rr: [8, 24, 0, 80],
};

export class Sparkline {
  /** `box` holds the canvas; `points` = true draws dots (NIBP is a spot measurement), else a line. */
  constructor(box, { points = false } = {}) {
    this.box = box;
    this.points = points;
    this.canvas = document.createElement("canvas");
    this.canvas.className = "spark-canvas";
    box.append(this.canvas);
    this.ctx = this.canvas.getContext("2d");
    this.ring = null;
    this.key = null;
    this.dirty = true;
    this.drawnAt = -Infinity;
    this.width = 0;
    this.height = 0;
    this.color = "";
    if (typeof ResizeObserver === "function") {
      new ResizeObserver(() => { this.dirty = true; }).observe(box);
    }
  }

  /** Show `ring` (of vital `key`). */
  show(ring, key) {
    if (ring !== this.ring) {
      this.ring = ring;
      this.key = key;
      this.dirty = true;
    }
  }

  /** Redraw for a window ending at `now` (server seconds) if anything changed. */
  redraw(now, changed) {
    if (changed) this.dirty = true;
    const w = this.box.clientWidth;
    const h = this.box.clientHeight;
    if (!w || !h || !this.ctx) return;
    const dpr = window.devicePixelRatio || 1;
    if (w !== this.width || h !== this.height) {
      this.width = w;
      this.height = h;
      this.canvas.width = Math.round(w * dpr);
      this.canvas.height = Math.round(h * dpr);
      this.color = getComputedStyle(this.box).color;
      this.dirty = true;
    }
    // the window moves one pixel every SPARK_WINDOW_S / w seconds
    if (!this.dirty && now - this.drawnAt < SPARK_WINDOW_S / w) return;
    this.draw(now, w, h, dpr);
    this.dirty = false;
    this.drawnAt = now;
  }

  draw(now, w, h, dpr) {
    const ctx = this.ctx;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    ctx.strokeStyle = "rgba(141,151,166,0.35)";
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.moveTo(0, h - 0.5);
    ctx.lineTo(w, h - 0.5);
    ctx.stroke();
    const ring = this.ring;
    if (!ring || !ring.length) return;
    const since = now - SPARK_WINDOW_S;
    const [lo0, hi0, min, max] = RANGE[this.key] ?? [0, 1, -Infinity, Infinity];
    let lo = lo0;
    let hi = hi0;
    ring.forEach((t, v) => {
      if (t >= since) {
        lo = Math.min(lo, v);
        hi = Math.max(hi, v);
      }
    });
    lo = Math.max(lo, min);
    hi = Math.min(hi, max);
    const pad = 2;
    const x = (t) => ((t - since) / SPARK_WINDOW_S) * w;
    const y = (v) => pad + (1 - (Math.min(Math.max(v, lo), hi) - lo) / (hi - lo || 1)) * (h - 2 * pad);
    ctx.strokeStyle = this.color;
    ctx.fillStyle = this.color;
    ctx.lineWidth = Math.max(1.5, Math.min(3, h / 20));
    ctx.lineJoin = "round";
    if (this.points) {
      const r = Math.max(2, Math.min(4, h / 8));
      ring.forEach((t, v) => {
        if (t < since) return;
        ctx.beginPath();
        ctx.arc(x(t), y(v), r, 0, 2 * Math.PI);
        ctx.fill();
      });
      return;
    }
    ctx.beginPath();
    let prev = -Infinity;
    ring.forEach((t, v) => {
      if (t < since) return;
      if (t - prev > GAP_S) ctx.moveTo(x(t), y(v));
      else ctx.lineTo(x(t), y(v));
      prev = t;
    });
    ctx.stroke();
  }
}
