"""What every console page shares: the runtime, who is signed in, the CSRF check of a posted form,
and errors as pages (a refusal says why in the reader's language and changes nothing; no
session sends the browser to the sign-in page)."""

from __future__ import annotations

import logging
from urllib.parse import quote

from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.response import Redirect

from core.access import check, key_allows
from core.console import session
from core.console.render import locale_of, page
from core.console.session import Visitor
from core.errors import Forbidden, NotFound, UniversError
from core.i18n import N_, translate
from core.logs import note_actor
from core.runtime import Runtime

log = logging.getLogger("univers.console")
MAX_ID = 2**63 - 1


class SignInRequired(Exception):
    """No session, or one that has ended: the browser goes to the sign-in page."""


def runtime(request: Request) -> Runtime:
    return request.app.state.rt


def current(conn, request: Request) -> Visitor | None:
    who = session.visitor(conn, request.cookies.get(session.COOKIE), runtime(request).clock.now())
    if who is not None:
        note_actor(who.actor)  # for the access log line (core.api.requestlog)
    return who


def signed_in(conn, request: Request, scope: str, *, staff_action: str | None = None) -> Visitor:
    """The visitor, or off to the sign-in page. Its key must carry ``scope``, as in the API.
    ``staff_action``: a back-office page, for staff whose role allows it (a customer is refused,
    and is never shown the link)."""
    who = current(conn, request)
    if who is None:
        raise SignInRequired()
    if not key_allows(who.actor.scopes, scope):
        raise Forbidden(N_("This API key's scopes do not include {scope}."), code="scope_missing", scope=scope)
    if staff_action is not None:
        if not who.actor.is_staff:
            raise Forbidden()
        check({who.actor.staff_role}, staff_action, what="back office")
    return who


def posted(who: Visitor, data: dict) -> dict:
    """A form posted by this session: its CSRF token must be the session's."""
    if not session.same_token(data.get("csrf"), who.csrf):
        raise Forbidden(N_("This form has expired or came from elsewhere; load the page again."), code="csrf_mismatch")
    return data


def record_id(value) -> int:
    """An id from a form or a path: a positive 64-bit integer, else a 404 (nothing is at that address)."""
    try:
        number = int(str(value))
    except ValueError:
        raise NotFound(what="page") from None
    if not 1 <= number <= MAX_ID:
        raise NotFound(what="page")
    return number


def back(url: str) -> Redirect:
    return Redirect(url, status_code=303)


def _visitor(request: Request) -> Visitor | None:
    """Who sees an error page (its header, its language), read again: the failed step rolled back."""
    try:
        with runtime(request).engine.connect() as conn:
            return current(conn, request)
    except Exception:  # noqa: BLE001 - an error page must render even when the database does not answer
        return None


def on_error(request: Request, exc: UniversError) -> Response:
    who = _visitor(request)
    message = exc.message(locale_of(request, who))
    return page(request, who, "error.html", status=exc.status, message=message, code=exc.code)


def on_sign_in(request: Request, exc: SignInRequired) -> Response:
    """To the sign-in page, and back here after it (the query too: a mailed link's code)."""
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return back(f"/manager/sign-in?next={quote(here, safe='')}")


HTTP_TEXTS = {404: N_("There is nothing at this address."), 405: N_("This method is not allowed at this address."),
              413: N_("The request is too large.")}


def on_http(request: Request, exc: HTTPException) -> Response:
    who = _visitor(request)
    status = exc.status_code if 400 <= exc.status_code < 500 else 400
    text = HTTP_TEXTS.get(status, UniversError.template)
    return page(request, who, "error.html", status=status, message=translate(text, locale_of(request, who)),
                code=f"http_{status}")


def on_crash(request: Request, exc: Exception) -> Response:
    log.exception("console page failed: %s %s", request.method, request.url.path)
    locale = locale_of(request, None)
    return page(request, None, "error.html", status=500, message=translate(UniversError.template, locale), code="internal")


HANDLERS = {UniversError: on_error, SignInRequired: on_sign_in, HTTPException: on_http, Exception: on_crash}
