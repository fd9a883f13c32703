"""HTTP handlers for contracts (domain: :mod:`core.contracts`).

``GET /v1/contracts?storefront=FR&universe=baremetal`` gives the versions in force, in the
reader's language; ``GET /v1/contracts/{id}`` one version with its text;
``POST /v1/orders/dry-run`` what a checkout would need (the versions to accept) and cost;
``GET /v1/me/contracts`` the caller's acceptances: which terms, when, through which channel.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import msgspec
from litestar import Request, get, post
from litestar.params import JSONBody, QueryParameter

from core import contracts
from core import orders as order_ops
from core.api.common import PathId, caller, locale_of, runtime
from core.api.schemas import Money, OrderCreate, money
from core.errors import InvalidInput
from core.i18n import N_
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


ROUTES = [list_contracts, get_contract, order_dry_run, my_contracts]
