// Log in with a name and password, or with an access token: typed in, or from a one-click URL /login#token=XYZ
// (for wall displays). On success, go back to the page that sent us here (?next=/bay/bay1), else to "/".

const form = document.getElementById("login-form");
const tokenForm = document.getElementById("token-form");
const errorEl = document.getElementById("login-error");

function showError(text) {
  errorEl.textContent = text;
  errorEl.hidden = !text;
}

/** Only a page of this site: the URL parser decides (it drops tabs and newlines, reads "\\" as "/"), and
 *  anything that resolves to another origin goes to "/". */
function nextPage() {
  const next = new URLSearchParams(location.search).get("next") ?? "/";
  if (!next.startsWith("/")) return "/";
  try {
    const url = new URL(next, location.origin);
    return url.origin === location.origin ? url.pathname + url.search + url.hash : "/";
  } catch {
    return "/";
  }
}

async function login(body, buttons) {
  showError("");
  for (const b of buttons) b.disabled = true;
  try {
    const resp = await fetch("/api/login", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    if (resp.ok) {
      location.replace(nextPage());
      return;
    }
    let detail = "";
    try {
      detail = (await resp.json()).detail ?? "";
    } catch {
      // no JSON body
    }
    if (resp.status === 401) showError(body.token ? "Token not accepted" : "Name or password not accepted");
    else if (resp.status === 429) showError(`Too many failed logins. ${detail}`);
    else showError(`Login failed (HTTP ${resp.status}) ${detail}`);
  } catch {
    showError("Cannot reach the server");
  } finally {
    for (const b of buttons) b.disabled = false;
  }
}

const buttons = [...document.querySelectorAll("button")];

form.addEventListener("submit", (ev) => {
  ev.preventDefault();
  login({ name: document.getElementById("name").value.trim(), password: document.getElementById("password").value },
    buttons);
});

tokenForm.addEventListener("submit", (ev) => {
  ev.preventDefault();
  login({ token: document.getElementById("token").value.trim() }, buttons);
});

const match = /^#token=(.+)$/.exec(location.hash);
if (match) {
  // Take the token out of the address bar and history before using it.
  history.replaceState(null, "", location.pathname + location.search);
  let token = match[1];
  try {
    token = decodeURIComponent(token);
  } catch {
    // not percent-encoded: use as is
  }
  login({ token }, buttons);
}
