"""Scenario files: events at given session times, applied to a simulated patient and a simulated device.

A scenario is a TOML file (examples/scenarios/*.toml), validated with pydantic; an error names the file, the
key and what is wrong (`ScenarioError`, like monitor.config's ConfigError):

    name = "Desaturation during the infusion"      # optional
    description = "..."                             # optional
    seed = 7                                        # optional: default seed for `bedside simulate`

    [[events]]
    at = 60             # seconds after the simulator starts
    duration = 30       # seconds
    kind = "desaturation"
    to = 85             # SpO2 (%) at the bottom; ramps in and out over `ramp` seconds (default 10)

Kinds and their keys (`at` always; `duration` for all but garbage):

- patient (applied to the `PatientModel`, so every device of the bay sees them; ramped like a
  `simulators.patient.Episode`, `ramp` seconds in and out, default 10):
  `desaturation` (`to`, SpO2 %), `hypertension` (`sbp`, `dbp`, mmHg; NIBP mean follows),
  `tachycardia` (`hr` > 100 /min), `bradycardia` (`hr` < 60 /min); heart rate and pulse rate move together.
- sensor (per device, `Conditions`): `sensor_off` (`sensor` = "spo2" (default): the oximetry probe is off,
  then for `search` seconds (default 6) the oximeter searches for a pulse; `sensor` = "co2": the
  capnography sampling line is off), `motion` (noisy oximetry values, interference status where the
  protocol has one).
- link (per device, `simulators.serial_out`): `cable_pulled` (the port side is closed for `duration`, then
  reopened; see serial_out for exactly what a driver sees on a pty, TCP or a serial port), `silent` (the
  device keeps running but nothing is written), `garbage` (`bytes` random bytes written at `at`, in
  addition to the normal output; deterministic for a seed).

An event is active for at <= t < at + duration.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from monitor.config import read_toml
from simulators.patient import Episode, PatientModel
from simulators.serial_out import FrameSource
from simulators.state import Conditions, ValuesSource

DEFAULT_RAMP = 10.0
DEFAULT_SEARCH = 6.0


class ScenarioError(Exception):
    """A scenario file that cannot be used; the message names the file, the key and what is wrong."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Timed(_Strict):
    at: float = Field(ge=0)
    duration: float = Field(gt=0)

    @property
    def end(self) -> float:
        return self.at + self.duration

    def active(self, t: float) -> bool:
        return self.at <= t < self.at + self.duration


class _Ramped(_Timed):
    ramp: float = Field(default=DEFAULT_RAMP, ge=0)


class Desaturation(_Ramped):
    kind: Literal["desaturation"]
    to: float = Field(ge=0, le=100)


class Hypertension(_Ramped):
    kind: Literal["hypertension"]
    sbp: float = Field(gt=0, le=300)
    dbp: float = Field(gt=0, le=250)

    @model_validator(mode="after")
    def _ordered(self) -> Hypertension:
        if self.dbp >= self.sbp:
            raise ValueError(f"dbp ({self.dbp:g}) must be below sbp ({self.sbp:g})")
        return self


class Tachycardia(_Ramped):
    kind: Literal["tachycardia"]
    hr: float = Field(gt=100, le=300)


class Bradycardia(_Ramped):
    kind: Literal["bradycardia"]
    hr: float = Field(gt=0, lt=60)


class SensorOff(_Timed):
    kind: Literal["sensor_off"]
    sensor: Literal["spo2", "co2"] = "spo2"
    search: float = Field(default=DEFAULT_SEARCH, ge=0)  # pulse search after the probe is back (spo2 only)


class Motion(_Timed):
    kind: Literal["motion"]


class CablePulled(_Timed):
    kind: Literal["cable_pulled"]


class Silent(_Timed):
    kind: Literal["silent"]


class Garbage(_Strict):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    kind: Literal["garbage"]
    at: float = Field(ge=0)
    count: int = Field(alias="bytes", ge=1, le=65536)

    @property
    def end(self) -> float:
        return self.at


Event = Annotated[
    Desaturation | Hypertension | Tachycardia | Bradycardia | SensorOff | Motion | CablePulled | Silent | Garbage,
    Field(discriminator="kind"),
]

PATIENT_KINDS = frozenset({"desaturation", "hypertension", "tachycardia", "bradycardia"})
SENSOR_KINDS = frozenset({"sensor_off", "motion"})
LINK_KINDS = frozenset({"cable_pulled", "silent", "garbage"})


class _ScenarioFile(_Strict):
    name: str = ""
    description: str = ""
    seed: int | None = None
    events: list[Event] = Field(default_factory=list)


def _where(loc: tuple[int | str, ...], raw: object) -> str:
    """`events[2].to`: list indices in brackets; the union's tag (the event kind) left out."""
    parts: list[str] = []
    node: object = raw
    skip_tag = False
    for item in loc:
        if isinstance(item, int) and parts:
            parts[-1] = f"{parts[-1]}[{item}]"
            node = node[item] if isinstance(node, list) and item < len(node) else None
            skip_tag = True
            continue
        if skip_tag and isinstance(node, dict) and item == node.get("kind"):
            skip_tag = False
            continue
        skip_tag = False
        parts.append(str(item))
        node = node.get(str(item)) if isinstance(node, dict) else None
    return ".".join(parts) or "(top level)"


@dataclass(frozen=True, slots=True)
class Scenario:
    """A validated scenario. Patient events go to a model (`apply`) or a values source (`transform`); sensor
    events to a device (`conditions`); link events to the serving code (`cable`, `wrap`)."""

    events: tuple[Desaturation | Hypertension | Tachycardia | Bradycardia | SensorOff | Motion | CablePulled
                  | Silent | Garbage, ...]  # fmt: skip
    source: str = "<scenario>"
    name: str = ""
    description: str = ""
    seed: int | None = None

    @property
    def kinds(self) -> frozenset[str]:
        """The kinds of event the scenario uses."""
        return frozenset(e.kind for e in self.events)

    @property
    def end(self) -> float:
        """When the last event ends (0 for no events)."""
        return max((e.end for e in self.events), default=0.0)

    # -- patient ---------------------------------------------------------------------------------------------

    def episodes(self) -> list[Episode]:
        """The patient events as `Episode`s (hypertension also pulls the NIBP mean, HR events also PR)."""
        out: list[Episode] = []
        for e in self.events:
            if isinstance(e, Desaturation):
                out.append(Episode("spo2", e.to, e.at, e.duration, ramp=e.ramp))
            elif isinstance(e, Hypertension):
                mean = e.dbp + (e.sbp - e.dbp) / 3.0
                for vital, value in (("nibp_sys", e.sbp), ("nibp_dia", e.dbp), ("nibp_map", mean)):
                    out.append(Episode(vital, value, e.at, e.duration, ramp=e.ramp))
            elif isinstance(e, Tachycardia | Bradycardia):
                for vital in ("hr", "pr"):
                    out.append(Episode(vital, e.hr, e.at, e.duration, ramp=e.ramp))
        return out

    def apply(self, model: PatientModel) -> None:
        """Add the patient events to `model` (once: applying the same scenario again adds nothing)."""
        have = set(model.episodes)
        model.episodes = model.episodes + tuple(ep for ep in self.episodes() if ep not in have)

    def transform(self, values: ValuesSource) -> ValuesSource:
        """`values` with the patient events pulled in (for a replayed trace); None stays None."""
        episodes = self.episodes()

        def pulled(t: float) -> Mapping[str, float | None]:
            out = dict(values(t))
            for ep in episodes:
                w = ep.weight(t)
                current = out.get(ep.vital)
                if w > 0 and current is not None:
                    out[ep.vital] = current + w * (ep.value - current)
            return out

        return pulled

    # -- sensor ----------------------------------------------------------------------------------------------

    def conditions(self, t: float) -> Conditions:
        """The sensor conditions at session time `t`."""
        sensor_off = pulse_search = motion = co2_off = False
        for e in self.events:
            if isinstance(e, SensorOff):
                if e.active(t):
                    if e.sensor == "spo2":
                        sensor_off = True
                    else:
                        co2_off = True
                elif e.sensor == "spo2" and e.end <= t < e.end + e.search:
                    pulse_search = True
            elif isinstance(e, Motion) and e.active(t):
                motion = True
        return Conditions(sensor_off=sensor_off, pulse_search=pulse_search and not sensor_off, motion=motion,
                          co2_off=co2_off)  # fmt: skip

    # -- link ------------------------------------------------------------------------------------------------

    def cable(self, t: float) -> bool:
        """True while the cable is plugged in at `t` (False during a `cable_pulled`)."""
        return not any(isinstance(e, CablePulled) and e.active(t) for e in self.events)

    def silent(self, t: float) -> bool:
        """True while the device writes nothing."""
        return any(isinstance(e, Silent) and e.active(t) for e in self.events)

    def garbage(self, after: float, until: float) -> bytes:
        """The random bytes of every `garbage` event with after < at <= until, in order (seeded by the
        scenario's seed, else 0, and the event's index)."""
        seed = self.seed if self.seed is not None else 0
        out = b""
        for i, e in enumerate(self.events):
            if isinstance(e, Garbage) and after < e.at <= until:
                rng = np.random.default_rng([abs(seed), i])
                out += rng.integers(0, 256, e.count, dtype=np.uint8).tobytes()
        return out

    def wrap(self, frames: FrameSource) -> FrameSource:
        """`frames` with the `silent` and `garbage` events: output dropped while silent; garbage written at
        the first tick at or after its time (before that tick's frame). The device keeps running throughout."""
        last = [-math.inf]

        def wrapped(t: float, when: datetime) -> bytes:
            data = frames(t, when)
            noise = self.garbage(last[0], t)
            last[0] = t
            if self.silent(t):
                data = b""
            return noise + data

        return wrapped


def parse_scenario(raw: Mapping[str, object], source: str = "<scenario>") -> Scenario:
    """Validate a parsed TOML table; ScenarioError names `source`, each bad key and what is wrong with it."""
    try:
        parsed = _ScenarioFile.model_validate(raw)
    except ValidationError as exc:
        lines = []
        for e in exc.errors():
            where = _where(tuple(e["loc"]), raw)
            if e["type"] in ("union_tag_invalid", "union_tag_not_found"):
                where += ".kind"
            lines.append(f"{source}: {where}: {e['msg']}")
        raise ScenarioError("invalid scenario\n  " + "\n  ".join(lines)) from None
    events = tuple(sorted(parsed.events, key=lambda e: e.at))
    return Scenario(events, source, parsed.name, parsed.description, parsed.seed)


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario TOML file."""
    p = Path(path)
    return parse_scenario(read_toml(p, ScenarioError), str(p))
