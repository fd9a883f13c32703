"""Contact changes in the Manager: the page of one change, where each of its two accounts (the
outgoing contact and the incoming one, each signed in as itself) accepts or refuses it with the
one-time code it was mailed. It is the API's operation (:func:`core.customers.contacts.answer`),
with the same checks: the code must be this account's own, another account's change is not
found, and a read-only key may look but not answer."""

from __future__ import annotations

from litestar import Request, Response, get, post
from litestar.params import FromPath

from core.billing.views import plan_name
from core.console.customer import Form
from core.console.render import locale_of, page
from core.console.web import back, posted, record_id, runtime, signed_in
from core.customers import contacts
from core.errors import InvalidInput
from core.i18n import N_
from core.uow import unit_of_work

ANSWERS = {"accept": True, "refuse": False}


@get("/manager/contact-changes/{change_id:str}", sync_to_thread=True, include_in_schema=False)
def change_page(request: Request, change_id: FromPath[str]) -> Response:
    """The change, who holds the role and who would take it, each side's answer, and the form
    (its code filled in when the page is opened from the mail's link)."""
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        who = signed_in(conn, request, "services:read")
        change = contacts.change_for(conn, rt, who.actor, record_id(change_id))
    locale = locale_of(request, who)
    return page(request, who, "contact_change.html", change=change, service_name=plan_name(rt.catalog, change["plan_code"], locale),
                status_text=contacts.STATUS_NAMES.get(change["status"], change["status"]),
                token=str(request.query_params.get("token") or "")[:100])


@post("/manager/contact-changes/{change_id:str}/answer", sync_to_thread=True, include_in_schema=False)
def answer(request: Request, change_id: FromPath[str], data: Form) -> Response:
    """Accept or refuse with this account's code; the second acceptance applies the change."""
    choice = str(data.get("answer") or "")
    if choice not in ANSWERS:
        raise InvalidInput(N_("Unknown action."), code="unknown_action")
    rt = runtime(request)
    number = record_id(change_id)
    with unit_of_work(rt) as conn:  # a change past its date expires now, whatever the answer below (as in the API)
        who = signed_in(conn, request, "services:write")
        posted(who, data)
        contacts.expire_changes(conn, rt, [number])
    with unit_of_work(rt) as conn:
        who = signed_in(conn, request, "services:write")
        contacts.answer(conn, rt, who.actor, number, str(data.get("token") or "").strip()[:100], ANSWERS[choice])
    return back(f"/manager/contact-changes/{number}")


ROUTES = [change_page, answer]
