"""Errors as RFC 9457 problem+json: a stable ``code`` and a message in the caller's language
(``Accept-Language``, else the account's language). One handler per kind of error, all here."""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from core.api.common import (
    api_key,
    locale_of,
)
from core.errors import DatabaseUnavailable, UniversError, from_database
from core.i18n import N_, translate
from core.logs import current_request_id

log = logging.getLogger("univers.api")


PROBLEM = "application/problem+json"


def _problem(request: Request, status: int, code: str, title: str, detail: str, errors: list | None = None) -> Response:
    body: dict[str, Any] = {"type": f"https://univers.example/problems/{code}", "title": title, "status": status,
                            "code": code, "detail": detail, "instance": request.url.path}
    if errors:
        body["errors"] = errors
    request_id = current_request_id()
    if request_id is not None:  # the id of this request (core.api.requestlog): its log lines and audit events name it too
        body["request_id"] = request_id
    return Response(content=body, status_code=status, media_type=PROBLEM)


def on_domain_error(request: Request, exc: UniversError) -> Response:
    locale = locale_of(request)
    errors = [_localised(e, locale) for e in exc.errors]
    return _problem(request, exc.status, exc.code, exc.code.replace("_", " "), exc.message(locale), errors)


def _localised(error: dict, locale: str) -> dict:
    text = error.get("message")
    return {**error, "message": translate(text, locale).format(**error.get("params", {}))} if text else error


def on_validation_error(request: Request, exc: ValidationException) -> Response:
    locale = locale_of(request)
    extra = exc.extra if isinstance(exc.extra, list) else []
    return _problem(request, 400, "invalid_request", "invalid request",
                    translate(N_("The request body or parameters are malformed."), locale),
                    [{"field": e.get("key"), "code": "malformed", "message": e.get("message")} for e in extra if isinstance(e, dict)])


HTTP_ERRORS = {
    400: ("invalid_request", N_("The request body or parameters are malformed.")),  # e.g. a body that is not JSON
    401: ("unauthenticated", N_("An API key is required (Authorization: Bearer <key>).")),
    404: ("not_found", N_("There is nothing at this address.")),
    405: ("method_not_allowed", N_("This method is not allowed at this address.")),
    413: ("too_large", N_("The request is too large.")),
    415: ("unsupported_media_type", N_("Send the request body as JSON.")),
    429: ("too_many_requests", N_("Too many requests; try again in a moment.")),
}


def on_http_error(request: Request, exc: HTTPException) -> Response:
    """Errors raised by Litestar itself (routing, media types, the rate limit), in the caller's
    language too. A 429 says when to come back (``Retry-After``, from the limiter's reset)."""
    code, text = HTTP_ERRORS.get(exc.status_code, ("http_error", UniversError.template))
    response = _problem(request, exc.status_code, code, code.replace("_", " "), translate(text, locale_of(request)))
    if exc.headers:
        response.headers.update(exc.headers)
    if exc.status_code == 429:
        response.headers["Retry-After"] = str(max(1, int((exc.headers or {}).get("RateLimit-Reset", 1))))
    return response


def rate_limit_identifier(request: Request) -> str:
    """Requests are counted per API key (its hash: the secret is not kept, even in memory), or
    per client address without one."""
    from litestar.middleware.rate_limit import get_remote_address

    from core.customers.accounts import hash_key

    key = api_key(request)
    return f"key:{hash_key(key)}" if key else f"ip:{get_remote_address(request)}"


def on_crash(request: Request, exc: Exception) -> Response:
    known = from_database(exc)  # the database full or gone away: a clear answer, and nothing was changed
    if known is not None:
        log.error("%s on %s: %r", known.code, request.url.path, exc)
        response = on_domain_error(request, known)
        if isinstance(known, DatabaseUnavailable):
            response.headers["Retry-After"] = "5"
        return response
    log.exception("unhandled error on %s", request.url.path)
    return _problem(request, 500, "internal_error", "internal error",
                    translate(N_("Something went wrong on our side; nothing was changed."), locale_of(request)))
