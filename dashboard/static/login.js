// Log in with a token: typed into the form, or from a one-click URL /login#token=XYZ.

const form = document.getElementById("login-form");
const input = document.getElementById("token");
const errorEl = document.getElementById("login-error");
const button = form.querySelector("button");

function showError(text) {
  errorEl.textContent = text;
  errorEl.hidden = !text;
}

async function login(token) {
  showError("");
  button.disabled = true;
  try {
    const resp = await fetch("/api/login", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ token }),
    });
    if (resp.ok) {
      location.replace("/");
      return;
    }
    showError(resp.status === 401 ? "Token not accepted" : `Login failed (HTTP ${resp.status})`);
  } catch {
    showError("Cannot reach the server");
  } finally {
    button.disabled = false;
  }
}

form.addEventListener("submit", (ev) => {
  ev.preventDefault();
  login(input.value.trim());
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
  login(token);
}
