"""The vital catalogue: every vital sign bedside knows, with its UCUM unit, IEEE 11073 MDC code and LOINC code.

Keys are the stable names on the wire (../shared/ARCHITECTURE.md). Codes are from
shared/reference/device-protocols.md §3; `mdc_verified` is False where that table says "verify".
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Vital:
    """One vital sign as bedside records it."""

    key: str
    short: str  # what a tile or an alarm message calls it
    label: str
    unit: str  # UCUM
    mdc_code: int  # context-free IEEE 11073-10101 code
    mdc_refid: str
    loinc: str | None  # None: no LOINC code found in shared/reference
    plausible_min: float  # outside [plausible_min, plausible_max] a value is "invalid", not a reading
    plausible_max: float
    mdc_verified: bool = True


_CATALOGUE: tuple[Vital, ...] = (
    Vital("hr", "HR", "Heart rate (ECG)", "/min", 147842, "MDC_ECG_HEART_RATE", "8867-4", 0, 350),
    Vital("pr", "PR", "Pulse rate (SpO2)", "/min", 149530, "MDC_PULS_OXIM_PULS_RATE", "8889-8", 0, 350),
    Vital("spo2", "SpO2", "SpO2", "%", 150456, "MDC_PULS_OXIM_SAT_O2", "59408-5", 0, 100),
    Vital("nibp_sys", "NIBP sys", "NIBP systolic", "mm[Hg]", 150021, "MDC_PRESS_BLD_NONINV_SYS", "8480-6", 10, 300),
    Vital("nibp_dia", "NIBP dia", "NIBP diastolic", "mm[Hg]", 150022, "MDC_PRESS_BLD_NONINV_DIA", "8462-4", 5, 250),
    Vital("nibp_map", "NIBP map", "NIBP mean", "mm[Hg]", 150023, "MDC_PRESS_BLD_NONINV_MEAN", "8478-0", 5, 270),
    Vital("abp_sys", "ABP sys", "Arterial systolic", "mm[Hg]", 150033, "MDC_PRESS_BLD_ART_SYS", "8480-6", 10, 300),
    Vital("abp_dia", "ABP dia", "Arterial diastolic", "mm[Hg]", 150034, "MDC_PRESS_BLD_ART_DIA", "8462-4", 5, 250),
    Vital("abp_map", "ABP map", "Arterial mean", "mm[Hg]", 150035, "MDC_PRESS_BLD_ART_MEAN", "8478-0", 5, 270),
    Vital("rr", "RR", "Respiratory rate", "/min", 151562, "MDC_RESP_RATE", "9279-1", 0, 150),
    Vital("etco2", "EtCO2", "EtCO2", "mm[Hg]", 151728, "MDC_AWAY_CO2_ET", "19889-5", 0, 150, mdc_verified=False),
    Vital("temp", "Temp", "Temperature", "Cel", 150344, "MDC_TEMP", "8310-5", 25, 45),
    Vital("pi", "PI", "Perfusion index", "%", 150448, "MDC_PULS_OXIM_PERF_REL", None, 0, 30, mdc_verified=False),
)

VITALS: dict[str, Vital] = {v.key: v for v in _CATALOGUE}


def vital(key: str) -> Vital:
    """The catalogue entry for `key`; KeyError names the unknown key."""
    try:
        return VITALS[key]
    except KeyError:
        raise KeyError(f"unknown vital {key!r}; known: {', '.join(VITALS)}") from None


def is_plausible(key: str, value: float) -> bool:
    """Whether `value` can be a real reading of vital `key` (NaN and infinities never are)."""
    v = VITALS[key]
    return v.plausible_min <= value <= v.plausible_max
