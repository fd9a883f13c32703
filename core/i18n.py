"""Translations with Babel.

Catalogs live in ``locales/<lang>/LC_MESSAGES/<domain>.po``: the domain ``univers`` for the
core and one domain per plugin (its universe name). They are compiled in memory when first
used, so no ``.mo`` file is ever committed or forgotten. Lookups fall back from the most
specific locale to its language and then to the English source (fr_CA → fr → en).
"""

from __future__ import annotations

import functools
import io
import os
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

CORE_DOMAIN = "univers"
DEFAULT_LOCALE = "en"


def locales_dir() -> Path:
    return Path(os.environ.get("UNIVERS_LOCALES_DIR") or Path(__file__).resolve().parent.parent / "locales")


def N_(message: str) -> str:  # noqa: N802 - the gettext convention
    """Mark a string for extraction; it is translated later, in the reader's locale."""
    return message


@functools.cache
def _catalog(lang: str, domain: str) -> NullTranslations | None:
    po = locales_dir() / lang / "LC_MESSAGES" / f"{domain}.po"
    if not po.exists():
        return None
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
            if result != message or lang == DEFAULT_LOCALE:
                return result
    return message


def available_locales(domain: str = CORE_DOMAIN) -> list[str]:
    base = locales_dir()
    if not base.exists():
        return [DEFAULT_LOCALE]
    found = sorted(p.parent.parent.name for p in base.glob(f"*/LC_MESSAGES/{domain}.po"))
    return found or [DEFAULT_LOCALE]


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
