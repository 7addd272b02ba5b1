// The nurse's live page: header (site, connection, clock), one tile per bay, the "NOT CONNECTED" banner.
// All alarm decisions come from the server; this page only shows them.

import { LiveConnection } from "./live.js";
import { LiveState } from "./state.js";
import { Tile } from "./tiles.js";

const OFFLINE_GRACE_MS = 2000; // on first load, how long "connecting" may last before the banner shows

const state = new LiveState();
const tiles = new Map(); // bay id -> Tile
const dirty = new Set(); // bay ids to redraw on the next animation frame
let frameRequested = false;
let everLive = false;
let status = "connecting";

const grid = document.getElementById("bays");
const siteEl = document.getElementById("site");
const connEl = document.getElementById("conn");
const clockEl = document.getElementById("clock");
const banner = document.getElementById("offline-banner");
const emptyEl = document.getElementById("no-bays");

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
    for (const [key, v] of Object.entries(bay.vitals)) tile.trend.push(key, v.time, v.value);
  }
  emptyEl.hidden = state.bays.size > 0;
  layout();
  renderAll();
}

function onMessage(msg) {
  const bay = state.apply(msg);
  if (!bay) return;
  const tile = tiles.get(bay.id);
  if (msg.type === "obs" && tile) tile.trend.push(msg.vital, msg.time, msg.value);
  dirty.add(bay.id);
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
}

function setStatus(s) {
  status = s;
  if (s === "live") everLive = true;
  document.body.dataset.connection = s;
  connEl.dataset.connection = s;
  connEl.textContent = { live: "\u25CF LIVE", connecting: "\u25CC CONNECTING", disconnected: "\u2716 OFFLINE" }[s];
  showBanner();
}

function showBanner() {
  // Before the first connection, give it a moment; after a loss, show it at once.
  banner.hidden = status === "live" || (!everLive && performance.now() < OFFLINE_GRACE_MS);
  document.body.classList.toggle("offline", !banner.hidden);
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
  renderAll(); // ages and staleness move with the clock
  for (const tile of tiles.values()) tile.trend.redraw(now); // at most once a second per tile
  showBanner();
}

window.addEventListener("resize", layout);
setStatus("connecting");
new LiveConnection({
  onState,
  onMessage,
  onStatus: setStatus,
  onUnauthorized: () => location.replace("/login"),
}).start();
tick();
setInterval(tick, 1000);
