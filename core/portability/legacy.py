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

import hashlib
import json
import re
import secrets
from collections.abc import Callable

from sqlalchemy import func, insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from core import audit
from core.audit import Actor
from core.countries.tax import zone_for
from core.errors import Conflict, InvalidInput
from core.i18n import N_
from core.portability.legacy_check import (
    CHUNK,
    CONTACTS,
    IMPORT_ACTION,
    SERVICE_ACTION,
    Checker,
    LegacyImport,
    Problems,
    Progress,
    Row,
    acct,
    chunks,
    digest,
    events,
    read_csv,
    svc,
)
from core.runtime import Runtime


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
    problems = Problems()
    columns, records = read_csv(data, problems)
    if problems.items:
        raise problems.refuse()
    result = LegacyImport(sf, rows=len(records))

    def getter(cells: list[str]) -> Callable[[str], str]:
        return lambda name: cells[columns[name]].strip() if name in columns else ""

    # what was imported before, by legacy id: one query per chunk
    at = columns["legacy_id"]
    imported = _imported(conn, sf, sorted({cells[at].strip() for _, cells in records if len(cells) > at} - {""}))
    checker = Checker(rt, sf, locale, problems)
    rows: list[Row] = []
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
        for chunk in chunks(values):
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
        for chunk in chunks(services):
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
    for chunk in chunks(legacy_ids):
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
    for chunk in chunks(emails):
        for account_id, address in conn.execute(select(acct.c.id, email).where(
                acct.c.subsidiary == sf, acct.c.is_staff.is_(False), acct.c.closed_at.is_(None), email.in_(chunk))
                .order_by(acct.c.id)):
            out.setdefault(address, account_id)
    return out


def _accounts_by_handle(conn: Connection, sf: str, handles: list[str]) -> dict[str, int]:
    """Handle -> id of the open customer accounts of the storefront among ``handles``."""
    out: dict[str, int] = {}
    for chunk in chunks(handles):
        out.update(conn.execute(select(acct.c.handle, acct.c.id).where(
            acct.c.handle.in_(chunk), acct.c.subsidiary == sf, acct.c.is_staff.is_(False), acct.c.closed_at.is_(None))).all())
    return out


def _free_handles(conn: Connection, names: list[str]) -> list[str]:
    """A new handle per name (``ab12345-univers``, as :func:`core.customers.accounts.create_customer`
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
        for chunk in chunks(list(drawn)):
            taken.update(conn.execute(select(acct.c.handle).where(acct.c.handle.in_(chunk))).scalars())
        for candidate, i in drawn.items():
            if candidate not in taken:
                handles[i] = candidate
                taken.add(candidate)
    raise Conflict(N_("No free customer handle could be found; try again."), code="handle_unavailable")
