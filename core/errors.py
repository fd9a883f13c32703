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


class TooLarge(UniversError):
    status = 413
    code = "too_large"
    template = N_("The request is too large.")
