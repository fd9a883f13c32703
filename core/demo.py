"""Demo data, seeded on first start: customers in five countries with services due soon.

Everything goes through the real operations (sign-up, top-up, checkout, provisioning, usage
ingestion, savings plan, spending alert, support tickets, a contact change), with the clock set
back four weeks, so the first renewal run has real work to do, and the Public Cloud project has
four weeks of hourly usage. Two tickets wait in the support queue, and a change of a server's
technical contact waits for the answers of its two accounts.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
from pathlib import Path

import msgspec
from sqlalchemy import func, select

from core.audit import Actor
from core.clock import FrozenClock
from core.customers.accounts import authenticate, create_customer
from core.lifecycle.outbox import run_outbox
from core.models import Account, Service
from core.money import to_minor
from core.ordering.orders import checkout, dry_run
from core.payments.settlement import top_up
from core.runtime import Runtime
from core.uow import unit_of_work

CUSTOMERS = [
    ({"subsidiary": "FR", "kind": "company", "name": "Boulangerie Numérique SAS", "email": "it@boulangerie.example",
      "vat_number": "FR40303265045"}, "2000", ["bm-rise-1-p1m", "web-hosting-pro-p1m", "support-baremetal-l2"]),
    ({"subsidiary": "DE", "kind": "person", "name": "Jonas Weber", "email": "jonas@weber.example", "language": "de_DE"},
     "500", ["web-hosting-personal-p1m", "pci-project-p1m"]),
    ({"subsidiary": "GB", "kind": "company", "name": "Thames Analytics Ltd", "email": "ops@thames.example"},
     "3000", ["bm-advance-1-p1m-e12", "pci-b3-8-p1m"]),
    ({"subsidiary": "CA", "kind": "company", "name": "Érable Cloud Inc.", "email": "admin@erable.example"},
     "50000", ["hpc-essentials-p1m-e12"]),
    ({"subsidiary": "US", "kind": "person", "name": "Alex Rivera", "email": "alex@rivera.example"},
     "20", ["web-hosting-starter-p1m", "web-email-pro-p1m"]),
]


def seed(rt: Runtime, keys_file: Path | None = None) -> dict | None:
    """Seed once (does nothing when accounts exist). Returns the demo API keys."""
    with unit_of_work(rt) as conn:
        if conn.execute(select(func.count()).select_from(Account.__table__)).scalar_one():
            return None
    past = dataclasses.replace(rt, clock=FrozenClock(rt.clock.now() - dt.timedelta(days=27)))
    keys, handles = {}, []
    with unit_of_work(past) as conn:
        staff, keys[STAFF] = create_customer(conn, past, {"subsidiary": "FR", "kind": "company", "name": "Univers Back Office",
                                                           "email": "backoffice@univers.example", "language": "en"}, is_staff=True)
    for data, balance, plans in CUSTOMERS:
        with unit_of_work(past) as conn:
            account, key = create_customer(conn, past, data)
        keys[account["handle"]] = key
        handles.append(account["handle"])
        currency = rt.storefronts[data["subsidiary"]].currency
        with unit_of_work(past) as conn:
            me = authenticate(conn, key, past.clock.now())[0]
            top_up(conn, past, me.id, to_minor(balance, currency), "test", "success", Actor.of(me))
        for n, plan in enumerate(plans):
            if plan not in rt.catalog.plans:
                continue
            options = {"domain": "example.com"} if rt.catalog.plans[plan].kind == "domain" else {}
            with unit_of_work(past) as conn:
                me = authenticate(conn, key, past.clock.now())[0]
                cart = {"items": [{"plan": plan, "options": options}], "payment": {"method": "balance"}}
                cart["accept"] = [c["content_hash"] for c in dry_run(conn, past, me, cart, me.language)["contracts"]]
                checkout(conn, past, me, cart, f"demo-{n}", Actor.of(me), me.language)
    run_outbox(past)
    _pay_as_you_go(rt)
    _support_and_contacts(rt, keys[handles[0]], handles[2])
    if keys_file:
        write_keys(keys_file, keys)
    return keys


STAFF = "staff"  # the administrator's entry in the keys


def write_keys(path: Path, keys: dict) -> None:
    """All the demo keys, the administrator's included, in a file only its owner may read (0600),
    created so from the start (never readable by others, even for a moment)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an older file of the same name keeps its mode otherwise
    with os.fdopen(fd, "w") as out:
        out.write(json.dumps(keys, indent=1) + "\n")


def announce(keys: dict, keys_file: Path | None) -> list[str]:
    """What ``univers serve`` and ``univers demo`` print: the customers' keys; the
    administrator's is only in the keys file (a terminal's scrollback and a CI log are read by
    more people than the file)."""
    lines = [f"  {who:24} {key}" for who, key in keys.items() if who != STAFF]
    if STAFF in keys:
        lines.append(f"  {'administrator':24} (its key is in {keys_file}, readable by you only)" if keys_file
                     else f"  {'administrator':24} (its key is not shown)")
    return lines


def _support_and_contacts(rt: Runtime, bakery_key: str, thames: str) -> None:
    """Work for the support queue and for the Manager: the bakery opens an urgent ticket about its
    server and a low one about its hosting, and asks that Thames Analytics become the technical
    contact of its server (both accounts are mailed a code; the change waits for their answers)."""
    from core.customers import contacts
    from core.support import tickets

    svc = Service.__table__
    with unit_of_work(rt) as conn:
        me = authenticate(conn, bakery_key, rt.clock.now())[0]
        mine = dict(conn.execute(select(svc.c.plan_code, svc.c.id).where(svc.c.admin_account_id == me.id)).all())
        actor = Actor.of(me)
        for plan, subject, body, priority in (
                ("bm-rise-1-p1m", "Server unreachable since this morning", "No ping, no SSH since 09:40.", "urgent"),
                ("web-hosting-pro-p1m", "Slow back office", "Our shop's admin pages take 5 s to load.", "low")):
            if plan in mine:
                tickets.open_ticket(conn, rt, actor, mine[plan], subject=subject, body=body, priority=priority)
        if "bm-rise-1-p1m" in mine:
            contacts.request_change(conn, rt, actor, mine["bm-rise-1-p1m"], "tech", thames)


def _pay_as_you_go(rt: Runtime) -> None:
    """The demo's Public Cloud project: a b3-8 instance and a 50 GB volume every hour of the four
    weeks past, a spending alert at 20 and a savings plan of 50 a month from next month."""
    from core.usage import alerts, commitments
    from core.usage import ingest as usage

    svc = Service.__table__
    with unit_of_work(rt) as conn:
        project = conn.execute(select(svc.c.id, svc.c.admin_account_id).where(svc.c.kind == "project", svc.c.state == "active")
                               .order_by(svc.c.id).limit(1)).first()
    if project is None:
        return
    now = rt.clock.now().replace(minute=0, second=0, microsecond=0)
    hours = [now - dt.timedelta(hours=h) for h in range(1, 27 * 24)]
    records = [usage.UsageRecordIn(f"demo-{kind}-{at:%Y%m%d%H}", project.id, metric, msgspec.Raw(quantity), at, dimension)
               for at in hours for kind, metric, quantity, dimension in (("vm", "instance_hours", b'"1"', "b3-8"),
                                                                          ("vol", "block_storage_gb_hours", b'"50"', None))]
    with unit_of_work(rt) as conn:
        me = conn.execute(select(Account.__table__).where(Account.__table__.c.id == project.admin_account_id)).one()
        actor = Actor.of(me)
        for start in range(0, len(records), usage.MAX_BATCH):
            usage.ingest(conn, rt, actor, records[start:start + usage.MAX_BATCH])
        alerts.set_alert(conn, rt, actor, project.id, "20.00")
        commitments.commit(conn, rt, actor, project.id, "50.00", 12)
