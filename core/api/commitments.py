"""HTTP handlers for a pay-as-you-go project's savings plans and spending alert (domains:
:mod:`core.usage.commitments`, :mod:`core.usage.alerts`).

``POST /v1/services/{id}/commitments`` commits to a monthly amount for 12 months at the
storefront's discount (idempotent on the first month); ``GET`` lists the plans.
``PUT /v1/services/{id}/spending-alert`` sets the threshold that warns the billing contact
once a month; ``GET`` shows it and ``DELETE`` removes it.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import msgspec
from anyio import to_thread
from litestar import Request, Response, delete, get, post, put
from litestar.params import JSONBody

from core.api.common import PathId, caller, runtime
from core.billing.views import Money, money
from core.errors import InvalidInput
from core.i18n import N_
from core.money import ppm_to_percent
from core.uow import unit_of_work
from core.usage import alerts, commitments

# --- schemas -------------------------------------------------------------------------------------

MonthText = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$", description="A month, YYYY-MM")]


class CommitmentCreate(msgspec.Struct, forbid_unknown_fields=True):
    monthly: Annotated[str, msgspec.Meta(max_length=32, description="The amount committed each month, in the project's "
                                                                     "currency, such as \"100.00\"")]
    months: Annotated[int, msgspec.Meta(ge=1, le=60, description="The plan's length: one the storefront offers")] = 12
    starts: MonthText | None = None  # the first month (default: the next one)


class CommitmentRead(msgspec.Struct):
    id: int
    service_id: int
    monthly: Money  # due every month of the plan, excluding tax
    percent_off: str  # the discount on the usage the plan covers
    covers: Money  # the list value of the usage a month of the plan covers
    months: int
    starts_on: dt.date  # the first month's first day
    ends_on: dt.date  # the first day after the plan
    created_at: dt.datetime


class SpendingAlertUpdate(msgspec.Struct, forbid_unknown_fields=True):
    threshold: Annotated[str, msgspec.Meta(max_length=32, description="In the project's currency, excluding tax, such "
                                                                      "as \"100.00\"")]


class SpendingAlertRead(msgspec.Struct):
    service_id: int
    threshold: Money
    notified_period: dt.date | None  # the month whose crossing was notified (the first day)
    set_at: dt.datetime


def commitment_read(row: dict, locale: str) -> CommitmentRead:
    cur = row["currency"]
    return CommitmentRead(row["id"], row["service_id"], money(row["monthly_minor"], cur, locale),
                          ppm_to_percent(row["discount_ppm"]),
                          money(commitments.covers(row["monthly_minor"], row["discount_ppm"]), cur, locale),
                          row["months"], row["starts_on"], row["ends_on"], row["created_at"])


def alert_read(row: dict, locale: str) -> SpendingAlertRead:
    return SpendingAlertRead(row["service_id"], money(row["threshold_minor"], row["currency"], locale),
                             row["notified_period"], row["set_at"])


# --- handlers ------------------------------------------------------------------------------------


@get("/v1/services/{service_id:int}/commitments", sync_to_thread=True, opt={"scope": "billing:read"}, tags=["usage"])
def list_commitments(request: Request, service_id: PathId) -> list[CommitmentRead]:
    """A project's savings plans, past, in force and to come."""
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        _, actor, locale = caller(conn, request)
        _, rows = commitments.list_plans(conn, actor, service_id)
    return [commitment_read(r, locale) for r in rows]


@post("/v1/services/{service_id:int}/commitments", sync_to_thread=True, opt={"scope": "billing:write"}, tags=["usage"],
      status_code=201)
def create_commitment(request: Request, service_id: PathId, data: JSONBody[CommitmentCreate]) -> Response[CommitmentRead]:
    """Commit to a monthly amount for the months the storefront offers (12), at its discount on
    the usage it covers: each month of the plan costs the amount, plus the usage beyond what it
    covers at list price. It starts on the first day of the next month (or of `starts`). Sending
    the same commitment again answers the same plan (200)."""
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        _, actor, locale = caller(conn, request)
        starts = None
        if data.starts:
            try:
                starts = dt.date(int(data.starts[:4]), int(data.starts[5:7]), 1)
            except ValueError:
                raise InvalidInput(N_("The period is a month, YYYY-MM."), code="invalid_period") from None
        row, created = commitments.commit(conn, rt, actor, service_id, data.monthly, data.months, starts)
    return Response(commitment_read(row, locale), status_code=201 if created else 200)


# The three handlers of /spending-alert are async and run their work in a thread themselves:
# Litestar 2.25 registers the handlers of a path again as each method is added, and wraps a
# sync_to_thread handler once more each time, so the third registration answers a coroutine.


def _get_alert(request: Request, service_id: int) -> SpendingAlertRead:
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        _, actor, locale = caller(conn, request)
        return alert_read(alerts.get_alert(conn, rt, actor, service_id), locale)


def _set_alert(request: Request, service_id: int, threshold: str) -> SpendingAlertRead:
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        _, actor, locale = caller(conn, request)
        return alert_read(alerts.set_alert(conn, rt, actor, service_id, threshold), locale)


def _delete_alert(request: Request, service_id: int) -> None:
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        _, actor, _ = caller(conn, request)
        alerts.delete_alert(conn, rt, actor, service_id)


@get("/v1/services/{service_id:int}/spending-alert", opt={"scope": "billing:read"}, tags=["usage"])
async def get_spending_alert(request: Request, service_id: PathId) -> SpendingAlertRead:
    """A project's spending alert (404 when none is set)."""
    return await to_thread.run_sync(_get_alert, request, service_id)


@put("/v1/services/{service_id:int}/spending-alert", opt={"scope": "billing:write"}, tags=["usage"])
async def set_spending_alert(request: Request, service_id: PathId, data: JSONBody[SpendingAlertUpdate]) -> SpendingAlertRead:
    """Set the amount (excluding tax) whose crossing by the month so far warns the billing
    contact, once a month. A new threshold warns again, even in a month already warned."""
    return await to_thread.run_sync(_set_alert, request, service_id, data.threshold)


@delete("/v1/services/{service_id:int}/spending-alert", opt={"scope": "billing:write"}, tags=["usage"], status_code=204)
async def delete_spending_alert(request: Request, service_id: PathId) -> None:
    """Remove a project's spending alert."""
    await to_thread.run_sync(_delete_alert, request, service_id)


ROUTES = [list_commitments, create_commitment, get_spending_alert, set_spending_alert, delete_spending_alert]
