"""Login rate limiting: after `max_failures` failed logins within `window` seconds for one name or from one
client address, further attempts for it are refused (429 with Retry-After) until the oldest failure is older
than the window. Kept in memory: a restart forgets it, which costs an attacker a restart per few guesses."""

from __future__ import annotations

from collections import deque

MAX_FAILURES = 5
WINDOW = 300.0  # s
MAX_KEYS = 10_000  # bounded memory: the keys with the oldest last failure are forgotten first


class LoginThrottle:
    def __init__(self, max_failures: int = MAX_FAILURES, window: float = WINDOW) -> None:
        self.max_failures = max_failures
        self.window = window
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str, now: float) -> deque[float]:
        q = self._failures.get(key)
        if q is None:
            return deque()
        while q and now - q[0] >= self.window:
            q.popleft()
        if not q:
            del self._failures[key]
        return q

    def retry_after(self, keys: list[str], now: float) -> float | None:
        """Seconds until an attempt for `keys` may be made again, or None when it may be made now."""
        waits = [self.window - (now - q[0]) for k in keys
                 if len(q := self._recent(k, now)) >= self.max_failures]
        return max(waits) if waits else None

    def failed(self, keys: list[str], now: float) -> None:
        for k in keys:
            q = self._failures.setdefault(k, deque(maxlen=self.max_failures))
            q.append(now)
        if len(self._failures) > MAX_KEYS:
            for k in sorted(self._failures, key=lambda k: self._failures[k][-1])[: len(self._failures) - MAX_KEYS]:
                del self._failures[k]

    def succeeded(self, keys: list[str]) -> None:
        for k in keys:
            self._failures.pop(k, None)
