"""The long fuzz run (`make fuzz`, `python -m fuzz`): every target fed `--inputs` inputs (a million by default) over
worker processes, one report line per target, exit 1 on any failure.

Work is cut into shards of `--shard` inputs; each shard has its own seed (derived from `--seed`, the target and the
shard number), so a run is repeatable and a shard can be rerun alone. A failure (the parser raised: a crash; or it
returned but broke its contract, fuzz/oracle.py: a violation) is written to `--out` (fuzz/crashes/ by default,
git-ignored) as the target's name, the error, its traceback and the input's chunks in hex; `python -m fuzz --replay
FILE` feeds that input again to a fresh parser and lets the error surface.

Logging: the codecs log each rejected frame. For the first tenth of each shard's inputs (and in `--replay`) every
record is formatted, so that a log call that cannot format its own message fails as a crash of the parser, and
dropped, so that rejections do not flood the terminal; for the rest, logging is off: making the records took a
quarter of the run's time.
"""

from __future__ import annotations

import argparse
import logging
import math
import multiprocessing
import os
import random
import sys
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from fuzz.mutate import Material, make_input
from fuzz.oracle import Violation, same_however_cut
from fuzz.targets import TARGETS, Target

DEFAULT_INPUTS = 1_000_000
DEFAULT_SHARD = 50_000
KEEP = 5  # failure files written per shard at most
LOGGED = 0.1  # part of each shard's inputs run with logging on
CUT_CHECK = 4  # one stream input in CUT_CHECK is also read at once, to compare (fuzz/oracle.py `same_however_cut`)
DEFAULT_OUT = Path("fuzz/crashes")


class _FormatAndDrop(logging.Handler):
    """Formats every record, as a real handler would, then drops it; an error in formatting propagates."""

    def emit(self, record: logging.LogRecord) -> None:
        record.getMessage()


def quiet_logging() -> None:
    """Route every log record of the process to `_FormatAndDrop`."""
    root = logging.getLogger()
    root.handlers = [_FormatAndDrop()]
    root.setLevel(logging.INFO)


@dataclass(slots=True)
class ShardResult:
    """What one shard found."""

    target: str
    inputs: int = 0
    crashes: int = 0  # the parser raised
    violations: int = 0  # the parser returned but broke its contract
    cpu: float = 0.0  # CPU seconds of the worker
    files: list[str] = field(default_factory=list)


def run_shard(name: str, seed: int, count: int, out: Path, keep: int = KEEP, logged: float = LOGGED) -> ShardResult:
    """Feed `count` inputs to fresh parsers of target `name`; write up to `keep` failures to `out`. Logging is on
    for the first `logged` part of the inputs only (see the module's docstring)."""
    target = TARGETS[name]
    started = time.process_time()
    rng = random.Random(f"{name}/{seed}")
    material = target.material(random.Random(f"{name}/pool/{seed}"))
    result = ShardResult(name)
    was_disabled = logging.root.manager.disable
    try:
        _feed_all(target, rng, material, count, round(count * logged), out, keep, seed, result)
    finally:
        logging.disable(was_disabled)
    result.inputs = count
    result.cpu = time.process_time() - started
    return result


def _feed_all(target: Target, rng: random.Random, material: Material, count: int, logged: int, out: Path,
              keep: int, seed: int, result: ShardResult) -> None:
    name = target.name
    for index in range(count):
        if index == logged:
            logging.disable(logging.CRITICAL)
        chunks = make_input(rng, material, target.stream, target.frames)
        try:
            parser = target.parser()
            for chunk in chunks:
                parser.feed(chunk)
            if target.raw is not None and len(chunks) > 1 and index % CUT_CHECK == 0:
                same_however_cut(target.raw, chunks)
            continue
        except Violation as exc:
            result.violations += 1
            failure: Exception = exc
        except Exception as exc:
            result.crashes += 1
            failure = exc
        if len(result.files) < keep:
            result.files.append(str(write_failure(out, name, f"{seed}-{index}", chunks, failure)))


def write_failure(out: Path, name: str, tag: str, chunks: Sequence[bytes], exc: BaseException) -> Path:
    """The failing input and its error, in a file `--replay` reads."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}-{tag}.txt"
    kind = "violation" if isinstance(exc, Violation) else "crash"
    trace = "".join(traceback.format_exception(exc)).rstrip("\n").splitlines()
    lines = [f"# bedside fuzz {kind}: replay with `python -m fuzz --replay {path}`", f"target: {name}",
             f"error: {exc!r}"[:2000], *(f"# {t}" for t in trace), *(f"chunk: {c.hex()}" for c in chunks)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def read_failure(path: Path) -> tuple[str, list[bytes]]:
    """(target, chunks) of a failure file."""
    name, chunks = "", []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("target: "):
            name = line.removeprefix("target: ").strip()
        elif line.startswith("chunk:"):
            chunks.append(bytes.fromhex(line.removeprefix("chunk:").strip()))
    if name not in TARGETS:
        raise ValueError(f"{path}: no known target (one of {', '.join(TARGETS)})")
    return name, chunks


def replay(path: Path) -> int:
    """Feed a failure file's input to a fresh parser: the error surfaces with its traceback (exit 1)."""
    name, chunks = read_failure(path)
    target = TARGETS[name]
    parser = target.parser()
    for chunk in chunks:
        parser.feed(chunk)
    if target.raw is not None and len(chunks) > 1:
        same_however_cut(target.raw, chunks)
    print(f"{name}: {len(chunks)} chunk(s) fed without failure")
    return 0


def _task(args: tuple[str, int, int, Path]) -> ShardResult:
    return run_shard(*args)


def run_all(names: Sequence[str], inputs: int, *, jobs: int, seed: int, shard: int, out: Path
            ) -> dict[str, ShardResult]:
    """Run every target in `names`; print a line as each one finishes; return the totals per target."""
    tasks: list[tuple[str, int, int, Path]] = []
    shards = math.ceil(inputs / shard)
    for k in range(shards):  # interleaved, so that the workers are busy with every target until the end
        for name in names:
            tasks.append((name, seed * 1_000_003 + k, min(shard, inputs - k * shard), out))
    totals = {name: ShardResult(name) for name in names}
    left = dict.fromkeys(names, shards)
    print(f"{'target':<12}{'inputs':>12}{'crashes':>9}{'violations':>12}{'CPU s':>9}{'inputs/s':>10}", flush=True)

    def take(r: ShardResult) -> None:
        t = totals[r.target]
        t.inputs += r.inputs
        t.crashes += r.crashes
        t.violations += r.violations
        t.cpu += r.cpu
        t.files += r.files
        left[r.target] -= 1
        if not left[r.target]:
            rate = t.inputs / t.cpu if t.cpu else 0.0
            print(f"{t.target:<12}{t.inputs:>12,}{t.crashes:>9}{t.violations:>12}{t.cpu:>9.1f}{rate:>10,.0f}",
                  flush=True)

    if jobs <= 1:
        quiet_logging()
        for task in tasks:
            take(_task(task))
    else:
        with multiprocessing.Pool(jobs, initializer=quiet_logging) as pool:
            for r in pool.imap_unordered(_task, tasks):
                take(r)
    return totals


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fuzz", description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--inputs", type=int, default=DEFAULT_INPUTS, help="inputs per target (default 1,000,000)")
    parser.add_argument("--targets", default=",".join(TARGETS), help=f"comma-separated, of: {', '.join(TARGETS)}")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes (default: cores)")
    parser.add_argument("--seed", type=int, default=0, help="run seed (default 0: the same inputs every run)")
    parser.add_argument("--shard", type=int, default=DEFAULT_SHARD, help="inputs per unit of work")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where failing inputs are written")
    parser.add_argument("--replay", type=Path, help="feed one failure file's input again and show its error")
    args = parser.parse_args(argv)
    if args.replay is not None:
        quiet_logging()
        return replay(args.replay)
    names = [n.strip() for n in args.targets.split(",") if n.strip()]
    unknown = [n for n in names if n not in TARGETS]
    if unknown or args.inputs < 1 or args.shard < 1:
        parser.error(f"unknown target(s) {unknown}" if unknown else "--inputs and --shard must be >= 1")
    started = time.monotonic()
    totals = run_all(names, args.inputs, jobs=args.jobs, seed=args.seed, shard=args.shard, out=args.out)
    wall = time.monotonic() - started
    inputs = sum(t.inputs for t in totals.values())
    crashes = sum(t.crashes for t in totals.values())
    violations = sum(t.violations for t in totals.values())
    print(f"{len(totals)} targets: {inputs:,} inputs in {wall:.0f} s wall ({args.jobs} process(es)), "
          f"{crashes} crash(es), {violations} violation(s)")
    files = [f for t in totals.values() for f in t.files]
    if files:
        print("failing inputs (replay with `python -m fuzz --replay FILE`):", *files, sep="\n  ", file=sys.stderr)
    return 1 if crashes or violations else 0
