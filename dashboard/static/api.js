// Calling the bedside API from a page: the login cookie goes along by itself; state-changing requests also
// carry the session's CSRF token (X-CSRF-Token), read once from GET /api/me. A 401 sends the page to /login.

export class ApiError extends Error {
  constructor(status, detail) {
    super(`HTTP ${status}: ${detail}`);
    this.status = status;
    this.detail = detail;
  }
}

let mePromise = null;

function toLogin() {
  location.replace(`/login?next=${encodeURIComponent(location.pathname + location.search)}`);
}

async function detailOf(resp) {
  try {
    const body = await resp.json();
    return typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail ?? body);
  } catch {
    return resp.statusText || "request failed";
  }
}

/** Who is logged in: {name, role, csrf}. Cached; `me(true)` asks again. */
export function me(refresh = false) {
  if (!mePromise || refresh) {
    mePromise = fetch("/api/me", { credentials: "same-origin", cache: "no-store" }).then(async (resp) => {
      if (resp.status === 401) {
        toLogin();
        throw new ApiError(401, "not logged in");
      }
      if (!resp.ok) throw new ApiError(resp.status, await detailOf(resp));
      return resp.json();
    });
    mePromise.catch(() => { mePromise = null; });
  }
  return mePromise;
}

const ROLE_RANK = { viewer: 0, nurse: 1, admin: 2 };

/** Whether `role` includes `needed` (viewer < nurse < admin). */
export function allows(role, needed) {
  return (ROLE_RANK[role] ?? -1) >= ROLE_RANK[needed];
}

/** `method` `path` with an optional JSON body; resolves to the parsed JSON (or text for non-JSON replies). */
export async function api(method, path, body = undefined, retried = false) {
  const headers = { Accept: "application/json" };
  if (method !== "GET" && method !== "HEAD") headers["X-CSRF-Token"] = (await me(retried)).csrf;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const resp = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
    cache: "no-store",
  });
  if (resp.status === 401) {
    toLogin();
    throw new ApiError(401, "not logged in");
  }
  if (!resp.ok) {
    const detail = await detailOf(resp);
    // logged in again in another tab: this tab's CSRF token is old; ask for the session's and try once more
    if (resp.status === 403 && detail.startsWith("CSRF") && !retried) return api(method, path, body, true);
    throw new ApiError(resp.status, detail);
  }
  const type = resp.headers.get("content-type") ?? "";
  return type.includes("json") ? resp.json() : resp.text();
}
