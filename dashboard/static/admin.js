// The admin page (/admin): users, API tokens and the audit log. Everything goes through the admin API
// (GET/POST/PATCH/DELETE /api/users, /api/tokens, GET /api/audit); the server enforces the admin role, and a
// refused request shows the server's reason in the section's [role=alert] element. Text from the server (names,
// labels, audit values) is only ever set as textContent, never parsed as HTML.
//
// For tests: body[data-access] "checking" | "granted" | "denied"; rows tr[data-user="<name>"] (data-role,
// data-disabled), tr[data-token-id="<id>"], tr[data-audit-action="<action>"] (data-who, data-target);
// #new-token holds a just-created token and #new-token-url its one-click wall-display URL.

import { api, me, allows, ApiError } from "./api.js";

const $ = (id) => document.getElementById(id);
const ROLES = ["viewer", "nurse", "admin"];

let self = { name: "", role: "viewer", user: null };

// ---------- small helpers ----------

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key in node && typeof value !== "string") node[key] = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const pad = (n) => String(n).padStart(2, "0");

/** Unix seconds as local "YYYY-MM-DD HH:MM:SS". */
function localTime(t) {
  const d = new Date(t * 1000);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

function timeCell(t, empty = "—") {
  if (t === null || t === undefined) return el("td", { class: "muted", text: empty });
  const iso = new Date(t * 1000).toISOString();
  return el("td", { class: "time" }, el("time", { datetime: iso, title: iso, text: localTime(t) }));
}

function showMessage(node, text) {
  node.textContent = text ?? "";
  node.hidden = !text;
}

function reason(err) {
  if (err instanceof ApiError) return err.detail || `HTTP ${err.status}`;
  return err?.message ?? String(err);
}

/** The admin role went away (or never was): say so instead of half a page. */
function denied(detail) {
  document.body.dataset.access = "denied";
  $("admin").hidden = true;
  const who = self.name ? ` You are logged in as ${self.name} (${self.role}).` : "";
  showMessage($("page-error"), `This page needs the admin role.${who}${detail ? ` (${detail})` : ""}`);
}

/** Run `call`; a refusal is shown in `errorNode` (403 means we are not an admin any more). */
async function attempt(errorNode, call) {
  showMessage(errorNode, "");
  try {
    return await call();
  } catch (err) {
    if (err instanceof ApiError && err.status === 403 && /needs role/.test(err.detail)) denied(err.detail);
    else showMessage(errorNode, reason(err));
    throw err;
  }
}

/** Disable `button` while `promise` runs. */
async function busy(button, promise) {
  if (button) button.disabled = true;
  try {
    return await promise;
  } finally {
    if (button) button.disabled = false;
  }
}

const quietly = (promise) => promise.catch(() => undefined);

function roleSelect(current, disabledRoles = []) {
  const select = el("select", { "aria-label": "Role" });
  for (const role of ROLES) {
    const option = el("option", { value: role, text: role });
    if (role === current) option.selected = true;
    if (disabledRoles.includes(role)) option.disabled = true;
    select.append(option);
  }
  return select;
}

/** A button that asks once more in place ("Really …?") before doing `action`. */
function confirmButton(label, question, action) {
  const wrap = el("span", { class: "confirm" });
  const first = el("button", { type: "button", class: "action danger", text: label });
  const yes = el("button", { type: "button", class: "action danger", text: `Yes, ${label.toLowerCase()}`,
    dataset: { confirm: "yes" } });
  const no = el("button", { type: "button", class: "action secondary", text: "Cancel", dataset: { confirm: "no" } });
  const ask = el("span", { class: "confirm-question", text: question });
  const asking = [ask, yes, no];
  for (const node of asking) node.hidden = true;
  const set = (on) => {
    first.hidden = on;
    for (const node of asking) node.hidden = !on;
  };
  first.addEventListener("click", () => { set(true); yes.focus(); });
  no.addEventListener("click", () => set(false));
  yes.addEventListener("click", () => { set(false); busy(first, action()); });
  wrap.append(first, ...asking);
  return wrap;
}

// ---------- users ----------

async function loadUsers() {
  const { users } = await attempt($("users-error"), () => api("GET", "/api/users"));
  renderUsers(users);
  const names = $("who-names");
  names.replaceChildren(...users.map((u) => el("option", { value: u.name })));
}

function renderUsers(users) {
  const body = $("users");
  body.replaceChildren(...users.map(userRow));
  $("no-users").hidden = users.length > 0;
}

async function changeUser(name, change, done) {
  const user = await attempt($("users-error"),
    () => api("PATCH", `/api/users/${encodeURIComponent(name)}`, change));
  showMessage($("users-status"), done(user));
  await Promise.all([quietly(loadUsers()), quietly(loadAudit())]);
}

function userRow(u) {
  const isSelf = self.user !== null && self.user === u.name;
  const row = el("tr", { dataset: { user: u.name, role: u.role, disabled: String(u.disabled) } });
  if (u.disabled) row.classList.add("disabled");

  const nameCell = el("td", { class: "name" }, u.name, isSelf ? el("span", { class: "you", text: " (you)" }) : null);
  const status = el("td", { class: "status", dataset: { disabled: String(u.disabled) },
    text: u.disabled ? "disabled" : "active" });

  const actions = el("div", { class: "actions" });

  // change role
  const select = roleSelect(u.role, isSelf ? ["viewer", "nurse"] : []);
  const setRole = el("button", { type: "button", class: "action", text: "Change role", dataset: { act: "role" } });
  setRole.addEventListener("click", () => {
    if (select.value === u.role) return;
    busy(setRole, quietly(changeUser(u.name, { role: select.value },
      (x) => `${x.name} is now ${x.role}.`)));
  });
  const roleGroup = el("span", { class: "group" }, select, setRole);

  // reset password
  const pwToggle = el("button", { type: "button", class: "action", text: "Reset password", dataset: { act: "password" } });
  const pw = el("input", { type: "password", placeholder: "new password", autocomplete: "new-password",
    minLength: 8, required: true, "aria-label": `New password for ${u.name}` });
  const pw2 = el("input", { type: "password", placeholder: "confirm", autocomplete: "new-password",
    minLength: 8, required: true, "aria-label": `Confirm new password for ${u.name}` });
  const pwSave = el("button", { type: "submit", class: "action primary", text: "Set password" });
  const pwCancel = el("button", { type: "button", class: "action secondary", text: "Cancel" });
  const pwForm = el("form", { class: "password-form", hidden: true }, pw, pw2, pwSave, pwCancel);
  pwToggle.addEventListener("click", () => { pwForm.hidden = false; pwToggle.hidden = true; pw.focus(); });
  pwCancel.addEventListener("click", () => { pwForm.hidden = true; pwToggle.hidden = false; pwForm.reset(); });
  pwForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    if (pw.value !== pw2.value) {
      showMessage($("users-error"), "The two passwords differ.");
      return;
    }
    busy(pwSave, quietly(changeUser(u.name, { password: pw.value }, (x) => `New password set for ${x.name}.`)));
  });

  // disable / enable
  const toggle = el("button", { type: "button", class: "action", text: u.disabled ? "Enable" : "Disable",
    dataset: { act: u.disabled ? "enable" : "disable" } });
  toggle.disabled = isSelf && !u.disabled;
  if (toggle.disabled) toggle.title = "You cannot disable yourself";
  toggle.addEventListener("click", () => {
    busy(toggle, quietly(changeUser(u.name, { disabled: !u.disabled },
      (x) => `${x.name} is ${x.disabled ? "disabled: they cannot log in" : "enabled again"}.`)));
  });

  actions.append(roleGroup, pwToggle, toggle);
  if (!isSelf) {
    actions.append(confirmButton("Delete", `Delete ${u.name}?`, async () => {
      await quietly((async () => {
        await attempt($("users-error"), () => api("DELETE", `/api/users/${encodeURIComponent(u.name)}`));
        showMessage($("users-status"), `Deleted ${u.name}.`);
        await Promise.all([quietly(loadUsers()), quietly(loadAudit())]);
      })());
    }));
  }
  actions.append(pwForm);

  row.append(nameCell, el("td", { class: "role", text: u.role }), status, timeCell(u.last_login, "never"),
    timeCell(u.created), el("td", {}, actions));
  return row;
}

function setupUserForm() {
  const form = $("user-form");
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const data = new FormData(form);
    const name = String(data.get("name") ?? "").trim();
    const password = String(data.get("password") ?? "");
    if (password !== String(data.get("confirm") ?? "")) {
      showMessage($("users-error"), "The two passwords differ.");
      return;
    }
    const button = form.querySelector("button[type=submit]");
    await busy(button, quietly((async () => {
      const user = await attempt($("users-error"),
        () => api("POST", "/api/users", { name, role: String(data.get("role")), password }));
      form.reset();
      showMessage($("users-status"), `Added ${user.role} ${user.name}.`);
      await Promise.all([quietly(loadUsers()), quietly(loadAudit())]);
    })()));
  });
  $("users-refresh").addEventListener("click", (ev) => busy(ev.currentTarget, quietly(loadUsers())));
}

// ---------- tokens ----------

async function loadTokens() {
  const { tokens } = await attempt($("tokens-error"), () => api("GET", "/api/tokens"));
  $("tokens").replaceChildren(...tokens.map(tokenRow));
  $("no-tokens").hidden = tokens.length > 0;
}

function tokenRow(t) {
  const row = el("tr", { dataset: { tokenId: t.id, role: t.role } });
  const revoke = confirmButton("Revoke", `Revoke ${t.label || t.id}? Displays using it are logged out.`, async () => {
    await quietly((async () => {
      await attempt($("tokens-error"), () => api("DELETE", `/api/tokens/${encodeURIComponent(t.id)}`));
      if ($("new-token-box").dataset.tokenId === t.id) hideNewToken();
      await Promise.all([quietly(loadTokens()), quietly(loadAudit())]);
    })());
  });
  row.append(el("td", { class: "mono", text: t.id }), el("td", { class: "role", text: t.role }),
    el("td", { text: t.label || "—", class: t.label ? null : "muted" }), timeCell(t.created),
    el("td", {}, el("div", { class: "actions" }, revoke)));
  return row;
}

function wallUrl(token) {
  return `${location.origin}/login#token=${encodeURIComponent(token)}`;
}

function showNewToken(made) {
  $("new-token-role").textContent = made.role;
  $("new-token-label").textContent = made.label ? `“${made.label}”` : "";
  $("new-token").textContent = made.token;
  $("new-token-url").textContent = wallUrl(made.token);
  $("copy-status").textContent = "";
  const box = $("new-token-box");
  box.dataset.tokenId = made.id;
  box.hidden = false;
}

function hideNewToken() {
  const box = $("new-token-box");
  box.hidden = true;
  delete box.dataset.tokenId;
  $("new-token").textContent = "";
  $("new-token-url").textContent = "";
}

async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  // not a secure context (plain http to another host): the old way, through a selected text field
  const area = el("textarea", { class: "offscreen", readonly: "" });
  area.value = text;
  document.body.append(area);
  area.select();
  const ok = document.execCommand("copy");
  area.remove();
  if (!ok) throw new Error("the browser refused to copy");
}

function setupTokens() {
  const form = $("token-form");
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const data = new FormData(form);
    const button = form.querySelector("button[type=submit]");
    await busy(button, quietly((async () => {
      const made = await attempt($("tokens-error"), () => api("POST", "/api/tokens",
        { role: String(data.get("role")), label: String(data.get("label") ?? "").trim() }));
      form.reset();
      showNewToken(made);
      await Promise.all([quietly(loadTokens()), quietly(loadAudit())]);
    })()));
  });
  for (const button of document.querySelectorAll("button[data-copy]")) {
    button.addEventListener("click", async () => {
      const source = $(button.dataset.copy);
      try {
        await copyText(source.textContent);
        $("copy-status").textContent = `Copied the ${button.dataset.copy === "new-token" ? "token" : "URL"}.`;
      } catch (err) {
        // select it so that Ctrl-C works
        const range = document.createRange();
        range.selectNodeContents(source);
        getSelection()?.removeAllRanges();
        getSelection()?.addRange(range);
        $("copy-status").textContent = `Cannot copy (${reason(err)}): it is selected, press Ctrl-C.`;
      }
    });
  }
  $("new-token-done").addEventListener("click", hideNewToken);
  $("tokens-refresh").addEventListener("click", (ev) => busy(ev.currentTarget, quietly(loadTokens())));
}

// ---------- audit ----------

/** datetime-local value (local time) -> unix seconds; `end` includes the whole last minute/second given. */
function toUnix(value, end) {
  if (!value) return null;
  const ms = new Date(value).getTime();
  if (Number.isNaN(ms)) return null;
  const hasSeconds = /T\d\d:\d\d:\d\d/.test(value);
  return ms / 1000 + (end ? (hasSeconds ? 0.999 : 59.999) : 0);
}

function auditQuery() {
  const data = new FormData($("audit-filters"));
  const q = new URLSearchParams();
  const since = toUnix(String(data.get("since") ?? ""), false);
  const until = toUnix(String(data.get("until") ?? ""), true);
  if (since !== null) q.set("since", String(since));
  if (until !== null) q.set("until", String(until));
  for (const key of ["bay", "who", "action"]) {
    const value = String(data.get(key) ?? "").trim();
    if (value) q.set(key, value);
  }
  q.set("limit", String(data.get("limit") ?? "1000"));
  return q;
}

function updateCsvLink() {
  const q = auditQuery();
  q.set("format", "csv");
  $("audit-csv").href = `/api/audit?${q}`;
}

function parseJson(text) {
  if (text === null || text === undefined || text === "") return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text; // not JSON: show as is
  }
}

function compact(value) {
  if (value === undefined) return "";
  if (value === null) return "none";
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  if (Array.isArray(value)) return value.map(compact).join(", ");
  return Object.entries(value).map(([k, v]) => `${k}: ${typeof v === "object" && v !== null ? JSON.stringify(v) : compact(v)}`).join(", ");
}

const isPlainObject = (v) => typeof v === "object" && v !== null && !Array.isArray(v);

/** before → after, compactly: for two objects, what changed comes first as "key: was → now"; unchanged keys
 *  follow, dimmed. */
function changeCell(beforeText, afterText) {
  const before = parseJson(beforeText);
  const after = parseJson(afterText);
  const cell = el("td", { class: "change" });
  const raw = [beforeText && `before: ${beforeText}`, afterText && `after: ${afterText}`].filter(Boolean).join("\n");
  if (raw) cell.title = raw;
  if (before === undefined && after === undefined) {
    cell.append(el("span", { class: "muted", text: "—" }));
    return cell;
  }
  if (isPlainObject(before) && isPlainObject(after)) {
    const same = (key) => JSON.stringify(before[key]) === JSON.stringify(after[key]);
    const all = [...new Set([...Object.keys(before), ...Object.keys(after)])];
    const keys = [...all.filter((k) => !same(k)), ...all.filter(same)]; // what changed first
    keys.forEach((key, i) => {
      if (i > 0) cell.append(", ");
      const was = before[key];
      const now = after[key];
      if (same(key)) {
        cell.append(el("span", { class: "same", text: `${key}: ${compact(now)}` }));
      } else {
        cell.append(el("span", { class: "changed" }, `${key}: `,
          el("span", { class: "before", text: was === undefined ? "—" : compact(was) }), " → ",
          el("span", { class: "after", text: now === undefined ? "—" : compact(now) })));
      }
    });
    return cell;
  }
  if (before !== undefined) cell.append(el("span", { class: "before", text: compact(before) }), " → ");
  cell.append(el("span", { class: "after", text: after === undefined ? "—" : compact(after) }));
  return cell;
}

function auditRow(r) {
  const row = el("tr", { dataset: { auditAction: r.action, who: r.who ?? "", target: r.target ?? "",
    bay: r.bay ?? "" } });
  if (/failed|refused/.test(r.action)) row.classList.add("warn");
  row.append(timeCell(r.time), el("td", { class: "who-cell", text: r.who ?? "" }),
    el("td", { class: "action-name", text: r.action }), el("td", { text: r.bay ?? "" }),
    el("td", { class: "target", text: r.target ?? "" }), changeCell(r.before, r.after));
  return row;
}

let auditSeq = 0;

async function loadAudit() {
  const seq = ++auditSeq;
  const q = auditQuery();
  updateCsvLink();
  const { records } = await attempt($("audit-error"), () => api("GET", `/api/audit?${q}`));
  if (seq !== auditSeq) return; // a newer request is on its way
  $("audit").replaceChildren(...records.map(auditRow));
  $("no-audit").hidden = records.length > 0;
  const limit = Number(q.get("limit"));
  $("audit-count").textContent = records.length >= limit
    ? `newest ${records.length} records shown (there may be more: narrow the filters or export)`
    : `${records.length} record${records.length === 1 ? "" : "s"}, newest first`;
}

function setupAudit() {
  const form = $("audit-filters");
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    busy($("audit-apply"), quietly(loadAudit()));
  });
  form.addEventListener("input", updateCsvLink);
  form.addEventListener("change", updateCsvLink);
  $("audit-clear").addEventListener("click", () => {
    form.reset();
    busy($("audit-apply"), quietly(loadAudit()));
  });
  // the export has the filters shown in the form; the table is brought in line with them too
  $("audit-csv").addEventListener("click", () => {
    updateCsvLink();
    quietly(loadAudit());
  });
}

async function loadBays() {
  try {
    const snap = await api("GET", "/api/bays");
    $("bay-names").replaceChildren(...snap.bays.map((b) => el("option", { value: b.id, label: b.name })));
  } catch {
    // only a convenience for the bay filter
  }
}

// ---------- start ----------

async function start() {
  $("logout").addEventListener("click", async (ev) => {
    ev.currentTarget.disabled = true;
    try {
      await api("POST", "/api/logout", {});
    } catch {
      // gone anyway
    }
    location.replace("/login");
  });

  try {
    self = await me();
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) showMessage($("page-error"), `Cannot load: ${reason(err)}`);
    return;
  }
  const who = $("who");
  who.textContent = `${self.name} (${self.role})`;
  who.dataset.role = self.role;
  if (!allows(self.role, "admin")) {
    denied("");
    return;
  }
  document.body.dataset.access = "granted";
  $("admin").hidden = false;
  setupUserForm();
  setupTokens();
  setupAudit();
  updateCsvLink();
  await Promise.all([quietly(loadUsers()), quietly(loadTokens()), quietly(loadAudit()), loadBays()]);
  document.body.dataset.loaded = "true";
}

start();
