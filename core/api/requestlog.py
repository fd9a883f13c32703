"""Each request's id and its access log line.

A request keeps the ``X-Request-Id`` it came with when that is a sane token (1 to 64 letters,
digits, ``.``, ``_``, ``:`` or ``-``, starting with a letter or digit: a proxy's or a client's id),
else it gets a new one (32 hex digits). The id comes back in the ``X-Request-Id`` header of the
answer, in the ``request_id`` member of every problem+json (:mod:`core.api.problems`), in the
audit events written while it is served (:func:`core.logs.current_request_id`) and in every log
line written meanwhile (:class:`core.logs.JsonFormatter`).

When the answer is sent, one line goes to the logger ``univers.access``: method, route template,
status, duration in milliseconds, and the actor (an account's handle or a staff member's handle
and role, never a key). The route is the template (``/v1/services/{service_id}``), never the path
sent: a path may carry a secret (the console's sign-in links do). Health probes are logged at
DEBUG, so that a load balancer polling them does not fill the logs.

It wraps the application's whole ASGI handler (:func:`install`), outside Litestar's routing, so
that a 404 for an unknown address or a 405 gets an id like any other answer.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from litestar import Litestar
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from core.logs import RequestInfo, serving

log = logging.getLogger("univers.access")
HEADER = "x-request-id"
SANE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
QUIET = ("/health/",)


def request_id_from(value: str | None) -> str:
    """The incoming id when it is sane, else a new one."""
    if value and SANE.fullmatch(value):
        return value
    return uuid.uuid4().hex


class RequestLog:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = next((v.decode("latin-1") for k, v in scope["headers"] if k == HEADER.encode()), None)
        info = RequestInfo(request_id_from(incoming), method=scope.get("method", ""))
        started, status = time.perf_counter(), [500]

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != HEADER.encode()]
                message["headers"] = [*headers, (HEADER.encode(), info.request_id.encode())]
            await send(message)

        with serving(info):
            try:
                await self.app(scope, receive, sending)
            finally:
                info.route = scope.get("path_template") or ""
                ms = round((time.perf_counter() - started) * 1000, 1)
                level = logging.DEBUG if scope.get("path", "").startswith(QUIET) and status[0] < 500 else logging.INFO
                log.log(level, "%s %s %s %.1f ms %s", info.method, info.route or "-", status[0], ms, info.actor or "-",
                        extra={"method": info.method, "status": status[0], "duration_ms": ms, "role": info.role})


def install(app: Litestar) -> None:
    """Wrap the application's ASGI handler (routing and its exception handling included), as
    Litestar itself does for CORS."""
    app.asgi_handler = RequestLog(app.asgi_handler)
