"""The back office, under ``/backoffice/``: global search (handle, e-mail, invoice number, service
id), a customer's 360 (services, invoices, balance, audit timeline), and an invoice with the
credit note form. Each page checks the staff role as the API does (:mod:`core.access`); a
customer's session is refused, and an action the role does not allow is neither shown nor
accepted if posted."""

from __future__ import annotations

import datetime as dt
import re
import secrets
from decimal import Decimal, InvalidOperation

from litestar import Request, Response, get, post
from litestar.params import FromPath
from sqlalchemy import or_, select

from core.audit import Actor
from core.billing import accounting, invoicing
from core.billing.credit_notes import issue_credit_note
from core.billing.views import invoice_read
from core.console.customer import PAGE, Form, _cursor, service_view
from core.console.render import locale_of, page
from core.console.web import back, posted, record_id, runtime, signed_in
from core.errors import InvalidInput
from core.i18n import N_
from core.lifecycle import services as service_ops
from core.models import Account, AuditEvent, Invoice, Service
from core.uow import unit_of_work

acct = Account.__table__
svc = Service.__table__
inv = Invoice.__table__
events = AuditEvent.__table__
NUMBER = re.compile(r"^([A-Z0-9]{1,8})-(\d{4})-(\d{1,9})$")
FOUND = 20


def search(conn, storefronts, text: str) -> dict:
    """What the text names, each through its own index: an account by handle or e-mail, an
    invoice by number, a service by id."""
    text = text.strip()
    out: dict = {"accounts": [], "invoices": [], "services": []}
    if not text or len(text) > 200:
        return out
    out["accounts"] = conn.execute(select(acct.c.id, acct.c.handle, acct.c.name, acct.c.email, acct.c.subsidiary)
                                   .where(acct.c.is_staff.is_(False), or_(acct.c.handle == text,
                                                                           acct.c.email.in_({text, text.lower()})))
                                   .order_by(acct.c.id).limit(FOUND)).mappings().all()
    found = NUMBER.match(text.upper())
    if found:
        out["invoices"] = conn.execute(select(inv.c.id, inv.c.series, inv.c.fiscal_year, inv.c.seq, inv.c.account_id)
                                       .where(inv.c.subsidiary.in_(sorted(storefronts)), inv.c.series == found[1],
                                              inv.c.fiscal_year == int(found[2]),
                                              inv.c.seq == int(found[3]))).mappings().all()
    if text.isdigit() and 0 < int(text) < 2**63:
        out["services"] = conn.execute(select(svc.c.id, svc.c.plan_code, svc.c.state, svc.c.account_id)
                                       .where(svc.c.id == int(text))).mappings().all()
    return out


@get("/backoffice/", sync_to_thread=True, include_in_schema=False)
def home(request: Request) -> Response:
    rt = runtime(request)
    q = request.query_params.get("q", "")
    with unit_of_work(rt) as conn:
        who = signed_in(conn, request, "services:read", staff_action="staff.customers")
        found = search(conn, rt.storefronts, q) if q else None
    numbers = {i["id"]: invoicing.number(i["series"], i["fiscal_year"], i["seq"]) for i in (found or {}).get("invoices", [])}
    return page(request, who, "staff_home.html", q=q, found=found, numbers=numbers)


@get("/backoffice/customers/{account_id:str}", sync_to_thread=True, include_in_schema=False)
def customer(request: Request, account_id: FromPath[str]) -> Response:
    """A customer's 360: its services (as admin, tech or billing contact), invoices, balance, audit timeline."""
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        who = signed_in(conn, request, "services:read", staff_action="staff.customers")
        locale = locale_of(request, who)
        account = conn.execute(select(acct).where(acct.c.id == record_id(account_id), acct.c.is_staff.is_(False))
                               ).mappings().one_or_none()
        if account is None:
            from core.errors import NotFound

            raise NotFound(what="customer")
        seen_as = Actor(f"account:{account['handle']}", account["id"])  # its list, through the contact indexes
        services = [service_view(rt, who, r, locale) for r in service_ops.list_services(conn, seen_as, 0, 50)]
        invoices = [invoice_read(rt, *found, locale) for found in invoicing.load_invoices(conn, accounting.find_invoices(
            conn, account_id=account["id"], subsidiary=None, status=None, kind=None, issued_from=None, issued_to=None,
            after=0, limit=50))]
        timeline = conn.execute(select(events).where(events.c.entity == "account", events.c.entity_id == account["id"])
                                .order_by(events.c.id.desc()).limit(50)).mappings().all()
    currency = rt.storefronts[account["subsidiary"]].currency
    return page(request, who, "staff_customer.html", customer=account, services=services, invoices=invoices,
                timeline=timeline, currency=currency)


INVOICE_FILTERS = {"status": ("issued", "paid", "credited"), "kind": ("order", "renewal", "usage", "credit_note")}


@get("/backoffice/invoices", sync_to_thread=True, include_in_schema=False)
def invoices(request: Request) -> Response:
    """Every storefront's issued documents, by id, filtered (status, kind, storefront, issue dates), keyset pages."""
    rt = runtime(request)
    q = request.query_params
    chosen = {name: q.get(name) if q.get(name) in allowed else None for name, allowed in INVOICE_FILTERS.items()}
    storefront = q.get("storefront") if q.get("storefront") in rt.storefronts else None
    days = {name: _day(q.get(name)) for name in ("issued_from", "issued_to")}
    with unit_of_work(rt) as conn:
        who = signed_in(conn, request, "billing:read", staff_action="service.invoices")
        rows = accounting.find_invoices(conn, account_id=None, subsidiary=storefront, **chosen, **days,
                                        after=_cursor(request), limit=PAGE)
        items = [invoice_read(rt, *found, locale_of(request, who)) for found in invoicing.load_invoices(conn, rows)]
    owners = {r["id"]: r["account_id"] for r in rows}
    filters = {**chosen, "storefront": storefront, **{k: v.isoformat() if v else None for k, v in days.items()}}
    query = "&".join(f"{k}={v}" for k, v in filters.items() if v)
    return page(request, who, "staff_invoices.html", invoices=items, owners=owners, filters=filters,
                choices=INVOICE_FILTERS, storefronts=sorted(rt.storefronts), query=query,
                next_after=rows[-1]["id"] if len(rows) == PAGE else None)


def _day(text: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text) if text else None
    except ValueError:
        raise InvalidInput(N_("{value} is not a date; expected YYYY-MM-DD."), code="invalid_date", value=text) from None


@get("/backoffice/invoices/{invoice_id:str}", sync_to_thread=True, include_in_schema=False)
def invoice(request: Request, invoice_id: FromPath[str]) -> Response:
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        who = signed_in(conn, request, "billing:read", staff_action="service.invoices")
        shown = invoice_read(rt, *invoicing.load_invoice(conn, None, record_id(invoice_id)), locale_of(request, who))
        owner = conn.execute(select(inv.c.account_id).where(inv.c.id == shown.id)).scalar_one()
    return page(request, who, "staff_invoice.html", invoice=shown, owner=owner, key=secrets.token_urlsafe(16))


@get("/backoffice/invoices/{invoice_id:str}/pdf", sync_to_thread=True, include_in_schema=False)
def invoice_pdf(request: Request, invoice_id: FromPath[str]) -> Response:
    """Any customer's invoice or credit note as its PDF (Factur-X where the storefront issues one),
    for the staff who read invoices (the API's ``service.invoices`` row)."""
    from core.billing import documents

    rt = runtime(request)
    with unit_of_work(rt) as conn:
        signed_in(conn, request, "billing:read", staff_action="service.invoices")
        content, media, name = documents.render(conn, rt, None, record_id(invoice_id), "pdf")
    return Response(content, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'})


@post("/backoffice/invoices/{invoice_id:str}/credit-notes", sync_to_thread=True, include_in_schema=False)
def credit_note(request: Request, invoice_id: FromPath[str], data: Form) -> Response:
    """The credit note form: a reason, and an amount per line (none given: the whole invoice)."""
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        who = signed_in(conn, request, "billing:write", staff_action="staff.billing")
        posted(who, data)
        lines = []
        for name, value in data.items():
            if name.startswith("line_") and str(value).strip():
                try:
                    amount = Decimal(str(value).strip().replace(",", "."))
                except InvalidOperation:
                    raise InvalidInput(N_("The amount {amount} is not valid in {currency}."), code="invalid_amount",
                                       amount=str(value), currency="") from None
                lines.append({"line_id": record_id(name[5:]), "amount": str(amount)})
        body = {"reason": str(data.get("reason") or "")} | ({"lines": lines} if lines else {})
        credit_id, _ = issue_credit_note(conn, rt, record_id(invoice_id), body, str(data.get("key") or ""), who.actor)
    return back(f"/backoffice/invoices/{credit_id}")


ROUTES = [home, customer, invoices, invoice, invoice_pdf, credit_note]
