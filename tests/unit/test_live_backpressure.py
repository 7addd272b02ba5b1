"""The live websocket's two limits on a client that does not keep up, driven through the ASGI app with a client
whose sends complete only when the test says so: one that cannot take a message for SEND_TIMEOUT is
disconnected; one that falls 10,000 messages behind is dropped from the fan-out at once (so the server holds no
more for it) and closed with 1013 "reconnect to resynchronise". Either way its subscription is gone. (A real
stalled client reaches these limits only once the socket buffers are full: tests/integration/test_stalled_clients.py.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, MutableMapping
from typing import Any

import pytest

from dashboard import app as app_module
from dashboard.app import create_app
from monitor.model import Observation
from tests.unit.conftest import World

Message = dict[str, Any]


class Client:
    """The ASGI side of one websocket client: it connects, then never sends anything; its sends (what the server
    writes to it) complete only while `taking` is set."""

    def __init__(self, token: str, query: bytes = b"") -> None:
        self.token = token
        self.query = query
        self.sent: list[Message] = []
        self.taking = asyncio.Event()
        self.taking.set()
        self.closable = True
        self.attempted: list[Message] = []
        self._connect: list[Message] = [{"type": "websocket.connect"}]

    @property
    def scope(self) -> dict[str, Any]:
        return {"type": "websocket", "asgi": {"version": "3.0"}, "scheme": "ws", "http_version": "1.1",
                "path": "/ws/live", "raw_path": b"/ws/live", "query_string": self.query, "root_path": "",
                "headers": [(b"host", b"testserver"), (b"authorization", f"Bearer {self.token}".encode())],
                "client": ("127.0.0.1", 50000), "server": ("testserver", 80), "subprotocols": [], "state": {}}

    async def receive(self) -> Message:
        if self._connect:
            return self._connect.pop()
        await asyncio.Event().wait()  # the client never says anything
        raise AssertionError("unreachable")

    async def send(self, message: MutableMapping[str, Any]) -> None:
        self.attempted.append(dict(message))
        if message["type"] == "websocket.close" and not self.closable:
            await asyncio.Event().wait()  # its buffers are full again: not even the close frame gets through
        await self.taking.wait()
        self.sent.append(dict(message))

    def texts(self) -> list[str]:
        return [m["text"] for m in self.sent if m["type"] == "websocket.send"]


async def until(predicate: Callable[[], bool], what: str) -> None:
    for _ in range(200):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


async def serve(world: World, client: Client) -> None:
    """The app serving `client` until it lets go of it."""
    _, src, _ = world
    await create_app(src)(client.scope, client.receive, client.send)


def obs(value: float) -> Observation:
    return Observation("bay1", "ox1", "spo2", value, None, 1000.0)


async def test_a_client_that_cannot_take_a_message_for_send_timeout_is_disconnected(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    _, src, tokens = world
    monkeypatch.setattr(app_module, "SEND_TIMEOUT", 0.3)  # 10 s in the product
    client = Client(tokens["viewer"])
    handler = asyncio.create_task(serve(world, client))
    await until(lambda: len(client.texts()) == 1 and src.broadcast.subscribers == 1, "the snapshot")
    assert '"type":"snapshot"' in client.texts()[0]
    client.taking.clear()  # its buffers are full from now on
    src.broadcast.publish(obs(97.0))
    loop = asyncio.get_running_loop()
    stuck = loop.time()
    await asyncio.wait_for(handler, 2)
    assert 0.3 <= loop.time() - stuck < 1.0
    assert src.broadcast.subscribers == 0  # nothing more is queued for it


@pytest.mark.parametrize("closable", [True, False])
async def test_a_client_10000_messages_behind_is_dropped_at_once_and_told_to_resynchronise(
        world: World, monkeypatch: pytest.MonkeyPatch, closable: bool) -> None:
    _, src, tokens = world
    monkeypatch.setattr(app_module, "SEND_TIMEOUT", 1.0)  # 10 s in the product
    client = Client(tokens["viewer"])
    client.closable = closable
    handler = asyncio.create_task(serve(world, client))
    await until(lambda: len(client.texts()) == 1 and src.broadcast.subscribers == 1, "the snapshot")
    client.taking.clear()
    src.broadcast.publish(obs(97.0))  # the one it is stuck on
    await asyncio.sleep(0.05)
    for i in range(10_000):  # its queue is full ...
        src.broadcast.publish(obs(90.0 + i % 5))
    assert src.broadcast.subscribers == 1
    src.broadcast.publish(obs(96.0))  # ... and this one does not fit: the server lets go of it at once
    assert src.broadcast.subscribers == 0
    client.taking.set()
    await asyncio.wait_for(handler, 3)  # also when the close frame cannot be sent: given up after SEND_TIMEOUT
    closes = [m for m in client.attempted if m["type"] == "websocket.close"]
    assert [(c["code"], c["reason"]) for c in closes] == [(1013, "too slow; reconnect to resynchronise")]
    assert len(client.texts()) <= 3  # the snapshot, the message it was stuck on (and one more): not the backlog


def test_each_live_item_is_encoded_once_for_every_client_and_the_cache_is_bounded() -> None:
    import json

    from dashboard.live import EncodedItems, item_json

    texts = EncodedItems(size=2)
    first, second, third = obs(97.0), obs(96.0), obs(95.0)
    text = texts.text(first)
    assert json.loads(text) == item_json(first)
    assert texts.text(first) is text  # the second client gets the same string: not encoded again
    texts.text(second)
    texts.text(third)  # first is evicted (bounded) ...
    again = texts.text(first)
    assert again == text and again is not text  # ... and encoded afresh when a client that far behind asks
    equal = obs(97.0)  # an equal but distinct item (a new reading of the same value) is a message of its own
    assert texts.text(equal) == text and texts.text(equal) is not texts.text(first)


@pytest.mark.parametrize("query", [b"batch=1", b""])
async def test_a_burst_comes_as_one_batch_message_to_a_client_that_asks_and_item_by_item_otherwise(
        world: World, query: bytes) -> None:
    import json

    from dashboard.live import item_json

    _, src, tokens = world
    client = Client(tokens["viewer"], query)
    handler = asyncio.create_task(serve(world, client))
    await until(lambda: len(client.texts()) == 1 and src.broadcast.subscribers == 1, "the snapshot")
    burst = [obs(97.0), obs(96.0), obs(95.0)]
    for item in burst:  # queued in one go, as the readings of one monitor message are
        src.broadcast.publish(item)
    await until(lambda: sum(len(json.loads(t).get("items", [0])) for t in client.texts()[1:]) == 3, "the burst")
    received = [json.loads(t) for t in client.texts()[1:]]
    if query:
        assert received == [{"type": "batch", "items": [item_json(i) for i in burst]}]
    else:
        assert received == [item_json(i) for i in burst]
    src.broadcast.publish(obs(94.0))  # a single item is never wrapped
    await until(lambda: len(client.texts()) == 2 + (1 if query else 3), "the single item")
    assert json.loads(client.texts()[-1]) == item_json(obs(94.0))
    handler.cancel()
