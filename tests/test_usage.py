"""Usage ingestion of pay-as-you-go projects: POST /v1/usage and the month so far, on both engines."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from core.context import MetricSpec
from core.models import UsageRecord
from core.uow import unit_of_work
from core.usage import ingest as usage

PROJECT = "pci-project-p1m"  # free
NOW = "2026-01-05T09:00:00Z"  # the clock fixture's time


def record(project: int, rid: str, metric="instance_hours", quantity="1", at="2026-01-04T10:00:00Z", dimension="b3-8", **extra):
    out = {"id": rid, "project": project, "metric": metric, "quantity": quantity, "at": at, **extra}
    if dimension is not None:
        out["dimension"] = dimension
    return out


def send(client, customer, records, expect=200):
    r = client.post("/v1/usage", json={"records": records}, headers=customer["headers"])
    assert r.status_code == expect, r.text
    return r.json()


def project_of(shop, customer) -> int:
    return shop.order(customer, PROJECT)["services"][0]["id"]


@pytest.fixture
def acme(shop):
    customer = shop.signup()
    customer["project"] = project_of(shop, customer)
    return customer


def stored(rt) -> list[dict]:
    t = UsageRecord.__table__
    with rt.engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(t).order_by(t.c.service_id, t.c.record_id)).mappings()]


def rejected_codes(answer) -> dict[str, str]:
    return {r["id"]: r["code"] for r in answer["rejected"]}


def test_a_record_sent_twice_in_one_batch_counts_once(client, rt, acme):
    p = acme["project"]
    answer = send(client, acme, [record(p, "a"), record(p, "b"), record(p, "a")])
    assert (answer["received"], answer["accepted"], answer["duplicates"], answer["rejected"]) == (3, 2, 1, [])
    assert sorted(r["record_id"] for r in stored(rt)) == ["a", "b"]


def test_a_batch_sent_again_counts_once(client, rt, acme):
    p = acme["project"]
    batch = [record(p, f"r{i}", quantity="0.5") for i in range(20)]
    first, again = send(client, acme, batch), send(client, acme, batch + [record(p, "new")])
    assert (first["accepted"], first["duplicates"]) == (20, 0)
    assert (again["accepted"], again["duplicates"]) == (1, 20)
    assert len(stored(rt)) == 21


def test_each_rejection_has_its_own_code_and_the_valid_records_are_kept(shop, client, rt, acme, clock):
    p = acme["project"]
    server = shop.order(acme, "bm-ks-1-p1m", expect=201)  # unpaid or paid, it is not a project
    other = shop.signup(name="Other SARL")
    theirs = project_of(shop, other)
    batch = [
        record(p, "ok-1"),
        record(p, "unknown-metric", metric="gpu_minutes", dimension=None),
        record(p, "negative", quantity="-0.000001"),
        record(p, "future", at="2026-01-05T09:00:01Z"),
        record(p, "no-flavour", dimension=None),
        record(p, "bad-flavour", dimension="z9-999"),
        record(p, "flavour-on-egress", metric="egress_gb", dimension="b3-8"),
        record(p, "too-precise", quantity="0.0000001"),
        record(p, "not-a-number", quantity="lots"),
        record(p, "x" * 65),
        record(theirs, "theirs"),
        record(123456789, "nobody"),
        record(server["services"][0]["id"], "server"),
        record(p, "ok-2", metric="egress_gb", dimension=None, quantity=12),
    ]
    answer = send(client, acme, batch)
    assert rejected_codes(answer) == {
        "unknown-metric": "unknown_metric", "negative": "negative_quantity", "future": "future_timestamp",
        "no-flavour": "invalid_dimension", "bad-flavour": "invalid_dimension", "flavour-on-egress": "invalid_dimension",
        "too-precise": "invalid_quantity", "not-a-number": "invalid_quantity", "x" * 65: "invalid_id",
        "theirs": "project_not_found", "nobody": "project_not_found", "server": "not_a_project",
    }
    assert [r["index"] for r in answer["rejected"]] == list(range(1, 13))
    assert all(r["message"] for r in answer["rejected"])
    assert (answer["accepted"], answer["duplicates"]) == (2, 0)
    assert sorted(r["record_id"] for r in stored(rt)) == ["ok-1", "ok-2"]


def test_a_batch_with_nothing_accepted_and_repeated_quantities_is_answered_record_by_record(client, rt, acme):
    p = acme["project"]
    batch = [record(p, "neg-1", quantity="-0.000001"), record(p, "bad-1", quantity="lots"),
             record(p, "neg-2", quantity="-0.000001"), record(p, "bad-2", quantity="lots"), record(p, "x" * 65, quantity="lots")]
    answer = send(client, acme, batch)
    assert (answer["received"], answer["accepted"], answer["duplicates"]) == (5, 0, 0)
    assert [(r["index"], r["code"]) for r in answer["rejected"]] == [
        (0, "negative_quantity"), (1, "invalid_quantity"), (2, "negative_quantity"), (3, "invalid_quantity"), (4, "invalid_id")]
    nowhere = send(client, acme, [record(0, "zero"), record(-1, "minus"), record(2**63, "beyond")])  # no project to lock
    assert (nowhere["accepted"], [r["code"] for r in nowhere["rejected"]]) == (0, ["project_not_found"] * 3)
    assert stored(rt) == []


def test_another_accounts_project_is_refused_exactly_like_one_that_does_not_exist(shop, client, acme):
    other = shop.signup(name="Other SARL")
    theirs = project_of(shop, other)
    missing = theirs + 1000
    a = send(client, acme, [record(theirs, "probe")])["rejected"]
    b = send(client, acme, [record(missing, "probe")])["rejected"]
    assert a == b and a[0]["code"] == "project_not_found"
    # and their own records are not touched by the same ids
    assert send(client, other, [record(theirs, "probe")])["accepted"] == 1


def test_a_closed_period_refuses_late_records_but_the_next_month_is_open(client, rt, acme, clock):
    p = acme["project"]
    clock.set("2026-02-01T02:00:00+00:00")
    with unit_of_work(rt) as conn:
        assert usage.close_period(conn, p, dt.date(2026, 1, 1), at=clock.now())
        assert not usage.close_period(conn, p, dt.date(2026, 1, 1), at=clock.now())  # once
    answer = send(client, acme, [record(p, "late", at="2026-01-31T23:59:59Z"), record(p, "feb", at="2026-02-01T00:00:00Z"),
                                 record(p, "late-offset", at="2026-02-01T00:30:00+01:00")])  # still January in UTC
    assert rejected_codes(answer) == {"late": "closed_period", "late-offset": "closed_period"}
    assert answer["rejected"][0]["message"]
    assert answer["accepted"] == 1
    january = client.get(f"/v1/services/{p}/usage?period=2026-01", headers=acme["headers"]).json()
    assert january["closed"] is True and january["lines"] == []


def test_a_timestamp_in_the_future_is_refused_until_it_is_past(client, acme, clock):
    p = acme["project"]
    ahead = record(p, "ahead", at="2026-01-05T10:00:00+00:00")
    assert rejected_codes(send(client, acme, [ahead])) == {"ahead": "future_timestamp"}
    clock.advance(hours=2)
    assert send(client, acme, [ahead])["accepted"] == 1


def test_quantities_are_exact_to_the_micro_unit(client, rt, acme):
    p = acme["project"]
    quantities = ["0.1"] * 10 + ["12345678901.123456", "0.000001", 2.5, 7]
    batch = [record(p, f"q{i}", metric="egress_gb", dimension=None, quantity=q) for i, q in enumerate(quantities)]
    assert send(client, acme, batch)["accepted"] == len(quantities)
    got = {r["record_id"]: r["quantity_micro"] for r in stored(rt)}
    assert [got[f"q{i}"] for i in range(len(quantities))] == [100_000] * 10 + [12345678901123456, 1, 2_500_000, 7_000_000]
    lines = client.get(f"/v1/services/{p}/usage?period=2026-01", headers={**acme["headers"], "Accept-Language": "en"}).json()["lines"]
    assert lines == [{"metric": "egress_gb", "name": "Outgoing traffic", "unit": "GB", "dimension": None,
                      "quantity": "12345678911.623457", "quantity_micro": 12345678911623457, "records": 14}]


def test_usage_is_read_per_metric_and_dimension_for_the_month_so_far(client, acme):
    p = acme["project"]
    batch = [record(p, f"h{i}", quantity="1", at=f"2026-01-0{1 + i % 4}T0{i % 10}:00:00Z") for i in range(10)]
    batch += [record(p, "big", dimension="b3-16", quantity="3"), record(p, "vol", metric="block_storage_gb_hours",
                                                                        dimension=None, quantity="100.25"),
              record(p, "december", quantity="5", at="2025-12-31T23:00:00Z")]
    send(client, acme, batch)
    r = client.get(f"/v1/services/{p}/usage", headers={**acme["headers"], "Accept-Language": "fr"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["period"] == "2026-01-01" and body["closed"] is False
    got = {(line["metric"], line["dimension"]): (line["quantity"], line["records"]) for line in body["lines"]}
    assert got == {("block_storage_gb_hours", None): ("100.25", 1), ("instance_hours", "b3-16"): ("3", 1),
                   ("instance_hours", "b3-8"): ("10", 10)}
    assert next(line["name"] for line in body["lines"] if line["metric"] == "instance_hours") != "Instance hours"  # in French
    december = client.get(f"/v1/services/{p}/usage?period=2025-12", headers=acme["headers"]).json()["lines"]
    assert [(line["quantity"], line["records"]) for line in december] == [("5", 1)]
    assert client.get(f"/v1/services/{p}/usage?period=2026-13", headers=acme["headers"]).status_code == 400


def test_a_batch_holds_at_most_10000_records(client, rt, acme):
    p = acme["project"]
    batch = [record(p, f"r{i}", metric="egress_gb", dimension=None) for i in range(usage.MAX_BATCH + 1)]
    answer = send(client, acme, batch, expect=413)
    assert answer["code"] == "too_many_records" and "10000" in answer["detail"].replace(",", "").replace("\u202f", "")
    assert stored(rt) == []
    assert send(client, acme, batch[:-1])["accepted"] == usage.MAX_BATCH


def test_a_malformed_batch_is_refused_whole(client, rt, acme):
    p = acme["project"]
    for body in ({"records": [record(p, "naive", at="2026-01-04T10:00:00")]}, {"records": [{"id": "x"}]},
                 {"records": [record(p, "extra", colour="red")]}, {"nothing": []}):
        r = client.post("/v1/usage", json=body, headers=acme["headers"])
        assert r.status_code == 422 and r.json()["code"] == "invalid_usage_batch", r.text
    r = client.post("/v1/usage", content=b"not json", headers={**acme["headers"], "Content-Type": "application/json"})
    assert r.status_code == 422
    assert stored(rt) == []


def test_only_the_admin_and_tech_contacts_send_usage_and_the_contacts_read_it(shop, client, rt, acme):
    from sqlalchemy import update

    from core.models import Service

    p = acme["project"]
    billing = shop.signup(name="Billing Ltd")
    tech = shop.signup(name="Tech Ltd")
    with unit_of_work(rt) as conn:
        conn.execute(update(Service.__table__).where(Service.__table__.c.id == p)
                     .values(billing_account_id=billing["id"], tech_account_id=tech["id"]))
    assert send(client, tech, [record(p, "from-tech")])["accepted"] == 1
    assert rejected_codes(send(client, billing, [record(p, "from-billing")])) == {"from-billing": "role_forbids"}
    for who in (acme, tech, billing):
        assert client.get(f"/v1/services/{p}/usage", headers=who["headers"]).status_code == 200
    stranger = shop.signup(name="Stranger")
    assert client.get(f"/v1/services/{p}/usage", headers=stranger["headers"]).status_code == 404


def test_staff_support_may_send_usage_for_any_project_and_keys_need_their_scope(shop, client, rt, acme):
    from core.customers.accounts import create_customer

    p = acme["project"]
    assert send(client, {"headers": shop.staff()}, [record(p, "by-admin-staff")])["accepted"] == 1
    with unit_of_work(rt) as conn:
        _, key = create_customer(conn, rt, {"subsidiary": "FR", "name": "Bill Ops", "email": "b@univers.example"},
                                 is_staff=True, staff_role="billing_operator")
    answer = send(client, {"headers": {"Authorization": f"Bearer {key}"}}, [record(p, "by-billing-operator")])
    assert rejected_codes(answer) == {"by-billing-operator": "role_forbids"}
    # a read-only key may read usage but not send it
    r = client.post("/v1/me/api-keys", json={"name": "ro", "scopes": ["services:read"]}, headers=acme["headers"])
    assert r.status_code == 201, r.text
    ro = {"headers": {"Authorization": f"Bearer {r.json()['secret']}"}}
    assert send(client, ro, [record(p, "ro")], expect=403)["code"] == "scope_missing"
    assert client.get(f"/v1/services/{p}/usage", headers=ro["headers"]).status_code == 200
    assert client.post("/v1/usage", json={"records": []}).status_code == 401


def test_the_publiccloud_plugin_contributes_its_metrics_with_the_flavours_of_its_catalog(rt):
    metrics = rt.metrics
    assert {"instance_hours", "block_storage_gb_hours", "object_storage_gb_months", "egress_gb"} <= set(metrics)
    assert {m.universe for m in metrics.values()} == {"publiccloud"}
    hours = metrics["instance_hours"]
    assert hours.dimension == "flavour" and {"b3-8", "t2-45"} <= set(hours.values) and hours.unit == "hour"
    assert metrics["egress_gb"].dimension is None


class Rogue:
    from core import hookimpl

    @hookimpl
    def univers_register_metrics(self, ctx):
        return [MetricSpec("egress_gb", "rogue", "GB")]


def test_a_metric_code_contributed_twice_stops_start_up_naming_both_plugins(tmp_path):
    from core.clock import FrozenClock
    from core.config import Settings
    from core.context import PluginContext
    from core.plugins import PluginError, build_plugin_manager, metrics

    pm = build_plugin_manager(Settings(data_dir=tmp_path), [("rogue", Rogue())])
    with pytest.raises(PluginError) as err:
        metrics(pm, PluginContext(Settings(data_dir=tmp_path), FrozenClock("2026-01-01")))
    assert "rogue" in str(err.value) and "egress_gb" in str(err.value) and "publiccloud" in str(err.value)


@pytest.mark.parametrize("text, micro", [("1", 1_000_000), ("0.000001", 1), ("1.2345670", 1_234_567), ("-2", -2_000_000),
                                         ("1e-6", 1), ("1.0000001", None), ("NaN", None), ("Infinity", None), ("1e30", None),
                                         ("0." + "0" * 60 + "1", None), ("1." + "0" * 80, 1_000_000)])
def test_quantities_convert_to_micro_units_exactly_or_not_at_all(text, micro):
    import json
    from decimal import Decimal

    import msgspec

    assert usage.to_micro(Decimal(text)) == micro
    assert usage.to_micro(msgspec.Raw(json.dumps(text).encode())) == micro  # as a JSON string
    if text[0] in "-0123456789" and "Infinity" not in text:
        assert usage.to_micro(msgspec.Raw(text.encode())) == micro  # as a JSON number


@pytest.mark.parametrize("raw, micro", [(b"9223372036854.775807", 2**63 - 1), (b"9223372036854.775808", None),
                                        (b"9999999999999.999999", None), (b'"-9223372036854.775807"', -(2**63 - 1)),
                                        (b"true", None), (b'"1 "', None), (b'"1_000"', None), (b'"\\u0031"', 1_000_000)])
def test_the_largest_quantities_and_odd_json_values(raw, micro):
    import msgspec

    assert usage.to_micro(msgspec.Raw(raw)) == micro


def test_micro_units_print_exactly():
    assert [usage.format_micro(v) for v in (0, 1, 1_500_000, -250_000, 12345678901123456)] == \
        ["0", "0.000001", "1.5", "-0.25", "12345678901.123456"]


def test_a_month_that_sums_past_64_bits_is_read_exactly(client, acme):
    """Each record is at most 2**63 - 1 micro-units, their month's sum is not: it is read exactly
    (SQLite's SUM would overflow), for the usage and for the consumption so far."""
    p = acme["project"]
    top = "9223372036854.775807"  # the largest quantity a record holds
    send(client, acme, [record(p, f"huge{i}", metric="egress_gb", dimension=None, quantity=top) for i in range(3)])
    r = client.get(f"/v1/services/{p}/usage?period=2026-01", headers=acme["headers"])
    assert r.status_code == 200, r.text
    [line] = r.json()["lines"]
    assert line["quantity"] == "27670116110564.327421" and line["records"] == 3
    r = client.get(f"/v1/services/{p}/consumption", headers=acme["headers"])
    assert r.status_code == 200, r.text
    assert r.json()["lines"][0]["quantity"] == "27670116110564.327421"
