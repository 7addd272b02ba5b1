"""The HL7 output: each alarm event as an ORU^R40 (IHE PCD-04, alerts/notify/pcd04.py) over MLLP to the clinic's
alarm manager, delivered once its ACK says AA (alerts/notify/mllp.py).

The message control id is `BS<outbox sequence>` (an engine node: `BS<hash of its name>-<sequence>`), the same for
every attempt, so an alarm manager that got a message but whose ACK was lost sees a repeat it can recognise.
"""

from __future__ import annotations

import zlib

from alerts.notify.forwarder import DeliveryError
from alerts.notify.mllp import MllpClient, MllpError
from alerts.notify.outbox import Pending
from alerts.notify.pcd04 import alarm_message
from monitor.model import AlarmEvent

EVENT_FIELDS = AlarmEvent.__dataclass_fields__


def control_id(seq: int, origin: str | None = None) -> str:
    """MSH-10: BS<seq>; for an engine node of a deployment BS<4 hex of its name>-<seq> (each engine counts from its
    own outbox; at most 20 characters, as older receivers expect)."""
    if origin is None:
        return f"BS{seq}"
    return f"BS{zlib.crc32(origin.encode()) & 0xFFFF:04X}-{seq}"


def _origin(body: dict[str, object]) -> str | None:
    origin = body.get("origin")
    return origin if isinstance(origin, str) else None


def event_of(body: dict[str, object]) -> AlarmEvent:
    """The AlarmEvent an outbox body was made from (alerts/notify/payloads.py event_json)."""
    return AlarmEvent(**{k: v for k, v in body.items() if k in EVENT_FIELDS})  # type: ignore[arg-type]


class Hl7Sender:
    """Sends queued events to an MLLP receiver."""

    def __init__(self, host: str, port: int, *, facility: str = "CLINIC", timeout: float = 10.0) -> None:
        self.facility = facility
        self._client = MllpClient(host, port, timeout=timeout)

    async def send(self, item: Pending) -> None:
        message = alarm_message(event_of(item.body), control_id=control_id(item.seq, _origin(item.body)),
                                facility=self.facility)
        try:
            await self._client.send(message)
        except MllpError as exc:
            raise DeliveryError(str(exc)) from exc

    async def close(self) -> None:
        await self._client.close()
