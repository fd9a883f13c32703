"""Customer accounts and their API keys."""

from __future__ import annotations

import hashlib
import importlib
import re
import secrets

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from core import audit
from core.audit import Actor
from core.errors import InvalidInput, Unauthenticated
from core.i18n import N_, normalise
from core.models import Account, ApiKey
from core.runtime import Runtime

acct = Account.__table__
keys = ApiKey.__table__
KINDS = ("person", "company")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def hash_key(key: str) -> str:
    # API keys are 256-bit random secrets: a fast hash is safe (no dictionary to attack).
    return hashlib.sha256(key.encode()).hexdigest()


def check_vat_number(rt: Runtime, storefront: str, number: str) -> str:
    """Format-check a VAT number with python-stdnum; returns it compacted. Not confirmed: a
    number is only marked verified when staff confirm it (VIES is not reachable offline)."""
    sub = rt.storefronts[storefront]
    if not sub.vat_scheme:
        raise InvalidInput(N_("Customers of the {storefront} storefront have no VAT number."), code="invalid_vat_number",
                           storefront=storefront)
    module = importlib.import_module(f"stdnum.{sub.vat_scheme}")
    compact = module.compact(number)
    if sub.vat_scheme == "eu.vat" and not compact.startswith(sub.country if sub.country != "GR" else "EL"):
        compact = sub.country + compact if compact[:2].isdigit() else compact
    if not module.is_valid(compact):
        raise InvalidInput(N_("The VAT number {number} is not valid for {country}; expected a number like {example}."),
                           code="invalid_vat_number", number=number, country=sub.country, example=sub.vat_example)
    return compact


def create_customer(conn: Connection, rt: Runtime, data: dict, actor: Actor | None = None, *, is_staff: bool = False) -> tuple[dict, str]:
    """Create an account and its first API key (returned once, stored hashed)."""
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
    email = str(data.get("email", "")).strip()
    if not EMAIL.match(email):
        errors.append({"field": "email", "code": "invalid_email"})
    language = normalise(data.get("language")) or sub.default_locale
    if errors:
        raise InvalidInput(N_("Some fields are missing or not valid."), errors=errors)
    vat = data.get("vat_number")
    if vat:
        vat = check_vat_number(rt, storefront, vat)
    now = rt.clock.now()
    letters = (re.sub(r"[^a-z]", "", name.lower()) + "xx")[:2]
    for _ in range(20):
        handle = f"{letters}{secrets.randbelow(90000) + 10000}-univers"
        if conn.execute(select(acct.c.id).where(acct.c.handle == handle)).first() is None:
            break
    values = dict(handle=handle, subsidiary=storefront, kind=kind, name=name, email=email, language=language,
                  country=sub.country, vat_number=vat or None, vat_verified=False, is_staff=is_staff,
                  balance_minor=0, payment_method="balance", created_at=now)
    account_id = conn.execute(insert(acct).values(**values).returning(acct.c.id)).scalar_one()
    key = issue_key(conn, rt, account_id)
    who = actor or Actor(f"account:{handle}", account_id)
    audit.record(conn, now, who, "account", account_id, "account.created", None,
                 {k: values[k] for k in ("handle", "subsidiary", "kind", "language", "vat_number")})
    return {**values, "id": account_id}, key


def issue_key(conn: Connection, rt: Runtime, account_id: int) -> str:
    key = "uk_" + secrets.token_urlsafe(32)
    conn.execute(insert(keys).values(account_id=account_id, key_hash=hash_key(key), prefix=key[:10], created_at=rt.clock.now()))
    return key


def authenticate(conn: Connection, key: str | None) -> Account:
    if not key:
        raise Unauthenticated()
    row = conn.execute(
        select(acct).join(keys, keys.c.account_id == acct.c.id)
        .where(keys.c.key_hash == hash_key(key), keys.c.revoked_at.is_(None))
    ).mappings().one_or_none()
    if row is None:
        raise Unauthenticated()
    return Account(**row)


def set_payment_method(conn: Connection, rt: Runtime, account: Account, method: str, outcome: str | None, actor: Actor) -> None:
    from core.payments import check_method

    check_method(method, outcome)
    conn.execute(update(acct).where(acct.c.id == account.id).values(payment_method=method, test_outcome=outcome))
    audit.record(conn, rt.clock.now(), actor, "account", account.id, "account.payment_method_changed",
                 {"payment_method": account.payment_method, "test_outcome": account.test_outcome},
                 {"payment_method": method, "test_outcome": outcome})
