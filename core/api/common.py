"""What every route handler shares: the runtime, the caller's language, and who the caller is.

Each authenticated route names the API key scope it needs in its ``opt`` (``opt={"scope":
"services:write"}``); :func:`caller` checks it, for customers and staff alike. Staff routes name
the back-office action of :mod:`core.access` they perform.
"""

from __future__ import annotations

from typing import Annotated

from litestar import Request
from litestar.params import PathParameter, QueryParameter

from core.audit import Actor
from core.customers import accounts as customers
from core.i18n import negotiate
from core.logs import note_actor
from core.models import Account
from core.runtime import Runtime

MAX_ID = 2**63 - 1  # ids are 64-bit integers in both engines: larger ones are "malformed", never a crash
PathId = Annotated[int, PathParameter(ge=1, le=MAX_ID)]
After = Annotated[int, QueryParameter(ge=0, le=MAX_ID, description="Keyset cursor: the last id of the previous page")]
OptionalId = Annotated[int | None, QueryParameter(ge=1, le=MAX_ID)]


def runtime(request: Request) -> Runtime:
    return request.app.state.rt


def locale_of(request: Request, account: Account | None = None) -> str:
    header = request.headers.get("accept-language")
    if header:
        return negotiate(header)
    return account.language if account is not None else "en"


def api_key(request: Request) -> str | None:
    return key_in(request.headers)


def key_in(headers) -> str | None:
    """The API key a request's headers carry (``Authorization: Bearer …`` or ``X-API-Key``), if any."""
    auth = headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return headers.get("x-api-key")


def caller(conn, request: Request) -> tuple[Account, Actor, str]:
    """The authenticated account, as an actor, and its language; the key must carry the route's scope."""
    account, actor = customers.acting_with_key(conn, api_key(request), runtime(request).clock.now(),
                                               request.route_handler.opt.get("scope"))
    note_actor(actor)
    return account, actor, locale_of(request, account)


def staff(conn, request: Request, action: str) -> tuple[Account, Actor, str]:
    """A staff caller whose back-office role allows ``action`` (core.access)."""
    account, actor = customers.acting_with_key(conn, api_key(request), runtime(request).clock.now(),
                                               request.route_handler.opt.get("scope"), staff_action=action)
    note_actor(actor)
    return account, actor, locale_of(request, account)
