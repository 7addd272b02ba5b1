// The central view `/`: header (site, sound, connection, clock), the station-wide list of active alarms, one
// tile per bay, the "NOT CONNECTED" banner and the alarm sound. All alarm decisions come from the server; this
// page only shows them and sounds what the server says is audible.

import { api } from "./api.js";
import { pageSound } from "./sound-ui.js";
import { LiveConnection } from "./live.js";
import { LiveState, isAudible, pausedFor, stationAlarms } from "./state.js";
import { SYMBOL, Tile, formatAge, formatCountdown, replaceIfChanged } from "./tiles.js";
import { SPARK_WINDOW_S } from "./trend.js";

const OFFLINE_GRACE_MS = 2000; // on first load, how long "connecting" may last before the banner shows

const state = new LiveState();
const tiles = new Map(); // bay id -> Tile
const dirty = new Set(); // bay ids to redraw on the next animation frame
let frameRequested = false;
let everLive = false;
let status = "connecting";
let lostAt = null;          // server time the connection was lost (for the backfill after it returns)
const backfilled = new Set(); // bay ids whose sparklines got their 30 min of history

const grid = document.getElementById("bays");
const siteEl = document.getElementById("site");
const connEl = document.getElementById("conn");
const clockEl = document.getElementById("clock");
const banner = document.getElementById("offline-banner");
const emptyEl = document.getElementById("no-bays");
const stationList = document.getElementById("station-alarms");
const stationCount = document.getElementById("station-count");

const sound = pageSound(document.getElementById("sound-enable"), document.getElementById("sound-ind"));

function onState(body) {
  state.applySnapshot(body);
  siteEl.textContent = state.site || "bedside";
  document.title = `bedside \u2014 ${state.site || "live"}`;
  for (const [id, tile] of tiles) {
    if (!state.bays.has(id)) {
      tile.root.remove();
      tiles.delete(id);
    }
  }
  for (const bay of state.bays.values()) {
    let tile = tiles.get(bay.id);
    if (!tile) {
      tile = new Tile(bay);
      tiles.set(bay.id, tile);
    }
    grid.append(tile.root); // (re)appending keeps the server's order
    for (const [key, v] of Object.entries(bay.vitals)) tile.push(key, v.time, v.value);
  }
  emptyEl.hidden = state.bays.size > 0;
  layout();
  renderAll();
}

function onMessage(msg) {
  const bay = state.apply(msg);
  if (!bay) return;
  const tile = tiles.get(bay.id);
  if (msg.type === "obs" && tile) tile.push(msg.vital, msg.time, msg.value);
  dirty.add(bay.id);
  if (msg.type === "alarm") renderStation(); // the sound follows at once, not at the next frame
  if (!frameRequested) {
    frameRequested = true;
    requestAnimationFrame(flush);
  }
}

function flush() {
  frameRequested = false;
  const now = state.serverNow();
  for (const id of dirty) {
    const bay = state.bays.get(id);
    if (bay) tiles.get(id)?.update(bay, now);
  }
  dirty.clear();
}

function renderAll() {
  const now = state.serverNow();
  for (const bay of state.bays.values()) tiles.get(bay.id)?.update(bay, now);
  renderStation();
}

/** The station-wide list: every active alarm of every bay, highest priority first, then oldest first. */
function renderStation() {
  const now = state.serverNow();
  const all = stationAlarms(state.bays.values());
  const items = all.map(({ bay, alarm: a }) => {
    const paused = pausedFor(a, now);
    const parts = [
      `${SYMBOL[a.priority] ?? "!"} ${bay.name}`,
      a.message,
      formatAge(now - a.since),
      a.latched ? "LATCHED" : null,
      a.acknowledged ? `ACK${a.acknowledged_by ? ` ${a.acknowledged_by}` : ""}` : null,
      paused > 0 ? `AUDIO PAUSED ${formatCountdown(paused)}` : null,
    ];
    const li = document.createElement("li");
    li.className = "station-alarm";
    li.dataset.alarmBay = bay.id;
    li.dataset.alarmId = a.id;
    li.dataset.priority = a.priority;
    li.dataset.acknowledged = a.acknowledged ? "true" : "false";
    li.dataset.audible = isAudible(a, now) ? "true" : "false";
    const link = document.createElement("a");
    link.href = `/bay/${encodeURIComponent(bay.id)}`;
    link.textContent = parts.filter(Boolean).join(" \u00B7 ");
    li.append(link);
    return li;
  });
  replaceIfChanged(stationList, items);
  const n = all.length;
  stationCount.dataset.count = String(n);
  const text = n === 0 ? "No active alarms" : `${n} ALARM${n === 1 ? "" : "S"}`;
  if (stationCount.textContent !== text) stationCount.textContent = text;
  updateSound();
}

function updateSound() {
  sound.update(state, !banner.hidden);
}

function setStatus(s) {
  const was = status;
  status = s;
  if (s === "live") everLive = true;
  if (s !== "live" && was === "live") lostAt = state.serverNow();
  document.body.dataset.connection = s;
  connEl.dataset.connection = s;
  connEl.textContent = { live: "\u25CF LIVE", connecting: "\u25CC CONNECTING", disconnected: "\u2716 OFFLINE" }[s];
  showBanner();
  if (s === "live" && was !== "live") backfill();
}

function showBanner() {
  // Before the first connection, give it a moment; after a loss, show it at once.
  banner.hidden = status === "live" || (!everLive && performance.now() < OFFLINE_GRACE_MS);
  document.body.classList.toggle("offline", !banner.hidden);
  updateSound();
}

/** Fill the sparklines from the recorded history: 30 min for a new bay, the gap after a lost connection. Best
 *  effort: a server without the history API (or an error) just leaves them to fill live. */
async function backfill() {
  const gapFrom = lostAt;
  lostAt = null;
  for (const bay of [...state.bays.values()]) {
    const now = state.serverNow();
    let since = now - SPARK_WINDOW_S;
    if (backfilled.has(bay.id)) {
      if (gapFrom === null) continue;
      since = Math.max(since, gapFrom - 5);
    }
    backfilled.add(bay.id);
    try {
      const hist = await api("GET", `/api/bays/${encodeURIComponent(bay.id)}/history?since=${since.toFixed(3)}`
        + `&until=${now.toFixed(3)}`);
      tiles.get(bay.id)?.backfill(hist?.observations);
    } catch {
      // no history (404 on an older server, or a failure): the sparkline fills from live data
    }
  }
}

/** Pick the column count that gives the largest tiles of a wall-display shape for this many bays. */
function layout() {
  const n = Math.max(state.bays.size, 1);
  const w = grid.clientWidth || window.innerWidth;
  const h = grid.clientHeight || window.innerHeight;
  let best = 1;
  let bestScore = -1;
  for (let cols = 1; cols <= n; cols++) {
    const rows = Math.ceil(n / cols);
    const tw = w / cols;
    const th = h / rows;
    const score = Math.min(tw, th * 1.5); // tiles look best about 1.5 : 1
    if (score > bestScore) {
      bestScore = score;
      best = cols;
    }
  }
  grid.style.setProperty("--cols", String(best));
  grid.style.setProperty("--rows", String(Math.ceil(n / best)));
}

function tick() {
  const now = state.serverNow();
  clockEl.textContent = new Date(now * 1000).toLocaleTimeString([], { hour12: false });
  renderAll(); // ages, staleness and countdowns move with the clock; an audio pause that ran out sounds again
  for (const tile of tiles.values()) tile.redrawTrends(now); // at most once a second per tile
  showBanner();
}

if (typeof ResizeObserver === "function") new ResizeObserver(layout).observe(grid);
else window.addEventListener("resize", layout);
setStatus("connecting");
new LiveConnection({
  onState,
  onMessage,
  onStatus: setStatus,
  onUnauthorized: () => location.replace("/login"),
}).start();
tick();
setInterval(tick, 1000);
