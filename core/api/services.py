"""HTTP handlers for services: read, list, renewal mode, stop, terminate, events, and staff's restore."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from litestar import Request, delete, get, post, put
from litestar.params import JSONBody, QueryParameter

from core.api import schemas as s
from core.api.status import incident_links
from core.api.common import (
    After,
    PathId,
    caller,
    runtime,
)
from core.lifecycle import services as service_ops
from core.status.board import open_for_services
from core.uow import unit_of_work

# --- schemas -------------------------------------------------------------------------------------


class RenewalModeUpdate(msgspec.Struct, forbid_unknown_fields=True):
    mode: Literal["automatic", "manual", "terminate"]


def reads(conn, rt, rows: list[dict], locale: str) -> list[s.ServiceRead]:
    """Services as read, each with the open incidents of the work board touching it: one query
    for the whole page (core/status/board.py)."""
    incidents = open_for_services(conn, rows)
    return [s.service_read(rt.catalog, r, locale, incident_links(incidents.get(r["id"], []), locale)) for r in rows]


def read(conn, rt, row: dict, locale: str) -> s.ServiceRead:
    return reads(conn, rt, [row], locale)[0]


# --- handlers ------------------------------------------------------------------------------------


@get("/v1/services", sync_to_thread=True, opt={"scope": "services:read"}, tags=["services"])
def list_services(request: Request, after: After = 0, limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
                  state_filter: Annotated[str | None, QueryParameter(name="state")] = None) -> s.Page:
    """Services the caller owns or is a contact of (all for staff), by id, keyset-paginated."""
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        account, actor, locale = caller(conn, request)
        rows = service_ops.list_services(conn, actor, after, limit, state_filter)
        items = reads(conn, rt, rows, locale)
    return s.Page(items, rows[-1]["id"] if len(rows) == limit else None)


@get("/v1/services/{service_id:int}", sync_to_thread=True, opt={"scope": "services:read"}, tags=["services"])
def get_service(request: Request, service_id: PathId) -> s.ServiceRead:
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        _, actor, locale = caller(conn, request)
        return read(conn, rt, service_ops.get_service(conn, actor, service_id), locale)


def _mode(request: Request, service_id: PathId, mode: str) -> s.ServiceRead:
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        _, actor, locale = caller(conn, request)
        return read(conn, rt, service_ops.set_renewal_mode(conn, rt, actor, service_id, mode), locale)


@put("/v1/services/{service_id:int}/renewal-mode", sync_to_thread=True, opt={"scope": "services:write"}, tags=["services"])
def set_renewal_mode(request: Request, service_id: PathId, data: JSONBody[RenewalModeUpdate]) -> s.ServiceRead:
    return _mode(request, service_id, data.mode)


@post("/v1/services/{service_id:int}/stop", sync_to_thread=True, opt={"scope": "services:write"}, tags=["services"], status_code=200)
def stop_service(request: Request, service_id: PathId) -> s.ServiceRead:
    """One click to stop: the service ends at its expiry date, with no further invoice."""
    return _mode(request, service_id, "terminate")


@delete("/v1/services/{service_id:int}/stop", sync_to_thread=True, opt={"scope": "services:write"}, tags=["services"], status_code=200)
def undo_stop(request: Request, service_id: PathId) -> s.ServiceRead:
    """Undo a stop (until the expiry date): the service renews automatically again."""
    return _mode(request, service_id, "automatic")


@post("/v1/services/{service_id:int}/terminate", sync_to_thread=True, opt={"scope": "services:write"}, tags=["services"], status_code=200)
def terminate_service(request: Request, service_id: PathId) -> s.ServiceRead:
    """Terminate now (no refund of the current period)."""
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        _, actor, locale = caller(conn, request)
        return read(conn, rt, service_ops.terminate_now(conn, rt, actor, service_id), locale)


@get("/v1/services/{service_id:int}/events", sync_to_thread=True, opt={"scope": "services:read"}, tags=["services"])
def service_events(request: Request, service_id: PathId, after: After = 0) -> list[s.AuditEventRead]:
    """The service's audit log: who did what, when, before and after."""
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        _, actor, _ = caller(conn, request)
        rows = service_ops.service_events(conn, actor, service_id, after)
    return [s.audit_event_read(r) for r in rows]


@post("/v1/staff/services/{service_id:int}/restore", sync_to_thread=True, opt={"scope": "services:write"}, tags=["staff"], status_code=200)
def restore_service(request: Request, service_id: PathId) -> s.ServiceRead:
    """Staff: bring a terminated service back from its kept data, until the retention period
    ends. It comes back active if its paid period still runs, otherwise suspended (paying its
    invoice then reactivates it), and renewing automatically."""
    from core.renewal.dunning import restore

    rt = runtime(request)
    with unit_of_work(rt) as conn:
        _, actor, locale = caller(conn, request)
        restore(conn, rt, service_id, actor)
        return read(conn, rt, service_ops.get_service(conn, actor, service_id), locale)
