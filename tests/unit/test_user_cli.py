"""`bedside user` with `--config`: the accounts in the config's (or a node's) data dir, the audit record in the
config's trace store — PostgreSQL when `[storage] url` names it — where the admin page and `GET /api/audit` read it."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from monitor import db
from monitor.cli import main
from monitor.store import AuditQuery, open_store
from monitor.users import list_users
from tests.storage import storage_url


def config(tmp_path: Path, storage: str | None) -> Path:
    path = tmp_path / "bedside.toml"
    lines = ['data_dir = "data"', '[mqtt]\nurl = "mqtt://127.0.0.1:1883"',
             '[[nodes]]\nname = "station"\nrole = "dashboard"']
    if storage is not None:
        lines.append(f'[storage]\nurl = "{storage}"')
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.service
def test_a_user_added_with_the_config_is_audited_in_its_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    node_dir = tmp_path / "data" / "station"
    url = storage_url(node_dir)  # PostgreSQL in the PostgreSQL pass, else None: SQLite in the data dir
    cfg = config(tmp_path, url)
    monkeypatch.setattr(sys, "stdin", io.StringIO("correct horse battery staple\n"))
    assert main(["user", "add", "ann", "--role", "nurse", "--config", str(cfg), "--node", "station"]) == 0
    conn = db.connect(node_dir)  # the node's own accounts
    try:
        assert [(u.name, u.role) for u in list_users(conn)] == [("ann", "nurse")]
    finally:
        conn.close()
    store = open_store(node_dir, url)
    try:
        [record] = store.audit_log(AuditQuery(action="user_add"))
    finally:
        store.close()
    assert record.target == "ann" and record.who.startswith("cli (")


def test_node_without_config_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["user", "list", "--node", "station"]) == 2
    assert "--node goes with --config" in capsys.readouterr().err


def test_an_unknown_node_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["user", "list", "--config", str(config(tmp_path, None)), "--node", "nowhere"]) == 2
    assert "no node 'nowhere'" in capsys.readouterr().err
