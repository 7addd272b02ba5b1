"""The infusion sessions API: admit a patient to a bay, take each step of the session, list and review sessions,
a patient's series, the session's full trace for the review page, exports, and (admin) deletion.

Steps need the nurse role, deletion the admin role, reads the viewer role. The service (monitor/service.py) does
each step, so every one is checked by monitor/infusion.py, stored durably and audited before the response.
A step that is not allowed now is a 409 with the reason; a refused discharge also lists what is unmet.
"""

# no `from __future__ import annotations`: FastAPI must resolve the handlers' local Annotated aliases
import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from dashboard.problems import STRICT
from monitor.exports import Format, export
from monitor.exports.report import REPORT_CSP
from monitor.infusion import Session, SessionError
from monitor.session_stats import session_statistics
from monitor.store import SessionFilter, SessionTrace, session_trends
from monitor.tokens import Role
from monitor.users import Identity

if TYPE_CHECKING:
    from dashboard.app import LiveSources, UserActions


class _Body(BaseModel):
    model_config = STRICT


class AdmitRequest(_Body):
    patient_id: str = Field(min_length=1, max_length=64)
    initials: str = Field(min_length=1, max_length=4)
    weight_kg: float
    dose_mg_per_kg: float
    planned_minutes: float
    series_kind: Literal["induction", "booster"] = "induction"
    series_index: int = 1
    series_total: int | None = None


class ChecklistRequest(_Body):
    fasting_hours: float | None = None
    escort_name: str | None = Field(default=None, max_length=200)
    escort_phone: str | None = Field(default=None, max_length=40)
    consent: bool | None = None
    escort_confirmed: bool | None = None


class DoseRequest(_Body):
    action: Literal["start", "rate", "pause", "resume", "stop"]
    rate_mg_per_h: float | None = None
    note: str = Field(default="", max_length=500)


class AldreteRequest(_Body):
    activity: int
    respiration: int
    circulation: int
    consciousness: int
    spo2: int


class PainRequest(_Body):
    before: int | None = None
    after: int | None = None


class DischargeRequest(_Body):
    override_reason: str = Field(default="", max_length=1000)


class EndRequest(_Body):
    reason: str = Field(min_length=1, max_length=1000)


class Empty(_Body):
    pass


STEP_BODIES: dict[str, type[_Body]] = {
    "checklist": ChecklistRequest, "baseline": Empty, "dose": DoseRequest, "recovery": Empty,
    "aldrete": AldreteRequest, "pain": PainRequest, "discharge": DischargeRequest, "end": EndRequest}


def sessions_router(src: "LiveSources", need: Callable[[Role], Callable[[Request], Identity]],
                    acting: Callable[[], "UserActions"]) -> APIRouter:
    router = APIRouter()
    Viewer = Annotated[Identity, Depends(need("viewer"))]
    Nurse = Annotated[Identity, Depends(need("nurse"))]
    Admin = Annotated[Identity, Depends(need("admin"))]

    def known_bay(bay: str) -> None:
        if bay not in src.hub.bays:
            raise HTTPException(404, f"no bay {bay!r}")

    def stored(session_id: str) -> Session:
        found = next((s for s in src.sessions.values() if s.id == session_id), None) or \
            src.store.session(session_id)
        if found is None:
            raise HTTPException(404, f"no session {session_id!r}")
        return found

    def session_json(s: Session) -> dict[str, Any]:
        body: dict[str, Any] = {"session": s.to_json()}
        if s.open and src.actions is not None:
            body.update(src.actions.session_status(s.id))
        return body

    @router.post("/api/bays/{bay}/session")
    async def admit(bay: str, body: AdmitRequest, user: Nurse) -> dict[str, Any]:
        """Admit a patient to the bay: a new infusion session in phase `admitted`."""
        known_bay(bay)
        try:
            session = acting().admit(bay, user.who, body.model_dump())
        except SessionError as exc:
            raise HTTPException(409 if "open session" in str(exc) else 400, str(exc)) from None
        return session_json(session)

    @router.get("/api/bays/{bay}/session")
    async def bay_session(bay: str, _: Viewer) -> dict[str, Any]:
        """The bay's open session with its discharge readiness, or `{"session": null}`."""
        known_bay(bay)
        s = src.sessions.get(bay)
        return {"session": None} if s is None else session_json(s)

    @router.post("/api/sessions/{session_id}/{step}")
    async def step(session_id: str, step: str, request: Request, user: Nurse) -> dict[str, Any]:
        """One step: checklist, baseline, dose, recovery, aldrete, pain, discharge or end (bodies: STEP_BODIES)."""
        model = STEP_BODIES.get(step)
        if model is None:
            raise HTTPException(404, f"no step {step!r}; one of {', '.join(STEP_BODIES)}")
        raw = await request.body()
        try:
            body = model.model_validate_json(raw or b"{}")
        except ValueError as exc:
            raise HTTPException(422, f"{step}: {_reason(exc)}") from None
        stored(session_id)
        args = body.model_dump(exclude_none=True)
        try:
            session = acting().session_step(session_id, user.who, step, args)
        except KeyError as exc:
            raise HTTPException(404, str(exc.args[0]) if exc.args else "not found") from None
        except SessionError as exc:
            if step == "discharge" and str(exc).startswith("discharge refused"):
                raise HTTPException(409, {"reason": str(exc),
                                          "unmet": acting().session_status(session_id)["readiness"]}) from None
            raise HTTPException(409, str(exc)) from None
        return session_json(session)

    @router.get("/api/sessions")
    async def list_sessions(_: Viewer, patient: str | None = None, bay: str | None = None,
                            since: Annotated[float | None, Query(allow_inf_nan=False)] = None,
                            until: Annotated[float | None, Query(allow_inf_nan=False)] = None,
                            open_only: bool = False,
                            limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> dict[str, Any]:
        """Sessions, newest first, filtered by patient id, bay and admission time."""
        found = await asyncio.to_thread(src.store.sessions, SessionFilter(patient, bay, since, until, open_only,
                                                                          limit))
        return {"sessions": [s.to_json() for s in found]}

    @router.get("/api/sessions/{session_id}")
    async def one_session(session_id: str, _: Viewer) -> dict[str, Any]:
        return session_json(stored(session_id))

    @router.get("/api/sessions/{session_id}/trace")
    async def trace(session_id: str, _: Viewer) -> Response:
        """The whole session on one time axis for the review page: every vital's readings (columnar), alarm and
        technical periods, annotations, the dose record (in `session`)."""
        s = stored(session_id)
        end = s.discharge.time if s.discharge is not None else time.time()
        if s.open:
            await flushed()

        def read() -> bytes:
            trends = session_trends(src.store, s, time.time())
            events = src.store.bay_history(s.bay, s.admitted_at, end, observations=False)
            return _dumps({"session": s.to_json(), "start": s.admitted_at, "end": end,
                           "trends": {k: {"t": t.time, "v": t.value} for k, t in trends.items()},
                           "alarms": events["alarms"], "technical": events["technical"],
                           "annotations": events["annotations"]})

        return Response(await asyncio.to_thread(read), media_type="application/json")

    def traced(session_id: str) -> SessionTrace:
        trace = src.store.session_trace(session_id)
        if trace is None:
            raise HTTPException(404, f"no session {session_id!r}")
        if trace.session.open:  # still running: up to now, not to the far future
            trace.end = time.time()
        return trace

    @router.get("/api/sessions/{session_id}/statistics")
    async def statistics(session_id: str, _: Viewer) -> dict[str, Any]:
        """Min/max/median per vital, time outside limits, alarm counts, peak SBP and HR vs baseline, time back to
        baseline, the dose given (monitor/session_stats.py)."""
        stored(session_id)
        await flushed()
        return await asyncio.to_thread(lambda: session_statistics(traced(session_id)))

    @router.get("/api/sessions/{session_id}/export", responses={200: {"content": {
        "text/csv": {}, "application/fhir+json": {}, "application/hl7-v2": {}, "text/html": {}}}})
    async def export_session(session_id: str, user: Viewer,
                             format: Annotated[Format, Query()] = "report") -> Response:
        """The session as CSV (the trace format `bedside replay` reads), a FHIR R4 Bundle, HL7 v2.6 ORU^R01
        (IHE PCD-01) or the printable report (HTML, shown in the browser; the others are downloads). Audited:
        patient data leaving the system."""
        s = stored(session_id)
        await flushed()
        out = await asyncio.to_thread(lambda: export(traced(session_id), format))
        src.audit(user.who, "session_export", s.bay, session_id, after={"format": format})
        disposition = "inline" if format == "report" else "attachment"
        headers = {"Content-Disposition": f'{disposition}; filename="{out.filename}"'}
        if format == "report":
            headers["Content-Security-Policy"] = REPORT_CSP
        return Response(out.text, media_type=out.media_type, headers=headers)

    @router.get("/api/patients/{patient_id}/series")
    async def series(patient_id: str, _: Viewer) -> dict[str, Any]:
        """A patient's sessions, oldest first, each with its response (peak SBP and HR vs baseline), alarm
        counts, pain before/after and notes: how the patient responds across the series."""
        found = await asyncio.to_thread(src.store.sessions, SessionFilter(patient_id=patient_id, limit=1000))
        if not found:
            raise HTTPException(404, f"no sessions of patient {patient_id!r}")
        await flushed()

        def summarise() -> list[dict[str, Any]]:
            out = []
            for s in reversed(found):
                trace = traced(s.id)
                stats = session_statistics(trace)
                out.append({"session": s.to_json(), "peaks": stats["peaks"], "alarms": stats["alarms"],
                            "back_to_baseline": stats["back_to_baseline"], "infusion": stats["infusion"],
                            "notes": [{"time": a.time, "kind": a.kind, "text": a.text, "who": a.who}
                                      for a in trace.annotations]})
            return out

        return {"patient_id": patient_id, "sessions": await asyncio.to_thread(summarise)}

    async def flushed() -> None:
        """What the recorder still holds is written first, so a running session's last seconds are included."""
        if src.recorder is not None:
            await asyncio.to_thread(src.recorder.flush)

    @router.delete("/api/sessions/{session_id}")
    async def delete(session_id: str, user: Admin) -> dict[str, Any]:
        """Delete a closed session and its recorded trace (audited). Sessions are kept until an admin does this."""
        stored(session_id)
        try:
            await asyncio.to_thread(acting().delete_session, session_id, user.who)
        except SessionError as exc:
            raise HTTPException(409, str(exc)) from None
        return {"deleted": session_id}

    return router


def _reason(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        return "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', 'invalid')}"
                         for e in errors())
    return "invalid body"


def _dumps(body: dict[str, Any]) -> bytes:
    import orjson

    return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)
