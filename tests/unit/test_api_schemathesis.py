"""Schemathesis over the HTTP API's own OpenAPI schema: property-based requests to every operation, valid and
invalid, sent in-process to the ASGI app of the real service (the `world` fixture) as an admin (the role that may
call every operation). No request may get a server error (5xx): a bad request gets a 4xx with a reason.

The schema is the one the app serves at GET /api/openapi.json (checked below); it is read at import, from an app
with nothing behind it, because schemathesis makes one test per operation when the module is collected (its
fixture-based loader does not work with this pytest). Each operation then runs against a fresh `world`, so what
one operation does (a user created, a session deleted) cannot change what another one meets.

Generated path parameters would name nothing that exists (404 after 404), so two examples in three name what the
`known` fixture put in the world: bay1 with an active alarm, a user, the viewer's token, a closed and an open
session. No operation is excluded; the destructive ones cannot break the run: each operation has its own world;
DELETE /api/tokens/{id} is given the viewer's token, never the admin's (the admin token is asserted valid after
every request, so that a run of 401s could not pass for a clean one); DELETE /api/users/{name} and
/api/sessions/{id} remove the known user and closed session once, then meet 404s; POST /api/logout ends a login
cookie, and these requests carry none. POST /api/login with wrong passwords soon meets the login rate limit (429).

Bounded here (a few examples per operation); `make fuzz` runs it at length (BEDSIDE_API_FUZZ_EXAMPLES).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis import Case
from schemathesis.checks import positive_data_acceptance

from alerts.engine import AlarmEngine
from dashboard.app import LiveSources, create_app
from dashboard.sessions_api import STEP_BODIES
from monitor import db
from monitor.broadcast import Broadcast
from monitor.hub import Hub
from monitor.model import LiveItem, Reading
from monitor.sqlite_store import SQLiteStore
from monitor.tokens import token_id_of, token_identity
from monitor.users import add_user
from tests.unit.conftest import World, bearer
from tests.unit.test_sessions_api import ADMIT

EXAMPLES = int(os.environ.get("BEDSIDE_API_FUZZ_EXAMPLES", "8"))


def _served_schema() -> dict[str, Any]:
    """The OpenAPI document of the app's routes (it depends on nothing else)."""
    with tempfile.TemporaryDirectory() as tmp:
        conn = db.connect(Path(tmp))
        store = SQLiteStore(Path(tmp))
        try:
            document: dict[str, Any] = create_app(LiveSources("schema", Hub([]), AlarmEngine([]),
                                                              Broadcast[LiveItem](), conn, store)).openapi()
        finally:
            store.close()
            conn.close()
    return document


OPENAPI = _served_schema()
schema = schemathesis.openapi.from_dict(OPENAPI)


def test_the_schema_is_what_the_app_serves(world: World) -> None:
    client, _, tokens = world
    served = client.get("/api/openapi.json", headers=bearer(tokens, "viewer"))
    assert served.status_code == 200 and served.json() == OPENAPI
    assert set(OPENAPI["paths"]) >= {"/api/bays", "/api/users/{name}", "/api/sessions/{session_id}/{step}"}
    assert sum(1 for _ in schema.get_all_operations()) == sum(len(ops) for ops in OPENAPI["paths"].values()) >= 30
    assert OPENAPI["paths"]["/api/bays/{bay}/history"]["get"]["responses"]["422"]["content"]["application/json"] \
        == {"schema": {"$ref": "#/components/schemas/Problem"}}  # this app's errors, not FastAPI's default shape


@pytest.fixture
def known(world: World, clock: list[float]) -> dict[str, dict[str, str]]:
    """Things that exist in the world, to put in the requests' paths: a bay with an active alarm, a user, a token
    (not the admin's), a closed session with readings and an open one, each with its patient."""
    _, src, tokens = world
    assert src.actions is not None
    for _ in range(30):
        clock[0] += 1
        src.hub.ingest("ox1", Reading("spo2", 96), clock[0])
        src.hub.ingest("ox1", Reading("pr", 70), clock[0])
    closed = src.actions.admit("bay1", "admin one", dict(ADMIT, patient_id="P-1"))
    clock[0] += 60
    src.hub.ingest("ox1", Reading("spo2", 78), clock[0])  # below the desat floor: an alarm at once
    src.actions.session_step(closed.id, "admin one", "end", {"reason": "fuzzing"})
    opened = src.actions.admit("bay1", "admin one", dict(ADMIT, patient_id="P-2"))
    add_user(src.db, "ann", "nurse", "a long enough password")
    common = {"bay": "bay1", "vital": "spo2", "alarm_id": "spo2_low", "name": "ann",
              "token_id": token_id_of(tokens["viewer"])}
    return {"closed": {**common, "session_id": closed.id, "patient_id": "P-1"},
            "open": {**common, "session_id": opened.id, "patient_id": "P-2"}}


@schema.parametrize()
@schema.given(pick=st.sampled_from(["generated", "closed", "open"]), step=st.sampled_from(sorted(STEP_BODIES)))
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_no_request_gets_a_server_error_and_every_response_is_as_documented(
        case: Case, pick: str, step: str, world: World, known: dict[str, dict[str, str]]) -> None:
    """Path parameters as generated (mostly unknown: 404s and 422s), or, two times in three, naming what exists
    (so that the handlers' own checks and the service behind them are reached too).

    Every check of schemathesis but one: no 5xx; status codes, content types, headers and bodies as the schema
    documents them (dashboard/problems.py); schema-violating requests refused. Left out: that every schema-valid
    request is accepted, since a well-formed request may name what does not exist (404), ask what cannot be done
    (400: an unknown role, a limit out of range) or come at the wrong time (409), as the API documents."""
    client, src, tokens = world
    if pick != "generated" and case.path_parameters:
        case.path_parameters = {k: {**known[pick], "step": step}.get(k, v) for k, v in case.path_parameters.items()}
    case.call_and_validate(headers=bearer(tokens, "admin"), app=client.app,
                           excluded_checks=[positive_data_acceptance])
    assert token_identity(src.db, tokens["admin"]) is not None  # still an admin's requests: the run tests them


def test_a_bool_or_a_string_is_not_a_number(world: World) -> None:
    """Found by schemathesis: `{"value": false}` set the bay's SpO2 baseline to 0 (pydantic read JSON false as 0)."""
    client, _, tokens = world
    url = "/api/bays/bay1/baselines/spo2"
    for bad in (False, True, "97", [97]):
        refused = client.put(url, json={"value": bad}, headers=bearer(tokens, "nurse"))
        assert refused.status_code == 422 and "value" in refused.json()["detail"], bad
    assert client.get("/api/bays/bay1/alarm-settings", headers=bearer(tokens, "viewer")).json()["baselines"] == {}
    assert client.put(url, json={"value": 97}, headers=bearer(tokens, "nurse")).json() == {"baselines": {"spo2": 97.0}}
    pause = client.post("/api/bays/bay1/audio-pause", json={"seconds": True}, headers=bearer(tokens, "nurse"))
    assert pause.status_code == 422
