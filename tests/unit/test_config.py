"""Config: the example file loads; a bad file fails naming the file, the key and what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config import ConfigError, load_config

EXAMPLE = Path(__file__).parents[2] / "examples" / "clinic.toml"


def test_example_config_loads_with_simulated_bays() -> None:
    cfg = load_config(EXAMPLE)
    assert cfg.http.host == "127.0.0.1"
    assert len(cfg.bays) >= 2
    assert all(d.simulate for b in cfg.bays for d in b.devices)
    assert {d.driver for b in cfg.bays for d in b.devices} == {"masimo", "mqtt"}
    assert cfg.data_dir.is_absolute()


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        ('[http]\nport = "eighty"\n', "http.port", "valid integer"),
        ('[[bays]]\nid = "b1"\n[[bays.devices]]\nid = "d1"\ndriver = "masimo"\nbaud = 9600\n',
         "bays['b1'].devices['d1'].baud", "Extra inputs"),
        ("[limits.spo2]\nlow = 88\n", "(top level)", "alarm limits live in alarm profiles"),
        ("[alarms]\naudio_pause = 300\n", "alarms.audio_pause", "less than or equal to 120"),
        ("[alarms]\nescalate_after = { high = [90, 30] }\n", "alarms.escalate_after", "increasing"),
        ('[alarms]\nlatching = ["urgent"]\n', "alarms.latching[0]", "'high', 'medium' or 'low'"),
        ('[[bays]]\nid = "b 1"\n', "bays['b 1'].id", "pattern"),
    ],
)
def test_bad_config_names_file_key_and_reason(tmp_path: Path, text: str, key: str, reason: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert f"{path}: {key}:" in message
    assert reason in message


def test_not_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "site = \n"))
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.toml")


def test_mqtt_device_without_broker_is_refused(tmp_path: Path) -> None:
    text = '[[bays]]\nid = "b1"\n[[bays.devices]]\nid = "m1"\ndriver = "mqtt"\n'
    with pytest.raises(ConfigError, match=r"use MQTT: set \[mqtt\] url or private = true"):
        load_config(write(tmp_path, text))


def test_alarm_settings_and_profiles_dir_relative_to_the_file(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, '[alarms]\nprofile = "recovery"\nprofiles_dir = "profiles"\n'
                                      'reminder_after = 120\n[[bays]]\nid = "b1"\nprofile = "adult-default"\n'))
    assert cfg.alarms.profile == "recovery"
    assert cfg.alarms.profiles_dir == (tmp_path / "profiles").resolve()
    assert cfg.alarms.reminder_after == 120
    assert cfg.alarms.audio_pause == 120  # default
    assert cfg.bays[0].profile == "adult-default"


def test_unknown_profile_or_bad_profile_file_stops_the_service_with_the_reason(tmp_path: Path) -> None:
    from monitor.process import ServiceError
    from monitor.service import build_engine

    with pytest.raises(ServiceError, match="unknown alarm profile 'nope'"):
        build_engine(load_config(write(tmp_path, '[[bays]]\nid = "b1"\nprofile = "nope"\n')))
    (tmp_path / "profiles").mkdir()
    bad = tmp_path / "profiles" / "mine.toml"
    bad.write_text("[vitals.spo2]\nlow = 95\nhigh = 90\n")
    with pytest.raises(ServiceError) as err:
        build_engine(load_config(write(tmp_path, '[alarms]\nprofiles_dir = "profiles"\n')))
    assert f"{bad}: vitals.spo2" in str(err.value) and "must be below high" in str(err.value)


def test_a_profile_file_in_profiles_dir_is_used_by_the_bays_that_name_it(tmp_path: Path) -> None:
    from monitor.service import build_engine

    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "strict.toml").write_text('[vitals.spo2]\nlow = 94\npriority = "high"\n')
    text = '[alarms]\nprofiles_dir = "profiles"\n[[bays]]\nid = "b1"\nprofile = "strict"\n[[bays]]\nid = "b2"\n'
    engine = build_engine(load_config(write(tmp_path, text)))
    assert engine.effective_profile("b1").vitals["spo2"].low == 94
    assert engine.effective_profile("b2").name == "ketamine-infusion"
