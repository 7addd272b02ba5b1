"""The serial transport's read on a real pseudo-terminal: it hands over what has arrived without waiting for more.

With no timeout a plain `read(4096)` would block until 4,096 bytes came; `read_available` must return the one line
that is there, whole, and nothing when nothing came within the timeout. A local port is read and written on the
event loop, which must work when its descriptor number is above 1,023 (pyserial's select() fails there) and must
turn a pty whose other end closed into DeviceLost.
"""

from __future__ import annotations

import asyncio
import os
import pty
import resource
import threading
from collections.abc import Iterator

import pytest
import serial

from drivers.base import DeviceLost
from drivers.serial_transport import CHUNK, SerialSettings, local_fd, open_serial, read_available

LINE = b"02/14/26 10:00:00 SN=0000000001 SPO2=097% BPM=072 PI=01.20% ALARM=0000 EXC=000000\r\n"


@pytest.fixture
def pair() -> Iterator[tuple[int, str]]:
    master, slave = pty.openpty()
    name = os.ttyname(slave)
    yield master, name
    os.close(master)
    os.close(slave)


def read_in_thread(port: serial.Serial) -> list[bytes]:
    """What read_available returned within 5 s (nothing if it was still waiting then)."""
    got: list[bytes] = []
    t = threading.Thread(target=lambda: got.append(read_available(port)), daemon=True)
    t.start()
    t.join(5)
    answer = list(got)
    port.cancel_read()  # frees the thread if it was still blocked
    t.join(5)
    return answer


def test_returns_the_waiting_line_without_waiting_for_a_full_chunk(pair: tuple[int, str]) -> None:
    master, name = pair
    with serial.Serial(name, 9600, timeout=None) as port:  # no timeout: read(4096) would never return
        os.write(master, LINE)
        got = read_in_thread(port)
    assert got == [LINE]


def test_takes_at_most_one_chunk_and_leaves_the_rest(pair: tuple[int, str]) -> None:
    master, name = pair
    data = bytes(range(256)) * ((CHUNK + 1000) // 256 + 1)
    with serial.Serial(name, 9600, timeout=1.0) as port:
        written = 0
        while written < CHUNK + 500:
            written += os.write(master, data[written:CHUNK + 500])
        first = read_available(port)
        second = read_available(port)
    assert len(first) <= CHUNK
    assert first + second == data[:len(first) + len(second)]
    assert len(first) + len(second) > CHUNK  # nothing lost between the two reads


def test_nothing_arrived_gives_empty_bytes_after_the_timeout(pair: tuple[int, str]) -> None:
    _, name = pair
    with serial.Serial(name, 9600, timeout=0.05) as port:
        assert read_available(port) == b""


# ---------------------------------------------------------------- the link on the event loop, beside many sockets

@pytest.fixture
def many_descriptors() -> Iterator[None]:
    """More than 1,024 descriptors open, as beside a thousand MQTT connections: what opens next gets a number above
    1,023, where select() (pyserial's own read and write) fails."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1200:
        pytest.skip(f"the hard limit on open files here is {hard}: cannot open more than 1,024")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 2048) if hard == resource.RLIM_INFINITY
                                                else min(max(soft, 2048), hard), hard))
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        yield
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


async def test_link_reads_and_writes_a_port_whose_descriptor_is_above_1023(
        pair: tuple[int, str], many_descriptors: None) -> None:
    master, name = pair
    async with open_serial(name, SerialSettings()) as link:
        assert (local_fd(link._port) or 0) > 1023
        os.write(master, LINE)
        chunks = link.chunks()
        got = b""
        while len(got) < len(LINE):
            got += await asyncio.wait_for(anext(chunks), 5)
        assert got == LINE
        await link.write(b"start\r\n")
        await asyncio.sleep(0.05)
        os.set_blocking(master, False)
        assert os.read(master, 100) == b"start\r\n"


async def test_link_raises_device_lost_when_the_other_end_goes() -> None:
    master, slave = pty.openpty()
    name = os.ttyname(slave)
    os.close(slave)
    async with open_serial(name, SerialSettings()) as link:
        os.write(master, LINE)
        chunks = link.chunks()
        assert await asyncio.wait_for(anext(chunks), 5)
        os.close(master)  # the cable is pulled
        with pytest.raises(DeviceLost):
            for _ in range(10):
                await asyncio.wait_for(anext(chunks), 5)
