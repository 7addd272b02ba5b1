"""The config of a deployment beyond one server: nodes, wards, each bay's ward and gateway; what each node runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config import ConfigError, load_config, parse_config
from monitor.service import node_view

EXAMPLE = Path(__file__).parents[2] / "examples" / "hospital.toml"

BASE = """
[mqtt]
url = "mqtt://127.0.0.1:1883"
[[nodes]]
name = "gw"
role = "gateway"
[[nodes]]
name = "e1"
role = "engine"
[[nodes]]
name = "e2"
role = "engine"
[[wards]]
id = "w"
engine = "e1"
standby = "e2"
"""


def load(tmp_path: Path, text: str) -> None:
    path = tmp_path / "hospital.toml"
    path.write_text(text)
    load_config(path)


def test_the_example_hospital_loads_and_each_node_gets_its_own_part() -> None:
    cfg = load_config(EXAMPLE)
    assert cfg.role == "all" and cfg.node is None  # without --node: one server, everything
    engine = cfg.for_node("engine-1")
    assert (engine.role, engine.node, engine.notify.instance) == ("engine", "engine-1", "engine-1")
    assert engine.data_dir == cfg.data_dir / "engine-1"
    assert engine.http.port == 8111
    view = node_view(engine)  # its own ward and the one it stands by for, every device read over MQTT
    assert {b.id for b in view.bays} == {"e1", "e2", "w1", "w2"}
    assert {d.driver for b in view.bays for d in b.devices} == {"mqtt"}
    assert not any(d.simulate for b in view.bays for d in b.devices)
    gateway = cfg.for_node("gw-east")
    assert gateway.role == "gateway" and {b.id for b in gateway.bays if b.gateway == "gw-east"} == {"e1", "e2"}
    station = node_view(cfg.for_node("station"))
    assert station.role == "dashboard" and not station.notify.mqtt and station.notify.targets == []
    with pytest.raises(ValueError, match="no node 'engine-3'"):
        cfg.for_node("engine-3")


def test_a_node_can_reach_the_broker_its_own_way(tmp_path: Path) -> None:
    path = tmp_path / "h.toml"
    path.write_text(BASE.replace('role = "gateway"', 'role = "gateway"\nmqtt_url = "mqtt://10.0.0.9:1883"'))
    cfg = load_config(path)
    assert cfg.for_node("gw").mqtt.url == "mqtt://10.0.0.9:1883"
    assert cfg.for_node("e1").mqtt.url == "mqtt://127.0.0.1:1883"


def test_a_dashboard_may_show_some_wards_only() -> None:
    cfg = parse_config({**load_config(EXAMPLE).model_dump(mode="json", exclude={"role", "node"}),
                        "nodes": [{"name": "engine-1", "role": "engine"}, {"name": "engine-2", "role": "engine"},
                                  {"name": "gw-east", "role": "gateway"}, {"name": "gw-west", "role": "gateway"},
                                  {"name": "east-desk", "role": "dashboard", "wards": ["east"]}]})
    assert {b.id for b in node_view(cfg.for_node("east-desk")).bays} == {"e1", "e2"}


@pytest.mark.parametrize(("extra", "reason"), [
    ('[[bays]]\nid = "b"\n', "bay b: ward must name one of the [[wards]]"),
    ('[[bays]]\nid = "b"\nward = "w"\n[[bays.devices]]\nid = "d"\ndriver = "masimo"\nport = "/dev/ttyUSB0"\n',
     "bay b device d: a serial device needs the bay's gateway"),
    ('[[bays]]\nid = "b"\nward = "w"\n[[bays.devices]]\nid = "d"\ndriver = "mqtt"\nsimulate = true\n',
     "a simulated device runs on the bay's gateway"),
    ('[[bays]]\nid = "b"\nward = "w"\ngateway = "e1"\n', "gateway 'e1' is not a node with role gateway"),
    ('[[wards]]\nid = "x"\nengine = "gw"\n', "ward x: engine 'gw' is not a node with role engine"),
    ('[[wards]]\nid = "x"\nengine = "e1"\nstandby = "e1"\n', "standby must be another engine"),
    ('[[wards]]\nid = "w"\nengine = "e2"\n', "ward ids must be unique"),
    ('[[nodes]]\nname = "e1"\nrole = "dashboard"\n', "node names must be unique"),
    ('[[nodes]]\nname = "d"\nrole = "dashboard"\nwards = ["nowhere"]\n', "node d: no ward 'nowhere'"),
    ('[notify]\nmqtt = false\n', "need [notify] mqtt = true"),
])
def test_a_deployment_that_does_not_fit_together_is_refused_naming_what(tmp_path: Path, extra: str,
                                                                        reason: str) -> None:
    with pytest.raises(ConfigError, match=r"hospital\.toml") as caught:
        load(tmp_path, BASE + extra)
    assert reason in str(caught.value)


def test_nodes_need_the_shared_broker(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"set \[mqtt\] url"):
        load(tmp_path, BASE.replace('url = "mqtt://127.0.0.1:1883"', "private = true"))
