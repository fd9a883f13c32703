"""The HTTP API: thin handlers over the domain operations, OpenAPI at ``/schema``.

The handlers live in one module per domain (``core/api/<domain>.py``); this one assembles them.
Errors are RFC 9457 problem+json with a stable ``code`` and a message in the caller's language
(``Accept-Language``, else the account's language), mapped in one place: :mod:`core.api.problems`.
"""

from __future__ import annotations

import logging

from litestar import Litestar, Request, get
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from sqlalchemy import select

from core.api import (
    bodies,
    catalog,
    commitments,
    contacts,
    contracts,
    customers,
    invoices,
    legacy,
    logs,
    metrics,
    openapi,
    orders,
    problems,
    reports,
    requestlog,
    reversibility,
    roles,
    security,
    services,
    status,
    support,
    usage,
)
from core.api.common import runtime
from core.api.health import ROUTES as HEALTH_ROUTES  # /health/live, /health/ready (``health`` below is the old /health)
from core.errors import UniversError
from core.runtime import Runtime

log = logging.getLogger("univers.api")


@get("/health", sync_to_thread=True, include_in_schema=False)
def health(request: Request) -> dict:
    with runtime(request).engine.connect() as conn:
        conn.execute(select(1))
    return {"status": "ok"}


ROUTES = [
    health,
    catalog.list_plugins, catalog.catalog, catalog.list_storefronts, catalog.catalog_problems,
    customers.confirm_vat_number, invoices.create_credit_note, invoices.transmit_national, customers.create_customer, customers.me,
    customers.set_payment_method, customers.set_einvoice, invoices.top_up, orders.create_order, orders.get_order,
    services.list_services, services.get_service, services.set_renewal_mode, services.stop_service, services.undo_stop,
    services.terminate_service, services.service_events, services.restore_service,
    invoices.list_invoices, reports.overdue_invoices, reports.revenue_report, reports.forecast_report,
    reports.forecast_report_csv, reports.forecast_report_svg, reports.journal_export, reports.fec_export,
    invoices.get_invoice, invoices.invoice_document, invoices.pay_invoice, invoices.resolve_test_payment,
    reports.renewal_run,
    *roles.ROUTES, *contacts.ROUTES, *usage.ROUTES,
    *reversibility.ROUTES, *commitments.ROUTES, *contracts.ROUTES, *legacy.ROUTES,
    *support.ROUTES, *metrics.ROUTES, *status.ROUTES, *logs.ROUTES,
]


def create_app(rt: Runtime, *, scheduler: bool = False) -> Litestar:
    """The Litestar application over a runtime, with the web console (:mod:`core.console`) beside
    the API. ``scheduler``: run the jobs in this process."""
    from core.console.routes import routers

    on_startup, on_shutdown = [], []
    if scheduler:
        from core.scheduler import start_scheduler

        holder: dict = {}
        on_startup.append(lambda: holder.setdefault("s", start_scheduler(rt)))
        on_shutdown.append(lambda: holder["s"].shutdown(wait=False) if "s" in holder else None)
    on_shutdown.append(metrics.worker_stopped)
    middleware = [metrics.middleware()]  # outermost: it counts every answer, a 429 included
    if rt.settings.rate_limit:
        from litestar.middleware.rate_limit import RateLimitConfig

        middleware.append(RateLimitConfig(rate_limit=("minute", rt.settings.rate_limit), identifier_for_request=problems.rate_limit_identifier,
                                          exclude=["/health", "/schema"]).middleware)
    openapi.document(ROUTES)  # the problems each operation can answer, in the OpenAPI document
    middleware.append(bodies.BodyGuard())  # after the rate limit: JSON only, size, depth, control characters
    app = Litestar(
        route_handlers=[*ROUTES, *HEALTH_ROUTES, *routers(), security.assets_router()],
        middleware=middleware,
        exception_handlers={UniversError: problems.on_domain_error, ValidationException: problems.on_validation_error,
                            HTTPException: problems.on_http_error, Exception: problems.on_crash},
        openapi_config=OpenAPIConfig(
            title="Univers API", version="1.0.0",
            description="Sell, bill and renew the services of a cloud and hosting provider.",
            components=Components(security_schemes={"apiKey": SecurityScheme(type="http", scheme="bearer")},
                                  responses=openapi.COMPONENTS),
            security=[{"apiKey": []}],
            render_plugins=[security.SwaggerPage()],  # Swagger UI from the package, no CDN (core.api.security)
        ),
        plugins=[openapi.StrictStructs()],
        on_startup=on_startup,
        on_shutdown=on_shutdown,
        debug=False,
        logging_config=None,  # the process's logging is core.logs' (UNIVERS_LOG_FORMAT): Litestar would replace the root handler
    )
    app.state.rt = rt
    security.install(app, rt.settings)  # headers on every answer, a 404 included
    requestlog.install(app)  # outermost: the request id and the access line of every answer
    return app
