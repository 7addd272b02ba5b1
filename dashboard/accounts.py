"""Accounts: log in and out, who am I, users and API tokens (admin), and the audit log (admin; JSON or CSV).

Logging in with a name and password (or, for a wall display's one-click URL, an API token) opens a server-side
session: the cookie holds only a random id (HttpOnly, SameSite=Strict, Secure over https), and every state change
made with it must carry the session's CSRF token. Logins are rate limited per name and per client address
(dashboard/throttle.py). Every login, failed login, logout and user or token change is audited.
"""

# no `from __future__ import annotations`: FastAPI must resolve the handlers' local Annotated aliases
import asyncio
import csv
import io
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from dashboard.auth import COOKIE, csrf_ok, identify, same_origin
from dashboard.problems import NOT_JSON, RATE_LIMITED, STRICT
from dashboard.throttle import LoginThrottle
from monitor.store import AuditQuery
from monitor.tokens import Role, TokenInfo, create_token, list_tokens, revoke_token, token_id_of, token_identity
from monitor.users import (
    SESSION_IDLE,
    Identity,
    User,
    UserError,
    UserExists,
    add_user,
    create_session,
    delete_user,
    end_session,
    get_user,
    hash_matches,
    list_users,
    logged_in,
    stored_hash,
    update_user,
)

if TYPE_CHECKING:
    from dashboard.app import LiveSources

AUDIT_LIMIT = 10_000  # records per request at most
HASHING_AT_ONCE = 2  # password checks running at once (each takes a core for ~0.1-0.2 s)
UNKNOWN_NAME = "(unknown name)"  # what the audit log says for a login attempt with a name that is no user
CSV_FORMULA = ("=", "+", "-", "@", "\t", "\r")  # a cell starting so is a formula in a spreadsheet


def _named(name: str | None) -> str:
    """An attempted login's name for the audit log: a name that is no user is not written (it is often a
    password typed into the wrong field)."""
    return name if name else UNKNOWN_NAME


def _cell(value: object) -> object:
    """A CSV cell that a spreadsheet shows as text, never runs as a formula (OWASP "CSV injection")."""
    return f"'{value}" if isinstance(value, str) and value.startswith(CSV_FORMULA) else value


class LoginRequest(BaseModel):
    model_config = STRICT
    name: str | None = Field(default=None, max_length=64)
    password: str | None = Field(default=None, max_length=1024)
    token: str | None = Field(default=None, max_length=256)


class NewUser(BaseModel):
    model_config = STRICT
    name: str
    role: str
    password: str = Field(max_length=1024)


class UserChange(BaseModel):
    model_config = STRICT
    role: str | None = None
    password: str | None = Field(default=None, max_length=1024)
    disabled: bool | None = None


class NewToken(BaseModel):
    model_config = STRICT
    role: str
    label: str = Field(default="", max_length=100)


def user_json(u: User) -> dict[str, Any]:
    return {"name": u.name, "role": u.role, "disabled": u.disabled, "created": u.created, "last_login": u.last_login}


def token_json(t: TokenInfo) -> dict[str, Any]:
    return {"id": t.id, "role": t.role, "label": t.label, "created": t.created}


def client_address(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


def accounts_router(src: "LiveSources", need: Callable[[Role], Callable[[Request], Identity]]) -> APIRouter:
    router = APIRouter()
    throttle = LoginThrottle()
    hashing = asyncio.Semaphore(HASHING_AT_ONCE)
    Viewer = Annotated[Identity, Depends(need("viewer"))]
    Admin = Annotated[Identity, Depends(need("admin"))]

    def refuse_cross_site(request: Request) -> None:
        """Login and logout have no session to check a CSRF token against yet: insist on JSON (which a cross-site
        form cannot send) and, when the browser says where the request comes from, on our own origin."""
        if not same_origin(request.headers):
            raise HTTPException(403, "cross-site request refused")
        if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
            raise HTTPException(415, "send JSON (Content-Type: application/json)")

    @router.post("/api/login", dependencies=[Depends(refuse_cross_site)], responses={**NOT_JSON, **RATE_LIMITED})
    async def login(body: LoginRequest, request: Request) -> JSONResponse:
        now, address = time.time(), client_address(request)
        if body.token is not None:
            keys, who_tried = [f"ip:{address}"], "token"
        elif body.name is not None and body.password is not None:
            # per address, and a higher cap per name across addresses: guessing one nurse's password from many
            # machines is slowed, yet no single machine can lock a nurse out (see dashboard/throttle.py)
            keys, who_tried = [f"ip:{address}", f"name:{body.name.lower()}"], body.name
        else:
            raise HTTPException(400, "give name and password (or an API token)")
        wait = throttle.retry_after(keys, now)
        if wait is not None:
            if throttle.first_refusal(keys, now):  # one audit record per blocked key and window, not per request
                src.audit(_named(who_tried), "login_refused", after={"address": address, "reason": "rate limited"})
            raise HTTPException(429, f"too many failed logins; try again in {wait:.0f} s",
                                {"Retry-After": str(max(1, round(wait)))})
        if body.token is not None:
            tok = token_identity(src.db, body.token)
            if tok is None:
                throttle.failed(keys, now)
                src.audit("token", "login_failed", after={"address": address})
                raise HTTPException(401, "token not accepted")
            role, who = tok
            sid, _ = create_session(src.db, token=body.token)
            via = "token"
        else:
            assert body.name is not None and body.password is not None
            stored = stored_hash(src.db, body.name)
            async with hashing:  # argon2 is slow on purpose: off the event loop, a few at a time
                matches = await asyncio.to_thread(hash_matches, stored, body.password)
            user = logged_in(src.db, body.name, body.password, stored) if matches and stored else None
            if user is None:
                throttle.failed(keys, now)
                src.audit(_named(body.name if stored is not None else None), "login_failed",
                          after={"address": address})
                raise HTTPException(401, "name or password not accepted")
            throttle.succeeded([f"name:{body.name.lower()}"])
            role, who = user.role, user.name
            sid, _ = create_session(src.db, user=user.name)
            via = "password"
        src.audit(who, "login", after={"address": address, "via": via})
        response = JSONResponse({"name": who, "role": role})
        response.set_cookie(COOKIE, sid, httponly=True, samesite="strict", secure=request.url.scheme == "https",
                            max_age=int(SESSION_IDLE), path="/")
        return response

    @router.post("/api/logout", dependencies=[Depends(refuse_cross_site)], responses=NOT_JSON)
    async def logout(request: Request) -> JSONResponse:
        sid = request.cookies.get(COOKIE)
        ident = identify(src.db, {}, request.cookies) if sid else None
        if ident is not None and sid is not None:
            if not csrf_ok(ident, "POST", request.headers):
                raise HTTPException(403, "CSRF check failed: send the X-CSRF-Token header from GET /api/me")
            end_session(src.db, sid)
            src.audit(ident.who, "logout")
        response = JSONResponse({"ok": True})
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
        return response

    @router.get("/api/me")
    async def me(ident: Viewer) -> dict[str, Any]:
        return {"name": ident.who, "role": ident.role, "csrf": ident.csrf, "user": ident.user}

    # --- users (admin) ----------------------------------------------------------------------------------------

    def attempt_user(call: Callable[[], User]) -> User:
        try:
            return call()
        except UserExists as exc:
            raise HTTPException(409, str(exc)) from None
        except UserError as exc:
            raise HTTPException(400, str(exc)) from None
        except KeyError as exc:
            raise HTTPException(404, str(exc.args[0])) from None

    @router.get("/api/users")
    async def users(_: Admin) -> dict[str, Any]:
        return {"users": [user_json(u) for u in list_users(src.db)]}

    @router.post("/api/users")
    async def new_user(body: NewUser, admin: Admin) -> dict[str, Any]:
        user = attempt_user(lambda: add_user(src.db, body.name, body.role, body.password))
        src.audit(admin.who, "user_add", target=user.name, after={"role": user.role})
        return user_json(user)

    @router.patch("/api/users/{name}")
    async def change_user(name: str, body: UserChange, admin: Admin) -> dict[str, Any]:
        before = get_user(src.db, name)
        if before is None:
            raise HTTPException(404, f"no user {name!r}")
        if name == admin.user and (body.disabled or (body.role is not None and body.role != "admin")):
            raise HTTPException(400, "an admin cannot disable themselves or give up their own admin role")
        user = attempt_user(lambda: update_user(src.db, name, role=body.role, password=body.password,
                                                disabled=body.disabled))
        after: dict[str, Any] = {"role": user.role, "disabled": user.disabled}
        if body.password is not None:
            after["password"] = "changed"  # never the password itself
        src.audit(admin.who, "user_change", target=name, before={"role": before.role, "disabled": before.disabled},
                  after=after)
        return user_json(user)

    @router.delete("/api/users/{name}")
    async def remove_user(name: str, admin: Admin) -> dict[str, Any]:
        if name == admin.user:
            raise HTTPException(400, "an admin cannot delete themselves")
        before = get_user(src.db, name)
        if before is None:
            raise HTTPException(404, f"no user {name!r}")
        delete_user(src.db, name)
        src.audit(admin.who, "user_delete", target=name, before={"role": before.role})
        return {"deleted": name}

    # --- API tokens (admin) -----------------------------------------------------------------------------------

    @router.get("/api/tokens")
    async def tokens(_: Admin) -> dict[str, Any]:
        return {"tokens": [token_json(t) for t in list_tokens(src.db)]}

    @router.post("/api/tokens")
    async def new_token(body: NewToken, admin: Admin) -> dict[str, Any]:
        try:
            token = create_token(src.db, body.role, body.label.strip())
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None
        info = next(t for t in list_tokens(src.db) if t.id == token_id_of(token))
        src.audit(admin.who, "token_create", target=info.id, after={"role": info.role, "label": info.label})
        return {**token_json(info), "token": token}

    @router.delete("/api/tokens/{token_id}")
    async def remove_token(token_id: str, admin: Admin) -> dict[str, Any]:
        try:
            info = revoke_token(src.db, token_id)
        except KeyError as exc:
            raise HTTPException(404, str(exc.args[0])) from None
        src.audit(admin.who, "token_revoke", target=info.id, before={"role": info.role, "label": info.label})
        return {"revoked": info.id}

    # --- the audit log (admin) --------------------------------------------------------------------------------

    @router.get("/api/audit", response_model=None, responses={200: {"content": {"text/csv": {}}}})
    async def audit(_: Admin, since: Annotated[float | None, Query(allow_inf_nan=False)] = None,
                    until: Annotated[float | None, Query(allow_inf_nan=False)] = None,
                    bay: str | None = None, who: str | None = None, action: str | None = None,
                    limit: Annotated[int, Query(ge=1, le=AUDIT_LIMIT)] = 1000,
                    format: Annotated[str, Query(pattern="^(json|csv)$")] = "json") -> Response | dict[str, Any]:
        records = await asyncio.to_thread(src.store.audit_log, AuditQuery(since, until, bay, who, action,
                                                                          limit=limit))
        rows = [(r.time, r.who, r.action, r.bay, r.target, r.before, r.after) for r in records]
        columns = ("time", "who", "action", "bay", "target", "before", "after")
        if format == "csv":
            out = io.StringIO()
            writer = csv.writer(out)
            writer.writerow(("time_utc", *columns))
            for r in rows:
                writer.writerow((time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(r[0])), *(_cell(v) for v in r)))
            return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                            headers={"Content-Disposition": 'attachment; filename="bedside-audit.csv"'})
        return {"records": [dict(zip(columns, r, strict=True)) for r in rows]}

    return router

