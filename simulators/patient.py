"""A deterministic model of one patient's vital signs during an outpatient ketamine-infusion session.

`PatientModel(seed)` draws the patient's baselines from realistic adult resting ranges and their response to the
infusion, and `sample(t)` gives every simulated vital at `t` seconds after the session started:

- slow drift: a smoothed random process per vital (Catmull-Rom interpolation of random knots, one octave with
  knots every 10 min and one every 1 min), plus white measurement noise;
- ketamine: systolic and diastolic pressure and heart rate rise smoothly from the infusion start to a peak at
  about the infusion end (default 40 min; +16/+11 mmHg and +10/min on average, different for each patient),
  then return towards baseline (Gaussian decay, `recovery_minutes` wide);
- overrides: `set_override("spo2", 85.0)` forces a value until cleared, for scenarios such as a desaturation.

Determinism: the knots and the noise are drawn from `numpy.random.Generator`s seeded by (seed, knot index) and
(seed, time in milliseconds), so `sample(t)` is a pure function of the seed, `t` and the active overrides. Calls
may come in any order and several device simulators may share one model; each call costs O(1).

NIBP: `sample` always gives the continuous blood pressure (what an arterial line would show). A cuff only
measures it at its cycles; `NibpCuff.due(t)` tells a device simulator when to report `nibp_*`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

VITAL_KEYS: tuple[str, ...] = ("hr", "pr", "spo2", "nibp_sys", "nibp_dia", "nibp_map", "rr", "etco2", "temp", "pi")
"""The vitals `PatientModel.sample` gives (keys of monitor.vitals' catalogue)."""

# Resting ranges from which each patient's baseline is drawn (uniform).
BASELINE_RANGES: dict[str, tuple[float, float]] = {
    "hr": (60.0, 85.0),
    "spo2": (95.0, 99.0),
    "nibp_sys": (110.0, 135.0),
    "nibp_dia": (65.0, 85.0),
    "rr": (12.0, 18.0),
    "etco2": (34.0, 40.0),
    "temp": (36.4, 37.0),
    "pi": (1.0, 6.0),
}

# Drift channels; "bp" is shared by systolic and diastolic pressure so that they move together.
_DRIFT = ("hr", "spo2", "bp", "sys", "dia", "rr", "etco2", "temp", "pi")
_SLOW_SPACING = 600.0  # seconds between knots of the slow octave
_FAST_SPACING = 60.0
# Standard deviation of the knots, per channel: (slow octave, fast octave).
_DRIFT_SD: dict[str, tuple[float, float]] = {
    "hr": (3.0, 1.5),
    "spo2": (0.6, 0.3),
    "bp": (3.5, 1.5),
    "sys": (2.0, 1.0),
    "dia": (1.5, 0.7),
    "rr": (1.2, 0.6),
    "etco2": (1.2, 0.5),
    "temp": (0.08, 0.02),
    "pi": (0.25, 0.1),  # relative (multiplies the baseline)
}
# White measurement noise, standard deviation per sample.
_NOISE = ("hr", "pr", "spo2", "nibp_sys", "nibp_dia", "rr", "etco2", "temp", "pi")
_NOISE_SD = np.array([1.0, 1.2, 0.3, 3.0, 2.0, 0.7, 0.5, 0.02, 0.05])

_TAG_PATIENT, _TAG_SLOW, _TAG_FAST, _TAG_NOISE = 0, 1, 2, 3
_KNOT_CACHE_MAX = 64


def _nonneg(n: int) -> int:
    """Map any int to a distinct non-negative int (numpy seeds must not be negative)."""
    return 2 * n if n >= 0 else -2 * n - 1


class NibpCuff:
    """When a non-invasive blood-pressure cuff cycles: at `first`, then every `interval` seconds.

    `due(t)` is True once per cycle, at the first call with a `t` inside a cycle not yet reported (a pause longer
    than an interval reports only the latest cycle). One cuff belongs to one device simulator.
    """

    def __init__(self, interval: float = 180.0, first: float = 0.0) -> None:
        if not interval > 0:
            raise ValueError(f"NIBP interval must be > 0 s, got {interval}")
        self.interval = interval
        self.first = first
        self._last: int | None = None

    def cycle(self, t: float) -> int | None:
        """The number of the latest cycle started at or before `t` (0 = the first); None before the first."""
        if t < self.first:
            return None
        return math.floor((t - self.first) / self.interval)

    def due(self, t: float) -> bool:
        """Whether the cuff has completed a measurement at `t` that was not yet reported (and mark it reported)."""
        n = self.cycle(t)
        if n is None or n == self._last:
            return False
        self._last = n
        return True


@dataclass(frozen=True, slots=True)
class Episode:
    """A scripted event: `vital` moves to `value` from `start` for `duration` seconds (ramping in and out over
    `ramp` seconds), again every `every` seconds when given. E.g. a desaturation to 86 % for 60 s."""

    vital: str
    value: float
    start: float
    duration: float
    every: float | None = None
    ramp: float = 10.0

    def weight(self, t: float) -> float:
        """How far (0 to 1) the episode pulls its vital at session time `t`."""
        if t < self.start:
            return 0.0
        into = (t - self.start) % self.every if self.every else t - self.start
        if into >= self.duration:
            return 0.0
        ramp = min(self.ramp, self.duration / 2)
        if ramp <= 0:
            return 1.0
        return min(1.0, into / ramp, (self.duration - into) / ramp)


class PatientModel:
    """One simulated patient: baselines and infusion response drawn from `seed`, vitals by `sample(t)`.

    `t` is seconds since the session started. The infusion runs from `infusion_start` for `infusion_minutes`;
    the blood-pressure and heart-rate response peaks near its end (per-patient jitter of about 2 min) and decays
    over about `recovery_minutes`. `noise=False` leaves out the white measurement noise (drift stays).
    """

    def __init__(
        self,
        seed: int,
        infusion_start: float = 120.0,
        infusion_minutes: float = 40.0,
        *,
        recovery_minutes: float = 20.0,
        noise: bool = True,
        episodes: Sequence[Episode] = (),
    ) -> None:
        if infusion_minutes <= 0 or recovery_minutes <= 0:
            raise ValueError("infusion_minutes and recovery_minutes must be > 0")
        self.seed = seed
        self.infusion_start = infusion_start
        self.infusion_minutes = infusion_minutes
        self.recovery_minutes = recovery_minutes
        self.noise = noise
        self._seed = _nonneg(seed)
        rng = np.random.default_rng([self._seed, _TAG_PATIENT])

        base = {k: float(rng.uniform(lo, hi)) for k, (lo, hi) in BASELINE_RANGES.items()}
        base["nibp_dia"] = min(base["nibp_dia"], base["nibp_sys"] - 30.0)  # keep a plausible pulse pressure
        base["pr"] = base["hr"]
        base["nibp_map"] = base["nibp_dia"] + (base["nibp_sys"] - base["nibp_dia"]) / 3.0
        self.baseline: dict[str, float] = {k: base[k] for k in VITAL_KEYS}
        """The patient's resting value of each vital (before drift, noise and infusion)."""

        # Response at the peak: a shared "responder" factor plus individual spread, clipped to stay plausible.
        z = float(rng.standard_normal())
        e = rng.standard_normal(3)
        self.response: dict[str, float] = {
            "nibp_sys": float(np.clip(16.0 + 4.0 * z + 2.5 * e[0], 3.0, 35.0)),
            "nibp_dia": float(np.clip(11.0 + 2.5 * z + 2.0 * e[1], 2.0, 25.0)),
            "hr": float(np.clip(10.0 + 3.0 * z + 2.5 * e[2], 0.0, 25.0)),
        }
        """The patient's rise at the peak of the infusion response (mmHg, /min)."""
        self._peak_jitter = float(np.clip(2.0 * rng.standard_normal(), -4.0, 4.0))  # minutes
        self.peak_time: float = infusion_start + 60.0 * (infusion_minutes + self._peak_jitter)
        """Session time (s) of the peak of the infusion response."""

        self._knots: dict[tuple[int, int], np.ndarray] = {}
        self._overrides: dict[str, float] = {}
        self.episodes = tuple(episodes)

    # -- overrides -------------------------------------------------------------------------------------------

    def set_override(self, vital: str, value: float | None) -> None:
        """Force `vital` to `value` in every later sample (None removes the override).

        Derived vitals follow: `pr` follows an `hr` override and `nibp_map` a `nibp_sys`/`nibp_dia` override,
        unless they are overridden themselves.
        """
        if vital not in VITAL_KEYS:
            raise ValueError(f"unknown vital {vital!r}; the model has {', '.join(VITAL_KEYS)}")
        if value is None:
            self._overrides.pop(vital, None)
        else:
            self._overrides[vital] = float(value)

    def clear_overrides(self) -> None:
        """Remove every override."""
        self._overrides.clear()

    @property
    def overrides(self) -> dict[str, float]:
        """A copy of the active overrides."""
        return dict(self._overrides)

    def start_infusion(self, t: float, minutes: float, *, recovery_minutes: float | None = None) -> None:
        """The infusion starts at session time `t` and lasts `minutes` (replacing the one given at construction),
        e.g. when a nurse starts it. The response peaks near its end: the patient's jitter (about 2 min for a
        40-minute infusion) shrinks in proportion for a shorter one (a time-compressed demo), so the peak never
        comes before the infusion. `recovery_minutes`, when given, sets how long the response takes to fade."""
        if minutes <= 0 or (recovery_minutes is not None and recovery_minutes <= 0):
            raise ValueError("minutes and recovery_minutes must be > 0")
        self.infusion_start = t
        self.infusion_minutes = minutes
        if recovery_minutes is not None:
            self.recovery_minutes = recovery_minutes
        jitter = self._peak_jitter * min(1.0, minutes / 40.0)  # |jitter| <= 10 % of the infusion
        self.peak_time = t + 60.0 * (minutes + jitter)

    # -- the model -------------------------------------------------------------------------------------------

    def infusion_effect(self, t: float) -> float:
        """The fraction (0..1) of the peak infusion response at session time `t`."""
        if t <= self.infusion_start:
            return 0.0
        rise = self.peak_time - self.infusion_start
        if t < self.peak_time:
            return math.sin(0.5 * math.pi * (t - self.infusion_start) / rise) ** 2
        width = 60.0 * self.recovery_minutes
        return math.exp(-0.5 * ((t - self.peak_time) / width) ** 2)

    def _knot(self, tag: int, k: int) -> np.ndarray:
        key = (tag, k)
        knot = self._knots.get(key)
        if knot is None:
            if len(self._knots) >= _KNOT_CACHE_MAX:
                self._knots.clear()
            knot = np.random.default_rng([self._seed, tag, _nonneg(k)]).standard_normal(len(_DRIFT))
            self._knots[key] = knot
        return knot

    def _octave(self, tag: int, spacing: float, t: float) -> np.ndarray:
        """Catmull-Rom interpolation of unit-variance random knots placed every `spacing` seconds."""
        x = t / spacing
        k = math.floor(x)
        u = x - k
        p0, p1, p2, p3 = (self._knot(tag, k + i) for i in (-1, 0, 1, 2))
        result: np.ndarray = 0.5 * (
            2.0 * p1
            + (p2 - p0) * u
            + (2.0 * p0 - 5.0 * p1 + 4.0 * p2 - p3) * u * u
            + (3.0 * p1 - p0 - 3.0 * p2 + p3) * u * u * u
        )
        return result

    def drift(self, t: float) -> dict[str, float]:
        """The slow drift of each drift channel at `t` (units of the vital; `pi` relative)."""
        slow = self._octave(_TAG_SLOW, _SLOW_SPACING, t)
        fast = self._octave(_TAG_FAST, _FAST_SPACING, t)
        return {
            name: _DRIFT_SD[name][0] * float(slow[i]) + _DRIFT_SD[name][1] * float(fast[i])
            for i, name in enumerate(_DRIFT)
        }

    def _noise(self, t: float) -> dict[str, float]:
        if not self.noise:
            return dict.fromkeys(_NOISE, 0.0)
        ms = _nonneg(round(t * 1000.0))
        draw = np.random.default_rng([self._seed, _TAG_NOISE, ms]).standard_normal(len(_NOISE)) * _NOISE_SD
        return {name: float(draw[i]) for i, name in enumerate(_NOISE)}

    def sample(self, t: float) -> dict[str, float]:
        """Every vital of `VITAL_KEYS` at `t` seconds since the session started (unrounded floats)."""
        b = self.baseline
        d = self.drift(t)
        n = self._noise(t)
        eff = self.infusion_effect(t)

        hr_true = max(30.0, b["hr"] + d["hr"] + eff * self.response["hr"])
        sys_true = b["nibp_sys"] + d["bp"] + d["sys"] + eff * self.response["nibp_sys"]
        dia_true = b["nibp_dia"] + 0.7 * d["bp"] + d["dia"] + eff * self.response["nibp_dia"]
        sys_v = sys_true + n["nibp_sys"]
        dia_v = min(dia_true + n["nibp_dia"], sys_v - 15.0)
        values = {
            "hr": max(20.0, hr_true + n["hr"]),
            "pr": max(20.0, hr_true + n["pr"]),
            "spo2": min(100.0, max(0.0, b["spo2"] + d["spo2"] + n["spo2"])),
            "nibp_sys": sys_v,
            "nibp_dia": dia_v,
            "nibp_map": dia_v + (sys_v - dia_v) / 3.0,
            "rr": max(4.0, b["rr"] + d["rr"] + n["rr"]),
            "etco2": max(0.0, b["etco2"] + d["etco2"] + n["etco2"]),
            "temp": b["temp"] + d["temp"] + n["temp"],
            "pi": min(20.0, max(0.02, b["pi"] * (1.0 + d["pi"]) + n["pi"])),
        }
        for episode in self.episodes:
            w = episode.weight(t)
            if w > 0:
                values[episode.vital] += w * (episode.value - values[episode.vital])
        if self._overrides:
            o = self._overrides
            values.update(o)
            if "hr" in o and "pr" not in o:
                values["pr"] = o["hr"]
            if ("nibp_sys" in o or "nibp_dia" in o) and "nibp_map" not in o:
                values["nibp_map"] = values["nibp_dia"] + (values["nibp_sys"] - values["nibp_dia"]) / 3.0
        return values
