"""What the command groups share: the console, the runtime, the staff check, the catalog without a
database, and reading a date."""

from __future__ import annotations

import datetime as dt
import os
import sys

from rich.console import Console

from core.catalog import CatalogError, Problem
from core.clock import Clock, FrozenClock
from core.config import Settings
from core.plugins import PluginError

console = Console(stderr=True)


KEY_HELP = "a staff API key (default: $UNIVERS_STAFF_KEY); the command is checked against its role"


def runtime(args, clock: Clock | None = None):
    from core.boot import build_runtime

    settings = Settings.from_env()
    if getattr(args, "database", None):
        settings = settings.with_(database_url=args.database)
    try:
        return build_runtime(settings, clock)
    except PluginError as exc:
        console.print(f"[bold red]start-up refused:[/] {exc}")
        raise SystemExit(3) from None
    except CatalogError as exc:
        console.print(f"[bold red]start-up refused:[/] the catalog has {len(exc.problems)} problem(s); "
                      "`univers catalog check` lists them too")
        print_problems(exc.problems)
        raise SystemExit(3) from None


def staff_actor(rt, args, action: str, scope: str):
    """Back-office commands act as a staff member, checked like the API: the key in ``--key``
    or ``UNIVERS_STAFF_KEY`` must be a staff key whose role allows ``action`` and whose scopes
    include ``scope``. (Jobs the scheduler also runs — renew, outbox, worker — are the
    operator's, who holds the machine, and need no key.)"""
    from core.customers.accounts import acting_with_key

    key = getattr(args, "key", None) or os.environ.get("UNIVERS_STAFF_KEY")
    with rt.engine.connect() as conn:
        return acting_with_key(conn, key, rt.clock.now(), scope, staff_action=action)[1]


def print_problems(problems: list[Problem]) -> None:
    for problem in problems:  # one line each, never wrapped: people grep these and CI logs show them
        print(problem, file=sys.stderr)


class CatalogEnv:
    """Plugins, catalog and translations without a database: what the catalog commands need,
    even when the catalog is broken (that is when they are needed most)."""

    def __init__(self, at: str | None = None):
        from core.boot import load_catalog
        from core.countries.storefronts import load_subsidiaries
        from core.plugins import build_plugin_manager

        self.settings = Settings.from_env()
        self.clock = FrozenClock(dt.date.fromisoformat(at)) if at else Clock()
        self.storefronts = load_subsidiaries()
        self.pm = build_plugin_manager(self.settings)
        self.catalog, self.domains, self.problems = load_catalog(self.pm, self.settings, self.clock, self.storefronts)


def storefront_of(env: CatalogEnv, code: str):
    sub = env.storefronts.get(code.upper())
    if sub is None:
        console.print(f"[bold red]unknown_storefront[/]: {code!r}; known: {', '.join(sorted(env.storefronts))}")
        raise SystemExit(2)
    return sub


def parse_day(text: str | None, default: dt.date | None = None) -> dt.date | None:
    if not text:
        return default
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        console.print(f"[bold red]invalid_date[/]: {text!r} is not a date; expected YYYY-MM-DD")
        raise SystemExit(2) from None
