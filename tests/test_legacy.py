"""The legacy import (core/portability/legacy.py): services of the old billing system, with their expiry
dates, loaded all or nothing, idempotently, set-based; its staff API and its CLI."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest
from sqlalchemy import func, select

from core.audit import Actor
from core.customers import accounts as customers
from core.errors import InvalidInput
from core.i18n import translate
from core.models import Account, AuditEvent, OutboxItem, Service
from core.portability import legacy
from core.uow import unit_of_work

svc, acct, events = Service.__table__, Account.__table__, AuditEvent.__table__
HEADER = ["legacy_id", "customer", "customer_name", "customer_email", "customer_kind", "customer_country", "language",
          "vat_number", "plan", "quantity", "expires_on", "price", "started_on", "admin", "tech", "billing", "options"]
# plans of the FR catalog, with a legacy price each (not the catalog's)
PLANS = [("web-hosting-pro-p1m", "8.50", 1, None), ("web-hosting-starter-p12m", "25.00", 1, None),
         ("web-domain-fr-p12m", "6.99", 1, "domain"), ("web-email-pro-p1m", "1.50", 3, None),
         ("bm-rise-1-p1m", "49.99", 1, None), ("pci-b3-8-p1m", "30.00", 1, None)]
EXPIRY = dt.date(2026, 3, 1)  # the clock is at 2026-01-05


def row(legacy_id, customer, plan="web-hosting-pro-p1m", expires_on="2026-06-30", price="8.50", **extra) -> dict:
    return {"legacy_id": legacy_id, "customer": customer, "customer_name": f"Customer {customer}",
            "customer_email": f"{customer}@legacy.example", "customer_kind": "person", "customer_country": "FR",
            "plan": plan, "expires_on": expires_on, "price": price, **extra}


def to_csv(rows: list[dict], header: list[str] = HEADER) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def big_file(services: int = 10_000, customers: int = 2_000) -> bytes:
    """``services`` rows for ``customers`` customers, several plans, expiries spread over a
    year; every tenth customer's services name the next customer as their admin contact and
    companies have a VAT number."""
    rows = []
    for i in range(services):
        c = i % customers
        plan, price, quantity, option = PLANS[i % len(PLANS)]
        r = row(f"L{i:06d}", f"cust{c}", plan, (EXPIRY + dt.timedelta(days=i % 365)).isoformat(), price,
                quantity=str(quantity) if quantity != 1 else "",
                options=json.dumps({option: f"site-{i}.fr"}) if option else "",
                started_on="2019-05-01" if i % 2 else "")
        if c % 10 == 0:
            r["admin"] = f"cust{(c + 1) % customers}"
        if c % 7 == 0:
            r.update(customer_kind="company", customer_name=f"Company {c} SAS", vat_number="FR44732829320")
        rows.append(r)
    return to_csv(rows)


def staff_actor(rt, role="administrator") -> tuple[Actor, str]:
    with unit_of_work(rt) as conn:
        account, key = customers.create_customer(conn, rt, {"subsidiary": "FR", "name": "Migration", "email": "mig@univers.example"},
                                                 is_staff=True, staff_role=role)
    return Actor(f"staff:{account['handle']}", account["id"], True, role, role), key


def run(rt, data: bytes, actor: Actor, **kw) -> legacy.LegacyImport:
    with unit_of_work(rt) as conn:
        return legacy.import_services(conn, rt, "FR", data, actor, **kw)


def counts(rt) -> tuple[int, int, int]:
    with rt.engine.connect() as conn:
        return (conn.execute(select(func.count()).select_from(svc)).scalar_one(),
                conn.execute(select(func.count()).select_from(acct).where(acct.c.is_staff.is_(False))).scalar_one(),
                conn.execute(select(func.count()).select_from(events)).scalar_one())


def problems(rt, data: bytes, actor: Actor) -> list[tuple[int, str | None, str]]:
    with pytest.raises(InvalidInput) as caught:
        run(rt, data, actor)
    assert caught.value.code == "invalid_legacy_file"
    return [(e["line"], e["field"], e["code"]) for e in caught.value.errors]


def services_by_ref(rt, *refs) -> dict[str, dict]:
    with rt.engine.connect() as conn:
        return {r["legacy_ref"]: dict(r) for r in conn.execute(select(svc).where(svc.c.legacy_ref.in_(refs))).mappings()}


def test_a_10000_row_file_imports_at_once_and_a_second_run_imports_nothing(rt):
    actor, _ = staff_actor(rt)
    data = big_file()
    progress = []
    done = run(rt, data, actor, progress=lambda stage, n, total: progress.append((stage, n, total)))
    assert done.as_dict() == {"storefront": "FR", "rows": 10_000, "imported": 10_000, "already_imported": 0,
                              "customers_created": 2_000, "customers_reused": 0}
    assert ("check", 10_000, 10_000) in progress and ("write", 12_000, 12_000) in progress
    with rt.engine.connect() as conn:
        states = conn.execute(select(svc.c.state, svc.c.renewal_mode, func.count()).group_by(svc.c.state, svc.c.renewal_mode)).all()
        assert states == [("active", "manual", 10_000)]
        assert conn.execute(select(func.count()).select_from(svc).where(
            svc.c.terms_due_by.is_not(None) | svc.c.order_id.is_not(None) | (svc.c.billed_until != svc.c.expires_on))).scalar_one() == 0
        assert conn.execute(select(func.count()).select_from(OutboxItem.__table__)).scalar_one() == 0  # nothing provisioned
        assert conn.execute(select(func.count()).select_from(events).where(events.c.action == "service.legacy_imported")).scalar_one() == 10_000
        assert conn.execute(select(func.count()).select_from(events).where(events.c.action == "account.created",
                                                                           events.c.entity_id != actor.account_id)).scalar_one() == 2_000
        record = json.loads(conn.execute(select(events.c.after).where(events.c.action == "legacy.import")).scalar_one())
        company = conn.execute(select(acct).where(acct.c.email == "cust7@legacy.example")).mappings().one()
    assert record["imported"] == 10_000 and record["customers_created"] == 2_000 and record["already_imported"] == 0
    assert company["kind"] == "company" and company["vat_number"] == "FR44732829320" and company["language"] == "fr_FR"
    assert company["handle"].endswith("-univers") and company["tax_zone"] == "FR"
    s = services_by_ref(rt, "L000000", "L000002", "L000003", "L009999", "L000010")
    assert (s["L000000"]["plan_code"], s["L000000"]["price_minor"], s["L000000"]["expires_on"]) == ("web-hosting-pro-p1m", 850, EXPIRY)
    assert s["L000000"]["start_on"] == dt.date(2026, 1, 5) and s["L000003"]["start_on"] == dt.date(2019, 5, 1)
    assert s["L000002"]["options"] == {"domain": "site-2.fr"} and s["L000002"]["period_months"] == 12
    assert (s["L000003"]["quantity"], s["L000003"]["price_minor"]) == (3, 450)  # 1.50 a mailbox, three of them
    assert s["L009999"]["expires_on"] == EXPIRY + dt.timedelta(days=9999 % 365)
    assert s["L000010"]["legacy_ref"] == "L000010" and s["L000010"]["currency"] == "EUR"
    # customer 0's services name customer 1 as admin; tech and billing stay the customer itself
    zero = s["L000000"]
    assert zero["account_id"] == zero["tech_account_id"] == zero["billing_account_id"] != zero["admin_account_id"]
    with rt.engine.connect() as conn:
        assert conn.execute(select(acct.c.email).where(acct.c.id == zero["admin_account_id"])).scalar_one() == "cust1@legacy.example"

    before = counts(rt)
    again = run(rt, data, actor)
    assert again.as_dict() == {"storefront": "FR", "rows": 10_000, "imported": 0, "already_imported": 10_000,
                               "customers_created": 0, "customers_reused": 0}
    after = counts(rt)
    assert after[:2] == before[:2] and after[2] == before[2] + 1  # only the import's own event


def test_every_bad_row_is_reported_with_its_line_and_code_and_nothing_is_written(rt):
    actor, _ = staff_actor(rt)
    rows = [
        row("A1", "alice"),                                                       # line 2: fine
        row("A2", "alice", plan="no-such-plan"),                                  # 3
        row("A3", "alice", plan="web-hosting-pro-p1m", expires_on="31/12/2026"),  # 4
        row("A4", "bob", price="12.345"),                                         # 5
        row("A1", "bob"),                                                         # 6: legacy id of line 2
        row("A6", "carol", admin="nobody"),                                       # 7
        row("A7", "dave", plan="web-domain-fr-p12m"),                             # 8: no domain
        {**row("A8", "erin"), "customer_email": "erin-at-example"},              # 9
        row("A9", "frank", plan="bm-rise-1-p1m", expires_on="2025-12-31"),        # 10: expired
        row("A10", "grace", quantity="0", started_on="2027-01-01"),              # 11
        {**row("A11", "alice"), "customer_name": "Alice Other"},                 # 12
        row("A12", "heidi", options="[1, 2]"),                                    # 13
        row("A13", "ivan", plan="web-domain-fr-p12m", options='{"domain": "ivan.com"}'),  # 14: not a .fr name
        {**row("A14", "judy"), "customer_email": "alice@legacy.example"},        # 15: alice's e-mail
        {**row("", "kim"), "price": "-3", "customer_kind": "robot", "customer_country": "XX"},  # 16
    ]
    data = to_csv(rows)
    before = counts(rt)
    found = problems(rt, data, actor)
    assert found == [
        (3, "plan", "unknown_plan"),
        (4, "expires_on", "bad_date"),
        (5, "price", "bad_price"),
        (6, "legacy_id", "duplicate_legacy_id"),
        (7, "admin", "unknown_contact"),
        (8, "options.domain", "missing_option"),
        (9, "customer_email", "bad_email"),
        (10, "expires_on", "expired"),
        (11, "quantity", "bad_quantity"),
        (11, "started_on", "bad_date"),
        (12, "customer_name", "inconsistent_customer"),
        (13, "options", "bad_options"),
        (14, "options.domain", "invalid_domain"),
        (15, "customer_email", "duplicate_customer_email"),
        (16, "legacy_id", "required"),
        (16, "customer_kind", "bad_kind"),
        (16, "customer_country", "bad_country"),
        (16, "price", "bad_price"),
    ]
    assert counts(rt) == before
    with pytest.raises(InvalidInput) as caught:
        run(rt, data, actor)
    error = next(e for e in caught.value.errors if e["code"] == "duplicate_legacy_id")
    assert translate(error["message"], "en").format(**error["params"]) == "The legacy id A1 is already on line 2."
    assert caught.value.message("en") == "Nothing was imported: the file has 18 problem(s), listed with their line."


def test_a_name_spanning_lines_in_a_quoted_cell_is_a_problem(rt):
    actor, _ = staff_actor(rt)
    data = to_csv([{**row("B1", "lena"), "customer_name": "Lena\nBcc: all@example.com"}])
    before = counts(rt)
    assert problems(rt, data, actor) == [(2, "customer_name", "line_break")]
    assert counts(rt) == before


def test_a_malformed_file_is_refused_as_a_whole(rt):
    actor, _ = staff_actor(rt)
    assert problems(rt, b"", actor) == [(1, None, "empty_file")]
    assert problems(rt, to_csv([]), actor) == [(1, None, "empty_file")]
    assert problems(rt, "legacy_id,customer,plan,prix\n".encode(), actor) == [
        (1, "prix", "unknown_column"), (1, "customer_name", "missing_column"), (1, "customer_email", "missing_column"),
        (1, "customer_kind", "missing_column"), (1, "customer_country", "missing_column"), (1, "expires_on", "missing_column"),
        (1, "price", "missing_column")]
    assert problems(rt, to_csv([row("A1", "alice")]) + "A2,bob,extra\n".encode(), actor) == [(3, None, "wrong_field_count")]
    assert problems(rt, "legacy_id\n\xe9\n".encode("latin-1"), actor)[0] == (2, None, "bad_encoding")
    # a BOM, CRLF line ends and a quoted field over two lines are fine; lines count from the header
    text = to_csv([row("A1", "alice", options='{"note":\n "two lines"}'), row("A2", "alice", plan="nope")]).decode()
    found = problems(rt, ("\ufeff" + text.replace("\n", "\r\n", 1)).encode(), actor)
    assert found == [(4, "plan", "unknown_plan")]


def test_contacts_may_be_other_customers_of_the_file_or_existing_handles_and_a_known_email_is_reused(shop, rt):
    actor, _ = staff_actor(rt)
    existing = shop.signup("FR", kind="company", name="Acme SAS", email="Ops@Acme.example")
    partner = shop.signup("FR", kind="company", name="Partner SARL", email="partner@agency.example")
    rows = [
        {**row("S1", "acme-legacy"), "customer_email": "ops@acme.example", "customer_name": "ACME (old name)"},
        {**row("S2", "bob"), "admin": "acme-legacy", "tech": partner["handle"], "billing": "carol"},
        row("S3", "carol", plan="web-hosting-starter-p12m", price="29.99"),
    ]
    done = run(rt, to_csv(rows), actor)
    assert (done.imported, done.customers_created, done.customers_reused) == (3, 2, 1)
    s = services_by_ref(rt, "S1", "S2", "S3")
    assert s["S1"]["account_id"] == existing["id"]  # found by e-mail (case aside), its details left as they were
    bob = s["S2"]
    assert bob["admin_account_id"] == existing["id"] and bob["tech_account_id"] == partner["id"]
    assert bob["billing_account_id"] == s["S3"]["account_id"] != bob["account_id"]
    assert shop.client.get("/v1/me", headers=existing["headers"]).json()["name"] == "Acme SAS"
    # the services show in their contacts' lists, on the legacy terms
    listed = shop.client.get("/v1/services", headers=partner["headers"]).json()["items"]
    assert [(i["id"], i["state"], i["renewal_mode"]) for i in listed] == [(bob["id"], "active", "manual")]


def test_a_changed_row_of_an_imported_service_is_a_problem_and_the_rest_waits(rt):
    actor, _ = staff_actor(rt)
    run(rt, to_csv([row("C1", "zoe"), row("C2", "zoe", plan="web-hosting-starter-p12m")]), actor)
    before = counts(rt)
    changed = to_csv([row("C1", "zoe", expires_on="2026-07-31", price="9.00"), row("C2", "zoe", plan="web-hosting-starter-p12m"),
                      row("C3", "zoe")])
    assert problems(rt, changed, actor) == [(2, "expires_on,price", "legacy_id_changed")]
    assert counts(rt) == before
    # the unchanged file with one more row: only the new row is imported, for the same customer
    done = run(rt, to_csv([row("C1", "zoe"), row("C2", "zoe", plan="web-hosting-starter-p12m"), row("C3", "zoe")]), actor)
    assert (done.imported, done.already_imported, done.customers_created, done.customers_reused) == (1, 2, 0, 1)
    s = services_by_ref(rt, "C1", "C3")
    assert s["C1"]["account_id"] == s["C3"]["account_id"]


def test_a_customer_is_found_again_by_its_imported_services_when_its_email_changed(rt):
    actor, _ = staff_actor(rt)
    run(rt, to_csv([row("D1", "yann")]), actor)
    with unit_of_work(rt) as conn:
        conn.execute(acct.update().where(acct.c.email == "yann@legacy.example").values(email="yann@new.example"))
    done = run(rt, to_csv([row("D1", "yann"), row("D2", "yann")]), actor)
    assert (done.imported, done.customers_created) == (1, 0)
    s = services_by_ref(rt, "D1", "D2")
    assert s["D1"]["account_id"] == s["D2"]["account_id"]


def test_a_plan_withdrawn_since_does_not_fail_a_second_run(rt, monkeypatch):
    actor, _ = staff_actor(rt)
    data = to_csv([row("W1", "walt")])
    run(rt, data, actor)
    monkeypatch.setattr(rt.catalog.offers["FR"], "plans", rt.catalog.offers["FR"].plans - {"web-hosting-pro-p1m"})
    assert run(rt, data, actor).already_imported == 1
    assert problems(rt, to_csv([row("W2", "walt")]), actor) == [(2, "plan", "not_sold_in_storefront")]


# --- the staff API -------------------------------------------------------------------------------


def test_the_staff_api_imports_for_administrators_only(shop, rt):
    customer = shop.signup("FR")
    _, operator = staff_actor(rt, "billing_operator")
    _, admin = staff_actor(rt, "administrator")
    url = "/v1/staff/legacy-imports?storefront=FR"
    data = to_csv([row("H1", "hana"), row("H2", "hana", plan="web-domain-fr-p12m", options='{"domain": "hana.fr"}')])
    csv_type = {"Content-Type": "text/csv"}
    assert shop.client.post(url, content=data, headers=csv_type).status_code == 401
    r = shop.client.post(url, content=data, headers={**csv_type, **customer["headers"]})
    assert r.status_code == 403 and r.headers["content-type"].startswith("application/problem+json")
    r = shop.client.post(url, content=data, headers={**csv_type, "Authorization": f"Bearer {operator}"})
    assert r.status_code == 403 and r.json()["code"] == "role_forbids"
    r = shop.client.post(url, content=data, headers={**csv_type, "Authorization": f"Bearer {admin}"})
    assert r.status_code == 201, r.text
    assert r.json() == {"storefront": "FR", "rows": 2, "imported": 2, "already_imported": 0, "customers_created": 1,
                        "customers_reused": 0}
    r = shop.client.post(url, content=data, headers={**csv_type, "Authorization": f"Bearer {admin}"})
    assert r.status_code == 200 and r.json()["already_imported"] == 2
    r = shop.client.post(url, content=b'{"a": 1}', headers={"Content-Type": "application/json", "Authorization": f"Bearer {admin}"})
    assert r.status_code == 415 and r.json()["code"] == "unsupported_media_type"
    r = shop.client.post("/v1/staff/legacy-imports?storefront=ZZ", content=data, headers={**csv_type, "Authorization": f"Bearer {admin}"})
    assert r.status_code == 422 and r.json()["code"] == "unknown_storefront"
    with unit_of_work(rt) as conn:
        narrow = customers.issue_key(conn, rt, conn.execute(select(acct.c.id).where(acct.c.staff_role == "administrator"))
                                     .scalars().first(), scopes="billing:write")
    r = shop.client.post(url, content=data, headers={**csv_type, "Authorization": f"Bearer {narrow}"})
    assert r.status_code == 403 and r.json()["code"] == "scope_missing"


def test_a_bad_file_is_a_problem_json_in_the_callers_language(shop, rt):
    _, admin = staff_actor(rt)
    before = counts(rt)
    data = to_csv([row("P1", "pia", plan="web-domain-fr-p12m"), row("P2", "pia", expires_on="2026-13-01"),
                   row("P3", "pia", plan="web-domain-fr-p12m", options='{"domain": "pia.com"}')])
    headers = {"Content-Type": "text/csv; charset=utf-8", "Authorization": f"Bearer {admin}", "Accept-Language": "fr-FR,fr;q=0.9"}
    r = shop.client.post("/v1/staff/legacy-imports?storefront=FR", content=data, headers=headers)
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["code"] == "invalid_legacy_file" and body["status"] == 422 and body["instance"] == "/v1/staff/legacy-imports"
    template = "Nothing was imported: the file has {count} problem(s), listed with their line."
    assert body["detail"] == translate(template, "fr_FR").format(count=3)
    assert [(e["line"], e["field"], e["code"]) for e in body["errors"]] == [
        (2, "options.domain", "missing_option"), (3, "expires_on", "bad_date"), (4, "options.domain", "invalid_domain")]
    missing = body["errors"][0]["message"]
    assert missing == translate("The option {name} is required for this product.", "fr").format(name="domain")
    assert missing != "The option domain is required for this product."  # French already
    assert "pia.com" in body["errors"][2]["message"] and body["errors"][2]["message"] != translate(
        "{domain} does not end with {extension}: this product registers {extension} domain names.", "en").format(
        domain="pia.com", extension=".fr")  # the plugin's message, in French too
    assert counts(rt) == before


# --- the CLI -------------------------------------------------------------------------------------


def _cli_url(rt, database_url) -> str:
    text = rt.engine.url.render_as_string(hide_password=False)
    schema = database_url[1]
    return text if schema is None else f"{text}?options=-csearch_path%3D{schema}"


def test_the_cli_imports_services_with_a_staff_key_and_lists_the_problems(rt, tmp_path, database_url, capsys):
    from core.cli import main

    _, admin = staff_actor(rt, "administrator")
    _, support = staff_actor(rt, "support_agent")
    today = dt.date.today()  # the CLI runs on the real clock
    good = tmp_path / "legacy.csv"
    good.write_bytes(to_csv([row("K1", "kai", expires_on=(today + dt.timedelta(days=40)).isoformat()),
                             row("K2", "kai", expires_on=(today + dt.timedelta(days=300)).isoformat(),
                                 plan="web-hosting-starter-p12m")]))
    bad = tmp_path / "bad.csv"
    bad.write_bytes(to_csv([row("B1", "kai", plan="nope", expires_on=today.isoformat()), row("B2", "bea", expires_on="soon")]))
    cmd = ["import", "services", str(good), "--storefront", "FR", "--database", _cli_url(rt, database_url)]
    assert main(cmd) == 1  # a back-office command: a staff key is needed
    assert main([*cmd, "--key", support]) == 1  # creating customers: administrators only
    assert counts(rt)[0] == 0
    capsys.readouterr()
    assert main([*cmd, "--key", admin]) == 0
    assert json.loads(capsys.readouterr().out)["imported"] == 2
    assert main([*cmd, "--key", admin]) == 0
    assert json.loads(capsys.readouterr().out) == {"storefront": "FR", "rows": 2, "imported": 0, "already_imported": 2,
                                                   "customers_created": 0, "customers_reused": 0}
    bad_cmd = ["import", "services", str(bad), "--storefront", "FR", "--database", _cli_url(rt, database_url), "--key", admin]
    assert main(bad_cmd) == 1
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith(str(bad))]
    assert lines == [f"{bad}:2: plan: unknown_plan: There is no plan nope in the catalog.",
                     f"{bad}:3: expires_on: bad_date: A date is written YYYY-MM-DD, such as 2027-03-31."]
    assert counts(rt)[0] == 2
    assert main(["import", "services", str(good), "--database", _cli_url(rt, database_url), "--key", admin]) == 2  # no storefront
    assert main(["import", "services", str(tmp_path / "missing.csv"), "--storefront", "FR", "--key", admin]) == 2
    assert main(["import", "nonsense", str(good), "--key", admin]) == 2
