"""The fiscal chains of the Portuguese and Spanish storefronts: ``fiscal verify`` (every chain, end
to end), ``fiscal submit`` (Spain's records to the AEAT, through the transport plugin) and
``fiscal saft`` (Portugal's SAF-T (PT) 1.04 audit file of a period, checked against its XSD)."""

from __future__ import annotations

import sys
from pathlib import Path

from core.cli.common import KEY_HELP, console, parse_day, runtime, staff_actor


def cmd_fiscal(args) -> int:
    from core.billing import chain, fiscal, saft

    rt = runtime(args)
    if args.action == "submit":  # the operator's job, like the outbox: no staff key
        summary = fiscal.submit(rt, args.limit)
        console.print(f"accepted {summary.accepted}, rejected {summary.rejected}, waiting {summary.waiting}"
                      + (" (no transport plugin answers for these storefronts)" if summary.no_transport else ""))
        return 0
    staff_actor(rt, args, "staff.reports", "billing:read")
    with rt.engine.connect() as conn:
        if args.action == "verify":
            failed = 0
            for subsidiary, name in chain.chains(conn, args.storefront):
                check = chain.verify(conn, rt, subsidiary, name)
                console.print(f"{subsidiary} {name}: {check.records} records, "
                              + ("[green]verified[/]" if check.ok else f"[bold red]{len(check.problems)} problem(s)[/]"))
                for position, problem in check.problems[:20]:
                    console.print(f"  position {position}: {problem}")
                failed += not check.ok
            return 1 if failed else 0
        start, end = parse_day(args.issued_from), parse_day(args.issued_to)
        if start is None or end is None:
            console.print("[bold red]fiscal saft[/]: give the period, --from and --to")
            return 2
        xml = saft.export(conn, rt, args.storefront or "PT", start, end)
    problems = saft.validate(xml)
    if args.output:
        Path(args.output).write_bytes(xml)
    else:
        sys.stdout.buffer.write(xml)
    for problem in problems[:20]:
        console.print(f"[bold red]SAF-T (PT) XSD[/]: {problem}")
    return 1 if problems else 0


def add_commands(sub) -> None:
    p = sub.add_parser("fiscal", help="back office: verify the fiscal chains (PT, ES), submit ES records, export PT SAF-T")
    p.add_argument("action", choices=["verify", "submit", "saft"])
    p.add_argument("--storefront", help="verify: only this storefront's chains; saft: the storefront (PT)")
    p.add_argument("--from", dest="issued_from", help="saft: first day of the period (YYYY-MM-DD)")
    p.add_argument("--to", dest="issued_to", help="saft: last day of the period")
    p.add_argument("--output", "-o", help="saft: the file to write (default: standard output)")
    p.add_argument("--limit", type=int, default=1000, help="submit: at most this many records")
    p.add_argument("--database")
    p.add_argument("--key", help=KEY_HELP)
    p.set_defaults(func=cmd_fiscal)
