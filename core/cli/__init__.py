"""The ``univers`` command: serve, migrate, renew, outbox, plugins, catalog, i18n, reports, demo, bench.

Thin like the API: it parses arguments and calls the same domain operations. One module per
command group, each adding its sub-commands to the parser: ``jobs`` (the operator's: serve,
migrate, worker, outbox, renew, usage, demo, bench), ``catalog`` (catalog, i18n, plugins),
``backoffice`` (staff, service, invoices, campaign), ``reports`` (report, export journal|fec),
``portability`` (a customer's data out and in, the legacy import), ``support`` (the staff
queues, the SLA job) and ``fiscal`` (the Portuguese and Spanish fiscal chains).
"""

from __future__ import annotations

import argparse

from core.cli import backoffice, catalog, fiscal, jobs, portability, reports, support
from core.cli.common import console

GROUPS = (jobs, catalog, backoffice, reports, portability, support, fiscal)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="univers", description="Sell, bill and renew cloud and hosting services.")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from core.config import Settings
    from core.logs import configure

    try:
        configure(Settings.from_env().log_format)  # UNIVERS_LOG_FORMAT: text or json lines
    except ValueError as exc:
        console.print(f"[bold red]UNIVERS_LOG_FORMAT[/]: {exc}")
        return 2
    args = build_parser().parse_args(argv)
    from sqlalchemy.exc import DBAPIError

    from core.errors import UniversError, from_database

    try:
        return args.func(args) or 0
    except UniversError as exc:
        console.print(f"[bold red]{exc.code}[/]: {exc.message('en')}")
        return 1
    except DBAPIError as exc:  # the database full or gone away: its code and what to do, not a traceback
        known = from_database(exc)
        if known is None:
            raise
        console.print(f"[bold red]{known.code}[/]: {known.message('en')} ({exc.orig})")
        return 1
