"""Scripted episodes of the simulated patient: a desaturation ramps in, holds, ramps out, and repeats."""

from __future__ import annotations

import pytest

from simulators.patient import Episode, PatientModel


def test_episode_weight_ramps_holds_and_repeats() -> None:
    e = Episode("spo2", 85, start=100, duration=60, every=300, ramp=10)
    assert e.weight(99) == 0
    assert e.weight(105) == pytest.approx(0.5)
    assert e.weight(130) == 1
    assert e.weight(155) == pytest.approx(0.5)
    assert e.weight(161) == 0
    assert e.weight(430) == 1  # the next one, 300 s later


def test_desaturation_pulls_spo2_to_its_value_and_leaves_other_vitals() -> None:
    plain = PatientModel(5, noise=False)
    desat = PatientModel(5, noise=False, episodes=[Episode("spo2", 85, start=60, duration=60)])
    assert desat.sample(90)["spo2"] == pytest.approx(85)
    assert desat.sample(90)["hr"] == plain.sample(90)["hr"]
    assert desat.sample(200)["spo2"] == plain.sample(200)["spo2"]
