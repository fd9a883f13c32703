"""Staff HTTP handlers: overdue invoices, revenue and forecast reports, accounting exports, renewal runs."""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import Annotated

import msgspec
from litestar import Request, Response, get, post
from litestar.params import JSONBody, QueryParameter

from core.api import schemas as s
from core.api.common import (
    runtime,
    staff,
)
from core.billing import accounting
from core.billing.views import Money, money
from core.errors import InvalidInput
from core.i18n import N_
from core.renewal import forecast
from core.uow import unit_of_work

ForecastStart = Annotated[dt.date | None, QueryParameter(description="The first day (default: today)")]


ForecastDays = Annotated[int, QueryParameter(description="How many days the forecast covers, from 1 to 366")]

# --- schemas -------------------------------------------------------------------------------------


class RenewalRunRequest(msgspec.Struct, forbid_unknown_fields=True):
    at: dt.date | None = None


class OverdueRead(msgspec.Struct):
    id: int
    number: str
    subsidiary: str
    customer: str
    buyer_name: str
    due_on: dt.date
    days_overdue: int
    total: Money
    payment_pending: bool


class RevenueRead(msgspec.Struct):
    month: str
    subsidiary: str
    universe: str
    net: Money
    documents: int


class ForecastRowRead(msgspec.Struct):
    day: dt.date
    subsidiary: str
    universe: str
    currency: str
    renewing: int  # services that renew that day (automatically, or set to stop but still engaged)
    renewing_net: Money
    stopping: int  # services set to stop that end that day (churn)
    stopping_net: Money  # what they would have renewed for


class ForecastTotalRead(msgspec.Struct):
    currency: str
    renewing: int
    renewing_net: Money
    stopping: int
    stopping_net: Money


class ForecastRead(msgspec.Struct):
    start: dt.date
    end: dt.date  # the last day, included
    days: int
    rows: list[ForecastRowRead]
    totals: list[ForecastTotalRead]  # one per currency; currencies are never added together


def forecast_read(report, locale: str) -> ForecastRead:
    def measures(r: dict) -> dict:
        cur = r["currency"]
        return {"renewing": r["renewing"], "renewing_net": money(r["renewing_minor"], cur, locale),
                "stopping": r["stopping"], "stopping_net": money(r["stopping_minor"], cur, locale)}

    return ForecastRead(report.start, report.end, report.days,
                        [ForecastRowRead(r["day"], r["subsidiary"], r["universe"], r["currency"], **measures(r)) for r in report.rows],
                        [ForecastTotalRead(t["currency"], **measures(t)) for t in report.totals()])


# --- handlers ------------------------------------------------------------------------------------


@get("/v1/staff/invoices/overdue", sync_to_thread=True, opt={"scope": "billing:read"}, tags=["staff"])
def overdue_invoices(request: Request, as_of: Annotated[dt.date | None, QueryParameter()] = None,
                     subsidiary: Annotated[str | None, QueryParameter()] = None) -> list[OverdueRead]:
    """Staff: unpaid invoices past their due date, oldest first; a pending payment is flagged
    (it blocks suspension)."""
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        _, _, locale = staff(conn, request, "staff.reports")
    day = as_of or rt.clock.today()
    with reading(rt) as conn:
        return [OverdueRead(r["id"], r["number"], r["subsidiary"], r["handle"], r["buyer_name"], r["due_on"], r["days_overdue"],
                              s.money(r["total_minor"], r["currency"], locale), r["payment_pending"])
                for r in accounting.overdue(conn, day, subsidiary)]


@get("/v1/staff/reports/revenue", sync_to_thread=True, opt={"scope": "billing:read"}, tags=["staff"])
def revenue_report(request: Request, issued_from: Annotated[dt.date, QueryParameter()], issued_to: Annotated[dt.date, QueryParameter()]) -> list[RevenueRead]:
    """Staff: net revenue by month, storefront, universe and currency (credit notes deducted)."""
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        _, _, locale = staff(conn, request, "staff.reports")
    with reading(rt) as conn:
        return [RevenueRead(r["month"], r["subsidiary"], r["universe"], s.money(r["net_minor"], r["currency"], locale),
                              r["documents"]) for r in accounting.revenue(conn, issued_from, issued_to)]


@contextlib.contextmanager
def reading(rt):
    """A read-only connection for a report: on the read replica when there is one
    (``UNIVERS_REPLICA_URL``), else on the primary. The caller was checked on the primary."""
    with rt.read_engine.connect() as conn:
        yield conn


def _forecast(request: Request, days: int, start: dt.date | None) -> tuple[forecast.Forecast, str]:
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        _, _, locale = staff(conn, request, "staff.reports")
    with reading(rt) as conn:
        return forecast.forecast(conn, start or rt.clock.today(), days), locale


def _forecast_file(report: forecast.Forecast, disposition: str, extension: str) -> str:
    return f'{disposition}; filename="forecast-{report.start}-{report.end}.{extension}"'


@get("/v1/staff/reports/forecast", sync_to_thread=True, opt={"scope": "billing:read"}, tags=["staff"])
def forecast_report(request: Request, days: ForecastDays = 90, start: ForecastStart = None) -> ForecastRead:
    """Staff: what renews and for how much on each day of the next `days` days, by storefront,
    universe and currency, beside what stops (services set to stop, on the day they end:
    churn). Later renewals inside the window are projected, at the price in force on their
    date (kept while an engagement runs). Amounts are net of tax, with totals per currency.
    `.csv` and `.svg` (a chart in the reader's language) give the same forecast."""
    report, locale = _forecast(request, days, start)
    return forecast_read(report, locale)


@get("/v1/staff/reports/forecast.csv", sync_to_thread=True, opt={"scope": "billing:read"}, tags=["staff"], media_type="text/csv")
def forecast_report_csv(request: Request, days: ForecastDays = 90, start: ForecastStart = None) -> Response[str]:
    """Staff: the forecast's rows as CSV (ISO dates, dot decimals in the currency's unit)."""
    report = _forecast(request, days, start)[0]
    return Response(forecast.forecast_csv(report), media_type="text/csv",
                    headers={"Content-Disposition": _forecast_file(report, "attachment", "csv")})


@get("/v1/staff/reports/forecast.svg", sync_to_thread=True, opt={"scope": "billing:read"}, tags=["staff"], media_type="image/svg+xml")
def forecast_report_svg(request: Request, days: ForecastDays = 90, start: ForecastStart = None) -> Response[str]:
    """Staff: the forecast as a chart, one panel per currency: renewals stacked by universe
    above the axis, churn below it, in the reader's language (Accept-Language)."""
    from core.renewal.forecast_chart import render_svg

    report, locale = _forecast(request, days, start)
    return Response(render_svg(report, locale), media_type="image/svg+xml",
                    headers={"Content-Disposition": _forecast_file(report, "inline", "svg")})


@get("/v1/staff/exports/journal", sync_to_thread=True, opt={"scope": "billing:read"}, tags=["staff"], media_type="text/csv")
def journal_export(request: Request, issued_from: Annotated[dt.date, QueryParameter()], issued_to: Annotated[dt.date, QueryParameter()],
                   storefront: Annotated[str | None, QueryParameter()] = None) -> Response[str]:
    """Staff: the sales journal as CSV, one balanced entry per document."""
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        staff(conn, request, "staff.reports")
    with reading(rt) as conn:
        body = "".join(accounting.journal_csv(accounting.journal(conn, issued_from, issued_to, storefront)))
    return Response(body, media_type="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="journal-{issued_from}-{issued_to}.csv"'})


@get("/v1/staff/exports/fec", sync_to_thread=True, opt={"scope": "billing:read"}, tags=["staff"], media_type="text/plain")
def fec_export(request: Request, year: Annotated[int, QueryParameter(ge=2000, le=2100)]) -> Response[str]:
    """Staff: the French entity's Fichier des Écritures Comptables for a fiscal year."""
    rt = runtime(request)
    sub = rt.storefronts["FR"]
    with unit_of_work(rt) as conn:
        staff(conn, request, "staff.reports")
    with reading(rt) as conn:
        body = "".join(accounting.fec(accounting.journal(conn, dt.date(year, 1, 1), dt.date(year, 12, 31), "FR")))
    name = accounting.fec_name(sub.legal_entity["registration_id"], year)
    return Response(body, media_type="text/plain", headers={"Content-Disposition": f'attachment; filename="{name}"'})


@post("/v1/staff/renewal-runs", sync_to_thread=True, opt={"scope": "billing:write"}, tags=["staff"], status_code=200)
def renewal_run(request: Request, data: JSONBody[RenewalRunRequest]) -> dict:
    """Staff: run the renewal and dunning for a date (the daily job does it by itself)."""
    from core.renewal.run import run_renewal

    rt = runtime(request)
    with unit_of_work(rt) as conn:
        staff(conn, request, "staff.billing")
    today = rt.clock.today()
    if data.at is not None and abs((data.at - today).days) > 366:
        raise InvalidInput(N_("A renewal run is for a day within a year of today ({today})."), code="invalid_run_date", today=today)
    return run_renewal(rt, data.at or today).as_dict()
