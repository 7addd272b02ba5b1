// The bay detail page, /bay/<bay id>: header (patient, connection), current values, the bay's active alarms with
// acknowledge and audio pause, trends with alarm limits, alarm periods and annotations, annotating, and the
// patient's alarm limits. Everything shown comes from the server (snapshot, websocket, history, alarm settings);
// the page decides nothing clinical, and the server enforces who may do what.

import { ApiError, allows, api, me } from "./api.js";
import { TrendChart } from "./bay-chart.js";
import { BayHistory } from "./bay-history.js";
import { SessionPanel } from "./bay-session.js";
import { ANNOTATION_KINDS, CHART_GROUPS, SYMBOL, VITAL_ORDER, formatValue, groupOf, vitalLabel, vitalUnit }
  from "./bay-vitals.js";
import { LiveConnection } from "./live.js";
import { pageSound } from "./sound-ui.js";
import { LiveState, sortedAlarms, valueStatus } from "./state.js";

const OFFLINE_GRACE_MS = 2000; // on first load, how long "connecting" may last before the banner shows
const STALE_S = 15; // a value older than this is shown struck through ("STALE"), never as current
const NIBP_STALE_S = 15 * 60; // NIBP is a spot measurement: stale only when no cuff reading for this long
const SESSION_FALLBACK_S = 12 * 3600; // "whole session" without an admitted session: the last 12 h
const MAX_HISTORY_S = 24 * 3600; // the longest window the history endpoint serves
const SETTINGS_REFRESH_MS = 15_000;
const HISTORY_RETRY_MS = 5000;
const TECH_TEXT = { no_data: "NO DATA", sensor_off: "SENSOR OFF", device_lost: "DEVICE LOST" };

const BAY = decodeURIComponent(location.pathname.split("/").filter(Boolean)[1] ?? "");
const bayPath = `/api/bays/${encodeURIComponent(BAY)}`;

const $ = (id) => document.getElementById(id);
const state = new LiveState();
const history = new BayHistory();
const charts = new Map(); // chart group key -> TrendChart
const alarmRows = new Map(); // alarm id -> {row, text, extra, ack}
const numericCells = new Map(); // vital -> {cell, value, age, tag}
const sessionPanel = new SessionPanel($("session"), { bay: BAY, serverNow: () => state.serverNow() });

let canAct = false;
let rawBay = null; // this bay as in the latest snapshot (session, profile)
let settings = null; // latest GET alarm-settings body
let range = "900"; // seconds as a string, or "session"
let loadedSince = Infinity; // history is loaded from here to now
let everLive = false;
let historyStarted = false;
let status = "connecting";
let lostSince = null; // server time when the live connection was lost (to backfill the gap)
let lastLive = 0; // server time of the newest live message
let pageError = "";

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function clockText(t) {
  return new Date(t * 1000).toLocaleTimeString([], { hour12: false });
}

function countdown(seconds) {
  const s = Math.max(0, Math.ceil(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

function formatAge(seconds) {
  if (!Number.isFinite(seconds)) return "";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  return `${Math.floor(s / 3600)} h`;
}

function showError(node, message) {
  node.textContent = message ?? "";
  node.hidden = !message;
}

function reasonOf(err) {
  if (err instanceof ApiError) return `Refused (${err.status}): ${err.detail}`;
  return `Request failed: ${err?.message ?? err}`;
}

/** Run an action with `button` disabled meanwhile; errors go to `errorEl`. Resolves to the reply or null. */
async function act(button, errorEl, call) {
  if (button) button.disabled = true;
  showError(errorEl, "");
  try {
    return await call();
  } catch (err) {
    showError(errorEl, reasonOf(err));
    return null;
  } finally {
    if (button) button.disabled = false;
  }
}

function setPageError(message) {
  pageError = message;
  showError($("page-error"), message);
}

// ---------------------------------------------------------------- header and connection

function renderHeader() {
  const name = rawBay?.name ?? BAY;
  $("bay-name").textContent = name;
  document.title = `bedside \u2014 ${name}`;
  const patient = $("patient");
  const s = state.bays.get(BAY)?.session; // state.js sessionSummary
  if (s) {
    const parts = [s.patient_initials || "patient", s.phase].filter(Boolean);
    if (Number.isFinite(s.start)) parts.push(`since ${clockText(s.start).slice(0, 5)}`);
    patient.textContent = parts.join(" \u00B7 ");
    patient.dataset.admitted = "true";
  } else {
    patient.textContent = "no patient admitted";
    patient.dataset.admitted = "false";
  }
}

function setStatus(s) {
  const was = status;
  status = s;
  document.body.dataset.connection = s;
  const conn = $("conn");
  conn.dataset.connection = s;
  conn.textContent = { live: "\u25CF LIVE", connecting: "\u25CC CONNECTING", disconnected: "\u2716 OFFLINE" }[s];
  if (s !== "live" && was === "live") lostSince = state.serverNow();
  if (s === "live") everLive = true;
  if (s === "live" && rawBay) {
    if (!historyStarted) {
      historyStarted = true;
      loadHistory(windowSince(), state.serverNow());
    } else if (lostSince !== null) {
      // back from a loss: fetch what happened meanwhile (the snapshot has only the latest values)
      loadHistory(Math.max(windowSince(), Math.min(lostSince, lastLive || lostSince) - 5), state.serverNow());
    }
    lostSince = null;
    loadSettings();
    sessionPanel.refresh(); // a step may have been taken while the link was down
  }
  showBanner();
}

function showBanner() {
  // Before the first connection, give it a moment; after a loss, show it at once.
  const banner = $("offline-banner");
  banner.hidden = status === "live" || (!everLive && performance.now() < OFFLINE_GRACE_MS);
  document.body.classList.toggle("offline", !banner.hidden);
  updateSound();
}

let sound = null;
function updateSound() {
  sound?.update(state, !$("offline-banner").hidden);
}

function onState(body) {
  state.applySnapshot(body);
  rawBay = (body.bays ?? []).find((b) => b.id === BAY) ?? null;
  if (!rawBay) {
    setPageError(`There is no bay "${BAY}" on this server.`);
    return;
  }
  if (pageError) setPageError("");
  if (Number.isFinite(body.audio_pause_s)) $("audio-pause").textContent = `Pause audio ${countdown(body.audio_pause_s)}`;
  const bay = state.bays.get(BAY);
  for (const [key, v] of Object.entries(bay.vitals)) history.addObservation(key, v.time, v.value);
  history.syncActive(rawBay.alarms ?? [], state.serverNow());
  renderHeader();
  renderAll();
}

function onMessage(msg) {
  if (msg.type === "heartbeat") {
    state.apply(msg);
    return;
  }
  if (msg.bay !== BAY) {
    // other bays are not shown here, but their alarms are heard: this page may be the station's screen now
    if (msg.type === "alarm" || msg.type === "technical") {
      state.apply(msg);
      updateSound();
    }
    return;
  }
  if (Number.isFinite(msg.time)) lastLive = Math.max(lastLive, msg.time);
  switch (msg.type) {
    case "obs":
      state.apply(msg);
      if (history.addObservation(msg.vital, msg.time, msg.value)) ensureChart(msg.vital);
      renderNumerics();
      break;
    case "technical":
      state.apply(msg);
      renderNumerics();
      break;
    case "alarm":
      state.apply(msg);
      history.alarmMessage(msg);
      renderAlarms();
      updateSound();
      break;
    case "settings": // limits or profile changed (on any screen): show the server's new ones
      loadSettings();
      break;
    case "annotation":
      if (history.addAnnotation(msg)) {
        renderAnnotations();
      }
      break;
    case "session": // a step of the infusion session, on this or another screen
      state.apply(msg);
      renderHeader();
      sessionPanel.onLive(msg);
      break;
    default:
      break;
  }
}

function renderAll() {
  renderNumerics();
  renderAlarms();
  renderAnnotations();
  for (const v of history.vitals()) ensureChart(v);
}

// ---------------------------------------------------------------- numerics and technical conditions

function renderNumerics() {
  const bay = state.bays.get(BAY);
  if (!bay) return;
  const now = state.serverNow();
  const box = $("numerics");
  const keys = VITAL_ORDER.filter((k) => bay.vitals[k]);
  for (const key of keys) {
    let c = numericCells.get(key);
    if (!c) {
      const cell = el("div", "num-cell");
      cell.dataset.vital = key;
      const head = el("div", "num-head");
      const tag = el("span", "num-tag");
      head.append(el("span", "num-label", vitalLabel(key)), tag);
      const value = el("span", "num-value", "---");
      const foot = el("div", "num-foot");
      const age = el("span", "num-age");
      foot.append(el("span", "num-unit", vitalUnit(key)), age);
      cell.append(head, value, foot);
      c = { cell, value, age, tag };
      numericCells.set(key, c);
      // keep catalogue order
      const next = [...numericCells.keys()].filter((k) => VITAL_ORDER.indexOf(k) > VITAL_ORDER.indexOf(key))
        .map((k) => numericCells.get(k).cell).find((n) => n.isConnected);
      box.insertBefore(cell, next ?? null);
    }
    const v = bay.vitals[key];
    // the same rule as the central view: a value that is not current shows no number, only why
    const status = valueStatus(bay, key, now, key.startsWith("nibp_") ? NIBP_STALE_S : STALE_S);
    const current = status.state === "current";
    c.value.textContent = current ? formatValue(key, v.value) : "---";
    c.age.textContent = current ? formatAge(now - v.time) : `no data for ${formatAge(now - v.time)}`;
    c.cell.dataset.state = current ? "current" : "stale";
    c.tag.textContent = current ? "" : status.reason;
    const alarm = sortedAlarms(bay).find((a) => a.vital === key);
    c.cell.dataset.alarm = alarm ? alarm.priority : "none";
  }
  const techList = $("technical");
  const items = [...bay.technical.values()];
  techList.replaceChildren(...items.map((t) => {
    const li = el("li", "tech", `${TECH_TEXT[t.condition] ?? t.condition.toUpperCase()} \u2014 ${t.device}` +
      `${t.vital ? ` (${vitalLabel(t.vital)})` : ""}${t.detail ? `: ${t.detail}` : ""}`);
    li.dataset.condition = t.condition;
    li.dataset.device = t.device;
    return li;
  }));
  techList.hidden = items.length === 0;
}

// ---------------------------------------------------------------- alarms and audio pause

function renderAlarms() {
  const bay = state.bays.get(BAY);
  if (!bay) return;
  const now = state.serverNow();
  const list = $("alarms");
  const alarms = sortedAlarms(bay);
  const ids = new Set(alarms.map((a) => a.id));
  for (const [id, r] of alarmRows) {
    if (!ids.has(id)) {
      r.row.remove();
      alarmRows.delete(id);
    }
  }
  let paused = null;
  alarms.forEach((a, i) => {
    let r = alarmRows.get(a.id);
    if (!r) {
      const row = el("li", "detail-alarm");
      row.dataset.alarmId = a.id;
      const text = el("span", "alarm-text");
      const extra = el("span", "alarm-extra");
      const ack = el("button", "action ack", "Acknowledge");
      ack.type = "button";
      ack.hidden = true;
      ack.addEventListener("click", () => acknowledge(a.id, ack));
      row.append(text, extra, ack);
      r = { row, text, extra, ack };
      alarmRows.set(a.id, r);
    }
    if (list.children[i] !== r.row) list.insertBefore(r.row, list.children[i] ?? null);
    r.row.dataset.priority = a.priority;
    r.row.dataset.acknowledged = String(Boolean(a.acknowledged));
    r.row.dataset.latched = String(Boolean(a.latched));
    r.text.textContent = `${SYMBOL[a.priority] ?? ""} ${a.message}`;
    const bits = [`since ${clockText(a.since)}`];
    if (a.acknowledged) bits.push(`ACK ${a.acknowledged_by ?? ""}`.trim());
    if (a.latched) bits.push("LATCHED");
    const pausedFor = Number.isFinite(a.paused_until) ? a.paused_until - now : 0;
    r.row.dataset.paused = String(pausedFor > 0);
    if (pausedFor > 0) {
      bits.push(`AUDIO PAUSED ${countdown(pausedFor)}`);
      paused = Math.max(paused ?? 0, a.paused_until);
    }
    if (a.escalation) bits.push(`ESCALATED ${a.escalation}`);
    r.extra.textContent = bits.join(" \u00B7 ");
    r.ack.hidden = !canAct || Boolean(a.acknowledged);
  });
  $("no-alarms").hidden = alarms.length > 0;

  const audio = $("audio-state");
  audio.dataset.paused = String(paused !== null);
  audio.textContent = paused !== null ? `\u{1F507} AUDIO PAUSED ${countdown(paused - now)}` : "";
  $("audio-pause").hidden = !canAct || paused !== null;
  $("audio-resume").hidden = !canAct || paused === null;
}

async function acknowledge(alarmId, button) {
  const reply = await act(button, $("alarm-error"),
    () => api("POST", `${bayPath}/alarms/${encodeURIComponent(alarmId)}/acknowledge`));
  applyEvents(reply);
}

/** An action's reply carries the engine's events (same shape as the websocket's): show them at once. */
function applyEvents(reply) {
  for (const ev of reply?.events ?? []) if (ev && ev.type === "alarm") onMessage(ev);
}

// ---------------------------------------------------------------- annotations

function annotationLabel(n) {
  const kind = ANNOTATION_KINDS[n.kind] ?? n.kind;
  if (n.kind === "note") return n.text || kind;
  return n.text ? `${kind}: ${n.text}` : kind;
}

function renderAnnotations() {
  const list = $("annotations");
  const items = history.annotationList();
  list.replaceChildren(...items.map((n) => {
    const li = el("li", "annotation");
    li.dataset.annotationId = String(n.id);
    li.dataset.kind = n.kind;
    li.append(el("time", "annotation-time", clockText(n.time)), el("span", "annotation-text", annotationLabel(n)),
      el("span", "annotation-who", n.who ? `\u2014 ${n.who}` : ""));
    return li;
  }));
  $("no-annotations").hidden = items.length > 0;
}

async function annotate(kind, text, button) {
  const reply = await act(button, $("annotate-error"), () => api("POST", `${bayPath}/annotations`, { kind, text }));
  if (reply && reply.id !== undefined && Number.isFinite(reply.time)) {
    if (history.addAnnotation(reply)) {
      renderAnnotations();
    }
  }
  return reply !== null;
}

// ---------------------------------------------------------------- trends

function windowSince() {
  const now = state.serverNow();
  let since;
  if (range === "session") {
    const start = state.bays.get(BAY)?.session?.start;
    since = Number.isFinite(start) ? start : now - SESSION_FALLBACK_S;
  } else {
    since = now - Number(range);
  }
  return Math.max(since, now - MAX_HISTORY_S + 60);
}

let historyLoads = 0; // requests in flight

async function loadHistory(since, until) {
  if (!(until > since)) return;
  const trends = $("trends");
  historyLoads += 1;
  trends.dataset.loading = "true";
  try {
    const body = await api("GET", `${bayPath}/history?since=${since.toFixed(3)}&until=${until.toFixed(3)}`);
    history.mergeHistory(body);
    loadedSince = Math.min(loadedSince, since);
    showError($("trends-error"), "");
    trends.dataset.loaded = "true";
    for (const v of history.vitals()) ensureChart(v);
    renderAnnotations();
    redrawCharts();
  } catch (err) {
    showError($("trends-error"), `History not available: ${err instanceof ApiError ? err.detail : err}`);
    // try again while live; what arrived live meanwhile is kept and merged
    setTimeout(() => { if (status === "live") loadHistory(since, state.serverNow()); }, HISTORY_RETRY_MS);
  } finally {
    historyLoads -= 1;
    trends.dataset.loading = String(historyLoads > 0);
  }
}

function ensureChart(vital) {
  const group = groupOf(vital);
  if (!group || charts.has(group.key)) return;
  const box = $("trends");
  const chart = new TrendChart(box, group, false);
  charts.set(group.key, chart);
  // charts in catalogue order; annotation labels on the top chart only
  const order = CHART_GROUPS.map((g) => g.key).filter((k) => charts.has(k));
  for (const k of order) box.append(charts.get(k).root);
  order.forEach((k, i) => { charts.get(k).showLabels = i === 0; });
  $("no-trends").hidden = true;
}

function redrawCharts() {
  if (!historyStarted) return;
  const now = state.serverNow();
  const since = windowSince();
  const periods = [...history.alarms.values()];
  const notes = history.annotationList();
  const effective = settings?.effective?.vitals ?? {};
  for (const chart of charts.values()) chart.update(history, since, now, effective, periods, notes, annotationLabel);
  $("no-trends").hidden = charts.size > 0;
  $("range-info").textContent = `${clockText(since)} \u2013 now`;
  // keep memory bounded: nothing older than the longest window is needed
  history.prune(now - MAX_HISTORY_S - 60);
}

function setRange(r) {
  range = r;
  for (const b of document.querySelectorAll("[data-range]")) b.setAttribute("aria-pressed", String(b.dataset.range === r));
  const since = windowSince();
  if (historyStarted && since < loadedSince - 1) loadHistory(since, Number.isFinite(loadedSince) ? loadedSince : state.serverNow());
  redrawCharts();
}

// ---------------------------------------------------------------- alarm limits and profile

async function loadSettings() {
  try {
    renderSettings(await api("GET", `${bayPath}/alarm-settings`));
    showError($("limits-error"), "");
  } catch (err) {
    showError($("limits-error"), `Alarm settings not available: ${err instanceof ApiError ? err.detail : err}`);
  }
}

function limitText(v) {
  return Number.isFinite(v) ? String(v) : "\u2014";
}

function renderSettings(s) {
  settings = s;
  $("profile-name").textContent = s.profile ?? "\u2014";
  $("profile-desc").textContent = s.effective?.description ?? "";
  const form = $("profile-form");
  form.hidden = !canAct;
  const select = form.elements.profile;
  if (document.activeElement !== select) {
    select.replaceChildren(...(s.profiles ?? []).map((p) => {
      const o = el("option", "", p);
      o.value = p;
      o.selected = p === s.profile;
      return o;
    }));
  }

  const eff = s.effective?.vitals ?? {};
  const bay = state.bays.get(BAY);
  const keys = VITAL_ORDER.filter((k) => eff[k] || bay?.vitals[k] || history.samples.get(k)?.length);
  const box = $("limit-rows");
  for (const row of [...box.children]) if (!keys.includes(row.dataset.vital)) row.remove();
  keys.forEach((key, i) => {
    let row = box.querySelector(`form[data-vital="${CSS.escape(key)}"]`);
    if (!row) {
      row = buildLimitRow(key);
    }
    if (box.children[i] !== row) box.insertBefore(row, box.children[i] ?? null);
    const lim = eff[key] ?? {};
    const over = s.overrides?.[key] ?? {};
    for (const which of ["low", "high"]) {
      row.querySelector(`[data-effective="${key}.${which}"]`).textContent = limitText(lim[which]);
      const input = row.elements[`${key}.${which}`];
      if (input && row.dataset.dirty !== "true") input.value = Number.isFinite(lim[which]) ? String(lim[which]) : "";
    }
    const overridden = "low" in over || "high" in over;
    row.dataset.overridden = String(overridden);
    row.querySelector(".limit-source").textContent = overridden ? "patient" : "profile";
    const reset = row.querySelector("[data-reset]");
    if (reset) reset.hidden = !overridden;
  });
}

function buildLimitRow(key) {
  const row = el("form", "limit-row");
  row.dataset.vital = key;
  row.noValidate = true;
  row.append(el("span", "limit-vital", vitalLabel(key)), el("span", "limit-unit", vitalUnit(key)));
  const now = el("span", "limit-now");
  const lo = el("span", "limit-eff");
  lo.dataset.effective = `${key}.low`;
  const hi = el("span", "limit-eff");
  hi.dataset.effective = `${key}.high`;
  now.append("low ", lo, " \u00B7 high ", hi, " ", el("span", "limit-source", "profile"));
  row.append(now);
  if (canAct) {
    const inputs = el("span", "limit-inputs");
    for (const which of ["low", "high"]) {
      const label = el("label", "limit-input");
      const input = el("input");
      input.type = "number";
      input.step = "any";
      input.name = `${key}.${which}`;
      input.setAttribute("aria-label", `${vitalLabel(key)} ${which} limit`);
      input.addEventListener("input", () => { row.dataset.dirty = "true"; });
      label.append(which, input);
      inputs.append(label);
    }
    const save = el("button", "action", "Set");
    save.type = "submit";
    const reset = el("button", "action secondary", "Profile value");
    reset.type = "button";
    reset.dataset.reset = "";
    reset.hidden = true;
    reset.addEventListener("click", () => resetLimits(key, row, reset));
    inputs.append(save, reset);
    row.append(inputs);
    row.addEventListener("submit", (ev) => {
      ev.preventDefault();
      saveLimits(key, row, save);
    });
  }
  const err = el("p", "error");
  err.setAttribute("role", "alert");
  err.hidden = true;
  row.append(err);
  return row;
}

/** Send the whole overrides table (PUT replaces it) with this vital's low/high changed as typed. */
async function saveLimits(key, row, button) {
  const errEl = row.querySelector("[role=alert]");
  const changes = {};
  for (const which of ["low", "high"]) {
    const input = row.elements[`${key}.${which}`];
    if (input.validity.badInput) {
      showError(errEl, `${vitalLabel(key)} ${which}: not a number`);
      return;
    }
    changes[which] = input.value.trim() === "" ? null : Number(input.value);
  }
  await putLimits(key, row, button, errEl, (entry, eff) => {
    for (const which of ["low", "high"]) {
      const v = changes[which];
      if (v === null) delete entry[which]; // empty: the profile's value
      else if (which in entry || v !== eff[which]) entry[which] = v; // unchanged profile values stay the profile's
    }
  });
}

async function resetLimits(key, row, button) {
  await putLimits(key, row, button, row.querySelector("[role=alert]"), (entry) => {
    delete entry.low;
    delete entry.high;
  });
}

/** Change this vital's entry of the patient's overrides with `edit(entry, effective)` and send the whole set
 *  (PUT replaces all of a bay's overrides), read fresh so another screen's change to another vital is kept. */
async function putLimits(key, row, button, errEl, edit) {
  const reply = await act(button, errEl, async () => {
    const fresh = await api("GET", `${bayPath}/alarm-settings`);
    const overrides = structuredClone(fresh.overrides ?? {});
    const entry = { ...(overrides[key] ?? {}) };
    edit(entry, fresh.effective?.vitals?.[key] ?? {});
    if (Object.keys(entry).length) overrides[key] = entry;
    else delete overrides[key];
    return api("PUT", `${bayPath}/alarm-settings`, { overrides });
  });
  if (reply) {
    row.dataset.dirty = "false";
    applyEvents(reply);
    if (reply.settings) renderSettings(reply.settings);
    else loadSettings();
  }
}

// ---------------------------------------------------------------- wiring

function wire() {
  for (const b of document.querySelectorAll("[data-range]")) b.addEventListener("click", () => setRange(b.dataset.range));
  $("audio-pause").addEventListener("click", async (ev) => {
    applyEvents(await act(ev.currentTarget, $("alarm-error"), () => api("POST", `${bayPath}/audio-pause`, { seconds: null })));
    renderAlarms();
  });
  $("audio-resume").addEventListener("click", async (ev) => {
    applyEvents(await act(ev.currentTarget, $("alarm-error"), () => api("POST", `${bayPath}/audio-resume`)));
    renderAlarms();
  });
  for (const b of document.querySelectorAll("#annotate [data-kind]")) {
    b.addEventListener("click", () => annotate(b.dataset.kind, "", b));
  }
  const noteForm = $("note-form");
  noteForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const input = noteForm.elements.text;
    const text = input.value.trim();
    if (!text) {
      showError($("annotate-error"), "Write the note first.");
      return;
    }
    if (await annotate("note", text, noteForm.querySelector("button"))) input.value = "";
  });
  $("profile-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const form = ev.currentTarget;
    const reply = await act(form.querySelector("button"), form.querySelector("[role=alert]"),
      () => api("PUT", `${bayPath}/alarm-settings`, { profile: form.elements.profile.value }));
    if (reply) {
      applyEvents(reply);
      if (reply.settings) renderSettings(reply.settings);
      else loadSettings();
    }
  });
}

function tick() {
  const now = state.serverNow();
  $("clock").textContent = clockText(now);
  renderNumerics(); // ages move with the clock
  renderAlarms(); // pause countdowns
  redrawCharts(); // the window slides: at most once a second
  showBanner();
}

async function main() {
  wire();
  renderHeader();
  setStatus("connecting");
  if (!BAY) {
    setPageError("No bay given: open /bay/<bay id>.");
    return;
  }
  try {
    const who = await me();
    canAct = allows(who.role, "nurse");
    $("who").textContent = `${who.name ?? ""} \u00B7 ${who.role}`;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return; // on the way to /login
    canAct = false;
    $("who").textContent = "";
  }
  document.body.dataset.role = canAct ? "nurse" : "viewer";
  $("annotate").hidden = !canAct;
  sessionPanel.start();
  sound = pageSound($("sound-enable"), $("sound-ind"));
  new LiveConnection({
    onState,
    onMessage,
    onStatus: setStatus,
    onUnauthorized: () => location.replace(`/login?next=${encodeURIComponent(location.pathname)}`),
  }).start();
  setInterval(loadSettings, SETTINGS_REFRESH_MS);
  tick();
  setInterval(tick, 1000);
}

main();
