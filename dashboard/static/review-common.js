// What the physician's review pages (/sessions, /sessions/<id>, /patients/<id>) share: building DOM, formatting
// times, durations and values, the header's "who", and page errors. Display only: every number shown comes
// from the server (the sessions API); a value the server does not have is shown as "—", never as 0.

import { ApiError, me } from "./api.js";

export const DASH = "\u2014";

export function $(id) {
  return document.getElementById(id);
}

/** An element with a class and text; `attrs` become attributes (data-* included), `null`/`undefined` skipped. */
export function el(tag, cls = "", text = undefined, attrs = undefined) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v !== null && v !== undefined) e.setAttribute(k, String(v));
  }
  return e;
}

export function link(href, text, cls = "", attrs = undefined) {
  const a = el("a", cls, text, attrs);
  a.href = href;
  return a;
}

export function isNum(v) {
  return typeof v === "number" && Number.isFinite(v);
}

function pad2(n) {
  return String(n).padStart(2, "0");
}

/** "2025-03-14" (local date). */
export function fmtDate(t) {
  if (!isNum(t)) return DASH;
  const d = new Date(t * 1000);
  return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())}`;
}

/** "14:05" or, with seconds, "14:05:09" (local time). */
export function fmtTime(t, seconds = false) {
  if (!isNum(t)) return DASH;
  const d = new Date(t * 1000);
  const hm = `${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
  return seconds ? `${hm}:${pad2(d.getSeconds())}` : hm;
}

/** "2025-03-14 14:05". */
export function fmtDateTime(t, seconds = false) {
  return isNum(t) ? `${fmtDate(t)} ${fmtTime(t, seconds)}` : DASH;
}

/** A duration in seconds as "42 s", "12 min", "12 min 30 s" (under 10 min), "1 h 05 min". */
export function fmtDuration(s) {
  if (!isNum(s)) return DASH;
  const sec = Math.max(0, Math.round(s));
  if (sec < 60) return `${sec} s`;
  const h = Math.floor(sec / 3600);
  const m = Math.floor((sec % 3600) / 60);
  if (h > 0) return `${h} h ${pad2(m)} min`;
  const rest = sec % 60;
  return m < 10 && rest ? `${m} min ${rest} s` : `${m} min`;
}

/** A number as the server gave it, to at most `decimals` decimals ("97", "97.5"); missing is "—". */
export function fmtNum(v, decimals = 1) {
  if (!isNum(v)) return DASH;
  return Number.isInteger(v) ? String(v) : String(Number(v.toFixed(decimals)));
}

/** A signed change: "+18", "−4", "+12.5 %". */
export function fmtChange(v, suffix = "") {
  if (!isNum(v)) return DASH;
  const sign = v > 0 ? "+" : v < 0 ? "\u2212" : "\u00B1";
  return `${sign}${fmtNum(Math.abs(v))}${suffix}`;
}

/** "mg" amounts: "17.5 mg". */
export function fmtMg(v) {
  return isNum(v) ? `${fmtNum(v, 2)} mg` : DASH;
}

/** A session's outcome in words: "discharged", "discharged (override)", "ended early", or the open phase. */
export function outcomeOf(s) {
  const d = s.discharge;
  if (!d) return `${s.phase} (open)`;
  if (d.outcome === "ended") return "ended early";
  return d.unmet && d.unmet.length ? "discharged (override)" : "discharged";
}

/** When the session's record ends: its discharge, else (still open) now. */
export function endOf(s, now = Date.now() / 1000) {
  return s.discharge ? s.discharge.time : now;
}

/**
 * The ketamine given per the dose record up to `end`: the rate integrated over the dose events, as the server's
 * Session.dose_given_mg (monitor/infusion.py) computes it. Used only for the list page, which has no statistics
 * per row; the review page shows the server's own figure (statistics.infusion.dose_given_mg).
 */
export function doseGiven(s, end) {
  const doses = s.doses ?? [];
  let total = 0;
  for (let i = 0; i < doses.length; i++) {
    const until = i + 1 < doses.length ? doses[i + 1].time : end;
    total += (doses[i].rate_mg_per_h * Math.max(0, until - doses[i].time)) / 3600;
  }
  return Math.round(total * 100) / 100;
}

/** Show "<name> · <role>" in #who; resolves to {name, role} (or null when it cannot be read). */
export async function showWho() {
  try {
    const who = await me();
    const box = $("who");
    if (box) box.textContent = `${who.name ?? ""} \u00B7 ${who.role}`;
    return who;
  } catch {
    return null;
  }
}

/** A message for the user from a failed request. */
export function reasonOf(err) {
  if (err instanceof ApiError) {
    if (err.status === 404) return `Not found: ${err.detail}`;
    if (err.status === 403) return `Not allowed: ${err.detail}`;
    return `The server refused (HTTP ${err.status}): ${err.detail}`;
  }
  return `Cannot reach the server (${err?.message ?? err})`;
}

/** Show `text` in the element (role=alert), or hide it when empty. */
export function showError(box, text) {
  if (!box) return;
  box.textContent = text ?? "";
  box.hidden = !text;
}

/** The last path segment after `prefix` ("/sessions/" -> the id), decoded; "" when absent. */
export function pathParam(prefix) {
  const p = location.pathname;
  if (!p.startsWith(prefix)) return "";
  try {
    return decodeURIComponent(p.slice(prefix.length).replace(/\/+$/, ""));
  } catch {
    return "";
  }
}

/** Run `fn` over `items` with at most `limit` at a time; results in order (a failure is its Error). */
export async function mapLimited(items, limit, fn) {
  const out = new Array(items.length);
  let next = 0;
  async function worker() {
    while (next < items.length) {
      const i = next++;
      try {
        out[i] = await fn(items[i], i);
      } catch (err) {
        out[i] = err instanceof Error ? err : new Error(String(err));
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
