"""Alarm delivery through the durable outbox to real receivers on loopback: an MLLP alarm manager (python-hl7's
asyncio server, tests/mllp_receiver.py) and a webhook receiver that checks the signature (tests/webhook_receiver.py).

Both receivers are stopped for 30 s while alarms occur; meanwhile the messages wait on disk and, past
`failing_after`, the targets are reported failing. bedside is then stopped and started again on the same data dir
(a new outbox, new forwarders), the receivers come back, and every alarm arrives exactly once and in order."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import hl7
import pytest

from alerts.notify.notifier import Notifier
from alerts.notify.outbox import Outbox
from monitor.config import NotifyConfig
from monitor.model import AlarmEvent
from tests.mllp_receiver import MllpReceiver
from tests.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.timeout(120)

SECRET = "a-webhook-secret-of-32-characters"
BACKOFF = (0.2, 0.5, 1.0)  # s: the product's goes up to 30 s; the test need not wait that long


def alarm(n: int, phase: str = "start") -> AlarmEvent:
    return AlarmEvent(f"bay{n % 3 + 1}", f"alarm_{n}", phase, "physiological", "high", time.time(),  # type: ignore[arg-type]
                      f"SpO2 LOW {80 + n} < 90 #{n}", "spo2", 80.0 + n, 90.0, "ox1")


def config(mllp: MllpReceiver, hook: WebhookReceiver) -> NotifyConfig:
    return NotifyConfig.model_validate({"mqtt": False, "failing_after": 5, "targets": [
        {"name": "manager", "kind": "hl7", "url": f"mllp://127.0.0.1:{mllp.port}", "timeout": 2},
        {"name": "pager", "kind": "webhook", "url": hook.url, "secret": SECRET, "timeout": 2}]})


class Running:
    """A notifier with its forwarders running, as the service runs them."""

    def __init__(self, data_dir: Path, cfg: NotifyConfig) -> None:
        self.outbox = Outbox(data_dir)
        self.notifier = Notifier(cfg, "clinic", self.outbox, {"bay1": "Bay 1", "bay2": "Bay 2", "bay3": "Bay 3"},
                                 backoff=BACKOFF)
        self.tasks = [asyncio.create_task(t) for t in self.notifier.tasks()]

    async def stop(self) -> None:
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.outbox.close()


async def until(predicate: Any, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, f"timed out after {within} s waiting for {what}"
        await asyncio.sleep(0.05)


def hl7_alarm_texts(messages: list[hl7.Message]) -> list[str]:
    """The alarm text of each ORU^R40 (the identity facet's OBX-5), in arrival order."""
    return [str(m.segments("OBX")[1][5]) for m in messages]


async def test_receivers_down_for_30_s_and_bedside_restarted_still_get_every_alarm_once_in_order(
        tmp_path: Path) -> None:
    hook = WebhookReceiver(SECRET)
    async with MllpReceiver() as mllp:
        hook.start()
        try:
            first = Running(tmp_path, config(mllp, hook))
            first.notifier.events([alarm(0), alarm(1)])
            await until(lambda: len(hook.events) == 2 and len(mllp.messages) == 2, 10, "the first two alarms")

            await mllp.stop()
            hook.stop()
            down_since = time.monotonic()
            for n in range(2, 8):  # alarms keep happening while both receivers are down
                first.notifier.events([alarm(n)])
                await asyncio.sleep(2.0)
            await until(lambda: sorted(first.notifier.failing(time.time())) == ["manager", "pager"], 10,
                        "both targets reported failing")
            assert first.outbox.counts() == {"manager": 6, "pager": 6}  # waiting on disk
            first.notifier.events([alarm(8)])
            await asyncio.sleep(max(0.0, 30.0 - (time.monotonic() - down_since)))
            assert (len(hook.events), len(mllp.messages)) == (2, 2)
            await first.stop()  # bedside stops with the messages still queued

            second = Running(tmp_path, config(mllp, hook))  # ... and starts again on the same data dir
            try:
                await mllp.start()
                hook.start()
                await until(lambda: len(hook.events) == 9 and len(mllp.messages) == 9, 20, "every alarm")
                await asyncio.sleep(1.0)  # nothing more arrives: no repeats
                expected = [f"SpO2 LOW {80 + n} < 90 #{n}" for n in range(9)]
                assert [e["message"] for e in hook.events] == expected
                assert hl7_alarm_texts(mllp.messages) == expected
                assert hook.bad_signatures == 0
                assert [e["seq"] for e in hook.events] == sorted(e["seq"] for e in hook.events)
                assert second.outbox.counts() == {}
                assert second.notifier.failing(time.time()) == []
            finally:
                await second.stop()
        finally:
            hook.stop()
