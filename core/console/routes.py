"""The console's routes in the application: the pages (their errors as pages, not problem+json)
and its static files (the style sheet and the vendored htmx)."""

from __future__ import annotations

from pathlib import Path

from litestar import Router
from litestar.static_files import create_static_files_router

from core.console import contacts, customer, staff, staff_reports, staff_support, tickets, web


def routers() -> list:
    return [
        Router(path="/", route_handlers=[*customer.ROUTES, *contacts.ROUTES, *tickets.ROUTES, *staff.ROUTES, *staff_reports.ROUTES,
                                                   *staff_support.ROUTES], exception_handlers=web.HANDLERS,
               include_in_schema=False),
        create_static_files_router(path="/console-static", directories=[Path(__file__).parent / "static"],
                                   include_in_schema=False, cache_control=None),
    ]
