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
        ("[limits.spo2]\nlow = 95\nhigh = 90\n", "limits.spo2", "must be below high"),
        ("[limits.glucose]\nlow = 4\n", "limits", "unknown vital 'glucose'"),
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


def test_a_limit_table_overrides_only_its_vital(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, '[limits.spo2]\nlow = 88\npriority = "high"\n'))
    assert cfg.limits["spo2"].low == 88
    assert cfg.limits["nibp_sys"].high == 180  # default kept
