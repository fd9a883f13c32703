"""What every request to the JSON API (``/v1``) must be before a handler sees it, checked in one
place (:class:`BodyGuard`, a middleware) so that no route can forget it:

* a route that needs an API key gets one, or answers **401** before anything else is said
  about the request (a wrong key is the handler's to refuse);
* a body is JSON: ``Content-Type: application/json`` (or a ``+json`` type), else **415**. A
  browser sends ``text/plain``, form and multipart bodies cross-site without asking first (no
  CORS preflight); refusing them means no web page can act with a visitor's browser. Routes
  that take another type of body name it in their ``opt`` (``body_media_types``) and check it
  themselves (the legacy import takes CSV; its text is checked for control characters too).
* a body is at most the route's size limit (Litestar's ``request_max_body_size``), else **413**.
* a body is nested at most :data:`MAX_DEPTH` levels, else **400** ``nesting_too_deep``: it is
  measured on the raw bytes, before any decoder recurses into it (a body nested 100,000 levels
  deep exhausted the decoder's recursion).
* no text holds a control character (the C0 controls but tab, line feed and carriage return;
  DEL; the C1 controls), in the body, the path or the query, else **422**
  ``control_character`` naming the field: PostgreSQL refuses NUL in text, and the others
  have no place in names, addresses or identifiers (they forge lines in mails and logs).

Nothing is written by a refused request: the guard runs before the handler.
"""

from __future__ import annotations

import re
from itertools import accumulate
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_to_bytes

import msgspec
from litestar.datastructures import Headers
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware

from core.api.common import key_in
from core.errors import InvalidInput, TooLarge, Unauthenticated, UniversError
from core.i18n import N_

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Message, Receive, Scope, Send

MAX_DEPTH = 32  # the API's deepest body (an order's options) is 4 levels deep
JSON_TYPES = re.compile(r"^application/(?:[\w.+-]+\+)?json$")

_LEVELS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'[]{}"')  # deleted from the text: all but quotes and brackets
# Bytes a JSON text may hold raw: printable ASCII, tab and line breaks, and UTF-8's multi-byte
# sequences (their C1 controls, \xc2\x80-\xc2\x9f, are looked for apart).
_ALLOWED_RAW = bytes(range(0x20, 0x7F)) + bytes(range(0x80, 0x100)) + b"\t\n\r"
_C1 = re.compile(rb"\xc2[\x80-\x9f]")
# An escaped control character: a run of backslashes then b, f or \u00XX for XX a control. It is
# one when the run is odd ("\\u0000" is a backslash, then the text u0000).
_ESCAPED_CONTROL = re.compile(rb"(\\+)(?:[bf]|u00(?:0[0-8bBcCeEfF]|1[0-9a-fA-F]|7[fF]|[89][0-9a-fA-F]))")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|\xc2[\x80-\x9f]")


class UnsupportedMediaType(UniversError):
    status = 415
    code = "unsupported_media_type"
    template = N_("Send the request body as JSON (Content-Type: application/json).")


class NestingTooDeep(UniversError):
    status = 400
    code = "nesting_too_deep"
    template = N_("The request body is nested more than {limit} levels deep.")


class ControlCharacter(InvalidInput):
    code = "control_character"
    template = N_("Text may not contain control characters (such as NUL); only tab and line breaks are allowed.")


def nesting_exceeds(body: bytes, limit: int = MAX_DEPTH) -> bool:
    """Whether the JSON text opens arrays and objects more than ``limit`` deep, counted on its
    brackets outside strings, in linear time and in C (no decoder recursion, no Python loop over
    the bytes): 10 MB of brackets take well under a second.

    Escaped backslashes, then escaped quotes, are removed first (a run of backslashes starts
    where an escape does, so pairs go left to right as the decoder reads them); what remains of
    the text but its quotes and brackets is deleted; every other piece between quotes is a
    string. Up to the text's first syntax error, where the decoder stops, this reads the text
    as the decoder does."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    if b"\\" in body:
        body = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    skeleton = body.translate(None, _NOT_STRUCTURE)
    if b'"' in skeleton:
        skeleton = b"".join(skeleton.split(b'"')[::2])
    levels = skeleton.translate(_LEVELS)  # [ { -> +1, ] } -> -1
    return max(accumulate(memoryview(levels).cast("b")), default=0) > limit


def _control_in_json(body: bytes) -> bool:
    """Whether the JSON text holds a control character, raw or escaped (cheap C scans first:
    most bodies hold neither a control byte nor a backslash)."""
    if body.translate(None, _ALLOWED_RAW) or _C1.search(body):
        return True
    if b"\\" not in body:
        return False
    return any(len(m.group(1)) % 2 for m in _ESCAPED_CONTROL.finditer(body))


def control_character_at(value: Any, path: str = "") -> str | None:
    """The path (``items[0].options.domain``) of the first text holding a control character, keys included."""
    if isinstance(value, str):
        return path or "body" if _CONTROL.search(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if _CONTROL.search(key):
                return where
            found = control_character_at(item, where)
            if found:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = control_character_at(item, f"{path}[{i}]")
            if found:
                return found
    return None


def check_json_body(body: bytes) -> None:
    """Raise the problem of a JSON body too deep or holding a control character; else nothing
    (a malformed body is the decoder's to refuse)."""
    if nesting_exceeds(body):
        raise NestingTooDeep(limit=MAX_DEPTH)
    if _control_in_json(body):
        try:
            field = control_character_at(msgspec.json.decode(body))
        except msgspec.DecodeError:  # a raw control character: not JSON at all
            field = "body"
        raise ControlCharacter(errors=[{"field": field or "body", "code": "control_character",
                                        "message": ControlCharacter.template}])


def check_address(scope: Scope) -> None:
    """Refuse a control character in the path or in the query (percent-encoded or not)."""
    where = ("path" if _CONTROL.search(scope["path"])
             else "query" if _CONTROL_BYTES.search(unquote_to_bytes(scope.get("query_string", b""))) else None)
    if where:
        raise ControlCharacter(errors=[{"field": where, "code": "control_character", "message": ControlCharacter.template}])


def _media_type(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"content-type":
            return value.decode("latin-1").split(";")[0].strip().lower()
    return ""


def _has_body(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return value.strip() not in (b"0", b"")
        if name == b"transfer-encoding":
            return True
    return False


class BodyGuard(ASGIMiddleware):
    """The checks above, for every route of the JSON API (not the console's HTML forms)."""

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        if not scope["path"].startswith("/v1/"):
            await next_app(scope, receive, send)
            return
        check_address(scope)
        handler = scope["route_handler"]
        if "scope" in handler.opt and not key_in(Headers.from_scope(scope)):  # 401 before what the body is
            # (whether the key is valid is the handler's to say)
            raise Unauthenticated()
        if not _has_body(scope):
            await next_app(scope, receive, send)
            return
        json_body = not handler.opt.get("body_media_types")  # else the route checks the type itself
        if json_body and not JSON_TYPES.match(_media_type(scope)):
            raise UnsupportedMediaType()
        limit = handler.resolve_request_max_body_size()
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client left
                await next_app(scope, receive, send)
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if limit is not None and size > limit:
                raise TooLarge()
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if json_body:
            check_json_body(body)
        elif _CONTROL_BYTES.search(body):  # a file (CSV): its text, raw
            raise ControlCharacter(errors=[{"field": "body", "code": "control_character", "message": ControlCharacter.template}])
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await next_app(scope, replay, send)
