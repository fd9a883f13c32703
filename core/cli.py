"""The ``univers`` command: serve, migrate, renew, outbox, plugins, demo, bench.

Thin like the API: it parses arguments and calls the same domain operations.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

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
    app = create_app(rt, scheduler=rt.settings.scheduler and not args.no_scheduler)
    host, port = args.host or rt.settings.host, args.port or rt.settings.port
    console.print(f"Univers API on http://{host}:{port}  (OpenAPI: /schema, /schema/openapi.json); database {rt.settings.engine_name}")
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


def cmd_outbox(args) -> int:
    from core.outbox import run_outbox

    rt = _runtime(args)
    stats = run_outbox(rt, limit=args.limit)
    print(json.dumps(stats.__dict__))
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


def cmd_demo(args) -> int:
    from core.demo import seed

    rt = _runtime(args)
    keys = seed(rt, rt.settings.data_dir / "demo-keys.json")
    print(json.dumps(keys or {}, indent=1))
    return 0


def cmd_bench(args) -> int:
    from bench.renewal import main as bench_renewal

    if args.what == "renewal":
        return bench_renewal(args.services, args.database, args.output)
    return 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="univers", description="Sell, bill and renew cloud and hosting services.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="API + scheduler (the main job)")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--no-scheduler", action="store_true")
    p.set_defaults(func=cmd_serve)
    p = sub.add_parser("migrate", help="apply the Alembic migrations")
    p.add_argument("--database")
    p.set_defaults(func=cmd_migrate)
    p = sub.add_parser("plugins", help="list plugins and what they contribute")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_plugins)
    p = sub.add_parser("renew", help="run the renewal and dunning for a date")
    p.add_argument("--at", help="YYYY-MM-DD (default: today)")
    p.add_argument("--database")
    p.set_defaults(func=cmd_renew)
    p = sub.add_parser("outbox", help="execute due provisioning actions")
    p.add_argument("--limit", type=int, default=1000)
    p.set_defaults(func=cmd_outbox)
    p = sub.add_parser("worker", help="run the scheduler without the API")
    p.set_defaults(func=cmd_worker)
    p = sub.add_parser("demo", help="seed demo data (once)")
    p.set_defaults(func=cmd_demo)
    p = sub.add_parser("bench", help="benchmarks (figures appended to bench/results.jsonl)")
    p.add_argument("what", choices=["renewal"])
    p.add_argument("--services", type=int, default=100_000)
    p.add_argument("--database", default="sqlite:///var/bench.db")
    p.add_argument("--output", default="bench/results.jsonl")
    p.set_defaults(func=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    from core.errors import UniversError

    try:
        return args.func(args) or 0
    except UniversError as exc:
        console.print(f"[bold red]{exc.code}[/]: {exc.message('en')}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
