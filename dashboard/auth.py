"""Who is asking: a bearer token from the `Authorization` header or the page's login cookie, and its role."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping

from monitor.tokens import ROLES, Role, token_identity, token_role

COOKIE = "bedside_token"


def request_token(headers: Mapping[str, str], cookies: Mapping[str, str]) -> str | None:
    auth = headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return cookies.get(COOKIE) or None


def role_of(conn: sqlite3.Connection, token: str | None) -> Role | None:
    return token_role(conn, token) if token else None


def allows(role: Role | None, needed: Role) -> bool:
    """Roles are ordered viewer < nurse < admin."""
    return role is not None and ROLES.index(role) >= ROLES.index(needed)


def identity_of(conn: sqlite3.Connection, token: str | None) -> tuple[Role, str] | None:
    """(role, who) of a token, for role checks and the audit log."""
    return token_identity(conn, token) if token else None
