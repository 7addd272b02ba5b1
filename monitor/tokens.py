"""API tokens: random bearer tokens with a role, of which only the SHA-256 hash is stored.

Tokens carry 256 bits of randomness, so a plain SHA-256 (not a slow password hash) is the right check:
nothing can be guessed from the stored hash, and verifying a request costs microseconds. A token is named in
lists and in the audit log by its label, else by the first 12 hex digits of its hash (its `id`).
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import time
from dataclasses import dataclass
from typing import Literal, get_args

Role = Literal["viewer", "nurse", "admin"]
ROLES: tuple[Role, ...] = get_args(Role)
ID_LENGTH = 12  # hex digits of the hash that name a token


@dataclass(frozen=True, slots=True)
class TokenInfo:
    id: str
    role: Role
    label: str
    created: float


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_id_of(token: str) -> str:
    return token_digest(token)[:ID_LENGTH]


def _role(value: object) -> Role | None:
    for known in ROLES:
        if value == known:
            return known
    return None


def create_token(conn: sqlite3.Connection, role: str, label: str = "") -> str:
    """Store a new token's hash with `role`; return the token (shown once, never stored)."""
    checked = _role(role)
    if checked is None:
        raise ValueError(f"role must be one of {', '.join(ROLES)} (got {role!r})")
    if label and conn.execute("SELECT 1 FROM users WHERE lower(name) = lower(?)", (label,)).fetchone():
        raise ValueError(f"label {label!r} is a user's name: the audit log could not tell the token from them")
    token = secrets.token_urlsafe(32)
    conn.execute("INSERT INTO api_tokens VALUES (?,?,?,?)", (token_digest(token), checked, time.time(), label))
    return token


def token_identity_by_hash(conn: sqlite3.Connection, digest: str) -> tuple[Role, str] | None:
    row = conn.execute("SELECT role, label FROM api_tokens WHERE token_hash = ?", (digest,)).fetchone()
    role = None if row is None else _role(row[0])
    if role is None:
        return None
    return role, (row[1] or f"token {digest[:ID_LENGTH]}")


def token_identity(conn: sqlite3.Connection, token: str) -> tuple[Role, str] | None:
    """The role of `token` and who it stands for in the audit log (its label, else "token <id>")."""
    return token_identity_by_hash(conn, token_digest(token))


def token_role(conn: sqlite3.Connection, token: str) -> Role | None:
    """The role of `token`, or None when it is unknown."""
    ident = token_identity(conn, token)
    return None if ident is None else ident[0]


def list_tokens(conn: sqlite3.Connection) -> list[TokenInfo]:
    rows = conn.execute("SELECT token_hash, role, label, created FROM api_tokens ORDER BY created").fetchall()
    return [TokenInfo(h[:ID_LENGTH], role, label, created) for h, r, label, created in rows
            if (role := _role(r)) is not None]


def revoke_token(conn: sqlite3.Connection, token_id: str) -> TokenInfo:
    """Delete the token whose id is `token_id` (and the sessions it opened); KeyError when there is none."""
    if len(token_id) != ID_LENGTH or not all(c in "0123456789abcdef" for c in token_id):
        raise KeyError(f"no token {token_id!r}")
    match = [t for t in list_tokens(conn) if t.id == token_id]
    if not match:
        raise KeyError(f"no token {token_id!r}")
    conn.execute("DELETE FROM sessions WHERE substr(token_hash, 1, ?) = ?", (ID_LENGTH, token_id))
    conn.execute("DELETE FROM api_tokens WHERE substr(token_hash, 1, ?) = ?", (ID_LENGTH, token_id))
    return match[0]
