"""A bedside monitor simulator that publishes a `PatientModel`'s vitals over MQTT in the bedside/v1 schema.

Topics (shared/ARCHITECTURE.md, "Names on the wire"):

- `bedside/v1/<site>/dev/<device_id>/numerics`, QoS 1, not retained, one JSON object per interval:
  `{"ts": "2025-01-02T03:04:05.678Z", "seq": 0, "values": {"hr": 72.0, "spo2": null, ...},
  "status": {"spo2": "sensor_off"}}` (`status` only when a vital has a technical condition);
- `bedside/v1/<site>/dev/<device_id>/state`, QoS 1, retained: `online` after connecting, `offline` as the last
  will and on a clean shutdown.

The monitor publishes hr, pr, spo2, rr, etco2 and temp every interval and nibp_sys/nibp_dia/nibp_map only when
its NIBP cuff has cycled. `seq` counts from 0 for the life of `run_mqtt_simulator` (it does not restart on a
reconnect), so a subscriber can drop QoS 1 duplicates. On broker loss it reconnects with a backoff doubling from
0.5 s to 5 s; numerics due while disconnected are not sent.

`python -m simulators.mqtt_monitor --host H --port P --site S --device D` runs one from the command line.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import re
import time
from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime

import aiomqtt

from monitor.model import Condition
from monitor.mqtt_socket import NODELAY
from monitor.vitals import VITALS
from simulators.patient import NibpCuff, PatientModel
from simulators.serial_out import wait_or_stop

TOPIC_ROOT = "bedside/v1"
CONTINUOUS_VITALS: tuple[str, ...] = ("hr", "pr", "spo2", "rr", "etco2", "temp")
NIBP_VITALS: tuple[str, ...] = ("nibp_sys", "nibp_dia", "nibp_map")
BACKOFF_FIRST = 0.5
BACKOFF_MAX = 5.0

_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # the id pattern of monitor.config
_CONDITIONS = frozenset(c.value for c in Condition)
_log = logging.getLogger(__name__)


def _check_id(kind: str, value: str) -> str:
    if not _ID.fullmatch(value):
        raise ValueError(f"{kind} {value!r} must be 1-64 letters, digits, '_' or '-'")
    return value


def numerics_topic(site: str, device_id: str) -> str:
    """`bedside/v1/<site>/dev/<device_id>/numerics`."""
    return f"{TOPIC_ROOT}/{_check_id('site', site)}/dev/{_check_id('device_id', device_id)}/numerics"


def state_topic(site: str, device_id: str) -> str:
    """`bedside/v1/<site>/dev/<device_id>/state`."""
    return f"{TOPIC_ROOT}/{_check_id('site', site)}/dev/{_check_id('device_id', device_id)}/state"


def format_ts(when: datetime) -> str:
    """`when` in UTC as ISO 8601 with milliseconds (truncated) and `Z`; a naive `when` is taken as UTC."""
    utc = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}Z"


def numerics_payload(
    values: Mapping[str, float | None],
    seq: int,
    when: datetime,
    status: Mapping[str, str] | None = None,
) -> bytes:
    """The UTF-8 JSON numerics message: `ts`, `seq`, `values` and, if given and not empty, `status`.

    Values are rounded to 1 decimal; None (and NaN or infinity, which JSON cannot carry) become null. Every key
    must be a vital of the catalogue and every status a `monitor.model.Condition` value, else ValueError. The
    caller decides which keys appear (e.g. NIBP only when the cuff cycled).
    """
    if seq < 0:
        raise ValueError(f"seq must be >= 0, got {seq}")
    out: dict[str, float | None] = {}
    for key, value in values.items():
        if key not in VITALS:
            raise ValueError(f"unknown vital {key!r}")
        out[key] = round(float(value), 1) if value is not None and math.isfinite(value) else None
    message: dict[str, object] = {"ts": format_ts(when), "seq": seq, "values": out}
    if status:
        for key, condition in status.items():
            if key not in VITALS:
                raise ValueError(f"unknown vital {key!r} in status")
            if condition not in _CONDITIONS:
                raise ValueError(f"unknown condition {condition!r} for {key}; known: {', '.join(_CONDITIONS)}")
        message["status"] = dict(status)
    return json.dumps(message, separators=(",", ":"), allow_nan=False).encode("utf-8")


def monitor_values(
    model: PatientModel,
    t: float,
    cuff: NibpCuff | None = None,
    faults: Mapping[str, str] | None = None,
) -> tuple[dict[str, float | None], dict[str, str]]:
    """The (values, status) a simulated monitor reports at session time `t`.

    Continuous vitals always; NIBP when `cuff.due(t)` (this marks the cycle reported); a vital in `faults`
    ({vital: condition}) is reported as None with that condition in status.
    """
    sample = model.sample(t)
    keys = CONTINUOUS_VITALS + (NIBP_VITALS if cuff is not None and cuff.due(t) else ())
    values: dict[str, float | None] = {k: sample[k] for k in keys}
    status: dict[str, str] = {}
    for key, condition in (faults or {}).items():
        values[key] = None
        status[key] = condition
    return values, status


async def run_mqtt_simulator(
    host: str,
    port: int,
    site: str,
    device_id: str,
    model: PatientModel,
    *,
    interval: float = 1.0,
    stop: asyncio.Event | None = None,
    clock: Callable[[], float] = time.time,
    nibp_interval: float = 180.0,
    faults: Callable[[float], Mapping[str, str]] | None = None,
    vitals: Collection[str] | None = None,
) -> None:
    """Publish presence and numerics for `model` every `interval` s until cancelled or `stop` is set.

    `vitals` limits what the monitor measures (e.g. no SpO2 when a separate oximeter watches the patient).

    Session time t = clock() - clock() at the start; `ts` is clock() in UTC. `faults(t)` gives the vitals with
    a technical condition at t ({vital: condition}). When stopped or cancelled while connected, it publishes
    retained `offline` before disconnecting. A broker that is down or goes away is retried with a backoff of
    0.5 s doubling to 5 s.
    """
    if not interval > 0:
        raise ValueError(f"interval must be > 0 s, got {interval}")
    numerics = numerics_topic(site, device_id)
    state = state_topic(site, device_id)
    cuff = NibpCuff(nibp_interval)
    loop = asyncio.get_running_loop()
    start = clock()
    seq = 0
    backoff = BACKOFF_FIRST
    while stop is None or not stop.is_set():
        client = aiomqtt.Client(
            host,
            port,
            identifier=f"bedside-sim-{site}-{device_id}",
            will=aiomqtt.Will(state, b"offline", qos=1, retain=True),
            timeout=5.0,
            socket_options=NODELAY,
        )
        try:
            async with client:
                await client.publish(state, b"online", qos=1, retain=True)
                backoff = BACKOFF_FIRST
                try:
                    next_tick = loop.time()
                    while True:
                        now = clock()
                        t = now - start
                        values, status = monitor_values(model, t, cuff, faults(t) if faults else None)
                        if vitals is not None:
                            values = {k: v for k, v in values.items() if k in vitals}
                            status = {k: c for k, c in status.items() if k in vitals}
                        payload = numerics_payload(values, seq, datetime.fromtimestamp(now, UTC), status)
                        seq += 1
                        await client.publish(numerics, payload, qos=1)
                        next_tick = max(next_tick + interval, loop.time())
                        if await wait_or_stop(stop, next_tick - loop.time()):
                            break
                except asyncio.CancelledError:
                    with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
                        await client.publish(state, b"offline", qos=1, retain=True, timeout=1.0)
                    raise
                await client.publish(state, b"offline", qos=1, retain=True)
                return
        except aiomqtt.MqttError as exc:
            _log.info("mqtt simulator %s: broker %s:%d: %s; retrying in %.1f s", device_id, host, port, exc, backoff)
            if await wait_or_stop(stop, backoff):
                return
            backoff = min(backoff * 2.0, BACKOFF_MAX)
