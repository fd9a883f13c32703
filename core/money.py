"""Exact money: the one place where amounts are converted and rounded.

* Amounts are integers in the currency's minor unit (EUR cents; JPY has none), read from
  CLDR through Babel.
* Unit prices that need more decimals (hourly cloud prices) are integers in micro-units
  (1e-6 of the currency's major unit).
* Tax rates are integers in parts per million of 1 (20 % = 200_000; 9.975 % = 99_750).
* Tax is computed once per (category, rate) over the summed net amounts and rounded half
  away from zero to the minor unit (EN 16931). :func:`tax_sql` is the same rule in SQL, used by
  invoice finalisation; :func:`tax_minor` is the Python twin, and a test holds them equal.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

import msgspec
from babel.core import get_global
from babel.numbers import format_currency, get_currency_precision, list_currencies
from sqlalchemy import BigInteger, case, cast
from sqlalchemy.sql.elements import ColumnElement

RATE_SCALE = 1_000_000
UNIT_SCALE = 1_000_000
_CURRENCIES = frozenset(list_currencies())


# The largest amount accepted anywhere an amount enters (a top-up, a price, a credit note, a
# savings plan...), in minor units whatever the currency: 10^14 (a thousand billion euros, a
# hundred thousand billion yen) leaves the 64-bit integer columns (9.2 * 10^18) room for
# 90,000 such amounts summed, or one multiplied by a quantity. Larger amounts are refused.
MAX_MINOR = 10**14
MAX_MICRO = MAX_MINOR * 10**4  # unit prices in micro-units of the major unit: the same bound, at 6 decimals


class MoneyError(ValueError):
    """An amount or currency that cannot be represented exactly."""


class AmountOutOfRange(MoneyError):
    """An amount larger (in absolute value) than :data:`MAX_MINOR` allows in its currency."""

    def __init__(self, value: Decimal, currency: str | None):
        self.currency = currency
        self.maximum = max_amount(currency) if currency else from_minor_micro(MAX_MICRO)
        super().__init__(f"{value} is out of range (at most {self.maximum}{' ' + currency if currency else ''})")


def max_amount(currency: str) -> Decimal:
    """The largest amount accepted in ``currency``, in major units (``1000000000000.00`` in EUR)."""
    return from_minor(MAX_MINOR, currency)


def from_minor_micro(micro: int) -> Decimal:
    return Decimal(micro).scaleb(-6)


def check_currency(currency: str) -> str:
    if currency not in _CURRENCIES:
        raise MoneyError(f"unknown currency {currency!r}")
    return currency


def precision(currency: str) -> int:
    return get_currency_precision(check_currency(currency))


def to_decimal(value: str | int | Decimal) -> Decimal:
    if isinstance(value, float):
        raise MoneyError("floats are not accepted for money; pass a string")
    try:
        result = Decimal(value)
    except InvalidOperation as exc:
        raise MoneyError(f"not a number: {value!r}") from exc
    if not result.is_finite():
        raise MoneyError(f"not a finite number: {value!r}")
    return result


def _bounded(value: Decimal, currency: str | None) -> Decimal:
    """Refuse exponents far out of range before any arithmetic: ``1e999999999`` would overflow
    the decimal context, and its integer would take the whole memory."""
    if value and value.adjusted() > 40:
        raise AmountOutOfRange(value, currency)
    if value and value.adjusted() < -40:
        raise MoneyError(f"{value} has more decimals than {currency or 'a price'} allows")
    return value


def to_minor(amount: str | int | Decimal, currency: str) -> int:
    """Convert a major-unit amount to minor units; refuse anything finer than the minor unit."""
    value = _bounded(to_decimal(amount), currency)
    scaled = value.scaleb(precision(currency))
    if abs(scaled) > MAX_MINOR:
        raise AmountOutOfRange(value, currency)
    if scaled != scaled.to_integral_value():
        raise MoneyError(f"{value} has more decimals than {currency} allows")
    return int(scaled)


def from_minor(minor: int, currency: str) -> Decimal:
    return Decimal(minor).scaleb(-precision(currency))


def to_micro(amount: str | int | Decimal) -> int:
    """A unit price in micro-units of the major unit (six decimals at most)."""
    scaled = _bounded(to_decimal(amount), None).scaleb(6)
    if abs(scaled) > MAX_MICRO:
        raise AmountOutOfRange(scaled.scaleb(-6), None)
    if scaled != scaled.to_integral_value():
        raise MoneyError(f"{amount} has more than 6 decimals")
    return int(scaled)


def rate_to_ppm(percent: str | Decimal) -> int:
    """``"20"`` → 200_000; ``"9.975"`` → 99_750."""
    scaled = to_decimal(percent).scaleb(4)
    if scaled != scaled.to_integral_value() or scaled < 0:
        raise MoneyError(f"bad tax rate {percent!r}")
    return int(scaled)


def ppm_to_percent(ppm: int) -> str:
    """200_000 → ``"20"``; 99_750 → ``"9.975"`` (never exponent notation)."""
    return format(Decimal(ppm).scaleb(-4).normalize(), "f")


def tax_minor(base_minor: int, rate_ppm: int) -> int:
    """Tax on a summed base, rounded half away from zero to the minor unit."""
    exact = Decimal(base_minor) * rate_ppm / RATE_SCALE
    return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def tax_sql(base: ColumnElement, rate_ppm: ColumnElement) -> ColumnElement:
    """:func:`tax_minor` in SQL, with integer arithmetic only (same result on both engines)."""
    b = cast(base, BigInteger)
    half = RATE_SCALE // 2
    return case(
        (b >= 0, (b * rate_ppm + half) // RATE_SCALE),
        else_=-(((-b) * rate_ppm + half) // RATE_SCALE),
    )


def cash_increment(currency: str) -> int:
    """The smallest amount payable in cash, in minor units (CLDR ``currency_fractions``):
    100 for CZK (whole crowns), 5 for CAD (no cent coins), 1 where cash pays to the cent."""
    digits, _rounding, cash_digits, cash_rounding = get_global("currency_fractions").get(
        check_currency(currency), get_global("currency_fractions")["DEFAULT"])
    return 10 ** (digits - cash_digits) * max(cash_rounding, 1)


def cash_minor(minor: int, currency: str) -> int:
    """An amount rounded half up to what cash can pay; only cash payment totals use it."""
    step = cash_increment(currency)
    return int((Decimal(minor) / step).quantize(Decimal(1), rounding=ROUND_HALF_UP)) * step


def format_minor(minor: int, currency: str, locale: str) -> str:
    """Format an exact amount with Babel; the value is already at the currency's precision,
    so Babel's half-even rounding never applies."""
    return format_currency(from_minor(minor, currency), currency, locale=locale)


class Money(msgspec.Struct):
    """An amount as a reader sees it: exact in minor units and as a decimal string, and formatted."""

    amount_minor: int
    amount: str
    currency: str
    formatted: str


def money(minor: int, currency: str, locale: str) -> Money:
    return Money(minor, str(from_minor(minor, currency)), currency, format_minor(minor, currency, locale))
