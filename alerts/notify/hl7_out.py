"""The HL7 output: each alarm event as an ORU^R40 (IHE PCD-04, alerts/notify/pcd04.py) over MLLP to the clinic's
alarm manager, delivered once its ACK says AA (alerts/notify/mllp.py).

The message control id is `BS<outbox sequence>`, the same for every attempt, so an alarm manager that got a
message but whose ACK was lost sees a repeat it can recognise.
"""

from __future__ import annotations

from alerts.notify.forwarder import DeliveryError
from alerts.notify.mllp import MllpClient, MllpError
from alerts.notify.outbox import Pending
from alerts.notify.pcd04 import alarm_message
from monitor.model import AlarmEvent

EVENT_FIELDS = AlarmEvent.__dataclass_fields__


def control_id(seq: int) -> str:
    return f"BS{seq}"


def event_of(body: dict[str, object]) -> AlarmEvent:
    """The AlarmEvent an outbox body was made from (alerts/notify/payloads.py event_json)."""
    return AlarmEvent(**{k: v for k, v in body.items() if k in EVENT_FIELDS})  # type: ignore[arg-type]


class Hl7Sender:
    """Sends queued events to an MLLP receiver."""

    def __init__(self, host: str, port: int, *, facility: str = "CLINIC", timeout: float = 10.0) -> None:
        self.facility = facility
        self._client = MllpClient(host, port, timeout=timeout)

    async def send(self, item: Pending) -> None:
        message = alarm_message(event_of(item.body), control_id=control_id(item.seq), facility=self.facility)
        try:
            await self._client.send(message)
        except MllpError as exc:
            raise DeliveryError(str(exc)) from exc

    async def close(self) -> None:
        await self._client.close()
