"""What a device simulator measures and in what condition its sensor is, as functions of session time.

- A *values source* `values(t)` gives the vitals at session time `t` (seconds since the simulator started):
  `PatientModel.sample` is one, a replayed trace (`simulators.replay.ReplaySource`) another. A missing key or
  None is "no value", which each protocol writes as its own no-value marker, never as 0.
- A *conditions source* `conditions(t)` gives the sensor state at `t` (`Conditions`): a scenario's
  `sensor_off`, the pulse search after it, `motion`. Each protocol shows them the way the real device does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

ValuesSource = Callable[[float], Mapping[str, float | None]]


@dataclass(frozen=True, slots=True)
class Conditions:
    """The state of a device's sensors at one moment.

    sensor_off: the pulse-oximetry probe is off the patient (or disconnected); no SpO2, PR, PI.
    pulse_search: the probe is back on and the oximeter searches for a pulse; no values yet.
    motion: the patient moves: oximetry values are noisy and the device flags interference where it can.
    co2_off: the capnography sampling line is disconnected; no EtCO2, FiCO2, RR from CO2.
    """

    sensor_off: bool = False
    pulse_search: bool = False
    motion: bool = False
    co2_off: bool = False


NORMAL = Conditions()
ConditionsSource = Callable[[float], Conditions]

_TAG_MOTION = 7


def _nonneg(n: int) -> int:
    return 2 * n if n >= 0 else -2 * n - 1


def motion_values(values: Mapping[str, float | None], t: float, seed: int = 0) -> dict[str, float | None]:
    """`values` as an oximeter reads them while the patient moves: SpO2 biased low and noisy, PR and PI noisy.

    Deterministic in (seed, t to the millisecond); None stays None, other keys are unchanged.
    """
    rng = np.random.default_rng([_nonneg(seed), _TAG_MOTION, _nonneg(round(t * 1000.0))])
    d_spo2, d_pr, f_pi = abs(float(rng.normal(0.0, 3.0))), float(rng.normal(0.0, 12.0)), float(rng.uniform(0.3, 3.0))
    out = dict(values)
    spo2, pr, pi = out.get("spo2"), out.get("pr"), out.get("pi")
    if spo2 is not None:
        out["spo2"] = min(100.0, max(0.0, spo2 - d_spo2))
    if pr is not None:
        out["pr"] = max(20.0, pr + d_pr)
    if pi is not None:
        out["pi"] = max(0.02, pi * f_pi)
    return out


def half_up(value: float | None, lo: int, hi: int) -> int | None:
    """`value` rounded half up (as a device displays it); None if missing, not finite or outside [lo, hi]."""
    if value is None or not np.isfinite(value):
        return None
    n = int(np.floor(value + 0.5))
    return n if lo <= n <= hi else None
