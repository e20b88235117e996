"""When a step is due: its delay after entry or after the previous step, and business hours."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class BusinessHours:
    """Business hours of a site: [start, end) on the given ISO weekdays, in its time zone."""

    start: int = 9
    end: int = 17
    weekdays: frozenset = frozenset({1, 2, 3, 4, 5})
    time_zone: str = "Europe/Berlin"

    @classmethod
    def for_site(cls, site):
        from .models import NurtureSettings

        settings = NurtureSettings.for_site(site)
        try:
            weekdays = frozenset(settings.weekdays())
        except ValueError:
            weekdays = frozenset({1, 2, 3, 4, 5})
        return cls(settings.business_day_start, settings.business_day_end, weekdays, settings.time_zone)

    def next_open(self, moment):
        """`moment` if it lies within business hours, else the next opening time (aware UTC)."""
        zone = ZoneInfo(self.time_zone)
        local = moment.astimezone(zone)
        for _day in range(8):
            midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
            opening, closing = midnight + timedelta(hours=self.start), midnight + timedelta(hours=self.end)
            if local.isoweekday() in self.weekdays:
                if local < opening:
                    return _aware(opening, zone)
                if local < closing:
                    return moment
            next_day = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
            local = datetime(next_day.year, next_day.month, next_day.day, tzinfo=zone)
        return moment  # no business day at all: never block sending


def _aware(local, zone):
    # Re-attach the zone so that a DST change between the two dates is honoured.
    return datetime(local.year, local.month, local.day, local.hour, local.minute, tzinfo=zone)


def delay_of(step):
    amount = int(step.delay or 0)
    return timedelta(hours=amount) if step.delay_unit == "hours" else timedelta(days=amount)


def due_at(step, *, enrolled_at, last_step_at, hours=None):
    """When `step` is due for an enrolment that entered at `enrolled_at` and handled its previous
    step at `last_step_at` (None before the first step)."""
    base = enrolled_at if step.delay_from == "entry" or last_step_at is None else last_step_at
    due = base + delay_of(step)
    if step.business_hours_only:
        due = (hours or BusinessHours()).next_open(due)
    return due
