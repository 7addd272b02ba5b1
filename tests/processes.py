"""Running bedside as a real process for integration and browser tests: start `bedside run` and wait until it
serves, stop it (killed if need be, never left behind), and make API tokens with `bedside token create`."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.storage import add_storage_to_config


def wait_until_serving(base: str, proc: subprocess.Popen[bytes], within: float = 20.0) -> None:
    """Wait until bedside at `base` answers /api/health (it must not exit meanwhile)."""
    deadline = time.monotonic() + within
    while True:
        assert proc.poll() is None, "bedside exited"
        try:
            if httpx.get(f"{base}/api/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"bedside did not serve within {within:.0f} s"
        time.sleep(0.2)


@contextmanager
def running_bedside(config: Path, port: int, env: Mapping[str, str] | None = None,
                    stderr: Path | None = None) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`bedside run --config CONFIG` serving on `port`: yields (base URL, process) once it serves; stops it.
    `env`: variables added to this process's environment for it; `stderr`: a file for its log (else discarded).
    In the PostgreSQL pass (tests/storage.py) the config is first pointed at its data dir's test database."""
    add_storage_to_config(config)
    log = stderr.open("ab") if stderr is not None else None
    try:
        proc = subprocess.Popen([sys.executable, "-m", "monitor.cli", "run", "--config", str(config)],
                                stdout=subprocess.DEVNULL, stderr=log or subprocess.DEVNULL,
                                env=None if env is None else {**os.environ, **env})
    finally:
        if log is not None:
            log.close()  # the child has its own descriptor
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_serving(base, proc)
        yield base, proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def create_token(data_dir: Path, role: str, label: str) -> str:
    """A new API token from `bedside token create` (the last line it prints)."""
    return subprocess.run([sys.executable, "-m", "monitor.cli", "token", "create", "--data-dir", str(data_dir),
                           "--role", role, "--label", label], capture_output=True, text=True, check=True,
                          timeout=30).stdout.strip().splitlines()[-1]
