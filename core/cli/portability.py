"""A customer's data in and out: ``export --customer`` (the univers-export JSON document), ``import``
of that document as a new account, and ``import services`` of the old billing system's CSV."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from core.cli.common import (
    KEY_HELP,
    console,
    runtime,
    staff_actor,
)


def cmd_export_account(args) -> int:
    """A customer's data as the ``univers-export`` JSON document (see core/portability/export.py)."""
    import msgspec
    from sqlalchemy import or_, select

    from core.models import Account
    from core.portability import export

    rt = runtime(args)
    staff_actor(rt, args, "staff.customers", "account:read")
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
    SF``: the legacy import (core/portability/legacy.py)."""
    from core.customers import accounts as customers
    from core.portability import account_import
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
    rt = runtime(args)
    actor = staff_actor(rt, args, "staff.accounts", "account:write")
    with unit_of_work(rt) as conn:
        result = account_import.import_account(conn, rt, Path(args.file).read_bytes(), actor)
        key = customers.issue_key(conn, rt, result.account_id, name="imported") if args.issue_key else None
    print(json.dumps({"account_id": result.account_id, "handle": result.handle, "handle_changed": result.handle_changed,
                      "remapped_contacts": result.remapped_contacts, "counts": result.counts,
                      **({"api_key": key} if key else {})}, indent=1))
    return 0


def _import_services(args) -> int:
    """The legacy import: every problem of the file on its own line (exit 1), or the counts."""
    from core.errors import InvalidInput
    from core.i18n import normalise, translate
    from core.portability import legacy
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
    rt = runtime(args)
    actor = staff_actor(rt, args, "staff.accounts", "account:write")
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


def add_commands(sub) -> None:
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
