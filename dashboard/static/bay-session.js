// The bay page's infusion session panel (#session): admit a patient, then take the session through its phases
// (admitted -> baseline -> infusion -> recovery -> closed) with the checklist, the dose record, the modified
// Aldrete score, pain scores, discharge readiness, discharge (or its override with a reason) and ending early.
//
// The server decides everything (monitor/infusion.py behind dashboard/sessions_api.py): which step is allowed
// now, the total dose and rate, the dose given, what stands between the patient and discharge. The panel shows
// what it said and asks it to act; a refusal is shown next to the control with the server's reason. The admit
// form's total/rate line is only a preview of the prescription as typed; the server's figures replace it.
//
// For tests: #session[data-phase] = "none" | "admitted" | "baseline" | "infusion" | "recovery" | "closed";
// #session-readiness li, one per unmet discharge item (in recovery); [data-action="admit|checklist|baseline|
// start|rate|pause|resume|stop|recovery|aldrete|pain|discharge|override|end"] on the buttons; #session-error,
// the last error, placed after the row of the control that failed; checklist items [data-item][data-missing].
// A viewer's buttons are disabled and, like the bay page's other nurse-only controls, not shown (bay.css); the
// server refuses a viewer's step anyway.

import { ApiError, allows, api, me } from "./api.js";
import { formatValue, vitalLabel } from "./bay-vitals.js";

const REFRESH_MS = 10_000; // readiness and dose given are re-read this often (and after every step)

// Modified Aldrete score (Aldrete 1995; SpO2 replaces colour), reference/alarm-standards.md §5.1, the mmHg
// version (docs/alarms.md compares with "Aldrete's ±20 mmHg"). Descriptions indexed by score 0, 1, 2.
const ALDRETE = [
  { key: "activity", label: "Activity",
    levels: ["moves 0 extremities", "moves 2 extremities", "moves 4 extremities voluntarily or on command"] },
  { key: "respiration", label: "Respiration",
    levels: ["apnoeic", "dyspnoea, shallow or limited breathing", "breathes deeply and coughs freely"] },
  { key: "circulation", label: "Circulation",
    levels: ["BP beyond \u00B1 50 mmHg of pre-anaesthetic level", "BP \u00B1 20\u201350 mmHg of pre-anaesthetic level",
      "BP \u00B1 20 mmHg of pre-anaesthetic level"] },
  { key: "consciousness", label: "Consciousness",
    levels: ["not responding", "arousable on calling", "fully awake"] },
  { key: "spo2", label: "O2 saturation",
    levels: ["SpO2 < 90 % even with O2", "needs O2 to maintain SpO2 > 90 %", "maintains SpO2 > 92 % on room air"] },
];

const CHECKLIST = [
  { key: "fasting_hours", label: "Fasting (hours)", missing: "fasting hours", type: "number" },
  { key: "escort_name", label: "Escort name", missing: "escort name", type: "text" },
  { key: "escort_phone", label: "Escort phone", missing: "escort phone", type: "tel" },
  { key: "consent", label: "Consent given", missing: "consent", type: "checkbox" },
  { key: "escort_confirmed", label: "Escort confirmed (needed for discharge)", type: "checkbox" },
];

const PHASE_TEXT = { admitted: "ADMITTED", baseline: "BASELINE", infusion: "INFUSION", recovery: "RECOVERY",
  closed: "CLOSED" };
const ACTION_TEXT = { start: "start", rate: "rate change", pause: "pause", resume: "resume", stop: "stop" };

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function button(action, text, cls = "action") {
  const b = el("button", cls, text);
  b.type = "button";
  b.dataset.action = action;
  return b;
}

function input(name, type, label, attrs = {}) {
  const i = el("input");
  i.name = name;
  i.type = type;
  i.setAttribute("aria-label", label);
  for (const [k, v] of Object.entries(attrs)) i.setAttribute(k, v);
  return i;
}

function field(labelText, control, cls = "session-field") {
  const label = el("label", cls);
  label.append(el("span", "session-field-label", labelText), control);
  return label;
}

function group(name, title) {
  const g = el("div", "session-group");
  g.dataset.group = name;
  if (title) g.append(el("h3", "session-group-title", title));
  return g;
}

function mg(v) {
  return Number.isFinite(v) ? String(Math.round(v * 100) / 100) : "\u2014";
}

function clockText(t) {
  return Number.isFinite(t) ? new Date(t * 1000).toLocaleTimeString([], { hour12: false }) : "\u2014";
}

function duration(seconds) {
  if (!Number.isFinite(seconds)) return "";
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

/** A number typed in `inputEl`: null when empty, NaN when not a number. */
function numberIn(inputEl) {
  if (inputEl.validity?.badInput) return NaN;
  const text = inputEl.value.trim();
  return text === "" ? null : Number(text);
}

/** The server's reason for a refusal: a string, {reason, unmet} (a refused discharge), or pydantic's list. */
function parseDetail(detail) {
  if (typeof detail !== "string") return detail;
  try {
    return JSON.parse(detail);
  } catch {
    return detail;
  }
}

function reasonOf(err) {
  if (!(err instanceof ApiError)) return `Request failed: ${err?.message ?? err}`;
  const d = parseDetail(err.detail);
  let text;
  if (typeof d === "string") text = d;
  else if (Array.isArray(d)) {
    text = d.map((e) => `${(e.loc ?? []).filter((p) => p !== "body").join(".")}: ${e.msg ?? "invalid"}`).join("; ");
  } else if (d && typeof d.reason === "string") text = d.reason;
  else text = String(err.detail);
  return `Refused (${err.status}): ${text}`;
}

export class SessionPanel {
  /** `root`: the #session section; `bay`: this page's bay id; `serverNow()`: server time in Unix seconds. */
  constructor(root, { bay, serverNow }) {
    this.root = root;
    this.bay = bay;
    this.serverNow = serverNow;
    this.bayPath = `/api/bays/${encodeURIComponent(bay)}`;
    this.canAct = false;
    this.roleKnown = false; // #session[data-role] is set once GET /api/me has answered
    this.active = false; // polling starts with the page's first refresh()
    this.session = null; // the open session (Session.to_json()), or null
    this.closed = null; // the last session seen closing on this page
    this.readiness = null; // unmet discharge items from the server (null: not known yet)
    this.given = null; // dose given so far, mg (from GET .../session or a step's reply)
    this.updates = 0; // counts session updates applied, so that an older GET reply is not applied over them
    this.busy = new Set(); // buttons with a request in flight
    this.dirty = new Set(); // forms edited since the server's values were filled in
    this.refused = false; // the last discharge was refused: show the override
    this.build();
    this.render();
  }

  // ------------------------------------------------------------------ building (once)

  build() {
    const r = this.root;
    r.replaceChildren();
    r.dataset.phase = "none";
    r.append(el("h2", "", "Session"));
    this.roleNote = el("p", "muted session-role", "View only: a nurse admits and records the session.");
    this.roleNote.hidden = true;
    this.noneNote = el("p", "muted", "No patient admitted.");
    this.noneNote.hidden = true;
    this.closedNote = el("p", "session-closed");
    this.closedNote.id = "session-closed";
    this.closedNote.hidden = true;
    r.append(this.roleNote, this.noneNote, this.closedNote);

    this.error = el("p", "error");
    this.error.id = "session-error";
    this.error.setAttribute("role", "alert");
    this.error.hidden = true;

    r.append(this.buildAdmit());

    this.head = el("div", "session-head");
    this.headLine = el("div", "session-patient");
    this.headLine.id = "session-patient";
    this.phaseLine = el("div", "session-phase");
    this.phaseLine.id = "session-phase";
    this.protocolLine = el("div", "session-protocol");
    this.protocolLine.id = "session-protocol";
    this.givenLine = el("div", "session-given");
    this.givenLine.id = "session-given";
    this.baselineLine = el("div", "session-baseline");
    this.baselineLine.id = "session-baseline";
    this.head.append(this.headLine, this.phaseLine, this.protocolLine, this.givenLine, this.baselineLine);
    r.append(this.head);

    r.append(this.buildPhaseSteps(), this.buildInfusion(), this.buildRecovery(), this.buildChecklist(),
      this.buildPain(), this.buildDoses(), this.buildEnd());
    this.openOnly = [this.head, this.checklistGroup, this.painGroup, this.dosesGroup, this.endGroup];
  }

  buildAdmit() {
    const g = group("admit", "Admit patient");
    const f = el("form", "session-form admit-form");
    f.id = "admit-form";
    f.noValidate = true;
    f.autocomplete = "off";
    const kind = el("select");
    kind.name = "series_kind";
    kind.setAttribute("aria-label", "Series");
    for (const [v, t] of [["induction", "Induction"], ["booster", "Booster"]]) {
      const o = el("option", "", t);
      o.value = v;
      kind.append(o);
    }
    this.seriesTotal = field("of n", input("series_total", "number", "Infusions in the induction series",
      { min: "1", max: "20", step: "1", value: "6", inputmode: "numeric" }));
    f.append(
      field("Patient id", input("patient_id", "text", "Patient id", { maxlength: "64" })),
      field("Initials", input("initials", "text", "Initials", { maxlength: "4" })),
      field("Weight (kg)", input("weight_kg", "number", "Weight in kg",
        { min: "20", max: "300", step: "0.1", inputmode: "decimal" })),
      field("Dose (mg/kg)", input("dose_mg_per_kg", "number", "Dose in mg per kg",
        { min: "0", max: "2", step: "0.05", value: "0.5", inputmode: "decimal" })),
      field("Planned (min)", input("planned_minutes", "number", "Planned minutes",
        { min: "10", max: "480", step: "1", value: "40", inputmode: "numeric" })),
      field("Series", kind),
      field("Infusion k", input("series_index", "number", "Number of this infusion in the series",
        { min: "1", step: "1", value: "1", inputmode: "numeric" })),
      this.seriesTotal,
    );
    this.admitPreview = el("output", "session-preview");
    this.admitPreview.id = "admit-preview";
    const admit = button("admit", "Admit patient");
    admit.type = "submit";
    const row = el("div", "session-row");
    row.append(this.admitPreview, admit);
    f.append(row);
    f.addEventListener("input", () => this.renderPreview());
    f.addEventListener("submit", (ev) => {
      ev.preventDefault();
      this.admit(admit);
    });
    this.admitForm = f;
    this.admitGroup = g;
    g.append(f);
    return g;
  }

  buildPhaseSteps() {
    const g = group("steps");
    this.baselineBtn = button("baseline", "Start baseline");
    this.baselineBtn.addEventListener("click", () => this.step(this.baselineBtn, "baseline", {}));
    this.baselineHelp = el("p", "muted", "The vitals from now until the infusion starts become the baseline.");
    const startRate = input("start_rate", "number", "Start rate in mg/h (empty: the protocol's)",
      { min: "0", max: "1000", step: "any", inputmode: "decimal" });
    this.startRate = startRate;
    this.startBtn = button("start", "Start infusion");
    this.startBtn.addEventListener("click", () => {
      const rate = numberIn(startRate);
      if (Number.isNaN(rate)) {
        this.showError(this.startBtn, "The start rate is not a number.");
        return;
      }
      const body = { action: "start" };
      if (rate !== null) body.rate_mg_per_h = rate;
      this.step(this.startBtn, "dose", body).then((ok) => { if (ok) startRate.value = ""; });
    });
    this.startHint = el("p", "session-hint");
    const row = el("div", "session-row");
    row.append(field("Rate (mg/h)", startRate, "session-field narrow"), this.startBtn);
    this.baselineRow = el("div", "session-row");
    this.baselineRow.append(this.baselineBtn, this.baselineHelp);
    this.startRow = row;
    g.append(this.baselineRow, row, this.startHint);
    this.stepsGroup = g;
    return g;
  }

  buildInfusion() {
    const g = group("infusion", "Infusion");
    this.runningLine = el("p", "session-running");
    this.runningLine.id = "session-running";
    const rate = input("rate", "number", "New rate in mg/h", { min: "0", max: "1000", step: "any", inputmode: "decimal" });
    const note = input("dose_note", "text", "Note for the dose record (optional)", { maxlength: "500" });
    this.rateInput = rate;
    this.noteInput = note;
    this.rateBtn = button("rate", "Set rate");
    this.pauseBtn = button("pause", "Pause");
    this.resumeBtn = button("resume", "Resume");
    this.stopBtn = button("stop", "Stop infusion", "action warn");
    this.recoveryBtn = button("recovery", "Start recovery");
    this.rateBtn.addEventListener("click", () => {
      const v = numberIn(rate);
      if (v === null || Number.isNaN(v)) {
        this.showError(this.rateBtn, "Enter the new rate in mg/h.");
        return;
      }
      this.dose(this.rateBtn, { action: "rate", rate_mg_per_h: v }).then((ok) => { if (ok) rate.value = ""; });
    });
    this.pauseBtn.addEventListener("click", () => this.dose(this.pauseBtn, { action: "pause" }));
    this.resumeBtn.addEventListener("click", () => this.dose(this.resumeBtn, { action: "resume" }));
    this.stopBtn.addEventListener("click", () => this.dose(this.stopBtn, { action: "stop" }));
    this.recoveryBtn.addEventListener("click", () => this.step(this.recoveryBtn, "recovery", {}));
    const rateRow = el("div", "session-row");
    rateRow.append(field("Rate (mg/h)", rate, "session-field narrow"), this.rateBtn);
    const ctl = el("div", "session-row");
    ctl.append(this.pauseBtn, this.resumeBtn, this.stopBtn);
    const noteRow = el("div", "session-row");
    noteRow.append(field("Note", note, "session-field wide"));
    const rec = el("div", "session-row");
    rec.append(this.recoveryBtn, el("span", "muted", "stops the infusion if it is still running"));
    g.append(this.runningLine, rateRow, ctl, noteRow, rec);
    this.infusionGroup = g;
    return g;
  }

  buildRecovery() {
    const g = group("recovery", "Recovery and discharge");
    this.recoveryLine = el("p", "session-running");

    // modified Aldrete
    const f = el("form", "session-form aldrete-form");
    f.id = "aldrete-form";
    f.noValidate = true;
    const title = el("div", "aldrete-title");
    this.aldreteTotal = el("span", "aldrete-total");
    this.aldreteTotal.id = "aldrete-total";
    this.aldreteStored = el("span", "muted");
    title.append(el("strong", "", "Modified Aldrete score "), this.aldreteTotal, " ", this.aldreteStored);
    f.append(title);
    for (const item of ALDRETE) {
      const fs = el("fieldset", "aldrete-item");
      fs.dataset.item = item.key;
      fs.append(el("legend", "", item.label));
      for (const score of [2, 1, 0]) {
        const choice = el("label", "aldrete-choice");
        const radio = input(item.key, "radio", `${item.label} ${score}: ${item.levels[score]}`, { value: String(score) });
        choice.append(radio, el("span", "aldrete-score", String(score)), el("span", "aldrete-text", item.levels[score]));
        fs.append(choice);
      }
      f.append(fs);
    }
    const save = button("aldrete", "Save Aldrete score");
    save.type = "submit";
    f.append(save);
    f.addEventListener("change", () => {
      this.dirty.add("aldrete");
      this.renderAldreteTotal();
    });
    f.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const scores = {};
      for (const item of ALDRETE) {
        const v = f.elements[item.key].value;
        if (v === "") {
          this.showError(save, `Aldrete: choose a score for ${item.label}.`);
          return;
        }
        scores[item.key] = Number(v);
      }
      this.step(save, "aldrete", scores).then((ok) => { if (ok) this.dirty.delete("aldrete"); this.render(); });
    });
    this.aldreteForm = f;

    // readiness, discharge, override
    const ready = el("div", "session-readiness-box");
    ready.append(el("strong", "", "Discharge readiness"));
    this.readyList = el("ul", "session-readiness");
    this.readyList.id = "session-readiness";
    this.readyOk = el("p", "session-ready", "Ready for discharge: every criterion is met.");
    this.readyOk.id = "session-ready";
    this.readyUnknown = el("p", "muted", "Asking the server \u2026");
    ready.append(this.readyList, this.readyOk, this.readyUnknown);
    this.dischargeBtn = button("discharge", "Discharge", "action go");
    this.dischargeBtn.addEventListener("click", () => this.discharge(this.dischargeBtn, ""));
    const drow = el("div", "session-row");
    drow.append(this.dischargeBtn);
    const over = el("form", "session-row session-override");
    over.id = "session-override";
    over.noValidate = true;
    const reason = input("override_reason", "text", "Reason to discharge although not every criterion is met",
      { maxlength: "1000", placeholder: "Reason for the override" });
    const overBtn = button("override", "Override with reason", "action warn");
    overBtn.type = "submit";
    over.append(field("Override reason", reason, "session-field wide"), overBtn);
    over.addEventListener("submit", (ev) => {
      ev.preventDefault();
      if (!reason.value.trim()) {
        this.showError(overBtn, "Give the reason for discharging although not every criterion is met.");
        return;
      }
      this.discharge(overBtn, reason.value.trim());
    });
    this.overrideForm = over;
    g.append(this.recoveryLine, f, ready, drow, over);
    this.recoveryGroup = g;
    return g;
  }

  buildChecklist() {
    const g = group("checklist", "Checklist");
    const f = el("form", "session-form checklist-form");
    f.id = "checklist-form";
    f.noValidate = true;
    f.autocomplete = "off";
    this.checkItems = new Map();
    for (const item of CHECKLIST) {
      const attrs = item.type === "number" ? { min: "0", max: "72", step: "0.5", inputmode: "decimal" }
        : item.type === "checkbox" ? {} : { maxlength: item.type === "tel" ? "40" : "200" };
      const control = input(item.key, item.type, item.label, attrs);
      const label = el("label", `check-item check-${item.type}`);
      label.dataset.item = item.key;
      label.dataset.missing = "true";
      if (item.type === "checkbox") label.append(control, el("span", "session-field-label", item.label));
      else label.append(el("span", "session-field-label", item.label), control);
      const mark = el("span", "check-mark", "MISSING");
      label.append(mark);
      this.checkItems.set(item.key, label);
      f.append(label);
    }
    const save = button("checklist", "Save checklist");
    save.type = "submit";
    f.append(save);
    f.addEventListener("input", () => this.dirty.add("checklist"));
    f.addEventListener("change", () => this.dirty.add("checklist"));
    f.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const body = {};
      const fasting = numberIn(f.elements.fasting_hours);
      if (Number.isNaN(fasting)) {
        this.showError(save, "Fasting hours: not a number.");
        return;
      }
      if (fasting !== null) body.fasting_hours = fasting;
      body.escort_name = f.elements.escort_name.value.trim();
      body.escort_phone = f.elements.escort_phone.value.trim();
      body.consent = f.elements.consent.checked;
      body.escort_confirmed = f.elements.escort_confirmed.checked;
      this.step(save, "checklist", body).then((ok) => {
        if (ok) {
          this.dirty.delete("checklist");
          this.render();
        }
      });
    });
    this.checklistForm = f;
    this.checklistGroup = g;
    g.append(f);
    return g;
  }

  buildPain() {
    const g = group("pain", "Pain (0\u201310)");
    const f = el("form", "session-row pain-form");
    f.id = "pain-form";
    f.noValidate = true;
    for (const [name, text] of [["before", "Before"], ["after", "After"]]) {
      const s = el("select");
      s.name = name;
      s.setAttribute("aria-label", `Pain ${name} (0 to 10)`);
      const none = el("option", "", "\u2014");
      none.value = "";
      s.append(none);
      for (let i = 0; i <= 10; i += 1) {
        const o = el("option", "", String(i));
        o.value = String(i);
        s.append(o);
      }
      f.append(field(text, s, "session-field narrow"));
    }
    const save = button("pain", "Save pain scores");
    save.type = "submit";
    f.append(save);
    f.addEventListener("change", () => this.dirty.add("pain"));
    f.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const body = {};
      for (const name of ["before", "after"]) if (f.elements[name].value !== "") body[name] = Number(f.elements[name].value);
      if (!Object.keys(body).length) {
        this.showError(save, "Choose a pain score first.");
        return;
      }
      this.step(save, "pain", body).then((ok) => {
        if (ok) {
          this.dirty.delete("pain");
          this.render();
        }
      });
    });
    this.painForm = f;
    this.painGroup = g;
    g.append(f);
    return g;
  }

  buildDoses() {
    const g = group("doses", "Dose record");
    const table = el("table", "session-doses");
    table.id = "session-doses";
    const head = el("tr");
    for (const h of ["Time", "Action", "Rate (mg/h)", "Who", "Note"]) head.append(el("th", "", h));
    const thead = el("thead");
    thead.append(head);
    this.doseBody = el("tbody");
    table.append(thead, this.doseBody);
    this.noDoses = el("p", "muted", "No infusion yet.");
    g.append(table, this.noDoses);
    this.doseTable = table;
    this.dosesGroup = g;
    return g;
  }

  buildEnd() {
    const g = group("end");
    const f = el("form", "session-row end-form");
    f.id = "end-form";
    f.noValidate = true;
    const reason = input("end_reason", "text", "Reason for ending the session early",
      { maxlength: "1000", placeholder: "Reason (required)" });
    const end = button("end", "End session early", "action danger");
    end.type = "submit";
    f.append(field("End early", reason, "session-field wide"), end);
    f.addEventListener("submit", (ev) => {
      ev.preventDefault();
      if (!reason.value.trim()) {
        this.showError(end, "Give the reason for ending the session early.");
        return;
      }
      this.step(end, "end", { reason: reason.value.trim() }).then((ok) => { if (ok) reason.value = ""; });
    });
    this.endForm = f;
    this.endGroup = g;
    g.append(f);
    return g;
  }

  // ------------------------------------------------------------------ data in

  /** Ask who is logged in (for the buttons) and keep the session fresh once the page has called refresh() (it
   *  does when the live connection is up and the bay exists, so an unknown bay is never asked for). */
  async start() {
    try {
      const who = await me();
      this.canAct = allows(who.role, "nurse");
    } catch {
      this.canAct = false;
    }
    this.roleKnown = true;
    this.render();
    setInterval(() => { if (this.active) this.refresh(); }, REFRESH_MS);
    setInterval(() => this.renderTimes(), 1000);
  }

  /** GET the bay's open session with its readiness and dose given (applied unless a newer update came meanwhile). */
  async refresh() {
    this.active = true;
    const seen = this.updates;
    let body;
    try {
      body = await api("GET", `${this.bayPath}/session`);
    } catch {
      return; // the connection banner says when the server is away; the next refresh tries again
    }
    if (seen !== this.updates) return; // a step's reply or a live message is newer; it asked again itself
    this.apply(body.session ?? null, body, false);
  }

  /** A live `session` message of this bay (any screen's step): show it at once, then re-read the readiness. */
  onLive(msg) {
    if (!msg || msg.bay !== this.bay || !msg.session) return;
    this.apply(msg.session, null, true);
  }

  /** Show `session` (Session JSON; closed or null when the bay has none). `status`: {readiness, dose_given_mg}
   *  when known. `reread`: ask the server for the readiness and dose given. */
  apply(session, status, reread) {
    this.updates += 1;
    const was = this.session;
    if (session && session.phase === "closed") {
      if (!was || was.id === session.id) this.session = null;
      this.closed = session;
    } else {
      this.session = session;
    }
    const now = this.session;
    if (!now || !was || now.id !== was.id) this.resetForms();
    else if (was.phase !== now.phase) this.refused = false;
    if (status) {
      this.readiness = Array.isArray(status.readiness) ? status.readiness : null;
      this.given = Number.isFinite(status.dose_given_mg) ? status.dose_given_mg : null;
    } else if (!now || !was || now.id !== was.id) {
      this.readiness = null;
      this.given = null;
    }
    this.render();
    if (reread && this.session) this.refresh();
  }

  resetForms() {
    this.dirty.clear();
    this.refused = false;
    this.readiness = null;
    this.given = null;
    for (const f of [this.checklistForm, this.aldreteForm, this.painForm, this.overrideForm, this.endForm]) f.reset();
    this.rateInput.value = "";
    this.noteInput.value = "";
    this.startRate.value = "";
  }

  // ------------------------------------------------------------------ actions

  setError(message) {
    this.error.textContent = message ?? "";
    this.error.hidden = !message;
  }

  /** Show `message` as the last error, right after the row (or form) of the control that failed. */
  showError(control, message) {
    const row = control?.closest(".session-row, .session-form");
    if (row && this.root.contains(row)) {
      if (row.nextElementSibling !== this.error) row.after(this.error);
    } else if (this.error.parentElement !== this.root) {
      this.root.append(this.error);
    }
    this.setError(message);
  }

  /** Run `call` with `btn` disabled meanwhile; a refusal is shown by `btn`. Resolves to the reply or null. */
  async run(btn, call) {
    this.busy.add(btn);
    btn.disabled = true;
    this.setError("");
    try {
      return await call();
    } catch (err) {
      this.showError(btn, reasonOf(err));
      return null;
    } finally {
      this.busy.delete(btn);
      btn.disabled = !this.canAct;
    }
  }

  /** POST one step of the open session; the reply (the session, readiness, dose given) is shown at once. */
  async step(btn, name, body) {
    const s = this.session;
    if (!s) {
      this.showError(btn, "No open session.");
      return false;
    }
    const reply = await this.run(btn, () => api("POST", `/api/sessions/${encodeURIComponent(s.id)}/${name}`, body));
    if (reply?.session) this.apply(reply.session, reply.session.phase === "closed" ? null : reply, false);
    return Boolean(reply);
  }

  async dose(btn, body) {
    const note = this.noteInput.value.trim();
    const ok = await this.step(btn, "dose", note ? { ...body, note } : body);
    if (ok) this.noteInput.value = "";
    return ok;
  }

  async discharge(btn, reason) {
    const s = this.session;
    if (!s) return;
    this.busy.add(btn);
    btn.disabled = true;
    this.setError("");
    try {
      const reply = await api("POST", `/api/sessions/${encodeURIComponent(s.id)}/discharge`,
        reason ? { override_reason: reason } : {});
      if (reply?.session) this.apply(reply.session, null, false);
    } catch (err) {
      const d = err instanceof ApiError ? parseDetail(err.detail) : null;
      if (err instanceof ApiError && err.status === 409 && d && Array.isArray(d.unmet)) {
        this.refused = true; // the reasons are the readiness list; the override appears
        this.readiness = d.unmet;
        this.updates += 1;
        this.render();
      }
      this.showError(btn, reasonOf(err));
    } finally {
      this.busy.delete(btn);
      btn.disabled = !this.canAct;
    }
  }

  async admit(btn) {
    const f = this.admitForm.elements;
    const body = { patient_id: f.patient_id.value.trim(), initials: f.initials.value.trim() };
    if (!body.patient_id) return this.showError(btn, "Enter the patient id.");
    if (!body.initials) return this.showError(btn, "Enter the patient's initials.");
    const numbers = [["weight_kg", "the weight (kg)"], ["dose_mg_per_kg", "the dose (mg/kg)"],
      ["planned_minutes", "the planned minutes"], ["series_index", "the infusion's number in the series"]];
    const kind = f.series_kind.value;
    if (kind === "induction") numbers.push(["series_total", "the length of the induction series"]);
    for (const [name, what] of numbers) {
      const v = numberIn(f[name]);
      if (v === null || Number.isNaN(v)) return this.showError(btn, `Enter ${what}.`);
      body[name] = v;
    }
    body.series_kind = kind;
    const reply = await this.run(btn, () => api("POST", `${this.bayPath}/session`, body));
    if (reply?.session) {
      this.admitForm.reset();
      this.apply(reply.session, reply, false);
    }
    return undefined;
  }

  // ------------------------------------------------------------------ rendering

  render() {
    const s = this.session;
    const phase = s ? s.phase : (this.closed ? "closed" : "none");
    this.root.dataset.phase = phase;
    if (this.roleKnown) this.root.dataset.role = this.canAct ? "nurse" : "viewer";
    this.roleNote.hidden = this.canAct;

    // a viewer has nothing to admit with: the form is the nurse's (its button is disabled for a viewer anyway)
    this.admitGroup.hidden = Boolean(s) || !this.canAct;
    this.noneNote.hidden = Boolean(s) || this.canAct || !this.roleKnown;
    this.renderPreview();
    this.renderClosed();
    for (const part of this.openOnly) part.hidden = !s;
    this.stepsGroup.hidden = !s || !["admitted", "baseline"].includes(s.phase);
    this.infusionGroup.hidden = !s || s.phase !== "infusion";
    this.recoveryGroup.hidden = !s || s.phase !== "recovery";
    if (s) {
      this.renderHead(s);
      this.renderSteps(s);
      this.renderInfusion(s);
      this.renderRecovery(s);
      this.renderChecklist(s);
      this.renderPain(s);
      this.renderDoses(s);
    }
    this.renderTimes();
    this.renderEnabled();
  }

  renderEnabled() {
    for (const c of this.root.querySelectorAll("button, input, select")) {
      c.disabled = !this.canAct || this.busy.has(c);
    }
  }

  renderPreview() {
    const f = this.admitForm.elements;
    this.seriesTotal.hidden = f.series_kind.value !== "induction";
    const weight = numberIn(f.weight_kg);
    const dose = numberIn(f.dose_mg_per_kg);
    const minutes = numberIn(f.planned_minutes);
    // the same arithmetic as monitor/infusion.py Protocol (a preview only: the server's figures are the record)
    const total = weight > 0 && dose > 0 ? Math.round(dose * weight * 100) / 100 : NaN;
    const rate = Number.isFinite(total) && minutes > 0 ? Math.round((total / (minutes / 60)) * 100) / 100 : NaN;
    this.admitPreview.dataset.total = Number.isFinite(total) ? String(total) : "";
    this.admitPreview.dataset.rate = Number.isFinite(rate) ? String(rate) : "";
    this.admitPreview.textContent = `Total ${mg(total)} mg \u00B7 rate ${mg(rate)} mg/h`;
  }

  renderClosed() {
    const c = this.closed;
    this.closedNote.hidden = !c || Boolean(this.session);
    if (!c) return;
    const d = c.discharge ?? {};
    const what = d.outcome === "ended" ? `ended early (${d.reason})`
      : d.reason ? `discharged with override (${d.reason})` : "discharged";
    this.closedNote.textContent = `Last session: ${c.initials} (${c.patient_id}) ${what} at ${clockText(d.time)}`
      + `${d.who ? ` by ${d.who}` : ""}.`;
  }

  renderHead(s) {
    this.headLine.textContent = `${s.initials} \u00B7 ${s.patient_id} \u00B7 ${s.series_label}`;
    const p = s.protocol ?? {};
    this.protocolLine.textContent = `${mg(p.dose_mg_per_kg)} mg/kg \u00B7 ${mg(s.weight_kg)} kg \u00B7 `
      + `total ${mg(s.total_mg)} mg over ${mg(p.planned_minutes)} min \u00B7 rate ${mg(s.rate_mg_per_h)} mg/h`;
    this.givenLine.dataset.mg = Number.isFinite(this.given) ? String(this.given) : "";
    this.givenLine.textContent = `Given so far: ${Number.isFinite(this.given) ? `${mg(this.given)} mg` : "\u2026"}`;
    this.givenLine.hidden = !s.doses?.length;
    const base = Object.entries(s.baseline ?? {});
    this.baselineLine.hidden = !base.length && s.phase !== "baseline";
    this.baselineLine.textContent = base.length
      ? `Baseline: ${base.map(([k, v]) => `${vitalLabel(k)} ${formatValue(k, v)}`).join(" \u00B7 ")}`
      : "Baseline: being measured until the infusion starts";
  }

  renderSteps(s) {
    this.baselineRow.hidden = s.phase !== "admitted";
    const missing = s.checklist?.missing ?? [];
    this.startHint.hidden = !missing.length;
    this.startHint.textContent = missing.length ? `Before the infusion the checklist needs: ${missing.join(", ")}.` : "";
    this.startRate.placeholder = mg(s.rate_mg_per_h);
    this.startBtn.textContent = `Start infusion (${mg(s.rate_mg_per_h)} mg/h unless given)`;
  }

  lastDose(s) {
    return s.doses?.length ? s.doses[s.doses.length - 1] : null;
  }

  renderInfusion(s) {
    const last = this.lastDose(s);
    const running = last && ["start", "rate", "resume"].includes(last.action);
    const paused = last?.action === "pause";
    const stopped = last?.action === "stop";
    this.runningLine.dataset.state = running ? "running" : paused ? "paused" : stopped ? "stopped" : "none";
    this.runningLine.textContent = running ? `RUNNING at ${mg(last.rate_mg_per_h)} mg/h since ${clockText(last.time)}`
      : paused ? `PAUSED since ${clockText(last.time)}` : stopped ? `STOPPED at ${clockText(last.time)}` : "";
    this.rateBtn.hidden = !running;
    this.rateInput.closest("label").hidden = !running;
    this.pauseBtn.hidden = !running;
    this.resumeBtn.hidden = !paused;
    this.stopBtn.hidden = stopped || !last;
  }

  renderRecovery(s) {
    this.recoveryLine.textContent = `Recovery since ${clockText(s.recovery_started)}`;
    const a = s.aldrete;
    if (a && !this.dirty.has("aldrete")) {
      for (const item of ALDRETE) this.aldreteForm.elements[item.key].value = String(a[item.key]);
    }
    this.aldreteStored.textContent = a ? `(saved ${a.total}/10 at ${clockText(a.time)} by ${a.who})` : "(not entered)";
    this.renderAldreteTotal();
    const list = this.readiness;
    const inRecovery = s.phase === "recovery";
    const items = inRecovery && Array.isArray(list) ? list : [];
    this.readyList.replaceChildren(...items.map((u) => el("li", "", u)));
    this.readyOk.hidden = !(inRecovery && Array.isArray(list) && list.length === 0);
    this.readyUnknown.hidden = Array.isArray(list);
    this.dischargeBtn.dataset.ready = String(Array.isArray(list) && list.length === 0);
    this.overrideForm.hidden = !this.refused;
  }

  renderAldreteTotal() {
    let total = 0;
    let complete = true;
    for (const item of ALDRETE) {
      const v = this.aldreteForm.elements[item.key].value;
      if (v === "") complete = false;
      else total += Number(v);
    }
    this.aldreteTotal.textContent = complete ? `${total}/10` : "\u2014/10";
  }

  renderChecklist(s) {
    const c = s.checklist ?? {};
    const missing = new Set(c.missing ?? []);
    const f = this.checklistForm.elements;
    for (const item of CHECKLIST) {
      const label = this.checkItems.get(item.key);
      const isMissing = item.missing ? missing.has(item.missing) : !c.escort_confirmed;
      label.dataset.missing = String(isMissing);
      label.querySelector(".check-mark").textContent = isMissing ? (item.missing ? "MISSING" : "NOT YET") : "\u2713";
      if (!this.dirty.has("checklist")) {
        const v = c[item.key];
        if (item.type === "checkbox") f[item.key].checked = Boolean(v);
        else f[item.key].value = v === null || v === undefined ? "" : String(v);
      }
    }
  }

  renderPain(s) {
    if (this.dirty.has("pain")) return;
    const f = this.painForm.elements;
    f.before.value = Number.isInteger(s.pain_before) ? String(s.pain_before) : "";
    f.after.value = Number.isInteger(s.pain_after) ? String(s.pain_after) : "";
  }

  renderDoses(s) {
    const doses = s.doses ?? [];
    this.doseBody.replaceChildren(...doses.map((d) => {
      const tr = el("tr");
      tr.dataset.dose = d.action;
      tr.append(el("td", "", clockText(d.time)), el("td", "", ACTION_TEXT[d.action] ?? d.action),
        el("td", "num", mg(d.rate_mg_per_h)), el("td", "", d.who ?? ""), el("td", "", d.note ?? ""));
      return tr;
    }));
    this.doseTable.hidden = !doses.length;
    this.noDoses.hidden = doses.length > 0;
  }

  /** The texts that move with the clock: time in phase. */
  renderTimes() {
    const s = this.session;
    if (!s) return;
    const now = this.serverNow();
    this.phaseLine.dataset.phase = s.phase;
    this.phaseLine.textContent = `${PHASE_TEXT[s.phase] ?? s.phase} \u00B7 ${duration(now - s.phase_since)} in phase`
      + ` \u00B7 admitted ${clockText(s.admitted_at)}`;
  }
}
