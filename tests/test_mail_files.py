"""Without an SMTP server, notifications are ``.eml`` files in ``<data dir>/mail``: a file is not
a delivery, so it keeps what the database keeps, a one-time token (a contact change's, a sign-in
link's) replaced by ``[redacted]``; with a server, the message sent carries it. Both engines."""

from __future__ import annotations

import email
import json
import re
from email import policy
from pathlib import Path

from sqlalchemy import select

from core.models import Notification
from core.scheduler import run_queues

note = Notification.__table__
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def _queued_tokens(rt) -> set[str]:
    """The clear tokens waiting in the outbox (the database keeps them only until sending)."""
    with rt.engine.connect() as conn:
        bodies = conn.execute(select(note.c.body).where(note.c.status == "pending", note.c.body.is_not(None))).scalars()
        return {json.loads(b)["token"] for b in bodies if b.startswith("{") and "token" in json.loads(b)}


def _files(rt) -> dict[str, str]:
    folder = Path(rt.settings.data_dir) / "mail"
    return {p.name: email.message_from_bytes(p.read_bytes(), policy=policy.default).get_content()
            for p in sorted(folder.glob("*.eml"))}


def test_no_token_is_written_to_a_mail_file(shop, rt):
    assert not rt.settings.smtp_url
    acme = shop.signup("FR", "company", name="Acme SAS", email="admin@acme.example")
    order = shop.order(acme, "web-hosting-starter-p1m", payment={"method": "test", "outcome": "success"})
    shop.deliver()
    bob = shop.signup("FR", "person", name="Bob Braun", email="bob@example.org", language="de_DE")
    r = shop.client.post(f"/v1/services/{order['services'][0]['id']}/contact-changes", json={"role": "tech", "to": bob["handle"]},
                         headers=acme["headers"])
    assert r.status_code == 201, r.text
    c = shop.client  # and a one-time sign-in link to the console
    c.cookies.clear()
    form = c.get("/manager/sign-in")
    asked = c.post("/manager/sign-in/link", data={"csrf": CSRF.search(form.text).group(1), "email": "admin@acme.example"})
    assert asked.status_code == 200
    tokens = _queued_tokens(rt)
    assert len(tokens) == 3  # each side of the change, and the link

    run_queues(rt)
    files = _files(rt)
    kinds = sorted(name.split("-", 1)[1] for name in files)
    assert kinds == ["contact_change_from.eml", "contact_change_to.eml", "sign_in_link.eml"]
    written = "\n".join(files.values())
    assert not any(token in written for token in tokens)
    assert written.count("[redacted]") >= 3
    assert "/manager/sign-in/link/[redacted]" in written  # the link is there, without what opens it


def test_a_mail_sent_over_smtp_still_carries_its_token(shop, rt, inbox):
    acme = shop.signup("FR", "company", name="Acme SAS", email="admin@acme.example")
    c = shop.client
    c.cookies.clear()
    form = c.get("/manager/sign-in")
    c.post("/manager/sign-in/link", data={"csrf": CSRF.search(form.text).group(1), "email": "admin@acme.example"})
    (token,) = _queued_tokens(rt)
    run_queues(rt)
    (mail,) = [m for m in inbox.messages if m["X-Univers-Notification"] == "sign_in_link"]
    assert token in mail.get_content() and acme["email"] == mail["To"]
    assert not list((Path(rt.settings.data_dir) / "mail").glob("*.eml"))
