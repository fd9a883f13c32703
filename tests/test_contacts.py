"""The contact change of a service, end to end: the admin asks, both accounts accept with the
one-time token each was mailed (read from a real SMTP server), and the contact moves. Every test
runs on SQLite and on PostgreSQL, with the injected clock."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from sqlalchemy import select, update

from core.customers.contacts import hash_token
from core.i18n import translate
from core.models import Account, AuditEvent, ContactChange, Notification, Service
from core.notify.contact_changes import MESSAGES
from core.renewal.run import run_renewal
from core.scheduler import run_queues

D = dt.date
svc = Service.__table__
acct = Account.__table__
note = Notification.__table__
cc = ContactChange.__table__
events = AuditEvent.__table__
TOKEN = re.compile(r"cct_[A-Za-z0-9_-]{20,}")


@pytest.fixture
def acme(shop):
    """A French company with one active, paid-up monthly hosting (it holds all three roles)."""
    customer = shop.signup("FR", "company", name="Acme SAS", email="admin@acme.example")
    order = shop.order(customer, "web-hosting-starter-p1m", payment={"method": "test", "outcome": "success"})
    shop.deliver()
    customer["service_id"] = order["services"][0]["id"]
    return customer


@pytest.fixture
def bob(shop):
    """A French customer who reads German."""
    return shop.signup("FR", "person", name="Bob Braun", email="bob@example.org", language="de_DE")


@pytest.fixture
def carol(shop):
    return shop.signup("FR", "person", name="Carol Cruz", email="carol@example.org", language="es_ES")


@pytest.fixture
def dieter(shop):
    """A customer of another storefront (Germany)."""
    return shop.signup("DE", "company", name="Dieter GmbH", email="dieter@example.de")


def _ask(shop, who, service_id, role, to, expect=201) -> dict:
    r = shop.client.post(f"/v1/services/{service_id}/contact-changes", json={"role": role, "to": to["handle"]},
                         headers=who["headers"])
    assert r.status_code == expect, r.text
    return r.json()


def _mails(shop, inbox, start=0) -> dict[str, object]:
    """Send what is queued; the contact change messages received since ``start``, by recipient."""
    run_queues(shop.rt)
    return {m["To"]: m for m in inbox.messages[start:] if m["X-Univers-Notification"].startswith("contact_change")}


def _token(message) -> str:
    found = set(TOKEN.findall(message.get_content()))
    assert len(found) == 1, message.get_content()
    return found.pop()


def _answer(shop, who, change_id, token, verb="accept", expect=200) -> dict:
    r = shop.client.post(f"/v1/contact-changes/{change_id}/{verb}", json={"token": token}, headers=who["headers"])
    assert r.status_code == expect, r.text
    return r.json()


def _contacts(rt, service_id) -> dict:
    with rt.engine.connect() as conn:
        row = conn.execute(select(svc).where(svc.c.id == service_id)).mappings().one()
    return {"account": row["account_id"], "admin": row["admin_account_id"], "tech": row["tech_account_id"],
            "billing": row["billing_account_id"]}


def _tokens_for(shop, inbox, change, outgoing, incoming, start=0) -> tuple[str, str]:
    mails = _mails(shop, inbox, start)
    return _token(mails[outgoing["email"]]), _token(mails[incoming["email"]])


def _set_contacts(rt, service_id, **accounts):
    with rt.engine.begin() as conn:
        conn.execute(update(svc).where(svc.c.id == service_id).values(
            **{f"{role}_account_id": a["id"] for role, a in accounts.items()}))


# --- the happy path ------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["admin", "tech", "billing"])
def test_both_accounts_accept_and_the_contact_moves(shop, inbox, rt, acme, bob, role):
    sid = acme["service_id"]
    change = _ask(shop, acme, sid, role, bob)
    assert (change["status"], change["role"], change["from_account"], change["to_account"]) == \
        ("pending", role, acme["handle"], bob["handle"])
    outgoing, incoming = _tokens_for(shop, inbox, change, acme, bob)
    assert _contacts(rt, sid)[role] == acme["id"]  # nothing moves before both have accepted
    half = _answer(shop, bob, change["id"], incoming)
    assert (half["status"], half["to_accepted"], half["from_accepted"]) == ("pending", True, False)
    assert _contacts(rt, sid)[role] == acme["id"]
    done = _answer(shop, acme, change["id"], outgoing)
    assert done["status"] == "done" and done["decided_at"]
    contacts = _contacts(rt, sid)
    assert contacts[role] == bob["id"]
    assert contacts["account"] == (bob["id"] if role == "admin" else acme["id"])  # the holder is the admin
    others = {"admin", "tech", "billing"} - {role}
    assert all(contacts[r] == acme["id"] for r in others)
    listed = shop.client.get(f"/v1/services/{sid}/contacts", headers=bob["headers"]).json()
    assert listed[role] == {"handle": bob["handle"], "name": "Bob Braun"} and listed["pending"] == []
    # the outcome is mailed to both sides (the requester is the outgoing side here)
    outcome = _mails(shop, inbox, 2)
    assert {m["X-Univers-Notification"] for m in outcome.values()} == {"contact_change_done"}
    assert set(outcome) == {acme["email"], bob["email"]}


def test_the_new_admin_takes_over_and_the_old_one_no_longer_sees_the_service(shop, inbox, rt, acme, bob, carol, dieter):
    sid = acme["service_id"]
    seen = 0
    for role, to in (("tech", dieter), ("billing", carol), ("admin", bob)):
        change = _ask(shop, acme, sid, role, to)
        outgoing, incoming = _tokens_for(shop, inbox, change, acme, to, seen)
        _answer(shop, to, change["id"], incoming)
        _answer(shop, acme, change["id"], outgoing)
        seen = len(inbox.messages)
    assert _contacts(rt, sid) == {"account": bob["id"], "admin": bob["id"], "tech": dieter["id"], "billing": carol["id"]}
    assert shop.client.get(f"/v1/services/{sid}", headers=acme["headers"]).status_code == 404
    assert shop.client.get(f"/v1/services/{sid}/contacts", headers=acme["headers"]).status_code == 404
    _ask(shop, acme, sid, "tech", acme, expect=404)
    # the new admin acts: it stops the service, and hands the tech role back to acme
    r = shop.client.post(f"/v1/services/{sid}/stop", headers=bob["headers"])
    assert r.status_code == 200, r.text
    change = _ask(shop, bob, sid, "tech", acme)
    assert change["from_account"] == dieter["handle"] and change["requested_by"] == bob["handle"]
    r = shop.client.get("/v1/services", headers=bob["headers"])
    assert [s["id"] for s in r.json()["items"]] == [sid]


def test_a_tech_contact_may_be_a_customer_of_another_storefront_not_admin_or_billing(shop, inbox, acme, dieter):
    sid = acme["service_id"]
    for role in ("admin", "billing"):
        r = shop.client.post(f"/v1/services/{sid}/contact-changes", json={"role": role, "to": dieter["handle"]},
                             headers=acme["headers"])
        assert (r.status_code, r.json()["code"]) == (422, "subsidiary_mismatch"), r.text
        assert "FR" in r.json()["detail"]
    _ask(shop, acme, sid, "tech", dieter)


# --- refusals, tokens ----------------------------------------------------------------------------


@pytest.mark.parametrize("refuser", ["outgoing", "incoming"])
def test_either_side_may_refuse(shop, inbox, rt, acme, bob, refuser):
    sid = acme["service_id"]
    change = _ask(shop, acme, sid, "billing", bob)
    outgoing, incoming = _tokens_for(shop, inbox, change, acme, bob)
    if refuser == "incoming":
        _answer(shop, acme, change["id"], outgoing)  # one acceptance is not enough
        refused = _answer(shop, bob, change["id"], incoming, "refuse")
        notified = acme
    else:
        refused = _answer(shop, acme, change["id"], outgoing, "refuse")
        notified = bob
    assert refused["status"] == "refused"
    assert _contacts(rt, sid)["billing"] == acme["id"]
    late = shop.client.post(f"/v1/contact-changes/{change['id']}/accept", json={"token": incoming},
                            headers=bob["headers"])
    assert (late.status_code, late.json()["code"]) == (409, "change_not_pending")
    outcome = _mails(shop, inbox, 2)
    assert list(outcome) == [notified["email"]]  # the requester, or the other side, learns it
    assert outcome[notified["email"]]["X-Univers-Notification"] == "contact_change_refused"


def test_a_token_works_once(shop, inbox, acme, bob):
    change = _ask(shop, acme, acme["service_id"], "tech", bob)
    outgoing, incoming = _tokens_for(shop, inbox, change, acme, bob)
    _answer(shop, bob, change["id"], incoming)
    again = _answer(shop, bob, change["id"], incoming, expect=409)
    assert again["code"] == "token_used"
    _answer(shop, acme, change["id"], outgoing)
    after = _answer(shop, acme, change["id"], outgoing, expect=409)
    assert after["code"] == "change_not_pending"


def test_a_token_of_another_change_or_of_the_other_side_is_refused(shop, inbox, rt, acme, bob, carol):
    sid = acme["service_id"]
    tech = _ask(shop, acme, sid, "tech", bob)
    tech_out, tech_in = _tokens_for(shop, inbox, tech, acme, bob)
    billing = _ask(shop, acme, sid, "billing", bob)
    billing_out, billing_in = _tokens_for(shop, inbox, billing, acme, bob, 2)
    # bob's genuine token, but for the other change
    assert _answer(shop, bob, billing["id"], tech_in, expect=422)["code"] == "token_invalid"
    assert _answer(shop, bob, billing["id"], "cct_" + "x" * 43, expect=422)["code"] == "token_invalid"
    # the outgoing side's token, presented by the incoming account, and the other way round
    wrong = _answer(shop, bob, tech["id"], tech_out, expect=403)
    assert wrong["code"] == "token_wrong_account"
    assert _answer(shop, acme, tech["id"], tech_in, expect=403)["code"] == "token_wrong_account"
    # a leaked e-mail is not enough: an unrelated account does not even see the change
    assert _answer(shop, carol, tech["id"], tech_in, expect=404)["code"] == "not_found"
    with rt.engine.connect() as conn:
        row = conn.execute(select(cc).where(cc.c.id == tech["id"])).mappings().one()
    assert (row["from_accepted_at"], row["to_accepted_at"]) == (None, None)
    # the database keeps hashes only, and the outbox the mails without their tokens
    assert row["to_token_hash"] == hash_token(tech_in) and tech_in not in json.dumps(dict(row), default=str)
    with rt.engine.connect() as conn:
        bodies = conn.execute(select(note.c.status, note.c.body).where(note.c.kind.like("contact_change%"))).all()
    assert {status for status, _ in bodies} == {"sent"}
    assert all(t not in body for _, body in bodies for t in (tech_in, tech_out, billing_in, billing_out))
    assert all("[redacted]" in body for _, body in bodies)


def test_an_expired_token_is_refused_and_the_change_expires(shop, inbox, rt, clock, acme, bob):
    change = _ask(shop, acme, acme["service_id"], "tech", bob)
    outgoing, incoming = _tokens_for(shop, inbox, change, acme, bob)
    _answer(shop, bob, change["id"], incoming)
    clock.advance(days=7, seconds=1)
    r = _answer(shop, acme, change["id"], outgoing, expect=409)
    assert r["code"] == "token_expired"
    got = shop.client.get(f"/v1/contact-changes/{change['id']}", headers=acme["headers"]).json()
    assert got["status"] == "expired"  # lazily, when the token was used
    assert _contacts(rt, acme["service_id"])["tech"] == acme["id"]
    assert [m["X-Univers-Notification"] for m in _mails(shop, inbox, 2).values()] == ["contact_change_expired"]
    # a new change may then be asked for
    _ask(shop, acme, acme["service_id"], "tech", bob)


def test_the_daily_job_expires_pending_changes(shop, rt, clock, acme, bob):
    first = _ask(shop, acme, acme["service_id"], "tech", bob)
    clock.set(clock.now() + dt.timedelta(days=3))
    second = _ask(shop, acme, acme["service_id"], "billing", bob)
    day = clock.today() + dt.timedelta(days=5)  # the first is 8 days old, the second 5
    clock.set(day)
    summary = run_renewal(rt, day)
    assert summary.contact_changes_expired == 1
    with rt.engine.connect() as conn:
        status = dict(conn.execute(select(cc.c.id, cc.c.status)).all())
        audit = conn.execute(select(events.c.action, events.c.actor, events.c.after)
                             .where(events.c.action == "contact_change.expired")).all()
        dropped = conn.execute(select(note.c.key, note.c.body).where(note.c.status == "dropped")).all()
    assert status == {first["id"]: "expired", second["id"]: "pending"}
    assert [(a, who, json.loads(after)["change_id"]) for a, who, after in audit] == \
        [("contact_change.expired", "system:contacts", first["id"])]
    # its token mails, never sent, went with it
    assert sorted(k for k, _ in dropped) == [f"contact_change_from:{first['id']}", f"contact_change_to:{first['id']}"]
    assert all(body is None for _, body in dropped)
    assert run_renewal(rt, day).contact_changes_expired == 0


def test_a_change_past_its_date_no_longer_blocks_a_new_request(shop, rt, clock, acme, bob, carol):
    old = _ask(shop, acme, acme["service_id"], "tech", bob)
    clock.advance(days=8)  # before any daily job has run
    assert shop.client.get(f"/v1/services/{acme['service_id']}/contacts", headers=acme["headers"]).json()["pending"] == []
    new = _ask(shop, acme, acme["service_id"], "tech", carol)
    assert new["status"] == "pending"
    assert shop.client.get(f"/v1/contact-changes/{old['id']}", headers=acme["headers"]).json()["status"] == "expired"


# --- what blocks a change ------------------------------------------------------------------------


def test_an_unpaid_invoice_blocks_the_request_and_the_change(shop, inbox, rt, clock, acme, bob):
    """The renewal of Feb 5 is invoiced on Jan 29, and acme's prepaid balance is empty."""
    sid = acme["service_id"]
    shop.days(D(2026, 1, 28))
    seen = len(inbox.messages)
    change = _ask(shop, acme, sid, "billing", bob)
    shop.days(D(2026, 1, 29))
    unpaid = [i for i in shop.invoices(acme) if i["status"] == "issued"]
    assert len(unpaid) == 1
    outgoing, incoming = _tokens_for(shop, inbox, change, acme, bob, seen)
    _answer(shop, acme, change["id"], outgoing)
    blocked = _answer(shop, bob, change["id"], incoming, expect=409)
    assert blocked["code"] == "unpaid_invoice"
    assert shop.client.get(f"/v1/contact-changes/{change['id']}", headers=bob["headers"]).json()["to_accepted"] is False
    r = shop.client.post(f"/v1/services/{sid}/contact-changes", json={"role": "tech", "to": bob["handle"]},
                         headers=acme["headers"])
    assert (r.status_code, r.json()["code"]) == (409, "unpaid_invoice")
    # once paid, the same token goes through
    r = shop.client.post("/v1/me/balance/top-ups", json={"amount": "100.00", "outcome": "success"}, headers=acme["headers"])
    assert r.status_code == 201, r.text
    assert _answer(shop, bob, change["id"], incoming)["status"] == "done"
    assert _contacts(rt, sid)["billing"] == bob["id"]


def test_one_pending_change_per_role_and_no_change_to_the_same_account(shop, acme, bob, carol):
    sid = acme["service_id"]
    _ask(shop, acme, sid, "tech", bob)
    assert _ask(shop, acme, sid, "tech", carol, expect=409)["code"] == "change_pending"
    _ask(shop, acme, sid, "billing", carol)  # another role is another change
    assert _ask(shop, acme, sid, "admin", acme, expect=422)["code"] == "same_contact"
    r = shop.client.post(f"/v1/services/{sid}/contact-changes", json={"role": "owner", "to": bob["handle"]},
                         headers=acme["headers"])
    assert r.status_code == 400  # not one of the three roles: the schema refuses it
    r = shop.client.post(f"/v1/services/{sid}/contact-changes", json={"role": "tech", "to": "zz99999-univers"},
                         headers=acme["headers"])
    assert (r.status_code, r.json()["code"]) == (422, "unknown_account")


def test_closed_and_staff_accounts_cannot_become_contacts(shop, rt, acme, bob):
    staff_headers = shop.staff()
    staff = shop.client.get("/v1/me", headers=staff_headers).json()
    with rt.engine.begin() as conn:
        conn.execute(update(acct).where(acct.c.id == bob["id"]).values(closed_at=rt.clock.now()))
    for who in (bob, staff):
        r = shop.client.post(f"/v1/services/{acme['service_id']}/contact-changes", json={"role": "tech", "to": who["handle"]},
                             headers=acme["headers"])
        assert (r.status_code, r.json()["code"]) == (422, "account_not_eligible"), r.text


def test_only_the_admin_contact_may_ask(shop, rt, acme, bob, carol):
    sid = acme["service_id"]
    _set_contacts(rt, sid, tech=bob)
    r = shop.client.post(f"/v1/services/{sid}/contact-changes", json={"role": "tech", "to": carol["handle"]},
                         headers=bob["headers"])
    assert (r.status_code, r.json()["code"]) == (403, "role_forbids")
    r = shop.client.post(f"/v1/services/{sid}/contact-changes", json={"role": "tech", "to": bob["handle"]},
                         headers=carol["headers"])
    assert (r.status_code, r.json()["code"]) == (404, "not_found")
    # the tech contact still reads the contacts
    listed = shop.client.get(f"/v1/services/{sid}/contacts", headers=bob["headers"])
    assert listed.status_code == 200 and listed.json()["tech"]["handle"] == bob["handle"]


def test_the_admin_cancels_a_pending_change(shop, inbox, rt, acme, bob, carol):
    sid = acme["service_id"]
    change = _ask(shop, acme, sid, "tech", bob)
    outgoing, incoming = _tokens_for(shop, inbox, change, acme, bob)
    assert shop.client.get(f"/v1/services/{sid}/contacts", headers=acme["headers"]).json()["pending"][0]["id"] == change["id"]
    r = shop.client.delete(f"/v1/contact-changes/{change['id']}", headers=bob["headers"])
    assert (r.status_code, r.json()["code"]) == (403, "role_forbids")  # the incoming side may refuse, not cancel
    assert shop.client.delete(f"/v1/contact-changes/{change['id']}", headers=carol["headers"]).status_code == 404
    r = shop.client.delete(f"/v1/contact-changes/{change['id']}", headers=acme["headers"])
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert _answer(shop, bob, change["id"], incoming, expect=409)["code"] == "change_not_pending"
    r = shop.client.delete(f"/v1/contact-changes/{change['id']}", headers=acme["headers"])
    assert (r.status_code, r.json()["code"]) == (409, "change_not_pending")
    assert shop.client.get(f"/v1/services/{sid}/contacts", headers=acme["headers"]).json()["pending"] == []
    outcome = _mails(shop, inbox, 2)
    assert list(outcome) == [bob["email"]] and outcome[bob["email"]]["X-Univers-Notification"] == "contact_change_cancelled"
    assert _contacts(rt, sid)["tech"] == acme["id"]


def test_a_change_is_visible_to_its_parties_only(shop, inbox, acme, bob, carol):
    change = _ask(shop, acme, acme["service_id"], "tech", bob)
    for who in (acme, bob):
        r = shop.client.get(f"/v1/contact-changes/{change['id']}", headers=who["headers"])
        assert r.status_code == 200 and r.json()["accept_path"] == f"/v1/contact-changes/{change['id']}/accept"
    assert shop.client.get(f"/v1/contact-changes/{change['id']}", headers=carol["headers"]).status_code == 404


# --- audit and mails -----------------------------------------------------------------------------


def test_every_step_is_audited_with_the_actor_and_its_role(shop, inbox, rt, acme, bob, carol):
    sid = acme["service_id"]
    first = _ask(shop, acme, sid, "admin", bob)
    outgoing, incoming = _tokens_for(shop, inbox, first, acme, bob)
    _answer(shop, bob, first["id"], incoming)
    _answer(shop, acme, first["id"], outgoing)
    second = _ask(shop, bob, sid, "tech", carol)
    shop.client.delete(f"/v1/contact-changes/{second['id']}", headers=bob["headers"])
    third = _ask(shop, bob, sid, "billing", carol)
    _, refusing = _tokens_for(shop, inbox, third, acme, carol, 4)
    _answer(shop, carol, third["id"], refusing, "refuse")
    with rt.engine.connect() as conn:
        rows = conn.execute(select(events.c.action, events.c.actor, events.c.role).where(
            events.c.entity == "service", events.c.entity_id == sid, events.c.action.like("contact_change.%"))
            .order_by(events.c.id)).all()
    a, b, c = (f"account:{x['handle']}" for x in (acme, bob, carol))
    assert [tuple(r) for r in rows] == [
        ("contact_change.requested", a, "admin+billing+tech"),
        ("contact_change.accepted", b, "incoming:admin"),
        ("contact_change.accepted", a, "admin+billing+outgoing:admin+tech"),
        ("contact_change.applied", a, "admin+billing+outgoing:admin+tech"),
        ("contact_change.requested", b, "admin"),
        ("contact_change.cancelled", b, "admin"),
        ("contact_change.requested", b, "admin"),
        ("contact_change.refused", c, "incoming:billing"),
    ]
    r = shop.client.get(f"/v1/services/{sid}/events", headers=bob["headers"])
    applied = [e for e in r.json() if e["action"] == "contact_change.applied"][0]
    assert (applied["before"]["account"], applied["after"]["account"]) == (acme["handle"], bob["handle"])


def test_mails_speak_the_recipients_language(shop, inbox, rt, acme, bob):
    change = _ask(shop, acme, acme["service_id"], "admin", bob)
    mails = _mails(shop, inbox)
    french, german = mails[acme["email"]], mails[bob["email"]]
    assert (french["Content-Language"], german["Content-Language"]) == ("fr-FR", "de-DE")
    assert french["X-Univers-Notification"] == "contact_change_from"
    assert german["X-Univers-Notification"] == "contact_change_to"
    for message, kind, locale in ((french, "contact_change_from", "fr_FR"), (german, "contact_change_to", "de_DE")):
        subject = translate(MESSAGES[kind][0], locale)
        assert subject != MESSAGES[kind][0]
        assert message["Subject"].startswith(subject.split("{service}")[0])
        body = message.get_content()
        assert f"/v1/contact-changes/{change['id']}/accept" in body and f"/v1/contact-changes/{change['id']}/refuse" in body
        assert "Acme SAS" in body and acme["handle"] in body  # who asked
        assert translate("administrative contact (holder of the service)", locale) in body
    assert "Guten Tag Bob Braun" in german.get_content() and "Bonjour Acme SAS" in french.get_content()
