// One tile per bay: bay name (a link to its detail page), patient line, numerics with units and ages, a
// 30-minute sparkline per main vital, the audio-pause countdown, technical statuses and the bay's alarms.
// Reads the state the server sent; decides nothing clinical itself.

import { NOT_CURRENT_TEXT, PRIORITY_RANK, highestPriority, isAudible, pausedFor, sortedAlarms, valueStatus }
  from "./state.js";
import { Ring, Sparkline } from "./trend.js";

// A value older than this (seconds) is no longer shown: "---" and "NO DATA" instead of its number.
export const STALE_S = 15;
// NIBP is a spot measurement taken every few minutes: it is shown with the age of the cuff reading and only
// stops being shown when no new cuff reading has come for this long.
export const NIBP_STALE_S = 15 * 60;

export const SYMBOL = { high: "!!!", medium: "!!", low: "!" };
const MAX_ALARM_LINES = 3;

const TECH_TEXT = { ...NOT_CURRENT_TEXT, invalid_value: "INVALID VALUE", signal_quality: "POOR SIGNAL" };
const SPARK_KEYS = ["hr", "pr", "spo2", "nibp_sys", "rr"];

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function setText(e, text) {
  if (e.textContent !== text) e.textContent = text;
}

function formatValue(key, value) {
  return key === "temp" || key === "pi" ? value.toFixed(1) : String(Math.round(value));
}

export function formatAge(seconds) {
  if (!Number.isFinite(seconds)) return "";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  return `${Math.floor(s / 3600)} h`;
}

/** "1:47" for 107 s. */
export function formatCountdown(seconds) {
  const s = Math.max(0, Math.round(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

export function staleAfter(key) {
  return key.startsWith("nibp_") ? NIBP_STALE_S : STALE_S;
}

/** A numeric box: label, status tag, value span(s) with data-vital, unit, age, and optionally a sparkline. */
function makeCell(cls, label, unit, keys, spark) {
  const cell = el("div", `vital ${cls}`);
  cell.dataset.stale = "false";
  cell.dataset.alarm = "none";
  const head = el("div", "vital-head");
  const labelEl = el("span", "vital-label", label);
  const tag = el("span", "stale-tag", "NO DATA");
  head.append(labelEl, tag);
  const valueLine = el("div", "vital-value");
  const values = {};
  keys.forEach((k, i) => {
    if (i === 1) valueLine.append("/");
    if (i === 2) valueLine.append(el("span", "map-paren", " ("));
    const v = el("span", "num", "---");
    v.dataset.vital = k;
    v.dataset.state = "missing";
    values[k] = v;
    valueLine.append(v);
    if (i === 2) valueLine.append(el("span", "map-paren", ")"));
  });
  const foot = el("div", "vital-foot");
  const unitEl = el("span", "vital-unit", unit);
  const ageEl = el("span", "vital-age", "");
  foot.append(unitEl, ageEl);
  cell.append(head, valueLine, foot);
  let sparkline = null;
  if (spark) {
    const box = el("div", "spark");
    box.dataset.spark = keys[0];
    cell.append(box);
    sparkline = new Sparkline(box, { points: spark === "points" });
  }
  return { cell, labelEl, tag, values, ageEl, keys, sparkline };
}

export class Tile {
  constructor(bay) {
    this.id = bay.id;
    this.root = el("article", "tile");
    this.root.dataset.bay = bay.id;
    this.root.dataset.alarm = "none";

    const head = el("header", "tile-head");
    const title = el("div", "tile-title");
    const h2 = el("h2", "bay-name");
    this.link = el("a", "bay-link", bay.name);
    this.link.href = `/bay/${encodeURIComponent(bay.id)}`;
    this.link.title = "Open this bay's details";
    h2.append(this.link);
    this.patientEl = el("div", "patient", "");
    title.append(h2, this.patientEl);
    this.pausedEl = el("span", "audio-paused", "");
    this.pausedEl.hidden = true;
    this.badge = el("span", "alarm-badge", "");
    head.append(title, this.pausedEl, this.badge);

    this.alarmBar = el("ul", "alarm-list");
    this.alarmBar.setAttribute("role", "alert");
    this.techBar = el("ul", "tech-list");

    this.cells = {
      pulse: makeCell("pulse", "HR", "/min", ["hr"], "line"),
      spo2: makeCell("spo2", "SpO\u2082", "%", ["spo2"], "line"),
      pr: makeCell("pr", "PR", "/min", ["pr"]),
      nibp: makeCell("nibp", "NIBP", "mmHg", ["nibp_sys", "nibp_dia", "nibp_map"], "points"),
      rr: makeCell("rr", "RR", "/min", ["rr"], "line"),
      etco2: makeCell("etco2", "EtCO\u2082", "mmHg", ["etco2"]),
    };
    const big = el("div", "numerics-big");
    big.append(this.cells.pulse.cell, this.cells.spo2.cell);
    const small = el("div", "numerics-small");
    small.append(this.cells.pr.cell, this.cells.nibp.cell, this.cells.rr.cell, this.cells.etco2.cell);
    this.root.append(head, this.alarmBar, this.techBar, big, small);

    this.rings = Object.fromEntries(SPARK_KEYS.map((k) => [k, new Ring()]));
    this.changed = new Set(); // vitals whose ring got points since the last sparkline redraw
    this.pulseKey = "hr";
  }

  /** Record a value for the sparklines. */
  push(vital, time, value) {
    const ring = this.rings[vital];
    if (ring && ring.push(time, value)) this.changed.add(vital);
  }

  /** Merge recorded history ({vital: [[t, v], ...]}) into the sparklines. */
  backfill(observations) {
    for (const [vital, points] of Object.entries(observations ?? {})) {
      const ring = this.rings[vital];
      if (ring && Array.isArray(points) && ring.merge(points)) this.changed.add(vital);
    }
  }

  /** Redraw the sparklines (called at most once a second). */
  redrawTrends(now) {
    this.cells.pulse.sparkline.show(this.rings[this.pulseKey], this.pulseKey);
    this.cells.spo2.sparkline.show(this.rings.spo2, "spo2");
    this.cells.nibp.sparkline.show(this.rings.nibp_sys, "nibp_sys");
    this.cells.rr.sparkline.show(this.rings.rr, "rr");
    for (const c of Object.values(this.cells)) {
      if (!c.sparkline || c.cell.hidden) continue;
      const key = c === this.cells.pulse ? this.pulseKey : c.keys[0];
      c.sparkline.redraw(now, this.changed.has(key));
    }
    this.changed.clear();
  }

  /** Redraw everything shown for `bay` at server time `now`. */
  update(bay, now) {
    setText(this.link, bay.name);
    this.renderPatient(bay, now);

    // HR from the ECG when it is current, else the oximeter's pulse rate, else whichever exists (not current).
    const current = (k) => valueStatus(bay, k, now, STALE_S).state === "current";
    const pulseKey = current("hr") ? "hr" : current("pr") ? "pr" : bay.vitals.hr || !bay.vitals.pr ? "hr" : "pr";
    const pulse = this.cells.pulse;
    if (pulse.keys[0] !== pulseKey) {
      const span = pulse.values[pulse.keys[0]];
      delete pulse.values[pulse.keys[0]];
      pulse.keys[0] = pulseKey;
      pulse.values[pulseKey] = span;
      span.dataset.vital = pulseKey;
      pulse.sparkline.box.dataset.spark = pulseKey;
      pulse.labelEl.textContent = pulseKey.toUpperCase();
      this.changed.add(pulseKey);
    }
    this.pulseKey = pulseKey;
    // The oximeter's pulse rate in its own small cell, unless the big cell already shows it.
    const prCell = this.cells.pr;
    prCell.cell.hidden = pulseKey === "pr" || !bay.vitals.pr;
    if (prCell.cell.hidden) delete prCell.values.pr.dataset.vital;
    else prCell.values.pr.dataset.vital = "pr";
    // RR and EtCO2 only once the bay has measured them (then they stay, and say so when they stop).
    this.cells.rr.cell.hidden = !bay.vitals.rr;
    this.cells.etco2.cell.hidden = !bay.vitals.etco2;

    const alarmByVital = {};
    for (const a of bay.alarms.values()) {
      if (a.vital && !(a.vital in alarmByVital && rank(alarmByVital[a.vital]) >= rank(a.priority))) {
        alarmByVital[a.vital] = a.priority;
      }
    }
    for (const c of Object.values(this.cells)) this.updateCell(c, bay, now, alarmByVital);

    const top = highestPriority(bay);
    this.root.dataset.alarm = top;
    setText(this.badge, top === "none" ? "" : `${SYMBOL[top]} ${top.toUpperCase()}`);
    this.renderPause(bay, now);
    this.renderAlarms(bay, now);
    this.renderTechnical(bay);
  }

  renderPatient(bay, now) {
    const s = bay.session;
    if (!s) {
      this.patientEl.dataset.patient = "none";
      setText(this.patientEl, "no patient admitted");
      return;
    }
    this.patientEl.dataset.patient = "admitted";
    const parts = [s.patient_initials || "?", s.phase ? String(s.phase).replace(/_/g, " ") : null, s.series || null,
      Number.isFinite(s.start) ? formatAge(now - s.start) : null];
    setText(this.patientEl, parts.filter(Boolean).join(" \u00B7 "));
  }

  renderPause(bay, now) {
    let left = 0;
    for (const a of bay.alarms.values()) left = Math.max(left, pausedFor(a, now));
    this.pausedEl.hidden = left <= 0;
    this.pausedEl.dataset.seconds = String(Math.round(left));
    setText(this.pausedEl, left > 0 ? `AUDIO PAUSED ${formatCountdown(left)}` : "");
  }

  updateCell(c, bay, now, alarmByVital) {
    let newest = -Infinity;
    let worst = null; // the status of the value that is not current, when one is not
    let cellAlarm = "none";
    for (const k of c.keys) {
      const span = c.values[k];
      const v = bay.vitals[k];
      const st = valueStatus(bay, k, now, staleAfter(k));
      if (v) newest = Math.max(newest, v.time);
      if (st.state !== "current" && (!worst || worst.state === "missing")) worst = st;
      // a value that is not current is never shown as a number
      setText(span, st.state === "current" ? formatValue(k, v.value) : "---");
      span.dataset.state = st.state;
      if (alarmByVital[k] && rank(alarmByVital[k]) > rank(cellAlarm)) cellAlarm = alarmByVital[k];
    }
    c.cell.dataset.stale = worst ? "true" : "false";
    c.cell.dataset.never = newest > -Infinity ? "false" : "true";
    c.cell.dataset.alarm = cellAlarm;
    setText(c.tag, worst ? worst.reason : "");
    let age;
    if (!worst) age = `${formatAge(now - newest)} ago`;
    else if (newest > -Infinity) age = `no data for ${formatAge(now - newest)}`;
    else age = "no data";
    setText(c.ageEl, age);
  }

  renderAlarms(bay, now) {
    const alarms = sortedAlarms(bay);
    const lines = alarms.slice(0, MAX_ALARM_LINES).map((a) => {
      const paused = pausedFor(a, now);
      const state = [
        a.latched ? "LATCHED" : null,
        a.acknowledged ? `ACK${a.acknowledged_by ? ` ${a.acknowledged_by}` : ""}` : null,
        paused > 0 ? `AUDIO PAUSED ${formatCountdown(paused)}` : null,
      ].filter(Boolean);
      const text = `${SYMBOL[a.priority] ?? "!"} ${a.message}${state.length ? ` \u00B7 ${state.join(" \u00B7 ")}` : ""}`;
      const li = el("li", "alarm", text);
      li.dataset.priority = a.priority;
      li.dataset.alarmId = a.id;
      li.dataset.kind = a.kind ?? "";
      li.dataset.acknowledged = a.acknowledged ? "true" : "false";
      li.dataset.latched = a.latched ? "true" : "false";
      li.dataset.audible = isAudible(a, now) ? "true" : "false";
      return li;
    });
    if (alarms.length > MAX_ALARM_LINES) lines.push(el("li", "alarm more", `+${alarms.length - MAX_ALARM_LINES} more`));
    replaceIfChanged(this.alarmBar, lines);
    this.alarmBar.hidden = lines.length === 0;
  }

  renderTechnical(bay) {
    const items = [...bay.technical.values()].map((t) => {
      const what = TECH_TEXT[t.condition] ?? t.condition.replace(/_/g, " ").toUpperCase();
      const parts = [`\u26A0 ${what}`, t.vital ? t.vital.toUpperCase() : null, t.device, t.detail || null];
      const li = el("li", "tech", parts.filter(Boolean).join(" \u00B7 "));
      li.dataset.condition = t.condition;
      li.dataset.device = t.device;
      return li;
    });
    replaceIfChanged(this.techBar, items);
    this.techBar.hidden = items.length === 0;
  }
}

/** Replace `parent`'s children with `items` unless they are the same (text and data attributes). */
export function replaceIfChanged(parent, items) {
  const sig = (e) => `${e.className}|${e.textContent}|${JSON.stringify(e.dataset)}|${e.getAttribute("href") ?? ""}`;
  const old = [...parent.children];
  if (old.length === items.length && old.every((e, i) => sig(e) === sig(items[i]))) return;
  parent.replaceChildren(...items);
}

function rank(p) {
  return PRIORITY_RANK[p] ?? 0;
}
