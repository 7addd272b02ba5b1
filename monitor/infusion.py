"""The infusion session: one patient's ketamine infusion at a bay, from admission to discharge.

Pure domain logic (no I/O, clock passed in): the session's record (patient, protocol, series position, checklist,
baseline, dose record, Aldrete score, pain scores, discharge), the phases it goes through and which step is allowed
when, and whether the patient is ready to go home. monitor/sessions.py keeps the open sessions of a service and
stores every change; the dashboard and the CLI only ask it.

Phases: ``admitted`` (checklist) -> ``baseline`` (vitals before the drug) -> ``infusion`` (start, rate changes,
pauses, stop) -> ``recovery`` -> ``closed`` (discharged, or ended early with a reason).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal, get_args

Phase = Literal["admitted", "baseline", "infusion", "recovery", "closed"]
PHASES: tuple[Phase, ...] = get_args(Phase)
SeriesKind = Literal["induction", "booster"]
DoseAction = Literal["start", "rate", "pause", "resume", "stop"]
DOSE_ACTIONS: tuple[DoseAction, ...] = get_args(DoseAction)
ALDRETE_ITEMS = ("activity", "respiration", "circulation", "consciousness", "spo2")
# the vitals whose baseline is taken and against which "back to baseline" is judged (BP and heart rate rise on
# ketamine; SpO2 and RR fall with sedation)
BASELINE_VITALS = ("hr", "pr", "spo2", "nibp_sys", "nibp_dia", "nibp_map", "rr", "etco2")
STABILITY_VITALS = ("hr", "pr", "nibp_sys", "nibp_dia", "spo2")  # "within 20 % of baseline" is judged on these


class SessionError(ValueError):
    """A session step that is not allowed now, or a value out of range; the message says why."""


@dataclass(frozen=True, slots=True)
class Protocol:
    """The prescribed infusion: dose per kg over the planned time; total dose and rate follow from the weight."""

    dose_mg_per_kg: float
    planned_minutes: float

    def total_mg(self, weight_kg: float) -> float:
        return round(self.dose_mg_per_kg * weight_kg, 2)

    def rate_mg_per_h(self, weight_kg: float) -> float:
        return round(self.total_mg(weight_kg) / (self.planned_minutes / 60.0), 2)


@dataclass(frozen=True, slots=True)
class Checklist:
    """Before the infusion: fasting, an escort to take the patient home, consent. None = not yet entered."""

    fasting_hours: float | None = None
    escort_name: str | None = None
    escort_phone: str | None = None
    consent: bool = False
    escort_confirmed: bool = False  # the escort is here (or reachable) to take the patient home

    def missing(self) -> list[str]:
        """The items not yet done, in the order a nurse goes through them."""
        out = []
        if self.fasting_hours is None:
            out.append("fasting hours")
        if not self.escort_name:
            out.append("escort name")
        if not self.escort_phone:
            out.append("escort phone")
        if not self.consent:
            out.append("consent")
        return out


@dataclass(frozen=True, slots=True)
class DoseEvent:
    """A change of the infusion: start at a rate, a new rate, pause, resume, stop. `rate_mg_per_h` is the rate
    running after the event (0 when paused or stopped)."""

    time: float
    action: DoseAction
    rate_mg_per_h: float
    who: str
    note: str = ""


@dataclass(frozen=True, slots=True)
class Aldrete:
    """The modified Aldrete score (Aldrete 1995; SpO2 replaces colour), each item 0, 1 or 2, entered by a nurse."""

    activity: int
    respiration: int
    circulation: int
    consciousness: int
    spo2: int
    time: float
    who: str

    @property
    def total(self) -> int:
        return self.activity + self.respiration + self.circulation + self.consciousness + self.spo2


@dataclass(frozen=True, slots=True)
class Discharge:
    """How the session closed: discharged (ready, or overridden with a reason) or ended early."""

    time: float
    who: str
    outcome: Literal["discharged", "ended"]
    unmet: tuple[str, ...] = ()  # readiness items not met when it was done
    reason: str = ""  # the override's or early end's reason


@dataclass(frozen=True, slots=True)
class SessionSettings:
    """A clinic's discharge rules (config `[sessions]`)."""

    min_recovery_minutes: float = 30.0  # observed after the infusion at least this long
    stable_minutes: float = 15.0  # vitals within `stable_fraction` of baseline for this long
    stable_fraction: float = 0.20
    aldrete_min: int = 9


@dataclass(frozen=True, slots=True)
class Session:
    """One infusion session. Immutable: every step returns a new Session (monitor/sessions.py stores each)."""

    id: str
    bay: str
    patient_id: str
    initials: str
    weight_kg: float
    protocol: Protocol
    series_kind: SeriesKind
    series_index: int  # k of an induction series (1-based), or the booster's number
    series_total: int | None  # n of an induction series; None for a booster
    admitted_at: float
    admitted_by: str
    phase: Phase = "admitted"
    phase_since: float = 0.0
    checklist: Checklist = Checklist()
    baseline: dict[str, float] = field(default_factory=dict)
    baseline_started: float | None = None
    infusion_started: float | None = None
    infusion_stopped: float | None = None
    recovery_started: float | None = None
    doses: tuple[DoseEvent, ...] = ()
    aldrete: Aldrete | None = None
    pain_before: int | None = None
    pain_after: int | None = None
    discharge: Discharge | None = None

    @property
    def open(self) -> bool:
        return self.phase != "closed"

    @property
    def total_mg(self) -> float:
        return self.protocol.total_mg(self.weight_kg)

    @property
    def rate_mg_per_h(self) -> float:
        return self.protocol.rate_mg_per_h(self.weight_kg)

    @property
    def series_label(self) -> str:
        if self.series_kind == "booster":
            return f"booster {self.series_index}"
        return f"induction {self.series_index} of {self.series_total}"

    def running_rate(self) -> float:
        """The rate running now (mg/h), 0 when not started, paused or stopped."""
        return self.doses[-1].rate_mg_per_h if self.doses else 0.0

    def dose_given_mg(self, now: float) -> float:
        """Ketamine given so far: the integral of the rate over the dose record."""
        ends = [d.time for d in self.doses[1:]] + [now]
        total = sum(d.rate_mg_per_h * max(0.0, end - d.time) / 3600.0 for d, end in zip(self.doses, ends, strict=False))
        return round(total, 2)

    # --- steps (each checks that it is allowed now) ----------------------------------------------------------

    def _need(self, *phases: Phase, step: str) -> None:
        if self.phase not in phases:
            raise SessionError(f"{step}: not in phase {self.phase} (allowed in {', '.join(phases)})")

    def with_checklist(self, **changes: Any) -> Session:
        self._need("admitted", "baseline", "infusion", "recovery", step="checklist")
        unknown = set(changes) - {f for f in Checklist.__dataclass_fields__}
        if unknown:
            raise SessionError(f"checklist: unknown item {', '.join(sorted(unknown))}")
        fasting = changes.get("fasting_hours")
        if fasting is not None and not (math.isfinite(fasting) and 0 <= fasting <= 72):
            raise SessionError("checklist: fasting_hours must be within 0..72")
        for key in ("escort_name", "escort_phone"):
            if key in changes and changes[key] is not None:
                changes[key] = str(changes[key]).strip()[:200] or None
        return replace(self, checklist=replace(self.checklist, **changes))

    def start_baseline(self, now: float) -> Session:
        self._need("admitted", step="baseline")
        return replace(self, phase="baseline", phase_since=now, baseline_started=now)

    def with_baseline(self, values: dict[str, float]) -> Session:
        return replace(self, baseline=dict(values))

    def dose(self, action: DoseAction, now: float, who: str, rate_mg_per_h: float | None = None,
             note: str = "") -> Session:
        """A change of the infusion. `start` (from admitted or baseline) begins the infusion phase at the
        protocol's rate unless another is given; `rate` changes it; `pause`/`resume`/`stop`."""
        if action not in DOSE_ACTIONS:
            raise SessionError(f"dose: action must be one of {', '.join(DOSE_ACTIONS)}")
        if rate_mg_per_h is not None and not (math.isfinite(rate_mg_per_h) and 0 < rate_mg_per_h <= 1000):
            raise SessionError("dose: rate_mg_per_h must be within 0..1000 mg/h")
        last = self.doses[-1].action if self.doses else None
        s = self
        if action == "start":
            self._need("admitted", "baseline", step="start infusion")
            if self.checklist.missing():
                raise SessionError(f"start infusion: checklist incomplete: {', '.join(self.checklist.missing())}")
            rate = rate_mg_per_h if rate_mg_per_h is not None else self.rate_mg_per_h
            s = replace(s, phase="infusion", phase_since=now, infusion_started=now)
        elif action == "rate":
            self._need("infusion", step="rate change")
            if last not in ("start", "rate", "resume"):
                raise SessionError("rate change: the infusion is not running")
            if rate_mg_per_h is None:
                raise SessionError("rate change: give rate_mg_per_h")
            rate = rate_mg_per_h
        elif action == "pause":
            self._need("infusion", step="pause")
            if last not in ("start", "rate", "resume"):
                raise SessionError("pause: the infusion is not running")
            rate = 0.0
        elif action == "resume":
            self._need("infusion", step="resume")
            if last != "pause":
                raise SessionError("resume: the infusion is not paused")
            rate = rate_mg_per_h if rate_mg_per_h is not None else _last_running_rate(self.doses)
        else:  # stop
            self._need("infusion", step="stop")
            if last == "stop":
                raise SessionError("stop: the infusion is already stopped")
            rate = 0.0
            s = replace(s, infusion_stopped=now)
        event = DoseEvent(now, action, rate, who, note.strip()[:500])
        return replace(s, doses=(*s.doses, event))

    def start_recovery(self, now: float, who: str) -> Session:
        """Recovery begins (the infusion is stopped first if it is still running)."""
        self._need("infusion", step="recovery")
        s = self if self.doses and self.doses[-1].action == "stop" else self.dose("stop", now, who)
        return replace(s, phase="recovery", phase_since=now, recovery_started=now)

    def with_aldrete(self, scores: dict[str, int], now: float, who: str) -> Session:
        self._need("recovery", step="Aldrete score")
        if set(scores) != set(ALDRETE_ITEMS):
            raise SessionError(f"Aldrete score: give each of {', '.join(ALDRETE_ITEMS)}")
        bad = [k for k, v in scores.items() if v not in (0, 1, 2)]
        if bad:
            raise SessionError(f"Aldrete score: {', '.join(bad)} must be 0, 1 or 2")
        return replace(self, aldrete=Aldrete(**scores, time=now, who=who))

    def with_pain(self, before: int | None = None, after: int | None = None) -> Session:
        for name, v in (("before", before), ("after", after)):
            if v is not None and v not in range(11):
                raise SessionError(f"pain {name}: a score from 0 to 10")
        return replace(self, pain_before=before if before is not None else self.pain_before,
                       pain_after=after if after is not None else self.pain_after)

    def discharged(self, now: float, who: str, unmet: list[str], reason: str = "") -> Session:
        """Close the session by discharge. `unmet` readiness items need an override `reason`."""
        self._need("recovery", step="discharge")
        reason = reason.strip()
        if unmet and not reason:
            raise SessionError("discharge refused: " + "; ".join(unmet))
        return replace(self, phase="closed", phase_since=now,
                       discharge=Discharge(now, who, "discharged", tuple(unmet), reason[:1000]))

    def ended(self, now: float, who: str, reason: str) -> Session:
        """Close the session early (the patient declined, the infusion was abandoned): a reason is required."""
        self._need("admitted", "baseline", "infusion", "recovery", step="end")
        if not reason.strip():
            raise SessionError("end: give a reason")
        s = self.dose("stop", now, who) if self.phase == "infusion" and self.running_rate() > 0 else self
        return replace(s, phase="closed", phase_since=now,
                       discharge=Discharge(now, who, "ended", (), reason.strip()[:1000]))

    # --- (de)serialisation -----------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        body = asdict(self)
        body["aldrete"] = None if self.aldrete is None else {**asdict(self.aldrete), "total": self.aldrete.total}
        body["doses"] = [asdict(d) for d in self.doses]
        body["checklist"] = {**asdict(self.checklist), "missing": self.checklist.missing()}
        body["total_mg"] = self.total_mg
        body["rate_mg_per_h"] = self.rate_mg_per_h
        body["series_label"] = self.series_label
        return body

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Session:
        """The inverse of to_json (derived fields are ignored)."""
        b = {k: v for k, v in body.items() if k in cls.__dataclass_fields__}
        b["protocol"] = Protocol(**body["protocol"])
        b["checklist"] = Checklist(**{k: v for k, v in body["checklist"].items() if k != "missing"})
        b["doses"] = tuple(DoseEvent(**d) for d in body.get("doses", ()))
        a = body.get("aldrete")
        b["aldrete"] = None if a is None else Aldrete(**{k: v for k, v in a.items() if k != "total"})
        d = body.get("discharge")
        b["discharge"] = None if d is None else Discharge(**{**d, "unmet": tuple(d.get("unmet", ()))})
        return cls(**b)


def _last_running_rate(doses: tuple[DoseEvent, ...]) -> float:
    return next((d.rate_mg_per_h for d in reversed(doses) if d.rate_mg_per_h > 0), 0.0)


def admit(session_id: str, bay: str, now: float, who: str, *, patient_id: str, initials: str, weight_kg: float,
          dose_mg_per_kg: float, planned_minutes: float, series_kind: SeriesKind = "induction",
          series_index: int = 1, series_total: int | None = None) -> Session:
    """A new session, checked: the patient, the protocol and the series position."""
    patient_id = patient_id.strip()
    initials = initials.strip().upper()
    if not patient_id or len(patient_id) > 64:
        raise SessionError("patient_id: 1 to 64 characters")
    if not initials.isalpha() or not 1 <= len(initials) <= 4:
        raise SessionError("initials: 1 to 4 letters")
    if not (math.isfinite(weight_kg) and 20 <= weight_kg <= 300):
        raise SessionError("weight_kg: within 20..300 kg")
    if not (math.isfinite(dose_mg_per_kg) and 0 < dose_mg_per_kg <= 2):
        raise SessionError("dose_mg_per_kg: within 0..2 mg/kg")
    if not (math.isfinite(planned_minutes) and 10 <= planned_minutes <= 480):
        raise SessionError("planned_minutes: within 10..480 min")
    if series_kind not in get_args(SeriesKind):
        raise SessionError("series_kind: induction or booster")
    if series_index < 1:
        raise SessionError("series_index: 1 or more")
    if series_kind == "induction":
        if series_total is None or not 1 <= series_total <= 20 or series_index > series_total:
            raise SessionError("series_total: an induction series needs its length n (1..20) with index <= n")
    else:
        series_total = None
    return Session(session_id, bay, patient_id, initials, weight_kg, Protocol(dose_mg_per_kg, planned_minutes),
                   series_kind, series_index, series_total, now, who, phase_since=now)


def baseline_of(samples: dict[str, list[float]]) -> dict[str, float]:
    """A baseline per vital: the median of the readings taken during the baseline phase."""
    return {k: round(statistics.median(v), 1) for k, v in samples.items() if k in BASELINE_VITALS and v}


def readiness(session: Session, recent: dict[str, list[tuple[float, float]]], now: float,
              settings: SessionSettings) -> list[str]:
    """What stands between the patient and discharge (empty: ready). `recent` holds each vital's readings
    (time, value) of at least the last `stable_minutes`."""
    unmet: list[str] = []
    if session.phase != "recovery" or session.recovery_started is None:
        return [f"not in recovery (phase {session.phase})"]
    if session.aldrete is None:
        unmet.append("no Aldrete score entered")
    elif session.aldrete.total < settings.aldrete_min:
        unmet.append(f"Aldrete score {session.aldrete.total} < {settings.aldrete_min}")
    recovered = (now - session.recovery_started) / 60.0
    if recovered < settings.min_recovery_minutes:
        unmet.append(f"recovery {recovered:.0f} min of at least {settings.min_recovery_minutes:g} min")
    unmet += _unstable(session.baseline, recent, now, settings)
    if not session.checklist.escort_confirmed:
        unmet.append("escort not confirmed")
    return unmet


def _unstable(baseline: dict[str, float], recent: dict[str, list[tuple[float, float]]], now: float,
              settings: SessionSettings) -> list[str]:
    judged = [k for k in STABILITY_VITALS if k in baseline]
    if not judged:
        return ["no baseline to compare the vitals with"]
    since = now - settings.stable_minutes * 60.0
    out = []
    for k in judged:
        values = [v for t, v in recent.get(k, []) if t >= since]
        if not values:
            continue  # a vital not measured now (e.g. no ECG) cannot hold discharge up; see the HR/PR rule below
        base = baseline[k]
        worst = max(values, key=lambda v: abs(v - base))
        if abs(worst - base) > settings.stable_fraction * base:
            out.append(f"{k} {worst:g} not within {settings.stable_fraction:.0%} of baseline {base:g} "
                       f"for the last {settings.stable_minutes:g} min")
    measured = {k for k in judged if any(t >= since for t, _ in recent.get(k, []))}
    if not measured & {"hr", "pr"}:
        out.append(f"no heart or pulse rate in the last {settings.stable_minutes:g} min")
    if "nibp_sys" in judged and "nibp_sys" not in measured:
        out.append(f"no blood pressure in the last {settings.stable_minutes:g} min")
    return out
