"""The renewal forecast as a chart: hand-written SVG, in the reader's language.

One panel per currency (currencies are never added together). Each day has a bar above the
axis for what renews, stacked by universe, and a hatched red bar below it for what stops
(churn), on the same scale. Dates and amounts are written with Babel in the reader's locale;
every word is a msgid of the core domain. Hovering a bar shows its figures, storefront by
storefront (SVG ``<title>``). Universes are named by their code: the project has no translated
universe names.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

from babel import Locale
from babel.dates import format_skeleton
from babel.numbers import (
    format_compact_currency,
    format_decimal,
    get_currency_name,
    parse_pattern,
)

from core import labels
from core.i18n import DEFAULT_LOCALE, N_, format_day, normalise, translate
from core.money import format_minor, from_minor, precision
from core.renewal.forecast import Forecast

TITLE = N_("Renewal forecast: {period}")
DESCRIPTION = N_("One panel per currency. Bars above the axis show what renews each day, stacked by universe; "
                 "hatched red bars below the axis show the services that stop that day.")
RENEWING = N_("Renewing, by universe")
STOPPING = N_("Stopping (churn)")
Y_AXIS = N_("Net amount per day, excluding tax")
X_AXIS = N_("Renewal date")
PANEL_TOTALS = N_("Renewing {renewing} · stopping {stopping}")
RENEWALS_TIP = N_("Renewals: {count}, {amount}")
STOPPING_TIP = N_("Stopping: {count}, {amount}")
NOTHING = N_("Nothing renews or stops in this period.")

# Okabe-Ito colours, told apart by colour-blind readers too; red is kept for churn.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#F0E442", "#000000", "#999999")
CHURN = "#C0392B"
INK, MUTED, GRID, AXIS = "#1a1a1a", "#555555", "#e3e3e3", "#444444"
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"
WIDTH, RIGHT = 1000, 24
LEGEND_TOP, PANELS_TOP = 52, 86
PLOT_HEIGHT, PANEL_HEAD, PANEL_FOOT = 220, 34, 44
PANEL = PANEL_HEAD + PLOT_HEIGHT + PANEL_FOOT


@dataclass
class _Panel:
    currency: str
    up: dict[dt.date, dict[str, list[dict]]]  # day → universe → its storefronts' rows
    down: dict[dt.date, list[dict]]  # day → storefronts' rows
    ticks: list[int]
    tick_labels: list[str]
    renewing_minor: int
    stopping_minor: int


def render_svg(report: Forecast, locale: str) -> str:
    """The forecast as a standalone SVG document."""
    locale = normalise(locale) or DEFAULT_LOCALE
    universes = sorted({r["universe"] for r in report.rows})
    colours = {u: PALETTE[i % len(PALETTE)] for i, u in enumerate(universes)}
    panels = [_prepare(report, currency, locale) for currency in report.currencies]
    widest = max((len(text) for p in panels for text in p.tick_labels), default=4)
    left = max(84, 40 + round(_text_width(" " * widest)))  # room for the amount ticks and the axis name
    title = translate(TITLE, locale).format(period=labels.period(report.start, report.end, locale))
    height = PANELS_TOP + max(len(panels), 1) * PANEL + 10
    out = [
        (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" '
         f'font-family={quoteattr(FONT)} font-size="12" role="img" aria-labelledby="title desc">'),
        f'<title id="title">{escape(title)}</title>',
        f'<desc id="desc">{escape(translate(DESCRIPTION, locale))}</desc>',
        ('<defs><pattern id="churn" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">'
         f'<rect width="6" height="6" fill="{CHURN}" fill-opacity="0.25"/>'
         f'<line x1="0" y1="0" x2="0" y2="6" stroke="{CHURN}" stroke-width="3"/></pattern></defs>'),
        f'<rect width="{WIDTH}" height="{height}" fill="#ffffff"/>',
        f'<text x="{left}" y="30" font-size="20" font-weight="600" fill="{INK}">{escape(title)}</text>',
    ]
    out += _legend(universes, colours, left, locale)
    if not panels:
        out.append(f'<text x="{WIDTH / 2}" y="{PANELS_TOP + PLOT_HEIGHT / 2}" text-anchor="middle" fill="{MUTED}" '
                   f'font-size="14">{escape(translate(NOTHING, locale))}</text>')
    for index, panel in enumerate(panels):
        out += _draw(report, panel, colours, left, PANELS_TOP + index * PANEL, locale)
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _legend(universes: list[str], colours: dict[str, str], left: int, locale: str) -> list[str]:
    heading = translate(RENEWING, locale)
    out = [f'<g class="legend" transform="translate({left},{LEGEND_TOP})">',
           f'<text x="0" y="12" fill="#333333">{escape(heading)}</text>']
    x = 10 + _text_width(heading)
    for universe in universes:
        out.append(f'<rect x="{x:.0f}" y="1" width="14" height="14" rx="2" fill="{colours[universe]}"/>'
                   f'<text x="{x + 20:.0f}" y="12" fill="#333333">{escape(universe)}</text>')
        x += 34 + _text_width(universe)
    x += 16
    out.append(f'<rect x="{x:.0f}" y="1" width="14" height="14" rx="2" fill="url(#churn)" stroke="{CHURN}"/>'
               f'<text x="{x + 20:.0f}" y="12" fill="#333333">{escape(translate(STOPPING, locale))}</text></g>')
    return out


def _prepare(report: Forecast, currency: str, locale: str) -> _Panel:
    up: dict[dt.date, dict[str, list[dict]]] = {}
    down: dict[dt.date, list[dict]] = {}
    renewing = stopping = 0
    for r in report.rows:
        if r["currency"] != currency:
            continue
        if r["renewing"]:
            up.setdefault(r["day"], {}).setdefault(r["universe"], []).append(r)
        if r["stopping"]:
            down.setdefault(r["day"], []).append(r)
        renewing += r["renewing_minor"]
        stopping += r["stopping_minor"]
    high = max((sum(r["renewing_minor"] for part in day.values() for r in part) for day in up.values()), default=0)
    low = max((sum(r["stopping_minor"] for r in day) for day in down.values()), default=0)
    ticks = _ticks(-low, high, currency)
    return _Panel(currency, up, down, ticks, _tick_labels(ticks, currency, locale), renewing, stopping)


def _draw(report: Forecast, panel: _Panel, colours: dict[str, str], left: int, y: int, locale: str) -> list[str]:
    currency, ticks = panel.currency, panel.ticks
    plot_top, plot_w = y + PANEL_HEAD, WIDTH - left - RIGHT
    axis_y = plot_top + PLOT_HEIGHT
    slot = plot_w / report.days
    bar = max(slot * 0.8, 1.0)

    def ypos(value: int) -> float:
        return plot_top + (ticks[-1] - value) * PLOT_HEIGHT / (ticks[-1] - ticks[0])

    def xpos(day: dt.date) -> float:
        return left + (day - report.start).days * slot + (slot - bar) / 2

    def rect(day: dt.date, top: float, bottom: float, fill: str, tip: list[str], extra: str = "", least: float = 0.5) -> str:
        return (f'<rect x="{xpos(day):.2f}" y="{top:.2f}" width="{bar:.2f}" height="{max(bottom - top, least):.2f}" '
                f'fill="{fill}"{extra}><title>{escape(chr(10).join(tip))}</title></rect>')

    def money(minor: int) -> str:
        return format_minor(minor, currency, locale)

    name = get_currency_name(currency, locale=locale)
    name = name[:1].upper() + name[1:]  # a heading: "Euro", not "euro"
    totals = translate(PANEL_TOTALS, locale).format(renewing=money(panel.renewing_minor), stopping=money(panel.stopping_minor))
    out = [f'<g class="panel" data-currency="{escape(currency)}">',
           f'<text x="{left}" y="{y + 18}" font-size="15" font-weight="600" fill="{INK}">{escape(name)} ({escape(currency)})</text>',
           f'<text x="{WIDTH - RIGHT}" y="{y + 18}" text-anchor="end" fill="#333333">{escape(totals)}</text>']
    for value, text in zip(ticks, panel.tick_labels):
        ty = ypos(value)
        out.append(f'<line x1="{left}" x2="{WIDTH - RIGHT}" y1="{ty:.1f}" y2="{ty:.1f}" stroke="{AXIS if value == 0 else GRID}"/>'
                   f'<text x="{left - 8}" y="{ty + 4:.1f}" text-anchor="end" fill="{MUTED}">{escape(text)}</text>')
    out.append(f'<text transform="translate(16,{plot_top + PLOT_HEIGHT / 2:.0f}) rotate(-90)" text-anchor="middle" '
               f'fill="{MUTED}" font-size="11">{escape(translate(Y_AXIS, locale))}</text>')
    for day, universes in sorted(panel.up.items()):
        base = 0
        for universe, parts in sorted(universes.items()):
            amount = sum(r["renewing_minor"] for r in parts)
            if not amount:
                continue
            tip = [format_day(day, locale), f"{universe} · " + translate(RENEWALS_TIP, locale).format(
                count=format_decimal(sum(r["renewing"] for r in parts), locale=locale), amount=money(amount))]
            tip += [f"{r['subsidiary']}: {money(r['renewing_minor'])}" for r in sorted(parts, key=lambda r: r["subsidiary"])]
            out.append(rect(day, ypos(base + amount), ypos(base), colours[universe], tip))
            base += amount
    for day, parts in sorted(panel.down.items()):
        amount = sum(r["stopping_minor"] for r in parts)
        tip = [format_day(day, locale), translate(STOPPING_TIP, locale).format(
            count=format_decimal(sum(r["stopping"] for r in parts), locale=locale), amount=money(amount))]
        tip += [f"{r['universe']} · {r['subsidiary']}: {money(r['stopping_minor'])}"
                for r in sorted(parts, key=lambda r: (r["universe"], r["subsidiary"]))]
        out.append(rect(day, ypos(0), ypos(-amount), "url(#churn)", tip, f' stroke="{CHURN}" stroke-width="0.6"', 2.0))  # a day of churn never vanishes
    out.append(f'<line x1="{left}" x2="{left}" y1="{plot_top}" y2="{axis_y}" stroke="{AXIS}"/>')
    for day in _day_ticks(report.start, report.days):
        tx = left + (day - report.start).days * slot + slot / 2
        out.append(f'<line x1="{tx:.1f}" x2="{tx:.1f}" y1="{axis_y}" y2="{axis_y + 5}" stroke="{AXIS}"/>'
                   f'<text x="{tx:.1f}" y="{axis_y + 18}" text-anchor="middle" fill="{MUTED}">'
                   f'{escape(format_skeleton("MMMd", day, locale=locale))}</text>')
    out.append(f'<text x="{left + plot_w / 2:.0f}" y="{axis_y + 36}" text-anchor="middle" fill="{MUTED}" font-size="11">'
               f'{escape(translate(X_AXIS, locale))}</text>')
    out.append("</g>")
    return out


def _ticks(low: int, high: int, currency: str) -> list[int]:
    """Round amounts (minor units), about five steps from at most ``low`` to at least ``high``,
    zero included."""
    unit = 10 ** precision(currency)
    span = max(high - low, unit)  # at least one major unit
    raw = span / 5
    magnitude = 10 ** math.floor(math.log10(raw))
    steps = (1, 2, 5, 10) if span >= 1_000_000 * unit else (1, 2, 2.5, 5, 10)  # short forms (1.5M) keep one decimal
    step = max(int(next(m * magnitude for m in steps if m * magnitude >= raw and m * magnitude % 1 == 0)), 1)
    first = -math.ceil(-low / step) * step if low < 0 else 0
    last = math.ceil(high / step) * step if high > 0 else 0
    if first == last:
        last = first + step
    return list(range(first, last + 1, step))


def _tick_labels(ticks: list[int], currency: str, locale: str) -> list[str]:
    """Amounts as the locale writes them, with no more decimals than the step needs (``€40,000``,
    ``40.000 €``, ``2,5 €``); short forms from a million (``€1.5M``, ``1,5 Mio. €``)."""
    if from_minor(max(abs(t) for t in ticks), currency) >= 1_000_000:
        def short(digits: int) -> list[str]:
            return [format_compact_currency(from_minor(t, currency), currency, locale=locale, fraction_digits=digits)
                    for t in ticks]

        for digits in range(3):  # the fewest decimals that round nothing (one more would change no label)
            if short(digits) == short(digits + 1):
                return short(digits)
    step, scale = ticks[1] - ticks[0], precision(currency)
    digits = scale
    while digits and step % 10 ** (scale - digits + 1) == 0:
        digits -= 1
    pattern = parse_pattern(Locale.parse(locale).currency_formats["standard"])
    pattern.frac_prec = (digits, digits)
    return [pattern.apply(from_minor(t, currency), locale, currency=currency, currency_digits=False) for t in ticks]


def _day_ticks(start: dt.date, days: int) -> list[dt.date]:
    """Every day for a fortnight, every week up to two months, the first of each month beyond."""
    if days <= 14:
        return [start + dt.timedelta(days=i) for i in range(days)]
    if days <= 62:
        return [start + dt.timedelta(days=i) for i in range(0, days, 7)]
    firsts = [start + dt.timedelta(days=i) for i in range(days) if (start + dt.timedelta(days=i)).day == 1]
    return firsts if firsts and (firsts[0] - start).days <= 10 else [start, *firsts]


def _text_width(text: str) -> float:
    """About how wide a 12px label is (no font metrics at hand)."""
    return 6.6 * len(text)
