"""The dashboard's FastAPI app: health, login, the bays API, alarm actions, the live websocket and the page.

Every endpoint but `/api/health`, the login page and the static assets (which hold no patient data) needs a
token: a bearer header for API clients, the HttpOnly login cookie for the page. Alarm actions (acknowledge, audio
pause, alarm settings, baselines) need the nurse role; the server enforces it. They only *ask*: the engine owns
the alarm lifecycle, and the service audits who asked and when.
"""


import asyncio
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Protocol
from urllib.parse import urlsplit

from fastapi import Depends, FastAPI, HTTPException, Request, Response, WebSocket, WebSocketDisconnect
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field

from alerts.engine import AlarmEngine
from alerts.profile import ProfileError
from dashboard.auth import COOKIE, allows, identity_of, request_token, role_of
from dashboard.live import item_json, snapshot
from monitor.broadcast import Broadcast
from monitor.hub import Hub
from monitor.model import AlarmEvent, LiveItem
from monitor.recorder import Recorder
from monitor.tokens import Role

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
UPLOT = Path(__file__).parent / "node_modules" / "uplot" / "dist"
HEARTBEAT = 2.0  # seconds of quiet after which the server sends a heartbeat (the page treats 5 s of silence as lost)
SEND_TIMEOUT = 10.0  # a client that cannot take a message for this long is disconnected (it resyncs on reconnect)

CSP = "default-src 'self'; connect-src 'self'; img-src 'self' data:; object-src 'none'; frame-ancestors 'none'"


class AlarmActions(Protocol):
    """What a user may ask of the alarm system (monitor.service.Service implements it, auditing each request).
    KeyError: no such bay or alarm; ValueError / ProfileError: a request that cannot be carried out."""

    def acknowledge(self, bay: str, alarm_id: str, who: str) -> list[AlarmEvent]: ...
    def pause_audio(self, bay: str, who: str, seconds: float | None = None) -> list[AlarmEvent]: ...
    def resume_audio(self, bay: str, who: str) -> list[AlarmEvent]: ...
    def alarm_settings(self, bay: str) -> dict[str, Any]: ...
    def set_alarm_settings(self, bay: str, who: str, profile: str | None = None,
                           overrides: dict[str, dict[str, Any]] | None = None) -> list[AlarmEvent]: ...
    def set_baseline(self, bay: str, vital: str, value: float | None, who: str) -> None: ...


@dataclass(slots=True)
class LiveSources:
    """What the dashboard reads, and the actions it may ask for. Built by the service."""

    site: str
    hub: Hub
    engine: AlarmEngine
    broadcast: Broadcast[LiveItem]
    db: sqlite3.Connection
    recorder: Recorder | None = None
    actions: AlarmActions | None = None


class LoginRequest(BaseModel):
    token: str


class PauseRequest(BaseModel):
    model_config = ConfigDict(allow_inf_nan=False)
    seconds: float | None = Field(default=None, gt=0)


class AlarmSettingsRequest(BaseModel):
    model_config = ConfigDict(allow_inf_nan=False)
    profile: str | None = None
    overrides: dict[str, dict[str, Any]] | None = None


class BaselineRequest(BaseModel):
    model_config = ConfigDict(allow_inf_nan=False)
    value: float | None


def _events_json(events: list[AlarmEvent]) -> dict[str, Any]:
    return {"events": [item_json(e) for e in events]}


def create_app(src: LiveSources) -> FastAPI:
    app = FastAPI(title="bedside", version="0.1.0", docs_url=None, redoc_url=None)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        """422 with the reason and where, never echoing the input (a NaN in it could not even be written)."""
        reasons = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', 'invalid')}" for e in exc.errors()]
        return JSONResponse({"detail": "; ".join(reasons)}, status_code=422)

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    def need(role: Role) -> Callable[[Request], Role]:
        def check(request: Request) -> Role:
            have = role_of(src.db, request_token(request.headers, request.cookies))
            if have is None:
                raise HTTPException(401, "login or bearer token required", {"WWW-Authenticate": "Bearer"})
            if not allows(have, role):
                raise HTTPException(403, f"needs role {role}")
            return have

        return check

    Viewer = Annotated[Role, Depends(need("viewer"))]

    def who(request: Request) -> str:
        """The nurse (or admin) asking; 401/403 otherwise."""
        ident = identity_of(src.db, request_token(request.headers, request.cookies))
        if ident is None:
            raise HTTPException(401, "login or bearer token required", {"WWW-Authenticate": "Bearer"})
        if not allows(ident[0], "nurse"):
            raise HTTPException(403, "needs role nurse")
        return ident[1]

    Nurse = Annotated[str, Depends(who)]

    def acting() -> AlarmActions:
        if src.actions is None:
            raise HTTPException(503, "alarm actions are not available on this server")
        return src.actions

    def attempt(call: Callable[[], Any]) -> Any:
        try:
            return call()
        except KeyError as exc:
            raise HTTPException(404, str(exc.args[0]) if exc.args else "not found") from None
        except (ValueError, ProfileError) as exc:
            raise HTTPException(400, str(exc)) from None

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
        return body

    @app.get("/api/bays")
    async def bays(_: Viewer) -> dict[str, Any]:
        return snapshot(src.site, src.hub, src.engine, time.time())

    @app.post("/api/bays/{bay}/alarms/{alarm_id}/acknowledge")
    async def acknowledge(bay: str, alarm_id: str, user: Nurse) -> dict[str, Any]:
        return _events_json(attempt(lambda: acting().acknowledge(bay, alarm_id, user)))

    @app.post("/api/bays/{bay}/audio-pause")
    async def pause_audio(bay: str, body: PauseRequest, user: Nurse) -> dict[str, Any]:
        return _events_json(attempt(lambda: acting().pause_audio(bay, user, body.seconds)))

    @app.post("/api/bays/{bay}/audio-resume")
    async def resume_audio(bay: str, user: Nurse) -> dict[str, Any]:
        return _events_json(attempt(lambda: acting().resume_audio(bay, user)))

    @app.get("/api/bays/{bay}/alarm-settings")
    async def alarm_settings(bay: str, _: Viewer) -> dict[str, Any]:
        result: dict[str, Any] = attempt(lambda: acting().alarm_settings(bay))
        return result

    @app.put("/api/bays/{bay}/alarm-settings")
    async def set_alarm_settings(bay: str, body: AlarmSettingsRequest, user: Nurse) -> dict[str, Any]:
        events = attempt(lambda: acting().set_alarm_settings(bay, user, body.profile, body.overrides))
        return {**_events_json(events), "settings": acting().alarm_settings(bay)}

    @app.put("/api/bays/{bay}/baselines/{vital}")
    async def set_baseline(bay: str, vital: str, body: BaselineRequest, user: Nurse) -> dict[str, Any]:
        attempt(lambda: acting().set_baseline(bay, vital, body.value, user))
        return {"baselines": acting().alarm_settings(bay)["baselines"]}

    @app.post("/api/login")
    async def login(body: LoginRequest, request: Request) -> JSONResponse:
        role = role_of(src.db, body.token)
        if role is None:
            raise HTTPException(401, "token not accepted")
        response = JSONResponse({"role": role})
        response.set_cookie(COOKIE, body.token, httponly=True, samesite="strict",
                            secure=request.url.scheme == "https", max_age=12 * 3600)
        return response

    @app.post("/api/logout")
    async def logout() -> JSONResponse:
        response = JSONResponse({"ok": True})
        response.delete_cookie(COOKIE)
        return response

    @app.websocket("/ws/live")
    async def live(ws: WebSocket) -> None:
        role = role_of(src.db, request_token(ws.headers, ws.cookies))
        origin = ws.headers.get("origin")
        if role is None or (origin is not None and urlsplit(origin).netloc != ws.headers.get("host")):
            await ws.close(code=1008)  # before accept: the handshake is refused with 403
            return
        await ws.accept()
        with src.broadcast.subscribe() as sub:
            await ws.send_json({"type": "snapshot", **snapshot(src.site, src.hub, src.engine, time.time())})
            reader = asyncio.create_task(_drain(ws))
            try:
                while not reader.done():
                    get = asyncio.create_task(sub.queue.get())
                    overflow = asyncio.create_task(sub.overflowed.wait())
                    done, _ = await asyncio.wait({get, overflow, reader}, timeout=HEARTBEAT,
                                                 return_when=asyncio.FIRST_COMPLETED)
                    for task in (get, overflow):
                        if task not in done:
                            task.cancel()
                    if not done:  # quiet: tell the page we are alive, so it can tell silence from a dead link
                        await asyncio.wait_for(ws.send_json({"type": "heartbeat", "server_time": time.time()}),
                                               SEND_TIMEOUT)
                    if overflow in done:
                        await ws.close(code=1013, reason="too slow; reconnect to resynchronise")
                        return
                    if get in done:
                        await asyncio.wait_for(ws.send_json(item_json(get.result())), SEND_TIMEOUT)
            except (WebSocketDisconnect, TimeoutError, RuntimeError):
                pass
            finally:
                reader.cancel()

    def page(name: str) -> Callable[[Request], Response]:
        def serve(request: Request) -> Response:
            if name == "index.html" and role_of(src.db, request_token(request.headers, request.cookies)) is None:
                return RedirectResponse("/login", status_code=303)
            return FileResponse(STATIC / name, headers={"Cache-Control": "no-store"})

        return serve

    app.add_api_route("/", page("index.html"), methods=["GET"], include_in_schema=False)
    app.add_api_route("/login", page("login.html"), methods=["GET"], include_in_schema=False)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    if UPLOT.is_dir():
        app.mount("/vendor/uplot", StaticFiles(directory=UPLOT), name="uplot")
    else:
        log.error("uPlot not found at %s: run `make venv` (npm ci); the page will show no trends", UPLOT)
    return app


async def _drain(ws: WebSocket) -> None:
    """Read (and ignore) what the client sends, so a disconnect is noticed even when nothing is being sent."""
    try:
        while True:
            await ws.receive_text()
    except (WebSocketDisconnect, RuntimeError):
        return
