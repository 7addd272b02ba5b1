"""MLLP (alerts/notify/mllp.py): the sans-I/O framing, then `MllpClient` against a real receiver on a loopback port
(tests/mllp_receiver.py: python-hl7's asyncio MLLP server) that accepts, rejects, stalls, stops and restarts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alerts.notify.mllp import END, START, MllpClient, MllpDecoder, MllpError, control_id, frame
from alerts.notify.pcd04 import alarm_message
from monitor.model import AlarmEvent
from tests.mllp_receiver import MllpReceiver

pytestmark = pytest.mark.timeout(30)

T = 1735732805.0
EVENT = AlarmEvent("BAY04", "spo2_low", "start", "physiological", "medium", T, "SpO2 LOW 86 < 90", vital="spo2",
                   value=86.0, limit=90.0, device="ox1")


def _message(n: int, text: str = "SpO2 LOW 86 < 90") -> str:
    return alarm_message(replace(EVENT, message=text), control_id=f"A{n:04d}", facility="ICU", patient_id="MRN1")


# --- framing (sans-I/O) ---------------------------------------------------------------------------------------

def test_frame_is_vt_utf8_fs_cr() -> None:
    assert frame("MSH|é\r") == b"\x0bMSH|\xc3\xa9\r\x1c\x0d"
    assert MllpDecoder().feed(frame("MSH|é\r") * 2) == ["MSH|é\r", "MSH|é\r"]


messages = st.lists(st.text(st.characters(codec="utf-8", exclude_characters="\x0b\x1c"), min_size=1, max_size=50),
                    max_size=6)
garbage = st.binary(max_size=12).map(lambda b: b.replace(START, b""))


@given(messages, st.lists(garbage, min_size=7, max_size=7), st.lists(st.integers(1, 40), max_size=30))
def test_decoder_gives_the_same_messages_whatever_the_chunk_boundaries(
        texts: list[str], junk: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(junk[i] + frame(t) for i, t in enumerate(texts)) + junk[-1]
    decoder, got, pos = MllpDecoder(), [], 0
    for size in cuts:
        got += decoder.feed(stream[pos:pos + size])
        pos += size
    got += decoder.feed(stream[pos:])
    assert got == texts
    assert decoder.errors == 0
    # bytes between frames are skipped and counted (an END's bytes outside a frame are junk too)
    assert decoder.skipped == sum(len(j) for j in junk[:len(texts)]) + len(junk[-1])
    assert decoder.pending == 0


def test_decoder_drops_cut_short_empty_and_oversized_frames_and_carries_on() -> None:
    d = MllpDecoder(max_size=100)
    assert d.feed(START + b"MSH|cut short" + frame("MSH|1")) == ["MSH|1"]  # a new VT before the end
    assert d.errors == 1
    assert d.feed(START + END + frame("MSH|2")) == ["MSH|2"]  # empty frame
    assert d.errors == 2
    assert d.feed(START + b"x" * 150) == []  # too long: dropped at once, not kept in memory
    assert d.errors == 3 and d.pending == 0
    assert d.feed(b"y" * 50 + END + frame("MSH|3")) == ["MSH|3"]  # its tail is junk until the next frame
    assert d.skipped == 52
    assert d.feed(START + b"z" * 100 + b"\x1c") == [] and d.pending == 101  # exactly max_size, END half-arrived
    assert d.feed(b"\x0d") == ["z" * 100] and d.errors == 3
    assert d.feed(START + b"\xff\xfe" + END) == ["\ufffd\ufffd"]  # not UTF-8: replaced, never raised


@given(st.binary(max_size=300), st.integers(1, 64))
def test_decoder_never_raises_and_stays_bounded(data: bytes, max_size: int) -> None:
    d = MllpDecoder(max_size=max_size)
    for i in range(0, len(data), 7):
        for message in d.feed(data[i:i + 7]):
            assert 0 < len(message.encode()) <= max_size * 3  # each undecodable byte: one U+FFFD
        assert d.pending <= max_size + 1


def test_control_id_is_msh_10() -> None:
    assert control_id(_message(7)) == "A0007"
    with pytest.raises(ValueError, match="MSH"):
        control_id("PID|1")
    with pytest.raises(ValueError, match="MSH-10"):
        control_id("MSH|^~\\&|A|B|||20250101||ORU^R40\r")


# --- the client against a real receiver ---------------------------------------------------------------------------

@pytest.fixture
async def receiver() -> AsyncIterator[MllpReceiver]:
    async with MllpReceiver() as r:
        yield r


@pytest.fixture
async def client(receiver: MllpReceiver) -> AsyncIterator[MllpClient]:
    c = MllpClient("127.0.0.1", receiver.port, timeout=1.0)
    yield c
    await c.close()


async def test_accepted_messages_return_the_ack_over_one_connection(receiver: MllpReceiver,
                                                                    client: MllpClient) -> None:
    hostile = "SpO2 LOW | ^ ~ & \\ \r MSH|evil — ü 🫀"
    for n in range(1, 4):
        ack = await client.send(_message(n, hostile))
        assert (ack.control_id, ack.code) == (f"A{n:04d}", "AA")
    assert receiver.raw == [_message(n, hostile) for n in range(1, 4)]  # byte for byte, UTF-8
    assert [str(m.segment("MSH")[10]) for m in receiver.messages] == ["A0001", "A0002", "A0003"]
    assert [len(m) for m in receiver.messages] == [10, 10, 10]  # the hostile text broke no segment
    assert receiver.connections == 1 and client.connects == 1 and client.connected


@pytest.mark.parametrize("code", ["AE", "AR"])
async def test_an_error_ack_raises_with_its_text_and_the_next_send_reconnects(
        receiver: MllpReceiver, client: MllpClient, code: str) -> None:
    await client.send(_message(1))
    receiver.answer, receiver.text = code, "unknown bay BAY04"  # type: ignore[assignment]
    with pytest.raises(MllpError) as caught:
        await client.send(_message(2))
    assert caught.value.reason == code
    assert "A0002" in str(caught.value) and "unknown bay BAY04" in str(caught.value)
    assert caught.value.ack is not None and caught.value.ack.text == "unknown bay BAY04"
    assert not client.connected  # closed after a failure
    receiver.answer = "AA"
    assert (await client.send(_message(3))).code == "AA"
    assert client.connects == 2 and receiver.connections == 2
    assert len(receiver.messages) == 3  # the rejected message did arrive


async def test_no_answer_is_a_timeout_bounded_by_the_client(receiver: MllpReceiver) -> None:
    client = MllpClient("127.0.0.1", receiver.port, timeout=0.3)
    receiver.answer = "stall"
    began = time.monotonic()
    with pytest.raises(MllpError) as caught:
        await client.send(_message(1))
    assert caught.value.reason == "timeout" and "A0001" in str(caught.value)
    assert 0.3 <= time.monotonic() - began < 2.0
    await receiver.wait_for(1)  # it was delivered, only not acknowledged
    receiver.answer = "AA"
    assert (await client.send(_message(2))).control_id == "A0002"
    await client.close()


async def test_an_ack_for_another_message_is_refused(receiver: MllpReceiver, client: MllpClient) -> None:
    receiver.ack_control_id = "SOMETHING-ELSE"
    with pytest.raises(MllpError) as caught:
        await client.send(_message(1))
    assert caught.value.reason == "bad_ack" and "SOMETHING-ELSE" in str(caught.value)


async def test_stopped_receiver_refuses_and_a_restarted_one_is_reconnected(receiver: MllpReceiver,
                                                                           client: MllpClient) -> None:
    await client.send(_message(1))
    await receiver.stop()
    with pytest.raises(MllpError) as caught:
        await client.send(_message(2))
    assert caught.value.reason == "refused" and f"127.0.0.1:{receiver.port}" in str(caught.value)
    with pytest.raises(MllpError, match="refused"):  # still down: refused again, at once
        await client.send(_message(2))
    await receiver.start()  # same port
    assert (await client.send(_message(3))).code == "AA"
    assert [str(m.segment("MSH")[10]) for m in receiver.messages] == ["A0001", "A0003"]
    assert client.connects == 2


async def test_a_connection_the_receiver_closed_while_idle_is_replaced_without_an_error(
        receiver: MllpReceiver, client: MllpClient) -> None:
    await client.send(_message(1))
    await receiver.stop()
    await receiver.start()
    await asyncio.sleep(0.05)  # the client's side sees the close
    assert (await client.send(_message(2))).code == "AA"
    assert client.connects == 2


async def test_nobody_listening_is_refused_and_a_message_without_control_id_is_not_sent() -> None:
    async with MllpReceiver() as r:
        port = r.port
    client = MllpClient("127.0.0.1", port, timeout=1.0)
    with pytest.raises(MllpError, match="refused"):
        await client.send(_message(1))
    with pytest.raises(ValueError, match="MSH-10"):
        await client.send("MSH|^~\\&|A\r")
    assert client.connects == 0


async def test_concurrent_sends_are_serialised_on_the_one_connection(receiver: MllpReceiver,
                                                                     client: MllpClient) -> None:
    acks = await asyncio.gather(*(client.send(_message(n)) for n in range(1, 21)))
    assert [a.control_id for a in acks] == [f"A{n:04d}" for n in range(1, 21)]
    assert len(receiver.messages) == 20 and receiver.connections == 1
