// The page's copy of what the server said: bays, latest values, technical statuses, active alarms.
// Pure data, no DOM. The server decides alarms; this module only records them.

export const PRIORITY_RANK = { none: 0, low: 1, medium: 2, high: 3 };

function techKey(t) {
  return `${t.device}|${t.condition}|${t.vital ?? ""}`;
}

/**
 * What the pages show of a bay's open infusion session, from either the snapshot's summary (dashboard/live.py
 * session_summary) or a `session` message's full record (Session.to_json()): {id, initials, patient_id, phase,
 * phase_since, series, admitted_at, infusion_started, rate_mg_per_h (running now), checklist_missing}, plus
 * `patient_initials` and `start` (the admission) as the tiles and the bay header read them. null when the bay
 * has none (or the session is closed).
 */
export function sessionSummary(s) {
  if (!s || s.phase === "closed") return null;
  const full = Array.isArray(s.doses);
  const initials = s.initials ?? s.patient_initials ?? "";
  const admitted = s.admitted_at ?? s.start ?? null;
  return {
    id: s.id ?? null,
    initials,
    patient_initials: initials,
    patient_id: s.patient_id ?? "",
    phase: s.phase ?? null,
    phase_since: s.phase_since ?? null,
    series: full ? s.series_label : (s.series ?? null),
    admitted_at: admitted,
    start: admitted,
    infusion_started: s.infusion_started ?? null,
    rate_mg_per_h: full ? (s.doses.length ? s.doses[s.doses.length - 1].rate_mg_per_h : 0) : (s.rate_mg_per_h ?? 0),
    checklist_missing: full ? (s.checklist?.missing ?? []) : (s.checklist_missing ?? []),
  };
}

function bayFromJson(b) {
  const bay = {
    id: b.id,
    name: b.name ?? b.id,
    devices: b.devices ?? [],
    profile: b.profile ?? null,
    session: sessionSummary(b.session), // see sessionSummary; null: no patient admitted
    vitals: {},            // key -> {value, time, device}
    technical: new Map(),  // device|condition|vital -> {device, condition, vital, detail, since}
    alarms: new Map(),     // alarm id -> {id, kind, priority, vital, value, limit, message, device, since,
                           //             acknowledged, acknowledged_by, latched, audible, paused_until, escalation}
  };
  for (const [key, v] of Object.entries(b.vitals ?? {})) {
    if (v && Number.isFinite(v.value)) bay.vitals[key] = { value: v.value, time: v.time, device: v.device };
  }
  for (const t of b.technical ?? []) bay.technical.set(techKey(t), { ...t });
  for (const a of b.alarms ?? []) {
    const audible = typeof a.audible === "boolean" ? a.audible : !a.acknowledged && a.paused_until == null;
    bay.alarms.set(a.id, { ...a, audible });
  }
  return bay;
}

export class LiveState {
  constructor() {
    this.site = "";
    this.bays = new Map();
    this.clockOffset = 0; // server clock minus this browser's clock, seconds
    this.offsets = [];    // the last few samples of it
  }

  /** Server time now (Unix seconds), corrected for this browser's clock skew. */
  serverNow() {
    return Date.now() / 1000 + this.clockOffset;
  }

  noteServerTime(serverTime) {
    if (!Number.isFinite(serverTime)) return;
    // server_time was stamped before the message travelled, so each sample is the true offset minus that
    // message's delay: the largest of the last few is the best estimate (and a clock step still gets in)
    this.offsets.push(serverTime - Date.now() / 1000);
    if (this.offsets.length > 8) this.offsets.shift();
    this.clockOffset = Math.max(...this.offsets);
  }

  /** Replace everything with a /api/bays body or a websocket snapshot. */
  applySnapshot(snap) {
    this.site = snap.site ?? "";
    this.noteServerTime(snap.server_time);
    this.bays = new Map((snap.bays ?? []).map((b) => [b.id, bayFromJson(b)]));
  }

  /**
   * Apply one websocket message (not a snapshot). Returns the changed bay, or null when the message
   * changed nothing shown per bay (unknown type, unknown bay, older value).
   */
  apply(msg) {
    if (msg.type === "heartbeat") {
      this.noteServerTime(msg.server_time);
      return null;
    }
    const bay = this.bays.get(msg.bay);
    if (!bay) return null;
    switch (msg.type) {
      case "obs": {
        if (!Number.isFinite(msg.value)) return null; // missing is missing: never a number
        const old = bay.vitals[msg.vital];
        if (old && old.time > msg.time) return null;
        bay.vitals[msg.vital] = { value: msg.value, time: msg.time, device: msg.device };
        return bay;
      }
      case "technical": {
        const key = techKey(msg);
        if (msg.active) {
          const old = bay.technical.get(key);
          bay.technical.set(key, {
            device: msg.device, condition: msg.condition, vital: msg.vital ?? null,
            detail: msg.detail ?? "", since: old ? old.since : msg.time,
          });
        } else {
          bay.technical.delete(key);
        }
        return bay;
      }
      case "alarm": {
        // the engine owns the lifecycle; each phase only records where the alarm now is in it
        if (msg.phase === "end") {
          bay.alarms.delete(msg.id);
          return bay;
        }
        const old = msg.phase === "start" ? null : bay.alarms.get(msg.id);
        const a = {
          id: msg.id, kind: msg.kind, priority: msg.priority, vital: msg.vital ?? null,
          value: msg.value ?? null, limit: msg.limit ?? null, message: msg.message ?? msg.id,
          device: msg.device ?? null, since: old ? old.since : msg.time,
          acknowledged: old?.acknowledged ?? false, acknowledged_by: old?.acknowledged_by ?? null,
          latched: old?.latched ?? false, paused_until: old?.paused_until ?? null, escalation: old?.escalation ?? 0,
          audible: old ? old.audible : true, // a new alarm sounds, even during an audio pause (alerts/lifecycle.py)
        };
        switch (msg.phase) {
          case "acknowledged":
            a.acknowledged = true; a.acknowledged_by = msg.by ?? null; a.paused_until = null; a.audible = false;
            break;
          case "reminder": a.acknowledged = false; a.acknowledged_by = null; a.audible = a.paused_until == null; break;
          case "latched": a.latched = true; break;
          case "audio_paused": a.paused_until = msg.until ?? null; a.audible = false; break;
          case "audio_resumed": a.paused_until = null; a.audible = !a.acknowledged; break;
          case "escalated": a.escalation = msg.level ?? a.escalation; break;
          default: break;
        }
        bay.alarms.set(msg.id, a);
        return bay;
      }
      case "session": // a step of the bay's infusion session (admit ... discharge), from any screen
        if (msg.session?.phase === "closed" && bay.session && bay.session.id !== msg.session.id) return null;
        bay.session = sessionSummary(msg.session);
        return bay;
      default:
        return null;
    }
  }
}

/** "high" | "medium" | "low" | "none": the highest priority among a bay's active alarms. */
export function highestPriority(bay) {
  let best = "none";
  for (const a of bay.alarms.values()) {
    if ((PRIORITY_RANK[a.priority] ?? 0) > PRIORITY_RANK[best]) best = a.priority;
  }
  return best;
}

/** Active alarms, highest priority first, then oldest first. */
export function sortedAlarms(bay) {
  return [...bay.alarms.values()].sort(
    (a, b) => (PRIORITY_RANK[b.priority] ?? 0) - (PRIORITY_RANK[a.priority] ?? 0) || (a.since ?? 0) - (b.since ?? 0),
  );
}

/** Whether `alarm` sounds at server time `now`: the server's `audible`, and an audio pause that has run out
 *  counts as over even before the server's "audio_resumed" arrives. */
export function isAudible(alarm, now) {
  if (alarm.acknowledged) return false;
  if (alarm.paused_until != null) return Number.isFinite(now) && now >= alarm.paused_until;
  return alarm.audible !== false;
}

/** Seconds left of an audio pause on `alarm` at `now` (0 when none). */
export function pausedFor(alarm, now) {
  if (alarm.acknowledged || alarm.paused_until == null) return 0;
  return Math.max(0, alarm.paused_until - now);
}

/** "high" | "medium" | "low" | "none": the highest priority among the audible alarms of every bay. */
export function loudestAudible(bays, now) {
  let best = "none";
  for (const bay of bays) {
    for (const a of bay.alarms.values()) {
      if (isAudible(a, now) && (PRIORITY_RANK[a.priority] ?? 0) > PRIORITY_RANK[best]) best = a.priority;
    }
  }
  return best;
}

/** Every active alarm of every bay as {bay, alarm}, highest priority first, then oldest first. */
export function stationAlarms(bays) {
  const all = [];
  for (const bay of bays) for (const alarm of bay.alarms.values()) all.push({ bay, alarm });
  return all.sort(
    (x, y) => (PRIORITY_RANK[y.alarm.priority] ?? 0) - (PRIORITY_RANK[x.alarm.priority] ?? 0)
      || (x.alarm.since ?? 0) - (y.alarm.since ?? 0),
  );
}

// Device conditions after which the server no longer takes a device's values as the patient's (the engine's
// INVALIDATING set, alerts/engine.py), with what a numeric then says instead of its number.
export const NOT_CURRENT_TEXT = {
  no_data: "NO DATA",
  device_lost: "DEVICE LOST",
  sensor_off: "SENSOR OFF",
  sensor_fault: "SENSOR FAULT",
  invalid_value: "INVALID",
};

/**
 * Whether the value of `key` shown for `bay` is current at `now`:
 *   {state: "current"} | {state: "missing", reason: "NO DATA"} | {state: "stale", reason, age}
 * "stale" means seen but not current: older than `staleAfter` seconds, or the server reports a condition of the
 * device that measured it (its own status, or the engine's technical alarm, e.g. "no_data:<device>" when it went
 * silent, "not_current:<vital>") that began after the value was received.
 */
export function valueStatus(bay, key, now, staleAfter) {
  const v = bay.vitals[key];
  if (!v) return { state: "missing", reason: "NO DATA", age: Infinity };
  const age = now - v.time;
  if (age > staleAfter) return { state: "stale", reason: "NO DATA", age };
  const covers = (device, vital) => (device == null || device === v.device) && (vital == null || vital === key);
  for (const t of bay.technical.values()) {
    if (t.condition in NOT_CURRENT_TEXT && covers(t.device, t.vital) && !(t.since < v.time)) {
      return { state: "stale", reason: NOT_CURRENT_TEXT[t.condition], age };
    }
  }
  for (const a of bay.alarms.values()) {
    if (a.kind !== "technical" || a.latched || !(a.since >= v.time)) continue;
    const condition = String(a.id).split(":")[0];
    if (condition === "not_current" && a.vital === key) return { state: "stale", reason: "NO DATA", age };
    if (condition in NOT_CURRENT_TEXT && a.device && covers(a.device, a.vital)) {
      return { state: "stale", reason: NOT_CURRENT_TEXT[condition], age };
    }
  }
  return { state: "current", age };
}
