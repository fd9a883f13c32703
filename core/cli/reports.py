"""Back-office figures: ``report revenue``, ``report forecast`` and ``export journal|fec`` (a customer's
data, ``export --customer``, is in core/cli/portability.py)."""

from __future__ import annotations

import datetime as dt
import json
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

from core.cli.common import (
    KEY_HELP,
    console,
    parse_day,
    runtime,
    staff_actor,
)
from core.cli.portability import cmd_export_account


def cmd_report(args) -> int:
    from core.billing import accounting
    from core.money import format_minor

    start, end = parse_day(args.issued_from), parse_day(args.issued_to)
    rt = runtime(args)
    staff_actor(rt, args, "staff.reports", "billing:read")
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

    from core.i18n import normalise
    from core.money import format_minor
    from core.renewal import forecast

    fmt = args.format or (Path(args.output).suffix.lstrip(".").lower() if args.output else "table")
    if fmt not in FORECAST_FORMATS or (fmt == "table" and args.output):
        console.print(f"[bold red]invalid_format[/]: {fmt!r}; with --output, use --format json, csv or svg "
                      "(or a file ending in .json, .csv or .svg)")
        return 2
    locale = normalise(args.locale) or "en"
    forecast.check_days(args.days)
    start = parse_day(args.start)
    rt = runtime(args)
    staff_actor(rt, args, "staff.reports", "billing:read")
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

        from core.api.reports import forecast_read

        text = msgspec.json.encode(forecast_read(report, locale)).decode() + "\n"
    elif fmt == "csv":
        text = forecast.forecast_csv(report)
    else:
        from core.renewal.forecast_chart import render_svg

        text = render_svg(report, locale)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        console.print(f"forecast {report.start} – {report.end} ({len(report.rows)} rows) → {args.output}")
    else:
        sys.stdout.write(text)
    return 0


def cmd_export(args) -> int:

    from core.billing import accounting

    if args.customer:
        return cmd_export_account(args)
    if args.what is None:
        console.print("[bold red]export[/]: say what: journal, fec, or --customer HANDLE_OR_ID")
        return 2
    rt = runtime(args)
    staff_actor(rt, args, "staff.reports", "billing:read")
    if args.what == "fec":
        start, end, storefront = dt.date(args.year, 1, 1), dt.date(args.year, 12, 31), "FR"
        name = accounting.fec_name(rt.storefronts["FR"].legal_entity["registration_id"], args.year)
    else:
        start, end, storefront = parse_day(args.issued_from), parse_day(args.issued_to), args.storefront
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


def add_commands(sub) -> None:
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
