"""Alarm profiles: named sets of alarm conditions per vital, in TOML, with per-patient overrides.

A profile says, for each vital it watches, its absolute low/high limits and their priorities, the alarm condition
delay and clear hysteresis, limits relative to the patient's own baseline, a fast-rise condition, for SpO2 the
SatSeconds setting and the undelayed desat floor, and after how long a value is no longer current. Built-in
profiles (`ketamine-infusion`, `recovery`, `adult-default`) live as TOML files beside this module, each with its
rationale; a clinic adds its own files (`[alarms] profiles_dir`). docs/alarms.md explains every default.

    name = "ketamine-infusion"
    description = "..."
    baseline_window = 300           # seconds of readings whose median is the baseline, unless one is set
    [vitals.spo2]
    low = 90
    priority = "high"
    satseconds = 25                 # 0 (Off), 10, 25, 50 or 100
    desat_floor = 10                # alarms at once at or below low - 10, whatever the delay or SatSeconds
    [vitals.nibp_sys]
    low = 90
    high = 180
    priority = "high"
    above_baseline = 40             # medium: SBP > baseline + 40
    rise = 30                       # medium: SBP 30 above its lowest reading of the last rise_window s
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from monitor.config import read_toml
from monitor.model import Priority
from monitor.vitals import VITALS

BUILTIN_DIR = Path(__file__).parent / "profiles"
BUILTIN = ("ketamine-infusion", "recovery", "adult-default")

# A value counts as current for this long after its reading (ISO 80601-2-61: SpO2 and pulse rate "not current"
# after 30 s; NIBP is intermittent: 15 min is three missed 5-minute cycles). After it: NOT CURRENT (technical).
DEFAULT_STALE: Mapping[str, float] = {
    **{k: 30.0 for k in VITALS},
    "nibp_sys": 900.0, "nibp_dia": 900.0, "nibp_map": 900.0, "temp": 600.0,
}
NON_CONTINUOUS = frozenset({"nibp_sys", "nibp_dia", "nibp_map"})  # delays do not apply (reference §3.4)

SatSecondsSetting = Literal[0, 10, 25, 50, 100]
LIMIT_FIELDS = ("low", "high", "above_baseline", "below_baseline", "rise", "desat_floor")


class ProfileError(Exception):
    """A profile that cannot be used; the message names the file or profile, the key and what is wrong."""


class _Strict(BaseModel):
    # strict: `low = "90"` or `satseconds = false` in a profile is a mistake to name, not a value to guess
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class VitalAlarms(_Strict):
    """The alarm conditions of one vital."""

    low: float | None = None
    high: float | None = None
    priority: Priority = "medium"
    low_priority: Priority | None = None  # default: priority
    high_priority: Priority | None = None
    delay: float = Field(default=0.0, ge=0, le=30)  # alarm condition delay, s (IEC 60601-1-8 §1.4 of the reference)
    clear_hysteresis: float = Field(default=0.0, ge=0)  # back inside by this much before an alarm ends
    clear_delay: float = Field(default=0.0, ge=0, le=60)  # ... for this long
    above_baseline: float | None = Field(default=None, gt=0)  # alarm when value > baseline + this
    below_baseline: float | None = Field(default=None, gt=0)  # alarm when value < baseline - this
    baseline_priority: Priority = "medium"
    rise: float | None = Field(default=None, gt=0)  # alarm when value >= lowest reading of rise_window + this
    rise_window: float = Field(default=600.0, gt=0, le=3600)
    rise_priority: Priority = "medium"
    satseconds: SatSecondsSetting = 0  # SpO2 low only; 0 = Off
    desat_floor: float | None = Field(default=None, ge=0)  # SpO2 low only: undelayed at low - desat_floor
    stale_after: float | None = Field(default=None, gt=0, le=3600)  # default: DEFAULT_STALE

    @model_validator(mode="after")
    def _consistent(self) -> VitalAlarms:
        if self.low is not None and self.high is not None and self.low >= self.high:
            raise ValueError(f"low ({self.low:g}) must be below high ({self.high:g})")
        if self.low is not None and self.high is not None and \
                self.low + self.clear_hysteresis > self.high - self.clear_hysteresis:
            raise ValueError("clear_hysteresis leaves no value that clears both limits")
        return self

    @property
    def low_prio(self) -> Priority:
        return self.low_priority or self.priority

    @property
    def high_prio(self) -> Priority:
        return self.high_priority or self.priority


class Profile(_Strict):
    """A named alarm profile: the conditions of each vital it watches (a vital not named raises no limit alarm)."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    description: str = ""
    baseline_window: float = Field(default=300.0, gt=0, le=3600)
    vitals: dict[str, VitalAlarms] = Field(default_factory=dict)

    @field_validator("vitals")
    @classmethod
    def _known(cls, vitals: dict[str, VitalAlarms]) -> dict[str, VitalAlarms]:
        for key, alarms in vitals.items():
            if key not in VITALS:
                raise ValueError(f"unknown vital {key!r}; known: {', '.join(VITALS)}")
            v = VITALS[key]
            for name in ("low", "high"):
                limit = getattr(alarms, name)
                if limit is not None and not v.plausible_min <= limit <= v.plausible_max:
                    raise ValueError(f"{key}.{name} = {limit:g} is outside what {key} can be "
                                     f"({v.plausible_min:g}..{v.plausible_max:g})")
            if alarms.satseconds and (alarms.delay or alarms.clear_delay):
                raise ValueError(f"{key}: SatSeconds replaces the alarm delay: give satseconds or delay, not both")
            if key != "spo2" and (alarms.satseconds or alarms.desat_floor is not None):
                raise ValueError(f"{key}: satseconds and desat_floor apply to spo2 only")
            if key in NON_CONTINUOUS and (alarms.delay or alarms.clear_delay):
                raise ValueError(f"{key}: NIBP is not continuous, so alarm delays do not apply to it")
        return vitals

    def stale_after(self, vital: str) -> float:
        alarms = self.vitals.get(vital)
        if alarms is not None and alarms.stale_after is not None:
            return alarms.stale_after
        return DEFAULT_STALE.get(vital, 30.0)

    def with_overrides(self, overrides: Mapping[str, Mapping[str, Any]]) -> Profile:
        """This profile with some fields of some vitals replaced (a patient's own limits); validated again.

        An override changes a limit but never removes one the profile has (no indefinite silencing of a
        physiological alarm, reference §1.6): to watch a patient without it, choose another profile."""
        vitals: dict[str, Any] = {k: v.model_dump(exclude_defaults=True) for k, v in self.vitals.items()}
        for vital, changes in overrides.items():
            if not isinstance(changes, Mapping):
                raise ProfileError(f"{self.name} (overridden): vitals.{vital}: give a table of fields to change")
            have = self.vitals.get(vital)
            for key in LIMIT_FIELDS:
                if key in changes and changes[key] is None and have is not None and getattr(have, key) is not None:
                    raise ProfileError(f"{self.name} (overridden): vitals.{vital}.{key}: an override cannot remove "
                                       f"a limit of the profile; choose another profile for that")
            vitals[vital] = {**vitals.get(vital, {}), **changes}
        return parse_profile({**self.model_dump(exclude={"vitals"}), "vitals": vitals}, f"{self.name} (overridden)")


def _where(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(p) for p in loc) or "(top level)"


def parse_profile(raw: Mapping[str, object], source: str) -> Profile:
    """Validate a parsed profile table; ProfileError names `source`, each bad key and what is wrong with it."""
    try:
        return Profile.model_validate(dict(raw))
    except ValidationError as exc:
        lines = [f"{source}: {_where(e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise ProfileError("invalid alarm profile\n  " + "\n  ".join(lines)) from None


def load_profile_file(path: Path) -> Profile:
    raw = read_toml(path, ProfileError)
    raw.setdefault("name", path.stem)
    return parse_profile(raw, str(path))


def builtin_profiles() -> dict[str, Profile]:
    return {name: load_profile_file(BUILTIN_DIR / f"{name}.toml") for name in BUILTIN}


def load_profiles(directory: Path | None = None) -> dict[str, Profile]:
    """The built-in profiles plus every `*.toml` in `directory` (a file may replace a built-in of its name)."""
    profiles = builtin_profiles()
    if directory is not None:
        if not directory.is_dir():
            raise ProfileError(f"{directory}: alarm profiles directory not found")
        for path in sorted(directory.glob("*.toml")):
            p = load_profile_file(path)
            profiles[p.name] = p
    return profiles


def resolve_profile(name_or_file: str, profiles: Mapping[str, Profile] | None = None) -> Profile:
    """A profile by name (built-in or from `profiles`) or from a TOML file path."""
    known = dict(profiles) if profiles is not None else builtin_profiles()
    if name_or_file in known:
        return known[name_or_file]
    path = Path(name_or_file)
    if path.suffix == ".toml" or path.exists():
        return load_profile_file(path)
    raise ProfileError(f"unknown alarm profile {name_or_file!r}; known: {', '.join(known)} (or a .toml file)")
