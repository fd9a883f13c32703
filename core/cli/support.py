"""Support from the terminal: ``support queue`` (a staff queue, most urgent first) and ``support sla``
(the SLA job once, as the scheduler runs it every minute)."""

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

from core.cli.common import KEY_HELP, console, runtime, staff_actor


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


def add_commands(sub) -> None:
    p = sub.add_parser("support", help="support: a staff queue of tickets, or the SLA job once")
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
