"""MLLP, the framing HL7 v2 messages travel in over TCP (shared/reference/device-protocols.md §4.1), and an asyncio
client that sends one message at a time and waits for its ACK.

- `frame` / `MllpDecoder`: sans-I/O. A frame is ``0x0B`` + the message (UTF-8) + ``0x1C 0x0D``. The decoder takes
  bytes as they come, in chunks of any size, and returns the complete messages; bytes outside a frame are skipped
  and counted (`skipped`), a frame cut short by a new ``0x0B``, an empty frame or one longer than `max_size` bytes
  is dropped and counted (`errors`). It never raises; bytes that are not UTF-8 become U+FFFD.
- `MllpClient`: one TCP connection (plain asyncio streams), opened on the first `send` and kept for the next ones.
  `send` writes the frame and waits up to `timeout` s for the ACK frame, then checks that MSA-2 is the message's
  control id (MSH-10) and that MSA-1 accepts it (AA, or CA in enhanced mode). Any failure raises `MllpError` with a
  `reason` (``refused``, ``unreachable``, ``timeout``, ``closed``, ``bad_ack``, or the ACK's code ``AE`` / ``AR`` /
  ``CE`` / ``CR`` with its text) and closes the connection, so the next `send` connects afresh. The client does not
  retry: whoever queued the message (the outbox's forwarder) decides when to send it again. Sends are serialised
  (one outstanding message at a time, as MLLP's original acknowledgement mode expects).
"""

from __future__ import annotations

import asyncio
import contextlib

from alerts.notify.pcd04 import Ack, parse_ack

START = b"\x0b"
END = b"\x1c\x0d"
MAX_SIZE = 1 << 20  # bytes of one frame's content: 1 MiB, far above any alarm message or ACK
READ_CHUNK = 65536


def frame(message: str) -> bytes:
    """`message` in an MLLP frame, UTF-8."""
    return START + message.encode("utf-8") + END


class MllpDecoder:
    """Splits a byte stream into the messages of its MLLP frames; keeps what belongs to an unfinished frame."""

    def __init__(self, max_size: int = MAX_SIZE) -> None:
        if max_size < 1:
            raise ValueError(f"max_size must be >= 1, got {max_size}")
        self.max_size = max_size
        self.skipped = 0  # bytes outside any frame
        self.errors = 0  # frames dropped: cut short, empty, or too long
        self._buf = bytearray()
        self._in_frame = False
        self._scanned = 0  # bytes of _buf (inside a frame) already searched for START and END

    def feed(self, data: bytes) -> list[str]:
        """The messages completed by `data` (possibly none), in order."""
        out: list[str] = []
        self._buf += data
        while self._buf:
            if not self._in_frame:
                start = self._buf.find(START)
                if start < 0:
                    self.skipped += len(self._buf)
                    self._buf.clear()
                    break
                self.skipped += start
                del self._buf[:start + 1]
                self._in_frame, self._scanned = True, 0
            # an END may straddle the previous chunk's boundary: search again from one byte before
            frm = max(0, self._scanned - 1)
            end = self._buf.find(END, frm)
            restart = self._buf.find(START, frm, end if end >= 0 else len(self._buf))
            if restart >= 0:  # a new frame began before this one ended: this one was cut short
                self.errors += 1
                del self._buf[:restart + 1]
                self._scanned = 0
                continue
            if end < 0:
                if len(self._buf) > self.max_size + 1:  # + 1: the first byte of an END may be here already
                    self.errors += 1
                    self._buf.clear()
                    self._in_frame = False
                else:
                    self._scanned = len(self._buf)
                break
            content = bytes(self._buf[:end])
            del self._buf[:end + len(END)]
            self._in_frame = False
            if not content or len(content) > self.max_size:
                self.errors += 1
                continue
            out.append(content.decode("utf-8", errors="replace"))
        return out

    @property
    def pending(self) -> int:
        """Bytes held for an unfinished frame."""
        return len(self._buf)


class MllpError(Exception):
    """A message was not acknowledged: `reason` says how (refused, unreachable, timeout, closed, bad_ack, or the
    ACK's code AE / AR / CE / CR), `ack` is the receiver's answer when there was one."""

    def __init__(self, reason: str, detail: str, ack: Ack | None = None) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.ack = ack


def control_id(message: str) -> str:
    """MSH-10 of `message`; ValueError when it has no MSH segment first or no control id."""
    if not message.startswith("MSH") or len(message) < 4:
        raise ValueError("not an HL7 v2 message: it does not begin with MSH")
    first = message.replace("\n", "\r").split("\r", 1)[0]
    fields = first.split(first[3])
    if len(fields) < 10 or not fields[9]:
        raise ValueError("the message has no control id (MSH-10)")
    return fields[9].split("^", 1)[0]


class MllpClient:
    """Sends HL7 v2 messages to one MLLP receiver over one reused TCP connection."""

    def __init__(self, host: str, port: int, timeout: float = 10.0, *, max_size: int = MAX_SIZE) -> None:
        if timeout <= 0:
            raise ValueError(f"timeout must be > 0 s, got {timeout}")
        self.host = host
        self.port = port
        self.timeout = timeout
        self.max_size = max_size
        self.connects = 0  # connections opened so far
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._decoder = MllpDecoder(max_size)
        self._lock = asyncio.Lock()

    @property
    def connected(self) -> bool:
        """Whether a connection is open (as far as this side knows)."""
        return self._writer is not None and not self._writer.is_closing()

    async def send(self, message: str) -> Ack:
        """Send `message` and return the receiver's accepting ACK; MllpError otherwise (the connection is closed).
        ValueError, before anything is sent, when the message has no control id (MSH-10)."""
        expected = control_id(message)
        data = frame(message)
        async with self._lock:
            try:
                return await self._exchange(data, expected)
            except BaseException:  # MllpError, or cancelled mid-exchange: the connection's state is unknown
                await self._drop()
                raise

    async def close(self) -> None:
        """Close the connection (a later `send` opens a new one)."""
        async with self._lock:
            await self._drop()

    async def _exchange(self, data: bytes, expected: str) -> Ack:
        reader, writer = await self._connection()
        where = f"{self.host}:{self.port}"
        try:
            async with asyncio.timeout(self.timeout):
                writer.write(data)
                await writer.drain()
                while True:
                    chunk = await reader.read(READ_CHUNK)
                    if not chunk:
                        raise MllpError("closed", f"{where} closed the connection before acknowledging {expected}")
                    messages = self._decoder.feed(chunk)
                    if messages:
                        break
        except TimeoutError:
            raise MllpError("timeout", f"no ACK from {where} for {expected} within {self.timeout:g} s") from None
        except OSError as exc:  # reset, broken pipe
            raise MllpError("closed", f"{where}: {exc.strerror or exc}") from exc
        try:
            ack = parse_ack(messages[0])
        except ValueError as exc:
            raise MllpError("bad_ack", f"{where} answered {expected} with something else than an ACK: {exc}") from None
        if ack.control_id != expected:
            raise MllpError("bad_ack", f"{where} acknowledged {ack.control_id!r}, not {expected!r}", ack)
        if not ack.accepted:
            raise MllpError(ack.code, f"{where} did not accept {expected}: {ack.text or '(no text)'}", ack)
        return ack

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._reader is not None and self._writer is not None:
            if not self._reader.at_eof() and not self._writer.is_closing():
                return self._reader, self._writer
            await self._drop()  # the receiver closed it while idle
        where = f"{self.host}:{self.port}"
        try:
            async with asyncio.timeout(self.timeout):
                reader, writer = await asyncio.open_connection(self.host, self.port)
        except TimeoutError:
            raise MllpError("timeout", f"could not connect to {where} within {self.timeout:g} s") from None
        except ConnectionRefusedError:
            raise MllpError("refused", f"{where} refused the connection") from None
        except OSError as exc:
            raise MllpError("unreachable", f"cannot connect to {where}: {exc.strerror or exc}") from exc
        self._reader, self._writer = reader, writer
        self._decoder = MllpDecoder(self.max_size)
        self.connects += 1
        return reader, writer

    async def _drop(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is None:
            return
        writer.close()
        with contextlib.suppress(OSError, TimeoutError):
            async with asyncio.timeout(1.0):
                await writer.wait_closed()
