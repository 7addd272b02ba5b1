// The connection to the server: GET /api/bays, then the /ws/live websocket; on any loss, back off
// (1, 2, 4, 8, 10, 10 ... s), refetch the full state and reopen the websocket.

const BACKOFF_MAX_S = 10;
// Once the server has sent a heartbeat on a socket, this much silence means the socket is dead even
// if the browser has not noticed (half-open TCP, a stalled Wi-Fi). Without heartbeats only the close event
// counts. The server sends something at least every second, and this is checked 4 times a second, so a
// dead link shows NOT CONNECTED within 2.75 s.
const HEARTBEAT_TIMEOUT_S = 2.5;
const HEARTBEAT_CHECK_MS = 250;

export class Unauthorized extends Error {}

export async function fetchBays() {
  const resp = await fetch("/api/bays", { credentials: "same-origin", cache: "no-store" });
  if (resp.status === 401) throw new Unauthorized("not logged in");
  if (!resp.ok) throw new Error(`GET /api/bays: HTTP ${resp.status}`);
  return resp.json();
}

function socketUrl() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/ws/live?batch=1`; // a burst of items comes as one {"type": "batch"}
}

/**
 * handlers: onState(body)   full state (from /api/bays or a websocket snapshot)
 *           onMessage(msg)  any other websocket message
 *           onStatus(s)     "connecting" | "live" | "disconnected"
 *           onUnauthorized()
 */
export class LiveConnection {
  constructor(handlers) {
    this.h = handlers;
    this.ws = null;
    this.delay = 1;
    this.timer = null;
    this.lastMessageAt = 0;
    this.sawHeartbeat = false;
    setInterval(() => this.checkHeartbeat(), HEARTBEAT_CHECK_MS);
  }

  start() {
    this.connect();
  }

  async connect() {
    this.timer = null;
    this.h.onStatus("connecting");
    try {
      this.h.onState(await fetchBays());
    } catch (err) {
      if (err instanceof Unauthorized) {
        this.h.onUnauthorized();
        return;
      }
      this.lost();
      return;
    }
    this.openSocket();
  }

  openSocket() {
    const ws = new WebSocket(socketUrl());
    this.ws = ws;
    this.sawHeartbeat = false;
    this.lastMessageAt = Date.now();
    ws.addEventListener("message", (ev) => {
      if (ws !== this.ws) return;
      this.lastMessageAt = Date.now();
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        return;
      }
      if (msg.type === "snapshot") {
        // The server sends something at least every 2 s once live (an item or a heartbeat), so from here on
        // silence means a dead link even on a busy site where no heartbeat is ever needed.
        this.sawHeartbeat = true;
        this.h.onState(msg);
        this.delay = 1;
        this.h.onStatus("live");
        return;
      }
      for (const item of msg.type === "batch" ? msg.items : [msg]) {
        if (item.type === "heartbeat") this.sawHeartbeat = true;
        this.h.onMessage(item);
      }
    });
    ws.addEventListener("close", () => {
      if (ws === this.ws) this.lost();
    });
  }

  checkHeartbeat() {
    const ws = this.ws;
    if (ws && this.sawHeartbeat && Date.now() - this.lastMessageAt > HEARTBEAT_TIMEOUT_S * 1000) {
      this.lost();
      ws.close();
    }
  }

  lost() {
    this.ws = null;
    this.h.onStatus("disconnected");
    if (this.timer) return;
    const delay = this.delay;
    this.delay = Math.min(this.delay * 2, BACKOFF_MAX_S);
    this.timer = setTimeout(() => this.connect(), delay * 1000);
  }
}
