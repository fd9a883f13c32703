"""Back office: filtered invoice lists, the overdue view, revenue by month/storefront/universe,
the sales journal and the French FEC, through the API and the CLI."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from decimal import Decimal

import pytest


@pytest.fixture
def books(shop):
    """Three customers in two storefronts: paid, unpaid (declined) and partly credited."""
    fr = shop.signup("FR", top_up="500.00", name="Camille Martin", kind="person")
    de = shop.signup("DE", name="Jonas Weber", kind="person")
    shop.order(fr, "web-hosting-starter-p1m")
    server = shop.order(fr, "bm-ks-1-p1m")
    shop.order(de, "web-hosting-pro-p1m", payment={"method": "test", "outcome": "decline"})
    setup = next(line for line in server["invoice"]["lines"] if line["kind"] == "setup")
    r = shop.client.post(f"/v1/staff/invoices/{server['invoice']['id']}/credit-notes",
                         json={"reason": "Setup offered", "lines": [{"line_id": setup["id"]}]},
                         headers={**shop.staff(), "Idempotency-Key": "k"})
    assert r.status_code == 201
    return {"fr": fr, "de": de, "server": server, "credit": r.json()}


def test_invoice_list_filters(shop, books):
    staff = shop.staff()

    def numbers(query, headers=staff):
        r = shop.client.get(f"/v1/invoices?{query}", headers=headers)
        assert r.status_code == 200, r.text
        return [i["number"] for i in r.json()["items"]]

    assert numbers("subsidiary=DE") == ["DE-2026-000001"]
    assert numbers("status=issued") == ["DE-2026-000001"]
    assert numbers("kind=credit_note") == ["FRC-2026-000001"]
    assert numbers(f"customer={books['fr']['id']}") == ["FR-2026-000001", "FR-2026-000002", "FRC-2026-000001"]
    assert numbers("issued_from=2026-01-06") == []
    assert numbers("", headers=books["de"]["headers"]) == ["DE-2026-000001"]  # customers see their own only
    assert numbers(f"customer={books['fr']['id']}", headers=books["de"]["headers"]) == ["DE-2026-000001"]


def test_overdue_view(shop, books):
    r = shop.client.get("/v1/staff/invoices/overdue?as_of=2026-01-20", headers=shop.staff())
    assert r.status_code == 200
    assert [(i["number"], i["days_overdue"], i["payment_pending"]) for i in r.json()] == [("DE-2026-000001", 15, False)]
    assert shop.client.get("/v1/staff/invoices/overdue", headers=books["fr"]["headers"]).status_code == 403


def test_revenue_report_deducts_credit_notes(shop, books):
    r = shop.client.get("/v1/staff/reports/revenue?issued_from=2026-01-01&issued_to=2026-01-31", headers=shop.staff())
    rows = {(x["month"], x["subsidiary"], x["universe"]): x["net"]["amount_minor"] for x in r.json()}
    setup = books["credit"]["net"]["amount_minor"]
    server = books["server"]["invoice"]["net"]["amount_minor"]
    assert rows == {("2026-01", "FR", "web"): 299, ("2026-01", "FR", "baremetal"): server - setup, ("2026-01", "DE", "web"): 999}


def test_journal_is_balanced_and_reverses_credit_notes(shop, books):
    r = shop.client.get("/v1/staff/exports/journal?issued_from=2026-01-01&issued_to=2026-01-31", headers=shop.staff())
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    for entry in {row["entry"] for row in rows}:
        lines = [row for row in rows if row["entry"] == entry]
        assert sum(Decimal(x["debit"]) for x in lines) == sum(Decimal(x["credit"]) for x in lines) > 0, entry
    credit = [row for row in rows if row["entry"] == "FRC-2026-000001"]
    receivable = next(row for row in credit if row["account"] == "411000")
    assert Decimal(receivable["credit"]) == Decimal(books["credit"]["total"]["amount"]) and receivable["debit"] == "0"
    assert {row["account"] for row in rows} >= {"411000", "706100", "706200", "445710"}


def test_fec_of_the_french_entity(shop, books):
    r = shop.client.get("/v1/staff/exports/fec?year=2026", headers=shop.staff())
    assert r.status_code == 200
    assert 'filename="303265045FEC20261231.txt"' in r.headers["content-disposition"]
    header, *lines = r.text.splitlines()
    assert header.split("|")[:4] == ["JournalCode", "JournalLib", "EcritureNum", "EcritureDate"] and len(header.split("|")) == 18
    assert all(line.split("|")[0] == "VE" and line.split("|")[3] == "20260105" for line in lines)
    assert not any("DE-2026" in line for line in lines)  # the French entity's books only
    first = lines[0].split("|")
    assert first[4] == "411000" and first[11] == "3,59" and first[10].startswith("Facture FR-2026-000001")


def test_cli_exports_with_a_progress_bar(shop, books, tmp_path, monkeypatch, capsys, database_url):
    from core.cli import main

    url, schema = database_url
    monkeypatch.setenv("UNIVERS_DATABASE_URL", f"{url}?options=-csearch_path%3D{schema}" if schema else url)
    monkeypatch.setenv("UNIVERS_STAFF_KEY", shop.staff()["Authorization"][7:])
    assert main(["export", "journal", "--from", "2026-01-01", "--to", "2026-01-31", "--output", str(tmp_path)]) == 0
    assert (tmp_path / "journal-2026-01-01-2026-01-31.csv").read_text().count("411000") == 4
    assert main(["export", "fec", "--year", "2026", "--output", str(tmp_path)]) == 0
    assert (tmp_path / "303265045FEC20261231.txt").exists()
    assert main(["report", "revenue", "--from", "2026-01-01", "--to", "2026-01-31", "--json"]) == 0
    assert '"baremetal"' in capsys.readouterr().out
    assert main(["invoices", "overdue", "--as-of", "2026-02-01"]) == 0


def test_cli_back_office_goes_through_the_role_checks(shop, books, monkeypatch, capsys, database_url):
    from core.cli import main

    url, schema = database_url
    monkeypatch.setenv("UNIVERS_DATABASE_URL", f"{url}?options=-csearch_path%3D{schema}" if schema else url)
    monkeypatch.delenv("UNIVERS_STAFF_KEY", raising=False)
    revenue = ["report", "revenue", "--from", "2026-01-01", "--to", "2026-01-31", "--json"]
    assert main(revenue) == 1 and "unauthenticated" in capsys.readouterr().err
    assert main([*revenue, "--key", books["fr"]["headers"]["Authorization"][7:]]) == 1  # a customer's key
    assert "forbidden" in capsys.readouterr().err
    # staff accounts: the first administrator exists (shop.staff); creating another needs its key
    assert main(["staff", "create", "--name", "Desk", "--email", "desk@univers.example", "--role", "abuse_desk"]) == 1
    admin = shop.staff()["Authorization"][7:]
    assert main(["staff", "create", "--name", "Desk", "--email", "desk@univers.example", "--role", "abuse_desk", "--key", admin]) == 0
    desk = json.loads(capsys.readouterr().out)["api_key"]
    assert main([*revenue, "--key", desk]) == 1 and "role_forbids" in capsys.readouterr().err  # the abuse desk reads no revenue
    service_id = books["server"]["services"][0]["id"]
    assert main(["service", "abuse", str(service_id), "--reason", "Open relay", "--key", desk]) == 0
    assert json.loads(capsys.readouterr().out)["abuse_reason"] == "Open relay"
    assert main(["service", "restore", str(service_id), "--key", desk]) == 1 and "role_forbids" in capsys.readouterr().err
    assert main(["service", "lift-abuse", str(service_id), "--key", desk]) == 0


def test_dates_must_be_dates(tmp_path, monkeypatch):
    from core.cli import main

    monkeypatch.setenv("UNIVERS_DATA_DIR", str(tmp_path))
    with pytest.raises(SystemExit) as stop:
        main(["report", "revenue", "--from", "yesterday", "--to", "2026-01-31"])
    assert stop.value.code == 2


def test_report_dates_inclusive(shop, books):
    r = shop.client.get("/v1/staff/reports/revenue?issued_from=2026-01-05&issued_to=2026-01-05", headers=shop.staff())
    assert len(r.json()) == 3
    assert dt.date(2026, 1, 5) == shop.clock.today()
