"""The customer's Manager, under ``/manager/``: sign-in, my services (stop at expiry and undo in one
click), a service's page, the storefront's catalog with a one-click order that accepts its
terms, invoices with their PDF, the balance, the API keys and the export of my data.

Every handler reads the session, then calls the domain operation the API calls, with the same
actor: what the API refuses, the console refuses with the same message."""

from __future__ import annotations

import json
import secrets
from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath

from core.access import allowed, key_allows
from core.billing import accounting, invoicing
from core.billing.views import plan_name
from core.console import session
from core.console.render import LANGUAGE_COOKIE, LANGUAGES, locale_of, page
from core.console.web import back, current, posted, record_id, runtime, signed_in
from core.customers import contacts
from core.errors import InvalidInput, UniversError
from core.i18n import N_, translate
from core.lifecycle import services as service_ops
from core.uow import once_more_on_conflict, unit_of_work

Form = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]
PAGE = 50
STATES = {"pending": N_("Being delivered"), "active": N_("Active"), "suspended": N_("Suspended"),
          "terminated": N_("Terminated"), "deleted": N_("Deleted")}
MODES = {"automatic": N_("Renews automatically"), "manual": N_("Renews when you pay"),
         "terminate": N_("Stops at expiry")}


def service_view(rt, who, row: dict, locale: str) -> dict:
    roles = who.actor.roles_on(row)
    state, mode = STATES.get(row["state"], row["state"]), MODES.get(row["renewal_mode"], row["renewal_mode"])
    return {**row, "name": plan_name(rt.catalog, row["plan_code"], locale), "state_text": translate(state, locale),
            "mode_text": translate(mode, locale), "roles": sorted(roles),
            "may_stop": allowed(roles, "service.stop") and key_allows(who.actor.scopes, "services:write")
            and row["state"] in ("pending", "active", "suspended")}


# --- signing in and out ----------------------------------------------------------------------


@get("/manager/sign-in", sync_to_thread=True, include_in_schema=False)
def sign_in_page(request: Request) -> Response:
    return _sign_in_form(request, "sign_in.html", next=_safe_next(request.query_params.get("next")))


@post("/manager/sign-in", sync_to_thread=True, include_in_schema=False)
def sign_in(request: Request, data: Form) -> Response:
    if not session.same_token(data.get("csrf"), request.cookies.get(session.SIGN_IN_COOKIE)):
        return back("/manager/sign-in")  # a sign-in form of another site, or an old one: a fresh form
    rt = runtime(request)
    try:
        with unit_of_work(rt) as conn:
            token, account = session.sign_in(conn, str(data.get("key") or ""), rt.clock.now())
    except UniversError as exc:
        return _sign_in_form(request, "sign_in.html", status=exc.status, next=_safe_next(data.get("next")),
                             error=exc.message(locale_of(request, None)))
    return _signed_in(request, token, account, data.get("next"))


def _sign_in_form(request: Request, template: str, status: int = 200, **context) -> Response:
    """A page with a sign-in form, and the short-lived cookie its token is checked against."""
    token = session.new_token()
    response = page(request, None, template, status=status, csrf=token, **context)
    response.set_cookie(session.SIGN_IN_COOKIE, token, max_age=900, httponly=True, samesite="lax",
                        secure=request.url.scheme == "https", path="/manager/sign-in")
    return response


@post("/manager/sign-in/link", sync_to_thread=True, include_in_schema=False)
def ask_for_link(request: Request, data: Form) -> Response:
    """A one-time link by mail to the accounts that use this address; the page says the same either way."""
    if not session.same_token(data.get("csrf"), request.cookies.get(session.SIGN_IN_COOKIE)):
        return back("/manager/sign-in")
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        session.send_links(conn, str(data.get("email") or ""), rt.clock.now(), rt.settings.base_url)
    return _sign_in_form(request, "sign_in.html", next="", link_sent=True)


@get("/manager/sign-in/link/{token:str}", sync_to_thread=False, include_in_schema=False)
def link_page(request: Request, token: FromPath[str]) -> Response:
    """The link's page: a button signs in (a mail scanner that opens the link signs nobody in)."""
    return _sign_in_form(request, "sign_in_link.html", token=token)


@post("/manager/sign-in/link/{token:str}", sync_to_thread=True, include_in_schema=False)
def sign_in_with_link(request: Request, token: FromPath[str], data: Form) -> Response:
    if not session.same_token(data.get("csrf"), request.cookies.get(session.SIGN_IN_COOKIE)):
        return back(f"/manager/sign-in/link/{token}")
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        opened = session.sign_in_with_link(conn, token[:100], rt.clock.now())
    if opened is None:
        return _sign_in_form(request, "sign_in.html", status=410, next="", error=translate(
            N_("This link has been used, has expired or is unknown; ask for a new one."), locale_of(request, None)))
    return _signed_in(request, *opened, "")


def _signed_in(request: Request, token: str, account, next_value) -> Response:
    target = _safe_next(next_value) or ("/backoffice/" if account.is_staff else "/manager/")
    response = back(target)
    response.set_cookie(session.COOKIE, token, max_age=int(session.LIFETIME.total_seconds()), httponly=True,
                        samesite="lax", secure=request.url.scheme == "https", path="/")
    response.delete_cookie(session.SIGN_IN_COOKIE, path="/manager/sign-in")
    return response


def _safe_next(value) -> str:
    """Where to go after signing in: a path of this console only, never another site."""
    text = str(value or "")
    return text if text.startswith(("/manager/", "/backoffice/")) and "//" not in text and "\\" not in text else ""


@post("/manager/sign-out", sync_to_thread=True, include_in_schema=False)
def sign_out(request: Request, data: Form) -> Response:
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        who = current(conn, request)
        if who is not None:
            posted(who, data)
            session.sign_out(conn, who, rt.clock.now())
    response = back("/manager/sign-in")
    response.delete_cookie(session.COOKIE, path="/")
    return response


@get("/manager/language/{code:str}", sync_to_thread=False, include_in_schema=False)
def choose_language(request: Request, code: FromPath[str]) -> Response:
    """The language switcher: the choice is kept in a cookie, and the page comes back in it."""
    target = _safe_next(request.query_params.get("next")) or "/manager/"
    response = back(target)
    if code in LANGUAGES:
        response.set_cookie(LANGUAGE_COOKIE, code, max_age=365 * 86400, samesite="lax", path="/")
    return response


# --- services ----------------------------------------------------------------------------------


@get("/manager/", sync_to_thread=True, include_in_schema=False)
def my_services(request: Request) -> Response:
    rt = runtime(request)
    after = _cursor(request)
    with unit_of_work(rt) as conn:
        who = signed_in(conn, request, "services:read")
        locale = locale_of(request, who)
        rows = service_ops.list_services(conn, who.actor, after, PAGE)
        items = [service_view(rt, who, r, locale) for r in rows]
        waiting = [] if who.actor.is_staff else contacts.waiting_for(conn, rt, who.actor)
    for change in waiting:
        change["service_name"] = plan_name(rt.catalog, change["plan_code"], locale)
    return page(request, who, "services.html", services=items, waiting=waiting,
                next_after=rows[-1]["id"] if len(rows) == PAGE else None)


@get("/manager/services/{service_id:str}", sync_to_thread=True, include_in_schema=False)
def service_page(request: Request, service_id: FromPath[str]) -> Response:
    from core.status import board
    from core.support import tickets
    from core.usage import metering

    rt = runtime(request)
    with unit_of_work(rt) as conn:
        who = signed_in(conn, request, "services:read")
        locale = locale_of(request, who)
        row, by_role, changes = contacts.service_contacts(conn, rt, who.actor, record_id(service_id))
        events = service_ops.service_events(conn, who.actor, row["id"], limit=50, newest=True)
        ticket_rows = tickets.list_tickets(conn, who.actor, service_id=row["id"], limit=50)
        usage = None
        if rt.is_metered(row["universe"], row["kind"]) and allowed(who.actor.roles_on(row), "service.invoices"):
            usage = metering.consumption(conn, rt, who.actor, row["id"])
        incidents = [{"id": i["id"], "kind": board.kind_label(i["kind"], locale), "title": board.pick(i["titles"], locale)[0],
                      "status": board.status_label(i["status"], locale)}
                     for i in board.open_for_services(conn, [row]).get(row["id"], [])]
    return page(request, who, "service.html", service=service_view(rt, who, row, locale), events=events,
                tickets=ticket_rows, contacts=by_role, changes=changes, usage=usage, incidents=incidents)


@post("/manager/services/{service_id:str}/{action:str}", sync_to_thread=True, include_in_schema=False)
def service_action(request: Request, service_id: FromPath[str], action: FromPath[str], data: Form) -> Response:
    """One click: ``stop`` (the service ends at its expiry, no further invoice) or ``undo`` (it
    renews automatically again). An htmx click gets the service's row back, a plain form the page."""
    modes = {"stop": "terminate", "undo": "automatic"}
    if action not in modes:
        raise InvalidInput(N_("Unknown action."), code="unknown_action")
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        who = signed_in(conn, request, "services:write")
        posted(who, data)
        row = service_ops.set_renewal_mode(conn, rt, who.actor, record_id(service_id), modes[action])
        view = service_view(rt, who, row, locale_of(request, who))
    if request.headers.get("hx-request"):
        return page(request, who, "_service_row.html", s=view)
    return back(_safe_next(data.get("next")) or "/manager/")


# --- ordering ----------------------------------------------------------------------------------


@get("/manager/catalog", sync_to_thread=True, include_in_schema=False)
def catalog_page(request: Request) -> Response:
    """What the storefront sells today, as the API's catalog shows it (Fast-Path aside: it is for partners)."""
    from core.catalog.views import catalog_read

    rt = runtime(request)
    with unit_of_work(rt) as conn:
        who = signed_in(conn, request, "services:read")
    view = catalog_read(rt.catalog, rt.storefronts[who.account.subsidiary], locale_of(request, who), rt.clock.today())
    return page(request, who, "catalog.html", products=[p for p in view.products if not p.partners_only])


@get("/manager/order/{plan:str}", sync_to_thread=True, include_in_schema=False)
def order_page(request: Request, plan: FromPath[str]) -> Response:
    """What the order of one plan costs and the terms it accepts, with the button that orders it."""
    from core.ordering import orders

    rt = runtime(request)
    with unit_of_work(rt) as conn:
        who = signed_in(conn, request, "services:write")
        locale = locale_of(request, who)
        quote = orders.dry_run(conn, rt, who.account, {"items": [{"plan": plan}]}, locale)
    return page(request, who, "order.html", plan=plan, name=plan_name(rt.catalog, plan, locale), quote=quote,
                accept=",".join(c["content_hash"] for c in quote["contracts"]), key=secrets.token_urlsafe(16))


@post("/manager/order", sync_to_thread=True, include_in_schema=False)
def order(request: Request, data: Form) -> Response:
    """One click: the order is invoiced and paid from the balance; the same form posted twice is one order."""
    from core.ordering import orders

    rt = runtime(request)
    hashes = [h for h in str(data.get("accept") or "").split(",") if h] if data.get("agree") else []
    body = {"items": [{"plan": str(data.get("plan") or "")}], "payment": {"method": "balance"}, "accept": hashes}

    def place(conn):
        who = signed_in(conn, request, "services:write")
        posted(who, data)
        return orders.checkout(conn, rt, who.account, body, str(data.get("key") or ""), who.actor, locale_of(request, who))

    order_id, _ = once_more_on_conflict(rt, place)
    return back(f"/manager/?ordered={order_id}")


# --- invoices and account ----------------------------------------------------------------------


@get("/manager/invoices", sync_to_thread=True, include_in_schema=False)
def invoices_page(request: Request) -> Response:
    from core.billing.views import invoice_read

    rt = runtime(request)
    after = _cursor(request)
    with unit_of_work(rt) as conn:
        who = signed_in(conn, request, "billing:read")
        locale = locale_of(request, who)
        rows = accounting.find_invoices(conn, account_id=who.account.id, subsidiary=None, status=None, kind=None,
                                        issued_from=None, issued_to=None, after=after, limit=PAGE)
        items = [invoice_read(rt, *found, locale) for found in invoicing.load_invoices(conn, rows)]
    return page(request, who, "invoices.html", invoices=items, next_after=rows[-1]["id"] if len(rows) == PAGE else None)


@get("/manager/invoices/{invoice_id:str}/pdf", sync_to_thread=True, include_in_schema=False)
def invoice_pdf(request: Request, invoice_id: FromPath[str]) -> Response:
    from core.billing import documents

    rt = runtime(request)
    with unit_of_work(rt) as conn:
        who = signed_in(conn, request, "billing:read")
        content, media, name = documents.render(conn, rt, who.account.id, record_id(invoice_id), "pdf")
    return Response(content, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'})


@get("/manager/account", sync_to_thread=True, include_in_schema=False)
def account_page(request: Request) -> Response:
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        who = signed_in(conn, request, "account:read")
    return _account(request, rt, who)


def _account(request: Request, rt, who, status: int = 200, created: dict | None = None) -> Response:
    from core.access import SCOPES
    from core.customers.accounts import list_keys

    with rt.engine.connect() as conn:
        api_keys = list_keys(conn, who.account.id)
    storefront = rt.storefronts[who.account.subsidiary]
    einvoice = [(name, (who.account.einvoice or {}).get(name, "")) for name in storefront.einvoice_fields]
    return page(request, who, "account.html", status=status, api_keys=api_keys, currency=storefront.currency, scopes=SCOPES,
                created=created, may_write=key_allows(who.actor.scopes, "account:write"), einvoice=einvoice,
                may_bill=key_allows(who.actor.scopes, "billing:write"))


@post("/manager/account/einvoice", sync_to_thread=True, include_in_schema=False)
def set_einvoice(request: Request, data: Form) -> Response:
    """The account's national e-invoice details, as the storefront asks them (blank: not given)."""
    from core.customers.accounts import set_einvoice as save

    rt = runtime(request)
    with unit_of_work(rt) as conn:
        who = signed_in(conn, request, "billing:write")
        posted(who, data)
        given = {n: str(data.get(n) or "").strip() for n in rt.storefronts[who.account.subsidiary].einvoice_fields}
        save(conn, rt, who.account, {n: v for n, v in given.items() if v}, who.actor)
    return back("/manager/account")


@post("/manager/account/keys", sync_to_thread=True, include_in_schema=False)
def create_key(request: Request, data: Form) -> Response:
    """A further key, narrowed to the scopes ticked; its secret is shown on the page once."""
    from core.access import SCOPES
    from core.customers.accounts import create_key as new_key

    rt = runtime(request)
    with unit_of_work(rt) as conn:
        who = signed_in(conn, request, "account:write")
        posted(who, data)
        chosen = [s for s in SCOPES if data.get(f"scope_{s}")] or None
        row, secret = new_key(conn, rt, who.account.id, str(data.get("name") or "")[:64], chosen, None, who.actor)
    return _account(request, rt, who, 201, {"prefix": row["prefix"], "secret": secret})


@post("/manager/account/keys/{key_id:str}/revoke", sync_to_thread=True, include_in_schema=False)
def revoke_key(request: Request, key_id: FromPath[str], data: Form) -> Response:
    from core.customers.accounts import revoke_key as revoke

    rt = runtime(request)
    with unit_of_work(rt) as conn:
        who = signed_in(conn, request, "account:write")
        posted(who, data)
        revoke(conn, rt, who.account.id, record_id(key_id), who.actor)
    return back("/manager/account")


@get("/manager/export", sync_to_thread=True, include_in_schema=False)
def export_file(request: Request) -> Response:
    """All my data, as the API's export (format ``univers-export``), to download."""
    from core.portability.export import export_account

    rt = runtime(request)
    with unit_of_work(rt) as conn:
        who = signed_in(conn, request, "account:read")
        document = export_account(conn, rt, who.account.id)
    name = f"univers-export-{who.account.handle}-{rt.clock.today().isoformat()}.json"
    return Response(json.dumps(document, default=str), media_type="application/json",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _cursor(request: Request) -> int:
    value = request.query_params.get("after")
    return record_id(value) if value else 0


ROUTES = [sign_in_page, sign_in, ask_for_link, link_page, sign_in_with_link, sign_out, choose_language, my_services,
          service_page, service_action, catalog_page, order_page, order, invoices_page, invoice_pdf, account_page, create_key,
          revoke_key, set_einvoice, export_file]
