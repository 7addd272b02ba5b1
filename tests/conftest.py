"""Fixtures shared by every test folder: a private Mosquitto broker on a free loopback port; the trace store of
the service tests (tests/storage.py: SQLite, or a fresh PostgreSQL database per data dir when
BEDSIDE_TEST_STORAGE_URL is set) and their `service` marker."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from monitor.mosquitto import PrivateMosquitto, mosquitto_path
from tests import storage


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "service: builds a monitor.service.Service or runs `bedside run` (run again "
                                       "with the traces in PostgreSQL by `make test-pg`)")
    server = storage.server_url()
    if server is not None and (why := storage.unreachable(server)) is not None:
        raise pytest.UsageError(f"{storage.ENV}={server}: PostgreSQL is not usable: {why}")


def pytest_report_header(config: pytest.Config) -> str:
    server = storage.server_url()
    if server is None:
        return "service tests' trace store: SQLite in the data dir"
    return f"service tests' trace store: PostgreSQL, a fresh database per data dir on {server} ({storage.ENV})"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that uses the `world` fixture (tests/unit/conftest.py) runs the real service: it is a service test
    too (others say so with `pytestmark = pytest.mark.service`)."""
    for item in items:
        if "world" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.service)


@pytest.fixture(autouse=True, scope="session")
def _test_databases_of_the_run() -> Iterator[None]:
    """At the end of the run: drop the test databases still there (those of module-scoped fixtures)."""
    yield
    storage.drop(storage.databases())


@pytest.fixture(autouse=True)
def _test_databases() -> Iterator[None]:
    """After each test: drop the PostgreSQL databases made for it (its services are closed by then: autouse
    fixtures are set up first, so torn down last)."""
    before = storage.databases()
    yield
    storage.drop(storage.databases() - before)


@pytest.fixture
def broker() -> Iterator[PrivateMosquitto]:
    """A fresh private Mosquitto for one test (stopped and removed afterwards)."""
    if mosquitto_path() is None:
        pytest.fail("mosquitto is not installed: run `make system-deps` (apt-get install mosquitto)")
    with PrivateMosquitto() as b:
        yield b
