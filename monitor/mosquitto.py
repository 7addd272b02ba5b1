"""A private Mosquitto broker on a free loopback port, for the demo and the tests.

Started as a child process with its own config in a temporary directory (loopback only; no persistence unless
asked for, and then only across `stop` and `start`); `stop` terminates it and waits, so no process is left behind.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType


def _die_with_parent() -> None:
    """In the child before exec: ask Linux to send SIGTERM when the parent dies (no-op elsewhere)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def mosquitto_path() -> str | None:
    return shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if Path(p).exists()), None)


class PrivateMosquitto:
    """`with PrivateMosquitto() as broker:` gives `broker.host`, `broker.port`; restartable with stop/start."""

    host = "127.0.0.1"

    def __init__(self, port: int | None = None, *, tls: tuple[Path, Path, Path] | None = None,
                 password_file: Path | None = None, persistence: bool = False) -> None:
        """`tls` = (CA file, server certificate, server key) makes the listener TLS-only; `password_file` (made
        with mosquitto_passwd) turns anonymous access off; `persistence` keeps retained messages, sessions and
        their queued messages across `stop` and `start` (in the temporary directory, until `close`)."""
        exe = mosquitto_path()
        if exe is None:
            raise FileNotFoundError("mosquitto is not installed (apt-get install mosquitto)")
        self._exe = exe
        self.port = port or free_port()
        self._dir = tempfile.TemporaryDirectory(prefix="bedside-mosquitto-")
        self._proc: subprocess.Popen[bytes] | None = None
        self._tls = tls
        self._password_file = password_file
        self._persistence = persistence

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        conf = Path(self._dir.name) / "mosquitto.conf"
        persistence = ["persistence true", f"persistence_location {self._dir.name}/"] if self._persistence else [
            "persistence false"]
        lines = [f"listener {self.port} {self.host}", *persistence, f"log_dest file {self._dir.name}/log",
                 # Mosquitto leaves Nagle's algorithm on by default: a message to a client that has just been
                 # sent something else (a PUBACK) would wait for that client's delayed ACK, about 40 ms
                 "set_tcp_nodelay true"]
        if os.geteuid() == 0:
            lines.append("user root")  # else it drops to user mosquitto, who cannot read our private files
        if self._tls:
            ca, cert, key = self._tls
            lines += [f"cafile {ca}", f"certfile {cert}", f"keyfile {key}"]
        if self._password_file:
            lines += ["allow_anonymous false", f"password_file {self._password_file}"]
        else:
            lines += ["allow_anonymous true"]
        conf.write_text("\n".join(lines) + "\n")
        # Its own session: a Ctrl-C at the terminal reaches bedside, which stops the broker last, after its
        # clients. PDEATHSIG: should bedside itself die (kill -9), the kernel stops the broker too.
        errors = self._errors()
        try:
            self._proc = subprocess.Popen([self._exe, "-c", str(conf)], stdin=subprocess.DEVNULL,
                                          stdout=subprocess.DEVNULL, stderr=errors,
                                          start_new_session=True, preexec_fn=_die_with_parent)
        finally:
            os.close(errors)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                err = (Path(self._dir.name) / "stderr").read_text(errors="replace")
                raise RuntimeError(f"mosquitto exited with {self._proc.returncode}: {err.strip()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"mosquitto did not listen on {self.host}:{self.port} within {timeout} s")

    def _errors(self) -> int:
        """A file for the broker's stderr (a pipe nobody reads would block it once full)."""
        return os.open(Path(self._dir.name) / "stderr", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)

    def stop(self) -> None:
        if self._proc is None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._proc = None

    def close(self) -> None:
        self.stop()
        self._dir.cleanup()

    def __enter__(self) -> PrivateMosquitto:
        self.start()
        return self

    def __exit__(self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
