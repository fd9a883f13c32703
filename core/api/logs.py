"""HTTP handlers for a service's infrastructure logs (domain: :mod:`core.infralogs.entries`).

``POST /v1/services/{id}/logs`` takes a batch of entries (and raw events of the universe's
infrastructure) from a staff key that may ``service.logs.send``; its body is parsed by msgspec
straight into typed entries. ``GET /v1/services/{id}/logs`` pages them newest first, and
``GET /v1/services/{id}/logs/tail`` follows them live (``text/event-stream``).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

import anyio
import msgspec
from litestar import Request, get, post
from litestar.openapi.spec import OpenAPIMediaType, Operation, RequestBody, Schema
from litestar.openapi.spec.enums import OpenAPIType
from litestar.params import QueryParameter, RawBody
from litestar.response import ServerSentEvent, ServerSentEventMessage

from core.api.common import PathId, caller, runtime
from core.context import SEVERITIES
from core.infralogs import entries as infra
from core.uow import unit_of_work

# --- schemas -------------------------------------------------------------------------------------

_ENTRY_SCHEMA = Schema(
    type=OpenAPIType.OBJECT, required=["id", "at", "severity", "source", "message"], additional_properties=False,
    properties={
        "id": Schema(type=OpenAPIType.STRING, pattern=r"^[A-Za-z0-9._:/@-]{1,64}$",
                     description="Your id for the entry, unique per service: an entry sent again is stored once"),
        "at": Schema(type=OpenAPIType.STRING, format="date-time", description="When (RFC 3339, with its offset)"),
        "severity": Schema(type=OpenAPIType.STRING, enum=list(SEVERITIES)),
        "source": Schema(type=OpenAPIType.STRING, pattern=r"^[a-z][a-z0-9_.-]{0,31}$",
                         description="What reported it: hardware, network, ddos, intervention..."),
        "message": Schema(type=OpenAPIType.STRING, min_length=1, max_length=infra.MAX_MESSAGE,
                          description="Printable text (tabs and line breaks allowed)"),
        "fields": Schema(type=OpenAPIType.OBJECT, description="Structured details (at most 4 KB as JSON)"),
    },
)
_EVENT_SCHEMA = Schema(
    type=OpenAPIType.OBJECT, required=["id", "event"], additional_properties=False,
    properties={
        "id": Schema(type=OpenAPIType.STRING, pattern=r"^[A-Za-z0-9._:/@-]{1,60}$"),
        "event": Schema(type=OpenAPIType.OBJECT, description="A raw event of the universe's infrastructure (a `type` and "
                                                             "its details), translated by its plugin"),
        "at": Schema(type=OpenAPIType.STRING, format="date-time"),
    },
)
BATCH_SCHEMA = Schema(
    type=OpenAPIType.OBJECT, additional_properties=False,
    properties={"entries": Schema(type=OpenAPIType.ARRAY, items=_ENTRY_SCHEMA, max_items=infra.MAX_BATCH),
                "events": Schema(type=OpenAPIType.ARRAY, items=_EVENT_SCHEMA, max_items=infra.MAX_BATCH)},
)


@dataclass
class LogBatchOperation(Operation):
    """The OpenAPI operation of ``POST /v1/services/{id}/logs``: its body is parsed by the handler."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(required=True, description="A batch of log entries and raw events",
                                        content={"application/json": OpenAPIMediaType(schema=BATCH_SCHEMA)})


class LogsIngested(msgspec.Struct):
    received: int  # entries, events translated
    accepted: int  # new entries stored
    duplicates: int  # already stored: stored once


class LogEntryRead(msgspec.Struct):
    id: str  # the sender's id
    at: dt.datetime
    severity: str
    source: str
    message: str
    fields: dict[str, Any]
    seq: int  # arrival number: the live tail's cursor


class LogPage(msgspec.Struct):
    entries: list[LogEntryRead]
    next_cursor: str | None  # give it as ``cursor`` for the next (older) page; None: the last page


Since = Annotated[dt.datetime | None, QueryParameter(description="Entries at or after this time (RFC 3339)")]
Until = Annotated[dt.datetime | None, QueryParameter(description="Entries before this time (RFC 3339)")]
MinSeverity = Annotated[str | None, QueryParameter(description="At least this severity: " + ", ".join(SEVERITIES))]
SourceParam = Annotated[str | None, QueryParameter(max_length=32, description="Only this source")]
Cursor = Annotated[str | None, QueryParameter(max_length=80, description="next_cursor of the page before")]
Limit = Annotated[int, QueryParameter(ge=1, le=infra.MAX_PAGE)]


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:  # a time without offset is read as UTC
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


# --- handlers ------------------------------------------------------------------------------------


@post("/v1/services/{service_id:int}/logs", sync_to_thread=True, tags=["logs"], opt={"scope": "services:write"},
      status_code=200, operation_class=LogBatchOperation)
def send_logs(request: Request, service_id: PathId, body: RawBody) -> LogsIngested:
    """The infrastructure sends a service's log entries, up to 10,000 per request, as entries or
    as raw events of its universe (translated by the universe's plugin). Idempotent on each
    entry's id. One invalid entry refuses the batch (422, with the entry's position)."""
    rt = runtime(request)
    with unit_of_work(rt) as conn:
        _, actor, _ = caller(conn, request)
        batch = infra.decode_batch(body)
        done = infra.ingest(conn, rt, actor, service_id, batch)
    return LogsIngested(done.received, done.accepted, done.duplicates)


@get("/v1/services/{service_id:int}/logs", sync_to_thread=True, tags=["logs"], opt={"scope": "services:read"})
def service_logs(request: Request, service_id: PathId, since: Since = None, until: Until = None,
                 severity: MinSeverity = None, source: SourceParam = None, cursor: Cursor = None,
                 limit: Limit = 50) -> LogPage:
    """The service's infrastructure logs, newest first, for its admin and tech contacts (partners
    running it included) and staff. Keyset pages: follow ``next_cursor``."""
    rt = runtime(request)
    filters = infra.Filters(_utc(since), _utc(until), severity, source)
    with unit_of_work(rt) as conn:
        _, actor, _ = caller(conn, request)
        rows, after = infra.page(conn, actor, service_id, filters, cursor=cursor, limit=limit)
    return LogPage([LogEntryRead(**r) for r in rows], after)


def _message(entry: dict) -> ServerSentEventMessage:
    data = json.dumps({**entry, "at": entry["at"].isoformat().replace("+00:00", "Z")}, ensure_ascii=False)
    return ServerSentEventMessage(data=data, event="log", id=str(entry["seq"]))


@get("/v1/services/{service_id:int}/logs/tail", tags=["logs"], opt={"scope": "services:read"})
async def tail_logs(request: Request, service_id: PathId, severity: MinSeverity = None, source: SourceParam = None,
                    after: Annotated[int | None, QueryParameter(ge=0, le=2**63 - 1, description=(
                        "Start after this arrival number (an entry's seq); default: the Last-Event-ID header, "
                        "else only what arrives from now"))] = None,
                    limit: Annotated[int, QueryParameter(ge=1, le=10_000, description="End after this many entries")] = 1000,
                    timeout: Annotated[float, QueryParameter(ge=0, le=3600, description="End after this many seconds")] = 300,
                    ) -> ServerSentEvent:
    """Follow the service's infrastructure logs live, as server-sent events (``event: log``, the
    entry as JSON in ``data``, its arrival number as ``id``, so that a client reconnecting with
    ``Last-Event-ID`` misses nothing). The stream ends after ``limit`` entries or ``timeout``
    seconds; reconnect to go on."""
    rt = runtime(request)
    filters = infra.Filters(None, None, severity, source)
    last_event = request.headers.get("last-event-id", "")
    start = after if after is not None else int(last_event) if last_event.isdigit() and len(last_event) < 19 else None

    def check() -> int:
        with unit_of_work(rt) as conn:
            _, actor, _ = caller(conn, request)
            filters.conditions()  # a bad filter answers 422 before the stream starts
            return infra.check_tail(conn, actor, service_id)

    newest = await anyio.to_thread.run_sync(check)
    tail = infra.Tail(service_id, filters, newest if start is None else start)
    poll = rt.settings.log_tail_poll_seconds

    def fetch(n: int) -> list[dict]:
        with rt.engine.connect() as conn:
            return tail.poll(conn, min(n, 100))

    async def stream() -> AsyncIterator[ServerSentEventMessage]:
        sent, ends = 0, time.monotonic() + timeout
        while sent < limit:
            batch = await anyio.to_thread.run_sync(fetch, limit - sent)
            for entry in batch:
                yield _message(entry)
                sent += 1
            if time.monotonic() >= ends:
                return
            if not batch:
                await anyio.sleep(min(poll, max(0.0, ends - time.monotonic())))

    return ServerSentEvent(stream())


ROUTES = [send_logs, service_logs, tail_logs]
