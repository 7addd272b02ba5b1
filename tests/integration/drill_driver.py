"""A third-party driver for the fault drills, installed into a `bedside run` through the `bedside.drivers` entry
point (as a clinic would install a vendor's plug-in): it reads a steady patient four times a second and, each time
the file named by its `port` appears, removes the file and raises an unexpected exception — a bug, not a lost
device — so a drill can crash it at a moment of its choosing."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import ClassVar

from drivers.base import CONNECTED, Driver, Emit
from monitor.model import Reading

INTERVAL = 0.25  # s between readings
BUG = "drill: an unexpected error in a third-party driver"
REPO = Path(__file__).resolve().parents[2]


class DrillDriver(Driver):
    key: ClassVar[str] = "drill"

    async def run(self, emit: Emit) -> None:
        trigger = Path(self.settings.port) if self.settings.port else None
        emit(CONNECTED)
        while True:
            if trigger is not None and trigger.exists():
                trigger.unlink()
                raise RuntimeError(BUG)
            emit(Reading("spo2", 97.0))
            emit(Reading("pr", 72.0))
            await asyncio.sleep(INTERVAL)


def install(into: Path) -> dict[str, str]:
    """Register DrillDriver as driver "drill" for a bedside subprocess: a distribution's metadata with the entry
    point, in `into`; returns the environment variables that put it (and this repository) on its path."""
    dist = into / "bedside_drill_driver-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: bedside-drill-driver\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[bedside.drivers]\ndrill = {__name__}:DrillDriver\n")
    path = [str(into), str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {"PYTHONPATH": os.pathsep.join(path)}
