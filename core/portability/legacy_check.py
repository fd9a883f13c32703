"""The legacy import's file, read and checked: every row against the catalog, the storefront
and what the database already holds, every problem with its line (see :mod:`core.portability.legacy`)."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from core.catalog import Plan
from core.context import OrderLineContext
from core.customers.accounts import (
    COUNTRY,
    EMAIL,
    ISO_COUNTRIES,
    KINDS,
    check_vat_number,
)
from core.errors import InvalidInput, LineBreak, has_line_break
from core.i18n import N_, normalise
from core.models import Account, AuditEvent, Service
from core.money import MoneyError, to_decimal, to_minor
from core.runtime import Runtime

acct = Account.__table__
svc = Service.__table__
events = AuditEvent.__table__

COLUMNS = ("legacy_id", "customer", "customer_name", "customer_email", "customer_kind", "customer_country",
           "customer_region", "language", "vat_number", "plan", "quantity", "expires_on", "price", "started_on",
           "admin", "tech", "billing", "options")
REQUIRED = ("legacy_id", "customer", "customer_name", "customer_email", "customer_kind", "customer_country", "plan",
            "expires_on", "price")
CUSTOMER = ("customer_name", "customer_email", "customer_kind", "customer_country", "customer_region", "language",
            "vat_number")
CONTACTS = ("admin", "tech", "billing")
LENGTHS = {"legacy_id": 64, "customer": 200, "customer_name": 200, "customer_email": 254, "admin": 200, "tech": 200,
           "billing": 200}
CHUNK = 1000  # keys per lookup query, rows per INSERT
MAX_QUANTITY = 10_000
MAX_YEARS = 10  # an expiry date at most this far ahead
SERVICE_ACTION = "service.legacy_imported"
IMPORT_ACTION = "legacy.import"
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_QUANTITY = re.compile(r"^\d{1,6}$")

Progress = Callable[[str, int, int], None]  # (stage: "check" | "write", done, total)


@dataclass
class LegacyImport:
    """What an import did (also what the audit event of the import records)."""

    storefront: str
    rows: int = 0  # service rows in the file
    imported: int = 0  # services created
    already_imported: int = 0  # rows whose legacy id was imported before: skipped
    customers_created: int = 0
    customers_reused: int = 0  # existing accounts the new services went to (as holder or contact)
    service_ids: list[int] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"storefront": self.storefront, "rows": self.rows, "imported": self.imported,
                "already_imported": self.already_imported, "customers_created": self.customers_created,
                "customers_reused": self.customers_reused}


@dataclass
class _Customer:
    key: str
    line: int
    details: tuple  # the raw customer columns, to compare the customer's rows
    name: str = ""
    email: str = ""
    kind: str = "person"
    country: str = ""
    region: str | None = None
    language: str = ""
    vat_number: str | None = None


@dataclass
class Row:
    line: int
    legacy_id: str
    customer: str
    plan: Plan | None = None
    quantity: int = 1
    expires_on: dt.date | None = None
    start_on: dt.date | None = None
    price_minor: int = 0
    contacts: dict[str, str] = field(default_factory=dict)  # role -> customer key or handle
    options: dict = field(default_factory=dict)
    values: dict = field(default_factory=dict)  # what identifies the import of the row (compared on a re-run)
    imported: dict | None = None  # the service already imported with this legacy id


class Problems:
    def __init__(self) -> None:
        self.items: list[dict] = []

    def add(self, line: int, field_: str | None, code: str, message: str, **params: Any) -> None:
        item = {"line": line, "field": field_, "code": code, "message": message}
        if params:
            item["params"] = params
        self.items.append(item)

    def translated(self, line: int, field_: str | None, code: str, text: str) -> None:
        """A problem whose message is already in the reader's language (a plugin's)."""
        self.items.append({"line": line, "field": field_, "code": code, "message": text})

    def refuse(self) -> InvalidInput:
        def column(p: dict) -> int:
            first = re.split(r"[.,]", p["field"] or "")[0]
            return COLUMNS.index(first) if first in COLUMNS else -1

        self.items.sort(key=lambda p: (p["line"], column(p)))
        return InvalidInput(N_("Nothing was imported: the file has {count} problem(s), listed with their line."),
                            code="invalid_legacy_file", errors=self.items, count=len(self.items))


def chunks(items: list, size: int = CHUNK) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def digest(values: dict) -> str:
    return hashlib.sha256(json.dumps(values, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()


# --- reading --------------------------------------------------------------------------------------


def read_csv(data: bytes | str, problems: Problems) -> tuple[dict[str, int], list[tuple[int, list[str]]]]:
    """The header (column -> position) and the non-blank records with the line each starts on."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            problems.add(data[:exc.start].count(b"\n") + 1, None, "bad_encoding",
                         N_("The file is not UTF-8 text (byte {position})."), position=exc.start)
            return {}, []
    else:
        text = data.removeprefix("\ufeff")
    reader = csv.reader(io.StringIO(text, newline=""))
    records, last = [], 0
    try:
        for record in reader:
            start, last = last + 1, reader.line_num
            if any(cell.strip() for cell in record):
                records.append((start, record))
    except csv.Error as exc:
        problems.add(reader.line_num, None, "bad_csv", N_("This line cannot be read as CSV: {error}."), error=str(exc))
        return {}, []
    if not records:
        problems.add(1, None, "empty_file", N_("The file is empty: it needs a header row and one row per service."))
        return {}, []
    line, header = records[0]
    columns: dict[str, int] = {}
    for position, raw in enumerate(header):
        name = raw.strip().lower()
        if name not in COLUMNS:
            problems.add(line, name or None, "unknown_column", N_("Unknown column {column}; the columns are: {columns}."),
                         column=raw.strip(), columns=", ".join(COLUMNS))
        elif name in columns:
            problems.add(line, name, "duplicate_column", N_("The column {column} is given twice."), column=name)
        else:
            columns[name] = position
    for name in REQUIRED:
        if name not in columns:
            problems.add(line, name, "missing_column", N_("The header has no column {column}."), column=name)
    if len(records) == 1 and not problems.items:
        problems.add(line, None, "empty_file", N_("The file is empty: it needs a header row and one row per service."))
    return columns, records[1:]


# --- checking -------------------------------------------------------------------------------------


class Checker:
    def __init__(self, rt: Runtime, storefront: str, locale: str, problems: Problems):
        self.rt, self.sf, self.locale, self.p = rt, storefront, locale, problems
        self.sub = rt.storefronts[storefront]
        self.today = rt.clock.today()
        self.latest = dt.date(self.today.year + MAX_YEARS, self.today.month, min(self.today.day, 28))
        self.customers: dict[str, _Customer] = {}
        self.emails: dict[str, str] = {}  # lower e-mail -> customer key
        self.legacy_ids: dict[str, int] = {}  # legacy id -> first line
        self.vat: dict[tuple[str, str], tuple[str | None, InvalidInput | None]] = {}

    def row(self, line: int, get: Callable[[str], str], imported: dict | None) -> Row | None:
        p = self.p
        before = len(p.items)
        for name in REQUIRED:
            if not get(name):
                p.add(line, name, "required", N_("This column is required."))
        for name, limit in LENGTHS.items():
            if len(get(name)) > limit:
                p.add(line, name, "too_long", N_("At most {max} characters."), max=limit)
            elif has_line_break(get(name)):  # a quoted cell may span lines; these are one-line texts
                p.add(line, name, LineBreak.code, LineBreak.template)
        legacy_id, key = get("legacy_id"), get("customer")
        if legacy_id:
            if legacy_id in self.legacy_ids:
                p.add(line, "legacy_id", "duplicate_legacy_id", N_("The legacy id {legacy_id} is already on line {first}."),
                      legacy_id=legacy_id, first=self.legacy_ids[legacy_id])
            else:
                self.legacy_ids[legacy_id] = line
        if key:
            self.customer(line, key, get)
        row = Row(line, legacy_id, key, imported=imported)
        new = imported is None
        # the plan, in this storefront (a new row only: a plan withdrawn since does not fail a re-run)
        code = get("plan")
        plan = self.rt.catalog.plans.get(code)
        if new and code:
            if plan is None:
                p.add(line, "plan", "unknown_plan", N_("There is no plan {plan} in the catalog."), plan=code)
            elif not self.rt.catalog.is_enabled(self.sf, code):
                p.add(line, "plan", "not_sold_in_storefront", N_("The plan {plan} is not sold in the {storefront} storefront."),
                      plan=code, storefront=self.sf)
                plan = None
        row.plan = plan
        quantity = get("quantity") or "1"
        if not _QUANTITY.match(quantity) or not 1 <= int(quantity) <= MAX_QUANTITY:
            p.add(line, "quantity", "bad_quantity", N_("The quantity is a whole number from 1 to {max}."), max=MAX_QUANTITY)
        else:
            row.quantity = int(quantity)
        row.expires_on = self.date(line, "expires_on", get("expires_on"))
        row.start_on = self.date(line, "started_on", get("started_on"))
        if new and row.expires_on is not None:
            if row.expires_on < self.today:
                p.add(line, "expires_on", "expired", N_("The service expired on {date}: import only services paid "
                                                        "through today or later."), date=row.expires_on.isoformat())
            elif row.expires_on > self.latest:
                p.add(line, "expires_on", "bad_date", N_("The expiry date is more than {years} years ahead."), years=MAX_YEARS)
        if row.start_on and row.expires_on and row.start_on > row.expires_on:
            p.add(line, "started_on", "bad_date", N_("The service starts after it expires."))
        price = get("price")
        if price:
            try:
                unit = to_minor(to_decimal(price), self.sub.currency)
                if unit < 0 or unit * row.quantity >= 2**53:
                    raise MoneyError(price)
                row.price_minor = unit * row.quantity
            except MoneyError:
                p.add(line, "price", "bad_price", N_("The price is an amount in {currency} such as 12.50, not negative, "
                                                     "with at most the currency's decimals."), currency=self.sub.currency)
        raw = get("options")
        if raw:
            try:
                options = json.loads(raw)
            except ValueError:
                options = None
            if not isinstance(options, dict):
                p.add(line, "options", "bad_options", N_('The options are a JSON object, such as {example}.'),
                      example='{"domain": "example.fr"}')
            else:
                row.options = options
        for role in CONTACTS:
            row.contacts[role] = get(role) or key
        if new and plan is not None and len(p.items) == before:
            self.line_options(row)
        row.values = {"customer": key, "plan": code, "quantity": row.quantity, "expires_on": row.expires_on,
                      "price": row.price_minor, "started_on": row.start_on, "options": row.options, **row.contacts}
        if not new and imported.get("values") is not None and len(p.items) == before:
            changed = [name for name, value in json.loads(json.dumps(row.values, default=str)).items()
                       if imported["values"].get(name) != value]
            if changed:
                p.add(line, ",".join(changed), "legacy_id_changed",
                      N_("The service {legacy_id} was imported before with other values ({columns}); the import never "
                         "changes an imported service: correct it in Univers, or take the row out of the file."),
                      legacy_id=legacy_id, columns=", ".join(changed))
        return row if len(p.items) == before else None

    def date(self, line: int, name: str, text: str) -> dt.date | None:
        if not text:
            return None
        try:
            if not _DATE.match(text):
                raise ValueError(text)
            return dt.date.fromisoformat(text)
        except ValueError:
            self.p.add(line, name, "bad_date", N_("A date is written YYYY-MM-DD, such as 2027-03-31."))
            return None

    def line_options(self, row: Row) -> None:
        """The product's required options, then what its universe says of the line (a domain name...)."""
        plan, product = row.plan, self.rt.catalog.product_of(row.plan)
        missing = [name for name in product.required_options if not str(row.options.get(name, "")).strip()]
        for name in missing:
            self.p.add(row.line, f"options.{name}", "missing_option", N_("The option {name} is required for this product."),
                       name=name)
        if missing:
            return
        ctx = OrderLineContext(plan.universe, product.code, plan.code, product.kind, row.quantity, row.options, self.sf,
                               self.locale, product.attributes)
        for found in self.rt.pm.hook.univers_validate_order_line(ctx=ctx) or []:
            self.p.translated(row.line, f"options.{found.field.removeprefix('options.')}" if found.field else "options",
                              found.code, found.message)

    def customer(self, line: int, key: str, get: Callable[[str], str]) -> None:
        details = tuple(get(name) for name in CUSTOMER)
        known = self.customers.get(key)
        if known is not None:
            if known.details != details:
                differ = [name for name, a, b in zip(CUSTOMER, known.details, details, strict=True) if a != b]
                self.p.add(line, ",".join(differ), "inconsistent_customer",
                           N_("The customer {customer} has other details on line {first} ({columns})."),
                           customer=key, first=known.line, columns=", ".join(differ))
            return
        c = self.customers[key] = _Customer(key, line, details)
        c.name, c.email = get("customer_name"), get("customer_email")
        if c.email and not EMAIL.match(c.email):
            self.p.add(line, "customer_email", "bad_email", N_("This is not an e-mail address."))
        elif c.email:
            other = self.emails.setdefault(c.email.lower(), key)
            if other != key:
                self.p.add(line, "customer_email", "duplicate_customer_email",
                           N_("The customer {other} (line {first}) has this e-mail too: one e-mail, one customer."),
                           other=other, first=self.customers[other].line)
        c.kind = get("customer_kind").lower()
        if c.kind and c.kind not in KINDS:
            self.p.add(line, "customer_kind", "bad_kind", N_("The customer kind is person or company."))
        c.country = get("customer_country").upper()
        if c.country and (not COUNTRY.match(c.country) or c.country not in ISO_COUNTRIES):
            self.p.add(line, "customer_country", "bad_country", N_("A country is a two-letter ISO code, such as FR."))
        c.region = get("customer_region").upper() or None
        regions = self.rt.taxes.regions.get(c.country)
        if c.region and (not regions or c.region not in regions):
            self.p.add(line, "customer_region", "bad_region",
                       N_("Not a province or state we know; expected one of: {regions}."), regions=", ".join(regions or ()))
        language = get("language")
        c.language = normalise(language) or self.sub.default_locale
        if language and normalise(language) is None:
            self.p.add(line, "language", "bad_language", N_("Not a language tag, such as fr or fr-CA."))
        vat = get("vat_number")
        if vat and c.country:
            if (vat, c.country) not in self.vat:
                try:
                    self.vat[vat, c.country] = (check_vat_number(self.rt, self.sf, vat, c.country), None)
                except InvalidInput as exc:
                    self.vat[vat, c.country] = (None, exc)
            c.vat_number, error = self.vat[vat, c.country]
            if error is not None:
                self.p.add(line, "vat_number", error.code, error.template, **error.params)
