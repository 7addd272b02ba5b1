"""API tokens: random bearer tokens with a role, of which only the SHA-256 hash is stored.

Tokens carry 256 bits of randomness, so a plain SHA-256 (not a slow password hash) is the right check:
nothing can be guessed from the stored hash, and verifying a request costs microseconds.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import time
from typing import Literal, get_args

Role = Literal["viewer", "nurse", "admin"]
ROLES: tuple[Role, ...] = get_args(Role)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(conn: sqlite3.Connection, role: Role, label: str = "") -> str:
    """Store a new token's hash with `role`; return the token (shown once, never stored)."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)} (got {role!r})")
    token = secrets.token_urlsafe(32)
    conn.execute("INSERT INTO api_tokens VALUES (?,?,?,?)", (_hash(token), role, time.time(), label))
    return token


def token_identity(conn: sqlite3.Connection, token: str) -> tuple[Role, str] | None:
    """The role of `token` and who it stands for in the audit log (its label, else "token <hash prefix>")."""
    digest = _hash(token)
    row = conn.execute("SELECT role, label FROM api_tokens WHERE token_hash = ?", (digest,)).fetchone()
    if row is None or row[0] not in ROLES:
        return None
    role: Role = row[0]
    return role, (row[1] or f"token {digest[:8]}")


def token_role(conn: sqlite3.Connection, token: str) -> Role | None:
    """The role of `token`, or None when it is unknown."""
    row = conn.execute("SELECT role FROM api_tokens WHERE token_hash = ?", (_hash(token),)).fetchone()
    if row is None or row[0] not in ROLES:
        return None
    role: Role = row[0]
    return role
