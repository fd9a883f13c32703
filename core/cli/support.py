"""Support from the terminal: ``support queue`` (a staff queue, most urgent first), ``support sla``
(the SLA job once, as the scheduler runs it every minute) and ``support report`` (response times,
breaches and credits per level)."""

from __future__ import annotations

import json

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from core.cli.common import KEY_HELP, console, parse_day, runtime, staff_actor


def cmd_support_queue(args) -> int:
    """A queue's tickets whose clocks run, closest to their deadline first; or one status's, by id."""
    from core.support import tickets

    rt = runtime(args)
    actor = staff_actor(rt, args, "ticket.read", "services:read")
    with rt.engine.connect() as conn:
        rows, _ = tickets.queue_page(conn, actor, args.queue, status=args.status, limit=args.limit)
    if args.json:
        print(json.dumps(rows, default=str))
        return 0
    table = Table(title=f"{args.queue} queue, {rt.clock.now():%Y-%m-%d %H:%M} UTC")
    for col in ("id", "service", "level", "priority", "status", "due (UTC)", "alert", "subject"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(str(r["id"]), str(r["service_id"]), r["level_code"], r["priority"], r["status"],
                      f"{r['due_at']:%Y-%m-%d %H:%M}" if r["due_at"] else "", str(r["alert_level"] or ""), r["subject"])
    Console().print(table)
    return 0


def cmd_support_sla(args) -> int:
    """Record breaches and raise warnings and escalations once, as the scheduler does every minute."""
    from core.support.sla import run_sla

    rt = runtime(args)
    with Progress(TextColumn("SLA clocks"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console,
                  transient=False) as progress:
        task = progress.add_task("sla", total=None)
        summary = run_sla(rt, progress=lambda n: progress.advance(task, n))
    print(json.dumps(summary.as_dict()))
    return 0


def cmd_support_report(args) -> int:
    """A queue's tickets opened in the period: per storefront, universe and level, the times to first
    response and to resolution (median, 90th percentile), the breaches and the credits."""
    from core.money import format_minor
    from core.support.reports import support_report

    rt = runtime(args)
    staff_actor(rt, args, "staff.support", "services:read")
    first, last = parse_day(args.opened_from), parse_day(args.opened_to)
    with rt.engine.connect() as conn:
        rows = support_report(conn, rt, first, last, args.queue)
    if args.json:
        print(json.dumps(rows))
        return 0
    table = Table(title=f"{args.queue} tickets opened {first} – {last}; minutes in each level's hours")
    table.add_column("level", no_wrap=True)
    for col in ("opened", "answered", "solved", "1st resp. p50/p90", "resolution p50/p90", "breaches", "credits"):
        table.add_column(col, overflow="fold")
    for r in rows:
        fr, rs = r["first_response_minutes"], r["resolution_minutes"]
        table.add_row(f"{r['storefront']} {r['level']}", str(r["opened"]), str(r["answered"]), str(r["solved"]),
                      f"{fr['p50']}/{fr['p90']}" if fr["count"] else "", f"{rs['p50']}/{rs['p90']}" if rs["count"] else "",
                      " ".join(f"{t}:{n}" for t, n in r["breaches"].items() if n),
                      " ".join(format_minor(v, c, "en_GB") for c, v in r["credits"].items()))
    Console().print(table)
    return 0


def add_commands(sub) -> None:
    p = sub.add_parser("support", help="support: a staff queue of tickets, the SLA job once, or a report")
    ssub = p.add_subparsers(dest="action", required=True)
    q = ssub.add_parser("queue", help="a queue's tickets whose clocks run, closest to their deadline first (or --status S)")
    q.add_argument("--queue", choices=["support", "abuse"], default="support")
    q.add_argument("--status", choices=["new", "open", "waiting_for_customer", "waiting_for_third_party", "solved",
                                        "closed"])
    q.add_argument("--limit", type=int, default=200, help="at most this many, 1 to 200")
    q.add_argument("--json", action="store_true")
    q.add_argument("--database")
    q.add_argument("--key", help=KEY_HELP)
    q.set_defaults(func=cmd_support_queue)
    s = ssub.add_parser("sla", help="record breaches, raise warnings and escalations (the scheduler does it every minute)")
    s.add_argument("--database")
    s.set_defaults(func=cmd_support_sla)
    r = ssub.add_parser("report", help="response times, breaches and credits per level, for the tickets opened in a period")
    r.add_argument("--from", dest="opened_from", required=True, help="YYYY-MM-DD, the first day (UTC)")
    r.add_argument("--to", dest="opened_to", required=True, help="YYYY-MM-DD, the last day, included")
    r.add_argument("--queue", choices=["support", "abuse"], default="support")
    r.add_argument("--json", action="store_true")
    r.add_argument("--database")
    r.add_argument("--key", help=KEY_HELP)
    r.set_defaults(func=cmd_support_report)
