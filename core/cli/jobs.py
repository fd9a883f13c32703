"""The operator's commands: ``serve`` (the main job), ``migrate``, ``worker``, ``outbox``, ``renew``,
``usage bill``, ``demo`` and ``bench``. They need no staff key: whoever holds the machine runs them."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from pathlib import Path

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from core.cli.common import (
    console,
    runtime,
)
from core.clock import FrozenClock


def cmd_serve(args) -> int:
    import uvicorn

    from core.api.app import create_app
    from core.demo import announce, seed

    rt = runtime(args)
    if rt.settings.demo:
        keys_file = rt.settings.data_dir / "demo-keys.json"
        keys = seed(rt, keys_file)
        if keys:
            console.print(f"[green]demo data seeded[/]; API keys written to {keys_file}")
            for line in announce(keys, keys_file):  # the customers' keys; the administrator's only in the file
                console.print(line, highlight=False)
    host, port = args.host or rt.settings.host, args.port or rt.settings.port
    workers = max(1, args.workers or rt.settings.workers)
    # with JSON logs, standard error carries JSON lines only: the banner is a log line too
    say = logging.getLogger("univers.serve").info if rt.settings.log_format == "json" else console.print
    say(f"Univers API on http://{host}:{port}  (OpenAPI: /schema, /schema/openapi.json); database {rt.settings.engine_name}"
        f"; {workers} worker(s)")
    where = f" (the demo's are in {rt.settings.data_dir / 'demo-keys.json'})" if rt.settings.demo else ""
    say(f"Manager, the web console: http://{host}:{port}/manager/sign-in, with an API key{where}; "
        f"staff keys open /backoffice/")
    if workers > 1:  # each worker process builds its own runtime (core.asgi), on the schema migrated above
        rt.close()
        os.environ["UNIVERS_SCHEDULER"] = "1" if rt.settings.scheduler and not args.no_scheduler else "0"
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_folder(rt.settings.data_dir))
        uvicorn.run("core.asgi:create", factory=True, host=host, port=port, log_level="info", workers=workers,
                    log_config=None, access_log=False)  # logs as core.logs configured them; the API writes its own access line
        return 0
    app = create_app(rt, scheduler=rt.settings.scheduler and not args.no_scheduler)
    uvicorn.run(app, host=host, port=port, log_level="info", workers=1, log_config=None, access_log=False)
    return 0


def metrics_folder(data_dir) -> Path:
    """Where the API workers write their counters for /metrics (prometheus_client's multiprocess
    mode): ``$PROMETHEUS_MULTIPROC_DIR``, else ``<data dir>/prometheus``, emptied first, since
    the files of processes that are gone would add their old counts."""
    folder = Path(os.environ.get("PROMETHEUS_MULTIPROC_DIR") or Path(data_dir) / "prometheus")
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):
        stale.unlink()
    return folder


def cmd_migrate(args) -> int:
    rt = runtime(args)
    console.print(f"schema up to date on {rt.settings.engine_name}")
    return 0


def cmd_renew(args) -> int:
    from core.renewal.run import run_renewal

    try:
        at = dt.date.fromisoformat(args.at) if args.at else None
    except ValueError:
        console.print(f"[bold red]invalid_date[/]: {args.at!r} is not a date; expected YYYY-MM-DD")
        return 2
    rt = runtime(args, FrozenClock(at) if at else None)
    with Progress(TextColumn("renewal {task.fields[day]}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=False) as progress:
        task = progress.add_task("renew", total=None, day=(at or rt.clock.today()).isoformat())
        summary = run_renewal(rt, at, progress=lambda n: progress.advance(task, n))
    print(json.dumps(summary.as_dict()))
    return 0


def cmd_usage_bill(args) -> int:
    """Invoice a finished month of pay-as-you-go usage (the scheduler does it daily for the previous month)."""
    from core.errors import InvalidInput
    from core.usage.metering import parse_period, run_usage_billing

    rt = runtime(args)
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

    rt = runtime(args)
    print(json.dumps({name: vars(stats) for name, stats in run_queues(rt, limit=args.limit).items()}))
    return 0


def cmd_worker(args) -> int:
    """Run the scheduler alone (no API): one more instance sharing the work."""
    import time

    from core.scheduler import start_scheduler

    rt = runtime(args)
    scheduler = start_scheduler(rt)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        scheduler.shutdown()
    return 0


def cmd_demo(args) -> int:
    from core.demo import announce, seed

    rt = runtime(args)
    keys_file = rt.settings.data_dir / "demo-keys.json"
    keys = seed(rt, keys_file)
    print("\n".join(announce(keys, keys_file)) if keys else "the demo data is already there; "
          f"its keys are in {keys_file}")
    return 0


def cmd_bench(args) -> int:
    if args.what == "renewal":
        from bench.renewal import main as bench_renewal

        if len(args.services) != 1:
            console.print("[bold red]bench renewal[/] measures one size at a time")
            return 2
        return bench_renewal(args.services[0], args.database, args.output, profile=args.profile, chunk=args.chunk)
    if args.what == "api":
        from bench.api import main as bench_api

        return bench_api(args.services, args.database, args.output, customers=args.customers, requests=args.requests)
    if args.what == "usage":
        from bench.usage import main as bench_usage

        return bench_usage(args.records or 1_000_000, args.projects, args.database, args.output, clients=args.clients, workers=args.workers,
                           customers=args.usage_customers)
    if args.what == "checkout":
        from bench.checkout import main as bench_checkout

        return bench_checkout(args.database, args.output, workers=args.workers, clients=args.clients, seconds=args.seconds)
    if args.what == "console":
        from bench.console import main as bench_console

        return bench_console(args.services, args.database, args.output,
                             requests=args.requests if args.requests != 1000 else 300)
    if args.what == "logs":
        from bench.logs import main as bench_logs

        sizes = args.services if args.services != [100_000] else [10_000, 100_000]
        return bench_logs(args.records or 100_000, sizes, args.database, args.output,
                          clients=args.clients, requests=args.requests if args.requests != 1000 else 300)
    if args.what == "support":
        from bench.support import main as bench_support

        return bench_support(args.tickets, args.database, args.output, job_tickets=args.job_tickets,
                             requests=args.requests if args.requests != 1000 else 300)
    return 2


def add_commands(sub) -> None:
    p = sub.add_parser("serve", help="API + scheduler (the main job)")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--no-scheduler", action="store_true")
    p.add_argument("--workers", type=int, help="API worker processes (default: $UNIVERS_WORKERS or 1)")
    p.set_defaults(func=cmd_serve)
    p = sub.add_parser("migrate", help="apply the Alembic migrations")
    p.add_argument("--database")
    p.set_defaults(func=cmd_migrate)
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
    p = sub.add_parser("demo", help="seed demo data (once)")
    p.set_defaults(func=cmd_demo)
    p = sub.add_parser("bench", help="benchmarks (figures appended to bench/results.jsonl)")
    p.add_argument("what", choices=["renewal", "api", "usage", "support", "console", "checkout", "logs"])
    p.add_argument("--services", type=lambda v: [int(n) for n in v.split(",")], default=[100_000],
                   help="api, console: several sizes, comma-separated, are measured side by side; "
                        "logs: the entries of the service whose page is timed (default 10000,100000)")
    p.add_argument("--database", default="sqlite:///var/bench.db")
    p.add_argument("--output", default="bench/results.jsonl")
    p.add_argument("--customers", type=int, default=10_000, help="api: customers the services are spread across")
    p.add_argument("--requests", type=int, default=1000, help="api: measured requests per endpoint (after a warm-up)")
    p.add_argument("--records", type=int,
                   help="usage: records posted, in batches of 10,000 (default 1,000,000); logs: entries posted (default 100,000)")
    p.add_argument("--projects", type=int, default=1000, help="usage: projects the records are spread across")
    p.add_argument("--clients", type=int, default=4, help="usage, checkout: concurrent HTTP clients")
    p.add_argument("--workers", type=int, default=1, help="usage, checkout: API worker processes of the server")
    p.add_argument("--seconds", type=float, default=10.0, help="checkout: how long the clients order")
    p.add_argument("--usage-customers", type=int, help="usage: customers owning the projects (default: projects / 10)")
    p.add_argument("--tickets", type=lambda v: [int(n) for n in v.split(",")], default=[10_000, 1_000_000],
                   help="support: the sizes a ticket list page is measured at, side by side")
    p.add_argument("--profile", action="store_true",
                   help="renewal: the time of each statement (and EXPLAIN ANALYZE on PostgreSQL), on stderr")
    p.add_argument("--chunk", type=int, help="renewal: billing accounts per transaction (default: the setting)")
    p.add_argument("--job-tickets", type=int, default=100_000, help="support: open tickets for the SLA job (0: skip it)")
    p.set_defaults(func=cmd_bench)
