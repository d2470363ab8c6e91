"""When broadcasts go out: quiet hours and recurrences, in Bangkok time."""

import calendar
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from bot.domain.calendar import BANGKOK, to_bangkok
from bot.domain.normalize import ascii_digits
from bot.domain.proposal_filter import parse_date

EVERY = ("daily", "weekly", "monthly")


@dataclass(frozen=True)
class QuietHours:
    """A nightly span (Bangkok time) in which nothing is sent; sending resumes after it."""

    start: time = time(21, 0)
    end: time = time(7, 0)

    @classmethod
    def parse(cls, typed: str) -> "QuietHours":
        """Read "21:00-07:00"; an empty string means no quiet hours."""
        if not typed.strip():
            return cls(time(0, 0), time(0, 0))
        start, _, end = typed.partition("-")
        return cls(time.fromisoformat(start.strip()), time.fromisoformat(end.strip()))

    def quiet(self, moment: datetime) -> bool:
        """Tell whether nothing may be sent at a moment."""
        local = to_bangkok(moment).time()
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


def next_due(due: datetime, every: str | None, first: datetime | None = None) -> datetime | None:
    """Return the run after one due at a moment: a day, week or month later (Bangkok time).

    A monthly run keeps the day of the first run (`first`, else `due`): from 31 January it goes
    on 28 February and 31 March, the 31st meaning each month's last day.
    """
    if every is None:
        return None
    local = to_bangkok(due)
    if every == "daily":
        return local + timedelta(days=1)
    if every == "weekly":
        return local + timedelta(days=7)
    year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
    wanted = to_bangkok(first).day if first is not None else local.day
    day = min(wanted, calendar.monthrange(year, month)[1])
    return local.replace(year=year, month=month, day=day)


EVERY_WORDS = {
    "daily": "daily", "ทุกวัน": "daily",
    "weekly": "weekly", "ทุกสัปดาห์": "weekly",
    "monthly": "monthly", "ทุกเดือน": "monthly",
}  # fmt: skip


def parse_when(typed: str) -> tuple[datetime | None, str | None] | None:
    """Read "1/12/2569 09:00 ทุกวัน" as a Bangkok moment and a recurrence; None if unreadable.

    The moment is None for "now" (only a recurrence, or nothing, was typed).
    """
    words = typed.split()
    every = None
    if words and words[-1].casefold() in EVERY_WORDS:
        every = EVERY_WORDS[words.pop().casefold()]
    if not words:
        return None, every
    day = parse_date(words[0])
    clock = time(9, 0)
    if len(words) > 2 or day is None:
        return None
    if len(words) == 2:
        try:
            clock = time.fromisoformat(ascii_digits(words[1]).replace(".", ":").zfill(5))
        except ValueError:
            return None
    return datetime.combine(day, clock, BANGKOK), every
