"""Codec for MQTT numerics in schema `bedside/v1` (../shared/ARCHITECTURE.md, "Names on the wire").

Every numerics message is validated against the published JSON Schema (drivers/schemas/bedside-v1.schema.json):
by jsonschema-rs (compiled, about 1 us a message), and a message it rejects is explained by jsonschema (its best
error; jsonschema has the last word, so the two cannot disagree into a rejected valid message).
A device (or a bedside gateway, monitor/gateway.py) publishes `{"ts": ISO 8601 or Unix seconds, "seq": int,
"values": {vital: number | null}, "status": {vital: condition}, "device_status": [condition, ...]}` to
`bedside/v1/<site>/dev/<device_id>/numerics` and its presence (`online` / `offline`, retained, last will
`offline`) to `.../state`. A null value is no reading plus "no data" for that vital; a `status` entry is a
device-reported technical condition of that vital, a `device_status` entry one of the whole device (vital None).
Each message lists every condition active now: one it no longer lists has ended. Sans-I/O: payload bytes in,
events out.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from pathlib import Path

import jsonschema_rs
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from drivers.codec import CodecStats, ConditionKey, ConditionTracker, reject
from monitor.model import Condition, DeviceCondition, DeviceEvent, Reading
from monitor.vitals import is_plausible

SCHEMA = "bedside/v1"
SCHEMA_FILE = Path(__file__).parent / "schemas" / "bedside-v1.schema.json"
_SCHEMA = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
_VALIDATOR = Draft202012Validator(_SCHEMA)
_FAST = jsonschema_rs.validator_for(_SCHEMA)


def numerics_topic(site: str, device_id: str) -> str:
    return f"{SCHEMA}/{site}/dev/{device_id}/numerics"


def state_topic(site: str, device_id: str) -> str:
    return f"{SCHEMA}/{site}/dev/{device_id}/state"


class MqttNumericsCodec:
    """Decodes one device's numerics and presence messages."""

    name = "mqtt"

    def __init__(self) -> None:
        self.stats = CodecStats()
        self._conditions = ConditionTracker()
        self._last_seq: int | None = None

    def presence(self, payload: bytes) -> list[DeviceEvent]:
        """A state-topic message: `offline` (or the last will) means the device is lost."""
        text = payload.decode("utf-8", "replace").strip().lower()
        if text not in ("online", "offline"):
            reject(self.stats, self.name, payload, "presence is neither online nor offline")
            return []
        return [DeviceCondition(Condition.DEVICE_LOST, text == "offline", None, "device reported offline")]

    def numerics(self, payload: bytes) -> list[DeviceEvent]:
        """A numerics message; a malformed one is counted, logged and yields nothing."""
        try:
            msg = json.loads(payload)
        except (ValueError, RecursionError):
            reject(self.stats, self.name, payload, "not JSON")
            return []
        why = _invalid(msg)
        if why:
            reject(self.stats, self.name, payload, why)
            return []
        assert isinstance(msg, dict)
        when = _timestamp(msg["ts"])
        if when is None:
            reject(self.stats, self.name, payload, "ts is not ISO 8601 or Unix seconds")
            return []
        self.stats.frames += 1
        self._last_seq = msg["seq"]

        present: dict[ConditionKey, str] = {}
        for vital, cond in msg.get("status", {}).items():
            present[(Condition(cond), vital)] = f"device reports {cond}"
        for cond in msg.get("device_status", []):
            present[(Condition(cond), None)] = f"device reports {cond}"
        readings: list[DeviceEvent] = []
        for vital, value in msg["values"].items():
            if value is None:
                if not any(k[1] == vital for k in present):
                    present[(Condition.NO_DATA, vital)] = "device sent no value"
            elif not math.isfinite(value) or not is_plausible(vital, value):
                present[(Condition.INVALID_VALUE, vital)] = f"{value!r} is not a possible value"
            else:
                readings.append(Reading(vital, float(value), when, msg.get("replayed") is True))
        return [*self._conditions.update(present), *readings]


def _invalid(msg: object) -> str:
    """Why `msg` does not follow the published schema, or "" when it does."""
    try:
        if _FAST.is_valid(msg):
            return ""
    except (ValueError, OverflowError, RecursionError):  # a value it cannot take (an int beyond 64 bits, NaN)
        pass
    error = best_match(_VALIDATOR.iter_errors(msg))
    if error is None:
        return ""
    where = "/".join(str(p) for p in error.absolute_path) or "message"
    return f"{where}: {error.message}"[:200]


def _timestamp(ts: object) -> float | None:
    if isinstance(ts, int | float) and not isinstance(ts, bool):
        return float(ts) if math.isfinite(ts) else None
    if isinstance(ts, str):
        try:
            parsed = datetime.fromisoformat(ts.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed.timestamp() if parsed.tzinfo is not None else None
    return None
