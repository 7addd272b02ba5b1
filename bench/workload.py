"""The benchmark's workload: N bays reporting every vital the ketamine-infusion profile watches at 1 Hz.

Values come from a seeded numpy RNG, so a (bays, seconds, seed) triple always gives the same numbers. Each bay has its
own resting values (also its fixed baseline) plus slow AR(1) noise, and random episodes that start and end alarms:
- desaturations (20-120 s, 4-18 points deep; some reach the desat floor), with hypoventilation (low RR, high EtCO2)
  or apnoea (RR and EtCO2 near 0 ... 15);
- hypertensive surges (1-7 min, SBP +30 ... +75 with DBP and HR up): above-baseline, fast-rise and high limits;
- motion artefacts (1-8 s: a PR spike and a shallow SpO2 dip), which the delays and SatSeconds should absorb;
- bradycardia episodes (HR and PR down by about 30 for 20-60 s).
Values are rounded as monitors show them (whole numbers), so values exactly at a limit occur.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from monitor.model import Observation

VITALS: tuple[str, ...] = ("spo2", "pr", "hr", "nibp_sys", "nibp_dia", "rr", "etco2")
SPO2, PR, HR, SYS, DIA, RR, ETCO2 = range(len(VITALS))
T0 = 1_750_000_000.0  # virtual epoch of the first tick (seconds; whole seconds keep every dt exact)
PER_HOUR = 1 / 3600.0
# what the values are clipped to (a monitor's display range, roughly): spo2, pr, hr, nibp_sys, nibp_dia, rr, etco2
LOWEST = np.array([50.0, 25, 25, 50, 25, 0, 0])
HIGHEST = np.array([100.0, 220, 220, 260, 160, 60, 90])

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Workload:
    """`values[s, b, k]`: the value of vital VITALS[k] that bay `bays[b]` reports at second `s` (time T0 + s)."""

    bays: tuple[str, ...]
    values: FloatArray
    baselines: dict[str, dict[str, float]]  # bay -> vital -> fixed baseline

    @property
    def seconds(self) -> int:
        return int(self.values.shape[0])

    @property
    def evaluations(self) -> int:
        """Observation-evaluations of a full run: one per reported value (bays x vitals x seconds)."""
        return int(self.values.size)

    def time(self, s: int) -> float:
        return T0 + s

    def observations(self, s: int) -> list[Observation]:
        """Every bay's readings of second `s`, as the hub hands them to the engine."""
        t = self.time(s)
        row = self.values[s].tolist()
        return [Observation(bay, f"mon-{bay}", vital, value, None, t)
                for bay, values in zip(self.bays, row, strict=True)
                for vital, value in zip(VITALS, values, strict=True)]


def _episodes(rng: np.random.Generator, seconds: int, rate_per_hour: float, lo: float, hi: float
              ) -> list[tuple[int, int]]:
    """Start second and length of each episode of a Poisson process (lengths uniform in [lo, hi] s)."""
    count = int(rng.poisson(rate_per_hour * PER_HOUR * seconds))
    starts = np.sort(rng.integers(0, max(seconds, 1), count))
    return [(int(s), int(rng.uniform(lo, hi))) for s in starts]


def _bump(seconds: int, start: int, length: int, ramp: float) -> FloatArray:
    """0 outside [start, start + length), rising to 1 over `ramp` of the length, then back down (a smooth plateau);
    `ramp` 0 is a rectangle."""
    t = np.arange(seconds, dtype=np.float64) - start
    inside = (t >= 0) & (t < length)
    if ramp <= 0:
        return inside.astype(np.float64)
    x = np.clip((np.minimum(t, length - 1 - t) + 1) / max(ramp * length, 1.0), 0.0, 1.0)
    out: FloatArray = np.where(inside, np.sin(x * np.pi / 2) ** 2, 0.0)
    return out


def _ar1(rng: np.random.Generator, seconds: int, n: int, sd: float, a: float) -> FloatArray:
    """Slow noise for `n` bays: AR(1) series (seconds x n) with stationary standard deviation `sd`."""
    e = rng.normal(0.0, sd * np.sqrt(1 - a * a), (seconds, n))
    out = np.empty((seconds, n))
    x = rng.normal(0.0, sd, n)
    for i in range(seconds):
        x = a * x + e[i]
        out[i] = x
    return out


# stationary standard deviation and AR(1) coefficient of each vital's noise (PR is HR plus its own jitter)
NOISE: dict[int, tuple[float, float]] = {SPO2: (0.8, 0.95), HR: (3.0, 0.95), SYS: (4.0, 0.99), DIA: (3.0, 0.99),
                                         RR: (1.2, 0.95), ETCO2: (1.2, 0.95)}


def make_workload(n_bays: int, seconds: int, seed: int = 8) -> Workload:
    """The values of `n_bays` bays over `seconds` seconds (see the module docstring)."""
    rng = np.random.default_rng(seed)
    bays = tuple(f"bay{i + 1:04d}" for i in range(n_bays))
    rest = np.empty((n_bays, len(VITALS)))
    rest[:, SPO2] = rng.uniform(94, 99, n_bays)
    rest[:, HR] = np.clip(rng.normal(80, 12, n_bays), 55, 115)
    rest[:, PR] = rest[:, HR]
    rest[:, SYS] = np.clip(rng.normal(128, 14, n_bays), 100, 165)
    rest[:, DIA] = rest[:, SYS] * 0.62 + rng.normal(0, 4, n_bays)
    rest[:, RR] = np.clip(rng.normal(14, 2.5, n_bays), 9, 22)
    rest[:, ETCO2] = np.clip(rng.normal(37, 3, n_bays), 30, 45)
    values = np.repeat(rest[None, :, :], seconds, axis=0)  # seconds x bays x vitals
    for k, (sd, a) in NOISE.items():
        values[:, :, k] += _ar1(rng, seconds, n_bays, sd, a)
    values[:, :, PR] = values[:, :, HR] + rng.normal(0, 1.0, (seconds, n_bays))
    for b in range(n_bays):
        v = values[:, b, :]  # a view: the episodes below edit `values`
        for start, length in _episodes(rng, seconds, 6, 20, 120):  # desaturation
            shape = _bump(seconds, start, length, 0.3)
            v[:, SPO2] -= rng.uniform(4, 18) * shape
            if rng.random() < 0.5:  # hypoventilation: slow breathing, CO2 retained
                v[:, RR] -= rng.uniform(4, 9) * shape
                v[:, ETCO2] += rng.uniform(8, 22) * shape
            else:  # apnoea: no breaths, no exhaled CO2
                v[:, RR] = v[:, RR] * (1 - shape) + rng.uniform(0, 4) * shape
                v[:, ETCO2] = v[:, ETCO2] * (1 - shape) + rng.uniform(0, 15) * shape
        for start, length in _episodes(rng, seconds, 3, 60, 420):  # hypertensive surge
            shape = _bump(seconds, start, length, rng.uniform(0.05, 0.3))
            v[:, SYS] += rng.uniform(30, 75) * shape
            v[:, DIA] += rng.uniform(15, 40) * shape
            hr_up = rng.uniform(10, 45) * shape
            v[:, HR] += hr_up
            v[:, PR] += hr_up
        for start, length in _episodes(rng, seconds, 30, 1, 8):  # motion artefact
            shape = _bump(seconds, start, length, 0.0)
            v[:, PR] += rng.uniform(30, 80) * shape
            v[:, SPO2] -= rng.uniform(2, 8) * shape
        for start, length in _episodes(rng, seconds, 1, 20, 60):  # bradycardia
            shape = _bump(seconds, start, length, 0.2)
            down = rng.uniform(25, 40) * shape
            v[:, HR] -= down
            v[:, PR] -= down
    values = np.clip(np.rint(values), LOWEST, HIGHEST)
    baselines = {bay: {vital: float(np.rint(rest[b, k])) for k, vital in enumerate(VITALS)}
                 for b, bay in enumerate(bays)}
    return Workload(bays, values, baselines)
