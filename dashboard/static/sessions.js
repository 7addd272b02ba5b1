// The sessions list (/sessions): every recorded infusion session, newest first, filtered by patient id, bay and
// admission date (the filters are the page's query string: ?patient=&bay=&from=YYYY-MM-DD&to=YYYY-MM-DD, so a
// filtered list can be bookmarked and the back button works). Each row links to the session's review page
// (/sessions/<id>); the patient id links to the patient's series (/patients/<id>).
//
// For tests: #sessions[data-loaded="true"][data-count] once the list is shown; one tr[data-session-id] per
// session (data-phase, data-outcome, data-patient) in the server's order (newest first).

import { api } from "./api.js";
import {
  $, DASH, doseGiven, el, endOf, fmtDate, fmtDuration, fmtMg, fmtTime, link, outcomeOf, reasonOf, showError,
  showWho,
} from "./review-common.js";

const LIMIT = 200;
const MAX_LIMIT = 1000;

const params = new URLSearchParams(location.search);
const form = $("filters");

/** A local calendar date "YYYY-MM-DD" as epoch seconds at its start (`dayOffset` days later), or null. */
function dayStart(text, dayOffset = 0) {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text ?? "");
  if (!m) return null;
  return new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3]) + dayOffset).getTime() / 1000;
}

function query() {
  const q = new URLSearchParams();
  const patient = (params.get("patient") ?? "").trim();
  const bay = params.get("bay") ?? "";
  if (patient) q.set("patient", patient);
  if (bay) q.set("bay", bay);
  const since = dayStart(params.get("from"));
  const until = dayStart(params.get("to"), 1);
  if (since !== null) q.set("since", String(since));
  if (until !== null) q.set("until", String(until - 0.001)); // the whole "to" day
  const limit = Math.min(Number(params.get("limit")) || LIMIT, MAX_LIMIT);
  q.set("limit", String(limit));
  return { q, limit };
}

function fillForm(bays) {
  form.elements.patient.value = params.get("patient") ?? "";
  form.elements.from.value = params.get("from") ?? "";
  form.elements.to.value = params.get("to") ?? "";
  const select = form.elements.bay;
  const wanted = params.get("bay") ?? "";
  const known = new Set();
  for (const b of bays) {
    select.append(el("option", "", b.name ?? b.id, { value: b.id }));
    known.add(b.id);
  }
  if (wanted && !known.has(wanted)) select.append(el("option", "", wanted, { value: wanted })); // a bay no longer configured
  select.value = wanted;
}

function row(s, bayNames, now) {
  const end = endOf(s, now);
  const tr = el("tr", "", undefined, {
    "data-session-id": s.id, "data-phase": s.phase, "data-outcome": s.discharge?.outcome ?? "open",
    "data-patient": s.patient_id,
  });
  const review = `/sessions/${encodeURIComponent(s.id)}`;

  const when = el("td", "when");
  when.append(link(review, `${fmtDate(s.admitted_at)} ${fmtTime(s.admitted_at)}`, "review-link"));
  const bay = el("td", "", bayNames.get(s.bay) ?? s.bay);
  const patient = el("td", "patient-cell");
  patient.append(link(`/patients/${encodeURIComponent(s.patient_id)}`, s.patient_id, "patient-link",
    { "data-patient-link": s.patient_id }), el("span", "initials", s.initials));
  const series = el("td", "", s.series_label ?? DASH);
  const outcome = el("td", "outcome", outcomeOf(s), { "data-outcome": s.discharge?.outcome ?? "open" });
  const duration = el("td", "num", s.discharge ? fmtDuration(end - s.admitted_at)
    : `${fmtDuration(end - s.admitted_at)} so far`);
  const given = s.doses?.length ? fmtMg(doseGiven(s, end)) : "none";
  const dose = el("td", "num", `${given} / ${fmtMg(s.total_mg)}`);
  const open = el("td", "");
  open.append(link(review, "Review \u203A", "action small"));
  tr.append(when, bay, patient, series, outcome, duration, dose, open);
  return tr;
}

async function main() {
  showWho();
  const deleted = params.get("deleted");
  if (deleted) {
    const note = $("page-note");
    note.textContent = `Session ${deleted} was deleted.`;
    note.hidden = false;
  }
  let bays = [];
  try {
    bays = (await api("GET", "/api/bays")).bays ?? [];
  } catch {
    bays = []; // the list works without bay names
  }
  fillForm(bays);
  const bayNames = new Map(bays.map((b) => [b.id, b.name ?? b.id]));

  const table = $("sessions");
  const info = $("list-info");
  const { q, limit } = query();
  let sessions;
  try {
    sessions = (await api("GET", `/api/sessions?${q}`)).sessions ?? [];
  } catch (err) {
    info.textContent = "";
    showError($("page-error"), `Cannot load the sessions. ${reasonOf(err)}`);
    return;
  }
  const now = Date.now() / 1000;
  const body = $("session-rows");
  body.replaceChildren(...sessions.map((s) => row(s, bayNames, now)));
  const filtered = [...q.keys()].some((k) => k !== "limit");
  if (!sessions.length) {
    info.textContent = filtered ? "No sessions match these filters." : "No sessions recorded yet.";
  } else if (sessions.length >= limit) {
    info.replaceChildren(`Showing the newest ${sessions.length} sessions${filtered ? " that match" : ""}. `);
    if (limit < MAX_LIMIT) {
      const more = new URLSearchParams(params);
      more.set("limit", String(MAX_LIMIT));
      more.delete("deleted");
      info.append(link(`/sessions?${more}`, `Show up to ${MAX_LIMIT}`));
    } else {
      info.append("Narrow the filters to see older ones.");
    }
  } else {
    info.textContent = `${sessions.length} session${sessions.length === 1 ? "" : "s"}${filtered ? " match" : ""}, newest first.`;
  }
  table.dataset.count = String(sessions.length);
  table.dataset.loaded = "true";
}

main();
