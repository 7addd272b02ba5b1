"""The fuzzer's inputs: a fast, seeded mutation loop over valid frames (no coverage feedback; a million inputs a
parser in minutes matters more here than steering).

One input is a list of chunks. For a stream parser (a serial line, a TCP stream) it is one byte string cut at random
places, fed one chunk per call; for a message parser (MQTT, an ACK) each chunk is one message. A byte string is, by
chance: random bytes; a soup of protocol tokens and random bytes; valid frames joined as they are; or valid frames
joined and then mutated 1 to 8 times (bit flips, interesting bytes, insertions of random bytes or tokens, deletions,
duplications, truncations, splices of other frames or of parts of them, small arithmetic on a byte).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

INTERESTING = (0x00, 0x01, 0x0A, 0x0B, 0x0D, 0x1C, 0x20, 0x2A, 0x2D, 0x30, 0x39, 0x7F, 0x80, 0x81, 0x85, 0xC0, 0xFE,
               0xFF)
MAX_RANDOM = 600  # bytes of a random input at most: past the decoders' 512-byte limits


class Material:
    """What a mutation may draw on: the target's valid frames and its protocol tokens."""

    __slots__ = ("pool", "tokens")

    def __init__(self, pool: Sequence[bytes], tokens: Sequence[bytes]) -> None:
        if not pool or not tokens:
            raise ValueError("a target needs at least one frame and one token")
        self.pool = pool
        self.tokens = tokens


Mutation = Callable[[random.Random, bytearray, Material], None]


def _flip_bit(rng: random.Random, buf: bytearray, _: Material) -> None:
    if buf:
        buf[rng.randrange(len(buf))] ^= 1 << rng.randrange(8)


def _set_byte(rng: random.Random, buf: bytearray, _: Material) -> None:
    if buf:
        buf[rng.randrange(len(buf))] = rng.choice(INTERESTING) if rng.random() < 0.6 else rng.randrange(256)


def _arith(rng: random.Random, buf: bytearray, _: Material) -> None:
    if buf:
        i = rng.randrange(len(buf))
        buf[i] = (buf[i] + rng.choice((-3, -2, -1, 1, 2, 3))) & 0xFF


def _insert_random(rng: random.Random, buf: bytearray, _: Material) -> None:
    at = rng.randint(0, len(buf))
    buf[at:at] = rng.randbytes(rng.randint(1, 16))


def _insert_token(rng: random.Random, buf: bytearray, m: Material) -> None:
    at = rng.randint(0, len(buf))
    buf[at:at] = rng.choice(m.tokens)


def _delete(rng: random.Random, buf: bytearray, _: Material) -> None:
    if buf:
        at = rng.randrange(len(buf))
        del buf[at : at + rng.randint(1, 32)]


def _duplicate(rng: random.Random, buf: bytearray, _: Material) -> None:
    if buf:
        at = rng.randrange(len(buf))
        piece = buf[at : at + rng.randint(1, 64)]
        to = rng.randint(0, len(buf))
        buf[to:to] = piece


def _truncate(rng: random.Random, buf: bytearray, _: Material) -> None:
    if buf:
        at = rng.randint(0, len(buf))
        if rng.random() < 0.5:
            del buf[at:]
        else:
            del buf[:at]


def _splice(rng: random.Random, buf: bytearray, m: Material) -> None:
    """Another valid frame, or a piece of one, inserted anywhere (a frame cut into another)."""
    other = rng.choice(m.pool)
    if rng.random() < 0.5 and other:
        a = rng.randrange(len(other))
        other = other[a : a + rng.randint(1, len(other))]
    at = rng.randint(0, len(buf))
    buf[at:at] = other


def _overwrite(rng: random.Random, buf: bytearray, m: Material) -> None:
    """A range overwritten by the same range of another valid frame (crossing two frames' fields)."""
    other = rng.choice(m.pool)
    if buf and other:
        at = rng.randrange(min(len(buf), len(other)))
        n = rng.randint(1, 32)
        buf[at : at + n] = other[at : at + n]


MUTATIONS: tuple[Mutation, ...] = (_flip_bit, _flip_bit, _set_byte, _set_byte, _arith, _insert_random,
                                   _insert_token, _insert_token, _delete, _duplicate, _truncate, _splice, _splice,
                                   _overwrite)


def make_bytes(rng: random.Random, m: Material, frames: int) -> bytes:
    """One byte string: random, a token soup, `frames` valid frames, or those frames mutated."""
    r = rng.random()
    if r < 0.08:
        return rng.randbytes(rng.randint(0, MAX_RANDOM))
    if r < 0.18:
        return b"".join(rng.choice(m.tokens) if rng.random() < 0.7 else rng.randbytes(rng.randint(1, 4))
                        for _ in range(rng.randint(1, 40)))
    joined = b"".join(rng.choice(m.pool) for _ in range(frames))
    if r < 0.25:
        return joined
    buf = bytearray(joined)
    for _ in range(rng.choice((1, 1, 1, 2, 2, 3, 4, 8))):
        rng.choice(MUTATIONS)(rng, buf, m)
    return bytes(buf)


def cut(rng: random.Random, data: bytes) -> list[bytes]:
    """`data` as the reads of a stream: whole, at 1 to 6 random places (empty reads included), or byte by byte."""
    r = rng.random()
    if r < 0.3:
        return [data]
    if r < 0.35 and len(data) <= 256:
        return [data[i : i + 1] for i in range(len(data))]
    cuts = sorted(rng.randint(0, len(data)) for _ in range(rng.randint(1, 6)))
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]


def make_input(rng: random.Random, m: Material, stream: bool, frames: tuple[int, int]) -> list[bytes]:
    """One input: a stream cut into reads (`stream`), or 1 to 3 messages."""
    if stream:
        return cut(rng, make_bytes(rng, m, rng.randint(*frames)))
    return [make_bytes(rng, m, 1) for _ in range(rng.randint(1, 3))]
