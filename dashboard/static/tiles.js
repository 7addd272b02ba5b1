// One tile per bay: numerics with units and ages, technical-status banner, alarm list and trend.
// Reads the state the server sent; decides nothing clinical itself.

import { PRIORITY_RANK, highestPriority, sortedAlarms } from "./state.js";
import { Trend } from "./trend.js";

// A value older than this (seconds) is shown struck through with "STALE", never as current.
export const STALE_S = 15;
// NIBP is a spot measurement taken every few minutes: it is shown with its age and only goes stale
// when no new cuff reading has come for this long.
export const NIBP_STALE_S = 15 * 60;

const SYMBOL = { high: "!!!", medium: "!!", low: "!" };
const MAX_ALARM_LINES = 3;

const TECH_TEXT = {
  no_data: "NO DATA",
  sensor_off: "SENSOR OFF",
  device_lost: "DEVICE LOST",
};

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
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

function staleAfter(key) {
  return key.startsWith("nibp_") ? NIBP_STALE_S : STALE_S;
}

/** A numeric box: label, value span(s) with data-vital, unit, age. */
function makeCell(cls, label, unit, keys) {
  const cell = el("div", `vital ${cls}`);
  const head = el("div", "vital-head");
  const labelEl = el("span", "vital-label", label);
  const staleTag = el("span", "stale-tag", "STALE");
  head.append(labelEl, staleTag);
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
  return { cell, labelEl, values, ageEl, keys };
}

export class Tile {
  constructor(bay) {
    this.id = bay.id;
    this.root = el("article", "tile");
    this.root.dataset.bay = bay.id;
    this.root.dataset.alarm = "none";

    const head = el("header", "tile-head");
    this.nameEl = el("h2", "bay-name", bay.name);
    this.badge = el("span", "alarm-badge", "");
    head.append(this.nameEl, this.badge);

    this.alarmBar = el("ul", "alarm-list");
    this.alarmBar.setAttribute("role", "alert");
    this.techBar = el("ul", "tech-list");

    this.cells = {
      pulse: makeCell("pulse", "HR", "/min", ["hr"]),
      spo2: makeCell("spo2", "SpO\u2082", "%", ["spo2"]),
      pr: makeCell("pr", "PR", "/min", ["pr"]),
      nibp: makeCell("nibp", "NIBP", "mmHg", ["nibp_sys", "nibp_dia", "nibp_map"]),
      rr: makeCell("rr", "RR", "/min", ["rr"]),
      etco2: makeCell("etco2", "EtCO\u2082", "mmHg", ["etco2"]),
    };
    const big = el("div", "numerics-big");
    big.append(this.cells.pulse.cell, this.cells.spo2.cell);
    const small = el("div", "numerics-small");
    small.append(this.cells.pr.cell, this.cells.nibp.cell, this.cells.rr.cell, this.cells.etco2.cell);

    const trendBox = el("div", "trend");
    this.root.append(head, this.alarmBar, this.techBar, big, small, trendBox);
    this.trend = new Trend(trendBox);
  }

  /** Redraw everything shown for `bay` at server time `now`. */
  update(bay, now) {
    this.nameEl.textContent = bay.name;

    // HR from the ECG when it is current, else the oximeter's pulse rate, else whichever exists (stale).
    const fresh = (k) => bay.vitals[k] && now - bay.vitals[k].time <= STALE_S;
    const pulseKey = fresh("hr") ? "hr" : fresh("pr") ? "pr" : bay.vitals.hr || !bay.vitals.pr ? "hr" : "pr";
    const pulse = this.cells.pulse;
    if (pulse.keys[0] !== pulseKey) {
      const span = pulse.values[pulse.keys[0]];
      delete pulse.values[pulse.keys[0]];
      pulse.keys[0] = pulseKey;
      pulse.values[pulseKey] = span;
      span.dataset.vital = pulseKey;
      pulse.labelEl.textContent = pulseKey.toUpperCase();
    }
    // The oximeter's pulse rate in its own small cell, unless the big cell already shows it.
    const prCell = this.cells.pr;
    prCell.cell.hidden = pulseKey === "pr" || !bay.vitals.pr;
    if (prCell.cell.hidden) delete prCell.values.pr.dataset.vital;
    else prCell.values.pr.dataset.vital = "pr";
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
    this.badge.textContent = top === "none" ? "" : `${SYMBOL[top]} ${top.toUpperCase()}`;
    this.renderAlarms(bay);
    this.renderTechnical(bay);
  }

  updateCell(c, bay, now, alarmByVital) {
    let newest = -Infinity;
    let anyStale = false;
    let cellAlarm = "none";
    for (const k of c.keys) {
      const span = c.values[k];
      const v = bay.vitals[k];
      let state = "missing";
      if (v) {
        state = now - v.time > staleAfter(k) ? "stale" : "current";
        newest = Math.max(newest, v.time);
        if (state === "stale") anyStale = true;
      }
      const text = v ? formatValue(k, v.value) : "---";
      if (span.textContent !== text) span.textContent = text;
      span.dataset.state = state;
      if (alarmByVital[k] && rank(alarmByVital[k]) > rank(cellAlarm)) cellAlarm = alarmByVital[k];
    }
    c.cell.dataset.stale = anyStale ? "true" : "false";
    c.cell.dataset.alarm = cellAlarm;
    c.ageEl.textContent = newest > -Infinity ? `${formatAge(now - newest)} ago` : "no value";
  }

  renderAlarms(bay) {
    const alarms = sortedAlarms(bay);
    const lines = alarms.slice(0, MAX_ALARM_LINES).map((a) => {
      const state = [
        a.latched ? "LATCHED" : null,
        a.acknowledged ? `ACK${a.acknowledged_by ? ` ${a.acknowledged_by}` : ""}` : null,
        a.paused_until ? "AUDIO PAUSED" : null,
      ].filter(Boolean);
      const text = `${SYMBOL[a.priority] ?? "!"} ${a.message}${state.length ? ` \u00B7 ${state.join(" \u00B7 ")}` : ""}`;
      const li = el("li", "alarm", text);
      li.dataset.priority = a.priority;
      li.dataset.alarmId = a.id;
      li.dataset.acknowledged = a.acknowledged ? "true" : "false";
      li.dataset.latched = a.latched ? "true" : "false";
      return li;
    });
    if (alarms.length > MAX_ALARM_LINES) lines.push(el("li", "alarm more", `+${alarms.length - MAX_ALARM_LINES} more`));
    this.alarmBar.replaceChildren(...lines);
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
    this.techBar.replaceChildren(...items);
    this.techBar.hidden = items.length === 0;
  }
}

function rank(p) {
  return PRIORITY_RANK[p] ?? 0;
}
