"""The driver registry: driver key -> driver class, imported only when used.

Built-in drivers are listed here; third-party drivers register through the entry-point group
`bedside.drivers` (name = driver key, value = "module:Class").
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

from drivers.base import Driver

BUILTIN: dict[str, str] = {
    "masimo": "drivers.masimo_driver:MasimoDriver",
    "mqtt": "drivers.mqtt_driver:MqttDriver",
    "nellcor": "drivers.nellcor_driver:NellcorDriver",
    "capnostream": "drivers.capnostream_driver:CapnostreamDriver",
    "nonin7": "drivers.nonin_driver:NoninFormat7Driver",
    "nonin8": "drivers.nonin_driver:NoninFormat8Driver",
}
ENTRY_POINT_GROUP = "bedside.drivers"


def available() -> dict[str, str]:
    """Every known driver key with where its class lives (built-ins win over plug-ins of the same key)."""
    found = {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}
    return found | BUILTIN


def driver_class(key: str) -> type[Driver]:
    """The driver class for `key`; KeyError names the key and the known ones."""
    known = available()
    if key not in known:
        raise KeyError(f"unknown driver {key!r}; known: {', '.join(sorted(known))}")
    module_name, _, class_name = known[key].partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    if not (isinstance(cls, type) and issubclass(cls, Driver)):
        raise TypeError(f"driver {key!r} ({known[key]}) is not a bedside Driver")
    return cls
