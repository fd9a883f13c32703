"""The legacy import: services moved from the old billing system, with their expiry dates,
before the switch to the new contract (``univers import services FILE.csv --storefront FR``,
``POST /v1/staff/legacy-imports?storefront=FR``). The README's "Switching customers to the new
contract" describes the file; :data:`COLUMNS` lists its columns.

**Validate everything, then write set-based.** Every row is parsed and checked in Python (the
``csv`` module), against the catalog and against what the database already holds, looked up
with one query per chunk of :data:`CHUNK` keys (the legacy ids already imported, the accounts
of the storefront by e-mail, the handles named as contacts), never one per row. Any problem
refuses the whole file: :class:`~core.errors.InvalidInput` carries every problem as ``{line,
field, code, message}`` (``message`` a msgid, translated by the reader), and nothing is
written. Otherwise, in the caller's one transaction: the new customers, the services, one
audit event per customer and service (:func:`core.audit.record_many`) and one for the import,
each inserted by chunks of rows (``executemany``), their ids read back
by their unique keys (handle, legacy id) with one query per chunk.

**What an imported service is.** Active, renewed by hand (``renewal_mode = manual``) on the
legacy terms (``terms_due_by`` stays NULL: the switch campaign sets it), paid and billed
through ``expires_on`` (``billed_until = expires_on``: the old system invoiced it), at the
legacy price (``price_minor`` = ``price`` × ``quantity``), with ``legacy_ref`` = the old
system's id. **No provisioning is queued** (the services already run on the infrastructure),
**no invoice is created**, no event hook fires (no state changes), and the customers created
get no API key.

**A customer is known by**, in this order: the account that holds the services already
imported for the same ``customer`` key (a previous run of the file); an open customer account
of the storefront with the same e-mail, compared case-insensitively (the oldest one if several);
otherwise it is created from the row. Its details are never updated by the import. Two
``customer`` keys with one e-mail are refused (``duplicate_customer_email``): the e-mail is
what finds the customer again.

**Idempotent.** A row whose (storefront, ``legacy_id``) exists is counted in
``already_imported`` and not written again (the unique index ``uq_service_legacy_ref`` holds
it even against two imports at once). Such a row is compared with what was imported from it
(kept in its ``service.legacy_imported`` audit event, so that what happened to the service in
Univers since, a manual renewal or a contact change, does not count): a changed row is a
problem, ``legacy_id_changed``, naming the columns that differ. The import never changes an
imported service. Catalog and date checks apply to new rows only, so that a plan withdrawn
since the first run, or an expiry date now past, does not fail a re-run.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from core import audit
from core.audit import Actor
from core.catalog import Plan
from core.context import OrderLineContext
from core.customers import COUNTRY, EMAIL, ISO_COUNTRIES, KINDS, check_vat_number
from core.errors import Conflict, InvalidInput
from core.i18n import N_, normalise
from core.models import Account, AuditEvent, Service
from core.money import MoneyError, to_decimal, to_minor
from core.runtime import Runtime
from core.tax import zone_for

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
class _Row:
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


class _Problems:
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


def _chunks(items: list, size: int = CHUNK) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def digest(values: dict) -> str:
    return hashlib.sha256(json.dumps(values, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()


# --- reading --------------------------------------------------------------------------------------


def read_csv(data: bytes | str, problems: _Problems) -> tuple[dict[str, int], list[tuple[int, list[str]]]]:
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


class _Checker:
    def __init__(self, rt: Runtime, storefront: str, locale: str, problems: _Problems):
        self.rt, self.sf, self.locale, self.p = rt, storefront, locale, problems
        self.sub = rt.storefronts[storefront]
        self.today = rt.clock.today()
        self.latest = dt.date(self.today.year + MAX_YEARS, self.today.month, min(self.today.day, 28))
        self.customers: dict[str, _Customer] = {}
        self.emails: dict[str, str] = {}  # lower e-mail -> customer key
        self.legacy_ids: dict[str, int] = {}  # legacy id -> first line
        self.vat: dict[tuple[str, str], tuple[str | None, InvalidInput | None]] = {}

    def row(self, line: int, get: Callable[[str], str], imported: dict | None) -> _Row | None:
        p = self.p
        before = len(p.items)
        for name in REQUIRED:
            if not get(name):
                p.add(line, name, "required", N_("This column is required."))
        for name, limit in LENGTHS.items():
            if len(get(name)) > limit:
                p.add(line, name, "too_long", N_("At most {max} characters."), max=limit)
        legacy_id, key = get("legacy_id"), get("customer")
        if legacy_id:
            if legacy_id in self.legacy_ids:
                p.add(line, "legacy_id", "duplicate_legacy_id", N_("The legacy id {legacy_id} is already on line {first}."),
                      legacy_id=legacy_id, first=self.legacy_ids[legacy_id])
            else:
                self.legacy_ids[legacy_id] = line
        if key:
            self.customer(line, key, get)
        row = _Row(line, legacy_id, key, imported=imported)
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

    def line_options(self, row: _Row) -> None:
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


# --- the import -----------------------------------------------------------------------------------


def import_services(conn: Connection, rt: Runtime, storefront: str, data: bytes | str, actor: Actor, *,
                    locale: str = "en", progress: Progress | None = None) -> LegacyImport:
    """Import the services of a legacy CSV file into ``storefront``, all or nothing, in the
    caller's transaction (see the module's docstring). Raises :class:`InvalidInput` with every
    problem of the file (``errors``), or :class:`Conflict` when another import wrote one of its
    legacy ids meanwhile. No provisioning is queued and no invoice is created: the services
    already run, and the old system billed them through ``expires_on``."""
    sf = str(storefront or "").upper()
    sub = rt.storefronts.get(sf)
    if sub is None or not sub.selling:
        raise InvalidInput(N_("Unknown or closed storefront {storefront}."), code="unknown_storefront", storefront=sf)
    tell = progress or (lambda stage, done, total: None)
    problems = _Problems()
    columns, records = read_csv(data, problems)
    if problems.items:
        raise problems.refuse()
    result = LegacyImport(sf, rows=len(records))

    def getter(cells: list[str]) -> Callable[[str], str]:
        return lambda name: cells[columns[name]].strip() if name in columns else ""

    # what was imported before, by legacy id: one query per chunk
    at = columns["legacy_id"]
    imported = _imported(conn, sf, sorted({cells[at].strip() for _, cells in records if len(cells) > at} - {""}))
    checker = _Checker(rt, sf, locale, problems)
    rows: list[_Row] = []
    for n, (line, cells) in enumerate(records, start=1):
        if len(cells) < len(columns) or any(cell.strip() for cell in cells[len(columns):]):  # empty cells past the header: fine
            problems.add(line, None, "wrong_field_count", N_("This line has {count} fields; the header has {expected}."),
                         count=len(cells), expected=len(columns))
            continue
        get = getter(cells)
        row = checker.row(line, get, imported.get(get("legacy_id")))
        if row is not None:
            rows.append(row)
        if n % CHUNK == 0:
            tell("check", n, len(records))
    tell("check", len(records), len(records))
    new = [r for r in rows if r.imported is None]
    result.already_imported = sum(1 for r in rows if r.imported is not None)

    # who the new services go to: the customers of the file (known or to create) and existing handles
    holders = {r.customer for r in new}
    named = {key for r in new for key in r.contacts.values()}
    in_file = (holders | named) & checker.customers.keys()
    previous: dict[str, int] = {}
    for r in rows:
        if r.imported is not None and r.imported["account_id"] is not None:
            previous[r.customer] = min(previous.get(r.customer, r.imported["account_id"]), r.imported["account_id"])
    accounts: dict[str, int] = {key: previous[key] for key in in_file if key in previous}
    by_email = _accounts_by_email(conn, sf, sorted({checker.customers[k].email.lower() for k in in_file - accounts.keys()}))
    for key in sorted(in_file - accounts.keys()):
        found = by_email.get(checker.customers[key].email.lower())
        if found is not None:
            accounts[key] = found
    result.customers_reused = len(accounts)
    handles = _accounts_by_handle(conn, sf, sorted(named - checker.customers.keys()))
    for r in new:
        for role in CONTACTS:
            key = r.contacts[role]
            if key not in checker.customers and key not in handles:
                problems.add(r.line, role, "unknown_contact",
                             N_("{contact} is neither a customer of this file nor a customer handle of the {storefront} "
                                "storefront."), contact=key, storefront=sf)
    if problems.items:
        raise problems.refuse()

    # write: customers, services, audit events (each one multi-row INSERT per chunk)
    now = rt.clock.now()
    to_create = [checker.customers[k] for k in sorted(in_file - accounts.keys(), key=lambda k: checker.customers[k].line)]
    written, total = 0, len(to_create) + len(new)
    if to_create:
        names = _free_handles(conn, [c.name for c in to_create])
        values = [dict(handle=h, subsidiary=sf, kind=c.kind, name=c.name, email=c.email, language=c.language,
                       country=c.country, region=c.region, vat_number=c.vat_number, vat_verified=False, vat_confirmed_on=None,
                       vat_confirmation=None, is_staff=False, staff_role=None,
                       tax_zone=zone_for(rt.taxes, sub, c.country, c.region, c.kind, vat_confirmed=False), balance_minor=0,
                       payment_method="balance", test_outcome=None, created_at=now, closed_at=None)
                  for c, h in zip(to_create, names, strict=True)]
        created = []
        for chunk in _chunks(values):
            conn.execute(insert(acct), chunk)  # executemany: RETURNING would make psycopg parse a huge statement per batch
            ids = dict(conn.execute(select(acct.c.handle, acct.c.id).where(acct.c.handle.in_([v["handle"] for v in chunk]))).all())
            created += [ids[v["handle"]] for v in chunk]
            written += len(chunk)
            tell("write", written, total)
        for c, account_id in zip(to_create, created, strict=True):
            accounts[c.key] = account_id
        audit.record_many(conn, now, actor, "account", "account.created", [
            (account_id, None, {**{k: v[k] for k in ("handle", "subsidiary", "kind", "language", "country", "region",
                                                     "vat_number", "tax_zone")},
                                "legacy_customer": c.key, "source": "legacy_import"})
            for c, v, account_id in zip(to_create, values, created, strict=True)])
        result.customers_created = len(created)
    accounts.update(handles)
    services = [dict(
        account_id=accounts[r.customer], admin_account_id=accounts[r.contacts["admin"]],
        tech_account_id=accounts[r.contacts["tech"]], billing_account_id=accounts[r.contacts["billing"]], order_id=None,
        universe=r.plan.universe, product_code=r.plan.product_code, plan_code=r.plan.code, kind=r.plan.kind, subsidiary=sf,
        currency=sub.currency, state="active", renewal_mode="manual", period_months=r.plan.months, quantity=r.quantity,
        price_minor=r.price_minor, start_on=r.start_on or now.date(), expires_on=r.expires_on,
        billed_until=r.expires_on, engagement_end=None, options=r.options, resource=None, suspended_on=None,
        terminated_on=None, deleted_on=None, abuse_reason=None, abuse_since=None, legacy_ref=r.legacy_id, terms_due_by=None,
        created_at=now, updated_at=now) for r in new]
    try:
        for chunk in _chunks(services):
            conn.execute(insert(svc), chunk)
            ids = dict(conn.execute(select(svc.c.legacy_ref, svc.c.id).where(
                svc.c.subsidiary == sf, svc.c.legacy_ref.in_([v["legacy_ref"] for v in chunk]))).all())
            result.service_ids += [ids[v["legacy_ref"]] for v in chunk]
            written += len(chunk)
            tell("write", written, total)
    except IntegrityError:
        raise Conflict(N_("Another import wrote some of these services meanwhile; nothing was imported. Run the import "
                          "again: what is imported by then is skipped."), code="legacy_import_conflict") from None
    audit.record_many(conn, now, actor, "service", SERVICE_ACTION, [
        (service_id, None, {"state": "active", "renewal_mode": "manual", "legacy_ref": r.legacy_id, "plan": r.plan.code,
                            "expires_on": r.expires_on, "billed_until": r.expires_on, "price_minor": r.price_minor,
                            "values": r.values, "digest": digest(r.values)})
        for r, service_id in zip(new, result.service_ids, strict=True)])
    result.imported = len(result.service_ids)
    raw = data if isinstance(data, bytes) else data.encode()
    audit.record(conn, now, actor, "account", actor.account_id or 0, IMPORT_ACTION, None,
                 {**result.as_dict(), "sha256": hashlib.sha256(raw).hexdigest(),
                  "service_ids": [min(result.service_ids), max(result.service_ids)] if result.service_ids else None})
    return result


def _imported(conn: Connection, sf: str, legacy_ids: list[str]) -> dict[str, dict]:
    """The services already imported with these legacy ids: their holder (when its account is
    still open) and the values they were imported with. Two queries per chunk."""
    out: dict[str, dict] = {}
    for chunk in _chunks(legacy_ids):
        rows = conn.execute(
            select(svc.c.legacy_ref, svc.c.id, svc.c.account_id, acct.c.closed_at)
            .join(acct, acct.c.id == svc.c.account_id)
            .where(svc.c.subsidiary == sf, svc.c.legacy_ref.in_(chunk))).all()
        by_id = {}
        for legacy_ref, service_id, account_id, closed_at in rows:
            out[legacy_ref] = by_id[service_id] = {"id": service_id, "account_id": None if closed_at else account_id,
                                                   "values": None}
        if by_id:
            for service_id, after in conn.execute(select(events.c.entity_id, events.c.after).where(
                    events.c.entity == "service", events.c.entity_id.in_(list(by_id)), events.c.action == SERVICE_ACTION)):
                by_id[service_id]["values"] = (json.loads(after) or {}).get("values") if after else None
    return out


def _accounts_by_email(conn: Connection, sf: str, emails: list[str]) -> dict[str, int]:
    """Lower-cased e-mail -> the oldest open customer account of the storefront with it."""
    out: dict[str, int] = {}
    email = func.lower(acct.c.email)
    for chunk in _chunks(emails):
        for account_id, address in conn.execute(select(acct.c.id, email).where(
                acct.c.subsidiary == sf, acct.c.is_staff.is_(False), acct.c.closed_at.is_(None), email.in_(chunk))
                .order_by(acct.c.id)):
            out.setdefault(address, account_id)
    return out


def _accounts_by_handle(conn: Connection, sf: str, handles: list[str]) -> dict[str, int]:
    """Handle -> id of the open customer accounts of the storefront among ``handles``."""
    out: dict[str, int] = {}
    for chunk in _chunks(handles):
        out.update(conn.execute(select(acct.c.handle, acct.c.id).where(
            acct.c.handle.in_(chunk), acct.c.subsidiary == sf, acct.c.is_staff.is_(False), acct.c.closed_at.is_(None))).all())
    return out


def _free_handles(conn: Connection, names: list[str]) -> list[str]:
    """A new handle per name (``ab12345-univers``, as :func:`core.customers.create_customer`
    makes them), none taken: drawn in Python, checked with one query per chunk."""
    stems = [(re.sub(r"[^a-z]", "", name.lower()) + "xx")[:2] for name in names]
    handles: list[str | None] = [None] * len(names)
    taken: set[str] = set()
    for _ in range(20):
        todo = [i for i, h in enumerate(handles) if h is None]
        if not todo:
            return handles  # type: ignore[return-value]
        drawn = {}
        for i in todo:
            candidate = f"{stems[i]}{secrets.randbelow(90000) + 10000}-univers"
            if candidate not in taken and candidate not in drawn:
                drawn[candidate] = i
        for chunk in _chunks(list(drawn)):
            taken.update(conn.execute(select(acct.c.handle).where(acct.c.handle.in_(chunk))).scalars())
        for candidate, i in drawn.items():
            if candidate not in taken:
                handles[i] = candidate
                taken.add(candidate)
    raise Conflict(N_("No free customer handle could be found; try again."), code="handle_unavailable")
