"""Alarm profiles (alerts/profile.py): the built-ins load and validate, a bad profile names its source and the bad
key, overrides are validated, and resolve_profile finds a profile by name or by file.

Written from the module docstring and the built-in files' comments, not from runs of the code.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from alerts.engine import PHASE_PROFILES, AlarmEngine
from alerts.profile import (
    BUILTIN,
    DEFAULT_STALE,
    Profile,
    ProfileError,
    builtin_profiles,
    load_profile_file,
    load_profiles,
    parse_profile,
    resolve_profile,
)

SOURCE = "clinic/ward-a.toml"


def bad(vitals: dict[str, Any], **top: Any) -> str:
    """The ProfileError message of a profile with these vitals (the test fails if it is accepted)."""
    with pytest.raises(ProfileError) as info:
        parse_profile({"name": "ward-a", **top, "vitals": vitals}, SOURCE)
    return str(info.value)


# --- the built-ins --------------------------------------------------------------------------------------------


def test_the_three_builtin_profiles_load_and_validate() -> None:
    profiles = builtin_profiles()
    assert set(profiles) == {"ketamine-infusion", "recovery", "adult-default"} == set(BUILTIN)
    for name, p in profiles.items():
        assert isinstance(p, Profile)
        assert p.name == name
        assert p.description
        assert "spo2" in p.vitals  # every profile watches oxygenation (ASA: continuous oximetry, reference §4)
        assert p.vitals["spo2"].low is not None


def test_builtin_spo2_rules_are_what_their_files_say() -> None:
    p = builtin_profiles()
    ket, rec, adult = p["ketamine-infusion"].vitals["spo2"], p["recovery"].vitals["spo2"], p["adult-default"].vitals[
        "spo2"]
    # ketamine-infusion: SatSeconds 25, at or below 90 - 10 = 80 % at once, high priority
    assert (ket.low, ket.satseconds, ket.desat_floor, ket.low_prio) == (90, 25, 10, "high")
    # recovery: limit 92, SatSeconds 10, floor 92 - 7 = 85 %, medium
    assert (rec.low, rec.satseconds, rec.desat_floor, rec.low_prio) == (92, 10, 7, "medium")
    # adult-default: no SatSeconds, a 10-s delay and the floor at 80 %
    assert (adult.low, adult.satseconds, adult.delay, adult.desat_floor) == (90, 0, 10, 10)


def test_builtin_nibp_has_no_delay_and_the_ketamine_profile_watches_the_baseline_and_the_rise() -> None:
    ket = builtin_profiles()["ketamine-infusion"]
    for p in builtin_profiles().values():
        for key in ("nibp_sys", "nibp_dia", "nibp_map"):
            if key in p.vitals:
                assert p.vitals[key].delay == 0 and p.vitals[key].clear_delay == 0
    sbp = ket.vitals["nibp_sys"]
    assert (sbp.above_baseline, sbp.rise, sbp.rise_window) == (40, 30, 600)
    assert ket.baseline_window == 300


def test_default_staleness_is_30_s_for_spo2_and_15_min_for_nibp() -> None:
    # ISO 80601-2-61: SpO2 and pulse rate not current after 30 s; NIBP: three missed 5-minute cycles
    p = builtin_profiles()["adult-default"]
    assert p.stale_after("spo2") == 30.0 == DEFAULT_STALE["spo2"]
    assert p.stale_after("pr") == 30.0
    assert p.stale_after("nibp_sys") == 900.0


def test_the_engine_runs_on_the_builtins_and_its_phases_name_builtins() -> None:
    assert set(PHASE_PROFILES.values()) <= set(BUILTIN)
    engine = AlarmEngine(["b1", "b2"], bay_profiles={"b2": "adult-default"})
    assert engine.profile_name("b1") == "ketamine-infusion"
    assert engine.effective_profile("b2").name == "adult-default"


# --- bad profiles name the source and the key -----------------------------------------------------------------


def test_low_not_below_high_names_the_vital() -> None:
    msg = bad({"hr": {"low": 120, "high": 120}})
    assert SOURCE in msg and "vitals.hr" in msg and "low" in msg and "high" in msg


def test_unknown_vital_is_named() -> None:
    msg = bad({"heartrate": {"low": 40}})
    assert SOURCE in msg and "heartrate" in msg


def test_satseconds_on_hr_is_refused() -> None:
    msg = bad({"hr": {"low": 40, "satseconds": 25}})
    assert SOURCE in msg and "hr" in msg and "satseconds" in msg


def test_desat_floor_on_another_vital_than_spo2_is_refused() -> None:
    msg = bad({"pr": {"low": 40, "desat_floor": 10}})
    assert SOURCE in msg and "desat_floor" in msg


@pytest.mark.parametrize("key", ["delay", "clear_delay"])
@pytest.mark.parametrize("vital", ["nibp_sys", "nibp_dia", "nibp_map"])
def test_a_delay_on_nibp_is_refused(vital: str, key: str) -> None:
    msg = bad({vital: {"high": 180, key: 5}})
    assert SOURCE in msg and vital in msg


@pytest.mark.parametrize("setting", [33, 5, 200, -10])
def test_satseconds_must_be_one_of_the_settings_in_use(setting: int) -> None:
    # reference §3.1: Off, 10, 25, 50, 100
    msg = bad({"spo2": {"low": 90, "satseconds": setting}})
    assert SOURCE in msg and "vitals.spo2.satseconds" in msg


@pytest.mark.parametrize("setting", [0, 10, 25, 50, 100])
def test_every_satseconds_setting_in_use_is_accepted(setting: int) -> None:
    p = parse_profile({"name": "p", "vitals": {"spo2": {"low": 90, "satseconds": setting}}}, SOURCE)
    assert p.vitals["spo2"].satseconds == setting


@pytest.mark.parametrize(("field", "value"), [
    ("delay", 31), ("delay", -1), ("clear_delay", 61), ("above_baseline", 0), ("rise", -5), ("rise_window", 0),
    ("stale_after", 0), ("stale_after", 3601), ("priority", "urgent"), ("clear_hysteresis", -1)])
def test_out_of_range_fields_name_the_key(field: str, value: Any) -> None:
    msg = bad({"hr": {"low": 40, field: value}})
    assert f"{SOURCE}: vitals.hr.{field}" in msg


def test_unknown_key_is_named() -> None:
    msg = bad({"spo2": {"low": 90, "sat_seconds": 25}})
    assert "vitals.spo2.sat_seconds" in msg
    assert "baseline_windw" in bad({}, baseline_windw=300)


def test_every_problem_is_reported_not_only_the_first() -> None:
    msg = bad({"hr": {"low": 40, "delay": 99}, "rr": {"priority": "urgent"}})
    assert "vitals.hr.delay" in msg and "vitals.rr.priority" in msg


def test_clear_hysteresis_must_leave_a_value_that_clears_both_limits() -> None:
    # low 50 + 40 > high 120 - 40: no value ends an alarm on both sides
    assert "vitals.hr" in bad({"hr": {"low": 50, "high": 120, "clear_hysteresis": 40}})


def test_bad_profile_name_is_refused() -> None:
    assert "name" in bad({}, name="ward a/../b")


def test_a_bad_file_names_its_path(tmp_path: Path) -> None:
    path = tmp_path / "ward-b.toml"
    path.write_text("[vitals.spo2]\nlow = 90\nsatseconds = 33\n", encoding="utf-8")
    with pytest.raises(ProfileError) as info:
        load_profile_file(path)
    assert str(path) in str(info.value) and "vitals.spo2.satseconds" in str(info.value)


def test_a_file_that_is_not_toml_or_not_there_names_its_path(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("[vitals.spo2\nlow = 90\n", encoding="utf-8")
    with pytest.raises(ProfileError, match="not valid TOML") as info:
        load_profile_file(path)
    assert str(path) in str(info.value)
    with pytest.raises(ProfileError, match="cannot read"):
        load_profile_file(tmp_path / "absent.toml")


# --- overrides -------------------------------------------------------------------------------------------------

BASE = parse_profile({"name": "base", "vitals": {"spo2": {"low": 90, "priority": "high", "satseconds": 25},
                                                  "hr": {"low": 45, "high": 130, "delay": 10}}}, "test")


def test_an_override_changes_only_what_it_names() -> None:
    p = BASE.with_overrides({"spo2": {"low": 88}, "rr": {"low": 6}})
    assert p.name == "base"
    assert (p.vitals["spo2"].low, p.vitals["spo2"].satseconds, p.vitals["spo2"].low_prio) == (88, 25, "high")
    assert p.vitals["hr"] == BASE.vitals["hr"]
    assert p.vitals["rr"].low == 6  # a vital the profile did not watch
    assert BASE.vitals["spo2"].low == 90  # the profile itself is unchanged


def test_an_override_can_set_a_field_back_to_its_default() -> None:
    p = BASE.with_overrides({"hr": {"delay": 0}, "spo2": {"satseconds": 0}})
    assert p.vitals["hr"].delay == 0 and p.vitals["spo2"].satseconds == 0


@pytest.mark.parametrize("overrides", [
    {"hr": {"low": 140}},  # low >= high 130
    {"spo2": {"satseconds": 33}},
    {"hr": {"satseconds": 10}},
    {"hr": {"delay": 45}},
    {"nibp_sys": {"high": 180, "delay": 5}},
    {"spo2x": {"low": 90}},
    {"hr": {"lo": 40}},
    {"hr": {"high": None}},  # an override never removes a limit of the profile
    {"spo2": {"low": None}},
])
def test_overrides_are_validated_and_the_error_names_the_profile(overrides: dict[str, dict[str, Any]]) -> None:
    with pytest.raises(ProfileError) as info:
        BASE.with_overrides(overrides)
    assert "base (overridden)" in str(info.value)


def test_an_override_that_is_not_a_table_is_a_profile_error() -> None:
    with pytest.raises(ProfileError, match=r"vitals\.hr"):
        # a malformed API body: not the type the signature promises, which is the point of the test
        BASE.with_overrides({"hr": 130})  # type: ignore[dict-item]


# --- resolve_profile ------------------------------------------------------------------------------------------

WARD_C = """
description = "ward C"
[vitals.spo2]
low = 92
"""


def test_resolve_profile_by_builtin_name() -> None:
    assert resolve_profile("recovery") == builtin_profiles()["recovery"]


def test_resolve_profile_by_name_among_given_profiles() -> None:
    assert resolve_profile("base", {"base": BASE}) is BASE
    with pytest.raises(ProfileError, match="recovery"):
        resolve_profile("recovery", {"base": BASE})  # only the given ones are known by name


def test_resolve_profile_by_file_takes_its_name_from_the_file(tmp_path: Path) -> None:
    path = tmp_path / "ward-c.toml"
    path.write_text(WARD_C, encoding="utf-8")
    p = resolve_profile(str(path))
    assert (p.name, p.description, p.vitals["spo2"].low) == ("ward-c", "ward C", 92)
    named = tmp_path / "other.toml"
    named.write_text('name = "ward-d"\n' + WARD_C, encoding="utf-8")
    assert resolve_profile(str(named)).name == "ward-d"


def test_resolve_profile_unknown_name_or_missing_file() -> None:
    with pytest.raises(ProfileError, match="unknown alarm profile 'ketamine'"):
        resolve_profile("ketamine")
    with pytest.raises(ProfileError, match="cannot read"):
        resolve_profile("/nonexistent/ward.toml")


def test_load_profiles_adds_a_clinics_files_to_the_builtins(tmp_path: Path) -> None:
    (tmp_path / "ward-c.toml").write_text(WARD_C, encoding="utf-8")
    (tmp_path / "recovery.toml").write_text('[vitals.spo2]\nlow = 94\n', encoding="utf-8")  # replaces a built-in
    profiles = load_profiles(tmp_path)
    assert set(profiles) == {*BUILTIN, "ward-c"}
    assert profiles["recovery"].vitals["spo2"].low == 94
    with pytest.raises(ProfileError, match="not found"):
        load_profiles(tmp_path / "nowhere")


def test_a_profile_with_no_vitals_is_valid_and_watches_nothing() -> None:
    p = parse_profile({"name": "quiet"}, "test")
    assert p.vitals == {} and p.baseline_window == 300.0
    assert not math.isnan(p.stale_after("spo2"))
