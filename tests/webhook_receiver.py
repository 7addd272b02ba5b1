"""A real webhook receiver for tests: an HTTP server on a loopback port (the standard library's, in a thread) that
checks each POST's HMAC-SHA256 signature as docs/integration.md tells a receiver to, records what it got, and can
be stopped and started again on the same port."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from monitor.mosquitto import free_port


class WebhookReceiver:
    """Records every signed POST: `events` (the JSON bodies, in arrival order) and `bad_signatures`."""

    def __init__(self, secret: str, port: int | None = None) -> None:
        self.secret = secret
        self.port = port or free_port()
        self.events: list[dict[str, Any]] = []
        self.bad_signatures = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/alarms"

    def verify(self, timestamp: str, body: bytes, signature: str) -> bool:
        expected = "sha256=" + hmac.new(self.secret.encode(), timestamp.encode() + b"." + body,
                                        hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, signature)

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # the standard library's name
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                ok = receiver.verify(self.headers.get("X-Bedside-Timestamp", ""), body,
                                     self.headers.get("X-Bedside-Signature", ""))
                if ok:
                    receiver.events.append(json.loads(body))
                else:
                    receiver.bad_signatures += 1
                self.send_response(204 if ok else 401)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="webhook-receiver", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
