"""The ``univers`` command: serve, migrate, renew, outbox, plugins, catalog, i18n, reports, demo, bench.

Thin like the API: it parses arguments and calls the same domain operations.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import sys
from pathlib import Path

from rich import box
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from core.catalog import CatalogError, Problem
from core.clock import Clock, FrozenClock
from core.config import Settings
from core.plugins import PluginError, describe

console = Console(stderr=True)


def _runtime(args, clock: Clock | None = None):
    from core.runtime import build_runtime

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
        _print_problems(exc.problems)
        raise SystemExit(3) from None


def _staff_actor(rt, args, action: str, scope: str):
    """Back-office commands act as a staff member, checked like the API: the key in ``--key``
    or ``UNIVERS_STAFF_KEY`` must be a staff key whose role allows ``action`` and whose scopes
    include ``scope``. (Jobs the scheduler also runs — renew, outbox, worker — are the
    operator's, who holds the machine, and need no key.)"""
    from core.customers import acting_with_key

    key = getattr(args, "key", None) or os.environ.get("UNIVERS_STAFF_KEY")
    with rt.engine.connect() as conn:
        return acting_with_key(conn, key, rt.clock.now(), scope, staff_action=action)[1]


def _print_problems(problems: list[Problem]) -> None:
    for problem in problems:  # one line each, never wrapped: people grep these and CI logs show them
        print(problem, file=sys.stderr)


class _CatalogEnv:
    """Plugins, catalog and translations without a database: what the catalog commands need,
    even when the catalog is broken (that is when they are needed most)."""

    def __init__(self, at: str | None = None):
        from core.plugins import build_plugin_manager
        from core.runtime import load_catalog
        from core.subsidiaries import load_subsidiaries

        self.settings = Settings.from_env()
        self.clock = FrozenClock(dt.date.fromisoformat(at)) if at else Clock()
        self.storefronts = load_subsidiaries()
        self.pm = build_plugin_manager(self.settings)
        self.catalog, self.domains, self.problems = load_catalog(self.pm, self.settings, self.clock, self.storefronts)


def _storefront(env: _CatalogEnv, code: str):
    sub = env.storefronts.get(code.upper())
    if sub is None:
        console.print(f"[bold red]unknown_storefront[/]: {code!r}; known: {', '.join(sorted(env.storefronts))}")
        raise SystemExit(2)
    return sub


def cmd_catalog_show(args) -> int:
    from core.api.schemas import catalog_read
    from core.i18n import normalise

    env = _CatalogEnv()
    sub = _storefront(env, args.storefront)
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

    env = _CatalogEnv(args.at)
    problems = env.problems + stale_templates(env.domains)
    if problems:
        _print_problems(problems)
        console.print(f"[bold red]{len(problems)} problem(s)[/]")
        return 1
    sold = sum(len(o.plans) for o in env.catalog.offers.values())
    console.print(f"[green]catalog OK[/]: {len(env.catalog.products)} products, {len(env.catalog.plans)} plans, "
                  f"{sold} plan offers in {len(env.catalog.offers)} storefronts, {len(env.domains)} gettext domains")
    return 0


def cmd_catalog_edit(args) -> int:
    from core.catalog_admin import EditError, add_price, set_enabled

    env = _CatalogEnv()
    sub = _storefront(env, args.storefront)
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
    after = _CatalogEnv()
    mine = [p for p in after.problems if p.storefront == sub.code]
    if mine:
        console.print(f"[yellow]{sub.code} still has {len(mine)} problem(s):[/]")
        _print_problems(mine)
    return 0


def cmd_i18n(args) -> int:
    from core import i18n_tools

    env = _CatalogEnv()
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
        _print_problems(problems)
        if problems:
            console.print(f"[bold red]{len(problems)} translation problem(s)[/]")
            return 1
        console.print("[green]translations OK[/]")
    return 0


def cmd_serve(args) -> int:
    import uvicorn

    from core.api.app import create_app
    from core.demo import seed

    rt = _runtime(args)
    if rt.settings.demo:
        keys_file = rt.settings.data_dir / "demo-keys.json"
        keys = seed(rt, keys_file)
        if keys:
            console.print(f"[green]demo data seeded[/]; API keys written to {keys_file}")
            for who, key in keys.items():
                console.print(f"  {who:24} {key}")
    host, port = args.host or rt.settings.host, args.port or rt.settings.port
    workers = max(1, args.workers or rt.settings.workers)
    console.print(f"Univers API on http://{host}:{port}  (OpenAPI: /schema, /schema/openapi.json); database {rt.settings.engine_name}"
                  f"; {workers} worker(s)")
    if workers > 1:  # each worker process builds its own runtime (core.asgi), on the schema migrated above
        rt.close()
        os.environ["UNIVERS_SCHEDULER"] = "1" if rt.settings.scheduler and not args.no_scheduler else "0"
        uvicorn.run("core.asgi:create", factory=True, host=host, port=port, log_level="info", workers=workers)
        return 0
    app = create_app(rt, scheduler=rt.settings.scheduler and not args.no_scheduler)
    uvicorn.run(app, host=host, port=port, log_level="info", workers=1)
    return 0


def cmd_migrate(args) -> int:
    rt = _runtime(args)
    console.print(f"schema up to date on {rt.settings.engine_name}")
    return 0


def cmd_plugins(args) -> int:
    rt = _runtime(args)
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


def cmd_campaign(args) -> int:
    """The switch campaign of legacy services: invite (idempotent), or show where it stands."""
    from core import contracts
    from core.uow import unit_of_work

    rt = _runtime(args)
    _staff_actor(rt, args, "staff.billing", "billing:write" if args.action == "switch" else "billing:read")
    scope = dict(universe=args.universe, plan_prefix=args.plans, expiring_within=args.expiring_within)
    with unit_of_work(rt) as conn:
        if args.action == "switch":
            report = contracts.invite(conn, rt, args.storefront.upper(), **scope)
        else:
            report = contracts.progress(conn, rt, args.storefront.upper(), **scope)
    table = Table(title=f"Switch campaign, {args.storefront.upper()}")
    for name in ("invited", "waiting", "accepted", "declined", "ending"):
        table.add_column(name, justify="right")
    table.add_row(*(str(getattr(report, n)) for n in ("invited", "waiting", "accepted", "declined", "ending")))
    Console(stderr=True).print(table)
    print(json.dumps(report.__dict__))
    return 0


def cmd_renew(args) -> int:
    from core.renewal import run_renewal

    try:
        at = dt.date.fromisoformat(args.at) if args.at else None
    except ValueError:
        console.print(f"[bold red]invalid_date[/]: {args.at!r} is not a date; expected YYYY-MM-DD")
        return 2
    rt = _runtime(args, FrozenClock(at) if at else None)
    with Progress(TextColumn("renewal {task.fields[day]}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=False) as progress:
        task = progress.add_task("renew", total=None, day=(at or rt.clock.today()).isoformat())
        summary = run_renewal(rt, at, progress=lambda n: progress.advance(task, n))
    print(json.dumps(summary.as_dict()))
    return 0


def cmd_usage_bill(args) -> int:
    """Invoice a finished month of pay-as-you-go usage (the scheduler does it daily for the previous month)."""
    from core.errors import InvalidInput
    from core.metering import parse_period, run_usage_billing

    rt = _runtime(args)
    try:
        period = parse_period(args.period) if args.period else None
        with Progress(TextColumn("usage billing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console, transient=False) as progress:
            task = progress.add_task("bill", total=None)
            summary = run_usage_billing(rt, period, progress=lambda n: progress.advance(task, n))
    except InvalidInput as exc:
        console.print(f"[bold red]{exc.code}[/]: {exc}")
        return 2
    print(json.dumps(summary.as_dict()))
    return 1 if summary.failed else 0


def cmd_outbox(args) -> int:
    from core.scheduler import run_queues

    rt = _runtime(args)
    print(json.dumps({name: vars(stats) for name, stats in run_queues(rt, limit=args.limit).items()}))
    return 0


def cmd_worker(args) -> int:
    """Run the scheduler alone (no API): one more instance sharing the work."""
    import time

    from core.scheduler import start_scheduler

    rt = _runtime(args)
    scheduler = start_scheduler(rt)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        scheduler.shutdown()
    return 0


def _day(text: str | None, default: dt.date | None = None) -> dt.date | None:
    if not text:
        return default
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        console.print(f"[bold red]invalid_date[/]: {text!r} is not a date; expected YYYY-MM-DD")
        raise SystemExit(2) from None


def cmd_invoices(args) -> int:
    from core import accounting
    from core.money import format_minor

    rt = _runtime(args)
    _staff_actor(rt, args, "staff.reports" if args.action == "overdue" else "service.invoices", "billing:read")
    with rt.engine.connect() as conn:
        if args.action == "overdue":
            rows = accounting.overdue(conn, _day(args.as_of, rt.clock.today()), args.storefront)
            table = Table(title=f"Overdue on {_day(args.as_of, rt.clock.today())}")
            for col in ("number", "customer", "due", "days", "total", "pending payment"):
                table.add_column(col)
            for r in rows:
                table.add_row(r["number"], f"{r['handle']} {r['buyer_name']}", r["due_on"].isoformat(), str(r["days_overdue"]),
                              format_minor(r["total_minor"], r["currency"], "en"), "yes" if r["payment_pending"] else "")
        else:
            rows = accounting.find_invoices(conn, subsidiary=args.storefront, status=args.status, kind=args.kind,
                                            issued_from=_day(args.issued_from), issued_to=_day(args.issued_to),
                                            after=args.after, limit=args.limit)
            table = Table(title="Invoices")
            for col in ("id", "number", "kind", "status", "issued", "buyer", "total"):
                table.add_column(col)
            from core.invoicing import number

            for r in rows:
                table.add_row(str(r["id"]), number(r["series"], r["fiscal_year"], r["seq"]), r["kind"], r["status"],
                              r["issued_on"].isoformat(), r["buyer_name"], format_minor(r["total_minor"], r["currency"], "en"))
    Console().print(table)
    return 0


def cmd_report(args) -> int:
    from core import accounting
    from core.money import format_minor

    start, end = _day(args.issued_from), _day(args.issued_to)
    rt = _runtime(args)
    _staff_actor(rt, args, "staff.reports", "billing:read")
    with rt.engine.connect() as conn:
        rows = accounting.revenue(conn, start, end)
    if args.json:
        print(json.dumps(rows, default=str))
        return 0
    table = Table(title=f"Revenue {args.issued_from} – {args.issued_to} (net, credit notes deducted)")
    for col in ("month", "storefront", "universe", "net", "documents"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["month"], r["subsidiary"], r["universe"], format_minor(r["net_minor"], r["currency"], "en"), str(r["documents"]))
    Console().print(table)
    return 0


FORECAST_FORMATS = ("table", "json", "csv", "svg")


def cmd_forecast(args) -> int:
    """What renews and what stops on each day of the window: a table, or JSON, CSV or SVG."""
    from pathlib import Path

    from core import forecast
    from core.i18n import normalise
    from core.money import format_minor

    fmt = args.format or (Path(args.output).suffix.lstrip(".").lower() if args.output else "table")
    if fmt not in FORECAST_FORMATS or (fmt == "table" and args.output):
        console.print(f"[bold red]invalid_format[/]: {fmt!r}; with --output, use --format json, csv or svg "
                      "(or a file ending in .json, .csv or .svg)")
        return 2
    locale = normalise(args.locale) or "en"
    forecast.check_days(args.days)
    start = _day(args.start)
    rt = _runtime(args)
    _staff_actor(rt, args, "staff.reports", "billing:read")
    with rt.engine.connect() as conn:
        report = forecast.forecast(conn, start or rt.clock.today(), args.days)
    if fmt == "table":
        table = Table(title=f"Renewal forecast {report.start} – {report.end} (net, excluding tax)", box=box.SIMPLE_HEAD,
                      pad_edge=False, collapse_padding=True)
        for col in ("day", "storefront", "universe", "renewing", "net", "stopping", "net"):
            table.add_column(col, justify="left" if col in ("day", "storefront", "universe") else "right", no_wrap=True)
        for r in report.rows:
            table.add_row(r["day"].isoformat(), r["subsidiary"], r["universe"], str(r["renewing"]),
                          format_minor(r["renewing_minor"], r["currency"], locale), str(r["stopping"] or ""),
                          format_minor(r["stopping_minor"], r["currency"], locale) if r["stopping"] else "")
        table.add_section()
        for t in report.totals():
            table.add_row(f"[bold]total {t['currency']}[/]", "", "", f"[bold]{t['renewing']}[/]",
                          f"[bold]{format_minor(t['renewing_minor'], t['currency'], locale)}[/]", f"[bold]{t['stopping']}[/]",
                          f"[bold]{format_minor(t['stopping_minor'], t['currency'], locale)}[/]")
        Console().print(table)
        return 0
    if fmt == "json":
        import msgspec

        from core.api.schemas import forecast_read

        text = msgspec.json.encode(forecast_read(report, locale)).decode() + "\n"
    elif fmt == "csv":
        text = forecast.forecast_csv(report)
    else:
        from core.forecast_chart import render_svg

        text = render_svg(report, locale)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        console.print(f"forecast {report.start} – {report.end} ({len(report.rows)} rows) → {args.output}")
    else:
        sys.stdout.write(text)
    return 0


def cmd_export(args) -> int:
    from pathlib import Path

    from core import accounting

    if args.customer:
        return cmd_export_account(args)
    if args.what is None:
        console.print("[bold red]export[/]: say what: journal, fec, or --customer HANDLE_OR_ID")
        return 2
    rt = _runtime(args)
    _staff_actor(rt, args, "staff.reports", "billing:read")
    if args.what == "fec":
        start, end, storefront = dt.date(args.year, 1, 1), dt.date(args.year, 12, 31), "FR"
        name = accounting.fec_name(rt.storefronts["FR"].legal_entity["registration_id"], args.year)
    else:
        start, end, storefront = _day(args.issued_from), _day(args.issued_to), args.storefront
        name = f"journal-{start}-{end}.csv"
    target = Path(args.output) / name if Path(args.output).is_dir() else Path(args.output)
    with rt.engine.connect() as conn:
        documents = accounting.count_documents(conn, start, end, storefront)
        with Progress(TextColumn(f"{args.what} {{task.completed}}/{{task.total}} documents"), BarColumn(),
                      MofNCompleteColumn(), TimeElapsedColumn(), console=console) as progress:
            task = progress.add_task(args.what, total=documents)
            rows = accounting.journal(conn, start, end, storefront, progress=lambda n: progress.advance(task, n))
            chunks = accounting.fec(rows) if args.what == "fec" else accounting.journal_csv(rows)
            with target.open("w", encoding="utf-8", newline="") as fh:
                for chunk in chunks:
                    fh.write(chunk)
    console.print(f"{documents} documents → {target}")
    return 0


def cmd_staff_create(args) -> int:
    """A back-office account with its role and key. The first one (no staff yet) needs no key:
    that is how an installation gets its first administrator."""
    from sqlalchemy import func, select

    from core.audit import Actor
    from core.customers import create_customer
    from core.models import Account
    from core.uow import unit_of_work

    rt = _runtime(args)
    with rt.engine.connect() as conn:
        first = not conn.execute(select(func.count()).where(Account.__table__.c.is_staff.is_(True))).scalar_one()
    actor = Actor.system("cli") if first else _staff_actor(rt, args, "staff.accounts", "account:write")
    with unit_of_work(rt) as conn:
        row, key = create_customer(conn, rt, {"subsidiary": next(iter(rt.storefronts)), "name": args.name, "email": args.email,
                                              "language": args.language}, actor, is_staff=True, staff_role=args.role)
    print(json.dumps({"id": row["id"], "handle": row["handle"], "role": args.role, "api_key": key}))
    return 0


def cmd_service(args) -> int:
    """Back office on one service, with the same role checks as the API."""
    from core import services as service_ops
    from core.dunning import restore
    from core.uow import unit_of_work

    rt = _runtime(args)
    actor = _staff_actor(rt, args, {"restore": "service.restore", "show": "service.read"}.get(args.action, "service.abuse"),
                         "services:read" if args.action == "show" else "services:write")
    with unit_of_work(rt) as conn:
        if args.action == "abuse":
            row = service_ops.suspend_for_abuse(conn, rt, actor, args.id, args.reason or "")
        elif args.action == "lift-abuse":
            row = service_ops.lift_abuse(conn, rt, actor, args.id)
        elif args.action == "restore":
            restore(conn, rt, args.id, actor)
            row = service_ops.get_service(conn, actor, args.id)
        else:
            row = service_ops.get_service(conn, actor, args.id)
    print(json.dumps({k: row[k] for k in ("id", "universe", "plan_code", "state", "renewal_mode", "expires_on", "abuse_reason",
                                          "admin_account_id", "tech_account_id", "billing_account_id")}, default=str))


def cmd_export_account(args) -> int:
    """A customer's data as the ``univers-export`` JSON document (see core/export.py)."""
    from pathlib import Path

    import msgspec
    from sqlalchemy import or_, select

    from core import export
    from core.models import Account

    rt = _runtime(args)
    _staff_actor(rt, args, "staff.customers", "account:read")
    acct = Account.__table__
    who = args.customer
    with rt.engine.begin() as conn:
        account_id = conn.execute(select(acct.c.id).where(or_(
            acct.c.handle == who, acct.c.id == (int(who) if who.isdigit() else -1)))).scalar()
        if account_id is None:
            console.print(f"[bold red]not_found[/]: no customer {who!r}")
            return 1
        document = export.export_account(conn, rt, account_id, documents=not args.no_pdf)
    body = msgspec.json.encode(document)
    if args.output == "-":
        sys.stdout.buffer.write(body + b"\n")
        return 0
    target = Path(args.output)
    if target.is_dir():
        target = target / f"univers-export-{document['account']['handle']}-{rt.clock.today().isoformat()}.json"
    target.write_bytes(body)
    console.print(f"{document['account']['handle']}: {len(document['services'])} services, {len(document['invoices'])} invoices, "
                  f"{len(document['credit_notes'])} credit notes, {len(document['payments'])} payments → {target}")
    return 0


def cmd_import(args) -> int:
    """``import FILE.json`` or ``import account FILE.json``: load a ``univers-export`` document
    as a new account (fresh ids, invoice numbers kept); ``import services FILE.csv --storefront
    SF``: the legacy import (core/legacy.py)."""
    from pathlib import Path

    from core import customers, export
    from core.uow import unit_of_work

    if args.what in ("services", "account") and args.file:
        kind, args.file = args.what, args.file
    elif args.file is None:
        kind, args.file = "account", args.what
    else:
        console.print(f"[bold red]usage[/]: univers import [account] FILE.json | univers import services FILE.csv "
                      f"--storefront SF (not {args.what!r})")
        return 2
    if kind == "services":
        return _import_services(args)
    rt = _runtime(args)
    actor = _staff_actor(rt, args, "staff.accounts", "account:write")
    with unit_of_work(rt) as conn:
        result = export.import_account(conn, rt, Path(args.file).read_bytes(), actor)
        key = customers.issue_key(conn, rt, result.account_id, name="imported") if args.issue_key else None
    print(json.dumps({"account_id": result.account_id, "handle": result.handle, "handle_changed": result.handle_changed,
                      "remapped_contacts": result.remapped_contacts, "counts": result.counts,
                      **({"api_key": key} if key else {})}, indent=1))
    return 0


def _import_services(args) -> int:
    """The legacy import: every problem of the file on its own line (exit 1), or the counts."""
    from core import legacy
    from core.errors import InvalidInput
    from core.i18n import normalise, translate
    from core.uow import unit_of_work

    if not args.storefront:
        console.print("[bold red]usage[/]: univers import services FILE.csv --storefront SF")
        return 2
    try:
        data = Path(args.file).read_bytes()
    except OSError as exc:
        console.print(f"[bold red]unreadable[/]: {args.file}: {exc.strerror}")
        return 2
    locale = normalise(args.locale) or "en"
    rt = _runtime(args)
    actor = _staff_actor(rt, args, "staff.accounts", "account:write")
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=False) as bar:
        tasks: dict[str, int] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task({"check": "checking rows", "write": "writing"}.get(stage, stage), total=total)
            bar.update(tasks[stage], completed=done, total=total)

        try:
            with unit_of_work(rt) as conn:
                result = legacy.import_services(conn, rt, args.storefront, data, actor, locale=locale, progress=progress)
        except InvalidInput as exc:
            bar.stop()
            for e in exc.errors:  # one line each, never wrapped: people grep these
                template = e["message"]  # (a variable: the extractor takes a literal argument for a msgid)
                message = translate(template, locale).format(**e.get("params", {}))
                print(f"{args.file}:{e['line']}: {e['field'] or '-'}: {e['code']}: {message}", file=sys.stderr)
            console.print(f"[bold red]{exc.code}[/]: {exc.message(locale)}")
            return 1
    print(json.dumps(result.as_dict()))
    return 0


def cmd_demo(args) -> int:
    from core.demo import seed

    rt = _runtime(args)
    keys = seed(rt, rt.settings.data_dir / "demo-keys.json")
    print(json.dumps(keys or {}, indent=1))
    return 0


def cmd_bench(args) -> int:
    if args.what == "renewal":
        from bench.renewal import main as bench_renewal

        if len(args.services) != 1:
            console.print("[bold red]bench renewal[/] measures one size at a time")
            return 2
        return bench_renewal(args.services[0], args.database, args.output)
    if args.what == "api":
        from bench.api import main as bench_api

        return bench_api(args.services, args.database, args.output, customers=args.customers, requests=args.requests)
    if args.what == "usage":
        from bench.usage import main as bench_usage

        return bench_usage(args.records, args.projects, args.database, args.output, clients=args.clients, workers=args.workers,
                           customers=args.usage_customers)
    return 2


KEY_HELP = "a staff API key (default: $UNIVERS_STAFF_KEY); the command is checked against its role"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="univers", description="Sell, bill and renew cloud and hosting services.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="API + scheduler (the main job)")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--no-scheduler", action="store_true")
    p.add_argument("--workers", type=int, help="API worker processes (default: $UNIVERS_WORKERS or 1)")
    p.set_defaults(func=cmd_serve)
    p = sub.add_parser("migrate", help="apply the Alembic migrations")
    p.add_argument("--database")
    p.set_defaults(func=cmd_migrate)
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
    p = sub.add_parser("campaign", help="back office: switch legacy services to the new contract (invite, progress)")
    p.add_argument("action", choices=["switch", "progress"])
    p.add_argument("--storefront", required=True)
    p.add_argument("--universe")
    p.add_argument("--plans", help="a product range: plans whose code starts with this")
    p.add_argument("--expiring-within", type=int, metavar="DAYS")
    p.add_argument("--database")
    p.add_argument("--key", help=KEY_HELP)
    p.set_defaults(func=cmd_campaign)
    p = sub.add_parser("renew", help="run the renewal and dunning for a date")
    p.add_argument("--at", help="YYYY-MM-DD (default: today)")
    p.add_argument("--database")
    p.set_defaults(func=cmd_renew)
    p = sub.add_parser("usage", help="pay-as-you-go: the monthly invoice in arrears")
    usub = p.add_subparsers(dest="action", required=True)
    u = usub.add_parser("bill", help="rate, invoice and close a finished month of usage (default: the previous month)")
    u.add_argument("--period", help="YYYY-MM")
    u.add_argument("--database")
    u.set_defaults(func=cmd_usage_bill)
    p = sub.add_parser("outbox", help="work the queues once: provisioning actions, gateway charges, notifications")
    p.add_argument("--limit", type=int, default=1000)
    p.set_defaults(func=cmd_outbox)
    p = sub.add_parser("worker", help="run the scheduler without the API")
    p.set_defaults(func=cmd_worker)
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
    p = sub.add_parser("staff", help="back office: create a staff account with its role (the first needs no key)")
    p.add_argument("action", choices=["create"])
    p.add_argument("--name", required=True)
    p.add_argument("--email", required=True)
    p.add_argument("--role", required=True, choices=["billing_operator", "support_agent", "abuse_desk", "administrator"])
    p.add_argument("--language", default="en")
    p.add_argument("--key", help=KEY_HELP)
    p.set_defaults(func=cmd_staff_create)
    p = sub.add_parser("service", help="back office: show a service, suspend it for abuse or lift that, restore it")
    p.add_argument("action", choices=["show", "abuse", "lift-abuse", "restore"])
    p.add_argument("id", type=int)
    p.add_argument("--reason", help="abuse: the reason the customer sees")
    p.add_argument("--key", help=KEY_HELP)
    p.set_defaults(func=cmd_service)
    p = sub.add_parser("invoices", help="back office: list issued documents, or the overdue ones")
    p.add_argument("action", choices=["list", "overdue"])
    p.add_argument("--storefront")
    p.add_argument("--status", choices=["issued", "paid", "credited"])
    p.add_argument("--kind", choices=["order", "renewal", "usage", "credit_note"])
    p.add_argument("--from", dest="issued_from")
    p.add_argument("--to", dest="issued_to")
    p.add_argument("--as-of", dest="as_of")
    p.add_argument("--after", type=int, default=0)
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--key", help=KEY_HELP)
    p.set_defaults(func=cmd_invoices)
    p = sub.add_parser("report", help="back office: revenue by month, storefront and universe; the renewal forecast")
    rsub = p.add_subparsers(dest="what", required=True)
    r = rsub.add_parser("revenue", help="net revenue invoiced by month, storefront and universe (credit notes deducted)")
    r.add_argument("--from", dest="issued_from", required=True)
    r.add_argument("--to", dest="issued_to", required=True)
    r.add_argument("--json", action="store_true")
    r.add_argument("--key", help=KEY_HELP)
    r.set_defaults(func=cmd_report)
    r = rsub.add_parser(
        "forecast", help="what renews and what stops (churn), for how much, on each of the next N days",
        description="What renews, and for how much (net of tax), on each day of the next N days, by storefront, "
                    "universe and currency, beside the services set to stop on the day they end (churn). Renewals "
                    "later in the window are projected at the price in force on their date; currencies are never "
                    "added together. Formats: a table (default), json, csv, or svg (a chart with one panel per "
                    "currency, in --locale).")
    r.add_argument("--days", type=int, default=90, help="how many days, 1 to 366 (default: 90)")
    r.add_argument("--start", help="the first day, YYYY-MM-DD (default: today)")
    r.add_argument("--format", choices=FORECAST_FORMATS, help="default: table, or what --output ends with")
    r.add_argument("--output", help="write to this file instead of the terminal (.json, .csv or .svg)")
    r.add_argument("--locale", default="en", help="language of the amounts, dates and chart words (default: en)")
    r.add_argument("--key", help=KEY_HELP)
    r.set_defaults(func=cmd_forecast)
    p = sub.add_parser("export", help="back office: the sales journal (CSV), the French FEC, or a customer's data (JSON)")
    p.add_argument("what", nargs="?", choices=["journal", "fec"])
    p.add_argument("--customer", help="a customer's handle or id: its data as a univers-export JSON file")
    p.add_argument("--no-pdf", action="store_true", help="with --customer: leave the invoice PDFs out")
    p.add_argument("--from", dest="issued_from")
    p.add_argument("--to", dest="issued_to")
    p.add_argument("--year", type=int)
    p.add_argument("--storefront")
    p.add_argument("--output", default=".", help="a directory or a file (--customer: '-' writes to stdout)")
    p.add_argument("--database")
    p.add_argument("--key", help=KEY_HELP)
    p.set_defaults(func=cmd_export)
    p = sub.add_parser("import", help="back office: a customer's univers-export JSON file as a new account, or the "
                                      "services of the old billing system (import services FILE.csv --storefront SF)")
    p.add_argument("what", metavar="[account|services]", help="services: the legacy CSV file; account (or nothing): a "
                                                              "univers-export JSON file")
    p.add_argument("file", nargs="?", metavar="FILE")
    p.add_argument("--issue-key", action="store_true", help="account: also give the new account an API key (printed once)")
    p.add_argument("--storefront", help="services: the storefront the services are sold in")
    p.add_argument("--locale", default="en", help="services: the language of the problems (default: en)")
    p.add_argument("--database")
    p.add_argument("--key", help=KEY_HELP)
    p.set_defaults(func=cmd_import)
    p = sub.add_parser("demo", help="seed demo data (once)")
    p.set_defaults(func=cmd_demo)
    p = sub.add_parser("bench", help="benchmarks (figures appended to bench/results.jsonl)")
    p.add_argument("what", choices=["renewal", "api", "usage"])
    p.add_argument("--services", type=lambda v: [int(n) for n in v.split(",")], default=[100_000],
                   help="api: several sizes, comma-separated, are measured side by side")
    p.add_argument("--database", default="sqlite:///var/bench.db")
    p.add_argument("--output", default="bench/results.jsonl")
    p.add_argument("--customers", type=int, default=10_000, help="api: customers the services are spread across")
    p.add_argument("--requests", type=int, default=1000, help="api: measured requests per endpoint (after a warm-up)")
    p.add_argument("--records", type=int, default=1_000_000, help="usage: records posted, in batches of 10,000")
    p.add_argument("--projects", type=int, default=1000, help="usage: projects the records are spread across")
    p.add_argument("--clients", type=int, default=4, help="usage: concurrent HTTP clients")
    p.add_argument("--workers", type=int, default=1, help="usage: API worker processes of the server")
    p.add_argument("--usage-customers", type=int, help="usage: customers owning the projects (default: projects / 10)")
    p.set_defaults(func=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    args = build_parser().parse_args(argv)
    from core.errors import UniversError

    try:
        return args.func(args) or 0
    except UniversError as exc:
        console.print(f"[bold red]{exc.code}[/]: {exc.message('en')}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
