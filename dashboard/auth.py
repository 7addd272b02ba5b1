"""Who is asking: a bearer token from the `Authorization` header (API clients) or the page's login session cookie.

A request with a bearer token needs no CSRF check (a browser never adds that header by itself); a request that
relies on the cookie and changes anything must echo the session's CSRF token in `X-CSRF-Token` (see
`csrf_ok`). The cookie is SameSite=Strict and HttpOnly as well, so this is defence in depth, not the only guard.
"""

from __future__ import annotations

import hmac
import sqlite3
from collections.abc import Mapping
from urllib.parse import urlsplit

from monitor.tokens import ROLES, Role, token_identity
from monitor.users import Identity, session_identity

COOKIE = "bedside_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def bearer(headers: Mapping[str, str]) -> str | None:
    scheme, _, value = headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def identify(conn: sqlite3.Connection, headers: Mapping[str, str], cookies: Mapping[str, str]) -> Identity | None:
    """The identity behind a request: its bearer token if it has one (an unknown token is refused, not
    passed over for the cookie), else its session cookie; None when neither is valid."""
    token = bearer(headers)
    if token is not None:
        ident = token_identity(conn, token)
        return None if ident is None else Identity(ident[1], ident[0])
    session = cookies.get(COOKIE)
    return session_identity(conn, session) if session else None


def csrf_ok(ident: Identity, method: str, headers: Mapping[str, str]) -> bool:
    """Safe methods and bearer-token requests pass; a cookie session's state change needs its CSRF token."""
    if method.upper() in SAFE_METHODS or ident.csrf is None:
        return True
    sent = headers.get(CSRF_HEADER, "")
    return bool(sent) and hmac.compare_digest(sent.encode(), ident.csrf.encode())


def same_origin(headers: Mapping[str, str]) -> bool:
    """A browser's request from our own page: no Origin header (same-origin GET, non-browser client) or one that
    names this host."""
    origin = headers.get("origin")
    return origin is None or urlsplit(origin).netloc == headers.get("host")


def allows(role: Role | None, needed: Role) -> bool:
    """Roles are ordered viewer < nurse < admin."""
    return role is not None and ROLES.index(role) >= ROLES.index(needed)
