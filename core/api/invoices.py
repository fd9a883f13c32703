"""HTTP handlers for invoices, their documents and payments, the prepaid balance and credit notes."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated, Literal

import msgspec
from litestar import Request, Response, get, post
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIResponse, Operation, Schema
from litestar.openapi.spec.enums import OpenAPIType
from litestar.params import FromPath, HeaderParameter, JSONBody, QueryParameter
from sqlalchemy import select

from core.access import check
from core.api import schemas as s
from core.api.common import (
    MAX_ID,
    After,
    PathId,
    caller,
    runtime,
    staff,
)
from core.audit import Actor
from core.billing import accounting, invoicing, views
from core.errors import OUT_OF_RANGE, InvalidInput
from core.i18n import N_
from core.models import Account, Payment
from core.money import (
    AmountOutOfRange,
    MoneyError,
    to_minor,
)
from core.payments import settlement as payments
from core.uow import once_more_on_conflict, unit_of_work

# --- schemas -------------------------------------------------------------------------------------


class TopUp(msgspec.Struct, forbid_unknown_fields=True):
    amount: str
    method: Literal["test"] = "test"
    outcome: Literal["success", "decline", "pending"] | None = None


class GatewayResolution(msgspec.Struct, forbid_unknown_fields=True):
    outcome: Literal["succeeded", "failed"]


class CreditLine(msgspec.Struct, forbid_unknown_fields=True):
    line_id: int
    amount: str | None = None  # in the invoice's currency; default: all that is left of the line


class CreditNoteCreate(msgspec.Struct, forbid_unknown_fields=True):
    reason: str
    lines: list[CreditLine] | None = None  # none: credit the whole invoice


def _invoice_reader(actor: Actor, account: Account) -> int | None:
    """Whose invoices the caller reads: its own, or (staff whose role allows it) anyone's."""
    if actor.is_staff:
        check({actor.staff_role}, "service.invoices", what="invoice")
        return None
    return account.id


# --- handlers ------------------------------------------------------------------------------------


@post("/v1/me/balance/top-ups", sync_to_thread=True, opt={"scope": "billing:write"}, tags=["payments"], status_code=201)
def top_up(request: Request, data: JSONBody[TopUp]) -> views.PaymentRead:
    """Add money to the prepaid balance; open invoices are paid from it at once, oldest first."""
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        account, actor, locale = caller(conn, request)
        try:
            amount = to_minor(data.amount, rt.storefronts[account.subsidiary].currency)
        except AmountOutOfRange as exc:
            raise InvalidInput(OUT_OF_RANGE, code="amount_out_of_range", amount=data.amount[:40], maximum=exc.maximum,
                               currency=exc.currency) from None
        except MoneyError:
            raise InvalidInput(N_("The amount {amount} is not valid in {currency}."), code="invalid_amount",
                               amount=data.amount, currency=rt.storefronts[account.subsidiary].currency) from None
        payment = payments.top_up(conn, rt, account.id, amount, data.method, data.outcome, actor)
    return views.payment_read(payment, locale)


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
        items = [views.invoice_read(rt, *found, locale) for found in invoicing.load_invoices(conn, rows)]
    return s.Page(items, rows[-1]["id"] if len(rows) == limit else None)


@get("/v1/invoices/{invoice_id:int}", sync_to_thread=True, opt={"scope": "billing:read"}, tags=["invoices"])
def get_invoice(request: Request, invoice_id: PathId) -> views.InvoiceRead:
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        account, actor, locale = caller(conn, request)
        return views.invoice_read(rt, *invoicing.load_invoice(conn, _invoice_reader(actor, account), invoice_id), locale)


@dataclass
class DocumentOperation(Operation):
    """The OpenAPI operation of an invoice document: a PDF or an XML file."""

    def __post_init__(self) -> None:
        binary = Schema(type=OpenAPIType.STRING, format="binary")
        self.responses = {**(self.responses or {}), "200": OpenAPIResponse(
            description="The document", content={"application/pdf": OpenAPIMediaType(schema=binary),
                                                 "application/xml": OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING))})}


@get("/v1/invoices/{invoice_id:int}/{fmt:str}", sync_to_thread=True, opt={"scope": "billing:read"}, tags=["invoices"],
     media_type="application/octet-stream", operation_class=DocumentOperation)
def invoice_document(request: Request, invoice_id: PathId, fmt: FromPath[Literal["pdf", "cii", "ubl", "national"]]) -> Response[bytes]:
    """The invoice as a document in the customer's language: `pdf` (a Factur-X for the EU
    storefronts), `cii` (UN/CEFACT CII, EN 16931), `ubl` (UBL 2.1, Peppol BIS Billing 3.0), or
    `national` (a storefront's own format, rendered by a plugin: FatturaPA, KSeF)."""
    from core.billing import documents

    rt = runtime(request)
    with unit_of_work(rt) as conn:
        account, actor, _locale_ = caller(conn, request)
        content, media, name = documents.render(conn, rt, _invoice_reader(actor, account), invoice_id, fmt)
    return Response(content, media_type=media, headers={"Content-Disposition": f'inline; filename="{name}"'})


@post("/v1/invoices/{invoice_id:int}/payments", sync_to_thread=True, opt={"scope": "billing:write"}, tags=["payments"], status_code=201)
def pay_invoice(request: Request, invoice_id: PathId, data: JSONBody[s.PaymentChoice]) -> views.PaymentRead:
    """Pay an open invoice. Paying a suspended service's invoice reactivates it at once."""
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        account, actor, locale = caller(conn, request)
        invoicing.load_invoice(conn, _invoice_reader(actor, account), invoice_id)  # 404 for others' invoices
        payment = payments.pay_invoice(conn, rt, invoice_id, data.method, data.outcome, actor)
        row = conn.execute(select(Payment.__table__).where(Payment.__table__.c.id == payment["id"])).mappings().one()
    return views.payment_read(dict(row), locale)


@post("/v1/test-gateway/payments/{gateway_ref:str}/resolve", sync_to_thread=True, opt={"scope": "billing:write"}, tags=["payments"], status_code=200)
def resolve_test_payment(request: Request, gateway_ref: FromPath[str], data: JSONBody[GatewayResolution]) -> views.PaymentRead:
    """Staff: play the test gateway's callback for a pending charge (applied exactly once)."""
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        _, actor, locale = staff(conn, request, "staff.billing")
        payment = payments.resolve_pending(conn, rt, gateway_ref, data.outcome, Actor.system("test-gateway"))
    return views.payment_read(payment, locale)


class NationalTransmission(msgspec.Struct):
    reference: str  # the platform's number: Poland's KSeF number, Italy's SdI file id
    sha256: str  # of the document sent
    receipt: str
    accepted_at: dt.datetime


@post("/v1/staff/invoices/{invoice_id:int}/national/transmission", sync_to_thread=True, opt={"scope": "billing:write"},
      tags=["staff"], status_code=200)
def transmit_national(request: Request, invoice_id: PathId) -> NationalTransmission:
    """Staff: send the invoice's national e-invoice (FatturaPA to SdI, FA(3) to KSeF) through the
    storefront's transport plugin. Once accepted, the platform's reference and receipt are kept,
    and asking again returns them without sending anything."""
    from core.billing.documents import transmit

    rt = runtime(request)

    def send(conn):
        staff(conn, request, "staff.billing")
        return transmit(conn, rt, invoice_id)

    kept = once_more_on_conflict(rt, send)  # two clicks at once: the second finds the receipt the first kept
    return NationalTransmission(kept["reference"], kept["sha256"], kept["receipt"], kept["accepted_at"])


@post("/v1/staff/invoices/{invoice_id:int}/credit-notes", sync_to_thread=True, opt={"scope": "billing:write"}, tags=["staff"], status_code=201)
def create_credit_note(request: Request, invoice_id: PathId, data: JSONBody[CreditNoteCreate],
                       idempotency_key: Annotated[str, HeaderParameter(name="Idempotency-Key", description="Required: one key per credit note")] = "",
                       ) -> Response[views.InvoiceRead]:
    """Staff: correct an issued invoice with a credit note, in full or for some lines. What was
    paid for the credited part goes back to the customer's balance. The same key returns the
    same credit note (200)."""
    from core.billing.credit_notes import issue_credit_note

    rt = runtime(request)
    with unit_of_work(rt) as conn:
        _, actor, locale = staff(conn, request, "staff.billing")
        credit_id, created = issue_credit_note(conn, rt, invoice_id, msgspec.to_builtins(data), idempotency_key, actor)
    with unit_of_work(rt) as conn:
        result = views.invoice_read(rt, *invoicing.load_invoice(conn, None, credit_id), locale)
    return Response(result, status_code=201 if created else 200)
