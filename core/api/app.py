"""The HTTP API: thin handlers over the domain operations, OpenAPI at ``/schema``.

Errors are RFC 9457 problem+json with a stable ``code`` and a message in the caller's
language (``Accept-Language``, else the account's language). One handler maps them all.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Annotated, Any, Literal

import msgspec
from litestar import Litestar, Request, Response, delete, get, post, put
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.params import FromPath, HeaderParameter, JSONBody, QueryParameter
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from core import accounting, customers, forecast, invoicing, payments
from core import orders as order_ops
from core import services as service_ops
from core.access import check
from core.api import (
    commitments,
    contacts,
    contracts,
    legacy,
    reversibility,
    roles,
    usage,
)
from core.api import schemas as s
from core.api.common import (
    MAX_ID,
    After,
    PathId,
    api_key,
    caller,
    locale_of,
    runtime,
    staff,
)
from core.audit import Actor
from core.errors import InvalidInput, UniversError
from core.i18n import N_, translate
from core.models import Account, Payment, Service
from core.money import MoneyError, to_minor
from core.plugins import describe
from core.runtime import Runtime
from core.uow import unit_of_work

log = logging.getLogger("univers.api")
PROBLEM = "application/problem+json"


def _invoice_reader(actor: Actor, account: Account) -> int | None:
    """Whose invoices the caller reads: its own, or (staff whose role allows it) anyone's."""
    if actor.is_staff:
        check({actor.staff_role}, "service.invoices", what="invoice")
        return None
    return account.id


def _problem(request: Request, status: int, code: str, title: str, detail: str, errors: list | None = None) -> Response:
    body: dict[str, Any] = {"type": f"https://univers.example/problems/{code}", "title": title, "status": status,
                            "code": code, "detail": detail, "instance": request.url.path}
    if errors:
        body["errors"] = errors
    return Response(content=body, status_code=status, media_type=PROBLEM)


def on_domain_error(request: Request, exc: UniversError) -> Response:
    locale = locale_of(request)
    errors = [_localised(e, locale) for e in exc.errors]
    return _problem(request, exc.status, exc.code, exc.code.replace("_", " "), exc.message(locale), errors)


def _localised(error: dict, locale: str) -> dict:
    text = error.get("message")
    return {**error, "message": translate(text, locale).format(**error.get("params", {}))} if text else error


def on_validation_error(request: Request, exc: ValidationException) -> Response:
    locale = locale_of(request)
    extra = exc.extra if isinstance(exc.extra, list) else []
    return _problem(request, 400, "invalid_request", "invalid request",
                    translate(N_("The request body or parameters are malformed."), locale),
                    [{"field": e.get("key"), "code": "malformed", "message": e.get("message")} for e in extra if isinstance(e, dict)])


HTTP_ERRORS = {
    401: ("unauthenticated", N_("An API key is required (Authorization: Bearer <key>).")),
    404: ("not_found", N_("There is nothing at this address.")),
    405: ("method_not_allowed", N_("This method is not allowed at this address.")),
    413: ("too_large", N_("The request is too large.")),
    415: ("unsupported_media_type", N_("Send the request body as JSON.")),
    429: ("too_many_requests", N_("Too many requests; try again in a moment.")),
}


def on_http_error(request: Request, exc: HTTPException) -> Response:
    """Errors raised by Litestar itself (routing, media types, the rate limit), in the caller's
    language too. A 429 says when to come back (``Retry-After``, from the limiter's reset)."""
    code, text = HTTP_ERRORS.get(exc.status_code, ("http_error", UniversError.template))
    response = _problem(request, exc.status_code, code, code.replace("_", " "), translate(text, locale_of(request)))
    if exc.headers:
        response.headers.update(exc.headers)
    if exc.status_code == 429:
        response.headers["Retry-After"] = str(max(1, int((exc.headers or {}).get("RateLimit-Reset", 1))))
    return response


def rate_limit_identifier(request: Request) -> str:
    """Requests are counted per API key (its hash: the secret is not kept, even in memory), or
    per client address without one."""
    from litestar.middleware.rate_limit import get_remote_address

    from core.customers import hash_key

    key = api_key(request)
    return f"key:{hash_key(key)}" if key else f"ip:{get_remote_address(request)}"


def on_crash(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s", request.url.path)
    return _problem(request, 500, "internal_error", "internal error",
                    translate(N_("Something went wrong on our side; nothing was changed."), locale_of(request)))


# --- handlers ----------------------------------------------------------------------------------


@get("/health", sync_to_thread=True, include_in_schema=False)
def health(request: Request) -> dict:
    with runtime(request).engine.connect() as conn:
        conn.execute(select(1))
    return {"status": "ok"}


@get("/v1/plugins", sync_to_thread=False, tags=["plugins"])
def list_plugins(request: Request) -> list[s.PluginRead]:
    rt = runtime(request)
    return [s.PluginRead(c.name, c.version, c.hooks, c.products, c.plans, c.support_tiers) for c in describe(rt.pm, rt.catalog)]


@get("/v1/catalog", sync_to_thread=False, tags=["catalog"])
def catalog(request: Request, storefront: Annotated[str, QueryParameter(description="Storefront code, e.g. FR")] = "FR",
            at: Annotated[dt.date | None, QueryParameter(description="Show the prices in force on this date (default: today)")] = None,
            ) -> s.CatalogRead:
    """What a storefront sells, in its currency, in the reader's language (Accept-Language, or
    the storefront's own), with the prices in force on a date and those scheduled after it."""
    rt = runtime(request)
    sub = rt.storefronts.get(storefront.upper())
    if sub is None:
        raise InvalidInput(N_("Unknown or closed storefront {storefront}."), code="unknown_storefront", storefront=storefront)
    locale = locale_of(request) if request.headers.get("accept-language") else sub.default_locale
    return s.catalog_read(rt.catalog, sub, locale, at or rt.clock.today())


def customer_read(rt: Runtime, a: Account | dict, locale: str) -> s.CustomerRead:
    a = a if isinstance(a, dict) else a.model_dump()
    cur = rt.storefronts[a["subsidiary"]].currency
    return s.CustomerRead(a["id"], a["handle"], a["subsidiary"], a["kind"], a["name"], a["email"], a["language"], a["country"],
                          a["region"], a["vat_number"], a["vat_verified"], a["vat_confirmed_on"], a["tax_zone"], cur,
                          s.money(a["balance_minor"], cur, locale), a["payment_method"])


@post("/v1/customers", sync_to_thread=True, tags=["customers"], status_code=201)
def create_customer(request: Request, data: JSONBody[s.CustomerCreate]) -> s.CustomerCreated:
    """Sign up: creates the account and returns its API key, shown only this once."""
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        account, key = customers.create_customer(conn, rt, {f: getattr(data, f) for f in data.__struct_fields__})
    return s.CustomerCreated(customer_read(rt, account, locale_of(request)), key)


@get("/v1/me", sync_to_thread=True, opt={"scope": "account:read"}, tags=["customers"])
def me(request: Request) -> s.CustomerRead:
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        account, _, locale = caller(conn, request)
    return customer_read(rt, account, locale)


@put("/v1/me/payment-method", sync_to_thread=True, opt={"scope": "billing:write"}, tags=["customers"])
def set_payment_method(request: Request, data: JSONBody[s.PaymentChoice]) -> s.CustomerRead:
    """The method renewals are charged to: the prepaid balance or the (scriptable) test gateway."""
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        account, actor, locale = caller(conn, request)
        customers.set_payment_method(conn, rt, account, data.method, data.outcome, actor)
        row = conn.execute(select(Account.__table__).where(Account.__table__.c.id == account.id)).mappings().one()
    return customer_read(rt, dict(row), locale)


@post("/v1/me/balance/top-ups", sync_to_thread=True, opt={"scope": "billing:write"}, tags=["payments"], status_code=201)
def top_up(request: Request, data: JSONBody[s.TopUp]) -> s.PaymentRead:
    """Add money to the prepaid balance; open invoices are paid from it at once, oldest first."""
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        account, actor, locale = caller(conn, request)
        try:
            amount = to_minor(data.amount, rt.storefronts[account.subsidiary].currency)
        except MoneyError:
            raise InvalidInput(N_("The amount {amount} is not valid in {currency}."), code="invalid_amount",
                               amount=data.amount, currency=rt.storefronts[account.subsidiary].currency) from None
        payment = payments.top_up(conn, rt, account.id, amount, data.method, data.outcome, actor)
    return s.payment_read(payment, locale)


def order_read(rt: Runtime, conn, account_id: int | None, order_id: PathId, locale: str) -> s.OrderRead:
    row = order_ops.get_order(conn, account_id, order_id)
    invoice = None
    if row["invoice_id"]:
        invoice = s.invoice_read(rt, *invoicing.load_invoice(conn, None, row["invoice_id"]), locale)
    svc = Service.__table__
    services = [s.service_read(rt.catalog, dict(r), locale) for r in conn.execute(select(svc).where(svc.c.order_id == order_id).order_by(svc.c.id)).mappings()]
    cur = row["currency"]
    from core.withdrawal import deadline

    buyer = conn.execute(select(Account.__table__.c.kind).where(Account.__table__.c.id == row["account_id"])).scalar()
    days = rt.storefronts[row["subsidiary"]].withdrawal_days if buyer == "person" else 0
    return s.OrderRead(row["id"], row["status"], row["subsidiary"], s.money(row["total_minor"], cur, locale), row["created_at"],
                       invoice, services, deadline(row, days) if days else None, row["withdrawal_waived_at"] is not None,
                       row["withdrawn_at"])


@post("/v1/orders", sync_to_thread=True, opt={"scope": "services:write"}, tags=["orders"], status_code=201)
def create_order(request: Request, data: JSONBody[s.OrderCreate],
                 idempotency_key: Annotated[str, HeaderParameter(name="Idempotency-Key", description="Required: one key per order")] = "") -> Response[s.OrderRead]:
    """One-click order: the cart is validated, invoiced and charged in one call. The same
    Idempotency-Key with the same body returns the same order (200) and charges nothing more."""
    rt = runtime(request)
    body = msgspec.to_builtins(data)
    for attempt in range(2):
        try:
            with unit_of_work(rt) as conn:
                account, actor, locale = caller(conn, request)
                order_id, created = order_ops.checkout(conn, rt, account, body, idempotency_key, actor, locale)
            break
        except IntegrityError:  # the same key raced in from another request: answer with its order
            if attempt:
                raise
    with unit_of_work(rt) as conn:
        result = order_read(rt, conn, account.id, order_id, locale)
    return Response(result, status_code=201 if created else 200)


@get("/v1/orders/{order_id:int}", sync_to_thread=True, opt={"scope": "services:read"}, tags=["orders"])
def get_order(request: Request, order_id: PathId) -> s.OrderRead:
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        account, actor, locale = caller(conn, request)
        return order_read(rt, conn, None if actor.is_staff else account.id, order_id, locale)


@get("/v1/services", sync_to_thread=True, opt={"scope": "services:read"}, tags=["services"])
def list_services(request: Request, after: After = 0, limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
                  state_filter: Annotated[str | None, QueryParameter(name="state")] = None) -> s.Page:
    """Services the caller owns or is a contact of (all for staff), by id, keyset-paginated."""
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        account, actor, locale = caller(conn, request)
        rows = service_ops.list_services(conn, actor, after, limit, state_filter)
    return s.Page([s.service_read(rt.catalog, r, locale) for r in rows], rows[-1]["id"] if len(rows) == limit else None)


@get("/v1/services/{service_id:int}", sync_to_thread=True, opt={"scope": "services:read"}, tags=["services"])
def get_service(request: Request, service_id: PathId) -> s.ServiceRead:
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        _, actor, locale = caller(conn, request)
        return s.service_read(rt.catalog, service_ops.get_service(conn, actor, service_id), locale)


def _mode(request: Request, service_id: PathId, mode: str) -> s.ServiceRead:
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        _, actor, locale = caller(conn, request)
        return s.service_read(rt.catalog, service_ops.set_renewal_mode(conn, rt, actor, service_id, mode), locale)


@put("/v1/services/{service_id:int}/renewal-mode", sync_to_thread=True, opt={"scope": "services:write"}, tags=["services"])
def set_renewal_mode(request: Request, service_id: PathId, data: JSONBody[s.RenewalModeUpdate]) -> s.ServiceRead:
    return _mode(request, service_id, data.mode)


@post("/v1/services/{service_id:int}/stop", sync_to_thread=True, opt={"scope": "services:write"}, tags=["services"], status_code=200)
def stop_service(request: Request, service_id: PathId) -> s.ServiceRead:
    """One click to stop: the service ends at its expiry date, with no further invoice."""
    return _mode(request, service_id, "terminate")


@delete("/v1/services/{service_id:int}/stop", sync_to_thread=True, opt={"scope": "services:write"}, tags=["services"], status_code=200)
def undo_stop(request: Request, service_id: PathId) -> s.ServiceRead:
    """Undo a stop (until the expiry date): the service renews automatically again."""
    return _mode(request, service_id, "automatic")


@post("/v1/services/{service_id:int}/terminate", sync_to_thread=True, opt={"scope": "services:write"}, tags=["services"], status_code=200)
def terminate_service(request: Request, service_id: PathId) -> s.ServiceRead:
    """Terminate now (no refund of the current period)."""
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        _, actor, locale = caller(conn, request)
        return s.service_read(rt.catalog, service_ops.terminate_now(conn, rt, actor, service_id), locale)


@get("/v1/services/{service_id:int}/events", sync_to_thread=True, opt={"scope": "services:read"}, tags=["services"])
def service_events(request: Request, service_id: PathId, after: After = 0) -> list[s.AuditEventRead]:
    """The service's audit log: who did what, when, before and after."""
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        _, actor, _ = caller(conn, request)
        rows = service_ops.service_events(conn, actor, service_id, after)
    return [s.audit_event_read(r) for r in rows]


@get("/v1/invoices", sync_to_thread=True, opt={"scope": "billing:read"}, tags=["invoices"])
def list_invoices(request: Request, after: After = 0,
                  limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
                  status: Annotated[Literal["issued", "paid", "credited"] | None, QueryParameter()] = None,
                  kind: Annotated[Literal["order", "renewal", "usage", "credit_note"] | None, QueryParameter()] = None,
                  subsidiary: Annotated[str | None, QueryParameter(description="Storefront code")] = None,
                  issued_from: Annotated[dt.date | None, QueryParameter()] = None,
                  issued_to: Annotated[dt.date | None, QueryParameter()] = None,
                  customer: Annotated[int | None, QueryParameter(ge=1, le=MAX_ID, description="Staff: one customer's documents")] = None,
                  ) -> s.Page:
    """Issued invoices and credit notes, newest last, filtered; customers see their own only."""
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        account, actor, locale = caller(conn, request)
        owner = customer if _invoice_reader(actor, account) is None else account.id
        rows = accounting.find_invoices(conn, account_id=owner, subsidiary=subsidiary, status=status, kind=kind,
                                        issued_from=issued_from, issued_to=issued_to, after=after, limit=limit)
        items = [s.invoice_read(rt, *invoicing.load_invoice(conn, None, r["id"]), locale) for r in rows]
    return s.Page(items, rows[-1]["id"] if len(rows) == limit else None)


@get("/v1/staff/invoices/overdue", sync_to_thread=True, opt={"scope": "billing:read"}, tags=["staff"])
def overdue_invoices(request: Request, as_of: Annotated[dt.date | None, QueryParameter()] = None,
                     subsidiary: Annotated[str | None, QueryParameter()] = None) -> list[s.OverdueRead]:
    """Staff: unpaid invoices past their due date, oldest first; a pending payment is flagged
    (it blocks suspension)."""
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        _, _, locale = staff(conn, request, "staff.reports")
        day = as_of or rt.clock.today()
        return [s.OverdueRead(r["id"], r["number"], r["subsidiary"], r["handle"], r["buyer_name"], r["due_on"], r["days_overdue"],
                              s.money(r["total_minor"], r["currency"], locale), r["payment_pending"])
                for r in accounting.overdue(conn, day, subsidiary)]


@get("/v1/staff/reports/revenue", sync_to_thread=True, opt={"scope": "billing:read"}, tags=["staff"])
def revenue_report(request: Request, issued_from: Annotated[dt.date, QueryParameter()], issued_to: Annotated[dt.date, QueryParameter()]) -> list[s.RevenueRead]:
    """Staff: net revenue by month, storefront, universe and currency (credit notes deducted)."""
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        _, _, locale = staff(conn, request, "staff.reports")
        return [s.RevenueRead(r["month"], r["subsidiary"], r["universe"], s.money(r["net_minor"], r["currency"], locale),
                              r["documents"]) for r in accounting.revenue(conn, issued_from, issued_to)]


ForecastDays = Annotated[int, QueryParameter(description="How many days the forecast covers, from 1 to 366")]
ForecastStart = Annotated[dt.date | None, QueryParameter(description="The first day (default: today)")]


def _forecast(request: Request, days: int, start: dt.date | None) -> tuple[forecast.Forecast, str]:
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        _, _, locale = staff(conn, request, "staff.reports")
        return forecast.forecast(conn, start or rt.clock.today(), days), locale


def _forecast_file(report: forecast.Forecast, disposition: str, extension: str) -> str:
    return f'{disposition}; filename="forecast-{report.start}-{report.end}.{extension}"'


@get("/v1/staff/reports/forecast", sync_to_thread=True, opt={"scope": "billing:read"}, tags=["staff"])
def forecast_report(request: Request, days: ForecastDays = 90, start: ForecastStart = None) -> s.ForecastRead:
    """Staff: what renews and for how much on each day of the next `days` days, by storefront,
    universe and currency, beside what stops (services set to stop, on the day they end:
    churn). Later renewals inside the window are projected, at the price in force on their
    date (kept while an engagement runs). Amounts are net of tax, with totals per currency.
    `.csv` and `.svg` (a chart in the reader's language) give the same forecast."""
    report, locale = _forecast(request, days, start)
    return s.forecast_read(report, locale)


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
    from core.forecast_chart import render_svg

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
        body = "".join(accounting.fec(accounting.journal(conn, dt.date(year, 1, 1), dt.date(year, 12, 31), "FR")))
    name = accounting.fec_name(sub.legal_entity["registration_id"], year)
    return Response(body, media_type="text/plain; charset=utf-8", headers={"Content-Disposition": f'attachment; filename="{name}"'})


@get("/v1/invoices/{invoice_id:int}", sync_to_thread=True, opt={"scope": "billing:read"}, tags=["invoices"])
def get_invoice(request: Request, invoice_id: PathId) -> s.InvoiceRead:
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        account, actor, locale = caller(conn, request)
        return s.invoice_read(rt, *invoicing.load_invoice(conn, _invoice_reader(actor, account), invoice_id), locale)


@get("/v1/invoices/{invoice_id:int}/{fmt:str}", sync_to_thread=True, opt={"scope": "billing:read"}, tags=["invoices"],
     media_type="application/octet-stream")
def invoice_document(request: Request, invoice_id: PathId, fmt: FromPath[Literal["pdf", "cii", "ubl", "national"]]) -> Response[bytes]:
    """The invoice as a document in the customer's language: `pdf` (a Factur-X for the EU
    storefronts), `cii` (UN/CEFACT CII, EN 16931), `ubl` (UBL 2.1, Peppol BIS Billing 3.0), or
    `national` (a storefront's own format, rendered by a plugin: FatturaPA, KSeF)."""
    from core import documents

    rt = runtime(request)
    with unit_of_work(rt) as conn:
        account, actor, _locale_ = caller(conn, request)
        content, media, name = documents.render(conn, rt, _invoice_reader(actor, account), invoice_id, fmt)
    return Response(content, media_type=media, headers={"Content-Disposition": f'inline; filename="{name}"'})


@post("/v1/invoices/{invoice_id:int}/payments", sync_to_thread=True, opt={"scope": "billing:write"}, tags=["payments"], status_code=201)
def pay_invoice(request: Request, invoice_id: PathId, data: JSONBody[s.PaymentChoice]) -> s.PaymentRead:
    """Pay an open invoice. Paying a suspended service's invoice reactivates it at once."""
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        account, actor, locale = caller(conn, request)
        invoicing.load_invoice(conn, _invoice_reader(actor, account), invoice_id)  # 404 for others' invoices
        payment = payments.pay_invoice(conn, rt, invoice_id, data.method, data.outcome, actor)
        row = conn.execute(select(Payment.__table__).where(Payment.__table__.c.id == payment["id"])).mappings().one()
    return s.payment_read(dict(row), locale)


@post("/v1/test-gateway/payments/{gateway_ref:str}/resolve", sync_to_thread=True, opt={"scope": "billing:write"}, tags=["payments"], status_code=200)
def resolve_test_payment(request: Request, gateway_ref: FromPath[str], data: JSONBody[s.GatewayResolution]) -> s.PaymentRead:
    """Staff: play the test gateway's callback for a pending charge (applied exactly once)."""
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        _, actor, locale = staff(conn, request, "staff.billing")
        payment = payments.resolve_pending(conn, rt, gateway_ref, data.outcome, Actor.system("test-gateway"))
    return s.payment_read(payment, locale)


@get("/v1/storefronts", sync_to_thread=False, tags=["catalog"])
def list_storefronts(request: Request) -> list[s.StorefrontRead]:
    """The storefronts: currency, languages, legal entity and the taxes in force today."""
    rt = runtime(request)
    locale = locale_of(request)
    return [s.storefront_read(sub, rt.clock.today(), locale) for sub in rt.storefronts.values()]


@post("/v1/staff/invoices/{invoice_id:int}/credit-notes", sync_to_thread=True, opt={"scope": "billing:write"}, tags=["staff"], status_code=201)
def create_credit_note(request: Request, invoice_id: PathId, data: JSONBody[s.CreditNoteCreate],
                       idempotency_key: Annotated[str, HeaderParameter(name="Idempotency-Key", description="Required: one key per credit note")] = "",
                       ) -> Response[s.InvoiceRead]:
    """Staff: correct an issued invoice with a credit note, in full or for some lines. What was
    paid for the credited part goes back to the customer's balance. The same key returns the
    same credit note (200)."""
    from core.credit_notes import issue_credit_note

    rt = runtime(request)
    with unit_of_work(rt) as conn:
        _, actor, locale = staff(conn, request, "staff.billing")
        credit_id, created = issue_credit_note(conn, rt, invoice_id, msgspec.to_builtins(data), idempotency_key, actor)
    with unit_of_work(rt) as conn:
        result = s.invoice_read(rt, *invoicing.load_invoice(conn, None, credit_id), locale)
    return Response(result, status_code=201 if created else 200)


@post("/v1/staff/customers/{customer_id:int}/vat-confirmation", sync_to_thread=True, opt={"scope": "billing:write"}, tags=["staff"], status_code=200)
def confirm_vat_number(request: Request, customer_id: PathId, data: JSONBody[s.VatConfirmation]) -> s.CustomerRead:
    """Staff: record that a customer's VAT number was confirmed valid, when and how. An EU
    business in another member state is then invoiced under reverse charge."""
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        _, actor, locale = staff(conn, request, "staff.billing")
        row = customers.confirm_vat_number(conn, rt, customer_id, data.confirmed_on, data.method, actor)
    return customer_read(rt, row, locale)


@post("/v1/staff/services/{service_id:int}/restore", sync_to_thread=True, opt={"scope": "services:write"}, tags=["staff"], status_code=200)
def restore_service(request: Request, service_id: PathId) -> s.ServiceRead:
    """Staff: bring a terminated service back from its kept data, until the retention period
    ends. It comes back active if its paid period still runs, otherwise suspended (paying its
    invoice then reactivates it), and renewing automatically."""
    from core.dunning import restore

    rt = runtime(request)
    with unit_of_work(rt) as conn:
        _, actor, locale = caller(conn, request)
        restore(conn, rt, service_id, actor)
        return s.service_read(rt.catalog, service_ops.get_service(conn, actor, service_id), locale)


@get("/v1/staff/catalog/problems", sync_to_thread=True, opt={"scope": "services:read"}, tags=["staff"])
def catalog_problems(request: Request) -> list[s.ProblemRead]:
    """Staff: what ``univers catalog check`` says of the data files on disk now (empty when a
    restart would accept them). The running catalog itself passed the check at start-up."""
    from core.runtime import load_catalog

    rt = runtime(request)
    with unit_of_work(rt) as conn:
        staff(conn, request, "staff.catalog")
    _catalog, _domains, problems = load_catalog(rt.pm, rt.settings, rt.clock, rt.storefronts)
    return [s.ProblemRead(p.rule, p.plugin, p.message, p.storefront, p.source, p.line) for p in problems]


@post("/v1/staff/renewal-runs", sync_to_thread=True, opt={"scope": "billing:write"}, tags=["staff"], status_code=200)
def renewal_run(request: Request, data: JSONBody[s.RenewalRunRequest]) -> dict:
    """Staff: run the renewal and dunning for a date (the daily job does it by itself)."""
    from core.renewal import run_renewal

    rt = runtime(request)
    with unit_of_work(rt) as conn:
        staff(conn, request, "staff.billing")
    today = rt.clock.today()
    if data.at is not None and abs((data.at - today).days) > 366:
        raise InvalidInput(N_("A renewal run is for a day within a year of today ({today})."), code="invalid_run_date", today=today)
    return run_renewal(rt, data.at or today).as_dict()


ROUTES = [health, list_plugins, catalog, list_storefronts, catalog_problems, confirm_vat_number, create_credit_note, create_customer, me, set_payment_method, top_up, create_order, get_order,
          list_services, get_service, set_renewal_mode, stop_service, undo_stop, terminate_service, service_events, restore_service,
          list_invoices, overdue_invoices, revenue_report, forecast_report, forecast_report_csv, forecast_report_svg, journal_export, fec_export, get_invoice, invoice_document, pay_invoice, resolve_test_payment, renewal_run,
          *roles.ROUTES, *contacts.ROUTES, *usage.ROUTES]
ROUTES += [*reversibility.ROUTES, *commitments.ROUTES, *contracts.ROUTES, *legacy.ROUTES]


def create_app(rt: Runtime, *, scheduler: bool = False) -> Litestar:
    """The Litestar application over a runtime. ``scheduler``: run the jobs in this process."""
    on_startup, on_shutdown = [], []
    if scheduler:
        from core.scheduler import start_scheduler

        holder: dict = {}
        on_startup.append(lambda: holder.setdefault("s", start_scheduler(rt)))
        on_shutdown.append(lambda: holder["s"].shutdown(wait=False) if "s" in holder else None)
    middleware = []
    if rt.settings.rate_limit:
        from litestar.middleware.rate_limit import RateLimitConfig

        middleware.append(RateLimitConfig(rate_limit=("minute", rt.settings.rate_limit), identifier_for_request=rate_limit_identifier,
                                          exclude=["/health", "/schema"]).middleware)
    app = Litestar(
        route_handlers=ROUTES,
        middleware=middleware,
        exception_handlers={UniversError: on_domain_error, ValidationException: on_validation_error,
                            HTTPException: on_http_error, Exception: on_crash},
        openapi_config=OpenAPIConfig(
            title="Univers API", version="1.0.0",
            description="Sell, bill and renew the services of a cloud and hosting provider.",
            components=Components(security_schemes={"apiKey": SecurityScheme(type="http", scheme="bearer")}),
            security=[{"apiKey": []}],
        ),
        on_startup=on_startup,
        on_shutdown=on_shutdown,
        debug=False,
    )
    app.state.rt = rt
    return app
