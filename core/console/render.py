"""Pages in the reader's language: the Jinja environment, the language of a request, and the
helpers every template has (``_`` for the Babel catalogs, money and dates from CLDR, an
instant on a storefront's wall clock, a ticket's codes and the roles in words, the permission
table).

The language is the one the reader chose with the switcher (a cookie), else its account's, else
its browser's (``Accept-Language``). Templates call ``_("…")`` with a literal, which
``univers i18n extract`` finds in them (``jinja2.ext.babel_extract``); placeholders are filled
with ``.format(…)`` after the translation, and Jinja escapes the result.
"""

from __future__ import annotations

from pathlib import Path

from babel import Locale
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from litestar import Request, Response

from core import labels
from core.access import allowed
from core.console.session import Visitor
from core.i18n import format_day, format_when, negotiate, normalise, translate
from core.money import format_minor
from core.support import names
from core.support.sla import calendars

HERE = Path(__file__).parent
LANGUAGES = ("en", "cs", "de", "es", "fi", "fr", "it", "lt", "nl", "pl", "pt", "sv")
LANGUAGE_COOKIE = "univers_lang"
ENV = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]),
                  undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def language_names() -> list[tuple[str, str]]:
    return [(code, Locale.parse(code).get_display_name(code).capitalize()) for code in LANGUAGES]


NAMES = language_names()


def locale_of(request: Request, who: Visitor | None) -> str:
    chosen = normalise(request.cookies.get(LANGUAGE_COOKIE))
    if chosen and chosen.split("_")[0] in LANGUAGES:
        return chosen
    if who is not None:
        return who.account.language
    return negotiate(request.headers.get("accept-language"))


def _label(group: str, code: str | None, locale: str) -> str:
    """A code in words: an invoice's status or kind, an audit event's action, else a ticket's (core.support.names)."""
    if group == "invoice_status":
        return labels.status(code or "", locale)
    if group == "document":
        return labels.title(code or "", locale)
    if group == "audit_action":
        return labels.audit_action(code or "", locale)
    if group == "einvoice_field":
        return labels.einvoice_field(code or "", locale)
    return names.name(group, code, locale)


def page(request: Request, who: Visitor | None, template: str, *, status: int = 200, **context) -> Response:
    """A whole page, or only its ``#main`` part for an htmx request that asks for it."""
    locale = locale_of(request, who)
    roles = {who.actor.staff_role} if who is not None and who.actor.is_staff else set()
    html = ENV.get_template(template).render(
        _=lambda message: translate(message, locale),
        money=lambda minor, currency: format_minor(minor, currency, locale) if minor is not None else "",
        day=lambda value: format_day(value, locale) if value else "",
        when=lambda value, storefront: format_when(value, calendars()[storefront].zone, locale) if value else "",
        label=lambda group, code: _label(group, code, locale),
        role_names=lambda value: labels.roles(value, locale),
        may=lambda action: bool(roles) and allowed(roles, action),
        locale=locale, lang=locale.split("_")[0], languages=NAMES, who=who,
        csrf=who.csrf if who is not None else context.pop("csrf", ""), path=request.url.path, **context)
    return Response(html, status_code=status, media_type="text/html",  # Litestar adds "; charset=utf-8" to text/*
                    headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff",
                             "Referrer-Policy": "same-origin",
                             "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'"})
