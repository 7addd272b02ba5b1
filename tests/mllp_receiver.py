"""A real MLLP receiver for tests: python-hl7's asyncio MLLP server (`hl7.mllp.start_hl7_server`) on a loopback
port that records every message it gets and answers with an ACK, the way an alarm manager or interface engine does.

    async with MllpReceiver() as receiver:        # listening on 127.0.0.1:<receiver.port>
        ... send to receiver.port ...
        receiver.answer, receiver.text = "AE", "unknown bay"   # the next messages are answered AE
        receiver.answer = "stall"                 # ... or not answered at all
        await receiver.stop()                     # refuses connections (and drops the open ones)
        await receiver.start()                    # listens again, on the same port

`messages` holds every message parsed by python-hl7 (`hl7.Message`), `raw` the same as text, in arrival order,
whatever the answer was; a block python-hl7 cannot parse is counted in `errors` and answered AR.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from types import TracebackType
from typing import Any, Literal

import hl7
from hl7.mllp import start_hl7_server

from monitor.hl7v2 import escape

Answer = Literal["AA", "AE", "AR", "CA", "CE", "CR", "stall"]


class MllpReceiver:
    """An MLLP server on `host`: records, acknowledges, can be told to reject or stall, stopped and restarted."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, answer: Answer = "AA", text: str = "") -> None:
        self.host = host
        self.port = port  # 0 until the first start picks a free one; kept for every restart
        self.answer: Answer = answer
        self.text = text  # MSA-3 of the ACKs
        self.ack_control_id: str | None = None  # MSA-2 to answer instead of the message's MSH-10 (a wrong ACK)
        self.messages: list[hl7.Message] = []
        self.raw: list[str] = []
        self.errors = 0
        self.connections = 0  # connections accepted, over every start
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._acks = 0

    @property
    def running(self) -> bool:
        return self._server is not None

    async def start(self) -> None:
        """Listen (again) on `port`."""
        if self._server is not None:
            return
        self._server = await start_hl7_server(self._client, self.host, self.port, encoding="utf-8",
                                              reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening and close every open connection: a client now gets "connection refused"."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for writer in list(self._writers):
            writer.close()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)
        await server.wait_closed()

    async def wait_for(self, count: int, within: float = 5.0) -> None:
        """Until `count` messages have arrived; AssertionError after `within` s."""
        deadline = time.monotonic() + within
        while len(self.messages) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"the receiver got {len(self.messages)} messages, not {count}, in {within} s")
            await asyncio.sleep(0.01)

    async def __aenter__(self) -> MllpReceiver:
        await self.start()
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

    # --- one connection -----------------------------------------------------------------------------------

    async def _client(self, reader: Any, writer: Any) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        self.connections += 1
        try:
            while True:
                try:
                    block: bytes = await reader.readblock()
                except asyncio.IncompleteReadError:  # the client closed the connection
                    return
                except ValueError:  # too long, or not a block (InvalidBlockError is a ValueError too)
                    self.errors += 1
                    continue
                text = block.decode("utf-8", errors="replace")
                try:
                    message = hl7.parse(text)
                    control = str(message.segment("MSH")[10])
                except Exception:  # python-hl7 raises assorted errors on what is not HL7
                    self.errors += 1
                    writer.writeblock(self._ack("", "AR", "not an HL7 v2 message").encode())
                    await writer.drain()
                    continue
                self.messages.append(message)
                self.raw.append(text)
                if self.answer == "stall":
                    continue
                ack_id = control if self.ack_control_id is None else self.ack_control_id
                writer.writeblock(self._ack(ack_id, self.answer, self.text).encode())
                await writer.drain()
        except ConnectionError:
            return
        finally:
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
            if task is not None:
                self._tasks.discard(task)

    def _ack(self, control_id: str, code: str, text: str) -> str:
        self._acks += 1
        now = time.strftime("%Y%m%d%H%M%S", time.gmtime()) + "+0000"
        return (f"MSH|^~\\&|RECEIVER|TEST|BEDSIDE||{now}||ACK^R40^ACK|ACK{self._acks}|P|2.6\r"
                f"MSA|{code}|{escape(control_id)}|{escape(text)}\r")
