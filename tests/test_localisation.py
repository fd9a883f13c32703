"""Money, dates and durations as each locale writes them (CLDR through Babel), and translations
that fall back sensibly (fr_CA → fr → English)."""

from __future__ import annotations

import datetime as dt

import pytest
from babel.dates import format_date
from babel.numbers import format_currency

from core.i18n import format_day, format_months, translate
from core.labels import period
from core.money import format_minor

# Golden values, copied from CLDR 47 as Babel renders it (NBSP = \xa0, narrow NBSP = \u202f).
GOLDEN = [
    ("fr_FR", "EUR", "1\u202f234,56\xa0€", "1 déc. 2026", "1\xa0mois", "2 ans"),
    ("de_DE", "EUR", "1.234,56\xa0€", "01.12.2026", "1 Monat", "2 Jahre"),
    ("pl_PL", "PLN", "1\xa0234,56\xa0zł", "1 gru 2026", "1 miesiąc", "2 lata"),
    ("cs_CZ", "CZK", "1\xa0234,56\xa0Kč", "1. 12. 2026", "1 měsíc", "2 roky"),
    ("fi_FI", "EUR", "1\xa0234,56\xa0€", "1.12.2026", "1 kuukausi", "2 vuotta"),
    ("en_US", "USD", "$1,234.56", "Dec 1, 2026", "1 month", "2 years"),
    ("fr_CA", "CAD", "1\xa0234,56\xa0$", "1 déc. 2026", "1 mois", "2 ans"),
    ("en_SG", "SGD", "$1,234.56", "1 Dec 2026", "1 month", "2 years"),
    # CLDR writes CAD as "$" for Canadian readers; "CA$" is how everyone else sees it.
    ("en_CA", "CAD", "$1,234.56", "Dec 1, 2026", "1 month", "2 years"),
    ("en_US", "CAD", "CA$1,234.56", "Dec 1, 2026", "1 month", "2 years"),
]


@pytest.mark.parametrize("locale, currency, money, day, month, two_years", GOLDEN)
def test_money_dates_and_durations_match_cldr(locale, currency, money, day, month, two_years):
    assert format_minor(123456, currency, locale) == money == format_currency(1234.56, currency, locale=locale)
    assert format_day(dt.date(2026, 12, 1), locale) == day == format_date(dt.date(2026, 12, 1), "medium", locale=locale)
    assert format_months(1, locale) == month
    assert format_months(24, locale) == two_years


def test_zero_decimal_amounts_are_never_rounded_by_babel():
    # Babel rounds half-even; amounts are exact minor units, so nothing is left to round.
    assert format_minor(1, "EUR", "fr_FR") == "0,01\xa0€"
    assert format_minor(-250, "CZK", "cs_CZ") == "-2,50\xa0Kč"


def test_a_billing_period_reads_naturally():
    assert period(dt.date(2026, 1, 5), dt.date(2026, 2, 5), "fr_FR") == "5 janv.\u2009–\u20095 févr. 2026"
    assert period(dt.date(2026, 1, 5), dt.date(2026, 2, 5), "en_US") == "Jan 5\u2009–\u2009Feb 5, 2026"


@pytest.mark.parametrize("locale, expected", [
    ("fr_CA", "Courriel Pro"),  # Québec's own word
    ("fr_FR", "E-mail Pro"),  # France, through fr
    ("fr", "E-mail Pro"),
    ("de_AT", "E-Mail Pro"),  # a region without a catalog falls back to its language
    ("en_US", "Email Pro"),
    ("xx", "Email Pro"),  # unknown: the English source
    (None, "Email Pro"),
])
def test_translations_fall_back_from_region_to_language_to_english(locale, expected):
    assert translate("Email Pro", locale, "web") == expected


@pytest.mark.parametrize("language, word, day", [
    ("fr", "prix", "1 déc. 2025"), ("de", "preise", "01.12.2025"), ("pl", "cen", "1 gru 2025"), ("cs", "ceny", "1. 12. 2025"),
    ("es", "precios", "1 dic 2025"), ("it", "prezzi", "1 dic 2025"), ("en", "prices", "Dec 1, 2025"),
])
def test_errors_speak_the_callers_language(shop, language, word, day):
    acme = shop.signup("FR", top_up="100.00")
    r = shop.client.post("/v1/orders", json={"items": [{"plan": "bm-rise-1-p1m"}], "price_date": "2025-12-01"},
                         headers={**acme["headers"], "Idempotency-Key": "k", "Accept-Language": f"{language};q=0.9, en;q=0.1"})
    assert r.status_code == 422 and r.json()["code"] == "price_date_in_past"
    assert word in r.json()["detail"].lower() and day in r.json()["detail"]


def test_every_audit_action_the_code_writes_has_words():
    """The history tables show each event in words (core.labels.AUDIT_ACTIONS): an action written
    anywhere in core or the plugins without its words would show as a code."""
    import re
    from pathlib import Path

    from core.labels import AUDIT_ACTIONS

    root = Path(__file__).resolve().parents[1]
    entities = ("service|account|order|invoice|ticket|contract|status|api_key|abuse|partner|notification|credit_note|"
                "contact_change|usage|outbox")
    permissions = set(re.findall(r'"([a-z_]+\.[a-z_.]+)"', (root / "core" / "access.py").read_text()))
    written = set()
    for path in [*(root / "core").rglob("*.py"), *(root / "plugins").rglob("*.py")]:
        if "migrations" not in path.parts:
            written |= set(re.findall(rf'"((?:{entities})\.[a-z_]+)"', path.read_text()))
    written = {a for a in written - permissions if not a.endswith((".html", ".id"))}
    assert written and not written - set(AUDIT_ACTIONS), sorted(written - set(AUDIT_ACTIONS))
