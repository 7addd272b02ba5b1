"""The dashboard's FastAPI app: health, the bays API, alarm actions, annotations, history, the live websocket and
the pages. Accounts (login, users, tokens, audit) are in dashboard/accounts.py.

Every endpoint but `/api/health`, the login page and the static assets (which hold no patient data) needs a login
session (the page's HttpOnly cookie, with CSRF protection on state changes) or a bearer token (API clients).
Alarm actions, annotations and patient limits need the nurse role; users, tokens and the audit log the admin role;
the server enforces it. Actions only *ask*: the engine owns the alarm lifecycle, and the service audits who asked.
"""


import asyncio
import json
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Protocol
from urllib.parse import quote

from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response, WebSocket, WebSocketDisconnect
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from alerts.profile import ProfileError
from dashboard.accounts import accounts_router
from dashboard.auth import allows, csrf_ok, identify, same_origin
from dashboard.live import AlarmView, EncodedItems, item_json, snapshot
from dashboard.problems import ERRORS, STRICT
from dashboard.sessions_api import sessions_router
from monitor.broadcast import Broadcast
from monitor.history import MAX_SPAN
from monitor.hub import Hub
from monitor.infusion import Session
from monitor.model import AlarmEvent, Annotation, AuditRecord, LiveItem
from monitor.recorder import Recorder
from monitor.store import TraceStore
from monitor.tokens import Role
from monitor.users import Identity

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
UPLOT = Path(__file__).parent / "node_modules" / "uplot" / "dist"
HEARTBEAT = 1.0  # s of quiet after which the server sends a heartbeat (the page treats 2.5 s of silence as lost)
SEND_TIMEOUT = 10.0  # a client that cannot take a message for this long is disconnected (it resyncs on reconnect)
RECHECK = 30.0  # s between re-checks of a live connection's login
DEFAULT_HISTORY = 900.0  # s of history when a request gives no `since`

CSP = "default-src 'self'; connect-src 'self'; img-src 'self' data:; object-src 'none'; frame-ancestors 'none'"


class UserActions(Protocol):
    """What a user may ask of bedside (monitor.service.Service implements it, auditing each request).
    KeyError: no such bay or alarm; ValueError / ProfileError: a request that cannot be carried out."""

    def acknowledge(self, bay: str, alarm_id: str, who: str) -> list[AlarmEvent]: ...
    def pause_audio(self, bay: str, who: str, seconds: float | None = None) -> list[AlarmEvent]: ...
    def resume_audio(self, bay: str, who: str) -> list[AlarmEvent]: ...
    def alarm_settings(self, bay: str) -> dict[str, Any]: ...
    def set_alarm_settings(self, bay: str, who: str, profile: str | None = None,
                           overrides: dict[str, dict[str, Any]] | None = None) -> list[AlarmEvent]: ...
    def set_baseline(self, bay: str, vital: str, value: float | None, who: str) -> None: ...
    def annotate(self, bay: str, who: str, kind: str, text: str, at: float | None = None) -> Annotation: ...
    def admit(self, bay: str, who: str, fields: dict[str, Any]) -> Session: ...
    def session_step(self, session_id: str, who: str, step: str, args: dict[str, Any]) -> Session: ...
    def session_status(self, session_id: str) -> dict[str, Any]: ...
    def delete_session(self, session_id: str, who: str) -> None: ...
    def audit(self, who: str, action: str, bay: str | None = None, target: str | None = None,
              before: object = None, after: object = None) -> None: ...


class RemoteAlarmActions(Protocol):
    """A dashboard node's alarm actions, asked of the engine that holds the bay (monitor/cluster.py)."""

    async def ask(self, bay: str, action: str, who: str, alarm_id: str | None = None,
                  seconds: float | None = None) -> list[AlarmEvent]: ...


@dataclass(slots=True)
class LiveSources:
    """What the dashboard reads, and the actions it may ask for. Built by the service."""

    site: str
    hub: Hub
    engine: AlarmView
    broadcast: Broadcast[LiveItem]
    db: sqlite3.Connection  # accounts: users, login sessions, tokens
    store: TraceStore  # traces: observations, alarms, annotations, audit, infusion sessions
    recorder: Recorder | None = None
    actions: UserActions | None = None
    sessions: Mapping[str, Session] = field(default_factory=dict)  # each bay's open infusion session
    forwarding: Callable[[], dict[str, dict[str, Any]]] | None = None  # the alarm outputs' status (notifier)
    remote: RemoteAlarmActions | None = None  # a dashboard node: alarm actions carried out by the holding engine
    cluster: Callable[[], dict[str, Any]] | None = None  # a node of a deployment: its role, link, wards held

    def audit(self, who: str, action: str, bay: str | None = None, target: str | None = None,
              before: object = None, after: object = None) -> None:
        """Audit through the service when there is one, else straight into the database."""
        if self.actions is not None:
            self.actions.audit(who, action, bay, target, before, after)
            return
        self.store.append_durable([AuditRecord.of(time.time(), who, action, bay, target, before, after)])


class PauseRequest(BaseModel):
    model_config = STRICT
    seconds: float | None = Field(default=None, gt=0)


class AlarmSettingsRequest(BaseModel):
    model_config = STRICT
    profile: str | None = None
    overrides: dict[str, dict[str, Any]] | None = None


class BaselineRequest(BaseModel):
    model_config = STRICT
    value: float | None


class AnnotationRequest(BaseModel):
    model_config = STRICT
    kind: str
    text: str = ""
    time: float | None = None


def _events_json(events: list[AlarmEvent]) -> dict[str, Any]:
    return {"events": [item_json(e) for e in events]}


def create_app(src: LiveSources) -> FastAPI:
    app = FastAPI(title="bedside", version="0.1.0", docs_url=None, redoc_url=None, openapi_url=None,
                  responses=ERRORS)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        """422 with the reason and where, never echoing the input (a NaN in it could not even be written)."""
        reasons = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', 'invalid')}" for e in exc.errors()]
        return JSONResponse({"detail": "; ".join(reasons)}, status_code=422)

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", CSP)  # the session report brings its own
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        if request.url.path.startswith("/api/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    def need(role: Role) -> Callable[[Request], Identity]:
        def check(request: Request) -> Identity:
            ident = identify(src.db, request.headers, request.cookies)
            if ident is None:
                raise HTTPException(401, "login or bearer token required", {"WWW-Authenticate": "Bearer"})
            if not csrf_ok(ident, request.method, request.headers) or not same_origin(request.headers):
                raise HTTPException(403, "CSRF check failed: send the X-CSRF-Token header from GET /api/me "
                                         "with every change made with the login cookie")
            if not allows(ident.role, role):
                raise HTTPException(403, f"needs role {role}")
            return ident

        return check

    Viewer = Annotated[Identity, Depends(need("viewer"))]
    Nurse = Annotated[Identity, Depends(need("nurse"))]

    def acting() -> UserActions:
        if src.actions is None:
            if src.remote is not None:
                raise HTTPException(409, "on a dashboard node only acknowledging and audio pause are carried out "
                                         "(by the ward's engine); use the dashboard of the engine that holds the ward")
            raise HTTPException(503, "alarm actions are not available on this server")
        return src.actions

    async def remotely(bay: str, action: str, who: str, alarm_id: str | None = None,
                       seconds: float | None = None) -> dict[str, Any]:
        """A dashboard node's alarm action, carried out by the engine that holds the bay."""
        assert src.remote is not None
        known_bay(bay)
        try:
            events = await src.remote.ask(bay, action, who, alarm_id, seconds)
        except KeyError as exc:
            raise HTTPException(404, str(exc.args[0]) if exc.args else "not found") from None
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None
        except Exception as exc:  # RemoteUnavailable: no engine answered, or the broker is away
            raise HTTPException(503, str(exc)) from None
        return _events_json(events)

    def attempt(call: Callable[[], Any]) -> Any:
        try:
            return call()
        except KeyError as exc:
            raise HTTPException(404, str(exc.args[0]) if exc.args else "not found") from None
        except (ValueError, ProfileError) as exc:
            raise HTTPException(400, str(exc)) from None

    def known_bay(bay: str) -> None:
        if bay not in src.hub.bays:
            raise HTTPException(404, f"no bay {bay!r}")

    app.include_router(accounts_router(src, need))
    app.include_router(sessions_router(src, need, acting))

    # Handlers are async so they run on the event loop, never concurrently with the hub's updates.
    @app.get("/api/health")
    async def health() -> dict[str, Any]:
        body: dict[str, Any] = {"status": "ok", "site": src.site, "bays": len(src.hub.bays), "time": time.time()}
        if src.recorder is not None:
            failing = src.recorder.consecutive_failures > 0
            body["recorder"] = {"written": src.recorder.written, "pending": src.recorder.pending,
                                "failing": failing, "dropped": src.recorder.dropped}
            if failing or src.recorder.dropped:
                body["status"] = "degraded"
        if src.forwarding is not None:  # counts only: this endpoint needs no login, so no addresses or errors
            outputs = src.forwarding()
            body["forwarding"] = {name: {"delivered": o["delivered"], "waiting": o["waiting"],
                                         "failing": o["failing_since"] is not None} for name, o in outputs.items()}
            if any(o["failing_since"] is not None for o in outputs.values()):
                body["status"] = "degraded"
        if src.cluster is not None:
            node = src.cluster()
            body["node"] = node
            if not node.get("link"):
                body["status"] = "degraded"
        return body

    @app.get("/api/openapi.json", include_in_schema=False)
    async def openapi(_: Viewer) -> dict[str, Any]:
        """The API's OpenAPI schema, for API clients (behind a login like everything else)."""
        return app.openapi()

    @app.get("/api/bays")
    async def bays(_: Viewer) -> dict[str, Any]:
        return snapshot(src.site, src.hub, src.engine, time.time(), src.sessions)

    @app.post("/api/bays/{bay}/alarms/{alarm_id}/acknowledge")
    async def acknowledge(bay: str, alarm_id: str, user: Nurse) -> dict[str, Any]:
        if src.remote is not None:
            return await remotely(bay, "acknowledge", user.who, alarm_id=alarm_id)
        return _events_json(attempt(lambda: acting().acknowledge(bay, alarm_id, user.who)))

    @app.post("/api/bays/{bay}/audio-pause")
    async def pause_audio(bay: str, user: Nurse, body: PauseRequest | None = None) -> dict[str, Any]:
        body = body or PauseRequest()
        if src.remote is not None:
            return await remotely(bay, "audio_pause", user.who, seconds=body.seconds)
        return _events_json(attempt(lambda: acting().pause_audio(bay, user.who, body.seconds)))

    @app.post("/api/bays/{bay}/audio-resume")
    async def resume_audio(bay: str, user: Nurse) -> dict[str, Any]:
        if src.remote is not None:
            return await remotely(bay, "audio_resume", user.who)
        return _events_json(attempt(lambda: acting().resume_audio(bay, user.who)))

    @app.get("/api/bays/{bay}/alarm-settings")
    async def alarm_settings(bay: str, _: Viewer) -> dict[str, Any]:
        result: dict[str, Any] = attempt(lambda: acting().alarm_settings(bay))
        return result

    @app.put("/api/bays/{bay}/alarm-settings")
    async def set_alarm_settings(bay: str, body: AlarmSettingsRequest, user: Nurse) -> dict[str, Any]:
        events = attempt(lambda: acting().set_alarm_settings(bay, user.who, body.profile, body.overrides))
        return {**_events_json(events), "settings": acting().alarm_settings(bay)}

    @app.put("/api/bays/{bay}/baselines/{vital}")
    async def set_baseline(bay: str, vital: str, body: BaselineRequest, user: Nurse) -> dict[str, Any]:
        attempt(lambda: acting().set_baseline(bay, vital, body.value, user.who))
        return {"baselines": acting().alarm_settings(bay)["baselines"]}

    @app.get("/api/bays/{bay}/history")
    async def history(bay: str, _: Viewer, since: Annotated[float | None, Query(allow_inf_nan=False)] = None,
                      until: Annotated[float | None, Query(allow_inf_nan=False)] = None) -> dict[str, Any]:
        """What was recorded for `bay` in [since, until] (default: the last 15 min), for the detail page's trends."""
        known_bay(bay)
        end = time.time() if until is None else until
        start = end - DEFAULT_HISTORY if since is None else since
        if start > end:
            raise HTTPException(400, "since must not be after until")
        if end - start > MAX_SPAN:
            raise HTTPException(400, f"at most {MAX_SPAN / 3600:.0f} h per request")
        if src.recorder is not None:  # what is still in the recorder's batch is not lost from the trend
            await asyncio.to_thread(src.recorder.flush)
        result: dict[str, Any] = await asyncio.to_thread(src.store.bay_history, bay, start, end)
        return result

    @app.post("/api/bays/{bay}/annotations")
    async def annotate(bay: str, body: AnnotationRequest, user: Nurse) -> dict[str, Any]:
        note: Annotation = attempt(lambda: acting().annotate(bay, user.who, body.kind, body.text, body.time))
        return item_json(note)

    texts = EncodedItems()  # each live item is encoded once for all clients

    @app.websocket("/ws/live")
    async def live(ws: WebSocket) -> None:
        if identify(src.db, ws.headers, ws.cookies) is None or not same_origin(ws.headers):
            await ws.close(code=1008)  # before accept: the handshake is refused with 403
            return
        await ws.accept()
        batched = ws.query_params.get("batch") == "1"  # the page: a burst of items as one {"type": "batch"} message
        with src.broadcast.subscribe() as sub:
            await ws.send_json({"type": "snapshot", **snapshot(src.site, src.hub, src.engine, time.time(),
                                                                src.sessions)})
            reader = asyncio.create_task(_drain(ws))
            reader.add_done_callback(lambda _: sub.ready.set())
            loop = asyncio.get_running_loop()
            checked = time.monotonic()
            try:
                # Sending what is queued that takes longer than SEND_TIMEOUT (the client's buffers are full) ends
                # the connection: the deadline is armed only while sending, once for all that is queued.
                async with asyncio.timeout(None) as sending:
                    while not reader.done():
                        if time.monotonic() - checked > RECHECK:  # a disabled user or revoked token stops seeing data
                            checked = time.monotonic()
                            if identify(src.db, ws.headers, ws.cookies) is None:
                                sending.reschedule(loop.time() + SEND_TIMEOUT)
                                await ws.close(code=1008, reason="login ended")
                                return
                        if sub.overflowed.is_set():  # 10,000 behind: dropped from the fan-out; it must resync
                            sending.reschedule(loop.time() + SEND_TIMEOUT)
                            await ws.close(code=1013, reason="too slow; reconnect to resynchronise")
                            return
                        sub.ready.clear()
                        batch = _queued(sub.queue, texts)  # a burst of readings is sent straight through
                        if not batch:
                            try:  # one wake-up per burst: set by the fan-out, or by the reader when it ends
                                async with asyncio.timeout(HEARTBEAT):
                                    await sub.ready.wait()
                                continue  # items, an overflow or a disconnect: seen at the top of the loop
                            except TimeoutError:  # quiet: tell the page we are alive (silence vs dead link)
                                batch = [json.dumps({"type": "heartbeat", "server_time": time.time()})]
                        sending.reschedule(loop.time() + SEND_TIMEOUT)
                        if batched and len(batch) > 1:
                            await ws.send_text(_batch(batch))
                        else:
                            for text in batch:
                                await ws.send_text(text)
                        sending.reschedule(None)
            except (WebSocketDisconnect, TimeoutError, RuntimeError):
                pass
            finally:
                reader.cancel()

    def page(name: str, *, login: bool = True) -> Callable[[Request], Response]:
        def serve(request: Request) -> Response:
            if login and identify(src.db, request.headers, request.cookies) is None:
                path = request.url.path
                return RedirectResponse("/login" if path == "/" else f"/login?next={quote(path)}", status_code=303)
            return FileResponse(STATIC / name, headers={"Cache-Control": "no-store"})

        return serve

    app.add_api_route("/", page("index.html"), methods=["GET"], include_in_schema=False)
    app.add_api_route("/bay/{bay}", page("bay.html"), methods=["GET"], include_in_schema=False)
    app.add_api_route("/admin", page("admin.html"), methods=["GET"], include_in_schema=False)
    app.add_api_route("/sessions", page("sessions.html"), methods=["GET"], include_in_schema=False)
    app.add_api_route("/sessions/{session_id}", page("review.html"), methods=["GET"], include_in_schema=False)
    app.add_api_route("/patients/{patient_id}", page("series.html"), methods=["GET"], include_in_schema=False)
    app.add_api_route("/login", page("login.html", login=False), methods=["GET"], include_in_schema=False)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    if UPLOT.is_dir():
        app.mount("/vendor/uplot", StaticFiles(directory=UPLOT), name="uplot")
    else:
        log.error("uPlot not found at %s: run `make venv` (npm ci); the page will show no trends", UPLOT)
    return app


def _batch(texts: list[str]) -> str:
    """Several encoded items as one message, `{"type": "batch", "items": [...]}`, without decoding them."""
    return '{"type":"batch","items":[' + ",".join(texts) + "]}"


def _queued(queue: asyncio.Queue[LiveItem], texts: EncodedItems, most: int = 1000) -> list[str]:
    """The text of what is in `queue` now (up to `most` items), without waiting."""
    out: list[str] = []
    while len(out) < most:
        try:
            out.append(texts.text(queue.get_nowait()))
        except asyncio.QueueEmpty:
            break
    return out


async def _drain(ws: WebSocket) -> None:
    """Read (and ignore) what the client sends, so a disconnect is noticed even when nothing is being sent."""
    try:
        while True:
            await ws.receive_text()
    except (WebSocketDisconnect, RuntimeError):
        return
