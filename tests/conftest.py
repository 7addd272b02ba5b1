"""Fixtures shared by every test folder: a private Mosquitto broker on a free loopback port."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from monitor.mosquitto import PrivateMosquitto, mosquitto_path


@pytest.fixture
def broker() -> Iterator[PrivateMosquitto]:
    """A fresh private Mosquitto for one test (stopped and removed afterwards)."""
    if mosquitto_path() is None:
        pytest.fail("mosquitto is not installed: run `make system-deps` (apt-get install mosquitto)")
    with PrivateMosquitto() as b:
        yield b
