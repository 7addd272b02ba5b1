"""Users and login sessions, in the database: who may log in, with which role, and who is logged in now.

Passwords are stored only as argon2id hashes (argon2-cffi's defaults, RFC 9106's low-memory profile). A login
session is a random 256-bit id in the page's HttpOnly cookie; only its SHA-256 is stored, with the session's CSRF
token and who it stands for: a user, or an API token used for a one-click wall-display login. Each request looks the
user (or token) up again, so a disabled user, a changed role or a revoked token takes effect at once. A session
ends after `SESSION_IDLE` of no use (a wall display that stays connected keeps using it).
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import secrets
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from monitor.tokens import ROLES, Role, token_digest, token_identity_by_hash

MIN_PASSWORD = 8
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@ -]{0,63}")
SESSION_IDLE = 12 * 3600.0  # s without a request or a live connection after which a session ends
TOUCH_EVERY = 60.0  # s: a session's last use is written at most this often

_hasher = PasswordHasher()
# verifying an unknown name costs the same as a known one, so timing does not tell which names exist
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class UserError(ValueError):
    """A user request that cannot be carried out; the message says why."""


class UserExists(UserError):
    pass


@dataclass(frozen=True, slots=True)
class User:
    name: str
    role: Role
    disabled: bool
    created: float
    last_login: float | None


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a request comes from: `who` is the name written in the audit log; `csrf` is set for a login session
    (a cookie), None for a bearer token (which a browser never sends by itself, so needs no CSRF check)."""

    who: str
    role: Role
    csrf: str | None = None
    user: str | None = None  # the user's name when a user (not a token) is logged in


def _check_role(role: str) -> Role:
    for known in ROLES:
        if role == known:
            return known
    raise UserError(f"role must be one of {', '.join(ROLES)} (got {role!r})")


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise UserError(f"password must have at least {MIN_PASSWORD} characters")


def _row_user(row: tuple[str, str, int, float, float | None]) -> User:
    return User(row[0], _check_role(row[1]), bool(row[2]), row[3], row[4])


_COLUMNS = "name, role, disabled, created, last_login"


def add_user(conn: sqlite3.Connection, name: str, role: str, password: str) -> User:
    if not NAME.fullmatch(name):
        raise UserError("name: 1-64 letters, digits, '.', '_', '@', '-' or spaces, starting with a letter or digit")
    checked = _check_role(role)
    _check_password(password)
    if conn.execute("SELECT 1 FROM api_tokens WHERE lower(label) = lower(?)", (name,)).fetchone():
        raise UserError(f"{name!r} is an API token's label: the audit log could not tell the user from it")
    now = time.time()
    try:
        conn.execute("INSERT INTO users (name, role, password_hash, disabled, created) VALUES (?,?,?,0,?)",
                     (name, checked, _hasher.hash(password), now))
    except sqlite3.IntegrityError:
        raise UserExists(f"a user named {name!r} exists") from None
    return User(name, checked, False, now, None)


def get_user(conn: sqlite3.Connection, name: str) -> User | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM users WHERE name = ?", (name,)).fetchone()
    return None if row is None else _row_user(row)


def list_users(conn: sqlite3.Connection) -> list[User]:
    return [_row_user(r) for r in conn.execute(f"SELECT {_COLUMNS} FROM users ORDER BY name")]


def update_user(conn: sqlite3.Connection, name: str, *, role: str | None = None, password: str | None = None,
                disabled: bool | None = None) -> User:
    """Change what is given; KeyError when there is no such user. Disabling or re-roling ends nothing by itself:
    sessions look the user up on every request."""
    if get_user(conn, name) is None:
        raise KeyError(f"no user {name!r}")
    # check everything first, then change it all in one transaction: a refused request changes nothing
    checked_role = None if role is None else _check_role(role)
    if password is not None:
        _check_password(password)
    new_hash = None if password is None else _hasher.hash(password)
    with _transaction(conn):
        if checked_role is not None:
            conn.execute("UPDATE users SET role = ? WHERE name = ?", (checked_role, name))
        if new_hash is not None:
            conn.execute("UPDATE users SET password_hash = ? WHERE name = ?", (new_hash, name))
        if disabled is not None:
            conn.execute("UPDATE users SET disabled = ? WHERE name = ?", (int(disabled), name))
        if new_hash is not None or disabled:  # a new password or a disabled user: every session of theirs ends
            conn.execute("DELETE FROM sessions WHERE user = ?", (name,))
    user = get_user(conn, name)
    assert user is not None
    return user


@contextlib.contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    conn.execute("BEGIN")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def delete_user(conn: sqlite3.Connection, name: str) -> None:
    if conn.execute("DELETE FROM users WHERE name = ?", (name,)).rowcount == 0:
        raise KeyError(f"no user {name!r}")
    conn.execute("DELETE FROM sessions WHERE user = ?", (name,))


def stored_hash(conn: sqlite3.Connection, name: str) -> str | None:
    row = conn.execute("SELECT password_hash FROM users WHERE name = ?", (name,)).fetchone()
    return None if row is None else str(row[0])


def hash_matches(stored: str | None, password: str) -> bool:
    """Whether `password` matches `stored` (argon2: about 0.1-0.2 s of CPU, so run it off the event loop). An
    unknown user (None) costs the same as a known one, so timing does not tell which names exist."""
    try:
        return _hasher.verify(stored if stored is not None else _DUMMY_HASH, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def logged_in(conn: sqlite3.Connection, name: str, password: str, stored: str) -> User | None:
    """After `hash_matches`: the user (None if disabled or gone meanwhile); notes the login and upgrades an old
    hash to the current parameters."""
    user = get_user(conn, name)
    if user is None or user.disabled or stored_hash(conn, name) != stored:
        return None
    if _hasher.check_needs_rehash(stored):
        conn.execute("UPDATE users SET password_hash = ? WHERE name = ?", (_hasher.hash(password), name))
    conn.execute("UPDATE users SET last_login = ? WHERE name = ?", (time.time(), name))
    return user


def verify_password(conn: sqlite3.Connection, name: str, password: str) -> User | None:
    """The user when `password` is theirs and they are not disabled; None otherwise (same cost either way)."""
    stored = stored_hash(conn, name)
    if not hash_matches(stored, password) or stored is None:
        return None
    return logged_in(conn, name, password, stored)


# --- sessions ------------------------------------------------------------------------------------------------


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def create_session(conn: sqlite3.Connection, *, user: str | None = None, token: str | None = None) -> tuple[str, str]:
    """A new session for `user` or for an API `token`; returns (session id for the cookie, CSRF token)."""
    if (user is None) == (token is None):
        raise ValueError("a session is for a user or for a token")
    sid, csrf, now = secrets.token_urlsafe(32), secrets.token_urlsafe(32), time.time()
    conn.execute("INSERT INTO sessions (id_hash, user, token_hash, csrf, created, last_seen) VALUES (?,?,?,?,?,?)",
                 (_digest(sid), user, None if token is None else token_digest(token), csrf, now, now))
    return sid, csrf


def session_identity(conn: sqlite3.Connection, session_id: str, now: float | None = None) -> Identity | None:
    """Who the session `session_id` stands for now, or None (unknown, idle too long, user disabled, token revoked)."""
    now = time.time() if now is None else now
    digest = _digest(session_id)
    row = conn.execute("SELECT user, token_hash, csrf, last_seen FROM sessions WHERE id_hash = ?",
                       (digest,)).fetchone()
    if row is None:
        return None
    user_name, token_hash, csrf, last_seen = row
    if now - last_seen > SESSION_IDLE:
        conn.execute("DELETE FROM sessions WHERE id_hash = ?", (digest,))
        return None
    ident: Identity | None = None
    if user_name is not None:
        user = get_user(conn, user_name)
        if user is not None and not user.disabled:
            ident = Identity(user.name, user.role, csrf, user.name)
    elif token_hash is not None:
        tok = token_identity_by_hash(conn, token_hash)
        if tok is not None:
            ident = Identity(tok[1], tok[0], csrf)
    if ident is None:
        conn.execute("DELETE FROM sessions WHERE id_hash = ?", (digest,))
        return None
    if now - last_seen > TOUCH_EVERY:
        conn.execute("UPDATE sessions SET last_seen = ? WHERE id_hash = ?", (now, digest))
    return ident


def end_session(conn: sqlite3.Connection, session_id: str) -> None:
    conn.execute("DELETE FROM sessions WHERE id_hash = ?", (_digest(session_id),))


def end_idle_sessions(conn: sqlite3.Connection, now: float | None = None) -> int:
    now = time.time() if now is None else now
    return conn.execute("DELETE FROM sessions WHERE last_seen < ?", (now - SESSION_IDLE,)).rowcount
