"""Every parser of untrusted bytes under hypothesis, bounded (`make fuzz` runs the same targets a million inputs
each): the five device codecs, the MQTT numerics parser, the MLLP decoder and `parse_ack`.

- Whatever the input (garbage, tokens of the protocol, valid frames cut, bit-flipped or spliced, any chunking),
  each parser keeps its contract, checked by fuzz/oracle.py: it never raises (parse_ack: only ValueError with a
  reason), counters only grow, readings are plausible, conditions start and end in turn, buffers stay bounded.
- Valid frames made by the simulators' encoders (written apart from the decoders) between garbage all come out,
  in order, at any chunking.
- Missing stays missing: with frames that never carry a 0, no reading is ever 0, and every reading is a value
  that some frame carried (a no-value marker never becomes a number).
- The fuzz runner itself finds, counts, writes and replays a failure (so a green `make fuzz` means something).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.notify.mllp import MllpDecoder
from drivers.capnostream import CapnostreamCodec
from drivers.codec import Codec, CodecStats
from drivers.masimo import MasimoCodec
from drivers.nellcor import NellcorCodec
from drivers.nonin import CONFIRM, NoninFormat7Codec, NoninFormat8Codec
from fuzz.mutate import make_input
from fuzz.oracle import CheckedCodec, CheckedMqtt, Violation, same_however_cut
from fuzz.run import read_failure, replay, run_shard
from fuzz.targets import TARGETS, Target
from monitor.model import Condition, DeviceCondition, DeviceEvent, Reading
from simulators import capnostream, masimo, nellcor, nonin

MATERIAL = {name: t.material(random.Random(0), 48) for name, t in TARGETS.items()}


# ---------------------------------------------------------------- any input: the contract holds

def _flip(frame_at_bit: tuple[bytes, int, int]) -> bytes:
    frame, at, bit = frame_at_bit
    if not frame:
        return frame
    buf = bytearray(frame)
    buf[at % len(buf)] ^= 1 << bit
    return bytes(buf)


def _piece(name: str) -> st.SearchStrategy[bytes]:
    m = MATERIAL[name]
    frame = st.sampled_from(list(m.pool))
    return (st.binary(max_size=120) | frame | st.sampled_from(list(m.tokens))
            | st.tuples(frame, st.integers(0, 10**6), st.integers(0, 7)).map(_flip)
            | st.tuples(frame, st.integers(0, 10**6)).map(lambda f: f[0][: f[1] % (len(f[0]) + 1)]))


def _chunks(data: bytes, cuts: Sequence[int]) -> list[bytes]:
    points = sorted(c % (len(data) + 1) for c in cuts)
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


def _inputs(name: str) -> st.SearchStrategy[list[bytes]]:
    piece = _piece(name)
    if TARGETS[name].stream:
        return st.builds(_chunks, st.lists(piece, max_size=8).map(b"".join), st.lists(st.integers(0, 5000),
                                                                                      max_size=6))
    return st.lists(st.lists(piece, min_size=1, max_size=3).map(b"".join), min_size=1, max_size=3)


INPUTS = {name: _inputs(name) for name in TARGETS}


@pytest.mark.parametrize("name", sorted(TARGETS))
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_any_input_keeps_the_parsers_contract(name: str, data: st.DataObject) -> None:
    parser = TARGETS[name].parser()
    for chunk in data.draw(INPUTS[name], label="chunks"):
        parser.feed(chunk)  # raises on a crash, or Violation when the contract is broken


@pytest.mark.parametrize("name", sorted(TARGETS))
@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**64))
def test_the_long_runs_inputs_keep_the_contract(name: str, seed: int) -> None:
    """The very generator `make fuzz` runs a million times per target, a few seeds each."""
    target = TARGETS[name]
    parser = target.parser()
    for chunk in make_input(random.Random(seed), MATERIAL[name], target.stream, target.frames):
        parser.feed(chunk)


STREAMS = sorted(name for name, t in TARGETS.items() if t.raw is not None)


@pytest.mark.parametrize("name", STREAMS)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_what_a_stream_decodes_does_not_depend_on_how_it_is_cut_into_reads(name: str, data: st.DataObject) -> None:
    raw = TARGETS[name].raw
    assert raw is not None
    same_however_cut(raw, data.draw(INPUTS[name], label="chunks"))


def test_a_too_long_line_is_rejected_however_it_is_read() -> None:
    """Found by the fuzzer: a Masimo line over 512 bytes was decoded when it came in one read and dropped when it
    came in two. Now it is rejected (once) either way, and the line after it is decoded either way."""
    when = datetime(2026, 3, 4, 5, 6, 7)
    cases: list[tuple[Callable[[], Codec], bytes, bytes]] = [
        (MasimoCodec, masimo.format_line({"spo2": 97, "pr": 70}, when), b" X=1"),
        (NellcorCodec, nellcor.format_line(97, 70, 10, when), b" AS")]
    for new, good, filler in cases:
        too_long = good.rstrip(b"\r\n") + filler * 200 + b"\r\n"
        for cut_at in ([], [520], [100, 530, 600], list(range(0, 2000, 7))):
            codec = new()
            got = _readings(_feed(codec, too_long + good, cut_at))
            assert got == [("spo2", 97.0, when.timestamp()), ("pr", 70.0, when.timestamp())], (new, cut_at)
            assert (codec.stats.frames, codec.stats.rejected) == (1, 1), (new, cut_at)


# ---------------------------------------------------------------- the oracle and the runner can fail

class _Fake:
    """A codec that returns what it is told to."""

    name = "fake"

    def __init__(self, events: list[DeviceEvent], step: int = 1) -> None:
        self.stats = CodecStats()
        self.events = events
        self.step = step
        self._buffer = b""

    def feed(self, data: bytes) -> list[DeviceEvent]:
        self.stats.frames += self.step
        self._buffer += data
        return self.events


def _checked(codec: _Fake, max_held: int = 10) -> CheckedCodec:
    c: Codec = codec
    return CheckedCodec(c, {"spo2"}, lambda: len(codec._buffer), max_held)


@pytest.mark.parametrize(("codec", "why"), [
    (_Fake([Reading("spo2", 101.0)]), "not a possible value"),
    (_Fake([Reading("spo2", float("nan"))]), "not a possible value"),
    (_Fake([Reading("pr", 60.0)]), "does not measure"),
    (_Fake([DeviceCondition(Condition.SENSOR_OFF, False)]), "end of"),
    (_Fake([DeviceCondition(Condition.SENSOR_OFF, True)] * 2), "start of"),
    (_Fake([], step=-1), "went down"),
])
def test_the_oracle_catches_a_broken_contract(codec: _Fake, why: str) -> None:
    with pytest.raises(Violation, match=why):
        _checked(codec).feed(b"x")


def test_the_oracle_catches_a_buffer_that_grows_without_end() -> None:
    checked = _checked(_Fake([]), max_held=10)
    checked.feed(b"0123456789")
    with pytest.raises(Violation, match="bound of 10"):
        checked.feed(b"!")


class _Explodes:
    """Raises on any chunk holding 0x85: a parser with a bug the fuzzer must find."""

    def feed(self, data: bytes) -> None:
        if b"\x85" in data:
            raise ZeroDivisionError("planted bug")


def test_the_runner_counts_writes_and_replays_a_crash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = TARGETS["capnostream"]
    planted = Target("planted", True, _Explodes, real.frame, real.tokens)
    monkeypatch.setitem(TARGETS, "planted", planted)
    result = run_shard("planted", 7, 300, tmp_path, keep=2)
    assert result.inputs == 300 and result.crashes > 50 and result.violations == 0
    assert len(result.files) == 2 == len(list(tmp_path.iterdir()))
    name, chunks = read_failure(Path(result.files[0]))
    assert name == "planted" and any(b"\x85" in c for c in chunks)
    assert "ZeroDivisionError('planted bug')" in Path(result.files[0]).read_text()
    with pytest.raises(ZeroDivisionError, match="planted bug"):
        replay(Path(result.files[0]))


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_a_short_run_of_every_target_finds_nothing(name: str, tmp_path: Path) -> None:
    result = run_shard(name, 1, 300, tmp_path)
    assert (result.inputs, result.crashes, result.violations, result.files) == (300, 0, 0, [])


def test_every_mqtt_message_is_decoded_or_rejected_once() -> None:
    mqtt = CheckedMqtt()
    for payload in (b"online", b"{}", b"\xff", b'{"ts":1,"seq":1,"values":{"spo2":97}}', b"offline"):
        mqtt.feed(payload)
    # numerics: 1 decoded, 4 rejected; presence: online and offline are edges (no frame), the other 3 rejected
    assert (mqtt.codec.stats.frames, mqtt.codec.stats.rejected) == (1, 4 + 3)


# ---------------------------------------------------------------- valid frames in garbage: all out, in order

times = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31, 23, 59, 59)).map(
    lambda t: t.replace(microsecond=0))
cuts = st.lists(st.integers(0, 20_000), max_size=8)
Expected = list[tuple[str, float, float | None]]


def _readings(events: Sequence[DeviceEvent]) -> Expected:
    return [(e.vital, e.value, e.device_time) for e in events if isinstance(e, Reading)]


def _feed(codec: Codec, data: bytes, cut_at: Sequence[int]) -> list[DeviceEvent]:
    return [e for chunk in _chunks(data, cut_at) for e in codec.feed(chunk)]


NELLCOR_SLOTS: dict[int, list[str]] = {}
for _code, _slot in nellcor.STATUS_SLOT.items():
    NELLCOR_SLOTS.setdefault(_slot, []).append(_code)
NELLCOR_ZERO_IS_MISSING = {"PS", "LP", "LM", "SD", "SO"}  # docs/devices.md: their printed 0 is no value
nellcor_status = st.tuples(*(st.none() | st.sampled_from(codes) for codes in NELLCOR_SLOTS.values())).map(
    lambda codes: [c for c in codes if c is not None])


@dataclass(frozen=True)
class NellcorLine:
    spo2: int | None
    pr: int | None
    pa: int | None
    when: datetime
    status: list[str]
    flags: frozenset[str]
    header: bool  # a header block before the line

    def encode(self) -> bytes:
        head = nellcor.format_header() if self.header else b""
        flags = [f for f in self.flags if getattr(self, f) is not None]  # the monitor stars values, not dashes
        return head + nellcor.format_line(self.spo2, self.pr, self.pa, self.when, flags=flags, status=self.status)

    def expected(self) -> Expected:
        return [(vital, float(v), self.when.timestamp()) for vital, v in (("spo2", self.spo2), ("pr", self.pr))
                if v is not None and not (v == 0 and NELLCOR_ZERO_IS_MISSING & set(self.status))]


def nellcor_lines(lo: int = 0) -> st.SearchStrategy[NellcorLine]:
    return st.builds(NellcorLine, st.none() | st.integers(lo, 100), st.none() | st.integers(lo, 350),
                     st.none() | st.integers(0, 255), times, nellcor_status,
                     st.frozensets(st.sampled_from(["spo2", "pr"])), st.booleans())


# garbage lines that cannot be data lines (no digits: no timestamp), each ended, so they cannot merge into the next
text_garbage = st.binary(max_size=80).map(lambda b: bytes(c for c in b if not 0x30 <= c <= 0x39) + b"\r\n")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(text_garbage, nellcor_lines()), min_size=1, max_size=6), cuts)
def test_nellcor_lines_between_garbage_all_come_out_in_order(pieces: list[tuple[bytes, NellcorLine]],
                                                             cut_at: list[int]) -> None:
    codec = NellcorCodec()
    got = _readings(_feed(codec, b"".join(g + line.encode() for g, line in pieces), cut_at))
    assert got == [r for _, line in pieces for r in line.expected()]
    assert codec.stats.frames == len(pieces)


nonin7_specs = st.tuples(st.none() | st.integers(0, 100), st.none() | st.integers(0, 510),
                         st.integers(0, 0x7E).map(lambda s: s & 0x7E), st.integers(0, 0x7F))


def _nonin7(spec: tuple[int | None, int | None, int, int]) -> bytes:
    spo2, hr, status, stat2 = spec
    return nonin.format7_packet(spo2, hr, [(i * 2711) & 0xFFFF for i in range(25)], status=status, stat2=stat2)


def _nonin_expected(spo2: int | None, hr: int | None) -> Expected:
    out: Expected = [] if spo2 is None else [("spo2", float(spo2), None)]
    return out + ([("pr", float(hr), None)] if hr is not None and hr <= 350 else [])  # above 350: impossible


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.binary(max_size=60), nonin7_specs), min_size=1, max_size=5), cuts)
def test_nonin7_packets_between_garbage_all_come_out_in_order(
        pieces: list[tuple[bytes, tuple[int | None, int | None, int, int]]], cut_at: list[int]) -> None:
    codec = NoninFormat7Codec()
    got = _readings(_feed(codec, b"".join(g + _nonin7(spec) for g, spec in pieces), cut_at))
    assert got == [r for _, (spo2, hr, _, _) in pieces for r in _nonin_expected(spo2, hr)]
    assert codec.stats.frames == len(pieces)


nonin8_specs = st.tuples(st.none() | st.integers(0, 100), st.none() | st.integers(0, 510),
                         st.integers(0, 0x7C).map(lambda s: s & 0x7C), st.integers(0, 0x7F))
# garbage of bytes with bit 7 clear: it can hold no packet start, so every packet emitted is one the device sent
low_garbage = st.binary(min_size=1, max_size=30).map(lambda b: bytes(c & 0x7F for c in b))


def _nonin8(spec: tuple[int | None, int | None, int, int]) -> bytes:
    spo2, hr, s1, s2 = spec
    return nonin.format8_packet(spo2, hr, status1=s1, status2=s2)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(low_garbage, st.lists(nonin8_specs, min_size=CONFIRM + 1, max_size=8)), min_size=1,
                max_size=4), low_garbage, cuts)
def test_nonin8_runs_between_garbage_come_out_in_order_but_the_last_unframed_packet(
        pieces: list[tuple[bytes, list[tuple[int | None, int | None, int, int]]]], tail: bytes,
        cut_at: list[int]) -> None:
    """Format 8 has no checksum: a packet counts once the next one starts right after it (docs/devices.md), so the
    last packet of each run, followed by garbage, is dropped; every other packet comes out, in order."""
    codec = NoninFormat8Codec()
    stream = b"".join(g + b"".join(map(_nonin8, run)) for g, run in pieces) + tail
    got = _readings(_feed(codec, stream, cut_at))
    assert got == [r for _, run in pieces for spo2, hr, _, _ in run[:-1] for r in _nonin_expected(spo2, hr)]
    assert codec.stats.frames == sum(len(run) - 1 for _, run in pieces)


@dataclass(frozen=True)
class CapnoNumerics:
    etco2: int | None
    rr: int | None
    spo2: int | None
    pr: int | None
    device_time: int
    spo2_alarms: int
    extended: int
    waves: int  # CO2 wave messages after it

    def encode(self) -> bytes:
        values = {"etco2": self.etco2, "rr": self.rr, "spo2": self.spo2, "pr": self.pr, "fico2": 3.0}
        frame = capnostream.format_numerics({k: None if v is None else float(v) for k, v in values.items()},
                                            self.device_time, spo2_alarms=self.spo2_alarms,
                                            extended_status=self.extended)
        return frame + b"".join(capnostream.format_wave(i, 12.5, i * 37 & 0xFF) for i in range(self.waves))

    def expected(self) -> Expected:
        order = (("etco2", self.etco2), ("rr", self.rr), ("spo2", self.spo2), ("pr", self.pr))  # payload order
        return [(vital, float(v), float(self.device_time)) for vital, v in order if v is not None]


def capno_numerics(lo: int = 0) -> st.SearchStrategy[CapnoNumerics]:
    return st.builds(CapnoNumerics, st.none() | st.integers(lo, 150), st.none() | st.integers(lo, 150),
                     st.none() | st.integers(lo, 100), st.none() | st.integers(lo, 254), st.integers(0, 2**32 - 1),
                     st.integers(0, 255), st.integers(0, 255), st.integers(0, 3))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.binary(max_size=60).map(lambda b: b.replace(b"\x85", b"")), capno_numerics()),
                min_size=1, max_size=5), cuts)
def test_capnostream_frames_between_garbage_all_come_out_in_order(pieces: list[tuple[bytes, CapnoNumerics]],
                                                                  cut_at: list[int]) -> None:
    """Garbage without a header byte (0x85) cannot start a frame, so it cannot swallow the one after it."""
    codec = CapnostreamCodec()
    got = _readings(_feed(codec, b"".join(g + n.encode() for g, n in pieces), cut_at))
    assert got == [r for _, n in pieces for r in n.expected()]
    assert codec.stats.frames == sum(1 + n.waves for _, n in pieces)


hl7_text = st.text(st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=80).filter(
    lambda t: "\x0b" not in t and "\x1c\r" not in t)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.binary(max_size=40).map(lambda b: b.replace(b"\x0b", b"")), hl7_text), min_size=1,
                max_size=6), cuts)
def test_mllp_frames_between_garbage_all_come_out_in_order(pieces: list[tuple[bytes, str]], cut_at: list[int]
                                                           ) -> None:
    decoder = MllpDecoder()
    stream = b"".join(g + b"\x0b" + text.encode("utf-8") + b"\x1c\r" for g, text in pieces)
    got = [m for chunk in _chunks(stream, cut_at) for m in decoder.feed(chunk)]
    assert got == [text for _, text in pieces]
    assert (decoder.skipped, decoder.errors, decoder.pending) == (sum(len(g) for g, _ in pieces), 0, 0)


# ---------------------------------------------------------------- missing stays missing: no 0 that was not sent

def _masimo(values: tuple[int | None, int | None, int | None, datetime]) -> tuple[bytes, Expected]:
    spo2, pr, pi_hundredths, when = values
    pi = None if pi_hundredths is None else pi_hundredths / 100
    line = masimo.format_line({"spo2": spo2, "pr": pr, "pi": pi}, when)
    sent = [(k, float(v), when.timestamp()) for k, v in (("spo2", spo2), ("pr", pr), ("pi", pi)) if v is not None]
    return line, sent


def _nellcor(line: NellcorLine) -> tuple[bytes, Expected]:
    return line.encode(), line.expected()


def _nonin7_sent(spec: tuple[int | None, int | None, int, int]) -> tuple[bytes, Expected]:
    return _nonin7(spec), _nonin_expected(spec[0], spec[1])


def _nonin8_sent(spec: tuple[int | None, int | None, int, int]) -> tuple[bytes, Expected]:
    return _nonin8(spec), _nonin_expected(spec[0], spec[1])


def _capno(n: CapnoNumerics) -> tuple[bytes, Expected]:
    return n.encode(), n.expected()


nonzero = st.none() | st.integers(1, 100)
MISSING_CASES: dict[str, tuple[Callable[[], Codec], st.SearchStrategy[tuple[bytes, Expected]],
                               st.SearchStrategy[bytes]]] = {
    "masimo": (MasimoCodec, st.tuples(nonzero, st.none() | st.integers(1, 350), st.none() | st.integers(1, 2000),
                                      times).map(_masimo), st.binary(max_size=60)),
    "nellcor": (NellcorCodec, nellcor_lines(lo=1).map(_nellcor), st.binary(max_size=60)),
    "nonin7": (NoninFormat7Codec, st.tuples(nonzero, st.none() | st.integers(1, 510), st.just(0),
                                            st.just(0)).map(_nonin7_sent), st.binary(max_size=60)),
    "nonin8": (NoninFormat8Codec, st.tuples(nonzero, st.none() | st.integers(1, 510), st.just(0),
                                            st.just(0)).map(_nonin8_sent), low_garbage),
    "capnostream": (CapnostreamCodec, capno_numerics(lo=1).map(_capno), st.binary(max_size=60)),
}


@pytest.mark.parametrize("name", sorted(MISSING_CASES))
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_no_reading_is_a_value_no_frame_sent(name: str, data: st.DataObject) -> None:
    """Frames whose values are missing or at least 1, with any garbage (Nonin 8: none that can start a packet,
    since without a checksum such garbage may decode, as documented) between them, cut anywhere: every reading is
    a value some frame sent, so never a 0 and never a number for a no-value marker."""
    make, frames, garbage = MISSING_CASES[name]
    pieces = data.draw(st.lists(st.tuples(garbage, frames), min_size=1, max_size=10), label="pieces")
    codec = make()
    got = _readings(_feed(codec, b"".join(g + frame for g, (frame, _) in pieces), data.draw(cuts, label="cuts")))
    sent = {r for _, (_, expected) in pieces for r in expected}
    assert all(value != 0 for _, value, _ in got)
    assert set(got) <= sent
