"""A socat pty pair with stable paths, for tests: like a USB-serial adapter whose device node comes back at the
same path when it is plugged in again."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path


class SocatPair:
    """`device` is where a program playing the monitor writes; `host` is the port bedside opens."""

    def __init__(self, folder: Path) -> None:
        exe = shutil.which("socat")
        if exe is None:
            raise FileNotFoundError("socat is not installed: run `make system-deps` (apt-get install socat)")
        self._exe = exe
        self.host = folder / "ttyHOST"
        self.device = folder / "ttyDEVICE"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._proc = subprocess.Popen(
            [self._exe, f"pty,raw,echo=0,link={self.host}", f"pty,raw,echo=0,link={self.device}"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 5
        while not (self.host.exists() and self.device.exists()):
            if time.monotonic() > deadline or self._proc.poll() is not None:
                raise RuntimeError("socat did not create its pty pair")
            time.sleep(0.02)

    def stop(self) -> None:
        """Pull the cable: both ptys vanish."""
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(timeout=5)
            self._proc = None

    def write(self, data: bytes) -> None:
        """Write as an independent program would (opening the device side afresh each time)."""
        with open(self.device, "wb", buffering=0) as f:
            f.write(data)
