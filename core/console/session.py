"""Console sessions: who the browser is, and the CSRF token its forms carry.

* Signing in takes an API key (the one the customer already has, or a staff key): the key is
  checked as the API checks it, and a session row is written with a random token whose SHA-256
  only is kept; the cookie carries the token (HttpOnly, SameSite=Lax, Secure over HTTPS). The
  session acts with the scopes of its key and ends at sign-out, after ``LIFETIME``, or as soon as
  its key is revoked or its account closed.
* Or a one-time link by mail: a visitor gives an e-mail address, and each open account that uses
  it is sent a link (its token hashed here too, ``LINK_LIFETIME``, at most ``LINKS_AT_ONCE``
  unused at a time); the answer is the same whether an account uses the address or not. The
  link's address is the configured ``UNIVERS_PUBLIC_URL``, never the request's ``Host``. A link
  opens one session, once, with every scope (the mailbox is the account's).
* Every form of a session carries its CSRF token, compared in constant time on every POST; the
  sign-in form, before any session, carries the token of a short-lived cookie of its own
  (double submit), so that another site cannot sign a browser in to an account of its choosing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

from sqlalchemy import insert, or_, select, update
from sqlalchemy.engine import Connection

from core import audit
from core.audit import Actor
from core.customers.accounts import authenticate, hash_key
from core.models import Account, ApiKey, ConsoleLink, ConsoleSession, Notification

acct = Account.__table__
keys = ApiKey.__table__
sessions = ConsoleSession.__table__
links = ConsoleLink.__table__
notes = Notification.__table__
COOKIE = "univers_session"
SIGN_IN_COOKIE = "univers_sign_in"
LIFETIME = dt.timedelta(hours=12)
LINK_LIFETIME = dt.timedelta(minutes=15)
LINKS_AT_ONCE = 3


@dataclass(frozen=True)
class Visitor:
    """A signed-in browser: its account, the actor its clicks act as, its session."""

    account: Account
    actor: Actor
    session_id: int
    csrf: str


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def sign_in(conn: Connection, key: str, now: dt.datetime) -> tuple[str, Account]:
    """Check an API key as the API does and open a session on it: (the cookie's token, the account)."""
    account, scopes = authenticate(conn, key.strip(), now)
    key_id = conn.execute(select(keys.c.id).where(keys.c.key_hash == hash_key(key.strip()))).scalar_one()
    return _open(conn, account, key_id, scopes, now, "console"), account


def _open(conn: Connection, account: Account, key_id: int | None, scopes: str, now: dt.datetime, channel: str) -> str:
    token = secrets.token_urlsafe(32)
    session_id = conn.execute(insert(sessions).values(
        token_hash=_digest(token), account_id=account.id, api_key_id=key_id, scopes=scopes,
        csrf=secrets.token_urlsafe(24), created_at=now, expires_at=now + LIFETIME).returning(sessions.c.id)).scalar_one()
    audit.record(conn, now, Actor.of(account, scopes), "account", account.id, "account.signed_in", None,
                 {"session_id": session_id, "channel": channel})
    return token


def send_links(conn: Connection, email: str, now: dt.datetime, base_url: str) -> int:
    """A one-time sign-in link to each open account that uses this address (none past
    ``LINKS_AT_ONCE`` unused links): queued as a mail whose token is redacted once sent."""
    address = email.strip()
    if not address or len(address) > 254 or "@" not in address:
        return 0
    sent = 0
    for account_id in conn.execute(select(acct.c.id).where(acct.c.email.in_({address, address.lower()}),
                                                         acct.c.closed_at.is_(None)).order_by(acct.c.id).limit(20)).scalars():
        waiting = conn.execute(select(links.c.id).where(links.c.account_id == account_id, links.c.used_at.is_(None),
                                                        links.c.expires_at > now).limit(LINKS_AT_ONCE)).all()
        if len(waiting) >= LINKS_AT_ONCE:
            continue
        token = secrets.token_urlsafe(32)
        link_id = conn.execute(insert(links).values(token_hash=_digest(token), account_id=account_id, created_at=now,
                                                    expires_at=now + LINK_LIFETIME).returning(links.c.id)).scalar_one()
        conn.execute(insert(notes).values(
            kind="sign_in_link", key=f"sign_in_link:{link_id}", account_id=account_id, status="pending", attempts=0,
            next_attempt_at=now, created_at=now,
            body=json.dumps({"token": token, "url": f"{base_url}/manager/sign-in/link/{token}",
                             "expires_at": (now + LINK_LIFETIME).isoformat()})))
        sent += 1
    return sent


def sign_in_with_link(conn: Connection, token: str, now: dt.datetime) -> tuple[str, Account] | None:
    """The session a link opens, once: None for a link unknown, used, expired, or of a closed account."""
    row = conn.execute(update(links).where(links.c.token_hash == _digest(token), links.c.used_at.is_(None),
                                           links.c.expires_at > now).values(used_at=now)
                       .returning(links.c.account_id)).first()
    if row is None:
        return None
    found = conn.execute(select(acct).where(acct.c.id == row.account_id, acct.c.closed_at.is_(None))).mappings().first()
    if found is None:
        return None
    account = Account(**dict(found))
    return _open(conn, account, None, "*", now, "console_link"), account


def visitor(conn: Connection, token: str | None, now: dt.datetime) -> Visitor | None:
    """The session of this cookie, if it still runs (its key neither revoked nor expired, its account open)."""
    if not token:
        return None
    row = conn.execute(
        select(acct, sessions.c.id.label("session_id"), sessions.c.scopes.label("session_scopes"),
               sessions.c.csrf.label("session_csrf"))
        .join(sessions, sessions.c.account_id == acct.c.id)
        .outerjoin(keys, keys.c.id == sessions.c.api_key_id)
        .where(sessions.c.token_hash == _digest(token), sessions.c.ended_at.is_(None), sessions.c.expires_at > now,
               acct.c.closed_at.is_(None), or_(sessions.c.api_key_id.is_(None), keys.c.revoked_at.is_(None)),
               or_(keys.c.expires_at.is_(None), keys.c.expires_at > now))
    ).mappings().one_or_none()
    if row is None:
        return None
    row = dict(row)
    session_id, scopes, csrf = row.pop("session_id"), row.pop("session_scopes"), row.pop("session_csrf")
    account = Account(**row)
    return Visitor(account, Actor.of(account, scopes), session_id, csrf)


def sign_out(conn: Connection, who: Visitor, now: dt.datetime) -> None:
    conn.execute(update(sessions).where(sessions.c.id == who.session_id).values(ended_at=now))
    audit.record(conn, now, who.actor, "account", who.account.id, "account.signed_out", None,
                 {"session_id": who.session_id, "channel": "console"})


def same_token(sent: str | None, expected: str | None) -> bool:
    """A form's CSRF token against the one expected, in constant time."""
    return bool(sent) and bool(expected) and hmac.compare_digest(str(sent), str(expected))


def new_token() -> str:
    return secrets.token_urlsafe(24)
