"""The demo nurse: takes every bay of `bedside demo` through whole infusion sessions, so a newcomer sees the
workflow live and finds closed sessions to review and export.

Each bay has its own round of sessions: admit (a made-up patient, an induction series of 6 at 0.5 mg/kg over
40 min; the bay's next session is the same patient's next of 6), checklist, baseline for 5 min, start of the
infusion, one rate change halfway, stop and recovery, Aldrete score and escort confirmed after 10 min of recovery,
pain before and after, discharge as soon as nothing stands in the way (or an override "demo: not ready in time"
15 min after the minimum recovery, so the demo never stalls), then the bay stays empty for 2 min. The bays start
staggered by a share of a whole session, so the central view shows them in different phases.

Durations are clinic minutes divided by `speed` (the demo config divides the `[sessions]` rules by the same
factor; the alarm engine stays in real time). Every step goes through the service's public methods with
who = "demo nurse", so it is checked, stored and audited like a nurse's. A step that fails is logged, the session
is ended with a reason, and the bay carries on with its next session; other bays are not affected.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass
from typing import Any

from monitor.infusion import Session, SessionError
from monitor.service import Service

log = logging.getLogger(__name__)

DEMO_NURSE = "demo nurse"
SERIES_TOTAL = 6
DOSE_MG_PER_KG = 0.5
PLANNED_MINUTES = 40.0
# the schedule of a session, in clinic minutes
TO_CHECKLIST = 1.0  # admission -> checklist and baseline
BASELINE = 5.0
CHECKS_AFTER = 10.0  # of recovery: Aldrete score, escort confirmed, pain after
NAUSEA_AFTER = 5.0  # of recovery, in the sessions that have it
OVERRIDE_AFTER = 15.0  # past the minimum recovery: discharge with an override
EMPTY = 2.0  # the bay stays empty between sessions
NAUSEA_CHANCE = 0.3
OVERRIDE_REASON = "demo: not ready in time"
INITIALS = "ABCDEFGHJKLMNPRSTVW"
ESCORTS = ("Sam Carter", "Alex Morgan", "Robin Lee", "Jamie Fox", "Chris Dale", "Pat Quinn")


def session_minutes(min_recovery_minutes: float) -> float:
    """The clinic minutes of one session and the empty bay after it, when discharged at the minimum recovery."""
    return TO_CHECKLIST + BASELINE + PLANNED_MINUTES + max(min_recovery_minutes, CHECKS_AFTER) + EMPTY


async def run_demo_sessions(service: Service, speed: float, who: str = DEMO_NURSE) -> None:
    """Take every bay of `service` through sessions until cancelled (never raises otherwise)."""
    if not speed > 0:
        raise ValueError(f"speed must be > 0, got {speed}")
    await service.started.wait()
    bays = [b.id for b in service.config.bays]
    cycle = session_minutes(service.sessions.settings.min_recovery_minutes * speed)
    tasks = [asyncio.create_task(_BayNurse(service, bay, i, len(bays), speed, who).run(i * cycle / len(bays)),
                                 name=f"demo-{bay}")
             for i, bay in enumerate(bays)]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


@dataclass
class _BayNurse:
    service: Service
    bay: str
    index: int  # of the bay, 0-based
    bays: int
    speed: float
    who: str

    def __post_init__(self) -> None:
        self.rng = random.Random(f"bedside-demo-{self.bay}")
        self.patient_round = 0
        self.series_index = SERIES_TOTAL  # the next session starts a new patient
        self.patient: dict[str, Any] = {}
        self.recovery_minutes: float | None = None  # the simulated patient's own, before compression

    async def sleep(self, clinic_minutes: float) -> None:
        await asyncio.sleep(clinic_minutes * 60.0 / self.speed)

    async def run(self, start_after: float) -> None:
        self._end_left_over()
        await self.sleep(start_after)
        while True:
            try:
                await self.session()
            except Exception:  # a demo step must never take the service (or another bay) down
                log.exception("demo: bay %s: a session step failed; ending the session and carrying on", self.bay)
                self._end_open("demo: a step failed")
            await self.sleep(EMPTY)

    def _end_left_over(self) -> None:
        """A session left open by an earlier run on the same data dir is ended, so the bay can start afresh."""
        self._end_open("demo: restarted")

    def _end_open(self, reason: str) -> None:
        s = self.service.sessions.open.get(self.bay)
        if s is not None:
            with contextlib.suppress(Exception):
                self.service.session_step(s.id, self.who, "end", {"reason": reason})

    def _next_patient(self) -> dict[str, Any]:
        if self.series_index >= SERIES_TOTAL:
            self.patient_round += 1
            number = self.index + 1 + self.bays * (self.patient_round - 1)
            self.patient = {"patient_id": f"DEMO-{number:04d}",
                            "initials": "".join(self.rng.choice(INITIALS) for _ in range(2)),
                            "weight_kg": round(self.rng.uniform(55.0, 95.0), 1)}
            self.series_index = 0
        self.series_index += 1
        return {**self.patient, "dose_mg_per_kg": DOSE_MG_PER_KG, "planned_minutes": PLANNED_MINUTES,
                "series_kind": "induction", "series_index": self.series_index, "series_total": SERIES_TOTAL}

    def step(self, s: Session, name: str, args: dict[str, Any] | None = None) -> Session:
        return self.service.session_step(s.id, self.who, name, args or {})

    async def session(self) -> Session:
        svc, rng = self.service, self.rng
        s = svc.admit(self.bay, self.who, self._next_patient())
        await self.sleep(TO_CHECKLIST)
        s = self.step(s, "checklist", {"fasting_hours": float(rng.choice((6, 8, 10, 12))),
                                       "escort_name": rng.choice(ESCORTS),
                                       "escort_phone": f"555-01{rng.randrange(100):02d}", "consent": True})
        s = self.step(s, "pain", {"before": rng.randint(4, 8)})
        s = self.step(s, "baseline")
        await self.sleep(BASELINE)

        s = self.step(s, "dose", {"action": "start"})
        self._start_simulated_infusion()
        await self.sleep(PLANNED_MINUTES / 2)
        s = self.step(s, "dose", {"action": "rate", "rate_mg_per_h": round(s.rate_mg_per_h * 0.8, 2),
                                  "note": "demo: blood pressure up, rate reduced"})
        await self.sleep(PLANNED_MINUTES / 2)
        s = self.step(s, "dose", {"action": "stop"})
        s = self.step(s, "recovery")

        await self.sleep(NAUSEA_AFTER)
        if rng.random() < NAUSEA_CHANCE:
            svc.annotate(self.bay, self.who, "nausea", "demo: the patient feels sick")
        await self.sleep(CHECKS_AFTER - NAUSEA_AFTER)
        s = self.step(s, "aldrete", {"activity": 2, "respiration": 2, "circulation": 2,
                                     "consciousness": rng.choice((1, 2)), "spo2": 2})
        s = self.step(s, "checklist", {"escort_confirmed": True})
        s = self.step(s, "pain", {"after": rng.randint(0, 3)})
        return await self._discharge(s)

    async def _discharge(self, s: Session) -> Session:
        """Discharge as soon as the patient is ready, or with an override once it has taken too long."""
        svc = self.service
        started = s.recovery_started if s.recovery_started is not None else svc.clock()
        give_up = started + (svc.sessions.settings.min_recovery_minutes + OVERRIDE_AFTER / self.speed) * 60.0
        poll = min(5.0, max(0.5, 30.0 / self.speed))  # half a clinic minute, within 0.5..5 s
        while True:
            if not svc.session_status(s.id)["readiness"]:
                with contextlib.suppress(SessionError):  # no longer ready a moment later: look again
                    return self.step(s, "discharge")
            if svc.clock() >= give_up:
                return self.step(s, "discharge", {"override_reason": OVERRIDE_REASON})
            await asyncio.sleep(poll)

    def _start_simulated_infusion(self) -> None:
        """The bay's simulated patient responds to the infusion just started (time-compressed like the demo)."""
        found = self.service.simulated_patient(self.bay)
        if found is None:
            return
        model, origin = found
        if self.recovery_minutes is None:
            self.recovery_minutes = model.recovery_minutes
        model.start_infusion(self.service.clock() - origin, PLANNED_MINUTES / self.speed,
                             recovery_minutes=self.recovery_minutes / self.speed)
