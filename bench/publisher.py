"""The load benchmarks' one publisher process: `bedside/v1` numerics for every MQTT monitor of a benchmark clinic.

    python bench/publisher.py --host H --port P --bays N --epoch E [--rate 1] [--flood]

Paced (default): monitor i of N publishes its k-th message at E + (k + i/N) / rate, so the messages of all monitors
are spread evenly over each period; `--flood`: round robin over the monitors as fast as it can (at most `--window`
messages waiting for their PUBACK). Each message is `{"ts", "seq", "values"}` (QoS 1) on
`bedside/v1/bench/dev/devNNNN/numerics`, `ts` the wall-clock time when it was made (just before it is written to
the socket), values those of a calm patient (hr, pr, spo2, rr, etco2, temp). It runs until SIGTERM and then prints
one JSON line: messages sent and acknowledged, seconds, the send rate and (paced) how late the publishes were (p99
and max, ms).

It speaks MQTT 3.1.1 itself over one TCP connection (CONNECT, then QoS 1 PUBLISH packets; a thread reads the
broker's PUBACKs), with the standard library only: paho-mqtt costs about 300 us of CPU per message on the reference
machine, which at 1,000 messages a second would take a third of a core from what is being measured; this costs a
few microseconds, and the process starts in a fraction of a second.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import struct
import sys
import threading
import time

SITE = "bench"


def device_id(i: int) -> str:
    """The i-th MQTT monitor (0-based): dev0001, ... (bay i is bay0001, ...: bench/cluster.py)."""
    return f"dev{i + 1:04d}"


def numerics_topic(device: str, site: str = SITE) -> str:
    return f"bedside/v1/{site}/dev/{device}/numerics"


def normal_values(rng: random.Random) -> dict[str, float]:
    """A calm patient's numerics, whole numbers as monitors show them (temp with one decimal): inside every limit
    of the benchmark profile, also with the noise."""
    hr = float(rng.randint(70, 80))
    return {"hr": hr, "pr": hr, "spo2": float(rng.randint(96, 99)), "rr": float(rng.randint(12, 16)),
            "etco2": float(rng.randint(35, 40)), "temp": round(36.6 + rng.random() * 0.4, 1)}


def _length(n: int) -> bytes:
    """MQTT's variable-length "remaining length"."""
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _string(s: bytes) -> bytes:
    return struct.pack("!H", len(s)) + s


class Connection:
    """One MQTT 3.1.1 connection that only publishes at QoS 1 (no keepalive, so no pings)."""

    def __init__(self, host: str, port: int, client_id: str) -> None:
        self.sock = socket.create_connection((host, port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        body = _string(b"MQTT") + bytes([4, 0x02]) + struct.pack("!H", 0) + _string(client_id.encode())
        self.sock.sendall(b"\x10" + _length(len(body)) + body)
        connack = self.sock.recv(4)
        if len(connack) != 4 or connack[0] != 0x20 or connack[3] != 0:
            raise ConnectionError(f"no CONNACK from the broker: {connack!r}")
        self.sock.settimeout(None)
        self.acked = 0
        self._id = 0
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        """Count PUBACKs (4 bytes each: the broker sends nothing else to a publisher without subscriptions)."""
        left = 0
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            left += len(data)
            self.acked += left // 4
            left %= 4

    def packet(self, topic: bytes, payload: bytes) -> bytes:
        """A QoS 1 PUBLISH packet."""
        self._id = self._id % 65535 + 1
        body = _string(topic) + struct.pack("!H", self._id) + payload
        return b"\x32" + _length(len(body)) + body

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close(self, sent: int) -> None:
        """Wait (at most 2 s) for the PUBACKs of all `sent` messages, then disconnect."""
        deadline = time.monotonic() + 2
        while self._reader.is_alive() and time.monotonic() < deadline and self.acked < sent:
            time.sleep(0.01)
        try:
            self.sock.sendall(b"\xe0\x00")  # DISCONNECT
        finally:
            self.sock.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--bays", type=int, required=True)
    parser.add_argument("--rate", type=float, default=1.0, help="messages per second per monitor (paced)")
    parser.add_argument("--epoch", type=float, required=True, help="when monitor 0's first paced message is due")
    parser.add_argument("--flood", action="store_true", help="as fast as possible, round robin over the monitors")
    parser.add_argument("--window", type=int, default=20_000, help="flood: messages waiting for a PUBACK at most")
    args = parser.parse_args(argv)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    conn = Connection(args.host, args.port, f"bench-publisher-{os.getpid()}")
    topics = [numerics_topic(device_id(i)).encode() for i in range(args.bays)]
    rng = random.Random(8)
    seq = [0] * args.bays
    late: list[float] = []
    sent = 0

    def message(i: int) -> bytes:
        nonlocal sent
        v = normal_values(rng)
        body = (f'{{"ts":{time.time()!r},"seq":{seq[i]},"values":{{"hr":{v["hr"]},"pr":{v["pr"]},'
                f'"spo2":{v["spo2"]},"rr":{v["rr"]},"etco2":{v["etco2"]},"temp":{v["temp"]}}}}}')
        seq[i] += 1
        sent += 1
        return conn.packet(topics[i], body.encode())

    began = time.time()
    if args.flood:
        i = 0
        while not stop.is_set():
            if sent - conn.acked > args.window:
                time.sleep(0.001)
                continue
            batch = []
            for _ in range(100):
                batch.append(message(i))
                i = (i + 1) % args.bays
            conn.send(b"".join(batch))
    else:
        period = 1.0 / args.rate
        i, k = 0, 0
        while not stop.is_set():
            now = time.time()
            due = args.epoch + (k + i / args.bays) * period
            if due > now:
                time.sleep(min(due - now, 0.05))
                continue
            batch = []
            while due <= now:
                late.append(now - due)
                batch.append(message(i))
                i += 1
                if i == args.bays:
                    i, k = 0, k + 1
                due = args.epoch + (k + i / args.bays) * period
            conn.send(b"".join(batch))
    elapsed = time.time() - began
    conn.close(sent)
    figures = {"sent": sent, "acked": conn.acked, "seconds": elapsed, "rate": sent / elapsed if elapsed > 0 else 0.0}
    if late:
        late.sort()
        figures |= {"late_p99_ms": late[int(0.99 * (len(late) - 1))] * 1000, "late_max_ms": late[-1] * 1000}
    print(json.dumps(figures), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
