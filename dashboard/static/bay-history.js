// The bay detail page's copy of the bay's recent past: observations per vital (time-sorted), alarm periods and
// annotations. Filled from GET /api/bays/{bay}/history and then from live websocket messages; pure data, no DOM.

export const GAP_S = 10; // samples further apart than this are not joined by a line

function lowerBound(arr, x) {
  let lo = 0;
  let hi = arr.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (arr[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** One vital's samples, sorted by time, one per time. */
export class Samples {
  constructor() {
    this.t = [];
    this.v = [];
  }

  get length() {
    return this.t.length;
  }

  add(time, value) {
    if (!Number.isFinite(time) || !Number.isFinite(value)) return false; // missing is missing
    const n = this.t.length;
    if (n === 0 || time > this.t[n - 1]) {
      this.t.push(time);
      this.v.push(value);
      return true;
    }
    const i = lowerBound(this.t, time);
    if (this.t[i] === time) return false;
    this.t.splice(i, 0, time);
    this.v.splice(i, 0, value);
    return true;
  }

  /** Merge a sorted [[t, v], ...] list (from the history endpoint) into these samples. */
  merge(points) {
    const pts = points.filter((p) => Array.isArray(p) && Number.isFinite(p[0]) && Number.isFinite(p[1]));
    if (!pts.length) return;
    if (!this.t.length || pts[0][0] > this.t[this.t.length - 1]) {
      for (const [t, v] of pts) this.add(t, v);
      return;
    }
    const t = [];
    const v = [];
    let i = 0;
    let j = 0;
    while (i < this.t.length || j < pts.length) {
      const a = i < this.t.length ? this.t[i] : Infinity;
      const b = j < pts.length ? pts[j][0] : Infinity;
      let tt;
      let vv;
      if (a < b) { tt = a; vv = this.v[i++]; } else if (b < a) { tt = b; vv = pts[j++][1]; } else {
        tt = a; vv = pts[j][1]; i++; j++;
      }
      if (t.length && t[t.length - 1] === tt) continue; // the history itself repeated a time
      t.push(tt);
      v.push(vv);
    }
    this.t = t;
    this.v = v;
  }

  /** Drop samples older than `before`. */
  prune(before) {
    const i = lowerBound(this.t, before);
    if (i > 0) {
      this.t.splice(0, i);
      this.v.splice(0, i);
    }
  }

  /** How many samples lie in [since, until], and the first one's time. */
  window(since, until) {
    const a = lowerBound(this.t, since);
    const b = lowerBound(this.t, until + 1e-9);
    return { count: Math.max(0, b - a), first: b > a ? this.t[a] : null, last: b > a ? this.t[b - 1] : null };
  }

  /** Every sample in [since, until] as [xs, ys] (spot measurements: no gaps to mark). */
  points(since, until) {
    const a = lowerBound(this.t, since);
    const b = lowerBound(this.t, until + 1e-9);
    return [this.t.slice(a, b), this.v.slice(a, b)];
  }

  /**
   * [xs, ys] for a line over [since, until], at most about 2 points per bucket (the bucket's lowest and highest,
   * in time order) so a 12 h window stays cheap to draw; a null is put between samples more than GAP_S apart,
   * so the line is broken there (judged on the raw samples, not on the buckets).
   */
  line(since, until, buckets) {
    const xs = [];
    const ys = [];
    const dt = (until - since) / Math.max(1, buckets);
    const a = lowerBound(this.t, since);
    const b = lowerBound(this.t, until + 1e-9);
    let bucket = NaN;
    let lo = -1;
    let hi = -1;
    const flush = () => {
      if (lo < 0) return;
      const first = Math.min(lo, hi);
      const second = Math.max(lo, hi);
      xs.push(this.t[first]);
      ys.push(this.v[first]);
      if (second !== first) {
        xs.push(this.t[second]);
        ys.push(this.v[second]);
      }
      lo = -1;
      hi = -1;
    };
    for (let i = a; i < b; i++) {
      const t = this.t[i];
      const value = this.v[i];
      const gap = i > a && t - this.t[i - 1] > GAP_S;
      const k = Math.floor((t - since) / dt);
      if (gap || k !== bucket) flush();
      if (gap) {
        xs.push((this.t[i - 1] + t) / 2);
        ys.push(null);
      }
      bucket = k;
      if (lo < 0 || value < this.v[lo]) lo = i;
      if (hi < 0 || value > this.v[hi]) hi = i;
    }
    flush();
    return [xs, ys];
  }
}

export class BayHistory {
  constructor() {
    this.samples = new Map(); // vital -> Samples
    this.alarms = new Map(); // `${id}@${start}` -> {id, priority, kind, vital, message, start, end}
    this.annotations = new Map(); // id -> {id, time, who, kind, text}
  }

  vitals() {
    return [...this.samples.keys()].filter((k) => this.samples.get(k).length > 0);
  }

  addObservation(vital, time, value) {
    let s = this.samples.get(vital);
    if (!s) {
      s = new Samples();
      this.samples.set(vital, s);
    }
    return s.add(time, value);
  }

  /** Merge a history response; what it says about a period wins over what the page had. */
  mergeHistory(h) {
    for (const [vital, points] of Object.entries(h.observations ?? {})) {
      let s = this.samples.get(vital);
      if (!s) {
        s = new Samples();
        this.samples.set(vital, s);
      }
      s.merge(points);
    }
    for (const a of h.alarms ?? []) {
      if (!Number.isFinite(a.start)) continue;
      this.alarms.set(`${a.id}@${a.start}`, { ...a, end: a.end ?? null });
    }
    for (const n of h.annotations ?? []) this.annotations.set(String(n.id), { ...n });
  }

  /** A live alarm message: a start opens a period, an end closes the open one of that id. */
  alarmMessage(msg) {
    if (msg.phase === "start") {
      const key = `${msg.id}@${msg.time}`;
      if (!this.alarms.has(key)) {
        this.alarms.set(key, { id: msg.id, priority: msg.priority, kind: msg.kind, vital: msg.vital ?? null,
          message: msg.message ?? msg.id, start: msg.time, end: null });
      }
      return true;
    }
    if (msg.phase === "end") {
      let open = null;
      for (const p of this.alarms.values()) {
        if (p.id === msg.id && p.end === null && p.start <= msg.time && (!open || p.start > open.start)) open = p;
      }
      if (open) open.end = msg.time;
      return Boolean(open);
    }
    return false;
  }

  /** Mark the periods of alarms still active per the server's snapshot (ids), ending the ones that are not. */
  syncActive(activeAlarms, now) {
    const active = new Map(activeAlarms.map((a) => [a.id, a]));
    for (const p of this.alarms.values()) {
      if (p.end === null && !active.has(p.id)) p.end = now;
    }
    for (const a of active.values()) {
      const open = [...this.alarms.values()].some((p) => p.id === a.id && p.end === null);
      if (!open && Number.isFinite(a.since)) {
        this.alarms.set(`${a.id}@${a.since}`, { id: a.id, priority: a.priority, kind: a.kind, vital: a.vital ?? null,
          message: a.message ?? a.id, start: a.since, end: null });
      }
    }
  }

  addAnnotation(n) {
    const key = String(n.id);
    const had = this.annotations.has(key);
    this.annotations.set(key, { id: n.id, time: n.time, who: n.who, kind: n.kind, text: n.text ?? "" });
    return !had;
  }

  /** Annotations, newest first. */
  annotationList() {
    return [...this.annotations.values()].sort((a, b) => b.time - a.time || String(b.id).localeCompare(String(a.id)));
  }

  prune(before) {
    for (const s of this.samples.values()) s.prune(before);
    for (const [k, p] of this.alarms) if (p.end !== null && p.end < before) this.alarms.delete(k);
  }
}
