"""The one clock. Domain code never reads the wall clock: it is handed a :class:`Clock`.

``FrozenClock`` lets tests (and ``univers renew --at``) move time over months.
"""

from __future__ import annotations

import datetime as dt
import threading

UTC = dt.timezone.utc


class Clock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(UTC)

    def today(self) -> dt.date:
        return self.now().date()


class FrozenClock(Clock):
    def __init__(self, start: dt.datetime | dt.date | str):
        self._lock = threading.Lock()
        self._now = self._coerce(start)

    @staticmethod
    def _coerce(value: dt.datetime | dt.date | str) -> dt.datetime:
        if isinstance(value, str):
            value = dt.datetime.fromisoformat(value) if "T" in value else dt.date.fromisoformat(value)
        if not isinstance(value, dt.datetime):
            value = dt.datetime.combine(value, dt.time(6, 0), UTC)
        return value if value.tzinfo else value.replace(tzinfo=UTC)

    def now(self) -> dt.datetime:
        with self._lock:
            return self._now

    def set(self, value: dt.datetime | dt.date | str) -> None:
        with self._lock:
            self._now = self._coerce(value)

    def advance(self, **delta: float) -> dt.datetime:
        with self._lock:
            self._now += dt.timedelta(**delta)
            return self._now


def add_months(day: dt.date, months: int) -> dt.date:
    """Calendar months, clamped to the month's end (Jan 31 + 1 month = Feb 28 or 29)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    next_month = dt.date(year + month // 12, month % 12 + 1, 1)
    last = (next_month - dt.timedelta(days=1)).day
    return dt.date(year, month, min(day.day, last))
