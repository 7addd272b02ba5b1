"""Fixtures for the API tests: the real service's hub, engine and actions behind the dashboard app."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from dashboard.app import LiveSources, create_app
from monitor.config import parse_config
from monitor.service import Service
from monitor.tokens import create_token
from tests.storage import with_storage

World = tuple[TestClient, LiveSources, dict[str, str]]


@pytest.fixture
def clock() -> list[float]:
    """The `world` service's clock: it stands still at clock[0] (1000 s) unless a test moves it."""
    return [1000.0]


@pytest.fixture
def world(tmp_path: Path, clock: list[float]) -> Iterator[World]:
    """The real service's hub, engine (built-in ketamine-infusion profile) and actions, without devices running;
    its clock is the `clock` fixture."""
    cfg = parse_config(with_storage({"data_dir": str(tmp_path), "bays": [
        {"id": "bay1", "name": "Bay 1", "devices": [{"id": "ox1", "driver": "masimo", "port": "/dev/null"}]}]}))
    service = Service(cfg, clock=lambda: clock[0])
    src = LiveSources("test", service.hub, service.engine, service.broadcast, service.db, service.store,
                      service.recorder, actions=service, sessions=service.sessions.open)
    tokens = {role: create_token(service.db, role, f"{role} one") for role in ("viewer", "nurse", "admin")}
    with TestClient(create_app(src)) as client:
        yield client, src, tokens
    service.close()


def bearer(tokens: dict[str, str], role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens[role]}"}
