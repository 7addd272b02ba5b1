"""`bedside station` as a nurse sees it: the real command in a real pseudo-terminal (100x30, xterm-256color)
against a real private Mosquitto. The test publishes what bedside would (retained snapshots, heartbeats, the
offline last will) with aiomqtt and reads the screen back through the pyte terminal emulator, counting the bells
the terminal received."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import pty
import struct
import subprocess
import sys
import termios
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiomqtt
import pyte
import pytest

from monitor.mosquitto import PrivateMosquitto

pytestmark = pytest.mark.timeout(60)
SITE = "test"
COLS, ROWS = 100, 30
HB = f"bedside/v1/{SITE}/service/bedside/heartbeat"


class BellScreen(pyte.Screen):
    """A pyte screen that counts the bells (BEL outside an escape sequence) it was sent."""

    bells = 0

    def bell(self, *args: Any, **kwargs: Any) -> None:
        self.bells += 1


class Station:
    """`python -m monitor.cli station` on a new pty whose screen is fed to pyte as it is written."""

    def __init__(self, broker: PrivateMosquitto) -> None:
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
        env = {k: v for k, v in os.environ.items()
               if k not in ("COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE")}
        env["TERM"] = "xterm-256color"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "monitor.cli", "station", "--broker", broker.url, "--site", SITE],
            stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True,
            preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))  # the pty is its terminal: ^C is SIGINT
        os.close(slave)
        os.set_blocking(self.master, False)
        self.screen = BellScreen(COLS, ROWS)
        self.stream = pyte.ByteStream(self.screen)
        self.raw = bytearray()
        asyncio.get_running_loop().add_reader(self.master, self._read)

    def _read(self) -> None:
        try:
            data = os.read(self.master, 65536)
        except BlockingIOError:
            return
        except OSError:  # EIO: the child closed the terminal
            data = b""
        if not data:
            asyncio.get_running_loop().remove_reader(self.master)
            return
        self.raw += data
        self.stream.feed(data)

    @property
    def lines(self) -> list[str]:
        return [line.rstrip() for line in self.screen.display]

    def text(self) -> str:
        return "\n".join(self.lines)

    def row_of(self, text: str) -> int:
        return next(i for i, line in enumerate(self.lines) if text in line)

    async def until(self, predicate: Callable[[], bool], what: str, within: float = 10.0) -> None:
        deadline = time.monotonic() + within
        while not predicate():
            assert self.proc.poll() is None, f"bedside station exited with {self.proc.returncode}:\n{self.text()}"
            assert time.monotonic() < deadline, f"timed out after {within} s waiting for {what}; screen:\n{self.text()}"
            await asyncio.sleep(0.05)

    async def shows(self, text: str, within: float = 10.0) -> None:
        await self.until(lambda: text in self.text(), repr(text), within)

    def close(self) -> None:
        with contextlib.suppress(ValueError, OSError):
            asyncio.get_running_loop().remove_reader(self.master)
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        os.close(self.master)


@contextlib.asynccontextmanager
async def station(broker: PrivateMosquitto) -> AsyncIterator[Station]:
    s = Station(broker)
    try:
        yield s
    finally:
        s.close()


async def publish(broker: PrivateMosquitto, topic: str, body: dict[str, Any], retain: bool = True) -> None:
    async with aiomqtt.Client(broker.host, broker.port) as client:
        await client.publish(topic, json.dumps(body).encode(), qos=1, retain=retain)


def heartbeat(state: str, interval: float) -> dict[str, Any]:
    return {"state": state, "instance": "bedside", "time": time.time(), "ts": "", "interval": interval}


@contextlib.asynccontextmanager
async def beating(broker: PrivateMosquitto, interval: float, every: float) -> AsyncIterator[None]:
    """Bedside's heartbeat, `online` every `every` s (declaring `interval`), while the block runs (the broker may
    be down meanwhile: it keeps trying)."""

    async def beat() -> None:
        while True:
            with contextlib.suppress(aiomqtt.MqttError):
                await publish(broker, HB, heartbeat("online", interval))
            await asyncio.sleep(every)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def snapshot(bay: str, name: str, alarms: list[dict[str, Any]]) -> dict[str, Any]:
    now = time.time()
    return {"site": SITE, "bay": bay, "bay_name": name, "time": now, "ts": "", "alarms": alarms}


def alarm(alarm_id: str, priority: str, message: str, **more: Any) -> dict[str, Any]:
    return {"id": alarm_id, "kind": "physiological", "priority": priority, "message": message, "vital": None,
            "value": None, "limit": None, "device": None, "since": time.time() - 5, "acknowledged_by": None,
            "latched": False, "audible": True, "paused_until": None, "escalation": 0, **more}


def alarms_topic(bay: str) -> str:
    return f"bedside/v1/{SITE}/bay/{bay}/alarms"


async def test_alarms_by_priority_bell_on_high_offline_banner_and_ctrl_c(broker: PrivateMosquitto) -> None:
    async with station(broker) as st:
        await st.shows("BEDSIDE STATION")
        assert f"site {SITE}" in st.text() and broker.url in st.text()
        async with beating(broker, interval=5.0, every=0.5):
            await st.shows("bedside online")
            await publish(broker, alarms_topic("bay2"), snapshot("bay2", "Bay 2", [
                alarm("nibp_sys_high", "medium", "NIBP SYS HIGH 185 > 180", acknowledged_by="nurse.jo")]))
            await publish(broker, alarms_topic("bay3"), snapshot("bay3", "Bay 3", []))
            await st.shows("NIBP SYS HIGH")
            await st.shows("Quiet: Bay 3")
            assert "ACK nurse.jo" in st.lines[st.row_of("NIBP SYS HIGH")]
            assert st.screen.bells == 0

            await publish(broker, alarms_topic("bay1"), snapshot("bay1", "Bay 1", [
                alarm("spo2_low", "high", "SpO2 LOW 85 < 90", latched=True)]))
            await st.shows("SpO2 LOW 85 < 90")
            await st.until(lambda: st.screen.bells == 1, "one bell for the high alarm", 3)
            high, medium = st.row_of("SpO2 LOW"), st.row_of("NIBP SYS HIGH")
            assert high < medium
            assert st.lines[high].startswith("!!!") and "Bay 1" in st.lines[high] and "LATCHED" in st.lines[high]
            assert st.lines[medium].startswith("!!") and not st.lines[medium].startswith("!!!")
            assert st.screen.buffer[high][0].fg == "red"  # rich's "red": standard colour 1
            assert st.screen.buffer[medium][0].fg == "brown"  # pyte's name for standard colour 3, yellow

        await publish(broker, HB, heartbeat("offline", 5.0))  # what bedside's last will says
        await st.shows("BEDSIDE OFFLINE")
        await st.until(lambda: st.screen.bells == 2, "a bell when bedside goes offline", 3)
        banner = st.row_of("!!!  BEDSIDE OFFLINE  !!!")
        assert st.screen.buffer[banner][0].reverse  # the banner is reverse video across the screen
        assert "NOT LIVE" in st.text() and "SpO2 LOW" in st.text()  # the last known alarms, marked as such

        async with beating(broker, interval=5.0, every=0.5):
            await st.until(lambda: "BEDSIDE OFFLINE" not in st.text(), "the banner to go when online returns")
            await st.shows("bedside online")
            await asyncio.sleep(1.2)  # a redraw or two: nothing rings again
            assert st.screen.bells == 2

            os.write(st.master, b"\x03")  # Ctrl-C at the keyboard
            assert await asyncio.to_thread(st.proc.wait, 10) == 0
            await st.until(lambda: b"\x1b[?1049l" in st.raw, "the screen to be given back", 3)
            assert st.raw.rfind(b"\x1b[?25h") > st.raw.rfind(b"\x1b[?25l")  # the cursor shown again


async def test_no_bell_for_a_medium_alarm(broker: PrivateMosquitto) -> None:
    async with station(broker) as st, beating(broker, interval=5.0, every=0.5):
        await st.shows("bedside online")
        await publish(broker, alarms_topic("bay1"), snapshot("bay1", "Bay 1", [
            alarm("hr_high", "medium", "HR HIGH 130 > 120")]))
        await st.shows("HR HIGH 130 > 120")
        await asyncio.sleep(1.5)
        assert st.lines[st.row_of("HR HIGH")].startswith("!! ")
        assert st.screen.bells == 0
        assert b"\x07" not in st.raw


async def test_stale_heartbeat_and_broker_loss_show_the_banner(broker: PrivateMosquitto) -> None:
    async with station(broker) as st:
        async with beating(broker, interval=1.0, every=0.3):
            await st.shows("bedside online")
        started = time.monotonic()
        await st.shows("BEDSIDE OFFLINE", within=8)  # no heartbeat for 3 x 1 s
        assert time.monotonic() - started > 2.0
        assert "no heartbeat from bedside" in st.text()
        assert st.screen.bells == 1

        async with beating(broker, interval=5.0, every=0.5):
            await st.until(lambda: "BEDSIDE OFFLINE" not in st.text(), "online again")
            await asyncio.to_thread(broker.stop)
            await st.shows("BROKER CONNECTION LOST")
            await st.until(lambda: st.screen.bells == 2, "a bell when the broker link is lost", 3)
            await asyncio.to_thread(broker.start)
            await st.until(lambda: "BROKER CONNECTION LOST" not in st.text() and "bedside online" in st.text(),
                           "reconnected, bedside heard again", 20)
        assert st.proc.poll() is None
