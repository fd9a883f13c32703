"""HTTP handlers for pay-as-you-go usage (domain: :mod:`core.usage.ingest`).

``POST /v1/usage`` takes a batch of up to 10,000 records. Its body is parsed by msgspec
straight into typed records (not field by field by the framework): the handler receives the raw
bytes, and the OpenAPI document describes the body from :data:`BATCH_SCHEMA`.
``GET /v1/services/{id}/usage?period=YYYY-MM`` sums a project's month so far.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated

import msgspec
from litestar import Request, get, post
from litestar.openapi.spec import OpenAPIMediaType, Operation, RequestBody, Schema
from litestar.openapi.spec.enums import OpenAPIType
from litestar.params import QueryParameter, RawBody

from core.api.common import PathId, caller, runtime
from core.billing.views import Money, money
from core.errors import InvalidInput
from core.i18n import N_, translate
from core.money import ppm_to_percent
from core.uow import unit_of_work
from core.usage import ingest as usage
from core.usage import metering
from core.usage.commitments import covers

# --- schemas -------------------------------------------------------------------------------------

_RECORD_SCHEMA = Schema(
    type=OpenAPIType.OBJECT,
    required=["id", "project", "metric", "quantity", "at"],
    additional_properties=False,
    properties={
        "id": Schema(type=OpenAPIType.STRING, description="Your id for the record, unique per project (1 to 64 characters): "
                                                          "a record sent again is counted once"),
        "project": Schema(type=OpenAPIType.INTEGER, description="The project's service id"),
        "metric": Schema(type=OpenAPIType.STRING, description="A metric of the project's universe, e.g. instance_hours"),
        "dimension": Schema(one_of=[Schema(type=OpenAPIType.STRING), Schema(type=OpenAPIType.NULL)],
                            description="What the metric needs said more, e.g. the instance flavour (b3-8)"),
        "quantity": Schema(one_of=[Schema(type=OpenAPIType.STRING), Schema(type=OpenAPIType.NUMBER)],
                           description="A decimal string or number, at most 6 decimals, not negative"),
        "at": Schema(type=OpenAPIType.STRING, format="date-time", description="When (RFC 3339, with its offset), not in the future"),
    },
)
BATCH_SCHEMA = Schema(
    type=OpenAPIType.OBJECT, required=["records"], additional_properties=False,
    properties={"records": Schema(type=OpenAPIType.ARRAY, items=_RECORD_SCHEMA, max_items=usage.MAX_BATCH)},
)


@dataclass
class UsageOperation(Operation):
    """The OpenAPI operation of ``POST /v1/usage``: its body is parsed by the handler itself."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(required=True, description="A batch of usage records",
                                        content={"application/json": OpenAPIMediaType(schema=BATCH_SCHEMA)})


class UsageRejection(msgspec.Struct):
    index: int  # the record's position in the batch, from 0
    id: str
    code: str
    message: str


class UsageIngested(msgspec.Struct):
    received: int
    accepted: int  # new records stored
    duplicates: int  # records already stored (or sent twice in this batch): counted once
    rejected: list[UsageRejection]


class UsageLineRead(msgspec.Struct):
    metric: str
    name: str
    unit: str
    dimension: str | None
    quantity: str  # exact decimal
    quantity_micro: int
    records: int


class UsageRead(msgspec.Struct):
    service_id: int
    period: dt.date  # the month's first day
    closed: bool  # invoiced: late records are refused
    lines: list[UsageLineRead]


class ConsumptionLineRead(msgspec.Struct):
    metric: str
    name: str  # in the caller's language
    unit: str
    dimension: str | None
    quantity: str  # so far, exact decimal
    unit_price: str  # exact decimal in the currency (more decimals than the currency's own)
    amount: Money  # so far, excluding tax
    capped: bool  # the monthly cap applies (instance hours)
    forecast_quantity: str  # at the month's end, at the pace so far
    forecast: Money


class SavingsPlanRead(msgspec.Struct):
    monthly: Money  # due whatever the usage
    percent_off: str
    covers: Money  # the list value of the usage it covers in a month
    covered: Money  # of the usage so far
    forecast_covered: Money


class ConsumptionRead(msgspec.Struct):
    service_id: int
    period: dt.date  # the month's first day
    as_of: dt.datetime
    currency: str
    lines: list[ConsumptionLineRead]
    total: Money  # so far, at list price, excluding tax
    forecast: Money  # at the month's end, at list price, excluding tax
    savings_plan: SavingsPlanRead | None  # the savings plan in force this month
    due: Money  # so far: what the month costs with the savings plan (the total without one)
    forecast_due: Money  # at the month's end


Period = Annotated[str | None, QueryParameter(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$",
                                              description="The month, YYYY-MM (default: the current month)")]

# --- handlers ------------------------------------------------------------------------------------


@post("/v1/usage", sync_to_thread=True, tags=["usage"], opt={"scope": "services:write"}, status_code=200,
      operation_class=UsageOperation)
def ingest_usage(request: Request, body: RawBody) -> UsageIngested:
    """Send usage records of your projects, up to 10,000 per request. Idempotent on each
    record's id: a record sent again counts once (`duplicates`). Invalid records are refused one
    by one with a reason (`rejected`), and the valid ones of the batch are kept."""
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        _, actor, locale = caller(conn, request)
        batch = usage.decode_batch(body)
        done = usage.ingest(conn, rt, actor, batch)
    messages = {code: translate(text, locale) for code, text in usage.REASONS.items()}
    return UsageIngested(done.received, done.accepted, done.duplicates,
                         [UsageRejection(pos, batch[pos].id, code, messages[code]) for pos, code in done.rejected])


@get("/v1/services/{service_id:int}/usage", sync_to_thread=True, tags=["usage"], opt={"scope": "services:read"})
def project_usage(request: Request, service_id: PathId, period: Period = None) -> UsageRead:
    """A project's usage in a month so far, per metric and dimension (quantities, not prices yet)."""
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        _, actor, locale = caller(conn, request)
        month = usage.month_of(rt.clock.today())
        if period:
            try:
                month = dt.date(int(period[:4]), int(period[5:7]), 1)
            except ValueError:
                raise InvalidInput(N_("The period is a month, YYYY-MM."), code="invalid_period") from None
        _, lines = usage.usage_so_far(conn, actor, service_id, month)
        closed = usage.is_closed(conn, service_id, month)
    out = []
    for line in lines:
        spec = rt.metrics.get(line["metric"])
        name = translate(spec.name, locale, domain=spec.universe) if spec and spec.name else line["metric"]
        out.append(UsageLineRead(line["metric"], name, spec.unit if spec else "", line["dimension"],
                                 usage.format_micro(line["quantity_micro"]), line["quantity_micro"], line["records"]))
    return UsageRead(service_id, month, closed, out)


@get("/v1/services/{service_id:int}/consumption", sync_to_thread=True, tags=["usage"], opt={"scope": "billing:read"})
def project_consumption(request: Request, service_id: PathId) -> ConsumptionRead:
    """A project's month so far, priced per metric and dimension like its invoice will be, and a
    linear forecast to the month's end (amounts excluding tax), with its savings plan drawn
    first (`due`, `forecast_due`). For those who see its invoices (the billing contact and
    billing staff)."""
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        _, actor, locale = caller(conn, request)
        c = metering.consumption(conn, rt, actor, service_id)
    cur = c["currency"]
    out = []
    for now, ahead in c["lines"]:
        spec = rt.metrics.get(now.metric)
        name = translate(spec.name, locale, domain=spec.universe) if spec and spec.name else now.metric
        out.append(ConsumptionLineRead(now.metric, name, spec.unit if spec else "", now.dimension,
                                       usage.format_micro(now.quantity_micro), usage.format_micro(now.unit_price_micro),
                                       money(now.net_minor, cur, locale), now.capped, usage.format_micro(ahead.quantity_micro),
                                       money(ahead.net_minor, cur, locale)))
    plan = c["plan"]
    savings = None if plan is None else SavingsPlanRead(
        money(plan["monthly_minor"], cur, locale), ppm_to_percent(plan["discount_ppm"]),
        money(covers(plan["monthly_minor"], plan["discount_ppm"]), cur, locale), money(c["covered_minor"], cur, locale),
        money(c["forecast_covered_minor"], cur, locale))
    return ConsumptionRead(service_id, c["period"], c["as_of"], cur, out, money(c["total_minor"], cur, locale),
                           money(c["forecast_minor"], cur, locale), savings, money(c["due_minor"], cur, locale),
                           money(c["forecast_due_minor"], cur, locale))


ROUTES = [ingest_usage, project_usage, project_consumption]
