"""Login rate limiting: after `max_failures` failed logins within `window` seconds from one client address, or
`max_name_failures` for one name from anywhere, further attempts for it are refused (429 with Retry-After) until
the oldest failure is older than the window. The per-name cap is much higher than the per-address one, so that
one machine cannot lock a nurse out by typing wrong passwords for her name, while guessing her password from many
machines is still slowed. Kept in memory: a restart forgets it."""

from __future__ import annotations

from collections import deque

MAX_FAILURES = 5  # per client address
MAX_NAME_FAILURES = 30  # per name, from all addresses together
WINDOW = 300.0  # s
MAX_KEYS = 10_000  # bounded memory: the keys with the oldest last failure are forgotten first


class LoginThrottle:
    def __init__(self, max_failures: int = MAX_FAILURES, window: float = WINDOW,
                 max_name_failures: int = MAX_NAME_FAILURES) -> None:
        self.max_failures = max_failures
        self.max_name_failures = max_name_failures
        self.window = window
        self._failures: dict[str, deque[float]] = {}
        self._refused: dict[str, float] = {}  # key -> when its current block was first refused

    def _limit(self, key: str) -> int:
        return self.max_name_failures if key.startswith("name:") else self.max_failures

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
                 if len(q := self._recent(k, now)) >= self._limit(k)]
        return max(waits) if waits else None

    def failed(self, keys: list[str], now: float) -> None:
        for k in keys:
            q = self._failures.setdefault(k, deque(maxlen=self._limit(k)))
            q.append(now)
        if len(self._failures) > MAX_KEYS:
            for k in sorted(self._failures, key=lambda k: self._failures[k][-1])[: len(self._failures) - MAX_KEYS]:
                del self._failures[k]

    def first_refusal(self, keys: list[str], now: float) -> bool:
        """Whether this is the first refused attempt of the blocks now on `keys` (to audit once per block)."""
        first = False
        for k in keys:
            blocked = k in self._failures and len(self._recent(k, now)) >= self._limit(k)
            if blocked and now - self._refused.get(k, -self.window) >= self.window:
                self._refused[k] = now
                first = True
        if len(self._refused) > MAX_KEYS:
            self._refused = {k: t for k, t in self._refused.items() if now - t < self.window}
        return first

    def succeeded(self, keys: list[str]) -> None:
        for k in keys:
            self._failures.pop(k, None)
