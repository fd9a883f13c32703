"""The back office's reports and settings: overdue invoices and the dunning queue (a pending
payment blocks suspension, and the page says so), renewal runs with their summaries (and the
button that runs one), the forecast chart, the catalog's problems, and staff accounts. Each is the
API's operation, checked against the same row of the permission table."""

from __future__ import annotations

from typing import Annotated

from litestar import Request, Response, get, post
from litestar.params import QueryParameter
from sqlalchemy import select

from core.billing import accounting
from core.console.customer import Form
from core.console.render import locale_of, page
from core.console.web import back, posted, runtime, signed_in
from core.customers.accounts import create_customer
from core.models import Account, RenewalRun
from core.uow import unit_of_work

acct = Account.__table__
runs = RenewalRun.__table__
Days = Annotated[int, QueryParameter(ge=1, le=366)]


@get("/backoffice/overdue", sync_to_thread=True, include_in_schema=False)
def overdue(request: Request) -> Response:
    """Unpaid documents past due, oldest first: the dunning queue. A pending payment blocks suspension."""
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        who = signed_in(conn, request, "billing:read", staff_action="staff.reports")
        rows = accounting.overdue(conn, rt.clock.today(), request.query_params.get("storefront") or None, limit=200)
    return page(request, who, "staff_overdue.html", rows=rows, storefronts=sorted(rt.storefronts))


@get("/backoffice/renewal-runs", sync_to_thread=True, include_in_schema=False)
def renewal_runs(request: Request) -> Response:
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        who = signed_in(conn, request, "billing:read", staff_action="staff.reports")
        rows = conn.execute(select(runs).order_by(runs.c.id.desc()).limit(50)).mappings().all()
    return page(request, who, "staff_runs.html", runs=rows, today=rt.clock.today())


@post("/backoffice/renewal-runs", sync_to_thread=True, include_in_schema=False)
def run_renewal_now(request: Request, data: Form) -> Response:
    """Today's renewal and dunning, as the daily job runs it (twice is once: its keys hold)."""
    from core.renewal.run import run_renewal

    rt = runtime(request)
    with unit_of_work(rt) as conn:
        who = signed_in(conn, request, "billing:write", staff_action="staff.billing")
        posted(who, data)
    run_renewal(rt, rt.clock.today())
    return back("/backoffice/renewal-runs")


@get("/backoffice/forecast", sync_to_thread=True, include_in_schema=False)
def forecast_page(request: Request, days: Days = 90) -> Response:
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        who = signed_in(conn, request, "billing:read", staff_action="staff.reports")
    return page(request, who, "staff_forecast.html", days=days)


@get("/backoffice/forecast.svg", sync_to_thread=True, include_in_schema=False)
def forecast_chart(request: Request, days: Days = 90) -> Response:
    from core.renewal import forecast
    from core.renewal.forecast_chart import render_svg

    rt = runtime(request)
    with unit_of_work(rt) as conn:
        who = signed_in(conn, request, "billing:read", staff_action="staff.reports")
        report = forecast.forecast(conn, rt.clock.today(), days)
    return Response(render_svg(report, locale_of(request, who)), media_type="image/svg+xml",
                    headers={"Cache-Control": "no-store"})


@get("/backoffice/catalog", sync_to_thread=True, include_in_schema=False)
def catalog_problems(request: Request) -> Response:
    """What ``univers catalog check`` says of the data files on disk now (nothing: a restart accepts them)."""
    from core.boot import load_catalog

    rt = runtime(request)
    with unit_of_work(rt) as conn:
        who = signed_in(conn, request, "services:read", staff_action="staff.catalog")
    _catalog, _domains, problems = load_catalog(rt.pm, rt.settings, rt.clock, rt.storefronts)
    return page(request, who, "staff_catalog.html", problems=problems)


@get("/backoffice/staff", sync_to_thread=True, include_in_schema=False)
def staff_accounts(request: Request) -> Response:
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        who = signed_in(conn, request, "account:read", staff_action="staff.accounts")
        rows = _staff_rows(conn)
    from core.access import STAFF_ROLES

    return page(request, who, "staff_accounts.html", rows=rows, roles=STAFF_ROLES, created=None)


@post("/backoffice/staff", sync_to_thread=True, include_in_schema=False)
def create_staff(request: Request, data: Form) -> Response:
    """An administrator creates a staff account with its role; its key is shown this once."""
    from core.access import STAFF_ROLES

    rt = runtime(request)
    with unit_of_work(rt) as conn:
        who = signed_in(conn, request, "account:write", staff_action="staff.accounts")
        posted(who, data)
        row, key = create_customer(conn, rt, {"subsidiary": next(iter(rt.storefronts)), "name": str(data.get("name") or ""),
                                              "email": str(data.get("email") or ""), "language": who.account.language},
                                   who.actor, is_staff=True, staff_role=str(data.get("role") or ""))
        rows = _staff_rows(conn)
    return page(request, who, "staff_accounts.html", status=201, rows=rows, roles=STAFF_ROLES,
                created={"handle": row["handle"], "key": key})


def _staff_rows(conn) -> list:
    return conn.execute(select(acct.c.id, acct.c.handle, acct.c.name, acct.c.email, acct.c.staff_role, acct.c.closed_at)
                        .where(acct.c.is_staff.is_(True)).order_by(acct.c.id).limit(200)).mappings().all()


ROUTES = [overdue, renewal_runs, run_renewal_now, forecast_page, forecast_chart, catalog_problems, staff_accounts,
          create_staff]
