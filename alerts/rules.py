"""The priority and the text of each technical alarm condition (physiological conditions are in alarm profiles)."""

from __future__ import annotations

from collections.abc import Mapping

from monitor.model import Condition, Priority

# Technical alarm priorities. Losing the numbers of a sedated patient is urgent but not immediately dangerous in
# itself (IEC 60601-1-8 leaves technical priorities to the manufacturer): medium for anything that stops
# monitoring, low for degraded signal quality and implausible values.
TECHNICAL_PRIORITY: Mapping[Condition, Priority] = {
    Condition.DEVICE_LOST: "medium",
    Condition.NO_DATA: "medium",
    Condition.SENSOR_OFF: "medium",
    Condition.SENSOR_FAULT: "medium",
    Condition.INVALID_VALUE: "low",
    Condition.SIGNAL_QUALITY: "low",
}

TECHNICAL_TEXT: Mapping[Condition, str] = {
    Condition.DEVICE_LOST: "DEVICE LOST",
    Condition.NO_DATA: "NO DATA",
    Condition.SENSOR_OFF: "SENSOR OFF",
    Condition.SENSOR_FAULT: "SENSOR FAULT",
    Condition.INVALID_VALUE: "INVALID VALUE",
    Condition.SIGNAL_QUALITY: "POOR SIGNAL",
}
