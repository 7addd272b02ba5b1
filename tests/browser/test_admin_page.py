"""The admin page (/admin) in real Chromium against a real `bedside run`: an admin logs in with a password, adds a
nurse through the page, the nurse logs in elsewhere and sees the live page but is told /admin needs the admin role;
the admin sees both in the audit log (local time, readable before → after), filters it and exports it as CSV;
API tokens are created (shown once, with a one-click wall-display URL that works), copied and revoked."""

from __future__ import annotations

import csv
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, expect

from monitor.mosquitto import free_port
from tests.browser.conftest import VIEWPORT, running_bedside

pytestmark = [pytest.mark.timeout(120), pytest.mark.browser, pytest.mark.service]

ADMIN, ADMIN_PASSWORD = "root", "admin-pass-1"
NURSE, NURSE_PASSWORD = "ann", "nurse-pass-1"
# An odd offset (+12:45 / +13:45), so that "local time" on the page cannot be UTC or the test machine's zone by luck.
ZONE = "Pacific/Chatham"

CONFIG = """
site = "admin-test"
data_dir = "data"
[http]
port = {port}
[[bays]]
id = "bay1"
name = "Bay 1"
[[bays.devices]]
id = "masimo-1"
driver = "masimo"
simulate = true
"""


@dataclass(frozen=True)
class Server:
    base: str
    data_dir: Path


def _cli(*args: str, stdin: str | None = None) -> str:
    done = subprocess.run([sys.executable, "-m", "monitor.cli", *args], input=stdin, capture_output=True,
                          text=True, check=True, timeout=30)
    return done.stdout


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    port = free_port()
    config = tmp_path / "clinic.toml"
    config.write_text(CONFIG.format(port=port))
    data_dir = tmp_path / "data"
    _cli("user", "add", ADMIN, "--role", "admin", "--data-dir", str(data_dir), stdin=f"{ADMIN_PASSWORD}\n")
    with running_bedside(config, port) as (base, _):
        yield Server(base, data_dir)


class NewPage(Protocol):
    def __call__(self, *, timezone_id: str | None = None,
                 permissions: list[str] | None = None) -> tuple[Page, list[str]]: ...


@pytest.fixture
def contexts(browser: Browser) -> Iterator[NewPage]:
    """new(timezone_id=, permissions=) -> (a page in a browser context of its own (own cookies), the console errors
    and uncaught exceptions of that page: a CSP violation shows up there); every context is closed afterwards."""
    made: list[BrowserContext] = []

    def new(*, timezone_id: str | None = None, permissions: list[str] | None = None) -> tuple[Page, list[str]]:
        context = browser.new_context(viewport=VIEWPORT, timezone_id=timezone_id, permissions=permissions)
        made.append(context)
        page = context.new_page()
        errors: list[str] = []

        def on_console(msg: ConsoleMessage) -> None:
            if msg.type == "error":
                errors.append(f"console: {msg.text}")

        page.on("console", on_console)
        page.on("pageerror", lambda exc: errors.append(f"uncaught: {exc}"))
        return page, errors

    try:
        yield new
    finally:
        for context in made:
            context.close()


def password_login(page: Page, base: str, name: str, password: str, path: str) -> None:
    """Open `path`, get sent to the login page, log in with name and password, and land on `path` again."""
    page.goto(f"{base}{path}")
    page.wait_for_url(f"{base}/login**")
    page.fill("#name", name)
    page.fill("#password", password)
    page.click("#login-form button[type=submit]")
    page.wait_for_url(f"{base}{path}")


def open_admin(page: Page, base: str) -> None:
    password_login(page, base, ADMIN, ADMIN_PASSWORD, "/admin")
    page.wait_for_selector('body[data-access="granted"][data-loaded="true"]', timeout=10_000)


def add_user(page: Page, name: str, role: str, password: str, confirm: str | None = None) -> None:
    form = page.locator("#user-form")
    form.locator("[name=name]").fill(name)
    form.locator("[name=role]").select_option(role)
    form.locator("[name=password]").fill(password)
    form.locator("[name=confirm]").fill(password if confirm is None else confirm)
    form.locator("button[type=submit]").click()


def audit_rows(page: Page) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = page.evaluate(
        """() => [...document.querySelectorAll('#audit tr[data-audit-action]')].map(tr => ({
               action: tr.dataset.auditAction, who: tr.dataset.who, target: tr.dataset.target,
               time: tr.cells[0].textContent.trim(), change: tr.cells[5].textContent.trim()}))""")
    return rows


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def export(page: Page, tmp_path: Path, name: str) -> list[dict[str, str]]:
    with page.expect_download(timeout=10_000) as info:
        page.click("#audit-csv")
    download = info.value
    target = tmp_path / name
    download.save_as(target)
    return read_csv(target)


def test_admin_adds_a_nurse_who_cannot_administer_and_the_audit_shows_it(
    contexts: NewPage, server: Server, tmp_path: Path
) -> None:
    base = server.base
    admin, admin_errors = contexts(timezone_id=ZONE)
    open_admin(admin, base)
    expect(admin.locator("#who")).to_have_text(f"{ADMIN} (admin)")
    expect(admin.locator("#back")).to_have_attribute("href", "/")
    me = admin.locator(f'#users tr[data-user="{ADMIN}"]')
    expect(me).to_have_attribute("data-role", "admin")
    expect(me.locator('[data-act="disable"]')).to_be_disabled()  # an admin cannot lock themselves out

    # refusals show the reason: the page's own check, then the server's detail
    error = admin.locator("#users-error[role=alert]")
    add_user(admin, NURSE, "nurse", NURSE_PASSWORD, confirm="something-else")
    expect(error).to_have_text("The two passwords differ.")
    add_user(admin, ADMIN, "nurse", NURSE_PASSWORD)  # the name is taken: 409 with the server's reason
    expect(error).to_be_visible()
    assert ADMIN in error.inner_text() and "differ" not in error.inner_text()

    add_user(admin, NURSE, "nurse", NURSE_PASSWORD)
    row = admin.locator(f'#users tr[data-user="{NURSE}"]')
    expect(row).to_have_attribute("data-role", "nurse")
    expect(row).to_have_attribute("data-disabled", "false")
    expect(row.locator("td").nth(3)).to_have_text("never")  # last login
    expect(error).to_be_hidden()

    # the nurse logs in on another screen: the live page, but /admin says it needs the admin role
    nurse, nurse_errors = contexts()
    password_login(nurse, base, NURSE, NURSE_PASSWORD, "/")
    nurse.wait_for_selector("[data-bay]", timeout=10_000)
    nurse.goto(f"{base}/admin")
    nurse.wait_for_selector('body[data-access="denied"]', timeout=10_000)
    expect(nurse.locator("#page-error[role=alert]")).to_contain_text("needs the admin role")
    expect(nurse.locator("#page-error")).to_contain_text(f"{NURSE} (nurse)")
    expect(nurse.locator("#admin")).to_be_hidden()
    assert nurse.locator("[data-user]").count() == 0
    jar = {c["name"]: c["value"] for c in nurse.context.cookies() if "name" in c and "value" in c}
    assert httpx.get(f"{base}/api/users", cookies=jar, timeout=5).status_code == 403  # the server says no too

    # the admin's audit table, newest first, in local time, with the user creation and the nurse's login
    admin.click("#audit-apply")
    login_row = admin.locator(f'#audit tr[data-audit-action="login"][data-who="{NURSE}"]')
    expect(login_row).to_have_count(1)
    rows = audit_rows(admin)
    actions = [(r["action"], r["who"], r["target"]) for r in rows]
    added = actions.index(("user_add", ADMIN, NURSE))
    nurse_login = actions.index(("login", NURSE, ""))
    assert nurse_login < added, actions  # newest first
    assert actions.index(("login", ADMIN, "")) > added
    assert rows[added]["change"] == "role: nurse"

    # disabling through the page: the row says so, and the audit shows before → after readably
    row.locator('[data-act="disable"]').click()
    expect(row).to_have_attribute("data-disabled", "true")
    change = admin.locator('#audit tr[data-audit-action="user_change"]').first
    expect(change).to_have_attribute("data-target", NURSE)
    expect(change.locator("td").nth(5)).to_have_text("disabled: false → true, role: nurse")
    row.locator('[data-act="enable"]').click()
    expect(row).to_have_attribute("data-disabled", "false")
    row.locator('[data-act="role"]').wait_for()
    row.locator("select").select_option("viewer")
    row.locator('[data-act="role"]').click()
    expect(row).to_have_attribute("data-role", "viewer")

    # a new password through the page (typed twice); the old one stops working
    row.locator('[data-act="password"]').click()
    row.locator(".password-form input").nth(0).fill("renewed-pass-2")
    row.locator(".password-form input").nth(1).fill("renewed-pass-2")
    row.locator(".password-form button[type=submit]").click()
    expect(admin.locator("#users-status")).to_have_text(f"New password set for {NURSE}.")
    expect(admin.locator('#audit tr[data-audit-action="user_change"]').first.locator("td").nth(5)).to_contain_text(
        "password: — → changed")
    for password, status in ((NURSE_PASSWORD, 401), ("renewed-pass-2", 200)):
        assert httpx.post(f"{base}/api/login", json={"name": NURSE, "password": password},
                          timeout=5).status_code == status

    # the CSV export (every record), then with the same filters as the page's
    everything = export(admin, tmp_path, "all.csv")
    assert [r["action"] for r in everything] == [r["action"] for r in audit_rows(admin)]
    assert any(r["action"] == "user_add" and r["who"] == ADMIN and r["target"] == NURSE for r in everything)
    logins = [r for r in everything if r["action"] == "login" and r["who"] == NURSE]
    assert len(logins) == 2  # on the page, and with the new password
    # the table shows the record's time in the browser's time zone
    at = datetime.strptime(logins[-1]["time_utc"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    shown = [r["time"] for r in audit_rows(admin) if r["action"] == "login" and r["who"] == NURSE][-1]
    assert shown == at.astimezone(ZoneInfo(ZONE)).strftime("%Y-%m-%d %H:%M:%S")

    admin.fill("#audit-filters [name=who]", NURSE)
    filtered = export(admin, tmp_path, "nurse.csv")
    assert [(r["action"], r["who"]) for r in filtered] == [("login", NURSE), ("login_failed", NURSE), ("login", NURSE)]
    expect(admin.locator("#audit tr[data-audit-action]")).to_have_count(3)  # the table follows the filters
    assert "who=ann" in (admin.locator("#audit-csv").get_attribute("href") or "")

    # a time filter in local time: nothing from an hour ahead on
    ahead = datetime.now(ZoneInfo(ZONE)).replace(microsecond=0).timestamp() + 3600
    admin.fill("#audit-filters [name=since]",
               datetime.fromtimestamp(ahead, ZoneInfo(ZONE)).strftime("%Y-%m-%dT%H:%M:%S"))
    admin.click("#audit-apply")
    expect(admin.locator("#no-audit")).to_be_visible()
    expect(admin.locator("#audit tr")).to_have_count(0)
    admin.click("#audit-clear")
    expect(admin.locator(f'#audit tr[data-audit-action="user_add"][data-target="{NURSE}"]')).to_have_count(1)

    # delete, with a confirmation first
    row.get_by_role("button", name="Delete", exact=True).click()
    expect(row).to_have_count(1)
    expect(row.locator(".confirm-question")).to_have_text(f"Delete {NURSE}?")
    row.locator('[data-confirm="yes"]').click()
    expect(row).to_have_count(0)
    expect(admin.locator(f'#audit tr[data-audit-action="user_delete"][data-target="{NURSE}"]')).to_have_count(1)

    # no script error, no CSP violation (Chromium logs the refused request we provoked, the 409, as an error)
    assert [e for e in admin_errors if "status of 409" not in e] == []
    assert nurse_errors == []  # the nurse's page did not even try the admin API


def test_admin_creates_a_token_shown_once_whose_wall_url_logs_in_and_revokes_it(
    contexts: NewPage, server: Server
) -> None:
    base = server.base
    admin, admin_errors = contexts(permissions=["clipboard-read", "clipboard-write"])
    open_admin(admin, base)
    expect(admin.locator("#tokens tr[data-token-id]")).to_have_count(0)
    expect(admin.locator("#new-token")).to_be_hidden()

    form = admin.locator("#token-form")
    form.locator("[name=role]").select_option("viewer")
    form.locator("[name=label]").fill("station display")
    form.locator("button[type=submit]").click()
    expect(admin.locator("#new-token")).to_be_visible()
    token = admin.locator("#new-token").inner_text().strip()
    assert len(token) >= 32
    url = admin.locator("#new-token-url").inner_text().strip()
    assert url == f"{base}/login#token={token}"
    row = admin.locator("#tokens tr[data-token-id]")
    expect(row).to_have_count(1)
    token_id = row.get_attribute("data-token-id") or ""
    assert token_id and token.find(token_id) == -1  # the list shows an id of the hash, never the token
    expect(row).to_contain_text("station display")
    expect(row).to_contain_text("viewer")

    admin.locator('button[data-copy="new-token-url"]').click()
    expect(admin.locator("#copy-status")).to_have_text("Copied the URL.")
    assert admin.evaluate("() => navigator.clipboard.readText()") == url
    admin.locator('button[data-copy="new-token"]').click()
    assert admin.evaluate("() => navigator.clipboard.readText()") == token

    # the one-click URL logs a wall display in
    wall, wall_errors = contexts()
    wall.goto(url)
    wall.wait_for_url(f"{base}/")
    wall.wait_for_selector("[data-bay]", timeout=10_000)
    assert wall_errors == []
    wall.context.close()

    # shown once: hidden on request, and not shown again after a reload
    admin.click("#new-token-done")
    expect(admin.locator("#new-token-box")).to_be_hidden()
    assert admin.locator("#new-token").inner_text() == ""
    admin.reload()
    admin.wait_for_selector('body[data-access="granted"][data-loaded="true"]')
    assert token not in admin.content()
    expect(admin.locator(f'#audit tr[data-audit-action="token_create"][data-target="{token_id}"]')).to_have_count(1)
    expect(admin.locator('#audit tr[data-audit-action="login"][data-who="station display"]')).to_have_count(1)

    # revoked (after a confirmation): the token no longer opens anything
    assert httpx.get(f"{base}/api/bays", headers={"Authorization": f"Bearer {token}"}, timeout=5).status_code == 200
    row = admin.locator(f'#tokens tr[data-token-id="{token_id}"]')
    row.get_by_role("button", name="Revoke", exact=True).click()
    row.locator('[data-confirm="yes"]').click()
    expect(row).to_have_count(0)
    assert httpx.get(f"{base}/api/bays", headers={"Authorization": f"Bearer {token}"}, timeout=5).status_code == 401
    expect(admin.locator(f'#audit tr[data-audit-action="token_revoke"][data-target="{token_id}"]')).to_have_count(1)

    admin.click("#logout")
    admin.wait_for_url(f"{base}/login")
    admin.goto(f"{base}/admin")
    admin.wait_for_url(f"{base}/login?next=/admin")  # logged out: the page needs a login again
    assert admin_errors == []
