"""HTTP handlers for the work board: anyone reads it without a key (``/v1/status``, its Atom feed);
staff publish incidents and known bugs and their updates (``/v1/staff/status``); customers follow
it by mail (``/v1/me/status-subscriptions``).

The public routes take no key: they name no scope and never call :func:`caller`, so their
OpenAPI operations say they need none (``security: []``, core/api/openapi.py), as the catalog's and sign-up's do.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

import msgspec
from litestar import Request, Response, delete, get, post, put
from litestar.params import HeaderParameter, JSONBody, PathParameter, QueryParameter

from core.api import schemas as s
from core.api.common import PathId, caller, locale_of, runtime, staff
from core.errors import InvalidInput
from core.i18n import N_
from core.status import board, feed, subscriptions
from core.uow import unit_of_work

Texts = Annotated[dict[Annotated[str, msgspec.Meta(max_length=16)], Annotated[str, msgspec.Meta(max_length=5000)]],
                  msgspec.Meta(max_length=40, description="Text per language (en required): {\"en\": ..., \"fr\": ...}")]
Code = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Key = Annotated[str | None, HeaderParameter(name="Idempotency-Key", max_length=64, description="Optional: a retry with the same key changes nothing")]

# --- schemas -------------------------------------------------------------------------------------


class IncidentCreate(msgspec.Struct, forbid_unknown_fields=True):
    universe: Code
    kind: Literal["incident", "known_bug"]
    title: Texts  # per language
    text: Texts  # the first update, per language
    products: Annotated[list[Code], msgspec.Meta(max_length=200)] = []  # none: all of the universe's
    storefronts: Annotated[list[Annotated[str, msgspec.Meta(min_length=1, max_length=4)]], msgspec.Meta(max_length=50)] = []  # none: all
    status: Literal["investigating", "identified", "fixing"] = "investigating"


class UpdateCreate(msgspec.Struct, forbid_unknown_fields=True):
    status: Literal["investigating", "identified", "fixing", "resolved"]
    text: Texts


class Resolution(msgspec.Struct, forbid_unknown_fields=True):
    text: Texts


class UpdateRead(msgspec.Struct):
    id: int
    at: dt.datetime
    status: str
    status_label: str
    text: str
    language: str  # the language of ``text``: the reader's, else English


class IncidentRead(msgspec.Struct):
    id: int
    universe: str
    products: list[str]  # empty: all of the universe's
    storefronts: list[str]  # empty: all
    kind: str
    kind_label: str
    status: str
    status_label: str
    title: str
    created_at: dt.datetime
    updated_at: dt.datetime
    resolved_at: dt.datetime | None
    url: str
    latest: UpdateRead | None = None
    updates: list[UpdateRead] | None = None  # the whole story, on the incident's own page


class SubscriptionRead(msgspec.Struct):
    universe: str  # a universe, or "all"
    since: dt.datetime


def update_read(row: dict, locale: str) -> UpdateRead:
    text, language = board.pick(row["texts"], locale)
    return UpdateRead(row["id"], row["at"], row["status"], board.status_label(row["status"], locale), text, language)


def incident_read(row: dict, locale: str) -> IncidentRead:
    title, _ = board.pick(row["titles"], locale)
    return IncidentRead(
        row["id"], row["universe"], row["products"], row["storefronts"], row["kind"],
        board.kind_label(row["kind"], locale), row["status"], board.status_label(row["status"], locale), title,
        row["created_at"], row["updated_at"], row["resolved_at"], f"/v1/status/{row['id']}",
        update_read(row["latest"], locale) if row.get("latest") else None,
        [update_read(u, locale) for u in row["updates"]] if "updates" in row else None)


def incident_links(rows: list[dict], locale: str) -> list[s.IncidentLink]:
    return [s.IncidentLink(r["id"], r["kind"], r["status"], board.pick(r["titles"], locale)[0], f"/v1/status/{r['id']}")
            for r in rows]


def subscription_read(row: dict) -> SubscriptionRead:
    return SubscriptionRead("all" if row["universe"] == subscriptions.ALL else row["universe"], row["created_at"])


Universe = Annotated[str | None, QueryParameter(max_length=64, description="Only this universe")]
Storefront = Annotated[str | None, QueryParameter(max_length=4, description="Only what touches this storefront")]
Product = Annotated[str | None, QueryParameter(max_length=64, description="Only what touches this product")]


def _board(request: Request, universe: str | None, storefront: str | None, product: str | None) -> list[dict]:
    rt = runtime(request)
    if storefront and storefront.upper() not in rt.storefronts:
        raise InvalidInput(N_("Unknown or closed storefront {storefront}."), code="unknown_storefront", storefront=storefront)
    with rt.engine.connect() as conn:
        return board.board(conn, rt, universe, storefront, product)


# --- public --------------------------------------------------------------------------------------


@get("/v1/status", sync_to_thread=True, tags=["status"])
def status_board(request: Request, universe: Universe = None, storefront: Storefront = None,
                 product: Product = None) -> list[IncidentRead]:
    """The work board, without a key: open incidents and known bugs, and those resolved in the
    last 7 days, most recently changed first, in the reader's language (Accept-Language; staff
    texts fall back to English)."""
    locale = locale_of(request)
    return [incident_read(r, locale) for r in _board(request, universe, storefront, product)]


@get("/v1/status/feed.atom", sync_to_thread=True, tags=["status"],
     media_type="application/atom+xml")
def status_feed(request: Request, universe: Universe = None, storefront: Storefront = None,
                product: Product = None) -> Response[bytes]:
    """The work board as an Atom feed (RFC 4287), without a key, in the reader's language."""
    rt = runtime(request)
    locale = locale_of(request)
    rows = _board(request, universe, storefront, product)
    sub = rt.storefronts.get(storefront.upper()) if storefront else None
    base = rt.settings.base_url
    query = str(request.url.query) if request.url.query else ""
    body = feed.atom(rows, base_url=base, self_url=f"{base}/v1/status/feed.atom" + (f"?{query}" if query else ""),
                     company=sub.legal_entity["name"] if sub else "Univers", now=rt.clock.now(), locale=locale)
    return Response(body, media_type="application/atom+xml; charset=utf-8")


@get("/v1/status/{incident_id:int}", sync_to_thread=True, tags=["status"])
def status_incident(request: Request, incident_id: PathId) -> IncidentRead:
    """One incident with all its updates, without a key."""
    rt = runtime(request)
    with rt.engine.connect() as conn:
        return incident_read(board.incident(conn, incident_id), locale_of(request))


# --- staff ---------------------------------------------------------------------------------------


@post("/v1/staff/status/incidents", sync_to_thread=True, opt={"scope": "services:write"}, tags=["staff"], status_code=201)
def create_incident(request: Request, data: JSONBody[IncidentCreate], idempotency_key: Key = None) -> Response[IncidentRead]:
    """Staff: publish an incident or a known bug on a universe (some products and storefronts,
    or all), with its title and first update in several languages (English required)."""
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        _, actor, locale = staff(conn, request, "staff.status")
        row, created = board.create_incident(conn, rt, actor, universe=data.universe, kind=data.kind, titles=data.title,
                                             texts=data.text, products=data.products, storefronts=data.storefronts,
                                             status=data.status, key=idempotency_key)
        result = incident_read(board.incident(conn, row["id"]), locale)
    return Response(result, status_code=201 if created else 200)


@post("/v1/staff/status/incidents/{incident_id:int}/updates", sync_to_thread=True, opt={"scope": "services:write"},
      tags=["staff"], status_code=201)
def post_update(request: Request, incident_id: PathId, data: JSONBody[UpdateCreate], idempotency_key: Key = None) -> Response[IncidentRead]:
    """Staff: a new status and what to say of it, in several languages; ``resolved`` closes it.
    Subscribers get a mail of it."""
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        _, actor, locale = staff(conn, request, "staff.status")
        _, created = board.post_update(conn, rt, actor, incident_id, data.status, data.text, idempotency_key)
        result = incident_read(board.incident(conn, incident_id), locale)
    return Response(result, status_code=201 if created else 200)


@post("/v1/staff/status/incidents/{incident_id:int}/resolve", sync_to_thread=True, opt={"scope": "services:write"},
      tags=["staff"], status_code=200)
def resolve_incident(request: Request, incident_id: PathId, data: JSONBody[Resolution], idempotency_key: Key = None) -> IncidentRead:
    """Staff: resolve an incident, saying how (its last update)."""
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        _, actor, locale = staff(conn, request, "staff.status")
        board.resolve(conn, rt, actor, incident_id, data.text, idempotency_key)
        return incident_read(board.incident(conn, incident_id), locale)


# --- subscriptions -------------------------------------------------------------------------------

SubUniverse = Annotated[str, PathParameter(min_length=1, max_length=64, description="A universe, or all")]


@get("/v1/me/status-subscriptions", sync_to_thread=True, opt={"scope": "account:read"}, tags=["status"])
def list_subscriptions(request: Request) -> list[SubscriptionRead]:
    """What the caller follows on the work board."""
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        _, actor, _ = caller(conn, request)
        return [subscription_read(r) for r in subscriptions.subscriptions(conn, actor)]


@put("/v1/me/status-subscriptions/{universe:str}", sync_to_thread=True, opt={"scope": "account:write"}, tags=["status"])
def subscribe(request: Request, universe: SubUniverse) -> SubscriptionRead:
    """Follow a universe's incidents (``all``: every universe's): a mail in the caller's language
    on each update. Following twice changes nothing. (A plain return: a ``Response`` here, beside
    the DELETE of the same path, makes Litestar 2.25 answer with an un-awaited coroutine.)"""
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        _, actor, _ = caller(conn, request)
        row, _ = subscriptions.subscribe(conn, rt, actor, universe)
    return subscription_read(row)


@delete("/v1/me/status-subscriptions/{universe:str}", sync_to_thread=True, opt={"scope": "account:write"}, tags=["status"],
        status_code=204)
def unsubscribe(request: Request, universe: SubUniverse) -> None:
    """Stop following it."""
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        _, actor, _ = caller(conn, request)
        subscriptions.unsubscribe(conn, rt, actor, universe)


ROUTES = [status_board, status_feed, status_incident, create_incident, post_update, resolve_incident,
          list_subscriptions, subscribe, unsubscribe]
