"""Translations with Babel.

Catalogs live in ``locales/<lang>/LC_MESSAGES/<domain>.po``: the domain ``univers`` for the
core and one domain per plugin (its universe name); a plugin shipped as its own package may
keep its catalogs in its own directory (:func:`register_domain`). ``univers i18n compile``
writes the ``.mo`` files (never committed); a catalog whose ``.mo`` is missing or older than
its ``.po`` is compiled in memory, so a fresh checkout still speaks every language. Lookups
fall back from the most specific locale to its language and then to the English source
(fr_CA → fr → en). Regional catalogs (fr_CA, en_US…) hold only what differs from the language.
"""

from __future__ import annotations

import functools
import io
import os
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_datetime, format_time, get_timezone_location
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations
from babel.units import format_unit

CORE_DOMAIN = "univers"
DEFAULT_LOCALE = "en"


SOURCE_LANGUAGE = "en"
_DOMAINS: dict[str, Path] = {}  # domain -> its locales directory, when not the project's


def locales_dir(domain: str = CORE_DOMAIN) -> Path:
    if domain in _DOMAINS:
        return _DOMAINS[domain]
    return Path(os.environ.get("UNIVERS_LOCALES_DIR") or Path(__file__).resolve().parent.parent / "locales")


def register_domain(domain: str, directory: Path) -> None:
    """Serve ``domain`` from ``directory`` (a plugin's own ``locales``)."""
    if _DOMAINS.get(domain) != directory:
        _DOMAINS[domain] = directory
        _catalog.cache_clear()


def N_(message: str) -> str:  # noqa: N802 - the gettext convention
    """Mark a string for extraction; it is translated later, in the reader's locale."""
    return message


def po_path(lang: str, domain: str) -> Path:
    return locales_dir(domain) / lang / "LC_MESSAGES" / f"{domain}.po"


@functools.cache
def _catalog(lang: str, domain: str) -> NullTranslations | None:
    po = po_path(lang, domain)
    if not po.exists():
        return None
    mo = po.with_suffix(".mo")
    if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
        with mo.open("rb") as fh:
            return Translations(fh, domain=domain)
    with po.open("rb") as fh:
        catalog = read_po(fh, locale=lang, domain=domain)
    buf = io.BytesIO()
    write_mo(buf, catalog, use_fuzzy=False)
    buf.seek(0)
    return Translations(buf, domain=domain)


def fallback_chain(locale: str | None) -> list[str]:
    """``fr_CA`` → ``["fr_CA", "fr"]``; the English source is the last resort."""
    if not locale:
        return []
    locale = locale.replace("-", "_")
    chain = [locale]
    if "_" in locale:
        chain.append(locale.split("_", 1)[0])
    return chain


def translate(message: str, locale: str | None, domain: str = CORE_DOMAIN) -> str:
    for lang in fallback_chain(locale):
        cat = _catalog(lang, domain)
        if cat is not None:
            result = cat.gettext(message)
            if result != message:
                return result
    return message


def format_months(months: int, locale: str) -> str:
    """A billing period or commitment in words: ``1 month``, ``1 an``, ``24 miesiące``."""
    unit, value = ("duration-year", months // 12) if months % 12 == 0 else ("duration-month", months)
    return format_unit(value, unit, length="long", locale=normalise(locale) or DEFAULT_LOCALE)


def format_day(day, locale: str) -> str:
    """A date as the reader writes it: ``1 déc. 2026``, ``01.12.2026``."""
    return format_date(day, format="medium", locale=normalise(locale) or DEFAULT_LOCALE)


def format_moment(moment, zone, locale: str) -> str:
    """An instant on the reader's wall clock in ``zone``, with the zone: ``05/01/2026 11:00 (Europe/Paris)``."""
    return f"{format_datetime(moment, format='short', tzinfo=zone, locale=normalise(locale) or DEFAULT_LOCALE)} ({zone})"


def format_when(moment, zone, locale: str) -> str:
    """An instant on the wall clock of ``zone``, the date in words and the time without seconds, in
    the locale's own order, and where that clock is: ``5 janv. 2026, 11:00 (heure : France)``."""
    where = Locale.parse(normalise(locale) or DEFAULT_LOCALE)
    local = moment.astimezone(zone)
    text = where.datetime_formats["medium"].format(format_time(local, "short", locale=where),
                                                    format_date(local, "medium", locale=where))
    return f"{text} ({get_timezone_location(zone, locale=where)})"


def normalise(locale: str | None) -> str | None:
    if not locale:
        return None
    try:
        return str(Locale.parse(locale.replace("-", "_")))
    except (UnknownLocaleError, ValueError):
        return None


def negotiate(accept_language: str | None, default: str = DEFAULT_LOCALE) -> str:
    """Pick the caller's locale from an ``Accept-Language`` header (quality-ordered)."""
    if not accept_language:
        return default
    ranked = []
    for index, part in enumerate(accept_language.split(",")):
        piece = part.strip().split(";")
        tag = piece[0].strip()
        q = 1.0
        for param in piece[1:]:
            if param.strip().startswith("q="):
                try:
                    q = float(param.strip()[2:])
                except ValueError:
                    q = 0.0
        if tag and tag != "*":
            ranked.append((-q, index, tag))
    for _, _, tag in sorted(ranked):
        loc = normalise(tag)
        if loc:
            return loc
    return default
