"""The fuzz targets: every parser of untrusted bytes, each with a checked parser (fuzz/oracle.py), a maker of valid
frames (fuzz/seeds.py) and its protocol tokens.

The bounds on what a codec may hold between calls follow from its framing: a text line is dropped past MAX_LINE
(512) bytes; a Nonin format 7 codec holds less than one packet; format 8 at most CONFIRM packets; an unfinished
Capnostream frame is at most its header and 258 unescaped bytes (the length byte, up to 255 bytes of code and
payload, the checksum and the CO2 wave's padding 0), each escaped to at most 2 bytes.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from alerts.notify.mllp import MllpDecoder
from drivers import capnostream, masimo, nellcor, nonin
from drivers.capnostream import CapnostreamCodec
from drivers.masimo import MasimoCodec
from drivers.nellcor import NellcorCodec
from drivers.nonin import NoninFormat7Codec, NoninFormat8Codec
from fuzz import seeds
from fuzz.mutate import Material
from fuzz.oracle import Checked, CheckedAck, CheckedCodec, CheckedMllp, CheckedMqtt

CAPNOSTREAM_MAX_HELD = 1 + 2 * (1 + 255 + 1 + 1)


@dataclass(frozen=True, slots=True)
class Target:
    """One parser under test."""

    name: str
    stream: bool  # chunks are reads of one byte stream (True) or separate messages (False)
    parser: Callable[[], Checked]  # a fresh, checked parser
    frame: Callable[[random.Random], bytes]  # one valid frame or message
    tokens: tuple[bytes, ...]
    frames: tuple[int, int] = (1, 3)  # how many valid frames one stream input joins before mutation
    raw: Callable[[], Callable[[bytes], list[Any]]] | None = None  # a stream parser's bare `feed`, unchecked

    def material(self, rng: random.Random, size: int = 256) -> Material:
        """`size` valid frames drawn with `rng`, and the tokens."""
        return Material([self.frame(rng) for _ in range(size)], self.tokens)


def _masimo() -> Checked:
    c = MasimoCodec()
    return CheckedCodec(c, {"spo2", "pr", "pi"}, lambda: len(c._buffer), masimo.MAX_LINE)


def _nellcor() -> Checked:
    c = NellcorCodec()
    return CheckedCodec(c, {"spo2", "pr"}, lambda: len(c._buffer), nellcor.MAX_LINE)


def _nonin7() -> Checked:
    c = NoninFormat7Codec()
    return CheckedCodec(c, {"spo2", "pr"}, lambda: len(c._buffer), nonin.PACKET - 1)


def _nonin8() -> Checked:
    c = NoninFormat8Codec()
    return CheckedCodec(c, {"spo2", "pr"}, lambda: len(c._buffer), nonin.PACKET8 * nonin.CONFIRM)


def _capnostream() -> Checked:
    c = CapnostreamCodec()
    vitals = {vital for vital, _ in capnostream._VALUES}
    return CheckedCodec(c, vitals, lambda: len(c._buffer), CAPNOSTREAM_MAX_HELD)


TARGETS: dict[str, Target] = {t.name: t for t in (
    Target("masimo", True, _masimo, seeds.masimo_frame, seeds.MASIMO_TOKENS, raw=lambda: MasimoCodec().feed),
    Target("nellcor", True, _nellcor, seeds.nellcor_frame, seeds.NELLCOR_TOKENS, raw=lambda: NellcorCodec().feed),
    Target("nonin7", True, _nonin7, seeds.nonin7_frame, seeds.NONIN7_TOKENS, raw=lambda: NoninFormat7Codec().feed),
    Target("nonin8", True, _nonin8, seeds.nonin8_frame, seeds.NONIN8_TOKENS, frames=(1, 10),
           raw=lambda: NoninFormat8Codec().feed),
    Target("capnostream", True, _capnostream, seeds.capnostream_frame, seeds.CAPNOSTREAM_TOKENS,
           raw=lambda: CapnostreamCodec().feed),
    Target("mqtt", False, CheckedMqtt, seeds.mqtt_frame, seeds.MQTT_TOKENS),
    Target("mllp", True, CheckedMllp, seeds.mllp_frame, seeds.MLLP_TOKENS, raw=lambda: MllpDecoder(300).feed),
    Target("hl7_ack", False, CheckedAck, seeds.hl7ack_frame, seeds.HL7_TOKENS),
)}
