"""The one error hierarchy. Domain code raises these; the API maps them to RFC 9457
problem+json in one handler, and the CLI prints them. Nothing below the API knows HTTP.

Every error has a stable ``code`` and a message template that is translated in the reader's
locale; parameters are filled in after translation.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from core.i18n import DEFAULT_LOCALE, N_, format_day, translate


class UniversError(Exception):
    status = 400
    code = "error"
    template = N_("The request could not be processed.")

    def __init__(self, template: str | None = None, *, code: str | None = None, errors: list[dict] | None = None, **params: Any):
        if template is not None:
            self.template = template
        if code is not None:
            self.code = code
        self.params = params
        self.errors = errors or []
        super().__init__(self.template.format(**params) if params else self.template)

    def message(self, locale: str | None) -> str:
        """The message in the reader's language; dates among the values are written their way."""
        text = translate(self.template, locale)
        values = {k: format_day(v, locale or DEFAULT_LOCALE) if isinstance(v, dt.date) else v for k, v in self.params.items()}
        return text.format(**values) if values else text


class InvalidInput(UniversError):
    status = 422
    code = "invalid_input"
    template = N_("The request is not valid.")


# An amount beyond core.money.MAX_MINOR (core.money.AmountOutOfRange), wherever it enters.
OUT_OF_RANGE = N_("The amount {amount} is out of range: at most {maximum} {currency}.")


class NotFound(UniversError):
    status = 404
    code = "not_found"
    template = N_("No such {what}.")


class Unauthenticated(UniversError):
    status = 401
    code = "unauthenticated"
    template = N_("A valid API key is required.")


class Forbidden(UniversError):
    status = 403
    code = "forbidden"
    template = N_("This operation is reserved for staff.")


class Conflict(UniversError):
    status = 409
    code = "conflict"
    template = N_("The request conflicts with the current state.")


class InvalidState(Conflict):
    code = "invalid_state"
    template = N_("This {what} is {state}; the operation is not possible.")


class LineBreak(InvalidInput):
    """A one-line text (a name, a subject, a title) holding a line break: it would forge lines
    where it is printed on one (a mail's header, a log line, an invoice's buyer)."""

    code = "line_break"
    template = N_("This text is one line: it may not hold a line break.")


LINE_BREAKS = ("\n", "\r", "\u2028", "\u2029", "\x85")


def has_line_break(text: str) -> bool:
    return any(brk in text for brk in LINE_BREAKS)


def one_line(text: str, field: str) -> str:
    """``text``, refused with :class:`LineBreak` (naming ``field``) if it holds a line break."""
    if has_line_break(text):
        raise LineBreak(errors=[{"field": field, "code": LineBreak.code, "message": LineBreak.template}])
    return text


class TooLarge(UniversError):
    status = 413
    code = "too_large"
    template = N_("The request is too large.")


class DatabaseUnavailable(UniversError):
    """The database did not answer (restarted, unreachable): nothing was changed; try again."""

    status = 503
    code = "database_unavailable"
    template = N_("The database is unavailable for a moment; nothing was changed. Please try again shortly.")


class GatewayUnavailable(UniversError):
    """The payment gateway did not answer in time: the payment was not recorded; try again."""

    status = 503
    code = "gateway_unavailable"
    template = N_("The payment service did not answer in time; nothing was recorded. Please try again shortly.")


class StorageFull(UniversError):
    """The database has no room left (its disk is full): nothing was written."""

    status = 507
    code = "storage_full"
    template = N_("The database is full; nothing was saved. An operator must free space before this can be done.")


def from_database(exc: BaseException) -> UniversError | None:
    """The domain error an infrastructure failure of the database stands for, if it is one:
    a full disk (SQLite's ``SQLITE_FULL``, PostgreSQL's SQLSTATE 53100), or a server that went
    away (a dropped or refused connection, an administrator shutdown: SQLSTATE 08xxx, 57P0x).
    None for anything else (a bug stays a bug)."""
    import sqlite3

    from sqlalchemy.exc import DBAPIError, OperationalError

    if not isinstance(exc, DBAPIError):
        return None
    orig = exc.orig
    if isinstance(orig, sqlite3.Error):
        return StorageFull() if getattr(orig, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL else None
    state = getattr(orig, "sqlstate", None) or ""
    if state == "53100":
        return StorageFull()
    refused = isinstance(exc, OperationalError) and not state  # the server not listening (restarting, down)
    if refused or exc.connection_invalidated or state.startswith("08") or state in ("57P01", "57P02", "57P03"):
        return DatabaseUnavailable()
    return None
