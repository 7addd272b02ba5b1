"""The trace store the service tests give bedside: SQLite in the data dir (the default), or PostgreSQL when the
environment variable BEDSIDE_TEST_STORAGE_URL names a server (`make test-pg`).

With it set, every service a test builds gets `[storage] url` naming a fresh, empty database made for it on that
server (`bedside_t_<random>`, created through the URL's database): one database per data dir, so a test that starts
bedside again on the same data dir finds what the first run recorded. The databases a test made are dropped when it
ends (tests/conftest.py), those of module-scoped fixtures at the end of the run.

  storage_url(data_dir)          the url for a service on data_dir (None: SQLite)
  with_storage(raw)              a config dict for parse_config with [storage] url added (unchanged if unset)
  add_storage_to_config(path)    the same for a TOML config file, in place (running_bedside calls it)
  open_test_store(data_dir)      the trace store a service on data_dir records to (to seed or read it directly)
  uses_sqlite()                  True unless the PostgreSQL pass runs (for tests that open bedside.db themselves)

`python -m tests.storage URL` says whether PostgreSQL answers at URL (exit 0) or why not (exit 1); the Makefile's
test-pg target asks it before the pass.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
import threading
import tomllib
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from monitor.store import TraceStore, open_store

ENV = "BEDSIDE_TEST_STORAGE_URL"
PREFIX = "bedside_t_"
T = TypeVar("T")

_databases: dict[Path, str] = {}  # data dir -> url of its database, while it exists
_lock = threading.Lock()


def server_url() -> str | None:
    """BEDSIDE_TEST_STORAGE_URL, or None when the service tests record to SQLite."""
    return os.environ.get(ENV) or None


def uses_sqlite() -> bool:
    return server_url() is None


def _run(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion on a thread of its own (callers may be inside a running event loop)."""
    result: list[T] = []
    failure: list[BaseException] = []

    def work() -> None:
        try:
            result.append(asyncio.run(make()))
        except BaseException as exc:  # handed to the caller
            failure.append(exc)

    thread = threading.Thread(target=work, name="test-storage")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return result[0]


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


async def _admin(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url, timeout=5.0)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def unreachable(url: str) -> str | None:
    """None when PostgreSQL at `url` answers and lets us create databases, else why not."""
    async def probe() -> str | None:
        conn = await asyncpg.connect(url, timeout=3.0)
        try:
            may: bool | None = await conn.fetchval(
                "SELECT rolsuper OR rolcreatedb FROM pg_roles WHERE rolname = current_user")
        finally:
            await conn.close()
        return None if may else "its user may not CREATE DATABASE"

    try:
        return _run(probe)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        return f"{type(exc).__name__}: {exc}".rstrip(": ")


def storage_url(data_dir: Path) -> str | None:
    """The [storage] url for a service recording in `data_dir` during this test: None (SQLite in the data dir)
    unless BEDSIDE_TEST_STORAGE_URL is set; then a database of its own, made on first use and the same afterwards."""
    server = server_url()
    if server is None:
        return None
    key = Path(data_dir).resolve()
    with _lock:
        if key not in _databases:
            name = PREFIX + secrets.token_hex(6)
            _run(lambda: _admin(server, f'CREATE DATABASE "{name}"'))
            _databases[key] = _with_database(server, name)
        return _databases[key]


def with_storage(raw: dict[str, Any]) -> dict[str, Any]:
    """A config dict (for parse_config) with [storage] url set for its data_dir, when the PostgreSQL pass runs."""
    url = storage_url(Path(raw.get("data_dir", "data")))
    if url is None or raw.get("storage", {}).get("url") is not None:
        return raw
    return {**raw, "storage": {**raw.get("storage", {}), "url": url}}


def add_storage_to_config(config: Path) -> None:
    """Point a TOML config file's trace store at the test database of its data dir (relative to the file, as
    load_config reads it), in place; nothing when the PostgreSQL pass does not run or it names a store already."""
    if server_url() is None:
        return
    raw = tomllib.loads(config.read_text(encoding="utf-8"))
    storage = raw.get("storage")
    if isinstance(storage, dict) and storage.get("url") is not None:
        return
    if storage is not None:
        raise AssertionError(f"{config}: has a [storage] table without url; give it one for the PostgreSQL pass")
    data_dir = Path(raw.get("data_dir", "data"))
    url = storage_url(data_dir if data_dir.is_absolute() else config.parent / data_dir)
    with config.open("a", encoding="utf-8") as f:
        f.write(f'\n[storage]\nurl = "{url}"\n')


def open_test_store(data_dir: Path) -> TraceStore:
    """The trace store a service on `data_dir` records to in this test (SQLite or its PostgreSQL database)."""
    return open_store(data_dir, storage_url(data_dir))


def databases() -> set[Path]:
    """The data dirs that have a test database now."""
    with _lock:
        return set(_databases)


def drop(data_dirs: set[Path]) -> None:
    """Drop the test databases of these data dirs (connections left to them are ended)."""
    server = server_url()
    with _lock:
        urls = [_databases.pop(d) for d in data_dirs if d in _databases]
    if server is None or not urls:
        return

    async def drop_all() -> None:
        conn = await asyncpg.connect(server, timeout=5.0)
        try:
            for url in urls:
                await conn.execute(f'DROP DATABASE IF EXISTS "{urlsplit(url).path.lstrip("/")}" WITH (FORCE)')
        finally:
            await conn.close()

    _run(drop_all)


def main(argv: list[str]) -> int:
    url = argv[0] if argv else server_url()
    if url is None:
        print(f"usage: python -m tests.storage URL (or set {ENV})", file=sys.stderr)
        return 2
    why = unreachable(url)
    if why is not None:
        print(why)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
