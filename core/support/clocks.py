"""SLA clocks, derived from a ticket's event log.

A support level promises, per priority, a **first response** (from opening to the first public
reply of an agent), a **next response** (from a customer's message, once answered before, to the
agent's next public reply) and a **resolution** (from opening to solved). :func:`clocks` replays
the ticket's events in order and gives each clock's state; nothing is stored that the log does
not say, so changing a calendar or a level's targets recomputes every clock the same way each
time.

The rules, which the tests name after what other tools get wrong:

* the clocks count the level's hours: a storefront's business calendar, or round the clock;
* while the ticket waits for the customer every clock pauses, and the time already used is kept;
  a customer's message (or any other status) resumes them;
* an agent's public reply meets the first response, or the next response that is running;
  an internal note meets nothing;
* a customer's message after an answer starts a new next-response clock with its full target
  (it reopens a waiting or solved ticket); one already running is not reset, so writing again
  never pushes a deadline back;
* solving the ticket meets the resolution; reopening resumes it with the time already used; a
  response clock still running when the ticket is solved or closed stops, neither met nor breached;
* a clock is breached at the instant its used time reaches the target, whether it is met later or
  not (a late answer is still a breach), and a change of priority re-targets the running clocks.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from core.catalog import SUPPORT_PRIORITIES as PRIORITIES
from core.catalog import SupportTerms
from core.support.calendar import ROUND_THE_CLOCK, Hours

FIRST_RESPONSE, NEXT_RESPONSE, RESOLUTION = "first_response", "next_response", "resolution"
TARGETS = (FIRST_RESPONSE, NEXT_RESPONSE, RESOLUTION)
STATUSES = ("new", "open", "waiting_for_customer", "waiting_for_third_party", "solved", "closed")
PAUSING = frozenset({"waiting_for_customer"})
DONE = frozenset({"solved", "closed"})
EVENTS = ("opened", "agent_reply", "customer_reply", "note", "status", "priority")


@dataclass(frozen=True)
class Event:
    """One step of a ticket, as its log keeps it. ``value`` is the new status or priority."""

    at: dt.datetime
    kind: str
    value: str | None = None


@dataclass(frozen=True)
class Clock:
    target: str
    cycle: int  # 1 for first response and resolution; the n-th next-response clock otherwise
    state: str  # running | paused | met | stopped
    started_at: dt.datetime
    limit: dt.timedelta
    used: dt.timedelta  # working time counted so far (as of the last event, or ``now``)
    due_at: dt.datetime | None  # when it breaches if nothing happens; None while paused or done
    met_at: dt.datetime | None = None
    breached_at: dt.datetime | None = None
    since: dt.datetime | None = None  # running: when it last resumed (the base of due_at)

    @property
    def breached(self) -> bool:
        return self.breached_at is not None

    @property
    def remaining(self) -> dt.timedelta:
        return max(self.limit - self.used, dt.timedelta(0))


Targets = Mapping[tuple[str, str], dt.timedelta]  # (priority, target) -> the time allowed


def level_targets(terms: SupportTerms) -> Targets:
    """A level's targets as the clocks read them; a target of 0 minutes is no promise, so no clock."""
    return {(t.priority, name): dt.timedelta(minutes=minutes) for t in terms.targets
            for name, minutes in zip(TARGETS, (t.first_response, t.next_response, t.resolution)) if minutes}


def level_hours(terms: SupportTerms, calendar: Hours) -> Hours:
    """The hours a level's clocks count: its storefront's business calendar, or every hour."""
    return calendar if terms.hours == "business" else ROUND_THE_CLOCK


def clocks(events: Iterable[Event], targets: Targets, hours: Hours, now: dt.datetime | None = None) -> list[Clock]:
    """Every clock of a ticket, in the order they started, as of ``now`` (default: its last event).

    Targets missing for a priority mean the level promises nothing there: no clock.
    """
    ordered = sorted(events, key=lambda e: e.at)  # stable: events of one instant keep their log order
    if not ordered or ordered[0].kind != "opened":
        raise ValueError("a ticket's log starts with its opening")
    priority = ordered[0].value or "normal"
    status = "new"
    done: list[Clock] = []
    live: dict[str, Clock] = {}
    answered = False
    cycles = 0

    def start(target: str, at: dt.datetime, cycle: int = 1) -> None:
        limit = targets.get((priority, target))
        if limit is not None:
            state = "paused" if status in PAUSING else "running"
            live[target] = Clock(target, cycle, state, at, limit, dt.timedelta(0), None, since=at)

    def advance(to: dt.datetime) -> None:
        for key, c in live.items():
            if c.state != "running":
                continue
            worked = hours.working_time(c.since, to)
            breached_at = c.breached_at
            if breached_at is None and c.used + worked >= c.limit:
                breached_at = hours.add(c.since, c.limit - c.used)
            live[key] = replace(c, used=c.used + worked, since=to, breached_at=breached_at)

    def finish(target: str, at: dt.datetime, state: str) -> None:
        c = live.pop(target, None)
        if c is not None:
            done.append(replace(c, state=state, met_at=at if state == "met" else None, since=None, due_at=None))

    for event in ordered:
        advance(event.at)
        kind = event.kind
        if kind == "opened":
            start(FIRST_RESPONSE, event.at)
            start(RESOLUTION, event.at)
        elif kind == "agent_reply":
            answered = True
            finish(FIRST_RESPONSE, event.at, "met")
            finish(NEXT_RESPONSE, event.at, "met")
        elif kind == "customer_reply":
            if status in PAUSING or status == "solved":
                status = _set_status(live, status, "open", event.at)
                _reopen(live, done, event.at, status)
            if answered and NEXT_RESPONSE not in live:
                cycles += 1
                start(NEXT_RESPONSE, event.at, cycles)
        elif kind == "status":
            new = event.value or status
            if new not in STATUSES:
                raise ValueError(f"unknown status {new!r}")
            if status == "solved" and new not in ("solved", "closed"):
                _reopen(live, done, event.at, new)
            status = _set_status(live, status, new, event.at)
            if new == "solved":
                finish(RESOLUTION, event.at, "met")
                finish(FIRST_RESPONSE, event.at, "stopped")
                finish(NEXT_RESPONSE, event.at, "stopped")
            elif new == "closed":
                for target in list(live):
                    finish(target, event.at, "met" if target == RESOLUTION else "stopped")
        elif kind == "priority":
            if event.value not in PRIORITIES:
                raise ValueError(f"unknown priority {event.value!r}")
            priority = event.value
            for key, c in list(live.items()):
                limit = targets.get((priority, c.target))
                if limit is None:
                    finish(key, event.at, "stopped")
                else:  # a stricter target already spent is breached now
                    late = c.breached_at is None and c.used >= limit
                    live[key] = replace(c, limit=limit, breached_at=event.at if late else c.breached_at)
        elif kind != "note":
            raise ValueError(f"unknown ticket event {kind!r}")
    if now is not None and now > ordered[-1].at:
        advance(now)
    out = done + [_with_due(c, hours) for c in live.values()]
    return sorted(out, key=lambda c: (c.started_at, TARGETS.index(c.target), c.cycle))


def _set_status(live: dict[str, Clock], old: str, new: str, at: dt.datetime) -> str:
    """Pause the running clocks when the ticket starts waiting for the customer, resume them after."""
    for key, c in live.items():
        if new in PAUSING and c.state == "running":
            live[key] = replace(c, state="paused", since=None)
        elif new not in PAUSING and c.state == "paused":
            live[key] = replace(c, state="running", since=at)
    return new


def _reopen(live: dict[str, Clock], done: list[Clock], at: dt.datetime, status: str) -> None:
    """A solved ticket reopened: its resolution clock runs on, with the time it had used."""
    for i in range(len(done) - 1, -1, -1):
        c = done[i]
        if c.target == RESOLUTION and c.state == "met":
            del done[i]
            live[RESOLUTION] = replace(c, state="paused" if status in PAUSING else "running", met_at=None,
                                       since=None if status in PAUSING else at)
            return


def _with_due(c: Clock, hours: Hours) -> Clock:
    if c.state != "running":
        return c
    due = c.breached_at if c.breached_at is not None else hours.add(c.since, c.limit - c.used)
    return replace(c, due_at=due)


def alert_moments(c: Clock, hours: Hours, fractions: Iterable[float]) -> list[tuple[int, dt.datetime]]:
    """When a running clock reaches each fraction of its target (the warning before a breach, then
    the escalation levels, 1.0 being the breach): (level, instant), only for those still ahead."""
    if c.state != "running":
        return []
    out = []
    for level, fraction in enumerate(fractions, start=1):
        mark = dt.timedelta(microseconds=round(c.limit / dt.timedelta(microseconds=1) * fraction))
        if mark > c.used:
            out.append((level, hours.add(c.since, mark - c.used)))
    return out



def response_times(events: Iterable[Event], hours: Hours) -> tuple[dt.timedelta | None, dt.timedelta | None]:
    """What a report shows of a ticket, whatever its level promised: the working time from its
    opening to the first public reply of an agent, and to its last solving (or closing), in
    ``hours``, without the time it waited for the customer; None for what has not happened.
    The first is there whenever an agent has answered, even on a ticket solved in the same step."""
    ordered = sorted(events, key=lambda e: e.at)
    if not ordered or ordered[0].kind != "opened":
        raise ValueError("a ticket's log starts with its opening")
    used, since, status = dt.timedelta(0), ordered[0].at, "new"
    first = resolved = None
    for event in ordered[1:]:
        if since is not None:
            used += hours.working_time(since, event.at)
        if event.kind == "agent_reply" and first is None:
            first = used
        elif event.kind == "customer_reply" and status in PAUSING | DONE:
            status, resolved = "open", None
        elif event.kind == "status":
            status = event.value or status
            resolved = (used if resolved is None else resolved) if status in DONE else None
        since = None if status in PAUSING | DONE else event.at  # a solved ticket counts no time either
    return first, resolved
