"""Exact money: conversion, and one rounding rule in Python and SQL."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import literal, select

from core.money import MoneyError, format_minor, tax_minor, tax_sql, to_minor


def test_minor_units_follow_the_currency():
    assert to_minor("12.34", "EUR") == 1234
    assert to_minor("249", "CZK") == 24900
    assert to_minor("1000", "JPY") == 1000
    with pytest.raises(MoneyError):
        to_minor("0.001", "EUR")
    with pytest.raises(MoneyError):
        to_minor(0.1, "EUR")  # floats are refused


def test_tax_rounds_half_away_from_zero():
    assert tax_minor(1299, 200_000) == 260  # 259.8
    assert tax_minor(25, 200_000) == 5
    assert tax_minor(1, 500_000) == 1  # 0.5 -> 1
    assert tax_minor(-1, 500_000) == -1
    assert tax_minor(1000, 99_750) == 100  # 99.75 -> 100


def test_sql_and_python_rounding_agree(rt):
    rng = random.Random(42)
    cases = [(rng.randint(-10**9, 10**9), rng.choice([0, 50_000, 90_000, 99_750, 190_000, 200_000, 255_000])) for _ in range(300)]
    cases += [(1, 500_000), (-1, 500_000), (5, 100_000), (-5, 100_000)]
    with rt.engine.connect() as conn:
        for base, rate in cases:
            got = conn.execute(select(tax_sql(literal(base), literal(rate)))).scalar_one()
            assert got == tax_minor(base, rate), (base, rate)


def test_formatting_uses_babel():
    assert format_minor(123456, "EUR", "fr_FR") == "1\u202f234,56\xa0€"
    assert format_minor(123456, "EUR", "de_DE") == "1.234,56\xa0€"
    assert format_minor(123456, "CAD", "en_CA") == "$1,234.56"
