"""Opening hours as a caller asks about them: open now? open Saturday? when do you open again?

Pure: a department's week (`{"mon": [["07:00", "18:00"]], ...}`, None = the store's) and the
store's closures (holidays, short days), always in the store's time zone whatever zone a time
comes in. `Hours` answers for any moment; `HoursView` is the same bound to the call's "now",
as flow templates read it (`hours.week`, `hours.day(vars.asked)`, `hours.next_open`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from ivr.domain import WEEKDAYS, Closure, DepartmentInfo, StoreInfo, parse_hours

DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
LOOK_AHEAD_DAYS = 14  # how far `next_open` and the closures a caller hears about reach


def clock(value: time) -> str:
    """`17:30` → "5:30 PM", `09:00` → "9 AM", `12:00` → "noon"."""
    if value == time(12):
        return "noon"
    hour = value.hour % 12 or 12
    suffix = "AM" if value.hour < 12 else "PM"
    return f"{hour} {suffix}" if value.minute == 0 else f"{hour}:{value.minute:02d} {suffix}"


def describe_spans(spans: tuple[tuple[time, time], ...]) -> str:
    """ "7 AM to 6 PM", "8 AM to noon and 1 PM to 5 PM"; "closed" for none."""
    if not spans:
        return "closed"
    return " and ".join(f"{clock(a)} to {clock(b)}" for a, b in spans)


def _day_range(first: int, last: int) -> str:
    if first == last:
        return DAY_NAMES[first]
    if last == first + 1:
        return f"{DAY_NAMES[first]} and {DAY_NAMES[last]}"
    return f"{DAY_NAMES[first]} to {DAY_NAMES[last]}"


@dataclass(frozen=True)
class DayHours:
    """One calendar day as a caller hears it."""

    day: date
    label: str  # "today", "tomorrow", "Saturday", "Thursday, December 24"
    spans: tuple[tuple[time, time], ...]
    closure: str | None = None  # the holiday's name when a closure sets this day's hours

    @property
    def open(self) -> bool:
        return bool(self.spans)

    @property
    def hours(self) -> str:
        return describe_spans(self.spans)

    @property
    def weekday(self) -> str:
        return DAY_NAMES[self.day.weekday()]


@dataclass(frozen=True)
class Hours:
    """A week of opening hours plus dated closures, in one time zone."""

    weekly: dict[str, tuple[tuple[time, time], ...]]
    closures: tuple[Closure, ...]
    tz: ZoneInfo

    @classmethod
    def of(cls, store: StoreInfo, department: DepartmentInfo | None = None) -> Hours:
        """The department's hours (the store's when it keeps none) with the store's closures."""
        raw = department.hours if department and department.hours is not None else store.hours
        weekly = {day: tuple(spans) for day, spans in parse_hours(raw or {}).items()}
        return cls(weekly=weekly, closures=store.closures, tz=store.tz)

    def closure_on(self, day: date) -> Closure | None:
        return next((c for c in self.closures if c.date == day), None)

    def spans_on(self, day: date) -> tuple[tuple[time, time], ...]:
        """That date's hours: a closure's (none = closed all day), else the weekday's."""
        closure = self.closure_on(day)
        if closure is not None:
            return closure.hours
        return self.weekly.get(WEEKDAYS[day.weekday()], ())

    def open_at(self, at: datetime) -> bool:
        local = at.astimezone(self.tz)
        return any(a <= local.time() < b for a, b in self.spans_on(local.date()))

    def next_open(self, at: datetime) -> datetime | None:
        """The next moment it opens after `at` (store time); None if closed for two weeks."""
        local = at.astimezone(self.tz)
        for offset in range(LOOK_AHEAD_DAYS + 1):
            day = local.date() + timedelta(days=offset)
            for opens, _ in self.spans_on(day):
                moment = datetime.combine(day, opens, tzinfo=self.tz)
                if moment > local:
                    return moment
        return None

    def due_after(self, at: datetime, seconds: float) -> datetime:
        """A task's due time: `seconds` of open time from `at`, counted from the next opening
        (closures and holidays honoured) when it is closed at `at`; from `at` itself when it
        never opens in the next two weeks."""
        start = at if self.open_at(at) else (self.next_open(at) or at)
        return start + timedelta(seconds=seconds)

    def closes_at(self, at: datetime) -> datetime | None:
        """When the span it is open in now ends; None when closed at `at`."""
        local = at.astimezone(self.tz)
        for opens, closes in self.spans_on(local.date()):
            if opens <= local.time() < closes:
                return datetime.combine(local.date(), closes, tzinfo=self.tz)
        return None

    def describe_week(self) -> str:
        """ "Monday to Friday 7 AM to 6 PM, Saturday 8 AM to 1 PM, closed Sunday": the usual
        week, consecutive days with the same hours read together."""
        groups: list[tuple[int, int, tuple[tuple[time, time], ...]]] = []
        for i, day in enumerate(WEEKDAYS):
            spans = self.weekly.get(day, ())
            if groups and groups[-1][2] == spans and groups[-1][1] == i - 1:
                groups[-1] = (groups[-1][0], i, spans)
            else:
                groups.append((i, i, spans))
        parts = [f"{_day_range(a, b)} {describe_spans(s)}" for a, b, s in groups if s]
        closed = [f"closed {_day_range(a, b)}" for a, b, s in groups if not s]
        return ", ".join(parts + closed) if parts else "closed"

    def closures_between(self, start: date, days: int) -> list[Closure]:
        end = start + timedelta(days=days)
        return sorted((c for c in self.closures if start <= c.date <= end), key=lambda c: c.date)


def day_asked(text: str | None, today: date) -> date:
    """The day a caller asked about ("are you open Saturday?", "open tomorrow?"): the next such
    weekday (today when it is today), else today."""
    words = (text or "").lower().replace("?", " ").replace(",", " ").split()
    if "tomorrow" in words:
        return today + timedelta(days=1)
    for i, name in enumerate(DAY_NAMES):
        day = name.lower()
        if any(len(w) >= 3 and (day.startswith(w) or w.startswith(day)) for w in words):
            return today + timedelta(days=(i - today.weekday()) % 7)
    return today


class HoursView:
    """`Hours` at the call's "now": what flow templates read as `hours`."""

    def __init__(self, hours: Hours, now: datetime) -> None:
        self._hours = hours
        self._now = now.astimezone(hours.tz)

    @property
    def open_now(self) -> bool:
        return self._hours.open_at(self._now)

    @property
    def week(self) -> str:
        return self._hours.describe_week()

    @property
    def today(self) -> DayHours:
        return self.day(None)

    def day(self, asked: str | date | None = None) -> DayHours:
        """The day a caller asked about, by their words (`vars.asked`) or a date."""
        today = self._now.date()
        when = asked if isinstance(asked, date) else day_asked(asked, today)
        delta = (when - today).days
        label = "today" if delta == 0 else "tomorrow" if delta == 1 else DAY_NAMES[when.weekday()]
        closure = self._hours.closure_on(when)
        return DayHours(
            day=when,
            label=label,
            spans=self._hours.spans_on(when),
            closure=closure.name if closure else None,
        )

    @property
    def next_open(self) -> str:
        """ "tomorrow at 7 AM", "Monday at 7 AM"; empty when closed for two weeks."""
        moment = self._hours.next_open(self._now)
        if moment is None:
            return ""
        return f"{self.day(moment.date()).label} at {clock(moment.time())}"

    def reopens(self, after: DayHours) -> str:
        """When it opens on a day after `after` ("Friday at 7 AM"); empty for none soon."""
        for offset in range(1, LOOK_AHEAD_DAYS + 1):
            day = self.day(after.day + timedelta(days=offset))
            if day.spans:
                return f"{day.label} at {clock(day.spans[0][0])}"
        return ""

    @property
    def closes_at(self) -> str:
        moment = self._hours.closes_at(self._now)
        return clock(moment.time()) if moment else ""

    @property
    def closures_ahead(self) -> list[DayHours]:
        """Holidays and short days in the next two weeks, as days (`label`, `closure`, `hours`)."""
        found = self._hours.closures_between(self._now.date(), LOOK_AHEAD_DAYS)
        return [self._closure_day(c) for c in found]

    def _closure_day(self, closure: Closure) -> DayHours:
        day = self.day(closure.date)
        if day.label in ("today", "tomorrow"):
            return day
        label = f"{DAY_NAMES[closure.date.weekday()]}, {closure.date:%B} {closure.date.day}"
        return DayHours(day.day, label, day.spans, day.closure)
