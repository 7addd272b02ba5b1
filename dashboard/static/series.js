// A patient's series (/patients/<patient id>): each infusion session side by side, oldest first, so the physician
// sees how the patient responds across the series: baseline vs peak SBP and heart rate (absolute and %), the time
// back to baseline, alarm counts by priority, pain before -> after, notes (GET /api/patients/<id>/series), and
// small multiples: each session's SBP and heart rate against minutes since its infusion started, all on the same
// scales (each session's GET /api/sessions/<id>/trace).
//
// For tests: #series[data-loaded="true"][data-count] once the columns are shown, data-charts-loaded="true" once
// the charts are drawn; .series-session[data-session-id] one per session in time order, with
// [data-pain-before] / [data-pain-after] (the score, "" when none), [data-stat="peaks.<sbp|heart_rate>.<...>"],
// [data-stat="alarms.<priority>"], .series-chart[data-points].

import { api } from "./api.js";
import { VITALS } from "./bay-vitals.js";
import { DASH, $, el, fmtChange, fmtDate, fmtDuration, fmtMg, fmtNum, fmtTime, isNum, link, mapLimited, outcomeOf,
  pathParam, reasonOf, showError, showWho } from "./review-common.js";
import { KETAMINE, annotationLabel, drawHLine, drawVLine, samplesOf } from "./review-chart.js";

const SYMBOL = { high: "!!!", medium: "!!", low: "!" };
const SBP_COLOR = VITALS.nibp_sys.color;
const HR_COLOR = VITALS.hr.color;
const CHART_HEIGHT = 170;
const PARALLEL = 3; // traces fetched at a time

const patientId = pathParam("/patients/");
const row = $("series");

function peakRows(item) {
  const rows = [];
  for (const [key, label] of [["sbp", "SBP"], ["heart_rate", "HR"]]) {
    const p = item.peaks?.[key];
    const tr = el("tr", "", undefined, { "data-peak": key });
    const name = key === "heart_rate" && p?.vital ? `${label} (${VITALS[p.vital]?.label ?? p.vital})` : label;
    const cell = (stat, value, text) => el("td", "num", text ?? (isNum(value) ? fmtNum(value) : DASH),
      { "data-stat": `peaks.${key}.${stat}`, "data-value": isNum(value) ? String(value) : "" });
    tr.append(el("th", "", name, { scope: "row" }), cell("baseline", p?.baseline), cell("value", p?.value),
      cell("change", p?.change, fmtChange(p?.change)), cell("change_pct", p?.change_pct, fmtChange(p?.change_pct, " %")));
    rows.push(tr);
  }
  return rows;
}

function card(item, index, total) {
  const s = item.session;
  const c = el("article", "series-session panel", undefined, {
    "data-session-id": s.id, "data-index": index, "data-admitted": s.admitted_at });
  const head = el("header", "series-head");
  head.append(
    link(`/sessions/${encodeURIComponent(s.id)}`, `${fmtDate(s.admitted_at)} ${fmtTime(s.admitted_at)}`, "review-link"),
    el("span", "series-label", s.series_label),
    el("span", "muted", `session ${index + 1} of ${total} recorded \u00B7 ${s.bay} \u00B7 ${outcomeOf(s)}`),
  );
  c.append(head);

  const t = el("table", "data-table compact");
  const hr = el("tr");
  for (const h of ["", "Baseline", "Peak", "Change", "%"]) hr.append(el("th", h ? "num" : "", h, { scope: "col" }));
  const thead = el("thead");
  thead.append(hr);
  const tbody = el("tbody");
  tbody.append(...peakRows(item));
  t.append(thead, tbody);
  c.append(t);

  const back = item.back_to_baseline ?? {};
  const backText = isNum(back.seconds) ? fmtDuration(back.seconds)
    : back.since == null ? "infusion not stopped" : "not within the record";
  const facts = el("dl", "facts");
  const add = (term, value, attrs) => {
    const dd = el("dd", "", undefined, attrs);
    if (value instanceof Node) dd.append(value);
    else dd.textContent = value;
    facts.append(el("dt", "", term), dd);
  };
  add("Back to baseline", backText, { "data-stat": "back_to_baseline.seconds",
    "data-value": isNum(back.seconds) ? String(back.seconds) : "" });
  const a = item.alarms?.total ?? {};
  const alarms = el("span", "alarm-counts");
  for (const p of ["high", "medium", "low"]) {
    alarms.append(el("span", `count prio-${p}`, `${SYMBOL[p]} ${a[p] ?? 0}`,
      { "data-stat": `alarms.${p}`, "data-value": String(a[p] ?? 0), title: `${p} priority alarms` }));
  }
  const tech = item.alarms?.technical?.total ?? 0;
  if (tech) alarms.append(el("span", "muted", ` (${tech} technical)`));
  add("Alarms", alarms);
  const pain = el("span", "pain");
  const score = (v) => (Number.isInteger(v) ? String(v) : "");
  pain.append(
    el("span", "pain-score", Number.isInteger(s.pain_before) ? String(s.pain_before) : DASH,
      { "data-pain-before": score(s.pain_before) }),
    el("span", "pain-arrow", "\u2192"),
    el("span", "pain-score", Number.isInteger(s.pain_after) ? String(s.pain_after) : DASH,
      { "data-pain-after": score(s.pain_after) }),
  );
  add("Pain (0\u201310)", pain);
  const inf = item.infusion ?? {};
  add("Ketamine", `${fmtMg(inf.dose_given_mg)} of ${fmtMg(inf.planned_mg)}`
    + `${isNum(inf.duration_s) ? ` over ${fmtDuration(inf.duration_s)}` : ""}`);
  c.append(facts);

  const chartBox = el("div", "series-chart", undefined, { "data-loaded": "false" });
  chartBox.append(el("p", "muted small", "Loading the trace\u2026"));
  c.append(chartBox);

  const notes = item.notes ?? [];
  const ul = el("ul", "plain-list notes");
  ul.append(...notes.map((n) => {
    const li = el("li", "", undefined, { "data-kind": n.kind });
    li.append(el("span", "time", fmtTime(n.time)), " ", el("span", "", annotationLabel(n)));
    return li;
  }));
  c.append(el("h3", "", "Notes"), notes.length ? ul : el("p", "muted small", "None."));
  return c;
}

/** What a session's small chart needs: minutes since the infusion started, SBP points, heart rate line. */
function responseOf(item, trace) {
  const s = item.session;
  const t0 = s.infusion_started ?? s.admitted_at;
  const samples = samplesOf(trace.trends);
  const hrKey = item.peaks?.heart_rate?.vital ?? (samples.has("hr") ? "hr" : "pr");
  const sbp = samples.get("nibp_sys");
  const hr = samples.get(hrKey);
  const [st, sv] = sbp ? sbp.points(trace.start, trace.end) : [[], []];
  const [ht, hv] = hr ? hr.line(trace.start, trace.end, 400) : [[], []];
  const min = (x) => (x - t0) / 60;
  return {
    item, t0, started: s.infusion_started != null, hrKey,
    sbp: [st.map(min), sv], hr: [ht.map(min), hv],
    from: min(trace.start), to: min(trace.end),
    stop: s.infusion_stopped != null ? min(s.infusion_stopped) : null,
    baseSbp: s.baseline?.nibp_sys ?? null,
    baseHr: s.baseline?.[hrKey] ?? s.baseline?.[hrKey === "hr" ? "pr" : "hr"] ?? null,
    points: st.length + hv.filter((v) => v !== null).length,
  };
}

/** One y range for every chart: all SBP and heart rate readings and baselines, to the next 10. */
function sharedY(responses) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const r of responses) {
    for (const v of [...r.sbp[1], ...r.hr[1], r.baseSbp, r.baseHr]) {
      if (isNum(v)) {
        lo = Math.min(lo, v);
        hi = Math.max(hi, v);
      }
    }
  }
  if (!Number.isFinite(lo)) return [40, 180];
  return [Math.floor((lo - 5) / 10) * 10, Math.ceil((hi + 5) / 10) * 10];
}

function drawChart(box, r, x, y, syncKey) {
  box.replaceChildren();
  const uPlot = globalThis.uPlot;
  if (!uPlot) {
    box.textContent = "chart unavailable (uPlot not loaded)";
    return;
  }
  const keys = el("div", "chart-head");
  const k1 = el("span", "chart-key", "\u25CF SBP");
  k1.style.color = SBP_COLOR;
  const k2 = el("span", "chart-key", `\u2014 ${VITALS[r.hrKey]?.label ?? r.hrKey}`);
  k2.style.color = HR_COLOR;
  keys.append(k1, k2, el("span", "chart-unit", r.started ? "min since infusion start" : "min since admission (no infusion)"));
  const plotEl = el("div", "chart-plot");
  box.append(keys, plotEl);
  const data = uPlot.join([r.sbp, r.hr, [[x[0], x[1]]]]);
  const axis = { stroke: "#9aa4b2", grid: { stroke: "#232b39", width: 1 }, ticks: { stroke: "#2a3140", width: 1 },
    font: "11px system-ui, sans-serif" };
  const plot = new uPlot({
    width: Math.max(plotEl.clientWidth, 240),
    height: CHART_HEIGHT,
    legend: { show: false },
    cursor: { y: false, drag: { x: false, y: false, setScale: false }, sync: { key: syncKey, setSeries: false } },
    scales: { x: { time: false, range: () => x }, y: { range: () => y } },
    axes: [{ ...axis, size: 28 }, { ...axis, size: 40 }],
    series: [
      {},
      { label: "SBP", stroke: SBP_COLOR, width: 0, paths: () => null, points: { show: true, size: 6, stroke: SBP_COLOR, fill: SBP_COLOR } },
      { label: "HR", stroke: HR_COLOR, width: 2, points: { show: false } },
    ],
    hooks: {
      draw: [(u) => {
        if (r.started) drawVLine(u, 0, KETAMINE, "solid");
        if (r.stop !== null) drawVLine(u, r.stop, KETAMINE, "dashed");
        if (isNum(r.baseSbp)) drawHLine(u, r.baseSbp, SBP_COLOR, `SBP ${fmtNum(r.baseSbp)}`);
        if (isNum(r.baseHr)) drawHLine(u, r.baseHr, HR_COLOR, `HR ${fmtNum(r.baseHr)}`);
      }],
    },
  }, data, plotEl);
  new ResizeObserver(() => {
    const w = plotEl.clientWidth;
    if (w > 0 && Math.abs(w - plot.width) > 1) plot.setSize({ width: w, height: CHART_HEIGHT });
  }).observe(plotEl);
  box.dataset.points = String(r.points);
  box.dataset.y = y.join(",");
  box.dataset.loaded = "true";
}

async function drawCharts(items, cards) {
  const traces = await mapLimited(items, PARALLEL,
    (item) => api("GET", `/api/sessions/${encodeURIComponent(item.session.id)}/trace`));
  const responses = [];
  traces.forEach((trace, i) => {
    const box = cards[i].querySelector(".series-chart");
    if (trace instanceof Error) {
      box.replaceChildren(el("p", "error", `No trace: ${reasonOf(trace)}`));
      box.dataset.loaded = "error";
      return;
    }
    responses.push([box, responseOf(items[i], trace)]);
  });
  const all = responses.map(([, r]) => r);
  const y = sharedY(all);
  const x = all.length ? [Math.min(...all.map((r) => r.from)), Math.max(...all.map((r) => r.to))] : [0, 1];
  if (!(x[1] > x[0])) x[1] = x[0] + 1;
  const syncKey = `series-${Math.random().toString(36).slice(2)}`;
  for (const [box, r] of responses) {
    try {
      drawChart(box, r, x, y, syncKey);
    } catch (err) {
      box.replaceChildren(el("p", "error", `The chart could not be drawn: ${err?.message ?? err}`));
    }
  }
  row.dataset.chartsLoaded = "true";
}

async function main() {
  showWho();
  if (!patientId) {
    showError($("page-error"), "No patient given: open a patient from the sessions list.");
    return;
  }
  document.title = `bedside \u2014 ${patientId}`;
  $("title").textContent = `Patient ${patientId}`;
  let body;
  try {
    body = await api("GET", `/api/patients/${encodeURIComponent(patientId)}/series`);
  } catch (err) {
    $("series-summary").textContent = "";
    showError($("page-error"), `Cannot show the series of ${patientId}. ${reasonOf(err)}`);
    row.dataset.loaded = "error";
    return;
  }
  const items = body.sessions ?? [];
  const first = items[0]?.session;
  const last = items[items.length - 1]?.session;
  if (last) $("title").textContent = `Patient ${patientId} \u00B7 ${last.initials}`;
  $("series-summary").textContent = items.length
    ? `${items.length} session${items.length === 1 ? "" : "s"}, ${fmtDate(first.admitted_at)} to ${fmtDate(last.admitted_at)}`
      + ` \u00B7 latest: ${last.series_label}`
    : "No sessions.";
  const cards = items.map((item, i) => card(item, i, items.length));
  row.replaceChildren(...cards);
  row.dataset.count = String(items.length);
  row.dataset.loaded = "true";
  try {
    await drawCharts(items, cards);
  } catch (err) {
    showError($("charts-error"), `The charts could not be drawn: ${err?.message ?? err}`);
  }
}

main().catch((err) => showError($("page-error"), `The page failed: ${err?.message ?? err}`));
