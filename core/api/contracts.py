"""HTTP handlers for contracts (domain: :mod:`core.ordering.contracts`).

``GET /v1/contracts?storefront=FR&universe=baremetal`` gives the versions in force, in the
reader's language; ``GET /v1/contracts/{id}`` one version with its text;
``POST /v1/orders/dry-run`` what a checkout would need (the versions to accept) and cost;
``GET /v1/me/contracts`` the caller's acceptances: which terms, when, through which channel.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import msgspec
from litestar import Request, get, post, put
from litestar.params import JSONBody, QueryParameter

from core.api.common import PathId, caller, locale_of, runtime, staff
from core.api.schemas import OrderCreate
from core.billing.views import Money, money
from core.customers.partners import universes
from core.errors import InvalidInput
from core.i18n import N_
from core.ordering import contracts
from core.ordering import orders as order_ops
from core.uow import unit_of_work


class ContractRead(msgspec.Struct):
    id: int
    document: str  # "general", or the universe whose specific terms these are
    storefront: str
    language: str
    effective_on: dt.date
    title: str
    content_hash: str  # what an order accepts (its `accept` list)
    requires_acceptance: bool
    path: str  # where to read the text


class ContractTextRead(msgspec.Struct):
    id: int
    document: str
    storefront: str
    language: str
    effective_on: dt.date
    title: str
    content_hash: str
    requires_acceptance: bool
    body: str  # Markdown


class DryRunRead(msgspec.Struct):
    contracts: list[ContractRead]  # to accept: their content hashes go into the order's `accept`
    net: Money  # excluding tax


class AcceptanceRead(msgspec.Struct):
    contract: ContractRead
    accepted_at: dt.datetime
    channel: str  # api (your key) | staff (on your behalf) | import
    order_id: int | None
    service_id: int | None


def contract_read(row: dict) -> ContractRead:
    return ContractRead(row["id"], row["document"], row["storefront"], row["language"], row["effective_on"], row["title"],
                        row["content_hash"], row["requires_acceptance"], f"/v1/contracts/{row['id']}")


@get("/v1/contracts", sync_to_thread=True, tags=["contracts"])
def list_contracts(request: Request, storefront: Annotated[str, QueryParameter(description="Storefront code, e.g. FR")] = "FR",
                   universe: Annotated[list[str] | None, QueryParameter(description="Universes whose terms to add")] = None,
                   ) -> list[ContractRead]:
    """The contract versions in force in a storefront, in the reader's language (Accept-Language,
    else the storefront's, else English): the general terms and those of the universes asked."""
    rt = runtime(request)
    code = storefront.upper()
    if code not in rt.storefronts:
        raise InvalidInput(N_("Unknown or closed storefront {storefront}."), code="unknown_storefront", storefront=storefront)
    known = universes(rt)
    for name in universe or []:
        if name not in known:
            raise InvalidInput(N_("Unknown universe {universe}; expected one of: {universes}."), code="unknown_universe",
                               universe=name, universes=", ".join(known))
    with unit_of_work(rt) as conn:
        rows = contracts.in_force(conn, rt, code, contracts.documents_for(set(universe or [])), locale_of(request),
                                  rt.clock.today())
    return [contract_read(r) for r in rows]


@get("/v1/contracts/{version_id:int}", sync_to_thread=True, tags=["contracts"])
def get_contract(request: Request, version_id: PathId) -> ContractTextRead:
    """One contract version and its text."""
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        r = contracts.get_version(conn, version_id)
    return ContractTextRead(r["id"], r["document"], r["storefront"], r["language"], r["effective_on"], r["title"],
                            r["content_hash"], r["requires_acceptance"], r["body"])


@post("/v1/orders/dry-run", sync_to_thread=True, opt={"scope": "services:write"}, tags=["orders"], status_code=200)
def order_dry_run(request: Request, data: JSONBody[OrderCreate]) -> DryRunRead:
    """Check a cart without ordering: the contract versions the order must accept (put their
    `content_hash` in the order's `accept`) and its net amount. Nothing is written."""
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        account, _actor, locale = caller(conn, request)
        quote = order_ops.dry_run(conn, rt, account, msgspec.to_builtins(data), locale)
    return DryRunRead([contract_read(r) for r in quote["contracts"]], money(quote["net_minor"], quote["currency"], locale))


@get("/v1/me/contracts", sync_to_thread=True, opt={"scope": "account:read"}, tags=["contracts"])
def my_contracts(request: Request) -> list[AcceptanceRead]:
    """The terms you accepted: each version, when, and through which channel."""
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        account, _actor, _locale = caller(conn, request)
        rows = contracts.accepted_by(conn, account.id)
    return [AcceptanceRead(contract_read({**r, "id": r["version_id"]}), r["accepted_at"],
                           r["channel"], r["order_id"], r["service_id"]) for r in rows]


class TermsAcceptance(msgspec.Struct, forbid_unknown_fields=True):
    accept: list[str]  # the content hashes of the versions accepted (GET …/terms lists them)


class TermsStatusRead(msgspec.Struct):
    service_id: int
    due_by: dt.date | None  # accept before this date, or the service ends at expiry
    renewal_mode: str
    contracts: list[ContractRead]  # the versions in force it needs
    accepted: list[bool]  # for each, whether its holder accepted it


class TermsAcceptedRead(msgspec.Struct):
    services: list[int]  # the services now on the terms in force (their deadline lifted)


class TermsDeadline(msgspec.Struct, forbid_unknown_fields=True):
    due_by: dt.date


class CampaignCreate(msgspec.Struct, forbid_unknown_fields=True):
    storefront: str
    universe: str | None = None
    plan_prefix: str | None = None  # a product range: plans whose code starts with it
    expiring_within: Annotated[int, msgspec.Meta(ge=0, le=3660)] | None = None  # days


class CampaignRead(msgspec.Struct):
    invited: int  # by this call
    waiting: int
    accepted: int
    declined: int
    ending: int


@get("/v1/services/{service_id:int}/terms", sync_to_thread=True, opt={"scope": "services:read"}, tags=["contracts"])
def service_terms(request: Request, service_id: PathId) -> TermsStatusRead:
    """The terms a service needs in force, whether its holder accepted them, and the deadline."""
    return _status(request, service_id)


@post("/v1/services/{service_id:int}/terms-acceptance", sync_to_thread=True, opt={"scope": "services:write"},
      tags=["contracts"], status_code=200)
def accept_service_terms(request: Request, service_id: PathId, data: JSONBody[TermsAcceptance]) -> TermsAcceptedRead:
    """One click: accept the terms in force for this service (a legacy service waiting in manual
    renewal moves to automatic renewal on the new contract)."""
    from core.lifecycle.services import get_service

    rt = runtime(request)
    with unit_of_work(rt) as conn:
        _, actor, _ = caller(conn, request)
        get_service(conn, actor, service_id, action="service.renewal_mode", for_update=True)
        return TermsAcceptedRead(contracts.accept_for_services(conn, rt, actor, [service_id], data.accept))


@post("/v1/me/terms-acceptance", sync_to_thread=True, opt={"scope": "services:write"}, tags=["contracts"], status_code=200)
def accept_all_terms(request: Request, data: JSONBody[TermsAcceptance]) -> TermsAcceptedRead:
    """One click for all your services waiting for new terms (those you hold)."""
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        account, actor, _ = caller(conn, request)
        return TermsAcceptedRead(contracts.accept_all(conn, rt, actor.acting_as({"admin"}), account.id, data.accept))


@put("/v1/staff/services/{service_id:int}/terms-deadline", sync_to_thread=True, opt={"scope": "billing:write"},
     tags=["staff"])
def extend_terms_deadline(request: Request, service_id: PathId, data: JSONBody[TermsDeadline]) -> TermsStatusRead:
    """Staff: move a service's deadline for accepting new terms."""
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        _, actor, _ = staff(conn, request, "staff.billing")
        contracts.move_deadline(conn, rt, actor, service_id, data.due_by)
    return _status(request, service_id)


def _status(request: Request, service_id: int) -> TermsStatusRead:
    from core.lifecycle.services import get_service

    rt = runtime(request)
    with unit_of_work(rt) as conn:
        _, actor, locale = caller(conn, request)
        row = get_service(conn, actor, service_id, action="service.read")
        terms = contracts.terms_of(conn, rt, row, locale)
    return TermsStatusRead(service_id, row["terms_due_by"], row["renewal_mode"], [contract_read(v) for v, _ in terms],
                           [done for _, done in terms])


@post("/v1/staff/switch-campaigns", sync_to_thread=True, opt={"scope": "billing:write"}, tags=["staff"], status_code=200)
def run_campaign(request: Request, data: JSONBody[CampaignCreate]) -> CampaignRead:
    """Staff: invite the chosen legacy services to renew onto the new contract (again: nobody twice)."""
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        staff(conn, request, "staff.billing")
        report = contracts.invite(conn, rt, data.storefront.upper(), universe=data.universe, plan_prefix=data.plan_prefix,
                                  expiring_within=data.expiring_within)
    return CampaignRead(**report.__dict__)


@get("/v1/staff/switch-campaigns/progress", sync_to_thread=True, opt={"scope": "billing:read"}, tags=["staff"])
def campaign_progress(request: Request, storefront: Annotated[str, QueryParameter(description="Storefront code")],
                      universe: Annotated[str | None, QueryParameter()] = None,
                      plan_prefix: Annotated[str | None, QueryParameter(max_length=64)] = None,
                      expiring_within: Annotated[int | None, QueryParameter(ge=0, le=3660)] = None) -> CampaignRead:
    """Staff: who accepted, who did not, and what ends."""
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        staff(conn, request, "staff.billing")
        report = contracts.progress(conn, rt, storefront.upper(), universe=universe, plan_prefix=plan_prefix,
                                    expiring_within=expiring_within)
    return CampaignRead(**report.__dict__)


class WithdrawalRead(msgspec.Struct):
    order_id: int
    credit_note_id: int | None  # refunded to the prepaid balance
    refund: Money  # excluding tax: setup fees in full, each period prorated for the days used
    services: list[int]  # ended
    deadline: dt.date  # the last day it could be done


@post("/v1/orders/{order_id:int}/withdrawal", sync_to_thread=True, opt={"scope": "services:write"}, tags=["orders"],
      status_code=200)
def withdraw_order(request: Request, order_id: PathId) -> WithdrawalRead:
    """A consumer withdraws from an order within the storefront's withdrawal period (14 days in
    the EU and the UK), unless it waived the right for delivery at once: the services end and
    the invoice is credited, prorated for what was used. Business customers have no such right."""
    from core.ordering.withdrawal import withdraw

    rt = runtime(request)
    with unit_of_work(rt) as conn:
        account, actor, locale = caller(conn, request)
        done = withdraw(conn, rt, account, actor, order_id)
    return WithdrawalRead(done["order_id"], done["credit_note_id"], money(done["refund_minor"], done["currency"], locale),
                          done["services"], done["deadline"])


ROUTES = [withdraw_order, list_contracts, get_contract, order_dry_run, my_contracts, service_terms, accept_service_terms, accept_all_terms,
          extend_terms_deadline, run_campaign, campaign_progress]
