"""The alarm lifecycle (IEC 60601-1-8 §6.8 inactivation states, reference §1.5-1.6): what happens to an alarm
between its start and its end, decided here and only here.

    start ──► acknowledged ──(reminder_after, condition still active)──► reminder (audible again)
      │  ╲──► audio_paused ──(≤ 120 s, or resumed by a user)──► audio_resumed
      │  ╲──► escalated (level 1, 2 … while a priority's escalation times pass unacknowledged)
      └─ condition ends ─► end            (non-latching: technical alarms, medium and low by default)
                        ╲► latched ──acknowledged (alarm reset)──► end   (high priority physiological)

- Latching: a latching alarm whose condition ended stays active, and audible, until a user acknowledges it.
- Acknowledge silences an active alarm until its condition ends, but a reminder re-alerts after `reminder_after`
  if the condition is still there: no physiological alarm is ever silenced indefinitely (Philips re-announces an
  acknowledged alarm every 2-3 min, reference §1.6; the Philips recall shows what indefinite silencing costs).
- Audio pause silences a bay's sounding alarms for at most `audio_pause` s (ISO 80601-2-61: <= 2 min for SpO2;
  Masimo's default 120 s); it ends early when a user resumes audio. An alarm that starts during a pause sounds (a
  pause covers what was sounding when it was asked for. Dräger lets a new higher-priority condition sound through a
  pause, reference §1.6; we let every new alarm sound, which is the safer side).
- Escalation: an alarm of a priority with escalation times that is not acknowledged `escalate_after[k]` s after
  its start yields an "escalated" event of level k+1 (for the notifiers, e.g. to the charge nurse). An audio pause
  does not stop escalation; acknowledging, or the alarm ending, does. After a reminder the alarm is
  unacknowledged again and escalates anew from level 1, counting from the reminder.
- Every transition is an AlarmEvent with its time and, for user actions, who (`by`), for the audit log.

Pure and clock-injected: every method takes `now`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from monitor.model import AlarmEvent, AlarmPhase, Priority

MAX_AUDIO_PAUSE = 120.0  # s: ISO 80601-2-61 208.6.8.5.101 (SpO2), IEC 60601-1-8 "paused" = time-limited


@dataclass(frozen=True, slots=True)
class LifecycleSettings:
    """The responsible organisation's alarm-system settings (config `[alarms]`), the same for every bay."""

    latching: frozenset[Priority] = frozenset({"high"})  # physiological alarms of these priorities latch
    audio_pause: float = MAX_AUDIO_PAUSE
    reminder_after: float = 180.0  # re-alert an acknowledged alarm still active after this long
    escalate_after: Mapping[Priority, tuple[float, ...]] = field(
        default_factory=lambda: {"high": (30.0, 90.0)})

    def __post_init__(self) -> None:
        if not 0 < self.audio_pause <= MAX_AUDIO_PAUSE:
            raise ValueError(f"audio_pause must be > 0 and <= {MAX_AUDIO_PAUSE:g} s, got {self.audio_pause:g}")
        if not 0 < self.reminder_after <= 3600:
            raise ValueError(f"reminder_after must be > 0 and <= 3600 s, got {self.reminder_after:g}")
        for prio, times in self.escalate_after.items():
            if list(times) != sorted(times) or any(t <= 0 for t in times):
                raise ValueError(f"escalate_after.{prio} must be increasing times > 0, got {list(times)}")


@dataclass(slots=True)
class ActiveAlarm:
    """An alarm in the active set: its start event and where it is in its life."""

    start: AlarmEvent
    condition_active: bool = True
    latched: bool = False
    acknowledged_by: str | None = None
    acknowledged_at: float | None = None
    reminder_at: float | None = None
    paused_until: float | None = None
    escalation: int = 0
    unacknowledged_since: float | None = None  # escalation counts from here: the start, or the last reminder

    def __post_init__(self) -> None:
        if self.unacknowledged_since is None:
            self.unacknowledged_since = self.start.time

    @property
    def acknowledged(self) -> bool:
        return self.acknowledged_by is not None

    @property
    def audible(self) -> bool:
        """Whether the alarm signal sounds now (not acknowledged, not in an audio pause)."""
        return not self.acknowledged and self.paused_until is None


class Lifecycle:
    """The active set of every bay and the transitions of each alarm in it."""

    def __init__(self, settings: LifecycleSettings | None = None) -> None:
        self.settings = settings or LifecycleSettings()
        self._active: dict[tuple[str, str], ActiveAlarm] = {}

    # --- the condition's edges ----------------------------------------------------------------------------

    def condition_started(self, event: AlarmEvent) -> list[AlarmEvent]:
        """The condition behind `event` started. A latched alarm of the same id ends and a fresh occurrence
        starts (so every start has its end in the record)."""
        key = (event.bay, event.id)
        alarm = self._active.get(key)
        if alarm is not None and alarm.condition_active:
            return []
        out = []
        if alarm is not None:  # latched and not yet acknowledged: that occurrence ends as the new one starts
            out.append(self._event(alarm, "end", event.time))
        self._active[key] = ActiveAlarm(event)
        return [*out, event]

    def condition_ended(self, bay: str, alarm_id: str, now: float, value: float | None = None) -> list[AlarmEvent]:
        alarm = self._active.get((bay, alarm_id))
        if alarm is None or not alarm.condition_active:
            return []
        alarm.condition_active = False
        s = alarm.start
        if s.kind == "physiological" and s.priority in self.settings.latching and not alarm.acknowledged:
            alarm.latched = True
            return [self._event(alarm, "latched", now, value=value)]
        del self._active[(bay, alarm_id)]
        return [self._event(alarm, "end", now, value=value)]

    # --- user actions -------------------------------------------------------------------------------------

    def acknowledge(self, bay: str, alarm_id: str, by: str, now: float) -> list[AlarmEvent]:
        """A user acknowledged the alarm: silenced until its condition ends (reminder meanwhile); a latched
        alarm is reset (ended). KeyError if there is no such alarm."""
        alarm = self._active.get((bay, alarm_id))
        if alarm is None:
            raise KeyError(f"bay {bay!r} has no active alarm {alarm_id!r}")
        if alarm.latched:
            del self._active[(bay, alarm_id)]
            return [self._event(alarm, "end", now, by=by)]
        if alarm.acknowledged:
            return []
        alarm.acknowledged_by, alarm.acknowledged_at = by, now
        alarm.reminder_at = now + self.settings.reminder_after
        alarm.paused_until = None
        return [self._event(alarm, "acknowledged", now, by=by)]

    def pause_audio(self, bay: str, by: str, now: float, seconds: float | None = None) -> list[AlarmEvent]:
        """Silence the bay's sounding alarms for `seconds` (default and maximum: the configured audio pause)."""
        limit = self.settings.audio_pause
        seconds = limit if seconds is None else seconds
        if not 0 < seconds <= limit:
            raise ValueError(f"an audio pause lasts more than 0 and at most {limit:g} s, not {seconds:g}")
        out = []
        for alarm in self.active(bay):
            if alarm.audible:
                alarm.paused_until = now + seconds
                out.append(self._event(alarm, "audio_paused", now, by=by, until=alarm.paused_until))
        return out

    def resume_audio(self, bay: str, by: str, now: float) -> list[AlarmEvent]:
        """End the bay's audio pause early (the operator can always terminate an inactivation state)."""
        out = []
        for alarm in self.active(bay):
            if alarm.paused_until is not None:
                alarm.paused_until = None
                out.append(self._event(alarm, "audio_resumed", now, by=by))
        return out

    # --- time ---------------------------------------------------------------------------------------------

    def tick(self, now: float) -> list[AlarmEvent]:
        """Pause expiries, reminders and escalations due by `now`."""
        out: list[AlarmEvent] = []
        for alarm in list(self._active.values()):
            if alarm.paused_until is not None and now >= alarm.paused_until:
                alarm.paused_until = None
                out.append(self._event(alarm, "audio_resumed", now))
            if alarm.acknowledged and alarm.condition_active and alarm.reminder_at is not None \
                    and now >= alarm.reminder_at:
                alarm.acknowledged_by = alarm.acknowledged_at = alarm.reminder_at = None
                alarm.unacknowledged_since, alarm.escalation = now, 0  # escalates again if nobody answers
                out.append(self._event(alarm, "reminder", now))
            times = self.settings.escalate_after.get(alarm.start.priority, ())
            since = alarm.unacknowledged_since if alarm.unacknowledged_since is not None else alarm.start.time
            while not alarm.acknowledged and alarm.escalation < len(times) \
                    and now - since >= times[alarm.escalation]:
                alarm.escalation += 1
                out.append(self._event(alarm, "escalated", now, level=alarm.escalation))
        return out

    # --- state --------------------------------------------------------------------------------------------

    def active(self, bay: str | None = None) -> list[ActiveAlarm]:
        """The active set (of one bay, or all), oldest first."""
        return [a for (b, _), a in self._active.items() if bay is None or b == bay]

    def get(self, bay: str, alarm_id: str) -> ActiveAlarm | None:
        return self._active.get((bay, alarm_id))

    def condition_active(self, bay: str, alarm_id: str) -> bool:
        alarm = self._active.get((bay, alarm_id))
        return alarm is not None and alarm.condition_active

    def ids(self, bay: str) -> Iterable[str]:
        return [i for (b, i) in self._active if b == bay]

    @staticmethod
    def _event(alarm: ActiveAlarm, phase: AlarmPhase, now: float, *, value: float | None = None,
               by: str | None = None, level: int = 0, until: float | None = None) -> AlarmEvent:
        s = alarm.start
        return replace(s, phase=phase, time=now, value=s.value if value is None else value, by=by,
                       level=level, until=until)
