"""Logs as JSON lines, and what the request being served adds to them.

Every log record becomes one JSON object on one line (``UNIVERS_LOG_FORMAT=json``; ``text``, the
default, keeps the readable format): its time, level, logger and message, and, when it is written
while a request is served, that request's id, route template and actor. The HTTP edge
(:mod:`core.api.requests`) opens a :class:`RequestInfo` per request with :func:`serving`; the
handlers, which run in worker threads, see it because a thread started for a request runs in a
copy of the request's context (anyio), and they fill the actor in through :func:`note_actor`.

The request id reaches the audit trail the same way (:func:`current_request_id`, read by
:func:`core.audit.record`): audit events are written deep in the domain, often by actors built
there (a sign-up, a sign-in), so the id travels with the request's context rather than through
every call; outside a request (a scheduler job, the CLI) it is None.

No secret is ever logged here: the actor is an account's handle or a staff role, never a key.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

FORMATS = ("text", "json")
TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@dataclass
class RequestInfo:
    """The request being served: filled as it goes (the actor once the caller is known)."""

    request_id: str
    method: str = ""
    route: str = ""  # the route's template (/v1/services/{service_id}), never the path sent
    actor: str | None = None  # account:<handle>, staff:<handle> (its role in ``role``)
    role: str | None = None


_current: contextvars.ContextVar[RequestInfo | None] = contextvars.ContextVar("univers_request", default=None)


@contextmanager
def serving(info: RequestInfo) -> Iterator[RequestInfo]:
    token = _current.set(info)
    try:
        yield info
    finally:
        _current.reset(token)


def current() -> RequestInfo | None:
    return _current.get()


def current_request_id() -> str | None:
    info = _current.get()
    return info.request_id if info is not None else None


def note_actor(actor) -> None:
    """The request's caller is known (an :class:`core.audit.Actor`): its label and role, for the logs."""
    info = _current.get()
    if info is not None:
        info.actor, info.role = actor.label, actor.staff_role


class TextFormatter(logging.Formatter):
    """Readable lines; one written while a request is served ends with its id (``[req …]``)."""

    def __init__(self) -> None:
        super().__init__(TEXT)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        info = _current.get()
        return f"{text} [req {info.request_id}]" if info is not None else text


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``ts``, ``level``, ``logger``, ``message``, the request's
    fields while one is served, the ``extra`` fields given to the call, and the traceback."""

    RESERVED = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName", "color_message"}

    def format(self, record: logging.LogRecord) -> str:
        out: dict = {"ts": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(timespec="milliseconds"),
                     "level": record.levelname.lower(), "logger": record.name, "message": record.getMessage()}
        info = _current.get()
        if info is not None:
            out.update({"request_id": info.request_id, "route": info.route or None, "actor": info.actor})
        for key, value in vars(record).items():
            if key not in self.RESERVED and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


def configure(fmt: str = "text", level: int = logging.INFO, *, force: bool = False) -> None:
    """The root logger's one handler, on standard error, in this format (``text`` or ``json``);
    uvicorn's loggers write through it too, so a JSON deployment has JSON lines only. Like
    ``logging.basicConfig``, it leaves a root logger that has handlers already (a test
    runner's) alone, unless ``force``."""
    if fmt not in FORMATS:
        raise ValueError(f"log format {fmt!r}: expected one of {', '.join(FORMATS)}")
    root = logging.getLogger()
    if force or not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
        for old in list(root.handlers):
            root.removeHandler(old)
        root.addHandler(handler)
        root.setLevel(level)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    logging.getLogger("uvicorn.access").disabled = True  # the API writes its own access line (core.api.requests)
