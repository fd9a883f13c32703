"""Infrastructure logs per service (core/infralogs): sent by the infrastructure, read by the
service's admin and tech contacts, followed live, kept per universe, on both engines."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import func, select, update

from core.audit import Actor
from core.infralogs import retention
from core.models import InfraLogEntry, Service
from core.uow import unit_of_work

SERVER = "bm-ks-1-p1m"  # a baremetal server
PROJECT = "pci-project-p1m"  # a Public Cloud project
NOW = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)  # the clock fixture's time
logs = InfraLogEntry.__table__
svc = Service.__table__


def entry(eid: str, at: dt.datetime = NOW - dt.timedelta(hours=1), severity="info", source="hardware",
          message="Fan 2 speed nominal", **extra) -> dict:
    return {"id": eid, "at": at.isoformat().replace("+00:00", "Z"), "severity": severity, "source": source,
            "message": message, **extra}


def send(shop, staff, service_id, expect=200, **body):
    r = shop.client.post(f"/v1/services/{service_id}/logs", json=body, headers=staff)
    assert r.status_code == expect, r.text
    return r.json()


def read(shop, headers, service_id, expect=200, **params):
    r = shop.client.get(f"/v1/services/{service_id}/logs", params=params, headers=headers)
    assert r.status_code == expect, r.text
    return r.json()


def stored(rt, service_id) -> int:
    with rt.engine.connect() as conn:
        return conn.execute(select(func.count()).where(logs.c.service_id == service_id)).scalar_one()


@pytest.fixture
def world(shop):
    """A delivered server whose admin is its owner, whose tech contact is another account and
    whose billing contact a third; a stranger; an administrator's key (the infrastructure)."""
    owner = shop.signup(name="Owner SAS", top_up="500.00")
    tech, billing, stranger = (shop.signup(name=f"{n} SAS") for n in ("Tech", "Billing", "Stranger"))
    service_id = shop.order(owner, SERVER)["services"][0]["id"]
    shop.deliver()
    with unit_of_work(shop.rt) as conn:
        conn.execute(update(svc).where(svc.c.id == service_id).values(tech_account_id=tech["id"],
                                                                       billing_account_id=billing["id"]))
    return {"service": service_id, "owner": owner["headers"], "tech": tech["headers"], "billing": billing["headers"],
            "stranger": stranger["headers"], "staff": shop.staff()}


def test_a_disk_replacement_shows_in_the_tech_contacts_logs_and_not_in_a_strangers(shop, world):
    """Done when: the datacentre reports a disk replaced on a baremetal server (a raw event its
    plugin translates); the server's tech contact reads it, a stranger gets 404."""
    sid = world["service"]
    done = send(shop, world["staff"], sid, events=[{"id": "dc-rbx-4711", "at": "2026-01-05T08:30:00Z",
                                                    "event": {"type": "disk.replaced", "slot": 2, "serial": "WD-42"}}])
    assert done == {"received": 1, "accepted": 1, "duplicates": 0}
    page = read(shop, world["tech"], sid)
    disk = [e for e in page["entries"] if e["id"] == "dc-rbx-4711"]
    assert len(disk) == 1
    assert disk[0]["source"] == "intervention" and disk[0]["severity"] == "notice"
    assert disk[0]["message"].startswith("Disk 2 of ns") and "replaced" in disk[0]["message"]
    assert disk[0]["fields"]["serial"] == "WD-42" and disk[0]["at"].startswith("2026-01-05T08:30:00")
    r = shop.client.get(f"/v1/services/{sid}/logs", headers=world["stranger"])
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "not_found"
    assert shop.client.get(f"/v1/services/{sid}/logs/tail", headers=world["stranger"]).status_code == 404


def test_the_admin_and_staff_read_the_logs_but_not_the_billing_contact(shop, world):
    sid = world["service"]
    assert read(shop, world["owner"], sid)["entries"]  # the admin: its delivery at least
    assert read(shop, world["staff"], sid)["entries"]
    r = shop.client.get(f"/v1/services/{sid}/logs", headers=world["billing"])
    assert r.status_code == 403 and r.json()["code"] == "role_forbids"


def test_provisioning_and_the_lifecycle_write_entries_through_the_universe(shop, world):
    sid = world["service"]
    delivered = read(shop, world["tech"], sid, source="provisioning")["entries"]
    assert [e["message"].endswith("delivered") for e in delivered] == [True]
    assert delivered[0]["fields"]["resource"].startswith("ns")
    r = shop.client.post(f"/v1/services/{sid}/terminate", headers=world["owner"])
    assert r.status_code == 200, r.text
    shop.deliver()
    shop.deliver()  # the outbox recorded once: its entries are stored once
    stopped = read(shop, world["tech"], sid, source="lifecycle")["entries"]
    assert [(e["severity"], "stopped" in e["message"]) for e in stopped] == [("warning", True)]


def test_a_technical_action_is_logged_as_an_intervention(shop, world):
    sid = world["service"]
    assert shop.client.post(f"/v1/services/{sid}/actions/reboot", headers=world["tech"]).status_code == 202
    shop.deliver()
    [e] = read(shop, world["tech"], sid, source="intervention")["entries"]
    assert e["message"].startswith("reboot of ns") and e["fields"]["action"] == "reboot"


def test_a_ddos_mitigated_on_a_public_cloud_project(shop):
    owner = shop.signup(name="Cloud SAS", top_up="50.00")
    pid = shop.order(owner, PROJECT)["services"][0]["id"]
    shop.deliver()
    send(shop, shop.staff(), pid, events=[{"id": "vac-1", "event": {"type": "ddos.mitigated", "ip": "51.91.0.7",
                                                                      "peak_mbps": 3800, "vector": "UDP flood"}}])
    [e] = read(shop, owner["headers"], pid, source="ddos")["entries"]
    assert e["severity"] == "warning"
    assert e["message"] == "Attack on 51.91.0.7 mitigated: 3800 Mbit/s of UDP flood filtered"
    assert e["at"].startswith("2026-01-05T09:00:00")  # no time given: when it was received


def test_a_batch_sent_again_is_stored_once(shop, world):
    sid, staff = world["service"], world["staff"]
    before = stored(shop.rt, sid)
    batch = [entry(f"e{i}", severity="warning", fields={"disk": i}) for i in range(50)]
    assert send(shop, staff, sid, entries=batch) == {"received": 50, "accepted": 50, "duplicates": 0}
    assert send(shop, staff, sid, entries=batch + batch[:1]) == {"received": 51, "accepted": 0, "duplicates": 51}
    assert stored(shop.rt, sid) == before + 50


@pytest.mark.parametrize("bad, code", [
    ({"severity": "fatal"}, "invalid_log_batch"),
    ({"source": "Hardware!"}, "invalid_log_batch"),
    ({"message": "disk\x1b[31m failed"}, "control_character"),  # refused by the guard of every body, before the batch is read
    ({"message": ""}, "invalid_log_batch"),
    ({"message": "x" * 2001}, "invalid_log_batch"),
    ({"id": "a" * 65}, "invalid_log_batch"),
    ({"id": "no spaces"}, "invalid_log_batch"),
    ({"at": "2026-01-05T08:00:00"}, "invalid_log_batch"),  # no offset
    ({"at": "2026-01-05T10:00:00Z"}, "future_timestamp"),
    ({"fields": {"blob": "x" * 5000}}, "log_fields_too_large"),
    ({"extra": 1}, "invalid_log_batch"),
])
def test_one_invalid_entry_refuses_the_whole_batch(shop, world, bad, code):
    sid = world["service"]
    before = stored(shop.rt, sid)
    r = shop.client.post(f"/v1/services/{sid}/logs", json={"entries": [entry("good"), {**entry("bad"), **bad}]},
                         headers=world["staff"])
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json") and r.json()["code"] == code
    assert stored(shop.rt, sid) == before


def test_a_batch_is_bounded(shop, world):
    r = shop.client.post(f"/v1/services/{world['service']}/logs", headers=world["staff"],
                         json={"entries": [entry(f"e{i}") for i in range(10_001)]})
    assert r.status_code == 413 and r.json()["code"] == "too_many_entries"


def test_only_the_infrastructure_sends_entries(shop, world):
    sid = world["service"]
    assert send(shop, world["owner"], sid, expect=403, entries=[entry("x")])["code"] == "role_forbids"
    assert send(shop, world["stranger"], sid, expect=404, entries=[entry("x")])["code"] == "not_found"
    assert send(shop, world["staff"], 10**12, expect=404, entries=[entry("x")])["code"] == "not_found"


def test_pages_are_newest_first_filtered_and_keyset(shop, world):
    sid, staff = world["service"], world["staff"]
    severities = ["debug", "info", "notice", "warning", "error", "critical"]
    batch = [entry(f"e{i:03d}", at=NOW - dt.timedelta(minutes=120 - i // 2), severity=severities[i % 6],
                   source="network" if i % 2 else "hardware") for i in range(120)]
    send(shop, staff, sid, entries=batch)
    since = (NOW - dt.timedelta(minutes=121)).isoformat()  # the sent entries, not the server's delivery
    until = (NOW - dt.timedelta(minutes=1)).isoformat()
    seen, cursor = [], None
    while True:
        page = read(shop, world["tech"], sid, limit=50, since=since, until=until, **({"cursor": cursor} if cursor else {}))
        seen += page["entries"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 120 and len({e["id"] for e in seen}) == 120
    keys = [(e["at"], e["seq"]) for e in seen]
    assert keys == sorted(keys, reverse=True)
    warn = read(shop, world["tech"], sid, severity="warning", source="network", limit=200, since=since, until=until)["entries"]
    assert warn and all(e["severity"] in ("warning", "error", "critical") and e["source"] == "network" for e in warn)
    assert len(warn) == len([b for b in batch if b["source"] == "network" and b["severity"] in ("warning", "error", "critical")])
    window = read(shop, world["tech"], sid, since=(NOW - dt.timedelta(minutes=100)).isoformat(),
                  until=(NOW - dt.timedelta(minutes=90)).isoformat(), limit=200)["entries"]
    assert len(window) == 20
    for bad in ({"severity": "loud"}, {"source": "NOPE"}, {"cursor": "yesterday"}, {"limit": 0}):
        r = shop.client.get(f"/v1/services/{sid}/logs", params=bad, headers=world["tech"])
        assert r.status_code in (400, 422) and r.headers["content-type"].startswith("application/problem+json"), r.text


def _events(response) -> list[dict]:
    out, current = [], {}
    for line in response.iter_lines():
        if not line:
            if current:
                out.append(current)
            current = {}
            continue
        key, _, value = line.partition(":")
        current[key] = value.strip()
    if current:
        out.append(current)
    return out


def test_the_live_tail_streams_new_entries_as_server_sent_events(shop, world):
    sid, staff = world["service"], world["staff"]
    first = read(shop, world["tech"], sid)["entries"][0]["seq"]  # what was there before: the delivery
    send(shop, staff, sid, entries=[entry(f"t{i}", severity="error") for i in range(4)])
    with shop.client.stream("GET", f"/v1/services/{sid}/logs/tail", params={"after": first, "limit": 3, "timeout": 5},
                            headers=world["tech"]) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = [e for e in _events(r) if e.get("event") == "log"]
    assert [json.loads(e["data"])["id"] for e in events] == ["t0", "t1", "t2"]
    assert [int(e["id"]) for e in events] == sorted(int(e["id"]) for e in events)
    # reconnecting with Last-Event-ID goes on where it stopped; nothing new: ends at its timeout
    with shop.client.stream("GET", f"/v1/services/{sid}/logs/tail", params={"timeout": 0.2},
                            headers={**world["tech"], "Last-Event-ID": events[-1]["id"]}) as r:
        rest = [json.loads(e["data"])["id"] for e in _events(r) if e.get("event") == "log"]
    assert rest == ["t3"]


def test_entries_are_kept_as_long_as_their_universe_says(shop, world, clock):
    sid, staff = world["service"], world["staff"]
    assert shop.rt.ladder("baremetal").logs_kept == 90 and shop.rt.ladder("publiccloud").logs_kept == 30
    send(shop, staff, sid, entries=[entry("old", at=NOW - dt.timedelta(days=95)), entry("recent", at=NOW - dt.timedelta(days=60))])
    done = retention.purge(shop.rt, chunk=1)  # in chunks
    assert done.by_universe.get("baremetal", 0) == 1
    ids = {e["id"] for e in read(shop, staff, sid, limit=200)["entries"]}
    assert "recent" in ids and "old" not in ids
    assert retention.purge(shop.rt).deleted == 0  # again: nothing left to do


def test_the_logs_go_with_the_services_data(shop, world):
    sid = world["service"]
    send(shop, world["staff"], sid, entries=[entry("kept-until-deletion")])
    assert shop.client.post(f"/v1/services/{sid}/terminate", headers=world["owner"]).status_code == 200
    shop.deliver()
    assert stored(shop.rt, sid) > 0  # terminated: its data, logs included, is kept until deletion
    ladder = shop.rt.ladder("baremetal")
    shop.days(shop.clock.today() + dt.timedelta(days=ladder.delete_after + 1))
    assert shop.service({"headers": world["staff"]}, sid)["state"] == "deleted"
    assert stored(shop.rt, sid) == 0


def test_the_logs_are_part_of_the_export_of_those_who_read_them(shop, world, other_db):
    from core.portability import account_import, export

    sid = world["service"]
    send(shop, world["staff"], sid, events=[{"id": "dc-9", "event": {"type": "disk.replaced", "slot": 1}}])
    tech = shop.client.get("/v1/me/export", headers=world["tech"]).json()
    billing = shop.client.get("/v1/me/export", headers=world["billing"]).json()
    assert [e["id"] for e in tech["infra_logs"] if e["service_id"] == sid][-1] == "dc-9"
    assert billing["infra_logs"] == []  # its billing contact does not read them
    owner = shop.client.get("/v1/me/export", headers=world["owner"]).json()
    with unit_of_work(other_db) as conn:
        result = account_import.import_account(conn, other_db, owner)
        again = export.export_account(conn, other_db, result.account_id)
    assert export.canonical(again)["infra_logs"] == export.canonical(owner)["infra_logs"] != []
    old = {k: v for k, v in owner.items() if k != "infra_logs"}  # a document made before the logs still reads
    assert export.canonical(old)["infra_logs"] == []


def test_the_tail_sends_a_batch_that_commits_after_a_later_one_once(shop, world):
    """Two senders: the batch numbered first commits last. The tail sends the later one at once,
    the earlier one when it commits, and neither twice once the floor has moved past them."""
    from core.infralogs import entries as infra

    if shop.rt.engine.dialect.name == "sqlite":
        pytest.skip("SQLite has one writer: batches commit in the order they are numbered")
    sid, rt = world["service"], shop.rt
    with rt.engine.connect() as conn:
        start = infra.check_tail(conn, Actor.system("test"), sid)
    now = NOW - dt.timedelta(minutes=1)
    ticks = [0.0]
    tail = infra.Tail(sid, infra.Filters(), start, hold=5.0, clock=lambda: ticks[0])

    def rows(prefix: str) -> list[tuple]:
        return [(f"{prefix}{i}", now, 1, "network", f"{prefix} {i}", None) for i in range(3)]

    first = rt.engine.connect()
    trans = first.begin()
    try:
        assert infra.store(first, sid, rows("slow-"), now) == 3  # numbered first, not committed yet
        with rt.engine.begin() as second:
            assert infra.store(second, sid, rows("quick-"), now) == 3
        with rt.engine.connect() as reader:
            assert [e["id"] for e in tail.poll(reader)] == ["quick-0", "quick-1", "quick-2"]
        trans.commit()
    finally:
        first.close()
    ticks[0] = 1.0
    with rt.engine.connect() as reader:
        assert [e["id"] for e in tail.poll(reader)] == ["slow-0", "slow-1", "slow-2"]
        assert tail.poll(reader) == []
        ticks[0] = 10.0  # all settled: the floor moves past them, and nothing comes twice
        assert tail.poll(reader) == [] and not tail.sent and tail.floor > start


def test_two_senders_of_the_same_batch_at_once_store_it_once(shop, world):
    """The second sender waits on the first's uncommitted keys, then finds them stored: no error,
    nothing twice (PostgreSQL; SQLite has one writer)."""
    import threading

    from core.infralogs import entries as infra

    if shop.rt.engine.dialect.name == "sqlite":
        pytest.skip("SQLite has one writer: the second sender starts after the first committed")
    sid, rt = world["service"], shop.rt
    now = NOW - dt.timedelta(minutes=1)
    rows = [(f"twice-{i}", now, 3, "hardware", "Disk 1 SMART warning", None) for i in range(5)]
    before = stored(rt, sid)
    second: list = []
    with rt.engine.begin() as first:
        assert infra.store(first, sid, rows, now) == 5

        def send_again() -> None:
            with rt.engine.begin() as conn:
                second.append(infra.store(conn, sid, rows + rows[:1], now))

        racer = threading.Thread(target=send_again)
        racer.start()
        racer.join(0.5)
        assert racer.is_alive()  # waiting on the first sender's keys
    racer.join(10)
    assert second == [0] and stored(rt, sid) == before + 5
