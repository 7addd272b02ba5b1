"""The clinic's infusion sessions: the open one of each bay, each step a nurse takes, and their storage.

`Sessions` keeps the open session of every bay in memory (read back from the trace store at start, so a restart
resumes them), checks each step with the pure rules of monitor/infusion.py, and saves every change durably before
it returns. It computes what the rules need from the recorded trace: the baseline (the median of the readings of
the baseline phase, taken when the infusion starts) and discharge readiness (the readings of the last
`stable_minutes`). The service (monitor/service.py) wraps each step with the alarm engine's profile switch, the
audit record and the live message.
"""

from __future__ import annotations

import secrets
import time as _time
from collections.abc import Callable, Collection, Mapping
from typing import Any

from monitor.infusion import (
    ALDRETE_ITEMS,
    Session,
    SessionError,
    SessionSettings,
    admit,
    baseline_of,
    readiness,
)
from monitor.store import SessionFilter, TraceStore

Readings = Callable[[str, float, float], dict[str, list[tuple[float, float]]]]  # bay, since, until -> per vital
STEPS = ("checklist", "baseline", "dose", "recovery", "aldrete", "pain", "discharge", "end")


def new_session_id(now: float) -> str:
    """A session id that sorts by admission time and says when: 20261203-142501-7f3a."""
    return _time.strftime("%Y%m%d-%H%M%S", _time.gmtime(now)) + "-" + secrets.token_hex(2)


class Sessions:
    def __init__(self, store: TraceStore, settings: SessionSettings, readings: Readings,
                 bays: Collection[str] | None = None) -> None:
        self.store = store
        self.settings = settings
        self._readings = readings
        self._bays = bays  # the bays this service serves (None: every bay in the store)
        self._open: dict[str, Session] = {}
        self.reload()

    def reload(self, bays: Collection[str] | None = None) -> dict[str, Session]:
        """Read the open sessions of `bays` (default: every bay served) back from the store, as another engine of a
        deployment may have changed them; returns them per bay."""
        return self.adopt(bays, self.stored_open(bays))

    def stored_open(self, bays: Collection[str] | None = None) -> dict[str, Session]:
        """The open sessions of `bays` (default: every bay served) as the store has them (a read only: safe in a
        worker thread)."""
        wanted = self._bays if bays is None else bays
        found: dict[str, Session] = {}
        for s in reversed(self.store.sessions(SessionFilter(open_only=True))):  # oldest first: the newest wins
            if wanted is None or s.bay in wanted:
                found[s.bay] = s
        return found

    def adopt(self, bays: Collection[str] | None, found: Mapping[str, Session]) -> dict[str, Session]:
        """Make `found` (from `stored_open(bays)`) the open sessions of `bays`; returns them per bay."""
        wanted = self._bays if bays is None else bays
        for bay in [b for b in self._open if wanted is None or b in wanted]:
            del self._open[bay]
        self._open.update(found)
        return dict(found)

    @property
    def open(self) -> Mapping[str, Session]:
        """The open session of each bay that has one."""
        return self._open

    def get(self, session_id: str) -> Session:
        """A session by id (open or closed); KeyError if there is none."""
        found = next((s for s in self._open.values() if s.id == session_id), None) or self.store.session(session_id)
        if found is None:
            raise KeyError(f"no session {session_id!r}")
        return found

    def admit(self, bay: str, now: float, who: str, **fields: Any) -> Session:
        if bay in self._open:
            raise SessionError(f"bay {bay} has an open session ({self._open[bay].initials}); discharge or end it "
                               "first")
        session = admit(new_session_id(now), bay, now, who, **fields)
        self._commit(session)
        return session

    def step(self, session_id: str, step: str, now: float, who: str, args: Mapping[str, Any]) -> Session:
        """Take one step of an open session and store it; SessionError (nothing changed) when not allowed."""
        s = self.get(session_id)
        if not s.open:
            raise SessionError(f"session {session_id} is closed")
        a = dict(args)
        if step == "checklist":
            new = s.with_checklist(**a)
        elif step == "baseline":
            new = s.start_baseline(now)
        elif step == "dose":
            if a.get("action") == "start":  # the baseline is what was measured before the drug
                s = s.with_baseline(baseline_of(self._samples(s, s.baseline_started or s.admitted_at, now)))
            new = s.dose(a["action"], now, who, a.get("rate_mg_per_h"), a.get("note") or "")
        elif step == "recovery":
            new = s.start_recovery(now, who)
        elif step == "aldrete":
            new = s.with_aldrete({k: a[k] for k in ALDRETE_ITEMS if k in a}, now, who)
        elif step == "pain":
            new = s.with_pain(a.get("before"), a.get("after"))
        elif step == "discharge":
            new = s.discharged(now, who, self.readiness(s, now), a.get("override_reason") or "")
        elif step == "end":
            new = s.ended(now, who, a.get("reason") or "")
        else:
            raise SessionError(f"unknown step {step!r}; one of {', '.join(STEPS)}")
        self._commit(new)
        return new

    def readiness(self, session: Session, now: float) -> list[str]:
        """What stands between the patient and discharge now (empty: ready)."""
        if session.phase != "recovery":
            return readiness(session, {}, now, self.settings)
        since = now - self.settings.stable_minutes * 60.0
        samples = self._readings(session.bay, since, now)
        return readiness(session, {k: v for k, v in samples.items()}, now, self.settings)

    def delete(self, session_id: str) -> Session:
        """Delete a closed session and its trace (an admin's decision; the caller audits it)."""
        s = self.get(session_id)
        if s.open:
            raise SessionError("an open session cannot be deleted; end it first")
        self.store.delete_session(session_id)
        return s

    def _samples(self, s: Session, since: float, until: float) -> dict[str, list[float]]:
        return {k: [v for _, v in pairs] for k, pairs in self._readings(s.bay, since, until).items()}

    def _commit(self, session: Session) -> None:
        self.store.save_session(session)  # durable before the nurse is told it is done
        if session.open:
            self._open[session.bay] = session
        elif self._open.get(session.bay, session).id == session.id:
            self._open.pop(session.bay, None)
