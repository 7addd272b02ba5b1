// The page's copy of what the server said: bays, latest values, technical statuses, active alarms.
// Pure data, no DOM. The server decides alarms; this module only records them.

export const PRIORITY_RANK = { none: 0, low: 1, medium: 2, high: 3 };

function techKey(t) {
  return `${t.device}|${t.condition}|${t.vital ?? ""}`;
}

function bayFromJson(b) {
  const bay = {
    id: b.id,
    name: b.name ?? b.id,
    devices: b.devices ?? [],
    vitals: {},            // key -> {value, time, device}
    technical: new Map(),  // device|condition|vital -> {device, condition, vital, detail, since}
    alarms: new Map(),     // alarm id -> {id, kind, priority, vital, value, limit, message, device, since,
                           //             acknowledged, acknowledged_by, latched, paused_until, escalation}
  };
  for (const [key, v] of Object.entries(b.vitals ?? {})) {
    if (v && Number.isFinite(v.value)) bay.vitals[key] = { value: v.value, time: v.time, device: v.device };
  }
  for (const t of b.technical ?? []) bay.technical.set(techKey(t), { ...t });
  for (const a of b.alarms ?? []) bay.alarms.set(a.id, { ...a });
  return bay;
}

export class LiveState {
  constructor() {
    this.site = "";
    this.bays = new Map();
    this.clockOffset = 0; // server clock minus this browser's clock, seconds
  }

  /** Server time now (Unix seconds), corrected for this browser's clock skew. */
  serverNow() {
    return Date.now() / 1000 + this.clockOffset;
  }

  noteServerTime(serverTime) {
    if (Number.isFinite(serverTime)) this.clockOffset = serverTime - Date.now() / 1000;
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
        };
        switch (msg.phase) {
          case "acknowledged": a.acknowledged = true; a.acknowledged_by = msg.by ?? null; a.paused_until = null; break;
          case "reminder": a.acknowledged = false; a.acknowledged_by = null; break;
          case "latched": a.latched = true; break;
          case "audio_paused": a.paused_until = msg.until ?? null; break;
          case "audio_resumed": a.paused_until = null; break;
          case "escalated": a.escalation = msg.level ?? a.escalation; break;
          default: break;
        }
        bay.alarms.set(msg.id, a);
        return bay;
      }
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
