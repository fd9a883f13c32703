"""Reading the catalog's data files (``catalog/products.toml`` and the overlays
``catalog/countries/<STOREFRONT>.toml``), every problem with the file and line it comes from."""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from pathlib import Path
from typing import Any

from core.catalog.specs import (
    CommitmentPoint,
    OverlaySpec,
    PlanSpec,
    PricePoint,
    Problem,
    ProductSpec,
    SlaTarget,
    SupportTierSpec,
    UsagePricePoint,
)
from core.money import (
    MoneyError,
    rate_to_ppm,
    to_decimal,
    to_micro,
)

# --- reading the data files -----------------------------------------------------------------------

_HEADER = re.compile(r"^\s*\[+\s*([^\]]+?)\s*\]+")
_KEY = re.compile(r'^\s*("[^"]+"|[A-Za-z0-9_.-]+)\s*=')
_AT_LINE = re.compile(r"\(at line (\d+), column \d+\)")


def key_lines(text: str) -> dict[str, int]:
    """``section.key`` → line number of a TOML file (first occurrence), for error messages."""
    out: dict[str, int] = {}
    section = ""
    for number, raw in enumerate(text.splitlines(), start=1):
        if match := _HEADER.match(raw):
            section = match.group(1).replace('"', "")
            out.setdefault(section, number)
        elif match := _KEY.match(raw):
            out.setdefault(f"{section}.{match.group(1).strip(chr(34))}" if section else match.group(1).strip('"'), number)
    return out


class FileProblem(ValueError):
    """A data file that cannot be read; names the line when it can."""

    def __init__(self, message: str, line: int | None = None, source: str | None = None):
        self.line, self.source = line, source
        super().__init__(message)


def read_toml(path: Path) -> tuple[dict, str]:
    """The parsed file and its text (for line numbers); a parse error names the line."""
    text = path.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = _AT_LINE.search(str(exc))
        raise FileProblem(f"cannot be parsed: {exc}", int(match.group(1)) if match else None) from None
    return data, text


def _need(table: dict, key: str, kind: type, what: str, line: int | None):
    value = table.get(key)
    if not isinstance(value, kind) or (kind is str and not value):
        raise FileProblem(f"{what}: {key!r} must be {'a non-empty string' if kind is str else kind.__name__}", line)
    return value


def _product_spec(raw: dict, universe: str, source: str, line: int | None, code: str | None = None) -> ProductSpec:
    code = code or _need(raw, "code", str, "product", line)
    what = f"product {code!r}"
    plans = []
    for plan in _need(raw, "plans", list, what, line):
        if not isinstance(plan, dict):
            raise FileProblem(f"{what}: each plan must be a table", line)
        plans.append(PlanSpec(
            code=_need(plan, "code", str, what, line), duration=_need(plan, "duration", str, what, line),
            name=plan.get("name"), engagement=plan.get("engagement"), free=bool(plan.get("free", False)),
        ))
    return ProductSpec(
        code=code, universe=universe, kind=_need(raw, "kind", str, what, line), name=_need(raw, "name", str, what, line),
        description=raw.get("description", ""), plans=tuple(plans),
        required_options=tuple(raw.get("required_options", ())), attributes=dict(raw.get("attributes", {})),
        example_options=dict(raw.get("example_options", {})), source=source, line=line,
    )


def load_products_file(path: str | Path, universe: str) -> tuple[list[ProductSpec], list[SupportTierSpec]]:
    """Read a base catalog: ``[[products]]`` (with ``plans``) and ``[[support_tiers]]``.

    Raises :class:`FileProblem` (with the line) when the file cannot be read."""
    path = Path(path)
    try:
        return _load_products(path, universe)
    except FileProblem as exc:
        exc.source = str(path)
        raise
    except OSError as exc:
        raise FileProblem(f"cannot be read: {exc.strerror}", None, str(path)) from None


def _load_products(path: Path, universe: str) -> tuple[list[ProductSpec], list[SupportTierSpec]]:
    data, text = read_toml(path)
    source = str(path)

    def headers(section: str):  # the line of each [[section]], in order
        return iter([n for n, raw in enumerate(text.splitlines(), 1) if raw.strip() == f"[[{section}]]"])

    products, tiers = [], []
    cursor = headers("products")
    for raw in data.get("products", []):
        products.append(_product_spec(raw, universe, source, next(cursor, None)))
    cursor = headers("support_tiers")
    for raw in data.get("support_tiers", []):
        line = next(cursor, None)
        code = _need(raw, "code", str, "support tier", line)
        what = f"support tier {code!r}"
        tiers.append(SupportTierSpec(
            code=code, universe=universe, level=_need(raw, "level", int, what, line), name=_need(raw, "name", str, what, line),
            first_response_minutes=_need(raw, "first_response_minutes", int, what, line),
            duration=raw.get("duration", "P1M"), free=bool(raw.get("free", False)),
            description=raw.get("description", ""), source=source, line=line,
            hours=raw.get("hours", "business"), targets=_sla_targets(raw.get("targets", []), what, line),
            credit_percent=raw.get("credit_percent", 0), partners_only=bool(raw.get("partners_only", False)),
        ))
    return products, tiers


def _sla_targets(raw: Any, what: str, line: int | None) -> tuple[SlaTarget, ...]:
    """``targets = [{ priority = "normal", first_response = 240, next_response = 480, resolution = 2880 }, …]``,
    in minutes of the level's hours."""
    shape = "{ priority = \"normal\", first_response = MINUTES, next_response = MINUTES, resolution = MINUTES }"
    if not isinstance(raw, list) or not all(isinstance(e, dict) for e in raw):
        raise FileProblem(f"{what}: targets must be a list of {shape}", line)
    out = []
    for entry in raw:
        unknown = set(entry) - {"priority", "first_response", "next_response", "resolution"}
        minutes = [entry.get(k, 0) for k in ("first_response", "next_response", "resolution")]
        if unknown or not isinstance(entry.get("priority"), str) or not all(
                isinstance(m, int) and not isinstance(m, bool) for m in minutes):
            raise FileProblem(f"{what}: target {entry!r} must be {shape}", line)
        out.append(SlaTarget(entry["priority"], *minutes))
    return tuple(out)


def _dated(raw: Any, what: str, shape: str, line: int | None) -> list[dict]:
    """The entries of a dated list (``[{ from = DATE, … }]``), each a table with a date."""
    if not isinstance(raw, list) or not raw:
        raise FileProblem(f"{what} must be a list of {{ from = DATE, {shape} }}", line)
    for entry in raw:
        if not isinstance(entry, dict) or not isinstance(entry.get("from"), dt.date) or isinstance(entry.get("from"), dt.datetime):
            raise FileProblem(f"{what}: 'from' must be a date such as 2026-12-01", line)
    return raw


def _price_points(plan: str, raw: Any, line: int | None) -> tuple[PricePoint, ...]:
    points = []
    for entry in _dated(raw, f"price of plan {plan!r}", 'price = "…"', line):
        if not isinstance(entry.get("price"), str):
            raise FileProblem(f"price of plan {plan!r}: 'price' must be a string such as \"9.99\" (no floats for money)", line)
        try:
            hourly = entry.get("hourly")
            points.append(PricePoint(entry["from"], to_decimal(entry["price"]), to_decimal(entry.get("setup", "0")),
                                     to_decimal(hourly) if hourly is not None else None))
        except MoneyError as exc:
            raise FileProblem(f"price of plan {plan!r}: {exc}", line) from None
    return tuple(points)


def _usage_points(metric: str, raw: Any, line: int | None) -> tuple[UsagePricePoint, ...]:
    """``[usage] metric = [{ from = DATE, unit = "0.01", free = "1024" }]`` or, with tiers,
    ``[{ from = DATE, tiers = [{ upto = "1024", unit = "0" }, { unit = "0.01" }] }]``."""
    what = f"usage price of metric {metric!r}"
    points = []
    for entry in _dated(raw, what, 'unit = "…"', line):
        unknown = set(entry) - {"from", "unit", "free", "tiers"}
        if unknown or ("tiers" in entry) == ("unit" in entry) or ("tiers" in entry and "free" in entry):
            raise FileProblem(f"{what}: give either 'unit' (and optionally 'free') or 'tiers'", line)
        raw_tiers = entry.get("tiers")
        if raw_tiers is None:
            raw_tiers = ([{"upto": entry["free"], "unit": "0"}] if "free" in entry else []) + [{"unit": entry["unit"]}]
        if not isinstance(raw_tiers, list) or not raw_tiers or not all(isinstance(t, dict) for t in raw_tiers):
            raise FileProblem(f"{what}: 'tiers' must be a list of {{ upto = \"…\", unit = \"…\" }}", line)
        tiers = []
        try:
            for n, tier in enumerate(raw_tiers):
                last = n == len(raw_tiers) - 1
                if not isinstance(tier.get("unit"), str) or (not last and not isinstance(tier.get("upto"), str)) \
                        or (last and "upto" in tier):
                    raise FileProblem(f"{what}: each tier has 'upto' and 'unit' as strings, the last one only 'unit'", line)
                upto = to_decimal(tier["upto"]) if not last else None
                unit = to_decimal(tier["unit"])
                to_micro(unit)
                if upto is not None:
                    to_micro(upto)
                if unit < 0 or (upto is not None and (upto <= 0 or (tiers and upto <= tiers[-1][0]))):
                    raise FileProblem(f"{what}: prices are not negative and tiers rise", line)
                tiers.append((upto, unit))
        except MoneyError as exc:
            raise FileProblem(f"{what}: {exc}", line) from None
        points.append(UsagePricePoint(entry["from"], tuple(tiers)))
    return tuple(points)


def _commitment_points(months: str, raw: Any, line: int | None) -> tuple[int, tuple[CommitmentPoint, ...]]:
    what = f"savings plan of {months} months"
    if not months.isdigit() or not 1 <= int(months) <= 60:
        raise FileProblem(f"[commitment] keys are lengths in months (1 to 60), not {months!r}", line)
    points = []
    for entry in _dated(raw, what, 'percent_off = "…", minimum = "…"', line):
        if set(entry) != {"from", "percent_off", "minimum"} or not all(isinstance(entry[k], str) for k in ("percent_off", "minimum")):
            raise FileProblem(f"{what}: give 'from', and 'percent_off' and 'minimum' as strings", line)
        try:
            percent, minimum = to_decimal(entry["percent_off"]), to_decimal(entry["minimum"])
            rate_to_ppm(percent)
        except MoneyError as exc:
            raise FileProblem(f"{what}: {exc}", line) from None
        if not 0 < percent < 100 or minimum <= 0:
            raise FileProblem(f"{what}: 'percent_off' is between 0 and 100, 'minimum' is positive", line)
        points.append(CommitmentPoint(entry["from"], percent, minimum))
    return int(months), tuple(points)


def load_overlay_file(path: str | Path, universe: str) -> OverlaySpec:
    """Read ``countries/<STOREFRONT>.toml``. A file that cannot be read becomes an overlay that
    carries the problem (file and line), so that every other file is still checked."""
    path = Path(path)
    source = str(path)
    storefront = path.stem
    lines: dict[str, int] = {}
    try:
        data, text = read_toml(path)
        lines = key_lines(text)
        storefront = data.get("storefront", storefront)
        if not isinstance(storefront, str):
            raise FileProblem("'storefront' must be a string", lines.get("storefront"))
        products = data.get("products", {})
        plans = data.get("plans", {})
        for section, table in (("products", products), ("plans", plans)):
            if not isinstance(table, dict) or not all(isinstance(v, bool) for v in table.values()):
                raise FileProblem(f"[{section}] must map codes to true or false", lines.get(section))
        prices = data.get("prices", {})
        if not isinstance(prices, dict):
            raise FileProblem("[prices] must map plan codes to lists of prices", lines.get("prices"))
        usage = data.get("usage", {})
        if not isinstance(usage, dict):
            raise FileProblem("[usage] must map metric codes to lists of prices", lines.get("usage"))
        commitment = data.get("commitment", {})
        if not isinstance(commitment, dict):
            raise FileProblem("[commitment] must map lengths in months to lists of terms", lines.get("commitment"))
        local = data.get("local_products", {})
        if not isinstance(local, dict):
            raise FileProblem("[local_products.<code>] must be tables", lines.get("local_products"))
        return OverlaySpec(
            storefront=storefront, currency=data.get("currency"), products=dict(products), plans=dict(plans),
            prices={plan: _price_points(plan, raw, lines.get(f"prices.{plan}")) for plan, raw in prices.items()},
            local_products=tuple(
                _product_spec(raw, universe, source, lines.get(f"local_products.{code}"), code) for code, raw in local.items()
            ),
            usage={metric: _usage_points(metric, raw, lines.get(f"usage.{metric}")) for metric, raw in usage.items()},
            commitment=dict(_commitment_points(months, raw, lines.get(f"commitment.{months}")) for months, raw in commitment.items()),
            source=source, lines=lines,
        )
    except FileProblem as exc:
        return OverlaySpec(storefront=storefront, source=source,
                           problems=(Problem(universe, "unreadable_overlay", str(exc), storefront, source, exc.line),))
