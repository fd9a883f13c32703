"""Business calendars and SLA clocks (core/support): pure functions over a ticket's event log, so
these tests need no database. They are named after what other support tools get wrong."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.countries.storefronts import load_subsidiaries
from core.support.calendar import (
    ROUND_THE_CLOCK,
    CalendarError,
    load_calendars,
    parse_calendar,
)
from core.support.clocks import (
    FIRST_RESPONSE,
    NEXT_RESPONSE,
    RESOLUTION,
    Event,
    alert_moments,
    clocks,
)

CAL = load_calendars()
FR = CAL["FR"]
H = dt.timedelta(hours=1)


def paris(y, mo, d, h=0, mi=0):
    return dt.datetime(y, mo, d, h, mi, tzinfo=FR.zone)


TARGETS = {("normal", FIRST_RESPONSE): 4 * H, ("normal", NEXT_RESPONSE): 8 * H, ("normal", RESOLUTION): 24 * H,
           ("urgent", FIRST_RESPONSE): 1 * H, ("urgent", NEXT_RESPONSE): 2 * H, ("urgent", RESOLUTION): 8 * H}


def by_target(cs):
    return {(c.target, c.cycle): c for c in cs}


# --- calendars -----------------------------------------------------------------------------------


def test_every_storefront_has_a_support_calendar():
    assert set(CAL) == set(load_subsidiaries())


def test_business_hours_skip_the_night_and_the_weekend():
    friday = paris(2026, 12, 4, 17, 30)  # a Friday, half an hour before closing
    assert FR.add(friday, H) == paris(2026, 12, 7, 9, 30)  # Monday morning
    assert FR.working_time(friday, paris(2026, 12, 7, 10)) == H + H / 2  # Friday 17:30-18:00, Monday 09:00-10:00
    assert not FR.is_open(paris(2026, 12, 5, 11)) and FR.is_open(paris(2026, 12, 7, 9))
    assert not FR.is_open(paris(2026, 12, 7, 18))  # closing time is closed
    assert FR.next_open(paris(2026, 12, 4, 23)) == paris(2026, 12, 7, 9)


def test_a_daylight_saving_day_has_the_hours_of_the_wall_clock():
    # Europe switches to summer time on Sunday 29 March 2026: Monday still has 9 working hours
    assert FR.working_time(paris(2026, 3, 27, 12), paris(2026, 3, 30, 12)) == 9 * H
    assert FR.add(paris(2026, 3, 27, 17), 2 * H) == paris(2026, 3, 30, 10)


@pytest.mark.parametrize("day, closed, open_", [
    (dt.date(2026, 5, 14), "FR", "GB"),  # Ascension Day
    (dt.date(2026, 6, 24), "QC", "CA"),  # Fête nationale du Québec, a working day in Ontario
    (dt.date(2026, 11, 26), "US", "CA"),  # Thanksgiving
    (dt.date(2026, 12, 7), "IT", "FR"),  # Sant'Ambrogio, Milano's patron saint
    (dt.date(2026, 6, 4), "DE", "NL"),  # Corpus Christi in Saarland
])
def test_a_holiday_in_one_storefront_is_a_working_day_in_another(day, closed, open_):
    a, b = CAL[closed], CAL[open_]
    assert a.holiday(day) and not b.holiday(day)
    start = dt.datetime.combine(day, dt.time(0), a.zone)
    assert a.working_time(start, start + dt.timedelta(days=1)) == dt.timedelta(0)
    start = dt.datetime.combine(day, dt.time(0), b.zone)
    assert b.working_time(start, start + dt.timedelta(days=1)) == 9 * H


def test_dated_overrides_replace_a_days_hours():
    de = CAL["DE"]
    eve = dt.datetime(2026, 12, 24, tzinfo=de.zone)
    assert de.working_time(eve, eve + dt.timedelta(days=1)) == dt.timedelta(0)  # Heiligabend: closed
    nye = dt.datetime(2026, 12, 31, tzinfo=de.zone)
    assert de.working_time(nye, nye + dt.timedelta(days=1)) == 4 * H  # Silvester: the morning


def test_round_the_clock_counts_every_minute():
    start = paris(2026, 12, 4, 23)
    assert ROUND_THE_CLOCK.add(start, 10 * H) == start + 10 * H
    assert ROUND_THE_CLOCK.working_time(start, start + 48 * H) == 48 * H


@pytest.mark.parametrize("raw, says", [
    ({"time_zone": "Mars/Olympus", "week": {"mon-fri": ["09:00-18:00"]}, "holidays": {"country": "FR"}}, "time_zone"),
    ({"time_zone": "Europe/Paris", "week": {"mon-fri": ["9h-18h"]}, "holidays": {"country": "FR"}}, "range of hours"),
    ({"time_zone": "Europe/Paris", "week": {"mon-fri": ["09:00-13:00", "12:00-18:00"]}, "holidays": {"country": "FR"}},
     "overlap"),
    ({"time_zone": "Europe/Paris", "week": {"fri-mon": ["09:00-18:00"]}, "holidays": {"country": "FR"}}, "backwards"),
    ({"time_zone": "Europe/Paris", "week": {}, "holidays": {"country": "FR"}}, "no working hours"),
    ({"time_zone": "Europe/Paris", "week": {"mon": ["09:00-18:00"]}, "holidays": {"country": "XX"}}, "holidays"),
    ({"time_zone": "Europe/Paris", "week": {"mon": ["09:00-18:00"]}, "holidays": {"country": "FR"},
      "overrides": [{"date": "24/12", "hours": []}]}, "date"),
])
def test_a_broken_calendar_is_refused_with_its_storefront_and_field(raw, says):
    with pytest.raises(CalendarError, match=says) as exc:
        parse_calendar("ZZ", raw)
    assert "ZZ" in str(exc.value)


def test_the_calendar_file_is_the_one_loaded(tmp_path):
    path = tmp_path / "calendars.json"
    path.write_text(json.dumps({"calendars": {"FR": {"time_zone": "Europe/Paris", "week": {"sat": ["10:00-12:00"]},
                                                     "holidays": {"country": "FR"}}}}))
    mine = load_calendars(path)["FR"]
    assert mine.working_time(paris(2026, 12, 5), paris(2026, 12, 6)) == 2 * H


# --- clocks --------------------------------------------------------------------------------------

OPEN = paris(2026, 12, 7, 9)  # a Monday at opening


def test_an_agent_reply_fulfils_the_first_and_the_next_response_target():
    log = [Event(OPEN, "opened"), Event(OPEN + H, "agent_reply"), Event(OPEN + 2 * H, "customer_reply"),
           Event(OPEN + 3 * H, "agent_reply")]
    got = by_target(clocks(log, TARGETS, FR))
    first, nxt = got[FIRST_RESPONSE, 1], got[NEXT_RESPONSE, 1]
    assert (first.state, first.met_at, first.used, first.breached) == ("met", OPEN + H, H, False)
    assert (nxt.state, nxt.started_at, nxt.met_at, nxt.used, nxt.breached) == ("met", OPEN + 2 * H, OPEN + 3 * H, H, False)
    assert got[RESOLUTION, 1].state == "running" and got[RESOLUTION, 1].used == 3 * H


def test_an_internal_note_meets_nothing():
    got = by_target(clocks([Event(OPEN, "opened"), Event(OPEN + H, "note")], TARGETS, FR))
    assert got[FIRST_RESPONSE, 1].state == "running" and got[FIRST_RESPONSE, 1].due_at == OPEN + 4 * H


def test_a_customer_reply_reopens_and_resets_the_next_response():
    log = [Event(OPEN, "opened"), Event(OPEN + H, "agent_reply"), Event(OPEN + H, "status", "waiting_for_customer"),
           Event(OPEN + 2 * H, "customer_reply"), Event(OPEN + 3 * H, "agent_reply"),
           Event(OPEN + 4 * H, "status", "solved"), Event(OPEN + 5 * H, "customer_reply")]
    got = by_target(clocks(log, TARGETS, FR, now=OPEN + 6 * H))
    second = got[NEXT_RESPONSE, 2]
    assert (second.state, second.started_at, second.used) == ("running", OPEN + 5 * H, H)
    assert second.due_at == OPEN + dt.timedelta(days=1, hours=4)  # 8 business hours: Monday 14-18, Tuesday 9-13
    assert got[NEXT_RESPONSE, 1].met_at == OPEN + 3 * H
    resolution = got[RESOLUTION, 1]  # reopened: it runs on with the time it had used
    assert resolution.state == "running" and resolution.met_at is None
    assert resolution.used == 4 * H  # 09-10, 11-13 (10-11 waiting for the customer), then 14-15 after the reopening


def test_a_customer_writing_again_never_pushes_the_deadline_back():
    log = [Event(OPEN, "opened"), Event(OPEN + H, "agent_reply"), Event(OPEN + 2 * H, "customer_reply"),
           Event(OPEN + 5 * H, "customer_reply")]
    got = by_target(clocks(log, TARGETS, FR))
    assert list(k for k in got if k[0] == NEXT_RESPONSE) == [(NEXT_RESPONSE, 1)]
    assert got[NEXT_RESPONSE, 1].due_at == OPEN + dt.timedelta(days=1, hours=1)  # 8 h from 11:00: Tuesday 10:00


def test_waiting_for_the_customer_pauses_the_clock_and_keeps_the_time_used():
    log = [Event(OPEN, "opened"), Event(OPEN + 3 * H, "status", "waiting_for_customer")]
    paused = by_target(clocks(log, TARGETS, FR, now=OPEN + 72 * H))[FIRST_RESPONSE, 1]
    assert (paused.state, paused.used, paused.due_at, paused.breached) == ("paused", 3 * H, None, False)
    log.append(Event(OPEN + 72 * H, "customer_reply"))  # Thursday 09:00: it resumes with one hour left
    resumed = by_target(clocks(log, TARGETS, FR))[FIRST_RESPONSE, 1]
    assert (resumed.state, resumed.used, resumed.due_at) == ("running", 3 * H, OPEN + 73 * H)
    # waiting for a third party is the provider's time: it does not pause
    third = clocks([Event(OPEN, "opened"), Event(OPEN + H, "status", "waiting_for_third_party")], TARGETS, FR,
                   now=OPEN + 3 * H)
    assert by_target(third)[RESOLUTION, 1].used == 3 * H


def test_a_late_answer_is_still_a_breach_at_the_instant_the_target_ran_out():
    log = [Event(OPEN + 7 * H, "opened", "urgent"), Event(OPEN + 30 * H, "agent_reply")]  # 16:00, answered Tuesday 15:00
    first = by_target(clocks(log, TARGETS, FR))[FIRST_RESPONSE, 1]
    assert first.state == "met" and first.breached_at == OPEN + 8 * H  # 17:00 on Monday
    running = by_target(clocks(log[:1], TARGETS, FR, now=OPEN + 9 * H))[FIRST_RESPONSE, 1]
    assert running.state == "running" and running.breached and running.due_at == OPEN + 8 * H


def test_a_response_clock_stops_when_the_ticket_is_solved_without_an_answer():
    log = [Event(OPEN, "opened"), Event(OPEN + H, "status", "solved")]
    got = by_target(clocks(log, TARGETS, FR))
    assert got[FIRST_RESPONSE, 1].state == "stopped" and not got[FIRST_RESPONSE, 1].breached
    assert got[RESOLUTION, 1].state == "met" and got[RESOLUTION, 1].used == H


def test_a_change_of_priority_retargets_the_running_clocks():
    log = [Event(OPEN, "opened"), Event(OPEN + 2 * H, "priority", "urgent")]
    got = by_target(clocks(log, TARGETS, FR))
    first = got[FIRST_RESPONSE, 1]
    assert first.limit == H and first.breached_at == OPEN + 2 * H  # the stricter target was already spent
    assert got[RESOLUTION, 1].due_at == OPEN + 8 * H


def test_a_level_without_a_target_has_no_clock():
    only = {("normal", RESOLUTION): 24 * H}
    assert [c.target for c in clocks([Event(OPEN, "opened"), Event(OPEN + H, "agent_reply")], only, FR)] == [RESOLUTION]


def test_the_clocks_are_the_same_each_time_they_are_derived_and_follow_the_calendar():
    log = [Event(OPEN + 8 * H, "opened"), Event(OPEN + 24 * H, "customer_reply"), Event(OPEN + 25 * H, "agent_reply")]
    assert clocks(log, TARGETS, FR) == clocks(list(reversed(log)), TARGETS, FR)
    business = by_target(clocks(log, TARGETS, FR))[FIRST_RESPONSE, 1]
    anytime = by_target(clocks(log, TARGETS, ROUND_THE_CLOCK))[FIRST_RESPONSE, 1]
    assert business.used == 2 * H and not business.breached  # Monday 17-18, Tuesday 09-10
    assert anytime.used == 17 * H and anytime.breached_at == OPEN + 12 * H  # 21:00 on Monday


@pytest.mark.parametrize("log, says", [
    ([Event(OPEN, "agent_reply")], "starts with its opening"),
    ([Event(OPEN, "opened"), Event(OPEN, "status", "lost")], "unknown status"),
    ([Event(OPEN, "opened"), Event(OPEN, "priority", "asap")], "unknown priority"),
    ([Event(OPEN, "opened"), Event(OPEN, "escalated")], "unknown ticket event"),
])
def test_a_log_the_clocks_cannot_read_is_refused(log, says):
    with pytest.raises(ValueError, match=says):
        clocks(log, TARGETS, FR)


# --- warnings and escalations --------------------------------------------------------------------


def test_a_business_hours_level_never_alerts_at_night():
    # normal priority on a business-hours level, opened at 17:00 on a Friday: 4 hours of target
    log = [Event(paris(2026, 12, 4, 17), "opened")]
    first = by_target(clocks(log, TARGETS, FR))[FIRST_RESPONSE, 1]
    moments = dict(alert_moments(first, FR, [0.75, 1.0]))
    assert moments == {1: paris(2026, 12, 7, 11), 2: paris(2026, 12, 7, 12)}  # Monday morning, not the weekend
    assert FR.next_open(paris(2026, 12, 4, 18)) == paris(2026, 12, 7, 9)  # a job that runs at closing waits


@settings(max_examples=150, deadline=None)
@given(opened=st.datetimes(min_value=dt.datetime(2026, 1, 1), max_value=dt.datetime(2027, 12, 31),
                           timezones=st.just(dt.timezone.utc)),
       minutes=st.integers(min_value=1, max_value=60 * 24 * 5), storefront=st.sampled_from(sorted(CAL)),
       fraction=st.sampled_from([0.5, 0.75, 0.9, 1.0]))
def test_every_alert_of_a_business_hours_level_falls_in_the_storefronts_hours(opened, minutes, storefront, fraction):
    cal = CAL[storefront]
    targets = {("normal", RESOLUTION): dt.timedelta(minutes=minutes)}
    c, = clocks([Event(opened, "opened")], targets, cal)
    for _, moment in alert_moments(c, cal, [fraction]):
        assert cal.working_time(c.since, moment) == c.limit * fraction
        told = cal.next_open(moment)
        assert told >= moment and cal.is_open(told)
        assert cal.is_open(moment) or told > moment  # a moment at closing time is told at the next opening
