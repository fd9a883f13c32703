"""Back office on accounts and services: ``staff``, ``service``, ``invoices`` and the switch ``campaign``,
each checked against the staff key's role like the API."""

from __future__ import annotations

import json

from rich.console import Console
from rich.table import Table

from core.cli.common import (
    KEY_HELP,
    parse_day,
    runtime,
    staff_actor,
)


def cmd_campaign(args) -> int:
    """The switch campaign of legacy services: invite (idempotent), or show where it stands."""
    from core.ordering import contracts
    from core.uow import unit_of_work

    rt = runtime(args)
    staff_actor(rt, args, "staff.billing", "billing:write" if args.action == "switch" else "billing:read")
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


def cmd_staff_create(args) -> int:
    """A back-office account with its role and key. The first one (no staff yet) needs no key:
    that is how an installation gets its first administrator."""
    from sqlalchemy import func, select

    from core.audit import Actor
    from core.customers.accounts import create_customer
    from core.models import Account
    from core.uow import unit_of_work

    rt = runtime(args)
    with rt.engine.connect() as conn:
        first = not conn.execute(select(func.count()).where(Account.__table__.c.is_staff.is_(True))).scalar_one()
    actor = Actor.system("cli") if first else staff_actor(rt, args, "staff.accounts", "account:write")
    with unit_of_work(rt) as conn:
        row, key = create_customer(conn, rt, {"subsidiary": next(iter(rt.storefronts)), "name": args.name, "email": args.email,
                                              "language": args.language}, actor, is_staff=True, staff_role=args.role)
    print(json.dumps({"id": row["id"], "handle": row["handle"], "role": args.role, "api_key": key}))
    return 0


def cmd_service(args) -> int:
    """Back office on one service, with the same role checks as the API."""
    from core.lifecycle import services as service_ops
    from core.renewal.dunning import restore
    from core.support import abuse
    from core.uow import unit_of_work

    rt = runtime(args)
    actor = staff_actor(rt, args, {"restore": "service.restore", "show": "service.read"}.get(args.action, "service.abuse"),
                         "services:read" if args.action == "show" else "services:write")
    with unit_of_work(rt) as conn:
        if args.action == "abuse":
            row, _case = abuse.suspend(conn, rt, actor, args.id, args.reason or "")
        elif args.action == "lift-abuse":
            row = abuse.lift(conn, rt, actor, args.id)
        elif args.action == "restore":
            restore(conn, rt, args.id, actor)
            row = service_ops.get_service(conn, actor, args.id)
        else:
            row = service_ops.get_service(conn, actor, args.id)
    print(json.dumps({k: row[k] for k in ("id", "universe", "plan_code", "state", "renewal_mode", "expires_on", "abuse_reason",
                                          "admin_account_id", "tech_account_id", "billing_account_id")}, default=str))


def cmd_invoices(args) -> int:
    from core.billing import accounting
    from core.money import format_minor

    rt = runtime(args)
    staff_actor(rt, args, "staff.reports" if args.action == "overdue" else "service.invoices", "billing:read")
    with rt.engine.connect() as conn:
        if args.action == "overdue":
            rows = accounting.overdue(conn, parse_day(args.as_of, rt.clock.today()), args.storefront)
            table = Table(title=f"Overdue on {parse_day(args.as_of, rt.clock.today())}")
            for col in ("number", "customer", "due", "days", "total", "pending payment"):
                table.add_column(col)
            for r in rows:
                table.add_row(r["number"], f"{r['handle']} {r['buyer_name']}", r["due_on"].isoformat(), str(r["days_overdue"]),
                              format_minor(r["total_minor"], r["currency"], "en"), "yes" if r["payment_pending"] else "")
        else:
            rows = accounting.find_invoices(conn, subsidiary=args.storefront, status=args.status, kind=args.kind,
                                            issued_from=parse_day(args.issued_from), issued_to=parse_day(args.issued_to),
                                            after=args.after, limit=args.limit)
            table = Table(title="Invoices")
            for col in ("id", "number", "kind", "status", "issued", "buyer", "total"):
                table.add_column(col)
            from core.billing.invoicing import number

            for r in rows:
                table.add_row(str(r["id"]), number(r["series"], r["fiscal_year"], r["seq"]), r["kind"], r["status"],
                              r["issued_on"].isoformat(), r["buyer_name"], format_minor(r["total_minor"], r["currency"], "en"))
    Console().print(table)
    return 0


def add_commands(sub) -> None:
    p = sub.add_parser("campaign", help="back office: switch legacy services to the new contract (invite, progress)")
    p.add_argument("action", choices=["switch", "progress"])
    p.add_argument("--storefront", required=True)
    p.add_argument("--universe")
    p.add_argument("--plans", help="a product range: plans whose code starts with this")
    p.add_argument("--expiring-within", type=int, metavar="DAYS")
    p.add_argument("--database")
    p.add_argument("--key", help=KEY_HELP)
    p.set_defaults(func=cmd_campaign)
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
