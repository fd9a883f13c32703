"""Security headers on every answer, and the API's documentation page served from the package.

Every answer gets ``X-Content-Type-Options: nosniff`` and ``Referrer-Policy: no-referrer``; an
HTML page gets a ``Content-Security-Policy`` (scripts and styles from this origin only, no
framing, no plugins) and ``X-Frame-Options: DENY`` unless it set its own (the console does,
core/console/render.py); an answer served over TLS gets ``Strict-Transport-Security``. TLS is
the request's scheme (``https``: uvicorn sets it from ``X-Forwarded-Proto`` when the proxy is
one it trusts, ``--forwarded-allow-ips``), or, with ``UNIVERS_TRUST_FORWARDED_PROTO=1``, the
``X-Forwarded-Proto: https`` of the proxy in front. Set that only behind a proxy that overwrites
the header, since a client could send it.

The documentation page (``/schema`` and ``/schema/swagger``) is Swagger UI from the
``swagger-ui-bundle-v2`` package (Apache-2.0), served at ``/schema/assets/`` with the page's own
start-up script: it loads nothing from another site and runs no inline script.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

from litestar import Litestar, Request
from litestar.openapi.plugins import OpenAPIRenderPlugin
from litestar.static_files import create_static_files_router
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from swagger_ui_bundle import swagger_ui_path

from core.config import Settings

ASSETS = "/schema/assets"
HERE = Path(__file__).parent / "docs"
HTML_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
               "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
HSTS = "max-age=31536000"
ALWAYS = ((b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"))
HTML = ((b"content-security-policy", HTML_POLICY.encode()), (b"x-frame-options", b"DENY"))


def over_tls(scope: Scope, trust_forwarded_proto: bool) -> bool:
    if scope.get("scheme") == "https":
        return True
    if trust_forwarded_proto:
        proto = next((v for k, v in scope.get("headers", []) if k == b"x-forwarded-proto"), b"")
        return proto.split(b",")[0].strip().lower() == b"https"
    return False


class SecurityHeaders:
    def __init__(self, app: ASGIApp, trust_forwarded_proto: bool = False):
        self.app = app
        self.trust_forwarded_proto = trust_forwarded_proto

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tls = over_tls(scope, self.trust_forwarded_proto)

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                content_type = next((v for k, v in headers if k.lower() == b"content-type"), b"")
                extra = [*ALWAYS, *(HTML if content_type.startswith(b"text/html") else ())]
                if tls:
                    extra.append((b"strict-transport-security", HSTS.encode()))
                message["headers"] = headers + [(k, v) for k, v in extra if k not in present]
            await send(message)

        await self.app(scope, receive, sending)


class SwaggerPage(OpenAPIRenderPlugin):
    """Swagger UI on the OpenAPI document, with every asset from this server."""

    def __init__(self) -> None:
        super().__init__(path=["/", "/swagger"], favicon=f"<link rel='icon' type='image/png' href='{ASSETS}/favicon-32x32.png'>",
                         style="")

    def render(self, request: Request, openapi_schema: dict[str, Any]) -> bytes:
        title = escape(openapi_schema["info"]["title"])
        spec = "/schema/openapi.json"
        return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">{self.favicon}
<link rel="stylesheet" href="{ASSETS}/swagger-ui.css"></head>
<body data-openapi="{spec}"><div id="swagger-ui"></div>
<script src="{ASSETS}/swagger-ui-bundle.js"></script>
<script src="{ASSETS}/swagger-ui-standalone-preset.js"></script>
<script src="{ASSETS}/univers-swagger.js"></script>
</body></html>""".encode()


def assets_router():
    """``/schema/assets/``: Swagger UI's files (the package's) and the page's start-up script."""
    return create_static_files_router(path=ASSETS, directories=[HERE, Path(str(swagger_ui_path))], include_in_schema=False,
                                      name="schema_assets")


def install(app: Litestar, settings: Settings) -> None:
    """Wrap the application's whole ASGI handler, so that every answer (a 404 included) has the headers."""
    app.asgi_handler = SecurityHeaders(app.asgi_handler, settings.trust_forwarded_proto)
