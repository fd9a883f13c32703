"""``univers catalog``, ``i18n``, ``plugins`` and ``plugin``: what the storefronts sell, its translations,
and the universes that contribute it."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from core.cli.common import (
    CatalogEnv,
    console,
    print_problems,
    runtime,
    storefront_of,
)
from core.plugins import describe


def cmd_catalog_show(args) -> int:
    from core.catalog.views import catalog_read
    from core.i18n import normalise

    env = CatalogEnv()
    sub = storefront_of(env, args.storefront)
    locale = normalise(args.locale) or sub.default_locale if args.locale else sub.default_locale
    view = catalog_read(env.catalog, sub, locale, dt.date.fromisoformat(args.at) if args.at else env.clock.today())
    if args.json:
        import msgspec

        print(msgspec.json.encode(view).decode())
        return 0
    table = Table(title=f"{sub.code} sells, {view.at} ({sub.currency}, {locale})")
    for col in ("universe", "plan", "name", "period", "commitment", "price", "setup", "from", "then"):
        table.add_column(col, overflow="fold")
    for product in view.products:
        for plan in product.plans:
            then = "; ".join(f"{p.price.formatted} ({p.valid_from_text})" for p in plan.upcoming)
            table.add_row(product.universe, plan.code, plan.name, plan.duration_text, plan.engagement_text or "",
                          plan.price.price.formatted, plan.price.setup.formatted if plan.price.setup.amount_minor else "",
                          plan.price.valid_from_text or "", then)
    Console().print(table)
    return 0


def cmd_catalog_check(args) -> int:
    from core.i18n_tools import stale_templates

    env = CatalogEnv(args.at)
    problems = env.problems + stale_templates(env.domains)
    if problems:
        print_problems(problems)
        console.print(f"[bold red]{len(problems)} problem(s)[/]")
        return 1
    sold = sum(len(o.plans) for o in env.catalog.offers.values())
    console.print(f"[green]catalog OK[/]: {len(env.catalog.products)} products, {len(env.catalog.plans)} plans, "
                  f"{sold} plan offers in {len(env.catalog.offers)} storefronts, {len(env.domains)} gettext domains")
    return 0


def cmd_catalog_edit(args) -> int:
    from core.catalog.admin import EditError, add_price, set_enabled

    env = CatalogEnv()
    sub = storefront_of(env, args.storefront)
    try:
        if args.action == "price":
            path = add_price(env.pm, env.catalog, env.storefronts, sub.code, args.code, dt.date.fromisoformat(args.valid_from),
                             args.amount, env.clock.today(), args.setup, args.hourly)
        else:
            path = set_enabled(env.pm, env.catalog, env.storefronts, sub.code, args.code, args.action == "enable")
    except (EditError, ValueError) as exc:
        console.print(f"[bold red]refused[/]: {exc}")
        return 2
    console.print(f"wrote {path}")
    after = CatalogEnv()
    mine = [p for p in after.problems if p.storefront == sub.code]
    if mine:
        console.print(f"[yellow]{sub.code} still has {len(mine)} problem(s):[/]")
        print_problems(mine)
    return 0


def cmd_i18n(args) -> int:
    from core import i18n_tools

    env = CatalogEnv()
    domains = [d for name, d in env.domains.items() if not args.domain or name in args.domain]
    for domain in domains:
        languages = args.locale or i18n_tools.linguas(domain.locales_dir)
        if args.action == "extract":
            console.print(f"{domain.domain}: {i18n_tools.write_template(domain)} messages → {i18n_tools.pot_path(domain)}")
        elif args.action == "update":
            console.print(f"{domain.domain}: updated {len(i18n_tools.update(domain, languages))} catalogs")
        elif args.action == "compile":
            console.print(f"{domain.domain}: compiled {len(i18n_tools.compile_catalogs(domain, languages))} catalogs")
    if args.action == "check":
        problems = [p for p in env.problems + i18n_tools.stale_templates(env.domains)
                    if p.rule in {"missing_translation", "bad_placeholder", "stale_template", "no_template", "unserved_locale"}]
        print_problems(problems)
        if problems:
            console.print(f"[bold red]{len(problems)} translation problem(s)[/]")
            return 1
        console.print("[green]translations OK[/]")
    return 0


def cmd_plugins(args) -> int:
    rt = runtime(args)
    infos = describe(rt.pm, rt.catalog)
    if args.json:
        print(json.dumps([info.__dict__ for info in infos], indent=1))
        return 0
    table = Table(title="Univers plugins")
    for col in ("plugin", "version", "hooks", "products", "plans", "support tiers"):
        table.add_column(col)
    for i in infos:
        table.add_row(i.name, i.version, str(len(i.hooks)), str(len(i.products)), str(len(i.plans)), ", ".join(i.support_tiers))
    Console().print(table)
    return 0


def cmd_plugin_check(args) -> int:
    """The conformance suite (core/conformance.py) on an installed universe, through pytest."""
    import pytest

    return int(pytest.main(["-p", "no:cacheprovider", "-q", f"--univers-conformance={args.name}", *args.pytest_args]))


def cmd_plugin_new(args) -> int:
    from core.scaffold import create

    path = create(args.name, Path(args.directory) if args.directory else None)
    console.print(f"created the universe [bold]{args.name}[/] in {path}; next:\n"
                  f"  pip install -e {path}\n  univers plugin check {args.name}")
    return 0


def add_commands(sub) -> None:
    p = sub.add_parser("plugins", help="list plugins and what they contribute")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_plugins)
    p = sub.add_parser("plugin", help="for product units: check a universe against the conformance suite, or create one")
    psub = p.add_subparsers(dest="action", required=True)
    c = psub.add_parser("check", help="run the conformance suite on an installed universe (both engines); exit 1 if it fails")
    c.add_argument("name")
    c.add_argument("pytest_args", nargs="*", help="more pytest arguments, after --")
    c.set_defaults(func=cmd_plugin_check)
    c = psub.add_parser("new", help="create a working universe package in a new folder")
    c.add_argument("name", help="the universe's name: lower case letters, digits and _ (also its gettext domain)")
    c.add_argument("--directory", help="where (default: ./univers-NAME)")
    c.set_defaults(func=cmd_plugin_new)
    p = sub.add_parser("catalog", help="what each storefront sells: show, check, and edit the overlays")
    csub = p.add_subparsers(dest="action", required=True)
    c = csub.add_parser("show", help="a storefront's catalog as its customers see it")
    c.add_argument("--storefront", required=True)
    c.add_argument("--locale")
    c.add_argument("--at", help="prices in force on YYYY-MM-DD (default: today)")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_catalog_show)
    c = csub.add_parser("check", help="every problem of the catalog and its translations; exit 1 if any")
    c.add_argument("--at", help="check as of YYYY-MM-DD (default: today)")
    c.set_defaults(func=cmd_catalog_check)
    for action, text in (("enable", "sell a product (or a plan) in a storefront"), ("disable", "stop selling it there")):
        c = csub.add_parser(action, help=text)
        c.add_argument("code", help="product or plan code")
        c.add_argument("--storefront", required=True)
        c.set_defaults(func=cmd_catalog_edit)
    c = csub.add_parser("price", help="schedule a local price for a plan from a future date")
    c.add_argument("code", help="plan code")
    c.add_argument("--storefront", required=True)
    c.add_argument("--amount", required=True, help="in the storefront's currency, e.g. 64.99")
    c.add_argument("--from", dest="valid_from", required=True, help="YYYY-MM-DD, after today")
    c.add_argument("--setup")
    c.add_argument("--hourly")
    c.set_defaults(func=cmd_catalog_edit)
    p = sub.add_parser("i18n", help="translations: extract | update | compile | check (Babel)")
    p.add_argument("action", choices=["extract", "update", "compile", "check"])
    p.add_argument("--domain", action="append", help="only this gettext domain (repeatable)")
    p.add_argument("--locale", action="append", help="only this catalog (repeatable; default: LINGUAS)")
    p.set_defaults(func=cmd_i18n)
