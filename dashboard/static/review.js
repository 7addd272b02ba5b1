// The review page of one infusion session (/sessions/<id>), for the clinic's physician: the whole session on one
// time axis (review-chart.js), the server's statistics, the record (checklist, dose record, Aldrete score, pain,
// discharge), the alarms and annotations, the exports and (admin) deletion. Everything comes from the sessions
// API (GET /api/sessions/<id>/trace and /statistics); the page computes nothing clinical.
//
// For tests:
//   #review[data-session-id][data-phase][data-loaded="true"]   once everything has been drawn
//   #charts[data-loaded="true"][data-alarm-count][data-technical-count][data-zoomed]
//     figure.review-chart[data-group="infusion"|"heart"|"nibp"|"spo2"|"resp"|...] with data-points, data-bands,
//     data-baselines ("pr=72 spo2=97"), data-x-min/data-x-max (the x range shown: equal on every chart), a canvas
//   #stats[data-loaded="true"] [data-stat="<vital>.<min|max|median|count|outside>"] (data-value: the number as
//     the server sent it, "" when missing), [data-stat="peaks.<sbp|heart_rate>.<baseline|value|change|change_pct>"],
//     [data-stat="back_to_baseline.seconds"], [data-stat="alarms.<physiological|technical|total>.<priority|total>"],
//     [data-stat="infusion.<dose_given_mg|planned_mg|...>"]
//   #doses tr[data-dose=<action>]   one per dose event, in time order
//   #alarm-rows tr[data-alarm-id][data-priority]; #pain [data-pain-before] / [data-pain-after]
//   [data-export="csv|fhir|hl7|report"] links; #delete-session (admins only) -> #delete-confirm -> #delete-yes

import { allows, api, me } from "./api.js";
import { VITALS } from "./bay-vitals.js";
import {
  $, DASH, doseGiven, el, fmtChange, fmtDateTime, fmtDuration, fmtMg, fmtNum, fmtTime, isNum, link, outcomeOf,
  pathParam, reasonOf, showError, showWho,
} from "./review-common.js";
import {
  ChartGroup, REVIEW_GROUPS, annotationLabel, annotationMarks, doseLabel, doseMarks, infusionChart, phaseMarks,
  samplesOf, vitalChart,
} from "./review-chart.js";

const SYMBOL = { high: "!!!", medium: "!!", low: "!" };
const PRIORITIES = ["high", "medium", "low"];
const ALDRETE_ITEMS = [["activity", "Activity"], ["respiration", "Respiration"], ["circulation", "Circulation"],
  ["consciousness", "Consciousness"], ["spo2", "SpO2"]];
const ZOOM_MARGIN_S = 120;

const sessionId = pathParam("/sessions/");
const root = $("review");
let chartGroup = null;

function vitalName(key) {
  return VITALS[key]?.label ?? key;
}

function fact(dl, term, value, attrs = undefined) {
  const dd = el("dd", "", undefined, attrs);
  if (value instanceof Node) dd.append(value);
  else dd.textContent = value ?? DASH;
  dl.append(el("dt", "", term), dd);
  return dd;
}

// ---------- header ----------

function renderSummary(s, bayName) {
  document.title = `bedside — ${s.patient_id} ${s.initials} · ${fmtDateTime(s.admitted_at)}`;
  $("title").textContent = `Session ${fmtDateTime(s.admitted_at)}`;
  const who = $("summary-patient");
  who.replaceChildren(
    link(`/patients/${encodeURIComponent(s.patient_id)}`, s.patient_id, "patient-link", { title: "The patient's series" }),
    el("span", "initials", s.initials),
    el("span", "series", s.series_label),
    el("span", "outcome", outcomeOf(s), { "data-outcome": s.discharge?.outcome ?? "open" }),
  );
  const dl = $("summary-facts");
  dl.replaceChildren();
  fact(dl, "Bay", bayName);
  fact(dl, "Admitted", `${fmtDateTime(s.admitted_at)} by ${s.admitted_by}`);
  const d = s.discharge;
  fact(dl, d?.outcome === "ended" ? "Ended" : "Discharged", d ? `${fmtDateTime(d.time)} by ${d.who}` : "not yet (open)");
  fact(dl, "Length", d ? fmtDuration(d.time - s.admitted_at) : `${fmtDuration(Date.now() / 1000 - s.admitted_at)} so far`);
  fact(dl, "Weight", `${fmtNum(s.weight_kg)} kg`);
  fact(dl, "Protocol", `${fmtNum(s.protocol.dose_mg_per_kg, 2)} mg/kg over ${fmtNum(s.protocol.planned_minutes)} min = `
    + `${fmtMg(s.total_mg)} at ${fmtNum(s.rate_mg_per_h, 2)} mg/h`);
  fact(dl, "Infusion", s.infusion_started != null
    ? `${fmtTime(s.infusion_started, true)} \u2013 ${s.infusion_stopped != null ? fmtTime(s.infusion_stopped, true) : "running"}`
    : "not started");
  const base = Object.entries(s.baseline ?? {});
  fact(dl, "Baseline", base.length ? base.map(([k, v]) => `${vitalName(k)} ${fmtNum(v)}`).join(" \u00B7 ") : "none taken");

  if (s.phase !== "closed") {
    const note = $("summary-open");
    note.textContent = `Still open (phase ${s.phase}): this is the record up to ${fmtTime(Date.now() / 1000, true)}; `
      + "reload the page for newer readings.";
    note.hidden = false;
  }
  for (const a of document.querySelectorAll("[data-export]")) {
    a.href = `/api/sessions/${encodeURIComponent(s.id)}/export?format=${a.dataset.export}`;
  }
}

// ---------- deletion (admin; closed sessions only) ----------

function setUpDelete(s, role) {
  const button = $("delete-session");
  if (!allows(role, "admin")) {
    button.remove();
    $("delete-confirm").remove();
    return;
  }
  button.hidden = false;
  if (s.phase !== "closed") {
    button.disabled = true;
    button.title = "An open session cannot be deleted: end or discharge it first.";
  }
  const box = $("delete-confirm");
  $("delete-question").textContent = `Delete the session of ${s.patient_id} (${s.initials}) of `
    + `${fmtDateTime(s.admitted_at)} and its recorded trace? This cannot be undone; the deletion is audited.`;
  button.addEventListener("click", () => {
    box.hidden = false;
    $("delete-no").focus();
  });
  $("delete-no").addEventListener("click", () => {
    box.hidden = true;
    showError($("delete-error"), "");
  });
  $("delete-yes").addEventListener("click", async () => {
    const yes = $("delete-yes");
    yes.disabled = true;
    showError($("delete-error"), "");
    try {
      await api("DELETE", `/api/sessions/${encodeURIComponent(s.id)}`);
      location.assign(`/sessions?deleted=${encodeURIComponent(s.id)}`);
    } catch (err) {
      showError($("delete-error"), `Not deleted. ${reasonOf(err)}`);
      yes.disabled = false;
    }
  });
}

// ---------- charts ----------

function renderCharts(trace) {
  const box = $("charts");
  const s = trace.session;
  const start = trace.start;
  const end = Math.max(trace.end, start + 1);
  const samples = samplesOf(trace.trends);
  const marks = [...phaseMarks(s), ...doseMarks(s), ...annotationMarks(trace.annotations)];
  const alarms = (trace.alarms ?? []).filter((a) => isNum(a.start));
  const technical = (trace.technical ?? []).filter((t) => isNum(t.start));
  chartGroup = new ChartGroup(start, end);
  const ctx = { samples, session: s, alarms, technical, marks, start, end };
  infusionChart(box, chartGroup, ctx);
  for (const group of REVIEW_GROUPS) {
    if (group.always || group.vitals.some((v) => samples.has(v))) vitalChart(box, chartGroup, group, ctx);
  }
  const other = [...samples.keys()].filter((v) => !REVIEW_GROUPS.some((g) => g.vitals.includes(v)));
  if (other.length) box.append(el("p", "muted", `Also recorded, not charted: ${other.map(vitalName).join(", ")}`));

  const info = $("range-info");
  const reset = $("zoom-reset");
  const showRange = (min, max, whole) => {
    info.textContent = `${fmtTime(min, true)} \u2013 ${fmtTime(max, true)} (${fmtDuration(max - min)})`;
    reset.disabled = whole;
    box.dataset.zoomed = String(!whole);
    document.querySelector(".range-title").textContent = whole ? "Whole session" : "Zoomed";
  };
  chartGroup.onZoom = showRange;
  showRange(start, end, true);
  reset.addEventListener("click", () => chartGroup.reset());

  box.dataset.alarmCount = String(alarms.length);
  box.dataset.technicalCount = String(technical.length);
  box.dataset.loaded = "true";
}

// ---------- record tables ----------

function renderDoses(s) {
  const body = $("doses");
  const doses = s.doses ?? [];
  body.replaceChildren(...doses.map((d, i) => {
    const given = doseGiven({ doses: doses.slice(0, i) }, d.time);
    const tr = el("tr", "", undefined, { "data-dose": d.action });
    tr.append(el("td", "time", fmtTime(d.time, true)), el("td", "", doseLabel(d)),
      el("td", "num", fmtNum(d.rate_mg_per_h, 2)), el("td", "num", fmtMg(given)), el("td", "", d.who),
      el("td", "", d.note || ""));
    return tr;
  }));
  $("no-doses").hidden = doses.length > 0;
}

function renderAlarms(trace) {
  const alarms = [...(trace.alarms ?? [])].sort((a, b) => a.start - b.start);
  const end = trace.end;
  $("alarm-rows").replaceChildren(...alarms.map((a) => {
    const tr = el("tr", "alarm-row", undefined, { "data-alarm-id": a.id, "data-priority": a.priority, "data-kind": a.kind });
    const show = el("button", "action small", "Show");
    show.type = "button";
    show.title = "Zoom the charts to this alarm";
    show.addEventListener("click", () => {
      chartGroup?.zoom(a.start - ZOOM_MARGIN_S, (a.end ?? end) + ZOOM_MARGIN_S);
      $("charts").scrollIntoView({ block: "start", behavior: "smooth" });
    });
    const cell = el("td", "");
    cell.append(show);
    tr.append(el("td", "prio", `${SYMBOL[a.priority] ?? ""} ${a.priority}`),
      el("td", "", `${a.message ?? a.id}${a.kind === "technical" ? " (technical)" : ""}`),
      el("td", "time", fmtTime(a.start, true)), el("td", "time", a.end == null ? "active at the end" : fmtTime(a.end, true)),
      el("td", "num", fmtDuration((a.end ?? end) - a.start)), cell);
    return tr;
  }));
  $("no-alarms").hidden = alarms.length > 0;
  $("alarm-total").textContent = alarms.length ? `(${alarms.length})` : "";

  const tech = [...(trace.technical ?? [])].sort((a, b) => a.start - b.start);
  $("technical").replaceChildren(...tech.map((t) => el("li", "", `${fmtTime(t.start, true)} \u2013 `
    + `${t.end == null ? "end" : fmtTime(t.end, true)} \u00B7 ${t.condition.replaceAll("_", " ")} \u00B7 ${t.device}`
    + `${t.vital ? ` (${vitalName(t.vital)})` : ""}`, { "data-condition": t.condition })));
  $("no-technical").hidden = tech.length > 0;

  const notes = [...(trace.annotations ?? [])].sort((a, b) => a.time - b.time);
  $("annotations").replaceChildren(...notes.map((n) => {
    const li = el("li", "", undefined, { "data-kind": n.kind });
    li.append(el("span", "time", fmtTime(n.time, true)), " ", el("strong", "", annotationLabel(n)),
      el("span", "muted", ` \u2014 ${n.who}`));
    return li;
  }));
  $("no-annotations").hidden = notes.length > 0;
}

function renderChecklist(s) {
  const c = s.checklist ?? {};
  const dl = el("dl", "facts");
  fact(dl, "Fasting", isNum(c.fasting_hours) ? `${fmtNum(c.fasting_hours)} h` : DASH);
  fact(dl, "Escort", c.escort_name || DASH);
  fact(dl, "Escort phone", c.escort_phone || DASH);
  fact(dl, "Consent", c.consent ? "yes" : "no");
  fact(dl, "Escort confirmed", c.escort_confirmed ? "yes" : "no");
  const box = $("checklist");
  box.replaceChildren(dl);
  if (c.missing?.length) box.append(el("p", "warn", `Missing: ${c.missing.join(", ")}`));
}

function renderAldrete(s) {
  const a = s.aldrete;
  const box = $("aldrete");
  if (!a) {
    box.replaceChildren(el("p", "muted", "Not scored."));
    return;
  }
  const dl = el("dl", "facts");
  for (const [k, label] of ALDRETE_ITEMS) fact(dl, label, String(a[k]));
  fact(dl, "Total", `${a.total} / 10`, { "data-aldrete-total": a.total });
  box.replaceChildren(dl, el("p", "muted", `${fmtDateTime(a.time)} by ${a.who}`));
}

function renderDischarge(s, readiness) {
  const box = $("discharge");
  const d = s.discharge;
  if (!d) {
    box.replaceChildren(el("p", "muted", `Not yet: the session is open (phase ${s.phase}).`));
    if (Array.isArray(readiness)) {
      if (readiness.length) {
        box.append(el("p", "", "Not ready for discharge yet:"));
        const ul = el("ul", "unmet");
        ul.append(...readiness.map((u) => el("li", "", u)));
        box.append(ul);
      } else {
        box.append(el("p", "ok", "Ready for discharge."));
      }
    }
    return;
  }
  const dl = el("dl", "facts");
  fact(dl, "Outcome", outcomeOf(s), { "data-outcome": d.outcome });
  fact(dl, "When", fmtDateTime(d.time));
  fact(dl, "Who", d.who);
  box.replaceChildren(dl);
  if (d.unmet?.length) {
    box.append(el("p", "warn", "Discharged although these were not met:"));
    const ul = el("ul", "unmet");
    ul.append(...d.unmet.map((u) => el("li", "", u)));
    box.append(ul);
  } else if (d.outcome === "discharged") {
    box.append(el("p", "ok", "Every discharge criterion was met."));
  }
  if (d.reason) {
    box.append(el("p", "reason", `${d.outcome === "ended" ? "Reason for ending" : "Override reason"}: ${d.reason}`,
      { "data-reason": "" }));
  }
}

function renderPain(s, role) {
  const box = $("pain");
  const value = (v) => (Number.isInteger(v) ? String(v) : "");
  box.replaceChildren(
    el("span", "pain-score", Number.isInteger(s.pain_before) ? String(s.pain_before) : DASH,
      { "data-pain-before": value(s.pain_before), title: "before the infusion" }),
    el("span", "pain-arrow", "\u2192"),
    el("span", "pain-score", Number.isInteger(s.pain_after) ? String(s.pain_after) : DASH,
      { "data-pain-after": value(s.pain_after), title: "after the infusion" }),
  );
  const form = $("pain-form");
  if (s.phase === "closed" || !allows(role, "nurse")) {
    form.hidden = true;
    if (s.phase === "closed") box.append(el("p", "muted small", "Recorded with the closed session (read-only)."));
    return;
  }
  form.hidden = false;
  for (const name of ["before", "after"]) {
    const select = form.elements[name];
    if (!select.options.length) {
      select.append(el("option", "", "\u2014", { value: "" }));
      for (let i = 0; i <= 10; i++) select.append(el("option", "", String(i), { value: String(i) }));
    }
    select.value = value(name === "before" ? s.pain_before : s.pain_after);
  }
}

function setUpPainForm(getSession, setSession, role) {
  const form = $("pain-form");
  const err = form.querySelector(".error");
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = {};
    for (const name of ["before", "after"]) {
      const v = form.elements[name].value;
      if (v !== "") body[name] = Number(v);
    }
    if (!Object.keys(body).length) {
      showError(err, "Choose a score first.");
      return;
    }
    showError(err, "");
    const button = form.querySelector("button");
    button.disabled = true;
    try {
      const reply = await api("POST", `/api/sessions/${encodeURIComponent(getSession().id)}/pain`, body);
      setSession(reply.session);
      renderPain(reply.session, role);
    } catch (e) {
      showError(err, reasonOf(e));
    } finally {
      button.disabled = false;
    }
  });
}

// ---------- statistics ----------

function statCell(tag, key, value, text = undefined, cls = "num") {
  return el(tag, cls, text ?? (isNum(value) ? fmtNum(value) : DASH),
    { "data-stat": key, "data-value": isNum(value) ? String(value) : "" });
}

function table(head, rows, cls = "data-table stats-table") {
  const t = el("table", cls);
  const tr = el("tr");
  for (const h of head) tr.append(el("th", h.cls ?? "", h.text ?? h, { scope: "col" }));
  const thead = el("thead");
  thead.append(tr);
  const tbody = el("tbody");
  tbody.append(...rows);
  t.append(thead, tbody);
  return t;
}

function renderStats(st) {
  const body = $("stats-body");
  body.replaceChildren();

  const vitalRows = Object.entries(st.vitals ?? {}).map(([k, v]) => {
    const tr = el("tr", "", undefined, { "data-vital": k });
    const outside = st.time_outside_limits_s?.[k];
    tr.append(el("th", "", vitalName(k), { scope: "row" }),
      statCell("td", `${k}.count`, v.count, String(v.count ?? 0)),
      statCell("td", `${k}.min`, v.min), statCell("td", `${k}.median`, v.median), statCell("td", `${k}.max`, v.max),
      statCell("td", `${k}.outside`, outside, isNum(outside) ? fmtDuration(outside) : DASH));
    return tr;
  });
  body.append(el("h3", "", "Vitals"), table(["Vital", { text: "n", cls: "num" }, { text: "Min", cls: "num" },
    { text: "Median", cls: "num" }, { text: "Max", cls: "num" }, { text: "Outside limits", cls: "num" }], vitalRows));

  const peaks = st.peaks ?? {};
  const peakRows = [];
  for (const [key, label] of [["sbp", "Systolic BP"], ["heart_rate", "Heart rate"]]) {
    const p = peaks[key];
    const tr = el("tr", "", undefined, { "data-peak": key });
    const name = p?.vital && key === "heart_rate" ? `${label} (${vitalName(p.vital)})` : label;
    tr.append(el("th", "", name, { scope: "row" }),
      statCell("td", `peaks.${key}.baseline`, p?.baseline),
      statCell("td", `peaks.${key}.value`, p?.value),
      statCell("td", `peaks.${key}.time`, p?.time, isNum(p?.time) ? fmtTime(p.time, true) : DASH),
      statCell("td", `peaks.${key}.change`, p?.change, fmtChange(p?.change)),
      statCell("td", `peaks.${key}.change_pct`, p?.change_pct, fmtChange(p?.change_pct, " %")));
    peakRows.push(tr);
  }
  body.append(el("h3", "", "Response during the infusion"),
    table(["", { text: "Baseline", cls: "num" }, { text: "Peak", cls: "num" }, { text: "at", cls: "num" },
      { text: "Change", cls: "num" }, { text: "%", cls: "num" }], peakRows));
  if (!peaks.window) body.append(el("p", "muted small", "No infusion: no peaks."));

  const back = st.back_to_baseline ?? {};
  const backText = isNum(back.seconds) ? `${fmtDuration(back.seconds)} after the infusion stopped`
    : back.since == null ? "the infusion was not stopped" : "not back within the record (or no baseline)";
  const p = el("p", "back-to-baseline", undefined);
  p.append(`Back to within ${Math.round((back.fraction ?? 0.2) * 100)} % of baseline (SBP and heart rate): `,
    statCell("strong", "back_to_baseline.seconds", back.seconds, backText, ""));
  const by = Object.entries(back.by_vital ?? {});
  if (by.length) p.append(el("span", "muted", ` (${by.map(([k, v]) => `${vitalName(k)} ${isNum(v) ? fmtDuration(v) : DASH}`).join(", ")})`));
  body.append(p);

  const a = st.alarms ?? {};
  const alarmRows = ["physiological", "technical", "total"].map((kind) => {
    const tr = el("tr");
    tr.append(el("th", "", kind, { scope: "row" }),
      ...[...PRIORITIES, "total"].map((pr) => statCell("td", `alarms.${kind}.${pr}`, a[kind]?.[pr], String(a[kind]?.[pr] ?? 0))));
    return tr;
  });
  body.append(el("h3", "", "Alarms"), table(["", { text: "!!! high", cls: "num" }, { text: "!! medium", cls: "num" },
    { text: "! low", cls: "num" }, { text: "total", cls: "num" }], alarmRows));

  const inf = st.infusion ?? {};
  const dl = el("dl", "facts");
  fact(dl, "Dose given", statCell("span", "infusion.dose_given_mg", inf.dose_given_mg, fmtMg(inf.dose_given_mg), ""));
  fact(dl, "Planned", statCell("span", "infusion.planned_mg", inf.planned_mg,
    `${fmtMg(inf.planned_mg)} over ${fmtNum(inf.planned_minutes)} min`, ""));
  fact(dl, "Infusion", statCell("span", "infusion.duration_s", inf.duration_s, fmtDuration(inf.duration_s), ""));
  fact(dl, "Running", statCell("span", "infusion.running_s", inf.running_s, fmtDuration(inf.running_s), ""));
  fact(dl, "Rate changes", statCell("span", "infusion.rate_changes", inf.rate_changes, String(inf.rate_changes ?? 0), ""));
  fact(dl, "Pauses", statCell("span", "infusion.pauses", inf.pauses, String(inf.pauses ?? 0), ""));
  body.append(el("h3", "", "Infusion"), dl);
  $("stats").dataset.loaded = "true";
}

// ---------- main ----------

async function main() {
  root.dataset.sessionId = sessionId;
  const whoP = showWho();
  if (!sessionId) {
    showError($("page-error"), "No session given: open a session from the list.");
    return;
  }
  const path = `/api/sessions/${encodeURIComponent(sessionId)}`;
  const [traceR, statsR, baysR] = await Promise.allSettled([
    api("GET", `${path}/trace`), api("GET", `${path}/statistics`), api("GET", "/api/bays")]);
  if (traceR.status === "rejected") {
    showError($("page-error"), `Cannot show session ${sessionId}. ${reasonOf(traceR.reason)}`);
    root.dataset.loaded = "error";
    return;
  }
  const trace = traceR.value;
  let session = trace.session;
  const who = (await whoP) ?? (await me().catch(() => ({ role: "viewer" })));
  const role = who?.role ?? "viewer";
  root.dataset.phase = session.phase;
  const bays = baysR.status === "fulfilled" ? baysR.value.bays ?? [] : [];
  const bayName = bays.find((b) => b.id === session.bay)?.name ?? session.bay;

  renderSummary(session, bayName);
  setUpDelete(session, role);
  try {
    renderCharts(trace);
  } catch (err) {
    showError($("charts-error"), `The charts could not be drawn: ${err?.message ?? err}`);
  }
  renderDoses(session);
  renderAlarms(trace);
  renderChecklist(session);
  renderAldrete(session);
  renderPain(session, role);
  setUpPainForm(() => session, (s) => { session = s; }, role);
  let readiness = null;
  if (session.phase !== "closed") {
    try {
      readiness = (await api("GET", path)).readiness ?? null;
    } catch {
      readiness = null;
    }
  }
  renderDischarge(session, readiness);
  if (statsR.status === "fulfilled") renderStats(statsR.value);
  else showError($("stats-error"), `No statistics. ${reasonOf(statsR.reason)}`);
  root.dataset.loaded = "true";
}

main().catch((err) => {
  showError($("page-error"), `The page failed: ${err?.message ?? err}`);
});
