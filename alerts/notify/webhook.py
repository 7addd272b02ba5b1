"""The webhook output: each alarm event as a JSON POST, signed with HMAC-SHA256, acknowledged by a 2xx answer.

Headers: `Content-Type: application/json`, `X-Bedside-Event: <event id>` (repeats of one event carry the same
id), `X-Bedside-Timestamp: <unix seconds>` and `X-Bedside-Signature: sha256=<hex>`, the HMAC-SHA256 with the
configured secret of `<timestamp>.<body>` (the body's exact bytes). A receiver recomputes it, compares in
constant time and refuses a timestamp far from its clock (a replay). docs/integration.md shows the check.

Any answer but 2xx, a timeout or a refused connection is a failed delivery, retried (the forwarder): an alarm is
never dropped because a receiver answered 4xx; the outage becomes a technical alarm instead.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable

import httpx

from alerts.notify.forwarder import DeliveryError
from alerts.notify.outbox import Pending
from alerts.notify.payloads import with_sequence


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The value of X-Bedside-Signature for `body` sent at `timestamp`."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class WebhookSender:
    """POSTs queued events to `url`."""

    def __init__(self, url: str, secret: str, *, timeout: float = 10.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.url = url
        self.secret = secret
        self.clock = clock
        self.timeout = timeout
        self._client: httpx.AsyncClient | None = None  # opened at the first send, again after close()

    async def send(self, item: Pending) -> None:
        event = with_sequence(item.body, item.seq)
        body = json.dumps(event, separators=(",", ":"), allow_nan=False).encode()
        stamp = str(int(self.clock()))
        headers = {"Content-Type": "application/json", "X-Bedside-Event": event["event_id"],
                   "X-Bedside-Timestamp": stamp, "X-Bedside-Signature": signature(self.secret, stamp, body)}
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout, follow_redirects=False)
        try:
            answer = await self._client.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"{self.url}: {type(exc).__name__}: {exc}") from exc
        if not 200 <= answer.status_code < 300:
            raise DeliveryError(f"{self.url}: answered {answer.status_code}")

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()
