"""A sampling profiler for a Python program's event loop thread (bedside's main thread), light enough to leave the
program's timing nearly as it is (cProfile doubles the cost of every call, which moves the point where a loaded
process falls behind).

    python bench/sampler.py OUT.json -m monitor.cli run --config bedside.toml

Runs the module as `python -m` would, with a CPU-time interval timer (setitimer ITIMER_PROF, every `INTERVAL` s of
the process's CPU time): at each tick the main thread, between two bytecodes, notes its Python stack. So the samples
are spread over CPU time, not wall time; a C call shows as the Python function that made it. A sample whose innermost
frame is the selector's `select` is the loop waiting while another thread (the recorder's SQLite writes, the outbox)
used the CPU. Each sample counts for every distinct function on its stack (inclusive) and for the innermost one
(exclusive). Sampling runs from SIGUSR1 (sent when a measuring window begins; what was counted is dropped) to SIGUSR2
(when it ends), or from the start to the end when no signal comes. When the program ends (also by SIGTERM, through
its own clean stop) OUT.json gets {"samples", "idle", "interval", "inclusive": {function: n}, "exclusive":
{function: n}}; bench/capacity.py prints it with `report`.
"""

from __future__ import annotations

import json
import re
import runpy
import signal
import sys
import time
from collections import Counter
from pathlib import Path
from types import FrameType

INTERVAL = 0.005  # s of CPU time between samples
# shown relative to the project, site-packages or the standard library
_PROJECT = re.escape(str(Path(__file__).resolve().parents[1]) + "/")
_ROOT = re.compile(f"^(.*/site-packages/|.*/lib/python3\\.\\d+/|{_PROJECT})")


def _name(frame: FrameType) -> str:
    code = frame.f_code
    path = _ROOT.sub("", code.co_filename, count=1)
    return f"{path}:{code.co_name}"


class Sampler:
    def __init__(self) -> None:
        self.samples = 0
        self.idle = 0
        self.inclusive: Counter[str] = Counter()
        self.exclusive: Counter[str] = Counter()

    def start(self) -> None:
        """Drop what was counted so far and sample from now."""
        self.samples = self.idle = 0
        self.inclusive.clear()
        self.exclusive.clear()
        signal.signal(signal.SIGPROF, self._tick)
        signal.setitimer(signal.ITIMER_PROF, INTERVAL, INTERVAL)

    def stop(self) -> None:
        signal.setitimer(signal.ITIMER_PROF, 0, 0)

    def _tick(self, signum: int, frame: FrameType | None) -> None:
        if frame is None:
            return
        self.samples += 1
        leaf = _name(frame)
        if leaf.endswith("selectors.py:select"):
            self.idle += 1
            return
        self.exclusive[leaf] += 1
        seen: set[str] = set()
        f: FrameType | None = frame
        while f is not None:
            seen.add(_name(f))
            f = f.f_back
        self.inclusive.update(seen)

    def write(self, out: Path) -> None:
        out.write_text(json.dumps({"samples": self.samples, "idle": self.idle, "interval": INTERVAL,
                                   "inclusive": dict(self.inclusive.most_common(400)),
                                   "exclusive": dict(self.exclusive.most_common(400))}))


# frames every busy sample passes through (start-up, the event loop, the ASGI stack): left out of the inclusive list
_FRAMEWORK = ("bench/", "<frozen", "monitor/cli.py", "asyncio/", "starlette/", "fastapi/", "uvicorn/middleware",
              "uvicorn/protocols/websockets/websockets_sansio_impl.py:run_asgi", "contextlib.py", "runpy.py")


def report(path: Path, top: int = 25, match: str = "") -> list[str]:
    """Lines describing a sampler's output: busy share, then the functions with the most busy samples."""
    data = json.loads(path.read_text())
    busy = data["samples"] - data["idle"]
    lines = [f"{data['samples']:,} samples, one every {data['interval'] * 1000:.0f} ms of bedside's CPU time; "
             f"{data['idle'] / max(1, data['samples']):.0%} with the event loop waiting (other threads' time); of the "
             f"rest (the event loop's time):"]
    for kind in ("inclusive", "exclusive"):
        what = "the function and what it called; the project's own and its libraries'" if kind == "inclusive" \
            else "the innermost Python function (C code shows as its caller)"
        lines.append(f"  {kind} ({what}):")
        rows = [(n, f) for f, n in data[kind].items()
                if kind == "exclusive" or (match in f and not f.startswith(_FRAMEWORK))][:top]
        lines += [f"    {n / max(1, busy):6.1%}  {f}" for n, f in rows]
    return lines


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "-m":
        print(__doc__)
        return 2
    out, module = Path(argv[0]), argv[2]
    sys.argv = [module, *argv[3:]]
    sampler = Sampler()
    signal.signal(signal.SIGUSR1, lambda *_: sampler.start())
    signal.signal(signal.SIGUSR2, lambda *_: sampler.stop())
    sampler.start()
    began = time.monotonic()
    code = 0
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 0
    finally:
        sampler.stop()
        sampler.write(out)
        print(f"sampler: {sampler.samples} samples in {time.monotonic() - began:.0f} s -> {out}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
