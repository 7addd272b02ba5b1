"""The error responses of the HTTP API, as its OpenAPI schema documents them: every error is JSON `{"detail": …}`
with the reason (a string; for a refused discharge an object with the reason and what is unmet), never the input;
and `STRICT`, the one configuration of every request body, which decides what is a 422.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

# Every request body: no field the model does not name, no NaN or infinity, and no coercion, so that what the client
# sent is what the handler gets, or a 422 says why. Found by schemathesis: without `strict`, `{"value": false}` set a
# baseline of 0 (JSON false taken for the number 0), and "97" passed for 97.
STRICT = ConfigDict(strict=True, allow_inf_nan=False, extra="forbid")


class Problem(BaseModel):
    """Why a request was not carried out."""

    detail: str | dict[str, Any]


def _problem(description: str) -> dict[str, Any]:
    return {"model": Problem, "description": description}


# every endpoint (FastAPI(responses=...)); 422 replaces FastAPI's own, which describes a body this app never sends
ERRORS: dict[int | str, dict[str, Any]] = {
    400: _problem("A request that cannot be carried out; the reason says why"),
    401: _problem("No login session or bearer token, or one that is not accepted"),
    403: _problem("The role does not allow it, or the CSRF or origin check failed"),
    404: _problem("No such bay, alarm, session, patient, user or token"),
    409: _problem("Not allowed now: a session step out of turn, a bay already in use, a session still open"),
    422: _problem("A malformed request: where and what is wrong"),
}
# login and logout
NOT_JSON: dict[int | str, dict[str, Any]] = {415: _problem("Not sent as JSON (Content-Type: application/json)")}
RATE_LIMITED: dict[int | str, dict[str, Any]] = {429: _problem("Too many failed logins; Retry-After says when to "
                                                               "try again")}
