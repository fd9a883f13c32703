"""Customer accounts and their API keys."""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib
import re
import secrets

from babel import Locale
from sqlalchemy import insert, or_, select, update
from sqlalchemy.engine import Connection
from stdnum.exceptions import ValidationError

from core import audit
from core.audit import Actor
from core.countries.tax import zone_for
from core.errors import InvalidInput, LineBreak, NotFound, Unauthenticated, one_line
from core.i18n import N_, normalise
from core.models import Account, ApiKey
from core.runtime import Runtime

acct = Account.__table__
keys = ApiKey.__table__
KINDS = ("person", "company")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
COUNTRY = re.compile(r"^[A-Z]{2}$")
ISO_COUNTRIES = frozenset(Locale("en").territories) - {"ZZ"}


def hash_key(key: str) -> str:
    # API keys are 256-bit random secrets: a fast hash is safe (no dictionary to attack).
    return hashlib.sha256(key.encode()).hexdigest()


def check_vat_number(rt: Runtime, storefront: str, number: str, country: str | None = None) -> str:
    """Format-check a VAT number with python-stdnum; returns it compacted. Not confirmed: a
    number is only marked verified when staff confirm it (VIES is not reachable offline)."""
    sub = rt.storefronts[storefront]
    if not sub.vat_scheme:
        raise InvalidInput(N_("Customers of the {storefront} storefront have no VAT number."), code="invalid_vat_number",
                           storefront=storefront)
    module = importlib.import_module(f"stdnum.{sub.vat_scheme}")
    invalid = InvalidInput(N_("The VAT number {number} is not valid for {country}; expected a number like {example}."),
                           code="invalid_vat_number", number=number[:40], country=sub.country, example=sub.vat_example)
    if len(number) > 40:  # the longest VAT numbers, spaced, are about 20 characters
        raise invalid
    try:  # stdnum refuses some texts outright (an unknown country prefix, fullwidth letters)
        compact = module.compact(number)
    except (ValidationError, ValueError):
        raise invalid from None
    country = country or sub.country
    prefix = "EL" if country == "GR" else country
    if sub.vat_scheme == "eu.vat" and compact[:2].isdigit():
        compact = prefix + compact
    if sub.vat_scheme == "eu.vat" and country in rt.taxes.eu_members and not compact.startswith(prefix):
        raise InvalidInput(N_("The VAT number {number} is not a number of {country}, the customer's country."),
                           code="vat_number_country_mismatch", number=number, country=country)
    if not compact.isascii() or not module.is_valid(compact):
        raise invalid
    return compact


def create_customer(conn: Connection, rt: Runtime, data: dict, actor: Actor | None = None, *, is_staff: bool = False,
                    staff_role: str | None = None) -> tuple[dict, str]:
    """Create an account and its first API key (returned once, stored hashed). A staff account
    gets a back-office role (``core.access.STAFF_ROLES``; administrator by default)."""
    from core.access import STAFF_ROLES

    staff_role = (staff_role or "administrator") if is_staff else None
    if staff_role is not None and staff_role not in STAFF_ROLES:
        raise InvalidInput(N_("Unknown staff role {role}; expected one of: {roles}."), code="invalid_staff_role",
                           role=staff_role, roles=", ".join(STAFF_ROLES))
    errors = []
    storefront = str(data.get("subsidiary", "")).upper()
    sub = rt.storefronts.get(storefront)
    if sub is None or not sub.selling:
        raise InvalidInput(N_("Unknown or closed storefront {storefront}."), code="unknown_storefront", storefront=storefront)
    kind = data.get("kind", "person")
    if kind not in KINDS:
        errors.append({"field": "kind", "code": "invalid_kind"})
    name = str(data.get("name", "")).strip()
    if not name or len(name) > 200:
        errors.append({"field": "name", "code": "required"})
    try:
        one_line(name, "name")
    except LineBreak as exc:
        errors.extend(exc.errors)
    email = str(data.get("email", "")).strip()
    if not EMAIL.match(email):
        errors.append({"field": "email", "code": "invalid_email"})
    language = normalise(data.get("language")) or sub.default_locale
    country = str(data.get("country") or sub.country).upper()
    if not COUNTRY.match(country) or country not in ISO_COUNTRIES:
        errors.append({"field": "country", "code": "invalid_country"})
    region = str(data["region"]).upper() if data.get("region") else None
    regions = rt.taxes.regions.get(country)
    if region and (not regions or region not in regions):
        errors.append({"field": "region", "code": "invalid_region", "params": {"regions": ", ".join(regions or ())},
                       "message": N_("Not a province or state we know; expected one of: {regions}.")})
    einvoice = check_einvoice_fields(sub, data.get("einvoice"), errors) if sub else None
    if errors:
        raise InvalidInput(N_("Some fields are missing or not valid."), errors=errors)
    vat = data.get("vat_number")
    if vat:
        vat = check_vat_number(rt, storefront, vat, country)
    now = rt.clock.now()
    letters = (re.sub(r"[^a-z]", "", name.lower()) + "xx")[:2]
    for _ in range(20):
        handle = f"{letters}{secrets.randbelow(90000) + 10000}-univers"
        if conn.execute(select(acct.c.id).where(acct.c.handle == handle)).first() is None:
            break
    values = dict(handle=handle, subsidiary=storefront, kind=kind, name=name, email=email, language=language,
                  country=country, region=region, vat_number=vat or None, vat_verified=False, vat_confirmed_on=None,
                  vat_confirmation=None, is_staff=is_staff, staff_role=staff_role,
                  tax_zone=zone_for(rt.taxes, sub, country, region, kind, vat_confirmed=False),
                  balance_minor=0, payment_method="balance", created_at=now, einvoice=einvoice)
    account_id = conn.execute(insert(acct).values(**values).returning(acct.c.id)).scalar_one()
    key = issue_key(conn, rt, account_id)
    who = actor or Actor(f"account:{handle}", account_id)
    audit.record(conn, now, who, "account", account_id, "account.created", None,
                 {k: values[k] for k in ("handle", "subsidiary", "kind", "language", "country", "region", "vat_number", "tax_zone")})
    return {**values, "id": account_id}, key


def check_einvoice_fields(sub, given: dict | None, errors: list[dict]) -> dict | None:
    """The buyer's national e-invoice data, as the storefront's ``einvoice_fields`` define it (a
    name and the pattern its value matches); an unknown name or a value off its pattern is an error."""
    if not given:
        return None
    out = {}
    for name, value in given.items():
        pattern = sub.einvoice_fields.get(name)
        value = str(value).strip()
        if pattern is None or not re.fullmatch(pattern, value):
            errors.append({"field": f"einvoice.{name}", "code": "invalid_einvoice_field"})
        else:
            out[name] = value
    return out or None


def issue_key(conn: Connection, rt: Runtime, account_id: int, *, name: str = "", scopes: str = "*",
              expires_at: dt.datetime | None = None) -> str:
    """A new API key: returned this once, only its SHA-256 is kept."""
    key = "uk_" + secrets.token_urlsafe(32)
    conn.execute(insert(keys).values(account_id=account_id, key_hash=hash_key(key), prefix=key[:10], name=name,
                                     scopes=scopes, expires_at=expires_at, created_at=rt.clock.now()))
    return key


def authenticate(conn: Connection, key: str | None, now: dt.datetime) -> tuple[Account, str]:
    """The account a key belongs to, and the key's scopes. A revoked or expired key, or one of a
    closed account, authenticates nothing (and says no more than a wrong key would)."""
    if not key:
        raise Unauthenticated()
    row = conn.execute(
        select(acct, keys.c.scopes.label("key_scopes")).join(keys, keys.c.account_id == acct.c.id)
        .where(keys.c.key_hash == hash_key(key), keys.c.revoked_at.is_(None), acct.c.closed_at.is_(None),
               or_(keys.c.expires_at.is_(None), keys.c.expires_at > now))
    ).mappings().one_or_none()
    if row is None:
        raise Unauthenticated()
    row = dict(row)
    scopes = row.pop("key_scopes")
    return Account(**row), scopes


def set_payment_method(conn: Connection, rt: Runtime, account: Account, method: str, outcome: str | None, actor: Actor) -> None:
    from core.payments.settlement import check_method

    check_method(method, outcome)
    conn.execute(update(acct).where(acct.c.id == account.id).values(payment_method=method, test_outcome=outcome))
    audit.record(conn, rt.clock.now(), actor, "account", account.id, "account.payment_method_changed",
                 {"payment_method": account.payment_method, "test_outcome": account.test_outcome},
                 {"payment_method": method, "test_outcome": outcome})


def set_einvoice(conn: Connection, rt: Runtime, account: Account, given: dict | None, actor: Actor) -> None:
    """Correct the account's national e-invoice data (all of it: what is not given goes). Issued
    invoices keep what they were issued with; the next ones carry this."""
    sub = rt.storefronts[account.subsidiary]
    if not sub.einvoice_fields:
        raise InvalidInput(N_("The {storefront} storefront's invoices need no national e-invoice data."),
                           code="no_einvoice_fields", storefront=account.subsidiary)
    errors: list[dict] = []
    fields = check_einvoice_fields(sub, given, errors)
    if errors:
        raise InvalidInput(N_("Some fields are missing or not valid."), errors=errors)
    if fields == account.einvoice:
        return
    conn.execute(update(acct).where(acct.c.id == account.id).values(einvoice=fields))
    audit.record(conn, rt.clock.now(), actor, "account", account.id, "account.einvoice_changed",
                 {"einvoice": account.einvoice}, {"einvoice": fields})


def confirm_vat_number(conn: Connection, rt: Runtime, account_id: int, confirmed_on, method: str, actor: Actor) -> dict:
    """Staff record that a customer's VAT number was confirmed valid (VIES answer, registration
    certificate...), with the date and how. From then on an EU business customer in another
    member state is invoiced under reverse charge; the next invoices show it."""
    row = conn.execute(select(acct).where(acct.c.id == account_id, acct.c.is_staff.is_(False)).with_for_update()).mappings().one_or_none()
    if row is None:
        raise NotFound(N_("No such {what}."), what="customer")
    if not row["vat_number"]:
        raise InvalidInput(N_("This customer has no VAT number to confirm."), code="no_vat_number")
    method = str(method or "").strip()
    if not method or len(method) > 200:
        raise InvalidInput(N_("Say how the number was confirmed (for example: VIES, with its consultation number)."),
                           code="confirmation_method_required")
    sub = rt.storefronts[row["subsidiary"]]
    zone = zone_for(rt.taxes, sub, row["country"], row["region"], row["kind"], vat_confirmed=True)
    values = {"vat_verified": True, "vat_confirmed_on": confirmed_on, "vat_confirmation": method, "tax_zone": zone}
    conn.execute(update(acct).where(acct.c.id == account_id).values(**values))
    audit.record(conn, rt.clock.now(), actor, "account", account_id, "account.vat_confirmed",
                 {"vat_verified": row["vat_verified"], "tax_zone": row["tax_zone"]},
                 {**values, "vat_confirmed_on": confirmed_on.isoformat()})
    return {**row, **values}


def list_keys(conn: Connection, account_id: int) -> list[dict]:
    """The account's keys, never their secret nor its hash."""
    q = (select(keys.c.id, keys.c.prefix, keys.c.name, keys.c.scopes, keys.c.created_at, keys.c.expires_at, keys.c.revoked_at)
         .where(keys.c.account_id == account_id).order_by(keys.c.id))
    return [dict(r) for r in conn.execute(q).mappings()]


def create_key(conn: Connection, rt: Runtime, account_id: int, name: str, scopes, expires_at: dt.datetime | None,
               actor: Actor) -> tuple[dict, str]:
    """A further key, narrowed to some scopes and with an expiry if asked; the secret is returned once."""
    from core.access import parse_scopes

    name = one_line(str(name or "").strip(), "name")
    if len(name) > 64:
        raise InvalidInput(N_("A key's name has at most 64 characters."), code="invalid_key_name")
    stored = parse_scopes(scopes)
    now = rt.clock.now()
    if expires_at is not None:
        if expires_at.tzinfo is None:
            raise InvalidInput(N_("Give the expiry with its time zone, for example 2027-01-31T00:00:00Z."), code="invalid_expiry")
        if expires_at <= now:
            raise InvalidInput(N_("The expiry must be in the future."), code="invalid_expiry")
    key = issue_key(conn, rt, account_id, name=name, scopes=stored, expires_at=expires_at)
    key_id = conn.execute(select(keys.c.id).where(keys.c.key_hash == hash_key(key))).scalar_one()
    row = next(k for k in list_keys(conn, account_id) if k["id"] == key_id)
    audit.record(conn, now, actor, "account", account_id, "api_key.created", None,
                 {"key": row["prefix"], "name": name, "scopes": stored, "expires_at": expires_at})
    return row, key


def revoke_key(conn: Connection, rt: Runtime, account_id: int, key_id: int, actor: Actor) -> dict:
    """Revoke one of the account's keys at once (another account's key is "not found")."""
    row = conn.execute(select(keys).where(keys.c.id == key_id, keys.c.account_id == account_id)).mappings().one_or_none()
    if row is None:
        raise NotFound(what="API key")
    if row["revoked_at"] is None:
        now = rt.clock.now()
        conn.execute(update(keys).where(keys.c.id == key_id).values(revoked_at=now))
        audit.record(conn, now, actor, "account", account_id, "api_key.revoked", {"key": row["prefix"]}, {"revoked_at": now})
    return next(k for k in list_keys(conn, account_id) if k["id"] == key_id)


def acting_with_key(conn: Connection, key: str | None, now: dt.datetime, scope: str | None,
                    staff_action: str | None = None) -> tuple[Account, Actor]:
    """Who acts with an API key, for the API and the CLI alike: the key must carry ``scope``;
    with ``staff_action``, it must be a staff key whose role allows it (core.access)."""
    from core.access import check, key_allows
    from core.errors import Forbidden

    account, scopes = authenticate(conn, key, now)
    if not key_allows(scopes, scope):
        raise Forbidden(N_("This API key's scopes do not include {scope}."), code="scope_missing", scope=scope)
    actor = Actor.of(account, scopes)
    if staff_action is not None:
        if not account.is_staff:
            raise Forbidden()
        check({actor.staff_role}, staff_action, what="back office")
    return account, actor
