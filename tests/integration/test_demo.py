"""`bedside demo` as a clinic's IT person runs it: four bays live within 30 s through the API and the websocket,
both refusing a request without a token; SIGTERM stops everything within 5 s, leaving no process or pty."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from websockets.asyncio.client import connect

from monitor.mosquitto import free_port

pytestmark = pytest.mark.timeout(90)


def children_of(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def ptys_held(pid: int) -> set[str]:
    """The /dev/pts entries `pid` and its children hold open (another process's ptys do not count)."""
    held = set()
    for p in {pid, *children_of(pid)}:
        try:
            fds = list(Path(f"/proc/{p}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("/dev/pts/"):
                held.add(target.removeprefix("/dev/pts/"))
    return held


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def bedside(*args: str) -> list[str]:
    return [sys.executable, "-m", "monitor.cli", *args]


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str, Path, set[str]]]:
    ptys_before = set(os.listdir("/dev/pts"))
    port = free_port()
    data = tmp_path / "data"
    proc = subprocess.Popen(bedside("demo", "--bays", "4", "--port", str(port), "--data-dir", str(data)),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        yield proc, f"127.0.0.1:{port}", data, ptys_before
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        if proc.stdout:
            proc.stdout.close()


def viewer_token(data: Path) -> str:
    out = subprocess.run(bedside("token", "create", "--data-dir", str(data), "--role", "viewer"),
                         capture_output=True, text=True, check=True).stdout
    return out.strip().splitlines()[-1]


def get_bays(base: str, token: str) -> dict[str, dict[str, Any]]:
    body = httpx.get(f"http://{base}/api/bays", headers={"Authorization": f"Bearer {token}"}, timeout=5).json()
    return {b["id"]: b for b in body["bays"]}


def live(bays: dict[str, dict[str, Any]]) -> bool:
    return all({"hr", "spo2"} <= set(b["vitals"]) for b in bays.values())


async def messages_per_bay(base: str, token: str, within: float) -> set[str]:
    seen: set[str] = set()
    async with connect(f"ws://{base}/ws/live", additional_headers={"Authorization": f"Bearer {token}"}) as ws:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline and len(seen) < 4:
            try:
                msg = json.loads(await asyncio.wait_for(ws.recv(), deadline - time.monotonic()))
            except TimeoutError:
                break
            if msg["type"] != "snapshot":
                seen.add(msg["bay"])
    return seen


def test_demo_serves_four_live_bays_with_auth_and_stops_cleanly(
    demo: tuple[subprocess.Popen[str], str, Path, set[str]],
) -> None:
    proc, base, data, ptys_before = demo
    deadline = time.monotonic() + 30
    token = None
    bays: dict[str, dict[str, Any]] = {}
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else "demo exited"
        try:
            token = token or viewer_token(data)
            bays = get_bays(base, token)
            if live(bays):
                break
        except (httpx.HTTPError, subprocess.CalledProcessError):
            pass
        time.sleep(0.5)
    assert token is not None and len(bays) == 4 and live(bays), f"not live within 30 s: {bays}"

    # without a token: 401, and the websocket handshake is refused
    assert httpx.get(f"http://{base}/api/bays", timeout=5).status_code == 401
    with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
        asyncio.run(messages_per_bay(base, "", 5))
    assert refused.value.response.status_code == 403

    first = get_bays(base, token)
    time.sleep(3)
    second = get_bays(base, token)
    for bay_id in first:
        for vital in ("hr", "spo2"):
            before, after = first[bay_id]["vitals"][vital], second[bay_id]["vitals"][vital]
            assert after["time"] > before["time"], (bay_id, vital, before, after)
    changed = sum(first[b]["vitals"][v]["value"] != second[b]["vitals"][v]["value"]
                  for b in first for v in ("hr", "spo2"))
    assert changed >= 4, "the simulated patients' values should move"

    assert asyncio.run(messages_per_bay(base, token, 5)) == set(first)

    children = children_of(proc.pid)
    assert children, "the demo should run its private Mosquitto as a child"
    held = ptys_held(proc.pid)
    assert held - ptys_before, "the demo's Masimo bays should use ptys"
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=5)
    assert time.monotonic() - started < 5
    assert proc.returncode == 0
    assert not [c for c in children if alive(c)], "a child process outlived the demo"
    assert not (held - ptys_before) & set(os.listdir("/dev/pts")), "a pty outlived the demo"
