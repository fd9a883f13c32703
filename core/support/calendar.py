"""Business calendars: when a storefront's support team works, for the SLA clocks.

Each storefront has one (``core/data/calendars.json``): its time zone, its weekly hours, the
public holidays of its country and region (from the ``holidays`` package, which follows each
country's law year by year, substitute days included), and dated overrides (a half day on
24 December, an exceptional closure, an opening on a holiday). A support level counts either
the business hours of this calendar or calendar hours (:data:`ROUND_THE_CLOCK`).

Instants are aware datetimes and durations are ``timedelta`` (whole microseconds, exact). The
calendar works in local time and converts, so a day of a daylight-saving change counts the hours
the wall clock lived: 9:00 to 18:00 is 9 hours on either side of it.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

DATA = Path(__file__).parents[1] / "data" / "calendars.json"
UTC = dt.timezone.utc
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
HORIZON = 3 * 366  # days a computation may walk before it gives up (a calendar that never opens)

# A day's opening hours: (start, end) in minutes after local midnight, sorted, end up to 24:00.
Intervals = tuple[tuple[int, int], ...]


class CalendarError(ValueError):
    """A calendar file that cannot be used; the message names the storefront and the field."""


@dataclass(frozen=True)
class Hours:
    """Working time, day by day in one time zone: the base of both kinds of clock."""

    zone: dt.tzinfo

    def hours_on(self, day: dt.date) -> Intervals:
        raise NotImplementedError

    def intervals(self, start: dt.datetime, end: dt.datetime | None = None) -> Iterator[tuple[dt.datetime, dt.datetime]]:
        """The open intervals (UTC) that overlap ``[start, end)``, clipped to it, in order;
        without ``end``, for at most :data:`HORIZON` days."""
        start = _aware(start)
        end = _aware(end) if end is not None else None
        day = start.astimezone(self.zone).date() - dt.timedelta(days=1)  # a night shift may start the day before
        last = (end.astimezone(self.zone).date() if end is not None else day + dt.timedelta(days=HORIZON))
        while day <= last:
            midnight = dt.datetime.combine(day, dt.time(0), self.zone)
            for a, b in self.hours_on(day):
                s = (midnight + dt.timedelta(minutes=a)).astimezone(UTC)
                e = (midnight + dt.timedelta(minutes=b)).astimezone(UTC)
                s, e = max(s, start), min(e, end) if end is not None else e
                if s < e:
                    yield s, e
            day += dt.timedelta(days=1)

    def working_time(self, start: dt.datetime, end: dt.datetime) -> dt.timedelta:
        """How much of ``[start, end)`` is working time."""
        if end <= start:
            return dt.timedelta(0)
        return sum((e - s for s, e in self.intervals(start, end)), dt.timedelta(0))

    def add(self, start: dt.datetime, duration: dt.timedelta) -> dt.datetime:
        """The instant at which ``duration`` of working time after ``start`` has passed: a
        deadline. It always falls in (or at the end of) an open interval."""
        if duration <= dt.timedelta(0):
            return _aware(start)
        left = duration
        for s, e in self.intervals(start):
            if e - s >= left:
                return s + left
            left -= e - s
        raise CalendarError(f"no {duration} of working time within {HORIZON} days of {start.isoformat()}")

    def is_open(self, at: dt.datetime) -> bool:
        return any(s <= _aware(at) for s, _ in self.intervals(at, _aware(at) + dt.timedelta(microseconds=1)))

    def next_open(self, at: dt.datetime) -> dt.datetime:
        """``at`` if the calendar is open then, else the next opening: when a person may be told."""
        for s, _ in self.intervals(at):
            return s
        raise CalendarError(f"the calendar does not open within {HORIZON} days of {at.isoformat()}")


@dataclass(frozen=True)
class RoundTheClock(Hours):
    """Calendar hours: every minute counts, nights, weekends and holidays included."""

    zone: dt.tzinfo = UTC

    def hours_on(self, day: dt.date) -> Intervals:
        return ((0, 24 * 60),)


ROUND_THE_CLOCK = RoundTheClock()


@dataclass(frozen=True)
class BusinessCalendar(Hours):
    """A storefront's support hours: weekly hours, minus its public holidays, with dated overrides."""

    storefront: str = ""
    week: tuple[Intervals, ...] = ()  # Monday first
    country: str = ""
    region: str | None = None
    overrides: Mapping[dt.date, Intervals] = field(default_factory=dict)

    @cached_property
    def _holidays(self) -> holidays.HolidayBase:
        return holidays.country_holidays(self.country, subdiv=self.region)

    def holiday(self, day: dt.date) -> str | None:
        """The name of the public holiday on ``day`` (in English), if it is one."""
        return self._holidays.get(day)

    def hours_on(self, day: dt.date) -> Intervals:
        if day in self.overrides:
            return self.overrides[day]
        if self.holiday(day):
            return ()
        return self.week[day.weekday()]


def _aware(at: dt.datetime) -> dt.datetime:
    if at.tzinfo is None:
        raise ValueError(f"{at!r} has no time zone; the clocks compare instants")
    return at


_RANGE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")


def _intervals(where: str, ranges: list[str]) -> Intervals:
    out = []
    for text in ranges:
        m = _RANGE.match(text) if isinstance(text, str) else None
        if not m:
            raise CalendarError(f"{where}: {text!r} is not a range of hours such as '09:00-18:00'")
        a, b = int(m[1]) * 60 + int(m[2]), int(m[3]) * 60 + int(m[4])
        if b > 24 * 60 or a >= b:
            raise CalendarError(f"{where}: {text!r} ends before it starts")
        out.append((a, b))
    out.sort()
    if any(prev[1] > nxt[0] for prev, nxt in zip(out, out[1:])):
        raise CalendarError(f"{where}: the ranges {ranges} overlap")
    return tuple(out)


def _days(where: str, key: str) -> list[int]:
    first, _, last = key.partition("-")
    if first not in DAYS or (last and last not in DAYS):
        raise CalendarError(f"{where}: {key!r} is not a day or a range of days such as 'mon-fri'")
    a, b = DAYS.index(first), DAYS.index(last or first)
    if b < a:
        raise CalendarError(f"{where}: {key!r} runs backwards")
    return list(range(a, b + 1))


def parse_calendar(code: str, raw: dict) -> BusinessCalendar:
    where = f"calendars.json: {code}"
    try:
        zone = ZoneInfo(raw["time_zone"])
    except (KeyError, ZoneInfoNotFoundError, ValueError):
        raise CalendarError(f"{where}: time_zone {raw.get('time_zone')!r} is not an IANA time zone") from None
    week: list[Intervals] = [()] * 7
    for key, ranges in raw.get("week", {}).items():
        for day in _days(f"{where}.week", key):
            week[day] = _intervals(f"{where}.week.{key}", ranges)
    if not any(week):
        raise CalendarError(f"{where}: the week has no working hours")
    country, region = raw.get("holidays", {}).get("country"), raw.get("holidays", {}).get("region")
    try:
        holidays.country_holidays(country, subdiv=region)
    except (NotImplementedError, KeyError, TypeError) as exc:
        raise CalendarError(f"{where}: holidays {country!r}/{region!r} unknown to the holidays package ({exc})") from None
    overrides = {}
    for entry in raw.get("overrides", []):
        try:
            day = dt.date.fromisoformat(entry["date"])
        except (KeyError, TypeError, ValueError):
            raise CalendarError(f"{where}.overrides: {entry!r} needs a date YYYY-MM-DD") from None
        overrides[day] = _intervals(f"{where}.overrides.{day}", entry.get("hours", []))
    return BusinessCalendar(zone=zone, storefront=code, week=tuple(week), country=country, region=region,
                            overrides=overrides)


def load_calendars(path: Path = DATA) -> dict[str, BusinessCalendar]:
    data = json.loads(path.read_text(encoding="utf-8"))
    return {code: parse_calendar(code, raw) for code, raw in data["calendars"].items()}
