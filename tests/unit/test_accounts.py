"""Accounts and security: every endpoint but health refuses anonymous requests; users log in with argon2-hashed
passwords into a server-side session; cookie requests that change something need the CSRF token; logins are rate
limited; roles are enforced by the server; every login and user change is audited and admins can export it."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from dashboard.app import LiveSources
from dashboard.auth import COOKIE
from monitor.db import DB_NAME
from monitor.model import Reading
from monitor.store import AuditQuery
from monitor.tokens import create_token
from monitor.users import add_user
from tests.unit.conftest import World, bearer

PASSWORD = "correct horse battery"


def logged_in(client: TestClient, src: LiveSources, name: str = "ann", role: str = "nurse") -> str:
    """Add user `name` and log the client in as them; returns the session's CSRF token."""
    add_user(src.db, name, role, PASSWORD)
    resp = client.post("/api/login", json={"name": name, "password": PASSWORD})
    assert resp.status_code == 200, resp.text
    csrf: str = client.get("/api/me").json()["csrf"]
    return csrf


def test_every_endpoint_but_health_refuses_anonymous_requests(world: World) -> None:
    """Every API operation of the OpenAPI schema, the pages and the websocket."""
    client, _, tokens = world
    schema = client.get("/api/openapi.json", headers=bearer(tokens, "viewer")).json()
    operations = [(method.upper(), path) for path, ops in schema["paths"].items() for method in ops]
    assert len(operations) >= 20 and ("GET", "/api/audit") in operations  # the routes were really found
    for method, template in operations:
        path = re.sub(r"\{[^}]+\}", "bay1", template)
        resp = client.request(method, path, json={}, follow_redirects=False)
        if template == "/api/health":
            assert resp.status_code == 200
        elif template in ("/api/login", "/api/logout"):  # nothing to log in with / nobody to log out
            cookie = resp.headers.get("set-cookie", "")
            assert resp.status_code in (200, 400, 401) and (COOKIE not in cookie or "Max-Age=0" in cookie)
        else:
            assert resp.status_code == 401, (method, path, resp.status_code)
    for page in ("/", "/bay/bay1", "/admin"):
        resp = client.get(page, follow_redirects=False)
        assert resp.status_code == 303 and resp.headers["location"].startswith("/login"), page
    assert client.get("/openapi.json").status_code == 404  # the schema is not served anonymously either
    with pytest.raises(WebSocketDisconnect), client.websocket_connect("/ws/live") as ws:
        ws.receive_json()


def test_a_user_logs_in_with_a_password_into_an_httponly_strict_session(world: World) -> None:
    client, src, _ = world
    add_user(src.db, "ann", "nurse", PASSWORD)
    assert client.post("/api/login", json={"name": "ann", "password": "wrong password"}).status_code == 401
    assert client.get("/api/bays").status_code == 401
    ok = client.post("/api/login", json={"name": "ann", "password": PASSWORD})
    assert ok.status_code == 200 and ok.json() == {"name": "ann", "role": "nurse"}
    cookie = ok.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "secure" not in cookie  # plain http here
    me = client.get("/api/me").json()
    assert (me["name"], me["role"], me["user"]) == ("ann", "nurse", "ann") and len(me["csrf"]) >= 32
    assert client.get("/api/bays").status_code == 200
    # logging out ends the session on the server: the old cookie value no longer works
    sid = client.cookies[COOKIE]
    assert client.post("/api/logout", json={}, headers={"X-CSRF-Token": me["csrf"]}).status_code == 200
    client.cookies.set(COOKIE, sid)
    assert client.get("/api/bays").status_code == 401


def test_passwords_are_stored_only_as_argon2_hashes(world: World, tmp_path: Path) -> None:
    client, src, tokens = world
    client.post("/api/users", json={"name": "ann", "role": "nurse", "password": PASSWORD},
                headers=bearer(tokens, "admin"))
    stored = src.db.execute("SELECT password_hash FROM users WHERE name = 'ann'").fetchone()[0]
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    src.db.execute("PRAGMA wal_checkpoint(FULL)")
    for file in tmp_path.glob(f"{DB_NAME}*"):
        assert PASSWORD.encode() not in file.read_bytes(), file


def test_cookie_requests_that_change_something_need_the_csrf_token(world: World) -> None:
    client, src, _ = world
    src.hub.ingest("ox1", Reading("spo2", 75), 1000.0)  # an alarm to acknowledge
    csrf = logged_in(client, src)
    url = "/api/bays/bay1/alarms/spo2_low/acknowledge"
    # a cross-site HTML form can post urlencoded data with the cookie, but cannot add the header
    form = client.post(url, data={"x": "1"}, headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert form.status_code == 403 and "CSRF" in form.json()["detail"]
    assert client.post(url, headers={"X-CSRF-Token": "not-the-token"}).status_code == 403
    assert client.post(url, headers={"X-CSRF-Token": csrf, "Origin": "http://evil.example"}).status_code == 403
    assert src.engine.active("bay1")[0].acknowledged is False  # none of those did anything
    ok = client.post(url, headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 200 and src.engine.active("bay1")[0].acknowledged_by == "ann"
    # a login form posted from another site is refused too (login CSRF)
    assert client.post("/api/login", data={"name": "ann", "password": PASSWORD}).status_code == 415
    assert client.post("/api/login", json={"name": "ann", "password": PASSWORD},
                       headers={"Origin": "http://evil.example"}).status_code == 403


def test_bearer_token_clients_need_no_csrf_token(world: World) -> None:
    client, src, tokens = world
    src.hub.ingest("ox1", Reading("spo2", 75), 1000.0)
    resp = client.post("/api/bays/bay1/alarms/spo2_low/acknowledge", headers=bearer(tokens, "nurse"))
    assert resp.status_code == 200


def test_logins_are_rate_limited_per_address_and_a_block_is_audited_once(world: World) -> None:
    client, src, _ = world
    add_user(src.db, "ann", "nurse", PASSWORD)
    for _ in range(5):
        assert client.post("/api/login", json={"name": "ann", "password": "guess guess"}).status_code == 401
    blocked = client.post("/api/login", json={"name": "ann", "password": PASSWORD})  # even the right password
    assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) > 0
    assert client.post("/api/login", json={"name": "ann", "password": PASSWORD}).status_code == 429
    assert COOKIE not in client.cookies
    actions = [r.action for r in reversed(src.store.audit_log(AuditQuery(who="ann")))]
    assert actions == ["login_failed"] * 5 + ["login_refused"]  # the second refusal adds no record


def test_one_machine_cannot_lock_a_nurse_out_but_many_are_capped_per_name(world: World) -> None:
    client, src, _ = world
    add_user(src.db, "ann", "nurse", PASSWORD)
    attacker = TestClient(client.app, client=("10.0.0.66", 4000))
    for _ in range(5):
        attacker.post("/api/login", json={"name": "ann", "password": "guess guess"})
    assert attacker.post("/api/login", json={"name": "ann", "password": "guess"}).status_code == 429
    nurse = TestClient(client.app, client=("10.0.0.5", 4000))
    assert nurse.post("/api/login", json={"name": "ann", "password": PASSWORD}).status_code == 200
    # 30 wrong guesses for one name from many machines: then that name is blocked everywhere for a while
    for i in range(6):
        machine = TestClient(client.app, client=(f"10.0.1.{i}", 4000))
        for _ in range(5):
            assert machine.post("/api/login", json={"name": "ann", "password": "guess guess"}).status_code == 401
    assert nurse.post("/api/login", json={"name": "ann", "password": PASSWORD}).status_code == 429


def test_a_refused_user_change_changes_nothing(world: World) -> None:
    client, src, tokens = world
    add_user(src.db, "bob", "nurse", PASSWORD)
    resp = client.patch("/api/users/bob", json={"role": "admin", "password": "short"}, headers=bearer(tokens, "admin"))
    assert resp.status_code == 400
    assert src.db.execute("SELECT role FROM users WHERE name = 'bob'").fetchone() == ("nurse",)


def test_the_audit_export_cannot_carry_a_spreadsheet_formula_and_unknown_names_are_not_kept(world: World) -> None:
    client, src, tokens = world
    odd = create_token(src.db, "nurse", "=HYPERLINK(1)")  # an admin may label a token anyhow
    client.post("/api/bays/bay1/annotations", json={"kind": "nausea"}, headers={"Authorization": f"Bearer {odd}"})
    client.post("/api/login", json={"name": "MyS3cretPassw0rd", "password": "oops"})  # typed in the wrong field
    exported = client.get("/api/audit", params={"format": "csv"}, headers=bearer(tokens, "admin")).text
    rows = list(csv.DictReader(io.StringIO(exported)))
    assert [r["who"] for r in rows] == ["(unknown name)", "'=HYPERLINK(1)"]
    assert "MyS3cretPassw0rd" not in exported


def test_logins_are_rate_limited_per_address_across_names(world: World) -> None:
    client, _, tokens = world
    for i in range(5):
        assert client.post("/api/login", json={"name": f"user{i}", "password": "guess guess"}).status_code == 401
    assert client.post("/api/login", json={"token": tokens["nurse"]}).status_code == 429


def test_roles_are_enforced_by_the_server(world: World) -> None:
    client, src, tokens = world
    src.hub.ingest("ox1", Reading("spo2", 75), 1000.0)
    viewer, nurse, admin = (bearer(tokens, r) for r in ("viewer", "nurse", "admin"))
    assert client.post("/api/bays/bay1/alarms/spo2_low/acknowledge", headers=viewer).status_code == 403
    assert client.post("/api/bays/bay1/annotations", json={"kind": "nausea"}, headers=viewer).status_code == 403
    assert client.get("/api/users", headers=nurse).status_code == 403
    assert client.get("/api/audit", headers=nurse).status_code == 403
    assert client.post("/api/tokens", json={"role": "admin"}, headers=nurse).status_code == 403
    assert client.get("/api/users", headers=admin).status_code == 200


def test_admin_manages_users_and_changes_take_effect_at_once(world: World) -> None:
    client, _, tokens = world
    admin = bearer(tokens, "admin")
    made = client.post("/api/users", json={"name": "bob", "role": "viewer", "password": "short"}, headers=admin)
    assert made.status_code == 400 and "8 characters" in made.json()["detail"]
    assert client.post("/api/users", json={"name": "bob", "role": "viewer", "password": PASSWORD},
                       headers=admin).status_code == 200
    assert client.post("/api/users", json={"name": "bob", "role": "nurse", "password": PASSWORD},
                       headers=admin).status_code == 409
    bob = TestClient(client.app)
    assert bob.post("/api/login", json={"name": "bob", "password": PASSWORD}).status_code == 200
    csrf = bob.get("/api/me").json()["csrf"]
    assert bob.post("/api/bays/bay1/annotations", json={"kind": "nausea"},
                    headers={"X-CSRF-Token": csrf}).status_code == 403  # a viewer
    assert client.patch("/api/users/bob", json={"role": "nurse"}, headers=admin).json()["role"] == "nurse"
    assert bob.post("/api/bays/bay1/annotations", json={"kind": "nausea"},
                    headers={"X-CSRF-Token": csrf}).status_code == 200  # the same session, now a nurse
    assert client.patch("/api/users/bob", json={"disabled": True}, headers=admin).status_code == 200
    assert bob.get("/api/bays").status_code == 401  # disabled: the session is gone
    assert bob.post("/api/login", json={"name": "bob", "password": PASSWORD}).status_code == 401
    users = {u["name"]: u for u in client.get("/api/users", headers=admin).json()["users"]}
    assert users["bob"]["disabled"] is True and users["bob"]["last_login"] is not None
    assert client.delete("/api/users/bob", headers=admin).status_code == 200
    assert client.delete("/api/users/bob", headers=admin).status_code == 404


def test_an_admin_cannot_lock_themselves_out(world: World) -> None:
    client, src, _ = world
    csrf = logged_in(client, src, "root", "admin")
    h = {"X-CSRF-Token": csrf}
    assert client.patch("/api/users/root", json={"role": "nurse"}, headers=h).status_code == 400
    assert client.patch("/api/users/root", json={"disabled": True}, headers=h).status_code == 400
    assert client.delete("/api/users/root", headers=h).status_code == 400


def test_admin_creates_and_revokes_tokens(world: World) -> None:
    client, _, tokens = world
    admin = bearer(tokens, "admin")
    made = client.post("/api/tokens", json={"role": "viewer", "label": "station display"}, headers=admin).json()
    station = {"Authorization": f"Bearer {made['token']}"}
    assert client.get("/api/bays", headers=station).status_code == 200
    listed = client.get("/api/tokens", headers=admin).json()["tokens"]
    assert {"id": made["id"], "role": "viewer", "label": "station display"}.items() <= next(
        t for t in listed if t["id"] == made["id"]).items()
    assert all("token" not in t for t in listed)  # never shown again
    assert client.delete(f"/api/tokens/{made['id']}", headers=admin).status_code == 200
    assert client.get("/api/bays", headers=station).status_code == 401


def test_logins_and_user_changes_are_audited_and_exported(world: World) -> None:
    client, _, tokens = world
    admin = bearer(tokens, "admin")
    client.post("/api/users", json={"name": "cat", "role": "nurse", "password": PASSWORD}, headers=admin)
    cat = TestClient(client.app)
    assert cat.post("/api/login", json={"name": "cat", "password": "nope nope"}).status_code == 401
    assert cat.post("/api/login", json={"name": "cat", "password": PASSWORD}).status_code == 200
    client.patch("/api/users/cat", json={"password": "another password"}, headers=admin)
    records = client.get("/api/audit", headers=admin).json()["records"]
    got = [(r["who"], r["action"], r["target"]) for r in records]
    assert got[:4] == [("admin one", "user_change", "cat"), ("cat", "login", None), ("cat", "login_failed", None),
                       ("admin one", "user_add", "cat")]  # newest first
    assert "another password" not in str(records) and '"password": "changed"' in records[0]["after"]
    only = client.get("/api/audit", params={"who": "cat", "action": "login"}, headers=admin).json()["records"]
    assert [(r["who"], r["action"]) for r in only] == [("cat", "login")]
    exported = client.get("/api/audit", params={"format": "csv"}, headers=admin)
    assert exported.headers["content-type"].startswith("text/csv")
    assert "attachment" in exported.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [(r["who"], r["action"]) for r in rows[:2]] == [("admin one", "user_change"), ("cat", "login")]
    assert rows[0]["time_utc"].endswith("Z")


def test_a_live_connection_ends_when_its_user_is_disabled(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    import dashboard.app

    monkeypatch.setattr(dashboard.app, "RECHECK", 0.0)
    monkeypatch.setattr(dashboard.app, "HEARTBEAT", 0.05)
    client, src, tokens = world
    logged_in(client, src, "dan", "viewer")
    with client.websocket_connect("/ws/live") as ws:  # with the session cookie
        assert ws.receive_json()["type"] == "snapshot"
        assert ws.receive_json()["type"] == "heartbeat"  # still logged in: the connection lives
        client.patch("/api/users/dan", json={"disabled": True}, headers=bearer(tokens, "admin"))
        with pytest.raises(WebSocketDisconnect) as closed:
            for _ in range(100):
                ws.receive_json()
        assert closed.value.code == 1008


def test_a_token_cannot_pass_for_a_user_in_the_audit_log(world: World) -> None:
    client, src, tokens = world
    admin = bearer(tokens, "admin")
    add_user(src.db, "bob", "nurse", PASSWORD)
    resp = client.post("/api/tokens", json={"role": "nurse", "label": "Bob"}, headers=admin)
    assert resp.status_code == 400 and "user's name" in resp.json()["detail"]
    resp = client.post("/api/users", json={"name": "nurse one", "role": "nurse", "password": PASSWORD}, headers=admin)
    assert resp.status_code == 400 and "token's label" in resp.json()["detail"]  # the world's nurse token
